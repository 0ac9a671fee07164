//! Reports and accuracy versus compute of stored runs, made through the real code paths:
//! a `scale` and a `solve` run made by their jobs (`ScaleJob`, `SolveJob`) through the
//! job runner, as `stepwise scale` and `stepwise solve` make them, and an `annotate`
//! job (`run_job`), each with a scripted model.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use stepwise_core::{Aggregation, Problem};
use stepwise_eval::EvalError;
use stepwise_eval::compute::Resampling;
use stepwise_eval::runreport::run_report;
use stepwise_eval::runs::{self, RunContent, RunRef};
use stepwise_jobs::kinds::scale::{ScaleConfig, ScaleJobConfig, ScaleStrategy, summarize};
use stepwise_jobs::kinds::solve::{SearchSettings, SolveConfig};
use stepwise_jobs::{RunOptions, RunStore, Stop};
use stepwise_model::scripted::ScriptedGenerator;
use stepwise_search::jobs::{Backends, ScaleJob, SolveJob};
use stepwise_store::SqliteStore;
use stepwise_testkit::chromium;

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// A JSONL dataset of four "3 + 4" problems (one without gold answer in `with_unknown`).
fn dataset(dir: &Path) -> PathBuf {
    let path = dir.join("problems.jsonl");
    let mut text = String::new();
    for i in 0..4 {
        text.push_str(&format!(
            "{{\"id\": \"p{i}\", \"question\": \"Problem {i}: what is 3 + 4? <b>\", \"answer\": \"7\"}}\n"
        ));
    }
    std::fs::write(&path, text).unwrap();
    path
}

/// Sample i is right ("3 + 4 = 7") when i % 3 == 2, else a wrong claim 3 + 4 = 8 + (i % 2).
fn backends() -> Backends {
    let g = Arc::new(ScriptedGenerator::new(|_, i| {
        let a = if i % 3 == 2 { 7 } else { 8 + (i % 2) };
        format!("3 + 4 = {a}\n\nThe answer is {a}.")
    }));
    Backends {
        policy: g,
        judge: None,
        prm: Default::default(),
    }
}

fn settings() -> SearchSettings {
    SearchSettings {
        scorer: Some("arith".into()),
        aggregation: Aggregation::Min,
        ..SearchSettings::default()
    }
}

fn load(data: &Path) -> Vec<Problem> {
    stepwise_data::load_spec(&data.display().to_string(), None, None).unwrap()
}

fn no_stop() -> RunOptions {
    RunOptions {
        concurrency: 2,
        stop: Stop::Never,
        ..RunOptions::default()
    }
}

/// A scale run made by the scale job; returns (run id, config).
fn scale_run(store: &dyn RunStore, data: &Path) -> (i64, ScaleConfig) {
    let problems = load(data);
    let config = ScaleConfig {
        strategies: vec![
            ScaleStrategy::Majority,
            ScaleStrategy::Bon,
            ScaleStrategy::Weighted,
            ScaleStrategy::Beam,
        ],
        ns: vec![1, 2, 4],
        expansions: 2,
        max_steps: 3,
    };
    let job_config = ScaleJobConfig {
        dataset: data.display().to_string(),
        limit: None,
        scale: config.clone(),
        policy: "scripted".into(),
        reproducible: true,
        search: settings(),
    };
    let job = ScaleJob::new(job_config, problems, &backends()).unwrap();
    let summary = block_on(stepwise_search::jobs::scale(store, &job, &no_stop())).unwrap();
    (summary.run, config)
}

fn opts() -> Resampling {
    Resampling {
        bootstrap: 200,
        draws: 16,
        ..Resampling::default()
    }
}

