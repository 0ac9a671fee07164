//! The run store: where long jobs keep what they finished.
//!
//! A *run* is one job (`kind`, e.g. `solve` or `annotate`, plus its configuration as
//! JSON and the version of that kind's stored types). Its work is split into *units* with
//! stable keys (e.g. `gsm8k:test:17/samples`). [`RunStore::record`] writes a unit (its
//! JSON payload, samples, step scores and step labels) atomically, so after a crash at
//! any point (kill -9 included) a unit is either fully stored or absent, and a resumed
//! run skips exactly the units that [`RunStore::done_keys`] reports. Recording a unit
//! twice stores it once.
//!
//! [`RunStore`] is the seam: the job runner of `stepwise-jobs` and every reader (eval,
//! reports, exports) use only the trait. [`SqliteStore`] (one SQLite file, WAL) is the
//! embedded default; [`PgStore`] (PostgreSQL) is the shared one, where several processes
//! on any machines work on one run together. [`open`] picks the implementation from a
//! store spec.
//!
//! **Work claiming.** The runner asks the store for units to do
//! ([`RunStore::claim_units`]) instead of taking them all: a single-process store hands
//! out the candidates in order; a shared store hands each pending unit to one worker at a
//! time under a *lease* that the worker renews by heartbeat ([`RunStore::renew_leases`]).
//! A worker that dies stops renewing, its leases expire and another worker claims the
//! units again. Writing a unit releases its claim in the same transaction, and a unit is
//! recorded at most once (keyed by run and unit), so a late write from a worker whose
//! lease expired changes nothing.
//!
//! ```
//! # fn main() -> Result<(), stepwise_store::StoreError> {
//! use stepwise_store::{RunStore, SampleRow, SqliteStore, UnitRecord};
//! let dir = tempfile::tempdir().unwrap();
//! let store = SqliteStore::open(dir.path().join("runs.sqlite"))?;
//! let config = serde_json::json!({"dataset": "arith:n=2", "k": 1});
//! let run = store.create_run("solve", 1, &config)?;
//! for key in ["p0", "p1"] {
//!     if store.done_keys(run)?.contains(key) { continue; }
//!     let mut unit = UnitRecord::new(key, key, serde_json::json!({"answer": "7"}));
//!     unit.samples.push(SampleRow::new(0, "3 + 4 = 7"));
//!     store.record(run, &unit)?;
//! }
//! assert_eq!(store.run(run)?.units, 2);
//! # Ok(()) }
//! ```

mod error;
pub mod export;
pub mod listing;
pub mod pg;
mod schema;
mod sqlite;
mod types;

pub use error::{Result, StoreError};
pub use export::{export_jsonl, export_parquet, export_schema};
pub use pg::PgStore;
pub use sqlite::SqliteStore;
pub use types::{
    RunId, RunInfo, RunStatus, SampleRow, StepLabelRow, StepScoreRow, StoredUnit, UnitRecord,
    WorkerLease, json_diff, validate_unit,
};

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use stepwise_core::Problem;

/// Environment variable naming the run store (a path for the SQLite store, a
/// `postgres://` URL for the PostgreSQL store).
pub const STORE_ENV: &str = "STEPWISE_STORE";

/// How long a claim on a unit lasts without a heartbeat, unless told otherwise.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

/// How a store is opened, beyond its spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// How long a unit claimed from a shared store stays this worker's without a
    /// heartbeat (heartbeats come every third of it). Ignored by single-process stores.
    pub lease: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            lease: DEFAULT_LEASE,
        }
    }
}

/// Where the store lives unless told otherwise: `.stepwise/runs.sqlite` under the
/// current directory.
pub fn default_store_path() -> PathBuf {
    Path::new(".stepwise").join("runs.sqlite")
}

/// A place that holds runs and their finished units.
///
/// Every method is safe to call from several threads; writes of one unit are atomic.
/// Implementations name themselves in errors ([`RunStore::location`]).
pub trait RunStore: Send + Sync {
    /// Where the store is, for messages (a file path, a server address).
    fn location(&self) -> String;

    /// Starts a new run of `kind` whose stored types are at `version`, with its
    /// `problems`, status `running`, in one transaction: afterwards the run exists with
    /// every problem, or (on any error, a full disk included) nothing was written. So a
    /// failed start never leaves a run without its problems for a resume to find.
    fn create_run_with_problems(
        &self,
        kind: &str,
        version: u32,
        config: &serde_json::Value,
        problems: &[Problem],
    ) -> Result<RunId>;

    /// Starts a new run without problems ([`RunStore::create_run_with_problems`]).
    fn create_run(&self, kind: &str, version: u32, config: &serde_json::Value) -> Result<RunId> {
        self.create_run_with_problems(kind, version, config, &[])
    }

    /// One run.
    fn run(&self, id: RunId) -> Result<RunInfo>;

    /// Every run, oldest first.
    fn list_runs(&self) -> Result<Vec<RunInfo>>;

    /// Sets a run's status; `error` is kept with a failed run (and cleared otherwise).
    fn set_status(&self, id: RunId, status: RunStatus, error: Option<&str>) -> Result<()>;

    /// Registers the run's problems (idempotent: a problem id already present is kept).
    fn add_problems(&self, run: RunId, problems: &[Problem]) -> Result<()>;

    /// The run's problems, in the order they were added.
    fn problems(&self, run: RunId) -> Result<Vec<Problem>>;

    /// The keys of every finished unit of `run`.
    fn done_keys(&self, run: RunId) -> Result<HashSet<String>>;

