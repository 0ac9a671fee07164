//! What every stepwise HTTP server shares (the reward server here, the search gateway of
//! `stepwise-gateway`): hyper's HTTP/1 connection loop with a header read timeout and a
//! connection cap, the bearer-token check, the exposure check, and receiving a whole
//! body within size and time limits.

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, header};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Limits of the connection loop.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// Time a connection has to send a complete request head (also closes idle
    /// keep-alive connections).
    pub header_read_timeout: Duration,
    /// Open connections at once; one beyond is answered 503 and closed.
    pub max_connections: usize,
    /// How long shutdown waits for in-flight requests.
    pub grace: Duration,
}

/// What the connection loop reports (a server's metrics implement it).
pub trait ConnEvents: Send + Sync + 'static {
    /// A connection opened; it closes when the returned guard drops.
    fn opened(&self) -> Box<dyn Send + '_>;
    /// A connection over the cap was refused.
    fn refused(&self);
}

/// A bound, not yet serving listener and its server's shared state.
pub struct Bound<S> {
    listener: tokio::net::TcpListener,
    state: Arc<S>,
}

impl<S: ConnEvents> Bound<S> {
    /// Binds `addr` (port 0 picks a free one).
    pub async fn bind(addr: SocketAddr, state: Arc<S>) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        Ok(Self { listener, state })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// The shared state.
    pub fn state(&self) -> Arc<S> {
        Arc::clone(&self.state)
    }

    /// [`serve_connections`] of `app` on this listener, the state counting connections.
    pub async fn serve<F>(self, app: Router, limits: ConnLimits, shutdown: F) -> std::io::Result<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        serve_connections(self.listener, app, limits, self.state, shutdown).await
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting
/// connections and waits for in-flight requests (at most `limits.grace`).
///
/// Each connection is served by hyper's HTTP/1 connection with a header read timeout;
/// at most `max_connections` are open at once, and one beyond that is answered 503
/// with `Retry-After` and closed without reading its request.
pub async fn serve_connections<F, E>(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: ConnLimits,
    events: Arc<E>,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
    E: ConnEvents + ?Sized,
{
    use hyper_util::rt::{TokioIo, TokioTimer};
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // out of file descriptors and the like: back off, keep serving
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            events.refused();
            tracing::debug!(%peer, max_connections = limits.max_connections, "refusing a connection");
            tokio::spawn(refuse(stream));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        let events = Arc::clone(&events);
        tokio::spawn(async move {
            let _open = events.opened();
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "connection closed with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    tracing::info!("shutting down: finishing in-flight requests");
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("server stopped"),
        () = tokio::time::sleep(limits.grace) => tracing::warn!(
            grace_s = limits.grace.as_secs(),
            "in-flight requests did not finish within the grace period; stopping"
        ),
    }
    Ok(())
}

/// Answers a connection over `max_connections` with 503 and closes it, without
/// reading its request.
async fn refuse(mut stream: tokio::net::TcpStream) {
    use tokio::io::AsyncWriteExt;
    const BODY: &str = r#"{"error":{"code":"too_many_connections","message":"server is at max_connections; retry later"}}"#;
    let reply = format!(
        "HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(reply.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// Whether an address other machines can reach is served without a token: `Ok` for
/// loopback or with a token; otherwise an error unless `insecure`, which logs a loud
/// warning instead.
pub fn exposure_allowed(addr: SocketAddr, has_token: bool, insecure: bool) -> bool {
    if addr.ip().to_canonical().is_loopback() || has_token {
        return true;
    }
    if !insecure {
        return false;
    }
    tracing::warn!(
        %addr,
        "INSECURE: serving without an auth token on an address other machines can reach; anyone who can connect can use it and read /metrics"
    );
    true
}

/// Whether `headers` carry `Authorization: Bearer <token>` (compared in constant time).
pub fn authorized(headers: &HeaderMap, token: &str) -> bool {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
        .unwrap_or("");
    constant_time_eq(given.as_bytes(), token.as_bytes())
}

/// The token of an `Authorization: Bearer <token>` value; the scheme name is
/// case-insensitive (RFC 7235 §2.1) and may be followed by more than one space.
pub(crate) fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_matches(' '))
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Why a body was not received.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("request body exceeds the server's max_body_bytes ({max})")]
    TooLarge { max: usize },
    #[error("the request body did not arrive within the server's body_read_timeout_ms ({ms})")]
    Timeout { ms: u64 },
    #[error("reading the request body: {0}")]
    Read(String),
}

/// Receives a whole request body: a declared `Content-Length` over `max` fails before
/// reading, a body growing past `max` fails as soon as it does, and one not received
/// within `timeout` fails then.
pub async fn read_body_within(
    headers: &HeaderMap,
    body: axum::body::Body,
    max: usize,
    timeout: Duration,
) -> Result<Bytes, BodyError> {
    use futures::StreamExt;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(BodyError::TooLarge { max });
    }
    let receive = async {
        let mut buf = Vec::with_capacity(declared.map_or(0, |n| n as usize));
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| BodyError::Read(e.to_string()))?;
            if buf.len() + chunk.len() > max {
                return Err(BodyError::TooLarge { max });
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(buf))
    };
    match tokio::time::timeout(timeout, receive).await {
        Ok(r) => r,
        Err(_) => Err(BodyError::Timeout {
            ms: timeout.as_millis() as u64,
        }),
    }
}
