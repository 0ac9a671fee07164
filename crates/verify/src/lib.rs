//! Math answer equivalence: fast, exact where possible, bounded by construction.
//!
//! Answers in LaTeX or plain text are parsed into an [`Expr`] tree and compared:
//! exact rational arithmetic first, then exact arithmetic with radicals
//! (`√12 = 2√3`, `2/(1+√3) = √3-1`), then symbolic normalization of polynomials
//! and rational functions, then numeric evaluation at random points. Structures
//! (tuples, sets, intervals, matrices, equations, inequalities) are compared
//! element by element; inequalities in one variable (`|2x+1| ≥ 5`) are solved
//! exactly into unions of intervals and compared as sets. Every call is bounded
//! by caps on input size, integer size, exponents, expression size and recursion
//! depth (see [`limits`]): no signals, no threads, no timeouts needed, and
//! adversarial input returns a verdict quickly.
//!
//! # What is judged: one answer, read whole
//!
//! A verifier that rewards must not be gamed (issue #14): an answer whose value differs
//! from the gold is never `Equal`, however it is wrapped, nested or padded. The rule:
//!
//! - **A prediction is judged on one answer.** Its candidates ([`extract::candidates`]:
//!   the box, the answer phrase, the last math environment, the whole formula) are tried
//!   in order and the first that parses is the answer; its two readings of a lone `1,5`
//!   are the only alternatives. Text after a box (`\boxed{6} The answer is 5`, `\boxed{6}+5`)
//!   does not buy a second try. (A gold answer, trusted, matches when any of its
//!   candidates does.)
//! - **An answer not read to its end is `Undecided`.** A candidate stopped by a cap
//!   (nesting depth, size, length: [`ParseError::is_cap`]) ends the search: no later
//!   candidate, and no number taken out of it, is judged in its place. `((…(3)…))+0*(5)`
//!   nested past the depth cap, a 300×300 matrix, a continued fraction too deep to parse
//!   are `Undecided` against anything. A candidate with a syntax error passes to the next
//!   candidate, which always covers at least as much of the text.
//! - **The last number is for prose only.** It is taken ([`extract::prose_number`]) only
//!   from text that reads as sentences, never from a formula, a box or a parsed answer
//!   (`so the total is 5 apples` is 5; a formula is parsed whole or not at all). In prose,
//!   a number after the last math environment is the last statement and wins over it.
//! - **A negated answer is no answer.** A candidate whose clause denies it (`not 72`,
//!   `isn't 72`, `anything but 72`, `≠ 72`, `72 is wrong`) is dropped, and nothing is
//!   taken in its place; the rest of the text is read as it is (`not 72` is the product
//!   n·o·t·72, equal to no number).
//! - **Juxtaposition is arithmetic, not a list.** `5 6` is 30 and `5, 6` or `5 or 6` is a
//!   list; neither equals 5 (a list equals a list).
//! - **Prose is text, not letters.** Plain text (no LaTeX) in which two free words of two
//!   or more letters, neither a math word (`sin`, `pi`, `theta`, `cm`, `and`), stand side
//!   by side is one text answer, compared word by word with case folded: `the cat` is not
//!   `act the`, and `Ann is a knight, Bo is a knave` is not its clauses swapped (tasks
//!   with their own checker judge rephrasings). Formulas still multiply: `2xy`, `3ab^2`,
//!   `x y`, `2 pi r`.
//! - `2^{3}!` is `(2^3)!`: a braced exponent is complete, as is a one-character exponent
//!   in LaTeX (`2^3!` with LaTeX commands around it, as it renders, 2³!). In plain text
//!   without LaTeX `2^3!` keeps the calculator precedence, `2^(3!)`.
//!
//! Undecided is never correct: [`answer_correct`] and the reward server score it 0.
//!
//! ```
//! use stepwise_verify::{verify, exact_value, Options, Verdict};
//! assert_eq!(verify("\\frac12", "0.5", &Options::default()), Verdict::Equal);
//! assert_eq!(exact_value("12 + 7").map(|v| v.to_string()), Some("19".to_string()));
//! ```

