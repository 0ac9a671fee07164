//! ProcessBench (Zheng et al., 2024): find the earliest erroneous step.
//!
//! Each sample has a `label`: the 0-based index of the earliest wrong step, or
//! `-1` when every step is right. A prediction is the same kind of index. Per
//! subset the benchmark reports
//!
//! - accuracy on *erroneous* samples (`label >= 0`): the share whose predicted
//!   index equals `label` exactly;
//! - accuracy on *correct* samples (`label == -1`): the share predicted `-1`;
//! - F1: the harmonic mean of those two accuracies.
//!
//! Scalar step scorers become predictors through a threshold: the predicted
//! index is the first step whose score is below the threshold. As the authors
//! do, the threshold is chosen by F1 on the GSM8K subset and then applied to
//! every subset. Critic models answer with an index in `\boxed{}`; an answer
//! that cannot be read as an integer is counted as wrong (and reported).

use crate::EvalError;
use serde::{Deserialize, Serialize};
use std::io::BufRead;
use std::path::Path;
pub use stepwise_core::metrics::{
    NO_ERROR, Prediction, SubsetMetrics, harmonic_f1, subset_metrics,
};

/// The four ProcessBench subsets, in the paper's order.
pub const SUBSETS: [&str; 4] = ["gsm8k", "math", "olympiadbench", "omnimath"];

/// One ProcessBench record, with the benchmark's own field names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PbRecord {
    pub id: String,
    #[serde(default)]
    pub generator: String,
    pub problem: String,
    pub steps: Vec<String>,
    #[serde(default)]
    pub final_answer_correct: bool,
    pub label: i64,
    /// Which problem the record is a candidate solution of, when a file holds several
    /// candidates per problem (`problem_id`, or `group`; not in the benchmark's own
    /// files). Records without it are grouped by their `problem` text ([`group_key`]).
    #[serde(default, alias = "group", skip_serializing_if = "Option::is_none")]
    pub problem_id: Option<String>,
}

/// The problem a record is a candidate of, for rank@1: its `problem_id` (or `group`)
/// field when it has one, else its `problem` text.
pub fn group_key(r: &PbRecord) -> &str {
    r.problem_id.as_deref().unwrap_or(&r.problem)
}

/// Selection among several candidate solutions of one problem (Best-of-N as rank@1):
/// the share of problems whose top-ranked candidate is correct (`label == -1`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RankAt1 {
    /// Problems with at least two candidates (the only ones counted).
    pub problems: usize,
    /// Candidates over those problems.
    pub candidates: usize,
    /// PRM-style: the candidate with the highest aggregate of its step scores (`prm_by`).
    pub prm: f64,
    pub prm_by: stepwise_core::Aggregation,
    /// Outcome-style: the candidate with the highest final-step score only.
    pub outcome: f64,
    /// A candidate drawn uniformly at random: the expected share (mean over problems of
    /// the fraction of correct candidates), computed exactly rather than sampled.
    pub random: f64,
    /// Problems where at least one candidate is correct (the ceiling of any selection).
    pub oracle: f64,
}

