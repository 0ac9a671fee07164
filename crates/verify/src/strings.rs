//! Literal answers found in text: math-verify's `StringExtractionConfig` (option letters
//! such as `A`…`D` in multiple-choice answers), read by its documented rules.
//!
//! A key is found as a whole token: at the start of the text or after whitespace,
//! optionally in markdown bold (`**B**`), and followed by `.`, `,`, `:`, whitespace or the
//! end (`B.` `B,` `B:` `B ` — not the `B` of `Because`). The places a key may stand, most
//! explicit first:
//!
//! 1. `final answer is` (any case), `:` optional, the key, then `I hope` (math-verify's
//!    prompt format: `The final answer is B. I hope it is correct.`);
//! 2. `final answer` (any case) and within 100 characters on its line ` is` and the key
//!    (no token end needed: `final answer to the question is B`);
//! 3. `answer:` (any case) and within 50 characters on its line the key as a token;
//! 4. `answer` (any case) and within 50 characters the key as a token;
//! 5. without an anchor (`anchorless`): the key as a token at the very start of the text;
//! 6. without an anchor: the key as a token anywhere.
//!
//! The first of these places that occurs decides, and among its occurrences the one that
//! ends last (of those, the one that starts first): `A is wrong, the answer is C` gives `C`.
//! Keys are matched case-sensitively, in the order given; the answer is the key as written,
//! lower-cased when `lowercase` is set (math-verify's parsed form).

/// How literal answers are read: math-verify's `StringExtractionConfig` fields.
#[derive(Debug, Clone, Copy)]
pub struct StringTargets<'a> {
    /// The answers to look for (`("A", "B", "C", "D")` in math-verify); empty ones are
    /// ignored.
    pub strings: &'a [String],
    /// Also look for a key without an anchor word (`try_extract_without_anchor`).
    pub anchorless: bool,
    /// Give the answer lower-cased (`lowercase`).
    pub lowercase: bool,
}

/// A literal answer found in text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StringAnswer {
    /// The answer: the key, lower-cased when asked.
    pub parsed: String,
    /// The key as it stands in the text.
    pub extracted: String,
    /// Which place found it (1 to 6 of the module docs, as math-verify's priorities
    /// 0, 50, 100, 200, 250, 300): lower is more explicit.
    pub priority: u32,
    /// Byte range of the whole match (anchor included) in the text given.
    pub start: usize,
    pub end: usize,
}

/// The priorities of the six places, as math-verify numbers them.
pub const PRIORITIES: [u32; 6] = [0, 50, 100, 200, 250, 300];

/// The literal answer of `text` (see the module docs), or `None` when no key stands in
/// any allowed place.
///
/// ```
/// use stepwise_verify::strings::{StringTargets, extract_string};
/// let keys: Vec<String> = ["A", "B", "C", "D"].iter().map(|s| s.to_string()).collect();
/// let t = StringTargets { strings: &keys, anchorless: true, lowercase: true };
/// assert_eq!(extract_string("A is wrong, so the answer is C.", &t).unwrap().parsed, "c");
/// assert_eq!(extract_string("Because of this", &t), None);
/// ```
pub fn extract_string(text: &str, t: &StringTargets<'_>) -> Option<StringAnswer> {
    // The caps of every extraction: only the text's tail is read (answers come last).
    let full = text.len();
    let text = crate::extract::tail(text, crate::limits::MAX_TEXT_BYTES);
    let skipped = full - text.len();
    let keys: Vec<&str> = t
        .strings
        .iter()
        .map(String::as_str)
        .filter(|k| !k.is_empty())
        .collect();
    if keys.is_empty() {
        return None;
    }
    let places: [(u32, Place); 6] = [
        (0, Place::FinalIsHope),
        (50, Place::FinalIs),
        (100, Place::AnswerColon),
        (200, Place::Answer),
        (250, Place::Start),
        (300, Place::Anywhere),
    ];
    for (priority, place) in places {
        if matches!(place, Place::Start | Place::Anywhere) && !t.anchorless {
            continue;
        }
        // Every non-overlapping match, left to right; the one ending last wins.
        let mut best: Option<(usize, usize, &str)> = None;
        let mut pos = 0;
        while pos <= text.len() {
            match place.match_at(text, pos, &keys) {
                Some((end, key)) if end > pos => {
                    if best.is_none_or(|(_, e, _)| end > e) {
                        best = Some((pos, end, key));
                    }
                    pos = end;
                }
                _ => pos = next_char(text, pos),
            }
            if place == Place::Start {
                break;
            }
        }
        if let Some((start, end, key)) = best {
            return Some(StringAnswer {
                parsed: if t.lowercase {
                    key.to_lowercase()
                } else {
                    key.to_string()
                },
                extracted: key.to_string(),
                priority,
                start: start + skipped,
                end: end + skipped,
            });
        }
    }
    None
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    FinalIsHope,
    FinalIs,
    AnswerColon,
    Answer,
    Start,
    Anywhere,
}

