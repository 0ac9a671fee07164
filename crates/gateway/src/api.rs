//! The gateway's HTTP boundary types: the OpenAI chat and text completion requests and
//! answers (the fields the gateway reads and writes; unknown request fields are ignored,
//! as OpenAI-compatible servers do), and the `stepwise` extension carried by both.
//!
//! The extension's layout is versioned by [`STEPWISE_API_VERSION`], sent in every
//! answer's `stepwise.version`.

use serde::{Deserialize, Serialize};
use stepwise_core::{Spent, Trace};

/// Version of the `stepwise` request and answer fields.
pub const STEPWISE_API_VERSION: u32 = 1;

/// A message's content: a string or an array of parts (`{"type": "text", "text": …}`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<ContentPart>),
}

/// One part of a message's content; parts other than text are refused.
#[derive(Debug, Clone, Deserialize)]
pub struct ContentPart {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub text: Option<String>,
}

impl Content {
    /// The text of the content (text parts joined), or the type of the first part that
    /// is not text.
    pub fn text(&self) -> Result<String, String> {
        match self {
            Content::Text(s) => Ok(s.clone()),
            Content::Parts(parts) => {
                let mut out = String::new();
                for p in parts {
                    match (&p.kind[..], &p.text) {
                        ("text", Some(t)) => out.push_str(t),
                        (k, _) => return Err(k.to_string()),
                    }
                }
                Ok(out)
            }
        }
    }
}

/// A chat message of a request.
#[derive(Debug, Clone, Deserialize)]
pub struct InMessage {
    pub role: String,
    #[serde(default)]
    pub content: Option<Content>,
}

/// `stop`: one string or several.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    One(String),
    Many(Vec<String>),
}

impl Stop {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            Stop::One(s) => vec![s],
            Stop::Many(v) => v,
        }
    }
}

/// `stream_options`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StreamOptions {
    /// A last chunk with `usage` and no choices (OpenAI's option).
    #[serde(default)]
    pub include_usage: bool,
}

/// The `stepwise` extension of a request: overrides of what the model name says.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepwiseRequest {
    /// majority, weighted, bon, beam, vbeam, dvts, mcts.
    #[serde(default)]
    pub strategy: Option<String>,
    /// Samples (majority, weighted, bon) or candidates per step (tree search).
    #[serde(default)]
    pub n: Option<usize>,
    /// Scorer spec; must be one the gateway serves.
    #[serde(default)]
    pub scorer: Option<String>,
    /// Most generated tokens (policy and judges together).
    #[serde(default)]
    pub budget: Option<u64>,
    /// Deadline in milliseconds (at most the gateway's own).
    #[serde(default)]
    pub deadline_ms: Option<u64>,
    /// How best-of-N picks its answer: `score` (its scorer), `pairwise-knockout` or
    /// `pairwise-bt` (Think-RM verdicts of the judge, else the policy, over its samples:
    /// a knockout bracket, or Bradley–Terry over every pair). Default: the gateway's own
    /// `--select`.
    #[serde(default)]
    pub select: Option<String>,
    /// Return the search tree (the strategy's trace) in `stepwise.tree`.
    #[serde(default)]
    pub tree: bool,
    /// The problem's id: seeds derive from it and the seed, as in `stepwise solve` and
    /// `stepwise scale` (default `gateway`).
    #[serde(default)]
    pub id: Option<String>,
}

/// The fields of chat and text completion requests the gateway reads.
#[derive(Debug, Clone, Deserialize)]
pub struct CommonRequest {
    pub model: String,
    #[serde(default)]
    pub stream: bool,
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    #[serde(default)]
    pub max_tokens: Option<u32>,
    #[serde(default)]
    pub max_completion_tokens: Option<u32>,
    #[serde(default)]
    pub temperature: Option<f32>,
    #[serde(default)]
    pub top_p: Option<f32>,
    #[serde(default)]
    pub seed: Option<u64>,
    /// Choices asked for; the gateway answers one (the search's choice).
    #[serde(default)]
    pub n: Option<usize>,
    #[serde(default)]
    pub stop: Option<Stop>,
    #[serde(default)]
    pub stepwise: Option<StepwiseRequest>,
}

/// `POST /v1/chat/completions`.
#[derive(Debug, Clone, Deserialize)]
pub struct ChatRequest {
    pub messages: Vec<InMessage>,
    #[serde(flatten)]
    pub common: CommonRequest,
}

/// A text completion prompt: one string, or an array of exactly one.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum TextPrompt {
    One(String),
    Many(Vec<String>),
}

