//! `stepwise eval`: ProcessBench, accuracy versus compute, calibration.

use crate::Global;
use crate::cmd::backend::BackendArgs;
use crate::cmd::jobargs::{StoreArgs, run_options};
use crate::out::outln;
use anyhow::Context;
use std::path::PathBuf;
use stepwise_eval::commands;
use stepwise_eval::compute::Resampling;
use stepwise_eval::pbrun::PbMode;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub what: What,
}

#[derive(clap::Subcommand, Debug)]
pub enum What {
    /// ProcessBench: find the earliest wrong step of each solution (accuracy on erroneous
    /// and correct samples, F1 per subset).
    Processbench(Box<PbArgs>),
    /// Accuracy versus compute of a solve/scale run: pass@k, maj@k, weighted@k and
    /// best-of-k per aggregation, strategies per budget, against mean generated tokens.
    Compute(ComputeArgs),
    /// Calibration (ECE, Brier, AUROC, reliability diagram) of step scores, from a
    /// solve/scale run or a results file.
    Calibration(FileArgs),
    /// Faithfulness (PINTO's counterfactual check): perturb each stored sample's rationale
    /// (drop a step, change a number, shuffle, swap in another problem's) and measure how
    /// often the forced answer, and how much its probability, change.
    Faithfulness(Box<FaithArgs>),
}

#[derive(clap::Args, Debug)]
pub struct FaithArgs {
    /// Finished solve or scale runs of the store whose samples are probed (comma-separated
    /// or repeated); the table has a row set per prompting method of these runs.
    #[arg(
        long = "run",
        value_name = "RUN_ID",
        value_delimiter = ',',
        required = true
    )]
    pub runs: Vec<i64>,
    /// Perturbations, comma-separated: drop-step, change-number, shuffle, swap.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "drop-step,change-number,shuffle,swap"
    )]
    pub perturbations: Vec<stepwise_eval::faithfulness::Perturbation>,
    /// Seed of the perturbations (with each sample's key).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Tokens the forced answer may take.
    #[arg(long, default_value_t = 16)]
    pub max_tokens: u32,
    /// At most this many samples per problem (the first ones; default: all).
    #[arg(long)]
    pub samples: Option<usize>,
    /// Bootstrap resamples of the intervals.
    #[arg(long, default_value_t = 1000)]
    pub bootstrap: usize,
    /// Measure answer changes only, not the original answer's probability (for servers
    /// that return no log-probabilities).
    #[arg(long)]
    pub no_answer_probability: bool,
    /// Output folder: faithfulness.md and faithfulness.csv.
    #[arg(long, default_value = "faithfulness-out")]
    pub out: PathBuf,
    /// Continue run RUN_ID of the store. Without it, rerunning the same command
    /// continues its newest unfinished run.
    #[arg(long, value_name = "RUN_ID")]
    pub resume: Option<i64>,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Samples probed concurrently.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// The policy that answers after the perturbed rationales (the source runs' own, for
    /// the check to mean anything).
    #[command(flatten)]
    pub backend: BackendArgs,
}

