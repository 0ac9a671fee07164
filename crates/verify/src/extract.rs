//! Finding the answer inside a longer text (a solution, a sentence, a LaTeX snippet).

use crate::limits::MAX_TEXT_BYTES;
use serde::{Deserialize, Serialize};

/// The text after the last answer phrase, and where the phrase starts.
struct Phrase {
    text: String,
    start: usize,
}

/// The last `Final answer: …`, `The answer is …`, `#### …` or `A: …` line remainder.
fn find_phrase(text: &str) -> Option<Phrase> {
    let mut best: Option<(usize, usize)> = None;
    let mut consider = |start: usize, content: usize| {
        if best.is_none_or(|(s, _)| start > s) {
            best = Some((start, content));
        }
    };
    // The last of these phrases, in any case: one backward scan that stops at the first
    // hit (most answers are near the end), without a lower-cased copy of the text.
    const PHRASES: [&str; 5] = [
        "final answer is",
        "final answer:",
        "the answer is",
        "answer is:",
        "####",
    ];
    let b = text.as_bytes();
    if let Some((pos, len)) = (0..b.len()).rev().find_map(|i| {
        let rest = &b[i..];
        PHRASES.iter().find_map(|p| {
            (rest.len() >= p.len() && rest[..p.len()].eq_ignore_ascii_case(p.as_bytes()))
                .then_some((i, p.len()))
        })
    }) {
        consider(pos, pos + len);
    }
    // A line that starts with `A:` or `Answer:` (GPT-3 GSM8K format).
    let mut line_start = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        let indent = line.len() - t.len();
        for pat in ["A:", "Answer:", "answer:"] {
            if t.starts_with(pat) {
                consider(line_start + indent, line_start + indent + pat.len());
            }
        }
        line_start += line.len();
    }
    let (start, content) = best?;
    let rest = &text[content..];
    let end = rest.find('\n').unwrap_or(rest.len());
    let mut ans = rest[..end].trim();
    // `The answer is 5. Next…`: stop at the sentence end (a period followed by a space).
    if let Some(p) = ans.find(". ")
        && !ans[..p].contains('$')
    {
        ans = &ans[..p];
    }
    let ans = ans
        .trim_end_matches(['.', ',', ';', ':', ' '])
        .trim_start_matches(':')
        .trim();
    (!ans.is_empty()).then(|| Phrase {
        text: ans.to_string(),
        start,
    })
}

/// Where an answer string came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The content of `\boxed{…}` (adjacent boxes joined).
    Boxed,
    /// After `Final answer:`, `The answer is`, `A:`, `####`.
    Phrase,
    /// The last `$…$`, `$$…$$`, `\(…\)`, `\[…\]` (adjacent ones joined).
    Math,
    /// The whole text.
    Whole,
    /// The last number in prose.
    LastNumber,
}

