//! ReasonRank's multi-view ranking reward (Liu et al., 2025, "ReasonRank: Empowering
//! Passage Ranking with Strong Reasoning Ability", arXiv:2508.07050) for listwise
//! reranking outputs such as `[3] > [1] > [2]`.
//!
//! With `R` the relevant passages and `π` the predicted order, the reward is the
//! official implementation's (`verl/utils/reward_score/ranking.py`, `compute_score`):
//!
//! `r = NDCG@10(π, R) + φ · Recall@10(π, R) + γ · RBO(π, gold)`, `φ = 0.2`, `γ = 0.1`,
//!
//! with binary relevance (`NDCG@k = DCG@k / IDCG@k`, `DCG@k = Σ_{i ≤ k} rel(π_i) /
//! log2(i + 1)`), `Recall@k = |π_{≤k} ∩ R| / |R|`, and rank-biased overlap against the
//! gold order as the `rbo` package computes it (`p = 1`: the average overlap
//! `(1/K) Σ_{d ≤ K} |π_{≤d} ∩ g_{≤d}| / d`; `p < 1`: `(1 − p) Σ_d p^(d−1) A_d`).
//!
//! The format check follows the same code: an answer that is not a ranking scores
//! `unparsed` (−1 there) and raises the `ranking_unparsed` flag; a ranking that is not a
//! permutation of the gold's identifiers (missing, extra or repeated ones) scores 0.
//!
//! The gold (the item's label) is the ranking — `[2] > [1] > [3]`, `2 1 3` or the JSON
//! list `[2, 1, 3]` — or `{"ranking": [2, 1, 3], "relevant": [2, 1]}`. ReasonRank's data
//! carries the relevant set; without one, the first `relevant_top` identifiers of the
//! gold ranking are taken as the relevant ones (a choice of this crate).

use std::collections::HashSet;

/// The parameters of the reward (defaults: the official implementation's).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RankParams {
    /// The cut-off of NDCG (10).
    pub ndcg_k: usize,
    /// The cut-off of recall (10).
    pub recall_k: usize,
    /// φ, the weight of recall (0.2).
    pub phi: f64,
    /// γ, the weight of RBO (0.1).
    pub gamma: f64,
    /// RBO's persistence p (1: average overlap, the `rbo` package's default).
    pub rbo_p: f64,
    /// Without a relevant set in the gold: the first this many gold identifiers (10).
    pub relevant_top: usize,
}

impl Default for RankParams {
    fn default() -> Self {
        Self {
            ndcg_k: 10,
            recall_k: 10,
            phi: 0.2,
            gamma: 0.1,
            rbo_p: 1.0,
            relevant_top: 10,
        }
    }
}

/// A gold ranking and its relevant identifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoldRanking {
    pub ranking: Vec<u64>,
    pub relevant: Vec<u64>,
}

/// Reads a listwise answer `[3] > [1] > [2]` (whitespace free); `None` when it is not one.
pub fn parse_ranking(text: &str) -> Option<Vec<u64>> {
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    t.split('>')
        .map(|part| {
            let inner = part.trim().strip_prefix('[')?.strip_suffix(']')?.trim();
            if inner.is_empty() || !inner.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            inner.parse().ok()
        })
        .collect()
}

/// Reads the gold of an item (see the module docs); the error says what is wrong.
pub fn parse_gold(gold: &str, relevant_top: usize) -> Result<GoldRanking, String> {
    let t = gold.trim();
    let ids = |v: &serde_json::Value, what: &str| -> Result<Vec<u64>, String> {
        v.as_array()
            .ok_or(format!("ranking gold: `{what}` is not a list"))?
            .iter()
            .map(|x| {
                x.as_u64()
                    .or_else(|| x.as_str().and_then(|s| s.trim().parse().ok()))
                    .ok_or(format!(
                        "ranking gold: `{what}` holds {x}, not an identifier"
                    ))
            })
            .collect()
    };
    let (ranking, relevant) = if t.starts_with('{') {
        let v: serde_json::Value =
            serde_json::from_str(t).map_err(|e| format!("ranking gold is not JSON: {e}"))?;
        let ranking = ids(
            v.get("ranking").ok_or("ranking gold: no `ranking`")?,
            "ranking",
        )?;
        let relevant = match v.get("relevant") {
            Some(r) => Some(ids(r, "relevant")?),
            None => None,
        };
        (ranking, relevant)
    } else {
        // `[2] > [1]`, `2 1 3`, `[2, 1, 3]`: the digit runs, as the official code reads labels.
        let ranking: Vec<u64> = t
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse()
                    .map_err(|_| format!("ranking gold: '{s}' is too large"))
            })
            .collect::<Result<_, _>>()?;
        (ranking, None)
    };
    if ranking.is_empty() {
        return Err("ranking gold holds no identifiers".into());
    }
    let relevant = relevant.unwrap_or_else(|| ranking.iter().take(relevant_top).copied().collect());
    Ok(GoldRanking { ranking, relevant })
}

/// NDCG@k with binary relevance.
pub fn ndcg_at(pred: &[u64], relevant: &HashSet<u64>, k: usize) -> f64 {
    let gain = |i: usize| 1.0 / (i as f64 + 2.0).log2();
    let dcg: f64 = pred
        .iter()
        .take(k)
        .enumerate()
        .filter(|(_, d)| relevant.contains(d))
        .map(|(i, _)| gain(i))
        .sum();
    let ideal: f64 = (0..relevant.len().min(k)).map(gain).sum();
    if ideal == 0.0 { 0.0 } else { dcg / ideal }
}

