//! Verifiable instruction constraints (IFEval's verifiable instructions), the checks
//! behind the RAIF and ReasonIF reward components.
//!
//! - IFEval: Zhou et al., 2023, "Instruction-Following Evaluation for Large Language
//!   Models", arXiv:2311.07911. Each instruction (`punctuation:no_comma`,
//!   `length_constraints:number_words`, …) is a rule a program can check. *Strict*: the
//!   response, unchanged and not empty, follows it. *Loose*: any of eight variants does
//!   (the response; with every `*` removed; without its first line, its last line or
//!   both; and those three with `*` removed).
//! - RAIF: Qin et al., 2025, "Incentivizing Reasoning for Advanced Instruction-Following
//!   of Large Language Models", arXiv:2506.01413: the reward of a response is checked
//!   against the prompt's verifiable constraints (here: the share of them followed, or 1
//!   only when all are).
//! - ReasonIF: Kwon et al., 2025, "ReasonIF: Large Reasoning Models Fail to Follow
//!   Instructions During Reasoning", arXiv:2510.15211: the same constraints applied to the
//!   reasoning trace (the text inside `<think>…</think>`), its instruction-following score.
//!
//! The rules follow IFEval's evaluation code (read, not copied) so that the verdicts agree
//! with IFEval's own; where a rule needs a statistical model (NLTK's Punkt sentence
//! splitter, langdetect's language identifier) a smaller stand-in is used: a Punkt-like
//! splitter with a fixed abbreviation list and `whatlang`'s trigram identifier. The
//! agreement on IFEval's labelled responses is measured by `tests/ifeval_agreement.rs`;
//! every disagreement is explained in `docs/results/ifeval-agreement.md`.

use regex::{Regex, RegexBuilder};
use serde_json::{Map, Value};

/// `less than` / `at least`, IFEval's two comparisons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    LessThan,
    AtLeast,
}

impl Relation {
    fn parse(s: &str) -> Result<Self, String> {
        match s.trim() {
            "less than" => Ok(Self::LessThan),
            "at least" => Ok(Self::AtLeast),
            other => Err(format!(
                "relation '{other}' (expected 'less than' or 'at least')"
            )),
        }
    }

    fn holds(self, actual: usize, n: usize) -> bool {
        match self {
            Self::LessThan => actual < n,
            Self::AtLeast => actual >= n,
        }
    }
}

/// One verifiable instruction with its arguments.
#[derive(Debug, Clone)]
pub enum Instruction {
    /// `language:response_language`: the whole response is in `language` (ISO 639-1).
    ResponseLanguage { language: whatlang::Lang },
    /// `length_constraints:number_sentences`.
    NumberSentences { relation: Relation, n: usize },
    /// `detectable_content:number_placeholders`: at least `n` `[…]` placeholders.
    Placeholders { n: usize },
    /// `detectable_format:number_bullet_lists`: exactly `n` `*` or `-` bullet lines.
    BulletLists { n: usize },
    /// `detectable_format:constrained_response`: one of "My answer is yes/no/maybe.".
    ConstrainedResponse,
    /// `detectable_format:number_highlighted_sections`: at least `n` `*highlighted*` spans.
    Highlights { n: usize },
    /// `detectable_format:multiple_sections`: at least `n` sections marked `SPLITTER k`.
    Sections { splitter: Regex, n: usize },
    /// `length_constraints:number_paragraphs`: exactly `n` paragraphs split by `***`.
    Paragraphs { n: usize },
    /// `detectable_content:postscript`: a line starting with the marker (`P.S.`, …).
    Postscript { pattern: Regex },
    /// `keywords:existence`: every keyword occurs (case-insensitive).
    Keywords { keywords: Vec<Regex> },
    /// `keywords:frequency`: a keyword's occurrences compared with `n`.
    KeywordFrequency {
        keyword: Regex,
        relation: Relation,
        n: usize,
    },
    /// `length_constraints:number_words`: `\w+` runs compared with `n`.
    NumberWords { relation: Relation, n: usize },
    /// `detectable_format:json_format`: the response (in optional ``` fences) is JSON.
    Json,
    /// `length_constraints:nth_paragraph_first_word`: `n` paragraphs split by a blank
    /// line, paragraph `nth` starting with `word`.
    NthParagraphFirstWord { n: usize, nth: usize, word: String },
    /// `keywords:forbidden_words`: none of the words occurs as a whole word.
    ForbiddenWords { words: Vec<Regex> },
    /// `combination:two_responses`: two different responses separated by `******`.
    TwoResponses,
    /// `combination:repeat_prompt`: starts with the request, repeated word for word.
    RepeatPrompt { prompt: String },
    /// `startend:end_checker`: ends with the phrase.
    EndPhrase { phrase: String },
    /// `detectable_format:title`: a title in `<<…>>`.
    Title,
    /// `keywords:letter_frequency`: a letter's occurrences compared with `n`.
    LetterFrequency {
        letter: String,
        relation: Relation,
        n: usize,
    },
    /// `change_case:english_capital`: English, all capital letters.
    EnglishCapital,
    /// `change_case:english_lowercase`: English, all lowercase letters.
    EnglishLowercase,
    /// `punctuation:no_comma`.
    NoComma,
    /// `change_case:capital_word_frequency`: all-capital words compared with `n`.
    CapitalWordFrequency { relation: Relation, n: usize },
    /// `startend:quotation`: wrapped in double quotation marks.
    Quotation,
}

