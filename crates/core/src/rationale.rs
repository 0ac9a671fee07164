use crate::extract::{AnswerExtractor, Extracted};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// One unit of a rationale.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Step {
    /// 0-based position in the rationale (as in ProcessBench).
    pub index: usize,
    /// The step's text, without the delimiter around it.
    pub text: String,
}

/// An ordered list of steps and the final answer they lead to.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Rationale {
    pub steps: Vec<Step>,
    /// The final answer as extracted from the text (not normalized).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
}

impl Rationale {
    /// Builds a rationale from step texts, re-indexing them from 0.
    pub fn from_steps<I, S>(steps: I, answer: Option<String>) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let steps = steps
            .into_iter()
            .enumerate()
            .map(|(index, t)| Step {
                index,
                text: t.into(),
            })
            .collect();
        Self { steps, answer }
    }

    /// Splits `text` into steps and extracts its final answer.
    pub fn parse(text: &str, splitter: &StepSplitter, extractor: &AnswerExtractor) -> Self {
        let answer = extractor.extract(text).map(|e: Extracted| e.text);
        Self {
            steps: splitter.split(text),
            answer,
        }
    }

    /// Joins the steps back into text with the splitter's delimiter.
    pub fn to_text(&self, splitter: &StepSplitter) -> String {
        splitter.join(&self.steps)
    }

    /// Step texts, in order.
    pub fn step_texts(&self) -> Vec<&str> {
        self.steps.iter().map(|s| s.text.as_str()).collect()
    }

    /// Number of steps.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// True when there are no steps.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

/// Where one step ends and the next begins.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Delimiter {
    /// One or more blank lines (the default). Joined with `"\n\n"`.
    #[default]
    BlankLine,
    /// A new step starts at each line that begins with `Step k:` (also `**Step k:**`,
    /// `## Step k.`). Text before the first such line is a step of its own. Joined with `"\n"`.
    StepLabel,
    /// Every non-empty line is a step. Joined with `"\n"`.
    Line,
    /// A literal separator string (e.g. `" ки\n"` or `"<step>"`).
    Custom(String),
}

impl FromStr for Delimiter {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "blank" | "blank-line" | "blankline" | "paragraph" => Ok(Self::BlankLine),
            "step" | "step-label" | "steplabel" => Ok(Self::StepLabel),
            "line" | "newline" => Ok(Self::Line),
            other => match other.strip_prefix("custom:") {
                Some(sep) if !sep.is_empty() => Ok(Self::Custom(unescape(sep))),
                _ => Err(format!(
                    "unknown step delimiter '{other}' (expected blank, step, line or custom:SEP)"
                )),
            },
        }
    }
}

impl fmt::Display for Delimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BlankLine => f.write_str("blank"),
            Self::StepLabel => f.write_str("step"),
            Self::Line => f.write_str("line"),
            Self::Custom(s) => write!(f, "custom:{}", s.replace('\n', "\\n").replace('\t', "\\t")),
        }
    }
}

fn unescape(s: &str) -> String {
    s.replace("\\n", "\n").replace("\\t", "\t")
}

/// Splits rationales into [`Step`]s and joins them back.
///
/// Invariant (property-tested): for any list of non-empty, trimmed step texts
/// that do not themselves contain the delimiter, `split(join(steps)) == steps`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StepSplitter {
    pub delimiter: Delimiter,
}

impl StepSplitter {
    /// A splitter for the given delimiter.
    pub fn new(delimiter: Delimiter) -> Self {
        Self { delimiter }
    }

    /// The text placed between two steps by [`StepSplitter::join`].
    pub fn separator(&self) -> &str {
        match &self.delimiter {
            Delimiter::BlankLine => "\n\n",
            Delimiter::StepLabel | Delimiter::Line => "\n",
            Delimiter::Custom(s) => s,
        }
    }

    /// Splits text into trimmed, non-empty steps, indexed from 0.
    ///
    /// Line-based delimiters first normalize line endings (`\r\n` and a lone `\r`
    /// both become `\n`), so a step never keeps a stray carriage return and
    /// splitting the joined steps gives the same steps again.
    pub fn split(&self, text: &str) -> Vec<Step> {
        let normalized;
        let text = match &self.delimiter {
            Delimiter::Custom(_) => text,
            _ if text.contains('\r') => {
                normalized = text.replace("\r\n", "\n").replace('\r', "\n");
                normalized.as_str()
            }
            _ => text,
        };
        let raw: Vec<String> = match &self.delimiter {
            Delimiter::BlankLine => split_blank_lines(text),
            Delimiter::Line => text.lines().map(str::to_string).collect(),
            Delimiter::StepLabel => split_step_labels(text),
            Delimiter::Custom(sep) => text.split(sep.as_str()).map(str::to_string).collect(),
        };
        raw.into_iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .enumerate()
            .map(|(index, text)| Step { index, text })
            .collect()
    }

