//! Accuracy versus compute: strategies over budgets, with exact token accounting.
//!
//! Work is split into units with stable keys, so a run stored in the run store can be
//! interrupted and resumed without losing finished work:
//!
//! - `{problem}/samples`: one draw of `max(n)` whole samples (scored when a scored
//!   sampling strategy is asked for). Majority, weighted self-consistency, best-of-N and
//!   pass@N at every `n` are computed from the first `n` of these samples, which is
//!   exactly what running the strategy with `n` gives: sample `i` of a call depends only
//!   on the seed and `i` (a [`Generator`](stepwise_model::Generator) contract), and the cost of `n`
//!   samples is the sum of their own tokens (one policy call; judge costs per sample).
//! - `{problem}/{strategy}/n={n}`: one tree search (beam, vbeam, dvts, mcts) with `n`
//!   candidates per step, or one critique-and-refine run of at most `n` rounds.

use crate::{BeamSearch, Context, Dvts, Ledger, Mcts, Sampling, SearchError, Strategy};
use stepwise_core::{Budget, Problem};

pub use stepwise_jobs::kinds::scale::{ScaleConfig, ScaleRecord, ScaleStrategy};

/// The strategy `s` with `n` samples (sampling) or `n` candidates per step (tree search).
pub fn build_strategy(
    s: ScaleStrategy,
    n: usize,
    expansions: usize,
    max_steps: usize,
) -> Box<dyn Strategy> {
    match s {
        ScaleStrategy::Majority => Box::new(Sampling::majority(n)),
        ScaleStrategy::Weighted => Box::new(Sampling::weighted(n)),
        ScaleStrategy::Bon => Box::new(Sampling::best_of_n(n)),
        ScaleStrategy::Beam => Box::new(BeamSearch::for_n(n, expansions, max_steps)),
        ScaleStrategy::Vbeam => {
            let mut b = BeamSearch::for_n(n, expansions, max_steps);
            b.value_guided = true;
            Box::new(b)
        }
        ScaleStrategy::Dvts => Box::new(Dvts::for_n(n, expansions, max_steps)),
        ScaleStrategy::Mcts => Box::new(Mcts::for_n(n, expansions, max_steps)),
        ScaleStrategy::CritiqueRefine => Box::new(crate::CritiqueRefine::new(n)),
    }
}

/// One unit of work.
#[derive(Debug, Clone, PartialEq)]
pub enum Unit {
    Samples {
        problem: usize,
    },
    Tree {
        problem: usize,
        strategy: ScaleStrategy,
        n: usize,
    },
}

/// Runs units of a scale experiment.
pub struct ScaleRunner {
    pub ctx: Context,
    pub config: ScaleConfig,
    pub problems: Vec<Problem>,
}

impl ScaleRunner {
    pub fn new(
        ctx: Context,
        config: ScaleConfig,
        problems: Vec<Problem>,
    ) -> Result<Self, SearchError> {
        config.validate().map_err(SearchError::Config)?;
        let unscored = config
            .strategies
            .iter()
            .find(|s| s.needs_scorer() && !ctx.picks_by_pairs(**s));
        if let (Some(s), None) = (unscored, &ctx.scorer) {
            return Err(SearchError::NeedsScorer {
                strategy: s.name().to_string(),
            });
        }
        Ok(Self {
            ctx,
            config,
            problems,
        })
    }

    /// Every unit, with its key.
    pub fn units(&self) -> Vec<(String, Unit)> {
        let mut out = Vec::new();
        for (i, p) in self.problems.iter().enumerate() {
            if self.config.any_sampling() {
                out.push((format!("{}/samples", p.id), Unit::Samples { problem: i }));
            }
            for &s in &self.config.strategies {
                if s.selection().is_some() {
                    continue;
                }
                for &n in &self.config.ns {
                    out.push((
                        format!("{}/{}/n={n}", p.id, s.name()),
                        Unit::Tree {
                            problem: i,
                            strategy: s,
                            n,
                        },
                    ));
                }
            }
        }
        out
    }

