//! `stepwise head`: train a PRM head on the model's hidden states, and inspect one.

use crate::Global;
use crate::out::outln;
use anyhow::{Context, bail};
use clap::Subcommand;
use std::path::PathBuf;
use stepwise_annotate::formats::ExportFormat;
use stepwise_eval::processbench;
use stepwise_score::{
    Arch, DEFAULT_SEPARATOR, LabelledRecord, PrmHead, Targets, TrainConfig, extract_features,
    records_from_run, train_head,
};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand, Debug)]
enum What {
    /// Train a head: hidden state at the end of each step → P(step is good), by logistic
    /// regression or a small MLP, on hard labels (good until the first error, the first
    /// error bad, later steps unused), soft MC values, or outcomes (every step labelled by
    /// the solution's final answer: an OVM value head). Features are cached and the
    /// extraction resumes. Reports AUROC, ECE and Brier on a held-out split.
    Train(Box<TrainArgs>),
    /// Print a head file's summary.
    Show {
        /// The head file (JSON, written by `stepwise head train`).
        path: PathBuf,
    },
}

#[derive(clap::Args, Debug)]
struct TrainArgs {
    /// ProcessBench subsets as `processbench:SUBSET[,SUBSET]` (gsm8k, math, olympiadbench,
    /// omnimath), read from the data folder.
    #[arg(long, value_name = "processbench:SUBSETS")]
    data: Option<String>,
    /// Labelled steps in an export format (see --format).
    #[arg(long, value_name = "FILE")]
    labels: Option<PathBuf>,
    /// Format of --labels: math-shepherd, trl, prm800k, openr, processbench or native
    /// (only native keeps soft values; native and processbench keep outcomes).
    #[arg(long, default_value = "native", requires = "labels")]
    format: String,
    /// Stored runs to read labelled records from (repeat for several): `annotate` runs
    /// (hard labels, soft MC values, outcomes) and `solve` / `scale` runs (every sample,
    /// with whether its final answer is correct: outcome labels).
    #[arg(long = "run", value_name = "RUN_ID")]
    runs: Vec<i64>,
    /// The run store holding --run (opened read-only).
    #[arg(long, env = "STEPWISE_STORE", value_name = "PATH|URL", default_value_os_t = stepwise_store::default_store_path())]
    store: PathBuf,
    /// What the head learns per step: `hard` (good until the first error), `soft` (MC
    /// values as targets in 0..1) or `outcome` (the final answer's correctness on every
    /// step: an outcome-supervised value head, Yu et al. 2023).
    #[arg(long, default_value = "hard")]
    targets: Targets,
    /// The head: `logistic` regression, or `mlp` (one tanh hidden layer of --hidden units).
    #[arg(long, default_value = "logistic")]
    arch: Arch,
    /// Hidden units of an MLP head.
    #[arg(long, default_value_t = TrainConfig::default().hidden)]
    hidden: usize,
    /// Use at most N records of each source.
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// With --limit on ProcessBench: half the records without an error, half with one
    /// (the shipped files list erroneous records first).
    #[arg(long, requires = "limit")]
    balanced: bool,
    /// The head file to write.
    #[arg(long, default_value = "head.json")]
    out: PathBuf,
    /// Feature cache folder (default: `OUT.cache/` beside --out): a run store
    /// (`features.sqlite`) whose runs hold one record's features per unit. Rerunning the
    /// same command reuses the stored features and continues an interrupted extraction.
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
    /// Run store of the feature runs instead of the cache's `features.sqlite`: a
    /// PostgreSQL URL shared with `stepwise worker --run RUN_ID` on other machines, which
    /// extract features of the same run.
    #[arg(long, value_name = "PATH|URL")]
    features_store: Option<String>,
    /// Continue feature run RUN_ID of the cache (default: the newest run of the same
    /// model and records, finished or not).
    #[arg(long, value_name = "RUN_ID")]
    resume: Option<i64>,
    /// L2 penalty on the weights (over standardized features). The default is strong:
    /// labelled steps are few next to 576 features (on 265 ProcessBench MATH records,
    /// validation AUROC 0.65 at 0.01, 0.70 at 1).
    #[arg(long, default_value_t = TrainConfig::default().l2)]
    l2: f64,
    /// Full-batch optimisation steps (Adam).
    #[arg(long, default_value_t = TrainConfig::default().epochs)]
    epochs: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = TrainConfig::default().learning_rate)]
    lr: f64,
    /// Weigh good and bad steps as they occur instead of balancing the two classes.
    #[arg(long)]
    no_balance: bool,
    /// Fraction of records held out for validation (split by record, seeded).
    #[arg(long, default_value_t = TrainConfig::default().val_frac)]
    val_frac: f64,
    /// Seed of the train/validation split.
    #[arg(long, default_value_t = TrainConfig::default().seed)]
    seed: u64,
    #[command(flatten)]
    backend: crate::cmd::backend::BackendArgs,
}

