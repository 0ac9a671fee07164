//! Every selection rule and pair rule on a store written by a real `scale` job with a
//! scripted model, compared with expected files (`tests/expected/`; regenerate with
//! `STEPWISE_UPDATE_EXPECTED=1`), and the exported files checked by Python `datasets`
//! and TRL's format functions (`scripts/check_trl.py`).

mod common;

use common::{block_on, opts};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use stepwise_build::{BuildConfig, BuildSpec, Dedup, Filters, SftFormat, build};
use stepwise_core::{Aggregation, Problem};
use stepwise_jobs::kinds::scale::{ScaleConfig, ScaleJobConfig, ScaleStrategy};
use stepwise_jobs::kinds::solve::SearchSettings;
use stepwise_model::scripted::ScriptedGenerator;
use stepwise_search::jobs::{Backends, ScaleJob};
use stepwise_store::SqliteStore;

/// Two `arith` problems: (3 + 4) * 2 = 14.
fn problems() -> Vec<Problem> {
    (0..2)
        .map(|i| {
            let mut p = Problem::new(format!("p{i}"), "What is (3 + 4) * 2?")
                .with_gold("14".to_string());
            p.metadata.insert(
                "arith".into(),
                serde_json::json!({"kind": "chain", "digits": 1, "start": 3, "answer": 14, "steps": [
                    {"op": "add", "operand": 4, "expr": "3 + 4", "value": 7},
                    {"op": "mul", "operand": 2, "expr": "7 * 2", "value": 14}]}),
            );
            p
        })
        .collect()
}

/// Fresh answers cycle through two right ones (one wordier) and two wrong ones (wrong at
/// step 0, at step 1); continuations of a prefix finish it correctly.
fn script(req: &stepwise_model::GenerateRequest, i: usize) -> String {
    let prefix = &req.assistant_prefix;
    if prefix.ends_with("7 * 2 = 14\n\n") {
        return "The answer is 14.".into();
    }
    if prefix.ends_with("3 + 4 = 7\n\n") {
        return "7 * 2 = 14\n\nThe answer is 14.".into();
    }
    match i % 4 {
        0 => "3 + 4 = 7\n\n7 * 2 = 14\n\nThe answer is 14.",
        1 => "First, 3 + 4 = 7\n\nThen 7 * 2 = 14, since doubling seven gives fourteen\n\nThe answer is 14.",
        2 => "3 + 4 = 8\n\n8 * 2 = 16\n\nThe answer is 16.",
        _ => "3 + 4 = 7\n\n7 * 2 = 15\n\nThe answer is 15.",
    }
    .into()
}

fn scale_store(dir: &Path) -> (SqliteStore, i64) {
    scale_store_with(dir, script)
}

fn scale_store_with(
    dir: &Path,
    script: fn(&stepwise_model::GenerateRequest, usize) -> String,
) -> (SqliteStore, i64) {
    let store = SqliteStore::open(dir.join("runs.sqlite")).unwrap();
    let g = Arc::new(ScriptedGenerator::new(script));
    let backends = Backends {
        policy: g,
        judge: None,
        prm: Default::default(),
    };
    let cfg = ScaleJobConfig {
        dataset: "inline".into(),
        limit: None,
        scale: ScaleConfig {
            strategies: vec![ScaleStrategy::Majority, ScaleStrategy::Bon],
            ns: vec![8],
            expansions: 2,
            max_steps: 4,
        },
        policy: "scripted".into(),
        reproducible: true,
        search: SearchSettings {
            scorer: Some("arith".into()),
            aggregation: Aggregation::Min,
            ..SearchSettings::default()
        },
    };
    let job = ScaleJob::new(cfg, problems(), &backends).unwrap();
    let s = block_on(stepwise_search::jobs::scale(&store, &job, &opts())).unwrap();
    (store, s.run)
}

fn expected_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/expected")
}

/// Compares a produced file with its expected twin (or writes it when updating).
fn check(out: &Path, name: &str) {
    let got = std::fs::read_to_string(out).unwrap();
    let want_path = expected_dir().join(name);
    if std::env::var_os("STEPWISE_UPDATE_EXPECTED").is_some() {
        std::fs::write(&want_path, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&want_path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with STEPWISE_UPDATE_EXPECTED=1)",
            want_path.display()
        )
    });
    assert_eq!(got, want, "{name} differs from tests/expected/{name}");
}