/// The instruction ids [`Instruction::parse`] knows.
pub const INSTRUCTION_IDS: [&str; 25] = [
    "language:response_language",
    "length_constraints:number_sentences",
    "detectable_content:number_placeholders",
    "detectable_format:number_bullet_lists",
    "detectable_format:constrained_response",
    "detectable_format:number_highlighted_sections",
    "detectable_format:multiple_sections",
    "length_constraints:number_paragraphs",
    "detectable_content:postscript",
    "keywords:existence",
    "keywords:frequency",
    "length_constraints:number_words",
    "detectable_format:json_format",
    "length_constraints:nth_paragraph_first_word",
    "keywords:forbidden_words",
    "combination:two_responses",
    "combination:repeat_prompt",
    "startend:end_checker",
    "detectable_format:title",
    "keywords:letter_frequency",
    "change_case:english_capital",
    "change_case:english_lowercase",
    "punctuation:no_comma",
    "change_case:capital_word_frequency",
    "startend:quotation",
];

fn arg<'a>(kwargs: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    kwargs.get(key).filter(|v| !v.is_null())
}

fn int(kwargs: &Map<String, Value>, key: &str) -> Result<usize, String> {
    arg(kwargs, key)
        .and_then(Value::as_u64)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| format!("'{key}' must be a non-negative integer"))
}

fn string<'a>(kwargs: &'a Map<String, Value>, key: &str) -> Result<&'a str, String> {
    arg(kwargs, key)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("'{key}' must be a string"))
}

fn strings(kwargs: &Map<String, Value>, key: &str) -> Result<Vec<String>, String> {
    let list = arg(kwargs, key)
        .and_then(Value::as_array)
        .ok_or_else(|| format!("'{key}' must be a list of strings"))?;
    list.iter()
        .map(|v| {
            v.as_str()
                .map(String::from)
                .ok_or_else(|| format!("'{key}' must be a list of strings"))
        })
        .collect()
}

fn relation(kwargs: &Map<String, Value>, key: &str) -> Result<Relation, String> {
    Relation::parse(string(kwargs, key)?)
}

/// A case-insensitive regex matching `text` literally (IFEval passes keywords to `re`
/// as patterns; the keywords are words, so matching them literally is the same).
fn literal(text: &str, whole_word: bool) -> Result<Regex, String> {
    let escaped = regex::escape(text);
    let pattern = if whole_word {
        format!(r"\b{escaped}\b")
    } else {
        escaped
    };
    RegexBuilder::new(&pattern)
        .case_insensitive(true)
        .build()
        .map_err(|e| format!("keyword '{text}': {e}"))
}

