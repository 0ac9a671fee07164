//! Embedded backend: llama.cpp through `llama-cpp-2`.
//!
//! One model, one context with many KV sequences, owned by a dedicated engine thread. Async
//! callers submit jobs over a channel; every engine step gathers the next token of *all* live
//! samples of *all* requests plus chunks of pending prompts into one `decode` call
//! (continuous batching).
//!
//! Prefix sharing: the prompt of a request (all tokens but the last) is decoded once into a
//! cache sequence; each of its `n` samples starts from a whole-sequence copy of it. Cache
//! sequences and finished samples stay in an LRU prefix cache, so a later request whose tokens
//! extend a cached sequence (the same prompt again, or a search-tree child whose assistant
//! prefix extends its parent's text) copies the longest common prefix and decodes only the
//! rest. Partial copies are safe with unified KV (the default); without it the engine copies
//! the whole sequence and trims the tail, which llama.cpp supports in both modes.
//!
//! Sampling is per sample: chain `top_k → top_p → temp → dist(seed_i)` with
//! `seed_i = mix(seed, i)`, so a sample's tokens do not depend on what else is in the batch.

use crate::stop::StopMatcher;
use crate::{
    Completion, EngineError, FinishReason, GenerateRequest, Generator, NextTokenLogprobs,
    PieceEmbeddings, Prompt, SamplingParams, TokenLogprob, sample_seed,
};
use async_trait::async_trait;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::{LlamaContextParams, LlamaPoolingType};
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::{DecodeError, LogOptions, send_logs_to_tracing};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};
use stepwise_model::template::{render_chatml, role_name, with_default_system};
use tokio::sync::oneshot;

/// How the embedded backend is set up.
#[derive(Debug, Clone)]
pub struct EmbeddedConfig {
    pub model_path: PathBuf,
    /// CPU threads for decoding (both single-token and batch); default: all cores.
    pub threads: Option<usize>,
    /// KV cache size in tokens, shared by all sequences (live samples and cached prefixes).
    pub ctx_size: u32,
    /// KV sequence slots (live samples + cached prefixes).
    pub n_seq_max: u32,
    /// Most tokens in one decode call.
    pub n_batch: u32,
    /// Unified KV cache (needed for cheap partial prefix copies; faster with long shared prefixes).
    pub kv_unified: bool,
    /// Cached prefix sequences kept for reuse after their requests finish (0 disables reuse
    /// across requests; the prompt is still shared by the samples of one request).
    pub prefix_cache_entries: usize,
    /// System prompt added to chat prompts that have none. `None`: the one found in the
    /// model's chat template (SmolLM2's), if any.
    pub default_system_prompt: Option<String>,
}

impl EmbeddedConfig {
    pub fn new(model_path: impl Into<PathBuf>) -> Self {
        Self {
            model_path: model_path.into(),
            threads: None,
            ctx_size: 8_192,
            n_seq_max: 64,
            n_batch: 512,
            kv_unified: true,
            prefix_cache_entries: 24,
            default_system_prompt: None,
        }
    }
}

/// Options beyond [`SamplingParams`] (benchmarks).
#[derive(Debug, Clone, Copy, Default)]
pub struct GenOptions {
    /// Keep sampling past end-of-sequence tokens (fixed-length benchmarks).
    pub ignore_eos: bool,
}

/// What one request cost inside the engine.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestStats {
    /// Prompt tokens (prompt + assistant prefix).
    pub prompt_tokens: usize,
    /// Prompt tokens whose KV came from the prefix cache.
    pub reused_prompt_tokens: usize,
    /// Prompt tokens this request decoded (once, whatever `n`).
    pub decoded_prompt_tokens: usize,
    /// From submission until the prompt was decoded and the first samples started.
    pub prefill: Duration,
    /// From submission until the last sample finished.
    pub total: Duration,
    /// After the prompt was decoded: engine steps (decode calls) until the request finished,
    /// and the time those steps spent in llama.cpp's `decode` and in sampling (for all requests
    /// sharing the steps; the rest of `total - prefill` is batch building and bookkeeping).
    pub gen_steps: usize,
    pub gen_decode: Duration,
    pub gen_sample: Duration,
}

/// Running totals of the engine thread (for attributing time to decode vs sampling).
#[derive(Debug, Clone, Copy, Default)]
struct EngineClock {
    steps: usize,
    decode: Duration,
    sample: Duration,
}

/// Facts about the loaded model.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    pub path: PathBuf,
    pub name: String,
    pub n_vocab: usize,
    pub n_ctx_train: u32,
    pub n_embd: usize,
    pub n_params: u64,
    pub size_bytes: u64,
    pub chat_template: Option<String>,
    pub system_prompt: Option<String>,
    pub threads: usize,
    pub ctx_size: u32,
}

enum Job {
    Generate {
        req: GenerateRequest,
        opts: GenOptions,
        reply: oneshot::Sender<Result<(Vec<Completion>, RequestStats), EngineError>>,
    },
    Probe {
        prompt: Prompt,
        prefix: String,
        candidates: Vec<String>,
        reply: oneshot::Sender<Result<NextTokenLogprobs, EngineError>>,
    },
    FullLogprobs {
        prompt: Prompt,
        prefix: String,
        reply: oneshot::Sender<Result<Vec<f32>, EngineError>>,
    },
    Embed {
        prompt: Prompt,
        prefix: String,
        reply: oneshot::Sender<Result<Vec<f32>, EngineError>>,
    },
    EmbedPieces {
        prompt: Prompt,
        pieces: Vec<String>,
        reply: oneshot::Sender<Result<PieceEmbeddings, EngineError>>,
    },
    Tokenize {
        text: String,
        reply: oneshot::Sender<Vec<u32>>,
    },
}

/// The embedded llama.cpp generator. Cheap to share (`Arc`); all work runs on its engine thread.
pub struct LlamaGenerator {
    tx: Mutex<Sender<Job>>,
    info: ModelInfo,
}

fn backend() -> Result<&'static LlamaBackend, EngineError> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            send_logs_to_tracing(LogOptions::default());
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| EngineError::Setup(format!("llama.cpp backend: {e}")))
}

