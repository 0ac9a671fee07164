//! The run store: one SQLite file holding runs and their finished work.
//!
//! A *run* is one job (`kind`, e.g. `solve` or `annotate`, plus its configuration as
//! JSON). Its work is split into *units* with stable keys (e.g. `gsm8k:test:17/sample-3`).
//! [`RunStore::record`] writes a unit (its JSON payload, samples, step scores and step
//! labels) in one transaction, so after a crash at any point (kill -9 included) a unit is
//! either fully stored or absent, and a resumed run skips exactly the units that
//! [`RunStore::is_done`] reports. Recording a unit twice stores it once.
//!
//! ```
//! # fn main() -> Result<(), stepwise_data::DataError> {
//! use stepwise_data::store::{RunStore, SampleRow, UnitRecord};
//! let dir = tempfile::tempdir().unwrap();
//! let mut store = RunStore::open(dir.path().join("runs.sqlite"))?;
//! let config = serde_json::json!({"dataset": "arith:n=2", "k": 1});
//! let run = store.create_run("solve", &config)?;
//! for key in ["p0", "p1"] {
//!     if store.is_done(run, key)? { continue; }
//!     let mut unit = UnitRecord::new(key, key, serde_json::json!({"answer": "7"}));
//!     unit.samples.push(SampleRow::new(0, "3 + 4 = 7"));
//!     store.record(run, &unit)?;
//! }
//! assert_eq!(store.run(run)?.units, 2);
//! # Ok(()) }
//! ```
//!
//! The database runs in WAL mode with `synchronous=NORMAL`: a committed unit survives a
//! killed process; after a power loss the last few commits may be rolled back, never
//! half-applied.

use crate::error::{DataError, Result};
use arrow_schema::{DataType, Field, Fields, Schema};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use stepwise_core::Problem;

/// A run's id in the store.
pub type RunId = i64;

/// Where the store lives unless told otherwise: `.stepwise/runs.sqlite` under the
/// current directory.
pub fn default_store_path() -> PathBuf {
    Path::new(".stepwise").join("runs.sqlite")
}

const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS runs (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    kind    TEXT NOT NULL,
    config  TEXT NOT NULL,
    created TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    updated TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    status  TEXT NOT NULL DEFAULT 'running'
);
CREATE TABLE IF NOT EXISTS run_problems (
    run_id     INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    problem_id TEXT NOT NULL,
    ord        INTEGER NOT NULL,
    problem    TEXT NOT NULL,
    PRIMARY KEY (run_id, problem_id)
);
CREATE TABLE IF NOT EXISTS units (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id     INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    unit_key   TEXT NOT NULL,
    problem_id TEXT NOT NULL,
    payload    TEXT NOT NULL,
    finished   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (run_id, unit_key)
);
CREATE INDEX IF NOT EXISTS units_by_problem ON units (run_id, problem_id);
CREATE TABLE IF NOT EXISTS samples (
    unit_seq   INTEGER NOT NULL REFERENCES units(seq) ON DELETE CASCADE,
    sample_idx INTEGER NOT NULL,
    text       TEXT NOT NULL,
    answer     TEXT,
    correct    INTEGER,
    tokens     INTEGER,
    extra      TEXT,
    PRIMARY KEY (unit_seq, sample_idx)
);
CREATE TABLE IF NOT EXISTS step_scores (
    unit_seq   INTEGER NOT NULL REFERENCES units(seq) ON DELETE CASCADE,
    sample_idx INTEGER NOT NULL,
    step_idx   INTEGER NOT NULL,
    scorer     TEXT NOT NULL,
    score      REAL NOT NULL,
    PRIMARY KEY (unit_seq, sample_idx, step_idx, scorer)
);
CREATE TABLE IF NOT EXISTS step_labels (
    unit_seq   INTEGER NOT NULL REFERENCES units(seq) ON DELETE CASCADE,
    sample_idx INTEGER NOT NULL,
    step_idx   INTEGER NOT NULL,
    method     TEXT NOT NULL,
    label      REAL NOT NULL,
    PRIMARY KEY (unit_seq, sample_idx, step_idx, method)
);
"#;

/// A run's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Created or resumed and not finished (also what a killed run looks like).
    Running,
    /// Every unit finished.
    Done,
    /// Stopped on an error.
    Failed,
}

