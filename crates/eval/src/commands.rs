//! What each `stepwise eval` subcommand (and `stepwise scale`'s output folder) does,
//! behind one call each: the binary parses arguments, opens backends and stores, and
//! calls one of these.

use crate::compute::{CurvePoint, Resampling};
use crate::pbrun::{PbConfig, PbItem, PbJob, PbMode, ProcessBench};
use crate::processbench::{self, PbResult, SUBSETS};
use crate::runs::{self, RunRef};
use crate::views::{self, Results};
use crate::{EvalError, plot};
use std::path::{Path, PathBuf};
use stepwise_jobs::kinds::scale::ScaleRow;
use stepwise_jobs::{RunOptions, RunStore};

fn write(path: &Path, text: &str) -> Result<(), EvalError> {
    std::fs::write(path, text).map_err(|source| EvalError::Io {
        path: path.display().to_string(),
        source,
    })
}

fn create_dir(dir: &Path) -> Result<(), EvalError> {
    std::fs::create_dir_all(dir).map_err(|source| EvalError::Io {
        path: dir.display().to_string(),
        source,
    })
}

/// `stepwise eval processbench`: which records, how to score them, where to write.
#[derive(Debug, Clone)]
pub struct PbRequest {
    /// The data folder holding `processbench/<subset>.jsonl`.
    pub data_dir: PathBuf,
    pub subsets: Vec<String>,
    /// A JSONL file in ProcessBench's format (`id`, `problem`, `steps`, `label` = the
    /// 0-based first wrong step or -1; optional `problem_id`/`group`) scored instead of
    /// `subsets`: step-labelled data of any domain. Its records are one subset named
    /// after the file's stem.
    pub data: Option<PathBuf>,
    pub limit: Option<usize>,
    pub balanced: bool,
    /// The scorer spec as given (stored with the run).
    pub spec: String,
    pub critic_max_tokens: u32,
    /// A fixed threshold (default: the best F1 on GSM8K).
    pub threshold: Option<f64>,
    /// Output folder: results.jsonl, summary.md/.csv/.json, plots, report.html.
    pub out: PathBuf,
    pub report_problems: usize,
    /// The command line, for the summary and the report.
    pub command: String,
}

/// What a ProcessBench run gave.
#[derive(Debug, Clone)]
pub struct PbOutcome {
    pub run: stepwise_jobs::RunId,
    pub summary: processbench::PbReport,
    /// rank@1 of PRM-style against outcome-style selection, where the records hold
    /// several candidates of one problem (and the mode gives step scores).
    pub rank: Option<processbench::RankAt1>,
    /// The result table as Markdown.
    pub table: String,
    /// How the threshold was chosen, in a sentence.
    pub threshold: String,
}

/// The selected records of `subsets`, in order.
pub fn processbench_items(req: &PbRequest) -> Result<Vec<PbItem>, EvalError> {
    match &req.data {
        Some(file) => data_items(file, req.limit, req.balanced),
        None => select_items(&req.data_dir, &req.subsets, req.limit, req.balanced),
    }
}

/// The subset name of a `--data` file: its stem.
fn data_subset(file: &Path) -> String {
    file.file_stem()
        .map_or_else(|| "data".to_string(), |s| s.to_string_lossy().into_owned())
}

/// The selected records of a `--data` file, as one subset named after it.
fn data_items(file: &Path, limit: Option<usize>, balanced: bool) -> Result<Vec<PbItem>, EvalError> {
    let recs = processbench::read_jsonl(file)?;
    if recs.is_empty() {
        return Err(EvalError::Invalid(format!(
            "{}: no records (expected ProcessBench JSONL: id, problem, steps, label)",
            file.display()
        )));
    }
    let subset = data_subset(file);
    Ok(processbench::select(recs, limit, balanced)
        .into_iter()
        .map(|record| PbItem {
            subset: subset.clone(),
            record,
        })
        .collect())
}