/// ISO 639-1 (IFEval's language codes) to `whatlang`'s language.
fn language(code: &str) -> Option<whatlang::Lang> {
    let iso3 = match code.trim() {
        "en" => "eng",
        "es" => "spa",
        "pt" => "por",
        "ar" => "ara",
        "hi" => "hin",
        "fr" => "fra",
        "ru" => "rus",
        "de" => "deu",
        "ja" => "jpn",
        "it" => "ita",
        "bn" => "ben",
        "uk" => "ukr",
        "th" => "tha",
        "ur" => "urd",
        "ta" => "tam",
        "te" => "tel",
        "bg" => "bul",
        "ko" => "kor",
        "pl" => "pol",
        "he" => "heb",
        "fa" => "pes",
        "vi" => "vie",
        "ne" => "nep",
        "kn" => "kan",
        "mr" => "mar",
        "gu" => "guj",
        "pa" => "pan",
        "ml" => "mal",
        "fi" => "fin",
        "zh" => "cmn",
        "nl" => "nld",
        "tr" => "tur",
        "sv" => "swe",
        "el" => "ell",
        "id" => "ind",
        "ro" => "ron",
        "hu" => "hun",
        "cs" => "ces",
        "da" => "dan",
        _ => return None,
    };
    whatlang::Lang::from_code(iso3)
}

fn regex(pattern: &str) -> Regex {
    // Only called with the fixed patterns of this file, all valid (tested).
    Regex::new(pattern).unwrap_or_else(|_| unreachable!("invalid built-in pattern {pattern}"))
}

impl Instruction {
    /// The instruction `id` with its IFEval `kwargs` (null values count as absent);
    /// `prompt` is the request (`combination:repeat_prompt` needs it when its
    /// `prompt_to_repeat` is absent).
    pub fn parse(id: &str, kwargs: &Map<String, Value>, prompt: &str) -> Result<Self, String> {
        let at = |e: String| format!("{id}: {e}");
        let i = match id {
            "language:response_language" => {
                let code = string(kwargs, "language").map_err(at)?;
                Self::ResponseLanguage {
                    language: language(code)
                        .ok_or_else(|| at(format!("unsupported language '{code}'")))?,
                }
            }
            "length_constraints:number_sentences" => Self::NumberSentences {
                relation: relation(kwargs, "relation").map_err(at)?,
                n: int(kwargs, "num_sentences").map_err(at)?,
            },
            "detectable_content:number_placeholders" => Self::Placeholders {
                n: int(kwargs, "num_placeholders").map_err(at)?,
            },
            "detectable_format:number_bullet_lists" => Self::BulletLists {
                n: int(kwargs, "num_bullets").map_err(at)?,
            },
            "detectable_format:constrained_response" => Self::ConstrainedResponse,
            "detectable_format:number_highlighted_sections" => Self::Highlights {
                n: int(kwargs, "num_highlights").map_err(at)?,
            },
            "detectable_format:multiple_sections" => {
                let s = string(kwargs, "section_spliter").map_err(at)?.trim();
                Self::Sections {
                    splitter: Regex::new(&format!(r"\s?{}\s?\d+\s?", regex::escape(s)))
                        .map_err(|e| at(e.to_string()))?,
                    n: int(kwargs, "num_sections").map_err(at)?,
                }
            }
            "length_constraints:number_paragraphs" => Self::Paragraphs {
                n: int(kwargs, "num_paragraphs").map_err(at)?,
            },
            "detectable_content:postscript" => {
                let marker = string(kwargs, "postscript_marker").map_err(at)?.trim();
                let pattern = match marker {
                    "P.P.S" => r"(?m)\s*p\.\s?p\.\s?s.*$".to_string(),
                    "P.S." => r"(?m)\s*p\.\s?s\..*$".to_string(),
                    m => format!(r"(?m)\s*{}.*$", regex::escape(&m.to_lowercase())),
                };
                Self::Postscript {
                    pattern: Regex::new(&pattern).map_err(|e| at(e.to_string()))?,
                }
            }
            "keywords:existence" => Self::Keywords {
                keywords: strings(kwargs, "keywords")
                    .map_err(at)?
                    .iter()
                    .map(|k| literal(k, false))
                    .collect::<Result<_, _>>()
                    .map_err(at)?,
            },
            "keywords:frequency" => Self::KeywordFrequency {
                keyword: literal(string(kwargs, "keyword").map_err(at)?.trim(), false)
                    .map_err(at)?,
                relation: relation(kwargs, "relation").map_err(at)?,
                n: int(kwargs, "frequency").map_err(at)?,
            },
            "length_constraints:number_words" => Self::NumberWords {
                relation: relation(kwargs, "relation").map_err(at)?,
                n: int(kwargs, "num_words").map_err(at)?,
            },
            "detectable_format:json_format" => Self::Json,
            "length_constraints:nth_paragraph_first_word" => Self::NthParagraphFirstWord {
                n: int(kwargs, "num_paragraphs").map_err(at)?,
                nth: int(kwargs, "nth_paragraph").map_err(at)?,
                word: string(kwargs, "first_word").map_err(at)?.to_lowercase(),
            },
            "keywords:forbidden_words" => Self::ForbiddenWords {
                words: strings(kwargs, "forbidden_words")
                    .map_err(at)?
                    .iter()
                    .map(|w| literal(w, true))
                    .collect::<Result<_, _>>()
                    .map_err(at)?,
            },
            "combination:two_responses" => Self::TwoResponses,
            "combination:repeat_prompt" => Self::RepeatPrompt {
                prompt: match string(kwargs, "prompt_to_repeat") {
                    Ok(p) => p.to_string(),
                    Err(_) => prompt.to_string(),
                },
            },
            "startend:end_checker" => Self::EndPhrase {
                phrase: string(kwargs, "end_phrase").map_err(at)?.trim().to_string(),
            },
            "detectable_format:title" => Self::Title,
            "keywords:letter_frequency" => Self::LetterFrequency {
                letter: string(kwargs, "letter").map_err(at)?.trim().to_lowercase(),
                relation: relation(kwargs, "let_relation").map_err(at)?,
                n: int(kwargs, "let_frequency").map_err(at)?,
            },
            "change_case:english_capital" => Self::EnglishCapital,
            "change_case:english_lowercase" => Self::EnglishLowercase,
            "punctuation:no_comma" => Self::NoComma,
            "change_case:capital_word_frequency" => Self::CapitalWordFrequency {
                relation: relation(kwargs, "capital_relation").map_err(at)?,
                n: int(kwargs, "capital_frequency").map_err(at)?,
            },
            "startend:quotation" => Self::Quotation,
            other => {
                return Err(format!(
                    "unknown instruction '{other}' (expected one of {})",
                    INSTRUCTION_IDS.join(", ")
                ));
            }
        };
        Ok(i)
    }

