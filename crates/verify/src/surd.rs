//! Exact arithmetic with radicals of rationals: numbers in Q(ⁿ√a, ᵐ√b, …).
//!
//! A value is a sum `Σ cᵢ·xᵢ` of rational coefficients times canonical radicals
//! `xᵢ = Π pⱼ^(eⱼ/k)` (primes `pⱼ`, `0 < eⱼ < k`, `gcd(k, e…) = 1`; the empty
//! product is 1). Two canonical radicals are rational multiples of each other only
//! when they are the same, and distinct real radicals of positive rationals are
//! linearly independent over Q (Besicovitch; Mordell–Siegel), so two values are
//! equal exactly when their term maps are equal: `√12 = 2√3`, `1/√3 = √3/3`,
//! `2/(1+√3) = √3 - 1`, `2√3 + √12 = 4√3`, and `4√2 ≠ 4` without any tolerance.
//!
//! Everything is capped (factored integers, prime count, root index, term count,
//! exponent size, number of factorizations), and anything outside (symbols, `π`,
//! even roots of negatives, nested radicals that would need denesting, inverses of
//! sums with higher roots) gives `None`, so callers fall back to the numeric check.

use crate::expr::Expr;
use crate::num;
use num_bigint::BigInt;
use num_integer::Integer;
use num_rational::{BigRational, Ratio};
use num_traits::{One, Signed, ToPrimitive, Zero};
use std::collections::BTreeMap;

/// Largest integer factored into primes (2^48: Pollard's rho stays in microseconds).
const MAX_FACTOR: u64 = 1 << 48;
/// Most factorizations of large integers in one evaluation.
const MAX_FACTORIZATIONS: u32 = 64;
/// Most distinct primes under one radical.
const MAX_PRIMES: usize = 16;
/// Most terms in one value.
const MAX_SURD_TERMS: usize = 64;
/// Largest root index.
const MAX_INDEX: i64 = 64;
/// Largest numerator or denominator of a rational exponent applied to a radical.
const MAX_EXP: i64 = 4_096;
/// Most distinct primes eliminated when rationalizing a denominator of square roots.
const MAX_CONJ_PRIMES: usize = 4;

/// A canonical radical `Π p^(e/k)` (`k = 1` and no primes is the number 1).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Rad {
    k: u32,
    f: Vec<(u64, u32)>,
}

impl Rad {
    fn one() -> Rad {
        Rad {
            k: 1,
            f: Vec::new(),
        }
    }
    fn is_one(&self) -> bool {
        self.f.is_empty()
    }
    fn exponents(&self) -> impl Iterator<Item = (u64, Ratio<i64>)> + '_ {
        let k = self.k as i64;
        self.f
            .iter()
            .map(move |&(p, e)| (p, Ratio::new(e as i64, k)))
    }
    /// The radicand `Π p^e` as an integer (`None` when too large to write).
    fn radicand(&self) -> Option<BigInt> {
        let mut acc = BigRational::one();
        for &(p, e) in &self.f {
            let pe = num::pow_int(&BigRational::from_integer(p.into()), &BigInt::from(e))?;
            acc = num::mul(&acc, &pe)?;
        }
        Some(acc.to_integer())
    }
}

/// A value `Σ c·x` with nonzero rational coefficients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Surd {
    t: BTreeMap<Rad, BigRational>,
}

/// Per-evaluation work counter.
struct Ctx {
    factorizations: u32,
}