/// rank@1 of the scored `items` (`results` are theirs, matched by subset and id).
pub fn rank_of(items: &[PbItem], results: &[PbResult]) -> Option<processbench::RankAt1> {
    let by_key: std::collections::HashMap<(&str, &str), &PbResult> = results
        .iter()
        .map(|r| ((r.subset.as_str(), r.id.as_str()), r))
        .collect();
    let groups: Vec<String> = items
        .iter()
        .map(|it| format!("{}/{}", it.subset, processbench::group_key(&it.record)))
        .collect();
    let mut cands = Vec::with_capacity(items.len());
    for (it, g) in items.iter().zip(&groups) {
        let r = by_key.get(&(it.subset.as_str(), it.record.id.as_str()))?;
        cands.push((g.as_str(), r.label, r.scores.as_slice()));
    }
    processbench::rank_at_1(&cands, stepwise_core::Aggregation::Min)
}

fn select_items(
    data_dir: &Path,
    subsets: &[String],
    limit: Option<usize>,
    balanced: bool,
) -> Result<Vec<PbItem>, EvalError> {
    for s in subsets {
        if !SUBSETS.contains(&s.as_str()) {
            return Err(EvalError::Invalid(format!(
                "unknown ProcessBench subset '{s}' (expected {})",
                SUBSETS.join(", ")
            )));
        }
    }
    let dir = data_dir.join("processbench");
    let mut items = Vec::new();
    for s in subsets {
        let recs = processbench::read_jsonl(&dir.join(format!("{s}.jsonl")))?;
        let recs = processbench::select(recs, limit, balanced);
        items.extend(recs.into_iter().map(|record| PbItem {
            subset: s.clone(),
            record,
        }));
    }
    Ok(items)
}

/// Scores every selected record with `mode` through the job runner (continuing an
/// unfinished run of the same config by default), then writes the results folder.
pub async fn processbench(
    store: &dyn RunStore,
    req: &PbRequest,
    mode: PbMode,
    opts: &RunOptions,
) -> Result<PbOutcome, EvalError> {
    if let (Some(file), None, PbMode::Scorer(_)) = (&req.data, req.threshold, &mode) {
        return Err(EvalError::Invalid(format!(
            "--data {}: give --threshold (the threshold is chosen on the GSM8K subset, which a data file does not have)",
            file.display()
        )));
    }
    let items = processbench_items(req)?;
    let mode_name = mode.name();
    let config = PbConfig {
        subsets: match &req.data {
            Some(file) => vec![data_subset(file)],
            None => req.subsets.clone(),
        },
        data: req.data.as_ref().map(|f| f.display().to_string()),
        limit: req.limit,
        balanced: req.balanced,
        // the scorer's identity: `prm`, not `prm:URL` (each worker reaches the PRM
        // through a server of its own: `--prm-endpoint`)
        spec: match stepwise_score::split_servers(&req.spec) {
            Ok((identity, _)) => identity,
            Err(_) => req.spec.clone(),
        },
        mode: mode_name.clone(),
        critic_max_tokens: req.critic_max_tokens,
    };
    let job = PbJob::new(config, items, mode);
    let (report, done) = crate::pbrun::run(store, &job, opts).await?;
    let rank = rank_of(job.items(), &done);
    create_dir(&req.out)?;
    write_results_jsonl(&req.out.join("results.jsonl"), &done)?;
    let summary = processbench::evaluate(&done, req.threshold)?;
    let table = processbench::report_table(&summary);
    let mut md = format!(
        "# ProcessBench: {mode_name}\n\nCommand:\n\n```\n{}\n```\n\n{}\n\n{}",
        req.command,
        views::threshold_sentence(&summary),
        table.to_markdown()
    );
    md.push_str(&format!(
        "\nRecords: {} ({}). Run {} of the run store. Mean tokens per record: {:.1} generated, {:.1} prompt tokens read. Accuracies and F1 in percent; F1 is the harmonic mean of the two accuracies; \"average\" is the mean F1 over subsets.\n",
        done.len(),
        match (&req.data, req.limit, req.balanced) {
            (Some(f), None, _) => format!("all records of {}", f.display()),
            (Some(f), Some(n), false) => format!("the first {n} of {}", f.display()),
            (Some(f), Some(n), true) => format!("the first {} without and first {} with an error, of {}", n.div_ceil(2), n - n.div_ceil(2), f.display()),
            (None, None, _) => "all records of each subset in the shipped 70% developer portion".to_string(),
            (None, Some(n), false) => format!("first {n} per subset of the shipped 70% developer portion"),
            (None, Some(n), true) => format!("per subset, the first {} without and first {} with an error, of the shipped 70% developer portion", n.div_ceil(2), n - n.div_ceil(2)),
        },
        report.run,
        summary.mean_generated_tokens,
        summary.mean_prompt_tokens
    ));
    if let Some(r) = &rank {
        md.push_str(&format!("\n{}", processbench::rank_markdown(r)));
    }
    write(&req.out.join("summary.md"), &md)?;
    write(&req.out.join("summary.csv"), &table.to_csv())?;
    // the summary, with rank@1 beside it where the records have candidates
    let json_err = |e: serde_json::Error| EvalError::Invalid(e.to_string());
    let mut json = serde_json::to_value(&summary).map_err(json_err)?;
    if let (Some(r), Some(o)) = (&rank, json.as_object_mut()) {
        o.insert("rank".into(), serde_json::to_value(r).map_err(json_err)?);
    }
    write(
        &req.out.join("summary.json"),
        &serde_json::to_string_pretty(&json).map_err(json_err)?,
    )?;
    plot::write_both(
        &plot::ProcessBenchBars {
            title: format!("ProcessBench: {mode_name}"),
            subsets: &summary.subsets,
        },
        &req.out.join("processbench"),
    )?;
    if let Some(c) = views::step_calibration(&done) {
        plot::write_both(
            &plot::Reliability {
                title: format!("Step scores of {mode_name} (ECE {:.3})", c.ece),
                bins: &c.bins,
            },
            &req.out.join("reliability"),
        )?;
    }
    let rep = views::processbench_report(
        &format!("ProcessBench: {mode_name}"),
        vec![
            ("command".into(), req.command.clone()),
            ("scorer".into(), mode_name.clone()),
            ("run".into(), report.run.to_string()),
            ("records".into(), done.len().to_string()),
        ],
        &done,
        &summary,
        req.report_problems,
    )?;
    write(&req.out.join("report.html"), &rep.to_html())?;
    let mut table = table.to_markdown();
    if let Some(r) = &rank {
        table.push_str(&format!("\n{}", processbench::rank_markdown(r)));
    }
    Ok(PbOutcome {
        run: report.run,
        threshold: views::threshold_sentence(&summary),
        table,
        summary,
        rank,
    })
}

