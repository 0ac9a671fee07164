//! A *simulated* policy over `arith` problems, for measuring label methods against exact
//! truth at scale: no model is called, and every output names it as a simulation
//! (generator name `sim-arith(p=…)`).
//!
//! The simulation writes one operation per step, `a op b = v`, from the state the prefix
//! reached, then `The answer is v.`. Each step is wrong with probability `p`
//! ([`SimConfig::p`]), independently; a wrong step is either an *arithmetic slip* (the
//! right operation, a wrong result) or, with probability [`SimConfig::operand_errors`], a
//! *misread operand* (a wrong operand, the arithmetic right for it, so an arithmetic
//! checker sees nothing wrong). Every later step computes correctly from the wrong
//! value, so a wrong step carries its error forward as a model's does and the final
//! answer is wrong. Hence, for a problem of `k` operations:
//!
//! - the first error of a fresh solution is at step `i` with probability `(1 − p)^i · p`,
//!   and the solution is right with probability `(1 − p)^k`;
//! - a continuation of a clean prefix of `t` steps succeeds with probability
//!   `(1 − p)^(k − t)` (the prefix's true MC value), and of a prefix with an error with
//!   probability 0.
//!
//! A wrong value is never one of the problem's true intermediate values, so the
//! `arith` ground truth ([`ArithSpec::ground_truth`]) finds the simulated first error
//! exactly. Solution length is the problem's number of operations (the dataset's `ops`).
//!
//! Continuations read the prefix's state: the last `= v` of the prefix's steps is the
//! current value and each such step is one operation done, so rollouts from any partial
//! solution (the simulation's own or another's) go on from there. Sample `i` of a request
//! draws from a ChaCha8 stream seeded by [`stepwise_model::sample_seed`]`(seed, i)`, so
//! outputs depend only on the request, not on batching or call order.
//!
//! Judge requests (the `reference` method: a prompt listing `Step 1: …` lines) get a
//! *simulated judge*: each listed step's true verdict (bad from the true first error on),
//! flipped with probability [`SimConfig::judge_noise`]. That makes the reference method's
//! quality a knob of the simulation, not a property of any model; results say so.
//!
//! Tokens are whitespace-separated words ([`stepwise_model::scripted::count_tokens`]).

use async_trait::async_trait;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use stepwise_core::{Problem, StepSplitter};
use stepwise_data::{ArithOp, ArithSpec};
use stepwise_model::scripted::count_tokens as words;
use stepwise_model::{
    Completion, EngineError, GenerateRequest, Generator, NextTokenLogprobs, Prompt, sample_seed,
};

/// The knobs of the simulation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SimConfig {
    /// Probability that a step is wrong (independently per step).
    pub p: f64,
    /// Share of wrong steps that misread an operand (arithmetic right for the wrong
    /// operand); the others are arithmetic slips.
    pub operand_errors: f64,
    /// Probability that the simulated judge flips a step's true verdict.
    pub judge_noise: f64,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            p: 0.1,
            operand_errors: 0.5,
            judge_noise: 0.1,
        }
    }
}

impl SimConfig {
    /// Checks the ranges (every knob is a probability).
    pub fn validate(&self) -> Result<(), String> {
        for (name, v) in [
            ("p", self.p),
            ("operand_errors", self.operand_errors),
            ("judge_noise", self.judge_noise),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("simulation knob {name} must be in 0..=1, got {v}"));
            }
        }
        Ok(())
    }

    /// The generator name: a simulation, with its knobs.
    pub fn name(&self) -> String {
        format!(
            "sim-arith(p={},operand-errors={},judge-noise={})",
            self.p, self.operand_errors, self.judge_noise
        )
    }
}

/// One simulated continuation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimContinuation {
    /// The continuation's steps, ending with `The answer is v.`.
    pub steps: Vec<String>,
    /// Index (within the continuation) of the first step the simulation made wrong.
    pub first_error: Option<usize>,
    /// The final value.
    pub answer: i128,
}

/// `a op b` on unbounded (signed) integers: a carried error may leave `arith`'s range.
/// Division truncates (a wrong value need not divide evenly).
fn apply(op: ArithOp, a: i128, b: i128) -> i128 {
    match op {
        ArithOp::Add => a.saturating_add(b),
        ArithOp::Sub => a.saturating_sub(b),
        ArithOp::Mul => a.saturating_mul(b),
        ArithOp::Div => {
            if b == 0 {
                a
            } else {
                a / b
            }
        }
    }
}

