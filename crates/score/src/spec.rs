//! Building scorers from names, as the command line gives them (`arith`, `judge`,
//! `arith*judge` for a product of scorers, `prm:URL` for a scorer with an argument).

use crate::http_prm::{HttpPrmScorer, PrmSettings};
use crate::{
    ArithScorer, JudgeScorer, JudgeTemplate, OutcomeScorer, PolicyPrompt, ProductScorer, Reasoning,
    RolloutScorer, ScoreError, StepScorer,
};
use std::sync::Arc;
use stepwise_model::{Generator, SamplingParams};

/// The scorers by name (`prm` takes its server as `prm:URL`, several URLs joined by `,`).
pub const SCORER_NAMES: [&str; 6] = ["outcome", "arith", "rollout", "judge", "self-judge", "prm"];

/// One part of a scorer spec: `name` or `name:argument`.
fn split_part(part: &str) -> (String, Option<&str>) {
    match part.split_once(':') {
        Some((name, arg)) => (name.trim().to_ascii_lowercase(), Some(arg.trim())),
        None => (part.trim().to_ascii_lowercase(), None),
    }
}

/// Whether a scorer spec needs a language model (policy or judge) to be opened.
pub fn needs_model(spec: &str) -> bool {
    spec.split('*').any(|part| {
        !matches!(
            split_part(part).0.as_str(),
            "outcome" | "verifier" | "arith" | "arithmetic" | "prm"
        )
    })
}

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
    /// How `prm:URL` talks to its server.
    pub prm: PrmSettings,
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
            prm: PrmSettings::default(),
        }
    }
}

/// Builds a scorer from `spec`: one name of [`SCORER_NAMES`], or several joined by `*`
/// (their product). `judge` is the judge model for `judge` (the policy when `None`).
/// `policy` may be `None` when the spec [needs no model](needs_model).
pub fn build_scorer(
    spec: &str,
    policy: Option<Arc<dyn Generator>>,
    judge: Option<Arc<dyn Generator>>,
    settings: &ScorerSettings,
) -> Result<Arc<dyn StepScorer>, ScoreError> {
    let model = |name: &str| {
        policy.clone().ok_or_else(|| ScoreError::Unusable {
            scorer: name.to_string(),
            reason: "needs a model, and none was opened".into(),
        })
    };
    let parts: Vec<&str> = spec.split('*').map(str::trim).collect();
    let mut scorers: Vec<Arc<dyn StepScorer>> = Vec::new();
    for part in &parts {
        let (name, arg) = split_part(part);
        let name = name.as_str();
        let needs_arg = matches!(name, "prm" | "head");
        if arg.is_some() != needs_arg {
            return Err(ScoreError::Unusable {
                scorer: name.to_string(),
                reason: if name == "head" {
                    "give its file as head:PATH".to_string()
                } else if needs_arg {
                    format!("give its server as {name}:URL")
                } else {
                    format!("takes no argument (got '{part}')")
                },
            });
        }
        let s: Arc<dyn StepScorer> = match name {
            "outcome" | "verifier" => Arc::new(OutcomeScorer::default()),
            "arith" | "arithmetic" => {
                let mut a = ArithScorer::default();
                a.unchecked = settings.unchecked;
                Arc::new(a)
            }
            "rollout" | "mc" => Arc::new(RolloutScorer::new(
                model(name)?,
                settings.policy_prompt.clone(),
                settings.rollouts,
                settings.rollout_params.clone(),
            )),
            "judge" | "self-judge" | "self" => {
                let self_judge = name.starts_with("self");
                let model = if self_judge {
                    model(name)?
                } else {
                    match judge.clone() {
                        Some(j) => j,
                        None => model(name)?,
                    }
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
            "prm" => {
                let urls = arg
                    .unwrap_or_default()
                    .split(',')
                    .map(str::trim)
                    .filter(|u| !u.is_empty())
                    .map(String::from)
                    .collect();
                Arc::new(HttpPrmScorer::new(urls, settings.prm.clone())?)
            }
            "head" => {
                let path = std::path::Path::new(arg.unwrap_or_default());
                let head = crate::PrmHead::load(path).map_err(|e| ScoreError::Unusable {
                    scorer: name.to_string(),
                    reason: e.to_string(),
                })?;
                let model = match judge.clone() {
                    Some(j) => j,
                    None => model(name)?,
                };
                Arc::new(crate::HeadScorer::new(model, Arc::new(head), false)?)
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
    use stepwise_model::scripted::ScriptedGenerator;

    #[test]
    fn names() {
        let g: Arc<dyn Generator> = Arc::new(ScriptedGenerator::new(|_, _| String::new()));
        let s = ScorerSettings::default();
        for n in SCORER_NAMES {
            let spec = if n == "prm" {
                "prm:http://127.0.0.1:9".to_string()
            } else {
                n.to_string()
            };
            assert_eq!(
                build_scorer(&spec, Some(g.clone()), None, &s)
                    .unwrap()
                    .name(),
                n
            );
        }
        assert!(build_scorer("prm", Some(g.clone()), None, &s).is_err());
        assert!(build_scorer("arith:x", Some(g.clone()), None, &s).is_err());
        assert!(build_scorer("prm:not-a-url", Some(g.clone()), None, &s).is_err());
        assert!(!needs_model("arith*prm:http://h:1*outcome"));
        assert!(build_scorer("arith*prm:http://h:1", None, None, &s).is_ok());
        assert!(build_scorer("arith*judge", None, None, &s).is_err());
        assert!(needs_model("arith*judge"));
        assert_eq!(
            build_scorer("arith*judge", Some(g.clone()), None, &s)
                .unwrap()
                .name(),
            "arith*judge"
        );
        assert!(build_scorer("oracle", Some(g), None, &s).is_err());
    }
}
