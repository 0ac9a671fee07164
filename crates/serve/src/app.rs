//! The HTTP layer: routes, middleware, handlers.

use crate::ServeError;
use crate::api::step_limits::{self, StepLimits};
use crate::api::*;
use crate::config::{Config, PromptMismatch, ServerSettings};
use crate::metrics::Metrics;
use crate::pool::{Outcome, Pool};
use crate::reward::{Gold, Rewards, Scored};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use stepwise_core::AnswerExtractor;
use stepwise_verify::{Options, Verdict};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use utoipa::OpenApi;

/// Shared state of one server.
pub struct AppState {
    rewards: Rewards,
    /// The models of model-backed components and scorers, when the server was given any.
    models: Option<stepwise_score::ScorerComponents>,
    settings: ServerSettings,
    pool: Pool,
    permits: Arc<Semaphore>,
    /// Slots of requests with model work (`max_model_requests`).
    model_permits: Arc<Semaphore>,
    next_request_id: std::sync::atomic::AtomicU64,
    /// `[server] tokenizer`, loaded: `/v1/step_rewards`' `token_end`.
    tokenizer: Option<Arc<crate::spans::StepTokenizer>>,
    /// The counters behind `/metrics`.
    pub metrics: Metrics,
}

impl AppState {
    /// Builds the state for a checked configuration without models: a model-backed
    /// component is an error naming it.
    pub fn new(config: &Config) -> Result<Self, ServeError> {
        Self::with_models(config, None)
    }

    /// Builds the state with the models that model-backed components (`kind = "scorer"`)
    /// and the model scorers of `/v1/step_rewards` use.
    pub fn with_models(
        config: &Config,
        models: Option<stepwise_score::ScorerComponents>,
    ) -> Result<Self, ServeError> {
        config.check()?;
        let rewards = match &models {
            Some(m) => Rewards::with_models(&config.reward_config(), m)?,
            None => Rewards::new(&config.reward_config())?,
        };
        Ok(Self {
            rewards,
            models,
            pool: Pool::new(config.server.workers).map_err(ServeError::Pool)?,
            permits: Arc::new(Semaphore::new(config.server.max_concurrency)),
            model_permits: Arc::new(Semaphore::new(config.server.max_model_requests)),
            settings: config.server.clone(),
            next_request_id: std::sync::atomic::AtomicU64::new(1),
            tokenizer: match &config.server.tokenizer {
                Some(path) => Some(Arc::new(crate::spans::StepTokenizer::from_file(path)?)),
                None => None,
            },
            metrics: Metrics::default(),
        })
    }

    /// The per-request deadline in milliseconds.
    pub fn deadline_ms(&self) -> u64 {
        self.settings.deadline_ms
    }

    /// The server settings it was built with.
    pub fn settings(&self) -> &ServerSettings {
        &self.settings
    }

    /// The batching statistics of the model backends that keep them (`policy`, and
    /// `judge` when it has its own backend).
    pub fn batch_stats(&self) -> Vec<(&'static str, stepwise_model::BatchStats)> {
        let Some(m) = &self.models else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if let Some(b) = m.policy.as_ref().and_then(|p| p.batch_stats()) {
            out.push(("policy", b));
        }
        if let Some(b) = m.judge.as_ref().and_then(|j| j.batch_stats()) {
            out.push(("judge", b));
        }
        out
    }

    /// A model slot for a request with model work, or 503 past `max_model_requests` (the
    /// same answer as past `max_concurrency`); `None` when it has none.
    fn model_slot(&self, needed: bool) -> Result<Option<ModelSlot<'_>>, ApiError> {
        if !needed {
            return Ok(None);
        }
        match take_slot(
            &self.model_permits,
            "max_model_requests",
            self.settings.max_model_requests,
        ) {
            Ok(permit) => Ok(Some(ModelSlot {
                _permit: permit,
                _gauge: self.metrics.model_work(),
            })),
            Err(e) => {
                self.metrics.model_refused();
                Err(e)
            }
        }
    }
}

/// A request's hold on a model slot (released, and the gauge lowered, on drop).
struct ModelSlot<'a> {
    _permit: tokio::sync::OwnedSemaphorePermit,
    _gauge: crate::metrics::Gauge<'a>,
}

/// One of `sem`'s permits, or the server's 503 + Retry-After naming the setting (`what`,
/// at `max`): the one backpressure answer of the server, never a queue.
fn take_slot(
    sem: &Arc<Semaphore>,
    what: &str,
    max: usize,
) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
    Arc::clone(sem).try_acquire_owned().map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            format!("server is at {what} ({max}); retry later"),
        )
    })
}

impl crate::conn::ConnEvents for AppState {
    fn opened(&self) -> Box<dyn Send + '_> {
        Box::new(self.metrics.connection())
    }
    fn refused(&self) {
        self.metrics.connection_refused();
    }
}

