//! OmegaPRM (Luo et al. 2024, "Improve Mathematical Reasoning in Language Models by
//! Automated Process Supervision").
//!
//! Per question a tree of states is grown; a state `s` is a prefix of steps. From each new
//! state `k` rollouts are drawn and `MC(s) = correct / k`. Every *incorrect* rollout `r`
//! of a state with `0 < MC(s) < 1` enters a candidate pool. Each search iteration:
//!
//! 1. **Select** the pooled pair maximizing `Q(s,r) + U(s)` with
//!    `Q(s,r) = α^(1−MC(s)) · β^(len(r)/L)` (`len(r)` in generated tokens) and
//!    `U(s) = c_puct · √(Σ_i N(s_i)) / (1 + N(s))`, and remove it from the pool.
//! 2. **Binary search** along `r` for the first step whose prefix has `MC = 0`: probe the
//!    middle prefix `s + r[..mid]` with `k` rollouts; `MC > 0` moves the search right,
//!    `MC = 0` moves it left. The full rollout is known to be wrong (its answer failed),
//!    so it needs no probe. Every probed prefix becomes a tree node (child of the deepest
//!    known node on the path) and its incorrect rollouts join the pool when `0 < MC < 1`.
//! 3. **Maintain**: `N(s) += 1` for the selected state.
//!
//! The search stops after `search_limit` iterations or when the pool is empty. A root
//! with `MC = 0` or `MC = 1` gives no pool (the paper drops such questions).
//!
//! **Root top-up** (ours): before giving up on such a root, more root rollouts are drawn
//! (as many again each round, up to `root_max_k` in all). With a policy right about
//! 5% of the time, 16 rollouts all fail 44% of the time, and the question's whole
//! budget is spent on nothing; `stepwise bench labels` on the simulated policy at step
//! error rate 0.3 found most questions dropped that way. `root_max_k ≤ k` is the paper.
//!
//! Output: every labelled prefix (tree node) with its MC value, and every searched
//! rollout as a solution labelled up to and including its first error (steps before it
//! good, the error step bad).

use crate::policy::{Policy, Rollout};
use crate::{LabelledSolution, Method, PrefixLabel, QuestionResult, Result, StepLabel, mix_seed};
use serde::{Deserialize, Serialize};
use stepwise_core::{Problem, Spent};

/// OmegaPRM parameters (defaults are the paper's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OmegaConfig {
    pub c_puct: f64,
    pub alpha: f64,
    pub beta: f64,
    /// Length normaliser `L` of `β^(len(r)/L)`, in tokens.
    pub l: f64,
    /// Rollouts per new state.
    pub k: usize,
    /// Search iterations (select + binary search) per question.
    pub search_limit: usize,
    /// Most rollouts from the root while its MC is 0 or 1 (see the module docs); `k` or
    /// less is the paper (no top-up). Runs stored before this existed had none (0).
    #[serde(default)]
    pub root_max_k: usize,
}

impl Default for OmegaConfig {
    fn default() -> Self {
        Self {
            c_puct: 0.125,
            alpha: 0.5,
            beta: 0.9,
            l: 500.0,
            k: 16,
            search_limit: 100,
            root_max_k: 64,
        }
    }
}

#[derive(Debug, Clone)]
struct Node {
    parent: Option<usize>,
    steps: Vec<String>,
    visits: u32,
    mc: f64,
    total: u32,
    correct: u32,
}

#[derive(Debug, Clone)]
struct PoolEntry {
    node: usize,
    rollout: Rollout,
}

/// The tree of one question.
struct Tree {
    nodes: Vec<Node>,
    pool: Vec<PoolEntry>,
}

impl Tree {
    fn add(&mut self, parent: Option<usize>, steps: Vec<String>, rollouts: Vec<Rollout>) -> usize {
        let total = rollouts.len() as u32;
        let correct = rollouts.iter().filter(|r| r.correct).count() as u32;
        let mc = if total == 0 {
            0.0
        } else {
            f64::from(correct) / f64::from(total)
        };
        let id = self.nodes.len();
        self.nodes.push(Node {
            parent,
            steps,
            visits: 0,
            mc,
            total,
            correct,
        });
        if mc > 0.0 && mc < 1.0 {
            for r in rollouts
                .into_iter()
                .filter(|r| !r.correct && !r.steps.is_empty())
            {
                self.pool.push(PoolEntry {
                    node: id,
                    rollout: r,
                });
            }
        }
        id
    }

