//! The runner on a toy job: every unit stored once, resume skips finished units, a
//! changed config is refused by name, a failing unit fails the run with its error, a
//! stop interrupts it resumably, and records read back by type. A run is created with
//! its problems or not at all, and is marked done only when the store holds every unit.

use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use stepwise_jobs::{
    Job, JobError, Resume, RunKind, RunOptions, RunStatus, RunStore, Stop, UnitError, records, run,
    stored_config,
};
use stepwise_store::SqliteStore;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct SquareConfig {
    n: usize,
    offset: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Square {
    x: u64,
    y: u64,
}

struct Squares;

impl RunKind for Squares {
    const KIND: &'static str = "squares";
    const VERSION: u32 = 1;
    type Config = SquareConfig;
    type Record = Square;
}

/// Squares `offset + i` for `i < n`; unit `fail_at` errors; units take `delay` each.
struct SquareJob {
    config: SquareConfig,
    fail_at: Option<u64>,
    delay: Duration,
    calls: AtomicUsize,
    problems: Vec<stepwise_core::Problem>,
}

impl SquareJob {
    fn new(n: usize) -> Self {
        Self {
            config: SquareConfig { n, offset: 10 },
            fail_at: None,
            delay: Duration::ZERO,
            calls: AtomicUsize::new(0),
            problems: Vec::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot square {0}: the server at 127.0.0.1:9 refused")]
struct Refused(u64);

#[async_trait::async_trait]
impl Job for SquareJob {
    type Kind = Squares;
    type Unit = u64;
    type Tally = u64;

    fn config(&self) -> &SquareConfig {
        &self.config
    }

    fn problems(&self) -> &[stepwise_core::Problem] {
        &self.problems
    }

    fn units(&self) -> Vec<(String, u64)> {
        (0..self.config.n as u64)
            .map(|i| {
                (
                    format!("x={}", i + self.config.offset),
                    i + self.config.offset,
                )
            })
            .collect()
    }

    async fn run_unit(&self, x: &u64) -> Result<Square, UnitError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        if self.fail_at == Some(*x) {
            return Err(Box::new(Refused(*x)));
        }
        Ok(Square { x: *x, y: x * x })
    }

    fn tally(&self, sum: &mut u64, r: &Square) -> String {
        *sum += r.y;
        format!("sum {sum}")
    }
}

fn store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(dir.path().join("runs.sqlite")).unwrap();
    (dir, s)
}

fn opts(resume: Resume, concurrency: usize) -> RunOptions {
    RunOptions {
        resume,
        concurrency,
        progress: false,
        stop: Stop::Never,
    }
}

fn squares(s: &SqliteStore, run: i64) -> Vec<Square> {
    let mut v: Vec<Square> = records::<Squares>(s, run)
        .unwrap()
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    v.sort_by_key(|q| q.x);
    v
}

#[tokio::test]
async fn runs_every_unit_once_and_marks_the_run_done() {
    let (_d, s) = store();
    let job = SquareJob::new(20);
    let r = run(&s, &job, &opts(Resume::New, 4)).await.unwrap();
    assert_eq!(
        (r.total, r.done_before, r.done_now, r.resumed),
        (20, 0, 20, false)
    );
    let info = s.run(r.run).unwrap();
    assert_eq!(
        (info.status, info.kind.as_str(), info.version),
        (RunStatus::Done, "squares", 1)
    );
    let got = squares(&s, r.run);
    assert_eq!(got.len(), 20);
    assert!(got.iter().all(|q| q.y == q.x * q.x));
    assert_eq!(stored_config::<Squares>(&info).unwrap(), job.config);
}

#[tokio::test]
async fn a_failing_unit_fails_the_run_with_its_error_and_a_resume_finishes_it() {
    let (_d, s) = store();
    let mut job = SquareJob::new(10);
    job.fail_at = Some(15);
    let e = run(&s, &job, &opts(Resume::New, 1)).await.unwrap_err();
    let JobError::Unit { run: id, key, .. } = &e else {
        panic!("{e}")
    };
    assert_eq!(key, "x=15");
    let msg = e.to_string();
    assert!(msg.contains("refused") && msg.contains("--resume"), "{msg}");
    let info = s.run(*id).unwrap();
    assert_eq!(info.status, RunStatus::Failed);
    assert!(
        info.error
            .as_deref()
            .unwrap()
            .contains("unit 'x=15': cannot square 15")
    );
    // units before the failure are kept
    assert_eq!(info.units, 5);
    // the cause is gone: resuming does only the missing units
    let job = SquareJob::new(10);
    let r = run(&s, &job, &opts(Resume::Run(*id), 3)).await.unwrap();
    assert_eq!((r.done_before, r.done_now, r.resumed), (5, 5, true));
    assert_eq!(job.calls.load(Ordering::SeqCst), 5);
    let info = s.run(*id).unwrap();
    assert_eq!((info.status, info.error), (RunStatus::Done, None));
    assert_eq!(squares(&s, *id).len(), 10);
}

#[tokio::test]
async fn a_resume_with_another_config_is_refused_naming_the_fields() {
    let (_d, s) = store();
    let job = SquareJob::new(3);
    let id = run(&s, &job, &opts(Resume::New, 1)).await.unwrap().run;
    let mut other = SquareJob::new(4);
    other.config.offset = 11;
    let e = run(&s, &other, &opts(Resume::Run(id), 1))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("config.n: stored 3, given 4"), "{e}");
    assert!(e.contains("config.offset: stored 10, given 11"), "{e}");
    assert_eq!(other.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_stop_interrupts_resumably_and_the_resumed_run_equals_an_uninterrupted_one() {
    let (_d, s) = store();
    let mut job = SquareJob::new(40);
    job.delay = Duration::from_millis(20);
    let (tx, rx) = tokio::sync::watch::channel(false);
    let o = RunOptions {
        stop: Stop::When(rx),
        ..opts(Resume::New, 2)
    };
    let stopper = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(150)).await;
        tx.send(true).unwrap();
        tx
    });
    let e = run(&s, &job, &o).await.unwrap_err();
    let _tx = stopper.await.unwrap();
    let JobError::Interrupted {
        run: id,
        done,
        total,
    } = e
    else {
        panic!("{e}")
    };
    assert!(done > 0 && done < total, "{done} of {total}");
    let info = s.run(id).unwrap();
    assert_eq!((info.status, info.units), (RunStatus::Interrupted, done));
    // Resume::Matching finds the interrupted run by its config
    let job2 = SquareJob::new(40);
    let r = run(&s, &job2, &opts(Resume::Matching, 8)).await.unwrap();
    assert_eq!((r.run, r.done_before, r.resumed), (id, done, true));
    let resumed = squares(&s, id);
    let keys: HashSet<u64> = resumed.iter().map(|q| q.x).collect();
    assert_eq!((resumed.len(), keys.len()), (40, 40), "no unit twice");
    let fresh_id = run(&s, &SquareJob::new(40), &opts(Resume::New, 1))
        .await
        .unwrap()
        .run;
    assert_ne!(fresh_id, id);
    assert_eq!(squares(&s, fresh_id), resumed);
    // a finished run is not matched again
    let again = run(&s, &SquareJob::new(40), &opts(Resume::Matching, 1))
        .await
        .unwrap();
    assert!(!again.resumed);
}