/// `POST /v1/completions`.
#[derive(Debug, Clone, Deserialize)]
pub struct CompletionRequest {
    pub prompt: TextPrompt,
    #[serde(flatten)]
    pub common: CommonRequest,
}

/// Tokens as the client sees them: its prompt and the answer it got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
}

impl Usage {
    pub fn new(prompt_tokens: u64, completion_tokens: u64) -> Self {
        Self {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens + completion_tokens,
        }
    }
}

/// One candidate the search considered (a sample, or a finished leaf of a tree).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub text: String,
    pub answer: Option<String>,
    /// The aggregated score, when the strategy scored it.
    pub score: Option<f64>,
    /// Step scores, when scored.
    pub step_scores: Vec<f64>,
    /// Policy tokens generated for it (its own steps, in tree search).
    pub tokens: u64,
    pub finished: bool,
}

/// The `stepwise` field of an answer: what the search did and cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepwiseInfo {
    /// [`STEPWISE_API_VERSION`].
    pub version: u32,
    /// The strategy with its settings, e.g. `bon(n=4)`; `passthrough` for the upstream model.
    pub strategy: String,
    pub scorer: Option<String>,
    /// The extracted final answer of the chosen candidate.
    pub answer: Option<String>,
    /// Index into `candidates` of the answer.
    pub chosen: Option<usize>,
    /// True when the answer is the best candidate so far, not the finished search: an
    /// upstream failed, or the budget or deadline ran out (`partial_reason` says which).
    pub partial: bool,
    pub partial_reason: Option<String>,
    /// Everything spent: policy and judge tokens (generated and prompt) and calls.
    pub spent: Spent,
    pub candidates: Vec<Candidate>,
    /// The search tree (the strategy's trace), when asked for with `stepwise.tree`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tree: Option<Trace>,
}

/// A message of an answer.
#[derive(Debug, Clone, Serialize)]
pub struct OutMessage {
    pub role: &'static str,
    pub content: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChatChoice {
    pub index: usize,
    pub message: OutMessage,
    pub finish_reason: &'static str,
    pub logprobs: Option<()>,
}

/// The answer of `/v1/chat/completions`.
#[derive(Debug, Clone, Serialize)]
pub struct ChatResponse {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub model: String,
    pub choices: Vec<ChatChoice>,
    pub usage: Usage,
    pub stepwise: StepwiseInfo,
}

#[derive(Debug, Clone, Serialize)]
pub struct TextChoice {
    pub index: usize,
    pub text: String,
    pub finish_reason: &'static str,
    pub logprobs: Option<()>,
}

/// The answer of `/v1/completions`.
#[derive(Debug, Clone, Serialize)]
pub struct CompletionResponse {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub model: String,
    pub choices: Vec<TextChoice>,
    pub usage: Usage,
    pub stepwise: StepwiseInfo,
}

/// One entry of `/v1/models`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelEntry {
    pub id: String,
    pub object: String,
    pub created: u64,
    pub owned_by: String,
}

/// `/v1/models`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelList {
    pub object: String,
    pub data: Vec<ModelEntry>,
}

/// An error answer, as OpenAI's: `{"error": {"message", "type", "code"}}`.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize)]
pub struct ErrorDetail {
    pub message: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub code: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_the_openai_client_sends() {
        let body = r#"{"model":"bon/arith","messages":[{"role":"system","content":"x"},
            {"role":"user","content":[{"type":"text","text":"2+"},{"type":"text","text":"2?"}]}],
            "stream":true,"stream_options":{"include_usage":true},"seed":3,"stop":"\n\n",
            "frequency_penalty":0,"stepwise":{"n":4,"tree":true}}"#;
        let r: ChatRequest = serde_json::from_str(body).unwrap();
        assert_eq!(r.common.model, "bon/arith");
        assert_eq!(
            r.messages[1].content.as_ref().unwrap().text().unwrap(),
            "2+2?"
        );
        assert!(r.common.stream && r.common.stream_options.unwrap().include_usage);
        assert_eq!(r.common.stop.unwrap().into_vec(), ["\n\n"]);
        let s = r.common.stepwise.unwrap();
        assert_eq!((s.n, s.tree), (Some(4), true));
        let bad = r#"{"model":"m","prompt":"p","stepwise":{"n":2,"nn":3}}"#;
        let e = serde_json::from_str::<CompletionRequest>(bad).unwrap_err();
        assert!(e.to_string().contains("nn"), "{e}");
        let img = Content::Parts(vec![ContentPart {
            kind: "image_url".into(),
            text: None,
        }]);
        assert_eq!(img.text().unwrap_err(), "image_url");
    }
}
