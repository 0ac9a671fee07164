//! The candidates of stored runs: every sample of every problem, with its verdict, and
//! every labelled solution of an `annotate` run, with its step labels.

use crate::BuildError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use stepwise_core::{AnswerExtractor, Problem};
use stepwise_jobs::kinds::annotate::{LabelledSolution, QuestionResult};
use stepwise_jobs::kinds::scale::{Scale, ScaleRecord};
use stepwise_jobs::kinds::solve::{Sample, SearchSettings, Solve};
use stepwise_jobs::{RunId, RunStore, records, stored_config};

/// One stored sample of a problem, as the builders read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// The run it was stored in.
    pub run: RunId,
    /// Its unit's key and position among that unit's samples.
    pub unit: String,
    pub index: usize,
    pub text: String,
    pub steps: Vec<String>,
    pub answer: Option<String>,
    /// Whether the answer verifies against the gold answer (absent without gold).
    pub correct: Option<bool>,
    /// The stored rationale score (scorer or PRM, aggregated), when scored.
    pub score: Option<f64>,
    /// The stored step scores, in step order, when scored.
    pub step_scores: Vec<f64>,
    pub tokens: u64,
    /// Whether it reached a final answer by itself.
    pub finished: bool,
    /// Hard step labels of an `annotate` run (`labels[i]`: step `i` is good), for its
    /// first `labels.len()` steps; empty for samples of solve and scale runs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<bool>,
    /// The Likert judge's judgments of this sample, when a `likert` scorer scored it
    /// (read from its stored step scores: `stepwise_score::likert_record`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub likert: Option<stepwise_score::LikertRecord>,
}

impl Candidate {
    /// Every step carries a label and every label is good.
    pub fn all_steps_good(&self) -> bool {
        !self.steps.is_empty()
            && self.labels.len() == self.steps.len()
            && self.labels.iter().all(|&g| g)
    }

    /// The first step labelled bad.
    pub fn first_bad_label(&self) -> Option<usize> {
        self.labels.iter().position(|&g| !g)
    }
}

/// The problems of some runs and their candidates by problem id (problems in the order
/// of the first run that has them).
#[derive(Debug, Clone, Default)]
pub struct Pool {
    pub problems: Vec<Problem>,
    pub candidates: BTreeMap<String, Vec<Candidate>>,
    /// The search settings of the first run (its policy prompt renders the prompts).
    pub settings: SearchSettings,
}

fn candidate(run: RunId, unit: &str, index: usize, s: &Sample, p: Option<&Problem>) -> Candidate {
    let mut step_scores: Vec<(usize, f64)> = s.scores.iter().map(|x| (x.step, x.score)).collect();
    step_scores.sort_by_key(|x| x.0);
    Candidate {
        run,
        unit: unit.to_string(),
        index,
        text: s.text.clone(),
        steps: s.rationale.steps.iter().map(|x| x.text.clone()).collect(),
        answer: s.rationale.answer.clone(),
        correct: p.and_then(|p| {
            stepwise_jobs::answer_correct(
                p,
                s.rationale.answer.as_deref(),
                &stepwise_verify::Options::default(),
            )
        }),
        score: s.score,
        step_scores: step_scores.into_iter().map(|x| x.1).collect(),
        tokens: s.tokens,
        finished: s.finished,
        labels: Vec::new(),
        likert: stepwise_score::likert_record(&s.scores),
    }
}

/// A labelled solution of an `annotate` unit as a candidate: its steps joined as the
/// annotate job stores them (blank lines), its answer read from them, its verdict by the
/// problem's checker (else the stored one), its soft labels as step scores (the lowest is
/// its score) and its hard labels. Annotate runs count no tokens per solution: 0.
fn labelled(
    run: RunId,
    unit: &str,
    index: usize,
    s: &LabelledSolution,
    p: Option<&Problem>,
) -> Candidate {
    let text = s.steps.join("\n\n");
    let answer = AnswerExtractor::default().extract(&text).map(|a| a.text);
    let step_scores: Vec<f64> = s.labels.iter().map(|l| l.value).collect();
    Candidate {
        run,
        unit: unit.to_string(),
        index,
        steps: s.steps.clone(),
        correct: match p {
            Some(p) => stepwise_jobs::answer_correct(
                p,
                answer.as_deref(),
                &stepwise_verify::Options::default(),
            ),
            None => s.answer_correct,
        },
        finished: answer.is_some(),
        answer,
        text,
        score: step_scores.iter().copied().reduce(f64::min),
        step_scores,
        tokens: 0,
        labels: s.labels.iter().map(|l| l.good).collect(),
        likert: None,
    }
}

