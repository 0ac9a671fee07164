//! Labelling and label evaluation from the command line: `annotate --method rpe`
//! (GenPRM's relative progress, on the same MC values as `mc`) on the scripted policy,
//! and `eval processbench --data FILE` with rank@1 over candidates, on the model-free
//! arithmetic checker so every number is computed by hand.

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

fn stepwise() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_stepwise"));
    c.env_remove("STEPWISE_DETERMINISTIC");
    c
}

fn run_ok(c: &mut Command) -> String {
    let out = c.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    text
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn annotate(dir: &Path, method: &str) -> BTreeMap<(String, u64), Value> {
    let out = dir.join(format!("{method}.jsonl"));
    run_ok(
        stepwise()
            .args(["--quiet", "annotate", "--dataset", "arith:ops=3,n=6,seed=5"])
            .args([
                "--method",
                method,
                "--samples",
                "4",
                "--k",
                "4",
                "--seed",
                "9",
            ])
            .args(["--scripted-policy", "--format", "native", "--out"])
            .arg(&out)
            .arg("--store")
            .arg(dir.join(format!("{method}.sqlite"))),
    );
    lines(&out)
        .into_iter()
        .map(|s| {
            let key = (
                s["problem_id"].as_str().unwrap().to_string(),
                s["sample"].as_u64().unwrap(),
            );
            (key, s)
        })
        .collect()
}

#[test]
fn rpe_labels_are_the_relative_progress_of_the_mc_values() {
    let dir = tempfile::tempdir().unwrap();
    let mc = annotate(dir.path(), "mc");
    let rpe = annotate(dir.path(), "rpe");
    assert_eq!(
        mc.keys().collect::<Vec<_>>(),
        rpe.keys().collect::<Vec<_>>()
    );
    let (mut good, mut bad, mut zeroed) = (0, 0, 0);
    let mut pass1: BTreeMap<String, f64> = BTreeMap::new();
    for (key, r) in &rpe {
        let m = &mc[key];
        let (rl, ml) = (
            r["labels"].as_array().unwrap(),
            m["labels"].as_array().unwrap(),
        );
        assert_eq!(rl.len(), ml.len(), "{key:?}");
        let mut prev: Option<f64> = None;
        let mut seen_zero = false;
        for (i, (a, b)) in rl.iter().zip(ml).enumerate() {
            let v = a["value"].as_f64().unwrap();
            // the same rollouts as mc, zero-forced after the first step of MC 0
            let want = if seen_zero {
                0.0
            } else {
                b["value"].as_f64().unwrap()
            };
            assert!((v - want).abs() < 1e-12, "{key:?} step {i}: {v} vs {want}");
            zeroed += usize::from(seen_zero && b["value"].as_f64().unwrap() > 0.0);
            seen_zero |= v == 0.0;
            // the reason shows P = value/prev; the first step's prev is the Pass@1
            let reason = a["reason"].as_str().unwrap();
            let shown: Vec<f64> = reason
                .trim_start_matches("P = ")
                .split(['/', '='])
                .map(|x| x.trim().parse().unwrap())
                .collect();
            let before = match prev {
                Some(p) => p,
                None => {
                    let p = *pass1.entry(key.0.clone()).or_insert(shown[1]);
                    assert!((p - shown[1]).abs() < 1e-9, "one Pass@1 per question");
                    p
                }
            };
            assert!((shown[1] - before).abs() < 5e-4, "{reason} after {before}");
            let p = if before > 0.0 {
                v / before
            } else if v > 0.0 {
                f64::INFINITY
            } else {
                0.0
            };
            assert_eq!(
                a["good"].as_bool().unwrap(),
                p >= 0.8,
                "{key:?} step {i}: {reason}"
            );
            if p >= 0.8 {
                good += 1;
            } else {
                bad += 1;
            }
            prev = Some(v);
        }
    }
    // the Pass@1 is the share of the question's sampled solutions whose answer verified
    for (q, p) in &pass1 {
        let sols: Vec<&Value> = rpe
            .iter()
            .filter(|(k, _)| &k.0 == q)
            .map(|(_, v)| v)
            .collect();
        if sols.len() == 4 {
            let right = sols
                .iter()
                .filter(|s| s["answer_correct"] == json!(true))
                .count();
            assert!(
                (p - right as f64 / 4.0).abs() < 5e-4,
                "{q}: {p} vs {right}/4"
            );
        }
    }
    // the scripted policy makes both kinds of step
    assert!(good > 0 && bad > 0, "good {good}, bad {bad}");
    let _ = zeroed;
}

/// Two problems with two candidates each, labelled by the first wrong arithmetic claim.
fn candidates(path: &Path) {
    let rec = |id: &str, group: &str, steps: [&str; 2], label: i64| {
        json!({"id": id, "problem_id": group, "problem": format!("problem {group}"),
               "steps": steps, "label": label, "final_answer_correct": label < 0})
    };
    let recs = [
        // problem a: the first candidate's first step is wrong, its last is right; the
        // outcome view (last step) cannot tell them apart and takes the first in file
        // order, the PRM view (min step) takes the second
        rec("a1", "a", ["2 + 2 = 5", "5 + 1 = 6"], 0),
        rec("a2", "a", ["2 + 2 = 4", "4 + 1 = 5"], -1),
        // problem b: the right candidate comes first; both views take it
        rec("b1", "b", ["3 + 3 = 6", "6 * 2 = 12"], -1),
        rec("b2", "b", ["3 + 3 = 7", "7 * 2 = 14"], 0),
    ];
    let text: String = recs.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(path, text).unwrap();
}

#[test]
fn processbench_on_any_file_reports_rank_at_1_of_prm_and_outcome_selection() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("cands.jsonl");
    candidates(&data);
    let out = dir.path().join("pb");
    run_ok(
        stepwise()
            .args(["--quiet", "eval", "processbench", "--data"])
            .arg(&data)
            .args(["--scorer", "arith", "--threshold", "0.5", "--out"])
            .arg(&out)
            .arg("--store")
            .arg(dir.path().join("runs.sqlite")),
    );
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let rank = &summary["rank"];
    assert_eq!(rank["problems"], 2, "{summary:#}");
    assert_eq!(rank["candidates"], 4, "{summary:#}");
    assert_eq!(rank["prm"], 1.0, "{summary:#}");
    assert_eq!(rank["outcome"], 0.5, "{summary:#}");
    assert_eq!(rank["random"], 0.5, "{summary:#}");
    assert_eq!(rank["oracle"], 1.0, "{summary:#}");
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains("rank@1 over 2 problems"), "{md}");
    // each record's first error found by the checker at 0.5: exactly the labels
    let results = lines(&out.join("results.jsonl"));
    assert_eq!(results.len(), 4);
    let predicted: BTreeMap<String, i64> = results
        .iter()
        .map(|r| {
            let scores: Vec<f64> = r["scores"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_f64().unwrap())
                .collect();
            let first = scores
                .iter()
                .position(|s| *s < 0.5)
                .map_or(-1, |i| i as i64);
            (r["id"].as_str().unwrap().to_string(), first)
        })
        .collect();
    assert_eq!(
        predicted,
        BTreeMap::from([
            ("a1".to_string(), 0),
            ("a2".to_string(), -1),
            ("b1".to_string(), -1),
            ("b2".to_string(), 0)
        ]),
        "{results:#?}"
    );
}
