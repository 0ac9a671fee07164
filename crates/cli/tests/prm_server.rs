//! `--scorer prm:URL`: step scores from a process reward model behind HTTP, end to end
//! through `stepwise eval processbench`.
//!
//! - against a live `stepwise serve` (the `stepwise` protocol): the remote arithmetic
//!   checker must give exactly the scores of the local one;
//! - against a server speaking vLLM's `/pooling` protocol for PRMs (a small test server
//!   in this file with a known rule, since no PRM model can be downloaded here);
//! - against nothing: a clear error naming the server, no panic, no results.

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn stepwise() -> Command {
    Command::new(env!("CARGO_BIN_EXE_stepwise"))
}

/// A tiny ProcessBench `gsm8k` subset: two records with a wrong claim, two without.
fn write_data(dir: &Path) {
    let pb = dir.join("processbench");
    std::fs::create_dir_all(&pb).unwrap();
    let recs = [
        (
            "gsm8k-a",
            vec!["She has 3 + 4 = 7 apples.", "Then 7 * 2 = 15.", "So 15."],
            1,
        ),
        (
            "gsm8k-b",
            vec!["5 + 5 = 11 cookies.", "The answer is 11."],
            0,
        ),
        (
            "gsm8k-c",
            vec!["2 + 2 = 4.", "4 * 3 = 12.", "The answer is 12."],
            -1,
        ),
        ("gsm8k-d", vec!["10 - 3 = 7.", "The answer is 7."], -1),
    ];
    let mut text = String::new();
    for (id, steps, label) in recs {
        let v = serde_json::json!({
            "id": id, "generator": "test", "problem": format!("Problem {id}?"),
            "steps": steps, "final_answer_correct": label == -1, "label": label,
        });
        text.push_str(&v.to_string());
        text.push('\n');
    }
    std::fs::write(pb.join("gsm8k.jsonl"), text).unwrap();
}

fn eval(data: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    stepwise()
        .arg("--data-dir")
        .arg(data)
        .args(["--quiet", "eval", "processbench", "--subsets", "gsm8k"])
        .arg("--out")
        .arg(out)
        .arg("--store")
        .arg(data.join("runs.sqlite"))
        .args(extra)
        .output()
        .expect("run stepwise")
}

