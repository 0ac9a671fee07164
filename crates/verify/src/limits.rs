//! Hard caps that bound the work any single call can do.

/// Longest answer string parsed (bytes). Longer text goes through extraction first.
pub const MAX_ANSWER_BYTES: usize = 8_192;
/// Most tokens in one answer.
pub const MAX_TOKENS: usize = 4_096;
/// Deepest parser recursion.
pub const MAX_DEPTH: usize = 160;
/// Most parser steps (tree nodes) in one answer.
pub const MAX_NODES: usize = 20_000;
/// Longest model text searched for a final answer (the tail is kept).
pub const MAX_TEXT_BYTES: usize = 65_536;
/// Most polynomial terms kept in symbolic normalization.
pub const MAX_TERMS: usize = 256;
/// Highest total degree kept in symbolic normalization.
pub const MAX_DEGREE: u32 = 64;
/// Most elements compared pairwise in an unordered collection.
pub const MAX_ITEMS: usize = 64;
