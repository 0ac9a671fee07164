//! `stepwise data sft`, `data pairs` (training data builders) and the task families of
//! `data gen` beyond `arith`.

use crate::Global;
use crate::cmd::backend::BackendArgs;
use crate::cmd::data::Family;
use crate::cmd::jobargs::{StoreArgs, run_options};
use anyhow::Context as _;
use std::path::{Path, PathBuf};
use stepwise_build::{BuildConfig, BuildSpec, Dedup, Filters, PairRule, SftFormat, SftRule};
use stepwise_data::arith::ArithConfig;

/// Flags of the builders that pick and filter candidates.
#[derive(clap::Args, Debug)]
pub struct SourceArgs {
    /// A stored solve, scale or annotate run to read (repeat: a teacher's run is one more
    /// source).
    #[arg(long = "from", value_name = "RUN", required = true)]
    from: Vec<i64>,
    /// Output file (.jsonl or .parquet); the manifest goes to OUT.manifest.json.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    #[arg(long)]
    min_tokens: Option<u64>,
    #[arg(long)]
    max_tokens: Option<u64>,
    #[arg(long)]
    min_steps: Option<usize>,
    #[arg(long)]
    max_steps: Option<usize>,
    /// Only samples that stated a final answer by themselves.
    #[arg(long)]
    require_answer: bool,
    /// Continue this data-build run.
    #[arg(long, value_name = "RUN_ID")]
    resume: Option<i64>,
    #[command(flatten)]
    store: StoreArgs,
}

