//! Every long command runs through the one job runner, and behaves the same way:
//!
//! - **SIGKILL mid-run, then `--resume`**: the resumed run ends with the same set of
//!   records as an uninterrupted run with the same seed, with no unit twice (`solve`,
//!   `scale`, `annotate`, `eval processbench`, `verify --jsonl`);
//! - **SIGINT**: the run is marked `interrupted`, the binary exits 130, and the run
//!   resumes to completion;
//! - **a unit that errors** marks the run `failed` with that error, and
//!   `stepwise data runs` shows it.
//!
//! Models are scripted servers on loopback (an OpenAI-compatible `/v1/completions` and a
//! vLLM-style `/pooling` PRM), each answering one request at a time after a short
//! delay, so a kill lands mid-run; their answers depend only on the request, so two
//! runs with the same seed ask and get the same.

mod common;

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use stepwise_store::{RunStatus, RunStore, SqliteStore};

/// The binary, with each command's own default decoding mode (a `STEPWISE_DETERMINISTIC`
/// of the caller's shell does not leak in; set to `false`, the embedded-model tests below
/// fail, which is how they were checked).
fn stepwise() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_stepwise"));
    c.env_remove("STEPWISE_DETERMINISTIC");
    c
}

fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

/// An OpenAI-compatible completions server whose answer to sample `i` depends only on
/// the prompt and the seed; a prompt holding `FAIL` gets a 400 (not retried).
fn policy_server(delay: Duration) -> String {
    common::json_server(move |path, req| {
        std::thread::sleep(delay);
        if path != "/v1/completions" {
            return (
                "404 Not Found",
                json!({"error": "no such path"}).to_string(),
            );
        }
        let prompt = req["prompt"].as_str().unwrap_or_default();
        if prompt.contains("FAIL") {
            return (
                "400 Bad Request",
                json!({"error": "the model cannot read this prompt"}).to_string(),
            );
        }
        let n = req["n"].as_u64().unwrap_or(1);
        let seed = req["seed"].as_u64().unwrap_or(0);
        let choices: Vec<Value> = (0..n)
            .map(|i| {
                let h = fnv(&format!("{prompt}|{seed}|{i}"));
                let a = h % 7;
                json!({
                    "index": i,
                    "text": format!("We compute {a} + 0 = {a}.\n\nThe answer is {a}."),
                    "finish_reason": "stop",
                    "stop_reason": null,
                })
            })
            .collect();
        let body = json!({
            "choices": choices,
            "usage": {"prompt_tokens": prompt.len() / 4, "completion_tokens": 12 * n},
        });
        ("200 OK", body.to_string())
    })
}

/// A vLLM-style `/pooling` PRM: one `[neg, pos]` pair per step tag, from the step text.
fn prm_server(delay: Duration) -> String {
    common::json_server(move |_, req| {
        std::thread::sleep(delay);
        let text = req["messages"]
            .as_array()
            .and_then(|m| m.last())
            .and_then(|m| m["content"].as_str())
            .or_else(|| req["input"].as_str())
            .unwrap_or_default()
            .to_string();
        let pairs: Vec<Value> = text
            .split("<extra_0>")
            .filter(|s| !s.trim().is_empty())
            .map(|s| {
                let p = (fnv(s) % 100) as f64 / 100.0;
                json!([1.0 - p, p])
            })
            .collect();
        let body = json!({"data": [{"data": pairs}], "usage": {"prompt_tokens": text.len() / 4}});
        ("200 OK", body.to_string())
    })
}

/// Finished units of `run` in the store at `path` (0 while it does not exist).
fn units(path: &Path, run: i64) -> usize {
    if !path.exists() {
        return 0;
    }
    SqliteStore::open(path)
        .ok()
        .and_then(|s| s.run(run).ok())
        .map_or(0, |r| r.units)
}

/// A stored record without what differs between two identical runs (wall time).
fn stable(mut v: Value) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(m) => {
                m.remove("wall_ms");
                m.values_mut().for_each(strip);
            }
            Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut v);
    v
}

/// key → record of every unit of `run`, checking that no key is stored twice.
fn records(path: &Path, run: i64) -> BTreeMap<String, Value> {
    let s = SqliteStore::open(path).unwrap();
    let mut out = BTreeMap::new();
    for u in s.units(run).unwrap() {
        let key = u.unit.key.clone();
        assert!(
            out.insert(key.clone(), stable(u.unit.payload)).is_none(),
            "unit {key} stored twice"
        );
    }
    out
}

fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{:?} failed: {}\n{}",
        cmd,
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A command of one job kind, against the store `store`.
type Make = dyn Fn(&Path) -> Command;

/// Runs `make` once to completion (store A); runs it again (store B), SIGKILLs it once
/// `min_units` are stored, resumes it with `--resume 1`, and checks B's records equal
/// A's, each once. Returns the number of units.
fn kill_resume_equals_uninterrupted(dir: &Path, make: &Make, min_units: usize) -> usize {
    kill_resume_in(dir, make, min_units, &|p: &Path| p.to_path_buf())
}

/// [`kill_resume_equals_uninterrupted`] for a command whose store lies at
/// `store_of(path given to make)`.
fn kill_resume_in(
    dir: &Path,
    make: &Make,
    min_units: usize,
    store_of: &dyn Fn(&Path) -> PathBuf,
) -> usize {
    let a_arg = dir.join("a.sqlite");
    let a = store_of(&a_arg);
    let started = Instant::now();
    run_ok(&mut make(&a_arg));
    // The second run may be slower than the first when other tests load the machine
    // (the embedded-model tests share two cores), so the wait for its first units
    // scales with how long the whole uninterrupted run took.
    let patience = Duration::from_secs(120).max(started.elapsed() * 3);
    let expected = records(&a, 1);
    let total = expected.len();
    assert!(
        total > min_units,
        "the job is too small to kill mid-run ({total} units)"
    );

    let b_arg = dir.join("b.sqlite");
    let b = store_of(&b_arg);
    let mut child: Child = make(&b_arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    loop {
        if units(&b, 1) >= min_units {
            child.kill().unwrap(); // SIGKILL
            break;
        }
        if let Some(s) = child.try_wait().unwrap() {
            panic!("the run finished ({s}) before it could be killed");
        }
        assert!(
            t0.elapsed() < patience,
            "no progress in {patience:?} ({} of {min_units} units stored)",
            units(&b, 1)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.wait();
    let after_kill = units(&b, 1);
    assert!(
        after_kill < total,
        "killed after the end ({after_kill} of {total})"
    );
    let info = SqliteStore::open(&b).unwrap().run(1).unwrap();
    assert_eq!(
        info.status,
        RunStatus::Running,
        "a killed run looks like a running one"
    );

    run_ok(make(&b_arg).args(["--resume", "1"]));
    let got = records(&b, 1);
    assert_eq!(got.len(), total);
    for (key, want) in &expected {
        assert_eq!(got.get(key), Some(want), "unit {key} differs after resume");
    }
    let info = SqliteStore::open(&b).unwrap().run(1).unwrap();
    assert_eq!(info.status, RunStatus::Done);
    total
}

/// The flags that point a command at the scripted policy server.
fn endpoint(url: &str) -> [&str; 6] {
    [
        "--endpoint",
        url,
        "--http-chat-mode",
        "chatml",
        "--http-retries",
        "0",
    ]
}

fn solve_cmd(url: String) -> impl Fn(&Path) -> Command {
    move |store: &Path| {
        let mut c = stepwise();
        c.args(["--quiet", "solve", "--data", "arith:ops=1,n=10,seed=3"])
            .args(["--strategy", "majority", "--n", "2", "--jobs", "1"])
            .args(endpoint(&url))
            .arg("--store")
            .arg(store);
        c
    }
}

#[test]
fn solve_killed_and_resumed_equals_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let url = policy_server(Duration::from_millis(40));
    let n = kill_resume_equals_uninterrupted(dir.path(), &solve_cmd(url), 3);
    assert_eq!(n, 10);
}

#[test]
fn scale_killed_and_resumed_equals_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let url = policy_server(Duration::from_millis(40));
    let out = dir.path().join("scale-out");
    let make = move |store: &Path| {
        let mut c = stepwise();
        c.args(["--quiet", "scale", "--data", "arith:ops=1,n=10,seed=4"])
            .args(["--strategies", "majority", "--n", "1,2", "--jobs", "1"])
            .args(endpoint(&url))
            .arg("--out")
            .arg(&out)
            .arg("--store")
            .arg(store);
        c
    };
    assert_eq!(kill_resume_equals_uninterrupted(dir.path(), &make, 3), 10);
    assert!(dir.path().join("scale-out/scale.md").is_file());
}

#[test]
fn annotate_killed_and_resumed_equals_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let make = |store: &Path| {
        let mut c = stepwise();
        c.args([
            "--quiet",
            "annotate",
            "--dataset",
            "arith:ops=3,n=6,seed=11",
        ])
        .args(["--method", "mc,grounded", "--samples", "2", "--seed", "42"])
        .args([
            "--scripted-policy",
            "--scripted-delay-ms",
            "15",
            "--concurrency",
            "2",
        ])
        .arg("--store")
        .arg(store);
        c
    };
    assert_eq!(kill_resume_equals_uninterrupted(dir.path(), &make, 3), 12);
}

