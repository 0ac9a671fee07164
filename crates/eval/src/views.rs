//! Turning result files into reports: reading JSONL results of the three kinds
//! stepwise writes and building [`Report`]s (tables, plots, drill-down) from them.

use crate::EvalError;
use crate::calibration::calibrate;
use crate::compute::{
    ProblemSamples, Resampling, RunOutcome, Selection, curve_table, default_ks, run_curves,
    sample_curves,
};
use crate::plot::{AccuracyVsTokens, ProcessBenchBars, Reliability, to_svg};
use crate::processbench::{PbReport, PbResult, ThresholdSource, predict_from_scores, report_table};
use crate::report::{ProblemView, RationaleView, Report, Section};
use crate::table::Table;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::io::BufRead;
use std::path::Path;
use stepwise_core::Aggregation;

/// The contents of a results file.
#[derive(Debug, Clone, PartialEq)]
pub enum Results {
    /// `stepwise eval processbench` output: one [`PbResult`] per line.
    ProcessBench(Vec<PbResult>),
    /// Several samples per problem: one [`ProblemSamples`] per line.
    Samples(Vec<ProblemSamples>),
    /// One final outcome per problem, strategy and budget: one [`RunOutcome`] per line.
    Outcomes(Vec<RunOutcome>),
}

fn parse_lines<T: DeserializeOwned>(path: &Path, text: &str) -> Result<Vec<T>, EvalError> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| EvalError::Parse {
                path: path.display().to_string(),
                line: i + 1,
                reason: e.to_string(),
            })
        })
        .collect()
}

/// The spent fields of a `stepwise solve --out` line.
#[derive(Deserialize)]
struct SolveSpent {
    #[serde(default)]
    policy_tokens: u64,
    #[serde(default)]
    judge_tokens: u64,
}

/// The fields of a `stepwise solve --out` line (a search outcome with `correct`) that
/// accuracy versus compute needs.
#[derive(Deserialize)]
struct SolveLine {
    problem_id: String,
    strategy: String,
    #[serde(default)]
    correct: Option<bool>,
    spent: SolveSpent,
}

/// Outcomes of a `stepwise solve --out` file; lines without `correct` (problems without
/// a gold answer) are left out.
fn solve_outcomes(path: &Path, text: &str) -> Result<Vec<RunOutcome>, EvalError> {
    let lines: Vec<SolveLine> = parse_lines(path, text)?;
    let skipped = lines.iter().filter(|l| l.correct.is_none()).count();
    if skipped > 0 {
        tracing::warn!(
            "{}: {skipped} outcomes without a gold answer are left out",
            path.display()
        );
    }
    Ok(lines
        .into_iter()
        .filter_map(|l| {
            Some(RunOutcome {
                strategy: l.strategy,
                budget: String::new(),
                id: l.problem_id,
                correct: l.correct?,
                policy_tokens: l.spent.policy_tokens,
                judge_tokens: l.spent.judge_tokens,
            })
        })
        .collect())
}

/// The results file a user named: `path` itself, or `results.jsonl` inside it when it is
/// an output folder (what `eval processbench` and `solve --out` write).
pub fn results_file(path: &Path) -> std::path::PathBuf {
    if path.is_dir() {
        path.join("results.jsonl")
    } else {
        path.to_path_buf()
    }
}

