//! `stepwise scale`: accuracy versus compute for several strategies over budgets.

use super::backend::BackendArgs;
use super::jobargs::run_options;
use super::solve::SearchArgs;
use crate::Global;
use crate::out::outln;
use anyhow::Context as _;
use std::path::PathBuf;
use stepwise_jobs::kinds::scale::{ScaleConfig, ScaleJobConfig, ScaleStrategy};
use stepwise_search::jobs::ScaleJob;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Dataset: arith:OPTIONS, gsm8k:test, math500, or a JSONL/Parquet file.
    #[arg(long)]
    pub data: String,
    /// Use at most this many problems.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Comma-separated: majority, weighted, bon, beam, vbeam, dvts, mcts, critique-refine.
    #[arg(long, value_delimiter = ',', default_value = "majority,weighted,bon")]
    pub strategies: Vec<ScaleStrategy>,
    /// Comma-separated budgets: samples (majority, weighted, bon) or candidates per step
    /// (beam, vbeam, dvts, mcts), critique rounds (critique-refine).
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8")]
    pub n: Vec<usize>,
    /// Write scale.md, scale.json, scale.png and scale.svg here.
    #[arg(long, value_name = "DIR", default_value = "scale-out")]
    pub out: PathBuf,
    /// Resume run RUN_ID of the store (the same settings are required).
    #[arg(long, value_name = "RUN_ID")]
    pub resume: Option<i64>,
    #[command(flatten)]
    pub search: SearchArgs,
    #[command(flatten)]
    pub backend: BackendArgs,
}

pub fn run(args: Args, g: &Global) -> anyhow::Result<()> {
    let problems = stepwise_data::load_spec(&args.data, args.limit, g.data_dir.as_deref())
        .with_context(|| format!("--data {}", args.data))?;
    let backends = args
        .search
        .backends(&args.backend.deterministic_by_default(true))?;
    let store = args.search.store.open()?;
    let mut search = args
        .search
        .settings(backends.judge.as_ref().map(|j| j.name()))?;
    search.prompting =
        args.search
            .prompting(&args.data, &problems, store.as_ref(), g.data_dir.as_deref())?;
    let runtime = super::runtime()?;
    runtime
        .block_on(stepwise_search::jobs::prepare_prompting(
            &mut search,
            &backends,
            &problems,
            store.as_ref(),
            args.resume,
        ))
        .context("preparing the prompt program")?;
    let config = ScaleJobConfig {
        dataset: args.data.clone(),
        limit: args.limit,
        scale: ScaleConfig {
            strategies: args.strategies.clone(),
            ns: args.n.clone(),
            expansions: args.search.expansions,
            max_steps: args.search.max_steps,
        },
        policy: backends.policy.name(),
        reproducible: backends.reproducible(),
        search,
    };
    let job = ScaleJob::new(config, problems, &backends)?;
    let opts = run_options(args.resume, args.search.jobs, g);
    let summary = runtime.block_on(stepwise_search::jobs::scale(store.as_ref(), &job, &opts))?;
    outln!("{}", summary.markdown())?;
    let title = format!(
        "{}: accuracy vs tokens ({} problems)",
        args.data, summary.problems
    );
    let written = stepwise_eval::commands::write_scale_outputs(&summary.rows, &title, &args.out)?;
    eprintln!("wrote {written}");
    Ok(())
}