/// Answer strings to try, most explicit first; see the crate docs for the rule.
///
/// 1. A LaTeX reading: the last `\\boxed{…}` (adjacent boxes joined), or the first math
///    environment after the last answer phrase (`final answer is $…$`) when the phrase
///    comes after the box, else the last math environment of the text.
/// 2. The plain reading: the answer phrase, or the whole text, when it is a formula. A
///    formula whose boxes are values of separate equations (`y_1 = \\boxed{…}` and
///    `y_2 = \\boxed{…}`) is read whole first: the last box is only part of its answer.
/// 3. In prose (a phrase's remainder or the whole text that reads as sentences), a number
///    that comes after the last math environment is the answer instead of that
///    environment (`… $d = \\frac{90}{n}$ … there are 12 sequences`): the last statement
///    wins. With no LaTeX reading and no formula, prose gives its last number.
///
/// A candidate whose surrounding clause negates it (`not 72`, `anything but $72$`,
/// `72 is wrong`) is dropped, and nothing replaces it. A gold answer matches when any of
/// its candidates does; a prediction is judged on its first candidate that parses.
pub fn candidates(text: &str) -> Vec<(String, Source)> {
    let unbolded = strip_bold(tail(text, MAX_TEXT_BYTES));
    let text = unbolded.as_ref();
    let mut out: Vec<(String, Source)> = Vec::new();
    let bx = boxed(text);
    let phrase = find_phrase(text);
    let prose = is_prose(text);
    // After a phrase the answer is the first math environment (`is $5$. Note: $x$ …`),
    // or a number of prose after it (`The volume of $ABCH$ is 120`).
    let phrase_answer = phrase.as_ref().and_then(|p| phrase_answer(&p.text));
    let latex = match (&bx, &phrase) {
        (Some(b), Some(p)) if p.start > b.last_start => match &phrase_answer {
            Some(m) => Some(m.clone()),
            None => boxed_answer(text, b),
        },
        (Some(b), _) => boxed_answer(text, b),
        (None, Some(_)) => phrase_answer.clone(),
        (None, None) => None,
    };
    // With an answer phrase (`A: 221`), math before it is working, not the answer
    // (`$125.0 + $96.0` is money, and not the final answer either).
    let latex = match (&latex, &phrase) {
        (None, None) if bx.is_none() => math_answer(text, prose),
        _ => latex,
    };
    let plain = match &phrase {
        Some(p) if !is_prose(&p.text) => Some((p.text.clone(), Source::Phrase)),
        Some(p) if latex.is_none() && bx.is_none() => {
            prose_number(&p.text).map(|n| (n, Source::Phrase))
        }
        Some(_) => None,
        None if !prose => Some((text.trim().to_string(), Source::Whole)),
        None if latex.is_none() && bx.is_none() => {
            prose_number(text).map(|n| (n, Source::LastNumber))
        }
        None => None,
    };
    // Boxes that are the values of separate equations (`y_1 = \\boxed{a}` and
    // `y_2 = \\boxed{b}`, not joined as a list) are parts of one answer: a formula holding
    // them is read whole first, so the last box alone is not taken for all of it.
    let whole_first = matches!(&plain, Some((_, Source::Whole)))
        && bx.as_ref().is_some_and(|b| {
            let all = boxes(text);
            all.len() >= 2 && all[0].0 < b.start && outside_boxes(text, &all).contains('=')
        });
    let (first, second) = if whole_first {
        (plain, latex)
    } else {
        (latex, plain)
    };
    for c in [first, second].into_iter().flatten() {
        if !out.iter().any(|(t, _)| *t == c.0) {
            out.push(c);
        }
    }
    // Nothing found (or only negated answers): the whole text, read as it is
    // (`not 72` reads as the product n·o·t·72, which equals no number).
    if out.is_empty() {
        out.push((text.trim().to_string(), Source::Whole));
    }
    out
}

/// Which kinds of answer a side may be read as: math-verify's extraction targets
/// (`LatexExtractionConfig`, `ExprExtractionConfig`). LaTeX answers are those in
/// `\\boxed{}` or a math environment (`$…$`, `\\[…\\]`); plain-expression answers are
/// the answer phrase, the whole text read as a formula and the last number of prose. With
/// only LaTeX, `Answer $ \n 9 \n $` (no valid inline math) has no answer at all.
///
/// Each kind may also be read without an anchor (math-verify's `try_extract_without_anchor`,
/// on by default): a box or an answer phrase (`final answer is`, `Answer:`) is an anchor;
/// the last math environment of text without one (LaTeX), the whole text and the last
/// number of prose (plain expressions) are not. With `latex_anchorless: false`,
/// `$x = 3$` alone has no LaTeX answer, `The answer is $3$` still has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Targets {
    pub latex: bool,
    pub expr: bool,
    /// LaTeX answers may stand without an anchor.
    #[serde(default = "yes")]
    pub latex_anchorless: bool,
    /// Plain-expression answers may stand without an anchor.
    #[serde(default = "yes")]
    pub expr_anchorless: bool,
}

fn yes() -> bool {
    true
}

impl Default for Targets {
    fn default() -> Self {
        Self {
            latex: true,
            expr: true,
            latex_anchorless: true,
            expr_anchorless: true,
        }
    }
}

impl Targets {
    /// Whether an answer found at `source` is one these targets read.
    pub fn allows(self, source: Source) -> bool {
        match source {
            Source::Boxed => self.latex,
            Source::Math => self.latex && self.latex_anchorless,
            Source::Phrase => self.expr,
            Source::Whole | Source::LastNumber => self.expr && self.expr_anchorless,
        }
    }
}

