//! The embedded run store: one SQLite file.
//!
//! The database runs in WAL mode with `synchronous=NORMAL`: a committed unit survives a
//! killed process; after a power loss the last few commits may be rolled back, never
//! half-applied. One connection per [`SqliteStore`], behind a mutex: SQLite serializes
//! writers anyway, and a unit is written in one short `IMMEDIATE` transaction.

use crate::RunStore;
use crate::error::{Result, StoreError};
use crate::schema::{SCHEMA_VERSION, migrate};
use crate::types::{
    RunId, RunInfo, RunStatus, SampleRow, StepLabelRow, StepScoreRow, StoredUnit, UnitRecord,
    validate_unit,
};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde_json::Value;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use stepwise_core::Problem;

/// The SQLite run store.
pub struct SqliteStore {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

impl SqliteStore {
    /// Opens (creating if needed, with its parent folders) the store at `path`, migrating
    /// an older schema.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| StoreError::Io {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        let conn = Connection::open(&path).map_err(|source| StoreError::Sqlite {
            path: path.clone(),
            source,
        })?;
        Self::init(conn, path)
    }

    /// Opens an existing store for reading only (the explorer): SQLite is opened with
    /// `SQLITE_OPEN_READ_ONLY`, so no query through this handle can write. Nothing is
    /// created or migrated; a store of another schema version is refused (any other
    /// `stepwise` command migrates it).
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Self> {
        use rusqlite::OpenFlags;
        let path = path.as_ref().to_path_buf();
        if !path.is_file() {
            return Err(StoreError::Io {
                path: path.clone(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no run store here"),
            });
        }
        let e = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(e)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(e)?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(e)?;
        if version != SCHEMA_VERSION {
            return Err(StoreError::Corrupt {
                location: path.display().to_string(),
                message: format!(
                    "schema version {version}, this stepwise reads {SCHEMA_VERSION} read-only (run `stepwise data runs` once to migrate it)"
                ),
            });
        }
        Ok(Self {
            conn: Mutex::new(conn),
            path,
        })
    }

    /// A store that lives in memory only (for jobs whose results go elsewhere and need
    /// no resume, and for tests).
    pub fn in_memory() -> Result<Self> {
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(|source| StoreError::Sqlite {
            path: path.clone(),
            source,
        })?;
        Self::init(conn, path)
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        |source| StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    fn corrupt(&self, message: String) -> StoreError {
        StoreError::Corrupt {
            location: self.location(),
            message,
        }
    }

    fn no_run(&self, id: RunId) -> StoreError {
        StoreError::NoSuchRun {
            location: self.location(),
            id,
        }
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written (transactions
        // roll back on drop), so a poisoned lock is still usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn init(mut conn: Connection, path: PathBuf) -> Result<Self> {
        let e = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(e)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(e)?;
        if !mode.eq_ignore_ascii_case("wal") && !mode.eq_ignore_ascii_case("memory") {
            tracing::warn!(path = %path.display(), mode, "run store is not in WAL mode");
        }
        conn.execute_batch("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;")
            .map_err(e)?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(e)?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::Corrupt {
                location: path.display().to_string(),
                message: format!(
                    "schema version {version} is newer than this stepwise understands ({SCHEMA_VERSION})"
                ),
            });
        }
        if version < SCHEMA_VERSION {
            migrate(&mut conn, version).map_err(e)?;
            if version > 0 {
                tracing::info!(path = %path.display(), from = version, to = SCHEMA_VERSION, "migrated run store");
            }
        }
        Ok(Self {
            conn: Mutex::new(conn),
            path,
        })
    }

    fn query_runs(&self, id: Option<RunId>) -> Result<Vec<RunInfo>> {
        let sql =
            "SELECT r.id, r.kind, r.version, r.config, r.created, r.updated, r.status, r.error,
                (SELECT COUNT(*) FROM run_problems p WHERE p.run_id = r.id),
                (SELECT COUNT(*) FROM units u WHERE u.run_id = r.id)
             FROM runs r WHERE (?1 IS NULL OR r.id = ?1) ORDER BY r.id";
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(sql).map_err(self.err())?;
        let rows = stmt
            .query_map(params![id], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, Option<String>>(7)?,
                    r.get::<_, i64>(8)?,
                    r.get::<_, i64>(9)?,
                ))
            })
            .map_err(self.err())?;
        let mut out = Vec::new();
        for row in rows {
            let (id, kind, version, config, created, updated, status, error, problems, units) =
                row.map_err(self.err())?;
            let config = serde_json::from_str(&config)
                .map_err(|e| self.corrupt(format!("run {id}: config is not JSON: {e}")))?;
            let status = RunStatus::parse(&status)
                .ok_or_else(|| self.corrupt(format!("run {id}: unknown status '{status}'")))?;
            let version = u32::try_from(version)
                .map_err(|_| self.corrupt(format!("run {id}: version {version} out of range")))?;
            out.push(RunInfo {
                id,
                kind,
                version,
                config,
                created,
                updated,
                status,
                error,
                problems: problems as usize,
                units: units as usize,
                // one process: the total lives in its job; a finished run holds them all
                total: (status == RunStatus::Done).then_some(units as usize),
            });
        }
        Ok(out)
    }

    /// Adds `problems` to `run` inside the caller's transaction, after those it has; a
    /// problem id already present is kept.
    fn insert_problems(&self, tx: &Connection, run: RunId, problems: &[Problem]) -> Result<()> {
        let e = self.err();
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
            let json = serde_json::to_string(p).map_err(|err| StoreError::InvalidUnit {
                run,
                key: p.id.clone(),
                message: format!("problem does not serialize: {err}"),
            })?;
            ord += stmt.execute(params![run, p.id, ord, json]).map_err(&e)? as i64;
        }
        Ok(())
    }

    fn ensure_run(&self, conn: &Connection, id: RunId) -> Result<()> {
        let found: Option<i64> = conn
            .query_row("SELECT id FROM runs WHERE id = ?1", [id], |r| r.get(0))
            .optional()
            .map_err(self.err())?;
        match found {
            Some(_) => Ok(()),
            None => Err(self.no_run(id)),
        }
    }

    #[cfg(test)]
    pub(crate) fn pragma(&self, name: &str) -> String {
        let conn = self.conn();
        conn.query_row(&format!("PRAGMA {name}"), [], |r| {
            r.get::<_, rusqlite::types::Value>(0)
        })
        .map(|v| match v {
            rusqlite::types::Value::Integer(i) => i.to_string(),
            rusqlite::types::Value::Text(t) => t,
            other => format!("{other:?}"),
        })
        .unwrap_or_default()
    }
}

