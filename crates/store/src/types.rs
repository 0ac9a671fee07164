//! The typed boundary of the run store: what a run, a unit and its rows are.

use crate::error::{Result, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashSet;

/// A run's id in the store.
pub type RunId = i64;

/// A run's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Created or resumed and not finished (also what a killed run looks like).
    Running,
    /// Every unit finished.
    Done,
    /// Stopped on an error (kept in [`RunInfo::error`]).
    Failed,
    /// Stopped by the user (Ctrl-C); finished units are kept and the run can be resumed.
    Interrupted,
}

impl RunStatus {
    /// The status as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Interrupted => "interrupted",
        }
    }

    /// The error a run keeps with this status: a failed run's, none otherwise.
    pub fn kept_error(self, error: Option<&str>) -> Option<&str> {
        if self == Self::Failed { error } else { None }
    }

    /// The status a stored word names.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "running" => Some(Self::Running),
            "done" => Some(Self::Done),
            "failed" => Some(Self::Failed),
            "interrupted" => Some(Self::Interrupted),
            _ => None,
        }
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the store knows about a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunInfo {
    pub id: RunId,
    pub kind: String,
    /// Version of the kind's stored types (configuration and unit payloads).
    pub version: u32,
    pub config: Value,
    /// UTC, `YYYY-MM-DDTHH:MM:SSZ`.
    pub created: String,
    pub updated: String,
    pub status: RunStatus,
    /// Why a failed run stopped.
    pub error: Option<String>,
    /// Problems registered with [`crate::RunStore::add_problems`].
    pub problems: usize,
    /// Finished units.
    pub units: usize,
    /// Units of the run's job, when the store knows them: a shared store counts the
    /// units its workers registered; a finished run holds them all. `None` for a
    /// single-process store's unfinished run (its own progress bar shows the total).
    pub total: Option<usize>,
}

impl RunInfo {
    /// `done/total (pct%)`, or the finished units alone when the total is unknown.
    pub fn progress(&self) -> String {
        match self.total {
            Some(0) => "0/0".into(),
            Some(t) => format!(
                "{}/{t} ({:.0}%)",
                self.units,
                // floor, so a run shows 100% only when it holds every unit
                (self.units as f64 * 100.0 / t as f64).floor()
            ),
            None => self.units.to_string(),
        }
    }
}

/// A worker holding leases on units of a run (a shared store's live workers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerLease {
    /// The worker's name (`host:pid:nonce`).
    pub worker: String,
    /// Units it holds now.
    pub units: usize,
    /// UTC time its latest lease ends unless renewed.
    pub until: String,
}

/// One sampled solution of a unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleRow {
    /// Position among the unit's samples (unique within the unit).
    pub sample_idx: u32,
    pub text: String,
    #[serde(default)]
    pub answer: Option<String>,
    /// Whether the answer verified against the gold answer, when checked.
    #[serde(default)]
    pub correct: Option<bool>,
    /// Generated tokens, when counted.
    #[serde(default)]
    pub tokens: Option<u64>,
    /// Anything else (JSON; `null` when absent).
    #[serde(default)]
    pub extra: Value,
}

impl SampleRow {
    /// A sample with only its text.
    pub fn new(sample_idx: u32, text: impl Into<String>) -> Self {
        Self {
            sample_idx,
            text: text.into(),
            answer: None,
            correct: None,
            tokens: None,
            extra: Value::Null,
        }
    }
}

/// A scorer's score of one step of one sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepScoreRow {
    pub sample_idx: u32,
    pub step_idx: u32,
    pub scorer: String,
    /// Must be finite.
    pub score: f64,
}

/// A labelling method's label of one step of one sample (e.g. an MC value in 0..=1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepLabelRow {
    pub sample_idx: u32,
    pub step_idx: u32,
    pub method: String,
    /// Must be finite.
    pub label: f64,
}

/// Everything one unit of work produced; written atomically by [`crate::RunStore::record`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitRecord {
    pub key: String,
    pub problem_id: String,
    /// The unit's result in the shape its job chooses (outcome, trace, spent budget, ...).
    pub payload: Value,
    #[serde(default)]
    pub samples: Vec<SampleRow>,
    #[serde(default)]
    pub step_scores: Vec<StepScoreRow>,
    #[serde(default)]
    pub step_labels: Vec<StepLabelRow>,
}

impl UnitRecord {
    /// A unit with a payload and no samples, scores or labels yet.
    pub fn new(key: impl Into<String>, problem_id: impl Into<String>, payload: Value) -> Self {
        Self {
            key: key.into(),
            problem_id: problem_id.into(),
            payload,
            samples: Vec::new(),
            step_scores: Vec::new(),
            step_labels: Vec::new(),
        }
    }
}

/// A stored unit, as read back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredUnit {
    pub run_id: RunId,
    /// UTC time the unit was recorded.
    pub finished: String,
    #[serde(flatten)]
    pub unit: UnitRecord,
}

/// Checks a unit before it is written: a key, unique sample indices, finite and unique
/// step scores and labels. Every store calls it, so every store refuses the same units.
pub fn validate_unit(run: RunId, u: &UnitRecord) -> Result<()> {
    let bad = |message: String| StoreError::InvalidUnit {
        run,
        key: u.key.clone(),
        message,
    };
    if u.key.is_empty() {
        return Err(bad("empty unit key".into()));
    }
    let mut seen = HashSet::new();
    for s in &u.samples {
        if !seen.insert(s.sample_idx) {
            return Err(bad(format!("sample {} appears twice", s.sample_idx)));
        }
        if s.tokens.is_some_and(|t| t > i64::MAX as u64) {
            return Err(bad(format!(
                "sample {}: token count out of range",
                s.sample_idx
            )));
        }
    }
    let mut seen = HashSet::new();
    for s in &u.step_scores {
        if !s.score.is_finite() {
            return Err(bad(format!(
                "score of sample {} step {} by '{}' is {} (must be finite)",
                s.sample_idx, s.step_idx, s.scorer, s.score
            )));
        }
        if !seen.insert((s.sample_idx, s.step_idx, s.scorer.as_str())) {
            return Err(bad(format!(
                "sample {} step {} scored twice by '{}'",
                s.sample_idx, s.step_idx, s.scorer
            )));
        }
    }
    let mut seen = HashSet::new();
    for s in &u.step_labels {
        if !s.label.is_finite() {
            return Err(bad(format!(
                "label of sample {} step {} by '{}' is {} (must be finite)",
                s.sample_idx, s.step_idx, s.method, s.label
            )));
        }
        if !seen.insert((s.sample_idx, s.step_idx, s.method.as_str())) {
            return Err(bad(format!(
                "sample {} step {} labelled twice by '{}'",
                s.sample_idx, s.step_idx, s.method
            )));
        }
    }
    Ok(())
}

/// Lists the differences between two JSON values as `path: stored X, given Y` lines.
pub fn json_diff(path: &str, stored: &Value, given: &Value, out: &mut Vec<String>) {
    match (stored, given) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, va) in a {
                let p = format!("{path}.{k}");
                match b.get(k) {
                    Some(vb) => json_diff(&p, va, vb, out),
                    None => out.push(format!("{p}: stored {va}, not given")),
                }
            }
            for (k, vb) in b {
                if !a.contains_key(k) {
                    out.push(format!("{path}.{k}: not stored, given {vb}"));
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (va, vb)) in a.iter().zip(b).enumerate() {
                json_diff(&format!("{path}[{i}]"), va, vb, out);
            }
        }
        (a, b) if a == b => {}
        (a, b) => out.push(format!("{path}: stored {a}, given {b}")),
    }
}
