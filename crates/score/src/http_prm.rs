//! Discriminative process reward models served over HTTP (`prm:URL`).
//!
//! A PRM reads the question and the whole solution once and returns one probability per
//! step. Two wire protocols:
//!
//! - [`PrmProtocol::Vllm`]: vLLM's pooling API, `POST /pooling`, for PRMs served with
//!   `vllm serve Qwen/Qwen2.5-Math-PRM-7B --runner pooling` (older vLLM: `--task reward`)
//!   or any model whose pooler returns one class-probability pair per step tag
//!   (Math-Shepherd style PRMs with `step_tag_id`). The request is a chat
//!   (system, user = question, assistant = every step followed by the step tag, as the
//!   Qwen2.5-Math-PRM model card prescribes); the answer's `data[0].data` holds one
//!   `[p_negative, p_positive]` pair (or one probability) per tag.
//! - [`PrmProtocol::Stepwise`]: another stepwise server's `POST /v1/step_rewards`
//!   (`stepwise serve`), e.g. a bigger machine running the checkers.
//!
//! Transport (least-loaded endpoints, retries with backoff on 429/5xx/refused
//! connections, timeouts) is the engine's OpenAI-compatible HTTP client.

use crate::{ScoreError, Scored, StepScorer, engine_err};
use async_trait::async_trait;
use serde_json::{Value, json};
use std::str::FromStr;
use std::time::Duration;
use stepwise_core::{Problem, Rationale, Spent, Step, StepScore};
use stepwise_http::{HttpConfig, HttpGenerator};

/// The system prompt of the Qwen2.5-Math-PRM model card (the default of `vllm`).
pub const QWEN_PRM_SYSTEM: &str =
    "Please reason step by step, and put your final answer within \\boxed{}.";

/// How a PRM server is spoken to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrmProtocol {
    /// vLLM's pooling API (`/pooling`).
    Vllm,
    /// stepwise's own `/v1/step_rewards`.
    Stepwise,
}

impl PrmProtocol {
    pub fn name(self) -> &'static str {
        match self {
            Self::Vllm => "vllm",
            Self::Stepwise => "stepwise",
        }
    }

    fn default_path(self) -> &'static str {
        match self {
            Self::Vllm => "/pooling",
            Self::Stepwise => "/v1/step_rewards",
        }
    }
}

impl FromStr for PrmProtocol {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "vllm" | "pooling" => Ok(Self::Vllm),
            "stepwise" => Ok(Self::Stepwise),
            other => Err(format!(
                "unknown PRM protocol '{other}' (expected vllm or stepwise)"
            )),
        }
    }
}

/// Settings of an HTTP PRM.
#[derive(Debug, Clone)]
pub struct PrmSettings {
    pub protocol: PrmProtocol,
    /// Request path; `None` = the protocol's (`/pooling`, `/v1/step_rewards`).
    pub path: Option<String>,
    /// Model name sent with vLLM requests (vLLM accepts its served model name or none).
    pub model: Option<String>,
    pub api_key: Option<String>,
    /// Text put after every step (`vllm`); the model's step-tag token.
    pub step_tag: String,
    /// System message (`vllm`); `None` sends no system message.
    pub system: Option<String>,
    /// Which entry of a per-step probability pair is "correct" (`vllm`): 1 for
    /// Qwen2.5-Math-PRM (`[negative, positive]`), 0 for a Math-Shepherd PRM served with
    /// `returned_token_ids` = [good, bad].
    pub positive_index: usize,
    /// The remote scorer (`stepwise`): e.g. `arith`, `outcome`; `None` = the server's default.
    pub remote_scorer: Option<String>,
    pub timeout: Duration,
    pub retries: u32,
    /// Requests in flight per endpoint.
    pub concurrency: usize,
    /// Servers given apart from the scorer spec (`--prm-endpoint`: a worker's own); when
    /// set they replace the URLs of `prm:URL`, and a bare `prm` spec uses them.
    pub endpoints: Vec<String>,
}

