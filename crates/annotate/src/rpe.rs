//! Relative Progress Estimation labels (RPE; GenPRM: Zhao, Liu et al. 2025, "GenPRM:
//! Scaling Test-Time Compute of Process Reward Models via Generative Reasoning",
//! arXiv:2504.00891, Section 3.2.2, Eqs. 8, 10 and 11).
//!
//! As the paper defines it: the MC score of a state is the fraction of `K` completions
//! from it that reach the gold answer (Math-Shepherd's estimate, Eq. 8), with
//! `MC(s_t, a_t) = MC(s_{t+1})`, the state after step `t`. A step should be correct *and*
//! beneficial, so step `t` is judged by its progress relative to the state before it:
//!
//! ```text
//! P_t = MC(s_t, a_t) / MC(s_t)                                   (Eq. 10)
//! r_t = 1 if P_t >= epsilon, else 0        epsilon = 0.8          (Eq. 11)
//! ```
//!
//! where `MC(s_1)`, the state before the first step, is the question's Pass@1 estimated
//! in the solution-generation phase (here: the share of the question's sampled
//! solutions whose answer verified). "If the first erroneous step is step t' (MC = 0),
//! we set the MC score of the following steps to 0": after the first step whose MC is 0,
//! every later step's MC is 0 whatever its rollouts gave. The paper picks `epsilon = 0.8`
//! by ablation (Table 3: a strict `P_t > 1` and the difference form `MC(s_t,a_t) -
//! MC(s_t)` do worse).
//!
//! Where `MC(s_t) = 0` the ratio is undefined; the paper never meets it, since it
//! discards questions without both correct and incorrect sampled paths (it samples up to
//! 2048). Here the stated rule is: `P_t = +inf` (good) when `MC(s_t, a_t) > 0` (progress
//! from nothing: only possible at the first step, when no sampled solution was correct),
//! and `P_t = 0` (bad) when it is 0 too (every step after a zero-MC step).
//!
//! This runs on `mc`'s machinery: the same sampled solutions and the same rollouts per
//! prefix (`--k`, with the same seeds, so an `mc` and an `rpe` unit of one question see
//! identical MC values); the last step of a solution that states an answer is valued by
//! that answer (no rollouts). Not done here: the paper's dynamic `K` (128/64/32 by
//! Pass@1, Eq. 9; `--k` is fixed) and its consensus filtering against an LLM judge (a
//! data-selection step after labelling). A label's `value` is the (zero-forced) MC
//! score of the prefix ending at the step, `good` is `r_t`, and `reason` shows `P_t`.

use crate::mc::{McConfig, Tally, label_solution as mc_label_solution};
use crate::policy::Policy;
use crate::{Method, QuestionResult, Result, StepLabel};
use serde::{Deserialize, Serialize};
use stepwise_core::Problem;

/// Settings of the `rpe` method (its rollouts per prefix are `mc`'s `k`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RpeConfig {
    /// Threshold on the relative progress `P_t` (paper: 0.8).
    pub epsilon: f64,
}

impl Default for RpeConfig {
    fn default() -> Self {
        Self { epsilon: 0.8 }
    }
}

/// The relative progress `P_t = mc / prev` with the rule for `prev = 0` (see the module
/// documentation).
pub fn relative_progress(mc: f64, prev: f64) -> f64 {
    if prev > 0.0 {
        mc / prev
    } else if mc > 0.0 {
        f64::INFINITY
    } else {
        0.0
    }
}

/// RPE labels from a solution's MC labels (`mc[t]`: the prefix ending at step `t`, as
/// `mc::label_solution` gives them) and the question's Pass@1 (`MC(s_1)`). Rollout
/// counts are kept; `value` becomes the zero-forced MC score.
pub fn rpe_labels(pass1: f64, mc: &[StepLabel], epsilon: f64) -> Vec<StepLabel> {
    let mut prev = pass1;
    let mut zeroed = false;
    mc.iter()
        .map(|l| {
            let value = if zeroed { 0.0 } else { l.value };
            zeroed |= value == 0.0;
            let p = relative_progress(value, prev);
            let reason = format!("P = {value:.3}/{prev:.3} = {p:.3}");
            prev = value;
            StepLabel {
                value,
                good: p >= epsilon,
                rollouts: l.rollouts,
                correct: l.correct,
                reason: Some(reason),
            }
        })
        .collect()
}

