//! Generation engine: the [`Generator`] trait and its backends.
//!
//! (Work in progress: the engine helper adds the embedded llama.cpp backend,
//! the OpenAI-compatible HTTP backend and model setup.)

mod generator;

pub use generator::*;
