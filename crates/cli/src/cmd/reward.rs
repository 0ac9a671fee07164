//! `stepwise reward`: a JSONL file of rollouts scored offline with the reward functions of
//! a `rewards.toml` or a preset (the server's own), as a resumable job.

use crate::Global;
use crate::cmd::jobargs::{StoreArgs, run_options};
use anyhow::Context as _;
use std::path::PathBuf;
use stepwise_serve::config::{PRESETS, RewardConfig};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The reward functions: a TOML file (the one `stepwise serve --config` takes).
    #[arg(long, value_name = "FILE", conflicts_with = "preset")]
    pub config: Option<PathBuf>,
    /// A preset as the reward function (default: deepseek-r1).
    #[arg(long, value_name = "NAME")]
    pub preset: Option<String>,
    /// JSONL input: one {"prompt", "response", "gold" | "label", "data_source", "group", "id"} a line.
    #[arg(long = "in", value_name = "FILE")]
    pub input: PathBuf,
    /// Where to write one reward a line, in input order, once every line is scored.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Continue run RUN_ID of the store (rerunning the same command also continues it).
    #[arg(long, value_name = "RUN_ID")]
    pub resume: Option<i64>,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Write malformed lines as error lines naming the line instead of stopping.
    #[arg(long)]
    pub skip_bad: bool,
    /// Chunks (of 256 lines) scored at once.
    #[arg(long, default_value_t = 4)]
    pub jobs: usize,
    /// The models of model-backed components (`kind = "scorer"` in --config); opened
    /// only when the configuration has one.
    #[command(flatten)]
    pub models: crate::cmd::backend::RewardModelArgs,
}

pub fn run(args: Args, g: &Global) -> anyhow::Result<()> {
    let rewards = match (&args.config, &args.preset) {
        (Some(path), _) => RewardConfig::from_file(path)?,
        (None, Some(p)) => RewardConfig::with_preset(p)
            .with_context(|| format!("choosing a preset (one of {})", PRESETS.join(", ")))?,
        (None, None) => RewardConfig::default(),
    };
    let models =
        args.models
            .open(rewards.needs_models())?
            .map(|m| stepwise_jobs::reward::RewardModels {
                identity: crate::cmd::backend::models_identity(&m),
                components: std::sync::Arc::new(m),
            });
    let store = args.store.open()?;
    let mut run = run_options(args.resume, args.jobs, g);
    if args.resume.is_none() {
        run.resume = stepwise_jobs::Resume::Matching;
    }
    let s = crate::cmd::runtime()?
        .block_on(stepwise_jobs::reward::reward_file_with_models(
            store.as_ref(),
            &args.input,
            rewards,
            models.as_ref(),
            args.skip_bad,
            &args.out,
            &run,
        ))
        .with_context(|| format!("stepwise reward --in {}", args.input.display()))?;
    if !g.quiet {
        eprintln!(
            "{} lines scored, mean reward {:.4}, keys {}{}{}; run {}, written to {}",
            s.tally.scored,
            s.tally.mean_reward(),
            s.keys.join(", "),
            if s.bad_lines > 0 {
                format!("; {} malformed lines written as errors", s.bad_lines)
            } else {
                String::new()
            },
            if s.resumed_chunks > 0 {
                format!(" ({} chunks already done, resumed)", s.resumed_chunks)
            } else {
                String::new()
            },
            s.run,
            args.out.display()
        );
    }
    Ok(())
}
