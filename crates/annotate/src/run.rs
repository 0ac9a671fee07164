//! Running a labelling job over a dataset: concurrent, with progress, resumable.
//!
//! A job's work is one *unit* per (method, question), keyed `method/problem_id` in the
//! SQLite run store of `stepwise-data`. Each unit is recorded in one transaction when it
//! finishes (its [`QuestionResult`] as the payload, its solutions as samples and its
//! labels as step labels), so after a crash — `kill -9` included — a unit is either fully
//! stored or absent. `--resume RUN_ID` reloads the run's stored configuration and
//! problems and does exactly the units that are missing. Every random choice is seeded
//! from (job seed, problem id, method-specific tag), never from the order in which
//! concurrent units finish, so a resumed run ends with the same labels as an
//! uninterrupted one.

use crate::adaptive::AdaptiveConfig;
use crate::formats::{self, ExportFormat};
use crate::grounded::GroundedConfig;
use crate::mc::McConfig;
use crate::omega::OmegaConfig;
use crate::policy::{Policy, RolloutParams};
use crate::reference::ReferenceConfig;
use crate::rpe::RpeConfig;
use crate::truth::{self, TruthRow};
use crate::{AnnotateError, LabelledSolution, Method, QuestionResult, Result, mix_seed};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use stepwise_core::{Problem, Spent};
use stepwise_jobs::{Resume, RunKind, RunOptions, UnitError};
use stepwise_model::Generator;
use stepwise_score::PolicyPrompt;
use stepwise_store::{RunId, RunStore, SampleRow, StepLabelRow, UnitRecord};

/// The run kind in the store.
pub const KIND: &str = stepwise_jobs::kinds::annotate::KIND;

/// Everything that decides a job's labels (stored with the run; a resume must match it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnnotateConfig {
    /// Dataset spec (`arith:ops=3,n=20,seed=1`, `gsm8k:test`, a file, …).
    pub dataset: String,
    pub limit: Option<usize>,
    pub methods: Vec<Method>,
    pub seed: u64,
    /// Solutions sampled per question (mc, reference, grounded).
    pub samples: usize,
    pub rollout: RolloutParams,
    pub mc: McConfig,
    /// Settings of `adaptive-mc` (absent in runs made before it existed).
    #[serde(default)]
    pub adaptive: AdaptiveConfig,
    pub omega: OmegaConfig,
    pub reference: ReferenceConfig,
    pub grounded: GroundedConfig,
    /// Settings of `rpe` (its rollouts per prefix are `mc.k`; absent in runs made before
    /// it existed).
    #[serde(default)]
    pub rpe: RpeConfig,
    /// The generator's name (a resume with another model is refused).
    pub generator: String,
    /// Whether the generator was reproducible ([`Generator::reproducible`]): a resumed run
    /// then equals an uninterrupted one byte for byte. A resume in the other mode is
    /// refused. (Absent in runs made before it existed: they were not.)
    #[serde(default)]
    pub reproducible: bool,
    /// Text of the policy prompt template (`### system` / `### user` / `### assistant`,
    /// placeholder `{question}`) that samples solutions and rollouts; `None` is the
    /// built-in `stepwise-score` policy prompt. Stored with the run so a resume uses it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_prompt: Option<String>,
    /// The judge's name when it is not the policy (`annotate --judge-model` /
    /// `--judge-endpoint`); `None`: the policy judges. A resume or a worker with another
    /// judge model is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge: Option<String>,
}

impl Default for AnnotateConfig {
    fn default() -> Self {
        Self {
            dataset: "arith:ops=3,n=10,seed=1".into(),
            limit: None,
            methods: vec![Method::Mc, Method::OmegaPrm],
            seed: 0,
            samples: 2,
            rollout: RolloutParams::default(),
            mc: McConfig::default(),
            adaptive: AdaptiveConfig::default(),
            omega: OmegaConfig::default(),
            reference: ReferenceConfig::default(),
            grounded: GroundedConfig::default(),
            rpe: RpeConfig::default(),
            generator: String::new(),
            reproducible: false,
            policy_prompt: None,
            judge: None,
        }
    }
}

/// The unit key of (method, problem).
pub fn unit_key(method: Method, problem_id: &str) -> String {
    format!("{method}/{problem_id}")
}

