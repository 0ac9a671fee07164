//! The candidates of stored runs: every sample of every problem, with its verdict.

use crate::BuildError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use stepwise_core::Problem;
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
    }
}

/// Reads `solve` and `scale` runs (samples of sampling draws and of tree searches) into a
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
            other => {
                return Err(BuildError::Source(format!(
                    "run {run} is a '{other}' run; training data is built from solve and scale runs"
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
