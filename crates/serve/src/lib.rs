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
//! runtime; a request holds one of `max_concurrency` permits or gets 503 with
//! `Retry-After` (nothing queues without bound); every request answers by its
//! deadline (items cut off get `timeout_reward` and `timed_out = 1`); shutdown
//! stops accepting connections and finishes the requests in flight.

pub mod api;
mod app;
pub mod config;
pub mod metrics;
pub mod pool;
pub mod reward;

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
    #[error("binding {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("starting the verification pool: {0}")]
    Pool(rayon::ThreadPoolBuildError),
    #[error("serving: {0}")]
    Io(#[from] std::io::Error),
}

/// A bound, not yet running server.
pub struct Server {
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
}

impl Server {
    /// Binds `addr` (port 0 picks a free port) with a checked configuration.
    pub async fn bind(addr: SocketAddr, config: config::Config) -> Result<Self, ServeError> {
        let state = Arc::new(AppState::new(&config)?);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Bind { addr, source })?;
        Ok(Self { listener, state })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// The shared state (metrics).
    pub fn state(&self) -> Arc<AppState> {
        Arc::clone(&self.state)
    }

    /// Serves until `shutdown` resolves, then stops accepting connections and
    /// waits for in-flight requests (at most the request deadline plus 5 s).
    pub async fn run<F>(self, shutdown: F) -> Result<(), ServeError>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let grace = Duration::from_millis(self.state_deadline_ms()) + Duration::from_secs(5);
        let (tx, mut rx) = tokio::sync::watch::channel(false);
        let signal = async move {
            shutdown.await;
            tracing::info!("shutting down: finishing in-flight requests");
            let _ = tx.send(true);
        };
        let app = router(Arc::clone(&self.state));
        let serve = axum::serve(self.listener, app).with_graceful_shutdown(signal);
        let drain_limit = async move {
            while !*rx.borrow() {
                if rx.changed().await.is_err() {
                    // the sender is gone only after the signal fired or the server ended
                    break;
                }
            }
            tokio::time::sleep(grace).await;
        };
        tokio::select! {
            r = serve => {
                r?;
                tracing::info!("server stopped");
            }
            _ = drain_limit => {
                tracing::warn!(grace_s = grace.as_secs(), "in-flight requests did not finish within the grace period; stopping");
            }
        }
        Ok(())
    }

    fn state_deadline_ms(&self) -> u64 {
        self.state.deadline_ms()
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
