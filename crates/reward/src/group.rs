//! Group rewards: components that need every response of one prompt (a GRPO group).
//!
//! A group's reward for response `i` is its item reward (the reward function of the
//! group's `data_source`, [`crate::Rewards::score`]) plus `Σ weight × value_i` over the
//! group components:
//!
//! - **EMPO** (Zhang et al., 2025, "Right Question is Already Half the Answer: Fully
//!   Unsupervised LLM Reasoning Incentivization", arXiv:2504.05812): the responses'
//!   final answers are clustered by verified equivalence (`stepwise_verify::group_answers`);
//!   `value_i = |c(i)| / G`, the share of the group in response `i`'s cluster (0 for a
//!   response with no answer, which joins no cluster but counts in `G`). The group's
//!   semantic entropy `H = −Σ_c p(c) ln p(c)` over the clusters (`p(c) = |c| / G`) is
//!   reported.
//! - **Trust-GRPO** (Fan et al., 2025, "SophiaVL-R1: Reinforcing MLLMs Reasoning with
//!   Thinking Reward", arXiv:2505.17018): a thinking reward `R^t_i` (here the arithmetic
//!   step checker over the reasoning, aggregated) is trusted by how it ranks the group:
//!   with `μ_c` / `μ_w` the mean thinking reward of the correct / wrong responses (correct:
//!   the item's `outcome` component is 1), the trust weight is `γ = 1` when `μ_c ≥ μ_w`
//!   (or when the group lacks either kind) and `γ = e^(μ_c − μ_w)` otherwise; the
//!   thinking term is time-annealed over training, `value_i = γ · α · e^(−step / T) · R^t_i`,
//!   with `step` from the request and `T` the total steps (configured or in the request).
//!   The outcome reward `R^o_i` is the item reward, so the total is the paper's
//!   `R^o_i + γ α e^(−step/T) R^t_i`.
//! - **Difficulty-aware scaling** (Shop-R1: Zhang et al., 2025, arXiv:2507.17842;
//!   RewardMap: arXiv:2510.02240): a component is scaled up on hard prompts. The papers
//!   scale by labelled difficulty levels; here the group's observed difficulty stands in:
//!   `d = 1 − mean_i(component_i)` (the share of the group that failed it), and
//!   `value_i = component_i · (1 + β · d)`.

use crate::config::{ConfigError, GroupComponentSpec};
use crate::{Extract, Limits, Scored, extract_answer};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use stepwise_core::{Aggregation, AnswerExtractor, Rationale, StepSplitter};
use stepwise_verify::{ArithChecker, Options};

/// One group: a prompt and its responses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Group {
    #[serde(default)]
    pub prompt: String,
    pub responses: Vec<String>,
    /// The gold answer, when the prompt has one (EMPO needs none).
    #[serde(default)]
    pub gold: Option<String>,
    /// Chooses the item reward function, as in `/v1/rewards`.
    #[serde(default)]
    pub data_source: Option<String>,
    /// The training step (Trust-GRPO's annealing); 0 when absent.
    #[serde(default)]
    pub step: u64,
    /// The total training steps `T`, overriding the configured one.
    #[serde(default)]
    pub total_steps: Option<u64>,
}

/// The rewards of one group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GroupResult {
    /// One reward per response, in order.
    pub rewards: Vec<f64>,
    /// Every component (item and group) with one value per response.
    pub components: BTreeMap<String, Vec<f64>>,
    /// EMPO's cluster index per response (`null`: no answer), when EMPO is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clusters: Option<Vec<Option<usize>>>,
    /// EMPO's semantic entropy of the group (nats).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semantic_entropy: Option<f64>,
    /// Trust-GRPO's trust weight γ of the group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_weight: Option<f64>,
}

#[derive(Debug, Clone)]
enum GroupKind {
    Empo {
        extract: Vec<Extract>,
    },
    TrustGrpo {
        outcome: String,
        alpha: f64,
        total_steps: u64,
        aggregation: Aggregation,
    },
    Difficulty {
        component: String,
        beta: f64,
    },
}

#[derive(Debug, Clone)]
struct GroupComponent {
    name: String,
    weight: f64,
    kind: GroupKind,
}

/// The group components of a configuration.
#[derive(Debug, Clone, Default)]
pub struct GroupFn {
    components: Vec<GroupComponent>,
}

