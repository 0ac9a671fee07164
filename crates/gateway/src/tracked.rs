//! The policy as one request of the gateway sees it: a [`Generator`] around the real
//! backend that reports search progress, keeps what finished when an upstream fails, and
//! ends the search at its deadline, so the strategy (unchanged) answers with the best
//! candidate it has.
//!
//! When a call fails, the samples that had finished (the HTTP backend's
//! [`Generator::generate_partial`]) are handed to the strategy as if they were all it
//! asked for, the failure is recorded, and every later call answers at once with no
//! samples: a sampling strategy selects among what it got, a tree search stops expanding
//! and picks among its candidates. The same happens to calls past the deadline.

use async_trait::async_trait;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use stepwise_model::{
    Completion, EngineError, GenerateRequest, Generator, NextTokenLogprobs, PieceEmbeddings, Prompt,
};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// One step of progress: a policy call finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Policy calls finished so far in this request.
    pub calls: u64,
    /// Policy tokens generated so far.
    pub tokens: u64,
}

/// See the module documentation.
pub struct Tracked {
    inner: Arc<dyn Generator>,
    deadline: Instant,
    failure: Mutex<Option<String>>,
    calls: AtomicU64,
    tokens: AtomicU64,
    first_prompt_tokens: AtomicU64,
    progress: Option<mpsc::Sender<Progress>>,
}

impl Tracked {
    /// Wraps `inner` for one request ending at `deadline`; progress goes to `progress`
    /// when given (dropped, never queued, when the receiver lags).
    pub fn new(
        inner: Arc<dyn Generator>,
        deadline: Instant,
        progress: Option<mpsc::Sender<Progress>>,
    ) -> Self {
        Self {
            inner,
            deadline,
            failure: Mutex::new(None),
            calls: AtomicU64::new(0),
            tokens: AtomicU64::new(0),
            first_prompt_tokens: AtomicU64::new(0),
            progress,
        }
    }

    /// Why the search was cut short (an upstream failure, the deadline), if it was.
    pub fn failure(&self) -> Option<String> {
        self.failure.lock().ok().and_then(|f| f.clone())
    }

    /// Prompt tokens of the first completion: the client's prompt as the policy read it.
    pub fn prompt_tokens(&self) -> u64 {
        self.first_prompt_tokens.load(Ordering::Relaxed)
    }

    fn fail(&self, reason: String) {
        if let Ok(mut f) = self.failure.lock()
            && f.is_none()
        {
            tracing::warn!(%reason, "search cut short; answering with the best candidate so far");
            *f = Some(reason);
        }
    }

