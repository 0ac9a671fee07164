//! The task a problem names decides its answers on the one verification path: a real
//! `solve` and `scale` job with a scripted model on Knights-and-Knaves puzzles, their
//! stored verdicts, the scale table, and the data builder reading those runs.

mod common;

use common::{block_on, opts};
use std::sync::Arc;
use stepwise_build::{BuildConfig, BuildSpec, Dedup, Filters, SftFormat, build};
use stepwise_core::Problem;
use stepwise_jobs::kinds::scale::{ScaleConfig, ScaleJobConfig, ScaleStrategy};
use stepwise_jobs::kinds::solve::{SearchSettings, Solve, SolveConfig};
use stepwise_model::scripted::ScriptedGenerator;
use stepwise_model::{GenerateRequest, Prompt};
use stepwise_search::jobs::{Backends, ScaleJob, SolveJob};
use stepwise_store::{RunStore, SqliteStore};
use stepwise_tasks::knights::{KnightsConfig, Puzzle, generate_one, render_assignment};

fn puzzles() -> Vec<Puzzle> {
    let c = KnightsConfig {
        people: 3,
        depth: 2,
        n: 2,
        seed: 5,
    };
    (0..c.n).map(|i| generate_one(&c, i).unwrap()).collect()
}

/// `Alice: knight, Bob: knave, …`: a phrasing the task's reader takes and the answer
/// verifier does not.
fn table(p: &Puzzle, roles: &[bool]) -> String {
    p.names
        .iter()
        .zip(roles)
        .map(|(n, &k)| format!("{n}: {}", if k { "knight" } else { "knave" }))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Sample 0: right, as a table; sample 1: the first inhabitant's role flipped; sample 2:
/// right, in the gold's words.
fn script(ps: Vec<Puzzle>) -> impl Fn(&GenerateRequest, usize) -> String + Send + Sync {
    move |req, i| {
        let text = match &req.prompt {
            Prompt::Chat(m) => m.iter().map(|m| m.content.as_str()).collect::<String>(),
            Prompt::Text(t) => t.clone(),
        };
        let p = ps.iter().find(|p| text.contains(&p.question())).unwrap();
        let mut wrong = p.solution.clone();
        wrong[0] = !wrong[0];
        let answer = match i % 3 {
            0 => table(p, &p.solution),
            1 => render_assignment(&p.names, &wrong),
            _ => render_assignment(&p.names, &p.solution),
        };
        format!("Each statement is checked in turn.\n\nThe answer is: {answer}")
    }
}

fn backends() -> Backends {
    Backends {
        policy: Arc::new(ScriptedGenerator::new(script(puzzles()))),
        judge: None,
        prm: Default::default(),
    }
}

fn problems() -> Vec<Problem> {
    puzzles()
        .iter()
        .enumerate()
        .map(|(i, p)| p.to_problem(format!("kk{i}")))
        .collect()
}

/// One greedy-style sample per problem.
fn solve_config() -> SolveConfig {
    SolveConfig {
        dataset: "inline".into(),
        limit: None,
        strategy: ScaleStrategy::Majority,
        n: 1,
        budget: None,
        policy: "scripted".into(),
        reproducible: true,
        search: SearchSettings::default(),
    }
}

#[test]
fn solve_and_scale_ask_the_task_checker() {
    let ps = puzzles();
    // the answer verifier alone rejects the table phrasing: the task checker is what
    // makes it right
    let o = stepwise_verify::Options::default();
    assert!(
        !stepwise_verify::verify(&ps[0].gold(), &table(&ps[0], &ps[0].solution), &o).is_equal()
    );

    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("runs.sqlite")).unwrap();
    let solve = SolveJob::new(solve_config(), problems(), &backends()).unwrap();
    let s = block_on(stepwise_search::jobs::solve(&store, &solve, &opts(), None)).unwrap();
    assert_eq!((s.right, s.problems), (2, 2));
    for (unit, r) in stepwise_jobs::records::<Solve>(&store, s.run).unwrap() {
        assert_eq!(r.correct, Some(true), "{}", unit.unit.key);
    }
    // the untyped sample rows carry the same verdict
    let rows = store.units(s.run).unwrap();
    assert!(
        rows.iter()
            .all(|u| u.unit.samples.iter().all(|x| x.correct == Some(true)))
    );

    let scale = ScaleJob::new(
        ScaleJobConfig {
            dataset: "inline".into(),
            limit: None,
            scale: ScaleConfig {
                strategies: vec![ScaleStrategy::Majority],
                ns: vec![1, 3],
                expansions: 2,
                max_steps: 4,
            },
            policy: "scripted".into(),
            reproducible: true,
            search: SearchSettings::default(),
        },
        problems(),
        &backends(),
    )
    .unwrap();
    let sc = block_on(stepwise_search::jobs::scale(&store, &scale, &opts())).unwrap();
    let cell = |st: &str, n: usize| {
        let r = sc
            .rows
            .iter()
            .find(|r| r.strategy == st && r.n == n)
            .unwrap();
        (r.correct, r.problems)
    };
    // majority@1 is sample 0 (right)
    assert_eq!(cell("majority", 1), (2, 2));
    assert_eq!(cell("pass@N", 3), (2, 2));

    // the builder reads the same verdicts: samples 0 and 2 are verified, 1 is not
    let out = dir.path().join("sft.jsonl");
    let m = block_on(build(
        &store,
        BuildConfig {
            sources: vec![sc.run],
            spec: BuildSpec::Sft {
                rule: "verified".parse().unwrap(),
                dedup: Dedup::None,
                format: SftFormat::Messages,
            },
            filters: Filters::default(),
            policy: None,
        },
        None,
        &out,
        &opts(),
    ))
    .unwrap()
    .manifest;
    let sources: Vec<String> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["source"].to_string())
        .collect();
    assert_eq!(m.rows, 4, "{sources:?}");
    assert!(sources.iter().all(|s| !s.ends_with("#1\"")), "{sources:?}");
}

#[test]
fn a_problem_naming_an_unknown_task_is_refused() {
    let mut p = problems().remove(0);
    p.metadata.insert("task".into(), "sudoku".into());
    let e = SolveJob::new(solve_config(), vec![p], &backends())
        .err()
        .unwrap();
    assert!(e.to_string().contains("sudoku"), "{e}");
}
