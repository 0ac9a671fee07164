//! The outcome verifier: a rationale's final answer against the problem's gold answer.

use crate::{ScoreError, Scored, StepScorer};
use async_trait::async_trait;
use stepwise_core::{Problem, Rationale, Step, StepScore};
use stepwise_verify::{Options, Verdict, verify};

/// Scores 1 when the final answer verifies against the gold answer, 0 otherwise.
///
/// An oracle: it needs `problem.gold` (an error names the problem when it is missing).
/// A finished rationale gets its outcome on every step, so every aggregation agrees;
/// an open step (no answer yet) scores 0.5, "unknown". It costs no model tokens.
#[derive(Debug, Clone, Default)]
pub struct OutcomeScorer {
    pub options: Options,
}

impl OutcomeScorer {
    fn judge(&self, problem: &Problem, answer: Option<&str>) -> Result<(f64, String), ScoreError> {
        let gold = problem
            .gold
            .as_deref()
            .ok_or_else(|| ScoreError::Unusable {
                scorer: "outcome".into(),
                reason: format!("problem {} has no gold answer", problem.id),
            })?;
        Ok(match answer {
            None => (0.5, "no final answer yet".to_string()),
            Some(a) => match verify(gold, a, &self.options) {
                Verdict::Equal => (1.0, format!("{a} = gold {gold}")),
                Verdict::NotEqual => (0.0, format!("{a} != gold {gold}")),
                Verdict::Undecided => (0.0, format!("{a} vs gold {gold}: undecided")),
            },
        })
    }
}

#[async_trait]
impl StepScorer for OutcomeScorer {
    fn name(&self) -> String {
        "outcome".into()
    }

    async fn score_step(
        &self,
        problem: &Problem,
        prefix: &[Step],
        _step: &Step,
        answer: Option<&str>,
    ) -> Result<Scored, ScoreError> {
        let (s, d) = self.judge(problem, answer)?;
        Ok(Scored {
            scores: vec![StepScore::new(prefix.len(), s, "outcome").with_detail(d)],
            spent: Default::default(),
        })
    }

    async fn score_rationale(
        &self,
        problem: &Problem,
        rationale: &Rationale,
    ) -> Result<Scored, ScoreError> {
        let (s, d) = self.judge(problem, rationale.answer.as_deref())?;
        let s = if rationale.answer.is_none() { 0.0 } else { s };
        Ok(Scored {
            scores: (0..rationale.steps.len())
                .map(|i| StepScore::new(i, s, "outcome").with_detail(d.clone()))
                .collect(),
            spent: Default::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn right_wrong_missing() {
        let p = Problem::new("p", "2+2?").with_gold("4");
        let o = OutcomeScorer::default();
        let r = Rationale::from_steps(["2+2=4", "The answer is 4."], Some("4".into()));
        let s = o.score_rationale(&p, &r).await.unwrap();
        assert_eq!(s.scores.len(), 2);
        assert!(s.scores.iter().all(|x| x.score == 1.0));
        let r = Rationale::from_steps(["2+2=5"], Some("5".into()));
        assert_eq!(
            o.score_rationale(&p, &r).await.unwrap().scores[0].score,
            0.0
        );
        // a finished rationale with no answer is wrong
        let r = Rationale::from_steps(["hmm"], None);
        assert_eq!(
            o.score_rationale(&p, &r).await.unwrap().scores[0].score,
            0.0
        );
        // an open step is unknown
        let st = Step {
            index: 1,
            text: "x".into(),
        };
        let one = o.score_step(&p, &r.steps, &st, None).await.unwrap();
        assert_eq!(one.scores[0].score, 0.5);
        assert_eq!(one.scores[0].step, 1);
        let e = o
            .score_step(&Problem::new("nogold", "q"), &[], &st, Some("1"))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("nogold"));
    }
}