impl Default for PrmSettings {
    fn default() -> Self {
        Self {
            protocol: PrmProtocol::Vllm,
            path: None,
            model: None,
            api_key: None,
            step_tag: "<extra_0>".into(),
            system: Some(QWEN_PRM_SYSTEM.into()),
            positive_index: 1,
            remote_scorer: None,
            timeout: Duration::from_secs(600),
            retries: 5,
            concurrency: 16,
            endpoints: Vec::new(),
        }
    }
}

/// A process reward model behind HTTP, as a [`StepScorer`] named `prm`.
pub struct HttpPrmScorer {
    client: HttpGenerator,
    settings: PrmSettings,
    endpoints: String,
}

impl HttpPrmScorer {
    /// A scorer that sends each rationale to one of `urls` (base URLs such as
    /// `http://gpu-box:8000`; several are load-balanced).
    pub fn new(urls: Vec<String>, settings: PrmSettings) -> Result<Self, ScoreError> {
        let unusable = |reason: String| ScoreError::Unusable {
            scorer: "prm".into(),
            reason,
        };
        if settings.protocol == PrmProtocol::Vllm && settings.step_tag.is_empty() {
            return Err(unusable("the step tag must not be empty".into()));
        }
        if settings.positive_index > 1 {
            return Err(unusable(format!(
                "positive index {} is not 0 or 1",
                settings.positive_index
            )));
        }
        let endpoints = urls.join(",");
        let mut cfg = HttpConfig::new(urls);
        cfg.model = settings.model.clone();
        cfg.api_key = settings.api_key.clone();
        cfg.timeout = settings.timeout;
        cfg.max_retries = settings.retries;
        cfg.max_concurrency = settings.concurrency.max(1);
        let client = HttpGenerator::new(cfg).map_err(|e| unusable(e.to_string()))?;
        Ok(Self {
            client,
            settings,
            endpoints,
        })
    }

    fn path(&self) -> &str {
        self.settings
            .path
            .as_deref()
            .unwrap_or_else(|| self.settings.protocol.default_path())
    }

    /// The request body for `steps` of `problem`.
    pub fn request_body(&self, problem: &Problem, steps: &[&str]) -> Value {
        let s = &self.settings;
        match s.protocol {
            PrmProtocol::Vllm => {
                // A tag inside a step would add a score the caller did not ask for.
                let assistant: String = steps
                    .iter()
                    .map(|t| format!("{}{}", t.replace(&s.step_tag, ""), s.step_tag))
                    .collect();
                let mut messages = Vec::new();
                if let Some(sys) = &s.system {
                    messages.push(json!({"role": "system", "content": sys}));
                }
                messages.push(json!({"role": "user", "content": problem.question}));
                messages.push(json!({"role": "assistant", "content": assistant}));
                let mut body = json!({
                    "messages": messages,
                    "add_generation_prompt": false,
                });
                if let Some(m) = &s.model {
                    body["model"] = json!(m);
                }
                body
            }
            PrmProtocol::Stepwise => {
                let mut item = json!({"prompt": problem.question, "steps": steps});
                if let Some(g) = &problem.gold {
                    item["gold"] = json!(g);
                }
                let mut body = json!({ "items": [item] });
                if let Some(r) = &s.remote_scorer {
                    body["scorer"] = json!(r);
                }
                body
            }
        }
    }

