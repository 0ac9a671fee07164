//! Choosing a model backend on the command line: an embedded GGUF model or OpenAI-compatible endpoints.
//! Every command that talks to a model flattens [`BackendArgs`] into its own arguments.

use anyhow::Context;
use std::path::PathBuf;
use std::sync::Arc;
use stepwise_http::{ChatMode, HttpConfig, HttpGenerator};
use stepwise_llama::{EmbeddedConfig, LlamaGenerator};
use stepwise_model::Generator;

#[derive(clap::Args, Debug, Clone)]
pub struct BackendArgs {
    /// GGUF model for the embedded llama.cpp backend. Default: SmolLM2-135M-Instruct Q4_1
    /// (fetched and checksummed on first use; see `stepwise model fetch`).
    #[arg(
        long,
        env = "STEPWISE_MODEL",
        value_name = "PATH.gguf",
        conflicts_with = "endpoint"
    )]
    pub model: Option<PathBuf>,
    /// OpenAI-compatible server base URL (vLLM, SGLang, llama.cpp server, Ollama). Repeat for several
    /// endpoints; requests go to the least-loaded one.
    #[arg(long, value_name = "URL")]
    pub endpoint: Vec<String>,
    /// Model name to send to the endpoint.
    #[arg(long, value_name = "NAME")]
    pub model_name: Option<String>,
    /// API key for the endpoint.
    #[arg(long, env = "STEPWISE_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// CPU threads for the embedded backend (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Context size in tokens for the embedded backend (shared by all live sequences).
    #[arg(long)]
    pub ctx_size: Option<u32>,
    /// Requests in flight per endpoint (HTTP backend).
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub http_concurrency: usize,
    /// How chat prompts reach an endpoint: `server` (its /v1/chat/completions and chat template;
    /// an assistant prefix is continued with `continue_final_message`, as vLLM/SGLang/llama-server
    /// support) or `chatml` (rendered here as ChatML, sent to /v1/completions; use it for
    /// llama-cpp-python).
    #[arg(long, value_name = "MODE", default_value = "server", value_parser = ["server", "chatml"])]
    pub http_chat_mode: String,
    /// Retries of a failed request (429, 5xx, timeouts, refused connections) with exponential backoff.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub http_retries: u32,
    /// Timeout of one HTTP request in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    pub http_timeout: u64,
    /// Reproducible decoding on the embedded backend: each request runs alone on an
    /// emptied KV cache, so its text depends only on the request and its seed, and a resumed
    /// run equals an uninterrupted one byte for byte (same GGUF, threads and build).
    /// `--deterministic false` batches requests together and reuses cached prefixes (faster
    /// with --jobs > 1). Default: on for `scale` and `annotate`, off elsewhere. Endpoints are
    /// never reproducible (their server batches as it likes).
    #[arg(
        long,
        env = "STEPWISE_DETERMINISTIC",
        value_name = "BOOL",
        num_args = 0..=1,
        default_missing_value = "true"
    )]
    pub deterministic: Option<bool>,
    /// Largest answer accepted from a server, in MiB; a larger one fails the request.
    #[arg(long, value_name = "MIB", default_value_t = 32)]
    pub http_max_response_mib: usize,
}

impl Default for BackendArgs {
    /// The embedded default model, as with no flags on the command line.
    fn default() -> Self {
        Self {
            model: None,
            endpoint: Vec::new(),
            model_name: None,
            api_key: None,
            threads: None,
            ctx_size: None,
            http_concurrency: 16,
            http_chat_mode: "server".into(),
            http_retries: 5,
            http_timeout: 600,
            deterministic: None,
            http_max_response_mib: 32,
        }
    }
}

impl BackendArgs {
    /// These flags with `--deterministic` defaulting to `on` when it was not given.
    pub fn deterministic_by_default(&self, on: bool) -> Self {
        let mut b = self.clone();
        b.deterministic.get_or_insert(on);
        b
    }

