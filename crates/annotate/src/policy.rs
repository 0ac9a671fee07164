//! Rollouts: continuations of a partial rationale, checked against the gold answer.

use crate::{AnnotateError, Result};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::Mutex;
use stepwise_core::{AnswerExtractor, Problem, Spent, StepSplitter};
use stepwise_model::{Completion, GenerateRequest, Generator, Prompt, SamplingParams};
use stepwise_score::PolicyPrompt;

/// Sampling settings of rollouts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutParams {
    pub temperature: f32,
    pub top_p: f32,
    pub top_k: u32,
    /// Tokens per continuation.
    pub max_tokens: u32,
}

impl Default for RolloutParams {
    fn default() -> Self {
        Self {
            temperature: 0.7,
            top_p: 1.0,
            top_k: 40,
            max_tokens: 128,
        }
    }
}

/// One continuation from a prefix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    /// The continuation's own steps (after the prefix), cut after the final answer.
    pub steps: Vec<String>,
    pub answer: Option<String>,
    /// The answer verified against the gold answer.
    pub correct: bool,
    pub tokens: u64,
}

/// The policy model, its prompt and how its answers are read and checked; and the judge
/// of the methods that ask one (the policy itself unless [`Policy::with_judge`] gave
/// another model).
pub struct Policy {
    pub generator: Arc<dyn Generator>,
    /// The judge when it is not the policy (`annotate --judge-model` / `--judge-endpoint`).
    pub judge: Option<Arc<dyn Generator>>,
    pub prompt: PolicyPrompt,
    pub params: RolloutParams,
    pub splitter: StepSplitter,
    pub extractor: AnswerExtractor,
    pub verify: stepwise_verify::Options,
    spent: Mutex<Spent>,
}

impl Policy {
    pub fn new(generator: Arc<dyn Generator>, params: RolloutParams) -> Self {
        Self {
            generator,
            judge: None,
            prompt: PolicyPrompt::default(),
            params,
            splitter: StepSplitter::default(),
            extractor: AnswerExtractor::default(),
            verify: stepwise_verify::Options::default(),
            spent: Mutex::new(Spent::default()),
        }
    }

    /// The same policy with `judge` answering the judge requests ([`Policy::judge`])
    /// instead of the policy model (`None`: the policy judges).
    pub fn with_judge(mut self, judge: Option<Arc<dyn Generator>>) -> Self {
        self.judge = judge;
        self
    }

    /// The model that answers judge requests.
    pub fn judge_generator(&self) -> &Arc<dyn Generator> {
        self.judge.as_ref().unwrap_or(&self.generator)
    }

    /// Everything spent through this policy so far (all questions).
    pub fn total_spent(&self) -> Spent {
        self.spent.lock().map(|c| *c).unwrap_or_default()
    }

    fn add_spent(&self, c: Spent) {
        if let Ok(mut g) = self.spent.lock() {
            *g += c;
        }
    }

    /// Whether `answer` is the gold answer of `problem`.
    pub fn is_correct(&self, problem: &Problem, answer: Option<&str>) -> bool {
        stepwise_verify::answer_correct(problem.gold.as_deref(), answer, &self.verify)
            .unwrap_or(false)
    }

