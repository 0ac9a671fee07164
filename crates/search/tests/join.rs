//! Workers joining a stored `solve` run ([`stepwise_search::jobs::join`]): each may reach
//! the run's PRM through a server of its own (the stored scorer is `prm`, not
//! `prm:URL`), but another scorer is refused with the config difference named, and its
//! judge model must be the run's, as its policy model must.

use async_trait::async_trait;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use stepwise_core::Problem;
use stepwise_jobs::kinds::scale::ScaleStrategy;
use stepwise_jobs::kinds::solve::{SearchSettings, SolveConfig};
use stepwise_jobs::{Job, RunOptions, RunStore, Stop};
use stepwise_model::scripted::ScriptedGenerator;
use stepwise_model::{Completion, EngineError, GenerateRequest, Generator, NextTokenLogprobs};
use stepwise_search::jobs::{Backends, Joined, SolveJob, join};
use stepwise_store::SqliteStore;

/// The scripted policy under another name (a model reached at some endpoint).
struct Named {
    inner: ScriptedGenerator,
    name: String,
}

#[async_trait]
impl Generator for Named {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn reproducible(&self) -> bool {
        true
    }
    async fn generate(&self, req: &GenerateRequest) -> Result<Vec<Completion>, EngineError> {
        self.inner.generate(req).await
    }
    async fn next_token_logprobs(
        &self,
        prompt: &stepwise_model::Prompt,
        prefix: &str,
        candidates: &[String],
    ) -> Result<NextTokenLogprobs, EngineError> {
        self.inner
            .next_token_logprobs(prompt, prefix, candidates)
            .await
    }
}

fn named(name: &str) -> Arc<dyn Generator> {
    Arc::new(Named {
        inner: ScriptedGenerator::new(|_, i| {
            if i % 2 == 0 {
                "3 + 4 = 7\n\nThe answer is 7.".into()
            } else {
                "3 + 4 = 8\n\nThe answer is 8.".into()
            }
        }),
        name: name.into(),
    })
}

fn problems() -> Vec<Problem> {
    (0..3)
        .map(|i| Problem::new(format!("p{i}"), "What is 3 + 4?").with_gold("7"))
        .collect()
}

fn backends(policy: &str, judge: Option<&str>, prm: &[String]) -> Backends {
    let mut b = Backends {
        policy: named(policy),
        judge: judge.map(named),
        prm: Default::default(),
    };
    b.prm.endpoints = prm.to_vec();
    b.prm.retries = 0;
    b
}

fn opts() -> RunOptions {
    RunOptions {
        stop: Stop::Never,
        ..RunOptions::default()
    }
}

/// A best-of-2 solve run with `scorer`, created in `store` (with its problems, no unit
/// done) as a command on another machine would have: what workers join.
fn started(store: &dyn RunStore, scorer: &str, b: &Backends) -> (i64, SolveConfig) {
    let config = SolveConfig {
        dataset: "inline".into(),
        limit: None,
        strategy: ScaleStrategy::Bon,
        n: 2,
        budget: None,
        policy: b.policy.name(),
        reproducible: b.reproducible(),
        search: SearchSettings {
            scorer: Some(scorer.into()),
            judge: b.judge.as_ref().map(|j| j.name()),
            ..SearchSettings::default()
        },
    };
    let job = SolveJob::new(config, problems(), b).unwrap();
    let stored = job.config().clone();
    let run = store
        .create_run_with_problems(
            "solve",
            2,
            &serde_json::to_value(&stored).unwrap(),
            &problems(),
        )
        .unwrap();
    (run, stored)
}

