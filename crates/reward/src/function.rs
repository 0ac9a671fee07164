//! Reward functions: weighted sums of components, built from [`RewardSpec`]s.
//!
//! Reward functions are synchronous and CPU-bound; callers run them on a worker pool
//! (the server's, a rayon pool), never on an async runtime.
//!
//! ```
//! use stepwise_reward::config::RewardSpec;
//! use stepwise_reward::{Limits, RewardFn};
//!
//! let spec = RewardSpec { preset: Some("deepseek-r1".into()), components: vec![] };
//! let f = RewardFn::build("reward", &spec).unwrap();
//! let s = f.score("", "<think>2+2=4</think> The answer is \\boxed{4}.", "4", &Limits::default());
//! assert_eq!(s.result.components["accuracy"], 1.0);
//! assert_eq!(s.result.components["format"], 1.0);
//! assert_eq!(s.result.reward, 2.0);
//! ```

use crate::calibration::{Stated, is_abstention, rlcr_reward, stated_confidence};
use crate::config::{
    AnswerForm, ComponentSpec, ConfigError, InstructionAggregate, InstructionMode,
    InstructionTarget, LengthUnit, RewardSpec,
};
use crate::instructions::Instruction;
use crate::ranking::{RankParams, parse_gold, parse_ranking, rank_reward};
use crate::reasonflux::reasonflux_reward;
use crate::shaping::{CosineParams, cosine_length_reward, length_in, repetition_penalty};
use crate::shop::{ActionWeights, action_reward, parse_action, self_certainty};
use crate::{ItemExtras, RewardResult};
use std::collections::BTreeMap;
use stepwise_core::{
    Aggregation, AnswerExtractor, Delimiter, ExtractRule, Rationale, StepSplitter, find_boxed,
};
use stepwise_verify::{ArithChecker, Options, Verdict};

/// Bounds applied while scoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Longer extracted answers are not verified (verdict undecided).
    pub max_answer_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_answer_bytes: 4096,
        }
    }
}

/// Where an accuracy component looks for the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extract {
    /// A rule of [`AnswerExtractor`].
    Rule(ExtractRule),
    /// The content of the last `<answer>…</answer>` (its `\boxed{}` when it has one).
    AnswerTag,
}

impl Extract {
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        let norm = s.trim().to_ascii_lowercase().replace('_', "-");
        if norm == "answer-tag" {
            return Ok(Self::AnswerTag);
        }
        norm.parse::<ExtractRule>().map(Self::Rule).map_err(|_| {
            format!(
                "unknown extraction rule '{s}' (expected boxed, answer-tag, gsm8k, final-answer, answer-is or last-number)"
            )
        })
    }
}

#[derive(Debug, Clone)]
enum Kind {
    /// A generated task's exact verifier.
    Task(stepwise_tasks::Task),
    Accuracy {
        extract: Vec<Extract>,
        opts: Options,
    },
    Format {
        think: bool,
        answer: AnswerForm,
    },
    Length {
        max_len: usize,
        buffer: usize,
        unit: LengthUnit,
    },
    Choice {
        letters: Vec<char>,
    },
    Instructions {
        target: InstructionTarget,
        mode: InstructionMode,
        aggregate: InstructionAggregate,
    },
    StepCheck {
        aggregation: Aggregation,
        splitter: StepSplitter,
        arith: ArithChecker,
    },
    CosineLength {
        params: CosineParams,
        unit: LengthUnit,
        extract: Vec<Extract>,
    },
    Repetition {
        ngram: usize,
        penalty: f64,
    },
    Calibration {
        extract: Vec<Extract>,
        unparsed: f64,
    },
    ReasonRank {
        params: RankParams,
        unparsed: f64,
    },
    ReasonFlux {
        alpha: f64,
        aggregation: Aggregation,
        splitter: StepSplitter,
        arith: ArithChecker,
    },
    ShopAction(ActionWeights),
    SelfCertainty,
    Code(crate::code::CodeCheck),
    /// A model-backed component: its configuration, and the component once built
    /// ([`RewardFn::resolve`]); scored by [`RewardFn::score_models`], not by `score_with`.
    Model {
        spec: crate::model::ScorerUse,
        built: Option<crate::model::ModelRef>,
    },
}

