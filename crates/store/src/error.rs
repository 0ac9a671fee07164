//! The one error type of the run store.

use std::path::PathBuf;

/// Everything that can go wrong while using a run store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The SQLite file could not be opened, read or written.
    #[error("run store {}", path.display())]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// A folder or file beside the store could not be created or written.
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// No run with this id in the store.
    #[error("no run {id} in the run store {location}")]
    NoSuchRun { location: String, id: i64 },
    /// A run was reopened with a configuration that differs from the one it was created with.
    #[error("run {id} was created with a different configuration: {}", diffs.join("; "))]
    ConfigMismatch { id: i64, diffs: Vec<String> },
    /// A run was written by a newer stepwise than this one.
    #[error(
        "run {id} ({kind}) holds version {stored} of its stored types; this stepwise reads up to {known}"
    )]
    NewerRun {
        id: i64,
        kind: String,
        stored: u32,
        known: u32,
    },
    /// A unit handed to the run store cannot be stored as given.
    #[error("run {run}, unit '{key}': {message}")]
    InvalidUnit {
        run: i64,
        key: String,
        message: String,
    },
    /// A value stored in the run store is not what this version expects.
    #[error("run store {location}: {message}")]
    Corrupt { location: String, message: String },
    /// The store spec names no store this build can open.
    #[error("run store '{spec}': {reason}")]
    UnknownStore { spec: String, reason: String },
    /// The PostgreSQL server could not be reached (refused, no route, timed out).
    #[error(
        "cannot reach the PostgreSQL run store at {location} (is the server running, and are host and port right?)"
    )]
    Unreachable {
        location: String,
        #[source]
        source: postgres::Error,
    },
    /// The PostgreSQL server refused the user or password.
    #[error(
        "the PostgreSQL run store at {location} refused the credentials of user '{user}' (check user and password in the URL)"
    )]
    Credentials {
        location: String,
        user: String,
        #[source]
        source: postgres::Error,
    },
    /// A PostgreSQL query failed.
    #[error("PostgreSQL run store {location}: {what}")]
    Postgres {
        location: String,
        what: String,
        #[source]
        source: postgres::Error,
    },
    /// The store's schema was written by a newer stepwise.
    #[error(
        "run store {location}: schema version {found} is newer than this stepwise understands ({known}); use a newer stepwise"
    )]
    NewerSchema {
        location: String,
        found: i64,
        known: i64,
    },
    /// Exporting a run failed.
    #[error("exporting to {}: {message}", path.display())]
    Export { path: PathBuf, message: String },
}

/// Result alias for this crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