/// A vLLM `/pooling` PRM server: 0.2 for a step with an 8 in it, else 0.7; counts requests.
fn prm_server(seen: Arc<AtomicUsize>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0u8; len];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            seen.fetch_add(1, Ordering::SeqCst);
            let req: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let assistant = req["messages"][2]["content"].as_str().unwrap_or("");
            let pairs: Vec<[f64; 2]> = assistant
                .split("<extra_0>")
                .filter(|s| !s.trim().is_empty())
                .map(|s| {
                    if s.contains('8') {
                        [0.8, 0.2]
                    } else {
                        [0.3, 0.7]
                    }
                })
                .collect();
            let text = serde_json::json!({"object": "list", "model": "prm",
                "data": [{"index": 0, "object": "pooling", "data": pairs}],
                "usage": {"prompt_tokens": 10, "total_tokens": 10}})
            .to_string();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                text.len()
            );
        }
    });
    url
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn workers_reach_the_prm_through_servers_of_their_own_and_another_scorer_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("runs.sqlite")).unwrap();
    let (a, b, c) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let (url_a, url_b, url_c) = (
        prm_server(a.clone()),
        prm_server(b.clone()),
        prm_server(c.clone()),
    );
    // started on machine A with its own server: the stored scorer is `prm`, no URL
    let (run, stored) = started(
        &store,
        &format!("prm:{url_a}"),
        &backends("scripted@a", None, &[]),
    );
    assert_eq!(stored.search.scorer.as_deref(), Some("prm"));
    assert!(!store.run(run).unwrap().config.to_string().contains(&url_a));

    // machine B joins with --prm-endpoint of its own and does every unit through it
    let joined = block_on(join(
        &store,
        run,
        &backends("scripted@b", None, std::slice::from_ref(&url_b)),
        None,
        &opts(),
    ))
    .unwrap();
    let Joined::Solve(summary) = joined else {
        panic!("a solve run")
    };
    assert_eq!(summary.problems, 3);
    assert_eq!(summary.right, 3, "the PRM picks the sample claiming 7");
    assert!(
        b.load(Ordering::SeqCst) >= 3,
        "B's server scored the samples"
    );
    assert_eq!(a.load(Ordering::SeqCst), 0, "nothing went to A's server");
    // machine C joins with its own `prm:URL` spec: accepted (nothing is left to do)
    block_on(join(
        &store,
        run,
        &backends("scripted@c", None, &[]),
        Some(&format!("prm:{url_c}")),
        &opts(),
    ))
    .unwrap();
    // another scorer is another config: refused, naming the difference
    let e = block_on(join(
        &store,
        run,
        &backends("scripted@c", None, &[]),
        Some("arith"),
        &opts(),
    ))
    .err()
    .unwrap()
    .to_string();
    assert!(
        e.contains(r#"config.search.scorer: stored "prm", given "arith""#),
        "{e}"
    );
    // a bare `prm` with no server anywhere names what to give
    let e = block_on(join(
        &store,
        run,
        &backends("scripted@c", None, &[]),
        None,
        &opts(),
    ))
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("--prm-endpoint"), "{e}");
    let info = store.run(run).unwrap();
    assert_eq!(
        (info.status, info.units),
        (stepwise_jobs::RunStatus::Done, 3)
    );
}

#[test]
fn a_worker_must_judge_with_the_runs_judge_model() {
    let store = SqliteStore::in_memory().unwrap();
    let (run, _) = started(
        &store,
        "arith",
        &backends("scripted@a", Some("http:judge-7b@http://a:1"), &[]),
    );
    let refused = |b: Backends| {
        block_on(join(&store, run, &b, None, &opts()))
            .err()
            .unwrap()
            .to_string()
    };
    let e = refused(backends(
        "scripted@b",
        Some("http:judge-1b@http://b:1"),
        &[],
    ));
    assert!(
        e.contains("'http:judge-7b@http://a:1'") && e.contains("'http:judge-1b@http://b:1'"),
        "{e}"
    );
    let e = refused(backends("scripted@b", None, &[]));
    assert!(e.contains("no judge of its own"), "{e}");
    // the same judge model through another endpoint joins
    block_on(join(
        &store,
        run,
        &backends("scripted@b", Some("http:judge-7b@http://b:1"), &[]),
        None,
        &opts(),
    ))
    .unwrap();
    assert_eq!(store.run(run).unwrap().units, 3);
    // and a run judged by its policy refuses a worker with a judge of its own
    let (own, _) = started(&store, "arith", &backends("scripted@a", None, &[]));
    let e = block_on(join(
        &store,
        own,
        &backends("scripted@b", Some("http:judge-7b@http://b:1"), &[]),
        None,
        &opts(),
    ))
    .err()
    .unwrap()
    .to_string();
    assert!(
        e.contains("policy as its judge") && e.contains("judge-7b"),
        "{e}"
    );
}
