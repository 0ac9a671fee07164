//! What the explorer's JSON routes answer: typed, versioned boundary types (the
//! front-end in `assets/app.js` reads exactly these; [`API_VERSION`] is in every answer
//! that carries a page). Every field is always written: an unknown value is `null`.

use serde::{Deserialize, Serialize};
use stepwise_core::Spent;

/// Version of these types; bumped when their shape changes.
pub const API_VERSION: u32 = 1;

/// One run in the runs list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub id: i64,
    pub kind: String,
    pub version: u32,
    pub status: String,
    pub error: Option<String>,
    pub created: String,
    pub updated: String,
    pub problems: usize,
    pub units: usize,
    /// Units the job has in all, where the kind says (solve, scale, annotate).
    pub expected_units: Option<usize>,
    pub config: serde_json::Value,
    /// Everything the stored units spent, policy and judges.
    pub spent: Spent,
    /// Results with a verdict against the gold answer, and how many were right.
    pub judged: usize,
    pub correct: usize,
    /// Whether the explorer has problem pages for this kind.
    pub browsable: bool,
    /// Where the run's HTML report is (solve, scale and annotate runs).
    pub report: Option<String>,
    /// Why the run's units could not be read, when they could not.
    pub read_error: Option<String>,
}

/// The runs list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunsPage {
    pub api: u32,
    pub store: String,
    pub runs: Vec<RunSummary>,
}

/// One result of a problem in a run: a strategy's answer (solve, a scale cell) or a
/// labelling method's work (annotate).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Variant {
    /// `beam(w=2,…)` for solve, `beam n=4` / `majority n=8` for scale, the method for
    /// annotate.
    pub name: String,
    pub answer: Option<String>,
    /// The answer's verdict against the gold answer (`None`: no gold, or not an answer).
    pub correct: Option<bool>,
    /// Generated tokens, policy and judges.
    pub tokens: u64,
}

/// One problem of a run, as listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProblemRow {
    pub id: String,
    pub question: String,
    pub gold: Option<String>,
    pub variants: Vec<Variant>,
    /// Annotate: step labels that disagree with the truth (or, without truth, with the
    /// other methods). Solve/scale: results whose verdicts disagree (0 or 1).
    pub disagreements: usize,
}

/// A run with its problems.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunPage {
    pub api: u32,
    pub run: RunSummary,
    pub rows: Vec<ProblemRow>,
}

/// One step with its stored score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepView {
    pub text: String,
    pub score: Option<f64>,
}

/// One sample (candidate solution) of a result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleView {
    pub index: usize,
    pub steps: Vec<StepView>,
    pub answer: Option<String>,
    pub correct: Option<bool>,
    pub score: Option<f64>,
    pub tokens: u64,
    pub chosen: bool,
}

/// One node of a search tree, with what the trace says about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeView {
    pub id: usize,
    pub parent: Option<usize>,
    pub step: String,
    pub score: Option<f64>,
    pub visits: Option<u64>,
    pub value: Option<f64>,
    /// Why the search dropped it, when it did.
    pub pruned: Option<String>,
    /// On the path from the root to the selected node.
    pub chosen: bool,
}

/// The tree a search built.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TreeView {
    pub nodes: Vec<NodeView>,
    pub selected: Option<usize>,
}

/// One stored result of a problem (a solve unit, a scale draw or tree search).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultView {
    pub variant: Variant,
    pub spent: Spent,
    pub samples: Vec<SampleView>,
    /// Tree searches stored with their tree; `None` for sampling and for runs stored
    /// before trees were kept.
    pub tree: Option<TreeView>,
    /// Whether the result came from a tree search (a tree may still be absent).
    pub searched: bool,
}

/// Where the truth of a labelled solution comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TruthSource {
    /// Exact per-step truth of an `arith` problem.
    Arith,
    /// ProcessBench's human label (the solution is the benchmark's own).
    ProcessBench,
}

/// One method's label of one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelCell {
    pub value: f64,
    pub good: bool,
    pub reason: Option<String>,
    /// The label says otherwise than the truth (or, without truth, than another method).
    pub disagrees: bool,
}

/// One method's labels of a solution (`None` past the steps it labelled).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MethodLabels {
    pub method: String,
    pub sample: u32,
    pub labels: Vec<Option<LabelCell>>,
}

/// A solution labelled by one or more methods, side by side with the truth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelledView {
    pub steps: Vec<String>,
    pub answer_correct: Option<bool>,
    pub truth_source: Option<TruthSource>,
    /// Per step: whether it is truly good (`None` without truth).
    pub truth: Vec<Option<bool>>,
    /// The true first wrong step (`None`: no error, or no truth).
    pub first_wrong: Option<usize>,
    pub methods: Vec<MethodLabels>,
    pub disagreements: usize,
}

/// One problem of a run, whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProblemPage {
    pub api: u32,
    pub run: RunSummary,
    pub id: String,
    pub question: String,
    pub gold: Option<String>,
    pub results: Vec<ResultView>,
    pub labelled: Vec<LabelledView>,
    /// Previous and next problem of the run (keyboard navigation).
    pub prev: Option<String>,
    pub next: Option<String>,
}

/// One side of a comparison row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Side {
    pub answer: Option<String>,
    pub correct: Option<bool>,
    pub tokens: u64,
}

/// A problem (and result, where runs hold several per problem) in both runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompareRow {
    pub id: String,
    pub question: String,
    /// The result compared (`solve`, or a scale cell such as `beam n=4`).
    pub variant: String,
    pub a: Side,
    pub b: Side,
    /// The answers or their verdicts differ.
    pub differ: bool,
}

/// Two runs on the same problems.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComparePage {
    pub api: u32,
    pub a: RunSummary,
    pub b: RunSummary,
    pub rows: Vec<CompareRow>,
    /// Problems of one run the other does not have.
    pub only_a: usize,
    pub only_b: usize,
}

/// An error answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiError {
    pub error: String,
}
