//! Generation engine: the backends of the [`Generator`] trait (which lives in `stepwise-model`).
//!
//! - [`llama`]: embedded llama.cpp (`stepwise-llama`).
//! - [`http`]: OpenAI-compatible servers (vLLM, SGLang, llama.cpp server, Ollama, llama-cpp-python).

pub mod http;
pub mod llama {
    //! The embedded backend, now `stepwise-llama`.
    pub use stepwise_llama::*;
}

pub use http::{ChatMode, HttpConfig, HttpGenerator};
pub use stepwise_llama::{
    EmbeddedConfig, GenOptions, LlamaGenerator, ModelInfo, RequestStats, bench, fetch, stop,
};
pub use stepwise_model::*;
