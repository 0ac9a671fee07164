//! A writer process is killed with SIGKILL at several points of a run; after each kill
//! the run is reopened and resumed. At the end every unit is stored exactly once, and
//! every stored unit is complete (all its samples, step scores and labels).
//!
//! The binary is its own child: with `STEPWISE_CHILD_STORE` set it is the writer.

use serde_json::json;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use stepwise_store::{
    RunId, RunStatus, RunStore, SampleRow, SqliteStore, StepLabelRow, StepScoreRow, UnitRecord,
};

const UNITS: u32 = 400;
const SAMPLES: u32 = 20;
const STEPS: u32 = 8;

fn unit(i: u32) -> UnitRecord {
    let key = format!("problem-{i}/k=0");
    let mut u = UnitRecord::new(
        &key,
        format!("problem-{i}"),
        json!({"index": i, "answer": i * 7}),
    );
    for s in 0..SAMPLES {
        u.samples.push(SampleRow::new(
            s,
            format!("unit {i} sample {s}: {}", "x".repeat(200)),
        ));
        for step in 0..STEPS {
            u.step_scores.push(StepScoreRow {
                sample_idx: s,
                step_idx: step,
                scorer: "prm".into(),
                score: f64::from(step) / 10.0,
            });
            u.step_labels.push(StepLabelRow {
                sample_idx: s,
                step_idx: step,
                method: "mc".into(),
                label: 1.0,
            });
        }
    }
    u
}

fn config() -> serde_json::Value {
    json!({"dataset": "synthetic", "units": UNITS, "samples": SAMPLES})
}

/// The writer: resume the run and record every unit not yet done.
fn child(path: &str, run: RunId) {
    let store = SqliteStore::open(path).expect("open store");
    store
        .open_run(run, "crash-test", 1, &config())
        .expect("reopen run");
    let done = store.done_keys(run).expect("done keys");
    for i in 0..UNITS {
        let u = unit(i);
        if done.contains(&u.key) {
            continue;
        }
        store.record(run, &u).expect("record");
    }
    store
        .set_status(run, RunStatus::Done, None)
        .expect("status");
}

fn spawn_child(path: &std::path::Path, run: RunId) -> std::process::Child {
    Command::new(std::env::current_exe().expect("current exe"))
        .env("STEPWISE_CHILD_STORE", path)
        .env("STEPWISE_CHILD_RUN", run.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn writer")
}

fn check_complete_units(store: &SqliteStore, run: RunId) -> usize {
    let units = store.units(run).unwrap();
    let mut keys = std::collections::HashSet::new();
    for s in &units {
        assert!(
            keys.insert(s.unit.key.clone()),
            "unit {} stored twice",
            s.unit.key
        );
        let i = s.unit.payload["index"].as_u64().unwrap() as u32;
        assert_eq!(
            s.unit,
            unit(i),
            "unit {} is incomplete or altered",
            s.unit.key
        );
    }
    units.len()
}

fn parent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("runs.sqlite");
    let run = {
        let store = SqliteStore::open(&path).unwrap();
        store.create_run("crash-test", 1, &config()).unwrap()
    };
    let reader = SqliteStore::open(&path).unwrap();
    let mut kills = 0;
    // Kill after roughly 15%, 40% and 70% of the units, then let it finish.
    for target in [UNITS * 15 / 100, UNITS * 40 / 100, UNITS * 70 / 100] {
        let before = reader.run(run).unwrap().units;
        let mut child = spawn_child(&path, run);
        let start = Instant::now();
        loop {
            let n = reader.run(run).unwrap().units;
            if n as u32 >= target {
                break;
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!("writer exited early ({status}) with {n} units");
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "writer too slow"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        child.kill().unwrap(); // SIGKILL on Unix
        let status = child.wait().unwrap();
        assert!(!status.success(), "writer finished before it was killed");
        kills += 1;
        let after = check_complete_units(&reader, run);
        assert!(after > before, "no progress between kills");
        assert!(
            (after as u32) < UNITS,
            "writer finished before it was killed"
        );
        println!("kill {kills}: {after} of {UNITS} units stored, all complete");
    }
    let status = spawn_child(&path, run).wait().unwrap();
    assert!(status.success(), "final writer failed: {status}");
    let n = check_complete_units(&reader, run);
    assert_eq!(n as u32, UNITS);
    let info = reader.run(run).unwrap();
    assert_eq!(info.status, RunStatus::Done);
    println!("resume_after_kill: {kills} kills, {n} units, each exactly once: ok");
}

fn main() {
    match (
        std::env::var("STEPWISE_CHILD_STORE"),
        std::env::var("STEPWISE_CHILD_RUN"),
    ) {
        (Ok(path), Ok(run)) => child(&path, run.parse().expect("run id")),
        _ => parent(),
    }
}
