//! Noisy demo pools for prompt programs: `--demo-source noisy:SPEC` (NoRa's setting).
//!
//! NoRa (Zhou et al., NeurIPS 2024, *Can Language Models Perform Robust Reasoning in
//! Chain-of-thought Prompting with Noisy Rationales?*) gives the model few-shot demos whose
//! rationales carry irrelevant or inaccurate thoughts at known places. The pool here is
//! `stepwise_data::noisy::demo_pool`: `arith` problems `0..n` with noised rationales; the
//! clean demo CD-CoT rephrases against is problem `n` with its clean rationale, so it is
//! never one of the pool's demos. With `ratio=0` the pool is the same problems clean (the
//! clean-demos baseline of the benchmark), so clean, noisy and CD-CoT runs differ only in
//! the noise and the method.

use crate::SearchError;
use stepwise_data::noisy::{self, NoisyDemo};
use stepwise_jobs::kinds::prompting::Demo;

/// The pool `noisy:SPEC` names and CD-CoT's clean demo.
pub fn pool(spec: &str) -> Result<(Vec<Demo>, Demo), SearchError> {
    let err = |e: stepwise_data::DataError| {
        SearchError::Config(format!("--demo-source noisy:{spec}: {e}"))
    };
    let cfg = noisy::parse_pool_spec(spec).map_err(err)?;
    let pool = noisy::demo_pool(&cfg).map_err(err)?;
    let clean = noisy::noisy_demo(&cfg, cfg.arith.n).map_err(err)?;
    let demo = |d: NoisyDemo, rationale: String, id: String| Demo {
        id,
        question: d.question,
        rationale,
        answer: Some(d.answer),
    };
    let pool = pool
        .into_iter()
        .map(|d| {
            let (r, id) = (d.noisy.clone(), d.id.clone());
            demo(d, r, id)
        })
        .collect();
    let id = format!("clean:{}", clean.id);
    let r = clean.clean.clone();
    Ok((pool, demo(clean, r, id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pool's demos are the noised rationales with their answers; the clean demo is
    /// problem `n`, clean, and not in the pool.
    #[test]
    fn pool_and_clean_demo() {
        let (demos, clean) = pool("noise=irrelevant,ratio=1,ops=2,n=3,seed=4").unwrap();
        let cfg = noisy::parse_pool_spec("noise=irrelevant,ratio=1,ops=2,n=3,seed=4").unwrap();
        let want = noisy::demo_pool(&cfg).unwrap();
        assert_eq!(demos.len(), 3);
        for (d, w) in demos.iter().zip(&want) {
            assert_eq!(d.rationale, w.noisy);
            assert_ne!(d.rationale, w.clean, "ratio 1 noises every demo");
            assert_eq!(d.answer.as_deref(), Some(w.answer.as_str()));
        }
        let p3 = stepwise_data::arith::generate_one(&cfg.arith, 3).unwrap();
        assert_eq!(clean.question, p3.question);
        assert_eq!(Some(clean.rationale), p3.reference);
        assert!(
            clean.id.starts_with("clean:noisy/irrelevant-r1/"),
            "{}",
            clean.id
        );
        let e = pool("noise=irrelevant").unwrap_err();
        assert!(
            e.to_string()
                .contains("--demo-source noisy:noise=irrelevant"),
            "{e}"
        );
    }

    /// Through `resolve`: `demos` over a noisy pool keeps the whole pool and no clean
    /// demo; `cd-cot` gets the pool whole too, and problem `n` clean as its clean demo.
    #[test]
    fn resolve_takes_a_noisy_source() {
        use crate::prompting::{PromptingRequest, resolve};
        use stepwise_jobs::kinds::prompting::{DemoRule, PromptMethod};
        let request = |method| PromptingRequest {
            method,
            task: None,
            template: None,
            rule: DemoRule::Fixed,
            shots: 2,
            seed: 0,
            source: "noisy:noise=inaccurate,ratio=0.5,ops=2,n=4,seed=9".into(),
            mistakes_from: None,
            handbook_from: None,
        };
        let (want, clean) = pool("noise=inaccurate,ratio=0.5,ops=2,n=4,seed=9").unwrap();
        let s = resolve(
            &request(PromptMethod::Demos),
            "arith:ops=2",
            &[],
            None,
            None,
        )
        .unwrap();
        assert_eq!(s.pool, want);
        assert_eq!(s.clean, None);
        assert_eq!(s.task, "arith-chain");
        let c = resolve(
            &request(PromptMethod::CdCot { rephrasings: 2 }),
            "arith:ops=2",
            &[],
            None,
            None,
        )
        .unwrap();
        assert_eq!(c.pool, want);
        assert_eq!(c.clean, Some(clean));
    }
}
