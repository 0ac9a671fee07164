//! `solve` and `scale` with the prompt programs that read a stored run and make something
//! once per run (`mistakes:principle`, `handbook`), against a scripted OpenAI-compatible
//! server: what was prepared is stored in the run's config with its cost, a resumed run
//! asks the model nothing more, and a changed program is refused by name.

mod common;

use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use stepwise_store::{RunStore, SqliteStore};

fn stepwise() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_stepwise"));
    c.env_remove("STEPWISE_DETERMINISTIC");
    c
}

/// `a OP b` of the last `What is …?` in `prompt`, worked out.
fn last_sum(prompt: &str) -> Option<i64> {
    let at = prompt.rfind("What is ")?;
    let rest = &prompt[at + 8..];
    let expr = &rest[..rest.find('?')?];
    let parts: Vec<&str> = expr.split_whitespace().collect();
    let [a, op, b] = parts.as_slice() else {
        return None;
    };
    let (a, b): (i64, i64) = (a.parse().ok()?, b.parse().ok()?);
    match *op {
        "+" => Some(a + b),
        "-" | "−" => Some(a - b),
        "×" | "*" => Some(a * b),
        "÷" | "/" if b != 0 => Some(a / b),
        _ => None,
    }
}

/// Counts of the preparing calls the server saw, and of the samples of each prompt.
#[derive(Default)]
struct Seen {
    principles: AtomicUsize,
    mining: AtomicUsize,
    samples: Mutex<HashMap<String, i64>>,
}

/// A completions server: principle and mining prompts get fixed answers; a prompt's first
/// sample is its question's right answer, every later one (in this or a later request)
/// a wrong one.
fn server(seen: Arc<Seen>) -> String {
    common::json_server(move |_, req| {
        let prompt = req["prompt"].as_str().unwrap_or_default();
        let n = req["n"].as_u64().unwrap_or(1);
        let text = |_: u64| {
            if prompt.contains("answered wrongly") {
                "- Check each sum twice.".to_string()
            } else if prompt.contains("List the reusable reasoning moves") {
                "check-sum: work the sum out again before answering".to_string()
            } else {
                let k = seen.samples.lock().map_or(1, |mut m| {
                    let c = m.entry(prompt.to_string()).or_insert(0);
                    *c += 1;
                    *c - 1
                });
                let a = last_sum(prompt).unwrap_or(0) + k;
                format!("We compute it: {a}.\n\nThe answer is {a}.")
            }
        };
        if prompt.contains("answered wrongly") {
            seen.principles.fetch_add(1, Ordering::SeqCst);
        }
        if prompt.contains("List the reusable reasoning moves") {
            seen.mining.fetch_add(1, Ordering::SeqCst);
        }
        let choices: Vec<Value> = (0..n)
            .map(|i| json!({"index": i, "text": text(i), "finish_reason": "stop", "stop_reason": null}))
            .collect();
        let body = json!({
            "choices": choices,
            "usage": {"prompt_tokens": prompt.len() / 4, "completion_tokens": 10 * n},
        });
        ("200 OK", body.to_string())
    })
}

fn cmd(url: &str, store: &Path, args: &[&str]) -> Command {
    let mut c = stepwise();
    c.arg("--quiet")
        .args(args)
        .args(["--data", "arith:ops=1,n=6,seed=3", "--jobs", "1"])
        .args(["--endpoint", url, "--http-chat-mode", "chatml"])
        .args(["--http-retries", "0", "--store"])
        .arg(store);
    c
}

fn ok(c: &mut Command) -> Output {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{c:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn prompting_config(store: &Path, run: i64) -> Value {
    let s = SqliteStore::open(store).unwrap();
    s.run(run).unwrap().config["search"]["prompting"].clone()
}

#[test]
fn principles_and_handbook_are_prepared_once_stored_and_kept_on_resume() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s.sqlite");
    let out = dir.path().join("out");
    let seen = Arc::new(Seen::default());
    let url = server(seen.clone());
    // run 1: a plain run, every problem right at sample 0 and wrong at sample 1
    ok(&mut cmd(
        &url,
        &store,
        &["solve", "--strategy", "majority", "--n", "2"],
    ));

    // run 2: LEAP principles from run 1's mistakes; the fixed rule's 2 mistakes are
    // m1, m2 for problem 0, m0, m2 for problem 1 and m0, m1 for the other 4: 3 sets
    let principle = |extra: &[&str]| {
        let mut c = cmd(&url, &store, &["scale", "--strategies", "majority"]);
        c.args(["--n", "1,2", "--prompting", "mistakes:principle"])
            .args(["--mistakes-from", "run:1", "--shots", "2", "--out"])
            .arg(&out)
            .args(extra);
        c
    };
    let o = ok(&mut principle(&[]));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("Prompt program `mistakes:principle` prepared when the run was created: 3 model calls, 30 generated"),
        "{stdout}"
    );
    assert_eq!(seen.principles.load(Ordering::SeqCst), 3);
    let p = prompting_config(&store, 2);
    assert_eq!(p["mistakes"].as_array().unwrap().len(), 6);
    assert_eq!(p["principles"].as_array().unwrap().len(), 3);
    assert_eq!(p["principles"][0]["text"], "- Check each sum twice.");
    assert_eq!(p["prepared"]["policy_calls"], 3);
    assert_eq!(
        p["mistakes"][0]["right"]
            .as_str()
            .unwrap()
            .split("\n\n")
            .count(),
        2
    );

    // resumed: the stored principles are taken, no call; another program is refused
    ok(&mut principle(&["--resume", "2"]));
    assert_eq!(seen.principles.load(Ordering::SeqCst), 3);
    let o = principle(&["--resume", "2", "--demo-rule", "nearest"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("prompting.rule"), "{err}");

    // run 3: a handbook mined from run 1's verified traces (one call each), and the
    // generated tokens per sample with it vs run 1 without it
    let o = ok(cmd(&url, &store, &["scale", "--strategies", "majority"])
        .args(["--n", "1,2", "--prompting", "handbook", "--shots", "1"])
        .args(["--handbook-from", "run:1", "--out"])
        .arg(&out));
    assert_eq!(seen.mining.load(Ordering::SeqCst), 6);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("Handbook (1 behaviours from run:1): generated tokens per sample on the 6 problems both runs drew:"),
        "{stdout}"
    );
    let p = prompting_config(&store, 3);
    assert_eq!(p["handbook"][0]["name"], "check-sum");
    assert_eq!(p["prepared"]["policy_calls"], 6);

    // without a source run the flag is named
    let o = cmd(&url, &store, &["solve", "--strategy", "majority"])
        .args(["--prompting", "mistakes"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("needs --mistakes-from run:ID"), "{err}");
}
