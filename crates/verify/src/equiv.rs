//! Equivalence of two parsed answers.

use crate::expr::{Const, Expr, RelOp};
use crate::limits::MAX_ITEMS;
use crate::{Options, Verdict, exact, ineq, num, numeric, poly, surd};
use num_rational::BigRational;

/// Seeds of the random points used by the numeric fallback.
const SEEDS: [u64; 5] = [11, 23, 37, 51, 79];
/// Most variants produced by expanding `±`.
const MAX_PM_VARIANTS: usize = 8;

/// Compares two parsed answers.
pub(crate) fn equiv(g: &Expr, p: &Expr, o: &Options) -> Verdict {
    // Two inequalities in one variable (before `a < x < b` becomes an interval):
    // equal exactly when their solution sets are (`|x-1| < 3` and `-2 < x < 4`).
    if let Some(v) = inequalities(g, p, o) {
        return v;
    }
    let g = normalize(g, o, 0);
    let p = normalize(p, o, 0);
    cmp(&g, &p, o, 0)
}

/// Structural clean-ups before comparison: `±` becomes a set of two values,
/// `a < x < b` an interval, `x \in S` the set, one-element lists their element.
#[allow(clippy::only_used_in_recursion)]
pub(crate) fn normalize(e: &Expr, o: &Options, depth: usize) -> Expr {
    if depth > crate::limits::MAX_DEPTH {
        return e.clone();
    }
    let d = depth + 1;
    match e {
        Expr::List(v) | Expr::Set(v) => {
            let mut items = Vec::new();
            for x in v {
                match normalize(x, o, d) {
                    // `{1 ± √5, -2}`: the ± variants join the enclosing collection.
                    Expr::Set(inner) if contains_pm(x) => items.extend(inner),
                    y => items.push(y),
                }
            }
            if matches!(e, Expr::List(_)) && items.len() == 1 {
                return items.pop().unwrap_or(Expr::List(Vec::new()));
            }
            if matches!(e, Expr::Set(_)) {
                Expr::Set(items)
            } else {
                Expr::List(items)
            }
        }
        Expr::Tuple(v) => Expr::Tuple(v.iter().map(|x| normalize(x, o, d)).collect()),
        Expr::Matrix(rows) => Expr::Matrix(
            rows.iter()
                .map(|r| r.iter().map(|x| normalize(x, o, d)).collect())
                .collect(),
        ),
        Expr::Interval {
            lo,
            hi,
            lo_closed,
            hi_closed,
        } => Expr::Interval {
            lo: Box::new(normalize(lo, o, d)),
            hi: Box::new(normalize(hi, o, d)),
            lo_closed: *lo_closed,
            hi_closed: *hi_closed,
        },
        Expr::Union(v) => Expr::Union(v.iter().map(|x| normalize(x, o, d)).collect()),
        Expr::Rel { terms, ops } => {
            if ops.len() == 1 && ops[0] == RelOp::In {
                return normalize(&terms[1], o, d);
            }
            if ops.len() == 2 && is_simple(&terms[1]) {
                let dir = |op: RelOp| match op {
                    RelOp::Lt => Some((1, false)),
                    RelOp::Le => Some((1, true)),
                    RelOp::Gt => Some((-1, false)),
                    RelOp::Ge => Some((-1, true)),
                    _ => None,
                };
                if let (Some((d1, c1)), Some((d2, c2))) = (dir(ops[0]), dir(ops[1]))
                    && d1 == d2
                {
                    let (lo, hi, lc, hc) = if d1 == 1 {
                        (&terms[0], &terms[2], c1, c2)
                    } else {
                        (&terms[2], &terms[0], c2, c1)
                    };
                    return Expr::Interval {
                        lo: Box::new(normalize(lo, o, d)),
                        hi: Box::new(normalize(hi, o, d)),
                        lo_closed: lc,
                        hi_closed: hc,
                    };
                }
            }
            Expr::Rel {
                terms: terms.iter().map(|x| normalize(x, o, d)).collect(),
                ops: ops.clone(),
            }
        }
        Expr::Mul(v) if v.len() > 1 && v.iter().all(|x| matches!(x, Expr::Matrix(_))) => {
            let mats: Vec<Expr> = v.iter().map(|x| normalize(x, o, d)).collect();
            let mut acc: Option<Vec<Vec<Expr>>> = None;
            for m in mats {
                let Expr::Matrix(m) = m else { return e.clone() };
                acc = match acc {
                    None => Some(m),
                    Some(a) => match matmul(&a, &m) {
                        Some(p) => Some(p),
                        None => return e.clone(),
                    },
                };
            }
            acc.map(Expr::Matrix).unwrap_or_else(|| e.clone())
        }
        _ if contains_pm(e) => {
            let vs: Vec<Expr> = expand_pm(e).into_iter().map(radicals).collect();
            if vs.len() <= 1 {
                vs.into_iter().next().unwrap_or_else(|| e.clone())
            } else {
                Expr::Set(vs)
            }
        }
        _ => radicals(e.clone()),
    }
}