/// The candidates of `text` that `targets` allow, in [`candidates`] order.
pub fn candidates_for(text: &str, targets: Targets) -> Vec<(String, Source)> {
    let t = tail(text, MAX_TEXT_BYTES);
    // Found only when a phrase's answer has to be placed (never with both targets).
    let envs = std::cell::OnceCell::new();
    // An answer phrase's answer written in math (`final answer is $14{,}916$`) is LaTeX.
    let in_math = |c: &str| {
        envs.get_or_init(|| find_math(t))
            .iter()
            .any(|&(_, a, b, _)| t[a..b].contains(c.trim()) && !c.trim().is_empty())
    };
    let mut out: Vec<(String, Source)> = candidates(text)
        .into_iter()
        .filter(|(c, s)| {
            targets.allows(*s) || (targets.latex && *s == Source::Phrase && in_math(c))
        })
        .collect();
    // A LaTeX-only side without a box or math environment in its candidates may still
    // hold one that a plain reading came first for.
    if targets.latex
        && !targets.expr
        && out.is_empty()
        && let Some(b) = boxed(tail(text, MAX_TEXT_BYTES))
    {
        out.push((b.content, Source::Boxed));
    }
    out
}

/// The `\\boxed{}`s of one math environment as one set, `{a, b}`, when it holds two or
/// more: math-verify reads several boxed answers of one LaTeX match as the set of them
/// (`$\\boxed{35} ++ \\boxed{4}$` is `{35, 4}`; boxes apart in prose are not one answer).
/// Offered for trusted gold answers only; a prediction is judged by its own rule.
pub fn boxes_as_set(text: &str) -> Option<String> {
    let text = tail(text, MAX_TEXT_BYTES);
    find_math(text).iter().rev().find_map(|&(_, a, b, _)| {
        let env = &text[a..b];
        let all = boxes(env);
        (all.len() >= 2 && all.len() <= 64).then(|| {
            let parts: Vec<&str> = all.iter().map(|&(_, x, y)| env[x..y].trim()).collect();
            format!("\\{{{}\\}}", parts.join(", "))
        })
    })
}

/// Markdown bold (`**73**`, `__73__`) taken off, so an emphasised answer reads as itself
/// (math-verify read `**73**` as nothing). A `**` counts as bold only where it opens
/// after a space, a line start or `(`/`:` and closes before a space, punctuation or the
/// end, around text without `*` or a line break: `2**3**4` (Python powers) is left alone.
fn strip_bold(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains("**") && !text.contains("__") {
        return std::borrow::Cow::Borrowed(text);
    }
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut last = 0;
    while i + 1 < b.len() {
        let m = b[i];
        let opens = (m == b'*' || m == b'_')
            && b[i + 1] == m
            && (i == 0 || matches!(b[i - 1], b' ' | b'\n' | b'\t' | b'(' | b':'))
            && b.get(i + 2)
                .is_some_and(|c| !c.is_ascii_whitespace() && *c != m);
        if opens {
            let inner_start = i + 2;
            let close = text[inner_start..]
                .find(['\n', m as char])
                .map(|k| inner_start + k);
            if let Some(c) = close
                && b[c] == m
                && b.get(c + 1) == Some(&m)
                && b.get(c + 2)
                    .is_none_or(|n| !n.is_ascii_alphanumeric() && *n != m)
                && !b[c - 1].is_ascii_whitespace()
            {
                out.push_str(&text[last..i]);
                out.push_str(&text[inner_start..c]);
                i = c + 2;
                last = i;
                continue;
            }
        }
        i += 1;
    }
    if last == 0 {
        return std::borrow::Cow::Borrowed(text);
    }
    out.push_str(&text[last..]);
    std::borrow::Cow::Owned(out)
}

/// The boxed answer, unless the clause around the boxes negates it (`not \\boxed{72}`).
fn boxed_answer(text: &str, b: &Boxed) -> Option<(String, Source)> {
    (!negated_near(text, b.start, b.end)).then(|| (b.content.clone(), Source::Boxed))
}

/// The answer of a phrase's remainder: its first math environment (joined with the ones
/// right after it), or the number of prose after that environment; `None` when the
/// phrase negates it (`The answer is not $72$`).
fn phrase_answer(p: &str) -> Option<(String, Source)> {
    let envs = find_math(p);
    let first = envs.first()?;
    if is_prose(p)
        && let Some((s, e)) = stated_number_span(p)
        && s >= envs.last().map_or(0, |l| l.3)
        && !negated_near(p, s, e)
    {
        return Some((p[s..e].to_string(), Source::Phrase));
    }
    let m = first_math_joined(p)?;
    (!negated_near(p, first.0, first.3)).then_some((m, Source::Phrase))
}

