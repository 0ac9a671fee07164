//! Boundary types of the pairwise judge (Think-RM, Hong et al. 2025): how best-of-N picks
//! by pairwise verdicts, as `solve` and `scale` configs store it, and one judged pair as
//! `scale` records store it (so the table replays the bracket and the Bradley–Terry fit
//! at every `n` from stored verdicts).

use serde::{Deserialize, Serialize};
use stepwise_core::Spent;
use stepwise_core::ranking::{BT_PSEUDO_COUNT, Bracket, bradley_terry, knockout};

/// How pairwise verdicts pick the best of N.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PairwiseMethod {
    /// A knockout tournament in candidate order (byes for odd counts, ties to the
    /// earlier candidate): `pairwise-knockout`.
    Knockout,
    /// Bradley–Terry strengths fitted over every pair: `pairwise-bt`.
    BradleyTerry,
}

impl PairwiseMethod {
    /// The name of the selector (`--select`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Knockout => "pairwise-knockout",
            Self::BradleyTerry => "pairwise-bt",
        }
    }
}

impl std::str::FromStr for PairwiseMethod {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "pairwise-knockout" | "knockout" => Ok(Self::Knockout),
            "pairwise-bt" | "bt" | "bradley-terry" => Ok(Self::BradleyTerry),
            other => Err(format!(
                "unknown selector '{other}' (expected pairwise-knockout or pairwise-bt)"
            )),
        }
    }
}

/// The pairwise selector of best-of-N, as a run stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairwiseSettings {
    pub method: PairwiseMethod,
    /// Judge each pair in both orders (A/B and B/A) to cancel position bias.
    pub both_orders: bool,
    /// Tokens of the judge's reasoning before its verdict.
    pub max_tokens: u32,
    pub temperature: f32,
    /// Text of the pairwise prompt template; `None` is the built-in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
}

impl Default for PairwiseSettings {
    fn default() -> Self {
        Self {
            method: PairwiseMethod::Knockout,
            both_orders: true,
            max_tokens: 1024,
            temperature: 0.7,
            prompt: None,
        }
    }
}

/// The verdicts on one pair of candidates (indices into the samples).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PairVerdict {
    pub a: usize,
    pub b: usize,
    /// The winner by each judged order (first `a` shown as A, then `b` shown as A); `None`
    /// where the verdict could not be read (that judgment abstains).
    pub orders: Vec<Option<usize>>,
    /// What judging the pair cost (judge columns).
    pub spent: Spent,
}

impl PairVerdict {
    /// `a`'s share: the mean over the orders that gave a verdict of 1 (`a` won) or 0;
    /// `None` when every order abstained.
    pub fn share(&self) -> Option<f64> {
        let votes: Vec<f64> = self
            .orders
            .iter()
            .flatten()
            .map(|&w| if w == self.a { 1.0 } else { 0.0 })
            .collect();
        (!votes.is_empty()).then(|| votes.iter().sum::<f64>() / votes.len() as f64)
    }

    /// Judgments without a readable verdict.
    pub fn abstained(&self) -> usize {
        self.orders.iter().filter(|o| o.is_none()).count()
    }
}

/// Every pair of a `scale` draw judged by the pairwise selector, so best-of-N at each `n`
/// replays its method over the first `n` samples ([`pick`]) and counts only the pairs it
/// used ([`used_spent`]): what a `solve` run of best-of-N with `n` samples judges.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairwiseDraw {
    pub method: PairwiseMethod,
    /// Every pair `(i, j)`, `i < j`, of the draw.
    pub pairs: Vec<PairVerdict>,
}

/// The verdict on `(a, b)` among `pairs` (either way round), as `a`'s share.
pub fn share_of(pairs: &[PairVerdict], a: usize, b: usize) -> Option<f64> {
    pairs.iter().find_map(|p| {
        if (p.a, p.b) == (a, b) {
            Some(p.share())
        } else if (p.a, p.b) == (b, a) {
            Some(p.share().map(|s| 1.0 - s))
        } else {
            None
        }
    })?
}

/// What pairwise selection picked among candidates `0..n` from judged pairs, and the
/// pairs it used (the bracket's matches, or every pair for Bradley–Terry).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Picked {
    pub chosen: Option<usize>,
    pub bracket: Option<Bracket>,
    /// Bradley–Terry strengths (sum 1).
    pub strengths: Vec<f64>,
    pub used: Vec<(usize, usize)>,
}

