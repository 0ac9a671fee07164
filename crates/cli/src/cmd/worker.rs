//! `stepwise worker`: one more worker on a stored run (usually in a PostgreSQL store
//! shared by several machines). The job is rebuilt from the run's stored config and
//! problems on this worker's own backend flags, and claims units until none is left.

use super::backend::{BackendArgs, PrmArgs};
use super::jobargs::{StoreArgs, run_options};
use crate::Global;
use crate::out::outln;
use anyhow::Context as _;
use std::path::PathBuf;
use stepwise_search::jobs::Joined;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The run to work on (a solve, scale or annotate run; see `stepwise data runs`).
    #[arg(long, value_name = "RUN_ID")]
    pub run: i64,
    /// Units this worker does at the same time.
    #[arg(long, default_value_t = 4)]
    pub jobs: usize,
    #[command(flatten)]
    pub store: StoreArgs,
    /// GGUF model of the judge, when the run's judge is not the policy.
    #[arg(long, value_name = "PATH.gguf")]
    pub judge_model: Option<PathBuf>,
    /// OpenAI-compatible endpoint of the judge, when the run's judge is not the policy.
    #[arg(long, value_name = "URL")]
    pub judge_endpoint: Vec<String>,
    #[command(flatten)]
    pub prm: PrmArgs,
    #[command(flatten)]
    pub backend: BackendArgs,
}

pub fn run(args: Args, g: &Global) -> anyhow::Result<()> {
    let store = args.store.open()?;
    let info = store
        .run(args.run)
        .with_context(|| format!("--run {}", args.run))?;
    // decode the way the run was made unless told otherwise
    let reproducible = info.config["reproducible"].as_bool().unwrap_or(false);
    let backend = args.backend.deterministic_by_default(reproducible);
    let opts = run_options(Some(args.run), args.jobs, g);
    if info.kind == "annotate" {
        let job = stepwise_annotate::run::Job {
            config: Default::default(),
            store: args.store.store.to_string_lossy().into_owned(),
            resume: Some(args.run),
            data_dir: g.data_dir.clone(),
            run: opts,
            out: None,
            eval_against_truth: false,
            stored_only: false,
        };
        let source = stepwise_annotate::run::PolicySource::Model(backend.open()?);
        let outcome = super::runtime()?
            .block_on(stepwise_annotate::run::run_job(&job, source))
            .context("annotate worker")?;
        outln!(
            "run {}: {} units done by this worker",
            outcome.run,
            outcome.units_done_now
        )?;
        return Ok(());
    }
    let backends =
        super::solve::open_backends(&backend, &args.judge_model, &args.judge_endpoint, &args.prm)?;
    let joined = super::runtime()?.block_on(stepwise_search::jobs::join(
        store.as_ref(),
        args.run,
        &backends,
        &opts,
    ))?;
    match joined {
        Joined::Solve(summary) => outln!("{summary}")?,
        Joined::Scale(summary) => outln!("{}", summary.markdown())?,
    }
    Ok(())
}
