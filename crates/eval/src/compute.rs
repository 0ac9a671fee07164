//! Accuracy versus compute.
//!
//! Two kinds of input:
//!
//! - [`ProblemSamples`]: `n` independent samples per problem (each with its
//!   answer, correctness, step scores and tokens). From these: pass@k with the
//!   unbiased estimator, maj@k, weighted@k and best-of-k for each
//!   [`Aggregation`], each against the mean generated tokens (policy + judge) of
//!   `k` samples.
//! - [`RunOutcome`]: one final answer per problem from a strategy at a budget
//!   (what `stepwise solve`/`scale` produce). From these: accuracy per
//!   (strategy, budget) against mean generated tokens.
//!
//! Every estimate has a seeded percentile-bootstrap interval over problems.

use crate::stats::{Estimate, bootstrap_mean, pass_at_k, rng};
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use stepwise_core::Aggregation;

/// One sampled rationale of a problem.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleOutcome {
    /// The extracted (preferably normalised) final answer; `None` if none was found.
    #[serde(default)]
    pub answer: Option<String>,
    pub correct: bool,
    /// Step scores in [0, 1], one per step.
    #[serde(default)]
    pub step_scores: Vec<f64>,
    #[serde(default)]
    pub policy_tokens: u64,
    #[serde(default)]
    pub judge_tokens: u64,
    /// The rationale's steps (for reports).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<String>,
}

impl SampleOutcome {
    pub fn tokens(&self) -> u64 {
        self.policy_tokens + self.judge_tokens
    }
}

/// All samples of one problem.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProblemSamples {
    pub id: String,
    #[serde(default)]
    pub question: String,
    #[serde(default)]
    pub gold: Option<String>,
    pub samples: Vec<SampleOutcome>,
}

/// How `k` samples are turned into one answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "method", content = "aggregation")]
pub enum Selection {
    /// Any of the k samples is correct (unbiased estimator).
    PassAtK,
    /// The most frequent answer.
    Majority,
    /// The answer with the largest sum of aggregated step scores.
    Weighted(Aggregation),
    /// The sample with the largest aggregated step score.
    BestOfK(Aggregation),
}

impl Selection {
    /// Every selection: pass@k, maj@k, and weighted@k and best-of-k per aggregation.
    pub fn all() -> Vec<Selection> {
        let mut v = vec![Self::PassAtK, Self::Majority];
        v.extend(Aggregation::ALL.map(Self::Weighted));
        v.extend(Aggregation::ALL.map(Self::BestOfK));
        v
    }

    /// Whether the selection reads step scores (so the judge's tokens are part of its cost).
    pub fn needs_scores(self) -> bool {
        matches!(self, Self::Weighted(_) | Self::BestOfK(_))
    }

    /// What one sample costs this selection: policy tokens, plus judge tokens when the
    /// selection reads step scores (majority voting and pass@k never call the judge).
    pub fn tokens_of(self, s: &SampleOutcome) -> u64 {
        if self.needs_scores() {
            s.tokens()
        } else {
            s.policy_tokens
        }
    }

    pub fn name(self) -> String {
        match self {
            Self::PassAtK => "pass@k".into(),
            Self::Majority => "maj@k".into(),
            Self::Weighted(a) => format!("weighted@k ({a})"),
            Self::BestOfK(a) => format!("best-of-k ({a})"),
        }
    }
}

/// Whether the answer picked from `samples` (in this order) by `sel` is correct.
/// Ties go to the answer or sample seen first. Samples without an answer do not vote;
/// when nobody votes the result is wrong. For best-of-k, samples without step scores
/// rank below every scored sample.
pub fn select_correct(samples: &[&SampleOutcome], sel: Selection) -> bool {
    match sel {
        Selection::PassAtK => samples.iter().any(|s| s.correct),
        Selection::Majority => vote(samples, |_| 1.0),
        Selection::Weighted(a) => vote(samples, |s| a.apply(&s.step_scores).unwrap_or(0.0)),
        Selection::BestOfK(a) => {
            let mut best: Option<(f64, bool)> = None;
            for s in samples {
                let v = a.apply(&s.step_scores).unwrap_or(f64::NEG_INFINITY);
                if best.is_none_or(|(b, _)| v > b) {
                    best = Some((v, s.correct));
                }
            }
            best.is_some_and(|b| b.1)
        }
    }
}