impl Surd {
    fn zero() -> Surd {
        Surd { t: BTreeMap::new() }
    }
    fn rational(c: BigRational) -> Surd {
        let mut s = Surd::zero();
        if !c.is_zero() {
            s.t.insert(Rad::one(), c);
        }
        s
    }
    fn term(c: BigRational, r: Rad) -> Surd {
        let mut s = Surd::zero();
        if !c.is_zero() {
            s.t.insert(r, c);
        }
        s
    }
    fn as_rational(&self) -> Option<BigRational> {
        match self.t.len() {
            0 => Some(BigRational::zero()),
            1 => self.t.get(&Rad::one()).cloned(),
            _ => None,
        }
    }
    fn single(&self) -> Option<(&Rad, &BigRational)> {
        if self.t.len() == 1 {
            self.t.iter().next()
        } else {
            None
        }
    }
    fn add(&self, o: &Surd) -> Option<Surd> {
        let mut r = self.clone();
        for (k, c) in &o.t {
            let e = r.t.entry(k.clone()).or_insert_with(BigRational::zero);
            *e = num::add(e, c)?;
            if e.is_zero() {
                r.t.remove(k);
            }
        }
        (r.t.len() <= MAX_SURD_TERMS).then_some(r)
    }
    fn neg(&self) -> Surd {
        Surd {
            t: self
                .t
                .iter()
                .map(|(k, c)| (k.clone(), -c.clone()))
                .collect(),
        }
    }
    fn mul(&self, o: &Surd) -> Option<Surd> {
        if self.t.len() * o.t.len() > MAX_SURD_TERMS * 4 {
            return None;
        }
        let mut r = Surd::zero();
        for (k1, c1) in &self.t {
            for (k2, c2) in &o.t {
                let (q, k) = rad_mul(k1, k2)?;
                let c = num::mul(&num::mul(c1, c2)?, &q)?;
                let e = r.t.entry(k.clone()).or_insert_with(BigRational::zero);
                *e = num::add(e, &c)?;
                if e.is_zero() {
                    r.t.remove(&k);
                }
            }
        }
        (r.t.len() <= MAX_SURD_TERMS).then_some(r)
    }
    /// `1 / self`: monomials directly; sums of square roots by multiplying with
    /// Galois conjugates (flip the sign of every `√r` with `p | r`, one prime at a time).
    fn inv(&self) -> Option<Surd> {
        if let Some((r, c)) = self.single() {
            let (q, k) = rad_from(r.exponents().map(|(p, e)| (p, -e)))?;
            let c = num::mul(&num::div(&BigRational::one(), c)?, &q)?;
            return Some(Surd::term(c, k));
        }
        if self.t.is_empty() || self.t.keys().any(|r| r.k > 2) {
            return None;
        }
        let mut primes: Vec<u64> = self
            .t
            .keys()
            .flat_map(|r| r.f.iter().map(|x| x.0))
            .collect();
        primes.sort_unstable();
        primes.dedup();
        if primes.len() > MAX_CONJ_PRIMES {
            return None;
        }
        let mut num = Surd::rational(BigRational::one());
        let mut den = self.clone();
        for p in primes {
            let conj = Surd {
                t: den
                    .t
                    .iter()
                    .map(|(r, c)| {
                        let flip = r.f.iter().any(|x| x.0 == p);
                        (r.clone(), if flip { -c.clone() } else { c.clone() })
                    })
                    .collect(),
            };
            num = num.mul(&conj)?;
            den = den.mul(&conj)?;
        }
        let d = den.as_rational()?;
        if d.is_zero() {
            return None;
        }
        num.mul(&Surd::rational(num::div(&BigRational::one(), &d)?))
    }
    /// `self^e` for a rational exponent: integer powers of any value, fractional
    /// powers of positive monomials.
    fn pow(&self, e: &BigRational, cx: &mut Ctx) -> Option<Surd> {
        if let Some(q) = self.as_rational()
            && e.is_integer()
        {
            return Some(Surd::rational(num::pow_int(&q, e.numer())?));
        }
        if let Some((r, c)) = self.single() {
            let m = e.numer().to_i64()?;
            let n = e.denom().to_i64()?;
            if m.abs() > MAX_EXP || n > MAX_EXP {
                return None;
            }
            let sign = if c.is_negative() {
                // Only integer powers of a negative monomial stay real without choosing a branch.
                if n != 1 {
                    return None;
                }
                if m % 2 == 0 { 1 } else { -1 }
            } else {
                1
            };
            let s = monomial_pow(r, &c.abs(), Ratio::new(m, n), cx)?;
            return Some(if sign < 0 { s.neg() } else { s });
        }
        if !e.is_integer() {
            return None;
        }
        let k = e.numer().to_i64()?;
        if k.abs() > 64 {
            return None;
        }
        let base = if k < 0 { self.inv()? } else { self.clone() };
        let mut acc = Surd::rational(BigRational::one());
        let mut sq = base;
        let mut k = k.unsigned_abs();
        while k > 0 {
            if k & 1 == 1 {
                acc = acc.mul(&sq)?;
            }
            k >>= 1;
            if k > 0 {
                sq = sq.mul(&sq)?;
            }
        }
        Some(acc)
    }

