//! Complex floating-point evaluation at chosen points (the numeric fallback).

use crate::expr::{Const, Expr};
use crate::num;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct C {
    pub re: f64,
    pub im: f64,
}

impl C {
    pub fn new(re: f64, im: f64) -> C {
        C { re, im }
    }
    pub fn real(re: f64) -> C {
        C { re, im: 0.0 }
    }
    pub fn abs(self) -> f64 {
        self.re.hypot(self.im)
    }
    pub fn is_finite(self) -> bool {
        self.re.is_finite() && self.im.is_finite()
    }
    fn add(self, o: C) -> C {
        C::new(self.re + o.re, self.im + o.im)
    }
    fn sub(self, o: C) -> C {
        C::new(self.re - o.re, self.im - o.im)
    }
    fn mul(self, o: C) -> C {
        C::new(
            self.re * o.re - self.im * o.im,
            self.re * o.im + self.im * o.re,
        )
    }
    fn div(self, o: C) -> C {
        let d = o.re * o.re + o.im * o.im;
        C::new(
            (self.re * o.re + self.im * o.im) / d,
            (self.im * o.re - self.re * o.im) / d,
        )
    }
    fn exp(self) -> C {
        let m = self.re.exp();
        C::new(m * self.im.cos(), m * self.im.sin())
    }
    fn ln(self) -> C {
        C::new(self.abs().ln(), self.im.atan2(self.re))
    }
    fn powc(self, e: C) -> C {
        if self.re == 0.0 && self.im == 0.0 {
            return if e.re > 0.0 {
                C::real(0.0)
            } else {
                C::real(f64::NAN)
            };
        }
        // Real base and integer exponent: exact-ish powi keeps negatives real.
        if self.im == 0.0 && e.im == 0.0 && e.re.fract() == 0.0 && e.re.abs() < 1e6 {
            return C::real(self.re.powi(e.re as i32));
        }
        e.mul(self.ln()).exp()
    }
    fn sin(self) -> C {
        C::new(
            self.re.sin() * self.im.cosh(),
            self.re.cos() * self.im.sinh(),
        )
    }
    fn cos(self) -> C {
        C::new(
            self.re.cos() * self.im.cosh(),
            -self.re.sin() * self.im.sinh(),
        )
    }
}

/// Values given to free symbols: a deterministic pseudo-random point per name and seed.
pub(crate) fn symbol_value(name: &str, seed: u64) -> C {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for b in name.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    let u = (h >> 11) as f64 / (1u64 << 53) as f64;
    // Points in (0.35, 1.85): positive, away from 0 and 1 (log, sqrt stay tame).
    C::real(0.35 + 1.5 * u)
}

/// Evaluates `e`; symbols get [`symbol_value`] under `seed`, renamed through `rename`.
pub(crate) fn eval(e: &Expr, seed: u64, rename: &dyn Fn(&str) -> String) -> Option<C> {
    eval_d(e, seed, rename, 0)
}

fn eval_d(e: &Expr, seed: u64, rn: &dyn Fn(&str) -> String, depth: usize) -> Option<C> {
    if depth > crate::limits::MAX_DEPTH {
        return None;
    }
    let d = depth + 1;
    let r = match e {
        Expr::Num { value, .. } => C::real(num::to_f64(value)),
        Expr::Sym(s) => symbol_value(&rn(s), seed),
        Expr::Const(c) => match c {
            Const::Pi => C::real(std::f64::consts::PI),
            Const::E => C::real(std::f64::consts::E),
            Const::I => C::new(0.0, 1.0),
            Const::Inf => return None,
        },
        Expr::Add(v) => {
            let mut acc = C::real(0.0);
            for x in v {
                acc = acc.add(eval_d(x, seed, rn, d)?);
            }
            acc
        }
        Expr::Mul(v) => {
            let mut acc = C::real(1.0);
            for x in v {
                acc = acc.mul(eval_d(x, seed, rn, d)?);
            }
            acc
        }
        Expr::Neg(a) => C::real(0.0).sub(eval_d(a, seed, rn, d)?),
        Expr::Div(a, b) => {
            let den = eval_d(b, seed, rn, d)?;
            if den.abs() == 0.0 {
                return None;
            }
            eval_d(a, seed, rn, d)?.div(den)
        }
        Expr::Pow(a, b) => {
            let base = eval_d(a, seed, rn, d)?;
            let ex = eval_d(b, seed, rn, d)?;
            if ex.abs() > 1e4 && base.abs() != 1.0 {
                return None;
            }
            base.powc(ex)
        }
        Expr::Root { radicand, index } => {
            let k = eval_d(index, seed, rn, d)?;
            let x = eval_d(radicand, seed, rn, d)?;
            if k.im == 0.0 && x.im == 0.0 && x.re < 0.0 && k.re.fract() == 0.0 && k.re % 2.0 == 1.0
            {
                // Odd roots of negative reals stay real.
                C::real(-(-x.re).powf(1.0 / k.re))
            } else {
                x.powc(C::real(1.0).div(k))
            }
        }
        Expr::Func(name, args) => {
            let a = eval_d(args.first()?, seed, rn, d)?;
            match name.as_str() {
                "sin" => a.sin(),
                "cos" => a.cos(),
                "tan" => a.sin().div(a.cos()),
                "sec" => C::real(1.0).div(a.cos()),
                "csc" => C::real(1.0).div(a.sin()),
                "cot" => a.cos().div(a.sin()),
                "log" => a.ln(),
                "exp" => a.exp(),
                "abs" => C::real(a.abs()),
                "floor" if a.im == 0.0 => C::real(a.re.floor()),
                "ceil" if a.im == 0.0 => C::real(a.re.ceil()),
                "arcsin" if a.im == 0.0 => C::real(a.re.asin()),
                "arccos" if a.im == 0.0 => C::real(a.re.acos()),
                "arctan" if a.im == 0.0 => C::real(a.re.atan()),
                "sinh" if a.im == 0.0 => C::real(a.re.sinh()),
                "cosh" if a.im == 0.0 => C::real(a.re.cosh()),
                "tanh" if a.im == 0.0 => C::real(a.re.tanh()),
                _ => {
                    // An unknown function: a fixed smooth function of its name and arguments.
                    let k = symbol_value(&rn(&format!("{name}()")), seed);
                    let mut acc = k;
                    for (i, x) in args.iter().enumerate() {
                        let v = eval_d(x, seed, rn, d)?;
                        acc = acc.add(v.mul(C::real(1.0 + i as f64 * 0.37)).mul(k).sin());
                    }
                    acc
                }
            }
        }
        Expr::Factorial(a) => {
            let x = eval_d(a, seed, rn, d)?;
            if x.im != 0.0 || x.re < 0.0 || x.re.fract() != 0.0 || x.re > 170.0 {
                return None;
            }
            C::real((1..=x.re as u64).map(|v| v as f64).product())
        }
        Expr::Binom(a, b) => {
            let n = eval_d(a, seed, rn, d)?;
            let k = eval_d(b, seed, rn, d)?;
            if n.im != 0.0 || k.im != 0.0 || k.re.fract() != 0.0 || !(0.0..=1000.0).contains(&k.re)
            {
                return None;
            }
            let mut acc = 1.0;
            for i in 0..k.re as u64 {
                acc = acc * (n.re - i as f64) / (i as f64 + 1.0);
            }
            C::real(acc)
        }
        Expr::Percent(a) => eval_d(a, seed, rn, d)?.div(C::real(100.0)),
        _ => return None,
    };
    r.is_finite().then_some(r)
}
