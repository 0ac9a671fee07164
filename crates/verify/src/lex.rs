//! Tokenizer for LaTeX and plain-text answers.

use crate::expr::RelOp;
use crate::{ParseError, limits};

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// A decimal literal with separators removed; `sci` holds a power-of-ten exponent.
    Num(String, i32),
    /// A run of ASCII letters (plain text) or a single Greek/other symbol name.
    Ident(String),
    /// `\name` for commands without special lexing.
    Cmd(String),
    /// `\text{…}` and friends: the raw content.
    Text(String),
    Begin(String),
    End(String),
    LParen,
    RParen,
    LBrack,
    RBrack,
    LBrace,
    RBrace,
    LSet,
    RSet,
    Plus,
    Minus,
    Star,
    Slash,
    Caret,
    Under,
    Bang,
    Percent,
    Comma,
    Semi,
    Colon,
    Pipe,
    Amp,
    Newrow,
    PlusMinus,
    Rel(RelOp),
    Degree,
}

const SKIP_CMDS: &[&str] = &[
    "left",
    "right",
    "big",
    "Big",
    "bigg",
    "Bigg",
    "bigl",
    "bigr",
    "Bigl",
    "Bigr",
    "biggl",
    "biggr",
    "displaystyle",
    "textstyle",
    "quad",
    "qquad",
    "limits",
    "nolimits",
    "dots",
    "ldots",
    "cdots",
    "vdots",
    "hline",
    "cline",
    "mathstrut",
    "boxed",
    "fbox",
    "displaylines",
    "nonumber",
    "notag",
    "hfill",
    "phantom",
    "strut",
];

const TEXT_CMDS: &[&str] = &[
    "text",
    "textbf",
    "textit",
    "textnormal",
    "textrm",
    "textsf",
    "texttt",
    "mbox",
    "hbox",
    "emph",
];

/// Commands whose braced argument is math that should be read as-is (`\mathrm{e}`).
const TRANSPARENT_CMDS: &[&str] = &[
    "mathrm",
    "mathbf",
    "mathit",
    "mathsf",
    "mathtt",
    "mathbb",
    "mathcal",
    "bm",
    "boldsymbol",
    "operatorname",
    "overline",
    "vec",
    "overrightarrow",
    "hat",
    "bar",
    "widehat",
    "tilde",
    "mathnormal",
];

