//! Routes, admission, and the work of one request: parse, run the strategy (or pass
//! through), answer as OpenAI does plus the `stepwise` field.

use crate::api::*;
use crate::models::{ModelName, ServedModel};
use crate::tracked::{Progress, Tracked};
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use stepwise_core::{Budget, Problem, TraceEvent};
use stepwise_jobs::kinds::scale::ScaleStrategy;
use stepwise_jobs::kinds::solve::SearchSettings;
use stepwise_model::{ChatMessage, GenerateRequest, Prompt, Role, SamplingParams};
use stepwise_search::Context;
use stepwise_search::jobs::{Backends, configured_strategy};
use stepwise_serve::metrics::Gauge;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::Instant;

/// Settings of a gateway.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// The strategies offered (listed by `/v1/models`; only these are served).
    pub models: Vec<ServedModel>,
    /// Name of the pass-through model (the upstream's or the embedded model's).
    pub passthrough: String,
    /// Sampling, search shape and prompts (as `stepwise solve`); the scorer comes from
    /// the model.
    pub search: SearchSettings,
    /// Samples or candidates per step when the request names none.
    pub default_n: usize,
    /// Largest `n` a request may ask for.
    pub max_n: usize,
    /// Requests served at once; beyond this, 503 with `Retry-After`.
    pub max_concurrency: usize,
    /// Longest a request may take, in milliseconds; past it the best candidate so far
    /// is the answer (marked partial).
    pub deadline_ms: u64,
    pub max_body_bytes: usize,
    pub body_read_timeout_ms: u64,
    pub header_read_timeout_ms: u64,
    pub max_connections: usize,
    /// Bearer token required on every route but `/health`.
    pub auth_token: Option<String>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            models: crate::models::default_models("arith"),
            passthrough: "passthrough".into(),
            search: SearchSettings::default(),
            default_n: 4,
            max_n: 64,
            max_concurrency: 16,
            deadline_ms: 120_000,
            max_body_bytes: 4 << 20,
            body_read_timeout_ms: 10_000,
            header_read_timeout_ms: 10_000,
            max_connections: 1024,
            auth_token: None,
        }
    }
}

/// Counters behind `/metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: AtomicU64,
    overloaded: AtomicU64,
    partial: AtomicU64,
    failed: AtomicU64,
    policy_tokens: AtomicU64,
    judge_tokens: AtomicU64,
    in_flight: AtomicU64,
    connections: AtomicU64,
    connections_refused: AtomicU64,
}

impl Metrics {
    fn render(&self) -> String {
        let rows = [
            (
                "stepwise_gateway_requests_total",
                "counter",
                "Completion requests admitted.",
                &self.requests,
            ),
            (
                "stepwise_gateway_overloaded_total",
                "counter",
                "Requests refused with 503 at max_concurrency.",
                &self.overloaded,
            ),
            (
                "stepwise_gateway_partial_total",
                "counter",
                "Answers marked partial (upstream failure, budget or deadline).",
                &self.partial,
            ),
            (
                "stepwise_gateway_failed_total",
                "counter",
                "Requests answered with an error after admission.",
                &self.failed,
            ),
            (
                "stepwise_gateway_policy_tokens_total",
                "counter",
                "Policy tokens generated.",
                &self.policy_tokens,
            ),
            (
                "stepwise_gateway_judge_tokens_total",
                "counter",
                "Judge tokens generated.",
                &self.judge_tokens,
            ),
            (
                "stepwise_gateway_in_flight",
                "gauge",
                "Requests being served.",
                &self.in_flight,
            ),
            (
                "stepwise_gateway_open_connections",
                "gauge",
                "Open HTTP connections.",
                &self.connections,
            ),
            (
                "stepwise_gateway_connections_refused_total",
                "counter",
                "Connections over max_connections.",
                &self.connections_refused,
            ),
        ];
        let mut o = String::new();
        for (name, kind, help, v) in rows {
            o.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}\n",
                v.load(Ordering::Relaxed)
            ));
        }
        o
    }
}

