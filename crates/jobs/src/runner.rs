//! The one run loop: create or resume, skip finished units, claim units from the store
//! (leases and heartbeats when the store is shared by several workers), bounded
//! concurrency, atomic writes, one progress bar, Ctrl-C, failures recorded.

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

/// One more worker on the stored run `run`: `job` (rebuilt from that run's stored
/// config) run with `opts`, resuming exactly that run whatever `opts.resume` says. What
/// every `stepwise worker` join goes through.
pub async fn join_run<J: Job>(
    store: &dyn RunStore,
    run: RunId,
    job: &J,
    opts: &RunOptions,
) -> Result<RunReport, JobError> {
    let opts = RunOptions {
        resume: Resume::Run(run),
        ..opts.clone()
    };
    run_with(store, job, &opts, |_, _| Ok(())).await
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
    let mut todo: std::collections::HashMap<String, J::Unit> = std::collections::HashMap::new();
    // the job's unfinished keys in order; `next` is the first not yet handed out here
    let mut order: Vec<String> = Vec::new();
    for (key, unit) in units {
        if !done.contains(&key) {
            order.push(key.clone());
            todo.insert(key, unit);
        }
    }
    let done_before = total - order.len();
    if opts.progress {
        eprintln!(
            "{kind} run {run} in {}: {} of {total} units to do{} (resume with --resume {run})",
            store.location(),
            order.len(),
            if done_before > 0 {
                format!(", {done_before} already done")
            } else {
                String::new()
            },
        );
    }
    if resumed {
        tracing::info!(run, kind, done_before, remaining = order.len(), "resuming");
    }
    let bar = progress::bar(total as u64, kind, opts.progress);
    bar.set_position(done_before as u64);

    // Units are claimed from the store as slots free up: a single-process store hands
    // out `order` in turn, a shared one whatever no other live worker holds (leases
    // renewed by the heartbeat below).
    store.register_units(run, &order)?;
    let lease = store.lease();
    let beat = lease.map_or(std::time::Duration::from_secs(3600), |l| l / 3);
    let poll = lease.map_or(std::time::Duration::from_millis(100), |l| {
        (l / 4).min(std::time::Duration::from_millis(100))
    });
    let mut heartbeat = tokio::time::interval(beat);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // with other workers on the run, the bar shows the whole run's units: it is set to
    // the store's count every second (this worker's own units move it in between)
    let shared_bar = opts.progress && lease.is_some();
    let mut refresh = tokio::time::interval(if shared_bar {
        std::time::Duration::from_secs(1)
    } else {
        std::time::Duration::from_secs(3600)
    });
    refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let concurrency = opts.concurrency.max(1);
    let mut next = 0usize;
    let mut handed: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut in_flight = futures::stream::FuturesUnordered::new();
    let mut claimable = true;
    let stop = opts.stop.clone().wait();
    tokio::pin!(stop);
    let mut tally = J::Tally::default();
    let mut done_now = 0usize;
    // claims up to `want` units and starts them; returns how many started
    let mut claim = |want: usize,
                     in_flight: &mut futures::stream::FuturesUnordered<_>,
                     next: &mut usize|
     -> Result<usize, JobError> {
        let got = store.claim_units(run, &order[*next..], want)?;
        let mut started = 0;
        for key in got {
            handed.insert(key.clone());
            // a key this worker has in flight already (it reclaimed its own expired
            // lease) or that is not of its job is left to the holder
            if let Some(unit) = todo.remove(&key) {
                in_flight.push(async move {
                    let result = job.run_unit(&unit).await;
                    (key, unit, result)
                });
                started += 1;
            }
        }
        while *next < order.len() && handed.contains(&order[*next]) {
            *next += 1;
        }
        Ok(started)
    };
    enum Event<T> {
        Stop,
        Beat,
        Poll,
        Refresh,
        Finished(T),
    }
    loop {
        if claimable && in_flight.len() < concurrency {
            let started = claim(concurrency - in_flight.len(), &mut in_flight, &mut next)?;
            claimable = started > 0;
        }
        let event = if in_flight.is_empty() {
            if !claimable {
                // nothing to claim here: the run is finished unless other live workers
                // hold units (one may die; its units come free when its lease ends)
                if other_workers(store, run)? == 0 {
                    // a lease may have ended between the claim and the look
                    if claim(concurrency, &mut in_flight, &mut next)? == 0 {
                        break;
                    }
                    claimable = true;
                    continue;
                }
            }
            tokio::select! {
                biased;
                _ = &mut stop => Event::Stop,
                _ = refresh.tick(), if shared_bar => Event::Refresh,
                _ = tokio::time::sleep(poll) => Event::Poll,
            }
        } else {
            tokio::select! {
                biased;
                _ = &mut stop => Event::Stop,
                _ = heartbeat.tick() => Event::Beat,
                _ = refresh.tick(), if shared_bar => Event::Refresh,
                Some(done) = in_flight.next() => Event::Finished(done),
            }
        };
        let (key, unit, result) = match event {
            Event::Stop => {
                drop(in_flight);
                bar.abandon();
                INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
                release(store, run);
                // the run is interrupted when its last live worker stops
                if other_workers(store, run)? == 0 {
                    store.set_status(run, RunStatus::Interrupted, None)?;
                }
                let done = done_before + done_now;
                tracing::warn!(run, done, total, "interrupted");
                return Err(JobError::Interrupted { run, done, total });
            }
            Event::Beat => {
                if let Err(e) = store.renew_leases(run) {
                    tracing::warn!(run, "renewing leases: {}", stepwise_core::error_chain(&e));
                }
                continue;
            }
            Event::Poll => {
                claimable = true;
                continue;
            }
            Event::Refresh => {
                match store.run(run) {
                    Ok(info) => bar.set_position(info.units as u64),
                    Err(e) => tracing::debug!(run, "progress: {}", stepwise_core::error_chain(&e)),
                }
                continue;
            }
            Event::Finished(done) => done,
        };
        claimable = true;
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
                drop(in_flight);
                bar.abandon();
                release(store, run);
                let cause = stepwise_core::error_chain(source.as_ref());
                // One worker's failure (its endpoint died, say) is not the run's while
                // other live workers can finish it: its claims, the failed unit's too, are
                // back in the queue, and the last live worker to fail marks the run.
                match other_workers(store, run) {
                    Ok(others) if others > 0 => {
                        return Err(JobError::WorkerStopped {
                            run,
                            key,
                            cause,
                            others,
                        });
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(
                        run,
                        "looking for other workers: {}",
                        stepwise_core::error_chain(&e)
                    ),
                }
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

/// Live workers of `run` other than this one (those holding leases on its units; none
/// in a single-process store).
fn other_workers(store: &dyn RunStore, run: RunId) -> Result<usize, JobError> {
    let me = store.worker();
    Ok(store
        .workers(run)?
        .into_iter()
        .filter(|w| Some(&w.worker) != me.as_ref())
        .count())
}

/// Gives this worker's claims back (it stops early), so other workers need not wait for
/// the leases to end; a failure only delays them.
fn release(store: &dyn RunStore, run: RunId) {
    if let Err(e) = store.release_units(run) {
        tracing::warn!(run, "releasing claims: {}", stepwise_core::error_chain(&e));
    }
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