#[test]
fn every_rule_gives_its_expected_file_and_trl_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let (store, run) = scale_store(dir.path());
    let policy: Arc<dyn stepwise_model::Generator> = Arc::new(ScriptedGenerator::new(script));
    let sft = |rule: &str, dedup: Dedup, format: SftFormat| BuildSpec::Sft {
        rule: rule.parse().unwrap(),
        dedup,
        format,
    };
    let pairs = |rule: &str, enrich: bool| BuildSpec::Pairs {
        rule: rule.parse().unwrap(),
        max_pairs: 4,
        enrich,
    };
    let text = Dedup::Text { threshold: 0.9 };
    let cases: Vec<(&str, BuildSpec, Filters)> = vec![
        (
            "sft-verified.jsonl",
            sft("verified", text, SftFormat::Messages),
            Filters::default(),
        ),
        (
            "sft-verified-nodedup.jsonl",
            sft("verified", Dedup::None, SftFormat::Messages),
            Filters::default(),
        ),
        (
            "sft-majority.jsonl",
            sft("majority", Dedup::Answer, SftFormat::PromptCompletion),
            Filters::default(),
        ),
        (
            "sft-top2.jsonl",
            sft("top:2", text, SftFormat::Messages),
            Filters::default(),
        ),
        (
            "sft-shortest.jsonl",
            sft("shortest", text, SftFormat::PromptCompletion),
            Filters::default(),
        ),
        (
            "sft-verified-maxtokens.jsonl",
            sft("verified", Dedup::None, SftFormat::Messages),
            Filters {
                max_tokens: Some(20),
                ..Filters::default()
            },
        ),
        (
            "pairs-verified.jsonl",
            pairs("verified", false),
            Filters::default(),
        ),
        (
            "pairs-verified-margin.jsonl",
            pairs("verified:0.5", false),
            Filters::default(),
        ),
        (
            "pairs-contrastive.jsonl",
            pairs("contrastive", false),
            Filters::default(),
        ),
        (
            "pairs-intervention.jsonl",
            pairs("intervention:arith:2", false),
            Filters::default(),
        ),
        (
            "pairs-intervention-score.jsonl",
            pairs("intervention:score<0.5:2", false),
            Filters::default(),
        ),
        (
            "pairs-enriched.jsonl",
            pairs("verified", true),
            Filters::default(),
        ),
    ];
    let mut files = Vec::new();
    for (name, spec, filters) in cases {
        files.extend(build_checked(
            &store,
            run,
            spec,
            filters,
            Some(policy.clone()),
            dir.path(),
            name,
        ));
    }
    // Parquet output holds the same rows
    let pq = dir.path().join("sft.parquet");
    let config = BuildConfig {
        sources: vec![run],
        spec: sft("verified", text, SftFormat::Messages),
        filters: Filters::default(),
        policy: None,
    };
    block_on(build(&store, config, None, &pq, &opts())).unwrap();
    let back = stepwise_data::parquet_io::read_parquet_records(&pq).unwrap();
    assert_eq!(
        back.len(),
        std::fs::read_to_string(&files[0]).unwrap().lines().count()
    );
    files.push(pq);
    trl_check(&files);
}

/// Samples with different `arith` scores (min over steps: a checked claim 1, a step
/// without a claim 0.5, a wrong claim 0): right A (1.0), right B (0.5), wrong C (0.0,
/// wrong at step 0), wrong D (0.5: its wrong result is stated without a claim).
fn graded(_req: &stepwise_model::GenerateRequest, i: usize) -> String {
    match i % 4 {
        0 => "3 + 4 = 7\n\n7 * 2 = 14. The answer is 14.",
        1 => "3 + 4 = 7\n\n7 * 2 = 14\n\nThe answer is 14.",
        2 => "3 + 4 = 8\n\n8 * 2 = 16\n\nThe answer is 16.",
        _ => "3 + 4 = 7\n\nSo the result is 15\n\nThe answer is 15.",
    }
    .into()
}

/// The verified rule's margin on scores that differ (8 samples per problem: A, B, C, D
/// twice each): chosen in score order (A, A, B, B), hardest negatives first (D, D, C, C),
/// each negative used once; a pair needs chosen - rejected >= margin. Per problem:
/// - no margin: (A, D) twice, (B, C) twice;
/// - 0.5: A - D = 0.5 and B - C = 0.5: the same 4 pairs;
/// - 0.6: A - D = 0.5 is short, so both A take a C (1.0); B - D = 0 is short and the C
///   are taken: 2 pairs, `below_margin` 2;
/// - 1.5: nothing reaches it: 0 pairs, `below_margin` 4.
#[test]
fn the_verified_margin_filters_pairs_by_score() {
    let dir = tempfile::tempdir().unwrap();
    let (store, run) = scale_store_with(dir.path(), graded);
    let mut files = Vec::new();
    for (rule, name) in [
        ("verified", "pairs-margin-none.jsonl"),
        ("verified:0.5", "pairs-margin-0.5.jsonl"),
        ("verified:0.6", "pairs-margin-0.6.jsonl"),
        ("verified:1.5", "pairs-margin-1.5.jsonl"),
    ] {
        let spec = BuildSpec::Pairs {
            rule: rule.parse().unwrap(),
            max_pairs: 4,
            enrich: false,
        };
        files.extend(build_checked(
            &store,
            run,
            spec,
            Filters::default(),
            None,
            dir.path(),
            name,
        ));
    }
    trl_check(&files);
}

