//! `stepwise serve --host` on an address other machines can reach: refused without an
//! auth token, served with `--insecure` (and a loud warning), served with a token.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn stepwise() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_stepwise"));
    c.env_remove("STEPWISE_AUTH_TOKEN");
    c
}

/// Kills the server when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `stepwise serve` with `args`; returns its stderr lines up to and including the
/// one saying where it listens (at most 60 s).
fn serve_until_listening(args: &[&str]) -> (Server, Vec<String>) {
    let mut child = stepwise()
        .args(["serve", "--port", "0"])
        .args(args)
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
            let done = line.contains("listening on");
            seen.push(line);
            if done {
                let _ = tx.send(seen);
                return;
            }
        }
    });
    let lines = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("stepwise serve did not say where it listens");
    (server, lines)
}

#[test]
fn a_reachable_host_without_a_token_is_refused() {
    let out = stepwise()
        .args(["serve", "--port", "0", "--host", "0.0.0.0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("without an auth token"), "{err}");
    assert!(err.contains("--insecure"), "{err}");
}

#[test]
fn insecure_serves_with_a_loud_warning_and_a_token_serves_quietly() {
    let (_s, lines) = serve_until_listening(&["--host", "0.0.0.0", "--insecure"]);
    let text = lines.join("\n");
    assert!(text.contains("INSECURE"), "{text}");
    let (_s, lines) = serve_until_listening(&["--host", "0.0.0.0", "--auth-token", "t0k"]);
    let text = lines.join("\n");
    assert!(!text.contains("INSECURE"), "{text}");
}
