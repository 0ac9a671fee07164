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
    /// A critic reviewed a node's solution (critique-and-refine): its verdict, the first
    /// wrong step it named (0-based; only with `Wrong`), its text, the tokens it wrote,
    /// and the node of the revision made from it (none when it accepted or the budget
    /// ended first).
    Critique {
        round: usize,
        node: usize,
        verdict: CritiqueVerdict,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        first_wrong: Option<usize>,
        critique: String,
        tokens: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        revision: Option<usize>,
    },
}

/// What a critic concluded about a solution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CritiqueVerdict {
    /// Every step correct: the solution stands.
    Accept,
    /// A step is wrong (the event's `first_wrong`).
    Wrong,
    /// The critique had no verdict line in the fixed form (or named a step the solution
    /// does not have).
    Unparsed,
}

/// One node of the tree a search built: the step it added to its parent's prefix and
/// what the search knew about it. Node ids are those of the [`TraceEvent`]s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TreeNode {
    pub id: usize,
    /// `None` for the root (the empty prefix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<usize>,
    /// The step this node appended (empty for the root and for empty continuations).
    #[serde(default)]
    pub step: String,
    /// The search's score of the prefix ending here (ranking key or aggregated value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// Simulations through this node (MCTS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visits: Option<u64>,
    /// Mean backed-up value (MCTS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
}

impl TreeNode {
    /// A node with its parent and step, not scored yet.
    pub fn new(id: usize, parent: Option<usize>, step: impl Into<String>) -> Self {
        Self {
            id,
            parent,
            step: step.into(),
            score: None,
            visits: None,
            value: None,
        }
    }
}

/// The record of what a strategy did for one problem, with what it spent.
///
/// Tree searches (beam, DVTS, MCTS) also keep the `tree` they built, every node with its
/// parent; which nodes were pruned and which was chosen are the `Prune` and `Select`
/// events. Traces stored before the tree existed read with an empty tree, and an empty
/// tree is not written, so records of sampling strategies are unchanged.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Trace {
    pub strategy: String,
    pub events: Vec<TraceEvent>,
    pub spent: Spent,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tree: Vec<TreeNode>,
}

impl Trace {
    /// An empty trace for a named strategy.
    pub fn new(strategy: impl Into<String>) -> Self {
        Self {
            strategy: strategy.into(),
            events: Vec::new(),
            spent: Spent::default(),
            tree: Vec::new(),
        }
    }

    /// Appends an event.
    pub fn push(&mut self, e: TraceEvent) {
        self.events.push(e);
    }

    /// The node with id `id` of the stored tree.
    pub fn node_mut(&mut self, id: usize) -> Option<&mut TreeNode> {
        self.tree.iter_mut().find(|n| n.id == id)
    }

    /// The ids from the root to `id` (empty when `id` is not in the tree; stops at a
    /// cycle, which a well-formed tree never has).
    pub fn path_to(&self, id: usize) -> Vec<usize> {
        let by_id: std::collections::HashMap<usize, &TreeNode> =
            self.tree.iter().map(|n| (n.id, n)).collect();
        let mut path = Vec::new();
        let mut cur = by_id.get(&id).copied();
        while let Some(n) = cur {
            if path.contains(&n.id) || path.len() > self.tree.len() {
                break;
            }
            path.push(n.id);
            cur = n.parent.and_then(|p| by_id.get(&p).copied());
        }
        path.reverse();
        path
    }

    /// Appends a note.
    pub fn note(&mut self, message: impl Into<String>) {
        self.events.push(TraceEvent::Note {
            message: message.into(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trace_without_a_tree_reads_and_an_empty_tree_is_not_written() {
        let old = serde_json::json!({
            "strategy": "beam",
            "events": [],
            "spent": serde_json::to_value(Spent::default()).unwrap(),
        });
        let t: Trace = serde_json::from_value(old).unwrap();
        assert!(t.tree.is_empty());
        let v = serde_json::to_value(&t).unwrap();
        assert!(v.get("tree").is_none(), "{v}");
    }

    #[test]
    fn path_to_walks_parents_from_the_root() {
        let mut t = Trace::new("beam");
        t.tree = vec![
            TreeNode::new(0, None, ""),
            TreeNode::new(1, Some(0), "a"),
            TreeNode::new(2, Some(0), "b"),
            TreeNode::new(3, Some(2), "c"),
        ];
        assert_eq!(t.path_to(3), vec![0, 2, 3]);
        assert_eq!(t.path_to(1), vec![0, 1]);
        assert!(t.path_to(9).is_empty());
        t.node_mut(3).unwrap().score = Some(0.5);
        let back: Trace = serde_json::from_value(serde_json::to_value(&t).unwrap()).unwrap();
        assert_eq!(back, t);
        // a cycle ends the walk instead of looping
        t.tree[0].parent = Some(3);
        assert!(t.path_to(3).len() <= 4);
    }
}
