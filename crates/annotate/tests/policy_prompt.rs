//! `--policy-prompt`: a policy template given to a job is what every solution and
//! rollout request is rendered from, it is stored with the run (a resume uses it), and a
//! malformed one is refused before any work with an error naming it.

use async_trait::async_trait;
use std::sync::{Arc, Mutex};
use stepwise_annotate::run::{AnnotateConfig, Job, PolicySource, run_job};
use stepwise_annotate::testing::ScriptedPolicy;
use stepwise_annotate::{AnnotateError, Method};
use stepwise_model::{
    Completion, EngineError, GenerateRequest, Generator, NextTokenLogprobs, Prompt,
};

/// Records every request, answers through the scripted policy; fails every call after
/// the first `fail_after` (a backend that goes away mid-run).
struct Recording {
    inner: ScriptedPolicy,
    seen: Mutex<Vec<GenerateRequest>>,
    fail_after: Option<usize>,
}

#[async_trait]
impl Generator for Recording {
    fn name(&self) -> String {
        self.inner.name()
    }
    async fn generate(&self, req: &GenerateRequest) -> Result<Vec<Completion>, EngineError> {
        let n = {
            let mut seen = self.seen.lock().unwrap();
            seen.push(req.clone());
            seen.len()
        };
        if self.fail_after.is_some_and(|f| n > f) {
            return Err(EngineError::InvalidRequest("backend went away".into()));
        }
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

// The scripted policy recognises policy requests by "Solve it step by step".
const TEMPLATE: &str = "# a test template\n### system\nYou are MARKER-SYSTEM.\n### user\nPROBLEM >> {question}\nSolve it step by step. End with: The answer is <number>.\n### assistant\n";

fn job(dir: &std::path::Path, policy_prompt: Option<&str>) -> Job {
    Job {
        config: AnnotateConfig {
            dataset: "arith:ops=2,n=2,seed=4".into(),
            methods: vec![Method::Mc, Method::Grounded],
            samples: 2,
            policy_prompt: policy_prompt.map(str::to_string),
            ..AnnotateConfig::default()
        },
        store: dir.join("runs.sqlite").display().to_string(),
        resume: None,
        data_dir: None,
        run: stepwise_jobs::RunOptions {
            concurrency: 2,
            stop: stepwise_jobs::Stop::Never,
            ..Default::default()
        },
        out: None,
        eval_against_truth: false,
        truth_out: None,
        stored_only: false,
    }
}

fn recording(fail_after: Option<usize>) -> Arc<Recording> {
    let ds = "arith:ops=2,n=2,seed=4".parse().unwrap();
    let problems = stepwise_data::load(&ds, &Default::default())
        .unwrap()
        .problems;
    Arc::new(Recording {
        inner: ScriptedPolicy::for_problems(&problems, 0.5),
        seen: Mutex::new(Vec::new()),
        fail_after,
    })
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn chat(req: &GenerateRequest) -> Vec<(String, String)> {
    match &req.prompt {
        Prompt::Chat(m) => m
            .iter()
            .map(|m| (format!("{:?}", m.role), m.content.clone()))
            .collect(),
        Prompt::Text(t) => vec![("text".into(), t.clone())],
    }
}

#[test]
fn every_policy_request_uses_the_given_template_also_after_resume() {
    let dir = tempfile::tempdir().unwrap();
    let g = recording(None);
    let out = block_on(run_job(
        &job(dir.path(), Some(TEMPLATE)),
        PolicySource::Model(g.clone()),
    ))
    .unwrap();
    assert_eq!(out.config.policy_prompt.as_deref(), Some(TEMPLATE));
    assert!(out.results.iter().any(|r| r.labelled_steps() > 0));
    let seen = g.seen.lock().unwrap().clone();
    assert!(seen.len() > 4, "solutions and rollouts were generated");
    for r in &seen {
        let m = chat(r);
        assert_eq!(m.len(), 2, "{m:?}");
        assert_eq!(m[0].1, "You are MARKER-SYSTEM.");
        assert!(m[1].1.starts_with("PROBLEM >> "), "{m:?}");
    }
    // The default prompt does not contain the marker.
    let dir2 = tempfile::tempdir().unwrap();
    let g2 = recording(None);
    block_on(run_job(
        &job(dir2.path(), None),
        PolicySource::Model(g2.clone()),
    ))
    .unwrap();
    assert!(!g2.seen.lock().unwrap().is_empty());
    for r in g2.seen.lock().unwrap().iter() {
        assert!(chat(r).iter().all(|(_, c)| !c.contains("MARKER")));
    }
}

#[test]
fn a_resumed_run_uses_the_stored_template() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = job(dir.path(), Some(TEMPLATE));
    j.run.concurrency = 1;
    // The backend fails part-way: the first run stops with some units missing, and the
    // error names the run.
    let first = block_on(run_job(&j, PolicySource::Model(recording(Some(12)))));
    let Err(AnnotateError::Job(e)) = first else {
        panic!("the run should fail")
    };
    let run = e.run().unwrap();
    // Reading what is stored does no work and keeps only questions every method finished.
    let mut peek = job(dir.path(), None);
    peek.resume = Some(run);
    peek.stored_only = true;
    peek.eval_against_truth = true;
    let idle = recording(None);
    let partial = block_on(run_job(&peek, PolicySource::Model(idle.clone()))).unwrap();
    assert!(idle.seen.lock().unwrap().is_empty());
    assert_eq!(partial.units_done_now, 0);
    assert_eq!(partial.results.len(), 2, "one question with both methods");
    let rows = partial.truth.unwrap();
    assert!(rows.iter().all(|r| r.questions == 1), "{rows:?}");
    let mut no_run = job(dir.path(), None);
    no_run.stored_only = true;
    assert!(block_on(run_job(&no_run, PolicySource::Model(recording(None)))).is_err());

    // Resume without naming a template: the stored one is used.
    let mut resume = job(dir.path(), None);
    resume.resume = Some(run);
    let g = recording(None);
    let again = block_on(run_job(&resume, PolicySource::Model(g.clone()))).unwrap();
    assert!(again.units_done_now > 0);
    assert_eq!(again.config.policy_prompt.as_deref(), Some(TEMPLATE));
    let seen = g.seen.lock().unwrap().clone();
    assert!(!seen.is_empty());
    for r in &seen {
        assert_eq!(chat(r)[0].1, "You are MARKER-SYSTEM.");
    }
}

#[test]
fn a_malformed_policy_prompt_is_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let g = recording(None);
    let bad = "### user\nSolve {problem} step by step.\n";
    let err = block_on(run_job(
        &job(dir.path(), Some(bad)),
        PolicySource::Model(g.clone()),
    ))
    .unwrap_err();
    assert!(
        matches!(&err, AnnotateError::Template { place, .. } if place == "policy prompt"),
        "{err}"
    );
    assert!(err.to_string().contains("problem"), "{err}");
    assert!(g.seen.lock().unwrap().is_empty());
}
