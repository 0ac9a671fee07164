//! `stepwise bench labels`: the label methods of `stepwise-annotate` measured against
//! exact truth at scale, on a *simulated* policy (no model calls).
//!
//! For each step error rate `p` the same `arith` questions (an equal share for each
//! number of operations in `--min-ops..=--max-ops`, so solutions have that many steps
//! plus the answer line) are labelled by every method at several budgets, each
//! (method, budget) one `annotate` run of the job runner on one store. The policy is
//! [`stepwise_annotate::sim::SimPolicy`] (`sim-arith(p=…)`): every step wrong with
//! probability `p`, errors carried forward, so the true first error of every labelled
//! solution is known exactly (`arith` ground truth) and roots have `0 < MC < 1`. The
//! `reference` method's judge is simulated too (the true verdicts flipped with
//! probability `--judge-noise`): its row measures that knob, not a model.
//!
//! Per row: first-error accuracy (the predicted first bad step is the true one; none for
//! none), precision / recall / F1 of "bad" steps, rollouts and generated tokens per
//! labelled step (every continuation counts, the sampled solutions included), each with
//! a percentile bootstrap interval over questions. The figure is first-error accuracy
//! against rollouts per labelled step, one line per method, one figure per `p`.

use crate::report::{self, Align, Table};
use crate::{BenchError, io};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use stepwise_annotate::grounded::GroundedRule;
use stepwise_annotate::run::{AnnotateConfig, run_problems};
use stepwise_annotate::sim::{SimConfig, SimPolicy};
use stepwise_annotate::truth::{Tally, tallies};
use stepwise_annotate::{Method, QuestionResult};
use stepwise_core::Problem;
use stepwise_eval::compute::CurvePoint;
use stepwise_eval::stats::Estimate;
use stepwise_jobs::RunOptions;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Questions per error rate (split evenly over the operation counts).
    #[arg(long, default_value_t = 500)]
    pub questions: usize,
    /// Fewest operations (steps before the answer line) of a question.
    #[arg(long, default_value_t = 6)]
    pub min_ops: usize,
    /// Most operations of a question.
    #[arg(long, default_value_t = 10)]
    pub max_ops: usize,
    /// Step error rates of the simulated policy.
    #[arg(long, value_delimiter = ',', default_value = "0.1,0.3")]
    pub error_rates: Vec<f64>,
    /// Share of simulated errors that misread an operand (invisible to an arithmetic checker).
    #[arg(long, default_value_t = 0.5)]
    pub operand_errors: f64,
    /// Probability that the simulated judge (reference method) flips a true verdict.
    #[arg(long, default_value_t = 0.1)]
    pub judge_noise: f64,
    /// Solutions sampled per question (mc, adaptive-mc, reference, grounded).
    #[arg(long, default_value_t = 4)]
    pub samples: usize,
    /// mc budgets: rollouts per prefix.
    #[arg(long, value_delimiter = ',', default_value = "2,4,8,16")]
    pub mc_k: Vec<usize>,
    /// adaptive-mc budgets: most rollouts per prefix.
    #[arg(long, value_delimiter = ',', default_value = "4,16,64")]
    pub adaptive_k: Vec<usize>,
    /// omegaprm budgets: rollouts per new state.
    #[arg(long, value_delimiter = ',', default_value = "4,8,16")]
    pub omega_k: Vec<usize>,
    /// omegaprm: search iterations per question.
    #[arg(long, default_value_t = 16)]
    pub omega_search_limit: usize,
    /// omegaprm: most root rollouts while they agree, as a multiple of k (1: the paper).
    #[arg(long, default_value_t = 4)]
    pub omega_root_factor: usize,
    /// grounded: its rules, one series each (paper, mc-veto, weighted).
    #[arg(long, value_delimiter = ',', default_value = "paper,mc-veto")]
    pub grounded_rules: Vec<GroundedRule>,
    /// grounded, paper rule: let the tool abstain on right rollout steps (0, not +1).
    #[arg(long)]
    pub grounded_tool_abstains: bool,
    /// grounded budgets: rollouts per prefix.
    #[arg(long, value_delimiter = ',', default_value = "2,4,8")]
    pub grounded_k: Vec<usize>,
    /// Methods to run.
    #[arg(
        long = "method",
        value_delimiter = ',',
        default_value = "mc,adaptive-mc,omegaprm,reference,grounded"
    )]
    pub methods: Vec<Method>,
    /// Seed of the questions and of the labelling runs.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Bootstrap resamples (over questions) of each interval.
    #[arg(long, default_value_t = 1000)]
    pub bootstrap: usize,
    /// Run store of the labelling runs (default: a temporary SQLite file).
    #[arg(long, value_name = "SPEC")]
    pub store: Option<String>,
    /// Questions labelled at the same time in each run.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Write the Markdown report here; the figures go beside it (`STEM-p0.1.png`, `.svg`)
    /// and the rows to `STEM.json`.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// One (error rate, method, budget) row.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    pub error_rate: f64,
    pub method: Method,
    /// The budget knob of the method (`k`, `max_k`; none for reference).
    pub budget: Option<usize>,
    /// grounded only: its rule.
    pub rule: Option<GroundedRule>,
    pub tally: Tally,
    pub first_error_acc: Estimate,
    pub f1: Estimate,
    pub rollouts_per_step: Estimate,
    pub precision: f64,
    pub recall: f64,
    pub tokens_per_step: f64,
}

