use crate::Spent;
use serde::{Deserialize, Serialize};

/// One thing a strategy did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TraceEvent {
    /// The policy produced continuations of a node.
    Expand {
        node: usize,
        children: Vec<usize>,
        tokens: u64,
    },
    /// A scorer judged a node.
    Score {
        node: usize,
        score: f64,
        tokens: u64,
    },
    /// A node was dropped (pruned beam, dead branch).
    Prune { node: usize, reason: String },
    /// A strategy-specific remark (e.g. "beam step 3: kept 4 of 16").
    Note { message: String },
    /// The final choice.
    Select { node: usize, answer: Option<String> },
}

/// The record of what a strategy did for one problem, with what it spent.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Trace {
    pub strategy: String,
    pub events: Vec<TraceEvent>,
    pub spent: Spent,
}

impl Trace {
    /// An empty trace for a named strategy.
    pub fn new(strategy: impl Into<String>) -> Self {
        Self {
            strategy: strategy.into(),
            events: Vec::new(),
            spent: Spent::default(),
        }
    }

    /// Appends an event.
    pub fn push(&mut self, e: TraceEvent) {
        self.events.push(e);
    }

    /// Appends a note.
    pub fn note(&mut self, message: impl Into<String>) {
        self.events.push(TraceEvent::Note {
            message: message.into(),
        });
    }
}
