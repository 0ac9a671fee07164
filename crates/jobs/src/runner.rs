//! The one run loop: create or resume, skip finished units, bounded concurrency, atomic
//! writes, one progress bar, Ctrl-C, failures recorded.

use crate::{Job, JobError, RecordOf, Resume, RunKind, UnitError, progress};
use futures::StreamExt;
use stepwise_store::{RunId, RunInfo, RunStatus, RunStore, StoredUnit};

static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether a run of this process was stopped by Ctrl-C (or a [`Stop`]): the binary
/// exits with status 130 then, whatever error type carried the interruption out.
pub fn was_interrupted() -> bool {
    INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst)
}

/// What stops a run early (besides a failing unit).
#[derive(Debug, Clone, Default)]
pub enum Stop {
    /// Ctrl-C (SIGINT) stops the run; the run is marked interrupted.
    #[default]
    CtrlC,
    /// Nothing stops it.
    Never,
    /// The run stops when this watch turns `true` (tests, embedding programs).
    When(tokio::sync::watch::Receiver<bool>),
}

impl Stop {
    async fn wait(self) {
        match self {
            Self::CtrlC => {
                if let Err(e) = tokio::signal::ctrl_c().await {
                    tracing::warn!("cannot listen for Ctrl-C ({e}); only kill stops this run");
                    std::future::pending::<()>().await;
                }
            }
            Self::Never => std::future::pending::<()>().await,
            Self::When(mut rx) => {
                if rx.wait_for(|stop| *stop).await.is_err() {
                    // the sender is gone: nothing can stop the run any more
                    std::future::pending::<()>().await;
                }
            }
        }
    }
}

/// How to run a job.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Which run to continue.
    pub resume: Resume,
    /// Units in flight at once (at least 1).
    pub concurrency: usize,
    /// Show the start line and the progress bar on stderr.
    pub progress: bool,
    /// What stops the run early.
    pub stop: Stop,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            resume: Resume::New,
            concurrency: 1,
            progress: false,
            stop: Stop::CtrlC,
        }
    }
}

/// What a finished run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunReport {
    pub run: RunId,
    /// Units of the job.
    pub total: usize,
    /// Units that were already stored when this call started.
    pub done_before: usize,
    /// Units done by this call.
    pub done_now: usize,
    /// Whether an existing run was continued.
    pub resumed: bool,
}

/// Runs (or resumes) `job` in `store` until every unit is stored.
pub async fn run<J: Job>(
    store: &dyn RunStore,
    job: &J,
    opts: &RunOptions,
) -> Result<RunReport, JobError> {
    run_with(store, job, opts, |_, _| Ok(())).await
}

/// [`run`], handing every record finished by this call to `on_record` after it is
/// stored (to stream results out as they come). An error from `on_record` fails the run.
pub async fn run_with<J, F>(
    store: &dyn RunStore,
    job: &J,
    opts: &RunOptions,
    mut on_record: F,
) -> Result<RunReport, JobError>
where
    J: Job,
    F: FnMut(&str, &RecordOf<J>) -> Result<(), UnitError>,
{
    let config = serde_json::to_value(job.config()).map_err(|e| JobError::Config {
        kind: <J::Kind as RunKind>::KIND,
        message: format!("the configuration does not serialize: {e}"),
    })?;
    let kind = <J::Kind as RunKind>::KIND;
    // a new run is created with its problems in one transaction; a resumed one gets any
    // it lacks (adding is idempotent)
    let (run, resumed) = open::<J::Kind>(store, &config, job.problems(), opts.resume)?;
    if resumed {
        store.add_problems(run, job.problems())?;
    }

    let units = job.units();
    let keys: Vec<String> = units.iter().map(|(k, _)| k.clone()).collect();
    let total = units.len();
    let done = store.done_keys(run)?;
    let todo: Vec<_> = units
        .into_iter()
        .filter(|(key, _)| !done.contains(key))
        .collect();
    let done_before = total - todo.len();
    if opts.progress {
        eprintln!(
            "{kind} run {run} in {}: {} of {total} units to do{} (resume with --resume {run})",
            store.location(),
            todo.len(),
            if done_before > 0 {
                format!(", {done_before} already done")
            } else {
                String::new()
            },
        );
    }
    if resumed {
        tracing::info!(run, kind, done_before, remaining = todo.len(), "resuming");
    }
    let bar = progress::bar(total as u64, kind, opts.progress);
    bar.set_position(done_before as u64);

    let mut stream = futures::stream::iter(todo)
        .map(|(key, unit)| async move {
            let result = job.run_unit(&unit).await;
            (key, unit, result)
        })
        .buffer_unordered(opts.concurrency.max(1));
    let stop = opts.stop.clone().wait();
    tokio::pin!(stop);
    let mut tally = J::Tally::default();
    let mut done_now = 0usize;
    loop {
        let next = tokio::select! {
            biased;
            _ = &mut stop => None,
            next = stream.next() => Some(next),
        };
        let Some(next) = next else {
            drop(stream);
            bar.abandon();
            INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
            store.set_status(run, RunStatus::Interrupted, None)?;
            let done = done_before + done_now;
            tracing::warn!(run, done, total, "interrupted");
            return Err(JobError::Interrupted { run, done, total });
        };
        let Some((key, unit, result)) = next else {
            break;
        };
        let stored = result.and_then(|record| {
            let row = job.store_unit(&key, &unit, &record)?;
            store.record(run, &row)?;
            on_record(&key, &record)?;
            Ok(record)
        });
        match stored {
            Ok(record) => {
                done_now += 1;
                bar.inc(1);
                let msg = job.tally(&mut tally, &record);
                if !msg.is_empty() {
                    bar.set_message(msg);
                }
            }
            Err(source) => {
                drop(stream);
                bar.abandon();
                let cause = stepwise_core::error_chain(source.as_ref());
                let message = format!("unit '{key}': {cause}");
                if let Err(e) = store.set_status(run, RunStatus::Failed, Some(&message)) {
                    tracing::error!(
                        run,
                        "could not mark the run failed: {}",
                        stepwise_core::error_chain(&e)
                    );
                }
                return Err(JobError::Unit { run, key, cause });
            }
        }
    }
    bar.finish_and_clear();
    // Done only when the store holds every unit of the job, whatever the loop believed
    let stored = store.done_keys(run)?;
    let missing: Vec<&String> = keys.iter().filter(|k| !stored.contains(*k)).collect();
    if let Some(first) = missing.first() {
        let cause = format!(
            "{} of {total} units are not in the run store after the run (first: '{first}')",
            missing.len()
        );
        store.set_status(run, RunStatus::Failed, Some(&cause))?;
        return Err(JobError::Unit {
            run,
            key: (*first).clone(),
            cause,
        });
    }
    store.set_status(run, RunStatus::Done, None)?;
    Ok(RunReport {
        run,
        total,
        done_before,
        done_now,
        resumed,
    })
}

