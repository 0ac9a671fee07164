//! Every export format, as JSONL and Parquet, read back by its reader; the TRL file
//! loads with Python `datasets` (skipped loudly when Python `datasets` is missing).

use proptest::prelude::*;
use std::sync::Arc;
use stepwise_annotate::formats::{self, ExportFormat, ReadRecord};
use stepwise_annotate::policy::{Policy, RolloutParams};
use stepwise_annotate::run::{AnnotateConfig, export_records, label_question};
use stepwise_annotate::testing::ScriptedPolicy;
use stepwise_annotate::{LabelledSolution, Method, StepLabel};

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Real labelled output of all four methods on three arith problems.
fn records() -> Vec<LabelledSolution> {
    let ds = "arith:ops=3,n=3,seed=5,kind=word".parse().unwrap();
    let problems = stepwise_data::load(&ds, &Default::default())
        .unwrap()
        .problems;
    let g = Arc::new(ScriptedPolicy::for_problems(&problems, 0.5));
    let policy = Policy::new(g, RolloutParams::default());
    let mut cfg = AnnotateConfig {
        samples: 2,
        ..AnnotateConfig::default()
    };
    cfg.mc.k = 3;
    cfg.omega.k = 4;
    cfg.omega.search_limit = 2;
    cfg.grounded.k = 2;
    let mut results = Vec::new();
    for p in &problems {
        for m in Method::ALL {
            results.push(block_on(label_question(&policy, p, m, &cfg)).unwrap());
        }
    }
    let recs = export_records(&problems, &results);
    assert!(recs.len() > 10);
    assert!(recs.iter().any(|r| r.first_error().is_some()));
    assert!(recs.iter().any(|r| r.first_error().is_none()));
    recs
}

fn comparable(format: ExportFormat, r: &ReadRecord) -> ReadRecord {
    let mut r = r.clone();
    if format == ExportFormat::ProcessBench {
        // ProcessBench keeps only the first error: good before it, bad from it on.
        let fe = r.first_error();
        r.good = (0..r.steps.len())
            .map(|i| fe.is_none_or(|f| i < f))
            .collect();
    }
    r
}

#[test]
fn every_format_round_trips_as_jsonl_and_parquet() {
    let recs = records();
    let dir = tempfile::tempdir().unwrap();
    for format in ExportFormat::ALL {
        for ext in ["jsonl", "parquet"] {
            let path = dir.path().join(format!("{format}.{ext}"));
            let n = formats::write(&path, format, &recs).unwrap();
            assert_eq!(n, recs.len());
            let back = formats::read(&path, format).unwrap();
            assert_eq!(back.len(), recs.len(), "{format} {ext}");
            for (w, b) in recs.iter().zip(&back) {
                let want = comparable(format, &ReadRecord::of(w));
                assert_eq!(b.question, want.question, "{format} {ext}");
                assert_eq!(b.steps, want.steps, "{format} {ext}");
                assert_eq!(b.good, want.good, "{format} {ext}");
                assert_eq!(b.problem_id, want.problem_id, "{format} {ext}");
                if format == ExportFormat::Native {
                    // soft values and outcomes, what value heads train on, come back
                    assert_eq!(b.values, want.values, "{format} {ext}");
                    assert_eq!(b.answer_correct, want.answer_correct, "{format} {ext}");
                } else {
                    assert_eq!(b.values, None, "{format} {ext}");
                }
            }
        }
    }
}

#[test]
fn math_shepherd_records_use_ki_tags_and_signs() {
    let s = LabelledSolution {
        problem_id: "p".into(),
        question: "What is 3 + 4?".into(),
        gold: Some("7".into()),
        sample: 0,
        steps: vec!["3 + 4 = 8".into(), "The answer is 8.".into()],
        labels: vec![StepLabel::from_mc(0, 4), StepLabel::from_mc(0, 4)],
        answer_correct: Some(false),
    };
    let m = formats::to_record(ExportFormat::MathShepherd, &s);
    assert_eq!(
        m["input"],
        "What is 3 + 4?\n\n3 + 4 = 8 ки\nThe answer is 8. ки"
    );
    assert_eq!(
        m["label"],
        "What is 3 + 4?\n\n3 + 4 = 8 -\nThe answer is 8. -"
    );
    let pb = formats::to_record(ExportFormat::ProcessBench, &s);
    assert_eq!(pb["label"], 0);
    let o = formats::to_record(ExportFormat::OpenR, &s);
    assert_eq!(o["label"], serde_json::json!(["-", "-"]));
}

