//! The jobs layer: every long job of stepwise runs through one runner.
//!
//! A [`Job`] says what its run is (its `KIND`, the `VERSION` of its stored types, a
//! serializable `Config`), what its units of work are (stable keys), and how to do one
//! unit (`run_unit`, returning a serializable `Record`). [`run`] does everything else,
//! the same way for every job:
//!
//! - **create or resume**: a new run is created in the [`RunStore`] with the job's
//!   config and problems; `--resume RUN_ID` reopens a run, refusing one whose config
//!   differs (every differing field is named) or whose stored types are newer;
//!   [`Resume::Matching`] continues the newest unfinished run with the same config
//!   ("rerun the same command to continue");
//! - **skip finished units**, run the others with at most `concurrency` in flight, and
//!   **write each finished unit atomically** (so `kill -9` at any moment loses at most
//!   the units in flight, and a resumed run never holds a unit twice);
//! - **one progress bar** ([`progress::bar`]) with rate and ETA;
//! - **Ctrl-C** stops cleanly: finished units are kept, the run is marked
//!   `interrupted` and can be resumed ([`JobError::Interrupted`]);
//! - **a unit that fails** marks the run `failed` with that error, which
//!   `stepwise data runs` shows ([`JobError::Unit`]). With several workers on a shared
//!   run, a failing worker gives its claims back and stops
//!   ([`JobError::WorkerStopped`]); the run is marked failed (or interrupted, on Ctrl-C)
//!   only by its last live worker, so the others finish it.
//!
//! What is stored is typed: [`records`] reads a run's units back as the job's `Record`
//! type and [`stored_config`] its config; [`kinds`] holds the boundary types of the run
//! kinds that other crates read (eval reads solve and scale runs through them).

pub mod kinds;
pub mod progress;
pub mod reward;
mod runner;
pub mod verify;

pub use runner::{
    RunOptions, RunReport, Stop, join_run, records, run, run_with, stored_config, was_interrupted,
};
pub use stepwise_store::{RunId, RunInfo, RunStatus, RunStore, UnitRecord};
/// Whether an answer is right for a problem, by the checker the problem names (a task's
/// own, else the answer verifier): what every run kind's correctness goes through.
pub use stepwise_tasks::answer_correct;

use serde::Serialize;
use serde::de::DeserializeOwned;
use stepwise_core::Problem;

/// The error a unit's work returns; the runner names the unit and the run around it.
pub type UnitError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A kind of run: its name in the store, the version of its stored types, and those
/// types. Readers (eval, reports, exports) need only this, not the job that wrote it:
/// [`records`] and [`stored_config`] read a run back by its kind.
pub trait RunKind: Send + Sync + 'static {
    /// The run kind in the store (`solve`, `scale`, `annotate`, …).
    const KIND: &'static str;
    /// Version of this kind's stored types (config and records). Bump it when their
    /// shape changes; a run stored with a newer version is not resumed or read.
    const VERSION: u32;
    /// Everything that decides the results; stored with the run, compared on resume.
    type Config: Serialize + DeserializeOwned + Send + Sync;
    /// What a finished unit produced, as stored (the unit's payload).
    type Record: Serialize + DeserializeOwned + Send + Sync;
}

/// The config type of a job's kind.
pub type ConfigOf<J> = <<J as Job>::Kind as RunKind>::Config;
/// The record type of a job's kind.
pub type RecordOf<J> = <<J as Job>::Kind as RunKind>::Record;

/// A long job over units of work, run by [`run`].
#[async_trait::async_trait]
pub trait Job: Send + Sync {
    /// What runs of this job are, as stored.
    type Kind: RunKind;
    /// One unit of work, as the job needs it.
    type Unit: Send + Sync;
    /// The running summary shown beside the progress bar.
    type Tally: Default + Send;

    /// The configuration to store.
    fn config(&self) -> &ConfigOf<Self>;

    /// The problems the run is about, registered with the run (readers find them there).
    fn problems(&self) -> &[Problem] {
        &[]
    }

