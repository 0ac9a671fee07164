//! Where each step of a `/v1/step_rewards` item lies in its text, and (with a tokenizer)
//! at which token it ends, so a trainer can place each step's reward on a token.
//!
//! The text the offsets index is the item's `response` when it was split by the server,
//! and the item's `steps` joined by the delimiter's separator (`"\n\n"` for `blank-line`,
//! `"\n"` for `step-label` and `line`, the literal separator for `custom:SEP`) when the
//! steps came pre-split. Character offsets count Unicode scalar values (Python's `str`
//! indices: `text[char_start:char_end]` is the step); byte offsets index the UTF-8 text.
//! All ends are exclusive. `token_end` counts the tokens of that same text, encoded alone
//! without special tokens, that start before the step's end: the step's last token is
//! `token_end - 1`.

use std::borrow::Cow;
use std::path::Path;
use stepwise_core::{Delimiter, StepSplitter};

/// A step's place in the item's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub byte_start: usize,
    pub byte_end: usize,
    pub char_start: usize,
    pub char_end: usize,
}

/// Spans of the steps [`StepSplitter::split`] makes of `text`, in order, over `text` as
/// given (line-ending normalization is undone: a step of a `\r\n` text spans its `\r`s).
/// An error only if a step cannot be found, which would be a splitter bug.
pub fn split_spans(text: &str, splitter: &StepSplitter) -> Result<Vec<(usize, usize)>, String> {
    if let Delimiter::Custom(sep) = &splitter.delimiter {
        // The pieces between separators, trimmed, as `split` makes them.
        let mut out = Vec::new();
        let mut at = 0;
        for piece in text.split(sep.as_str()) {
            let lead = piece.len() - piece.trim_start().len();
            let t = piece.trim();
            if !t.is_empty() {
                out.push((at + lead, at + lead + t.len()));
            }
            at += piece.len() + sep.len();
        }
        return Ok(out);
    }
    // Line-based delimiters split the text with `\r\n` and `\r` read as `\n`; the steps are
    // substrings of that text separated by whitespace only, so each is found at the first
    // non-space character after the previous one.
    let (norm, orig_of) = normalize_newlines(text);
    let mut out = Vec::new();
    let mut cursor = 0;
    for step in splitter.split(&norm) {
        let start = norm[cursor..]
            .find(step.text.as_str())
            .map(|i| cursor + i)
            .ok_or_else(|| format!("step {} not found in the response", step.index))?;
        let end = start + step.text.len();
        cursor = end;
        out.push(match &orig_of {
            Some(map) => (map[start], map[end]),
            None => (start, end),
        });
    }
    Ok(out)
}

/// Spans of pre-split steps over their join with `separator`.
pub fn joined_spans<S: AsRef<str>>(steps: &[S], separator: &str) -> Vec<(usize, usize)> {
    let mut at = 0;
    steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            if i > 0 {
                at += separator.len();
            }
            let start = at;
            at += s.as_ref().len();
            (start, at)
        })
        .collect()
}

/// The text with `\r\n` and lone `\r` as `\n` and, when it changed, the original byte
/// offset of each of its byte offsets (one more than its length, for ends).
fn normalize_newlines(text: &str) -> (Cow<'_, str>, Option<Vec<usize>>) {
    if !text.contains('\r') {
        return (Cow::Borrowed(text), None);
    }
    let bytes = text.as_bytes();
    let mut map = Vec::with_capacity(bytes.len() + 1);
    let mut i = 0;
    while i < bytes.len() {
        map.push(i);
        i += if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
            2
        } else {
            1
        };
    }
    map.push(bytes.len());
    let norm = text.replace("\r\n", "\n").replace('\r', "\n");
    debug_assert_eq!(norm.len() + 1, map.len());
    (Cow::Owned(norm), Some(map))
}

/// Byte spans (increasing) with their character offsets added, in one pass over `text`.
pub fn with_chars(text: &str, bytes: &[(usize, usize)]) -> Vec<Span> {
    let mut chars = 0;
    let mut at = 0;
    let mut char_at = |b: usize| {
        // spans are increasing, so counting goes forward only
        if b >= at {
            chars += text.get(at..b).map_or(0, |s| s.chars().count());
            at = b;
        }
        chars
    };
    bytes
        .iter()
        .map(|&(s, e)| {
            let char_start = char_at(s);
            let char_end = char_at(e);
            Span {
                byte_start: s,
                byte_end: e,
                char_start,
                char_end,
            }
        })
        .collect()
}

/// A Hugging Face tokenizer (`tokenizer.json`) for the steps' token offsets.
pub struct StepTokenizer {
    inner: tokenizers::Tokenizer,
}

/// A tokenizer file that does not load.
#[derive(Debug, thiserror::Error)]
#[error("loading the tokenizer {path}: {message}")]
pub struct TokenizerError {
    pub path: String,
    pub message: String,
}