/// A constant with radicals in canonical form (`√12` → `2·√3`, `1/√2` → `½·√2`);
/// anything else unchanged.
fn radicals(e: Expr) -> Expr {
    if surd::worth_trying(&e)
        && let Some(s) = surd::eval(&e)
        && let Some(x) = s.to_expr()
    {
        return x;
    }
    e
}

/// Product of two matrices with symbolic cells (`None` on a shape mismatch or when too large).
fn matmul(a: &[Vec<Expr>], b: &[Vec<Expr>]) -> Option<Vec<Vec<Expr>>> {
    let inner = b.len();
    let cols = b.first()?.len();
    if a.iter().any(|r| r.len() != inner) || b.iter().any(|r| r.len() != cols) {
        return None;
    }
    if a.len() * cols * inner > 4096 {
        return None;
    }
    let mut out = Vec::with_capacity(a.len());
    for row in a {
        let mut r = Vec::with_capacity(cols);
        #[allow(clippy::needless_range_loop)]
        for j in 0..cols {
            let terms: Vec<Expr> = (0..inner)
                .map(|k| Expr::Mul(vec![row[k].clone(), b[k][j].clone()]))
                .collect();
            r.push(Expr::Add(terms));
        }
        out.push(r);
    }
    Some(out)
}

fn contains_pm(e: &Expr) -> bool {
    if matches!(e, Expr::PlusMinus(..)) {
        return true;
    }
    if matches!(
        e,
        Expr::List(_) | Expr::Set(_) | Expr::Tuple(_) | Expr::Rel { .. } | Expr::Matrix(_)
    ) {
        return false;
    }
    let mut any = false;
    e.for_each_child(|c| any |= contains_pm(c));
    any
}

/// All sign choices of the `±` in a scalar expression (capped).
fn expand_pm(e: &Expr) -> Vec<Expr> {
    let mut out = vec![e.clone()];
    for _ in 0..3 {
        let mut next = Vec::new();
        let mut changed = false;
        for x in &out {
            match replace_first_pm(x) {
                Some((a, b)) => {
                    changed = true;
                    next.push(a);
                    next.push(b);
                }
                None => next.push(x.clone()),
            }
        }
        out = next;
        if !changed || out.len() >= MAX_PM_VARIANTS {
            break;
        }
    }
    out
}

/// Replaces the first `±` by `+` and by `-`.
fn replace_first_pm(e: &Expr) -> Option<(Expr, Expr)> {
    match e {
        Expr::PlusMinus(a, b) => {
            let plus = match a {
                Some(a) => Expr::Add(vec![(**a).clone(), (**b).clone()]),
                None => (**b).clone(),
            };
            let minus = match a {
                Some(a) => Expr::Add(vec![(**a).clone(), Expr::Neg(b.clone())]),
                None => Expr::Neg(b.clone()),
            };
            Some((plus, minus))
        }
        Expr::Add(v) | Expr::Mul(v) => {
            for (i, x) in v.iter().enumerate() {
                if let Some((a, b)) = replace_first_pm(x) {
                    let mut va = v.clone();
                    let mut vb = v.clone();
                    va[i] = a;
                    vb[i] = b;
                    return Some(if matches!(e, Expr::Add(_)) {
                        (Expr::Add(va), Expr::Add(vb))
                    } else {
                        (Expr::Mul(va), Expr::Mul(vb))
                    });
                }
            }
            None
        }
        Expr::Neg(a) => {
            replace_first_pm(a).map(|(x, y)| (Expr::Neg(Box::new(x)), Expr::Neg(Box::new(y))))
        }
        Expr::Div(a, b) => {
            if let Some((x, y)) = replace_first_pm(a) {
                return Some((
                    Expr::Div(Box::new(x), b.clone()),
                    Expr::Div(Box::new(y), b.clone()),
                ));
            }
            replace_first_pm(b).map(|(x, y)| {
                (
                    Expr::Div(a.clone(), Box::new(x)),
                    Expr::Div(a.clone(), Box::new(y)),
                )
            })
        }
        Expr::Pow(a, b) => {
            if let Some((x, y)) = replace_first_pm(a) {
                return Some((
                    Expr::Pow(Box::new(x), b.clone()),
                    Expr::Pow(Box::new(y), b.clone()),
                ));
            }
            replace_first_pm(b).map(|(x, y)| {
                (
                    Expr::Pow(a.clone(), Box::new(x)),
                    Expr::Pow(a.clone(), Box::new(y)),
                )
            })
        }
        _ => None,
    }
}

