//! Reports of stored runs (`stepwise report RUN_ID`): the same self-contained page as
//! for result files (tables, inline plots, a drill-down with every step's score
//! coloured), built from what `solve`, `scale` or `annotate` recorded.

use crate::EvalError;
use crate::calibration::calibrate;
use crate::compute::{CurvePoint, ProblemSamples, Resampling, curve_table, headline, run_curves};
use crate::plot::{AccuracyVsTokens, to_svg};
use crate::report::{ProblemView, RationaleView, Report, Section};
use crate::runs::{
    LoadedRun, RunContent, SolveUnit, compute_data, scale_points, scale_table, step_scores,
};
use crate::table::Table;
use crate::views::{calibration_section, score_calibration_sections};
use std::collections::HashMap;
use stepwise_core::Problem;
use stepwise_jobs::kinds::annotate::QuestionResult;
use stepwise_jobs::kinds::scale::{ScaleConfig, ScaleRecord, summarize};
use stepwise_jobs::kinds::solve::Sample;
use stepwise_verify::Options;

/// Problem views in a fixed order (the run's problem order, then first appearance).
struct Drill<'a> {
    problems: HashMap<&'a str, &'a Problem>,
    order: Vec<String>,
    views: HashMap<String, ProblemView>,
}

impl<'a> Drill<'a> {
    fn new(problems: &'a [Problem]) -> Self {
        Self {
            problems: problems.iter().map(|p| (p.id.as_str(), p)).collect(),
            order: problems.iter().map(|p| p.id.clone()).collect(),
            views: HashMap::new(),
        }
    }

    fn view(&mut self, id: &str) -> &mut ProblemView {
        if !self.order.iter().any(|x| x == id) {
            self.order.push(id.to_string());
        }
        let p = self.problems.get(id).copied();
        self.views
            .entry(id.to_string())
            .or_insert_with(|| ProblemView {
                id: id.to_string(),
                question: p.map_or_else(
                    || "(question not available: the run's dataset could not be reloaded)".into(),
                    |p| p.question.clone(),
                ),
                gold: p.and_then(|p| p.gold.clone()),
                summary: String::new(),
                rationales: Vec::new(),
            })
    }

    fn finish(mut self, max: usize) -> Vec<ProblemView> {
        self.order
            .iter()
            .filter_map(|id| self.views.remove(id))
            .take(max)
            .collect()
    }
}

fn rationale(title: String, s: &Sample, correct: Option<bool>) -> RationaleView {
    RationaleView {
        title,
        steps: s.rationale.steps.iter().map(|x| x.text.clone()).collect(),
        scores: step_scores(s),
        answer: s.rationale.answer.clone(),
        correct,
        note: Some(format!(
            "{} policy + {} judge tokens{}",
            s.tokens,
            s.judge.generated_tokens(),
            s.score
                .map_or(String::new(), |x| format!("; rationale score {x:.3}"))
        )),
        ..RationaleView::default()
    }
}

fn curves_section(
    heading: &str,
    paragraph: String,
    points: &[CurvePoint],
    plot_title: &str,
) -> Result<Section, EvalError> {
    let svg = to_svg(&AccuracyVsTokens {
        title: plot_title.into(),
        points: &headline(points),
    })?;
    Ok(Section {
        heading: heading.into(),
        paragraphs: vec![paragraph],
        tables: vec![curve_table(points)],
        svgs: vec![svg],
    })
}

fn resampling_sentence(opts: Resampling) -> String {
    format!(
        "Intervals: {:.0}% percentile bootstrap over problems ({} resamples, seed {}).",
        opts.level * 100.0,
        opts.bootstrap,
        opts.seed
    )
}

fn meta(run: &LoadedRun) -> Vec<(String, String)> {
    let i = &run.info;
    vec![
        ("run".into(), format!("{} ({})", i.id, i.kind)),
        ("store".into(), run.store.display().to_string()),
        ("status".into(), i.status.to_string()),
        ("created".into(), i.created.clone()),
        ("updated".into(), i.updated.clone()),
        ("units".into(), i.units.to_string()),
        ("configuration".into(), i.config.to_string()),
    ]
}

/// The report of a stored run of any kind.
pub fn run_report(
    run: &LoadedRun,
    title: Option<&str>,
    opts: Resampling,
    max_problems: usize,
) -> Result<Report, EvalError> {
    let title = title.map_or_else(
        || format!("stepwise report: run {} ({})", run.info.id, run.info.kind),
        str::to_string,
    );
    let (sections, problems) = match &run.content {
        RunContent::Scale { config, units } => {
            scale_sections(run, config, units, opts, max_problems)?
        }
        RunContent::Solve(units) => solve_sections(run, units, opts, max_problems)?,
        RunContent::Annotate(results) => annotate_sections(run, results, max_problems)?,
    };
    Ok(Report {
        title,
        meta: meta(run),
        sections,
        problems,
    })
}

type Parts = (Vec<Section>, Vec<ProblemView>);