pub fn run(args: Args, g: &Global) -> anyhow::Result<()> {
    match args.what {
        What::Train(a) => train(*a, g),
        What::Show { path } => {
            let head = PrmHead::load(&path)?;
            outln!("{}", head.summary())?;
            Ok(())
        }
    }
}

fn load_records(a: &TrainArgs, g: &Global) -> anyhow::Result<(Vec<LabelledRecord>, String)> {
    let mut records = Vec::new();
    let mut sources = Vec::new();
    if let Some(spec) = &a.data {
        let Some(subsets) = spec.strip_prefix("processbench:") else {
            bail!("--data takes processbench:SUBSET[,SUBSET] (got '{spec}')");
        };
        let dir = stepwise_data::data_dir(g.data_dir.as_deref())?;
        records.extend(processbench::labelled_records(
            &dir, subsets, a.limit, a.balanced,
        )?);
        sources.push(spec.clone());
    }
    if let Some(path) = &a.labels {
        let format: ExportFormat = a
            .format
            .parse()
            .map_err(|e: String| anyhow::anyhow!(e))
            .context("--format")?;
        let recs = stepwise_annotate::formats::read(path, format)
            .with_context(|| format!("reading labels from {}", path.display()))?;
        let n = a.limit.unwrap_or(usize::MAX);
        records.extend(
            recs.into_iter()
                .take(n)
                .enumerate()
                .map(|(i, r)| LabelledRecord {
                    id: format!(
                        "{}#{i}:{}",
                        path.display(),
                        r.problem_id.as_deref().unwrap_or("")
                    ),
                    question: r.question,
                    steps: r.steps,
                    good: r.good,
                    values: r.values,
                    answer_correct: r.answer_correct,
                }),
        );
        sources.push(format!("{} ({})", path.display(), a.format));
    }
    if !a.runs.is_empty() {
        let spec = a.store.to_string_lossy();
        let store = stepwise_store::open_read_only(&spec)
            .with_context(|| format!("opening the run store {spec}"))?;
        for &run in &a.runs {
            let (recs, what) = records_from_run(store.as_ref(), run)
                .with_context(|| format!("--run {run} of {spec}"))?;
            records.extend(recs.into_iter().take(a.limit.unwrap_or(usize::MAX)));
            sources.push(what);
        }
    }
    if sources.is_empty() {
        bail!(
            "give labelled steps with --data processbench:SUBSET, --labels FILE and/or --run RUN_ID"
        );
    }
    Ok((records, sources.join(" + ")))
}

fn train(a: TrainArgs, g: &Global) -> anyhow::Result<()> {
    let (records, data) = load_records(&a, g)?;
    if records.is_empty() {
        bail!("no labelled records in {data}");
    }
    let cache_dir = a.cache.clone().unwrap_or_else(|| {
        let mut p = a.out.clone().into_os_string();
        p.push(".cache");
        PathBuf::from(p)
    });
    // the feature cache is a run store of its own: one run per (model, records)
    let cache = a.features_store.clone().unwrap_or_else(|| {
        cache_dir
            .join("features.sqlite")
            .to_string_lossy()
            .into_owned()
    });
    let store = stepwise_store::open(&cache).context("opening the feature store")?;
    let generator = a.backend.open().context("opening the model")?;
    let model = generator.name();
    let mut opts = crate::cmd::jobargs::run_options(a.resume, 1, g);
    if a.resume.is_none() {
        // the cache: the features of the same model and records, finished or not
        opts.resume = stepwise_jobs::Resume::Reuse;
    }
    let started = std::time::Instant::now();
    let extracted = crate::cmd::runtime()?
        .block_on(extract_features(
            store.as_ref(),
            generator.as_ref(),
            &records,
            DEFAULT_SEPARATOR,
            &data,
            a.targets,
            &opts,
        ))
        .with_context(|| {
            format!(
                "extracting features (kept in {}; rerun to resume)",
                store.location()
            )
        })?;
    let p = extracted.progress;
    let extract_s = started.elapsed().as_secs_f64();
    eprintln!(
        "features: {} records ({} already stored, {} skipped), {} tokens read, {extract_s:.1} s",
        extracted.records.len(),
        p.cached,
        p.skipped,
        p.tokens
    );

    let cfg = TrainConfig {
        l2: a.l2,
        epochs: a.epochs,
        learning_rate: a.lr,
        class_balanced: TrainConfig::default().class_balanced && !a.no_balance,
        val_frac: a.val_frac,
        seed: a.seed,
        arch: a.arch,
        hidden: a.hidden,
    };
    let t0 = std::time::Instant::now();
    let head = train_head(
        &extracted.records,
        &model,
        DEFAULT_SEPARATOR,
        &data,
        a.targets,
        &cfg,
    )
    .context("training the head")?;
    let fit_s = t0.elapsed().as_secs_f64();
    head.save(&a.out)?;
    outln!("{}", head.summary())?;
    outln!(
        "wrote {} (features {extract_s:.1} s, fit {fit_s:.1} s); use it with --scorer head:{}",
        a.out.display(),
        a.out.display()
    )?;
    Ok(())
}