/// A left-hand side that only names the answer: `x`, `f(x)`, `(p, q)`, `a_3`, `A:B`.
pub(crate) fn is_simple(e: &Expr) -> bool {
    match e {
        Expr::Sym(_) => true,
        Expr::Const(c) => *c != Const::Inf,
        Expr::Func(name, args) => {
            !crate::expr::is_builtin_func(name)
                && args.iter().all(|a| !matches!(a, Expr::Num { .. }))
        }
        Expr::Tuple(v) | Expr::Mul(v) => v.iter().all(is_simple),
        Expr::Div(a, b) => is_simple(a) && is_simple(b),
        _ => false,
    }
}

/// The value an equation names: the last term of `x = a = b`, or the right side of `x = a`.
fn named_value(e: &Expr) -> Option<&Expr> {
    let Expr::Rel { terms, ops } = e else {
        return None;
    };
    if !ops.iter().all(|o| matches!(o, RelOp::Eq | RelOp::Approx)) {
        return None;
    }
    // `x = 5 + 5 + 1 = 1/3 \approx 0.33`: the exact value is before the first `\approx`.
    let cut = ops
        .iter()
        .position(|o| *o == RelOp::Approx)
        .unwrap_or(ops.len());
    if cut == 0 {
        return terms.last();
    }
    let terms = &terms[..=cut];
    if terms.len() >= 3 || is_simple(&terms[0]) || terms[0].symbols().is_empty() {
        return terms.last();
    }
    None
}

fn and(a: Verdict, b: Verdict) -> Verdict {
    match (a, b) {
        (Verdict::NotEqual, _) | (_, Verdict::NotEqual) => Verdict::NotEqual,
        (Verdict::Undecided, _) | (_, Verdict::Undecided) => Verdict::Undecided,
        _ => Verdict::Equal,
    }
}

fn is_collection(e: &Expr) -> bool {
    matches!(e, Expr::List(_) | Expr::Set(_) | Expr::Tuple(_))
}

pub(crate) fn cmp(g: &Expr, p: &Expr, o: &Options, depth: usize) -> Verdict {
    if depth > crate::limits::MAX_DEPTH {
        return Verdict::Undecided;
    }
    let d = depth + 1;
    if g == p {
        return Verdict::Equal;
    }
    match (g, p) {
        (Expr::Text(a), Expr::Text(b)) => return text_eq(a, b),
        (Expr::Text(a), other) | (other, Expr::Text(a))
            if !is_collection(other) && !matches!(other, Expr::Rel { .. }) =>
        {
            return match letters_of(other) {
                Some(l) if text_key(&l) == text_key(a) => Verdict::Equal,
                _ => Verdict::NotEqual,
            };
        }
        _ => {}
    }
    // Relations.
    match (g, p) {
        (Expr::Rel { .. }, Expr::Rel { .. }) => return rel_cmp(g, p, o, d),
        (Expr::Rel { .. }, other) => {
            if let Some(v) = named_value(g) {
                return cmp(v, other, o, d);
            }
            // As in math-verify, a gold relation may always match a predicted set.
            if let Some(v) = inequality_vs_set(g, other) {
                return v;
            }
            if o.allow_set_relation_comp
                && let Some(iv) = relation_as_set(g)
            {
                return cmp(&iv, other, o, d);
            }
            return Verdict::NotEqual;
        }
        (other, Expr::Rel { .. }) => {
            if let Some(v) = named_value(p) {
                return cmp(other, v, o, d);
            }
            // A predicted relation matches a gold set only when allowed.
            if o.allow_set_relation_comp
                && let Some(v) = inequality_vs_set(p, other)
            {
                return v;
            }
            if o.allow_set_relation_comp
                && let Some(iv) = relation_as_set(p)
            {
                return cmp(other, &iv, o, d);
            }
            return Verdict::NotEqual;
        }
        _ => {}
    }
    match (g, p) {
        (Expr::Matrix(a), Expr::Matrix(b)) => {
            if a.len() != b.len() || a.iter().zip(b).any(|(x, y)| x.len() != y.len()) {
                return Verdict::NotEqual;
            }
            let mut v = Verdict::Equal;
            for (x, y) in a.iter().flatten().zip(b.iter().flatten()) {
                v = and(v, cmp(x, y, o, d));
                if v == Verdict::NotEqual {
                    break;
                }
            }
            v
        }
        // A column vector against a tuple.
        (Expr::Matrix(m), Expr::Tuple(t)) | (Expr::Tuple(t), Expr::Matrix(m))
            if m.iter().all(|r| r.len() == 1) && m.len() == t.len() =>
        {
            let col: Vec<Expr> = m.iter().map(|r| r[0].clone()).collect();
            ordered(&col, t, o, d)
        }
        (Expr::Tuple(a), Expr::Tuple(b)) => ordered(a, b, o, d),
        (Expr::Set(a), Expr::Set(b) | Expr::List(b)) | (Expr::List(a), Expr::Set(b)) => {
            unordered(&dedup(a, o, d), &dedup(b, o, d), o, d)
        }
        (Expr::List(a), Expr::List(b)) => unordered(&dedup(a, o, d), &dedup(b, o, d), o, d),
        (Expr::List(a), Expr::Tuple(b)) | (Expr::Tuple(a), Expr::List(b)) => ordered(a, b, o, d),
        (Expr::Set(a), Expr::Tuple(b)) | (Expr::Tuple(b), Expr::Set(a)) => {
            if o.strict {
                Verdict::NotEqual
            } else {
                unordered(&dedup(a, o, d), &dedup(b, o, d), o, d)
            }
        }
        (
            Expr::Interval {
                lo: l1,
                hi: h1,
                lo_closed: a1,
                hi_closed: b1,
            },
            Expr::Interval {
                lo: l2,
                hi: h2,
                lo_closed: a2,
                hi_closed: b2,
            },
        ) => {
            if a1 != a2 || b1 != b2 {
                return Verdict::NotEqual;
            }
            and(cmp(l1, l2, o, d), cmp(h1, h2, o, d))
        }
        (
            Expr::Interval {
                lo,
                hi,
                lo_closed: false,
                hi_closed: false,
            },
            Expr::Tuple(t),
        )
        | (
            Expr::Tuple(t),
            Expr::Interval {
                lo,
                hi,
                lo_closed: false,
                hi_closed: false,
            },
        ) if t.len() == 2 => and(cmp(lo, &t[0], o, d), cmp(hi, &t[1], o, d)),
        (Expr::Union(a), Expr::Union(b)) => unordered(a, b, o, d),
        (Expr::Union(a), x) | (x, Expr::Union(a)) if a.len() == 1 => cmp(&a[0], x, o, d),
        (Expr::Set(a), x) | (x, Expr::Set(a)) if a.len() == 1 && x.is_scalar() => {
            cmp(&a[0], x, o, d)
        }
        _ if g.is_scalar() && p.is_scalar() => scalar(g, p, o),
        _ => Verdict::NotEqual,
    }
}

