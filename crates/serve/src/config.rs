//! The TOML configuration: server limits and reward functions.
//!
//! ```toml
//! [server]
//! deadline_ms = 10000          # per request; unfinished items get timeout_reward
//! max_concurrency = 64         # scoring requests served at once; more get 503 + Retry-After
//! max_body_bytes = 33554432    # larger bodies get 413 (a larger Content-Length before reading)
//! body_read_timeout_ms = 10000 # a body not fully received by then gets 408
//! header_read_timeout_ms = 10000 # a connection sending no complete request head by then is closed
//! max_connections = 1024       # open connections; more are answered 503 and closed
//! max_steps_per_item = 1024    # /v1/step_rewards: steps in one item (413 beyond)
//! max_steps_per_request = 16384 # /v1/step_rewards: steps in one request (413 beyond)
//!
//! [reward]                     # the default reward function
//! preset = "deepseek-r1"       # or list components:
//! # [[reward.components]]
//! # kind = "accuracy"
//! # weight = 1.0
//! # extract = ["boxed", "answer-tag"]
//!
//! [sources."openai/gsm8k"]     # chosen by an item's data_source
//! preset = "gsm8k"
//! ```

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Everything `stepwise serve` reads from `--config`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerSettings,
    /// The default reward function (preset `deepseek-r1` when absent).
    #[serde(default)]
    pub reward: RewardSpec,
    /// Reward functions selected by an item's `data_source`.
    #[serde(default)]
    pub sources: BTreeMap<String, RewardSpec>,
}

/// Limits and behaviour of the HTTP layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Per-request deadline in milliseconds, from when the request takes its scoring
    /// slot (after its body arrived). Items not scored by then get `timeout_reward` and
    /// `timed_out = 1` (the response is still 200).
    pub deadline_ms: u64,
    /// Scoring requests served at once; a request beyond this gets 503 with `Retry-After`.
    pub max_concurrency: usize,
    /// Largest accepted request body in bytes (413 beyond; a declared
    /// `Content-Length` above it gets 413 before the body is read).
    pub max_body_bytes: usize,
    /// Time allowed to receive a scoring request's whole body, in milliseconds (408
    /// beyond). Bodies are read before a scoring slot is taken, so slow senders hold
    /// no slot; this bounds how long they hold a connection.
    pub body_read_timeout_ms: u64,
    /// Time allowed for a connection to send a complete request head (the request line
    /// and headers), in milliseconds; a connection that has not by then is closed. It
    /// also closes keep-alive connections idle this long.
    pub header_read_timeout_ms: u64,
    /// Open connections at once; a connection beyond this is answered 503 with
    /// `Retry-After` and closed. With `max_body_bytes`, it bounds the memory that
    /// bodies being received can take.
    pub max_connections: usize,
    /// `/v1/step_rewards`: most steps in one item (413 beyond).
    pub max_steps_per_item: usize,
    /// `/v1/step_rewards`: most steps in one request, over all items (413 beyond).
    pub max_steps_per_request: usize,
    /// Most items (queries, pairs) in one request (422 beyond).
    pub max_items: usize,
    /// Reward given to an item the deadline cut off.
    pub timeout_reward: f64,
    /// What `/get_reward` does with a query that does not start with its prompt.
    pub prompt_mismatch: PromptMismatch,
    /// Extracted answers longer than this are not verified (verdict undecided).
    pub max_answer_bytes: usize,
    /// Worker threads for verification (0: one per CPU core).
    pub workers: usize,
    /// Bearer token required on every endpoint except `/health` and `/openapi.json`.
    pub auth_token: Option<String>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            deadline_ms: 10_000,
            max_concurrency: 64,
            max_body_bytes: 32 * 1024 * 1024,
            body_read_timeout_ms: 10_000,
            header_read_timeout_ms: 10_000,
            max_connections: 1024,
            max_steps_per_item: 1024,
            max_steps_per_request: 16_384,
            max_items: 16_384,
            timeout_reward: 0.0,
            prompt_mismatch: PromptMismatch::ScoreWhole,
            max_answer_bytes: 4096,
            workers: 0,
            auth_token: None,
        }
    }
}

