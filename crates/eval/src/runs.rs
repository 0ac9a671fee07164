//! Stored runs as evaluation input: what `stepwise solve`, `stepwise scale` and
//! `stepwise annotate` recorded in the run store, read back through the typed run kinds
//! of `stepwise-jobs`, and what `scale` wrote to its output folder (`scale.json`).
//!
//! - `scale` units are [`ScaleRecord`]s: `max(n)` whole samples per problem (sampling
//!   strategies) and one outcome per tree search and `n`; every answer is checked
//!   against the gold answers of the problems stored with the run, with
//!   `stepwise-verify`, as `scale` itself does.
//! - `solve` units are [`SolveRecord`]s (the outcome with `correct`); sample rows carry
//!   each sample's correctness.
//! - `annotate` units are [`QuestionResult`]s.

use crate::EvalError;
use crate::compute::{
    CurvePoint, ProblemSamples, Resampling, RunOutcome, SampleOutcome, Selection, default_ks,
    run_curves, sample_curves,
};
use crate::stats::bootstrap_mean;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use stepwise_core::Problem;
use stepwise_jobs::kinds::annotate::QuestionResult;
use stepwise_jobs::kinds::scale::{Scale, ScaleConfig, ScaleRecord, ScaleRow};
use stepwise_jobs::kinds::solve::{Outcome, Sample, Solve};
use stepwise_jobs::{RunKind, records, stored_config};
use stepwise_store::{RunId, RunInfo, RunStore, SqliteStore, StoreError};
use stepwise_verify::{Options, verify};

/// The run kinds this module reads.
pub const SOLVE: &str = Solve::KIND;
pub const SCALE: &str = Scale::KIND;
pub const ANNOTATE: &str = stepwise_jobs::kinds::annotate::KIND;

/// A run of the store: its id, or the newest one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunRef {
    Id(RunId),
    Latest,
}

impl RunRef {
    /// `17` or `latest`; anything else is not a run reference.
    pub fn parse(s: &str) -> Option<Self> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("latest") {
            return Some(Self::Latest);
        }
        t.parse::<RunId>().ok().filter(|&i| i > 0).map(Self::Id)
    }
}

impl std::fmt::Display for RunRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Id(i) => write!(f, "{i}"),
            Self::Latest => f.write_str("latest"),
        }
    }
}

fn store_err(location: &str, e: StoreError) -> EvalError {
    EvalError::Store {
        path: location.to_string(),
        reason: stepwise_core::error_chain(&e),
    }
}

/// Opens an existing SQLite run store (never creates one).
pub fn open_store(path: &Path) -> Result<Arc<dyn RunStore>, EvalError> {
    if !path.is_file() {
        return Err(EvalError::NoStore {
            path: path.display().to_string(),
        });
    }
    let s = SqliteStore::open(path)
        .map_err(|e: StoreError| store_err(&path.display().to_string(), e))?;
    Ok(Arc::new(s))
}

/// The run `r` of the store, restricted to `kinds` (`latest` is the newest run of those
/// kinds). An unknown id is an error naming the store and the runs it holds.
pub fn resolve(store: &dyn RunStore, r: RunRef, kinds: &[&str]) -> Result<RunInfo, EvalError> {
    let location = store.location();
    let runs = store.list_runs().map_err(|e| store_err(&location, e))?;
    let held = || {
        if runs.is_empty() {
            "no runs".to_string()
        } else {
            let v: Vec<String> = runs
                .iter()
                .map(|r| format!("{} ({})", r.id, r.kind))
                .collect();
            format!("runs {}", v.join(", "))
        }
    };
    let info = match r {
        RunRef::Latest => runs
            .iter()
            .filter(|x| kinds.contains(&x.kind.as_str()))
            .max_by_key(|x| x.id)
            .cloned()
            .ok_or_else(|| EvalError::UnknownRun {
                store: location.clone(),
                run: format!("latest ({} run)", kinds.join(", ")),
                held: held(),
            })?,
        RunRef::Id(id) => {
            runs.iter()
                .find(|x| x.id == id)
                .cloned()
                .ok_or_else(|| EvalError::UnknownRun {
                    store: location.clone(),
                    run: id.to_string(),
                    held: held(),
                })?
        }
    };
    if !kinds.contains(&info.kind.as_str()) {
        return Err(EvalError::Invalid(format!(
            "run {} of {location} is a '{}' run; this reads {} runs",
            info.id,
            info.kind,
            kinds.join(", ")
        )));
    }
    Ok(info)
}

