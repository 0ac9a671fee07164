//! Evaluation of scorers and strategies: ProcessBench, accuracy versus compute,
//! calibration, tables, plots and self-contained HTML reports.
//!
//! Metrics, tables, plots and reports are pure computation over records. Input comes
//! from [`pbrun`] (scorers and critics over ProcessBench, a job of the job runner) and
//! from [`runs`] / [`runreport`], which read what `stepwise solve`, `scale` and
//! `annotate` stored in the run store through the run kinds of `stepwise-jobs` (and
//! `scale`'s `scale.json`), so a report or an accuracy-versus-compute table comes
//! straight from a run id. [`commands`] holds what each `stepwise eval` subcommand
//! does; the CLI parses arguments and calls it.

pub mod calibration;
pub mod commands;
pub mod compute;
pub mod faithfulness;
pub mod pbrun;
pub mod plot;
pub mod processbench;
pub mod report;
pub mod runreport;
pub mod runs;
pub mod stats;
pub mod table;
pub mod views;

/// Errors of the evaluation layer.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{path}:{line}: {reason}")]
    Parse {
        path: String,
        line: usize,
        reason: String,
    },
    #[error("{path}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid input: {0}")]
    Invalid(String),
    #[error("scoring {id}: {reason}")]
    Scorer { id: String, reason: String },
    #[error("plot: {0}")]
    Plot(String),
    #[error(
        "no run store at {path} (solve, scale and annotate write .stepwise/runs.sqlite by default; pass --store PATH)"
    )]
    NoStore { path: String },
    #[error("run {run} is not in the run store {store} (it holds {held})")]
    UnknownRun {
        store: String,
        run: String,
        held: String,
    },
    #[error("run store {path}: {reason}")]
    Store { path: String, reason: String },
    #[error("{0}")]
    Job(String),
}
