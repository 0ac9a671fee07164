//! Fitting a head: a seeded train/validation split by record, standardization, and an
//! L2-regularised logistic regression by full-batch Adam; AUROC of the fit on both splits.

use super::features::FeatureRecord;
use super::file::{HEAD_FORMAT_VERSION, PrmHead, TrainingSummary};
use super::{HeadError, sigmoid};
use serde::{Deserialize, Serialize};

/// Settings of [`train_head`]. The defaults are those of `stepwise head train`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// L2 penalty on the weights (over standardized features). The default, 1, is strong:
    /// labelled steps are few next to the model's hidden size (on 265 ProcessBench MATH
    /// records and 576 features, validation AUROC 0.65 at 0.01, 0.70 at 1; see
    /// `docs/results/processbench-head.md`).
    pub l2: f64,
    /// Full-batch Adam steps.
    pub epochs: usize,
    /// Adam's step size.
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
            l2: 1.0,
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
/// `None` without both classes (the one rank-sum implementation, in `stepwise-core`).
pub use stepwise_core::metrics::auroc_scores as auroc;

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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn auroc_counts_ties_half_and_needs_both_classes() {
        assert_eq!(auroc(&[0.1, 0.9], &[false, true]), Some(1.0));
        assert_eq!(auroc(&[0.9, 0.1], &[false, true]), Some(0.0));
        assert_eq!(auroc(&[0.5, 0.5], &[false, true]), Some(0.5));
        assert_eq!(auroc(&[0.5, 0.7], &[true, true]), None);
    }
}