/// rank@1 over `candidates` (`(group, label, step scores)`, in file order), or `None`
/// when no group has two candidates or some candidate has no step scores (critic mode).
/// A group is one problem's candidates ([`group_key`]); groups of one are left out.
/// Ties go to the candidate first in file order.
pub fn rank_at_1(
    candidates: &[(&str, i64, &[f64])],
    prm_by: stepwise_core::Aggregation,
) -> Option<RankAt1> {
    let mut order: Vec<&str> = Vec::new();
    let mut groups: std::collections::HashMap<&str, Vec<(i64, &[f64])>> = Default::default();
    for &(g, label, scores) in candidates {
        if scores.is_empty() {
            return None;
        }
        let e = groups.entry(g).or_default();
        if e.is_empty() {
            order.push(g);
        }
        e.push((label, scores));
    }
    let pick = |c: &[(i64, &[f64])], agg: stepwise_core::Aggregation| -> bool {
        let mut best: Option<(f64, i64)> = None;
        for &(label, scores) in c {
            let v = agg.apply(scores).unwrap_or(f64::NEG_INFINITY);
            let v = if v.is_nan() { f64::NEG_INFINITY } else { v };
            if best.is_none_or(|(b, _)| v > b) {
                best = Some((v, label));
            }
        }
        best.is_some_and(|(_, label)| label == NO_ERROR)
    };
    let (mut n, mut cands, mut prm, mut outcome, mut random, mut oracle) =
        (0usize, 0usize, 0usize, 0usize, 0.0, 0usize);
    for g in order {
        let c = &groups[g];
        if c.len() < 2 {
            continue;
        }
        n += 1;
        cands += c.len();
        prm += usize::from(pick(c, prm_by));
        outcome += usize::from(pick(c, stepwise_core::Aggregation::Last));
        let right = c.iter().filter(|(l, _)| *l == NO_ERROR).count();
        random += right as f64 / c.len() as f64;
        oracle += usize::from(right > 0);
    }
    (n > 0).then(|| RankAt1 {
        problems: n,
        candidates: cands,
        prm: prm as f64 / n as f64,
        prm_by,
        outcome: outcome as f64 / n as f64,
        random: random / n as f64,
        oracle: oracle as f64 / n as f64,
    })
}

/// rank@1 as a Markdown paragraph and table.
pub fn rank_markdown(r: &RankAt1) -> String {
    let mut t = crate::table::Table::new(["selection", "rank@1 %"]);
    t.push([
        format!("PRM-style (highest {} step score)", r.prm_by.name()),
        pct(Some(r.prm)),
    ]);
    t.push([
        "outcome-style (highest final-step score)".to_string(),
        pct(Some(r.outcome)),
    ]);
    t.push(["random (expected)".to_string(), pct(Some(r.random))]);
    t.push([
        "oracle (any candidate correct)".to_string(),
        pct(Some(r.oracle)),
    ]);
    format!(
        "rank@1 over {} problems with several candidates ({} candidates; a candidate is correct when its label is -1; ties go to the first in file order):\n\n{}",
        r.problems,
        r.candidates,
        t.to_markdown()
    )
}