/// The router with every route and middleware.
pub fn router(state: Arc<AppState>) -> Router {
    let work = Router::new()
        .route("/get_reward", post(get_reward))
        .route("/v1/rewards", post(rewards))
        .route("/v1/verify", post(verify))
        .route("/v1/step_rewards", post(step_rewards))
        .route("/v1/group_rewards", post(group_rewards))
        .layer(DefaultBodyLimit::max(state.settings.max_body_bytes))
        .layer(middleware::from_fn_with_state(state.clone(), admit));
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .merge(work)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), auth))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

// ---------------------------------------------------------------- errors

/// An error answered as JSON `{"error": {"code", "message"}}`.
pub type ApiError = crate::error::ApiError<crate::error::StepwiseShape>;

impl ApiError {
    fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", message)
    }
}

/// A JSON body: 400 for malformed JSON, 422 for missing or mistyped fields,
/// 413 over the size limit, 415 for a non-JSON content type; each with a message.
pub struct ApiJson<T>(pub T);

/// Bodies at least this large are parsed on the blocking pool.
const PARSE_OFF_RUNTIME: usize = 1 << 20;

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send + 'static,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
            let ok = ct
                .to_str()
                .map(|s| {
                    let s = s.to_ascii_lowercase();
                    s.starts_with("application/json") || s.contains("+json")
                })
                .unwrap_or(false);
            if !ok {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "expected Content-Type: application/json",
                ));
            }
        }
        let limits = req.extensions().get::<StepLimits>().copied();
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "request body exceeds the server's max_body_bytes",
                )
            } else {
                ApiError::new(e.status(), "bad_body", e.body_text())
            }
        })?;
        let bytes_len = bytes.len();
        let parse = move || match limits {
            Some(l) => step_limits::parse_within(l, || serde_json::from_slice::<T>(&bytes)),
            None => (serde_json::from_slice::<T>(&bytes), None),
        };
        let (parsed, exceeded) = if bytes_len >= PARSE_OFF_RUNTIME {
            tokio::task::spawn_blocking(parse).await.map_err(|e| {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            })?
        } else {
            parse()
        };
        if let Some(message) = exceeded {
            return Err(too_many_steps(message));
        }
        parsed.map(ApiJson).map_err(|e| {
            use serde_json::error::Category;
            match e.classify() {
                Category::Data => ApiError::invalid(format!("invalid request body: {e}")),
                _ => ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_json",
                    format!("malformed JSON: {e}"),
                ),
            }
        })
    }
}

// ---------------------------------------------------------------- middleware

/// When the request arrived plus the deadline.
#[derive(Clone, Copy)]
struct Deadline(Instant);

/// How many items (queries, pairs) a scoring response carried, for the request log.
#[derive(Debug, Clone, Copy)]
struct Items(u64);

/// A JSON reply that also tells the request log how many items it scored.
pub struct Counted<T>(u64, T);

impl<T: serde::Serialize> IntoResponse for Counted<T> {
    fn into_response(self) -> Response {
        let mut resp = Json(self.1).into_response();
        resp.extensions_mut().insert(Items(self.0));
        resp
    }
}

/// The request id: the client's `x-request-id` when it is short printable ASCII,
/// else one made here (a per-server sequence number).
fn request_id(st: &AppState, req: &Request) -> String {
    req.headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(
            || {
                format!(
                    "{:x}",
                    st.next_request_id
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                )
            },
            String::from,
        )
}

const REQUEST_ID: &str = "x-request-id";

/// Latency, request counts and one structured log event per request: `method`,
/// `path`, `route`, `status`, `latency_ms`, `items` (scoring routes) and
/// `request_id` as fields, plus `error_code` and `error` on error answers. Events
/// logged while handling the request sit in a `request` span with the same id,
/// which is echoed in the `x-request-id` response header.
async fn observe(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    use tracing::Instrument;
    let start = std::time::Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_string();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let id = request_id(&st, &req);
    let span = tracing::info_span!("request", request_id = %id);
    let mut resp = next.run(req).instrument(span).await;
    let latency_ms = start.elapsed().as_secs_f64() * 1e3;
    let status = resp.status().as_u16();
    st.metrics.observe_request(&route, status, latency_ms / 1e3);
    let items = resp.extensions().get::<Items>().map(|i| i.0);
    let error = resp.extensions_mut().remove::<crate::error::ErrorFields>();
    let (error_code, error_message) = match &error {
        Some(e) => (Some(e.code), Some(e.message.as_str())),
        None => (None, None),
    };
    macro_rules! request_event {
        ($level:expr) => {
            tracing::event!(
                $level,
                request_id = %id,
                method = %method,
                path = %path,
                route = %route,
                status,
                latency_ms,
                items,
                error_code,
                error = error_message,
                "request"
            )
        };
    }
    if resp.status().is_server_error() {
        request_event!(tracing::Level::WARN);
    } else {
        request_event!(tracing::Level::INFO);
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID, v);
    }
    resp
}

