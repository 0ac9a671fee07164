//! One module per subcommand. Each has `Args` (clap) and `run(args, &Global)`.

pub mod annotate;
pub mod backend;
pub mod bench;
pub mod data;
pub mod data_build;
pub mod data_runs;
pub mod eval;
pub mod gateway;
pub mod generate;
pub mod head;
pub mod jobargs;
pub mod model;
pub mod report;
pub mod reward;
pub mod scale;
pub mod serve;
pub mod solve;
pub mod verify;
pub mod view;
pub mod worker;

/// A multi-threaded tokio runtime for commands that talk to models or servers.
#[allow(dead_code)]
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}
