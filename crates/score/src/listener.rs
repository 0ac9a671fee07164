//! The listener: an independent, frozen model's confidence in a solution's answer given
//! only its reasoning.
//!
//! Gambashidze et al. 2025, "Listener-Rewarded Thinking in VLMs for Image Preferences"
//! (arXiv:2506.22832): a reasoner trained with GRPO loses accuracy when its reasoning
//! trace contradicts what an independent frozen model (the listener) concludes from the
//! same trace, so the listener re-reads the reasoner's chain of thought and its calibrated
//! confidence in the reasoner's answer shapes the reward: explanations must persuade a
//! model that did not write them.
//!
//! Here the listener is the judge model (`--judge-model` / `--judge-endpoint`; the policy
//! when none is given), never trained by stepwise. It reads the question and the
//! reasoning with the final answer taken out ([`reasoning_without_answer`]) in the
//! template `prompts/listener.txt`, and the score is
//!
//! `P_listener(a | q, r) = exp(Σ_t log p(a_t | q, r, a_<t))`
//!
//! over the tokens of the solution's stated answer `a` (one space before it), read with
//! [`Generator::continuation_logprobs`] (one pass on the embedded model; one request per
//! token on a server). A solution without a stated answer scores 0. Every step of the
//! solution gets that score (solution-level, as `self-prm`): best-of-N reranks by it
//! (`--strategy bon --scorer listener`) and the reward library serves it as
//! `kind = "scorer", spec = "listener"`. The tokens read go in the judge columns.

use crate::prompt::Template;
use crate::{ScoreError, Scored, StepScorer, engine_err};
use async_trait::async_trait;
use std::sync::Arc;
use stepwise_core::{Problem, Rationale, Spent, Step, StepSplitter};
use stepwise_model::Generator;

const LISTENER_DEFAULT: &str = include_str!("../prompts/listener.txt");

/// The text of a solution before the sentence that states its final answer: the steps
/// joined by blank lines, cut at the start of the sentence (or line) holding the last
/// occurrence of `answer`. Without an occurrence the whole text is the reasoning.
pub fn reasoning_without_answer(steps: &[Step], answer: &str) -> String {
    let text = StepSplitter::default().join(steps);
    let answer = answer.trim();
    if answer.is_empty() {
        return text;
    }
    let Some(at) = text.rfind(answer) else {
        return text;
    };
    let before = &text[..at];
    // the sentence starts after the last newline, or after ". " / "! " / "? "
    let line = before.rfind('\n').map_or(0, |i| i + 1);
    let sentence = [". ", "! ", "? "]
        .iter()
        .filter_map(|p| before.rfind(p).map(|i| i + p.len()))
        .max()
        .unwrap_or(0);
    text[..line.max(sentence)].trim_end().to_string()
}

/// The listener scorer (see the module docs).
pub struct ListenerScorer {
    listener: Arc<dyn Generator>,
    template: Template,
}

impl ListenerScorer {
    /// The scorer's name.
    pub const NAME: &'static str = "listener";

    /// `listener` reading with the built-in template.
    pub fn new(listener: Arc<dyn Generator>) -> Self {
        let template = Template::parse(
            LISTENER_DEFAULT,
            "built-in prompts/listener.txt",
            &["question", "reasoning"],
        )
        // The built-in file is tested below; failing here is a build defect.
        .unwrap_or_else(|e| panic!("built-in listener prompt is malformed: {e}"));
        Self { listener, template }
    }

    /// The listener's probability of `answer` after `reasoning`, and its cost.
    pub async fn confidence(
        &self,
        question: &str,
        reasoning: &str,
        answer: &str,
    ) -> Result<(f64, Spent), ScoreError> {
        let reasoning = if reasoning.trim().is_empty() {
            "(none)"
        } else {
            reasoning
        };
        let (prompt, prefix) = self
            .template
            .render(&[("question", question), ("reasoning", reasoning)])?;
        let read = self
            .listener
            .continuation_logprobs(&prompt, prefix.trim_end(), &format!(" {}", answer.trim()))
            .await
            .map_err(engine_err(Self::NAME))?;
        let spent = Spent {
            judge_prompt_tokens: read.prompt_tokens,
            judge_calls: read.calls,
            ..Spent::default()
        };
        Ok((read.sum().exp(), spent))
    }
}

#[async_trait]
impl StepScorer for ListenerScorer {
    fn name(&self) -> String {
        Self::NAME.into()
    }

    /// The solution through `step`, when `answer` is stated (0 while it is open).
    async fn score_step(
        &self,
        problem: &Problem,
        prefix: &[Step],
        step: &Step,
        answer: Option<&str>,
    ) -> Result<Scored, ScoreError> {
        crate::solution_so_far(self, problem, prefix, step, answer).await
    }