    /// IFEval's strict verdict: `text` is not blank and follows the instruction.
    pub fn follows(&self, text: &str) -> bool {
        !text.trim().is_empty() && self.check(text)
    }

    /// IFEval's loose verdict: one of the eight variants of `text` ([`loose_variants`])
    /// follows the instruction.
    pub fn follows_loose(&self, text: &str) -> bool {
        loose_variants(text).iter().any(|v| self.follows(v))
    }

    fn check(&self, value: &str) -> bool {
        match self {
            Self::ResponseLanguage { language } => detected(value).is_none_or(|l| l == *language),
            Self::NumberSentences { relation, n } => relation.holds(count_sentences(value), *n),
            Self::Placeholders { n } => regex(r"\[.*?\]").find_iter(value).count() >= *n,
            Self::BulletLists { n } => {
                let stars = regex(r"(?m)^\s*\*[^\*].*$").find_iter(value).count();
                let dashes = regex(r"(?m)^\s*-.*$").find_iter(value).count();
                stars + dashes == *n
            }
            Self::ConstrainedResponse => {
                let v = value.trim();
                [
                    "My answer is yes.",
                    "My answer is no.",
                    "My answer is maybe.",
                ]
                .iter()
                .any(|o| v.contains(o))
            }
            Self::Highlights { n } => {
                let single = regex(r"\*[^\n\*]*\*")
                    .find_iter(value)
                    .filter(|m| !m.as_str().trim_matches('*').trim().is_empty())
                    .count();
                let double = regex(r"\*\*[^\n\*]*\*\*")
                    .find_iter(value)
                    .filter(|m| {
                        let s = m.as_str();
                        !s[2..s.len() - 2].trim().is_empty()
                    })
                    .count();
                single + double >= *n
            }
            Self::Sections { splitter, n } => splitter.find_iter(value).count() >= *n,
            Self::Paragraphs { n } => {
                let parts: Vec<&str> = regex(r"\s?\*\*\*\s?").split(value).collect();
                let mut count = parts.len();
                for (i, p) in parts.iter().enumerate() {
                    if p.trim().is_empty() {
                        if i == 0 || i == parts.len() - 1 {
                            count -= 1;
                        } else {
                            return false;
                        }
                    }
                }
                count == *n
            }
            Self::Postscript { pattern } => pattern.is_match(&value.to_lowercase()),
            Self::Keywords { keywords } => keywords.iter().all(|k| k.is_match(value)),
            Self::KeywordFrequency {
                keyword,
                relation,
                n,
            } => relation.holds(keyword.find_iter(value).count(), *n),
            Self::NumberWords { relation, n } => relation.holds(count_words(value), *n),
            Self::Json => {
                let v = value.trim();
                let v = ["```json", "```Json", "```JSON", "```"]
                    .iter()
                    .find_map(|p| v.strip_prefix(p))
                    .unwrap_or(v);
                let v = v.strip_suffix("```").unwrap_or(v).trim();
                serde_json::from_str::<Value>(v).is_ok()
            }
            Self::NthParagraphFirstWord { n, nth, word } => {
                let parts: Vec<&str> = value.split("\n\n").collect();
                let count = parts.iter().filter(|p| !p.trim().is_empty()).count();
                if *nth == 0 || *nth > count {
                    return false;
                }
                let p = parts[nth - 1].trim();
                let Some(first) = p.split_whitespace().next() else {
                    return false;
                };
                let first = first.trim_start_matches('\'').trim_start_matches('"');
                let got: String = first
                    .chars()
                    .take_while(|c| !matches!(c, '.' | ',' | '?' | '!' | '\'' | '"'))
                    .flat_map(char::to_lowercase)
                    .collect();
                count == *n && got == *word
            }
            Self::ForbiddenWords { words } => !words.iter().any(|w| w.is_match(value)),
            Self::TwoResponses => {
                let parts: Vec<&str> = value.split("******").collect();
                let mut valid = Vec::new();
                for (i, p) in parts.iter().enumerate() {
                    if p.trim().is_empty() {
                        if i != 0 && i != parts.len() - 1 {
                            return false;
                        }
                    } else {
                        valid.push(p.trim());
                    }
                }
                valid.len() == 2 && valid[0] != valid[1]
            }
            Self::RepeatPrompt { prompt } => value
                .trim()
                .to_lowercase()
                .starts_with(&prompt.trim().to_lowercase()),
            Self::EndPhrase { phrase } => value
                .trim()
                .trim_matches('"')
                .to_lowercase()
                .ends_with(&phrase.trim().to_lowercase()),
            Self::Title => regex(r"<<[^\n]+>>").find_iter(value).any(|m| {
                !m.as_str()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .trim()
                    .is_empty()
            }),
            Self::LetterFrequency {
                letter,
                relation,
                n,
            } => {
                let lower = value.to_lowercase();
                let count = match letter.chars().next() {
                    Some(c) if letter.chars().count() == 1 => {
                        lower.chars().filter(|x| *x == c).count()
                    }
                    _ => 0,
                };
                relation.holds(count, *n)
            }
            Self::EnglishCapital => {
                is_upper(value) && detected(value).is_none_or(|l| l == whatlang::Lang::Eng)
            }
            Self::EnglishLowercase => {
                is_lower(value) && detected(value).is_none_or(|l| l == whatlang::Lang::Eng)
            }
            Self::NoComma => !value.contains(','),
            Self::CapitalWordFrequency { relation, n } => {
                let capital = word_tokens(value).filter(|w| is_upper(w)).count();
                relation.holds(capital, *n)
            }
            Self::Quotation => {
                let v = value.trim();
                v.chars().count() > 1 && v.starts_with('"') && v.ends_with('"')
            }
        }
    }
}

