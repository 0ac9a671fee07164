//! Fixtures shared by the head modules' tests.

use super::{HEAD_FORMAT_VERSION, PrmHead, Targets, TrainConfig, TrainingSummary};
use std::sync::Arc;
use stepwise_model::Generator;
use stepwise_model::scripted::ScriptedGenerator;

/// A fresh temporary folder for one test.
pub(super) fn tmp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("stepwise-head-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A 2-dimensional head for `model`, with hand-picked numbers.
pub(super) fn small_head(model: &str) -> PrmHead {
    PrmHead {
        format_version: HEAD_FORMAT_VERSION,
        dim: 2,
        mean: vec![1.0, 0.0],
        std: vec![2.0, 1.0],
        hidden: None,
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
                ..TrainConfig::default()
            },
            targets: Targets::Hard,
            final_loss: 0.5,
            train_auroc: Some(1.0),
            val_auroc: None,
            train_calibration: None,
            val_calibration: None,
            data: "test".into(),
        },
    }
}

/// Hidden state of the scripted model: (words so far, times "wrong" appears).
pub(super) fn scripted() -> Arc<dyn Generator> {
    Arc::new(
        ScriptedGenerator::new(|_, _| String::new()).with_embedder(|_, text| {
            vec![
                text.split_whitespace().count() as f32,
                text.matches("wrong").count() as f32,
            ]
        }),
    )
}
