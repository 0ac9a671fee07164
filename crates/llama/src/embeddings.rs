//! Hidden states, from contexts of their own beside the generation context (an existing
//! context cannot be switched into embedding mode): a pooled one (`Last`) for
//! [`Generator::embed`](stepwise_model::Generator::embed) and a per-token one for
//! [`Generator::embed_pieces`](stepwise_model::Generator::embed_pieces), each created on
//! first use.

use crate::engine::backend;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::{LlamaContextParams, LlamaPoolingType};
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use std::collections::HashMap;
use std::num::NonZeroU32;
use stepwise_model::{EngineError, PieceEmbeddings};

/// Context size of the pooled embedding context.
const EMBED_CTX: u32 = 2048;

/// ggml picks its kernels by the shape of a decode call, and a call of fewer than ~64 tokens
/// moves hidden states by ~0.4 (of ~20) against the same position in a longer call. So every
/// per-token call has at least this many tokens: chunks are that long at least, and the last
/// one is padded with filler tokens, which cannot change earlier positions (causal
/// attention). A piece's vector is then the same whether later pieces are in the pass or not.
const MIN_DECODE: usize = 64;

/// `ContextFull` when `needed` tokens do not fit a context of `available`.
pub(crate) fn fits(needed: usize, available: usize) -> Result<(), EngineError> {
    if needed > available {
        return Err(EngineError::ContextFull { needed, available });
    }
    Ok(())
}

/// The embedding contexts of one model.
pub(crate) struct Embeddings<'m> {
    model: &'m LlamaModel,
    threads: usize,
    /// Size of the main context (the per-token context is as large).
    n_ctx: usize,
    /// Batch size of the main context.
    n_batch: u32,
    pooled: Option<LlamaContext<'m>>,
    per_token: Option<LlamaContext<'m>>,
}

/// A one-sequence context with embeddings on. `sizes` = (n_ctx, n_batch, n_ubatch).
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

impl<'m> Embeddings<'m> {
    /// No context yet; they are created on first use.
    pub fn new(model: &'m LlamaModel, threads: usize, n_ctx: usize, n_batch: u32) -> Self {
        Self {
            model,
            threads,
            n_ctx,
            n_batch,
            pooled: None,
            per_token: None,
        }
    }

    /// The hidden state at the last of `tokens`.
    pub fn embed(&mut self, tokens: &[LlamaToken]) -> Result<Vec<f32>, EngineError> {
        fits(tokens.len(), EMBED_CTX as usize)?;
        if self.pooled.is_none() {
            self.pooled = Some(embedding_context(
                self.model,
                self.threads,
                (EMBED_CTX, EMBED_CTX, EMBED_CTX),
                LlamaPoolingType::Last,
                "embedding",
            )?);
        }
        let ctx = self
            .pooled
            .as_mut()
            .ok_or_else(|| EngineError::Internal("embedding context missing".into()))?;
        ctx.clear_kv_cache();
        let mut batch = LlamaBatch::new(tokens.len(), 1);
        batch
            .add_sequence(tokens, 0, false)
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

    /// Hidden states at the token positions `ends` of `tokens` (prompt + pieces), from one
    /// pass on the per-token context, fed in `n_batch` chunks of at least [`MIN_DECODE`].
    pub fn embed_pieces(
        &mut self,
        mut tokens: Vec<LlamaToken>,
        ends: &[usize],
    ) -> Result<PieceEmbeddings, EngineError> {
        fits(tokens.len(), self.n_ctx)?;
        let read = tokens.len() as u64;
        if ends.is_empty() {
            return Ok(PieceEmbeddings::default());
        }
        let n_batch = self.n_batch.max(MIN_DECODE as u32);
        if self.per_token.is_none() {
            self.per_token = Some(embedding_context(
                self.model,
                self.threads,
                (self.n_ctx as u32, n_batch, n_batch.min(512)),
                LlamaPoolingType::None,
                "per-token embedding",
            )?);
        }
        let ctx = self
            .per_token
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
        let bounds = chunk_bounds(tokens.len(), nb);
        let mut wanted = vec![false; tokens.len()];
        for &e in ends {
            wanted[e] = true;
        }
        let mut at: HashMap<usize, Vec<f32>> = HashMap::new();
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
}

/// Decode calls over `len` tokens, `nb` at a time. Where the context left no room for
/// padding, the last chunk takes a token from the one before it rather than decode one alone.
fn chunk_bounds(len: usize, nb: usize) -> Vec<(usize, usize)> {
    let mut bounds: Vec<(usize, usize)> = (0..len)
        .step_by(nb)
        .map(|s| (s, (s + nb).min(len)))
        .collect();
    if let [.., prev, last] = bounds.as_mut_slice()
        && last.1 - last.0 == 1
    {
        prev.1 -= 1;
        last.0 -= 1;
    }
    bounds
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_all_tokens_and_none_is_alone() {
        assert_eq!(chunk_bounds(100, 64), vec![(0, 64), (64, 100)]);
        assert_eq!(chunk_bounds(129, 64), vec![(0, 64), (64, 127), (127, 129)]);
        assert_eq!(chunk_bounds(64, 64), vec![(0, 64)]);
        assert_eq!(chunk_bounds(1, 64), vec![(0, 1)]);
    }
}
