//! A scripted policy for tests and dry runs: a test double of [`Generator`] whose
//! rollouts succeed with known probabilities per prefix.
//!
//! Each registered problem has a correct chain of steps (its reference, one step per
//! line or paragraph, then `The answer is G.`) and a *planted* wrong solution that
//! agrees with the correct chain before step `e` (the planted first error) and is wrong
//! from `e` on. For a request whose assistant prefix holds `t` steps:
//!
//! - if the prefix agrees with the correct chain, each sample continues correctly with
//!   probability `p_good` and otherwise continues the planted solution from step `t`
//!   (so MC(prefix) = `p_good` in expectation for `t ≤ e`);
//! - otherwise (the prefix contains an error) every sample continues the planted
//!   solution and answers wrongly (MC = 0).
//!
//! Requests that are not policy requests (no `Solve it step by step` in the prompt) are
//! judge requests: the scripted judge grades each listed step exactly (`correct` iff it
//! equals the correct chain's step). Randomness is a ChaCha8 stream per (seed, sample),
//! so results do not depend on batching or on the order of concurrent calls. Tokens are
//! whitespace-separated words.

use crate::{mix_seed, stable_hash};
use async_trait::async_trait;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use stepwise_core::{Problem, StepSplitter};
use stepwise_model::scripted::count_tokens as words;
use stepwise_model::{
    Completion, EngineError, FinishReason, GenerateRequest, Generator, NextTokenLogprobs, Prompt,
};

/// The script of one problem.
#[derive(Debug, Clone, PartialEq)]
pub struct Planted {
    pub question: String,
    /// The correct chain, ending with the answer step.
    pub correct: Vec<String>,
    /// The planted wrong solution, ending with a wrong answer step.
    pub planted: Vec<String>,
    /// Index of the planted first error.
    pub first_error: usize,
    /// Success probability of a continuation from a clean prefix.
    pub p_good: f64,
}

impl Planted {
    /// A script for `problem` from its reference (lines or paragraphs) and gold answer,
    /// with the first error planted at `first_error` (clamped to the steps).
    pub fn from_problem(
        problem: &Problem,
        first_error: Option<usize>,
        p_good: f64,
    ) -> Option<Self> {
        let gold = problem.gold.clone()?;
        let reference = problem.reference.clone()?;
        let mut correct: Vec<String> = reference
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.to_ascii_lowercase().starts_with("the answer is"))
            .map(str::to_string)
            .collect();
        if correct.is_empty() {
            return None;
        }
        correct.push(format!("The answer is {gold}."));
        let n = correct.len();
        let e = first_error
            .unwrap_or_else(|| {
                (stable_hash(&[problem.question.as_bytes()]) % (n as u64 - 1).max(1)) as usize
            })
            .min(n - 1);
        let wrong_gold = format!("{gold}1");
        let planted = correct
            .iter()
            .enumerate()
            .map(|(i, s)| {
                if i + 1 == n {
                    format!("The answer is {wrong_gold}.")
                } else if i >= e {
                    wrong_step(s, i)
                } else {
                    s.clone()
                }
            })
            .collect();
        Some(Self {
            question: problem.question.clone(),
            correct,
            planted,
            first_error: e,
            p_good,
        })
    }
}

/// A wrong version of step `s`: `lhs = v` becomes `lhs = v + 1`; other steps get a
/// wrong claim appended.
fn wrong_step(s: &str, i: usize) -> String {
    if let Some((lhs, rhs)) = s.rsplit_once('=')
        && let Ok(v) = rhs.trim().trim_end_matches('.').parse::<i64>()
    {
        return format!("{lhs}= {}", v + 1);
    }
    format!("{s} So 1 + {i} = {}.", i + 2)
}

/// A test double's view of a prompt: all of its text, and the last (user) message.
pub(crate) fn prompt_texts(prompt: &Prompt) -> (String, String) {
    match prompt {
        Prompt::Text(t) => (t.clone(), t.clone()),
        Prompt::Chat(m) => (
            m.iter()
                .map(|m| m.content.as_str())
                .collect::<Vec<_>>()
                .join("\n"),
            m.last().map(|m| m.content.clone()).unwrap_or_default(),
        ),
    }
}

/// A finished completion of `text`, its tokens counted as words.
pub(crate) fn completion(text: String, prompt_tokens: u64) -> Completion {
    let generated_tokens = words(&text);
    Completion {
        text,
        token_ids: Vec::new(),
        logprobs: None,
        finish: FinishReason::Eos,
        prompt_tokens,
        generated_tokens,
    }
}

