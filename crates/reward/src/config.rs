//! Reward functions as configuration: [`RewardSpec`] (a preset or a list of
//! [`ComponentSpec`]s), the named presets, and [`RewardConfig`], the reward part of a
//! `rewards.toml` that `stepwise serve`, `stepwise reward` and the Python package read.
//!
//! ```toml
//! [reward]                     # the default reward function
//! preset = "deepseek-r1"       # or list components:
//! # [[reward.components]]
//! # kind = "accuracy"
//! # weight = 1.0
//! # extract = ["boxed", "answer-tag"]
//!
//! [sources."openai/gsm8k"]     # chosen by an item's data_source
//! preset = "gsm8k"
//! ```
//!
//! The file's `[server]` table belongs to the HTTP layer (`stepwise-serve` checks it);
//! here only its `max_answer_bytes`, a bound on scoring, is read.

use crate::Limits;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// A reward function: a preset or a list of components (not both).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RewardSpec {
    pub preset: Option<String>,
    #[serde(default)]
    pub components: Vec<ComponentSpec>,
}

/// One term of a reward: `weight × value`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ComponentSpec {
    /// 1 when the extracted answer verifies against the gold answer, else 0.
    Accuracy {
        #[serde(default)]
        name: Option<String>,
        #[serde(default = "one")]
        weight: f64,
        /// Extraction rules tried in order: `boxed`, `answer-tag`, `gsm8k`,
        /// `final-answer`, `answer-is`, `last-number`.
        #[serde(default = "default_extract")]
        extract: Vec<String>,
        /// Verifier options (math-verify's `float_rounding` and `strict`).
        #[serde(default)]
        float_rounding: Option<u32>,
        #[serde(default)]
        strict: Option<bool>,
    },
    /// 1 when the response has the required shape, else 0.
    Format {
        #[serde(default)]
        name: Option<String>,
        #[serde(default = "one")]
        weight: f64,
        /// Require exactly one `<think>…</think>` block before the answer
        /// (`<think>` may end the prompt instead, as in R1 chat templates).
        #[serde(default = "yes")]
        think: bool,
        /// Required answer form after the thinking.
        #[serde(default)]
        answer: AnswerForm,
    },
    /// DAPO-style soft overlong penalty in [-1, 0]: 0 up to `max_len - buffer`,
    /// then linear down to -1 at `max_len`, -1 beyond.
    Length {
        #[serde(default)]
        name: Option<String>,
        #[serde(default = "one")]
        weight: f64,
        max_len: usize,
        buffer: usize,
        #[serde(default)]
        unit: LengthUnit,
    },
    /// The aggregated score of the arithmetic step checker (stepwise-score's `arith`
    /// scorer) over the response's steps, in [0, 1]; 0 for an empty response.
    StepCheck {
        #[serde(default)]
        name: Option<String>,
        #[serde(default = "one")]
        weight: f64,
        /// `min` (default), `last`, `prod` or `mean`.
        #[serde(default = "default_aggregation")]
        aggregation: String,
        /// `blank-line` (default), `step-label` or `line`.
        #[serde(default = "default_delimiter")]
        delimiter: String,
    },
    /// The exact verifier of a generated task (`stepwise data gen`): `knights-knaves`
    /// (every inhabitant's role right) or `masked-span` (normalized match), in [0, 1].
    Task {
        #[serde(default)]
        name: Option<String>,
        #[serde(default = "one")]
        weight: f64,
        task: String,
    },
    /// 1 when the chosen option letter equals the gold letter, else 0.
    Choice {
        #[serde(default)]
        name: Option<String>,
        #[serde(default = "one")]
        weight: f64,
        /// Allowed option letters.
        #[serde(default = "default_letters")]
        letters: String,
    },
    /// Verifiable instruction constraints (IFEval's instructions; RAIF on the response,
    /// ReasonIF on the reasoning trace), in [0, 1]. The item's gold holds the prompt's
    /// constraints as JSON: `{"instruction_id_list": [...], "kwargs": [{...}, ...]}` (the
    /// IFEval form) or a list `[{"id": "punctuation:no_comma"}, {"id": "...", "k": v}]`.
    /// 0 when the gold holds none or cannot be read.
    Instructions {
        #[serde(default)]
        name: Option<String>,
        #[serde(default = "one")]
        weight: f64,
        /// `response` (RAIF: the text after `</think>`, or all of it without one) or
        /// `reasoning` (ReasonIF: the text inside `<think>…</think>`).
        #[serde(default)]
        target: InstructionTarget,
        /// IFEval's `strict` (default) or `loose` verdicts.
        #[serde(default)]
        mode: InstructionMode,
        /// `mean` (default: the share of constraints followed) or `all` (1 only when every
        /// constraint is followed, IFEval's prompt-level verdict).
        #[serde(default)]
        aggregate: InstructionAggregate,
    },
    /// Cosine-scaled length reward (Yeo et al., 2025, "Demystifying Long
    /// Chain-of-Thought Reasoning in LLMs"; `stepwise_reward::shaping`): the answer's
    /// correctness picks a cosine schedule over `length / max_len`, from `r0_*` at length
    /// 0 to `rl_*` at `max_len`; `exceed` at or past `max_len`. Defaults are the paper's.
    CosineLength {
        #[serde(default)]
        name: Option<String>,
        #[serde(default = "one")]
        weight: f64,
        max_len: usize,
        #[serde(default = "two")]
        r0_correct: f64,
        #[serde(default = "one")]
        rl_correct: f64,
        #[serde(default = "minus_ten")]
        r0_wrong: f64,
        #[serde(default)]
        rl_wrong: f64,
        #[serde(default = "minus_ten")]
        exceed: f64,
        #[serde(default)]
        unit: LengthUnit,
        /// How the answer whose correctness picks the schedule is found.
        #[serde(default = "default_extract")]
        extract: Vec<String>,
    },
    /// N-gram repetition penalty (the same paper; TRL / open-r1's
    /// `repetition_penalty_reward`): `−penalty × (share of repeated word n-grams)`.
    Repetition {
        #[serde(default)]
        name: Option<String>,
        #[serde(default = "one")]
        weight: f64,
        /// n, in words (the paper: 40 tokens).
        #[serde(default = "forty")]
        ngram: usize,
        /// p ≥ 0: a response of nothing but repeats scores −p.
        #[serde(default = "one")]
        penalty: f64,
    },
    /// RLCR's calibration reward (Damani et al., 2025; `stepwise_reward::calibration`):
    /// `c − (q − c)²` for correctness `c` and the stated confidence `q`
    /// (`<confidence>0.8</confidence>`, "Confidence: 80%"); an abstention is an answer at
    /// confidence 0 unless one is stated; no readable confidence scores `unparsed` and
    /// raises the `confidence_unparsed` flag.
    Calibration {
        #[serde(default)]
        name: Option<String>,
        #[serde(default = "one")]
        weight: f64,
        #[serde(default = "default_extract")]
        extract: Vec<String>,
        #[serde(default = "minus_one")]
        unparsed: f64,
    },
    /// ReasonRank's multi-view ranking reward (Liu et al., 2025;
    /// `stepwise_reward::ranking`) for a listwise answer `[3] > [1] > [2]` (in
    /// `<answer>…</answer>`, else after `</think>`): `NDCG@10 + φ·Recall@10 + γ·RBO` against
    /// the gold ranking; not a ranking: `unparsed` and the `ranking_unparsed` flag; not a
    /// permutation of the gold's identifiers: 0.
    ReasonRank {
        #[serde(default)]
        name: Option<String>,
        #[serde(default = "one")]
        weight: f64,
        #[serde(default = "ten")]
        ndcg_k: usize,
        #[serde(default = "ten")]
        recall_k: usize,
        #[serde(default = "default_phi")]
        phi: f64,
        #[serde(default = "default_gamma")]
        gamma: f64,
        #[serde(default = "one")]
        rbo_p: f64,
        /// Without `relevant` in the gold, its first this many identifiers are relevant.
        #[serde(default = "ten")]
        relevant_top: usize,
        #[serde(default = "minus_one")]
        unparsed: f64,
    },
    /// ReasonFlux-PRM's trajectory-aware reward (Zou et al., 2025;
    /// `stepwise_reward::reasonflux`): `mean_t r_t + α · r_final` over the steps of the
    /// `<think>` trajectory and the final response, the arithmetic step checker scoring
    /// both; no trajectory: 0 and the `no_thinking` flag.
    ReasonFlux {
        #[serde(default)]
        name: Option<String>,
        #[serde(default = "one")]
        weight: f64,
        /// α, the weight of the trajectory-level score.
        #[serde(default = "one")]
        alpha: f64,
        /// How the final response's step scores make the trajectory-level score.
        #[serde(default = "default_aggregation")]
        aggregation: String,
        /// `blank-line` (default), `step-label` or `line`.
        #[serde(default = "default_delimiter")]
        delimiter: String,
    },
    /// Shop-R1's hierarchical action reward (Zhang et al., 2025; `stepwise_reward::shop`):
    /// the action type, then each gold attribute's presence and value (ROUGE-L); the gold
    /// is the action as JSON. An answer with no action object: 0 and `action_unparsed`.
    ShopAction {
        #[serde(default)]
        name: Option<String>,
        #[serde(default = "one")]
        weight: f64,
        #[serde(default = "default_type_weight")]
        type_weight: f64,
        #[serde(default = "default_attribute_weight")]
        attribute_weight: f64,
        #[serde(default = "default_value_weight")]
        value_weight: f64,
    },
    /// Self-certainty of the rationale (Kang et al., 2025, as Shop-R1 uses it;
    /// `stepwise_reward::shop`): the mean `KL(U ‖ p)` over the top-k log-probabilities
    /// the item carries (`logprobs`); none: 0 and the `no_logprobs` flag.
    SelfCertainty {
        #[serde(default)]
        name: Option<String>,
        #[serde(default = "one")]
        weight: f64,
    },
    /// A model-backed component (`stepwise_reward::model`): any scorer spec (`judge`,
    /// `self-judge`, `prm:URL`, `head:PATH`, `rollout`, products `arith*judge`) scoring the
    /// whole response (`as = "outcome"`) or its steps, aggregated (`as = "steps"`), in
    /// [0, 1]. Needs the models the server or `stepwise reward` opened (`--model`,
    /// `--judge-endpoint`); its token cost goes to the item's logs (`NAME.prompt_tokens`,
    /// `NAME.generated_tokens`, `NAME.calls`). Default name: the spec without arguments.
    Scorer {
        #[serde(default)]
        name: Option<String>,
        #[serde(default = "one")]
        weight: f64,
        spec: String,
        #[serde(default, rename = "as")]
        score_as: crate::model::ScoreAs,
        /// `min` (default), `last`, `prod` or `mean` (with `as = "steps"`).
        #[serde(default = "default_aggregation")]
        aggregation: String,
        /// `blank-line` (default), `step-label` or `line` (with `as = "steps"`).
        #[serde(default = "default_delimiter")]
        delimiter: String,
    },
    /// Runs the response's last fenced Python block against the item's test cases in the
    /// sandbox (verl's sandbox-fusion reward; formats in `stepwise_reward::code`), in [0, 1]:
    /// the share of cases passed (`mode = "fraction"`) or 1 only when all pass (`"all"`).
    Code {
        #[serde(default)]
        name: Option<String>,
        #[serde(default = "one")]
        weight: f64,
        #[serde(default)]
        mode: crate::code::CodeMode,
        /// CPU seconds per case.
        #[serde(default = "default_code_cpu")]
        cpu_secs: u64,
        /// Wall-clock milliseconds per case.
        #[serde(default = "default_code_wall")]
        wall_ms: u64,
        /// Address space per case, in MiB.
        #[serde(default = "default_code_memory")]
        memory_mb: u64,
        /// Items with more cases score 0 (`bad_cases` in the logs).
        #[serde(default = "default_code_cases")]
        max_cases: usize,
    },
}

