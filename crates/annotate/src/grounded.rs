//! GroundedPRM-style hybrid labels (Zhang et al. 2025, "GroundedPRM: Tree-Guided and
//! Fidelity-Aware Process Reward Modeling for Step-Level Reasoning").
//!
//! GroundedPRM verifies every step with an external tool and fuses that step-level
//! signal with rollout outcomes. What is implemented here (our reading, on a sampled
//! solution rather than a full MCTS tree):
//!
//! - **Tool verification** `v_i ∈ {−1, 0, +1}` of step `i`: the exact arithmetic claim
//!   checker of `stepwise-score` (`ArithScorer`, rational arithmetic): +1 when the step
//!   makes checkable claims and all are right, −1 when any is wrong, 0 when it makes none.
//! - **Rollout reward**: `k` rollouts continue the prefix `steps[..=i]`; each rollout `r`
//!   with steps `c_1..c_m` and outcome `F_r ∈ {−1, +1}` (gold answer reached or not) gets
//!   `R_r = w·F_r + (1 − w)·(1/m)·Σ_j γ^(j−1)·v(c_j)`: the outcome plus the
//!   distance-discounted tool verdicts of the steps the rollout wrote. The last step of a
//!   solution with an answer uses the solution's own outcome (`R = F`).
//! - **Hybrid step reward** `u_i = (v_i + mean_r R_r) / 2` (or `mean_r R_r` when the tool
//!   had nothing to check); soft label `(u_i + 1) / 2`; hard label good iff `u_i > 0` and
//!   the tool did not find a wrong claim (a tool-verified error is never outvoted).
//!
//! The reason of each label names the tool verdict and the rollout outcome.

use crate::mc::{Solution, sample_solutions};
use crate::policy::Policy;
use crate::{Cost, Method, QuestionResult, Result, StepLabel, mix_seed};
use serde::{Deserialize, Serialize};
use stepwise_core::Problem;
use stepwise_score::ArithScorer;

/// Settings of the `grounded` method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroundedConfig {
    /// Rollouts per step prefix.
    pub k: usize,
    /// Weight `w` of the outcome in a rollout's reward.
    pub outcome_weight: f64,
    /// Discount `γ` of tool verdicts along a rollout.
    pub gamma: f64,
}

impl Default for GroundedConfig {
    fn default() -> Self {
        Self {
            k: 4,
            outcome_weight: 0.5,
            gamma: 0.9,
        }
    }
}

/// Tool verdict of a step: +1 all claims right, −1 a wrong claim, 0 nothing checkable.
pub fn tool_verdict(checker: &ArithScorer, step: &str) -> (i8, String) {
    let (score, detail) = checker.score_text(step);
    if score >= 1.0 {
        (1, detail)
    } else if score < checker.unchecked {
        (-1, detail)
    } else {
        (0, detail)
    }
}

/// Reward of one rollout: `w·F + (1 − w)·mean_j γ^(j−1)·v(c_j)`.
pub fn rollout_reward(
    cfg: &GroundedConfig,
    checker: &ArithScorer,
    steps: &[String],
    correct: bool,
) -> f64 {
    let f = if correct { 1.0 } else { -1.0 };
    if steps.is_empty() {
        return f;
    }
    let tool: f64 = steps
        .iter()
        .enumerate()
        .map(|(j, s)| cfg.gamma.powi(j as i32) * f64::from(tool_verdict(checker, s).0))
        .sum::<f64>()
        / steps.len() as f64;
    cfg.outcome_weight * f + (1.0 - cfg.outcome_weight) * tool
}

/// The hybrid label from a tool verdict and the mean rollout reward.
pub fn hybrid_label(v: i8, mean_reward: f64) -> (f64, bool) {
    let u = if v == 0 {
        mean_reward
    } else {
        (f64::from(v) + mean_reward) / 2.0
    };
    ((u + 1.0) / 2.0, u > 0.0 && v >= 0)
}

