//! Strategies over independent samples: majority vote, weighted self-consistency, best-of-N.

use crate::{
    Context, Ledger, Outcome, Sample, SearchError, Selection, Strategy, sample_of, select,
};
use async_trait::async_trait;
use stepwise_core::{Budget, Problem, TraceEvent};

/// `n` independent samples, then a [`Selection`].
#[derive(Debug, Clone, PartialEq)]
pub struct Sampling {
    pub n: usize,
    pub selection: Selection,
}

impl Sampling {
    pub fn majority(n: usize) -> Self {
        Self {
            n,
            selection: Selection::Majority,
        }
    }
    pub fn weighted(n: usize) -> Self {
        Self {
            n,
            selection: Selection::Weighted,
        }
    }
    pub fn best_of_n(n: usize) -> Self {
        Self {
            n,
            selection: Selection::BestOfN,
        }
    }

    /// Draws up to `n` whole samples (fewer if the budget runs out) and, when the
    /// selection needs them, scores them. Sample `i` is the same whatever `n` is (the
    /// first call uses the base seed), so the samples for `n` are the first `n` of a larger draw.
    pub(crate) async fn draw(
        &self,
        ledger: &mut Ledger<'_>,
        ctx: &Context,
        score: bool,
    ) -> Result<Vec<Sample>, SearchError> {
        if self.n == 0 {
            return Err(SearchError::Config("n must be at least 1".into()));
        }
        let Some(max_tokens) = ledger.allowance(self.n, ctx.sampling.max_tokens) else {
            return Ok(Vec::new());
        };
        let outs = ledger
            .generate(
                ctx,
                "",
                self.n,
                max_tokens,
                ctx.sampling.temperature,
                ctx.stop.clone(),
            )
            .await?;
        let mut samples: Vec<Sample> = outs.iter().map(|c| sample_of(ctx, "", c)).collect();
        ledger.trace.push(TraceEvent::Expand {
            node: 0,
            children: (1..=samples.len()).collect(),
            tokens: outs.iter().map(|c| c.generated_tokens).sum(),
        });
        if score {
            let scorer = ctx.scorer(self.selection.name())?.clone();
            for (i, s) in samples.iter_mut().enumerate() {
                let sc = scorer
                    .score_rationale(ledger.problem, &s.rationale)
                    .await
                    .map_err(|e| ledger.score_err(e))?;
                ledger.add_judge(sc.spent);
                s.judge = sc.spent;
                s.score = Some(ctx.aggregation.apply_scores(&sc.scores).unwrap_or(0.0));
                ledger.trace.push(TraceEvent::Score {
                    node: i + 1,
                    score: s.score.unwrap_or(0.0),
                    tokens: sc.spent.generated_tokens(),
                });
                s.scores = sc.scores;
            }
        }
        Ok(samples)
    }
}

#[async_trait]
impl Strategy for Sampling {
    fn name(&self) -> String {
        format!("{}(n={})", self.selection.name(), self.n)
    }

    async fn solve(
        &self,
        problem: &Problem,
        budget: &Budget,
        ctx: &Context,
    ) -> Result<Outcome, SearchError> {
        let by_pairs = self.selection == Selection::BestOfN && ctx.pairwise.is_some();
        let score = self.selection.needs_scores() && !by_pairs;
        if score {
            ctx.scorer(self.selection.name())?;
        }
        let mut ledger = Ledger::new(problem, budget, &self.name());
        let samples = self.draw(&mut ledger, ctx, score).await?;
        let (answer, chosen) = match &ctx.pairwise {
            Some(judge) if by_pairs => pick_by_pairs(judge, &mut ledger, &samples).await?,
            _ => select(self.selection, &samples, &ctx.verify),
        };
        ledger.trace.push(TraceEvent::Select {
            node: chosen.map_or(0, |c| c + 1),
            answer: answer.clone(),
        });
        Ok(ledger.finish(self.name(), answer, chosen, samples))
    }
}

