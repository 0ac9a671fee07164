//! Math answer equivalence (work in progress: the verify helper replaces this file).
//!
//! Public contract other crates code against; keep these names and signatures.

use serde::{Deserialize, Serialize};

/// The outcome of comparing a predicted answer to a gold answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Equal,
    NotEqual,
    /// The verifier could not decide within its bounds (treat as not equal for rewards).
    Undecided,
}

impl Verdict {
    pub fn is_equal(self) -> bool {
        self == Verdict::Equal
    }
}

/// Options that mirror math-verify's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Options {
    pub float_rounding: u32,
    pub strict: bool,
    pub allow_set_relation_comp: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            float_rounding: 6,
            strict: true,
            allow_set_relation_comp: false,
        }
    }
}

/// Compares a predicted answer with a gold answer.
pub fn verify(gold: &str, pred: &str, _opts: &Options) -> Verdict {
    if gold.trim() == pred.trim() {
        Verdict::Equal
    } else {
        Verdict::NotEqual
    }
}
