//! The [`Generator`] trait and the plain data it takes and returns.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// Who speaks in a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions that frame the conversation.
    System,
    /// The person asking.
    User,
    /// The model.
    Assistant,
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Who speaks.
    pub role: Role,
    /// What they say.
    pub content: String,
}

impl ChatMessage {
    /// A system message.
    pub fn system(c: impl Into<String>) -> Self {
        Self {
            role: Role::System,
            content: c.into(),
        }
    }
    /// A user message.
    pub fn user(c: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: c.into(),
        }
    }
    /// An assistant message.
    pub fn assistant(c: impl Into<String>) -> Self {
        Self {
            role: Role::Assistant,
            content: c.into(),
        }
    }
}

/// What the model is asked to continue.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Prompt {
    /// Chat messages, rendered with the model's chat template and an open assistant turn.
    Chat(Vec<ChatMessage>),
    /// Raw text, passed as is.
    Text(String),
}

/// Sampling parameters: plain data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SamplingParams {
    /// Number of independent continuations.
    pub n: usize,
    /// Softmax temperature; 0 is greedy decoding.
    pub temperature: f32,
    /// Nucleus sampling threshold in (0, 1]; 1 disables it.
    pub top_p: f32,
    /// 0 disables top-k.
    pub top_k: u32,
    /// Most tokens generated per continuation.
    pub max_tokens: u32,
    /// Generation stops when any of these strings appears; the stop string is not included in the text.
    pub stop: Vec<String>,
    /// Seed of sample 0; sample i uses a seed derived from (seed, i) so results do not depend on batching.
    pub seed: u64,
    /// Return per-token log-probabilities of the sampled tokens.
    pub logprobs: bool,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            n: 1,
            temperature: 0.7,
            top_p: 1.0,
            top_k: 40,
            max_tokens: 256,
            stop: Vec::new(),
            seed: 0,
            logprobs: false,
        }
    }
}

/// Seed of sample `i` of a request seeded with `seed` (a SplitMix64 mix of both): backends
/// seed each sample with it, so a sample's tokens do not depend on what else is in the batch
/// or on how samples are spread over requests.
pub fn sample_seed(seed: u64, i: usize) -> u32 {
    let mut z = seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 32) as u32
}

/// A request for continuations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerateRequest {
    /// What the model is asked to continue.
    pub prompt: Prompt,
    /// Text the assistant has already written (e.g. the steps so far of a partial
    /// rationale); continuations extend it. Empty for a fresh answer. Backends
    /// reuse cached work for shared prompt + prefix (KV prefix sharing).
    pub assistant_prefix: String,
    /// How to sample.
    pub params: SamplingParams,
}

/// Why a continuation ended.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "reason", content = "detail")]
pub enum FinishReason {
    /// End-of-sequence token (the model finished its turn).
    Eos,
    /// One of the stop strings matched (the string is given).
    Stop(String),
    /// `max_tokens` was reached.
    Length,
}

/// Log-probability of one generated token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenLogprob {
    /// The token's text.
    pub token: String,
    /// Its natural-log probability under the model.
    pub logprob: f32,
}

/// One continuation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    /// Generated text, without the prompt, the assistant prefix or the stop string.
    pub text: String,
    /// Token ids, where the backend exposes them (empty otherwise).
    pub token_ids: Vec<u32>,
    /// Per-token log-probabilities, when requested.
    pub logprobs: Option<Vec<TokenLogprob>>,
    /// Why it ended.
    pub finish: FinishReason,
    /// Prompt tokens (prompt + assistant prefix) as the model saw them.
    pub prompt_tokens: u64,
    /// Tokens generated for this continuation.
    pub generated_tokens: u64,
}

/// Log-probabilities of given candidate next tokens (e.g. "Yes" and "No").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NextTokenLogprobs {
    /// One entry per candidate, in the order asked: the log-probability of the
    /// candidate's first token at the next position (`None` if the backend could
    /// not report it, e.g. not in the server's top-k).
    pub logprobs: Vec<Option<f32>>,
    /// Tokens the model read (prompt and assistant prefix).
    pub prompt_tokens: u64,
}

