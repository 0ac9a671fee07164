//! The shared run store: PostgreSQL, for several processes on any machines working on one
//! run together (`--store postgres://user[:password]@host[:port]/database`).
//!
//! The tables are the SQLite store's (runs, problems, units, samples, step scores, step
//! labels) plus `unit_claims`, the work queue: one row per unfinished unit with the
//! worker holding it and when its lease ends. Claiming takes free rows with
//! `SELECT … FOR UPDATE SKIP LOCKED` (two workers never take the same row; neither waits
//! for the other), writing a unit deletes its row in the same transaction, and the unit
//! insert is `ON CONFLICT (run_id, unit_key) DO NOTHING`, so a unit is stored at most
//! once even when a worker whose lease expired writes it late.
//!
//! The schema version lives in `stepwise_schema`; migrations run in one transaction under
//! an advisory lock, so workers starting at the same moment migrate once. A store of a
//! newer schema is refused ([`StoreError::NewerSchema`]).
//!
//! The client is rust-postgres' blocking `Client` without TLS: stepwise's workers and
//! their database normally share a private network, and leaving TLS out keeps the build
//! free of a second TLS stack (ask for it in an issue if you need `sslmode=require`). The
//! blocking client runs its own small runtime and must not be driven from inside an async
//! runtime, where the job runner calls the store, so each call runs on a scoped thread
//! of its own (a few microseconds beside a network round trip). One connection per
//! store, behind a mutex, as with SQLite.

mod cluster;

pub use cluster::{ClusterError, TempCluster};

use crate::RunStore;
use crate::error::{Result, StoreError};
use crate::types::{
    RunId, RunInfo, RunStatus, SampleRow, StepLabelRow, StepScoreRow, StoredUnit, UnitRecord,
    WorkerLease, validate_unit,
};
use ::postgres::error::SqlState;
use ::postgres::{Client, Config, NoTls, Transaction};
use serde_json::Value;
use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;
use stepwise_core::Problem;

/// The schema this build writes (PostgreSQL's own numbering; the SQLite store counts
/// separately).
pub const PG_SCHEMA_VERSION: i64 = 1;

/// Migration `i` brings the schema from version `i` to `i + 1`.
const MIGRATIONS: [&str; 1] = [r#"
CREATE TABLE runs (
    id      BIGSERIAL PRIMARY KEY,
    kind    TEXT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1,
    config  TEXT NOT NULL,
    created TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated TIMESTAMPTZ NOT NULL DEFAULT now(),
    status  TEXT NOT NULL DEFAULT 'running',
    error   TEXT
);
CREATE TABLE run_problems (
    run_id     BIGINT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    problem_id TEXT NOT NULL,
    ord        BIGINT NOT NULL,
    problem    TEXT NOT NULL,
    PRIMARY KEY (run_id, problem_id)
);
CREATE TABLE units (
    seq        BIGSERIAL PRIMARY KEY,
    run_id     BIGINT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    unit_key   TEXT NOT NULL,
    problem_id TEXT NOT NULL,
    payload    TEXT NOT NULL,
    finished   TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (run_id, unit_key)
);
CREATE INDEX units_by_problem ON units (run_id, problem_id);
CREATE TABLE samples (
    unit_seq   BIGINT NOT NULL REFERENCES units(seq) ON DELETE CASCADE,
    sample_idx BIGINT NOT NULL,
    text       TEXT NOT NULL,
    answer     TEXT,
    correct    BOOLEAN,
    tokens     BIGINT,
    extra      TEXT,
    PRIMARY KEY (unit_seq, sample_idx)
);
CREATE TABLE step_scores (
    unit_seq   BIGINT NOT NULL REFERENCES units(seq) ON DELETE CASCADE,
    sample_idx BIGINT NOT NULL,
    step_idx   BIGINT NOT NULL,
    scorer     TEXT NOT NULL,
    score      DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (unit_seq, sample_idx, step_idx, scorer)
);
CREATE TABLE step_labels (
    unit_seq   BIGINT NOT NULL REFERENCES units(seq) ON DELETE CASCADE,
    sample_idx BIGINT NOT NULL,
    step_idx   BIGINT NOT NULL,
    method     TEXT NOT NULL,
    label      DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (unit_seq, sample_idx, step_idx, method)
);
CREATE TABLE unit_claims (
    run_id      BIGINT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    unit_key    TEXT NOT NULL,
    ord         BIGINT NOT NULL,
    worker      TEXT,
    lease_until TIMESTAMPTZ,
    PRIMARY KEY (run_id, unit_key)
);
CREATE INDEX unit_claims_in_order ON unit_claims (run_id, ord);
"#];

/// An arbitrary constant: the advisory lock migrations hold.
const MIGRATION_LOCK: i64 = 0x5354_4550_5749_5345;

const TIME: &str = r#"'YYYY-MM-DD"T"HH24:MI:SS"Z"'"#;
const TIME_MS: &str = r#"'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'"#;

/// Whether a store spec names a PostgreSQL server.
pub fn is_postgres_url(spec: &str) -> bool {
    spec.starts_with("postgres://") || spec.starts_with("postgresql://")
}

/// The PostgreSQL run store.
pub struct PgStore {
    /// `None` only while the store is dropped (see the `Drop` impl).
    client: Mutex<Option<Client>>,
    location: String,
    lease: Duration,
    worker: String,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("location", &self.location)
            .field("worker", &self.worker)
            .finish()
    }
}

