//! `stepwise data`: inspect, generate and convert datasets; list and export runs.

use crate::Global;
use clap::{Subcommand, ValueEnum};
use std::path::PathBuf;
use stepwise_data::arith::{ArithConfig, ArithKind, parse_opset};
use stepwise_data::{Dataset, LoadOptions, load};
use stepwise_store::default_store_path;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: DataCommand,
}

#[derive(Subcommand, Debug)]
enum DataCommand {
    /// Print problems with their parsed gold answers.
    ///
    /// DATASET is gsm8k:test, gsm8k:train, math500, processbench:{gsm8k,math,olympiadbench,omnimath},
    /// arith:ops=2,n=100,seed=7 (generated), or a .jsonl/.parquet file.
    Show(ShowArgs),
    /// Generate a synthetic task family as JSONL (to stdout unless --out).
    Gen(GenArgs),
    /// Convert between JSONL and Parquet (by file extension).
    Convert {
        /// Input file (.jsonl or .parquet).
        input: PathBuf,
        /// Output file (.jsonl or .parquet).
        output: PathBuf,
    },
    /// List the runs in the run store.
    Runs {
        #[command(flatten)]
        store: StoreArg,
        /// One JSON object per run instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Build TRL SFT data from stored solve/scale runs (a `data-build` job).
    Sft(super::data_build::SftArgs),
    /// Build TRL DPO preference pairs from stored solve/scale runs (a `data-build` job).
    Pairs(super::data_build::PairsArgs),
    /// Export a run's finished units (samples, step scores, labels) to JSONL or Parquet.
    Export {
        /// The run id (see `stepwise data runs`).
        run: i64,
        #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
        format: ExportFormat,
        /// Output file; `-` or absent writes JSONL to stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        #[command(flatten)]
        store: StoreArg,
    },
}

#[derive(clap::Args, Debug)]
struct StoreArg {
    /// The run store (a SQLite file or a `postgres://` URL).
    #[arg(long, env = "STEPWISE_STORE", value_name = "FILE|URL", default_value_os_t = default_store_path())]
    store: PathBuf,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub(crate) enum ExportFormat {
    Jsonl,
    Parquet,
}

#[derive(clap::Args, Debug)]
struct ShowArgs {
    /// The dataset (see above).
    dataset: String,
    /// Show at most N problems.
    #[arg(long, value_name = "N", default_value_t = 5)]
    limit: usize,
    /// Show every problem (overrides --limit).
    #[arg(long)]
    all: bool,
    /// One JSON object per problem (the full Problem) instead of text.
    #[arg(long)]
    json: bool,
    /// Continue past malformed records, counting them, instead of stopping at the first.
    #[arg(long)]
    skip_bad: bool,
    /// For files: the field holding the question (default: question, problem, prompt, input).
    #[arg(long, value_name = "FIELD")]
    question_field: Option<String>,
    /// For files: the field holding the gold answer (default: gold, answer, final_answer, target).
    #[arg(long, value_name = "FIELD")]
    gold_field: Option<String>,
    /// For files: how to read the gold field: `verbatim`, or extraction rules such as
    /// `gsm8k` or `boxed,answer-is` (default: `#### N` when present, else verbatim).
    #[arg(long, value_name = "RULES")]
    gold_rule: Option<String>,
    /// For files: the field holding the reference solution.
    #[arg(long, value_name = "FIELD")]
    reference_field: Option<String>,
    /// For files: the field holding the id (default: id, unique_id, problem_id, idx).
    #[arg(long, value_name = "FIELD")]
    id_field: Option<String>,
}

#[derive(clap::Args, Debug)]
struct GenArgs {
    /// The task family.
    #[arg(value_enum)]
    family: Family,
    /// Operations per problem (difficulty).
    #[arg(long, default_value_t = 1)]
    ops: usize,
    /// Number of problems.
    #[arg(long = "n", default_value_t = 100)]
    n: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Digits of every operand (difficulty).
    #[arg(long, default_value_t = 1)]
    digits: u32,
    /// `chain` (an expression) or `word` (a short story).
    #[arg(long, default_value = "chain")]
    kind: ArithKind,
    /// Operations to draw from, e.g. `+-*` or `+*/`.
    #[arg(long, default_value = "+-*")]
    opset: String,
    /// Write to this file instead of stdout (.jsonl, or .parquet).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) tasks: super::data_build::TaskArgs,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub(crate) enum Family {
    /// Multi-step integer problems with exact intermediate values.
    Arith,
    /// Knights and Knaves puzzles with a unique solution (--people, --depth).
    Knights,
    /// GSM8K problems chained so one answer is a quantity of the next (--min-len, --max-len).
    H1,
    /// Informative spans of a corpus masked (--corpus FILE, --field).
    Masked,
    /// Few-shot arith demos with noisy rationales (NoRa: --shots, --noise, --ratio).
    Noisy,
}

pub fn run(args: Args, g: &Global) -> anyhow::Result<()> {
    match args.command {
        DataCommand::Show(a) => show(a, g),
        DataCommand::Gen(a) => generate(a, g),
        DataCommand::Convert { input, output } => {
            let n = stepwise_data::parquet_io::convert(&input, &output)?;
            if !g.quiet {
                eprintln!("wrote {n} records to {}", output.display());
            }
            Ok(())
        }
        DataCommand::Sft(a) => super::data_build::sft(a, g),
        DataCommand::Pairs(a) => super::data_build::pairs(a, g),
        DataCommand::Runs { store, json } => super::data_runs::runs(&store.store, json),
        DataCommand::Export {
            run,
            format,
            out,
            store,
        } => super::data_runs::export(run, format, out, &store.store, g),
    }
}

fn show(a: ShowArgs, g: &Global) -> anyhow::Result<()> {
    let dataset: Dataset = a.dataset.parse()?;
    let overrides = stepwise_data::mapping::FieldOverrides {
        question: a.question_field.clone(),
        gold: a.gold_field.clone(),
        reference: a.reference_field.clone(),
        id: a.id_field.clone(),
        gold_rule: a.gold_rule.clone(),
    };
    let field_map = overrides.apply(&dataset).map_err(anyhow::Error::msg)?;
    let opts = LoadOptions {
        data_dir: g.data_dir.clone(),
        skip_bad: a.skip_bad,
        limit: (!a.all).then_some(a.limit),
        field_map,
    };
    let loaded = load(&dataset, &opts)?;
    stepwise_data::show::print_problems(std::io::stdout().lock(), &loaded.problems, a.json)
        .map_err(crate::out::error)?;
    if !g.quiet {
        let source = loaded
            .source
            .as_ref()
            .map(|p| format!(" from {}", p.display()))
            .unwrap_or_default();
        eprintln!(
            "{} problem(s) of {dataset}{source}; {} bad record(s) skipped",
            loaded.problems.len(),
            loaded.skipped.len()
        );
    }
    Ok(())
}

fn generate(a: GenArgs, g: &Global) -> anyhow::Result<()> {
    let config = ArithConfig {
        ops: a.ops,
        n: a.n,
        seed: a.seed,
        digits: a.digits,
        kind: a.kind,
        opset: parse_opset(&a.opset).map_err(anyhow::Error::msg)?,
    };
    config.validate().map_err(anyhow::Error::msg)?;
    if !matches!(a.family, Family::Arith) {
        return super::data_build::generate(a.family, &a.tasks, config, a.out.as_deref(), g);
    }
    // one problem at a time: `--n 2000000` holds no more than `--n 1`
    let n = stepwise_data::show::write_problem_stream(
        a.out.as_deref(),
        stepwise_data::arith::problems(&config),
    )?;
    if !g.quiet {
        eprintln!("generated {n} problem(s) of arith:{}", config.to_spec());
    }
    Ok(())
}