#[test]
fn scale_run_report_and_compute() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path());
    let store_path = dir.path().join("runs.sqlite");
    let store = SqliteStore::open(&store_path).unwrap();
    let (id, config) = scale_run(&store, &data);
    drop(store);

    let run = runs::load_run(&store_path, RunRef::Id(id)).unwrap();
    assert_eq!(run.problems.len(), 4);
    let RunContent::Scale { units, .. } = &run.content else {
        panic!("not a scale run")
    };
    // the same table `stepwise scale` prints
    let rows = summarize(&config, &run.problems, units, &Default::default());

    // accuracy versus compute from the stored units
    let d = runs::compute_data(&run).unwrap();
    assert_eq!(d.samples.len(), 4);
    assert_eq!(d.ks, vec![1, 2, 4]);
    assert_eq!(d.unknown, 0);
    let pts = d.points(opts());
    let get = |series: &str, x: &str| {
        pts.iter()
            .find(|p| p.series == series && p.x_label == x)
            .unwrap_or_else(|| panic!("no point {series} {x}"))
    };
    let row = |s: &str, n: usize| rows.iter().find(|r| r.strategy == s && r.n == n).unwrap();
    // samples 0..4 answer 8, 9, 7, 8: one right of four
    assert!((get("pass@k", "k=1").accuracy.mean - 0.25).abs() < 1e-12);
    // pass@k at k = n is scale's pass@N; maj@k and best-of-k at k = n use every sample,
    // as scale's majority and bon at N = n do
    assert_eq!(
        get("pass@k", "k=4").accuracy.mean,
        row("pass@N", 4).accuracy()
    );
    assert_eq!(
        get("maj@k", "k=4").accuracy.mean,
        row("majority", 4).accuracy()
    );
    assert_eq!(
        get("best-of-k (min)", "k=4").accuracy.mean,
        row("bon", 4).accuracy()
    );
    assert_eq!(get("best-of-k (min)", "k=4").accuracy.mean, 1.0);
    assert_eq!(get("maj@k", "k=4").accuracy.mean, 0.0);
    // tokens: policy tokens of k samples for maj@k and pass@k (9 words each), the
    // judge's as well for scored selections (the arith checker generates none)
    assert_eq!(get("maj@k", "k=2").mean_tokens, 18.0);
    assert_eq!(
        get("maj@k", "k=4").mean_tokens,
        row("majority", 4).mean_tokens
    );
    // tree searches: one point per N
    for n in [1, 2, 4] {
        let p = get("beam", &format!("n={n}"));
        assert_eq!(p.problems, 4);
        assert_eq!(p.accuracy.mean, row("beam", n).accuracy());
        assert_eq!(p.mean_tokens, row("beam", n).mean_tokens);
    }
    assert!(get("pass@k", "k=4").accuracy.lo <= get("pass@k", "k=4").accuracy.mean);

    // the same rows, read back from scale.json as `stepwise scale` writes it
    let sj = dir.path().join("scale.json");
    std::fs::write(&sj, serde_json::to_string_pretty(&rows).unwrap()).unwrap();
    let back = runs::read_scale_rows(&sj).unwrap();
    assert_eq!(back, rows);
    let rp = runs::scale_points(&back, opts());
    assert_eq!(rp.len(), rows.len());
    assert!(
        rp.iter()
            .any(|p| p.series == "pass@N" && p.x_label == "N=4")
    );

    // the report: tables, plots, drill-down with coloured step scores
    let rep = run_report(&run, None, opts(), 10).unwrap();
    let html = rep.to_html();
    assert!(html.contains(&format!("stepwise report: run {id} (scale)")));
    assert!(html.contains("Strategies at each budget"));
    assert!(html.contains("<td>pass@N</td>"));
    assert!(html.contains("<td>best-of-k (min)</td>"));
    assert!(html.matches("<table>").count() >= 3, "tables");
    assert!(
        html.matches("<figure class=\"plot\"><svg").count() >= 3,
        "plots"
    );
    assert!(html.contains("pass@N (ceiling)"));
    assert!(html.contains("accuracy (%)"));
    assert_eq!(html.matches("<details class=\"problem\"").count(), 4);
    // the question is escaped; a wrong claim is red, a right one green
    assert!(html.contains("Problem 0: what is 3 + 4? &lt;b&gt;"));
    assert!(html.contains("style=\"background:hsl(0,70%,85%)\"><span class=\"idx\">0</span><span class=\"score\">0.00</span><span class=\"text\">3 + 4 = 8</span>"));
    assert!(html.contains("style=\"background:hsl(120,70%,85%)\"><span class=\"idx\">0</span><span class=\"score\">1.00</span><span class=\"text\">3 + 4 = 7</span>"));
    assert!(html.contains("beam N=4: chosen"));
    assert!(html.contains("1/4 samples correct"));

    // `latest` is this run
    let again = runs::load_run(&store_path, RunRef::Latest).unwrap();
    assert_eq!(again.info.id, id);
}

#[test]
fn unknown_run_and_missing_store_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path());
    let store_path = dir.path().join("runs.sqlite");
    let missing = dir.path().join("nope.sqlite");
    let e = runs::load_run(&missing, RunRef::Id(1)).unwrap_err();
    assert!(matches!(e, EvalError::NoStore { .. }), "{e}");
    assert!(
        e.to_string().contains(&missing.display().to_string()),
        "{e}"
    );
    assert!(!missing.exists(), "reading must not create a store");

    let store = SqliteStore::open(&store_path).unwrap();
    let e = runs::load_run(&store_path, RunRef::Latest).unwrap_err();
    assert!(e.to_string().contains("no runs"), "{e}");
    let (id, _) = scale_run(&store, &data);
    let e = runs::load_run(&store_path, RunRef::Id(id + 41)).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, EvalError::UnknownRun { .. }), "{msg}");
    assert!(msg.contains(&format!("run {}", id + 41)), "{msg}");
    assert!(msg.contains(&store_path.display().to_string()), "{msg}");
    assert!(msg.contains(&format!("{id} (scale)")), "{msg}");

    // the run keeps its problems: it reads without the dataset file
    std::fs::remove_file(&data).unwrap();
    let run = runs::load_run(&store_path, RunRef::Id(id)).unwrap();
    assert_eq!(run.problems.len(), 4);
}

