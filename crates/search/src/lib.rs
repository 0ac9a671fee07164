//! Test-time search: spend a [`Budget`] of generated tokens on a [`Problem`] and return
//! the best answer, with an exact record of what was spent.
//!
//! A [`Strategy`] asks the policy for text through the [`Generator`] trait and judges
//! steps with a [`StepScorer`]. Strategies here:
//!
//! | name | strategy |
//! |---|---|
//! | `majority` | [`Sampling::majority`]: n samples, the answer most of them give (grouped by `verify` equivalence) |
//! | `weighted` | [`Sampling::weighted`]: weighted self-consistency, votes weighted by the scorer |
//! | `bon` | [`Sampling::best_of_n`]: n samples, the one the scorer likes best |
//! | `beam` | [`BeamSearch`]: step-level beam search (width, expansions per beam, max steps, lookahead) |
//! | `vbeam` | [`BeamSearch::value_guided`]: the same, ranked by the value of the newest prefix (OVM) |
//! | `dvts` | [`Dvts`]: diverse verifier tree search, independent greedy subtrees |
//! | `mcts` | [`Mcts`]: Monte-Carlo tree search with PUCT, scorer values as priors and rewards |
//! | `critique-refine` | [`CritiqueRefine`]: a critic names the first wrong step, the policy rewrites from it (AutoMathCritique), for `n` rounds |
//!
//! Every [`Outcome`] carries its [`Spent`]: generated and prompt tokens of the policy and
//! of every judge, and calls, summed from what the backends reported.
//!
//! ```
//! use std::sync::Arc;
//! use stepwise_core::{Budget, Problem};
//! use stepwise_model::scripted::ScriptedGenerator;
//! use stepwise_search::{Context, Sampling, Strategy};
//!
//! // A scripted policy: sample i answers 7 unless i is 1.
//! let policy = Arc::new(ScriptedGenerator::new(|_, i| {
//!     format!("3 + 4 = {0}\n\nThe answer is {0}.", if i == 1 { 8 } else { 7 })
//! }));
//! let ctx = Context::new(policy);
//! let p = Problem::new("p", "What is 3 + 4?").with_gold("7");
//! let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
//! let out = rt.block_on(Sampling::majority(3).solve(&p, &Budget::unlimited(), &ctx)).unwrap();
//! assert_eq!(out.answer.as_deref(), Some("7"));
//! assert_eq!(out.spent.policy_tokens, 3 * 9); // 9 words per sample
//! ```

mod beam;
pub mod jobs;
mod mcts;
pub mod noisy_demos;
pub mod prompting;
mod refine;
mod sampling;
pub mod scale;

pub use beam::{BeamSearch, Dvts};
pub use mcts::Mcts;
pub use refine::{CritiquePrompts, CritiqueRefine, parse_critique};
pub use sampling::Sampling;
pub use stepwise_jobs::kinds::solve::{Outcome, Sample, Selection, select};

use async_trait::async_trait;
use std::sync::Arc;
use stepwise_core::{
    Aggregation, AnswerExtractor, Budget, ExtractRule, Problem, Rationale, Spent, StepSplitter,
    Trace,
};
use stepwise_model::{Completion, FinishReason, GenerateRequest, Generator, SamplingParams};
use stepwise_score::{PolicyPrompt, ScoreError, StepScorer};

/// Errors of strategies.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("policy model call failed for problem {problem}")]
    Policy {
        problem: String,
        #[source]
        source: stepwise_model::EngineError,
    },
    #[error("scoring failed for problem {problem}")]
    Score {
        problem: String,
        #[source]
        source: ScoreError,
    },
    #[error("critic model call failed for problem {problem}")]
    Critic {
        problem: String,
        #[source]
        source: stepwise_model::EngineError,
    },
    #[error("strategy {strategy} needs a step scorer (--scorer)")]
    NeedsScorer { strategy: String },
    #[error("invalid strategy settings: {0}")]
    Config(String),
}