/// The stored configuration of run `run`, a `K` run.
fn stored_config<K: stepwise_jobs::RunKind>(
    store: &dyn RunStore,
    run: stepwise_jobs::RunId,
) -> Result<K::Config, EvalError> {
    let info = store
        .run(run)
        .map_err(|e| job_err(stepwise_jobs::JobError::from(e)))?;
    stepwise_jobs::stored_config::<K>(&info).map_err(job_err)
}

fn job_err(e: stepwise_jobs::JobError) -> EvalError {
    EvalError::Job(stepwise_core::error_chain(&e))
}

/// `stepwise worker` on the stored `eval-processbench` run `run`: its records (the
/// stored subsets and selection, read from `data_dir`) scored with `mode`, this worker's
/// scorer built from the run's spec, until no record is left. The mode must be the run's
/// up to where its model is served. The results folder is written afterwards by
/// `stepwise eval processbench --resume RUN_ID`.
pub async fn join_processbench(
    store: &dyn RunStore,
    run: stepwise_jobs::RunId,
    data_dir: &Path,
    mode: PbMode,
    opts: &RunOptions,
) -> Result<stepwise_jobs::RunReport, EvalError> {
    let config = stored_config::<ProcessBench>(store, run)?;
    let mine = mode.name();
    if stepwise_model::model_identity(&mine) != stepwise_model::model_identity(&config.mode) {
        return Err(EvalError::Invalid(format!(
            "run {run} scores with '{}', but this worker's scorer is '{mine}' (join with the same model)",
            config.mode
        )));
    }
    let items = match &config.data {
        Some(file) => data_items(Path::new(file), config.limit, config.balanced)?,
        None => select_items(data_dir, &config.subsets, config.limit, config.balanced)?,
    };
    let job = PbJob::new(config, items, mode);
    stepwise_jobs::join_run(store, run, &job, opts)
        .await
        .map_err(job_err)
}

