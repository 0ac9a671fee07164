//! `stepwise solve`: a test-time search strategy with step scorers over a dataset.

use super::backend::BackendArgs;
use super::jobargs::run_options;
use crate::Global;
use crate::out::outln;
use anyhow::Context as _;
use std::path::PathBuf;
use stepwise_core::{Aggregation, Delimiter};
use stepwise_jobs::kinds::pairwise::{PairwiseMethod, PairwiseSettings};
use stepwise_jobs::kinds::prompting::{DemoRule, PromptMethod, PromptingSettings};
use stepwise_jobs::kinds::solve::{CritiqueSettings, LikertOptions, SearchSettings, SolveConfig};
use stepwise_search::jobs::{Backends, SolveJob};
use stepwise_search::prompting::{PromptingRequest, resolve};
use stepwise_search::scale::ScaleStrategy;

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
    /// Let the judge write up to this many tokens of reasoning before its verdict (for
    /// genprm: the length of each analysis, default 512).
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
    /// Prompt program: demos, step-length:more|fewer, format:numbered|in-depth,
    /// cd-cot[:REPHRASINGS], mistakes[:principle], schema[:rules] or handbook (the plain
    /// prompt when absent). --policy-prompt then names its template, with {question} and
    /// {demos} (and {mistakes}, {schema} or {handbook} for those methods).
    #[arg(long, value_name = "NAME")]
    pub prompting: Option<PromptMethod>,
    /// How a prompt program picks its demos: fixed, random (seeded by --prompt-seed and
    /// the problem id) or nearest (token Jaccard similarity to the question).
    #[arg(long, default_value = "fixed", value_name = "RULE")]
    pub demo_rule: DemoRule,
    /// Demos per prompt.
    #[arg(long, default_value_t = 4)]
    pub shots: usize,
    /// Where demos come from: self (the dataset's other problems with reference
    /// solutions), data:SPEC, run:ID (a stored run's verified samples), or noisy:SPEC
    /// (NoRa's noisy arith demos: noise=irrelevant|inaccurate,ratio=R and arith options;
    /// ratio=0 gives the same demos clean; cd-cot's clean demo is problem n).
    #[arg(long, default_value = "self", value_name = "SOURCE")]
    pub demo_source: String,
    /// Task template of the registry: arith-chain, word-problem, multiple-choice, code
    /// (default: by the dataset).
    #[arg(long, value_name = "NAME")]
    pub prompt_task: Option<String>,
    /// Seed of the random demo rule.
    #[arg(long, default_value_t = 0)]
    pub prompt_seed: u64,
    /// --prompting mistakes: the stored run whose wrong samples are shown, run:ID
    /// (default: --demo-source when it is a run).
    #[arg(long, value_name = "run:ID")]
    pub mistakes_from: Option<String>,
    /// --prompting handbook: the stored run whose verified traces the handbook is mined
    /// from, run:ID (default: --demo-source when it is a run).
    #[arg(long, value_name = "run:ID")]
    pub handbook_from: Option<String>,
    /// critique-refine: most critique rounds of `solve` (in `scale` the --n values are
    /// its rounds; in the gateway, `@N`).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// critique-refine: critic prompt template (see crates/search/prompts/critic.txt).
    #[arg(long, value_name = "PATH")]
    pub critic_prompt: Option<PathBuf>,
    /// critique-refine: refine prompt template (see crates/search/prompts/refine.txt).
    #[arg(long, value_name = "PATH")]
    pub refine_prompt: Option<PathBuf>,
    /// critique-refine: most tokens of one critique (default: --max-tokens).
    #[arg(long, value_name = "TOKENS")]
    pub critic_max_tokens: Option<u32>,
    /// How bon picks its sample: by the scorer's scores (the default), or by a pairwise
    /// judge (Think-RM): pairwise-knockout (a knockout tournament in sample order) or
    /// pairwise-bt (Bradley–Terry over every pair). The judge is --judge-model /
    /// --judge-endpoint, else the policy; no --scorer is needed.
    #[arg(long, value_name = "SELECTOR")]
    pub select: Option<PairwiseMethod>,
    /// Judge each pair in one order only (A/B), not both (position bias is then not
    /// cancelled).
    #[arg(long)]
    pub pairwise_one_order: bool,
    /// Tokens of the pairwise judge's reasoning before its verdict.
    #[arg(long, default_value_t = 1024, value_name = "TOKENS")]
    pub pairwise_max_tokens: u32,
    /// Sampling temperature of the pairwise judge.
    #[arg(long, default_value_t = 0.7)]
    pub pairwise_temperature: f32,
    /// Pairwise prompt template (see crates/score/prompts/pairwise.txt).
    #[arg(long, value_name = "PATH")]
    pub pairwise_prompt: Option<PathBuf>,
    /// Criteria the `likert` scorer rates under: the text, or @FILE (default: its
    /// built-in rubric).
    #[arg(long, value_name = "TEXT|@FILE")]
    pub criteria: Option<String>,
    /// Judgments the `likert` scorer samples per solution (their mean is the score).
    #[arg(long, default_value_t = 4)]
    pub likert_samples: usize,
    /// Tokens of each `likert` judgment (rationale and score).
    #[arg(long, default_value_t = 512, value_name = "TOKENS")]
    pub likert_max_tokens: u32,
    /// Problems solved at the same time (the backend batches their requests).
    #[arg(long, default_value_t = 4)]
    pub jobs: usize,
    #[command(flatten)]
    pub store: crate::cmd::jobargs::StoreArgs,
    #[command(flatten)]
    pub prm: crate::cmd::backend::PrmArgs,
}

