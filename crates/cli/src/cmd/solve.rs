//! `stepwise solve`: a test-time search strategy with step scorers over a dataset.

use super::backend::BackendArgs;
use crate::Global;
use anyhow::{Context as _, bail};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use stepwise_core::{Aggregation, Budget, Delimiter, StepSplitter};
use stepwise_data::{Dataset, LoadOptions, RunStore, load};
use stepwise_model::Generator;
use stepwise_score::{JudgeTemplate, PolicyPrompt, Reasoning, ScorerSettings, build_scorer};
use stepwise_search::scale::ScaleStrategy;
use stepwise_search::{Context, Mcts, Strategy, record};

/// Settings shared by `solve` and `scale`: sampling, search shape, scorers, prompts.
#[derive(clap::Args, Debug, Clone)]
pub struct SearchArgs {
    /// Step scorer: outcome, arith, rollout, judge, self-judge, prm:URL (a PRM server, see
    /// --prm-protocol), or a product like `arith*judge`.
    #[arg(long, value_name = "NAME")]
    pub scorer: Option<String>,
    /// How step scores combine into a rationale score: last, min, prod, mean.
    #[arg(long, default_value = "min")]
    pub aggregation: Aggregation,
    /// Sampling temperature of the policy.
    #[arg(long, default_value_t = 0.7)]
    pub temperature: f32,
    /// Most tokens of one whole answer.
    #[arg(long, default_value_t = 256)]
    pub max_tokens: u32,
    /// Most tokens of one step (tree search).
    #[arg(long, default_value_t = 96)]
    pub max_step_tokens: u32,
    /// Base seed (sample i of a call is the same whatever n is).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Step delimiter: blank, step, line or custom:SEP.
    #[arg(long, default_value = "blank")]
    pub delimiter: Delimiter,
    /// Expansions per beam / per node (beam, vbeam, dvts, mcts).
    #[arg(long, default_value_t = 4)]
    pub expansions: usize,
    /// Most steps of a tree search.
    #[arg(long, default_value_t = 8)]
    pub max_steps: usize,
    /// Lookahead steps of beam search.
    #[arg(long, default_value_t = 0)]
    pub lookahead: usize,
    /// PUCT exploration constant of mcts.
    #[arg(long, default_value_t = 1.5)]
    pub c_puct: f64,
    /// Rollouts per step of the `rollout` scorer.
    #[arg(long, default_value_t = 4)]
    pub rollouts: usize,
    /// Judgments averaged per step by `judge` / `self-judge` (with --judge-reasoning).
    #[arg(long, default_value_t = 1)]
    pub judgments: usize,
    /// Let the judge write up to this many tokens of reasoning before its verdict.
    #[arg(long, value_name = "TOKENS")]
    pub judge_reasoning: Option<u32>,
    /// Policy prompt template (see crates/score/prompts/policy.txt).
    #[arg(long, value_name = "PATH")]
    pub policy_prompt: Option<PathBuf>,
    /// Judge prompt template (see crates/score/prompts/judge.txt).
    #[arg(long, value_name = "PATH")]
    pub judge_prompt: Option<PathBuf>,
    /// GGUF model of the judge (default: the policy's backend).
    #[arg(long, value_name = "PATH.gguf")]
    pub judge_model: Option<PathBuf>,
    /// OpenAI-compatible endpoint of the judge (default: the policy's backend).
    #[arg(long, value_name = "URL")]
    pub judge_endpoint: Vec<String>,
    /// Problems solved at the same time (the backend batches their requests).
    #[arg(long, default_value_t = 4)]
    pub jobs: usize,
    /// Run store (SQLite) for resumable runs.
    #[arg(long, value_name = "PATH", default_value = ".stepwise/runs.sqlite")]
    pub store: PathBuf,
    #[command(flatten)]
    pub prm: crate::cmd::backend::PrmArgs,
}

