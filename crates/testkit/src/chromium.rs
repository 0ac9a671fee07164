//! Headless Chromium for tests: a fresh profile per call, no sandbox (tests run as root
//! in CI containers), no GPU, no network of its own, `/dev/shm` not relied on.
//!
//! These helpers panic with the command's stderr when Chromium fails: they serve tests,
//! where a panic is the failure report.

use std::path::Path;
use std::process::{Command, Output};

/// Where Debian's `chromium` package puts the browser.
pub const PATH: &str = "/usr/bin/chromium";

/// Flags of every run.
const COMMON: [&str; 6] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    "--disable-dev-shm-usage",
];

/// Whether Chromium is installed; when it is not, prints the `SKIPPED` line of `test`
/// (on stdout and stderr, so it shows with and without `--nocapture`).
pub fn available(test: &str) -> bool {
    if Path::new(PATH).exists() {
        return true;
    }
    println!("SKIPPED: {test}: {PATH} not found (apt-get install -y chromium)");
    eprintln!("SKIPPED: {test}: {PATH} not found");
    false
}

/// Runs Chromium on `url` with `args` after the common flags, in a profile of its own;
/// panics when it cannot start or exits with an error.
pub fn run(url: &str, args: &[&str]) -> Output {
    let profile = tempfile::tempdir().expect("a temporary Chromium profile");
    let out = Command::new(PATH)
        .args(COMMON)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .output()
        .unwrap_or_else(|e| panic!("running {PATH}: {e}"));
    assert!(
        out.status.success(),
        "chromium failed on {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The DOM of `url` once its scripts have run; `virtual_time_ms` (when given) lets
/// timers and fetches finish before the dump, without waiting that long.
pub fn dump_dom(url: &str, virtual_time_ms: Option<u32>) -> String {
    let budget = virtual_time_ms.map(|ms| format!("--virtual-time-budget={ms}"));
    let mut args: Vec<&str> = budget.iter().map(String::as_str).collect();
    args.push("--dump-dom");
    String::from_utf8_lossy(&run(url, &args).stdout).into_owned()
}

/// A PNG of `url` at `width` × `height` CSS pixels, written to `png` (virtual time as
/// for [`dump_dom`]).
pub fn screenshot(
    url: &str,
    png: &Path,
    (width, height): (u32, u32),
    virtual_time_ms: Option<u32>,
) {
    let mut args = vec![
        format!("--screenshot={}", png.display()),
        format!("--window-size={width},{height}"),
        "--hide-scrollbars".to_string(),
    ];
    args.extend(virtual_time_ms.map(|ms| format!("--virtual-time-budget={ms}")));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run(url, &args);
    assert!(png.exists(), "chromium wrote no screenshot of {url}");
}