/// Reads `solve` and `scale` runs (samples of sampling draws and of tree searches) and
/// `annotate` runs (labelled solutions, one candidate per solution and method) into a
/// pool. A teacher's run (weak-to-strong supervision) is one more run.
pub fn load(store: &dyn RunStore, runs: &[RunId]) -> Result<Pool, BuildError> {
    let mut pool = Pool::default();
    let mut seen = std::collections::HashSet::new();
    for (k, &run) in runs.iter().enumerate() {
        let info = store.run(run)?;
        let problems = store.problems(run)?;
        let by_id: BTreeMap<&str, &Problem> = problems.iter().map(|p| (p.id.as_str(), p)).collect();
        let mut push = |pid: &str, c: Candidate| {
            pool.candidates.entry(pid.to_string()).or_default().push(c);
        };
        match info.kind.as_str() {
            "solve" => {
                if k == 0 {
                    pool.settings = stored_config::<Solve>(&info)?.search;
                }
                for (unit, r) in records::<Solve>(store, run)? {
                    let pid = r.outcome.problem_id.clone();
                    for (i, s) in r.outcome.samples.iter().enumerate() {
                        push(
                            &pid,
                            candidate(run, &unit.unit.key, i, s, by_id.get(pid.as_str()).copied()),
                        );
                    }
                }
            }
            "scale" => {
                if k == 0 {
                    pool.settings = stored_config::<Scale>(&info)?.search;
                }
                for (unit, r) in records::<Scale>(store, run)? {
                    let pid = r.problem_id().to_string();
                    let samples = match &r {
                        ScaleRecord::Samples { samples, .. } => samples.as_slice(),
                        ScaleRecord::Tree { outcome, .. } => outcome.samples.as_slice(),
                    };
                    for (i, s) in samples.iter().enumerate() {
                        push(
                            &pid,
                            candidate(run, &unit.unit.key, i, s, by_id.get(pid.as_str()).copied()),
                        );
                    }
                }
            }
            stepwise_jobs::kinds::annotate::KIND => {
                if k == 0 {
                    // the policy prompt that sampled the solutions renders the prompts
                    pool.settings = SearchSettings {
                        policy_prompt: info
                            .config
                            .get("policy_prompt")
                            .and_then(|v| v.as_str())
                            .map(str::to_string),
                        ..SearchSettings::default()
                    };
                }
                for u in store.units(run)? {
                    let r: QuestionResult =
                        serde_json::from_value(u.unit.payload).map_err(|e| {
                            BuildError::Source(format!(
                                "run {run}, unit '{}': not an annotate result: {e}",
                                u.unit.key
                            ))
                        })?;
                    for (i, s) in r.solutions.iter().enumerate() {
                        let p = by_id.get(s.problem_id.as_str()).copied();
                        push(&s.problem_id, labelled(run, &u.unit.key, i, s, p));
                    }
                }
            }
            other => {
                return Err(BuildError::Source(format!(
                    "run {run} is a '{other}' run; training data is built from solve, scale and annotate runs"
                )));
            }
        }
        for p in problems {
            if seen.insert(p.id.clone()) {
                pool.problems.push(p);
            }
        }
    }
    // units come back in key order; order candidates by run, unit, index for stability
    for v in pool.candidates.values_mut() {
        v.sort_by(|a, b| (a.run, &a.unit, a.index).cmp(&(b.run, &b.unit, b.index)));
    }
    Ok(pool)
}