/// Labels one question with one method.
pub async fn label_question(
    policy: &Policy,
    problem: &Problem,
    method: Method,
    cfg: &AnnotateConfig,
) -> Result<QuestionResult> {
    let seed = mix_seed(cfg.seed, &problem.id);
    match method {
        Method::Mc => crate::mc::label(policy, problem, cfg.samples, &cfg.mc, seed).await,
        Method::AdaptiveMc => {
            crate::adaptive::label(policy, problem, cfg.samples, &cfg.adaptive, seed).await
        }
        Method::OmegaPrm => crate::omega::label(policy, problem, &cfg.omega, seed).await,
        Method::Reference => {
            crate::reference::label(policy, problem, cfg.samples, &cfg.reference, seed).await
        }
        Method::Grounded => {
            crate::grounded::label(policy, problem, cfg.samples, &cfg.grounded, seed).await
        }
        Method::Rpe => {
            crate::rpe::label(policy, problem, cfg.samples, &cfg.mc, &cfg.rpe, seed).await
        }
    }
}

fn unit_record(r: &QuestionResult) -> Result<UnitRecord> {
    let payload = serde_json::to_value(r)
        .map_err(|e| AnnotateError::Config(format!("serializing a result: {e}")))?;
    let mut u = UnitRecord::new(
        unit_key(r.method, &r.problem_id),
        r.problem_id.clone(),
        payload,
    );
    for (i, s) in r.solutions.iter().enumerate() {
        let mut row = SampleRow::new(i as u32, s.steps.join("\n\n"));
        row.correct = s.answer_correct;
        u.samples.push(row);
        for (j, l) in s.labels.iter().enumerate() {
            u.step_labels.push(StepLabelRow {
                sample_idx: i as u32,
                step_idx: j as u32,
                method: r.method.to_string(),
                label: if l.value.is_finite() { l.value } else { 0.0 },
            });
        }
    }
    Ok(u)
}

/// `annotate` runs: one unit per (method, question), keyed `method/problem_id`.
pub struct Annotate;

impl RunKind for Annotate {
    const KIND: &'static str = KIND;
    const VERSION: u32 = stepwise_jobs::kinds::annotate::VERSION;
    type Config = AnnotateConfig;
    type Record = QuestionResult;
}

/// The labelling job over a run's problems.
pub struct AnnotateJob {
    config: AnnotateConfig,
    problems: Vec<Problem>,
    policy: Policy,
}

#[async_trait::async_trait]
impl stepwise_jobs::Job for AnnotateJob {
    type Kind = Annotate;
    type Unit = (usize, Method);
    type Tally = (Spent, u64, u64);

    fn config(&self) -> &AnnotateConfig {
        &self.config
    }

    fn problems(&self) -> &[Problem] {
        &self.problems
    }

    fn units(&self) -> Vec<(String, (usize, Method))> {
        let mut out = Vec::new();
        for (i, p) in self.problems.iter().enumerate() {
            for &m in &self.config.methods {
                out.push((unit_key(m, &p.id), (i, m)));
            }
        }
        out
    }

    async fn run_unit(&self, unit: &(usize, Method)) -> Result<QuestionResult, UnitError> {
        let (i, m) = *unit;
        Ok(label_question(&self.policy, &self.problems[i], m, &self.config).await?)
    }

    fn store_unit(
        &self,
        _key: &str,
        _unit: &(usize, Method),
        record: &QuestionResult,
    ) -> Result<UnitRecord, UnitError> {
        Ok(unit_record(record)?)
    }

    fn tally(&self, t: &mut (Spent, u64, u64), r: &QuestionResult) -> String {
        t.0 += r.spent;
        t.1 += r.rollouts;
        t.2 += r.abstained;
        format!(
            "{} rollouts, {} generated tokens, abstained: {}",
            t.1,
            t.0.generated_tokens(),
            t.2
        )
    }
}