fn default_type_weight() -> f64 {
    0.3
}
fn default_attribute_weight() -> f64 {
    0.2
}
fn default_value_weight() -> f64 {
    0.5
}

fn ten() -> usize {
    10
}
fn default_phi() -> f64 {
    0.2
}
fn default_gamma() -> f64 {
    0.1
}

fn minus_one() -> f64 {
    -1.0
}
fn two() -> f64 {
    2.0
}
fn minus_ten() -> f64 {
    -10.0
}
fn forty() -> usize {
    40
}

fn default_code_cpu() -> u64 {
    2
}
fn default_code_wall() -> u64 {
    4000
}
fn default_code_memory() -> u64 {
    512
}
fn default_code_cases() -> usize {
    64
}

fn one() -> f64 {
    1.0
}
fn yes() -> bool {
    true
}
fn default_extract() -> Vec<String> {
    vec!["boxed".into(), "answer-tag".into()]
}
fn default_aggregation() -> String {
    "min".into()
}
fn default_delimiter() -> String {
    "blank-line".into()
}
fn default_letters() -> String {
    "ABCDEFGHIJ".into()
}

/// The answer form a format component requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerForm {
    /// `\boxed{…}` or `<answer>…</answer>`.
    #[default]
    BoxedOrAnswerTag,
    Boxed,
    AnswerTag,
    /// A line `#### <number>`.
    Gsm8k,
    /// No answer form required (only the thinking block).
    Any,
}

