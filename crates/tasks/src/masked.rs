//! Masked spans of a text corpus, and their reward.
//!
//! The task of *PretrainZero: Reinforcement Active Pretraining* (2025): a span of a
//! corpus passage is masked, the model is asked for it, and the reward is whether the
//! answer matches the span. Spans are chosen to be informative: a number, a name
//! (capitalized word not at the start of a sentence, with the capitalized words after
//! it) or a long content word, never a stopword. The reward is 1 for an exact match and
//! also 1 for a match after normalization (lower case, punctuation and the articles
//! a/an/the removed, spaces collapsed: the SQuAD normalization); [`reward`] says which.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use stepwise_core::Problem;

/// The mask shown in the passage.
pub const MASK: &str = "[MASK]";

const STOPWORDS: [&str; 40] = [
    "the", "a", "an", "and", "or", "but", "of", "to", "in", "on", "at", "for", "with", "by",
    "from", "is", "are", "was", "were", "be", "been", "it", "its", "this", "that", "these",
    "those", "he", "she", "they", "we", "you", "i", "his", "her", "their", "our", "as", "not",
    "which",
];

/// A masked passage: `text` with `span` replaced by [`MASK`] at byte `start`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaskedSpan {
    pub masked: String,
    pub span: String,
    pub start: usize,
}

fn informative_spans(text: &str) -> Vec<(usize, usize)> {
    // words with their byte ranges
    let mut words: Vec<(usize, usize)> = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        let part = c.is_alphanumeric() || c == '\'' || c == '-';
        match (part, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                words.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        words.push((s, text.len()));
    }
    let sentence_start = |w: usize| -> bool {
        let (s, _) = words[w];
        let before = text[..s].trim_end();
        before.is_empty() || before.ends_with(['.', '!', '?', '"', '\n'])
    };
    let mut out = Vec::new();
    let mut w = 0;
    while w < words.len() {
        let (s, e) = words[w];
        let word = &text[s..e];
        let lower = word.to_lowercase();
        let capital = word.chars().next().is_some_and(char::is_uppercase);
        if word
            .chars()
            .all(|c| c.is_ascii_digit() || c == ',' || c == '.')
            && word.chars().any(|c| c.is_ascii_digit())
        {
            out.push((s, e));
        } else if capital && !sentence_start(w) && !STOPWORDS.contains(&lower.as_str()) {
            // a name: this capitalized word and those right after it
            let mut end = w;
            while end + 1 < words.len()
                && text[words[end + 1].0..words[end + 1].1]
                    .chars()
                    .next()
                    .is_some_and(char::is_uppercase)
                && text[words[end].1..words[end + 1].0].trim().is_empty()
            {
                end += 1;
            }
            out.push((s, words[end].1));
            w = end;
        } else if word.chars().count() >= 8 && !STOPWORDS.contains(&lower.as_str()) {
            out.push((s, e));
        }
        w += 1;
    }
    out
}

/// Masks one informative span of `text`, drawn with `rng`; `None` when the text has none.
pub fn mask_span(text: &str, rng: &mut impl Rng) -> Option<MaskedSpan> {
    let spans = informative_spans(text);
    if spans.is_empty() {
        return None;
    }
    let (s, e) = spans[rng.gen_range(0..spans.len())];
    Some(MaskedSpan {
        masked: format!("{}{MASK}{}", &text[..s], &text[e..]),
        span: text[s..e].to_string(),
        start: s,
    })
}

/// Metadata key of the [`MaskedSpan`].
pub const METADATA_KEY: &str = "masked";

/// The question of a masked passage.
pub fn question(m: &MaskedSpan) -> String {
    format!(
        "In the passage below one span of text was replaced by {MASK}.\n\n{}\n\nWhat is the masked span? End with: The answer is <span>.",
        m.masked
    )
}

/// Masked-span problems from passages (`(id, text)`), one span per passage, seeded per
/// passage id (a passage's problem does not depend on the others).
pub fn problems<'a>(
    passages: impl IntoIterator<Item = (String, String)> + 'a,
    seed: u64,
) -> impl Iterator<Item = Problem> + 'a {
    passages.into_iter().filter_map(move |(id, text)| {
        let h = id.bytes().fold(seed ^ 0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        let mut rng = ChaCha8Rng::seed_from_u64(h);
        let m = mask_span(&text, &mut rng)?;
        let mut p = Problem::new(format!("masked:{id}"), question(&m));
        p.gold = Some(m.span.clone());
        p.metadata.insert(
            crate::check::TASK_KEY.into(),
            crate::Task::MaskedSpan.name().into(),
        );
        if let Ok(v) = serde_json::to_value(&m) {
            p.metadata.insert(METADATA_KEY.into(), v);
        }
        Some(p)
    })
}

