//! Strategy logic pinned on a scripted generator and a scripted scorer.
//!
//! The scripted policy writes steps whose text carries the score the scripted scorer
//! will give them (`v=0.9`), so each test knows exactly which beams must survive.

use async_trait::async_trait;
use std::sync::Arc;
use stepwise_core::{Aggregation, Budget, Problem, Spent, Step, StepScore, TraceEvent};
use stepwise_model::GenerateRequest;
use stepwise_model::scripted::ScriptedGenerator;
use stepwise_score::{ScoreError, Scored, StepScorer};
use stepwise_search::{BeamSearch, Context, Dvts, Mcts, Outcome, Strategy};

/// Scores a step by the `v=0.X` it carries; a final step scores 1.0 when it answers 7,
/// else 0.6. Each call costs 1 judge token and 1 judge call.
struct TagScorer;

#[async_trait]
impl StepScorer for TagScorer {
    fn name(&self) -> String {
        "tag".into()
    }
    async fn score_step(
        &self,
        _p: &Problem,
        prefix: &[Step],
        step: &Step,
        answer: Option<&str>,
    ) -> Result<Scored, ScoreError> {
        let v = match step.text.split("v=").nth(1) {
            Some(x) => x.trim().parse::<f64>().unwrap(),
            None if answer == Some("7") => 1.0,
            None => 0.6,
        };
        Ok(Scored {
            scores: vec![StepScore::new(prefix.len(), v, "tag")],
            spent: Spent {
                judge_tokens: 1,
                judge_calls: 1,
                ..Spent::default()
            },
        })
    }
}

/// Depth 0: `a{i} v=…` with scores [.2, .9, .5, .9]; depth 1: children of a1 score
/// [.3, .4], of a3 [.8, .1], others .5; depth 2: `The answer is 7.` below a3b0, else 8.
fn script(req: &GenerateRequest, i: usize) -> String {
    let p = &req.assistant_prefix;
    let depth = p.matches("\n\n").count();
    match depth {
        0 => format!("a{i} v=0.{}\n\nmore", [2, 9, 5, 9][i % 4]),
        1 => {
            let parent = p.split_whitespace().next().unwrap();
            let v = match parent {
                "a1" => [3, 4][i % 2],
                "a3" => [8, 1][i % 2],
                _ => 5,
            };
            format!("{parent}b{i} v=0.{v}\n\nmore")
        }
        _ => format!("The answer is {}.", if p.contains("a3b0") { 7 } else { 8 }),
    }
}

fn ctx() -> (Arc<ScriptedGenerator>, Context) {
    let g = Arc::new(ScriptedGenerator::new(script));
    let mut c = Context::new(g.clone()).with_scorer(Arc::new(TagScorer));
    c.aggregation = Aggregation::Last;
    (g, c)
}

fn problem() -> Problem {
    Problem::new("p", "What is 3 + 4?").with_gold("7")
}

async fn solve(s: &dyn Strategy, budget: Budget) -> Outcome {
    let (_, c) = ctx();
    s.solve(&problem(), &budget, &c).await.unwrap()
}

fn pruned(o: &Outcome) -> usize {
    o.trace
        .events
        .iter()
        .filter(|e| matches!(e, TraceEvent::Prune { .. }))
        .count()
}

