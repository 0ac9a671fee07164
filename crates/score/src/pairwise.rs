//! The pairwise judge of Think-RM (Hong et al. 2025, "Think-RM: Enabling Long-Horizon
//! Reasoning in Generative Reward Models", arXiv:2505.16265): a judge model reads two
//! solutions of one problem, reasons at length, and states which is better.
//!
//! The prompt (`prompts/pairwise.txt`, placeholders `{question}`, `{solution_a}`,
//! `{solution_b}`) asks for the verdict as `[[A]]` or `[[B]]`, the form of the paper's
//! (and MT-Bench's) pairwise judges; the last such mark the judge writes is its verdict,
//! and a judgment without one abstains (counted in [`PairVerdict::abstained`], never a
//! win). A pair is judged in both orders by default (A/B, then B/A), which cancels the
//! judge's position bias: the pair's result is the mean over the orders that gave a
//! verdict ([`PairVerdict::share`]).
//!
//! Rankings from the verdicts are in [`stepwise_core::ranking`] (a knockout tournament,
//! the paper's way of picking among N; Bradley–Terry over all pairs); [`PairwiseJudge::select`]
//! plays them for best-of-N. Every judge token and call goes in the judge columns of
//! [`Spent`].

use crate::prompt::Template;
use crate::{ScoreError, generate_charged};
use std::sync::Arc;
use stepwise_core::ranking::{advance, match_winner, pairings};
use stepwise_core::{Problem, Spent};
use stepwise_jobs::kinds::pairwise::{PairVerdict, PairwiseMethod, PairwiseSettings, Picked, pick};
use stepwise_model::{GenerateRequest, Generator, Prompt, SamplingParams};

const PAIRWISE_DEFAULT: &str = include_str!("../prompts/pairwise.txt");

/// Placeholders a pairwise template may use.
pub const PAIRWISE_PLACEHOLDERS: [&str; 3] = ["question", "solution_a", "solution_b"];

/// Which solution a verdict names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    A,
    B,
}

/// The verdict in a judge's text: the last `[[A]]` or `[[B]]` it wrote (the judge may
/// quote the marks while it reasons; its final statement counts). `None`: it wrote
/// neither, and the judgment abstains.
pub fn read_verdict(text: &str) -> Option<Side> {
    let a = text.rfind("[[A]]");
    let b = text.rfind("[[B]]");
    match (a, b) {
        (Some(x), Some(y)) => Some(if x > y { Side::A } else { Side::B }),
        (Some(_), None) => Some(Side::A),
        (None, Some(_)) => Some(Side::B),
        (None, None) => None,
    }
}

/// The pairwise judge (see the module documentation).
pub struct PairwiseJudge {
    judge: Arc<dyn Generator>,
    template: Template,
    pub settings: PairwiseSettings,
    /// Base seed of the judgments (each pair and order gets its own, derived from it,
    /// the problem and the candidates' indices).
    pub seed: u64,
}

/// What pairwise selection did: the pick, every pair it judged, and what that cost.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Selected {
    pub picked: Picked,
    pub pairs: Vec<PairVerdict>,
    pub spent: Spent,
}

impl PairwiseJudge {
    /// A judge model (any [`Generator`]) with `settings`; its template is
    /// `settings.prompt`, else the built-in one (an error names the template's place).
    pub fn new(judge: Arc<dyn Generator>, settings: PairwiseSettings) -> Result<Self, ScoreError> {
        let template = match &settings.prompt {
            Some(text) => Template::parse(text, "pairwise prompt", &PAIRWISE_PLACEHOLDERS)?,
            None => Template::parse(
                PAIRWISE_DEFAULT,
                "built-in prompts/pairwise.txt",
                &PAIRWISE_PLACEHOLDERS,
            )?,
        };
        Ok(Self {
            judge,
            template,
            settings,
            seed: 0,
        })
    }

