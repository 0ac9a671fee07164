//! Files in and out of `stepwise data` and `verify --jsonl` (issue #14, defect 9): a
//! UTF-8 byte order mark is read past, a boolean gold answer is an error naming it,
//! `data convert` leaves no partial output when it fails, `data gen` streams (its memory
//! does not grow with `--n`), logs carry no colour codes when stderr is a file, and an
//! error's cause is printed once.
#![cfg(target_os = "linux")]

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn stepwise() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_stepwise"));
    c.env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .env_remove("STEPWISE_STORE");
    c
}

fn run(args: &[&str], dir: &Path) -> Output {
    stepwise()
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run stepwise")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_byte_order_mark_at_the_start_is_read_past() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("q.jsonl"),
        "\u{feff}{\"question\": \"1 + 1?\", \"gold\": \"2\"}\n{\"question\": \"2 + 2?\", \"gold\": 4}\n",
    )
    .unwrap();
    let out = run(&["data", "show", "q.jsonl", "--json"], dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let golds: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["gold"].to_string())
        .collect();
    assert_eq!(golds, ["\"2\"", "\"4\""]);

    std::fs::write(
        dir.path().join("p.jsonl"),
        "\u{feff}{\"gold\": \"1/2\", \"pred\": \"0.5\"}\n",
    )
    .unwrap();
    let out = run(&["verify", "--jsonl", "p.jsonl"], dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"verdict\":\"equal\""));
}

#[test]
fn a_boolean_gold_is_an_error_naming_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("q.jsonl"),
        "{\"question\": \"a?\", \"gold\": \"1\"}\n{\"question\": \"Is 2 even?\", \"gold\": true}\n",
    )
    .unwrap();
    let out = run(&["data", "show", "q.jsonl"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let e = stderr(&out);
    assert!(
        e.contains("q.jsonl:2: gold field 'gold' is a boolean (true), expected a string or number"),
        "{e}"
    );
}

/// Runs `data convert` with writes past `limit` bytes failing (RLIMIT_FSIZE, with
/// SIGXFSZ ignored so the write returns EFBIG as on a full disk).
fn convert_with_file_size_limit(dir: &Path, limit: u64) -> Output {
    let mut c = stepwise();
    c.args(["data", "convert", "in.jsonl", "out.jsonl"])
        .current_dir(dir)
        .stdin(Stdio::null());
    // SAFETY: only async-signal-safe calls (signal, setrlimit) between fork and exec.
    unsafe {
        c.pre_exec(move || {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let lim = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    c.output().expect("run stepwise")
}

#[test]
fn a_failed_convert_leaves_no_partial_output() {
    let dir = tempfile::tempdir().unwrap();
    let records: String = (0..5000)
        .map(|i| {
            format!(
                "{{\"question\": \"What is {i} + 1?\", \"gold\": \"{}\"}}\n",
                i + 1
            )
        })
        .collect();
    std::fs::write(dir.path().join("in.jsonl"), &records).unwrap();
    let out = convert_with_file_size_limit(dir.path(), 64 * 1024);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("out.jsonl"), "{}", stderr(&out));
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["in.jsonl"], "a partial output was left");

    // a file already there is kept as it was
    std::fs::write(dir.path().join("out.jsonl"), "{\"old\": 1}\n").unwrap();
    let out = convert_with_file_size_limit(dir.path(), 64 * 1024);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out.jsonl")).unwrap(),
        "{\"old\": 1}\n"
    );
    // and without the limit the conversion is whole
    let out = run(&["data", "convert", "in.jsonl", "out.jsonl"], dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out.jsonl"))
            .unwrap()
            .lines()
            .count(),
        5000
    );
}

/// Peak resident memory of `stepwise args` in KiB (wait4's rusage of the child).
#[allow(clippy::zombie_processes)] // reaped by wait4, which std's wait cannot replace here
fn peak_rss_kib(args: &[&str], dir: &Path) -> i64 {
    let child = stepwise()
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start stepwise");
    let mut status = 0;
    // SAFETY: rusage is plain data, zeroed is valid; the pid is our unwaited child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as i32);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{status}"
    );
    usage.ru_maxrss
}

#[test]
fn data_gen_streams_its_problems() {
    let dir = tempfile::tempdir().unwrap();
    // 200 000 problems held at once take ~700 MB; streamed, memory stays what one takes
    let big = peak_rss_kib(
        &[
            "data",
            "gen",
            "arith",
            "--ops",
            "2",
            "--n",
            "200000",
            "--out",
            "big.jsonl",
        ],
        dir.path(),
    );
    let lines = std::fs::read_to_string(dir.path().join("big.jsonl"))
        .unwrap()
        .lines()
        .count();
    assert_eq!(lines, 200_000);
    assert!(big < 150 * 1024, "data gen --n 200000 peaked at {big} KiB");
    let out = run(
        &["data", "gen", "arith", "--ops", "2", "--n", "3"],
        dir.path(),
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3);
}

#[test]
fn logs_to_a_file_have_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("p.jsonl"),
        "{\"gold\": \"1\", \"pred\": \"1\"}\nnot json\n",
    )
    .unwrap();
    let log = std::fs::File::create(dir.path().join("log.txt")).unwrap();
    let out = stepwise()
        .args(["verify", "--skip-bad", "--jsonl", "p.jsonl"])
        .current_dir(dir.path())
        .stderr(log)
        .output()
        .unwrap();
    assert!(out.status.success());
    let log = std::fs::read_to_string(dir.path().join("log.txt")).unwrap();
    assert!(log.contains("skipped malformed record"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "colour codes in a log file: {log:?}"
    );
}

#[test]
fn the_cause_of_an_error_is_printed_once() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["verify", "--jsonl", "/nonexistent/pairs.jsonl"],
        vec!["data", "show", "/nonexistent/q.jsonl"],
        vec!["data", "convert", "/nonexistent/q.jsonl", "out.parquet"],
    ] {
        let out = run(&args, dir.path());
        assert_eq!(out.status.code(), Some(1));
        let e = stderr(&out);
        assert_eq!(e.matches("os error 2").count(), 1, "stepwise {args:?}: {e}");
        assert!(e.contains("/nonexistent/"), "{e}");
    }
}