/// Bearer-token check (constant time) on everything but `/health` and `/openapi.json`.
async fn auth(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let token = st.settings.auth_token.as_deref();
    crate::error::require_token::<crate::error::StepwiseShape>(
        token,
        &["/health", "/openapi.json"],
        req,
        next,
    )
    .await
}

/// Admission control for scoring routes. The whole body is received first (a
/// `Content-Length` over `max_body_bytes` gets 413 before reading, a body not received
/// within `body_read_timeout_ms` gets 408), so a slow sender holds no scoring slot;
/// then a permit or 503 + Retry-After, never a queue. The deadline starts with the permit.
async fn admit(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = match read_body(&st, &parts.headers, body).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let permit = match take_slot(&st.permits, "max_concurrency", st.settings.max_concurrency) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let _in_flight = st.metrics.enter();
    let mut req = Request::from_parts(parts, axum::body::Body::from(bytes));
    req.extensions_mut().insert(StepLimits {
        per_item: st.settings.max_steps_per_item,
        per_request: st.settings.max_steps_per_request,
    });
    req.extensions_mut().insert(Deadline(
        Instant::now() + Duration::from_millis(st.settings.deadline_ms),
    ));
    let resp = next.run(req).await;
    drop(permit);
    resp
}

fn too_large(max: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("request body exceeds the server's max_body_bytes ({max})"),
    )
}

/// Receives a scoring request's whole body within the server's size and time limits.
async fn read_body(
    st: &AppState,
    headers: &axum::http::HeaderMap,
    body: axum::body::Body,
) -> Result<Bytes, ApiError> {
    use crate::conn::{BodyError, read_body_within};
    let timeout = Duration::from_millis(st.settings.body_read_timeout_ms);
    let _reading = st.metrics.reading_body();
    match read_body_within(headers, body, st.settings.max_body_bytes, timeout).await {
        Ok(b) => Ok(b),
        Err(BodyError::TooLarge { max }) => Err(too_large(max)),
        Err(e @ BodyError::Read(_)) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_body",
            e.to_string(),
        )),
        Err(e @ BodyError::Timeout { .. }) => {
            st.metrics.body_timeout();
            Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                e.to_string(),
            ))
        }
    }
}

// ---------------------------------------------------------------- handlers

struct Job {
    source: Option<String>,
    prompt: String,
    response: String,
    gold: Gold,
    /// Top-k log-probabilities per token (`/v1/rewards` items may carry them).
    logprobs: Option<Vec<Vec<f64>>>,
}

/// Awaits `work` (a [`Pool`] map of `n` items) and counts the items, the ones cut off and
/// the ones that panicked in the metrics and the log (`what` names the work). Each caller
/// decides what a cut-off item answers.
async fn on_pool<R>(
    st: &AppState,
    what: &'static str,
    n: u64,
    work: impl std::future::Future<Output = Vec<Outcome<R>>>,
) -> Vec<Outcome<R>> {
    let outcomes = work.await;
    let count = |p: fn(&Outcome<R>) -> bool| outcomes.iter().filter(|o| p(o)).count() as u64;
    let timed_out = count(|o| matches!(o, Outcome::TimedOut));
    let panicked = count(|o| matches!(o, Outcome::Panicked));
    for _ in 0..panicked {
        st.metrics.item_panic();
    }
    st.metrics.items(n, timed_out);
    if panicked > 0 {
        tracing::error!(
            work = what,
            panicked,
            items = n,
            "items panicked while being scored; they were answered as cut off"
        );
    }
    if timed_out > 0 {
        tracing::warn!(
            work = what,
            timed_out,
            items = n,
            "deadline passed before every item was scored"
        );
    }
    outcomes
}

/// Scores jobs on the pool; cut-off items get the timeout reward. With model-backed
/// components every item's future is polled on the pool (its rule components run there)
/// and all of them await their model calls at once, so the backend batches them; the
/// request holds a model slot meanwhile (503 when none is free).
async fn score_all(
    st: &Arc<AppState>,
    jobs: Vec<Job>,
    deadline: Instant,
) -> Result<Vec<Scored>, ApiError> {
    let n = jobs.len() as u64;
    let with_models = jobs
        .iter()
        .any(|j| st.rewards.function(j.source.as_deref()).has_models());
    let _slot = st.model_slot(with_models)?;
    let outcomes = if with_models {
        let st2 = Arc::clone(st);
        let score = move |j: Job| {
            let st = Arc::clone(&st2);
            async move {
                let extras = stepwise_reward::ItemExtras {
                    logprobs: j.logprobs.as_deref(),
                };
                st.rewards
                    .score_gold_async(
                        j.source.as_deref(),
                        &j.prompt,
                        &j.response,
                        &j.gold,
                        &extras,
                    )
                    .await
            }
        };
        on_pool(st, "reward", n, st.pool.map_async(jobs, score, deadline)).await
    } else {
        let st2 = Arc::clone(st);
        let score = move |j: &Job| {
            let extras = stepwise_reward::ItemExtras {
                logprobs: j.logprobs.as_deref(),
            };
            st2.rewards.score_gold_with(
                j.source.as_deref(),
                &j.prompt,
                &j.response,
                &j.gold,
                &extras,
            )
        };
        on_pool(st, "reward", n, st.pool.map(jobs, score, deadline)).await
    };
    Ok(outcomes
        .into_iter()
        .map(|o| match o {
            Outcome::Done(s) => {
                if let Some(v) = s.verdict {
                    st.metrics.verdict(v);
                }
                s
            }
            Outcome::TimedOut => fallback(st),
            Outcome::Panicked => {
                st.metrics.verdict(Verdict::Undecided);
                Scored {
                    verdict: Some(Verdict::Undecided),
                    ..fallback(st)
                }
            }
        })
        .collect())
}