/// The answer of text with math environments and no box or phrase: the last ones
/// (joined), or in prose a number after them; `None` when the clause negates it.
fn math_answer(text: &str, prose: bool) -> Option<(String, Source)> {
    let envs = find_math(text);
    let last = envs.last()?;
    if prose
        && let Some((s, e)) = stated_number_span(text)
        && s >= last.3
    {
        return (!negated_near(text, s, e)).then(|| (text[s..e].to_string(), Source::LastNumber));
    }
    let m = math_envs(text)?;
    (!negated_near(text, last.0, last.3)).then_some((m, Source::Math))
}

/// The text outside the `\\boxed{…}` groups `all` (from [`boxes`]).
fn outside_boxes(text: &str, all: &[(usize, usize, usize)]) -> String {
    let mut out = String::new();
    let mut at = 0;
    for &(start, _, close) in all {
        out.push_str(&text[at..start]);
        at = close + 1;
    }
    out.push_str(&text[at..]);
    out
}

/// The last `max` bytes of `s`, on a character boundary.
pub(crate) fn tail(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// Content ranges of the outermost `\boxed{…}` / `\fbox{…}` groups, left to right (linear).
fn boxes(text: &str) -> Vec<(usize, usize, usize)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        // Jump to the next backslash (a memchr): most of a solution is not a command.
        match text[i..].find('\\') {
            Some(k) => i += k,
            None => break,
        }
        let rest = &b[i..];
        let cmd = if rest.starts_with(b"\\boxed") {
            6
        } else if rest.starts_with(b"\\fbox") {
            5
        } else {
            i += 1;
            continue;
        };
        let mut j = i + cmd;
        while j < b.len() && b[j] == b' ' {
            j += 1;
        }
        if j >= b.len() || b[j] != b'{' {
            i += cmd;
            continue;
        }
        let open = j;
        let mut depth = 0usize;
        let mut end = None;
        while j < b.len() {
            match b[j] {
                b'\\' => {
                    j += 2;
                    continue;
                }
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(j);
                        break;
                    }
                }
                _ => {}
            }
            j += 1;
        }
        match end {
            Some(e) => {
                out.push((i, open + 1, e));
                i = e + 1;
            }
            None => break,
        }
    }
    out
}

/// The last box, joined with the boxes just before it when only separators lie between.
fn boxed(text: &str) -> Option<Boxed> {
    let bx = boxes(text);
    let last = bx.len().checked_sub(1)?;
    let mut parts = vec![&text[bx[last].1..bx[last].2]];
    let mut k = last;
    while k > 0 {
        let gap = &text[bx[k - 1].2 + 1..bx[k].0];
        // `\boxed{a}, or \boxed{b}` offers alternatives, not a list: keep the last.
        let alternatives = gap
            .split(|c: char| !c.is_ascii_alphabetic())
            .any(|w| w.eq_ignore_ascii_case("or"));
        if !is_separator_gap(gap) || alternatives {
            break;
        }
        parts.push(&text[bx[k - 1].1..bx[k - 1].2]);
        k -= 1;
    }
    parts.reverse();
    Some(Boxed {
        content: parts.join(", "),
        start: bx[k].0,
        last_start: bx[last].0,
        end: bx[last].2 + 1,
    })
}

/// The answer in boxes: the contents joined, and where the boxes lie.
struct Boxed {
    content: String,
    /// Start of the first joined box.
    start: usize,
    /// Start of the last box.
    last_start: usize,
    /// End of the last box (after its `}`).
    end: usize,
}

/// True when `gap` holds only list separators: commas, `and`, `or`, spacing, `\text{…}`, math delimiters.
fn is_separator_gap(gap: &str) -> bool {
    if gap.len() > 200 {
        return false;
    }
    let mut s = String::new();
    let mut rest = gap;
    // Drop `\text{…}` groups entirely.
    while let Some(pos) = rest.find("\\text") {
        s.push_str(&rest[..pos]);
        let after = &rest[pos + 5..];
        match after.find('}') {
            Some(close) if after.trim_start().starts_with('{') => rest = &after[close + 1..],
            _ => {
                rest = after;
            }
        }
    }
    s.push_str(rest);
    let mut t = s.replace("\\qquad", " ").replace("\\quad", " ");
    for pat in [
        "\\(", "\\)", "\\[", "\\]", "\\,", "\\;", "\\ ", "$", ",", ";", "&", "\\\\",
    ] {
        t = t.replace(pat, " ");
    }
    t.split_whitespace()
        .all(|w| matches!(w.to_ascii_lowercase().as_str(), "and" | "or" | "."))
}

