//! Agreement on real corpora: GSM8K graded model solutions and MATH-500.

mod common;

use stepwise_core::AnswerExtractor;
use stepwise_verify::{Options, Verdict, verify, verify_text};

#[test]
fn gsm8k_model_solutions_agree_with_is_correct() {
    let rows = common::read_jsonl("gsm8k_model_solutions/example_model_solutions.jsonl");
    assert_eq!(rows.len(), 1319);
    let o = Options::default();
    let ex = AnswerExtractor::default();
    let mut total = 0;
    let mut agree = 0;
    let mut bad = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let gt = r["ground_truth"].as_str().unwrap();
        let gold = ex.extract(gt).expect("ground truth has an answer").text;
        for model in [
            "6b_finetuning",
            "6b_verification",
            "175b_finetuning",
            "175b_verification",
        ] {
            let sol = r[model]["solution"].as_str().unwrap();
            let label = r[model]["is_correct"].as_bool().unwrap();
            let got = verify_text(&gold, sol, &o) == Verdict::Equal;
            // The plain entry point on the whole solution must agree as well.
            let plain = verify(&gold, sol, &o) == Verdict::Equal;
            if plain != got {
                bad.push(format!(
                    "#{i} {model}: verify {plain} but verify_text {got}"
                ));
            }
            total += 1;
            if got == label {
                agree += 1;
            } else {
                let tail: String = sol
                    .chars()
                    .rev()
                    .take(60)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                bad.push(format!(
                    "#{i} {model}: gold {gold:?} label {label} got {got}; …{tail:?}"
                ));
            }
        }
    }
    let rate = agree as f64 / total as f64;
    println!("gsm8k agreement {agree}/{total} = {:.3}%", rate * 100.0);
    for b in &bad {
        println!("{b}");
    }
    assert_eq!(total, 5276);
    assert!(
        bad.iter().filter(|b| b.contains("verify_text")).count() <= 6,
        "verify and verify_text disagree too often"
    );
    assert!(
        rate >= 0.9987,
        "agreement {:.3}% below 99.87%",
        rate * 100.0
    );
}

#[test]
fn math500_solution_equals_answer_and_shuffled_pairs_differ() {
    let rows = common::read_jsonl("math500/test.jsonl");
    assert_eq!(rows.len(), 500);
    let o = Options::default();
    let answers: Vec<&str> = rows.iter().map(|r| r["answer"].as_str().unwrap()).collect();
    let mut equal = 0;
    let mut misses = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let sol = r["solution"].as_str().unwrap();
        if verify(answers[i], sol, &o) == Verdict::Equal {
            equal += 1;
        } else {
            misses.push(format!("#{i}: {:?}", answers[i]));
        }
    }
    // A fixed derangement: i is paired with the answer of problem (7i + 13) mod 500 when different.
    let mut unequal = 0;
    let mut collisions = Vec::new();
    for i in 0..500 {
        let mut j = (7 * i + 13) % 500;
        if j == i {
            j = (j + 1) % 500;
        }
        if verify(answers[i], answers[j], &o) != Verdict::Equal {
            unequal += 1;
        } else {
            collisions.push(format!("#{i} {:?} vs #{j} {:?}", answers[i], answers[j]));
        }
    }
    println!("math500 equal {equal}/500, shuffled unequal {unequal}/500");
    println!("misses: {misses:#?}\nshuffled judged equal: {collisions:#?}");
    assert!(
        equal >= 495,
        "only {equal}/500 solutions verify equal to their answer"
    );
    assert!(
        unequal >= 495,
        "only {unequal}/500 shuffled pairs judged unequal"
    );
}
