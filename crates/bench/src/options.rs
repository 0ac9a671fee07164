//! The options every bench takes, flattened into each bench's own `Args`.

use crate::BenchError;
use crate::python::PythonEnv;
use std::path::PathBuf;

/// Flags shared by `bench verify`, `bench generate` and `bench serve`.
#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
pub struct CommonArgs {
    /// Also write the Markdown section (the table and the measured conditions) to FILE.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Alternating rounds: each round measures stepwise, then the reference; the table
    /// shows the median of the rounds and, in brackets, their range (a shared machine
    /// drifts by 10-20% between minutes). Default: 3 for generate, 1 for verify and serve.
    #[arg(long, value_name = "N", value_parser = positive)]
    pub rounds: Option<usize>,
    /// CPU threads of the measured engines: stepwise's multi-threaded verifier (verify),
    /// both llama.cpp builds (generate), stepwise's verification pool and the default
    /// uvicorn worker count (serve). Default: all cores.
    #[arg(long, value_name = "N", value_parser = positive)]
    pub threads: Option<usize>,
    /// Python that creates the reference environment (a venv).
    #[arg(long, value_name = "PYTHON", default_value = "python3")]
    pub python: String,
    /// The reference environment: a venv created and filled with pip when needed.
    /// Default: bench-venv in the stepwise cache ($STEPWISE_CACHE, else ~/.cache/stepwise).
    #[arg(long, value_name = "DIR")]
    pub venv: Option<PathBuf>,
    /// Measure stepwise only (no reference run, no Python).
    #[arg(long)]
    pub no_reference: bool,
}

fn positive(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

impl CommonArgs {
    /// `--rounds`, or the bench's default.
    pub fn rounds_or(&self, default: usize) -> usize {
        self.rounds.unwrap_or(default).max(1)
    }

    /// `--threads`, or every core of this machine.
    pub fn threads(&self) -> usize {
        self.threads.unwrap_or_else(available_cores)
    }

    /// Where the reference environment lives.
    pub fn venv_dir(&self) -> PathBuf {
        self.venv.clone().unwrap_or_else(crate::python::default_dir)
    }

    /// The reference environment with `requirements` installed (created when missing).
    pub fn python_env(&self, requirements: &[&str]) -> Result<PythonEnv, BenchError> {
        PythonEnv::ensure(&self.venv_dir(), &self.python, requirements)
    }
}

/// Cores of this machine (1 when unknown).
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        common: CommonArgs,
    }

    fn parse(args: &[&str]) -> Result<CommonArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("bench").chain(args.iter().copied())).map(|c| c.common)
    }

    #[test]
    fn defaults_leave_rounds_and_threads_to_the_bench() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.out, None);
        assert_eq!(c.rounds, None);
        assert_eq!(c.rounds_or(3), 3);
        assert_eq!(c.rounds_or(1), 1);
        assert_eq!(c.threads(), available_cores());
        assert_eq!(c.python, "python3");
        assert!(!c.no_reference);
        assert!(c.venv_dir().ends_with("bench-venv"));
    }

    #[test]
    fn flags_are_read() {
        let c = parse(&[
            "--out",
            "r.md",
            "--rounds",
            "5",
            "--threads",
            "2",
            "--python",
            "/usr/bin/python3.11",
            "--venv",
            "/tmp/v",
            "--no-reference",
        ])
        .unwrap();
        assert_eq!(c.out, Some(PathBuf::from("r.md")));
        assert_eq!(c.rounds_or(3), 5);
        assert_eq!(c.threads(), 2);
        assert_eq!(c.python, "/usr/bin/python3.11");
        assert_eq!(c.venv_dir(), PathBuf::from("/tmp/v"));
        assert!(c.no_reference);
    }

    #[test]
    fn zero_rounds_or_threads_are_refused() {
        for flag in ["--rounds", "--threads"] {
            let e = parse(&[flag, "0"]).unwrap_err();
            assert!(e.to_string().contains("at least 1"), "{flag}: {e}");
            assert!(parse(&[flag, "x"]).is_err(), "{flag}");
        }
    }
}