    /// The value as an expression tree: `c·ᵏ√R` terms in canonical order.
    pub fn to_expr(&self) -> Option<Expr> {
        let mut terms = Vec::new();
        for (r, c) in &self.t {
            if r.is_one() {
                terms.push(Expr::rational(c.clone()));
                continue;
            }
            let root = Expr::Root {
                radicand: Box::new(Expr::Num {
                    value: BigRational::from_integer(r.radicand()?),
                    float: false,
                }),
                index: Box::new(Expr::int(r.k as i64)),
            };
            terms.push(if c.is_one() {
                root
            } else if (-c).is_one() {
                Expr::Neg(Box::new(root))
            } else {
                Expr::Mul(vec![Expr::rational(c.clone()), root])
            });
        }
        Some(match terms.len() {
            0 => Expr::int(0),
            1 => terms.pop()?,
            _ => Expr::Add(terms),
        })
    }
}

/// `c^e · r^e` for `c > 0`.
fn monomial_pow(r: &Rad, c: &BigRational, e: Ratio<i64>, cx: &mut Ctx) -> Option<Surd> {
    if c.is_zero() {
        return (*e.numer() > 0).then(Surd::zero);
    }
    let mut exps: BTreeMap<u64, Ratio<i64>> = BTreeMap::new();
    let mut coef = BigRational::one();
    if r.is_one()
        && let Some(q) = num::pow(
            c,
            &BigRational::new((*e.numer()).into(), (*e.denom()).into()),
        )
    {
        // A rational power that is rational (`√(2^100)`): no factoring needed.
        return Some(Surd::rational(q));
    }
    if e.is_integer() {
        // Integer powers of the coefficient need no factoring (it may be large).
        coef = num::pow_int(c, &BigInt::from(*e.numer()))?;
    } else {
        for (p, v) in factor_rational(c, cx)? {
            *exps.entry(p).or_insert_with(Ratio::zero) += Ratio::from_integer(v) * e;
        }
    }
    for (p, x) in r.exponents() {
        *exps.entry(p).or_insert_with(Ratio::zero) += x * e;
    }
    let (q, k) = rad_from(exps.into_iter())?;
    Some(Surd::term(num::mul(&coef, &q)?, k))
}

/// Splits `Π p^(aₚ)` (rational exponents) into a rational factor and a canonical radical.
fn rad_from(exps: impl Iterator<Item = (u64, Ratio<i64>)>) -> Option<(BigRational, Rad)> {
    let mut q = BigRational::one();
    let mut frac: Vec<(u64, Ratio<i64>)> = Vec::new();
    let mut k: i64 = 1;
    for (p, a) in exps {
        if a.numer().abs() > MAX_EXP * MAX_INDEX || *a.denom() > MAX_INDEX {
            return None;
        }
        let fl = a.floor();
        let fr = a - fl;
        if !fl.is_zero() {
            let pf = num::pow_int(
                &BigRational::from_integer(p.into()),
                &BigInt::from(*fl.numer()),
            )?;
            q = num::mul(&q, &pf)?;
        }
        if !fr.is_zero() {
            k = k.lcm(fr.denom());
            if k > MAX_INDEX {
                return None;
            }
            frac.push((p, fr));
        }
    }
    if frac.len() > MAX_PRIMES {
        return None;
    }
    frac.sort_unstable_by_key(|x| x.0);
    let f = frac
        .into_iter()
        .map(|(p, fr)| (p, (fr * k).to_integer() as u32))
        .collect();
    Some((q, Rad { k: k as u32, f }))
}

fn rad_mul(a: &Rad, b: &Rad) -> Option<(BigRational, Rad)> {
    if a.is_one() {
        return Some((BigRational::one(), b.clone()));
    }
    if b.is_one() {
        return Some((BigRational::one(), a.clone()));
    }
    if a.k == 2 && b.k == 2 {
        // Square roots (the common case): √(r·s) with shared primes pulled out.
        let mut q = BigRational::one();
        let mut f = Vec::with_capacity(a.f.len() + b.f.len());
        let (mut i, mut j) = (0, 0);
        while i < a.f.len() || j < b.f.len() {
            match (a.f.get(i), b.f.get(j)) {
                (Some(x), Some(y)) if x.0 == y.0 => {
                    q *= BigRational::from_integer(x.0.into());
                    i += 1;
                    j += 1;
                }
                (Some(x), Some(y)) if x.0 < y.0 => {
                    f.push(*x);
                    i += 1;
                }
                (Some(x), None) => {
                    f.push(*x);
                    i += 1;
                }
                (_, Some(y)) => {
                    f.push(*y);
                    j += 1;
                }
                (None, None) => break,
            }
        }
        if f.len() > MAX_PRIMES {
            return None;
        }
        let k = if f.is_empty() { 1 } else { 2 };
        return Some((q, Rad { k, f }));
    }
    let mut m: BTreeMap<u64, Ratio<i64>> = BTreeMap::new();
    for (p, e) in a.exponents().chain(b.exponents()) {
        *m.entry(p).or_insert_with(Ratio::zero) += e;
    }
    rad_from(m.into_iter())
}

