//! `stepwise data runs` and `stepwise data export`: the runs of a store, listed or
//! exported (the store's own listing and exports; this only opens it and writes).

use super::data::ExportFormat;
use crate::Global;
use anyhow::{Context, bail};
use std::path::PathBuf;
use std::sync::Arc;
use stepwise_store::RunStore;

/// The store at `path`: a PostgreSQL URL, or a SQLite file that must exist.
fn open_existing(path: &std::path::Path, missing: &str) -> anyhow::Result<Arc<dyn RunStore>> {
    let spec = path.to_string_lossy();
    if stepwise_store::pg::is_postgres_url(&spec) {
        return stepwise_store::open(&spec).context("opening the run store");
    }
    if !path.exists() {
        bail!("no run store at {}{missing}", path.display());
    }
    Ok(Arc::new(stepwise_store::SqliteStore::open(path)?))
}

pub(crate) fn runs(path: &std::path::Path, json: bool) -> anyhow::Result<()> {
    let store = open_existing(
        path,
        " (runs are created by solve, annotate, eval, ...; --store picks another file)",
    )?;
    let text = stepwise_store::listing::runs(store.as_ref(), json)?;
    crate::out::out!("{text}")
}

pub(crate) fn export(
    run: i64,
    format: ExportFormat,
    out: Option<PathBuf>,
    path: &std::path::Path,
    g: &Global,
) -> anyhow::Result<()> {
    let store = open_existing(path, "")?;
    let store = store.as_ref();
    let out = out.filter(|p| p.as_os_str() != "-");
    let n = match (format, &out) {
        (ExportFormat::Parquet, None) => bail!("--format parquet needs --out FILE"),
        (ExportFormat::Parquet, Some(file)) => stepwise_store::export_parquet(store, run, file)?,
        (ExportFormat::Jsonl, Some(file)) => {
            let f = std::fs::File::create(file)
                .with_context(|| format!("creating {}", file.display()))?;
            stepwise_store::export_jsonl(store, run, std::io::BufWriter::new(f))?
        }
        (ExportFormat::Jsonl, None) => stepwise_store::export_jsonl(
            store,
            run,
            std::io::BufWriter::new(std::io::stdout().lock()),
        )?,
    };
    if !g.quiet {
        let dest = out.map_or_else(|| "stdout".to_string(), |p| p.display().to_string());
        eprintln!("exported {n} unit(s) of run {run} to {dest}");
    }
    Ok(())
}