/// IFEval's loose variants of a response: it, without `*`, without its first line, its
/// last line or both (trimmed), and those without `*`.
pub fn loose_variants(text: &str) -> [String; 8] {
    let lines: Vec<&str> = text.split('\n').collect();
    let n = lines.len();
    let join = |a: usize, b: usize| {
        if a >= b {
            String::new()
        } else {
            lines[a..b].join("\n").trim().to_string()
        }
    };
    let first = join(1, n);
    let last = join(0, n.saturating_sub(1));
    let both = join(1, n.saturating_sub(1));
    let strip = |s: &str| s.replace('*', "");
    [
        text.to_string(),
        strip(text),
        strip(&first),
        strip(&last),
        strip(&both),
        first,
        last,
        both,
    ]
}

/// The language of `text`, `None` when none can be told (no letters): IFEval counts
/// an undetectable language as followed.
fn detected(text: &str) -> Option<whatlang::Lang> {
    static DETECTOR: std::sync::OnceLock<whatlang::Detector> = std::sync::OnceLock::new();
    DETECTOR
        .get_or_init(|| {
            // The languages langdetect (IFEval's identifier) has profiles for, of those
            // whatlang knows: a language langdetect cannot answer is never the answer.
            let allowed = LANGDETECT_LANGUAGES
                .iter()
                .filter_map(|c| whatlang::Lang::from_code(*c))
                .collect();
            whatlang::Detector::with_allowlist(allowed)
        })
        .detect(text)
        .map(|i| i.lang())
}