/// A solve unit: the outcome, whether its answer is right, and each sample's correctness
/// (from the stored sample rows).
#[derive(Debug, Clone, PartialEq)]
pub struct SolveUnit {
    pub outcome: Outcome,
    pub correct: Option<bool>,
    pub sample_correct: Vec<Option<bool>>,
}

/// What a run holds, by kind.
#[derive(Debug, Clone, PartialEq)]
pub enum RunContent {
    Solve(Vec<SolveUnit>),
    Scale {
        config: ScaleConfig,
        units: Vec<ScaleRecord>,
    },
    Annotate(Vec<QuestionResult>),
}

/// A stored run, read whole.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedRun {
    pub info: RunInfo,
    /// Where the store is.
    pub store: PathBuf,
    /// The run's problems, as stored with it (empty for runs stored before problems were
    /// registered with every run).
    pub problems: Vec<Problem>,
    pub content: RunContent,
}

/// Reads run `r` of the store at `store_path` (a solve, scale or annotate run).
pub fn load_run(store_path: &Path, r: RunRef) -> Result<LoadedRun, EvalError> {
    let store = open_store(store_path)?;
    let info = resolve(store.as_ref(), r, &[SOLVE, SCALE, ANNOTATE])?;
    read_run(store.as_ref(), info)
}

fn job_err(e: stepwise_jobs::JobError) -> EvalError {
    EvalError::Invalid(stepwise_core::error_chain(&e))
}

/// Reads every unit of a resolved run, by its kind's stored types.
pub fn read_run(store: &dyn RunStore, info: RunInfo) -> Result<LoadedRun, EvalError> {
    let location = store.location();
    let problems = store
        .problems(info.id)
        .map_err(|e| store_err(&location, e))?;
    let content = match info.kind.as_str() {
        SCALE => {
            if problems.is_empty() {
                // correctness needs the gold answers
                return Err(EvalError::Invalid(format!(
                    "run {} (scale, version {}) stores no problems, so its answers cannot be checked; rerun it with this stepwise",
                    info.id, info.version
                )));
            }
            let config = stored_config::<Scale>(&info).map_err(job_err)?.scale;
            let units = records::<Scale>(store, info.id)
                .map_err(job_err)?
                .into_iter()
                .map(|(_, r)| r)
                .collect();
            RunContent::Scale { config, units }
        }
        SOLVE => {
            let mut out = Vec::new();
            for (u, r) in records::<Solve>(store, info.id).map_err(job_err)? {
                let mut sample_correct = vec![None; r.outcome.samples.len()];
                for row in &u.unit.samples {
                    if let Some(c) = sample_correct.get_mut(row.sample_idx as usize) {
                        *c = row.correct;
                    }
                }
                out.push(SolveUnit {
                    outcome: r.outcome,
                    correct: r.correct,
                    sample_correct,
                });
            }
            RunContent::Solve(out)
        }
        ANNOTATE => {
            let mut out = Vec::new();
            for u in store.units(info.id).map_err(|e| store_err(&location, e))? {
                out.push(serde_json::from_value(u.unit.payload).map_err(|e| {
                    EvalError::Invalid(format!(
                        "run {} (annotate): unit {} is not an annotate result: {e}",
                        info.id, u.unit.key
                    ))
                })?);
            }
            RunContent::Annotate(out)
        }
        other => {
            return Err(EvalError::Invalid(format!(
                "run {}: kind '{other}' is not one of {SOLVE}, {SCALE}, {ANNOTATE}",
                info.id
            )));
        }
    };
    Ok(LoadedRun {
        info,
        store: PathBuf::from(location),
        problems,
        content,
    })
}

/// One score per step where known: the first finite score reported for that step.
pub fn step_scores(s: &Sample) -> Vec<Option<f64>> {
    let mut v = vec![None; s.rationale.steps.len()];
    for sc in &s.scores {
        if sc.score.is_finite()
            && let Some(slot) = v.get_mut(sc.step)
            && slot.is_none()
        {
            *slot = Some(sc.score);
        }
    }
    v
}

