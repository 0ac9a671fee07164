//! The task families against independent checks: Knights-and-Knaves uniqueness by a
//! brute-force solver written here, the answer verifier on every phrasing and every
//! wrong assignment of 1,000 puzzles, h1 chains replayed link by link on real GSM8K.

use proptest::prelude::*;
use stepwise_tasks::h1::{self, H1Config, Link, Source};
use stepwise_tasks::knights::{
    KnightsConfig, Puzzle, Statement, generate_one, parse_answer, phrasings, render_assignment,
    score,
};

/// The truth of a statement, written apart from the crate's `eval`.
fn truth(s: &Statement, world: u32) -> bool {
    match s {
        Statement::Is { person, knight } => ((world >> person) & 1 == 1) == *knight,
        Statement::Not { inner } => !truth(inner, world),
        Statement::And { left, right } => truth(left, world) & truth(right, world),
        Statement::Or { left, right } => truth(left, world) | truth(right, world),
        Statement::Implies { left, right } => !truth(left, world) | truth(right, world),
    }
}

fn brute_force(p: &Puzzle) -> Vec<u32> {
    let n = p.statements.len() as u32;
    (0..1u32 << n)
        .filter(|&w| {
            p.statements
                .iter()
                .enumerate()
                .all(|(i, s)| truth(s, w) == ((w >> i) & 1 == 1))
        })
        .collect()
}

#[test]
fn thousand_puzzles_unique_and_verified_in_every_phrasing() {
    let mut checked = 0;
    for (people, depth) in [(2, 2), (3, 2), (4, 2), (5, 3)] {
        let cfg = KnightsConfig {
            people,
            depth,
            n: 250,
            seed: 11,
        };
        for i in 0..cfg.n {
            let p = generate_one(&cfg, i).unwrap();
            let sols = brute_force(&p);
            assert_eq!(
                sols.len(),
                1,
                "puzzle {i} of {cfg:?} has {} solutions",
                sols.len()
            );
            let world: Vec<bool> = (0..people).map(|k| (sols[0] >> k) & 1 == 1).collect();
            assert_eq!(world, p.solution);
            let names: Vec<&str> = p.names.iter().map(String::as_str).collect();
            let gold = p.gold();
            for text in phrasings(&names, &p.solution) {
                assert_eq!(score(&text, &gold), Some(1.0), "{text}");
            }
            for w in 0..1u32 << people {
                if w == sols[0] {
                    continue;
                }
                let wrong: Vec<bool> = (0..people).map(|k| (w >> k) & 1 == 1).collect();
                for text in phrasings(&names, &wrong) {
                    assert_eq!(score(&text, &gold), Some(0.0), "accepted a wrong {text}");
                }
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 1000);
}

#[test]
fn question_states_every_statement() {
    let p = generate_one(&KnightsConfig::default(), 0).unwrap();
    let q = p.question();
    for n in &p.names {
        assert!(q.contains(&format!("{n} says: \"")), "{q}");
    }
}

proptest! {
    #[test]
    fn parser_never_panics(text in "\\PC{0,300}") {
        let _ = parse_answer(&text, &["Zoey", "Oliver", "Mia"]);
        let _ = score(&text, "Zoey is a knight, Oliver is a knave");
        let _ = stepwise_tasks::masked::reward(&text, "span");
    }

    #[test]
    fn any_assignment_round_trips(bits in 0u32..256, n in 2usize..8) {
        let names = &stepwise_tasks::knights::NAMES[..n];
        let world: Vec<bool> = (0..n).map(|k| (bits >> k) & 1 == 1).collect();
        for text in phrasings(names, &world) {
            prop_assert_eq!(parse_answer(&text, names), Some(world.clone()), "{}", text);
        }
        let gold = render_assignment(names, &world);
        prop_assert_eq!(score(&format!("Thinking...\n\nThe answer is {gold}."), &gold), Some(1.0));
    }
}

fn gsm8k_train() -> Option<Vec<stepwise_core::Problem>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/gsm8k/train.jsonl");
    let alt = std::path::PathBuf::from("/work/shared/data/gsm8k/train.jsonl");
    let path = [dir, alt].into_iter().find(|p| p.exists())?;
    let text = std::fs::read_to_string(path).ok()?;
    Some(
        text.lines()
            .enumerate()
            .filter_map(|(i, l)| {
                let v: serde_json::Value = serde_json::from_str(l).ok()?;
                let answer = v["answer"].as_str()?;
                let mut p = stepwise_core::Problem::new(
                    format!("gsm8k:train:{i}"),
                    v["question"].as_str()?,
                );
                p.gold = Some(answer.rsplit("####").next()?.trim().replace(',', ""));
                p.reference = Some(answer.to_string());
                Some(p)
            })
            .collect(),
    )
}

#[test]
fn h1_chains_gold_is_the_step_by_step_computation() {
    let Some(train) = gsm8k_train() else {
        eprintln!(
            "SKIPPED h1_chains_gold_is_the_step_by_step_computation: no shared/data/gsm8k/train.jsonl"
        );
        return;
    };
    let pool: Vec<Source> = train.iter().filter_map(Source::from_problem).collect();
    assert!(
        pool.len() > train.len() / 2,
        "{} of {} usable",
        pool.len(),
        train.len()
    );
    let cfg = H1Config {
        min_len: 1,
        max_len: 4,
        n: 25,
        seed: 3,
    };
    let chains: Vec<_> = h1::problems(&cfg, &train).collect();
    assert_eq!(chains.len(), 100);
    let mut last_len = 0;
    for c in &chains {
        let len = c.metadata["h1_length"].as_u64().unwrap() as usize;
        assert!(len >= last_len, "ordered by length (a curriculum)");
        last_len = len;
        let links: Vec<Link> = serde_json::from_value(c.metadata["h1_links"].clone()).unwrap();
        assert_eq!(links.len(), len);
        let mut prev: Option<String> = None;
        for (k, l) in links.iter().enumerate() {
            let src = pool.iter().find(|s| s.id == l.problem_id).unwrap();
            assert_eq!(l.input, prev, "link {k} takes the previous answer");
            let value = match (&l.replaced, &l.input) {
                (Some(r), Some(i)) => {
                    assert!(c.question.contains(&format!("[the answer of Problem {k}]")));
                    h1::replay(
                        &src.annotations,
                        &[(h1::number(r).unwrap(), h1::number(i).unwrap())],
                    )
                }
                _ => h1::replay(&src.annotations, &[]),
            }
            .unwrap();
            assert_eq!(value.to_string(), l.answer);
            prev = Some(l.answer.clone());
        }
        assert_eq!(c.gold.as_deref(), prev.as_deref());
    }
}