/// langdetect's languages, as ISO 639-3 codes whatlang uses.
const LANGDETECT_LANGUAGES: [&str; 50] = [
    "afr", "ara", "bul", "ben", "cat", "ces", "dan", "deu", "ell", "eng", "spa", "est", "pes",
    "fin", "fra", "guj", "heb", "hin", "hrv", "hun", "ind", "ita", "jpn", "kan", "kor", "lit",
    "lav", "mkd", "mal", "mar", "nep", "nld", "nob", "pan", "pol", "por", "ron", "rus", "slk",
    "slv", "swe", "tam", "tel", "tha", "tgl", "tur", "ukr", "urd", "vie", "cmn",
];

/// Python's `str.isupper`: at least one cased character, and no lowercase one.
fn is_upper(s: &str) -> bool {
    let mut cased = false;
    for c in s.chars() {
        if c.is_lowercase() {
            return false;
        }
        cased |= c.is_uppercase();
    }
    cased
}

/// Python's `str.islower`: at least one cased character, and no uppercase one.
fn is_lower(s: &str) -> bool {
    let mut cased = false;
    for c in s.chars() {
        if c.is_uppercase() {
            return false;
        }
        cased |= c.is_lowercase();
    }
    cased
}

/// IFEval's word count: runs of word characters (`\w+`).
pub fn count_words(text: &str) -> usize {
    regex(r"\w+").find_iter(text).count()
}

/// Words as a Treebank-style tokenizer splits them: whitespace-separated, leading and
/// trailing punctuation split off, clitics (`n't`, `'s`, `'re`, …) split off; hyphens and
/// inner periods stay inside the word.
fn word_tokens(text: &str) -> impl Iterator<Item = &str> {
    const CLITICS: [&str; 7] = ["n't", "'s", "'re", "'ve", "'ll", "'d", "'m"];
    text.split_whitespace().flat_map(|chunk| {
        let core = chunk.trim_matches(|c: char| !c.is_alphanumeric());
        let lower = core.to_lowercase();
        let split = CLITICS
            .iter()
            .find(|c| lower.ends_with(*c) && lower.len() > c.len())
            .map(|c| core.len() - c.len());
        let (a, b) = match split {
            Some(at) if core.is_char_boundary(at) => (&core[..at], Some(&core[at..])),
            _ => (core, None),
        };
        std::iter::once(a).chain(b).filter(|w| !w.is_empty())
    })
}

/// Abbreviations after which a period ends no sentence (titles, Latin, months, units).
const ABBREVIATIONS: [&str; 48] = [
    "mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "vs", "etc", "e.g", "i.e", "inc", "ltd",
    "co", "corp", "no", "fig", "al", "approx", "dept", "est", "gen", "gov", "lt", "col", "capt",
    "sgt", "rev", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov",
    "dec", "u.s", "u.k", "a.m", "p.m", "ph.d", "mt", "ft",
];

