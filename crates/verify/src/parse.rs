//! Recursive-descent parser from tokens to [`Expr`], with a depth cap.

use crate::expr::{Const, Expr};
use crate::lex::{Tok, lex};
use crate::{ParseError, limits, num};
use num_bigint::BigInt;
use num_rational::BigRational;

/// Parses one answer (LaTeX or plain text) into an expression tree.
pub fn parse(src: &str) -> Result<Expr, ParseError> {
    crate::num::reset_work();
    parse_with(src, true)
}

/// True when `src` is a lone `a,b` that [`parse`] reads with a decimal comma.
pub(crate) fn has_decimal_comma(src: &str) -> bool {
    // Every rewrite of `preprocess` that leaves a comma needs one in the source.
    src.contains(',') && decimal_comma_at(&preprocess(src, false))
}

/// [`parse`], choosing whether a lone `1,5` reads as 1.5 (`decimal_comma`) or as a list.
pub(crate) fn parse_with(src: &str, decimal_comma: bool) -> Result<Expr, ParseError> {
    if src.len() > limits::MAX_ANSWER_BYTES {
        return Err(ParseError::TooLong(src.len()));
    }
    let pre = preprocess(src, decimal_comma);
    let latex = src.contains('\\');
    // Prose is text, not a product of its letters: `the cat` is not `act the`.
    if !latex && is_phrase(&pre) {
        return Ok(Expr::Text(pre.trim().to_string()));
    }
    let toks = lex(&pre)?;
    if toks.is_empty() {
        return Err(ParseError::Empty);
    }
    let mut p = Parser {
        toks,
        pos: 0,
        depth: 0,
        abs_depth: 0,
        latex,
        nodes: 0,
    };
    let e = p.parse_list(&[])?;
    if p.pos < p.toks.len() {
        return Err(ParseError::Unexpected(format!("{:?}", p.toks[p.pos])));
    }
    Ok(e)
}

/// Text-level fixes done before tokenizing: decimal commas in a lone number,
/// LaTeX thin spaces inside thousands groups.
fn preprocess(src: &str, decimal_comma: bool) -> String {
    let mut s = undouble_backslashes(src.trim());
    // `11,\! 111`: a thin space inside a thousands group.
    while let Some(pos) = s.find(",\\!") {
        let rest = s[pos + 3..].trim_start().to_string();
        s = format!("{},{}", &s[..pos], rest);
    }
    for (from, to) in [("\\!", ""), ("{,}", ","), ("{, }", ",")] {
        if s.contains(from) {
            s = s.replace(from, to);
        }
    }
    if decimal_comma && decimal_comma_at(&s) {
        s = s.replacen(',', ".", 1);
    }
    s
}

/// Whether the comma of a preprocessed lone number `a,b` can be a decimal comma: digits on
/// both sides, and not a thousands group (`1,000`). `11, 111` (after `,\!` removal) stays
/// a list.
fn decimal_comma_at(s: &str) -> bool {
    let t = s.trim_start_matches('-');
    match t.split_once(',') {
        Some((a, b)) => {
            !a.is_empty()
                && !b.is_empty()
                && a.bytes().all(|c| c.is_ascii_digit())
                && b.bytes().all(|c| c.is_ascii_digit())
                && !(b.len() == 3 && a.len() <= 3 && !a.starts_with('0'))
        }
        None => false,
    }
}