/// The group components (`[[group.components]]`), added to the item reward of each
/// response of a group by `/v1/group_rewards` and `Rewards::score_group`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    #[serde(default)]
    pub components: Vec<GroupComponentSpec>,
}

/// One group component (see `stepwise_reward::group` for the formulas).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum GroupComponentSpec {
    /// EMPO: the share of the group in the response's cluster of equivalent answers.
    Empo {
        #[serde(default)]
        name: Option<String>,
        #[serde(default = "one")]
        weight: f64,
        #[serde(default = "default_extract")]
        extract: Vec<String>,
    },
    /// Trust-GRPO (SophiaVL-R1): the trust-weighted, time-annealed thinking reward.
    TrustGrpo {
        #[serde(default)]
        name: Option<String>,
        #[serde(default = "one")]
        weight: f64,
        /// The item component that says a response is correct (value 1).
        #[serde(default = "default_outcome")]
        outcome: String,
        /// α, the thinking term's weight.
        #[serde(default = "default_alpha")]
        alpha: f64,
        /// T, the total training steps of the annealing `e^(−step/T)` (0: no annealing;
        /// a request's `total_steps` overrides it).
        #[serde(default)]
        total_steps: u64,
        /// How the step checker's step scores make the thinking reward (`min`, `mean`, …).
        #[serde(default = "default_aggregation")]
        aggregation: String,
    },
    /// Difficulty-aware scaling of an item component by the group's failure rate.
    Difficulty {
        #[serde(default)]
        name: Option<String>,
        #[serde(default = "one")]
        weight: f64,
        #[serde(default = "default_outcome")]
        component: String,
        /// β: `value × (1 + β × difficulty)`.
        #[serde(default = "one")]
        beta: f64,
    },
}