#[derive(clap::Args, Debug)]
pub struct PbArgs {
    /// How steps are judged: any step scorer of `solve` — `arith` (exact arithmetic claim
    /// checker), `judge` (an LLM judge's P(Yes) per step), `self-judge`, `rollout`,
    /// `outcome`, `prm:URL` (a PRM server, see --prm-protocol), products such as
    /// `arith*judge` — or `critic` (the model names the first wrong paragraph in \boxed{}).
    #[arg(long, value_name = "SCORER")]
    pub scorer: String,
    /// Subsets, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "gsm8k,math,olympiadbench,omnimath"
    )]
    pub subsets: Vec<String>,
    /// Score this JSONL file in ProcessBench's format instead of the subsets: one record a
    /// line with `id`, `problem`, `steps` and `label` (0-based first wrong step, -1 for
    /// none), so step-labelled data of any domain can be scored (needs --threshold with a
    /// scorer). Records sharing a `problem_id` (or `group`) field, else the same `problem`
    /// text, are candidates of one problem: rank@1 of PRM-style (min step score) against
    /// outcome-style (final step score) selection is reported where there are several.
    #[arg(long, value_name = "FILE")]
    pub data: Option<PathBuf>,
    /// Fixed threshold on step scores (default: the best F1 on the GSM8K subset).
    #[arg(long)]
    pub threshold: Option<f64>,
    /// At most this many records per subset (the first ones, in file order).
    #[arg(long)]
    pub limit: Option<usize>,
    /// With --limit: take half the records from those without an error and half from
    /// those with one (the shipped files list erroneous records first, so a plain
    /// --limit may hold one class only and leave F1 undefined).
    #[arg(long)]
    pub balanced: bool,
    /// Output folder: results.jsonl, summary.md/.csv/.json, plots (PNG and SVG) and
    /// report.html, written when every record is scored.
    #[arg(long, default_value = "processbench-out")]
    pub out: PathBuf,
    /// Continue run RUN_ID of the store. Without it, rerunning the same command
    /// continues its newest unfinished run (same subsets, selection and scorer).
    #[arg(long, value_name = "RUN_ID")]
    pub resume: Option<i64>,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Records scored concurrently (model scorers batch them).
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Tokens the critic may generate.
    #[arg(long, default_value_t = 512)]
    pub critic_max_tokens: u32,
    /// Records shown in the report's drill-down (mistakes first).
    #[arg(long, default_value_t = 60)]
    pub report_problems: usize,
    #[command(flatten)]
    pub backend: BackendArgs,
    #[command(flatten)]
    pub prm: crate::cmd::backend::PrmArgs,
}

#[derive(clap::Args, Debug)]
pub struct ComputeArgs {
    /// A solve or scale run of the run store (its id, or `latest`); a `stepwise scale`
    /// output folder or its scale.json; a `stepwise solve --out` JSONL; or a samples or
    /// outcomes JSONL.
    #[arg(value_name = "RUN_ID|PATH")]
    pub source: String,
    /// Run store (SQLite) holding RUN_ID.
    #[arg(long, value_name = "PATH", default_value_os_t = stepwise_store::default_store_path())]
    pub store: PathBuf,
    /// Output folder: compute.md, compute.csv, accuracy_vs_tokens.png and .svg.
    #[arg(long, default_value = "eval-out")]
    pub out: PathBuf,
    /// Bootstrap resamples.
    #[arg(long, default_value_t = 1000)]
    pub bootstrap: usize,
    /// Random k-subsets per problem for maj@k, weighted@k, best-of-k.
    #[arg(long, default_value_t = 64)]
    pub draws: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(clap::Args, Debug)]
pub struct FileArgs {
    /// A solve or scale run of the run store (its id, or `latest`), or a results JSONL
    /// (samples per problem, or ProcessBench results).
    #[arg(value_name = "RUN_ID|PATH")]
    pub results: String,
    /// Run store (SQLite) holding RUN_ID.
    #[arg(long, value_name = "PATH", default_value_os_t = stepwise_store::default_store_path())]
    pub store: PathBuf,
    /// Output folder: calibration.md, calibration.csv, reliability-*.png and .svg.
    #[arg(long, default_value = "eval-out")]
    pub out: PathBuf,
}

pub fn run(args: Args, g: &Global) -> anyhow::Result<()> {
    match args.what {
        What::Processbench(a) => processbench(*a, g),
        What::Faithfulness(a) => faithfulness(*a, g),
        What::Compute(a) => {
            let table = commands::compute(&commands::ComputeRequest {
                source: a.source,
                store: a.store,
                out: a.out.clone(),
                resampling: Resampling {
                    draws: a.draws,
                    bootstrap: a.bootstrap,
                    seed: a.seed,
                    ..Resampling::default()
                },
                command: command_line(),
            })?;
            outln!("{table}")?;
            eprintln!("wrote {}", a.out.display());
            Ok(())
        }
        What::Calibration(a) => {
            let table = commands::calibration(&commands::CalibrationRequest {
                results: a.results,
                store: a.store,
                out: a.out.clone(),
            })?;
            outln!("{table}")?;
            eprintln!("wrote {}", a.out.display());
            Ok(())
        }
    }
}

