//! `stepwise serve`: the reward server for RL trainers.

use crate::Global;
use anyhow::Context;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use stepwise_serve::config::{Config, PRESETS};

/// Serve rewards over HTTP: OpenRLHF `POST /get_reward`, `POST /v1/rewards`,
/// `POST /v1/verify`, `/health`, `/metrics`, `/openapi.json`.
///
/// Example: `stepwise serve --port 8000 --preset deepseek-r1`, then train with
/// OpenRLHF's `--remote_rm_url http://127.0.0.1:8000/get_reward`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// Address to listen on. An address other machines can reach (0.0.0.0, a LAN
    /// address) needs --auth-token, or --insecure.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Serve on a non-loopback --host without an auth token (logs a warning).
    #[arg(long)]
    pub insecure: bool,
    /// TOML file with [server] limits and [reward] / [sources."name"] reward functions.
    #[arg(long, conflicts_with = "preset", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// A built-in reward function: deepseek-r1 (accuracy + format), gsm8k (####), multiple-choice.
    #[arg(long, value_name = "NAME")]
    pub preset: Option<String>,
    /// Require `Authorization: Bearer <token>` on scoring and metrics endpoints.
    #[arg(long, env = "STEPWISE_AUTH_TOKEN", hide_env_values = true)]
    pub auth_token: Option<String>,
    /// Scoring requests served at once; beyond this, 503 with Retry-After.
    #[arg(long)]
    pub max_concurrency: Option<usize>,
    /// Per-request deadline in milliseconds (unfinished items get the timeout reward).
    #[arg(long)]
    pub deadline_ms: Option<u64>,
    /// Largest request body in bytes (413 beyond).
    #[arg(long)]
    pub max_body_bytes: Option<usize>,
    /// Verification threads (default: one per core).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Requests with model work at once (model-backed components, model scorers);
    /// beyond this, 503 with Retry-After.
    #[arg(long)]
    pub max_model_requests: Option<usize>,
    /// The models of model-backed components (`kind = "scorer"` in --config) and of
    /// /v1/step_rewards' model scorers; opened only when the configuration has such a
    /// component or a model flag is given.
    #[command(flatten)]
    pub models: crate::cmd::backend::RewardModelArgs,
    /// The policy's Hugging Face tokenizer.json: /v1/step_rewards then gives each step's
    /// token_end (the token after its last one), to place step rewards on tokens.
    #[arg(long, value_name = "FILE")]
    pub tokenizer: Option<PathBuf>,
}

pub fn run(args: Args, _g: &Global) -> anyhow::Result<()> {
    let mut config = match (&args.config, &args.preset) {
        (Some(path), _) => Config::from_file(path)?,
        (None, Some(p)) => Config::with_preset(p)
            .with_context(|| format!("choosing a preset (one of {})", PRESETS.join(", ")))?,
        (None, None) => Config::default(),
    };
    let s = &mut config.server;
    if let Some(t) = args.auth_token {
        s.auth_token = Some(t);
    }
    if let Some(n) = args.max_concurrency {
        s.max_concurrency = n;
    }
    if let Some(n) = args.deadline_ms {
        s.deadline_ms = n;
    }
    if let Some(n) = args.max_body_bytes {
        s.max_body_bytes = n;
    }
    if let Some(n) = args.workers {
        s.workers = n;
    }
    if let Some(n) = args.max_model_requests {
        s.max_model_requests = n;
    }
    if let Some(t) = args.tokenizer {
        s.tokenizer = Some(t);
    }
    config
        .check()
        .context("checking the server configuration")?;
    let addr = SocketAddr::new(args.host, args.port);
    stepwise_serve::check_exposure(addr, &config.server, args.insecure)?;
    let models = args.models.open(config.rewards.needs_models())?;
    let rt = crate::cmd::runtime()?;
    rt.block_on(async move {
        let server = stepwise_serve::Server::bind_with_models(addr, config, models)
            .await
            .context("starting the reward server")?;
        let bound = server.local_addr();
        eprintln!(
            "stepwise serve: listening on http://{bound} (OpenRLHF: --remote_rm_url http://{bound}/get_reward); ctrl-c or SIGTERM to stop"
        );
        tracing::info!(%bound, "listening");
        server
            .run(stepwise_serve::shutdown_signal())
            .await
            .context("serving rewards")
    })
}