impl RunStore for SqliteStore {
    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn create_run_with_problems(
        &self,
        kind: &str,
        version: u32,
        config: &Value,
        problems: &[Problem],
    ) -> Result<RunId> {
        let text = config.to_string();
        let mut conn = self.conn();
        let e = self.err();
        // one transaction: dropped without commit on any error, so it rolls back whole
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&e)?;
        tx.execute(
            "INSERT INTO runs (kind, version, config) VALUES (?1, ?2, ?3)",
            params![kind, version, text],
        )
        .map_err(&e)?;
        let id = tx.last_insert_rowid();
        self.insert_problems(&tx, id, problems)?;
        tx.commit().map_err(&e)?;
        tracing::info!(run = id, kind, problems = problems.len(), "created run");
        Ok(id)
    }

    fn run(&self, id: RunId) -> Result<RunInfo> {
        self.query_runs(Some(id))?
            .pop()
            .ok_or_else(|| self.no_run(id))
    }

    fn list_runs(&self) -> Result<Vec<RunInfo>> {
        self.query_runs(None)
    }

    fn set_status(&self, id: RunId, status: RunStatus, error: Option<&str>) -> Result<()> {
        let error = status.kept_error(error);
        let n = self
            .conn()
            .execute(
                "UPDATE runs SET status = ?2, error = ?3, updated = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') WHERE id = ?1",
                params![id, status.as_str(), error],
            )
            .map_err(self.err())?;
        if n == 0 {
            return Err(self.no_run(id));
        }
        Ok(())
    }

    fn add_problems(&self, run: RunId, problems: &[Problem]) -> Result<()> {
        let mut conn = self.conn();
        self.ensure_run(&conn, run)?;
        let e = self.err();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&e)?;
        self.insert_problems(&tx, run, problems)?;
        tx.commit().map_err(&e)
    }

    fn problems(&self, run: RunId) -> Result<Vec<Problem>> {
        let conn = self.conn();
        self.ensure_run(&conn, run)?;
        let mut stmt = conn
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

    fn done_keys(&self, run: RunId) -> Result<HashSet<String>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT unit_key FROM units WHERE run_id = ?1")
            .map_err(self.err())?;
        let keys = stmt
            .query_map([run], |r| r.get::<_, String>(0))
            .map_err(self.err())?
            .collect::<std::result::Result<HashSet<_>, _>>()
            .map_err(self.err())?;
        Ok(keys)
    }

    fn record(&self, run: RunId, unit: &UnitRecord) -> Result<bool> {
        validate_unit(run, unit)?;
        let payload = unit.payload.to_string();
        let mut conn = self.conn();
        let e = self.err();
        let tx = conn
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
                    return Err(self.no_run(run));
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

    fn units(&self, run: RunId) -> Result<Vec<StoredUnit>> {
        let conn = self.conn();
        self.ensure_run(&conn, run)?;
        let e = self.err();
        let mut stmt = conn
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
        let mut samples = conn
            .prepare_cached(
                "SELECT sample_idx, text, answer, correct, tokens, extra FROM samples WHERE unit_seq = ?1 ORDER BY sample_idx",
            )
            .map_err(&e)?;
        let mut scores = conn
            .prepare_cached(
                "SELECT sample_idx, step_idx, scorer, score FROM step_scores WHERE unit_seq = ?1
                 ORDER BY sample_idx, step_idx, scorer",
            )
            .map_err(&e)?;
        let mut labels = conn
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::{export_jsonl, export_parquet};
    use serde_json::Value;
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

    fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(dir.path().join("sub/runs.sqlite")).unwrap();
        (dir, s)
    }

    #[test]
    fn records_units_once_and_reads_them_back() {
        let (_d, s) = store();
        let run = s.create_run("solve", 1, &json!({"k": 4})).unwrap();
        assert!(!s.done_keys(run).unwrap().contains("a"));
        assert!(s.record(run, &unit("a", 3)).unwrap());
        assert!(s.done_keys(run).unwrap().contains("a"));
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
        let other = s.create_run("solve", 1, &json!({"k": 4})).unwrap();
        assert!(!s.done_keys(other).unwrap().contains("a"));
    }

    #[test]
    fn store_is_in_wal_mode() {
        let (_d, s) = store();
        let mode: String = s
            .conn()
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = s
            .conn()
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 1, "NORMAL");
    }

    #[test]
    fn open_run_checks_kind_and_config() {
        let (_d, s) = store();
        let cfg = json!({"dataset": "gsm8k:test", "k": 4, "scorers": ["a", "b"]});
        let run = s.create_run("solve", 1, &cfg).unwrap();
        s.set_status(run, RunStatus::Failed, None).unwrap();
        let info = s.open_run(run, "solve", 1, &cfg).unwrap();
        assert_eq!(info.status, RunStatus::Running);
        let e = s
            .open_run(
                run,
                "annotate",
                1,
                &json!({"dataset": "gsm8k:test", "k": 8, "scorers": ["a", "c"], "x": 1}),
            )
            .unwrap_err();
        let StoreError::ConfigMismatch { id, diffs } = &e else {
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
            s.open_run(999, "solve", 1, &cfg),
            Err(StoreError::NoSuchRun { id: 999, .. })
        ));
        assert!(matches!(
            s.set_status(999, RunStatus::Done, None),
            Err(StoreError::NoSuchRun { .. })
        ));
    }

    #[test]
    fn invalid_units_are_rejected_before_writing() {
        let (_d, s) = store();
        let run = s.create_run("x", 1, &json!({})).unwrap();
        let mut u = unit("a", 1);
        u.step_scores[0].score = f64::NAN;
        let e = s.record(run, &u).unwrap_err().to_string();
        assert!(e.contains("must be finite"), "{e}");
        let mut u = unit("a", 2);
        u.samples[1].sample_idx = 0;
        assert!(s.record(run, &u).is_err());
        assert!(!s.done_keys(run).unwrap().contains("a"));
        assert!(matches!(
            s.record(12345, &unit("a", 1)),
            Err(StoreError::NoSuchRun { id: 12345, .. })
        ));
    }

    #[test]
    fn a_full_disk_while_creating_a_run_writes_nothing() {
        let (_d, s) = store();
        let page_count: i64 = s
            .conn()
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .unwrap();
        // the database may not grow past a few pages: SQLITE_FULL, as on a full disk
        let _: i64 = s
            .conn()
            .query_row(
                &format!("PRAGMA max_page_count = {}", page_count + 2),
                [],
                |r| r.get(0),
            )
            .unwrap();
        let problems: Vec<Problem> = (0..200)
            .map(|i| Problem::new(format!("p{i}"), "x".repeat(2000)))
            .collect();
        let e = s
            .create_run_with_problems("solve", 1, &json!({}), &problems)
            .unwrap_err();
        assert!(format!("{:?}", e).to_lowercase().contains("full"), "{e:?}");
        assert!(s.list_runs().unwrap().is_empty());
        let _: i64 = s
            .conn()
            .query_row("PRAGMA max_page_count = 1000000", [], |r| r.get(0))
            .unwrap();
        let run = s
            .create_run_with_problems("solve", 1, &json!({}), &problems)
            .unwrap();
        assert_eq!(s.problems(run).unwrap().len(), 200);
        assert_eq!(s.list_runs().unwrap().len(), 1);
    }

    #[test]
    fn problems_are_added_idempotently_in_order() {
        let (_d, s) = store();
        let run = s.create_run("x", 1, &json!({})).unwrap();
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
        let (dir, s) = store();
        let run = s.create_run("annotate", 1, &json!({"m": "mc"})).unwrap();
        s.record(run, &unit("a", 2)).unwrap();
        s.record(run, &unit("b", 0)).unwrap();
        let mut buf = Vec::new();
        assert_eq!(export_jsonl(&s, run, &mut buf).unwrap(), 2);
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
        assert_eq!(export_parquet(&s, run, &path).unwrap(), 2);
        let rows = stepwise_data::parquet_io::read_parquet_records(&path).unwrap();
        assert_eq!(rows.len(), 2);
        let r0 = &rows[0].value;
        assert_eq!(r0["key"], "a");
        assert_eq!(r0["samples"][1]["tokens"], 11);
        assert_eq!(r0["step_labels"][0]["method"], "mc");
        let payload: Value = serde_json::from_str(r0["payload"].as_str().unwrap()).unwrap();
        assert_eq!(payload, unit("a", 2).payload);
        let empty = s.create_run("annotate", 1, &json!({})).unwrap();
        assert!(export_parquet(&s, empty, &dir.path().join("e.parquet")).is_err());
    }

    #[test]
    fn refuses_a_newer_schema() {
        let (dir, s) = store();
        s.conn().execute_batch("PRAGMA user_version=99").unwrap();
        drop(s);
        let e = SqliteStore::open(dir.path().join("sub/runs.sqlite"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("newer"), "{e}");
    }

    #[test]
    fn failed_and_interrupted_runs_keep_their_state() {
        let (_d, s) = store();
        let run = s.create_run("solve", 3, &json!({})).unwrap();
        s.set_status(
            run,
            RunStatus::Failed,
            Some("unit p1: server 127.0.0.1:9 refused"),
        )
        .unwrap();
        let info = s.run(run).unwrap();
        assert_eq!((info.status, info.version), (RunStatus::Failed, 3));
        assert_eq!(
            info.error.as_deref(),
            Some("unit p1: server 127.0.0.1:9 refused")
        );
        // resuming clears the error; an interrupted run carries none
        s.set_status(run, RunStatus::Interrupted, Some("ignored"))
            .unwrap();
        let info = s.run(run).unwrap();
        assert_eq!((info.status, info.error), (RunStatus::Interrupted, None));
    }

    #[test]
    fn a_run_of_newer_stored_types_is_not_resumed() {
        let (_d, s) = store();
        let run = s.create_run("scale", 2, &json!({"a": 1})).unwrap();
        let e = s.open_run(run, "scale", 1, &json!({"a": 1})).unwrap_err();
        assert!(
            matches!(
                e,
                StoreError::NewerRun {
                    stored: 2,
                    known: 1,
                    ..
                }
            ),
            "{e}"
        );
        assert_eq!(
            s.open_run(run, "scale", 2, &json!({"a": 1})).unwrap().id,
            run
        );
    }

    #[test]
    fn finds_the_newest_unfinished_run_with_the_same_config() {
        let (_d, s) = store();
        let a = s
            .create_run("eval-processbench", 1, &json!({"s": "arith"}))
            .unwrap();
        let b = s
            .create_run("eval-processbench", 1, &json!({"s": "arith"}))
            .unwrap();
        let _other = s
            .create_run("eval-processbench", 1, &json!({"s": "judge"}))
            .unwrap();
        s.set_status(b, RunStatus::Done, None).unwrap();
        let found = s
            .find_unfinished("eval-processbench", &json!({"s": "arith"}))
            .unwrap();
        assert_eq!(found.map(|r| r.id), Some(a));
        assert!(
            s.find_unfinished("solve", &json!({"s": "arith"}))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_version_1_store_is_migrated_and_its_runs_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.sqlite");
        {
            // the schema stepwise wrote before the job runner (user_version 1)
            let c = Connection::open(&path).unwrap();
            c.execute_batch(
                "CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,
                    config TEXT NOT NULL,
                    created TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
                    updated TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
                    status TEXT NOT NULL DEFAULT 'running');
                 INSERT INTO runs (kind, config, status) VALUES ('solve', '{\"k\":1}', 'done');
                 PRAGMA user_version=1;",
            )
            .unwrap();
        }
        let s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.pragma("user_version"), "2");
        let runs = s.list_runs().unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!((runs[0].version, runs[0].status), (1, RunStatus::Done));
        assert_eq!(runs[0].config, json!({"k": 1}));
        assert!(s.record(runs[0].id, &unit("a", 1)).unwrap());
    }

    #[test]
    fn a_read_only_store_reads_and_refuses_every_write() {
        let (dir, s) = store();
        let run = s.create_run("solve", 1, &serde_json::json!({})).unwrap();
        s.record(run, &unit("a", 1)).unwrap();
        drop(s);
        let path = dir.path().join("sub/runs.sqlite");
        let before = std::fs::read(&path).unwrap();
        let ro = SqliteStore::open_read_only(&path).unwrap();
        assert_eq!(ro.units(run).unwrap().len(), 1);
        assert!(ro.record(run, &unit("b", 1)).is_err());
        assert!(ro.set_status(run, RunStatus::Done, None).is_err());
        assert!(ro.create_run("solve", 1, &serde_json::json!({})).is_err());
        drop(ro);
        assert_eq!(std::fs::read(&path).unwrap(), before);
        let missing = SqliteStore::open_read_only(dir.path().join("none.sqlite")).unwrap_err();
        assert!(missing.to_string().contains("none.sqlite"), "{missing}");
        assert!(!dir.path().join("none.sqlite").exists());
    }

    #[test]
    fn open_refuses_a_scheme_it_does_not_know() {
        let e = crate::open("mysql://db/runs")
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(e.contains("no 'mysql' store"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a/b.sqlite");
        let s = crate::open(p.to_str().unwrap()).unwrap();
        assert_eq!(s.location(), p.display().to_string());
    }
}