pub(crate) fn lex(src: &str) -> Result<Vec<Tok>, ParseError> {
    if src.len() > limits::MAX_ANSWER_BYTES {
        return Err(ParseError::TooLong(src.len()));
    }
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let n = chars.len();
    while i < n {
        if out.len() > limits::MAX_TOKENS {
            return Err(ParseError::TooLarge);
        }
        let c = chars[i];
        match c {
            ' ' | '\t' | '\n' | '\r' | '~' | '$' | '\u{a0}' | '\u{c}' => {
                i += 1;
            }
            '0'..='9' | '.' => {
                if c == '.' && !(i + 1 < n && chars[i + 1].is_ascii_digit()) {
                    // A stray period (end of sentence) or `\dots` leftovers.
                    i += 1;
                    continue;
                }
                let (tok, next) = lex_number(&chars, i);
                out.push(tok);
                i = next;
            }
            '\\' => {
                i = lex_command(&chars, i + 1, &mut out)?;
            }
            'a'..='z' | 'A'..='Z' => {
                let start = i;
                while i < n && chars[i].is_ascii_alphabetic() {
                    i += 1;
                }
                out.push(Tok::Ident(chars[start..i].iter().collect()));
            }
            '(' => {
                out.push(Tok::LParen);
                i += 1
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1
            }
            '[' => {
                out.push(Tok::LBrack);
                i += 1
            }
            ']' => {
                out.push(Tok::RBrack);
                i += 1
            }
            '{' => {
                // `{,}` is a LaTeX thousands separator.
                if i + 2 < n && chars[i + 1] == ',' && chars[i + 2] == '}' {
                    out.push(Tok::Comma);
                    i += 3;
                    continue;
                }
                out.push(Tok::LBrace);
                i += 1
            }
            '}' => {
                out.push(Tok::RBrace);
                i += 1
            }
            '+' => {
                out.push(Tok::Plus);
                i += 1
            }
            '-' | '\u{2212}' | '\u{2013}' => {
                out.push(Tok::Minus);
                i += 1
            }
            '*' | '\u{d7}' | '\u{b7}' | '\u{22c5}' => {
                // `**` is Python power.
                if c == '*' && i + 1 < n && chars[i + 1] == '*' {
                    out.push(Tok::Caret);
                    i += 2;
                } else {
                    out.push(Tok::Star);
                    i += 1
                }
            }
            '/' | '\u{f7}' => {
                out.push(Tok::Slash);
                i += 1
            }
            '^' => {
                out.push(Tok::Caret);
                i += 1
            }
            '_' => {
                out.push(Tok::Under);
                i += 1
            }
            '!' => {
                if i + 1 < n && chars[i + 1] == '=' {
                    out.push(Tok::Rel(RelOp::Ne));
                    i += 2;
                } else {
                    out.push(Tok::Bang);
                    i += 1
                }
            }
            '%' => {
                out.push(Tok::Percent);
                i += 1
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1
            }
            ';' => {
                out.push(Tok::Semi);
                i += 1
            }
            ':' => {
                if i + 1 < n && chars[i + 1] == '=' {
                    out.push(Tok::Rel(RelOp::Eq));
                    i += 2;
                } else {
                    out.push(Tok::Colon);
                    i += 1
                }
            }
            '|' => {
                out.push(Tok::Pipe);
                i += 1
            }
            '&' => {
                out.push(Tok::Amp);
                i += 1
            }
            '=' => {
                out.push(Tok::Rel(RelOp::Eq));
                i += if i + 1 < n && chars[i + 1] == '=' {
                    2
                } else {
                    1
                };
            }
            '<' | '>' => {
                let eq = i + 1 < n && chars[i + 1] == '=';
                out.push(Tok::Rel(match (c, eq) {
                    ('<', true) => RelOp::Le,
                    ('<', false) => RelOp::Lt,
                    (_, true) => RelOp::Ge,
                    _ => RelOp::Gt,
                }));
                i += if eq { 2 } else { 1 };
            }
            '\u{2264}' => {
                out.push(Tok::Rel(RelOp::Le));
                i += 1
            }
            '\u{2265}' => {
                out.push(Tok::Rel(RelOp::Ge));
                i += 1
            }
            '\u{2260}' => {
                out.push(Tok::Rel(RelOp::Ne));
                i += 1
            }
            '\u{2248}' => {
                out.push(Tok::Rel(RelOp::Approx));
                i += 1
            }
            '\u{b1}' => {
                out.push(Tok::PlusMinus);
                i += 1
            }
            '\u{3c0}' => {
                out.push(Tok::Cmd("pi".into()));
                i += 1
            }
            '\u{221e}' => {
                out.push(Tok::Cmd("infty".into()));
                i += 1
            }
            '\u{221a}' => {
                out.push(Tok::Cmd("sqrt".into()));
                i += 1
            }
            '\u{b0}' => {
                out.push(Tok::Degree);
                i += 1
            }
            '\u{b2}' => {
                out.push(Tok::Caret);
                out.push(Tok::Num("2".into(), 0));
                i += 1
            }
            '\u{b3}' => {
                out.push(Tok::Caret);
                out.push(Tok::Num("3".into(), 0));
                i += 1
            }
            '\'' | '"' | '`' | '?' | '\u{20ac}' | '\u{a3}' | '\u{a5}' | '#' | '@' => {
                i += 1;
            }
            _ => {
                // Any other character (letters of other scripts, emoji): a symbol.
                if c.is_alphabetic() {
                    out.push(Tok::Ident(c.to_string()));
                }
                i += 1;
            }
        }
    }
    Ok(out)
}

