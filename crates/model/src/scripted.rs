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
    Completion, ContinuationLogprobs, EngineError, FinishReason, GenerateRequest, Generator,
    NextTokenLogprobs, PieceEmbeddings, Prompt, TokenLogprob,
};
use async_trait::async_trait;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

type GenFn = dyn Fn(&GenerateRequest, usize) -> String + Send + Sync;
type JudgeFn = dyn Fn(&Prompt, &str, &[String]) -> Vec<Option<f32>> + Send + Sync;
type EmbedFn = dyn Fn(&Prompt, &str) -> Vec<f32> + Send + Sync;
type ContinueFn = dyn Fn(&Prompt, &str, &str) -> f32 + Send + Sync;

/// A generator that answers from closures.
///
/// `generate` calls the script once per sample `i in 0..n` with the request; the text it
/// returns is cut at the first stop string (finish `Stop`), else at `max_tokens` words
/// (finish `Length`), else it ends with `Eos`.
pub struct ScriptedGenerator {
    script: Box<GenFn>,
    judge: Option<Box<JudgeFn>>,
    embedder: Option<Box<EmbedFn>>,
    reader: Option<Box<ContinueFn>>,
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
            reader: None,
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

    /// Sets continuation log-probabilities: `continuation_logprobs(prompt, prefix, text)`
    /// splits `text` into [`word_tokens`] and gives token `t` the log-probability
    /// `reader(prompt, before, t)`, `before` being the prefix and the tokens before `t`;
    /// one call, reading the prompt's, prefix's and text's words ([`prompt_tokens`]).
    pub fn with_reader(
        mut self,
        reader: impl Fn(&Prompt, &str, &str) -> f32 + Send + Sync + 'static,
    ) -> Self {
        self.reader = Some(Box::new(reader));
        self
    }

    /// Calls made so far (`generate`, `next_token_logprobs`, `continuation_logprobs` and
    /// `embed_pieces`).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    /// Every `generate` request received, in order.
    pub fn requests(&self) -> Vec<GenerateRequest> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

/// The scripted tokenizer of continuations: each word with the whitespace before it
/// (`"a  b\n"` → `["a", "  b", "\n"]`); the pieces concatenate to the text.
pub fn word_tokens(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut in_word = false;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() {
            if in_word {
                out.push(&text[start..i]);
                start = i;
                in_word = false;
            }
        } else {
            in_word = true;
        }
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
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

    async fn continuation_logprobs(
        &self,
        prompt: &Prompt,
        assistant_prefix: &str,
        continuation: &str,
    ) -> Result<ContinuationLogprobs, EngineError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let Some(r) = &self.reader else {
            return Err(EngineError::Unsupported("continuation log-probabilities"));
        };
        let mut before = assistant_prefix.to_string();
        let mut tokens = Vec::new();
        for t in word_tokens(continuation) {
            tokens.push(TokenLogprob {
                token: t.to_string(),
                logprob: r(prompt, &before, t),
            });
            before.push_str(t);
        }
        Ok(ContinuationLogprobs {
            tokens,
            prompt_tokens: prompt_tokens(prompt, &before),
            calls: 1,
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

    #[test]
    fn word_tokens_keep_their_leading_whitespace_and_cover_the_text() {
        assert_eq!(word_tokens("a  b\n"), ["a", "  b", "\n"]);
        assert_eq!(word_tokens(" 42."), [" 42."]);
        assert!(word_tokens("").is_empty());
        for t in ["x y z", "  lead", "trail  ", "\n\nq"] {
            assert_eq!(word_tokens(t).concat(), t);
        }
    }

    #[tokio::test]
    async fn continuations_are_read_token_by_token_after_what_came_before() {
        let g = ScriptedGenerator::new(|_, _| String::new())
            .with_reader(|_, before, t| -(before.len() as f32) - t.len() as f32 / 10.0);
        let c = g
            .continuation_logprobs(&Prompt::Text("q".into()), "ab", " 4 2")
            .await
            .unwrap();
        let got: Vec<(&str, f32)> = c
            .tokens
            .iter()
            .map(|t| (t.token.as_str(), t.logprob))
            .collect();
        // " 4" after "ab" (2 bytes): -2 - 0.2; " 2" after "ab 4" (4 bytes): -4 - 0.2
        assert_eq!(got, [(" 4", -2.2), (" 2", -4.2)]);
        assert!((c.sum() - (-6.4)).abs() < 1e-6);
        assert_eq!(c.prompt_tokens, 1 + 3);
        // byte 1 of " 4 2" is the "4": only the first token overlaps it
        assert_eq!(c.within(1..2).len(), 1);
        assert_eq!(c.within(0..4).len(), 2);
        assert!(c.within(4..4).is_empty());
    }
}
