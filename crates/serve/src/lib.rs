//! stepwise-serve: a reward server for RL trainers.
//!
//! Trainers (OpenRLHF, verl, TRL) post rollouts; the server extracts each final
//! answer, verifies it against the gold answer with `stepwise-verify`, adds the
//! configured format and length terms, and answers with the rewards and their parts.
//!
//! Endpoints: `POST /get_reward` (OpenRLHF's remote reward model protocol),
//! `POST /v1/rewards`, `POST /v1/verify`, `GET /health`, `GET /metrics`
//! (Prometheus), `GET /openapi.json`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), stepwise_serve::ServeError> {
//! use stepwise_serve::{Server, config::Config};
//! let server = Server::bind("127.0.0.1:8000".parse().unwrap(), Config::with_preset("deepseek-r1")?).await?;
//! println!("listening on {}", server.local_addr());
//! server.run(stepwise_serve::shutdown_signal()).await?;
//! # Ok(()) }
//! ```
//!
//! Guarantees: verification runs on a fixed pool of threads, never on the async
//! runtime; a request's whole body is received (within `body_read_timeout_ms` and
//! `max_body_bytes`) before it takes one of `max_concurrency` permits, or gets 503 with
//! `Retry-After` (nothing queues without bound), so slow senders hold no permit;
//! connections are capped (`max_connections`) and closed when they send no complete
//! request head within `header_read_timeout_ms`; every request answers by its deadline,
//! which starts with its permit (items cut off get `timeout_reward` and `timed_out = 1`);
//! `/v1/step_rewards` refuses steps past `max_steps_per_item` / `max_steps_per_request`
//! before scoring any; shutdown stops accepting connections and finishes the requests
//! in flight.

pub mod api;
mod app;
pub mod config;
pub mod conn;
pub mod error;
pub mod metrics;
pub mod pool;
pub mod reward;
pub mod spans;

pub use app::{ApiDoc, AppState, router};

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Errors starting or running the server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("binding {addr}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("starting the verification pool: {0}")]
    Pool(rayon::ThreadPoolBuildError),
    #[error(transparent)]
    Tokenizer(#[from] spans::TokenizerError),
    #[error("serving")]
    Io(#[from] std::io::Error),
    #[error(
        "refusing to serve on {addr} without an auth token: other machines can reach it and the policy being trained could post to it; set an auth token (server.auth_token, or --auth-token / STEPWISE_AUTH_TOKEN), listen on 127.0.0.1, or pass --insecure to serve openly anyway"
    )]
    Unprotected { addr: SocketAddr },
}

/// Checks that a server other machines can reach (an address that is not loopback)
/// has an auth token. Without one it is an error, unless `insecure`, which logs a
/// loud warning instead.
pub fn check_exposure(
    addr: SocketAddr,
    settings: &config::ServerSettings,
    insecure: bool,
) -> Result<(), ServeError> {
    if conn::exposure_allowed(addr, settings.auth_token.is_some(), insecure) {
        Ok(())
    } else {
        Err(ServeError::Unprotected { addr })
    }
}

/// A bound, not yet running server.
pub struct Server {
    bound: conn::Bound<AppState>,
}

impl Server {
    /// Binds `addr` (port 0 picks a free port) with a checked configuration.
    pub async fn bind(addr: SocketAddr, config: config::Config) -> Result<Self, ServeError> {
        Self::bind_with_models(addr, config, None).await
    }

    /// [`Server::bind`] with the models of model-backed components and scorers (the
    /// embedded model or endpoints the caller opened).
    pub async fn bind_with_models(
        addr: SocketAddr,
        config: config::Config,
        models: Option<stepwise_score::ScorerComponents>,
    ) -> Result<Self, ServeError> {
        let state = Arc::new(AppState::with_models(&config, models)?);
        let bound = conn::Bound::bind(addr, state)
            .await
            .map_err(|source| ServeError::Bind { addr, source })?;
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

    /// Serves until `shutdown` resolves, then stops accepting connections and
    /// waits for in-flight requests (at most the body read timeout plus the request
    /// deadline plus 5 s).
    ///
    /// Each connection is served by hyper's HTTP/1 connection with a header read
    /// timeout (`header_read_timeout_ms`); at most `max_connections` are open at once,
    /// and one beyond that is answered 503 with `Retry-After` and closed.
    pub async fn run<F>(self, shutdown: F) -> Result<(), ServeError>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let settings = self.bound.state().settings().clone();
        let limits = conn::ConnLimits {
            header_read_timeout: Duration::from_millis(settings.header_read_timeout_ms),
            max_connections: settings.max_connections,
            grace: Duration::from_millis(settings.body_read_timeout_ms)
                + Duration::from_millis(settings.deadline_ms)
                + Duration::from_secs(5),
        };
        let app = router(self.bound.state());
        self.bound.serve(app, limits, shutdown).await?;
        Ok(())
    }
}

/// Resolves on ctrl-c or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!("cannot listen for ctrl-c: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reachable_addresses_need_a_token_or_insecure() {
        let open = config::ServerSettings::default();
        let token = config::ServerSettings {
            auth_token: Some("t".into()),
            ..open.clone()
        };
        for a in ["127.0.0.1:8000", "[::1]:8000", "[::ffff:127.0.0.1]:8000"] {
            let a: SocketAddr = a.parse().unwrap();
            assert!(check_exposure(a, &open, false).is_ok(), "{a}");
        }
        for a in ["0.0.0.0:8000", "[::]:8000", "10.1.2.3:8000"] {
            let a: SocketAddr = a.parse().unwrap();
            let err = check_exposure(a, &open, false).unwrap_err().to_string();
            assert!(
                err.contains("without an auth token") && err.contains("--insecure"),
                "{err}"
            );
            assert!(check_exposure(a, &token, false).is_ok());
            assert!(check_exposure(a, &open, true).is_ok());
        }
    }
}
