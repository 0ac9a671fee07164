//! Teacher-forced reading of a continuation ([`Generator::continuation_logprobs`]): a
//! context of its own beside the generation context (created on first use, one
//! sequence), fed prompt + continuation in `n_batch` chunks with logits at the positions
//! that predict a continuation token, each read as a log-softmax.
//!
//! The continuation is tokenized on its own (no BOS, no special tokens) and appended to
//! the prompt's tokens, as [`Generator::embed_pieces`] does with pieces, so a token's
//! log-probability is the same whether a text is read whole or as a prefix of a longer one.
//!
//! [`Generator::continuation_logprobs`]: stepwise_model::Generator::continuation_logprobs
//! [`Generator::embed_pieces`]: stepwise_model::Generator::embed_pieces

use crate::engine::backend;
use crate::sampling::log_softmax;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use std::num::NonZeroU32;
use stepwise_model::{ContinuationLogprobs, EngineError, TokenLogprob};

/// The reading context of one model.
pub(crate) struct Reader<'m> {
    model: &'m LlamaModel,
    threads: usize,
    n_ctx: usize,
    n_batch: u32,
    ctx: Option<LlamaContext<'m>>,
}

impl<'m> Reader<'m> {
    /// No context yet; it is created on first use.
    pub fn new(model: &'m LlamaModel, threads: usize, n_ctx: usize, n_batch: u32) -> Self {
        Self {
            model,
            threads,
            n_ctx,
            n_batch,
            ctx: None,
        }
    }

    /// The log-probability of each token of `continuation` after `prompt` (the prompt's
    /// tokens, BOS and template included).
    pub fn read(
        &mut self,
        mut tokens: Vec<LlamaToken>,
        continuation: &str,
    ) -> Result<ContinuationLogprobs, EngineError> {
        let cont = self
            .model
            .vocab()
            .tokenize(continuation.as_bytes(), false, false);
        let start = tokens.len();
        if start == 0 {
            return Err(EngineError::InvalidRequest("the prompt is empty".into()));
        }
        tokens.extend(cont.iter().copied());
        crate::embeddings::fits(tokens.len(), self.n_ctx)?;
        let read = tokens.len() as u64;
        if cont.is_empty() {
            return Ok(ContinuationLogprobs {
                tokens: Vec::new(),
                prompt_tokens: read,
                calls: 1,
            });
        }
        if self.ctx.is_none() {
            let params = LlamaContextParams::default()
                .with_n_ctx(NonZeroU32::new(self.n_ctx as u32))
                .with_n_batch(self.n_batch)
                .with_n_ubatch(self.n_batch.min(512))
                .with_n_seq_max(1)
                .with_n_threads(self.threads as i32)
                .with_n_threads_batch(self.threads as i32);
            self.ctx = Some(
                self.model
                    .new_context(backend()?, params)
                    .map_err(|e| EngineError::Setup(format!("reading context: {e}")))?,
            );
        }
        let ctx = self
            .ctx
            .as_mut()
            .ok_or_else(|| EngineError::Internal("reading context missing".into()))?;
        ctx.clear_kv_cache();
        // logprob of token i (i >= start) is read at position i - 1
        let mut logprobs = vec![f32::NEG_INFINITY; cont.len()];
        let nb = self.n_batch as usize;
        let mut batch = LlamaBatch::new(nb, 1);
        let result = (|| {
            for chunk_start in (0..tokens.len()).step_by(nb) {
                let chunk_end = (chunk_start + nb).min(tokens.len());
                batch.clear();
                let mut wanted = Vec::new();
                for pos in chunk_start..chunk_end {
                    let predicts = pos + 1 >= start && pos + 1 < tokens.len();
                    batch
                        .add(tokens[pos], pos as i32, &[0], predicts)
                        .map_err(|e| EngineError::Internal(format!("reading batch: {e}")))?;
                    if predicts {
                        wanted.push((pos - chunk_start, pos + 1 - start));
                    }
                }
                ctx.decode(&mut batch)
                    .map_err(|e| EngineError::Internal(format!("reading decode: {e}")))?;
                for (j, k) in wanted {
                    let lps = log_softmax(ctx.get_logits_ith(j as i32));
                    let tok = cont[k].0.max(0) as usize;
                    logprobs[k] = lps.get(tok).copied().unwrap_or(f32::NEG_INFINITY);
                }
            }
            Ok::<(), EngineError>(())
        })();
        ctx.clear_kv_cache();
        result?;
        let pieces: Vec<Vec<u8>> = cont
            .iter()
            .map(|&t| self.model.vocab().token_to_piece(t, false, None))
            .collect();
        let texts = token_texts(&pieces);
        Ok(ContinuationLogprobs {
            tokens: texts
                .into_iter()
                .zip(logprobs)
                .map(|(token, logprob)| TokenLogprob { token, logprob })
                .collect(),
            prompt_tokens: read,
            calls: 1,
        })
    }
}

/// Token texts from their bytes, so that the texts concatenate to the decoded whole: a
/// character split across tokens belongs to the token that completes it (the tokens
/// before get the empty text); bytes that never form a character are replaced at the end.
fn token_texts(pieces: &[Vec<u8>]) -> Vec<String> {
    let mut out = Vec::with_capacity(pieces.len());
    let mut pending: Vec<u8> = Vec::new();
    for p in pieces {
        pending.extend_from_slice(p);
        let valid = match std::str::from_utf8(&pending) {
            Ok(_) => pending.len(),
            Err(e) if e.error_len().is_some() => pending.len(), // invalid, not incomplete
            Err(e) => e.valid_up_to(),
        };
        let done: Vec<u8> = pending.drain(..valid).collect();
        out.push(String::from_utf8_lossy(&done).into_owned());
    }
    if !pending.is_empty()
        && let Some(last) = out.last_mut()
    {
        last.push_str(&String::from_utf8_lossy(&pending));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_split_character_goes_to_the_token_that_completes_it() {
        let e = "é".as_bytes(); // 2 bytes
        let pieces = vec![b" caf".to_vec(), vec![e[0]], vec![e[1], b'!']];
        assert_eq!(token_texts(&pieces), [" caf", "", "é!"]);
        // bytes that never complete a character are replaced, not dropped
        let pieces = vec![b"a".to_vec(), vec![0xC3]];
        assert_eq!(token_texts(&pieces), ["a", "\u{FFFD}"]);
        assert_eq!(token_texts(&[b"x y".to_vec()]), ["x y"]);
    }
}