/// A search sample as a [`SampleOutcome`]. Step scores are those of the scored steps in
/// order; judge tokens are everything scoring it generated.
pub fn sample_outcome(s: &Sample, correct: bool) -> SampleOutcome {
    SampleOutcome {
        answer: s.rationale.answer.clone(),
        correct,
        step_scores: step_scores(s).into_iter().flatten().collect(),
        policy_tokens: s.tokens,
        judge_tokens: s.judge.generated_tokens(),
        steps: s.rationale.steps.iter().map(|x| x.text.clone()).collect(),
    }
}

/// Replaces each answer by the first earlier answer of the list it verifies as equal to,
/// so that voting on strings votes on mathematical equivalence (as `scale` does).
pub fn canonical_answers(samples: &mut [SampleOutcome], opts: &Options) {
    let mut seen: Vec<String> = Vec::new();
    for s in samples.iter_mut() {
        let Some(a) = s.answer.as_deref().map(str::trim) else {
            continue;
        };
        match seen
            .iter()
            .find(|c| c.as_str() == a || verify(c, a, opts).is_equal())
        {
            Some(c) => s.answer = Some(c.clone()),
            None => {
                let a = a.to_string();
                s.answer = Some(a.clone());
                seen.push(a);
            }
        }
    }
}

fn is_correct(p: Option<&Problem>, answer: Option<&str>, opts: &Options) -> bool {
    p.and_then(|p| stepwise_jobs::answer_correct(p, answer, opts))
        .unwrap_or(false)
}

/// Everything accuracy versus compute reads from a run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ComputeData {
    /// Independent samples per problem (scale's sample draws; solve runs of a sampling
    /// strategy).
    pub samples: Vec<ProblemSamples>,
    /// The k values to report for `samples`.
    pub ks: Vec<usize>,
    /// Final outcomes (scale's tree searches; every solve run).
    pub outcomes: Vec<RunOutcome>,
    /// Problems left out because their correctness is unknown (no gold answer).
    pub unknown: usize,
}

impl ComputeData {
    /// The selections worth computing: all of them when some sample has step scores,
    /// else pass@k and maj@k (scored selections would rank unscored samples by order).
    pub fn selections(&self) -> Vec<Selection> {
        let scored = self
            .samples
            .iter()
            .flat_map(|p| &p.samples)
            .any(|s| !s.step_scores.is_empty());
        if scored {
            Selection::all()
        } else {
            vec![Selection::PassAtK, Selection::Majority]
        }
    }

    /// Curve points: every selection at every k, then the outcomes per strategy and budget.
    pub fn points(&self, opts: Resampling) -> Vec<CurvePoint> {
        let mut v = sample_curves(&self.samples, &self.ks, &self.selections(), opts);
        v.extend(run_curves(&self.outcomes, opts));
        v
    }
}

fn is_sampling(strategy: &str) -> bool {
    ["majority(", "weighted(", "bon("]
        .iter()
        .any(|p| strategy.starts_with(p))
}

