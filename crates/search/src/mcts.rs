//! Monte-Carlo tree search over steps, with PUCT selection.

use crate::{Context, Ledger, Outcome, Sample, SearchError, Strategy, ended};
use async_trait::async_trait;
use stepwise_core::{Budget, Problem, Rationale, Step, StepScore, TraceEvent, TreeNode};

/// MCTS over steps (PUCT).
///
/// Each simulation walks from the root, choosing the child with the largest
/// `Q + c_puct · P · sqrt(N_parent) / (1 + N_child)` (ties: the earlier child), until it
/// reaches a node without children. A finished node (final answer, or `max_steps` deep)
/// backs up its own value again; an open node is expanded with `expansions` new steps,
/// each judged by the scorer given its prefix. A child's value is its aggregated path
/// score (the reward); priors `P` are the children's step scores normalized over siblings.
/// Every new child backs up its value along the path, so `Q` of a node is the mean value
/// of the nodes evaluated beneath it.
///
/// The answer is the finished node with the highest value (ties: more visits, then the
/// earlier node); when nothing finished, the open leaf at the end of the most-visited path.
#[derive(Debug, Clone, PartialEq)]
pub struct Mcts {
    pub simulations: usize,
    pub expansions: usize,
    pub max_steps: usize,
    pub c_puct: f64,
}

impl Mcts {
    /// A search that evaluates about `n` nodes: `n / expansions` simulations.
    pub fn for_n(n: usize, expansions: usize, max_steps: usize) -> Self {
        let (simulations, expansions) = crate::beam::split_n(n, expansions);
        Self {
            simulations,
            expansions,
            max_steps,
            c_puct: 1.5,
        }
    }
}

#[derive(Debug, Clone)]
struct Node {
    parent: Option<usize>,
    steps: Vec<String>,
    scores: Vec<StepScore>,
    value: f64,
    prior: f64,
    visits: u64,
    total: f64,
    children: Vec<usize>,
    finished: bool,
    tokens: u64,
}

#[async_trait]
impl Strategy for Mcts {
    fn name(&self) -> String {
        format!(
            "mcts(sims={},e={},steps={},c={})",
            self.simulations, self.expansions, self.max_steps, self.c_puct
        )
    }