/// SQuAD's answer normalization: lower case, punctuation and articles removed, spaces
/// collapsed.
pub fn normalize(s: &str) -> String {
    let lower: String = s
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c.is_whitespace() {
                c
            } else {
                ' '
            }
        })
        .collect();
    lower
        .split_whitespace()
        .filter(|w| !matches!(*w, "a" | "an" | "the"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The answer a response gives: after the last "The answer is" / "Answer:", or in the
/// last `\boxed{…}` / `<answer>…</answer>`, else the whole response; trimmed of quotes,
/// a final period and spaces.
pub fn extract(response: &str) -> &str {
    let lower = response.to_ascii_lowercase();
    let mut s = response;
    if let Some(i) = lower.rfind("<answer>") {
        let rest = &response[i + "<answer>".len()..];
        s = rest.split("</answer>").next().unwrap_or(rest);
    } else if let Some(i) = lower.rfind("\\boxed{") {
        let rest = &response[i + "\\boxed{".len()..];
        s = rest.split('}').next().unwrap_or(rest);
    } else if let Some(i) = ["the answer is", "answer:"]
        .iter()
        .filter_map(|m| lower.rfind(m).map(|i| i + m.len()))
        .max()
    {
        s = response[i..].lines().next().unwrap_or("");
    }
    let s = s.trim().trim_start_matches(':').trim();
    let s = s.strip_suffix('.').unwrap_or(s).trim();
    s.trim_matches(|c| matches!(c, '"' | '\'' | '“' | '”' | '*'))
        .trim()
}

/// How an answer matches the span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpanMatch {
    /// Equal as written.
    pub exact: bool,
    /// Equal after [`normalize`] (implied by `exact`).
    pub normalized: bool,
}

/// Compares the answer of a response with the masked span.
pub fn reward(response: &str, span: &str) -> SpanMatch {
    let a = extract(response);
    let exact = a == span.trim();
    let na = normalize(a);
    SpanMatch {
        exact,
        normalized: exact || (!na.is_empty() && na == normalize(span)),
    }
}

/// The reward of the `masked-span` preset: 1 for a normalized (or exact) match, else 0.
pub fn score(response: &str, span: &str) -> f64 {
    if reward(response, span).normalized {
        1.0
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewards_by_hand() {
        let r = |resp: &str, span: &str| reward(resp, span);
        assert_eq!(
            r("The answer is Marie Curie.", "Marie Curie"),
            SpanMatch {
                exact: true,
                normalized: true
            }
        );
        assert_eq!(
            r("the answer is: marie curie", "Marie Curie"),
            SpanMatch {
                exact: false,
                normalized: true
            }
        );
        assert_eq!(
            r("\\boxed{The Eiffel Tower}", "Eiffel Tower"),
            SpanMatch {
                exact: false,
                normalized: true
            }
        );
        assert_eq!(
            r("<answer>1,889</answer>", "1889"),
            SpanMatch {
                exact: false,
                normalized: false
            },
            "a grouping comma is not normalized away"
        );
        assert_eq!(
            r("The answer is Pierre Curie.", "Marie Curie"),
            SpanMatch {
                exact: false,
                normalized: false
            }
        );
        assert!(
            !r("The answer is .", "a").normalized,
            "an empty answer never matches"
        );
        assert_eq!(score("Answer: \"Paris\"", "Paris"), 1.0);
        assert_eq!(score("London", "Paris"), 0.0);
    }

    #[test]
    fn masks_informative_spans() {
        let text =
            "The tower was finished in 1889. It was designed by Gustave Eiffel for the fair.";
        let spans: Vec<&str> = informative_spans(text)
            .into_iter()
            .map(|(s, e)| &text[s..e])
            .collect();
        assert_eq!(
            spans,
            vec!["finished", "1889", "designed", "Gustave Eiffel"]
        );
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let m = mask_span(text, &mut rng).unwrap();
        assert_eq!(m.masked.replacen(MASK, &m.span, 1), text);
        assert!(mask_span("and the of it", &mut rng).is_none());
    }
}