impl LlamaGenerator {
    /// Loads the model and starts the engine thread.
    pub fn open(cfg: EmbeddedConfig) -> Result<Self, EngineError> {
        crate::fetch::check_gguf(&cfg.model_path)?;
        backend()?;
        let (tx, rx) = std::sync::mpsc::channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("stepwise-llama".into())
            .spawn(move || engine_thread(cfg, rx, ready_tx))
            .map_err(|e| EngineError::Setup(format!("cannot start the engine thread: {e}")))?;
        let info = ready_rx
            .recv()
            .map_err(|_| EngineError::Internal("engine thread died while loading".into()))??;
        Ok(Self {
            tx: Mutex::new(tx),
            info,
        })
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn send(&self, job: Job) -> Result<(), EngineError> {
        let tx = self
            .tx
            .lock()
            .map_err(|_| EngineError::Internal("engine channel poisoned".into()))?;
        tx.send(job)
            .map_err(|_| EngineError::Internal("the engine thread has stopped".into()))
    }

    /// Generates with extra options and returns the engine's accounting.
    pub async fn generate_detailed(
        &self,
        req: &GenerateRequest,
        opts: GenOptions,
    ) -> Result<(Vec<Completion>, RequestStats), EngineError> {
        let (reply, rx) = oneshot::channel();
        self.send(Job::Generate {
            req: req.clone(),
            opts,
            reply,
        })?;
        rx.await
            .map_err(|_| EngineError::Internal("engine dropped the request".into()))?
    }

    /// Log-probabilities over the whole vocabulary for the next token (log-softmax of the logits).
    pub async fn next_token_distribution(
        &self,
        prompt: &Prompt,
        assistant_prefix: &str,
    ) -> Result<Vec<f32>, EngineError> {
        let (reply, rx) = oneshot::channel();
        self.send(Job::FullLogprobs {
            prompt: prompt.clone(),
            prefix: assistant_prefix.to_string(),
            reply,
        })?;
        rx.await
            .map_err(|_| EngineError::Internal("engine dropped the request".into()))?
    }

    /// Token ids of `text` (special tokens parsed, no BOS added).
    pub async fn tokenize(&self, text: &str) -> Result<Vec<u32>, EngineError> {
        let (reply, rx) = oneshot::channel();
        self.send(Job::Tokenize {
            text: text.to_string(),
            reply,
        })?;
        rx.await
            .map_err(|_| EngineError::Internal("engine dropped the request".into()))
    }
}

#[async_trait]
impl Generator for LlamaGenerator {
    fn name(&self) -> String {
        format!("llama.cpp:{}", self.info.name)
    }

    async fn generate(&self, req: &GenerateRequest) -> Result<Vec<Completion>, EngineError> {
        Ok(self.generate_detailed(req, GenOptions::default()).await?.0)
    }

    async fn next_token_logprobs(
        &self,
        prompt: &Prompt,
        assistant_prefix: &str,
        candidates: &[String],
    ) -> Result<NextTokenLogprobs, EngineError> {
        let (reply, rx) = oneshot::channel();
        self.send(Job::Probe {
            prompt: prompt.clone(),
            prefix: assistant_prefix.to_string(),
            candidates: candidates.to_vec(),
            reply,
        })?;
        rx.await
            .map_err(|_| EngineError::Internal("engine dropped the request".into()))?
    }

    async fn embed(
        &self,
        prompt: &Prompt,
        assistant_prefix: &str,
    ) -> Result<Vec<f32>, EngineError> {
        let (reply, rx) = oneshot::channel();
        self.send(Job::Embed {
            prompt: prompt.clone(),
            prefix: assistant_prefix.to_string(),
            reply,
        })?;
        rx.await
            .map_err(|_| EngineError::Internal("engine dropped the request".into()))?
    }

    async fn embed_pieces(
        &self,
        prompt: &Prompt,
        pieces: &[String],
    ) -> Result<PieceEmbeddings, EngineError> {
        let (reply, rx) = oneshot::channel();
        self.send(Job::EmbedPieces {
            prompt: prompt.clone(),
            pieces: pieces.to_vec(),
            reply,
        })?;
        rx.await
            .map_err(|_| EngineError::Internal("engine dropped the request".into()))?
    }
}

/// A one-sequence context with embeddings on, beside the generation context (an existing
/// context cannot be switched into embedding mode). `sizes` = (n_ctx, n_batch, n_ubatch).
fn embedding_context<'m>(
    model: &'m LlamaModel,
    threads: usize,
    sizes: (u32, u32, u32),
    pooling: LlamaPoolingType,
    what: &str,
) -> Result<LlamaContext<'m>, EngineError> {
    let (n_ctx, n_batch, n_ubatch) = sizes;
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(n_ctx))
        .with_n_batch(n_batch)
        .with_n_ubatch(n_ubatch)
        .with_n_seq_max(1)
        .with_embeddings(true)
        .with_pooling_type(pooling)
        .with_n_threads(threads as i32)
        .with_n_threads_batch(threads as i32);
    model
        .new_context(backend()?, params)
        .map_err(|e| EngineError::Setup(format!("{what} context: {e}")))
}