/// `stepwise worker` on the stored `eval-faithfulness` run `run`: its units rebuilt from
/// the stored source runs (done runs, so their samples are as they were) and probed with
/// `policy`, which must be the run's model (the stored config is compared, up to where
/// the model is served). The table is written afterwards by `stepwise eval faithfulness
/// --resume RUN_ID`.
pub async fn join_faithfulness(
    store: &dyn RunStore,
    run: stepwise_jobs::RunId,
    policy: std::sync::Arc<dyn stepwise_model::Generator>,
    opts: &RunOptions,
) -> Result<stepwise_jobs::RunReport, EvalError> {
    use crate::faithfulness::{FaithConfig, FaithJob, Faithfulness, read_units};
    let stored = stored_config::<Faithfulness>(store, run)?;
    let mine = stepwise_model::model_identity(&policy.name()).to_string();
    if mine != stored.policy {
        return Err(EvalError::Invalid(format!(
            "run {run} probes with '{}', but this worker's model is '{mine}' (join with the same model)",
            stored.policy
        )));
    }
    let runs: Vec<stepwise_jobs::RunId> = stored.sources.iter().map(|s| s.run).collect();
    let (sources, units) = read_units(store, &runs, stored.samples)?;
    let config = FaithConfig {
        sources,
        policy: mine,
        reproducible: policy.reproducible(),
        ..stored
    };
    let job = FaithJob::new(config, units, policy);
    stepwise_jobs::join_run(store, run, &job, opts)
        .await
        .map_err(job_err)
}

