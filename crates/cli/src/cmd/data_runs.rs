//! `stepwise data runs` and `stepwise data export`: the runs of a store, listed or
//! exported (the store's own listing and exports; this only opens it and writes).

use super::data::ExportFormat;
use crate::Global;
use anyhow::{Context, bail};
use std::path::PathBuf;
use stepwise_store::SqliteStore;

pub(crate) fn runs(path: &std::path::Path, json: bool) -> anyhow::Result<()> {
    if !path.exists() {
        bail!(
            "no run store at {} (runs are created by solve, annotate, eval, ...; --store picks another file)",
            path.display()
        );
    }
    let store = SqliteStore::open(path)?;
    let text = stepwise_store::listing::runs(&store, json)?;
    crate::out::out!("{text}")
}

pub(crate) fn export(
    run: i64,
    format: ExportFormat,
    out: Option<PathBuf>,
    path: &std::path::Path,
    g: &Global,
) -> anyhow::Result<()> {
    if !path.exists() {
        bail!("no run store at {}", path.display());
    }
    let store = SqliteStore::open(path)?;
    let out = out.filter(|p| p.as_os_str() != "-");
    let n = match (format, &out) {
        (ExportFormat::Parquet, None) => bail!("--format parquet needs --out FILE"),
        (ExportFormat::Parquet, Some(file)) => stepwise_store::export_parquet(&store, run, file)?,
        (ExportFormat::Jsonl, Some(file)) => {
            let f = std::fs::File::create(file)
                .with_context(|| format!("creating {}", file.display()))?;
            stepwise_store::export_jsonl(&store, run, std::io::BufWriter::new(f))?
        }
        (ExportFormat::Jsonl, None) => stepwise_store::export_jsonl(
            &store,
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
