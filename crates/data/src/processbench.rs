//! ProcessBench records: a model's step-by-step solution with the human label of its
//! earliest wrong step.

use crate::error::{DataError, Result};
use serde::{Deserialize, Serialize};
use stepwise_core::{Problem, Rationale};

/// The ProcessBench fields of a problem loaded from `processbench:*`.
///
/// The loader keeps them in [`Problem::metadata`] (`generator`, `steps`,
/// `final_answer_correct`, `label`); [`ProcessBenchRecord::from_problem`] reads them back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessBenchRecord {
    pub id: String,
    /// The model that wrote the solution.
    pub generator: String,
    pub problem: String,
    /// The solution, one string per step (paragraph).
    pub steps: Vec<String>,
    /// Whether the solution's final answer matches the reference.
    pub final_answer_correct: bool,
    /// 0-based index of the earliest wrong step, `-1` when every step is right.
    pub label: i64,
}

impl ProcessBenchRecord {
    /// Reads the record back from a problem's metadata.
    pub fn from_problem(p: &Problem) -> Result<Self> {
        let bad = |message: String| DataError::BadMetadata {
            id: p.id.clone(),
            message,
        };
        let m = &p.metadata;
        let steps = match m.get("steps") {
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .map(|s| s.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| bad("ProcessBench 'steps' must be a list of strings".into()))?,
            _ => {
                return Err(bad(
                    "not a ProcessBench problem: no 'steps' list in metadata".into(),
                ));
            }
        };
        let label = m
            .get("label")
            .and_then(|v| v.as_i64())
            .ok_or_else(|| bad("ProcessBench 'label' missing or not an integer".into()))?;
        if label < -1 || label >= steps.len() as i64 {
            return Err(bad(format!(
                "ProcessBench label {label} out of range for {} steps",
                steps.len()
            )));
        }
        let final_answer_correct = m
            .get("final_answer_correct")
            .and_then(|v| v.as_bool())
            .ok_or_else(|| {
                bad("ProcessBench 'final_answer_correct' missing or not a boolean".into())
            })?;
        let generator = m
            .get("generator")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string();
        Ok(Self {
            id: p.id.clone(),
            generator,
            problem: p.question.clone(),
            steps,
            final_answer_correct,
            label,
        })
    }

    /// The earliest wrong step, `None` when every step is right.
    pub fn first_error(&self) -> Option<usize> {
        usize::try_from(self.label).ok()
    }

    /// The steps as a [`Rationale`] (no final answer extracted).
    pub fn rationale(&self) -> Rationale {
        Rationale::from_steps(self.steps.iter().cloned(), None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn problem(meta: serde_json::Value) -> Problem {
        let mut p = Problem::new("pb-1", "q");
        p.metadata = meta.as_object().unwrap().clone();
        p
    }

    #[test]
    fn reads_steps_and_label() {
        let p = problem(
            json!({"generator": "g", "steps": ["a", "b"], "final_answer_correct": false, "label": 1}),
        );
        let r = ProcessBenchRecord::from_problem(&p).unwrap();
        assert_eq!(r.first_error(), Some(1));
        assert_eq!(r.rationale().len(), 2);
        let p = problem(json!({"steps": ["a"], "final_answer_correct": true, "label": -1}));
        assert_eq!(
            ProcessBenchRecord::from_problem(&p).unwrap().first_error(),
            None
        );
    }

    #[test]
    fn rejects_missing_or_inconsistent_fields() {
        let p = problem(json!({"steps": ["a"], "final_answer_correct": true, "label": 1}));
        let e = ProcessBenchRecord::from_problem(&p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("out of range"), "{e}");
        let e = ProcessBenchRecord::from_problem(&Problem::new("x", "q"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a ProcessBench problem"), "{e}");
    }
}
