//! Labelled records read from stored runs, for heads on every label kind: `annotate` runs
//! (hard labels, soft MC values and outcomes of every labelled solution), and `solve` /
//! `scale` runs (every sample of every problem, with whether its final answer is correct:
//! the outcome labels of an OVM value head).

use super::{HeadError, LabelledRecord};
use std::collections::{HashMap, HashSet};
use stepwise_core::Problem;
use stepwise_jobs::kinds::annotate::{KIND as ANNOTATE, QuestionResult, VERSION as ANNOTATE_V};
use stepwise_jobs::kinds::scale::{Scale, ScaleRecord};
use stepwise_jobs::kinds::solve::{Sample, Solve};
use stepwise_jobs::{RunId, RunKind, RunStore};

/// `annotate` records read without the annotate crate (which depends on this one): the
/// config is kept as JSON, the records are the boundary type of `jobs`.
struct AnnotateRecords;

impl RunKind for AnnotateRecords {
    const KIND: &'static str = ANNOTATE;
    const VERSION: u32 = ANNOTATE_V;
    type Config = serde_json::Value;
    type Record = QuestionResult;
}

fn job_err(run: RunId) -> impl Fn(stepwise_jobs::JobError) -> HeadError {
    move |e| {
        HeadError::Training(format!(
            "reading run {run}: {}",
            stepwise_core::error_chain(&e)
        ))
    }
}

