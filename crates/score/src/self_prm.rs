//! Self-PRM: the policy rates its own whole solution.
//!
//! Feng et al. 2025, "Is PRM Necessary? Problem-Solving RL Implicitly Induces PRM
//! Capability in LLMs" (arXiv:2505.11227): the policy samples N solutions, then, as its
//! own reward model, evaluates each of its solutions and the solutions are reranked by
//! that self-evaluation (no external PRM). Here the evaluation is the judge mechanism of
//! [`JudgeScorer`] (`self-judge`'s, reused, not copied) asked once per solution instead of
//! once per step: the policy reads the whole solution (`prompts/self-prm.txt`: every step
//! numbered and the final answer) and the solution's rating is
//! `P(Yes) / (P(Yes) + P(No))` at the verdict position; with `--judge-reasoning` it first
//! writes m reasonings and the rating is the mean over them, as for the judge.
//!
//! Every step of the solution gets that one rating (so any aggregation, and a product
//! with a step scorer, reads it unchanged); reranking is best-of-N over it:
//! `--strategy bon --scorer self-prm`. A solution costs one judgment (one
//! `next_token_logprobs` call without reasoning) whatever its number of steps, in the
//! judge columns. Scoring one new step ([`StepScorer::score_step`], in tree search) rates
//! the solution so far.

use crate::judge::JudgeTemplate;
use crate::{JudgeScorer, ScoreError, Scored, StepScorer};
use async_trait::async_trait;
use std::sync::Arc;
use stepwise_core::{Problem, Rationale, Step, StepScore};
use stepwise_model::Generator;

const SELF_PRM_DEFAULT: &str = include_str!("../prompts/self-prm.txt");

/// Self-PRM (see the module docs): the policy's rating of its whole solution.
pub struct SelfPrmScorer {
    judge: JudgeScorer,
}

impl SelfPrmScorer {
    /// The scorer's name.
    pub const NAME: &'static str = "self-prm";

    /// The policy as its own solution-level judge, with the built-in template.
    pub fn new(policy: Arc<dyn Generator>) -> Self {
        Self::with_judge(JudgeScorer::self_judge(policy, Self::template()))
    }

    /// Self-PRM over a configured judge (reasoning, m, seed); it is renamed `self-prm`.
    pub fn with_judge(judge: JudgeScorer) -> Self {
        Self {
            judge: judge.renamed(Self::NAME),
        }
    }

    /// The built-in solution-level template (`prompts/self-prm.txt`).
    pub fn template() -> JudgeTemplate {
        JudgeTemplate::parse(SELF_PRM_DEFAULT, "built-in prompts/self-prm.txt")
            // The built-in file is tested below; failing here is a build defect.
            .unwrap_or_else(|e| panic!("built-in self-prm prompt is malformed: {e}"))
    }

    /// The built-in template's text (to copy and edit).
    pub fn default_text() -> &'static str {
        SELF_PRM_DEFAULT
    }
}

#[async_trait]
impl StepScorer for SelfPrmScorer {
    fn name(&self) -> String {
        Self::NAME.into()
    }

    /// Rates the solution through `step`.
    async fn score_step(
        &self,
        problem: &Problem,
        prefix: &[Step],
        step: &Step,
        answer: Option<&str>,
    ) -> Result<Scored, ScoreError> {
        self.judge.score_step(problem, prefix, step, answer).await
    }

    /// One rating of the whole solution, given to every step.
    async fn score_rationale(
        &self,
        problem: &Problem,
        rationale: &Rationale,
    ) -> Result<Scored, ScoreError> {
        let Some((last, prefix)) = rationale.steps.split_last() else {
            return Ok(Scored::default());
        };
        let rated = self
            .judge
            .score_step(problem, prefix, last, rationale.answer.as_deref())
            .await?;
        let Some(s) = rated.scores.first() else {
            return Ok(Scored {
                scores: Vec::new(),
                spent: rated.spent,
            });
        };
        let detail = format!(
            "solution-level: {}",
            s.detail.as_deref().unwrap_or("P(Yes)")
        );
        Ok(Scored {
            scores: (0..rationale.steps.len())
                .map(|i| StepScore::new(i, s.score, Self::NAME).with_detail(detail.clone()))
                .collect(),
            spent: rated.spent,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stepwise_model::Prompt;
    use stepwise_model::scripted::ScriptedGenerator;

    fn user_text(p: &Prompt) -> String {
        match p {
            Prompt::Chat(m) => m.last().map(|m| m.content.clone()).unwrap_or_default(),
            Prompt::Text(t) => t.clone(),
        }
    }

    #[tokio::test]
    async fn one_rating_per_solution_with_the_exact_prompt() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::<(String, String)>::new()));
        let log = seen.clone();
        // P(Yes) = 0.9 for a solution whose answer is 7, else 0.3
        let g = Arc::new(ScriptedGenerator::new(|_, _| String::new()).with_judge(
            move |p, prefix, c| {
                assert_eq!(c, ["Yes", " Yes", "No", " No"]);
                let text = user_text(p);
                if let Ok(mut v) = log.lock() {
                    v.push((text.clone(), prefix.to_string()));
                }
                let y: f32 = if text.contains("Final answer: 7") {
                    0.9
                } else {
                    0.3
                };
                vec![Some(y.ln()), None, Some((1.0 - y).ln()), None]
            },
        ));
        let s = SelfPrmScorer::new(g.clone());
        let p = Problem::new("p", "What is 3 + 4?");
        let r = Rationale::from_steps(["3 + 4 = 7", "The answer is 7."], Some("7".into()));
        let out = s.score_rationale(&p, &r).await.unwrap();
        assert_eq!(out.scores.len(), 2);
        for (i, sc) in out.scores.iter().enumerate() {
            assert_eq!(sc.step, i);
            assert!((sc.score - 0.9).abs() < 1e-6);
            assert_eq!(sc.scorer, "self-prm");
        }
        // one judgment for the whole solution, in the judge columns
        assert_eq!(out.spent.judge_calls, 1);
        assert_eq!(out.spent.policy_calls, 0);
        assert_eq!(g.calls(), 1);
        let seen = seen.lock().unwrap().clone();
        assert_eq!(
            seen[0].0,
            "Problem: What is 3 + 4?\n\nSolution:\nStep 1: 3 + 4 = 7\nStep 2: The answer is 7.\nFinal answer: 7\n\nIs this solution correct? Answer Yes or No."
        );
        assert_eq!(seen[0].1, "");
        // prompt tokens: the scripted count of the prompt (system + user words)
        let (prompt, _) = SelfPrmScorer::template()
            .render_step(&p, &r.steps[..1], &r.steps[1], Some("7"))
            .unwrap();
        assert_eq!(
            out.spent.judge_prompt_tokens,
            stepwise_model::scripted::prompt_tokens(&prompt, "")
        );
        let wrong = Rationale::from_steps(["3 + 4 = 8", "The answer is 8."], Some("8".into()));
        let out = s.score_rationale(&p, &wrong).await.unwrap();
        assert!((out.scores[1].score - 0.3).abs() < 1e-6);
        // an empty solution is not rated and costs nothing
        let out = s
            .score_rationale(&p, &Rationale::from_steps(Vec::<String>::new(), None))
            .await
            .unwrap();
        assert!(out.scores.is_empty());
        assert_eq!(out.spent.calls(), 0);
    }
}
