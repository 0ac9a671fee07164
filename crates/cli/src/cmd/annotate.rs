//! `stepwise annotate`: automatic PRM step labels (mc, adaptive-mc, omegaprm, reference,
//! grounded, rpe),
//! resumable through the run store, exported as PRM training data.

use crate::Global;
use crate::cmd::backend::BackendArgs;
use crate::cmd::jobargs::{StoreArgs, run_options};
use crate::out::{out, outln};
use anyhow::Context;
use std::path::PathBuf;
use std::time::Duration;
use stepwise_annotate::Method;
use stepwise_annotate::formats::ExportFormat;
use stepwise_annotate::grounded::{Fidelity, GroundedRule};
use stepwise_annotate::reference::JudgeTemplate;
use stepwise_annotate::run::{
    AnnotateConfig, Job, PolicySource, parse_policy_prompt, run_job_judged,
};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Dataset with gold answers: `arith:ops=3,n=20,seed=1`, `gsm8k:test`, `math500`, or a JSONL/Parquet file.
    #[arg(long, default_value = "arith:ops=3,n=10,seed=1")]
    pub dataset: String,
    /// Label at most this many problems.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Methods, comma-separated or repeated: mc, adaptive-mc, omegaprm, reference, grounded,
    /// rpe (GenPRM's Relative Progress Estimation on mc's rollouts).
    #[arg(long = "method", value_delimiter = ',', default_value = "mc,omegaprm")]
    pub methods: Vec<Method>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Solutions sampled per question for mc, reference and grounded.
    #[arg(long, default_value_t = 2)]
    pub samples: usize,
    /// Rollouts per step prefix (mc, rpe).
    #[arg(long, default_value_t = 8)]
    pub k: usize,
    /// Rpe: a step is good when MC(prefix with it) / MC(prefix before it) >= this (paper: 0.8).
    #[arg(long, default_value_t = 0.8)]
    pub rpe_epsilon: f64,
    /// Adaptive mc: most rollouts from one prefix (it stops at the first correct one).
    #[arg(long, default_value_t = 16)]
    pub adaptive_max_k: usize,
    /// Sampling temperature of solutions and rollouts.
    #[arg(long, default_value_t = 0.7)]
    pub temperature: f32,
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    /// 0 disables top-k.
    #[arg(long, default_value_t = 40)]
    pub top_k: u32,
    /// Tokens per rollout.
    #[arg(long, default_value_t = 128)]
    pub max_tokens: u32,
    /// OmegaPRM: rollouts per new state (paper: 16).
    #[arg(long, default_value_t = 16)]
    pub omega_k: usize,
    /// OmegaPRM: exploration constant c_puct (paper: 0.125).
    #[arg(long, default_value_t = 0.125)]
    pub c_puct: f64,
    /// OmegaPRM: α of Q(s,r) = α^(1−MC(s))·β^(len(r)/L) (paper: 0.5).
    #[arg(long, default_value_t = 0.5)]
    pub alpha: f64,
    /// OmegaPRM: β (paper: 0.9).
    #[arg(long, default_value_t = 0.9)]
    pub beta: f64,
    /// OmegaPRM: L, the rollout-length normaliser in tokens (paper: 500).
    #[arg(long = "omega-l", default_value_t = 500.0)]
    pub omega_l: f64,
    /// OmegaPRM: search iterations (select + binary search) per question.
    #[arg(long, default_value_t = 100)]
    pub search_limit: usize,
    /// OmegaPRM: most root rollouts while they all agree (more are drawn, doubling, so the
    /// pool is not empty); at most --omega-k is the paper (no top-up).
    #[arg(long, default_value_t = 64)]
    pub omega_root_max_k: usize,
    /// Grounded: rollouts per step prefix.
    #[arg(long, default_value_t = 4)]
    pub grounded_k: usize,
    /// Grounded: how tool verdicts and rollout outcomes are combined: `paper` (the
    /// GroundedPRM reference code's rollout reward and backpropagation), `weighted`, or
    /// `mc-veto` (the step's tool verdict refutes, rollouts' outcomes decide the rest).
    #[arg(long, default_value = "paper")]
    pub grounded_rule: GroundedRule,
    /// Grounded, paper rule: weight of the final outcome in a rollout's reward
    /// (default: 1/N, N = the rollout's intermediate steps, as in the reference code).
    #[arg(long)]
    pub final_weight: Option<f64>,
    /// Grounded, paper rule: decay of a rollout's reward on its way back to earlier
    /// prefixes of the solution (the reference code uses 0.9 over an MCTS tree).
    #[arg(long, default_value_t = 0.0)]
    pub backprop_decay: f64,
    /// Grounded, paper rule: `veto` (a tool-verified wrong claim makes a step bad) or
    /// `drop` (leave out solutions whose labels disagree with the tool, as the paper does).
    #[arg(long, default_value = "veto")]
    pub fidelity: Fidelity,
    /// Grounded, weighted rule: weight of the final outcome in a rollout's reward (the rest is its tool verdicts).
    #[arg(long, default_value_t = 0.5)]
    pub outcome_weight: f64,
    /// Grounded, weighted rule: discount of tool verdicts along a rollout.
    #[arg(long, default_value_t = 0.9)]
    pub gamma: f64,
    /// Policy prompt template for sampling solutions and rollouts (sections ### system /
    /// ### user / ### assistant; placeholder {question}). Default: the built-in one
    /// (print it with --print-policy-prompt).
    #[arg(long, value_name = "PATH")]
    pub policy_prompt: Option<PathBuf>,
    /// Print the built-in policy prompt and exit.
    #[arg(long)]
    pub print_policy_prompt: bool,
    /// Reference: judge prompt template (sections ### system / ### user / ### assistant;
    /// placeholders {question} {reference} {gold} {steps} {n}). Default: the built-in prompts/spare.txt.
    #[arg(long, value_name = "PATH")]
    pub judge_prompt: Option<PathBuf>,
    /// Print the built-in judge prompt and exit.
    #[arg(long)]
    pub print_judge_prompt: bool,
    /// Reference: judge tokens per solution.
    #[arg(long, default_value_t = 256)]
    pub judge_max_tokens: u32,
    /// GGUF model of the judge of the methods that ask one (reference), e.g. a stronger
    /// model than the policy (default: the policy judges). Stored with the run: a resume
    /// or worker must give the same judge model.
    #[arg(long, value_name = "PATH.gguf")]
    pub judge_model: Option<PathBuf>,
    /// OpenAI-compatible endpoint of the judge (default: the policy judges).
    #[arg(long, value_name = "URL")]
    pub judge_endpoint: Vec<String>,
    /// Questions labelled at the same time.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Continue run RUN_ID where it stopped (its stored configuration is used; the
    /// labelling flags above are ignored). A finished run is just exported again.
    #[arg(long, value_name = "RUN_ID")]
    pub resume: Option<i64>,
    /// With --resume: label nothing, export and evaluate what the run has stored so far
    /// (only questions that every method has finished).
    #[arg(long, requires = "resume")]
    pub stored_only: bool,
    /// Write the labels here (`.parquet` for Parquet, anything else JSONL).
    #[arg(long, short = 'o', value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// Output format: math-shepherd, trl, prm800k, openr, processbench or native.
    #[arg(long, default_value = "trl")]
    pub format: ExportFormat,
    /// Measure label quality against the exact ground truth of `arith` problems and print a Markdown table.
    #[arg(long)]
    pub eval_against_truth: bool,
    /// Also write that table (with the command line) to this Markdown file.
    #[arg(long, value_name = "PATH", requires = "eval_against_truth")]
    pub eval_out: Option<PathBuf>,
    /// Also write every distinct sampled solution of an `arith` dataset with its exact
    /// first wrong step as a ProcessBench file (`.parquet` or JSONL), a test set with exact
    /// truth for `stepwise eval processbench --data FILE --scorer ...`. OmegaPRM's
    /// rollouts are left out; so is a solution with no wrong step that never reaches the
    /// answer.
    #[arg(long, value_name = "PATH")]
    pub truth_out: Option<PathBuf>,
    /// Testing: use the scripted policy (a test double with known per-prefix success
    /// probabilities) instead of a model.
    #[arg(long, hide = true)]
    pub scripted_policy: bool,
    /// Testing: delay of each scripted call in milliseconds.
    #[arg(long, hide = true, default_value_t = 0)]
    pub scripted_delay_ms: u64,
    #[command(flatten)]
    pub backend: BackendArgs,
}

