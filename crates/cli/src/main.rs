//! The `stepwise` binary: argument parsing and wiring only. All logic lives in the library crates.

mod cmd;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// stepwise: make LLM reasoning checkable step by step.
///
/// Produce step-by-step rationales, judge every step and answer, search at test
/// time, label data for process reward models, serve rewards and evaluate.
#[derive(Parser, Debug)]
#[command(name = "stepwise", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command understands.
#[derive(clap::Args, Debug, Clone)]
pub struct Global {
    /// Folder holding the built-in datasets (gsm8k/, math500/, processbench/).
    /// Default: ../shared/data beside the working directory or the repository.
    #[arg(long, global = true, env = "STEPWISE_DATA", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// More log output (-v info, -vv debug, -vvv trace). `RUST_LOG` overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Log format on stderr: `text` for people, `json` (one JSON object per event, fields
    /// kept as fields) for log collectors.
    #[arg(long, global = true, env = "STEPWISE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// How log events are written.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Inspect, convert and generate datasets.
    Data(cmd::data::Args),
    /// Check whether answers are mathematically equivalent.
    Verify(cmd::verify::Args),
    /// Fetch and inspect models.
    Model(cmd::model::Args),
    /// Sample step-by-step continuations from a model.
    Generate(cmd::generate::Args),
    /// Solve problems with a test-time search strategy and step scorers.
    Solve(cmd::solve::Args),
    /// Accuracy versus compute: run strategies over budgets and tabulate.
    Scale(cmd::scale::Args),
    /// Label steps automatically (Monte-Carlo, OmegaPRM, reference-guided, grounded) for PRM training.
    Annotate(cmd::annotate::Args),
    /// Evaluate scorers and strategies (ProcessBench, accuracy vs compute, calibration).
    Eval(cmd::eval::Args),
    /// Train PRM heads on the model's hidden states (logistic regression per step), show them.
    Head(cmd::head::Args),
    /// Write a self-contained HTML report of a run.
    Report(cmd::report::Args),
    /// Serve rewards to RL trainers over HTTP.
    Serve(cmd::serve::Args),
    /// Measure stepwise against its peers, side by side.
    Bench(cmd::bench::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.global);
    let result = match cli.command {
        Command::Data(a) => cmd::data::run(a, &cli.global),
        Command::Verify(a) => cmd::verify::run(a, &cli.global),
        Command::Model(a) => cmd::model::run(a, &cli.global),
        Command::Generate(a) => cmd::generate::run(a, &cli.global),
        Command::Solve(a) => cmd::solve::run(a, &cli.global),
        Command::Scale(a) => cmd::scale::run(a, &cli.global),
        Command::Annotate(a) => cmd::annotate::run(a, &cli.global),
        Command::Eval(a) => cmd::eval::run(a, &cli.global),
        Command::Head(a) => cmd::head::run(a, &cli.global),
        Command::Report(a) => cmd::report::run(a, &cli.global),
        Command::Serve(a) => cmd::serve::run(a, &cli.global),
        Command::Bench(a) => cmd::bench::run(a, &cli.global),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            if stepwise_jobs::was_interrupted() {
                // the conventional status of a program stopped by SIGINT
                ExitCode::from(130)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn init_logging(g: &Global) {
    use tracing_subscriber::EnvFilter;
    let level = if g.quiet {
        "error"
    } else {
        match g.verbose {
            0 => "warn",
            1 => "info",
            2 => "debug",
            _ => "trace",
        }
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match g.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
    };
}
