//! The one error type of this crate.

use std::path::PathBuf;

/// Everything that can go wrong while reading datasets, generating tasks .
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// Opening, reading or writing a file failed.
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A line of a JSONL file (or a row of a Parquet file) is not a usable record.
    /// `line` is 1-based (for Parquet: the 1-based row number).
    #[error("{}:{line}: {message}", path.display())]
    BadRecord {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// A Parquet or Arrow operation failed.
    #[error("{}: {message}", path.display())]
    Parquet { path: PathBuf, message: String },
    /// A dataset name or spec could not be understood.
    #[error("bad dataset spec '{spec}': {message}")]
    BadSpec { spec: String, message: String },
    /// The data folder for built-in datasets could not be found.
    #[error(
        "no data folder found for built-in dataset '{dataset}': pass --data-dir, set STEPWISE_DATA, \
         or put the data in ../shared/data beside the working directory (looked in: {looked})"
    )]
    NoDataDir { dataset: String, looked: String },
    /// A problem does not carry the metadata a typed accessor expects.
    #[error("problem '{id}': {message}")]
    BadMetadata { id: String, message: String },
}

impl DataError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn bad_record(
        path: impl Into<PathBuf>,
        line: usize,
        message: impl Into<String>,
    ) -> Self {
        Self::BadRecord {
            path: path.into(),
            line,
            message: message.into(),
        }
    }

    pub(crate) fn parquet(path: impl Into<PathBuf>, message: impl std::fmt::Display) -> Self {
        Self::Parquet {
            path: path.into(),
            message: message.to_string(),
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = DataError> = std::result::Result<T, E>;
