//! What the build tests share.

use stepwise_jobs::{RunOptions, Stop};

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Run every unit (no Ctrl-C handling in tests).
pub fn opts() -> RunOptions {
    RunOptions {
        stop: Stop::Never,
        ..RunOptions::default()
    }
}