/// The command line as typed (quoted where needed), for summaries and reports.
pub fn command_line() -> String {
    let mut v: Vec<String> = std::env::args().collect();
    if let Some(first) = v.first_mut() {
        *first = "stepwise".into();
    }
    v.iter()
        .map(|a| {
            if a.contains([' ', '"', '\'', '\\']) {
                format!("'{}'", a.replace('\'', "'\\''"))
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// How ProcessBench records are scored for the scorer spec `spec` (`critic` or a step
/// scorer), on the backends of `backend` and `prm` (also a `stepwise worker`'s).
pub fn pb_mode(
    spec: &str,
    critic_max_tokens: u32,
    backend: &BackendArgs,
    prm: &crate::cmd::backend::PrmArgs,
) -> anyhow::Result<PbMode> {
    Ok(match spec {
        "critic" => PbMode::Critic {
            generator: backend.open().context("opening the critic model")?,
            params: stepwise_model::SamplingParams {
                temperature: 0.0,
                max_tokens: critic_max_tokens,
                ..Default::default()
            },
        },
        spec => {
            let model = if stepwise_score::needs_model(spec) {
                Some(backend.open().context("opening the judge model")?)
            } else {
                None
            };
            let settings = stepwise_score::ScorerSettings {
                prm: prm.settings(),
                ..stepwise_score::ScorerSettings::default()
            };
            PbMode::Scorer(
                stepwise_score::build_scorer(spec, model, None, &settings)
                    .with_context(|| format!("setting up scorer '{spec}'"))?,
            )
        }
    })
}

fn processbench(a: PbArgs, g: &Global) -> anyhow::Result<()> {
    let data_dir = stepwise_data::data_dir(g.data_dir.as_deref())?;
    let mode = pb_mode(&a.scorer, a.critic_max_tokens, &a.backend, &a.prm)?;
    let req = commands::PbRequest {
        data_dir,
        subsets: a.subsets,
        data: a.data.clone(),
        limit: a.limit,
        balanced: a.balanced,
        spec: a.scorer.clone(),
        critic_max_tokens: a.critic_max_tokens,
        threshold: a.threshold,
        out: a.out.clone(),
        report_problems: a.report_problems,
        command: command_line(),
    };
    let store = a.store.open()?;
    let opts = continuing_options(a.resume, a.concurrency, g);
    let outcome = crate::cmd::runtime()?.block_on(commands::processbench(
        store.as_ref(),
        &req,
        mode,
        &opts,
    ))?;
    outln!("{}", outcome.table)?;
    outln!("{}", outcome.threshold)?;
    eprintln!("wrote {} (run {})", a.out.display(), outcome.run);
    Ok(())
}

fn faithfulness(a: FaithArgs, g: &Global) -> anyhow::Result<()> {
    let policy = a.backend.open().context("opening the policy")?;
    let req = commands::FaithRequest {
        runs: a.runs.clone(),
        perturbations: a.perturbations.clone(),
        seed: a.seed,
        max_tokens: a.max_tokens,
        samples: a.samples,
        bootstrap: a.bootstrap,
        answer_probability: !a.no_answer_probability,
        out: a.out.clone(),
        command: command_line(),
    };
    let store = a.store.open()?;
    let opts = continuing_options(a.resume, a.concurrency, g);
    let outcome = crate::cmd::runtime()?.block_on(commands::faithfulness(
        store.as_ref(),
        &req,
        policy,
        &opts,
    ))?;
    outln!("{}", outcome.table)?;
    eprintln!("wrote {} (run {})", a.out.display(), outcome.run);
    Ok(())
}

/// The run options of an eval job: `--resume ID`, or else rerunning the same command
/// continues its newest unfinished run.
fn continuing_options(
    resume: Option<i64>,
    concurrency: usize,
    g: &Global,
) -> stepwise_jobs::RunOptions {
    let mut opts = run_options(resume, concurrency, g);
    if resume.is_none() {
        opts.resume = stepwise_jobs::Resume::Matching;
    }
    opts
}
