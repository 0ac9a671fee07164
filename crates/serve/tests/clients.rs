//! The Python client examples in clients/ against the real server (skipped, loudly,
//! when python3 is missing).

mod common;

use common::*;

#[tokio::test]
async fn python_clients_work_against_the_server() {
    if std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED python_clients_work_against_the_server: python3 not found");
        return;
    }
    let mut r = start(config(
        "[reward]\npreset = \"deepseek-r1\"\n[sources.\"openai/gsm8k\"]\npreset = \"gsm8k\"",
    ))
    .await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../clients/test_clients.py");
    let out = tokio::process::Command::new("python3")
        .arg(script)
        .arg(&r.base)
        .output()
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("3 passed, 0 failed"), "{text}");
    r.shutdown();
}
