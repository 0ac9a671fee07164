//! Rollout value (Math-Shepherd): how often continuations from a step reach the right answer.

use crate::{PolicyPrompt, ScoreError, Scored, StepScorer};
use async_trait::async_trait;
use std::sync::Arc;
use stepwise_core::{AnswerExtractor, Problem, Spent, Step, StepScore, StepSplitter};
use stepwise_model::{GenerateRequest, Generator, SamplingParams};
use stepwise_verify::groups::{best_group, group_answers};
use stepwise_verify::{Options, verify};

/// Soft value of a step prefix: the fraction of `k` continuations (sampled from the
/// policy after the prefix) whose final answer verifies against the gold answer, or,
/// when the problem has no gold answer, against the majority answer of those
/// continuations (answers grouped by `verify` equivalence).
///
/// A finished step (one that gives the final answer) is judged on that answer: against
/// gold directly (no rollouts), or without gold, by how many of `k` alternative
/// continuations from the steps before it agree with it.
///
/// The rollouts' tokens are reported in the judge columns.
pub struct RolloutScorer {
    policy: Arc<dyn Generator>,
    prompt: PolicyPrompt,
    pub splitter: StepSplitter,
    pub extractor: AnswerExtractor,
    pub options: Options,
    /// Continuations per step.
    pub k: usize,
    /// Sampling of the continuations (`n` is replaced by `k`).
    pub params: SamplingParams,
}

impl RolloutScorer {
    /// `k` rollouts per step with the policy and its prompt.
    pub fn new(
        policy: Arc<dyn Generator>,
        prompt: PolicyPrompt,
        k: usize,
        params: SamplingParams,
    ) -> Self {
        Self {
            policy,
            prompt,
            splitter: StepSplitter::default(),
            extractor: AnswerExtractor::default(),
            options: Options::default(),
            k: k.max(1),
            params,
        }
    }

    /// `k` continuations after `steps`; their final answers (None when none was found).
    async fn rollouts(
        &self,
        problem: &Problem,
        steps: &[Step],
        spent: &mut Spent,
    ) -> Result<Vec<Option<String>>, ScoreError> {
        let (prompt, start) = self.prompt.render(problem)?;
        let mut prefix = start;
        if !steps.is_empty() {
            prefix.push_str(&self.splitter.join(steps));
            prefix.push_str(self.splitter.separator());
        }
        let req = GenerateRequest {
            prompt,
            assistant_prefix: prefix.clone(),
            params: SamplingParams {
                n: self.k,
                ..self.params.clone()
            },
        };
        let outs = crate::generate_charged(self.policy.as_ref(), &req, "rollout", spent).await?;
        Ok(outs
            .iter()
            .map(|c| {
                self.extractor
                    .extract(&c.text)
                    .or_else(|| self.extractor.extract(&format!("{prefix}{}", c.text)))
                    .map(|e| e.text)
            })
            .collect())
    }

    fn agree(&self, reference: &str, answers: &[Option<String>]) -> usize {
        answers
            .iter()
            .flatten()
            .filter(|a| verify(reference, a, &self.options).is_equal())
            .count()
    }
}

#[async_trait]
impl StepScorer for RolloutScorer {
    fn name(&self) -> String {
        "rollout".into()
    }

    async fn score_step(
        &self,
        problem: &Problem,
        prefix: &[Step],
        step: &Step,
        answer: Option<&str>,
    ) -> Result<Scored, ScoreError> {
        let mut spent = Spent::default();
        let idx = prefix.len();
        let (value, detail) = match (answer, problem.gold.as_deref()) {
            (Some(a), Some(gold)) => {
                let ok = verify(gold, a, &self.options).is_equal();
                (
                    if ok { 1.0 } else { 0.0 },
                    format!("final answer {a} vs gold {gold}"),
                )
            }
            (Some(a), None) => {
                let alts = self.rollouts(problem, prefix, &mut spent).await?;
                let n = self.agree(a, &alts);
                (
                    n as f64 / self.k as f64,
                    format!("{n}/{} alternative rollouts agree with {a}", self.k),
                )
            }
            (None, gold) => {
                let mut steps = prefix.to_vec();
                steps.push(Step {
                    index: idx,
                    text: step.text.clone(),
                });
                let answers = self.rollouts(problem, &steps, &mut spent).await?;
                let reference = match gold {
                    Some(g) => Some(g.to_string()),
                    None => {
                        let groups =
                            group_answers(&answers, &vec![1.0; answers.len()], &self.options);
                        best_group(&groups).map(|g| g.answer.clone())
                    }
                };
                match reference {
                    Some(r) => {
                        let n = self.agree(&r, &answers);
                        let what = if gold.is_some() { "gold" } else { "majority" };
                        (
                            n as f64 / self.k as f64,
                            format!("{n}/{} rollouts reach {what} {r}", self.k),
                        )
                    }
                    None => (0.0, format!("none of {} rollouts gave an answer", self.k)),
                }
            }
        };
        Ok(Scored {
            scores: vec![StepScore::new(idx, value, "rollout").with_detail(detail)],
            spent,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stepwise_core::Rationale;
    use stepwise_model::scripted::ScriptedGenerator;

    #[tokio::test]
    async fn soft_values_with_and_without_gold() {
        // After a prefix containing "good", 3 of 4 rollouts answer 7; otherwise 1 of 4.
        let g = Arc::new(ScriptedGenerator::new(|req, i| {
            let good = req.assistant_prefix.contains("good");
            let right = if good { i < 3 } else { i == 0 };
            format!("so on\n\nThe answer is {}.", if right { 7 } else { 8 + i })
        }));
        let params = SamplingParams {
            max_tokens: 50,
            ..Default::default()
        };
        let sc = RolloutScorer::new(g.clone(), PolicyPrompt::default(), 4, params);
        let p = Problem::new("p", "q").with_gold("7");
        let r = Rationale::from_steps(
            ["a good start", "more", "The answer is 7."],
            Some("7".into()),
        );
        let s = sc.score_rationale(&p, &r).await.unwrap();
        let v: Vec<f64> = s.scores.iter().map(|s| s.score).collect();
        assert_eq!(v, [0.75, 0.75, 1.0]);
        // two rollout calls of 4 continuations; each continuation is 6 words
        assert_eq!(s.spent.judge_calls, 2);
        assert_eq!(s.spent.judge_tokens, 2 * 4 * 6);
        assert_eq!(s.spent.policy_tokens, 0);
        // the rollouts continue after the steps so far
        let reqs = g.requests();
        assert!(
            reqs[1]
                .assistant_prefix
                .ends_with("a good start\n\nmore\n\n")
        );

        // Without gold: agreement with the majority of the rollouts.
        let p = Problem::new("p", "q");
        let st = Step {
            index: 0,
            text: "bad".into(),
        };
        let s = sc.score_step(&p, &[], &st, None).await.unwrap();
        // answers 7, 9, 10, 11: all groups of one, the first wins the tie
        assert_eq!(s.scores[0].score, 0.25);
        let st = Step {
            index: 0,
            text: "good".into(),
        };
        let s = sc.score_step(&p, &[], &st, None).await.unwrap();
        assert_eq!(s.scores[0].score, 0.75);
        // a final step without gold: alternatives from the empty prefix (1 of 4 say 7)
        let st = Step {
            index: 0,
            text: "The answer is 7.".into(),
        };
        let s = sc.score_step(&p, &[], &st, Some("7")).await.unwrap();
        assert_eq!(s.scores[0].score, 0.25);
    }
}