fn vote(samples: &[&SampleOutcome], weight: impl Fn(&SampleOutcome) -> f64) -> bool {
    // (answer, total weight, correct) in order of first appearance
    let mut tally: Vec<(&str, f64, bool)> = Vec::new();
    for s in samples {
        let Some(ans) = s.answer.as_deref().map(str::trim) else {
            continue;
        };
        match tally.iter_mut().find(|t| t.0 == ans) {
            Some(t) => t.1 += weight(s),
            None => tally.push((ans, weight(s), s.correct)),
        }
    }
    let mut best: Option<(f64, bool)> = None;
    for (_, w, c) in tally {
        if best.is_none_or(|(b, _)| w > b) {
            best = Some((w, c));
        }
    }
    best.is_some_and(|b| b.1)
}

/// One point of an accuracy-versus-compute curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    /// Curve name (a selection method, or a strategy).
    pub series: String,
    /// k, or the budget label.
    pub x_label: String,
    /// Mean generated tokens per problem (policy + judge).
    pub mean_tokens: f64,
    pub accuracy: Estimate,
    pub problems: usize,
}

/// Options for resampling.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Resampling {
    /// Random k-subsets drawn per problem to estimate maj@k, weighted@k and best-of-k
    /// (when k equals n the single full set is used).
    pub draws: usize,
    /// Bootstrap resamples over problems.
    pub bootstrap: usize,
    /// Confidence level of the intervals.
    pub level: f64,
    pub seed: u64,
}

impl Default for Resampling {
    fn default() -> Self {
        Self {
            draws: 64,
            bootstrap: 1000,
            level: 0.95,
            seed: 0,
        }
    }
}

/// The k values worth reporting for `n` samples: powers of two up to `n`, and `n`.
pub fn default_ks(n: usize) -> Vec<usize> {
    let mut ks: Vec<usize> = std::iter::successors(Some(1usize), |k| k.checked_mul(2))
        .take_while(|&k| k <= n)
        .collect();
    if n > 0 && ks.last() != Some(&n) {
        ks.push(n);
    }
    ks
}

/// Accuracy of every selection at every `k` over problems that have at least `k`
/// samples, against the mean tokens `k` samples cost that selection
/// ([`Selection::tokens_of`]). Problems with fewer samples are left out of that `k`'s point (the
/// point's `problems` says how many were used).
pub fn sample_curves(
    problems: &[ProblemSamples],
    ks: &[usize],
    selections: &[Selection],
    opts: Resampling,
) -> Vec<CurvePoint> {
    let mut out = Vec::new();
    for (si, &sel) in selections.iter().enumerate() {
        for &k in ks {
            let mut per_problem = Vec::new();
            let mut tokens = Vec::new();
            for (pi, p) in problems.iter().enumerate() {
                let n = p.samples.len();
                if k == 0 || n < k {
                    continue;
                }
                let mean_tok = p
                    .samples
                    .iter()
                    .map(|s| sel.tokens_of(s) as f64)
                    .sum::<f64>()
                    / n as f64;
                tokens.push(mean_tok * k as f64);
                let value = match sel {
                    Selection::PassAtK => {
                        let c = p.samples.iter().filter(|s| s.correct).count();
                        pass_at_k(n, c, k).unwrap_or(0.0)
                    }
                    _ if k == n => {
                        let all: Vec<&SampleOutcome> = p.samples.iter().collect();
                        f64::from(u8::from(select_correct(&all, sel)))
                    }
                    _ => {
                        let seed = opts.seed ^ ((pi as u64) << 20) ^ ((k as u64) << 8) ^ si as u64;
                        let mut r = rng(seed);
                        let mut idx: Vec<usize> = (0..n).collect();
                        let draws = opts.draws.max(1);
                        let mut hits = 0usize;
                        for _ in 0..draws {
                            idx.shuffle(&mut r);
                            let pick: Vec<&SampleOutcome> =
                                idx[..k].iter().map(|&i| &p.samples[i]).collect();
                            hits += usize::from(select_correct(&pick, sel));
                        }
                        hits as f64 / draws as f64
                    }
                };
                per_problem.push(value);
            }
            let Some(acc) = bootstrap_mean(&per_problem, opts.bootstrap, opts.level, opts.seed)
            else {
                continue;
            };
            out.push(CurvePoint {
                series: sel.name(),
                x_label: format!("k={k}"),
                mean_tokens: tokens.iter().sum::<f64>() / tokens.len() as f64,
                accuracy: acc,
                problems: per_problem.len(),
            });
        }
    }
    out
}

