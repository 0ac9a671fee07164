//! The four methods on the scripted policy, whose rollouts succeed with known
//! probabilities per prefix and whose planted solution has a known first error.

use std::sync::Arc;
use stepwise_annotate::grounded::{GroundedConfig, GroundedRule};
use stepwise_annotate::mc::{McConfig, Solution};
use stepwise_annotate::omega::OmegaConfig;
use stepwise_annotate::policy::{Policy, RolloutParams};
use stepwise_annotate::reference::ReferenceConfig;
use stepwise_annotate::run::{AnnotateConfig, label_question};
use stepwise_annotate::testing::{Planted, ScriptedPolicy};
use stepwise_annotate::{LabelledSolution, Method, QuestionResult, StepLabel, truth};
use stepwise_core::{Problem, Spent};
use stepwise_data::ArithSpec;

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// An arith problem with 6 operations (7 steps with the answer step), error planted at 4.
fn setup(first_error: usize, p_good: f64) -> (Problem, Planted, Arc<ScriptedPolicy>, Policy) {
    let ds = "arith:ops=6,n=1,seed=3".parse().unwrap();
    let p = stepwise_data::load(&ds, &Default::default())
        .unwrap()
        .problems
        .remove(0);
    let planted = Planted::from_problem(&p, Some(first_error), p_good).unwrap();
    assert_eq!(planted.planted.len(), 7);
    let g = Arc::new(ScriptedPolicy::new(vec![planted.clone()]));
    let policy = Policy::new(g.clone(), RolloutParams::default());
    (p, planted, g, policy)
}

fn planted_solution(pl: &Planted) -> Solution {
    Solution {
        sample: 0,
        steps: pl.planted.clone(),
        answer: Some("wrong".into()),
        correct: false,
    }
}

/// Rollouts counted in a solution's labels (mc counts every rollout in its step's label).
fn rollouts_of(labels: &[StepLabel]) -> u64 {
    labels.iter().map(|l| u64::from(l.rollouts)).sum()
}

#[test]
fn planted_error_is_the_ground_truth_first_error() {
    let (p, pl, _, _) = setup(4, 0.5);
    let spec = ArithSpec::from_problem(&p).unwrap();
    assert_eq!(spec.ground_truth(&pl.planted).first_wrong, Some(4));
    assert_eq!(spec.ground_truth(&pl.correct).first_wrong, None);
}

#[test]
fn mc_labels_clean_prefixes_good_and_erroneous_ones_bad() {
    let (p, pl, _, policy) = setup(4, 0.5);
    let (labels, spent) = block_on(stepwise_annotate::mc::label_solution(
        &policy,
        &p,
        &planted_solution(&pl),
        &McConfig { k: 16 },
        7,
    ))
    .unwrap();
    assert_eq!(labels.len(), 7);
    for (i, l) in labels.iter().enumerate() {
        assert_eq!(l.good, i < 4, "step {i}: {l:?}");
        if i < 4 {
            // MC ≈ p_good = 0.5 from a clean prefix
            assert!(l.value > 0.15 && l.value < 0.85, "step {i}: {}", l.value);
        } else {
            assert_eq!(l.value, 0.0);
        }
    }
    // 6 prefixes × 16 rollouts; the answer step is read off the answer itself.
    assert_eq!(rollouts_of(&labels), 96);
    assert_eq!(labels[6].rollouts, 0);
    // Exact token accounting: the scripted policy counts words; rollouts are the policy's.
    let words: u64 = 96; // every rollout text has at least one word
    assert!(spent.policy_tokens >= words);
    assert_eq!(spent.policy_calls, 6);
    assert_eq!((spent.judge_tokens, spent.judge_calls), (0, 0));
}

