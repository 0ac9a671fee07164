//! PRM and value heads trained by stepwise itself: a logistic-regression (or
//! one-hidden-layer MLP) probe on the generator's hidden state at the end of each step,
//! trained on hard labels, soft MC values, or outcomes (an OVM value head).
//!
//! The pipeline, one module per job:
//! - `features`: labelled records (question, steps, per-step good/bad) → features (one
//!   [`Generator::embed_pieces`](stepwise_model::Generator::embed_pieces) call per record:
//!   the hidden state at the last token of each step, cached on disk and resumable);
//! - `train`: [`train_head`] (L2-regularised logistic regression or MLP, full batch, Adam,
//!   deterministic; hard or soft targets; train/validation split by record, AUROC, ECE,
//!   Brier);
//! - `sources`: [`records_from_run`], labelled records from stored `annotate`, `solve` and
//!   `scale` runs (soft values and outcomes included);
//! - `file`: the versioned [`PrmHead`] JSON file (load, validate, save);
//! - `scorer`: [`HeadScorer`], a [`StepScorer`](crate::StepScorer) whose step score is
//!   `sigmoid(w · standardize(h) + b)`.
//!
//! Training and scoring build their input with the same function ([`head_input`]): the
//! question as one user message, and the assistant turn as each step's text followed by
//! the separator, each step tokenized on its own. A step's feature is therefore the same
//! whether the rationale is scored whole or step by step.

mod features;
mod file;
mod scorer;
mod sources;
#[cfg(test)]
mod test_util;
mod train;

pub use features::{
    ExtractProgress, Extracted, FeatureRecord, FeatureUnit, FeaturesConfig, HeadFeatures,
    LabelledRecord, Targets, extract_features, join_features, labels_until_first_error,
    processbench_labels, record_targets,
};
pub use file::{
    Activation, HEAD_FORMAT_OLDEST, HEAD_FORMAT_VERSION, HiddenLayer, PrmHead, TrainingSummary,
};
pub use scorer::HeadScorer;
pub use sources::records_from_run;
pub use train::{Arch, Calibration, TrainConfig, auroc, split_records, train_head};

use std::path::Path;
use stepwise_model::{ChatMessage, EngineError, Prompt};

/// Separator written after every step (training and scoring).
pub const DEFAULT_SEPARATOR: &str = "\n\n";

/// Errors of head files, feature caches and training.
#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    #[error("{path}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{place}: not a valid file: {reason}")]
    Parse { place: String, reason: String },
    #[error("{path}: invalid head: {reason}")]
    Invalid { path: String, reason: String },
    #[error("training: {0}")]
    Training(String),
    #[error("record {id}")]
    Engine {
        id: String,
        #[source]
        source: EngineError,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> HeadError + '_ {
    move |source| HeadError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The logistic function, computed without overflow for large `|z|`.
fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// The prompt and pieces a head reads: the question as one user message, and each step
/// followed by `separator`. Shared by training and scoring.
pub fn head_input<S: AsRef<str>>(
    question: &str,
    steps: &[S],
    separator: &str,
) -> (Prompt, Vec<String>) {
    (
        Prompt::Chat(vec![ChatMessage::user(question)]),
        steps
            .iter()
            .map(|s| format!("{}{separator}", s.as_ref()))
            .collect(),
    )
}
