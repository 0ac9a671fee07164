//! Building scorers from names, as the command line gives them (`arith`, `judge`,
//! `arith*judge` for a product of scorers).

use crate::{
    ArithScorer, JudgeScorer, JudgeTemplate, OutcomeScorer, PolicyPrompt, ProductScorer, Reasoning,
    RolloutScorer, ScoreError, StepScorer,
};
use std::sync::Arc;
use stepwise_engine::{Generator, SamplingParams};

/// The scorers by name.
pub const SCORER_NAMES: [&str; 5] = ["outcome", "arith", "rollout", "judge", "self-judge"];

/// Settings the model-backed scorers use.
#[derive(Debug, Clone)]
pub struct ScorerSettings {
    pub policy_prompt: PolicyPrompt,
    pub judge_template: JudgeTemplate,
    /// Rollouts per step (`rollout`).
    pub rollouts: usize,
    /// Sampling of rollouts (`n` is replaced).
    pub rollout_params: SamplingParams,
    /// Judgments averaged per step (`judge`, `self-judge`; used with reasoning).
    pub judgments: usize,
    pub reasoning: Option<Reasoning>,
    /// Score of a step without checkable claims (`arith`).
    pub unchecked: f64,
    pub seed: u64,
}

impl Default for ScorerSettings {
    fn default() -> Self {
        Self {
            policy_prompt: PolicyPrompt::default(),
            judge_template: JudgeTemplate::default(),
            rollouts: 4,
            rollout_params: SamplingParams::default(),
            judgments: 1,
            reasoning: None,
            unchecked: 0.5,
            seed: 0,
        }
    }
}

/// Builds a scorer from `spec`: one name of [`SCORER_NAMES`], or several joined by `*`
/// (their product). `judge` is the judge model for `judge` (the policy when `None`).
pub fn build_scorer(
    spec: &str,
    policy: Arc<dyn Generator>,
    judge: Option<Arc<dyn Generator>>,
    settings: &ScorerSettings,
) -> Result<Arc<dyn StepScorer>, ScoreError> {
    let parts: Vec<&str> = spec.split('*').map(str::trim).collect();
    let mut scorers: Vec<Arc<dyn StepScorer>> = Vec::new();
    for name in &parts {
        let s: Arc<dyn StepScorer> = match name.to_ascii_lowercase().as_str() {
            "outcome" | "verifier" => Arc::new(OutcomeScorer::default()),
            "arith" | "arithmetic" => {
                let mut a = ArithScorer::default();
                a.unchecked = settings.unchecked;
                Arc::new(a)
            }
            "rollout" | "mc" => Arc::new(RolloutScorer::new(
                policy.clone(),
                settings.policy_prompt.clone(),
                settings.rollouts,
                settings.rollout_params.clone(),
            )),
            "judge" | "prm" | "self-judge" | "self" => {
                let self_judge = name.starts_with("self");
                let model = if self_judge {
                    policy.clone()
                } else {
                    judge.clone().unwrap_or_else(|| policy.clone())
                };
                let mut j = if self_judge {
                    JudgeScorer::self_judge(model, settings.judge_template.clone())
                } else {
                    JudgeScorer::new(model, settings.judge_template.clone())
                };
                j.seed = settings.seed;
                if let Some(r) = &settings.reasoning {
                    j = j.with_reasoning(r.clone(), settings.judgments);
                }
                Arc::new(j)
            }
            other => {
                return Err(ScoreError::Unusable {
                    scorer: other.to_string(),
                    reason: format!(
                        "unknown scorer (expected {}, or several joined by '*')",
                        SCORER_NAMES.join(", ")
                    ),
                });
            }
        };
        scorers.push(s);
    }
    Ok(if scorers.len() == 1 {
        scorers.remove(0)
    } else {
        Arc::new(ProductScorer::new(scorers))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::ScriptedGenerator;

    #[test]
    fn names() {
        let g: Arc<dyn Generator> = Arc::new(ScriptedGenerator::new(|_, _| String::new()));
        let s = ScorerSettings::default();
        for n in SCORER_NAMES {
            assert_eq!(build_scorer(n, g.clone(), None, &s).unwrap().name(), n);
        }
        assert_eq!(
            build_scorer("arith*judge", g.clone(), None, &s)
                .unwrap()
                .name(),
            "arith*judge"
        );
        assert!(build_scorer("oracle", g, None, &s).is_err());
    }
}
