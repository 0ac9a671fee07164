//! Automatic step labels for process reward models (PRMs).
//!
//! Four labelling methods, all driven through the [`Generator`] trait (embedded or HTTP
//! model) and the answer verifier of `stepwise-verify`:
//!
//! | method | module | what it does |
//! |---|---|---|
//! | `mc` | [`mc`] | Math-Shepherd: k rollouts from every step prefix; soft label = fraction correct, hard label = any correct |
//! | `omegaprm` | [`omega`] | OmegaPRM (Luo et al. 2024): MCTS over rollouts with a binary search for the first step whose prefix has MC = 0 |
//! | `reference` | [`reference`] | SPARE-style: one judge pass aligns each step with a reference solution and labels it with a short reason |
//! | `grounded` | [`grounded`] | GroundedPRM-style hybrid: exact tool verification of each step's arithmetic fused with rollout outcomes |
//!
//! [`run`] drives a whole dataset concurrently through the SQLite run store of
//! `stepwise-data` (one atomic unit per question and method, so `--resume` continues
//! exactly where a killed run stopped); [`formats`] writes and reads the five export
//! formats (Math-Shepherd, TRL, PRM800K-style, OpenR, ProcessBench-style) as JSONL or
//! Parquet; [`truth`] measures label quality against the exact ground truth of `arith`
//! problems.

pub mod formats;
pub mod grounded;
pub mod mc;
pub mod omega;
pub mod policy;
pub mod reference;
pub mod run;
pub mod testing;
pub mod truth;

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
pub use stepwise_model::Generator;

/// Errors of the annotation layer.
#[derive(Debug, thiserror::Error)]
pub enum AnnotateError {
    #[error("model call for problem '{problem}' failed: {source}")]
    Engine {
        problem: String,
        #[source]
        source: stepwise_model::EngineError,
    },
    #[error("problem '{0}' has no gold answer; automatic labels need one")]
    NoGold(String),
    #[error("prompt template {place}: {reason}")]
    Template { place: String, reason: String },
    /// Datasets, the run store, Parquet files.
    #[error(transparent)]
    Data(#[from] stepwise_data::DataError),
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    #[error("{path}, record {record}: {reason}")]
    BadRecord {
        path: String,
        record: usize,
        reason: String,
    },
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("stored unit '{key}' is not a valid annotation result: {reason}")]
    CorruptUnit { key: String, reason: String },
}

pub type Result<T, E = AnnotateError> = std::result::Result<T, E>;

/// A labelling method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    Mc,
    OmegaPrm,
    Reference,
    Grounded,
}

impl Method {
    pub const ALL: [Method; 4] = [Self::Mc, Self::OmegaPrm, Self::Reference, Self::Grounded];

    pub fn name(self) -> &'static str {
        match self {
            Self::Mc => "mc",
            Self::OmegaPrm => "omegaprm",
            Self::Reference => "reference",
            Self::Grounded => "grounded",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Method {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "mc" | "math-shepherd" | "mathshepherd" => Ok(Self::Mc),
            "omegaprm" | "omega" => Ok(Self::OmegaPrm),
            "reference" | "spare" => Ok(Self::Reference),
            "grounded" | "groundedprm" => Ok(Self::Grounded),
            other => Err(format!(
                "unknown method '{other}' (expected mc, omegaprm, reference or grounded)"
            )),
        }
    }
}

/// The label of one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepLabel {
    /// Soft label in `0..=1` (MC value, judge confidence, hybrid reward).
    pub value: f64,
    /// Hard label: the step is good.
    pub good: bool,
    /// Rollouts made from the prefix ending at this step (0 when none).
    #[serde(default)]
    pub rollouts: u32,
    /// Of those, how many reached the gold answer.
    #[serde(default)]
    pub correct: u32,
    /// A short reason (reference / grounded methods).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl StepLabel {
    /// An MC label from `correct` of `rollouts` (Math-Shepherd: hard = any correct).
    pub fn from_mc(correct: u32, rollouts: u32) -> Self {
        let value = if rollouts == 0 {
            0.0
        } else {
            f64::from(correct) / f64::from(rollouts)
        };
        Self {
            value,
            good: correct > 0,
            rollouts,
            correct,
            reason: None,
        }
    }
}

