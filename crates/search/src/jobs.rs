//! `solve` and `scale` as jobs of the job runner (`stepwise-jobs`).
//!
//! - [`SolveJob`]: one unit per problem (key: the problem id); a strategy under a token
//!   budget; the record is the [`Outcome`](crate::Outcome) with `correct`.
//! - [`ScaleJob`]: the units of a [`ScaleRunner`] (`{problem}/samples`,
//!   `{problem}/{strategy}/n={n}`); the record is a [`ScaleRecord`].
//!
//! Both are built from their stored config ([`SolveConfig`], [`ScaleJobConfig`]) and the
//! backends the binary opened ([`Backends`]), so the same settings always rebuild the
//! same job, and a resumed run is checked against exactly what is stored.

use crate::scale::{ScaleRecord, ScaleRunner, Unit, build_strategy};
use crate::{Context, SearchError, Strategy};
use std::io::Write;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use stepwise_core::{Budget, Delimiter, Problem, Spent, StepSplitter};
use stepwise_jobs::kinds::scale::{Scale, ScaleJobConfig, ScaleRow, markdown_table, summarize};
use stepwise_jobs::kinds::solve::{SearchSettings, Solve, SolveConfig, SolveRecord};
use stepwise_jobs::{Job, JobError, RunOptions, RunStore, UnitError, records};
use stepwise_model::Generator;
use stepwise_score::{
    JudgeTemplate, PolicyPrompt, PrmSettings, Reasoning, ScorerSettings, build_scorer,
};
use stepwise_store::{SampleRow, StepScoreRow, UnitRecord};
use stepwise_verify::Options;

/// The models a search job talks to, opened by the caller.
#[derive(Clone)]
pub struct Backends {
    pub policy: Arc<dyn Generator>,
    /// The judge of `judge` scorers when it is not the policy.
    pub judge: Option<Arc<dyn Generator>>,
    /// How `prm:URL` scorers reach their server.
    pub prm: PrmSettings,
}

impl Backends {
    /// Whether the policy and the judge are reproducible (`Generator::reproducible`).
    pub fn reproducible(&self) -> bool {
        self.policy.reproducible() && self.judge.as_ref().is_none_or(|j| j.reproducible())
    }
}

impl Context {
    /// The context `settings` describe, with its scorer built over `backends`.
    pub fn from_settings(
        settings: &SearchSettings,
        backends: &Backends,
    ) -> Result<Self, SearchError> {
        let cfg = |e: String| SearchError::Config(e);
        let policy_prompt = match &settings.policy_prompt {
            Some(text) => {
                PolicyPrompt::parse(text, "policy prompt").map_err(|e| cfg(e.to_string()))?
            }
            None => PolicyPrompt::default(),
        };
        let judge_template = match &settings.judge_prompt {
            Some(text) => {
                JudgeTemplate::parse(text, "judge prompt").map_err(|e| cfg(e.to_string()))?
            }
            None => JudgeTemplate::default(),
        };
        let delimiter = Delimiter::from_str(&settings.delimiter)
            .map_err(|e| cfg(format!("delimiter '{}': {e}", settings.delimiter)))?;
        let mut ctx = Context::new(backends.policy.clone());
        ctx.prompt = policy_prompt.clone();
        ctx.splitter = StepSplitter::new(delimiter);
        ctx.sampling.temperature = settings.temperature;
        ctx.sampling.max_tokens = settings.max_tokens;
        ctx.sampling.seed = settings.seed;
        ctx.max_step_tokens = settings.max_step_tokens;
        ctx.aggregation = settings.aggregation;
        if let Some(spec) = &settings.scorer {
            let scorer_settings = ScorerSettings {
                policy_prompt,
                judge_template,
                rollouts: settings.rollouts,
                rollout_params: ctx.sampling.clone(),
                judgments: settings.judgments,
                reasoning: settings.judge_reasoning.map(|t| Reasoning {
                    max_tokens: t,
                    ..Reasoning::default()
                }),
                seed: settings.seed,
                prm: backends.prm.clone(),
                likert: match &settings.likert {
                    None => stepwise_score::LikertSettings::default(),
                    Some(l) => stepwise_score::LikertSettings {
                        criteria: l
                            .criteria
                            .clone()
                            .unwrap_or_else(|| stepwise_score::DEFAULT_CRITERIA.to_string()),
                        samples: l.samples,
                        max_tokens: l.max_tokens,
                        ..stepwise_score::LikertSettings::default()
                    },
                },
                ..ScorerSettings::default()
            };
            let scorer = build_scorer(
                spec,
                Some(backends.policy.clone()),
                backends.judge.clone(),
                &scorer_settings,
            )
            .map_err(|e| cfg(format!("scorer '{spec}': {e}")))?;
            ctx.scorer = Some(scorer);
        }
        if let Some(pw) = &settings.pairwise {
            let judge = backends
                .judge
                .clone()
                .unwrap_or_else(|| backends.policy.clone());
            let mut j = stepwise_score::PairwiseJudge::new(judge, pw.clone())
                .map_err(|e| cfg(format!("pairwise selector: {e}")))?;
            j.seed = settings.seed;
            ctx.pairwise = Some(Arc::new(j));
        }
        if let Some(program) = &settings.prompting {
            ctx.program = Some(Arc::new(crate::prompting::Program::new(program.clone())?));
        }
        // critique-refine's critic is the judge backend when there is one
        ctx.critic = backends.judge.clone();
        if let Some(c) = &settings.critique {
            ctx.critique = crate::CritiquePrompts::new(
                c.critic_prompt.as_deref(),
                c.refine_prompt.as_deref(),
                c.critic_max_tokens,
            )?;
        }
        Ok(ctx)
    }
}

