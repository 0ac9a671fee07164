//! A run whose creation was cut short before its problems were stored (older versions
//! created a run and then added its problems; a full disk in between left a run with
//! none) is redone on resume, not finished with zero units.

use stepwise_annotate::Method;
use stepwise_annotate::run::{AnnotateConfig, Job, PolicySource, run_job};
use stepwise_store::{RunStatus, RunStore, SqliteStore};

fn job(dir: &std::path::Path) -> Job {
    Job {
        config: AnnotateConfig {
            dataset: "arith:ops=2,n=3,seed=5".into(),
            methods: vec![Method::Mc],
            samples: 2,
            ..AnnotateConfig::default()
        },
        store: dir.join("runs.sqlite").display().to_string(),
        resume: None,
        data_dir: None,
        run: stepwise_jobs::RunOptions {
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

fn scripted() -> PolicySource {
    PolicySource::Scripted {
        delay: std::time::Duration::ZERO,
    }
}

#[test]
fn a_run_without_stored_problems_is_redone_on_resume() {
    let dir = tempfile::tempdir().unwrap();
    let whole = block_on(run_job(&job(dir.path()), scripted())).unwrap();
    assert_eq!(whole.results.len(), 3);

    // the half-created run: same kind, version and config, no problems
    let store = SqliteStore::open(dir.path().join("runs.sqlite")).unwrap();
    let info = store.run(whole.run).unwrap();
    let half = store
        .create_run(&info.kind, info.version, &info.config)
        .unwrap();
    assert!(store.problems(half).unwrap().is_empty());

    let mut resume = job(dir.path());
    resume.resume = Some(half);
    let again = block_on(run_job(&resume, scripted())).unwrap();
    assert_eq!(again.run, half);
    assert_eq!(again.units_done_now, 3, "every unit is done, none skipped");
    assert_eq!(again.results.len(), 3);
    assert_eq!(store.problems(half).unwrap().len(), 3);
    assert_eq!(store.run(half).unwrap().status, RunStatus::Done);
}
