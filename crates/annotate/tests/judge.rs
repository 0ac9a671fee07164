//! `annotate --judge-model`: the reference method's judge prompts go to a judge of their
//! own (never to the policy), a step without a parseable verdict abstains (no label,
//! counted in the record and the summary), and the judge is part of the run's config: a
//! resume or a worker with another judge is refused, naming the difference.

use async_trait::async_trait;
use std::sync::Arc;
use stepwise_annotate::reference::JudgeTemplate;
use stepwise_annotate::run::{AnnotateConfig, Job, PolicySource, join, run_job_judged};
use stepwise_annotate::{AnnotateError, Method};
use stepwise_model::scripted::ScriptedGenerator;
use stepwise_model::{
    Completion, EngineError, GenerateRequest, Generator, NextTokenLogprobs, Prompt,
};

const DATASET: &str = "arith:ops=1,n=2,seed=5";

/// A scripted generator under a name of its own (models are told apart by name).
struct Named {
    name: String,
    inner: ScriptedGenerator,
}

#[async_trait]
impl Generator for Named {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn reproducible(&self) -> bool {
        true
    }
    async fn generate(&self, req: &GenerateRequest) -> Result<Vec<Completion>, EngineError> {
        self.inner.generate(req).await
    }
    async fn next_token_logprobs(
        &self,
        prompt: &Prompt,
        assistant_prefix: &str,
        candidates: &[String],
    ) -> Result<NextTokenLogprobs, EngineError> {
        self.inner
            .next_token_logprobs(prompt, assistant_prefix, candidates)
            .await
    }
}

/// The policy: every sample is the same two-step solution.
fn policy() -> Arc<Named> {
    Arc::new(Named {
        name: "policy-model".into(),
        inner: ScriptedGenerator::new(|_, _| "1 + 1 = 2\n\nThe answer is 2.".into()),
    })
}

/// The judge: step 1 correct, then a line about step 2 with no verdict in it (the
/// template's assistant start `Step 1:` is already in the prompt).
fn judge(name: &str) -> Arc<Named> {
    Arc::new(Named {
        name: name.into(),
        inner: ScriptedGenerator::new(|_, _| {
            " correct | reference step 1 | adds right\nStep 2: hmm, hard to say".into()
        }),
    })
}

