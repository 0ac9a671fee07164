//! `vbeam` (value-guided beam search, OVM) pinned with a trained-head scorer: a head built
//! here whose weight favours one known feature of the scripted model's hidden state, so
//! each test knows exactly which beams survive and what every call costs. Also: a head
//! file behind the `head:PATH` spec serves `vbeam`, `beam` and `bon` alike.

use std::sync::Arc;
use stepwise_core::{Aggregation, Budget, Problem, TraceEvent};
use stepwise_jobs::kinds::scale::ScaleStrategy;
use stepwise_jobs::kinds::solve::SearchSettings;
use stepwise_model::scripted::ScriptedGenerator;
use stepwise_model::{GenerateRequest, Generator};
use stepwise_score::{HeadScorer, PrmHead};
use stepwise_search::jobs::{Backends, configured_strategy};
use stepwise_search::{BeamSearch, Context, Outcome, Strategy};

/// Depth 0: `a0 bad`, `a1 good`, `a2 good good`, `a3`; depth 1 below a2: `a2b0 bad bad
/// bad`, `a2b1`; below a1: `a1b0 good good`, `a1b1 bad`; depth 2: `The answer is 7.`
/// below a1b0, else 8.
fn script(req: &GenerateRequest, i: usize) -> String {
    let p = &req.assistant_prefix;
    match p.matches("\n\n").count() {
        0 => format!(
            "{}\n\nmore",
            ["a0 bad", "a1 good", "a2 good good", "a3"][i % 4]
        ),
        1 => {
            let parent = p.split_whitespace().next().unwrap_or("");
            let t = match parent {
                "a2" => ["a2b0 bad bad bad", "a2b1"][i % 2],
                "a1" => ["a1b0 good good", "a1b1 bad"][i % 2],
                _ => "other",
            };
            format!("{t}\n\nmore")
        }
        _ => format!("The answer is {}.", if p.contains("a1b0") { 7 } else { 8 }),
    }
}

/// The scripted model's hidden state after some text: (good − bad words so far, words).
fn policy() -> Arc<dyn Generator> {
    Arc::new(ScriptedGenerator::new(script).with_embedder(|_, text| {
        let good = text.matches("good").count() as f32;
        let bad = text.matches("bad").count() as f32;
        vec![good - bad, text.split_whitespace().count() as f32]
    }))
}

/// A value head favouring feature 0 (and ignoring the length): `sigmoid(x0)`.
fn head() -> PrmHead {
    PrmHead::logistic(
        "scripted",
        vec![0.0, 0.0],
        vec![1.0, 1.0],
        vec![1.0, 0.0],
        0.0,
    )
}

fn problem() -> Problem {
    Problem::new("p", "What is 3 + 4?").with_gold("7")
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

async fn run(s: &dyn Strategy, aggregation: Aggregation) -> Outcome {
    let g = policy();
    let scorer = HeadScorer::new(g.clone(), Arc::new(head()), false).unwrap();
    let mut c = Context::new(g).with_scorer(Arc::new(scorer));
    c.aggregation = aggregation;
    s.solve(&problem(), &Budget::unlimited(), &c).await.unwrap()
}

fn texts(o: &Outcome, i: usize) -> Vec<String> {
    o.samples[i]
        .rationale
        .steps
        .iter()
        .map(|s| s.text.clone())
        .collect()
}

#[tokio::test]
async fn vbeam_keeps_the_prefixes_the_value_head_ranks_highest() {
    let o = run(&BeamSearch::value_guided(2, 2, 5), Aggregation::Min).await;
    // depth 0 values (good − bad): a0 −1, a1 1, a2 2, a3 0 → a2 and a1 stay;
    // depth 1: a2b0 −1, a2b1 2, a1b0 3, a1b1 0 → a1b0 and a2b1 stay;
    // depth 2: every beam answers; the best finished by value is below a1b0 (3)
    assert_eq!(o.answer.as_deref(), Some("7"));
    let chosen = o.chosen.unwrap();
    assert_eq!(
        texts(&o, chosen),
        vec!["a1 good", "a1b0 good good", "The answer is 7."]
    );
    let sc = o.samples[chosen].score.unwrap();
    assert!((sc - sigmoid(3.0)).abs() < 1e-9, "{sc}");
    let pruned: Vec<String> = o
        .trace
        .events
        .iter()
        .filter(|e| matches!(e, TraceEvent::Prune { .. }))
        .map(|e| format!("{e:?}"))
        .collect();
    assert_eq!(pruned.len(), 4, "{pruned:?}"); // a0, a3, then a2b0, a1b1
    let t = &o.trace.tree;
    // the pruned candidates were never expanded; the kept ones were
    for (step, expanded) in [
        ("a0 bad", false),
        ("a3", false),
        ("a2b0 bad bad bad", false),
        ("a1b1 bad", false),
        ("a1 good", true),
        ("a2 good good", true),
        ("a1b0 good good", true),
        ("a2b1", true),
    ] {
        let n = t.iter().find(|n| n.step == step).unwrap();
        assert_eq!(t.iter().any(|c| c.parent == Some(n.id)), expanded, "{step}");
    }
    assert_eq!(o.samples.len(), 4);
    // policy: calls root (n=4) + 2 beams + 2 beams; tokens 8 + 10 + 4×4 words
    assert_eq!(o.spent.policy_calls, 5);
    assert_eq!(o.spent.policy_tokens, 34);
    // the head reads every candidate once (12 calls) and generates nothing; it reads the
    // question (5 words) and the steps through the candidate: 28 + 40 + 54
    assert_eq!(o.spent.judge_calls, 12);
    assert_eq!(o.spent.judge_tokens, 0);
    assert_eq!(o.spent.judge_prompt_tokens, 122);
}

#[tokio::test]
async fn beam_by_the_weakest_step_picks_otherwise() {
    // the same beams survive, but min-aggregated beam prefers the path whose weakest
    // prefix is best: a2 → a2b1 (σ(2) throughout) over a1 → a1b0 (σ(1) first)
    let o = run(&BeamSearch::new(2, 2, 5), Aggregation::Min).await;
    assert_eq!(o.answer.as_deref(), Some("8"));
    assert_eq!(
        texts(&o, o.chosen.unwrap()),
        vec!["a2 good good", "a2b1", "The answer is 8."]
    );
    assert_eq!(o.spent.policy_tokens, 34);
    assert_eq!(o.spent.judge_calls, 12);
}

#[tokio::test]
async fn a_head_file_serves_vbeam_beam_and_bon_through_its_spec() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ovm.json");
    head().save(&path).unwrap();
    let settings = SearchSettings {
        scorer: Some(format!("head:{}", path.display())),
        aggregation: Aggregation::Last,
        expansions: 2,
        max_steps: 5,
        ..SearchSettings::default()
    };
    let backends = Backends {
        policy: policy(),
        judge: None,
        prm: Default::default(),
    };
    let ctx = Context::from_settings(&settings, &backends).unwrap();
    assert_eq!(
        ctx.scorer.as_ref().map(|s| s.name()).as_deref(),
        Some("head")
    );
    for strategy in [
        ScaleStrategy::Vbeam,
        ScaleStrategy::Beam,
        ScaleStrategy::Bon,
    ] {
        let s = configured_strategy(strategy, 4, &settings);
        let o = s
            .solve(&problem(), &Budget::unlimited(), &ctx)
            .await
            .unwrap();
        assert!(o.spent.judge_calls > 0, "{strategy:?}");
        assert!(o.samples.iter().any(|s| s.score.is_some()), "{strategy:?}");
    }
}
