//! Building scorers from names, as the command line and the reward server give them
//! (`arith`, `judge`, `arith*judge` for a product of scorers, `prm:URL` for a scorer with an
//! argument). This is the one parser of scorer specs: [`ScorerSpec`].

use crate::http_prm::{HttpPrmScorer, PrmSettings};
use crate::{
    ArithScorer, JudgeScorer, JudgeTemplate, OutcomeScorer, PolicyPrompt, ProductScorer, Reasoning,
    RolloutScorer, ScoreError, StepScorer,
};
use std::sync::Arc;
use stepwise_model::{Generator, SamplingParams};

/// The scorers by name (`prm` takes its server as `prm:URL`, several URLs joined by `,`).
pub const SCORER_NAMES: [&str; 11] = [
    "outcome",
    "arith",
    "rollout",
    "judge",
    "self-judge",
    "self-prm",
    "prm",
    "genprm",
    "likert",
    "listener",
    "drm",
];

/// A scorer a spec can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScorerKind {
    /// `outcome` (or `verifier`): the final answer against the gold answer.
    Outcome,
    /// `arith` (or `arithmetic`): the arithmetic claim checker.
    Arith,
    /// `rollout` (or `mc`): Monte-Carlo rollouts by the policy.
    Rollout,
    /// `judge`: a judge model (the policy when no judge is given).
    Judge,
    /// `self-judge` (or `self`): the policy judging its own steps.
    SelfJudge,
    /// `self-prm`: the policy rating its own whole solution (Self-PRM).
    SelfPrm,
    /// `prm:URL`: a process reward model behind HTTP.
    Prm,
    /// `head:PATH`: a trained head on the model's hidden states.
    Head,
    /// `genprm` (or `genprm:M`, M judgments per step): GenPRM, the judge reasons and runs
    /// code in the sandbox before each verdict.
    GenPrm,
    /// `likert` (or `likert:N`, a 1–N scale): the Likert judge with rationales
    /// (self-rationalization), solution-level.
    Likert,
    /// `listener`: a frozen model's probability of the stated answer given only the
    /// reasoning (listener-rewarded thinking), solution-level.
    Listener,
    /// `drm` (or `drm:WC,WR,WH`): DRM's confidence, relevance and coherence, weighted,
    /// solution-level.
    Drm,
}

impl ScorerKind {
    /// The kind a name (or one of its aliases) stands for, ignoring case.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name.trim().to_ascii_lowercase().as_str() {
            "outcome" | "verifier" => Self::Outcome,
            "arith" | "arithmetic" => Self::Arith,
            "rollout" | "mc" => Self::Rollout,
            "judge" => Self::Judge,
            "self-judge" | "self" => Self::SelfJudge,
            "self-prm" | "selfprm" => Self::SelfPrm,
            "prm" => Self::Prm,
            "head" => Self::Head,
            "genprm" => Self::GenPrm,
            "likert" => Self::Likert,
            "listener" => Self::Listener,
            "drm" => Self::Drm,
            _ => return None,
        })
    }

    /// The canonical name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Outcome => "outcome",
            Self::Arith => "arith",
            Self::Rollout => "rollout",
            Self::Judge => "judge",
            Self::SelfJudge => "self-judge",
            Self::SelfPrm => "self-prm",
            Self::Prm => "prm",
            Self::Head => "head",
            Self::GenPrm => "genprm",
            Self::Likert => "likert",
            Self::Listener => "listener",
            Self::Drm => "drm",
        }
    }

    /// Whether it needs a language model (a policy or a judge) injected.
    pub fn needs_model(self) -> bool {
        matches!(
            self,
            Self::Rollout
                | Self::Judge
                | Self::SelfJudge
                | Self::SelfPrm
                | Self::Head
                | Self::GenPrm
                | Self::Likert
                | Self::Listener
                | Self::Drm
        )
    }

    /// Whether it needs the problem's gold answer.
    pub fn needs_gold(self) -> bool {
        self == Self::Outcome
    }

    /// Whether it sends requests to servers (the URLs in its argument).
    pub fn calls_server(self) -> bool {
        self == Self::Prm
    }

    /// Whether it takes an argument (`prm:URL`, `head:PATH`).
    fn takes_arg(self) -> bool {
        matches!(self, Self::Prm | Self::Head)
    }
}

/// One part of a scorer spec: a scorer and its argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecPart {
    pub kind: ScorerKind,
    /// The text after `:` (`prm:URL`, `head:PATH`).
    pub arg: Option<String>,
}

