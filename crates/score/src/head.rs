//! PRM heads trained by stepwise itself: a logistic-regression probe on the generator's
//! hidden state at the end of each step.
//!
//! The pipeline: labelled records (question, steps, per-step good/bad) → features (one
//! [`Generator::embed_pieces`] call per record: the hidden state at the last token of each
//! step, cached on disk and resumable) → [`train_head`] (L2-regularised logistic regression,
//! full batch, Adam, deterministic) → a [`PrmHead`] JSON file → [`HeadScorer`], a
//! [`StepScorer`] whose step score is `sigmoid(w · standardize(h) + b)`.
//!
//! Training and scoring build their input with the same function ([`head_input`]): the
//! question as one user message, and the assistant turn as each step's text followed by
//! the separator, each step tokenized on its own. A step's feature is therefore the same
//! whether the rationale is scored whole or step by step.

use crate::{ScoreError, Scored, StepScorer, engine_err};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use stepwise_core::{Problem, Rationale, Spent, Step, StepScore};
use stepwise_model::{ChatMessage, EngineError, Generator, Prompt};

/// Version of the head file format written by [`PrmHead::save`].
pub const HEAD_FORMAT_VERSION: u32 = 1;

/// Separator written after every step (training and scoring).
pub const DEFAULT_SEPARATOR: &str = "\n\n";

/// Errors of head files, feature caches and training.
#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    #[error("{path}: {source}")]
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
    #[error("record {id}: {source}")]
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

/// Labels under ProcessBench semantics: steps before the first bad one are good, the
/// first bad step is bad, later steps are unlabelled (dropped). `good` may be shorter
/// than the steps (steps beyond it are unlabelled).
pub fn labels_until_first_error(good: &[bool]) -> Vec<bool> {
    match good.iter().position(|g| !g) {
        Some(i) => good[..=i].to_vec(),
        None => good.to_vec(),
    }
}

/// Per-step labels of a ProcessBench record: `first_error` −1 means all steps are good.
pub fn processbench_labels(n_steps: usize, first_error: i64) -> Vec<bool> {
    (0..n_steps)
        .map(|i| first_error < 0 || (i as i64) < first_error)
        .collect()
}

// ------------------------------------------------------------------ features

/// A labelled record to extract features from.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelledRecord {
    /// Unique key in the feature cache.
    pub id: String,
    pub question: String,
    pub steps: Vec<String>,
    /// One label per step (may be shorter); cut with [`labels_until_first_error`].
    pub good: Vec<bool>,
}

/// Hidden states and labels of a record's labelled steps (one line of the cache).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureRecord {
    pub id: String,
    pub model: String,
    pub separator: String,
    pub labels: Vec<bool>,
    pub features: Vec<Vec<f32>>,
}

/// Where extraction stands, for progress bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExtractProgress {
    /// Records handled so far (extracted, cached or skipped) of `total`.
    pub done: usize,
    pub total: usize,
    /// Records found in the cache.
    pub cached: usize,
    /// Records skipped (no labelled step, or too long for the context).
    pub skipped: usize,
    /// Tokens read by the model so far in this run.
    pub tokens: u64,
}

/// What extraction produced.
#[derive(Debug, Clone, Default)]
pub struct Extracted {
    /// One entry per usable record, in input order.
    pub records: Vec<FeatureRecord>,
    pub progress: ExtractProgress,
}

/// Reads a feature cache (JSONL, one [`FeatureRecord`] per line). A torn last line (no
/// trailing newline, unparsable) is dropped and the file truncated to the last good line;
/// a bad line elsewhere is an error naming `file:line`.
pub fn read_feature_cache(path: &Path) -> Result<Vec<FeatureRecord>, HeadError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(path)(e)),
    };
    let mut out = Vec::new();
    let mut offset = 0usize;
    let mut good_end = 0usize;
    for (n, line) in bytes.split_inclusive(|&b| b == b'\n').enumerate() {
        let complete = line.ends_with(b"\n");
        offset += line.len();
        let text = String::from_utf8_lossy(line);
        if text.trim().is_empty() {
            good_end = offset;
            continue;
        }
        match (complete, serde_json::from_str::<FeatureRecord>(text.trim())) {
            (true, Ok(r)) => {
                out.push(r);
                good_end = offset;
            }
            (false, _) => {
                tracing::warn!(
                    "{}:{}: torn last line dropped (an interrupted write)",
                    path.display(),
                    n + 1
                );
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(io_err(path))?;
                f.set_len(good_end as u64).map_err(io_err(path))?;
                break;
            }
            (true, Err(e)) => {
                return Err(HeadError::Parse {
                    place: format!("{}:{}", path.display(), n + 1),
                    reason: e.to_string(),
                });
            }
        }
    }
    Ok(out)
}