impl RunStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "running" => Some(Self::Running),
            "done" => Some(Self::Done),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the store knows about a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunInfo {
    pub id: RunId,
    pub kind: String,
    pub config: Value,
    /// UTC, `YYYY-MM-DDTHH:MM:SSZ`.
    pub created: String,
    pub updated: String,
    pub status: RunStatus,
    /// Problems registered with [`RunStore::add_problems`].
    pub problems: usize,
    /// Finished units.
    pub units: usize,
}

/// One sampled solution of a unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleRow {
    /// Position among the unit's samples (unique within the unit).
    pub sample_idx: u32,
    pub text: String,
    #[serde(default)]
    pub answer: Option<String>,
    /// Whether the answer verified against the gold answer, when checked.
    #[serde(default)]
    pub correct: Option<bool>,
    /// Generated tokens, when counted.
    #[serde(default)]
    pub tokens: Option<u64>,
    /// Anything else (JSON; `null` when absent).
    #[serde(default)]
    pub extra: Value,
}

impl SampleRow {
    /// A sample with only its text.
    pub fn new(sample_idx: u32, text: impl Into<String>) -> Self {
        Self {
            sample_idx,
            text: text.into(),
            answer: None,
            correct: None,
            tokens: None,
            extra: Value::Null,
        }
    }
}

/// A scorer's score of one step of one sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepScoreRow {
    pub sample_idx: u32,
    pub step_idx: u32,
    pub scorer: String,
    /// Must be finite.
    pub score: f64,
}

/// A labelling method's label of one step of one sample (e.g. an MC value in 0..=1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepLabelRow {
    pub sample_idx: u32,
    pub step_idx: u32,
    pub method: String,
    /// Must be finite.
    pub label: f64,
}

/// Everything one unit of work produced; written atomically by [`RunStore::record`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitRecord {
    pub key: String,
    pub problem_id: String,
    /// The unit's result in the shape its job chooses (outcome, trace, spent budget, ...).
    pub payload: Value,
    #[serde(default)]
    pub samples: Vec<SampleRow>,
    #[serde(default)]
    pub step_scores: Vec<StepScoreRow>,
    #[serde(default)]
    pub step_labels: Vec<StepLabelRow>,
}

impl UnitRecord {
    /// A unit with a payload and no samples, scores or labels yet.
    pub fn new(key: impl Into<String>, problem_id: impl Into<String>, payload: Value) -> Self {
        Self {
            key: key.into(),
            problem_id: problem_id.into(),
            payload,
            samples: Vec::new(),
            step_scores: Vec::new(),
            step_labels: Vec::new(),
        }
    }
}

/// A stored unit, as read back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredUnit {
    pub run_id: RunId,
    /// UTC time the unit was recorded.
    pub finished: String,
    #[serde(flatten)]
    pub unit: UnitRecord,
}

/// The SQLite run store.
pub struct RunStore {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for RunStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunStore")
            .field("path", &self.path)
            .finish()
    }
}