/// The URL without its password, for messages.
fn location_of(config: &Config) -> String {
    use ::postgres::config::Host;
    let user = config.get_user().unwrap_or("");
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config.get_dbname().unwrap_or(user);
    format!("postgres://{user}@{host}:{port}/{db}")
}

/// This process's name in leases: host, pid and a nonce (two stores of one process are
/// two workers).
fn worker_name() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!(
        "{host}:{}:{:x}",
        std::process::id(),
        nanos ^ (n as u32) << 24
    )
}

impl PgStore {
    /// Connects to the server `url` names and brings its schema up to date.
    pub fn connect(url: &str, options: &crate::StoreOptions) -> Result<Self> {
        let store = Self::open(url, options, false)?;
        store.migrate()?;
        Ok(store)
    }

    /// Connects for reading only (the trace explorer): the session has
    /// `default_transaction_read_only` on, so the server refuses any write, and the schema
    /// is not migrated (a schema of another version is an error saying what to do).
    pub fn connect_read_only(url: &str) -> Result<Self> {
        let store = Self::open(url, &crate::StoreOptions::default(), true)?;
        store.check_readable()?;
        Ok(store)
    }

    fn open(url: &str, options: &crate::StoreOptions, read_only: bool) -> Result<Self> {
        let mut config: Config = url.parse().map_err(|e| StoreError::UnknownStore {
            spec: redact(url),
            reason: format!("not a PostgreSQL URL: {e}"),
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_application_name().is_none() {
            config.application_name("stepwise");
        }
        if read_only {
            let given = config.get_options().unwrap_or_default().to_string();
            config.options(format!("{given} -c default_transaction_read_only=on").trim_start());
        }
        let location = location_of(&config);
        let client = std::thread::scope(|s| {
            s.spawn(|| config.connect(NoTls))
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
        .map_err(|source| connect_error(&location, &config, source))?;
        Ok(Self {
            client: Mutex::new(Some(client)),
            location,
            lease: options.lease.max(Duration::from_millis(100)),
            worker: worker_name(),
        })
    }

    /// A read-only session reads the schema as it is: it must be this build's.
    fn check_readable(&self) -> Result<()> {
        let found =
            self.with(
                |c| match c.query_one("SELECT max(version) FROM stepwise_schema", &[]) {
                    Ok(row) => Ok(row.get::<_, Option<i64>>(0).unwrap_or(0)),
                    Err(e) if e.code() == Some(&SqlState::UNDEFINED_TABLE) => Ok(0),
                    Err(e) => Err(self.err("reading the schema version")(e)),
                },
            )?;
        if found > PG_SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                location: self.location.clone(),
                found,
                known: PG_SCHEMA_VERSION,
            });
        }
        if found < PG_SCHEMA_VERSION {
            return Err(self.corrupt(format!(
                "schema version {found}, this stepwise reads {PG_SCHEMA_VERSION} read-only (open it once for writing, e.g. `stepwise data runs --store URL`, to {})",
                if found == 0 { "create it" } else { "migrate it" }
            )));
        }
        Ok(())
    }

    /// Runs `f` with the connection on a thread of its own (the blocking client may not
    /// run inside an async runtime).
    fn with<R: Send>(&self, f: impl FnOnce(&mut Client) -> Result<R> + Send) -> Result<R> {
        std::thread::scope(|s| {
            s.spawn(|| {
                // a panic cannot leave the connection inside a transaction: dropping a
                // Transaction rolls it back
                let mut c = self.client.lock().unwrap_or_else(|p| p.into_inner());
                match c.as_mut() {
                    Some(c) => f(c),
                    None => Err(self.corrupt("the connection is closed".into())),
                }
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }

    fn err(&self, what: &'static str) -> impl Fn(::postgres::Error) -> StoreError + '_ {
        move |source| {
            if source.is_closed() || source.as_db_error().is_none() && is_io(&source) {
                return StoreError::Unreachable {
                    location: self.location.clone(),
                    source,
                };
            }
            StoreError::Postgres {
                location: self.location.clone(),
                what: what.to_string(),
                source,
            }
        }
    }

    fn corrupt(&self, message: String) -> StoreError {
        StoreError::Corrupt {
            location: self.location.clone(),
            message,
        }
    }

    fn no_run(&self, id: RunId) -> StoreError {
        StoreError::NoSuchRun {
            location: self.location.clone(),
            id,
        }
    }

    fn migrate(&self) -> Result<()> {
        self.with(|c| {
            let e = self.err("migrating the schema");
            let mut tx = c.transaction().map_err(&e)?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
                .map_err(&e)?;
            tx.batch_execute("CREATE TABLE IF NOT EXISTS stepwise_schema (version BIGINT NOT NULL)")
                .map_err(&e)?;
            let found: Option<i64> = tx
                .query_one("SELECT max(version) FROM stepwise_schema", &[])
                .map_err(&e)?
                .get(0);
            let found = found.unwrap_or(0);
            if found > PG_SCHEMA_VERSION {
                return Err(StoreError::NewerSchema {
                    location: self.location.clone(),
                    found,
                    known: PG_SCHEMA_VERSION,
                });
            }
            for sql in &MIGRATIONS[found as usize..] {
                tx.batch_execute(sql).map_err(&e)?;
            }
            if found < PG_SCHEMA_VERSION {
                tx.execute("DELETE FROM stepwise_schema", &[]).map_err(&e)?;
                tx.execute(
                    "INSERT INTO stepwise_schema (version) VALUES ($1)",
                    &[&PG_SCHEMA_VERSION],
                )
                .map_err(&e)?;
                tracing::info!(location = %self.location, from = found, to = PG_SCHEMA_VERSION, "migrated run store");
            }
            tx.commit().map_err(&e)
        })
    }

    fn query_runs(&self, id: Option<RunId>) -> Result<Vec<RunInfo>> {
        let sql = format!(
            "SELECT r.id, r.kind, r.version, r.config,
                to_char(r.created AT TIME ZONE 'UTC', {TIME}), to_char(r.updated AT TIME ZONE 'UTC', {TIME}),
                r.status, r.error,
                (SELECT COUNT(*) FROM run_problems p WHERE p.run_id = r.id),
                (SELECT COUNT(*) FROM units u WHERE u.run_id = r.id),
                (SELECT COUNT(*) FROM unit_claims q WHERE q.run_id = r.id
                   AND NOT EXISTS (SELECT 1 FROM units u WHERE u.run_id = q.run_id AND u.unit_key = q.unit_key))
             FROM runs r WHERE ($1::BIGINT IS NULL OR r.id = $1) ORDER BY r.id"
        );
        let rows = self.with(|c| c.query(&sql, &[&id]).map_err(self.err("reading runs")))?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let id: i64 = r.get(0);
            let config: String = r.get(3);
            let status: String = r.get(6);
            let version: i64 = r.get(2);
            let problems: i64 = r.get(8);
            let units: i64 = r.get(9);
            // claim rows are the registered units not yet written (a write deletes its row;
            // a worker registering while another writes can re-insert the claim of a unit
            // its snapshot did not yet see written, so written units' claims are not counted)
            let pending: i64 = r.get(10);
            let status = RunStatus::parse(&status)
                .ok_or_else(|| self.corrupt(format!("run {id}: unknown status '{status}'")))?;
            let registered = pending > 0 || status == RunStatus::Done;
            out.push(RunInfo {
                id,
                kind: r.get(1),
                version: u32::try_from(version).map_err(|_| {
                    self.corrupt(format!("run {id}: version {version} out of range"))
                })?,
                config: serde_json::from_str(&config)
                    .map_err(|e| self.corrupt(format!("run {id}: config is not JSON: {e}")))?,
                created: r.get(4),
                updated: r.get(5),
                status,
                error: r.get(7),
                problems: problems as usize,
                units: units as usize,
                total: registered.then_some((units + pending) as usize),
            });
        }
        Ok(out)
    }

    fn insert_problems(
        &self,
        tx: &mut Transaction<'_>,
        run: RunId,
        problems: &[Problem],
    ) -> Result<()> {
        let e = self.err("adding problems");
        let mut ids = Vec::with_capacity(problems.len());
        let mut json = Vec::with_capacity(problems.len());
        for p in problems {
            ids.push(p.id.as_str());
            json.push(
                serde_json::to_string(p).map_err(|err| StoreError::InvalidUnit {
                    run,
                    key: p.id.clone(),
                    message: format!("problem does not serialize: {err}"),
                })?,
            );
        }
        // after the problems the run has; an id already present is kept (its place too)
        tx.execute(
            "INSERT INTO run_problems (run_id, problem_id, ord, problem)
             SELECT $1, t.id, (SELECT COUNT(*) FROM run_problems WHERE run_id = $1) + t.o, t.p
             FROM unnest($2::TEXT[], $3::TEXT[]) WITH ORDINALITY AS t(id, p, o)
             ON CONFLICT (run_id, problem_id) DO NOTHING",
            &[&run, &ids, &json],
        )
        .map_err(|source| match source.code() {
            Some(&SqlState::FOREIGN_KEY_VIOLATION) => self.no_run(run),
            _ => e(source),
        })?;
        Ok(())
    }

    fn ensure_run(&self, c: &mut Client, id: RunId) -> Result<()> {
        let found = c
            .query_opt("SELECT id FROM runs WHERE id = $1", &[&id])
            .map_err(self.err("reading a run"))?;
        found.map(|_| ()).ok_or_else(|| self.no_run(id))
    }

    fn lease_secs(&self) -> f64 {
        self.lease.as_secs_f64()
    }
}

/// Closing the connection drives the blocking client's runtime too, which panics inside
/// an async runtime (where a job may drop its store), so it is closed on a thread of its
/// own.
impl Drop for PgStore {
    fn drop(&mut self) {
        let client = self
            .client
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(c) = client {
            std::thread::scope(|s| {
                s.spawn(move || drop(c));
            });
        }
    }
}

fn is_io(e: &::postgres::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.is::<std::io::Error>() {
            return true;
        }
        source = s.source();
    }
    false
}

fn connect_error(location: &str, config: &Config, source: ::postgres::Error) -> StoreError {
    match source.code() {
        Some(&SqlState::INVALID_PASSWORD)
        | Some(&SqlState::INVALID_AUTHORIZATION_SPECIFICATION) => StoreError::Credentials {
            location: location.to_string(),
            user: config.get_user().unwrap_or("").to_string(),
            source,
        },
        Some(_) => StoreError::Postgres {
            location: location.to_string(),
            what: "connecting".into(),
            source,
        },
        None => StoreError::Unreachable {
            location: location.to_string(),
            source,
        },
    }
}

/// `url` with its password replaced by `***`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((cred, host)) => match cred.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

fn idx(v: u32) -> i64 {
    i64::from(v)
}

impl RunStore for PgStore {
    fn location(&self) -> String {
        self.location.clone()
    }

    fn create_run_with_problems(
        &self,
        kind: &str,
        version: u32,
        config: &Value,
        problems: &[Problem],
    ) -> Result<RunId> {
        let text = config.to_string();
        let id = self.with(|c| {
            let e = self.err("creating a run");
            let mut tx = c.transaction().map_err(&e)?;
            let id: i64 = tx
                .query_one(
                    "INSERT INTO runs (kind, version, config) VALUES ($1, $2, $3) RETURNING id",
                    &[&kind, &i64::from(version), &text],
                )
                .map_err(&e)?
                .get(0);
            self.insert_problems(&mut tx, id, problems)?;
            tx.commit().map_err(&e)?;
            Ok(id)
        })?;
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
        let n = self.with(|c| {
            c.execute(
                "UPDATE runs SET status = $2, error = $3, updated = now() WHERE id = $1",
                &[&id, &status.as_str(), &error],
            )
            .map_err(self.err("setting a run's status"))
        })?;
        if n == 0 {
            return Err(self.no_run(id));
        }
        Ok(())
    }

    fn add_problems(&self, run: RunId, problems: &[Problem]) -> Result<()> {
        self.with(|c| {
            self.ensure_run(c, run)?;
            let e = self.err("adding problems");
            let mut tx = c.transaction().map_err(&e)?;
            self.insert_problems(&mut tx, run, problems)?;
            tx.commit().map_err(&e)
        })
    }

    fn problems(&self, run: RunId) -> Result<Vec<Problem>> {
        let rows = self.with(|c| {
            self.ensure_run(c, run)?;
            c.query(
                "SELECT problem_id, problem FROM run_problems WHERE run_id = $1 ORDER BY ord, problem_id",
                &[&run],
            )
            .map_err(self.err("reading problems"))
        })?;
        rows.iter()
            .map(|r| {
                let id: &str = r.get(0);
                serde_json::from_str(r.get(1)).map_err(|e| {
                    self.corrupt(format!("run {run}: problem '{id}' is not valid: {e}"))
                })
            })
            .collect()
    }

    fn done_keys(&self, run: RunId) -> Result<HashSet<String>> {
        let rows = self.with(|c| {
            c.query("SELECT unit_key FROM units WHERE run_id = $1", &[&run])
                .map_err(self.err("reading finished units"))
        })?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    fn record(&self, run: RunId, unit: &UnitRecord) -> Result<bool> {
        validate_unit(run, unit)?;
        let payload = unit.payload.to_string();
        self.with(|c| {
            let e = self.err("recording a unit");
            let mut tx = c.transaction().map_err(&e)?;
            // the claim goes with the write, whoever holds it: the unit is finished
            tx.execute(
                "DELETE FROM unit_claims WHERE run_id = $1 AND unit_key = $2",
                &[&run, &unit.key],
            )
            .map_err(&e)?;
            let seq = tx
                .query_opt(
                    "INSERT INTO units (run_id, unit_key, problem_id, payload) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (run_id, unit_key) DO NOTHING RETURNING seq",
                    &[&run, &unit.key, &unit.problem_id, &payload],
                )
                .map_err(|source| match source.code() {
                    Some(&SqlState::FOREIGN_KEY_VIOLATION) => self.no_run(run),
                    _ => e(source),
                })?;
            let Some(seq) = seq.map(|r| r.get::<_, i64>(0)) else {
                tx.commit().map_err(&e)?;
                return Ok(false);
            };
            let s = &unit.samples;
            let sample_idx: Vec<i64> = s.iter().map(|r| idx(r.sample_idx)).collect();
            let text: Vec<&str> = s.iter().map(|r| r.text.as_str()).collect();
            let answer: Vec<Option<&str>> = s.iter().map(|r| r.answer.as_deref()).collect();
            let correct: Vec<Option<bool>> = s.iter().map(|r| r.correct).collect();
            let tokens: Vec<Option<i64>> = s.iter().map(|r| r.tokens.map(|t| t as i64)).collect();
            let extra: Vec<Option<String>> = s
                .iter()
                .map(|r| (!r.extra.is_null()).then(|| r.extra.to_string()))
                .collect();
            tx.execute(
                "INSERT INTO samples (unit_seq, sample_idx, text, answer, correct, tokens, extra)
                 SELECT $1, * FROM unnest($2::BIGINT[], $3::TEXT[], $4::TEXT[], $5::BOOL[], $6::BIGINT[], $7::TEXT[])",
                &[&seq, &sample_idx, &text, &answer, &correct, &tokens, &extra],
            )
            .map_err(&e)?;
            let scores: Vec<_> = unit
                .step_scores
                .iter()
                .map(|r| (r.sample_idx, r.step_idx, r.scorer.as_str(), r.score))
                .collect();
            let labels: Vec<_> = unit
                .step_labels
                .iter()
                .map(|r| (r.sample_idx, r.step_idx, r.method.as_str(), r.label))
                .collect();
            for (table, name, value, rows) in [
                ("step_scores", "scorer", "score", &scores),
                ("step_labels", "method", "label", &labels),
            ] {
                let samples: Vec<i64> = rows.iter().map(|r| idx(r.0)).collect();
                let steps: Vec<i64> = rows.iter().map(|r| idx(r.1)).collect();
                let names: Vec<&str> = rows.iter().map(|r| r.2).collect();
                let values: Vec<f64> = rows.iter().map(|r| r.3).collect();
                tx.execute(
                    &format!(
                        "INSERT INTO {table} (unit_seq, sample_idx, step_idx, {name}, {value})
                         SELECT $1, * FROM unnest($2::BIGINT[], $3::BIGINT[], $4::TEXT[], $5::FLOAT8[])"
                    ),
                    &[&seq, &samples, &steps, &names, &values],
                )
                .map_err(&e)?;
            }
            tx.commit().map_err(&e)?;
            Ok(true)
        })
    }

    fn units(&self, run: RunId) -> Result<Vec<StoredUnit>> {
        let sql = format!(
            "SELECT seq, unit_key, problem_id, payload, to_char(finished AT TIME ZONE 'UTC', {TIME_MS})
             FROM units WHERE run_id = $1 ORDER BY seq"
        );
        let (heads, samples, scores, labels) = self.with(|c| {
            self.ensure_run(c, run)?;
            let e = self.err("reading units");
            let heads = c.query(&sql, &[&run]).map_err(&e)?;
            let samples = c
                .query(
                    "SELECT s.unit_seq, s.sample_idx, s.text, s.answer, s.correct, s.tokens, s.extra
                     FROM samples s JOIN units u ON u.seq = s.unit_seq WHERE u.run_id = $1
                     ORDER BY s.unit_seq, s.sample_idx",
                    &[&run],
                )
                .map_err(&e)?;
            let scores = c
                .query(
                    "SELECT s.unit_seq, s.sample_idx, s.step_idx, s.scorer, s.score
                     FROM step_scores s JOIN units u ON u.seq = s.unit_seq WHERE u.run_id = $1
                     ORDER BY s.unit_seq, s.sample_idx, s.step_idx, s.scorer COLLATE \"C\"",
                    &[&run],
                )
                .map_err(&e)?;
            let labels = c
                .query(
                    "SELECT s.unit_seq, s.sample_idx, s.step_idx, s.method, s.label
                     FROM step_labels s JOIN units u ON u.seq = s.unit_seq WHERE u.run_id = $1
                     ORDER BY s.unit_seq, s.sample_idx, s.step_idx, s.method COLLATE \"C\"",
                    &[&run],
                )
                .map_err(&e)?;
            Ok((heads, samples, scores, labels))
        })?;
        let u32_of = |v: i64, what: &str| {
            u32::try_from(v)
                .map_err(|_| self.corrupt(format!("run {run}: {what} {v} out of range")))
        };
        let mut by_seq: std::collections::HashMap<i64, usize> = std::collections::HashMap::new();
        let mut out = Vec::with_capacity(heads.len());
        for r in &heads {
            let seq: i64 = r.get(0);
            let key: String = r.get(1);
            let payload: &str = r.get(3);
            let payload = serde_json::from_str(payload).map_err(|err| {
                self.corrupt(format!(
                    "run {run}, unit '{key}': payload is not JSON: {err}"
                ))
            })?;
            by_seq.insert(seq, out.len());
            out.push(StoredUnit {
                run_id: run,
                finished: r.get(4),
                unit: UnitRecord {
                    key,
                    problem_id: r.get(2),
                    payload,
                    samples: Vec::new(),
                    step_scores: Vec::new(),
                    step_labels: Vec::new(),
                },
            });
        }
        for r in &samples {
            let Some(&i) = by_seq.get(&r.get::<_, i64>(0)) else {
                continue;
            };
            let extra = match r.get::<_, Option<&str>>(6) {
                None => Value::Null,
                Some(t) => serde_json::from_str(t).map_err(|err| {
                    self.corrupt(format!(
                        "run {run}, unit '{}': sample extra is not JSON: {err}",
                        out[i].unit.key
                    ))
                })?,
            };
            let tokens: Option<i64> = r.get(5);
            out[i].unit.samples.push(SampleRow {
                sample_idx: u32_of(r.get(1), "sample index")?,
                text: r.get(2),
                answer: r.get(3),
                correct: r.get(4),
                tokens: tokens.map(|t| t as u64),
                extra,
            });
        }
        for r in &scores {
            let Some(&i) = by_seq.get(&r.get::<_, i64>(0)) else {
                continue;
            };
            out[i].unit.step_scores.push(StepScoreRow {
                sample_idx: u32_of(r.get(1), "sample index")?,
                step_idx: u32_of(r.get(2), "step index")?,
                scorer: r.get(3),
                score: r.get(4),
            });
        }
        for r in &labels {
            let Some(&i) = by_seq.get(&r.get::<_, i64>(0)) else {
                continue;
            };
            out[i].unit.step_labels.push(StepLabelRow {
                sample_idx: u32_of(r.get(1), "sample index")?,
                step_idx: u32_of(r.get(2), "step index")?,
                method: r.get(3),
                label: r.get(4),
            });
        }
        Ok(out)
    }

    fn lease(&self) -> Option<Duration> {
        Some(self.lease)
    }

    fn worker(&self) -> Option<String> {
        Some(self.worker.clone())
    }

    fn register_units(&self, run: RunId, keys: &[String]) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO unit_claims (run_id, unit_key, ord)
                 SELECT $1, t.k, t.o FROM unnest($2::TEXT[]) WITH ORDINALITY AS t(k, o)
                 WHERE NOT EXISTS (SELECT 1 FROM units u WHERE u.run_id = $1 AND u.unit_key = t.k)
                 ON CONFLICT (run_id, unit_key) DO NOTHING",
                &[&run, &keys],
            )
            .map_err(|source| match source.code() {
                Some(&SqlState::FOREIGN_KEY_VIOLATION) => self.no_run(run),
                _ => self.err("registering units")(source),
            })
            .map(|_| ())
        })
    }

    fn claim_units(&self, run: RunId, _candidates: &[String], n: usize) -> Result<Vec<String>> {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        let rows = self.with(|c| {
            c.query(
                "WITH free AS (
                    SELECT q.unit_key FROM unit_claims q
                    WHERE q.run_id = $1 AND (q.lease_until IS NULL OR q.lease_until < now())
                      AND NOT EXISTS (SELECT 1 FROM units u WHERE u.run_id = q.run_id AND u.unit_key = q.unit_key)
                    ORDER BY q.ord LIMIT $2
                    FOR UPDATE SKIP LOCKED)
                 UPDATE unit_claims q SET worker = $3, lease_until = now() + make_interval(secs => $4)
                 FROM free WHERE q.run_id = $1 AND q.unit_key = free.unit_key
                 RETURNING q.unit_key, q.ord",
                &[&run, &n, &self.worker, &self.lease_secs()],
            )
            .map_err(self.err("claiming units"))
        })?;
        let mut keys: Vec<(i64, String)> = rows.iter().map(|r| (r.get(1), r.get(0))).collect();
        keys.sort();
        Ok(keys.into_iter().map(|(_, k)| k).collect())
    }

