//! Finding the answer inside a longer text (a solution, a sentence, a LaTeX snippet).

use crate::limits::MAX_TEXT_BYTES;

/// The text after the last answer phrase, and where the phrase starts.
struct Phrase {
    text: String,
    start: usize,
}

/// The last `Final answer: …`, `The answer is …`, `#### …` or `A: …` line remainder.
fn find_phrase(text: &str) -> Option<Phrase> {
    let lower = text.to_ascii_lowercase();
    let mut best: Option<(usize, usize)> = None;
    let mut consider = |start: usize, content: usize| {
        if best.is_none_or(|(s, _)| start > s) {
            best = Some((start, content));
        }
    };
    for pat in [
        "final answer is",
        "final answer:",
        "the answer is",
        "answer is:",
        "####",
    ] {
        if let Some(pos) = lower.rfind(pat) {
            consider(pos, pos + pat.len());
        }
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

/// Answer strings to try: first the LaTeX reading (the last of `\\boxed{…}` and
/// `final answer is …`, else the last math environment), then the plain reading
/// (the answer phrase or whole text when it is a formula, else the last number).
/// A comparison succeeds when any gold candidate matches any predicted one.
pub fn candidates(text: &str) -> Vec<(String, Source)> {
    let text = tail(text, MAX_TEXT_BYTES);
    let mut out: Vec<(String, Source)> = Vec::new();
    let bx = boxed(text);
    let phrase = find_phrase(text);
    // After a phrase the answer is the first math environment (`is $5$. Note: $x$ …`).
    let phrase_math = phrase.as_ref().and_then(|p| first_math_joined(&p.text));
    let latex = match (&bx, &phrase) {
        (Some((b, bstart)), Some(p)) if p.start > *bstart => match &phrase_math {
            Some(m) => Some((m.clone(), Source::Phrase)),
            None => Some((b.clone(), Source::Boxed)),
        },
        (Some((b, _)), _) => Some((b.clone(), Source::Boxed)),
        (None, Some(_)) => phrase_math.map(|m| (m, Source::Phrase)),
        (None, None) => None,
    };
    // With an answer phrase (`A: 221`), math before it is working, not the answer
    // (`$125.0 + $96.0` is money, and not the final answer either).
    let latex = match (&latex, &phrase) {
        (None, None) => math_envs(text).map(|m| (m, Source::Math)),
        _ => latex,
    };
    if let Some(l) = latex {
        out.push(l);
    }
    let plain = match &phrase {
        Some(p) if !is_prose(&p.text) => Some((p.text.clone(), Source::Phrase)),
        Some(p) => last_number(&p.text).map(|n| (n, Source::Phrase)),
        None if !is_prose(text) => Some((text.trim().to_string(), Source::Whole)),
        None => last_number(text).map(|n| (n, Source::LastNumber)),
    };
    if let Some(p) = plain
        && !out.iter().any(|(c, _)| *c == p.0)
    {
        out.push(p);
    }
    if out.is_empty() {
        out.push((text.trim().to_string(), Source::Whole));
    }
    out
}

/// The last `max` bytes of `s`, on a character boundary.
fn tail(s: &str, max: usize) -> &str {
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
fn boxed(text: &str) -> Option<(String, usize)> {
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
    Some((parts.join(", "), bx[last].0))
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
/// without any LaTeX.
fn is_prose(text: &str) -> bool {
    if text.len() > 300 {
        return true;
    }
    // Drop the contents of text-like groups: `5 \\mbox{ inches}` is a formula with a unit.
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
    let b = stripped.as_bytes();
    let mut words = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_alphabetic() {
            let start = i;
            while i < b.len() && b[i].is_ascii_alphabetic() {
                i += 1;
            }
            let w = &stripped[start..i];
            let command = start > 0 && b[start - 1] == b'\\';
            if !command && w.len() >= 3 && !KNOWN_WORDS.contains(&w.to_ascii_lowercase().as_str()) {
                words += 1;
            }
        } else {
            i += 1;
        }
    }
    words >= 2 || (words == 1 && !text.contains('\\'))
}

/// The last number in prose that is not glued to a preceding letter (`AZYUK2A` has none).
fn last_number(text: &str) -> Option<String> {
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
    best.map(|(s, e)| text[s..e].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(first("the number is not 10 which is 1,000.99€"), "1,000.99");
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