impl RunStore {
    /// Opens (creating if needed, with its parent folders) the store at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| DataError::io(parent, e))?;
        }
        let conn = Connection::open(&path).map_err(|source| DataError::Store {
            path: path.clone(),
            source,
        })?;
        let store = Self { conn, path };
        store.init()?;
        Ok(store)
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> DataError + '_ {
        |source| DataError::Store {
            path: self.path.clone(),
            source,
        }
    }

    fn init(&self) -> Result<()> {
        let e = self.err();
        self.conn
            .busy_timeout(std::time::Duration::from_secs(10))
            .map_err(&e)?;
        let mode: String = self
            .conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(&e)?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(path = %self.path.display(), mode, "run store is not in WAL mode");
        }
        self.conn
            .execute_batch("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;")
            .map_err(&e)?;
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(&e)?;
        if version > SCHEMA_VERSION {
            return Err(DataError::CorruptStore {
                path: self.path.clone(),
                message: format!(
                    "schema version {version} is newer than this stepwise understands ({SCHEMA_VERSION})"
                ),
            });
        }
        self.conn.execute_batch(SCHEMA).map_err(&e)?;
        self.conn
            .execute_batch(&format!("PRAGMA user_version={SCHEMA_VERSION}"))
            .map_err(&e)?;
        Ok(())
    }

    /// Starts a new run.
    pub fn create_run(&mut self, kind: &str, config: &Value) -> Result<RunId> {
        let text = config.to_string();
        self.conn
            .execute(
                "INSERT INTO runs (kind, config) VALUES (?1, ?2)",
                params![kind, text],
            )
            .map_err(self.err())?;
        let id = self.conn.last_insert_rowid();
        tracing::info!(run = id, kind, "created run");
        Ok(id)
    }

    /// Reopens run `id` to resume it: the kind and configuration must equal the ones it
    /// was created with ([`DataError::ConfigMismatch`] lists every difference). Sets the
    /// status back to running.
    pub fn open_run(&mut self, id: RunId, kind: &str, config: &Value) -> Result<RunInfo> {
        let info = self.run(id)?;
        let mut diffs = Vec::new();
        if info.kind != kind {
            diffs.push(format!("kind: stored '{}', given '{kind}'", info.kind));
        }
        json_diff("config", &info.config, config, &mut diffs);
        if !diffs.is_empty() {
            return Err(DataError::ConfigMismatch { id, diffs });
        }
        self.set_status(id, RunStatus::Running)?;
        self.run(id)
    }

    /// [`RunStore::open_run`] when `resume` is given, else [`RunStore::create_run`].
    pub fn create_or_resume(
        &mut self,
        kind: &str,
        config: &Value,
        resume: Option<RunId>,
    ) -> Result<RunId> {
        match resume {
            Some(id) => self.open_run(id, kind, config).map(|i| i.id),
            None => self.create_run(kind, config),
        }
    }

    /// Sets a run's status.
    pub fn set_status(&mut self, id: RunId, status: RunStatus) -> Result<()> {
        let n = self
            .conn
            .execute(
                "UPDATE runs SET status = ?2, updated = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') WHERE id = ?1",
                params![id, status.as_str()],
            )
            .map_err(self.err())?;
        if n == 0 {
            return Err(DataError::NoSuchRun {
                path: self.path.clone(),
                id,
            });
        }
        Ok(())
    }

    /// One run.
    pub fn run(&self, id: RunId) -> Result<RunInfo> {
        self.query_runs(Some(id))?
            .pop()
            .ok_or_else(|| DataError::NoSuchRun {
                path: self.path.clone(),
                id,
            })
    }

    /// Every run, oldest first.
    pub fn list_runs(&self) -> Result<Vec<RunInfo>> {
        self.query_runs(None)
    }

    fn query_runs(&self, id: Option<RunId>) -> Result<Vec<RunInfo>> {
        let sql = "SELECT r.id, r.kind, r.config, r.created, r.updated, r.status,
                (SELECT COUNT(*) FROM run_problems p WHERE p.run_id = r.id),
                (SELECT COUNT(*) FROM units u WHERE u.run_id = r.id)
             FROM runs r WHERE (?1 IS NULL OR r.id = ?1) ORDER BY r.id";
        let mut stmt = self.conn.prepare_cached(sql).map_err(self.err())?;
        let rows = stmt
            .query_map(params![id], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, i64>(7)?,
                ))
            })
            .map_err(self.err())?;
        let mut out = Vec::new();
        for row in rows {
            let (id, kind, config, created, updated, status, problems, units) =
                row.map_err(self.err())?;
            let config = serde_json::from_str(&config)
                .map_err(|e| self.corrupt(format!("run {id}: config is not JSON: {e}")))?;
            let status = RunStatus::parse(&status)
                .ok_or_else(|| self.corrupt(format!("run {id}: unknown status '{status}'")))?;
            out.push(RunInfo {
                id,
                kind,
                config,
                created,
                updated,
                status,
                problems: problems as usize,
                units: units as usize,
            });
        }
        Ok(out)
    }

    fn corrupt(&self, message: String) -> DataError {
        DataError::CorruptStore {
            path: self.path.clone(),
            message,
        }
    }

    fn ensure_run(&self, id: RunId) -> Result<()> {
        let found: Option<i64> = self
            .conn
            .query_row("SELECT id FROM runs WHERE id = ?1", [id], |r| r.get(0))
            .optional()
            .map_err(self.err())?;
        match found {
            Some(_) => Ok(()),
            None => Err(DataError::NoSuchRun {
                path: self.path.clone(),
                id,
            }),
        }
    }

    /// Registers the run's problems (idempotent: a problem id already present is kept).
    pub fn add_problems(&mut self, run: RunId, problems: &[Problem]) -> Result<()> {
        self.ensure_run(run)?;
        let path = self.path.clone();
        let e = move |source| DataError::Store {
            path: path.clone(),
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&e)?;
        {
            let base: i64 = tx
                .query_row(
                    "SELECT COUNT(*) FROM run_problems WHERE run_id = ?1",
                    [run],
                    |r| r.get(0),
                )
                .map_err(&e)?;
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO run_problems (run_id, problem_id, ord, problem) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (run_id, problem_id) DO NOTHING",
                )
                .map_err(&e)?;
            let mut ord = base;
            for p in problems {
                let json = serde_json::to_string(p).map_err(|err| DataError::InvalidUnit {
                    run,
                    key: p.id.clone(),
                    message: format!("problem does not serialize: {err}"),
                })?;
                ord += stmt.execute(params![run, p.id, ord, json]).map_err(&e)? as i64;
            }
        }
        tx.commit().map_err(&e)
    }

    /// The run's problems, in the order they were added.
    pub fn problems(&self, run: RunId) -> Result<Vec<Problem>> {
        self.ensure_run(run)?;
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT problem_id, problem FROM run_problems WHERE run_id = ?1 ORDER BY ord",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map([run], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(self.err())?;
        let mut out = Vec::new();
        for row in rows {
            let (id, json) = row.map_err(self.err())?;
            out.push(serde_json::from_str(&json).map_err(|e| {
                self.corrupt(format!("run {run}: problem '{id}' is not valid: {e}"))
            })?);
        }
        Ok(out)
    }

    /// Whether unit `key` of run `run` has been recorded.
    pub fn is_done(&self, run: RunId, key: &str) -> Result<bool> {
        self.conn
            .prepare_cached("SELECT 1 FROM units WHERE run_id = ?1 AND unit_key = ?2")
            .and_then(|mut s| s.exists(params![run, key]))
            .map_err(self.err())
    }

    /// The keys of every finished unit of `run` (one query, for resuming large runs).
    pub fn done_keys(&self, run: RunId) -> Result<HashSet<String>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT unit_key FROM units WHERE run_id = ?1")
            .map_err(self.err())?;
        let keys = stmt
            .query_map([run], |r| r.get::<_, String>(0))
            .map_err(self.err())?
            .collect::<std::result::Result<HashSet<_>, _>>()
            .map_err(self.err())?;
        Ok(keys)
    }

    /// Writes a unit with its samples, step scores and step labels in one transaction.
    /// Returns `false` (and writes nothing) when the unit was already recorded.
    pub fn record(&mut self, run: RunId, unit: &UnitRecord) -> Result<bool> {
        validate_unit(run, unit)?;
        let payload = unit.payload.to_string();
        let path = self.path.clone();
        let e = move |source| DataError::Store {
            path: path.clone(),
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&e)?;
        let seq = {
            let mut ins = tx
                .prepare_cached(
                    "INSERT INTO units (run_id, unit_key, problem_id, payload) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (run_id, unit_key) DO NOTHING",
                )
                .map_err(&e)?;
            match ins.execute(params![run, unit.key, unit.problem_id, payload]) {
                Ok(0) => None,
                Ok(_) => Some(tx.last_insert_rowid()),
                Err(rusqlite::Error::SqliteFailure(f, _))
                    if f.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    return Err(DataError::NoSuchRun {
                        path: self.path.clone(),
                        id: run,
                    });
                }
                Err(err) => return Err(e(err)),
            }
        };
        let Some(seq) = seq else {
            tx.rollback().map_err(&e)?;
            return Ok(false);
        };
        {
            let mut s = tx
                .prepare_cached(
                    "INSERT INTO samples (unit_seq, sample_idx, text, answer, correct, tokens, extra)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(&e)?;
            for r in &unit.samples {
                let extra = (!r.extra.is_null()).then(|| r.extra.to_string());
                s.execute(params![
                    seq,
                    r.sample_idx,
                    r.text,
                    r.answer,
                    r.correct,
                    r.tokens.map(|t| t as i64),
                    extra
                ])
                .map_err(&e)?;
            }
            let mut s = tx
                .prepare_cached(
                    "INSERT INTO step_scores (unit_seq, sample_idx, step_idx, scorer, score) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(&e)?;
            for r in &unit.step_scores {
                s.execute(params![seq, r.sample_idx, r.step_idx, r.scorer, r.score])
                    .map_err(&e)?;
            }
            let mut s = tx
                .prepare_cached(
                    "INSERT INTO step_labels (unit_seq, sample_idx, step_idx, method, label) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(&e)?;
            for r in &unit.step_labels {
                s.execute(params![seq, r.sample_idx, r.step_idx, r.method, r.label])
                    .map_err(&e)?;
            }
        }
        tx.commit().map_err(&e)?;
        Ok(true)
    }

    /// Every finished unit of `run` with its samples, scores and labels, in the order recorded.
    pub fn units(&self, run: RunId) -> Result<Vec<StoredUnit>> {
        self.ensure_run(run)?;
        let e = self.err();
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT seq, unit_key, problem_id, payload, finished FROM units WHERE run_id = ?1 ORDER BY seq",
            )
            .map_err(&e)?;
        let heads = stmt
            .query_map([run], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                ))
            })
            .map_err(&e)?
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(&e)?;
        let mut samples = self
            .conn
            .prepare_cached(
                "SELECT sample_idx, text, answer, correct, tokens, extra FROM samples WHERE unit_seq = ?1 ORDER BY sample_idx",
            )
            .map_err(&e)?;
        let mut scores = self
            .conn
            .prepare_cached(
                "SELECT sample_idx, step_idx, scorer, score FROM step_scores WHERE unit_seq = ?1
                 ORDER BY sample_idx, step_idx, scorer",
            )
            .map_err(&e)?;
        let mut labels = self
            .conn
            .prepare_cached(
                "SELECT sample_idx, step_idx, method, label FROM step_labels WHERE unit_seq = ?1
                 ORDER BY sample_idx, step_idx, method",
            )
            .map_err(&e)?;
        let mut out = Vec::with_capacity(heads.len());
        for (seq, key, problem_id, payload, finished) in heads {
            let payload = serde_json::from_str(&payload).map_err(|err| {
                self.corrupt(format!(
                    "run {run}, unit '{key}': payload is not JSON: {err}"
                ))
            })?;
            let raw_samples = samples
                .query_map([seq], |r| {
                    Ok((
                        r.get::<_, u32>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Option<String>>(2)?,
                        r.get::<_, Option<bool>>(3)?,
                        r.get::<_, Option<i64>>(4)?,
                        r.get::<_, Option<String>>(5)?,
                    ))
                })
                .map_err(&e)?
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(&e)?;
            let mut sample_rows = Vec::with_capacity(raw_samples.len());
            for (sample_idx, text, answer, correct, tokens, extra) in raw_samples {
                let extra = match extra {
                    None => Value::Null,
                    Some(t) => serde_json::from_str(&t).map_err(|err| {
                        self.corrupt(format!(
                            "run {run}, unit '{key}': sample extra is not JSON: {err}"
                        ))
                    })?,
                };
                sample_rows.push(SampleRow {
                    sample_idx,
                    text,
                    answer,
                    correct,
                    tokens: tokens.map(|t| t as u64),
                    extra,
                });
            }
            let step_scores = scores
                .query_map([seq], |r| {
                    Ok(StepScoreRow {
                        sample_idx: r.get(0)?,
                        step_idx: r.get(1)?,
                        scorer: r.get(2)?,
                        score: r.get(3)?,
                    })
                })
                .map_err(&e)?
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(&e)?;
            let step_labels = labels
                .query_map([seq], |r| {
                    Ok(StepLabelRow {
                        sample_idx: r.get(0)?,
                        step_idx: r.get(1)?,
                        method: r.get(2)?,
                        label: r.get(3)?,
                    })
                })
                .map_err(&e)?
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(&e)?;
            out.push(StoredUnit {
                run_id: run,
                finished,
                unit: UnitRecord {
                    key,
                    problem_id,
                    payload,
                    samples: sample_rows,
                    step_scores,
                    step_labels,
                },
            });
        }
        Ok(out)
    }

    /// Writes one JSON line per finished unit ([`StoredUnit`]: `run_id`, `finished`, `key`,
    /// `problem_id`, `payload`, `samples`, `step_scores`, `step_labels`). Returns the count.
    pub fn export_jsonl<W: Write>(&self, run: RunId, out: W) -> Result<usize> {
        let units = self.units(run)?;
        crate::jsonl::write_jsonl(out, &units).map_err(|e| DataError::io("<export>", e))?;
        Ok(units.len())
    }

    /// Writes one Parquet row per finished unit: the same columns as the JSONL export,
    /// with `payload` and each sample's `extra` as JSON text, and `samples`,
    /// `step_scores`, `step_labels` as lists of structs. Returns the count.
    pub fn export_parquet(&self, run: RunId, path: &Path) -> Result<usize> {
        let units = self.units(run)?;
        if units.is_empty() {
            return Err(DataError::parquet(
                path,
                format!("run {run} has no finished units to export"),
            ));
        }
        let rows: Vec<ParquetUnit> = units.iter().map(ParquetUnit::from).collect();
        crate::parquet_io::write_parquet_rows(path, Arc::new(export_schema()), &rows)?;
        Ok(rows.len())
    }
}