    /// Index in the pool of the entry maximizing Q + U (first one on ties).
    fn select(&self, cfg: &OmegaConfig) -> Option<usize> {
        let sum_n: f64 = self.nodes.iter().map(|n| f64::from(n.visits)).sum();
        let mut best: Option<(usize, f64)> = None;
        for (i, e) in self.pool.iter().enumerate() {
            let n = &self.nodes[e.node];
            let q = cfg.alpha.powf(1.0 - n.mc) * cfg.beta.powf(e.rollout.tokens as f64 / cfg.l);
            let u = cfg.c_puct * sum_n.sqrt() / (1.0 + f64::from(n.visits));
            let score = q + u;
            if best.is_none_or(|(_, b)| score > b) {
                best = Some((i, score));
            }
        }
        best.map(|(i, _)| i)
    }
}

/// The score `Q(s,r) + U(s)` of OmegaPRM's selection, exposed for tests and docs.
pub fn selection_score(
    cfg: &OmegaConfig,
    mc: f64,
    len_tokens: u64,
    visits: u32,
    sum_visits: u32,
) -> f64 {
    cfg.alpha.powf(1.0 - mc) * cfg.beta.powf(len_tokens as f64 / cfg.l)
        + cfg.c_puct * f64::from(sum_visits).sqrt() / (1.0 + f64::from(visits))
}

/// Runs OmegaPRM on one question.
pub async fn label(
    policy: &Policy,
    problem: &Problem,
    cfg: &OmegaConfig,
    seed: u64,
) -> Result<QuestionResult> {
    let mut spent = Spent::default();
    let mut tree = Tree {
        nodes: Vec::new(),
        pool: Vec::new(),
    };
    let mut root_rollouts = policy
        .rollouts(problem, &[], cfg.k, mix_seed(seed, "omega/0"), &mut spent)
        .await?;
    // Top-up: a root whose k rollouts all agree gives an empty pool; draw more (doubling)
    // until they disagree or `root_max_k` are drawn.
    let mut round = 1u32;
    while root_rollouts.len() < cfg.root_max_k
        && !root_rollouts.is_empty()
        && (root_rollouts.iter().all(|r| r.correct) || root_rollouts.iter().all(|r| !r.correct))
    {
        let n = root_rollouts
            .len()
            .min(cfg.root_max_k - root_rollouts.len());
        let tag = format!("omega/0/{round}");
        let more = policy
            .rollouts(problem, &[], n, mix_seed(seed, &tag), &mut spent)
            .await?;
        if more.is_empty() {
            break;
        }
        root_rollouts.extend(more);
        round += 1;
    }
    let mut rollouts = root_rollouts.len() as u64;
    tree.add(None, Vec::new(), root_rollouts);
    let mut solutions = Vec::new();
    for iter in 0..cfg.search_limit {
        let Some(pick) = tree.select(cfg) else { break };
        let PoolEntry { node: s, rollout } = tree.pool.swap_remove(pick);
        tree.nodes[s].visits += 1;
        let base = tree.nodes[s].steps.clone();
        let m = rollout.steps.len();
        // Invariant: prefix base + r[..left-1] has MC > 0 (known node `last_good`);
        // prefix base + r[..right] has MC = 0.
        let (mut left, mut right) = (1usize, m);
        let mut last_good = s;
        let mut path: Vec<(usize, usize)> = Vec::new(); // (prefix length within r, node)
        while left < right {
            let mid = (left + right) / 2;
            let mut steps = base.clone();
            steps.extend_from_slice(&rollout.steps[..mid]);
            let tag = format!("omega/{}", tree.nodes.len());
            let rs = policy
                .rollouts(problem, &steps, cfg.k, mix_seed(seed, &tag), &mut spent)
                .await?;
            rollouts += rs.len() as u64;
            let id = tree.add(Some(last_good), steps, rs);
            path.push((mid, id));
            if tree.nodes[id].mc > 0.0 {
                left = mid + 1;
                last_good = id;
            } else {
                right = mid;
            }
        }
        // Probes came in binary-search order; chain them by prefix length so every
        // node's parent is the deepest known node whose prefix it extends.
        path.sort_by_key(|(len, _)| *len);
        let mut parent = s;
        for &(_, id) in &path {
            tree.nodes[id].parent = Some(parent);
            parent = id;
        }
        if let Some(&(len, id)) = path.iter().rev().find(|(len, _)| *len < left) {
            debug_assert!(len == left - 1);
            last_good = id;
        }
        // `left` is the first step of r (1-based) whose prefix has MC = 0.
        let err_node = match path.iter().find(|(len, _)| *len == left) {
            Some((_, id)) => *id,
            None => {
                // Only the full rollout itself (left == m): its answer is wrong, MC = 0
                // without rollouts.
                let mut steps = base.clone();
                steps.extend_from_slice(&rollout.steps[..left]);
                tree.add(Some(last_good), steps, Vec::new())
            }
        };
        let mut full = base.clone();
        full.extend_from_slice(&rollout.steps);
        let labels = path_labels(&tree, err_node, base.len() + left);
        tracing::debug!(problem = %problem.id, iter, first_error = base.len() + left - 1, "omegaprm binary search");
        solutions.push(LabelledSolution {
            problem_id: problem.id.clone(),
            question: problem.question.clone(),
            gold: problem.gold.clone(),
            sample: iter as u32,
            steps: full,
            labels,
            answer_correct: Some(false),
        });
    }
    let prefixes = tree
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| PrefixLabel {
            node: i as u32,
            parent: n.parent.map(|p| p as u32),
            steps: n.steps.clone(),
            mc: n.mc,
            rollouts: n.total,
            correct: n.correct,
        })
        .collect();
    Ok(QuestionResult {
        problem_id: problem.id.clone(),
        method: Method::OmegaPrm,
        solutions,
        prefixes,
        spent,
        rollouts,
        abstained: 0,
    })
}

