//! Boundary types of `solve` runs: what a strategy returns for a problem, as stored,
//! and how a sampling strategy's answer is chosen from its samples (shared by the
//! strategies of `stepwise-search` and by everyone who recomputes from stored samples).

use crate::RunKind;
use serde::{Deserialize, Serialize};
use stepwise_core::{Aggregation, Rationale, Spent, StepScore, Trace};
use stepwise_verify::{best_group, group_answers};

/// One candidate solution a strategy produced.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Sample {
    /// The text as kept (cut after the final answer).
    pub text: String,
    pub rationale: Rationale,
    /// Step scores, when the strategy scored it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scores: Vec<StepScore>,
    /// The rationale score (aggregated step scores), when scored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// Policy tokens generated for this sample (its own steps, in tree search).
    pub tokens: u64,
    /// Whether the sample reached a final answer by itself (not cut by a limit).
    pub finished: bool,
    /// Prompt tokens the policy read for this sample (sampling strategies).
    #[serde(default)]
    pub prompt_tokens: u64,
    /// What scoring this sample cost (sampling strategies).
    #[serde(default)]
    pub judge: Spent,
}

/// What a strategy returns for one problem.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub problem_id: String,
    pub strategy: String,
    /// The chosen final answer.
    pub answer: Option<String>,
    /// Index into `samples` of the chosen rationale.
    pub chosen: Option<usize>,
    pub samples: Vec<Sample>,
    /// Everything spent: policy and judges, tokens and calls.
    pub spent: Spent,
    pub trace: Trace,
}

impl Outcome {
    /// The chosen sample.
    pub fn chosen_sample(&self) -> Option<&Sample> {
        self.chosen.and_then(|i| self.samples.get(i))
    }
}

/// How a sampling strategy picks from its samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Selection {
    /// The answer most samples give (answers grouped by `verify` equivalence).
    Majority,
    /// The answer whose samples have the largest summed score (weighted self-consistency).
    Weighted,
    /// The single sample with the highest score.
    BestOfN,
}

impl Selection {
    pub fn name(self) -> &'static str {
        match self {
            Self::Majority => "majority",
            Self::Weighted => "weighted",
            Self::BestOfN => "bon",
        }
    }

    /// Whether the selection needs step scores.
    pub fn needs_scores(self) -> bool {
        self != Self::Majority
    }
}

/// Picks an answer from samples: `(answer, chosen index)`.
pub fn select(
    selection: Selection,
    samples: &[Sample],
    opts: &stepwise_verify::Options,
) -> (Option<String>, Option<usize>) {
    match selection {
        Selection::Majority | Selection::Weighted => {
            let answers: Vec<Option<String>> =
                samples.iter().map(|s| s.rationale.answer.clone()).collect();
            let weights: Vec<f64> = samples
                .iter()
                .map(|s| match selection {
                    Selection::Majority => 1.0,
                    _ => s.score.unwrap_or(0.0),
                })
                .collect();
            let groups = group_answers(&answers, &weights, opts);
            match best_group(&groups) {
                None => (None, None),
                Some(g) => {
                    // the group's best-scored member (first on ties) stands for it
                    let pick =
                        g.members[argmax(g.members.iter().map(|&i| weights[i])).unwrap_or(0)];
                    (Some(g.answer.clone()), Some(pick))
                }
            }
        }
        Selection::BestOfN => {
            let best = argmax(samples.iter().map(|s| s.score.unwrap_or(f64::NEG_INFINITY)));
            (best.and_then(|i| samples[i].rationale.answer.clone()), best)
        }
    }
}

/// Index of the largest score; ties go to the lowest index; NaN never wins.
pub fn argmax(scores: impl IntoIterator<Item = f64>) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (i, s) in scores.into_iter().enumerate() {
        let s = if s.is_nan() { f64::NEG_INFINITY } else { s };
        if best.is_none_or(|(_, b)| s > b) {
            best = Some((i, s));
        }
    }
    best.map(|b| b.0)
}

/// A stored `solve` unit: the strategy's outcome for one problem and whether its answer
/// verified against the gold answer (absent without gold).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SolveRecord {
    #[serde(flatten)]
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correct: Option<bool>,
    /// What the prompt program asked (runs with `--prompting`; absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<crate::kinds::prompting::BuiltPrompt>,
}