/// An `annotate` run's solutions: sample 0 right, sample 1 wrong at step 1 (`7 * 2 = 15`);
/// rollouts continue a prefix by its true next steps, so Monte-Carlo labels sample 0
/// good, good, good and sample 1 good, bad, bad.
fn labelled_script(req: &stepwise_model::GenerateRequest, i: usize) -> String {
    let prefix = &req.assistant_prefix;
    if prefix.ends_with("7 * 2 = 14\n\n") {
        "The answer is 14."
    } else if prefix.ends_with("7 * 2 = 15\n\n") {
        "The answer is 15."
    } else if prefix.ends_with("3 + 4 = 7\n\n") {
        "7 * 2 = 14\n\nThe answer is 14."
    } else if i.is_multiple_of(2) {
        "3 + 4 = 7\n\n7 * 2 = 14\n\nThe answer is 14."
    } else {
        "3 + 4 = 7\n\n7 * 2 = 15\n\nThe answer is 15."
    }
    .into()
}

/// A real `annotate` job (Monte-Carlo labels, scripted model) as a source: SFT of the
/// solutions whose every step is labelled good, and pairs at the first step labelled bad
/// (the policy continues the prefix before it).
#[test]
fn annotate_runs_are_a_source() {
    use stepwise_annotate::Method;
    use stepwise_annotate::run::{AnnotateConfig, Job, PolicySource, run_job};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("problems.jsonl");
    stepwise_data::show::write_problem_stream(Some(&data), problems().into_iter().map(Ok)).unwrap();
    let store_path = dir.path().join("runs.sqlite");
    let policy: Arc<dyn stepwise_model::Generator> =
        Arc::new(ScriptedGenerator::new(labelled_script));
    let job = Job {
        config: AnnotateConfig {
            dataset: data.display().to_string(),
            methods: vec![Method::Mc],
            samples: 2,
            mc: stepwise_annotate::mc::McConfig { k: 2 },
            ..AnnotateConfig::default()
        },
        store: store_path.display().to_string(),
        resume: None,
        data_dir: None,
        run: opts(),
        out: None,
        eval_against_truth: false,
        truth_out: None,
        stored_only: false,
    };
    let labelled = block_on(run_job(&job, PolicySource::Model(policy.clone()))).unwrap();
    let store = SqliteStore::open(&store_path).unwrap();
    let mut files = Vec::new();
    for (name, spec) in [
        (
            "sft-good-steps.jsonl",
            BuildSpec::Sft {
                rule: "good-steps".parse().unwrap(),
                dedup: Dedup::None,
                format: SftFormat::Messages,
            },
        ),
        (
            "pairs-intervention-labels.jsonl",
            BuildSpec::Pairs {
                rule: "intervention:labels:2".parse().unwrap(),
                max_pairs: 4,
                enrich: false,
            },
        ),
    ] {
        files.extend(build_checked(
            &store,
            labelled.run,
            spec,
            Filters::default(),
            Some(policy.clone()),
            dir.path(),
            name,
        ));
    }
    trl_check(&files);
}

/// Builds `spec` from `run` into `dir/name` and compares the file and its manifest's
/// counts with the expected ones; the file, when it has rows.
fn build_checked(
    store: &SqliteStore,
    run: i64,
    spec: BuildSpec,
    filters: Filters,
    policy: Option<Arc<dyn stepwise_model::Generator>>,
    dir: &Path,
    name: &str,
) -> Option<PathBuf> {
    let out = dir.join(name);
    let config = BuildConfig {
        sources: vec![run],
        spec,
        filters,
        policy: policy.as_ref().map(|_| "scripted".to_string()),
    };
    let s = block_on(build(store, config, policy, &out, &opts())).unwrap();
    check(&out, name);
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&s.manifest_path).unwrap()).unwrap();
    let counts = serde_json::to_string(&m["counts"]).unwrap();
    check_text(
        &format!("{counts}\nrows {}\n", m["rows"]),
        &format!("{name}.counts"),
    );
    (s.manifest.rows > 0).then_some(out)
}