    /// `n` continuations of `prefix` (step texts) for `problem`, with a seed derived from
    /// `seed`. Adds what they cost to `spent`, in the policy columns (one continuation
    /// per returned [`Rollout`]).
    pub async fn rollouts(
        &self,
        problem: &Problem,
        prefix: &[String],
        n: usize,
        seed: u64,
        spent: &mut Spent,
    ) -> Result<Vec<Rollout>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        if problem.gold.is_none() {
            return Err(AnnotateError::NoGold(problem.id.clone()));
        }
        let (prompt, start) = self
            .prompt
            .render(problem)
            .map_err(|e| AnnotateError::Template {
                place: "policy prompt".into(),
                reason: e.to_string(),
            })?;
        let mut assistant_prefix = start;
        if !prefix.is_empty() {
            if !assistant_prefix.is_empty() && !assistant_prefix.ends_with('\n') {
                assistant_prefix.push('\n');
            }
            assistant_prefix.push_str(&self.splitter.join_texts(prefix));
            assistant_prefix.push_str(self.splitter.separator());
        }
        let req = GenerateRequest {
            prompt,
            assistant_prefix,
            params: SamplingParams {
                n,
                temperature: self.params.temperature,
                top_p: self.params.top_p,
                top_k: self.params.top_k,
                max_tokens: self.params.max_tokens,
                stop: Vec::new(),
                seed,
                logprobs: false,
            },
        };
        let out = self.send(&self.generator, problem, &req).await?;
        let mut c = Spent {
            policy_calls: 1,
            ..Spent::default()
        };
        let mut rollouts = Vec::with_capacity(out.len());
        for comp in out {
            c.policy_tokens += comp.generated_tokens;
            c.policy_prompt_tokens += comp.prompt_tokens;
            let text = cut_after_answer(&comp.text);
            let answer = self.extractor.extract(text).map(|e| e.text);
            let correct = self.is_correct(problem, answer.as_deref());
            let steps = self
                .splitter
                .split(text)
                .into_iter()
                .map(|s| s.text)
                .collect();
            rollouts.push(Rollout {
                steps,
                answer,
                correct,
                tokens: comp.generated_tokens,
            });
        }
        *spent += c;
        self.add_spent(c);
        Ok(rollouts)
    }

    /// Sends one request to `generator`; an engine error names the problem.
    async fn send(
        &self,
        generator: &Arc<dyn Generator>,
        problem: &Problem,
        req: &GenerateRequest,
    ) -> Result<Vec<Completion>> {
        generator
            .generate(req)
            .await
            .map_err(|source| AnnotateError::Engine {
                problem: problem.id.clone(),
                source,
            })
    }

    /// Sends a judge request (reference method) to the judge ([`Policy::judge_generator`]:
    /// the separate judge when there is one, else the policy model) and adds its cost to
    /// `spent`, in the judge columns (tokens generated on behalf of the labels).
    pub async fn judge(
        &self,
        problem: &Problem,
        prompt: Prompt,
        assistant_prefix: String,
        max_tokens: u32,
        seed: u64,
        spent: &mut Spent,
    ) -> Result<String> {
        let req = GenerateRequest {
            prompt,
            assistant_prefix,
            params: SamplingParams {
                n: 1,
                temperature: 0.0,
                top_p: 1.0,
                top_k: 0,
                max_tokens,
                stop: Vec::new(),
                seed,
                logprobs: false,
            },
        };
        let out = self.send(self.judge_generator(), problem, &req).await?;
        let mut c = Spent {
            judge_calls: 1,
            ..Spent::default()
        };
        let mut text = String::new();
        for comp in out.into_iter().take(1) {
            c.judge_tokens += comp.generated_tokens;
            c.judge_prompt_tokens += comp.prompt_tokens;
            text = comp.text;
        }
        *spent += c;
        self.add_spent(c);
        Ok(text)
    }
}

/// The text up to the end of the line that states the final answer (`The answer is …`
/// or a `\boxed{…}`); models often keep talking after it. Unchanged when there is none.
pub fn cut_after_answer(text: &str) -> &str {
    let lower = text.to_ascii_lowercase();
    let pos = ["the answer is", "\\boxed{", "final answer"]
        .iter()
        .filter_map(|m| lower.find(m))
        .min();
    match pos {
        Some(p) => {
            let end = text[p..].find('\n').map_or(text.len(), |e| p + e);
            &text[..end]
        }
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_after_the_answer_line() {
        assert_eq!(
            cut_after_answer("3 + 4 = 7\n\nThe answer is 7.\n\nAlso 8 is nice"),
            "3 + 4 = 7\n\nThe answer is 7."
        );
        assert_eq!(cut_after_answer("no answer here"), "no answer here");
        assert_eq!(
            cut_after_answer("so \\boxed{5} ok\nmore"),
            "so \\boxed{5} ok"
        );
    }
}
