//! Every command ends quietly when its stdout has no reader left (`stepwise … | head`):
//! nothing on stderr, and success or death by SIGPIPE (status 141 in a shell), never a
//! panic or an error about the broken pipe.
#![cfg(any(target_os = "linux", target_os = "macos"))]

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

const SIGPIPE: i32 = 13;

/// Runs stepwise with `args`, its stdout a pipe whose read end is closed before the
/// process starts (so its first write to stdout meets no reader, whatever the timing).
fn run_with_closed_stdout(args: &[&str]) {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_stepwise"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .env_remove("RUST_LOG")
        .output()
        .expect("run stepwise");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.is_empty(),
        "stepwise {args:?} wrote to stderr: {stderr}"
    );
    assert!(
        out.status.success() || out.status.signal() == Some(SIGPIPE),
        "stepwise {args:?} ended with {}",
        out.status
    );
}

#[test]
fn one_line_to_a_closed_stdout() {
    run_with_closed_stdout(&["verify", "--gold", "1", "--pred", "1"]);
}

#[test]
fn many_lines_to_a_closed_stdout() {
    run_with_closed_stdout(&["data", "show", "arith:ops=2,n=200,seed=7"]);
    run_with_closed_stdout(&["data", "gen", "arith", "--n", "500"]);
    run_with_closed_stdout(&["--help"]);
}

#[test]
fn buffered_verdicts_to_a_closed_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let pairs = dir.path().join("pairs.jsonl");
    let lines: String = (0..500)
        .map(|i| format!("{{\"gold\": \"{i}\", \"pred\": \"{i}/1\"}}\n"))
        .collect();
    std::fs::write(&pairs, lines).unwrap();
    run_with_closed_stdout(&["--quiet", "verify", "--jsonl", pairs.to_str().unwrap()]);
}

#[test]
fn a_real_error_is_still_reported_with_a_closed_stdout() {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_stepwise"))
        .args(["verify", "--jsonl", "/nonexistent/pairs.jsonl"])
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .expect("run stepwise");
    assert_eq!(out.status.code(), Some(1), "{}", out.status);
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/pairs.jsonl"));
}

/// A running `stepwise serve` with `stdout`, once it listens.
fn start_serve(stdout: Stdio) -> std::process::Child {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_stepwise"))
        .args(["serve", "--port", "0"])
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .expect("start stepwise serve");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains("listening on") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(std::time::Duration::from_secs(60))
        .expect("stepwise serve did not say it listens");
    child
}

fn send_sigpipe(child: &std::process::Child) {
    // SAFETY: kill(2) on the pid of a child we have not waited for.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGPIPE) }, 0);
}

/// A SIGPIPE that is not about stdout (a socket peer gone during a vectored write) must
/// stay an EPIPE error: the server lives on. With stdout's reader gone, it ends.
#[test]
fn sigpipe_ends_the_process_only_when_stdout_is_closed() {
    let mut alive = start_serve(Stdio::piped());
    send_sigpipe(&alive);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let still = alive.try_wait().unwrap();
    let _ = alive.kill();
    let _ = alive.wait();
    assert!(
        still.is_none(),
        "serve died of a SIGPIPE with stdout open: {still:?}"
    );

    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let mut closed = start_serve(writer.into());
    send_sigpipe(&closed);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        if let Some(s) = closed.try_wait().unwrap() {
            break Some(s);
        }
        if std::time::Instant::now() > deadline {
            let _ = closed.kill();
            let _ = closed.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(status.and_then(|s| s.signal()), Some(SIGPIPE), "{status:?}");
}