/// Reads one ProcessBench JSONL file. Errors name the file and line.
pub fn read_jsonl(path: &Path) -> Result<Vec<PbRecord>, EvalError> {
    let shown = path.display().to_string();
    let f = std::fs::File::open(path).map_err(|source| EvalError::Io {
        path: shown.clone(),
        source,
    })?;
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
        let line = line.map_err(|source| EvalError::Io {
            path: shown.clone(),
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let rec: PbRecord = serde_json::from_str(&line).map_err(|e| EvalError::Parse {
            path: shown.clone(),
            line: i + 1,
            reason: e.to_string(),
        })?;
        if rec.label < NO_ERROR || rec.label >= rec.steps.len() as i64 {
            return Err(EvalError::Parse {
                path: shown.clone(),
                line: i + 1,
                reason: format!(
                    "label {} out of range for {} steps (expected -1..{})",
                    rec.label,
                    rec.steps.len(),
                    rec.steps.len()
                ),
            });
        }
        out.push(rec);
    }
    Ok(out)
}

/// Chooses up to `limit` records in file order. With `balanced`, half of them (rounded
/// up) are the first records without an error and the rest the first with one, so
/// small runs hold both classes (the shipped files list erroneous records first).
pub fn select(records: Vec<PbRecord>, limit: Option<usize>, balanced: bool) -> Vec<PbRecord> {
    let Some(n) = limit else { return records };
    if !balanced {
        return records.into_iter().take(n).collect();
    }
    let want_correct = n.div_ceil(2);
    let want_err = n - want_correct;
    let (mut c, mut e) = (0, 0);
    records
        .into_iter()
        .filter(|r| {
            if r.label == NO_ERROR && c < want_correct {
                c += 1;
                true
            } else if r.label != NO_ERROR && e < want_err {
                e += 1;
                true
            } else {
                false
            }
        })
        .collect()
}

/// The predicted first-error index for scalar step scores: the first step whose
/// score is strictly below `threshold`, or [`NO_ERROR`].
pub fn predict_from_scores(scores: &[f64], threshold: f64) -> i64 {
    scores
        .iter()
        .position(|&s| s < threshold)
        .map_or(NO_ERROR, |i| i as i64)
}

/// Reads a critic's answer: the integer in the last `\boxed{…}` of `text`
/// (surrounding spaces, `$` and a leading `+` tolerated). Anything else,
/// including an index outside `-1..n_steps`, is [`Prediction::Unparseable`].
pub fn parse_critic(text: &str, n_steps: usize) -> Prediction {
    let Some(r) = stepwise_core::find_boxed(text) else {
        return Prediction::Unparseable;
    };
    let inner = text[r].trim().trim_matches('$').trim();
    let inner = inner.strip_prefix('+').unwrap_or(inner);
    match inner.parse::<i64>() {
        Ok(i) if (NO_ERROR..n_steps as i64).contains(&i) => Prediction::Index(i),
        _ => Prediction::Unparseable,
    }
}

/// The ProcessBench critic prompt (the benchmark's own template): paragraphs
/// tagged `<paragraph_i>` from 0, answer asked for in `\boxed{}`.
pub fn critic_prompt(problem: &str, steps: &[String]) -> String {
    let tagged = steps
        .iter()
        .enumerate()
        .map(|(i, s)| format!("<paragraph_{i}>\n{s}\n</paragraph_{i}>"))
        .collect::<Vec<_>>()
        .join("\n\n");
    format!(
        "The following is a math problem and a solution (split into paragraphs, enclosed with tags and indexed from 0):\n\n\
         [Math Problem]\n\n{problem}\n\n[Solution]\n\n{tagged}\n\n\
         Your task is to review and critique the solution paragraph by paragraph. Once you identify an error in a paragraph, \
         return the index of the paragraph where the earliest error occurs. Otherwise, return the index of -1 (which typically denotes \"not found\").\n\n\
         Please put your final answer (i.e., the index) in \\boxed{{}}."
    )
}

/// Mean F1 over subsets whose F1 is defined (the benchmark's "average" column).
pub fn average_f1(subsets: &[SubsetMetrics]) -> Option<f64> {
    let f: Vec<f64> = subsets.iter().filter_map(|s| s.f1).collect();
    (!f.is_empty()).then(|| f.iter().sum::<f64>() / f.len() as f64)
}

/// A threshold and the F1 it reached on the samples it was chosen on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ThresholdChoice {
    pub threshold: f64,
    /// F1 at that threshold on the tuning samples (`None` when F1 is undefined there,
    /// e.g. the tuning samples lack one of the two classes).
    pub f1: Option<f64>,
    /// How many candidate thresholds were tried.
    pub candidates: usize,
}

