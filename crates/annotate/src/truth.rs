//! Label quality against the exact ground truth of `arith` problems.
//!
//! For every labelled solution the true first wrong step comes from
//! `stepwise_data::ArithSpec::ground_truth` (each step's claims against the exact
//! intermediate values). Per method:
//!
//! - **first-error accuracy**: the predicted first error (first step labelled bad, or
//!   none) equals the true one (or none), over all labelled solutions, and separately over
//!   solutions whose final answer is wrong (the only ones OmegaPRM searches, so that
//!   column compares methods on the same kind of solution);
//! - **step-label precision / recall / F1** with "bad step" as the positive class: a step
//!   is truly bad when it is at or after the true first error (the PRM convention), and
//!   predicted bad when its hard label is bad; counted over labelled steps;
//! - **cost per labelled step**: rollouts (every generated continuation, including the
//!   sampled solutions themselves) and generated tokens (rollouts and judge) divided by
//!   the labelled steps of those solutions.

use crate::{LabelledSolution, Method, QuestionResult, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use stepwise_core::Problem;
use stepwise_data::ArithSpec;

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthRow {
    pub method: Method,
    pub questions: usize,
    pub solutions: usize,
    pub labelled_steps: usize,
    pub first_error_acc: f64,
    pub wrong_answer_solutions: usize,
    pub first_error_acc_wrong_answer: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub rollouts: u64,
    pub generated_tokens: u64,
    pub rollouts_per_step: f64,
    pub tokens_per_step: f64,
}

fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 { f64::NAN } else { a / b }
}

/// The counts behind a row, for one question or summed over many (`+=`): bootstrap
/// intervals resample questions and sum their tallies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub questions: usize,
    pub solutions: usize,
    pub steps: usize,
    /// Solutions whose predicted first error is the true one (none for none).
    pub fe_hit: usize,
    /// Solutions with a wrong final answer, and of those the hits.
    pub wrong: usize,
    pub fe_hit_wrong: usize,
    /// Steps predicted bad and truly bad / truly good; truly bad predicted good.
    pub tp: usize,
    pub fp: usize,
    pub fn_: usize,
    pub rollouts: u64,
    pub tokens: u64,
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, o: Self) {
        self.questions += o.questions;
        self.solutions += o.solutions;
        self.steps += o.steps;
        self.fe_hit += o.fe_hit;
        self.wrong += o.wrong;
        self.fe_hit_wrong += o.fe_hit_wrong;
        self.tp += o.tp;
        self.fp += o.fp;
        self.fn_ += o.fn_;
        self.rollouts += o.rollouts;
        self.tokens += o.tokens;
    }
}

impl Tally {
    /// One question's result against its ground truth.
    pub fn of(spec: &ArithSpec, r: &QuestionResult) -> Self {
        let mut a = Self {
            questions: 1,
            rollouts: r.rollouts,
            tokens: r.spent.generated_tokens(),
            ..Self::default()
        };
        for s in &r.solutions {
            if s.labels.is_empty() {
                continue;
            }
            let truth = true_first_error(spec, s);
            let pred = s.first_error();
            a.solutions += 1;
            a.steps += s.labels.len();
            let hit = truth == pred;
            a.fe_hit += usize::from(hit);
            if s.answer_correct == Some(false) {
                a.wrong += 1;
                a.fe_hit_wrong += usize::from(hit);
            }
            for (i, l) in s.labels.iter().enumerate() {
                let truly_bad = truth.is_some_and(|f| i >= f);
                let pred_bad = !l.good;
                match (pred_bad, truly_bad) {
                    (true, true) => a.tp += 1,
                    (true, false) => a.fp += 1,
                    (false, true) => a.fn_ += 1,
                    (false, false) => {}
                }
            }
        }
        a
    }

    pub fn first_error_acc(&self) -> f64 {
        ratio(self.fe_hit as f64, self.solutions as f64)
    }

    pub fn precision(&self) -> f64 {
        ratio(self.tp as f64, (self.tp + self.fp) as f64)
    }

    pub fn recall(&self) -> f64 {
        ratio(self.tp as f64, (self.tp + self.fn_) as f64)
    }

    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        ratio(2.0 * p * r, p + r)
    }

    pub fn rollouts_per_step(&self) -> f64 {
        ratio(self.rollouts as f64, self.steps as f64)
    }

    pub fn tokens_per_step(&self) -> f64 {
        ratio(self.tokens as f64, self.steps as f64)
    }

    /// The row of `method` with these counts.
    pub fn row(&self, method: Method) -> TruthRow {
        TruthRow {
            method,
            questions: self.questions,
            solutions: self.solutions,
            labelled_steps: self.steps,
            first_error_acc: self.first_error_acc(),
            wrong_answer_solutions: self.wrong,
            first_error_acc_wrong_answer: ratio(self.fe_hit_wrong as f64, self.wrong as f64),
            precision: self.precision(),
            recall: self.recall(),
            f1: self.f1(),
            rollouts: self.rollouts,
            generated_tokens: self.tokens,
            rollouts_per_step: self.rollouts_per_step(),
            tokens_per_step: self.tokens_per_step(),
        }
    }
}