impl StepTokenizer {
    /// Loads a `tokenizer.json`.
    pub fn from_file(path: &Path) -> Result<Self, TokenizerError> {
        tokenizers::Tokenizer::from_file(path)
            .map(|inner| Self { inner })
            .map_err(|e| TokenizerError {
                path: path.display().to_string(),
                message: e.to_string(),
            })
    }

    /// Parses the text of a `tokenizer.json`.
    pub fn from_json(json: &str) -> Result<Self, TokenizerError> {
        json.parse::<tokenizers::Tokenizer>()
            .map(|inner| Self { inner })
            .map_err(|e| TokenizerError {
                path: "(inline)".into(),
                message: e.to_string(),
            })
    }

    /// For each span (increasing), how many tokens of `text` (encoded without special
    /// tokens) start before its end.
    pub fn token_ends(&self, text: &str, spans: &[Span]) -> Result<Vec<usize>, String> {
        let enc = self
            .inner
            .encode(text, false)
            .map_err(|e| format!("tokenizing the response: {e}"))?;
        let offsets = enc.get_offsets();
        let mut j = 0;
        Ok(spans
            .iter()
            .map(|s| {
                while j < offsets.len() && offsets[j].0 < s.byte_end {
                    j += 1;
                }
                j
            })
            .collect())
    }
}

/// The text the offsets of an item index: the response, or the steps joined.
pub fn item_text<'a>(
    response: &'a str,
    steps: Option<&[String]>,
    splitter: &StepSplitter,
) -> Cow<'a, str> {
    match steps {
        Some(steps) => Cow::Owned(splitter.join_texts(steps)),
        None => Cow::Borrowed(response),
    }
}