/// The labelled records of stored run `run`, and a description of the source:
/// - `annotate`: one record per labelled solution of every method (hard labels, MC values
///   as soft labels, and the outcome where the method knows it);
/// - `solve` / `scale`: one record per sample with steps (each distinct rationale of a
///   problem once), no step labels, and the outcome checked against the problem's gold
///   answer by the checker it names (unknown without a gold answer).
pub fn records_from_run(
    store: &dyn RunStore,
    run: RunId,
) -> Result<(Vec<LabelledRecord>, String), HeadError> {
    let info = store.run(run).map_err(|e| {
        HeadError::Training(format!(
            "reading run {run}: {}",
            stepwise_core::error_chain(&e)
        ))
    })?;
    let problems: HashMap<String, Problem> = store
        .problems(run)
        .map_err(|e| {
            HeadError::Training(format!(
                "reading run {run}: {}",
                stepwise_core::error_chain(&e)
            ))
        })?
        .into_iter()
        .map(|p| (p.id.clone(), p))
        .collect();
    let mut out = Vec::new();
    match info.kind.as_str() {
        ANNOTATE => {
            for (_, r) in
                stepwise_jobs::records::<AnnotateRecords>(store, run).map_err(job_err(run))?
            {
                let question = problems
                    .get(&r.problem_id)
                    .map(|p| p.question.clone())
                    .unwrap_or_default();
                for s in &r.solutions {
                    if s.labels.is_empty() && s.answer_correct.is_none() {
                        continue;
                    }
                    out.push(LabelledRecord {
                        id: format!("run{run}:{}:{}:{}", r.problem_id, r.method, s.sample),
                        question: if s.question.is_empty() {
                            question.clone()
                        } else {
                            s.question.clone()
                        },
                        steps: s.steps.clone(),
                        good: s.labels.iter().map(|l| l.good).collect(),
                        values: Some(s.labels.iter().map(|l| l.value).collect()),
                        answer_correct: s.answer_correct,
                    });
                }
            }
        }
        k if k == Solve::KIND || k == Scale::KIND => {
            // (problem, where the samples came from, the samples)
            let mut samples: Vec<(String, String, Vec<Sample>)> = Vec::new();
            if k == Solve::KIND {
                for (_, r) in stepwise_jobs::records::<Solve>(store, run).map_err(job_err(run))? {
                    let o = r.outcome;
                    samples.push((o.problem_id, o.strategy, o.samples));
                }
            } else {
                for (_, r) in stepwise_jobs::records::<Scale>(store, run).map_err(job_err(run))? {
                    match r {
                        ScaleRecord::Samples {
                            problem_id,
                            samples: s,
                            ..
                        } => samples.push((problem_id, "samples".into(), s)),
                        ScaleRecord::Tree {
                            strategy,
                            n,
                            outcome,
                        } => samples.push((
                            outcome.problem_id.clone(),
                            format!("{}@{n}", strategy.name()),
                            outcome.samples,
                        )),
                    }
                }
            }
            let opts = stepwise_verify::Options::default();
            let mut seen: HashSet<(String, Vec<String>)> = HashSet::new();
            for (pid, from, list) in samples {
                let Some(p) = problems.get(&pid) else {
                    return Err(HeadError::Training(format!(
                        "run {run}: a record names problem '{pid}', which the run does not hold"
                    )));
                };
                for (i, s) in list.iter().enumerate() {
                    let steps: Vec<String> =
                        s.rationale.steps.iter().map(|st| st.text.clone()).collect();
                    if steps.is_empty() || !seen.insert((pid.clone(), steps.clone())) {
                        continue;
                    }
                    out.push(LabelledRecord {
                        id: format!("run{run}:{pid}:{from}:{i}"),
                        question: p.question.clone(),
                        steps,
                        good: Vec::new(),
                        values: None,
                        answer_correct: stepwise_jobs::answer_correct(
                            p,
                            s.rationale.answer.as_deref(),
                            &opts,
                        ),
                    });
                }
            }
        }
        other => {
            return Err(HeadError::Training(format!(
                "run {run} is a '{other}' run; labels are read from annotate, solve and scale runs"
            )));
        }
    }
    Ok((out, format!("run {run} ({})", info.kind)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use stepwise_core::{Rationale, Spent, Trace};
    use stepwise_jobs::UnitRecord;
    use stepwise_jobs::kinds::annotate::{LabelledSolution, Method, StepLabel};
    use stepwise_jobs::kinds::solve::{Outcome, SolveRecord};

    fn sample(steps: &[&str], answer: &str) -> Sample {
        Sample {
            rationale: Rationale::from_steps(steps.iter().copied(), Some(answer.into())),
            ..Sample::default()
        }
    }

    fn store_with<K: RunKind>(
        config: &K::Config,
        problems: &[Problem],
        units: &[(&str, K::Record)],
    ) -> (stepwise_store::SqliteStore, RunId) {
        let store = stepwise_store::SqliteStore::in_memory().unwrap();
        let run = store
            .create_run_with_problems(
                K::KIND,
                K::VERSION,
                &serde_json::to_value(config).unwrap(),
                problems,
            )
            .unwrap();
        for (key, rec) in units {
            let u = UnitRecord::new(*key, "", serde_json::to_value(rec).unwrap());
            store.record(run, &u).unwrap();
        }
        (store, run)
    }

    #[test]
    fn solve_samples_become_outcome_records_checked_against_gold() {
        let problems = vec![
            Problem::new("p1", "What is 3 + 4?").with_gold("7"),
            Problem::new("p2", "No gold here"),
        ];
        let outcome = |pid: &str, samples: Vec<Sample>| SolveRecord {
            outcome: Outcome {
                problem_id: pid.into(),
                strategy: "bon".into(),
                answer: None,
                chosen: None,
                samples,
                spent: Spent::default(),
                trace: Trace::default(),
            },
            correct: None,
            prompt: None,
        };
        let units = [
            (
                "p1",
                outcome(
                    "p1",
                    vec![
                        sample(&["3 + 4 = 7", "so 7"], "7"),
                        sample(&["3 + 4 = 8"], "8"),
                        sample(&["3 + 4 = 7", "so 7"], "7"), // the same rationale again
                        Sample::default(),                   // no steps
                    ],
                ),
            ),
            ("p2", outcome("p2", vec![sample(&["x"], "1")])),
        ];
        let cfg = serde_json::json!({});
        let store = stepwise_store::SqliteStore::in_memory().unwrap();
        let run = store
            .create_run_with_problems(Solve::KIND, Solve::VERSION, &cfg, &problems)
            .unwrap();
        for (k, r) in &units {
            store
                .record(
                    run,
                    &UnitRecord::new(*k, *k, serde_json::to_value(r).unwrap()),
                )
                .unwrap();
        }
        let (recs, data) = records_from_run(&store, run).unwrap();
        assert_eq!(data, format!("run {run} (solve)"));
        let got: Vec<(&str, usize, Option<bool>)> = recs
            .iter()
            .map(|r| (r.question.as_str(), r.steps.len(), r.answer_correct))
            .collect();
        assert_eq!(
            got,
            vec![
                ("What is 3 + 4?", 2, Some(true)),
                ("What is 3 + 4?", 1, Some(false)),
                ("No gold here", 1, None),
            ]
        );
        assert!(recs.iter().all(|r| r.good.is_empty() && r.values.is_none()));
    }

    #[test]
    fn annotate_solutions_keep_values_and_outcomes_and_other_kinds_are_refused() {
        let label = |value: f64, good: bool| StepLabel {
            value,
            good,
            rollouts: 4,
            correct: (value * 4.0) as u32,
            reason: None,
        };
        let result = QuestionResult {
            problem_id: "p1".into(),
            method: Method::Mc,
            solutions: vec![LabelledSolution {
                problem_id: "p1".into(),
                question: "What is 3 + 4?".into(),
                gold: Some("7".into()),
                sample: 2,
                steps: vec!["3 + 4 = 8".into(), "so 8".into()],
                labels: vec![label(0.25, true), label(0.0, false)],
                answer_correct: Some(false),
            }],
            prefixes: Vec::new(),
            spent: Spent::default(),
            rollouts: 8,
            abstained: 0,
        };
        let problems = vec![Problem::new("p1", "What is 3 + 4?").with_gold("7")];
        let (store, run) =
            store_with::<AnnotateRecords>(&serde_json::json!({}), &problems, &[("mc/p1", result)]);
        let (recs, _) = records_from_run(&store, run).unwrap();
        assert_eq!(recs.len(), 1);
        let r = &recs[0];
        assert_eq!(r.id, format!("run{run}:p1:mc:2"));
        assert_eq!(r.good, vec![true, false]);
        assert_eq!(r.values, Some(vec![0.25, 0.0]));
        assert_eq!(r.answer_correct, Some(false));

        let other = store
            .create_run_with_problems("verify", 1, &serde_json::json!({}), &problems)
            .unwrap();
        let e = records_from_run(&store, other).unwrap_err().to_string();
        assert!(e.contains("'verify' run"), "{e}");
        assert!(records_from_run(&store, 999).is_err());
    }
}
