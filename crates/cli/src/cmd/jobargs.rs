//! The arguments every long job shares: where its runs are stored, which run to
//! continue, how many units run at once. They become the job runner's options.

use crate::Global;
use anyhow::Context as _;
use std::sync::Arc;
use stepwise_jobs::{Resume, RunOptions, RunStore, Stop};

/// `--store`: the run store of a command.
#[derive(clap::Args, Debug, Clone)]
pub struct StoreArgs {
    /// Run store: a SQLite file (created with its folders if missing), or a PostgreSQL
    /// server shared by workers on several machines (`postgres://user:password@host/db`).
    #[arg(long, env = "STEPWISE_STORE", value_name = "PATH|URL", default_value_os_t = stepwise_store::default_store_path())]
    pub store: std::path::PathBuf,
    /// Seconds a unit claimed from a PostgreSQL store stays this process's without a
    /// heartbeat; a worker that dies gives its units back after this long.
    #[arg(
        long,
        env = "STEPWISE_LEASE_SECS",
        value_name = "SECS",
        default_value_t = 30.0
    )]
    pub lease: f64,
}

impl StoreArgs {
    /// Opens the store.
    pub fn open(&self) -> anyhow::Result<Arc<dyn RunStore>> {
        let spec = self.store.to_string_lossy();
        if !(self.lease.is_finite() && self.lease > 0.0) {
            anyhow::bail!(
                "--lease {}: must be a positive number of seconds",
                self.lease
            );
        }
        let options = stepwise_store::StoreOptions {
            lease: std::time::Duration::from_secs_f64(self.lease),
        };
        let opened = stepwise_store::open_with(&spec, &options);
        if stepwise_store::pg::is_postgres_url(&spec) {
            // the URL may hold a password: the store's errors name it without one
            opened.context("opening the run store")
        } else {
            opened.with_context(|| format!("opening the run store {spec}"))
        }
    }
}

/// The runner's options for a command: resume `resume` (or start anew), `concurrency`
/// units at once, progress unless `--quiet`, stopped by Ctrl-C.
pub fn run_options(resume: Option<i64>, concurrency: usize, g: &Global) -> RunOptions {
    RunOptions {
        resume: Resume::from(resume),
        concurrency,
        progress: !g.quiet,
        stop: Stop::CtrlC,
    }
}