/// The final outcome of one problem under one strategy and budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunOutcome {
    pub strategy: String,
    /// Budget label, e.g. `tokens=2048` (free text; points are grouped by it).
    #[serde(default)]
    pub budget: String,
    pub id: String,
    pub correct: bool,
    #[serde(default)]
    pub policy_tokens: u64,
    #[serde(default)]
    pub judge_tokens: u64,
}

/// Accuracy per (strategy, budget) against mean generated tokens, in order of first appearance.
pub fn run_curves(outcomes: &[RunOutcome], opts: Resampling) -> Vec<CurvePoint> {
    let mut keys: Vec<(&str, &str)> = Vec::new();
    for o in outcomes {
        let k = (o.strategy.as_str(), o.budget.as_str());
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    keys.into_iter()
        .filter_map(|(s, b)| {
            let group: Vec<&RunOutcome> = outcomes
                .iter()
                .filter(|o| o.strategy == s && o.budget == b)
                .collect();
            let vals: Vec<f64> = group
                .iter()
                .map(|o| f64::from(u8::from(o.correct)))
                .collect();
            let acc = bootstrap_mean(&vals, opts.bootstrap, opts.level, opts.seed)?;
            let tok = group
                .iter()
                .map(|o| (o.policy_tokens + o.judge_tokens) as f64)
                .sum::<f64>()
                / group.len() as f64;
            Some(CurvePoint {
                series: s.to_string(),
                x_label: b.to_string(),
                mean_tokens: tok,
                accuracy: acc,
                problems: group.len(),
            })
        })
        .collect()
}

/// The series worth plotting together (a plot of all ten is unreadable): pass@k,
/// maj@k, weighted@k (min), best-of-k (min) and best-of-k (last). Strategy series
/// (anything else) are kept.
pub fn headline(points: &[CurvePoint]) -> Vec<CurvePoint> {
    let all: Vec<String> = Selection::all().into_iter().map(Selection::name).collect();
    let keep = [
        Selection::PassAtK,
        Selection::Majority,
        Selection::Weighted(Aggregation::Min),
        Selection::BestOfK(Aggregation::Min),
        Selection::BestOfK(Aggregation::Last),
    ]
    .map(Selection::name);
    points
        .iter()
        .filter(|p| keep.contains(&p.series) || !all.contains(&p.series))
        .cloned()
        .collect()
}

/// Curve points as a table (accuracy and interval in percent).
pub fn curve_table(points: &[CurvePoint]) -> crate::table::Table {
    let mut t = crate::table::Table::new([
        "series",
        "point",
        "problems",
        "mean generated tokens",
        "accuracy %",
        "95% CI low %",
        "95% CI high %",
    ]);
    for p in points {
        t.push([
            p.series.clone(),
            p.x_label.clone(),
            p.problems.to_string(),
            format!("{:.1}", p.mean_tokens),
            format!("{:.1}", p.accuracy.mean * 100.0),
            format!("{:.1}", p.accuracy.lo * 100.0),
            format!("{:.1}", p.accuracy.hi * 100.0),
        ]);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(ans: Option<&str>, correct: bool, scores: &[f64], tok: u64) -> SampleOutcome {
        SampleOutcome {
            answer: ans.map(String::from),
            correct,
            step_scores: scores.to_vec(),
            policy_tokens: tok,
            judge_tokens: 1,
            steps: Vec::new(),
        }
    }

    #[test]
    fn selections_by_hand() {
        // "7" wrong x2 with low scores; "8" right x1 with a high score.
        let a = s(Some("7"), false, &[0.9, 0.2], 10);
        let b = s(Some("7"), false, &[0.3, 0.3], 10);
        let c = s(Some("8"), true, &[0.9, 0.9], 10);
        let v = [&a, &b, &c];
        assert!(!select_correct(&v, Selection::Majority));
        // weighted by last: 7 -> 0.2+0.3 = 0.5 ; 8 -> 0.9 -> picks 8
        assert!(select_correct(&v, Selection::Weighted(Aggregation::Last)));
        // weighted by mean: 7 -> 0.55+0.3 = 0.85 ; 8 -> 0.9 -> picks 8
        assert!(select_correct(&v, Selection::Weighted(Aggregation::Mean)));
        // weighted by first-step via max? prod: 7 -> 0.18+0.09=0.27 ; 8 -> 0.81
        assert!(select_correct(&v, Selection::BestOfK(Aggregation::Min)));
        assert!(select_correct(&v, Selection::PassAtK));
        // majority ties go to the answer seen first
        assert!(select_correct(&[&c, &a], Selection::Majority));
        assert!(!select_correct(&[&a, &c], Selection::Majority));
        // nobody answers -> wrong
        let none = s(None, true, &[], 5);
        assert!(!select_correct(&[&none], Selection::Majority));
        assert!(!select_correct(&[], Selection::BestOfK(Aggregation::Last)));
    }

    #[test]
    fn curves_by_hand() {
        // problem 1: 1 of 4 correct; problem 2: 4 of 4 correct.
        let p1 = ProblemSamples {
            id: "1".into(),
            question: String::new(),
            gold: None,
            samples: vec![
                s(Some("1"), true, &[0.9], 9),
                s(Some("2"), false, &[0.1], 9),
                s(Some("2"), false, &[0.1], 9),
                s(Some("3"), false, &[0.1], 9),
            ],
        };
        let p2 = ProblemSamples {
            id: "2".into(),
            question: String::new(),
            gold: None,
            samples: vec![s(Some("5"), true, &[0.5], 19); 4],
        };
        let opts = Resampling {
            bootstrap: 200,
            ..Resampling::default()
        };
        let pts = sample_curves(
            &[p1, p2],
            &[1, 2, 4],
            &[
                Selection::PassAtK,
                Selection::Majority,
                Selection::BestOfK(Aggregation::Last),
            ],
            opts,
        );
        let get = |series: &str, k: &str| {
            pts.iter()
                .find(|p| p.series == series && p.x_label == k)
                .unwrap()
                .clone()
        };
        // pass@1 = (0.25 + 1)/2; pass@2 = (0.5 + 1)/2; pass@4 = 1
        assert!((get("pass@k", "k=1").accuracy.mean - 0.625).abs() < 1e-12);
        assert!((get("pass@k", "k=2").accuracy.mean - 0.75).abs() < 1e-12);
        assert_eq!(get("pass@k", "k=4").accuracy.mean, 1.0);
        // maj@4: problem 1 votes "2" (wrong), problem 2 right -> 0.5
        assert_eq!(get("maj@k", "k=4").accuracy.mean, 0.5);
        // best-of-4 by last score picks the 0.9 sample in problem 1 -> 1.0
        assert_eq!(get("best-of-k (last)", "k=4").accuracy.mean, 1.0);
        // tokens: k * mean policy tokens = k * (9 + 19)/2 for selections without the
        // judge; k * mean (policy + judge) = k * (10 + 20)/2 for scored selections
        assert_eq!(get("maj@k", "k=2").mean_tokens, 28.0);
        assert_eq!(get("pass@k", "k=4").mean_tokens, 56.0);
        assert_eq!(get("best-of-k (last)", "k=2").mean_tokens, 30.0);
        // best-of-1 equals pass@1 in expectation; with 64 draws it is close
        let b1 = get("best-of-k (last)", "k=1").accuracy.mean;
        assert!((b1 - 0.625).abs() < 0.1, "{b1}");
        // same seed, same numbers
        let again = sample_curves(&[], &[1], &[Selection::Majority], opts);
        assert!(again.is_empty());
    }

    #[test]
    fn run_curves_group_by_strategy_and_budget() {
        let o = |st: &str, b: &str, c: bool, t: u64| RunOutcome {
            strategy: st.into(),
            budget: b.into(),
            id: "x".into(),
            correct: c,
            policy_tokens: t,
            judge_tokens: 0,
        };
        let pts = run_curves(
            &[
                o("beam", "256", true, 100),
                o("beam", "256", false, 300),
                o("bon", "256", true, 50),
            ],
            Resampling::default(),
        );
        assert_eq!(pts.len(), 2);
        assert_eq!(pts[0].accuracy.mean, 0.5);
        assert_eq!(pts[0].mean_tokens, 200.0);
        assert_eq!(pts[1].series, "bon");
        let t = curve_table(&pts).to_csv();
        assert!(t.starts_with("series,point,problems"));
        assert!(t.contains("beam,256,2,200.0,50.0"));
    }

    #[test]
    fn default_ks_are_powers_of_two_and_n() {
        assert_eq!(default_ks(8), vec![1, 2, 4, 8]);
        assert_eq!(default_ks(6), vec![1, 2, 4, 6]);
        assert!(default_ks(0).is_empty());
    }
}