/// id -> step scores of a results file.
fn scores(out: &Path) -> Vec<(String, Vec<f64>, u64)> {
    let text = std::fs::read_to_string(out.join("results.jsonl")).expect("results.jsonl");
    let mut v: Vec<(String, Vec<f64>, u64)> = text
        .lines()
        .map(|l| {
            let r: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                r["id"].as_str().unwrap().to_string(),
                r["scores"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap())
                    .collect(),
                r["prompt_tokens"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `stepwise serve` on a free port; returns it and its base URL.
fn start_serve() -> (Server, String) {
    let mut child = stepwise()
        .args(["serve", "--port", "0"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("start stepwise serve");
    let stderr = child.stderr.take().unwrap();
    let server = Server(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listening on ").nth(1) {
                let url = rest.split_whitespace().next().unwrap_or("").to_string();
                let _ = tx.send(url);
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("stepwise serve did not say where it listens");
    (server, url)
}

#[test]
fn remote_stepwise_server_scores_like_the_local_checker() {
    let dir = tempfile::tempdir().unwrap();
    write_data(dir.path());
    let (_server, url) = start_serve();
    let local = dir.path().join("local");
    let out = eval(dir.path(), &local, &["--scorer", "arith"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let remote = dir.path().join("remote");
    let spec = format!("prm:{url}");
    let out = eval(
        dir.path(),
        &remote,
        &[
            "--scorer",
            &spec,
            "--prm-protocol",
            "stepwise",
            "--prm-remote-scorer",
            "arith",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (a, b) = (scores(&local), scores(&remote));
    assert_eq!(a.len(), 4);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.0, y.0);
        assert_eq!(x.1, y.1, "scores of {}", x.0);
    }
    // the wrong claims are where the labels say
    assert!(b[0].1[1] < 0.5 && b[0].1[0] > 0.5, "{:?}", b[0]);
    assert!(b[1].1[0] < 0.5, "{:?}", b[1]);
    // the run in the store keeps the scorer, not its server (each worker of a shared
    // run may reach the PRM through a server of its own)
    let runs = stepwise()
        .args(["data", "runs", "--json", "--store"])
        .arg(dir.path().join("runs.sqlite"))
        .output()
        .unwrap();
    let runs: Vec<serde_json::Value> = String::from_utf8_lossy(&runs.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[1]["config"]["spec"], "prm");
    assert!(!runs[1]["config"].to_string().contains(&url), "{}", runs[1]);
    assert_eq!(runs[1]["kind"], "eval-processbench");
    // another server, the same scorer: a dead one fails the run with an error naming it
    let again = eval(dir.path(), &remote, &["--scorer", "prm:http://127.0.0.1:1"]);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("127.0.0.1:1"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}

/// Serves vLLM's pooling answer for a PRM: per step tag a `[negative, positive]` pair;
/// a step mentioning `= 15` or `= 11` (the wrong claims of the data) gets 0.2, others 0.9.
/// Returns the base URL and the request bodies it saw.
fn start_pooling_server() -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
) {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let url = common::json_server(move |path, req| {
        seen2.lock().unwrap().push(req.clone());
        if path != "/pooling" {
            return ("404 Not Found", String::new());
        }
        let assistant = req["messages"][2]["content"].as_str().unwrap_or("");
        let pairs: Vec<[f64; 2]> = assistant
            .split("<extra_0>")
            .filter(|s| !s.is_empty())
            .map(|s| {
                if s.contains("= 15") || s.contains("= 11") {
                    [0.8, 0.2]
                } else {
                    [0.1, 0.9]
                }
            })
            .collect();
        let answer = serde_json::json!({"id": "pool-1", "object": "list", "model": "prm",
            "data": [{"index": 0, "object": "pooling", "data": pairs}],
            "usage": {"prompt_tokens": 100, "total_tokens": 100}});
        ("200 OK", answer.to_string())
    });
    (url, seen)
}

#[test]
fn vllm_pooling_prm_finds_the_first_errors() {
    let dir = tempfile::tempdir().unwrap();
    write_data(dir.path());
    let (url, seen) = start_pooling_server();
    let out_dir = dir.path().join("vllm");
    let out = eval(
        dir.path(),
        &out_dir,
        &["--scorer", &format!("prm:{url}"), "--threshold", "0.5"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = scores(&out_dir);
    assert_eq!(s[0].1, vec![0.9, 0.2, 0.9]);
    assert_eq!(s[1].1, vec![0.2, 0.9]);
    assert_eq!(s[2].1, vec![0.9, 0.9, 0.9]);
    assert!(
        s.iter().all(|r| r.2 == 100),
        "prompt tokens are counted: {s:?}"
    );
    // every first error found, every correct solution accepted: F1 100
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("summary.json")).unwrap())
            .unwrap();
    let gsm = &summary["subsets"][0];
    assert_eq!(gsm["erroneous_hits"], 2, "{summary}");
    assert_eq!(gsm["correct_hits"], 2, "{summary}");
    let reqs = seen.lock().unwrap();
    assert_eq!(reqs.len(), 4, "one request per solution");
    let first = &reqs[0];
    assert_eq!(first["messages"][0]["role"], "system");
    assert_eq!(first["messages"][1]["role"], "user");
    assert!(
        first["messages"][2]["content"]
            .as_str()
            .unwrap()
            .ends_with("<extra_0>")
    );
}

#[test]
fn an_unreachable_prm_server_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    write_data(dir.path());
    let free = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", free.local_addr().unwrap());
    drop(free);
    let started = Instant::now();
    let out = eval(
        dir.path(),
        &dir.path().join("down"),
        &["--scorer", &format!("prm:{url}"), "--prm-retries", "1"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&url), "{err}");
    assert!(err.contains("cannot connect"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(60));
}