/// The accuracy-versus-compute input of a loaded run (annotate runs have none).
pub fn compute_data(run: &LoadedRun) -> Result<ComputeData, EvalError> {
    let opts = Options::default();
    let by_id: HashMap<&str, &Problem> = run.problems.iter().map(|p| (p.id.as_str(), p)).collect();
    let mut d = ComputeData::default();
    match &run.content {
        RunContent::Scale { config, units } => {
            let max_n = config.ns.iter().copied().max().unwrap_or(1);
            for u in units {
                let p = by_id.get(u.problem_id()).copied();
                if p.and_then(|p| p.gold.as_ref()).is_none() {
                    d.unknown += 1;
                    continue;
                }
                match u {
                    ScaleRecord::Samples {
                        problem_id,
                        samples,
                        ..
                    } => {
                        let mut s: Vec<SampleOutcome> = samples
                            .iter()
                            .map(|x| {
                                sample_outcome(
                                    x,
                                    is_correct(p, x.rationale.answer.as_deref(), &opts),
                                )
                            })
                            .collect();
                        canonical_answers(&mut s, &opts);
                        d.samples.push(ProblemSamples {
                            id: problem_id.clone(),
                            question: p.map(|p| p.question.clone()).unwrap_or_default(),
                            gold: p.and_then(|p| p.gold.clone()),
                            samples: s,
                        });
                    }
                    ScaleRecord::Tree {
                        strategy,
                        n,
                        outcome,
                    } => d.outcomes.push(RunOutcome {
                        strategy: strategy.name().to_string(),
                        budget: format!("n={n}"),
                        id: outcome.problem_id.clone(),
                        correct: is_correct(p, outcome.answer.as_deref(), &opts),
                        policy_tokens: outcome.spent.policy_tokens,
                        judge_tokens: outcome.spent.judge_tokens,
                    }),
                }
            }
            let mut ks: Vec<usize> = config.ns.clone();
            ks.sort_unstable();
            ks.dedup();
            ks.retain(|&k| k <= max_n);
            d.ks = ks;
        }
        RunContent::Solve(units) => {
            let budget = match run.info.config.get("budget").and_then(|b| b.as_u64()) {
                Some(b) => format!("tokens={b}"),
                None => "unlimited".to_string(),
            };
            for u in units {
                let Some(correct) = u.correct else {
                    d.unknown += 1;
                    continue;
                };
                let o = &u.outcome;
                d.outcomes.push(RunOutcome {
                    strategy: o.strategy.clone(),
                    budget: budget.clone(),
                    id: o.problem_id.clone(),
                    correct,
                    policy_tokens: o.spent.policy_tokens,
                    judge_tokens: o.spent.judge_tokens,
                });
                if is_sampling(&o.strategy) && !o.samples.is_empty() {
                    let mut s: Vec<SampleOutcome> = o
                        .samples
                        .iter()
                        .zip(&u.sample_correct)
                        .map(|(x, c)| sample_outcome(x, c.unwrap_or(false)))
                        .collect();
                    canonical_answers(&mut s, &opts);
                    let p = by_id.get(o.problem_id.as_str());
                    d.samples.push(ProblemSamples {
                        id: o.problem_id.clone(),
                        question: p.map(|p| p.question.clone()).unwrap_or_default(),
                        gold: p.and_then(|p| p.gold.clone()),
                        samples: s,
                    });
                }
            }
            let n = d.samples.iter().map(|p| p.samples.len()).max().unwrap_or(0);
            d.ks = default_ks(n);
        }
        RunContent::Annotate(_) => {
            return Err(EvalError::Invalid(format!(
                "run {} is an annotate run: it has step labels, not answers to score against compute",
                run.info.id
            )));
        }
    }
    Ok(d)
}

/// Every scored sample of a solve or scale run whose correctness is known, per problem:
/// scale's sample draws, or every sample of every solve outcome (tree-search beams
/// included). What calibration of the step scores against final answers reads.
pub fn scored_samples(run: &LoadedRun) -> Result<Vec<ProblemSamples>, EvalError> {
    let mut out = match &run.content {
        RunContent::Scale { .. } => compute_data(run)?.samples,
        RunContent::Solve(units) => units
            .iter()
            .map(|u| ProblemSamples {
                id: u.outcome.problem_id.clone(),
                question: String::new(),
                gold: None,
                samples: u
                    .outcome
                    .samples
                    .iter()
                    .zip(&u.sample_correct)
                    .filter_map(|(s, c)| Some(sample_outcome(s, (*c)?)))
                    .collect(),
            })
            .collect(),
        RunContent::Annotate(_) => {
            return Err(EvalError::Invalid(format!(
                "run {} is an annotate run: it has step labels, not scored answers",
                run.info.id
            )));
        }
    };
    for p in &mut out {
        p.samples.retain(|s| !s.step_scores.is_empty());
    }
    out.retain(|p| !p.samples.is_empty());
    Ok(out)
}

/// The rows of a `scale` table as curve points: accuracy with a percentile bootstrap
/// interval over problems (exact from the counts: resampling 0/1 outcomes depends only
/// on how many are 1), against the mean generated tokens. `x_label` is `N=n`.
pub fn scale_points(rows: &[ScaleRow], opts: Resampling) -> Vec<CurvePoint> {
    rows.iter()
        .filter_map(|r| {
            let values: Vec<f64> = (0..r.problems)
                .map(|i| f64::from(u8::from(i < r.correct)))
                .collect();
            Some(CurvePoint {
                series: r.strategy.clone(),
                x_label: format!("N={}", r.n),
                mean_tokens: r.mean_tokens,
                accuracy: bootstrap_mean(&values, opts.bootstrap, opts.level, opts.seed)?,
                problems: r.problems,
            })
        })
        .collect()
}