/// Reads a results JSONL file, recognising its kind from the first record's fields
/// (`label` and `subset`: ProcessBench; `problem_id` and `spent`: the outcomes
/// `stepwise solve --out` writes; `samples`: samples; `strategy`: outcomes).
pub fn read_results(path: &Path) -> Result<Results, EvalError> {
    let io = |source| EvalError::Io {
        path: path.display().to_string(),
        source,
    };
    let f = std::fs::File::open(path).map_err(io)?;
    let mut text = String::new();
    for line in std::io::BufReader::new(f).lines() {
        text.push_str(&line.map_err(io)?);
        text.push('\n');
    }
    let Some((i, first)) = text.lines().enumerate().find(|(_, l)| !l.trim().is_empty()) else {
        return Err(EvalError::Invalid(format!(
            "{}: no records",
            path.display()
        )));
    };
    let v: serde_json::Value = serde_json::from_str(first).map_err(|e| EvalError::Parse {
        path: path.display().to_string(),
        line: i + 1,
        reason: e.to_string(),
    })?;
    let has = |k: &str| v.get(k).is_some();
    if has("label") && has("subset") {
        Ok(Results::ProcessBench(parse_lines(path, &text)?))
    } else if has("problem_id") && has("spent") {
        Ok(Results::Outcomes(solve_outcomes(path, &text)?))
    } else if has("samples") {
        Ok(Results::Samples(parse_lines(path, &text)?))
    } else if has("strategy") {
        Ok(Results::Outcomes(parse_lines(path, &text)?))
    } else {
        Err(EvalError::Parse {
            path: path.display().to_string(),
            line: i + 1,
            reason: "unknown results record: expected ProcessBench results (label, subset), \
                     samples (samples) or outcomes (strategy)"
                .into(),
        })
    }
}

/// The threshold actually used by a report (`None` in critic mode).
pub fn used_threshold(r: &PbReport) -> Option<f64> {
    match r.threshold {
        ThresholdSource::Fixed { threshold } => Some(threshold),
        ThresholdSource::TunedOnGsm8k(c) => Some(c.threshold),
        ThresholdSource::Critic => None,
    }
}

/// A sentence describing how predictions were made.
pub fn threshold_sentence(r: &PbReport) -> String {
    match r.threshold {
        ThresholdSource::Fixed { threshold } => format!(
            "Predicted first error: the first step whose score is below the fixed threshold {threshold:.4}."
        ),
        ThresholdSource::TunedOnGsm8k(c) => format!(
            "Predicted first error: the first step whose score is below {:.4}, the threshold with the best F1 on the GSM8K subset (F1 there {}; {} candidate thresholds tried), applied to every subset.",
            c.threshold,
            crate::processbench::pct(c.f1),
            c.candidates
        ),
        ThresholdSource::Critic => "Critic mode: the model names the first wrong paragraph in \\boxed{}; an answer that cannot be read as an index in range counts as wrong.".into(),
    }
}

/// ProcessBench report: table, bar chart, and a drill-down of up to `max_problems` records
/// (mistakes first).
pub fn processbench_report(
    title: &str,
    meta: Vec<(String, String)>,
    results: &[PbResult],
    pb: &PbReport,
    max_problems: usize,
) -> Result<Report, EvalError> {
    let bars = to_svg(&ProcessBenchBars {
        title: "ProcessBench: accuracy and F1 per subset".into(),
        subsets: &pb.subsets,
    })?;
    let t = used_threshold(pb);
    let mut paragraphs = vec![threshold_sentence(pb)];
    paragraphs.push(format!(
        "Mean tokens per sample (judge or critic): {:.1} generated, {:.1} prompt tokens read.",
        pb.mean_generated_tokens, pb.mean_prompt_tokens
    ));
    let mut sections = vec![Section {
        heading: "ProcessBench".into(),
        paragraphs,
        tables: vec![report_table(pb)],
        svgs: vec![bars],
    }];
    // Calibration of step scores against "this step is before the first error".
    if let Some(c) = step_calibration(results) {
        sections.push(calibration_section(
            "Step-score calibration",
            "Each step of each sample is one prediction: its score against whether the step comes before the annotated first error (steps after it are left out).",
            &c,
        )?);
    }
    let predicted = |r: &PbResult| match (r.critic, t) {
        (Some(p), _) => p.index(),
        (None, Some(t)) => Some(predict_from_scores(&r.scores, t)),
        (None, None) => None,
    };
    let mut order: Vec<&PbResult> = results.iter().collect();
    order.sort_by_key(|r| predicted(r) == Some(r.label));
    let problems = order
        .into_iter()
        .take(max_problems)
        .map(|r| {
            let pred = predicted(r);
            let hit = pred == Some(r.label);
            ProblemView {
                id: r.id.clone(),
                question: r.problem.clone(),
                gold: None,
                summary: format!(
                    "{} · annotated first error {} · predicted {} {}",
                    r.subset,
                    r.label,
                    pred.map_or("unparseable".to_string(), |p| p.to_string()),
                    if hit { "✓" } else { "✗" }
                ),
                rationales: vec![RationaleView {
                    title: "solution".into(),
                    steps: r.steps.clone(),
                    scores: if r.scores.is_empty() {
                        vec![None; r.steps.len()]
                    } else {
                        r.scores.iter().map(|&s| Some(s)).collect()
                    },
                    correct: Some(hit),
                    gold_first_error: Some(r.label),
                    predicted_first_error: pred,
                    note: if r.critic.is_some() {
                        r.details.first().map(|d| format!("Critic's answer: {d}"))
                    } else {
                        None
                    },
                    ..RationaleView::default()
                }],
            }
        })
        .collect();
    Ok(Report {
        title: title.into(),
        meta,
        sections,
        problems,
    })
}

