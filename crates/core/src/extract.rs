//! Final-answer extraction from free text.
//!
//! Rules are tried in order; the first rule that matches wins, and within a rule
//! the *last* occurrence in the text is used (models restate and correct
//! themselves, the last statement is the answer). Every result carries the byte
//! span of the answer in the input, so callers can highlight it.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::Range;
use std::str::FromStr;

/// One way of finding a final answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExtractRule {
    /// The content of the last `\boxed{…}` or `\fbox{…}` (nested braces allowed).
    Boxed,
    /// The text after the last `####` on its line (GSM8K references).
    Gsm8k,
    /// `Final Answer: …` / `The final answer is …`.
    FinalAnswer,
    /// `The answer is …`, or a line starting with `Answer:` or `A:`.
    AnswerIs,
    /// The last number in the text (integers, decimals, thousands separators, `a/b`).
    LastNumber,
}

impl ExtractRule {
    /// The default order: most explicit first.
    pub const DEFAULT_ORDER: [ExtractRule; 5] = [
        Self::Boxed,
        Self::Gsm8k,
        Self::FinalAnswer,
        Self::AnswerIs,
        Self::LastNumber,
    ];

    /// Name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Boxed => "boxed",
            Self::Gsm8k => "gsm8k",
            Self::FinalAnswer => "final-answer",
            Self::AnswerIs => "answer-is",
            Self::LastNumber => "last-number",
        }
    }

    fn find(self, text: &str) -> Option<Range<usize>> {
        match self {
            Self::Boxed => find_boxed(text),
            Self::Gsm8k => find_gsm8k(text),
            Self::FinalAnswer => find_after_phrase(text, &["final answer is", "final answer:"]),
            Self::AnswerIs => find_after_phrase(text, &["the answer is", "answer is:"])
                .or_else(|| find_answer_line(text)),
            Self::LastNumber => find_last_number(text),
        }
    }
}

impl fmt::Display for ExtractRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ExtractRule {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm = s.trim().to_ascii_lowercase().replace('_', "-");
        Self::DEFAULT_ORDER
            .into_iter()
            .find(|r| r.name() == norm)
            .ok_or_else(|| {
                format!("unknown extraction rule '{s}' (expected boxed, gsm8k, final-answer, answer-is or last-number)")
            })
    }
}

/// An extracted answer and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extracted {
    /// The answer text, trimmed of surrounding `$…$`, `\(…\)`, `**`, and trailing punctuation.
    pub text: String,
    /// Byte range of `text` in the input.
    pub span: Range<usize>,
    /// The rule that matched.
    pub rule: ExtractRule,
}

/// Finds final answers in text by trying [`ExtractRule`]s in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswerExtractor {
    pub rules: Vec<ExtractRule>,
}

impl Default for AnswerExtractor {
    fn default() -> Self {
        Self {
            rules: ExtractRule::DEFAULT_ORDER.to_vec(),
        }
    }
}

impl AnswerExtractor {
    /// An extractor that tries exactly these rules, in this order.
    pub fn new(rules: Vec<ExtractRule>) -> Self {
        Self { rules }
    }

    /// Parses a comma-separated list of rule names.
    pub fn parse_rules(spec: &str) -> Result<Self, String> {
        let rules = spec
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(str::parse)
            .collect::<Result<Vec<_>, _>>()?;
        if rules.is_empty() {
            return Err("no extraction rules given".into());
        }
        Ok(Self { rules })
    }

    /// The first rule's answer, or `None` when no rule matches.
    pub fn extract(&self, text: &str) -> Option<Extracted> {
        self.rules.iter().find_map(|&rule| {
            let raw = rule.find(text)?;
            let span = clean_span(text, raw);
            if span.is_empty() {
                return None;
            }
            Some(Extracted {
                text: text[span.clone()].to_string(),
                span,
                rule,
            })
        })
    }
}

/// Byte range of the content of the last `\boxed{…}` / `\fbox{…}` in `text`
/// (braces matched, escaped braces `\{` `\}` skipped), or of the token after
/// `\boxed ` when no brace follows. Unbalanced braces give `None`.
pub fn find_boxed(text: &str) -> Option<Range<usize>> {
    if !text.contains("\\boxed") && !text.contains("\\fbox") {
        return None;
    }
    // One pass matching every brace, so each occurrence resolves in O(1) and
    // texts with many (or nested, or unbalanced) boxes stay linear.
    let closes = matching_braces(text);
    let mut best: Option<Range<usize>> = None;
    for pat in ["\\boxed", "\\fbox"] {
        let mut upto = text.len();
        while let Some(pos) = text[..upto].rfind(pat) {
            upto = pos;
            let after = pos + pat.len();
            if best.as_ref().is_some_and(|b| b.start > after) {
                break;
            }
            if let Some(r) = boxed_content(text, after, &closes) {
                if best.as_ref().is_none_or(|b| r.start > b.start) {
                    best = Some(r);
                }
                break;
            }
        }
    }
    best
}

