//! Request and response bodies of every endpoint.
//!
//! These types are the wire format; `/openapi.json` is derived from them.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Per-component values for a batch: component name to one value per item, in item order.
pub type ExtraLogs = BTreeMap<String, Vec<f64>>;

/// OpenRLHF remote reward model request (`--remote_rm_url http://host:port/get_reward`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GetRewardRequest {
    /// Prompt + response, as the trainer decoded them.
    pub query: Vec<String>,
    /// The prompts; the response is `query` minus this prefix.
    pub prompts: Vec<String>,
    /// Gold answers, one per query.
    pub labels: Vec<String>,
}

/// OpenRLHF remote reward model response.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GetRewardResponse {
    /// The weighted reward of each query.
    pub rewards: Vec<f64>,
    /// Same as `rewards` (OpenRLHF uses it for dynamic filtering).
    pub scores: Vec<f64>,
    /// Each component's unweighted value per query, plus diagnostics
    /// (`timed_out`, `prompt_mismatch`, `no_answer`, `undecided`) as 0/1.
    pub extra_logs: ExtraLogs,
}

/// One rollout to reward.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RewardItem {
    /// The prompt the policy saw (used by the format check when it ends with `<think>`).
    #[serde(default)]
    pub prompt: String,
    /// The policy's response only (without the prompt).
    pub response: String,
    /// The gold answer.
    pub gold: String,
    /// Selects the reward function configured for this source (`[sources."name"]`);
    /// unknown or absent sources use the default reward function.
    #[serde(default)]
    pub data_source: Option<String>,
}

/// `POST /v1/rewards` request.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RewardsRequest {
    pub items: Vec<RewardItem>,
}

/// The reward of one item and its parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RewardResult {
    /// Sum of weight × component value.
    pub reward: f64,
    /// Unweighted component values by component name.
    pub components: BTreeMap<String, f64>,
    /// The answer extracted from the response, when one was found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    /// True when the request deadline passed before this item was scored;
    /// `reward` is then the configured `timeout_reward`.
    #[serde(default)]
    pub timed_out: bool,
}

/// `POST /v1/rewards` response.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RewardsResponse {
    pub results: Vec<RewardResult>,
}

/// A gold answer and a predicted answer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VerifyPair {
    pub gold: String,
    pub pred: String,
}

/// `POST /v1/verify` request.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VerifyRequest {
    pub pairs: Vec<VerifyPair>,
    /// When true, `pred` is a whole solution and its final answer is extracted first
    /// (last `\boxed{}`, then "final answer" phrases, then the last number).
    #[serde(default)]
    pub extract: bool,
}

/// The outcome of one comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VerdictName {
    Equal,
    NotEqual,
    Undecided,
}

impl From<stepwise_verify::Verdict> for VerdictName {
    fn from(v: stepwise_verify::Verdict) -> Self {
        match v {
            stepwise_verify::Verdict::Equal => Self::Equal,
            stepwise_verify::Verdict::NotEqual => Self::NotEqual,
            stepwise_verify::Verdict::Undecided => Self::Undecided,
        }
    }
}

/// One verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct VerifyResult {
    pub verdict: VerdictName,
    /// The answer compared (after extraction when `extract` was set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pred_answer: Option<String>,
    /// True when the request deadline passed first (`verdict` is then `undecided`).
    #[serde(default)]
    pub timed_out: bool,
}

/// `POST /v1/verify` response.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VerifyResponse {
    pub results: Vec<VerifyResult>,
}

/// One solution to score step by step: give `steps`, or a `response` to split.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StepRewardItem {
    /// The problem text (passed to the scorer).
    #[serde(default)]
    pub prompt: String,
    /// The solution text, split into steps by `delimiter` (ignored when `steps` is given).
    #[serde(default)]
    pub response: Option<String>,
    /// The steps, already split.
    #[serde(default)]
    pub steps: Option<Vec<String>>,
    /// Gold answer (required by the `outcome` scorer).
    #[serde(default)]
    pub gold: Option<String>,
}

/// `POST /v1/step_rewards` request.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StepRewardsRequest {
    pub items: Vec<StepRewardItem>,
    /// Model-free step scorers: `arith` (arithmetic claim checker, the default),
    /// `outcome` (final answer verified against `gold`), or a product such as `arith*outcome`.
    #[serde(default)]
    pub scorer: Option<String>,
    /// How step scores combine into `aggregate`: `min` (default), `last`, `prod`, `mean`.
    #[serde(default)]
    pub aggregation: Option<String>,
    /// Step delimiter for `response`: `blank-line` (default), `step-label`, `line`.
    #[serde(default)]
    pub delimiter: Option<String>,
}

/// The score of one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StepScoreOut {
    /// 0-based step index.
    pub index: usize,
    /// Probability-like score in [0, 1].
    pub score: f64,
    /// The scorer's reason, when it gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Step scores of one item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StepRewardResult {
    pub steps: Vec<StepScoreOut>,
    /// The aggregation of the step scores (`null` when there are no steps or it timed out).
    pub aggregate: Option<f64>,
    /// The final answer found in the solution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    /// True when the request deadline passed first (`steps` is then empty).
    #[serde(default)]
    pub timed_out: bool,
    /// Why the scorer failed on this item, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `POST /v1/step_rewards` response.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StepRewardsResponse {
    /// The scorer used.
    pub scorer: String,
    /// The aggregation used.
    pub aggregation: String,
    pub results: Vec<StepRewardResult>,
}

/// `GET /health` response.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HealthResponse {
    /// Always `ok` while the server accepts requests.
    pub status: String,
    pub version: String,
    /// Name of the default reward function.
    pub reward: String,
    /// Scoring requests being served now.
    pub in_flight: u64,
    /// The most scoring requests served at once before 503.
    pub max_concurrency: u64,
}

/// Every error body.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorResponse {
    pub error: ErrorBody,
}

/// What went wrong.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Machine-readable kind: `bad_json`, `invalid_request`, `unauthorized`,
    /// `payload_too_large`, `overloaded`, `unsupported_media_type`, `internal`.
    pub code: String,
    /// Human-readable explanation naming the offending field or item.
    pub message: String,
}
