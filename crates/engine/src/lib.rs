//! Generation engine: the backends of the [`Generator`] trait (which lives in `stepwise-model`).
//!
//! - [`llama`]: embedded llama.cpp (`stepwise-llama`).
//! - [`http`]: OpenAI-compatible servers (`stepwise-http`).

pub mod http {
    //! The HTTP backend, now `stepwise-http`.
    pub use stepwise_http::*;
}
pub mod llama {
    //! The embedded backend, now `stepwise-llama`.
    pub use stepwise_llama::*;
}

pub use stepwise_http::{ChatMode, HttpConfig, HttpGenerator};
pub use stepwise_llama::{
    EmbeddedConfig, GenOptions, LlamaGenerator, ModelInfo, RequestStats, bench, fetch, stop,
};
pub use stepwise_model::*;