/// Labels `problems` with `config`'s methods through the job runner on `store` (a new
/// run, or `opts.resume`'s), with `generator` as the policy; returns the run and its
/// stored results. For callers that have their problems in hand (a benchmark's
/// generated set) rather than a dataset spec; `config.generator` and `reproducible`
/// are taken from `generator`.
pub async fn run_problems(
    store: &dyn RunStore,
    config: AnnotateConfig,
    problems: Vec<Problem>,
    generator: Arc<dyn Generator>,
    opts: &RunOptions,
) -> Result<(RunId, Vec<QuestionResult>)> {
    validate(&config)?;
    if let Some(p) = problems.iter().find(|p| p.gold.is_none()) {
        return Err(AnnotateError::NoGold(p.id.clone()));
    }
    let config = AnnotateConfig {
        generator: generator.name(),
        reproducible: generator.reproducible(),
        ..config
    };
    let mut policy = Policy::new(generator, config.rollout.clone());
    if let Some(text) = &config.policy_prompt {
        policy.prompt = parse_policy_prompt(text, "the run's policy prompt")?;
    }
    let job = AnnotateJob {
        config,
        problems,
        policy,
    };
    let report = stepwise_jobs::run(store, &job, opts).await?;
    let results = load_results(store, report.run, &job.problems)?;
    Ok((report.run, results))
}

/// Every stored result of `run`, ordered by problem (as registered) then method.
pub fn load_results(
    store: &dyn RunStore,
    run: RunId,
    problems: &[Problem],
) -> Result<Vec<QuestionResult>> {
    let order: HashMap<&str, usize> = problems
        .iter()
        .enumerate()
        .map(|(i, p)| (p.id.as_str(), i))
        .collect();
    let mut out: Vec<QuestionResult> = stepwise_jobs::records::<Annotate>(store, run)?
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    out.sort_by_key(|r| {
        (
            order
                .get(r.problem_id.as_str())
                .copied()
                .unwrap_or(usize::MAX),
            r.method,
        )
    });
    Ok(out)
}

/// The records to export from `results` (see [`QuestionResult::export_records`]).
pub fn export_records(problems: &[Problem], results: &[QuestionResult]) -> Vec<LabelledSolution> {
    let by_id: HashMap<&str, &Problem> = problems.iter().map(|p| (p.id.as_str(), p)).collect();
    results
        .iter()
        .flat_map(|r| {
            let (q, g) = by_id
                .get(r.problem_id.as_str())
                .map_or((String::new(), None), |p| {
                    (p.question.clone(), p.gold.clone())
                });
            crate::export_records(r, &q, g.as_deref())
        })
        .filter(|s| !s.labels.is_empty())
        .collect()
}

/// Where a job's text comes from.
#[derive(Clone)]
pub enum PolicySource {
    /// A model backend (embedded or HTTP).
    Model(Arc<dyn Generator>),
    /// The scripted simulation of [`crate::testing::ScriptedPolicy`] over the job's own
    /// problems (clearly not a model: for tests and demonstrations), each rollout taking
    /// `delay`.
    Scripted { delay: std::time::Duration },
}

/// A whole job: what to label, where to store it, what to write.
#[derive(Debug, Clone)]
pub struct Job {
    /// The labelling configuration (`generator` is filled in from the backend).
    pub config: AnnotateConfig,
    /// The run store spec (a SQLite path).
    pub store: String,
    /// Continue this run with its stored configuration instead of starting a new one.
    pub resume: Option<RunId>,
    pub data_dir: Option<PathBuf>,
    /// How units run: concurrency, progress, what stops it (`resume` is taken from
    /// [`Job::resume`]).
    pub run: RunOptions,
    /// Where to write the labels, and in which format (by extension: `.parquet` or JSONL).
    pub out: Option<(PathBuf, ExportFormat)>,
    /// Compute the label-quality table against `arith` ground truth.
    pub eval_against_truth: bool,
    /// Also write every distinct sampled solution with its exact `arith` first error
    /// ([`truth::processbench_records`], ProcessBench format) to this file.
    pub truth_out: Option<PathBuf>,
    /// Label nothing: export and evaluate what the `resume` run has stored so far,
    /// restricted to the questions every method of the run has finished (so methods are
    /// compared on the same questions). For inspecting a run that is still going or was
    /// stopped; `resume` without this flag finishes it.
    pub stored_only: bool,
}

/// What a job did.
#[derive(Debug, Clone)]
pub struct JobOutcome {
    pub run: RunId,
    pub config: AnnotateConfig,
    pub units_done_now: usize,
    pub results: Vec<QuestionResult>,
    pub exported: usize,
    /// Records written to [`Job::truth_out`].
    pub truth_exported: usize,
    pub truth: Option<Vec<TruthRow>>,
}

