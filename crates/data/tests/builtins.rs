//! Every built-in dataset loads from the shared data folder with the expected counts.
//! These tests need `../shared/data` (or `STEPWISE_DATA`); they fail, loudly, without it.

use stepwise_data::{Dataset, LoadOptions, ProcessBenchRecord, load, resolve_data_dir};

fn load_all(spec: &str) -> Vec<stepwise_core::Problem> {
    let dir = resolve_data_dir(None).unwrap_or_else(|looked| {
        panic!("data folder not found (set STEPWISE_DATA); looked in {looked:?}")
    });
    let ds: Dataset = spec.parse().unwrap();
    let loaded = load(
        &ds,
        &LoadOptions {
            data_dir: Some(dir),
            ..LoadOptions::default()
        },
    )
    .unwrap_or_else(|e| panic!("{spec}: {e}"));
    assert!(loaded.skipped.is_empty());
    loaded.problems
}

#[test]
fn gsm8k_test_has_1319_problems_all_with_numeric_gold() {
    let ps = load_all("gsm8k:test");
    assert_eq!(ps.len(), 1319);
    for p in &ps {
        let gold = p.gold.as_deref().unwrap();
        assert!(
            gold.parse::<f64>().is_ok(),
            "{}: gold '{gold}' is not a plain number",
            p.id
        );
        assert!(p.reference.as_deref().unwrap().contains("####"));
    }
    assert_eq!(ps[0].id, "gsm8k:test:0");
    assert_eq!(ps[0].gold.as_deref(), Some("18"));
    // Thousands separators are removed and the raw form is kept.
    let grouped: Vec<_> = ps
        .iter()
        .filter(|p| p.metadata.contains_key("gold_raw"))
        .collect();
    assert!(!grouped.is_empty());
    for p in grouped {
        assert_eq!(
            p.metadata["gold_raw"].as_str().unwrap().replace(',', ""),
            p.gold.clone().unwrap()
        );
    }
    let ids: std::collections::HashSet<_> = ps.iter().map(|p| &p.id).collect();
    assert_eq!(ids.len(), 1319);
}

#[test]
fn gsm8k_train_has_7473_problems() {
    let ps = load_all("gsm8k:train");
    assert_eq!(ps.len(), 7473);
    assert!(ps.iter().all(|p| p.gold.is_some()));
}

#[test]
fn math500_has_500_problems_with_answers_and_solutions() {
    let ps = load_all("math500");
    assert_eq!(ps.len(), 500);
    for p in &ps {
        assert!(p.id.starts_with("test/"), "{}", p.id);
        assert!(!p.gold.as_deref().unwrap().is_empty());
        assert!(p.reference.as_deref().unwrap().contains("boxed"));
        assert!(p.metadata.contains_key("subject") && p.metadata.contains_key("level"));
    }
}

#[test]
fn processbench_subsets_have_their_counts_and_typed_records() {
    // (subset, records, label == -1, final_answer_correct) from the data README.
    for (subset, n, no_error, correct) in [
        ("gsm8k", 280, 137, 140),
        ("math", 700, 295, 355),
        ("olympiadbench", 700, 244, 355),
        ("omnimath", 700, 167, 355),
    ] {
        let ps = load_all(&format!("processbench:{subset}"));
        assert_eq!(ps.len(), n, "{subset}");
        let recs: Vec<ProcessBenchRecord> = ps
            .iter()
            .map(|p| ProcessBenchRecord::from_problem(p).unwrap())
            .collect();
        assert_eq!(
            recs.iter().filter(|r| r.first_error().is_none()).count(),
            no_error,
            "{subset}"
        );
        assert_eq!(
            recs.iter().filter(|r| r.final_answer_correct).count(),
            correct,
            "{subset}"
        );
        assert!(recs.iter().all(|r| !r.steps.is_empty()));
        assert!(
            ps.iter()
                .all(|p| p.metadata["subset"] == subset && p.gold.is_none())
        );
    }
}
