//! Exports of a stored run: JSONL (one [`StoredUnit`] a line) and Parquet (one row a
//! unit), for any [`RunStore`].

use crate::RunStore;
use crate::error::{Result, StoreError};
use crate::types::{RunId, StepLabelRow, StepScoreRow, StoredUnit};
use arrow_schema::{DataType, Field, Fields, Schema};
use serde::Serialize;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

/// Writes one JSON line per finished unit ([`StoredUnit`]: `run_id`, `finished`, `key`,
/// `problem_id`, `payload`, `samples`, `step_scores`, `step_labels`). Returns the count.
pub fn export_jsonl<W: Write>(store: &dyn RunStore, run: RunId, out: W) -> Result<usize> {
    let units = store.units(run)?;
    stepwise_data::jsonl::write_jsonl(out, &units).map_err(|e| StoreError::Export {
        path: "<output>".into(),
        message: e.to_string(),
    })?;
    Ok(units.len())
}

/// Writes one Parquet row per finished unit: the same columns as the JSONL export, with
/// `payload` and each sample's `extra` as JSON text, and `samples`, `step_scores`,
/// `step_labels` as lists of structs. Returns the count.
pub fn export_parquet(store: &dyn RunStore, run: RunId, path: &Path) -> Result<usize> {
    let units = store.units(run)?;
    if units.is_empty() {
        return Err(StoreError::Export {
            path: path.to_path_buf(),
            message: format!("run {run} has no finished units to export"),
        });
    }
    let rows: Vec<ParquetUnit> = units.iter().map(ParquetUnit::from).collect();
    stepwise_data::parquet_io::write_parquet_rows(path, Arc::new(export_schema()), &rows).map_err(
        |e| StoreError::Export {
            path: path.to_path_buf(),
            message: e.to_string(),
        },
    )?;
    Ok(rows.len())
}

#[derive(Serialize)]
struct ParquetSample<'a> {
    sample_idx: u32,
    text: &'a str,
    answer: Option<&'a str>,
    correct: Option<bool>,
    tokens: Option<u64>,
    extra: Option<String>,
}

#[derive(Serialize)]
struct ParquetUnit<'a> {
    run_id: i64,
    key: &'a str,
    problem_id: &'a str,
    finished: &'a str,
    payload: String,
    samples: Vec<ParquetSample<'a>>,
    step_scores: &'a [StepScoreRow],
    step_labels: &'a [StepLabelRow],
}

impl<'a> From<&'a StoredUnit> for ParquetUnit<'a> {
    fn from(s: &'a StoredUnit) -> Self {
        Self {
            run_id: s.run_id,
            key: &s.unit.key,
            problem_id: &s.unit.problem_id,
            finished: &s.finished,
            payload: s.unit.payload.to_string(),
            samples: s
                .unit
                .samples
                .iter()
                .map(|r| ParquetSample {
                    sample_idx: r.sample_idx,
                    text: &r.text,
                    answer: r.answer.as_deref(),
                    correct: r.correct,
                    tokens: r.tokens,
                    extra: (!r.extra.is_null()).then(|| r.extra.to_string()),
                })
                .collect(),
            step_scores: &s.unit.step_scores,
            step_labels: &s.unit.step_labels,
        }
    }
}

fn list_of(fields: Vec<Field>) -> DataType {
    DataType::List(Arc::new(Field::new(
        "item",
        DataType::Struct(Fields::from(fields)),
        false,
    )))
}

/// The Arrow schema of [`export_parquet`].
pub fn export_schema() -> Schema {
    Schema::new(vec![
        Field::new("run_id", DataType::Int64, false),
        Field::new("key", DataType::Utf8, false),
        Field::new("problem_id", DataType::Utf8, false),
        Field::new("finished", DataType::Utf8, false),
        Field::new("payload", DataType::Utf8, false),
        Field::new(
            "samples",
            list_of(vec![
                Field::new("sample_idx", DataType::UInt32, false),
                Field::new("text", DataType::Utf8, false),
                Field::new("answer", DataType::Utf8, true),
                Field::new("correct", DataType::Boolean, true),
                Field::new("tokens", DataType::UInt64, true),
                Field::new("extra", DataType::Utf8, true),
            ]),
            false,
        ),
        Field::new(
            "step_scores",
            list_of(vec![
                Field::new("sample_idx", DataType::UInt32, false),
                Field::new("step_idx", DataType::UInt32, false),
                Field::new("scorer", DataType::Utf8, false),
                Field::new("score", DataType::Float64, false),
            ]),
            false,
        ),
        Field::new(
            "step_labels",
            list_of(vec![
                Field::new("sample_idx", DataType::UInt32, false),
                Field::new("step_idx", DataType::UInt32, false),
                Field::new("method", DataType::Utf8, false),
                Field::new("label", DataType::Float64, false),
            ]),
            false,
        ),
    ])
}