/// Percentile bootstrap over questions of the three headline statistics.
pub fn bootstrap(per_question: &[Tally], resamples: usize, seed: u64) -> [Estimate; 3] {
    let mut total = Tally::default();
    for t in per_question {
        total += *t;
    }
    let point = [
        total.first_error_acc(),
        total.f1(),
        total.rollouts_per_step(),
    ];
    let n = per_question.len();
    if n == 0 || resamples == 0 {
        return point.map(|m| Estimate {
            mean: m,
            lo: m,
            hi: m,
        });
    }
    let mut rng = stepwise_eval::stats::rng(seed);
    let mut draws: [Vec<f64>; 3] = Default::default();
    for _ in 0..resamples {
        let mut t = Tally::default();
        for _ in 0..n {
            t += per_question[rng.gen_range(0..n)];
        }
        for (d, v) in draws
            .iter_mut()
            .zip([t.first_error_acc(), t.f1(), t.rollouts_per_step()])
        {
            if v.is_finite() {
                d.push(v);
            }
        }
    }
    let mut out = point.map(|m| Estimate {
        mean: m,
        lo: m,
        hi: m,
    });
    for (o, d) in out.iter_mut().zip(draws.iter_mut()) {
        if d.is_empty() {
            continue;
        }
        d.sort_by(f64::total_cmp);
        let at = |q: f64| d[((q * (d.len() - 1) as f64).round() as usize).min(d.len() - 1)];
        o.lo = at(0.025);
        o.hi = at(0.975);
    }
    out
}

/// The questions: `questions` split evenly over `min_ops..=max_ops` operations.
pub fn problems(a: &Args) -> Result<Vec<Problem>, BenchError> {
    if a.min_ops == 0 || a.min_ops > a.max_ops {
        return Err(BenchError::Options(format!(
            "--min-ops {} .. --max-ops {} is not a range of operation counts",
            a.min_ops, a.max_ops
        )));
    }
    let kinds = a.max_ops - a.min_ops + 1;
    let mut out = Vec::with_capacity(a.questions);
    for (j, ops) in (a.min_ops..=a.max_ops).enumerate() {
        let n = a.questions / kinds + usize::from(j < a.questions % kinds);
        let cfg = stepwise_data::ArithConfig::parse(&format!("ops={ops},n={n},seed={}", a.seed))
            .map_err(BenchError::Options)?;
        for p in stepwise_data::arith::problems(&cfg) {
            out.push(p.map_err(|e| BenchError::Options(e.to_string()))?);
        }
    }
    Ok(out)
}

