//! The SQLite schema of the run store and its migrations.
//!
//! `PRAGMA user_version` holds the schema version. Version 1 (stepwise before the job
//! runner) had no `runs.version` (the kind's stored-type version) and no `runs.error`;
//! [`migrate`] adds both, so old stores open and their runs read as version 1.

use rusqlite::Connection;

/// The schema this build writes.
pub const SCHEMA_VERSION: i64 = 2;

/// The tables, as created in a new store.
pub const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS runs (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    kind    TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 1,
    config  TEXT NOT NULL,
    created TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    updated TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    status  TEXT NOT NULL DEFAULT 'running',
    error   TEXT
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

/// Brings a store at `from` (older than [`SCHEMA_VERSION`]) up to date, in one
/// transaction. A new store (`from == 0`) gets [`SCHEMA`] directly.
pub fn migrate(conn: &mut Connection, from: i64) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    if from == 0 {
        tx.execute_batch(SCHEMA)?;
    } else {
        if from < 2 {
            tx.execute_batch(
                "ALTER TABLE runs ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
                 ALTER TABLE runs ADD COLUMN error TEXT;",
            )?;
        }
        // a table added in a later version is created here (CREATE TABLE IF NOT EXISTS)
        tx.execute_batch(SCHEMA)?;
    }
    tx.execute_batch(&format!("PRAGMA user_version={SCHEMA_VERSION}"))?;
    tx.commit()
}
