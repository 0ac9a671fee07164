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
use std::collections::{BTreeMap, HashMap};
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

#[derive(Default)]
struct Acc {
    questions: usize,
    solutions: usize,
    steps: usize,
    fe_hit: usize,
    wrong: usize,
    fe_hit_wrong: usize,
    tp: usize,
    fp: usize,
    fn_: usize,
    rollouts: u64,
    tokens: u64,
}

/// The true first wrong step of a solution's steps.
pub fn true_first_error(spec: &ArithSpec, s: &LabelledSolution) -> Option<usize> {
    spec.ground_truth(&s.steps).first_wrong
}

/// Evaluates `results` (any methods) against the ground truth of `problems`.
/// Errors when a result's problem is not an `arith` problem.
pub fn evaluate(problems: &[Problem], results: &[QuestionResult]) -> Result<Vec<TruthRow>> {
    let by_id: HashMap<&str, &Problem> = problems.iter().map(|p| (p.id.as_str(), p)).collect();
    let mut acc: BTreeMap<Method, Acc> = BTreeMap::new();
    for r in results {
        let p = by_id.get(r.problem_id.as_str()).ok_or_else(|| {
            crate::AnnotateError::Config(format!("result for unknown problem '{}'", r.problem_id))
        })?;
        let spec = ArithSpec::from_problem(p)?;
        let a = acc.entry(r.method).or_default();
        a.questions += 1;
        a.rollouts += r.rollouts;
        a.tokens += r.spent.generated_tokens();
        for s in &r.solutions {
            if s.labels.is_empty() {
                continue;
            }
            let truth = true_first_error(&spec, s);
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
    }
    Ok(acc
        .into_iter()
        .map(|(method, a)| {
            let precision = ratio(a.tp as f64, (a.tp + a.fp) as f64);
            let recall = ratio(a.tp as f64, (a.tp + a.fn_) as f64);
            TruthRow {
                method,
                questions: a.questions,
                solutions: a.solutions,
                labelled_steps: a.steps,
                first_error_acc: ratio(a.fe_hit as f64, a.solutions as f64),
                wrong_answer_solutions: a.wrong,
                first_error_acc_wrong_answer: ratio(a.fe_hit_wrong as f64, a.wrong as f64),
                precision,
                recall,
                f1: ratio(2.0 * precision * recall, precision + recall),
                rollouts: a.rollouts,
                generated_tokens: a.tokens,
                rollouts_per_step: ratio(a.rollouts as f64, a.steps as f64),
                tokens_per_step: ratio(a.tokens as f64, a.steps as f64),
            }
        })
        .collect())
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