async fn label_solution(
    policy: &Policy,
    problem: &Problem,
    solution: &Solution,
    cfg: &GroundedConfig,
    seed: u64,
) -> Result<(Vec<StepLabel>, Cost)> {
    let checker = ArithScorer::default();
    let n = solution.steps.len();
    let futs = (0..n).map(|i| {
        let checker = checker.clone();
        async move {
            let mut cost = Cost::default();
            let (v, detail) = tool_verdict(&checker, &solution.steps[i]);
            let last = i + 1 == n && solution.answer.is_some();
            let (mean, correct, total) = if last {
                (
                    if solution.correct { 1.0 } else { -1.0 },
                    u32::from(solution.correct),
                    0,
                )
            } else {
                let tag = format!("grounded/{}/{i}", solution.sample);
                let rs = policy
                    .rollouts(
                        problem,
                        &solution.steps[..=i],
                        cfg.k,
                        mix_seed(seed, &tag),
                        &mut cost,
                    )
                    .await?;
                let total = rs.len() as u32;
                let correct = rs.iter().filter(|r| r.correct).count() as u32;
                let mean = if rs.is_empty() {
                    0.0
                } else {
                    rs.iter()
                        .map(|r| rollout_reward(cfg, &checker, &r.steps, r.correct))
                        .sum::<f64>()
                        / rs.len() as f64
                };
                (mean, correct, total)
            };
            let (value, good) = hybrid_label(v, mean);
            let tool = match v {
                1 => "tool: right".to_string(),
                -1 => format!("tool: {detail}"),
                _ => "tool: nothing to check".to_string(),
            };
            let outcome = if last {
                format!(
                    "final answer {}",
                    if solution.correct { "right" } else { "wrong" }
                )
            } else {
                format!("rollouts {correct}/{total} right, mean reward {mean:.2}")
            };
            Ok::<_, crate::AnnotateError>((
                StepLabel {
                    value,
                    good,
                    rollouts: total,
                    correct: if last { 0 } else { correct },
                    reason: Some(format!("{tool}; {outcome}")),
                },
                cost,
            ))
        }
    });
    let mut labels = Vec::with_capacity(n);
    let mut cost = Cost::default();
    for r in futures::future::join_all(futs).await {
        let (l, c) = r?;
        labels.push(l);
        cost += c;
    }
    Ok((labels, cost))
}

/// GroundedPRM-style labels of `samples` sampled solutions.
pub async fn label(
    policy: &Policy,
    problem: &Problem,
    samples: usize,
    cfg: &GroundedConfig,
    seed: u64,
) -> Result<QuestionResult> {
    let mut cost = Cost::default();
    let sols = sample_solutions(policy, problem, samples, seed, &mut cost).await?;
    let mut solutions = Vec::with_capacity(sols.len());
    for s in &sols {
        let (labels, c) = label_solution(policy, problem, s, cfg, seed).await?;
        cost += c;
        solutions.push(s.labelled(problem, labels));
    }
    Ok(QuestionResult {
        problem_id: problem.id.clone(),
        method: Method::Grounded,
        solutions,
        prefixes: Vec::new(),
        cost,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_verdicts() {
        let c = ArithScorer::default();
        assert_eq!(tool_verdict(&c, "3 + 4 = 7").0, 1);
        assert_eq!(tool_verdict(&c, "3 + 4 = 8").0, -1);
        assert_eq!(tool_verdict(&c, "Let us think.").0, 0);
    }

    #[test]
    fn hybrid_rules() {
        // a tool-verified error is never outvoted by good rollouts
        assert!(!hybrid_label(-1, 1.0).1);
        // a verified step with failing rollouts is not good
        assert!(!hybrid_label(1, -1.0).1);
        assert!(hybrid_label(1, -0.5).1);
        // nothing to check: rollouts decide
        assert!(hybrid_label(0, 0.2).1 && !hybrid_label(0, -0.2).1);
        let cfg = GroundedConfig::default();
        let c = ArithScorer::default();
        let r = rollout_reward(&cfg, &c, &["1 + 1 = 2".into(), "2 + 2 = 5".into()], true);
        // 0.5*1 + 0.5*(1 - 0.9)/2
        assert!((r - (0.5 + 0.5 * 0.1 / 2.0)).abs() < 1e-12, "{r}");
    }
}
