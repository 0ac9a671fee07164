//! Settings of the embedded backend and the facts and figures it reports.

use std::path::PathBuf;
use std::time::Duration;

/// How the embedded backend is set up.
#[derive(Debug, Clone)]
pub struct EmbeddedConfig {
    /// The GGUF file to load.
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
    /// Reproducible mode: every request runs alone on an emptied KV cache, so its
    /// completions depend only on the request (prompt, parameters, seed), never on which
    /// other requests are in flight or which prefixes earlier ones left cached. The
    /// samples of one request are still batched together and share its prompt.
    ///
    /// Why it is needed: llama.cpp's arithmetic is not batch-invariant. A prompt whose KV
    /// was copied from a cached prefix, or attention over KV cells laid out by a different
    /// history, gives logits that differ in the last bits, and sampling turns that into
    /// different text. Reproducible for the same GGUF, thread count and build.
    ///
    /// Cost: no batching across requests and no prefix reuse across requests (measured in
    /// `docs/results/deterministic.md`).
    pub deterministic: bool,
}

impl EmbeddedConfig {
    /// Default settings for the model at `model_path`.
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
            deterministic: false,
        }
    }
}

/// Options beyond [`SamplingParams`](stepwise_model::SamplingParams) (benchmarks).
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
    /// Time in `decode` during those steps.
    pub gen_decode: Duration,
    /// Time in sampling during those steps.
    pub gen_sample: Duration,
}

/// Facts about the loaded model.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    /// The GGUF file.
    pub path: PathBuf,
    /// Its file stem, used in the generator's name.
    pub name: String,
    /// Vocabulary size.
    pub n_vocab: usize,
    /// Context length the model was trained with.
    pub n_ctx_train: u32,
    /// Width of the hidden state (what embeddings return).
    pub n_embd: usize,
    /// Parameter count.
    pub n_params: u64,
    /// Size of the weights in bytes.
    pub size_bytes: u64,
    /// The chat template stored in the GGUF, if any.
    pub chat_template: Option<String>,
    /// System prompt added to chat prompts without one, if any.
    pub system_prompt: Option<String>,
    /// Decoding threads.
    pub threads: usize,
    /// KV cache size in tokens.
    pub ctx_size: u32,
    /// Whether the engine runs in reproducible mode ([`EmbeddedConfig::deterministic`]).
    pub deterministic: bool,
}
