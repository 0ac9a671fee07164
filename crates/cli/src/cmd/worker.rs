//! `stepwise worker`: one more worker on a stored run (usually in a PostgreSQL store
//! shared by several machines). The job is rebuilt from the run's stored config and
//! problems on this worker's own backend flags, and claims units until none is left.
//!
//! [`JOINS`] is the one place that says how a worker joins each run kind: which of its
//! backends the kind needs, and the library call that runs the job. A kind missing there
//! is refused, naming the kinds a worker joins.

use super::backend::{BackendArgs, PrmArgs};
use super::jobargs::{StoreArgs, run_options};
use crate::Global;
use crate::out::outln;
use anyhow::Context as _;
use std::path::PathBuf;
use stepwise_jobs::{RunInfo, RunKind, RunOptions, RunStore};
use stepwise_search::jobs::Joined;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The run to work on (a solve, scale, annotate, eval-processbench,
    /// eval-faithfulness, verify, reward, data-build or head-features run; see
    /// `stepwise data runs`).
    #[arg(long, value_name = "RUN_ID")]
    pub run: i64,
    /// Units this worker does at the same time.
    #[arg(long, default_value_t = 4)]
    pub jobs: usize,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Scorer spec of this worker (solve and scale runs), to reach the run's PRM through a
    /// server of its own (`prm:URL`; or give `--prm-endpoint`). It must be the run's
    /// scorer but for the servers: another scorer is refused, naming the difference.
    #[arg(long, value_name = "SPEC")]
    pub scorer: Option<String>,
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

/// What a worker joins with: its flags, the shared store, the run and the runner's options.
struct Joining<'a> {
    args: &'a Args,
    g: &'a Global,
    store: &'a dyn RunStore,
    info: &'a RunInfo,
    opts: &'a RunOptions,
}

/// How a worker joins runs of one kind: opens the backends the kind needs from the
/// worker's flags, runs the job on the store, and returns the line to print.
type JoinFn = fn(&Joining) -> anyhow::Result<String>;

/// Every run kind a worker joins.
const JOINS: &[(&str, JoinFn)] = &[
    (
        <stepwise_jobs::kinds::solve::Solve as RunKind>::KIND,
        search,
    ),
    (
        <stepwise_jobs::kinds::scale::Scale as RunKind>::KIND,
        search,
    ),
    (stepwise_annotate::run::KIND, annotate),
    (
        <stepwise_eval::pbrun::ProcessBench as RunKind>::KIND,
        processbench,
    ),
    (<stepwise_jobs::verify::VerifyKind as RunKind>::KIND, verify),
    (
        <stepwise_eval::faithfulness::Faithfulness as RunKind>::KIND,
        faithfulness,
    ),
    (<stepwise_jobs::reward::RewardKind as RunKind>::KIND, reward),
    (<stepwise_build::Build as RunKind>::KIND, data_build),
    (
        <stepwise_score::HeadFeatures as RunKind>::KIND,
        head_features,
    ),
];

pub fn run(args: Args, g: &Global) -> anyhow::Result<()> {
    let store = args.store.open()?;
    let info = store
        .run(args.run)
        .with_context(|| format!("--run {}", args.run))?;
    let Some((_, join)) = JOINS.iter().find(|(kind, _)| *kind == info.kind) else {
        let known: Vec<&str> = JOINS.iter().map(|(k, _)| *k).collect();
        anyhow::bail!(
            "run {} is a '{}' run, which a worker does not join (it joins {} runs)",
            info.id,
            info.kind,
            known.join(", ")
        );
    };
    let opts = run_options(Some(args.run), args.jobs, g);
    let line = join(&Joining {
        args: &args,
        g,
        store: store.as_ref(),
        info: &info,
        opts: &opts,
    })?;
    outln!("{line}")?;
    Ok(())
}

/// The worker's backend, decoding the way the run was made unless told otherwise.
fn backend_for(args: &Args, info: &RunInfo) -> BackendArgs {
    let reproducible = info.config["reproducible"].as_bool().unwrap_or(false);
    args.backend.deterministic_by_default(reproducible)
}

fn search(j: &Joining) -> anyhow::Result<String> {
    let backends = super::solve::open_backends(
        &backend_for(j.args, j.info),
        &j.args.judge_model,
        &j.args.judge_endpoint,
        &j.args.prm,
    )?;
    let joined = super::runtime()?.block_on(stepwise_search::jobs::join(
        j.store,
        j.info.id,
        &backends,
        j.args.scorer.as_deref(),
        j.opts,
    ))?;
    Ok(match joined {
        Joined::Solve(summary) => summary.to_string(),
        Joined::Scale(summary) => summary.markdown(),
    })
}

