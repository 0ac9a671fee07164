//! Feature extraction: the hidden state at the end of every labelled step of a record,
//! as a job of the job runner (one stored unit per record), so an interrupted extraction
//! resumes where it stopped.

use super::{HeadError, head_input};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use stepwise_jobs::{Job, RunKind, RunOptions, RunStore, UnitError, records as records_of};
use stepwise_model::{EngineError, Generator};

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
    /// Records already stored when this call started (a resumed run).
    pub cached: usize,
    /// Records skipped (no labelled step, or too long for the context).
    pub skipped: usize,
    /// Tokens read by the model so far in this run.
    pub tokens: u64,
}

/// What extraction produced.
#[derive(Debug, Clone)]
pub struct Extracted {
    /// One entry per usable record, in input order.
    pub records: Vec<FeatureRecord>,
    pub progress: ExtractProgress,
    /// The run of the store that holds them.
    pub run: stepwise_jobs::RunId,
}

/// Extracting features as runs of the job runner: one unit per record (keyed by its
/// id), so an interrupted extraction continues where it stopped.
pub struct HeadFeatures;

impl RunKind for HeadFeatures {
    const KIND: &'static str = "head-features";
    const VERSION: u32 = 1;
    type Config = FeaturesConfig;
    type Record = FeatureUnit;
}

/// What decides a feature run: the model, the separator and the exact records (their
/// count and a SHA-256 over ids, questions, steps and labels, so a changed source is a
/// new run, never a mix).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeaturesConfig {
    pub model: String,
    pub separator: String,
    /// Where the records came from, as shown to people.
    pub data: String,
    pub records: usize,
    pub records_sha256: String,
}

/// One stored unit: the record's features, or why it has none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum FeatureUnit {
    /// Hidden states of the labelled steps, and the tokens the model read for them.
    Extracted { record: FeatureRecord, tokens: u64 },
    /// No labelled step, or too long for the model's context.
    Skipped { reason: String },
}

struct FeaturesJob<'a> {
    config: FeaturesConfig,
    records: &'a [LabelledRecord],
    generator: &'a dyn Generator,
}

#[async_trait::async_trait]
impl Job for FeaturesJob<'_> {
    type Kind = HeadFeatures;
    type Unit = usize;
    type Tally = (usize, u64);

    fn config(&self) -> &FeaturesConfig {
        &self.config
    }

    fn units(&self) -> Vec<(String, usize)> {
        self.records
            .iter()
            .enumerate()
            .map(|(i, r)| (r.id.clone(), i))
            .collect()
    }

    async fn run_unit(&self, unit: &usize) -> Result<FeatureUnit, UnitError> {
        let rec = &self.records[*unit];
        let labels = labels_until_first_error(&rec.good);
        let n = labels.len().min(rec.steps.len());
        if n == 0 {
            tracing::debug!("record {}: no labelled step, skipped", rec.id);
            return Ok(FeatureUnit::Skipped {
                reason: "no labelled step".into(),
            });
        }
        let (prompt, pieces) = head_input(&rec.question, &rec.steps[..n], &self.config.separator);
        match self.generator.embed_pieces(&prompt, &pieces).await {
            Ok(e) => Ok(FeatureUnit::Extracted {
                record: FeatureRecord {
                    id: rec.id.clone(),
                    model: self.config.model.clone(),
                    separator: self.config.separator.clone(),
                    labels: labels[..n].to_vec(),
                    features: e.vectors,
                },
                tokens: e.prompt_tokens,
            }),
            Err(EngineError::ContextFull { needed, available }) => {
                tracing::warn!(
                    "record {}: {needed} tokens do not fit the context ({available}), skipped",
                    rec.id
                );
                Ok(FeatureUnit::Skipped {
                    reason: format!("{needed} tokens do not fit the context ({available})"),
                })
            }
            Err(source) => Err(Box::new(HeadError::Engine {
                id: rec.id.clone(),
                source,
            })),
        }
    }

    fn tally(&self, t: &mut (usize, u64), r: &FeatureUnit) -> String {
        match r {
            FeatureUnit::Extracted { tokens, .. } => t.1 += tokens,
            FeatureUnit::Skipped { .. } => t.0 += 1,
        }
        format!("{} skipped, {} tokens read", t.0, t.1)
    }
}