/// Adaptive mc on the planted solution (7 steps, error at step 4, clean prefixes always
/// continue correctly: p_good = 1), by hand: the last step is bad (its own wrong answer),
/// so bisection runs over prefixes 0..6. Probe 3: clean, the first rollout is correct
/// (1 rollout, 1 call) → good, lo = 4. Probe 5: bad, batches 1 + 2 + 4 + 1 = 8 = max_k
/// (4 calls) → hi = 5. Probe 4: bad, 8 rollouts in 4 calls → hi = 4. First bad = 4;
/// 0..=2 implied good, 6 bad from the answer: 17 rollouts in 9 calls, against mc's 6 × 8.
#[test]
fn adaptive_mc_stops_at_the_first_correct_rollout_and_bisects_by_hand() {
    use stepwise_annotate::adaptive::{AdaptiveConfig, label_solution};
    let (p, pl, g, policy) = setup(4, 1.0);
    let cfg = AdaptiveConfig { max_k: 8 };
    let (labels, spent) =
        block_on(label_solution(&policy, &p, &planted_solution(&pl), &cfg, 7)).unwrap();
    let good: Vec<bool> = labels.iter().map(|l| l.good).collect();
    assert_eq!(good, vec![true, true, true, true, false, false, false]);
    let drawn: Vec<u32> = labels.iter().map(|l| l.rollouts).collect();
    assert_eq!(drawn, vec![0, 0, 0, 1, 8, 8, 0]);
    assert_eq!(labels[3].value, 1.0);
    assert_eq!(labels[4].correct, 0);
    assert!(
        labels[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("implied good")
    );
    assert_eq!(rollouts_of(&labels), 17);
    assert_eq!(spent.policy_calls, 9);
    assert_eq!(g.calls(), 9);
    // the same labels as mc's with k = 8 on this solution
    let (mc, _) = block_on(stepwise_annotate::mc::label_solution(
        &policy,
        &p,
        &planted_solution(&pl),
        &McConfig { k: 8 },
        7,
    ))
    .unwrap();
    assert_eq!(mc.iter().map(|l| l.good).collect::<Vec<_>>(), good);
    assert_eq!(rollouts_of(&mc), 48);
    // a solution whose own answer is right needs no rollout at all
    let right = Solution {
        sample: 1,
        steps: pl.correct.clone(),
        answer: Some(p.gold.clone().unwrap()),
        correct: true,
    };
    let (labels, spent) = block_on(label_solution(&policy, &p, &right, &cfg, 7)).unwrap();
    assert!(labels.iter().all(|l| l.good && l.rollouts == 0));
    assert_eq!(spent.policy_calls, 0);
}

#[test]
fn omegaprm_binary_search_finds_the_planted_error_with_fewer_rollouts_than_mc() {
    for e in [1usize, 3, 4, 5] {
        let (p, pl, _, policy) = setup(e, 0.5);
        let cfg = OmegaConfig {
            k: 16,
            search_limit: 1,
            ..OmegaConfig::default()
        };
        let r = block_on(stepwise_annotate::omega::label(&policy, &p, &cfg, 99)).unwrap();
        assert_eq!(r.solutions.len(), 1, "one search iteration");
        let s = &r.solutions[0];
        assert_eq!(
            s.steps, pl.planted,
            "the searched rollout is the planted solution"
        );
        assert_eq!(s.first_error(), Some(e), "planted error at {e}");
        assert_eq!(
            s.labels.len(),
            e + 1,
            "labelled up to and including the first error"
        );
        // Binary search over 7 steps: at most 3 probes after the root's rollouts.
        assert!(r.rollouts <= 16 + 3 * 16, "{}", r.rollouts);
        let (mc_labels, _) = block_on(stepwise_annotate::mc::label_solution(
            &policy,
            &p,
            &planted_solution(&pl),
            &McConfig { k: 16 },
            99,
        ))
        .unwrap();
        assert!(
            r.rollouts < rollouts_of(&mc_labels),
            "omegaprm {} rollouts vs mc {} for error at {e}",
            r.rollouts,
            rollouts_of(&mc_labels)
        );
        // Every labelled prefix carries its MC value: clean prefixes > 0, erroneous = 0.
        for n in r.prefixes.iter().filter(|n| n.parent.is_some()) {
            let clean = n.steps.len() <= e;
            assert_eq!(
                n.mc > 0.0,
                clean,
                "node of {} steps, mc {}",
                n.steps.len(),
                n.mc
            );
        }
    }
}

#[test]
fn omegaprm_tree_grows_with_the_search_limit_and_is_deterministic() {
    let (p, _, _, policy) = setup(4, 0.5);
    let cfg = OmegaConfig {
        k: 8,
        search_limit: 6,
        ..OmegaConfig::default()
    };
    let a = block_on(stepwise_annotate::omega::label(&policy, &p, &cfg, 5)).unwrap();
    let b = block_on(stepwise_annotate::omega::label(&policy, &p, &cfg, 5)).unwrap();
    assert_eq!(a, b);
    assert!(a.solutions.len() > 1);
    assert!(a.prefixes.len() > 3);
    for s in &a.solutions {
        // every searched rollout's first error is at the planted step (same chain)
        assert_eq!(s.first_error(), Some(4), "{:?}", s.steps);
    }
    // export records: one per non-root node, its last step labelled with its MC
    let recs = stepwise_annotate::export_records(&a, &p.question, p.gold.as_deref());
    assert_eq!(recs.len(), a.prefixes.len() - 1);
    for r in &recs {
        let node = a.prefixes.iter().find(|n| n.node == r.sample).unwrap();
        assert_eq!(r.labels.last().unwrap().value, node.mc);
        assert_eq!(r.steps, node.steps);
    }
}

#[test]
fn root_with_mc_one_or_zero_gives_no_search() {
    for p_good in [0.0, 1.0] {
        let (p, _, _, policy) = setup(4, p_good);
        let r = block_on(stepwise_annotate::omega::label(
            &policy,
            &p,
            &OmegaConfig {
                k: 4,
                root_max_k: 4,
                ..Default::default()
            },
            1,
        ))
        .unwrap();
        assert!(r.solutions.is_empty());
        assert_eq!(r.prefixes.len(), 1);
        assert_eq!(r.rollouts, 4);
        assert_eq!(r.spent.policy_calls, 1);
        // the top-up draws 4, 8, 16 more (28 in 3 calls) and still finds no disagreement
        let r = block_on(stepwise_annotate::omega::label(
            &policy,
            &p,
            &OmegaConfig {
                k: 4,
                root_max_k: 32,
                ..Default::default()
            },
            1,
        ))
        .unwrap();
        assert!(r.solutions.is_empty());
        assert_eq!((r.rollouts, r.spent.policy_calls), (32, 4));
    }
}

/// A root whose first k rollouts all fail (p_good 0.05) gives OmegaPRM nothing to search;
/// the top-up draws more until one succeeds, and the search then runs.
#[test]
fn root_top_up_rescues_a_root_whose_first_rollouts_all_fail() {
    let (p, _, _, policy) = setup(4, 0.05);
    let cfg = |root_max_k| OmegaConfig {
        k: 4,
        root_max_k,
        search_limit: 4,
        ..Default::default()
    };
    // find a seed whose 4 root rollouts all fail (19 in 20 do at p_good 0.05 → most)
    let seed = (0..50u64)
        .find(|&s| {
            block_on(stepwise_annotate::omega::label(&policy, &p, &cfg(4), s))
                .unwrap()
                .solutions
                .is_empty()
        })
        .unwrap();
    let r = block_on(stepwise_annotate::omega::label(
        &policy,
        &p,
        &cfg(256),
        seed,
    ))
    .unwrap();
    let root = &r.prefixes[0];
    assert!(root.rollouts > 4 && root.correct > 0, "{root:?}");
    assert!(!r.solutions.is_empty());
    // prefixes with the planted error have MC = 0, so no label puts the error later; with
    // MC ≈ 0.05 from clean prefixes and k = 4, earlier ones can be labelled bad.
    assert!(
        r.solutions
            .iter()
            .all(|s| s.first_error().is_some_and(|e| e <= 4)),
        "{:?}",
        r.solutions
            .iter()
            .map(|s| s.first_error())
            .collect::<Vec<_>>()
    );
}

#[test]
fn grounded_tool_catches_the_planted_claim_and_rollouts_fill_in() {
    // Weighted rule at p_good 0.5; the paper rule's threshold (u > 0) needs a success
    // rate above 1/4 from a clean prefix, so it is checked where that is clear (0.7).
    for (rule, p_good, n) in [
        (GroundedRule::Weighted, 0.5, 4),
        (GroundedRule::Paper, 0.7, 8),
    ] {
        let (p, pl, _, policy) = setup(3, p_good);
        let cfg = AnnotateConfig {
            samples: n,
            grounded: GroundedConfig {
                k: 8,
                rule,
                ..GroundedConfig::default()
            },
            ..AnnotateConfig::default()
        };
        let r = block_on(label_question(&policy, &p, Method::Grounded, &cfg)).unwrap();
        let planted: Vec<_> = r
            .solutions
            .iter()
            .filter(|s| s.steps == pl.planted)
            .collect();
        let correct: Vec<_> = r
            .solutions
            .iter()
            .filter(|s| s.steps == pl.correct)
            .collect();
        assert_eq!(
            planted.len() + correct.len(),
            n,
            "root samples are planted or correct"
        );
        assert!(
            !planted.is_empty() && !correct.is_empty(),
            "seeded draw gives both kinds ({rule:?})"
        );
        for s in planted {
            if rule == GroundedRule::Weighted {
                assert_eq!(s.first_error(), Some(3), "{rule:?} {:?}", s.labels);
            } else {
                // the tool vetoes step 3; a clean step before it can still tie (V = 0,
                // labelled bad as in the reference code), after which labels stop
                assert!(s.first_error().is_some_and(|f| f <= 3), "{:?}", s.labels);
            }
            if let Some(l) = s.labels.get(3) {
                assert!(!l.good);
                assert!(l.reason.as_deref().unwrap().contains("wrong"), "{l:?}");
            }
        }
        for s in correct {
            if rule == GroundedRule::Weighted {
                assert_eq!(s.first_error(), None, "{rule:?} {:?}", s.labels);
            } else {
                // no tool veto on a correct solution; labels stop after the first run
                // of bad steps (truncate_steps)
                assert!(
                    s.labels
                        .iter()
                        .all(|l| !l.reason.as_deref().unwrap().contains("wrong"))
                );
                if let Some(f) = s.first_error() {
                    assert!(s.labels[f..].iter().all(|l| !l.good), "{:?}", s.labels);
                }
            }
        }
    }
}

#[test]
fn grounded_backprop_over_one_chain_blames_the_clean_prefixes() {
    // The reference code's decay 0.9 is meant for a tree; on one sampled chain every
    // prefix inherits the failure of the single continuation (documented in grounded.rs).
    let (p, pl, _, policy) = setup(3, 0.5);
    let mut first_errors = Vec::new();
    for decay in [0.0, 0.9] {
        let cfg = AnnotateConfig {
            samples: 4,
            grounded: GroundedConfig {
                k: 8,
                backprop_decay: decay,
                ..GroundedConfig::default()
            },
            ..AnnotateConfig::default()
        };
        let r = block_on(label_question(&policy, &p, Method::Grounded, &cfg)).unwrap();
        let planted = r.solutions.iter().find(|s| s.steps == pl.planted).unwrap();
        first_errors.push(planted.first_error());
    }
    assert_eq!(first_errors, vec![Some(3), Some(0)]);
}

#[test]
fn reference_judge_labels_each_step_with_a_reason_in_one_pass() {
    let (p, pl, g, policy) = setup(2, 0.5);
    let mut spent = Spent::default();
    let judged = block_on(stepwise_annotate::reference::label_solution(
        &policy,
        &p,
        &planted_solution(&pl),
        &ReferenceConfig::default(),
        1,
        &mut spent,
    ))
    .unwrap();
    assert_eq!(judged.abstained, 0);
    let labels = judged.labels;
    assert_eq!(g.calls(), 1, "a single judge pass");
    // The judge's tokens go in the judge columns; no rollout was made.
    assert_eq!(spent.judge_calls, 1);
    assert!(spent.judge_tokens > 0);
    assert!(spent.judge_prompt_tokens > 0);
    assert_eq!((spent.policy_calls, spent.policy_tokens), (0, 0));
    assert_eq!(rollouts_of(&labels), 0);
    let good: Vec<bool> = labels.iter().map(|l| l.good).collect();
    assert_eq!(good, vec![true, true, false, false, false, false, false]);
    assert!(labels.iter().all(|l| l.reason.is_some()));
    assert!(
        labels[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("reference step 1")
    );
}

#[test]
fn truth_table_scores_exact_labels_perfectly() {
    let (p, _, _, policy) = setup(4, 0.5);
    let cfg = AnnotateConfig {
        samples: 3,
        mc: McConfig { k: 16 },
        omega: OmegaConfig {
            k: 16,
            search_limit: 2,
            ..OmegaConfig::default()
        },
        ..AnnotateConfig::default()
    };
    let results: Vec<_> = [Method::Mc, Method::OmegaPrm, Method::Reference]
        .into_iter()
        .map(|m| block_on(label_question(&policy, &p, m, &cfg)).unwrap())
        .collect();
    let rows = truth::evaluate(std::slice::from_ref(&p), &results).unwrap();
    assert_eq!(rows.len(), 3);
    for r in &rows {
        assert_eq!(r.first_error_acc, 1.0, "{r:?}");
        assert!(r.f1.is_nan() || r.f1 == 1.0, "{r:?}");
    }
    let mc = rows.iter().find(|r| r.method == Method::Mc).unwrap();
    let om = rows.iter().find(|r| r.method == Method::OmegaPrm).unwrap();
    assert!(
        om.rollouts_per_step < mc.rollouts_per_step,
        "{om:?} vs {mc:?}"
    );
    let md = truth::markdown(&rows);
    assert!(md.contains("| omegaprm |") && md.contains("rollouts / labelled step"));
    // Not an arith problem: a clear error.
    let plain = Problem::new(&p.id, "q").with_gold("1");
    assert!(truth::evaluate(&[plain], &results).is_err());
}

#[test]
fn rpe_uses_mc_rollouts_and_labels_from_the_planted_error_on_bad() {
    let (p, _, _, policy) = setup(3, 0.5);
    let cfg = AnnotateConfig {
        samples: 4,
        mc: McConfig { k: 16 },
        ..AnnotateConfig::default()
    };
    let mc = block_on(label_question(&policy, &p, Method::Mc, &cfg)).unwrap();
    let rpe = block_on(label_question(&policy, &p, Method::Rpe, &cfg)).unwrap();
    assert_eq!(rpe.method, Method::Rpe);
    // the same solutions and rollouts (same seeds): the same cost and MC counts
    assert_eq!(rpe.rollouts, mc.rollouts);
    assert_eq!(rpe.spent, mc.spent);
    let pass1 = mc
        .solutions
        .iter()
        .filter(|s| s.answer_correct == Some(true))
        .count() as f64
        / mc.solutions.len() as f64;
    for (a, b) in mc.solutions.iter().zip(&rpe.solutions) {
        assert_eq!(a.steps, b.steps);
        let counts = |s: &stepwise_annotate::LabelledSolution| {
            s.labels
                .iter()
                .map(|l| (l.rollouts, l.correct))
                .collect::<Vec<_>>()
        };
        assert_eq!(counts(a), counts(b));
        // recomputed here from mc's values with Eq. 10 and 11
        let want = stepwise_annotate::rpe::rpe_labels(pass1, &a.labels, 0.8);
        assert_eq!(b.labels, want);
        // a prefix holding the planted error has MC 0: bad from there on
        if let Some(e) = a.labels.iter().position(|l| l.value == 0.0) {
            assert!(b.labels[e..].iter().all(|l| !l.good && l.value == 0.0));
        }
    }
}

/// A hand-made result: `solutions` as given, each step labelled good (the labels are a
/// method's and must not leak into the truth records).
fn result_of(
    p: &Problem,
    method: Method,
    solutions: &[(&[String], Option<bool>)],
) -> QuestionResult {
    QuestionResult {
        problem_id: p.id.clone(),
        method,
        solutions: solutions
            .iter()
            .enumerate()
            .map(|(i, (steps, correct))| LabelledSolution {
                problem_id: p.id.clone(),
                question: p.question.clone(),
                gold: p.gold.clone(),
                sample: i as u32,
                steps: steps.to_vec(),
                labels: steps
                    .iter()
                    .map(|_| StepLabel {
                        value: 1.0,
                        good: true,
                        rollouts: 0,
                        correct: 0,
                        reason: None,
                    })
                    .collect(),
                answer_correct: *correct,
            })
            .collect(),
        prefixes: vec![],
        spent: Spent::default(),
        rollouts: 0,
        abstained: 0,
    }
}

#[test]
fn truth_records_carry_the_exact_first_error_of_each_distinct_solution() {
    let (p, pl, _, _) = setup(4, 0.5);
    let unfinished: Vec<String> = pl.correct[..3].to_vec();
    let mc = result_of(
        &p,
        Method::Mc,
        &[
            (&pl.planted, Some(false)),
            (&pl.correct, None),
            (&unfinished, Some(false)),
        ],
    );
    // the same planted text again from another method, and OmegaPRM's rollouts: not written
    let reference = result_of(&p, Method::Reference, &[(&pl.planted, Some(false))]);
    let omega = result_of(&p, Method::OmegaPrm, &[(&pl.correct[..5], None)]);
    let recs =
        truth::processbench_records(std::slice::from_ref(&p), &[mc, reference, omega]).unwrap();
    assert_eq!(recs.len(), 2, "{recs:?}");
    let (a, b) = (&recs[0], &recs[1]);
    assert_eq!(a["id"], format!("{}/0", p.id));
    assert_eq!(a["label"], 4); // the planted first error, although every label said good
    assert_eq!(a["steps"].as_array().unwrap().len(), 7); // all steps, past the error too
    assert_eq!(a["final_answer_correct"], false);
    assert_eq!(a["problem"], p.question);
    assert_eq!(b["id"], format!("{}/1", p.id));
    assert_eq!(b["label"], -1);
    // no stored verification: the truth (no wrong step, answer reached) says correct
    assert_eq!(b["final_answer_correct"], true);
    // not an arith problem: a clear error
    let plain = Problem::new(&p.id, "q").with_gold("1");
    let again = result_of(&p, Method::Mc, &[(&pl.planted, None)]);
    assert!(truth::processbench_records(&[plain], &[again]).is_err());
}
