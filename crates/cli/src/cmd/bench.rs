//! `stepwise bench …`: side-by-side comparisons against the named peers (`stepwise-bench`).

use crate::Global;
use anyhow::Context;
use clap::Subcommand;
use std::path::PathBuf;
use stepwise_bench::{gateway, generate, labels, serve, verify, workers};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub what: What,
}

#[derive(Subcommand, Debug)]
pub enum What {
    /// Answer verification: stepwise versus HF math-verify (pairs/s, agreement).
    Verify(verify::Args),
    /// Generation throughput: embedded backend versus llama.cpp's batched-bench.
    Generate(generate::Args),
    /// Reward server load test: stepwise serve versus FastAPI + math-verify.
    Serve(serve::Args),
    /// Workers sharing one run: units/s of 1, 2, 4, 8 PostgreSQL workers and one SQLite process.
    Workers(workers::Args),
    /// Step-label methods against exact truth on a simulated policy (quality vs rollouts).
    Labels(labels::Args),
    /// Search gateway overhead: a pass-through completion through the gateway versus the upstream directly (p50, p99).
    Gateway(gateway::Args),
}

/// The data folder of the built-in datasets (`--data-dir`, `STEPWISE_DATA`, or `shared/data`
/// above the working directory).
fn data_dir(g: &Global) -> anyhow::Result<PathBuf> {
    stepwise_data::resolve_data_dir(g.data_dir.as_deref()).map_err(|looked| {
        let looked: Vec<String> = looked.iter().map(|p| p.display().to_string()).collect();
        anyhow::anyhow!(
            "data folder not found (looked at {}); pass --data-dir or set STEPWISE_DATA",
            looked.join(", ")
        )
    })
}

pub fn run(args: Args, g: &Global) -> anyhow::Result<()> {
    match args.what {
        What::Verify(a) => verify::run(&a, &data_dir(g)?).context("bench verify"),
        What::Generate(a) => generate::run(&a).context("bench generate"),
        What::Serve(a) => serve::run(&a, &data_dir(g)?).context("bench serve"),
        What::Workers(a) => workers::run(&a).context("bench workers"),
        What::Labels(a) => labels::run(&a).context("bench labels"),
        What::Gateway(a) => gateway::run(&a).context("bench gateway"),
    }
}
