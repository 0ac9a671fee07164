//! What `stepwise data show` and `stepwise data gen` write: problems for people (with
//! their arithmetic steps or ProcessBench labels) or as JSON lines, and generated
//! problems to JSONL or Parquet.

use crate::error::{DataError, Result};
use crate::parquet_io::{Format, write_parquet_records};
use crate::{ArithSpec, ProcessBenchRecord};
use std::io::Write;
use std::path::Path;
use stepwise_core::Problem;

/// One problem as people read it: id, question, gold answer, and its `arith` steps or
/// its ProcessBench solution and label when it has them.
pub fn describe(p: &Problem) -> String {
    let mut s = format!(
        "── {} ──\n{}\ngold: {}\n",
        p.id,
        p.question.trim_end(),
        p.gold.as_deref().unwrap_or("(none)")
    );
    if let Ok(spec) = ArithSpec::from_problem(p) {
        let steps: Vec<String> = spec
            .steps
            .iter()
            .map(|s| format!("{} = {}", s.expr, s.value))
            .collect();
        s.push_str(&format!("steps: {}\n", steps.join(" ; ")));
    }
    if let Ok(pb) = ProcessBenchRecord::from_problem(p) {
        let label = pb.first_error().map_or_else(
            || "no error".to_string(),
            |k| format!("first error at step {k}"),
        );
        s.push_str(&format!(
            "solution by {}: {} steps, {label}, final answer {}\n",
            pb.generator,
            pb.steps.len(),
            if pb.final_answer_correct {
                "correct"
            } else {
                "wrong"
            }
        ));
    }
    s
}

/// Writes problems to `out`, as JSON lines or described for people (blank line between).
/// A closed pipe ends the output quietly.
pub fn print_problems<W: Write>(out: W, problems: &[Problem], json: bool) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(out);
    let result = (|| {
        for (i, p) in problems.iter().enumerate() {
            if json {
                serde_json::to_writer(&mut out, p)?;
                writeln!(out)?;
            } else {
                if i > 0 {
                    writeln!(out)?;
                }
                write!(out, "{}", describe(p))?;
            }
        }
        out.flush()
    })();
    match result {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Writes problems as they come to `path` (JSONL) or to stdout without a path, one line
/// per problem, holding one problem at a time; returns how many were written. A Parquet
/// `path` needs every row to infer its columns, so those are collected first
/// ([`write_problems`]). A file appears whole or not at all; a closed stdout ends the
/// output quietly.
pub fn write_problem_stream(
    path: Option<&Path>,
    problems: impl IntoIterator<Item = Result<Problem>>,
) -> Result<usize> {
    fn each<W: Write>(
        out: &mut W,
        problems: impl IntoIterator<Item = Result<Problem>>,
        io: impl Fn(std::io::Error) -> DataError,
    ) -> Result<usize> {
        let mut n = 0;
        for p in problems {
            serde_json::to_writer(&mut *out, &p?).map_err(|e| io(e.into()))?;
            out.write_all(b"\n").map_err(&io)?;
            n += 1;
        }
        out.flush().map_err(io)?;
        Ok(n)
    }
    match path {
        Some(path) if Format::from_path(path) == Some(Format::Parquet) => {
            let problems = problems.into_iter().collect::<Result<Vec<_>>>()?;
            write_problems(Some(path), &problems)?;
            Ok(problems.len())
        }
        Some(path) => crate::atomic::write_atomically(path, |file| {
            each(&mut std::io::BufWriter::new(file), problems, |e| {
                DataError::io(path, e)
            })
        }),
        None => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            match each(&mut out, problems, |e| DataError::io("<stdout>", e)) {
                Err(DataError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::BrokenPipe =>
                {
                    Ok(0)
                }
                other => other,
            }
        }
    }
}

/// Writes problems to `path` (Parquet by a `.parquet` extension, else JSONL), or to
/// stdout as JSONL without a path. A file appears whole or not at all.
pub fn write_problems(path: Option<&Path>, problems: &[Problem]) -> Result<()> {
    match path {
        Some(path) if Format::from_path(path) == Some(Format::Parquet) => {
            let mut records = Vec::with_capacity(problems.len());
            for p in problems {
                match serde_json::to_value(p) {
                    Ok(serde_json::Value::Object(m)) => records.push(m),
                    _ => {
                        return Err(DataError::parquet(
                            path,
                            format!("problem {} did not serialize to an object", p.id),
                        ));
                    }
                }
            }
            write_parquet_records(path, &records)
        }
        Some(path) => crate::atomic::write_atomically(path, |file| {
            crate::jsonl::write_jsonl(std::io::BufWriter::new(file), problems)
                .map_err(|e| DataError::io(path, e))
        }),
        None => print_problems(std::io::stdout().lock(), problems, true)
            .map_err(|e| DataError::io("<stdout>", e)),
    }
}
