//! The expression tree answers are parsed into.

use num_rational::BigRational;
use num_traits::{Signed, Zero};
use std::fmt;

/// A named mathematical constant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Const {
    Pi,
    E,
    I,
    Inf,
}

/// A relation between two expressions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RelOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Approx,
}

impl RelOp {
    pub fn symbol(self) -> &'static str {
        match self {
            RelOp::Eq => "=",
            RelOp::Ne => "!=",
            RelOp::Lt => "<",
            RelOp::Le => "<=",
            RelOp::Gt => ">",
            RelOp::Ge => ">=",
            RelOp::In => "in",
            RelOp::Approx => "~=",
        }
    }
}

/// A parsed answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// An exact number; `float` is true when it was written with a decimal point.
    Num {
        value: BigRational,
        float: bool,
    },
    Sym(String),
    Const(Const),
    Add(Vec<Expr>),
    Mul(Vec<Expr>),
    Neg(Box<Expr>),
    Div(Box<Expr>, Box<Expr>),
    Pow(Box<Expr>, Box<Expr>),
    /// `index`-th root of `radicand`.
    Root {
        radicand: Box<Expr>,
        index: Box<Expr>,
    },
    /// sin, cos, tan, log (natural), log with base as two args, exp, abs, user functions.
    Func(String, Vec<Expr>),
    Factorial(Box<Expr>),
    Binom(Box<Expr>, Box<Expr>),
    Percent(Box<Expr>),
    /// `a ± b` (or `±b` when the first part is absent).
    PlusMinus(Option<Box<Expr>>, Box<Expr>),
    /// `(a, b, …)`: ordered.
    Tuple(Vec<Expr>),
    /// A bare comma-separated list `a, b, c` or `{a, b}` without escaped braces.
    List(Vec<Expr>),
    /// `\{a, b\}`: unordered.
    Set(Vec<Expr>),
    Interval {
        lo: Box<Expr>,
        hi: Box<Expr>,
        lo_closed: bool,
        hi_closed: bool,
    },
    Union(Vec<Expr>),
    Matrix(Vec<Vec<Expr>>),
    /// A chain `t0 op0 t1 op1 t2 …`.
    Rel {
        terms: Vec<Expr>,
        ops: Vec<RelOp>,
    },
    /// Free text such as `\text{Evelyn}`.
    Text(String),
}

impl Expr {
    pub fn int(v: i64) -> Expr {
        Expr::Num {
            value: BigRational::from_integer(v.into()),
            float: false,
        }
    }

    pub fn rational(value: BigRational) -> Expr {
        Expr::Num {
            value,
            float: false,
        }
    }

    /// Number of nodes in the tree.
    pub fn size(&self) -> usize {
        let mut n = 1;
        self.for_each_child(|c| n += c.size());
        n
    }

    pub fn for_each_child(&self, mut f: impl FnMut(&Expr)) {
        match self {
            Expr::Num { .. } | Expr::Sym(_) | Expr::Const(_) | Expr::Text(_) => {}
            Expr::Add(v)
            | Expr::Mul(v)
            | Expr::Tuple(v)
            | Expr::List(v)
            | Expr::Set(v)
            | Expr::Union(v)
            | Expr::Func(_, v) => v.iter().for_each(f),
            Expr::Neg(a) | Expr::Factorial(a) | Expr::Percent(a) => f(a),
            Expr::Div(a, b) | Expr::Pow(a, b) | Expr::Binom(a, b) => {
                f(a);
                f(b)
            }
            Expr::Root { radicand, index } => {
                f(radicand);
                f(index)
            }
            Expr::PlusMinus(a, b) => {
                if let Some(a) = a {
                    f(a)
                }
                f(b)
            }
            Expr::Interval { lo, hi, .. } => {
                f(lo);
                f(hi)
            }
            Expr::Matrix(rows) => rows.iter().flatten().for_each(f),
            Expr::Rel { terms, .. } => terms.iter().for_each(f),
        }
    }

    /// True when any number in the tree was written as a decimal.
    pub fn has_float(&self) -> bool {
        if let Expr::Num { float, .. } = self {
            return *float;
        }
        let mut any = false;
        self.for_each_child(|c| any |= c.has_float());
        any
    }

    /// Collects free symbol names (sorted, deduplicated).
    pub fn symbols(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.collect_symbols(&mut out);
        out.sort();
        out.dedup();
        out
    }

    fn collect_symbols(&self, out: &mut Vec<String>) {
        match self {
            Expr::Sym(s) => out.push(s.clone()),
            Expr::Func(name, args) => {
                if !is_builtin_func(name) {
                    out.push(format!("{name}()"));
                }
                args.iter().for_each(|a| a.collect_symbols(out));
            }
            _ => self.for_each_child(|c| c.collect_symbols(out)),
        }
    }

