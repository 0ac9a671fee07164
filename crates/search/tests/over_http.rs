//! genprm and critique-refine over a real OpenAI-compatible server: the llama-cpp-python
//! server the HTTP backend's tests start (`stepwise_http::reference`, the default GGUF on
//! a loopback port), driven through `solve` jobs into a SQLite store, on two tiny `arith`
//! problems. What is checked is the plumbing, not accuracy: every call goes over HTTP,
//! every generated and prompt token the server reported is counted in the right columns,
//! and a record per problem is written.
//!
//! A server that cannot be installed or started fails the test unless
//! `STEPWISE_SKIP_SERVER_TESTS=1`, which prints a SKIPPED line instead (as the HTTP
//! backend's and the gateway's server tests do; the README lists this skip).

use std::sync::Arc;
use std::time::Duration;
use stepwise_core::{CritiqueVerdict, TraceEvent};
use stepwise_http::reference::LlamaCppServer;
use stepwise_http::{ChatMode, HttpConfig, HttpGenerator};
use stepwise_jobs::kinds::scale::ScaleStrategy;
use stepwise_jobs::kinds::solve::{SearchSettings, Solve, SolveConfig};
use stepwise_jobs::{RunOptions, RunStore, Stop, records};
use stepwise_llama::fetch;
use stepwise_model::Generator;
use stepwise_search::jobs::{Backends, SolveJob, solve};
use stepwise_store::SqliteStore;

const DATA: &str = "arith:ops=1,n=2";

fn config(
    policy: &dyn Generator,
    strategy: ScaleStrategy,
    n: usize,
    search: SearchSettings,
) -> SolveConfig {
    SolveConfig {
        dataset: DATA.into(),
        limit: None,
        strategy,
        n,
        budget: None,
        policy: policy.name(),
        reproducible: policy.reproducible(),
        search,
    }
}