/// What every strategy works with: the policy, an optional scorer, and how to prompt,
/// split, extract and aggregate.
#[derive(Clone)]
pub struct Context {
    pub policy: Arc<dyn Generator>,
    pub scorer: Option<Arc<dyn StepScorer>>,
    pub prompt: PolicyPrompt,
    pub splitter: StepSplitter,
    /// Finds the final answer of a finished sample.
    pub extractor: AnswerExtractor,
    /// Decides whether a step gives the final answer (explicit rules only: a step that
    /// merely ends in a number is not final).
    pub final_extractor: AnswerExtractor,
    /// Temperature, top-p/k, max tokens of a whole answer, base seed (`n` and `stop`
    /// are set per call).
    pub sampling: SamplingParams,
    /// Extra stop strings that end a whole answer.
    pub stop: Vec<String>,
    /// Most tokens of one step in step-level search.
    pub max_step_tokens: u32,
    pub aggregation: Aggregation,
    pub verify: stepwise_verify::Options,
    /// The prompt program (`--prompting`): when set, each problem's policy prompt is
    /// built by it ([`prompting::Program::build`]) before the strategy runs.
    pub program: Option<Arc<prompting::Program>>,
    /// The critic of `critique-refine` when it is not the policy (the judge backend).
    pub critic: Option<Arc<dyn Generator>>,
    /// The critic's and refiner's templates of `critique-refine`.
    pub critique: CritiquePrompts,
    /// Best-of-N by pairwise verdicts (Think-RM): when set, `bon` picks its answer by a
    /// knockout tournament or Bradley–Terry over this judge's verdicts instead of by
    /// scores (`--select pairwise-knockout|pairwise-bt`).
    pub pairwise: Option<Arc<stepwise_score::PairwiseJudge>>,
}

impl Context {
    /// Defaults: built-in policy prompt, blank-line steps, temperature 0.7, 256 tokens per
    /// answer, 96 per step, `last` aggregation, no scorer.
    pub fn new(policy: Arc<dyn Generator>) -> Self {
        Self {
            policy,
            scorer: None,
            prompt: PolicyPrompt::default(),
            splitter: StepSplitter::default(),
            extractor: AnswerExtractor::default(),
            final_extractor: AnswerExtractor::new(vec![
                ExtractRule::Boxed,
                ExtractRule::Gsm8k,
                ExtractRule::FinalAnswer,
                ExtractRule::AnswerIs,
            ]),
            sampling: SamplingParams::default(),
            stop: Vec::new(),
            max_step_tokens: 96,
            aggregation: Aggregation::Last,
            verify: stepwise_verify::Options::default(),
            program: None,
            critic: None,
            critique: CritiquePrompts::default(),
            pairwise: None,
        }
    }

    /// Sets the scorer.
    pub fn with_scorer(mut self, scorer: Arc<dyn StepScorer>) -> Self {
        self.scorer = Some(scorer);
        self
    }

    /// The context for `problem`: with a prompt program, a copy whose policy prompt the
    /// program built for it, and what was asked (its building cost included); without
    /// one, this context as it is.
    pub async fn for_problem(
        &self,
        problem: &Problem,
    ) -> Result<
        (
            std::borrow::Cow<'_, Context>,
            Option<stepwise_jobs::kinds::prompting::BuiltPrompt>,
        ),
        SearchError,
    > {
        match &self.program {
            None => Ok((std::borrow::Cow::Borrowed(self), None)),
            Some(program) => {
                let (prompt, built) = program.build(problem, self).await?;
                let mut ctx = self.clone();
                ctx.prompt = prompt;
                Ok((std::borrow::Cow::Owned(ctx), Some(built)))
            }
        }
    }