fn annotate(j: &Joining) -> anyhow::Result<String> {
    let backend = backend_for(j.args, j.info);
    let generator = backend.open()?;
    let judge = super::solve::open_judge(&backend, &j.args.judge_model, &j.args.judge_endpoint)?;
    let outcome = super::runtime()?
        .block_on(stepwise_annotate::run::join(
            j.store,
            j.info.id,
            generator,
            judge,
            j.g.data_dir.clone(),
            j.opts,
        ))
        .context("annotate worker")?;
    Ok(format!(
        "run {}: {} units done by this worker",
        outcome.run, outcome.units_done_now
    ))
}

fn processbench(j: &Joining) -> anyhow::Result<String> {
    let config = stepwise_jobs::stored_config::<stepwise_eval::pbrun::ProcessBench>(j.info)?;
    let mode = super::eval::pb_mode(
        &config.spec,
        config.critic_max_tokens,
        &j.args.backend,
        &j.args.prm,
    )?;
    let data_dir = stepwise_data::data_dir(j.g.data_dir.as_deref())?;
    let report = super::runtime()?
        .block_on(stepwise_eval::commands::join_processbench(
            j.store, j.info.id, &data_dir, mode, j.opts,
        ))
        .context("eval-processbench worker")?;
    Ok(done_line(&report))
}

fn faithfulness(j: &Joining) -> anyhow::Result<String> {
    let policy = backend_for(j.args, j.info)
        .open()
        .context("opening the policy")?;
    let report = super::runtime()?
        .block_on(stepwise_eval::commands::join_faithfulness(
            j.store, j.info.id, policy, j.opts,
        ))
        .context("eval-faithfulness worker")?;
    Ok(format!(
        "{} (the table is written by `stepwise eval faithfulness … --resume {}`)",
        done_line(&report),
        report.run
    ))
}

fn verify(j: &Joining) -> anyhow::Result<String> {
    let report = super::runtime()?
        .block_on(stepwise_jobs::verify::join(j.store, j.info.id, j.opts))
        .context("verify worker")?;
    Ok(done_line(&report))
}

fn reward(j: &Joining) -> anyhow::Result<String> {
    // a run with model-backed components is joined with this worker's models, which must
    // be the run's (the stored identity is checked)
    let models = if stepwise_jobs::reward::join_needs_models(j.info)? {
        let args = super::backend::RewardModelArgs {
            backend: j.args.backend.clone(),
            judge_model: j.args.judge_model.clone(),
            judge_endpoint: j.args.judge_endpoint.clone(),
            prm: j.args.prm.clone(),
        };
        args.open(true)?
            .map(|m| stepwise_jobs::reward::RewardModels {
                identity: super::backend::models_identity(&m),
                components: std::sync::Arc::new(m),
            })
    } else {
        None
    };
    let report = super::runtime()?
        .block_on(stepwise_jobs::reward::join_with_models(
            j.store,
            j.info.id,
            models.as_ref(),
            j.opts,
        ))
        .context("reward worker")?;
    Ok(done_line(&report))
}

fn data_build(j: &Joining) -> anyhow::Result<String> {
    // the policy decodes as `data pairs` opens it: deterministically unless told otherwise
    let policy = if stepwise_build::join_needs_policy(j.info)? {
        Some(j.args.backend.deterministic_by_default(true).open()?)
    } else {
        None
    };
    let report = super::runtime()?
        .block_on(stepwise_build::join(j.store, j.info.id, policy, j.opts))
        .context("data-build worker")?;
    Ok(format!(
        "{} (the output file is written by `stepwise data sft|pairs … --resume {}`)",
        done_line(&report),
        report.run
    ))
}

fn head_features(j: &Joining) -> anyhow::Result<String> {
    // the model as `head train` opens it
    let generator = j.args.backend.open().context("opening the model")?;
    let report = super::runtime()?
        .block_on(stepwise_score::join_features(
            j.store,
            j.info.id,
            generator.as_ref(),
            j.opts,
        ))
        .context("head-features worker")?;
    Ok(format!(
        "{} (train the head with `stepwise head train … --features-store … --resume {}`)",
        done_line(&report),
        report.run
    ))
}

fn done_line(r: &stepwise_jobs::RunReport) -> String {
    format!(
        "run {}: {} of {} units done by this worker ({} were done before it started)",
        r.run, r.done_now, r.total, r.done_before
    )
}
