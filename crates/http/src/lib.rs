//! The HTTP backend of [`Generator`]: OpenAI-compatible servers: vLLM, SGLang, llama.cpp's `llama-server`, Ollama,
//! llama-cpp-python.
//!
//! - Text prompts go to `/v1/completions`.
//! - Chat prompts: in [`ChatMode::Server`] (default) to `/v1/chat/completions`, rendered by the
//!   server's own template. A non-empty assistant prefix is sent as a trailing assistant
//!   message with `continue_final_message: true, add_generation_prompt: false` (vLLM, SGLang;
//!   llama.cpp's server continues a trailing assistant message by itself). Servers that do not
//!   understand that (llama-cpp-python) should use [`ChatMode::ChatMl`]: the chat is rendered
//!   client-side as ChatML (optionally with a default system prompt) and sent to
//!   `/v1/completions`, so prompt + prefix is exactly one string and continuations extend it.
//! - By default every sample is its own request (`n = 1`, seed derived from `(seed, i)`): token
//!   counts per sample are exact, samples are reproducible on servers that honour `seed`, load
//!   spreads over endpoints, and samples that finished are kept when a server dies
//!   ([`Generator::generate_partial`]). `samples_per_request > 1` sends `n > 1` instead.
//! - Each endpoint has a concurrency limit; a request goes to the endpoint with the fewest
//!   requests in flight. 429, 5xx, timeouts and connection errors are retried with exponential
//!   backoff (honouring `Retry-After`), on whichever endpoint is least loaded then.
//! - A server is not trusted: an answer larger than [`HttpConfig::max_response_bytes`]
//!   is refused as soon as it passes the cap (never held whole), and an answer whose
//!   fields have the wrong types (`"content": 123`, `"finish_reason": 7`) is an error
//!   naming the endpoint and the field, never an empty sample.

#[cfg(feature = "reference-server")]
pub mod reference;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use stepwise_model::template::{render_chatml, role_name, with_default_system};
use stepwise_model::{
    ChatMessage, Completion, EngineError, FinishReason, GenerateRequest, Generator,
    NextTokenLogprobs, PartialGeneration, Prompt, SamplingParams, TokenLogprob, sample_seed,
};
use tokio::sync::Semaphore;

/// How chat prompts are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChatMode {
    /// `/v1/chat/completions` with the server's chat template.
    #[default]
    Server,
    /// Client-side ChatML rendering and `/v1/completions`.
    ChatMl,
}

/// Settings of the HTTP backend.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Base URLs, e.g. `http://127.0.0.1:8000` or `http://host:8000/v1`.
    pub endpoints: Vec<String>,
    /// Model name sent with each request (some servers require it).
    pub model: Option<String>,
    /// Bearer token sent with each request.
    pub api_key: Option<String>,
    /// Requests in flight per endpoint.
    pub max_concurrency: usize,
    /// Whole-request timeout.
    pub timeout: Duration,
    /// Timeout of establishing a connection.
    pub connect_timeout: Duration,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// First backoff between retries; it doubles with every retry.
    pub backoff_base: Duration,
    /// Longest backoff (and longest `Retry-After` honoured).
    pub backoff_max: Duration,
    /// Samples per HTTP request (`n`); 1 = one request per sample.
    pub samples_per_request: usize,
    /// How chat prompts are sent.
    pub chat_mode: ChatMode,
    /// System prompt added to chat prompts without one ([`ChatMode::ChatMl`] only).
    pub system_prompt: Option<String>,
    /// How many alternatives to ask for in `next_token_logprobs`.
    pub top_logprobs: usize,
    /// Largest answer body accepted, in bytes; a larger one fails the request (without
    /// retries) as soon as the cap is passed.
    pub max_response_bytes: usize,
}

/// The default [`HttpConfig::max_response_bytes`]: 32 MiB, far above any completion
/// (a 32k-token answer with logprobs is a few MiB).
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 32 << 20;

