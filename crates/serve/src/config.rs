//! The TOML configuration: server limits (`[server]`, read here) and reward functions
//! (`[reward]`, `[sources."NAME"]`, `[group]`: `stepwise_reward::config`'s, read by that
//! crate's parser, the one `stepwise reward` and the Python package use).
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
//! max_model_requests = 16      # requests with model work at once (model-backed components,
//!                              # model scorers); more get 503 + Retry-After
//! # tokenizer = "tokenizer.json" # /v1/step_rewards: each step's token_end in this tokenizer
//!
//! [reward]                     # the default reward function (see stepwise_reward::config)
//! preset = "deepseek-r1"
//! ```

use serde::{Deserialize, Serialize};
use std::path::Path;
pub use stepwise_reward::config::{
    AnswerForm, ComponentSpec, ConfigError, GroupSpec, LengthUnit, PRESETS, RewardConfig,
    RewardSpec, preset,
};

/// Everything `stepwise serve` reads from `--config`: the HTTP layer's settings and the
/// reward configuration.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    pub server: ServerSettings,
    /// The reward functions: the default one, those chosen by an item's `data_source`,
    /// and the group components (`/v1/group_rewards`). Its `limits` follow
    /// `server.max_answer_bytes` ([`Config::reward_config`]).
    pub rewards: RewardConfig,
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
    /// Requests with model work (model-backed reward components, model scorers of
    /// `/v1/step_rewards`) served at once, each holding a slot besides its scoring slot; a
    /// request beyond this gets 503 with `Retry-After`, as past `max_concurrency`. The
    /// model calls of the requests holding a slot go to the backend together (the
    /// embedded engine batches them), so this bounds the model's queue.
    pub max_model_requests: usize,
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
    /// A Hugging Face `tokenizer.json`: `/v1/step_rewards` then gives each step's
    /// `token_end` (the policy's tokenizer, so the offsets are the trainer's tokens).
    pub tokenizer: Option<std::path::PathBuf>,
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
            max_model_requests: 16,
            timeout_reward: 0.0,
            prompt_mismatch: PromptMismatch::ScoreWhole,
            max_answer_bytes: 4096,
            workers: 0,
            auth_token: None,
            tokenizer: None,
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

impl Config {
    /// Reads and checks a TOML file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        Self::from_toml(
            &stepwise_reward::config::read_text(path)?,
            &path.display().to_string(),
        )
    }

    /// Parses and checks TOML text; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let (rewards, server) = RewardConfig::from_toml_with_server(text, origin)?;
        let server: ServerSettings = server.try_into().map_err(|source| ConfigError::Parse {
            path: format!("{origin} [server]"),
            source: Box::new(source),
        })?;
        let cfg = Self { server, rewards };
        cfg.check()?;
        Ok(cfg)
    }

    /// A configuration that uses a preset as the default reward function.
    pub fn with_preset(name: &str) -> Result<Self, ConfigError> {
        Ok(Self {
            rewards: RewardConfig::with_preset(name)?,
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
            ("max_model_requests", s.max_model_requests as u64),
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
        self.reward_config().check()
    }

    /// The reward configuration the server scores with: [`Config::rewards`] with its
    /// answer bound from `server.max_answer_bytes` (so a setting changed in code counts).
    pub fn reward_config(&self) -> RewardConfig {
        RewardConfig {
            limits: stepwise_reward::Limits {
                max_answer_bytes: self.server.max_answer_bytes,
            },
            ..self.rewards.clone()
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
            max_answer_bytes = 99

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

            [[group.components]]
            kind = "empo"
            "#,
            "test",
        )
        .unwrap();
        assert_eq!(cfg.server.deadline_ms, 500);
        // one reader for the reward part: the group and the answer bound reach the functions
        assert_eq!(cfg.rewards.group.components.len(), 1);
        assert_eq!(cfg.server.max_answer_bytes, 99);
        assert_eq!(cfg.reward_config().limits.max_answer_bytes, 99);
        assert_eq!(cfg.server.prompt_mismatch, PromptMismatch::Reject);
        assert_eq!(cfg.rewards.reward.components.len(), 2);
        assert_eq!(cfg.rewards.sources["gsm8k"].label(), "gsm8k");
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
        ];
        for (text, want) in cases {
            let err = stepwise_core::error_chain(&Config::from_toml(text, "t").unwrap_err());
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }
}