/// Prime factorization of a positive rational as `(p, exponent)` (negative for the denominator).
fn factor_rational(c: &BigRational, cx: &mut Ctx) -> Option<Vec<(u64, i64)>> {
    let n = c.numer().to_u64()?;
    let d = c.denom().to_u64()?;
    let mut out: Vec<(u64, i64)> = Vec::new();
    for (p, e) in factor(n, cx)? {
        out.push((p, e as i64));
    }
    for (p, e) in factor(d, cx)? {
        out.push((p, -(e as i64)));
    }
    Some(out)
}

/// Prime factorization of `n ≥ 1` (`None` above [`MAX_FACTOR`] or over the work cap).
fn factor(mut n: u64, cx: &mut Ctx) -> Option<Vec<(u64, u32)>> {
    if n == 0 || n > MAX_FACTOR {
        return None;
    }
    let mut out: BTreeMap<u64, u32> = BTreeMap::new();
    for p in [2u64, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47] {
        while n.is_multiple_of(p) {
            n /= p;
            *out.entry(p).or_insert(0) += 1;
        }
    }
    if n > 1 {
        cx.factorizations += 1;
        if cx.factorizations > MAX_FACTORIZATIONS {
            return None;
        }
        let mut stack = vec![n];
        while let Some(m) = stack.pop() {
            if m == 1 {
                continue;
            }
            if is_prime(m) {
                *out.entry(m).or_insert(0) += 1;
                continue;
            }
            let d = rho(m)?;
            stack.push(d);
            stack.push(m / d);
        }
    }
    Some(out.into_iter().collect())
}

fn mulmod(a: u64, b: u64, m: u64) -> u64 {
    ((a as u128 * b as u128) % m as u128) as u64
}

fn powmod(mut b: u64, mut e: u64, m: u64) -> u64 {
    let mut r = 1 % m;
    b %= m;
    while e > 0 {
        if e & 1 == 1 {
            r = mulmod(r, b, m);
        }
        b = mulmod(b, b, m);
        e >>= 1;
    }
    r
}

/// Deterministic Miller–Rabin for 64-bit integers.
fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    for p in [2u64, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37] {
        if n.is_multiple_of(p) {
            return n == p;
        }
    }
    let s = (n - 1).trailing_zeros();
    let d = (n - 1) >> s;
    'bases: for a in [2u64, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37] {
        let mut x = powmod(a, d, n);
        if x == 1 || x == n - 1 {
            continue;
        }
        for _ in 1..s {
            x = mulmod(x, x, n);
            if x == n - 1 {
                continue 'bases;
            }
        }
        return false;
    }
    true
}

/// A nontrivial factor of an odd composite `n` (Pollard's rho, Brent's variant), bounded.
fn rho(n: u64) -> Option<u64> {
    for c in 1..20u64 {
        let f = |x: u64| (mulmod(x, x, n) + c) % n;
        let (mut x, mut y, mut d) = (2u64, 2u64, 1u64);
        let mut steps = 0u32;
        while d == 1 {
            x = f(x);
            y = f(f(y));
            d = x.abs_diff(y).gcd(&n);
            steps += 1;
            // Factors of n ≤ 2^48 are found in about 2^12 steps; this cap is far above that.
            if steps > 200_000 {
                return None;
            }
        }
        if d != n {
            return Some(d);
        }
    }
    None
}

/// The exact value of a constant expression built from rationals, `+ - × ÷`,
/// integer powers, rational powers of positive monomials and roots (`None` otherwise).
pub(crate) fn eval(e: &Expr) -> Option<Surd> {
    let mut cx = Ctx { factorizations: 0 };
    eval_d(e, &mut cx, 0)
}