#[tokio::test]
async fn beam_keeps_the_top_k_and_accounts_exactly() {
    let o = solve(&BeamSearch::new(2, 2, 5), Budget::unlimited()).await;
    assert_eq!(o.answer.as_deref(), Some("7"));
    let chosen = o.chosen_sample().unwrap();
    assert_eq!(chosen.rationale.steps[0].text, "a3 v=0.9");
    assert_eq!(chosen.rationale.steps[1].text, "a3b0 v=0.8");
    // depth 0 drops a0, a2; depth 1 drops a1b0, a3b1
    assert_eq!(pruned(&o), 4);
    // 4 finished beams: two under a3b0 (score 1), two under a1b1 (0.6)
    assert_eq!(o.samples.len(), 4);
    assert_eq!(o.samples.iter().filter(|s| s.score == Some(1.0)).count(), 2);
    // calls: root (n=4), 2 beams (n=2), 2 beams (n=2)
    assert_eq!(o.spent.policy_calls, 5);
    // tokens: 4x2 + 4x2 + 4x4 words
    assert_eq!(o.spent.policy_tokens, 32);
    // every candidate is scored once: 4 + 4 + 4
    assert_eq!(o.spent.judge_calls, 12);
    assert_eq!(o.spent.judge_tokens, 12);
    assert_eq!(o.spent.generated_tokens(), 44);
    assert_eq!(o.trace.spent, o.spent);
    // the chosen beam's own tokens: 2 + 2 + 4
    assert_eq!(chosen.tokens, 8);
}

#[tokio::test]
async fn beam_ties_are_deterministic() {
    // width 1: a1 and a3 tie at .9; the earlier candidate (a1) is kept
    let o = solve(&BeamSearch::new(1, 4, 5), Budget::unlimited()).await;
    let s = o.chosen_sample().unwrap();
    assert_eq!(s.rationale.steps[0].text, "a1 v=0.9");
    let again = solve(&BeamSearch::new(1, 4, 5), Budget::unlimited()).await;
    assert_eq!(o.answer, again.answer);
    assert_eq!(o.samples, again.samples);
}

#[tokio::test]
async fn aggregation_changes_the_ranking() {
    // Under min, a path is as good as its weakest step; under last only the newest counts.
    let (_, mut c) = ctx();
    c.aggregation = Aggregation::Min;
    let o = BeamSearch::new(1, 4, 5)
        .solve(&problem(), &Budget::unlimited(), &c)
        .await
        .unwrap();
    // width 1 keeps a1 (tie at .9, earlier); its best child is a1b1 (.4)
    assert_eq!(
        o.chosen_sample().unwrap().rationale.steps[1].text,
        "a1b1 v=0.4"
    );
    assert_eq!(o.answer.as_deref(), Some("8"));
}

#[tokio::test]
async fn beam_stops_at_the_budget() {
    // 10 tokens: the root call may give each of 4 candidates 2 tokens; scoring costs 4
    // judge tokens, so nothing is left for a second step.
    let o = solve(&BeamSearch::new(2, 2, 5), Budget::tokens(10)).await;
    assert_eq!(o.spent.policy_calls, 1);
    assert_eq!(o.spent.policy_tokens, 8);
    assert_eq!(o.spent.judge_tokens, 4);
    assert!(o.samples.iter().all(|s| !s.finished));
    assert!(
        o.trace
            .events
            .iter()
            .any(|e| matches!(e, TraceEvent::Note { message } if message.contains("stopped")))
    );
}