/// The settings of sampling, tree search and scoring that `solve` and `scale` share:
/// everything besides the strategy and budget that changes what a run produces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchSettings {
    /// Step scorer spec (`arith`, `judge`, `prm:URL`, `arith*judge`, …); none for
    /// strategies that need no scores.
    pub scorer: Option<String>,
    /// How step scores combine into a rationale score.
    pub aggregation: Aggregation,
    pub temperature: f32,
    /// Most tokens of one whole answer.
    pub max_tokens: u32,
    /// Most tokens of one step (tree search).
    pub max_step_tokens: u32,
    pub seed: u64,
    /// Step delimiter (`blank`, `step`, `line`, `custom:SEP`).
    pub delimiter: String,
    /// Expansions per beam / per node.
    pub expansions: usize,
    pub max_steps: usize,
    pub lookahead: usize,
    /// PUCT exploration constant (mcts).
    pub c_puct: f64,
    /// Rollouts per step of the `rollout` scorer.
    pub rollouts: usize,
    /// Judgments averaged per step by judges.
    pub judgments: usize,
    /// Reasoning tokens a judge may write before its verdict.
    pub judge_reasoning: Option<u32>,
    /// Text of the policy prompt template; `None` is the built-in one.
    pub policy_prompt: Option<String>,
    /// Text of the judge prompt template; `None` is the built-in one.
    pub judge_prompt: Option<String>,
    /// The judge backend's name when the judge is not the policy.
    pub judge: Option<String>,
    /// The prompt program (`--prompting`): template, method, demo rule and pool. Absent
    /// in runs made before it existed and in runs without one, which read unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompting: Option<crate::kinds::prompting::PromptingSettings>,
    /// The critic of `critique-refine`: its templates and critique length. Absent in runs
    /// made before it existed and in runs of other strategies (the built-ins then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub critique: Option<CritiqueSettings>,
    /// Best-of-N by pairwise verdicts (`--select pairwise-knockout|pairwise-bt`) instead
    /// of the scorer's scores. Absent in runs made before it existed and in runs that
    /// select by score, which read unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pairwise: Option<crate::kinds::pairwise::PairwiseSettings>,
    /// The Likert judge's settings when the scorer spec names `likert`. Absent otherwise
    /// (and in runs made before it existed), which read unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub likert: Option<LikertOptions>,
}

/// How `critique-refine`'s critic and refiner are prompted (its rounds are the run's `n`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CritiqueSettings {
    /// Text of the critic template; `None` is the built-in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub critic_prompt: Option<String>,
    /// Text of the refine template; `None` is the built-in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refine_prompt: Option<String>,
    /// Most tokens of one critique; `None` is the run's `max_tokens`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub critic_max_tokens: Option<u32>,
}

/// The `likert` scorer's settings as a run stores them (its scale is in the spec,
/// `likert:N`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LikertOptions {
    /// The criteria text; `None` is the built-in rubric.
    pub criteria: Option<String>,
    /// Judgments sampled per input.
    pub samples: usize,
    /// Tokens of each judgment.
    pub max_tokens: u32,
}

impl Default for SearchSettings {
    /// The defaults of `stepwise solve` and `stepwise scale`.
    fn default() -> Self {
        Self {
            scorer: None,
            aggregation: Aggregation::Min,
            temperature: 0.7,
            max_tokens: 256,
            max_step_tokens: 96,
            seed: 0,
            delimiter: "blank".into(),
            expansions: 4,
            max_steps: 8,
            lookahead: 0,
            c_puct: 1.5,
            rollouts: 4,
            judgments: 1,
            judge_reasoning: None,
            policy_prompt: None,
            judge_prompt: None,
            judge: None,
            prompting: None,
            critique: None,
            pairwise: None,
            likert: None,
        }
    }
}

/// Everything that decides a `solve` run's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SolveConfig {
    /// Dataset spec (`gsm8k:test`, `arith:ops=2,n=20`, a file).
    pub dataset: String,
    pub limit: Option<usize>,
    pub strategy: crate::kinds::scale::ScaleStrategy,
    /// Samples (sampling strategies) or candidates per step (tree search).
    pub n: usize,
    /// Generated tokens per problem, policy + judges; `None` is no limit.
    pub budget: Option<u64>,
    /// The policy backend's name.
    pub policy: String,
    /// Whether the policy (and judge) backends were reproducible
    /// (`Generator::reproducible`): a resumed run then equals an uninterrupted one byte for
    /// byte. Runs made before it existed read as `false` (they were not).
    #[serde(default)]
    pub reproducible: bool,
    pub search: SearchSettings,
}

/// `solve` runs: one unit per problem, keyed by its id.
pub struct Solve;

impl RunKind for Solve {
    const KIND: &'static str = "solve";
    const VERSION: u32 = 2;
    type Config = SolveConfig;
    type Record = SolveRecord;
}