fn fallback(st: &AppState) -> Scored {
    Scored {
        result: RewardResult {
            reward: st.settings.timeout_reward,
            components: BTreeMap::new(),
            answer: None,
            timed_out: true,
            flags: BTreeMap::new(),
            logs: BTreeMap::new(),
        },
        verdict: None,
        no_answer: false,
        no_gold: false,
    }
}

/// 422 unless every log-probability of `items[i]` is a number at most 0.
fn check_logprobs(i: usize, logprobs: Option<&[Vec<f64>]>) -> Result<(), ApiError> {
    for (t, top) in logprobs.unwrap_or_default().iter().enumerate() {
        for (j, lp) in top.iter().enumerate() {
            if !lp.is_finite() || *lp > 1e-9 {
                return Err(ApiError::invalid(format!(
                    "items[{i}].logprobs[{t}][{j}] is {lp}; a log-probability is at most 0"
                )));
            }
        }
    }
    Ok(())
}

fn check_count(n: usize, max: usize, what: &str) -> Result<(), ApiError> {
    if n > max {
        return Err(ApiError::invalid(format!(
            "{n} {what} in one request; the server's max_items is {max}"
        )));
    }
    Ok(())
}

/// 413 when an item's steps or the request's exceed `max_steps_per_item` or
/// `max_steps_per_request`.
fn check_steps(counts: &[Outcome<usize>], settings: &ServerSettings) -> Result<(), ApiError> {
    let mut total = 0usize;
    for (i, c) in counts.iter().enumerate() {
        let Outcome::Done(c) = c else { continue };
        if *c > settings.max_steps_per_item {
            return Err(too_many_steps(format!(
                "items[{i}] has {c} steps; the server's max_steps_per_item is {}",
                settings.max_steps_per_item
            )));
        }
        total += c;
    }
    if total > settings.max_steps_per_request {
        return Err(too_many_steps(format!(
            "{total} steps in one request; the server's max_steps_per_request is {}",
            settings.max_steps_per_request
        )));
    }
    Ok(())
}

fn too_many_steps(message: String) -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_many_steps", message)
}

/// Splits an OpenRLHF query into its response; `None` on a prompt mismatch.
fn strip_prompt<'a>(query: &'a str, prompt: &str) -> Option<&'a str> {
    query.strip_prefix(prompt)
}

/// The error answers every scoring endpoint can give, for its OpenAPI entry
/// (each endpoint documents its own 422).
#[allow(dead_code)] // never built: only its derived OpenAPI responses are used
#[derive(utoipa::IntoResponses)]
enum ScoringErrors {
    #[response(status = 400, description = "Malformed JSON")]
    BadJson(ErrorResponse),
    #[response(status = 401, description = "Missing or wrong bearer token")]
    Unauthorized(ErrorResponse),
    #[response(
        status = 408,
        description = "Body not received within body_read_timeout_ms"
    )]
    BodyTimeout(ErrorResponse),
    #[response(
        status = 413,
        description = "Body over max_body_bytes (or, on /v1/step_rewards, steps over max_steps_per_item or max_steps_per_request)"
    )]
    TooLarge(ErrorResponse),
    #[response(status = 415, description = "Not JSON")]
    NotJson(ErrorResponse),
    #[response(status = 503, description = "At max_concurrency; see Retry-After")]
    Overloaded(ErrorResponse),
}