    /// Whether `strategy` picks by pairwise verdicts here (best-of-N with a pairwise
    /// judge), so it needs no scorer.
    pub fn picks_by_pairs(&self, strategy: crate::scale::ScaleStrategy) -> bool {
        strategy == crate::scale::ScaleStrategy::Bon && self.pairwise.is_some()
    }

    pub(crate) fn scorer(&self, strategy: &str) -> Result<&Arc<dyn StepScorer>, SearchError> {
        self.scorer
            .as_ref()
            .ok_or_else(|| SearchError::NeedsScorer {
                strategy: strategy.to_string(),
            })
    }

    /// Cuts a generated answer after the line that states its final answer (the model
    /// tends to keep talking); the tokens after it were still generated and still count.
    pub fn cut_after_answer(&self, text: &str) -> String {
        let mut end = 0;
        for line in text.split_inclusive('\n') {
            end += line.len();
            if self.final_extractor.extract(line).is_some() {
                return text[..end].trim_end().to_string();
            }
        }
        text.trim_end().to_string()
    }

    /// Parses a finished answer text into a rationale with its answer.
    pub fn parse(&self, text: &str) -> Rationale {
        Rationale::parse(text, &self.splitter, &self.extractor)
    }
}

/// A way of spending a budget on a problem.
#[async_trait]
pub trait Strategy: Send + Sync {
    /// Short name with its settings (e.g. `beam(w=4,e=4)`).
    fn name(&self) -> String;

    /// Solves one problem within `budget`.
    async fn solve(
        &self,
        problem: &Problem,
        budget: &Budget,
        ctx: &Context,
    ) -> Result<Outcome, SearchError>;
}

/// Bookkeeping shared by the strategies: exact spending, budget checks, seeds.
pub(crate) struct Ledger<'a> {
    pub problem: &'a Problem,
    pub budget: Budget,
    pub spent: Spent,
    pub trace: Trace,
    calls: u64,
    started: std::time::Instant,
}

impl<'a> Ledger<'a> {
    pub fn new(problem: &'a Problem, budget: &Budget, strategy: &str) -> Self {
        Self {
            problem,
            budget: *budget,
            spent: Spent::default(),
            trace: Trace::new(strategy),
            calls: 0,
            started: std::time::Instant::now(),
        }
    }

    /// Tokens each of `n` new sequences may generate, capped by the budget; `None` when
    /// the budget is exhausted.
    pub fn allowance(&mut self, n: usize, wanted: u32) -> Option<u32> {
        self.sync_wall();
        if let Err(e) = self.budget.check(&self.spent) {
            self.trace.note(format!("stopped: {e}"));
            return None;
        }
        match self.budget.tokens_left(&self.spent) {
            None => Some(wanted),
            Some(left) => {
                let each = (left / n.max(1) as u64).min(wanted as u64) as u32;
                if each == 0 {
                    self.trace
                        .note("stopped: too few tokens left for another call");
                    None
                } else {
                    Some(each)
                }
            }
        }
    }

    fn sync_wall(&mut self) {
        self.spent.wall_ms = self.started.elapsed().as_millis() as u64;
    }

    /// A policy call: `n` continuations of the problem's prompt after `prefix`, with
    /// `max_tokens` each and the given stop strings. Records what it spent.
    pub async fn generate(
        &mut self,
        ctx: &Context,
        prefix: &str,
        n: usize,
        max_tokens: u32,
        temperature: f32,
        stop: Vec<String>,
    ) -> Result<Vec<Completion>, SearchError> {
        let call = Call {
            prefix: prefix.to_string(),
            n,
            max_tokens,
            temperature,
            stop,
        };
        Ok(self
            .generate_many(ctx, vec![call])
            .await?
            .pop()
            .unwrap_or_default())
    }

