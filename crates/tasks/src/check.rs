//! Which checker decides a problem's answers: the seam the verification path of `solve`,
//! `scale`, `eval` and the data builders asks (through [`answer_correct`]).
//!
//! A problem names its task in `metadata.task` (the generators of this crate write it;
//! a dataset file may carry a top-level `task` field, which the reader keeps in
//! metadata). Problems written before that field are recognised by their task metadata
//! (`knights`, `masked`, `h1_links`). Everything else, and `h1` (numeric golds), is
//! checked by the answer verifier (`stepwise_verify::answer_correct`).

use crate::Task;
use stepwise_core::Problem;

/// The metadata key naming a problem's task.
pub const TASK_KEY: &str = "task";

/// How one problem's answers are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checker {
    /// The answer verifier: mathematical equivalence with the gold answer.
    Answer,
    /// A task's own exact checker.
    Task(Task),
}

impl Checker {
    /// The checker a task name asks for (`h1` and `arith` are numeric: the answer
    /// verifier).
    pub fn named(name: &str) -> Result<Self, String> {
        match name.trim().to_ascii_lowercase().as_str() {
            "h1" | "arith" | "math" | "answer" => Ok(Self::Answer),
            other => other.parse::<Task>().map(Self::Task).map_err(|e| {
                format!("{e}; numeric tasks (h1, arith, math) use the answer verifier")
            }),
        }
    }

    /// The checker `p` names: its `metadata.task`, else its task metadata, else the
    /// answer verifier. A `task` that is not a string or names no task is an error
    /// naming the problem.
    pub fn of(p: &Problem) -> Result<Self, String> {
        match p.metadata.get(TASK_KEY) {
            Some(serde_json::Value::String(s)) => {
                Self::named(s).map_err(|e| format!("problem '{}': metadata.task: {e}", p.id))
            }
            Some(other) => Err(format!(
                "problem '{}': metadata.task is {other}, not a task name",
                p.id
            )),
            None if p.metadata.contains_key(crate::knights::METADATA_KEY) => {
                Ok(Self::Task(Task::KnightsKnaves))
            }
            None if p.metadata.contains_key(crate::masked::METADATA_KEY) => {
                Ok(Self::Task(Task::MaskedSpan))
            }
            None => Ok(Self::Answer),
        }
    }

    /// Whether `answer` is right against `gold`. A task's gold that its checker cannot
    /// read (a Knights-and-Knaves gold must list every inhabitant's role) is never right.
    pub fn correct(self, gold: &str, answer: &str, opts: &stepwise_verify::Options) -> bool {
        match self {
            Self::Answer => stepwise_verify::verify(gold, answer, opts).is_equal(),
            Self::Task(t) => t.score(answer, gold).is_some_and(|s| s >= 1.0),
        }
    }

    /// The name stored with results.
    pub fn name(self) -> &'static str {
        match self {
            Self::Answer => "answer",
            Self::Task(t) => t.name(),
        }
    }
}

/// Whether `answer` is right for `p`, by the checker `p` names: `None` without a gold
/// answer, `Some(false)` without an answer. A problem naming an unknown task is checked
/// by the answer verifier, with a warning (jobs refuse such problems up front through
/// [`validate`]).
pub fn answer_correct(
    p: &Problem,
    answer: Option<&str>,
    opts: &stepwise_verify::Options,
) -> Option<bool> {
    let gold = p.gold.as_deref()?;
    let checker = Checker::of(p).unwrap_or_else(|e| {
        tracing::warn!("{e}: checked by the answer verifier");
        Checker::Answer
    });
    Some(answer.is_some_and(|a| checker.correct(gold, a, opts)))
}

/// The first problem whose task cannot be checked, as an error naming it.
pub fn validate<'a>(problems: impl IntoIterator<Item = &'a Problem>) -> Result<(), String> {
    problems
        .into_iter()
        .try_for_each(|p| Checker::of(p).map(|_| ()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(gold: &str, meta: serde_json::Value) -> Problem {
        let mut p = Problem::new("q", "?").with_gold(gold.to_string());
        if let serde_json::Value::Object(m) = meta {
            p.metadata = m;
        }
        p
    }

    #[test]
    fn the_problem_names_its_checker() {
        let o = stepwise_verify::Options::default();
        let kk = problem(
            "Ann is a knight, Bo is a knave",
            serde_json::json!({"task": "knights-knaves"}),
        );
        // another phrasing of the same assignment: right by the task's checker only
        let said = "Knights: Ann. Knaves: Bo";
        assert_eq!(answer_correct(&kk, Some(said), &o), Some(true));
        assert_eq!(
            answer_correct(&kk, Some("Ann is a knave, Bo is a knave"), &o),
            Some(false)
        );
        assert_eq!(answer_correct(&kk, None, &o), Some(false));
        let generic = problem("Ann is a knight, Bo is a knave", serde_json::json!({}));
        assert_eq!(answer_correct(&generic, Some(said), &o), Some(false));
        // older files: recognised by their task metadata
        let old = problem(
            "Ann is a knight, Bo is a knave",
            serde_json::json!({"knights": {}}),
        );
        assert_eq!(Checker::of(&old), Ok(Checker::Task(Task::KnightsKnaves)));
        let masked = problem("the Nile", serde_json::json!({"task": "masked-span"}));
        assert_eq!(answer_correct(&masked, Some("nile"), &o), Some(true));
        // h1 golds are numbers: the answer verifier
        let h1 = problem("1/2", serde_json::json!({"task": "h1"}));
        assert_eq!(Checker::of(&h1), Ok(Checker::Answer));
        assert_eq!(answer_correct(&h1, Some("0.5"), &o), Some(true));
        assert_eq!(answer_correct(&Problem::new("x", "?"), Some("1"), &o), None);
    }

    #[test]
    fn unknown_tasks_are_named() {
        let p = problem("1", serde_json::json!({"task": "sudoku"}));
        let e = Checker::of(&p).unwrap_err();
        assert!(e.contains("problem 'q'") && e.contains("sudoku"), "{e}");
        assert!(validate([&p]).is_err());
        let p = problem("1", serde_json::json!({"task": 3}));
        assert!(Checker::of(&p).unwrap_err().contains("not a task name"));
    }
}
