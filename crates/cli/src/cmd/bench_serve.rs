//! `stepwise bench serve`: the reward server under load, versus FastAPI + math-verify.

use crate::Global;
use anyhow::Context;
use std::path::PathBuf;
use stepwise_serve::bench::{self, BenchOptions};

/// Load test: stepwise serve versus a FastAPI + uvicorn + math-verify server (installed
/// into a private venv under the cache folder) on the same MATH-style rewards, driven by
/// `wrk` on 127.0.0.1. Prints rewards/s, p50/p99 latency, errors and reward agreement.
///
/// `--soak SECS` instead keeps wrk on stepwise alone and samples its resident memory.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Rewards to send to each server (built from MATH-500).
    #[arg(long, default_value_t = 10_000)]
    pub items: usize,
    /// Rewards per request.
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// wrk connections (the soak uses --connections as well).
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    /// wrk threads.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Length of each load run, in seconds (wrk cycles through the rewards for this long).
    #[arg(long = "seconds", default_value_t = 20)]
    pub max_seconds: u64,
    /// uvicorn worker processes for the Python server (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub py_workers: usize,
    /// Python used to create the reference venv.
    #[arg(long, default_value = "python3")]
    pub python: String,
    /// Where the reference venv lives (default: the user cache folder, stepwise/bench-serve).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Measure stepwise only.
    #[arg(long)]
    pub no_python: bool,
    /// Soak mode: this many seconds of load on stepwise, memory sampled from /proc.
    #[arg(long, value_name = "SECS")]
    pub soak: Option<u64>,
    /// Also write the Markdown table to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

fn data_dir(g: &Global) -> PathBuf {
    if let Some(d) = &g.data_dir {
        return d.clone();
    }
    let beside_cwd = PathBuf::from("../shared/data");
    if beside_cwd.is_dir() {
        return beside_cwd;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
}

pub fn run(args: Args, g: &Global) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.items > 0 && args.batch > 0,
        "--items and --batch must be positive"
    );
    let math500 = data_dir(g).join("math500").join("test.jsonl");
    anyhow::ensure!(
        math500.is_file(),
        "{} not found (set --data-dir or STEPWISE_DATA)",
        math500.display()
    );
    let cache_dir = args.cache_dir.unwrap_or_else(bench::default_cache_dir);
    let opts = BenchOptions {
        math500,
        items: args.items,
        batch: args.batch,
        connections: args.connections,
        threads: args.threads,
        max_seconds: args.max_seconds,
        cache_dir,
        python: args.python,
        py_workers: args.py_workers,
        skip_python: args.no_python,
        seed: args.seed,
    };
    let rt = crate::cmd::runtime()?;
    let text = match args.soak {
        Some(secs) => {
            let r = rt
                .block_on(bench::soak(opts, secs))
                .context("running the soak test")?;
            r.to_markdown()
        }
        None => {
            let r = rt
                .block_on(bench::run(opts))
                .context("running the reward server benchmark")?;
            r.to_markdown()
        }
    };
    println!("{text}");
    if let Some(path) = args.out {
        std::fs::write(&path, &text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