/// The last math environment, joined with immediately preceding ones separated only by separators.
fn math_envs(text: &str) -> Option<String> {
    let envs = find_math(text);
    let last = envs.len().checked_sub(1)?;
    let mut parts = vec![&text[envs[last].1..envs[last].2]];
    let mut k = last;
    while k > 0 {
        let gap = &text[envs[k - 1].3..envs[k].0];
        if !is_separator_gap(gap) || gap.trim().is_empty() && !gap.contains(',') {
            break;
        }
        parts.push(&text[envs[k - 1].1..envs[k - 1].2]);
        k -= 1;
    }
    parts.reverse();
    let joined = parts.join(", ");
    (!joined.trim().is_empty()).then_some(joined)
}

/// The first math environment, joined with the ones right after it separated only by separators.
fn first_math_joined(text: &str) -> Option<String> {
    let envs = find_math(text);
    let first = envs.first()?;
    let mut parts = vec![&text[first.1..first.2]];
    for k in 1..envs.len() {
        let gap = &text[envs[k - 1].3..envs[k].0];
        if !is_separator_gap(gap) || gap.trim().is_empty() && !gap.contains(',') {
            break;
        }
        parts.push(&text[envs[k].1..envs[k].2]);
    }
    let joined = parts.join(", ");
    (!joined.trim().is_empty()).then_some(joined)
}

/// (start, content_start, content_end, end) of each math environment, left to right.
fn find_math(text: &str) -> Vec<(usize, usize, usize, usize)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    // Per closing delimiter: openings before this index cannot close (keeps the scan linear).
    let mut fail_until = [0usize; 4];
    let mut i = 0;
    while i < b.len() {
        let (open_len, close): (usize, &str) = if b[i] == b'\\' && i + 1 < b.len() {
            match b[i + 1] {
                b'(' => (2, "\\)"),
                b'[' => (2, "\\]"),
                _ => {
                    i += 2;
                    continue;
                }
            }
        } else if b[i] == b'$' {
            if i + 1 < b.len() && b[i + 1] == b'$' {
                (2, "$$")
            } else {
                (1, "$")
            }
        } else {
            i += 1;
            continue;
        };
        let kind = match close {
            "\\)" => 0,
            "\\]" => 1,
            "$$" => 2,
            _ => 3,
        };
        let cs = i + open_len;
        if i < fail_until[kind] {
            i = cs;
            continue;
        }
        // Find the closing delimiter, skipping escapes.
        let mut j = cs;
        let mut found = None;
        while j < b.len() {
            if b[j] == b'\\' {
                if b[j..].starts_with(close.as_bytes()) {
                    found = Some(j);
                    break;
                }
                j += 2;
                continue;
            }
            if close == "$" && b[j] == b'\n' {
                break;
            }
            if b[j..].starts_with(close.as_bytes()) {
                found = Some(j);
                break;
            }
            j += 1;
        }
        match found {
            Some(ce) => {
                out.push((i, cs, ce, ce + close.len()));
                i = ce + close.len();
            }
            None => {
                fail_until[kind] = j.max(cs);
                i = cs;
            }
        }
    }
    out
}

const KNOWN_WORDS: &[&str] = &[
    "and",
    "or",
    "pi",
    "sqrt",
    "sin",
    "cos",
    "tan",
    "log",
    "ln",
    "exp",
    "abs",
    "pct",
    "percent",
    "percentage",
    "infinity",
    "inf",
    "frac",
    "dfrac",
    "text",
    "cdot",
    "times",
    "left",
    "right",
    "boxed",
    "begin",
    "end",
    "pmatrix",
    "bmatrix",
    "infty",
    "cup",
    "leq",
    "geq",
    "neq",
    "circ",
    "mathrm",
    "mathbf",
    "textbf",
    "quad",
    "sec",
    "csc",
    "cot",
    "arcsin",
    "arccos",
    "arctan",
];

