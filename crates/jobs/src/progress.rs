//! The one progress style of stepwise's long jobs.

use indicatif::{ProgressBar, ProgressStyle};

/// The template every job's bar uses: what, a bar, count, rate, ETA, the job's message.
pub const TEMPLATE: &str = "{prefix} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta}) {msg}";

/// A progress bar of `len` items named `prefix` on stderr; hidden when `visible` is
/// false (`--quiet`, or a caller that shows nothing). indicatif draws nothing when
/// stderr is not a terminal.
pub fn bar(len: u64, prefix: &str, visible: bool) -> ProgressBar {
    let pb = if visible {
        ProgressBar::new(len)
    } else {
        ProgressBar::hidden()
    };
    pb.set_style(
        ProgressStyle::with_template(TEMPLATE).unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    pb.set_prefix(prefix.to_string());
    pb
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_template_parses() {
        assert!(indicatif::ProgressStyle::with_template(super::TEMPLATE).is_ok());
    }
}