/// OpenRLHF's remote reward model protocol.
#[utoipa::path(
    post,
    path = "/get_reward",
    request_body = GetRewardRequest,
    responses(
        (status = 200, description = "Rewards in query order", body = GetRewardResponse),
        (status = 422, description = "Missing fields, mismatched list lengths, too many items, or (prompt_mismatch = reject) a query not starting with its prompt", body = ErrorResponse),
        ScoringErrors,
    ),
    security((), ("bearer" = []))
)]
async fn get_reward(
    State(st): State<Arc<AppState>>,
    axum::Extension(Deadline(deadline)): axum::Extension<Deadline>,
    ApiJson(req): ApiJson<GetRewardRequest>,
) -> Result<Counted<GetRewardResponse>, ApiError> {
    let n = req.query.len();
    if req.prompts.len() != n || req.labels.len() != n {
        return Err(ApiError::invalid(format!(
            "query, prompts and labels must have the same length (got {}, {}, {})",
            n,
            req.prompts.len(),
            req.labels.len()
        )));
    }
    check_count(n, st.settings.max_items, "queries")?;
    let mut mismatch = vec![0.0; n];
    let mut jobs = Vec::with_capacity(n);
    for (i, ((q, p), l)) in req
        .query
        .into_iter()
        .zip(req.prompts)
        .zip(req.labels)
        .enumerate()
    {
        let response = match strip_prompt(&q, &p) {
            Some(r) => r.to_string(),
            None => {
                if st.settings.prompt_mismatch == PromptMismatch::Reject {
                    return Err(ApiError::invalid(format!(
                        "query[{i}] does not start with prompts[{i}] (server prompt_mismatch = reject)"
                    )));
                }
                mismatch[i] = 1.0;
                match q.rfind(p.as_str()).filter(|_| !p.is_empty()) {
                    Some(pos) => q[pos + p.len()..].to_string(),
                    None => q.clone(),
                }
            }
        };
        jobs.push(Job {
            source: None,
            prompt: p,
            response,
            gold: l,
            logprobs: None,
        });
    }
    let mismatches = mismatch.iter().filter(|m| **m > 0.0).count();
    if mismatches > 0 {
        st.metrics.prompt_mismatch(mismatches as u64);
        tracing::warn!(
            mismatches,
            queries = n,
            "queries that do not start with their prompt were scored after the prompt's last occurrence, or whole"
        );
    }
    let scored = score_all(&st, jobs, deadline).await?;
    let names = st.rewards.default_fn().component_names();
    let mut logs: ExtraLogs = BTreeMap::new();
    for name in names {
        logs.insert(
            name.to_string(),
            scored
                .iter()
                .map(|s| s.result.components.get(name).copied().unwrap_or(0.0))
                .collect(),
        );
    }
    let flag = |f: &dyn Fn(&Scored) -> bool| -> Vec<f64> {
        scored
            .iter()
            .map(|s| if f(s) { 1.0 } else { 0.0 })
            .collect()
    };
    logs.insert("timed_out".into(), flag(&|s| s.result.timed_out));
    logs.insert("no_answer".into(), flag(&|s| s.no_answer));
    logs.insert("no_gold".into(), flag(&|s| s.no_gold));
    logs.insert(
        "undecided".into(),
        flag(&|s| s.verdict == Some(Verdict::Undecided)),
    );
    logs.insert("prompt_mismatch".into(), mismatch);
    for f in st.rewards.flag_keys() {
        logs.insert(
            (*f).to_string(),
            flag(&|s| s.result.flags.get(*f).copied().unwrap_or(false)),
        );
    }
    // Component diagnostics (the code component's per-case results): a key an item
    // lacks is 0 for it.
    let detail: std::collections::BTreeSet<&String> =
        scored.iter().flat_map(|s| s.result.logs.keys()).collect();
    for key in detail {
        let column = scored
            .iter()
            .map(|s| s.result.logs.get(key).copied().unwrap_or(0.0))
            .collect();
        logs.entry(key.clone()).or_insert(column);
    }
    let rewards: Vec<f64> = scored.iter().map(|s| s.result.reward).collect();
    Ok(Counted(
        n as u64,
        GetRewardResponse {
            scores: rewards.clone(),
            rewards,
            extra_logs: logs,
        },
    ))
}

/// Batch rewards with their components.
#[utoipa::path(
    post,
    path = "/v1/rewards",
    request_body = RewardsRequest,
    responses(
        (status = 200, description = "One result per item, in order", body = RewardsResponse),
        (status = 422, description = "Missing fields or too many items", body = ErrorResponse),
        ScoringErrors,
    ),
    security((), ("bearer" = []))
)]
async fn rewards(
    State(st): State<Arc<AppState>>,
    axum::Extension(Deadline(deadline)): axum::Extension<Deadline>,
    ApiJson(req): ApiJson<RewardsRequest>,
) -> Result<Counted<RewardsResponse>, ApiError> {
    let n = req.items.len() as u64;
    check_count(req.items.len(), st.settings.max_items, "items")?;
    for (i, it) in req.items.iter().enumerate() {
        check_logprobs(i, it.logprobs.as_deref())?;
    }
    let jobs = req
        .items
        .into_iter()
        .map(|it| Job {
            source: it.data_source,
            prompt: it.prompt,
            response: it.response,
            gold: Gold::Text(it.gold),
            logprobs: it.logprobs,
        })
        .collect();
    let scored = score_all(&st, jobs, deadline).await?;
    Ok(Counted(
        n,
        RewardsResponse {
            results: scored.into_iter().map(|s| s.result).collect(),
        },
    ))
}

