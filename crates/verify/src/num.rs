//! Exact rational arithmetic with hard size caps, so no input can make it slow.

use num_bigint::{BigInt, Sign};
use num_integer::Integer;
use num_rational::BigRational;
use num_traits::{One, Signed, ToPrimitive, Zero};

/// Largest numerator or denominator kept exactly, in bits.
pub const MAX_BITS: u64 = 16_384;
/// Largest `n` for which `n!` is computed exactly.
pub const MAX_FACTORIAL: u64 = 1_500;
/// Largest root index tried exactly.
pub const MAX_ROOT_INDEX: u64 = 64;

/// Most work units (about one 64-bit word operation each: a product costs
/// `words_a·words_b`, num-bigint's binary gcd `64·words²`) one top-level call may
/// spend on exact arithmetic; past it every operation refuses (`None`) and callers
/// fall back to floating point. Reset by [`reset_work`] at each entry point.
pub const MAX_WORK: u64 = 2_000_000;

thread_local! {
    static WORK: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Starts a fresh work budget for this thread (called by the public entry points).
pub fn reset_work() {
    WORK.with(|w| w.set(0));
}

/// Charges `units` of work; `None` once the budget is spent.
pub(crate) fn charge(units: u64) -> Option<()> {
    WORK.with(|w| {
        let t = w.get().saturating_add(units);
        w.set(t);
        (t <= MAX_WORK).then_some(())
    })
}

fn words(r: &BigRational) -> u64 {
    bits(r) / 64 + 1
}

/// Cost of an operation on `a` and `b`: their product, plus num-bigint's binary
/// gcd over the result when either is a fraction (about one iteration per bit,
/// each touching every word plus a fixed overhead; measured, not guessed).
fn cost(a: &BigRational, b: &BigRational) -> u64 {
    let (wa, wb) = (words(a), words(b));
    let gcd = if a.is_integer() && b.is_integer() {
        0
    } else {
        gcd_cost(bits(a) + bits(b))
    };
    wa * wb + gcd
}

fn gcd_cost(bits: u64) -> u64 {
    (bits + 1) * (bits / 64 + 16)
}

fn bits(r: &BigRational) -> u64 {
    r.numer().bits().max(r.denom().bits())
}

/// `Some(r)` when `r` is within [`MAX_BITS`].
pub fn capped(r: BigRational) -> Option<BigRational> {
    (bits(&r) <= MAX_BITS).then_some(r)
}

pub fn add(a: &BigRational, b: &BigRational) -> Option<BigRational> {
    // Different denominators cross-multiply before a gcd over the result; refuse
    // sizes whose gcd alone would take milliseconds (found by the fuzzer).
    if a.denom() != b.denom() && bits(a) + bits(b) > MAX_BITS + 64 {
        return None;
    }
    charge(cost(a, b))?;
    if a.is_integer() && b.is_integer() {
        // Integers need no gcd (num-rational would still run one against 1).
        return capped(BigRational::from_integer(a.numer() + b.numer()));
    }
    capped(a + b)
}

pub fn mul(a: &BigRational, b: &BigRational) -> Option<BigRational> {
    if bits(a) + bits(b) > 2 * MAX_BITS + 2 {
        return None;
    }
    charge(cost(a, b))?;
    if a.is_integer() && b.is_integer() {
        return capped(BigRational::from_integer(a.numer() * b.numer()));
    }
    capped(a * b)
}

pub fn div(a: &BigRational, b: &BigRational) -> Option<BigRational> {
    if b.is_zero() || bits(a) + bits(b) > 2 * MAX_BITS + 2 {
        return None;
    }
    charge(cost(a, b))?;
    capped(a / b)
}

/// `b^e` for an integer exponent, refusing results over the cap before computing them.
pub fn pow_int(b: &BigRational, e: &BigInt) -> Option<BigRational> {
    if b.is_zero() {
        return match e.sign() {
            Sign::Minus => None,
            Sign::NoSign => Some(BigRational::one()),
            Sign::Plus => Some(BigRational::zero()),
        };
    }
    if b.abs().is_one() {
        let even = e.is_even();
        return Some(if b.is_negative() && !even {
            -BigRational::one()
        } else {
            BigRational::one()
        });
    }
    let n = e.abs().to_u64()?;
    if n.checked_mul(bits(b))? > MAX_BITS + 64 {
        return None;
    }
    let n = u32::try_from(n).ok()?;
    // Squarings up to the result size.
    let w = n as u64 * bits(b) / 64 + 1;
    charge(if b.is_integer() {
        2 * w * w
    } else {
        66 * w * w
    })?;
    let num = num_traits::pow(b.numer().clone(), n as usize);
    let den = num_traits::pow(b.denom().clone(), n as usize);
    // `b` is in lowest terms, so its powers are too: no gcd needed.
    let r = if !e.is_negative() {
        BigRational::new_raw(num, den)
    } else if num.is_negative() {
        BigRational::new_raw(-den, -num)
    } else {
        BigRational::new_raw(den, num)
    };
    capped(r)
}

/// Exact integer `k`-th root of a non-negative integer, if it is a perfect power.
fn int_root(n: &BigInt, k: u32) -> Option<BigInt> {
    if n.is_negative() {
        return None;
    }
    let r = n.nth_root(k);
    (num_traits::pow(r.clone(), k as usize) == *n).then_some(r)
}

/// `b^(p/q)` when the result is rational.
pub fn pow(b: &BigRational, e: &BigRational) -> Option<BigRational> {
    if e.is_integer() {
        return pow_int(b, e.numer());
    }
    let q = e.denom().to_u64()?;
    if q > MAX_ROOT_INDEX {
        return None;
    }
    let r = root(b, q)?;
    pow_int(&r, e.numer())
}

/// Exact `k`-th root when rational (odd roots of negatives allowed).
pub fn root(b: &BigRational, k: u64) -> Option<BigRational> {
    if k == 0 || k > MAX_ROOT_INDEX {
        return None;
    }
    let k32 = k as u32;
    let w = words(b);
    charge(4 * w * w + gcd_cost(bits(b)))?;
    if b.is_negative() {
        if k.is_multiple_of(2) {
            return None;
        }
        return root(&-b, k).map(|r| -r);
    }
    let n = int_root(b.numer(), k32)?;
    let d = int_root(b.denom(), k32)?;
    Some(BigRational::new(n, d))
}

pub fn factorial(n: &BigRational) -> Option<BigRational> {
    if !n.is_integer() || n.is_negative() {
        return None;
    }
    let n = n.numer().to_u64()?;
    if n > MAX_FACTORIAL {
        return None;
    }
    let mut acc = BigInt::one();
    for i in 2..=n {
        charge(acc.bits() / 64 + 1)?;
        acc *= i;
    }
    Some(BigRational::from_integer(acc))
}

pub fn binom(n: &BigRational, k: &BigRational) -> Option<BigRational> {
    if !n.is_integer() || !k.is_integer() || n.is_negative() {
        return None;
    }
    if k.is_negative() || k > n {
        return Some(BigRational::zero());
    }
    let n = n.numer().to_u64()?;
    let k = k.numer().to_u64()?;
    let k = k.min(n - k);
    if k > MAX_FACTORIAL {
        return None;
    }
    let mut acc = BigInt::one();
    for i in 0..k {
        charge(2 * (acc.bits() / 64 + 1))?;
        acc = acc * BigInt::from(n - i) / BigInt::from(i + 1);
        if acc.bits() > MAX_BITS {
            return None;
        }
    }
    Some(BigRational::from_integer(acc))
}

/// Nearest f64 (possibly infinite for huge values).
pub fn to_f64(r: &BigRational) -> f64 {
    if let (Some(n), Some(d)) = (r.numer().to_f64(), r.denom().to_f64())
        && n.is_finite()
        && d.is_finite()
        && d != 0.0
    {
        return n / d;
    }
    // Scale both down to keep the quotient meaningful.
    let nb = r.numer().bits() as i64;
    let db = r.denom().bits() as i64;
    let shift_n = (nb - 60).max(0) as usize;
    let shift_d = (db - 60).max(0) as usize;
    let n = (r.numer() >> shift_n).to_f64().unwrap_or(f64::NAN);
    let d = (r.denom() >> shift_d).to_f64().unwrap_or(f64::NAN);
    let e = shift_n as i64 - shift_d as i64;
    let e = e.clamp(-4000, 4000) as i32;
    n / d * 2f64.powi(e)
}

/// Rounds `r` to `digits` decimal places (half away from zero).
pub fn round_to(r: &BigRational, digits: u32) -> BigRational {
    let digits = digits.min(60);
    let scale = BigRational::from_integer(num_traits::pow(BigInt::from(10), digits as usize));
    let scaled = r * &scale;
    let rounded = scaled.round();
    rounded / scale
}

/// Parses a decimal literal (`123`, `1.25`, `.5`) exactly.
pub fn parse_decimal(s: &str) -> Option<BigRational> {
    let (int, frac) = match s.split_once('.') {
        Some((a, b)) => (a, b),
        None => (s, ""),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().all(|c| c.is_ascii_digit()) || !frac.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    // 4,000 decimal digits is already far beyond any answer.
    if int.len() + frac.len() > 4_000 {
        return None;
    }
    // Up to 18 digits fit a u64: the value is built and reduced there (most answers).
    if int.len() + frac.len() <= 18 {
        let n = int
            .bytes()
            .chain(frac.bytes())
            .fold(0u64, |n, c| n * 10 + u64::from(c - b'0'));
        let d = 10u64.pow(frac.len() as u32);
        let g = n.gcd(&d);
        return Some(BigRational::new_raw(
            BigInt::from(n / g),
            BigInt::from(d / g),
        ));
    }
    let digits = format!("{int}{frac}");
    let n: BigInt = if digits.is_empty() {
        BigInt::zero()
    } else {
        digits.parse().ok()?
    };
    let d = num_traits::pow(BigInt::from(10), frac.len());
    Some(BigRational::new(n, d))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(n: i64, d: i64) -> BigRational {
        BigRational::new(n.into(), d.into())
    }

    #[test]
    fn caps_refuse_huge_powers() {
        assert!(pow_int(&q(5, 1), &BigInt::from(1_000_000_000u64)).is_none());
        assert_eq!(pow_int(&q(2, 3), &BigInt::from(-2)), Some(q(9, 4)));
        assert_eq!(
            pow_int(&q(-1, 1), &BigInt::from(10_u64.pow(18))),
            Some(q(1, 1))
        );
        assert!(pow_int(&q(0, 1), &BigInt::from(-1)).is_none());
    }

    #[test]
    fn work_budget_is_per_call_and_refuses_once_spent() {
        reset_work();
        let a = pow_int(&q(12_897, 25_000), &BigInt::from(300)).unwrap();
        let mut acc = a.clone();
        let mut steps = 0;
        while let Some(x) = add(&acc, &q(1, 1)) {
            acc = x;
            steps += 1;
            assert!(steps < 10_000, "budget never ran out");
        }
        assert!(
            steps >= 2,
            "budget too small for a few big operations: {steps}"
        );
        assert!(
            add(&q(1, 2), &q(1, 3)).is_none(),
            "spent budget must refuse"
        );
        reset_work();
        assert_eq!(add(&q(1, 2), &q(1, 3)), Some(q(5, 6)));
        // Integer work is cheap: 1500! fits easily.
        assert_eq!(
            factorial(&q(1_500, 1)).map(|f| f.numer().bits() > 12_000),
            Some(true)
        );
    }

    #[test]
    fn sums_of_huge_fractions_are_refused_before_the_gcd() {
        let big = |n: i64, d: i64, e: u64| {
            reset_work();
            pow_int(&q(n, d), &BigInt::from(e)).unwrap()
        };
        let a = big(12_897, 25_000, 700);
        let b = big(7, 9, 2_000);
        reset_work();
        assert!(add(&a, &b).is_none());
        reset_work();
        assert_eq!(add(&q(1, 3), &q(1, 6)), Some(q(1, 2)));
    }

    #[test]
    fn rational_roots() {
        assert_eq!(pow(&q(4, 9), &q(1, 2)), Some(q(2, 3)));
        assert_eq!(pow(&q(8, 1), &q(2, 3)), Some(q(4, 1)));
        assert_eq!(root(&q(-27, 1), 3), Some(q(-3, 1)));
        assert_eq!(pow(&q(2, 1), &q(1, 2)), None);
    }

    #[test]
    fn factorial_and_binom() {
        assert_eq!(factorial(&q(5, 1)), Some(q(120, 1)));
        assert!(factorial(&q(100_000, 1)).is_none());
        assert_eq!(binom(&q(10, 1), &q(3, 1)), Some(q(120, 1)));
    }

    #[test]
    fn decimals_and_rounding() {
        assert_eq!(parse_decimal("1.25"), Some(q(5, 4)));
        assert_eq!(parse_decimal(".5"), Some(q(1, 2)));
        assert_eq!(round_to(&q(1, 3), 4), q(3333, 10000));
        assert!((to_f64(&q(1, 3)) - 1.0 / 3.0).abs() < 1e-15);
    }
}