fn open<K: RunKind>(
    store: &dyn RunStore,
    config: &serde_json::Value,
    problems: &[stepwise_core::Problem],
    resume: Resume,
) -> Result<(RunId, bool), JobError> {
    let create = || -> Result<(RunId, bool), JobError> {
        Ok((
            store.create_run_with_problems(K::KIND, K::VERSION, config, problems)?,
            false,
        ))
    };
    let reopen = |id: RunId| -> Result<(RunId, bool), JobError> {
        let info = store.run(id)?;
        if info.kind != K::KIND {
            return Err(JobError::WrongKind {
                run: id,
                found: info.kind,
                expected: K::KIND,
            });
        }
        store.open_run(id, K::KIND, K::VERSION, config)?;
        Ok((id, true))
    };
    match resume {
        Resume::New => create(),
        Resume::Run(id) => reopen(id),
        Resume::Matching => match store.find_unfinished(K::KIND, config)? {
            Some(info) if info.version <= K::VERSION => reopen(info.id),
            _ => create(),
        },
        Resume::Reuse => {
            let same = store
                .list_runs()?
                .into_iter()
                .rev()
                .find(|r| r.kind == K::KIND && r.version <= K::VERSION && &r.config == config);
            match same {
                Some(info) => reopen(info.id),
                None => create(),
            }
        }
    }
}

fn check_kind<K: RunKind>(info: &RunInfo) -> Result<(), JobError> {
    if info.kind != K::KIND {
        return Err(JobError::WrongKind {
            run: info.id,
            found: info.kind.clone(),
            expected: K::KIND,
        });
    }
    if info.version > K::VERSION {
        return Err(JobError::Store(stepwise_store::StoreError::NewerRun {
            id: info.id,
            kind: info.kind.clone(),
            stored: info.version,
            known: K::VERSION,
        }));
    }
    Ok(())
}

/// A stored run's config, read back as the job's type.
pub fn stored_config<K: RunKind>(info: &RunInfo) -> Result<K::Config, JobError> {
    check_kind::<K>(info)?;
    serde_json::from_value(info.config.clone()).map_err(|e| JobError::Corrupt {
        run: info.id,
        kind: K::KIND,
        version: info.version,
        what: "config".into(),
        message: e.to_string(),
    })
}

/// Every stored unit of `run` (in the order recorded) with its record read back as the
/// job's type.
pub fn records<K: RunKind>(
    store: &dyn RunStore,
    run: RunId,
) -> Result<Vec<(StoredUnit, K::Record)>, JobError> {
    let info = store.run(run)?;
    check_kind::<K>(&info)?;
    store
        .units(run)?
        .into_iter()
        .map(|u| {
            let record =
                serde_json::from_value(u.unit.payload.clone()).map_err(|e| JobError::Corrupt {
                    run,
                    kind: K::KIND,
                    version: info.version,
                    what: format!("unit '{}'", u.unit.key),
                    message: e.to_string(),
                })?;
            Ok((u, record))
        })
        .collect()
}