/// Chooses the threshold that maximises F1 over `(step_scores, label)` samples.
///
/// Candidates: 0 (flag nothing), every midpoint between adjacent distinct scores,
/// and just above the largest score (flag the first step of every non-empty
/// sample); together they realise every distinct prediction a threshold can make.
/// Ties keep the smallest threshold. With no samples the threshold is 0.5.
pub fn choose_threshold(samples: &[(&[f64], i64)]) -> ThresholdChoice {
    let mut distinct: Vec<f64> = samples
        .iter()
        .flat_map(|(s, _)| s.iter().copied())
        .filter(|v| v.is_finite())
        .collect();
    distinct.sort_by(f64::total_cmp);
    distinct.dedup();
    if samples.is_empty() {
        return ThresholdChoice {
            threshold: 0.5,
            f1: None,
            candidates: 0,
        };
    }
    let mut candidates = vec![distinct.first().copied().unwrap_or(0.5).min(0.0)];
    candidates.extend(distinct.windows(2).map(|w| (w[0] + w[1]) / 2.0));
    if let Some(&max) = distinct.last() {
        candidates.push(max.next_up());
    }
    let mut best = ThresholdChoice {
        threshold: candidates[0],
        f1: None,
        candidates: candidates.len(),
    };
    let mut best_key = f64::NEG_INFINITY;
    for &t in &candidates {
        let m = subset_metrics(
            "",
            samples
                .iter()
                .map(|(s, l)| (*l, Prediction::Index(predict_from_scores(s, t)))),
        );
        let key = m.f1.unwrap_or(f64::NEG_INFINITY);
        if key > best_key {
            best_key = key;
            best.threshold = t;
            best.f1 = m.f1;
        }
    }
    best
}

/// One scored sample of a ProcessBench run (what `stepwise eval processbench` stores per record).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PbResult {
    pub id: String,
    pub subset: String,
    pub label: i64,
    pub n_steps: usize,
    /// Step scores in [0, 1] (scalar scorers), one per step; empty in critic mode.
    #[serde(default)]
    pub scores: Vec<f64>,
    /// The critic's verdict (critic mode only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub critic: Option<Prediction>,
    /// Generated tokens spent on this sample (judge/critic).
    #[serde(default)]
    pub generated_tokens: u64,
    /// Prompt tokens the judge/critic read for this sample.
    #[serde(default)]
    pub prompt_tokens: u64,
    /// The problem statement (kept for reports).
    #[serde(default)]
    pub problem: String,
    /// The solution's steps (kept for reports).
    #[serde(default)]
    pub steps: Vec<String>,
    /// Per-step explanations from the scorer, or the critic's full answer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
}

/// How predictions were made for a report.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "mode")]
pub enum ThresholdSource {
    /// Given on the command line.
    Fixed { threshold: f64 },
    /// Chosen by F1 on the GSM8K subset.
    TunedOnGsm8k(ThresholdChoice),
    /// Critic mode: no threshold.
    Critic,
}

/// Full ProcessBench outcome over several subsets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PbReport {
    pub threshold: ThresholdSource,
    pub subsets: Vec<SubsetMetrics>,
    pub average_f1: Option<f64>,
    /// Mean generated tokens per sample over all subsets.
    pub mean_generated_tokens: f64,
    /// Mean prompt tokens read per sample over all subsets.
    #[serde(default)]
    pub mean_prompt_tokens: f64,
}

