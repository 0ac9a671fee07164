//! Where stepwise keeps what it caches.
//!
//! One answer for every crate: models, reference environments of the benches, source
//! checkouts of peers and test servers all live under [`cache_root`]. (The data folder of
//! the built-in datasets is found by `stepwise_data::resolve_data_dir`.)
//!
//! This looks at environment variables only; it creates nothing.

use std::path::PathBuf;

/// Environment variable naming the cache root.
pub const CACHE_ENV: &str = "STEPWISE_CACHE";

/// The root of stepwise's cache: `$STEPWISE_CACHE` when set and not empty, else
/// `<user cache dir>/stepwise` (`~/.cache/stepwise` on Linux), else a folder in the
/// system's temporary directory.
pub fn cache_root() -> PathBuf {
    if let Some(dir) = std::env::var_os(CACHE_ENV).filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    dirs::cache_dir()
        .map(|d| d.join("stepwise"))
        .unwrap_or_else(|| std::env::temp_dir().join("stepwise-cache"))
}

/// A named folder under [`cache_root`] (e.g. `models`, `bench-serve`).
pub fn cache_dir(name: &str) -> PathBuf {
    cache_root().join(name)
}
