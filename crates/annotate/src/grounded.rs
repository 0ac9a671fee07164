//! GroundedPRM-style hybrid labels (Zhang et al. 2025, "GroundedPRM: Tree-Guided and
//! Fidelity-Aware Process Reward Modeling for Step-Level Reasoning", arXiv 2510.14942).
//!
//! GroundedPRM verifies every step with an external tool and fuses that step-level
//! signal with rollout outcomes. We label *sampled solutions* (a chain of prefixes, not
//! an MCTS tree): every prefix `steps[..=i]` gets `k` rollouts, and the tool is the exact
//! arithmetic claim checker of `stepwise-score` (`ArithScorer`, rational arithmetic):
//! verdict `v ∈ {−1, 0, +1}` (+1 all claims right, −1 a wrong claim, 0 nothing to check).
//!
//! Two aggregation rules ([`GroundedRule`]):
//!
//! **`paper`** (default): the rule of the GroundedPRM reference code
//! (`pipeline/MCTS/mcts.py`, `simulate` + `backpropagate`, as published in
//! github.com/JerryPlain/GroundedPRMCode, "the official code for GroundedPRM"; the
//! paper's own equations were not available to us, only its prose, which names the
//! fusion "hybrid reward aggregation" of tool verification and MCTS feedback):
//! - a rollout with steps `c_1..c_m` ends in the outcome `F ∈ {−1, +1}` (its last step
//!   carries `F` instead of a tool verdict); its `N = m − 1` intermediate steps have tool
//!   verdicts `v_1..v_N`, weighted linearly by position:
//!   `u = (1/N)·Σ_{j=1..N} ((N − j + 1)/N)·v_j + β·F`, `β = 1/N` unless configured
//!   (`final_weight`), and `u = F` when `N = 0`;
//! - the reward is added to the prefix it was rolled out from and, decayed by `λ^d`,
//!   to each ancestor `d` steps above (the code's `delay_weight`, 0.9). Here the
//!   ancestors of `steps[..=j]` are `steps[..=i]`, `i < j`, so the step value is
//!   `V_i = Σ_{j ≥ i} λ^(j−i) · Σ_{r from steps[..=j]} u_r` (`backprop_decay` λ); the
//!   solution's own ending is one more simulation from its last prefix, with `u = F`.
//!   Our default is λ = 0: in the paper's tree every node has several explored
//!   children, while a sampled solution is a single chain, and with λ = 0.9 every prefix
//!   of a wrong solution inherits that one continuation's failure (the scripted test in
//!   `tests/methods.rs` shows the clean prefixes before a planted error turning bad);
//! - the step label is the sign of `V_i` (the code's `convert_to_binary_label`:
//!   good iff `V_i > 0`); soft label `(clamp(V̄_i, −1, 1) + 1)/2` with `V̄_i` = `V_i`
//!   divided by its total decayed rollout weight;
//! - a solution with a bad step is labelled up to its first bad step and the bad steps
//!   right after it, up to (not including) the next good one (the code's
//!   `truncate_steps` for negative paths).
//!
//! **What `stepwise bench labels` found** (simulated policy, half of its errors misread
//! operands, which have right arithmetic): with the reference code's rule a rollout
//! with right arithmetic and a wrong answer has a positive reward once `N ≥ 2` (each
//! right step +1, the outcome only `1/N`), so a prefix none of whose continuations
//! reaches the answer is labelled good: recall of bad steps 0.6. Letting the tool
//! abstain on right rollout steps (`tool_confirms = false`: it can refute a step, not
//! confirm it is on track) tips the sum the other way (a failed rollout's slips count
//! −1, a success only `+1/N`), labelling clean prefixes bad: first-error accuracy fell
//! from 0.69 to 0.10 at step error rate 0.1. The rule that uses each signal only where
//! it is exact, **`mc-veto`**, does best: the step's own tool verdict refutes, the
//! rollouts' outcomes decide the rest (docs/results/label-quality.md).
//!
//! Fidelity: the paper keeps only training paths whose step labels agree with the tool
//! verdicts (`filter_consistent_samples`). `Fidelity::Drop` does exactly that (a
//! solution with any step where `v ≠ 0` and `sign(v)` disagrees with the label is not
//! output; its cost is still counted); `Fidelity::Veto` (default) keeps every solution
//! and labels a step with a tool-verified wrong claim bad whatever its rollouts say.
//!
//! Differences from the paper that remain: no MCTS tree (no UCT selection or
//! expansion; rollouts come from every prefix of sampled solutions instead of simulated
//! from expanded nodes); our tool is an exact arithmetic checker that can abstain
//! (`v = 0`), where the paper's Wolfram-Alpha-backed LLM check always answers ±1; the
//! reference code's MCTS loop (selection of nodes to expand, the positive/negative
//! sample quotas) has no counterpart.
//!
//! **`weighted`**: our earlier reading, kept for comparison and for runs stored before
//! the paper rule existed: `R_r = w·F_r + (1 − w)·(1/m)·Σ_j γ^(j−1)·v(c_j)` per rollout
//! (`outcome_weight` w, `gamma` γ), step reward `u_i = (v_i + mean_r R_r)/2` (or
//! `mean_r R_r` when `v_i = 0`; the last step of an answered solution uses `R = F`),
//! soft label `(u_i + 1)/2`, hard label good iff `u_i > 0` and `v_i ≥ 0`.
//!
//! The reason of each label names the tool verdict and the rollout outcome.

