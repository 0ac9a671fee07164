//! Running a step scorer (or a critic model) over ProcessBench records, as a job of the
//! job runner: one unit per record (keyed `subset/id`), its [`PbResult`] stored in the
//! run store, so an interrupted run continues where it stopped (rerunning the same
//! command finds the unfinished run by its config).

use crate::EvalError;
use crate::processbench::{PbRecord, PbResult, parse_critic};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use stepwise_core::{Problem, Rationale};
use stepwise_jobs::{Job, RunKind, RunOptions, RunStore, UnitError, records};
use stepwise_model::{ChatMessage, GenerateRequest, Generator, Prompt, SamplingParams};
use stepwise_score::StepScorer;
use stepwise_store::{SampleRow, StepScoreRow, UnitRecord};

/// How first-error indices are predicted.
#[derive(Clone)]
pub enum PbMode {
    /// Every step scored by a [`StepScorer`]; a threshold turns scores into an index later.
    Scorer(Arc<dyn StepScorer>),
    /// A model asked (with the benchmark's prompt) for the index of the first wrong paragraph.
    Critic {
        generator: Arc<dyn Generator>,
        params: SamplingParams,
    },
}

impl PbMode {
    pub fn name(&self) -> String {
        match self {
            Self::Scorer(s) => s.name(),
            Self::Critic { generator, .. } => format!("critic:{}", generator.name()),
        }
    }
}

/// One record to evaluate and the subset it belongs to.
#[derive(Debug, Clone)]
pub struct PbItem {
    pub subset: String,
    pub record: PbRecord,
}

/// Evaluates one record.
pub async fn evaluate_one(mode: &PbMode, item: &PbItem) -> Result<PbResult, EvalError> {
    let r = &item.record;
    let mut out = PbResult {
        id: r.id.clone(),
        subset: item.subset.clone(),
        label: r.label,
        n_steps: r.steps.len(),
        scores: Vec::new(),
        critic: None,
        generated_tokens: 0,
        prompt_tokens: 0,
        problem: r.problem.clone(),
        steps: r.steps.clone(),
        details: Vec::new(),
    };
    match mode {
        PbMode::Scorer(scorer) => {
            let problem = Problem::new(r.id.clone(), r.problem.clone());
            let rationale = Rationale::from_steps(r.steps.iter().cloned(), None);
            let scored = scorer
                .score_rationale(&problem, &rationale)
                .await
                .map_err(|e| EvalError::Scorer {
                    id: r.id.clone(),
                    reason: stepwise_core::error_chain(&e),
                })?;
            if scored.scores.len() != r.steps.len() {
                return Err(EvalError::Scorer {
                    id: r.id.clone(),
                    reason: format!(
                        "scorer {} returned {} scores for {} steps",
                        scorer.name(),
                        scored.scores.len(),
                        r.steps.len()
                    ),
                });
            }
            out.scores = scored.scores.iter().map(|s| s.score).collect();
            out.details = scored
                .scores
                .iter()
                .map(|s| s.detail.clone().unwrap_or_default())
                .collect();
            out.generated_tokens = scored.spent.generated_tokens();
            out.prompt_tokens =
                scored.spent.judge_prompt_tokens + scored.spent.policy_prompt_tokens;
        }
        PbMode::Critic { generator, params } => {
            let req = GenerateRequest {
                prompt: Prompt::Chat(vec![ChatMessage::user(crate::processbench::critic_prompt(
                    &r.problem, &r.steps,
                ))]),
                assistant_prefix: String::new(),
                params: SamplingParams {
                    n: 1,
                    ..params.clone()
                },
            };
            let completions = generator
                .generate(&req)
                .await
                .map_err(|e| EvalError::Scorer {
                    id: r.id.clone(),
                    reason: stepwise_core::error_chain(&e),
                })?;
            let Some(c) = completions.into_iter().next() else {
                return Err(EvalError::Scorer {
                    id: r.id.clone(),
                    reason: "the critic model returned no completion".into(),
                });
            };
            out.critic = Some(parse_critic(&c.text, r.steps.len()));
            out.generated_tokens = c.generated_tokens;
            out.prompt_tokens = c.prompt_tokens;
            out.details = vec![c.text];
        }
    }
    Ok(out)
}