    fn record(&self, completions: &[Completion]) {
        if let Some(c) = completions.first() {
            let _ = self.first_prompt_tokens.compare_exchange(
                0,
                c.prompt_tokens,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
        let calls = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        let added: u64 = completions.iter().map(|c| c.generated_tokens).sum();
        let tokens = self.tokens.fetch_add(added, Ordering::Relaxed) + added;
        if let Some(tx) = &self.progress {
            let _ = tx.try_send(Progress { calls, tokens });
        }
    }
}

#[async_trait]
impl Generator for Tracked {
    fn name(&self) -> String {
        self.inner.name()
    }

    fn reproducible(&self) -> bool {
        self.inner.reproducible()
    }

    async fn generate(&self, req: &GenerateRequest) -> Result<Vec<Completion>, EngineError> {
        if self.failure().is_some() {
            return Ok(Vec::new());
        }
        if Instant::now() >= self.deadline {
            self.fail("deadline reached".into());
            return Ok(Vec::new());
        }
        let part = tokio::select! {
            p = self.inner.generate_partial(req) => p,
            () = tokio::time::sleep_until(self.deadline) => {
                self.fail("deadline reached".into());
                return Ok(Vec::new());
            }
        };
        if let Some(e) = part.error {
            self.fail(format!(
                "upstream failed ({} of {} samples of the call had finished): {e}",
                part.completions.len(),
                req.params.n
            ));
        }
        self.record(&part.completions);
        Ok(part.completions)
    }

    async fn next_token_logprobs(
        &self,
        prompt: &Prompt,
        assistant_prefix: &str,
        candidates: &[String],
    ) -> Result<NextTokenLogprobs, EngineError> {
        self.inner
            .next_token_logprobs(prompt, assistant_prefix, candidates)
            .await
    }

    async fn continuation_logprobs(
        &self,
        prompt: &Prompt,
        assistant_prefix: &str,
        continuation: &str,
    ) -> Result<stepwise_model::ContinuationLogprobs, EngineError> {
        self.inner
            .continuation_logprobs(prompt, assistant_prefix, continuation)
            .await
    }

    async fn embed(
        &self,
        prompt: &Prompt,
        assistant_prefix: &str,
    ) -> Result<Vec<f32>, EngineError> {
        self.inner.embed(prompt, assistant_prefix).await
    }

    async fn embed_pieces(
        &self,
        prompt: &Prompt,
        pieces: &[String],
    ) -> Result<PieceEmbeddings, EngineError> {
        self.inner.embed_pieces(prompt, pieces).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use stepwise_model::PartialGeneration;
    use stepwise_model::SamplingParams;
    use stepwise_model::scripted::ScriptedGenerator;

    /// Finishes the first `ok` samples of every call, then fails.
    struct HalfDead {
        ok: usize,
        inner: ScriptedGenerator,
    }

    #[async_trait]
    impl Generator for HalfDead {
        fn name(&self) -> String {
            "half-dead".into()
        }
        async fn generate(&self, _: &GenerateRequest) -> Result<Vec<Completion>, EngineError> {
            Err(EngineError::Internal("use generate_partial".into()))
        }
        async fn generate_partial(&self, req: &GenerateRequest) -> PartialGeneration {
            let mut r = req.clone();
            r.params.n = self.ok.min(req.params.n);
            let completions = self.inner.generate(&r).await.unwrap_or_default();
            PartialGeneration {
                indices: (0..completions.len()).collect(),
                completions,
                error: Some(EngineError::Http {
                    endpoint: "http://dead".into(),
                    reason: "cannot connect".into(),
                }),
            }
        }
        async fn next_token_logprobs(
            &self,
            _: &Prompt,
            _: &str,
            _: &[String],
        ) -> Result<NextTokenLogprobs, EngineError> {
            Err(EngineError::Unsupported("logprobs"))
        }
    }

    fn req(n: usize) -> GenerateRequest {
        GenerateRequest {
            prompt: Prompt::Text("q".into()),
            assistant_prefix: String::new(),
            params: SamplingParams {
                n,
                ..Default::default()
            },
        }
    }

    #[tokio::test]
    async fn keeps_finished_samples_then_answers_empty() {
        let g = Arc::new(HalfDead {
            ok: 2,
            inner: ScriptedGenerator::new(|_, i| format!("a b {i}")),
        });
        let (tx, mut rx) = mpsc::channel(8);
        let t = Tracked::new(g, Instant::now() + Duration::from_secs(60), Some(tx));
        let first = t.generate(&req(4)).await.unwrap();
        assert_eq!(first.len(), 2);
        let why = t.failure().unwrap();
        assert!(
            why.contains("2 of 4") && why.contains("http://dead"),
            "{why}"
        );
        assert!(t.generate(&req(4)).await.unwrap().is_empty());
        assert_eq!(
            rx.recv().await,
            Some(Progress {
                calls: 1,
                tokens: 6
            })
        );
    }

    #[tokio::test]
    async fn past_the_deadline_calls_answer_empty() {
        let g = Arc::new(ScriptedGenerator::new(|_, _| "x".to_string()));
        let t = Tracked::new(g, Instant::now(), None);
        assert!(t.generate(&req(2)).await.unwrap().is_empty());
        assert_eq!(t.failure().as_deref(), Some("deadline reached"));
    }
}
