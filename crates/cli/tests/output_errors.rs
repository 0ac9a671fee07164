//! Output errors end commands cleanly: a closed stdout (`stepwise … | head`) ends them
//! quietly, a full disk (`stepwise … > /dev/full`) is an error saying so; never a panic.
#![cfg(target_os = "linux")]

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output, Stdio};

const SIGPIPE: i32 = 13;

/// The commands of issue #14 that panicked on an output error (`model info` loads the
/// default model; it is in the cache whenever `model path` is).
fn commands() -> Vec<Vec<&'static str>> {
    vec![
        vec!["verify", "--gold", "5", "--pred", "5"],
        vec!["verify", "--gold", "5", "--pred", "5", "--json"],
        vec![
            "verify",
            "--gold",
            "5",
            "--pred",
            "The answer is 5.",
            "--text",
        ],
        vec!["annotate", "--print-policy-prompt"],
        vec!["annotate", "--print-judge-prompt"],
        vec!["model", "path"],
        vec!["model", "info"],
    ]
}

fn stepwise(args: &[&str], stdout: Stdio) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stepwise"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .env_remove("RUST_LOG")
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("run stepwise")
}

/// `model path` and `model info` need the default model; without it (no network to
/// fetch it) they are left out, saying so.
fn have_model() -> bool {
    let out = stepwise(&["model", "path"], Stdio::piped());
    if !out.status.success() {
        eprintln!(
            "!!!!!!!! model path/info left out: no default model ({})",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    out.status.success()
}

fn runnable() -> Vec<Vec<&'static str>> {
    let model = have_model();
    commands()
        .into_iter()
        .filter(|c| model || c[0] != "model")
        .collect()
}

#[test]
fn a_closed_stdout_ends_every_command_quietly() {
    for args in runnable() {
        let (reader, writer) = std::io::pipe().expect("a pipe");
        drop(reader);
        let out = stepwise(&args, writer.into());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("panicked"),
            "stepwise {args:?} panicked: {stderr}"
        );
        assert!(
            out.status.success() || out.status.signal() == Some(SIGPIPE),
            "stepwise {args:?} ended with {}: {stderr}",
            out.status
        );
        // `model info` logs while loading; nothing may be said about the pipe
        assert!(
            !stderr.to_lowercase().contains("pipe"),
            "stepwise {args:?}: {stderr}"
        );
    }
}

/// Runs `stepwise ARGS` with stdout on `/dev/full`; checks it did not panic and exited 1;
/// returns its stderr.
fn to_a_full_disk(args: &[&str]) -> String {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let out = stepwise(args, full.into());
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !stderr.contains("panicked"),
        "stepwise {args:?} panicked: {stderr}"
    );
    assert_eq!(out.status.code(), Some(1), "stepwise {args:?}: {stderr}");
    stderr
}

#[test]
fn a_full_disk_is_an_error_not_a_panic() {
    for args in runnable() {
        let stderr = to_a_full_disk(&args);
        assert!(
            stderr.contains("error: writing to stdout: No space left on device"),
            "stepwise {args:?}: {stderr}"
        );
    }
}

#[test]
fn data_commands_and_verdict_streams_report_a_full_disk_too() {
    let dir = tempfile::tempdir().unwrap();
    let pairs = dir.path().join("pairs.jsonl");
    std::fs::write(&pairs, "{\"gold\": \"1\", \"pred\": \"1\"}\n").unwrap();
    let pairs = pairs.to_str().unwrap();
    for args in [
        vec!["data", "show", "arith:ops=2,n=3,seed=7"],
        vec!["data", "gen", "arith", "--n", "3"],
        vec!["verify", "--jsonl", pairs],
    ] {
        let stderr = to_a_full_disk(&args);
        assert!(
            stderr.contains("No space left on device"),
            "stepwise {args:?}: {stderr}"
        );
        // the verdicts of `verify --jsonl` to stdout live in memory: nothing to resume
        assert!(!stderr.contains("--resume"), "stepwise {args:?}: {stderr}");
    }
}
