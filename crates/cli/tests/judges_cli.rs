//! The pairwise selector of best-of-N (`--select pairwise-knockout|pairwise-bt`) and the
//! Likert scorer (`--scorer likert`, `--criteria @FILE`) from the command line, on a
//! scripted OpenAI-compatible server that is both policy and judge, and the judgment
//! pairs built from the stored Likert run (`data pairs --rule likert-judgments`).

mod common;

use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

fn stepwise() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_stepwise"));
    c.env_remove("STEPWISE_DETERMINISTIC");
    c
}

/// The text between `open` and `close` in `s`.
fn between<'a>(s: &'a str, open: &str, close: &str) -> &'a str {
    let start = s.find(open).map_or(0, |i| i + open.len());
    let end = s[start..].find(close).map_or(s.len(), |i| start + i);
    &s[start..end]
}

/// Policy: its requests answer 8, 7, 9 in turn (3 + 4 = ...; the HTTP backend sends one
/// request per sample, so which sample gets which depends on arrival: the tests find the
/// one that says 7). Pairwise judge: prefers the solution that says 7, undecided
/// otherwise. Likert judge: rates a solution saying 7 as 5, 3, 4 in turn, any other 1.
fn server() -> String {
    let policy = AtomicUsize::new(0);
    let likert = AtomicUsize::new(0);
    common::json_server(move |path, req| {
        if path != "/v1/completions" {
            return (
                "404 Not Found",
                json!({"error": "no such path"}).to_string(),
            );
        }
        let prompt = req["prompt"].as_str().unwrap_or_default();
        let n = req["n"].as_u64().unwrap_or(1) as usize;
        let text = |_: usize| -> String {
            if prompt.contains("[Solution A]") {
                let a = between(prompt, "[Solution A]", "[End of Solution A]");
                let b = between(prompt, "[Solution B]", "[End of Solution B]");
                match (
                    a.contains("The answer is 7."),
                    b.contains("The answer is 7."),
                ) {
                    (true, false) => " A adds correctly.\n[[A]]".into(),
                    (false, true) => " B adds correctly.\n[[B]]".into(),
                    _ => " I cannot tell them apart.".into(),
                }
            } else if prompt.contains("Rate the solution") {
                let right =
                    between(prompt, "Solution:", "Rate the solution").contains("The answer is 7.");
                let k = if right {
                    [5, 3, 4][likert.fetch_add(1, Ordering::SeqCst) % 3]
                } else {
                    1
                };
                format!(" Checked.\nScore: {k}")
            } else {
                let a = [8, 7, 9][policy.fetch_add(1, Ordering::SeqCst) % 3];
                format!("3 + 4 = {a}\n\nThe answer is {a}.")
            }
        };
        let choices: Vec<Value> = (0..n)
            .map(|i| json!({"index": i, "text": text(i), "finish_reason": "stop", "stop_reason": null}))
            .collect();
        let body = json!({
            "choices": choices,
            "usage": {"prompt_tokens": prompt.len() / 4, "completion_tokens": 5 * n},
        });
        ("200 OK", body.to_string())
    })
}