/// The runs of `method`: its budgets (and for grounded, each rule at each budget).
fn settings(a: &Args, m: Method) -> Vec<(Option<usize>, Option<GroundedRule>)> {
    let some = |v: &[usize]| v.iter().map(|&k| (Some(k), None)).collect();
    match m {
        Method::Mc | Method::Rpe => some(&a.mc_k),
        Method::AdaptiveMc => some(&a.adaptive_k),
        Method::OmegaPrm => some(&a.omega_k),
        Method::Grounded => a
            .grounded_rules
            .iter()
            .flat_map(|&r| a.grounded_k.iter().map(move |&k| (Some(k), Some(r))))
            .collect(),
        Method::Reference => vec![(None, None)],
    }
}

fn rule_name(r: GroundedRule) -> &'static str {
    match r {
        GroundedRule::Paper => "paper",
        GroundedRule::Weighted => "weighted",
        GroundedRule::McVeto => "mc-veto",
    }
}

/// The curve a row belongs to: the method, with grounded's rule.
pub fn series(r: &Row) -> String {
    match r.rule {
        Some(rule) => format!("{} ({})", r.method, rule_name(rule)),
        None => r.method.to_string(),
    }
}

fn config(
    a: &Args,
    m: Method,
    budget: Option<usize>,
    rule: Option<GroundedRule>,
    dataset: &str,
) -> AnnotateConfig {
    let mut c = AnnotateConfig {
        dataset: dataset.to_string(),
        methods: vec![m],
        seed: a.seed,
        samples: a.samples,
        ..AnnotateConfig::default()
    };
    c.omega.search_limit = a.omega_search_limit;
    c.grounded.tool_confirms = !a.grounded_tool_abstains;
    if let Some(r) = rule {
        c.grounded.rule = r;
    }
    if let Some(k) = budget {
        match m {
            Method::Mc | Method::Rpe => c.mc.k = k,
            Method::AdaptiveMc => c.adaptive.max_k = k,
            Method::OmegaPrm => {
                c.omega.k = k;
                c.omega.root_max_k = a.omega_root_factor * k;
            }
            Method::Grounded => c.grounded.k = k,
            Method::Reference => {}
        }
    }
    c
}

/// Runs every (error rate, method, budget) and returns the rows.
pub async fn measure(
    a: &Args,
    store: &dyn stepwise_jobs::RunStore,
) -> Result<Vec<Row>, BenchError> {
    let problems = problems(a)?;
    let dataset = format!(
        "bench-labels: arith ops={}..={}, {} questions, seed {}",
        a.min_ops,
        a.max_ops,
        problems.len(),
        a.seed
    );
    let opts = RunOptions {
        concurrency: a.concurrency.max(1),
        progress: true,
        ..RunOptions::default()
    };
    let mut rows = Vec::new();
    for &p in &a.error_rates {
        let sim = SimConfig {
            p,
            operand_errors: a.operand_errors,
            judge_noise: a.judge_noise,
        };
        let generator = Arc::new(SimPolicy::new(sim, &problems).map_err(annotate_err)?);
        for &m in &a.methods {
            for (budget, rule) in settings(a, m) {
                let cfg = config(a, m, budget, rule, &dataset);
                let (run, results) =
                    run_problems(store, cfg, problems.clone(), generator.clone(), &opts)
                        .await
                        .map_err(annotate_err)?;
                tracing::info!(run, p, method = %m, ?budget, "labelled");
                let mut r = row(a, p, m, budget, &problems, &results)?;
                r.rule = rule;
                rows.push(r);
            }
        }
    }
    Ok(rows)
}

fn annotate_err(e: stepwise_annotate::AnnotateError) -> BenchError {
    BenchError::Tool(format!("labelling: {e}"))
}

