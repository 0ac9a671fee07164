//! Test support shared by the crates' integration tests; a dev-dependency only, never
//! linked into a library or the binary.
//!
//! [`chromium`]: the one way the tests run Debian's headless Chromium (the HTML report
//! in `eval`, the explorer in `view`), with the loud `SKIPPED` line the README lists
//! when it is not installed.

pub mod chromium;