/// Reads a number at `i`. Thousands separators (`1,234,567`) are merged; a
/// lone `e5` / `E-3` suffix right after the digits is scientific notation.
fn lex_number(chars: &[char], start: usize) -> (Tok, usize) {
    let n = chars.len();
    let mut i = start;
    let mut s = String::new();
    while i < n && chars[i].is_ascii_digit() {
        s.push(chars[i]);
        i += 1;
    }
    // Thousands groups: only when the leading group has 1-3 digits (not a leading 0).
    if !s.is_empty() && s.len() <= 3 && !s.starts_with('0') {
        loop {
            if chars.get(i) == Some(&',')
                && chars.get(i + 1).is_some_and(|c| c.is_ascii_digit())
                && chars.get(i + 2).is_some_and(|c| c.is_ascii_digit())
                && chars.get(i + 3).is_some_and(|c| c.is_ascii_digit())
                && !chars.get(i + 4).is_some_and(|c| c.is_ascii_digit())
            {
                s.extend(&chars[i + 1..i + 4]);
                i += 4;
            } else {
                break;
            }
        }
    }
    if i + 1 < n && chars[i] == '.' && chars[i + 1].is_ascii_digit() {
        s.push('.');
        i += 1;
        while i < n && chars[i].is_ascii_digit() {
            s.push(chars[i]);
            i += 1;
        }
    }
    let mut sci = 0i32;
    if i < n && (chars[i] == 'e' || chars[i] == 'E') {
        let mut j = i + 1;
        let neg = j < n && chars[j] == '-';
        if j < n && (chars[j] == '-' || chars[j] == '+') {
            j += 1;
        }
        let ds = j;
        while j < n && chars[j].is_ascii_digit() && j - ds < 4 {
            j += 1;
        }
        let followed_by_letter = j < n && chars[j].is_ascii_alphabetic();
        if j > ds && !followed_by_letter {
            let v: i32 = chars[ds..j].iter().collect::<String>().parse().unwrap_or(0);
            sci = if neg { -v } else { v };
            i = j;
        }
    }
    (Tok::Num(s, sci), i)
}

/// Reads a balanced `{…}` group starting at `i` (which must be `{`); returns content and index after `}`.
pub(crate) fn brace_group(chars: &[char], i: usize) -> Option<(String, usize)> {
    if chars.get(i) != Some(&'{') {
        return None;
    }
    let mut depth = 0usize;
    let mut j = i;
    while j < chars.len() {
        match chars[j] {
            '\\' => {
                j += 2;
                continue;
            }
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some((chars[i + 1..j].iter().collect(), j + 1));
                }
            }
            _ => {}
        }
        j += 1;
    }
    None
}

fn skip_spaces(chars: &[char], mut i: usize) -> usize {
    while i < chars.len() && chars[i] == ' ' {
        i += 1;
    }
    i
}