/// Handling of an OpenRLHF query that does not start with its prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptMismatch {
    /// Use the text after the prompt's last occurrence in the query, or the whole
    /// query when the prompt does not occur; `prompt_mismatch = 1` in extra_logs
    /// and a warning in the log.
    ScoreWhole,
    /// Answer 422 naming the first such query.
    Reject,
}

/// A reward function: a preset or a list of components (not both).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RewardSpec {
    pub preset: Option<String>,
    #[serde(default)]
    pub components: Vec<ComponentSpec>,
}

/// One term of a reward: `weight × value`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ComponentSpec {
    /// 1 when the extracted answer verifies against the gold answer, else 0.
    Accuracy {
        #[serde(default)]
        name: Option<String>,
        #[serde(default = "one")]
        weight: f64,
        /// Extraction rules tried in order: `boxed`, `answer-tag`, `gsm8k`,
        /// `final-answer`, `answer-is`, `last-number`.
        #[serde(default = "default_extract")]
        extract: Vec<String>,
        /// Verifier options (math-verify's `float_rounding` and `strict`).
        #[serde(default)]
        float_rounding: Option<u32>,
        #[serde(default)]
        strict: Option<bool>,
    },
    /// 1 when the response has the required shape, else 0.
    Format {
        #[serde(default)]
        name: Option<String>,
        #[serde(default = "one")]
        weight: f64,
        /// Require exactly one `<think>…</think>` block before the answer
        /// (`<think>` may end the prompt instead, as in R1 chat templates).
        #[serde(default = "yes")]
        think: bool,
        /// Required answer form after the thinking.
        #[serde(default)]
        answer: AnswerForm,
    },
    /// DAPO-style soft overlong penalty in [-1, 0]: 0 up to `max_len - buffer`,
    /// then linear down to -1 at `max_len`, -1 beyond.
    Length {
        #[serde(default)]
        name: Option<String>,
        #[serde(default = "one")]
        weight: f64,
        max_len: usize,
        buffer: usize,
        #[serde(default)]
        unit: LengthUnit,
    },
    /// The aggregated score of the arithmetic step checker (stepwise-score's `arith`
    /// scorer) over the response's steps, in [0, 1]; 0 for an empty response.
    StepCheck {
        #[serde(default)]
        name: Option<String>,
        #[serde(default = "one")]
        weight: f64,
        /// `min` (default), `last`, `prod` or `mean`.
        #[serde(default = "default_aggregation")]
        aggregation: String,
        /// `blank-line` (default), `step-label` or `line`.
        #[serde(default = "default_delimiter")]
        delimiter: String,
    },
    /// The exact verifier of a generated task (`stepwise data gen`): `knights-knaves`
    /// (every inhabitant's role right) or `masked-span` (normalized match), in [0, 1].
    Task {
        #[serde(default)]
        name: Option<String>,
        #[serde(default = "one")]
        weight: f64,
        task: String,
    },
    /// 1 when the chosen option letter equals the gold letter, else 0.
    Choice {
        #[serde(default)]
        name: Option<String>,
        #[serde(default = "one")]
        weight: f64,
        /// Allowed option letters.
        #[serde(default = "default_letters")]
        letters: String,
    },
}

fn one() -> f64 {
    1.0
}
fn yes() -> bool {
    true
}
fn default_extract() -> Vec<String> {
    vec!["boxed".into(), "answer-tag".into()]
}
fn default_aggregation() -> String {
    "min".into()
}
fn default_delimiter() -> String {
    "blank-line".into()
}
fn default_letters() -> String {
    "ABCDEFGHIJ".into()
}

/// The answer form a format component requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerForm {
    /// `\boxed{…}` or `<answer>…</answer>`.
    #[default]
    BoxedOrAnswerTag,
    Boxed,
    AnswerTag,
    /// A line `#### <number>`.
    Gsm8k,
    /// No answer form required (only the thinking block).
    Any,
}

/// What the length penalty counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LengthUnit {
    /// Unicode characters.
    #[default]
    Chars,
    /// Whitespace-separated words (a rough token count).
    Words,
}

/// Errors in a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("parsing {path}")]
    Parse {
        path: String,
        source: Box<toml::de::Error>,
    },
    #[error("{0}")]
    Invalid(String),
}