/// The value claimed by a step: the number after its last `=`.
fn claimed_value(step: &str) -> Option<i128> {
    let (_, rhs) = step.rsplit_once('=')?;
    let t = rhs.trim().trim_end_matches('.').replace(',', "");
    t.parse::<i128>().ok()
}

/// The state a prefix reached: the current value and the operations done.
pub fn prefix_state<S: AsRef<str>>(spec: &ArithSpec, prefix: &[S]) -> (i128, usize) {
    let mut cur = i128::from(spec.start);
    let mut done = 0usize;
    for s in prefix {
        if let Some(v) = claimed_value(s.as_ref()) {
            cur = v;
            done += 1;
        }
    }
    (cur, done.min(spec.steps.len()))
}

/// Continues `prefix` (step texts) of `spec`'s problem with the sample stream `seed`.
pub fn continue_from<S: AsRef<str>>(
    cfg: &SimConfig,
    spec: &ArithSpec,
    prefix: &[S],
    seed: u64,
) -> SimContinuation {
    let (mut cur, done) = prefix_state(spec, prefix);
    let truth: Vec<i128> = spec.values().into_iter().map(i128::from).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut steps = Vec::with_capacity(spec.steps.len() - done + 1);
    let mut first_error = None;
    for s in &spec.steps[done..] {
        let b = i128::from(s.operand);
        let right = apply(s.op, cur, b);
        let (operand, value) = if rng.gen_bool(cfg.p) {
            let misread = rng.gen_bool(cfg.operand_errors);
            // A wrong value must differ from every true intermediate value, so the
            // ground truth sees the error where it was made; a misread operand that
            // changes nothing (`0 × b'`) becomes a slip. With at most 10 true values
            // and 9 offsets a draw that fits is found at once in practice; after 64
            // tries the last draw stands.
            let mut pick = (b, right + 1);
            for _ in 0..64 {
                let d = i128::from(rng.gen_range(1u8..=9));
                let mut cand = (b, right + d);
                if misread {
                    let m = (b + d, apply(s.op, cur, b + d));
                    if m.1 != right {
                        cand = m;
                    }
                }
                pick = cand;
                if !truth.contains(&cand.1) {
                    break;
                }
            }
            if first_error.is_none() && pick.1 != right {
                first_error = Some(steps.len());
            }
            pick
        } else {
            (b, right)
        };
        steps.push(format!("{cur} {} {operand} = {value}", s.op.symbol()));
        cur = value;
    }
    steps.push(format!("The answer is {cur}."));
    SimContinuation {
        steps,
        first_error,
        answer: cur,
    }
}

/// The simulated policy over a set of `arith` problems.
pub struct SimPolicy {
    cfg: SimConfig,
    problems: Vec<(String, ArithSpec)>,
    splitter: StepSplitter,
    calls: AtomicU64,
}

impl SimPolicy {
    /// The simulation over `problems` (each must be an `arith` problem: its ground truth
    /// drives the simulation). Errors name the first problem that is not, or a knob out
    /// of range.
    pub fn new(cfg: SimConfig, problems: &[Problem]) -> crate::Result<Self> {
        cfg.validate().map_err(crate::AnnotateError::Config)?;
        let problems = problems
            .iter()
            .map(|p| Ok((p.question.clone(), ArithSpec::from_problem(p)?)))
            .collect::<crate::Result<Vec<_>>>()?;
        Ok(Self {
            cfg,
            problems,
            splitter: StepSplitter::default(),
            calls: AtomicU64::new(0),
        })
    }

    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    /// Generation calls answered so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// The problem whose question the prompt contains (the longest such question).
    fn find(&self, text: &str) -> Option<&ArithSpec> {
        self.problems
            .iter()
            .filter(|(q, _)| text.contains(q.as_str()))
            .max_by_key(|(q, _)| q.len())
            .map(|(_, s)| s)
    }