/// EMPO's clusters of a group's answers: the cluster index per response and the
/// cluster sizes.
pub fn empo_clusters(answers: &[Option<String>]) -> (Vec<Option<usize>>, Vec<usize>) {
    let groups = stepwise_verify::group_answers(answers, &[], &Options::default());
    let mut of = vec![None; answers.len()];
    for (c, g) in groups.iter().enumerate() {
        for &m in &g.members {
            of[m] = Some(c);
        }
    }
    (of, groups.iter().map(|g| g.members.len()).collect())
}

/// Semantic entropy (nats) of clusters of these sizes in a group of `n`.
pub fn semantic_entropy(sizes: &[usize], n: usize) -> f64 {
    if n == 0 {
        return 0.0;
    }
    sizes
        .iter()
        .filter(|&&s| s > 0)
        .map(|&s| {
            let p = s as f64 / n as f64;
            -p * p.ln()
        })
        .sum()
}

/// SophiaVL-R1's trust weight from each response's thinking reward and correctness.
pub fn trust_weight(thinking: &[f64], correct: &[bool]) -> f64 {
    let mean = |want: bool| {
        let v: Vec<f64> = thinking
            .iter()
            .zip(correct)
            .filter(|(_, c)| **c == want)
            .map(|(t, _)| *t)
            .collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    };
    match (mean(true), mean(false)) {
        (Some(c), Some(w)) if c < w => (c - w).exp(),
        _ => 1.0,
    }
}

/// SophiaVL-R1's annealing factor `e^(−step / T)` (1 when `T` is 0).
pub fn annealing(step: u64, total_steps: u64) -> f64 {
    if total_steps == 0 {
        1.0
    } else {
        (-(step as f64) / total_steps as f64).exp()
    }
}

/// The reasoning of a response (inside `<think>…</think>`, else all of it).
fn reasoning(response: &str) -> &str {
    let end = response.find("</think>").unwrap_or(response.len());
    let r = &response[..end];
    match r.find("<think>") {
        Some(i) => &r[i + "<think>".len()..],
        None => r,
    }
}

impl GroupFn {
    /// Builds the group components; `origin` names them in errors.
    pub fn build(origin: &str, specs: &[GroupComponentSpec]) -> Result<Self, ConfigError> {
        let mut components = Vec::with_capacity(specs.len());
        for s in specs {
            let invalid = |m: String| ConfigError::Invalid(format!("{origin}: {m}"));
            let (name, weight, default, kind) = match s {
                GroupComponentSpec::Empo {
                    name,
                    weight,
                    extract,
                } => {
                    let extract = extract
                        .iter()
                        .map(|e| Extract::parse(e))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(invalid)?;
                    (name, *weight, "empo", GroupKind::Empo { extract })
                }
                GroupComponentSpec::TrustGrpo {
                    name,
                    weight,
                    outcome,
                    alpha,
                    total_steps,
                    aggregation,
                } => {
                    if !alpha.is_finite() {
                        return Err(invalid("trust_grpo.alpha must be finite".into()));
                    }
                    let aggregation = aggregation.parse::<Aggregation>().map_err(invalid)?;
                    (
                        name,
                        *weight,
                        "trust_grpo",
                        GroupKind::TrustGrpo {
                            outcome: outcome.clone(),
                            alpha: *alpha,
                            total_steps: *total_steps,
                            aggregation,
                        },
                    )
                }
                GroupComponentSpec::Difficulty {
                    name,
                    weight,
                    component,
                    beta,
                } => {
                    if !beta.is_finite() {
                        return Err(invalid("difficulty.beta must be finite".into()));
                    }
                    (
                        name,
                        *weight,
                        "difficulty",
                        GroupKind::Difficulty {
                            component: component.clone(),
                            beta: *beta,
                        },
                    )
                }
            };
            if !weight.is_finite() {
                return Err(invalid(format!("weight of {default} must be finite")));
            }
            let name = name.clone().unwrap_or_else(|| default.to_string());
            if components.iter().any(|c: &GroupComponent| c.name == name) {
                return Err(invalid(format!(
                    "group component name '{name}' used twice; give one a `name`"
                )));
            }
            components.push(GroupComponent { name, weight, kind });
        }
        Ok(Self { components })
    }

