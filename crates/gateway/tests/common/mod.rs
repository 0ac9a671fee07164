//! What the gateway's integration tests share: a gateway on a loopback port, the official
//! `openai` Python client driving it (`tests/py/openai_client.py`), and the strategy run
//! directly with the same settings, the accounting every answer is checked against.

#![allow(dead_code)] // each test file uses a part

use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use stepwise_core::{Budget, Problem};
use stepwise_gateway::{Gateway, GatewayConfig};
use stepwise_jobs::kinds::scale::ScaleStrategy;
use stepwise_jobs::kinds::solve::SearchSettings;
use stepwise_model::Generator;
use stepwise_search::jobs::{Backends, configured_strategy};
use stepwise_search::{Context, Outcome};

pub fn backends(policy: Arc<dyn Generator>) -> Backends {
    Backends {
        policy,
        judge: None,
        prm: Default::default(),
    }
}

/// A gateway over `policy` on a free loopback port: its base URL (no `/v1`).
pub async fn start(policy: Arc<dyn Generator>, config: GatewayConfig) -> String {
    let gw = Gateway::bind(
        "127.0.0.1:0".parse().unwrap(),
        config,
        backends(policy),
        false,
    )
    .await
    .unwrap();
    let url = format!("http://{}", gw.local_addr());
    tokio::spawn(async move { gw.run(std::future::pending()).await.unwrap() });
    url
}

/// The test venv's python with `openai` importable (`$REPO/.venv`, made by `scripts/setup`
/// from `scripts/requirements-test.txt`), or `None` after a SKIPPED line when
/// `STEPWISE_SKIP_PYTHON_TESTS=1`; any other lack fails the test.
pub fn openai_python(test: &str) -> Option<PathBuf> {
    let py = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    let ok = std::process::Command::new(&py)
        .args(["-c", "import openai"])
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Some(py);
    }
    if std::env::var("STEPWISE_SKIP_PYTHON_TESTS").as_deref() == Ok("1") {
        eprintln!(
            "\n!!!!!!!! SKIPPED: {test}: no {} with openai\n",
            py.display()
        );
        return None;
    }
    panic!(
        "{} cannot import openai: run scripts/setup (or set STEPWISE_SKIP_PYTHON_TESTS=1)",
        py.display()
    );
}

/// The calls (see `tests/py/openai_client.py`) made by the official client against
/// `url`, with `token` as its API key; one result per call.
pub async fn openai(py: &PathBuf, url: &str, token: Option<&str>, calls: Value) -> Vec<Value> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/py/openai_client.py");
    let mut cmd = tokio::process::Command::new(py);
    cmd.arg(&script)
        .arg(format!("{url}/v1"))
        .arg(calls.to_string());
    if let Some(t) = token {
        cmd.env("OPENAI_API_KEY", t);
    }
    let out = cmd.output().await.unwrap();
    assert!(
        out.status.success(),
        "openai client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// `strategy` with `n` run directly (no gateway) on `problem` under `settings`.
pub async fn direct(
    policy: Arc<dyn Generator>,
    strategy: ScaleStrategy,
    n: usize,
    settings: &SearchSettings,
    problem: &Problem,
) -> Outcome {
    let ctx = Context::from_settings(settings, &backends(policy)).unwrap();
    configured_strategy(strategy, n, settings)
        .solve(problem, &Budget::unlimited(), &ctx)
        .await
        .unwrap()
}

/// An answer of the gateway (as the openai client read it) equals the strategy's own run:
/// the chosen text, `usage` (the chosen sample's tokens, the prompt as the policy read
/// it, for sampling strategies), every `stepwise.spent` count but wall time, every candidate with its score and
/// tokens, the chosen index and answer.
pub fn assert_same_as_direct(label: &str, got: &Value, direct: &Outcome) {
    let sw = &got["stepwise"];
    let chosen = direct
        .chosen_sample()
        .unwrap_or_else(|| panic!("{label}: the direct run chose nothing"));
    assert_eq!(got["content"], chosen.text.as_str(), "{label}: {got}");
    assert_eq!(got["usage"]["completion_tokens"], chosen.tokens, "{label}");
    assert!(got["usage"]["prompt_tokens"].as_u64().unwrap() > 0, "{got}");
    // sampling strategies record the prompt each sample read: the client's prompt
    if let Some(p) = direct
        .samples
        .first()
        .map(|s| s.prompt_tokens)
        .filter(|&p| p > 0)
    {
        assert_eq!(got["usage"]["prompt_tokens"], p, "{label}");
    }
    let want = serde_json::to_value(direct.spent).unwrap();
    for (k, v) in want.as_object().unwrap() {
        if k != "wall_ms" {
            assert_eq!(&sw["spent"][k], v, "{label}: spent.{k}: {got}");
        }
    }
    assert_eq!(sw["answer"].as_str(), direct.answer.as_deref(), "{label}");
    assert_eq!(sw["chosen"].as_u64(), direct.chosen.map(|c| c as u64));
    assert_eq!(sw["partial"], false, "{label}: {got}");
    let cands = sw["candidates"].as_array().unwrap();
    assert_eq!(cands.len(), direct.samples.len(), "{label}");
    for (c, s) in cands.iter().zip(&direct.samples) {
        assert_eq!(c["text"], s.text.as_str(), "{label}");
        assert_eq!(c["tokens"], s.tokens, "{label}");
        assert_eq!(c["score"].as_f64(), s.score, "{label}");
    }
}
