//! `stepwise gateway`: test-time search behind the OpenAI API.

use super::backend::BackendArgs;
use super::solve::SearchArgs;
use crate::Global;
use anyhow::Context;
use std::net::{IpAddr, SocketAddr};
use stepwise_gateway::models::{ModelName, ServedModel, default_models};
use stepwise_gateway::{Gateway, GatewayConfig};

/// Serve `/v1/chat/completions` and `/v1/completions` answered by a search strategy
/// (model `bon/arith`, `weighted/arith`, `beam/arith`, `mcts/arith`, … or the upstream's
/// own name for a plain completion), `/v1/models`, `/health`, `/metrics`.
///
/// Example: `stepwise gateway --upstream http://127.0.0.1:8080/v1 --http-chat-mode chatml`,
/// then `OpenAI(base_url="http://127.0.0.1:8100/v1").chat.completions.create(model="bon/arith", …)`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// OpenAI-compatible upstream policy server (repeat for several; least-loaded, with
    /// retries). Without one the embedded model answers.
    #[arg(long, value_name = "URL")]
    pub upstream: Vec<String>,
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8100)]
    pub port: u16,
    /// Address to listen on; one other machines can reach needs --auth-token or --insecure.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Serve on a non-loopback --host without an auth token (logs a warning).
    #[arg(long)]
    pub insecure: bool,
    /// Require `Authorization: Bearer <token>` on every route but /health.
    #[arg(long, env = "STEPWISE_AUTH_TOKEN", hide_env_values = true)]
    pub auth_token: Option<String>,
    /// Models served, comma-separated `STRATEGY[/SCORER]` (default: every strategy, the
    /// scored ones with --scorer, or arith).
    #[arg(long = "models", value_delimiter = ',', value_name = "NAMES")]
    pub served: Vec<String>,
    /// Samples or candidates per step when a request names none.
    #[arg(long = "default-n", default_value_t = 4)]
    pub default_n: usize,
    /// Largest n a request may ask for.
    #[arg(long, default_value_t = 64)]
    pub max_n: usize,
    /// Requests served at once; beyond this, 503 with Retry-After.
    #[arg(long, default_value_t = 16)]
    pub max_concurrency: usize,
    /// Per-request deadline in milliseconds (then the best candidate so far, marked partial).
    #[arg(long, default_value_t = 120_000)]
    pub deadline_ms: u64,
    #[command(flatten)]
    pub search: SearchArgs,
    #[command(flatten)]
    pub backend: BackendArgs,
}

pub fn run(mut args: Args, _g: &Global) -> anyhow::Result<()> {
    args.backend.endpoint.append(&mut args.upstream);
    let models: Vec<ServedModel> = if args.served.is_empty() {
        default_models(args.search.scorer.as_deref().unwrap_or("arith"))
    } else {
        args.served
            .iter()
            .map(|m| m.parse::<ModelName>().map(|n| n.model))
            .collect::<Result<_, _>>()
            .context("--models")?
    };
    if let Some(m) = args.search.prompting {
        anyhow::bail!("--prompting {m}: prompt programs run in solve and scale, not the gateway");
    }
    let rt = crate::cmd::runtime()?;
    let backends = args.search.backends(&args.backend)?;
    let settings = args
        .search
        .settings(backends.judge.as_ref().map(|j| j.name()))?;
    let config = GatewayConfig {
        models,
        passthrough: args
            .backend
            .model_name
            .clone()
            .unwrap_or_else(|| backends.policy.name()),
        search: settings,
        default_n: args.default_n,
        max_n: args.max_n,
        max_concurrency: args.max_concurrency,
        deadline_ms: args.deadline_ms,
        auth_token: args.auth_token.clone(),
        ..GatewayConfig::default()
    };
    let addr = SocketAddr::new(args.host, args.port);
    rt.block_on(async move {
        let gw = Gateway::bind(addr, config, backends, args.insecure)
            .await
            .context("starting the gateway")?;
        eprintln!(
            "stepwise gateway: listening on http://{}/v1; ctrl-c or SIGTERM to stop",
            gw.local_addr()
        );
        gw.run(stepwise_serve::shutdown_signal())
            .await
            .context("serving the gateway")
    })
}