fn row(
    a: &Args,
    p: f64,
    m: Method,
    budget: Option<usize>,
    problems: &[Problem],
    results: &[QuestionResult],
) -> Result<Row, BenchError> {
    let ts = tallies(problems, results).map_err(annotate_err)?;
    let mut total = Tally::default();
    for t in &ts {
        total += *t;
    }
    let [fe, f1, rps] = bootstrap(&ts, a.bootstrap, a.seed);
    Ok(Row {
        error_rate: p,
        method: m,
        budget,
        rule: None,
        tally: total,
        first_error_acc: fe,
        f1,
        rollouts_per_step: rps,
        precision: total.precision(),
        recall: total.recall(),
        tokens_per_step: total.tokens_per_step(),
    })
}

fn est(e: &Estimate, d: usize) -> String {
    if e.mean.is_nan() {
        return "–".into();
    }
    format!("{:.d$} [{:.d$}, {:.d$}]", e.mean, e.lo, e.hi)
}

fn num(x: f64, d: usize) -> String {
    if x.is_nan() {
        "–".into()
    } else {
        format!("{x:.d$}")
    }
}

fn budget_label(m: Method, b: Option<usize>) -> String {
    match (m, b) {
        (Method::AdaptiveMc, Some(k)) => format!("max_k={k}"),
        (_, Some(k)) => format!("k={k}"),
        (_, None) => "one judge pass".into(),
    }
}

/// The answer to the benchmark's question for one error rate: which rows reach
/// first-error accuracy ≥ 0.9 with at most half of mc's rollouts per labelled step
/// (mc at k = 8, Math-Shepherd's setting, or the largest mc budget run).
pub fn goal(rows: &[Row], p: f64) -> String {
    let of_p: Vec<&Row> = rows.iter().filter(|r| r.error_rate == p).collect();
    let mcs: Vec<&&Row> = of_p.iter().filter(|r| r.method == Method::Mc).collect();
    let Some(base) = mcs
        .iter()
        .find(|r| r.budget == Some(8))
        .or_else(|| mcs.iter().max_by_key(|r| r.budget))
    else {
        return "no mc row to compare with".into();
    };
    let limit = base.rollouts_per_step.mean / 2.0;
    let meets: Vec<String> = of_p
        .iter()
        .filter(|r| {
            r.method != Method::Mc
                && r.first_error_acc.mean >= 0.9
                && r.rollouts_per_step.mean <= limit
        })
        .map(|r| {
            format!(
                "{} {} ({:.3}, lower bound {:.3}, at {:.2} rollouts/step)",
                series(r),
                budget_label(r.method, r.budget),
                r.first_error_acc.mean,
                r.first_error_acc.lo,
                r.rollouts_per_step.mean
            )
        })
        .collect();
    let base_txt = format!(
        "mc {} labels at {:.2} rollouts per labelled step with first-error accuracy {:.3}",
        budget_label(Method::Mc, base.budget),
        base.rollouts_per_step.mean,
        base.first_error_acc.mean
    );
    if meets.is_empty() {
        format!(
            "{base_txt}; **no method** reaches first-error accuracy ≥ 0.9 at ≤ {limit:.2} rollouts per labelled step."
        )
    } else {
        format!(
            "{base_txt}; at ≤ {limit:.2} rollouts per labelled step with first-error accuracy ≥ 0.9: {}.",
            meets.join("; ")
        )
    }
}

