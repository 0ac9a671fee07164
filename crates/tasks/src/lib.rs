//! Task families whose answers are checked exactly, each a seeded generator of
//! [`stepwise_core::Problem`]s (an iterator: `stepwise data gen` streams them) and a
//! verifier of model answers (the reward presets of `stepwise serve` call it).
//!
//! - [`knights`]: Knights and Knaves puzzles with a unique solution; the verifier reads
//!   the assignments models write.
//! - [`h1`]: GSM8K problems chained so one answer is a quantity of the next, with the
//!   chain's exact gold.
//! - [`masked`]: informative spans of a text corpus masked; exact and normalized match.
//!
//! - [`check`]: which checker decides a problem's answers (`metadata.task`), the one
//!   path `solve`, `scale`, `eval` and the data builders verify answers through.
//!
//! No I/O: callers load the corpora and write the problems.

pub mod check;
pub mod h1;
pub mod knights;
pub mod masked;

pub use check::{Checker, answer_correct};

/// The tasks with a verifier of their own (numeric tasks use the answer verifier).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    KnightsKnaves,
    MaskedSpan,
}

impl std::str::FromStr for Task {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "knights-knaves" | "knights" | "kk" => Ok(Self::KnightsKnaves),
            "masked-span" | "masked" => Ok(Self::MaskedSpan),
            _ => Err(format!(
                "unknown task '{s}' (expected knights-knaves or masked-span)"
            )),
        }
    }
}

impl Task {
    pub fn name(self) -> &'static str {
        match self {
            Self::KnightsKnaves => "knights-knaves",
            Self::MaskedSpan => "masked-span",
        }
    }

    /// The reward in [0, 1] of `response` against `gold`; `None` when `gold` is not an
    /// answer of this task (a Knights-and-Knaves gold lists every inhabitant's role).
    pub fn score(self, response: &str, gold: &str) -> Option<f64> {
        match self {
            Self::KnightsKnaves => knights::score(response, gold),
            Self::MaskedSpan => Some(masked::score(response, gold)),
        }
    }
}