fn samples_paragraph(samples: &[ProblemSamples], ks: &[usize], opts: Resampling) -> String {
    format!(
        "{} problems; k = {}. pass@k uses the unbiased estimator; maj@k, weighted@k and best-of-k average {} random k-subsets of each problem's samples (answers are grouped by verified equivalence). Tokens: k samples' policy tokens, plus their judge tokens for the selections that read step scores. {} The plot shows pass@k (dashed: a ceiling), maj@k, weighted@k (min), best-of-k (min) and best-of-k (last); the table has every selection.",
        samples.len(),
        ks.iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        opts.draws,
        resampling_sentence(opts)
    )
}

fn scale_sections(
    run: &LoadedRun,
    config: &ScaleConfig,
    units: &[ScaleRecord],
    opts: Resampling,
    max_problems: usize,
) -> Result<Parts, EvalError> {
    let rows = summarize(config, &run.problems, units, &Options::default());
    let row_points = scale_points(&rows, opts);
    let mut sections = vec![Section {
        heading: "Strategies at each budget".into(),
        paragraphs: vec![format!(
            "The table `stepwise scale` prints, recomputed from the stored units: majority, weighted and bon with N use the first N samples of each problem's draw; tree searches ran with N candidates per step; pass@N is the ceiling (one of the first N samples is right). Mean tokens are generated tokens per problem, policy + judge. {}",
            resampling_sentence(opts)
        )],
        tables: vec![scale_table(&rows, opts)],
        svgs: vec![to_svg(&AccuracyVsTokens {
            title: format!("Accuracy vs tokens ({} problems)", run.problems.len()),
            points: &row_points,
        })?],
    }];
    let d = compute_data(run)?;
    if !d.samples.is_empty() {
        let pts = crate::compute::sample_curves(&d.samples, &d.ks, &d.selections(), opts);
        sections.push(curves_section(
            "Accuracy versus compute (every selection of the sample draws)",
            samples_paragraph(&d.samples, &d.ks, opts),
            &pts,
            "Accuracy vs compute, every selection",
        )?);
        sections.extend(score_calibration_sections(&d.samples)?);
    }
    let mut drill = Drill::new(&run.problems);
    let opts_v = Options::default();
    let gold_of = |id: &str| {
        run.problems
            .iter()
            .find(|p| p.id == id)
            .and_then(|p| p.gold.clone())
    };
    let right = |gold: &Option<String>, a: Option<&str>| match (gold, a) {
        (Some(g), Some(a)) => Some(stepwise_verify::verify(g, a, &opts_v).is_equal()),
        (Some(_), None) => Some(false),
        _ => None,
    };
    for u in units {
        let gold = gold_of(u.problem_id());
        let v = drill.view(u.problem_id());
        match u {
            ScaleRecord::Samples { samples, .. } => {
                let mut c = 0;
                for (i, s) in samples.iter().enumerate() {
                    let ok = right(&gold, s.rationale.answer.as_deref());
                    c += usize::from(ok == Some(true));
                    v.rationales.push(rationale(format!("sample {i}"), s, ok));
                }
                push_summary(v, format!("{c}/{} samples correct", samples.len()));
            }
            ScaleRecord::Tree {
                strategy,
                n,
                outcome,
            } => {
                let ok = right(&gold, outcome.answer.as_deref());
                if let Some(s) = outcome.chosen.and_then(|i| outcome.samples.get(i)) {
                    v.rationales
                        .push(rationale(format!("{strategy} N={n}: chosen"), s, ok));
                }
                push_summary(
                    v,
                    format!(
                        "{strategy} N={n} {}",
                        match ok {
                            Some(true) => "✓",
                            Some(false) => "✗",
                            None => "?",
                        }
                    ),
                );
            }
        }
    }
    Ok((sections, drill.finish(max_problems)))
}

fn push_summary(v: &mut ProblemView, s: String) {
    if v.summary.is_empty() {
        v.summary = s;
    } else {
        v.summary.push_str(" · ");
        v.summary.push_str(&s);
    }
}