/// The Markdown report of `rows`.
pub fn markdown(a: &Args, rows: &[Row], figures: &[(f64, String)]) -> String {
    let mut s = String::new();
    for &p in &a.error_rates {
        let sim = SimConfig {
            p,
            operand_errors: a.operand_errors,
            judge_noise: a.judge_noise,
        };
        s.push_str(&format!(
            "### Step error rate p = {p} (policy: `{}`, simulated)\n\n",
            sim.name()
        ));
        let mut t = Table::new(&[
            ("method", Align::Left),
            ("budget", Align::Left),
            ("solutions", Align::Right),
            ("labelled steps", Align::Right),
            ("first-error acc [95% CI]", Align::Right),
            ("precision (bad)", Align::Right),
            ("recall (bad)", Align::Right),
            ("F1 (bad) [95% CI]", Align::Right),
            ("rollouts / labelled step [95% CI]", Align::Right),
            ("tokens / labelled step", Align::Right),
        ]);
        for r in rows.iter().filter(|r| r.error_rate == p) {
            t.row([
                series(r),
                budget_label(r.method, r.budget),
                r.tally.solutions.to_string(),
                r.tally.steps.to_string(),
                est(&r.first_error_acc, 3),
                num(r.precision, 3),
                num(r.recall, 3),
                est(&r.f1, 3),
                est(&r.rollouts_per_step, 2),
                num(r.tokens_per_step, 1),
            ]);
        }
        s.push_str(&t.to_markdown());
        s.push_str(&format!("\n{}\n\n", goal(rows, p)));
        if let Some((_, f)) = figures.iter().find(|(fp, _)| *fp == p) {
            s.push_str(&format!(
                "![first-error accuracy vs rollouts per labelled step, p = {p}]({f})\n\n"
            ));
        }
    }
    s
}

/// The figure of one error rate: first-error accuracy against rollouts per labelled step.
pub fn figure(rows: &[Row], p: f64, stem: &Path) -> Result<(), BenchError> {
    let points: Vec<CurvePoint> = rows
        .iter()
        .filter(|r| r.error_rate == p)
        .map(|r| CurvePoint {
            series: series(r),
            x_label: budget_label(r.method, r.budget),
            mean_tokens: r.rollouts_per_step.mean,
            accuracy: r.first_error_acc,
            problems: r.tally.questions,
        })
        .collect();
    let plot = stepwise_eval::plot::Curves {
        title: format!("Label quality vs cost, simulated policy, step error rate {p}"),
        x_desc: "rollouts per labelled step (log scale)".into(),
        y_desc: "first-error accuracy (%)".into(),
        points: &points,
    };
    stepwise_eval::plot::write_both(&plot, stem).map_err(|e| BenchError::Tool(e.to_string()))
}

