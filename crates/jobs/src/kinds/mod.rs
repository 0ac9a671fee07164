//! The boundary types of the run kinds that other crates read back.
//!
//! A run kind ([`crate::RunKind`]) names its config and record types and their version.
//! The crate that runs a job writes these types; readers (eval, reports, exports, the
//! explorer) read them through [`crate::records`] without depending on that crate.
//!
//! | kind | written by | config | record (one unit) |
//! |---|---|---|---|
//! | `solve` | `stepwise-search` | [`solve::SolveConfig`] | [`solve::SolveRecord`] (per problem) |
//! | `scale` | `stepwise-search` | [`scale::ScaleJobConfig`] | [`scale::ScaleRecord`] (a draw or a tree search) |
//! | `annotate` | `stepwise-annotate` | (annotate's `AnnotateConfig`) | [`annotate::QuestionResult`] (per method and question) |
//! | `verify` | this crate ([`crate::verify`]) | [`crate::verify::VerifyConfig`] | [`crate::verify::VerifyChunk`] |
//!
//! Version 1 of `solve` and `scale` is what stepwise stored before the job runner (an
//! untyped config); its records have the same shape as version 2.

pub mod annotate;
pub mod pairwise;
pub mod prompting;
pub mod scale;
pub mod solve;