fn eval_d(e: &Expr, cx: &mut Ctx, depth: usize) -> Option<Surd> {
    if depth > crate::limits::MAX_DEPTH {
        return None;
    }
    let d = depth + 1;
    match e {
        Expr::Num { value, .. } => Some(Surd::rational(value.clone())),
        Expr::Add(v) => {
            let mut acc = Surd::zero();
            for x in v {
                acc = acc.add(&eval_d(x, cx, d)?)?;
            }
            Some(acc)
        }
        Expr::Mul(v) => {
            let mut acc = Surd::rational(BigRational::one());
            for x in v {
                acc = acc.mul(&eval_d(x, cx, d)?)?;
            }
            Some(acc)
        }
        Expr::Neg(a) => Some(eval_d(a, cx, d)?.neg()),
        Expr::Div(a, b) => {
            let x = eval_d(a, cx, d)?;
            let y = eval_d(b, cx, d)?;
            x.mul(&y.inv()?)
        }
        Expr::Percent(a) => {
            eval_d(a, cx, d)?.mul(&Surd::rational(BigRational::new(1.into(), 100.into())))
        }
        Expr::Pow(a, b) => {
            let ex = crate::exact::eval(b)?;
            eval_d(a, cx, d)?.pow(&ex, cx)
        }
        Expr::Root { radicand, index } => {
            let k = crate::exact::eval(index)?;
            if !k.is_integer() || !k.is_positive() || k.numer().to_i64()? > MAX_INDEX {
                return None;
            }
            let k = k.numer().to_i64()?;
            let x = eval_d(radicand, cx, d)?;
            if x.t.is_empty() {
                return Some(x);
            }
            let (r, c) = x.single()?;
            if c.is_negative() {
                // Odd roots of negatives are real (`∛-8 = -2`); even ones are not.
                if k % 2 == 0 {
                    return None;
                }
                return Some(monomial_pow(r, &-c, Ratio::new(1, k), cx)?.neg());
            }
            monomial_pow(r, c, Ratio::new(1, k), cx)
        }
        Expr::Factorial(_) | Expr::Binom(..) | Expr::Func(..) => {
            Some(Surd::rational(crate::exact::eval(e)?))
        }
        _ => None,
    }
}