/// For every `{` that has a matching `}`, the position of that `}` (escaped braces skipped).
fn matching_braces(text: &str) -> std::collections::HashMap<usize, usize> {
    let bytes = text.as_bytes();
    let mut stack = Vec::new();
    let mut closes = std::collections::HashMap::new();
    let mut j = 0;
    while j < bytes.len() {
        match bytes[j] {
            b'\\' => {
                j += 2;
                continue;
            }
            b'{' => stack.push(j),
            b'}' => {
                if let Some(open) = stack.pop() {
                    closes.insert(open, j);
                }
            }
            _ => {}
        }
        j += 1;
    }
    closes
}

fn boxed_content(
    text: &str,
    after_cmd: usize,
    closes: &std::collections::HashMap<usize, usize>,
) -> Option<Range<usize>> {
    let bytes = text.as_bytes();
    let mut i = after_cmd;
    while i < bytes.len() && bytes[i] == b' ' {
        i += 1;
    }
    if i >= bytes.len() {
        return None;
    }
    if bytes[i] != b'{' {
        // `\boxed 5` form: a single token, only after whitespace.
        if i == after_cmd {
            return None;
        }
        let end = text[i..]
            .find(|c: char| c.is_whitespace() || c == '$')
            .map_or(text.len(), |e| i + e);
        return (end > i).then_some(i..end);
    }
    closes.get(&i).map(|&close| i + 1..close)
}

fn find_gsm8k(text: &str) -> Option<Range<usize>> {
    let pos = text.rfind("####")?;
    let start = pos + 4;
    let end = text[start..].find('\n').map_or(text.len(), |e| start + e);
    Some(start..end)
}

/// The rest of the sentence after the last case-insensitive occurrence of any phrase.
fn find_after_phrase(text: &str, phrases: &[&str]) -> Option<Range<usize>> {
    let lower = text.to_ascii_lowercase();
    let start = phrases
        .iter()
        .filter_map(|p| lower.rfind(p).map(|i| i + p.len()))
        .max()?;
    Some(start..sentence_end(text, start))
}

/// A line that starts with `Answer:` or `A:` (the GPT-3 GSM8K format); the last one wins.
fn find_answer_line(text: &str) -> Option<Range<usize>> {
    let mut found = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let lead = line.len() - trimmed.len();
        let lower = trimmed.to_ascii_lowercase();
        for p in ["answer:", "a:"] {
            if lower.starts_with(p) {
                let start = offset + lead + p.len();
                let end = offset + line.trim_end_matches(['\n', '\r']).len();
                found = Some(start..end.max(start));
                break;
            }
        }
        offset += line.len();
    }
    found
}

/// End of the sentence that starts at `start`: a newline, or a `.` followed by
/// whitespace or the end, outside `$…$` and braces.
fn sentence_end(text: &str, start: usize) -> usize {
    let bytes = text.as_bytes();
    let mut depth = 0i32;
    let mut in_math = false;
    let mut i = start;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => return i,
            b'\\' => {
                i += 2;
                continue;
            }
            b'$' => in_math = !in_math,
            b'{' => depth += 1,
            b'}' => depth -= 1,
            b'.' if depth <= 0 && !in_math => {
                let next = bytes.get(i + 1);
                if next.is_none_or(|c| c.is_ascii_whitespace()) {
                    return i;
                }
            }
            _ => {}
        }
        i += 1;
    }
    text.len()
}

fn find_last_number(text: &str) -> Option<Range<usize>> {
    let bytes = text.as_bytes();
    let mut last = None;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let mut start = i;
            if start > 0 && bytes[start - 1] == b'-' {
                start -= 1;
            }
            let mut j = i;
            loop {
                while j < bytes.len() && bytes[j].is_ascii_digit() {
                    j += 1;
                }
                // a separator continues the number only when a digit follows:
                // `1,000`, `3.5`, `3/4`; not the full stop in `is 5.`
                if j + 1 < bytes.len()
                    && matches!(bytes[j], b',' | b'.' | b'/')
                    && bytes[j + 1].is_ascii_digit()
                {
                    j += 1;
                    continue;
                }
                break;
            }
            last = Some(start..j);
            i = j;
        } else {
            i += 1;
        }
    }
    last
}