fn default_outcome() -> String {
    "accuracy".into()
}
fn default_alpha() -> f64 {
    0.3
}

/// The text an instructions component checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstructionTarget {
    /// The final response (RAIF).
    #[default]
    Response,
    /// The reasoning trace (ReasonIF).
    Reasoning,
}

/// IFEval's two verdicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstructionMode {
    #[default]
    Strict,
    Loose,
}

/// How an instructions component combines the verdicts of one item's constraints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstructionAggregate {
    /// The share followed.
    #[default]
    Mean,
    /// 1 when all are followed, else 0.
    All,
}

/// What the length penalty counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LengthUnit {
    /// Unicode characters.
    #[default]
    Chars,
    /// Whitespace-separated words (a rough token count).
    Words,
}

/// Errors in a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("parsing {path}")]
    Parse {
        path: String,
        source: Box<toml::de::Error>,
    },
    #[error("{0}")]
    Invalid(String),
}

/// The preset names `--preset` accepts.
pub const PRESETS: [&str; 7] = [
    "deepseek-r1",
    "gsm8k",
    "multiple-choice",
    "knights-knaves",
    "masked-span",
    "h1",
    "noisy-rationales",
];

/// The components of a named preset.
///
/// - `deepseek-r1`: accuracy (last `\boxed{}` or `<answer>` verified, weight 1) +
///   format (`<think>…</think>` then `\boxed{}` or `<answer>…</answer>`, weight 1).
/// - `gsm8k`: accuracy of the number after `####` (weight 1) + format `#### n` (weight 0, logged only).
/// - `multiple-choice`: the chosen option letter (weight 1).
/// - `knights-knaves`, `masked-span`: the task's exact verifier (weight 1).
/// - `h1`, `noisy-rationales`: accuracy of the number after "The answer is" (else the
///   last number) against the chain's / test question's gold (weight 1).
pub fn preset(name: &str) -> Result<Vec<ComponentSpec>, ConfigError> {
    let norm = name.trim().to_ascii_lowercase().replace('_', "-");
    Ok(match norm.as_str() {
        "deepseek-r1" | "r1" => vec![
            ComponentSpec::Accuracy {
                name: None,
                weight: 1.0,
                extract: default_extract(),
                float_rounding: None,
                strict: None,
            },
            ComponentSpec::Format {
                name: None,
                weight: 1.0,
                think: true,
                answer: AnswerForm::BoxedOrAnswerTag,
            },
        ],
        "gsm8k" => vec![
            ComponentSpec::Accuracy {
                name: None,
                weight: 1.0,
                extract: vec!["gsm8k".into()],
                float_rounding: None,
                strict: None,
            },
            ComponentSpec::Format {
                name: None,
                weight: 0.0,
                think: false,
                answer: AnswerForm::Gsm8k,
            },
        ],
        "knights-knaves" | "knights" | "masked-span" => vec![ComponentSpec::Task {
            name: None,
            weight: 1.0,
            task: norm.clone(),
        }],
        "h1" | "noisy-rationales" | "noisy" => vec![ComponentSpec::Accuracy {
            name: None,
            weight: 1.0,
            extract: vec!["boxed".into(), "answer-is".into(), "last-number".into()],
            float_rounding: None,
            strict: None,
        }],
        "multiple-choice" | "mc" | "choice" => vec![ComponentSpec::Choice {
            name: None,
            weight: 1.0,
            letters: default_letters(),
        }],
        _ => {
            return Err(ConfigError::Invalid(format!(
                "unknown preset '{name}' (expected one of {})",
                PRESETS.join(", ")
            )));
        }
    })
}

