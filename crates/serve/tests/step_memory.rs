//! `/v1/step_rewards` with millions of one-character steps, against a real server on a
//! loopback port: refused with 413 naming the cap, quickly, with a small answer, and
//! without the server's memory growing far past the bodies it was sent. One test in
//! its own binary, so the process's peak memory (VmHWM) is this test's alone.

mod common;

use common::*;
use std::time::{Duration, Instant};
use stepwise_serve::config::Config;

/// The peak resident memory of this process in MiB (`VmHWM` in /proc/self/status).
fn peak_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: f64 = s
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// POSTs `body`, bounded in time; (status, answer text, seconds).
async fn post(r: &Running, body: String) -> (u16, String, f64) {
    let started = Instant::now();
    let resp = tokio::time::timeout(
        Duration::from_secs(60),
        r.client
            .post(r.url("/v1/step_rewards"))
            .header("content-type", "application/json")
            .body(body)
            .send(),
    )
    .await
    .expect("no answer within 60 s")
    .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, text, started.elapsed().as_secs_f64())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn millions_of_one_char_steps_are_refused_without_memory_growth() {
    let mut r = start(Config::default()).await;
    // 4.2 M one-character steps in a `steps` array (16.8 MB), and 4 M blank-line steps in
    // a `response` (12 MB): both well under max_body_bytes (32 MiB)
    let n = 4_200_000;
    let mut steps = String::with_capacity(n * 4 + 32);
    steps.push_str(r#"{"items": [{"steps": ["#);
    for i in 0..n {
        steps.push_str(if i == 0 { "\"a\"" } else { ",\"a\"" });
    }
    steps.push_str("]}]}");
    let response = format!(
        r#"{{"items": [{{"response": "{}"}}]}}"#,
        "a\\n\\n".repeat(4_000_000)
    );
    let before = peak_mib().unwrap_or(0.0);
    for (what, body) in [("steps", steps.clone()), ("response", response.clone())] {
        let (status, text, secs) = post(&r, body).await;
        assert_eq!(status, 413, "{what}: {}", &text[..text.len().min(300)]);
        assert!(text.contains("max_steps_per_item"), "{what}: {text}");
        assert!(text.len() < 1024, "{what}: a {} byte answer", text.len());
        eprintln!("{what}: 413 in {secs:.2} s");
    }
    // two at once
    let (a, b) = tokio::join!(post(&r, steps), post(&r, response));
    assert_eq!((a.0, b.0), (413, 413));
    let after = peak_mib().unwrap_or(0.0);
    eprintln!("peak memory {before:.0} MiB before, {after:.0} MiB after");
    // the test itself holds the two bodies (29 MB) and the client's copies; the server
    // holds each body once while it counts; far from the GBs that scoring 8 M steps took
    assert!(
        after - before < 300.0,
        "peak memory grew by {:.0} MiB",
        after - before
    );
    r.shutdown();
}