/// RPE labels of `samples` sampled solutions of `problem`.
pub async fn label(
    policy: &Policy,
    problem: &Problem,
    samples: usize,
    mc: &McConfig,
    cfg: &RpeConfig,
    seed: u64,
) -> Result<QuestionResult> {
    let (sols, mut tally) = Tally::sample(policy, problem, samples, seed).await?;
    let pass1 = if sols.is_empty() {
        0.0
    } else {
        sols.iter().filter(|s| s.correct).count() as f64 / sols.len() as f64
    };
    for s in &sols {
        let (labels, c) = mc_label_solution(policy, problem, s, mc, seed).await?;
        tally.add_counted(s, rpe_labels(pass1, &labels, cfg.epsilon), c);
    }
    Ok(tally.finish(Method::Rpe))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mc(correct: u32, rollouts: u32) -> StepLabel {
        StepLabel::from_mc(correct, rollouts)
    }

    #[test]
    fn hand_computed_rpe_labels() {
        // Pass@1 = 0.5. MC of the prefixes after each step (8 rollouts each, the last
        // step valued by its answer): 4/8, 2/8, 6/8, 0/8, 4/8, 1/1.
        let labels = [mc(4, 8), mc(2, 8), mc(6, 8), mc(0, 8), mc(4, 8), mc(1, 1)];
        let r = rpe_labels(0.5, &labels, 0.8);
        // P_1 = 0.5/0.5 = 1 good; P_2 = 0.25/0.5 = 0.5 bad; P_3 = 0.75/0.25 = 3 good;
        // P_4 = 0/0.75 = 0 bad; steps 5 and 6 come after the first zero: MC forced to
        // 0, P = 0/0 -> 0, bad (their own rollouts' 4/8 and 1/1 are ignored).
        let good: Vec<bool> = r.iter().map(|l| l.good).collect();
        assert_eq!(good, [true, false, true, false, false, false]);
        let values: Vec<f64> = r.iter().map(|l| l.value).collect();
        assert_eq!(values, [0.5, 0.25, 0.75, 0.0, 0.0, 0.0]);
        // rollouts are kept as made
        assert_eq!(r[4].rollouts, 8);
        assert_eq!(r[4].correct, 4);
        assert_eq!(r[2].reason.as_deref(), Some("P = 0.750/0.250 = 3.000"));
    }

    #[test]
    fn the_threshold_is_inclusive_and_a_falling_mc_can_still_be_good() {
        // Pass@1 = 1, MC(s_2) = 0.8: P = 0.8 >= 0.8 good; then 0.6/0.8 = 0.75 bad.
        let r = rpe_labels(1.0, &[mc(8, 10), mc(6, 10)], 0.8);
        assert_eq!(r.iter().map(|l| l.good).collect::<Vec<_>>(), [true, false]);
        // a strict epsilon of 1 (the paper's "always greater than 1"-like criterion)
        let r = rpe_labels(1.0, &[mc(8, 10)], 1.0);
        assert!(!r[0].good);
    }

    #[test]
    fn zero_pass_at_one_counts_any_success_as_progress() {
        assert_eq!(relative_progress(0.25, 0.0), f64::INFINITY);
        assert_eq!(relative_progress(0.0, 0.0), 0.0);
        let r = rpe_labels(0.0, &[mc(2, 8), mc(2, 8)], 0.8);
        assert_eq!(r.iter().map(|l| l.good).collect::<Vec<_>>(), [true, true]);
        let r = rpe_labels(0.0, &[mc(0, 8), mc(8, 8)], 0.8);
        assert_eq!(r.iter().map(|l| l.good).collect::<Vec<_>>(), [false, false]);
    }
}
