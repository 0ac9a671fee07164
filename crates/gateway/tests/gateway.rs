//! The gateway on a loopback port, over scripted policies: answers and accounting equal
//! the strategy run directly, a policy that dies mid-request gives the best candidate so
//! far marked partial, requests past max_concurrency get 503, the token is required.

mod common;

use async_trait::async_trait;
use common::{assert_same_as_direct, direct, openai, openai_python};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use stepwise_core::Problem;
use stepwise_gateway::GatewayConfig;
use stepwise_jobs::kinds::scale::ScaleStrategy;
use stepwise_jobs::kinds::solve::SearchSettings;
use stepwise_model::scripted::ScriptedGenerator;
use stepwise_model::{
    Completion, EngineError, GenerateRequest, Generator, NextTokenLogprobs, PartialGeneration,
    Prompt,
};

/// Sample i answers 7 (right, "3 + 4 = 7") when i % 3 == 2, else a wrong claim.
fn scripted() -> Arc<dyn Generator> {
    Arc::new(ScriptedGenerator::new(|_, i| {
        let a = if i % 3 == 2 { 7 } else { 8 + (i % 2) };
        format!("3 + 4 = {a}\n\nThe answer is {a}.")
    }))
}

async fn post(url: &str, path: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{url}{path}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_and_accounting_equal_the_strategy_run_directly() {
    let url = common::start(scripted(), GatewayConfig::default()).await;
    let models: Value = reqwest::get(format!("{url}/v1/models"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    for m in ["bon/arith", "weighted/arith", "beam/arith", "passthrough"] {
        assert!(ids.contains(&m), "{ids:?}");
    }
    for (model, strategy) in [
        ("bon/arith", ScaleStrategy::Bon),
        ("weighted/arith", ScaleStrategy::Weighted),
        ("beam/arith", ScaleStrategy::Beam),
    ] {
        let (status, r) = post(
            &url,
            "/v1/chat/completions",
            json!({"model": model, "seed": 5, "messages": [{"role": "user", "content": "What is 3 + 4?"}],
                   "stepwise": {"n": 4, "id": "p1", "tree": true}}),
        )
        .await;
        assert_eq!(status, 200, "{r}");
        // the same strategy run directly on the same problem, seed and settings
        let settings = SearchSettings {
            scorer: Some("arith".into()),
            seed: 5,
            ..SearchSettings::default()
        };
        let d = direct(
            scripted(),
            strategy,
            4,
            &settings,
            &Problem::new("p1", "What is 3 + 4?"),
        )
        .await;
        let mut got = r.clone();
        got["content"] = r["choices"][0]["message"]["content"].clone();
        assert_same_as_direct(model, &got, &d);
        let sw = &r["stepwise"];
        assert_eq!(sw["answer"], "7", "{model}: {r}");
        assert!(
            sw["tree"]["events"]
                .as_array()
                .is_some_and(|e| !e.is_empty()),
            "{r}"
        );
    }
    // text completions and pass-through
    let (status, r) = post(
        &url,
        "/v1/completions",
        json!({"model": "bon/arith@2", "prompt": "What is 3 + 4?"}),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["object"], "text_completion");
    assert_eq!(r["stepwise"]["candidates"].as_array().unwrap().len(), 2);
    let (status, r) = post(
        &url,
        "/v1/chat/completions",
        json!({"model": "passthrough", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["stepwise"]["strategy"], "passthrough");
    assert_eq!(r["stepwise"]["spent"]["policy_calls"], 1);
    // unknown models and bad n are named
    let (status, r) = post(
        &url,
        "/v1/chat/completions",
        json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(status, 404, "{r}");
    assert!(
        r["error"]["message"].as_str().unwrap().contains("gpt-4o"),
        "{r}"
    );
    let (status, _) = post(
        &url,
        "/v1/chat/completions",
        json!({"model": "bon/arith", "messages": [{"role": "user", "content": "hi"}], "stepwise": {"n": 1000}}),
    )
    .await;
    assert_eq!(status, 400);
    // streaming: progress comments, the answer, stepwise, usage, [DONE]
    let text = reqwest::Client::new()
        .post(format!("{url}/v1/chat/completions"))
        .json(
            &json!({"model": "bon/arith", "stream": true, "stream_options": {"include_usage": true},
                      "messages": [{"role": "user", "content": "What is 3 + 4?"}]}),
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains(": stepwise progress: calls=1"), "{text}");
    assert!(text.contains("\"stepwise\""), "{text}");
    assert!(text.contains("\"usage\""), "{text}");
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    let metrics = reqwest::get(format!("{url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("stepwise_gateway_requests_total"),
        "{metrics}"
    );
}

/// A policy whose first call finishes `ok` samples and then dies (like an upstream whose
/// server went away mid-request); it can also be held, to fill the gateway.
struct Dying {
    ok: usize,
    inner: Arc<dyn Generator>,
    calls: AtomicUsize,
    hold: Option<Arc<tokio::sync::Notify>>,
}

#[async_trait]
impl Generator for Dying {
    fn name(&self) -> String {
        "dying".into()
    }
    async fn generate(&self, _: &GenerateRequest) -> Result<Vec<Completion>, EngineError> {
        Err(EngineError::Internal("use generate_partial".into()))
    }
    async fn generate_partial(&self, req: &GenerateRequest) -> PartialGeneration {
        if let Some(h) = &self.hold {
            h.notified().await;
        }
        let first = self.calls.fetch_add(1, Ordering::SeqCst) == 0;
        let mut r = req.clone();
        r.params.n = if first { self.ok.min(req.params.n) } else { 0 };
        let completions = if r.params.n > 0 {
            self.inner.generate(&r).await.unwrap_or_default()
        } else {
            Vec::new()
        };
        PartialGeneration {
            indices: (0..completions.len()).collect(),
            completions,
            error: Some(EngineError::Http {
                endpoint: "http://127.0.0.1:9/v1/completions".into(),
                reason: "cannot connect".into(),
            }),
        }
    }
    async fn next_token_logprobs(
        &self,
        _: &Prompt,
        _: &str,
        _: &[String],
    ) -> Result<NextTokenLogprobs, EngineError> {
        Err(EngineError::Unsupported("logprobs"))
    }
}

/// `model` asked of a gateway whose policy finishes 3 samples of its first call and then
/// dies: the answer (200), marked partial.
async fn ask_dying(model: &str) -> Value {
    let dying = Arc::new(Dying {
        ok: 3,
        inner: scripted(),
        calls: AtomicUsize::new(0),
        hold: None,
    });
    let url = common::start(dying, GatewayConfig::default()).await;
    let body = json!({"model": model, "messages": [{"role": "user", "content": "What is 3 + 4?"}]});
    let (status, r) = post(&url, "/v1/chat/completions", body).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["stepwise"]["partial"], true, "{r}");
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dying_upstream_gives_the_best_so_far_marked_partial() {
    let r = ask_dying("bon/arith@8").await;
    let sw = &r["stepwise"];
    let why = sw["partial_reason"].as_str().unwrap();
    assert!(
        why.contains("3 of 8") && why.contains("cannot connect"),
        "{why}"
    );
    assert_eq!(sw["candidates"].as_array().unwrap().len(), 3);
    // sample 2 of the three that finished is the right one
    assert_eq!(sw["answer"], "7", "{r}");
}

/// Beam search whose upstream dies after the first step: the beams so far (one step each)
/// are the candidates, the best one the answer, marked partial.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dying_upstream_mid_beam_gives_the_beams_so_far() {
    let r = ask_dying("beam/arith@4").await;
    let sw = &r["stepwise"];
    assert!(
        sw["partial_reason"]
            .as_str()
            .is_some_and(|w| w.contains("3 of 4")),
        "{r}"
    );
    let cands = sw["candidates"].as_array().unwrap();
    assert!(!cands.is_empty() && cands.len() <= 3, "{r}");
    // one step each ("3 + 4 = 7", "3 + 4 = 8", "3 + 4 = 9"): the arith scorer prefers the true claim
    assert_eq!(r["choices"][0]["message"]["content"], "3 + 4 = 7", "{r}");
    assert_eq!(sw["spent"]["policy_calls"], 2, "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_max_concurrency_is_503_and_the_token_is_required() {
    let hold = Arc::new(tokio::sync::Notify::new());
    let held = Arc::new(Dying {
        ok: 1,
        inner: scripted(),
        calls: AtomicUsize::new(0),
        hold: Some(hold.clone()),
    });
    let config = GatewayConfig {
        max_concurrency: 1,
        auth_token: Some("s3cret".into()),
        ..GatewayConfig::default()
    };
    let url = common::start(held, config).await;
    let body = json!({"model": "bon/arith@2", "messages": [{"role": "user", "content": "What is 3 + 4?"}]});
    let client = reqwest::Client::new();
    let (status, _) = post(&url, "/v1/chat/completions", body.clone()).await;
    assert_eq!(status, 401);
    let first = {
        let (client, url, body) = (client.clone(), url.clone(), body.clone());
        tokio::spawn(async move {
            client
                .post(format!("{url}/v1/chat/completions"))
                .bearer_auth("s3cret")
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        })
    };
    // wait until the first request holds the only permit
    let t0 = std::time::Instant::now();
    loop {
        let h: Value = reqwest::get(format!("{url}/health"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if h["in_flight"] == 1 {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "{h}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let second = client
        .post(format!("{url}/v1/chat/completions"))
        .bearer_auth("s3cret")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(second.status().as_u16(), 503);
    assert_eq!(second.headers()["retry-after"], "1");
    // the official client sees the same 503 (its retries off)
    if let Some(py) = openai_python("openai client 503 check") {
        let calls = json!([{"kind": "chat", "model": "bon/arith@2", "max_retries": 0,
            "messages": [{"role": "user", "content": "What is 3 + 4?"}]}]);
        let r = openai(&py, &url, Some("s3cret"), calls).await;
        assert_eq!(r[0]["error"]["status"], 503, "{r:?}");
        assert!(
            r[0]["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("max_concurrency")),
            "{r:?}"
        );
    }
    hold.notify_waiters();
    hold.notify_one();
    assert_eq!(first.await.unwrap(), 200);
}

/// The calls of the official client for bon, weighted and beam at n, plus a stream.
pub fn strategy_calls(question: &str, n: usize, seed: u64, id: &str, extra: Value) -> Value {
    let mut calls = vec![json!({"kind": "models"})];
    for model in ["bon/arith", "weighted/arith", "beam/arith"] {
        let mut c = json!({"kind": "chat", "model": model, "seed": seed,
            "messages": [{"role": "user", "content": question}],
            "extra_body": {"stepwise": {"n": n, "id": id}}});
        if let (Some(o), Some(e)) = (c.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        calls.push(c);
    }
    Value::Array(calls)
}

/// The official `openai` Python client (from `$REPO/.venv`, made by `scripts/setup` from
/// `scripts/requirements-test.txt`) talks to the gateway unchanged: chat completions for
/// bon, weighted and beam with the `stepwise` field equal to the strategies run directly,
/// a text completion, and a stream with the `stepwise` field and usage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_openai_client_works_unchanged() {
    let Some(py) = openai_python("openai client test") else {
        return;
    };
    let url = common::start(scripted(), GatewayConfig::default()).await;
    let mut calls = strategy_calls("What is 3 + 4?", 4, 5, "p1", json!({}));
    if let Some(v) = calls.as_array_mut() {
        v.push(json!({"kind": "chat", "model": "bon/arith", "stream": true,
            "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": "What is 3 + 4?"}]}));
        v.push(
            json!({"kind": "completion", "model": "weighted/arith@3", "prompt": "What is 3 + 4?"}),
        );
    }
    let r = openai(&py, &url, None, calls).await;
    assert!(
        r[0]["models"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m == "beam/arith"),
        "{r:?}"
    );
    let settings = SearchSettings {
        scorer: Some("arith".into()),
        seed: 5,
        ..SearchSettings::default()
    };
    let problem = Problem::new("p1", "What is 3 + 4?");
    for (i, (model, strategy)) in [
        ("bon/arith", ScaleStrategy::Bon),
        ("weighted/arith", ScaleStrategy::Weighted),
        ("beam/arith", ScaleStrategy::Beam),
    ]
    .into_iter()
    .enumerate()
    {
        let d = direct(scripted(), strategy, 4, &settings, &problem).await;
        assert_same_as_direct(model, &r[i + 1], &d);
    }
    let stream = &r[4];
    assert!(
        stream["content"]
            .as_str()
            .unwrap()
            .contains("The answer is"),
        "{stream}"
    );
    assert!(
        stream["usage"]["completion_tokens"].as_u64().unwrap() > 0,
        "{stream}"
    );
    assert_eq!(stream["stepwise"]["answer"], "7", "{stream}");
    let text = &r[5];
    assert_eq!(
        text["stepwise"]["candidates"].as_array().map(Vec::len),
        Some(3),
        "{text}"
    );
}

fn user_text(p: &Prompt) -> String {
    match p {
        Prompt::Chat(m) => m.last().map(|m| m.content.clone()).unwrap_or_default(),
        Prompt::Text(t) => t.clone(),
    }
}

/// The text between `open` and `close` in `s`.
fn between<'a>(s: &'a str, open: &str, close: &str) -> &'a str {
    let start = s.find(open).map_or(0, |i| i + open.len());
    let end = s[start..].find(close).map_or(s.len(), |i| start + i);
    &s[start..end]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_can_pick_best_of_n_by_pairwise_verdicts() {
    // the policy as `scripted()`; as a pairwise judge it prefers the solution saying 9
    // (a wrong answer), so the pick shows whose verdict chose it
    let policy: Arc<dyn Generator> = Arc::new(ScriptedGenerator::new(|req, i| {
        let text = user_text(&req.prompt);
        if text.contains("[Solution A]") {
            let a = between(&text, "[Solution A]", "[End of Solution A]");
            let b = between(&text, "[Solution B]", "[End of Solution B]");
            return match (a.contains("is 9."), b.contains("is 9.")) {
                (true, false) => " A.\n[[A]]".into(),
                (false, true) => " B.\n[[B]]".into(),
                _ => " Both alike.".into(),
            };
        }
        let a = if i % 3 == 2 { 7 } else { 8 + (i % 2) };
        format!("3 + 4 = {a}\n\nThe answer is {a}.")
    }));
    let url = common::start(policy, GatewayConfig::default()).await;
    let ask = |select: Option<&str>| {
        let mut sw = json!({"n": 4, "id": "p1"});
        if let Some(s) = select {
            sw["select"] = json!(s);
        }
        json!({"model": "bon/arith", "seed": 5, "stepwise": sw,
               "messages": [{"role": "user", "content": "What is 3 + 4?"}]})
    };
    // by the arithmetic checker: 7
    let (status, r) = post(&url, "/v1/chat/completions", ask(None)).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["stepwise"]["answer"], "7", "{r}");
    // by the judge's verdicts: 9, with the judge's calls counted
    for select in ["pairwise-knockout", "pairwise-bt"] {
        let (status, r) = post(&url, "/v1/chat/completions", ask(Some(select))).await;
        assert_eq!(status, 200, "{select}: {r}");
        assert_eq!(r["stepwise"]["answer"], "9", "{select}: {r}");
        assert!(
            r["stepwise"]["spent"]["judge_calls"].as_u64().unwrap() > 0,
            "{select}: {r}"
        );
    }
    let (status, r) = post(&url, "/v1/chat/completions", ask(Some("score"))).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["stepwise"]["answer"], "7", "{r}");
    // a bad selector, and a strategy without samples to pick among, are 400s naming it
    let (status, r) = post(&url, "/v1/chat/completions", ask(Some("coin-flip"))).await;
    assert_eq!(status, 400, "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("stepwise.select"),
        "{r}"
    );
    let mut beam = ask(Some("pairwise-bt"));
    beam["model"] = json!("beam/arith");
    let (status, r) = post(&url, "/v1/chat/completions", beam).await;
    assert_eq!(status, 400, "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("bon's samples"),
        "{r}"
    );
}