    /// How many steps [`split`](Self::split) makes of `text`, without building them:
    /// lets a server refuse text with too many steps before spending memory on them.
    pub fn count(&self, text: &str) -> usize {
        let normalized;
        let text = match &self.delimiter {
            Delimiter::Custom(sep) => {
                return text
                    .split(sep.as_str())
                    .filter(|s| !s.trim().is_empty())
                    .count();
            }
            _ if text.contains('\r') => {
                normalized = text.replace("\r\n", "\n").replace('\r', "\n");
                normalized.as_str()
            }
            _ => text,
        };
        let mut n = 0;
        match &self.delimiter {
            Delimiter::Line => n = text.lines().filter(|l| !l.trim().is_empty()).count(),
            Delimiter::BlankLine => {
                let mut in_step = false;
                for line in text.lines() {
                    let blank = line.trim().is_empty();
                    if !blank && !in_step {
                        n += 1;
                    }
                    in_step = !blank;
                }
            }
            Delimiter::StepLabel => {
                // a step is pushed when a label follows content, and at the end
                let mut content = false;
                for line in text.lines() {
                    if is_step_label(line) && content {
                        n += 1;
                        content = false;
                    }
                    content |= !line.trim().is_empty();
                }
                n += usize::from(content);
            }
            Delimiter::Custom(_) => {}
        }
        n
    }

    /// Joins steps with the delimiter's separator.
    pub fn join(&self, steps: &[Step]) -> String {
        let sep = self.separator();
        let mut out = String::new();
        for (i, s) in steps.iter().enumerate() {
            if i > 0 {
                out.push_str(sep);
            }
            out.push_str(&s.text);
        }
        out
    }

    /// Joins plain step texts.
    pub fn join_texts<S: AsRef<str>>(&self, steps: &[S]) -> String {
        let sep = self.separator();
        let mut out = String::new();
        for (i, s) in steps.iter().enumerate() {
            if i > 0 {
                out.push_str(sep);
            }
            out.push_str(s.as_ref());
        }
        out
    }
}

fn split_blank_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
        } else {
            if !cur.is_empty() {
                cur.push('\n');
            }
            cur.push_str(line);
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// True when a line opens a new step: `Step 3:`, `**Step 3**:`, `## Step 3.`, `step 3 -`.
pub(crate) fn is_step_label(line: &str) -> bool {
    let t = line.trim_start().trim_start_matches(['#', '*', ' ']);
    let Some(rest) = t.get(..4) else { return false };
    if !rest.eq_ignore_ascii_case("step") {
        return false;
    }
    let rest = t[4..].trim_start();
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return false;
    }
    let after = rest[digits..].trim_start_matches(['*', ' ']);
    matches!(
        after.chars().next(),
        Some(':' | '.' | ')' | '-' | '—') | None
    )
}

fn split_step_labels(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        if is_step_label(line) && !cur.trim().is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push('\n');
        }
        cur.push_str(line);
    }
    if !cur.trim().is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(steps: &[Step]) -> Vec<&str> {
        steps.iter().map(|s| s.text.as_str()).collect()
    }

    #[test]
    fn blank_lines() {
        let s = StepSplitter::default();
        let steps = s.split("a\nb\n\n\n  \nc\n\n");
        assert_eq!(texts(&steps), ["a\nb", "c"]);
        assert_eq!(steps[1].index, 1);
        assert_eq!(s.join(&steps), "a\nb\n\nc");
    }

    #[test]
    fn step_labels() {
        let s = StepSplitter::new(Delimiter::StepLabel);
        let text =
            "Let's think.\nStep 1: add 2 and 3.\nso 5\n**Step 2:** double it: 10\n## Step 3. Done";
        let steps = s.split(text);
        assert_eq!(
            texts(&steps),
            [
                "Let's think.",
                "Step 1: add 2 and 3.\nso 5",
                "**Step 2:** double it: 10",
                "## Step 3. Done"
            ]
        );
        assert!(!is_step_label("Steps are hard"));
        assert!(!is_step_label("Stepping 1: x"));
        assert!(is_step_label("step 12 - go"));
    }

    #[test]
    fn carriage_returns_are_line_ends() {
        // Found by proptest: a lone `\r` before `\r\n` used to stay inside a step,
        // so split(join(split(t))) differed from split(t).
        for d in [Delimiter::BlankLine, Delimiter::Line, Delimiter::StepLabel] {
            let s = StepSplitter::new(d);
            let once = s.split("¡\r\r\n¡");
            assert!(once.iter().all(|st| !st.text.contains('\r')));
            assert_eq!(s.split(&s.join(&once)), once);
        }
        let s = StepSplitter::default();
        assert_eq!(texts(&s.split("a\r\n\r\nb\rc")), ["a", "b\nc"]);
    }

    #[test]
    fn lines_and_custom() {
        let s = StepSplitter::new(Delimiter::Line);
        assert_eq!(texts(&s.split("a\n\nb\n c ")), ["a", "b", "c"]);
        let s = StepSplitter::new("custom: ки\\n".parse().unwrap());
        assert_eq!(texts(&s.split("x = 1 ки\ny = 2 ки\n")), ["x = 1", "y = 2"]);
    }

    #[test]
    fn delimiter_names_round_trip() {
        for d in [
            Delimiter::BlankLine,
            Delimiter::StepLabel,
            Delimiter::Line,
            Delimiter::Custom("<step>".into()),
            Delimiter::Custom(" ки\n".into()),
        ] {
            assert_eq!(d.to_string().parse::<Delimiter>().unwrap(), d);
        }
        assert!("custom:".parse::<Delimiter>().is_err());
    }
}
