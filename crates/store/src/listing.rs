//! The run list of `stepwise data runs`: a table for people (units done of the run's
//! total with the percentage where the store knows the total, a failed run's error and
//! a shared store's live workers on the lines below it) or one JSON object per run
//! (with `total` and `workers`, the live ones).

use crate::{Result, RunStore};
use std::fmt::Write;

/// Every run of `store`, oldest first, as a table or as JSON lines.
pub fn runs(store: &dyn RunStore, json: bool) -> Result<String> {
    let runs = store.list_runs()?;
    let mut out = String::new();
    if json {
        for r in &runs {
            let mut v = serde_json::to_value(r).map_err(|e| crate::StoreError::Corrupt {
                location: store.location(),
                message: format!("run {} does not serialize: {e}", r.id),
            })?;
            let workers = serde_json::to_value(store.workers(r.id)?).unwrap_or_default();
            if let Some(m) = v.as_object_mut() {
                m.insert("workers".into(), workers);
            }
            out.push_str(&v.to_string());
            out.push('\n');
        }
        return Ok(out);
    }
    let _ = writeln!(
        out,
        "{:>5}  {:<17} {:<11} {:>16} {:>8}  {:<20}  config",
        "id", "kind", "status", "units done", "problems", "created"
    );
    for r in &runs {
        let mut config = r.config.to_string();
        if config.chars().count() > 60 {
            config = config.chars().take(57).collect::<String>() + "...";
        }
        let _ = writeln!(
            out,
            "{:>5}  {:<17} {:<11} {:>16} {:>8}  {:<20}  {config}",
            r.id,
            r.kind,
            r.status,
            r.progress(),
            r.problems,
            r.created
        );
        if let Some(e) = &r.error {
            let _ = writeln!(out, "       error: {e}");
        }
        for w in store.workers(r.id)? {
            let _ = writeln!(
                out,
                "       worker {}: {} unit(s) in hand, lease until {}",
                w.worker, w.units, w.until
            );
        }
    }
    if runs.is_empty() {
        let _ = writeln!(out, "(no runs in {})", store.location());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::{RunStatus, RunStore, SqliteStore};

    #[test]
    fn a_failed_run_shows_its_error() {
        let s = SqliteStore::in_memory().unwrap();
        let a = s
            .create_run("solve", 2, &serde_json::json!({"k": 1}))
            .unwrap();
        s.set_status(a, RunStatus::Failed, Some("unit 'p3': server refused"))
            .unwrap();
        let t = super::runs(&s, false).unwrap();
        assert!(
            t.contains("failed") && t.contains("error: unit 'p3': server refused"),
            "{t}"
        );
        let j = super::runs(&s, true).unwrap();
        let v: serde_json::Value = serde_json::from_str(j.trim()).unwrap();
        assert_eq!(v["status"], "failed");
        assert_eq!(v["error"], "unit 'p3': server refused");
    }
}
