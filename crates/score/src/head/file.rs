//! The head file: a versioned JSON document with the standardization, weights and bias
//! of a trained head (and, for an MLP head, its hidden layer) and how it was trained.
//!
//! Versions: 1 held logistic heads on hard labels only; 2 adds the optional hidden layer
//! (`hidden`), the targets (`targets`), the architecture (`arch`, `hidden_units` in the
//! training settings) and the calibration of each split. A version-1 file reads as the
//! logistic head on hard labels it is (nothing in it changes meaning); a file of a newer
//! version than this build is refused by name.

use super::train::{Calibration, TrainConfig};
use super::{HeadError, Targets, io_err, sigmoid};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Version of the head file format written by [`PrmHead::save`].
pub const HEAD_FORMAT_VERSION: u32 = 2;

/// The oldest version [`PrmHead::load`] reads (and migrates).
pub const HEAD_FORMAT_OLDEST: u32 = 1;

/// How a head was trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingSummary {
    /// Records and labelled steps used for fitting (the training split).
    pub train_records: usize,
    pub train_steps: usize,
    /// Steps whose hard label is good.
    pub train_positives: usize,
    /// The held-out split (by record).
    pub val_records: usize,
    pub val_steps: usize,
    pub val_positives: usize,
    /// The settings it was fitted with (flattened: the file keeps them at this level).
    #[serde(flatten)]
    pub config: TrainConfig,
    /// What the labels became (version 1 files: hard).
    #[serde(default)]
    pub targets: Targets,
    /// Final training objective (weighted cross-entropy + L2 term).
    pub final_loss: f64,
    /// AUROC of good-vs-bad steps (hard labels); `None` when a split lacks one of the
    /// classes.
    pub train_auroc: Option<f64>,
    pub val_auroc: Option<f64>,
    /// ECE and Brier score against the hard labels; `None` for an empty split (and in
    /// version 1 files).
    #[serde(default)]
    pub train_calibration: Option<Calibration>,
    #[serde(default)]
    pub val_calibration: Option<Calibration>,
    /// Where the labels came from (free text, e.g. `processbench:math`).
    #[serde(default)]
    pub data: String,
}

/// The nonlinearity of a hidden layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    Tanh,
}

/// The hidden layer of an MLP head: `act(W x + c)` over the standardized features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HiddenLayer {
    pub units: usize,
    pub activation: Activation,
    /// `units × dim` weights, one row of `dim` per unit.
    pub weights: Vec<f64>,
    /// One bias per unit.
    pub bias: Vec<f64>,
}

/// A trained step head: standardization, an optional hidden layer, output weights and
/// bias over a model's hidden states.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrmHead {
    pub format_version: u32,
    /// Feature dimension (the model's hidden size).
    pub dim: usize,
    /// Per-feature mean and standard deviation of the training features.
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
    /// The hidden layer of an MLP head; absent for logistic regression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden: Option<HiddenLayer>,
    /// Output weights: over the standardized features (logistic), or over the hidden
    /// units (MLP); and the bias.
    pub weights: Vec<f64>,
    pub bias: f64,
    /// [`Generator::name`] of the model whose hidden states it was trained on.
    pub model: String,
    /// Text written after every step.
    pub separator: String,
    pub training: TrainingSummary,
}

impl PrmHead {
    /// A logistic head over `model`'s hidden states with the given standardization,
    /// weights and bias (and an empty training summary): for heads set by hand.
    pub fn logistic(
        model: &str,
        mean: Vec<f64>,
        std: Vec<f64>,
        weights: Vec<f64>,
        bias: f64,
    ) -> Self {
        Self {
            format_version: HEAD_FORMAT_VERSION,
            dim: weights.len(),
            mean,
            std,
            hidden: None,
            weights,
            bias,
            model: model.to_string(),
            separator: super::DEFAULT_SEPARATOR.to_string(),
            training: TrainingSummary {
                train_records: 0,
                train_steps: 0,
                train_positives: 0,
                val_records: 0,
                val_steps: 0,
                val_positives: 0,
                config: TrainConfig::default(),
                targets: Targets::Hard,
                final_loss: 0.0,
                train_auroc: None,
                val_auroc: None,
                train_calibration: None,
                val_calibration: None,
                data: "set by hand".into(),
            },
        }
    }

