//! Step-level tree search: beam search, value-guided beam search (OVM) and DVTS.

use crate::{Call, Context, Ledger, Outcome, Sample, SearchError, Strategy, argmax, ended};
use async_trait::async_trait;
use stepwise_core::{Budget, Problem, Rationale, Step, StepScore, TraceEvent, TreeNode};

/// Step-level beam search.
///
/// The root is expanded `beam_width × expansions` times; every later step expands each
/// live beam `expansions` times. Each new step is generated with the step delimiter as a
/// stop string and judged by the scorer given the steps before it. Candidates that give a
/// final answer (or end the model's turn) are set aside as finished; of the rest, the
/// `beam_width` best by aggregated score stay live (ties: the earlier candidate, in
/// parent order then expansion order). Search ends when `beam_width` beams have finished,
/// no beam is live, `max_steps` steps were taken, or the budget is spent. The answer is the
/// best finished beam (live beams when none finished).
///
/// With `lookahead = k`, each unfinished candidate is rolled forward `k` more steps at
/// temperature 0 and ranked by the aggregated score including those steps (the lookahead
/// text is not kept; its tokens count).
///
/// Value-guided (`vbeam`, OVM) ranks by the newest step's score alone: the scorer's value
/// of the whole prefix (use a value scorer such as `rollout`).
#[derive(Debug, Clone, PartialEq)]
pub struct BeamSearch {
    pub beam_width: usize,
    pub expansions: usize,
    pub max_steps: usize,
    pub lookahead: usize,
    pub value_guided: bool,
}

impl BeamSearch {
    pub fn new(beam_width: usize, expansions: usize, max_steps: usize) -> Self {
        Self {
            beam_width,
            expansions,
            max_steps,
            lookahead: 0,
            value_guided: false,
        }
    }

    /// The same search ranked by the value of the newest prefix.
    pub fn value_guided(beam_width: usize, expansions: usize, max_steps: usize) -> Self {
        Self {
            value_guided: true,
            ..Self::new(beam_width, expansions, max_steps)
        }
    }

    /// Beam settings for a total of `n` candidates per step: `expansions` (at most `n`)
    /// per beam and `n / expansions` beams.
    pub fn for_n(n: usize, expansions: usize, max_steps: usize) -> Self {
        let (width, e) = split_n(n, expansions);
        Self::new(width, e, max_steps)
    }
}

/// How the tree searches spend `n` candidates per step: `expansions` children per node
/// (at least 1, at most `n`) and `n / expansions` parallel searches (beams, subtrees or
/// simulations; at least 1). Returns `(searches, expansions)`.
pub(crate) fn split_n(n: usize, expansions: usize) -> (usize, usize) {
    let e = expansions.clamp(1, n.max(1));
    ((n / e).max(1), e)
}

/// Diverse verifier tree search: `subtrees` independent searches, each keeping its single
/// best candidate among `expansions` per step (a beam of width 1), so the subtrees explore
/// different paths. The answer is the best finished leaf over all subtrees.
#[derive(Debug, Clone, PartialEq)]
pub struct Dvts {
    pub subtrees: usize,
    pub expansions: usize,
    pub max_steps: usize,
}

impl Dvts {
    /// `n` candidates per step in total: `n / expansions` subtrees.
    pub fn for_n(n: usize, expansions: usize, max_steps: usize) -> Self {
        let (subtrees, expansions) = split_n(n, expansions);
        Self {
            subtrees,
            expansions,
            max_steps,
        }
    }
}

#[derive(Debug, Clone)]
struct Node {
    id: usize,
    group: usize,
    steps: Vec<String>,
    scores: Vec<StepScore>,
    /// Ranking key (aggregated score, lookahead included).
    key: f64,
    tokens: u64,
    finished: bool,
}

struct TreeSearch {
    /// Groups of beams and how many to keep in each.
    groups: usize,
    keep: usize,
    expansions: usize,
    max_steps: usize,
    lookahead: usize,
    value_guided: bool,
    name: String,
}