/// Scores a run: critic predictions where present, else thresholded step scores.
///
/// `fixed` overrides the threshold; otherwise it is chosen on the `gsm8k`
/// results (an error when no GSM8K result is present and any result is scalar).
pub fn evaluate(results: &[PbResult], fixed: Option<f64>) -> Result<PbReport, EvalError> {
    let critic = !results.is_empty() && results.iter().all(|r| r.critic.is_some());
    if !critic && results.iter().any(|r| r.critic.is_some()) {
        return Err(EvalError::Invalid(
            "results mix critic verdicts and step scores; evaluate them separately".into(),
        ));
    }
    let threshold = if critic {
        ThresholdSource::Critic
    } else if let Some(t) = fixed {
        ThresholdSource::Fixed { threshold: t }
    } else {
        let tune: Vec<(&[f64], i64)> = results
            .iter()
            .filter(|r| r.subset == "gsm8k")
            .map(|r| (r.scores.as_slice(), r.label))
            .collect();
        if tune.is_empty() && !results.is_empty() {
            return Err(EvalError::Invalid(
                "no GSM8K results to choose the threshold on: include the gsm8k subset or pass --threshold".into(),
            ));
        }
        ThresholdSource::TunedOnGsm8k(choose_threshold(&tune))
    };
    let t = match threshold {
        ThresholdSource::Fixed { threshold } => threshold,
        ThresholdSource::TunedOnGsm8k(c) => c.threshold,
        ThresholdSource::Critic => f64::NAN,
    };
    let mut order: Vec<&str> = Vec::new();
    for r in results {
        if !order.contains(&r.subset.as_str()) {
            order.push(&r.subset);
        }
    }
    order.sort_by_key(|s| SUBSETS.iter().position(|k| k == s).unwrap_or(SUBSETS.len()));
    let subsets: Vec<SubsetMetrics> = order
        .iter()
        .map(|name| {
            subset_metrics(
                name,
                results.iter().filter(|r| r.subset == *name).map(|r| {
                    let p = match r.critic {
                        Some(p) => p,
                        None => Prediction::Index(predict_from_scores(&r.scores, t)),
                    };
                    (r.label, p)
                }),
            )
        })
        .collect();
    let mean_generated_tokens = if results.is_empty() {
        0.0
    } else {
        results
            .iter()
            .map(|r| r.generated_tokens as f64)
            .sum::<f64>()
            / results.len() as f64
    };
    let mean_prompt_tokens = if results.is_empty() {
        0.0
    } else {
        results.iter().map(|r| r.prompt_tokens as f64).sum::<f64>() / results.len() as f64
    };
    Ok(PbReport {
        threshold,
        average_f1: average_f1(&subsets),
        subsets,
        mean_generated_tokens,
        mean_prompt_tokens,
    })
}

/// Formats an optional fraction as a percentage with one decimal, or `n/a`.
pub fn pct(x: Option<f64>) -> String {
    x.map_or_else(|| "n/a".to_string(), |v| format!("{:.1}", v * 100.0))
}