#[tokio::test]
async fn beam_without_scorer_is_an_error() {
    let g = Arc::new(ScriptedGenerator::new(script));
    let c = Context::new(g);
    assert!(
        BeamSearch::new(1, 1, 1)
            .solve(&problem(), &Budget::unlimited(), &c)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn lookahead_counts_its_tokens() {
    let mut b = BeamSearch::new(2, 2, 5);
    b.lookahead = 1;
    let o = solve(&b, Budget::unlimited()).await;
    // lookahead adds one greedy step per unfinished candidate at depths 0 and 1 (4 + 4)
    assert_eq!(o.spent.policy_calls, 5 + 8);
    assert!(o.spent.judge_calls > 12);
    assert_eq!(o.answer.as_deref(), Some("7"));
}

#[tokio::test]
async fn dvts_keeps_one_per_subtree() {
    let o = solve(
        &Dvts {
            subtrees: 2,
            expansions: 2,
            max_steps: 5,
        },
        Budget::unlimited(),
    )
    .await;
    // each subtree sees a0 (.2) and a1 (.9) and keeps a1; a1's children are a1b0 (.3) and
    // a1b1 (.4), so both subtrees end below a1b1 and answer 8.
    assert_eq!(o.answer.as_deref(), Some("8"));
    assert!(
        o.samples
            .iter()
            .all(|s| s.rationale.steps[1].text == "a1b1 v=0.4")
    );
    // per subtree: 3 calls of 2
    assert_eq!(o.spent.policy_calls, 6);
    assert_eq!(o.spent.policy_tokens, 2 * (2 * 2 + 2 * 2 + 2 * 4));
    assert_eq!(o.spent.judge_calls, 12);
}

#[tokio::test]
async fn mcts_follows_puct_and_picks_the_best_leaf() {
    let m = Mcts {
        simulations: 3,
        expansions: 2,
        max_steps: 5,
        c_puct: 1.5,
    };
    let o = solve(&m, Budget::unlimited()).await;
    // sim 1 expands the root (a0 .2, a1 .9); sim 2 expands a1 (a1b0 .3, a1b1 .4);
    // sim 3 prefers a1b1 and expands it into two finished answers (8, score .6).
    assert_eq!(o.spent.policy_calls, 3);
    assert_eq!(o.spent.policy_tokens, 2 * 2 + 2 * 2 + 2 * 4);
    assert_eq!(o.spent.judge_calls, 6);
    assert_eq!(o.samples.len(), 2);
    assert_eq!(o.answer.as_deref(), Some("8"));
    let expands: Vec<usize> = o
        .trace
        .events
        .iter()
        .filter_map(|e| match e {
            TraceEvent::Expand { node, .. } => Some(*node),
            _ => None,
        })
        .collect();
    // node ids: root 0; a0 1, a1 2; a1b0 3, a1b1 4
    assert_eq!(expands, [0, 2, 4]);
    // more simulations find the a3 branch? No: a3 never exists with 2 expansions; the
    // search is deterministic
    let again = solve(&m, Budget::unlimited()).await;
    assert_eq!(again.samples, o.samples);
}

/// The steps from the root to `id` of the stored tree.
fn tree_path(o: &Outcome, id: usize) -> Vec<String> {
    o.trace
        .path_to(id)
        .into_iter()
        .filter_map(|i| o.trace.tree.iter().find(|n| n.id == i))
        .filter(|n| n.parent.is_some())
        .map(|n| n.step.clone())
        .collect()
}

fn selected(o: &Outcome) -> usize {
    o.trace
        .events
        .iter()
        .find_map(|e| match e {
            TraceEvent::Select { node, .. } => Some(*node),
            _ => None,
        })
        .unwrap()
}

#[tokio::test]
async fn beam_stores_the_tree_it_built() {
    let o = solve(&BeamSearch::new(2, 2, 5), Budget::unlimited()).await;
    let t = &o.trace.tree;
    // root + 4 at depth 0 + 2 beams x 2 + 2 beams x 2
    assert_eq!(t.len(), 13);
    assert_eq!(t[0].parent, None);
    // every Expand's children are nodes whose parent is the expanded node
    for e in &o.trace.events {
        if let TraceEvent::Expand { node, children, .. } = e {
            for c in children {
                assert_eq!(t[*c].parent, Some(*node), "node {c}");
            }
        }
    }
    // node scores are the Score events' (the ranking keys): a1 and a3 scored .9
    assert_eq!(t[2].step, "a1 v=0.9");
    assert_eq!(t[2].score, Some(0.9));
    assert_eq!(t[4].score, Some(0.9));
    assert!(t.iter().all(|n| n.visits.is_none()));
    // the selected node's path is the chosen sample's steps
    let chosen = o.chosen_sample().unwrap();
    let steps: Vec<String> = chosen
        .rationale
        .steps
        .iter()
        .map(|s| s.text.clone())
        .collect();
    assert_eq!(tree_path(&o, selected(&o)), steps);
}

#[tokio::test]
async fn mcts_stores_visits_and_values() {
    let m = Mcts {
        simulations: 3,
        expansions: 2,
        max_steps: 5,
        c_puct: 1.5,
    };
    let o = solve(&m, Budget::unlimited()).await;
    let t = &o.trace.tree;
    // root 0; a0 1, a1 2; a1b0 3, a1b1 4; two answers below a1b1: 5, 6
    assert_eq!(t.len(), 7);
    assert_eq!(t[4].step, "a1b1 v=0.4");
    assert_eq!(t[5].parent, Some(4));
    // the root is visited once per evaluated node: 2 + 2 + 2
    assert_eq!(t[0].visits, Some(6));
    // a1 (node 2) backed up itself (.9), its children (.3, .4) and the answers (.6, .6)
    assert_eq!(t[2].visits, Some(5));
    let v = t[2].value.unwrap();
    assert!(
        (v - (0.9 + 0.3 + 0.4 + 0.6 + 0.6) / 5.0).abs() < 1e-12,
        "{v}"
    );
    assert_eq!(t[1].visits, Some(1));
    let chosen = o.chosen_sample().unwrap();
    let steps: Vec<String> = chosen
        .rationale
        .steps
        .iter()
        .map(|s| s.text.clone())
        .collect();
    assert_eq!(tree_path(&o, selected(&o)), steps);
}

/// Every leaf of a stored tree is either pruned (with a reason) or the end of one of the
/// outcome's samples: the tree tells what became of every candidate.
fn every_leaf_is_pruned_or_a_sample(o: &Outcome) {
    let t = &o.trace.tree;
    let pruned: std::collections::HashSet<usize> = o
        .trace
        .events
        .iter()
        .filter_map(|e| match e {
            TraceEvent::Prune { node, .. } => Some(*node),
            _ => None,
        })
        .collect();
    let samples: Vec<Vec<String>> = o
        .samples
        .iter()
        .map(|s| s.rationale.steps.iter().map(|s| s.text.clone()).collect())
        .collect();
    for n in t.iter().filter(|n| n.parent.is_some()) {
        if t.iter().any(|c| c.parent == Some(n.id)) {
            continue;
        }
        assert!(
            pruned.contains(&n.id) || samples.contains(&tree_path(o, n.id)),
            "leaf {} ({:?}) is neither pruned nor a sample",
            n.id,
            n.step
        );
    }
}

#[tokio::test]
async fn beam_marks_pruned_the_candidates_a_full_beam_drops() {
    // depth 0: candidates 0 and 1 answer at once, 2 and 3 go on; with a beam of 2 the
    // two answers fill it, so 2 and 3 are dropped after the first step
    let g = Arc::new(ScriptedGenerator::new(|req: &GenerateRequest, i: usize| {
        if req.assistant_prefix.is_empty() && i < 2 {
            "The answer is 7.".to_string()
        } else if req.assistant_prefix.is_empty() {
            format!("a{i} v=0.5\n\nmore")
        } else {
            "The answer is 8.".to_string()
        }
    }));
    let mut c = Context::new(g).with_scorer(Arc::new(TagScorer));
    c.aggregation = Aggregation::Last;
    let o = BeamSearch::new(2, 2, 5)
        .solve(&problem(), &Budget::unlimited(), &c)
        .await
        .unwrap();
    assert_eq!(o.trace.tree.len(), 5, "one expansion only");
    let reasons: Vec<(usize, String)> = o
        .trace
        .events
        .iter()
        .filter_map(|e| match e {
            TraceEvent::Prune { node, reason } => Some((*node, reason.clone())),
            _ => None,
        })
        .collect();
    let full = "its beam had 2 finished candidates".to_string();
    assert_eq!(reasons, [(3, full.clone()), (4, full)]);
    every_leaf_is_pruned_or_a_sample(&o);
}

#[tokio::test]
async fn beam_and_dvts_trees_account_for_every_leaf() {
    every_leaf_is_pruned_or_a_sample(&solve(&BeamSearch::new(2, 2, 5), Budget::unlimited()).await);
    every_leaf_is_pruned_or_a_sample(&solve(&BeamSearch::new(2, 2, 2), Budget::unlimited()).await);
    every_leaf_is_pruned_or_a_sample(&solve(&Dvts::for_n(4, 2, 5), Budget::unlimited()).await);
}