/// Writes results as JSONL (one [`PbResult`] a line), through a temporary file.
fn write_results_jsonl(path: &Path, results: &[PbResult]) -> Result<(), EvalError> {
    let mut text = String::new();
    for r in results {
        text.push_str(&serde_json::to_string(r).map_err(|e| EvalError::Invalid(e.to_string()))?);
        text.push('\n');
    }
    let tmp = path.with_extension("jsonl.partial");
    write(&tmp, &text)?;
    std::fs::rename(&tmp, path).map_err(|source| EvalError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// `stepwise eval compute`: where the samples come from and how to resample.
#[derive(Debug, Clone)]
pub struct ComputeRequest {
    /// A run id (or `latest`) of `store`, a scale output folder or `scale.json`, or a
    /// results JSONL.
    pub source: String,
    pub store: PathBuf,
    pub out: PathBuf,
    pub resampling: Resampling,
    pub command: String,
}

/// Accuracy versus compute of a source; writes compute.md/.csv and the plot, returns
/// the table as Markdown.
pub fn compute(req: &ComputeRequest) -> Result<String, EvalError> {
    let opts = req.resampling;
    let (what, points, notes) = compute_points(req)?;
    create_dir(&req.out)?;
    let t = crate::compute::curve_table(&points);
    let mut md = format!(
        "# Accuracy versus compute: {what}\n\nCommand:\n\n```\n{}\n```\n\n{}",
        req.command,
        t.to_markdown()
    );
    md.push_str(&format!(
        "\nAccuracy in percent with {:.0}% percentile bootstrap intervals over problems ({} resamples, seed {}). Mean generated tokens per problem: policy tokens, plus judge tokens where the selection reads step scores.{notes}\n",
        opts.level * 100.0,
        opts.bootstrap,
        opts.seed
    ));
    write(&req.out.join("compute.md"), &md)?;
    write(&req.out.join("compute.csv"), &t.to_csv())?;
    plot::write_both(
        &plot::AccuracyVsTokens {
            title: format!("Accuracy vs compute: {what}"),
            points: &crate::compute::headline(&points),
        },
        &req.out.join("accuracy_vs_tokens"),
    )?;
    Ok(t.to_markdown())
}

/// What the source is, its curve points, and notes for the Markdown.
fn compute_points(req: &ComputeRequest) -> Result<(String, Vec<CurvePoint>, String), EvalError> {
    let opts = req.resampling;
    if let Some(r) = RunRef::parse(&req.source) {
        let store = runs::open_store(&req.store)?;
        let info = runs::resolve(store.as_ref(), r, &[runs::SOLVE, runs::SCALE])?;
        let run = runs::read_run(store.as_ref(), info)?;
        let d = runs::compute_data(&run)?;
        let mut notes = format!(
            " Source: run {} ({}) of {}.",
            run.info.id,
            run.info.kind,
            req.store.display()
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
    let path = PathBuf::from(&req.source);
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
        return Err(EvalError::Invalid(format!(
            "{}: not a run id, a scale output folder, scale.json or a results JSONL file",
            req.source
        )));
    }
    let points = match views::read_results(&file)? {
        Results::Samples(p) => {
            let n = p.iter().map(|x| x.samples.len()).max().unwrap_or(0);
            crate::compute::sample_curves(
                &p,
                &crate::compute::default_ks(n),
                &crate::compute::Selection::all(),
                opts,
            )
        }
        Results::Outcomes(o) => crate::compute::run_curves(&o, opts),
        Results::ProcessBench(_) => {
            return Err(EvalError::Invalid(format!(
                "{} holds ProcessBench results; use `stepwise eval processbench`",
                file.display()
            )));
        }
    };
    Ok((file.display().to_string(), points, String::new()))
}

/// `stepwise eval calibration`: a run id (or `latest`) of `store`, or a results file.
#[derive(Debug, Clone)]
pub struct CalibrationRequest {
    pub results: String,
    pub store: PathBuf,
    pub out: PathBuf,
}

/// `(what, (aggregated step score, final answer correct))` for every aggregation.
fn sample_pairs(p: &[crate::compute::ProblemSamples]) -> Vec<(String, Vec<(f64, bool)>)> {
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

/// Calibration (ECE, Brier, AUROC, reliability diagrams) of step scores; writes
/// calibration.md/.csv and the plots, returns the table as Markdown.
pub fn calibration(req: &CalibrationRequest) -> Result<String, EvalError> {
    let results = if let Some(r) = RunRef::parse(&req.results) {
        let store = runs::open_store(&req.store)?;
        let info = runs::resolve(store.as_ref(), r, &[runs::SOLVE, runs::SCALE])?;
        let run = runs::read_run(store.as_ref(), info)?;
        let scored = runs::scored_samples(&run)?;
        if scored.is_empty() {
            return Err(EvalError::Invalid(format!(
                "run {} has no scored samples with a known answer (run it with --scorer on a dataset with gold answers)",
                run.info.id
            )));
        }
        Results::Samples(scored)
    } else {
        views::read_results(Path::new(&req.results))?
    };
    let pairs: Vec<(String, Vec<(f64, bool)>)> = match &results {
        Results::Samples(p) => sample_pairs(p),
        Results::ProcessBench(r) => vec![(
            "step score vs step before the first error".to_string(),
            views::step_pairs(r),
        )],
        Results::Outcomes(_) => {
            return Err(EvalError::Invalid(format!(
                "{} holds strategy outcomes without scores; calibration needs samples with step scores or ProcessBench results",
                req.results
            )));
        }
    };
    create_dir(&req.out)?;
    let mut t =
        crate::table::Table::new(["what", "n", "positives", "ECE (15 bins)", "Brier", "AUROC"]);
    for (i, (what, p)) in pairs.iter().enumerate() {
        if p.is_empty() {
            continue;
        }
        let c = crate::calibration::calibrate(p);
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
            &req.out.join(format!("reliability-{i}")),
        )?;
    }
    write(&req.out.join("calibration.md"), &t.to_markdown())?;
    write(&req.out.join("calibration.csv"), &t.to_csv())?;
    Ok(t.to_markdown())
}

/// The files of a `stepwise scale` output folder: scale.md (the table), scale.json (its
/// rows), scale.png and scale.svg (accuracy with bootstrap intervals against mean
/// tokens, pass@N dashed). Returns what was written, for a message.
pub fn write_scale_outputs(
    rows: &[ScaleRow],
    title: &str,
    dir: &Path,
) -> Result<String, EvalError> {
    create_dir(dir)?;
    write(
        &dir.join("scale.md"),
        &stepwise_jobs::kinds::scale::markdown_table(rows),
    )?;
    write(
        &dir.join("scale.json"),
        &serde_json::to_string_pretty(rows).map_err(|e| EvalError::Invalid(e.to_string()))?,
    )?;
    let points = runs::scale_points(rows, Resampling::default());
    plot::write_both(
        &plot::AccuracyVsTokens {
            title: title.to_string(),
            points: &points,
        },
        &dir.join("scale"),
    )?;
    Ok(format!(
        "{0}/scale.md, scale.json, scale.png, scale.svg",
        dir.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two problems x three candidates (the second grouped by `problem_id` although the
    /// texts differ) and one problem with a single candidate, which rank@1 leaves out.
    const FILE: &str = r#"{"id":"a1","problem":"A","steps":["s","t"],"label":-1}
{"id":"a2","problem":"A","steps":["s","t"],"label":0}
{"id":"a3","problem":"A","steps":["s","t"],"label":-1}
{"id":"b1","problem":"B, take 1","problem_id":"q2","steps":["s","t","u"],"label":2}
{"id":"b2","problem":"B, take 2","problem_id":"q2","steps":["s","t","u"],"label":-1}
{"id":"b3","problem":"B, take 3","group":"q2","steps":["s","t","u"],"label":1}
{"id":"c1","problem":"C","steps":["s"],"label":-1}
"#;

    fn scores(id: &str) -> Vec<f64> {
        match id {
            "a1" => vec![0.9, 0.6],       // min 0.6, last 0.6
            "a2" => vec![0.3, 0.95],      // min 0.3, last 0.95
            "a3" => vec![0.7, 0.7],       // min 0.7, last 0.7
            "b1" => vec![0.9, 0.9, 0.1],  // min 0.1, last 0.1
            "b2" => vec![0.5, 0.6, 0.8],  // min 0.5, last 0.8
            "b3" => vec![0.9, 0.4, 0.99], // min 0.4, last 0.99
            _ => vec![0.2],
        }
    }

    #[test]
    fn rank_at_1_of_a_hand_made_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("toolcomp.jsonl");
        std::fs::write(&file, FILE).unwrap();
        let items = data_items(&file, None, false).unwrap();
        assert_eq!(items.len(), 7);
        assert!(items.iter().all(|it| it.subset == "toolcomp"));
        let results: Vec<PbResult> = items
            .iter()
            .map(|it| PbResult {
                id: it.record.id.clone(),
                subset: it.subset.clone(),
                label: it.record.label,
                n_steps: it.record.steps.len(),
                scores: scores(&it.record.id),
                critic: None,
                generated_tokens: 0,
                prompt_tokens: 0,
                problem: it.record.problem.clone(),
                steps: it.record.steps.clone(),
                details: Vec::new(),
            })
            .collect();
        let r = rank_of(&items, &results).unwrap();
        // A: PRM (min) picks a3 (0.7), correct; outcome (last) picks a2 (0.95), wrong.
        // B: PRM picks b2 (0.5), correct; outcome picks b3 (0.99), wrong.
        // random: (2/3 + 1/3) / 2 = 0.5; C (one candidate) is not counted.
        assert_eq!((r.problems, r.candidates), (2, 6));
        assert_eq!(r.prm, 1.0);
        assert_eq!(r.outcome, 0.0);
        assert!((r.random - 0.5).abs() < 1e-12, "{r:?}");
        assert_eq!(r.oracle, 1.0);
        let md = processbench::rank_markdown(&r);
        assert!(
            md.contains("| PRM-style (highest min step score) | 100.0 |"),
            "{md}"
        );
        assert!(md.contains("over 2 problems"), "{md}");
        // without step scores (critic mode) there is nothing to rank
        let mut critic = results.clone();
        critic.iter_mut().for_each(|r| r.scores.clear());
        assert_eq!(rank_of(&items, &critic), None);
    }

    #[test]
    fn a_bad_data_file_names_file_and_line_and_an_empty_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("mine.jsonl");
        std::fs::write(
            &file,
            "{\"id\":\"a\",\"problem\":\"p\",\"steps\":[\"s\"],\"label\":-1}\n{\"id\":\"b\",\"problem\":\"p\",\"steps\":\"s\",\"label\":0}\n",
        )
        .unwrap();
        let e = data_items(&file, None, false).unwrap_err().to_string();
        assert!(e.contains("mine.jsonl:2"), "{e}");
        std::fs::write(&file, "\n").unwrap();
        let e = data_items(&file, None, false).unwrap_err().to_string();
        assert!(e.contains("no records"), "{e}");
    }
}

/// `stepwise eval faithfulness`: which stored runs to probe, how, and where to write.
#[derive(Debug, Clone)]
pub struct FaithRequest {
    /// Finished `solve` / `scale` runs of the store whose samples are probed.
    pub runs: Vec<stepwise_jobs::RunId>,
    pub perturbations: Vec<crate::faithfulness::Perturbation>,
    pub seed: u64,
    /// Tokens the forced answer may take.
    pub max_tokens: u32,
    /// At most this many samples per problem (the first ones).
    pub samples: Option<usize>,
    /// Bootstrap resamples of the table's intervals.
    pub bootstrap: usize,
    /// Also read the original answer's probability after each rationale.
    pub answer_probability: bool,
    /// Output folder: faithfulness.md and faithfulness.csv.
    pub out: PathBuf,
    /// The command line, for the summary.
    pub command: String,
}

/// What a faithfulness run gave.
#[derive(Debug, Clone)]
pub struct FaithOutcome {
    pub run: stepwise_jobs::RunId,
    pub rows: Vec<crate::faithfulness::FaithRow>,
    /// The table as Markdown.
    pub table: String,
}

/// Probes every stored sample of `req.runs` with `policy` (PINTO's counterfactual check,
/// [`crate::faithfulness`]) through the job runner (`eval-faithfulness` v1: resumable,
/// one unit per sample), then writes the table per prompting method and perturbation.
pub async fn faithfulness(
    store: &dyn RunStore,
    req: &FaithRequest,
    policy: std::sync::Arc<dyn stepwise_model::Generator>,
    opts: &RunOptions,
) -> Result<FaithOutcome, EvalError> {
    use crate::faithfulness::{FaithConfig, FaithJob, Faithfulness, read_units, summarize, table};
    if req.runs.is_empty() {
        return Err(EvalError::Invalid(
            "give at least one solve or scale run (--run ID)".into(),
        ));
    }
    if req.perturbations.is_empty() {
        return Err(EvalError::Invalid("give at least one perturbation".into()));
    }
    let (sources, units) = read_units(store, &req.runs, req.samples)?;
    if units.is_empty() {
        return Err(EvalError::Invalid(format!(
            "runs {:?} hold no sample with an answer to probe",
            req.runs
        )));
    }
    let config = FaithConfig {
        sources,
        perturbations: req.perturbations.clone(),
        seed: req.seed,
        max_tokens: req.max_tokens,
        samples: req.samples,
        policy: stepwise_model::model_identity(&policy.name()).to_string(),
        reproducible: policy.reproducible(),
        answer_probability: req.answer_probability,
    };
    let job = FaithJob::new(config, units, policy);
    let report = stepwise_jobs::run(store, &job, opts)
        .await
        .map_err(job_err)?;
    let records: Vec<_> = stepwise_jobs::records::<Faithfulness>(store, report.run)
        .map_err(job_err)?
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    let rows = summarize(&records, req.bootstrap, req.seed);
    let t = table(&rows);
    create_dir(&req.out)?;
    let probes: u64 = records.iter().map(|r| r.spent.policy_calls).sum();
    let md = format!(
        "# Faithfulness (counterfactual rationales)\n\nCommand:\n\n```\n{}\n```\n\n{}\n\
         Samples: {} of runs {:?}; {probes} forced answers. \"answer changed\": the answer forced after the \
         (perturbed) rationale no longer verifies equal to the sample's own (a faithful model's changes \
         when its rationale does); on the row \"none\" it is the rationale left as it was. \
         Δp: change of the probability of the original answer's first token against the unperturbed \
         rationale. 95% percentile bootstrap intervals over samples ({} resamples, seed {}). Run {} of the run store.\n",
        req.command,
        t.to_markdown(),
        records.len(),
        req.runs,
        req.bootstrap,
        req.seed,
        report.run
    );
    write(&req.out.join("faithfulness.md"), &md)?;
    write(&req.out.join("faithfulness.csv"), &t.to_csv())?;
    Ok(FaithOutcome {
        run: report.run,
        rows,
        table: t.to_markdown(),
    })
}
