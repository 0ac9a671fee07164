//! Length and repetition shaping from Yeo et al., 2025, "Demystifying Long
//! Chain-of-Thought Reasoning in LLMs" (arXiv:2502.03373), as TRL / open-r1 ship them.
//!
//! - **Cosine-scaled length reward** ([`cosine_length_reward`]): with `CosFn(t, T, a, b)
//!   = b + ½(a − b)(1 + cos(tπ/T))` (value `a` at `t = 0`, `b` at `t = T`), the reward of
//!   a response of length `L` under a budget `L_max` is `CosFn(L, L_max, r0_c, rL_c)`
//!   when its answer is correct, `CosFn(L, L_max, r0_w, rL_w)` when it is wrong, and the
//!   exceed-length penalty `r_e` when `L ≥ L_max`. The paper's defaults: correct
//!   `r0 = 2`, `rL = 1` (short right answers earn more), wrong `r0 = −10`, `rL = 0`
//!   (long wrong answers are punished less: keep thinking when unsure), `r_e = −10`.
//!   The soft overlong punishment of DAPO is the separate `length` component
//!   ([`crate::length_penalty`]); this one has only the paper's hard exceed penalty.
//! - **N-gram repetition penalty** ([`repetition_penalty`]): `−p · (1 − |unique
//!   n-grams| / |n-grams|)` over the lower-cased whitespace words of the response, the
//!   sparse form of the paper's code (`get_repetition_penalty`, also open-r1's
//!   `repetition_penalty_reward`); 0 for a response with fewer than `n` words. The
//!   paper penalises n-grams of `n = 40` tokens; words stand in for tokens here.

use crate::config::LengthUnit;

/// A response's length in `unit`.
pub fn length_in(response: &str, unit: LengthUnit) -> usize {
    match unit {
        LengthUnit::Chars => response.chars().count(),
        LengthUnit::Words => response.split_whitespace().count(),
    }
}

/// The rewards of the cosine length schedule (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CosineParams {
    pub max_len: usize,
    /// Reward of a correct answer at length 0 and at `max_len`.
    pub r0_correct: f64,
    pub rl_correct: f64,
    /// Reward of a wrong answer at length 0 and at `max_len`.
    pub r0_wrong: f64,
    pub rl_wrong: f64,
    /// Reward at or past `max_len`, right or wrong.
    pub exceed: f64,
}

impl Default for CosineParams {
    /// The paper's values, with a budget of 4096 (set `max_len` to the generation limit).
    fn default() -> Self {
        Self {
            max_len: 4096,
            r0_correct: 2.0,
            rl_correct: 1.0,
            r0_wrong: -10.0,
            rl_wrong: 0.0,
            exceed: -10.0,
        }
    }
}

/// `CosFn(t, T, at_zero, at_t)`: `at_zero` at `t = 0`, `at_t` at `t = T`, cosine between.
fn cos_fn(t: usize, total: usize, at_zero: f64, at_t: f64) -> f64 {
    let x = t as f64 / total as f64;
    at_t + 0.5 * (at_zero - at_t) * (1.0 + (x * std::f64::consts::PI).cos())
}

/// The cosine-scaled reward of a response of length `len` whose answer is (not) `correct`.
pub fn cosine_length_reward(len: usize, correct: bool, p: &CosineParams) -> f64 {
    if len >= p.max_len {
        return p.exceed;
    }
    if correct {
        cos_fn(len, p.max_len, p.r0_correct, p.rl_correct)
    } else {
        cos_fn(len, p.max_len, p.r0_wrong, p.rl_wrong)
    }
}