impl SearchArgs {
    /// The policy and judge backends, the context with its scorer.
    pub fn context(&self, backend: &BackendArgs) -> anyhow::Result<Context> {
        let policy = backend.open().context("opening the policy model")?;
        let judge: Option<Arc<dyn Generator>> =
            if self.judge_model.is_some() || !self.judge_endpoint.is_empty() {
                let b = BackendArgs {
                    model: self.judge_model.clone(),
                    endpoint: self.judge_endpoint.clone(),
                    ..backend.clone()
                };
                Some(b.open().context("opening the judge model")?)
            } else {
                None
            };
        let policy_prompt = match &self.policy_prompt {
            Some(p) => PolicyPrompt::load(p)?,
            None => PolicyPrompt::default(),
        };
        let judge_template = match &self.judge_prompt {
            Some(p) => JudgeTemplate::load(p)?,
            None => JudgeTemplate::default(),
        };
        let mut ctx = Context::new(policy.clone());
        ctx.prompt = policy_prompt.clone();
        ctx.splitter = StepSplitter::new(self.delimiter.clone());
        ctx.sampling.temperature = self.temperature;
        ctx.sampling.max_tokens = self.max_tokens;
        ctx.sampling.seed = self.seed;
        ctx.max_step_tokens = self.max_step_tokens;
        ctx.aggregation = self.aggregation;
        if let Some(spec) = &self.scorer {
            let settings = ScorerSettings {
                policy_prompt,
                judge_template,
                rollouts: self.rollouts,
                rollout_params: ctx.sampling.clone(),
                judgments: self.judgments,
                reasoning: self.judge_reasoning.map(|t| Reasoning {
                    max_tokens: t,
                    ..Reasoning::default()
                }),
                seed: self.seed,
                prm: self.prm.settings(),
                ..ScorerSettings::default()
            };
            ctx.scorer = Some(build_scorer(spec, Some(policy), judge, &settings)?);
        }
        Ok(ctx)
    }

    /// Settings that change results, for the run store's resume check.
    pub fn fingerprint(&self) -> serde_json::Value {
        serde_json::json!({
            "scorer": self.scorer, "aggregation": self.aggregation.name(),
            "temperature": self.temperature, "max_tokens": self.max_tokens,
            "max_step_tokens": self.max_step_tokens, "seed": self.seed,
            "delimiter": self.delimiter.to_string(), "expansions": self.expansions,
            "max_steps": self.max_steps, "lookahead": self.lookahead, "c_puct": self.c_puct,
            "rollouts": self.rollouts, "judgments": self.judgments,
            "judge_reasoning": self.judge_reasoning, "policy_prompt": self.policy_prompt,
            "judge_prompt": self.judge_prompt, "judge_model": self.judge_model,
            "judge_endpoint": self.judge_endpoint,
        })
    }
}

/// Loads a dataset by name (`gsm8k:test`, `arith:ops=1,n=40`, a file).
pub fn load_problems(
    data: &str,
    limit: Option<usize>,
    g: &Global,
) -> anyhow::Result<Vec<stepwise_core::Problem>> {
    let ds: Dataset = data
        .parse()
        .map_err(|e| anyhow::anyhow!("--data {data}: {e}"))?;
    let loaded = load(
        &ds,
        &LoadOptions {
            data_dir: g.data_dir.clone(),
            limit,
            ..LoadOptions::default()
        },
    )
    .with_context(|| format!("loading {data}"))?;
    if loaded.problems.is_empty() {
        bail!("{data}: no problems");
    }
    Ok(loaded.problems)
}