/// Calibration of [`step_pairs`], `None` when nothing was scored.
pub fn step_calibration(results: &[PbResult]) -> Option<crate::calibration::Calibration> {
    let pairs = step_pairs(results);
    (!pairs.is_empty()).then(|| calibrate(&pairs))
}

/// `(score, step is before the first error)` for every scored step up to and including
/// the first error (steps after it have no annotation).
pub fn step_pairs(results: &[PbResult]) -> Vec<(f64, bool)> {
    let mut pairs = Vec::new();
    for r in results {
        for (i, &s) in r.scores.iter().enumerate() {
            let i = i as i64;
            if r.label >= 0 && i > r.label {
                break;
            }
            pairs.push((s, r.label < 0 || i < r.label));
        }
    }
    pairs
}

/// A section with the calibration table and reliability diagram of `c`.
pub fn calibration_section(
    heading: &str,
    what: &str,
    c: &crate::calibration::Calibration,
) -> Result<Section, EvalError> {
    let mut t = Table::new([
        "predictions",
        "positives",
        "ECE (15 bins)",
        "Brier",
        "AUROC",
    ]);
    t.push([
        c.n.to_string(),
        c.positives.to_string(),
        format!("{:.4}", c.ece),
        format!("{:.4}", c.brier),
        c.auroc.map_or("n/a".into(), |a| format!("{a:.4}")),
    ]);
    let svg = to_svg(&Reliability {
        title: format!("Reliability diagram (ECE {:.3})", c.ece),
        bins: &c.bins,
    })?;
    Ok(Section {
        heading: heading.into(),
        paragraphs: vec![what.into()],
        tables: vec![t],
        svgs: vec![svg],
    })
}

/// Calibration of each sample's `last`- and `min`-aggregated step score against whether
/// its final answer is correct (sections only where some sample has scores).
pub fn score_calibration_sections(problems: &[ProblemSamples]) -> Result<Vec<Section>, EvalError> {
    let mut sections = Vec::new();
    for agg in [Aggregation::Last, Aggregation::Min] {
        let pairs: Vec<(f64, bool)> = problems
            .iter()
            .flat_map(|p| p.samples.iter())
            .filter_map(|s| Some((agg.apply(&s.step_scores)?, s.correct)))
            .collect();
        if !pairs.is_empty() {
            sections.push(calibration_section(
                &format!("Calibration of the {agg} step score"),
                &format!("Each sample's {agg}-aggregated step score against whether its final answer is correct."),
                &calibrate(&pairs),
            )?);
        }
    }
    Ok(sections)
}