/// Extracts features of `records` with `generator`, resumable through the cache file
/// `cache` (records whose id is there are not re-embedded). Records without a labelled
/// step, and records too long for the model's context, are skipped (logged). `progress`
/// is called after every record.
pub async fn extract_features(
    generator: &dyn Generator,
    records: &[LabelledRecord],
    separator: &str,
    cache: &Path,
    mut progress: impl FnMut(&ExtractProgress),
) -> Result<Extracted, HeadError> {
    let model = generator.name();
    let mut cached = std::collections::HashMap::new();
    for r in read_feature_cache(cache)? {
        if r.model != model || r.separator != separator {
            return Err(HeadError::Invalid {
                path: cache.display().to_string(),
                reason: format!(
                    "cache holds features of model '{}' with separator {:?}; this run uses '{}' with {:?} (use another cache)",
                    r.model, r.separator, model, separator
                ),
            });
        }
        cached.insert(r.id.clone(), r);
    }
    if let Some(dir) = cache.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(cache)
        .map_err(io_err(cache))?;
    let mut p = ExtractProgress {
        total: records.len(),
        ..Default::default()
    };
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for rec in records {
        if !seen.insert(rec.id.as_str()) {
            return Err(HeadError::Training(format!(
                "record id '{}' appears twice",
                rec.id
            )));
        }
        if let Some(r) = cached.remove(&rec.id) {
            p.cached += 1;
            out.push(r);
        } else {
            let labels = labels_until_first_error(&rec.good);
            let n = labels.len().min(rec.steps.len());
            if n == 0 {
                tracing::debug!("record {}: no labelled step, skipped", rec.id);
                p.skipped += 1;
            } else {
                let (prompt, pieces) = head_input(&rec.question, &rec.steps[..n], separator);
                match generator.embed_pieces(&prompt, &pieces).await {
                    Ok(e) => {
                        p.tokens += e.prompt_tokens;
                        let r = FeatureRecord {
                            id: rec.id.clone(),
                            model: model.clone(),
                            separator: separator.to_string(),
                            labels: labels[..n].to_vec(),
                            features: e.vectors,
                        };
                        let line = serde_json::to_string(&r).map_err(|e| HeadError::Parse {
                            place: cache.display().to_string(),
                            reason: e.to_string(),
                        })?;
                        file.write_all(format!("{line}\n").as_bytes())
                            .and_then(|_| file.flush())
                            .map_err(io_err(cache))?;
                        out.push(r);
                    }
                    Err(EngineError::ContextFull { needed, available }) => {
                        tracing::warn!(
                            "record {}: {needed} tokens do not fit the context ({available}), skipped",
                            rec.id
                        );
                        p.skipped += 1;
                    }
                    Err(source) => {
                        return Err(HeadError::Engine {
                            id: rec.id.clone(),
                            source,
                        });
                    }
                }
            }
        }
        p.done += 1;
        progress(&p);
    }
    Ok(Extracted {
        records: out,
        progress: p,
    })
}

// ------------------------------------------------------------------ training

/// Settings of [`train_head`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// L2 penalty on the weights (over standardized features).
    pub l2: f64,
    /// Full-batch Adam steps.
    pub epochs: usize,
    pub learning_rate: f64,
    /// Weigh the classes equally (each class's weights sum to half).
    pub class_balanced: bool,
    /// Fraction of records held out for validation (0 for none).
    pub val_frac: f64,
    /// Seed of the record split.
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            l2: 1e-2,
            epochs: 300,
            learning_rate: 0.05,
            class_balanced: true,
            val_frac: 0.2,
            seed: 0,
        }
    }
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Record indices of the (train, validation) split: a seeded shuffle by record.
pub fn split_records(n: usize, val_frac: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut idx: Vec<usize> = (0..n).collect();
    let mut s = seed;
    for i in (1..n).rev() {
        let j = (splitmix(&mut s) % (i as u64 + 1)) as usize;
        idx.swap(i, j);
    }
    let mut n_val = (val_frac.clamp(0.0, 1.0) * n as f64).round() as usize;
    if val_frac > 0.0 && n >= 2 {
        n_val = n_val.clamp(1, n - 1);
    } else if n < 2 {
        n_val = 0;
    }
    let val = idx[..n_val].to_vec();
    let train = idx[n_val..].to_vec();
    (train, val)
}

