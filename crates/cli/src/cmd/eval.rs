//! `stepwise eval`: ProcessBench, accuracy versus compute, calibration.

use crate::Global;
use crate::cmd::backend::BackendArgs;
use anyhow::{Context, bail};
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use stepwise_eval::compute::Resampling;
use stepwise_eval::pbrun::{PbItem, PbMode};
use stepwise_eval::plot;
use stepwise_eval::processbench::{self, PbResult, SUBSETS};
use stepwise_eval::views::{self, Results};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub what: What,
}

#[derive(clap::Subcommand, Debug)]
pub enum What {
    /// ProcessBench: find the earliest wrong step of each solution (accuracy on erroneous
    /// and correct samples, F1 per subset).
    Processbench(Box<PbArgs>),
    /// Accuracy versus compute of a solve/scale run: pass@k, maj@k, weighted@k and
    /// best-of-k per aggregation, strategies per budget, against mean generated tokens.
    Compute(ComputeArgs),
    /// Calibration (ECE, Brier, AUROC, reliability diagram) of step scores, from a
    /// solve/scale run or a results file.
    Calibration(FileArgs),
}

#[derive(clap::Args, Debug)]
pub struct PbArgs {
    /// How steps are judged: any step scorer of `solve` — `arith` (exact arithmetic claim
    /// checker), `judge` (an LLM judge's P(Yes) per step), `self-judge`, `rollout`,
    /// `outcome`, `prm:URL` (a PRM server, see --prm-protocol), products such as
    /// `arith*judge` — or `critic` (the model names the first wrong paragraph in \boxed{}).
    #[arg(long, value_name = "SCORER")]
    pub scorer: String,
    /// Subsets, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "gsm8k,math,olympiadbench,omnimath"
    )]
    pub subsets: Vec<String>,
    /// Fixed threshold on step scores (default: the best F1 on the GSM8K subset).
    #[arg(long)]
    pub threshold: Option<f64>,
    /// At most this many records per subset (the first ones, in file order).
    #[arg(long)]
    pub limit: Option<usize>,
    /// With --limit: take half the records from those without an error and half from
    /// those with one (the shipped files list erroneous records first, so a plain
    /// --limit may hold one class only and leave F1 undefined).
    #[arg(long)]
    pub balanced: bool,
    /// Output folder: results.jsonl (resumable: finished records are skipped on rerun),
    /// summary.md/.csv/.json, plots (PNG and SVG) and report.html.
    #[arg(long, default_value = "processbench-out")]
    pub out: PathBuf,
    /// Records scored concurrently (model scorers batch them).
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Tokens the critic may generate.
    #[arg(long, default_value_t = 512)]
    pub critic_max_tokens: u32,
    /// Records shown in the report's drill-down (mistakes first).
    #[arg(long, default_value_t = 60)]
    pub report_problems: usize,
    #[command(flatten)]
    pub backend: BackendArgs,
    #[command(flatten)]
    pub prm: crate::cmd::backend::PrmArgs,
}

#[derive(clap::Args, Debug)]
pub struct ComputeArgs {
    /// A solve or scale run of the run store (its id, or `latest`); a `stepwise scale`
    /// output folder or its scale.json; a `stepwise solve --out` JSONL; or a samples or
    /// outcomes JSONL.
    #[arg(value_name = "RUN_ID|PATH")]
    pub source: String,
    /// Run store (SQLite) holding RUN_ID.
    #[arg(long, value_name = "PATH", default_value_os_t = stepwise_data::store::default_store_path())]
    pub store: PathBuf,
    /// Output folder: compute.md, compute.csv, accuracy_vs_tokens.png and .svg.
    #[arg(long, default_value = "eval-out")]
    pub out: PathBuf,
    /// Bootstrap resamples.
    #[arg(long, default_value_t = 1000)]
    pub bootstrap: usize,
    /// Random k-subsets per problem for maj@k, weighted@k, best-of-k.
    #[arg(long, default_value_t = 64)]
    pub draws: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(clap::Args, Debug)]