/// Labels of steps `0..upto` along the path from the root to `node`: step `i` takes the
/// MC value of the shallowest node on the path whose prefix covers it (prefix length
/// `> i`); good iff that MC is above 0.
fn path_labels(tree: &Tree, node: usize, upto: usize) -> Vec<StepLabel> {
    let mut chain = Vec::new();
    let mut cur = Some(node);
    // Bounded walk: a corrupt stored tree with a cycle cannot loop forever.
    while let Some(c) = cur.filter(|&c| c < tree.nodes.len() && chain.len() <= tree.nodes.len()) {
        chain.push(c);
        cur = tree.nodes[c].parent;
    }
    chain.reverse(); // root first
    (0..upto)
        .map(|i| {
            let n = chain
                .iter()
                .map(|&c| &tree.nodes[c])
                .find(|n| n.steps.len() > i)
                .unwrap_or(&tree.nodes[node]);
            StepLabel {
                value: n.mc,
                good: n.mc > 0.0,
                rollouts: if n.steps.len() == i + 1 { n.total } else { 0 },
                correct: if n.steps.len() == i + 1 { n.correct } else { 0 },
                reason: None,
            }
        })
        .collect()
}

/// One export record per labelled prefix (every non-root node): its steps, each labelled
/// with the MC value of the shallowest node on its path that covers the step (the node's
/// own MC for its last segment).
pub fn prefix_records(
    result: &QuestionResult,
    question: &str,
    gold: Option<&str>,
) -> Vec<LabelledSolution> {
    let nodes: Vec<Node> = result
        .prefixes
        .iter()
        .map(|p| Node {
            parent: p.parent.map(|x| x as usize),
            steps: p.steps.clone(),
            visits: 0,
            mc: p.mc,
            total: p.rollouts,
            correct: p.correct,
        })
        .collect();
    let tree = Tree {
        nodes,
        pool: Vec::new(),
    };
    result
        .prefixes
        .iter()
        .filter(|p| {
            (p.node as usize) < tree.nodes.len()
                && p.parent.is_some_and(|x| (x as usize) < tree.nodes.len())
        })
        .map(|p| LabelledSolution {
            problem_id: result.problem_id.clone(),
            question: question.to_string(),
            gold: gold.map(str::to_string),
            sample: p.node,
            steps: p.steps.clone(),
            labels: path_labels(&tree, p.node as usize, p.steps.len()),
            answer_correct: None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_prefers_confident_states_short_rollouts_and_few_visits() {
        let cfg = OmegaConfig::default();
        // higher MC -> higher Q
        assert!(selection_score(&cfg, 0.75, 100, 0, 0) > selection_score(&cfg, 0.25, 100, 0, 0));
        // shorter rollout -> higher Q
        assert!(selection_score(&cfg, 0.5, 50, 0, 0) > selection_score(&cfg, 0.5, 400, 0, 0));
        // fewer visits -> higher U
        assert!(selection_score(&cfg, 0.5, 50, 0, 9) > selection_score(&cfg, 0.5, 50, 3, 9));
        // exact value: 0.5^(0.5) * 0.9^(250/500) + 0.125 * 3 / 2
        let v = selection_score(&cfg, 0.5, 250, 1, 9);
        let want = 0.5f64.powf(0.5) * 0.9f64.powf(0.5) + 0.125 * 3.0 / 2.0;
        assert!((v - want).abs() < 1e-12);
    }
}