    /// Writes a unit with its samples, step scores and step labels atomically. Returns
    /// `false` (and writes nothing) when the unit was already recorded. A claim on the
    /// unit ([`RunStore::claim_units`]) is released in the same transaction.
    fn record(&self, run: RunId, unit: &UnitRecord) -> Result<bool>;

    /// The lease of this store's claims when several processes share it (`None`: a
    /// single-process store, whose claims need no heartbeat).
    fn lease(&self) -> Option<Duration> {
        None
    }

    /// Registers the job's unfinished unit keys of `run`, in the job's order, before
    /// claiming starts (idempotent; every worker of a run registers the same keys).
    /// A single-process store needs no registry.
    fn register_units(&self, _run: RunId, _keys: &[String]) -> Result<()> {
        Ok(())
    }

    /// Claims up to `n` units of `run` for this store's worker and returns their keys.
    /// `candidates` are the job's unfinished keys not yet handed to this worker, in
    /// order. A single-process store hands out the first `n` of them; a shared store
    /// hands out registered units that are unfinished and not held by a live lease
    /// (`SELECT … FOR UPDATE SKIP LOCKED`, so two workers never get the same unit), each
    /// leased to this worker for [`RunStore::lease`]. Empty: nothing is claimable now.
    fn claim_units(&self, _run: RunId, candidates: &[String], n: usize) -> Result<Vec<String>> {
        Ok(candidates.iter().take(n).cloned().collect())
    }

    /// The heartbeat: extends every lease this worker holds on units of `run`; returns
    /// how many.
    fn renew_leases(&self, _run: RunId) -> Result<usize> {
        Ok(0)
    }

    /// Gives up every claim this worker holds on units of `run` (the worker stops), so
    /// other workers need not wait for the leases to expire.
    fn release_units(&self, _run: RunId) -> Result<()> {
        Ok(())
    }

    /// The workers holding live leases on units of `run`, this one included.
    fn workers(&self, _run: RunId) -> Result<Vec<WorkerLease>> {
        Ok(Vec::new())
    }

    /// This store's worker name in leases (`host:pid:nonce`), when it claims with leases.
    fn worker(&self) -> Option<String> {
        None
    }

    /// Every finished unit of `run` with its samples, scores and labels, in the order
    /// recorded.
    fn units(&self, run: RunId) -> Result<Vec<StoredUnit>>;

    /// Reopens run `id` to resume it: the kind and configuration must equal the ones it
    /// was created with ([`StoreError::ConfigMismatch`] lists every difference), and its
    /// stored types must not be newer than `version`. Sets the status back to running.
    fn open_run(
        &self,
        id: RunId,
        kind: &str,
        version: u32,
        config: &serde_json::Value,
    ) -> Result<RunInfo> {
        let info = self.run(id)?;
        let mut diffs = Vec::new();
        if info.kind != kind {
            diffs.push(format!("kind: stored '{}', given '{kind}'", info.kind));
        }
        json_diff("config", &info.config, config, &mut diffs);
        if !diffs.is_empty() {
            return Err(StoreError::ConfigMismatch { id, diffs });
        }
        if info.version > version {
            return Err(StoreError::NewerRun {
                id,
                kind: info.kind,
                stored: info.version,
                known: version,
            });
        }
        self.set_status(id, RunStatus::Running, None)?;
        self.run(id)
    }

    /// The newest run of `kind` whose configuration equals `config` and which has not
    /// finished (running, interrupted or failed), if any: what "rerun the same command
    /// to continue" resumes.
    fn find_unfinished(&self, kind: &str, config: &serde_json::Value) -> Result<Option<RunInfo>> {
        Ok(self
            .list_runs()?
            .into_iter()
            .rev()
            .find(|r| r.kind == kind && r.status != RunStatus::Done && &r.config == config))
    }
}

/// Opens the store a spec names: a path (SQLite; parent folders are created) or a
/// `postgres://user[:password]@host[:port]/database` URL (PostgreSQL; also
/// `postgresql://`). A scheme this build does not know is an error naming it.
pub fn open(spec: &str) -> Result<Arc<dyn RunStore>> {
    open_with(spec, &StoreOptions::default())
}

/// [`open`] with options.
pub fn open_with(spec: &str, options: &StoreOptions) -> Result<Arc<dyn RunStore>> {
    if pg::is_postgres_url(spec) {
        return Ok(Arc::new(PgStore::connect(spec, options)?));
    }
    known_scheme(spec)?;
    Ok(Arc::new(SqliteStore::open(spec)?))
}

/// Opens the store a spec names for reading only (readers such as the trace explorer):
/// a SQLite file opened read-only ([`SqliteStore::open_read_only`]), or a PostgreSQL
/// session in which the server refuses writes ([`PgStore::connect_read_only`]).
pub fn open_read_only(spec: &str) -> Result<Arc<dyn RunStore>> {
    if pg::is_postgres_url(spec) {
        return Ok(Arc::new(PgStore::connect_read_only(spec)?));
    }
    known_scheme(spec)?;
    Ok(Arc::new(SqliteStore::open_read_only(spec)?))
}

/// A spec with a `scheme://` other than PostgreSQL's is an error naming it.
fn known_scheme(spec: &str) -> Result<()> {
    if let Some((scheme, _)) = spec.split_once("://")
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+')
        && !scheme.is_empty()
    {
        return Err(StoreError::UnknownStore {
            spec: spec.to_string(),
            reason: format!(
                "no '{scheme}' store in this build (a path opens a SQLite store, postgres://… a PostgreSQL one)"
            ),
        });
    }
    Ok(())
}