impl Kind {
    /// The flag this kind raises when its input cannot be read.
    fn flag(&self) -> Option<&'static str> {
        match self {
            Self::Calibration { .. } => Some("confidence_unparsed"),
            Self::ReasonRank { .. } => Some("ranking_unparsed"),
            Self::ReasonFlux { .. } => Some("no_thinking"),
            Self::ShopAction(_) => Some("action_unparsed"),
            Self::SelfCertainty => Some("no_logprobs"),
            Self::Model { .. } => Some("model_failed"),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
struct Component {
    name: String,
    weight: f64,
    kind: Kind,
}

/// A reward function: `reward = Σ weight × component value`.
#[derive(Debug, Clone)]
pub struct RewardFn {
    components: Vec<Component>,
}

/// A scored item with what the server counts in its metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    pub result: RewardResult,
    /// The verifier's verdict, when an accuracy component ran.
    pub verdict: Option<Verdict>,
    /// True when an answer-based component found no answer.
    pub no_answer: bool,
    /// True when the item came with no gold answer (a null label).
    pub no_gold: bool,
}

impl RewardFn {
    /// Builds the function `spec` describes; `origin` names it in errors.
    pub fn build(origin: &str, spec: &RewardSpec) -> Result<Self, ConfigError> {
        let specs = spec.components(origin)?;
        if specs.is_empty() {
            return Err(ConfigError::Invalid(format!("{origin}: no components")));
        }
        let mut components = Vec::with_capacity(specs.len());
        for c in specs {
            let (name, weight, default_name, kind) = match c {
                ComponentSpec::Accuracy {
                    name,
                    weight,
                    extract,
                    float_rounding,
                    strict,
                } => {
                    let extract = parse_extract(origin, "accuracy", &extract)?;
                    let mut opts = Options::default();
                    if let Some(r) = float_rounding {
                        opts.float_rounding = r;
                    }
                    if let Some(s) = strict {
                        opts.strict = s;
                    }
                    (name, weight, "accuracy", Kind::Accuracy { extract, opts })
                }
                ComponentSpec::Format {
                    name,
                    weight,
                    think,
                    answer,
                } => (name, weight, "format", Kind::Format { think, answer }),
                ComponentSpec::Length {
                    name,
                    weight,
                    max_len,
                    buffer,
                    unit,
                } => {
                    if buffer == 0 || buffer > max_len {
                        return Err(ConfigError::Invalid(format!(
                            "{origin}: length needs 0 < buffer <= max_len (got buffer {buffer}, max_len {max_len})"
                        )));
                    }
                    (
                        name,
                        weight,
                        "length",
                        Kind::Length {
                            max_len,
                            buffer,
                            unit,
                        },
                    )
                }
                ComponentSpec::StepCheck {
                    name,
                    weight,
                    aggregation,
                    delimiter,
                } => {
                    let aggregation = aggregation
                        .parse::<Aggregation>()
                        .map_err(|e| ConfigError::Invalid(format!("{origin}: {e}")))?;
                    let splitter = parse_delimiter(&delimiter)
                        .map_err(|e| ConfigError::Invalid(format!("{origin}: {e}")))?;
                    (
                        name,
                        weight,
                        "step_check",
                        Kind::StepCheck {
                            aggregation,
                            splitter,
                            arith: ArithChecker::default(),
                        },
                    )
                }
                ComponentSpec::Task { name, weight, task } => {
                    let t: stepwise_tasks::Task = task
                        .parse()
                        .map_err(|e: String| ConfigError::Invalid(format!("{origin}: {e}")))?;
                    (name, weight, "task", Kind::Task(t))
                }
                ComponentSpec::Choice {
                    name,
                    weight,
                    letters,
                } => {
                    let letters: Vec<char> =
                        letters.chars().filter(|c| !c.is_whitespace()).collect();
                    if letters.is_empty() {
                        return Err(ConfigError::Invalid(format!(
                            "{origin}: choice needs at least one letter"
                        )));
                    }
                    (name, weight, "choice", Kind::Choice { letters })
                }
                ComponentSpec::CosineLength {
                    name,
                    weight,
                    max_len,
                    r0_correct,
                    rl_correct,
                    r0_wrong,
                    rl_wrong,
                    exceed,
                    unit,
                    extract,
                } => {
                    if max_len == 0 {
                        return Err(ConfigError::Invalid(format!(
                            "{origin}: cosine_length needs max_len > 0"
                        )));
                    }
                    let params = CosineParams {
                        max_len,
                        r0_correct,
                        rl_correct,
                        r0_wrong,
                        rl_wrong,
                        exceed,
                    };
                    finite(
                        origin,
                        "cosine_length",
                        &[r0_correct, rl_correct, r0_wrong, rl_wrong, exceed],
                    )?;
                    let extract = parse_extract(origin, "cosine_length", &extract)?;
                    (
                        name,
                        weight,
                        "cosine_length",
                        Kind::CosineLength {
                            params,
                            unit,
                            extract,
                        },
                    )
                }
                ComponentSpec::Repetition {
                    name,
                    weight,
                    ngram,
                    penalty,
                } => {
                    if ngram == 0 || !penalty.is_finite() || penalty < 0.0 {
                        return Err(ConfigError::Invalid(format!(
                            "{origin}: repetition needs ngram >= 1 and a finite penalty >= 0 (got ngram {ngram}, penalty {penalty})"
                        )));
                    }
                    (
                        name,
                        weight,
                        "repetition",
                        Kind::Repetition { ngram, penalty },
                    )
                }
                ComponentSpec::Calibration {
                    name,
                    weight,
                    extract,
                    unparsed,
                } => {
                    finite(origin, "calibration", &[unparsed])?;
                    let extract = parse_extract(origin, "calibration", &extract)?;
                    (
                        name,
                        weight,
                        "calibration",
                        Kind::Calibration { extract, unparsed },
                    )
                }
                ComponentSpec::ReasonRank {
                    name,
                    weight,
                    ndcg_k,
                    recall_k,
                    phi,
                    gamma,
                    rbo_p,
                    relevant_top,
                    unparsed,
                } => {
                    finite(origin, "reason_rank", &[phi, gamma, unparsed])?;
                    if ndcg_k == 0 || recall_k == 0 || !(rbo_p > 0.0 && rbo_p <= 1.0) {
                        return Err(ConfigError::Invalid(format!(
                            "{origin}: reason_rank needs ndcg_k, recall_k >= 1 and 0 < rbo_p <= 1"
                        )));
                    }
                    let params = RankParams {
                        ndcg_k,
                        recall_k,
                        phi,
                        gamma,
                        rbo_p,
                        relevant_top,
                    };
                    (
                        name,
                        weight,
                        "reason_rank",
                        Kind::ReasonRank { params, unparsed },
                    )
                }
                ComponentSpec::ReasonFlux {
                    name,
                    weight,
                    alpha,
                    aggregation,
                    delimiter,
                } => {
                    finite(origin, "reason_flux", &[alpha])?;
                    let aggregation = aggregation
                        .parse::<Aggregation>()
                        .map_err(|e| ConfigError::Invalid(format!("{origin}: {e}")))?;
                    let splitter = parse_delimiter(&delimiter)
                        .map_err(|e| ConfigError::Invalid(format!("{origin}: {e}")))?;
                    (
                        name,
                        weight,
                        "reason_flux",
                        Kind::ReasonFlux {
                            alpha,
                            aggregation,
                            splitter,
                            arith: ArithChecker::default(),
                        },
                    )
                }
                ComponentSpec::ShopAction {
                    name,
                    weight,
                    type_weight,
                    attribute_weight,
                    value_weight,
                } => {
                    finite(
                        origin,
                        "shop_action",
                        &[type_weight, attribute_weight, value_weight],
                    )?;
                    (
                        name,
                        weight,
                        "shop_action",
                        Kind::ShopAction(ActionWeights {
                            type_weight,
                            attribute_weight,
                            value_weight,
                        }),
                    )
                }
                ComponentSpec::SelfCertainty { name, weight } => {
                    (name, weight, "self_certainty", Kind::SelfCertainty)
                }
                ComponentSpec::Instructions {
                    name,
                    weight,
                    target,
                    mode,
                    aggregate,
                } => (
                    name,
                    weight,
                    match target {
                        InstructionTarget::Response => "instructions",
                        InstructionTarget::Reasoning => "reasoning_instructions",
                    },
                    Kind::Instructions {
                        target,
                        mode,
                        aggregate,
                    },
                ),
                ComponentSpec::Scorer {
                    name,
                    weight,
                    spec,
                    score_as,
                    aggregation,
                    delimiter,
                } => {
                    let aggregation = aggregation
                        .parse::<Aggregation>()
                        .map_err(|e| ConfigError::Invalid(format!("{origin}: {e}")))?;
                    let splitter = parse_delimiter(&delimiter)
                        .map_err(|e| ConfigError::Invalid(format!("{origin}: {e}")))?;
                    if spec.trim().is_empty() {
                        return Err(ConfigError::Invalid(format!(
                            "{origin}: a scorer component needs a `spec` (judge, prm:URL, head:PATH, …)"
                        )));
                    }
                    let name = name.unwrap_or_else(|| crate::model::default_name(&spec));
                    let kind = Kind::Model {
                        spec: crate::model::ScorerUse {
                            name: name.clone(),
                            spec,
                            mode: score_as,
                            aggregation,
                            splitter,
                        },
                        built: None,
                    };
                    (Some(name), weight, "scorer", kind)
                }
                ComponentSpec::Code {
                    name,
                    weight,
                    mode,
                    cpu_secs,
                    wall_ms,
                    memory_mb,
                    max_cases,
                } => {
                    let limits = stepwise_sandbox::Limits {
                        cpu_secs,
                        wall_ms,
                        memory_bytes: memory_mb.saturating_mul(1 << 20),
                        ..stepwise_sandbox::Limits::default()
                    };
                    let check = crate::code::CodeCheck::new(limits, mode, max_cases)
                        .map_err(|e| ConfigError::Invalid(format!("{origin}: {e}")))?;
                    (name, weight, "code", Kind::Code(check))
                }
            };
            if !weight.is_finite() {
                return Err(ConfigError::Invalid(format!(
                    "{origin}: weight of {default_name} must be finite"
                )));
            }
            let name = name.unwrap_or_else(|| default_name.to_string());
            if components.iter().any(|c: &Component| c.name == name)
                || RESERVED.contains(&name.as_str())
            {
                return Err(ConfigError::Invalid(format!(
                    "{origin}: component name '{name}' used twice or reserved; give one a `name`"
                )));
            }
            components.push(Component { name, weight, kind });
        }
        Ok(Self { components })
    }

    /// Component names, in configuration order.
    pub fn component_names(&self) -> impl Iterator<Item = &str> {
        self.components.iter().map(|c| c.name.as_str())
    }