fn dedup(v: &[Expr], o: &Options, d: usize) -> Vec<Expr> {
    if v.len() > MAX_ITEMS {
        return v.to_vec();
    }
    let mut out: Vec<Expr> = Vec::new();
    for x in v {
        if !out.iter().any(|y| cmp(y, x, o, d) == Verdict::Equal) {
            out.push(x.clone());
        }
    }
    out
}

fn ordered(a: &[Expr], b: &[Expr], o: &Options, d: usize) -> Verdict {
    if a.len() != b.len() {
        return Verdict::NotEqual;
    }
    let mut v = Verdict::Equal;
    for (x, y) in a.iter().zip(b) {
        v = and(v, cmp(x, y, o, d));
        if v == Verdict::NotEqual {
            break;
        }
    }
    v
}

fn unordered(a: &[Expr], b: &[Expr], o: &Options, d: usize) -> Verdict {
    if a.len() != b.len() {
        return Verdict::NotEqual;
    }
    if a.len() > MAX_ITEMS {
        return Verdict::Undecided;
    }
    let mut used = vec![false; b.len()];
    let mut undecided = false;
    for x in a {
        let mut found = false;
        for (j, y) in b.iter().enumerate() {
            if used[j] {
                continue;
            }
            match cmp(x, y, o, d) {
                Verdict::Equal => {
                    used[j] = true;
                    found = true;
                    break;
                }
                Verdict::Undecided => undecided = true,
                Verdict::NotEqual => {}
            }
        }
        if !found {
            return if undecided {
                Verdict::Undecided
            } else {
                Verdict::NotEqual
            };
        }
    }
    Verdict::Equal
}

/// Both sides solved as inequalities in the same variable (any variable when not
/// strict): their solution sets compared exactly.
fn inequalities(g: &Expr, p: &Expr, o: &Options) -> Option<Verdict> {
    if !matches!(g, Expr::Rel { .. }) || !matches!(p, Expr::Rel { .. }) {
        return None;
    }
    let (gv, gs) = ineq::solve(g)?;
    let (pv, ps) = ineq::solve(p)?;
    if o.strict && gv != pv {
        return None;
    }
    Some(if gs == ps {
        Verdict::Equal
    } else {
        Verdict::NotEqual
    })
}

/// A solved inequality against a written set of reals (`|x-1| < 3` vs `(-2, 4)`).
fn inequality_vs_set(rel: &Expr, set: &Expr) -> Option<Verdict> {
    let (_, a) = ineq::solve(rel)?;
    let b = ineq::as_set(set)?;
    Some(if a == b {
        Verdict::Equal
    } else {
        Verdict::NotEqual
    })
}

