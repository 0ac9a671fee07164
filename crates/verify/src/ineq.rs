//! Univariate inequalities solved exactly into unions of intervals.
//!
//! Each side of `a < b` (chains `a ≤ b < c` too) is read as a continuous
//! piecewise-linear function of the one variable over Q: sums, constant multiples
//! and quotients, and `|…|` of such functions (`|2x+1| ≥ 5`, `|x-1| + |x+2| < 5`,
//! `1 ≤ |z| ≤ 3/2`). Between consecutive critical points (kinks and zeros) every
//! difference keeps its sign, so testing one exact point per piece gives the exact
//! solution set, which is kept in canonical form (sorted maximal intervals) and
//! compared with other solution sets or written intervals by equality.

use crate::expr::{Const, Expr, RelOp};
use num_rational::BigRational;
use num_traits::{One, Signed, Zero};
use std::cmp::Ordering;

/// Most kinks in one piecewise-linear function.
const MAX_KINKS: usize = 32;
/// Largest numerator or denominator of a constant in an inequality, in bits.
const MAX_CONST_BITS: u64 = 256;
/// Most intervals in one set.
const MAX_INTERVALS: usize = 64;

type Q = BigRational;

/// An end of an interval: a rational, or ±∞.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Ext {
    NegInf,
    Fin(Q),
    PosInf,
}

/// An interval with its ends; infinite ends are always open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Iv {
    lo: Ext,
    hi: Ext,
    lo_closed: bool,
    hi_closed: bool,
}

/// A subset of the real line as sorted, disjoint, maximal intervals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RealSet(Vec<Iv>);

impl Iv {
    fn is_empty(&self) -> bool {
        match self.lo.cmp(&self.hi) {
            Ordering::Greater => true,
            Ordering::Equal => {
                !(self.lo_closed && self.hi_closed && matches!(self.lo, Ext::Fin(_)))
            }
            Ordering::Less => false,
        }
    }
}

impl RealSet {
    /// Canonical form: empty pieces dropped, sorted, touching or overlapping pieces merged.
    fn canonical(mut v: Vec<Iv>) -> RealSet {
        for iv in &mut v {
            iv.lo_closed &= matches!(iv.lo, Ext::Fin(_));
            iv.hi_closed &= matches!(iv.hi, Ext::Fin(_));
        }
        v.retain(|iv| !iv.is_empty());
        v.sort_by(|a, b| a.lo.cmp(&b.lo).then(b.lo_closed.cmp(&a.lo_closed)));
        let mut out: Vec<Iv> = Vec::with_capacity(v.len());
        for iv in v {
            if let Some(cur) = out.last_mut() {
                let connected =
                    iv.lo < cur.hi || (iv.lo == cur.hi && (cur.hi_closed || iv.lo_closed));
                if connected {
                    match iv.hi.cmp(&cur.hi) {
                        Ordering::Greater => {
                            cur.hi = iv.hi;
                            cur.hi_closed = iv.hi_closed;
                        }
                        Ordering::Equal => cur.hi_closed |= iv.hi_closed,
                        Ordering::Less => {}
                    }
                    continue;
                }
            }
            out.push(iv);
        }
        RealSet(out)
    }
}

/// `s·x + t` on one piece.
#[derive(Debug, Clone, PartialEq)]
struct Line {
    s: Q,
    t: Q,
}

impl Line {
    fn at(&self, x: &Q) -> Q {
        &self.s * x + &self.t
    }
}

/// A continuous piecewise-linear function: `lines[i]` holds between `kinks[i-1]` and `kinks[i]`.
#[derive(Debug, Clone)]
struct Pl {
    kinks: Vec<Q>,
    lines: Vec<Line>,
}