#[derive(Serialize)]
struct ParquetSample<'a> {
    sample_idx: u32,
    text: &'a str,
    answer: Option<&'a str>,
    correct: Option<bool>,
    tokens: Option<u64>,
    extra: Option<String>,
}

#[derive(Serialize)]
struct ParquetUnit<'a> {
    run_id: i64,
    key: &'a str,
    problem_id: &'a str,
    finished: &'a str,
    payload: String,
    samples: Vec<ParquetSample<'a>>,
    step_scores: &'a [StepScoreRow],
    step_labels: &'a [StepLabelRow],
}

impl<'a> From<&'a StoredUnit> for ParquetUnit<'a> {
    fn from(s: &'a StoredUnit) -> Self {
        Self {
            run_id: s.run_id,
            key: &s.unit.key,
            problem_id: &s.unit.problem_id,
            finished: &s.finished,
            payload: s.unit.payload.to_string(),
            samples: s
                .unit
                .samples
                .iter()
                .map(|r| ParquetSample {
                    sample_idx: r.sample_idx,
                    text: &r.text,
                    answer: r.answer.as_deref(),
                    correct: r.correct,
                    tokens: r.tokens,
                    extra: (!r.extra.is_null()).then(|| r.extra.to_string()),
                })
                .collect(),
            step_scores: &s.unit.step_scores,
            step_labels: &s.unit.step_labels,
        }
    }
}

