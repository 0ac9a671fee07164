//! Finding arithmetic claims in text.
//!
//! A claim is an equation the text asserts between two arithmetic expressions:
//! `12 + 7 = 19`, `3 × 4 = 12`, `48/2 = 24`, `$5\times 3=15$`, each link of a chain
//! `a = b = c`, and GSM8K calculator annotations `<<48/2=24>>`. [`find_claims`] returns
//! every claim with both sides rewritten into plain ASCII arithmetic (`*`, `/`, `^`,
//! parentheses), ready for an exact evaluator; nothing in the text is executed.
//!
//! What is *not* a claim: equations with letters (`x = 5`, `2x + 3 = 7`), comparisons
//! (`<=`, `!=`, `:=`, `≈`), and chains where no side has an operator (`7 = 7`).
//! A side that starts or ends with a binary operator (`apples + 3 = 8` leaves `+ 3`) is
//! an incomplete expression and the link is skipped rather than guessed.
//!
//! ```
//! use stepwise_verify::claims::find_claims;
//! let c = find_claims("So 3 × 4 = 12, and $12\\div 2=6$. Then <<6*5=30>>30 apples.");
//! let pairs: Vec<(&str, &str)> = c.iter().map(|c| (c.lhs.as_str(), c.rhs.as_str())).collect();
//! assert_eq!(pairs, [("6*5", "30"), ("3*4", "12"), ("12/2", "6")]);
//! ```

use serde::{Deserialize, Serialize};
use std::ops::Range;

/// Where a claim was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClaimSource {
    /// In the running text (`3 + 4 = 7`, `$3\times 4=12$`).
    Inline,
    /// In a GSM8K calculator annotation `<<3+4=7>>`.
    Annotation,
}

/// One asserted equation `lhs = rhs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// Left side, normalized to ASCII arithmetic.
    pub lhs: String,
    /// Right side, normalized to ASCII arithmetic.
    pub rhs: String,
    /// Byte range in the input covering `lhs = rhs` as written.
    pub span: Range<usize>,
    pub source: ClaimSource,
}

impl Claim {
    /// The claim as written in `text` (the input it was found in).
    pub fn written<'a>(&self, text: &'a str) -> &'a str {
        text.get(self.span.clone()).unwrap_or("")
    }
}

/// LaTeX commands allowed inside an expression, and what they become.
const LATEX: [(&str, &str); 14] = [
    ("\\times", "*"),
    ("\\cdot", "*"),
    ("\\div", "/"),
    ("\\dfrac", "\\frac"),
    ("\\tfrac", "\\frac"),
    ("\\frac", "\\frac"),
    ("\\left", ""),
    ("\\right", ""),
    ("\\$", ""),
    ("\\,", ""),
    ("\\!", ""),
    ("\\;", ""),
    ("\\ ", ""),
    ("\\%", "%"),
];

/// Every claim in `text`: annotations first (in order), then inline claims (in order).
pub fn find_claims(text: &str) -> Vec<Claim> {
    let mut out = Vec::new();
    // 1. GSM8K annotations; blank them so their inside is not read twice.
    let mut work = text.as_bytes().to_vec();
    let mut from = 0;
    while let Some(p) = text[from..].find("<<") {
        let start = from + p;
        let Some(q) = text[start + 2..].find(">>") else {
            break;
        };
        let end = start + 2 + q + 2;
        let inner_start = start + 2;
        let inner = &text[inner_start..end - 2];
        if !inner.contains('\n') {
            let segs = split_segments(inner, inner_start);
            out.extend(chain_claims(text, &segs, ClaimSource::Annotation));
            for b in &mut work[start..end] {
                *b = b' ';
            }
        }
        from = end;
    }
    // Blanking replaced whole ASCII-delimited ranges with spaces; multi-byte characters
    // inside an annotation become several spaces, so the text stays valid UTF-8.
    let work = String::from_utf8(work).unwrap_or_else(|_| text.to_string());

    // 2. Inline runs of expression characters containing '='.
    for run in expression_runs(&work) {
        let segs = split_segments(&work[run.clone()], run.start);
        if segs.len() >= 2 {
            out.extend(chain_claims(text, &segs, ClaimSource::Inline));
        }
    }
    out
}

/// A segment of a chain: its raw text range (trimmed) in the input.
#[derive(Debug, Clone)]
struct Seg {
    range: Range<usize>,
    raw: String,
}