fn solve_sections(
    run: &LoadedRun,
    units: &[SolveUnit],
    opts: Resampling,
    max_problems: usize,
) -> Result<Parts, EvalError> {
    let d = compute_data(run)?;
    let points = run_curves(&d.outcomes, opts);
    let strategy = run
        .info
        .config
        .get("strategy")
        .and_then(|s| s.as_str())
        .unwrap_or("?");
    let scorer = run
        .info
        .config
        .pointer("/search/scorer")
        .and_then(|s| s.as_str())
        .unwrap_or("no scorer");
    let mut sections = vec![Section {
        heading: "Accuracy and tokens".into(),
        paragraphs: vec![format!(
            "{strategy} with {scorer}: {} problems with a gold answer{}. Mean tokens are generated tokens per problem, policy + judge. {}",
            d.outcomes.len(),
            if d.unknown > 0 {
                format!(" ({} without one are left out)", d.unknown)
            } else {
                String::new()
            },
            resampling_sentence(opts)
        )],
        tables: vec![curve_table(&points)],
        svgs: vec![to_svg(&AccuracyVsTokens {
            title: format!("Accuracy vs tokens: {strategy}"),
            points: &points,
        })?],
    }];
    if !d.samples.is_empty() {
        let pts = crate::compute::sample_curves(&d.samples, &d.ks, &d.selections(), opts);
        sections.push(curves_section(
            "Accuracy versus compute (subsets of each problem's samples)",
            samples_paragraph(&d.samples, &d.ks, opts),
            &pts,
            "Accuracy vs compute, every selection",
        )?);
    }
    // calibration over every scored sample whose correctness is known
    let scored = crate::runs::scored_samples(run)?;
    sections.extend(score_calibration_sections(&scored)?);

    let mut drill = Drill::new(&run.problems);
    for u in units {
        let o = &u.outcome;
        let v = drill.view(&o.problem_id);
        for (i, s) in o.samples.iter().enumerate() {
            let chosen = if o.chosen == Some(i) { " (chosen)" } else { "" };
            v.rationales.push(rationale(
                format!("sample {i}{chosen}"),
                s,
                u.sample_correct.get(i).copied().flatten(),
            ));
        }
        let c = u
            .sample_correct
            .iter()
            .filter(|c| **c == Some(true))
            .count();
        push_summary(
            v,
            format!(
                "answer {} {} · {c}/{} samples correct · {} tokens",
                o.answer.as_deref().unwrap_or("none"),
                match u.correct {
                    Some(true) => "✓",
                    Some(false) => "✗",
                    None => "(no gold)",
                },
                o.samples.len(),
                o.spent.generated_tokens()
            ),
        );
    }
    Ok((sections, drill.finish(max_problems)))
}

fn annotate_sections(
    run: &LoadedRun,
    results: &[QuestionResult],
    max_problems: usize,
) -> Result<Parts, EvalError> {
    let mut methods: Vec<_> = results.iter().map(|r| r.method).collect();
    methods.sort();
    methods.dedup();
    let mut t = Table::new([
        "method",
        "questions",
        "labelled solutions",
        "labelled steps",
        "steps labelled good %",
        "solutions with a correct answer",
        "generated tokens / question",
        "calls / question",
    ]);
    // (min label of the solution, its answer is correct)
    let mut pairs: Vec<(f64, bool)> = Vec::new();
    for m in &methods {
        let rs: Vec<&QuestionResult> = results.iter().filter(|r| r.method == *m).collect();
        let sols: Vec<_> = rs.iter().flat_map(|r| &r.solutions).collect();
        let labels: Vec<_> = sols.iter().flat_map(|s| &s.labels).collect();
        let good = labels.iter().filter(|l| l.good).count();
        let known: Vec<bool> = sols.iter().filter_map(|s| s.answer_correct).collect();
        let q = rs.len().max(1) as f64;
        t.push([
            m.to_string(),
            rs.len().to_string(),
            sols.len().to_string(),
            labels.len().to_string(),
            if labels.is_empty() {
                "n/a".into()
            } else {
                format!("{:.1}", 100.0 * good as f64 / labels.len() as f64)
            },
            format!("{}/{}", known.iter().filter(|c| **c).count(), known.len()),
            format!(
                "{:.1}",
                rs.iter().map(|r| r.spent.generated_tokens()).sum::<u64>() as f64 / q
            ),
            format!(
                "{:.1}",
                rs.iter().map(|r| r.spent.calls()).sum::<u64>() as f64 / q
            ),
        ]);
        for s in &sols {
            let min = s
                .labels
                .iter()
                .map(|l| l.value)
                .filter(|v| v.is_finite())
                .fold(None, |a: Option<f64>, v| Some(a.map_or(v, |a| a.min(v))));
            if let (Some(v), Some(c)) = (min, s.answer_correct) {
                pairs.push((v.clamp(0.0, 1.0), c));
            }
        }
    }
    let mut sections = vec![Section {
        heading: "Step labels per method".into(),
        paragraphs: vec![
            "In the drill-down a step's colour is its label value (soft label in 0–1: Monte-Carlo value, judge confidence or hybrid reward); a blue bar marks the first step labelled bad.".into(),
        ],
        tables: vec![t],
        svgs: Vec::new(),
    }];
    if !pairs.is_empty() {
        sections.push(calibration_section(
            "Labels as a verifier",
            "Each labelled solution's smallest step label against whether its final answer is correct: how well the labels, used as an outcome predictor, are calibrated.",
            &calibrate(&pairs),
        )?);
    }
    let mut drill = Drill::new(&run.problems);
    for r in results {
        let v = drill.view(&r.problem_id);
        for s in &r.solutions {
            let steps = s.steps.clone();
            let scores = (0..steps.len())
                .map(|j| s.labels.get(j).map(|l| l.value).filter(|x| x.is_finite()))
                .collect();
            v.rationales.push(RationaleView {
                title: format!("{} · solution {}", r.method, s.sample),
                steps,
                scores,
                answer: None,
                correct: s.answer_correct,
                gold_first_error: None,
                predicted_first_error: s.first_error().map(|i| i as i64),
                note: Some(format!(
                    "{} of {} steps labelled",
                    s.labels.len(),
                    s.steps.len()
                )),
            });
        }
        push_summary(v, format!("{}: {} solutions", r.method, r.solutions.len()));
    }
    Ok((sections, drill.finish(max_problems)))
}
