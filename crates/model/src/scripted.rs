//! A scripted [`Generator`] for tests: a test double of the trait whose outputs are
//! chosen by a closure, with exact, predictable token counts.
//!
//! Token counting rule (so tests can assert exact totals): a text has as many tokens
//! as it has whitespace-separated words, and at least 1 when non-empty. The prompt
//! count is the words of every message plus the assistant prefix.
//!
//! ```
//! use stepwise_model::scripted::ScriptedGenerator;
//! use stepwise_model::{GenerateRequest, Generator, Prompt, SamplingParams};
//!
//! let g = ScriptedGenerator::new(|_req, i| format!("step {i}\n\nThe answer is {i}."));
//! let req = GenerateRequest {
//!     prompt: Prompt::Text("q".into()),
//!     assistant_prefix: String::new(),
//!     params: SamplingParams { n: 2, stop: vec!["\n\n".into()], ..Default::default() },
//! };
//! let out = tokio::runtime::Builder::new_current_thread().build().unwrap()
//!     .block_on(g.generate(&req)).unwrap();
//! assert_eq!(out[1].text, "step 1");
//! assert_eq!(out[1].generated_tokens, 2);
//! ```

use crate::{
    Completion, EngineError, FinishReason, GenerateRequest, Generator, NextTokenLogprobs,
    PieceEmbeddings, Prompt,
};
use async_trait::async_trait;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

type GenFn = dyn Fn(&GenerateRequest, usize) -> String + Send + Sync;
type JudgeFn = dyn Fn(&Prompt, &str, &[String]) -> Vec<Option<f32>> + Send + Sync;
type EmbedFn = dyn Fn(&Prompt, &str) -> Vec<f32> + Send + Sync;

/// A generator that answers from closures.
///
/// `generate` calls the script once per sample `i in 0..n` with the request; the text it
/// returns is cut at the first stop string (finish `Stop`), else at `max_tokens` words
/// (finish `Length`), else it ends with `Eos`.
pub struct ScriptedGenerator {
    script: Box<GenFn>,
    judge: Option<Box<JudgeFn>>,
    embedder: Option<Box<EmbedFn>>,
    calls: AtomicU64,
    log: Mutex<Vec<GenerateRequest>>,
}

/// Token count used by [`ScriptedGenerator`]: whitespace-separated words, at least 1 for
/// non-empty text.
pub fn count_tokens(text: &str) -> u64 {
    let n = text.split_whitespace().count() as u64;
    if n == 0 && !text.is_empty() { 1 } else { n }
}

/// Prompt token count used by [`ScriptedGenerator`].
pub fn prompt_tokens(prompt: &Prompt, assistant_prefix: &str) -> u64 {
    let p = match prompt {
        Prompt::Text(t) => count_tokens(t),
        Prompt::Chat(msgs) => msgs.iter().map(|m| count_tokens(&m.content)).sum(),
    };
    p + count_tokens(assistant_prefix)
}

impl ScriptedGenerator {
    /// A generator whose `i`-th sample for a request is `script(req, i)`.
    pub fn new(script: impl Fn(&GenerateRequest, usize) -> String + Send + Sync + 'static) -> Self {
        Self {
            script: Box::new(script),
            judge: None,
            embedder: None,
            calls: AtomicU64::new(0),
            log: Mutex::new(Vec::new()),
        }
    }

    /// Sets the answer to `next_token_logprobs(prompt, prefix, candidates)`.
    pub fn with_judge(
        mut self,
        judge: impl Fn(&Prompt, &str, &[String]) -> Vec<Option<f32>> + Send + Sync + 'static,
    ) -> Self {
        self.judge = Some(Box::new(judge));
        self
    }

    /// Sets hidden states: `embed_pieces(prompt, pieces)` returns, for piece `k`,
    /// `embedder(prompt, pieces[..=k].concat())`, and reads as many tokens as the prompt and
    /// all pieces have words ([`prompt_tokens`]).
    pub fn with_embedder(
        mut self,
        embedder: impl Fn(&Prompt, &str) -> Vec<f32> + Send + Sync + 'static,
    ) -> Self {
        self.embedder = Some(Box::new(embedder));
        self
    }