/// True when the text reads as sentences rather than a formula: two or more
/// plain words (outside `\\text{…}` groups, not command names), or one word in text
/// without any LaTeX. Length alone never makes a formula prose: a 300×300 matrix or a
/// formula nested past the parser's depth cap is still a formula (and is parsed whole).
fn is_prose(text: &str) -> bool {
    // Drop the contents of text-like groups: `5 \\mbox{ inches}` is a formula with a unit.
    // (Text without a backslash has none, and is read as it is, without a copy.)
    if !text.contains('\\') {
        return count_words(text, 1) >= 1;
    }
    let mut stripped = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('\\') {
        stripped.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        let name_len = after
            .bytes()
            .take_while(|c| c.is_ascii_alphabetic())
            .count();
        let name = &after[..name_len];
        stripped.push('\\');
        stripped.push_str(name);
        rest = &after[name_len..];
        if matches!(
            name,
            "text"
                | "textbf"
                | "textit"
                | "textnormal"
                | "textrm"
                | "mbox"
                | "mathrm"
                | "operatorname"
        ) && rest.starts_with('{')
            && let Some(close) = rest.find('}')
        {
            rest = &rest[close + 1..];
        }
    }
    stripped.push_str(rest);
    count_words(&stripped, 2) >= 2
}

/// The plain words of `text` (runs of three or more ASCII letters that are neither a
/// command name after `\\` nor one of [`KNOWN_WORDS`], in any case), counted up to `at_most`.
/// [`is_prose`] runs on most of every side it reads: no allocation, and it stops counting
/// once the answer is known.
fn count_words(text: &str, at_most: usize) -> usize {
    let b = text.as_bytes();
    let mut words = 0;
    let mut i = 0;
    while i < b.len() && words < at_most {
        if b[i].is_ascii_alphabetic() {
            let start = i;
            while i < b.len() && b[i].is_ascii_alphabetic() {
                i += 1;
            }
            let w = &text[start..i];
            let command = start > 0 && b[start - 1] == b'\\';
            if !command && w.len() >= 3 && !KNOWN_WORDS.iter().any(|k| k.eq_ignore_ascii_case(w)) {
                words += 1;
            }
        } else {
            i += 1;
        }
    }
    words
}

/// Words that deny the answer next to them (`not 72`, `never 72`, `\\neq 72`). Words
/// that only turn a sentence (`no,`, `but`, `wrong,` before a correction) are not here:
/// `No, the answer is \\boxed{2}` states 2.
const NEGATIONS: &[&str] = &[
    "not",
    "nor",
    "neither",
    "never",
    "none",
    "cannot",
    "except",
    "unless",
    "without",
    "besides",
    "excluding",
    "neq",
    "ne",
];

/// Phrases that deny the answer after them (`anything but 72`).
const NEGATING_PHRASES: &[&str] = &[
    "anything but",
    "all but",
    "everything but",
    "other than",
    "rather than",
    "instead of",
];

/// Words that deny the answer before them (`72 is wrong`).
const REJECTIONS: &[&str] = &["wrong", "incorrect", "false", "impossible"];

/// True when `clause` denies the answer it is next to. Before the answer: a word of
/// [`NEGATIONS`], a phrase of [`NEGATING_PHRASES`], a contraction with `n't` (`isn't`,
/// `can't`), one of `≠`, `!=`, `=/=`, `<>`, `¬`. After it (`after`): `not`, `n't` or a word
/// of [`REJECTIONS`].
fn negates(clause: &str, after: bool) -> bool {
    if ["n't", "n’t", "N'T"].iter().any(|s| clause.contains(s)) {
        return true;
    }
    // The clause's words, lower-cased and joined by single spaces: one allocation, and
    // none for a clause without letters (most clauses next to an answer are `$`, `.`, `=`).
    if !clause.bytes().any(|c| c.is_ascii_alphabetic()) {
        return !after
            && ["≠", "!=", "=/=", "<>", "¬"]
                .iter()
                .any(|s| clause.contains(s));
    }
    let mut phrase = String::with_capacity(clause.len());
    for w in clause
        .split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| !w.is_empty())
    {
        if !phrase.is_empty() {
            phrase.push(' ');
        }
        phrase.push_str(w);
    }
    phrase.make_ascii_lowercase();
    let mut words = phrase.split(' ');
    if after {
        // After the answer only a rejection of it counts (`72 is not it`, `72 is wrong`):
        // `\\boxed{3} with neither` states 3.
        return words.any(|w| w == "not" || REJECTIONS.contains(&w));
    }
    if ["≠", "!=", "=/=", "<>", "¬"]
        .iter()
        .any(|s| clause.contains(s))
    {
        return true;
    }
    words.any(|w| NEGATIONS.contains(&w))
        || NEGATING_PHRASES.iter().any(|p| {
            // The phrase alone, at the start (`{p} …`) or after a space (`… {p}…`).
            (phrase
                .strip_prefix(p)
                .is_some_and(|r| r.is_empty() || r.starts_with(' ')))
                || phrase
                    .bytes()
                    .enumerate()
                    .any(|(i, c)| c == b' ' && phrase[i + 1..].starts_with(p))
        })
}

