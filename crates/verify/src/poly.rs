//! Symbolic normalization: multivariate polynomials and rational functions over Q.
//!
//! Two expressions that convert are equal exactly when `n1 * d2 == n2 * d1`.
//! Term count and degree are capped so expansion cannot blow up.

use crate::expr::Expr;
use crate::limits::{MAX_DEGREE, MAX_TERMS};
use crate::num;
use num_rational::BigRational;
use num_traits::{One, ToPrimitive, Zero};
use std::collections::BTreeMap;

/// Exponent vector over the shared variable list.
type Mono = Vec<u32>;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Poly {
    terms: BTreeMap<Mono, BigRational>,
}

impl Poly {
    fn zero() -> Poly {
        Poly {
            terms: BTreeMap::new(),
        }
    }
    fn constant(c: BigRational, nvars: usize) -> Poly {
        let mut p = Poly::zero();
        if !c.is_zero() {
            p.terms.insert(vec![0; nvars], c);
        }
        p
    }
    fn var(i: usize, nvars: usize) -> Poly {
        let mut m = vec![0; nvars];
        m[i] = 1;
        let mut p = Poly::zero();
        p.terms.insert(m, BigRational::one());
        p
    }
    fn nvars(&self) -> usize {
        self.terms.keys().next().map_or(0, |m| m.len())
    }
    pub fn is_zero(&self) -> bool {
        self.terms.is_empty()
    }
    fn add(&self, o: &Poly) -> Option<Poly> {
        // Map updates with monomial keys: charged like the coefficient arithmetic.
        num::charge(((self.terms.len() + o.terms.len()) * (16 + self.nvars())) as u64)?;
        let mut r = self.clone();
        for (m, c) in &o.terms {
            let e = r.terms.entry(m.clone()).or_insert_with(BigRational::zero);
            *e = num::add(e, c)?;
            if e.is_zero() {
                r.terms.remove(m);
            }
        }
        (r.terms.len() <= MAX_TERMS).then_some(r)
    }
    fn neg(&self) -> Poly {
        Poly {
            terms: self
                .terms
                .iter()
                .map(|(m, c)| (m.clone(), -c.clone()))
                .collect(),
        }
    }
    pub fn mul(&self, o: &Poly) -> Option<Poly> {
        if self.terms.len() * o.terms.len() > MAX_TERMS * 8 {
            return None;
        }
        num::charge((self.terms.len() * o.terms.len() * (64 + 8 * self.nvars())) as u64)?;
        let mut r = Poly::zero();
        for (m1, c1) in &self.terms {
            for (m2, c2) in &o.terms {
                let m: Mono = m1.iter().zip(m2).map(|(a, b)| a + b).collect();
                if m.iter().sum::<u32>() > MAX_DEGREE {
                    return None;
                }
                let c = num::mul(c1, c2)?;
                let e = r.terms.entry(m.clone()).or_insert_with(BigRational::zero);
                *e = num::add(e, &c)?;
                if e.is_zero() {
                    r.terms.remove(&m);
                }
            }
        }
        (r.terms.len() <= MAX_TERMS).then_some(r)
    }
    pub fn sub(&self, o: &Poly) -> Option<Poly> {
        self.add(&o.neg())
    }
    fn pow(&self, k: u32, nvars: usize) -> Option<Poly> {
        let mut acc = Poly::constant(BigRational::one(), nvars);
        for _ in 0..k {
            acc = acc.mul(self)?;
        }
        Some(acc)
    }
}

/// A rational function `num / den`.
#[derive(Debug, Clone)]
pub(crate) struct RatFun {
    pub num: Poly,
    pub den: Poly,
}

/// Converts `e` to a rational function over `vars`, or `None` when it is not one
/// (roots, transcendental functions, structures) or exceeds the caps.
pub(crate) fn to_ratfun(
    e: &Expr,
    vars: &[String],
    rename: &dyn Fn(&str) -> String,
) -> Option<RatFun> {
    conv(e, vars, rename, 0)
}

fn conv(e: &Expr, vars: &[String], rn: &dyn Fn(&str) -> String, depth: usize) -> Option<RatFun> {
    if depth > crate::limits::MAX_DEPTH {
        return None;
    }
    let n = vars.len();
    let one = || Poly::constant(BigRational::one(), n);
    let d = depth + 1;
    Some(match e {
        Expr::Num { value, .. } => RatFun {
            num: Poly::constant(value.clone(), n),
            den: one(),
        },
        Expr::Sym(s) => {
            let name = rn(s);
            let i = vars.iter().position(|v| *v == name)?;
            RatFun {
                num: Poly::var(i, n),
                den: one(),
            }
        }
        Expr::Add(v) => {
            let mut acc = RatFun {
                num: Poly::zero(),
                den: one(),
            };
            for x in v {
                let r = conv(x, vars, rn, d)?;
                acc = RatFun {
                    num: acc.num.mul(&r.den)?.add(&r.num.mul(&acc.den)?)?,
                    den: acc.den.mul(&r.den)?,
                };
            }
            acc
        }
        Expr::Mul(v) => {
            let mut acc = RatFun {
                num: one(),
                den: one(),
            };
            for x in v {
                let r = conv(x, vars, rn, d)?;
                acc = RatFun {
                    num: acc.num.mul(&r.num)?,
                    den: acc.den.mul(&r.den)?,
                };
            }
            acc
        }
        Expr::Neg(a) => {
            let r = conv(a, vars, rn, d)?;
            RatFun {
                num: r.num.neg(),
                den: r.den,
            }
        }
        Expr::Div(a, b) => {
            let x = conv(a, vars, rn, d)?;
            let y = conv(b, vars, rn, d)?;
            if y.num.is_zero() {
                return None;
            }
            RatFun {
                num: x.num.mul(&y.den)?,
                den: x.den.mul(&y.num)?,
            }
        }
        Expr::Percent(a) => {
            let x = conv(a, vars, rn, d)?;
            RatFun {
                num: x.num,
                den: x
                    .den
                    .mul(&Poly::constant(BigRational::from_integer(100.into()), n))?,
            }
        }
        Expr::Pow(a, b) => {
            let k = crate::exact::eval(b)?;
            if !k.is_integer() {
                return None;
            }
            let k = k.numer().to_i64()?;
            if k.unsigned_abs() > MAX_DEGREE as u64 {
                return None;
            }
            let x = conv(a, vars, rn, d)?;
            let (p, q) = (
                x.num.pow(k.unsigned_abs() as u32, n)?,
                x.den.pow(k.unsigned_abs() as u32, n)?,
            );
            if k >= 0 {
                RatFun { num: p, den: q }
            } else {
                if p.is_zero() {
                    return None;
                }
                RatFun { num: q, den: p }
            }
        }
        _ => {
            // Constant sub-expressions (factorials, binomials, exact roots) still fold.
            let v = crate::exact::eval(e)?;
            RatFun {
                num: Poly::constant(v, n),
                den: one(),
            }
        }
    })
}

/// `a == b` as rational functions.
pub(crate) fn equal(a: &RatFun, b: &RatFun) -> Option<bool> {
    let l = a.num.mul(&b.den)?;
    let r = b.num.mul(&a.den)?;
    Some(l.sub(&r)?.is_zero())
}