impl Place {
    /// The end of a match of this place starting exactly at `pos`, and its key.
    fn match_at<'k>(self, text: &str, pos: usize, keys: &[&'k str]) -> Option<(usize, &'k str)> {
        match self {
            Place::FinalIsHope => {
                let mut j = starts_ci(text, pos, "final answer is")?;
                if text[j..].starts_with(':') {
                    j += 1;
                }
                j = skip_ws(text, j);
                keys.iter().find_map(|&k| {
                    let e = text[j..].starts_with(k).then_some(j + k.len())?;
                    let dots: &[usize] = if text[e..].starts_with('.') {
                        &[1, 0]
                    } else {
                        &[0]
                    };
                    dots.iter().find_map(|&d| {
                        let e = e + d;
                        let ws = text[e..].chars().next().filter(|c| is_ws(*c));
                        let spaces: Vec<usize> = match ws {
                            Some(c) => vec![c.len_utf8(), 0],
                            None => vec![0],
                        };
                        spaces.into_iter().find_map(|s| {
                            text[e + s..]
                                .starts_with("I hope")
                                .then_some((e + s + "I hope".len(), k))
                        })
                    })
                })
            }
            Place::FinalIs => {
                let j = starts_ci(text, pos, "final answer")?;
                gap(text, j, 100).find_map(|q| {
                    let r = skip_ws(text, q);
                    if r == q || !text[r..].starts_with("is") {
                        return None;
                    }
                    let mut r = r + 2;
                    if text[r..].starts_with(':') {
                        r += 1;
                    }
                    let r = skip_ws(text, r);
                    keys.iter()
                        .find(|k| text[r..].starts_with(**k))
                        .map(|k| (r + k.len(), *k))
                })
            }
            Place::AnswerColon | Place::Answer => {
                let mut j = starts_ci(text, pos, "answer")?;
                if self == Place::AnswerColon {
                    j = text[j..].starts_with(':').then_some(j + 1)?;
                }
                gap(text, j, 50).find_map(|q| token_at(text, q, keys))
            }
            Place::Start => {
                if pos != 0 {
                    return None;
                }
                bold_key_suffix(text, 0, keys)
            }
            Place::Anywhere => token_at(text, pos, keys),
        }
    }
}

/// A key as a token starting at `q`: the text start or one whitespace character, `**`
/// optional, the key and a token end.
fn token_at<'k>(text: &str, q: usize, keys: &[&'k str]) -> Option<(usize, &'k str)> {
    if q == 0
        && let Some(m) = bold_key_suffix(text, 0, keys)
    {
        return Some(m);
    }
    let c = text[q..].chars().next().filter(|c| is_ws(*c))?;
    bold_key_suffix(text, q + c.len_utf8(), keys)
}

/// `**` optional, a key, then a token end, from `j`.
fn bold_key_suffix<'k>(text: &str, j: usize, keys: &[&'k str]) -> Option<(usize, &'k str)> {
    let starts: &[usize] = if text[j..].starts_with("**") {
        &[2, 0]
    } else {
        &[0]
    };
    starts.iter().find_map(|&b| {
        let j = j + b;
        keys.iter().find_map(|&k| {
            let e = text[j..].starts_with(k).then_some(j + k.len())?;
            token_end(text, e).map(|e| (e, k))
        })
    })
}

/// The end of a token end at `e`: `**` optional, then `.`, `,`, `:`, one whitespace
/// character or the end of the text.
fn token_end(text: &str, e: usize) -> Option<usize> {
    let one = |e: usize| match text[e..].chars().next() {
        None => Some(e),
        Some(c) if matches!(c, '.' | ',' | ':') || is_ws(c) => Some(e + c.len_utf8()),
        Some(_) => None,
    };
    if text[e..].starts_with("**")
        && let Some(end) = one(e + 2)
    {
        return Some(end);
    }
    one(e)
}

/// The positions `j`, `j + 1 char`, … up to `max` characters on, none past a line break.
fn gap(text: &str, j: usize, max: usize) -> impl Iterator<Item = usize> + '_ {
    let mut q = Some(j);
    let mut n = 0;
    std::iter::from_fn(move || {
        let cur = q?;
        q = match text[cur..].chars().next() {
            Some(c) if c != '\n' && n < max => {
                n += 1;
                Some(cur + c.len_utf8())
            }
            _ => None,
        };
        Some(cur)
    })
}

