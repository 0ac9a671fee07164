//! Whole files or none: an output is written to a temporary file beside it and renamed
//! over it once complete, so a failed write (a bad record, a full disk, Ctrl-C) leaves no
//! partial file, and an existing file at the path is kept until the new one is whole.

use crate::error::{DataError, Result};
use std::fs::File;
use std::path::Path;

/// Writes `path` through `write`, which gets a temporary file in `path`'s folder. When
/// `write` succeeds the file is renamed to `path`; when it fails the temporary file is
/// removed and `path` is left as it was.
pub fn write_atomically<T>(path: &Path, write: impl FnOnce(&mut File) -> Result<T>) -> Result<T> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".partial")
        .tempfile_in(dir)
        .map_err(|e| DataError::io(path, e))?;
    let value = write(tmp.as_file_mut())?;
    tmp.as_file_mut()
        .sync_all()
        .map_err(|e| DataError::io(path, e))?;
    tmp.persist(path)
        .map_err(|e| DataError::io(path, e.error))?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_failed_write_leaves_nothing_and_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        write_atomically(&path, |f| {
            f.write_all(b"old\n").map_err(|e| DataError::io("x", e))
        })
        .unwrap();
        let e = write_atomically(&path, |f| {
            f.write_all(b"half").map_err(|e| DataError::io("x", e))?;
            Err::<(), _>(DataError::bad_record("in.jsonl", 3, "broken"))
        })
        .unwrap_err();
        assert!(e.to_string().contains("in.jsonl:3"), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old\n");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("out.jsonl")]);
    }
}