/// The scripted generator.
pub struct ScriptedPolicy {
    problems: Vec<Planted>,
    by_question: HashMap<String, usize>,
    /// Sleep before answering each call (to make crash tests hit mid-run).
    pub delay: Duration,
    calls: AtomicU64,
    splitter: StepSplitter,
}

impl ScriptedPolicy {
    pub fn new(problems: Vec<Planted>) -> Self {
        let by_question = problems
            .iter()
            .enumerate()
            .map(|(i, p)| (p.question.clone(), i))
            .collect();
        Self {
            problems,
            by_question,
            delay: Duration::ZERO,
            calls: AtomicU64::new(0),
            splitter: StepSplitter::default(),
        }
    }

    /// Scripts for every problem that has a reference and a gold answer.
    pub fn for_problems(problems: &[Problem], p_good: f64) -> Self {
        Self::new(
            problems
                .iter()
                .filter_map(|p| Planted::from_problem(p, None, p_good))
                .collect(),
        )
    }

    /// Generation calls made so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    fn find(&self, text: &str) -> Option<&Planted> {
        // Longest registered question contained in the prompt.
        self.problems
            .iter()
            .filter(|p| text.contains(&p.question))
            .max_by_key(|p| p.question.len())
            .or_else(|| self.by_question.get(text).map(|&i| &self.problems[i]))
    }

    fn policy_text(&self, p: &Planted, prefix: &str, seed: u64, sample: usize) -> String {
        let steps: Vec<String> = self
            .splitter
            .split(prefix)
            .into_iter()
            .map(|s| s.text)
            .collect();
        let t = steps.len();
        let clean = t <= p.correct.len() && steps.iter().zip(&p.correct).all(|(a, b)| a == b);
        let mut rng = ChaCha8Rng::seed_from_u64(mix_seed(seed, &sample.to_string()));
        let draw: f64 = rng.r#gen();
        let cont: Vec<String> = if clean && draw < p.p_good {
            p.correct[t.min(p.correct.len())..].to_vec()
        } else if t < p.planted.len() {
            p.planted[t..].to_vec()
        } else {
            vec![p.planted[p.planted.len() - 1].clone()]
        };
        self.splitter.join_texts(&cont)
    }

    fn judge_text(&self, p: &Planted, user: &str) -> String {
        let mut out = Vec::new();
        for line in user.lines() {
            let Some(rest) = line.strip_prefix("Step ") else {
                continue;
            };
            let Some((num, text)) = rest.split_once(": ") else {
                continue;
            };
            let Ok(i) = num.parse::<usize>() else {
                continue;
            };
            if i == 0 {
                continue;
            }
            let ok = p
                .correct
                .get(i - 1)
                .is_some_and(|c| c.replace('\n', " ") == text);
            out.push(format!(
                "Step {i}: {} | {} | scripted",
                if ok { "correct" } else { "incorrect" },
                if ok {
                    format!("reference step {i}")
                } else {
                    "none".into()
                }
            ));
        }
        crate::reference::judged_after_builtin_start(&out)
    }
}

#[async_trait]
impl Generator for ScriptedPolicy {
    fn name(&self) -> String {
        "scripted-policy".into()
    }

    async fn generate(&self, req: &GenerateRequest) -> Result<Vec<Completion>, EngineError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let (all, user) = prompt_texts(&req.prompt);
        let p = self.find(&all).ok_or_else(|| {
            EngineError::InvalidRequest("scripted policy: unknown problem".into())
        })?;
        let is_policy = all.contains("Solve it step by step");
        let prompt_tokens = words(&all) + words(&req.assistant_prefix);
        let mut out = Vec::with_capacity(req.params.n);
        for i in 0..req.params.n {
            let text = if is_policy {
                self.policy_text(p, &req.assistant_prefix, req.params.seed, i)
            } else {
                self.judge_text(p, &user)
            };
            out.push(completion(text, prompt_tokens));
        }
        Ok(out)
    }

    async fn next_token_logprobs(
        &self,
        _prompt: &Prompt,
        _assistant_prefix: &str,
        _candidates: &[String],
    ) -> Result<NextTokenLogprobs, EngineError> {
        Err(EngineError::Unsupported(
            "next-token log-probabilities in the scripted policy",
        ))
    }
}