/// The number a piece of prose states as its answer: its last number, when the text is
/// prose (two or more plain words, or one word and no LaTeX) and the clause holding that number (from the sentence or line
/// before it to the end) neither negates nor hedges. `so the total is 5 apples` gives
/// `5`; `not 72`, `5 or maybe 6 apples`, `72 is not it` and a formula give `None`. The one
/// rule by which a number is taken out of surrounding text: [`crate::verify_text`] and the
/// reward server's `last-number` extraction use it too.
pub fn prose_number(text: &str) -> Option<String> {
    let text = tail(text, MAX_TEXT_BYTES);
    if !is_prose(text) {
        return None;
    }
    let (start, end) = stated_number_span(text)?;
    (!negated_near(text, start, end)).then(|| text[start..end].to_string())
}

/// The span of the last number of prose when it stands alone: not an operand of an
/// inline formula (`the total is ((3))+0*(48)` states no number: its 48 is a fragment of
/// a formula, and the formula is not the 48). `= 24` and `is 24 apples` stand alone.
fn stated_number_span(text: &str) -> Option<(usize, usize)> {
    let (s, e) = last_number_span(text)?;
    let before = text[..s].trim_end();
    let after = text[e..].trim_start();
    let operand_before = before
        .chars()
        .next_back()
        .is_some_and(|c| "+-*/^([{×·÷_|\\".contains(c))
        || before
            .rfind('\\')
            .is_some_and(|i| before[i + 1..].bytes().all(|b| b.is_ascii_alphabetic()));
    let operand_after = after
        .chars()
        .next()
        .is_some_and(|c| "+-*/^)]}×·÷!_|=<>\\".contains(c));
    (!operand_before && !operand_after).then_some((s, e))
}

/// True when the clause around `text[start..end]` (an answer found in `text`, as byte
/// offsets) negates it: the words before it (from
/// the sentence or line start, a comma, or the last digit before it: `not 10 which is
/// 1,000.99` negates the 10 only) or after it (to the end of its sentence or line; the
/// `>` of a tag such as `</think>` ends a clause too). A `.` ends a
/// sentence only before a space, a `$`, a `\\` or the end, so `1.5` is not a boundary.
pub fn negated_near(text: &str, start: usize, end: usize) -> bool {
    let b = text.as_bytes();
    let (start, end) = (start.min(b.len()), end.min(b.len()));
    let start = start.min(end);
    let boundary = |i: usize| {
        matches!(b[i], b'\n' | b'!' | b'?' | b';' | b'>')
            || (b[i] == b'.'
                && b.get(i + 1)
                    .is_none_or(|c| c.is_ascii_whitespace() || matches!(c, b'$' | b'\\')))
    };
    // Before the answer a comma ends the clause too (`I was wrong, it is 5`).
    let before = (0..start)
        .rev()
        .find(|&i| boundary(i) || b[i] == b',' || b[i].is_ascii_digit())
        .map_or(0, |i| i + 1);
    let after = (end..b.len()).find(|&i| boundary(i)).unwrap_or(b.len());
    let slice = |from: usize, to: usize| text.get(from..to).unwrap_or("");
    negates(slice(before, start), false) || negates(slice(end, after), true)
}