fn job(dir: &std::path::Path, methods: Vec<Method>, resume: Option<i64>) -> Job {
    Job {
        config: AnnotateConfig {
            dataset: DATASET.into(),
            methods,
            samples: 2,
            ..AnnotateConfig::default()
        },
        store: dir.join("runs.sqlite").display().to_string(),
        resume,
        data_dir: None,
        run: stepwise_jobs::RunOptions {
            concurrency: 1,
            stop: stepwise_jobs::Stop::Never,
            ..Default::default()
        },
        out: None,
        eval_against_truth: false,
        truth_out: None,
        stored_only: false,
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn is_judge_prompt(r: &GenerateRequest) -> bool {
    match &r.prompt {
        Prompt::Chat(m) => m.iter().any(|m| m.content.contains("Step 1: 1 + 1 = 2")),
        Prompt::Text(t) => t.contains("Step 1: 1 + 1 = 2"),
    }
}

#[test]
fn judge_prompts_go_to_the_judge_and_unparseable_steps_abstain() {
    let dir = tempfile::tempdir().unwrap();
    let (p, j) = (policy(), judge("judge-model"));
    let store =
        stepwise_store::open(&dir.path().join("runs.sqlite").display().to_string()).unwrap();
    let out = block_on(run_job_judged(
        store.as_ref(),
        &job(dir.path(), vec![Method::Reference], None),
        PolicySource::Model(p.clone()),
        Some(j.clone()),
    ))
    .unwrap();
    assert_eq!(out.config.judge.as_deref(), Some("judge-model"));
    assert_eq!(out.config.generator, "policy-model");

    // the policy sampled the solutions (one call per problem) and judged nothing
    let policy_reqs = p.inner.requests();
    assert_eq!(policy_reqs.len(), 2);
    assert!(policy_reqs.iter().all(|r| !is_judge_prompt(r)));
    // every judge request is exactly the reference template's prompt for a solution
    let problems = stepwise_data::load_spec(DATASET, None, None).unwrap();
    let steps = vec!["1 + 1 = 2".to_string(), "The answer is 2.".to_string()];
    let judge_reqs = j.inner.requests();
    assert_eq!(judge_reqs.len(), 4, "2 problems x 2 samples, one pass each");
    for (i, r) in judge_reqs.iter().enumerate() {
        let (prompt, start) = JudgeTemplate::default()
            .render(&problems[i / 2], &steps)
            .unwrap();
        assert_eq!(r.prompt, prompt, "judge request {i}");
        assert_eq!(r.assistant_prefix, start);
    }

    // step 2 had no verdict: it abstains (no label, never good) and is counted
    assert_eq!(out.results.len(), 2);
    for r in &out.results {
        assert_eq!(r.abstained, 2, "one step per solution, 2 solutions");
        assert_eq!(r.spent.judge_calls, 2);
        assert_eq!(r.spent.policy_calls, 1);
        for s in &r.solutions {
            assert_eq!(s.labels.len(), 1);
            assert!(s.labels[0].good);
        }
    }
    let line = out.summary(1.0);
    assert!(line.contains("abstained: 4"), "{line}");
    assert!(line.contains("4 labelled steps"), "{line}");
}

#[test]
fn a_resume_or_a_worker_with_another_judge_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        stepwise_store::open(&dir.path().join("runs.sqlite").display().to_string()).unwrap();
    let run = block_on(run_job_judged(
        store.as_ref(),
        &job(dir.path(), vec![Method::Reference], None),
        PolicySource::Model(policy()),
        Some(judge("judge-a")),
    ))
    .unwrap()
    .run;
    let resume = |j: Option<Arc<Named>>| {
        block_on(run_job_judged(
            store.as_ref(),
            &job(dir.path(), vec![Method::Reference], Some(run)),
            PolicySource::Model(policy()),
            j.map(|j| j as Arc<dyn Generator>),
        ))
        .map(|o| o.units_done_now)
    };
    let e = resume(Some(judge("judge-b"))).unwrap_err().to_string();
    assert!(
        e.contains("judge") && e.contains("'judge-a'") && e.contains("'judge-b'"),
        "{e}"
    );
    let e = resume(None).unwrap_err().to_string();
    assert!(
        e.contains("judge: 'judge-a' in the run, the policy now"),
        "{e}"
    );
    // the same judge model served elsewhere is the same judge
    assert_eq!(resume(Some(judge("judge-a@http://other:8000"))).unwrap(), 0);

    let joined = |j: Option<Arc<dyn Generator>>| {
        block_on(join(
            store.as_ref(),
            run,
            policy(),
            j,
            None,
            &stepwise_jobs::RunOptions::default(),
        ))
    };
    let e = joined(Some(judge("judge-c"))).unwrap_err().to_string();
    assert!(e.contains("'judge-a'") && e.contains("'judge-c'"), "{e}");
    assert!(joined(Some(judge("judge-a"))).is_ok());
}

#[test]
fn a_run_without_its_own_judge_refuses_one_later_and_methods_without_a_judge_refuse_one() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        stepwise_store::open(&dir.path().join("runs.sqlite").display().to_string()).unwrap();
    let run = block_on(run_job_judged(
        store.as_ref(),
        &job(dir.path(), vec![Method::Reference], None),
        PolicySource::Model(policy()),
        None,
    ))
    .unwrap();
    assert_eq!(run.config.judge, None);
    let e = block_on(run_job_judged(
        store.as_ref(),
        &job(dir.path(), vec![Method::Reference], Some(run.run)),
        PolicySource::Model(policy()),
        Some(judge("judge-a")),
    ))
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("judge: the policy in the run, 'judge-a' now"),
        "{e}"
    );

    let e = block_on(run_job_judged(
        store.as_ref(),
        &job(dir.path(), vec![Method::Mc], None),
        PolicySource::Model(policy()),
        Some(judge("judge-a")),
    ))
    .unwrap_err();
    assert!(matches!(e, AnnotateError::Config(_)), "{e}");
    assert!(e.to_string().contains("asks a judge"), "{e}");
}
