//! `--log-format json` writes one JSON object per log event on stderr, with the event's
//! fields kept as fields (what log collectors need), and leaves stdout alone. Text logs
//! are coloured only on a terminal, and not with `NO_COLOR` set.

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

/// What `stepwise` logs when its stderr is a terminal (a pseudo-terminal here), with
/// `NO_COLOR` set to `no_color` or unset.
#[cfg(target_os = "linux")]
fn log_on_a_terminal(pairs: &std::path::Path, no_color: Option<&str>) -> String {
    use std::io::Read;
    use std::os::fd::FromRawFd;
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty writes two fds into the given ints; null name, termios and winsize
    // are allowed.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both fds were just opened and are owned by nothing else.
    let (mut master, slave) = unsafe {
        (
            std::fs::File::from_raw_fd(master),
            std::os::fd::OwnedFd::from_raw_fd(slave),
        )
    };
    let status = {
        let mut cmd = stepwise();
        cmd.args(["verify", "--skip-bad", "--jsonl"])
            .arg(pairs)
            .env_remove("RUST_LOG")
            .env_remove("NO_COLOR")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::from(slave));
        if let Some(v) = no_color {
            cmd.env("NO_COLOR", v);
        }
        cmd.status().expect("run stepwise")
        // the command, and with it the parent's copy of the terminal's slave end, is
        // dropped here: reading the master ends once the child is gone
    };
    assert!(status.success());
    let mut log = Vec::new();
    let mut buf = [0u8; 4096];
    // a pty master reads EIO once every slave end is closed
    while let Ok(n) = master.read(&mut buf) {
        if n == 0 {
            break;
        }
        log.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&log).into_owned()
}

#[cfg(target_os = "linux")]
#[test]
fn colours_only_on_a_terminal_and_never_with_no_color() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pairs = dir.path().join("pairs.jsonl");
    std::fs::write(&pairs, "{\"gold\":\"1\",\"pred\":\"1\"}\nnot json\n").expect("write");
    let tty = log_on_a_terminal(&pairs, None);
    assert!(tty.contains("skipped malformed record"), "{tty:?}");
    assert!(tty.contains('\u{1b}'), "a terminal gets colours: {tty:?}");
    for no_color in ["1", "true"] {
        let plain = log_on_a_terminal(&pairs, Some(no_color));
        assert!(plain.contains("skipped malformed record"), "{plain:?}");
        assert!(!plain.contains('\u{1b}'), "NO_COLOR={no_color}: {plain:?}");
    }
    // NO_COLOR set but empty does not count (no-color.org)
    assert!(log_on_a_terminal(&pairs, Some("")).contains('\u{1b}'));
}
