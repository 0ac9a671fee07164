//! Answer extraction on real data: every GSM8K test reference and every MATH-500 solution.

mod common;

use stepwise_core::{AnswerExtractor, ExtractRule};

#[test]
fn gsm8k_test_references_all_extract_their_number() {
    let rows = common::read_jsonl("gsm8k/test.jsonl");
    assert_eq!(rows.len(), 1319);
    let ex = AnswerExtractor::default();
    for (i, row) in rows.iter().enumerate() {
        let answer = row["answer"].as_str().expect("answer field");
        let expected = answer.rsplit("####").next().unwrap().trim();
        let got = ex
            .extract(answer)
            .unwrap_or_else(|| panic!("line {}: nothing extracted", i + 1));
        assert_eq!(got.rule, ExtractRule::Gsm8k, "line {}", i + 1);
        assert_eq!(got.text, expected, "line {}", i + 1);
        assert_eq!(&answer[got.span.clone()], got.text);
        let digits = got.text.replace(',', "");
        assert!(
            digits.parse::<i64>().is_ok(),
            "line {}: `{}` is not an integer",
            i + 1,
            got.text
        );
    }
}

fn squash(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

/// MATH-500 problems whose boxed content is not the `answer` field even after
/// whitespace normalization. Each differs in writing, not in value:
const MATH500_EXCEPTIONS: &[(&str, &str)] = &[];

#[test]
fn math500_boxed_matches_answer_field() {
    let rows = common::read_jsonl("math500/test.jsonl");
    assert_eq!(rows.len(), 500);
    let ex = AnswerExtractor::new(vec![ExtractRule::Boxed]);
    let mut mismatches = Vec::new();
    for row in &rows {
        let id = row["unique_id"].as_str().unwrap();
        let solution = row["solution"].as_str().unwrap();
        let answer = row["answer"].as_str().unwrap();
        let got = ex.extract(solution).map(|e| e.text).unwrap_or_default();
        if squash(&got) != squash(answer) {
            mismatches.push((id.to_string(), got, answer.to_string()));
        }
    }
    for (id, got, want) in &mismatches {
        eprintln!("{id}: boxed `{got}` vs answer `{want}`");
    }
    let listed: Vec<&str> = MATH500_EXCEPTIONS.iter().map(|(id, _)| *id).collect();
    let unlisted: Vec<_> = mismatches
        .iter()
        .filter(|(id, _, _)| !listed.contains(&id.as_str()))
        .collect();
    assert!(unlisted.is_empty(), "unlisted mismatches: {unlisted:#?}");
    assert_eq!(
        mismatches.len(),
        MATH500_EXCEPTIONS.len(),
        "a listed exception now matches: update the list"
    );
    assert!(
        mismatches.len() * 100 <= 500,
        "more than 1% mismatches: {}",
        mismatches.len()
    );
}