/// One solution with labels for its first `labels.len()` steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelledSolution {
    pub problem_id: String,
    pub question: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gold: Option<String>,
    /// Which solution of the question (sample index, or tree node id for OmegaPRM).
    pub sample: u32,
    pub steps: Vec<String>,
    /// Labels of `steps[..labels.len()]` (OmegaPRM labels up to the first error only).
    pub labels: Vec<StepLabel>,
    /// Whether the solution's final answer verified against the gold answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_correct: Option<bool>,
}

impl LabelledSolution {
    /// The first step labelled bad, if any.
    pub fn first_error(&self) -> Option<usize> {
        self.labels.iter().position(|l| !l.good)
    }
}

/// A labelled prefix of an OmegaPRM tree: the state's steps and its MC value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrefixLabel {
    /// Node id in the question's tree (0 is the root, the empty prefix).
    pub node: u32,
    /// The parent node (`None` for the root).
    pub parent: Option<u32>,
    pub steps: Vec<String>,
    /// MC(s) = correct / rollouts from this state.
    pub mc: f64,
    pub rollouts: u32,
    pub correct: u32,
}

/// What labelling cost: rollouts and tokens, counted exactly from the backend's reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Cost {
    /// Continuations generated (solution samples and rollouts).
    pub rollouts: u64,
    /// Tokens generated for those continuations.
    pub rollout_tokens: u64,
    /// Judge calls (reference method).
    pub judge_calls: u64,
    /// Tokens generated by the judge.
    pub judge_tokens: u64,
    /// Prompt tokens processed (rollouts and judge).
    pub prompt_tokens: u64,
    /// Generation calls.
    pub calls: u64,
}

impl Cost {
    /// All generated tokens.
    pub fn generated_tokens(&self) -> u64 {
        self.rollout_tokens + self.judge_tokens
    }
}

impl std::ops::AddAssign for Cost {
    fn add_assign(&mut self, o: Cost) {
        self.rollouts += o.rollouts;
        self.rollout_tokens += o.rollout_tokens;
        self.judge_calls += o.judge_calls;
        self.judge_tokens += o.judge_tokens;
        self.prompt_tokens += o.prompt_tokens;
        self.calls += o.calls;
    }
}

/// Everything one method produced for one question (one run-store unit).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuestionResult {
    pub problem_id: String,
    pub method: Method,
    /// Labelled solutions (for OmegaPRM: every binary-searched rollout, labelled up to
    /// and including the first step whose prefix has MC = 0).
    pub solutions: Vec<LabelledSolution>,
    /// OmegaPRM only: every labelled prefix (tree node) with its MC value.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prefixes: Vec<PrefixLabel>,
    pub cost: Cost,
}

impl QuestionResult {
    /// Steps that got a label.
    pub fn labelled_steps(&self) -> usize {
        match self.method {
            Method::OmegaPrm => self.prefixes.iter().filter(|p| p.parent.is_some()).count(),
            _ => self.solutions.iter().map(|s| s.labels.len()).sum(),
        }
    }

    /// The records to export: the labelled solutions, or for OmegaPRM one record per
    /// labelled prefix (see [`omega::prefix_records`]).
    pub fn export_records(&self, question: &str, gold: Option<&str>) -> Vec<LabelledSolution> {
        match self.method {
            Method::OmegaPrm => omega::prefix_records(self, question, gold),
            _ => self.solutions.clone(),
        }
    }
}

/// A stable 64-bit FNV-1a hash (seeds must not depend on the platform or Rust version).
pub fn stable_hash(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in *p {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Mixes a seed with a tag into a new seed.
pub fn mix_seed(seed: u64, tag: &str) -> u64 {
    stable_hash(&[&seed.to_le_bytes(), tag.as_bytes()])
}
