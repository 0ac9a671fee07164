//! Summaries of alternating rounds: medians, ranges and the table cells that show them.

/// Median of a list (the mean of the middle two for an even count; NaN when empty).
pub fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    match v.len() {
        0 => f64::NAN,
        l if l % 2 == 1 => v[m],
        _ => 0.5 * (v[m - 1] + v[m]),
    }
}

/// The `q` quantile (0 < q ≤ 1) by nearest rank: the smallest value with at least a `q`
/// share of the list at or below it (NaN when empty).
pub fn percentile(v: &[f64], q: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = (q * v.len() as f64).ceil() as usize;
    v.get(rank.clamp(1, v.len().max(1)) - 1)
        .copied()
        .unwrap_or(f64::NAN)
}

/// `median (min–max)` of the rounds' values with `decimals` decimals, just the value for
/// one round, `–` for none.
pub fn spread(v: &[f64], decimals: usize) -> String {
    if v.is_empty() {
        return "–".to_string();
    }
    let med = median(v);
    if v.len() < 2 {
        return format!("{med:.decimals$}");
    }
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{med:.decimals$} ({lo:.decimals$}–{hi:.decimals$})")
}

/// The ratio of the medians of two lists of rounds (NaN when either is empty).
pub fn ratio_of_medians(ours: &[f64], theirs: &[f64]) -> f64 {
    median(ours) / median(theirs)
}

/// The rounds of a bench in the order they run: round 1 measures stepwise, then the
/// reference, then round 2 does the same, so slow drift of the machine hits both sides.
pub fn alternate<E>(
    rounds: usize,
    mut ours: impl FnMut(usize) -> Result<(), E>,
    mut theirs: impl FnMut(usize) -> Result<(), E>,
) -> Result<(), E> {
    for round in 1..=rounds.max(1) {
        ours(round)?;
        theirs(round)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_odd_even_and_empty_lists() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[7.5]), 7.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn percentiles_are_by_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&v, 1.0), 100.0);
        assert_eq!(percentile(&[3.0, 1.0, 2.0], 0.5), 2.0);
        assert_eq!(percentile(&[1.0, 1.0, 1.0, 9.0], 0.99), 9.0);
        assert_eq!(percentile(&[7.0], 0.01), 7.0);
        assert!(percentile(&[], 0.5).is_nan());
    }

    #[test]
    fn spreads_show_the_range_only_for_several_rounds() {
        assert_eq!(spread(&[111.2], 1), "111.2");
        assert_eq!(spread(&[102.2, 130.5, 111.2], 1), "111.2 (102.2–130.5)");
        assert_eq!(spread(&[0.1124, 0.0961], 3), "0.104 (0.096–0.112)");
        assert_eq!(spread(&[], 2), "–");
    }

    #[test]
    fn ratios_are_of_the_medians() {
        assert_eq!(
            ratio_of_medians(&[10.0, 30.0, 20.0], &[5.0, 100.0, 10.0]),
            2.0
        );
        assert!(ratio_of_medians(&[1.0], &[]).is_nan());
    }

    #[test]
    fn rounds_alternate_and_stop_at_the_first_error() {
        let log = std::cell::RefCell::new(Vec::new());
        alternate::<()>(
            2,
            |r| {
                log.borrow_mut().push(format!("ours {r}"));
                Ok(())
            },
            |r| {
                log.borrow_mut().push(format!("theirs {r}"));
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(*log.borrow(), ["ours 1", "theirs 1", "ours 2", "theirs 2"]);
        log.borrow_mut().clear();
        let r = alternate(
            3,
            |r| {
                log.borrow_mut().push(format!("ours {r}"));
                Ok(())
            },
            |r| {
                if r == 2 {
                    Err("reference failed")
                } else {
                    Ok(())
                }
            },
        );
        assert_eq!(r, Err("reference failed"));
        assert_eq!(*log.borrow(), ["ours 1", "ours 2"]);
    }
}