/// A ProcessBench `gsm8k` subset of `n` records.
fn processbench_data(dir: &Path, n: usize) -> PathBuf {
    let data = dir.join("data");
    std::fs::create_dir_all(data.join("processbench")).unwrap();
    let mut text = String::new();
    for i in 0..n {
        let label = if i % 2 == 0 { -1 } else { 1 };
        let rec = json!({
            "id": format!("gsm8k-{i}"), "generator": "test",
            "problem": format!("Problem {i}: what is {i} + 2?"),
            "steps": [format!("{i} + 1 = {}", i + 1), format!("{} + 1 = {}", i + 1, i + 2 + usize::from(label > 0)), "Done."],
            "final_answer_correct": label < 0, "label": label,
        });
        text.push_str(&rec.to_string());
        text.push('\n');
    }
    std::fs::write(data.join("processbench/gsm8k.jsonl"), text).unwrap();
    data
}

#[test]
fn eval_processbench_killed_and_resumed_equals_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let data = processbench_data(dir.path(), 12);
    let url = prm_server(Duration::from_millis(40));
    let out = dir.path().join("pb-out");
    let make = move |store: &Path| {
        let mut c = stepwise();
        c.arg("--data-dir")
            .arg(&data)
            .args(["--quiet", "eval", "processbench", "--subsets", "gsm8k"])
            .args(["--scorer", &format!("prm:{url}"), "--prm-retries", "0"])
            .args(["--concurrency", "1"])
            .arg("--out")
            .arg(&out)
            .arg("--store")
            .arg(store);
        c
    };
    assert_eq!(kill_resume_equals_uninterrupted(dir.path(), &make, 3), 12);
    let results = std::fs::read_to_string(dir.path().join("pb-out/results.jsonl")).unwrap();
    assert_eq!(results.lines().count(), 12);
}

#[test]
fn verify_jsonl_killed_and_resumed_equals_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    // 12 chunks of pairs whose verification takes real work (rational functions)
    let input = dir.path().join("pairs.jsonl");
    let mut text = String::new();
    for i in 0..(12 * 2048) {
        let k = i % 97 + 2;
        let pred = if i % 3 == 0 {
            format!("\\\\frac{{x^2 - {0}}}{{x - {k}}}", k * k)
        } else {
            format!("x + {}", k + i % 2)
        };
        text.push_str(&json!({"gold": format!("x + {k}"), "pred": pred, "id": i}).to_string());
        text.push('\n');
    }
    std::fs::write(&input, text).unwrap();
    let verdicts = dir.path().join("verdicts.jsonl");
    let make = move |store: &Path| {
        let mut c = stepwise();
        c.args(["--quiet", "verify", "--jsonl"])
            .arg(&input)
            .arg("--out")
            .arg(&verdicts)
            .arg("--store")
            .arg(store);
        c
    };
    assert_eq!(kill_resume_equals_uninterrupted(dir.path(), &make, 2), 12);
    let lines = std::fs::read_to_string(dir.path().join("verdicts.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 12 * 2048);
    let first: Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    assert_eq!(
        (first["line"].as_u64(), first["verdict"].as_str()),
        (Some(1), Some("equal"))
    );
}

#[test]
fn sigint_marks_the_run_interrupted_and_it_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let url = policy_server(Duration::from_millis(40));
    let store = dir.path().join("runs.sqlite");
    let make = solve_cmd(url);
    let mut child = make(&store).stderr(Stdio::piped()).spawn().unwrap();
    let t0 = Instant::now();
    while units(&store, 1) < 2 {
        assert!(t0.elapsed() < Duration::from_secs(120), "no progress");
        assert!(child.try_wait().unwrap().is_none(), "finished too early");
        std::thread::sleep(Duration::from_millis(5));
    }
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("interrupted") && stderr.contains("--resume 1"),
        "{stderr}"
    );
    let info = SqliteStore::open(&store).unwrap().run(1).unwrap();
    assert_eq!(info.status, RunStatus::Interrupted);
    assert!(info.units >= 2 && info.units < 10, "{} units", info.units);
    let listed = run_ok(stepwise().args(["data", "runs", "--store"]).arg(&store));
    assert!(String::from_utf8_lossy(&listed.stdout).contains("interrupted"));
    run_ok(make(&store).args(["--resume", "1"]));
    let info = SqliteStore::open(&store).unwrap().run(1).unwrap();
    assert_eq!((info.status, info.units), (RunStatus::Done, 10));
}