fn list_of(fields: Vec<Field>) -> DataType {
    DataType::List(Arc::new(Field::new(
        "item",
        DataType::Struct(Fields::from(fields)),
        false,
    )))
}

/// The Arrow schema of [`RunStore::export_parquet`].
pub fn export_schema() -> Schema {
    Schema::new(vec![
        Field::new("run_id", DataType::Int64, false),
        Field::new("key", DataType::Utf8, false),
        Field::new("problem_id", DataType::Utf8, false),
        Field::new("finished", DataType::Utf8, false),
        Field::new("payload", DataType::Utf8, false),
        Field::new(
            "samples",
            list_of(vec![
                Field::new("sample_idx", DataType::UInt32, false),
                Field::new("text", DataType::Utf8, false),
                Field::new("answer", DataType::Utf8, true),
                Field::new("correct", DataType::Boolean, true),
                Field::new("tokens", DataType::UInt64, true),
                Field::new("extra", DataType::Utf8, true),
            ]),
            false,
        ),
        Field::new(
            "step_scores",
            list_of(vec![
                Field::new("sample_idx", DataType::UInt32, false),
                Field::new("step_idx", DataType::UInt32, false),
                Field::new("scorer", DataType::Utf8, false),
                Field::new("score", DataType::Float64, false),
            ]),
            false,
        ),
        Field::new(
            "step_labels",
            list_of(vec![
                Field::new("sample_idx", DataType::UInt32, false),
                Field::new("step_idx", DataType::UInt32, false),
                Field::new("method", DataType::Utf8, false),
                Field::new("label", DataType::Float64, false),
            ]),
            false,
        ),
    ])
}