/// The true first wrong step of a solution's steps.
pub fn true_first_error(spec: &ArithSpec, s: &LabelledSolution) -> Option<usize> {
    spec.ground_truth(&s.steps).first_wrong
}

/// Each result's [`Tally`] against the ground truth of its problem, in order. Errors when
/// a result's problem is unknown or not an `arith` problem.
pub fn tallies(problems: &[Problem], results: &[QuestionResult]) -> Result<Vec<Tally>> {
    let by_id: HashMap<&str, &Problem> = problems.iter().map(|p| (p.id.as_str(), p)).collect();
    results
        .iter()
        .map(|r| {
            let p = by_id.get(r.problem_id.as_str()).ok_or_else(|| {
                crate::AnnotateError::Config(format!(
                    "result for unknown problem '{}'",
                    r.problem_id
                ))
            })?;
            Ok(Tally::of(&ArithSpec::from_problem(p)?, r))
        })
        .collect()
}

/// Every distinct sampled solution of `results` as a ProcessBench record
/// (`{id, problem, steps, label, final_answer_correct}`) whose `label` is its **exact**
/// first wrong step (0-based, -1 for none) from [`ArithSpec::ground_truth`], not a
/// method's label: a step-labelled test set with exact truth, for scoring any scorer with
/// `stepwise eval processbench --data FILE` on solutions of the policy's own kind.
///
/// All steps are kept (ProcessBench records are whole solutions). OmegaPRM's results are
/// left out (its solutions are rollouts cut at their first MC-0 prefix); a solution that
/// appears in several methods' results (the same text for the same problem) is written
/// once; a solution with no wrong step that never reaches the answer is left out (its
/// truth is undefined). `final_answer_correct` is the stored verification of its answer,
/// else whether the truth reaches the answer without a wrong step. Ids are
/// `PROBLEM_ID/N`, N counting the problem's distinct solutions in order. Errors when a
/// result's problem is unknown or not an `arith` problem.
pub fn processbench_records(
    problems: &[Problem],
    results: &[QuestionResult],
) -> Result<Vec<Map<String, Value>>> {
    let by_id: HashMap<&str, &Problem> = problems.iter().map(|p| (p.id.as_str(), p)).collect();
    let mut seen: HashSet<(&str, &[String])> = HashSet::new();
    let mut per_problem: HashMap<&str, usize> = HashMap::new();
    let mut out = Vec::new();
    for r in results.iter().filter(|r| r.method != Method::OmegaPrm) {
        let p = by_id.get(r.problem_id.as_str()).ok_or_else(|| {
            crate::AnnotateError::Config(format!("result for unknown problem '{}'", r.problem_id))
        })?;
        let spec = ArithSpec::from_problem(p)?;
        for s in &r.solutions {
            if s.steps.is_empty() || !seen.insert((s.problem_id.as_str(), s.steps.as_slice())) {
                continue;
            }
            let gt = spec.ground_truth(&s.steps);
            if gt.first_wrong.is_none() && !gt.reached_answer {
                continue;
            }
            let n = per_problem.entry(s.problem_id.as_str()).or_default();
            let id = format!("{}/{n}", s.problem_id);
            *n += 1;
            let correct = s
                .answer_correct
                .unwrap_or(gt.first_wrong.is_none() && gt.reached_answer);
            let v = json!({
                "id": id,
                "problem": p.question,
                "steps": s.steps,
                "label": gt.first_wrong.map_or(-1, |e| e as i64),
                "final_answer_correct": correct,
            });
            if let Value::Object(m) = v {
                out.push(m);
            }
        }
    }
    Ok(out)
}

/// Evaluates `results` (any methods) against the ground truth of `problems`.
/// Errors when a result's problem is not an `arith` problem.
pub fn evaluate(problems: &[Problem], results: &[QuestionResult]) -> Result<Vec<TruthRow>> {
    let mut acc: BTreeMap<Method, Tally> = BTreeMap::new();
    for (r, t) in results.iter().zip(tallies(problems, results)?) {
        *acc.entry(r.method).or_default() += t;
    }
    Ok(acc.into_iter().map(|(m, a)| a.row(m)).collect())
}

fn f(x: f64) -> String {
    if x.is_nan() {
        "–".into()
    } else {
        format!("{x:.3}")
    }
}

fn f1d(x: f64) -> String {
    if x.is_nan() {
        "–".into()
    } else {
        format!("{x:.1}")
    }
}

/// The rows as a Markdown table.
pub fn markdown(rows: &[TruthRow]) -> String {
    let mut s = String::from(
        "| method | questions | solutions | labelled steps | first-error acc | first-error acc (wrong-answer solutions) | precision (bad) | recall (bad) | F1 (bad) | rollouts | generated tokens | rollouts / labelled step | tokens / labelled step |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} (n={}) | {} | {} | {} | {} | {} | {} | {} |\n",
            r.method,
            r.questions,
            r.solutions,
            r.labelled_steps,
            f(r.first_error_acc),
            f(r.first_error_acc_wrong_answer),
            r.wrong_answer_solutions,
            f(r.precision),
            f(r.recall),
            f(r.f1),
            r.rollouts,
            r.generated_tokens,
            f1d(r.rollouts_per_step),
            f1d(r.tokens_per_step),
        ));
    }
    s
}