/// Prepares the prompt program of `settings` (if any) for a run over `problems`: what the
/// model writes once per run (LEAP principles, the behaviour handbook) is made now
/// ([`crate::prompting::prepare`]) and stored in the program. When `resume` names a run
/// of `store`, its stored program's prepared parts are taken instead (no model call).
pub async fn prepare_prompting(
    settings: &mut SearchSettings,
    backends: &Backends,
    problems: &[Problem],
    store: &dyn RunStore,
    resume: Option<stepwise_jobs::RunId>,
) -> Result<(), SearchError> {
    let Some(program) = settings.prompting.take() else {
        return Ok(());
    };
    let previous = match resume {
        None => None,
        Some(run) => {
            let info = store
                .run(run)
                .map_err(|e| SearchError::Config(format!("--resume {run}: {e}")))?;
            match info.config.pointer("/search/prompting") {
                None | Some(serde_json::Value::Null) => None,
                Some(v) => Some(
                    serde_json::from_value::<stepwise_jobs::kinds::prompting::PromptingSettings>(
                        v.clone(),
                    )
                    .map_err(|e| {
                        SearchError::Config(format!(
                            "--resume {run}: the stored prompt program does not read: {e}"
                        ))
                    })?,
                ),
            }
        }
    };
    let ctx = Context::from_settings(settings, backends)?;
    let prepared =
        crate::prompting::prepare(program, &ctx, problems, Some(store), previous.as_ref()).await?;
    if prepared.prepared != Spent::default() {
        tracing::info!(
            method = %prepared.method,
            calls = prepared.prepared.policy_calls,
            generated = prepared.prepared.policy_tokens,
            prompt = prepared.prepared.policy_prompt_tokens,
            "prompt program prepared (a run-level cost, stored in the config as prompting.prepared)"
        );
    }
    settings.prompting = Some(prepared);
    Ok(())
}

/// `settings` as a run stores them, and the backends that run them: the scorer spec
/// keeps its identity (`prm`, not `prm:URL`: [`stepwise_score::split_servers`]) and its
/// servers go to the backends, unless they name servers of their own (`--prm-endpoint`,
/// a worker's). So workers of one run may each reach the PRM through a server of their
/// own, while a different scorer is a different config.
pub fn servers_apart(
    mut settings: SearchSettings,
    backends: &Backends,
) -> Result<(SearchSettings, Backends), SearchError> {
    let mut backends = backends.clone();
    if let Some(spec) = &settings.scorer {
        let (identity, servers) = stepwise_score::split_servers(spec)
            .map_err(|e| SearchError::Config(format!("scorer '{spec}': {e}")))?;
        if backends.prm.endpoints.is_empty() {
            backends.prm.endpoints = servers;
        }
        settings.scorer = Some(identity);
    }
    Ok((settings, backends))
}

