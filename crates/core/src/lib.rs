//! Core types of stepwise.
//!
//! Every other crate speaks in these nouns:
//!
//! - [`Problem`]: a question with an optional gold answer and reference solution.
//! - [`Step`] and [`Rationale`]: a step-by-step solution and its final answer.
//! - [`StepScore`] and [`Aggregation`]: judgments of steps and how they combine.
//! - [`Budget`] and [`Spent`]: what a strategy may spend and what it did spend.
//! - [`Trace`]: the record of what a strategy did.
//!
//! Text handling that every job needs lives here too: [`StepSplitter`] splits a
//! rationale into steps and joins it back, and [`AnswerExtractor`] finds the
//! final answer in free text, returning the span it used.
//!
//! ```
//! use stepwise_core::{AnswerExtractor, StepSplitter};
//!
//! let text = "3 + 4 = 7\n\n7 * 2 = 14\n\nThe answer is \\boxed{14}.";
//! let steps = StepSplitter::default().split(text);
//! assert_eq!(steps.len(), 3);
//! let answer = AnswerExtractor::default().extract(text).unwrap();
//! assert_eq!(answer.text, "14");
//! ```
//!
//! This crate does no I/O and has no async ([`paths`] only reads environment variables).

mod budget;
mod extract;
pub mod metrics;
pub mod paths;
mod problem;
pub mod ranking;
mod rationale;
mod score;
mod trace;

pub use budget::{Budget, BudgetError, Spent};
pub use extract::{AnswerExtractor, ExtractRule, Extracted, find_boxed, strip_gsm8k_annotations};
pub use problem::Problem;
pub use rationale::{Delimiter, Rationale, Step, StepSplitter};
pub use score::{Aggregation, StepScore};
pub use trace::{CritiqueVerdict, Trace, TraceEvent, TreeNode};

/// An error and its causes on one line, `outer: inner: root`, for places that keep or
/// send the text of an error (a stored run's error, an HTTP body) rather than the error.
///
/// Library errors here do not repeat their `#[source]` in their own message, so this
/// prints each cause once.
///
/// ```
/// let io = std::io::Error::other("disk full");
/// assert_eq!(stepwise_core::error_chain(&io), "disk full");
/// ```
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}
