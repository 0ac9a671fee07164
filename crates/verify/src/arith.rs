//! The arithmetic claim checker: every claim in a step, checked exactly. It lives here,
//! beside the exact evaluator it uses, so that reward functions (`stepwise-reward`) can
//! check steps without the model-backed scorers of `stepwise-score`, which wraps it as
//! its `arith` step scorer.

use crate::claims::{Claim, decimal_places, find_claims};
use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{One, Signed};
use serde::{Deserialize, Serialize};

/// What checking one claim found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "verdict")]
pub enum ClaimCheck {
    /// Both sides have the same exact value (or the right side is the left side
    /// rounded to the decimals it shows).
    Right,
    /// The sides differ; their values, as written by the evaluator.
    Wrong { lhs: String, rhs: String },
    /// A side could not be evaluated exactly (unsupported syntax, division by zero,
    /// too large).
    Unchecked,
}

/// A claim and its check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckedClaim {
    pub claim: Claim,
    pub check: ClaimCheck,
}

type Eval = fn(&str) -> Option<BigRational>;

/// Checks arithmetic claims exactly, with rational arithmetic (`crate::exact_value`;
/// no model text is ever executed).
///
/// A step's score: 1 when it makes at least one claim and all of them are right;
/// [`ArithChecker::unchecked`] (default 0.5) when it makes no checkable claim; and
/// `unchecked × right / (right + wrong)` when any claim is wrong, so a wrong claim
/// always puts a step below one without claims, and more wrong claims put it lower.
/// Costs no model tokens.
#[derive(Debug, Clone)]
pub struct ArithChecker {
    /// Score of a step with no checkable claim.
    pub unchecked: f64,
    eval: Eval,
}

impl Default for ArithChecker {
    fn default() -> Self {
        Self {
            unchecked: 0.5,
            eval: crate::exact_value,
        }
    }
}

/// Longest side (in bytes, after normalization) the checker will evaluate.
const MAX_SIDE: usize = 400;

impl ArithChecker {
    /// Finds and checks every claim in `text`.
    pub fn check_text(&self, text: &str) -> Vec<CheckedClaim> {
        find_claims(text)
            .into_iter()
            .map(|claim| {
                let check = self.check(&claim);
                CheckedClaim { claim, check }
            })
            .collect()
    }

    fn check(&self, c: &Claim) -> ClaimCheck {
        if c.lhs.len() > MAX_SIDE || c.rhs.len() > MAX_SIDE {
            return ClaimCheck::Unchecked;
        }
        let (Some(l), Some(r)) = ((self.eval)(&c.lhs), (self.eval)(&c.rhs)) else {
            return ClaimCheck::Unchecked;
        };
        if l == r {
            return ClaimCheck::Right;
        }
        // A result written with d decimals is right when it is the exact value rounded.
        let rounded = |exact: &BigRational, shown: &BigRational, d: u32| {
            let tol = BigRational::new(BigInt::one(), BigInt::from(10u32).pow(d) * 2);
            (exact - shown).abs() <= tol
        };
        let ok = match (decimal_places(&c.rhs), decimal_places(&c.lhs)) {
            (Some(d), _) if rounded(&l, &r, d) => true,
            (_, Some(d)) if rounded(&r, &l, d) => true,
            _ => false,
        };
        if ok {
            ClaimCheck::Right
        } else {
            ClaimCheck::Wrong {
                lhs: l.to_string(),
                rhs: r.to_string(),
            }
        }
    }

    /// The score of a step from its claims, and a reason naming the wrong claims.
    pub fn score_text(&self, text: &str) -> (f64, String) {
        let checked = self.check_text(text);
        let right = checked
            .iter()
            .filter(|c| c.check == ClaimCheck::Right)
            .count();
        let wrong: Vec<String> = checked
            .iter()
            .filter_map(|c| match &c.check {
                ClaimCheck::Wrong { lhs, .. } => Some(format!(
                    "'{}' is wrong: {} = {lhs}",
                    c.claim.written(text),
                    c.claim.lhs
                )),
                _ => None,
            })
            .collect();
        let unchecked = checked.len() - right - wrong.len();
        if !wrong.is_empty() {
            let s = self.unchecked * right as f64 / (right + wrong.len()) as f64;
            (s, wrong.join("; "))
        } else if right > 0 {
            (
                1.0,
                format!("{right} claim(s) right, {unchecked} unchecked"),
            )
        } else {
            (
                self.unchecked,
                format!("no checkable claim ({unchecked} unchecked)"),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn score(t: &str) -> f64 {
        ArithChecker::default().score_text(t).0
    }

    #[test]
    fn right_wrong_and_none() {
        assert_eq!(score("12 + 7 = 19"), 1.0);
        assert!(score("12 + 7 = 18") < 0.5);
        assert_eq!(score("Let us think."), 0.5);
        assert_eq!(score("$5\\times 3=15$ and <<48/2=24>>24"), 1.0);
        assert!(score("3 + 4 = 7 = 8") < 0.5);
        assert_eq!(score("10 / 3 = 3.33"), 1.0);
        assert!(score("10 / 3 = 3.34") < 0.5);
        assert_eq!(score("1 / 3 = 0.333"), 1.0);
        // one wrong of two ranks below one wrong of one... and below none
        assert!(score("1 + 1 = 2, 2 + 2 = 5") > score("2 + 2 = 5"));
        let (_, why) = ArithChecker::default().score_text("So 2 + 2 = 5 apples");
        assert!(why.contains("2 + 2 = 5"), "{why}");
    }

    #[test]
    fn division_by_zero_is_unchecked() {
        let c = ArithChecker::default().check_text("5 / 0 = 1");
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].check, ClaimCheck::Unchecked);
    }

    fn op_text(a: i64, b: i64, op: usize, style: usize, result: String) -> (String, i64) {
        let (sym, latex, val) = match op {
            0 => ("+", "+", a + b),
            1 => ("-", "-", a - b),
            2 => ("×", "\\times", a * b),
            _ => ("/", "\\div", a),
        };
        // for division the left operand is a*b so the quotient is a
        let lhs_a = if op == 3 { a * b } else { a };
        let text = match style {
            0 => format!("So {lhs_a} {sym} {b} = {result}."),
            1 => format!("${lhs_a}{latex} {b}={result}$"),
            2 => format!(
                "We get <<{lhs_a}{}{b}={result}>>{result} things",
                if op == 2 { "*" } else { sym }
            ),
            _ => format!("{lhs_a} {sym} {b} = {result} = {result}"),
        };
        (text, val)
    }

    proptest! {
        #[test]
        fn correct_claims_pass_and_perturbed_fail(
            a in 0i64..10_000, b in 1i64..1000, op in 0usize..4, style in 0usize..4,
            delta in prop_oneof![-50i64..-1, 1i64..50],
        ) {
            let (_, val) = op_text(a, b, op, style, String::new());
            let (right, _) = op_text(a, b, op, style, val.to_string());
            prop_assert_eq!(score(&right), 1.0, "{}", right);
            let (wrong, _) = op_text(a, b, op, style, (val + delta).to_string());
            prop_assert!(score(&wrong) < 0.5, "{}", wrong);
        }
    }
}