/// The strategy `strategy` with `n` samples or candidates per step, shaped by
/// `settings` (expansions, max steps, beam lookahead, the PUCT constant of mcts): what
/// `solve` runs, and the search gateway per request.
pub fn configured_strategy(
    strategy: crate::scale::ScaleStrategy,
    n: usize,
    settings: &SearchSettings,
) -> Box<dyn Strategy> {
    use crate::scale::ScaleStrategy;
    let s = settings;
    match strategy {
        ScaleStrategy::Beam | ScaleStrategy::Vbeam => {
            let mut b = crate::BeamSearch::for_n(n, s.expansions, s.max_steps);
            b.lookahead = s.lookahead;
            b.value_guided = strategy == ScaleStrategy::Vbeam;
            Box::new(b)
        }
        ScaleStrategy::Mcts => {
            let mut m = crate::Mcts::for_n(n, s.expansions, s.max_steps);
            m.c_puct = s.c_puct;
            Box::new(m)
        }
        other => build_strategy(other, n, s.expansions, s.max_steps),
    }
}

/// `solve`: a strategy under a budget over every problem.
pub struct SolveJob {
    config: SolveConfig,
    problems: Vec<Problem>,
    ctx: Context,
    strategy: Box<dyn Strategy>,
    budget: Budget,
}

impl SolveJob {
    /// The job `config` describes over `problems`, on `backends` (the stored config keeps
    /// the scorer's identity, its servers are the backends': [`servers_apart`]).
    pub fn new(
        mut config: SolveConfig,
        problems: Vec<Problem>,
        backends: &Backends,
    ) -> Result<Self, SearchError> {
        let (search, backends) = servers_apart(config.search, backends)?;
        config.search = search;
        let s = &config.search;
        let ctx = Context::from_settings(s, &backends)?;
        if config.n == 0 {
            return Err(SearchError::Config("n must be at least 1".into()));
        }
        stepwise_tasks::check::validate(&problems).map_err(SearchError::Config)?;
        if s.pairwise.is_some() && config.strategy != crate::scale::ScaleStrategy::Bon {
            return Err(SearchError::Config(format!(
                "a pairwise selector picks among bon's samples; strategy {} has none",
                config.strategy
            )));
        }
        let strategy = configured_strategy(config.strategy, config.n, s);
        if config.strategy.needs_scorer()
            && ctx.scorer.is_none()
            && !ctx.picks_by_pairs(config.strategy)
        {
            return Err(SearchError::NeedsScorer {
                strategy: config.strategy.to_string(),
            });
        }
        let budget = config.budget.map_or(Budget::unlimited(), Budget::tokens);
        Ok(Self {
            config,
            problems,
            ctx,
            strategy,
            budget,
        })
    }

    /// The strategy's name with its settings (e.g. `beam(w=2,e=4)`).
    pub fn strategy_name(&self) -> String {
        self.strategy.name()
    }
}

/// Running totals of a solve run, for the progress line.
#[derive(Debug, Default)]
pub struct SolveTally {
    done: usize,
    right: usize,
    tokens: u64,
}

#[async_trait::async_trait]
impl Job for SolveJob {
    type Kind = Solve;
    type Unit = usize;
    type Tally = SolveTally;

    fn config(&self) -> &SolveConfig {
        &self.config
    }

    fn problems(&self) -> &[Problem] {
        &self.problems
    }

