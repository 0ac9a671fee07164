//! Boundary types of `annotate` runs: one (method, question) unit's labelled solutions,
//! prefixes and cost, as stored (written by `stepwise-annotate`, read by eval and
//! reports).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use stepwise_core::Spent;

/// The run kind of labelling jobs in the store.
pub const KIND: &str = "annotate";
/// Version of their stored types.
pub const VERSION: u32 = 1;

/// A labelling method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    Mc,
    OmegaPrm,
    Reference,
    Grounded,
    /// Monte-Carlo labels whose rollouts stop once a prefix's label is decided.
    #[serde(rename = "adaptive-mc")]
    AdaptiveMc,
    /// GenPRM's Relative Progress Estimation over Monte-Carlo values.
    Rpe,
}

impl Method {
    pub const ALL: [Method; 6] = [
        Self::Mc,
        Self::OmegaPrm,
        Self::Reference,
        Self::Grounded,
        Self::AdaptiveMc,
        Self::Rpe,
    ];

    /// Whether the method asks a judge (the policy, or `annotate --judge-model`'s model).
    pub fn uses_judge(self) -> bool {
        matches!(self, Self::Reference)
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Mc => "mc",
            Self::OmegaPrm => "omegaprm",
            Self::Reference => "reference",
            Self::Grounded => "grounded",
            Self::AdaptiveMc => "adaptive-mc",
            Self::Rpe => "rpe",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Method {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "mc" | "math-shepherd" | "mathshepherd" => Ok(Self::Mc),
            "omegaprm" | "omega" => Ok(Self::OmegaPrm),
            "reference" | "spare" => Ok(Self::Reference),
            "grounded" | "groundedprm" => Ok(Self::Grounded),
            "adaptive-mc" | "adaptive" | "amc" => Ok(Self::AdaptiveMc),
            "rpe" | "relative-progress" => Ok(Self::Rpe),
            other => Err(format!(
                "unknown method '{other}' (expected mc, adaptive-mc, omegaprm, reference, grounded or rpe)"
            )),
        }
    }
}

/// The label of one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepLabel {
    /// Soft label in `0..=1` (MC value, judge confidence, hybrid reward).
    pub value: f64,
    /// Hard label: the step is good.
    pub good: bool,
    /// Rollouts made from the prefix ending at this step (0 when none).
    #[serde(default)]
    pub rollouts: u32,
    /// Of those, how many reached the gold answer.
    #[serde(default)]
    pub correct: u32,
    /// A short reason (reference / grounded methods).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl StepLabel {
    /// The same label with its rollout count replaced (a label read off the final answer
    /// itself made no rollouts).
    pub fn with_rollouts(mut self, n: u32) -> Self {
        self.rollouts = n;
        if n == 0 {
            self.correct = 0;
        }
        self
    }

    /// An MC label from `correct` of `rollouts` (Math-Shepherd: hard = any correct).
    pub fn from_mc(correct: u32, rollouts: u32) -> Self {
        let value = if rollouts == 0 {
            0.0
        } else {
            f64::from(correct) / f64::from(rollouts)
        };
        Self {
            value,
            good: correct > 0,
            rollouts,
            correct,
            reason: None,
        }
    }
}

/// One solution with labels for its first `labels.len()` steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelledSolution {
    pub problem_id: String,
    pub question: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gold: Option<String>,
    /// Which solution of the question (sample index, or tree node id for OmegaPRM).
    pub sample: u32,
    pub steps: Vec<String>,
    /// Labels of `steps[..labels.len()]` (OmegaPRM labels up to the first error only).
    pub labels: Vec<StepLabel>,
    /// Whether the solution's final answer verified against the gold answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_correct: Option<bool>,
}

impl LabelledSolution {
    /// The first step labelled bad, if any.
    pub fn first_error(&self) -> Option<usize> {
        self.labels.iter().position(|l| !l.good)
    }
}

/// A labelled prefix of an OmegaPRM tree: the state's steps and its MC value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrefixLabel {
    /// Node id in the question's tree (0 is the root, the empty prefix).
    pub node: u32,
    /// The parent node (`None` for the root).
    pub parent: Option<u32>,
    pub steps: Vec<String>,
    /// MC(s) = correct / rollouts from this state.
    pub mc: f64,
    pub rollouts: u32,
    pub correct: u32,
}