    /// Whether no group component is configured.
    pub fn is_empty(&self) -> bool {
        self.components.is_empty()
    }

    /// Adds the group components to the item scores of one group's responses.
    pub fn apply(&self, group: &Group, items: Vec<Scored>, limits: &Limits) -> GroupResult {
        let n = items.len();
        let mut rewards: Vec<f64> = items.iter().map(|s| s.result.reward).collect();
        let mut components: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for s in &items {
            for k in s.result.components.keys() {
                components.entry(k.clone()).or_insert_with(|| vec![0.0; n]);
            }
        }
        for (i, s) in items.iter().enumerate() {
            for (k, v) in &s.result.components {
                if let Some(col) = components.get_mut(k) {
                    col[i] = *v;
                }
            }
        }
        let mut out = GroupResult {
            rewards: Vec::new(),
            components: BTreeMap::new(),
            clusters: None,
            semantic_entropy: None,
            trust_weight: None,
        };
        for c in &self.components {
            let values: Vec<f64> = match &c.kind {
                GroupKind::Empo { extract } => {
                    let answers: Vec<Option<String>> = group
                        .responses
                        .iter()
                        .map(|r| {
                            extract_answer(r, extract)
                                .filter(|a| a.len() <= limits.max_answer_bytes)
                        })
                        .collect();
                    let (of, sizes) = empo_clusters(&answers);
                    out.semantic_entropy = Some(semantic_entropy(&sizes, n));
                    let v = of
                        .iter()
                        .map(|c| c.map_or(0.0, |c| sizes[c] as f64 / n as f64))
                        .collect();
                    out.clusters = Some(of);
                    v
                }
                GroupKind::TrustGrpo {
                    outcome,
                    alpha,
                    total_steps,
                    aggregation,
                } => {
                    let checker = ArithChecker::default();
                    let splitter = StepSplitter::default();
                    let thinking: Vec<f64> = group
                        .responses
                        .iter()
                        .map(|r| {
                            let rat = Rationale::parse(
                                reasoning(r),
                                &splitter,
                                &AnswerExtractor::default(),
                            );
                            let scores: Vec<f64> = rat
                                .steps
                                .iter()
                                .map(|s| checker.score_text(&s.text).0)
                                .collect();
                            aggregation.apply(&scores).unwrap_or(0.0)
                        })
                        .collect();
                    let correct: Vec<bool> = (0..n)
                        .map(|i| components.get(outcome).is_some_and(|col| col[i] >= 1.0))
                        .collect();
                    let gamma = trust_weight(&thinking, &correct);
                    out.trust_weight = Some(gamma);
                    let t = group.total_steps.unwrap_or(*total_steps);
                    let factor = gamma * alpha * annealing(group.step, t);
                    thinking.iter().map(|r| factor * r).collect()
                }
                GroupKind::Difficulty { component, beta } => {
                    let col = components
                        .get(component)
                        .cloned()
                        .unwrap_or_else(|| vec![0.0; n]);
                    let d = if n == 0 {
                        0.0
                    } else {
                        1.0 - col.iter().sum::<f64>() / n as f64
                    };
                    col.iter().map(|v| v * (1.0 + beta * d)).collect()
                }
            };
            for (r, v) in rewards.iter_mut().zip(&values) {
                *r += c.weight * v;
            }
            components.insert(c.name.clone(), values);
        }
        out.rewards = rewards;
        out.components = components;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Rewards;
    use crate::config::RewardConfig;

    fn group(responses: &[&str], gold: Option<&str>, step: u64) -> Group {
        Group {
            prompt: String::new(),
            responses: responses.iter().map(|s| s.to_string()).collect(),
            gold: gold.map(String::from),
            data_source: None,
            step,
            total_steps: None,
        }
    }

    /// EMPO by hand: answers 4, 4.0, 2*2 (one cluster of 3), 5 (one of 1), none.
    /// Shares 3/5, 3/5, 3/5, 1/5, 0; entropy −(0.6 ln 0.6 + 0.2 ln 0.2) (p over G = 5).
    #[test]
    fn empo_by_hand() {
        let r = Rewards::new(
            &RewardConfig::from_toml(
                "[[reward.components]]\nkind = \"format\"\nweight = 0\nthink = false\n[[group.components]]\nkind = \"empo\"\n",
                "t",
            )
            .unwrap(),
        )
        .unwrap();
        let g = group(
            &[
                "\\boxed{4}",
                "\\boxed{4.0}",
                "\\boxed{2 \\cdot 2}",
                "\\boxed{5}",
                "no idea",
            ],
            None,
            0,
        );
        let out = r.score_group(&g);
        let want = [0.6, 0.6, 0.6, 0.2, 0.0];
        for (got, want) in out.rewards.iter().zip(want) {
            assert!((got - want).abs() < 1e-12, "{:?}", out.rewards);
        }
        assert_eq!(
            out.clusters,
            Some(vec![Some(0), Some(0), Some(0), Some(1), None])
        );
        let h = -(0.6f64 * 0.6f64.ln() + 0.2 * 0.2f64.ln());
        assert!((out.semantic_entropy.unwrap() - h).abs() < 1e-12);
        assert_eq!(out.components["empo"], want);
    }

    /// Trust-GRPO by hand. Thinking rewards (arith checker, `min` over steps): a right
    /// claim 1, a wrong one 0, no claim 0.5. Correct (accuracy 1): responses 0 and 1
    /// with thinking 0 and 0.5 (μ_c = 0.25); wrong: response 2 with thinking 1 (μ_w = 1).
    /// γ = e^(0.25 − 1); at step 50 of 100, α = 0.5: factor = γ · 0.5 · e^(−0.5).
    #[test]
    fn trust_grpo_by_hand() {
        let r = Rewards::new(
            &RewardConfig::from_toml(
                "[[reward.components]]\nkind = \"accuracy\"\n[[group.components]]\nkind = \"trust_grpo\"\nalpha = 0.5\ntotal_steps = 100\n",
                "t",
            )
            .unwrap(),
        )
        .unwrap();
        let g = group(
            &[
                "<think>2 + 2 = 5</think>\\boxed{4}",
                "<think>so it is four</think>\\boxed{4}",
                "<think>2 + 2 = 4</think>\\boxed{3}",
            ],
            Some("4"),
            50,
        );
        let out = r.score_group(&g);
        let gamma = (0.25f64 - 1.0).exp();
        assert!((out.trust_weight.unwrap() - gamma).abs() < 1e-12);
        let factor = gamma * 0.5 * (-0.5f64).exp();
        let want = [1.0, 1.0 + factor * 0.5, factor];
        for (got, want) in out.rewards.iter().zip(want) {
            assert!((got - want).abs() < 1e-12, "{:?} vs {want}", out.rewards);
        }
        // When correct responses think better, the thinking reward is fully trusted.
        assert_eq!(trust_weight(&[1.0, 0.0], &[true, false]), 1.0);
        assert_eq!(trust_weight(&[0.2, 0.4], &[true, true]), 1.0);
        // The request's total_steps overrides the configured one; step 0 anneals nothing.
        assert_eq!(annealing(0, 100), 1.0);
        assert!((annealing(100, 100) - (-1.0f64).exp()).abs() < 1e-15);
    }

    /// Difficulty by hand: accuracy 1, 0, 0, 0 → d = 0.75; β = 2 → scaled 1 · 2.5.
    #[test]
    fn difficulty_by_hand() {
        let r = Rewards::new(
            &RewardConfig::from_toml(
                "[[reward.components]]\nkind = \"accuracy\"\nweight = 0\n[[group.components]]\nkind = \"difficulty\"\nbeta = 2.0\n",
                "t",
            )
            .unwrap(),
        )
        .unwrap();
        let g = group(
            &["\\boxed{1}", "\\boxed{2}", "\\boxed{3}", "none"],
            Some("1"),
            0,
        );
        let out = r.score_group(&g);
        assert_eq!(out.rewards, [2.5, 0.0, 0.0, 0.0]);
        assert_eq!(out.components["accuracy"], [1.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn empty_groups_and_bad_specs() {
        let r = Rewards::new(&RewardConfig::default()).unwrap();
        let out = r.score_group(&group(&[], None, 0));
        assert!(out.rewards.is_empty());
        let e = RewardConfig::from_toml(
            "[[group.components]]\nkind = \"empo\"\nextract = [\"telepathy\"]\n",
            "t",
        )
        .unwrap_err();
        assert!(e.to_string().contains("telepathy"), "{e}");
    }
}
