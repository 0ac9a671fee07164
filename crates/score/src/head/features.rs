//! Feature extraction: the hidden state at the end of every labelled step of a record,
//! as a job of the job runner (one stored unit per record), so an interrupted extraction
//! resumes where it stopped.

use super::{HeadError, head_input};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use stepwise_core::Problem;
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
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LabelledRecord {
    /// Unique key in the feature cache.
    pub id: String,
    pub question: String,
    pub steps: Vec<String>,
    /// One hard label per step (may be shorter); cut with [`labels_until_first_error`]
    /// for [`Targets::Hard`].
    pub good: Vec<bool>,
    /// Soft labels in `0..=1` of the first steps (MC values), when the source has them:
    /// the targets of [`Targets::Soft`].
    pub values: Option<Vec<f64>>,
    /// Whether the solution's final answer is correct, when known: the target of every
    /// step under [`Targets::Outcome`].
    pub answer_correct: Option<bool>,
}

/// What a head learns for each step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Targets {
    /// Good (1) until the first error, the first error bad (0), later steps unused (the
    /// ProcessBench / PRM800K reading of hard labels).
    #[default]
    Hard,
    /// The step's soft label (an MC value: the share of rollouts from the prefix that
    /// reach the gold answer, Math-Shepherd / OmegaPRM) as a cross-entropy target in
    /// `0..=1`; every step that has one.
    Soft,
    /// Every step of a solution labelled by whether its final answer is correct: an
    /// outcome-supervised value model (OVM; Yu et al. 2023, "Outcome-supervised verifiers
    /// for planning in mathematical reasoning"), whose step score estimates the chance
    /// that the prefix ends in a correct answer.
    Outcome,
}

impl Targets {
    pub const ALL: [Targets; 3] = [Self::Hard, Self::Soft, Self::Outcome];

    pub fn name(self) -> &'static str {
        match self {
            Self::Hard => "hard",
            Self::Soft => "soft",
            Self::Outcome => "outcome",
        }
    }

    fn is_hard(&self) -> bool {
        *self == Self::Hard
    }
}

impl std::fmt::Display for Targets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Targets {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|t| t.name() == s.trim().to_ascii_lowercase())
            .ok_or_else(|| format!("unknown targets '{s}' (expected hard, soft or outcome)"))
    }
}

/// The steps a record trains on under `targets`: (hard labels for evaluation, training
/// targets in `0..=1`), of the same length (0 when the record has nothing to learn).
/// Soft targets are judged against the record's hard labels of the same steps (a step
/// beyond them counts as good when its value is at least one half); outcome targets
/// against the outcome itself.
pub fn record_targets(
    rec: &LabelledRecord,
    targets: Targets,
) -> Result<(Vec<bool>, Vec<f64>), HeadError> {
    let n_steps = rec.steps.len();
    match targets {
        Targets::Hard => {
            let mut labels = labels_until_first_error(&rec.good);
            labels.truncate(n_steps);
            let t = labels.iter().map(|&g| f64::from(u8::from(g))).collect();
            Ok((labels, t))
        }
        Targets::Soft => {
            let values = rec.values.as_ref().ok_or_else(|| {
                HeadError::Training(format!(
                    "record {}: no soft labels (a format that keeps MC values is needed: \
                     annotate's native export or a run)",
                    rec.id
                ))
            })?;
            let n = values.len().min(n_steps);
            if let Some(i) = values[..n]
                .iter()
                .position(|v| !(v.is_finite() && (0.0..=1.0).contains(v)))
            {
                return Err(HeadError::Training(format!(
                    "record {}: soft label of step {i} is {}, not in 0..=1",
                    rec.id, values[i]
                )));
            }
            let labels = (0..n)
                .map(|i| rec.good.get(i).copied().unwrap_or(values[i] >= 0.5))
                .collect();
            Ok((labels, values[..n].to_vec()))
        }
        Targets::Outcome => match rec.answer_correct {
            Some(c) => Ok((vec![c; n_steps], vec![f64::from(u8::from(c)); n_steps])),
            None => Ok((Vec::new(), Vec::new())),
        },
    }
}

