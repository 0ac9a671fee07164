//! The engine thread: it owns the model and its contexts, takes jobs from a channel and
//! runs them in batched steps.
//!
//! - `admission`: jobs become requests (checked, tokenized), requests get a prefix sequence
//!   and start their samples while KV sequences and cells allow; cancelled or failed
//!   requests give theirs back.
//! - `step`: one `decode` over every live sample and chunks of pending prompts, then
//!   sampling, answering probes and retiring what finished.

mod admission;
mod step;

use crate::config::{EmbeddedConfig, GenOptions, ModelInfo, RequestStats};
use crate::embeddings::Embeddings;
use crate::prefix_cache::PrefixCache;
use crate::prompt::Prompts;
use crate::stop::StopMatcher;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::{LogOptions, send_logs_to_tracing};
use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::sync::OnceLock;
use std::sync::mpsc::{Receiver, Sender, SyncSender, TryRecvError};
use std::time::{Duration, Instant};
use stepwise_model::{
    Completion, EngineError, FinishReason, GenerateRequest, NextTokenLogprobs, PieceEmbeddings,
    Prompt, SamplingParams, TokenLogprob,
};
use tokio::sync::oneshot;

/// Batching counters the engine thread updates after every decode and the generator reads
/// (`Generator::batch_stats`).
#[derive(Debug, Default)]
pub(crate) struct BatchCounters {
    batches: std::sync::atomic::AtomicU64,
    sequences: std::sync::atomic::AtomicU64,
    max_sequences: std::sync::atomic::AtomicU64,
}

impl BatchCounters {
    /// One decode of `sequences` sequences.
    fn record(&self, sequences: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        self.batches.fetch_add(1, Relaxed);
        self.sequences.fetch_add(sequences, Relaxed);
        self.max_sequences.fetch_max(sequences, Relaxed);
    }

    pub(crate) fn snapshot(&self) -> stepwise_model::BatchStats {
        use std::sync::atomic::Ordering::Relaxed;
        stepwise_model::BatchStats {
            decode_batches: self.batches.load(Relaxed),
            sequences: self.sequences.load(Relaxed),
            max_sequences: self.max_sequences.load(Relaxed),
        }
    }
}

/// Where the engine sends the answer to a job.
pub(crate) type Reply<T> = oneshot::Sender<Result<T, EngineError>>;

/// Work for the engine thread, with the channel for its answer.
pub(crate) enum Job {
    Generate {
        req: GenerateRequest,
        opts: GenOptions,
        reply: Reply<(Vec<Completion>, RequestStats)>,
    },
    Probe {
        prompt: Prompt,
        prefix: String,
        candidates: Vec<String>,
        reply: Reply<NextTokenLogprobs>,
    },
    FullLogprobs {
        prompt: Prompt,
        prefix: String,
        reply: Reply<Vec<f32>>,
    },
    Embed {
        prompt: Prompt,
        prefix: String,
        reply: Reply<Vec<f32>>,
    },
    EmbedPieces {
        prompt: Prompt,
        pieces: Vec<String>,
        reply: Reply<PieceEmbeddings>,
    },
    Tokenize {
        text: String,
        reply: Reply<Vec<u32>>,
    },
    Continuation {
        prompt: Prompt,
        prefix: String,
        continuation: String,
        reply: Reply<stepwise_model::ContinuationLogprobs>,
    },
}

/// The process-wide llama.cpp backend, initialized once (its logs go to `tracing`).
pub(crate) fn backend() -> Result<&'static LlamaBackend, EngineError> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            send_logs_to_tracing(LogOptions::default());
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| EngineError::Setup(format!("llama.cpp backend: {e}")))
}

/// Starts the engine thread for `cfg` and waits until the model is loaded.
pub(crate) fn start(
    cfg: EmbeddedConfig,
) -> Result<(Sender<Job>, ModelInfo, std::sync::Arc<BatchCounters>), EngineError> {
    backend()?;
    let (tx, rx) = std::sync::mpsc::channel();
    let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
    let counters = std::sync::Arc::new(BatchCounters::default());
    let engine_counters = std::sync::Arc::clone(&counters);
    std::thread::Builder::new()
        .name("stepwise-llama".into())
        .spawn(move || engine_thread(cfg, rx, ready_tx, engine_counters))
        .map_err(|e| EngineError::Setup(format!("cannot start the engine thread: {e}")))?;
    let info = ready_rx
        .recv()
        .map_err(|_| EngineError::Internal("engine thread died while loading".into()))??;
    Ok((tx, info, counters))
}

