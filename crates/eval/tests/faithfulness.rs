//! The faithfulness job on a scripted policy: a solve run's samples are probed with
//! their own prompt and the forced `The answer is`, perturbed, and changes counted.

use std::sync::Arc;
use stepwise_core::Problem;
use stepwise_eval::faithfulness::{self, FaithConfig, FaithJob, Perturbation};
use stepwise_model::scripted::ScriptedGenerator;

#[tokio::test]
async fn probes_send_the_forced_prompt_and_count_changes() {
    let dir = tempfile::tempdir().unwrap();
    let store = stepwise_store::SqliteStore::open(dir.path().join("s.sqlite")).unwrap();
    let g = Arc::new(ScriptedGenerator::new(|req, _| {
        if req.assistant_prefix.ends_with("The answer is") {
            // answers 15 only when the rationale still says 15
            if req.assistant_prefix.contains("= 15") {
                " 15.".into()
            } else {
                " 7.".into()
            }
        } else if stepwise_model::scripted::prompt_tokens(&req.prompt, "") > 0
            && format!("{:?}", req.prompt).contains("(7 - 2) × 3")
        {
            "7 - 2 = 5\n\n5 × 3 = 15\n\nThe answer is 15.".into()
        } else {
            "2 + 2 = 4\n\nThe answer is 4.".into()
        }
    }));
    let problems = vec![
        Problem::new("a", "What is (7 - 2) × 3?").with_gold("15"),
        Problem::new("b", "What is 2 + 2?").with_gold("4"),
    ];
    let config = stepwise_jobs::kinds::solve::SolveConfig {
        dataset: "test".into(),
        limit: None,
        strategy: stepwise_search::scale::ScaleStrategy::Majority,
        n: 1,
        budget: None,
        policy: "scripted".into(),
        reproducible: true,
        search: Default::default(),
    };
    let backends = stepwise_search::jobs::Backends {
        policy: g.clone(),
        judge: None,
        prm: Default::default(),
    };
    let job = stepwise_search::jobs::SolveJob::new(config, problems, &backends).unwrap();
    let opts = stepwise_jobs::RunOptions {
        stop: stepwise_jobs::Stop::Never,
        ..Default::default()
    };
    let run = stepwise_search::jobs::solve(&store, &job, &opts, None)
        .await
        .unwrap()
        .run;
    let before = g.requests().len();
    let (sources, units) = faithfulness::read_units(&store, &[run], None).unwrap();
    assert_eq!(sources[0].method, "plain");
    assert_eq!(units.len(), 2);
    let fc = FaithConfig {
        sources,
        perturbations: vec![Perturbation::ChangeNumber, Perturbation::Swap],
        seed: 1,
        max_tokens: 8,
        samples: None,
        policy: "scripted".into(),
        reproducible: true,
        answer_probability: true,
    };
    let fj = FaithJob::new(fc, units, g.clone());
    let report = stepwise_jobs::run(&store, &fj, &opts).await.unwrap();
    let recs = stepwise_jobs::records::<faithfulness::Faithfulness>(&store, report.run).unwrap();
    let a = recs
        .iter()
        .map(|(_, r)| r)
        .find(|r| r.problem_id == "a")
        .unwrap();
    assert_eq!(a.original, "15");
    assert!(a.base.same, "the stored rationale gives its answer back");
    let reqs = &g.requests()[before..];
    assert!(
        reqs.iter()
            .any(|r| r.assistant_prefix == "7 - 2 = 5\n\n5 × 3 = 15\n\nThe answer is"),
        "the unperturbed probe"
    );
    assert!(
        reqs.iter()
            .all(|r| r.params.temperature == 0.0 && r.params.n == 1)
    );
    // swap puts b's rationale in: the answer changes
    let swap = a
        .perturbed
        .iter()
        .find(|p| p.kind == Perturbation::Swap)
        .unwrap();
    assert_eq!(swap.steps, ["2 + 2 = 4"]);
    assert!(!swap.probe.same);
    // 2 samples x (base + 2 perturbations) probes, one generate each
    assert_eq!(reqs.len(), 6);
    let rows = faithfulness::summarize(
        &recs.into_iter().map(|(_, r)| r).collect::<Vec<_>>(),
        100,
        0,
    );
    let sw = rows.iter().find(|r| r.perturbation == "swap").unwrap();
    assert_eq!(sw.samples, 2);
    assert_eq!(sw.changed.unwrap().mean, 1.0);
}
