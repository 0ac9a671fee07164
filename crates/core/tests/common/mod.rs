//! Locating the shared public datasets for tests.

use std::path::PathBuf;

/// `$STEPWISE_DATA`, else `<workspace root>/../shared/data`.
/// Panics with a clear message when neither exists: these tests must not pass without their data.
pub fn data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("STEPWISE_DATA") {
        return PathBuf::from(d);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let d = root.join("../shared/data");
    assert!(
        d.join("gsm8k").is_dir(),
        "shared data not found at {} (set STEPWISE_DATA to the folder holding gsm8k/ and math500/)",
        d.display()
    );
    d
}

pub fn read_jsonl(rel: &str) -> Vec<serde_json::Value> {
    let path = data_dir().join(rel);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("{}:{}: {e}", path.display(), i + 1))
        })
        .collect()
}
