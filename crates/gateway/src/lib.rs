//! stepwise-gateway: test-time search behind the OpenAI API.
//!
//! A client posts `/v1/chat/completions` or `/v1/completions` as usual; the gateway runs
//! the strategy its `model` names (`bon/arith`, `weighted/arith`, `beam/arith`,
//! `mcts/rollout`, …, or the extension field `stepwise: {strategy, n, scorer, budget}`)
//! with the existing [`Strategy`](stepwise_search::Strategy) implementations over the
//! policy (an upstream OpenAI-compatible server through `stepwise-http`, or the embedded
//! model) and answers with the chosen solution. `usage` is the client's view (its prompt
//! and the answer); the `stepwise` field carries the full spend (policy and judge tokens
//! and calls), every candidate with its scores and, with `stepwise.tree`, the search's
//! trace. The pass-through model answers with one plain completion.
//!
//! Streaming (`"stream": true`) sends the chosen answer as SSE chunks once the search has
//! chosen it; while it searches, progress goes out as SSE comments
//! (`: stepwise progress: calls=3 tokens=120`), which OpenAI clients skip. The last chunk
//! carries `stepwise`; with `stream_options.include_usage` one more carries `usage`.
//!
//! Guarantees: the connection loop, bearer-token check and body limits are the reward
//! server's (`stepwise_serve::conn`); a request's whole body arrives before it takes one
//! of `max_concurrency` permits, else 503 with `Retry-After`; an upstream failure or the
//! deadline or budget running out answers with the best candidate so far, marked
//! `stepwise.partial` with the reason.

pub mod api;
mod app;
pub mod models;
pub mod tracked;

pub use app::{AppState, GatewayConfig, Metrics, router};

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use stepwise_search::jobs::Backends;

/// Errors starting or running the gateway.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("binding {addr}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("serving")]
    Io(#[from] std::io::Error),
    #[error(
        "refusing to serve on {addr} without an auth token: other machines could spend the upstream's compute; set --auth-token / STEPWISE_AUTH_TOKEN, listen on 127.0.0.1, or pass --insecure"
    )]
    Unprotected { addr: SocketAddr },
    #[error("invalid gateway settings: {0}")]
    Config(String),
}

/// A bound, not yet running gateway.
pub struct Gateway {
    bound: stepwise_serve::conn::Bound<AppState>,
}

impl Gateway {
    /// Binds `addr` (port 0 picks a free one); an address other machines can reach needs
    /// an auth token unless `insecure`.
    pub async fn bind(
        addr: SocketAddr,
        config: GatewayConfig,
        backends: Backends,
        insecure: bool,
    ) -> Result<Self, GatewayError> {
        if !stepwise_serve::conn::exposure_allowed(addr, config.auth_token.is_some(), insecure) {
            return Err(GatewayError::Unprotected { addr });
        }
        if config.models.is_empty() || config.max_concurrency == 0 || config.default_n == 0 {
            return Err(GatewayError::Config(
                "at least one model, max_concurrency >= 1 and default n >= 1 are needed".into(),
            ));
        }
        let state = Arc::new(AppState::new(config, backends));
        let bound = stepwise_serve::conn::Bound::bind(addr, state)
            .await
            .map_err(|source| GatewayError::Bind { addr, source })?;
        Ok(Self { bound })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.bound.local_addr()
    }

    /// The shared state (metrics).
    pub fn state(&self) -> Arc<AppState> {
        self.bound.state()
    }

    /// Serves until `shutdown` resolves, then finishes the requests in flight (at most the
    /// deadline plus 5 s).
    pub async fn run<F>(self, shutdown: F) -> Result<(), GatewayError>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let state = self.bound.state();
        let c = &state.config;
        let limits = stepwise_serve::conn::ConnLimits {
            header_read_timeout: Duration::from_millis(c.header_read_timeout_ms),
            max_connections: c.max_connections,
            grace: Duration::from_millis(c.deadline_ms) + Duration::from_secs(5),
        };
        let app = router(Arc::clone(&state));
        self.bound.serve(app, limits, shutdown).await?;
        Ok(())
    }
}