use crate::mc::{Solution, Tally};
use crate::policy::{Policy, Rollout};
use crate::{Method, QuestionResult, Result, StepLabel, mix_seed};
use serde::{Deserialize, Serialize};
use stepwise_core::{Problem, Spent};
use stepwise_score::ArithScorer;

/// How tool verdicts and rollout outcomes are combined (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroundedRule {
    /// The GroundedPRM reference code's rollout reward and backpropagation.
    #[default]
    Paper,
    /// Our earlier weighted reading (outcome weight `w`, discounted tool verdicts).
    Weighted,
    /// Each signal where it is exact: the step's own tool verdict refutes (`−1` is bad),
    /// and otherwise Math-Shepherd's hard rule decides (good iff a rollout from the
    /// prefix reaches the answer); rollouts' own tool verdicts are not used.
    #[serde(rename = "mc-veto")]
    McVeto,
}

impl std::str::FromStr for GroundedRule {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "paper" => Ok(Self::Paper),
            "weighted" => Ok(Self::Weighted),
            "mc-veto" => Ok(Self::McVeto),
            o => Err(format!(
                "unknown grounded rule '{o}' (expected paper, weighted or mc-veto)"
            )),
        }
    }
}

/// What to do with a step whose label disagrees with its tool verdict (paper rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fidelity {
    /// A tool-verified wrong claim makes the step bad; every solution is kept.
    #[default]
    Veto,
    /// Leave out solutions with any disagreement (the paper's consistency filter).
    Drop,
}

impl std::str::FromStr for Fidelity {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "veto" => Ok(Self::Veto),
            "drop" => Ok(Self::Drop),
            o => Err(format!(
                "unknown fidelity mode '{o}' (expected veto or drop)"
            )),
        }
    }
}

fn stored_before_paper_rule() -> GroundedRule {
    GroundedRule::Weighted
}

/// Settings of the `grounded` method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroundedConfig {
    /// Rollouts per step prefix.
    pub k: usize,
    /// The aggregation rule. Runs stored without one used `weighted`.
    #[serde(default = "stored_before_paper_rule")]
    pub rule: GroundedRule,
    /// Weighted rule: weight `w` of the outcome in a rollout's reward.
    pub outcome_weight: f64,
    /// Weighted rule: discount `γ` of tool verdicts along a rollout.
    pub gamma: f64,
    /// Paper rule: decay `λ^d` of a rollout reward on its way back to the prefix `d`
    /// steps above (the reference code: 0.9 over a tree; 0 here by default, see above).
    #[serde(default)]
    pub backprop_decay: f64,
    /// Paper rule: weight `β` of the final outcome in a rollout reward; `None` is the
    /// reference code's `1/N` (`N` = the rollout's intermediate steps).
    #[serde(default)]
    pub final_weight: Option<f64>,
    /// Paper rule: veto by the tool, or drop disagreeing solutions.
    #[serde(default)]
    pub fidelity: Fidelity,
    /// Paper rule: whether a rollout step the tool finds right counts `+1` in the
    /// rollout's reward (the reference code, default) or abstains (`0`; measured worse,
    /// see the module docs).
    #[serde(default = "confirmed_before_abstention")]
    pub tool_confirms: bool,
}