#[test]
fn a_failing_unit_marks_the_run_failed_and_data_runs_shows_why() {
    let dir = tempfile::tempdir().unwrap();
    let url = policy_server(Duration::ZERO);
    let data = dir.path().join("problems.jsonl");
    let mut text = String::new();
    for (i, q) in [
        "What is 1 + 1?",
        "What is 2 + 2?",
        "FAIL: what is 3 + 3?",
        "What is 4 + 4?",
    ]
    .iter()
    .enumerate()
    {
        text.push_str(&json!({"id": format!("q{i}"), "question": q, "answer": "2"}).to_string());
        text.push('\n');
    }
    std::fs::write(&data, text).unwrap();
    let store = dir.path().join("runs.sqlite");
    let out = stepwise()
        .args(["--quiet", "solve", "--data"])
        .arg(&data)
        .args(["--strategy", "majority", "--n", "1", "--jobs", "1"])
        .args(endpoint(&url))
        .arg("--store")
        .arg(&store)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("failed at unit 'q2'"), "{stderr}");
    let info = SqliteStore::open(&store).unwrap().run(1).unwrap();
    assert_eq!((info.status, info.units), (RunStatus::Failed, 2));
    assert!(info.error.as_deref().unwrap_or_default().contains("q2"));
    let listed = run_ok(stepwise().args(["data", "runs", "--store"]).arg(&store));
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.contains("failed"), "{listed}");
    assert!(
        listed.contains("error: unit 'q2'") && listed.contains("400"),
        "{listed}"
    );
}

fn shared_data() -> PathBuf {
    if let Some(d) = std::env::var_os("STEPWISE_DATA") {
        return PathBuf::from(d);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
}

#[test]
fn head_train_features_killed_and_resumed_equal_an_uninterrupted_run() {
    // the embedded default model over real ProcessBench records; the feature store of
    // `--cache DIR` is DIR/features.sqlite
    let dir = tempfile::tempdir().unwrap();
    let make = |store: &Path| {
        let mut c = stepwise();
        c.arg("--data-dir")
            .arg(shared_data())
            .args(["--quiet", "head", "train", "--data", "processbench:gsm8k"])
            .args([
                "--limit",
                "10",
                "--balanced",
                "--threads",
                "2",
                "--ctx-size",
                "4096",
            ])
            .arg("--out")
            .arg(store.with_extension("head.json"))
            .arg("--cache")
            .arg(store.with_extension("cache"));
        c
    };
    let store_of = |p: &Path| p.with_extension("cache").join("features.sqlite");
    assert_eq!(kill_resume_in(dir.path(), &make, 3, &store_of), 10);
    let head: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("b.head.json")).unwrap())
            .unwrap();
    assert_eq!(head["dim"], 576);
}

/// The stored configuration of run 1 of `store`.
fn stored_config(store: &Path) -> Value {
    SqliteStore::open(store).unwrap().run(1).unwrap().config
}

/// `scale` on the embedded default model, where llama.cpp's logits depend on what else the
/// engine batched or cached: in deterministic mode (the default of `scale`) a killed and
/// resumed run equals an uninterrupted one byte for byte, also with two units at a time.
#[test]
fn scale_on_the_embedded_model_killed_and_resumed_is_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("scale-out");
    let make = move |store: &Path| {
        let mut c = stepwise();
        c.args(["--quiet", "scale", "--data", "arith:ops=1,n=8,seed=4"])
            .args(["--strategies", "majority", "--n", "1,3", "--jobs", "2"])
            .args(["--max-tokens", "40", "--threads", "2", "--ctx-size", "4096"])
            .arg("--out")
            .arg(&out)
            .arg("--store")
            .arg(store);
        c
    };
    assert_eq!(kill_resume_equals_uninterrupted(dir.path(), &make, 3), 8);
    assert_eq!(
        stored_config(&dir.path().join("b.sqlite"))["reproducible"],
        true
    );
}