/// Reads a `scale.json` (the rows `stepwise scale` writes).
pub fn read_scale_rows(path: &Path) -> Result<Vec<ScaleRow>, EvalError> {
    let text = std::fs::read_to_string(path).map_err(|source| EvalError::Io {
        path: path.display().to_string(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| EvalError::Parse {
        path: path.display().to_string(),
        line: e.line(),
        reason: format!("not a scale table (a JSON list of scale rows): {e}"),
    })
}

/// A `scale` table (what `scale` prints and writes to scale.md) as a [`crate::table::Table`],
/// with the bootstrap interval of each accuracy.
pub fn scale_table(rows: &[ScaleRow], opts: Resampling) -> crate::table::Table {
    let pts = scale_points(rows, opts);
    let mut t = crate::table::Table::new([
        "strategy",
        "N",
        "accuracy %",
        "95% CI %",
        "correct / problems",
        "mean tokens (policy + judge)",
        "policy",
        "judge",
        "calls",
    ]);
    for (r, p) in rows.iter().zip(pts) {
        t.push([
            r.strategy.clone(),
            r.n.to_string(),
            format!("{:.1}", 100.0 * r.accuracy()),
            format!("{:.1}–{:.1}", 100.0 * p.accuracy.lo, 100.0 * p.accuracy.hi),
            format!("{}/{}", r.correct, r.problems),
            format!("{:.1}", r.mean_tokens),
            format!("{:.1}", r.mean_policy_tokens),
            format!("{:.1}", r.mean_judge_tokens),
            format!("{:.1}", r.mean_calls),
        ]);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_refs() {
        assert_eq!(RunRef::parse("17"), Some(RunRef::Id(17)));
        assert_eq!(RunRef::parse(" latest "), Some(RunRef::Latest));
        assert_eq!(RunRef::parse("LATEST"), Some(RunRef::Latest));
        assert_eq!(RunRef::parse("0"), None);
        assert_eq!(RunRef::parse("-3"), None);
        assert_eq!(RunRef::parse("scale-out"), None);
        assert_eq!(RunRef::parse("3.json"), None);
    }

    #[test]
    fn scale_points_bootstrap_from_counts() {
        let row = ScaleRow {
            strategy: "bon".into(),
            n: 4,
            problems: 10,
            correct: 7,
            mean_tokens: 120.0,
            mean_policy_tokens: 100.0,
            mean_judge_tokens: 20.0,
            mean_calls: 5.0,
        };
        let opts = Resampling {
            bootstrap: 400,
            ..Resampling::default()
        };
        let p = &scale_points(std::slice::from_ref(&row), opts)[0];
        assert!((p.accuracy.mean - 0.7).abs() < 1e-12);
        assert!(p.accuracy.lo < 0.7 && p.accuracy.hi > 0.7, "{p:?}");
        // the same as bootstrapping the 0/1 outcomes themselves
        let v: Vec<f64> = (0..10).map(|i| f64::from(u8::from(i < 7))).collect();
        assert_eq!(p.accuracy, bootstrap_mean(&v, 400, 0.95, 0).unwrap());
        assert_eq!(p.x_label, "N=4");
        let t = scale_table(&[row], opts).to_markdown();
        assert!(t.contains("| bon | 4 | 70.0 |"), "{t}");
        // a row without problems has no point
        let empty = ScaleRow {
            problems: 0,
            correct: 0,
            ..ScaleRow {
                strategy: "x".into(),
                n: 1,
                problems: 0,
                correct: 0,
                mean_tokens: 0.0,
                mean_policy_tokens: 0.0,
                mean_judge_tokens: 0.0,
                mean_calls: 0.0,
            }
        };
        assert!(scale_points(&[empty], opts).is_empty());
    }

    #[test]
    fn canonical_answers_vote_on_equivalence() {
        let s = |a: &str| SampleOutcome {
            answer: Some(a.into()),
            correct: false,
            step_scores: vec![],
            policy_tokens: 1,
            judge_tokens: 0,
            steps: vec![],
        };
        let mut v = vec![s("0.5"), s("1/2"), s(" 7 "), s("7.0"), s("8")];
        canonical_answers(&mut v, &Options::default());
        let a: Vec<&str> = v.iter().map(|x| x.answer.as_deref().unwrap()).collect();
        assert_eq!(a, ["0.5", "0.5", "7", "7", "8"]);
    }
}