    /// The simulated judge's lines for the `Step i: text` lines of `user`.
    fn judge_text(&self, spec: &ArithSpec, user: &str, seed: u64) -> String {
        let listed: Vec<&str> = user
            .lines()
            .filter_map(|l| {
                let rest = l.strip_prefix("Step ")?;
                let (num, text) = rest.split_once(": ")?;
                num.parse::<usize>().ok().map(|_| text)
            })
            .collect();
        let first = spec.ground_truth(&listed).first_wrong;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let lines: Vec<String> = (0..listed.len())
            .map(|i| {
                let truly_good = first.is_none_or(|f| i < f);
                let good = truly_good != rng.gen_bool(self.cfg.judge_noise);
                format!(
                    "Step {}: {} | simulated | simulated judge (noise {})",
                    i + 1,
                    if good { "correct" } else { "incorrect" },
                    self.cfg.judge_noise
                )
            })
            .collect();
        crate::reference::judged_after_builtin_start(&lines)
    }
}

#[async_trait]
impl Generator for SimPolicy {
    fn name(&self) -> String {
        self.cfg.name()
    }

    /// Outputs are a function of the request alone.
    fn reproducible(&self) -> bool {
        true
    }

    async fn generate(&self, req: &GenerateRequest) -> Result<Vec<Completion>, EngineError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let (all, user) = crate::testing::prompt_texts(&req.prompt);
        let spec = self.find(&all).ok_or_else(|| {
            EngineError::InvalidRequest(
                "simulated policy: the prompt names none of its arith problems".into(),
            )
        })?;
        let is_judge = user.lines().any(|l| l.starts_with("Step 1: "));
        let prefix: Vec<String> = self
            .splitter
            .split(&req.assistant_prefix)
            .into_iter()
            .map(|s| s.text)
            .collect();
        let prompt_tokens = words(&all) + words(&req.assistant_prefix);
        let mut out = Vec::with_capacity(req.params.n);
        for i in 0..req.params.n {
            let seed = u64::from(sample_seed(req.params.seed, i));
            let text = if is_judge {
                self.judge_text(spec, &user, seed)
            } else {
                self.splitter
                    .join_texts(&continue_from(&self.cfg, spec, &prefix, seed).steps)
            };
            out.push(crate::testing::completion(text, prompt_tokens));
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
            "next-token log-probabilities in the simulated policy",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(ops: usize, seed: u64) -> (Problem, ArithSpec) {
        let cfg = stepwise_data::ArithConfig::parse(&format!("ops={ops},n=1,seed={seed}"))
            .unwrap_or_else(|e| panic!("{e}"));
        let p = stepwise_data::arith::generate_one(&cfg, 0).unwrap();
        let s = ArithSpec::from_problem(&p).unwrap();
        (p, s)
    }

    #[test]
    fn a_clean_run_is_the_reference_and_a_prefix_state_is_read_back() {
        let (_, s) = spec(4, 1);
        let cfg = SimConfig {
            p: 0.0,
            ..SimConfig::default()
        };
        let c = continue_from(&cfg, &s, &[] as &[&str], 7);
        assert_eq!(c.first_error, None);
        assert_eq!(c.answer, i128::from(s.answer));
        assert_eq!(c.steps.len(), 5);
        assert_eq!(s.ground_truth(&c.steps).first_wrong, None);
        // continuing after two steps gives the remaining ones
        let rest = continue_from(&cfg, &s, &c.steps[..2], 9);
        assert_eq!(rest.steps, c.steps[2..].to_vec());
        assert_eq!(
            prefix_state(&s, &c.steps[..2]),
            (i128::from(s.steps[1].value), 2)
        );
    }

    #[test]
    fn an_error_is_carried_and_found_by_the_ground_truth() {
        let (_, s) = spec(6, 2);
        let cfg = SimConfig {
            p: 1.0,
            operand_errors: 0.0,
            judge_noise: 0.0,
        };
        let c = continue_from(&cfg, &s, &[] as &[&str], 3);
        assert_eq!(c.first_error, Some(0));
        assert_eq!(s.ground_truth(&c.steps).first_wrong, Some(0));
        assert_ne!(c.answer, i128::from(s.answer));
        // after a wrong prefix a clean simulation still carries the error to the end
        let clean = SimConfig { p: 0.0, ..cfg };
        let after = continue_from(&clean, &s, &c.steps[..1], 4);
        assert_ne!(after.answer, i128::from(s.answer));
    }

    #[test]
    fn knobs_are_checked_and_named() {
        let bad = SimConfig {
            p: 1.5,
            ..SimConfig::default()
        };
        assert!(bad.validate().unwrap_err().contains("p must be"));
        assert!(SimConfig::default().name().starts_with("sim-arith(p=0.1,"));
    }
}