impl RewardSpec {
    /// The spec of a named preset (checked when built).
    pub fn preset(name: &str) -> Self {
        Self {
            preset: Some(name.to_string()),
            components: vec![],
        }
    }

    /// The components this spec stands for, with `origin` naming it in errors.
    pub fn components(&self, origin: &str) -> Result<Vec<ComponentSpec>, ConfigError> {
        match (&self.preset, self.components.is_empty()) {
            (Some(p), true) => {
                preset(p).map_err(|e| ConfigError::Invalid(format!("{origin}: {e}")))
            }
            (Some(_), false) => Err(ConfigError::Invalid(format!(
                "{origin}: give either a preset or components, not both"
            ))),
            (None, false) => Ok(self.components.clone()),
            (None, true) => preset("deepseek-r1"),
        }
    }

    /// A short name for logs and `/health`.
    pub fn label(&self) -> String {
        match &self.preset {
            Some(p) => p.clone(),
            None if self.components.is_empty() => "deepseek-r1".into(),
            None => "custom".into(),
        }
    }
}

/// The reward part of a `rewards.toml`: the default function, the functions chosen by
/// `data_source`, and the scoring limits. Serializable, so a `stepwise reward` run stores
/// it as its config.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RewardConfig {
    /// The default reward function (preset `deepseek-r1` when absent).
    #[serde(default)]
    pub reward: RewardSpec,
    /// Reward functions selected by an item's `data_source`.
    #[serde(default)]
    pub sources: BTreeMap<String, RewardSpec>,
    /// Components over a whole group of responses.
    #[serde(default)]
    pub group: GroupSpec,
    #[serde(default)]
    pub limits: Limits,
}

/// The file as this crate reads it: `[server]` is the HTTP layer's, kept as a table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    server: toml::Table,
    #[serde(default)]
    reward: RewardSpec,
    #[serde(default)]
    sources: BTreeMap<String, RewardSpec>,
    #[serde(default)]
    group: GroupSpec,
}

/// Reads a configuration file's text, the error naming the path.
pub fn read_text(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// Parses TOML text into `T`, the error naming `origin`.
pub fn parse_toml<T: serde::de::DeserializeOwned>(
    text: &str,
    origin: &str,
) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|source| ConfigError::Parse {
        path: origin.to_string(),
        source: Box::new(source),
    })
}