/// Picks among candidates `0..n` by `method` from stored verdicts (a pair not among
/// `pairs` counts as no verdict): the knockout champion, or the strongest by
/// Bradley–Terry over every pair within `0..n` (ties to the earlier candidate).
pub fn pick(method: PairwiseMethod, n: usize, pairs: &[PairVerdict]) -> Picked {
    match method {
        PairwiseMethod::Knockout => {
            let bracket = knockout(n, |a, b| share_of(pairs, a, b));
            Picked {
                chosen: bracket.winner,
                used: bracket.played().collect(),
                bracket: Some(bracket),
                strengths: Vec::new(),
            }
        }
        PairwiseMethod::BradleyTerry => {
            let within: Vec<&PairVerdict> = pairs.iter().filter(|p| p.a < n && p.b < n).collect();
            let results: Vec<(usize, usize, f64)> = within
                .iter()
                .filter_map(|p| p.share().map(|s| (p.a, p.b, s)))
                .collect();
            let strengths = bradley_terry(n, &results, BT_PSEUDO_COUNT);
            Picked {
                chosen: crate::kinds::solve::argmax(strengths.iter().copied()),
                used: within.iter().map(|p| (p.a, p.b)).collect(),
                bracket: None,
                strengths,
            }
        }
    }
}

/// What judging `used` cost, summed from the stored pairs.
pub fn used_spent(pairs: &[PairVerdict], used: &[(usize, usize)]) -> Spent {
    let mut s = Spent::default();
    for &(a, b) in used {
        if let Some(p) = pairs
            .iter()
            .find(|p| (p.a, p.b) == (a, b) || (p.a, p.b) == (b, a))
        {
            s += p.spent;
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pv(a: usize, b: usize, orders: &[Option<usize>], tokens: u64) -> PairVerdict {
        PairVerdict {
            a,
            b,
            orders: orders.to_vec(),
            spent: Spent {
                judge_tokens: tokens,
                judge_calls: orders.len() as u64,
                ..Spent::default()
            },
        }
    }

    #[test]
    fn shares_abstentions_and_picks_from_stored_verdicts() {
        // 0-1: both orders say 1; 0-2: split (0 then 2); 1-2: one order abstains, 2 wins
        let pairs = vec![
            pv(0, 1, &[Some(1), Some(1)], 10),
            pv(0, 2, &[Some(0), Some(2)], 20),
            pv(1, 2, &[None, Some(2)], 40),
        ];
        assert_eq!(pairs[0].share(), Some(0.0));
        assert_eq!(pairs[1].share(), Some(0.5));
        assert_eq!(pairs[2].share(), Some(0.0));
        assert_eq!(pairs[2].abstained(), 1);
        assert_eq!(share_of(&pairs, 2, 1), Some(1.0));
        assert_eq!(pv(0, 1, &[None, None], 0).share(), None);
        // knockout over 3: 0-1 -> 1, bye 2; 1-2 -> 2
        let k = pick(PairwiseMethod::Knockout, 3, &pairs);
        assert_eq!(k.chosen, Some(2));
        assert_eq!(k.used, [(0, 1), (1, 2)]);
        assert_eq!(used_spent(&pairs, &k.used).judge_tokens, 50);
        // over the first 2 only the first pair counts
        let k2 = pick(PairwiseMethod::Knockout, 2, &pairs);
        assert_eq!((k2.chosen, k2.used.len()), (Some(1), 1));
        // BT over 3: wins 0: 0.5, 1: 1, 2: 1.5 (+ pseudo) -> 2 strongest
        let bt = pick(PairwiseMethod::BradleyTerry, 3, &pairs);
        assert_eq!(bt.chosen, Some(2));
        assert!(bt.strengths[2] > bt.strengths[1] && bt.strengths[1] > bt.strengths[0]);
        assert_eq!(used_spent(&pairs, &bt.used).judge_tokens, 70);
        assert_eq!("pairwise-bt".parse(), Ok(PairwiseMethod::BradleyTerry));
        assert!("pairwise".parse::<PairwiseMethod>().is_err());
    }
}
