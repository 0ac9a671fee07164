//! Generation engine: the [`Generator`] trait and its backends.
//!
//! - [`llama`]: embedded llama.cpp (continuous batching, prefix KV sharing, seeded sampling).
//! - [`http`]: OpenAI-compatible servers (vLLM, SGLang, llama.cpp server, Ollama, llama-cpp-python).
//! - [`fetch`]: the default model (SmolLM2-135M-Instruct Q4_1 from PyPI), checked before use.

pub mod fetch;
mod generator;
pub mod http;
pub mod llama;
pub mod stop;
pub mod template;

pub use generator::*;
pub use http::{ChatMode, HttpConfig, HttpGenerator};
pub use llama::{EmbeddedConfig, GenOptions, LlamaGenerator, ModelInfo, RequestStats};