/// `\\\\frac` written with doubled backslashes (escaped twice upstream) becomes `\\frac`;
/// a real row break `\\\\` is followed by a space, digit or another command.
fn undouble_backslashes(s: &str) -> String {
    if !s.contains("\\\\") {
        return s.to_string();
    }
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '\\' && i + 1 < chars.len() && chars[i + 1] == '\\' {
            if chars.get(i + 2).is_some_and(|c| {
                c.is_ascii_alphabetic() || matches!(c, '{' | '}' | '(' | ')' | '[' | ']')
            }) {
                out.push('\\');
            } else {
                out.push_str("\\\\");
            }
            i += 2;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    depth: usize,
    abs_depth: usize,
    latex: bool,
    nodes: usize,
}

const FUNCS: &[&str] = &[
    "sin", "cos", "tan", "sec", "csc", "cot", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh",
    "log", "ln", "lg", "exp", "abs", "floor", "ceil",
];

const GREEK: &[&str] = &[
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "varepsilon",
    "zeta",
    "eta",
    "theta",
    "vartheta",
    "iota",
    "kappa",
    "lambda",
    "mu",
    "nu",
    "xi",
    "rho",
    "sigma",
    "tau",
    "upsilon",
    "phi",
    "varphi",
    "chi",
    "psi",
    "omega",
    "Gamma",
    "Delta",
    "Theta",
    "Lambda",
    "Xi",
    "Sigma",
    "Phi",
    "Psi",
    "Omega",
];

/// Single letters that read as functions when followed by `(`.
const FUNC_LETTERS: &[&str] = &["f", "g", "h", "F", "G", "H", "P", "Q", "W", "p", "q"];

/// `5 percent`, `15 pct`: a percent sign written out.
fn is_percent_word(w: &str) -> bool {
    matches!(
        w.to_ascii_lowercase().as_str(),
        "pct" | "percent" | "percentage"
    )
}

/// A word the parser reads as math rather than as letters: a function, constant, Greek
/// letter, unit, list separator or percent word (`sin`, `pi`, `sqrt`, `theta`, `cm`, `and`).
fn is_math_word(w: &str) -> bool {
    let lower = w.to_ascii_lowercase();
    FUNCS.contains(&lower.as_str())
        || matches!(
            lower.as_str(),
            "sqrt" | "pi" | "inf" | "infty" | "infinity" | "oo"
        )
        || GREEK.contains(&w)
        || is_unit_word(w)
        || word_is_separator(w)
        || is_percent_word(w)
}

/// True when plain text (no LaTeX) reads as a phrase of words rather than a formula: two
/// words of two or more letters, neither a math word ([`is_math_word`]), stand next to each
/// other with only spaces between them, and each stands free (not glued to a digit, an
/// operator or a bracket: `2ab`, `xy^2`, `f(x)` are formulas). Such text is one text answer,
/// compared as words: juxtaposed letters would otherwise multiply, so `the cat` would equal
/// `act the`, and a list split at `,` or `and` would let clauses trade places. Juxtaposed
/// letters that are not two free words stay products: `2xy`, `3ab^2`, `x y`, `2 pi r`.
fn is_phrase(s: &str) -> bool {
    let chars: Vec<char> = s.chars().collect();
    let free_before =
        |c: Option<&char>| c.is_none_or(|c| c.is_whitespace() || matches!(c, '"' | '\''));
    let free_after = |c: Option<&char>| {
        c.is_none_or(|c| {
            c.is_whitespace() || matches!(c, ',' | '.' | ';' | ':' | '!' | '?' | '"' | '\'')
        })
    };
    // (end of the previous word, whether it counts as a free prose word)
    let mut prev: Option<(usize, bool)> = None;
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_alphabetic() {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && chars[i].is_alphabetic() {
            i += 1;
        }
        let word: String = chars[start..i].iter().collect();
        let counts = i - start >= 2
            && free_before(start.checked_sub(1).and_then(|j| chars.get(j)))
            && free_after(chars.get(i))
            && !is_math_word(&word);
        if counts
            && let Some((end, true)) = prev
            && end < start
            && chars[end..start].iter().all(|c| c.is_whitespace())
        {
            return true;
        }
        prev = Some((i, counts));
    }
    false
}

fn word_is_separator(w: &str) -> bool {
    matches!(
        w.to_ascii_lowercase().as_str(),
        "and" | "or" | "also" | "then"
    )
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn bump(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        if t.is_some() {
            self.pos += 1;
        }
        t
    }

    fn eat(&mut self, t: &Tok) -> bool {
        if self.peek() == Some(t) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        self.nodes += 1;
        if self.depth > limits::MAX_DEPTH {
            return Err(ParseError::TooDeep);
        }
        if self.nodes > limits::MAX_NODES {
            return Err(ParseError::TooLarge);
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    fn at_stop(&self, stops: &[Tok]) -> bool {
        match self.peek() {
            None => true,
            Some(t) => {
                stops.contains(t)
                    || matches!(
                        t,
                        Tok::RParen
                            | Tok::RBrack
                            | Tok::RBrace
                            | Tok::RSet
                            | Tok::End(_)
                            | Tok::Amp
                            | Tok::Newrow
                    )
            }
        }
    }

    fn is_separator(&self) -> bool {
        match self.peek() {
            Some(Tok::Comma | Tok::Semi) => true,
            Some(Tok::Ident(w)) => word_is_separator(w),
            Some(Tok::Text(w)) => {
                let w = w.trim();
                w.is_empty() || word_is_separator(w) || w == ","
            }
            _ => false,
        }
    }

    /// `a, b; c and d` (top level and inside brackets).
    fn parse_list(&mut self, stops: &[Tok]) -> Result<Expr, ParseError> {
        self.enter()?;
        // Items grouped by `;` (`p=5, q=2; p=7, q=2` is two tuples).
        let mut groups: Vec<Vec<Expr>> = vec![Vec::new()];
        let mut saw_semi = false;
        loop {
            while self.is_separator() {
                if self.peek() == Some(&Tok::Semi) {
                    saw_semi = true;
                    if groups.last().is_some_and(|g| !g.is_empty()) {
                        groups.push(Vec::new());
                    }
                }
                self.pos += 1;
            }
            if self.at_stop(stops) {
                break;
            }
            let before = self.pos;
            let item = self.parse_rel(stops)?;
            if let Some(g) = groups.last_mut() {
                g.push(item);
            }
            if self.pos == before {
                return Err(ParseError::Unexpected(format!("{:?}", self.peek())));
            }
            if !self.is_separator() {
                break;
            }
        }
        self.leave();
        groups.retain(|g| !g.is_empty());
        let mut items: Vec<Expr> =
            if saw_semi && groups.len() > 1 && groups.iter().any(|g| g.len() > 1) {
                groups
                    .into_iter()
                    .map(|mut g| {
                        if g.len() == 1 {
                            g.pop().unwrap_or(Expr::Tuple(Vec::new()))
                        } else {
                            Expr::Tuple(g)
                        }
                    })
                    .collect()
            } else {
                groups.into_iter().flatten().collect()
            };
        match items.len() {
            0 => Err(ParseError::Empty),
            1 => Ok(items.pop().unwrap_or(Expr::Text(String::new()))),
            _ => Ok(Expr::List(items)),
        }
    }

    fn parse_rel(&mut self, stops: &[Tok]) -> Result<Expr, ParseError> {
        self.enter()?;
        let first = self.parse_union(stops)?;
        let mut terms = vec![first];
        let mut ops = Vec::new();
        while let Some(Tok::Rel(op)) = self.peek() {
            let op = *op;
            self.pos += 1;
            ops.push(op);
            terms.push(self.parse_union(stops)?);
        }
        self.leave();
        if ops.is_empty() {
            Ok(terms.pop().unwrap_or(Expr::Text(String::new())))
        } else {
            Ok(Expr::Rel { terms, ops })
        }
    }

    fn parse_union(&mut self, stops: &[Tok]) -> Result<Expr, ParseError> {
        self.enter()?;
        let first = self.parse_ratio(stops)?;
        let mut parts = vec![first];
        while matches!(self.peek(), Some(Tok::Cmd(c)) if c == "cup" || c == "bigcup")
            || matches!(self.peek(), Some(Tok::Ident(w)) if w == "U")
        {
            self.pos += 1;
            parts.push(self.parse_ratio(stops)?);
        }
        self.leave();
        if parts.len() == 1 {
            Ok(parts.pop().unwrap_or(Expr::Text(String::new())))
        } else {
            Ok(Expr::Union(parts))
        }
    }

    /// `a : b` reads as the ratio a / b.
    fn parse_ratio(&mut self, stops: &[Tok]) -> Result<Expr, ParseError> {
        self.enter()?;
        let mut e = self.parse_add(stops)?;
        while self.peek() == Some(&Tok::Colon) {
            self.pos += 1;
            if self.at_stop(stops) {
                break;
            }
            let r = self.parse_add(stops)?;
            e = Expr::Div(Box::new(e), Box::new(r));
        }
        self.leave();
        Ok(e)
    }

    fn parse_add(&mut self, stops: &[Tok]) -> Result<Expr, ParseError> {
        self.enter()?;
        let first = self.parse_unary(stops)?;
        let mut terms = vec![first];
        let mut pm: Option<Expr> = None;
        loop {
            match self.peek() {
                Some(Tok::Plus) => {
                    self.pos += 1;
                    if self.at_stop(stops) {
                        break;
                    }
                    terms.push(self.parse_unary(stops)?);
                }
                Some(Tok::Minus) => {
                    self.pos += 1;
                    let t = self.parse_unary(stops)?;
                    terms.push(Expr::Neg(Box::new(t)));
                }
                Some(Tok::PlusMinus) => {
                    self.pos += 1;
                    let t = self.parse_mul(stops)?;
                    let base = if terms.len() == 1 {
                        terms.pop().unwrap_or(Expr::int(0))
                    } else {
                        Expr::Add(std::mem::take(&mut terms))
                    };
                    let base = match pm.take() {
                        Some(p) => Expr::Add(vec![p, base]),
                        None => base,
                    };
                    pm = Some(Expr::PlusMinus(Some(Box::new(base)), Box::new(t)));
                    terms.clear();
                }
                _ => break,
            }
        }
        self.leave();
        let rest = match terms.len() {
            0 => None,
            1 => terms.pop(),
            _ => Some(Expr::Add(terms)),
        };
        Ok(match (pm, rest) {
            (Some(p), None) => p,
            (Some(p), Some(r)) => Expr::Add(vec![p, r]),
            (None, Some(r)) => r,
            (None, None) => return Err(ParseError::Empty),
        })
    }

    fn parse_unary(&mut self, stops: &[Tok]) -> Result<Expr, ParseError> {
        self.enter()?;
        let r = match self.peek() {
            Some(Tok::Minus) => {
                self.pos += 1;
                let e = self.parse_unary(stops)?;
                Ok(match e {
                    Expr::Num { value, float } => Expr::Num {
                        value: -value,
                        float,
                    },
                    e => Expr::Neg(Box::new(e)),
                })
            }
            Some(Tok::Plus) => {
                self.pos += 1;
                self.parse_unary(stops)
            }
            Some(Tok::PlusMinus) => {
                self.pos += 1;
                let e = self.parse_mul(stops)?;
                Ok(Expr::PlusMinus(None, Box::new(e)))
            }
            _ => self.parse_mul(stops),
        };
        self.leave();
        r
    }

    fn starts_primary(&self) -> bool {
        match self.peek() {
            Some(Tok::Num(..) | Tok::LParen | Tok::LSet | Tok::LBrace | Tok::Begin(_)) => true,
            Some(Tok::LBrack) => true,
            Some(Tok::Ident(w)) => !word_is_separator(w) && w != "U",
            Some(Tok::Cmd(c)) => !matches!(c.as_str(), "cup" | "cap" | "bigcup" | "setminus"),
            Some(Tok::Pipe) => self.abs_depth == 0,
            _ => false,
        }
    }

    fn parse_mul(&mut self, stops: &[Tok]) -> Result<Expr, ParseError> {
        self.enter()?;
        let first = self.parse_power(stops)?;
        let mut factors = vec![first];
        loop {
            match self.peek() {
                Some(Tok::Star) => {
                    self.pos += 1;
                    factors.push(self.parse_power_unary(stops)?);
                }
                Some(Tok::Slash) => {
                    self.pos += 1;
                    let d = self.parse_power_unary(stops)?;
                    let n = if factors.len() == 1 {
                        factors.pop().unwrap_or(Expr::int(1))
                    } else {
                        Expr::Mul(std::mem::take(&mut factors))
                    };
                    factors.push(Expr::Div(Box::new(n), Box::new(d)));
                }
                Some(Tok::Text(_)) => {
                    // Units and words after a value (`5 \text{ cm}`, `864 \mbox{ inches}^2`)
                    // are dropped; `\text{and}` separates list items.
                    if self.is_separator() {
                        break;
                    }
                    self.pos += 1;
                    if self.peek() == Some(&Tok::Caret) {
                        self.pos += 1;
                        let _ = self.parse_arg(stops)?;
                    }
                }
                Some(Tok::Ident(w)) if w.len() >= 2 && is_unit_word(w) => {
                    self.pos += 1;
                }
                _ if self.starts_primary() && !self.at_stop(stops) => {
                    let is_frac = matches!(self.peek(), Some(Tok::Cmd(c)) if c.ends_with("frac"));
                    let f = self.parse_power(stops)?;
                    // A mixed number: `2\frac{1}{2}` is 5/2.
                    if is_frac
                        && let [
                            Expr::Num {
                                value: w,
                                float: false,
                            },
                        ] = factors.as_slice()
                        && w.is_integer()
                        && let Expr::Div(a, b) = &f
                        && let (
                            Expr::Num {
                                value: n,
                                float: false,
                            },
                            Expr::Num {
                                value: d,
                                float: false,
                            },
                        ) = (a.as_ref(), b.as_ref())
                        && n.is_integer()
                        && d.is_integer()
                        && n.numer().sign() == num_bigint::Sign::Plus
                        && d.numer().sign() == num_bigint::Sign::Plus
                    {
                        let v = if w.numer().sign() == num_bigint::Sign::Minus {
                            w - n / d
                        } else {
                            w + n / d
                        };
                        factors = vec![Expr::Num {
                            value: v,
                            float: false,
                        }];
                        continue;
                    }
                    factors.push(f);
                }
                _ => break,
            }
        }
        self.leave();
        Ok(if factors.len() == 1 {
            factors.pop().unwrap_or(Expr::int(1))
        } else {
            Expr::Mul(factors)
        })
    }

    fn parse_power_unary(&mut self, stops: &[Tok]) -> Result<Expr, ParseError> {
        if self.peek() == Some(&Tok::Minus) {
            self.pos += 1;
            let e = self.parse_power_unary(stops)?;
            return Ok(Expr::Neg(Box::new(e)));
        }
        self.parse_power(stops)
    }

    fn parse_power(&mut self, stops: &[Tok]) -> Result<Expr, ParseError> {
        self.enter()?;
        let mut base = self.parse_postfix(stops)?;
        if self.peek() == Some(&Tok::Caret) {
            self.pos += 1;
            if self.eat(&Tok::Degree) {
                // `90^\circ`: degrees are dropped.
            } else if self.peek() == Some(&Tok::LBrace)
                && self.toks.get(self.pos + 1) == Some(&Tok::Degree)
                && self.toks.get(self.pos + 2) == Some(&Tok::RBrace)
            {
                self.pos += 3;
            } else {
                let exp = self.parse_exponent(stops)?;
                base = Expr::Pow(Box::new(base), Box::new(exp));
                base = self.postfix_ops(base)?;
            }
        }
        self.leave();
        Ok(base)
    }

    /// The exponent after `^`. A braced group `^{…}` is complete: a `!` or `%` after it
    /// applies to the power (`2^{3}!` is `(2^3)!`), and so does one after a one-character
    /// LaTeX exponent (`2^3!` in text with LaTeX commands is `(2^3)!`, as it renders: 2³!).
    /// In plain text with no LaTeX, `2^3!` keeps the usual precedence of calculators and
    /// CAS, postfix before power: `2^(3!)`.
    fn parse_exponent(&mut self, stops: &[Tok]) -> Result<Expr, ParseError> {
        match self.peek() {
            Some(Tok::Minus) => {
                self.pos += 1;
                let e = self.parse_exponent(stops)?;
                Ok(Expr::Neg(Box::new(e)))
            }
            Some(Tok::Num(s, 0)) if self.latex && s.len() > 1 && !s.contains('.') => {
                Ok(self.split_num_arg())
            }
            Some(Tok::LBrace) => self.group_exponent(stops),
            Some(Tok::Num(s, 0)) if self.latex && s.len() == 1 => self.group_exponent(stops),
            _ => self.parse_power(stops),
        }
    }

    /// A complete exponent (a braced group or one LaTeX token): no postfix operators
    /// inside it; a further `^` still nests to the right (`2^{3}^{2}` is `2^(3^2)`).
    fn group_exponent(&mut self, stops: &[Tok]) -> Result<Expr, ParseError> {
        self.enter()?;
        let g = self.parse_primary(stops)?;
        let r = if self.peek() == Some(&Tok::Caret) {
            self.pos += 1;
            let exp = self.parse_exponent(stops)?;
            Expr::Pow(Box::new(g), Box::new(exp))
        } else {
            g
        };
        self.leave();
        Ok(r)
    }

    /// Takes the first digit of a multi-digit number token as a one-character LaTeX argument.
    fn split_num_arg(&mut self) -> Expr {
        if let Some(Tok::Num(s, 0)) = self.toks.get(self.pos).cloned() {
            let mut chars = s.chars();
            let first = chars.next().unwrap_or('0');
            let rest: String = chars.collect();
            if rest.is_empty() {
                self.pos += 1;
            } else {
                self.toks[self.pos] = Tok::Num(rest, 0);
            }
            return Expr::int(first.to_digit(10).unwrap_or(0) as i64);
        }
        Expr::int(0)
    }

    /// A one-token LaTeX argument (`\frac12`, `\sqrt3`, `\frac{a}{b}`).
    fn parse_arg(&mut self, stops: &[Tok]) -> Result<Expr, ParseError> {
        match self.peek() {
            Some(Tok::Num(s, 0)) if s.len() > 1 && !s.contains('.') => Ok(self.split_num_arg()),
            Some(Tok::Ident(w)) if w.chars().count() > 1 => {
                let (first, rest) = split_first(w);
                self.toks[self.pos] = Tok::Ident(rest);
                Ok(Expr::Sym(first))
            }
            Some(Tok::LBrace) => self.parse_postfix(stops),
            _ => self.parse_postfix(stops),
        }
    }

    fn parse_postfix(&mut self, stops: &[Tok]) -> Result<Expr, ParseError> {
        let e = self.parse_primary(stops)?;
        self.postfix_ops(e)
    }

    fn postfix_ops(&mut self, mut e: Expr) -> Result<Expr, ParseError> {
        loop {
            match self.peek() {
                Some(Tok::Bang) => {
                    self.pos += 1;
                    e = Expr::Factorial(Box::new(e));
                }
                Some(Tok::Percent) => {
                    self.pos += 1;
                    e = Expr::Percent(Box::new(e));
                }
                Some(Tok::Ident(w)) if is_percent_word(w) => {
                    self.pos += 1;
                    e = Expr::Percent(Box::new(e));
                }
                Some(Tok::Degree) => {
                    self.pos += 1;
                }
                _ => return Ok(e),
            }
        }
    }

    fn expect(&mut self, t: &Tok) -> Result<(), ParseError> {
        if self.eat(t) {
            Ok(())
        } else {
            Err(ParseError::Expected(format!("{t:?}")))
        }
    }

    fn subscript(&mut self) -> Result<Option<String>, ParseError> {
        if self.peek() != Some(&Tok::Under) {
            return Ok(None);
        }
        self.pos += 1;
        let s = match self.bump() {
            Some(Tok::LBrace) => {
                let start = self.pos;
                let mut depth = 1usize;
                while let Some(t) = self.bump() {
                    match t {
                        Tok::LBrace => depth += 1,
                        Tok::RBrace => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                let end = self.pos.saturating_sub(1).max(start);
                self.toks[start..end]
                    .iter()
                    .map(tok_text)
                    .collect::<String>()
            }
            Some(Tok::Num(s, _)) => {
                // `a_12` in LaTeX is a_1 followed by 2.
                if self.latex && s.len() > 1 {
                    self.pos -= 1;
                    let e = self.split_num_arg();
                    e.to_string()
                } else {
                    s
                }
            }
            Some(Tok::Ident(w)) => {
                if w.chars().count() > 1 {
                    self.pos -= 1;
                    let (first, rest) = split_first(&w);
                    self.toks[self.pos] = Tok::Ident(rest);
                    first
                } else {
                    w
                }
            }
            Some(t) => tok_text(&t),
            None => String::new(),
        };
        Ok(Some(s))
    }

    fn parse_primary(&mut self, stops: &[Tok]) -> Result<Expr, ParseError> {
        self.enter()?;
        let r = self.parse_primary_inner(stops);
        self.leave();
        r
    }

    fn parse_primary_inner(&mut self, stops: &[Tok]) -> Result<Expr, ParseError> {
        let Some(tok) = self.bump() else {
            return Err(ParseError::Empty);
        };
        match tok {
            Tok::Num(s, sci) => {
                let mut value = num::parse_decimal(&s).ok_or(ParseError::TooLarge)?;
                let float = s.contains('.') || sci != 0;
                if sci != 0 {
                    let p = num::pow_int(
                        &BigRational::from_integer(BigInt::from(10)),
                        &BigInt::from(sci),
                    )
                    .ok_or(ParseError::TooLarge)?;
                    value *= p;
                }
                // `204_5`: a number in another base, kept as a name.
                if let Some(sub) = self.subscript()? {
                    return Ok(Expr::Sym(format!("{s}_{sub}")));
                }
                Ok(Expr::Num { value, float })
            }
            Tok::Ident(w) => self.ident(w, stops),
            Tok::Cmd(c) => self.command(c, stops),
            Tok::Text(t) => {
                let t = t.trim();
                let inner = t.trim_start_matches('(').trim_end_matches(')').trim();
                Ok(Expr::Text(inner.to_string()))
            }
            Tok::LParen => self.bracketed(false, stops),
            Tok::LBrack => self.bracketed(true, stops),
            Tok::LSet => {
                let items = if self.peek() == Some(&Tok::RSet) {
                    Vec::new()
                } else {
                    match self.parse_list(&[])? {
                        Expr::List(v) => v,
                        e => vec![e],
                    }
                };
                self.expect(&Tok::RSet)?;
                Ok(Expr::Set(items))
            }
            Tok::LBrace => {
                if self.eat(&Tok::RBrace) {
                    return Ok(Expr::Text(String::new()));
                }
                let e = self.parse_list(&[])?;
                // An unclosed group at the very end (truncated text) is accepted.
                if self.peek().is_some() {
                    self.expect(&Tok::RBrace)?;
                }
                Ok(e)
            }
            Tok::Pipe => {
                self.abs_depth += 1;
                let inner = self.parse_add(&[Tok::Pipe]);
                self.abs_depth -= 1;
                let inner = inner?;
                self.expect(&Tok::Pipe)?;
                Ok(Expr::Func("abs".into(), vec![inner]))
            }
            Tok::Begin(env) => self.environment(env),
            Tok::Degree => Ok(Expr::Text(String::new())),
            t => Err(ParseError::Unexpected(format!("{t:?}"))),
        }
    }

    fn environment(&mut self, env: String) -> Result<Expr, ParseError> {
        let matrix = matches!(
            env.as_str(),
            "pmatrix"
                | "bmatrix"
                | "Bmatrix"
                | "vmatrix"
                | "Vmatrix"
                | "matrix"
                | "smallmatrix"
                | "array"
        );
        let mut rows: Vec<Vec<Expr>> = Vec::new();
        let mut row: Vec<Expr> = Vec::new();
        loop {
            match self.peek() {
                None => return Err(ParseError::Expected(format!("\\end{{{env}}}"))),
                Some(Tok::End(_)) => {
                    self.pos += 1;
                    break;
                }
                Some(Tok::Amp) => {
                    self.pos += 1;
                }
                Some(Tok::Newrow) => {
                    self.pos += 1;
                    if !row.is_empty() {
                        rows.push(std::mem::take(&mut row));
                    }
                }
                _ => {
                    let before = self.pos;
                    row.push(self.parse_list(&[])?);
                    if self.pos == before {
                        return Err(ParseError::Unexpected(format!("{:?}", self.peek())));
                    }
                }
            }
        }
        if !row.is_empty() {
            rows.push(row);
        }
        if matrix {
            if rows.is_empty() {
                return Err(ParseError::Empty);
            }
            return Ok(Expr::Matrix(rows));
        }
        // align-like environments: the cells of the last row, concatenated as a relation chain.
        let last = rows.pop().ok_or(ParseError::Empty)?;
        let mut terms = Vec::new();
        let mut ops = Vec::new();
        for cell in last {
            match cell {
                Expr::Rel { terms: t, ops: o } => {
                    if terms.is_empty() {
                        terms = t;
                        ops = o;
                    } else {
                        // `&= x` continues the chain: the first term is missing.
                        ops.extend(o);
                        terms.extend(t);
                    }
                }
                e => terms.push(e),
            }
        }
        if ops.is_empty() {
            terms.pop().ok_or(ParseError::Empty)
        } else if terms.len() == ops.len() + 1 {
            Ok(Expr::Rel { terms, ops })
        } else {
            terms.pop().ok_or(ParseError::Empty)
        }
    }

    /// `(…)`, `[…]` and mixed `[a, b)`: group, tuple or interval.
    fn bracketed(&mut self, open_closed: bool, _stops: &[Tok]) -> Result<Expr, ParseError> {
        let saved_abs = self.abs_depth;
        self.abs_depth = 0;
        let inner = if matches!(self.peek(), Some(Tok::RParen | Tok::RBrack)) {
            Ok(Expr::Tuple(Vec::new()))
        } else {
            self.parse_list(&[])
        };
        self.abs_depth = saved_abs;
        let inner = inner?;
        let close_closed = match self.bump() {
            Some(Tok::RParen) => false,
            Some(Tok::RBrack) => true,
            other => {
                return Err(ParseError::Expected(format!(
                    "closing bracket, found {other:?}"
                )));
            }
        };
        match inner {
            Expr::List(items) if items.len() == 2 && (open_closed || close_closed) => {
                let mut it = items.into_iter();
                let lo = it.next().unwrap_or(Expr::int(0));
                let hi = it.next().unwrap_or(Expr::int(0));
                Ok(Expr::Interval {
                    lo: Box::new(lo),
                    hi: Box::new(hi),
                    lo_closed: open_closed,
                    hi_closed: close_closed,
                })
            }
            Expr::List(items) => Ok(Expr::Tuple(items)),
            e => Ok(e),
        }
    }

    fn ident(&mut self, w: String, stops: &[Tok]) -> Result<Expr, ParseError> {
        let lower = w.to_ascii_lowercase();
        if w.chars().count() > 1 {
            if FUNCS.contains(&lower.as_str()) {
                return self.function(lower, stops);
            }
            match lower.as_str() {
                "sqrt" => return self.sqrt(stops),
                "pi" => return Ok(Expr::Const(Const::Pi)),
                "inf" | "infty" | "infinity" | "oo" => return Ok(Expr::Const(Const::Inf)),
                _ => {}
            }
            if GREEK.contains(&w.as_str()) {
                return Ok(Expr::Sym(w));
            }
            // Plain words: letters multiplied (`xy`), single letters kept apart.
            let (first, rest) = split_first(&w);
            self.pos -= 1;
            self.toks[self.pos] = Tok::Ident(rest);
            return self.letter(first, stops);
        }
        self.letter(w, stops)
    }

    fn letter(&mut self, w: String, stops: &[Tok]) -> Result<Expr, ParseError> {
        // Consume the split remainder when we just re-inserted it.
        if let Some(Tok::Ident(rest)) = self.peek()
            && self.toks.get(self.pos).is_some()
            && rest.is_empty()
        {
            self.pos += 1;
        }
        let name = match self.subscript()? {
            Some(sub) => format!("{w}_{sub}"),
            None => w.clone(),
        };
        if name == w {
            match w.as_str() {
                "e" => return Ok(Expr::Const(Const::E)),
                "i" => return Ok(Expr::Const(Const::I)),
                _ => {}
            }
        }
        if FUNC_LETTERS.contains(&w.as_str()) && self.peek() == Some(&Tok::LParen) {
            // Only a function call when the argument list is simple: `f(x)`, `f(2, 3)`.
            let save = self.pos;
            self.pos += 1;
            if let Ok(arg) = self.parse_list(&[])
                && self.eat(&Tok::RParen)
            {
                let args = match arg {
                    Expr::List(v) => v,
                    e => vec![e],
                };
                return Ok(Expr::Func(name, args));
            }
            self.pos = save;
        }
        let _ = stops;
        Ok(Expr::Sym(name))
    }

    fn function(&mut self, name: String, stops: &[Tok]) -> Result<Expr, ParseError> {
        let name = match name.as_str() {
            "ln" => "log".to_string(),
            _ => name,
        };
        let mut base: Option<Expr> = None;
        if name == "log" && self.peek() == Some(&Tok::Under) {
            self.pos += 1;
            base = Some(self.parse_arg(stops)?);
        }
        if name == "lg" {
            base = Some(Expr::int(10));
        }
        let name = if name == "lg" {
            "log".to_string()
        } else {
            name
        };
        // `\sin^2 x`
        let mut power: Option<Expr> = None;
        if self.peek() == Some(&Tok::Caret) {
            self.pos += 1;
            power = Some(self.parse_exponent(stops)?);
        }
        let arg = match self.peek() {
            Some(Tok::LParen) => {
                self.pos += 1;
                let a = self.parse_list(&[])?;
                self.expect(&Tok::RParen)?;
                a
            }
            _ => self.parse_power(stops)?,
        };
        let mut e = match base {
            Some(b) => Expr::Div(
                Box::new(Expr::Func("log".into(), vec![arg])),
                Box::new(Expr::Func("log".into(), vec![b])),
            ),
            None => Expr::Func(name, vec![arg]),
        };
        if let Some(p) = power {
            e = Expr::Pow(Box::new(e), Box::new(p));
        }
        Ok(e)
    }

    fn sqrt(&mut self, stops: &[Tok]) -> Result<Expr, ParseError> {
        let mut index = Expr::int(2);
        if self.peek() == Some(&Tok::LBrack) {
            self.pos += 1;
            index = self.parse_list(&[])?;
            self.expect(&Tok::RBrack)?;
        }
        let radicand = match self.peek() {
            Some(Tok::LParen) => {
                self.pos += 1;
                let a = self.parse_list(&[])?;
                self.expect(&Tok::RParen)?;
                a
            }
            _ => self.parse_arg(stops)?,
        };
        Ok(Expr::Root {
            radicand: Box::new(radicand),
            index: Box::new(index),
        })
    }

    fn command(&mut self, c: String, stops: &[Tok]) -> Result<Expr, ParseError> {
        match c.as_str() {
            "frac" | "dfrac" | "tfrac" | "cfrac" => {
                let a = self.parse_arg(stops)?;
                let b = self.parse_arg(stops)?;
                Ok(Expr::Div(Box::new(a), Box::new(b)))
            }
            "binom" | "dbinom" | "tbinom" | "choose" => {
                let a = self.parse_arg(stops)?;
                let b = self.parse_arg(stops)?;
                Ok(Expr::Binom(Box::new(a), Box::new(b)))
            }
            "sqrt" => self.sqrt(stops),
            "pi" => Ok(Expr::Const(Const::Pi)),
            "infty" | "infin" => Ok(Expr::Const(Const::Inf)),
            "emptyset" | "varnothing" => Ok(Expr::Set(Vec::new())),
            "exp" => {
                let e = self.function("exp".into(), stops)?;
                Ok(e)
            }
            c2 if FUNCS.contains(&c2) => self.function(c2.to_string(), stops),
            "arcsinh" | "arccosh" | "arctanh" | "csch" | "sech" | "coth" => {
                self.function(c.clone(), stops)
            }
            "mathrm" | "mathbf" => self.parse_primary(stops),
            "cap" | "cup" | "setminus" => Err(ParseError::Unexpected(c)),
            _ => {
                // Greek letters and any other command name: a symbol.
                let name = match self.subscript()? {
                    Some(sub) => format!("{c}_{sub}"),
                    None => c,
                };
                Ok(Expr::Sym(name))
            }
        }
    }
}

pub(crate) fn is_unit_word(w: &str) -> bool {
    matches!(
        w.to_ascii_lowercase().as_str(),
        "cm" | "mm"
            | "km"
            | "kg"
            | "mg"
            | "ml"
            | "meters"
            | "meter"
            | "miles"
            | "mile"
            | "inches"
            | "inch"
            | "feet"
            | "ft"
            | "units"
            | "unit"
            | "dollars"
            | "dollar"
            | "cents"
            | "cent"
            | "degrees"
            | "degree"
            | "hours"
            | "hour"
            | "minutes"
            | "minute"
            | "seconds"
            | "days"
            | "day"
            | "years"
            | "year"
            | "yuan"
            | "sq"
            | "square"
            | "cubic"
    )
}

fn tok_text(t: &Tok) -> String {
    match t {
        Tok::Num(s, _) => s.clone(),
        Tok::Ident(s) | Tok::Cmd(s) | Tok::Text(s) => s.clone(),
        Tok::Plus => "+".into(),
        Tok::Minus => "-".into(),
        Tok::Comma => ",".into(),
        _ => String::new(),
    }
}

fn split_first(w: &str) -> (String, String) {
    let mut it = w.chars();
    let first = it.next().map(String::from).unwrap_or_default();
    (first, it.collect())
}

#[cfg(test)]
mod prose_tests {
    use super::*;
    use crate::{Options, Verdict, verify};

    fn v(g: &str, p: &str) -> Verdict {
        verify(g, p, &Options::default())
    }

    #[test]
    fn phrases_are_text_and_formulas_are_not() {
        for s in [
            "the cat",
            "Ann is a knight, Bo is a knave",
            "no solution",
            "ab cd",
        ] {
            assert!(is_phrase(s), "{s}");
            assert!(matches!(parse(s), Ok(Expr::Text(_))), "{s}");
        }
        for s in [
            "2xy",
            "xy",
            "3ab^2",
            "x y",
            "2 pi r",
            "sin x cos x",
            "x = 2 and y = 3",
            "10 square units",
            "5 percent",
            "2ab cd",
            "xy^2 zw",
            "f(x) gh",
            "Evelyn",
        ] {
            assert!(!is_phrase(s), "{s}");
        }
    }

    #[test]
    fn word_order_and_letter_order_of_prose_matter() {
        assert_eq!(v("the cat", "act the"), Verdict::NotEqual);
        assert_eq!(v("the cat", "the act"), Verdict::NotEqual);
        assert_eq!(v("the cat", "cat the"), Verdict::NotEqual);
        assert_eq!(
            v(
                "Ann is a knight, Bo is a knave",
                "Bo is a knave and Ann is a knight"
            ),
            Verdict::NotEqual
        );
        assert_eq!(
            v(
                "Ann is a knight, Bo is a knave",
                "Ann is a knave, Bo is a knight"
            ),
            Verdict::NotEqual
        );
        assert_eq!(v("\\text{no solution}", "solution no"), Verdict::NotEqual);
        // Extracted from math delimiters and boxes, the phrase is still text.
        assert_eq!(v("the cat", "$act the$"), Verdict::NotEqual);
        assert_eq!(v("the cat", "\\boxed{act the}"), Verdict::NotEqual);
        assert_eq!(v("the cat", "\\boxed{the cat}"), Verdict::Equal);
    }

    #[test]
    fn the_same_phrase_is_equal_up_to_case_spaces_and_final_period() {
        assert_eq!(v("the cat", "The  cat."), Verdict::Equal);
        assert_eq!(
            v(
                "Ann is a knight, Bo is a knave",
                "ann is a knight,  Bo is a knave"
            ),
            Verdict::Equal
        );
        assert_eq!(v("\\text{No solution}", "no solution"), Verdict::Equal);
        assert_eq!(v("\\text{Evelyn}", "Evelyn"), Verdict::Equal);
    }

    #[test]
    fn implicit_products_still_multiply() {
        for (a, b) in [
            ("2xy", "2*x*y"),
            ("xy", "yx"),
            ("3ab^2", "3*a*b^2"),
            ("2\\pi r", "2*pi*r"),
            ("2 pi r", "2\\pi r"),
            ("$x y$", "xy"),
            ("\\frac{a}{b}", "a/b"),
            ("(a, b)", "(a,b)"),
            ("[0, 1)", "[0,1)"),
            ("x = 2 and y = 3", "x=2, y=3"),
            ("5 cm", "5"),
        ] {
            assert_eq!(v(a, b), Verdict::Equal, "{a} vs {b}");
        }
        assert_eq!(v("(a, b)", "(b, a)"), Verdict::NotEqual);
    }
}