/// `x > 3` as the interval `(3, oo)` (only with `allow_set_relation_comp`).
fn relation_as_set(e: &Expr) -> Option<Expr> {
    let Expr::Rel { terms, ops } = e else {
        return None;
    };
    if ops.len() != 1 {
        return None;
    }
    let (var_left, bound) = if matches!(terms[0], Expr::Sym(_)) {
        (true, &terms[1])
    } else if matches!(terms[1], Expr::Sym(_)) {
        (false, &terms[0])
    } else {
        return None;
    };
    let inf = Expr::Const(Const::Inf);
    let ninf = Expr::Neg(Box::new(Expr::Const(Const::Inf)));
    // Normalize to `var op bound`.
    let op = if var_left {
        ops[0]
    } else {
        match ops[0] {
            RelOp::Lt => RelOp::Gt,
            RelOp::Le => RelOp::Ge,
            RelOp::Gt => RelOp::Lt,
            RelOp::Ge => RelOp::Le,
            x => x,
        }
    };
    let b = Box::new(bound.clone());
    Some(match op {
        RelOp::Gt | RelOp::Ge => Expr::Interval {
            lo: b,
            hi: Box::new(inf),
            lo_closed: op == RelOp::Ge,
            hi_closed: false,
        },
        RelOp::Lt | RelOp::Le => Expr::Interval {
            lo: Box::new(ninf),
            hi: b,
            lo_closed: false,
            hi_closed: op == RelOp::Le,
        },
        RelOp::Eq => Expr::Set(vec![bound.clone()]),
        _ => return None,
    })
}

fn rel_cmp(g: &Expr, p: &Expr, o: &Options, d: usize) -> Verdict {
    let (
        Expr::Rel {
            terms: gt,
            ops: gops,
        },
        Expr::Rel {
            terms: pt,
            ops: pops,
        },
    ) = (g, p)
    else {
        return Verdict::NotEqual;
    };
    if let Some(v) = inequalities(g, p, o) {
        return v;
    }
    // Both name a value (`x = 3` vs `x = 1 + 2`, chains): compare the values.
    if let (Some(a), Some(b)) = (named_value(g), named_value(p)) {
        let same_lhs =
            gt.len() == 2 && pt.len() == 2 && cmp(&gt[0], &pt[0], o, d) == Verdict::Equal;
        let v = cmp(a, b, o, d);
        if v == Verdict::Equal || same_lhs || gt.len() > 2 || pt.len() > 2 {
            return v;
        }
    }
    if gops.len() == 1 && pops.len() == 1 {
        let (gd, gop) = canonical(&gt[0], &gt[1], gops[0]);
        let (pd, pop) = canonical(&pt[0], &pt[1], pops[0]);
        if gop != pop {
            return Verdict::NotEqual;
        }
        let sign = match gop {
            RelOp::Lt | RelOp::Le => 1,
            _ => 0,
        };
        return proportional(&gd, &pd, sign, o);
    }
    if gops != pops || gt.len() != pt.len() {
        return Verdict::NotEqual;
    }
    ordered(gt, pt, o, d)
}

/// `lhs op rhs` as `diff op' 0` with op' in {=, !=, <, <=}.
fn canonical(l: &Expr, r: &Expr, op: RelOp) -> (Expr, RelOp) {
    let diff = |a: &Expr, b: &Expr| Expr::Add(vec![a.clone(), Expr::Neg(Box::new(b.clone()))]);
    match op {
        RelOp::Gt => (diff(r, l), RelOp::Lt),
        RelOp::Ge => (diff(r, l), RelOp::Le),
        RelOp::Approx => (diff(l, r), RelOp::Eq),
        RelOp::In => (diff(l, r), RelOp::In),
        x => (diff(l, r), x),
    }
}

/// True when `a = c * b` for a constant `c` (positive when `sign == 1`).
fn proportional(a: &Expr, b: &Expr, sign: i32, o: &Options) -> Verdict {
    let syms = merged_symbols(a, b, o);
    let rename = renamer(a, b, o);
    let mut ratio: Option<f64> = None;
    let mut valid = 0;
    for seed in SEEDS {
        let (Some(x), Some(y)) = (
            numeric::eval(a, seed, &|s| s.to_string()),
            numeric::eval(b, seed, &*rename),
        ) else {
            continue;
        };
        if x.im.abs() > 1e-9 * x.abs().max(1.0) || y.im.abs() > 1e-9 * y.abs().max(1.0) {
            continue;
        }
        if y.re.abs() < 1e-12 {
            if x.re.abs() < 1e-12 {
                valid += 1;
                continue;
            }
            return Verdict::NotEqual;
        }
        let r = x.re / y.re;
        if let Some(r0) = ratio {
            if (r - r0).abs() > 1e-8 * r0.abs().max(r.abs()) {
                return Verdict::NotEqual;
            }
        } else {
            if r.abs() < 1e-12 || (sign == 1 && r < 0.0) {
                return Verdict::NotEqual;
            }
            ratio = Some(r);
        }
        valid += 1;
        if syms == 0 {
            break;
        }
    }
    if valid == 0 {
        Verdict::Undecided
    } else {
        Verdict::Equal
    }
}

