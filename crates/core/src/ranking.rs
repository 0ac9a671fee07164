//! Rankings from pairwise verdicts: a knockout tournament and Bradley–Terry strengths.
//!
//! Pure functions shared by the pairwise judge of best-of-N (Think-RM, Hong et al. 2025,
//! "Think-RM: Enabling Long-Horizon Reasoning in Generative Reward Models", which ranks
//! candidates by a knockout tournament of pairwise judgments) and by the `scale` table,
//! which replays them from stored verdicts.
//!
//! A verdict on a pair `(a, b)` is `a`'s *share*: 1 when `a` won, 0 when `b` won, a value
//! between when several judgments (both presentation orders) disagree, and `None` when
//! every judgment abstained.

use serde::{Deserialize, Serialize};

/// Pseudo-wins added to every ordered pair before fitting Bradley–Terry (a weak prior
/// that all candidates are equal), so an undefeated candidate keeps a finite strength
/// and candidates never compared still get one.
pub const BT_PSEUDO_COUNT: f64 = 0.1;

/// One match of a knockout round: `a` (earlier in candidate order) against `b`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Match {
    pub a: usize,
    pub b: usize,
    /// `a`'s share of the verdicts (`None`: every judgment abstained).
    pub share: Option<f64>,
    pub winner: usize,
}

/// One round of a knockout: its matches and the candidate that sat it out.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Round {
    pub matches: Vec<Match>,
    pub bye: Option<usize>,
}

/// A played knockout tournament.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Bracket {
    pub rounds: Vec<Round>,
    /// The champion (`None` without candidates).
    pub winner: Option<usize>,
}

impl Bracket {
    /// Every pair that was played, in order.
    pub fn played(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.rounds
            .iter()
            .flat_map(|r| r.matches.iter().map(|m| (m.a, m.b)))
    }
}

/// The pairings of one knockout round: neighbours in candidate order (`0–1`, `2–3`, …);
/// with an odd count the last entrant gets a bye.
pub fn pairings(entrants: &[usize]) -> (Vec<(usize, usize)>, Option<usize>) {
    let pairs = entrants.chunks_exact(2).map(|c| (c[0], c[1])).collect();
    let bye = (entrants.len() % 2 == 1).then(|| entrants[entrants.len() - 1]);
    (pairs, bye)
}

/// The winner of a match: `a` with a share above ½, `b` below; a tie (½, or no verdict
/// at all) goes to `a`, the candidate earlier in candidate order.
pub fn match_winner(a: usize, b: usize, share: Option<f64>) -> usize {
    match share {
        Some(s) if s < 0.5 => b,
        _ => a,
    }
}

/// A knockout tournament over candidates `0..n` in candidate order ([`pairings`],
/// [`match_winner`]); `share(a, b)` judges a pair. Rounds are played until one remains.
pub fn knockout(n: usize, mut share: impl FnMut(usize, usize) -> Option<f64>) -> Bracket {
    let mut entrants: Vec<usize> = (0..n).collect();
    let mut rounds = Vec::new();
    while entrants.len() > 1 {
        let (pairs, bye) = pairings(&entrants);
        let matches: Vec<Match> = pairs
            .into_iter()
            .map(|(a, b)| {
                let s = share(a, b);
                Match {
                    a,
                    b,
                    share: s,
                    winner: match_winner(a, b, s),
                }
            })
            .collect();
        entrants = advance(&matches, bye);
        rounds.push(Round { matches, bye });
    }
    Bracket {
        rounds,
        winner: entrants.first().copied(),
    }
}

/// Who goes on to the next round: the winners in bracket order, then the bye.
pub fn advance(matches: &[Match], bye: Option<usize>) -> Vec<usize> {
    matches.iter().map(|m| m.winner).chain(bye).collect()
}

