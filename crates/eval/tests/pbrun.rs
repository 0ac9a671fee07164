//! Running real scorers and a scripted critic over hand-made ProcessBench records.
#![cfg(feature = "runner")]

use std::sync::Arc;
use stepwise_eval::pbrun::{PbItem, PbMode, run};
use stepwise_eval::processbench::{PbRecord, Prediction, evaluate};
use stepwise_model::scripted::ScriptedGenerator;
use stepwise_score::ArithScorer;

fn item(subset: &str, id: &str, steps: &[&str], label: i64) -> PbItem {
    PbItem {
        subset: subset.into(),
        record: PbRecord {
            id: id.into(),
            generator: "hand".into(),
            problem: "What is 2 + 3, doubled?".into(),
            steps: steps.iter().map(|s| s.to_string()).collect(),
            final_answer_correct: label < 0,
            label,
        },
    }
}

fn items() -> Vec<PbItem> {
    vec![
        item(
            "gsm8k",
            "g0",
            &["2 + 3 = 5", "5 * 2 = 10", "The answer is 10."],
            -1,
        ),
        item(
            "gsm8k",
            "g1",
            &["2 + 3 = 6", "6 * 2 = 12", "The answer is 12."],
            0,
        ),
        item(
            "gsm8k",
            "g2",
            &["2 + 3 = 5", "5 * 2 = 11", "The answer is 11."],
            1,
        ),
        item(
            "math",
            "m0",
            &["We add first.", "2 + 3 = 5 and 5 * 2 = 10"],
            -1,
        ),
    ]
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn arith_checker_finds_wrong_arithmetic() {
    let mode = PbMode::Scorer(Arc::new(ArithScorer::default()));
    let mut got = Vec::new();
    let n = rt()
        .block_on(run(&mode, items(), 2, |r| {
            got.push(r);
            Ok(())
        }))
        .unwrap();
    assert_eq!(n, 4);
    // in input order, one score per step, steps kept for the report
    assert_eq!(
        got.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["g0", "g1", "g2", "m0"]
    );
    assert_eq!(got[1].scores.len(), 3);
    assert_eq!(got[1].steps[0], "2 + 3 = 6");
    assert!(got[1].scores[0] < 0.5, "{:?}", got[1].scores);
    assert!(
        got[2].scores[1] < 0.5 && got[2].scores[0] == 1.0,
        "{:?}",
        got[2].scores
    );
    assert_eq!(got[0].generated_tokens, 0);
    let rep = evaluate(&got, None).unwrap();
    // the tuned threshold separates "wrong claim" from "right or no claim" on gsm8k
    assert_eq!(rep.subsets[0].f1, Some(1.0), "{rep:?}");
    // math: "We add first." has no claim (0.5) but the threshold is above 0.5 only if
    // needed; whatever it is, the report says which and the F1 is defined only with both classes
    assert_eq!(rep.subsets[1].n_erroneous, 0);
    assert_eq!(rep.subsets[1].f1, None);
}

#[test]
fn critic_mode_reads_boxed_indices() {
    // The critic flags paragraph 0 when the text says "= 6", paragraph 1 for "= 11",
    // says -1 otherwise, and rambles without a box for m0.
    let g = ScriptedGenerator::new(|req, _| {
        let p = format!("{:?}", req.prompt);
        if p.contains("2 + 3 = 6") {
            "The first paragraph is wrong. \\boxed{0}".into()
        } else if p.contains("= 11") {
            "\\boxed{1}".into()
        } else if p.contains("We add first") {
            "I am not sure.".into()
        } else {
            "All fine: \\boxed{-1}".into()
        }
    });
    let mode = PbMode::Critic {
        generator: Arc::new(g),
        params: Default::default(),
    };
    let mut got = Vec::new();
    rt().block_on(run(&mode, items(), 1, |r| {
        got.push(r);
        Ok(())
    }))
    .unwrap();
    assert_eq!(got[0].critic, Some(Prediction::Index(-1)));
    assert_eq!(got[1].critic, Some(Prediction::Index(0)));
    assert_eq!(got[2].critic, Some(Prediction::Index(1)));
    assert_eq!(got[3].critic, Some(Prediction::Unparseable));
    assert!(got[1].generated_tokens > 0);
    let rep = evaluate(&got, Some(0.5)).unwrap(); // a threshold is ignored in critic mode
    assert_eq!(rep.subsets[0].f1, Some(1.0));
    assert_eq!(rep.subsets[1].unparseable, 1);
    assert_eq!(rep.subsets[1].acc_correct, Some(0.0));
}

#[test]
fn a_failing_callback_stops_the_run() {
    let mode = PbMode::Scorer(Arc::new(ArithScorer::default()));
    let mut seen = 0;
    let r = rt().block_on(run(&mode, items(), 1, |_| {
        seen += 1;
        if seen == 2 {
            Err(stepwise_eval::EvalError::Invalid("disk full".into()))
        } else {
            Ok(())
        }
    }));
    assert!(r.unwrap_err().to_string().contains("disk full"));
    assert_eq!(seen, 2);
}