/// The report as a [`crate::table::Table`]: one row per subset plus the average.
pub fn report_table(r: &PbReport) -> crate::table::Table {
    let mut t = crate::table::Table::new([
        "subset",
        "erroneous (n)",
        "correct (n)",
        "acc. erroneous %",
        "acc. correct %",
        "F1 %",
        "unparseable",
    ]);
    for s in &r.subsets {
        t.push([
            s.subset.clone(),
            s.n_erroneous.to_string(),
            s.n_correct.to_string(),
            pct(s.acc_erroneous),
            pct(s.acc_correct),
            pct(s.f1),
            s.unparseable.to_string(),
        ]);
    }
    t.push([
        "average".to_string(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        pct(r.average_f1),
        String::new(),
    ]);
    t
}

/// ProcessBench records of `subsets` (comma-separated; `data_dir` holds
/// `processbench/<subset>.jsonl`) as labelled steps for training a head: good until the
/// first error, the first error bad. `limit` and `balanced` select as in [`select`].
pub fn labelled_records(
    data_dir: &Path,
    subsets: &str,
    limit: Option<usize>,
    balanced: bool,
) -> Result<Vec<stepwise_score::LabelledRecord>, EvalError> {
    let mut out = Vec::new();
    for s in subsets.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if !SUBSETS.contains(&s) {
            return Err(EvalError::Invalid(format!(
                "unknown ProcessBench subset '{s}' (expected {})",
                SUBSETS.join(", ")
            )));
        }
        let recs = read_jsonl(&data_dir.join("processbench").join(format!("{s}.jsonl")))?;
        out.extend(select(recs, limit, balanced).into_iter().map(|r| {
            stepwise_score::LabelledRecord {
                id: format!("processbench:{}", r.id),
                good: stepwise_score::processbench_labels(r.steps.len(), r.label),
                values: None,
                answer_correct: Some(r.final_answer_correct),
                question: r.problem,
                steps: r.steps,
            }
        }));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(i: i64) -> Prediction {
        Prediction::Index(i)
    }

    #[test]
    fn hand_computed_f1() {
        // 4 erroneous: labels 2,0,3,1; predictions 2 (hit), 1 (miss), 3 (hit), -1 (miss) -> 2/4
        // 3 correct: predictions -1 (hit), 0 (miss), -1 (hit) -> 2/3
        // F1 = 2 * 0.5 * 2/3 / (0.5 + 2/3) = (2/3) / (7/6) = 4/7
        let m = subset_metrics(
            "x",
            [
                (2, idx(2)),
                (0, idx(1)),
                (3, idx(3)),
                (1, idx(-1)),
                (-1, idx(-1)),
                (-1, idx(0)),
                (-1, idx(-1)),
            ],
        );
        assert_eq!((m.n_erroneous, m.n_correct), (4, 3));
        assert_eq!((m.erroneous_hits, m.correct_hits), (2, 2));
        assert_eq!(m.acc_erroneous, Some(0.5));
        assert!((m.acc_correct.unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert!((m.f1.unwrap() - 4.0 / 7.0).abs() < 1e-12);
    }

    #[test]
    fn an_earlier_or_later_index_is_wrong() {
        // Exact match only: flagging step 1 when the first error is step 2 is a miss.
        let m = subset_metrics("x", [(2, idx(1)), (2, idx(3)), (-1, idx(-1))]);
        assert_eq!(m.acc_erroneous, Some(0.0));
        assert_eq!(m.f1, Some(0.0));
    }

    #[test]
    fn no_erroneous_predictions_gives_zero_f1() {
        // Always predicting "no error": perfect on correct samples, 0 on erroneous ones.
        let m = subset_metrics("x", [(0, idx(-1)), (4, idx(-1)), (-1, idx(-1))]);
        assert_eq!(m.acc_erroneous, Some(0.0));
        assert_eq!(m.acc_correct, Some(1.0));
        assert_eq!(m.f1, Some(0.0));
    }

    #[test]
    fn all_correct_subset_has_undefined_f1() {
        let m = subset_metrics("x", [(-1, idx(-1)), (-1, idx(2))]);
        assert_eq!(m.n_erroneous, 0);
        assert_eq!(m.acc_erroneous, None);
        assert_eq!(m.acc_correct, Some(0.5));
        assert_eq!(m.f1, None);
        assert_eq!(pct(m.f1), "n/a");
    }

    #[test]
    fn empty_subset() {
        let m = subset_metrics("x", std::iter::empty());
        assert_eq!((m.n_erroneous, m.n_correct), (0, 0));
        assert_eq!((m.acc_erroneous, m.acc_correct, m.f1), (None, None, None));
        assert_eq!(average_f1(&[m]), None);
    }

    #[test]
    fn unparseable_counts_as_wrong_in_both_classes() {
        let m = subset_metrics(
            "x",
            [
                (1, Prediction::Unparseable),
                (1, idx(1)),
                (-1, Prediction::Unparseable),
                (-1, idx(-1)),
            ],
        );
        assert_eq!(m.unparseable, 2);
        assert_eq!(m.acc_erroneous, Some(0.5));
        assert_eq!(m.acc_correct, Some(0.5));
        assert_eq!(m.f1, Some(0.5));
    }

    #[test]
    fn perfect_predictions() {
        let m = subset_metrics("x", [(0, idx(0)), (-1, idx(-1))]);
        assert_eq!(m.f1, Some(1.0));
    }

    #[test]
    fn threshold_prediction() {
        let s = [0.9, 0.6, 0.2, 0.1];
        assert_eq!(predict_from_scores(&s, 0.5), 2);
        assert_eq!(predict_from_scores(&s, 0.6), 2); // strictly below
        assert_eq!(predict_from_scores(&s, 0.61), 1);
        assert_eq!(predict_from_scores(&s, 0.05), -1);
        assert_eq!(predict_from_scores(&[], 0.5), -1);
    }

    #[test]
    fn threshold_choice_by_hand() {
        // Sample A (label 1): scores [0.9, 0.3]  -> correct iff 0.3 < t <= 0.9
        // Sample B (label -1): scores [0.8, 0.7] -> correct iff t <= 0.7
        // Sample C (label 0): scores [0.4, 0.9]  -> correct iff t > 0.4
        // t in (0.4, 0.7]: all three right, F1 = 1.
        let a = [0.9, 0.3];
        let b = [0.8, 0.7];
        let c = [0.4, 0.9];
        let samples: Vec<(&[f64], i64)> = vec![(&a, 1), (&b, -1), (&c, 0)];
        let ch = choose_threshold(&samples);
        assert!(ch.threshold > 0.4 && ch.threshold <= 0.7, "{ch:?}");
        assert_eq!(ch.f1, Some(1.0));
        // distinct scores 0.3 0.4 0.7 0.8 0.9 -> 0, four midpoints, above max
        assert_eq!(ch.candidates, 6);
    }

    #[test]
    fn threshold_ties_keep_the_smallest() {
        // One erroneous sample (label 0) whose score never drops, one correct sample:
        // every threshold gives F1 0 except none; all tie at 0 -> smallest candidate kept.
        let a = [1.0];
        let b = [1.0];
        let ch = choose_threshold(&[(&a, 0), (&b, -1)]);
        assert_eq!(ch.f1, Some(0.0));
        assert_eq!(ch.threshold, 0.0);
    }

    #[test]
    fn critic_parsing() {
        assert_eq!(parse_critic(r"The error is in \boxed{2}.", 5), idx(2));
        assert_eq!(parse_critic(r"\boxed{ -1 }", 5), idx(-1));
        assert_eq!(parse_critic(r"first \boxed{1} then \boxed{$3$}", 5), idx(3));
        assert_eq!(parse_critic(r"\boxed{5}", 5), Prediction::Unparseable); // out of range
        assert_eq!(parse_critic(r"\boxed{-2}", 5), Prediction::Unparseable);
        assert_eq!(
            parse_critic(r"\boxed{paragraph 2}", 5),
            Prediction::Unparseable
        );
        assert_eq!(
            parse_critic("paragraph 2 is wrong", 5),
            Prediction::Unparseable
        );
        assert_eq!(parse_critic(r"\boxed{2", 5), Prediction::Unparseable);
    }

    #[test]
    fn balanced_selection() {
        let rec = |id: &str, label: i64| PbRecord {
            id: id.into(),
            generator: String::new(),
            problem: String::new(),
            steps: vec!["a".into(), "b".into()],
            final_answer_correct: false,
            label,
            problem_id: None,
        };
        let all = vec![
            rec("e1", 0),
            rec("e2", 1),
            rec("e3", 0),
            rec("c1", -1),
            rec("c2", -1),
        ];
        let ids = |v: Vec<PbRecord>| v.into_iter().map(|r| r.id).collect::<Vec<_>>();
        assert_eq!(ids(select(all.clone(), Some(3), false)), ["e1", "e2", "e3"]);
        assert_eq!(ids(select(all.clone(), Some(3), true)), ["e1", "c1", "c2"]);
        assert_eq!(
            ids(select(all.clone(), Some(4), true)),
            ["e1", "e2", "c1", "c2"]
        );
        assert_eq!(select(all.clone(), None, true).len(), 5);
    }

    #[test]
    fn critic_prompt_tags_paragraphs_from_zero() {
        let p = critic_prompt("What is 1+1?", &["a".into(), "b".into()]);
        assert!(p.contains("<paragraph_0>\na\n</paragraph_0>\n\n<paragraph_1>\nb\n</paragraph_1>"));
        assert!(p.contains(r"\boxed{}"));
    }

    fn res(subset: &str, label: i64, scores: &[f64]) -> PbResult {
        PbResult {
            id: format!("{subset}-{label}"),
            subset: subset.into(),
            label,
            n_steps: scores.len(),
            scores: scores.to_vec(),
            critic: None,
            generated_tokens: 10,
            prompt_tokens: 0,
            problem: String::new(),
            steps: Vec::new(),
            details: Vec::new(),
        }
    }

    #[test]
    fn evaluate_tunes_on_gsm8k_and_applies_everywhere() {
        let results = vec![
            res("gsm8k", 1, &[0.9, 0.3]),
            res("gsm8k", -1, &[0.8, 0.7]),
            res("math", 0, &[0.5, 0.9]), // predicted 0 at t in (0.3,0.7]: hit
            res("math", -1, &[0.9, 0.2]), // predicted 1: miss
        ];
        let r = evaluate(&results, None).unwrap();
        let ThresholdSource::TunedOnGsm8k(ch) = r.threshold else {
            panic!("{:?}", r.threshold)
        };
        assert_eq!(ch.f1, Some(1.0));
        assert_eq!(r.subsets[0].subset, "gsm8k");
        assert_eq!(r.subsets[1].f1, Some(0.0)); // acc_err 1, acc_cor 0
        assert_eq!(r.average_f1, Some(0.5));
        assert_eq!(r.mean_generated_tokens, 10.0);

        let fixed = evaluate(&results, Some(0.95)).unwrap();
        // everything flagged at step 0: only the math label-0 sample is right
        assert_eq!(fixed.subsets[0].f1, Some(0.0));
        assert_eq!(fixed.subsets[1].acc_erroneous, Some(1.0));

        assert!(evaluate(&results[2..], None).is_err()); // no gsm8k to tune on
        assert!(evaluate(&results[2..], Some(0.5)).is_ok());
    }

    #[test]
    fn evaluate_critic_mode() {
        let mut a = res("math", 1, &[]);
        a.critic = Some(idx(1));
        let mut b = res("math", -1, &[]);
        b.critic = Some(Prediction::Unparseable);
        let r = evaluate(&[a.clone(), b], None).unwrap();
        assert_eq!(r.threshold, ThresholdSource::Critic);
        assert_eq!(r.subsets[0].f1, Some(0.0));
        assert_eq!(r.subsets[0].unparseable, 1);
        let mixed = [a, res("math", 0, &[0.1])];
        assert!(evaluate(&mixed, Some(0.5)).is_err());
    }

    #[test]
    fn reads_jsonl_and_names_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.jsonl");
        std::fs::write(
            &p,
            "{\"id\":\"a\",\"problem\":\"p\",\"steps\":[\"s\"],\"label\":-1}\n\n{\"id\":\"b\"\n",
        )
        .unwrap();
        let e = read_jsonl(&p).unwrap_err().to_string();
        assert!(e.contains("x.jsonl:3"), "{e}");
        std::fs::write(
            &p,
            "{\"id\":\"a\",\"problem\":\"p\",\"steps\":[\"s\"],\"label\":1}\n",
        )
        .unwrap();
        assert!(
            read_jsonl(&p)
                .unwrap_err()
                .to_string()
                .contains("out of range")
        );
    }

    proptest::proptest! {
        #[test]
        fn critic_parse_never_panics(s in ".{0,60}", n in 0usize..20) {
            let _ = parse_critic(&s, n);
        }

        #[test]
        fn f1_is_between_accuracies(hits_e in 0usize..20, miss_e in 0usize..20, hits_c in 0usize..20, miss_c in 0usize..20) {
            let pairs = std::iter::repeat_n((0, idx(0)), hits_e)
                .chain(std::iter::repeat_n((0, idx(-1)), miss_e))
                .chain(std::iter::repeat_n((-1, idx(-1)), hits_c))
                .chain(std::iter::repeat_n((-1, idx(0)), miss_c));
            let m = subset_metrics("p", pairs);
            if let (Some(a), Some(b), Some(f)) = (m.acc_erroneous, m.acc_correct, m.f1) {
                proptest::prop_assert!(f <= a.max(b) + 1e-12 && f >= a.min(b) - 1e-12);
            }
        }
    }
}
