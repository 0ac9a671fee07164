//! Adaptive Monte-Carlo labels: Math-Shepherd's hard label (Wang et al. 2024) with the
//! rollouts a label does not need left out.
//!
//! Math-Shepherd's hard estimate labels the prefix `steps[..=i]` good iff at least one of
//! its `k` rollouts reaches the gold answer. Two facts of that rule decide most labels
//! before `k` rollouts are spent:
//!
//! 1. **The first correct rollout decides "good".** Rollouts after it cannot change an
//!    "any correct" label, so a prefix's rollouts stop there. Only "bad" needs the whole
//!    cap: no number of wrong rollouts short of the cap decides it. Rollouts are drawn in
//!    batches of 1, 2, 4, … (capped at what is left of `max_k`), so a prefix with true
//!    MC value `q` costs about `min(1/q, max_k)` rollouts and at most twice what strictly
//!    one-at-a-time sampling would, in `log2(max_k)` calls instead of `max_k`.
//! 2. **Labels are monotone along a solution.** A correct continuation of `steps[..=j]`
//!    is, with `steps[i+1..=j]` in front, a correct continuation of `steps[..=i]` for
//!    every `i < j`: good at `j` implies good before `j`, and bad at `i` implies bad
//!    after `i`. So the first bad prefix is found by bisection, and a solution whose own
//!    answer is right is good at every step without any rollout (it *is* a correct
//!    continuation of each of its prefixes); the last step of a wrong answered
//!    solution is bad without rollouts, as in [`crate::mc`].
//!
//! The hard labels equal mc's for the probed prefixes with the same cap (the same rule
//! on fewer draws), and for the rest they are what monotonicity implies, where mc's
//! independent estimates can contradict each other (good after bad). The soft values are
//! *not* MC estimates: a probed prefix has `correct / drawn` of a sample that stopped at
//! its first success, and an inferred step has 1 (implied good) or 0 (implied bad), with
//! a reason naming the step it was inferred from. Use `mc` for soft labels.

use crate::mc::{Solution, Tally};
use crate::policy::Policy;
use crate::{Method, QuestionResult, Result, StepLabel, mix_seed};
use serde::{Deserialize, Serialize};
use stepwise_core::{Problem, Spent};

/// Settings of the `adaptive-mc` method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdaptiveConfig {
    /// Most rollouts from one prefix before it is labelled bad.
    pub max_k: usize,
}

impl Default for AdaptiveConfig {
    fn default() -> Self {
        Self { max_k: 16 }
    }
}

/// What probing one prefix found: rollouts drawn and how many were correct.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    pub drawn: u32,
    pub correct: u32,
}

impl Probe {
    pub fn good(&self) -> bool {
        self.correct > 0
    }
}

/// Draws rollouts from `steps[..=i]` in batches of 1, 2, 4, … until one is correct or
/// `max_k` are drawn.
async fn probe(
    policy: &Policy,
    problem: &Problem,
    solution: &Solution,
    i: usize,
    cfg: &AdaptiveConfig,
    seed: u64,
    spent: &mut Spent,
) -> Result<Probe> {
    let mut p = Probe {
        drawn: 0,
        correct: 0,
    };
    let mut batch = 1usize;
    let mut round = 0u32;
    while (p.drawn as usize) < cfg.max_k && p.correct == 0 {
        let n = batch.min(cfg.max_k - p.drawn as usize);
        let tag = format!("adaptive/{}/{i}/{round}", solution.sample);
        let rs = policy
            .rollouts(
                problem,
                &solution.steps[..=i],
                n,
                mix_seed(seed, &tag),
                spent,
            )
            .await?;
        p.drawn += rs.len() as u32;
        p.correct += rs.iter().filter(|r| r.correct).count() as u32;
        if rs.is_empty() {
            break;
        }
        batch *= 2;
        round += 1;
    }
    Ok(p)
}

/// Labels of a solution of `n` steps whose first bad prefix is `first_bad` (`n` when
/// every step is good), from the probes made (`probes[i]` for probed prefixes).
pub fn labels_from(
    n: usize,
    first_bad: usize,
    probes: &[Option<Probe>],
    answered: Option<bool>,
) -> Vec<StepLabel> {
    (0..n)
        .map(|i| match probes.get(i).copied().flatten() {
            Some(p) => StepLabel::from_mc(p.correct, p.drawn),
            None => {
                let good = i < first_bad;
                let reason = if i + 1 == n && answered.is_some() {
                    format!(
                        "the solution's own answer is {}",
                        if good { "right" } else { "wrong" }
                    )
                } else if answered == Some(true) {
                    "implied good: the solution's own answer is right".to_string()
                } else if good {
                    "implied good: a later prefix is good".to_string()
                } else {
                    "implied bad: an earlier prefix is bad".to_string()
                };
                StepLabel {
                    value: if good { 1.0 } else { 0.0 },
                    good,
                    rollouts: 0,
                    correct: 0,
                    reason: Some(reason),
                }
            }
        })
        .collect()
}

/// Adaptive MC labels of one solution and what they cost.
pub async fn label_solution(
    policy: &Policy,
    problem: &Problem,
    solution: &Solution,
    cfg: &AdaptiveConfig,
    seed: u64,
) -> Result<(Vec<StepLabel>, Spent)> {
    let n = solution.steps.len();
    let mut spent = Spent::default();
    let answered = solution.answer.as_ref().map(|_| solution.correct);
    let mut probes: Vec<Option<Probe>> = vec![None; n];
    if answered == Some(true) || n == 0 {
        return Ok((labels_from(n, n, &probes, answered), spent));
    }
    // Invariant: prefixes before `lo` are good, prefixes from `hi` on are bad (the last
    // one of a wrong answered solution is known bad; without an answer nothing is).
    let (mut lo, mut hi) = (0usize, if answered.is_some() { n - 1 } else { n });
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let p = probe(policy, problem, solution, mid, cfg, seed, &mut spent).await?;
        probes[mid] = Some(p);
        if p.good() {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    Ok((labels_from(n, lo, &probes, answered), spent))
}

/// Adaptive MC labels of `samples` sampled solutions of `problem` (the same solutions
/// as `mc` with the same seed).
pub async fn label(
    policy: &Policy,
    problem: &Problem,
    samples: usize,
    cfg: &AdaptiveConfig,
    seed: u64,
) -> Result<QuestionResult> {
    let (sols, mut tally) = Tally::sample(policy, problem, samples, seed).await?;
    for s in &sols {
        let (labels, c) = label_solution(policy, problem, s, cfg, seed).await?;
        tally.add_counted(s, labels, c);
    }
    Ok(tally.finish(Method::AdaptiveMc))
}