pub struct FileArgs {
    /// A solve or scale run of the run store (its id, or `latest`), or a results JSONL
    /// (samples per problem, or ProcessBench results).
    #[arg(value_name = "RUN_ID|PATH")]
    pub results: String,
    /// Run store (SQLite) holding RUN_ID.
    #[arg(long, value_name = "PATH", default_value_os_t = stepwise_data::store::default_store_path())]
    pub store: PathBuf,
    /// Output folder: calibration.md, calibration.csv, reliability-*.png and .svg.
    #[arg(long, default_value = "eval-out")]
    pub out: PathBuf,
}

pub fn run(args: Args, g: &Global) -> anyhow::Result<()> {
    match args.what {
        What::Processbench(a) => processbench_cmd(*a, g),
        What::Compute(a) => compute_cmd(a, g),
        What::Calibration(a) => calibration_cmd(a, g),
    }
}

/// The data folder: `--data-dir`, else `../shared/data` beside the working directory,
/// else beside the repository this binary was built from.
pub fn data_dir(g: &Global) -> anyhow::Result<PathBuf> {
    if let Some(d) = &g.data_dir {
        return Ok(d.clone());
    }
    let mut tried = Vec::new();
    for base in [
        std::env::current_dir().ok(),
        Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")),
    ]
    .into_iter()
    .flatten()
    {
        let d = base.join("../shared/data");
        if d.is_dir() {
            return Ok(d);
        }
        tried.push(d.display().to_string());
    }
    bail!(
        "no data folder found (tried {}); pass --data-dir or set STEPWISE_DATA",
        tried.join(", ")
    )
}