    /// True for numbers, constants and arithmetic over them (no symbols, no structures).
    pub fn is_scalar(&self) -> bool {
        match self {
            Expr::Num { .. } | Expr::Sym(_) | Expr::Const(_) => true,
            Expr::Add(_)
            | Expr::Mul(_)
            | Expr::Neg(_)
            | Expr::Div(..)
            | Expr::Pow(..)
            | Expr::Root { .. }
            | Expr::Func(..)
            | Expr::Factorial(_)
            | Expr::Binom(..)
            | Expr::Percent(_) => {
                let mut ok = true;
                self.for_each_child(|c| ok &= c.is_scalar());
                ok
            }
            _ => false,
        }
    }
}

pub(crate) fn is_builtin_func(name: &str) -> bool {
    matches!(
        name,
        "sin"
            | "cos"
            | "tan"
            | "sec"
            | "csc"
            | "cot"
            | "arcsin"
            | "arccos"
            | "arctan"
            | "sinh"
            | "cosh"
            | "tanh"
            | "log"
            | "exp"
            | "abs"
            | "floor"
            | "ceil"
    )
}

fn fmt_rational(v: &BigRational, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    if v.is_integer() {
        write!(f, "{}", v.numer())
    } else {
        write!(f, "{}/{}", v.numer(), v.denom())
    }
}

fn join(f: &mut fmt::Formatter<'_>, items: &[Expr], sep: &str) -> fmt::Result {
    for (i, x) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(sep)?;
        }
        write!(f, "{x}")?;
    }
    Ok(())
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Num { value, float } => {
                if *float && !value.is_integer() {
                    // Show decimals as written where short.
                    let x = crate::num::to_f64(value);
                    if x.is_finite() && value.denom().bits() < 64 {
                        return write!(f, "{x}");
                    }
                }
                if value.is_negative() {
                    f.write_str("(")?;
                    fmt_rational(value, f)?;
                    f.write_str(")")
                } else if value.is_integer() || value.is_zero() {
                    fmt_rational(value, f)
                } else {
                    f.write_str("(")?;
                    fmt_rational(value, f)?;
                    f.write_str(")")
                }
            }
            Expr::Sym(s) => f.write_str(s),
            Expr::Const(c) => f.write_str(match c {
                Const::Pi => "pi",
                Const::E => "e",
                Const::I => "i",
                Const::Inf => "oo",
            }),
            Expr::Add(v) => {
                f.write_str("(")?;
                join(f, v, " + ")?;
                f.write_str(")")
            }
            Expr::Mul(v) => join(f, v, "*"),
            Expr::Neg(a) => write!(f, "-{a}"),
            Expr::Div(a, b) => write!(f, "({a})/({b})"),
            Expr::Pow(a, b) => write!(f, "({a})^({b})"),
            Expr::Root { radicand, index } => match index.as_ref() {
                Expr::Num { value, .. } if *value == BigRational::from_integer(2.into()) => {
                    write!(f, "sqrt({radicand})")
                }
                _ => write!(f, "root({radicand}, {index})"),
            },
            Expr::Func(name, args) => {
                write!(f, "{name}(")?;
                join(f, args, ", ")?;
                f.write_str(")")
            }
            Expr::Factorial(a) => write!(f, "({a})!"),
            Expr::Binom(a, b) => write!(f, "binomial({a}, {b})"),
            Expr::Percent(a) => write!(f, "{a}%"),
            Expr::PlusMinus(a, b) => match a {
                Some(a) => write!(f, "({a} ± {b})"),
                None => write!(f, "±{b}"),
            },
            Expr::Tuple(v) => {
                f.write_str("(")?;
                join(f, v, ", ")?;
                f.write_str(")")
            }
            Expr::List(v) => join(f, v, ", "),
            Expr::Set(v) => {
                f.write_str("{")?;
                join(f, v, ", ")?;
                f.write_str("}")
            }
            Expr::Interval {
                lo,
                hi,
                lo_closed,
                hi_closed,
            } => write!(
                f,
                "{}{lo}, {hi}{}",
                if *lo_closed { "[" } else { "(" },
                if *hi_closed { "]" } else { ")" }
            ),
            Expr::Union(v) => join(f, v, " U "),
            Expr::Matrix(rows) => {
                f.write_str("Matrix[")?;
                for (i, r) in rows.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    join(f, r, ", ")?;
                }
                f.write_str("]")
            }
            Expr::Rel { terms, ops } => {
                for (i, t) in terms.iter().enumerate() {
                    if i > 0 {
                        write!(f, " {} ", ops[i - 1].symbol())?;
                    }
                    write!(f, "{t}")?;
                }
                Ok(())
            }
            Expr::Text(s) => write!(f, "text({s})"),
        }
    }
}