/// Area under the ROC curve of `scores` for the positives in `labels` (ties count half);
/// `None` without both classes.
pub fn auroc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    let mut pairs: Vec<(f64, bool)> = scores.iter().copied().zip(labels.iter().copied()).collect();
    let n_pos = pairs.iter().filter(|p| p.1).count();
    let n_neg = pairs.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return None;
    }
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < pairs.len() {
        let mut j = i;
        while j + 1 < pairs.len() && pairs[j + 1].0 == pairs[i].0 {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += avg_rank * pairs[i..=j].iter().filter(|p| p.1).count() as f64;
        i = j + 1;
    }
    let u = rank_sum - (n_pos * (n_pos + 1)) as f64 / 2.0;
    Some(u / (n_pos as f64 * n_neg as f64))
}

/// Feature rows and labels of the records at `idx`.
fn rows<'a>(records: &'a [FeatureRecord], idx: &[usize]) -> (Vec<&'a [f32]>, Vec<bool>) {
    let mut x = Vec::new();
    let mut y = Vec::new();
    for &i in idx {
        for (f, &l) in records[i].features.iter().zip(&records[i].labels) {
            x.push(f.as_slice());
            y.push(l);
        }
    }
    (x, y)
}

/// Fits a head on `records` (features of one model) with an L2-regularised logistic
/// regression: full batch, Adam, deterministic. `data` describes the labels' source.
pub fn train_head(
    records: &[FeatureRecord],
    model: &str,
    separator: &str,
    data: &str,
    cfg: &TrainConfig,
) -> Result<PrmHead, HeadError> {
    let dim = records
        .iter()
        .flat_map(|r| r.features.first())
        .map(Vec::len)
        .next()
        .ok_or_else(|| HeadError::Training("no labelled steps to train on".into()))?;
    for r in records {
        if r.features.len() != r.labels.len() {
            return Err(HeadError::Training(format!(
                "record {}: {} feature vectors for {} labels",
                r.id,
                r.features.len(),
                r.labels.len()
            )));
        }
        if let Some(v) = r.features.iter().find(|v| v.len() != dim) {
            return Err(HeadError::Training(format!(
                "record {}: a feature vector has {} dimensions, others {dim}",
                r.id,
                v.len()
            )));
        }
        if r.features.iter().flatten().any(|x| !x.is_finite()) {
            return Err(HeadError::Training(format!(
                "record {}: a feature is not a finite number",
                r.id
            )));
        }
    }
    let (train_idx, val_idx) = split_records(records.len(), cfg.val_frac, cfg.seed);
    let (xt, yt) = rows(records, &train_idx);
    let (xv, yv) = rows(records, &val_idx);
    let n = xt.len();
    if n == 0 {
        return Err(HeadError::Training(
            "the training split has no steps".into(),
        ));
    }
    let n_pos = yt.iter().filter(|&&y| y).count();
    if n_pos == 0 || n_pos == n {
        return Err(HeadError::Training(format!(
            "the training split has {n_pos} good steps of {n}: both classes are needed"
        )));
    }

    // Standardization from the training rows.
    let mut mean = vec![0f64; dim];
    for x in &xt {
        for (m, &v) in mean.iter_mut().zip(x.iter()) {
            *m += f64::from(v);
        }
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let mut var = vec![0f64; dim];
    for x in &xt {
        for ((s, &v), m) in var.iter_mut().zip(x.iter()).zip(&mean) {
            let d = f64::from(v) - m;
            *s += d * d;
        }
    }
    let std: Vec<f64> = var
        .iter()
        .map(|s| {
            let sd = (s / n as f64).sqrt();
            if sd > 1e-6 { sd } else { 1.0 }
        })
        .collect();
    let z: Vec<f32> = xt
        .iter()
        .flat_map(|x| {
            x.iter()
                .zip(&mean)
                .zip(&std)
                .map(|((&v, m), s)| ((f64::from(v) - m) / s) as f32)
        })
        .collect();

    // Sample weights, normalized to sum 1.
    let (wp, wn) = if cfg.class_balanced {
        (0.5 / n_pos as f64, 0.5 / (n - n_pos) as f64)
    } else {
        (1.0 / n as f64, 1.0 / n as f64)
    };
    let sw: Vec<f64> = yt.iter().map(|&y| if y { wp } else { wn }).collect();

    // Full-batch Adam on the weighted log-loss + l2/2 |w|^2 (bias unpenalized).
    let mut w = vec![0f64; dim + 1];
    let mut m1 = vec![0f64; dim + 1];
    let mut m2 = vec![0f64; dim + 1];
    let (b1, b2, eps) = (0.9f64, 0.999f64, 1e-8f64);
    let mut grad = vec![0f64; dim + 1];
    let objective = |w: &[f64], grad: Option<&mut Vec<f64>>| -> f64 {
        let mut g_local = grad;
        if let Some(g) = g_local.as_deref_mut() {
            g.iter_mut().for_each(|v| *v = 0.0);
        }
        let mut l = 0.0;
        for (i, row) in z.chunks_exact(dim).enumerate() {
            let s = w[dim]
                + row
                    .iter()
                    .zip(&w[..dim])
                    .map(|(&x, wi)| f64::from(x) * wi)
                    .sum::<f64>();
            let y = if yt[i] { 1.0 } else { 0.0 };
            // log(1 + e^s) - y s, stably.
            let softplus = if s > 0.0 {
                s + (-s).exp().ln_1p()
            } else {
                s.exp().ln_1p()
            };
            l += sw[i] * (softplus - y * s);
            if let Some(g) = g_local.as_deref_mut() {
                let r = sw[i] * (sigmoid(s) - y);
                for (gj, &x) in g[..dim].iter_mut().zip(row) {
                    *gj += r * f64::from(x);
                }
                g[dim] += r;
            }
        }
        let reg: f64 = w[..dim].iter().map(|v| v * v).sum::<f64>() * cfg.l2 / 2.0;
        if let Some(g) = g_local {
            for (gj, wj) in g[..dim].iter_mut().zip(&w[..dim]) {
                *gj += cfg.l2 * wj;
            }
        }
        l + reg
    };
    for t in 1..=cfg.epochs {
        let loss = objective(&w, Some(&mut grad));
        let c1 = 1.0 - b1.powi(t as i32);
        let c2 = 1.0 - b2.powi(t as i32);
        for (((wj, a), b), gj) in w.iter_mut().zip(&mut m1).zip(&mut m2).zip(&grad) {
            *a = b1 * *a + (1.0 - b1) * gj;
            *b = b2 * *b + (1.0 - b2) * gj * gj;
            *wj -= cfg.learning_rate * (*a / c1) / ((*b / c2).sqrt() + eps);
        }
        if t % 50 == 0 {
            tracing::debug!("head training: epoch {t}, loss {loss:.5}");
        }
    }
    let loss = objective(&w, None);
    if !loss.is_finite() || w.iter().any(|v| !v.is_finite()) {
        return Err(HeadError::Training(
            "the fit diverged (non-finite weights); lower --lr or raise --l2".into(),
        ));
    }
    let bias = w[dim];
    w.truncate(dim);
    let mut head = PrmHead {
        format_version: HEAD_FORMAT_VERSION,
        dim,
        mean,
        std,
        weights: w,
        bias,
        model: model.to_string(),
        separator: separator.to_string(),
        training: TrainingSummary {
            train_records: train_idx.len(),
            train_steps: n,
            train_positives: n_pos,
            val_records: val_idx.len(),
            val_steps: xv.len(),
            val_positives: yv.iter().filter(|&&y| y).count(),
            config: cfg.clone(),
            final_loss: loss,
            train_auroc: None,
            val_auroc: None,
            data: data.to_string(),
        },
    };
    let scores = |xs: &[&[f32]]| -> Result<Vec<f64>, HeadError> {
        xs.iter().map(|x| head.score(x)).collect()
    };
    let train_auroc = auroc(&scores(&xt)?, &yt);
    let val_auroc = auroc(&scores(&xv)?, &yv);
    head.training.train_auroc = train_auroc;
    head.training.val_auroc = val_auroc;
    Ok(head)
}

// ------------------------------------------------------------------ scorer

/// A [`StepScorer`] from a trained head: `sigmoid(w · standardize(h) + b)` of the
/// generator's hidden state at the end of the step (after the separator).
///
/// [`StepScorer::score_rationale`] reads a whole rationale in one
/// [`Generator::embed_pieces`] call. Tokens the model reads are reported as judge prompt
/// tokens (it generates none).
pub struct HeadScorer {
    generator: Arc<dyn Generator>,
    head: Arc<PrmHead>,
    name: String,
}

impl HeadScorer {
    /// A scorer reading `head` off `generator`'s hidden states. A head trained on another
    /// model is refused unless `allow_other_model` (its features would mean nothing).
    pub fn new(
        generator: Arc<dyn Generator>,
        head: Arc<PrmHead>,
        allow_other_model: bool,
    ) -> Result<Self, ScoreError> {
        let name = "head".to_string();
        let gen_name = generator.name();
        if head.model != gen_name {
            if allow_other_model {
                tracing::warn!("head trained on '{}' used with '{gen_name}'", head.model);
            } else {
                return Err(ScoreError::Unusable {
                    scorer: name,
                    reason: format!(
                        "the head was trained on '{}', the model is '{gen_name}'",
                        head.model
                    ),
                });
            }
        }
        Ok(Self {
            generator,
            head,
            name,
        })
    }

    /// The head in use.
    pub fn head(&self) -> &PrmHead {
        &self.head
    }

    async fn score_pieces(
        &self,
        problem: &Problem,
        steps: &[&str],
        first: usize,
    ) -> Result<Scored, ScoreError> {
        let (prompt, pieces) = head_input(&problem.question, steps, &self.head.separator);
        let e = self
            .generator
            .embed_pieces(&prompt, &pieces)
            .await
            .map_err(engine_err(&self.name))?;
        if e.vectors.len() != pieces.len() {
            return Err(ScoreError::Unusable {
                scorer: self.name.clone(),
                reason: format!(
                    "the model returned {} hidden states for {} steps",
                    e.vectors.len(),
                    pieces.len()
                ),
            });
        }
        let mut scores = Vec::with_capacity(pieces.len() - first);
        for (i, h) in e.vectors.iter().enumerate().skip(first) {
            let p = self.head.score(h).map_err(|err| ScoreError::Unusable {
                scorer: self.name.clone(),
                reason: err.to_string(),
            })?;
            scores.push(StepScore::new(i, p, self.name.clone()));
        }
        Ok(Scored {
            scores,
            spent: Spent {
                judge_calls: 1,
                judge_prompt_tokens: e.prompt_tokens,
                ..Spent::default()
            },
        })
    }
}

#[async_trait]
impl StepScorer for HeadScorer {
    fn name(&self) -> String {
        self.name.clone()
    }

    async fn score_step(
        &self,
        problem: &Problem,
        prefix: &[Step],
        step: &Step,
        _answer: Option<&str>,
    ) -> Result<Scored, ScoreError> {
        let steps = crate::texts_through(prefix, step);
        self.score_pieces(problem, &steps, prefix.len()).await
    }

    async fn score_rationale(
        &self,
        problem: &Problem,
        rationale: &Rationale,
    ) -> Result<Scored, ScoreError> {
        if rationale.steps.is_empty() {
            return Ok(Scored::default());
        }
        let steps: Vec<&str> = rationale.steps.iter().map(|s| s.text.as_str()).collect();
        self.score_pieces(problem, &steps, 0).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stepwise_model::scripted::ScriptedGenerator;

    fn tmp(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("stepwise-head-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// Records with 5 features; a step is good iff 2·x0 − x1 + 0.3 > 0.
    fn synthetic(n_records: usize) -> Vec<FeatureRecord> {
        let mut s = 42u64;
        let mut u = || (splitmix(&mut s) >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
        (0..n_records)
            .map(|r| {
                let mut features = Vec::new();
                let mut labels = Vec::new();
                for _ in 0..4 {
                    let x: Vec<f32> = (0..5).map(|_| u() as f32 * 3.0 + 1.0).collect();
                    labels.push(2.0 * (x[0] - 1.0) - (x[1] - 1.0) + 0.3 > 0.0);
                    features.push(x);
                }
                FeatureRecord {
                    id: format!("r{r}"),
                    model: "m".into(),
                    separator: "\n\n".into(),
                    labels,
                    features,
                }
            })
            .collect()
    }

    #[test]
    fn logistic_regression_recovers_a_linear_rule() {
        let recs = synthetic(300);
        let cfg = TrainConfig {
            l2: 1e-4,
            epochs: 500,
            ..TrainConfig::default()
        };
        let h = train_head(&recs, "m", "\n\n", "synthetic", &cfg).unwrap();
        let t = &h.training;
        assert_eq!(t.train_records + t.val_records, 300);
        assert_eq!(t.val_records, 60);
        assert_eq!(t.train_steps + t.val_steps, 1200);
        assert!(t.val_auroc.unwrap() > 0.99, "{t:?}");
        assert!(t.train_auroc.unwrap() > 0.99, "{t:?}");
        // Direction of the rule in raw feature units: w_j / std_j ∝ (2, −1, 0, 0, 0).
        let raw: Vec<f64> = h.weights.iter().zip(&h.std).map(|(w, s)| w / s).collect();
        let ratio = raw[1] / raw[0];
        assert!((ratio + 0.5).abs() < 0.1, "{raw:?}");
        for r in &raw[2..] {
            assert!(r.abs() < 0.15 * raw[0], "{raw:?}");
        }
        // A point on the good side scores high, one on the bad side low.
        assert!(h.score(&[3.0, 1.0, 1.0, 1.0, 1.0]).unwrap() > 0.9);
        assert!(h.score(&[-1.0, 3.0, 1.0, 1.0, 1.0]).unwrap() < 0.1);
        // Deterministic.
        assert_eq!(
            h,
            train_head(&recs, "m", "\n\n", "synthetic", &cfg).unwrap()
        );
    }

    #[test]
    fn training_needs_both_classes_and_consistent_dims() {
        let mut recs = synthetic(10);
        for r in &mut recs {
            r.labels.iter_mut().for_each(|l| *l = true);
        }
        assert!(matches!(
            train_head(&recs, "m", "\n\n", "", &TrainConfig::default()),
            Err(HeadError::Training(_))
        ));
        let mut recs = synthetic(10);
        recs[3].features[1].pop();
        let e = train_head(&recs, "m", "\n\n", "", &TrainConfig::default()).unwrap_err();
        assert!(e.to_string().contains("record r3"), "{e}");
        assert!(train_head(&[], "m", "\n\n", "", &TrainConfig::default()).is_err());
    }

    #[test]
    fn split_is_by_record_and_seeded() {
        let (a, b) = split_records(10, 0.2, 1);
        assert_eq!((a.len(), b.len()), (8, 2));
        let mut all: Vec<usize> = a.iter().chain(&b).copied().collect();
        all.sort();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        assert_eq!((a.clone(), b.clone()), split_records(10, 0.2, 1));
        assert_ne!(b, split_records(10, 0.2, 2).1);
        assert_eq!(split_records(10, 0.0, 1).1.len(), 0);
        assert_eq!(split_records(3, 0.01, 1).1.len(), 1);
    }

    #[test]
    fn auroc_and_labels() {
        assert_eq!(auroc(&[0.1, 0.9], &[false, true]), Some(1.0));
        assert_eq!(auroc(&[0.9, 0.1], &[false, true]), Some(0.0));
        assert_eq!(auroc(&[0.5, 0.5], &[false, true]), Some(0.5));
        assert_eq!(auroc(&[0.5, 0.7], &[true, true]), None);
        assert_eq!(
            labels_until_first_error(&[true, true, false, true, false]),
            vec![true, true, false]
        );
        assert_eq!(labels_until_first_error(&[true, true]), vec![true, true]);
        assert_eq!(processbench_labels(3, -1), vec![true, true, true]);
        assert_eq!(processbench_labels(4, 1), vec![true, false, false, false]);
        assert_eq!(
            labels_until_first_error(&processbench_labels(4, 1)),
            vec![true, false]
        );
    }

    fn small_head(model: &str) -> PrmHead {
        PrmHead {
            format_version: HEAD_FORMAT_VERSION,
            dim: 2,
            mean: vec![1.0, 0.0],
            std: vec![2.0, 1.0],
            weights: vec![0.5, -3.0],
            bias: 0.25,
            model: model.into(),
            separator: "\n\n".into(),
            training: TrainingSummary {
                train_records: 1,
                train_steps: 2,
                train_positives: 1,
                val_records: 0,
                val_steps: 0,
                val_positives: 0,
                config: TrainConfig {
                    l2: 0.1,
                    epochs: 3,
                    learning_rate: 0.05,
                    class_balanced: true,
                    val_frac: 0.0,
                    seed: 0,
                },
                final_loss: 0.5,
                train_auroc: Some(1.0),
                val_auroc: None,
                data: "test".into(),
            },
        }
    }

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

    /// Hidden state of the scripted model: (words so far, times "wrong" appears).
    fn scripted() -> Arc<dyn Generator> {
        Arc::new(
            ScriptedGenerator::new(|_, _| String::new()).with_embedder(|_, text| {
                vec![
                    text.split_whitespace().count() as f32,
                    text.matches("wrong").count() as f32,
                ]
            }),
        )
    }

    #[tokio::test]
    async fn head_scorer_matches_a_hand_computation() {
        let g = scripted();
        let head = Arc::new(small_head("scripted"));
        let s = HeadScorer::new(g.clone(), head.clone(), false).unwrap();
        let problem = Problem::new("p", "What is 2 + 3?");
        let r = Rationale::from_steps(["2 + 3 = 5", "this is wrong", "so 5"], Some("5".into()));
        let out = s.score_rationale(&problem, &r).await.unwrap();
        // Step k ends at (words, wrongs): (5, 0), (8, 1), (10, 1).
        let expect = |w: f64, x: f64| sigmoid(0.25 + 0.5 * (w - 1.0) / 2.0 - 3.0 * x);
        let want = [expect(5.0, 0.0), expect(8.0, 1.0), expect(10.0, 1.0)];
        assert_eq!(out.scores.len(), 3);
        for (i, (sc, w)) in out.scores.iter().zip(want).enumerate() {
            assert_eq!(sc.step, i);
            assert_eq!(sc.scorer, "head");
            assert!((sc.score - w).abs() < 1e-9, "step {i}: {} vs {w}", sc.score);
        }
        assert_eq!(out.spent.judge_calls, 1);
        assert_eq!(out.spent.judge_prompt_tokens, 5 + 10); // question + steps, in words
        assert_eq!(out.spent.generated_tokens(), 0);

        // Step by step: the same scores, one call per step.
        let one = s
            .score_step(&problem, &r.steps[..1], &r.steps[1], None)
            .await
            .unwrap();
        assert_eq!(one.scores.len(), 1);
        assert_eq!(one.scores[0].step, 1);
        assert!((one.scores[0].score - want[1]).abs() < 1e-9);
        assert_eq!(one.spent.judge_prompt_tokens, 5 + 8);

        // A head of another model is refused unless allowed.
        let other = Arc::new(small_head("llama.cpp:other"));
        assert!(matches!(
            HeadScorer::new(g.clone(), other.clone(), false),
            Err(ScoreError::Unusable { .. })
        ));
        assert!(HeadScorer::new(g, other, true).is_ok());
    }

    #[tokio::test]
    async fn extraction_is_resumable_and_tolerates_a_torn_line() {
        let d = tmp("extract");
        let cache = d.join("features.jsonl");
        let g = scripted();
        let recs = vec![
            LabelledRecord {
                id: "a".into(),
                question: "q one".into(),
                steps: vec!["x y".into(), "wrong z".into(), "later".into()],
                good: vec![true, false, true],
            },
            LabelledRecord {
                id: "b".into(),
                question: "q two".into(),
                steps: vec!["fine".into()],
                good: vec![true],
            },
            LabelledRecord {
                id: "c".into(),
                question: "q three".into(),
                steps: vec!["x".into()],
                good: vec![],
            },
        ];
        let mut seen = Vec::new();
        let first = extract_features(g.as_ref(), &recs, "\n\n", &cache, |p| seen.push(*p))
            .await
            .unwrap();
        assert_eq!(seen.len(), 3);
        assert_eq!(first.progress.skipped, 1);
        assert_eq!(first.progress.cached, 0);
        assert_eq!(first.records.len(), 2);
        let a = &first.records[0];
        assert_eq!(a.labels, vec![true, false]);
        assert_eq!(a.features, vec![vec![2.0, 0.0], vec![4.0, 1.0]]);

        // A torn write at the end is dropped; cached ids are not embedded again.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&cache)
            .unwrap();
        f.write_all(b"{\"id\":\"zz\",\"mo").unwrap();
        drop(f);
        let second = extract_features(g.as_ref(), &recs, "\n\n", &cache, |_| {})
            .await
            .unwrap();
        assert_eq!(second.progress.cached, 2);
        assert_eq!(second.progress.tokens, 0);
        assert_eq!(second.records, first.records);
        assert_eq!(read_feature_cache(&cache).unwrap().len(), 2);

        // Another model's cache is refused; a corrupt middle line names its place.
        let other =
            Arc::new(ScriptedGenerator::new(|_, _| String::new()).with_embedder(|_, _| vec![0.0]));
        struct Renamed(Arc<ScriptedGenerator>);
        #[async_trait]
        impl Generator for Renamed {
            fn name(&self) -> String {
                "other".into()
            }
            async fn generate(
                &self,
                r: &stepwise_model::GenerateRequest,
            ) -> Result<Vec<stepwise_model::Completion>, EngineError> {
                self.0.generate(r).await
            }
            async fn next_token_logprobs(
                &self,
                p: &Prompt,
                a: &str,
                c: &[String],
            ) -> Result<stepwise_model::NextTokenLogprobs, EngineError> {
                self.0.next_token_logprobs(p, a, c).await
            }
        }
        let e = extract_features(&Renamed(other), &recs, "\n\n", &cache, |_| {})
            .await
            .unwrap_err();
        assert!(e.to_string().contains("model 'scripted'"), "{e}");
        let text = std::fs::read_to_string(&cache).unwrap();
        std::fs::write(&cache, format!("not json\n{text}")).unwrap();
        let e = read_feature_cache(&cache).unwrap_err();
        assert!(e.to_string().contains("features.jsonl:1"), "{e}");
    }
}

#[cfg(test)]
mod spec_tests {
    use super::*;
    use crate::{ScorerSettings, build_scorer};

    #[test]
    fn spec_builds_a_head_scorer_from_a_file() {
        let d = std::env::temp_dir().join(format!("stepwise-head-{}-spec", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("h.json");
        let mut h = tests_head();
        h.model = "scripted".into();
        h.save(&p).unwrap();
        let g: Arc<dyn Generator> =
            Arc::new(stepwise_model::scripted::ScriptedGenerator::new(|_, _| {
                String::new()
            }));
        let st = ScorerSettings::default();
        let spec = format!("head:{}", p.display());
        let s = build_scorer(&spec, Some(g.clone()), None, &st).unwrap();
        assert_eq!(s.name(), "head");
        assert_eq!(
            build_scorer(&format!("arith*{spec}"), Some(g.clone()), None, &st)
                .unwrap()
                .name(),
            "arith*head"
        );
        assert!(build_scorer("head", Some(g.clone()), None, &st).is_err());
        assert!(build_scorer(&spec, None, None, &st).is_err());
        let e = build_scorer("head:/nonexistent/h.json", Some(g), None, &st)
            .err()
            .unwrap();
        assert!(e.to_string().contains("/nonexistent/h.json"), "{e}");
    }

    fn tests_head() -> PrmHead {
        let recs: Vec<FeatureRecord> = (0..4)
            .map(|i| FeatureRecord {
                id: format!("r{i}"),
                model: "scripted".into(),
                separator: "\n\n".into(),
                labels: vec![true, false],
                features: vec![vec![1.0 + i as f32, 0.0], vec![0.0, 1.0 + i as f32]],
            })
            .collect();
        let cfg = TrainConfig {
            val_frac: 0.0,
            epochs: 20,
            ..TrainConfig::default()
        };
        train_head(&recs, "scripted", "\n\n", "test", &cfg).unwrap()
    }
}
