//! Sampling: per-sample sampler chains, checks of sampling parameters, log-probabilities.

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use stepwise_model::{EngineError, SamplingParams, TokenLogprob, sample_seed};

/// Rejects parameters the engine cannot honour.
pub(crate) fn validate(p: &SamplingParams) -> Result<(), EngineError> {
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

/// The sampler of sample `index`: greedy at temperature 0, else `top_k → top_p → temp →
/// dist(sample_seed(seed, index))` (top-k first: it makes the rest cheap).
pub(crate) fn make_sampler(p: &SamplingParams, index: usize) -> LlamaSampler {
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

/// The sampled token `tok` at batch position `idx`, with its log-probability under the
/// model (before temperature and truncation).
pub(crate) fn token_logprob(
    ctx: &LlamaContext<'_>,
    model: &LlamaModel,
    idx: i32,
    tok: LlamaToken,
) -> TokenLogprob {
    let logits = ctx.get_logits_ith(idx);
    let logprob = logprob_of(logits, tok.0.max(0) as usize).unwrap_or(f32::NEG_INFINITY);
    let piece = model.vocab().token_to_piece(tok, false, None);
    TokenLogprob {
        token: String::from_utf8_lossy(&piece).into_owned(),
        logprob,
    }
}

/// Log-softmax of `logits`.
pub(crate) fn log_softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits.iter().map(|&l| f64::from(l - max).exp()).sum();
    let lse = max + sum.ln() as f32;
    logits.iter().map(|&l| l - lse).collect()
}

/// Log-softmax of `logits` at `tok` alone.
fn logprob_of(logits: &[f32], tok: usize) -> Option<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits.iter().map(|&l| f64::from(l - max).exp()).sum();
    logits.get(tok).map(|&l| l - max - sum.ln() as f32)
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
        assert_eq!(logprob_of(&l, 9), None);
    }

    #[test]
    fn parameters_are_checked() {
        let ok = SamplingParams::default();
        assert!(validate(&ok).is_ok());
        for bad in [
            SamplingParams {
                temperature: -1.0,
                ..ok.clone()
            },
            SamplingParams {
                top_p: 0.0,
                ..ok.clone()
            },
            SamplingParams {
                top_p: f32::NAN,
                ..ok.clone()
            },
            SamplingParams {
                n: 5000,
                ..ok.clone()
            },
        ] {
            assert!(validate(&bad).is_err(), "{bad:?}");
        }
    }
}
