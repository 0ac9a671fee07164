//! `stepwise verify`: compare answers, one pair from flags or many from a JSONL file.

use crate::Global;
use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use stepwise_verify::{Explanation, Options, Verdict, explain, explain_batch, verify_text};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The reference answer (LaTeX or plain text).
    #[arg(
        long,
        requires = "pred",
        conflicts_with = "jsonl",
        allow_hyphen_values = true
    )]
    pub gold: Option<String>,
    /// The answer to check (a bare answer, or a whole solution with --text).
    #[arg(long, requires = "gold", allow_hyphen_values = true)]
    pub pred: Option<String>,
    /// Treat --pred as a full model solution and extract its final answer first.
    #[arg(long)]
    pub text: bool,
    /// A JSONL file of {"gold": …, "pred": …} records (other fields are copied through as "id" when present).
    #[arg(long, value_name = "FILE", required_unless_present = "gold")]
    pub jsonl: Option<PathBuf>,
    /// Where to write one verdict per line (default: stdout). An existing file is resumed:
    /// records already written are skipped and new ones appended.
    #[arg(long, value_name = "FILE", requires = "jsonl")]
    pub out: Option<PathBuf>,
    /// Count malformed JSONL lines and go on instead of stopping at the first.
    #[arg(long)]
    pub skip_bad: bool,
    /// Decimal places used when a float is compared (math-verify's float_rounding).
    #[arg(long, default_value_t = 6)]
    pub float_rounding: u32,
    /// Let variable names differ (`f(x)` equals `f(y)`); math-verify's strict=False.
    #[arg(long)]
    pub lenient: bool,
    /// Allow a relation to match a set (`x > 1` equals `(1, \infty)`).
    #[arg(long)]
    pub allow_set_relation_comp: bool,
    /// Print the single-pair result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Deserialize)]
struct PairIn {
    gold: String,
    pred: String,
    #[serde(default)]
    id: Option<serde_json::Value>,
}

#[derive(Serialize)]
struct VerdictOut<'a> {
    line: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a serde_json::Value>,
    verdict: Verdict,
    gold: &'a str,
    pred: &'a str,
    gold_parsed: Option<&'a str>,
    pred_parsed: Option<&'a str>,
}

pub fn run(args: Args, g: &Global) -> anyhow::Result<()> {
    let opts = Options {
        float_rounding: args.float_rounding,
        strict: !args.lenient,
        allow_set_relation_comp: args.allow_set_relation_comp,
    };
    match (&args.gold, &args.pred, &args.jsonl) {
        (Some(gold), Some(pred), _) => single(gold, pred, &args, &opts),
        (_, _, Some(path)) => batch(path, &args, &opts, g),
        _ => bail!("give --gold and --pred, or --jsonl FILE"),
    }
}

fn single(gold: &str, pred: &str, args: &Args, opts: &Options) -> anyhow::Result<()> {
    let ex = explain(gold, pred, opts);
    let verdict = if args.text {
        verify_text(gold, pred, opts)
    } else {
        ex.verdict
    };
    if args.json {
        let mut v = serde_json::to_value(&ex).context("encoding the explanation")?;
        v["verdict"] = serde_json::to_value(verdict).context("encoding the verdict")?;
        println!(
            "{}",
            serde_json::to_string_pretty(&v).context("encoding JSON")?
        );
        return Ok(());
    }
    println!("verdict: {}", verdict_word(verdict));
    print_side("gold", &ex.gold);
    print_side("pred", &ex.pred);
    Ok(())
}

fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Equal => "equal",
        Verdict::NotEqual => "not equal",
        Verdict::Undecided => "undecided",
    }
}

fn print_side(name: &str, s: &stepwise_verify::Side) {
    println!("{name}:");
    println!("  extracted:  {} ({:?})", s.extracted.trim(), s.source);
    match (&s.parsed, &s.error) {
        (Some(p), _) => {
            println!("  parsed:     {p}");
            if let Some(n) = &s.normalized
                && n != p
            {
                println!("  normalized: {n}");
            }
        }
        (None, Some(e)) => println!("  parse error: {e}"),
        (None, None) => {}
    }
}