/// The preset names `--preset` accepts.
pub const PRESETS: [&str; 7] = [
    "deepseek-r1",
    "gsm8k",
    "multiple-choice",
    "knights-knaves",
    "masked-span",
    "h1",
    "noisy-rationales",
];

/// The components of a named preset.
///
/// - `deepseek-r1`: accuracy (last `\boxed{}` or `<answer>` verified, weight 1) +
///   format (`<think>…</think>` then `\boxed{}` or `<answer>…</answer>`, weight 1).
/// - `gsm8k`: accuracy of the number after `####` (weight 1) + format `#### n` (weight 0, logged only).
/// - `multiple-choice`: the chosen option letter (weight 1).
/// - `knights-knaves`, `masked-span`: the task's exact verifier (weight 1).
/// - `h1`, `noisy-rationales`: accuracy of the number after "The answer is" (else the
///   last number) against the chain's / test question's gold (weight 1).
pub fn preset(name: &str) -> Result<Vec<ComponentSpec>, ConfigError> {
    let norm = name.trim().to_ascii_lowercase().replace('_', "-");
    Ok(match norm.as_str() {
        "deepseek-r1" | "r1" => vec![
            ComponentSpec::Accuracy {
                name: None,
                weight: 1.0,
                extract: default_extract(),
                float_rounding: None,
                strict: None,
            },
            ComponentSpec::Format {
                name: None,
                weight: 1.0,
                think: true,
                answer: AnswerForm::BoxedOrAnswerTag,
            },
        ],
        "gsm8k" => vec![
            ComponentSpec::Accuracy {
                name: None,
                weight: 1.0,
                extract: vec!["gsm8k".into()],
                float_rounding: None,
                strict: None,
            },
            ComponentSpec::Format {
                name: None,
                weight: 0.0,
                think: false,
                answer: AnswerForm::Gsm8k,
            },
        ],
        "knights-knaves" | "knights" | "masked-span" => vec![ComponentSpec::Task {
            name: None,
            weight: 1.0,
            task: norm.clone(),
        }],
        "h1" | "noisy-rationales" | "noisy" => vec![ComponentSpec::Accuracy {
            name: None,
            weight: 1.0,
            extract: vec!["boxed".into(), "answer-is".into(), "last-number".into()],
            float_rounding: None,
            strict: None,
        }],
        "multiple-choice" | "mc" | "choice" => vec![ComponentSpec::Choice {
            name: None,
            weight: 1.0,
            letters: default_letters(),
        }],
        _ => {
            return Err(ConfigError::Invalid(format!(
                "unknown preset '{name}' (expected one of {})",
                PRESETS.join(", ")
            )));
        }
    })
}

impl Config {
    /// Reads and checks a TOML file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// Parses and checks TOML text; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|source| ConfigError::Parse {
            path: origin.to_string(),
            source: Box::new(source),
        })?;
        cfg.check()?;
        Ok(cfg)
    }

    /// A configuration that uses a preset as the default reward function.
    pub fn with_preset(name: &str) -> Result<Self, ConfigError> {
        preset(name)?;
        Ok(Self {
            reward: RewardSpec {
                preset: Some(name.to_string()),
                components: vec![],
            },
            ..Self::default()
        })
    }

    /// Checks limits and that every reward function builds.
    pub fn check(&self) -> Result<(), ConfigError> {
        let s = &self.server;
        if s.max_concurrency == 0 {
            return Err(ConfigError::Invalid(
                "server.max_concurrency must be at least 1".into(),
            ));
        }
        let positive = [
            ("max_items", s.max_items as u64),
            ("max_body_bytes", s.max_body_bytes as u64),
            ("deadline_ms", s.deadline_ms),
            ("body_read_timeout_ms", s.body_read_timeout_ms),
            ("header_read_timeout_ms", s.header_read_timeout_ms),
            ("max_connections", s.max_connections as u64),
            ("max_steps_per_item", s.max_steps_per_item as u64),
            ("max_steps_per_request", s.max_steps_per_request as u64),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(ConfigError::Invalid(format!(
                "server.{name} must be positive"
            )));
        }
        if s.max_connections < s.max_concurrency {
            return Err(ConfigError::Invalid(format!(
                "server.max_connections ({}) must be at least server.max_concurrency ({})",
                s.max_connections, s.max_concurrency
            )));
        }
        if !s.timeout_reward.is_finite() {
            return Err(ConfigError::Invalid(
                "server.timeout_reward must be finite".into(),
            ));
        }
        if s.auth_token.as_deref().is_some_and(|t| t.trim().is_empty()) {
            return Err(ConfigError::Invalid("server.auth_token is empty".into()));
        }
        crate::reward::RewardFn::build("reward", &self.reward)?;
        for (name, spec) in &self.sources {
            crate::reward::RewardFn::build(&format!("sources.\"{name}\""), spec)?;
        }
        Ok(())
    }
}

