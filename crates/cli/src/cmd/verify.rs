//! `stepwise verify`: compare answers, one pair from flags or many from a JSONL file.

use crate::Global;
use crate::cmd::jobargs::{StoreArgs, run_options};
use crate::out::outln;
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use stepwise_jobs::verify::{Output, verify_file};
use stepwise_verify::{Options, Verdict, explain, verify_text};

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
    /// Where to write one verdict per line, in input order, once all are verified
    /// (default: stdout, streamed). With a file the run is kept in the run store:
    /// rerunning the same command continues an interrupted run.
    #[arg(long, value_name = "FILE", requires = "jsonl")]
    pub out: Option<PathBuf>,
    /// With --out: continue run RUN_ID of the store.
    #[arg(long, value_name = "RUN_ID", requires = "out")]
    pub resume: Option<i64>,
    #[command(flatten)]
    pub store: StoreArgs,
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

pub fn run(args: Args, g: &Global) -> anyhow::Result<()> {
    let opts = Options {
        float_rounding: args.float_rounding,
        strict: !args.lenient,
        allow_set_relation_comp: args.allow_set_relation_comp,
        ..Options::default()
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
        outln!(
            "{}",
            serde_json::to_string_pretty(&v).context("encoding JSON")?
        )?;
        return Ok(());
    }
    outln!("verdict: {}", verdict_word(verdict))?;
    print_side("gold", &ex.gold)?;
    print_side("pred", &ex.pred)
}

fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Equal => "equal",
        Verdict::NotEqual => "not equal",
        Verdict::Undecided => "undecided",
    }
}

fn print_side(name: &str, s: &stepwise_verify::Side) -> anyhow::Result<()> {
    outln!("{name}:")?;
    outln!("  extracted:  {} ({:?})", s.extracted.trim(), s.source)?;
    match (&s.parsed, &s.error) {
        (Some(p), _) => {
            outln!("  parsed:     {p}")?;
            if let Some(n) = &s.normalized
                && n != p
            {
                outln!("  normalized: {n}")?;
            }
        }
        (None, Some(e)) => outln!("  parse error: {e}")?,
        (None, None) => {}
    }
    Ok(())
}

fn batch(path: &Path, args: &Args, opts: &Options, g: &Global) -> anyhow::Result<()> {
    let output = match &args.out {
        Some(p) => Output::File(p.clone()),
        None => Output::Stdout,
    };
    let store = args.store.open()?;
    // with --out, rerunning the same command continues its unfinished run
    let mut run = run_options(args.resume, 1, g);
    if args.resume.is_none() {
        run.resume = stepwise_jobs::Resume::Matching;
    }
    run.progress &= args.out.is_some();
    let s = crate::cmd::runtime()?.block_on(verify_file(
        store.as_ref(),
        path,
        opts.clone(),
        args.skip_bad,
        &output,
        &run,
    ))?;
    if !g.quiet {
        eprintln!(
            "{} pairs: {} equal, {} not equal, {} undecided{}{}",
            s.pairs,
            s.counts.equal,
            s.counts.not_equal,
            s.counts.undecided,
            if s.resumed_chunks > 0 {
                format!(
                    " ({} chunks already done in run {}, resumed)",
                    s.resumed_chunks, s.run
                )
            } else {
                String::new()
            },
            if s.skipped_lines > 0 {
                format!("; {} malformed lines skipped", s.skipped_lines)
            } else {
                String::new()
            }
        );
    }
    Ok(())
}
