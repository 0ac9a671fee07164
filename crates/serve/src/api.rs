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
    /// Gold answers, one per query, as the trainer's dataset has them: a string, a
    /// number (its canonical text), a list (any of them is right) or null (no gold:
    /// only the components that need none reward it, and `no_gold` is 1).
    #[schema(value_type = Vec<Object>)]
    pub labels: Vec<stepwise_reward::Gold>,
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
    /// Optional, an addition to the body (absent: none): per generated token, the
    /// log-probabilities of its top-k alternatives (`[[-0.1, -2.5, …], …]`, as vLLM's or
    /// OpenAI's `top_logprobs` give them), for the `self_certainty` component.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<Vec<Vec<f64>>>,
}

/// `POST /v1/rewards` request.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RewardsRequest {
    pub items: Vec<RewardItem>,
}

pub use stepwise_reward::RewardResult;
pub use stepwise_reward::group::{Group, GroupResult};

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
    #[serde(default, deserialize_with = "step_limits::bounded_steps")]
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
    /// Where the step starts in the item's text, in Unicode scalar values (Python `str`
    /// indices). The text is the item's `response`, or its `steps` joined by the
    /// delimiter's separator (`"\n\n"` for `blank-line`, `"\n"` for `step-label` and
    /// `line`, the literal `SEP` of `custom:SEP`). An addition: absent from older servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub char_start: Option<usize>,
    /// Where the step ends (exclusive) in the same text and unit as `char_start`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub char_end: Option<usize>,
    /// `char_start` as a byte offset into the UTF-8 text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub byte_start: Option<usize>,
    /// `char_end` as a byte offset into the UTF-8 text (exclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub byte_end: Option<usize>,
    /// Only when the server has a tokenizer (`--tokenizer tokenizer.json`): how many tokens
    /// of the same text, encoded alone without special tokens, start before the step's
    /// end, so the step's last token is `token_end - 1` (where a trainer puts its reward).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_end: Option<usize>,
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

/// Step caps applied while a request body is parsed, so a `steps` array past the server's
/// caps is refused before millions of strings are built from it.
///
/// serde gives a `Deserialize` impl no context, so the caps travel in a thread-local
/// that [`parse_within`](step_limits::parse_within) sets around one synchronous parse;
/// outside it, `steps` is read without a cap.
pub mod step_limits {
    use serde::de::{Deserializer, Error, SeqAccess, Visitor};
    use std::cell::RefCell;

