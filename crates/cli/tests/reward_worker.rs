//! A `reward` run with a model-backed component (`kind = "scorer"`, the judge on an
//! OpenAI-compatible endpoint) started elsewhere is done by `stepwise worker`s that bring
//! the run's model: their units equal the single process's; a worker with another model
//! is refused, naming the difference.

mod common;

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use stepwise_store::{RunStatus, RunStore, SqliteStore};

/// A judge endpoint: P(Yes) = 0.9 when the judged text says "= 7", else 0.2.
fn judge_server() -> String {
    common::json_server(|path, req| {
        if path != "/v1/completions" {
            return (
                "404 Not Found",
                json!({"error": "no such path"}).to_string(),
            );
        }
        let prompt = req["prompt"].as_str().unwrap_or_default();
        let y: f64 = if prompt.contains("= 7") { 0.9 } else { 0.2 };
        let body = json!({
            "choices": [{"index": 0, "text": "Yes", "finish_reason": "length",
                "logprobs": {"tokens": ["Yes"], "token_logprobs": [y.ln()],
                             "top_logprobs": [{"Yes": y.ln(), "No": (1.0 - y).ln()}]}}],
            "usage": {"prompt_tokens": prompt.len() / 4, "completion_tokens": 1},
        });
        ("200 OK", body.to_string())
    })
}

fn cmd(store: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_stepwise"));
    c.arg("--quiet").args(args).arg("--store").arg(store);
    c
}

fn output(c: &mut Command) -> (bool, String) {
    let out = c.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn payloads(s: &dyn RunStore, run: i64) -> BTreeMap<String, Value> {
    s.units(run)
        .unwrap()
        .into_iter()
        .map(|u| (u.unit.key, u.unit.payload))
        .collect()
}

#[test]
fn a_reward_run_with_a_model_component_is_joined_by_workers_with_its_model() {
    let dir = tempfile::tempdir().unwrap();
    let url = judge_server();
    let config = dir.path().join("rewards.toml");
    std::fs::write(
        &config,
        "[[reward.components]]\nkind = \"accuracy\"\n[[reward.components]]\nkind = \"scorer\"\nspec = \"judge\"\nweight = 0.5\n",
    )
    .unwrap();
    let input = dir.path().join("in.jsonl");
    let text: String = (0..600)
        .map(|i| {
            let a = if i % 2 == 0 { 7 } else { 8 };
            format!(
                "{}\n",
                json!({"prompt": "What is 3 + 4?", "response": format!("3 + 4 = {a}. \\boxed{{{a}}}"), "gold": "7"})
            )
        })
        .collect();
    std::fs::write(&input, text).unwrap();
    let endpoint = ["--endpoint", url.as_str(), "--http-chat-mode", "chatml"];
    let one = dir.path().join("one.sqlite");
    let out = dir.path().join("out.jsonl");
    let (ok, log) = output(
        cmd(&one, &["reward", "--config", config.to_str().unwrap()])
            .args([
                "--in",
                input.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ])
            .args(endpoint),
    );
    assert!(ok, "{log}");
    // the judge's values reached the rewards: 1 + 0.5 × 0.9 for 7, 0.5 × 0.2 for 8
    let first: Value = serde_json::from_str(
        std::fs::read_to_string(&out)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert!(
        (first["reward"].as_f64().unwrap() - 1.45).abs() < 1e-6,
        "{first}"
    );

    // the same run, recreated unstarted in another store, done by two workers in turn
    let other = dir.path().join("other.sqlite");
    let info = SqliteStore::open(&one).unwrap().run(1).unwrap();
    let store = SqliteStore::open(&other).unwrap();
    assert_eq!(
        store
            .create_run(&info.kind, info.version, &info.config)
            .unwrap(),
        1
    );
    // a worker with another model is refused before it scores anything
    let (ok, log) = output(
        cmd(&other, &["worker", "--run", "1"])
            .args(endpoint)
            .args(["--model-name", "another-model"]),
    );
    assert!(!ok, "{log}");
    assert!(log.contains("another-model"), "{log}");
    assert!(payloads(&store, 1).is_empty());
    for _ in 0..2 {
        let (ok, log) =
            output(cmd(&other, &["worker", "--run", "1", "--jobs", "1"]).args(endpoint));
        assert!(ok, "{log}");
    }
    let info = store.run(1).unwrap();
    assert_eq!(info.status, RunStatus::Done);
    let single = SqliteStore::open(&one).unwrap();
    assert_eq!(payloads(&store, 1), payloads(&single, 1));
    assert_eq!(payloads(&store, 1).len(), 3, "600 lines in chunks of 256");
}