impl JobOutcome {
    /// One line for people: units (done now), labelled steps, rollouts, tokens, time.
    pub fn summary(&self, secs: f64) -> String {
        let spent: Spent = self.results.iter().map(|r| r.spent).sum();
        let rollouts: u64 = self.results.iter().map(|r| r.rollouts).sum();
        let steps: usize = self.results.iter().map(|r| r.labelled_steps()).sum();
        let abstained: u64 = self.results.iter().map(|r| r.abstained).sum();
        format!(
            "run {}: {} units ({} now), {steps} labelled steps, abstained: {abstained}, {rollouts} rollouts, {} generated tokens, {secs:.1}s",
            self.run,
            self.results.len(),
            self.units_done_now,
            spent.generated_tokens(),
        )
    }

    /// The label-quality table against `arith` ground truth, when it was computed.
    pub fn truth_table(&self) -> Option<String> {
        self.truth.as_deref().map(truth::markdown)
    }

    /// The table as a Markdown page naming the model, the run and the command.
    pub fn truth_report(&self, command: &str, secs: f64) -> Option<String> {
        Some(format!(
            "# Step-label quality against arith ground truth\n\nModel: `{}`. Run {} ({} s wall).\n\n```\n{command}\n```\n\n{}",
            self.config.generator,
            self.run,
            secs.round() as u64,
            self.truth_table()?
        ))
    }
}

/// Runs (or resumes) a job with the policy `source`, in the store `job.store` names.
pub async fn run_job(job: &Job, source: PolicySource) -> Result<JobOutcome> {
    let store = stepwise_store::open(&job.store)?;
    run_job_in(store.as_ref(), job, source).await
}

/// [`run_job`] in a store the caller opened (a `stepwise worker`'s shared store, opened
/// with its lease); `job.store` is not used.
pub async fn run_job_in(
    store: &dyn RunStore,
    job: &Job,
    source: PolicySource,
) -> Result<JobOutcome> {
    run_job_judged(store, job, source, None).await
}