    /// The flags its components can raise (see [`RewardResult::flags`]).
    pub fn flag_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        let mut seen: Vec<&'static str> = Vec::new();
        self.components.iter().filter_map(move |c| {
            let f = c.kind.flag()?;
            (!seen.contains(&f)).then(|| {
                seen.push(f);
                f
            })
        })
    }

    /// Whether it has model-backed components (scored by [`RewardFn::score_models`]).
    pub fn has_models(&self) -> bool {
        self.components
            .iter()
            .any(|c| matches!(c.kind, Kind::Model { .. }))
    }

    /// The model-backed components not built yet, by name.
    pub(crate) fn unbuilt(&self) -> impl Iterator<Item = &crate::model::ScorerUse> {
        self.components.iter().filter_map(|c| match &c.kind {
            Kind::Model { spec, built: None } => Some(spec),
            _ => None,
        })
    }

    /// Builds its model-backed components with `models`; an error names `origin` and the
    /// component.
    pub(crate) fn resolve(
        &mut self,
        origin: &str,
        models: &dyn crate::model::ModelComponents,
    ) -> Result<(), ConfigError> {
        for c in &mut self.components {
            if let Kind::Model { spec, built } = &mut c.kind {
                let m = models.build(spec).map_err(|e| {
                    ConfigError::Invalid(format!(
                        "{origin}: component '{}' (scorer {}): {e}",
                        spec.name, spec.spec
                    ))
                })?;
                *built = Some(crate::model::ModelRef(m));
            }
        }
        Ok(())
    }

    /// Adds the values of the model-backed components to `s` (scored by `score_with`):
    /// every component awaited at once, so their model calls reach the backend together.
    /// A component that fails scores 0 and raises `model_failed`; every component's cost
    /// is in the logs (0 on failure).
    pub async fn score_models(&self, s: &mut Scored, item: &crate::model::ModelItem<'_>) {
        let calls = self.components.iter().filter_map(|c| match &c.kind {
            Kind::Model {
                built: Some(m),
                spec,
            } => Some(async move { (c, spec, m.0.score(item).await) }),
            _ => None,
        });
        for (c, spec, out) in futures::future::join_all(calls).await {
            let (value, cost) = match out {
                Ok(m) if m.value.is_finite() => (m.value, m.cost),
                Ok(m) => {
                    tracing::warn!(component = %c.name, scorer = %spec.spec, value = m.value, "model component gave a value that is not a number; scored 0");
                    s.result.flags.insert("model_failed".into(), true);
                    (0.0, m.cost)
                }
                Err(e) => {
                    tracing::warn!(component = %c.name, scorer = %spec.spec, error = %e, "model component failed; scored 0");
                    s.result.flags.insert("model_failed".into(), true);
                    (0.0, crate::model::ModelCost::default())
                }
            };
            s.result.reward += c.weight * value;
            s.result.components.insert(c.name.clone(), value);
            let [p, g, n] = crate::model::cost_keys(&c.name);
            s.result.logs.insert(p, cost.prompt_tokens as f64);
            s.result.logs.insert(g, cost.generated_tokens as f64);
            s.result.logs.insert(n, cost.calls as f64);
        }
    }

    /// Scores one response against a gold answer.
    pub fn score(&self, prompt: &str, response: &str, gold: &str, limits: &Limits) -> Scored {
        self.score_with(prompt, response, gold, limits, &ItemExtras::default())
    }