pub mod arith;
pub mod claims;
mod equiv;
mod exact;
pub mod expr;
pub mod extract;
pub mod groups;
mod ineq;
mod lex;
pub mod limits;
mod num;
mod numeric;
mod parse;
mod poly;
pub mod strings;
mod surd;

pub use arith::{ArithChecker, CheckedClaim, ClaimCheck};
pub use expr::{Const, Expr, RelOp};
pub use extract::{Source, Targets};
pub use groups::{AnswerGroup, best_group, group_answers};
pub use parse::parse;

use rayon::prelude::*;
use stepwise_core::{AnswerExtractor, ExtractRule};

use num_rational::BigRational;
use serde::{Deserialize, Serialize};

/// Why an answer could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("empty answer")]
    Empty,
    #[error("answer too long ({0} bytes)")]
    TooLong(usize),
    #[error("answer too large to parse within the caps")]
    TooLarge,
    #[error("answer nested too deeply")]
    TooDeep,
    #[error("unexpected {0}")]
    Unexpected(String),
    #[error("expected {0}")]
    Expected(String),
}

/// The outcome of comparing a predicted answer to a gold answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Equal,
    NotEqual,
    /// The verifier could not decide within its bounds (treat as not equal for rewards).
    Undecided,
}

impl Verdict {
    pub fn is_equal(self) -> bool {
        self == Verdict::Equal
    }
}

/// Options that mirror math-verify's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Options {
    pub float_rounding: u32,
    pub strict: bool,
    pub allow_set_relation_comp: bool,
    /// Significant digits that numeric evaluation must agree to when an answer is not
    /// a rounded float (math-verify's `numeric_precision`, default 15). Evaluation is in
    /// f64, so three digits are kept as guard digits: the relative tolerance is
    /// `10^-(clamp(numeric_precision, 4, 12) - 3)` (1e-9 at the default).
    #[serde(default = "default_numeric_precision")]
    pub numeric_precision: u32,
}

fn default_numeric_precision() -> u32 {
    15
}

impl Options {
    /// The relative tolerance of a numeric comparison (see [`Options::numeric_precision`]).
    pub fn numeric_tolerance(&self) -> f64 {
        10f64.powi(-(self.numeric_precision.clamp(4, 12) as i32 - 3))
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            float_rounding: 6,
            strict: true,
            allow_set_relation_comp: false,
            numeric_precision: default_numeric_precision(),
        }
    }
}

/// Compares a predicted answer with a gold answer.
///
/// Both sides may be bare answers (`\\frac12`, `x = 3`, `[0, 1)`) or text that
/// contains one (`The answer is $\\boxed{4}$.`): the answer is extracted first
/// (boxed, then answer phrases, then the last math environment, then the whole
/// text; the last number of prose only). See the crate docs for what is judged.
pub fn verify(gold: &str, pred: &str, opts: &Options) -> Verdict {
    compare(
        gold,
        pred,
        opts,
        false,
        Targets::default(),
        Targets::default(),
    )
    .verdict
}

/// Whether a chosen `answer` is right for a problem with gold answer `gold`: `None`
/// when there is no gold answer (nothing to check), `Some(false)` when there is gold but
/// no answer, else whether [`verify`] says `Equal` (`Undecided` counts as wrong). The
/// one definition of "correct" that every job, store and report uses.
///
/// ```
/// use stepwise_verify::{Options, answer_correct};
/// let o = Options::default();
/// assert_eq!(answer_correct(Some("1/2"), Some("0.5"), &o), Some(true));
/// assert_eq!(answer_correct(Some("1/2"), None, &o), Some(false));
/// assert_eq!(answer_correct(None, Some("3"), &o), None);
/// ```
pub fn answer_correct(gold: Option<&str>, answer: Option<&str>, opts: &Options) -> Option<bool> {
    let gold = gold?;
    Some(answer.is_some_and(|a| verify(gold, a, opts).is_equal()))
}