/// [`run_job_in`] with `judge` answering the judge requests of the methods that ask one
/// ([`Method::uses_judge`]) instead of the policy (`None`: the policy judges). Its name is
/// stored in the run's config ([`AnnotateConfig::judge`]); a resume with another judge
/// model, or none where the run had one, is refused naming both. A judge for methods
/// that ask none is refused.
pub async fn run_job_judged(
    store: &dyn RunStore,
    job: &Job,
    source: PolicySource,
    judge: Option<Arc<dyn Generator>>,
) -> Result<JobOutcome> {
    if job.stored_only && job.resume.is_none() {
        return Err(AnnotateError::Config(
            "reading what is stored needs the run to read (resume RUN_ID)".into(),
        ));
    }
    let (config, problems) = match job.resume {
        Some(id) => {
            let info = store.run(id)?;
            let config = stepwise_jobs::stored_config::<Annotate>(&info)?;
            let mut problems = store.problems(id)?;
            if problems.is_empty() {
                // A run whose start was cut short before its problems were stored (an
                // older stepwise created them in two steps): with no problems it would
                // have no units and be marked done. Its problems are its dataset's.
                tracing::warn!(
                    run = id,
                    dataset = %config.dataset,
                    "the run has no stored problems; reading them from its dataset"
                );
                problems = stepwise_data::load_spec(
                    &config.dataset,
                    config.limit,
                    job.data_dir.as_deref(),
                )?;
            }
            (config, problems)
        }
        None => {
            let mut config = job.config.clone();
            validate(&config)?;
            let problems =
                stepwise_data::load_spec(&config.dataset, config.limit, job.data_dir.as_deref())?;
            if let Some(p) = problems.iter().find(|p| p.gold.is_none()) {
                return Err(AnnotateError::NoGold(p.id.clone()));
            }
            config.generator = String::new();
            (config, problems)
        }
    };
    let generator: Arc<dyn Generator> = match source {
        PolicySource::Model(g) => g,
        PolicySource::Scripted { delay } => {
            let mut s = crate::testing::ScriptedPolicy::for_problems(&problems, 0.5);
            s.delay = delay;
            Arc::new(s)
        }
    };
    if judge.is_some() && !config.methods.iter().any(|m| m.uses_judge()) {
        let asking: Vec<&str> = Method::ALL
            .iter()
            .filter(|m| m.uses_judge())
            .map(|m| m.name())
            .collect();
        return Err(AnnotateError::Config(format!(
            "a judge model was given, but none of the methods {} asks a judge (only {} do)",
            names(&config.methods),
            asking.join(", ")
        )));
    }
    // the model must be the run's; where it is served (the endpoints) may differ, so
    // workers of one run each bring their own
    let same_model = stepwise_model::model_identity(&config.generator)
        == stepwise_model::model_identity(&generator.name());
    let my_judge = judge.as_ref().map(|j| j.name());
    let reproducible = generator.reproducible() && judge.as_ref().is_none_or(|j| j.reproducible());
    if let Some(id) = job.resume {
        check_judge(id, config.judge.as_deref(), my_judge.as_deref())?;
    }
    let config = match job.resume {
        Some(id) if !same_model => {
            return Err(AnnotateError::Config(format!(
                "run {id} was made with model '{}', but this backend is '{}' (resume with the same model)",
                config.generator,
                generator.name()
            )));
        }
        Some(id) if config.reproducible != reproducible => {
            return Err(AnnotateError::Config(format!(
                "run {id} was made with deterministic decoding {}, but this backend has it {} \
                 (resume with --deterministic {})",
                on_off(config.reproducible),
                on_off(reproducible),
                config.reproducible
            )));
        }
        Some(_) => config,
        None => AnnotateConfig {
            generator: generator.name(),
            reproducible,
            judge: my_judge,
            ..config
        },
    };
    if job.stored_only {
        let Some(run) = job.resume else {
            return Err(AnnotateError::Config("no run to read".into()));
        };
        let mut results = load_results(store, run, &problems)?;
        let complete = complete_problems(&results, &config.methods);
        results.retain(|r| complete.contains(r.problem_id.as_str()));
        let problems: Vec<Problem> = problems
            .into_iter()
            .filter(|p| complete.contains(p.id.as_str()))
            .collect();
        return finish(job, run, config, 0, &problems, results);
    }
    let mut policy = Policy::new(generator, config.rollout.clone()).with_judge(judge);
    if let Some(text) = &config.policy_prompt {
        policy.prompt = parse_policy_prompt(text, "the run's policy prompt")?;
    }
    let annotate = AnnotateJob {
        config,
        problems,
        policy,
    };
    let opts = RunOptions {
        resume: Resume::from(job.resume),
        ..job.run.clone()
    };
    let report = stepwise_jobs::run(store, &annotate, &opts).await?;
    let results = load_results(store, report.run, &annotate.problems)?;
    finish(
        job,
        report.run,
        annotate.config,
        report.done_now,
        &annotate.problems,
        results,
    )
}

/// Joins the stored annotate run `run` of `store` as one more worker (`stepwise worker`):
/// the job is the run's stored config and problems, labelled with this worker's own
/// `generator` (the run's model, served wherever this worker reaches it) and `judge` (the
/// run's judge model when it had one of its own; another one, or none, is refused).
pub async fn join(
    store: &dyn RunStore,
    run: RunId,
    generator: Arc<dyn Generator>,
    judge: Option<Arc<dyn Generator>>,
    data_dir: Option<PathBuf>,
    opts: &RunOptions,
) -> Result<JobOutcome> {
    let job = Job {
        config: AnnotateConfig::default(),
        store: store.location(),
        resume: Some(run),
        data_dir,
        run: opts.clone(),
        out: None,
        eval_against_truth: false,
        truth_out: None,
        stored_only: false,
    };
    run_job_judged(store, &job, PolicySource::Model(generator), judge).await
}

/// Checks that a run made with the judge `theirs` (its stored name; `None`: the policy
/// judged) is continued with the judge `mine`: the same model (its endpoints may differ).
fn check_judge(run: RunId, theirs: Option<&str>, mine: Option<&str>) -> Result<()> {
    use stepwise_model::model_identity;
    let why = match (theirs, mine) {
        (Some(t), Some(m)) if model_identity(t) != model_identity(m) => {
            format!("judge: '{t}' in the run, '{m}' now (use the same judge model)")
        }
        (Some(t), None) => format!(
            "judge: '{t}' in the run, the policy now (give the run's --judge-model or --judge-endpoint)"
        ),
        (None, Some(m)) => format!(
            "judge: the policy in the run, '{m}' now (leave out --judge-model and --judge-endpoint)"
        ),
        _ => return Ok(()),
    };
    Err(AnnotateError::Config(format!(
        "run {run} differs in its config: {why}"
    )))
}