    /// [`RewardFn::score`] with what the item carries besides its text (log-probabilities).
    pub fn score_with(
        &self,
        prompt: &str,
        response: &str,
        gold: &str,
        limits: &Limits,
        extras: &ItemExtras,
    ) -> Scored {
        let mut components = BTreeMap::new();
        let mut flags: BTreeMap<String, bool> =
            self.flag_names().map(|f| (f.to_string(), false)).collect();
        let mut raise = |f: Option<&'static str>| {
            if let Some(f) = f {
                flags.insert(f.to_string(), true);
            }
        };
        let mut reward = 0.0;
        let mut verdict = None;
        let mut answer = None;
        let mut no_answer = false;
        let mut logs = BTreeMap::new();
        // Components that read the same answer (accuracy, cosine length, calibration) find
        // and verify it once per item: verification is most of an item's cost.
        let mut found_memo: Vec<(Vec<Extract>, Option<Found>)> = Vec::new();
        let mut find = |extract: &[Extract]| -> Option<Found> {
            if let Some((_, f)) = found_memo.iter().find(|(e, _)| e.as_slice() == extract) {
                return f.clone();
            }
            let f = find_answer(response, extract);
            found_memo.push((extract.to_vec(), f.clone()));
            f
        };
        let mut verified: Vec<(String, Options, Verdict)> = Vec::new();
        let default_opts = Options::default();
        let mut verify = |pred: &str, opts: &Options| -> Verdict {
            if let Some((_, _, v)) = verified.iter().find(|(p, o, _)| p == pred && o == opts) {
                return *v;
            }
            let v = check(gold, pred, opts, limits);
            verified.push((pred.to_string(), opts.clone(), v));
            v
        };
        for c in &self.components {
            let value = match &c.kind {
                // awaited apart (`score_models`); 0 until then
                Kind::Model { .. } => {
                    components.insert(c.name.clone(), 0.0);
                    continue;
                }
                Kind::Accuracy { extract, opts } => {
                    let found = find(extract);
                    let v = match &found {
                        None => {
                            no_answer = true;
                            Verdict::NotEqual
                        }
                        // `not \boxed{72}`: a denied answer is not the answer. Undecided
                        // scores 0 and is flagged (`undecided` in `extra_logs`).
                        Some(f) if f.negated => Verdict::Undecided,
                        Some(f) => verify(&f.text, opts),
                    };
                    let found = found.map(|f| f.text);
                    if answer.is_none() {
                        answer = found;
                    }
                    verdict = Some(merge_verdict(verdict, v));
                    if v.is_equal() { 1.0 } else { 0.0 }
                }
                Kind::Format { think, answer } => {
                    if format_ok(prompt, response, *think, *answer) {
                        1.0
                    } else {
                        0.0
                    }
                }
                Kind::Length {
                    max_len,
                    buffer,
                    unit,
                } => length_penalty(response, *max_len, *buffer, *unit),
                Kind::StepCheck {
                    aggregation,
                    splitter,
                    arith,
                } => {
                    // The claim checker is synchronous: its score of each step, here.
                    let rationale =
                        Rationale::parse(response, splitter, &AnswerExtractor::default());
                    let scores: Vec<f64> = rationale
                        .steps
                        .iter()
                        .map(|s| arith.score_text(&s.text).0)
                        .collect();
                    aggregation.apply(&scores).unwrap_or(0.0)
                }
                Kind::CosineLength {
                    params,
                    unit,
                    extract,
                } => {
                    let found = find(extract);
                    no_answer |= found.is_none();
                    let correct = found
                        .as_ref()
                        .is_some_and(|f| !f.negated && verify(&f.text, &default_opts).is_equal());
                    if answer.is_none() {
                        answer = found.map(|f| f.text);
                    }
                    cosine_length_reward(length_in(response, *unit), correct, params)
                }
                Kind::Repetition { ngram, penalty } => {
                    repetition_penalty(response, *ngram, *penalty)
                }
                Kind::Calibration { extract, unparsed } => {
                    let found = find(extract);
                    let abstained = match &found {
                        Some(f) => is_abstention(&f.text),
                        None => final_response(response).is_some_and(is_abstention),
                    };
                    if answer.is_none() {
                        answer = found.as_ref().map(|f| f.text.clone());
                    }
                    match (stated_confidence(response), abstained) {
                        (Stated::Value(q), true) => rlcr_reward(is_abstention(gold), q),
                        (_, true) => rlcr_reward(is_abstention(gold), 0.0),
                        (Stated::Value(q), false) => {
                            no_answer |= found.is_none();
                            let correct = found.as_ref().is_some_and(|f| {
                                !f.negated && verify(&f.text, &default_opts).is_equal()
                            });
                            rlcr_reward(correct, q)
                        }
                        (Stated::Unreadable | Stated::Missing, false) => {
                            no_answer |= found.is_none();
                            raise(c.kind.flag());
                            *unparsed
                        }
                    }
                }
                Kind::ReasonRank { params, unparsed } => {
                    let text = answer_tag_text(response)
                        .or_else(|| final_response(response))
                        .unwrap_or(response);
                    match (parse_ranking(text), parse_gold(gold, params.relevant_top)) {
                        (None, _) => {
                            no_answer = true;
                            raise(c.kind.flag());
                            *unparsed
                        }
                        (Some(pred), Ok(g)) => {
                            if answer.is_none() {
                                answer = Some(text.trim().to_string());
                            }
                            rank_reward(&pred, &g, params)
                        }
                        (Some(_), Err(_)) => 0.0,
                    }
                }
                Kind::ReasonFlux {
                    alpha,
                    aggregation,
                    splitter,
                    arith,
                } => {
                    let score_steps = |text: &str| -> Vec<f64> {
                        Rationale::parse(text, splitter, &AnswerExtractor::default())
                            .steps
                            .iter()
                            .map(|s| arith.score_text(&s.text).0)
                            .collect()
                    };
                    let steps = reasoning_trace(prompt, response)
                        .map(score_steps)
                        .unwrap_or_default();
                    let after = final_response(response).unwrap_or("");
                    let trajectory = aggregation.apply(&score_steps(after)).unwrap_or(0.0);
                    match reasonflux_reward(&steps, trajectory, *alpha) {
                        Some(v) => v,
                        None => {
                            raise(c.kind.flag());
                            0.0
                        }
                    }
                }
                Kind::ShopAction(w) => {
                    let pred = final_response(response).and_then(parse_action);
                    match (pred, parse_action(gold)) {
                        (Some(p), Some(g)) => action_reward(&p, &g, w),
                        (None, _) => {
                            no_answer = true;
                            raise(c.kind.flag());
                            0.0
                        }
                        (Some(_), None) => 0.0,
                    }
                }
                Kind::SelfCertainty => match extras.logprobs.and_then(self_certainty) {
                    Some(v) => v,
                    None => {
                        raise(c.kind.flag());
                        0.0
                    }
                },
                Kind::Task(t) => {
                    let v = t.score(response, gold);
                    no_answer |= v.is_none();
                    v.unwrap_or(0.0)
                }
                Kind::Choice { letters } => {
                    let pred = choice_letter(response, letters);
                    let want = parse_letter(gold, letters);
                    if answer.is_none() {
                        answer = pred.map(String::from);
                    }
                    if pred.is_none() {
                        no_answer = true;
                    }
                    if pred.is_some() && pred == want {
                        1.0
                    } else {
                        0.0
                    }
                }
                Kind::Instructions {
                    target,
                    mode,
                    aggregate,
                } => {
                    let text = match target {
                        InstructionTarget::Response => final_response(response),
                        InstructionTarget::Reasoning => reasoning_trace(prompt, response),
                    };
                    match (constraints(gold, prompt), text) {
                        (Ok(cs), Some(text)) if !cs.is_empty() => {
                            let followed = cs
                                .iter()
                                .filter(|i| match mode {
                                    InstructionMode::Strict => i.follows(text),
                                    InstructionMode::Loose => i.follows_loose(text),
                                })
                                .count();
                            match aggregate {
                                InstructionAggregate::Mean => followed as f64 / cs.len() as f64,
                                InstructionAggregate::All => {
                                    f64::from(u8::from(followed == cs.len()))
                                }
                            }
                        }
                        _ => 0.0,
                    }
                }
                Kind::Code(check) => {
                    let s = check.score(response, gold);
                    no_answer |= s.no_program;
                    logs.extend(s.logs(&c.name));
                    s.value
                }
            };
            reward += c.weight * value;
            components.insert(c.name.clone(), value);
        }
        Scored {
            result: RewardResult {
                reward,
                components,
                answer,
                timed_out: false,
                flags,
                logs,
            },
            verdict,
            no_answer,
            no_gold: false,
        }
    }
}

/// The constraints an item's gold holds (see [`ComponentSpec::Instructions`]).
pub fn constraints(gold: &str, prompt: &str) -> Result<Vec<Instruction>, String> {
    let v: serde_json::Value =
        serde_json::from_str(gold).map_err(|e| format!("constraints are not JSON: {e}"))?;
    let empty = serde_json::Map::new();
    match &v {
        serde_json::Value::Object(o) => {
            let ids = o
                .get("instruction_id_list")
                .and_then(|v| v.as_array())
                .ok_or("constraints: no instruction_id_list")?;
            let kwargs = o.get("kwargs").and_then(|v| v.as_array());
            ids.iter()
                .enumerate()
                .map(|(i, id)| {
                    let id = id.as_str().ok_or("constraints: an id is not a string")?;
                    let kw = kwargs
                        .and_then(|k| k.get(i))
                        .and_then(|k| k.as_object())
                        .unwrap_or(&empty);
                    Instruction::parse(id, kw, prompt)
                })
                .collect()
        }
        serde_json::Value::Array(list) => list
            .iter()
            .map(|c| {
                let o = c
                    .as_object()
                    .ok_or("constraints: an entry is not an object")?;
                let id = o
                    .get("id")
                    .and_then(|v| v.as_str())
                    .ok_or("constraints: an entry has no string `id`")?;
                Instruction::parse(id, o, prompt)
            })
            .collect(),
        _ => Err("constraints must be an object or a list".into()),
    }
}

/// The final response: the text after the last `</think>`, or all of it.
fn final_response(response: &str) -> Option<&str> {
    Some(match response.rfind("</think>") {
        Some(i) => &response[i + "</think>".len()..],
        None => response,
    })
}

/// The reasoning trace: the text inside `<think>…</think>` (or before `</think>` when the
/// prompt opened the block); `None` without one.
fn reasoning_trace<'a>(prompt: &str, response: &'a str) -> Option<&'a str> {
    let close = response.find("</think>")?;
    let before = &response[..close];
    match before.find("<think>") {
        Some(open) => Some(&before[open + "<think>".len()..]),
        None if prompt.trim_end().ends_with("<think>") => Some(before),
        None => None,
    }
}

/// A step delimiter by name: `blank-line`, `step-label`, `line`.
pub fn parse_delimiter(s: &str) -> Result<StepSplitter, String> {
    match s.trim().to_ascii_lowercase().replace('_', "-").as_str() {
        "blank-line" | "blank" | "paragraph" => Ok(StepSplitter::new(Delimiter::BlankLine)),
        "step-label" | "step" => Ok(StepSplitter::new(Delimiter::StepLabel)),
        "line" | "newline" => Ok(StepSplitter::new(Delimiter::Line)),
        other => Err(format!(
            "unknown step delimiter '{other}' (expected blank-line, step-label or line)"
        )),
    }
}

/// Parses a component's extraction rules (at least one).
fn parse_extract(origin: &str, what: &str, rules: &[String]) -> Result<Vec<Extract>, ConfigError> {
    let extract = rules
        .iter()
        .map(|e| Extract::parse(e))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ConfigError::Invalid(format!("{origin}: {e}")))?;
    if extract.is_empty() {
        return Err(ConfigError::Invalid(format!(
            "{origin}: {what} needs at least one extraction rule"
        )));
    }
    Ok(extract)
}

