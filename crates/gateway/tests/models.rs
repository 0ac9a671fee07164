//! The gateway over real models, driven by the official `openai` client: the
//! llama-cpp-python server the HTTP tests start (the default GGUF behind
//! `stepwise_http::reference`) and the embedded default model (deterministic). For `bon`,
//! `weighted` and `beam` the answer, `usage` and the `stepwise` field equal the strategy run
//! directly with the same seeds; the server killed mid-request gives the best candidate so
//! far, marked partial. Budgets are tiny and each model gets one thread: the two tests run
//! side by side on CI's 2 cores (llama.cpp's threads spin, so oversubscribing them is slow).

mod common;

use common::{assert_same_as_direct, direct, openai, openai_python};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use stepwise_core::Problem;
use stepwise_gateway::GatewayConfig;
use stepwise_http::reference::LlamaCppServer;
use stepwise_http::{ChatMode, HttpConfig, HttpGenerator};
use stepwise_jobs::kinds::scale::ScaleStrategy;
use stepwise_jobs::kinds::solve::SearchSettings;
use stepwise_llama::{EmbeddedConfig, LlamaGenerator, fetch};
use stepwise_model::Generator;

const QUESTION: &str = "What is 3 + 4 * 2?";
const STRATEGIES: [(&str, ScaleStrategy); 3] = [
    ("bon/arith", ScaleStrategy::Bon),
    ("weighted/arith", ScaleStrategy::Weighted),
    ("beam/arith", ScaleStrategy::Beam),
];

/// Small searches: short samples, two expansions, at most three steps.
fn settings() -> SearchSettings {
    SearchSettings {
        scorer: Some("arith".into()),
        seed: 5,
        max_tokens: 48,
        max_step_tokens: 24,
        expansions: 2,
        max_steps: 3,
        ..SearchSettings::default()
    }
}

fn config() -> GatewayConfig {
    GatewayConfig {
        search: settings(),
        passthrough: "smollm2".into(),
        ..GatewayConfig::default()
    }
}

/// bon, weighted and beam at `n` through the official client, each checked against the
/// strategy run directly on the same policy.
async fn served_equal_direct(
    py: &std::path::PathBuf,
    url: &str,
    policy: Arc<dyn Generator>,
    n: usize,
) {
    let mut calls = vec![json!({"kind": "models"})];
    for (model, _) in STRATEGIES {
        calls.push(json!({"kind": "chat", "model": model, "seed": 5,
            "messages": [{"role": "user", "content": QUESTION}],
            "extra_body": {"stepwise": {"n": n, "id": "q1"}}}));
    }
    let r = openai(py, url, None, Value::Array(calls)).await;
    let models = r[0]["models"].as_array().unwrap();
    for (m, _) in STRATEGIES {
        assert!(models.iter().any(|x| x == m), "{models:?}");
    }
    let problem = Problem::new("q1", QUESTION);
    for (i, (model, strategy)) in STRATEGIES.into_iter().enumerate() {
        let d = direct(policy.clone(), strategy, n, &settings(), &problem).await;
        assert_same_as_direct(model, &r[i + 1], &d);
        assert!(r[i + 1]["stepwise"]["spent"]["policy_tokens"].as_u64() > Some(0));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_llama_cpp_python_server() {
    let Some(py) = openai_python("gateway over llama-cpp-python") else {
        return;
    };
    let model = fetch::ensure_default_model().unwrap();
    let Some(mut server) =
        LlamaCppServer::start_or_skip(&model, 1, "gateway over llama-cpp-python")
            .await
            .unwrap()
    else {
        return;
    };
    let mut cfg = HttpConfig::new(vec![format!("{}/v1", server.url())]);
    cfg.chat_mode = ChatMode::ChatMl;
    // one request at a time, in the same order for the gateway and the direct run
    cfg.max_concurrency = 1;
    cfg.max_retries = 1;
    cfg.backoff_base = Duration::from_millis(50);
    let http = Arc::new(HttpGenerator::new(cfg).unwrap());
    let policy: Arc<dyn Generator> = http.clone();
    let url = common::start(policy.clone(), config()).await;
    served_equal_direct(&py, &url, policy.clone(), 2).await;

    // pass-through: one plain completion, usage as the server counted it
    let r = openai(
        &py,
        &url,
        None,
        json!([{"kind": "chat", "model": "smollm2", "max_tokens": 8, "seed": 1,
                "messages": [{"role": "user", "content": "Name a fruit."}]}]),
    )
    .await;
    let sw = &r[0]["stepwise"];
    assert_eq!(sw["strategy"], "passthrough", "{r:?}");
    assert_eq!(
        r[0]["usage"]["completion_tokens"],
        sw["spent"]["policy_tokens"]
    );
    assert_eq!(
        r[0]["usage"]["prompt_tokens"],
        sw["spent"]["policy_prompt_tokens"]
    );
    assert!(
        sw["spent"]["policy_tokens"]
            .as_u64()
            .is_some_and(|t| (1..=8).contains(&t))
    );

    // the server dies mid-request: the samples that finished are the candidates
    let stats = http.stats();
    let before = stats.requests_ok.load(Ordering::Relaxed);
    let calls = json!([{"kind": "chat", "model": "bon/arith@8", "max_tokens": 24, "max_retries": 0,
        "messages": [{"role": "user", "content": QUESTION}]}]);
    let client = {
        let (py, url) = (py.clone(), url.clone());
        tokio::spawn(async move { openai(&py, &url, None, calls).await })
    };
    let t0 = Instant::now();
    while stats.requests_ok.load(Ordering::Relaxed) < before + 2 {
        assert!(t0.elapsed() < Duration::from_secs(120), "no progress");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.kill();
    let r = client.await.unwrap();
    let sw = &r[0]["stepwise"];
    assert_eq!(sw["partial"], true, "{r:?}");
    let why = sw["partial_reason"].as_str().unwrap();
    assert!(
        why.contains("of 8 samples") && why.contains("upstream failed"),
        "{why}"
    );
    let got = sw["candidates"].as_array().unwrap().len();
    assert!((2..8).contains(&got), "{got} candidates: {r:?}");
    assert_eq!(sw["spent"]["policy_calls"], 1, "{r:?}");
    let tokens: u64 = sw["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["tokens"].as_u64())
        .sum();
    assert_eq!(sw["spent"]["policy_tokens"], tokens, "{r:?}");
    let chosen = sw["chosen"].as_u64().unwrap() as usize;
    assert_eq!(r[0]["content"], sw["candidates"][chosen]["text"], "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_embedded_model() {
    let Some(py) = openai_python("gateway over the embedded model") else {
        return;
    };
    let mut cfg = EmbeddedConfig::new(fetch::ensure_default_model().unwrap());
    cfg.threads = Some(1);
    cfg.deterministic = true;
    let policy: Arc<dyn Generator> = Arc::new(LlamaGenerator::open(cfg).unwrap());
    let url = common::start(policy.clone(), config()).await;
    served_equal_direct(&py, &url, policy, 2).await;
}