impl SearchArgs {
    /// The stored settings these flags describe (prompt files are read: the run keeps
    /// their text); `judge` is the judge backend's name when it is not the policy.
    pub fn settings(&self, judge: Option<String>) -> anyhow::Result<SearchSettings> {
        let read = |p: &Option<PathBuf>| -> anyhow::Result<Option<String>> {
            p.as_ref()
                .map(|p| {
                    std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))
                })
                .transpose()
        };
        Ok(SearchSettings {
            scorer: self.scorer.clone(),
            aggregation: self.aggregation,
            temperature: self.temperature,
            max_tokens: self.max_tokens,
            max_step_tokens: self.max_step_tokens,
            seed: self.seed,
            delimiter: self.delimiter.to_string(),
            expansions: self.expansions,
            max_steps: self.max_steps,
            lookahead: self.lookahead,
            c_puct: self.c_puct,
            rollouts: self.rollouts,
            judgments: self.judgments,
            judge_reasoning: self.judge_reasoning,
            // with a prompt program the file is the program's template instead
            policy_prompt: match self.prompting {
                None => read(&self.policy_prompt)?,
                Some(_) => None,
            },
            judge_prompt: read(&self.judge_prompt)?,
            judge,
            prompting: None,
            // stored only when set, so other runs' configs are unchanged
            critique: if self.critic_prompt.is_some()
                || self.refine_prompt.is_some()
                || self.critic_max_tokens.is_some()
            {
                Some(CritiqueSettings {
                    critic_prompt: read(&self.critic_prompt)?,
                    refine_prompt: read(&self.refine_prompt)?,
                    critic_max_tokens: self.critic_max_tokens,
                })
            } else {
                None
            },
            likert: self.likert_options()?,
            pairwise: match self.select {
                None => None,
                Some(method) => Some(PairwiseSettings {
                    method,
                    both_orders: !self.pairwise_one_order,
                    max_tokens: self.pairwise_max_tokens,
                    temperature: self.pairwise_temperature,
                    prompt: read(&self.pairwise_prompt)?,
                }),
            },
        })
    }

    /// The `likert` scorer's settings when the scorer spec names it (criteria read from
    /// @FILE); `--criteria` without a `likert` scorer is an error.
    fn likert_options(&self) -> anyhow::Result<Option<LikertOptions>> {
        let named = self.scorer.as_deref().is_some_and(|spec| {
            spec.parse::<stepwise_score::ScorerSpec>().is_ok_and(|s| {
                s.parts
                    .iter()
                    .any(|p| p.kind == stepwise_score::ScorerKind::Likert)
            })
        });
        if !named {
            anyhow::ensure!(
                self.criteria.is_none(),
                "--criteria is for the likert scorer (--scorer likert)"
            );
            return Ok(None);
        }
        let criteria = match self.criteria.as_deref() {
            Some(c) => Some(match c.strip_prefix('@') {
                Some(path) => std::fs::read_to_string(path)
                    .with_context(|| format!("--criteria: reading {path}"))?,
                None => c.to_string(),
            }),
            None => None,
        };
        anyhow::ensure!(
            self.likert_samples > 0,
            "--likert-samples must be at least 1"
        );
        Ok(Some(LikertOptions {
            criteria,
            samples: self.likert_samples,
            max_tokens: self.likert_max_tokens,
        }))
    }

    /// The prompt program these flags describe for a run over `dataset` (`problems`),
    /// its demo pool read now (`run:ID` sources from `store`); `None` without --prompting.
    /// What the model writes once per run is made later, with the backends open
    /// ([`stepwise_search::jobs::prepare_prompting`]).
    pub fn prompting(
        &self,
        dataset: &str,
        problems: &[stepwise_core::Problem],
        store: &dyn stepwise_jobs::RunStore,
        data_dir: Option<&std::path::Path>,
    ) -> anyhow::Result<Option<PromptingSettings>> {
        let Some(method) = self.prompting else {
            return Ok(None);
        };
        let template = self
            .policy_prompt
            .as_ref()
            .map(|p| std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display())))
            .transpose()?;
        let request = PromptingRequest {
            method,
            task: self.prompt_task.clone(),
            template,
            rule: self.demo_rule,
            shots: self.shots,
            seed: self.prompt_seed,
            source: self.demo_source.clone(),
            mistakes_from: self.mistakes_from.clone(),
            handbook_from: self.handbook_from.clone(),
        };
        Ok(Some(
            resolve(&request, dataset, problems, Some(store), data_dir)
                .with_context(|| format!("--prompting {method}"))?,
        ))
    }

    /// Opens the policy backend, and the judge's when it has its own.
    pub fn backends(&self, backend: &BackendArgs) -> anyhow::Result<Backends> {
        open_backends(backend, &self.judge_model, &self.judge_endpoint, &self.prm)
    }
}