/// Errors unless every parameter of `what` is finite.
fn finite(origin: &str, what: &str, values: &[f64]) -> Result<(), ConfigError> {
    if values.iter().all(|v| v.is_finite()) {
        Ok(())
    } else {
        Err(ConfigError::Invalid(format!(
            "{origin}: the parameters of {what} must be finite"
        )))
    }
}

/// Names the server adds to `extra_logs`; components may not use them.
pub const RESERVED: [&str; 6] = [
    "timed_out",
    "no_gold",
    "prompt_mismatch",
    "no_answer",
    "undecided",
    "reward",
];

fn merge_verdict(prev: Option<Verdict>, v: Verdict) -> Verdict {
    match (prev, v) {
        (Some(Verdict::Undecided), _) | (_, Verdict::Undecided) => Verdict::Undecided,
        (Some(Verdict::NotEqual), _) => Verdict::NotEqual,
        _ => v,
    }
}

/// Verifies `pred` against `gold` within the length bound. A gold answer given as a
/// whole solution is reduced to its `\boxed{}` or `####` answer first.
pub fn check(gold: &str, pred: &str, opts: &Options, limits: &Limits) -> Verdict {
    let gold = gold_answer(gold);
    if pred.len() > limits.max_answer_bytes || gold.len() > limits.max_answer_bytes {
        return Verdict::Undecided;
    }
    stepwise_verify::verify(gold, pred, opts)
}

/// The answer inside a gold label: its last `\boxed{}`, else the text after `####`, else all of it.
pub fn gold_answer(gold: &str) -> &str {
    if let Some(r) = find_boxed(gold) {
        return gold[r].trim();
    }
    if let Some(pos) = gold.rfind("####") {
        return gold[pos + 4..].trim();
    }
    gold.trim()
}

/// The first answer any rule finds, in rule order.
pub fn extract_answer(text: &str, rules: &[Extract]) -> Option<String> {
    find_answer(text, rules).map(|f| f.text)
}

/// An answer found in a response.
#[derive(Clone)]
struct Found {
    text: String,
    /// The clause around it denies it (`not \boxed{72}`, `The answer is not 72`).
    negated: bool,
}

/// [`extract_answer`], with whether the answer is negated where it was found. The
/// `last-number` rule follows the verifier's one rule for numbers in text
/// ([`stepwise_verify::extract::prose_number`]): prose only, standing alone, not denied;
/// a formula (`((…3…))+0*(5)`) states no last number.
fn find_answer(text: &str, rules: &[Extract]) -> Option<Found> {
    rules.iter().find_map(|r| match r {
        Extract::AnswerTag => answer_tag(text).map(|text| Found {
            text,
            negated: false,
        }),
        Extract::Rule(ExtractRule::LastNumber) => {
            stepwise_verify::extract::prose_number(text).map(|text| Found {
                text,
                negated: false,
            })
        }
        Extract::Rule(rule) => {
            let e = AnswerExtractor::new(vec![*rule]).extract(text)?;
            let negated = stepwise_verify::extract::negated_near(text, e.span.start, e.span.end);
            let text = if *rule == ExtractRule::Gsm8k {
                clean_number(&e.text)
            } else {
                e.text
            };
            Some(Found { text, negated })
        }
    })
}

/// The raw content of the last `<answer>…</answer>`.
fn answer_tag_text(text: &str) -> Option<&str> {
    let open = text.rfind("<answer>")?;
    let start = open + "<answer>".len();
    let close = text[start..].find("</answer>")? + start;
    Some(&text[start..close])
}

/// The content of the last `<answer>…</answer>`, or the `\boxed{}` inside it.
fn answer_tag(text: &str) -> Option<String> {
    let open = text.rfind("<answer>")?;
    let inner_start = open + "<answer>".len();
    let close = text[inner_start..].find("</answer>")? + inner_start;
    let inner = &text[inner_start..close];
    let ans = match find_boxed(inner) {
        Some(r) => &inner[r],
        None => inner
            .trim()
            .trim_start_matches("$")
            .trim_end_matches("$")
            .trim(),
    };
    (!ans.trim().is_empty()).then(|| ans.trim().to_string())
}

/// `$1,234.` → `1234`: the GSM8K answer convention.
fn clean_number(s: &str) -> String {
    let s = s.trim().trim_start_matches('$').trim_end_matches('.');
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    for (i, ch) in s.char_indices() {
        let between_digits =
            i > 0 && b[i - 1].is_ascii_digit() && b.get(i + 1).is_some_and(u8::is_ascii_digit);
        if ch == ',' && between_digits {
            continue;
        }
        out.push(ch);
    }
    out.trim().to_string()
}

/// Whether a response has the required shape.
pub fn format_ok(prompt: &str, response: &str, think: bool, answer: AnswerForm) -> bool {
    let r = response.trim();
    let after = if think {
        let opens = r.matches("<think>").count();
        let Some(close) = r.find("</think>") else {
            return false;
        };
        if r.matches("</think>").count() != 1 {
            return false;
        }
        let opened_here = r.starts_with("<think>") && opens == 1;
        let prefilled = opens == 0 && prompt.trim_end().ends_with("<think>");
        if !(opened_here || prefilled) {
            return false;
        }
        &r[close + "</think>".len()..]
    } else {
        r
    };
    let boxed = || after.contains("\\boxed{");
    let tag = || {
        after
            .find("<answer>")
            .is_some_and(|i| after[i..].contains("</answer>"))
    };
    match answer {
        AnswerForm::BoxedOrAnswerTag => boxed() || tag(),
        AnswerForm::Boxed => boxed(),
        AnswerForm::AnswerTag => tag(),
        AnswerForm::Gsm8k => after.lines().any(|l| {
            l.trim()
                .strip_prefix("####")
                .is_some_and(|n| is_number(&clean_number(n)))
        }),
        AnswerForm::Any => true,
    }
}

fn is_number(s: &str) -> bool {
    let s = s.strip_prefix('-').unwrap_or(s);
    !s.is_empty()
        && s.chars().any(|c| c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == '/')
}

/// DAPO's soft overlong punishment (Yu et al., 2025, "DAPO", arXiv:2503.14476): the one
/// soft overlong shaping of the crate (the cosine component has only a hard penalty).
pub fn length_penalty(response: &str, max_len: usize, buffer: usize, unit: LengthUnit) -> f64 {
    let len = length_in(response, unit);
    let soft = max_len - buffer;
    if len <= soft {
        0.0
    } else if len <= max_len {
        (soft as f64 - len as f64) / buffer as f64
    } else {
        -1.0
    }
}

/// The option letter a response chose: from `\boxed{}`, "final answer"/"answer is"
/// phrases or an `Answer:` line, else the last `(X)`, else a response that is a lone letter.
pub fn choice_letter(response: &str, letters: &[char]) -> Option<char> {
    let rules = [
        ExtractRule::Boxed,
        ExtractRule::FinalAnswer,
        ExtractRule::AnswerIs,
    ];
    for rule in rules {
        if let Some(e) = AnswerExtractor::new(vec![rule]).extract(response)
            && let Some(c) = parse_letter(&e.text, letters)
        {
            return Some(c);
        }
    }
    if let Some(c) = last_parenthesised(response, letters) {
        return Some(c);
    }
    let t = response.trim();
    (t.chars().count() == 1)
        .then(|| parse_letter(t, letters))
        .flatten()
}

