//! The `arith` step scorer: the arithmetic claim checker of `stepwise-verify`
//! ([`stepwise_verify::ArithChecker`]: every claim in a step checked exactly, with
//! rational arithmetic) as a [`StepScorer`]. Costs no model tokens.

use crate::{ScoreError, Scored, StepScorer};
use async_trait::async_trait;
use stepwise_core::{Problem, Step, StepScore};

/// The arithmetic claim checker, scoring each step by its claims
/// ([`stepwise_verify::ArithChecker::score_text`]).
pub use stepwise_verify::ArithChecker as ArithScorer;

#[async_trait]
impl StepScorer for ArithScorer {
    fn name(&self) -> String {
        "arith".into()
    }

    async fn score_step(
        &self,
        _problem: &Problem,
        prefix: &[Step],
        step: &Step,
        _answer: Option<&str>,
    ) -> Result<Scored, ScoreError> {
        let (s, d) = self.score_text(&step.text);
        Ok(Scored {
            scores: vec![StepScore::new(prefix.len(), s, "arith").with_detail(d)],
            spent: Default::default(),
        })
    }
}