    /// Runs one unit.
    pub async fn run(&self, unit: &Unit) -> Result<ScaleRecord, SearchError> {
        match *unit {
            Unit::Samples { problem } => {
                let p = &self.problems[problem];
                let (ctx, prompt) = self.ctx.for_problem(p).await?;
                let s = Sampling::majority(self.config.max_n());
                let mut ledger = Ledger::new(p, &Budget::unlimited(), "scale-samples");
                // scores are drawn for the strategies that read them (best-of-N by
                // pairwise verdicts reads none)
                let score = self.config.scored_sampling() && ctx.scorer.is_some();
                let samples = s.draw(&mut ledger, &ctx, score).await?;
                let pairwise = match &ctx.pairwise {
                    Some(judge) if self.config.strategies.contains(&ScaleStrategy::Bon) => {
                        let texts: Vec<&str> = samples.iter().map(|s| s.text.as_str()).collect();
                        let pairs = judge
                            .judge_all(p, &texts)
                            .await
                            .map_err(|e| ledger.score_err(e))?;
                        Some(Box::new(stepwise_jobs::kinds::pairwise::PairwiseDraw {
                            method: judge.settings.method,
                            pairs,
                        }))
                    }
                    _ => None,
                };
                Ok(ScaleRecord::Samples {
                    problem_id: p.id.clone(),
                    samples,
                    policy_calls: ledger.spent.policy_calls,
                    prompt: prompt.map(Box::new),
                    pairwise,
                })
            }
            Unit::Tree {
                problem,
                strategy,
                n,
            } => {
                let p = &self.problems[problem];
                let st = build_strategy(strategy, n, self.config.expansions, self.config.max_steps);
                let (ctx, prompt) = self.ctx.for_problem(p).await?;
                let mut outcome = st.solve(p, &Budget::unlimited(), &ctx).await?;
                if let Some(b) = prompt {
                    // a tree record has no prompt field: its building cost joins the spend
                    let wall = outcome.spent.wall_ms;
                    outcome.spent += b.spent;
                    outcome.spent.wall_ms = wall;
                }
                // the trace is for `solve`; the table needs only answers and costs
                outcome.trace.events.clear();
                Ok(ScaleRecord::Tree {
                    strategy,
                    n,
                    outcome: Box::new(outcome),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use stepwise_jobs::kinds::scale::{Acc, is_correct, markdown_table, summarize};
    use stepwise_model::scripted::ScriptedGenerator;
    use stepwise_score::ArithScorer;

    fn runner(strategies: &str, ns: &[usize]) -> ScaleRunner {
        // sample i: right ("3 + 4 = 7") when i % 3 == 2, else a wrong claim 3 + 4 = 8 + (i % 2)
        let g = Arc::new(ScriptedGenerator::new(|_, i| {
            let a = if i % 3 == 2 { 7 } else { 8 + (i % 2) };
            format!("3 + 4 = {a}\n\nThe answer is {a}.")
        }));
        let mut ctx = Context::new(g).with_scorer(Arc::new(ArithScorer::default()));
        ctx.aggregation = stepwise_core::Aggregation::Min;
        let problems = vec![
            Problem::new("a", "3 + 4?").with_gold("7"),
            Problem::new("b", "3 + 4?").with_gold("7"),
        ];
        let config = ScaleConfig {
            strategies: strategies.split(',').map(|s| s.parse().unwrap()).collect(),
            ns: ns.to_vec(),
            expansions: 2,
            max_steps: 4,
        };
        ScaleRunner::new(ctx, config, problems).unwrap()
    }

    #[tokio::test]
    async fn prefix_results_equal_direct_runs() {
        let r = runner("majority,bon,weighted", &[1, 2, 4, 8]);
        let units = r.units();
        assert_eq!(units.len(), 2);
        assert_eq!(units[0].0, "a/samples");
        let mut results = Vec::new();
        for (_, u) in &units {
            results.push(r.run(u).await.unwrap());
        }
        let rows = summarize(&r.config, &r.problems, &results, &Default::default());
        // each cell equals running the strategy itself with that n
        for row in rows.iter().filter(|x| x.strategy != "pass@N") {
            let st: ScaleStrategy = row.strategy.parse().unwrap();
            let mut acc = Acc::default();
            for p in &r.problems {
                let out = build_strategy(st, row.n, 2, 4)
                    .solve(p, &Budget::unlimited(), &r.ctx)
                    .await
                    .unwrap();
                acc.add(
                    is_correct(p, out.answer.as_deref(), &Default::default()),
                    out.spent,
                );
            }
            let direct = acc.row(st.name(), row.n);
            assert_eq!(direct.correct, row.correct, "{row:?}");
            assert_eq!(direct.mean_tokens, row.mean_tokens, "{row:?}");
            assert_eq!(direct.mean_calls, row.mean_calls, "{row:?}");
        }
        let find = |s: &str, n: usize| {
            rows.iter()
                .find(|x| x.strategy == s && x.n == n)
                .unwrap()
                .accuracy()
        };
        // one sample is wrong, the right one appears at i = 2
        assert_eq!(find("majority", 1), 0.0);
        assert_eq!(find("pass@N", 4), 1.0);
        assert_eq!(find("bon", 4), 1.0);
        assert_eq!(find("weighted", 4), 1.0);
        // majority@4: 8, 9, 7, 9 -> 9
        assert_eq!(find("majority", 4), 0.0);
        let md = markdown_table(&rows);
        assert!(md.contains("| pass@N | 4 | 100.0% | 2/2 |"), "{md}");
    }

    #[tokio::test]
    async fn pairwise_best_of_n_replays_equal_direct_runs_at_every_n() {
        use stepwise_jobs::kinds::pairwise::{PairwiseMethod, PairwiseSettings};
        for method in [PairwiseMethod::Knockout, PairwiseMethod::BradleyTerry] {
            // a judge preferring the solution that says 7; no scorer at all
            let judge = Arc::new(ScriptedGenerator::new(|req, _| {
                let stepwise_model::Prompt::Chat(m) = &req.prompt else {
                    return String::new();
                };
                let u = &m[m.len() - 1].content;
                match (
                    u.contains("[Solution A]\n3 + 4 = 7"),
                    u.contains("[Solution B]\n3 + 4 = 7"),
                ) {
                    (true, false) => "[[A]]".into(),
                    (false, true) => "so [[B]]".into(),
                    _ => "unsure".into(),
                }
            }));
            let settings = PairwiseSettings {
                method,
                ..PairwiseSettings::default()
            };
            let mut r = runner("bon", &[1, 2, 3, 4]);
            r.ctx.scorer = None;
            r.ctx.pairwise = Some(Arc::new(
                stepwise_score::PairwiseJudge::new(judge, settings).unwrap(),
            ));
            let r = ScaleRunner::new(r.ctx, r.config, r.problems).unwrap();
            let mut results = Vec::new();
            for (_, u) in r.units() {
                results.push(r.run(&u).await.unwrap());
            }
            let ScaleRecord::Samples {
                pairwise: Some(pw), ..
            } = &results[0]
            else {
                panic!("{:?}", results[0])
            };
            assert_eq!(pw.pairs.len(), 6); // every pair of 4
            let rows = summarize(&r.config, &r.problems, &results, &Default::default());
            for row in rows.iter().filter(|x| x.strategy == "bon") {
                let mut acc = Acc::default();
                for p in &r.problems {
                    let out = Sampling::best_of_n(row.n)
                        .solve(p, &Budget::unlimited(), &r.ctx)
                        .await
                        .unwrap();
                    acc.add(
                        is_correct(p, out.answer.as_deref(), &Default::default()),
                        out.spent,
                    );
                }
                let direct = acc.row("bon", row.n);
                assert_eq!(direct.correct, row.correct, "{method:?} {row:?}");
                assert_eq!(direct.mean_tokens, row.mean_tokens, "{method:?} {row:?}");
                assert_eq!(direct.mean_calls, row.mean_calls, "{method:?} {row:?}");
            }
            // samples 8, 9, 7, 9: the right one (2) is found from n = 3 on
            let acc = |n: usize| {
                rows.iter()
                    .find(|x| x.strategy == "bon" && x.n == n)
                    .unwrap()
                    .accuracy()
            };
            assert_eq!((acc(2), acc(3), acc(4)), (0.0, 1.0, 1.0), "{method:?}");
        }
    }

    #[tokio::test]
    async fn tree_units_and_needs_scorer() {
        let r = runner("beam", &[2, 4]);
        let units = r.units();
        assert_eq!(
            units.iter().map(|u| u.0.as_str()).collect::<Vec<_>>(),
            ["a/beam/n=2", "a/beam/n=4", "b/beam/n=2", "b/beam/n=4"]
        );
        let res = r.run(&units[1].1).await.unwrap();
        let ScaleRecord::Tree { outcome, .. } = &res else {
            panic!()
        };
        assert!(outcome.spent.policy_tokens > 0);
        let g = Arc::new(ScriptedGenerator::new(|_, _| String::new()));
        let e = ScaleRunner::new(Context::new(g), r.config.clone(), vec![])
            .err()
            .unwrap();
        assert!(matches!(e, SearchError::NeedsScorer { .. }));
    }

    #[test]
    fn strategy_names() {
        for s in ScaleStrategy::ALL {
            assert_eq!(s.name().parse::<ScaleStrategy>().unwrap(), s);
        }
        assert!("nope".parse::<ScaleStrategy>().is_err());
    }
}