fn letters_of(e: &Expr) -> Option<String> {
    match e {
        Expr::Sym(s) => Some(s.clone()),
        Expr::Const(Const::E) => Some("e".into()),
        Expr::Const(Const::I) => Some("i".into()),
        Expr::Const(Const::Pi) => Some("pi".into()),
        Expr::Mul(v) => v.iter().map(letters_of).collect(),
        _ => None,
    }
}

/// Text answers compared as text. A phrase (several words) is compared word by word, case
/// folded, with sentence punctuation at its end dropped: `No solution.` is `no solution`,
/// and neither is `solution no` nor `nosolution`. A single word or symbol keeps its case
/// (`A` and `a` are different names) and ignores spaces, brackets and dots (`\text{(A)}`).
fn text_eq(a: &str, b: &str) -> Verdict {
    let phrase = |s: &str| {
        s.trim()
            .trim_matches('$')
            .trim_end_matches(['.', '!', '?'])
            .split_whitespace()
            .map(str::to_lowercase)
            .collect::<Vec<_>>()
    };
    let (pa, pb) = (phrase(a), phrase(b));
    if pa.len() > 1 || pb.len() > 1 {
        return if pa == pb {
            Verdict::Equal
        } else {
            Verdict::NotEqual
        };
    }
    if text_key(a) == text_key(b) {
        Verdict::Equal
    } else {
        Verdict::NotEqual
    }
}

/// A single text word as a key: spaces, brackets, dots, `$` and `\\` dropped.
fn text_key(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '(' | ')' | '.' | '$' | '\\'))
        .collect()
}

fn has_inf(e: &Expr) -> bool {
    if matches!(e, Expr::Const(Const::Inf)) {
        return true;
    }
    let mut any = false;
    e.for_each_child(|c| any |= has_inf(c));
    any
}

/// Symbols of `b` renamed onto those of `a` when not strict and the names differ.
fn renamer(a: &Expr, b: &Expr, o: &Options) -> Box<dyn Fn(&str) -> String> {
    let sa = a.symbols();
    let sb = b.symbols();
    if o.strict || sa == sb || sa.len() != sb.len() {
        return Box::new(|s: &str| s.to_string());
    }
    let map: Vec<(String, String)> = sb.into_iter().zip(sa).collect();
    Box::new(move |s: &str| {
        let key_fn = format!("{s}()");
        for (from, to) in &map {
            if from == s {
                return to.clone();
            }
            if *from == key_fn {
                return to.trim_end_matches("()").to_string();
            }
        }
        s.to_string()
    })
}

fn merged_symbols(a: &Expr, b: &Expr, o: &Options) -> usize {
    let rn = renamer(a, b, o);
    let mut s = a.symbols();
    s.extend(b.symbols().iter().map(|x| rn(x)));
    s.sort();
    s.dedup();
    s.len()
}

fn scalar(g: &Expr, p: &Expr, o: &Options) -> Verdict {
    if has_inf(g) || has_inf(p) {
        return if g.to_string() == p.to_string() {
            Verdict::Equal
        } else {
            Verdict::NotEqual
        };
    }
    // `28\%` against `28`: the percent sign is decoration as often as a factor.
    if let (Expr::Percent(a), _) | (_, Expr::Percent(a)) = (g, p) {
        let strip = |e: &Expr| match e {
            Expr::Percent(x) => (**x).clone(),
            x => x.clone(),
        };
        let (gs, ps) = if matches!(g, Expr::Percent(_)) {
            ((**a).clone(), strip(p))
        } else {
            (strip(g), (**a).clone())
        };
        if scalar_core(&gs, &ps, o) == Verdict::Equal {
            return Verdict::Equal;
        }
    }
    scalar_core(g, p, o)
}

fn scalar_core(g: &Expr, p: &Expr, o: &Options) -> Verdict {
    let float = g.has_float() || p.has_float();
    if let (Some(a), Some(b)) = (exact::eval(g), exact::eval(p)) {
        if a == b || (float && rounded_eq(&a, &b, o.float_rounding)) {
            return Verdict::Equal;
        }
        return Verdict::NotEqual;
    }
    // Radicals of rationals: equal exactly when the canonical forms are equal
    // (distinct radicals are linearly independent over Q), no tolerance involved.
    if (surd::worth_trying(g) || surd::worth_trying(p))
        && let (Some(a), Some(b)) = (surd::eval(g), surd::eval(p))
    {
        if a == b {
            return Verdict::Equal;
        }
        if !float {
            return Verdict::NotEqual;
        }
    }
    let rename = renamer(g, p, o);
    let mut vars = g.symbols();
    vars.extend(p.symbols().iter().map(|s| rename(s)));
    vars.sort();
    vars.dedup();
    if vars.iter().any(|v| v.ends_with("()")) {
        // User functions are opaque: numeric only.
    } else if let (Some(a), Some(b)) = (
        poly::to_ratfun(g, &vars, &|s| s.to_string()),
        poly::to_ratfun(p, &vars, &*rename),
    ) && let Some(eq) = poly::equal(&a, &b)
    {
        return if eq {
            Verdict::Equal
        } else {
            Verdict::NotEqual
        };
    }
    let constant = vars.is_empty();
    let mut valid = 0;
    for seed in SEEDS {
        let (Some(x), Some(y)) = (
            numeric::eval(g, seed, &|s| s.to_string()),
            numeric::eval(p, seed, &*rename),
        ) else {
            continue;
        };
        let diff = numeric_diff(x, y);
        let scale = x.abs().max(y.abs());
        let close = if float && constant {
            let unit = 10f64.powi(-(o.float_rounding.min(300) as i32));
            diff <= unit * 0.5 + 1e-9 * scale
                || round_f(x.re, o.float_rounding) == round_f(y.re, o.float_rounding)
                    && x.im.abs() < 1e-12
                    && y.im.abs() < 1e-12
        } else {
            diff <= o.numeric_tolerance() * scale + 1e-13
        };
        if !close {
            return Verdict::NotEqual;
        }
        valid += 1;
        if constant {
            break;
        }
    }
    if valid == 0 {
        Verdict::Undecided
    } else {
        Verdict::Equal
    }
}