/// Hidden states and labels of a record's labelled steps (one line of the cache).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureRecord {
    pub id: String,
    pub model: String,
    pub separator: String,
    /// Hard labels of the steps (what held-out AUROC and calibration are measured on).
    pub labels: Vec<bool>,
    /// Training targets in `0..=1` of the same steps; absent: the labels as 0 and 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets: Option<Vec<f64>>,
    pub features: Vec<Vec<f32>>,
}

impl FeatureRecord {
    /// The training target of step `i`.
    pub fn target(&self, i: usize) -> f64 {
        match &self.targets {
            Some(t) => t[i],
            None => f64::from(u8::from(self.labels[i])),
        }
    }
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
    /// What the labels become (absent in runs of hard labels, as before it was a choice).
    #[serde(default, skip_serializing_if = "Targets::is_hard")]
    pub targets: Targets,
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
    /// The records as the run's problems: stored with the run, so a worker that joins it
    /// (`stepwise worker`) rebuilds the same records ([`join_features`]).
    problems: Vec<Problem>,
    generator: &'a dyn Generator,
}

/// The metadata key under which a record's steps and labels are stored with its problem.
const RECORD_KEY: &str = "head_record";

impl<'a> FeaturesJob<'a> {
    /// The job extracting `records` with `generator` (named `model` in the config): what
    /// [`extract_features`] runs and what [`join_features`] rebuilds from a stored run.
    fn new(
        model: String,
        records: &'a [LabelledRecord],
        separator: &str,
        data: &str,
        targets: Targets,
        generator: &'a dyn Generator,
    ) -> Result<Self, HeadError> {
        let mut seen = HashSet::new();
        if let Some(r) = records.iter().find(|r| !seen.insert(r.id.as_str())) {
            return Err(HeadError::Training(format!(
                "record id '{}' appears twice",
                r.id
            )));
        }
        // every record's targets are checked before a run starts
        let mut usable = 0usize;
        for r in records {
            usable += usize::from(!record_targets(r, targets)?.0.is_empty());
        }
        if usable == 0 && !records.is_empty() {
            return Err(HeadError::Training(format!(
                "none of the {} records has a step to learn under --targets {targets}{}",
                records.len(),
                if targets == Targets::Outcome {
                    " (no record knows whether its final answer is correct)"
                } else {
                    ""
                }
            )));
        }
        let problems = records
            .iter()
            .map(|r| {
                let mut p = Problem::new(r.id.clone(), r.question.clone());
                p.metadata.insert(
                    RECORD_KEY.into(),
                    serde_json::json!({
                        "steps": r.steps,
                        "good": r.good,
                        "values": r.values,
                        "answer_correct": r.answer_correct,
                    }),
                );
                p
            })
            .collect();
        Ok(Self {
            config: FeaturesConfig {
                model,
                separator: separator.to_string(),
                data: data.to_string(),
                targets,
                records: records.len(),
                records_sha256: records_digest(records),
            },
            records,
            problems,
            generator,
        })
    }
}

/// The labelled record a `head-features` run stored as problem `p`.
fn record_of(run: stepwise_jobs::RunId, p: &Problem) -> Result<LabelledRecord, HeadError> {
    #[derive(Deserialize)]
    struct Stored {
        steps: Vec<String>,
        good: Vec<bool>,
        #[serde(default)]
        values: Option<Vec<f64>>,
        #[serde(default)]
        answer_correct: Option<bool>,
    }
    let stored = p.metadata.get(RECORD_KEY).ok_or_else(|| {
        HeadError::Training(format!(
            "run {run}, problem '{}': no {RECORD_KEY} (not a head-features record)",
            p.id
        ))
    })?;
    let s = Stored::deserialize(stored).map_err(|e| {
        HeadError::Training(format!("run {run}, problem '{}', {RECORD_KEY}: {e}", p.id))
    })?;
    Ok(LabelledRecord {
        id: p.id.clone(),
        question: p.question.clone(),
        steps: s.steps,
        good: s.good,
        values: s.values,
        answer_correct: s.answer_correct,
    })
}