/// Shared state of one gateway.
pub struct AppState {
    pub(crate) config: GatewayConfig,
    backends: Backends,
    permits: Arc<Semaphore>,
    next_id: AtomicU64,
    pub metrics: Metrics,
}

impl AppState {
    pub fn new(config: GatewayConfig, backends: Backends) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(config.max_concurrency.max(1))),
            config,
            backends,
            next_id: AtomicU64::new(1),
            metrics: Metrics::default(),
        }
    }
}

impl stepwise_serve::conn::ConnEvents for AppState {
    fn opened(&self) -> Box<dyn Send + '_> {
        Box::new(Gauge::enter(&self.metrics.connections))
    }
    fn refused(&self) {
        self.metrics
            .connections_refused
            .fetch_add(1, Ordering::Relaxed);
    }
}

/// The router with every route.
pub fn router(state: Arc<AppState>) -> Router {
    let work = Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/completions", post(completions))
        .layer(middleware::from_fn_with_state(state.clone(), admit));
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/v1/models", get(models))
        .merge(work)
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .layer(middleware::from_fn_with_state(state.clone(), auth))
        .with_state(state)
}

// ---------------------------------------------------------------- errors

/// OpenAI's error shape: `{"error": {"message", "type", "code"}}`.
#[derive(Debug, Clone, Copy)]
pub struct OpenAiShape;

impl stepwise_serve::error::ErrorShape for OpenAiShape {
    type Body = ErrorBody;
    fn body(status: StatusCode, code: &'static str, message: String) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                message,
                kind: if status.is_server_error() {
                    "server_error"
                } else {
                    "invalid_request_error"
                },
                code,
            },
        }
    }
}

/// An error answered as OpenAI does (503 with `Retry-After`, as the reward server).
pub type ApiError = stepwise_serve::error::ApiError<OpenAiShape>;

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
}

// ---------------------------------------------------------------- middleware

async fn auth(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let token = st.config.auth_token.as_deref();
    stepwise_serve::error::require_token::<OpenAiShape>(token, &["/health"], req, next).await
}

/// The permit a request holds while it is served (released when the last clone drops).
#[derive(Clone)]
struct Permit {
    _held: Arc<OwnedSemaphorePermit>,
}

/// The whole body first (size and time limits), then a permit or 503 + Retry-After.
async fn admit(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    use stepwise_serve::conn::{BodyError, read_body_within};
    let (parts, body) = req.into_parts();
    let c = &st.config;
    let timeout = Duration::from_millis(c.body_read_timeout_ms);
    let bytes = match read_body_within(&parts.headers, body, c.max_body_bytes, timeout).await {
        Ok(b) => b,
        Err(e) => {
            let (status, code) = match e {
                BodyError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
                BodyError::Timeout { .. } => (StatusCode::REQUEST_TIMEOUT, "body_timeout"),
                BodyError::Read(_) => (StatusCode::BAD_REQUEST, "bad_body"),
            };
            return ApiError::new(status, code, e.to_string()).into_response();
        }
    };
    let Ok(permit) = st.permits.clone().try_acquire_owned() else {
        st.metrics.overloaded.fetch_add(1, Ordering::Relaxed);
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            format!(
                "gateway is at max_concurrency ({}); retry later",
                c.max_concurrency
            ),
        )
        .into_response();
    };
    st.metrics.requests.fetch_add(1, Ordering::Relaxed);
    let mut req = Request::from_parts(parts, axum::body::Body::from(bytes));
    req.extensions_mut().insert(Permit {
        _held: Arc::new(permit),
    });
    next.run(req).await
}

// ---------------------------------------------------------------- plain routes

async fn health(State(st): State<Arc<AppState>>) -> Json<serde_json::Value> {
    Json(json!({
        "status": "ok",
        "in_flight": st.metrics.in_flight.load(Ordering::Relaxed),
        "max_concurrency": st.config.max_concurrency,
        "policy": st.backends.policy.name(),
    }))
}

async fn metrics(State(st): State<Arc<AppState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        st.metrics.render(),
    )
        .into_response()
}

fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