fn validate_unit(run: RunId, u: &UnitRecord) -> Result<()> {
    let bad = |message: String| DataError::InvalidUnit {
        run,
        key: u.key.clone(),
        message,
    };
    if u.key.is_empty() {
        return Err(bad("empty unit key".into()));
    }
    let mut seen = HashSet::new();
    for s in &u.samples {
        if !seen.insert(s.sample_idx) {
            return Err(bad(format!("sample {} appears twice", s.sample_idx)));
        }
        if s.tokens.is_some_and(|t| t > i64::MAX as u64) {
            return Err(bad(format!(
                "sample {}: token count out of range",
                s.sample_idx
            )));
        }
    }
    let mut seen = HashSet::new();
    for s in &u.step_scores {
        if !s.score.is_finite() {
            return Err(bad(format!(
                "score of sample {} step {} by '{}' is {} (must be finite)",
                s.sample_idx, s.step_idx, s.scorer, s.score
            )));
        }
        if !seen.insert((s.sample_idx, s.step_idx, s.scorer.as_str())) {
            return Err(bad(format!(
                "sample {} step {} scored twice by '{}'",
                s.sample_idx, s.step_idx, s.scorer
            )));
        }
    }
    let mut seen = HashSet::new();
    for s in &u.step_labels {
        if !s.label.is_finite() {
            return Err(bad(format!(
                "label of sample {} step {} by '{}' is {} (must be finite)",
                s.sample_idx, s.step_idx, s.method, s.label
            )));
        }
        if !seen.insert((s.sample_idx, s.step_idx, s.method.as_str())) {
            return Err(bad(format!(
                "sample {} step {} labelled twice by '{}'",
                s.sample_idx, s.step_idx, s.method
            )));
        }
    }
    Ok(())
}

