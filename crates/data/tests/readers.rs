//! Readers through the public loader: line-numbered errors, skip_bad, field mapping,
//! Parquet round trips.

use std::path::Path;
use stepwise_data::parquet_io::{convert, read_records};
use stepwise_data::{DataError, Dataset, Field, FieldMap, GoldRule, LoadOptions, load};

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const MIXED: &str = r#####"{"question": "1+1?", "answer": "1+1=2\n#### 2"}
{"question": "2+2?", "answer": "#### 4"
{"question": "3+3?", "answer": "#### 6"}
"just a string"
{"prompt": "no answer here"}

{"question": "", "answer": "#### 1"}
{"question": "5+5?", "answer": "#### 10"}
"#####;

#[test]
fn first_bad_line_is_reported_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "mixed.jsonl", MIXED);
    let e = load(&Dataset::File(path.clone()), &LoadOptions::default()).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, DataError::BadRecord { line: 2, .. }), "{msg}");
    assert!(
        msg.starts_with(&format!("{}:2: invalid JSON", path.display())),
        "{msg}"
    );
    assert_eq!(msg.lines().count(), 1);
}

#[test]
fn skip_bad_continues_and_counts_every_bad_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "mixed.jsonl", MIXED);
    let loaded = load(
        &Dataset::File(path),
        &LoadOptions {
            skip_bad: true,
            ..LoadOptions::default()
        },
    )
    .unwrap();
    let golds: Vec<_> = loaded
        .problems
        .iter()
        .map(|p| p.gold.clone().unwrap_or_default())
        .collect();
    // Line 5 has a question (prompt) and no answer: a valid problem without gold.
    assert_eq!(golds, vec!["2", "6", "", "10"]);
    let lines: Vec<usize> = loaded
        .skipped
        .iter()
        .map(|e| match e {
            DataError::BadRecord { line, .. } => *line,
            other => panic!("{other}"),
        })
        .collect();
    assert_eq!(lines, vec![2, 4, 7]);
    // Ids count records (blank lines are not records), so they are stable under skip_bad.
    let ids: Vec<_> = loaded.problems.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, vec!["mixed:0", "mixed:2", "mixed:4", "mixed:6"]);
}

#[test]
fn a_custom_field_map_with_required_gold() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "custom.jsonl",
        "{\"key\": \"a\", \"text\": \"Q1\", \"out\": \"so \\\\boxed{3}\"}\n{\"key\": \"b\", \"text\": \"Q2\", \"out\": \"none\"}\n",
    );
    let map = FieldMap {
        id: Field::named("key"),
        question: Field::named("text"),
        gold: Field::named("out"),
        gold_rule: GoldRule::Extract(vec![stepwise_core::ExtractRule::Boxed]),
        reference: Field::Absent,
        id_prefix: String::new(),
        require_gold: true,
    };
    let e = load(
        &Dataset::File(path.clone()),
        &LoadOptions {
            field_map: Some(map.clone()),
            ..LoadOptions::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.ends_with("custom.jsonl:2: no gold answer found in field 'out' with rule(s) boxed"),
        "{e}"
    );
    let loaded = load(
        &Dataset::File(path),
        &LoadOptions {
            field_map: Some(map),
            skip_bad: true,
            ..LoadOptions::default()
        },
    )
    .unwrap();
    assert_eq!(loaded.problems.len(), 1);
    assert_eq!(loaded.problems[0].gold.as_deref(), Some("3"));
    assert_eq!(loaded.problems[0].id, "a");
}

#[test]
fn missing_file_names_the_path() {
    let e = load(
        &Dataset::File("/no/such/file.jsonl".into()),
        &LoadOptions::default(),
    )
    .unwrap_err();
    // the path in the message, the OS's reason once, as its cause
    assert_eq!(e.to_string(), "/no/such/file.jsonl");
    let cause = std::error::Error::source(&e).map(ToString::to_string);
    assert!(cause.is_some_and(|c| c.contains("os error 2")), "{e:?}");
}

#[test]
fn jsonl_parquet_jsonl_round_trip_keeps_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let src = write(
        dir.path(),
        "src.jsonl",
        concat!(
            "{\"id\": \"pb-0\", \"problem\": \"p\", \"steps\": [\"a\", \"b\"], \"final_answer_correct\": true, \"label\": -1}\n",
            "{\"id\": \"pb-1\", \"problem\": \"q\", \"steps\": [\"c\"], \"final_answer_correct\": false, \"label\": 0}\n",
        ),
    );
    let pq = dir.path().join("mid.parquet");
    let back = dir.path().join("back.jsonl");
    assert_eq!(convert(&src, &pq).unwrap(), 2);
    assert_eq!(convert(&pq, &back).unwrap(), 2);
    let a: Vec<_> = read_records(&src)
        .unwrap()
        .into_iter()
        .map(|r| r.value)
        .collect();
    let b: Vec<_> = read_records(&back)
        .unwrap()
        .into_iter()
        .map(|r| r.value)
        .collect();
    assert_eq!(a, b);
    // The Parquet file loads as a dataset with the same problems as the JSONL.
    let from_jsonl = load(&Dataset::File(src), &LoadOptions::default())
        .unwrap()
        .problems;
    let from_parquet = load(&Dataset::File(pq), &LoadOptions::default())
        .unwrap()
        .problems;
    assert_eq!(from_jsonl, from_parquet);
}

#[test]
fn generated_arith_round_trips_through_jsonl_and_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let ds: Dataset = "arith:ops=3,n=20,seed=5,kind=word".parse().unwrap();
    let problems = load(&ds, &LoadOptions::default()).unwrap().problems;
    let jsonl = dir.path().join("arith.jsonl");
    let file = std::fs::File::create(&jsonl).unwrap();
    stepwise_data::jsonl::write_jsonl(file, &problems).unwrap();
    let back = load(&Dataset::File(jsonl.clone()), &LoadOptions::default())
        .unwrap()
        .problems;
    assert_eq!(back, problems);
    let pq = dir.path().join("arith.parquet");
    convert(&jsonl, &pq).unwrap();
    let back = load(&Dataset::File(pq), &LoadOptions::default())
        .unwrap()
        .problems;
    assert_eq!(back, problems);
    for p in &back {
        stepwise_data::ArithSpec::from_problem(p).unwrap();
    }
}
