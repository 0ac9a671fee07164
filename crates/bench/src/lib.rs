//! stepwise-bench: stepwise measured side by side against the peers it replaces.
//!
//! - [`verify`]: the verifier against HF math-verify (pairs/s, agreement).
//! - [`generate`]: the embedded llama.cpp backend against llama.cpp's `llama-batched-bench`
//!   (generation tokens/s).
//! - [`serve`]: the reward server under wrk load against FastAPI + uvicorn + math-verify
//!   (rewards/s, latency, reward agreement, memory over a soak).
//! - [`labels`]: the step-label methods against exact truth on a simulated policy
//!   (first-error accuracy and F1 against rollouts per labelled step).
//! - [`gateway`]: the search gateway's pass-through against calling its upstream directly
//!   (p50/p99 latency, overhead).
//! - [`workers`]: one run shared by 1, 2, 4, 8 workers through PostgreSQL against the
//!   single SQLite process (units/s, speed-up).
//!
//! What they share: one set of [`CommonArgs`] (`--out`, `--rounds`, `--threads`, `--python`,
//! `--venv`, `--no-reference`), one Python reference environment ([`python::PythonEnv`],
//! under the stepwise cache), one way to run alternating rounds and summarize them
//! ([`stats`]) and one way to lay out and publish the Markdown result ([`report`]).
//! Each bench's `run` measures, prints the Markdown section and writes it to `--out`.

pub mod gateway;
pub mod generate;
pub mod labels;
pub mod options;
pub mod python;
pub mod report;
pub mod serve;
pub mod stats;
pub mod verify;
pub mod workers;

pub use options::CommonArgs;

/// Errors of the benches, each naming what failed.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A malformed input record.
    #[error("{path}:{line}: {msg}")]
    Data {
        path: String,
        line: usize,
        msg: String,
    },
    /// A file or process operation.
    #[error("{what}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    /// An external tool (python, pip, cmake, wrk, a reference server) failed or is missing.
    #[error("{0}")]
    Tool(String),
    /// Options that cannot go together or are out of range.
    #[error("invalid options: {0}")]
    Options(String),
    /// The reward server under test.
    #[error(transparent)]
    Serve(#[from] stepwise_serve::ServeError),
    /// The embedded engine or the HTTP backend under test.
    #[error(transparent)]
    Engine(#[from] stepwise_model::EngineError),
    /// An HTTP exchange with a server under test.
    #[error("{what}")]
    Http {
        what: String,
        source: reqwest::Error,
    },
}

/// A `map_err` adapter naming the failed I/O operation.
pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BenchError {
    let what = what.into();
    move |source| BenchError::Io { what, source }
}

/// Runs a command to completion; a failure quotes the last lines of its stderr.
pub(crate) fn run_tool(cmd: &mut std::process::Command) -> Result<(), BenchError> {
    let shown = format!("{cmd:?}");
    let out = cmd.output().map_err(io(format!("cannot run {shown}")))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(10).collect();
        return Err(BenchError::Tool(format!(
            "{shown} failed ({}):\n{}",
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )));
    }
    Ok(())
}

/// A runtime for the benches that talk to servers or to the engine thread.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, BenchError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(io("starting the async runtime"))
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser, Subcommand};

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        what: What,
    }

    #[derive(Subcommand)]
    enum What {
        Verify(crate::verify::Args),
        Generate(crate::generate::Args),
        Serve(crate::serve::Args),
    }

    #[test]
    fn the_three_benches_take_the_common_flags_without_clashes() {
        Cli::command().debug_assert();
        for bench in ["verify", "generate", "serve"] {
            let cli = Cli::try_parse_from([
                "bench",
                bench,
                "--out",
                "r.md",
                "--rounds",
                "2",
                "--threads",
                "1",
                "--no-reference",
            ])
            .unwrap_or_else(|e| panic!("{bench}: {e}"));
            let common = match cli.what {
                What::Verify(a) => a.common,
                What::Generate(a) => a.common,
                What::Serve(a) => a.common,
            };
            assert_eq!(common.out.as_deref(), Some(std::path::Path::new("r.md")));
            assert_eq!((common.rounds_or(9), common.threads()), (2, 1));
            assert!(common.no_reference);
        }
    }

    #[test]
    fn generate_defaults_are_the_published_settings() {
        let Ok(Cli {
            what: What::Generate(a),
        }) = Cli::try_parse_from(["bench", "generate"])
        else {
            panic!("bench generate did not parse");
        };
        assert_eq!(a.n, [1, 4, 8, 16, 32]);
        assert_eq!(a.prompt_tokens, [35, 500]);
        assert_eq!(a.gen_tokens, 128);
        assert_eq!(a.common.rounds_or(crate::generate::DEFAULT_ROUNDS), 3);
    }
}
