//! `verify --out` resumed onto a torn output file (issue #14, defect 4): the reproducer
//! `stepwise verify --jsonl p.jsonl --out v.jsonl; head -c 1000 v.jsonl > t.jsonl;
//! stepwise verify --jsonl p.jsonl --out t.jsonl` must end with every record exactly
//! once, every line valid JSON, no line merged onto a torn one.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

fn stepwise(dir: &Path, args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_stepwise"))
        .args(args)
        .current_dir(dir)
        .env_remove("STEPWISE_STORE")
        .env_remove("RUST_LOG")
        .output()
        .expect("run stepwise");
    assert!(
        out.status.success(),
        "stepwise {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The verdict lines of `path` by input line; panics on a line that is not JSON or a
/// record given twice.
fn verdicts(path: &Path) -> BTreeMap<u64, serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(
        text.ends_with('\n'),
        "{} does not end with a newline",
        path.display()
    );
    let mut out = BTreeMap::new();
    for (i, l) in text.lines().enumerate() {
        let v: serde_json::Value = serde_json::from_str(l)
            .unwrap_or_else(|e| panic!("{}:{}: not JSON ({e}): {l}", path.display(), i + 1));
        let line = v["line"].as_u64().expect("a line number");
        assert!(out.insert(line, v).is_none(), "record of line {line} twice");
    }
    out
}

#[test]
fn a_torn_output_file_is_redone_whole() {
    let dir = tempfile::tempdir().unwrap();
    let pairs: String = (0..120)
        .map(|i| {
            format!(
                "{{\"id\": {i}, \"gold\": \"{i}\", \"pred\": \"{}/2\"}}\n",
                2 * i + i % 3
            )
        })
        .collect();
    std::fs::write(dir.path().join("p.jsonl"), pairs).unwrap();
    stepwise(
        dir.path(),
        &["verify", "--jsonl", "p.jsonl", "--out", "v.jsonl"],
    );
    let whole = verdicts(&dir.path().join("v.jsonl"));
    assert_eq!(whole.len(), 120);

    let v = std::fs::read(dir.path().join("v.jsonl")).unwrap();
    assert!(v.len() > 1000);
    let torn = &v[..1000];
    assert_ne!(torn.last(), Some(&b'\n'), "the cut falls inside a line");
    std::fs::write(dir.path().join("t.jsonl"), torn).unwrap();
    stepwise(
        dir.path(),
        &["verify", "--jsonl", "p.jsonl", "--out", "t.jsonl"],
    );

    let redone = verdicts(&dir.path().join("t.jsonl"));
    assert_eq!(redone.len(), 120, "every record once");
    assert_eq!(redone, whole);
    // and a rerun onto the finished file changes nothing
    stepwise(
        dir.path(),
        &["verify", "--jsonl", "p.jsonl", "--out", "t.jsonl"],
    );
    assert_eq!(verdicts(&dir.path().join("t.jsonl")), whole);
}