    /// The architecture name (`logistic`, or `mlp` with its hidden units).
    pub fn arch(&self) -> String {
        match &self.hidden {
            None => "logistic".into(),
            Some(h) => format!("mlp ({} tanh units)", h.units),
        }
    }

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
        let x = h
            .iter()
            .zip(&self.mean)
            .zip(&self.std)
            .map(|((&v, m), s)| (f64::from(v) - m) / s);
        let z = match &self.hidden {
            None => self.bias + x.zip(&self.weights).map(|(xv, w)| w * xv).sum::<f64>(),
            Some(layer) => {
                let x: Vec<f64> = x.collect();
                let act = layer
                    .weights
                    .chunks_exact(self.dim)
                    .zip(&layer.bias)
                    .map(|(row, c)| {
                        let pre = c + row.iter().zip(&x).map(|(w, xv)| w * xv).sum::<f64>();
                        match layer.activation {
                            Activation::Tanh => pre.tanh(),
                        }
                    });
                self.bias + act.zip(&self.weights).map(|(a, w)| w * a).sum::<f64>()
            }
        };
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
                "format version {} (this build reads {HEAD_FORMAT_OLDEST} to {HEAD_FORMAT_VERSION})",
                self.format_version
            )));
        }
        if self.dim == 0 {
            return Err(bad("feature dimension is 0".into()));
        }
        let out_len = self.hidden.as_ref().map_or(self.dim, |h| h.units);
        let mut vectors: Vec<(&str, &Vec<f64>, usize)> = vec![
            ("mean", &self.mean, self.dim),
            ("std", &self.std, self.dim),
            ("weights", &self.weights, out_len),
        ];
        if let Some(h) = &self.hidden {
            if h.units == 0 {
                return Err(bad("the hidden layer has no units".into()));
            }
            vectors.push(("hidden.weights", &h.weights, h.units * self.dim));
            vectors.push(("hidden.bias", &h.bias, h.units));
        }
        for (name, v, len) in vectors {
            if v.len() != len {
                return Err(bad(format!(
                    "{name} has {} values, expected {len}{}",
                    v.len(),
                    if len == self.dim {
                        String::new()
                    } else {
                        format!(" (dim {})", self.dim)
                    }
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

    /// Reads and validates a head file, migrating older versions (see the module).
    pub fn load(path: &Path) -> Result<Self, HeadError> {
        let place = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(io_err(path))?;
        let parse = |reason: String| HeadError::Parse {
            place: place.clone(),
            reason,
        };
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| parse(e.to_string()))?;
        let version = value
            .get("format_version")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| parse("no integer field 'format_version'".into()))?;
        if !(u64::from(HEAD_FORMAT_OLDEST)..=u64::from(HEAD_FORMAT_VERSION)).contains(&version) {
            return Err(HeadError::Invalid {
                path: place,
                reason: format!(
                    "format version {version}; this build reads versions \
                     {HEAD_FORMAT_OLDEST} to {HEAD_FORMAT_VERSION}{}",
                    if version > u64::from(HEAD_FORMAT_VERSION) {
                        " (the file is from a newer stepwise)"
                    } else {
                        ""
                    }
                ),
            });
        }
        let mut head: PrmHead = serde_json::from_value(value).map_err(|e| parse(e.to_string()))?;
        if head.format_version == 1 {
            // version 1: a logistic head on hard labels, the fields of version 2 absent
            if head.hidden.is_some() {
                return Err(parse("a version 1 head has no hidden layer".into()));
            }
            tracing::debug!("{place}: head file version 1 read as version {HEAD_FORMAT_VERSION}");
            head.format_version = HEAD_FORMAT_VERSION;
        }
        head.validate(&place)?;
        Ok(head)
    }
}

fn fmt_opt(a: Option<f64>) -> String {
    a.map(|v| format!("{v:.4}")).unwrap_or_else(|| "n/a".into())
}

fn fmt_cal(c: Option<Calibration>) -> String {
    c.map(|c| format!("ECE {:.4}, Brier {:.4}", c.ece, c.brier))
        .unwrap_or_else(|| "n/a".into())
}

impl PrmHead {
    /// A summary for people: model, data, shape, the fit, its AUROCs and calibration.
    pub fn summary(&self) -> String {
        let h = self;
        let t = &h.training;
        format!(
            "model:       {}\ndata:        {}\ntargets:     {}\narch:        {}\n\
             dim:         {}\nseparator:   {:?}\n\
             train:       {} records, {} steps, {} good ({:.1}%)\n\
             validation:  {} records, {} steps, {} good\n\
             fit:         l2 {}, {} epochs, lr {}, class-balanced {}, seed {}, loss {:.4}\n\
             AUROC:       train {}, validation {}\n\
             calibration: train {}; validation {}",
            h.model,
            if t.data.is_empty() {
                "-"
            } else {
                t.data.as_str()
            },
            t.targets,
            h.arch(),
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
            fmt_opt(t.train_auroc),
            fmt_opt(t.val_auroc),
            fmt_cal(t.train_calibration),
            fmt_cal(t.val_calibration),
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

    /// A head file as version 1 wrote it (`stepwise head train` before heads had a
    /// choice of targets and arch): read as the same logistic head on hard labels.
    #[test]
    fn version_1_files_read_and_newer_ones_are_refused() {
        let d = tmp("v1");
        let p = d.join("old.json");
        let v1 = r#"{"format_version": 1, "dim": 2, "mean": [1.0, 0.0], "std": [2.0, 1.0],
            "weights": [0.5, -3.0], "bias": 0.25, "model": "scripted", "separator": "\n\n",
            "training": {"train_records": 1, "train_steps": 2, "train_positives": 1,
              "val_records": 0, "val_steps": 0, "val_positives": 0, "l2": 0.1, "epochs": 3,
              "learning_rate": 0.05, "class_balanced": true, "val_frac": 0.0, "seed": 0,
              "final_loss": 0.5, "train_auroc": 1.0, "val_auroc": null, "data": "test"}}"#;
        std::fs::write(&p, v1).unwrap();
        let h = PrmHead::load(&p).unwrap();
        assert_eq!(h, small_head("scripted"));
        assert_eq!(h.format_version, HEAD_FORMAT_VERSION);
        assert_eq!(h.training.targets, Targets::Hard);
        assert_eq!(h.arch(), "logistic");

        std::fs::write(
            &p,
            v1.replace("\"format_version\": 1", "\"format_version\": 3"),
        )
        .unwrap();
        let e = PrmHead::load(&p).unwrap_err().to_string();
        assert!(
            e.contains("old.json") && e.contains("format version 3"),
            "{e}"
        );
        assert!(e.contains("newer stepwise"), "{e}");
        std::fs::write(&p, v1.replace("\"format_version\": 1,", "")).unwrap();
        let e = PrmHead::load(&p).unwrap_err().to_string();
        assert!(e.contains("format_version"), "{e}");
    }

    #[test]
    fn an_mlp_head_scores_by_hand_and_checks_its_layer() {
        // 2 features, 2 tanh units: z = 0.1 + 2·tanh(x0 − x1) − 1·tanh(0.5 + x1)
        let mut h = small_head("scripted");
        h.mean = vec![0.0, 0.0];
        h.std = vec![1.0, 1.0];
        h.hidden = Some(HiddenLayer {
            units: 2,
            activation: Activation::Tanh,
            weights: vec![1.0, -1.0, 0.0, 1.0],
            bias: vec![0.0, 0.5],
        });
        h.weights = vec![2.0, -1.0];
        h.bias = 0.1;
        let want = sigmoid(0.1 + 2.0 * (0.5f64 - 2.0).tanh() - (0.5f64 + 2.0).tanh());
        assert!((h.score(&[0.5, 2.0]).unwrap() - want).abs() < 1e-12);
        assert!(h.arch().starts_with("mlp (2"));
        let p = tmp("mlp").join("h.json");
        h.save(&p).unwrap();
        assert_eq!(PrmHead::load(&p).unwrap(), h);

        let mut bad = h.clone();
        if let Some(l) = bad.hidden.as_mut() {
            l.weights.pop();
        }
        let e = bad.validate("x").unwrap_err().to_string();
        assert!(e.contains("hidden.weights has 3 values, expected 4"), "{e}");
        let mut bad = h.clone();
        bad.weights = vec![1.0, 2.0, 3.0];
        assert!(
            bad.validate("x")
                .unwrap_err()
                .to_string()
                .contains("weights has 3")
        );
    }
}