impl Pl {
    fn constant(c: Q) -> Pl {
        Pl {
            kinks: Vec::new(),
            lines: vec![Line { s: Q::zero(), t: c }],
        }
    }
    fn var() -> Pl {
        Pl {
            kinks: Vec::new(),
            lines: vec![Line {
                s: Q::one(),
                t: Q::zero(),
            }],
        }
    }
    fn as_constant(&self) -> Option<Q> {
        (self.kinks.is_empty() && self.lines[0].s.is_zero()).then(|| self.lines[0].t.clone())
    }
    /// The line in force at `x` (either neighbour at a kink: the function is continuous).
    fn line_at(&self, x: &Q) -> &Line {
        let i = self.kinks.partition_point(|k| k < x);
        &self.lines[i]
    }
    fn at(&self, x: &Q) -> Q {
        self.line_at(x).at(x)
    }
    /// One point strictly inside each piece between `points` (sorted, distinct).
    fn samples(points: &[Q]) -> Vec<Q> {
        let one = Q::one();
        let mut out = Vec::with_capacity(points.len() + 1);
        match (points.first(), points.last()) {
            (Some(f), Some(l)) => {
                out.push(f - &one);
                for w in points.windows(2) {
                    out.push((&w[0] + &w[1]) / Q::from_integer(2.into()));
                }
                out.push(l + &one);
            }
            _ => out.push(Q::zero()),
        }
        out
    }
    /// Rebuilds a function on `kinks` from a rule giving the line inside each piece.
    fn rebuild(kinks: Vec<Q>, line: impl Fn(&Q) -> Option<Line>) -> Option<Pl> {
        if kinks.len() > MAX_KINKS {
            return None;
        }
        let lines = Pl::samples(&kinks)
            .iter()
            .map(line)
            .collect::<Option<Vec<_>>>()?;
        Some(Pl { kinks, lines })
    }
    fn add(&self, o: &Pl) -> Option<Pl> {
        let mut kinks: Vec<Q> = self.kinks.iter().chain(&o.kinks).cloned().collect();
        kinks.sort();
        kinks.dedup();
        Pl::rebuild(kinks, |x| {
            let (a, b) = (self.line_at(x), o.line_at(x));
            Some(Line {
                s: crate::num::add(&a.s, &b.s)?,
                t: crate::num::add(&a.t, &b.t)?,
            })
        })
    }
    fn scale(&self, c: &Q) -> Option<Pl> {
        let lines = self
            .lines
            .iter()
            .map(|l| {
                Some(Line {
                    s: crate::num::mul(&l.s, c)?,
                    t: crate::num::mul(&l.t, c)?,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Pl {
            kinks: self.kinks.clone(),
            lines,
        })
    }
    /// Kinks plus the zeros of every piece.
    fn critical_points(&self) -> Vec<Q> {
        let mut pts = self.kinks.clone();
        for (i, l) in self.lines.iter().enumerate() {
            if l.s.is_zero() {
                continue;
            }
            let z = -&l.t / &l.s;
            let after_lo = i == 0 || z > self.kinks[i - 1];
            let before_hi = i == self.kinks.len() || z < self.kinks[i];
            if after_lo && before_hi {
                pts.push(z);
            }
        }
        pts.sort();
        pts.dedup();
        pts
    }
    fn abs(&self) -> Option<Pl> {
        let kinks = self.critical_points();
        Pl::rebuild(kinks, |x| {
            let l = self.line_at(x);
            Some(if l.at(x).is_negative() {
                Line {
                    s: -l.s.clone(),
                    t: -l.t.clone(),
                }
            } else {
                l.clone()
            })
        })
    }
}

/// `e` as a piecewise-linear function of `var`.
fn pl(e: &Expr, var: &str, depth: usize) -> Option<Pl> {
    if depth > crate::limits::MAX_DEPTH {
        return None;
    }
    let d = depth + 1;
    match e {
        Expr::Num { value, .. } => small(value.clone()).map(Pl::constant),
        Expr::Sym(s) if s == var => Some(Pl::var()),
        Expr::Add(v) => {
            let mut acc = Pl::constant(Q::zero());
            for x in v {
                acc = acc.add(&pl(x, var, d)?)?;
            }
            Some(acc)
        }
        Expr::Neg(a) => pl(a, var, d)?.scale(&-Q::one()),
        Expr::Mul(v) => {
            let mut c = Q::one();
            let mut f: Option<Pl> = None;
            for x in v {
                let p = pl(x, var, d)?;
                match p.as_constant() {
                    Some(k) => c = crate::num::mul(&c, &k)?,
                    None if f.is_none() => f = Some(p),
                    None => return None,
                }
            }
            match f {
                Some(f) => f.scale(&c),
                None => Some(Pl::constant(c)),
            }
        }
        Expr::Div(a, b) => {
            let k = pl(b, var, d)?.as_constant()?;
            if k.is_zero() {
                return None;
            }
            pl(a, var, d)?.scale(&crate::num::div(&Q::one(), &k)?)
        }
        Expr::Percent(a) => pl(a, var, d)?.scale(&Q::new(1.into(), 100.into())),
        Expr::Func(name, args) if name == "abs" && args.len() == 1 => pl(&args[0], var, d)?.abs(),
        _ => small(crate::exact::eval(e)?).map(Pl::constant),
    }
}

/// Constants of inequalities stay small (answers never need more), which keeps the
/// unbudgeted arithmetic of solving cheap.
fn small(q: Q) -> Option<Q> {
    (q.numer().bits() <= MAX_CONST_BITS && q.denom().bits() <= MAX_CONST_BITS).then_some(q)
}

fn holds(v: &Q, op: RelOp) -> bool {
    match op {
        RelOp::Lt => v.is_negative(),
        RelOp::Le => !v.is_positive(),
        RelOp::Gt => v.is_positive(),
        RelOp::Ge => !v.is_negative(),
        _ => false,
    }
}

/// The solution set of an inequality (or chain of inequalities) in one variable,
/// with the variable's name; `None` when it is not one this module can solve.
pub(crate) fn solve(e: &Expr) -> Option<(String, RealSet)> {
    let Expr::Rel { terms, ops } = e else {
        return None;
    };
    if ops.is_empty()
        || !ops
            .iter()
            .all(|o| matches!(o, RelOp::Lt | RelOp::Le | RelOp::Gt | RelOp::Ge))
    {
        return None;
    }
    let syms = e.symbols();
    let [var] = syms.as_slice() else {
        return None;
    };
    if var.ends_with("()") {
        return None;
    }
    // Each link `tᵢ opᵢ tᵢ₊₁` as `fᵢ opᵢ 0` with `fᵢ = tᵢ - tᵢ₊₁`.
    let mut fs = Vec::with_capacity(ops.len());
    for (i, op) in ops.iter().enumerate() {
        let f = pl(&terms[i], var, 0)?.add(&pl(&terms[i + 1], var, 0)?.scale(&-Q::one())?)?;
        fs.push((f, *op));
    }
    let mut pts: Vec<Q> = fs.iter().flat_map(|(f, _)| f.critical_points()).collect();
    pts.sort();
    pts.dedup();
    if pts.len() > MAX_INTERVALS {
        return None;
    }
    let inside = |x: &Q| fs.iter().all(|(f, op)| holds(&f.at(x), *op));
    let samples = Pl::samples(&pts);
    // Pieces in order: (-oo, p0), {p0}, (p0, p1), {p1}, …, (pn, oo).
    let mut ivs = Vec::new();
    for (i, s) in samples.iter().enumerate() {
        if inside(s) {
            ivs.push(Iv {
                lo: if i == 0 {
                    Ext::NegInf
                } else {
                    Ext::Fin(pts[i - 1].clone())
                },
                hi: pts.get(i).map_or(Ext::PosInf, |p| Ext::Fin(p.clone())),
                lo_closed: false,
                hi_closed: false,
            });
        }
        if let Some(p) = pts.get(i)
            && inside(p)
        {
            ivs.push(Iv {
                lo: Ext::Fin(p.clone()),
                hi: Ext::Fin(p.clone()),
                lo_closed: true,
                hi_closed: true,
            });
        }
    }
    Some((var.clone(), RealSet::canonical(ivs)))
}

fn end(e: &Expr) -> Option<Ext> {
    match e {
        Expr::Const(Const::Inf) => Some(Ext::PosInf),
        Expr::Neg(a) if matches!(**a, Expr::Const(Const::Inf)) => Some(Ext::NegInf),
        _ => crate::exact::eval(e).map(Ext::Fin),
    }
}

/// A written set of reals: intervals, unions, finite sets of numbers, and an
/// open `(a, b)` read as a tuple (`None` for anything else, or non-rational ends).
pub(crate) fn as_set(e: &Expr) -> Option<RealSet> {
    let mut ivs = Vec::new();
    collect(e, &mut ivs, 0)?;
    (ivs.len() <= MAX_INTERVALS).then(|| RealSet::canonical(ivs))
}

fn collect(e: &Expr, out: &mut Vec<Iv>, depth: usize) -> Option<()> {
    if depth > 4 || out.len() > MAX_INTERVALS {
        return None;
    }
    match e {
        Expr::Interval {
            lo,
            hi,
            lo_closed,
            hi_closed,
        } => {
            let (lo, hi) = (end(lo)?, end(hi)?);
            if lo > hi {
                return None;
            }
            out.push(Iv {
                lo,
                hi,
                lo_closed: *lo_closed,
                hi_closed: *hi_closed,
            });
        }
        Expr::Tuple(t) if t.len() == 2 => {
            let (lo, hi) = (end(&t[0])?, end(&t[1])?);
            if lo >= hi {
                return None;
            }
            out.push(Iv {
                lo,
                hi,
                lo_closed: false,
                hi_closed: false,
            });
        }
        Expr::Set(v) => {
            for x in v {
                let p = crate::exact::eval(x)?;
                out.push(Iv {
                    lo: Ext::Fin(p.clone()),
                    hi: Ext::Fin(p),
                    lo_closed: true,
                    hi_closed: true,
                });
            }
        }
        Expr::Union(v) => {
            for x in v {
                collect(x, out, depth + 1)?;
            }
        }
        _ => return None,
    }
    Some(())
}

impl std::fmt::Display for RealSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            return f.write_str("{}");
        }
        let show = |e: &Ext| match e {
            Ext::NegInf => "-oo".to_string(),
            Ext::PosInf => "oo".to_string(),
            Ext::Fin(q) if q.is_integer() => q.numer().to_string(),
            Ext::Fin(q) => format!("{}/{}", q.numer(), q.denom()),
        };
        for (i, iv) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" U ")?;
            }
            if iv.lo == iv.hi {
                write!(f, "{{{}}}", show(&iv.lo))?;
            } else {
                write!(
                    f,
                    "{}{}, {}{}",
                    if iv.lo_closed { "[" } else { "(" },
                    show(&iv.lo),
                    show(&iv.hi),
                    if iv.hi_closed { "]" } else { ")" }
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solved(src: &str) -> String {
        let (_, s) = solve(&crate::parse(src).unwrap()).unwrap_or_else(|| panic!("{src}"));
        s.to_string()
    }

    #[test]
    fn linear_and_absolute_value_inequalities() {
        assert_eq!(solved("|x-1| < 3"), "(-2, 4)");
        assert_eq!(solved("|x-1| \\le 3"), "[-2, 4]");
        assert_eq!(solved("|2x+1| \\ge 5"), "(-oo, -3] U [2, oo)");
        assert_eq!(solved("|2x+1| > 5"), "(-oo, -3) U (2, oo)");
        assert_eq!(solved("2x + 1 > 5"), "(2, oo)");
        assert_eq!(solved("-3x \\le 6"), "[-2, oo)");
        assert_eq!(solved("\\frac{x}{2} < 1"), "(-oo, 2)");
        assert_eq!(solved("1 \\le |z| \\le \\frac32"), "[-3/2, -1] U [1, 3/2]");
        assert_eq!(solved("|x| + |x - 2| < 4"), "(-1, 3)");
        assert_eq!(solved("|x - 3| \\le 0"), "{3}");
        assert_eq!(solved("|x| < -1"), "{}");
        assert_eq!(solved("|x| \\ge 0"), "(-oo, oo)");
        assert_eq!(solved("||x| - 2| < 1"), "(-3, -1) U (1, 3)");
        assert_eq!(solved("-1 < 2x + 1 \\le 5"), "(-1, 2]");
        assert_eq!(solved("5 > |x|"), "(-5, 5)");
    }

    #[test]
    fn unsolvable_relations_are_none() {
        for src in [
            "x^2 < 4",
            "x + y < 1",
            "x = 3",
            "f(x) < 1",
            "\\sin x > 0",
            "1 < 2",
        ] {
            assert!(solve(&crate::parse(src).unwrap()).is_none(), "{src}");
        }
    }

    #[test]
    fn written_sets_are_canonical() {
        let s = |src: &str| as_set(&crate::parse(src).unwrap()).map(|s| s.to_string());
        assert_eq!(s("(-2, 4)").as_deref(), Some("(-2, 4)"));
        assert_eq!(s("[0, 1) \\cup [1, 2]").as_deref(), Some("[0, 2]"));
        assert_eq!(s("(0, 1) \\cup (1, 2)").as_deref(), Some("(0, 1) U (1, 2)"));
        assert_eq!(s("\\{-1\\} \\cup [0, 7)").as_deref(), Some("{-1} U [0, 7)"));
        assert_eq!(
            s("(-\\infty, -3] \\cup [2, \\infty)").as_deref(),
            Some("(-oo, -3] U [2, oo)")
        );
        assert_eq!(s("[\\sqrt2, 3]"), None);
        assert_eq!(s("(4, 2)"), None);
    }
}