fn numeric_diff(x: numeric::C, y: numeric::C) -> f64 {
    (x.re - y.re).hypot(x.im - y.im)
}

fn round_f(x: f64, digits: u32) -> f64 {
    let s = 10f64.powi(digits.min(300) as i32);
    (x * s).round() / s
}

fn rounded_eq(a: &BigRational, b: &BigRational, digits: u32) -> bool {
    num::round_to(a, digits) == num::round_to(b, digits)
}

#[cfg(test)]
mod tests {
    use crate::{Options, Verdict, verify};

    fn eq(g: &str, p: &str) {
        assert_eq!(
            verify(g, p, &Options::default()),
            Verdict::Equal,
            "{g}  vs  {p}"
        );
    }
    fn ne(g: &str, p: &str) {
        assert_ne!(
            verify(g, p, &Options::default()),
            Verdict::Equal,
            "{g}  vs  {p}"
        );
    }

    #[test]
    fn numbers_and_notation() {
        eq("\\frac12", "0.5");
        eq("\\dfrac{3}{4}", "3/4");
        eq("2\\frac{1}{2}", "5/2");
        eq("-1\\tfrac{1}{4}", "-1.25");
        eq("1,234,567", "1234567");
        eq("50\\%", "50");
        eq("\\$18.90", "18.90");
        eq("90^\\circ", "90");
        eq("30^{\\circ}", "30");
        eq("1.5e3", "1500");
        eq("864 \\mbox{ inches}^2", "864");
        eq("\\left( 3, \\frac{\\pi}{2} \\right)", "(3, \\pi/2)");
        eq("3\\,000", "3000");
        ne("\\frac{1}{3}", "0.333");
    }

    #[test]
    fn radicals_constants_functions() {
        eq("\\sqrt{8}", "2\\sqrt{2}");
        eq("\\sqrt[3]{27}", "3");
        eq("\\sqrt{\\frac{1}{n}}", "\\frac{1}{\\sqrt{n}}");
        ne("4\\sqrt(2)", "4");
        eq("e^{i\\pi}", "-1");
        eq("\\sin^2 x + \\cos^2 x", "1");
        eq("\\ln(e^2)", "2");
        eq("\\log_2 8", "3");
        eq("\\exp(0)", "1");
        eq("|-3|", "3");
        eq("5!", "120");
        eq("\\binom{5}{2}", "10");
        eq("\\infty", "\\infty");
        ne("\\infty", "-\\infty");
        eq("6 - 5i", "-5i + 6");
        eq("2 \\sin b \\cos a", "2\\cos(a)\\sin(b)");
    }

    #[test]
    fn radicals_compare_exactly() {
        eq("\\sqrt{12}", "2\\sqrt{3}");
        eq("\\sqrt{\\frac12}", "\\frac{\\sqrt{2}}{2}");
        eq("\\sqrt[3]{54}", "3\\sqrt[3]{2}");
        eq("\\frac{1}{\\sqrt{3}}", "\\frac{\\sqrt3}{3}");
        eq("\\frac{2}{1+\\sqrt{3}}", "\\sqrt{3}-1");
        eq("2\\sqrt3 + \\sqrt{12}", "4\\sqrt{3}");
        eq("\\sqrt{2}\\cdot\\sqrt{8}", "4");
        eq("\\{\\sqrt{8}, 1\\}", "\\{1, 2\\sqrt2\\}");
        eq("x = \\frac{3}{\\sqrt{3}}", "\\sqrt{3}");
        eq("\\sqrt{2}", "1.414214");
        ne("\\sqrt{2}", "1.414");
        ne("4\\sqrt{2}", "4");
        ne("\\sqrt{2} + \\sqrt{3}", "\\sqrt{5}");
        // Two different radicals closer than any float tolerance would notice.
        ne(
            "\\sqrt{1000000000001}",
            "1000000 + \\frac{1}{2000000} - \\frac{1}{8000000000000000000}",
        );
        let ex = crate::explain("\\sqrt{12}", "\\frac{6}{\\sqrt{3}}", &Options::default());
        assert_eq!(ex.verdict, Verdict::Equal);
        assert_eq!(ex.gold.normalized.as_deref(), Some("2*sqrt(3)"));
        assert_eq!(ex.pred.normalized.as_deref(), Some("2*sqrt(3)"));
    }

