//! Parquet: records in and out, through Arrow.
//!
//! Rows are exchanged as JSON objects so the same field mapping serves JSONL and
//! Parquet. Writing infers an Arrow schema from the records (nested objects become
//! structs, arrays become lists; a field seen with mixed scalar types is widened, e.g. to
//! a string); reading turns each row back into a JSON object, leaving out null fields.

use crate::error::{DataError, Result};
use crate::jsonl::JsonRecord;
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use serde::Serialize;
use serde_json::{Map, Value};
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

const BATCH_ROWS: usize = 1024;

/// Reads every row of a Parquet file as a JSON object. `line` is the 1-based row number.
pub fn read_parquet_records(path: impl AsRef<Path>) -> Result<Vec<JsonRecord>> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|e| DataError::io(path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.with_batch_size(BATCH_ROWS).build())
        .map_err(|e| DataError::parquet(path, e))?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| DataError::parquet(path, e))?;
        for value in batch_to_json(&batch).map_err(|e| DataError::parquet(path, e))? {
            let line = out.len() + 1;
            match value {
                Value::Object(value) => out.push(JsonRecord { line, value }),
                _ => {
                    return Err(DataError::bad_record(
                        path,
                        line,
                        "row is not a JSON object",
                    ));
                }
            }
        }
    }
    Ok(out)
}

fn batch_to_json(batch: &RecordBatch) -> std::result::Result<Vec<Value>, String> {
    let mut buf = Vec::new();
    {
        let mut w = arrow_json::LineDelimitedWriter::new(&mut buf);
        w.write(batch).map_err(|e| e.to_string())?;
        w.finish().map_err(|e| e.to_string())?;
    }
    buf.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).map_err(|e| e.to_string()))
        .collect()
}

/// Writes JSON objects to a Parquet file, inferring the schema from all of them.
pub fn write_parquet_records(path: impl AsRef<Path>, records: &[Map<String, Value>]) -> Result<()> {
    let path = path.as_ref();
    if records.is_empty() {
        return Err(DataError::parquet(
            path,
            "no records to write (a Parquet file needs at least one row to infer its columns)",
        ));
    }
    let schema = arrow_json::reader::infer_json_schema_from_iterator(
        records
            .iter()
            .map(|r| Ok::<_, arrow_schema::ArrowError>(Value::Object(r.clone()))),
    )
    .map_err(|e| DataError::parquet(path, format!("inferring the schema: {e}")))?;
    write_parquet_rows(path, Arc::new(schema), records)
}

/// Writes serializable rows to a Parquet file with the given Arrow schema.
/// The file appears whole or not at all ([`crate::atomic::write_atomically`]).
pub fn write_parquet_rows<S: Serialize>(path: &Path, schema: SchemaRef, rows: &[S]) -> Result<()> {
    crate::atomic::write_atomically(path, |file| write_rows_into(file, path, schema, rows))
}

fn write_rows_into<S: Serialize>(
    file: &mut File,
    path: &Path,
    schema: SchemaRef,
    rows: &[S],
) -> Result<()> {
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut writer = ArrowWriter::try_new(file, schema.clone(), Some(props))
        .map_err(|e| DataError::parquet(path, e))?;
    let mut decoder = arrow_json::ReaderBuilder::new(schema)
        .with_batch_size(BATCH_ROWS)
        .build_decoder()
        .map_err(|e| DataError::parquet(path, e))?;
    for chunk in rows.chunks(BATCH_ROWS) {
        decoder
            .serialize(chunk)
            .map_err(|e| DataError::parquet(path, e))?;
        if let Some(batch) = decoder.flush().map_err(|e| DataError::parquet(path, e))? {
            writer
                .write(&batch)
                .map_err(|e| DataError::parquet(path, e))?;
        }
    }
    writer.close().map_err(|e| DataError::parquet(path, e))?;
    Ok(())
}

/// File formats the converter understands, by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    Parquet,
}

impl Format {
    /// `.jsonl`/`.json`/`.ndjson` → JSONL, `.parquet`/`.pq` → Parquet.
    pub fn from_path(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "jsonl" | "json" | "ndjson" => Some(Self::Jsonl),
            "parquet" | "pq" => Some(Self::Parquet),
            _ => None,
        }
    }
}

/// Reads the records of a JSONL or Parquet file (by extension). Stops at the first bad record.
pub fn read_records(path: &Path) -> Result<Vec<JsonRecord>> {
    match Format::from_path(path) {
        Some(Format::Jsonl) => crate::jsonl::JsonlReader::open(path)?.collect(),
        Some(Format::Parquet) => read_parquet_records(path),
        None => Err(DataError::parquet(
            path,
            "unknown file type (expected .jsonl or .parquet)",
        )),
    }
}

/// Converts between JSONL and Parquet (chosen by the extensions). Returns the number of
/// records. The output appears whole or not at all: on any failure no file is left at
/// `output` (and a file already there is kept).
pub fn convert(input: &Path, output: &Path) -> Result<usize> {
    let format = Format::from_path(output).ok_or_else(|| {
        DataError::parquet(output, "unknown file type (expected .jsonl or .parquet)")
    })?;
    let records: Vec<Map<String, Value>> =
        read_records(input)?.into_iter().map(|r| r.value).collect();
    match format {
        Format::Parquet => write_parquet_records(output, &records)?,
        Format::Jsonl => crate::atomic::write_atomically(output, |file| {
            crate::jsonl::write_jsonl(std::io::BufWriter::new(file), &records)
                .map_err(|e| DataError::io(output, e))
        })?,
    }
    Ok(records.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_records_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.parquet");
        let records: Vec<Map<String, Value>> = [
            json!({"id": "a", "steps": ["s1", "s2"], "label": -1, "ok": true, "m": {"x": 1.5}}),
            json!({"id": "b", "steps": [], "label": 0, "ok": false, "m": {"x": 2.0}}),
        ]
        .into_iter()
        .map(|v| v.as_object().unwrap().clone())
        .collect();
        write_parquet_records(&path, &records).unwrap();
        let back = read_parquet_records(&path).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[1].line, 2);
        assert_eq!(back[0].value, records[0]);
        assert_eq!(back[1].value, records[1]);
    }

    #[test]
    fn corrupt_parquet_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.parquet");
        std::fs::write(&path, b"not parquet at all").unwrap();
        let e = read_parquet_records(&path).unwrap_err().to_string();
        assert!(e.contains("bad.parquet"), "{e}");
    }

    #[test]
    fn writing_nothing_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(write_parquet_records(dir.path().join("e.parquet"), &[]).is_err());
    }
}