/// Bradley–Terry strengths of candidates `0..n` from pairwise results `(a, b, share)`
/// (one comparison each: `a` scores `share` wins, `b` scores `1 - share`), fitted by
/// Hunter's (2004, "MM algorithms for generalized Bradley–Terry models") MM iterations
///
/// `p_i ← W_i / Σ_{j≠i} N_ij / (p_i + p_j)`
///
/// where `W_i` is `i`'s wins and `N_ij` the comparisons of `i` and `j`, both after adding
/// `pseudo` wins to every ordered pair ([`BT_PSEUDO_COUNT`]). Strengths are normalized
/// to sum to 1. Results naming a candidate outside `0..n` or a share outside `[0, 1]` are
/// left out.
pub fn bradley_terry(n: usize, results: &[(usize, usize, f64)], pseudo: f64) -> Vec<f64> {
    if n == 0 {
        return Vec::new();
    }
    let pseudo = if pseudo.is_finite() && pseudo > 0.0 {
        pseudo
    } else {
        0.0
    };
    // w[i][j]: wins of i over j
    let mut w = vec![vec![0.0; n]; n];
    for (i, row) in w.iter_mut().enumerate() {
        for (j, x) in row.iter_mut().enumerate() {
            if i != j {
                *x = pseudo;
            }
        }
    }
    for &(a, b, s) in results {
        if a < n && b < n && a != b && (0.0..=1.0).contains(&s) {
            w[a][b] += s;
            w[b][a] += 1.0 - s;
        }
    }
    let wins: Vec<f64> = w.iter().map(|r| r.iter().sum()).collect();
    let mut p = vec![1.0 / n as f64; n];
    for _ in 0..100_000 {
        let mut next = vec![0.0; n];
        for i in 0..n {
            let denom: f64 = (0..n)
                .filter(|&j| j != i && p[i] + p[j] > 0.0)
                .map(|j| (w[i][j] + w[j][i]) / (p[i] + p[j]))
                .sum();
            next[i] = if denom > 0.0 { wins[i] / denom } else { p[i] };
        }
        let total: f64 = next.iter().sum();
        if total > 0.0 {
            next.iter_mut().for_each(|x| *x /= total);
        }
        let change = p
            .iter()
            .zip(&next)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        p = next;
        if change < 1e-14 {
            break;
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knockout_plays_neighbours_with_byes_and_breaks_ties_by_order() {
        // 5 candidates; 3 beats everyone, 0 beats 1, 2 and 4 tie (no verdict)
        let share = |a: usize, b: usize| -> Option<f64> {
            match (a, b) {
                (0, 1) => Some(1.0),
                (2, 3) | (0, 3) => Some(0.0),
                (3, 4) => Some(0.5),
                _ => None,
            }
        };
        let b = knockout(5, share);
        // round 1: 0-1 (0), 2-3 (3), bye 4; round 2: 0-3 (3), bye 4; round 3: 3-4 tie -> 3
        let played: Vec<_> = b.played().collect();
        assert_eq!(played, [(0, 1), (2, 3), (0, 3), (3, 4)]);
        assert_eq!(b.rounds[0].bye, Some(4));
        assert_eq!(b.rounds[1].bye, Some(4));
        assert_eq!(b.rounds[2].bye, None);
        assert_eq!(b.rounds[2].matches[0].winner, 3);
        assert_eq!(b.winner, Some(3));
        // a tie or no verdict goes to the earlier candidate
        assert_eq!(match_winner(1, 2, None), 1);
        assert_eq!(match_winner(1, 2, Some(0.5)), 1);
        assert_eq!(match_winner(1, 2, Some(0.25)), 2);
        assert_eq!(knockout(1, |_, _| None).winner, Some(0));
        assert_eq!(knockout(0, |_, _| None).winner, None);
    }

    #[test]
    fn bradley_terry_by_hand() {
        // Without pseudo-counts, wins A:B 2–1, A:C 4–1, B:C 2–1 are fitted exactly by
        // strengths (4, 2, 1)/7 (4/6 = 2/3, 4/5, 2/3), so those are the MLE.
        let mut r = Vec::new();
        for (a, b, wa, wb) in [(0, 1, 2, 1), (0, 2, 4, 1), (1, 2, 2, 1)] {
            r.extend(std::iter::repeat_n((a, b, 1.0), wa));
            r.extend(std::iter::repeat_n((a, b, 0.0), wb));
        }
        let p = bradley_terry(3, &r, 0.0);
        for (got, want) in p.iter().zip([4.0 / 7.0, 2.0 / 7.0, 1.0 / 7.0]) {
            assert!((got - want).abs() < 1e-6, "{p:?}");
        }
        // With the pseudo-count 0.1: A beat B once and C once, B and C never met.
        // w_AB = w_AC = 1.1, every other w = 0.1. By symmetry p_B = p_C = q, p_A = r;
        // A's equation 2.2 = 2 * 1.2 * r / (r + q) gives r = 11 q, so (11, 1, 1)/13
        // (B's: 0.2 = 1.2 * 1/12 + 0.2 * 1/2 holds too). Undefeated A stays finite.
        let p = bradley_terry(3, &[(0, 1, 1.0), (2, 0, 0.0)], BT_PSEUDO_COUNT);
        for (got, want) in p.iter().zip([11.0 / 13.0, 1.0 / 13.0, 1.0 / 13.0]) {
            assert!((got - want).abs() < 1e-6, "{p:?}");
        }
        // a split verdict counts half a win each way: A:B 1.6-0.6 -> 1.6/2.2 = 8/11
        let p = bradley_terry(2, &[(0, 1, 1.0), (0, 1, 0.5)], BT_PSEUDO_COUNT);
        assert!((p[0] - 1.6 / 2.2).abs() < 1e-9, "{p:?}");
        // no results: all equal; entries naming no candidate or a bad share are ignored
        let p = bradley_terry(3, &[(0, 7, 1.0), (0, 1, 2.0)], BT_PSEUDO_COUNT);
        assert!(p.iter().all(|x| (x - 1.0 / 3.0).abs() < 1e-12), "{p:?}");
        assert!(bradley_terry(0, &[], BT_PSEUDO_COUNT).is_empty());
    }
}