    /// One listener confidence for the whole solution, given to every step.
    async fn score_rationale(
        &self,
        problem: &Problem,
        rationale: &Rationale,
    ) -> Result<Scored, ScoreError> {
        if rationale.steps.is_empty() {
            return Ok(Scored::default());
        }
        let (value, spent, detail) = match rationale.answer.as_deref().map(str::trim) {
            Some(a) if !a.is_empty() => {
                let reasoning = reasoning_without_answer(&rationale.steps, a);
                let (p, spent) = self.confidence(&problem.question, &reasoning, a).await?;
                (p, spent, format!("P_listener({a:?} | reasoning) = {p:.4}"))
            }
            _ => (0.0, Spent::default(), "no stated answer".to_string()),
        };
        Ok(crate::every_step(
            &rationale.steps,
            value,
            Self::NAME,
            &detail,
            spent,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stepwise_model::Prompt;
    use stepwise_model::scripted::ScriptedGenerator;

    fn steps(texts: &[&str]) -> Vec<Step> {
        Rationale::from_steps(texts.iter().copied(), None).steps
    }

    #[test]
    fn the_answer_statement_is_cut_from_the_reasoning() {
        let s = steps(&["3 + 4 = 7, right", "so \\boxed{7}"]);
        assert_eq!(reasoning_without_answer(&s, "7"), "3 + 4 = 7, right");
        let s = steps(&["3+4=7. The answer is 7."]);
        assert_eq!(reasoning_without_answer(&s, "7"), "3+4=7.");
        // no occurrence: all of it
        let s = steps(&["It is a number."]);
        assert_eq!(reasoning_without_answer(&s, "12"), "It is a number.");
        // the answer in the first sentence: nothing is left
        let s = steps(&["7"]);
        assert_eq!(reasoning_without_answer(&s, "7"), "");
        assert!(LISTENER_DEFAULT.contains("{reasoning}"));
    }

    /// A listener whose tokens are words: " 7" after the answer cue has log-probability
    /// ln 0.6 when the reasoning shows "= 7", else ln 0.1; any other token ln 0.5.
    fn listener(seen: Arc<std::sync::Mutex<Vec<(String, String)>>>) -> Arc<dyn Generator> {
        Arc::new(
            ScriptedGenerator::new(|_, _| String::new()).with_reader(move |p, before, t| {
                let Prompt::Chat(m) = p else { return 0.0 };
                let user = m.last().map(|m| m.content.clone()).unwrap_or_default();
                seen.lock()
                    .unwrap()
                    .push((user.clone(), before.to_string()));
                if t == " 7" && before.ends_with("answer:") {
                    if user.contains("= 7") {
                        0.6f32.ln()
                    } else {
                        0.1f32.ln()
                    }
                } else {
                    0.5f32.ln()
                }
            }),
        )
    }

    #[tokio::test]
    async fn the_score_is_the_listeners_probability_of_the_stated_answer() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let l = ListenerScorer::new(listener(seen.clone()));
        let p = Problem::new("p", "What is 3 + 4?");
        let r = Rationale::from_steps(["3 + 4 = 7", "The answer is 7."], Some("7".into()));
        let out = l.score_rationale(&p, &r).await.unwrap();
        assert_eq!(out.scores.len(), 2);
        assert!(out.scores.iter().all(|s| (s.score - 0.6).abs() < 1e-6));
        let seen = seen.lock().unwrap().clone();
        // one token read, after the template's cue; the answer sentence is not shown
        assert_eq!(seen.len(), 1);
        assert!(
            seen[0].0.contains("Problem: What is 3 + 4?"),
            "{}",
            seen[0].0
        );
        assert!(seen[0].0.contains("3 + 4 = 7\n"), "{}", seen[0].0);
        assert!(!seen[0].0.contains("The answer is"), "{}", seen[0].0);
        assert_eq!(seen[0].1, "The reasoning leads to the final answer:");
        assert_eq!(out.spent.judge_calls, 1);
        assert!(out.spent.judge_prompt_tokens > 0);
        assert_eq!(out.spent.policy_calls, 0);

        // reasoning that does not show it: 0.1; a two-token answer multiplies:
        // P(" 7") · P(" apples") = 0.1 · 0.5
        let r = Rationale::from_steps(["I guess.", "So 7 apples."], Some("7 apples".into()));
        let out = l.score_rationale(&p, &r).await.unwrap();
        assert!(
            (out.scores[0].score - 0.05).abs() < 1e-6,
            "{:?}",
            out.scores
        );
        // no answer: 0, no call
        let r = Rationale::from_steps(["3 + 4 = 7"], None);
        let out = l.score_rationale(&p, &r).await.unwrap();
        assert_eq!(out.scores[0].score, 0.0);
        assert_eq!(out.spent.judge_calls, 0);
    }

    #[tokio::test]
    async fn a_listener_without_continuation_logprobs_is_an_error_naming_it() {
        let l = ListenerScorer::new(Arc::new(ScriptedGenerator::new(|_, _| String::new())));
        let p = Problem::new("p", "q");
        let r = Rationale::from_steps(["x = 7"], Some("7".into()));
        let e = stepwise_core::error_chain(&l.score_rationale(&p, &r).await.unwrap_err());
        assert!(
            e.contains("listener: model call failed") && e.contains("continuation"),
            "{e}"
        );
    }
}