/// `annotate` (Monte-Carlo rollouts) on the embedded default model, deterministic by
/// default: a killed and resumed run equals an uninterrupted one byte for byte.
#[test]
fn annotate_on_the_embedded_model_killed_and_resumed_is_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let make = |store: &Path| {
        let mut c = stepwise();
        c.args(["--quiet", "annotate", "--dataset", "arith:ops=2,n=6,seed=5"])
            .args([
                "--method",
                "mc",
                "--samples",
                "1",
                "--k",
                "2",
                "--seed",
                "3",
            ])
            .args(["--max-tokens", "40", "--concurrency", "2"])
            .args(["--threads", "2", "--ctx-size", "4096"])
            .arg("--store")
            .arg(store);
        c
    };
    assert_eq!(kill_resume_equals_uninterrupted(dir.path(), &make, 2), 6);
    assert_eq!(
        stored_config(&dir.path().join("b.sqlite"))["reproducible"],
        true
    );
}

/// `eval faithfulness` over a finished solve run: one unit per sample through the job
/// runner, the table per perturbation written, a second run equal to the first, and a
/// source run that is not there refused by name.
#[test]
fn eval_faithfulness_probes_a_solve_run_and_reruns_into_the_same_run() {
    let dir = tempfile::tempdir().unwrap();
    let url = policy_server(Duration::ZERO);
    let store = dir.path().join("runs.sqlite");
    run_ok(&mut solve_cmd(url.clone())(&store));
    let out = dir.path().join("faith");
    let faith = || {
        let mut c = stepwise();
        c.args(["--quiet", "eval", "faithfulness", "--run", "1"])
            .args(["--perturbations", "change-number,swap", "--bootstrap", "50"])
            // the scripted server returns no log-probabilities
            .arg("--no-answer-probability")
            .args(endpoint(&url))
            .arg("--store")
            .arg(&store)
            .arg("--out")
            .arg(&out);
        c
    };
    let first = run_ok(&mut faith());
    let table = String::from_utf8_lossy(&first.stdout).into_owned();
    for row in ["none", "change-number", "swap"] {
        assert!(table.contains(row), "no '{row}' row:\n{table}");
    }
    // solve stored 2 samples for each of 10 problems, each with an answer
    let info = SqliteStore::open(&store).unwrap().run(2).unwrap();
    assert_eq!((info.kind.as_str(), info.units), ("eval-faithfulness", 20));
    assert_eq!(info.status, RunStatus::Done);
    let md = std::fs::read_to_string(out.join("faithfulness.md")).unwrap();
    assert!(
        md.contains("eval faithfulness") && md.contains("change-number"),
        "{md}"
    );
    // a finished run is not continued: the same command makes a new run, equal to it
    // (perturbations seeded by the config and the unit, answers greedy)
    run_ok(&mut faith());
    assert_eq!(records(&store, 3), records(&store, 2));
    // a worker does a run created elsewhere (the stored config, no unit done) and the
    // command with --resume writes its table
    let info = SqliteStore::open(&store).unwrap().run(2).unwrap();
    let id = SqliteStore::open(&store)
        .unwrap()
        .create_run(&info.kind, info.version, &info.config)
        .unwrap();
    assert_eq!(id, 4);
    let mut w = stepwise();
    w.args(["--quiet", "worker", "--run", "4", "--jobs", "2"])
        .args(endpoint(&url))
        .arg("--store")
        .arg(&store);
    run_ok(&mut w);
    assert_eq!(records(&store, 4), records(&store, 2));
    let resumed = run_ok(faith().args(["--resume", "4"]));
    assert!(
        String::from_utf8_lossy(&resumed.stdout).contains("change-number"),
        "{}",
        String::from_utf8_lossy(&resumed.stdout)
    );
    // a worker with another model is refused by name
    let mut w = stepwise();
    w.args(["--quiet", "worker", "--run", "4"])
        .args(endpoint(&url))
        .args(["--model-name", "another-model"])
        .arg("--store")
        .arg(&store);
    let bad = w.output().unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("another-model"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    // a run that is not finished, or not there, is refused by name
    let mut c = stepwise();
    c.args(["--quiet", "eval", "faithfulness", "--run", "7"])
        .args(endpoint(&url))
        .arg("--store")
        .arg(&store);
    let bad = c.output().unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("source run 7"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}
