//! Running many problems concurrently, and storing outcomes in the run store.

use crate::Outcome;
use futures::StreamExt;
use std::future::Future;
use stepwise_core::Problem;
use stepwise_data::{SampleRow, StepScoreRow, UnitRecord};
use stepwise_verify::Options;

/// Runs `f` over `items` with at most `jobs` in flight and hands each result to `on_done`
/// as it finishes (so finished work is saved even if a later item fails or the process
/// is interrupted). Stops at the first error.
pub async fn for_each_concurrent<T, R, E, F, Fut>(
    items: Vec<T>,
    jobs: usize,
    f: F,
    mut on_done: impl FnMut(R) -> Result<(), E>,
) -> Result<(), E>
where
    F: Fn(T) -> Fut,
    Fut: Future<Output = Result<R, E>>,
{
    let mut stream = futures::stream::iter(items)
        .map(f)
        .buffer_unordered(jobs.max(1));
    while let Some(r) = stream.next().await {
        on_done(r?)?;
    }
    Ok(())
}

/// Whether an answer verifies against the problem's gold answer (`None` without gold).
pub fn correct(problem: &Problem, answer: Option<&str>, opts: &Options) -> Option<bool> {
    stepwise_verify::answer_correct(problem.gold.as_deref(), answer, opts)
}

/// A solve outcome as a run-store unit (key: the problem id): the outcome as payload
/// (with `correct` when the problem has gold), every sample, every step score.
pub fn unit_record(problem: &Problem, outcome: &Outcome, opts: &Options) -> UnitRecord {
    let mut payload = serde_json::to_value(outcome).unwrap_or(serde_json::Value::Null);
    if let (Some(c), Some(obj)) = (
        correct(problem, outcome.answer.as_deref(), opts),
        payload.as_object_mut(),
    ) {
        obj.insert("correct".into(), c.into());
    }
    let mut unit = UnitRecord::new(problem.id.clone(), problem.id.clone(), payload);
    for (i, s) in outcome.samples.iter().enumerate() {
        let mut row = SampleRow::new(i as u32, s.text.clone());
        row.answer = s.rationale.answer.clone();
        row.correct = correct(problem, s.rationale.answer.as_deref(), opts);
        row.tokens = Some(s.tokens);
        unit.samples.push(row);
        for sc in &s.scores {
            if sc.score.is_finite() {
                unit.step_scores.push(StepScoreRow {
                    sample_idx: i as u32,
                    step_idx: sc.step as u32,
                    scorer: sc.scorer.clone(),
                    score: sc.score,
                });
            }
        }
    }
    unit
}