/// Recall@k.
pub fn recall_at(pred: &[u64], relevant: &HashSet<u64>, k: usize) -> f64 {
    if relevant.is_empty() {
        return 0.0;
    }
    let hit = pred.iter().take(k).filter(|d| relevant.contains(d)).count();
    hit as f64 / relevant.len() as f64
}

/// Rank-biased overlap of two rankings (the `rbo` package's `rbo()` without
/// extrapolation, over the shorter list's depth).
pub fn rbo(s: &[u64], t: &[u64], p: f64) -> f64 {
    let k = s.len().min(t.len());
    if s.is_empty() && t.is_empty() {
        return 1.0;
    }
    if k == 0 {
        return 0.0;
    }
    let (mut seen_s, mut seen_t) = (HashSet::new(), HashSet::new());
    let mut overlap = 0usize;
    let mut sum = 0.0;
    for d in 0..k {
        if s[d] == t[d] {
            overlap += 1;
        } else {
            overlap += usize::from(seen_t.contains(&s[d])) + usize::from(seen_s.contains(&t[d]));
        }
        seen_s.insert(s[d]);
        seen_t.insert(t[d]);
        let a = overlap as f64 / (d + 1) as f64;
        sum += if p == 1.0 {
            a
        } else {
            (1.0 - p) * p.powi(d as i32) * a
        };
    }
    let v = if p == 1.0 { sum / k as f64 } else { sum };
    v.clamp(0.0, 1.0)
}

/// The multi-view reward of a parsed prediction; 0 when it is not a permutation of the
/// gold's identifiers.
pub fn rank_reward(pred: &[u64], gold: &GoldRanking, p: &RankParams) -> f64 {
    let want: HashSet<u64> = gold.ranking.iter().copied().collect();
    let got: HashSet<u64> = pred.iter().copied().collect();
    if pred.len() != gold.ranking.len() || got.len() != pred.len() || got != want {
        return 0.0;
    }
    let relevant: HashSet<u64> = gold.relevant.iter().copied().collect();
    ndcg_at(pred, &relevant, p.ndcg_k)
        + p.phi * recall_at(pred, &relevant, p.recall_k)
        + p.gamma * rbo(pred, &gold.ranking, p.rbo_p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_answers_and_golds() {
        assert_eq!(parse_ranking("[3] > [1] > [2]"), Some(vec![3, 1, 2]));
        assert_eq!(parse_ranking(" [10]>[2] "), Some(vec![10, 2]));
        for bad in ["", "3 > 1", "[3] > [x]", "[3] [1]", "[3] > ", "[] > [1]"] {
            assert_eq!(parse_ranking(bad), None, "{bad}");
        }
        let g = parse_gold("[2] > [1] > [3]", 2).unwrap();
        assert_eq!((g.ranking, g.relevant), (vec![2, 1, 3], vec![2, 1]));
        let g = parse_gold("[2, 1, 3]", 10).unwrap();
        assert_eq!(g.relevant, vec![2, 1, 3]);
        let g = parse_gold(r#"{"ranking": [2, "1", 3], "relevant": [3]}"#, 10).unwrap();
        assert_eq!((g.ranking, g.relevant), (vec![2, 1, 3], vec![3]));
        assert!(parse_gold("", 10).is_err());
        assert!(
            parse_gold(r#"{"relevant": [1]}"#, 10)
                .unwrap_err()
                .contains("ranking")
        );
        assert!(parse_gold(r#"{"ranking": [true]}"#, 10).is_err());
    }

    #[test]
    fn multi_view_reward_by_hand() {
        let gold = GoldRanking {
            ranking: vec![1, 2, 3],
            relevant: vec![1, 2],
        };
        let pred = [2, 3, 1];
        let rel: HashSet<u64> = [1, 2].into();
        // DCG = 1/log2(2) + 0 + 1/log2(4) = 1.5; IDCG = 1 + 1/log2(3).
        let ndcg = 1.5 / (1.0 + 1.0 / 3f64.log2());
        assert!((ndcg_at(&pred, &rel, 10) - ndcg).abs() < 1e-12);
        assert_eq!(recall_at(&pred, &rel, 10), 1.0);
        assert_eq!(recall_at(&pred, &rel, 1), 0.5);
        // Overlaps at depth 1, 2, 3: 0/1, 1/2, 3/3 → mean 0.5.
        assert!((rbo(&pred, &gold.ranking, 1.0) - 0.5).abs() < 1e-12);
        // p = 0.5: 0.5·(0 + 0.5·0.5 + 0.25·1) = 0.25.
        assert!((rbo(&pred, &gold.ranking, 0.5) - 0.25).abs() < 1e-12);
        let r = rank_reward(&pred, &gold, &RankParams::default());
        assert!((r - (ndcg + 0.2 * 1.0 + 0.1 * 0.5)).abs() < 1e-12);
        // The gold order itself: 1 + 0.2 + 0.1.
        let best = rank_reward(&[1, 2, 3], &gold, &RankParams::default());
        assert!((best - 1.3).abs() < 1e-12);
        // Not a permutation of the gold's identifiers: 0.
        for bad in [&[1, 2][..], &[1, 2, 2], &[1, 2, 4], &[1, 2, 3, 4]] {
            assert_eq!(
                rank_reward(bad, &gold, &RankParams::default()),
                0.0,
                "{bad:?}"
            );
        }
    }
}
