//! Choosing a model backend on the command line: an embedded GGUF model or OpenAI-compatible endpoints.
//! Every command that talks to a model flattens [`BackendArgs`] into its own arguments.

use std::path::PathBuf;
use std::sync::Arc;
use stepwise_engine::Generator;

#[derive(clap::Args, Debug, Clone, Default)]
pub struct BackendArgs {
    /// GGUF model for the embedded llama.cpp backend. Default: SmolLM2-135M-Instruct Q4_1
    /// (fetched and checksummed on first use; see `stepwise model fetch`).
    #[arg(long, env = "STEPWISE_MODEL", value_name = "PATH.gguf", conflicts_with = "endpoint")]
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
}

impl BackendArgs {
    /// Opens the chosen backend.
    pub fn open(&self) -> anyhow::Result<Arc<dyn Generator>> {
        anyhow::bail!("model backends are not wired yet")
    }
}