    /// Opens the chosen backend.
    pub fn open(&self) -> anyhow::Result<Arc<dyn Generator>> {
        if !self.endpoint.is_empty() {
            let mut cfg = HttpConfig::new(self.endpoint.clone());
            cfg.model = self.model_name.clone();
            cfg.api_key = self.api_key.clone();
            cfg.max_concurrency = self.http_concurrency.max(1);
            cfg.max_retries = self.http_retries;
            cfg.timeout = std::time::Duration::from_secs(self.http_timeout.max(1));
            cfg.max_response_bytes = self.http_max_response_mib.max(1).saturating_mul(1 << 20);
            cfg.chat_mode = if self.http_chat_mode == "chatml" {
                ChatMode::ChatMl
            } else {
                ChatMode::Server
            };
            let g = HttpGenerator::new(cfg).context("setting up the HTTP backend")?;
            return Ok(Arc::new(g));
        }
        Ok(Arc::new(self.open_embedded()?))
    }

    /// Opens the embedded backend (the given GGUF or the default model, fetched if needed).
    pub fn open_embedded(&self) -> anyhow::Result<LlamaGenerator> {
        let path = match &self.model {
            Some(p) => p.clone(),
            None => stepwise_llama::fetch::ensure_default_model()
                .context("getting the default model (or pass --model PATH.gguf)")?,
        };
        let mut cfg = EmbeddedConfig::new(&path);
        cfg.threads = self.threads;
        cfg.deterministic = self.deterministic.unwrap_or(false);
        if let Some(c) = self.ctx_size {
            cfg.ctx_size = c;
        }
        LlamaGenerator::open(cfg).with_context(|| format!("loading {}", path.display()))
    }
}

/// How a `prm:URL` scorer talks to its server (a discriminative process reward model).
#[derive(clap::Args, Debug, Clone)]
pub struct PrmArgs {
    /// Protocol of `prm:URL`: `vllm` (vLLM's /pooling of a PRM such as
    /// Qwen2.5-Math-PRM-7B, served with `--runner pooling`) or `stepwise` (another
    /// `stepwise serve`'s /v1/step_rewards).
    #[arg(long, value_name = "PROTOCOL", default_value = "vllm")]
    pub prm_protocol: stepwise_score::PrmProtocol,
    /// Request path (default: /pooling or /v1/step_rewards).
    #[arg(long, value_name = "PATH")]
    pub prm_path: Option<String>,
    /// Served model name sent to the PRM server.
    #[arg(long, value_name = "NAME")]
    pub prm_model: Option<String>,
    /// API key of the PRM server.
    #[arg(long, env = "STEPWISE_PRM_API_KEY", hide_env_values = true)]
    pub prm_api_key: Option<String>,
    /// Step tag put after every step (vllm): the PRM's step token.
    #[arg(long, value_name = "TEXT", default_value = "<extra_0>")]
    pub prm_step_tag: String,
    /// System message of PRM requests (vllm; default: Qwen2.5-Math-PRM's; `none` for none).
    #[arg(long, value_name = "TEXT")]
    pub prm_system: Option<String>,
    /// Index of "correct" in the per-step probability pair (vllm): 1 for Qwen2.5-Math-PRM,
    /// 0 for a Math-Shepherd PRM served with returned token ids [good, bad].
    #[arg(long, value_name = "0|1", default_value_t = 1)]
    pub prm_positive_index: usize,
    /// Scorer the remote server runs (stepwise protocol), e.g. `arith` or `arith*outcome`.
    #[arg(long, value_name = "SPEC")]
    pub prm_remote_scorer: Option<String>,
    /// Retries of a failed PRM request (429, 5xx, timeouts, refused connections).
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub prm_retries: u32,
    /// Timeout of one PRM request in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    pub prm_timeout: u64,
    /// PRM server of this process (repeat for several), replacing the URLs of
    /// `--scorer prm:URL`; a stored run keeps only `prm`, so each worker of a shared run
    /// may give its own.
    #[arg(long, value_name = "URL")]
    pub prm_endpoint: Vec<String>,
}

