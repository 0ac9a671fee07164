//! The trace explorer: `stepwise view` serves a local web page over the run store.
//!
//! The server (axum) answers JSON routes built from the store's typed records
//! ([`api`]: runs, a run's problems, one problem with its samples, trees and labels, two
//! runs compared) and serves one page whose HTML, CSS and JavaScript are embedded in the
//! binary (`assets/`; no build chain, no third-party script). The front-end routes by the
//! URL fragment, so every view has a permalink (`#/run/3/p/arith:7`).
//!
//! Reading is safe by construction:
//! - the store is opened read-only by the caller ([`stepwise_store::SqliteStore::open_read_only`]),
//!   and the explorer has no route that writes;
//! - the front-end puts user and model text into the page only as text nodes
//!   (`textContent`, never `innerHTML`), and every page is served with a
//!   Content-Security-Policy that allows scripts from the server alone, so a model
//!   output holding `<script>` shows as text and could not run even if it were markup.
//!
//! JSON routes with a small embedded front-end, rather than server-rendered templates,
//! because folding and zooming trees, filtering lists and keyboard navigation are
//! client-side anyway, and the JSON types are a boundary that tests read directly.

pub mod api;
pub mod index;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::get;
use std::net::SocketAddr;
use std::sync::Arc;
use stepwise_eval::compute::Resampling;
use stepwise_store::RunStore;

pub use index::Index;

/// The page, its style and its script, embedded.
const INDEX_HTML: &str = include_str!("../assets/index.html");
const APP_JS: &str = include_str!("../assets/app.js");
const STYLE_CSS: &str = include_str!("../assets/style.css");

/// Problems in the drill-down of a run's HTML report.
const REPORT_PROBLEMS: usize = 60;

/// Why the explorer failed.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error(transparent)]
    Store(#[from] stepwise_store::StoreError),
    #[error("{0}")]
    NotFound(String),
    #[error("report of run {run}")]
    Report {
        run: i64,
        #[source]
        source: stepwise_eval::EvalError,
    },
    #[error("listening on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("serving on {addr}")]
    Serve {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

impl IntoResponse for ViewError {
    fn into_response(self) -> Response {
        let status = match &self {
            ViewError::NotFound(_)
            | ViewError::Store(stepwise_store::StoreError::NoSuchRun { .. }) => {
                StatusCode::NOT_FOUND
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let error = stepwise_core::error_chain(&self);
        (status, Json(api::ApiError { error })).into_response()
    }
}

type Shared = Arc<Index>;

/// Runs blocking store reads off the async runtime.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ViewError> + Send + 'static,
) -> Result<T, ViewError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ViewError::NotFound(format!("request worker stopped: {e}")))?
}

/// The explorer's routes over `index`.
pub fn router(index: Arc<Index>) -> Router {
    Router::new()
        .route("/", get(page))
        .route(
            "/app.js",
            get(|| async { asset(APP_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/style.css",
            get(|| async { asset(STYLE_CSS, "text/css; charset=utf-8") }),
        )
        .route("/api/runs", get(runs))
        .route("/api/run/{id}", get(run))
        .route("/api/run/{id}/problem/{pid}", get(problem))
        .route("/api/compare/{a}/{b}", get(compare))
        .route("/report/{id}", get(report))
        .with_state(index)
}

fn secured(mut r: Response, csp: &'static str) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(csp),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Scripts, styles and requests from this server only; no inline script.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

async fn page() -> Response {
    secured(Html(INDEX_HTML).into_response(), CSP)
}

fn asset(body: &'static str, mime: &'static str) -> Response {
    secured(([(header::CONTENT_TYPE, mime)], body).into_response(), CSP)
}

async fn runs(State(ix): State<Shared>) -> Result<Json<api::RunsPage>, ViewError> {
    blocking(move || {
        let runs = ix.refresh()?.iter().map(|r| r.summary.clone()).collect();
        Ok(Json(api::RunsPage {
            api: api::API_VERSION,
            store: ix.location(),
            runs,
        }))
    })
    .await
}

async fn run(
    State(ix): State<Shared>,
    Path(id): Path<i64>,
) -> Result<Json<api::RunPage>, ViewError> {
    blocking(move || {
        let r = ix.run(id)?;
        Ok(Json(api::RunPage {
            api: api::API_VERSION,
            run: r.summary.clone(),
            rows: r.rows.clone(),
        }))
    })
    .await
}

async fn problem(
    State(ix): State<Shared>,
    Path((id, pid)): Path<(i64, String)>,
) -> Result<Json<api::ProblemPage>, ViewError> {
    blocking(move || Ok(Json(ix.problem_page(id, &pid)?))).await
}

async fn compare(
    State(ix): State<Shared>,
    Path((a, b)): Path<(i64, i64)>,
) -> Result<Json<api::ComparePage>, ViewError> {
    blocking(move || Ok(Json(ix.compare(a, b)?))).await
}

/// The run's HTML report (eval's `stepwise report` page), made on request.
async fn report(State(ix): State<Shared>, Path(id): Path<i64>) -> Result<Response, ViewError> {
    blocking(move || {
        let r = ix.run(id)?;
        let loaded = r
            .loaded
            .as_ref()
            .ok_or_else(|| ViewError::NotFound(format!("run {id} has no report")))?;
        let rep = stepwise_eval::runreport::run_report(
            loaded,
            None,
            Resampling::default(),
            REPORT_PROBLEMS,
        )
        .map_err(|source| ViewError::Report { run: id, source })?;
        // the report's own inline style and plots
        Ok(secured(
            Html(rep.to_html()).into_response(),
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'",
        ))
    })
    .await
}

/// Serves the explorer over `store` on `listener` until `shutdown` resolves. Every run
/// is read before the first request is answered, so pages open at once.
pub async fn serve_on(
    store: Arc<dyn RunStore>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ViewError> {
    let addr = listener.local_addr().map_err(|source| ViewError::Bind {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        source,
    })?;
    let index = Arc::new(Index::new(store));
    let started = std::time::Instant::now();
    let ix = index.clone();
    let runs = blocking(move || ix.refresh()).await?;
    tracing::info!(
        runs = runs.len(),
        units = runs.iter().map(|r| r.summary.units).sum::<usize>(),
        ms = started.elapsed().as_millis() as u64,
        "read the run store"
    );
    axum::serve(listener, router(index))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|source| ViewError::Serve { addr, source })
}

/// Binds `addr` and serves the explorer until Ctrl-C; `ready` is told the bound address.
pub async fn serve(
    store: Arc<dyn RunStore>,
    addr: SocketAddr,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), ViewError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ViewError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| ViewError::Bind { addr, source })?;
    ready(bound);
    serve_on(store, listener, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