fn engine_thread(
    cfg: EmbeddedConfig,
    rx: Receiver<Job>,
    ready: std::sync::mpsc::SyncSender<Result<ModelInfo, EngineError>>,
) {
    let setup = || -> Result<(LlamaModel, usize), EngineError> {
        let be = backend()?;
        let model = LlamaModel::load_from_file(be, &cfg.model_path, &LlamaModelParams::default())
            .map_err(|e| EngineError::Model {
            path: cfg.model_path.display().to_string(),
            reason: format!("llama.cpp could not load it: {e}"),
        })?;
        let threads = cfg
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .max(1);
        Ok((model, threads))
    };
    let (model, threads) = match setup() {
        Ok(x) => x,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let mut engine = match Engine::new(&model, &cfg, threads) {
        Ok(e) => e,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    if ready.send(Ok(engine.info.clone())).is_err() {
        return;
    }
    engine.run(rx);
}

/// A KV sequence kept for prefix reuse.
struct CacheEntry {
    seq: i32,
    /// Tokens whose KV this sequence holds, positions 0..len.
    tokens: Vec<LlamaToken>,
    /// Cells this entry added beyond what it copied (for the KV budget).
    own: usize,
    last_used: u64,
    /// Requests that still need it (prefilling into it or copying from it).
    pins: usize,
}

enum Kind {
    Generate {
        params: SamplingParams,
        opts: GenOptions,
        reply: oneshot::Sender<Result<(Vec<Completion>, RequestStats), EngineError>>,
    },
    Probe {
        candidates: Vec<Option<LlamaToken>>,
        reply: oneshot::Sender<Result<NextTokenLogprobs, EngineError>>,
    },
    Full {
        reply: oneshot::Sender<Result<Vec<f32>, EngineError>>,
    },
}

impl Kind {
    fn closed(&self) -> bool {
        match self {
            Kind::Generate { reply, .. } => reply.is_closed(),
            Kind::Probe { reply, .. } => reply.is_closed(),
            Kind::Full { reply } => reply.is_closed(),
        }
    }
    fn max_tokens(&self) -> usize {
        match self {
            Kind::Generate { params, .. } => params.max_tokens as usize,
            _ => 1,
        }
    }
}

struct Request {
    id: u64,
    kind: Kind,
    tokens: Vec<LlamaToken>,
    /// Cache entry (by seq id) holding `tokens[..len-1]`, once admitted.
    prefix_seq: Option<i32>,
    /// Whether prefill into `prefix_seq` is complete.
    prefilled: bool,
    next_sample: usize,
    results: Vec<Option<Completion>>,
    live: usize,
    stats: RequestStats,
    submitted: Instant,
    /// Engine totals when the prompt was in the KV cache.
    clock_at_prefill: EngineClock,
}

struct Sample {
    req: u64,
    index: usize,
    seq: i32,
    sampler: Option<LlamaSampler>,
    /// Token to decode next, at position `pos`.
    pending: LlamaToken,
    pos: i32,
    /// Index of `pending` in the current batch.
    batch_idx: i32,
    /// All tokens whose KV this sequence holds (for turning it into a cache entry).
    history: Vec<LlamaToken>,
    generated: Vec<u32>,
    logprobs: Option<Vec<TokenLogprob>>,
    stop: StopMatcher,
    stop_strings: Vec<String>,
    max_tokens: usize,
    ignore_eos: bool,
    own: usize,
}

struct Engine<'m> {
    model: &'m LlamaModel,
    ctx: LlamaContext<'m>,
    embed_ctx: Option<LlamaContext<'m>>,
    /// Per-token hidden states (pooling none) for `embed_pieces`; created on first use.
    piece_ctx: Option<LlamaContext<'m>>,
    batch: LlamaBatch<'static>,
    info: ModelInfo,
    cfg: EmbeddedConfig,
    threads: usize,
    system_prompt: Option<String>,
    has_template: bool,
    free_seqs: Vec<i32>,
    cache: Vec<CacheEntry>,
    pending: std::collections::VecDeque<Request>,
    requests: Vec<Request>,
    samples: Vec<Sample>,
    clock: u64,
    next_id: u64,
    n_ctx: usize,
    timing: EngineClock,
}

/// Finds the default system prompt a Jinja chat template inserts when the conversation has
/// none (SmolLM2: "You are a helpful AI assistant named SmolLM, trained by Hugging Face").
/// llama.cpp's built-in template engine does not run Jinja, so the embedded backend adds it.
pub fn default_system_prompt_of_template(template: &str) -> Option<String> {
    const OPEN: &str = "<|im_start|>system\n";
    let start = template.find(OPEN)? + OPEN.len();
    let rest = &template[start..];
    let end = rest.find("<|im_end|>")?;
    let text = &rest[..end];
    // A template that prints the user's system message has Jinja syntax here, not a literal.
    if text.is_empty() || text.contains("{{") || text.contains("{%") || text.contains('\'') {
        return None;
    }
    Some(text.to_string())
}

fn lcp(a: &[LlamaToken], b: &[LlamaToken]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

fn log_softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits.iter().map(|&l| f64::from(l - max).exp()).sum();
    let lse = max + sum.ln() as f32;
    logits.iter().map(|&l| l - lse).collect()
}

fn logprob_of(logits: &[f32], tok: usize) -> Option<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits.iter().map(|&l| f64::from(l - max).exp()).sum();
    logits.get(tok).map(|&l| l - max - sum.ln() as f32)
}

