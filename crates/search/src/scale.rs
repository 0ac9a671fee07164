//! Accuracy versus compute: strategies over budgets, with exact token accounting.
//!
//! Work is split into units with stable keys, so a run stored in the run store can be
//! interrupted and resumed without losing finished work:
//!
//! - `{problem}/samples`: one draw of `max(n)` whole samples (scored when a scored
//!   sampling strategy is asked for). Majority, weighted self-consistency, best-of-N and
//!   pass@N at every `n` are computed from the first `n` of these samples, which is
//!   exactly what running the strategy with `n` gives: sample `i` of a call depends only
//!   on the seed and `i` (a [`stepwise_model::Generator`] contract), and the cost of `n`
//!   samples is the sum of their own tokens (one policy call; judge costs per sample).
//! - `{problem}/{strategy}/n={n}`: one tree search (beam, vbeam, dvts, mcts) with `n`
//!   candidates per step.

use crate::sampling::select;
use crate::{
    BeamSearch, Context, Dvts, Ledger, Mcts, Outcome, Sample, Sampling, SearchError, Selection,
    Strategy,
};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use stepwise_core::{Budget, Problem, Spent};

/// A strategy on the compute axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScaleStrategy {
    Majority,
    Weighted,
    Bon,
    Beam,
    Vbeam,
    Dvts,
    Mcts,
}

impl ScaleStrategy {
    pub const ALL: [ScaleStrategy; 7] = [
        Self::Majority,
        Self::Weighted,
        Self::Bon,
        Self::Beam,
        Self::Vbeam,
        Self::Dvts,
        Self::Mcts,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Majority => "majority",
            Self::Weighted => "weighted",
            Self::Bon => "bon",
            Self::Beam => "beam",
            Self::Vbeam => "vbeam",
            Self::Dvts => "dvts",
            Self::Mcts => "mcts",
        }
    }

    /// The selection rule of a sampling strategy.
    pub fn selection(self) -> Option<Selection> {
        match self {
            Self::Majority => Some(Selection::Majority),
            Self::Weighted => Some(Selection::Weighted),
            Self::Bon => Some(Selection::BestOfN),
            _ => None,
        }
    }

    /// Whether the strategy needs a scorer.
    pub fn needs_scorer(self) -> bool {
        self != Self::Majority
    }

    /// The strategy with `n` samples (sampling) or `n` candidates per step (tree search).
    pub fn build(self, n: usize, expansions: usize, max_steps: usize) -> Box<dyn Strategy> {
        match self {
            Self::Majority => Box::new(Sampling::majority(n)),
            Self::Weighted => Box::new(Sampling::weighted(n)),
            Self::Bon => Box::new(Sampling::best_of_n(n)),
            Self::Beam => Box::new(BeamSearch::for_n(n, expansions, max_steps)),
            Self::Vbeam => {
                let mut b = BeamSearch::for_n(n, expansions, max_steps);
                b.value_guided = true;
                Box::new(b)
            }
            Self::Dvts => Box::new(Dvts::for_n(n, expansions, max_steps)),
            Self::Mcts => Box::new(Mcts::for_n(n, expansions, max_steps)),
        }
    }
}

impl fmt::Display for ScaleStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ScaleStrategy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().to_ascii_lowercase();
        let t = match t.as_str() {
            "best-of-n" | "bestofn" | "best_of_n" => "bon",
            "maj" | "majority-vote" => "majority",
            "wsc" | "weighted-sc" => "weighted",
            "ovm" | "value-beam" => "vbeam",
            other => other,
        };
        Self::ALL
            .into_iter()
            .find(|x| x.name() == t)
            .ok_or_else(|| format!("unknown strategy '{s}' (expected majority, weighted, bon, beam, vbeam, dvts or mcts)"))
    }
}

/// What to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScaleConfig {
    pub strategies: Vec<ScaleStrategy>,
    /// Samples (sampling strategies) or candidates per step (tree search).
    pub ns: Vec<usize>,
    /// Expansions per beam / per node in tree search.
    pub expansions: usize,
    pub max_steps: usize,
}