/// Accuracy-versus-compute report from samples: curves of every selection, a table,
/// calibration of final-step scores, and a drill-down.
pub fn samples_report(
    title: &str,
    meta: Vec<(String, String)>,
    problems: &[ProblemSamples],
    opts: Resampling,
    max_problems: usize,
) -> Result<Report, EvalError> {
    let n_max = problems.iter().map(|p| p.samples.len()).max().unwrap_or(0);
    let points = sample_curves(problems, &default_ks(n_max), &Selection::all(), opts);
    let main = crate::compute::headline(&points);
    let svg = to_svg(&AccuracyVsTokens {
        title: "Accuracy vs compute".into(),
        points: &main,
    })?;
    let mut sections = vec![Section {
        heading: "Accuracy versus compute".into(),
        paragraphs: vec![format!(
            "{} problems, up to {n_max} samples each. pass@k uses the unbiased estimator; maj@k, weighted@k and best-of-k average {} random k-subsets per problem; intervals are {:.0}% percentile bootstrap over problems ({} resamples, seed {}). The plot shows pass@k, maj@k, weighted@k (min), best-of-k (min) and best-of-k (last); the table has every selection.",
            problems.len(),
            opts.draws,
            opts.level * 100.0,
            opts.bootstrap,
            opts.seed
        )],
        tables: vec![curve_table(&points)],
        svgs: vec![svg],
    }];
    sections.extend(score_calibration_sections(problems)?);
    let views = problems
        .iter()
        .take(max_problems)
        .map(|p| {
            let c = p.samples.iter().filter(|s| s.correct).count();
            ProblemView {
                id: p.id.clone(),
                question: p.question.clone(),
                gold: p.gold.clone(),
                summary: format!("{c}/{} samples correct", p.samples.len()),
                rationales: p
                    .samples
                    .iter()
                    .enumerate()
                    .map(|(i, s)| RationaleView {
                        title: format!("sample {i}"),
                        steps: s.steps.clone(),
                        scores: (0..s.steps.len())
                            .map(|j| s.step_scores.get(j).copied())
                            .collect(),
                        answer: s.answer.clone(),
                        correct: Some(s.correct),
                        note: Some(format!(
                            "{} policy + {} judge tokens",
                            s.policy_tokens, s.judge_tokens
                        )),
                        ..RationaleView::default()
                    })
                    .collect(),
            }
        })
        .collect();
    Ok(Report {
        title: title.into(),
        meta,
        sections,
        problems: views,
    })
}

/// Report of strategy outcomes: accuracy per strategy and budget against tokens.
pub fn outcomes_report(
    title: &str,
    meta: Vec<(String, String)>,
    outcomes: &[RunOutcome],
    opts: Resampling,
) -> Result<Report, EvalError> {
    let points = run_curves(outcomes, opts);
    let svg = to_svg(&AccuracyVsTokens {
        title: "Accuracy vs compute per strategy".into(),
        points: &points,
    })?;
    Ok(Report {
        title: title.into(),
        meta,
        sections: vec![Section {
            heading: "Accuracy versus compute".into(),
            paragraphs: vec![format!(
                "{} outcomes. Intervals: {:.0}% percentile bootstrap over problems ({} resamples, seed {}).",
                outcomes.len(),
                opts.level * 100.0,
                opts.bootstrap,
                opts.seed
            )],
            tables: vec![curve_table(&points)],
            svgs: vec![svg],
        }],
        problems: Vec::new(),
    })
}

/// Builds the report that fits whatever `results` holds.
pub fn report_for(
    title: &str,
    meta: Vec<(String, String)>,
    results: &Results,
    threshold: Option<f64>,
    opts: Resampling,
    max_problems: usize,
) -> Result<Report, EvalError> {
    match results {
        Results::ProcessBench(r) => {
            let pb = crate::processbench::evaluate(r, threshold)?;
            processbench_report(title, meta, r, &pb, max_problems)
        }
        Results::Samples(p) => samples_report(title, meta, p, opts, max_problems),
        Results::Outcomes(o) => outcomes_report(title, meta, o, opts),
    }
}
