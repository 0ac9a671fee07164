//! Every selection rule and pair rule on a store written by a real `scale` job with a
//! scripted model, compared with expected files (`tests/expected/`; regenerate with
//! `STEPWISE_UPDATE_EXPECTED=1`), and the exported files checked by Python `datasets`
//! and TRL's format functions (`scripts/check_trl.py`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use stepwise_build::{BuildConfig, BuildSpec, Dedup, Filters, SftFormat, build};
use stepwise_core::{Aggregation, Problem};
use stepwise_jobs::kinds::scale::{ScaleConfig, ScaleJobConfig, ScaleStrategy};
use stepwise_jobs::kinds::solve::SearchSettings;
use stepwise_jobs::{RunOptions, Stop};
use stepwise_model::scripted::ScriptedGenerator;
use stepwise_search::jobs::{Backends, ScaleJob};
use stepwise_store::SqliteStore;

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

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

fn opts() -> RunOptions {
    RunOptions {
        stop: Stop::Never,
        ..RunOptions::default()
    }
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
        let out = dir.path().join(name);
        let config = BuildConfig {
            sources: vec![run],
            spec,
            filters,
            policy: Some("scripted".into()),
        };
        let s = block_on(build(&store, config, Some(policy.clone()), &out, &opts())).unwrap();
        check(&out, name);
        let m: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&s.manifest_path).unwrap()).unwrap();
        let counts = serde_json::to_string(&m["counts"]).unwrap();
        check_text(
            &format!("{counts}\nrows {}\n", m["rows"]),
            &format!("{name}.counts"),
        );
        files.push(out);
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