fn lex_command(chars: &[char], mut i: usize, out: &mut Vec<Tok>) -> Result<usize, ParseError> {
    let n = chars.len();
    if i >= n {
        return Ok(i);
    }
    let c = chars[i];
    if !c.is_ascii_alphabetic() {
        i += 1;
        match c {
            '{' => out.push(Tok::LSet),
            '}' => out.push(Tok::RSet),
            '\\' => out.push(Tok::Newrow),
            '%' => out.push(Tok::Percent),
            '|' => out.push(Tok::Pipe),
            '&' => out.push(Tok::Amp),
            // Math delimiters, spacing, escaped dollars: nothing.
            '(' | ')' | '[' | ']' | ',' | ';' | ':' | '!' | ' ' | '$' | '>' | '.' | '#' => {}
            _ => {}
        }
        return Ok(i);
    }
    let start = i;
    while i < n && chars[i].is_ascii_alphabetic() {
        i += 1;
    }
    let name: String = chars[start..i].iter().collect();
    let name = name.as_str();
    // `\\quadx` (no space after a spacing command): the spacing, then the letters.
    for sp in ["qquad", "quad"] {
        if let Some(rest) = name.strip_prefix(sp)
            && !rest.is_empty()
        {
            out.push(Tok::Ident(rest.to_string()));
            return Ok(i);
        }
    }
    if SKIP_CMDS.contains(&name) {
        if name == "left" || name == "right" || name.starts_with("big") || name.starts_with("Big") {
            // `\left.` and `\right.` are invisible delimiters.
            if i < n && chars[i] == '.' {
                i += 1;
            }
        }
        if name == "phantom"
            && let Some((_, next)) = brace_group(chars, skip_spaces(chars, i))
        {
            i = next;
        }
        return Ok(i);
    }
    if TEXT_CMDS.contains(&name) {
        let j = skip_spaces(chars, i);
        if let Some((content, next)) = brace_group(chars, j) {
            out.push(Tok::Text(content));
            return Ok(next);
        }
        return Ok(i);
    }
    if TRANSPARENT_CMDS.contains(&name) {
        // Leave the following group to the parser as an ordinary group.
        if name == "operatorname" {
            let j = skip_spaces(chars, i);
            if let Some((content, next)) = brace_group(chars, j) {
                out.push(Tok::Cmd(content.trim().to_string()));
                return Ok(next);
            }
        }
        return Ok(i);
    }
    match name {
        "begin" | "end" => {
            let j = skip_spaces(chars, i);
            if let Some((env, mut next)) = brace_group(chars, j) {
                let env = env.trim().trim_end_matches('*').to_string();
                if name == "begin" {
                    // `\begin{array}{cc}`: skip the column spec.
                    if env == "array" || env == "tabular" {
                        let k = skip_spaces(chars, next);
                        if let Some((_, after)) = brace_group(chars, k) {
                            next = after;
                        }
                    }
                    out.push(Tok::Begin(env));
                } else {
                    out.push(Tok::End(env));
                }
                return Ok(next);
            }
            Ok(i)
        }
        "le" | "leq" | "leqslant" | "leqq" => {
            out.push(Tok::Rel(RelOp::Le));
            Ok(i)
        }
        "ge" | "geq" | "geqslant" | "geqq" => {
            out.push(Tok::Rel(RelOp::Ge));
            Ok(i)
        }
        "lt" => {
            out.push(Tok::Rel(RelOp::Lt));
            Ok(i)
        }
        "gt" => {
            out.push(Tok::Rel(RelOp::Gt));
            Ok(i)
        }
        "ne" | "neq" => {
            out.push(Tok::Rel(RelOp::Ne));
            Ok(i)
        }
        "approx" | "simeq" | "sim" | "cong" | "equiv" => {
            out.push(Tok::Rel(RelOp::Approx));
            Ok(i)
        }
        "in" => {
            out.push(Tok::Rel(RelOp::In));
            Ok(i)
        }
        "pm" | "mp" => {
            out.push(Tok::PlusMinus);
            Ok(i)
        }
        "cdot" | "times" | "ast" | "bullet" => {
            out.push(Tok::Star);
            Ok(i)
        }
        "div" => {
            out.push(Tok::Slash);
            Ok(i)
        }
        "circ" | "degree" | "deg" => {
            out.push(Tok::Degree);
            Ok(i)
        }
        "colon" => {
            out.push(Tok::Colon);
            Ok(i)
        }
        "lvert" | "rvert" | "vert" | "mid" => {
            out.push(Tok::Pipe);
            Ok(i)
        }
        "langle" => {
            out.push(Tok::LParen);
            Ok(i)
        }
        "rangle" => {
            out.push(Tok::RParen);
            Ok(i)
        }
        "lbrace" => {
            out.push(Tok::LSet);
            Ok(i)
        }
        "rbrace" => {
            out.push(Tok::RSet);
            Ok(i)
        }
        "lfloor" | "rfloor" | "lceil" | "rceil" => {
            out.push(Tok::Pipe);
            Ok(i)
        }
        _ => {
            out.push(Tok::Cmd(name.to_string()));
            Ok(i)
        }
    }
}