    /// The built-in template's text (to copy and edit).
    pub fn default_text() -> &'static str {
        PAIRWISE_DEFAULT
    }

    /// The prompt that shows `first` as Solution A and `second` as Solution B, and the
    /// text the judge's turn starts with.
    pub fn prompt(
        &self,
        problem: &Problem,
        first: &str,
        second: &str,
    ) -> Result<(Prompt, String), ScoreError> {
        self.template.render(&[
            ("question", &problem.question),
            ("solution_a", first.trim()),
            ("solution_b", second.trim()),
        ])
    }

    /// The seed of judging `(a, b)` in order `order` (0: `a` shown first).
    fn pair_seed(&self, problem: &Problem, a: usize, b: usize, order: u64) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in problem.id.bytes() {
            h ^= u64::from(byte);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        let pair = ((a as u64) << 33) ^ ((b as u64) << 1) ^ order;
        self.seed ^ h ^ pair.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    /// Judges candidates `a` and `b` (their texts `ta`, `tb`): `a` shown first, then, with
    /// [`PairwiseSettings::both_orders`], `b` shown first.
    pub async fn compare(
        &self,
        problem: &Problem,
        (a, ta): (usize, &str),
        (b, tb): (usize, &str),
    ) -> Result<PairVerdict, ScoreError> {
        let mut spent = Spent::default();
        let mut orders = Vec::with_capacity(2);
        let shown: &[(usize, &str, usize, &str)] = if self.settings.both_orders {
            &[(a, ta, b, tb), (b, tb, a, ta)]
        } else {
            &[(a, ta, b, tb)]
        };
        for (order, &(first, t1, second, t2)) in shown.iter().enumerate() {
            let (prompt, start) = self.prompt(problem, t1, t2)?;
            let req = GenerateRequest {
                prompt,
                assistant_prefix: start,
                params: SamplingParams {
                    n: 1,
                    temperature: self.settings.temperature,
                    max_tokens: self.settings.max_tokens,
                    seed: self.pair_seed(problem, a, b, order as u64),
                    ..SamplingParams::default()
                },
            };
            let outs = generate_charged(self.judge.as_ref(), &req, "pairwise", &mut spent).await?;
            let verdict = outs.first().and_then(|c| read_verdict(&c.text));
            if verdict.is_none() {
                tracing::debug!(problem = %problem.id, a, b, order, "pairwise: no verdict, abstains");
            }
            orders.push(verdict.map(|s| match s {
                Side::A => first,
                Side::B => second,
            }));
        }
        Ok(PairVerdict {
            a,
            b,
            orders,
            spent,
        })
    }

    /// Judges every pair `(i, j)`, `i < j`, of `texts` (what Bradley–Terry fits, and what
    /// a `scale` draw stores so every `n` can be replayed).
    pub async fn judge_all(
        &self,
        problem: &Problem,
        texts: &[&str],
    ) -> Result<Vec<PairVerdict>, ScoreError> {
        let mut pairs = Vec::new();
        for i in 0..texts.len() {
            for j in i + 1..texts.len() {
                pairs.push(self.compare(problem, (i, texts[i]), (j, texts[j])).await?);
            }
        }
        Ok(pairs)
    }

    /// Picks the best of `texts` by the settings' method: a knockout tournament (only
    /// the bracket's matches are judged, round by round) or Bradley–Terry over every pair.
    pub async fn select(&self, problem: &Problem, texts: &[&str]) -> Result<Selected, ScoreError> {
        let pairs = match self.settings.method {
            PairwiseMethod::BradleyTerry => self.judge_all(problem, texts).await?,
            PairwiseMethod::Knockout => {
                let mut pairs = Vec::new();
                let mut entrants: Vec<usize> = (0..texts.len()).collect();
                while entrants.len() > 1 {
                    let (round, bye) = pairings(&entrants);
                    let mut matches = Vec::with_capacity(round.len());
                    for (a, b) in round {
                        let v = self.compare(problem, (a, texts[a]), (b, texts[b])).await?;
                        let share = v.share();
                        matches.push(stepwise_core::ranking::Match {
                            a,
                            b,
                            share,
                            winner: match_winner(a, b, share),
                        });
                        pairs.push(v);
                    }
                    entrants = advance(&matches, bye);
                }
                pairs
            }
        };
        let picked = pick(self.settings.method, texts.len(), &pairs);
        let mut spent = Spent::default();
        for p in &pairs {
            spent += p.spent;
        }
        Ok(Selected {
            picked,
            pairs,
            spent,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stepwise_model::scripted::{ScriptedGenerator, count_tokens};

    fn user_text(p: &Prompt) -> String {
        match p {
            Prompt::Chat(m) => m.last().map(|m| m.content.clone()).unwrap_or_default(),
            Prompt::Text(t) => t.clone(),
        }
    }

    /// Solution A and B of a request (the text between the marks).
    fn shown(p: &Prompt) -> (String, String) {
        let u = user_text(p);
        let between = |open: &str, close: &str| {
            let s = u.find(open).map(|i| i + open.len()).unwrap_or(0);
            let e = u.find(close).unwrap_or(u.len());
            u[s..e].trim().to_string()
        };
        (
            between("[Solution A]", "[End of Solution A]"),
            between("[Solution B]", "[End of Solution B]"),
        )
    }

    #[test]
    fn reads_the_last_verdict_mark() {
        assert_eq!(read_verdict("so [[A]]"), Some(Side::A));
        assert_eq!(read_verdict("not [[A]] but\n[[B]]"), Some(Side::B));
        assert_eq!(read_verdict("[[B]] ... final: [[A]]"), Some(Side::A));
        assert_eq!(read_verdict("A is better"), None);
        assert_eq!(read_verdict("[A]"), None);
    }

    #[tokio::test]
    async fn both_orders_cancel_position_bias_and_abstentions_are_counted() {
        // A judge that always prefers whatever is shown first: both orders -> a split.
        let g = Arc::new(ScriptedGenerator::new(|_, _| "A looks fine. [[A]]".into()));
        let j = PairwiseJudge::new(g.clone(), PairwiseSettings::default()).unwrap();
        let p = Problem::new("p", "What is 3 + 4?");
        let v = j
            .compare(&p, (0, "3 + 4 = 8"), (1, "3 + 4 = 7"))
            .await
            .unwrap();
        assert_eq!(v.orders, [Some(0), Some(1)]);
        assert_eq!(v.share(), Some(0.5));
        // the exact prompt of the first order, and the second with the sides swapped
        let reqs = g.requests();
        assert_eq!(reqs.len(), 2);
        let u = user_text(&reqs[0].prompt);
        assert_eq!(
            u,
            "Problem: What is 3 + 4?\n\n[Solution A]\n3 + 4 = 8\n[End of Solution A]\n\n[Solution B]\n3 + 4 = 7\n[End of Solution B]\n\nWhich solution is correct and better reasoned? Think step by step: check each step of both solutions and their final answers. Then end with your verdict on its own line: [[A]] if Solution A is better, [[B]] if Solution B is better."
        );
        assert_eq!(
            reqs[0].assistant_prefix,
            "Let me check both solutions step by step."
        );
        assert_eq!(
            shown(&reqs[1].prompt),
            ("3 + 4 = 7".into(), "3 + 4 = 8".into())
        );
        assert_ne!(reqs[0].params.seed, reqs[1].params.seed);
        assert_eq!(reqs[0].params.max_tokens, 1024);
        assert_eq!(v.spent.judge_calls, 2);
        assert_eq!(
            v.spent.judge_tokens,
            2 * count_tokens("A looks fine. [[A]]")
        );
        assert_eq!(v.spent.policy_tokens, 0);
        // one order only; a judge without a verdict abstains (no win for anyone)
        let g = Arc::new(ScriptedGenerator::new(|_, _| "hmm, both look odd".into()));
        let one = PairwiseSettings {
            both_orders: false,
            ..PairwiseSettings::default()
        };
        let j = PairwiseJudge::new(g.clone(), one).unwrap();
        let v = j.compare(&p, (0, "x"), (1, "y")).await.unwrap();
        assert_eq!(
            (v.orders.clone(), v.share(), v.abstained()),
            (vec![None], None, 1)
        );
        assert_eq!(g.requests().len(), 1);
        // a bad template names its place
        let bad = PairwiseSettings {
            prompt: Some("### user\n{solution_c}".into()),
            ..PairwiseSettings::default()
        };
        let e = PairwiseJudge::new(g, bad).err().unwrap().to_string();
        assert!(
            e.contains("pairwise prompt") && e.contains("solution_c"),
            "{e}"
        );
    }

    /// A judge that prefers the solution whose answer is 7, by the text it is shown.
    fn fair_judge() -> Arc<ScriptedGenerator> {
        Arc::new(ScriptedGenerator::new(|req, _| {
            let (a, b) = shown(&req.prompt);
            match (a.ends_with("= 7"), b.ends_with("= 7")) {
                (true, false) => "A is right. [[A]]".into(),
                (false, true) => "B is right. [[B]]".into(),
                // neither or both right: it cannot decide
                _ => "cannot tell".into(),
            }
        }))
    }

    #[tokio::test]
    async fn knockout_plays_the_bracket_and_bt_fits_every_pair() {
        let p = Problem::new("p", "What is 3 + 4?");
        // candidates 0..5; only 3 is right
        let texts = [
            "3 + 4 = 8",
            "3 + 4 = 9",
            "3 + 4 = 6",
            "3 + 4 = 7",
            "3 + 4 = 5",
        ];
        let g = fair_judge();
        let j = PairwiseJudge::new(g.clone(), PairwiseSettings::default()).unwrap();
        let s = j.select(&p, &texts).await.unwrap();
        // round 1: 0-1 (no verdict: tie -> 0), 2-3 (3), bye 4; round 2: 0-3 (3), bye 4;
        // round 3: 3-4 (3)
        let b = s.picked.bracket.as_ref().unwrap();
        assert_eq!(
            b.played().collect::<Vec<_>>(),
            [(0, 1), (2, 3), (0, 3), (3, 4)]
        );
        assert_eq!(b.rounds[0].matches[0].share, None);
        assert_eq!(b.rounds[0].bye, Some(4));
        assert_eq!(s.picked.chosen, Some(3));
        assert_eq!(s.pairs[0].abstained(), 2);
        // 4 matches x 2 orders
        assert_eq!(s.spent.judge_calls, 8);
        assert_eq!(g.requests().len(), 8);
        let tokens = 2 * count_tokens("cannot tell")
            + 3 * (count_tokens("A is right. [[A]]") + count_tokens("B is right. [[B]]"));
        assert_eq!(s.spent.judge_tokens, tokens);
        // Bradley-Terry over 3 candidates: 1 is right. Pairs 0-1 (1 wins both orders:
        // one comparison, share 0 for 0), 0-2 (no verdict: not counted), 1-2 (1). Wins
        // with pseudo 0.1: w10 = w12 = 1.1, every other 0.1. By symmetry p0 = p2 = q,
        // p1 = r: 1's equation 2.2 = 2 * 1.2 * r/(r+q) -> r = 11 q -> (1, 11, 1)/13
        let texts = ["3 + 4 = 8", "3 + 4 = 7", "3 + 4 = 9"];
        let g = fair_judge();
        let bt = PairwiseSettings {
            method: PairwiseMethod::BradleyTerry,
            ..PairwiseSettings::default()
        };
        let j = PairwiseJudge::new(g.clone(), bt).unwrap();
        let s = j.select(&p, &texts).await.unwrap();
        assert_eq!(s.pairs.len(), 3);
        assert_eq!(s.picked.chosen, Some(1));
        for (got, want) in s
            .picked
            .strengths
            .iter()
            .zip([1.0 / 13.0, 11.0 / 13.0, 1.0 / 13.0])
        {
            assert!((got - want).abs() < 1e-6, "{:?}", s.picked.strengths);
        }
        assert_eq!(s.spent.judge_calls, 6);
        assert_eq!(g.requests().len(), 6);
    }
}