#[tokio::test]
async fn records_of_another_kind_are_refused() {
    let (_d, s) = store();
    let id = s.create_run("solve", 2, &serde_json::json!({})).unwrap();
    let e = records::<Squares>(&s, id).unwrap_err().to_string();
    assert!(e.contains("is a 'solve' run, not a 'squares' run"), "{e}");
    let e = run(&s, &SquareJob::new(1), &opts(Resume::Run(id), 1))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a 'squares' run"), "{e}");
}

/// A store over SQLite that fails the way a full disk does: writing problems fails
/// (`lose_units`: recording a unit reports success and writes nothing).
struct Faulty<'a> {
    inner: &'a SqliteStore,
    disk_full: bool,
    lose_units: bool,
}

impl Faulty<'_> {
    fn full(&self) -> stepwise_store::StoreError {
        stepwise_store::StoreError::Io {
            path: "runs.sqlite".into(),
            source: std::io::Error::from_raw_os_error(28),
        }
    }
}

impl RunStore for Faulty<'_> {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn create_run_with_problems(
        &self,
        kind: &str,
        version: u32,
        config: &serde_json::Value,
        problems: &[stepwise_core::Problem],
    ) -> stepwise_store::Result<i64> {
        // SqliteStore writes the run and its problems in one transaction (its own test
        // fills a size-capped database): a full disk leaves no run behind
        if self.disk_full && !problems.is_empty() {
            return Err(self.full());
        }
        self.inner
            .create_run_with_problems(kind, version, config, problems)
    }
    fn run(&self, id: i64) -> stepwise_store::Result<stepwise_store::RunInfo> {
        self.inner.run(id)
    }
    fn list_runs(&self) -> stepwise_store::Result<Vec<stepwise_store::RunInfo>> {
        self.inner.list_runs()
    }
    fn set_status(
        &self,
        id: i64,
        status: RunStatus,
        error: Option<&str>,
    ) -> stepwise_store::Result<()> {
        self.inner.set_status(id, status, error)
    }
    fn add_problems(
        &self,
        run: i64,
        problems: &[stepwise_core::Problem],
    ) -> stepwise_store::Result<()> {
        if self.disk_full && !problems.is_empty() {
            return Err(self.full());
        }
        self.inner.add_problems(run, problems)
    }
    fn problems(&self, run: i64) -> stepwise_store::Result<Vec<stepwise_core::Problem>> {
        self.inner.problems(run)
    }
    fn done_keys(&self, run: i64) -> stepwise_store::Result<HashSet<String>> {
        self.inner.done_keys(run)
    }
    fn record(&self, run: i64, unit: &stepwise_store::UnitRecord) -> stepwise_store::Result<bool> {
        if self.lose_units {
            return Ok(true);
        }
        self.inner.record(run, unit)
    }
    fn units(&self, run: i64) -> stepwise_store::Result<Vec<stepwise_store::StoredUnit>> {
        self.inner.units(run)
    }
}