/// Splits `s` (found at byte `base` of the input) on '=' into trimmed segments.
fn split_segments(s: &str, base: usize) -> Vec<Seg> {
    let mut segs = Vec::new();
    let mut start = 0;
    for (i, c) in s.char_indices().chain(std::iter::once((s.len(), '='))) {
        if c == '=' {
            let piece = &s[start..i];
            let lead = piece.len() - piece.trim_start().len();
            let t = piece.trim();
            let r = base + start + lead..base + start + lead + t.len();
            segs.push(Seg {
                range: r,
                raw: t.to_string(),
            });
            start = i + 1;
        }
    }
    segs
}

fn chain_claims(text: &str, segs: &[Seg], source: ClaimSource) -> Vec<Claim> {
    let norm: Vec<Option<String>> = segs.iter().map(|s| normalize(&s.raw)).collect();
    if !norm.iter().flatten().any(|n| has_operator(n)) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for i in 0..segs.len().saturating_sub(1) {
        let (Some(l), Some(r)) = (&norm[i], &norm[i + 1]) else {
            continue;
        };
        if !complete(l) || !complete(r) {
            continue;
        }
        let span = segs[i].range.start..segs[i + 1].range.end;
        if text.get(span.clone()).is_none() {
            continue;
        }
        out.push(Claim {
            lhs: l.clone(),
            rhs: r.clone(),
            span,
            source,
        });
    }
    out
}

/// True when the expression has a binary operator (a leading minus does not count).
fn has_operator(e: &str) -> bool {
    e.char_indices()
        .any(|(i, c)| matches!(c, '+' | '*' | '/' | '^') || (c == '-' && i > 0))
}

/// A side is complete when it is non-empty and neither starts with a binary operator
/// nor ends with any operator.
fn complete(e: &str) -> bool {
    let (Some(f), Some(l)) = (e.chars().next(), e.chars().last()) else {
        return false;
    };
    !matches!(f, '+' | '*' | '/' | '^' | ')') && !matches!(l, '+' | '-' | '*' | '/' | '^' | '(')
}

/// Byte ranges of maximal runs of expression characters that contain an '='.
fn expression_runs(s: &str) -> Vec<Range<usize>> {
    let b = s.as_bytes();
    let mut runs = Vec::new();
    let mut start: Option<usize> = None;
    let mut has_eq = false;
    let mut i = 0;
    let close = |runs: &mut Vec<Range<usize>>, st: Option<usize>, end: usize, eq: bool| {
        if let Some(st) = st
            && eq
        {
            runs.push(st..end);
        }
    };
    while i < s.len() {
        let len = expr_token_len(s, i);
        if len > 0 {
            if b[i] == b'=' {
                has_eq = true;
            }
            if start.is_none() {
                start = Some(i);
            }
            i += len;
        } else {
            close(&mut runs, start, i, has_eq);
            start = None;
            has_eq = false;
            i += s[i..].chars().next().map_or(1, char::len_utf8);
        }
    }
    close(&mut runs, start, s.len(), has_eq);
    runs
}

fn prev_char(s: &str, i: usize) -> Option<char> {
    s[..i].chars().next_back()
}

fn prev_non_space(s: &str, i: usize) -> Option<char> {
    s[..i].chars().rev().find(|c| *c != ' ' && *c != '\t')
}

fn next_non_space(s: &str, i: usize) -> Option<char> {
    s[i..].chars().find(|c| *c != ' ' && *c != '\t')
}