/// Verifies a whole model solution against a gold answer: the final answer is found
/// with [`stepwise_core::AnswerExtractor`] (boxed, `####`, final-answer phrases,
/// `A:` lines, last number) and then compared with [`verify`].
pub fn verify_text(gold: &str, model_text: &str, opts: &Options) -> Verdict {
    let text = extract_tail(model_text);
    // stepwise-core's `find_boxed` rescans nested boxes (quadratic); many boxes go
    // through our linear extraction instead.
    if text.matches("\\boxed").take(65).count() > 64 {
        return verify(gold, text, opts);
    }
    // stepwise-core's extractor panicked on whitespace-only answer spans before 0db8d9d
    // (found by our fuzzer); a panic there must never take the caller down, so it stays guarded.
    let found = std::panic::catch_unwind(|| AnswerExtractor::default().extract(text));
    match found {
        // The last number is taken from prose only, by this crate's one rule
        // ([`extract::prose_number`]): the whole text goes through [`verify`], which reads a
        // formula whole (`((…3…))+0*(5)` is not `5`) and a negated number as none (`not 72`).
        Ok(Some(ex)) if ex.rule == ExtractRule::LastNumber => verify(gold, text, opts),
        // A negated answer is no answer (`not \boxed{72}`, `The answer is not 72`).
        Ok(Some(ex)) if extract::negated_near(text, ex.span.start, ex.span.end) => {
            Verdict::NotEqual
        }
        Ok(Some(ex)) => verify(gold, &ex.text, opts),
        Ok(None) => Verdict::NotEqual,
        Err(_) => verify(gold, text, opts),
    }
}

fn extract_tail(s: &str) -> &str {
    if s.len() <= limits::MAX_TEXT_BYTES {
        return s;
    }
    let mut start = s.len() - limits::MAX_TEXT_BYTES;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// Verifies many pairs on all cores (rayon); results are in input order. Each distinct
/// gold answer is read once ([`PreparedGold`]): batches hold several samples per problem.
pub fn verify_batch<G, P>(pairs: &[(G, P)], opts: &Options) -> Vec<Verdict>
where
    G: AsRef<str> + Sync,
    P: AsRef<str> + Sync,
{
    let t = Targets::default();
    by_gold(
        pairs.len(),
        |i| pairs[i].0.as_ref(),
        |g| PreparedGold::new(g, t, opts),
        |g, i| g.verify(pairs[i].1.as_ref(), t, opts),
    )
}

/// Runs `judge` on every item `0..n` on the rayon pool with the gold its key names
/// (`key(i)`), prepared once per distinct key (`prepare`, e.g. [`PreparedGold::new`]);
/// results are in input order.
pub fn by_gold<K, T>(
    n: usize,
    key: impl Fn(usize) -> K + Sync,
    prepare: impl Fn(K) -> T + Sync,
    judge: impl Fn(&T, usize) -> Verdict + Sync,
) -> Vec<Verdict>
where
    K: std::hash::Hash + Eq + Send + Clone,
    T: Send,
{
    let mut groups: std::collections::HashMap<K, usize> = std::collections::HashMap::new();
    let mut members: Vec<(K, Vec<usize>)> = Vec::new();
    for i in 0..n {
        let k = key(i);
        match groups.get(&k) {
            Some(&g) => members[g].1.push(i),
            None => {
                groups.insert(k.clone(), members.len());
                members.push((k, vec![i]));
            }
        }
    }
    let judged: Vec<Vec<(usize, Verdict)>> = members
        .into_par_iter()
        .map(|(k, items)| {
            let g = prepare(k);
            items.into_iter().map(|i| (i, judge(&g, i))).collect()
        })
        .collect();
    let mut out = vec![Verdict::Undecided; n];
    for (i, v) in judged.into_iter().flatten() {
        out[i] = v;
    }
    out
}

/// [`explain`] for many pairs on all cores (rayon); results are in input order.
pub fn explain_batch<G, P>(pairs: &[(G, P)], opts: &Options) -> Vec<Explanation>
where
    G: AsRef<str> + Sync,
    P: AsRef<str> + Sync,
{
    pairs
        .par_iter()
        .map(|(g, p)| explain(g.as_ref(), p.as_ref(), opts))
        .collect()
}

/// Compares two already-parsed answers.
pub fn verify_parsed(gold: &Expr, pred: &Expr, opts: &Options) -> Verdict {
    num::reset_work();
    equiv::equiv(gold, pred, opts)
}

/// One side of a comparison, for explanations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Side {
    /// The answer string that was used.
    pub extracted: String,
    /// Where it came from.
    pub source: Source,
    /// The parsed tree, printed (`None` when nothing parsed).
    pub parsed: Option<String>,
    /// The normalized tree that was compared.
    pub normalized: Option<String>,
    /// Why parsing failed, when it did.
    pub error: Option<String>,
}

