//! The simulated policy's error statistics match its knobs: over many seeded samples
//! drawn through the real rollout path (`Policy::rollouts`), the first error found by the
//! `arith` ground truth is geometric in its position, accuracy is `(1 − p)^k`, and a
//! continuation of a clean prefix of `t` steps succeeds with probability `(1 − p)^(k − t)`.

use std::sync::Arc;
use stepwise_annotate::policy::{Policy, RolloutParams};
use stepwise_annotate::sim::{SimConfig, SimPolicy};
use stepwise_core::{Problem, Spent};
use stepwise_data::ArithSpec;
use stepwise_model::{GenerateRequest, Generator, Prompt, SamplingParams};

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn problems(ops: usize, n: usize) -> Vec<Problem> {
    let ds = format!("arith:ops={ops},n={n},seed=11").parse().unwrap();
    stepwise_data::load(&ds, &Default::default())
        .unwrap()
        .problems
}

/// First-error histogram (index k = no error) and accuracy over `per` samples of each problem.
fn stats(cfg: SimConfig, ops: usize, per: usize) -> (Vec<f64>, f64, u64) {
    let ps = problems(ops, 20);
    let g = Arc::new(SimPolicy::new(cfg, &ps).unwrap());
    let policy = Policy::new(g.clone(), RolloutParams::default());
    let mut hist = vec![0u64; ops + 1];
    let mut correct = 0u64;
    let mut total = 0u64;
    block_on(async {
        for (i, p) in ps.iter().enumerate() {
            let spec = ArithSpec::from_problem(p).unwrap();
            let mut spent = Spent::default();
            let rs = policy
                .rollouts(p, &[], per, 1000 + i as u64, &mut spent)
                .await
                .unwrap();
            assert_eq!(rs.len(), per);
            for r in rs {
                assert_eq!(r.steps.len(), ops + 1, "{:?}", r.steps);
                let truth = spec.ground_truth(&r.steps);
                hist[truth.first_wrong.unwrap_or(ops)] += 1;
                // right answer iff no step is wrong (errors are carried to the end)
                assert_eq!(r.correct, truth.first_wrong.is_none(), "{:?}", r.steps);
                correct += u64::from(r.correct);
                total += 1;
            }
        }
    });
    let freq = hist.iter().map(|&h| h as f64 / total as f64).collect();
    (freq, correct as f64 / total as f64, total)
}

#[test]
fn first_error_positions_and_accuracy_match_the_error_rate() {
    for (p, ops) in [(0.1, 8), (0.3, 6)] {
        let cfg = SimConfig {
            p,
            ..SimConfig::default()
        };
        let (freq, acc, n) = stats(cfg, ops, 500);
        let sd = |q: f64| (q * (1.0 - q) / n as f64).sqrt();
        let want_acc = (1.0f64 - p).powi(ops as i32);
        assert!(
            (acc - want_acc).abs() < 4.0 * sd(want_acc),
            "p={p}: accuracy {acc} vs {want_acc}"
        );
        for (i, f) in freq.iter().enumerate().take(ops) {
            let want = (1.0f64 - p).powi(i as i32) * p;
            assert!(
                (f - want).abs() < 4.0 * sd(want),
                "p={p}: first error at {i}: {f} vs {want}"
            );
        }
    }
}

#[test]
fn continuations_of_a_clean_prefix_succeed_at_its_true_mc() {
    let p = 0.2;
    let ops = 6;
    let cfg = SimConfig {
        p,
        ..SimConfig::default()
    };
    let ps = problems(ops, 5);
    let clean = SimPolicy::new(SimConfig { p: 0.0, ..cfg }, &ps).unwrap();
    let g = Arc::new(SimPolicy::new(cfg, &ps).unwrap());
    let policy = Policy::new(g, RolloutParams::default());
    block_on(async {
        // the correct solution of each problem, from the noiseless simulation
        let policy0 = Policy::new(Arc::new(clean), RolloutParams::default());
        let t = 2;
        let mut ok = 0usize;
        let per = 2000;
        for (i, prob) in ps.iter().enumerate() {
            let mut spent = Spent::default();
            let sol = policy0
                .rollouts(prob, &[], 1, i as u64, &mut spent)
                .await
                .unwrap()
                .remove(0);
            assert!(sol.correct);
            let rs = policy
                .rollouts(prob, &sol.steps[..t], per, 77 + i as u64, &mut spent)
                .await
                .unwrap();
            ok += rs.iter().filter(|r| r.correct).count();
            // a prefix with an error never recovers
            let mut wrong = sol.steps[..t].to_vec();
            let (lhs, v) = wrong[t - 1].rsplit_once("= ").unwrap();
            wrong[t - 1] = format!("{lhs}= {}", v.parse::<i64>().unwrap() + 1);
            let rs = policy
                .rollouts(prob, &wrong, 50, 5, &mut spent)
                .await
                .unwrap();
            assert!(rs.iter().all(|r| !r.correct), "{:?}", rs[0].steps);
        }
        let n = (per * ps.len()) as f64;
        let mc = ok as f64 / n;
        let want = (1.0f64 - p).powi((ops - t) as i32);
        let sd = (want * (1.0 - want) / n).sqrt();
        assert!((mc - want).abs() < 4.0 * sd, "MC {mc} vs {want}");
    });
}

#[test]
fn samples_are_deterministic_per_seed_and_named_a_simulation() {
    let ps = problems(7, 3);
    let g = SimPolicy::new(SimConfig::default(), &ps).unwrap();
    assert!(g.name().starts_with("sim-arith(p=0.1"), "{}", g.name());
    assert!(g.reproducible());
    let req = |n: usize, seed: u64| GenerateRequest {
        prompt: Prompt::Text(format!("Q: {}", ps[1].question)),
        assistant_prefix: String::new(),
        params: SamplingParams {
            n,
            seed,
            ..SamplingParams::default()
        },
    };
    block_on(async {
        let a = g.generate(&req(8, 5)).await.unwrap();
        let b = g.generate(&req(3, 5)).await.unwrap();
        // sample i depends on (seed, i) only, not on how many were asked for
        for i in 0..3 {
            assert_eq!(a[i].text, b[i].text);
        }
        let c = g.generate(&req(8, 6)).await.unwrap();
        assert_ne!(
            a.iter().map(|c| &c.text).collect::<Vec<_>>(),
            c.iter().map(|c| &c.text).collect::<Vec<_>>()
        );
        // a prompt about no registered problem is an error, not a made-up answer
        let mut other = req(1, 1);
        other.prompt = Prompt::Text("What is 1 + 1?".into());
        assert!(g.generate(&other).await.is_err());
    });
}

#[test]
fn operand_misreads_pass_the_arithmetic_checker_and_slips_do_not() {
    let ps = problems(5, 10);
    let checker = stepwise_score::ArithScorer::default();
    for (share, want_caught) in [(0.0, true), (1.0, false)] {
        let cfg = SimConfig {
            p: 1.0,
            operand_errors: share,
            judge_noise: 0.0,
        };
        for (i, p) in ps.iter().enumerate() {
            let spec = ArithSpec::from_problem(p).unwrap();
            let c = stepwise_annotate::sim::continue_from(&cfg, &spec, &[] as &[&str], i as u64);
            assert_eq!(spec.ground_truth(&c.steps).first_wrong, Some(0));
            let (score, _) = checker.score_text(&c.steps[0]);
            assert_eq!(score < 1.0, want_caught, "{}", c.steps[0]);
        }
    }
}