/// `−penalty × (share of repeated word n-grams)`, in `[−penalty, 0]`. Words compare
/// lowercased; each distinct word becomes a number once (no allocation for a word that
/// is lowercase ASCII already), so the n-grams hashed are slices of numbers.
pub fn repetition_penalty(text: &str, n: usize, penalty: f64) -> f64 {
    use std::borrow::Cow;
    use std::collections::{HashMap, HashSet};
    if n == 0 {
        return 0.0;
    }
    let mut ids: HashMap<Cow<str>, u32> = HashMap::new();
    let words: Vec<u32> = text
        .split_whitespace()
        .map(|w| {
            let key = if w.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase()) {
                Cow::Borrowed(w)
            } else {
                Cow::Owned(w.to_lowercase())
            };
            let next = ids.len() as u32;
            *ids.entry(key).or_insert(next)
        })
        .collect();
    if words.len() < n {
        return 0.0;
    }
    let total = words.len() - n + 1;
    let unique: HashSet<&[u32]> = words.windows(n).collect();
    let repeated = 1.0 - unique.len() as f64 / total as f64;
    -penalty * repeated
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn cosine_schedule_by_hand() {
        let p = CosineParams {
            max_len: 100,
            ..CosineParams::default()
        };
        // Length 0: r0. Half the budget: cos(π/2) = 0, so the midpoint of r0 and rL.
        assert!(close(cosine_length_reward(0, true, &p), 2.0));
        assert!(close(cosine_length_reward(50, true, &p), 1.5));
        assert!(close(cosine_length_reward(0, false, &p), -10.0));
        assert!(close(cosine_length_reward(50, false, &p), -5.0));
        // A quarter: 1 + ½·1·(1 + cos(π/4)) = 1 + ½(1 + √2/2).
        let want = 1.0 + 0.5 * (1.0 + std::f64::consts::FRAC_1_SQRT_2);
        assert!(close(cosine_length_reward(25, true, &p), want));
        // Wrong, three quarters: 0 + ½·(−10)·(1 + cos(3π/4)) = −5(1 − √2/2).
        let want = -5.0 * (1.0 - std::f64::consts::FRAC_1_SQRT_2);
        assert!(close(cosine_length_reward(75, false, &p), want));
        // At or past the budget: the exceed penalty, right or wrong.
        assert_eq!(cosine_length_reward(100, true, &p), -10.0);
        assert_eq!(cosine_length_reward(150, false, &p), -10.0);
        // Shorter right answers earn more; longer wrong ones lose less.
        assert!(cosine_length_reward(10, true, &p) > cosine_length_reward(90, true, &p));
        assert!(cosine_length_reward(10, false, &p) < cosine_length_reward(90, false, &p));
    }

    proptest::proptest! {
        /// The interned n-grams count exactly what n-grams of lowercased words do.
        #[test]
        fn repetition_equals_the_plain_definition(
            text in "([aAbBéÉ]{1,2}[ \n\t]{1,2}){0,40}",
            n in 1usize..5,
        ) {
            let words: Vec<String> = text.split_whitespace().map(str::to_lowercase).collect();
            let want = if words.len() < n {
                0.0
            } else {
                let grams: Vec<&[String]> = words.windows(n).collect();
                let unique: std::collections::HashSet<&[String]> = grams.iter().copied().collect();
                -(1.0 - unique.len() as f64 / grams.len() as f64)
            };
            proptest::prop_assert!(close(repetition_penalty(&text, n, 1.0), want));
        }
    }

    #[test]
    fn repetition_by_hand() {
        // "a b a b a b", bigrams: ab ba ab ba ab → 2 unique of 5: −p·(1 − 2/5).
        assert!(close(repetition_penalty("a b a b a b", 2, 1.0), -0.6));
        assert!(close(repetition_penalty("A b a B a b", 2, 0.5), -0.3));
        // No repeats, or fewer words than n: 0.
        assert_eq!(repetition_penalty("one two three four", 2, 1.0), 0.0);
        assert_eq!(repetition_penalty("one two", 40, 1.0), 0.0);
        assert_eq!(repetition_penalty("", 3, 1.0), 0.0);
        // One word repeated 10 times, trigrams: 8 all equal → 1 − 1/8.
        let same = "go ".repeat(10);
        assert!(close(repetition_penalty(&same, 3, 1.0), -(1.0 - 1.0 / 8.0)));
    }
}