    fn renew_leases(&self, run: RunId) -> Result<usize> {
        let n = self.with(|c| {
            c.execute(
                "UPDATE unit_claims SET lease_until = now() + make_interval(secs => $3)
                 WHERE run_id = $1 AND worker = $2 AND lease_until IS NOT NULL",
                &[&run, &self.worker, &self.lease_secs()],
            )
            .map_err(self.err("renewing leases"))
        })?;
        Ok(n as usize)
    }

    fn release_units(&self, run: RunId) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE unit_claims SET worker = NULL, lease_until = NULL WHERE run_id = $1 AND worker = $2",
                &[&run, &self.worker],
            )
            .map_err(self.err("releasing claims"))
            .map(|_| ())
        })
    }

    fn workers(&self, run: RunId) -> Result<Vec<WorkerLease>> {
        let sql = format!(
            "SELECT worker, COUNT(*), to_char(max(lease_until) AT TIME ZONE 'UTC', {TIME})
             FROM unit_claims WHERE run_id = $1 AND lease_until > now() AND worker IS NOT NULL
             GROUP BY worker ORDER BY worker"
        );
        let rows = self.with(|c| c.query(&sql, &[&run]).map_err(self.err("reading workers")))?;
        Ok(rows
            .iter()
            .map(|r| WorkerLease {
                worker: r.get(0),
                units: r.get::<_, i64>(1) as usize,
                until: r.get(2),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(
            redact("postgres://u:secret@h:5/db"),
            "postgres://u:***@h:5/db"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        let c: Config = "postgres://u:secret@db.example:6543/runs".parse().unwrap();
        assert_eq!(location_of(&c), "postgres://u@db.example:6543/runs");
    }

    #[test]
    fn names_postgres_urls() {
        assert!(is_postgres_url("postgres://u@h/db"));
        assert!(is_postgres_url("postgresql://u@h/db"));
        assert!(!is_postgres_url("runs/postgres.sqlite"));
    }

    #[test]
    fn a_bad_url_is_an_error_naming_it() {
        let e = PgStore::connect("postgres://u:pw@h:notaport/db", &Default::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("not a PostgreSQL URL") && !e.contains("pw@"),
            "{e}"
        );
    }
}
