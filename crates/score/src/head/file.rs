//! The head file: a versioned JSON document with the standardization, weights and bias
//! of a trained head and how it was trained.

use super::train::TrainConfig;
use super::{HeadError, io_err, sigmoid};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Version of the head file format written by [`PrmHead::save`].
pub const HEAD_FORMAT_VERSION: u32 = 1;

/// How a head was trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingSummary {
    /// Records and labelled steps used for fitting (the training split).
    pub train_records: usize,
    pub train_steps: usize,
    pub train_positives: usize,
    /// The held-out split (by record).
    pub val_records: usize,
    pub val_steps: usize,
    pub val_positives: usize,
    /// The settings it was fitted with (flattened: the file keeps them at this level).
    #[serde(flatten)]
    pub config: TrainConfig,
    /// Final training objective (weighted log-loss + L2 term).
    pub final_loss: f64,
    /// AUROC of good-vs-bad steps; `None` when a split lacks one of the classes.
    pub train_auroc: Option<f64>,
    pub val_auroc: Option<f64>,
    /// Where the labels came from (free text, e.g. `processbench:math`).
    #[serde(default)]
    pub data: String,
}

/// A trained step head: standardization, weights and bias over a model's hidden states.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrmHead {
    pub format_version: u32,
    /// Feature dimension (the model's hidden size).
    pub dim: usize,
    /// Per-feature mean and standard deviation of the training features.
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
    /// Weights over standardized features, and the bias.
    pub weights: Vec<f64>,
    pub bias: f64,
    /// [`Generator::name`] of the model whose hidden states it was trained on.
    pub model: String,
    /// Text written after every step.
    pub separator: String,
    pub training: TrainingSummary,
}

impl PrmHead {
    /// The probability that a step ending at hidden state `h` is good.
    pub fn score(&self, h: &[f32]) -> Result<f64, HeadError> {
        if h.len() != self.dim {
            return Err(HeadError::Invalid {
                path: "(features)".into(),
                reason: format!(
                    "hidden state has {} dimensions, the head expects {}",
                    h.len(),
                    self.dim
                ),
            });
        }
        let z = self.bias
            + h.iter()
                .zip(&self.mean)
                .zip(&self.std)
                .zip(&self.weights)
                .map(|(((&x, m), s), w)| w * (f64::from(x) - m) / s)
                .sum::<f64>();
        Ok(sigmoid(z))
    }

    /// Checks dimensions and numbers; `path` names the file in errors.
    pub fn validate(&self, path: &str) -> Result<(), HeadError> {
        let bad = |reason: String| HeadError::Invalid {
            path: path.to_string(),
            reason,
        };
        if self.format_version != HEAD_FORMAT_VERSION {
            return Err(bad(format!(
                "format version {} (this build reads {HEAD_FORMAT_VERSION})",
                self.format_version
            )));
        }
        if self.dim == 0 {
            return Err(bad("feature dimension is 0".into()));
        }
        for (name, v) in [
            ("mean", &self.mean),
            ("std", &self.std),
            ("weights", &self.weights),
        ] {
            if v.len() != self.dim {
                return Err(bad(format!(
                    "{name} has {} values, dim is {}",
                    v.len(),
                    self.dim
                )));
            }
            if let Some(i) = v.iter().position(|x| !x.is_finite()) {
                return Err(bad(format!("{name}[{i}] is not a finite number")));
            }
        }
        if let Some(i) = self.std.iter().position(|&s| s <= 0.0) {
            return Err(bad(format!("std[{i}] is not positive")));
        }
        if !self.bias.is_finite() {
            return Err(bad("bias is not a finite number".into()));
        }
        Ok(())
    }

    /// Writes the head as pretty JSON (via a temporary file, then a rename).
    pub fn save(&self, path: &Path) -> Result<(), HeadError> {
        self.validate(&path.display().to_string())?;
        let text = serde_json::to_string_pretty(self).map_err(|e| HeadError::Parse {
            place: path.display().to_string(),
            reason: e.to_string(),
        })?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        }
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, text).map_err(io_err(&tmp))?;
        std::fs::rename(&tmp, path).map_err(io_err(path))
    }

    /// Reads and validates a head file.
    pub fn load(path: &Path) -> Result<Self, HeadError> {
        let text = std::fs::read_to_string(path).map_err(io_err(path))?;
        let head: PrmHead = serde_json::from_str(&text).map_err(|e| HeadError::Parse {
            place: path.display().to_string(),
            reason: e.to_string(),
        })?;
        head.validate(&path.display().to_string())?;
        Ok(head)
    }
}

fn fmt_auroc(a: Option<f64>) -> String {
    a.map(|v| format!("{v:.4}")).unwrap_or_else(|| "n/a".into())
}

impl PrmHead {
    /// A summary for people: model, data, shape, the fit and its AUROCs.
    pub fn summary(&self) -> String {
        let h = self;
        let t = &h.training;
        format!(
            "model:      {}\ndata:       {}\ndim:        {}\nseparator:  {:?}\n\
             train:      {} records, {} steps, {} good ({:.1}%)\n\
             validation: {} records, {} steps, {} good\n\
             fit:        l2 {}, {} epochs, lr {}, class-balanced {}, seed {}, loss {:.4}\n\
             AUROC:      train {}, validation {}",
            h.model,
            if t.data.is_empty() {
                "-"
            } else {
                t.data.as_str()
            },
            h.dim,
            h.separator,
            t.train_records,
            t.train_steps,
            t.train_positives,
            100.0 * t.train_positives as f64 / t.train_steps.max(1) as f64,
            t.val_records,
            t.val_steps,
            t.val_positives,
            t.config.l2,
            t.config.epochs,
            t.config.learning_rate,
            t.config.class_balanced,
            t.config.seed,
            t.final_loss,
            fmt_auroc(t.train_auroc),
            fmt_auroc(t.val_auroc),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::head::test_util::{small_head, tmp};

    #[test]
    fn save_load_round_trip_and_corrupt_files() {
        let d = tmp("save");
        let p = d.join("h.json");
        let h = small_head("scripted");
        h.save(&p).unwrap();
        assert_eq!(PrmHead::load(&p).unwrap(), h);

        let text = std::fs::read_to_string(&p).unwrap();
        std::fs::write(&p, &text[..text.len() / 2]).unwrap();
        let e = PrmHead::load(&p).unwrap_err();
        assert!(matches!(e, HeadError::Parse { .. }), "{e}");
        assert!(e.to_string().contains("h.json"), "{e}");

        let mut bad = h.clone();
        bad.weights.push(1.0);
        std::fs::write(&p, serde_json::to_string(&bad).unwrap()).unwrap();
        let e = PrmHead::load(&p).unwrap_err();
        assert!(matches!(e, HeadError::Invalid { .. }), "{e}");
        assert!(e.to_string().contains("weights has 3 values"), "{e}");

        let mut bad = h.clone();
        bad.std[1] = 0.0;
        std::fs::write(&p, serde_json::to_string(&bad).unwrap()).unwrap();
        assert!(
            PrmHead::load(&p)
                .unwrap_err()
                .to_string()
                .contains("std[1]")
        );

        std::fs::write(&p, text.replace("\"bias\": 0.25", "\"bias\": 1e999")).unwrap();
        assert!(PrmHead::load(&p).is_err());

        let e = PrmHead::load(&d.join("missing.json")).unwrap_err();
        assert!(matches!(e, HeadError::Io { .. }) && e.to_string().contains("missing.json"));
    }
}