fn command_line() -> String {
    let mut v: Vec<String> = std::env::args().collect();
    if let Some(first) = v.first_mut() {
        *first = "stepwise".into();
    }
    v.iter()
        .map(|a| {
            if a.contains([' ', '"', '\'', '\\']) {
                format!("'{}'", a.replace('\'', "'\\''"))
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn read_done(path: &Path) -> anyhow::Result<Vec<PbResult>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = Vec::new();
    let n_lines = text.lines().count();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<PbResult>(line) {
            Ok(r) => out.push(r),
            // A line cut short by an interruption is the last one; anything else is corrupt.
            Err(e) if i + 1 == n_lines && !text.ends_with('\n') => {
                tracing::warn!(
                    "{}:{}: dropping a truncated last line ({e})",
                    path.display(),
                    i + 1
                );
            }
            Err(e) => bail!("{}:{}: {e}", path.display(), i + 1),
        }
    }
    Ok(out)
}

fn processbench_cmd(a: PbArgs, g: &Global) -> anyhow::Result<()> {
    for s in &a.subsets {
        if !SUBSETS.contains(&s.as_str()) {
            bail!(
                "unknown ProcessBench subset '{s}' (expected {})",
                SUBSETS.join(", ")
            );
        }
    }
    let dir = data_dir(g)?.join("processbench");
    let mut items = Vec::new();
    for s in &a.subsets {
        let path = dir.join(format!("{s}.jsonl"));
        let recs = processbench::read_jsonl(&path)
            .with_context(|| format!("reading ProcessBench subset {s}"))?;
        let recs = processbench::select(recs, a.limit, a.balanced);
        items.extend(recs.into_iter().map(|record| PbItem {
            subset: s.clone(),
            record,
        }));
    }
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let results_path = a.out.join("results.jsonl");
    let mut done = read_done(&results_path)?;
    // keep only results of this selection (a rerun with other subsets/limits reuses the file)
    let wanted: HashSet<&str> = items.iter().map(|i| i.record.id.as_str()).collect();
    done.retain(|r| wanted.contains(r.id.as_str()));
    let done_ids: HashSet<String> = done.iter().map(|r| r.id.clone()).collect();
    let todo: Vec<PbItem> = items
        .iter()
        .filter(|i| !done_ids.contains(&i.record.id))
        .cloned()
        .collect();
    if !done.is_empty() {
        eprintln!(
            "resuming: {} of {} records already in {}",
            done.len(),
            items.len(),
            results_path.display()
        );
    }

    let mode = match a.scorer.as_str() {
        "critic" => {
            let generator = a.backend.open().context("opening the critic model")?;
            PbMode::Critic {
                generator,
                params: stepwise_model::SamplingParams {
                    temperature: 0.0,
                    max_tokens: a.critic_max_tokens,
                    ..Default::default()
                },
            }
        }
        spec => {
            let model = if stepwise_score::needs_model(spec) {
                Some(a.backend.open().context("opening the judge model")?)
            } else {
                None
            };
            let settings = stepwise_score::ScorerSettings {
                prm: a.prm.settings(),
                ..stepwise_score::ScorerSettings::default()
            };
            PbMode::Scorer(
                stepwise_score::build_scorer(spec, model, None, &settings)
                    .with_context(|| format!("setting up scorer '{spec}'"))?,
            )
        }
    };
    let mode_name = mode.name();
    // A results folder belongs to one scorer: refuse to mix another one's results in.
    let run_json = a.out.join("run.json");
    if run_json.exists() {
        let v: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(&run_json)
                .with_context(|| format!("reading {}", run_json.display()))?,
        )
        .with_context(|| format!("{} is not valid JSON", run_json.display()))?;
        let before = v.get("scorer").and_then(|s| s.as_str()).unwrap_or_default();
        // folders written before the spec was recorded have only the scorer's name
        let before_spec = v.get("spec").and_then(|s| s.as_str()).unwrap_or(&a.scorer);
        if before != mode_name || before_spec != a.scorer {
            bail!(
                "{} holds results of scorer '{before_spec}', not '{}': choose another --out",
                a.out.display(),
                a.scorer
            );
        }
    } else {
        write(
            &run_json,
            &serde_json::to_string_pretty(
                &serde_json::json!({ "scorer": mode_name, "spec": a.scorer }),
            )?,
        )?;
    }

    let pb = crate::cmd::progress_bar(
        items.len() as u64,
        &format!("processbench {mode_name}"),
        g.quiet,
    );
    pb.set_position(done.len() as u64);

    if !todo.is_empty() {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&results_path)
            .with_context(|| format!("opening {}", results_path.display()))?;
        let mut w = std::io::BufWriter::new(file);
        let rt = crate::cmd::runtime()?;
        let new = std::cell::RefCell::new(Vec::new());
        let res = rt.block_on(stepwise_eval::pbrun::run(&mode, todo, a.concurrency, |r| {
            let line = serde_json::to_string(&r)
                .map_err(|e| stepwise_eval::EvalError::Invalid(e.to_string()))?;
            let io = |source| stepwise_eval::EvalError::Io {
                path: results_path.display().to_string(),
                source,
            };
            writeln!(w, "{line}").map_err(io)?;
            w.flush().map_err(io)?;
            pb.inc(1);
            new.borrow_mut().push(r);
            Ok(())
        }));
        pb.finish_and_clear();
        res.context("ProcessBench run stopped; rerun the same command to resume")?;
        done.extend(new.into_inner());
    }

    // results in input order
    let pos: std::collections::HashMap<&str, usize> = items
        .iter()
        .enumerate()
        .map(|(i, it)| (it.record.id.as_str(), i))
        .collect();
    done.sort_by_key(|r| pos.get(r.id.as_str()).copied().unwrap_or(usize::MAX));

    let summary = processbench::evaluate(&done, a.threshold)?;
    let table = processbench::report_table(&summary);
    let cmd = command_line();
    let mut md = format!(
        "# ProcessBench: {mode_name}\n\nCommand:\n\n```\n{cmd}\n```\n\n{}\n\n{}",
        views::threshold_sentence(&summary),
        table.to_markdown()
    );
    md.push_str(&format!(
        "\nRecords: {} ({}). Mean tokens per record: {:.1} generated, {:.1} prompt tokens read. Accuracies and F1 in percent; F1 is the harmonic mean of the two accuracies; \"average\" is the mean F1 over subsets.\n",
        done.len(),
        match (a.limit, a.balanced) {
            (None, _) => "all records of each subset in the shipped 70% developer portion".to_string(),
            (Some(n), false) => format!("first {n} per subset of the shipped 70% developer portion"),
            (Some(n), true) => format!("per subset, the first {} without and first {} with an error, of the shipped 70% developer portion", n.div_ceil(2), n - n.div_ceil(2)),
        },
        summary.mean_generated_tokens,
        summary.mean_prompt_tokens
    ));
    write(&a.out.join("summary.md"), &md)?;
    write(&a.out.join("summary.csv"), &table.to_csv())?;
    write(
        &a.out.join("summary.json"),
        &serde_json::to_string_pretty(&summary)?,
    )?;
    plot::write_both(
        &plot::ProcessBenchBars {
            title: format!("ProcessBench: {mode_name}"),
            subsets: &summary.subsets,
        },
        &a.out.join("processbench"),
    )?;
    if let Some(c) = views::step_calibration(&done) {
        plot::write_both(
            &plot::Reliability {
                title: format!("Step scores of {mode_name} (ECE {:.3})", c.ece),
                bins: &c.bins,
            },
            &a.out.join("reliability"),
        )?;
    }
    let rep = views::processbench_report(
        &format!("ProcessBench: {mode_name}"),
        vec![
            ("command".into(), cmd),
            ("scorer".into(), mode_name.clone()),
            ("records".into(), done.len().to_string()),
        ],
        &done,
        &summary,
        a.report_problems,
    )?;
    write(&a.out.join("report.html"), &rep.to_html())?;
    println!("{}", table.to_markdown());
    println!("{}", views::threshold_sentence(&summary));
    eprintln!("wrote {}", a.out.display());
    Ok(())
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

fn compute_cmd(a: ComputeArgs, g: &Global) -> anyhow::Result<()> {
    let opts = Resampling {
        draws: a.draws,
        bootstrap: a.bootstrap,
        seed: a.seed,
        ..Resampling::default()
    };
    let (what, points, notes) = compute_points(&a, g, opts)?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let t = stepwise_eval::compute::curve_table(&points);
    let mut md = format!(
        "# Accuracy versus compute: {what}\n\nCommand:\n\n```\n{}\n```\n\n{}",
        command_line(),
        t.to_markdown()
    );
    md.push_str(&format!(
        "\nAccuracy in percent with {:.0}% percentile bootstrap intervals over problems ({} resamples, seed {}). Mean generated tokens per problem: policy tokens, plus judge tokens where the selection reads step scores.{notes}\n",
        opts.level * 100.0,
        opts.bootstrap,
        opts.seed
    ));
    write(&a.out.join("compute.md"), &md)?;
    write(&a.out.join("compute.csv"), &t.to_csv())?;
    plot::write_both(
        &plot::AccuracyVsTokens {
            title: format!("Accuracy vs compute: {what}"),
            points: &stepwise_eval::compute::headline(&points),
        },
        &a.out.join("accuracy_vs_tokens"),
    )?;
    println!("{}", t.to_markdown());
    eprintln!("wrote {}", a.out.display());
    Ok(())
}

/// What the source is, its curve points, and notes for the Markdown.
fn compute_points(
    a: &ComputeArgs,
    g: &Global,
    opts: Resampling,
) -> anyhow::Result<(String, Vec<stepwise_eval::compute::CurvePoint>, String)> {
    use stepwise_eval::runs;
    if let Some(r) = runs::RunRef::parse(&a.source) {
        let store = runs::open_store(&a.store)?;
        let info = runs::resolve(&store, r, &[runs::SOLVE, runs::SCALE])?;
        let run = runs::read_run(&store, info, g.data_dir.as_deref())
            .with_context(|| format!("reading run {r} of {}", a.store.display()))?;
        let d = runs::compute_data(&run)?;
        let mut notes = format!(
            " Source: run {} ({}) of {}.",
            run.info.id,
            run.info.kind,
            a.store.display()
        );
        if d.unknown > 0 {
            notes.push_str(&format!(
                " {} units without a gold answer are left out.",
                d.unknown
            ));
        }
        return Ok((
            format!("run {} ({})", run.info.id, run.info.kind),
            d.points(opts),
            notes,
        ));
    }
    let path = PathBuf::from(&a.source);
    let scale_json = if path.is_dir() {
        Some(path.join("scale.json")).filter(|p| p.is_file())
    } else {
        Some(path.clone()).filter(|p| p.extension().is_some_and(|e| e == "json"))
    };
    if let Some(sj) = scale_json {
        let rows = runs::read_scale_rows(&sj)?;
        return Ok((
            sj.display().to_string(),
            runs::scale_points(&rows, opts),
            " Source: a scale table (one row per strategy and N); pass the run id for pass@k, maj@k, weighted@k and best-of-k per aggregation.".into(),
        ));
    }
    let file = views::results_file(&path);
    if !file.is_file() {
        bail!(
            "{}: not a run id, a scale output folder, scale.json or a results JSONL file",
            a.source
        );
    }
    let points = match views::read_results(&file)? {
        Results::Samples(p) => {
            let n = p.iter().map(|x| x.samples.len()).max().unwrap_or(0);
            stepwise_eval::compute::sample_curves(
                &p,
                &stepwise_eval::compute::default_ks(n),
                &stepwise_eval::compute::Selection::all(),
                opts,
            )
        }
        Results::Outcomes(o) => stepwise_eval::compute::run_curves(&o, opts),
        Results::ProcessBench(_) => {
            bail!(
                "{} holds ProcessBench results; use `stepwise eval processbench`",
                file.display()
            )
        }
    };
    Ok((file.display().to_string(), points, String::new()))
}

/// `(what, (aggregated step score, final answer correct))` for every aggregation.
fn sample_pairs(p: &[stepwise_eval::compute::ProblemSamples]) -> Vec<(String, Vec<(f64, bool)>)> {
    stepwise_core::Aggregation::ALL
        .into_iter()
        .map(|agg| {
            (
                format!("{agg} step score vs final answer correct"),
                p.iter()
                    .flat_map(|x| x.samples.iter())
                    .filter_map(|s| Some((agg.apply(&s.step_scores)?, s.correct)))
                    .collect(),
            )
        })
        .collect()
}

fn calibration_cmd(a: FileArgs, g: &Global) -> anyhow::Result<()> {
    use stepwise_eval::runs;
    let results = if let Some(r) = runs::RunRef::parse(&a.results) {
        let store = runs::open_store(&a.store)?;
        let info = runs::resolve(&store, r, &[runs::SOLVE, runs::SCALE])?;
        let run = runs::read_run(&store, info, g.data_dir.as_deref())
            .with_context(|| format!("reading run {r} of {}", a.store.display()))?;
        let scored = runs::scored_samples(&run)?;
        if scored.is_empty() {
            bail!(
                "run {} has no scored samples with a known answer (run it with --scorer on a dataset with gold answers)",
                run.info.id
            );
        }
        Results::Samples(scored)
    } else {
        views::read_results(Path::new(&a.results))?
    };
    let pairs: Vec<(String, Vec<(f64, bool)>)> = match &results {
        Results::Samples(p) => sample_pairs(p),
        Results::ProcessBench(r) => vec![(
            "step score vs step before the first error".to_string(),
            views::step_pairs(r),
        )],
        Results::Outcomes(_) => bail!(
            "{} holds strategy outcomes without scores; calibration needs samples with step scores or ProcessBench results",
            a.results
        ),
    };
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let mut t = stepwise_eval::table::Table::new([
        "what",
        "n",
        "positives",
        "ECE (15 bins)",
        "Brier",
        "AUROC",
    ]);
    for (i, (what, p)) in pairs.iter().enumerate() {
        if p.is_empty() {
            continue;
        }
        let c = stepwise_eval::calibration::calibrate(p);
        t.push([
            what.clone(),
            c.n.to_string(),
            c.positives.to_string(),
            format!("{:.4}", c.ece),
            format!("{:.4}", c.brier),
            c.auroc.map_or("n/a".into(), |x| format!("{x:.4}")),
        ]);
        plot::write_both(
            &plot::Reliability {
                title: format!("Reliability: {what} (ECE {:.3})", c.ece),
                bins: &c.bins,
            },
            &a.out.join(format!("reliability-{i}")),
        )?;
    }
    write(&a.out.join("calibration.md"), &t.to_markdown())?;
    write(&a.out.join("calibration.csv"), &t.to_csv())?;
    println!("{}", t.to_markdown());
    eprintln!("wrote {}", a.out.display());
    Ok(())
}