pub fn progress(len: u64, g: &Global, what: &str) -> ProgressBar {
    if g.quiet {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template(&format!(
            "{what} {{bar:30}} {{pos}}/{{len}} [{{elapsed_precise}} < {{eta}}] {{msg}}"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    pb
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Dataset: gsm8k:test, gsm8k:train, math500, arith:OPTIONS, or a JSONL/Parquet file.
    #[arg(long)]
    pub data: String,
    /// Solve at most this many problems.
    #[arg(long)]
    pub limit: Option<usize>,
    /// majority, weighted, bon, beam, vbeam, dvts or mcts.
    #[arg(long, default_value = "beam")]
    pub strategy: ScaleStrategy,
    /// Samples (majority, weighted, bon) or candidates per step (beam, vbeam, dvts, mcts).
    #[arg(long, default_value_t = 8)]
    pub n: usize,
    /// Generated tokens per problem, policy + judges (no limit when absent).
    #[arg(long)]
    pub budget: Option<u64>,
    /// Also write one JSON outcome per line here.
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// Resume run RUN_ID of the store (the same settings are required).
    #[arg(long, value_name = "RUN_ID")]
    pub resume: Option<i64>,
    #[command(flatten)]
    pub search: SearchArgs,
    #[command(flatten)]
    pub backend: BackendArgs,
}

pub fn run(args: Args, g: &Global) -> anyhow::Result<()> {
    let problems = load_problems(&args.data, args.limit, g)?;
    let ctx = args.search.context(&args.backend)?;
    let s = &args.search;
    let strategy: Box<dyn Strategy> = match args.strategy {
        ScaleStrategy::Beam | ScaleStrategy::Vbeam => {
            let mut b = stepwise_search::BeamSearch::for_n(args.n, s.expansions, s.max_steps);
            b.lookahead = s.lookahead;
            b.value_guided = args.strategy == ScaleStrategy::Vbeam;
            Box::new(b)
        }
        ScaleStrategy::Mcts => {
            let mut m = Mcts::for_n(args.n, s.expansions, s.max_steps);
            m.c_puct = s.c_puct;
            Box::new(m)
        }
        other => other.build(args.n, s.expansions, s.max_steps),
    };
    if args.strategy.needs_scorer() && ctx.scorer.is_none() {
        bail!(
            "--strategy {} needs --scorer (e.g. --scorer arith)",
            args.strategy
        );
    }
    let budget = args.budget.map_or(Budget::unlimited(), Budget::tokens);

    if let Some(dir) = s.store.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut store =
        RunStore::open(&s.store).with_context(|| format!("opening {}", s.store.display()))?;
    let config = serde_json::json!({
        "data": args.data, "limit": args.limit, "strategy": strategy.name(),
        "budget": args.budget, "policy": ctx.policy.name(), "search": s.fingerprint(),
    });
    let run_id = store.create_or_resume("solve", &config, args.resume)?;
    let done = store.done_keys(run_id)?;
    eprintln!(
        "run {run_id} in {} ({} of {} problems already done; resume with --resume {run_id})",
        s.store.display(),
        problems.iter().filter(|p| done.contains(&p.id)).count(),
        problems.len()
    );
    let mut out = match &args.out {
        Some(p) => Some(std::io::BufWriter::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("opening {}", p.display()))?,
        )),
        None => None,
    };
    let todo: Vec<&stepwise_core::Problem> =
        problems.iter().filter(|p| !done.contains(&p.id)).collect();
    let pb = progress(todo.len() as u64, g, "solve");
    let (mut n_done, mut n_right, mut tokens) = (0usize, 0usize, 0u64);
    let rt = super::runtime()?;
    rt.block_on(record::for_each_concurrent(
        todo,
        s.jobs,
        |p| {
            let (ctx, strategy) = (&ctx, &strategy);
            async move {
                strategy
                    .solve(p, &budget, ctx)
                    .await
                    .map(|o| (p, o))
                    .map_err(anyhow::Error::from)
            }
        },
        |(p, o)| -> anyhow::Result<()> {
            let unit = record::unit_record(p, &o, &ctx.verify);
            store.record(run_id, &unit)?;
            if let Some(w) = out.as_mut() {
                serde_json::to_writer(&mut *w, &unit.payload)?;
                w.write_all(b"\n")?;
                w.flush()?;
            }
            n_done += 1;
            n_right +=
                usize::from(record::correct(p, o.answer.as_deref(), &ctx.verify) == Some(true));
            tokens += o.spent.generated_tokens();
            pb.inc(1);
            pb.set_message(format!(
                "{n_right}/{n_done} right, {:.0} tokens/problem",
                tokens as f64 / n_done as f64
            ));
            Ok(())
        },
    ))?;
    pb.finish_and_clear();
    store.set_status(run_id, stepwise_data::store::RunStatus::Done)?;
    // summary over the whole run, resumed parts included
    let units = store.units(run_id)?;
    let right = units
        .iter()
        .filter(|u| u.unit.payload.get("correct").and_then(|c| c.as_bool()) == Some(true))
        .count();
    let spent: Vec<stepwise_core::Spent> = units
        .iter()
        .filter_map(|u| {
            u.unit
                .payload
                .get("spent")
                .and_then(|s| serde_json::from_value(s.clone()).ok())
        })
        .collect();
    let total: stepwise_core::Spent = spent.iter().copied().sum();
    let n = units.len().max(1) as f64;
    println!(
        "run {run_id}: {} with {}",
        strategy.name(),
        s.scorer.as_deref().unwrap_or("no scorer")
    );
    println!("problems       {}", units.len());
    println!(
        "accuracy       {:.1}% ({right}/{})",
        100.0 * right as f64 / n,
        units.len()
    );
    println!(
        "tokens/problem {:.1} (policy {:.1}, judge {:.1})",
        total.generated_tokens() as f64 / n,
        total.policy_tokens as f64 / n,
        total.judge_tokens as f64 / n
    );
    println!(
        "calls/problem  {:.1} (policy {:.1}, judge {:.1})",
        total.calls() as f64 / n,
        total.policy_calls as f64 / n,
        total.judge_calls as f64 / n
    );
    Ok(())
}