fn run_ok(c: &mut Command) -> String {
    let out = c.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{c:?}: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn solve(dir: &Path, url: &str, store: &str, extra: &[&str]) -> Value {
    let data = dir.join("problems.jsonl");
    std::fs::write(
        &data,
        json!({"id": "q0", "question": "What is 3 + 4?", "answer": "7"}).to_string() + "\n",
    )
    .unwrap();
    let out = dir.join(format!("{store}.jsonl"));
    run_ok(
        stepwise()
            .args(["--quiet", "solve", "--data"])
            .arg(&data)
            .args(["--strategy", "bon", "--n", "3", "--jobs", "1"])
            .args([
                "--endpoint",
                url,
                "--http-chat-mode",
                "chatml",
                "--http-retries",
                "0",
            ])
            .args(extra)
            .arg("--store")
            .arg(dir.join(store))
            .arg("--out")
            .arg(&out),
    );
    let line = std::fs::read_to_string(&out).unwrap();
    serde_json::from_str(line.lines().next().unwrap()).unwrap()
}

/// The index of the sample that says 7 (there is one: the policy cycles 8, 7, 9).
fn seven(rec: &Value) -> usize {
    let samples = rec["samples"].as_array().unwrap();
    let i = samples.iter().position(|s| s["rationale"]["answer"] == "7");
    i.unwrap_or_else(|| panic!("no sample says 7: {rec:#}"))
}

fn notes(rec: &Value) -> Vec<String> {
    rec["trace"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["message"].as_str().map(String::from))
        .collect()
}

#[test]
fn best_of_n_by_pairwise_verdicts_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let url = server();
    // knockout over 3: 0-1, bye 2, then the winner against 2; the sample saying 7 wins
    // its matches, and a match of two others (no verdict) goes to the earlier one
    let rec = solve(
        dir.path(),
        &url,
        "ko.sqlite",
        &["--select", "pairwise-knockout"],
    );
    let right = seven(&rec);
    assert_eq!(rec["answer"].as_str(), Some("7"), "{rec:#}");
    assert_eq!(rec["chosen"].as_u64(), Some(right as u64));
    assert_eq!(rec["correct"], true);
    // 2 matches x 2 orders, 5 tokens each (the server's usage)
    assert_eq!(rec["spent"]["judge_calls"], 4);
    assert_eq!(rec["spent"]["judge_tokens"], 4 * 5);
    assert_eq!(rec["spent"]["policy_calls"], 1);
    let n = notes(&rec);
    let first = if right == 2 { 0 } else { right };
    assert_eq!(
        n[0],
        format!(
            "pairwise-knockout round 1: 0 vs 1 -> {first} (share of 0: {})",
            match right {
                0 => "1.00",
                1 => "0.00",
                _ => "no verdict",
            }
        )
    );
    assert_eq!(n[1], "pairwise-knockout round 1: bye 2");
    assert_eq!(
        n[2],
        format!(
            "pairwise-knockout round 2: {first} vs 2 -> {right} (share of {first}: {})",
            if right == 2 { "0.00" } else { "1.00" }
        )
    );
    let abstained = if right == 2 { 2 } else { 0 };
    assert_eq!(
        n[3],
        format!("pairwise-knockout: 2 pair(s), 4 judgment(s), {abstained} abstained")
    );
    // the stored config records the choice
    let runs = run_ok(
        stepwise()
            .args(["data", "runs", "--store"])
            .arg(dir.path().join("ko.sqlite")),
    );
    assert!(runs.contains("solve"), "{runs}");
    let conn = rusqlite_config(&dir.path().join("ko.sqlite"));
    assert_eq!(conn["search"]["pairwise"]["method"], "knockout");
    assert_eq!(conn["search"]["pairwise"]["both_orders"], true);
    // Bradley-Terry over every pair, one order only: 3 pairs x 1 order; 0-2 undecided
    let rec = solve(
        dir.path(),
        &url,
        "bt.sqlite",
        &["--select", "pairwise-bt", "--pairwise-one-order"],
    );
    let right = seven(&rec);
    assert_eq!(rec["chosen"].as_u64(), Some(right as u64));
    assert_eq!(rec["spent"]["judge_calls"], 3);
    // the sample saying 7 beat both others (pseudo-count 0.1: 11/13), the other pair is
    // undecided (1/13 each)
    let mut strengths = ["0.0769"; 3];
    strengths[right] = "0.8462";
    let n = notes(&rec);
    assert_eq!(
        n[0],
        format!("pairwise-bt strengths [{}]", strengths.join(", ")),
        "{n:?}"
    );
    assert_eq!(n[1], "pairwise-bt: 3 pair(s), 3 judgment(s), 1 abstained");
    // a selector without bon is refused, naming the reason
    let out = stepwise()
        .args(["--quiet", "solve", "--data"])
        .arg(dir.path().join("problems.jsonl"))
        .args(["--strategy", "majority", "--select", "pairwise-bt"])
        .args(["--endpoint", &url, "--http-retries", "0", "--store"])
        .arg(dir.path().join("bad.sqlite"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("bon"), "{stderr}");
}

/// The stored config of run 1 of a store (what `stepwise data runs` lists).
fn rusqlite_config(store: &Path) -> Value {
    use stepwise_store::RunStore;
    let s = stepwise_store::SqliteStore::open(store).unwrap();
    s.run(1).unwrap().config
}

#[test]
fn likert_scorer_with_criteria_and_its_judgment_pairs() {
    let dir = tempfile::tempdir().unwrap();
    let url = server();
    let criteria = dir.path().join("criteria.txt");
    std::fs::write(&criteria, "Is the sum right?").unwrap();
    let at = format!("@{}", criteria.display());
    let rec = solve(
        dir.path(),
        &url,
        "likert.sqlite",
        &[
            "--scorer",
            "likert",
            "--likert-samples",
            "3",
            "--criteria",
            &at,
        ],
    );
    // the sample saying 7 has mean (5 + 3 + 4) / 3 = 4 -> (4 - 1) / 4 = 0.75; the others 0
    let right = seven(&rec);
    assert_eq!(rec["chosen"].as_u64(), Some(right as u64));
    assert_eq!(rec["samples"][right]["score"], 0.75);
    assert_eq!(rec["samples"][(right + 1) % 3]["score"], 0.0);
    assert_eq!(rec["spent"]["judge_calls"], 3);
    let config = rusqlite_config(&dir.path().join("likert.sqlite"));
    assert_eq!(config["search"]["likert"]["criteria"], "Is the sum right?");
    assert_eq!(config["search"]["likert"]["samples"], 3);
    // judgment pairs from the stored run: only sample 1's judgments differ
    let out = dir.path().join("pairs.jsonl");
    run_ok(
        stepwise()
            .args([
                "--quiet",
                "data",
                "pairs",
                "--rule",
                "likert-judgments",
                "--from",
                "1",
            ])
            .arg("--out")
            .arg(&out)
            .arg("--store")
            .arg(dir.path().join("likert.sqlite")),
    );
    let rows: Vec<Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        rows[0]["chosen"][0]["content"],
        "Rationale: Checked.\nScore: 5"
    );
    assert_eq!(
        rows[0]["rejected"][0]["content"],
        "Rationale: Checked.\nScore: 3"
    );
    let user = rows[0]["prompt"][1]["content"].as_str().unwrap();
    assert!(
        user.contains("under these criteria:\nIs the sum right?"),
        "{user}"
    );
    // --criteria without a likert scorer is refused
    let bad = stepwise()
        .args(["--quiet", "solve", "--data"])
        .arg(dir.path().join("problems.jsonl"))
        .args(["--strategy", "bon", "--scorer", "arith", "--criteria", "x"])
        .args(["--endpoint", &url, "--store"])
        .arg(dir.path().join("bad.sqlite"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        !bad.status.success() && stderr.contains("--criteria"),
        "{stderr}"
    );
}