impl TreeSearch {
    fn prefix_text(ctx: &Context, steps: &[String]) -> String {
        if steps.is_empty() {
            String::new()
        } else {
            format!(
                "{}{}",
                ctx.splitter.join_texts(steps),
                ctx.splitter.separator()
            )
        }
    }

    fn to_steps(steps: &[String]) -> Vec<Step> {
        steps
            .iter()
            .enumerate()
            .map(|(index, t)| Step {
                index,
                text: t.clone(),
            })
            .collect()
    }

    fn key(&self, ctx: &Context, scores: &[StepScore]) -> f64 {
        if self.value_guided {
            scores.last().map_or(0.0, |s| s.score)
        } else {
            ctx.aggregation.apply_scores(scores).unwrap_or(0.0)
        }
    }

    async fn run(
        &self,
        problem: &Problem,
        budget: &Budget,
        ctx: &Context,
    ) -> Result<Outcome, SearchError> {
        if self.keep == 0 || self.expansions == 0 || self.groups == 0 {
            return Err(SearchError::Config(
                "beam width, expansions and subtrees must be at least 1".into(),
            ));
        }
        let scorer = ctx.scorer(&self.name)?.clone();
        let mut ledger = Ledger::new(problem, budget, &self.name);
        // the tree as built: node ids are indices (the root, shared by DVTS's subtrees, is 0)
        ledger.trace.tree.push(TreeNode::new(0, None, ""));
        let mut next_id = 1usize;
        let mut live: Vec<Node> = (0..self.groups)
            .map(|g| Node {
                id: 0,
                group: g,
                steps: Vec::new(),
                scores: Vec::new(),
                key: 0.0,
                tokens: 0,
                finished: false,
            })
            .collect();
        let mut done: Vec<Node> = Vec::new();
        let mut stop = vec![ctx.splitter.separator().to_string()];
        stop.extend(ctx.stop.iter().cloned());

        'steps: for depth in 0..self.max_steps {
            if live.is_empty() {
                break;
            }
            // 1. expand every live beam (concurrently)
            let per_beam = |n: &Node| {
                if n.steps.is_empty() {
                    self.keep * self.expansions
                } else {
                    self.expansions
                }
            };
            let total: usize = live.iter().map(per_beam).sum();
            let Some(max_tokens) = ledger.allowance(total, ctx.max_step_tokens) else {
                break 'steps;
            };
            let calls = live
                .iter()
                .map(|n| Call {
                    prefix: Self::prefix_text(ctx, &n.steps),
                    n: per_beam(n),
                    max_tokens,
                    temperature: ctx.sampling.temperature,
                    stop: stop.clone(),
                })
                .collect();
            let outs = ledger.generate_many(ctx, calls).await?;
            if outs.iter().all(Vec::is_empty) {
                // the policy answered no sample at all (a gateway's upstream died or its
                // deadline passed): stop, and choose among the beams so far
                ledger.trace.note("stopped: the policy returned no samples");
                break 'steps;
            }
            let mut cands: Vec<Node> = Vec::new();
            for (parent, comps) in live.iter().zip(outs) {
                let mut children = Vec::new();
                for c in &comps {
                    let raw = c.text.trim();
                    let answered = ctx.final_extractor.extract(raw).is_some();
                    let text = if answered {
                        ctx.cut_after_answer(raw)
                    } else {
                        raw.to_string()
                    };
                    let id = next_id;
                    next_id += 1;
                    children.push(id);
                    ledger
                        .trace
                        .tree
                        .push(TreeNode::new(id, Some(parent.id), text.clone()));
                    if text.is_empty() {
                        ledger.trace.push(TraceEvent::Prune {
                            node: id,
                            reason: "empty step".into(),
                        });
                        continue;
                    }
                    let mut steps = parent.steps.clone();
                    steps.push(text);
                    cands.push(Node {
                        id,
                        group: parent.group,
                        steps,
                        scores: parent.scores.clone(),
                        key: 0.0,
                        tokens: parent.tokens + c.generated_tokens,
                        finished: answered || ended(c),
                    });
                }
                ledger.trace.push(TraceEvent::Expand {
                    node: parent.id,
                    children,
                    tokens: comps.iter().map(|c| c.generated_tokens).sum(),
                });
            }
            // 2. score each new step given its prefix (concurrently)
            let problem_ref = ledger.problem;
            let futs = cands.iter().map(|n| {
                let steps = Self::to_steps(&n.steps);
                let scorer = scorer.clone();
                let answer = if n.finished {
                    ctx.extractor
                        .extract(&ctx.splitter.join_texts(&n.steps))
                        .map(|e| e.text)
                } else {
                    None
                };
                async move {
                    let (last, prefix) = steps.split_last().expect("a candidate has a step");
                    scorer
                        .score_step(problem_ref, prefix, last, answer.as_deref())
                        .await
                }
            });
            let scored = futures::future::join_all(futs).await;
            for (n, s) in cands.iter_mut().zip(scored) {
                let s = s.map_err(|e| ledger.score_err(e))?;
                ledger.add_judge(s.spent);
                n.scores.extend(s.scores);
                n.key = self.key(ctx, &n.scores);
                if let Some(t) = ledger.trace.node_mut(n.id) {
                    t.score = Some(n.key);
                }
                ledger.trace.push(TraceEvent::Score {
                    node: n.id,
                    score: n.key,
                    tokens: s.spent.generated_tokens(),
                });
            }
            // 3. optional lookahead for unfinished candidates
            if self.lookahead > 0 {
                self.look_ahead(&mut ledger, ctx, &scorer, &mut cands, &stop)
                    .await?;
            }
            // 4. keep the best per group
            let mut next: Vec<Node> = Vec::new();
            for g in 0..self.groups {
                let mut in_group: Vec<Node> =
                    cands.iter().filter(|n| n.group == g).cloned().collect();
                // stable sort: ties keep candidate order
                in_group.sort_by(|a, b| {
                    b.key
                        .partial_cmp(&a.key)
                        .unwrap_or(std::cmp::Ordering::Equal)
                });
                let finished_before = done.iter().filter(|n| n.group == g).count();
                let mut kept = 0;
                for n in in_group {
                    if n.finished {
                        done.push(n);
                    } else if kept < self.keep && finished_before < self.keep {
                        kept += 1;
                        next.push(n);
                    } else {
                        ledger.trace.push(TraceEvent::Prune {
                            node: n.id,
                            reason: format!("not in the top {}", self.keep),
                        });
                    }
                }
            }
            // groups that already have `keep` finished beams stop
            let full: Vec<usize> = (0..self.groups)
                .filter(|g| done.iter().filter(|n| n.group == *g).count() >= self.keep)
                .collect();
            next.retain(|n| {
                let open = !full.contains(&n.group);
                if !open {
                    ledger.trace.push(TraceEvent::Prune {
                        node: n.id,
                        reason: format!("its beam had {} finished candidates", self.keep),
                    });
                }
                open
            });
            ledger.trace.note(format!(
                "step {}: {} candidates, {} live, {} finished",
                depth + 1,
                cands.len(),
                next.len(),
                done.len()
            ));
            live = next;
        }