fn last_parenthesised(text: &str, letters: &[char]) -> Option<char> {
    let chars: Vec<char> = text.chars().collect();
    (0..chars.len().saturating_sub(2))
        .rev()
        .find(|&i| chars[i] == '(' && chars[i + 2] == ')' && letters.contains(&chars[i + 1]))
        .map(|i| chars[i + 1])
}

/// A leading option letter in `s`: `B`, `(B)`, `B.`, `B) text`, `\text{B}`, `**B**`.
pub fn parse_letter(s: &str, letters: &[char]) -> Option<char> {
    let mut t = s.trim();
    for _ in 0..4 {
        let before = t;
        t = t.trim_start_matches(['(', '*', '$', '[', ' ']);
        if let Some(rest) = t
            .strip_prefix("\\text{")
            .or_else(|| t.strip_prefix("\\mathrm{"))
        {
            t = rest;
        }
        if t == before {
            break;
        }
    }
    let mut it = t.chars();
    let c = it.next()?.to_ascii_uppercase();
    let next = it.next();
    (letters.contains(&c) && next.is_none_or(|n| !n.is_alphanumeric())).then_some(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RewardConfig;
    use proptest::prelude::*;

    fn r1() -> RewardFn {
        RewardFn::build("t", &RewardSpec::default()).unwrap()
    }

    fn from(toml: &str) -> RewardFn {
        let cfg = RewardConfig::from_toml(toml, "t").unwrap();
        RewardFn::build("t", &cfg.reward).unwrap()
    }

    #[test]
    fn r1_accuracy_and_format() {
        let f = r1();
        let l = Limits::default();
        let s = f.score("Q", "<think>think</think>So \\boxed{7}", "7", &l);
        assert_eq!((s.result.reward, s.verdict), (2.0, Some(Verdict::Equal)));
        assert_eq!(s.result.answer.as_deref(), Some("7"));
        // wrong answer, good format
        let s = f.score("Q", "<think>x</think>\\boxed{8}", "7", &l);
        assert_eq!(s.result.reward, 1.0);
        assert_eq!(s.result.components["accuracy"], 0.0);
        // right answer, no think block
        let s = f.score("Q", "So \\boxed{7}", "7", &l);
        assert_eq!(s.result.components["format"], 0.0);
        assert_eq!(s.result.reward, 1.0);
        // <answer> tags count for both
        let s = f.score("Q", "<think>x</think><answer>7</answer>", "7", &l);
        assert_eq!(s.result.reward, 2.0);
        // no answer at all
        let s = f.score("Q", "<think>x</think>I give up", "7", &l);
        assert!(s.no_answer);
        assert_eq!(s.result.reward, 0.0);
        // gold given as a solution
        let s = f.score("Q", "<think>x</think>\\boxed{7}", "so \\boxed{7}", &l);
        assert_eq!(s.result.components["accuracy"], 1.0);
    }

    #[test]
    fn think_prefilled_by_the_prompt() {
        assert!(format_ok(
            "<|Assistant|><think>\n",
            "reasoning</think>\\boxed{1}",
            true,
            AnswerForm::Boxed
        ));
        assert!(!format_ok(
            "<|Assistant|>",
            "reasoning</think>\\boxed{1}",
            true,
            AnswerForm::Boxed
        ));
        assert!(!format_ok(
            "",
            "<think>a</think><think>b</think>\\boxed{1}",
            true,
            AnswerForm::Boxed
        ));
        assert!(!format_ok(
            "",
            "<think>a</think>no answer",
            true,
            AnswerForm::BoxedOrAnswerTag
        ));
        assert!(!format_ok(
            "",
            "\\boxed{1}<think>a</think>",
            true,
            AnswerForm::Boxed
        ));
    }

    #[test]
    fn task_presets() {
        let kk = from("[reward]\npreset = \"knights-knaves\"");
        let gold = "Zoey is a knight, Oliver is a knave";
        let l = Limits::default();
        assert_eq!(
            kk.score(
                "",
                "The answer is: Zoey is a knight, Oliver is a knave.",
                gold,
                &l
            )
            .result
            .reward,
            1.0
        );
        assert_eq!(
            kk.score(
                "",
                "The answer is: Zoey is a knave, Oliver is a knave.",
                gold,
                &l
            )
            .result
            .reward,
            0.0
        );
        let m = from("[reward]\npreset = \"masked-span\"");
        assert_eq!(
            m.score("", "The answer is the Eiffel Tower.", "Eiffel Tower", &l)
                .result
                .reward,
            1.0
        );
        let h = from("[reward]\npreset = \"h1\"");
        assert_eq!(
            h.score("", "so 15.\n\nThe answer is 15.", "15", &l)
                .result
                .reward,
            1.0
        );
    }

    #[test]
    fn gsm8k_preset() {
        let f = from("[reward]\npreset = \"gsm8k\"");
        let l = Limits::default();
        let s = f.score("", "3 * 4 = 12\n#### 1,200", "1200", &l);
        assert_eq!(s.result.components["accuracy"], 1.0);
        assert_eq!(s.result.components["format"], 1.0);
        assert_eq!(s.result.reward, 1.0); // format has weight 0
        let s = f.score("", "The answer is 1200", "1200", &l);
        assert_eq!(s.result.reward, 0.0);
        assert!(s.no_answer);
        // label as a full GSM8K solution
        let s = f.score("", "#### 72", "48 + 24 = 72\n#### 72", &l);
        assert_eq!(s.result.reward, 1.0);
    }

    #[test]
    fn multiple_choice() {
        let f = from("[reward]\npreset = \"multiple-choice\"");
        let l = Limits::default();
        for (resp, gold, want) in [
            ("The answer is (B).", "B", 1.0),
            ("\\boxed{C}", "(C)", 1.0),
            ("I pick (A) ... no, (D)", "D", 1.0),
            ("Answer: b", "B. Paris", 1.0),
            ("The answer is (B).", "C", 0.0),
            ("Because of this", "B", 0.0),
            ("E", "E", 1.0),
        ] {
            assert_eq!(
                f.score("", resp, gold, &l).result.reward,
                want,
                "{resp} vs {gold}"
            );
        }
    }

    #[test]
    fn length_penalty_is_dapo_shaped() {
        let f = from("[[reward.components]]\nkind = \"length\"\nmax_len = 10\nbuffer = 4\n");
        let l = Limits::default();
        assert_eq!(f.score("", "123456", "", &l).result.reward, 0.0);
        assert_eq!(f.score("", "12345678", "", &l).result.reward, -0.5);
        assert_eq!(f.score("", "1234567890", "", &l).result.reward, -1.0);
        assert_eq!(f.score("", "12345678901", "", &l).result.reward, -1.0);
        assert_eq!(
            length_penalty("a b c d e f g h", 6, 2, LengthUnit::Words),
            -1.0
        );
    }

    #[test]
    fn weights_and_names() {
        let f = from(
            r#"
            [[reward.components]]
            kind = "accuracy"
            weight = 2.5
            [[reward.components]]
            kind = "accuracy"
            name = "acc_last_number"
            weight = 0.5
            extract = ["last-number"]
            "#,
        );
        let names: Vec<_> = f.component_names().collect();
        assert_eq!(names, ["accuracy", "acc_last_number"]);
        let s = f.score("", "\\boxed{3} and 4", "3", &Limits::default());
        assert_eq!(s.result.reward, 2.5);
        // The last-number rule reads prose (`\\boxed{4} and 3` is a formula, no prose).
        let s = f.score("", "\\boxed{4} and 3", "3", &Limits::default());
        assert_eq!(s.result.reward, 0.0);
        let s = f.score(
            "",
            "\\boxed{4}, so the total is 3 apples",
            "3",
            &Limits::default(),
        );
        assert_eq!(s.result.reward, 0.5);
    }

    #[test]
    fn long_answers_are_undecided_not_verified() {
        let long = "1+".repeat(5000) + "1";
        let s = r1().score(
            "",
            &format!("<think></think>\\boxed{{{long}}}"),
            "1",
            &Limits::default(),
        );
        assert_eq!(s.verdict, Some(Verdict::Undecided));
        assert_eq!(s.result.components["accuracy"], 0.0);
    }

    /// Issue #14: an answer the verifier cannot read whole earns no accuracy, only the
    /// format reward it would earn for any wrong answer, and is flagged undecided.
    #[test]
    fn unreadable_or_negated_answers_earn_no_accuracy() {
        let f = r1();
        let l = Limits::default();
        let bomb = "(".repeat(200) + "3" + &")".repeat(200) + "+0*(5)";
        let s = f.score("", &format!("<think>x</think>\\boxed{{{bomb}}}"), "5", &l);
        assert_eq!(s.verdict, Some(Verdict::Undecided));
        assert_eq!(s.result.components["accuracy"], 0.0);
        assert_eq!(s.result.reward, 1.0, "format only, as for a wrong answer");
        let wrong = f.score("", "<think>x</think>\\boxed{4}", "5", &l);
        assert_eq!(s.result.reward, wrong.result.reward);
        // A continued fraction too deep to parse, a huge matrix, `not 72`: never accuracy.
        let mut cf = String::from("1");
        for _ in 0..30 {
            cf = format!("1+\\frac{{1}}{{{cf}}}");
        }
        for (resp, gold) in [
            (format!("<think>x</think>\\boxed{{{cf}}}"), "1"),
            ("<think>x</think>not \\boxed{72}".to_string(), "72"),
            ("<think>x</think><answer>not 72</answer>".to_string(), "72"),
        ] {
            let s = f.score("", &resp, gold, &l);
            assert_eq!(s.result.components["accuracy"], 0.0, "{resp:.60}");
            assert_ne!(s.verdict, Some(Verdict::Equal), "{resp:.60}");
        }
        // The last-number rule reads prose, not formulas.
        let last =
            from("[[reward.components]]\nkind = \"accuracy\"\nextract = [\"last-number\"]\n");
        assert_eq!(last.score("", &bomb, "5", &l).result.reward, 0.0);
        assert_eq!(last.score("", "it is not 72", "72", &l).result.reward, 0.0);
        assert_eq!(
            last.score("", "so the total is 5 apples", "5", &l)
                .result
                .reward,
            1.0
        );
        // The right answer still earns both, whatever the reasoning denied before it.
        let s = f.score("", "<think>x</think>\\boxed{5}", "5", &l);
        assert_eq!(s.result.reward, 2.0);
        let s = f.score("", "<think>it is not obvious</think>\\boxed{5}", "5", &l);
        assert_eq!(s.result.reward, 2.0);
    }

    #[test]
    fn step_check_component() {
        let f = from(
            "[[reward.components]]\nkind = \"step_check\"\n[[reward.components]]\nkind = \"step_check\"\nname = \"step_mean\"\naggregation = \"mean\"",
        );
        let l = Limits::default();
        let good = f.score("", "3 + 4 = 7\n\n7 * 2 = 14\n\nSo \\boxed{14}", "14", &l);
        let bad = f.score("", "3 + 4 = 8\n\n8 * 2 = 16\n\nSo \\boxed{16}", "14", &l);
        assert!(good.result.components["step_check"] > bad.result.components["step_check"]);
        assert!(good.result.components["step_mean"] > bad.result.components["step_mean"]);
        assert_eq!(f.score("", "", "1", &l).result.reward, 0.0);
    }

    #[test]
    fn instruction_components_raif_and_reasoning() {
        let f = from(
            "[[reward.components]]\nkind = \"instructions\"\n[[reward.components]]\nkind = \"instructions\"\ntarget = \"reasoning\"\naggregate = \"all\"\nweight = 0.5\n",
        );
        let gold = r#"{"instruction_id_list": ["punctuation:no_comma", "length_constraints:number_words"], "kwargs": [{}, {"relation": "less than", "num_words": 5}]}"#;
        let l = Limits::default();
        // response: no comma (1) but 6 words (0) -> mean 0.5; reasoning: both -> all 1
        let s = f.score(
            "",
            "<think>short plan</think>one two three four five six",
            gold,
            &l,
        );
        assert_eq!(s.result.components["instructions"], 0.5);
        assert_eq!(s.result.components["reasoning_instructions"], 1.0);
        assert_eq!(s.result.reward, 0.5 + 0.5);
        // reasoning with a comma fails `all`; no think block: 0
        let s = f.score("", "<think>a, b</think>ok", gold, &l);
        assert_eq!(s.result.components["reasoning_instructions"], 0.0);
        assert_eq!(s.result.components["instructions"], 1.0);
        assert_eq!(
            f.score("", "ok", gold, &l).result.components["reasoning_instructions"],
            0.0
        );
        // the list form, and an unreadable gold
        let list = r#"[{"id": "startend:quotation"}]"#;
        assert_eq!(
            f.score("", "\"hi\"", list, &l).result.components["instructions"],
            1.0
        );
        assert_eq!(
            f.score("", "hi", "not json", &l).result.components["instructions"],
            0.0
        );
    }

    #[test]
    fn cosine_length_and_repetition_components() {
        let f = from(
            "[[reward.components]]\nkind = \"cosine_length\"\nmax_len = 40\n[[reward.components]]\nkind = \"repetition\"\nngram = 2\npenalty = 0.5\n",
        );
        let l = Limits::default();
        // 20 chars of 40, right: cos(π/2) = 0 → (2 + 1)/2; no word repeats.
        let right = "so it is \\boxed{12}.";
        assert_eq!(right.chars().count(), 20);
        let s = f.score("", right, "12", &l);
        assert_eq!(s.result.components["cosine_length"], 1.5);
        assert_eq!(s.result.components["repetition"], 0.0);
        assert_eq!(s.result.answer.as_deref(), Some("12"));
        // The same length, wrong: (−10 + 0)/2.
        let s = f.score("", right, "13", &l);
        assert_eq!(s.result.components["cosine_length"], -5.0);
        // Too long: the exceed penalty; "x y x y x y …" repeats: 3 unique bigrams of 20.
        let long = "x y ".repeat(10) + "\\boxed{12}";
        let s = f.score("", &long, "12", &l);
        assert_eq!(s.result.components["cosine_length"], -10.0);
        let want = -0.5 * (1.0 - 3.0 / 20.0);
        assert!((s.result.components["repetition"] - want).abs() < 1e-12);
        assert!((s.result.reward - (-10.0 + want)).abs() < 1e-12);
        for bad in [
            "[[reward.components]]\nkind = \"cosine_length\"\nmax_len = 0\n",
            "[[reward.components]]\nkind = \"repetition\"\nngram = 0\n",
            "[[reward.components]]\nkind = \"repetition\"\npenalty = -1.0\n",
        ] {
            let err = RewardConfig::from_toml(bad, "t").unwrap_err().to_string();
            assert!(
                err.starts_with("reward: ") && err.contains("needs"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn calibration_component_rlcr() {
        let f = from("[[reward.components]]\nkind = \"calibration\"\n");
        let l = Limits::default();
        let score = |resp: &str, gold: &str| f.score("", resp, gold, &l);
        // Right at 0.8: 1 − 0.04; wrong at 0.8: −0.64.
        let s = score("<answer>4</answer><confidence>0.8</confidence>", "4");
        assert!((s.result.components["calibration"] - 0.96).abs() < 1e-12);
        assert!(!s.result.flags["confidence_unparsed"]);
        let s = score("<think>hm</think>\\boxed{5}\nConfidence: 80%", "4");
        assert!((s.result.components["calibration"] + 0.64).abs() < 1e-12);
        // Abstention, no confidence stated: an answer at confidence 0 → 0; stated 0.3 → −0.09.
        let s = score("<answer>I don't know</answer>", "4");
        assert_eq!(s.result.components["calibration"], 0.0);
        assert!(!s.result.flags["confidence_unparsed"]);
        let s = score(
            "<answer>I don't know</answer><confidence>0.3</confidence>",
            "4",
        );
        assert!((s.result.components["calibration"] + 0.09).abs() < 1e-12);
        // Abstaining on an unanswerable question is right: 1 − (1 − 1)² at confidence 1.
        let s = score(
            "<answer>Unanswerable</answer><confidence>1</confidence>",
            "unanswerable",
        );
        assert_eq!(s.result.components["calibration"], 1.0);
        // An answer without a readable confidence: the penalty and the flag.
        for resp in [
            "<answer>4</answer>",
            "<answer>4</answer><confidence>very</confidence>",
        ] {
            let s = score(resp, "4");
            assert_eq!(s.result.components["calibration"], -1.0, "{resp}");
            assert!(s.result.flags["confidence_unparsed"], "{resp}");
        }
        let r = crate::Rewards::new(
            &RewardConfig::from_toml("[[reward.components]]\nkind = \"calibration\"\n", "t")
                .unwrap(),
        )
        .unwrap();
        assert_eq!(r.flag_keys(), ["confidence_unparsed"]);
        // A component may not take a flag's name.
        let clash = RewardConfig::from_toml(
            "[[reward.components]]\nkind = \"calibration\"\n[[reward.components]]\nkind = \"choice\"\nname = \"confidence_unparsed\"\n",
            "t",
        );
        assert!(clash.unwrap_err().to_string().contains("flag name"));
    }

    #[test]
    fn reason_rank_component() {
        let f = from("[[reward.components]]\nkind = \"reason_rank\"\n");
        let l = Limits::default();
        let gold = r#"{"ranking": [1, 2, 3], "relevant": [1, 2]}"#;
        // [2] > [3] > [1]: NDCG 1.5 / (1 + 1/log2 3), recall 1, RBO 0.5.
        let s = f.score(
            "",
            "<think>2 is best</think><answer>[2] > [3] > [1]</answer>",
            gold,
            &l,
        );
        let want = 1.5 / (1.0 + 1.0 / 3f64.log2()) + 0.2 + 0.05;
        assert!((s.result.reward - want).abs() < 1e-12, "{s:?}");
        assert!(!s.result.flags["ranking_unparsed"]);
        // Without answer tags the text after </think>; the gold as a plain ranking.
        let s = f.score("", "<think>x</think>[1] > [2] > [3]", "[1] > [2] > [3]", &l);
        assert!((s.result.reward - 1.3).abs() < 1e-12);
        // Not a ranking: −1 and the flag; a wrong set of ids: 0, no flag.
        let s = f.score("", "<answer>passage 2 first</answer>", gold, &l);
        assert_eq!(s.result.reward, -1.0);
        assert!(s.result.flags["ranking_unparsed"]);
        let s = f.score("", "<answer>[2] > [1]</answer>", gold, &l);
        assert_eq!(s.result.reward, 0.0);
        assert!(!s.result.flags["ranking_unparsed"]);
    }

    #[test]
    fn reason_flux_component() {
        let f = from(
            "[[reward.components]]\nkind = \"reason_flux\"\n[[reward.components]]\nkind = \"reason_flux\"\nname = \"flux_half\"\nalpha = 0.5\naggregation = \"mean\"\n",
        );
        let l = Limits::default();
        // Trajectory steps: right (1), wrong (0), no claim (0.5) → mean 0.5. Response
        // steps: right (1), no claim (0.5) → min 0.5, mean 0.75.
        let resp =
            "<think>3 + 4 = 7\n\n7 * 2 = 15\n\nhmm, let me see</think>3 + 4 = 7\n\nSo \\boxed{14}";
        let s = f.score("", resp, "14", &l);
        assert!(
            (s.result.components["reason_flux"] - (0.5 + 0.5)).abs() < 1e-12,
            "{s:?}"
        );
        assert!((s.result.components["flux_half"] - (0.5 + 0.5 * 0.75)).abs() < 1e-12);
        assert!(!s.result.flags["no_thinking"]);
        // No trajectory: 0 and the flag.
        let s = f.score("", "3 + 4 = 7", "7", &l);
        assert_eq!(s.result.components["reason_flux"], 0.0);
        assert!(s.result.flags["no_thinking"]);
    }

    #[test]
    fn shop_components() {
        let f = from(
            "[[reward.components]]\nkind = \"shop_action\"\n[[reward.components]]\nkind = \"self_certainty\"\nweight = 0.1\n",
        );
        let l = Limits::default();
        let gold = r#"{"type": "click", "name": "Add to cart"}"#;
        let resp = r#"<think>ok</think>{"rationale": "I like it", "action": {"type": "click", "name": "add to cart"}}"#;
        // Type 0.3 + name 0.2 + 0.5 · ROUGE-L 1 = 1.0; no logprobs: 0 and the flag.
        let s = f.score("", resp, gold, &l);
        assert!((s.result.components["shop_action"] - 1.0).abs() < 1e-12);
        assert!(s.result.flags["no_logprobs"] && !s.result.flags["action_unparsed"]);
        // With logprobs: one token (½, ¼, ¼), one uniform → half of ⅓[ln(2/3) + 2 ln(4/3)].
        let lp = vec![
            vec![0.5f64.ln(), 0.25f64.ln(), 0.25f64.ln()],
            vec![0.5f64.ln(); 2],
        ];
        let extras = ItemExtras {
            logprobs: Some(&lp),
        };
        let s = f.score_with("", resp, gold, &l, &extras);
        let sc = ((2.0f64 / 3.0).ln() + 2.0 * (4.0f64 / 3.0).ln()) / 6.0;
        assert!((s.result.components["self_certainty"] - sc).abs() < 1e-12);
        assert!((s.result.reward - (1.0 + 0.1 * sc)).abs() < 1e-12);
        assert!(!s.result.flags["no_logprobs"]);
        // No action object: 0 and the flag.
        let s = f.score("", "I would click it", gold, &l);
        assert_eq!(s.result.components["shop_action"], 0.0);
        assert!(s.result.flags["action_unparsed"]);
    }

    #[test]
    fn clean_numbers() {
        assert_eq!(clean_number(" $1,234."), "1234");
        assert_eq!(clean_number("a,b"), "a,b");
    }

    proptest! {
        #[test]
        fn scoring_never_panics(prompt in ".{0,40}", resp in ".{0,200}", gold in ".{0,20}") {
            let l = Limits::default();
            for f in [r1(), from("[reward]\npreset = \"gsm8k\""), from("[reward]\npreset = \"mc\"")] {
                let s = f.score(&prompt, &resp, &gold, &l);
                prop_assert!(s.result.reward.is_finite());
            }
        }

        #[test]
        fn latex_soup_never_panics(resp in r"[\\{}()<>/a-z0-9 ^_$#]{0,300}") {
            let s = r1().score("", &resp, "1", &Limits::default());
            prop_assert!(s.result.reward >= 0.0 && s.result.reward <= 2.0);
        }
    }
}