impl ScaleConfig {
    pub fn validate(&self) -> Result<(), SearchError> {
        if self.strategies.is_empty() {
            return Err(SearchError::Config("no strategies given".into()));
        }
        if self.ns.is_empty() || self.ns.contains(&0) {
            return Err(SearchError::Config(
                "budgets (n) must be a non-empty list of positive numbers".into(),
            ));
        }
        if self.expansions == 0 || self.max_steps == 0 {
            return Err(SearchError::Config(
                "expansions and max steps must be at least 1".into(),
            ));
        }
        Ok(())
    }

    fn max_n(&self) -> usize {
        self.ns.iter().copied().max().unwrap_or(1)
    }

    fn scored_sampling(&self) -> bool {
        self.strategies
            .iter()
            .any(|s| s.selection().is_some_and(|x| x.needs_scores()))
    }

    fn any_sampling(&self) -> bool {
        self.strategies.iter().any(|s| s.selection().is_some())
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

/// A finished unit's result, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "unit", rename_all = "snake_case")]
pub enum UnitResult {
    /// `max(n)` samples of one problem, with what the draw cost.
    Samples {
        problem_id: String,
        samples: Vec<Sample>,
        policy_calls: u64,
    },
    /// One tree search.
    Tree {
        strategy: ScaleStrategy,
        n: usize,
        outcome: Box<Outcome>,
    },
}

impl UnitResult {
    pub fn problem_id(&self) -> &str {
        match self {
            Self::Samples { problem_id, .. } => problem_id,
            Self::Tree { outcome, .. } => &outcome.problem_id,
        }
    }
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
        config.validate()?;
        if config.strategies.iter().any(|s| s.needs_scorer()) && ctx.scorer.is_none() {
            let s = config
                .strategies
                .iter()
                .find(|s| s.needs_scorer())
                .map_or("", |s| s.name());
            return Err(SearchError::NeedsScorer {
                strategy: s.to_string(),
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
    pub async fn run(&self, unit: &Unit) -> Result<UnitResult, SearchError> {
        match *unit {
            Unit::Samples { problem } => {
                let p = &self.problems[problem];
                let s = Sampling::majority(self.config.max_n());
                let mut ledger = Ledger::new(p, &Budget::unlimited(), "scale-samples");
                let samples = s
                    .draw(&mut ledger, &self.ctx, self.config.scored_sampling())
                    .await?;
                Ok(UnitResult::Samples {
                    problem_id: p.id.clone(),
                    samples,
                    policy_calls: ledger.spent.policy_calls,
                })
            }
            Unit::Tree {
                problem,
                strategy,
                n,
            } => {
                let p = &self.problems[problem];
                let st = strategy.build(n, self.config.expansions, self.config.max_steps);
                let mut outcome = st.solve(p, &Budget::unlimited(), &self.ctx).await?;
                // the trace is for `solve`; the table needs only answers and costs
                outcome.trace.events.clear();
                Ok(UnitResult::Tree {
                    strategy,
                    n,
                    outcome: Box::new(outcome),
                })
            }
        }
    }
}

/// One cell of the table: a strategy at a budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScaleRow {
    /// Strategy name, or `pass@N` for the ceiling.
    pub strategy: String,
    pub n: usize,
    pub problems: usize,
    pub correct: usize,
    /// Mean generated tokens per problem, policy + judges.
    pub mean_tokens: f64,
    pub mean_policy_tokens: f64,
    pub mean_judge_tokens: f64,
    /// Mean calls per problem, policy + judges.
    pub mean_calls: f64,
}

impl ScaleRow {
    pub fn accuracy(&self) -> f64 {
        if self.problems == 0 {
            0.0
        } else {
            self.correct as f64 / self.problems as f64
        }
    }
}

fn is_correct(problem: &Problem, answer: Option<&str>, opts: &stepwise_verify::Options) -> bool {
    stepwise_verify::answer_correct(problem.gold.as_deref(), answer, opts).unwrap_or(false)
}

/// The cost of the first `n` samples of a draw.
fn prefix_spent(samples: &[Sample], policy_calls: u64, scored: bool) -> Spent {
    let mut s = Spent {
        policy_calls,
        ..Spent::default()
    };
    for x in samples {
        s.policy_tokens += x.tokens;
        s.policy_prompt_tokens += x.prompt_tokens;
        if scored {
            let w = s.wall_ms;
            s += x.judge;
            s.wall_ms = w;
        }
    }
    s
}

#[derive(Default)]
struct Acc {
    problems: usize,
    correct: usize,
    spent: Spent,
}

impl Acc {
    fn add(&mut self, correct: bool, spent: Spent) {
        self.problems += 1;
        self.correct += usize::from(correct);
        self.spent += spent;
    }

    fn row(&self, strategy: &str, n: usize) -> ScaleRow {
        let d = self.problems.max(1) as f64;
        ScaleRow {
            strategy: strategy.to_string(),
            n,
            problems: self.problems,
            correct: self.correct,
            mean_tokens: self.spent.generated_tokens() as f64 / d,
            mean_policy_tokens: self.spent.policy_tokens as f64 / d,
            mean_judge_tokens: self.spent.judge_tokens as f64 / d,
            mean_calls: self.spent.calls() as f64 / d,
        }
    }
}

/// Tabulates finished units: one row per strategy and `n`, plus `pass@N` rows (the
/// ceiling: some sample among the first `n` is right; its cost is that of the samples).
/// Problems whose units are missing are left out of the cells that need them.
pub fn summarize(
    config: &ScaleConfig,
    problems: &[Problem],
    results: &[UnitResult],
    opts: &stepwise_verify::Options,
) -> Vec<ScaleRow> {
    let by_id: std::collections::HashMap<&str, &Problem> =
        problems.iter().map(|p| (p.id.as_str(), p)).collect();
    let mut rows = Vec::new();
    let scored = config.scored_sampling();
    for &st in &config.strategies {
        for &n in &config.ns {
            let mut acc = Acc::default();
            for r in results {
                let Some(p) = by_id.get(r.problem_id()) else {
                    continue;
                };
                match (r, st.selection()) {
                    (
                        UnitResult::Samples {
                            samples,
                            policy_calls,
                            ..
                        },
                        Some(sel),
                    ) => {
                        let k = n.min(samples.len());
                        let first = &samples[..k];
                        let (answer, _) = select(sel, first, opts);
                        let spent =
                            prefix_spent(first, *policy_calls, sel.needs_scores() && scored);
                        acc.add(is_correct(p, answer.as_deref(), opts), spent);
                    }
                    (
                        UnitResult::Tree {
                            strategy,
                            n: m,
                            outcome,
                        },
                        None,
                    ) if *strategy == st && *m == n => {
                        acc.add(
                            is_correct(p, outcome.answer.as_deref(), opts),
                            outcome.spent,
                        );
                    }
                    _ => {}
                }
            }
            if acc.problems > 0 {
                rows.push(acc.row(st.name(), n));
            }
        }
    }
    if config.any_sampling() {
        for &n in &config.ns {
            let mut acc = Acc::default();
            for r in results {
                if let UnitResult::Samples {
                    samples,
                    policy_calls,
                    problem_id,
                } = r
                    && let Some(p) = by_id.get(problem_id.as_str())
                {
                    let first = &samples[..n.min(samples.len())];
                    let any = first
                        .iter()
                        .any(|s| is_correct(p, s.rationale.answer.as_deref(), opts));
                    acc.add(any, prefix_spent(first, *policy_calls, false));
                }
            }
            if acc.problems > 0 {
                rows.push(acc.row("pass@N", n));
            }
        }
    }
    rows
}

/// The table as Markdown.
pub fn markdown_table(rows: &[ScaleRow]) -> String {
    let mut s = String::from(
        "| strategy | N | accuracy | correct / problems | mean tokens (policy + judge) | policy | judge | calls |\n|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {:.1}% | {}/{} | {:.1} | {:.1} | {:.1} | {:.1} |\n",
            r.strategy,
            r.n,
            100.0 * r.accuracy(),
            r.correct,
            r.problems,
            r.mean_tokens,
            r.mean_policy_tokens,
            r.mean_judge_tokens,
            r.mean_calls
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
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
                let out = st
                    .build(row.n, 2, 4)
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
    async fn tree_units_and_needs_scorer() {
        let r = runner("beam", &[2, 4]);
        let units = r.units();
        assert_eq!(
            units.iter().map(|u| u.0.as_str()).collect::<Vec<_>>(),
            ["a/beam/n=2", "a/beam/n=4", "b/beam/n=2", "b/beam/n=4"]
        );
        let res = r.run(&units[1].1).await.unwrap();
        let UnitResult::Tree { outcome, .. } = &res else {
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