    fn units(&self) -> Vec<(String, usize)> {
        self.problems
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id.clone(), i))
            .collect()
    }

    async fn run_unit(&self, unit: &usize) -> Result<SolveRecord, UnitError> {
        let p = &self.problems[*unit];
        let (ctx, prompt) = self.ctx.for_problem(p).await?;
        let mut outcome = self.strategy.solve(p, &self.budget, &ctx).await?;
        if let Some(b) = &prompt {
            // building the prompt (CD-CoT's rephrasings) is policy work on this problem
            let wall = outcome.spent.wall_ms;
            outcome.spent += b.spent;
            outcome.spent.wall_ms = wall;
        }
        let correct = stepwise_jobs::answer_correct(p, outcome.answer.as_deref(), &self.ctx.verify);
        Ok(SolveRecord {
            outcome,
            correct,
            prompt,
        })
    }

    fn store_unit(
        &self,
        key: &str,
        unit: &usize,
        record: &SolveRecord,
    ) -> Result<UnitRecord, UnitError> {
        let p = &self.problems[*unit];
        let mut u = UnitRecord::new(key, p.id.clone(), serde_json::to_value(record)?);
        add_sample_rows(&mut u, p, &record.outcome.samples, &self.ctx.verify);
        Ok(u)
    }

    fn tally(&self, t: &mut SolveTally, r: &SolveRecord) -> String {
        t.done += 1;
        t.right += usize::from(r.correct == Some(true));
        t.tokens += r.outcome.spent.generated_tokens();
        format!(
            "{}/{} right, {:.0} tokens/problem",
            t.right,
            t.done,
            t.tokens as f64 / t.done as f64
        )
    }
}

/// Sample rows (with answer, correctness and tokens) and finite step scores of
/// `samples`, added to a store unit so exports and reports read them untyped.
fn add_sample_rows(u: &mut UnitRecord, p: &Problem, samples: &[crate::Sample], opts: &Options) {
    for (i, s) in samples.iter().enumerate() {
        let mut row = SampleRow::new(i as u32, s.text.clone());
        row.answer = s.rationale.answer.clone();
        row.correct = stepwise_jobs::answer_correct(p, s.rationale.answer.as_deref(), opts);
        row.tokens = Some(s.tokens);
        u.samples.push(row);
        for sc in &s.scores {
            if sc.score.is_finite() {
                u.step_scores.push(StepScoreRow {
                    sample_idx: i as u32,
                    step_idx: sc.step as u32,
                    scorer: sc.scorer.clone(),
                    score: sc.score,
                });
            }
        }
    }
}

/// What a whole solve run gave (resumed parts included).
#[derive(Debug, Clone)]
pub struct SolveSummary {
    pub run: stepwise_jobs::RunId,
    pub strategy: String,
    pub scorer: Option<String>,
    pub problems: usize,
    pub right: usize,
    pub spent: Spent,
}

impl std::fmt::Display for SolveSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.problems.max(1) as f64;
        let t = &self.spent;
        writeln!(
            f,
            "run {}: {} with {}",
            self.run,
            self.strategy,
            self.scorer.as_deref().unwrap_or("no scorer")
        )?;
        writeln!(f, "problems       {}", self.problems)?;
        writeln!(
            f,
            "accuracy       {:.1}% ({}/{})",
            100.0 * self.right as f64 / n,
            self.right,
            self.problems
        )?;
        writeln!(
            f,
            "tokens/problem {:.1} (policy {:.1}, judge {:.1})",
            t.generated_tokens() as f64 / n,
            t.policy_tokens as f64 / n,
            t.judge_tokens as f64 / n
        )?;
        write!(
            f,
            "calls/problem  {:.1} (policy {:.1}, judge {:.1})",
            t.calls() as f64 / n,
            t.policy_calls as f64 / n,
            t.judge_calls as f64 / n
        )
    }
}