    /// Reads `n` step probabilities (and the prompt tokens the server reports) from an
    /// answer; a reason when the answer does not hold exactly that.
    pub fn parse_answer(&self, v: &Value, n: usize) -> Result<(Vec<f64>, u64), String> {
        let scores = match self.settings.protocol {
            PrmProtocol::Vllm => {
                let data = v
                    .pointer("/data/0/data")
                    .and_then(Value::as_array)
                    .ok_or("no data[0].data array in the answer")?;
                let mut out = Vec::with_capacity(data.len());
                for (i, entry) in data.iter().enumerate() {
                    let p = match entry {
                        Value::Array(pair) => {
                            if pair.len() != 2 {
                                return Err(format!(
                                    "step {i}: expected a [negative, positive] pair, got {} numbers",
                                    pair.len()
                                ));
                            }
                            pair[self.settings.positive_index].as_f64()
                        }
                        other => other.as_f64(),
                    }
                    .ok_or_else(|| format!("step {i}: not a number: {entry}"))?;
                    out.push(p);
                }
                out
            }
            PrmProtocol::Stepwise => {
                let r = v
                    .pointer("/results/0")
                    .ok_or("no results[0] in the answer")?;
                if let Some(e) = r.get("error").and_then(Value::as_str) {
                    return Err(format!("the server's scorer failed: {e}"));
                }
                if r.get("timed_out").and_then(Value::as_bool) == Some(true) {
                    return Err("the server's deadline passed before scoring".into());
                }
                let steps = r
                    .get("steps")
                    .and_then(Value::as_array)
                    .ok_or("no results[0].steps array in the answer")?;
                steps
                    .iter()
                    .enumerate()
                    .map(|(i, s)| {
                        s.get("score")
                            .and_then(Value::as_f64)
                            .ok_or_else(|| format!("step {i}: no numeric score"))
                    })
                    .collect::<Result<Vec<f64>, String>>()?
            }
        };
        if scores.len() != n {
            let hint = if self.settings.protocol == PrmProtocol::Vllm {
                format!(
                    " (is '{}' the model's step tag, served with a STEP pooler?)",
                    self.settings.step_tag
                )
            } else {
                String::new()
            };
            return Err(format!("{} step scores for {n} steps{hint}", scores.len()));
        }
        if let Some((i, p)) = scores
            .iter()
            .enumerate()
            .find(|(_, p)| !(p.is_finite() && (0.0..=1.0).contains(*p)))
        {
            return Err(format!(
                "step {i}: score {p} is not a probability in [0, 1] (does the server apply softmax?)"
            ));
        }
        let prompt_tokens = v
            .pointer("/usage/prompt_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        Ok((scores, prompt_tokens))
    }

    /// Scores every one of `steps` in one request.
    async fn score_all(&self, problem: &Problem, steps: &[&str]) -> Result<Scored, ScoreError> {
        if steps.is_empty() {
            return Ok(Scored::default());
        }
        let body = self.request_body(problem, steps);
        let answer = self
            .client
            .post_json(self.path(), &body)
            .await
            .map_err(engine_err("prm"))?;
        let (ps, prompt_tokens) =
            self.parse_answer(&answer, steps.len())
                .map_err(|reason| ScoreError::Unusable {
                    scorer: "prm".into(),
                    reason: format!("{}{}: {reason}", self.endpoints, self.path()),
                })?;
        let detail = format!(
            "{} PRM at {}",
            self.settings.protocol.name(),
            self.endpoints
        );
        Ok(Scored {
            scores: ps
                .into_iter()
                .enumerate()
                .map(|(i, p)| StepScore::new(i, p, "prm").with_detail(detail.clone()))
                .collect(),
            spent: Spent {
                judge_calls: 1,
                judge_prompt_tokens: prompt_tokens,
                ..Spent::default()
            },
        })
    }
}

#[async_trait]
impl StepScorer for HttpPrmScorer {
    fn name(&self) -> String {
        "prm".into()
    }

    async fn score_step(
        &self,
        problem: &Problem,
        prefix: &[Step],
        step: &Step,
        _answer: Option<&str>,
    ) -> Result<Scored, ScoreError> {
        let steps = crate::texts_through(prefix, step);
        let mut all = self.score_all(problem, &steps).await?;
        let last = all.scores.pop();
        Ok(Scored {
            scores: last.into_iter().collect(),
            spent: all.spent,
        })
    }

