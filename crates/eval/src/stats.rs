//! Small statistics: unbiased pass@k, seeded bootstrap confidence intervals.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// A seeded random number generator (ChaCha8), so every resampling is reproducible.
pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// Unbiased pass@k (Chen et al., 2021): `1 - C(n-c, k) / C(n, k)` for `n` samples of
/// which `c` are correct, computed as `1 - prod_{i=n-c+1}^{n} (1 - k/i)` so that
/// no binomial coefficient is ever formed. `None` when `k == 0` or `k > n`.
pub fn pass_at_k(n: usize, c: usize, k: usize) -> Option<f64> {
    if k == 0 || k > n || c > n {
        return None;
    }
    if n - c < k {
        return Some(1.0);
    }
    let mut prod = 1.0f64;
    for i in (n - c + 1)..=n {
        prod *= 1.0 - k as f64 / i as f64;
    }
    Some(1.0 - prod)
}

/// A point estimate with a confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub mean: f64,
    pub lo: f64,
    pub hi: f64,
}

/// Mean of `values` with a percentile bootstrap interval at `level` (e.g. 0.95) from
/// `resamples` resamples drawn with `seed`. Empty input gives `None`.
pub fn bootstrap_mean(values: &[f64], resamples: usize, level: f64, seed: u64) -> Option<Estimate> {
    if values.is_empty() {
        return None;
    }
    let n = values.len();
    let mean = values.iter().sum::<f64>() / n as f64;
    if resamples == 0 {
        return Some(Estimate {
            mean,
            lo: mean,
            hi: mean,
        });
    }
    let mut r = rng(seed);
    let mut means: Vec<f64> = (0..resamples)
        .map(|_| (0..n).map(|_| values[r.gen_range(0..n)]).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    let alpha = (1.0 - level.clamp(0.0, 1.0)) / 2.0;
    let q = |p: f64| {
        let pos = p * (resamples - 1) as f64;
        let (i, f) = (pos.floor() as usize, pos - pos.floor());
        let j = (i + 1).min(resamples - 1);
        means[i] * (1.0 - f) + means[j] * f
    };
    Some(Estimate {
        mean,
        lo: q(alpha),
        hi: q(1.0 - alpha),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binom(n: u64, k: u64) -> f64 {
        if k > n {
            return 0.0;
        }
        (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
    }

    #[test]
    fn pass_at_k_matches_the_binomial_formula() {
        for n in 1..=12usize {
            for c in 0..=n {
                for k in 1..=n {
                    let direct = 1.0 - binom((n - c) as u64, k as u64) / binom(n as u64, k as u64);
                    let got = pass_at_k(n, c, k).unwrap();
                    assert!((got - direct).abs() < 1e-12, "n={n} c={c} k={k}");
                }
            }
        }
        // by hand: n=4, c=1, k=2 -> 1 - C(3,2)/C(4,2) = 1 - 3/6 = 0.5
        assert_eq!(pass_at_k(4, 1, 2), Some(0.5));
        assert_eq!(pass_at_k(4, 0, 4), Some(0.0));
        assert_eq!(pass_at_k(4, 1, 1), Some(0.25));
        assert_eq!(pass_at_k(3, 1, 4), None);
        assert_eq!(pass_at_k(3, 1, 0), None);
    }

    #[test]
    fn pass_at_k_is_stable_for_large_n() {
        // C(1000, 500) overflows f64; the product form does not.
        let p = pass_at_k(1000, 3, 500).unwrap();
        // 1 - (500/1000)(499/999)(498/998) ≈ 0.8751
        let expect = 1.0 - (500.0 / 1000.0) * (499.0 / 999.0) * (498.0 / 998.0);
        assert!((p - expect).abs() < 1e-12);
        assert!(p.is_finite());
    }

    #[test]
    fn bootstrap_is_seeded_and_brackets_the_mean() {
        let v: Vec<f64> = (0..50).map(|i| f64::from(i % 2)).collect();
        let a = bootstrap_mean(&v, 500, 0.95, 7).unwrap();
        let b = bootstrap_mean(&v, 500, 0.95, 7).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.mean, 0.5);
        assert!(
            a.lo < 0.5 && a.hi > 0.5 && a.lo > 0.2 && a.hi < 0.8,
            "{a:?}"
        );
        let c = bootstrap_mean(&[1.0; 10], 100, 0.95, 1).unwrap();
        assert_eq!((c.lo, c.hi), (1.0, 1.0));
        assert!(bootstrap_mean(&[], 100, 0.95, 1).is_none());
    }
}