fn records_digest(records: &[LabelledRecord]) -> String {
    let mut h = Sha256::new();
    for r in records {
        for part in [r.id.as_str(), r.question.as_str()] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        for s in &r.steps {
            h.update(s.as_bytes());
            h.update([1]);
        }
        h.update(r.good.iter().map(|&g| u8::from(g)).collect::<Vec<u8>>());
        h.update([2]);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Extracts features of `records` with `generator` through the job runner, in `store`
/// (`opts.resume`: [`stepwise_jobs::Resume::Reuse`] reads back or continues the
/// newest run of the same model, separator and records). Records without a labelled step, and records too long for
/// the model's context, are skipped (and stored as skipped, so a resume does not retry
/// them). Returns the features in input order.
pub async fn extract_features(
    store: &dyn RunStore,
    generator: &dyn Generator,
    records: &[LabelledRecord],
    separator: &str,
    data: &str,
    opts: &RunOptions,
) -> Result<Extracted, HeadError> {
    let mut seen = HashSet::new();
    if let Some(r) = records.iter().find(|r| !seen.insert(r.id.as_str())) {
        return Err(HeadError::Training(format!(
            "record id '{}' appears twice",
            r.id
        )));
    }
    let job = FeaturesJob {
        config: FeaturesConfig {
            model: generator.name(),
            separator: separator.to_string(),
            data: data.to_string(),
            records: records.len(),
            records_sha256: records_digest(records),
        },
        records,
        generator,
    };
    let report = stepwise_jobs::run(store, &job, opts)
        .await
        .map_err(job_err)?;
    let mut by_id: HashMap<String, FeatureUnit> = records_of::<HeadFeatures>(store, report.run)
        .map_err(job_err)?
        .into_iter()
        .map(|(u, r)| (u.unit.key, r))
        .collect();
    let mut p = ExtractProgress {
        done: records.len(),
        total: records.len(),
        cached: report.done_before,
        ..Default::default()
    };
    let mut out = Vec::new();
    for rec in records {
        match by_id.remove(&rec.id) {
            Some(FeatureUnit::Extracted { record, tokens }) => {
                p.tokens += tokens;
                out.push(record);
            }
            Some(FeatureUnit::Skipped { .. }) => p.skipped += 1,
            None => {
                return Err(HeadError::Training(format!(
                    "run {}: record {} has no stored features",
                    report.run, rec.id
                )));
            }
        }
    }
    Ok(Extracted {
        records: out,
        progress: p,
        run: report.run,
    })
}

fn job_err(e: stepwise_jobs::JobError) -> HeadError {
    HeadError::Training(format!(
        "feature extraction: {}",
        stepwise_core::error_chain(&e)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::head::test_util::scripted;
    use async_trait::async_trait;
    use stepwise_model::Prompt;

    #[test]
    fn labels_stop_after_the_first_error() {
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

    fn recs() -> Vec<LabelledRecord> {
        vec![
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
        ]
    }

    fn matching() -> RunOptions {
        RunOptions {
            resume: stepwise_jobs::Resume::Reuse,
            stop: stepwise_jobs::Stop::Never,
            ..RunOptions::default()
        }
    }

    #[tokio::test]
    async fn extraction_is_a_resumable_job() {
        let store = stepwise_store::SqliteStore::in_memory().unwrap();
        let g = scripted();
        let first = extract_features(&store, g.as_ref(), &recs(), "\n\n", "test", &matching())
            .await
            .unwrap();
        assert_eq!(first.progress.skipped, 1);
        assert_eq!(first.progress.cached, 0);
        assert_eq!(first.records.len(), 2);
        let a = &first.records[0];
        assert_eq!(a.labels, vec![true, false]);
        assert_eq!(a.features, vec![vec![2.0, 0.0], vec![4.0, 1.0]]);

        // the same records again: every unit is already stored (none is embedded again)
        let second = extract_features(&store, g.as_ref(), &recs(), "\n\n", "test", &matching())
            .await
            .unwrap();
        assert_eq!(second.run, first.run);
        assert_eq!(second.progress.cached, 3);
        assert_eq!(second.records, first.records);

        // changed records are another run; a repeated id is refused
        let mut changed = recs();
        changed[1].steps[0] = "changed".into();
        let third = extract_features(&store, g.as_ref(), &changed, "\n\n", "test", &matching())
            .await
            .unwrap();
        assert_ne!(third.run, first.run);
        let mut twice = recs();
        twice[2].id = "a".into();
        let e = extract_features(&store, g.as_ref(), &twice, "\n\n", "test", &matching())
            .await
            .unwrap_err();
        assert!(e.to_string().contains("'a' appears twice"), "{e}");
    }

    #[tokio::test]
    async fn a_model_failure_fails_the_run_naming_the_record() {
        struct Broken;
        #[async_trait]
        impl Generator for Broken {
            fn name(&self) -> String {
                "broken".into()
            }
            async fn generate(
                &self,
                _: &stepwise_model::GenerateRequest,
            ) -> Result<Vec<stepwise_model::Completion>, EngineError> {
                Err(EngineError::Setup("the model file is damaged".into()))
            }
            async fn next_token_logprobs(
                &self,
                _: &Prompt,
                _: &str,
                _: &[String],
            ) -> Result<stepwise_model::NextTokenLogprobs, EngineError> {
                Err(EngineError::Setup("the model file is damaged".into()))
            }
        }
        let store = stepwise_store::SqliteStore::in_memory().unwrap();
        let e = extract_features(&store, &Broken, &recs(), "\n\n", "test", &matching())
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("unit 'a'"), "{e}");
        let info = store.list_runs().unwrap().pop().unwrap();
        assert_eq!(info.status, stepwise_jobs::RunStatus::Failed);
    }
}
