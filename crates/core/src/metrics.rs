//! Pure measures shared by evaluation and the Python package: calibration (ECE, Brier,
//! AUROC, reliability bins) and ProcessBench's per-subset F1. No I/O; they live here so
//! that crates which must stay small (the Python wheel) use the same code as `eval`.

use serde::{Deserialize, Serialize};

/// Number of equal-width bins used for ECE and reliability diagrams.
pub const ECE_BINS: usize = 15;

/// One bin of a reliability diagram.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bin {
    pub lo: f64,
    pub hi: f64,
    pub count: usize,
    /// Mean predicted probability in the bin (`None` if empty).
    pub confidence: Option<f64>,
    /// Share of positive outcomes in the bin (`None` if empty).
    pub accuracy: Option<f64>,
}

/// Equal-width bins over [0, 1]; a probability of exactly 1 falls in the last bin.
/// Probabilities are clamped to [0, 1]; NaN counts as 0.
pub fn reliability_bins(pairs: &[(f64, bool)], n_bins: usize) -> Vec<Bin> {
    let n_bins = n_bins.max(1);
    let mut sum_p = vec![0.0; n_bins];
    let mut sum_y = vec![0usize; n_bins];
    let mut count = vec![0usize; n_bins];
    for &(p, y) in pairs {
        let p = clamp01(p);
        let b = ((p * n_bins as f64).floor() as usize).min(n_bins - 1);
        sum_p[b] += p;
        sum_y[b] += usize::from(y);
        count[b] += 1;
    }
    (0..n_bins)
        .map(|b| Bin {
            lo: b as f64 / n_bins as f64,
            hi: (b + 1) as f64 / n_bins as f64,
            count: count[b],
            confidence: (count[b] > 0).then(|| sum_p[b] / count[b] as f64),
            accuracy: (count[b] > 0).then(|| sum_y[b] as f64 / count[b] as f64),
        })
        .collect()
}

fn clamp01(p: f64) -> f64 {
    if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) }
}

/// Expected calibration error: `sum_b |B_b|/N * |acc(B_b) - conf(B_b)|` over [`ECE_BINS`] bins.
pub fn ece(pairs: &[(f64, bool)]) -> f64 {
    let n = pairs.len();
    if n == 0 {
        return 0.0;
    }
    reliability_bins(pairs, ECE_BINS)
        .iter()
        .filter_map(|b| Some(b.count as f64 / n as f64 * (b.accuracy? - b.confidence?).abs()))
        .sum()
}

/// Brier score: mean squared difference between probability and outcome.
pub fn brier(pairs: &[(f64, bool)]) -> f64 {
    if pairs.is_empty() {
        return 0.0;
    }
    pairs
        .iter()
        .map(|&(p, y)| (clamp01(p) - f64::from(u8::from(y))).powi(2))
        .sum::<f64>()
        / pairs.len() as f64
}

/// Area under the ROC curve via the Mann–Whitney U statistic with average ranks
/// for ties (a tie between a positive and a negative counts one half).
/// `None` when there are no positives or no negatives.
pub fn auroc(pairs: &[(f64, bool)]) -> Option<f64> {
    let (scores, labels): (Vec<f64>, Vec<bool>) =
        pairs.iter().map(|&(p, y)| (clamp01(p), y)).unzip();
    auroc_scores(&scores, &labels)
}

/// Area under the ROC curve of `scores` for the positives in `labels` (ties count half);
/// `None` without both classes.
pub fn auroc_scores(scores: &[f64], labels: &[bool]) -> Option<f64> {
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

// ProcessBench (Zheng et al., 2024): earliest-error accuracy and F1 of one subset.

/// The index meaning "no erroneous step".
pub const NO_ERROR: i64 = -1;

/// A model's answer for one sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "index")]
pub enum Prediction {
    /// A first-error index (`-1` for "no error").
    Index(i64),
    /// The model's answer could not be read as an index; always counted as wrong.
    Unparseable,
}

impl Prediction {
    /// The index, if one was read.
    pub fn index(self) -> Option<i64> {
        match self {
            Self::Index(i) => Some(i),
            Self::Unparseable => None,
        }
    }
}

/// Metrics of one subset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubsetMetrics {
    pub subset: String,
    /// Samples with `label >= 0`.
    pub n_erroneous: usize,
    /// Samples with `label == -1`.
    pub n_correct: usize,
    /// Erroneous samples whose predicted index equals the label.
    pub erroneous_hits: usize,
    /// Correct samples predicted `-1`.
    pub correct_hits: usize,
    /// Predictions that could not be read (counted as wrong).
    pub unparseable: usize,
    /// `erroneous_hits / n_erroneous`; `None` when the subset has no erroneous sample.
    pub acc_erroneous: Option<f64>,
    /// `correct_hits / n_correct`; `None` when the subset has no correct sample.
    pub acc_correct: Option<f64>,
    /// Harmonic mean of the two accuracies (0 when both are 0); `None` when either is undefined.
    pub f1: Option<f64>,
}

/// Harmonic mean of two accuracies, 0 when both are 0.
pub fn harmonic_f1(a: f64, b: f64) -> f64 {
    if a + b == 0.0 {
        0.0
    } else {
        2.0 * a * b / (a + b)
    }
}

/// Metrics of one subset from `(label, prediction)` pairs.
pub fn subset_metrics(
    subset: &str,
    pairs: impl IntoIterator<Item = (i64, Prediction)>,
) -> SubsetMetrics {
    let (mut n_err, mut n_cor, mut hit_err, mut hit_cor, mut unparseable) = (0, 0, 0, 0, 0);
    for (label, pred) in pairs {
        if pred == Prediction::Unparseable {
            unparseable += 1;
        }
        let hit = pred.index() == Some(label);
        if label == NO_ERROR {
            n_cor += 1;
            hit_cor += usize::from(hit);
        } else {
            n_err += 1;
            hit_err += usize::from(hit);
        }
    }
    let acc_erroneous = (n_err > 0).then(|| hit_err as f64 / n_err as f64);
    let acc_correct = (n_cor > 0).then(|| hit_cor as f64 / n_cor as f64);
    let f1 = match (acc_erroneous, acc_correct) {
        (Some(a), Some(b)) => Some(harmonic_f1(a, b)),
        _ => None,
    };
    SubsetMetrics {
        subset: subset.to_string(),
        n_erroneous: n_err,
        n_correct: n_cor,
        erroneous_hits: hit_err,
        correct_hits: hit_cor,
        unparseable,
        acc_erroneous,
        acc_correct,
        f1,
    }
}