/// `stepwise bench labels`.
pub fn run(a: &Args) -> Result<(), BenchError> {
    for &p in &a.error_rates {
        if !(0.0..=1.0).contains(&p) {
            return Err(BenchError::Options(format!(
                "error rate {p} is not a probability"
            )));
        }
    }
    let tmp = tempfile::tempdir().map_err(io("creating a temporary folder"))?;
    let spec = match &a.store {
        Some(s) => s.clone(),
        None => tmp.path().join("labels.sqlite").display().to_string(),
    };
    let store = stepwise_store::open(&spec).map_err(|e| BenchError::Tool(e.to_string()))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(io("starting the runtime"))?;
    let started = std::time::Instant::now();
    let rows = rt.block_on(measure(a, store.as_ref()))?;
    let secs = started.elapsed().as_secs_f64();
    let mut figures = Vec::new();
    if let Some(out) = &a.out {
        let dir = out.parent().unwrap_or(Path::new("."));
        let stem = out
            .file_stem()
            .map_or("label-quality".into(), |s| s.to_string_lossy().into_owned());
        for &p in &a.error_rates {
            // `p0_1`, not `p0.1`: the figure writer sets the extension.
            let name = format!("{stem}-p{}", p.to_string().replace('.', "_"));
            figure(&rows, p, &dir.join(&name))?;
            figures.push((p, format!("{name}.png")));
        }
        let json = serde_json::to_string_pretty(&rows)
            .map_err(|e| BenchError::Tool(format!("rows as JSON: {e}")))?;
        let path = dir.join(format!("{stem}.json"));
        std::fs::write(&path, json).map_err(io(format!("writing {}", path.display())))?;
    }
    let mut md = markdown(a, &rows, &figures);
    md.push_str(&format!(
        "Measured in {secs:.0} s ({} runs of the job runner; no model calls).\n",
        rows.len()
    ));
    report::publish(&md, a.out.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        a: Args,
    }

    fn args(extra: &[&str]) -> Args {
        let mut argv = vec!["labels"];
        argv.extend_from_slice(extra);
        Cli::parse_from(argv).a
    }

    #[test]
    fn bootstrap_of_identical_questions_is_a_point_and_of_mixed_ones_an_interval() {
        let hit = Tally {
            questions: 1,
            solutions: 1,
            steps: 4,
            fe_hit: 1,
            tp: 2,
            rollouts: 8,
            ..Tally::default()
        };
        let [fe, f1, rps] = bootstrap(&[hit; 10], 200, 1);
        assert_eq!((fe.lo, fe.mean, fe.hi), (1.0, 1.0, 1.0));
        assert_eq!(f1.mean, 1.0);
        assert_eq!(rps.mean, 2.0);
        let miss = Tally {
            fe_hit: 0,
            fp: 2,
            ..hit
        };
        let mixed: Vec<Tally> = (0..40)
            .map(|i| if i % 2 == 0 { hit } else { miss })
            .collect();
        let [fe, ..] = bootstrap(&mixed, 500, 1);
        assert_eq!(fe.mean, 0.5);
        assert!(
            fe.lo < 0.5 && fe.hi > 0.5 && fe.lo > 0.2 && fe.hi < 0.8,
            "{fe:?}"
        );
    }

    #[test]
    fn questions_are_split_over_the_operation_counts() {
        let ps = problems(&args(&[
            "--questions",
            "7",
            "--min-ops",
            "2",
            "--max-ops",
            "4",
        ]))
        .unwrap();
        assert_eq!(ps.len(), 7);
        let ops: Vec<usize> = ps
            .iter()
            .map(|p| {
                stepwise_data::ArithSpec::from_problem(p)
                    .unwrap()
                    .steps
                    .len()
            })
            .collect();
        assert_eq!(ops, vec![2, 2, 2, 3, 3, 4, 4]);
        assert!(problems(&args(&["--min-ops", "5", "--max-ops", "4"])).is_err());
    }

    /// Every method through the runner on a few simulated questions: one row per
    /// (method, budget, rule), rollouts counted, and the goal sentence names mc's row.
    #[test]
    fn every_method_runs_on_the_simulation_and_is_scored_against_truth() {
        let a = args(&[
            "--questions",
            "6",
            "--min-ops",
            "3",
            "--max-ops",
            "4",
            "--error-rates",
            "0.2",
            "--mc-k",
            "8",
            "--adaptive-k",
            "8",
            "--omega-k",
            "4",
            "--grounded-k",
            "2",
            "--bootstrap",
            "50",
        ]);
        let dir = tempfile::tempdir().unwrap();
        let store =
            stepwise_store::open(&dir.path().join("s.sqlite").display().to_string()).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let rows = rt.block_on(measure(&a, store.as_ref())).unwrap();
        let names: Vec<String> = rows.iter().map(series).collect();
        assert_eq!(
            names,
            vec![
                "mc",
                "adaptive-mc",
                "omegaprm",
                "reference",
                "grounded (paper)",
                "grounded (mc-veto)"
            ]
        );
        for r in &rows {
            assert_eq!(r.tally.questions, 6, "{r:?}");
            assert!(r.first_error_acc.mean.is_finite(), "{r:?}");
        }
        // mc: k rollouts from every prefix but the answer step; adaptive-mc: fewer
        let mc = &rows[0];
        let adaptive = &rows[1];
        assert!(adaptive.tally.rollouts < mc.tally.rollouts);
        assert_eq!(mc.tally.steps, adaptive.tally.steps);
        let g = goal(&rows, 0.2);
        assert!(g.starts_with("mc k=8 labels at"), "{g}");
        let md = markdown(&a, &rows, &[]);
        assert!(md.contains("sim-arith(p=0.2"), "{md}");
    }
}