impl RewardConfig {
    /// Reads a TOML file (the same file `stepwise serve --config` takes).
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        Self::from_toml(&read_text(path)?, &path.display().to_string())
    }

    /// Parses TOML text and checks that every reward function builds; `origin` names
    /// the text in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, ConfigError> {
        Self::from_toml_with_server(text, origin).map(|(cfg, _)| cfg)
    }

    /// [`RewardConfig::from_toml`], also handing back the file's `[server]` table (empty
    /// when absent) for the HTTP layer to read: `stepwise serve` parses one file with one
    /// reader, not a copy of this one.
    pub fn from_toml_with_server(
        text: &str,
        origin: &str,
    ) -> Result<(Self, toml::Table), ConfigError> {
        let file: File = parse_toml(text, origin)?;
        let mut limits = Limits::default();
        if let Some(v) = file.server.get("max_answer_bytes") {
            let n = v
                .as_integer()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| {
                    ConfigError::Invalid(format!(
                        "{origin}: server.max_answer_bytes must be a non-negative integer"
                    ))
                })?;
            limits.max_answer_bytes = n;
        }
        let cfg = Self {
            reward: file.reward,
            sources: file.sources,
            group: file.group,
            limits,
        };
        cfg.check()?;
        Ok((cfg, file.server))
    }

    /// A configuration whose default reward function is a preset.
    pub fn with_preset(name: &str) -> Result<Self, ConfigError> {
        preset(name)?;
        Ok(Self {
            reward: RewardSpec::preset(name),
            ..Self::default()
        })
    }

    /// Checks that every reward function builds (model-backed components are checked as
    /// configuration only: they are built when models are given, `Rewards::with_models`).
    pub fn check(&self) -> Result<(), ConfigError> {
        crate::Rewards::build(self, crate::Models::Unchecked).map(|_| ())
    }

    /// Whether any function has a model-backed component (`kind = "scorer"`).
    pub fn needs_models(&self) -> bool {
        std::iter::once(&self.reward)
            .chain(self.sources.values())
            .any(|r| {
                r.components
                    .iter()
                    .any(|c| matches!(c, ComponentSpec::Scorer { .. }))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_reward_part_and_the_answer_bound() {
        let cfg = RewardConfig::from_toml(
            r#"
            [server]
            deadline_ms = 500
            max_answer_bytes = 99

            [[reward.components]]
            kind = "accuracy"
            weight = 2.0
            extract = ["boxed", "last-number"]

            [sources.gsm8k]
            preset = "gsm8k"
            "#,
            "test",
        )
        .unwrap();
        assert_eq!(cfg.limits.max_answer_bytes, 99);
        assert_eq!(cfg.reward.components.len(), 1);
        assert_eq!(cfg.sources["gsm8k"].label(), "gsm8k");
    }

    #[test]
    fn rejects_bad_reward_configs_with_a_reason() {
        let cases = [
            ("[reward]\npreset = \"nope\"", "unknown preset"),
            ("[bogus]\nx = 1", "bogus"),
            ("[server]\nmax_answer_bytes = -1", "max_answer_bytes"),
            (
                "[reward]\npreset = \"gsm8k\"\n[[reward.components]]\nkind = \"choice\"",
                "not both",
            ),
            (
                "[[reward.components]]\nkind = \"accuracy\"\nextract = [\"telepathy\"]",
                "telepathy",
            ),
            (
                "[[reward.components]]\nkind = \"length\"\nmax_len = 10\nbuffer = 20",
                "buffer",
            ),
            (
                "[[reward.components]]\nkind = \"choice\"\n[[reward.components]]\nkind = \"choice\"",
                "twice",
            ),
            ("[sources.x]\npreset = \"nope\"", "sources.\"x\""),
        ];
        for (text, want) in cases {
            let err = stepwise_core::error_chain(&RewardConfig::from_toml(text, "t").unwrap_err());
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn example_config_in_clients_parses() {
        let cfg = RewardConfig::from_toml(
            include_str!("../../../clients/rewards.example.toml"),
            "clients/rewards.example.toml",
        )
        .unwrap();
        assert_eq!(cfg.reward.components.len(), 4);
        assert_eq!(cfg.sources.len(), 2);
        // the example shows group components (EMPO, Trust-GRPO) too
        assert!(matches!(
            cfg.group.components.first(),
            Some(GroupComponentSpec::Empo { .. })
        ));
        assert!(!cfg.needs_models());
        // and a model-backed one, commented out (it needs a model): uncommented, it parses
        let text = include_str!("../../../clients/rewards.example.toml");
        let (before, rest) = text.split_once("# --- model-backed\n").unwrap();
        let (block, after) = rest.split_once("# ---\n").unwrap();
        let block: String = block
            .lines()
            .map(|l| format!("{}\n", l.strip_prefix("# ").unwrap_or(l)))
            .collect();
        let cfg = RewardConfig::from_toml(&format!("{before}{block}{after}"), "t").unwrap();
        assert!(cfg.needs_models());
        assert!(matches!(
            cfg.reward.components.last(),
            Some(ComponentSpec::Scorer { spec, score_as: crate::model::ScoreAs::Steps, .. }) if spec == "judge"
        ));
    }

    #[test]
    fn presets_build() {
        for p in PRESETS {
            RewardConfig::with_preset(p).unwrap().check().unwrap();
        }
        assert!(RewardConfig::with_preset("nope").is_err());
    }
}