/// A verdict with the forms that led to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    pub verdict: Verdict,
    pub gold: Side,
    pub pred: Side,
}

/// One parse of one candidate: what is shown, the tree, and whether a cap stopped it.
struct Reading {
    side: Side,
    expr: Option<Expr>,
    /// Parsing hit a cap ([`ParseError::is_cap`]): the answer was not fully read.
    capped: bool,
}

impl ParseError {
    /// True for the errors of the caps in [`limits`] (length, size, depth): the input may
    /// be well formed, but it was not read to its end.
    pub fn is_cap(&self) -> bool {
        matches!(
            self,
            ParseError::TooLong(_) | ParseError::TooLarge | ParseError::TooDeep
        )
    }
}

/// The readings a prediction is judged on: those of its first candidate that parses.
/// A candidate stopped by a cap ends the search with no tree (the verdict is then
/// `Undecided`): a later candidate would judge a fragment of an answer that was not read.
/// A candidate with a syntax error passes to the next one (the plain reading of a text
/// whose LaTeX reading is broken). The last candidate is kept even when it fails, so the
/// explanation shows why.
fn answer_readings(mut rs: Vec<Reading>) -> Vec<Reading> {
    let mut start = 0;
    while start < rs.len() {
        let key = rs[start].side.extracted.clone();
        let end = rs[start..]
            .iter()
            .position(|r| r.side.extracted != key)
            .map_or(rs.len(), |n| start + n);
        let group = &rs[start..end];
        let capped = group.iter().any(|r| r.capped);
        if capped || end == rs.len() || group.iter().any(|r| r.expr.is_some()) {
            let mut chosen: Vec<Reading> = rs.drain(start..end).collect();
            if capped {
                for r in &mut chosen {
                    r.expr = None;
                }
            }
            return chosen;
        }
        start = end;
    }
    rs
}

/// Every parse of every candidate of one side (a lone `1,5` is read both ways).
fn parse_side(text: &str, opts: &Options, detail: bool, targets: Targets) -> Vec<Reading> {
    let mut out = Vec::new();
    for (c, src) in extract::candidates_for(text, targets) {
        let readings: &[bool] = if parse::has_decimal_comma(&c) {
            &[true, false]
        } else {
            &[true]
        };
        for &dc in readings {
            let side = match parse::parse_with(&c, dc) {
                Ok(e) => {
                    // Printing trees is only for explanations; `verify` skips it.
                    let (parsed, normalized) = if detail {
                        // A solvable inequality is compared by its solution set: show that.
                        let norm = match ineq::solve(&e) {
                            Some((var, set)) => format!("{var} in {set}"),
                            None => equiv::normalize(&e, opts, 0).to_string(),
                        };
                        (Some(e.to_string()), Some(norm))
                    } else {
                        (None, None)
                    };
                    Reading {
                        side: Side {
                            extracted: c.clone(),
                            source: src,
                            parsed,
                            normalized,
                            error: None,
                        },
                        expr: Some(e),
                        capped: false,
                    }
                }
                Err(err) => Reading {
                    side: Side {
                        extracted: c.clone(),
                        source: src,
                        parsed: None,
                        normalized: None,
                        error: Some(err.to_string()),
                    },
                    expr: None,
                    capped: err.is_cap(),
                },
            };
            out.push(side);
        }
    }
    out
}