fn opts() -> RunOptions {
    RunOptions {
        stop: Stop::Never,
        concurrency: 1,
        ..RunOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn genprm_and_critique_refine_over_the_llama_cpp_python_server() {
    let test = "genprm and critique-refine over llama-cpp-python";
    let model = fetch::ensure_default_model().unwrap();
    let Some(server) = LlamaCppServer::start_or_skip(&model, 2, test)
        .await
        .unwrap()
    else {
        return;
    };
    let mut cfg = HttpConfig::new(vec![format!("{}/v1", server.url())]);
    cfg.chat_mode = ChatMode::ChatMl;
    cfg.max_concurrency = 1;
    cfg.max_retries = 1;
    cfg.backoff_base = Duration::from_millis(50);
    let policy: Arc<dyn Generator> = Arc::new(HttpGenerator::new(cfg).unwrap());
    assert!(policy.name().starts_with("http:"), "{}", policy.name());
    let backends = Backends {
        policy: policy.clone(),
        judge: None,
        prm: Default::default(),
    };
    let problems = stepwise_data::load_spec(DATA, None, None).unwrap();
    assert_eq!(problems.len(), 2);
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("runs.sqlite")).unwrap();

    // genprm (one judgment per step, analyses of at most 32 tokens) ranking a best-of-1
    let search = SearchSettings {
        scorer: Some("genprm:1".into()),
        judge_reasoning: Some(32),
        max_tokens: 48,
        seed: 3,
        ..SearchSettings::default()
    };
    let job = SolveJob::new(
        config(policy.as_ref(), ScaleStrategy::Bon, 1, search),
        problems.clone(),
        &backends,
    )
    .unwrap();
    let summary = solve(&store, &job, &opts(), None).await.unwrap();
    let recs = records::<Solve>(&store, summary.run).unwrap();
    assert_eq!(recs.len(), 2, "one record per problem");
    let mut scored_steps = 0;
    for (_, r) in &recs {
        let o = &r.outcome;
        let s = &o.samples[0];
        assert!(s.tokens > 0 && s.tokens <= 48, "{s:?}");
        assert_eq!(o.spent.policy_tokens, s.tokens);
        assert_eq!(o.spent.policy_calls, 1);
        assert!(o.spent.policy_prompt_tokens > 0, "{:?}", o.spent);
        // every step scored by genprm, its judge work in the judge columns: per step one
        // analysis (at most 32 tokens) and at least one verdict read
        assert_eq!(s.scores.len(), s.rationale.steps.len());
        assert!(
            s.scores.iter().all(|x| x.scorer == "genprm"),
            "{:?}",
            s.scores
        );
        let steps = s.rationale.steps.len() as u64;
        scored_steps += steps;
        assert_eq!(o.spent.judge_tokens, s.judge.judge_tokens);
        assert!(o.spent.judge_tokens <= 32 * steps, "{:?}", o.spent);
        assert!(o.spent.judge_calls >= steps, "{:?}", o.spent);
        assert!(
            o.spent.judge_prompt_tokens > 0 || steps == 0,
            "{:?}",
            o.spent
        );
    }
    assert!(scored_steps > 0, "the model wrote no steps at all");
    let total: u64 = recs
        .iter()
        .map(|(_, r)| r.outcome.spent.generated_tokens())
        .sum();
    assert_eq!(summary.spent.generated_tokens(), total);
    eprintln!("genprm over HTTP: {summary}");

    // critique-refine, one round, the policy as its own critic
    let search = SearchSettings {
        max_tokens: 48,
        seed: 3,
        ..SearchSettings::default()
    };
    let job = SolveJob::new(
        config(policy.as_ref(), ScaleStrategy::CritiqueRefine, 1, search),
        problems.clone(),
        &backends,
    )
    .unwrap();
    assert_eq!(job.strategy_name(), "critique-refine(rounds=1)");
    let summary = solve(&store, &job, &opts(), None).await.unwrap();
    let recs = records::<Solve>(&store, summary.run).unwrap();
    assert_eq!(recs.len(), 2, "one record per problem");
    for (_, r) in &recs {
        let o = &r.outcome;
        let critiques: Vec<_> = o
            .trace
            .events
            .iter()
            .filter_map(|e| match e {
                TraceEvent::Critique {
                    verdict,
                    tokens,
                    revision,
                    ..
                } => Some((*verdict, *tokens, *revision)),
                _ => None,
            })
            .collect();
        assert_eq!(critiques.len(), 1, "{:?}", o.trace.events);
        let (verdict, critic_tokens, revision) = critiques[0];
        // the critic's tokens, and only they, are in the judge columns
        assert_eq!(o.spent.judge_tokens, critic_tokens);
        assert!(critic_tokens > 0 && critic_tokens <= 48);
        assert_eq!(o.spent.judge_calls, 1);
        assert!(o.spent.judge_prompt_tokens > 0);
        // a revision follows unless the critic accepted
        let revised = verdict != CritiqueVerdict::Accept;
        assert_eq!(revision.is_some(), revised, "{verdict:?}");
        assert_eq!(o.samples.len(), 1 + usize::from(revised));
        assert_eq!(o.spent.policy_calls, 1 + u64::from(revised));
        assert_eq!(
            o.spent.policy_tokens,
            o.samples.iter().map(|s| s.tokens).sum::<u64>()
        );
        assert_eq!(
            o.spent.policy_prompt_tokens,
            o.samples.iter().map(|s| s.prompt_tokens).sum::<u64>()
        );
        assert_eq!(o.chosen, Some(o.samples.len() - 1));
        eprintln!(
            "critique-refine over HTTP, {}: verdict {verdict:?}, {:?}",
            o.problem_id, o.spent
        );
    }
    // the store holds both runs, done
    let runs = store.list_runs().unwrap();
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert!(
        runs.iter()
            .all(|r| r.status == stepwise_jobs::RunStatus::Done),
        "{runs:?}"
    );
    drop(server);
}
