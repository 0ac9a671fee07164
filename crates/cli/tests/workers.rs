//! Several `stepwise` processes share one run through a real PostgreSQL (a throwaway
//! cluster started here): `scale` starts the run, `stepwise worker`s join it, each with
//! an endpoint of its own (scripted OpenAI-compatible servers whose answers depend only
//! on the request), and
//!
//! - one worker killed with SIGKILL mid-run: every unit is stored exactly once and the
//!   records equal a single-process SQLite run of the same seed;
//! - a worker stopped while it holds a lease (SIGSTOP: a dead or cut-off machine): its
//!   unit is claimed again once the lease ends, and its late write, when it wakes up,
//!   stores nothing twice;
//! - a worker whose endpoint dies stops, naming the error, and gives its units back; the
//!   run is not failed and the other worker finishes it (`data runs` shows the progress);
//! - an `annotate` run shared by workers on endpoints of their own, and `verify` and
//!   `eval-processbench` runs joined by workers, equal single-process SQLite runs; the
//!   trace explorer opens the PostgreSQL store read-only and lists them;
//! - a `data-build` run started elsewhere is done by workers that rebuild it from its
//!   stored config, and `data sft --resume` writes the single process's file from it.

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
        scripted_answer(req)
    })
}

/// The scripted policy's answer to a completions request.
fn scripted_answer(req: &Value) -> (&'static str, String) {
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
    scale_jobs(store, url, out, 1)
}

fn scale_jobs(store: &str, url: &str, out: &Path, jobs: usize) -> Command {
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
            &jobs.to_string(),
            "--out",
            out,
        ],
        store,
        url,
    )
}

fn worker(store: &str, url: &str) -> Command {
    worker_on(1, store, url)
}

