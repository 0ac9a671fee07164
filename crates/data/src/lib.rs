//! Datasets of stepwise (the run store is `stepwise-store`).
//!
//! - [`datasets`]: named built-ins (`gsm8k:test`, `math500`, `processbench:math`, …),
//!   `arith:…` and plain files, loaded into [`stepwise_core::Problem`]s.
//! - [`jsonl`], [`parquet_io`], [`mapping`]: record readers and writers and the mapping
//!   from record fields to problem fields. A bad record is an error naming `file:line`.
//! - [`arith`]: the synthetic task family with exact intermediate values and the
//!   ground-truth first wrong step of any solution.
//! - [`processbench`]: typed access to ProcessBench steps and labels.
//!
//! ```
//! use stepwise_data::{Dataset, LoadOptions, load};
//! let ds: Dataset = "arith:ops=2,n=3,seed=7".parse().unwrap();
//! let problems = load(&ds, &LoadOptions::default()).unwrap().problems;
//! assert_eq!(problems.len(), 3);
//! assert!(problems[0].gold.is_some());
//! ```

pub mod arith;
pub mod atomic;
pub mod datasets;
mod error;
pub mod jsonl;
pub mod mapping;
pub mod noisy;
pub mod parquet_io;
pub mod processbench;
pub mod show;

pub use arith::{
    ArithConfig, ArithKind, ArithOp, ArithSpec, ArithStep, GroundTruth, StepVerdict,
    first_wrong_step,
};
pub use datasets::{Dataset, LoadOptions, Loaded, data_dir, load, load_spec, resolve_data_dir};
pub use error::{DataError, Result};
pub use mapping::{Field, FieldMap, GoldRule};
pub use processbench::ProcessBenchRecord;
