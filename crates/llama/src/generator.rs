//! [`LlamaGenerator`]: the async handle of the engine thread.
//!
//! Every call is one exchange: a [`Job`] carrying a reply channel goes to the engine thread,
//! and the caller awaits the answer ([`LlamaGenerator::call`]).

use crate::config::{EmbeddedConfig, GenOptions, ModelInfo, RequestStats};
use crate::engine::{self, Job, Reply};
use async_trait::async_trait;
use std::path::Path;
use std::sync::Mutex;
use std::sync::mpsc::Sender;
use stepwise_model::{
    Completion, EngineError, GenerateRequest, Generator, NextTokenLogprobs, PieceEmbeddings, Prompt,
};
use tokio::sync::oneshot;

/// The embedded llama.cpp generator. Cheap to share (`Arc`); all work runs on its engine thread.
pub struct LlamaGenerator {
    tx: Mutex<Sender<Job>>,
    info: ModelInfo,
    counters: std::sync::Arc<engine::BatchCounters>,
}

impl LlamaGenerator {
    /// Loads the model and starts the engine thread.
    pub fn open(cfg: EmbeddedConfig) -> Result<Self, EngineError> {
        crate::fetch::check_gguf(&cfg.model_path)?;
        let (tx, info, counters) = engine::start(cfg)?;
        Ok(Self {
            tx: Mutex::new(tx),
            info,
            counters,
        })
    }

    /// Facts about the loaded model.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Sends the job `make(reply)` to the engine thread and waits for its answer.
    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Job) -> Result<T, EngineError> {
        let (reply, rx) = oneshot::channel();
        {
            let tx = self
                .tx
                .lock()
                .map_err(|_| EngineError::Internal("engine channel poisoned".into()))?;
            tx.send(make(reply))
                .map_err(|_| EngineError::Internal("the engine thread has stopped".into()))?;
        }
        rx.await
            .map_err(|_| EngineError::Internal("engine dropped the request".into()))?
    }

    /// Generates with extra options and returns the engine's accounting.
    pub async fn generate_detailed(
        &self,
        req: &GenerateRequest,
        opts: GenOptions,
    ) -> Result<(Vec<Completion>, RequestStats), EngineError> {
        self.call(|reply| Job::Generate {
            req: req.clone(),
            opts,
            reply,
        })
        .await
    }

    /// Log-probabilities over the whole vocabulary for the next token (log-softmax of the logits).
    pub async fn next_token_distribution(
        &self,
        prompt: &Prompt,
        assistant_prefix: &str,
    ) -> Result<Vec<f32>, EngineError> {
        self.call(|reply| Job::FullLogprobs {
            prompt: prompt.clone(),
            prefix: assistant_prefix.to_string(),
            reply,
        })
        .await
    }

    /// Token ids of `text` (special tokens parsed, no BOS added).
    pub async fn tokenize(&self, text: &str) -> Result<Vec<u32>, EngineError> {
        self.call(|reply| Job::Tokenize {
            text: text.to_string(),
            reply,
        })
        .await
    }
}

#[async_trait]
impl Generator for LlamaGenerator {
    fn name(&self) -> String {
        format!("llama.cpp:{}", self.info.name)
    }

    fn reproducible(&self) -> bool {
        self.info.deterministic
    }

    fn batch_stats(&self) -> Option<stepwise_model::BatchStats> {
        Some(self.counters.snapshot())
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
        self.call(|reply| Job::Probe {
            prompt: prompt.clone(),
            prefix: assistant_prefix.to_string(),
            candidates: candidates.to_vec(),
            reply,
        })
        .await
    }

    async fn continuation_logprobs(
        &self,
        prompt: &Prompt,
        assistant_prefix: &str,
        continuation: &str,
    ) -> Result<stepwise_model::ContinuationLogprobs, EngineError> {
        self.call(|reply| Job::Continuation {
            prompt: prompt.clone(),
            prefix: assistant_prefix.to_string(),
            continuation: continuation.to_string(),
            reply,
        })
        .await
    }

    async fn embed(
        &self,
        prompt: &Prompt,
        assistant_prefix: &str,
    ) -> Result<Vec<f32>, EngineError> {
        self.call(|reply| Job::Embed {
            prompt: prompt.clone(),
            prefix: assistant_prefix.to_string(),
            reply,
        })
        .await
    }

    async fn embed_pieces(
        &self,
        prompt: &Prompt,
        pieces: &[String],
    ) -> Result<PieceEmbeddings, EngineError> {
        self.call(|reply| Job::EmbedPieces {
            prompt: prompt.clone(),
            pieces: pieces.to_vec(),
            reply,
        })
        .await
    }
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
