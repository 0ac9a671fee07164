//! math-verify's own test suite, run as data: at least 99% agreement, and every
//! disagreement listed in `known_disagreements.txt` with a reason.

mod common;

use std::collections::BTreeMap;
use stepwise_verify::{Options, Targets, explain_targets};

fn options(case: &serde_json::Value) -> Options {
    let mut o = Options::default();
    if let Some(p) = case["precision"].as_u64() {
        o.float_rounding = p as u32;
    }
    if let Some(s) = case["strict"].as_bool() {
        o.strict = s;
    }
    if let Some(a) = case["allow_set_relation_comp"].as_bool() {
        o.allow_set_relation_comp = a;
    }
    o
}

/// The harness's extraction targets (`match_types`); library defaults when absent.
fn targets(case: &serde_json::Value) -> Targets {
    match case["match_types"].as_array() {
        Some(types) => Targets {
            latex: types.iter().any(|t| t == "latex"),
            expr: types.iter().any(|t| t == "expr"),
            ..Targets::default()
        },
        None => Targets::default(),
    }
}

fn known() -> BTreeMap<String, String> {
    include_str!("known_disagreements.txt")
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (id, reason) = l.split_once(" | ").expect("`id | reason` lines");
            assert!(!reason.trim().is_empty(), "{id}: reason missing");
            (id.trim().to_string(), reason.trim().to_string())
        })
        .collect()
}

#[test]
fn agreement_with_math_verify_cases() {
    let cases = common::read_jsonl("math_verify_cases/cases.jsonl");
    assert!(cases.len() >= 180, "expected the 189 developer cases");
    let known = known();
    let mut agree = 0;
    let mut unlisted = Vec::new();
    let mut listed_but_agree = Vec::new();
    for c in &cases {
        let id = c["id"].as_str().unwrap().to_string();
        let gold = c["gold"].as_str().unwrap();
        let pred = c["pred"].as_str().unwrap();
        let expected = c["expected"].as_i64().unwrap() == 1;
        let t = targets(c);
        let ex = explain_targets(gold, t, pred, t, &options(c));
        let got = ex.verdict.is_equal();
        if got == expected {
            agree += 1;
            if known.contains_key(&id) {
                listed_but_agree.push(id);
            }
        } else if !known.contains_key(&id) {
            unlisted.push(format!(
                "{id}: expected {expected}, got {:?}; gold {:?} -> {:?}; pred {:?} -> {:?}",
                ex.verdict,
                ex.gold.extracted,
                ex.gold.normalized,
                ex.pred.extracted,
                ex.pred.normalized
            ));
        }
    }
    let rate = agree as f64 / cases.len() as f64;
    println!("agreement {agree}/{} = {:.2}%", cases.len(), rate * 100.0);
    assert!(
        unlisted.is_empty(),
        "disagreements not listed in known_disagreements.txt:\n{}",
        unlisted.join("\n")
    );
    assert!(
        listed_but_agree.is_empty(),
        "listed as disagreements but now agree (remove them): {listed_but_agree:?}"
    );
    assert!(rate >= 0.99, "agreement {:.2}% below 99%", rate * 100.0);
}