/// Why a search job stopped.
#[derive(Debug, thiserror::Error)]
pub enum SearchJobError {
    #[error(transparent)]
    Setup(#[from] SearchError),
    #[error(transparent)]
    Job(#[from] JobError),
    #[error("writing {path}")]
    Output {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Runs (or resumes) a solve job; with `outcomes`, every outcome finished now is also
/// appended to that JSONL file (one stored record per line). Returns the whole run's
/// summary, resumed parts included.
pub async fn solve(
    store: &dyn RunStore,
    job: &SolveJob,
    opts: &RunOptions,
    outcomes: Option<&Path>,
) -> Result<SolveSummary, SearchJobError> {
    let out_err = |path: &Path, source| SearchJobError::Output {
        path: path.display().to_string(),
        source,
    };
    let mut out = match outcomes {
        Some(p) => Some(std::io::BufWriter::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| out_err(p, e))?,
        )),
        None => None,
    };
    let report = stepwise_jobs::run_with(store, job, opts, |_, r| {
        if let Some(w) = out.as_mut() {
            serde_json::to_writer(&mut *w, r)?;
            w.write_all(b"\n")?;
            w.flush()?;
        }
        Ok(())
    })
    .await?;
    let recs = records::<Solve>(store, report.run)?;
    Ok(SolveSummary {
        run: report.run,
        strategy: job.strategy_name(),
        scorer: job.config.search.scorer.clone(),
        problems: recs.len(),
        right: recs.iter().filter(|(_, r)| r.correct == Some(true)).count(),
        spent: recs.iter().map(|(_, r)| r.outcome.spent).sum(),
    })
}

/// `scale`: strategies over budgets.
pub struct ScaleJob {
    config: ScaleJobConfig,
    runner: ScaleRunner,
}

impl ScaleJob {
    /// The job `config` describes over `problems`, on `backends` (the stored config keeps
    /// the scorer's identity, its servers are the backends': [`servers_apart`]).
    pub fn new(
        mut config: ScaleJobConfig,
        problems: Vec<Problem>,
        backends: &Backends,
    ) -> Result<Self, SearchError> {
        let (search, backends) = servers_apart(config.search, backends)?;
        config.search = search;
        let mut ctx = Context::from_settings(&config.search, &backends)?;
        stepwise_tasks::check::validate(&problems).map_err(SearchError::Config)?;
        if config.search.pairwise.is_some()
            && !config
                .scale
                .strategies
                .contains(&crate::scale::ScaleStrategy::Bon)
        {
            return Err(SearchError::Config(
                "a pairwise selector picks among bon's samples; add bon to the strategies".into(),
            ));
        }
        if config.scale.strategies.iter().all(|x| !x.needs_scorer()) {
            // majority alone: samples are not scored even if a scorer is named
            ctx.scorer = None;
        }
        let runner = ScaleRunner::new(ctx, config.scale.clone(), problems)?;
        Ok(Self { config, runner })
    }

    /// The problems of the experiment.
    pub fn problem_list(&self) -> &[Problem] {
        &self.runner.problems
    }
}

#[async_trait::async_trait]
impl Job for ScaleJob {
    type Kind = Scale;
    type Unit = Unit;
    type Tally = ();

    fn config(&self) -> &ScaleJobConfig {
        &self.config
    }

    fn problems(&self) -> &[Problem] {
        &self.runner.problems
    }

    fn units(&self) -> Vec<(String, Unit)> {
        self.runner.units()
    }

    async fn run_unit(&self, unit: &Unit) -> Result<ScaleRecord, UnitError> {
        Ok(self.runner.run(unit).await?)
    }

    fn store_unit(
        &self,
        key: &str,
        unit: &Unit,
        record: &ScaleRecord,
    ) -> Result<UnitRecord, UnitError> {
        let problem = match unit {
            Unit::Samples { problem } | Unit::Tree { problem, .. } => *problem,
        };
        let p = &self.runner.problems[problem];
        let mut u = UnitRecord::new(key, p.id.clone(), serde_json::to_value(record)?);
        let samples = match record {
            ScaleRecord::Samples { samples, .. } => samples,
            ScaleRecord::Tree { outcome, .. } => &outcome.samples,
        };
        add_sample_rows(&mut u, p, samples, &self.runner.ctx.verify);
        Ok(u)
    }

    fn tally(&self, _: &mut (), r: &ScaleRecord) -> String {
        r.problem_id().to_string()
    }
}

/// The table of a whole scale run (resumed parts included).
#[derive(Debug, Clone)]
pub struct ScaleSummary {
    pub run: stepwise_jobs::RunId,
    pub rows: Vec<ScaleRow>,
    pub problems: usize,
    /// Lines under the table: what preparing the prompt program cost, and for a
    /// handbook the generated tokens with it vs without it ([`prompt_notes`]).
    pub notes: Vec<String>,
}

impl ScaleSummary {
    /// The table as Markdown, its notes under it.
    pub fn markdown(&self) -> String {
        let mut md = markdown_table(&self.rows);
        for n in &self.notes {
            md.push_str(&format!("\n{n}\n"));
        }
        md
    }
}

/// Notes on a scale run's prompt program, from the ledger:
///
/// - what preparing it cost when the run was created (principles, handbook mining), a
///   run-level cost that is not in the table's per-problem cells;
/// - for `handbook`, the token reduction Didolkar et al. (2025) report for
///   behaviour-conditioned inference: mean generated tokens per sample of this run's
///   draws vs the `--handbook-from` run's (the run without the handbook), over the
///   problems both drew, with the relative change. It is a like-for-like comparison when
///   the mining run is a plain run of the same problems and model.
pub fn prompt_notes(
    store: &dyn RunStore,
    settings: &SearchSettings,
    results: &[ScaleRecord],
) -> Result<Vec<String>, SearchError> {
    use stepwise_jobs::kinds::prompting::PromptMethod;
    let Some(p) = &settings.prompting else {
        return Ok(Vec::new());
    };
    let mut notes = Vec::new();
    let c = &p.prepared;
    if *c != Spent::default() {
        notes.push(format!(
            "Prompt program `{}` prepared when the run was created: {} model calls, {} generated and {} prompt tokens (a run-level cost, not in the cells above).",
            p.method, c.policy_calls, c.policy_tokens, c.policy_prompt_tokens
        ));
    }
    if p.method == PromptMethod::Handbook
        && let Some(src) = &p.handbook_source
        && let Some(run) = src.strip_prefix("run:").and_then(|r| r.parse().ok())
    {
        let without: std::collections::HashMap<String, Vec<crate::Sample>> =
            crate::prompting::run_samples(store, run, "--handbook-from")?
                .into_iter()
                .map(|(p, s)| (p.id, s))
                .collect();
        let (mut with_t, mut with_n, mut wo_t, mut wo_n, mut shared) = (0u64, 0u64, 0u64, 0u64, 0);
        for r in results {
            if let ScaleRecord::Samples {
                problem_id,
                samples,
                ..
            } = r
                && let Some(theirs) = without.get(problem_id)
                && !samples.is_empty()
                && !theirs.is_empty()
            {
                shared += 1;
                with_t += samples.iter().map(|x| x.tokens).sum::<u64>();
                with_n += samples.len() as u64;
                wo_t += theirs.iter().map(|x| x.tokens).sum::<u64>();
                wo_n += theirs.len() as u64;
            }
        }
        if shared == 0 {
            notes.push(format!(
                "Handbook ({} behaviours from {src}): no problem of this run was drawn in {src}, so there is no with/without token comparison.",
                p.handbook.len()
            ));
        } else {
            let with = with_t as f64 / with_n as f64;
            let wo = wo_t as f64 / wo_n as f64;
            let change = if wo > 0.0 {
                format!("{:+.1}%", 100.0 * (with - wo) / wo)
            } else {
                "n/a".into()
            };
            notes.push(format!(
                "Handbook ({} behaviours from {src}): generated tokens per sample on the {shared} problems both runs drew: {with:.1} with the handbook, {wo:.1} in {src} without it ({change}).",
                p.handbook.len()
            ));
        }
    }
    Ok(notes)
}

/// Runs (or resumes) a scale job and tabulates every stored unit.
pub async fn scale(
    store: &dyn RunStore,
    job: &ScaleJob,
    opts: &RunOptions,
) -> Result<ScaleSummary, SearchJobError> {
    let report = stepwise_jobs::run(store, job, opts).await?;
    let results: Vec<ScaleRecord> = records::<Scale>(store, report.run)?
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    let rows = summarize(
        &job.config.scale,
        &job.runner.problems,
        &results,
        &job.runner.ctx.verify,
    );
    let notes = prompt_notes(store, &job.config.search, &results)?;
    Ok(ScaleSummary {
        run: report.run,
        rows,
        problems: job.runner.problems.len(),
        notes,
    })
}

/// What a worker that joins a stored `solve` or `scale` run did.
#[derive(Debug, Clone)]
pub enum Joined {
    Solve(SolveSummary),
    Scale(ScaleSummary),
}

/// Checks that `backends` can continue a run made with `policy` (its stored backend
/// name), `judge` (the stored name of its judge, when the judge was not the policy) and
/// `reproducible`: the same models (a worker may reach them through endpoints of its
/// own, so the endpoints after `@` may differ) and the same decoding mode.
fn check_backends(
    run: stepwise_jobs::RunId,
    policy: &str,
    judge: Option<&str>,
    reproducible: bool,
    backends: &Backends,
) -> Result<(), SearchError> {
    use stepwise_model::model_identity;
    let mine = backends.policy.name();
    if model_identity(&mine) != model_identity(policy) {
        return Err(SearchError::Config(format!(
            "run {run} was made with model '{policy}', but this worker's backend is '{mine}' (join with the same model)"
        )));
    }
    let my_judge = backends.judge.as_ref().map(|j| j.name());
    match (judge, my_judge.as_deref()) {
        (Some(theirs), Some(mine)) if model_identity(theirs) != model_identity(mine) => {
            return Err(SearchError::Config(format!(
                "run {run} was made with judge model '{theirs}', but this worker's judge is '{mine}' (join with the same judge model)"
            )));
        }
        (Some(theirs), None) => {
            return Err(SearchError::Config(format!(
                "run {run} was made with judge model '{theirs}', but this worker has no judge of its own (give --judge-model or --judge-endpoint)"
            )));
        }
        (None, Some(mine)) => {
            return Err(SearchError::Config(format!(
                "run {run} was made with the policy as its judge, but this worker's judge is '{mine}' (join without --judge-model and --judge-endpoint)"
            )));
        }
        _ => {}
    }
    if backends.reproducible() != reproducible {
        return Err(SearchError::Config(format!(
            "run {run} was made with {} decoding, but this worker's backend is {} (join with --deterministic {reproducible})",
            if reproducible {
                "reproducible"
            } else {
                "non-reproducible"
            },
            if backends.reproducible() {
                "reproducible"
            } else {
                "not"
            },
        )));
    }
    Ok(())
}

/// Joins the stored `solve` or `scale` run `run` as one more worker: the job is rebuilt
/// from the run's stored config and problems (what `--resume` checks against) on this
/// worker's own `backends`, and claims units until none is left. With a shared store,
/// any number of workers on any machines do this at once.
///
/// `scorer` is this worker's scorer spec, when it gives one (`prm:URL` with a server of
/// its own): its identity must be the run's ([`servers_apart`]; another scorer is
/// refused with the config difference named), its servers are used unless `backends`
/// name their own.
pub async fn join(
    store: &dyn RunStore,
    run: stepwise_jobs::RunId,
    backends: &Backends,
    scorer: Option<&str>,
    opts: &RunOptions,
) -> Result<Joined, SearchJobError> {
    // the worker's scorer replaces the stored one; the runner compares the two configs
    let mine = |search: &mut SearchSettings| {
        if let Some(spec) = scorer {
            search.scorer = Some(spec.to_string());
        }
    };
    let info = store.run(run).map_err(JobError::from)?;
    let problems = store.problems(run).map_err(JobError::from)?;
    let opts = RunOptions {
        resume: stepwise_jobs::Resume::Run(run),
        ..opts.clone()
    };
    match info.kind.as_str() {
        k if k == <Scale as stepwise_jobs::RunKind>::KIND => {
            let mut config = stepwise_jobs::stored_config::<Scale>(&info)?;
            let judge = config.search.judge.as_deref();
            check_backends(run, &config.policy, judge, config.reproducible, backends)?;
            mine(&mut config.search);
            let job = ScaleJob::new(config, problems, backends)?;
            Ok(Joined::Scale(scale(store, &job, &opts).await?))
        }
        k if k == <Solve as stepwise_jobs::RunKind>::KIND => {
            let mut config = stepwise_jobs::stored_config::<Solve>(&info)?;
            let judge = config.search.judge.as_deref();
            check_backends(run, &config.policy, judge, config.reproducible, backends)?;
            mine(&mut config.search);
            let job = SolveJob::new(config, problems, backends)?;
            Ok(Joined::Solve(solve(store, &job, &opts, None).await?))
        }
        other => Err(SearchError::Config(format!(
            "run {run} is a '{other}' run, not a solve or scale run"
        ))
        .into()),
    }
}