#[async_trait::async_trait]
impl Job for FeaturesJob<'_> {
    type Kind = HeadFeatures;
    type Unit = usize;
    type Tally = (usize, u64);

    fn config(&self) -> &FeaturesConfig {
        &self.config
    }

    fn problems(&self) -> &[Problem] {
        &self.problems
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
        let (labels, targets) =
            record_targets(rec, self.config.targets).map_err(|e| Box::new(e) as UnitError)?;
        let n = labels.len();
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
                    labels,
                    targets: (!self.config.targets.is_hard()).then_some(targets),
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
        // soft labels and outcomes only when present (digests of hard records unchanged)
        if let Some(v) = &r.values {
            h.update([3]);
            for x in v {
                h.update(x.to_le_bytes());
            }
        }
        if let Some(c) = r.answer_correct {
            h.update([4, u8::from(c)]);
        }
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
    targets: Targets,
    opts: &RunOptions,
) -> Result<Extracted, HeadError> {
    let job = FeaturesJob::new(
        generator.name(),
        records,
        separator,
        data,
        targets,
        generator,
    )?;
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

/// Joins the stored `head-features` run `run` of `store` as one more worker (`stepwise
/// worker`): the job is rebuilt by the same constructor as [`extract_features`]'s, from
/// the records stored with the run and its config, on this worker's own `generator`
/// (the run's model, wherever this worker loads or reaches it), and claims units until
/// none is left. The head is trained by `stepwise head train` over the finished run.
pub async fn join_features(
    store: &dyn RunStore,
    run: stepwise_jobs::RunId,
    generator: &dyn Generator,
    opts: &RunOptions,
) -> Result<stepwise_jobs::RunReport, HeadError> {
    let info = store.run(run).map_err(|e| job_err(e.into()))?;
    let stored = stepwise_jobs::stored_config::<HeadFeatures>(&info).map_err(job_err)?;
    let mine = generator.name();
    if stepwise_model::model_identity(&mine) != stepwise_model::model_identity(&stored.model) {
        return Err(HeadError::Training(format!(
            "run {run} extracts features of model '{}', but this worker's backend is '{mine}' (join with the same model)",
            stored.model
        )));
    }
    let problems = store.problems(run).map_err(|e| job_err(e.into()))?;
    if problems.is_empty() && stored.records > 0 {
        return Err(HeadError::Training(format!(
            "run {run} does not store its records (it was made before head-features runs kept them): continue it with `stepwise head train`"
        )));
    }
    let records = problems
        .iter()
        .map(|p| record_of(run, p))
        .collect::<Result<Vec<_>, _>>()?;
    // the stored model name (another worker's endpoint may be in it); the records'
    // count and digest are the runner's to compare with the stored config
    let job = FeaturesJob::new(
        stored.model.clone(),
        &records,
        &stored.separator,
        &stored.data,
        stored.targets,
        generator,
    )?;
    stepwise_jobs::join_run(store, run, &job, opts)
        .await
        .map_err(job_err)
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
                ..Default::default()
            },
            LabelledRecord {
                id: "b".into(),
                question: "q two".into(),
                steps: vec!["fine".into()],
                good: vec![true],
                ..Default::default()
            },
            LabelledRecord {
                id: "c".into(),
                question: "q three".into(),
                steps: vec!["x".into()],
                good: vec![],
                ..Default::default()
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
        let first = extract_features(
            &store,
            g.as_ref(),
            &recs(),
            "\n\n",
            "test",
            Targets::Hard,
            &matching(),
        )
        .await
        .unwrap();
        assert_eq!(first.progress.skipped, 1);
        assert_eq!(first.progress.cached, 0);
        assert_eq!(first.records.len(), 2);
        let a = &first.records[0];
        assert_eq!(a.labels, vec![true, false]);
        assert_eq!(a.features, vec![vec![2.0, 0.0], vec![4.0, 1.0]]);

        // the same records again: every unit is already stored (none is embedded again)
        let second = extract_features(
            &store,
            g.as_ref(),
            &recs(),
            "\n\n",
            "test",
            Targets::Hard,
            &matching(),
        )
        .await
        .unwrap();
        assert_eq!(second.run, first.run);
        assert_eq!(second.progress.cached, 3);
        assert_eq!(second.records, first.records);

        // changed records are another run; a repeated id is refused
        let mut changed = recs();
        changed[1].steps[0] = "changed".into();
        let third = extract_features(
            &store,
            g.as_ref(),
            &changed,
            "\n\n",
            "test",
            Targets::Hard,
            &matching(),
        )
        .await
        .unwrap();
        assert_ne!(third.run, first.run);
        let mut twice = recs();
        twice[2].id = "a".into();
        let e = extract_features(
            &store,
            g.as_ref(),
            &twice,
            "\n\n",
            "test",
            Targets::Hard,
            &matching(),
        )
        .await
        .unwrap_err();
        assert!(e.to_string().contains("'a' appears twice"), "{e}");
    }

    /// A generator that delegates to `inner` under another name, and fails to embed a
    /// record whose question contains `fail_on`.
    struct Other {
        inner: std::sync::Arc<dyn Generator>,
        name: &'static str,
        fail_on: Option<&'static str>,
    }

    #[async_trait]
    impl Generator for Other {
        fn name(&self) -> String {
            self.name.into()
        }
        async fn generate(
            &self,
            r: &stepwise_model::GenerateRequest,
        ) -> Result<Vec<stepwise_model::Completion>, EngineError> {
            self.inner.generate(r).await
        }
        async fn next_token_logprobs(
            &self,
            p: &Prompt,
            a: &str,
            c: &[String],
        ) -> Result<stepwise_model::NextTokenLogprobs, EngineError> {
            self.inner.next_token_logprobs(p, a, c).await
        }
        async fn embed_pieces(
            &self,
            prompt: &Prompt,
            pieces: &[String],
        ) -> Result<stepwise_model::PieceEmbeddings, EngineError> {
            let text = format!("{prompt:?}");
            if self.fail_on.is_some_and(|q| text.contains(q)) {
                return Err(EngineError::Setup("this machine's GPU fell off".into()));
            }
            self.inner.embed_pieces(prompt, pieces).await
        }
    }

    #[tokio::test]
    async fn a_worker_joins_a_feature_run_from_its_stored_records() {
        let dir = crate::head::test_util::tmp("join");
        let one = stepwise_store::SqliteStore::open(dir.join("one.sqlite")).unwrap();
        let want = extract_features(
            &one,
            scripted().as_ref(),
            &recs(),
            "\n\n",
            "test",
            Targets::Hard,
            &matching(),
        )
        .await
        .unwrap();
        // the starting machine stops at record b (after a is stored) ...
        let shared = stepwise_store::SqliteStore::open(dir.join("shared.sqlite")).unwrap();
        let dying = Other {
            inner: scripted(),
            name: "scripted@machine-1",
            fail_on: Some("q two"),
        };
        let e = extract_features(
            &shared,
            &dying,
            &recs(),
            "\n\n",
            "test",
            Targets::Hard,
            &matching(),
        )
        .await
        .unwrap_err();
        assert!(e.to_string().contains("unit 'b'"), "{e}");
        // ... a worker on another model is refused, naming both ...
        let other = Other {
            inner: scripted(),
            name: "another-model",
            fail_on: None,
        };
        let e = join_features(&shared, want.run, &other, &matching())
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("'scripted@machine-1'") && e.contains("'another-model'"),
            "{e}"
        );
        // ... and one on the same model through its own endpoint does the rest from the
        // records stored with the run: the same units as one process's
        let worker = Other {
            inner: scripted(),
            name: "scripted@machine-2",
            fail_on: None,
        };
        let r = join_features(&shared, want.run, &worker, &matching())
            .await
            .unwrap();
        assert_eq!((r.done_before, r.done_now, r.total), (1, 2, 3));
        let units = |s: &dyn RunStore| -> Vec<(String, serde_json::Value)> {
            let mut u: Vec<_> = s
                .units(want.run)
                .unwrap()
                .into_iter()
                .map(|u| (u.unit.key, u.unit.payload))
                .collect();
            u.sort_by(|a, b| a.0.cmp(&b.0));
            u
        };
        let mut expected = units(&one);
        // the model name in a record is the run's (the starting machine's)
        for (_, v) in &mut expected {
            if let Some(m) = v.pointer_mut("/record/model") {
                *m = "scripted@machine-1".into();
            }
        }
        assert_eq!(units(&shared), expected);
        assert_eq!(
            shared.run(want.run).unwrap().status,
            stepwise_jobs::RunStatus::Done
        );
    }

    #[tokio::test]
    async fn soft_and_outcome_targets_use_every_step_that_has_one() {
        let store = stepwise_store::SqliteStore::in_memory().unwrap();
        let g = scripted();
        let mut rs = recs();
        rs[0].values = Some(vec![0.75, 0.25, 0.5]);
        rs[0].answer_correct = Some(false);
        rs[1].values = Some(vec![1.0]);
        rs[1].answer_correct = Some(true);
        // record c has no value and no outcome: skipped under both
        rs[2].values = Some(Vec::new());
        let soft = extract_features(
            &store,
            g.as_ref(),
            &rs,
            "\n\n",
            "t",
            Targets::Soft,
            &matching(),
        )
        .await
        .unwrap();
        assert_eq!(soft.progress.skipped, 1);
        let a = &soft.records[0];
        // all three steps (no cut at the first error), hard labels kept for evaluation
        assert_eq!(a.features.len(), 3);
        assert_eq!(a.targets, Some(vec![0.75, 0.25, 0.5]));
        assert_eq!(a.labels, vec![true, false, true]);
        assert_eq!(a.target(1), 0.25);

        let out = extract_features(
            &store,
            g.as_ref(),
            &rs,
            "\n\n",
            "t",
            Targets::Outcome,
            &matching(),
        )
        .await
        .unwrap();
        assert_ne!(out.run, soft.run);
        assert_eq!(out.records[0].targets, Some(vec![0.0; 3]));
        assert_eq!(out.records[0].labels, vec![false; 3]);
        assert_eq!(out.records[1].targets, Some(vec![1.0]));

        // soft labels out of range, or none, are refused before a run starts
        let runs = store.list_runs().unwrap().len();
        rs[1].values = Some(vec![1.5]);
        let e = extract_features(
            &store,
            g.as_ref(),
            &rs,
            "\n\n",
            "t",
            Targets::Soft,
            &matching(),
        )
        .await
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("record b: soft label of step 0 is 1.5"),
            "{e}"
        );
        let e = extract_features(
            &store,
            g.as_ref(),
            &recs(),
            "\n\n",
            "t",
            Targets::Soft,
            &matching(),
        )
        .await
        .unwrap_err();
        assert!(e.to_string().contains("record a: no soft labels"), "{e}");
        let e = extract_features(
            &store,
            g.as_ref(),
            &recs(),
            "\n\n",
            "t",
            Targets::Outcome,
            &matching(),
        )
        .await
        .unwrap_err();
        assert!(e.to_string().contains("final answer is correct"), "{e}");
        assert_eq!(store.list_runs().unwrap().len(), runs);
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
        let e = extract_features(
            &store,
            &Broken,
            &recs(),
            "\n\n",
            "test",
            Targets::Hard,
            &matching(),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(e.contains("unit 'a'"), "{e}");
        let info = store.list_runs().unwrap().pop().unwrap();
        assert_eq!(info.status, stepwise_jobs::RunStatus::Failed);
    }
}