    /// Every unit of the job with its stable key, in a fixed order.
    fn units(&self) -> Vec<(String, Self::Unit)>;

    /// Does one unit. Must not depend on which other units ran before or beside it
    /// (seed from the unit, not from the order), so a resumed run equals an
    /// uninterrupted one.
    async fn run_unit(&self, unit: &Self::Unit) -> Result<RecordOf<Self>, UnitError>;

    /// The store rows of a finished unit: its payload is the record; jobs add samples,
    /// step scores and labels so exports and reports can read them without the record's
    /// type. The default stores the record alone, under `problem_id` "".
    fn store_unit(
        &self,
        key: &str,
        _unit: &Self::Unit,
        record: &RecordOf<Self>,
    ) -> Result<UnitRecord, UnitError> {
        Ok(UnitRecord::new(key, "", serde_json::to_value(record)?))
    }

    /// Adds a finished record to the tally and returns the progress message.
    fn tally(&self, _tally: &mut Self::Tally, _record: &RecordOf<Self>) -> String {
        String::new()
    }
}

/// Which run a job continues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Resume {
    /// Always start a new run.
    #[default]
    New,
    /// Continue this run (its kind and config must be the job's).
    Run(RunId),
    /// Continue the newest unfinished run of this kind with the same config, else start
    /// a new one.
    Matching,
    /// Use the newest run of this kind with the same config, finished or not (a cache:
    /// a finished run is read back without doing anything), else start a new one.
    Reuse,
}

impl From<Option<RunId>> for Resume {
    fn from(id: Option<RunId>) -> Self {
        id.map_or(Self::New, Self::Run)
    }
}

/// Why a job stopped.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The run store failed (or refused to resume: config mismatch, newer run).
    #[error(transparent)]
    Store(#[from] stepwise_store::StoreError),
    /// The job's config or a record would not serialize.
    #[error("{kind} job: {message}")]
    Config { kind: &'static str, message: String },
    /// A resumed run is of another kind.
    #[error("run {run} is a '{found}' run, not a '{expected}' run")]
    WrongKind {
        run: RunId,
        found: String,
        expected: &'static str,
    },
    /// A unit failed; the run is marked failed with this error.
    /// `cause` is the unit's error with all its causes ([`stepwise_core::error_chain`]),
    /// the same text the store keeps for `stepwise data runs`.
    #[error(
        "run {run} failed at unit '{key}': {cause} (fix the cause, then resume with --resume {run})"
    )]
    Unit {
        run: RunId,
        key: String,
        cause: String,
    },
    /// A unit failed in this worker while `others` live workers hold units of the run:
    /// this worker stopped and gave its claims back (the failed unit's too), and the run
    /// goes on without it (not marked failed; the last live worker to fail marks it).
    #[error(
        "this worker stopped at unit '{key}' of run {run}: {cause} (its units were given back; {others} other worker(s) go on with the run)"
    )]
    WorkerStopped {
        run: RunId,
        key: String,
        cause: String,
        others: usize,
    },
    /// Stopped by Ctrl-C (or a [`Stop`]); finished units are kept.
    #[error("run {run} interrupted with {done} of {total} units done; resume with --resume {run}")]
    Interrupted {
        run: RunId,
        done: usize,
        total: usize,
    },
    /// A stored record or config is not of the job's type.
    #[error("run {run}, {what}: not a valid {kind} record (version {version}): {message}")]
    Corrupt {
        run: RunId,
        kind: &'static str,
        version: u32,
        what: String,
        message: String,
    },
}

impl JobError {
    /// The run an error is about, when there is one.
    pub fn run(&self) -> Option<RunId> {
        match self {
            Self::Unit { run, .. }
            | Self::WorkerStopped { run, .. }
            | Self::Interrupted { run, .. }
            | Self::WrongKind { run, .. }
            | Self::Corrupt { run, .. } => Some(*run),
            Self::Store(_) | Self::Config { .. } => None,
        }
    }
}
