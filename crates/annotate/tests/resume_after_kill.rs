//! kill -9 in the middle of an annotate run, then `--resume`, ends with the same labels
//! as an uninterrupted run with the same seed.
//!
//! The test re-runs its own binary as the annotating child (`ANNOTATE_CRASH_CHILD=1`),
//! which calls the same `run::run_job` the `stepwise annotate` command calls, with the
//! scripted policy (slowed down so the kill lands mid-run) as the model.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use stepwise_annotate::Method;
use stepwise_annotate::formats::ExportFormat;
use stepwise_annotate::run::{AnnotateConfig, Job, PolicySource, run_job};
use stepwise_store::{RunStore, SqliteStore};

const N: usize = 8;

fn config() -> AnnotateConfig {
    let mut c = AnnotateConfig {
        dataset: format!("arith:ops=3,n={N},seed=11"),
        methods: vec![
            Method::Mc,
            Method::OmegaPrm,
            Method::Grounded,
            Method::Reference,
        ],
        seed: 42,
        samples: 2,
        ..AnnotateConfig::default()
    };
    c.mc.k = 4;
    c.omega.k = 4;
    c.omega.search_limit = 3;
    c.grounded.k = 2;
    c
}

fn child(store: &Path, out: &Path, resume: Option<i64>) {
    let job = Job {
        config: config(),
        store: store.display().to_string(),
        resume,
        data_dir: None,
        run: stepwise_jobs::RunOptions {
            concurrency: 2,
            stop: stepwise_jobs::Stop::Never,
            ..Default::default()
        },
        out: Some((out.to_path_buf(), ExportFormat::Native)),
        eval_against_truth: false,
        truth_out: None,
        stored_only: false,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let source = PolicySource::Scripted {
        delay: Duration::from_millis(15),
    };
    let o = rt.block_on(run_job(&job, source)).unwrap();
    println!("run={} done_now={}", o.run, o.units_done_now);
}

fn spawn(store: &Path, out: &Path, resume: Option<i64>) -> std::process::Child {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.env("ANNOTATE_CRASH_CHILD", "1")
        .env("CHILD_STORE", store)
        .env("CHILD_OUT", out)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(r) = resume {
        c.env("CHILD_RESUME", r.to_string());
    }
    c.spawn().unwrap()
}

fn units(store: &Path) -> usize {
    if !store.exists() {
        return 0;
    }
    SqliteStore::open(store)
        .ok()
        .and_then(|s| s.run(1).ok())
        .map_or(0, |r| r.units)
}

fn main() {
    if std::env::var_os("ANNOTATE_CRASH_CHILD").is_some() {
        let store = PathBuf::from(std::env::var_os("CHILD_STORE").unwrap());
        let out = PathBuf::from(std::env::var_os("CHILD_OUT").unwrap());
        let resume = std::env::var("CHILD_RESUME")
            .ok()
            .map(|s| s.parse().unwrap());
        child(&store, &out, resume);
        return;
    }
    let total = N * config().methods.len();
    let dir = tempfile::tempdir().unwrap();
    // Uninterrupted run.
    let (sa, oa) = (dir.path().join("a.sqlite"), dir.path().join("a.jsonl"));
    let st = spawn(&sa, &oa, None).wait_with_output().unwrap();
    assert!(st.status.success(), "uninterrupted child failed");
    assert_eq!(units(&sa), total);
    // Interrupted run: SIGKILL once some but not all units are stored.
    let (sb, ob) = (dir.path().join("b.sqlite"), dir.path().join("b.jsonl"));
    let mut c = spawn(&sb, &ob, None);
    let t0 = Instant::now();
    let killed_at = loop {
        let u = units(&sb);
        if u >= 3 {
            c.kill().unwrap(); // SIGKILL on Unix
            break u;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "child made no progress"
        );
        if let Ok(Some(s)) = c.try_wait() {
            panic!("child finished before it could be killed: {s}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let _ = c.wait();
    let after_kill = units(&sb);
    assert!(
        after_kill < total,
        "kill landed after the run finished ({after_kill} of {total})"
    );
    assert!(after_kill >= killed_at);
    assert!(
        !ob.exists(),
        "the killed run must not have written its output"
    );
    // Resume.
    let r = spawn(&sb, &ob, Some(1)).wait_with_output().unwrap();
    assert!(r.status.success(), "resumed child failed");
    let stdout = String::from_utf8_lossy(&r.stdout);
    assert!(
        stdout.contains(&format!("done_now={}", total - after_kill)),
        "resume should do exactly the {} missing units: {stdout}",
        total - after_kill
    );
    assert_eq!(units(&sb), total);
    let a = std::fs::read_to_string(&oa).unwrap();
    let b = std::fs::read_to_string(&ob).unwrap();
    assert!(!a.is_empty());
    assert_eq!(a, b, "resumed labels differ from the uninterrupted run");
    println!(
        "resume_after_kill: killed with {after_kill}/{total} units stored; resumed run matches the uninterrupted one ({} records)",
        a.lines().count()
    );
}
