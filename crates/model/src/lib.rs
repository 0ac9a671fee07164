//! The seam between stepwise and language models.
//!
//! Every strategy, scorer and labeller asks for text through [`Generator`], so a local GGUF
//! model (`stepwise-llama`) and a remote inference server (`stepwise-http`) are
//! interchangeable, and crates that only *use* a model depend on this crate alone (no
//! llama.cpp, no HTTP client).
//!
//! - [`Generator`] and its request/response types ([`GenerateRequest`], [`Completion`], …).
//! - [`template`]: prompt rendering both backends share (ChatML, default system prompts).
//! - [`scripted`]: [`ScriptedGenerator`](scripted::ScriptedGenerator), a test double whose
//!   outputs come from closures, with exact token counts.

mod generator;
pub mod scripted;
pub mod template;

pub use generator::*;