impl<'m> Engine<'m> {
    fn new(
        model: &'m LlamaModel,
        cfg: &EmbeddedConfig,
        threads: usize,
    ) -> Result<Self, EngineError> {
        let n_seq_max = cfg.n_seq_max.clamp(2, 256);
        let n_batch = cfg.n_batch.max(n_seq_max).max(32);
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(cfg.ctx_size.max(256)))
            .with_n_batch(n_batch)
            .with_n_ubatch(n_batch.min(512))
            .with_n_seq_max(n_seq_max)
            .with_n_threads(threads as i32)
            .with_n_threads_batch(threads as i32)
            .with_kv_unified(cfg.kv_unified);
        let ctx = model
            .new_context(backend()?, params)
            .map_err(|e| EngineError::Setup(format!("llama.cpp context: {e}")))?;
        let n_ctx = ctx.n_ctx() as usize;
        let template = model
            .chat_template(None)
            .ok()
            .and_then(|t| t.to_string().ok());
        let system_prompt = cfg.default_system_prompt.clone().or_else(|| {
            template
                .as_deref()
                .and_then(default_system_prompt_of_template)
        });
        let name = cfg
            .model_path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".into());
        let info = ModelInfo {
            path: cfg.model_path.clone(),
            name,
            n_vocab: model.n_vocab().max(0) as usize,
            n_ctx_train: model.n_ctx_train(),
            n_embd: model.n_embd().max(0) as usize,
            n_params: model.n_params(),
            size_bytes: model.size(),
            chat_template: template.clone(),
            system_prompt: system_prompt.clone(),
            threads,
            ctx_size: n_ctx as u32,
        };
        Ok(Self {
            model,
            ctx,
            embed_ctx: None,
            piece_ctx: None,
            batch: LlamaBatch::new(n_batch as usize, 1),
            info,
            cfg: EmbeddedConfig {
                n_batch,
                n_seq_max,
                ..cfg.clone()
            },
            threads,
            system_prompt,
            has_template: template.is_some(),
            free_seqs: (0..n_seq_max as i32).rev().collect(),
            cache: Vec::new(),
            pending: Default::default(),
            requests: Vec::new(),
            samples: Vec::new(),
            clock: 0,
            next_id: 0,
            n_ctx,
            timing: EngineClock::default(),
        })
    }

    fn busy(&self) -> bool {
        !self.pending.is_empty() || !self.requests.is_empty()
    }

    fn run(&mut self, rx: Receiver<Job>) {
        loop {
            if !self.busy() {
                match rx.recv() {
                    Ok(job) => self.accept(job),
                    Err(_) => return,
                }
            }
            loop {
                match rx.try_recv() {
                    Ok(job) => self.accept(job),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        if !self.busy() {
                            return;
                        }
                        break;
                    }
                }
            }
            self.step();
        }
    }

    // ---------------------------------------------------------------- prompts

    fn render(&self, prompt: &Prompt, prefix: &str) -> Result<String, EngineError> {
        let mut text = match prompt {
            Prompt::Text(t) => t.clone(),
            Prompt::Chat(msgs) => {
                if msgs.is_empty() {
                    return Err(EngineError::InvalidRequest(
                        "chat prompt has no messages".into(),
                    ));
                }
                let msgs = with_default_system(msgs, self.system_prompt.as_deref());
                let tmpl = if self.has_template {
                    self.model.chat_template(None).ok()
                } else {
                    None
                };
                match tmpl {
                    Some(t) => {
                        let chat = msgs
                            .iter()
                            .map(|m| {
                                LlamaChatMessage::new(role_name(m.role).into(), m.content.clone())
                            })
                            .collect::<Result<Vec<_>, _>>()
                            .map_err(|e| {
                                EngineError::InvalidRequest(format!("chat message: {e}"))
                            })?;
                        self.model
                            .apply_chat_template(&t, &chat, true)
                            .map_err(|e| {
                                EngineError::InvalidRequest(format!("chat template: {e}"))
                            })?
                    }
                    None => render_chatml(&msgs),
                }
            }
        };
        text.push_str(prefix);
        Ok(text)
    }

    fn tokenize_prompt(
        &self,
        prompt: &Prompt,
        prefix: &str,
    ) -> Result<Vec<LlamaToken>, EngineError> {
        let text = self.render(prompt, prefix)?;
        let toks = self.model.vocab().tokenize(text.as_bytes(), true, true);
        if toks.is_empty() {
            return Err(EngineError::InvalidRequest("the prompt is empty".into()));
        }
        Ok(toks)
    }

    // ---------------------------------------------------------------- jobs

    fn accept(&mut self, job: Job) {
        match job {
            Job::Generate { req, opts, reply } => {
                if let Err(e) = validate(&req.params) {
                    let _ = reply.send(Err(e));
                    return;
                }
                let tokens = match self.tokenize_prompt(&req.prompt, &req.assistant_prefix) {
                    Ok(t) => t,
                    Err(e) => {
                        let _ = reply.send(Err(e));
                        return;
                    }
                };
                let need = tokens.len() + req.params.max_tokens as usize;
                if need > self.n_ctx {
                    let _ = reply.send(Err(EngineError::ContextFull {
                        needed: need,
                        available: self.n_ctx,
                    }));
                    return;
                }
                if req.params.n == 0 || req.params.max_tokens == 0 {
                    let done = (0..req.params.n)
                        .map(|_| Completion {
                            text: String::new(),
                            token_ids: vec![],
                            logprobs: req.params.logprobs.then(Vec::new),
                            finish: FinishReason::Length,
                            prompt_tokens: tokens.len() as u64,
                            generated_tokens: 0,
                        })
                        .collect();
                    let stats = RequestStats {
                        prompt_tokens: tokens.len(),
                        ..Default::default()
                    };
                    let _ = reply.send(Ok((done, stats)));
                    return;
                }
                let n = req.params.n;
                self.enqueue(
                    Kind::Generate {
                        params: req.params,
                        opts,
                        reply,
                    },
                    tokens,
                    n,
                );
            }
            Job::Probe {
                prompt,
                prefix,
                candidates,
                reply,
            } => match self.tokenize_prompt(&prompt, &prefix) {
                Ok(tokens) => {
                    let vocab = self.model.vocab();
                    let candidates = candidates
                        .iter()
                        .map(|c| vocab.tokenize(c.as_bytes(), false, false).first().copied())
                        .collect();
                    self.enqueue(Kind::Probe { candidates, reply }, tokens, 1);
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            Job::FullLogprobs {
                prompt,
                prefix,
                reply,
            } => match self.tokenize_prompt(&prompt, &prefix) {
                Ok(tokens) => self.enqueue(Kind::Full { reply }, tokens, 1),
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            Job::Embed {
                prompt,
                prefix,
                reply,
            } => {
                let r = self.embed(&prompt, &prefix);
                let _ = reply.send(r);
            }
            Job::EmbedPieces {
                prompt,
                pieces,
                reply,
            } => {
                let r = self.embed_pieces(&prompt, &pieces);
                let _ = reply.send(r);
            }
            Job::Tokenize { text, reply } => {
                let toks = self.model.vocab().tokenize(text.as_bytes(), false, true);
                let _ = reply.send(toks.iter().map(|t| t.0 as u32).collect());
            }
        }
    }

    fn enqueue(&mut self, kind: Kind, tokens: Vec<LlamaToken>, n: usize) {
        self.next_id += 1;
        let stats = RequestStats {
            prompt_tokens: tokens.len(),
            ..Default::default()
        };
        self.pending.push_back(Request {
            id: self.next_id,
            kind,
            tokens,
            prefix_seq: None,
            prefilled: false,
            next_sample: 0,
            results: vec![None; n],
            live: 0,
            stats,
            submitted: Instant::now(),
            clock_at_prefill: self.timing,
        });
    }

    fn embed(&mut self, prompt: &Prompt, prefix: &str) -> Result<Vec<f32>, EngineError> {
        let tokens = self.tokenize_prompt(prompt, prefix)?;
        const EMBED_CTX: u32 = 2048;
        if tokens.len() > EMBED_CTX as usize {
            return Err(EngineError::ContextFull {
                needed: tokens.len(),
                available: EMBED_CTX as usize,
            });
        }
        if self.embed_ctx.is_none() {
            self.embed_ctx = Some(embedding_context(
                self.model,
                self.threads,
                (EMBED_CTX, EMBED_CTX, EMBED_CTX),
                LlamaPoolingType::Last,
                "embedding",
            )?);
        }
        let ctx = self
            .embed_ctx
            .as_mut()
            .ok_or_else(|| EngineError::Internal("embedding context missing".into()))?;
        ctx.clear_kv_cache();
        let mut batch = LlamaBatch::new(tokens.len(), 1);
        batch
            .add_sequence(&tokens, 0, false)
            .map_err(|e| EngineError::Internal(format!("embedding batch: {e}")))?;
        ctx.decode(&mut batch)
            .map_err(|e| EngineError::Internal(format!("embedding decode: {e}")))?;
        let v = ctx
            .embeddings_seq_ith(0)
            .map_err(|e| EngineError::Internal(format!("embedding output: {e}")))?
            .to_vec();
        ctx.clear_kv_cache();
        Ok(v)
    }

    /// Hidden states at the last token of each piece, from one pass over prompt + pieces on a
    /// context of its own (embeddings on, pooling none), sized like the main context and fed
    /// in `n_batch` chunks.
    fn embed_pieces(
        &mut self,
        prompt: &Prompt,
        pieces: &[String],
    ) -> Result<PieceEmbeddings, EngineError> {
        let mut tokens = self.tokenize_prompt(prompt, "")?;
        let mut ends = Vec::with_capacity(pieces.len());
        {
            let vocab = self.model.vocab();
            for p in pieces {
                if !p.is_empty() {
                    tokens.extend(vocab.tokenize(p.as_bytes(), false, false));
                }
                ends.push(tokens.len() - 1);
            }
        }
        if tokens.len() > self.n_ctx {
            return Err(EngineError::ContextFull {
                needed: tokens.len(),
                available: self.n_ctx,
            });
        }
        let read = tokens.len() as u64;
        if pieces.is_empty() {
            return Ok(PieceEmbeddings::default());
        }
        // ggml picks its kernels by the shape of a decode call, and a call of fewer than ~64
        // tokens moves hidden states by ~0.4 (of ~20) against the same position in a longer
        // call. So every call here has at least MIN_DECODE tokens: chunks are that long at
        // least, and the last one is padded with filler tokens, which cannot change earlier
        // positions (causal attention). A piece's vector is then the same whether later
        // pieces are in the pass or not.
        const MIN_DECODE: usize = 64;
        let n_batch = self.cfg.n_batch.max(MIN_DECODE as u32);
        if self.piece_ctx.is_none() {
            self.piece_ctx = Some(embedding_context(
                self.model,
                self.threads,
                (self.n_ctx as u32, n_batch, n_batch.min(512)),
                LlamaPoolingType::None,
                "per-token embedding",
            )?);
        }
        let ctx = self
            .piece_ctx
            .as_mut()
            .ok_or_else(|| EngineError::Internal("per-token embedding context missing".into()))?;
        ctx.clear_kv_cache();
        let nb = n_batch as usize;
        let rem = tokens.len() % nb;
        if rem != 0 && rem < MIN_DECODE {
            let fill = tokens[tokens.len() - 1];
            let padded = (tokens.len() - rem + MIN_DECODE).min(self.n_ctx);
            tokens.resize(padded.max(tokens.len()), fill);
        }
        // Where the context left no room for padding, the last chunk takes a token from the
        // one before it rather than decode one alone.
        let mut bounds: Vec<(usize, usize)> = (0..tokens.len())
            .step_by(nb)
            .map(|s| (s, (s + nb).min(tokens.len())))
            .collect();
        if let [.., prev, last] = bounds.as_mut_slice()
            && last.1 - last.0 == 1
        {
            prev.1 -= 1;
            last.0 -= 1;
        }
        let mut wanted = vec![false; tokens.len()];
        for &e in &ends {
            wanted[e] = true;
        }
        let mut at: std::collections::HashMap<usize, Vec<f32>> = Default::default();
        let mut batch = LlamaBatch::new(nb, 1);
        let result = (|| {
            for &(start, end) in &bounds {
                let chunk = &tokens[start..end];
                batch.clear();
                for (j, &t) in chunk.iter().enumerate() {
                    batch
                        // llama.cpp outputs every token of an embedding context anyway
                        // (and warns when not asked to).
                        .add(t, (start + j) as i32, &[0], true)
                        .map_err(|e| EngineError::Internal(format!("embedding batch: {e}")))?;
                }
                ctx.decode(&mut batch)
                    .map_err(|e| EngineError::Internal(format!("embedding decode: {e}")))?;
                for j in 0..chunk.len() {
                    if wanted[start + j] {
                        let v = ctx.embeddings_ith(j as i32).map_err(|e| {
                            EngineError::Internal(format!("embedding output at {}: {e}", start + j))
                        })?;
                        at.insert(start + j, v.to_vec());
                    }
                }
            }
            Ok::<(), EngineError>(())
        })();
        ctx.clear_kv_cache();
        result?;
        let vectors = ends
            .iter()
            .map(|e| {
                at.get(e)
                    .cloned()
                    .ok_or_else(|| EngineError::Internal(format!("no hidden state for token {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PieceEmbeddings {
            vectors,
            prompt_tokens: read,
        })
    }

    // ---------------------------------------------------------------- KV bookkeeping

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    fn kv_used(&self) -> usize {
        let cached: usize = self.cache.iter().map(|e| e.own).sum();
        let live: usize = self
            .samples
            .iter()
            .map(|s| s.own + s.max_tokens.saturating_sub(s.generated.len()) + 1)
            .sum();
        cached + live
    }

    fn release_seq(&mut self, seq: i32) {
        let _ = self.ctx.clear_kv_cache_seq(Some(seq as u32), None, None);
        self.free_seqs.push(seq);
    }

    /// Evicts the least recently used unpinned cache entry. Returns false if none.
    fn evict_one(&mut self) -> bool {
        let victim = self
            .cache
            .iter()
            .enumerate()
            .filter(|(_, e)| e.pins == 0)
            .min_by_key(|(_, e)| e.last_used)
            .map(|(i, _)| i);
        match victim {
            Some(i) => {
                let e = self.cache.swap_remove(i);
                self.release_seq(e.seq);
                true
            }
            None => false,
        }
    }

    fn take_seq(&mut self) -> Option<i32> {
        if self.free_seqs.is_empty() {
            self.evict_one();
        }
        self.free_seqs.pop()
    }

    fn trim_cache(&mut self) {
        while self.cache.iter().filter(|e| e.pins == 0).count() > self.cfg.prefix_cache_entries {
            if !self.evict_one() {
                break;
            }
        }
    }

    // ---------------------------------------------------------------- scheduling

    /// Moves pending requests into the active set: picks a cache sequence for the prompt prefix
    /// and copies the longest cached common prefix into it.
    fn admit(&mut self) {
        while let Some(req) = self.pending.front() {
            if req.kind.closed() {
                self.pending.pop_front();
                continue;
            }
            let target = &req.tokens[..req.tokens.len() - 1];
            // Best source: longest common prefix among cached sequences.
            let best = self
                .cache
                .iter()
                .enumerate()
                .map(|(i, e)| (i, lcp(&e.tokens, target)))
                .max_by_key(|&(_, l)| l);
            // A prompt that another request is still decoding: wait for it rather than decode twice.
            let waiting_on_prefill = self.requests.iter().any(|r| {
                !r.prefilled
                    && r.prefix_seq.is_some_and(|s| {
                        let have = self
                            .cache
                            .iter()
                            .find(|e| e.seq == s)
                            .map_or(0, |e| e.tokens.len());
                        let would = lcp(&r.tokens[..r.tokens.len() - 1], target);
                        would > have && would > best.map_or(0, |b| b.1)
                    })
            });
            if waiting_on_prefill {
                break;
            }
            let Some(mut req) = self.pending.pop_front() else {
                break;
            };
            let target_len = req.tokens.len() - 1;
            let now = self.tick();
            match best {
                Some((i, l)) if l == target_len && self.cache[i].tokens.len() == target_len => {
                    // Exact prefix already cached.
                    self.cache[i].pins += 1;
                    self.cache[i].last_used = now;
                    req.prefix_seq = Some(self.cache[i].seq);
                    req.prefilled = true;
                    req.stats.reused_prompt_tokens = l;
                    req.stats.prefill = req.submitted.elapsed();
                    req.clock_at_prefill = self.timing;
                }
                _ => {
                    let l = best.map_or(0, |b| b.1);
                    let src = best.filter(|b| b.1 > 0).map(|b| self.cache[b.0].seq);
                    // Pin the source while a sequence is taken, so that it is not the one evicted.
                    if let Some(i) = best.filter(|b| b.1 > 0).map(|b| b.0) {
                        self.cache[i].pins += 1;
                        self.cache[i].last_used = now;
                    }
                    let seq = self.take_seq();
                    if let Some(e) = self.cache.iter_mut().find(|e| Some(e.seq) == src) {
                        e.pins = e.pins.saturating_sub(1);
                    }
                    let Some(seq) = seq else {
                        // No sequence slot: try again when samples finish.
                        self.pending.push_front(req);
                        break;
                    };
                    if let Some(src) = src {
                        if self.cfg.kv_unified {
                            let _ = self.ctx.kv_cache_seq_cp(src, seq, Some(0), Some(l as u32));
                        } else {
                            let _ = self.ctx.kv_cache_seq_cp(src, seq, None, None);
                            let _ = self.ctx.kv_cache_seq_rm(seq, Some(l as u32), None);
                        }
                    }
                    self.cache.push(CacheEntry {
                        seq,
                        tokens: req.tokens[..l].to_vec(),
                        own: 0,
                        last_used: now,
                        pins: 1,
                    });
                    req.prefix_seq = Some(seq);
                    req.stats.reused_prompt_tokens = l;
                    req.prefilled = l == target_len;
                    if req.prefilled {
                        req.stats.prefill = req.submitted.elapsed();
                        req.clock_at_prefill = self.timing;
                    }
                }
            }
            self.requests.push(req);
        }
    }

    /// Starts samples of prefilled requests while sequence slots and KV budget allow.
    fn start_samples(&mut self) {
        for ri in 0..self.requests.len() {
            loop {
                let r = &self.requests[ri];
                if !r.prefilled || r.next_sample >= r.results.len() {
                    break;
                }
                let need = r.kind.max_tokens() + 1;
                while self.kv_used() + need > self.n_ctx && self.evict_one() {}
                let any_live = !self.samples.is_empty();
                if any_live && self.kv_used() + need > self.n_ctx {
                    return;
                }
                let Some(seq) = self.take_seq() else {
                    return;
                };
                let r = &mut self.requests[ri];
                let Some(src) = r.prefix_seq else {
                    self.free_seqs.push(seq);
                    break;
                };
                let _ = self.ctx.kv_cache_seq_cp(src, seq, None, None);
                let index = r.next_sample;
                r.next_sample += 1;
                r.live += 1;
                let last = r.tokens[r.tokens.len() - 1];
                let pos = (r.tokens.len() - 1) as i32;
                let history = r.tokens[..r.tokens.len() - 1].to_vec();
                let sample = match &r.kind {
                    Kind::Generate { params, opts, .. } => Sample {
                        req: r.id,
                        index,
                        seq,
                        sampler: Some(make_sampler(params, index)),
                        pending: last,
                        pos,
                        batch_idx: -1,
                        history,
                        generated: Vec::new(),
                        logprobs: params.logprobs.then(Vec::new),
                        stop: StopMatcher::new(&params.stop),
                        stop_strings: params.stop.clone(),
                        max_tokens: params.max_tokens as usize,
                        ignore_eos: opts.ignore_eos,
                        own: 0,
                    },
                    _ => Sample {
                        req: r.id,
                        index,
                        seq,
                        sampler: None,
                        pending: last,
                        pos,
                        batch_idx: -1,
                        history,
                        generated: Vec::new(),
                        logprobs: None,
                        stop: StopMatcher::default(),
                        stop_strings: Vec::new(),
                        max_tokens: 1,
                        ignore_eos: false,
                        own: 0,
                    },
                };
                if r.next_sample >= r.results.len() {
                    // All samples started: the request no longer needs its prefix pinned.
                    if let Some(e) = self.cache.iter_mut().find(|e| e.seq == src) {
                        e.pins = e.pins.saturating_sub(1);
                    }
                }
                self.samples.push(sample);
            }
        }
    }

    fn drop_cancelled(&mut self) {
        let cancelled: Vec<u64> = self
            .requests
            .iter()
            .filter(|r| r.kind.closed())
            .map(|r| r.id)
            .collect();
        for id in cancelled {
            self.abort_request(id, None);
        }
    }

    /// Ends a request early: frees its samples and sends `err` (if the caller still listens).
    fn abort_request(&mut self, id: u64, err: Option<EngineError>) {
        let seqs: Vec<i32> = self
            .samples
            .iter()
            .filter(|s| s.req == id)
            .map(|s| s.seq)
            .collect();
        self.samples.retain(|s| s.req != id);
        for s in seqs {
            self.release_seq(s);
        }
        if let Some(pos) = self.requests.iter().position(|r| r.id == id) {
            let r = self.requests.swap_remove(pos);
            if let Some(ps) = r.prefix_seq {
                let still_pinned = r.next_sample < r.results.len();
                if let Some(ei) = self.cache.iter().position(|e| e.seq == ps) {
                    if still_pinned {
                        self.cache[ei].pins = self.cache[ei].pins.saturating_sub(1);
                    }
                    if !r.prefilled && self.cache[ei].pins == 0 {
                        // A half-decoded prefix is still a valid (shorter) cache entry.
                        if self.cache[ei].tokens.is_empty() {
                            let e = self.cache.swap_remove(ei);
                            self.release_seq(e.seq);
                        }
                    }
                }
            }
            if let Some(e) = err {
                match r.kind {
                    Kind::Generate { reply, .. } => {
                        let _ = reply.send(Err(e));
                    }
                    Kind::Probe { reply, .. } => {
                        let _ = reply.send(Err(e));
                    }
                    Kind::Full { reply } => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
        }
    }

    // ---------------------------------------------------------------- the step

    fn step(&mut self) {
        self.drop_cancelled();
        self.admit();
        self.start_samples();
        if self.samples.is_empty() && self.requests.iter().all(|r| r.prefilled) {
            if !self.requests.is_empty() || !self.pending.is_empty() {
                // Nothing can run: no slots or KV for anything. Fail the oldest request
                // rather than spin.
                if let Some(r) = self.requests.first().map(|r| r.id) {
                    self.abort_request(
                        r,
                        Some(EngineError::ContextFull {
                            needed: 0,
                            available: self.n_ctx,
                        }),
                    );
                } else if let Some(r) = self.pending.pop_front() {
                    let e = EngineError::Internal("no KV sequence slot available".into());
                    fail_kind(r.kind, e);
                }
            }
            return;
        }
        // Build the batch: one token per live sample, then prompt chunks.
        let mut prefill_plan: Vec<(usize, usize, usize)> = Vec::new(); // (request idx, from, to)
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.batch.clear();
            let mut ok = true;
            for s in self.samples.iter_mut() {
                s.batch_idx = self.batch.n_tokens();
                if self.batch.add(s.pending, s.pos, &[s.seq], true).is_err() {
                    ok = false;
                }
            }
            if !ok {
                tracing::error!("batch overflow with {} live samples", self.samples.len());
                return;
            }
            prefill_plan.clear();
            let mut room = self.cfg.n_batch as usize - self.batch.n_tokens() as usize;
            if attempt <= 2 {
                for (ri, r) in self.requests.iter().enumerate() {
                    if r.prefilled || room == 0 {
                        continue;
                    }
                    let Some(ps) = r.prefix_seq else { continue };
                    let have = self
                        .cache
                        .iter()
                        .find(|e| e.seq == ps)
                        .map_or(0, |e| e.tokens.len());
                    let target = r.tokens.len() - 1;
                    let to = target.min(have + room);
                    for p in have..to {
                        let _ = self.batch.add(r.tokens[p], p as i32, &[ps], false);
                    }
                    room -= to - have;
                    prefill_plan.push((ri, have, to));
                }
            }
            if self.batch.n_tokens() == 0 {
                return;
            }
            let t0 = Instant::now();
            let decoded = self.ctx.decode(&mut self.batch);
            self.timing.decode += t0.elapsed();
            match decoded {
                Ok(()) => {
                    self.timing.steps += 1;
                    break;
                }
                Err(DecodeError::NoKvCacheSlot) => {
                    tracing::debug!("KV cache full; evicting cached prefixes");
                    if self.evict_one() {
                        attempt = 0;
                        continue;
                    }
                    if attempt <= 2 && !prefill_plan.is_empty() && !self.samples.is_empty() {
                        // Let the live samples advance without the prompt chunks.
                        attempt = 2;
                        continue;
                    }
                    // Preempt the newest request.
                    let victim = self.requests.iter().map(|r| r.id).max();
                    match victim {
                        Some(id) => {
                            let needed = self
                                .requests
                                .iter()
                                .find(|r| r.id == id)
                                .map_or(0, |r| r.tokens.len() + r.kind.max_tokens());
                            self.abort_request(
                                id,
                                Some(EngineError::ContextFull {
                                    needed,
                                    available: self.n_ctx,
                                }),
                            );
                            if self.samples.is_empty() && self.requests.iter().all(|r| r.prefilled)
                            {
                                return;
                            }
                            attempt = 0;
                            continue;
                        }
                        None => return,
                    }
                }
                Err(e) => {
                    tracing::error!("llama.cpp decode failed: {e}");
                    let ids: Vec<u64> = self.requests.iter().map(|r| r.id).collect();
                    for id in ids {
                        self.abort_request(id, Some(EngineError::Internal(format!("decode: {e}"))));
                    }
                    return;
                }
            }
        }
        // Prompt chunks are in the KV now.
        for &(ri, from, to) in &prefill_plan {
            let Some(ps) = self.requests[ri].prefix_seq else {
                continue;
            };
            let toks = self.requests[ri].tokens[from..to].to_vec();
            if let Some(e) = self.cache.iter_mut().find(|e| e.seq == ps) {
                e.tokens.extend_from_slice(&toks);
                e.own += toks.len();
            }
            let r = &mut self.requests[ri];
            r.stats.decoded_prompt_tokens += to - from;
            if to == r.tokens.len() - 1 {
                r.prefilled = true;
                r.stats.prefill = r.submitted.elapsed();
                r.clock_at_prefill = self.timing;
            }
        }
        // Sample every live sequence.
        let t_sample = Instant::now();
        let mut finished: Vec<(usize, FinishReason)> = Vec::new();
        let mut probe_done: Vec<usize> = Vec::new();
        for si in 0..self.samples.len() {
            let idx = self.samples[si].batch_idx;
            let req_id = self.samples[si].req;
            let Some(ri) = self.requests.iter().position(|r| r.id == req_id) else {
                continue;
            };
            if !matches!(self.requests[ri].kind, Kind::Generate { .. }) {
                probe_done.push(si);
                continue;
            }
            let s = &mut self.samples[si];
            // The pending token is now in this sequence's KV.
            s.history.push(s.pending);
            s.own += 1;
            let Some(sampler) = s.sampler.as_mut() else {
                continue;
            };
            let tok = sampler.sample(&self.ctx, idx);
            if let Some(lp) = s.logprobs.as_mut() {
                let logits = self.ctx.get_logits_ith(idx);
                let v = logprob_of(logits, tok.0.max(0) as usize).unwrap_or(f32::NEG_INFINITY);
                let piece = self.model.vocab().token_to_piece(tok, false, None);
                lp.push(TokenLogprob {
                    token: String::from_utf8_lossy(&piece).into_owned(),
                    logprob: v,
                });
            }
            s.generated.push(tok.0 as u32);
            let vocab = self.model.vocab();
            if vocab.is_eog(tok) && !s.ignore_eos {
                finished.push((si, FinishReason::Eos));
                continue;
            }
            let piece = vocab.token_to_piece(tok, false, None);
            if let Some(k) = s.stop.push(&piece) {
                let stop = s.stop_strings.get(k).cloned().unwrap_or_default();
                finished.push((si, FinishReason::Stop(stop)));
                continue;
            }
            if s.generated.len() >= s.max_tokens || (s.pos + 1) as usize >= self.n_ctx {
                finished.push((si, FinishReason::Length));
                continue;
            }
            s.pending = tok;
            s.pos += 1;
        }
        self.timing.sample += t_sample.elapsed();
        for si in probe_done {
            let idx = self.samples[si].batch_idx;
            let req_id = self.samples[si].req;
            let s = &mut self.samples[si];
            s.history.push(s.pending);
            s.own += 1;
            let lps = log_softmax(self.ctx.get_logits_ith(idx));
            if let Some(pos) = self.requests.iter().position(|r| r.id == req_id) {
                let r = self.requests.swap_remove(pos);
                let prompt_tokens = r.tokens.len() as u64;
                tracing::debug!(
                    prompt_tokens,
                    reused = r.stats.reused_prompt_tokens,
                    decoded = r.stats.decoded_prompt_tokens,
                    waited_ms = r.submitted.elapsed().as_millis() as u64,
                    "probe done"
                );
                match r.kind {
                    Kind::Probe { candidates, reply } => {
                        let logprobs = candidates
                            .iter()
                            .map(|c| c.and_then(|t| lps.get(t.0.max(0) as usize).copied()))
                            .collect();
                        let _ = reply.send(Ok(NextTokenLogprobs {
                            logprobs,
                            prompt_tokens,
                        }));
                    }
                    Kind::Full { reply } => {
                        let _ = reply.send(Ok(lps));
                    }
                    Kind::Generate { reply, .. } => {
                        let _ =
                            reply.send(Err(EngineError::Internal("request kind mix-up".into())));
                    }
                }
            }
            finished.push((si, FinishReason::Length));
        }
        // Retire finished samples (highest index first so swap_remove keeps the others valid).
        finished.sort_by_key(|f| std::cmp::Reverse(f.0));
        let mut touched: Vec<u64> = Vec::new();
        for (si, reason) in finished {
            let s = self.samples.swap_remove(si);
            if let Some(r) = self.requests.iter_mut().find(|r| r.id == s.req) {
                if r.results[s.index].is_none() {
                    r.results[s.index] = Some(Completion {
                        text: s.stop.text(),
                        token_ids: s.generated.clone(),
                        logprobs: s.logprobs.clone(),
                        finish: reason,
                        prompt_tokens: r.tokens.len() as u64,
                        generated_tokens: s.generated.len() as u64,
                    });
                    r.live = r.live.saturating_sub(1);
                }
                touched.push(r.id);
            }
            // Keep the finished sequence as a prefix for continuations of this sample.
            if self.cfg.prefix_cache_entries > 0 && !s.history.is_empty() {
                let now = self.tick();
                self.cache.push(CacheEntry {
                    seq: s.seq,
                    tokens: s.history,
                    own: s.own,
                    last_used: now,
                    pins: 0,
                });
            } else {
                self.release_seq(s.seq);
            }
        }
        // Complete requests whose samples are all done.
        let done: Vec<usize> = self
            .requests
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                r.next_sample >= r.results.len()
                    && r.live == 0
                    && r.results.iter().all(Option::is_some)
            })
            .map(|(i, _)| i)
            .rev()
            .collect();
        for i in done {
            let mut r = self.requests.swap_remove(i);
            r.stats.total = r.submitted.elapsed();
            r.stats.gen_steps = self.timing.steps - r.clock_at_prefill.steps;
            r.stats.gen_decode = self.timing.decode - r.clock_at_prefill.decode;
            r.stats.gen_sample = self.timing.sample - r.clock_at_prefill.sample;
            if let Kind::Generate { reply, .. } = r.kind {
                let out: Vec<Completion> = r.results.into_iter().flatten().collect();
                let _ = reply.send(Ok((out, r.stats)));
            }
        }
        self.trim_cache();
    }
}

fn fail_kind(kind: Kind, e: EngineError) {
    match kind {
        Kind::Generate { reply, .. } => {
            let _ = reply.send(Err(e));
        }
        Kind::Probe { reply, .. } => {
            let _ = reply.send(Err(e));
        }
        Kind::Full { reply } => {
            let _ = reply.send(Err(e));
        }
    }
}

fn validate(p: &SamplingParams) -> Result<(), EngineError> {
    if !(p.temperature.is_finite() && p.temperature >= 0.0) {
        return Err(EngineError::InvalidRequest(format!(
            "temperature {} must be >= 0",
            p.temperature
        )));
    }
    if !(p.top_p.is_finite() && p.top_p > 0.0 && p.top_p <= 1.0) {
        return Err(EngineError::InvalidRequest(format!(
            "top_p {} must be in (0, 1]",
            p.top_p
        )));
    }
    if p.n > 4096 {
        return Err(EngineError::InvalidRequest(format!(
            "n = {} is too many samples for one request",
            p.n
        )));
    }
    Ok(())
}

fn make_sampler(p: &SamplingParams, index: usize) -> LlamaSampler {
    if p.temperature <= 0.0 {
        return LlamaSampler::greedy();
    }
    let mut chain = Vec::new();
    if p.top_k > 0 {
        chain.push(LlamaSampler::top_k(p.top_k.min(i32::MAX as u32) as i32));
    }
    if p.top_p < 1.0 {
        chain.push(LlamaSampler::top_p(p.top_p, 1));
    }
    chain.push(LlamaSampler::temp(p.temperature));
    chain.push(LlamaSampler::dist(sample_seed(p.seed, index)));
    LlamaSampler::chain_simple(chain)
}

/// Opens the default model (fetching it if needed) with default settings.
pub fn open_default(
    threads: Option<usize>,
    ctx_size: Option<u32>,
) -> Result<LlamaGenerator, EngineError> {
    let path = crate::fetch::ensure_default_model()?;
    open_path(&path, threads, ctx_size)
}

/// Opens a GGUF with default settings.
pub fn open_path(
    path: &Path,
    threads: Option<usize>,
    ctx_size: Option<u32>,
) -> Result<LlamaGenerator, EngineError> {
    let mut cfg = EmbeddedConfig::new(path);
    cfg.threads = threads;
    if let Some(c) = ctx_size {
        cfg.ctx_size = c;
    }
    LlamaGenerator::open(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_softmax_normalizes() {
        let l = vec![1.0f32, 2.0, 3.0, -50.0];
        let s: f32 = log_softmax(&l).iter().map(|x| x.exp()).sum();
        assert!((s - 1.0).abs() < 1e-5);
        assert!((logprob_of(&l, 2).unwrap() - log_softmax(&l)[2]).abs() < 1e-6);
        assert_eq!(
            lcp(
                &[LlamaToken(1), LlamaToken(2)],
                &[LlamaToken(1), LlamaToken(3)]
            ),
            1
        );
    }

    #[test]
    fn finds_smollm_default_system_prompt() {
        let t = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}";
        assert_eq!(
            default_system_prompt_of_template(t).as_deref(),
            Some("You are a helpful AI assistant named SmolLM, trained by Hugging Face")
        );
        assert_eq!(
            default_system_prompt_of_template(
                "{{ '<|im_start|>system\n' + message['content'] + '<|im_end|>' }}"
            ),
            None
        );
        assert_eq!(default_system_prompt_of_template("no chatml"), None);
    }
}
