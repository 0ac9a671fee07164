//! Running real scorers and a scripted critic over hand-made ProcessBench records, as a
//! job of the job runner.

use std::sync::Arc;
use stepwise_eval::pbrun::{PbConfig, PbItem, PbJob, PbMode, run};
use stepwise_eval::processbench::{PbRecord, Prediction, evaluate};
use stepwise_jobs::{RunOptions, RunStatus, RunStore, Stop};
use stepwise_model::scripted::ScriptedGenerator;
use stepwise_score::ArithScorer;
use stepwise_store::SqliteStore;

fn item(subset: &str, id: &str, steps: &[&str], label: i64) -> PbItem {
    PbItem {
        subset: subset.into(),
        record: PbRecord {
            id: id.into(),
            generator: "hand".into(),
            problem: "What is 2 + 3, doubled?".into(),
            steps: steps.iter().map(|s| s.to_string()).collect(),
            final_answer_correct: label < 0,
            label,
            problem_id: None,
        },
    }
}

fn items() -> Vec<PbItem> {
    vec![
        item(
            "gsm8k",
            "g0",
            &["2 + 3 = 5", "5 * 2 = 10", "The answer is 10."],
            -1,
        ),
        item(
            "gsm8k",
            "g1",
            &["2 + 3 = 6", "6 * 2 = 12", "The answer is 12."],
            0,
        ),
        item(
            "gsm8k",
            "g2",
            &["2 + 3 = 5", "5 * 2 = 11", "The answer is 11."],
            1,
        ),
        item(
            "math",
            "m0",
            &["We add first.", "2 + 3 = 5 and 5 * 2 = 10"],
            -1,
        ),
    ]
}

fn job(mode: PbMode) -> PbJob {
    let config = PbConfig {
        subsets: vec!["gsm8k".into(), "math".into()],
        limit: None,
        balanced: false,
        spec: "test".into(),
        mode: mode.name(),
        critic_max_tokens: 16,
        data: None,
    };
    PbJob::new(config, items(), mode)
}

fn opts(concurrency: usize) -> RunOptions {
    RunOptions {
        concurrency,
        stop: Stop::Never,
        ..RunOptions::default()
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn arith_checker_finds_wrong_arithmetic() {
    let mode = PbMode::Scorer(Arc::new(ArithScorer::default()));
    let store = SqliteStore::in_memory().unwrap();
    let (report, got) = rt().block_on(run(&store, &job(mode), &opts(2))).unwrap();
    assert_eq!((report.total, report.done_now), (4, 4));
    // the store holds one unit per record, with its step scores as rows
    let units = store.units(report.run).unwrap();
    assert_eq!(units.len(), 4);
    assert_eq!(
        units
            .iter()
            .map(|u| u.unit.step_scores.len())
            .sum::<usize>(),
        3 + 3 + 3 + 2
    );
    // in input order, one score per step, steps kept for the report
    assert_eq!(
        got.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["g0", "g1", "g2", "m0"]
    );
    assert_eq!(got[1].scores.len(), 3);
    assert_eq!(got[1].steps[0], "2 + 3 = 6");
    assert!(got[1].scores[0] < 0.5, "{:?}", got[1].scores);
    assert!(
        got[2].scores[1] < 0.5 && got[2].scores[0] == 1.0,
        "{:?}",
        got[2].scores
    );
    assert_eq!(got[0].generated_tokens, 0);
    let rep = evaluate(&got, None).unwrap();
    // the tuned threshold separates "wrong claim" from "right or no claim" on gsm8k
    assert_eq!(rep.subsets[0].f1, Some(1.0), "{rep:?}");
    // math: "We add first." has no claim (0.5) but the threshold is above 0.5 only if
    // needed; whatever it is, the report says which and the F1 is defined only with both classes
    assert_eq!(rep.subsets[1].n_erroneous, 0);
    assert_eq!(rep.subsets[1].f1, None);
}

#[test]
fn critic_mode_reads_boxed_indices() {
    // The critic flags paragraph 0 when the text says "= 6", paragraph 1 for "= 11",
    // says -1 otherwise, and rambles without a box for m0.
    let g = ScriptedGenerator::new(|req, _| {
        let p = format!("{:?}", req.prompt);
        if p.contains("2 + 3 = 6") {
            "The first paragraph is wrong. \\boxed{0}".into()
        } else if p.contains("= 11") {
            "\\boxed{1}".into()
        } else if p.contains("We add first") {
            "I am not sure.".into()
        } else {
            "All fine: \\boxed{-1}".into()
        }
    });
    let mode = PbMode::Critic {
        generator: Arc::new(g),
        params: Default::default(),
    };
    let store = SqliteStore::in_memory().unwrap();
    let (_, got) = rt().block_on(run(&store, &job(mode), &opts(1))).unwrap();
    assert_eq!(got[0].critic, Some(Prediction::Index(-1)));
    assert_eq!(got[1].critic, Some(Prediction::Index(0)));
    assert_eq!(got[2].critic, Some(Prediction::Index(1)));
    assert_eq!(got[3].critic, Some(Prediction::Unparseable));
    assert!(got[1].generated_tokens > 0);
    let rep = evaluate(&got, Some(0.5)).unwrap(); // a threshold is ignored in critic mode
    assert_eq!(rep.subsets[0].f1, Some(1.0));
    assert_eq!(rep.subsets[1].unparseable, 1);
    assert_eq!(rep.subsets[1].acc_correct, Some(0.0));
}

/// A scorer whose server "dies" on problem g2: every other record scores 1 per step.
struct DiesOnG2;

#[async_trait::async_trait]
impl stepwise_score::StepScorer for DiesOnG2 {
    fn name(&self) -> String {
        "dies-on-g2".into()
    }

    async fn score_step(
        &self,
        problem: &stepwise_core::Problem,
        _prefix: &[stepwise_core::Step],
        step: &stepwise_core::Step,
        _answer: Option<&str>,
    ) -> Result<stepwise_score::Scored, stepwise_score::ScoreError> {
        if problem.id == "g2" {
            return Err(stepwise_score::ScoreError::Unusable {
                scorer: self.name(),
                reason: "server at 127.0.0.1:9 refused the connection".into(),
            });
        }
        Ok(stepwise_score::Scored {
            scores: vec![stepwise_core::StepScore::new(step.index, 1.0, self.name())],
            ..Default::default()
        })
    }
}

#[test]
fn a_failing_scorer_fails_the_run_with_its_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("runs.sqlite")).unwrap();
    let e = rt()
        .block_on(run(
            &store,
            &job(PbMode::Scorer(Arc::new(DiesOnG2))),
            &opts(1),
        ))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("failed at unit 'gsm8k/g2'") && e.contains("refused"),
        "{e}"
    );
    let info = store.list_runs().unwrap().pop().unwrap();
    assert_eq!((info.status, info.units), (RunStatus::Failed, 2));
    assert!(info.error.unwrap().contains("gsm8k/g2"));
}
