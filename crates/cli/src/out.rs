//! What commands print on stdout, written so that a failed write is an error, not a panic.
//!
//! `println!` panics when stdout cannot be written (a full disk: `stepwise … > /dev/full`;
//! a closed pipe where the SIGPIPE handler of `main` is not installed). Commands print
//! through [`outln!`] and [`out!`] instead: every write is flushed at once and its
//! failure returned. A closed pipe becomes [`ClosedStdout`], which `main` ends quietly
//! with success; any other failure is "writing to stdout: <the OS's reason>".

use std::fmt;
use std::io::{self, Write};

/// Stdout's reader went away (`stepwise … | head`): the command ends quietly.
#[derive(Debug)]
pub struct ClosedStdout;

impl fmt::Display for ClosedStdout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("stdout was closed")
    }
}

impl std::error::Error for ClosedStdout {}

/// The error of a failed write to stdout: [`ClosedStdout`] for a closed pipe, else the
/// OS error with the context "writing to stdout".
pub fn error(e: io::Error) -> anyhow::Error {
    if e.kind() == io::ErrorKind::BrokenPipe {
        anyhow::Error::new(ClosedStdout)
    } else {
        anyhow::Error::new(e).context("writing to stdout")
    }
}

/// Whether `e` is (or was caused by) a closed stdout.
pub fn is_closed_stdout(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<ClosedStdout>())
}

/// Writes `args` to stdout and flushes it.
pub fn write_fmt(args: fmt::Arguments<'_>) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    out.write_fmt(args)
        .and_then(|()| out.flush())
        .map_err(error)
}

/// `print!` that returns the write's error.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::out::write_fmt(format_args!($($arg)*))
    };
}

/// `println!` that returns the write's error.
macro_rules! outln {
    () => {
        $crate::out::write_fmt(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::out::write_fmt(format_args!("{}\n", format_args!($($arg)*)))
    };
}

pub(crate) use {out, outln};