/// Group rewards: each group's responses scored together (EMPO, Trust-GRPO,
/// difficulty-aware scaling, on top of the item reward).
#[utoipa::path(
    post,
    path = "/v1/group_rewards",
    request_body = GroupRewardsRequest,
    responses(
        (status = 200, description = "One result per group, in order; one reward per response", body = GroupRewardsResponse),
        (status = 422, description = "Missing fields or too many responses", body = ErrorResponse),
        ScoringErrors,
    ),
    security((), ("bearer" = []))
)]
async fn group_rewards(
    State(st): State<Arc<AppState>>,
    axum::Extension(Deadline(deadline)): axum::Extension<Deadline>,
    ApiJson(req): ApiJson<GroupRewardsRequest>,
) -> Result<Counted<GroupRewardsResponse>, ApiError> {
    let groups = req.into_groups();
    let sizes: Vec<usize> = groups.iter().map(|g| g.responses.len()).collect();
    let n: usize = sizes.iter().sum();
    check_count(n, st.settings.max_items, "responses")?;
    let with_models = groups
        .iter()
        .any(|g| st.rewards.function(g.data_source.as_deref()).has_models());
    let _slot = st.model_slot(with_models)?;
    let st2 = Arc::clone(&st);
    let outcomes = if with_models {
        let score = move |g: stepwise_reward::group::Group| {
            let st = Arc::clone(&st2);
            async move { st.rewards.score_group_async(&g).await }
        };
        let work = st.pool.map_async(groups, score, deadline);
        on_pool(&st, "group_reward", sizes.len() as u64, work).await
    } else {
        let work = st
            .pool
            .map(groups, move |g| st2.rewards.score_group(g), deadline);
        on_pool(&st, "group_reward", sizes.len() as u64, work).await
    };
    let results = outcomes
        .into_iter()
        .zip(sizes)
        .map(|(o, size)| match o {
            Outcome::Done(r) => r,
            Outcome::TimedOut | Outcome::Panicked => GroupResult {
                rewards: vec![st.settings.timeout_reward; size],
                components: BTreeMap::from([("timed_out".to_string(), vec![1.0; size])]),
                clusters: None,
                semantic_entropy: None,
                trust_weight: None,
            },
        })
        .collect();
    Ok(Counted(n as u64, GroupRewardsResponse { groups: results }))
}

/// Answer equivalence for (gold, pred) pairs.
#[utoipa::path(
    post,
    path = "/v1/verify",
    request_body = VerifyRequest,
    responses(
        (status = 200, description = "One verdict per pair, in order", body = VerifyResponse),
        (status = 422, description = "Missing fields or too many pairs", body = ErrorResponse),
        ScoringErrors,
    ),
    security((), ("bearer" = []))
)]
async fn verify(
    State(st): State<Arc<AppState>>,
    axum::Extension(Deadline(deadline)): axum::Extension<Deadline>,
    ApiJson(req): ApiJson<VerifyRequest>,
) -> Result<Counted<VerifyResponse>, ApiError> {
    let n = req.pairs.len() as u64;
    check_count(req.pairs.len(), st.settings.max_items, "pairs")?;
    let extract = req.extract;
    let limits = *st.rewards.limits();
    let check = move |p: &VerifyPair| {
        let pred = if extract {
            AnswerExtractor::default().extract(&p.pred).map(|e| e.text)
        } else {
            Some(p.pred.clone())
        };
        let verdict = match &pred {
            Some(a) => crate::reward::check(&p.gold, a, &Options::default(), &limits),
            None => Verdict::NotEqual,
        };
        (verdict, pred)
    };
    let work = st.pool.map(req.pairs, check, deadline);
    let results = on_pool(&st, "verify", n, work)
        .await
        .into_iter()
        .map(|o| {
            let (verdict, pred, timed_out) = match o {
                Outcome::Done((v, pred)) => (v, pred, false),
                Outcome::TimedOut | Outcome::Panicked => (Verdict::Undecided, None, true),
            };
            st.metrics.verdict(verdict);
            VerifyResult {
                verdict: verdict.into(),
                pred_answer: if extract { pred } else { None },
                timed_out,
            }
        })
        .collect();
    Ok(Counted(n, VerifyResponse { results }))
}