/// Normalizes raw answer text for the last-resort string comparison.
fn raw_key(s: &str) -> String {
    let mut t = s.to_string();
    for pat in [
        "\\left",
        "\\right",
        "\\!",
        "\\,",
        "\\;",
        "\\ ",
        "$",
        "\\displaystyle",
        "\\dfrac",
        "\\tfrac",
    ] {
        if t.contains(pat) {
            let to = if pat.ends_with("frac") { "\\frac" } else { "" };
            t = t.replace(pat, to);
        }
    }
    t.chars().filter(|c| !c.is_whitespace()).collect()
}

/// Like [`verify`], with the extracted, parsed and normalized forms of both sides.
/// Every gold candidate is tried against the prediction's answer (its readings); the
/// first equal pair (or else the first pair) is reported.
pub fn explain(gold: &str, pred: &str, opts: &Options) -> Explanation {
    compare(
        gold,
        pred,
        opts,
        true,
        Targets::default(),
        Targets::default(),
    )
}

/// [`explain`] with each side read only as the answers its [`Targets`] allow
/// (math-verify's extraction configs: LaTeX, plain expressions, or both). A side whose
/// targets find nothing has no answer, so the verdict is `NotEqual`.
pub fn explain_targets(
    gold: &str,
    gold_targets: Targets,
    pred: &str,
    pred_targets: Targets,
    opts: &Options,
) -> Explanation {
    compare(gold, pred, opts, true, gold_targets, pred_targets)
}

/// [`verify`] with each side read only as the answers its [`Targets`] allow: the verdict
/// of [`explain_targets`] without printing the parsed and normalized trees (which only an
/// explanation shows), so it is what callers that need only the verdict use.
pub fn verify_targets(
    gold: &str,
    gold_targets: Targets,
    pred: &str,
    pred_targets: Targets,
    opts: &Options,
) -> Verdict {
    compare(gold, pred, opts, false, gold_targets, pred_targets).verdict
}

/// The answer [`verify`] would judge in `text` when read with `targets`: the first
/// allowed candidate that parses (`None` when there is none).
pub fn extract_answer(text: &str, targets: Targets) -> Option<String> {
    first_answer(text, targets).map(|(c, _)| c)
}

fn first_answer(text: &str, targets: Targets) -> Option<(String, Source)> {
    num::reset_work();
    extract::candidates_for(&restore_escapes(text), targets)
        .into_iter()
        .find(|(c, _)| parse::parse(c).is_ok())
}

/// What [`extract_configured`] found: a mathematical answer (the text [`verify`] judges)
/// or a literal one ([`strings::extract_string`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Extracted {
    Math(String),
    Literal(strings::StringAnswer),
}

