//! `--log-format json` writes one JSON object per log event on stderr, with the event's
//! fields kept as fields (what log collectors need), and leaves stdout alone.

use std::process::Command;

fn stepwise() -> Command {
    Command::new(env!("CARGO_BIN_EXE_stepwise"))
}

#[test]
fn json_log_events_carry_their_fields() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pairs = dir.path().join("pairs.jsonl");
    std::fs::write(&pairs, "{\"gold\":\"1\",\"pred\":\"1.0\"}\nnot json\n").expect("write");
    let out = stepwise()
        .args(["--log-format", "json", "verify", "--skip-bad", "--jsonl"])
        .arg(&pairs)
        .output()
        .expect("run stepwise");
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let events: Vec<serde_json::Value> = stderr
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).expect("every log line is a JSON object"))
        .collect();
    let skipped = events
        .iter()
        .find(|e| e["message"] == "skipped malformed record")
        .unwrap_or_else(|| panic!("no skip event in {stderr}"));
    assert_eq!(skipped["level"], "WARN");
    assert_eq!(skipped["line"], 2);
    assert_eq!(skipped["file"], pairs.display().to_string());
    assert!(skipped["error"].as_str().is_some_and(|e| !e.is_empty()));
    // The verdicts still go to stdout as JSONL.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let first: serde_json::Value =
        serde_json::from_str(stdout.lines().next().expect("a verdict line")).expect("json");
    assert_eq!(first["verdict"], "equal");
}

#[test]
fn text_is_the_default_log_format() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pairs = dir.path().join("pairs.jsonl");
    std::fs::write(&pairs, "oops\n").expect("write");
    let out = stepwise()
        .args(["verify", "--skip-bad", "--jsonl"])
        .arg(&pairs)
        .output()
        .expect("run stepwise");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("skipped malformed record"), "{stderr}");
    assert!(!stderr.lines().any(|l| l.starts_with('{')), "{stderr}");
}