/// Per-step scores from a model-free step scorer, for process-reward RL.
#[utoipa::path(
    post,
    path = "/v1/step_rewards",
    request_body = StepRewardsRequest,
    responses(
        (status = 200, description = "Step scores per item, in order", body = StepRewardsResponse),
        (status = 413, description = "An item over max_steps_per_item steps, or a request over max_steps_per_request (or a body over max_body_bytes)", body = ErrorResponse),
        (status = 422, description = "Missing fields, unknown scorer/aggregation/delimiter, an item with neither response nor steps, `outcome` without gold, or too many items", body = ErrorResponse),
        ScoringErrors,
    ),
    security((), ("bearer" = []))
)]
async fn step_rewards(
    State(st): State<Arc<AppState>>,
    axum::Extension(Deadline(deadline)): axum::Extension<Deadline>,
    ApiJson(req): ApiJson<StepRewardsRequest>,
) -> Result<Counted<StepRewardsResponse>, ApiError> {
    use crate::reward::{parse_delimiter, request_scorer, score_steps};
    let n = req.items.len() as u64;
    check_count(req.items.len(), st.settings.max_items, "items")?;
    let (spec, scorer) =
        request_scorer(req.scorer.as_deref().unwrap_or("arith"), st.models.as_ref())
            .map_err(ApiError::invalid)?;
    let agg_name = req.aggregation.unwrap_or_else(|| "min".into());
    let aggregation: stepwise_core::Aggregation = agg_name.parse().map_err(ApiError::invalid)?;
    let splitter = parse_delimiter(req.delimiter.as_deref().unwrap_or("blank-line"))
        .map_err(ApiError::invalid)?;
    for (i, it) in req.items.iter().enumerate() {
        if it.response.is_none() && it.steps.is_none() {
            return Err(ApiError::invalid(format!(
                "items[{i}] has neither response nor steps"
            )));
        }
        if spec.needs_gold() && it.gold.is_none() {
            return Err(ApiError::invalid(format!(
                "items[{i}] has no gold answer, which the outcome scorer needs"
            )));
        }
    }
    let empty = |timed_out: bool, error: Option<String>| StepRewardResult {
        steps: vec![],
        aggregate: None,
        answer: None,
        timed_out,
        error,
    };
    let scorer_name = scorer.name();
    let items: Vec<Arc<StepRewardItem>> = req.items.into_iter().map(Arc::new).collect();
    // Steps are counted (on the pool: splitting is linear in the text) and capped before
    // any is scored, so neither the work nor the response grows past the caps.
    let count = {
        let splitter = splitter.clone();
        move |it: &Arc<StepRewardItem>| match &it.steps {
            Some(steps) => steps.len(),
            None => splitter.count(it.response.as_deref().unwrap_or("")),
        }
    };
    let counts = st.pool.map(items.clone(), count, deadline).await;
    if counts.iter().any(|c| !matches!(c, Outcome::Done(_))) {
        st.metrics.items(n, n);
        tracing::warn!(
            work = "step_rewards",
            items = n,
            "deadline passed while counting steps; no item was scored"
        );
        return Ok(Counted(
            n,
            StepRewardsResponse {
                scorer: scorer_name,
                aggregation: aggregation.name().to_string(),
                results: (0..n).map(|_| empty(true, None)).collect(),
            },
        ));
    }
    check_steps(&counts, &st.settings)?;
    let _slot = st.model_slot(spec.needs_model() || spec.calls_server())?;
    // Each item's scorer future is awaited on the verification pool (polled there, so its
    // CPU work stays off the runtime, and holding no pool thread while it waits).
    let tokenizer = st.tokenizer.clone();
    let score = move |it: Arc<StepRewardItem>| {
        let scorer = Arc::clone(&scorer);
        let splitter = splitter.clone();
        let tokenizer = tokenizer.clone();
        async move {
            let scored = score_steps(
                scorer.as_ref(),
                &it.prompt,
                it.response.as_deref().unwrap_or(""),
                it.steps.as_deref(),
                it.gold.as_deref(),
                &splitter,
            )
            .await?;
            // where each step lies in the text (and the token it ends at), for trainers
            // that place step rewards on tokens
            let spans = crate::spans::item_spans(
                it.response.as_deref().unwrap_or(""),
                it.steps.as_deref(),
                &splitter,
                tokenizer.as_deref(),
            )?;
            Ok::<_, String>((scored, spans))
        }
    };
    let work = st.pool.map_async(items, score, deadline);
    let results = on_pool(&st, "step_rewards", n, work)
        .await
        .into_iter()
        .map(|o| match o {
            Outcome::Done(Ok((s, (spans, token_ends)))) => StepRewardResult {
                aggregate: aggregation.apply(&s.scores),
                steps: s
                    .scores
                    .iter()
                    .zip(s.details)
                    .enumerate()
                    .map(|(index, (score, detail))| {
                        let span = spans.get(index);
                        StepScoreOut {
                            index,
                            score: *score,
                            detail,
                            char_start: span.map(|s| s.char_start),
                            char_end: span.map(|s| s.char_end),
                            byte_start: span.map(|s| s.byte_start),
                            byte_end: span.map(|s| s.byte_end),
                            token_end: token_ends.as_ref().and_then(|t| t.get(index).copied()),
                        }
                    })
                    .collect(),
                answer: s.answer,
                timed_out: false,
                error: None,
            },
            Outcome::Done(Err(e)) => empty(false, Some(e)),
            Outcome::TimedOut => empty(true, None),
            Outcome::Panicked => empty(false, Some("internal error while scoring".into())),
        })
        .collect();
    Ok(Counted(
        n,
        StepRewardsResponse {
            scorer: scorer_name,
            aggregation: aggregation.name().to_string(),
            results,
        },
    ))
}

/// Liveness and load.
#[utoipa::path(get, path = "/health", responses((status = 200, body = HealthResponse)))]
async fn health(State(st): State<Arc<AppState>>) -> Json<HealthResponse> {
    Json(HealthResponse {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        reward: st.rewards.label().to_string(),
        in_flight: st.metrics.in_flight(),
        max_concurrency: st.settings.max_concurrency as u64,
    })
}