/// The spans (and token ends, with a tokenizer) of one item's steps.
pub fn item_spans(
    response: &str,
    steps: Option<&[String]>,
    splitter: &StepSplitter,
    tokenizer: Option<&StepTokenizer>,
) -> Result<(Vec<Span>, Option<Vec<usize>>), String> {
    let text = item_text(response, steps, splitter);
    let bytes = match steps {
        Some(steps) => joined_spans(steps, splitter.separator()),
        None => split_spans(&text, splitter)?,
    };
    let spans = with_chars(&text, &bytes);
    let tokens = match tokenizer {
        Some(t) => Some(t.token_ends(&text, &spans)?),
        None => None,
    };
    Ok((spans, tokens))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn splitter(d: &str) -> StepSplitter {
        StepSplitter::new(d.parse::<Delimiter>().unwrap())
    }

    fn chars(spans: &[Span]) -> Vec<(usize, usize)> {
        spans.iter().map(|s| (s.char_start, s.char_end)).collect()
    }

    #[test]
    fn spans_by_hand_with_multibyte_characters() {
        // "x² = 4" is 7 bytes, 6 chars; "\n\n  "; "so x = ±2 ✓" is 14 bytes, 11 chars.
        let text = "x² = 4\n\n  so x = ±2 ✓\n";
        let (spans, tokens) = item_spans(text, None, &splitter("blank-line"), None).unwrap();
        assert_eq!(tokens, None);
        assert_eq!(chars(&spans), [(0, 6), (10, 21)]);
        assert_eq!(
            spans
                .iter()
                .map(|s| (s.byte_start, s.byte_end))
                .collect::<Vec<_>>(),
            [(0, 7), (11, 25)]
        );
        let cs: Vec<char> = text.chars().collect();
        assert_eq!(cs[10..21].iter().collect::<String>(), "so x = ±2 ✓");
    }

    #[test]
    fn carriage_returns_are_spanned_in_the_text_as_sent() {
        // "a\r\nb" is one blank-line step of 4 bytes; "c" starts after "\r\n\r\n" at 8.
        let text = "a\r\nb\r\n\r\nc";
        let (spans, _) = item_spans(text, None, &splitter("blank-line"), None).unwrap();
        assert_eq!(chars(&spans), [(0, 4), (8, 9)]);
        let (spans, _) = item_spans("é ки\n  b ки", None, &splitter("custom: ки"), None).unwrap();
        // "é" (1 char); then " ки" (3 chars) and "\n  " (3) before "b" at 7
        assert_eq!(chars(&spans), [(0, 1), (7, 8)]);
    }

    #[test]
    fn presplit_steps_are_spanned_over_their_join() {
        let steps = vec!["ünï".to_string(), "b".to_string(), "ç".to_string()];
        let (spans, _) = item_spans("", Some(&steps), &splitter("blank-line"), None).unwrap();
        // "ünï\n\nb\n\nç": ünï 0..3, b 5..6, ç 8..9
        assert_eq!(chars(&spans), [(0, 3), (5, 6), (8, 9)]);
        let (spans, _) = item_spans("", Some(&steps), &splitter("line"), None).unwrap();
        assert_eq!(chars(&spans), [(0, 3), (4, 5), (6, 7)]);
    }

    /// A word-level tokenizer.json with a whitespace pre-tokenizer, written here.
    fn word_level() -> StepTokenizer {
        let json = r#"{
          "version": "1.0",
          "truncation": null, "padding": null, "added_tokens": [],
          "normalizer": null,
          "pre_tokenizer": {"type": "Whitespace"},
          "post_processor": null, "decoder": null,
          "model": {"type": "WordLevel", "unk_token": "[UNK]",
                    "vocab": {"[UNK]": 0, "2": 1, "+": 2, "=": 3, "4": 4, "so": 5, ".": 6}}
        }"#;
        StepTokenizer::from_json(json).unwrap()
    }

    #[test]
    fn token_ends_with_a_word_level_tokenizer() {
        // Whitespace pre-tokenizes by `\w+|[^\w\s]+`: "2" "+" "2" "=" "4" | "so" "4" "✓."
        // ("✓." one unknown token), so step 1 ends at token 5 and step 2 at 8.
        let text = "2 + 2 = 4\n\nso 4 ✓.";
        let (spans, tokens) =
            item_spans(text, None, &splitter("blank-line"), Some(&word_level())).unwrap();
        assert_eq!(spans.len(), 2);
        assert_eq!(tokens, Some(vec![5, 8]));
    }

    #[test]
    fn token_ends_with_a_bpe_tokenizer() {
        // Characters a, b, c and the merge "a b" → "ab"; a space splits words.
        let json = r#"{
          "version": "1.0",
          "truncation": null, "padding": null, "added_tokens": [],
          "normalizer": null,
          "pre_tokenizer": {"type": "WhitespaceSplit"},
          "post_processor": null, "decoder": null,
          "model": {"type": "BPE", "dropout": null, "unk_token": null,
                    "continuing_subword_prefix": null, "end_of_word_suffix": null,
                    "fuse_unk": false, "byte_fallback": false,
                    "vocab": {"a": 0, "b": 1, "c": 2, "ab": 3},
                    "merges": ["a b"]}
        }"#;
        let t = StepTokenizer::from_json(json).unwrap();
        // "abc" → ab c; "cab" → c ab; "abab" → ab ab
        let steps = vec!["abc".to_string(), "cab".to_string(), "abab".to_string()];
        let (_, tokens) = item_spans("", Some(&steps), &splitter("line"), Some(&t)).unwrap();
        assert_eq!(tokens, Some(vec![2, 4, 6]));
    }

    #[test]
    fn a_bad_tokenizer_file_is_an_error_naming_it() {
        let e = StepTokenizer::from_file(Path::new("/nonexistent/tokenizer.json"))
            .err()
            .unwrap();
        assert!(e.to_string().contains("/nonexistent/tokenizer.json"), "{e}");
        assert!(StepTokenizer::from_json("{\"model\": 3}").is_err());
    }

    fn check_cover(text: &str, d: &str) -> Result<(), TestCaseError> {
        let sp = splitter(d);
        let steps = sp.split(text);
        let (spans, _) = item_spans(text, None, &sp, None).map_err(TestCaseError::fail)?;
        prop_assert_eq!(spans.len(), steps.len());
        let cs: Vec<char> = text.chars().collect();
        let mut last = 0;
        for (s, step) in spans.iter().zip(&steps) {
            prop_assert!(s.char_start >= last && s.char_end > s.char_start);
            prop_assert!(s.byte_start < s.byte_end);
            last = s.char_end;
            let by_bytes = &text[s.byte_start..s.byte_end];
            let by_chars: String = cs[s.char_start..s.char_end].iter().collect();
            prop_assert_eq!(by_bytes, by_chars.as_str());
            // the step's text, up to the line endings the splitter normalized
            let sent = by_bytes.replace("\r\n", "\n").replace('\r', "\n");
            if d.starts_with("custom:") {
                prop_assert_eq!(by_bytes, step.text.as_str());
            } else {
                prop_assert_eq!(sent.as_str(), step.text.as_str());
            }
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn spans_increase_and_cover_each_step(
            text in "([a-cé✓ ]{0,4}(\n|\r\n|\r|\n\n| |Step 1: |ки)){0,12}",
        ) {
            for d in ["blank-line", "line", "step-label", "custom:ки", "custom:\\n"] {
                check_cover(&text, d)?;
            }
        }

        #[test]
        fn joined_spans_cover_each_presplit_step(
            steps in proptest::collection::vec("[a-zé✓ ]{0,5}", 0..6),
        ) {
            let sp = splitter("blank-line");
            let text = sp.join_texts(&steps);
            let (spans, _) = item_spans("", Some(&steps), &sp, None).map_err(TestCaseError::fail)?;
            let cs: Vec<char> = text.chars().collect();
            for (s, step) in spans.iter().zip(&steps) {
                let got: String = cs[s.char_start..s.char_end].iter().collect();
                prop_assert_eq!(&got, step);
            }
        }
    }
}