/// Length in bytes of the expression token at byte `i`, or 0 when `s[i..]` does not
/// start one.
fn expr_token_len(s: &str, i: usize) -> usize {
    let Some(c) = s[i..].chars().next() else {
        return 0;
    };
    match c {
        '0'..='9'
        | ' '
        | '\t'
        | '+'
        | '-'
        | '*'
        | '/'
        | '^'
        | '('
        | ')'
        | '['
        | ']'
        | '{'
        | '}'
        | '$'
        | '%'
        | '×'
        | '·'
        | '⋅'
        | '∙'
        | '÷'
        | '−'
        | '–' => c.len_utf8(),
        '=' => {
            let prev = prev_char(s, i);
            let next = s[i + 1..].chars().next();
            if matches!(prev, Some('<' | '>' | '!' | ':' | '=')) || matches!(next, Some('=' | '>'))
            {
                0
            } else {
                1
            }
        }
        '.' if s[i + 1..].starts_with(|c: char| c.is_ascii_digit()) => 1,
        '.' => 0,
        ',' => {
            // a thousands separator: digit before, exactly three digits after
            let before = prev_char(s, i).is_some_and(|c| c.is_ascii_digit());
            let after = s[i + 1..].bytes().take_while(u8::is_ascii_digit).count();
            if before && after == 3 { 1 } else { 0 }
        }
        'x' | 'X' => {
            // "3 x 4": a multiplication sign between numbers (not "2x + 3")
            let before = prev_non_space(s, i).is_some_and(|c| c.is_ascii_digit() || c == ')');
            let after = next_non_space(s, i + 1).is_some_and(|c| c.is_ascii_digit() || c == '(');
            let spaced = s[..i].ends_with(' ') && s[i + 1..].starts_with(' ');
            if before && after && spaced { 1 } else { 0 }
        }
        '\\' => LATEX
            .iter()
            .find(|(cmd, _)| {
                s[i..].starts_with(cmd)
                    && (!cmd.as_bytes()[1].is_ascii_alphabetic()
                        || !s[i + cmd.len()..].starts_with(|c: char| c.is_ascii_alphabetic()))
            })
            .map_or(0, |(cmd, _)| cmd.len()),
        _ => 0,
    }
}

/// Rewrites a side into plain ASCII arithmetic, or `None` when it is not one.
pub fn normalize(raw: &str) -> Option<String> {
    let mut s = String::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let c = raw[i..].chars().next()?;
        if c == '\\' {
            let (cmd, rep) = LATEX.iter().find(|(cmd, _)| raw[i..].starts_with(cmd))?;
            s.push_str(rep);
            i += cmd.len();
            continue;
        }
        match c {
            '×' | '·' | '⋅' | '∙' => s.push('*'),
            'x' | 'X' => s.push('*'),
            '÷' => s.push('/'),
            '−' | '–' => s.push('-'),
            '$' | ' ' | '\t' => {}
            ',' => {}
            '[' | '{' => s.push(if c == '[' { '(' } else { '{' }),
            ']' => s.push(')'),
            _ => s.push(c),
        }
        i += c.len_utf8();
    }
    let s = s.replace("**", "^");
    let s = expand_fracs(&s)?;
    let s = s.replace('{', "(").replace('}', ")");
    let s = expand_percent(&s);
    if s.is_empty() || !s.bytes().any(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s)
}

/// `\frac{a}{b}` → `((a)/(b))`, innermost first.
fn expand_fracs(s: &str) -> Option<String> {
    let mut s = s.to_string();
    while let Some(p) = s.rfind("\\frac") {
        let after = &s[p + 5..];
        let (a, rest) = brace_group(after)?;
        let (b, rest2) = brace_group(rest)?;
        let consumed = after.len() - rest2.len();
        let rep = format!("(({a})/({b}))");
        s.replace_range(p..p + 5 + consumed, &rep);
    }
    Some(s)
}

/// Splits `{inner}rest` into `(inner, rest)`; a single digit without braces
/// (`\frac12`) is accepted as a group too.
fn brace_group(s: &str) -> Option<(String, &str)> {
    let mut chars = s.char_indices();
    let (_, c) = chars.next()?;
    if c.is_ascii_digit() {
        return Some((c.to_string(), &s[1..]));
    }
    if c != '{' {
        return None;
    }
    let mut depth = 0;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some((s[1..i].to_string(), &s[i + 1..]));
                }
            }
            _ => {}
        }
    }
    None
}