    async fn solve(
        &self,
        problem: &Problem,
        budget: &Budget,
        ctx: &Context,
    ) -> Result<Outcome, SearchError> {
        if self.expansions == 0 || self.simulations == 0 {
            return Err(SearchError::Config(
                "simulations and expansions must be at least 1".into(),
            ));
        }
        let name = self.name();
        let scorer = ctx.scorer("mcts")?.clone();
        let mut ledger = Ledger::new(problem, budget, &name);
        let mut nodes = vec![Node {
            parent: None,
            steps: Vec::new(),
            scores: Vec::new(),
            value: 0.0,
            prior: 1.0,
            visits: 0,
            total: 0.0,
            children: Vec::new(),
            finished: false,
            tokens: 0,
        }];
        let mut stop = vec![ctx.splitter.separator().to_string()];
        stop.extend(ctx.stop.iter().cloned());

        for sim in 0..self.simulations {
            // selection
            let mut cur = 0usize;
            while !nodes[cur].children.is_empty() {
                let parent_n = nodes[cur].visits.max(1) as f64;
                let mut best: Option<(usize, f64)> = None;
                for &c in &nodes[cur].children {
                    let ch = &nodes[c];
                    let q = if ch.visits == 0 {
                        ch.value
                    } else {
                        ch.total / ch.visits as f64
                    };
                    let u = q + self.c_puct * ch.prior * parent_n.sqrt() / (1.0 + ch.visits as f64);
                    if best.is_none_or(|(_, b)| u > b) {
                        best = Some((c, u));
                    }
                }
                match best {
                    Some((c, _)) => cur = c,
                    None => break,
                }
            }
            if nodes[cur].finished || nodes[cur].steps.len() >= self.max_steps {
                let v = nodes[cur].value;
                backup(&mut nodes, cur, v);
                continue;
            }
            // expansion
            let Some(max_tokens) = ledger.allowance(self.expansions, ctx.max_step_tokens) else {
                break;
            };
            let prefix = if nodes[cur].steps.is_empty() {
                String::new()
            } else {
                format!(
                    "{}{}",
                    ctx.splitter.join_texts(&nodes[cur].steps),
                    ctx.splitter.separator()
                )
            };
            let comps = ledger
                .generate(
                    ctx,
                    &prefix,
                    self.expansions,
                    max_tokens,
                    ctx.sampling.temperature,
                    stop.clone(),
                )
                .await?;
            let mut new_ids = Vec::new();
            for c in &comps {
                let raw = c.text.trim();
                if raw.is_empty() {
                    continue;
                }
                let answered = ctx.final_extractor.extract(raw).is_some();
                let text = if answered {
                    ctx.cut_after_answer(raw)
                } else {
                    raw.to_string()
                };
                let steps_before: Vec<Step> = nodes[cur]
                    .steps
                    .iter()
                    .enumerate()
                    .map(|(index, t)| Step {
                        index,
                        text: t.clone(),
                    })
                    .collect();
                let step = Step {
                    index: steps_before.len(),
                    text: text.clone(),
                };
                let finished = answered || ended(c);
                let answer = if finished {
                    let mut all = nodes[cur].steps.clone();
                    all.push(text.clone());
                    ctx.extractor
                        .extract(&ctx.splitter.join_texts(&all))
                        .map(|e| e.text)
                } else {
                    None
                };
                let s = scorer
                    .score_step(ledger.problem, &steps_before, &step, answer.as_deref())
                    .await
                    .map_err(|e| ledger.score_err(e))?;
                ledger.add_judge(s.spent);
                let mut scores = nodes[cur].scores.clone();
                let step_score = s.scores.last().map_or(0.0, |x| x.score);
                scores.extend(s.scores);
                let value = ctx.aggregation.apply_scores(&scores).unwrap_or(0.0);
                let mut steps = nodes[cur].steps.clone();
                steps.push(text);
                let id = nodes.len();
                nodes.push(Node {
                    parent: Some(cur),
                    steps,
                    scores,
                    value,
                    prior: step_score,
                    visits: 0,
                    total: 0.0,
                    children: Vec::new(),
                    finished,
                    tokens: nodes[cur].tokens + c.generated_tokens,
                });
                ledger.trace.push(TraceEvent::Score {
                    node: id,
                    score: value,
                    tokens: s.spent.generated_tokens(),
                });
                new_ids.push(id);
            }
            ledger.trace.push(TraceEvent::Expand {
                node: cur,
                children: new_ids.clone(),
                tokens: comps.iter().map(|c| c.generated_tokens).sum(),
            });
            let sum: f64 = new_ids.iter().map(|&i| nodes[i].prior).sum();
            for &i in &new_ids {
                nodes[i].prior = if sum > 0.0 {
                    nodes[i].prior / sum
                } else {
                    1.0 / new_ids.len() as f64
                };
            }
            nodes[cur].children = new_ids.clone();
            if new_ids.is_empty() {
                // nothing usable came back: treat the node as a dead end
                nodes[cur].finished = true;
                ledger.trace.push(TraceEvent::Prune {
                    node: cur,
                    reason: "no non-empty continuation".into(),
                });
            }
            for i in new_ids {
                let v = nodes[i].value;
                backup(&mut nodes, i, v);
            }
            ledger
                .trace
                .note(format!("simulation {}: {} nodes", sim + 1, nodes.len()));
        }

        // choose
        let finished: Vec<usize> = (1..nodes.len())
            .filter(|&i| nodes[i].finished && !nodes[i].steps.is_empty())
            .collect();
        let pool: Vec<usize> = if finished.is_empty() {
            let mut cur = 0;
            while let Some(&c) = nodes[cur]
                .children
                .iter()
                .max_by(|&&a, &&b| nodes[a].visits.cmp(&nodes[b].visits).then(b.cmp(&a)))
            {
                cur = c;
            }
            if cur == 0 { Vec::new() } else { vec![cur] }
        } else {
            finished
        };
        let mut best: Option<usize> = None;
        for (k, &i) in pool.iter().enumerate() {
            best = match best {
                None => Some(k),
                Some(b) => {
                    let (x, y) = (&nodes[i], &nodes[pool[b]]);
                    if x.value > y.value || (x.value == y.value && x.visits > y.visits) {
                        Some(k)
                    } else {
                        Some(b)
                    }
                }
            };
        }
        let samples: Vec<Sample> = pool
            .iter()
            .map(|&i| {
                let n = &nodes[i];
                let text = ctx.splitter.join_texts(&n.steps);
                let answer = ctx.extractor.extract(&text).map(|e| e.text);
                Sample {
                    rationale: Rationale {
                        steps: n
                            .steps
                            .iter()
                            .enumerate()
                            .map(|(index, t)| Step {
                                index,
                                text: t.clone(),
                            })
                            .collect(),
                        answer,
                    },
                    text,
                    scores: n.scores.clone(),
                    score: Some(n.value),
                    tokens: n.tokens,
                    finished: n.finished,
                    ..Sample::default()
                }
            })
            .collect();
        let answer = best.and_then(|k| samples[k].rationale.answer.clone());
        ledger.trace.push(TraceEvent::Select {
            node: best.map_or(0, |k| pool[k]),
            answer: answer.clone(),
        });
        // the tree as built: node ids are indices, with value and visits after the search
        ledger.trace.tree = nodes
            .iter()
            .enumerate()
            .map(|(id, n)| TreeNode {
                score: (id > 0).then_some(n.value),
                visits: Some(n.visits),
                value: (n.visits > 0).then(|| n.total / n.visits as f64),
                ..TreeNode::new(id, n.parent, n.steps.last().cloned().unwrap_or_default())
            })
            .collect();
        Ok(ledger.finish(name, answer, best, samples))
    }
}

fn backup(nodes: &mut [Node], from: usize, v: f64) {
    let mut cur = Some(from);
    while let Some(i) = cur {
        nodes[i].visits += 1;
        nodes[i].total += v;
        cur = nodes[i].parent;
    }
}
