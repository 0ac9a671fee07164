//! Boundary types of `scale` runs: the strategies on the compute axis, the experiment's
//! shape, and one stored unit (a draw of samples, or one tree search).

use crate::RunKind;
use crate::kinds::solve::{Outcome, Sample, SearchSettings, Selection, select};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use stepwise_core::{Problem, Spent};

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
    /// Critique-and-refine; its `n` is the number of critique rounds.
    #[serde(rename = "critique-refine")]
    CritiqueRefine,
}

impl ScaleStrategy {
    pub const ALL: [ScaleStrategy; 8] = [
        Self::Majority,
        Self::Weighted,
        Self::Bon,
        Self::Beam,
        Self::Vbeam,
        Self::Dvts,
        Self::Mcts,
        Self::CritiqueRefine,
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
            Self::CritiqueRefine => "critique-refine",
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

    /// Whether the strategy needs a scorer (critique-refine's critic is a model, not a
    /// step scorer).
    pub fn needs_scorer(self) -> bool {
        !matches!(self, Self::Majority | Self::CritiqueRefine)
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
            "critique" | "refine" | "critique_refine" => "critique-refine",
            other => other,
        };
        Self::ALL
            .into_iter()
            .find(|x| x.name() == t)
            .ok_or_else(|| format!("unknown strategy '{s}' (expected majority, weighted, bon, beam, vbeam, dvts, mcts or critique-refine)"))
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
    /// Checks the shape: some strategies, positive budgets, expansions and steps.
    pub fn validate(&self) -> Result<(), String> {
        if self.strategies.is_empty() {
            return Err("no strategies given".into());
        }
        if self.ns.is_empty() || self.ns.contains(&0) {
            return Err("budgets (n) must be a non-empty list of positive numbers".into());
        }
        if self.expansions == 0 || self.max_steps == 0 {
            return Err("expansions and max steps must be at least 1".into());
        }
        Ok(())
    }

    /// The largest budget: how many samples one draw holds.
    pub fn max_n(&self) -> usize {
        self.ns.iter().copied().max().unwrap_or(1)
    }

    /// Whether some sampling strategy reads step scores (the draw is scored).
    pub fn scored_sampling(&self) -> bool {
        self.strategies
            .iter()
            .any(|s| s.selection().is_some_and(|x| x.needs_scores()))
    }

    /// Whether some strategy is a sampling strategy (the run draws samples).
    pub fn any_sampling(&self) -> bool {
        self.strategies.iter().any(|s| s.selection().is_some())
    }
}

/// A finished unit's result, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "unit", rename_all = "snake_case")]
pub enum ScaleRecord {
    /// `max(n)` samples of one problem, with what the draw cost.
    Samples {
        problem_id: String,
        samples: Vec<Sample>,
        policy_calls: u64,
        /// What the prompt program asked, and what building it cost (counted once per
        /// draw in every cell of the problem); absent without `--prompting`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prompt: Option<Box<crate::kinds::prompting::BuiltPrompt>>,
        /// Every pair of the draw judged by the pairwise selector of best-of-N
        /// (`--select pairwise-*`); absent otherwise.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pairwise: Option<Box<crate::kinds::pairwise::PairwiseDraw>>,
    },
    /// One tree search.
    Tree {
        strategy: ScaleStrategy,
        n: usize,
        outcome: Box<Outcome>,
    },
}

impl ScaleRecord {
    pub fn problem_id(&self) -> &str {
        match self {
            Self::Samples { problem_id, .. } => problem_id,
            Self::Tree { outcome, .. } => &outcome.problem_id,
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

/// Whether `answer` is right for `problem` by the checker it names (no gold, no answer:
/// wrong).
pub fn is_correct(
    problem: &Problem,
    answer: Option<&str>,
    opts: &stepwise_verify::Options,
) -> bool {
    crate::answer_correct(problem, answer, opts).unwrap_or(false)
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

/// What building a draw's prompt cost (none without a prompt program).
fn prompt_spent(prompt: &Option<Box<crate::kinds::prompting::BuiltPrompt>>) -> Spent {
    prompt.as_ref().map_or(Spent::default(), |p| p.spent)
}

/// Sums of one table cell (public so tests elsewhere can build cells the same way).
#[derive(Default)]
pub struct Acc {
    problems: usize,
    correct: usize,
    spent: Spent,
}

impl Acc {
    /// Adds one problem's result.
    pub fn add(&mut self, correct: bool, spent: Spent) {
        self.problems += 1;
        self.correct += usize::from(correct);
        self.spent += spent;
    }

    /// The cell as a table row.
    pub fn row(&self, strategy: &str, n: usize) -> ScaleRow {
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
    results: &[ScaleRecord],
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
                        ScaleRecord::Samples {
                            samples,
                            policy_calls,
                            prompt,
                            pairwise,
                            ..
                        },
                        Some(sel),
                    ) => {
                        let k = n.min(samples.len());
                        let first = &samples[..k];
                        let (answer, spent) = match pairwise {
                            // best-of-N by pairwise verdicts: the method replayed over
                            // the first k, charged the pairs it used
                            Some(pw) if sel == Selection::BestOfN => {
                                let picked = crate::kinds::pairwise::pick(pw.method, k, &pw.pairs);
                                let answer = picked
                                    .chosen
                                    .and_then(|i| first.get(i))
                                    .and_then(|s| s.rationale.answer.clone());
                                let judged =
                                    crate::kinds::pairwise::used_spent(&pw.pairs, &picked.used);
                                (answer, prefix_spent(first, *policy_calls, false) + judged)
                            }
                            _ => (
                                select(sel, first, opts).0,
                                prefix_spent(first, *policy_calls, sel.needs_scores() && scored),
                            ),
                        };
                        acc.add(
                            is_correct(p, answer.as_deref(), opts),
                            spent + prompt_spent(prompt),
                        );
                    }
                    (
                        ScaleRecord::Tree {
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
                if let ScaleRecord::Samples {
                    samples,
                    policy_calls,
                    problem_id,
                    prompt,
                    ..
                } = r
                    && let Some(p) = by_id.get(problem_id.as_str())
                {
                    let first = &samples[..n.min(samples.len())];
                    let any = first
                        .iter()
                        .any(|s| is_correct(p, s.rationale.answer.as_deref(), opts));
                    acc.add(
                        any,
                        prefix_spent(first, *policy_calls, false) + prompt_spent(prompt),
                    );
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

/// Everything that decides a `scale` run's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScaleJobConfig {
    /// Dataset spec (`arith:ops=1,n=20`, `gsm8k:test`, a file).
    pub dataset: String,
    pub limit: Option<usize>,
    pub scale: ScaleConfig,
    /// The policy backend's name.
    pub policy: String,
    /// Whether the policy (and judge) backends were reproducible
    /// (`Generator::reproducible`): a resumed run then equals an uninterrupted one byte for
    /// byte. Runs made before it existed read as `false` (they were not).
    #[serde(default)]
    pub reproducible: bool,
    pub search: SearchSettings,
}

/// `scale` runs: units `{problem}/samples` and `{problem}/{strategy}/n={n}`.
pub struct Scale;

impl RunKind for Scale {
    const KIND: &'static str = "scale";
    const VERSION: u32 = 2;
    type Config = ScaleJobConfig;
    type Record = ScaleRecord;
}