    /// Calls made so far (`generate`, `next_token_logprobs` and `embed_pieces`).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    /// Every `generate` request received, in order.
    pub fn requests(&self) -> Vec<GenerateRequest> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

fn truncate_words(text: &str, max: u64) -> Option<String> {
    let mut seen = 0u64;
    let mut in_word = false;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() {
            in_word = false;
        } else if !in_word {
            in_word = true;
            seen += 1;
            if seen > max {
                return Some(text[..i].trim_end().to_string());
            }
        }
    }
    None
}

#[async_trait]
impl Generator for ScriptedGenerator {
    fn name(&self) -> String {
        "scripted".into()
    }

    /// A script is a function of the request and the sample index.
    fn reproducible(&self) -> bool {
        true
    }

    async fn generate(&self, req: &GenerateRequest) -> Result<Vec<Completion>, EngineError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut l) = self.log.lock() {
            l.push(req.clone());
        }
        let pt = prompt_tokens(&req.prompt, &req.assistant_prefix);
        let mut out = Vec::with_capacity(req.params.n);
        for i in 0..req.params.n {
            let full = (self.script)(req, i);
            let mut text = full.clone();
            let mut finish = FinishReason::Eos;
            let mut cut = None;
            for s in &req.params.stop {
                if s.is_empty() {
                    continue;
                }
                if let Some(p) = full.find(s.as_str())
                    && cut.as_ref().is_none_or(|(q, _)| p < *q)
                {
                    cut = Some((p, s.clone()));
                }
            }
            if let Some((p, s)) = cut {
                text = full[..p].to_string();
                finish = FinishReason::Stop(s);
            }
            if let Some(t) = truncate_words(&text, req.params.max_tokens as u64) {
                text = t;
                finish = FinishReason::Length;
            }
            out.push(Completion {
                generated_tokens: count_tokens(&text),
                text,
                token_ids: Vec::new(),
                logprobs: None,
                finish,
                prompt_tokens: pt,
            });
        }
        Ok(out)
    }

    async fn next_token_logprobs(
        &self,
        prompt: &Prompt,
        assistant_prefix: &str,
        candidates: &[String],
    ) -> Result<NextTokenLogprobs, EngineError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let Some(j) = &self.judge else {
            return Err(EngineError::Unsupported("next-token log-probabilities"));
        };
        Ok(NextTokenLogprobs {
            logprobs: j(prompt, assistant_prefix, candidates),
            prompt_tokens: prompt_tokens(prompt, assistant_prefix),
        })
    }

    async fn embed_pieces(
        &self,
        prompt: &Prompt,
        pieces: &[String],
    ) -> Result<PieceEmbeddings, EngineError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let Some(e) = &self.embedder else {
            return Err(EngineError::Unsupported("per-piece embeddings"));
        };
        let mut text = String::new();
        let mut vectors = Vec::with_capacity(pieces.len());
        for p in pieces {
            text.push_str(p);
            vectors.push(e(prompt, &text));
        }
        Ok(PieceEmbeddings {
            vectors,
            prompt_tokens: prompt_tokens(prompt, &text),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SamplingParams;

    #[tokio::test]
    async fn stops_and_lengths() {
        let g = ScriptedGenerator::new(|_, _| "a b c\n\nd e".to_string());
        let mut req = GenerateRequest {
            prompt: Prompt::Text("x y".into()),
            assistant_prefix: "z".into(),
            params: SamplingParams {
                n: 1,
                max_tokens: 2,
                ..Default::default()
            },
        };
        let c = &g.generate(&req).await.unwrap()[0];
        assert_eq!(c.text, "a b");
        assert_eq!(c.finish, FinishReason::Length);
        assert_eq!(c.prompt_tokens, 3);
        req.params.max_tokens = 10;
        req.params.stop = vec!["\n\n".into(), "e".into()];
        let c = &g.generate(&req).await.unwrap()[0];
        assert_eq!(c.text, "a b c");
        assert_eq!(c.finish, FinishReason::Stop("\n\n".into()));
        req.params.stop.clear();
        let c = &g.generate(&req).await.unwrap()[0];
        assert_eq!(c.finish, FinishReason::Eos);
        assert_eq!(c.generated_tokens, 5);
        assert_eq!(g.calls(), 3);
    }
}