/// math-verify's `parse` with several extraction configs at once: the mathematical answer
/// that `targets` allow and the literal answer of `literal` (when given), the one found at
/// the more explicit place winning, as math-verify orders its patterns by priority. A
/// mathematical answer ranks by where it was found: a box at `boxed_priority`
/// (math-verify's `boxed_match_priority`, 55 by default; below 0 a box ranks as plain
/// LaTeX), an answer phrase at 100, anything else at 300. A tie goes to the mathematical
/// answer.
///
/// ```
/// use stepwise_verify::{Extracted, Targets, extract_configured, strings::StringTargets};
/// let keys: Vec<String> = ["A", "B"].iter().map(|s| s.to_string()).collect();
/// let lit = StringTargets { strings: &keys, anchorless: true, lowercase: true };
/// let t = Targets { expr: false, ..Targets::default() };
/// // A box (55) outranks a plain letter (300) …
/// assert!(matches!(extract_configured("$\\boxed{3}$ or B", t, 55, Some(&lit)),
///     Some(Extracted::Math(m)) if m == "3"));
/// // … and an `Answer:` letter (100) the last math environment (300).
/// assert!(matches!(extract_configured("We get $x$. Answer: B", t, 55, Some(&lit)),
///     Some(Extracted::Literal(a)) if a.parsed == "b"));
/// ```
pub fn extract_configured(
    text: &str,
    targets: Targets,
    boxed_priority: i64,
    literal: Option<&strings::StringTargets<'_>>,
) -> Option<Extracted> {
    let math = (targets.latex || targets.expr)
        .then(|| first_answer(text, targets))
        .flatten();
    let lit = literal.and_then(|l| strings::extract_string(text, l));
    let rank = |src: Source| -> i64 {
        match src {
            Source::Boxed if boxed_priority >= 0 => boxed_priority,
            Source::Phrase => 100,
            _ => 300,
        }
    };
    match (math, lit) {
        (Some((_, src)), Some(l)) if i64::from(l.priority) < rank(src) => {
            Some(Extracted::Literal(l))
        }
        (Some((m, _)), _) => Some(Extracted::Math(m)),
        (None, Some(l)) => Some(Extracted::Literal(l)),
        (None, None) => None,
    }
}

/// Control characters that only an unescaped string literal puts in math text, read back
/// as the LaTeX command they ate: `"\frac12"` written in Python without `r""` holds a form
/// feed and `rac12` (also backspace for `\b…`, vertical tab for `\v…`, bell for `\a…`).
/// Tabs, newlines and carriage returns are whitespace and stay as they are.
fn restore_escapes(s: &str) -> std::borrow::Cow<'_, str> {
    // A byte scan: the four are ASCII, and this runs on every side of every call.
    if !s.bytes().any(|b| matches!(b, 0x7 | 0x8 | 0xb | 0xc)) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{b}' => out.push_str("\\v"),
            '\u{c}' => out.push_str("\\f"),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

fn compare(
    gold: &str,
    pred: &str,
    opts: &Options,
    detail: bool,
    gold_targets: Targets,
    pred_targets: Targets,
) -> Explanation {
    let (gold, pred) = (restore_escapes(gold), restore_escapes(pred));
    num::reset_work();
    let gs = gold_readings(&gold, opts, detail, gold_targets);
    compare_readings(&gs, &pred, opts, detail, pred_targets)
}

/// Every reading of a gold answer: each candidate, and for a gold with several boxes also
/// the set of them (math-verify's rule for a trusted gold).
fn gold_readings(gold: &str, opts: &Options, detail: bool, gold_targets: Targets) -> Vec<Reading> {
    let mut gs = parse_side(gold, opts, detail, gold_targets);
    if gold_targets.latex
        && let Some(set) = extract::boxes_as_set(gold)
    {
        gs.extend(parse_side(&set, opts, detail, Targets::default()));
    }
    gs
}

/// A gold answer read once (extracted and parsed), to compare many predictions with it:
/// what a batch whose gold answers repeat (several samples per problem) reads once per
/// distinct gold. `PreparedGold::new(g, t, o).verify(p, pt, o)` gives the verdict of
/// [`verify_targets`]`(g, t, p, pt, o)`; the work budget of [`limits`] is spent on reading
/// the gold once, and afresh on each comparison.
///
/// ```
/// use stepwise_verify::{Options, PreparedGold, Targets, Verdict};
/// let o = Options::default();
/// let g = PreparedGold::new("\\frac12", Targets::default(), &o);
/// assert_eq!(g.verify("0.5", Targets::default(), &o), Verdict::Equal);
/// assert_eq!(g.verify("The answer is $\\boxed{2}$.", Targets::default(), &o), Verdict::NotEqual);
/// ```
pub struct PreparedGold {
    readings: Vec<Reading>,
}

impl PreparedGold {
    /// Reads `gold` as the answers `targets` allow.
    pub fn new(gold: &str, targets: Targets, opts: &Options) -> Self {
        let gold = restore_escapes(gold);
        num::reset_work();
        Self {
            readings: gold_readings(&gold, opts, false, targets),
        }
    }