    #[test]
    fn inequalities_compare_by_solution_sets() {
        eq("|x-1| < 3", "(-2, 4)");
        eq("|x-1| < 3", "-2 < x < 4");
        eq("-2 < x < 4", "|x-1| < 3");
        eq("|x - 1| \\le 3", "[-2, 4]");
        eq("|2x+1| \\ge 5", "(-\\infty,-3] \\cup [2,\\infty)");
        eq("|2x+1| \\ge 5", "x \\in (-\\infty,-3] \\cup [2,\\infty)");
        eq("2x + 1 > 5", "x > 2");
        eq("2x + 1 > 5", "(2, \\infty)");
        eq("x > 2", "(2, \\infty)");
        eq(
            "1 \\le |z| \\le \\frac32",
            "[-\\tfrac32, -1] \\cup [1, \\tfrac32]",
        );
        ne("|x-1| < 3", "(-2, 4]");
        ne("|x-1| < 3", "-2 \\le x < 4");
        ne("|2x+1| \\ge 5", "(-\\infty,-3) \\cup (2,\\infty)");
        ne("2x + 1 > 5", "x \\ge 2");
        ne("2x + 1 > 5", "(-\\infty, 2)");
        // A predicted relation matches a gold set only with `allow_set_relation_comp`.
        ne("(-2, 4)", "|x-1| < 3");
        let rel = Options {
            allow_set_relation_comp: true,
            ..Options::default()
        };
        assert_eq!(verify("(-2, 4)", "|x-1| < 3", &rel), Verdict::Equal);
        // Strict mode keeps variable names apart; lenient mode does not.
        ne("|x-1| < 3", "|y-1| < 3");
        let lenient = Options {
            strict: false,
            ..Options::default()
        };
        assert_eq!(verify("|x-1| < 3", "|y-1| < 3", &lenient), Verdict::Equal);
    }

    #[test]
    fn algebra() {
        eq("x^2+7x+10", "(x+2)(x+5)");
        eq("\\frac{x^2-1}{x-1}", "x+1");
        eq("2xy", "2yx");
        ne("x+2n+1", "x+1");
        eq("1 \\pm \\sqrt{19}", "\\{1+\\sqrt{19}, 1-\\sqrt{19}\\}");
        ne("\\pm 2021", "2021");
    }

    #[test]
    fn structures() {
        eq("\\{1, 2, 3\\}", "\\{3, 1, 2\\}");
        ne("(1, 2)", "(2, 1)");
        eq("[0, 1) \\cup (2, \\infty)", "(2, \\infty) \\cup [0, 1)");
        ne("[0, 1)", "[0, 1]");
        eq(
            "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}",
            "\\begin{bmatrix} 1 & 2 \\\\ 3 & 4 \\end{bmatrix}",
        );
        ne(
            "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}",
            "\\begin{pmatrix} 1 & 3 \\\\ 2 & 4 \\end{pmatrix}",
        );
        eq("x = 3", "3");
        eq("y = 2x + 1", "2x - y + 1 = 0");
        ne("x + y = 1", "x - y = 1");
        ne("x = 1", "x = 2");
        eq("x \\ge 5", "5 \\le x");
        ne("x > 5", "x < 5");
        eq("\\text{(C)}", "C");
        ne("\\text{(C)}", "D");
        eq("\\text{Evelyn}", "Evelyn");
    }

    #[test]
    fn text_answers() {
        eq("42", "The answer is 42.");
        eq("18", "She makes $18 every day.\nA: 18");
        eq(
            "\\frac{1}{3}",
            "so the probability is $\\boxed{\\dfrac13}$.",
        );
    }

    #[test]
    fn lenient_variables_and_rounding() {
        let lenient = Options {
            strict: false,
            ..Options::default()
        };
        assert_eq!(verify("f(x)", "f(y)", &lenient), Verdict::Equal);
        assert_ne!(verify("f(x)", "f(y)", &Options::default()), Verdict::Equal);
        let p2 = Options {
            float_rounding: 2,
            ..Options::default()
        };
        assert_eq!(verify("\\frac{1}{3}", "0.33", &p2), Verdict::Equal);
        let rel = Options {
            allow_set_relation_comp: true,
            ..Options::default()
        };
        assert_eq!(verify("x > 1", "(1, \\infty)", &rel), Verdict::Equal);
    }
}