        // choose: the best finished beam; live beams when none finished (else the live
        // ones are dropped, as the tree says)
        let pool: Vec<Node> = if done.is_empty() {
            live
        } else {
            for n in &live {
                ledger.trace.push(TraceEvent::Prune {
                    node: n.id,
                    reason: "unfinished at the step limit".into(),
                });
            }
            done
        };
        let samples: Vec<Sample> = pool
            .iter()
            .map(|n| {
                let text = ctx.splitter.join_texts(&n.steps);
                let answer = ctx.extractor.extract(&text).map(|e| e.text);
                Sample {
                    rationale: Rationale {
                        steps: Self::to_steps(&n.steps),
                        answer,
                    },
                    text,
                    scores: n.scores.clone(),
                    score: Some(n.key),
                    tokens: n.tokens,
                    finished: n.finished,
                    ..Sample::default()
                }
            })
            .collect();
        let chosen = argmax(samples.iter().map(|s| s.score.unwrap_or(0.0)));
        let answer = chosen.and_then(|i| samples[i].rationale.answer.clone());
        ledger.trace.push(TraceEvent::Select {
            node: chosen.map_or(0, |i| pool[i].id),
            answer: answer.clone(),
        });
        Ok(ledger.finish(self.name.clone(), answer, chosen, samples))
    }

    async fn look_ahead(
        &self,
        ledger: &mut Ledger<'_>,
        ctx: &Context,
        scorer: &std::sync::Arc<dyn stepwise_score::StepScorer>,
        cands: &mut [Node],
        stop: &[String],
    ) -> Result<(), SearchError> {
        let idx: Vec<usize> = (0..cands.len()).filter(|&i| !cands[i].finished).collect();
        let mut paths: Vec<(Vec<String>, Vec<StepScore>, bool)> = idx
            .iter()
            .map(|&i| (cands[i].steps.clone(), cands[i].scores.clone(), false))
            .collect();
        for _ in 0..self.lookahead {
            let open: Vec<usize> = (0..paths.len()).filter(|&j| !paths[j].2).collect();
            if open.is_empty() {
                break;
            }
            let Some(max_tokens) = ledger.allowance(open.len(), ctx.max_step_tokens) else {
                break;
            };
            let calls = open
                .iter()
                .map(|&j| Call {
                    prefix: Self::prefix_text(ctx, &paths[j].0),
                    n: 1,
                    max_tokens,
                    temperature: 0.0,
                    stop: stop.to_vec(),
                })
                .collect();
            let outs = ledger.generate_many(ctx, calls).await?;
            for (&j, comps) in open.iter().zip(outs) {
                let Some(c) = comps.first() else { continue };
                let text = c.text.trim().to_string();
                if text.is_empty() {
                    paths[j].2 = true;
                    continue;
                }
                let answered = ctx.final_extractor.extract(&text).is_some();
                let steps = Self::to_steps(&paths[j].0);
                let new = Step {
                    index: steps.len(),
                    text: text.clone(),
                };
                let answer = if answered {
                    ctx.final_extractor.extract(&text).map(|e| e.text)
                } else {
                    None
                };
                let s = scorer
                    .score_step(ledger.problem, &steps, &new, answer.as_deref())
                    .await
                    .map_err(|e| ledger.score_err(e))?;
                ledger.add_judge(s.spent);
                paths[j].0.push(text);
                paths[j].1.extend(s.scores);
                paths[j].2 = answered || ended(c);
            }
        }
        for (k, &i) in idx.iter().enumerate() {
            cands[i].key = self.key(ctx, &paths[k].1);
            if let Some(t) = ledger.trace.node_mut(cands[i].id) {
                t.score = Some(cands[i].key);
            }
            ledger.trace.push(TraceEvent::Score {
                node: cands[i].id,
                score: cands[i].key,
                tokens: 0,
            });
        }
        Ok(())
    }
}