    /// The verdict on `pred` (read as `pred_targets` allow) against this gold.
    pub fn verify(&self, pred: &str, pred_targets: Targets, opts: &Options) -> Verdict {
        let pred = restore_escapes(pred);
        num::reset_work();
        compare_readings(&self.readings, &pred, opts, false, pred_targets).verdict
    }
}

/// The verdict of a prediction against the readings of a gold answer.
fn compare_readings(
    gs: &[Reading],
    pred: &str,
    opts: &Options,
    detail: bool,
    pred_targets: Targets,
) -> Explanation {
    let ps = answer_readings(parse_side(pred, opts, detail, pred_targets));
    if ps.is_empty() {
        let none = Side {
            extracted: String::new(),
            source: Source::Whole,
            parsed: None,
            normalized: None,
            error: Some("no answer of the requested kind".into()),
        };
        return Explanation {
            verdict: Verdict::NotEqual,
            gold: gs
                .first()
                .map(|r| r.side.clone())
                .unwrap_or_else(|| none.clone()),
            pred: none,
        };
    }
    let mut best: Option<(Verdict, usize, usize)> = None;
    'outer: for (i, gr) in gs.iter().enumerate() {
        let (g, ge) = (&gr.side, &gr.expr);
        for (j, pr) in ps.iter().enumerate() {
            let (p, pe) = (&pr.side, &pr.expr);
            let mut v = match (ge, pe) {
                (Some(a), Some(b)) => equiv::equiv(a, b, opts),
                _ => Verdict::Undecided,
            };
            // Units are stripped when the gold has none; when both sides name units,
            // different units make different answers (`5 cm` is not `5 mm`).
            if v == Verdict::Equal && units_conflict(&g.extracted, &p.extracted) {
                v = Verdict::NotEqual;
            }
            if v != Verdict::Equal
                && !g.extracted.trim().is_empty()
                && raw_key(&g.extracted) == raw_key(&p.extracted)
            {
                v = Verdict::Equal;
            }
            let better = match best {
                None => true,
                Some((bv, ..)) => bv == Verdict::Undecided && v == Verdict::NotEqual,
            };
            if v == Verdict::Equal {
                best = Some((v, i, j));
                break 'outer;
            }
            if better {
                best = Some((v, i, j));
            }
        }
    }
    let (verdict, i, j) = best.unwrap_or((Verdict::Undecided, 0, 0));
    let empty = || Side {
        extracted: String::new(),
        source: Source::Whole,
        parsed: None,
        normalized: None,
        error: Some(ParseError::Empty.to_string()),
    };
    Explanation {
        verdict,
        gold: gs.get(i).map(|r| r.side.clone()).unwrap_or_else(empty),
        pred: ps.get(j).map(|r| r.side.clone()).unwrap_or_else(empty),
    }
}