fn job_with_problems(n: usize) -> SquareJob {
    let mut job = SquareJob::new(n);
    job.problems = (0..n)
        .map(|i| stepwise_core::Problem::new(format!("p{i}"), format!("square {}", i + 10)))
        .collect();
    job
}

#[tokio::test]
async fn a_full_disk_while_creating_a_run_leaves_no_run() {
    let (_d, s) = store();
    let full = Faulty {
        inner: &s,
        disk_full: true,
        lose_units: false,
    };
    let e = run(&full, &job_with_problems(5), &opts(Resume::Matching, 1))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("runs.sqlite"), "{e}");
    assert!(
        s.list_runs().unwrap().is_empty(),
        "a run without its problems was left: {:?}",
        s.list_runs().unwrap()
    );
    // with room again, the same command does the whole job in a new run
    let r = run(&s, &job_with_problems(5), &opts(Resume::Matching, 1))
        .await
        .unwrap();
    assert_eq!((r.done_before, r.done_now, r.resumed), (0, 5, false));
    assert_eq!(s.problems(r.run).unwrap().len(), 5);
    assert_eq!(s.run(r.run).unwrap().status, RunStatus::Done);
}

#[tokio::test]
async fn a_run_whose_units_are_not_stored_is_not_marked_done() {
    let (_d, s) = store();
    let lossy = Faulty {
        inner: &s,
        disk_full: false,
        lose_units: true,
    };
    let e = run(&lossy, &SquareJob::new(3), &opts(Resume::New, 1))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("3 of 3 units are not in the run store"), "{e}");
    let info = s.list_runs().unwrap().pop().unwrap();
    assert_eq!(info.status, RunStatus::Failed);
    // resumed on a store that keeps them, the run finishes
    let r = run(&s, &SquareJob::new(3), &opts(Resume::Run(info.id), 1))
        .await
        .unwrap();
    assert_eq!((r.done_before, r.done_now), (0, 3));
    assert_eq!(s.run(info.id).unwrap().status, RunStatus::Done);
}

/// Three runners (three workers, each its own connection) share one run in a real
/// PostgreSQL: every unit is done and stored exactly once, the run ends done, and the
/// records equal a single-process SQLite run's.
#[test]
fn three_workers_share_a_postgres_run_each_unit_once() {
    let cluster = stepwise_store::pg::TempCluster::start().unwrap_or_else(|e| panic!("{e}"));
    let pg_opts = stepwise_store::StoreOptions {
        lease: Duration::from_secs(5),
    };
    let first = stepwise_store::PgStore::connect(&cluster.url(), &pg_opts).unwrap();
    let mut job = SquareJob::new(30);
    job.delay = Duration::from_millis(10);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let run_id = first
        .create_run(
            Squares::KIND,
            Squares::VERSION,
            &serde_json::to_value(&job.config).unwrap(),
        )
        .unwrap();
    let jobs: Vec<SquareJob> = (0..3)
        .map(|_| {
            let mut j = SquareJob::new(30);
            j.delay = Duration::from_millis(10);
            j
        })
        .collect();
    let stores: Vec<_> = (0..3)
        .map(|_| stepwise_store::PgStore::connect(&cluster.url(), &pg_opts).unwrap())
        .collect();
    let join = opts(Resume::Run(run_id), 2);
    let reports = rt.block_on(async {
        let runs = jobs.iter().zip(&stores).map(|(j, s)| run(s, j, &join));
        futures::future::join_all(runs).await
    });
    let mut done_now = 0;
    for r in reports {
        done_now += r.unwrap().done_now;
    }
    let calls: usize = jobs.iter().map(|j| j.calls.load(Ordering::SeqCst)).sum();
    assert_eq!((done_now, calls), (30, 30), "every unit done once");
    assert!(
        jobs.iter().all(|j| j.calls.load(Ordering::SeqCst) > 0),
        "every worker did some of the work"
    );
    let info = first.run(run_id).unwrap();
    assert_eq!((info.status, info.units), (RunStatus::Done, 30));

    let (_d, lite) = store();
    rt.block_on(run(&lite, &job, &opts(Resume::New, 1)))
        .unwrap();
    let pg_records: Vec<Square> = {
        let mut v: Vec<Square> = records::<Squares>(&first, run_id)
            .unwrap()
            .into_iter()
            .map(|(_, r)| r)
            .collect();
        v.sort_by_key(|q| q.x);
        v
    };
    assert_eq!(pg_records, squares(&lite, 1));
}