/// Log-probabilities of a given continuation, token by token, under the model
/// ([`Generator::continuation_logprobs`]): what a listener's confidence in an answer, or a
/// response's own confidence (DRM), is read from.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ContinuationLogprobs {
    /// The continuation's tokens in order, each with its text and its natural-log
    /// probability given everything before it. Their texts concatenate to the
    /// continuation.
    pub tokens: Vec<TokenLogprob>,
    /// Tokens the model read (prompt, assistant prefix and continuation).
    pub prompt_tokens: u64,
    /// Model calls made (1 for a backend that scores in one pass; one per token for a
    /// server probed token by token).
    pub calls: u64,
}

impl ContinuationLogprobs {
    /// `Σ log p` over the tokens: the log-probability of the whole continuation.
    pub fn sum(&self) -> f64 {
        self.tokens.iter().map(|t| t.logprob as f64).sum()
    }

    /// The tokens overlapping the byte range `range` of the continuation (a token that
    /// straddles its edge is in it), with the byte range of each.
    pub fn within(&self, range: std::ops::Range<usize>) -> Vec<&TokenLogprob> {
        let mut at = 0usize;
        let mut out = Vec::new();
        for t in &self.tokens {
            let end = at + t.token.len();
            if end > range.start && at < range.end {
                out.push(t);
            }
            at = end;
        }
        out
    }
}

/// Samples that finished, and the error that stopped the others (if any).
/// Lets callers keep finished work when a server dies mid-run.
#[derive(Debug)]
pub struct PartialGeneration {
    /// Finished continuations, in sample order (missing samples are left out).
    pub completions: Vec<Completion>,
    /// Sample indices (0..n) of `completions`, one per completion.
    pub indices: Vec<usize>,
    /// Why the rest did not finish; `None` when all `n` finished.
    pub error: Option<EngineError>,
}

/// Hidden states at the ends of the pieces of an assistant turn
/// ([`Generator::embed_pieces`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PieceEmbeddings {
    /// One vector per piece, in order.
    pub vectors: Vec<Vec<f32>>,
    /// Tokens the model read (prompt and pieces).
    pub prompt_tokens: u64,
}

/// Errors of the generation layer.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A model file is missing, malformed or could not be loaded.
    #[error("model file {path}: {reason}")]
    Model { path: String, reason: String },
    /// The backend cannot do what was asked (e.g. embeddings over HTTP).
    #[error("backend does not support {0}")]
    Unsupported(&'static str),
    /// A server did not answer, or answered with an error.
    #[error("request to {endpoint} failed: {reason}")]
    Http { endpoint: String, reason: String },
    /// The request itself is malformed (bad sampling parameters, empty prompt).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The prompt and the tokens asked for do not fit the context window.
    #[error("context window exceeded: {needed} tokens needed, {available} available")]
    ContextFull { needed: usize, available: usize },
    /// The backend could not be set up (threads, contexts, downloads, clients).
    #[error("model setup: {0}")]
    Setup(String),
    /// A failure inside the backend (a dead engine thread, a failed decode).
    #[error("engine: {0}")]
    Internal(String),
}

/// The model a backend's [`Generator::name`] names, without where it is served.
///
/// Names are `BACKEND:MODEL`, optionally followed by `@WHERE` (an endpoint URL, or a
/// count of endpoints): `http:Qwen2.5-Math-7B@http://gpu-a:8000` and
/// `http:Qwen2.5-Math-7B@3 endpoints` are the same model. Workers that share a run each
/// bring their own endpoints; what must match is this identity (and the stored sampling
/// and decoding mode), not where the model is served.
pub fn model_identity(name: &str) -> &str {
    name.split_once('@').map_or(name, |(model, _)| model)
}

/// How a backend batched its work so far: decode calls and the sequences in each (a live
/// sample's next token, or a chunk of a prompt being read). What `stepwise serve` shows in
/// `/metrics`, so batching of concurrent requests is observable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchStats {
    /// Decode calls (batches) run.
    pub decode_batches: u64,
    /// Sequences summed over every batch (mean per batch: `sequences / decode_batches`).
    pub sequences: u64,
    /// Most sequences in one batch.
    pub max_sequences: u64,
}

impl BatchStats {
    /// Mean sequences per decode batch (0 before the first).
    pub fn mean_sequences(&self) -> f64 {
        if self.decode_batches == 0 {
            0.0
        } else {
            self.sequences as f64 / self.decode_batches as f64
        }
    }
}

/// Produces continuations. Implementations are shared across tasks (`Arc<dyn Generator>`);
/// concurrent calls are expected and should be batched by the backend.
#[async_trait]
pub trait Generator: Send + Sync {
    /// Short name for logs and reports (e.g. `llama.cpp:SmolLM2-135M-Instruct.Q4_1`).
    fn name(&self) -> String;