impl SourceArgs {
    fn filters(&self) -> Filters {
        Filters {
            min_tokens: self.min_tokens,
            max_tokens: self.max_tokens,
            min_steps: self.min_steps,
            max_steps: self.max_steps,
            require_answer: self.require_answer,
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct SftArgs {
    /// verified, majority[:MIN_VOTES], top:K (by stored score), shortest, or good-steps
    /// (annotate runs: every step labelled good).
    #[arg(long, default_value = "verified")]
    rule: SftRule,
    /// none, answer, or text (near-identical texts: word-trigram Jaccard >= --similar).
    #[arg(long, default_value = "text")]
    dedup: String,
    #[arg(long, default_value_t = 0.9)]
    similar: f64,
    /// Row layout: messages, or prompt-completion.
    #[arg(long, default_value = "messages")]
    format: String,
    #[command(flatten)]
    source: SourceArgs,
}

#[derive(clap::Args, Debug)]
pub struct PairsArgs {
    /// verified[:MARGIN], contrastive[:MIN_VOTES], intervention:arith[:TRIES],
    /// intervention:score<T[:TRIES], intervention:labels[:TRIES] (annotate runs: at the
    /// first step labelled bad), or likert-judgments (runs scored by `--scorer likert`:
    /// each sample's best- and worst-rated judgments, the judge prompt as the prompt).
    #[arg(long, default_value = "verified")]
    rule: PairRule,
    /// Most pairs per problem.
    #[arg(long, default_value_t = 4)]
    max_pairs: usize,
    /// Each side gains its rationale (chosen_rationale, rejected_rationale).
    #[arg(long)]
    enrich: bool,
    #[command(flatten)]
    source: SourceArgs,
    #[command(flatten)]
    backend: BackendArgs,
}

/// Flags of the task families of `data gen`.
#[derive(clap::Args, Debug)]
pub struct TaskArgs {
    /// knights: inhabitants per puzzle.
    #[arg(long, default_value_t = 3)]
    people: usize,
    /// knights: nesting depth of statements.
    #[arg(long, default_value_t = 2)]
    depth: usize,
    /// h1: shortest chain.
    #[arg(long, default_value_t = 1)]
    min_len: usize,
    /// h1: longest chain (chains of each length in between, shortest first).
    #[arg(long, default_value_t = 3)]
    max_len: usize,
    /// h1: the GSM8K problems chained (a dataset spec).
    #[arg(long, default_value = "gsm8k:train")]
    source: String,
    /// masked: the corpus (.jsonl or .parquet records, or a text file: one passage per paragraph).
    #[arg(long, value_name = "FILE")]
    corpus: Option<PathBuf>,
    /// masked: the record field holding the text.
    #[arg(long, default_value = "text")]
    field: String,
    /// noisy: demonstrations per prompt.
    #[arg(long, default_value_t = 3)]
    shots: usize,
    /// noisy: irrelevant or inaccurate.
    #[arg(long, default_value = "irrelevant")]
    noise: stepwise_data::noisy::NoiseKind,
    /// noisy: chance a clean thought is followed by a noisy one (NoRa: 0.3, 0.5, 0.8).
    #[arg(long, default_value_t = 0.5)]
    ratio: f64,
}

fn run_build(
    source: &SourceArgs,
    spec: BuildSpec,
    policy: Option<std::sync::Arc<dyn stepwise_model::Generator>>,
    policy_name: Option<String>,
    g: &Global,
) -> anyhow::Result<()> {
    let store = source.store.open()?;
    let config = BuildConfig {
        sources: source.from.clone(),
        spec,
        filters: source.filters(),
        policy: policy_name,
    };
    let opts = run_options(source.resume, 1, g);
    let s = crate::cmd::runtime()?
        .block_on(stepwise_build::build(
            store.as_ref(),
            config,
            policy,
            &source.out,
            &opts,
        ))
        .context("building training data")?;
    if !g.quiet {
        eprintln!(
            "wrote {} rows for {} of {} problems to {} (manifest {}; counts {:?})",
            s.manifest.rows,
            s.manifest.problems_with_rows,
            s.manifest.problems,
            source.out.display(),
            s.manifest_path.display(),
            s.manifest.counts
        );
    }
    Ok(())
}

pub fn sft(a: SftArgs, g: &Global) -> anyhow::Result<()> {
    let dedup = match a.dedup.as_str() {
        "none" => Dedup::None,
        "answer" => Dedup::Answer,
        "text" => Dedup::Text {
            threshold: a.similar,
        },
        o => anyhow::bail!("--dedup '{o}': expected none, answer or text"),
    };
    let format = match a.format.as_str() {
        "messages" => SftFormat::Messages,
        "prompt-completion" | "prompt_completion" => SftFormat::PromptCompletion,
        o => anyhow::bail!("--format '{o}': expected messages or prompt-completion"),
    };
    let spec = BuildSpec::Sft {
        rule: a.rule,
        dedup,
        format,
    };
    run_build(&a.source, spec, None, None, g)
}

pub fn pairs(a: PairsArgs, g: &Global) -> anyhow::Result<()> {
    let (policy, name) = if matches!(a.rule, PairRule::Intervention { .. }) {
        let p = a.backend.deterministic_by_default(true).open()?;
        let n = p.name();
        (Some(p), Some(n))
    } else {
        (None, None)
    };
    let spec = BuildSpec::Pairs {
        rule: a.rule,
        max_pairs: a.max_pairs,
        enrich: a.enrich,
    };
    run_build(&a.source, spec, policy, name, g)
}

/// Passages of a corpus file: records' `field`, or paragraphs of a text file.
fn passages(path: &Path, field: &str) -> anyhow::Result<Vec<(String, String)>> {
    if stepwise_data::parquet_io::Format::from_path(path).is_some() {
        let recs = stepwise_data::parquet_io::read_records(path)?;
        return Ok(recs
            .into_iter()
            .filter_map(|r| {
                let t = r.value.get(field)?.as_str()?.to_string();
                Some((format!("{}", r.line), t))
            })
            .collect());
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text
        .split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .enumerate()
        .map(|(i, p)| (i.to_string(), p.to_string()))
        .collect())
}

/// `data gen knights|h1|masked|noisy`.
pub fn generate(
    family: Family,
    t: &TaskArgs,
    arith: ArithConfig,
    out: Option<&Path>,
    g: &Global,
) -> anyhow::Result<()> {
    let write = |it: Box<
        dyn Iterator<Item = stepwise_data::Result<stepwise_core::Problem>> + '_,
    >| { stepwise_data::show::write_problem_stream(out, it) };
    let bad = |m: String| stepwise_data::DataError::BadSpec {
        spec: "data gen".into(),
        message: m,
    };
    let n = match family {
        Family::Arith => anyhow::bail!("arith is generated by data gen itself"),
        Family::Knights => {
            let c = stepwise_tasks::knights::KnightsConfig {
                people: t.people,
                depth: t.depth,
                n: arith.n,
                seed: arith.seed,
            };
            c.validate().map_err(anyhow::Error::msg)?;
            write(Box::new(
                stepwise_tasks::knights::problems(&c).map(|r| r.map_err(bad)),
            ))?
        }
        Family::H1 => {
            let sources = stepwise_data::load_spec(&t.source, None, g.data_dir.as_deref())?;
            let c = stepwise_tasks::h1::H1Config {
                min_len: t.min_len.max(1),
                max_len: t.max_len.max(t.min_len.max(1)),
                n: arith.n,
                seed: arith.seed,
            };
            write(Box::new(stepwise_tasks::h1::problems(&c, &sources).map(Ok)))?
        }
        Family::Masked => {
            let path = t
                .corpus
                .as_deref()
                .context("data gen masked needs --corpus FILE")?;
            let ps = passages(path, &t.field)?;
            write(Box::new(
                stepwise_tasks::masked::problems(ps, arith.seed)
                    .take(arith.n)
                    .map(Ok),
            ))?
        }
        Family::Noisy => {
            let c = stepwise_data::noisy::NoisyConfig {
                arith,
                shots: t.shots,
                noise: t.noise,
                ratio: t.ratio,
            };
            let items: Vec<_> = stepwise_data::noisy::problems(&c).collect();
            write(Box::new(items.into_iter()))?
        }
    };
    if !g.quiet {
        eprintln!("generated {n} problem(s)");
    }
    Ok(())
}