#[async_trait]
impl Strategy for BeamSearch {
    fn name(&self) -> String {
        format!(
            "{}(w={},e={},steps={},la={})",
            if self.value_guided { "vbeam" } else { "beam" },
            self.beam_width,
            self.expansions,
            self.max_steps,
            self.lookahead
        )
    }

    async fn solve(
        &self,
        problem: &Problem,
        budget: &Budget,
        ctx: &Context,
    ) -> Result<Outcome, SearchError> {
        TreeSearch {
            groups: 1,
            keep: self.beam_width,
            expansions: self.expansions,
            max_steps: self.max_steps,
            lookahead: self.lookahead,
            value_guided: self.value_guided,
            name: self.name(),
        }
        .run(problem, budget, ctx)
        .await
    }
}

#[async_trait]
impl Strategy for Dvts {
    fn name(&self) -> String {
        format!(
            "dvts(trees={},e={},steps={})",
            self.subtrees, self.expansions, self.max_steps
        )
    }

    async fn solve(
        &self,
        problem: &Problem,
        budget: &Budget,
        ctx: &Context,
    ) -> Result<Outcome, SearchError> {
        TreeSearch {
            groups: self.subtrees,
            keep: 1,
            expansions: self.expansions,
            max_steps: self.max_steps,
            lookahead: 0,
            value_guided: false,
            name: self.name(),
        }
        .run(problem, budget, ctx)
        .await
    }
}
