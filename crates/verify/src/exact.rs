//! Exact evaluation of constant expressions over the rationals.

use crate::expr::Expr;
use crate::num;
use num_rational::BigRational;
use num_traits::{Signed, ToPrimitive, Zero};

/// The exact rational value of `e`, or `None` when it is not a rational
/// constant (symbols, irrational roots, `pi`) or would exceed the caps.
pub fn eval(e: &Expr) -> Option<BigRational> {
    eval_depth(e, 0)
}

fn eval_depth(e: &Expr, depth: usize) -> Option<BigRational> {
    if depth > crate::limits::MAX_DEPTH {
        return None;
    }
    let d = depth + 1;
    match e {
        Expr::Num { value, .. } => Some(value.clone()),
        Expr::Add(v) => {
            let mut acc = BigRational::zero();
            for x in v {
                acc = num::add(&acc, &eval_depth(x, d)?)?;
            }
            Some(acc)
        }
        Expr::Mul(v) => {
            let mut acc = BigRational::from_integer(1.into());
            for x in v {
                acc = num::mul(&acc, &eval_depth(x, d)?)?;
            }
            Some(acc)
        }
        Expr::Neg(a) => Some(-eval_depth(a, d)?),
        Expr::Div(a, b) => num::div(&eval_depth(a, d)?, &eval_depth(b, d)?),
        Expr::Pow(a, b) => {
            let exp = eval_depth(b, d)?;
            let base = eval_depth(a, d)?;
            num::pow(&base, &exp)
        }
        Expr::Root { radicand, index } => {
            let k = eval_depth(index, d)?;
            if !k.is_integer() || !k.is_positive() {
                return None;
            }
            num::root(&eval_depth(radicand, d)?, k.numer().to_u64()?)
        }
        Expr::Factorial(a) => num::factorial(&eval_depth(a, d)?),
        Expr::Binom(a, b) => num::binom(&eval_depth(a, d)?, &eval_depth(b, d)?),
        Expr::Percent(a) => num::div(&eval_depth(a, d)?, &BigRational::from_integer(100.into())),
        Expr::Func(name, args) if name == "abs" && args.len() == 1 => {
            Some(eval_depth(&args[0], d)?.abs())
        }
        _ => None,
    }
}