/// Records already in `out` (for resuming).
fn done_lines(out: &Path) -> anyhow::Result<usize> {
    if !out.exists() {
        return Ok(0);
    }
    let f = File::open(out).with_context(|| format!("opening {}", out.display()))?;
    let mut n = 0;
    for line in BufReader::new(f).lines() {
        let line = line.with_context(|| format!("reading {}", out.display()))?;
        if !line.trim().is_empty() {
            n += 1;
        }
    }
    Ok(n)
}

fn batch(path: &Path, args: &Args, opts: &Options, g: &Global) -> anyhow::Result<()> {
    let f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut pairs: Vec<(usize, PairIn)> = Vec::new();
    let mut bad = 0usize;
    for (i, line) in BufReader::new(f).lines().enumerate() {
        let line = line.with_context(|| format!("{}:{}: reading", path.display(), i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<PairIn>(&line) {
            Ok(p) => pairs.push((i + 1, p)),
            Err(e) if args.skip_bad => {
                bad += 1;
                tracing::warn!(
                    file = %path.display(),
                    line = i + 1,
                    error = %e,
                    "skipped malformed record"
                );
            }
            Err(e) => bail!(
                "{}:{}: malformed record (expected {{\"gold\": …, \"pred\": …}}): {e}",
                path.display(),
                i + 1
            ),
        }
    }
    let skip = match &args.out {
        Some(out) => done_lines(out)?,
        None => 0,
    };
    if skip > pairs.len() {
        bail!(
            "{} already holds {skip} verdicts but {} has only {} records",
            args.out.as_deref().unwrap_or(Path::new("-")).display(),
            path.display(),
            pairs.len()
        );
    }
    let mut sink: Box<dyn Write> = match &args.out {
        Some(out) => Box::new(BufWriter::new(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(out)
                .with_context(|| format!("opening {}", out.display()))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    let todo = &pairs[skip..];
    let pb = if g.quiet || args.out.is_none() {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(pairs.len() as u64)
    };
    pb.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} pairs {per_sec} eta {eta}")
            .context("progress bar template")?,
    );
    pb.set_position(skip as u64);
    let mut counts = [0usize; 3];
    for chunk in todo.chunks(2048) {
        let refs: Vec<(&str, &str)> = chunk
            .iter()
            .map(|(_, p)| (p.gold.as_str(), p.pred.as_str()))
            .collect();
        let results: Vec<Explanation> = explain_batch(&refs, opts);
        for ((line, p), ex) in chunk.iter().zip(&results) {
            counts[match ex.verdict {
                Verdict::Equal => 0,
                Verdict::NotEqual => 1,
                Verdict::Undecided => 2,
            }] += 1;
            let rec = VerdictOut {
                line: *line,
                id: p.id.as_ref(),
                verdict: ex.verdict,
                gold: &p.gold,
                pred: &p.pred,
                gold_parsed: ex.gold.parsed.as_deref(),
                pred_parsed: ex.pred.parsed.as_deref(),
            };
            serde_json::to_writer(&mut sink, &rec).context("writing a verdict")?;
            sink.write_all(b"\n").context("writing a verdict")?;
        }
        // Flush per chunk so an interrupted run resumes from here.
        sink.flush().context("flushing verdicts")?;
        pb.inc(chunk.len() as u64);
    }
    pb.finish_and_clear();
    if !g.quiet {
        eprintln!(
            "{} pairs: {} equal, {} not equal, {} undecided{}{}",
            todo.len(),
            counts[0],
            counts[1],
            counts[2],
            if skip > 0 {
                format!(" ({skip} already done, resumed)")
            } else {
                String::new()
            },
            if bad > 0 {
                format!("; {bad} malformed lines skipped")
            } else {
                String::new()
            }
        );
    }
    Ok(())
}
