//! Shared helpers for the data-driven tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// `$STEPWISE_DATA`, else `<workspace root>/../shared/data`. Panics with a clear message when missing.
pub fn data_dir() -> PathBuf {
    let dir = match std::env::var_os("STEPWISE_DATA") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"),
    };
    assert!(
        dir.is_dir(),
        "data folder not found at {} (set STEPWISE_DATA to the shared data folder)",
        dir.display()
    );
    dir
}

pub fn read_jsonl(rel: &str) -> Vec<serde_json::Value> {
    let path = data_dir().join(rel);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{}:{}: bad JSON: {e}", path.display(), i + 1))
        })
        .collect()
}
