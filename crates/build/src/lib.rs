//! Training data builders: stored `solve` / `scale` runs (samples, verdicts, step scores)
//! and `annotate` runs (step labels) become the datasets trainers read.
//!
//! - [`sft`]: per problem, samples selected by a rule ([`rules::SftRule`]: verified,
//!   majority-voted, top-k by stored score, shortest correct, every step labelled good), filtered
//!   ([`rules::Filters`]) and deduplicated ([`rules::Dedup`]), written as TRL SFT data
//!   (`messages`, or `prompt`/`completion`).
//! - [`pairs`]: preference pairs in TRL's DPO format (`prompt`, `chosen`, `rejected`) by
//!   a rule ([`rules::PairRule`]: verified with a score margin, QCRD contrastive, IPO-style
//!   step intervention at the first wrong step by `arith` truth, stored score or annotate
//!   label, which regenerates with the policy), optionally enriched with
//!   each side's rationale.
//!
//! Both run as a [`job::BuildJob`] through the job runner (kind `data-build`: one unit
//! per problem, resumable, a progress bar), and the output file is written from the
//! stored records with a manifest (`OUT.manifest.json`) of the rule and the counts.
//!
//! **Judgment pairs** (self-rationalization, Trivedi et al. 2024): a run scored by the
//! `likert` scorer keeps each sample's judgments ([`stepwise_score::LikertRecord`] in its
//! stored step scores, read into [`candidates::Candidate::likert`]); the pair rule
//! `likert-judgments` ([`rules::PairRule::Judgments`]) makes each sample's best- and
//! worst-rated judgments a pair whose prompt is the judge prompt.

pub mod candidates;
pub mod job;
pub mod rules;

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use stepwise_data::parquet_io::Format;
use stepwise_jobs::{JobError, RunInfo, RunOptions, RunStore};
use stepwise_model::Generator;

pub use job::{Build, BuildConfig, BuildJob, BuildRecord, BuildSpec, SftFormat};
pub use rules::{Dedup, Filters, Locate, PairRule, SftRule};

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Store(#[from] stepwise_store::StoreError),
    #[error(transparent)]
    Job(#[from] JobError),
    #[error(transparent)]
    Data(#[from] stepwise_data::DataError),
    /// A source run cannot be read as training data.
    #[error("{0}")]
    Source(String),
    #[error("{0}")]
    Config(String),
}

/// A chat message as TRL reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn user(c: impl Into<String>) -> Self {
        Self {
            role: "user".into(),
            content: c.into(),
        }
    }
    pub fn assistant(c: impl Into<String>) -> Self {
        Self {
            role: "assistant".into(),
            content: c.into(),
        }
    }
}

/// One SFT example: `messages`, or `prompt` + `completion` (TRL's conversational
/// layouts), and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SftRow {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<Message>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<Vec<Message>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion: Option<Vec<Message>>,
    /// The problem id.
    pub id: String,
    pub answer: Option<String>,
    pub correct: Option<bool>,
    pub score: Option<f64>,
    /// `RUN/UNIT#SAMPLE` of the stored sample.
    pub source: String,
}

/// One preference pair in TRL's conversational DPO layout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairRow {
    pub prompt: Vec<Message>,
    pub chosen: Vec<Message>,
    pub rejected: Vec<Message>,
    pub id: String,
    /// The pair rule that made it.
    pub rule: String,
    pub chosen_score: Option<f64>,
    pub rejected_score: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chosen_rationale: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_rationale: Option<String>,
    /// Step intervention: the steps both sides share before the wrong step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_steps: Option<usize>,
}

/// The manifest written beside the output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    /// The `data-build` run that holds the rows.
    pub build_run: i64,
    pub output: String,
    pub config: BuildConfig,
    pub problems: usize,
    pub problems_with_rows: usize,
    pub rows: usize,
    /// What happened to the candidates, summed over problems.
    pub counts: rules::Counts,
}

/// What a build did.
#[derive(Debug, Clone)]
pub struct BuildSummary {
    pub manifest: Manifest,
    pub manifest_path: PathBuf,
}

/// The manifest path of an output: `OUT.manifest.json` beside it.
pub fn manifest_path(out: &Path) -> PathBuf {
    let mut s = out.as_os_str().to_owned();
    s.push(".manifest.json");
    PathBuf::from(s)
}

/// The build job of `config`: its source runs read from `store` into the candidate
/// pool. What [`build`] runs and what a worker joining a stored `data-build` run
/// ([`join`]) rebuilds, so both do the same units the same way.
pub fn prepare(
    store: &dyn RunStore,
    config: BuildConfig,
    policy: Option<Arc<dyn Generator>>,
) -> Result<BuildJob, BuildError> {
    if config.sources.is_empty() {
        return Err(BuildError::Config("no source runs given".into()));
    }
    let pool = candidates::load(store, &config.sources)?;
    BuildJob::new(config, pool, policy)
}

