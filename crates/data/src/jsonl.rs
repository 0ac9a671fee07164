//! JSON Lines: one JSON object per line.
//!
//! Lines are numbered from 1. Blank (whitespace-only) lines are not records and are
//! passed over; every other line must be a JSON object, or the reader yields a
//! [`DataError::BadRecord`] naming `file:line`. Lines are read as bytes, so a line of
//! invalid UTF-8 is a bad record too, not an I/O failure of the whole file.

use crate::error::{DataError, Result};
use serde::Serialize;
use serde_json::{Map, Value};
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

/// The UTF-8 byte order mark, passed over at the start of a file.
pub const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// One JSON object and the 1-based line it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonRecord {
    pub line: usize,
    pub value: Map<String, Value>,
}

/// Streams the records of a JSONL file.
///
/// Items are `Err(BadRecord)` for lines that are not JSON objects (the caller decides
/// whether to stop or skip) and `Err(Io)` when reading fails (after which the iterator ends).
pub struct JsonlReader<R> {
    path: PathBuf,
    reader: R,
    line: usize,
    buf: Vec<u8>,
    done: bool,
}

impl JsonlReader<BufReader<File>> {
    /// Opens `path` for reading.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| DataError::io(path, e))?;
        Ok(Self::new(path, BufReader::new(file)))
    }
}

impl<R: BufRead> JsonlReader<R> {
    /// Reads from any buffered reader; `path` is used in error messages only.
    pub fn new(path: impl Into<PathBuf>, reader: R) -> Self {
        Self {
            path: path.into(),
            reader,
            line: 0,
            buf: Vec::new(),
            done: false,
        }
    }

    /// The path used in messages.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl<R: BufRead> Iterator for JsonlReader<R> {
    type Item = Result<JsonRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            self.buf.clear();
            match self.reader.read_until(b'\n', &mut self.buf) {
                Ok(0) => {
                    self.done = true;
                    return None;
                }
                Ok(_) => {}
                Err(e) => {
                    self.done = true;
                    return Some(Err(DataError::io(&self.path, e)));
                }
            }
            self.line += 1;
            // A UTF-8 byte order mark (Windows editors, Excel) starts the file, not the record.
            let bytes = match self.buf.strip_prefix(UTF8_BOM) {
                Some(rest) if self.line == 1 => rest,
                _ => &self.buf[..],
            };
            let text = match std::str::from_utf8(bytes) {
                Ok(t) => t,
                Err(e) => {
                    return Some(Err(DataError::bad_record(
                        &self.path,
                        self.line,
                        format!("not valid UTF-8 ({e})"),
                    )));
                }
            };
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            return Some(match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(value)) => Ok(JsonRecord {
                    line: self.line,
                    value,
                }),
                Ok(other) => Err(DataError::bad_record(
                    &self.path,
                    self.line,
                    format!("expected a JSON object, found {}", json_kind(&other)),
                )),
                Err(e) => Err(DataError::bad_record(
                    &self.path,
                    self.line,
                    format!("invalid JSON: {e}"),
                )),
            });
        }
    }
}

pub(crate) fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Writes each item as one line of JSON.
pub fn write_jsonl<W: Write, T: Serialize>(
    mut out: W,
    items: impl IntoIterator<Item = T>,
) -> std::io::Result<()> {
    for item in items {
        serde_json::to_writer(&mut out, &item)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn read(text: &str) -> Vec<Result<JsonRecord>> {
        JsonlReader::new("mem.jsonl", Cursor::new(text.as_bytes().to_vec())).collect()
    }

    #[test]
    fn numbers_lines_from_one_and_passes_over_blank_lines() {
        let items = read("{\"a\":1}\n\n  \n{\"a\":2}\n");
        let lines: Vec<usize> = items.iter().map(|r| r.as_ref().unwrap().line).collect();
        assert_eq!(lines, vec![1, 4]);
    }

    #[test]
    fn last_line_without_newline_is_read() {
        let items = read("{\"a\":1}\n{\"a\":2}");
        assert_eq!(items.len(), 2);
        assert_eq!(items[1].as_ref().unwrap().value["a"], 2);
    }

    #[test]
    fn bad_lines_name_file_and_line() {
        let items = read("{\"a\":1}\n{\"a\":\n[1,2]\n{\"a\":3}\n");
        assert_eq!(items.len(), 4);
        let e1 = items[1].as_ref().unwrap_err().to_string();
        assert!(e1.starts_with("mem.jsonl:2: invalid JSON"), "{e1}");
        let e2 = items[2].as_ref().unwrap_err().to_string();
        assert_eq!(e2, "mem.jsonl:3: expected a JSON object, found an array");
        assert_eq!(items[3].as_ref().unwrap().line, 4);
    }

    #[test]
    fn invalid_utf8_is_a_bad_record_not_an_io_error() {
        let bytes = b"{\"a\":1}\n{\"a\":\"\xff\"}\n".to_vec();
        let items: Vec<_> = JsonlReader::new("x.jsonl", Cursor::new(bytes)).collect();
        let e = items[1].as_ref().unwrap_err();
        assert!(matches!(e, DataError::BadRecord { line: 2, .. }), "{e}");
    }

    #[test]
    fn a_byte_order_mark_at_the_start_is_passed_over() {
        let items = read("\u{feff}{\"a\":1}\n{\"a\":2}\n");
        let values: Vec<_> = items
            .iter()
            .map(|r| r.as_ref().unwrap().value["a"].clone())
            .collect();
        assert_eq!(values, vec![1, 2]);
        // only at the start of the file: elsewhere it is not JSON
        let items = read("{\"a\":1}\n\u{feff}{\"a\":2}\n");
        assert!(items[1].is_err());
    }

    #[test]
    fn writes_one_object_per_line() {
        let mut out = Vec::new();
        write_jsonl(
            &mut out,
            [serde_json::json!({"a": 1}), serde_json::json!({"b": "x"})],
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"a\":1}\n{\"b\":\"x\"}\n"
        );
    }
}