fn engine_thread(
    cfg: EmbeddedConfig,
    rx: Receiver<Job>,
    ready: SyncSender<Result<ModelInfo, EngineError>>,
    counters: std::sync::Arc<BatchCounters>,
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
    let mut engine = match Engine::new(&model, &cfg, threads, counters) {
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

/// Running totals of the engine thread (for attributing time to decode vs sampling).
#[derive(Debug, Clone, Copy, Default)]
struct EngineClock {
    steps: usize,
    decode: Duration,
    sample: Duration,
}

/// What a request asks for, and where its answer goes.
enum Kind {
    Generate {
        params: SamplingParams,
        opts: GenOptions,
        reply: Reply<(Vec<Completion>, RequestStats)>,
    },
    Probe {
        candidates: Vec<Option<LlamaToken>>,
        reply: Reply<NextTokenLogprobs>,
    },
    Full {
        reply: Reply<Vec<f32>>,
    },
}

impl Kind {
    /// Whether the caller stopped waiting (the request can be dropped).
    fn closed(&self) -> bool {
        match self {
            Kind::Generate { reply, .. } => reply.is_closed(),
            Kind::Probe { reply, .. } => reply.is_closed(),
            Kind::Full { reply } => reply.is_closed(),
        }
    }

    /// Most tokens one sample of the request generates.
    fn max_tokens(&self) -> usize {
        match self {
            Kind::Generate { params, .. } => params.max_tokens as usize,
            _ => 1,
        }
    }

    /// Answers the caller with `e`.
    fn fail(self, e: EngineError) {
        match self {
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

/// A job that needs the main context: its prompt tokens and its progress.
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

impl Request {
    /// Marks the prompt as in the KV cache now.
    fn prefill_done(&mut self, clock: EngineClock) {
        self.prefilled = true;
        self.stats.prefill = self.submitted.elapsed();
        self.clock_at_prefill = clock;
    }
}

/// One live sequence: a sample of a request, decoding token by token.
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

impl Sample {
    /// Sample `index` of request `r`, in sequence `seq` (which holds the prompt but its last
    /// token). Probes and full distributions get a one-token sample without a sampler.
    fn start(r: &Request, index: usize, seq: i32) -> Self {
        let (sampler, logprobs, stop, stop_strings, max_tokens, ignore_eos) = match &r.kind {
            Kind::Generate { params, opts, .. } => (
                Some(crate::sampling::make_sampler(params, index)),
                params.logprobs.then(Vec::new),
                StopMatcher::new(&params.stop),
                params.stop.clone(),
                params.max_tokens as usize,
                opts.ignore_eos,
            ),
            _ => (None, None, StopMatcher::default(), Vec::new(), 1, false),
        };
        let last = r.tokens.len() - 1;
        Self {
            req: r.id,
            index,
            seq,
            sampler,
            pending: r.tokens[last],
            pos: last as i32,
            batch_idx: -1,
            history: r.tokens[..last].to_vec(),
            generated: Vec::new(),
            logprobs,
            stop,
            stop_strings,
            max_tokens,
            ignore_eos,
            own: 0,
        }
    }

    /// The pending token was just decoded: samples the next one. Returns why the sample is
    /// done, if it is.
    fn advance(
        &mut self,
        ctx: &LlamaContext<'_>,
        model: &LlamaModel,
        n_ctx: usize,
    ) -> Option<FinishReason> {
        let idx = self.batch_idx;
        // The pending token is now in this sequence's KV.
        self.history.push(self.pending);
        self.own += 1;
        let sampler = self.sampler.as_mut()?;
        let tok = sampler.sample(ctx, idx);
        if let Some(lp) = self.logprobs.as_mut() {
            lp.push(crate::sampling::token_logprob(ctx, model, idx, tok));
        }
        self.generated.push(tok.0 as u32);
        let vocab = model.vocab();
        if vocab.is_eog(tok) && !self.ignore_eos {
            return Some(FinishReason::Eos);
        }
        let piece = vocab.token_to_piece(tok, false, None);
        if let Some(k) = self.stop.push(&piece) {
            let stop = self.stop_strings.get(k).cloned().unwrap_or_default();
            return Some(FinishReason::Stop(stop));
        }
        if self.generated.len() >= self.max_tokens || (self.pos + 1) as usize >= n_ctx {
            return Some(FinishReason::Length);
        }
        self.pending = tok;
        self.pos += 1;
        None
    }

    /// KV cells this sample holds or may still need.
    fn kv_reserved(&self) -> usize {
        self.own + self.max_tokens.saturating_sub(self.generated.len()) + 1
    }
}

struct Engine<'m> {
    model: &'m LlamaModel,
    ctx: LlamaContext<'m>,
    embeddings: Embeddings<'m>,
    reader: crate::reading::Reader<'m>,
    prompts: Prompts<'m>,
    batch: LlamaBatch<'static>,
    info: ModelInfo,
    cfg: EmbeddedConfig,
    cache: PrefixCache,
    pending: VecDeque<Request>,
    requests: Vec<Request>,
    samples: Vec<Sample>,
    next_id: u64,
    n_ctx: usize,
    timing: EngineClock,
    counters: std::sync::Arc<BatchCounters>,
}

impl<'m> Engine<'m> {
    fn new(
        model: &'m LlamaModel,
        cfg: &EmbeddedConfig,
        threads: usize,
        counters: std::sync::Arc<BatchCounters>,
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
        let (prompts, template) = Prompts::of_model(model, cfg.default_system_prompt.clone());
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
            chat_template: template,
            system_prompt: prompts.system_prompt().map(str::to_string),
            threads,
            ctx_size: n_ctx as u32,
            deterministic: cfg.deterministic,
        };
        Ok(Self {
            model,
            ctx,
            embeddings: Embeddings::new(model, threads, n_ctx, n_batch),
            reader: crate::reading::Reader::new(model, threads, n_ctx, n_batch),
            prompts,
            batch: LlamaBatch::new(n_batch as usize, 1),
            info,
            cfg: EmbeddedConfig {
                n_batch,
                n_seq_max,
                ..cfg.clone()
            },
            cache: PrefixCache::new(n_seq_max, cfg.prefix_cache_entries),
            pending: VecDeque::new(),
            requests: Vec::new(),
            samples: Vec::new(),
            next_id: 0,
            n_ctx,
            timing: EngineClock::default(),
            counters,
        })
    }

    fn busy(&self) -> bool {
        !self.pending.is_empty() || !self.requests.is_empty()
    }

    /// Takes jobs and runs steps until the channel closes and the last request is done.
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

    /// KV cells in use or reserved: cached prefixes plus what live samples hold or may need.
    fn kv_used(&self) -> usize {
        self.cache.cells() + self.samples.iter().map(Sample::kv_reserved).sum::<usize>()
    }
}