fn worker_on(run: i64, store: &str, url: &str) -> Command {
    stepwise(
        &["worker", "--run", &run.to_string(), "--jobs", "1"],
        store,
        url,
    )
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

/// A scale test's setting: the single-process records, and a throwaway PostgreSQL with
/// its URL and a store on it.
struct Shared {
    dir: tempfile::TempDir,
    expected: BTreeMap<String, Value>,
    url: String,
    store: stepwise_store::PgStore,
}

impl Shared {
    /// `scale` starting the run, on a policy answering after `delay_ms`.
    fn start(&self, delay_ms: u64, jobs: usize) -> Child {
        let policy = scripted_policy(Duration::from_millis(delay_ms));
        let out = self.dir.path().join("started");
        scale_jobs(&self.url, &policy, &out, jobs).spawn().unwrap()
    }
}

/// The setting and the cluster (which must outlive the store).
fn shared() -> (Shared, TempCluster) {
    let dir = tempfile::tempdir().unwrap();
    let expected = reference(dir.path());
    let cluster = TempCluster::start().unwrap_or_else(|e| panic!("{e}"));
    let url = cluster.url();
    let store = pg(&cluster);
    (
        Shared {
            dir,
            expected,
            url,
            store,
        },
        cluster,
    )
}

#[test]
fn three_workers_one_killed_store_every_unit_once_and_equal_one_process() {
    let (s, _cluster) = shared();
    let (expected, url, store) = (&s.expected, s.url.as_str(), &s.store);
    let delay = Duration::from_millis(40);
    let first = s.start(40, 1);
    wait_for("the run to start", || store.run(1).is_ok());
    let second = worker(url, &scripted_policy(delay)).spawn().unwrap();
    let mut doomed = worker(url, &scripted_policy(delay)).spawn().unwrap();
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
    let got = records(store);
    assert_eq!(got.len(), expected.len());
    assert_eq!(
        &got, expected,
        "the records of three workers equal one process's"
    );
}

#[test]
fn a_stopped_workers_unit_is_reclaimed_after_its_lease_and_its_late_write_is_no_duplicate() {
    let (s, _cluster) = shared();
    let (expected, url, store) = (&s.expected, s.url.as_str(), &s.store);
    let sleeper = s.start(60, 1);
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
        worker(url, &scripted_policy(Duration::ZERO))
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
    let got = records(store);
    assert_eq!(got.len(), total, "the late write stored nothing twice");
    assert_eq!(&got, expected);
}

fn output_ok(c: &mut Command, what: &str) -> String {
    let out = c.stdout(Stdio::piped()).output().unwrap();
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `stepwise data runs` of `store` (the table, or JSON lines).
fn data_runs(store: &str, json: bool) -> String {
    let mut c = Command::new(env!("CARGO_BIN_EXE_stepwise"));
    c.args(["data", "runs", "--store", store]);
    if json {
        c.arg("--json");
    }
    output_ok(&mut c, "data runs")
}

#[test]
fn a_worker_whose_endpoint_dies_stops_and_the_others_finish_the_run() {
    let (s, _cluster) = shared();
    let (expected, url, store) = (&s.expected, s.url.as_str(), &s.store);
    // two units in flight, so it always holds a lease while the other worker fails
    let first = s.start(40, 2);
    wait_for("a unit done", || store.run(1).is_ok_and(|r| r.units >= 1));
    // an endpoint that answers twice, then fails every request
    let answered = std::sync::atomic::AtomicUsize::new(0);
    let dying = common::json_server(move |_, req| {
        if answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 2 {
            return scripted_answer(req);
        }
        (
            "500 Internal Server Error",
            json!({"error": "the GPU fell off the bus"}).to_string(),
        )
    });
    let out = worker(url, &dying).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("this worker stopped at unit") && stderr.contains("500"),
        "{stderr}"
    );
    let info = store.run(1).unwrap();
    assert_eq!(
        info.status,
        RunStatus::Running,
        "one worker's failure is not the run's: {:?}",
        info.error
    );
    let total = expected.len();
    assert!(info.units < total, "the run ended before the failure");
    let listed = data_runs(url, false);
    assert!(
        listed.contains(&format!("/{total} (")) && listed.contains("running"),
        "{listed}"
    );
    wait_ok(first, "the worker that goes on");
    let info = store.run(1).unwrap();
    assert_eq!((info.status, info.units), (RunStatus::Done, total));
    assert!(
        data_runs(url, false).contains(&format!("{total}/{total} (100%)")),
        "the finished run's progress"
    );
    let json: Value = serde_json::from_str(data_runs(url, true).trim()).unwrap();
    assert_eq!(
        (json["units"].as_u64(), json["total"].as_u64()),
        (Some(total as u64), Some(total as u64))
    );
    assert_eq!(
        json["workers"],
        json!([]),
        "no live worker once the run is done"
    );
    assert_eq!(&records(store), expected, "the failed unit was done again");
}

#[test]
fn annotate_workers_on_their_own_endpoints_equal_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let annotate = |store: &str, url: &str| {
        stepwise(
            &[
                "annotate",
                "--dataset",
                "arith:ops=2,n=6,seed=3",
                "--method",
                "mc",
                "--samples",
                "2",
                "--k",
                "2",
                "--seed",
                "9",
                "--concurrency",
                "1",
            ],
            store,
            url,
        )
    };
    let one = dir.path().join("one.sqlite");
    let one = one.to_str().unwrap();
    wait_ok(
        annotate(one, &scripted_policy(Duration::ZERO))
            .spawn()
            .unwrap(),
        "single-process annotate",
    );
    let expected = records(&SqliteStore::open(one).unwrap());
    assert_eq!(expected.len(), 6);

    let cluster = TempCluster::start().unwrap_or_else(|e| panic!("{e}"));
    let url = cluster.url();
    let store = pg(&cluster);
    let delay = Duration::from_millis(15);
    let first = annotate(&url, &scripted_policy(delay)).spawn().unwrap();
    wait_for("the run to start", || store.run(1).is_ok());
    // another endpoint URL, the same model: joined, not refused
    let said = output_ok(
        &mut worker(&url, &scripted_policy(delay)),
        "annotate worker",
    );
    wait_ok(first, "annotate");
    let mine: usize = said
        .split_whitespace()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{said}"));
    assert!((1..6).contains(&mine), "the worker did {mine} of 6 units");
    assert_eq!(store.run(1).unwrap().status, RunStatus::Done);
    assert_eq!(records(&store), expected);

    // another model is refused, naming both
    let other = common::json_server(|_, _| ("500 Internal Server Error", "{}".into()));
    let out = worker(&url, &other)
        .args(["--model-name", "another-model"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("another-model"),
        "{stderr}"
    );
}

/// A ProcessBench `gsm8k` subset whose steps the `arith` checker can judge.
fn processbench_dir(dir: &Path) -> std::path::PathBuf {
    let pb = dir.join("data/processbench");
    std::fs::create_dir_all(&pb).unwrap();
    let lines: Vec<String> = (0..10)
        .map(|i| {
            let wrong = i % 3 == 1;
            let second = if wrong { i * 2 + 1 } else { i * 2 };
            json!({"id": format!("pb-{i}"), "problem": format!("Twice {i}?"),
                   "steps": [format!("{i} + {i} = {second}"), format!("So {second}.")],
                   "label": if wrong { 0 } else { -1 }})
            .to_string()
        })
        .collect();
    std::fs::write(pb.join("gsm8k.jsonl"), lines.join("\n")).unwrap();
    dir.join("data")
}

/// The stored run `run` of the SQLite store at `path`, recreated (kind, version and
/// config, no unit done) as run `into` of `store`: a run started elsewhere.
fn recreate(path: &Path, run: i64, store: &dyn RunStore, into: i64) {
    let info = SqliteStore::open(path).unwrap().run(run).unwrap();
    let id = store
        .create_run(&info.kind, info.version, &info.config)
        .unwrap();
    assert_eq!(id, into);
}

#[test]
fn verify_and_processbench_runs_are_joined_by_workers_and_viewed_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let one = dir.path().join("one.sqlite");
    let single = one.to_str().unwrap();
    let cmd = |args: &[&str], store: &str| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_stepwise"));
        c.arg("--quiet")
            .args(args)
            .args(["--store", store, "--lease", "1"]);
        c
    };
    // verify: three chunks of pairs
    let pairs = dir.path().join("pairs.jsonl");
    let text: String = (0..5000)
        .map(|i| {
            format!(
                "{{\"gold\": \"{i}/2\", \"pred\": \"{}\"}}\n",
                f64::from(i) / 2.0 + f64::from(i % 3 == 0)
            )
        })
        .collect();
    std::fs::write(&pairs, text).unwrap();
    let pairs = pairs.to_str().unwrap();
    let verdicts = dir.path().join("verdicts.jsonl");
    output_ok(
        &mut cmd(
            &[
                "verify",
                "--jsonl",
                pairs,
                "--out",
                verdicts.to_str().unwrap(),
            ],
            single,
        ),
        "single-process verify",
    );
    // eval-processbench with the arith checker
    let data = processbench_dir(dir.path());
    let data = data.to_str().unwrap();
    let pb_out = dir.path().join("pb");
    output_ok(
        &mut cmd(
            &[
                "--data-dir",
                data,
                "eval",
                "processbench",
                "--scorer",
                "arith",
                "--subsets",
                "gsm8k",
                "--out",
                pb_out.to_str().unwrap(),
            ],
            single,
        ),
        "single-process eval processbench",
    );

    let cluster = TempCluster::start().unwrap_or_else(|e| panic!("{e}"));
    let url = cluster.url();
    let store = pg(&cluster);
    recreate(&one, 1, &store, 1);
    recreate(&one, 2, &store, 2);
    let sqlite = SqliteStore::open(&one).unwrap();
    for (run, extra) in [(1, vec![]), (2, vec!["--data-dir", data])] {
        let workers: Vec<Child> = (0..2)
            .map(|_| {
                cmd(&["worker", "--run", &run.to_string(), "--jobs", "1"], &url)
                    .args(&extra)
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for w in workers {
            wait_ok(w, "worker");
        }
        let info = store.run(run).unwrap();
        assert_eq!(info.status, RunStatus::Done, "run {run}");
        let payloads = |s: &dyn RunStore| -> BTreeMap<String, Value> {
            let units = s.units(run).unwrap().into_iter();
            units.map(|u| (u.unit.key, u.unit.payload)).collect()
        };
        let (got, want) = (payloads(&store), payloads(&sqlite));
        assert_eq!(got.len(), info.units, "run {run}: a unit twice");
        assert_eq!(got, want, "run {run} equals the single process's");
    }
    assert_eq!(store.units(1).unwrap().len(), 3, "three verify chunks");

    // the explorer over the PostgreSQL store lists both runs
    let mut view = Command::new(env!("CARGO_BIN_EXE_stepwise"))
        .args(["view", "--port", "0", "--store", &url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(view.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    std::io::Write::write_all(
        &mut conn,
        format!("GET /api/runs HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .unwrap();
    let mut body = String::new();
    std::io::Read::read_to_string(&mut conn, &mut body).unwrap();
    let _ = view.kill();
    let _ = view.wait();
    assert!(
        body.starts_with("HTTP/1.1 200")
            && body.contains("\"verify\"")
            && body.contains("\"eval-processbench\""),
        "{body}"
    );
}

/// `stepwise data sft --from 1 --rule majority` on `store` into `out` (continuing run
/// `resume` when given).
fn data_sft(store: &str, out: &Path, resume: Option<i64>) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_stepwise"));
    c.env_remove("STEPWISE_STORE")
        .args([
            "--quiet", "data", "sft", "--from", "1", "--rule", "majority",
        ])
        .arg("--out")
        .arg(out)
        .args(["--store", store]);
    if let Some(run) = resume {
        c.args(["--resume", &run.to_string()]);
    }
    c
}

#[test]
fn a_data_build_run_is_joined_by_workers_and_its_file_equals_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let policy = scripted_policy(Duration::ZERO);
    // one process on SQLite: a scale run (1) and a build from it (2)
    let one = dir.path().join("one.sqlite");
    let single = one.to_str().unwrap();
    wait_ok(
        scale(single, &policy, &dir.path().join("out-a"))
            .spawn()
            .unwrap(),
        "single-process scale",
    );
    let want_file = dir.path().join("one.jsonl");
    output_ok(
        &mut data_sft(single, &want_file, None),
        "single-process data sft",
    );
    // the same scale run in PostgreSQL, the build started elsewhere (run 2, no unit
    // done), and two workers that rebuild it from the stored config
    let cluster = TempCluster::start().unwrap_or_else(|e| panic!("{e}"));
    let url = cluster.url();
    let store = pg(&cluster);
    wait_ok(
        scale(&url, &policy, &dir.path().join("out-b"))
            .spawn()
            .unwrap(),
        "scale on PostgreSQL",
    );
    recreate(&one, 2, &store, 2);
    let workers: Vec<Child> = (0..2)
        .map(|_| worker_on(2, &url, &policy).spawn().unwrap())
        .collect();
    for w in workers {
        wait_ok(w, "data-build worker");
    }
    let info = store.run(2).unwrap();
    assert_eq!(info.status, RunStatus::Done);
    let payloads = |s: &dyn RunStore| -> BTreeMap<String, Value> {
        let units = s.units(2).unwrap().into_iter();
        units.map(|u| (u.unit.key, u.unit.payload)).collect()
    };
    let sqlite = SqliteStore::open(&one).unwrap();
    let (got, want) = (payloads(&store), payloads(&sqlite));
    assert_eq!(got.len(), info.units, "a unit twice");
    assert!(!want.is_empty());
    assert_eq!(got, want, "the workers' units equal the single process's");
    // the command writes the file from the stored rows: the single process's file
    let got_file = dir.path().join("two.jsonl");
    output_ok(
        &mut data_sft(&url, &got_file, Some(2)),
        "data sft --resume 2",
    );
    let rows = std::fs::read_to_string(&want_file).unwrap();
    assert!(!rows.is_empty(), "the build has rows");
    assert_eq!(std::fs::read_to_string(&got_file).unwrap(), rows);
}
