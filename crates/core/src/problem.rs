use serde::{Deserialize, Serialize};

/// A question to solve, with what is known about its answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    /// Stable identifier, unique within a dataset (e.g. `gsm8k:test:17`).
    pub id: String,
    /// The question as shown to the model.
    pub question: String,
    /// The gold final answer, when known (already extracted, e.g. `72` or `\frac{1}{2}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gold: Option<String>,
    /// A reference step-by-step solution, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Anything else the dataset carries (subject, level, intermediate values, ...).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

impl Problem {
    /// A problem with only an id and a question.
    pub fn new(id: impl Into<String>, question: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            question: question.into(),
            gold: None,
            reference: None,
            metadata: serde_json::Map::new(),
        }
    }

    /// Sets the gold answer.
    pub fn with_gold(mut self, gold: impl Into<String>) -> Self {
        self.gold = Some(gold.into());
        self
    }

    /// Sets the reference solution.
    pub fn with_reference(mut self, reference: impl Into<String>) -> Self {
        self.reference = Some(reference.into());
        self
    }
}
