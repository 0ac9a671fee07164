//! Automatic step labels for process reward models (PRMs).
//!
//! Six labelling methods, all driven through the [`Generator`] trait (embedded or HTTP
//! model) and the answer verifier of `stepwise-verify`:
//!
//! | method | module | what it does |
//! |---|---|---|
//! | `mc` | [`mc`] | Math-Shepherd: k rollouts from every step prefix; soft label = fraction correct, hard label = any correct |
//! | `adaptive-mc` | [`adaptive`] | mc's hard label with early stopping: a prefix's rollouts stop at the first correct one, and the first bad prefix is found by bisection (labels are monotone) |
//! | `omegaprm` | [`omega`] | OmegaPRM (Luo et al. 2024): MCTS over rollouts with a binary search for the first step whose prefix has MC = 0 |
//! | `reference` | [`reference`] | SPARE-style: one judge pass aligns each step with a reference solution and labels it with a short reason |
//! | `grounded` | [`grounded`] | GroundedPRM-style hybrid: exact tool verification of each step's arithmetic fused with rollout outcomes |
//! | `rpe` | [`rpe`] | GenPRM's Relative Progress Estimation: mc's rollouts, a step good when MC(after) / MC(before) ≥ ε = 0.8 |
//!
//! [`sim`] is a simulated policy over `arith` problems (known first errors, no model) for
//! measuring the methods against exact truth at scale (`stepwise bench labels`).
//!
//! [`run`] drives a whole dataset concurrently through the SQLite run store of
//! `stepwise-data` (one atomic unit per question and method, so `--resume` continues
//! exactly where a killed run stopped); [`formats`] writes and reads the five export
//! formats (Math-Shepherd, TRL, PRM800K-style, OpenR, ProcessBench-style) as JSONL or
//! Parquet; [`truth`] measures label quality against the exact ground truth of `arith`
//! problems.

pub mod adaptive;
pub mod formats;
pub mod grounded;
pub mod mc;
pub mod omega;
pub mod policy;
pub mod reference;
pub mod rpe;
pub mod run;
pub mod sim;
pub mod testing;
pub mod truth;

pub use stepwise_jobs::kinds::annotate::{
    LabelledSolution, Method, PrefixLabel, QuestionResult, StepLabel,
};
pub use stepwise_model::Generator;

/// Errors of the annotation layer.
#[derive(Debug, thiserror::Error)]
pub enum AnnotateError {
    #[error("model call for problem '{problem}' failed")]
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
    #[error(transparent)]
    Store(#[from] stepwise_store::StoreError),
    #[error(transparent)]
    Job(#[from] stepwise_jobs::JobError),
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

/// The records to export of one result: the labelled solutions, or for OmegaPRM one
/// record per labelled prefix (see [`omega::prefix_records`]).
pub fn export_records(
    r: &QuestionResult,
    question: &str,
    gold: Option<&str>,
) -> Vec<LabelledSolution> {
    match r.method {
        Method::OmegaPrm => omega::prefix_records(r, question, gold),
        _ => r.solutions.clone(),
    }
}