#[test]
fn malformed_files_are_errors_naming_file_and_record() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.jsonl");
    std::fs::write(
        &p,
        "{\"prompt\":\"q\",\"completions\":[\"a\"],\"labels\":[true]}\n{not json\n",
    )
    .unwrap();
    let e = formats::read(&p, ExportFormat::Trl)
        .unwrap_err()
        .to_string();
    assert!(e.contains("bad.jsonl") && e.contains("record 2"), "{e}");
    std::fs::write(
        &p,
        "{\"prompt\":\"q\",\"completions\":[\"a\"],\"labels\":[true, false]}\n",
    )
    .unwrap();
    let e = formats::read(&p, ExportFormat::Trl)
        .unwrap_err()
        .to_string();
    assert!(e.contains("2 labels for 1 completions"), "{e}");
    std::fs::write(&p, "{\"problem\":\"q\",\"steps\":[\"a\"],\"label\":3}\n").unwrap();
    assert!(formats::read(&p, ExportFormat::ProcessBench).is_err());
    std::fs::write(&p, "{\"input\":\"q\\n\\na ки\",\"label\":\"q\\n\\na ?\"}\n").unwrap();
    assert!(formats::read(&p, ExportFormat::MathShepherd).is_err());
    let missing = dir.path().join("missing.parquet");
    assert!(
        formats::read(&missing, ExportFormat::Trl)
            .unwrap_err()
            .to_string()
            .contains("missing.parquet")
    );
}

#[test]
fn trl_file_loads_with_python_datasets() {
    let probe = std::process::Command::new("python3")
        .args(["-c", "import datasets"])
        .output();
    let available = probe.as_ref().is_ok_and(|o| o.status.success());
    if !available {
        eprintln!(
            "\n*** SKIPPED trl_file_loads_with_python_datasets: python3 with the `datasets` package is not available \
             (pip install datasets) ***\n"
        );
        return;
    }
    let recs = records();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trl.jsonl");
    formats::write(&path, ExportFormat::Trl, &recs).unwrap();
    let script = format!(
        "import datasets, json\nd = datasets.load_dataset('json', data_files={:?}, split='train')\n\
         assert set(['prompt','completions','labels']) <= set(d.column_names), d.column_names\n\
         assert all(len(c) == len(l) for c, l in zip(d['completions'], d['labels']))\n\
         assert all(isinstance(x, bool) for l in d['labels'] for x in l)\n\
         print(len(d))",
        path.display().to_string()
    );
    let out = std::process::Command::new("python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "datasets failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let n: usize = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert_eq!(n, recs.len());
}

fn step_text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9+=*/().,: ]{1,30}"
        .prop_map(|s| s.trim().to_string())
        .prop_filter("non-empty", |s| !s.is_empty())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn tagged_formats_round_trip_any_steps(
        question in "[a-zA-Z0-9 ?]{1,40}".prop_map(|s| s.trim().to_string()).prop_filter("q", |s| !s.is_empty()),
        steps in prop::collection::vec((step_text(), any::<bool>()), 1..6),
    ) {
        let s = LabelledSolution {
            problem_id: "p".into(),
            question: question.clone(),
            gold: None,
            sample: 0,
            steps: steps.iter().map(|(t, _)| t.clone()).collect(),
            labels: steps.iter().map(|(_, g)| StepLabel::from_mc(u32::from(*g), 1)).collect(),
            answer_correct: None,
        };
        for f in [ExportFormat::MathShepherd, ExportFormat::OpenR, ExportFormat::Trl, ExportFormat::Prm800k] {
            let back = formats::from_record(f, &formats::to_record(f, &s)).unwrap();
            // these formats keep hard labels only (no soft values)
            let want = ReadRecord { values: None, ..ReadRecord::of(&s) };
            prop_assert_eq!(back, want);
        }
    }
}
