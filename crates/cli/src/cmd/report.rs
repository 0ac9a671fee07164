//! `stepwise report`: a self-contained HTML page of a run's results.

use crate::Global;
use crate::out::outln;
use anyhow::{Context, bail};
use std::path::PathBuf;
use stepwise_eval::compute::Resampling;
use stepwise_eval::runs::{self, RunRef};
use stepwise_eval::{runreport, views};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A run of the run store (its id, or `latest`) of `solve`, `scale` or `annotate`;
    /// or a results JSONL file (from `stepwise eval processbench`, or samples/outcomes of
    /// a solve/scale run), or an output folder holding `results.jsonl`. A file named
    /// like a run id is read as a file when written as a path (`./17`).
    #[arg(value_name = "RUN_ID|RESULTS")]
    pub results: String,
    /// Run store (SQLite) holding RUN_ID.
    #[arg(long, value_name = "PATH", default_value_os_t = stepwise_store::default_store_path())]
    pub store: PathBuf,
    /// Where to write the page (default: report.html beside the results, or
    /// run-RUN_ID.html in the current folder for a stored run).
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
    let opts = Resampling {
        seed: args.seed,
        ..Resampling::default()
    };
    if let Some(r) = RunRef::parse(&args.results) {
        let run = runs::load_run(&args.store, r)
            .with_context(|| format!("reading run {r} of {}", args.store.display()))?;
        let rep = runreport::run_report(&run, args.title.as_deref(), opts, args.problems)?;
        let out = args
            .out
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("run-{}.html", run.info.id)));
        std::fs::write(&out, rep.to_html())
            .with_context(|| format!("writing {}", out.display()))?;
        outln!("{}", out.display())?;
        return Ok(());
    }
    let path = PathBuf::from(&args.results);
    let file = views::results_file(&path);
    if !file.is_file() {
        bail!(
            "{}: no such results file (pass a run id of the store, `latest`, a results JSONL file or a folder with results.jsonl)",
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
    let rep = views::report_for(&title, meta, &results, args.threshold, opts, args.problems)?;
    let out = args.out.clone().unwrap_or_else(|| {
        file.parent()
            .map_or_else(|| PathBuf::from("report.html"), |p| p.join("report.html"))
    });
    std::fs::write(&out, rep.to_html()).with_context(|| format!("writing {}", out.display()))?;
    outln!("{}", out.display())?;
    Ok(())
}