#[test]
fn solve_run_report() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path());
    let problems = load(&data);
    let store_path = dir.path().join("runs.sqlite");
    let store = SqliteStore::open(&store_path).unwrap();
    let config = SolveConfig {
        dataset: data.display().to_string(),
        limit: None,
        strategy: ScaleStrategy::Weighted,
        n: 4,
        budget: None,
        policy: "scripted".into(),
        reproducible: true,
        search: settings(),
    };
    let job = SolveJob::new(config, problems, &backends()).unwrap();
    let id = block_on(stepwise_search::jobs::solve(&store, &job, &no_stop(), None))
        .unwrap()
        .run;
    drop(store);
    let run = runs::load_run(&store_path, RunRef::Id(id)).unwrap();
    let d = runs::compute_data(&run).unwrap();
    assert_eq!(d.outcomes.len(), 4);
    // weighted by min score: the right answer (score 1) beats the wrong ones (score 0)
    assert!(d.outcomes.iter().all(|o| o.correct));
    assert_eq!(d.samples.len(), 4, "a sampling strategy gives per-k curves");
    let pts = d.points(opts());
    let w = pts
        .iter()
        .find(|p| p.series == "weighted(n=4)" && p.x_label == "unlimited")
        .unwrap();
    assert_eq!(w.accuracy.mean, 1.0);
    assert!(
        pts.iter()
            .any(|p| p.series == "weighted@k (min)" && p.x_label == "k=4")
    );

    let html = run_report(&run, Some("solve <run>"), opts(), 2)
        .unwrap()
        .to_html();
    assert!(html.contains("<title>solve &lt;run&gt;</title>"));
    assert!(html.contains("<td>weighted(n=4)</td>"));
    assert!(html.contains("<figure class=\"plot\"><svg"));
    assert!(html.contains("sample 2 (chosen)"));
    assert_eq!(html.matches("<details class=\"problem\"").count(), 2);
    assert!(html.contains("answer 7 ✓ · 1/4 samples correct"));
    assert!(html.contains("Calibration of the min step score"));
}

#[test]
fn annotate_run_report() {
    use stepwise_annotate::run::{AnnotateConfig, Job, PolicySource, run_job};
    let dir = tempfile::tempdir().unwrap();
    let store_path = dir.path().join("runs.sqlite");
    let dataset = "arith:ops=3,n=3,seed=5,kind=word";
    let mut cfg = AnnotateConfig {
        dataset: dataset.into(),
        samples: 2,
        methods: vec![stepwise_annotate::Method::Mc],
        ..AnnotateConfig::default()
    };
    cfg.mc.k = 3;
    let job = Job {
        config: cfg,
        store: store_path.display().to_string(),
        resume: None,
        data_dir: None,
        run: no_stop(),
        out: None,
        eval_against_truth: false,
        truth_out: None,
        stored_only: false,
    };
    let out = block_on(run_job(
        &job,
        PolicySource::Scripted {
            delay: std::time::Duration::ZERO,
        },
    ))
    .unwrap();
    let run = runs::load_run(&store_path, RunRef::Id(out.run)).unwrap();
    assert_eq!(run.problems.len(), 3);
    assert!(runs::compute_data(&run).is_err(), "labels are not answers");
    let html = run_report(&run, None, opts(), 10).unwrap().to_html();
    assert!(html.contains("(annotate)"));
    assert!(html.contains("Step labels per method"));
    assert!(html.contains("<td>mc</td>"));
    assert_eq!(html.matches("<details class=\"problem\"").count(), 3);
    assert!(html.contains("mc · solution 0"));
    // labels are coloured like scores
    assert!(html.contains("<span class=\"score\">"));
    assert!(html.contains("hsl("));
}

#[test]
fn run_report_renders_in_headless_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path());
    let store_path = dir.path().join("runs.sqlite");
    let store = SqliteStore::open(&store_path).unwrap();
    let (id, _) = scale_run(&store, &data);
    let run = runs::load_run(&store_path, RunRef::Id(id)).unwrap();
    let page = dir.path().join("run.html");
    std::fs::write(&page, run_report(&run, None, opts(), 10).unwrap().to_html()).unwrap();
    if !chromium::available("run_report_renders_in_headless_chromium") {
        return;
    }
    let dom = chromium::dump_dom(
        &format!("file://{}", page.canonicalize().unwrap().display()),
        None,
    );
    assert!(
        dom.contains("<td>pass@N</td>"),
        "no scale table in the rendered DOM"
    );
    assert!(
        dom.matches("<svg").count() >= 3,
        "expected the plots as inline SVG"
    );
    assert!(dom.contains("Accuracy vs tokens (4 problems)"));
    assert_eq!(dom.matches("class=\"problem\"").count(), 4, "drill-down");
}