/// Byte range of the last number in prose that is not glued to a preceding letter
/// (`AZYUK2A` has none).
fn last_number_span(text: &str) -> Option<(usize, usize)> {
    let b = text.as_bytes();
    let mut best: Option<(usize, usize)> = None;
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            let start = i;
            while i < b.len()
                && (b[i].is_ascii_digit()
                    || ((b[i] == b',' || b[i] == b'.' || b[i] == b'/')
                        && i + 1 < b.len()
                        && b[i + 1].is_ascii_digit()))
            {
                i += 1;
            }
            let glued = start > 0 && b[start - 1].is_ascii_alphabetic();
            let glued_after =
                i < b.len() && b[i].is_ascii_alphabetic() && b[i].is_ascii_uppercase();
            if !glued && !glued_after {
                let neg = start > 0 && b[start - 1] == b'-';
                best = Some((if neg { start - 1 } else { start }, i));
            }
        } else {
            i += 1;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_lists_are_lower_case_and_prose_ignores_case() {
        // `count_words` and `negates` compare against these in lower case.
        for w in KNOWN_WORDS.iter().chain(NEGATIONS).chain(REJECTIONS) {
            assert_eq!(*w, w.to_ascii_lowercase(), "{w}");
        }
        assert!(is_prose("the cat"));
        assert!(!is_prose("AND OR"));
        assert!(!is_prose("x + y"));
        assert!(is_prose("5 apples"));
        assert!(!is_prose("5 \\mbox{ inches}"));
        assert!(negates("it is NOT", true));
        assert!(negates("anything but", false));
        assert!(negates("I said anything but", false));
        assert!(!negates("anything butter", false));
        assert!(!negates("$ = ", false));
        assert!(negates("\u{2260}", false));
    }

    #[test]
    fn phrases_are_found_last_in_any_case() {
        assert_eq!(
            find_phrase("The Answer Is 5").map(|p| p.text),
            Some("5".into())
        );
        assert_eq!(
            find_phrase("the answer is 4. FINAL ANSWER: 6").map(|p| p.text),
            Some("6".into())
        );
        assert_eq!(find_phrase("#### 12").map(|p| p.text), Some("12".into()));
        assert!(find_phrase("no phrase here").is_none());
    }

    fn first(t: &str) -> String {
        candidates(t)[0].0.clone()
    }

    #[test]
    fn boxes_join_over_separators_only() {
        assert_eq!(first("$\\boxed{1}\\boxed{2}$"), "1, 2");
        assert_eq!(first("\\boxed{1} and \\boxed{2}"), "1, 2");
        assert_eq!(first("\\boxed{1} no no no \\boxed{2}"), "2");
        assert_eq!(
            first("\\boxed{(3, 3)} \\text{ for part (a) and } \\boxed{(1, 1)}"),
            "(3, 3), (1, 1)"
        );
    }

    #[test]
    fn math_environments() {
        assert_eq!(first("Answer \\( (9+1) \\)"), " (9+1) ");
        assert_eq!(first("$1$ and $2$ and $3$"), "1, 2, 3");
        assert_eq!(
            first("Answer $ \\frac{1}{2} \\$ = \\frac{10}{9} $"),
            " \\frac{1}{2} \\$ = \\frac{10}{9} "
        );
    }

    #[test]
    fn prose_numbers() {
        assert_eq!(first("the number is 10 which is 1,000.99€"), "1,000.99");
        // Negated or hedged prose states no number.
        for t in [
            "the number is not 10",
            "isn't 72",
            "anything but 72",
            "72 is wrong",
            "so it is not $72$",
            "The answer is not $72$.",
            "The answer is not 72.",
        ] {
            assert!(
                candidates(t).iter().all(|(_, s)| *s != Source::LastNumber),
                "{t}"
            );
        }
        assert_eq!(first("7,425,000"), "7,425,000");
        assert!(candidates("AZYUK2A").iter().all(|(c, _)| c != "2"));
        assert_eq!(first("Natalia sold 48.\nA: 72"), "72");
        assert_eq!(
            first("The final answer is $10,455$. I hope it is correct."),
            "10,455"
        );
        assert_eq!(first("x #### 18"), "18");
        assert_eq!(
            first("profit is $125.0 + $96.0 = $<<125+96=221.0>>221.0.\nA: 221"),
            "221"
        );
        // Whitespace-only remainders (a stepwise-core extractor crash found by fuzzing) are fine.
        let _ = candidates(" {\\{1,\\-{0e#######  {0e######## ");
        let _ = candidates("#### $ $");
    }

    #[test]
    fn hostile_text_is_bounded() {
        let s = "\\boxed{".repeat(100_000);
        let _ = candidates(&s);
        let s = "$".repeat(1_000_000);
        let _ = candidates(&s);
    }
}