/// Shrinks a span to the answer proper: trims whitespace, `$…$`, `\(…\)`, `\[…\]`,
/// `**…**`, and trailing sentence punctuation.
fn clean_span(text: &str, mut r: Range<usize>) -> Range<usize> {
    loop {
        let before = r.clone();
        let s = &text[r.clone()];
        if s.trim().is_empty() {
            return r.start..r.start;
        }
        let lead = s.len() - s.trim_start().len();
        let trail = s.len() - s.trim_end().len();
        r = r.start + lead..r.end - trail;
        let s = &text[r.clone()];
        for suf in [".", ",", ";", ":"] {
            if s.ends_with(suf) && !s.ends_with("\\.") {
                r.end -= suf.len();
                break;
            }
        }
        let s = &text[r.clone()];
        for (open, close) in [
            ("$$", "$$"),
            ("$", "$"),
            ("\\(", "\\)"),
            ("\\[", "\\]"),
            ("**", "**"),
        ] {
            if s.len() >= open.len() + close.len() && s.starts_with(open) && s.ends_with(close) {
                r = r.start + open.len()..r.end - close.len();
                break;
            }
        }
        let s = &text[r.clone()];
        // a lone leading `$` or `**` (e.g. "is $5", "is **5**." after trimming the dot)
        for open in ["$", "**"] {
            if s.starts_with(open) && !s[open.len()..].contains(open) {
                r.start += open.len();
                break;
            }
        }
        let s = &text[r.clone()];
        for close in ["$", "**"] {
            if s.ends_with(close) && !s[..s.len() - close.len()].contains(close) {
                r.end -= close.len();
                break;
            }
        }
        if r == before {
            return r;
        }
    }
}

/// Removes GSM8K calculator annotations `<<48/2=24>>` from text.
pub fn strip_gsm8k_annotations(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find("<<") {
        match rest[open..].find(">>") {
            Some(close) => {
                out.push_str(&rest[..open]);
                rest = &rest[open + close + 2..];
            }
            None => break,
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(text: &str) -> Option<(String, ExtractRule)> {
        AnswerExtractor::default()
            .extract(text)
            .map(|e| (e.text, e.rule))
    }

    #[test]
    fn boxed_nested_and_last() {
        let t = r"First \boxed{1}, then $\boxed{\frac{1}{2}}$.";
        let e = AnswerExtractor::default().extract(t).unwrap();
        assert_eq!(e.text, r"\frac{1}{2}");
        assert_eq!(&t[e.span.clone()], e.text);
        assert_eq!(ex(r"\boxed 5 apples").unwrap().0, "5");
        assert_eq!(ex(r"\fbox{x=2}").unwrap().0, "x=2");
        assert_eq!(ex(r"\boxed{\{1,2\}}").unwrap().0, r"\{1,2\}");
        // unbalanced: falls through to the last number
        assert_eq!(
            ex(r"\boxed{3").unwrap(),
            ("3".into(), ExtractRule::LastNumber)
        );
    }

    #[test]
    fn many_and_unbalanced_boxes() {
        let open = "\\boxed{".repeat(20_000);
        assert_eq!(find_boxed(&open), None);
        let nested = format!("{open}7{}", "}".repeat(20_000));
        assert_eq!(ex(&nested).unwrap().0, "7");
        let many = "\\boxed{1} ".repeat(20_000) + "\\boxed{2} \\boxed{3";
        assert_eq!(ex(&many).unwrap().0, "2");
    }

    #[test]
    fn gsm8k() {
        assert_eq!(
            ex("so 3*4=<<3*4=12>>12\n#### 12").unwrap(),
            ("12".into(), ExtractRule::Gsm8k)
        );
        assert_eq!(ex("#### 1,000\n").unwrap().0, "1,000");
    }

    #[test]
    fn phrases() {
        assert_eq!(
            ex("So the answer is $\\frac{3}{4}$. Done").unwrap(),
            ("\\frac{3}{4}".into(), ExtractRule::AnswerIs)
        );
        assert_eq!(
            ex("Final Answer: The final answer is **42**.").unwrap(),
            ("42".into(), ExtractRule::FinalAnswer)
        );
        assert_eq!(ex("The answer is 3.5.").unwrap().0, "3.5");
        assert_eq!(
            ex("Natalia sold 48.\nA: 72").unwrap(),
            ("72".into(), ExtractRule::AnswerIs)
        );
    }

    #[test]
    fn last_number() {
        assert_eq!(ex("We get 12 then -3.5 and 1,200.").unwrap().0, "1,200");
        assert_eq!(ex("ratio 3/4.").unwrap().0, "3/4");
        assert_eq!(ex("x = -7").unwrap().0, "-7");
        assert!(ex("no digits here").is_none());
    }

    #[test]
    fn rule_order_is_configurable() {
        let e = AnswerExtractor::parse_rules("last-number").unwrap();
        assert_eq!(e.extract("\\boxed{7} or 8").unwrap().text, "8");
        assert!(AnswerExtractor::parse_rules("nope").is_err());
    }

    #[test]
    fn annotations() {
        assert_eq!(
            strip_gsm8k_annotations("48/2 = <<48/2=24>>24 clips <<broken"),
            "48/2 = 24 clips <<broken"
        );
    }

    #[test]
    fn never_panics_on_odd_utf8() {
        for t in [
            "é\\boxed{ü",
            "####",
            "#### \n",
            "The answer is   \n",
            "\\boxed{ }",
            "A: \t",
            "\\boxed",
            "The answer is",
            "A:",
            "ки 5 ки",
            "$",
            "**",
        ] {
            let _ = ex(t);
        }
    }
}
