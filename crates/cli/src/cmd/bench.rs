//! `stepwise bench …`: side-by-side comparisons against the named peers.

use crate::Global;
use clap::Subcommand;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub what: What,
}

#[derive(Subcommand, Debug)]
pub enum What {
    /// Answer verification: stepwise versus HF math-verify (pairs/s, agreement).
    Verify(super::bench_verify::Args),
    /// Generation throughput: embedded backend versus llama.cpp's batched-bench.
    Generate(super::bench_generate::Args),
    /// Reward server load test: stepwise serve versus FastAPI + math-verify.
    Serve(super::bench_serve::Args),
}

pub fn run(args: Args, g: &Global) -> anyhow::Result<()> {
    match args.what {
        What::Verify(a) => super::bench_verify::run(a, g),
        What::Generate(a) => super::bench_generate::run(a, g),
        What::Serve(a) => super::bench_serve::run(a, g),
    }
}