fn check_text(got: &str, name: &str) {
    let want_path = expected_dir().join(name);
    if std::env::var_os("STEPWISE_UPDATE_EXPECTED").is_some() {
        std::fs::write(&want_path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&want_path).unwrap();
    assert_eq!(got, want, "{name}");
}

/// Loads every file with `datasets` and runs TRL's format checks on it.
fn trl_check(files: &[PathBuf]) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = root.join(".venv/bin/python");
    if !python.exists() {
        eprintln!("SKIPPED TRL format check: no .venv (run scripts/setup)");
        return;
    }
    let out = std::process::Command::new(python)
        .arg(root.join("scripts/check_trl.py"))
        .args(files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "check_trl.py failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The policy as in [`script`]; the Likert judge (same scripted model, told apart by its
/// prompt) rates a right solution 5, 4, 2 (no score in the fourth judgment) and a wrong
/// one 1, 1, 1: judgment pairs come from the right solutions only.
fn likert_script(req: &stepwise_model::GenerateRequest, i: usize) -> String {
    let stepwise_model::Prompt::Chat(m) = &req.prompt else {
        return String::new();
    };
    let user = &m[m.len() - 1].content;
    if !user.contains("Rate the solution") {
        return script(req, i);
    }
    let right = user.contains("The answer is 14.");
    match (right, i % 4) {
        (true, 0) => " All right.\nScore: 5".into(),
        (true, 1) => " Fine.\nScore: 4".into(),
        (true, 2) => " The product looks off.\nScore: 2".into(),
        (false, 0..=2) => " Wrong.\nScore: 1".into(),
        _ => " Unsure.".into(),
    }
}

/// A real `scale` job scored by `likert` keeps its judgments in the store, and
/// `data pairs --rule likert-judgments` turns each right sample's best- and worst-rated
/// judgments into a TRL DPO row whose prompt is the judge prompt.
#[test]
fn likert_judgments_of_a_stored_run_become_pairs() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("runs.sqlite")).unwrap();
    let backends = Backends {
        policy: Arc::new(ScriptedGenerator::new(likert_script)),
        judge: None,
        prm: Default::default(),
    };
    let cfg = ScaleJobConfig {
        dataset: "inline".into(),
        limit: None,
        scale: ScaleConfig {
            strategies: vec![ScaleStrategy::Bon],
            ns: vec![4],
            expansions: 2,
            max_steps: 4,
        },
        policy: "scripted".into(),
        reproducible: true,
        search: SearchSettings {
            scorer: Some("likert".into()),
            likert: Some(stepwise_jobs::kinds::solve::LikertOptions {
                criteria: Some("Is the final answer right?".into()),
                samples: 4,
                max_tokens: 64,
            }),
            ..SearchSettings::default()
        },
    };
    let job = ScaleJob::new(cfg, problems(), &backends).unwrap();
    let run = block_on(stepwise_search::jobs::scale(&store, &job, &opts()))
        .unwrap()
        .run;
    let out = dir.path().join("judgments.jsonl");
    let config = BuildConfig {
        sources: vec![run],
        spec: BuildSpec::Pairs {
            rule: "likert-judgments".parse().unwrap(),
            max_pairs: 8,
            enrich: false,
        },
        filters: Filters::default(),
        policy: None,
    };
    let s = block_on(build(&store, config, None, &out, &opts())).unwrap();
    let rows: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // per problem 4 samples: 0 and 1 right (pairs), 2 and 3 wrong (all rated 1: tied)
    assert_eq!(rows.len(), 4, "{rows:#?}");
    assert_eq!(s.manifest.counts.get("tied_judgments"), Some(&4));
    for r in &rows {
        assert_eq!(r["rule"], "likert-judgments");
        assert_eq!(r["chosen"][0]["content"], "Rationale: All right.\nScore: 5");
        assert_eq!(
            r["rejected"][0]["content"],
            "Rationale: The product looks off.\nScore: 2"
        );
        assert_eq!(
            (r["chosen_score"].as_f64(), r["rejected_score"].as_f64()),
            (Some(5.0), Some(2.0))
        );
        let user = r["prompt"][1]["content"].as_str().unwrap();
        assert!(
            user.starts_with("Problem: What is (3 + 4) * 2?\n\nSolution:\n"),
            "{user}"
        );
        assert!(
            user.contains("under these criteria:\nIs the final answer right?"),
            "{user}"
        );
        assert_eq!(r["prompt"][0]["role"], "system");
    }
    trl_check(&[out]);
}