fn confirmed_before_abstention() -> bool {
    true
}

impl Default for GroundedConfig {
    fn default() -> Self {
        Self {
            k: 4,
            rule: GroundedRule::Paper,
            outcome_weight: 0.5,
            gamma: 0.9,
            backprop_decay: 0.0,
            final_weight: None,
            fidelity: Fidelity::Veto,
            tool_confirms: true,
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

/// Weighted rule: reward of one rollout, `w·F + (1 − w)·mean_j γ^(j−1)·v(c_j)`.
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

/// Paper rule: reward of one rollout from the tool verdicts of its intermediate steps
/// (all but the last, which carries the outcome):
/// `(1/N)·Σ_j ((N − j + 1)/N)·v_j + β·F`, `β` = `final_weight` or `1/N`; `F` when `N = 0`.
pub fn paper_rollout_reward(verdicts: &[i8], correct: bool, final_weight: Option<f64>) -> f64 {
    let f = if correct { 1.0 } else { -1.0 };
    let n = verdicts.len();
    if n == 0 {
        return final_weight.unwrap_or(1.0) * f;
    }
    let nf = n as f64;
    let steps: f64 = verdicts
        .iter()
        .enumerate()
        .map(|(j, v)| ((nf - j as f64) / nf) * f64::from(*v))
        .sum::<f64>()
        / nf;
    steps + final_weight.unwrap_or(1.0 / nf) * f
}

/// Paper rule: the step values `V_i = Σ_{j ≥ i} γ^(j−i)·sums[j]` and their weighted means
/// (`V_i` over `Σ_{j ≥ i} γ^(j−i)·counts[j]`), from each prefix's reward sum and count.
pub fn backpropagate(sums: &[f64], counts: &[u32], gamma: f64) -> Vec<(f64, f64)> {
    let n = sums.len();
    let mut out = vec![(0.0, 0.0); n];
    let (mut v, mut w) = (0.0f64, 0.0f64);
    for i in (0..n).rev() {
        v = sums[i] + gamma * v;
        w = f64::from(counts[i]) + gamma * w;
        let mean = if w > 0.0 { v / w } else { 0.0 };
        out[i] = (v, mean);
    }
    out
}

/// Paper rule: how many labels to keep — all when every step is good; otherwise up to
/// the first bad step and the bad steps right after it (the reference code's
/// `truncate_steps`: cut at the first good step after the first bad one).
pub fn truncated_len(labels: &[StepLabel]) -> usize {
    match labels.iter().position(|l| !l.good) {
        None => labels.len(),
        Some(f) => labels[f + 1..]
            .iter()
            .position(|l| l.good)
            .map_or(labels.len(), |j| f + 1 + j),
    }
}

/// Paper rule: the verdict a rollout's intermediate step contributes to its reward: the
/// tool's, with a `+1` turned into an abstention (`0`) unless `tool_confirms`.
pub fn rollout_step_verdict(cfg: &GroundedConfig, checker: &ArithScorer, step: &str) -> i8 {
    match tool_verdict(checker, step).0 {
        1 if !cfg.tool_confirms => 0,
        v => v,
    }
}

/// Weighted rule: the hybrid label from a tool verdict and the mean rollout reward.
pub fn hybrid_label(v: i8, mean_reward: f64) -> (f64, bool) {
    let u = if v == 0 {
        mean_reward
    } else {
        (f64::from(v) + mean_reward) / 2.0
    };
    ((u + 1.0) / 2.0, u > 0.0 && v >= 0)
}

/// What one prefix of a solution yielded: its tool verdict and its rollouts (none for
/// the last step of an answered solution, whose outcome is the solution's own).
struct PrefixOutcome {
    verdict: i8,
    detail: String,
    last: bool,
    rollouts: Vec<Rollout>,
}

fn tool_reason(v: i8, detail: &str) -> String {
    match v {
        1 => "tool: right".to_string(),
        -1 => format!("tool: {detail}"),
        _ => "tool: nothing to check".to_string(),
    }
}

/// Labels one solution's steps with `cfg.rule`. Returns `None` for the labels when the
/// paper rule's `Fidelity::Drop` leaves the solution out, then what the labels cost and
/// the number of rollouts made (counted whether or not the labels are kept).
async fn label_solution(
    policy: &Policy,
    problem: &Problem,
    solution: &Solution,
    cfg: &GroundedConfig,
    seed: u64,
) -> Result<(Option<Vec<StepLabel>>, Spent, u64)> {
    let checker = ArithScorer::default();
    let n = solution.steps.len();
    let futs = (0..n).map(|i| {
        let checker = checker.clone();
        async move {
            let mut spent = Spent::default();
            let (verdict, detail) = tool_verdict(&checker, &solution.steps[i]);
            let last = i + 1 == n && solution.answer.is_some();
            let rollouts = if last {
                Vec::new()
            } else {
                let tag = format!("grounded/{}/{i}", solution.sample);
                policy
                    .rollouts(
                        problem,
                        &solution.steps[..=i],
                        cfg.k,
                        mix_seed(seed, &tag),
                        &mut spent,
                    )
                    .await?
            };
            Ok::<_, crate::AnnotateError>((
                PrefixOutcome {
                    verdict,
                    detail,
                    last,
                    rollouts,
                },
                spent,
            ))
        }
    });
    let mut prefixes = Vec::with_capacity(n);
    let mut spent = Spent::default();
    for r in futures::future::join_all(futs).await {
        let (p, c) = r?;
        prefixes.push(p);
        spent += c;
    }
    let rollouts = prefixes.iter().map(|p| p.rollouts.len() as u64).sum();
    let labels = match cfg.rule {
        GroundedRule::Weighted => Some(weighted_labels(cfg, &checker, solution, &prefixes)),
        GroundedRule::Paper => paper_labels(cfg, &checker, solution, &prefixes),
        GroundedRule::McVeto => Some(mc_veto_labels(solution, &prefixes)),
    };
    Ok((labels, spent, rollouts))
}

fn outcome_reason(solution: &Solution, p: &PrefixOutcome, extra: &str) -> String {
    if p.last {
        format!(
            "final answer {}",
            if solution.correct { "right" } else { "wrong" }
        )
    } else {
        let correct = p.rollouts.iter().filter(|r| r.correct).count();
        format!("rollouts {correct}/{} right, {extra}", p.rollouts.len())
    }
}

fn counts(solution: &Solution, p: &PrefixOutcome) -> (u32, u32) {
    if p.last {
        (0, u32::from(solution.correct))
    } else {
        (
            p.rollouts.len() as u32,
            p.rollouts.iter().filter(|r| r.correct).count() as u32,
        )
    }
}

fn weighted_labels(
    cfg: &GroundedConfig,
    checker: &ArithScorer,
    solution: &Solution,
    prefixes: &[PrefixOutcome],
) -> Vec<StepLabel> {
    prefixes
        .iter()
        .map(|p| {
            let mean = if p.last {
                if solution.correct { 1.0 } else { -1.0 }
            } else if p.rollouts.is_empty() {
                0.0
            } else {
                p.rollouts
                    .iter()
                    .map(|r| rollout_reward(cfg, checker, &r.steps, r.correct))
                    .sum::<f64>()
                    / p.rollouts.len() as f64
            };
            let (value, good) = hybrid_label(p.verdict, mean);
            let (rollouts, correct) = counts(solution, p);
            StepLabel {
                value,
                good,
                rollouts,
                correct: if p.last { 0 } else { correct },
                reason: Some(format!(
                    "{}; {}",
                    tool_reason(p.verdict, &p.detail),
                    outcome_reason(solution, p, &format!("mean reward {mean:.2}"))
                )),
            }
        })
        .collect()
}

/// `mc-veto` labels: bad where the step's own tool verdict is −1, else good iff some
/// rollout from its prefix is correct (the last step of an answered solution: its
/// answer); soft value = the prefix's MC value (1 or 0 for the answer step).
fn mc_veto_labels(solution: &Solution, prefixes: &[PrefixOutcome]) -> Vec<StepLabel> {
    prefixes
        .iter()
        .map(|p| {
            let (rollouts, correct) = counts(solution, p);
            let (value, reached) = if p.last {
                (f64::from(u8::from(solution.correct)), solution.correct)
            } else if rollouts == 0 {
                (0.0, false)
            } else {
                (f64::from(correct) / f64::from(rollouts), correct > 0)
            };
            StepLabel {
                value,
                good: reached && p.verdict >= 0,
                rollouts,
                correct: if p.last { 0 } else { correct },
                reason: Some(format!(
                    "{}; {}",
                    tool_reason(p.verdict, &p.detail),
                    outcome_reason(solution, p, "any right decides")
                )),
            }
        })
        .collect()
}

fn paper_labels(
    cfg: &GroundedConfig,
    checker: &ArithScorer,
    solution: &Solution,
    prefixes: &[PrefixOutcome],
) -> Option<Vec<StepLabel>> {
    let mut sums = Vec::with_capacity(prefixes.len());
    let mut weights = Vec::with_capacity(prefixes.len());
    for p in prefixes {
        if p.last {
            // The solution's own ending: one simulation with no intermediate steps.
            sums.push(paper_rollout_reward(
                &[],
                solution.correct,
                cfg.final_weight,
            ));
            weights.push(1);
        } else {
            let s: f64 = p
                .rollouts
                .iter()
                .map(|r| {
                    let inner = r.steps.len().saturating_sub(1);
                    let verdicts: Vec<i8> = r.steps[..inner]
                        .iter()
                        .map(|c| rollout_step_verdict(cfg, checker, c))
                        .collect();
                    paper_rollout_reward(&verdicts, r.correct, cfg.final_weight)
                })
                .sum();
            sums.push(s);
            weights.push(p.rollouts.len() as u32);
        }
    }
    let values = backpropagate(&sums, &weights, cfg.backprop_decay);
    let mut labels = Vec::with_capacity(prefixes.len());
    let mut consistent = true;
    for ((p, (v, mean)), sum) in prefixes.iter().zip(values).zip(&sums) {
        let by_value = v > 0.0;
        if p.verdict != 0 && (p.verdict > 0) != by_value {
            consistent = false;
        }
        let good = by_value && !(cfg.fidelity == Fidelity::Veto && p.verdict < 0);
        let (rollouts, correct) = counts(solution, p);
        labels.push(StepLabel {
            value: (mean.clamp(-1.0, 1.0) + 1.0) / 2.0,
            good,
            rollouts,
            correct: if p.last { 0 } else { correct },
            reason: Some(format!(
                "{}; {}; V = {v:.2}",
                tool_reason(p.verdict, &p.detail),
                outcome_reason(solution, p, &format!("reward sum {sum:.2}"))
            )),
        });
    }
    if cfg.fidelity == Fidelity::Drop && !consistent {
        return None;
    }
    labels.truncate(truncated_len(&labels));
    Some(labels)
}
/// GroundedPRM-style labels of `samples` sampled solutions.
pub async fn label(
    policy: &Policy,
    problem: &Problem,
    samples: usize,
    cfg: &GroundedConfig,
    seed: u64,
) -> Result<QuestionResult> {
    let (sols, mut tally) = Tally::sample(policy, problem, samples, seed).await?;
    for s in &sols {
        let (labels, c, n) = label_solution(policy, problem, s, cfg, seed).await?;
        if labels.is_none() {
            tracing::debug!(
                problem = %problem.id,
                sample = s.sample,
                "grounded: labels disagree with the tool; solution left out (fidelity drop)"
            );
        }
        tally.add(s, labels, c, n);
    }
    Ok(tally.finish(Method::Grounded))
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

    #[test]
    fn paper_rollout_reward_matches_the_reference_code() {
        // mcts.py backpropagate: N = 3 intermediate verdicts [1, -1, 1], F = -1:
        // V = sum_i (1/N)·v_i·(N - i)/N = (3 - 2 + 1)/9, plus (1/N)·F
        let u = paper_rollout_reward(&[1, -1, 1], false, None);
        assert!((u - (2.0 / 9.0 - 1.0 / 3.0)).abs() < 1e-12, "{u}");
        // no intermediate step: the outcome alone
        assert_eq!(paper_rollout_reward(&[], true, None), 1.0);
        assert_eq!(paper_rollout_reward(&[], false, None), -1.0);
        // a configured final weight replaces 1/N
        let u = paper_rollout_reward(&[1, 1], false, Some(2.0));
        assert!((u - ((1.0 + 0.5) / 2.0 - 2.0)).abs() < 1e-12, "{u}");
        // arithmetic that is right but ends wrong outweighs the outcome at beta = 1/N
        assert!(paper_rollout_reward(&[1, 1, 1], false, None) > 0.0);
    }

    #[test]
    fn backpropagation_decays_rewards_to_ancestors() {
        // prefixes 0..3: reward sums and rollout counts; gamma 0.5
        let v = backpropagate(&[1.0, -2.0, 4.0], &[2, 2, 1], 0.5);
        // V_2 = 4; V_1 = -2 + 0.5*4 = 0; V_0 = 1 + 0.5*0 = 1
        assert_eq!(v[2].0, 4.0);
        assert_eq!(v[1].0, 0.0);
        assert_eq!(v[0].0, 1.0);
        // means: V_2 / 1; V_1 / (2 + 0.5); V_0 / (2 + 0.5*2.5)
        assert_eq!(v[2].1, 4.0);
        assert_eq!(v[1].1, 0.0);
        assert!((v[0].1 - 1.0 / 3.25).abs() < 1e-12);
    }

    fn prefix(verdict: i8, rollouts: &[(bool, &[&str])]) -> PrefixOutcome {
        PrefixOutcome {
            verdict,
            detail: String::new(),
            last: false,
            rollouts: rollouts
                .iter()
                .map(|(correct, steps)| Rollout {
                    steps: steps.iter().map(|s| s.to_string()).collect(),
                    answer: None,
                    correct: *correct,
                    tokens: 1,
                })
                .collect(),
        }
    }

    #[test]
    fn paper_labels_veto_and_drop() {
        let c = ArithScorer::default();
        let sol = Solution {
            sample: 0,
            steps: vec![
                "1 + 1 = 2".into(),
                "2 + 2 = 5".into(),
                "The answer is 5.".into(),
            ],
            answer: Some("5".into()),
            correct: false,
        };
        // step 0: rollouts reach the answer; step 1 (a wrong claim): rollouts with right
        // arithmetic that end wrong, so the paper reward is positive there.
        let good_tail: &[&str] = &["5 + 1 = 6", "6 + 1 = 7", "6 * 2 = 12", "The answer is 12."];
        let mut last = prefix(0, &[]);
        last.last = true;
        let ps = vec![
            prefix(
                1,
                &[
                    (true, &["2 + 4 = 6", "The answer is 6."]),
                    (true, &["The answer is 6."]),
                ],
            ),
            prefix(
                -1,
                &[(false, good_tail), (false, good_tail), (false, good_tail)],
            ),
            last,
        ];
        // the reference code's rule: right rollout steps count +1
        let veto = GroundedConfig {
            tool_confirms: true,
            ..GroundedConfig::default()
        };
        let l = paper_labels(&veto, &c, &sol, &ps).unwrap();
        assert!(l[0].good, "{:?}", l[0]);
        // V_1 > 0 by the rollouts, but the tool found a wrong claim
        assert!(
            l[1].reason.as_deref().unwrap().contains("V = 1.00"),
            "{:?}",
            l[1]
        );
        assert!(!l[1].good);
        assert!(!l[2].good, "the wrong final answer");
        assert_eq!(l[2].rollouts, 0);
        let drop = GroundedConfig {
            fidelity: Fidelity::Drop,
            ..veto.clone()
        };
        assert!(paper_labels(&drop, &c, &sol, &ps).is_none());
        // with a heavy final weight the outcome dominates and the labels agree with the tool
        let heavy = GroundedConfig {
            fidelity: Fidelity::Drop,
            final_weight: Some(1.0),
            ..veto.clone()
        };
        let l = paper_labels(&heavy, &c, &sol, &ps).unwrap();
        assert_eq!(
            l.iter().map(|l| l.good).collect::<Vec<_>>(),
            vec![true, false, false]
        );
    }

    /// A misread operand: step 1 (`2 + 3 = 5` where the question said `2 + 4`) has right
    /// arithmetic (tool +1), and all 3 rollouts from it have right arithmetic (N = 3
    /// intermediate steps) and a wrong answer. Reference code: each rollout's reward is
    /// (1/3)·(3/3 + 2/3 + 1/3) − 1/3 = 1/3, V_1 = 1 > 0: good. Abstention: the right steps
    /// count 0, each reward is −1/3, V_1 = −1: bad, as every continuation failed.
    #[test]
    fn misread_step_under_the_paper_rule_abstention_and_mc_veto() {
        let c = ArithScorer::default();
        let sol = Solution {
            sample: 0,
            steps: vec![
                "1 + 1 = 2".into(),
                "2 + 3 = 5".into(),
                "The answer is 5.".into(),
            ],
            answer: Some("5".into()),
            correct: false,
        };
        let tail: &[&str] = &["5 + 1 = 6", "6 + 1 = 7", "7 * 2 = 14", "The answer is 14."];
        let mut last = prefix(0, &[]);
        last.last = true;
        let ps = vec![
            prefix(1, &[(true, &["The answer is 6."])]),
            prefix(1, &[(false, tail), (false, tail), (false, tail)]),
            last,
        ];
        let l = paper_labels(&GroundedConfig::default(), &c, &sol, &ps).unwrap();
        assert!(l[1].good, "{:?}", l[1]);
        assert!(l[1].reason.as_deref().unwrap().contains("V = 1.00"));
        let abstains = GroundedConfig {
            tool_confirms: false,
            ..GroundedConfig::default()
        };
        let l = paper_labels(&abstains, &c, &sol, &ps).unwrap();
        assert!(l[0].good);
        assert!(!l[1].good, "{:?}", l[1]);
        assert!(l[1].reason.as_deref().unwrap().contains("V = -1.00"));
        // mc-veto: step 0 right (a rollout reached the answer), step 1 has no right
        // rollout (bad though its arithmetic is right), the answer step is wrong
        let l = mc_veto_labels(&sol, &ps);
        assert_eq!(
            l.iter().map(|l| l.good).collect::<Vec<_>>(),
            vec![true, false, false]
        );
        assert_eq!((l[0].value, l[1].value, l[2].value), (1.0, 0.0, 0.0));
        // and a tool-verified wrong claim is bad even when a rollout recovers
        let slip = vec![prefix(-1, &[(true, &["The answer is 6."])])];
        assert!(!mc_veto_labels(&sol, &slip)[0].good);
        // a stored configuration without the field used the reference code's rule
        let old: GroundedConfig =
            serde_json::from_str(r#"{"k":4,"rule":"paper","outcome_weight":0.5,"gamma":0.9}"#)
                .unwrap();
        assert!(old.tool_confirms);
    }

    #[test]
    fn truncation_keeps_the_first_run_of_bad_steps() {
        let l = |g: &[bool]| -> Vec<StepLabel> {
            g.iter()
                .map(|&good| StepLabel {
                    value: 0.0,
                    good,
                    rollouts: 0,
                    correct: 0,
                    reason: None,
                })
                .collect()
        };
        assert_eq!(truncated_len(&l(&[true, true])), 2);
        assert_eq!(truncated_len(&l(&[true, false, false, true, false])), 3);
        assert_eq!(truncated_len(&l(&[false, true])), 1);
        assert_eq!(truncated_len(&l(&[true, false])), 2);
    }

    #[test]
    fn rules_and_modes_parse() {
        assert_eq!(
            "paper".parse::<GroundedRule>().unwrap(),
            GroundedRule::Paper
        );
        assert_eq!(
            "Weighted".parse::<GroundedRule>().unwrap(),
            GroundedRule::Weighted
        );
        assert!("x".parse::<GroundedRule>().is_err());
        assert_eq!("drop".parse::<Fidelity>().unwrap(), Fidelity::Drop);
        // a configuration stored before the rule existed reads as the weighted rule
        let old: GroundedConfig =
            serde_json::from_str(r#"{"k":4,"outcome_weight":0.5,"gamma":0.9}"#).unwrap();
        assert_eq!(old.rule, GroundedRule::Weighted);
        assert_eq!(old.fidelity, Fidelity::Veto);
    }
}
