//! Several `stepwise` processes share one run through a real PostgreSQL (a throwaway
//! cluster started here): `scale` starts the run, `stepwise worker`s join it, each with
//! an endpoint of its own (scripted OpenAI-compatible servers whose answers depend only
//! on the request), and
//!
//! - one worker killed with SIGKILL mid-run: every unit is stored exactly once and the
//!   records equal a single-process SQLite run of the same seed;
//! - a worker stopped while it holds a lease (SIGSTOP: a dead or cut-off machine): its
//!   unit is claimed again once the lease ends, and its late write, when it wakes up,
//!   stores nothing twice.

mod common;

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use stepwise_store::pg::TempCluster;
use stepwise_store::{RunStatus, RunStore, SqliteStore};

/// A completions server answering sample `i` from a hash of the prompt, seed and `i`.
fn scripted_policy(delay: Duration) -> String {
    common::json_server(move |_, req| {
        std::thread::sleep(delay);
        let prompt = req["prompt"].as_str().unwrap_or_default();
        let seed = req["seed"].as_u64().unwrap_or(0);
        let n = req["n"].as_u64().unwrap_or(1);
        let choices: Vec<Value> = (0..n)
            .map(|i| {
                let h = format!("{prompt}#{seed}#{i}")
                    .bytes()
                    .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
                json!({"index": i, "text": format!("So it is {}.\n\nThe answer is {}.", h % 5, h % 5),
                       "finish_reason": "stop"})
            })
            .collect();
        let usage = json!({"prompt_tokens": 10, "completion_tokens": 8 * n});
        (
            "200 OK",
            json!({"choices": choices, "usage": usage}).to_string(),
        )
    })
}

const DATA: &str = "arith:ops=1,n=16,seed=5";

/// `stepwise --quiet SUB… --store STORE --lease 1 --endpoint URL …`.
fn stepwise(sub: &[&str], store: &str, url: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_stepwise"));
    c.env_remove("STEPWISE_DETERMINISTIC")
        .env_remove("STEPWISE_STORE")
        .arg("--quiet")
        .args(sub)
        .args(["--store", store, "--lease", "1"])
        .args([
            "--endpoint",
            url,
            "--http-chat-mode",
            "chatml",
            "--http-retries",
            "0",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

fn scale(store: &str, url: &str, out: &Path) -> Command {
    let out = out.to_str().unwrap();
    stepwise(
        &[
            "scale",
            "--data",
            DATA,
            "--strategies",
            "majority",
            "--n",
            "1,2",
            "--jobs",
            "1",
            "--out",
            out,
        ],
        store,
        url,
    )
}

fn worker(store: &str, url: &str) -> Command {
    stepwise(&["worker", "--run", "1", "--jobs", "1"], store, url)
}

fn stable(mut v: Value) -> Value {
    if let Value::Object(m) = &mut v {
        m.remove("wall_ms");
        m.values_mut().for_each(|x| *x = stable(x.take()));
    } else if let Value::Array(a) = &mut v {
        a.iter_mut().for_each(|x| *x = stable(x.take()));
    }
    v
}

/// key → record of run 1, checking no key is stored twice.
fn records(store: &dyn RunStore) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for u in store.units(1).unwrap() {
        let key = u.unit.key.clone();
        assert!(
            out.insert(key.clone(), stable(u.unit.payload)).is_none(),
            "{key} twice"
        );
    }
    out
}

fn wait_ok(child: Child, what: &str) {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The single-process SQLite run of the same seed.
fn reference(dir: &Path) -> BTreeMap<String, Value> {
    let url = scripted_policy(Duration::ZERO);
    let path = dir.join("one.sqlite");
    let store = path.to_str().unwrap();
    wait_ok(
        scale(store, &url, &dir.join("out-a")).spawn().unwrap(),
        "reference run",
    );
    records(&SqliteStore::open(&path).unwrap())
}

fn pg(c: &TempCluster) -> stepwise_store::PgStore {
    stepwise_store::PgStore::connect(&c.url(), &Default::default()).unwrap()
}

#[test]
fn three_workers_one_killed_store_every_unit_once_and_equal_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let expected = reference(dir.path());
    let cluster = TempCluster::start().unwrap_or_else(|e| panic!("{e}"));
    let url = cluster.url();
    let store = pg(&cluster);
    let delay = Duration::from_millis(40);
    let first = scale(&url, &scripted_policy(delay), &dir.path().join("out-b"))
        .spawn()
        .unwrap();
    wait_for("the run to start", || store.run(1).is_ok());
    let second = worker(&url, &scripted_policy(delay)).spawn().unwrap();
    let mut doomed = worker(&url, &scripted_policy(delay)).spawn().unwrap();
    wait_for("three workers at work", || {
        store.workers(1).unwrap().len() == 3 && store.run(1).unwrap().units >= 3
    });
    doomed.kill().unwrap(); // SIGKILL, holding a lease
    let _ = doomed.wait();
    let at_kill = store.run(1).unwrap().units;
    assert!(at_kill < expected.len(), "killed after the end");
    wait_ok(first, "scale");
    wait_ok(second, "worker");
    let info = store.run(1).unwrap();
    assert_eq!(info.status, RunStatus::Done);
    let got = records(&store);
    assert_eq!(got.len(), expected.len());
    assert_eq!(
        got, expected,
        "the records of three workers equal one process's"
    );
}

#[test]
fn a_stopped_workers_unit_is_reclaimed_after_its_lease_and_its_late_write_is_no_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let expected = reference(dir.path());
    let cluster = TempCluster::start().unwrap_or_else(|e| panic!("{e}"));
    let url = cluster.url();
    let store = pg(&cluster);
    let sleeper = scale(
        &url,
        &scripted_policy(Duration::from_millis(60)),
        &dir.path().join("o"),
    )
    .spawn()
    .unwrap();
    let pid = sleeper.id().to_string();
    wait_for("a unit done and one leased", || {
        store.run(1).is_ok_and(|r| r.units >= 1) && store.workers(1).unwrap().len() == 1
    });
    let signal = |sig: &str| {
        assert!(
            Command::new("kill")
                .args([sig, &pid])
                .status()
                .unwrap()
                .success()
        );
    };
    signal("-STOP");
    let held = store.workers(1).unwrap();
    assert_eq!(
        (held.len(), held[0].units),
        (1, 1),
        "the stopped worker holds one unit"
    );
    let stopped_at = Instant::now();
    let before = store.run(1).unwrap().units;
    let total = expected.len();
    assert!(before < total);
    // a second worker does the rest, the stopped worker's unit once its lease is over
    wait_ok(
        worker(&url, &scripted_policy(Duration::ZERO))
            .spawn()
            .unwrap(),
        "worker",
    );
    assert!(
        stopped_at.elapsed() >= Duration::from_millis(900),
        "the unit was taken before the lease (1 s) ended"
    );
    let info = store.run(1).unwrap();
    assert_eq!((info.status, info.units), (RunStatus::Done, total));
    // the stopped worker wakes up, writes its unit late, finds nothing left and ends
    signal("-CONT");
    wait_ok(sleeper, "the woken worker");
    let got = records(&store);
    assert_eq!(got.len(), total, "the late write stored nothing twice");
    assert_eq!(got, expected);
}