    /// Whether this backend is reproducible: the same request (prompt, parameters, seed)
    /// always gets the same completions, log-probabilities and embeddings, whatever other
    /// requests are in flight or were served before. Runs record it in their configuration,
    /// so a resumed run is known to equal an uninterrupted one only when it holds.
    /// Default: false (a server batches as it likes).
    fn reproducible(&self) -> bool {
        false
    }

    /// How the backend batched its work so far, when it keeps count (the embedded engine
    /// does; a remote server's batching is not visible from here). Default: `None`.
    fn batch_stats(&self) -> Option<BatchStats> {
        None
    }

    /// `params.n` continuations of `prompt` + `assistant_prefix`.
    async fn generate(&self, req: &GenerateRequest) -> Result<Vec<Completion>, EngineError>;

    /// Like [`Generator::generate`], but keeps the samples that finished when others fail
    /// (e.g. a server went away after some requests completed).
    async fn generate_partial(&self, req: &GenerateRequest) -> PartialGeneration {
        match self.generate(req).await {
            Ok(completions) => PartialGeneration {
                indices: (0..completions.len()).collect(),
                completions,
                error: None,
            },
            Err(e) => PartialGeneration {
                completions: Vec::new(),
                indices: Vec::new(),
                error: Some(e),
            },
        }
    }

    /// Log-probabilities of candidate next tokens after `prompt` + `assistant_prefix`.
    async fn next_token_logprobs(
        &self,
        prompt: &Prompt,
        assistant_prefix: &str,
        candidates: &[String],
    ) -> Result<NextTokenLogprobs, EngineError>;

    /// Log-probability of each token of `continuation` after `prompt` + `assistant_prefix`
    /// (teacher forcing: the model reads the continuation, it does not sample it).
    /// Default: unsupported.
    async fn continuation_logprobs(
        &self,
        prompt: &Prompt,
        assistant_prefix: &str,
        continuation: &str,
    ) -> Result<ContinuationLogprobs, EngineError> {
        let _ = (prompt, assistant_prefix, continuation);
        Err(EngineError::Unsupported("continuation log-probabilities"))
    }

    /// Hidden state at the last token of `prompt` + `assistant_prefix` (for trained heads).
    async fn embed(
        &self,
        prompt: &Prompt,
        assistant_prefix: &str,
    ) -> Result<Vec<f32>, EngineError> {
        let _ = (prompt, assistant_prefix);
        Err(EngineError::Unsupported("embeddings"))
    }

    /// Hidden states at the end of each piece of an assistant turn, from one forward pass.
    ///
    /// The assistant content is the concatenation of `pieces`. The prompt is rendered as for
    /// [`Generator::embed`] (chat template applied, assistant turn opened); each piece is then
    /// tokenized on its own (no BOS) and appended, so token positions are the same whether a
    /// rationale is embedded whole or piece by piece. Element `k` of the result is the hidden
    /// state at the last token of piece `k` (an empty piece repeats the position before it).
    async fn embed_pieces(
        &self,
        prompt: &Prompt,
        pieces: &[String],
    ) -> Result<PieceEmbeddings, EngineError> {
        let _ = (prompt, pieces);
        Err(EngineError::Unsupported("per-piece embeddings"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_differ_per_sample_and_are_stable() {
        let a: Vec<u32> = (0..8).map(|i| sample_seed(42, i)).collect();
        let b: Vec<u32> = (0..8).map(|i| sample_seed(42, i)).collect();
        assert_eq!(a, b);
        let mut d = a.clone();
        d.sort_unstable();
        d.dedup();
        assert_eq!(d.len(), 8);
        assert_ne!(sample_seed(1, 0), sample_seed(2, 0));
    }

    #[test]
    fn the_model_identity_leaves_out_where_it_is_served() {
        let a = model_identity("http:Qwen2.5-Math-7B@http://gpu-a:8000");
        assert_eq!(a, "http:Qwen2.5-Math-7B");
        assert_eq!(a, model_identity("http:Qwen2.5-Math-7B@3 endpoints"));
        assert_ne!(
            a,
            model_identity("http:Qwen2.5-Math-1.5B@http://gpu-a:8000")
        );
        assert_eq!(
            model_identity("llama.cpp:SmolLM2-135M"),
            "llama.cpp:SmolLM2-135M"
        );
    }
}