/// The exact value of a plain arithmetic expression (`12 + 7`, `3 \times 4`,
/// `\frac{1}{2} \cdot 8`, `1,200 / 4`, `2^{10}`, `15%`), or `None` when it is not
/// a rational constant or exceeds the caps.
pub fn exact_value(expr: &str) -> Option<BigRational> {
    let e = parse(expr).ok()?;
    num::reset_work();
    exact::eval(&e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(n: i64, d: i64) -> BigRational {
        BigRational::new(n.into(), d.into())
    }

    #[test]
    fn exact_values_of_arithmetic() {
        assert_eq!(exact_value("12 + 7"), Some(q(19, 1)));
        assert_eq!(exact_value("1,200 / 4"), Some(q(300, 1)));
        assert_eq!(exact_value("3 × 4 ÷ 6"), Some(q(2, 1)));
        assert_eq!(exact_value("2 · 3"), Some(q(6, 1)));
        assert_eq!(exact_value("\\frac{1}{2} \\cdot 8"), Some(q(4, 1)));
        assert_eq!(exact_value("\\frac12"), Some(q(1, 2)));
        assert_eq!(exact_value("2^{10}"), Some(q(1024, 1)));
        assert_eq!(exact_value("2^10"), Some(q(1024, 1)));
        assert_eq!(exact_value("-(3 - 5) * 2"), Some(q(4, 1)));
        assert_eq!(exact_value("15%"), Some(q(3, 20)));
        assert_eq!(exact_value("0.1 + 0.2"), Some(q(3, 10)));
        assert_eq!(exact_value("3 \\times 1.5"), Some(q(9, 2)));
        assert_eq!(exact_value("(4+4)/2^{-1}"), Some(q(16, 1)));
        assert_eq!(exact_value("x + 1"), None);
        assert_eq!(exact_value("\\sqrt{2}"), None);
        assert_eq!(exact_value("1/0"), None);
        assert_eq!(exact_value("5^5^5^5"), None);
        assert_eq!(exact_value("(1, 2)"), None);
        assert_eq!(exact_value(""), None);
    }
}

/// Canonical unit words named in an answer (`\text{ cm}`, `inches`, `5 ft`).
fn unit_words(s: &str) -> std::collections::BTreeSet<&'static str> {
    s.split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| w.len() >= 2 && parse::is_unit_word(w))
        .filter_map(|w| canonical_unit(&w.to_ascii_lowercase()))
        .collect()
}

/// One name per unit; qualifiers (`square`, `cubic`, `sq`) and `units` name no unit.
fn canonical_unit(w: &str) -> Option<&'static str> {
    Some(match w {
        "cm" => "cm",
        "mm" => "mm",
        "km" => "km",
        "kg" => "kg",
        "mg" => "mg",
        "ml" => "ml",
        "meter" | "meters" => "m",
        "mile" | "miles" => "mile",
        "inch" | "inches" => "inch",
        "feet" | "ft" => "foot",
        "dollar" | "dollars" => "dollar",
        "cent" | "cents" => "cent",
        "degree" | "degrees" => "degree",
        "hour" | "hours" => "hour",
        "minute" | "minutes" => "minute",
        "seconds" => "second",
        "day" | "days" => "day",
        "year" | "years" => "year",
        "yuan" => "yuan",
        _ => return None,
    })
}

/// True when both answers name units and they are not the same units.
fn units_conflict(gold: &str, pred: &str) -> bool {
    let g = unit_words(gold);
    if g.is_empty() {
        return false;
    }
    let p = unit_words(pred);
    !p.is_empty() && g != p
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    #[test]
    fn units_are_compared_only_when_both_sides_name_them() {
        let o = Options::default();
        assert_eq!(verify("5 cm", "5 mm", &o), Verdict::NotEqual);
        assert_eq!(
            verify("5\\text{ cm}", "5\\text{ km}", &o),
            Verdict::NotEqual
        );
        assert_eq!(verify("5 cm", "5", &o), Verdict::Equal);
        assert_eq!(verify("5", "5 cm", &o), Verdict::Equal);
        assert_eq!(verify("3 inches", "3 inch", &o), Verdict::Equal);
        assert_eq!(verify("12 ft", "12 feet", &o), Verdict::Equal);
        assert_eq!(verify("10 square units", "10", &o), Verdict::Equal);
    }

    #[test]
    fn explanations_show_solution_sets_and_simplified_radicals() {
        let ex = explain(
            "|2x+1| \\ge 5",
            "x \\in (-\\infty, -3] \\cup [2, \\infty)",
            &Options::default(),
        );
        assert_eq!(ex.verdict, Verdict::Equal);
        assert_eq!(
            ex.gold.normalized.as_deref(),
            Some("x in (-oo, -3] U [2, oo)")
        );
        let ex = explain("\\sqrt{1/2}", "\\frac{1}{\\sqrt2}", &Options::default());
        assert_eq!(ex.verdict, Verdict::Equal);
        assert_eq!(ex.pred.normalized.as_deref(), Some("(1/2)*sqrt(2)"));
    }
}