/// Lists the differences between two JSON values as `path: stored X, given Y` lines.
pub fn json_diff(path: &str, stored: &Value, given: &Value, out: &mut Vec<String>) {
    match (stored, given) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, va) in a {
                let p = format!("{path}.{k}");
                match b.get(k) {
                    Some(vb) => json_diff(&p, va, vb, out),
                    None => out.push(format!("{p}: stored {va}, not given")),
                }
            }
            for (k, vb) in b {
                if !a.contains_key(k) {
                    out.push(format!("{path}.{k}: not stored, given {vb}"));
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (va, vb)) in a.iter().zip(b).enumerate() {
                json_diff(&format!("{path}[{i}]"), va, vb, out);
            }
        }
        (a, b) if a == b => {}
        (a, b) => out.push(format!("{path}: stored {a}, given {b}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn unit(key: &str, n: u32) -> UnitRecord {
        let mut u = UnitRecord::new(
            key,
            format!("p-{key}"),
            json!({"answer": key, "spent": {"tokens": n}}),
        );
        for s in 0..n {
            let mut row = SampleRow::new(s, format!("sample {s} of {key}"));
            row.answer = Some(format!("{s}"));
            row.correct = Some(s % 2 == 0);
            row.tokens = Some(10 + u64::from(s));
            row.extra = if s == 0 {
                json!({"t": 0.7})
            } else {
                Value::Null
            };
            u.samples.push(row);
            for step in 0..2 {
                u.step_scores.push(StepScoreRow {
                    sample_idx: s,
                    step_idx: step,
                    scorer: "arith".into(),
                    score: 0.25 * f64::from(step),
                });
            }
            u.step_labels.push(StepLabelRow {
                sample_idx: s,
                step_idx: 0,
                method: "mc".into(),
                label: 0.5,
            });
        }
        u
    }

    fn store() -> (tempfile::TempDir, RunStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = RunStore::open(dir.path().join("sub/runs.sqlite")).unwrap();
        (dir, s)
    }

    #[test]
    fn records_units_once_and_reads_them_back() {
        let (_d, mut s) = store();
        let run = s.create_run("solve", &json!({"k": 4})).unwrap();
        assert!(!s.is_done(run, "a").unwrap());
        assert!(s.record(run, &unit("a", 3)).unwrap());
        assert!(s.is_done(run, "a").unwrap());
        // A second record of the same key writes nothing, even with different content.
        assert!(!s.record(run, &unit("a", 5)).unwrap());
        assert!(s.record(run, &unit("b", 1)).unwrap());
        let units = s.units(run).unwrap();
        assert_eq!(units.len(), 2);
        assert_eq!(units[0].unit, unit("a", 3));
        assert_eq!(units[1].unit, unit("b", 1));
        assert_eq!(
            s.done_keys(run).unwrap(),
            HashSet::from(["a".to_string(), "b".to_string()])
        );
        let info = s.run(run).unwrap();
        assert_eq!(
            (info.units, info.status, info.kind.as_str()),
            (2, RunStatus::Running, "solve")
        );
        // Units are per run.
        let other = s.create_run("solve", &json!({"k": 4})).unwrap();
        assert!(!s.is_done(other, "a").unwrap());
    }

    #[test]
    fn store_is_in_wal_mode() {
        let (_d, s) = store();
        let mode: String = s
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = s
            .conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 1, "NORMAL");
    }

    #[test]
    fn open_run_checks_kind_and_config() {
        let (_d, mut s) = store();
        let cfg = json!({"dataset": "gsm8k:test", "k": 4, "scorers": ["a", "b"]});
        let run = s.create_run("solve", &cfg).unwrap();
        s.set_status(run, RunStatus::Failed).unwrap();
        let info = s.open_run(run, "solve", &cfg).unwrap();
        assert_eq!(info.status, RunStatus::Running);
        let e = s
            .open_run(
                run,
                "annotate",
                &json!({"dataset": "gsm8k:test", "k": 8, "scorers": ["a", "c"], "x": 1}),
            )
            .unwrap_err();
        let DataError::ConfigMismatch { id, diffs } = &e else {
            panic!("{e}")
        };
        assert_eq!(*id, run);
        assert_eq!(
            diffs,
            &vec![
                "kind: stored 'solve', given 'annotate'".to_string(),
                "config.k: stored 4, given 8".into(),
                "config.scorers[1]: stored \"b\", given \"c\"".into(),
                "config.x: not stored, given 1".into(),
            ]
        );
        assert!(matches!(
            s.open_run(999, "solve", &cfg),
            Err(DataError::NoSuchRun { id: 999, .. })
        ));
        assert!(matches!(
            s.set_status(999, RunStatus::Done),
            Err(DataError::NoSuchRun { .. })
        ));
    }

    #[test]
    fn invalid_units_are_rejected_before_writing() {
        let (_d, mut s) = store();
        let run = s.create_run("x", &json!({})).unwrap();
        let mut u = unit("a", 1);
        u.step_scores[0].score = f64::NAN;
        let e = s.record(run, &u).unwrap_err().to_string();
        assert!(e.contains("must be finite"), "{e}");
        let mut u = unit("a", 2);
        u.samples[1].sample_idx = 0;
        assert!(s.record(run, &u).is_err());
        assert!(!s.is_done(run, "a").unwrap());
        assert!(matches!(
            s.record(12345, &unit("a", 1)),
            Err(DataError::NoSuchRun { id: 12345, .. })
        ));
    }

    #[test]
    fn problems_are_added_idempotently_in_order() {
        let (_d, mut s) = store();
        let run = s.create_run("x", &json!({})).unwrap();
        let ps: Vec<Problem> = (0..3)
            .map(|i| Problem::new(format!("p{i}"), "q").with_gold("1"))
            .collect();
        s.add_problems(run, &ps[..2]).unwrap();
        s.add_problems(run, &ps).unwrap();
        assert_eq!(s.problems(run).unwrap(), ps);
        assert_eq!(s.list_runs().unwrap()[0].problems, 3);
    }

    #[test]
    fn exports_jsonl_and_parquet() {
        let (dir, mut s) = store();
        let run = s.create_run("annotate", &json!({"m": "mc"})).unwrap();
        s.record(run, &unit("a", 2)).unwrap();
        s.record(run, &unit("b", 0)).unwrap();
        let mut buf = Vec::new();
        assert_eq!(s.export_jsonl(run, &mut buf).unwrap(), 2);
        let lines: Vec<Value> = String::from_utf8(buf)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["key"], "a");
        assert_eq!(lines[0]["samples"][0]["extra"]["t"], 0.7);
        assert_eq!(lines[0]["step_scores"].as_array().unwrap().len(), 4);
        let back: StoredUnit = serde_json::from_value(lines[0].clone()).unwrap();
        assert_eq!(back.unit, unit("a", 2));

        let path = dir.path().join("run.parquet");
        assert_eq!(s.export_parquet(run, &path).unwrap(), 2);
        let rows = crate::parquet_io::read_parquet_records(&path).unwrap();
        assert_eq!(rows.len(), 2);
        let r0 = &rows[0].value;
        assert_eq!(r0["key"], "a");
        assert_eq!(r0["samples"][1]["tokens"], 11);
        assert_eq!(r0["step_labels"][0]["method"], "mc");
        let payload: Value = serde_json::from_str(r0["payload"].as_str().unwrap()).unwrap();
        assert_eq!(payload, unit("a", 2).payload);
        let empty = s.create_run("annotate", &json!({})).unwrap();
        assert!(
            s.export_parquet(empty, &dir.path().join("e.parquet"))
                .is_err()
        );
    }

    #[test]
    fn refuses_a_newer_schema() {
        let (dir, s) = store();
        s.conn.execute_batch("PRAGMA user_version=99").unwrap();
        drop(s);
        let e = RunStore::open(dir.path().join("sub/runs.sqlite"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("newer"), "{e}");
    }
}