/// Sentences as NLTK's Punkt splitter (English) counts them, approximated: a token
/// ending in `?` or `!` (closing quotes and brackets after it allowed) ends a sentence;
/// one ending in `.` does too, unless it is a known abbreviation or a single-letter
/// initial, or a number or an ellipsis followed by a lowercase word. Line breaks alone
/// end no sentence.
pub fn count_sentences(text: &str) -> usize {
    let tokens: Vec<&str> = text.split_whitespace().collect();
    let mut sentences = 0;
    let mut open = false;
    for (i, tok) in tokens.iter().enumerate() {
        open = true;
        // The token's last sentence-ending character, and what follows it.
        let Some(end) = tok.rfind(['.', '?', '!']) else {
            continue;
        };
        let (core, tail) = tok.split_at(end + 1);
        // Closing quotes and brackets move back into the sentence they close (Punkt's
        // realignment); other punctuation after the end (`**`) starts the next one.
        let closers = |c: char| matches!(c, '"' | '\'' | ')' | ']' | '}' | '”' | '’' | '»');
        if !tail.chars().all(|c| closers(c) || c == '*') {
            continue;
        }
        let next_lower = tokens
            .get(i + 1)
            .and_then(|n| {
                n.trim_start_matches(|c: char| !c.is_alphanumeric())
                    .chars()
                    .next()
            })
            .is_some_and(char::is_lowercase);
        let ends = if core.ends_with(['?', '!']) {
            true
        } else {
            let word = core[..core.len() - 1].trim_start_matches(|c: char| !c.is_alphanumeric());
            let lower = word.to_lowercase();
            if word.ends_with('.') {
                // an ellipsis
                !next_lower
            } else if word.is_empty() {
                true
            } else if ABBREVIATIONS.contains(&lower.as_str()) {
                false
            } else if word.chars().count() == 1 && word.chars().all(char::is_uppercase) {
                // an initial (`J. Smith`)
                false
            } else if word
                .chars()
                .all(|c| c.is_ascii_digit() || c == '.' || c == ',')
            {
                !next_lower
            } else {
                true
            }
        };
        if ends {
            sentences += 1;
            open = !tail.chars().all(closers);
        }
    }
    sentences + usize::from(open)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ins(id: &str, kwargs: Value) -> Instruction {
        let Value::Object(m) = kwargs else {
            panic!("kwargs must be an object")
        };
        Instruction::parse(id, &m, "Write a poem.").unwrap()
    }

    #[test]
    fn counts_by_hand() {
        assert_eq!(count_words("Hello, world! It's 2024."), 5); // Hello world It s 2024
        assert_eq!(count_sentences("One. Two? Three! four"), 4);
        assert_eq!(count_sentences("Mr. Smith went to Washington. He left."), 2);
        assert_eq!(count_sentences("Items:\n* a\n* b"), 1);
        assert_eq!(count_sentences("It costs 3.5 dollars. Then 1. the end"), 2);
        assert_eq!(count_sentences(""), 0);
        // `**` after the end opens a sentence of its own; quotes close the sentence.
        assert_eq!(count_sentences("**Bold.** Next. End.**"), 4);
        assert_eq!(count_sentences("He said \"stop.\" Then left."), 2);
        let caps: Vec<&str> = word_tokens("I DON'T know, U.S.A. state-of-the-ART").collect();
        assert_eq!(
            caps,
            ["I", "DO", "N'T", "know", "U.S.A", "state-of-the-ART"]
        );
    }

    #[test]
    fn strict_and_loose_by_hand() {
        let no_comma = ins("punctuation:no_comma", serde_json::json!({}));
        assert!(no_comma.follows("No commas here."));
        assert!(!no_comma.follows("One, two."));
        assert!(!no_comma.follows("   "), "a blank response follows nothing");
        // Loose: dropping the first line removes the only comma.
        assert!(no_comma.follows_loose("Sure, here it is:\nNo commas here."));
        let quote = ins("startend:quotation", serde_json::json!({}));
        assert!(quote.follows("\"wrapped\""));
        assert!(!quote.follows("\""));
        let words = ins(
            "length_constraints:number_words",
            serde_json::json!({"relation": "less than", "num_words": 3}),
        );
        assert!(words.follows("two words"));
        assert!(!words.follows("three words here"));
        let hl = ins(
            "detectable_format:number_highlighted_sections",
            serde_json::json!({"num_highlights": 2}),
        );
        assert!(hl.follows("*a* and *b*"));
        // `**bold**` is one highlight: the single pattern only finds the empty `**`s.
        assert!(!hl.follows("**bold**"));
        assert!(hl.follows("**bold** and *it*"));
        assert!(!hl.follows("*a* and ** "));
        let bullets = ins(
            "detectable_format:number_bullet_lists",
            serde_json::json!({"num_bullets": 2}),
        );
        assert!(bullets.follows("* one\n- two"));
        assert!(!bullets.follows("* one\n** two"));
        let title = ins("detectable_format:title", serde_json::json!({}));
        assert!(title.follows("<<Poem of joy>>\ntext"));
        assert!(!title.follows("<< >>"));
        let json = ins("detectable_format:json_format", serde_json::json!({}));
        assert!(json.follows("```json\n{\"a\": 1}\n```"));
        assert!(!json.follows("{a: 1}"));
        let paras = ins(
            "length_constraints:number_paragraphs",
            serde_json::json!({"num_paragraphs": 2}),
        );
        assert!(paras.follows("one\n***\ntwo"));
        assert!(!paras.follows("one\n***\n\n***\ntwo"));
        let nth = ins(
            "length_constraints:nth_paragraph_first_word",
            serde_json::json!({"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "Then"}),
        );
        assert!(nth.follows("First.\n\n\"Then, more.\""));
        assert!(!nth.follows("First.\n\nAfter."));
        let ps = ins(
            "detectable_content:postscript",
            serde_json::json!({"postscript_marker": "P.S."}),
        );
        assert!(ps.follows("Body\n\nP.S. bye"));
        assert!(!ps.follows("Body"));
        let letters = ins(
            "keywords:letter_frequency",
            serde_json::json!({"letter": "z", "let_relation": "at least", "let_frequency": 2}),
        );
        assert!(letters.follows("Zig zag"));
        assert!(!letters.follows("zag"));
        let two = ins("combination:two_responses", serde_json::json!({}));
        assert!(two.follows("a\n******\nb"));
        assert!(!two.follows("a\n******\na"));
        let forbidden = ins(
            "keywords:forbidden_words",
            serde_json::json!({"forbidden_words": ["cat"]}),
        );
        assert!(forbidden.follows("concatenate"));
        assert!(!forbidden.follows("The Cat sat."));
        let repeat = ins("combination:repeat_prompt", serde_json::json!({}));
        assert!(repeat.follows("write a poem. Roses are red"));
        let lower = ins("change_case:english_lowercase", serde_json::json!({}));
        assert!(lower.follows("this is a plain english sentence about the weather today"));
        assert!(!lower.follows("This is a plain english sentence about the weather today"));
        let lang = ins(
            "language:response_language",
            serde_json::json!({"language": "de"}),
        );
        assert!(lang.follows("Das ist ein ganz normaler deutscher Satz über das Wetter heute."));
        assert!(!lang.follows("This is an ordinary English sentence about the weather today."));
    }

    #[test]
    fn bad_arguments_are_errors_naming_the_instruction() {
        let m = Map::new();
        let e = Instruction::parse("length_constraints:number_words", &m, "").unwrap_err();
        assert!(e.contains("number_words") && e.contains("relation"), "{e}");
        let e = Instruction::parse("nope:nothing", &m, "").unwrap_err();
        assert!(e.contains("unknown instruction"), "{e}");
    }

    proptest::proptest! {
        #[test]
        fn no_text_panics_any_instruction(text in r"(?s)[\s\S]{0,200}", n in 0usize..8) {
            let kw = serde_json::json!({
                "language": "en", "relation": "at least", "num_sentences": n,
                "num_placeholders": n, "num_bullets": n, "num_highlights": n,
                "section_spliter": "Section", "num_sections": n, "num_paragraphs": n,
                "postscript_marker": "P.S.", "keywords": ["a"], "keyword": "a",
                "frequency": n, "num_words": n, "nth_paragraph": n, "first_word": "a",
                "forbidden_words": ["a"], "prompt_to_repeat": "a", "end_phrase": "a",
                "letter": "a", "let_relation": "less than", "let_frequency": n,
                "capital_relation": "at least", "capital_frequency": n,
            });
            let Value::Object(m) = kw else { unreachable!() };
            for id in INSTRUCTION_IDS {
                let i = Instruction::parse(id, &m, "p").unwrap();
                let strict = i.follows(&text);
                proptest::prop_assert!(!strict || i.follows_loose(&text), "{id}: strict implies loose");
            }
        }
    }

    #[test]
    fn loose_variants_by_hand() {
        let v = loose_variants("Sure!\n*body*\nBye");
        assert_eq!(v[0], "Sure!\n*body*\nBye");
        assert_eq!(v[1], "Sure!\nbody\nBye");
        assert_eq!(v[5], "*body*\nBye");
        assert_eq!(v[6], "Sure!\n*body*");
        assert_eq!(v[7], "*body*");
        assert_eq!(v[4], "body");
    }
}