/// `50%` → `(50/100)`.
fn expand_percent(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() || b[i] == b'.' {
            let st = i;
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
                i += 1;
            }
            if i < b.len() && b[i] == b'%' {
                out.push_str(&format!("({}/100)", &s[st..i]));
                i += 1;
            } else {
                out.push_str(&s[st..i]);
            }
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

/// Decimal places of a side written as a plain decimal number (`3.33` → 2), used to
/// accept rounded results; `None` for anything else.
pub fn decimal_places(e: &str) -> Option<u32> {
    let t = e.strip_prefix('-').unwrap_or(e);
    let (int, frac) = t.split_once('.')?;
    if int.bytes().all(|b| b.is_ascii_digit())
        && !frac.is_empty()
        && frac.bytes().all(|b| b.is_ascii_digit())
    {
        Some(frac.len() as u32)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String)> {
        find_claims(text)
            .into_iter()
            .map(|c| (c.lhs, c.rhs))
            .collect()
    }

    fn p(a: &str, b: &str) -> (String, String) {
        (a.to_string(), b.to_string())
    }

    #[test]
    fn simple_forms() {
        assert_eq!(pairs("12 + 7 = 19"), [p("12+7", "19")]);
        assert_eq!(pairs("So 3 × 4 = 12."), [p("3*4", "12")]);
        assert_eq!(pairs("48/2 = 24 cookies"), [p("48/2", "24")]);
        assert_eq!(pairs("$5\\times 3=15$"), [p("5*3", "15")]);
        assert_eq!(pairs("3 x 4 = 12"), [p("3*4", "12")]);
        assert_eq!(pairs("10 − 3 = 7"), [p("10-3", "7")]);
        assert_eq!(pairs("6 ÷ 2 = 3"), [p("6/2", "3")]);
        assert_eq!(pairs("1,000 + 2,500 = 3,500"), [p("1000+2500", "3500")]);
        assert_eq!(pairs("2.5 * 4 = 10.0"), [p("2.5*4", "10.0")]);
        assert_eq!(pairs("50% * 20 = 10"), [p("(50/100)*20", "10")]);
        assert_eq!(pairs("\\frac{3}{4} \\cdot 8 = 6"), [p("((3)/(4))*8", "6")]);
        assert_eq!(
            pairs("2^3 = 8 and 2**4 = 16"),
            [p("2^3", "8"), p("2^4", "16")]
        );
    }

    #[test]
    fn chains_and_annotations() {
        assert_eq!(pairs("3 + 4 = 7 = 7.0"), [p("3+4", "7"), p("7", "7.0")]);
        assert_eq!(
            pairs("She sold 48/2 = <<48/2=24>>24 clips."),
            [p("48/2", "24"), p("48/2", "24")]
        );
        assert_eq!(
            pairs("3 + 4 = 7, 7 + 1 = 8."),
            [p("3+4", "7"), p("7+1", "8")]
        );
        assert_eq!(
            pairs("3 + 4 = 7. 7 + 1 = 8"),
            [p("3+4", "7"), p("7+1", "8")]
        );
        // a multi-line text: each line separately
        assert_eq!(
            pairs("1 + 1 = 2\n2 + 2 = 4"),
            [p("1+1", "2"), p("2+2", "4")]
        );
    }

    #[test]
    fn non_claims() {
        for t in [
            "x = 5",
            "2x + 3 = 7",
            "7 = 7",
            "a <= 3 + 4",
            "3 + 4 != 8",
            "y := 3 + 4",
            "3 + 4 == 7",
            "5 apples + 3 = 8",
            "the total = 3 * 4 apples",
            "3 + 4 ≈ 7",
            "",
            "<<unclosed 3+4=7",
        ] {
            let c = find_claims(t);
            if t == "<<unclosed 3+4=7" {
                assert_eq!(c.len(), 1, "{t}");
            } else {
                assert!(c.is_empty(), "{t}: {c:?}");
            }
        }
    }

    #[test]
    fn spans_point_at_the_claim() {
        let t = "Then 3 × 4 = 12 apples.";
        let c = &find_claims(t)[0];
        assert_eq!(c.written(t), "3 × 4 = 12");
        let t = "a <<6*5=30>>30";
        let c = &find_claims(t)[0];
        assert_eq!(c.written(t), "6*5=30");
        assert_eq!(c.source, ClaimSource::Annotation);
    }

    #[test]
    fn decimals() {
        assert_eq!(decimal_places("3.33"), Some(2));
        assert_eq!(decimal_places("-0.5"), Some(1));
        assert_eq!(decimal_places("3"), None);
        assert_eq!(decimal_places("3.3*2"), None);
    }

    #[test]
    fn pathological_input_is_fine() {
        let long = "(".repeat(10_000) + "= 1 + ";
        let _ = find_claims(&long);
        let _ = find_claims("\\frac{\\frac{1}{2}");
        let _ = find_claims("=====");
        let _ = find_claims("é = 3 + ü = ∞");
    }
}