impl RewardSpec {
    /// The components this spec stands for, with `origin` naming it in errors.
    pub fn components(&self, origin: &str) -> Result<Vec<ComponentSpec>, ConfigError> {
        match (&self.preset, self.components.is_empty()) {
            (Some(p), true) => preset(p),
            (Some(_), false) => Err(ConfigError::Invalid(format!(
                "{origin}: give either a preset or components, not both"
            ))),
            (None, false) => Ok(self.components.clone()),
            (None, true) => preset("deepseek-r1"),
        }
    }

    /// A short name for logs and `/health`.
    pub fn label(&self) -> String {
        match &self.preset {
            Some(p) => p.clone(),
            None if self.components.is_empty() => "deepseek-r1".into(),
            None => "custom".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_full_config() {
        let cfg = Config::from_toml(
            r#"
            [server]
            deadline_ms = 500
            max_concurrency = 4
            prompt_mismatch = "reject"

            [[reward.components]]
            kind = "accuracy"
            weight = 2.0
            extract = ["boxed", "last-number"]

            [[reward.components]]
            kind = "length"
            weight = 0.5
            max_len = 100
            buffer = 20
            unit = "words"

            [sources.gsm8k]
            preset = "gsm8k"
            "#,
            "test",
        )
        .unwrap();
        assert_eq!(cfg.server.deadline_ms, 500);
        assert_eq!(cfg.server.prompt_mismatch, PromptMismatch::Reject);
        assert_eq!(cfg.reward.components.len(), 2);
        assert_eq!(cfg.sources["gsm8k"].label(), "gsm8k");
    }

    #[test]
    fn rejects_bad_configs_with_a_reason() {
        let cases = [
            ("[reward]\npreset = \"nope\"", "unknown preset"),
            ("[server]\nmax_concurrency = 0", "max_concurrency"),
            (
                "[server]\nbody_read_timeout_ms = 0",
                "body_read_timeout_ms must be positive",
            ),
            (
                "[server]\nmax_steps_per_item = 0",
                "max_steps_per_item must be positive",
            ),
            (
                "[server]\nmax_connections = 8\nmax_concurrency = 16",
                "max_connections (8) must be at least server.max_concurrency (16)",
            ),
            ("[server]\nbogus = 1", "bogus"),
            (
                "[reward]\npreset = \"gsm8k\"\n[[reward.components]]\nkind = \"choice\"",
                "not both",
            ),
            (
                "[[reward.components]]\nkind = \"accuracy\"\nextract = [\"telepathy\"]",
                "telepathy",
            ),
            (
                "[[reward.components]]\nkind = \"length\"\nmax_len = 10\nbuffer = 20",
                "buffer",
            ),
            (
                "[[reward.components]]\nkind = \"choice\"\n[[reward.components]]\nkind = \"choice\"",
                "twice",
            ),
        ];
        for (text, want) in cases {
            let err = stepwise_core::error_chain(&Config::from_toml(text, "t").unwrap_err());
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn example_config_in_clients_parses() {
        let cfg = Config::from_toml(
            include_str!("../../../clients/rewards.example.toml"),
            "clients/rewards.example.toml",
        )
        .unwrap();
        assert_eq!(cfg.reward.components.len(), 4);
        assert_eq!(cfg.sources.len(), 2);
    }

    #[test]
    fn presets_build() {
        for p in PRESETS {
            Config::with_preset(p).unwrap().check().unwrap();
        }
        assert!(Config::with_preset("nope").is_err());
    }
}