/// True when `e` is a constant with a root or a fractional power somewhere (the
/// only trees [`eval`] can say more about than [`crate::exact::eval`]).
pub(crate) fn worth_trying(e: &Expr) -> bool {
    fn walk(e: &Expr, radical: &mut bool, depth: usize) -> bool {
        if depth > crate::limits::MAX_DEPTH {
            return false;
        }
        match e {
            Expr::Num { float: true, .. } | Expr::Sym(_) | Expr::Const(_) | Expr::Text(_) => {
                return false;
            }
            Expr::Num { .. } => return true,
            Expr::Root { .. } => *radical = true,
            Expr::Pow(_, b) if !matches!(**b, Expr::Num { ref value, .. } if value.is_integer()) => {
                *radical = true
            }
            Expr::Add(_)
            | Expr::Mul(_)
            | Expr::Neg(_)
            | Expr::Div(..)
            | Expr::Pow(..)
            | Expr::Percent(_) => {}
            _ => return false,
        }
        let mut ok = true;
        e.for_each_child(|c| ok = ok && walk(c, radical, depth + 1));
        ok
    }
    let mut radical = false;
    walk(e, &mut radical, 0) && radical
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(src: &str) -> Surd {
        eval(&crate::parse(src).unwrap()).unwrap_or_else(|| panic!("{src} did not evaluate"))
    }
    fn same(a: &str, b: &str) {
        assert_eq!(s(a), s(b), "{a} vs {b}");
    }
    fn differ(a: &str, b: &str) {
        assert_ne!(s(a), s(b), "{a} vs {b}");
    }
    fn shown(a: &str) -> String {
        s(a).to_expr().unwrap().to_string()
    }

    #[test]
    fn factoring() {
        let mut cx = Ctx { factorizations: 0 };
        assert_eq!(factor(360, &mut cx), Some(vec![(2, 3), (3, 2), (5, 1)]));
        assert_eq!(factor(1, &mut cx), Some(vec![]));
        // Two primes near 2^24: found by rho, not trial division.
        let (p, q) = (16_777_213u64, 16_777_199u64);
        assert_eq!(factor(p * q, &mut cx), Some(vec![(q, 1), (p, 1)]));
        assert_eq!(factor(p * p, &mut cx), Some(vec![(p, 2)]));
        assert!(is_prime(281_474_976_710_597));
        assert!(!is_prime(3_215_031_751));
        assert_eq!(factor(1 << 50, &mut cx), None);
    }

    #[test]
    fn radicals_are_simplified() {
        assert_eq!(shown("\\sqrt{12}"), "2*sqrt(3)");
        assert_eq!(shown("\\sqrt{1/2}"), "(1/2)*sqrt(2)");
        assert_eq!(shown("\\sqrt[3]{54}"), "3*root(2, 3)");
        assert_eq!(shown("\\sqrt[3]{-54}"), "(-3)*root(2, 3)");
        assert_eq!(shown("\\sqrt[6]{8}"), "sqrt(2)");
        assert_eq!(shown("\\sqrt[4]{4}"), "sqrt(2)");
        assert_eq!(shown("\\sqrt{16}"), "4");
        assert_eq!(shown("2\\sqrt{3} + \\sqrt{12}"), "4*sqrt(3)");
        assert_eq!(shown("\\sqrt{2} - \\sqrt{2}"), "0");
        assert_eq!(shown("8^{2/3}"), "4");
        assert_eq!(shown("2^{1/2} \\cdot 2^{1/3}"), "root(32, 6)");
    }

    #[test]
    fn products_quotients_and_rationalized_denominators() {
        same("\\sqrt{2}\\sqrt{6}", "2\\sqrt{3}");
        same("\\frac{\\sqrt{6}}{\\sqrt{2}}", "\\sqrt{3}");
        same("\\frac{1}{\\sqrt{3}}", "\\frac{\\sqrt{3}}{3}");
        same("\\frac{2}{1+\\sqrt{3}}", "\\sqrt{3}-1");
        same("\\frac{1}{\\sqrt{2}+\\sqrt{3}}", "\\sqrt{3}-\\sqrt{2}");
        same(
            "\\frac{1}{1+\\sqrt{2}+\\sqrt{3}}",
            "\\frac{2+\\sqrt{2}-\\sqrt{6}}{4}",
        );
        same("\\frac{1}{\\sqrt[3]{2}}", "\\frac{\\sqrt[3]{4}}{2}");
        same("(1+\\sqrt{2})^2", "3+2\\sqrt{2}");
        same("(\\sqrt{2})^{-3}", "\\frac{\\sqrt{2}}{4}");
        same("\\sqrt{\\sqrt{16}}", "2");
        same("\\sqrt[3]{2}^3", "2");
        same("\\sqrt{8}^{1/3}", "\\sqrt{2}");
        same("(-2)^3", "-8");
        same("\\sqrt{2^{100}} + \\sqrt{8}", "2^{50} + 2\\sqrt{2}");
    }

    #[test]
    fn distinct_values_differ() {
        differ("4\\sqrt{2}", "4");
        differ("\\sqrt{2}", "\\sqrt{3}");
        differ("\\sqrt{2}+\\sqrt{3}", "\\sqrt{5}");
        differ("\\sqrt[3]{2}", "\\sqrt{2}");
        differ("1+\\sqrt{2}", "1-\\sqrt{2}");
    }

    #[test]
    fn outside_the_field_is_none() {
        for src in [
            "\\sqrt{-4}",
            "\\sqrt{2+\\sqrt{3}}",
            "\\pi\\sqrt{2}",
            "x\\sqrt{2}",
            "\\frac{1}{1+\\sqrt[3]{2}}",
            "\\sqrt[100]{2}",
            "\\sqrt{1125899906842679}",
            "(-8)^{1/3}",
            "\\frac{1}{\\sqrt{2}-\\sqrt{2}}",
        ] {
            assert!(eval(&crate::parse(src).unwrap()).is_none(), "{src}");
        }
    }

    #[test]
    fn only_constant_radical_trees_are_worth_trying() {
        let w = |src: &str| worth_trying(&crate::parse(src).unwrap());
        assert!(w("\\sqrt{12}"));
        assert!(w("2^{1/2}+1"));
        assert!(!w("12"));
        assert!(!w("\\frac{3}{4}"));
        assert!(!w("x\\sqrt{2}"));
        assert!(!w("1.5\\sqrt{2}"));
        assert!(!w("\\pi\\sqrt{2}"));
    }
}
