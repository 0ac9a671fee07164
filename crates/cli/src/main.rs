//! The `stepwise` binary: argument parsing and wiring only. All logic lives in the library crates.

mod cmd;
mod out;

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
    /// Default: `STEPWISE_DATA`, else the first `shared/data` in the working directory or
    /// one of its ancestors (so `../shared/data` beside the repository is found).
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
    /// Score a JSONL file of rollouts offline with the server's reward functions (resumable).
    Reward(cmd::reward::Args),
    /// Answer OpenAI chat/completions requests with test-time search (best-of-N, beam, MCTS).
    Gateway(cmd::gateway::Args),
    /// Measure stepwise against its peers, side by side.
    Bench(cmd::bench::Args),
    /// Join a stored run as one more worker (several machines share a PostgreSQL store).
    Worker(cmd::worker::Args),
    /// Explore the run store in the browser (runs, samples, search trees, labels, comparisons).
    View(cmd::view::Args),
}

fn main() -> ExitCode {
    #[cfg(any(target_os = "linux", target_os = "macos"))]
    closed_stdout::end_quietly_on_sigpipe();
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
        Command::Reward(a) => cmd::reward::run(a, &cli.global),
        Command::Gateway(a) => cmd::gateway::run(a, &cli.global),
        Command::Bench(a) => cmd::bench::run(a, &cli.global),
        Command::Worker(a) => cmd::worker::run(a, &cli.global),
        Command::View(a) => cmd::view::run(a, &cli.global),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // `stepwise … | head`: the reader has what it wanted
        Err(e) if out::is_closed_stdout(&e) => ExitCode::SUCCESS,
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
        .with_ansi(log_colours())
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

/// Colours in text logs only for a person at a terminal: not when stderr goes to a file
/// or a pipe, nor with `NO_COLOR` set to anything but the empty string (no-color.org).
fn log_colours() -> bool {
    use std::io::IsTerminal;
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    !no_color && std::io::stderr().is_terminal()
}

/// Ending quietly when stdout's reader goes away (`stepwise … | head`).
///
/// Rust starts programs with SIGPIPE ignored, so a write to a closed pipe fails with
/// EPIPE: `println!` panics with a backtrace and `?` on a write prints an error. The usual
/// fix, the default disposition, would also let the kernel kill the process when a socket
/// peer goes away during a vectored write (`writev`, which hyper uses and std does not
/// guard with `MSG_NOSIGNAL`): `serve` and the HTTP backends must see that as an error.
/// So SIGPIPE gets a handler that ends the process only when stdout is a pipe or socket
/// with no reader left (poll reports `POLLERR` or `POLLHUP`), the way the default
/// disposition would (killed by SIGPIPE, status 141 in a shell, nothing on stderr); any
/// other SIGPIPE returns, and its write fails with EPIPE as before.
#[cfg(any(target_os = "linux", target_os = "macos"))]
mod closed_stdout {
    #[cfg(target_os = "linux")]
    use libc::__errno_location as errno_location;
    #[cfg(target_os = "macos")]
    use libc::__error as errno_location;

    /// Installs the handler; call first in `main`, before any thread exists.
    pub fn end_quietly_on_sigpipe() {
        // SAFETY: `sa` is fully initialized (zeroed, then the handler and an empty mask)
        // and the handler only calls async-signal-safe functions.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_sigpipe as extern "C" fn(libc::c_int) as libc::sighandler_t;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            // On failure SIGPIPE stays ignored (Rust's default): a closed stdout is an error.
            libc::sigaction(libc::SIGPIPE, &sa, std::ptr::null_mut());
        }
    }

    extern "C" fn on_sigpipe(_: libc::c_int) {
        let mut out = libc::pollfd {
            fd: libc::STDOUT_FILENO,
            events: libc::POLLOUT,
            revents: 0,
        };
        // SAFETY: poll, signal and raise are async-signal-safe; `out` outlives the call;
        // errno is restored for the interrupted code when the handler returns.
        unsafe {
            let errno = *errno_location();
            if libc::poll(&mut out, 1, 0) == 1 && out.revents & (libc::POLLERR | libc::POLLHUP) != 0
            {
                // Pending until the handler returns, then fatal as the default is.
                libc::signal(libc::SIGPIPE, libc::SIG_DFL);
                libc::raise(libc::SIGPIPE);
            }
            *errno_location() = errno;
        }
    }
}