    /// Several policy calls issued together (the backend batches them); results in
    /// order. Seeds are assigned in order before the calls start, so results do not
    /// depend on which call finishes first.
    pub async fn generate_many(
        &mut self,
        ctx: &Context,
        calls: Vec<Call>,
    ) -> Result<Vec<Vec<Completion>>, SearchError> {
        let (prompt, start) = ctx
            .prompt
            .render(self.problem)
            .map_err(|e| SearchError::Score {
                problem: self.problem.id.clone(),
                source: e,
            })?;
        let reqs: Vec<GenerateRequest> = calls
            .into_iter()
            .map(|c| GenerateRequest {
                prompt: prompt.clone(),
                assistant_prefix: format!("{start}{}", c.prefix),
                params: SamplingParams {
                    n: c.n,
                    max_tokens: c.max_tokens,
                    temperature: c.temperature,
                    stop: c.stop,
                    seed: self.next_seed(ctx.sampling.seed),
                    ..ctx.sampling.clone()
                },
            })
            .collect();
        let results = futures::future::join_all(reqs.iter().map(|r| ctx.policy.generate(r))).await;
        let mut out = Vec::with_capacity(results.len());
        for r in results {
            let outs = r.map_err(|e| SearchError::Policy {
                problem: self.problem.id.clone(),
                source: e,
            })?;
            self.spent.policy_calls += 1;
            for c in &outs {
                self.spent.policy_tokens += c.generated_tokens;
                self.spent.policy_prompt_tokens += c.prompt_tokens;
            }
            out.push(outs);
        }
        self.sync_wall();
        Ok(out)
    }

    /// Seeds: the base seed for the first call (so that `n` samples of one call are the
    /// first `n` of a larger call), then distinct derived seeds.
    fn next_seed(&mut self, base: u64) -> u64 {
        // problems get independent streams; calls within a problem get distinct seeds
        let base = base ^ fnv1a(&self.problem.id);
        let s = if self.calls == 0 {
            base
        } else {
            base ^ self.calls.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        };
        self.calls += 1;
        s
    }

    /// Adds a scorer's cost.
    pub fn add_judge(&mut self, s: Spent) {
        let wall = self.spent.wall_ms;
        self.spent += s;
        self.spent.wall_ms = wall;
        self.sync_wall();
    }

    pub fn score_err(&self, e: ScoreError) -> SearchError {
        SearchError::Score {
            problem: self.problem.id.clone(),
            source: e,
        }
    }

    pub fn finish(
        mut self,
        strategy: String,
        answer: Option<String>,
        chosen: Option<usize>,
        samples: Vec<Sample>,
    ) -> Outcome {
        self.sync_wall();
        self.trace.spent = self.spent;
        Outcome {
            problem_id: self.problem.id.clone(),
            strategy,
            answer,
            chosen,
            samples,
            spent: self.spent,
            trace: self.trace,
        }
    }
}

/// FNV-1a hash (stable across runs and platforms).
fn fnv1a(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// One policy call for [`Ledger::generate_many`].
pub(crate) struct Call {
    pub prefix: String,
    pub n: usize,
    pub max_tokens: u32,
    pub temperature: f32,
    pub stop: Vec<String>,
}

/// True when a completion ended because the model finished (end of turn), not a stop
/// string or the length limit.
pub(crate) fn ended(c: &Completion) -> bool {
    matches!(c.finish, FinishReason::Eos)
}

/// A completion made into a sample: `kept` (the steps before it, already joined with
/// their separator after them) and the new text, cut after the answer and parsed.
pub(crate) fn sample_of(ctx: &Context, kept: &str, c: &Completion) -> Sample {
    let text = ctx.cut_after_answer(&format!("{kept}{}", c.text));
    let rationale = ctx.parse(&text);
    let finished = ended(c) || ctx.final_extractor.extract(&text).is_some();
    Sample {
        text,
        rationale,
        scores: Vec::new(),
        score: None,
        tokens: c.generated_tokens,
        finished,
        prompt_tokens: c.prompt_tokens,
        judge: Default::default(),
    }
}

pub(crate) use stepwise_jobs::kinds::solve::argmax;