/// Everything that decides a ProcessBench run's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PbConfig {
    /// Subsets, in order.
    pub subsets: Vec<String>,
    pub limit: Option<usize>,
    pub balanced: bool,
    /// The scorer spec as given (`judge`, `arith`, `critic`, …), with the servers of
    /// `prm:URL` parts left out (`prm`: [`stepwise_score::split_servers`]).
    pub spec: String,
    /// The scorer's (or critic's) name with its model.
    pub mode: String,
    /// Tokens the critic may generate (critic mode).
    pub critic_max_tokens: u32,
    /// A JSONL file in ProcessBench's format scored instead of the shipped subsets
    /// (`eval processbench --data FILE`; its records form one subset named after the
    /// file). Absent in runs of the shipped subsets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

/// ProcessBench runs.
pub struct ProcessBench;

impl RunKind for ProcessBench {
    const KIND: &'static str = "eval-processbench";
    const VERSION: u32 = 1;
    type Config = PbConfig;
    type Record = PbResult;
}

/// Scoring ProcessBench records with one mode.
pub struct PbJob {
    config: PbConfig,
    items: Vec<PbItem>,
    mode: PbMode,
}

impl PbJob {
    /// The job over `items` (records of `config.subsets`, selected by `limit`/`balanced`).
    pub fn new(config: PbConfig, items: Vec<PbItem>, mode: PbMode) -> Self {
        Self {
            config,
            items,
            mode,
        }
    }

    /// The records, in input order.
    pub fn items(&self) -> &[PbItem] {
        &self.items
    }
}

/// Running totals for the progress line.
#[derive(Debug, Default)]
pub struct PbTally {
    records: usize,
    tokens: u64,
}

#[async_trait::async_trait]
impl Job for PbJob {
    type Kind = ProcessBench;
    type Unit = usize;
    type Tally = PbTally;

    fn config(&self) -> &PbConfig {
        &self.config
    }

    fn units(&self) -> Vec<(String, usize)> {
        self.items
            .iter()
            .enumerate()
            .map(|(i, it)| (unit_key(it), i))
            .collect()
    }

    async fn run_unit(&self, unit: &usize) -> Result<PbResult, UnitError> {
        Ok(evaluate_one(&self.mode, &self.items[*unit]).await?)
    }

    fn store_unit(
        &self,
        key: &str,
        unit: &usize,
        record: &PbResult,
    ) -> Result<UnitRecord, UnitError> {
        let item = &self.items[*unit];
        let mut u = UnitRecord::new(key, item.record.id.clone(), serde_json::to_value(record)?);
        u.samples
            .push(SampleRow::new(0, item.record.steps.join("\n\n")));
        let scorer = self.mode.name();
        for (i, s) in record.scores.iter().enumerate() {
            if s.is_finite() {
                u.step_scores.push(StepScoreRow {
                    sample_idx: 0,
                    step_idx: i as u32,
                    scorer: scorer.clone(),
                    score: *s,
                });
            }
        }
        Ok(u)
    }

    fn tally(&self, t: &mut PbTally, r: &PbResult) -> String {
        t.records += 1;
        t.tokens += r.generated_tokens + r.prompt_tokens;
        format!("{:.0} tokens/record", t.tokens as f64 / t.records as f64)
    }
}

/// The unit key of a record.
pub fn unit_key(item: &PbItem) -> String {
    format!("{}/{}", item.subset, item.record.id)
}

/// Runs (or resumes) `job` and returns every stored result in input order.
pub async fn run(
    store: &dyn RunStore,
    job: &PbJob,
    opts: &RunOptions,
) -> Result<(stepwise_jobs::RunReport, Vec<PbResult>), EvalError> {
    let job_err = |e: stepwise_jobs::JobError| EvalError::Job(stepwise_core::error_chain(&e));
    let report = stepwise_jobs::run(store, job, opts)
        .await
        .map_err(job_err)?;
    let mut by_key: HashMap<String, PbResult> = records::<ProcessBench>(store, report.run)
        .map_err(job_err)?
        .into_iter()
        .map(|(u, r)| (u.unit.key, r))
        .collect();
    let results = job
        .items
        .iter()
        .filter_map(|it| by_key.remove(&unit_key(it)))
        .collect();
    Ok((report, results))
}