/// A parsed scorer spec: one scorer, or several joined by `*` (their product).
///
/// ```
/// use stepwise_score::{ScorerKind, ScorerSettings, ScorerSpec};
///
/// let spec: ScorerSpec = "arith*Outcome".parse().unwrap();
/// assert!(spec.needs_gold() && !spec.needs_model());
/// assert_eq!(spec.parts[1].kind, ScorerKind::Outcome);
/// // Built without a model: fine for model-free scorers...
/// assert_eq!(spec.build(None, None, &ScorerSettings::default()).unwrap().name(), "arith*outcome");
/// // ...and an error that names the scorer otherwise.
/// let judge: ScorerSpec = "arith*judge".parse().unwrap();
/// let e = judge.build(None, None, &ScorerSettings::default()).err().unwrap();
/// assert!(e.to_string().starts_with("judge: needs a model"), "{e}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScorerSpec {
    pub parts: Vec<SpecPart>,
}

impl std::str::FromStr for ScorerSpec {
    type Err = ScoreError;

    fn from_str(spec: &str) -> Result<Self, ScoreError> {
        let parts = spec
            .split('*')
            .map(|part| {
                let (name, arg) = match part.split_once(':') {
                    Some((name, arg)) => (name.trim(), Some(arg.trim())),
                    None => (part.trim(), None),
                };
                let kind = ScorerKind::from_name(name).ok_or_else(|| ScoreError::Unusable {
                    scorer: name.to_ascii_lowercase(),
                    reason: format!(
                        "unknown scorer (expected {}, or several joined by '*')",
                        SCORER_NAMES.join(", ")
                    ),
                })?;
                // genprm's argument (its m) is optional; `prm` alone: its servers are given
                // apart (`--prm-endpoint`, a worker's own)
                let bare_prm = kind == ScorerKind::Prm && arg.is_none();
                let optional_arg = matches!(
                    kind,
                    ScorerKind::GenPrm | ScorerKind::Likert | ScorerKind::Drm
                );
                if !optional_arg && arg.is_some() != kind.takes_arg() && !bare_prm {
                    return Err(ScoreError::Unusable {
                        scorer: name.to_ascii_lowercase(),
                        reason: match kind {
                            ScorerKind::Head => "give its file as head:PATH".to_string(),
                            ScorerKind::Prm => format!("give its server as {}:URL", kind.name()),
                            _ => format!("takes no argument (got '{}')", part.trim()),
                        },
                    });
                }
                Ok(SpecPart {
                    kind,
                    arg: arg.map(String::from),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { parts })
    }
}

impl ScorerSpec {
    /// Whether any part needs a language model.
    pub fn needs_model(&self) -> bool {
        self.parts.iter().any(|p| p.kind.needs_model())
    }

    /// Whether any part needs the problem's gold answer.
    pub fn needs_gold(&self) -> bool {
        self.parts.iter().any(|p| p.kind.needs_gold())
    }

    /// Whether any part sends requests to servers.
    pub fn calls_server(&self) -> bool {
        self.parts.iter().any(|p| p.kind.calls_server())
    }

    /// Builds the scorer. `policy` serves the model-backed parts, `judge` (when given) the
    /// `judge` and `head` parts; a part that needs a model when none is given is an error
    /// naming it.
    pub fn build(
        &self,
        policy: Option<Arc<dyn Generator>>,
        judge: Option<Arc<dyn Generator>>,
        settings: &ScorerSettings,
    ) -> Result<Arc<dyn StepScorer>, ScoreError> {
        let mut scorers = self
            .parts
            .iter()
            .map(|p| p.build(policy.as_ref(), judge.as_ref(), settings))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(if scorers.len() == 1 {
            scorers.remove(0)
        } else {
            Arc::new(ProductScorer::new(scorers))
        })
    }
}

impl SpecPart {
    fn build(
        &self,
        policy: Option<&Arc<dyn Generator>>,
        judge: Option<&Arc<dyn Generator>>,
        settings: &ScorerSettings,
    ) -> Result<Arc<dyn StepScorer>, ScoreError> {
        let name = self.kind.name();
        let policy = || {
            policy.cloned().ok_or_else(|| ScoreError::Unusable {
                scorer: name.to_string(),
                reason: "needs a model, and none was given".into(),
            })
        };
        let judge_or_policy = || judge.cloned().map_or_else(policy, Ok);
        let arg = self.arg.as_deref().unwrap_or_default();
        Ok(match self.kind {
            ScorerKind::Outcome => Arc::new(OutcomeScorer::default()),
            ScorerKind::Arith => {
                let mut a = ArithScorer::default();
                a.unchecked = settings.unchecked;
                Arc::new(a)
            }
            ScorerKind::Rollout => Arc::new(RolloutScorer::new(
                policy()?,
                settings.policy_prompt.clone(),
                settings.rollouts,
                settings.rollout_params.clone(),
            )),
            ScorerKind::Judge | ScorerKind::SelfJudge | ScorerKind::SelfPrm => {
                let mut j = if self.kind == ScorerKind::SelfPrm {
                    // the policy's own judgment, of the whole solution
                    JudgeScorer::self_judge(policy()?, crate::SelfPrmScorer::template())
                } else if self.kind == ScorerKind::SelfJudge {
                    JudgeScorer::self_judge(policy()?, settings.judge_template.clone())
                } else {
                    JudgeScorer::new(judge_or_policy()?, settings.judge_template.clone())
                };
                j.seed = settings.seed;
                if let Some(r) = &settings.reasoning {
                    j = j.with_reasoning(r.clone(), settings.judgments);
                }
                if self.kind == ScorerKind::SelfPrm {
                    Arc::new(crate::SelfPrmScorer::with_judge(j))
                } else {
                    Arc::new(j)
                }
            }
            ScorerKind::GenPrm => {
                let mut genprm = crate::GenPrmSettings::default();
                if !arg.is_empty() {
                    genprm.m = arg.parse().ok().filter(|m| *m > 0).ok_or_else(|| {
                        ScoreError::Unusable {
                            scorer: name.to_string(),
                            reason: format!(
                                "genprm:M takes a positive number of judgments (got '{arg}')"
                            ),
                        }
                    })?;
                }
                // --judge-reasoning TOKENS bounds each analysis (its code included)
                if let Some(r) = &settings.reasoning {
                    genprm.max_tokens = r.max_tokens;
                }
                let sandbox =
                    stepwise_sandbox::Sandbox::new(genprm.limits.clone()).map_err(|e| {
                        ScoreError::Unusable {
                            scorer: name.to_string(),
                            reason: e.to_string(),
                        }
                    })?;
                let mut g =
                    crate::GenPrmScorer::new(judge_or_policy()?, sandbox).with_settings(genprm);
                g.seed = settings.seed;
                Arc::new(g)
            }
            ScorerKind::Likert => {
                let mut likert = settings.likert.clone();
                if !arg.is_empty() {
                    likert.scale = arg.parse().ok().filter(|n| *n >= 2).ok_or_else(|| {
                        ScoreError::Unusable {
                            scorer: name.to_string(),
                            reason: format!("likert:N takes a scale of at least 2 (got '{arg}')"),
                        }
                    })?;
                }
                let mut l = crate::LikertScorer::new(judge_or_policy()?, likert)?;
                l.seed = settings.seed;
                Arc::new(l)
            }
            ScorerKind::Listener => Arc::new(crate::ListenerScorer::new(judge_or_policy()?)),
            ScorerKind::Drm => {
                let weights = if arg.is_empty() {
                    crate::DrmWeights::default()
                } else {
                    crate::DrmWeights::parse(arg).map_err(|reason| ScoreError::Unusable {
                        scorer: name.to_string(),
                        reason,
                    })?
                };
                Arc::new(crate::DrmScorer::new(
                    policy()?,
                    judge_or_policy()?,
                    weights,
                ))
            }
            ScorerKind::Prm => {
                // servers given apart from the spec (a worker's own) replace the spec's
                let urls: Vec<String> = if settings.prm.endpoints.is_empty() {
                    server_urls(arg)
                } else {
                    settings.prm.endpoints.clone()
                };
                if urls.is_empty() {
                    return Err(ScoreError::Unusable {
                        scorer: name.to_string(),
                        reason: "give its server as prm:URL or with --prm-endpoint URL".into(),
                    });
                }
                Arc::new(HttpPrmScorer::new(urls, settings.prm.clone())?)
            }
            ScorerKind::Head => {
                let head = crate::PrmHead::load(std::path::Path::new(arg)).map_err(|e| {
                    ScoreError::Unusable {
                        scorer: name.to_string(),
                        reason: stepwise_core::error_chain(&e),
                    }
                })?;
                Arc::new(crate::HeadScorer::new(
                    judge_or_policy()?,
                    Arc::new(head),
                    false,
                )?)
            }
        })
    }
}

/// The URLs of a `prm:URL[,URL…]` argument.
fn server_urls(arg: &str) -> Vec<String> {
    arg.split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(String::from)
        .collect()
}

/// A scorer spec split into its identity and its servers: the spec with the URLs of its
/// `prm:URL` parts removed (`arith*prm:http://a:1,http://b:1` → `arith*prm`; every other
/// part kept as written), and those URLs. The identity is what a stored run keeps (what
/// decides its scores), so workers on several machines may each reach the PRM through a
/// server of their own (`--prm-endpoint`, or their own `prm:URL`).
///
/// ```
/// let (identity, servers) = stepwise_score::split_servers("arith*prm:http://a:1, http://b:1").unwrap();
/// assert_eq!(identity, "arith*prm");
/// assert_eq!(servers, ["http://a:1", "http://b:1"]);
/// assert_eq!(stepwise_score::split_servers("arith*judge").unwrap().0, "arith*judge");
/// ```
pub fn split_servers(spec: &str) -> Result<(String, Vec<String>), ScoreError> {
    let parsed: ScorerSpec = spec.parse()?;
    let mut servers = Vec::new();
    let parts: Vec<String> = spec
        .split('*')
        .zip(&parsed.parts)
        .map(|(text, part)| {
            if part.kind != ScorerKind::Prm {
                return text.to_string();
            }
            servers.extend(part.arg.as_deref().map(server_urls).unwrap_or_default());
            // the name as written, with the whitespace around the part
            let lead = &text[..text.len() - text.trim_start().len()];
            let trail = &text[text.trim_end().len()..];
            let name = text.trim().split_once(':').map_or(text.trim(), |(n, _)| n);
            format!("{lead}{}{trail}", name.trim_end())
        })
        .collect();
    Ok((parts.join("*"), servers))
}

/// Whether a scorer spec needs a language model (policy or judge) to be opened. A spec that
/// does not parse needs none: building it reports what is wrong with it.
pub fn needs_model(spec: &str) -> bool {
    spec.parse::<ScorerSpec>().is_ok_and(|s| s.needs_model())
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
    /// The Likert judge's criteria, judgments per input and scale (`likert:N` sets N).
    pub likert: crate::LikertSettings,
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
            likert: crate::LikertSettings::default(),
        }
    }
}

/// Builds a scorer from `spec`: one name of [`SCORER_NAMES`], or several joined by `*`
/// (their product); see [`ScorerSpec::build`] for the models. `policy` may be `None` when the
/// spec [needs no model](needs_model).
pub fn build_scorer(
    spec: &str,
    policy: Option<Arc<dyn Generator>>,
    judge: Option<Arc<dyn Generator>>,
    settings: &ScorerSettings,
) -> Result<Arc<dyn StepScorer>, ScoreError> {
    spec.parse::<ScorerSpec>()?.build(policy, judge, settings)
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
        let e = build_scorer("prm", Some(g.clone()), None, &s)
            .err()
            .unwrap();
        assert!(e.to_string().contains("--prm-endpoint"), "{e}");
        let own = ScorerSettings {
            prm: PrmSettings {
                endpoints: vec!["http://127.0.0.1:9".into()],
                ..PrmSettings::default()
            },
            ..ScorerSettings::default()
        };
        assert_eq!(build_scorer("prm", None, None, &own).unwrap().name(), "prm");
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
        assert!(build_scorer("genprm:0", Some(g.clone()), None, &s).is_err());
        assert!(build_scorer("genprm:x", Some(g.clone()), None, &s).is_err());
        assert_eq!(
            build_scorer("genprm:4", Some(g.clone()), None, &s)
                .unwrap()
                .name(),
            "genprm"
        );
        assert!(needs_model("genprm"));
        assert!(needs_model("likert:7"));
        assert!(build_scorer("likert:1", Some(g.clone()), None, &s).is_err());
        assert!(build_scorer("likert:x", Some(g.clone()), None, &s).is_err());
        assert_eq!(
            build_scorer("arith*likert:10", Some(g.clone()), None, &s)
                .unwrap()
                .name(),
            "arith*likert"
        );
        assert!(build_scorer("oracle", Some(g), None, &s).is_err());
        assert!(!needs_model("oracle"));
        let e = build_scorer("arith*rollout", None, None, &s)
            .err()
            .unwrap()
            .to_string();
        assert_eq!(e, "rollout: needs a model, and none was given");
        let spec: ScorerSpec = "Arithmetic * verifier * prm:http://h:1".parse().unwrap();
        assert!(spec.needs_gold() && spec.calls_server() && !spec.needs_model());
        assert_eq!(spec.parts[2].arg.as_deref(), Some("http://h:1"));
    }

    #[test]
    fn a_spec_splits_into_its_identity_and_its_servers() {
        let (id, urls) = split_servers("Arith * prm:http://a:1,http://b:2 *outcome").unwrap();
        assert_eq!(id, "Arith * prm *outcome");
        assert_eq!(urls, ["http://a:1", "http://b:2"]);
        let (id, urls) = split_servers("prm").unwrap();
        assert_eq!((id.as_str(), urls.len()), ("prm", 0));
        assert_eq!(split_servers("judge").unwrap().0, "judge");
        assert!(split_servers("oracle").is_err());
        // two machines' specs have one identity
        assert_eq!(
            split_servers("prm:http://one:8000").unwrap().0,
            split_servers("prm:http://two:9000").unwrap().0
        );
    }
}