async fn models(State(st): State<Arc<AppState>>) -> Json<ModelList> {
    let entry = |id: String| ModelEntry {
        id,
        object: "model".into(),
        created: now_s(),
        owned_by: "stepwise".into(),
    };
    let mut data: Vec<ModelEntry> = st.config.models.iter().map(|m| entry(m.name())).collect();
    data.push(entry(st.config.passthrough.clone()));
    Json(ModelList {
        object: "list".into(),
        data,
    })
}

// ---------------------------------------------------------------- completions

enum Query {
    Chat(Vec<InMessage>),
    Text(String),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Chat,
    Text,
}

fn parse<T: serde::de::DeserializeOwned>(bytes: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| invalid(format!("request body: {e}")))
}

async fn chat(
    State(st): State<Arc<AppState>>,
    axum::Extension(permit): axum::Extension<Permit>,
    body: Bytes,
) -> Response {
    match parse::<ChatRequest>(&body) {
        Ok(r) => respond(st, permit, Kind::Chat, Query::Chat(r.messages), r.common).await,
        Err(e) => e.into_response(),
    }
}

async fn completions(
    State(st): State<Arc<AppState>>,
    axum::Extension(permit): axum::Extension<Permit>,
    body: Bytes,
) -> Response {
    let r = match parse::<CompletionRequest>(&body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let prompt = match r.prompt {
        TextPrompt::One(p) => p,
        TextPrompt::Many(mut v) if v.len() == 1 => v.remove(0),
        TextPrompt::Many(v) => {
            return invalid(format!(
                "prompt: the gateway answers one prompt per request, got {}",
                v.len()
            ))
            .into_response();
        }
    };
    respond(st, permit, Kind::Text, Query::Text(prompt), r.common).await
}

/// What a request is answered with.
struct Answered {
    content: String,
    finish: &'static str,
    usage: Usage,
    info: StepwiseInfo,
}

async fn respond(
    st: Arc<AppState>,
    permit: Permit,
    kind: Kind,
    query: Query,
    common: CommonRequest,
) -> Response {
    let id = format!("stepwise-{}", st.next_id.fetch_add(1, Ordering::Relaxed));
    let model = common.model.clone();
    if !common.stream {
        let _in = Gauge::enter(&st.metrics.in_flight);
        let r = answer(&st, query, common, None).await;
        drop(permit);
        return match r {
            Ok(a) => {
                let created = now_s();
                match kind {
                    Kind::Chat => Json(ChatResponse {
                        id,
                        object: "chat.completion",
                        created,
                        model,
                        choices: vec![ChatChoice {
                            index: 0,
                            message: OutMessage {
                                role: "assistant",
                                content: a.content,
                            },
                            finish_reason: a.finish,
                            logprobs: None,
                        }],
                        usage: a.usage,
                        stepwise: a.info,
                    })
                    .into_response(),
                    Kind::Text => Json(CompletionResponse {
                        id,
                        object: "text_completion",
                        created,
                        model,
                        choices: vec![TextChoice {
                            index: 0,
                            text: a.content,
                            finish_reason: a.finish,
                            logprobs: None,
                        }],
                        usage: a.usage,
                        stepwise: a.info,
                    })
                    .into_response(),
                }
            }
            Err(e) => {
                st.metrics.failed.fetch_add(1, Ordering::Relaxed);
                e.into_response()
            }
        };
    }
    let include_usage = common
        .stream_options
        .as_ref()
        .is_some_and(|o| o.include_usage);
    let (tx, rx) = mpsc::channel::<Event>(32);
    tokio::spawn(async move {
        let _permit = permit;
        let _in = Gauge::enter(&st.metrics.in_flight);
        let (ptx, mut prx) = mpsc::channel::<Progress>(16);
        let work = answer(&st, query, common, Some(ptx));
        tokio::pin!(work);
        let comment = |p: Progress| {
            Event::default().comment(format!(
                "stepwise progress: calls={} tokens={}",
                p.calls, p.tokens
            ))
        };
        let result = loop {
            tokio::select! {
                r = &mut work => break r,
                Some(p) = prx.recv() => {
                    if tx.send(comment(p)).await.is_err() {
                        return; // the client left: dropping the work cancels the search
                    }
                }
            }
        };
        // progress reported just before the search ended
        while let Ok(p) = prx.try_recv() {
            if tx.send(comment(p)).await.is_err() {
                return;
            }
        }
        let created = now_s();
        let chunk = |choice: serde_json::Value, extra: serde_json::Value| {
            let object = match kind {
                Kind::Chat => "chat.completion.chunk",
                Kind::Text => "text_completion",
            };
            let mut v = json!({"id": id, "object": object, "created": created, "model": model,
                "choices": if choice.is_null() { json!([]) } else { json!([choice]) }});
            if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
                o.extend(e.clone());
            }
            Event::default().data(v.to_string())
        };
        let piece = |text: &str, finish: Option<&str>| match kind {
            Kind::Chat => {
                json!({"index": 0, "delta": if finish.is_some() { json!({}) } else { json!({"role": "assistant", "content": text}) }, "finish_reason": finish, "logprobs": null})
            }
            Kind::Text => {
                json!({"index": 0, "text": text, "finish_reason": finish, "logprobs": null})
            }
        };
        let mut events = Vec::new();
        match result {
            Ok(a) => {
                for part in a.content.split_inclusive("\n\n") {
                    events.push(chunk(piece(part, None), json!({})));
                }
                let info = serde_json::to_value(&a.info).unwrap_or_default();
                events.push(chunk(piece("", Some(a.finish)), json!({"stepwise": info})));
                if include_usage {
                    events.push(chunk(serde_json::Value::Null, json!({"usage": a.usage})));
                }
            }
            Err(e) => {
                st.metrics.failed.fetch_add(1, Ordering::Relaxed);
                let body = serde_json::to_value(e.body()).unwrap_or_default();
                events.push(Event::default().data(body.to_string()));
            }
        }
        events.push(Event::default().data("[DONE]"));
        for e in events {
            if tx.send(e).await.is_err() {
                return;
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|e| (Ok::<_, std::convert::Infallible>(e), rx))
    });
    Sse::new(stream).into_response()
}

/// The question of a search: the last user message (or the text prompt).
fn question(query: &Query) -> Result<String, ApiError> {
    match query {
        Query::Text(p) => Ok(p.clone()),
        Query::Chat(msgs) => {
            let m = msgs
                .iter()
                .rev()
                .find(|m| m.role == "user")
                .ok_or_else(|| invalid("messages: no user message to answer"))?;
            content_text(m)
        }
    }
}

fn content_text(m: &InMessage) -> Result<String, ApiError> {
    match &m.content {
        None => Ok(String::new()),
        Some(c) => c.text().map_err(|kind| {
            invalid(format!(
                "messages: content parts of type {kind:?} are not supported (text only)"
            ))
        }),
    }
}

/// Runs the request: the strategy its model names, or the pass-through model.
async fn answer(
    st: &AppState,
    query: Query,
    common: CommonRequest,
    progress: Option<mpsc::Sender<Progress>>,
) -> Result<Answered, ApiError> {
    let c = &st.config;
    if common.n.is_some_and(|n| n != 1) {
        return Err(invalid(
            "n: the gateway answers one choice (the search's); set stepwise.n for the search's samples",
        ));
    }
    let ext = common.stepwise.clone().unwrap_or_default();
    let deadline_ms = ext
        .deadline_ms
        .map_or(c.deadline_ms, |d| d.min(c.deadline_ms));
    let deadline = Instant::now() + Duration::from_millis(deadline_ms);
    let max_tokens = common.max_completion_tokens.or(common.max_tokens);
    if common.model == c.passthrough && ext.strategy.is_none() {
        return passthrough(st, query, &common, max_tokens, deadline).await;
    }
    let named: ModelName = common
        .model
        .parse()
        .map_err(|e: crate::models::ModelNameError| {
            ApiError::new(StatusCode::NOT_FOUND, "model_not_found", e.to_string())
        })?;
    let mut served = named.model.clone();
    if let Some(s) = &ext.strategy {
        served.strategy = s
            .parse()
            .map_err(|e: String| invalid(format!("stepwise.strategy: {e}")))?;
    }
    if let Some(s) = &ext.scorer {
        served.scorer = Some(s.clone());
    }
    if !served.strategy.needs_scorer() {
        served.scorer = None;
    }
    if !c.models.contains(&served) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "model_not_found",
            format!(
                "model {:?} is not served here (see /v1/models: {})",
                served.name(),
                c.models
                    .iter()
                    .map(|m| m.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    let n = ext.n.or(named.n).unwrap_or(c.default_n);
    if n == 0 || n > c.max_n {
        return Err(invalid(format!(
            "stepwise.n: {n} is not within 1..={}",
            c.max_n
        )));
    }
    let mut settings = c.search.clone();
    settings.scorer = served.scorer.clone();
    if let Some(sel) = &ext.select {
        settings.pairwise = if sel.trim().eq_ignore_ascii_case("score") {
            None
        } else {
            let method: stepwise_jobs::kinds::pairwise::PairwiseMethod = sel
                .parse()
                .map_err(|e: String| invalid(format!("stepwise.select: {e} (or score)")))?;
            Some(stepwise_jobs::kinds::pairwise::PairwiseSettings {
                method,
                ..settings.pairwise.clone().unwrap_or_default()
            })
        };
    }
    if settings.pairwise.is_some() && served.strategy != ScaleStrategy::Bon {
        return Err(invalid(format!(
            "stepwise.select: pairwise verdicts pick among bon's samples; strategy {} has none",
            served.strategy.name()
        )));
    }
    if let Some(t) = common.temperature {
        settings.temperature = t;
    }
    if let Some(m) = max_tokens {
        settings.max_tokens = m;
    }
    if let Some(s) = common.seed {
        settings.seed = s;
    }
    let tracked = Arc::new(Tracked::new(st.backends.policy.clone(), deadline, progress));
    let backends = Backends {
        policy: tracked.clone(),
        ..st.backends.clone()
    };
    let mut ctx =
        Context::from_settings(&settings, &backends).map_err(|e| invalid(e.to_string()))?;
    if let Some(p) = common.top_p {
        ctx.sampling.top_p = p;
    }
    if let Some(s) = common.stop.clone() {
        ctx.stop = s.into_vec();
    }
    let problem = Problem::new(
        ext.id.clone().unwrap_or_else(|| "gateway".into()),
        question(&query)?,
    );
    let budget = Budget {
        max_tokens: ext.budget,
        max_wall_ms: Some(deadline_ms),
        ..Budget::default()
    };
    let strategy = configured_strategy(served.strategy, n, &settings);
    let outcome = strategy.solve(&problem, &budget, &ctx).await.map_err(|e| {
        use stepwise_search::SearchError as E;
        let status = match e {
            E::Config(_) | E::NeedsScorer { .. } => StatusCode::BAD_REQUEST,
            _ => StatusCode::BAD_GATEWAY,
        };
        ApiError::new(status, "search_failed", error_chain(&e))
    })?;
    let stopped = outcome.trace.events.iter().find_map(|e| match e {
        TraceEvent::Note { message } if message.starts_with("stopped:") => Some(message.clone()),
        _ => None,
    });
    let partial_reason = tracked.failure().or(stopped);
    let pick = outcome
        .chosen
        .or_else(|| (!outcome.samples.is_empty()).then_some(0));
    let Some(sample) = pick.and_then(|i| outcome.samples.get(i)) else {
        return Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "no_candidate",
            format!(
                "the search ended without a candidate: {}",
                partial_reason
                    .as_deref()
                    .unwrap_or("no sample was generated")
            ),
        ));
    };
    let m = &st.metrics;
    m.policy_tokens
        .fetch_add(outcome.spent.policy_tokens, Ordering::Relaxed);
    m.judge_tokens
        .fetch_add(outcome.spent.judge_tokens, Ordering::Relaxed);
    if partial_reason.is_some() {
        m.partial.fetch_add(1, Ordering::Relaxed);
    }
    let candidates = outcome
        .samples
        .iter()
        .map(|s| Candidate {
            text: s.text.clone(),
            answer: s.rationale.answer.clone(),
            score: s.score,
            step_scores: s.scores.iter().map(|x| x.score).collect(),
            tokens: s.tokens,
            finished: s.finished,
        })
        .collect();
    Ok(Answered {
        content: sample.text.clone(),
        finish: if sample.finished { "stop" } else { "length" },
        usage: Usage::new(tracked.prompt_tokens(), sample.tokens),
        info: StepwiseInfo {
            version: STEPWISE_API_VERSION,
            strategy: outcome.strategy.clone(),
            scorer: served.scorer,
            answer: outcome.answer.clone(),
            chosen: outcome.chosen,
            partial: partial_reason.is_some(),
            partial_reason,
            spent: outcome.spent,
            candidates,
            tree: ext.tree.then(|| outcome.trace.clone()),
        },
    })
}

/// One plain completion of the policy, with the request's own messages.
async fn passthrough(
    st: &AppState,
    query: Query,
    common: &CommonRequest,
    max_tokens: Option<u32>,
    deadline: Instant,
) -> Result<Answered, ApiError> {
    let s = &st.config.search;
    let prompt = match &query {
        Query::Text(p) => Prompt::Text(p.clone()),
        Query::Chat(msgs) => {
            let mut out = Vec::with_capacity(msgs.len());
            for m in msgs {
                let role = match m.role.as_str() {
                    "system" | "developer" => Role::System,
                    "user" => Role::User,
                    "assistant" => Role::Assistant,
                    other => {
                        return Err(invalid(format!(
                            "messages: role {other:?} is not supported"
                        )));
                    }
                };
                out.push(ChatMessage {
                    role,
                    content: content_text(m)?,
                });
            }
            Prompt::Chat(out)
        }
    };
    let req = GenerateRequest {
        prompt,
        assistant_prefix: String::new(),
        params: SamplingParams {
            n: 1,
            max_tokens: max_tokens.unwrap_or(s.max_tokens),
            temperature: common.temperature.unwrap_or(s.temperature),
            top_p: common.top_p.unwrap_or(1.0),
            stop: common.stop.clone().map(Stop::into_vec).unwrap_or_default(),
            seed: common.seed.unwrap_or(s.seed),
            ..SamplingParams::default()
        },
    };
    let started = std::time::Instant::now();
    let out = tokio::time::timeout_at(deadline, st.backends.policy.generate(&req))
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "deadline",
                "the upstream did not answer by the deadline",
            )
        })?
        .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, "upstream_failed", error_chain(&e)))?;
    let c = out.into_iter().next().ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "upstream_failed",
            "the upstream answered no choice",
        )
    })?;
    let spent = stepwise_core::Spent {
        policy_tokens: c.generated_tokens,
        policy_prompt_tokens: c.prompt_tokens,
        policy_calls: 1,
        wall_ms: started.elapsed().as_millis() as u64,
        ..Default::default()
    };
    st.metrics
        .policy_tokens
        .fetch_add(c.generated_tokens, Ordering::Relaxed);
    let finish = match c.finish {
        stepwise_model::FinishReason::Length => "length",
        _ => "stop",
    };
    Ok(Answered {
        usage: Usage::new(c.prompt_tokens, c.generated_tokens),
        info: StepwiseInfo {
            version: STEPWISE_API_VERSION,
            strategy: "passthrough".into(),
            scorer: None,
            answer: None,
            chosen: Some(0),
            partial: false,
            partial_reason: None,
            spent,
            candidates: vec![Candidate {
                text: c.text.clone(),
                answer: None,
                score: None,
                step_scores: Vec::new(),
                tokens: c.generated_tokens,
                finished: finish == "stop",
            }],
            tree: None,
        },
        content: c.text,
        finish,
    })
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        s.push_str(": ");
        s.push_str(&x.to_string());
        src = x.source();
    }
    s
}