    /// The caps on steps in one item and in one request.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct StepLimits {
        pub per_item: usize,
        pub per_request: usize,
    }

    struct Budget {
        limits: StepLimits,
        seen: usize,
        exceeded: Option<String>,
    }

    thread_local! {
        static BUDGET: RefCell<Option<Budget>> = const { RefCell::new(None) };
    }

    /// Runs `parse` with the caps in force; returns its result and, when a cap
    /// stopped it, the message naming that cap.
    pub fn parse_within<R>(limits: StepLimits, parse: impl FnOnce() -> R) -> (R, Option<String>) {
        BUDGET.with(|b| {
            *b.borrow_mut() = Some(Budget {
                limits,
                seen: 0,
                exceeded: None,
            })
        });
        let r = parse();
        let exceeded = BUDGET
            .with(|b| b.borrow_mut().take())
            .and_then(|b| b.exceeded);
        (r, exceeded)
    }

    /// Counts one more step of an item that has `in_item` so far (this one included).
    fn take(in_item: usize) -> Result<(), String> {
        BUDGET.with(|b| {
            let mut b = b.borrow_mut();
            let Some(b) = b.as_mut() else { return Ok(()) };
            b.seen += 1;
            let msg = if in_item > b.limits.per_item {
                format!(
                    "an item has more than {} steps; the server's max_steps_per_item is {}",
                    b.limits.per_item, b.limits.per_item
                )
            } else if b.seen > b.limits.per_request {
                format!(
                    "more than {} steps in one request; the server's max_steps_per_request is {}",
                    b.limits.per_request, b.limits.per_request
                )
            } else {
                return Ok(());
            };
            b.exceeded = Some(msg.clone());
            Err(msg)
        })
    }

    /// `steps`: an optional array of strings, counted against the caps as it is read.
    pub(crate) fn bounded_steps<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Vec<String>>, D::Error> {
        struct Opt;
        struct Seq;
        impl<'de> Visitor<'de> for Seq {
            type Value = Vec<String>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an array of step texts")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
                let mut steps = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    take(steps.len() + 1).map_err(A::Error::custom)?;
                    steps.push(s);
                }
                Ok(steps)
            }
        }
        impl<'de> Visitor<'de> for Opt {
            type Value = Option<Vec<String>>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an array of step texts or null")
            }
            fn visit_none<E: Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_unit<E: Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
                d.deserialize_seq(Seq).map(Some)
            }
        }
        d.deserialize_option(Opt)
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::api::StepRewardsRequest;

        fn parse(body: &str, limits: StepLimits) -> (bool, Option<String>) {
            let (r, exceeded) =
                parse_within(limits, || serde_json::from_str::<StepRewardsRequest>(body));
            (r.is_ok(), exceeded)
        }

        #[test]
        fn steps_past_a_cap_stop_the_parse_and_name_the_cap() {
            let limits = StepLimits {
                per_item: 2,
                per_request: 3,
            };
            let ok = r#"{"items": [{"steps": ["a", "b"]}, {"steps": ["c"]}, {"steps": null}, {}]}"#;
            assert_eq!(parse(ok, limits), (true, None));
            let (ok, why) = parse(r#"{"items": [{"steps": ["a", "b", "c"]}]}"#, limits);
            assert!(!ok);
            assert!(why.unwrap().contains("max_steps_per_item is 2"));
            let (ok, why) = parse(
                r#"{"items": [{"steps": ["a", "b"]}, {"steps": ["c", "d"]}]}"#,
                limits,
            );
            assert!(!ok);
            assert!(why.unwrap().contains("max_steps_per_request is 3"));
            // outside parse_within nothing is capped, and no budget is left behind
            let many = format!(r#"{{"items": [{{"steps": {:?}}}]}}"#, vec!["x"; 10]);
            assert!(serde_json::from_str::<StepRewardsRequest>(&many).is_ok());
        }
    }
}

/// `POST /v1/group_rewards` request: one group (a prompt and its N responses) or a list.
///
/// Read by hand rather than as an untagged enum: serde's untagged error ("did not match
/// any variant") names neither the field nor the problem. A body with a `groups` key is
/// the list, any other body is one group, and an error names the field that is wrong.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(untagged)]
pub enum GroupRewardsRequest {
    Many { groups: Vec<Group> },
    One(Group),
}

impl<'de> Deserialize<'de> for GroupRewardsRequest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let mut body = serde_json::Value::deserialize(d)?;
        let named = |prefix: &str, e: serde_path_to_error::Error<serde_json::Error>| {
            let path = e.path().to_string();
            let at = match (prefix, path.as_str()) {
                ("", ".") => String::new(),
                ("", p) => format!("{p}: "),
                (pre, ".") => format!("{pre}: "),
                (pre, p) if p.starts_with('[') => format!("{pre}{p}: "),
                (pre, p) => format!("{pre}.{p}: "),
            };
            D::Error::custom(format!("{at}{}", e.into_inner()))
        };
        match body.as_object_mut().and_then(|o| o.remove("groups")) {
            Some(groups) => serde_path_to_error::deserialize(groups)
                .map(|groups| Self::Many { groups })
                .map_err(|e| named("groups", e)),
            None => serde_path_to_error::deserialize(body)
                .map(Self::One)
                .map_err(|e| named("", e)),
        }
    }
}

impl GroupRewardsRequest {
    /// The groups, in order.
    pub fn into_groups(self) -> Vec<Group> {
        match self {
            Self::Many { groups } => groups,
            Self::One(g) => vec![g],
        }
    }
}

/// `POST /v1/group_rewards` response: one result per group, in order.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GroupRewardsResponse {
    pub groups: Vec<GroupResult>,
}
