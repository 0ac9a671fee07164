//! `stepwise serve` with a model-backed reward: a `judge` component on the embedded
//! default model (SmolLM2-135M). Two concurrent requests are decoded in one batch (the
//! backend's statistics in `/metrics` show a decode batch of at least 2 sequences), and
//! with `max_model_requests = 1` a request arriving while another holds the model slot
//! gets 503. Kept small: short prompts, one verdict token per item.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Kills the server when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const CONFIG: &str = r#"
[server]
deadline_ms = 120000
max_model_requests = MAX

[[reward.components]]
kind = "accuracy"

[[reward.components]]
kind = "scorer"
spec = "judge"
as = "outcome"
weight = 0.5
"#;

/// Starts `stepwise serve` on the default model with `max_model_requests = max`; returns
/// it and its address once it listens (at most 5 min: the model is fetched on first use).
fn serve(dir: &std::path::Path, max: usize) -> (Server, SocketAddr) {
    let cfg = dir.join(format!("judge{max}.toml"));
    std::fs::write(&cfg, CONFIG.replace("MAX", &max.to_string())).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_stepwise"))
        .args(["serve", "--port", "0", "--threads", "2", "--config"])
        .arg(&cfg)
        .env_remove("STEPWISE_AUTH_TOKEN")
        .env_remove("STEPWISE_MODEL")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("start stepwise serve");
    let stderr = child.stderr.take().unwrap();
    let server = Server(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listening on http://").nth(1) {
                let addr = rest.split_whitespace().next().unwrap_or("").to_string();
                let _ = tx.send(Ok(addr));
                // keep draining: a closed pipe would stop the server at its next log line
                continue;
            }
            seen.push(line);
        }
        let _ = tx.send(Err(seen.join("\n")));
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(300))
        .expect("stepwise serve did not say where it listens")
        .unwrap_or_else(|log| panic!("stepwise serve stopped:\n{log}"));
    (server, addr.parse().unwrap())
}

/// One HTTP/1.1 exchange on its own connection: (status, body).
fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(300))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, body.to_string())
}

/// A `/v1/rewards` body of `n` short items.
fn items(n: usize) -> String {
    let items: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            serde_json::json!({
                "prompt": format!("What is {i} + 2?"),
                "response": format!("{i} + 2 = {}. The answer is \\boxed{{{}}}.", i + 2, i + 2),
                "gold": (i + 2).to_string(),
            })
        })
        .collect();
    serde_json::json!({ "items": items }).to_string()
}

/// The value of the metric line starting with `name` (labels included).
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn a_judge_on_the_default_model_batches_concurrent_requests_and_a_full_queue_is_503() {
    let dir = tempfile::tempdir().unwrap();
    let (server, addr) = serve(dir.path(), 4);
    // Two one-item requests at once (so a batch of two sequences holds both requests), a
    // few times if need be: the engine decodes what has arrived when it steps, so the
    // second request's prompt joins the first's batch unless the first finished before
    // it arrived.
    let mut max_seq = 0.0;
    for _round in 0..3 {
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let body = items(1);
                std::thread::spawn(move || http(addr, "POST", "/v1/rewards", &body))
            })
            .collect();
        for t in threads {
            let (status, body) = t.join().unwrap();
            assert_eq!(status, 200, "{body}");
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            for r in v["results"].as_array().unwrap() {
                let judge = r["components"]["judge"].as_f64().unwrap();
                assert!((0.0..=1.0).contains(&judge), "{r}");
                assert_eq!(r["components"]["accuracy"], 1.0, "{r}");
                // the judge read the prompt (its tokens counted) in one call per item
                assert_eq!(r["logs"]["judge.calls"], 1.0, "{r}");
                assert!(
                    r["logs"]["judge.prompt_tokens"].as_f64().unwrap() > 10.0,
                    "{r}"
                );
                assert_eq!(r["flags"]["model_failed"], false, "{r}");
            }
        }
        let (_, m) = http(addr, "GET", "/metrics", "");
        max_seq = metric(&m, "stepwise_model_batch_sequences_max{backend=\"policy\"}")
            .unwrap_or_else(|| panic!("no batch statistics in /metrics:\n{m}"));
        assert!(
            metric(
                &m,
                "stepwise_model_decode_batches_total{backend=\"policy\"}"
            )
            .unwrap()
                >= 1.0
        );
        if max_seq >= 2.0 {
            break;
        }
    }
    assert!(
        max_seq >= 2.0,
        "no decode batch held two sequences (max {max_seq})"
    );
    drop(server);

    // capacity 1: a long request holds the model slot, the next one gets 503
    let (_server, addr) = serve(dir.path(), 1);
    let long = {
        let body = items(24);
        std::thread::spawn(move || http(addr, "POST", "/v1/rewards", &body))
    };
    let mut held = false;
    for _ in 0..400 {
        let (_, m) = http(addr, "GET", "/metrics", "");
        if metric(&m, "stepwise_model_requests_in_flight") == Some(1.0) {
            held = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(held, "the long request never held the model slot");
    let (status, body) = http(addr, "POST", "/v1/rewards", &items(1));
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("max_model_requests (1)"), "{body}");
    let (status, body) = long.join().unwrap();
    assert_eq!(status, 200, "{body}");
    let (_, m) = http(addr, "GET", "/metrics", "");
    assert_eq!(
        metric(&m, "stepwise_model_requests_refused_total"),
        Some(1.0),
        "{m}"
    );
}