/// Whether a worker joining the stored `data-build` run `info` needs a policy model (its
/// build regenerates continuations: step intervention).
pub fn join_needs_policy(info: &RunInfo) -> Result<bool, BuildError> {
    Ok(stepwise_jobs::stored_config::<Build>(info)?.needs_policy())
}

/// Joins the stored `data-build` run `run` of `store` as one more worker
/// (`stepwise worker`): the job is rebuilt from the run's stored config by [`prepare`],
/// with this worker's own `policy` (the run's model, reached wherever this worker reaches
/// it; only step intervention needs one), and claims units until none is left. The
/// output file is written by the command that started the build (or by that command
/// again with `--resume RUN`), on its own machine.
pub async fn join(
    store: &dyn RunStore,
    run: stepwise_jobs::RunId,
    policy: Option<Arc<dyn Generator>>,
    opts: &RunOptions,
) -> Result<stepwise_jobs::RunReport, BuildError> {
    let info = store.run(run)?;
    let config = stepwise_jobs::stored_config::<Build>(&info)?;
    if let (Some(stored), Some(mine)) = (&config.policy, &policy) {
        let mine = mine.name();
        if stepwise_model::model_identity(&mine) != stepwise_model::model_identity(stored) {
            return Err(BuildError::Config(format!(
                "run {run} was made with model '{stored}', but this worker's backend is '{mine}' (join with the same model)"
            )));
        }
    }
    let job = prepare(store, config, policy)?;
    Ok(stepwise_jobs::join_run(store, run, &job, opts).await?)
}

/// Reads the sources, runs the build job (resuming as `opts` says) and writes `out`
/// (JSONL, or Parquet by extension) and its manifest, both whole or not at all.
pub async fn build(
    store: &dyn RunStore,
    config: BuildConfig,
    policy: Option<Arc<dyn Generator>>,
    out: &Path,
    opts: &RunOptions,
) -> Result<BuildSummary, BuildError> {
    let format = Format::from_path(out).ok_or_else(|| {
        BuildError::Config(format!(
            "{}: unknown output type (expected .jsonl or .parquet)",
            out.display()
        ))
    })?;
    let job = prepare(store, config.clone(), policy)?;
    let report = stepwise_jobs::run(store, &job, opts).await?;
    let units = stepwise_jobs::records::<Build>(store, report.run)?;
    // rows in the order of the job's units (the problems' order)
    let order: std::collections::HashMap<String, usize> = stepwise_jobs::Job::units(&job)
        .into_iter()
        .enumerate()
        .map(|(i, (k, _))| (k, i))
        .collect();
    let mut recs: Vec<BuildRecord> = units.into_iter().map(|(_, r)| r).collect();
    recs.sort_by_key(|r| order.get(&r.problem_id).copied().unwrap_or(usize::MAX));
    let mut rows: Vec<serde_json::Map<String, serde_json::Value>> = Vec::new();
    let mut counts = rules::Counts::new();
    let mut with_rows = 0;
    for r in &recs {
        for (k, v) in &r.counts {
            *counts.entry(k.clone()).or_default() += v;
        }
        let n = rows.len();
        for v in r
            .sft
            .iter()
            .map(serde_json::to_value)
            .chain(r.pairs.iter().map(serde_json::to_value))
        {
            match v {
                Ok(serde_json::Value::Object(m)) => rows.push(m),
                _ => {
                    return Err(BuildError::Config(format!(
                        "a row of {} did not serialize",
                        r.problem_id
                    )));
                }
            }
        }
        with_rows += usize::from(rows.len() > n);
    }
    match format {
        Format::Parquet => stepwise_data::parquet_io::write_parquet_records(out, &rows)?,
        Format::Jsonl => stepwise_data::atomic::write_atomically(out, |file| {
            stepwise_data::jsonl::write_jsonl(std::io::BufWriter::new(file), &rows).map_err(|e| {
                stepwise_data::DataError::Io {
                    path: out.to_path_buf(),
                    source: e,
                }
            })
        })?,
    }
    let manifest = Manifest {
        format_version: 1,
        build_run: report.run,
        output: out.display().to_string(),
        config,
        problems: recs.len(),
        problems_with_rows: with_rows,
        rows: rows.len(),
        counts,
    };
    let mpath = manifest_path(out);
    let text = serde_json::to_string_pretty(&manifest)
        .map_err(|e| BuildError::Config(format!("manifest: {e}")))?;
    stepwise_data::atomic::write_atomically(&mpath, |file| {
        use std::io::Write;
        file.write_all(text.as_bytes())
            .and_then(|_| file.write_all(b"\n"))
            .map_err(|e| stepwise_data::DataError::Io {
                path: mpath.clone(),
                source: e,
            })
    })?;
    Ok(BuildSummary {
        manifest,
        manifest_path: mpath,
    })
}