/// The policy backend `backend` names, the judge's when it has its own (a GGUF or
/// endpoints), and how PRM scorers reach their server.
pub fn open_backends(
    backend: &BackendArgs,
    judge_model: &Option<PathBuf>,
    judge_endpoint: &[String],
    prm: &crate::cmd::backend::PrmArgs,
) -> anyhow::Result<Backends> {
    let policy = backend.open().context("opening the policy model")?;
    let judge = open_judge(backend, judge_model, judge_endpoint)?;
    Ok(Backends {
        policy,
        judge,
        prm: prm.settings(),
    })
}

/// The judge's own backend when `judge_model` or `judge_endpoint` names one (opened with
/// `backend`'s other settings), else `None`: the policy judges. `solve`, `scale`,
/// `annotate` and `stepwise worker` open their judge here.
pub fn open_judge(
    backend: &BackendArgs,
    judge_model: &Option<PathBuf>,
    judge_endpoint: &[String],
) -> anyhow::Result<Option<std::sync::Arc<dyn stepwise_model::Generator>>> {
    if judge_model.is_none() && judge_endpoint.is_empty() {
        return Ok(None);
    }
    let b = BackendArgs {
        model: judge_model.clone(),
        endpoint: judge_endpoint.to_vec(),
        ..backend.clone()
    };
    Ok(Some(b.open().context("opening the judge model")?))
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Dataset: gsm8k:test, gsm8k:train, math500, arith:OPTIONS, or a JSONL/Parquet file.
    #[arg(long)]
    pub data: String,
    /// Solve at most this many problems.
    #[arg(long)]
    pub limit: Option<usize>,
    /// majority, weighted, bon, beam, vbeam, dvts, mcts or critique-refine.
    #[arg(long, default_value = "beam")]
    pub strategy: ScaleStrategy,
    /// Samples (majority, weighted, bon) or candidates per step (beam, vbeam, dvts, mcts);
    /// critique-refine takes --rounds instead.
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
    let problems = stepwise_data::load_spec(&args.data, args.limit, g.data_dir.as_deref())
        .with_context(|| format!("--data {}", args.data))?;
    let backends = args.search.backends(&args.backend)?;
    let store = args.search.store.open()?;
    let mut search = args
        .search
        .settings(backends.judge.as_ref().map(|j| j.name()))?;
    search.prompting =
        args.search
            .prompting(&args.data, &problems, store.as_ref(), g.data_dir.as_deref())?;
    let runtime = super::runtime()?;
    runtime
        .block_on(stepwise_search::jobs::prepare_prompting(
            &mut search,
            &backends,
            &problems,
            store.as_ref(),
            args.resume,
        ))
        .context("preparing the prompt program")?;
    let config = SolveConfig {
        dataset: args.data.clone(),
        limit: args.limit,
        strategy: args.strategy,
        // critique-refine's n is its number of rounds
        n: if args.strategy == ScaleStrategy::CritiqueRefine {
            args.search.rounds
        } else {
            args.n
        },
        budget: args.budget,
        policy: backends.policy.name(),
        reproducible: backends.reproducible(),
        search,
    };
    let job = SolveJob::new(config, problems, &backends)?;
    let opts = run_options(args.resume, args.search.jobs, g);
    let summary = runtime.block_on(stepwise_search::jobs::solve(
        store.as_ref(),
        &job,
        &opts,
        args.out.as_deref(),
    ))?;
    outln!("{summary}")?;
    Ok(())
}