/// Prometheus metrics (text format 0.0.4).
#[utoipa::path(
    get,
    path = "/metrics",
    responses(
        (status = 200, description = "Prometheus text exposition", body = String, content_type = "text/plain"),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorResponse),
    ),
    security((), ("bearer" = []))
)]
async fn metrics(State(st): State<Arc<AppState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        {
            let mut text = st.metrics.render();
            text.push_str(
                &st.metrics
                    .render_models(st.settings.max_model_requests, &st.batch_stats()),
            );
            text
        },
    )
        .into_response()
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", responses((status = 200, description = "OpenAPI 3.1 document", content_type = "application/json")))]
async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint; see /openapi.json",
    )
}

struct BearerScheme;

impl utoipa::Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The OpenAPI document of this server.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "stepwise reward server",
        description = "Verified-answer rewards for RL trainers (OpenRLHF, verl, TRL). Scoring endpoints require `Authorization: Bearer <token>` when the server was started with an auth token."
    ),
    paths(get_reward, rewards, group_rewards, verify, step_rewards, health, metrics, openapi),
    components(schemas(
        GetRewardRequest, GetRewardResponse, RewardsRequest, RewardItem, RewardsResponse,
        RewardResult, VerifyRequest, VerifyPair, VerifyResponse, VerifyResult, VerdictName,
        StepRewardsRequest, StepRewardItem, StepRewardsResponse, StepRewardResult, StepScoreOut,
        GroupRewardsRequest, GroupRewardsResponse, Group, GroupResult,
        HealthResponse, ErrorResponse, ErrorBody
    )),
    modifiers(&BearerScheme)
)]
pub struct ApiDoc;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::{bearer_token, constant_time_eq};

    /// Sends one request through the router (no socket).
    async fn call(app: &Router, req: Request) -> (StatusCode, axum::http::HeaderMap, String) {
        use hyper::service::Service;
        let svc = hyper_util::service::TowerToHyperService::new(app.clone());
        let Ok(resp) = svc.call(req).await;
        let (parts, body) = resp.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        (
            parts.status,
            parts.headers,
            String::from_utf8_lossy(&bytes).into_owned(),
        )
    }

    fn verify_request() -> Request {
        Request::post("/v1/verify")
            .header(header::CONTENT_TYPE, "application/json")
            .body(axum::body::Body::from(
                r#"{"pairs": [{"gold": "1", "pred": "1"}]}"#,
            ))
            .unwrap()
    }

    #[tokio::test]
    async fn past_max_concurrency_is_503_with_retry_after() {
        let cfg = Config::from_toml("[server]\nmax_concurrency = 2\nworkers = 1", "t").unwrap();
        let st = Arc::new(AppState::new(&cfg).unwrap());
        let app = router(Arc::clone(&st));
        let held = Arc::clone(&st.permits).try_acquire_many_owned(2).unwrap();
        let (status, headers, body) = call(&app, verify_request()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(headers[header::RETRY_AFTER], "1");
        assert!(body.contains("\"overloaded\""), "{body}");
        // health still answers while saturated
        let health = Request::get("/health")
            .body(axum::body::Body::empty())
            .unwrap();
        assert_eq!(call(&app, health).await.0, StatusCode::OK);
        drop(held);
        assert_eq!(call(&app, verify_request()).await.0, StatusCode::OK);
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        for v in [
            "Bearer t0k",
            "bearer t0k",
            "BEARER t0k",
            "BeArEr  t0k",
            " Bearer t0k",
        ] {
            assert_eq!(bearer_token(v), Some("t0k"), "{v:?}");
        }
        assert_eq!(bearer_token("Basic t0k"), None);
        assert_eq!(bearer_token("Bearert0k"), None);
        assert_eq!(bearer_token("Bearer"), None);
    }

    #[test]
    fn constant_time_compare() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }

    #[test]
    fn openapi_names_every_route() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        for p in [
            "/get_reward",
            "/v1/rewards",
            "/v1/verify",
            "/v1/step_rewards",
            "/health",
            "/metrics",
            "/openapi.json",
        ] {
            assert!(doc["paths"][p].is_object(), "{p} missing");
        }
        let req = &doc["components"]["schemas"]["GetRewardRequest"];
        let required: Vec<&str> = req["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(required, ["query", "prompts", "labels"]);
        // the shared error answers reach every scoring route
        for p in [
            "/get_reward",
            "/v1/rewards",
            "/v1/verify",
            "/v1/step_rewards",
        ] {
            let responses = &doc["paths"][p]["post"]["responses"];
            for code in ["200", "400", "401", "408", "413", "415", "422", "503"] {
                assert!(responses[code].is_object(), "{p} lacks {code}: {responses}");
            }
            assert_eq!(
                responses["503"]["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/ErrorResponse"
            );
        }
    }
}
