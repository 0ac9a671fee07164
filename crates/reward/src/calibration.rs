//! Calibration rewards for a stated confidence: RLCR (Damani et al., 2025, "Beyond
//! Binary Rewards: Training LMs to Reason About Their Uncertainty", arXiv:2507.16806).
//!
//! The response states an answer and a confidence `q ∈ [0, 1]` (RLCR's
//! `<answer>…</answer><confidence>0.8</confidence>`, or a "Confidence: 80%" line as
//! "thinking out loud" prompts ask for). With `c = 1` when the answer verifies against the
//! gold and 0 otherwise, the reward is RLCR's correctness plus the negative Brier score:
//!
//! `R = c − (q − c)²`, in `[−1, 1]`: 1 for a right answer at full confidence, −1 for a
//! wrong one at full confidence, and `−q²` for any wrong answer (so an unsure guess loses
//! little).
//!
//! - **Abstention** (`I don't know`, `cannot be determined`, … as the answer). RLCR
//!   itself gives abstention no special case; a proper scoring rule already prices it as
//!   an answer held at confidence 0. That is the rule here: an abstention is scored as an
//!   answer with `c = 0` (or `c = 1` when the gold itself says the question is
//!   unanswerable) and `q` = the stated confidence, else 0 — so honest abstention earns 0,
//!   above any confident wrong answer (`−q²`) and below a right one.
//! - **Unreadable confidence** (none stated, not a number, outside [0, 1] or 0–100%):
//!   the component scores `unparsed` (default −1, the reward's minimum, so omitting the
//!   confidence never beats stating one) and the item's `confidence_unparsed` flag is set.

use regex::Regex;
use std::sync::LazyLock;

static TAG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?is)<confidence>(.*?)</confidence>").expect("a valid literal pattern")
});

static LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\bconfidence(?:\s+(?:level|score))?[*_\s]*(?:is|[:=])[*_\s]*([0-9]+(?:\.[0-9]+)?|\.[0-9]+)\s*(%?)",
    )
    .expect("a valid literal pattern")
});

/// What a response says about its confidence.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stated {
    /// A confidence in `[0, 1]`.
    Value(f64),
    /// A confidence tag or line whose value cannot be read as a probability.
    Unreadable,
    /// No confidence stated.
    Missing,
}

/// The confidence stated last in `text`: the last `<confidence>` tag, else the last
/// "Confidence: …" phrase. `0.8`, `80%` and `80` (a number above 1 and at most 100 is a
/// percentage) all read as 0.8.
pub fn stated_confidence(text: &str) -> Stated {
    if let Some(c) = TAG.captures_iter(text).last() {
        let inner = c.get(1).map_or("", |m| m.as_str()).trim();
        let (num, pct) = match inner.strip_suffix('%') {
            Some(n) => (n.trim(), true),
            None => (inner, false),
        };
        return probability(num, pct).map_or(Stated::Unreadable, Stated::Value);
    }
    if let Some(c) = LINE.captures_iter(text).last() {
        let num = c.get(1).map_or("", |m| m.as_str());
        let pct = c.get(2).is_some_and(|m| !m.as_str().is_empty());
        return probability(num, pct).map_or(Stated::Unreadable, Stated::Value);
    }
    Stated::Missing
}

fn probability(num: &str, percent: bool) -> Option<f64> {
    let v: f64 = num.parse().ok()?;
    let v = if percent || (v > 1.0 && v <= 100.0) {
        v / 100.0
    } else {
        v
    };
    (v.is_finite() && (0.0..=1.0).contains(&v)).then_some(v)
}

const ABSTAIN: [&str; 10] = [
    "i don't know",
    "i do not know",
    "i dont know",
    "i don’t know",
    "cannot be determined",
    "can't be determined",
    "cannot determine",
    "unanswerable",
    "not enough information",
    "insufficient information",
];

/// Whether `text` (an answer) abstains.
pub fn is_abstention(text: &str) -> bool {
    let t = text.to_lowercase();
    ABSTAIN.iter().any(|a| t.contains(a))
}

/// RLCR's reward `c − (q − c)²` for correctness `correct` at confidence `q`.
pub fn rlcr_reward(correct: bool, q: f64) -> f64 {
    let c = f64::from(u8::from(correct));
    c - (q - c).powi(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brier_reward_by_hand() {
        // Right at 0.8: 1 − 0.2² = 0.96. Wrong at 0.8: 0 − 0.8² = −0.64.
        assert!((rlcr_reward(true, 0.8) - 0.96).abs() < 1e-12);
        assert!((rlcr_reward(false, 0.8) + 0.64).abs() < 1e-12);
        assert_eq!(rlcr_reward(true, 1.0), 1.0);
        assert_eq!(rlcr_reward(false, 1.0), -1.0);
        assert_eq!(rlcr_reward(false, 0.0), 0.0);
        // Right at 0.5: 1 − 0.25.
        assert_eq!(rlcr_reward(true, 0.5), 0.75);
    }

    #[test]
    fn reads_stated_confidence() {
        for (text, want) in [
            (
                "<answer>4</answer><confidence>0.8</confidence>",
                Stated::Value(0.8),
            ),
            ("<confidence> 80% </confidence>", Stated::Value(0.8)),
            ("<confidence>70</confidence>", Stated::Value(0.7)),
            ("The answer is 4.\nConfidence: 90%", Stated::Value(0.9)),
            ("**Confidence:** 0.25", Stated::Value(0.25)),
            ("confidence level = .5", Stated::Value(0.5)),
            ("My confidence is 1", Stated::Value(1.0)),
            // the last statement wins
            (
                "Confidence: 10%\n… on reflection, Confidence: 60%",
                Stated::Value(0.6),
            ),
            ("<confidence>high</confidence>", Stated::Unreadable),
            ("<confidence>150%</confidence>", Stated::Unreadable),
            ("Confidence: 250", Stated::Unreadable),
            ("I am fairly confident it is 4", Stated::Missing),
            ("", Stated::Missing),
        ] {
            assert_eq!(stated_confidence(text), want, "{text}");
        }
    }

    #[test]
    fn abstentions() {
        assert!(is_abstention("I don't know"));
        assert!(is_abstention(
            "The answer cannot be determined from the text."
        ));
        assert!(!is_abstention("42"));
        assert!(!is_abstention("I know: 42"));
    }
}