/// Everything one method produced for one question (one run-store unit).
///
/// Units stored before the cost was a [`Spent`] hold a `cost` object (rollouts,
/// rollout, judge and prompt tokens, calls) instead of `spent` and `rollouts`; they still
/// read, with their prompt tokens counted in the policy column (the old format did not
/// split them between policy and judge).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "StoredQuestionResult")]
pub struct QuestionResult {
    pub problem_id: String,
    pub method: Method,
    /// Labelled solutions (for OmegaPRM: every binary-searched rollout, labelled up to
    /// and including the first step whose prefix has MC = 0).
    pub solutions: Vec<LabelledSolution>,
    /// OmegaPRM only: every labelled prefix (tree node) with its MC value.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prefixes: Vec<PrefixLabel>,
    /// What labelling the question cost, counted exactly from the backend's reports: the
    /// policy columns for sampled solutions and rollouts, the judge columns for judge
    /// passes (the reference method).
    pub spent: Spent,
    /// Continuations generated (sampled solutions and rollouts), including those of
    /// solutions a method left out of `solutions`.
    pub rollouts: u64,
    /// Steps a judge gave no parseable verdict for (methods with a judged step: the
    /// reference method). They get no label, are never labelled good, and are counted
    /// here (0, and absent, in units of methods without a judge and in older runs).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub abstained: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The `cost` object of units stored before [`QuestionResult::spent`]; read only.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default)]
struct LegacyCost {
    /// Continuations generated (solution samples and rollouts).
    rollouts: u64,
    /// Tokens generated for those continuations.
    rollout_tokens: u64,
    /// Judge calls (reference method).
    judge_calls: u64,
    /// Tokens generated by the judge.
    judge_tokens: u64,
    /// Prompt tokens processed (rollouts and judge together).
    prompt_tokens: u64,
    /// Generation calls (rollouts and judge together).
    calls: u64,
}

impl LegacyCost {
    /// The same counts as a [`Spent`]. Calls that were not judge calls were the policy's;
    /// the old format did not split prompt tokens, so they all go to the policy column
    /// (totals are kept; the policy/judge split of prompt tokens is not known).
    fn to_spent(self) -> Spent {
        Spent {
            policy_tokens: self.rollout_tokens,
            policy_prompt_tokens: self.prompt_tokens,
            policy_calls: self.calls.saturating_sub(self.judge_calls),
            judge_tokens: self.judge_tokens,
            judge_calls: self.judge_calls,
            ..Spent::default()
        }
    }
}

/// What a stored [`QuestionResult`] may hold: the current `spent` and `rollouts`, or the
/// `cost` object of older runs.
#[derive(Deserialize)]
struct StoredQuestionResult {
    problem_id: String,
    method: Method,
    solutions: Vec<LabelledSolution>,
    #[serde(default)]
    prefixes: Vec<PrefixLabel>,
    spent: Option<Spent>,
    rollouts: Option<u64>,
    cost: Option<LegacyCost>,
    #[serde(default)]
    abstained: u64,
}

impl TryFrom<StoredQuestionResult> for QuestionResult {
    type Error = String;
    fn try_from(s: StoredQuestionResult) -> std::result::Result<Self, String> {
        let (spent, rollouts) = match (s.spent, s.rollouts, s.cost) {
            (Some(spent), Some(rollouts), _) => (spent, rollouts),
            (None, None, Some(old)) => (old.to_spent(), old.rollouts),
            _ => return Err("expected `spent` and `rollouts`, or the older `cost`".into()),
        };
        Ok(Self {
            problem_id: s.problem_id,
            method: s.method,
            solutions: s.solutions,
            prefixes: s.prefixes,
            spent,
            rollouts,
            abstained: s.abstained,
        })
    }
}

impl QuestionResult {
    /// Steps that got a label.
    pub fn labelled_steps(&self) -> usize {
        match self.method {
            Method::OmegaPrm => self.prefixes.iter().filter(|p| p.parent.is_some()).count(),
            _ => self.solutions.iter().map(|s| s.labels.len()).sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reference-method unit as runs stored it before the cost was a `Spent`: one
    /// sampling call of 4 solutions, then 4 judge passes.
    const OLD_UNIT: &str = r#"{
        "problem_id": "p1",
        "method": "reference",
        "solutions": [{
            "problem_id": "p1", "question": "What is 2 + 2?", "gold": "4", "sample": 0,
            "steps": ["2 + 2 = 4", "The answer is 4."],
            "labels": [{"value": 1.0, "good": true, "rollouts": 0, "correct": 0, "reason": "ok"}],
            "answer_correct": true
        }],
        "cost": {"rollouts": 4, "rollout_tokens": 120, "judge_calls": 4, "judge_tokens": 200,
                 "prompt_tokens": 900, "calls": 5}
    }"#;

    #[test]
    fn a_unit_stored_with_the_old_cost_object_still_reads() {
        let r: QuestionResult = serde_json::from_str(OLD_UNIT).unwrap();
        assert_eq!(r.method, Method::Reference);
        assert_eq!(r.solutions[0].labels.len(), 1);
        assert_eq!(r.rollouts, 4);
        assert_eq!(
            r.spent,
            Spent {
                policy_tokens: 120,
                policy_prompt_tokens: 900,
                policy_calls: 1,
                judge_tokens: 200,
                judge_prompt_tokens: 0,
                judge_calls: 4,
                wall_ms: 0,
            }
        );
        assert_eq!(r.spent.generated_tokens(), 320);
        assert_eq!(r.spent.total_tokens(), 1220);
        assert_eq!(r.spent.calls(), 5);
    }

    #[test]
    fn a_unit_is_stored_with_spent_and_rollouts_and_reads_back() {
        let mut r: QuestionResult = serde_json::from_str(OLD_UNIT).unwrap();
        r.spent.judge_prompt_tokens = 700;
        r.spent.policy_prompt_tokens = 200;
        let v = serde_json::to_value(&r).unwrap();
        assert!(v.get("cost").is_none(), "{v}");
        assert_eq!(v["rollouts"], 4);
        assert_eq!(v["spent"]["judge_prompt_tokens"], 700);
        let back: QuestionResult = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
        // A unit without its cost is not a result.
        let bare = r#"{"problem_id": "p", "method": "mc", "solutions": []}"#;
        let e = serde_json::from_str::<QuestionResult>(bare).unwrap_err();
        assert!(e.to_string().contains("`spent`"), "{e}");
    }
}