impl PrmArgs {
    pub fn settings(&self) -> stepwise_score::PrmSettings {
        let d = stepwise_score::PrmSettings::default();
        stepwise_score::PrmSettings {
            protocol: self.prm_protocol,
            path: self.prm_path.clone(),
            model: self.prm_model.clone(),
            api_key: self.prm_api_key.clone(),
            step_tag: self.prm_step_tag.clone(),
            system: match self.prm_system.as_deref() {
                None => d.system.clone(),
                Some("none") | Some("") => None,
                Some(s) => Some(s.to_string()),
            },
            positive_index: self.prm_positive_index,
            remote_scorer: self.prm_remote_scorer.clone(),
            timeout: std::time::Duration::from_secs(self.prm_timeout.max(1)),
            retries: self.prm_retries,
            endpoints: self.prm_endpoint.clone(),
            ..d
        }
    }
}

/// The models of model-backed reward components (`kind = "scorer"`) and of the model
/// scorers `stepwise serve`'s `/v1/step_rewards` builds: the policy backend (the embedded
/// model, `--model`, or `--endpoint`), a judge of its own, and the PRM's servers.
#[derive(clap::Args, Debug, Clone)]
pub struct RewardModelArgs {
    #[command(flatten)]
    pub backend: BackendArgs,
    /// GGUF model of the judge of `judge` components (default: the --model backend).
    #[arg(long, value_name = "PATH.gguf")]
    pub judge_model: Option<PathBuf>,
    /// OpenAI-compatible endpoint of the judge (default: the --model backend).
    #[arg(long, value_name = "URL")]
    pub judge_endpoint: Vec<String>,
    #[command(flatten)]
    pub prm: PrmArgs,
}

impl RewardModelArgs {
    /// Whether a model flag was given (then the models are opened even when the
    /// configuration has no model-backed component: `/v1/step_rewards` may use them).
    fn given(&self) -> bool {
        self.backend.model.is_some()
            || !self.backend.endpoint.is_empty()
            || self.judge_model.is_some()
            || !self.judge_endpoint.is_empty()
            || !self.prm.prm_endpoint.is_empty()
    }

    /// Opens the models when `needed` (the configuration has model-backed components) or
    /// a model flag was given; `None` otherwise (nothing is loaded). The embedded engine
    /// batches requests (`--deterministic` off unless given), so concurrent requests'
    /// model calls share decode batches.
    pub fn open(&self, needed: bool) -> anyhow::Result<Option<stepwise_score::ScorerComponents>> {
        if !needed && !self.given() {
            return Ok(None);
        }
        let policy = self
            .backend
            .deterministic_by_default(false)
            .open()
            .context("opening the model of the model-backed reward components")?;
        let judge = if self.judge_model.is_some() || !self.judge_endpoint.is_empty() {
            let b = BackendArgs {
                model: self.judge_model.clone(),
                endpoint: self.judge_endpoint.clone(),
                ..self.backend.deterministic_by_default(false)
            };
            Some(b.open().context("opening the judge model")?)
        } else {
            None
        };
        Ok(Some(stepwise_score::ScorerComponents {
            policy: Some(policy),
            judge,
            settings: stepwise_score::ScorerSettings {
                prm: self.prm.settings(),
                ..stepwise_score::ScorerSettings::default()
            },
        }))
    }
}

/// What identifies `models` in a stored run: the backends' model names without where
/// they are served (`policy` and, when it has its own, `judge`).
pub fn models_identity(models: &stepwise_score::ScorerComponents) -> String {
    let name = |g: &Arc<dyn Generator>| stepwise_model::model_identity(&g.name()).to_string();
    match (&models.policy, &models.judge) {
        (Some(p), Some(j)) => format!("policy {}, judge {}", name(p), name(j)),
        (Some(p), None) => format!("policy {}", name(p)),
        (None, Some(j)) => format!("judge {}", name(j)),
        (None, None) => "none".into(),
    }
}