    async fn score_rationale(
        &self,
        problem: &Problem,
        rationale: &Rationale,
    ) -> Result<Scored, ScoreError> {
        let steps: Vec<&str> = rationale.steps.iter().map(|s| s.text.as_str()).collect();
        self.score_all(problem, &steps).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scorer(protocol: PrmProtocol) -> HttpPrmScorer {
        HttpPrmScorer::new(
            vec!["http://127.0.0.1:9".into()],
            PrmSettings {
                protocol,
                ..PrmSettings::default()
            },
        )
        .unwrap()
    }

    #[test]
    fn vllm_body_puts_the_tag_after_every_step() {
        let s = scorer(PrmProtocol::Vllm);
        let p = Problem::new("p", "What is 2+2?");
        let b = s.request_body(&p, &["2+2=4<extra_0>", "The answer is 4."]);
        let msgs = b["messages"].as_array().unwrap();
        assert_eq!(msgs.len(), 3);
        assert_eq!(msgs[0]["content"], QWEN_PRM_SYSTEM);
        assert_eq!(msgs[1]["content"], "What is 2+2?");
        assert_eq!(
            msgs[2]["content"],
            "2+2=4<extra_0>The answer is 4.<extra_0>"
        );
        assert_eq!(b["add_generation_prompt"], false);
    }

    #[test]
    fn vllm_answers_pairs_or_probabilities() {
        let s = scorer(PrmProtocol::Vllm);
        let v = json!({"data": [{"index": 0, "object": "pooling",
            "data": [[0.1, 0.9], [0.7, 0.3]]}], "usage": {"prompt_tokens": 42}});
        assert_eq!(s.parse_answer(&v, 2).unwrap(), (vec![0.9, 0.3], 42));
        let v = json!({"data": [{"data": [0.25, 0.5, 1.0]}]});
        assert_eq!(s.parse_answer(&v, 3).unwrap(), (vec![0.25, 0.5, 1.0], 0));
        let mut s0 = scorer(PrmProtocol::Vllm);
        s0.settings.positive_index = 0;
        let v = json!({"data": [{"data": [[0.8, 0.2]]}]});
        assert_eq!(s0.parse_answer(&v, 1).unwrap().0, vec![0.8]);
    }

    #[test]
    fn bad_answers_say_what_is_wrong() {
        let s = scorer(PrmProtocol::Vllm);
        let e = s
            .parse_answer(&json!({"data": [{"data": [[0.1, 0.9]]}]}), 2)
            .unwrap_err();
        assert!(e.contains("1 step scores for 2 steps"), "{e}");
        assert!(e.contains("<extra_0>"), "{e}");
        let e = s
            .parse_answer(&json!({"data": [{"data": [3.5]}]}), 1)
            .unwrap_err();
        assert!(e.contains("not a probability"), "{e}");
        let e = s
            .parse_answer(&json!({"data": [{"data": [[0.1, 0.2, 0.7]]}]}), 1)
            .unwrap_err();
        assert!(e.contains("pair"), "{e}");
        assert!(s.parse_answer(&json!({"object": "error"}), 1).is_err());
        assert!(
            s.parse_answer(&json!({"data": [{"data": ["x"]}]}), 1)
                .is_err()
        );
    }

    #[test]
    fn stepwise_protocol_round_trip() {
        let s = scorer(PrmProtocol::Stepwise);
        let mut p = Problem::new("p", "q");
        p.gold = Some("4".into());
        let b = s.request_body(&p, &["a", "b"]);
        assert_eq!(b["items"][0]["steps"], json!(["a", "b"]));
        assert_eq!(b["items"][0]["gold"], "4");
        let v = json!({"scorer": "arith", "results": [{"steps": [
            {"index": 0, "score": 1.0}, {"index": 1, "score": 0.0}], "aggregate": 0.0}]});
        assert_eq!(s.parse_answer(&v, 2).unwrap().0, vec![1.0, 0.0]);
        let v = json!({"results": [{"steps": [], "error": "no gold answer"}]});
        assert!(
            s.parse_answer(&v, 2)
                .unwrap_err()
                .contains("no gold answer")
        );
    }

    #[test]
    fn settings_are_checked() {
        assert!("pooling".parse::<PrmProtocol>().is_ok());
        assert!("tgi".parse::<PrmProtocol>().is_err());
        let bad = PrmSettings {
            positive_index: 2,
            ..PrmSettings::default()
        };
        assert!(HttpPrmScorer::new(vec!["http://x".into()], bad).is_err());
        assert!(HttpPrmScorer::new(vec!["ftp://x".into()], PrmSettings::default()).is_err());
    }
}