fn config(a: &Args) -> anyhow::Result<AnnotateConfig> {
    let mut c = AnnotateConfig {
        dataset: a.dataset.clone(),
        limit: a.limit,
        methods: a.methods.clone(),
        seed: a.seed,
        samples: a.samples,
        ..AnnotateConfig::default()
    };
    c.methods.sort();
    c.methods.dedup();
    c.rollout.temperature = a.temperature;
    c.rollout.top_p = a.top_p;
    c.rollout.top_k = a.top_k;
    c.rollout.max_tokens = a.max_tokens;
    c.mc.k = a.k;
    c.rpe.epsilon = a.rpe_epsilon;
    c.adaptive.max_k = a.adaptive_max_k;
    c.omega.k = a.omega_k;
    c.omega.c_puct = a.c_puct;
    c.omega.alpha = a.alpha;
    c.omega.beta = a.beta;
    c.omega.l = a.omega_l;
    c.omega.search_limit = a.search_limit;
    c.omega.root_max_k = a.omega_root_max_k;
    c.grounded.k = a.grounded_k;
    c.grounded.rule = a.grounded_rule;
    c.grounded.final_weight = a.final_weight;
    c.grounded.fidelity = a.fidelity;
    c.grounded.backprop_decay = a.backprop_decay;
    c.grounded.outcome_weight = a.outcome_weight;
    c.grounded.gamma = a.gamma;
    c.reference.max_tokens = a.judge_max_tokens;
    if let Some(p) = &a.judge_prompt {
        c.reference.template = JudgeTemplate::load(p)?;
    }
    if let Some(p) = &a.policy_prompt {
        let text = std::fs::read_to_string(p)
            .with_context(|| format!("reading the policy prompt {}", p.display()))?;
        parse_policy_prompt(&text, &p.display().to_string())?;
        c.policy_prompt = Some(text);
    }
    Ok(c)
}

