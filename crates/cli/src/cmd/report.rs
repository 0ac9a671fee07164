//! `stepwise report`: a self-contained HTML page of a run's results.

use crate::Global;
use anyhow::{Context, bail};
use std::path::PathBuf;
use stepwise_eval::compute::Resampling;
use stepwise_eval::views;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A results JSONL file (from `stepwise eval processbench`, or samples/outcomes of a
    /// solve/scale run), or an output folder holding `results.jsonl`.
    pub results: PathBuf,
    /// Where to write the page (default: report.html beside the results).
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Fixed step-score threshold for ProcessBench results (default: best F1 on GSM8K).
    #[arg(long)]
    pub threshold: Option<f64>,
    /// Problems in the drill-down.
    #[arg(long, default_value_t = 60)]
    pub problems: usize,
    /// Page title.
    #[arg(long)]
    pub title: Option<String>,
    /// Seed of the bootstrap intervals.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

pub fn run(args: Args, _g: &Global) -> anyhow::Result<()> {
    let file = if args.results.is_dir() {
        args.results.join("results.jsonl")
    } else {
        args.results.clone()
    };
    if !file.is_file() {
        bail!(
            "{}: no such results file (pass a results JSONL file or a folder with results.jsonl)",
            file.display()
        );
    }
    let results = views::read_results(&file)?;
    let title = args.title.clone().unwrap_or_else(|| {
        let kind = match &results {
            views::Results::ProcessBench(_) => "ProcessBench",
            views::Results::Samples(_) => "Samples",
            views::Results::Outcomes(_) => "Strategy outcomes",
        };
        format!("stepwise report: {kind}")
    });
    let meta = vec![("results".to_string(), file.display().to_string())];
    let opts = Resampling {
        seed: args.seed,
        ..Resampling::default()
    };
    let rep = views::report_for(&title, meta, &results, args.threshold, opts, args.problems)?;
    let out = args.out.clone().unwrap_or_else(|| {
        file.parent()
            .map_or_else(|| PathBuf::from("report.html"), |p| p.join("report.html"))
    });
    std::fs::write(&out, rep.to_html()).with_context(|| format!("writing {}", out.display()))?;
    println!("{}", out.display());
    Ok(())
}
