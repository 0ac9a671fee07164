//! Calibration of probabilities against binary outcomes: ECE, Brier score, AUROC,
//! and the bins of a reliability diagram.

use serde::{Deserialize, Serialize};
pub use stepwise_core::metrics::{Bin, ECE_BINS, auroc, brier, ece, reliability_bins};

/// Calibration summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    pub n: usize,
    pub positives: usize,
    pub ece: f64,
    pub brier: f64,
    /// `None` when all outcomes are the same.
    pub auroc: Option<f64>,
    pub bins: Vec<Bin>,
}

/// All calibration measures at once.
pub fn calibrate(pairs: &[(f64, bool)]) -> Calibration {
    Calibration {
        n: pairs.len(),
        positives: pairs.iter().filter(|p| p.1).count(),
        ece: ece(pairs),
        brier: brier(pairs),
        auroc: auroc(pairs),
        bins: reliability_bins(pairs, ECE_BINS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ece_by_hand() {
        // bin of 0.1 (bin 1 of 15): p=0.1 twice, outcomes 1,0 -> acc 0.5, conf 0.1, gap 0.4
        // bin of 0.9 (bin 13): p=0.9 twice, outcomes 1,1 -> acc 1, conf 0.9, gap 0.1
        // ECE = 0.5*0.4 + 0.5*0.1 = 0.25
        let pairs = [(0.1, true), (0.1, false), (0.9, true), (0.9, true)];
        assert!((ece(&pairs) - 0.25).abs() < 1e-12);
        let bins = reliability_bins(&pairs, ECE_BINS);
        assert_eq!(bins.len(), 15);
        assert_eq!(bins[1].count, 2);
        assert_eq!(bins[13].count, 2);
        // p = 1.0 goes to the last bin, not past it
        assert_eq!(reliability_bins(&[(1.0, true)], 15)[14].count, 1);
        assert_eq!(ece(&[]), 0.0);
    }

    #[test]
    fn brier_by_hand() {
        // (0.8-1)^2 + (0.3-0)^2 = 0.04 + 0.09 -> mean 0.065
        assert!((brier(&[(0.8, true), (0.3, false)]) - 0.065).abs() < 1e-12);
    }

    #[test]
    fn auroc_by_hand_with_ties() {
        // positives 0.9, 0.5; negatives 0.5, 0.1.
        // pairs: (0.9>0.5) 1, (0.9>0.1) 1, (0.5=0.5) 0.5, (0.5>0.1) 1 -> 3.5/4
        let pairs = [(0.9, true), (0.5, true), (0.5, false), (0.1, false)];
        assert!((auroc(&pairs).unwrap() - 0.875).abs() < 1e-12);
        assert_eq!(auroc(&[(0.2, true), (0.8, false)]), Some(0.0));
        assert_eq!(auroc(&[(0.5, true), (0.5, false)]), Some(0.5));
        assert_eq!(auroc(&[(0.5, true)]), None);
    }

    proptest::proptest! {
        #[test]
        fn auroc_matches_pair_counting(v in proptest::collection::vec((0u8..5, proptest::bool::ANY), 1..40)) {
            let pairs: Vec<(f64, bool)> = v.iter().map(|&(p, y)| (f64::from(p) / 4.0, y)).collect();
            let (mut num, mut den) = (0.0, 0.0);
            for a in pairs.iter().filter(|p| p.1) {
                for b in pairs.iter().filter(|p| !p.1) {
                    den += 1.0;
                    num += if a.0 > b.0 { 1.0 } else if a.0 == b.0 { 0.5 } else { 0.0 };
                }
            }
            match auroc(&pairs) {
                Some(x) => proptest::prop_assert!((x - num / den).abs() < 1e-12),
                None => proptest::prop_assert!(den == 0.0),
            }
            let e = ece(&pairs);
            proptest::prop_assert!((0.0..=1.0).contains(&e));
        }
    }
}