/// The end of `pat` (ASCII) at `pos`, in any case.
fn starts_ci(text: &str, pos: usize, pat: &str) -> Option<usize> {
    let b = text.as_bytes().get(pos..pos + pat.len())?;
    b.eq_ignore_ascii_case(pat.as_bytes())
        .then_some(pos + pat.len())
}

fn skip_ws(text: &str, mut j: usize) -> usize {
    while let Some(c) = text[j..].chars().next().filter(|c| is_ws(*c)) {
        j += c.len_utf8();
    }
    j
}

/// Python's `\s` for text: Unicode whitespace and the separators U+001C to U+001F.
fn is_ws(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

fn next_char(text: &str, pos: usize) -> usize {
    text[pos..]
        .chars()
        .next()
        .map_or(text.len() + 1, |c| pos + c.len_utf8())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn abcd() -> Vec<String> {
        ["A", "B", "C", "D"].iter().map(|s| s.to_string()).collect()
    }

    fn find(text: &str, anchorless: bool, lowercase: bool) -> Option<(String, String, u32)> {
        let keys = abcd();
        let t = StringTargets {
            strings: &keys,
            anchorless,
            lowercase,
        };
        extract_string(text, &t).map(|a| (a.parsed, a.extracted, a.priority))
    }

    fn parsed(text: &str) -> Option<String> {
        find(text, true, true).map(|a| a.0)
    }

    #[test]
    fn math_verify_s_own_cases() {
        // tests/test_string_extraction.py of math-verify 0.9.0, as [parsed, extracted].
        assert_eq!(
            find("The answer is A.", true, false),
            Some(("A".into(), "A".into(), 200))
        );
        assert_eq!(
            find("The answer is A.", true, true),
            Some(("a".into(), "A".into(), 200))
        );
        assert_eq!(parsed("Final answer is B"), Some("b".into()));
        assert_eq!(parsed("No valid answer here"), None);
        assert_eq!(
            find("A. Because B is not valid", true, true),
            Some(("a".into(), "A".into(), 250))
        );
        assert_eq!(parsed("Because B is valid"), Some("b".into()));
        let u = vec!["U".to_string()];
        let t = StringTargets {
            strings: &u,
            anchorless: true,
            lowercase: true,
        };
        assert_eq!(
            extract_string("The answer is U.", &t).map(|a| a.parsed),
            Some("u".into())
        );
    }

    #[test]
    fn places_in_order_and_the_last_occurrence_wins() {
        assert_eq!(
            find("The final answer is C. I hope it is correct.", true, true).map(|a| a.2),
            Some(0)
        );
        assert_eq!(
            find("My final answer to this is D", true, true),
            Some(("d".into(), "D".into(), 50))
        );
        assert_eq!(
            find("Answer: (see above) B", true, true).map(|a| a.2),
            Some(100)
        );
        // Two plain tokens: the one ending last.
        assert_eq!(parsed("I think A or C"), Some("c".into()));
        // …but a token at the very start comes first.
        assert_eq!(parsed("A or C"), Some("a".into()));
        // An anchored answer beats a later plain token.
        assert_eq!(parsed("The answer is B, not D"), Some("b".into()));
        assert_eq!(parsed("**C**"), Some("c".into()));
        assert_eq!(parsed("so it is **D**."), Some("d".into()));
    }

    #[test]
    fn keys_are_tokens_and_case_sensitive() {
        assert_eq!(parsed("Because"), None);
        assert_eq!(parsed("a b c"), None);
        assert_eq!(parsed("(C)"), None);
        assert_eq!(parsed("xA yB"), None);
        // A line break is whitespace before a token, but the 50-character window after
        // `answer` stays on its line.
        assert_eq!(find("answer\nB", false, true).map(|a| a.2), Some(200));
        assert_eq!(find("answer xx\ny B", false, true), None);
        assert_eq!(find("answer xx\ny B", true, true).map(|a| a.2), Some(300));
        assert_eq!(find("answer: B", false, true).map(|a| a.2), Some(100));
    }

    #[test]
    fn without_anchor_only_anchored_places() {
        assert_eq!(find("B", false, true), None);
        assert_eq!(find("I pick B", false, true), None);
        assert_eq!(
            find("The answer is B", false, false),
            Some(("B".into(), "B".into(), 200))
        );
    }

    #[test]
    fn windows_are_characters_and_bounded() {
        let far = format!("answer{} B", "x".repeat(60));
        assert_eq!(find(&far, false, true), None);
        let near = format!("answer{} B", "é".repeat(40));
        assert_eq!(find(&near, false, true).map(|a| a.0), Some("b".into()));
        assert_eq!(parsed(""), None);
        let none: Vec<String> = vec![String::new()];
        let t = StringTargets {
            strings: &none,
            anchorless: true,
            lowercase: true,
        };
        assert_eq!(extract_string("anything", &t), None);
    }
}
