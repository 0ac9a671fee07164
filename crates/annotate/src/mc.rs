//! Math-Shepherd Monte-Carlo labels (Wang et al. 2024).
//!
//! For each sampled solution and each step `i`, `k` rollouts continue the prefix
//! `steps[..=i]`; the soft label is the fraction that reach the gold answer and the hard
//! label is "at least one did". The last step of a solution that states a final answer is
//! labelled by that answer itself (a complete solution has exactly one completion: itself),
//! so it costs no rollouts.

use crate::policy::Policy;
use crate::{LabelledSolution, Method, QuestionResult, Result, StepLabel, mix_seed};
use serde::{Deserialize, Serialize};
use stepwise_core::{Problem, Spent};

/// Settings of the `mc` method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct McConfig {
    /// Rollouts per step prefix.
    pub k: usize,
}

impl Default for McConfig {
    fn default() -> Self {
        Self { k: 8 }
    }
}

/// A sampled solution to label.
#[derive(Debug, Clone, PartialEq)]
pub struct Solution {
    pub sample: u32,
    pub steps: Vec<String>,
    pub answer: Option<String>,
    pub correct: bool,
}

impl Solution {
    /// This sampled solution of `problem` with its step labels.
    pub fn labelled(&self, problem: &Problem, labels: Vec<StepLabel>) -> LabelledSolution {
        LabelledSolution {
            problem_id: problem.id.clone(),
            question: problem.question.clone(),
            gold: problem.gold.clone(),
            sample: self.sample,
            steps: self.steps.clone(),
            labels,
            answer_correct: Some(self.correct),
        }
    }
}

/// Samples `n` solutions of `problem` (the rollouts from the empty prefix, one per
/// returned solution); adds their cost to `spent`.
pub async fn sample_solutions(
    policy: &Policy,
    problem: &Problem,
    n: usize,
    seed: u64,
    spent: &mut Spent,
) -> Result<Vec<Solution>> {
    let rs = policy
        .rollouts(problem, &[], n, mix_seed(seed, "solutions"), spent)
        .await?;
    Ok(rs
        .into_iter()
        .enumerate()
        .map(|(i, r)| Solution {
            sample: i as u32,
            steps: r.steps,
            answer: r.answer,
            correct: r.correct,
        })
        .collect())
}

/// The per-question result every per-solution method builds: the sampled solutions'
/// cost, then each solution's labels added in order.
pub(crate) struct Tally<'p> {
    problem: &'p Problem,
    spent: Spent,
    rollouts: u64,
    abstained: u64,
    solutions: Vec<LabelledSolution>,
}

impl<'p> Tally<'p> {
    /// Samples `samples` solutions of `problem` (one rollout each) to label.
    pub(crate) async fn sample(
        policy: &Policy,
        problem: &'p Problem,
        samples: usize,
        seed: u64,
    ) -> Result<(Vec<Solution>, Tally<'p>)> {
        let mut spent = Spent::default();
        let sols = sample_solutions(policy, problem, samples, seed, &mut spent).await?;
        let tally = Tally {
            problem,
            spent,
            rollouts: sols.len() as u64,
            abstained: 0,
            solutions: Vec::with_capacity(sols.len()),
        };
        Ok((sols, tally))
    }

    /// Adds what labelling `s` cost and made: `rollouts` beyond those counted in
    /// `labels` (`None`: the method left the solution out).
    pub(crate) fn add(
        &mut self,
        s: &Solution,
        labels: Option<Vec<StepLabel>>,
        spent: Spent,
        rollouts: u64,
    ) {
        self.spent += spent;
        self.rollouts += rollouts;
        if let Some(labels) = labels {
            self.solutions.push(s.labelled(self.problem, labels));
        }
    }

    /// Counts `n` steps a judge gave no verdict for (left unlabelled).
    pub(crate) fn abstain(&mut self, n: u64) {
        self.abstained += n;
    }

    /// Adds labels whose rollouts are all counted in the labels themselves.
    pub(crate) fn add_counted(&mut self, s: &Solution, labels: Vec<StepLabel>, spent: Spent) {
        let n = labels.iter().map(|l| u64::from(l.rollouts)).sum();
        self.add(s, Some(labels), spent, n);
    }

    pub(crate) fn finish(self, method: Method) -> QuestionResult {
        QuestionResult {
            problem_id: self.problem.id.clone(),
            method,
            solutions: self.solutions,
            prefixes: Vec::new(),
            spent: self.spent,
            rollouts: self.rollouts,
            abstained: self.abstained,
        }
    }
}

/// MC labels of every step of `solution`, and what they cost. Every rollout made is
/// counted in its step's label ([`StepLabel::rollouts`]).
pub async fn label_solution(
    policy: &Policy,
    problem: &Problem,
    solution: &Solution,
    cfg: &McConfig,
    seed: u64,
) -> Result<(Vec<StepLabel>, Spent)> {
    let n = solution.steps.len();
    let futs = (0..n).map(|i| {
        let prefix = &solution.steps[..=i];
        let last = i + 1 == n && solution.answer.is_some();
        async move {
            let mut spent = Spent::default();
            if last {
                let c = u32::from(solution.correct);
                return Ok::<_, crate::AnnotateError>((
                    StepLabel::from_mc(c, 1).with_rollouts(0),
                    spent,
                ));
            }
            let tag = format!("mc/{}/{i}", solution.sample);
            let rs = policy
                .rollouts(problem, prefix, cfg.k, mix_seed(seed, &tag), &mut spent)
                .await?;
            let correct = rs.iter().filter(|r| r.correct).count() as u32;
            Ok((StepLabel::from_mc(correct, rs.len() as u32), spent))
        }
    });
    let mut labels = Vec::with_capacity(n);
    let mut spent = Spent::default();
    for r in futures::future::join_all(futs).await {
        let (l, c) = r?;
        labels.push(l);
        spent += c;
    }
    Ok((labels, spent))
}

/// Math-Shepherd labels of `samples` sampled solutions of `problem`.
pub async fn label(
    policy: &Policy,
    problem: &Problem,
    samples: usize,
    cfg: &McConfig,
    seed: u64,
) -> Result<QuestionResult> {
    let (sols, mut tally) = Tally::sample(policy, problem, samples, seed).await?;
    for s in &sols {
        let (labels, c) = label_solution(policy, problem, s, cfg, seed).await?;
        tally.add_counted(s, labels, c);
    }
    Ok(tally.finish(Method::Mc))
}