pub fn run(args: Args, g: &Global) -> anyhow::Result<()> {
    if args.print_judge_prompt {
        out!("{}", JudgeTemplate::default_text())?;
        return Ok(());
    }
    if args.print_policy_prompt {
        out!("{}", stepwise_score::PolicyPrompt::default_text())?;
        return Ok(());
    }
    let cfg = config(&args)?;
    let backend = args.backend.deterministic_by_default(true);
    let source = if args.scripted_policy {
        PolicySource::Scripted {
            delay: Duration::from_millis(args.scripted_delay_ms),
        }
    } else {
        PolicySource::Model(backend.open()?)
    };
    let judge = crate::cmd::solve::open_judge(&backend, &args.judge_model, &args.judge_endpoint)?;
    let job = Job {
        config: cfg,
        store: args.store.store.to_string_lossy().into_owned(),
        resume: args.resume,
        data_dir: g.data_dir.clone(),
        run: run_options(args.resume, args.concurrency, g),
        out: args.out.clone().map(|p| (p, args.format)),
        eval_against_truth: args.eval_against_truth,
        truth_out: args.truth_out.clone(),
        stored_only: args.stored_only,
    };
    let quiet = g.quiet;
    let started = std::time::Instant::now();
    // opened here so a shared store gets this command's --lease
    let store = args.store.open()?;
    let outcome = crate::cmd::runtime()?
        .block_on(run_job_judged(store.as_ref(), &job, source, judge))
        .context("annotate")?;
    let secs = started.elapsed().as_secs_f64();
    if !quiet {
        eprintln!("{}", outcome.summary(secs));
        if let Some((p, f)) = &job.out {
            eprintln!("wrote {} {f} records to {}", outcome.exported, p.display());
        }
        if let Some(p) = &job.truth_out {
            eprintln!(
                "wrote {} solutions with their exact first error to {}",
                outcome.truth_exported,
                p.display()
            );
        }
    }
    if let Some(table) = outcome.truth_table() {
        outln!("{table}")?;
        if let Some(path) = &args.eval_out {
            let cmdline: Vec<String> = std::env::args().collect();
            let text = outcome
                .truth_report(&cmdline.join(" "), secs)
                .unwrap_or_default();
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
        }
    }
    Ok(())
}