/// Best-of-N by a pairwise judge: plays its method over the samples (in sample order),
/// charges every judgment to the ledger's judge columns and writes the matches (or the
/// Bradley–Terry strengths) into the trace.
async fn pick_by_pairs(
    judge: &stepwise_score::PairwiseJudge,
    ledger: &mut Ledger<'_>,
    samples: &[Sample],
) -> Result<(Option<String>, Option<usize>), SearchError> {
    let texts: Vec<&str> = samples.iter().map(|s| s.text.as_str()).collect();
    let sel = judge
        .select(ledger.problem, &texts)
        .await
        .map_err(|e| ledger.score_err(e))?;
    ledger.add_judge(sel.spent);
    let abstained: usize = sel.pairs.iter().map(|p| p.abstained()).sum();
    let judgments: usize = sel.pairs.iter().map(|p| p.orders.len()).sum();
    let method = judge.settings.method.name();
    if let Some(b) = &sel.picked.bracket {
        for (r, round) in b.rounds.iter().enumerate() {
            for m in &round.matches {
                let share = m
                    .share
                    .map_or("no verdict".to_string(), |s| format!("{s:.2}"));
                ledger.trace.note(format!(
                    "{method} round {}: {} vs {} -> {} (share of {}: {share})",
                    r + 1,
                    m.a,
                    m.b,
                    m.winner,
                    m.a
                ));
            }
            if let Some(bye) = round.bye {
                ledger
                    .trace
                    .note(format!("{method} round {}: bye {bye}", r + 1));
            }
        }
    } else {
        let strengths: Vec<String> = sel
            .picked
            .strengths
            .iter()
            .map(|s| format!("{s:.4}"))
            .collect();
        ledger
            .trace
            .note(format!("{method} strengths [{}]", strengths.join(", ")));
    }
    ledger.trace.note(format!(
        "{method}: {} pair(s), {judgments} judgment(s), {abstained} abstained",
        sel.pairs.len()
    ));
    let chosen = sel.picked.chosen;
    Ok((
        chosen
            .and_then(|i| samples.get(i))
            .and_then(|s| s.rationale.answer.clone()),
        chosen,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use stepwise_model::scripted::ScriptedGenerator;
    use stepwise_score::{ArithScorer, OutcomeScorer};

    /// Sample answers by index: a right claim "3 + 4 = 7" or a wrong one.
    fn policy(answers: &'static [i32]) -> Arc<ScriptedGenerator> {
        Arc::new(ScriptedGenerator::new(move |_, i| {
            let a = answers[i % answers.len()];
            format!("3 + 4 = {a}\n\nThe answer is {a}.\nQuestion: next one? The answer is 99.")
        }))
    }

    fn problem() -> Problem {
        Problem::new("p", "What is 3 + 4?").with_gold("7")
    }

    #[tokio::test]
    async fn majority_counts_and_cuts() {
        let ctx = Context::new(policy(&[8, 7, 8, 7, 7]));
        let out = Sampling::majority(5)
            .solve(&problem(), &Budget::unlimited(), &ctx)
            .await
            .unwrap();
        assert_eq!(out.answer.as_deref(), Some("7"));
        assert_eq!(out.chosen, Some(1));
        // the chatter after the answer line is cut from the text but its tokens count
        assert!(out.samples[0].text.ends_with("The answer is 8."));
        assert_eq!(out.spent.policy_tokens, 5 * 16);
        assert_eq!(out.spent.policy_calls, 1);
        assert_eq!(out.spent.judge_tokens, 0);
        // 2 of each: a tie in votes goes to the answer seen first
        let ctx = Context::new(policy(&[8, 7, 7, 8]));
        let out = Sampling::majority(4)
            .solve(&problem(), &Budget::unlimited(), &ctx)
            .await
            .unwrap();
        assert_eq!(out.answer.as_deref(), Some("8"));
    }

    #[tokio::test]
    async fn best_of_n_and_weighted_use_the_checker() {
        // three wrong samples agree on 8, one right sample says 7
        let ctx = Context::new(policy(&[8, 8, 7, 8])).with_scorer(Arc::new(ArithScorer::default()));
        let mut ctx = ctx;
        ctx.aggregation = stepwise_core::Aggregation::Min;
        let maj = Sampling::majority(4)
            .solve(&problem(), &Budget::unlimited(), &ctx)
            .await
            .unwrap();
        assert_eq!(maj.answer.as_deref(), Some("8"));
        let bon = Sampling::best_of_n(4)
            .solve(&problem(), &Budget::unlimited(), &ctx)
            .await
            .unwrap();
        assert_eq!(bon.answer.as_deref(), Some("7"));
        assert_eq!(bon.chosen, Some(2));
        assert_eq!(bon.samples[2].score, Some(0.5)); // min(1, unchecked 0.5)
        // weighted: 8 gets 3 x min(0, .5) = 0, 7 gets 0.5
        let w = Sampling::weighted(4)
            .solve(&problem(), &Budget::unlimited(), &ctx)
            .await
            .unwrap();
        assert_eq!(w.answer.as_deref(), Some("7"));
        assert_eq!(w.spent.judge_tokens, 0);
    }

    #[tokio::test]
    async fn self_prm_reranks_best_of_n() {
        // Self-PRM (Feng et al. 2025): the policy rates each of its whole solutions; its
        // P(Yes) is 0.9 for a solution answering 7, else 0.2
        let g = Arc::new(
            ScriptedGenerator::new(|_, i| {
                let a = [8, 7, 9][i % 3];
                format!("3 + 4 = {a}\n\nThe answer is {a}.")
            })
            .with_judge(|p, _, _| {
                let text = match p {
                    stepwise_model::Prompt::Chat(m) => {
                        m.iter().map(|m| m.content.clone()).collect::<String>()
                    }
                    stepwise_model::Prompt::Text(t) => t.clone(),
                };
                assert!(text.contains("Is this solution correct?"), "{text}");
                let y: f32 = if text.contains("Final answer: 7") {
                    0.9
                } else {
                    0.2
                };
                vec![Some(y.ln()), None, Some((1.0 - y).ln()), None]
            }),
        );
        let scorer = stepwise_score::build_scorer(
            "self-prm",
            Some(g.clone()),
            None,
            &stepwise_score::ScorerSettings::default(),
        )
        .unwrap();
        let ctx = Context::new(g.clone()).with_scorer(scorer);
        let out = Sampling::best_of_n(3)
            .solve(&problem(), &Budget::unlimited(), &ctx)
            .await
            .unwrap();
        assert_eq!(out.answer.as_deref(), Some("7"));
        assert_eq!(out.chosen, Some(1));
        assert!((out.samples[1].score.unwrap() - 0.9).abs() < 1e-6);
        assert!((out.samples[0].score.unwrap() - 0.2).abs() < 1e-6);
        // one rating per solution (not per step): 3 judge calls, 1 policy call of 3 x 9 words
        assert_eq!(out.spent.judge_calls, 3);
        assert_eq!(out.spent.policy_calls, 1);
        assert_eq!(out.spent.policy_tokens, 27);
        assert!(out.spent.judge_prompt_tokens > 0);
        assert_eq!(g.calls(), 4);
    }

    #[tokio::test]
    async fn needs_a_scorer_and_respects_budget() {
        let ctx = Context::new(policy(&[7]));
        let e = Sampling::best_of_n(2)
            .solve(&problem(), &Budget::unlimited(), &ctx)
            .await
            .unwrap_err();
        assert!(matches!(e, SearchError::NeedsScorer { .. }));
        // 4 samples within 20 tokens: each may generate at most 5
        let out = Sampling::majority(4)
            .solve(&problem(), &Budget::tokens(20), &ctx)
            .await
            .unwrap();
        assert_eq!(out.spent.policy_tokens, 20);
        assert!(out.samples.iter().all(|s| s.tokens == 5));
        let ctx = Context::new(policy(&[7])).with_scorer(Arc::new(OutcomeScorer::default()));
        let out = Sampling::best_of_n(2)
            .solve(&problem(), &Budget::unlimited(), &ctx)
            .await
            .unwrap();
        assert_eq!(out.samples[0].score, Some(1.0));
    }

    /// A pairwise judge that prefers the solution saying 7 (it cannot decide between two
    /// that both do or both do not).
    fn pairwise_judge(
        method: stepwise_jobs::kinds::pairwise::PairwiseMethod,
    ) -> (Arc<ScriptedGenerator>, Arc<stepwise_score::PairwiseJudge>) {
        let g = Arc::new(ScriptedGenerator::new(|req, _| {
            let stepwise_model::Prompt::Chat(m) = &req.prompt else {
                return String::new();
            };
            let u = &m[m.len() - 1].content;
            let a = u.contains("[Solution A]\n3 + 4 = 7");
            let b = u.contains("[Solution B]\n3 + 4 = 7");
            match (a, b) {
                (true, false) => "A is right. [[A]]".into(),
                (false, true) => "B is right. [[B]]".into(),
                _ => "unsure".into(),
            }
        }));
        let settings = stepwise_jobs::kinds::pairwise::PairwiseSettings {
            method,
            ..Default::default()
        };
        let j = stepwise_score::PairwiseJudge::new(g.clone(), settings).unwrap();
        (g, Arc::new(j))
    }

    #[tokio::test]
    async fn best_of_n_by_pairwise_knockout_and_bradley_terry() {
        use stepwise_jobs::kinds::pairwise::PairwiseMethod;
        // samples say 8, 9, 6, 7, 5: only 3 is right, and no scorer is needed
        let (judge, pw) = pairwise_judge(PairwiseMethod::Knockout);
        let mut ctx = Context::new(policy(&[8, 9, 6, 7, 5]));
        ctx.pairwise = Some(pw);
        let out = Sampling::best_of_n(5)
            .solve(&problem(), &Budget::unlimited(), &ctx)
            .await
            .unwrap();
        assert_eq!((out.answer.as_deref(), out.chosen), (Some("7"), Some(3)));
        let notes: Vec<String> = out
            .trace
            .events
            .iter()
            .filter_map(|e| match e {
                TraceEvent::Note { message } => Some(message.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(
            notes,
            [
                "pairwise-knockout round 1: 0 vs 1 -> 0 (share of 0: no verdict)",
                "pairwise-knockout round 1: 2 vs 3 -> 3 (share of 2: 0.00)",
                "pairwise-knockout round 1: bye 4",
                "pairwise-knockout round 2: 0 vs 3 -> 3 (share of 0: 0.00)",
                "pairwise-knockout round 2: bye 4",
                "pairwise-knockout round 3: 3 vs 4 -> 3 (share of 3: 1.00)",
                "pairwise-knockout: 4 pair(s), 8 judgment(s), 2 abstained",
            ]
        );
        // the judge's 8 calls in the judge columns, the policy's one call apart
        let words = stepwise_model::scripted::count_tokens;
        assert_eq!(judge.requests().len(), 8);
        assert_eq!(out.spent.judge_calls, 8);
        assert_eq!(
            out.spent.judge_tokens,
            2 * words("unsure") + 3 * (words("A is right. [[A]]") + words("B is right. [[B]]"))
        );
        assert_eq!(
            (out.spent.policy_calls, out.spent.policy_tokens),
            (1, 5 * 16)
        );
        // Bradley-Terry over 3 samples (8, 7, 9): 1 beats 0 and 2, 0-2 undecided ->
        // strengths (1, 11, 1)/13 (pseudo-count 0.1; see core::ranking)
        let (judge, pw) = pairwise_judge(PairwiseMethod::BradleyTerry);
        let mut ctx = Context::new(policy(&[8, 7, 9]));
        ctx.pairwise = Some(pw);
        let out = Sampling::best_of_n(3)
            .solve(&problem(), &Budget::unlimited(), &ctx)
            .await
            .unwrap();
        assert_eq!(out.chosen, Some(1));
        assert!(out.trace.events.iter().any(|e| matches!(e,
            TraceEvent::Note { message } if message == "pairwise-bt strengths [0.0769, 0.8462, 0.0769]")));
        assert_eq!((judge.requests().len(), out.spent.judge_calls), (6, 6));
    }
}