fn names(methods: &[Method]) -> String {
    methods
        .iter()
        .map(|m| m.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The ids of the questions that every one of `methods` has a stored result for.
pub fn complete_problems(
    results: &[QuestionResult],
    methods: &[Method],
) -> std::collections::HashSet<String> {
    let mut by_problem: HashMap<&str, Vec<Method>> = HashMap::new();
    for r in results {
        by_problem.entry(&r.problem_id).or_default().push(r.method);
    }
    by_problem
        .into_iter()
        .filter(|(_, ms)| methods.iter().all(|m| ms.contains(m)))
        .map(|(p, _)| p.to_string())
        .collect()
}

/// Exports and evaluates `results`.
fn finish(
    job: &Job,
    run: RunId,
    config: AnnotateConfig,
    done_now: usize,
    problems: &[Problem],
    results: Vec<QuestionResult>,
) -> Result<JobOutcome> {
    let mut exported = 0;
    if let Some((path, format)) = &job.out {
        let recs = export_records(problems, &results);
        if recs.is_empty() {
            return Err(AnnotateError::Config("no labelled steps to export".into()));
        }
        exported = formats::write(path, *format, &recs)?;
    }
    let mut truth_exported = 0;
    if let Some(path) = &job.truth_out {
        let recs = truth::processbench_records(problems, &results)?;
        if recs.is_empty() {
            return Err(AnnotateError::Config(
                "no solution with a known arith truth to write to --truth-out".into(),
            ));
        }
        truth_exported = formats::write_records(path, &recs)?;
    }
    let truth = if job.eval_against_truth {
        Some(truth::evaluate(problems, &results)?)
    } else {
        None
    };
    Ok(JobOutcome {
        run,
        config,
        units_done_now: done_now,
        results,
        exported,
        truth_exported,
        truth,
    })
}

/// Parses a policy prompt template; `place` names it in errors.
pub fn parse_policy_prompt(text: &str, place: &str) -> Result<PolicyPrompt> {
    PolicyPrompt::parse(text, place).map_err(|e| AnnotateError::Template {
        place: place.to_string(),
        reason: e.to_string(),
    })
}

fn validate(c: &AnnotateConfig) -> Result<()> {
    let bad = |m: &str| Err(AnnotateError::Config(m.to_string()));
    if let Some(text) = &c.policy_prompt {
        parse_policy_prompt(text, "policy prompt")?;
    }
    if c.methods.is_empty() {
        return bad("no method chosen");
    }
    if c.samples == 0 && c.methods.iter().any(|m| *m != Method::OmegaPrm) {
        return bad("--samples must be at least 1");
    }
    if !(c.rpe.epsilon.is_finite() && c.rpe.epsilon >= 0.0) {
        return bad("rpe epsilon must be a finite number >= 0");
    }
    if c.mc.k == 0 || c.adaptive.max_k == 0 || c.omega.k == 0 || c.grounded.k == 0 {
        return bad("rollouts per prefix (k) must be at least 1");
    }
    let o = &c.omega;
    if !(o.alpha > 0.0
        && o.alpha <= 1.0
        && o.beta > 0.0
        && o.beta <= 1.0
        && o.l > 0.0
        && o.c_puct >= 0.0)
    {
        return bad("OmegaPRM needs 0 < alpha <= 1, 0 < beta <= 1, L > 0, c_puct >= 0");
    }
    if !(0.0..=1.0).contains(&c.grounded.outcome_weight) || !(0.0..=1.0).contains(&c.grounded.gamma)
    {
        return bad("grounded outcome weight and gamma must be in 0..=1");
    }
    if !(0.0..=1.0).contains(&c.grounded.backprop_decay) {
        return bad("grounded backprop decay must be in 0..=1");
    }
    if c.grounded
        .final_weight
        .is_some_and(|b| !(b.is_finite() && b >= 0.0))
    {
        return bad("grounded final weight must be a finite number >= 0");
    }
    Ok(())
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}
