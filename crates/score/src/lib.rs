//! Step scorers: judge every step of a rationale, or one new step given the steps before it.
//!
//! A [`StepScorer`] returns one [`StepScore`] per judged step (the probability that the
//! step, and everything before it, is correct) together with the [`Spent`] it cost.
//! Tokens a scorer makes a model generate or read (LLM judges, rollouts) are reported in
//! the *judge* columns of [`Spent`], so a strategy's total is exact.
//!
//! Scorers in this crate:
//!
//! | name | type | needs |
//! |---|---|---|
//! | `outcome` | [`OutcomeScorer`]: the final answer against the gold answer (via `stepwise-verify`) | gold |
//! | `arith` | [`ArithScorer`]: every arithmetic claim (`12 + 7 = 19`, `<<48/2=24>>`) checked exactly | nothing |
//! | `rollout` | [`RolloutScorer`]: Math-Shepherd soft value from k continuations | a policy [`Generator`] |
//! | `judge` | [`JudgeScorer`]: P(Yes)/(P(Yes)+P(No)) from a judge model, averaged over m judgments | a judge [`Generator`] |
//! | `self-judge` | [`JudgeScorer::self_judge`]: the same with the policy as its own judge | the policy |
//! | `self-prm` | [`SelfPrmScorer`]: Self-PRM (Feng et al. 2025): the policy rates its whole solution once (the self-judge's P(Yes) on `prompts/self-prm.txt`), every step gets that rating; rerank with `bon` | the policy |
//! | `head:PATH` | [`HeadScorer`]: a logistic head trained by stepwise on the model's hidden state at each step's end ([`train_head`]) | the judge model, else the policy (the model it was trained on) |
//! | `genprm` | [`GenPrmScorer`]: GenPRM (Zhao et al. 2025): m analyses with Python checks run in the sandbox, majority verdict, mean P(Yes) | a judge [`Generator`], python3 |
//! | `likert` | [`LikertScorer`]: the Likert judge with rationales (Trivedi et al. 2024): mean of several `Score: k` judgments on 1–N (`likert:N`, default 5) under criteria, normalized; solution-level | a judge [`Generator`] |
//! | `listener` | [`ListenerScorer`]: listener-rewarded thinking (Gambashidze et al. 2025): a frozen model's probability of the stated answer after reading only the reasoning; solution-level | a judge [`Generator`] (else the policy) with continuation log-probabilities |
//! | `drm` | [`DrmScorer`]: DRM (Wang et al. 2025): confidence (the policy's log-probabilities of reasoning and answer), relevance and coherence (judged), weighted (`drm:WC,WR,WH`); solution-level | the policy, a judge |
//! | `prm:URL` | [`HttpPrmScorer`]: a discriminative PRM behind HTTP (vLLM `/pooling`, or another `stepwise serve`) | a server |
//!
//! Not a step scorer but a judge of pairs: [`PairwiseJudge`] (Think-RM, Hong et al. 2025)
//! compares two solutions in both orders; best-of-N ranks its samples by its verdicts
//! (knockout or Bradley–Terry, [`stepwise_core::ranking`]).
//!
//! Step scores combine into a rationale score with [`Aggregation`] (last, min, prod, mean).
//!
//! ```
//! use stepwise_core::{Aggregation, Problem, Rationale};
//! use stepwise_score::{ArithScorer, StepScorer};
//!
//! # tokio_test_block_on(async {
//! let problem = Problem::new("p1", "What is 3 + 4?");
//! let r = Rationale::from_steps(["3 + 4 = 8", "The answer is 8."], Some("8".into()));
//! let scored = ArithScorer::default().score_rationale(&problem, &r).await.unwrap();
//! assert!(scored.scores[0].score < 0.5); // the wrong claim is caught
//! assert_eq!(scored.spent.generated_tokens(), 0); // checking costs no model tokens
//! assert!(Aggregation::Min.apply_scores(&scored.scores).unwrap() < 0.5);
//! # });
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! ```

mod arith;
pub mod component;
mod drm;
mod genprm;
mod head;
pub mod http_prm;
mod judge;
mod likert;
mod listener;
mod outcome;
mod pairwise;
mod prompt;
mod rollout;
mod self_prm;
mod spec;

pub use arith::ArithScorer;
pub use component::{ScorerComponent, ScorerComponents};
pub use drm::{DrmScorer, DrmWeights, confidence_score};
pub use genprm::{GenPrmScore, GenPrmScorer, GenPrmSettings, genprm_template};
pub use head::{
    Activation, Arch, Calibration, DEFAULT_SEPARATOR, ExtractProgress, Extracted, FeatureRecord,
    FeatureUnit, FeaturesConfig, HEAD_FORMAT_OLDEST, HEAD_FORMAT_VERSION, HeadError, HeadFeatures,
    HeadScorer, HiddenLayer, LabelledRecord, PrmHead, Targets, TrainConfig, TrainingSummary, auroc,
    extract_features, head_input, join_features, labels_until_first_error, processbench_labels,
    record_targets, records_from_run, split_records, train_head,
};
pub use http_prm::{HttpPrmScorer, PrmProtocol, PrmSettings};
pub use judge::{JudgeScorer, JudgeTemplate, Reasoning};
pub use likert::{
    DEFAULT_CRITERIA, LIKERT_PLACEHOLDERS, LIKERT_RECORD_VERSION, LikertJudgment, LikertRecord,
    LikertScorer, LikertSettings, likert_record, read_score,
};
pub use listener::{ListenerScorer, reasoning_without_answer};
pub use outcome::OutcomeScorer;
pub use pairwise::{PAIRWISE_PLACEHOLDERS, PairwiseJudge, Selected, Side, read_verdict};
pub use prompt::{PolicyPrompt, Template as PromptTemplate, fill as fill_template};
pub use rollout::RolloutScorer;
pub use self_prm::SelfPrmScorer;
pub use spec::{
    SCORER_NAMES, ScorerKind, ScorerSettings, ScorerSpec, SpecPart, build_scorer, needs_model,
    split_servers,
};
pub use stepwise_verify::claims;
pub use stepwise_verify::groups::{AnswerGroup, best_group, group_answers};
pub use stepwise_verify::{CheckedClaim, ClaimCheck};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
pub use stepwise_core::{Aggregation, Problem, Rationale, Spent, Step, StepScore};
use stepwise_model::EngineError;
pub use stepwise_model::Generator;

/// Errors of scorers.
#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    /// The model behind a scorer failed.
    #[error("{scorer}: model call failed")]
    Engine {
        scorer: String,
        #[source]
        source: EngineError,
    },
    /// A prompt template could not be read or is malformed.
    #[error("prompt template {place}: {reason}")]
    Template { place: String, reason: String },
    /// The scorer cannot work with what it was given (e.g. no gold answer for `outcome`).
    #[error("{scorer}: {reason}")]
    Unusable { scorer: String, reason: String },
}

/// Step scores and what computing them cost.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Scored {
    /// One score per judged step, in step order.
    pub scores: Vec<StepScore>,
    /// Tokens and calls spent, in the judge columns.
    pub spent: Spent,
}

impl Scored {
    /// The rationale score under an aggregation (`None` when there are no scores).
    pub fn aggregate(&self, agg: Aggregation) -> Option<f64> {
        agg.apply_scores(&self.scores)
    }

    /// Appends another result: its scores and its cost.
    pub fn extend(&mut self, other: Scored) {
        self.scores.extend(other.scores);
        self.spent += other.spent;
    }
}

/// Judges steps of rationales.
///
/// Both methods return scores whose `step` field is the 0-based index of the judged step
/// in its rationale. Costs go in the judge columns of [`Spent`].
#[async_trait]
pub trait StepScorer: Send + Sync {
    /// Short name, used as [`StepScore::scorer`] (e.g. `arith`, `judge`).
    fn name(&self) -> String;

    /// Scores `step`, the next step after `prefix` (the steps before it, indices
    /// `0..prefix.len()`). `answer` is the final answer when `step` ends the rationale,
    /// `None` while it is still open. Returns exactly one score.
    async fn score_step(
        &self,
        problem: &Problem,
        prefix: &[Step],
        step: &Step,
        answer: Option<&str>,
    ) -> Result<Scored, ScoreError>;

    /// Scores every step of a finished rationale (one score per step, in order).
    ///
    /// The default scores each step after its prefix with [`StepScorer::score_step`],
    /// passing the rationale's answer with the last step, and adds up the cost.
    async fn score_rationale(
        &self,
        problem: &Problem,
        rationale: &Rationale,
    ) -> Result<Scored, ScoreError> {
        let mut out = Scored::default();
        let n = rationale.steps.len();
        for (i, step) in rationale.steps.iter().enumerate() {
            let answer = if i + 1 == n {
                rationale.answer.as_deref()
            } else {
                None
            };
            let s = self
                .score_step(problem, &rationale.steps[..i], step, answer)
                .await?;
            out.extend(s);
        }
        Ok(out)
    }
}

/// The texts of `prefix` and then `step`: what scorers that read a whole solution at
/// once (a PRM server, a trained head) score when asked for one new step.
pub(crate) fn texts_through<'a>(prefix: &'a [Step], step: &'a Step) -> Vec<&'a str> {
    prefix
        .iter()
        .chain(std::iter::once(step))
        .map(|s| s.text.as_str())
        .collect()
}

/// Helper for scorers: an engine error tagged with the scorer's name.
pub(crate) fn engine_err(scorer: &str) -> impl FnOnce(EngineError) -> ScoreError + '_ {
    move |source| ScoreError::Engine {
        scorer: scorer.to_string(),
        source,
    }
}

/// `score_step` of a solution-level scorer (one score for the whole solution, given to
/// every step: listener, DRM): the solution through `step` scored whole, its last score
/// as the step's.
pub(crate) async fn solution_so_far(
    scorer: &(impl StepScorer + ?Sized),
    problem: &Problem,
    prefix: &[Step],
    step: &Step,
    answer: Option<&str>,
) -> Result<Scored, ScoreError> {
    let mut steps = prefix.to_vec();
    steps.push(step.clone());
    let r = Rationale {
        steps,
        answer: answer.map(String::from),
    };
    let mut s = scorer.score_rationale(problem, &r).await?;
    let last = s.scores.pop().map_or(0.0, |x| x.score);
    Ok(Scored {
        scores: vec![StepScore::new(step.index, last, scorer.name())],
        spent: s.spent,
    })
}

/// The scores of a solution-level scorer: `value` for every step of `steps`, each with
/// `detail`, and what it cost.
pub(crate) fn every_step(
    steps: &[Step],
    value: f64,
    scorer: &str,
    detail: &str,
    spent: Spent,
) -> Scored {
    Scored {
        scores: steps
            .iter()
            .map(|s| StepScore::new(s.index, value, scorer).with_detail(detail))
            .collect(),
        spent,
    }
}

/// One generation for a scorer (a judge's reasoning, a rollout), its call and tokens
/// charged to the judge columns of `spent`; an engine error names `scorer`.
pub(crate) async fn generate_charged(
    generator: &dyn stepwise_model::Generator,
    req: &stepwise_model::GenerateRequest,
    scorer: &str,
    spent: &mut Spent,
) -> Result<Vec<stepwise_model::Completion>, ScoreError> {
    let outs = generator.generate(req).await.map_err(engine_err(scorer))?;
    spent.judge_calls += 1;
    for c in &outs {
        spent.judge_tokens += c.generated_tokens;
        spent.judge_prompt_tokens += c.prompt_tokens;
    }
    Ok(outs)
}

/// Several scorers as one: each step's score is the product of the scorers' scores
/// (every scorer must accept the step), and the cost is the sum of theirs.
pub struct ProductScorer {
    scorers: Vec<std::sync::Arc<dyn StepScorer>>,
}

impl ProductScorer {
    /// Combines scorers; an empty list scores every step 1.
    pub fn new(scorers: Vec<std::sync::Arc<dyn StepScorer>>) -> Self {
        Self { scorers }
    }

    fn combine(&self, parts: Vec<Scored>, n: usize) -> Scored {
        let mut out = Scored::default();
        let name = self.name();
        for i in 0..n {
            let mut p = 1.0;
            let mut details = Vec::new();
            let mut step = i;
            for part in &parts {
                if let Some(s) = part.scores.get(i) {
                    p *= s.score;
                    step = s.step;
                    if let Some(d) = &s.detail {
                        details.push(format!("{}: {d}", s.scorer));
                    }
                }
            }
            let mut s = StepScore::new(step, p, name.clone());
            if !details.is_empty() {
                s = s.with_detail(details.join("; "));
            }
            out.scores.push(s);
        }
        for part in parts {
            out.spent += part.spent;
        }
        out
    }
}

#[async_trait]
impl StepScorer for ProductScorer {
    fn name(&self) -> String {
        self.scorers
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join("*")
    }

    async fn score_step(
        &self,
        problem: &Problem,
        prefix: &[Step],
        step: &Step,
        answer: Option<&str>,
    ) -> Result<Scored, ScoreError> {
        let mut parts = Vec::with_capacity(self.scorers.len());
        for s in &self.scorers {
            parts.push(s.score_step(problem, prefix, step, answer).await?);
        }
        Ok(self.combine(parts, 1))
    }

    async fn score_rationale(
        &self,
        problem: &Problem,
        rationale: &Rationale,
    ) -> Result<Scored, ScoreError> {
        let mut parts = Vec::with_capacity(self.scorers.len());
        for s in &self.scorers {
            parts.push(s.score_rationale(problem, rationale).await?);
        }
        Ok(self.combine(parts, rationale.steps.len()))
    }
}