impl HttpConfig {
    /// Default settings for `endpoints`.
    pub fn new(endpoints: Vec<String>) -> Self {
        Self {
            endpoints,
            model: None,
            api_key: None,
            max_concurrency: 16,
            timeout: Duration::from_secs(600),
            connect_timeout: Duration::from_secs(10),
            max_retries: 5,
            backoff_base: Duration::from_millis(250),
            backoff_max: Duration::from_secs(20),
            samples_per_request: 1,
            chat_mode: ChatMode::Server,
            system_prompt: None,
            top_logprobs: 20,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }
}

struct Endpoint {
    base: String,
    sem: Semaphore,
    in_flight: AtomicUsize,
    /// After a connection failure, avoid this endpoint until then (if another is usable).
    down_until: Mutex<Option<Instant>>,
}

/// Counters, for progress displays and tests.
#[derive(Debug, Default)]
pub struct HttpStats {
    /// Requests answered successfully.
    pub requests_ok: AtomicU64,
    /// Attempts retried after a transient failure.
    pub retries: AtomicU64,
    /// Requests given up on.
    pub failures: AtomicU64,
}

/// Generator talking to OpenAI-compatible servers.
pub struct HttpGenerator {
    cfg: HttpConfig,
    client: reqwest::Client,
    endpoints: Vec<Arc<Endpoint>>,
    rr: AtomicUsize,
    stats: Arc<HttpStats>,
}

fn normalize_base(url: &str) -> String {
    let u = url.trim().trim_end_matches('/');
    let u = u.strip_suffix("/v1").unwrap_or(u);
    u.to_string()
}

impl HttpGenerator {
    /// A generator for `cfg`'s endpoints (checks their URLs; connects on first use).
    pub fn new(cfg: HttpConfig) -> Result<Self, EngineError> {
        if cfg.endpoints.is_empty() {
            return Err(EngineError::InvalidRequest("no endpoint given".into()));
        }
        for e in &cfg.endpoints {
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                return Err(EngineError::InvalidRequest(format!(
                    "endpoint {e:?} must start with http:// or https://"
                )));
            }
        }
        let client = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.connect_timeout)
            .pool_max_idle_per_host(cfg.max_concurrency.max(1))
            .build()
            .map_err(|e| EngineError::Setup(format!("HTTP client: {e}")))?;
        let endpoints = cfg
            .endpoints
            .iter()
            .map(|u| {
                Arc::new(Endpoint {
                    base: normalize_base(u),
                    sem: Semaphore::new(cfg.max_concurrency.max(1)),
                    in_flight: AtomicUsize::new(0),
                    down_until: Mutex::new(None),
                })
            })
            .collect();
        Ok(Self {
            cfg,
            client,
            endpoints,
            rr: AtomicUsize::new(0),
            stats: Arc::new(HttpStats::default()),
        })
    }

    /// The request counters.
    pub fn stats(&self) -> Arc<HttpStats> {
        self.stats.clone()
    }

    /// The settings it was made with.
    pub fn config(&self) -> &HttpConfig {
        &self.cfg
    }

    /// The least-loaded endpoint, preferring ones not marked down.
    fn pick(&self) -> Arc<Endpoint> {
        let now = Instant::now();
        let start = self.rr.fetch_add(1, Ordering::Relaxed);
        let n = self.endpoints.len();
        let mut best: Option<(bool, usize, usize)> = None; // (down, load, index)
        for k in 0..n {
            let i = (start + k) % n;
            let e = &self.endpoints[i];
            let down = e
                .down_until
                .lock()
                .map(|d| d.is_some_and(|t| t > now))
                .unwrap_or(false);
            let load = e.in_flight.load(Ordering::Relaxed);
            let key = (down, load, i);
            if best.is_none_or(|b| (key.0, key.1) < (b.0, b.1)) {
                best = Some(key);
            }
        }
        self.endpoints[best.map_or(0, |b| b.2)].clone()
    }

    /// POSTs `body` to `path` (e.g. `/pooling`) of the least-loaded endpoint, retrying
    /// transient failures (429, 5xx, timeouts, refused connections) with backoff; returns
    /// the JSON answer. Besides generation this carries other model calls to the same
    /// servers, such as the step scores of a process reward model (`stepwise-score`).
    pub async fn post_json(&self, path: &str, body: &Value) -> Result<Value, EngineError> {
        Ok(self.post(path, body).await?.0)
    }

    /// POSTs `body` to `path`, retrying transient failures; returns the JSON answer and
    /// the URL that gave it.
    async fn post(&self, path: &str, body: &Value) -> Result<(Value, String), EngineError> {
        let mut attempt: u32 = 0;
        loop {
            let ep = self.pick();
            let url = format!("{}{}", ep.base, path);
            let outcome = {
                let _permit = ep
                    .sem
                    .acquire()
                    .await
                    .map_err(|_| EngineError::Internal("endpoint semaphore closed".into()))?;
                ep.in_flight.fetch_add(1, Ordering::Relaxed);
                let mut rb = self.client.post(&url).json(body);
                if let Some(k) = &self.cfg.api_key {
                    rb = rb.bearer_auth(k);
                }
                let r = rb.send().await;
                let out = match r {
                    Ok(resp) => {
                        let status = resp.status();
                        let retry_after = resp
                            .headers()
                            .get("retry-after")
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.trim().parse::<f64>().ok())
                            .map(|s| Duration::from_secs_f64(s.clamp(0.0, 120.0)));
                        match read_capped(resp, self.cfg.max_response_bytes).await {
                            Ok(t) if status.is_success() => {
                                match serde_json::from_slice::<Value>(&t) {
                                    Ok(v) => Ok(v),
                                    Err(e) => Err((
                                        false,
                                        None,
                                        format!(
                                            "answer is not JSON ({e}): {}",
                                            excerpt(&String::from_utf8_lossy(&t))
                                        ),
                                    )),
                                }
                            }
                            Ok(t) => {
                                let retry = status.as_u16() == 429 || status.is_server_error();
                                Err((
                                    retry,
                                    retry_after,
                                    format!(
                                        "HTTP {status}: {}",
                                        excerpt(&String::from_utf8_lossy(&t))
                                    ),
                                ))
                            }
                            Err(BodyError::TooLarge { cap }) => Err((
                                false,
                                None,
                                format!(
                                    "HTTP {status}: the answer is larger than the limit of {cap} bytes \
                                     (max_response_bytes); stopped reading it"
                                ),
                            )),
                            Err(BodyError::Read(e)) => {
                                Err((true, None, format!("reading the answer: {e}")))
                            }
                        }
                    }
                    Err(e) => {
                        let connect = e.is_connect();
                        if connect && let Ok(mut d) = ep.down_until.lock() {
                            *d = Some(Instant::now() + Duration::from_secs(2));
                        }
                        let kind = if e.is_timeout() {
                            "timed out"
                        } else if connect {
                            "cannot connect"
                        } else {
                            "request failed"
                        };
                        Err((true, None, format!("{kind}: {e}")))
                    }
                };
                ep.in_flight.fetch_sub(1, Ordering::Relaxed);
                out
            };
            match outcome {
                Ok(v) => {
                    self.stats.requests_ok.fetch_add(1, Ordering::Relaxed);
                    return Ok((v, url));
                }
                Err((retry, retry_after, reason)) => {
                    if !retry || attempt >= self.cfg.max_retries {
                        self.stats.failures.fetch_add(1, Ordering::Relaxed);
                        let reason = if retry {
                            format!("{reason} (gave up after {} attempts)", attempt + 1)
                        } else {
                            reason
                        };
                        return Err(EngineError::Http {
                            endpoint: url,
                            reason,
                        });
                    }
                    let backoff = self
                        .cfg
                        .backoff_base
                        .saturating_mul(1u32 << attempt.min(16))
                        .min(self.cfg.backoff_max);
                    let wait = retry_after
                        .unwrap_or(backoff)
                        .min(self.cfg.backoff_max.max(backoff));
                    tracing::warn!("{url}: {reason}; retry {} in {:?}", attempt + 1, wait);
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    attempt += 1;
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    fn chat_messages(&self, msgs: &[ChatMessage]) -> Vec<Value> {
        msgs.iter()
            .map(|m| json!({"role": role_name(m.role), "content": m.content}))
            .collect()
    }

    /// Builds the request body for samples `[first, first + n)`; returns (path, body).
    /// The server's top log-probabilities of the next token after `prompt` + `prefix`
    /// (one greedy token asked for), the prompt tokens it read and the URL that answered.
    async fn top_next(
        &self,
        prompt: &Prompt,
        prefix: &str,
    ) -> Result<(Vec<(String, f32)>, u64, String), EngineError> {
        let params = SamplingParams {
            n: 1,
            temperature: 0.0,
            top_p: 1.0,
            top_k: 0,
            max_tokens: 1,
            stop: Vec::new(),
            seed: 0,
            logprobs: false,
        };
        let (path, mut body) = self.body(prompt, prefix, &params, 0, 1);
        if path.ends_with("chat/completions") {
            body["logprobs"] = json!(true);
            body["top_logprobs"] = json!(self.cfg.top_logprobs);
        } else {
            body["logprobs"] = json!(self.cfg.top_logprobs);
        }
        let (v, url) = self.post(&path, &body).await?;
        let answer = parse_answer(&v).map_err(|reason| EngineError::Http {
            endpoint: url.clone(),
            reason,
        })?;
        let top = first_top_logprobs(&answer);
        if top.is_empty() {
            return Err(EngineError::Http {
                endpoint: url,
                reason: "the server returned no top log-probabilities".into(),
            });
        }
        let prompt_tokens = answer
            .usage
            .as_ref()
            .and_then(|u| u.prompt_tokens)
            .unwrap_or(0);
        Ok((top, prompt_tokens, url))
    }

    fn body(
        &self,
        prompt: &Prompt,
        prefix: &str,
        p: &SamplingParams,
        first: usize,
        n: usize,
    ) -> (String, Value) {
        let mut body = json!({
            "n": n,
            "max_tokens": p.max_tokens,
            "temperature": p.temperature,
            "top_p": p.top_p,
            "seed": sample_seed(p.seed, first),
        });
        if p.top_k > 0 {
            body["top_k"] = json!(p.top_k);
        }
        if !p.stop.is_empty() {
            body["stop"] = json!(p.stop);
        }
        if let Some(m) = &self.cfg.model {
            body["model"] = json!(m);
        }
        let chat_server =
            matches!(prompt, Prompt::Chat(_)) && self.cfg.chat_mode == ChatMode::Server;
        if chat_server {
            let Prompt::Chat(msgs) = prompt else {
                unreachable!()
            };
            let mut messages = self.chat_messages(msgs);
            if !prefix.is_empty() {
                messages.push(json!({"role": "assistant", "content": prefix}));
                body["continue_final_message"] = json!(true);
                body["add_generation_prompt"] = json!(false);
            }
            body["messages"] = json!(messages);
            if p.logprobs {
                body["logprobs"] = json!(true);
                body["top_logprobs"] = json!(0);
            }
            ("/v1/chat/completions".into(), body)
        } else {
            body["prompt"] = json!(self.render_text(prompt, prefix));
            if p.logprobs {
                body["logprobs"] = json!(1);
            }
            ("/v1/completions".into(), body)
        }
    }

    fn render_text(&self, prompt: &Prompt, prefix: &str) -> String {
        let mut s = match prompt {
            Prompt::Text(t) => t.clone(),
            Prompt::Chat(m) => {
                render_chatml(&with_default_system(m, self.cfg.system_prompt.as_deref()))
            }
        };
        s.push_str(prefix);
        s
    }

    async fn run_chunk(
        &self,
        req: &GenerateRequest,
        first: usize,
        n: usize,
    ) -> Result<Vec<Completion>, EngineError> {
        let (path, body) = self.body(&req.prompt, &req.assistant_prefix, &req.params, first, n);
        let (v, url) = self.post(&path, &body).await?;
        parse_completions(&v, &req.params, n).map_err(|reason| EngineError::Http {
            endpoint: url,
            reason,
        })
    }
}

/// Why an answer body was not read whole.
enum BodyError {
    /// It passed the cap (by its `Content-Length`, or while streaming in).
    TooLarge { cap: usize },
    /// The connection failed while reading (retried like other transport failures).
    Read(reqwest::Error),
}

/// Reads the body chunk by chunk, stopping as soon as it would pass `cap` bytes, so a
/// server that streams without end costs at most `cap` bytes of memory.
async fn read_capped(mut resp: reqwest::Response, cap: usize) -> Result<Vec<u8>, BodyError> {
    if resp.content_length().is_some_and(|n| n > cap as u64) {
        return Err(BodyError::TooLarge { cap });
    }
    let mut buf = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(BodyError::Read)? {
        if buf.len() + chunk.len() > cap {
            return Err(BodyError::TooLarge { cap });
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

/// An OpenAI completions or chat completions answer, as far as stepwise reads it. Fields
/// may be absent or null; a present field of the wrong type is an error naming it.
#[derive(Deserialize)]
struct Answer {
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Usage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    index: Option<u64>,
    /// `/v1/completions`.
    #[serde(default)]
    text: Option<String>,
    /// `/v1/chat/completions`.
    #[serde(default)]
    message: Option<Message>,
    #[serde(default)]
    finish_reason: Option<String>,
    /// vLLM: the stop string, or the token id of the stop token, or null for EOS;
    /// `None` when absent, `Some(None)` for null.
    #[serde(default, deserialize_with = "present")]
    stop_reason: Option<Option<StopReason>>,
    #[serde(default)]
    logprobs: Option<ChoiceLogprobs>,
}

/// A field that is there, null or not (absent is the `default`, `None`).
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    content: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StopReason {
    Text(String),
    /// Read to check its type; the id itself is not needed.
    Token(#[allow(dead_code)] i64),
}

/// Chat (`content`) or legacy completions (`tokens`, `token_logprobs`, `top_logprobs`).
#[derive(Deserialize)]
struct ChoiceLogprobs {
    #[serde(default)]
    content: Option<Vec<ChatLogprob>>,
    #[serde(default)]
    tokens: Option<Vec<String>>,
    #[serde(default)]
    token_logprobs: Option<Vec<Option<f64>>>,
    #[serde(default)]
    top_logprobs: Option<Vec<Option<std::collections::BTreeMap<String, f64>>>>,
}

#[derive(Deserialize)]
struct ChatLogprob {
    #[serde(default)]
    token: String,
    #[serde(default)]
    logprob: Option<f64>,
    #[serde(default)]
    top_logprobs: Option<Vec<TopLogprob>>,
}

#[derive(Deserialize)]
struct TopLogprob {
    token: String,
    logprob: f64,
}

/// Reads `v` as an [`Answer`]; a field of the wrong type is named by its path
/// (`choices[0].message.content: invalid type: integer `123`, expected a string`).
fn parse_answer(v: &Value) -> Result<Answer, String> {
    serde_path_to_error::deserialize::<_, Answer>(v).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            format!(
                "answer is not a completion ({inner}): {}",
                excerpt(&v.to_string())
            )
        } else {
            format!("answer field `{path}`: {inner}")
        }
    })
}

fn excerpt(s: &str) -> String {
    let s = s.trim();
    if s.len() > 300 {
        let mut end = 300;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &s[..end])
    } else {
        s.to_string()
    }
}

/// Parses an OpenAI completions or chat completions answer.
fn parse_completions(v: &Value, p: &SamplingParams, n: usize) -> Result<Vec<Completion>, String> {
    let answer = parse_answer(v)?;
    let choices = answer.choices;
    if choices.len() != n {
        return Err(format!("asked for {n} choices, got {}", choices.len()));
    }
    let prompt_tokens = answer
        .usage
        .as_ref()
        .and_then(|u| u.prompt_tokens)
        .unwrap_or(0);
    let completion_total = answer.usage.as_ref().and_then(|u| u.completion_tokens);
    let mut out = Vec::with_capacity(n);
    let mut sorted = choices;
    sorted.sort_by_key(|c| c.index.unwrap_or(0));
    for c in sorted {
        let text = c
            .text
            .or_else(|| c.message.and_then(|m| m.content))
            .unwrap_or_default();
        let logprobs = c.logprobs.as_ref().and_then(parse_logprobs);
        let finish = match c.finish_reason.as_deref() {
            Some("length") => FinishReason::Length,
            Some("stop") | Some("eos") => match c.stop_reason {
                Some(Some(StopReason::Text(s))) => FinishReason::Stop(s),
                Some(Some(StopReason::Token(_)) | None) => FinishReason::Eos,
                // The server does not say whether a stop string or EOS ended it: with stop
                // strings given, report the first (the step delimiter by convention).
                None => match p.stop.first() {
                    Some(s) => FinishReason::Stop(s.clone()),
                    None => FinishReason::Eos,
                },
            },
            _ => FinishReason::Length,
        };
        let generated = match (&logprobs, completion_total) {
            (_, Some(t)) if n == 1 => t,
            (Some(l), _) => l.len() as u64,
            (None, Some(t)) => t / n as u64,
            (None, None) => 0,
        };
        out.push(Completion {
            text,
            token_ids: Vec::new(),
            logprobs: if p.logprobs {
                Some(logprobs.unwrap_or_default())
            } else {
                None
            },
            finish,
            prompt_tokens,
            generated_tokens: generated,
        });
    }
    Ok(out)
}

fn parse_logprobs(l: &ChoiceLogprobs) -> Option<Vec<TokenLogprob>> {
    if let Some(content) = &l.content {
        return Some(
            content
                .iter()
                .map(|e| TokenLogprob {
                    token: e.token.clone(),
                    logprob: e.logprob.unwrap_or(f64::NEG_INFINITY) as f32,
                })
                .collect(),
        );
    }
    let (toks, lps) = (l.tokens.as_ref()?, l.token_logprobs.as_ref()?);
    Some(
        toks.iter()
            .zip(lps)
            .map(|(t, lp)| TokenLogprob {
                token: t.clone(),
                logprob: lp.unwrap_or(f64::NEG_INFINITY) as f32,
            })
            .collect(),
    )
}

/// Top alternatives at the first generated position: `[(token text, logprob)]`.
fn first_top_logprobs(answer: &Answer) -> Vec<(String, f32)> {
    let Some(l) = answer.choices.first().and_then(|c| c.logprobs.as_ref()) else {
        return Vec::new();
    };
    if let Some(first) = l
        .content
        .as_ref()
        .and_then(|c| c.first())
        .and_then(|e| e.top_logprobs.as_ref())
    {
        return first
            .iter()
            .map(|e| (e.token.clone(), e.logprob as f32))
            .collect();
    }
    if let Some(Some(first)) = l.top_logprobs.as_ref().and_then(|t| t.first()) {
        return first
            .iter()
            .map(|(k, lp)| (k.clone(), *lp as f32))
            .collect();
    }
    Vec::new()
}

#[async_trait]
impl Generator for HttpGenerator {
    fn name(&self) -> String {
        format!(
            "http:{}{}",
            self.cfg.model.as_deref().unwrap_or("model"),
            if self.endpoints.len() > 1 {
                format!("@{} endpoints", self.endpoints.len())
            } else {
                format!("@{}", self.endpoints[0].base)
            }
        )
    }

    async fn generate(&self, req: &GenerateRequest) -> Result<Vec<Completion>, EngineError> {
        let n = req.params.n;
        let part = self.generate_partial(req).await;
        match part.error {
            None => Ok(part.completions),
            Some(EngineError::Http { endpoint, reason }) => Err(EngineError::Http {
                endpoint,
                reason: format!(
                    "{reason} ({} of {n} samples had finished; generate_partial keeps them)",
                    part.completions.len()
                ),
            }),
            Some(e) => Err(e),
        }
    }

    async fn generate_partial(&self, req: &GenerateRequest) -> PartialGeneration {
        let n = req.params.n;
        let per = self.cfg.samples_per_request.max(1);
        let chunks: Vec<(usize, usize)> =
            (0..n).step_by(per).map(|f| (f, per.min(n - f))).collect();
        let futs = chunks
            .iter()
            .map(|&(first, k)| async move { (first, self.run_chunk(req, first, k).await) });
        let results = futures::future::join_all(futs).await;
        let mut completions = Vec::new();
        let mut indices = Vec::new();
        let mut error = None;
        for (first, r) in results {
            match r {
                Ok(cs) => {
                    for (j, c) in cs.into_iter().enumerate() {
                        indices.push(first + j);
                        completions.push(c);
                    }
                }
                Err(e) => {
                    if error.is_none() {
                        error = Some(e);
                    }
                }
            }
        }
        PartialGeneration {
            completions,
            indices,
            error,
        }
    }

    async fn next_token_logprobs(
        &self,
        prompt: &Prompt,
        assistant_prefix: &str,
        candidates: &[String],
    ) -> Result<NextTokenLogprobs, EngineError> {
        let (top, prompt_tokens, _) = self.top_next(prompt, assistant_prefix).await?;
        // A candidate's first token is the longest listed token that starts it.
        let logprobs = candidates
            .iter()
            .map(|c| {
                top.iter()
                    .filter(|(t, _)| !t.is_empty() && c.starts_with(t.as_str()))
                    .max_by_key(|(t, _)| t.len())
                    .map(|(_, l)| *l)
            })
            .collect();
        Ok(NextTokenLogprobs {
            logprobs,
            prompt_tokens,
        })
    }

    /// Teacher forcing through the server's top log-probabilities, one request per token:
    /// after `prompt` + `assistant_prefix` + what is read so far, the next token is the
    /// longest listed token that starts the rest of `continuation`, with its listed
    /// log-probability. OpenAI-compatible servers return log-probabilities of generated
    /// tokens only (prompt log-probabilities are not part of the API), so this is what any
    /// of them can answer. A rest whose next token is not among the server's top
    /// `top_logprobs` is an error naming the position (raise `top_logprobs`); at most
    /// [`MAX_PROBED_TOKENS`] requests per continuation.
    async fn continuation_logprobs(
        &self,
        prompt: &Prompt,
        assistant_prefix: &str,
        continuation: &str,
    ) -> Result<stepwise_model::ContinuationLogprobs, EngineError> {
        let mut read = String::new();
        let mut out = stepwise_model::ContinuationLogprobs::default();
        while read.len() < continuation.len() {
            if out.calls >= MAX_PROBED_TOKENS {
                return Err(EngineError::InvalidRequest(format!(
                    "a continuation of more than {MAX_PROBED_TOKENS} tokens cannot be read \
                     from a server token by token"
                )));
            }
            let rest = &continuation[read.len()..];
            let (top, prompt_tokens, url) = self
                .top_next(prompt, &format!("{assistant_prefix}{read}"))
                .await?;
            out.calls += 1;
            out.prompt_tokens += prompt_tokens;
            let Some((token, logprob)) = top
                .iter()
                .filter(|(t, _)| !t.is_empty() && rest.starts_with(t.as_str()))
                .max_by_key(|(t, _)| t.len())
            else {
                let shown: String = rest.chars().take(16).collect();
                return Err(EngineError::Http {
                    endpoint: url,
                    reason: format!(
                        "the continuation's next token at byte {} ({shown:?}) is not among \
                         the server's top {} log-probabilities (raise top_logprobs)",
                        read.len(),
                        top.len()
                    ),
                });
            };
            out.tokens.push(stepwise_model::TokenLogprob {
                token: token.clone(),
                logprob: *logprob,
            });
            read.push_str(token);
        }
        Ok(out)
    }
}

/// Requests one continuation may cost when read token by token from a server.
pub const MAX_PROBED_TOKENS: u64 = 512;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_completions_with_logprobs_and_usage() {
        let v = json!({
            "choices": [
                {"index": 1, "text": " b", "finish_reason": "length",
                 "logprobs": {"tokens": [" b"], "token_logprobs": [-0.5]}},
                {"index": 0, "text": "a", "finish_reason": "stop", "stop_reason": "\n\n",
                 "logprobs": {"tokens": ["a"], "token_logprobs": [-0.25]}}
            ],
            "usage": {"prompt_tokens": 7, "completion_tokens": 2}
        });
        let p = SamplingParams {
            logprobs: true,
            ..Default::default()
        };
        let cs = parse_completions(&v, &p, 2).unwrap();
        assert_eq!(cs[0].text, "a");
        assert_eq!(cs[0].finish, FinishReason::Stop("\n\n".into()));
        assert_eq!(cs[1].finish, FinishReason::Length);
        assert_eq!(cs[0].prompt_tokens, 7);
        assert_eq!(cs[1].generated_tokens, 1);
        assert_eq!(cs[0].logprobs.as_ref().unwrap()[0].logprob, -0.25);
        assert!(parse_completions(&v, &p, 3).is_err());
        assert!(parse_completions(&json!({"error": "x"}), &p, 1).is_err());
    }

    #[test]
    fn parses_chat_logprobs_and_top() {
        let v = json!({"choices": [{"index": 0, "message": {"content": "Yes"}, "finish_reason": "stop",
            "logprobs": {"content": [{"token": "Yes", "logprob": -0.1,
                "top_logprobs": [{"token": "Yes", "logprob": -0.1}, {"token": "No", "logprob": -2.4}]}]}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1}});
        let p = SamplingParams {
            logprobs: true,
            ..Default::default()
        };
        let cs = parse_completions(&v, &p, 1).unwrap();
        assert_eq!(cs[0].text, "Yes");
        assert_eq!(cs[0].finish, FinishReason::Eos);
        assert_eq!(cs[0].generated_tokens, 1);
        let top = first_top_logprobs(&parse_answer(&v).unwrap());
        assert_eq!(top.len(), 2);
        let legacy = json!({"choices": [{"logprobs": {"top_logprobs": [{" Yes": -0.3}]}}]});
        assert_eq!(
            first_top_logprobs(&parse_answer(&legacy).unwrap()),
            vec![(" Yes".to_string(), -0.3)]
        );
    }

    #[test]
    fn fields_of_the_wrong_type_are_errors_naming_the_field() {
        let p = SamplingParams::default();
        for (answer, field) in [
            (
                json!({"choices": [{"index": 0, "message": {"content": 123}, "finish_reason": "stop"}]}),
                "choices[0].message.content",
            ),
            (
                json!({"choices": [{"index": 0, "text": "a", "finish_reason": 7}]}),
                "choices[0].finish_reason",
            ),
            (
                json!({"choices": [{"text": "a"}], "usage": {"prompt_tokens": "many"}}),
                "usage.prompt_tokens",
            ),
            (json!({"choices": {"text": "a"}}), "choices"),
        ] {
            let e = parse_completions(&answer, &p, 1).unwrap_err();
            assert!(
                e.starts_with(&format!("answer field `{field}`: invalid type")),
                "{e}"
            );
        }
        // absent and null fields are fine: null content is an empty text
        let ok = json!({"choices": [{"message": {"content": null}, "finish_reason": null, "stop_reason": null}]});
        let cs = parse_completions(&ok, &p, 1).unwrap();
        assert_eq!(
            (cs[0].text.as_str(), &cs[0].finish),
            ("", &FinishReason::Length)
        );
        let eos = json!({"choices": [{"text": "a", "finish_reason": "stop", "stop_reason": null}]});
        let with_stop = SamplingParams {
            stop: vec!["\n\n".into()],
            ..Default::default()
        };
        assert_eq!(
            parse_completions(&eos, &with_stop, 1).unwrap()[0].finish,
            FinishReason::Eos
        );
        let unsaid = json!({"choices": [{"text": "a", "finish_reason": "stop"}]});
        assert_eq!(
            parse_completions(&unsaid, &with_stop, 1).unwrap()[0].finish,
            FinishReason::Stop("\n\n".into())
        );
    }

    #[test]
    fn base_urls_are_normalized() {
        assert_eq!(normalize_base("http://h:1/v1/"), "http://h:1");
        assert_eq!(normalize_base("http://h:1"), "http://h:1");
        assert!(HttpGenerator::new(HttpConfig::new(vec!["h:1".into()])).is_err());
        assert!(HttpGenerator::new(HttpConfig::new(vec![])).is_err());
    }

    #[tokio::test]
    async fn unreachable_server_retries_then_fails_clearly() {
        // Port 9 on loopback: nothing listens (connection refused).
        let mut cfg = HttpConfig::new(vec!["http://127.0.0.1:9".into()]);
        cfg.max_retries = 2;
        cfg.backoff_base = Duration::from_millis(5);
        let g = HttpGenerator::new(cfg).unwrap();
        let req = GenerateRequest {
            prompt: Prompt::Text("hi".into()),
            assistant_prefix: String::new(),
            params: SamplingParams {
                n: 2,
                max_tokens: 4,
                ..Default::default()
            },
        };
        let part = g.generate_partial(&req).await;
        assert!(part.completions.is_empty());
        let e = part.error.unwrap().to_string();
        assert!(e.contains("gave up after 3 attempts"), "{e}");
        assert_eq!(g.stats().retries.load(Ordering::Relaxed), 4);
        let e = g.generate(&req).await.unwrap_err().to_string();
        assert!(e.contains("0 of 2 samples"), "{e}");
    }
}
