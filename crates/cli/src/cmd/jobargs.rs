//! The arguments every long job shares: where its runs are stored, which run to
//! continue, how many units run at once. They become the job runner's options.

use crate::Global;
use anyhow::Context as _;
use std::sync::Arc;
use stepwise_jobs::{Resume, RunOptions, RunStore, Stop};

/// `--store`: the run store of a command.
#[derive(clap::Args, Debug, Clone)]
pub struct StoreArgs {
    /// Run store: a SQLite file (created with its folders if missing).
    #[arg(long, env = "STEPWISE_STORE", value_name = "PATH", default_value_os_t = stepwise_store::default_store_path())]
    pub store: std::path::PathBuf,
}

impl StoreArgs {
    /// Opens the store.
    pub fn open(&self) -> anyhow::Result<Arc<dyn RunStore>> {
        let spec = self.store.to_string_lossy();
        stepwise_store::open(&spec).with_context(|| format!("opening the run store {spec}"))
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
