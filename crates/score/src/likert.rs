//! The Likert judge with rationales of self-rationalization (Trivedi et al. 2024,
//! "Self-rationalization improves LLM as a fine-grained judge", arXiv:2410.05495): the
//! judge writes a rationale under user-given criteria, then a score `Score: k` on a
//! 1–N scale (N = 5 by default, the paper's); it samples several judgments of one input,
//! and the score is their mean. The paper then trains the judge on preference pairs of its
//! own judgments of the same input (the best- and the worst-rated), which stepwise builds
//! from stored runs (`stepwise data pairs --rule likert-judgments`).
//!
//! As a [`StepScorer`] it is solution-level: the whole rationale is judged at once and
//! every step gets the same score, the mean k normalized to `[0, 1]` as
//! `(k̄ − 1) / (N − 1)`, so every aggregation agrees; asked for one new step it judges the
//! solution so far. A judgment without a readable `Score: k` (k in 1..=N) abstains; with
//! no readable judgment at all the score is 0.5, "unknown". The judgments (their texts and
//! scores) and the judge prompt are kept, as a [`LikertRecord`] in the last step's
//! detail, so preference pairs can be built from a stored run ([`likert_record`]).
//! Every judge token goes in the judge columns of [`Spent`].

use crate::prompt::Template;
use crate::{ScoreError, Scored, StepScorer, generate_charged};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use stepwise_core::{Problem, Rationale, Spent, Step, StepScore};
use stepwise_model::{GenerateRequest, Generator, Prompt, SamplingParams};

const LIKERT_DEFAULT: &str = include_str!("../prompts/likert.txt");

/// Placeholders a Likert template may use.
pub const LIKERT_PLACEHOLDERS: [&str; 4] = ["question", "solution", "criteria", "scale"];

/// The rubric used when no criteria are given.
pub const DEFAULT_CRITERIA: &str = "Correctness: every calculation and every inference in the steps is right, and the final answer follows from them and answers the question. Completeness and clarity: no step is missing or confused. The lowest score is for a wrong solution, the highest for a fully correct and clear one.";

/// Version of [`LikertRecord`], the stored judgments.
pub const LIKERT_RECORD_VERSION: u32 = 1;

/// Settings of [`LikertScorer`].
#[derive(Debug, Clone, PartialEq)]
pub struct LikertSettings {
    /// N of the 1–N scale (at least 2).
    pub scale: u32,
    /// Judgments sampled per input.
    pub samples: usize,
    /// The criteria the judge rates under.
    pub criteria: String,
    /// Tokens of each judgment (rationale and score).
    pub max_tokens: u32,
    pub temperature: f32,
}

impl Default for LikertSettings {
    fn default() -> Self {
        Self {
            scale: 5,
            samples: 4,
            criteria: DEFAULT_CRITERIA.into(),
            max_tokens: 512,
            temperature: 0.7,
        }
    }
}

/// One judgment: what the judge wrote and the score read from it (`None`: abstains).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LikertJudgment {
    pub text: String,
    pub score: Option<u32>,
}

/// The judgments of one input, as stored in the last step's detail (versioned).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LikertRecord {
    pub version: u32,
    /// N of the scale.
    pub scale: u32,
    /// The judge prompt (with the text its turn starts with in `start`).
    pub prompt: Prompt,
    pub start: String,
    pub judgments: Vec<LikertJudgment>,
    /// Mean k over the judgments that have one.
    pub mean: Option<f64>,
    pub abstained: usize,
}

/// The score in a judgment: the last `Score: k` (any case, `**Score:** k` too) with a
/// whole k in `1..=scale`; `None` otherwise (it abstains).
pub fn read_score(text: &str, scale: u32) -> Option<u32> {
    let lower = text.to_ascii_lowercase();
    let at = lower.rfind("score")?;
    let rest = &text[at + "score".len()..];
    let rest = rest.trim_start_matches(['*', ' ']);
    let rest = rest.strip_prefix(':')?;
    let rest = rest.trim_start_matches(['*', ' ', '\t']);
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    let after = rest[digits.len()..].chars().next();
    // "3.5" is not a whole score
    if after == Some('.') && rest[digits.len() + 1..].starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let k: u32 = digits.parse().ok()?;
    (1..=scale).contains(&k).then_some(k)
}

/// The judgments kept in a scored sample: the [`LikertRecord`] in its last step score's
/// detail (`None` when the scores are not a Likert judge's or the detail is not a record).
pub fn likert_record(scores: &[StepScore]) -> Option<LikertRecord> {
    let last = scores.iter().rev().find(|s| s.scorer == "likert")?;
    serde_json::from_str(last.detail.as_deref()?).ok()
}

/// The Likert judge (see the module documentation).
pub struct LikertScorer {
    judge: Arc<dyn Generator>,
    template: Template,
    pub settings: LikertSettings,
    pub seed: u64,
}

impl LikertScorer {
    /// A judge model with `settings` and the built-in template (`prompts/likert.txt`).
    pub fn new(judge: Arc<dyn Generator>, settings: LikertSettings) -> Result<Self, ScoreError> {
        if settings.scale < 2 {
            return Err(ScoreError::Unusable {
                scorer: "likert".into(),
                reason: format!("a 1-N scale needs N of at least 2 (got {})", settings.scale),
            });
        }
        Ok(Self {
            judge,
            template: Template::parse(
                LIKERT_DEFAULT,
                "built-in prompts/likert.txt",
                &LIKERT_PLACEHOLDERS,
            )?,
            settings: LikertSettings {
                samples: settings.samples.max(1),
                ..settings
            },
            seed: 0,
        })
    }

    /// A template of one's own (placeholders [`LIKERT_PLACEHOLDERS`]).
    pub fn with_template(mut self, text: &str, place: &str) -> Result<Self, ScoreError> {
        self.template = Template::parse(text, place, &LIKERT_PLACEHOLDERS)?;
        Ok(self)
    }

    /// Judges a solution given as its steps: the record and what it cost.
    pub async fn judge_steps(
        &self,
        problem: &Problem,
        steps: &[&str],
    ) -> Result<(LikertRecord, Spent), ScoreError> {
        let s = &self.settings;
        let solution = steps.join("\n\n");
        let scale = s.scale.to_string();
        let (prompt, start) = self.template.render(&[
            ("question", &problem.question),
            ("solution", &solution),
            ("criteria", &s.criteria),
            ("scale", &scale),
        ])?;
        let req = GenerateRequest {
            prompt: prompt.clone(),
            assistant_prefix: start.clone(),
            params: SamplingParams {
                n: s.samples,
                temperature: s.temperature,
                max_tokens: s.max_tokens,
                seed: self.seed,
                ..SamplingParams::default()
            },
        };
        let mut spent = Spent::default();
        let outs = generate_charged(self.judge.as_ref(), &req, "likert", &mut spent).await?;
        let judgments: Vec<LikertJudgment> = outs
            .iter()
            .map(|c| LikertJudgment {
                score: read_score(&c.text, s.scale),
                text: c.text.clone(),
            })
            .collect();
        let ks: Vec<f64> = judgments
            .iter()
            .filter_map(|j| j.score)
            .map(f64::from)
            .collect();
        let abstained = judgments.len() - ks.len();
        if abstained > 0 {
            tracing::debug!(problem = %problem.id, abstained, "likert: judgments without a score");
        }
        let mean = (!ks.is_empty()).then(|| ks.iter().sum::<f64>() / ks.len() as f64);
        Ok((
            LikertRecord {
                version: LIKERT_RECORD_VERSION,
                scale: s.scale,
                prompt,
                start,
                judgments,
                mean,
                abstained,
            },
            spent,
        ))
    }

    /// The normalized score of a record: `(mean − 1) / (N − 1)`, 0.5 without any score.
    pub fn normalized(record: &LikertRecord) -> f64 {
        record.mean.map_or(0.5, |m| {
            (m - 1.0) / f64::from(record.scale.saturating_sub(1).max(1))
        })
    }

    /// Step scores for `n` steps from one record: every step the normalized score, the
    /// last one carrying the record.
    fn scores(record: &LikertRecord, n: usize, first: usize) -> Vec<StepScore> {
        let score = Self::normalized(record);
        let summary = match record.mean {
            Some(m) => format!(
                "likert {m:.2}/{} from {} of {} judgment(s)",
                record.scale,
                record.judgments.len() - record.abstained,
                record.judgments.len()
            ),
            None => format!("likert: no score in {} judgment(s)", record.judgments.len()),
        };
        let full = serde_json::to_string(record).unwrap_or_else(|_| summary.clone());
        (0..n)
            .map(|i| {
                let d = if i + 1 == n {
                    full.clone()
                } else {
                    summary.clone()
                };
                StepScore::new(first + i, score, "likert").with_detail(d)
            })
            .collect()
    }
}

#[async_trait]
impl StepScorer for LikertScorer {
    fn name(&self) -> String {
        "likert".into()
    }

    async fn score_step(
        &self,
        problem: &Problem,
        prefix: &[Step],
        step: &Step,
        _answer: Option<&str>,
    ) -> Result<Scored, ScoreError> {
        let texts = crate::texts_through(prefix, step);
        let (record, spent) = self.judge_steps(problem, &texts).await?;
        Ok(Scored {
            scores: Self::scores(&record, 1, prefix.len()),
            spent,
        })
    }

    async fn score_rationale(
        &self,
        problem: &Problem,
        rationale: &Rationale,
    ) -> Result<Scored, ScoreError> {
        if rationale.steps.is_empty() {
            return Ok(Scored::default());
        }
        let texts: Vec<&str> = rationale.steps.iter().map(|s| s.text.as_str()).collect();
        let (record, spent) = self.judge_steps(problem, &texts).await?;
        Ok(Scored {
            scores: Self::scores(&record, rationale.steps.len(), 0),
            spent,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stepwise_core::Aggregation;
    use stepwise_model::scripted::{ScriptedGenerator, count_tokens};

    #[test]
    fn reads_the_last_whole_score_on_the_scale() {
        assert_eq!(read_score("good.\nScore: 4", 5), Some(4));
        assert_eq!(
            read_score("a score: 2 at first, then\n**Score:** 5", 5),
            Some(5)
        );
        assert_eq!(read_score("SCORE: 3/5", 5), Some(3));
        assert_eq!(read_score("Score: 6", 5), None);
        assert_eq!(read_score("Score: 0", 5), None);
        assert_eq!(read_score("Score: 3.5", 5), None);
        assert_eq!(read_score("Score: 3.", 5), Some(3));
        assert_eq!(read_score("I would say 4", 5), None);
        assert_eq!(read_score("Score: 9", 10), Some(9));
    }

    #[tokio::test]
    async fn judges_the_whole_solution_and_keeps_its_judgments() {
        // judgments 0..4: scores 5, 2, none, 4
        let g = Arc::new(ScriptedGenerator::new(|_, i| match i {
            0 => "All steps are right.\nScore: 5".into(),
            1 => "The sum is wrong.\nScore: 2".into(),
            2 => "I cannot tell.".into(),
            _ => "Mostly right.\nScore: 4".into(),
        }));
        let mut scorer = LikertScorer::new(g.clone(), LikertSettings::default()).unwrap();
        scorer.seed = 7;
        let p = Problem::new("p", "What is 3 + 4?");
        let r = Rationale::from_steps(["3 + 4 = 7", "The answer is 7."], Some("7".into()));
        let s = scorer.score_rationale(&p, &r).await.unwrap();
        // mean (5 + 2 + 4) / 3 = 11/3, normalized (11/3 - 1) / 4 = 2/3 on every step
        assert_eq!(s.scores.len(), 2);
        for sc in &s.scores {
            assert!((sc.score - 2.0 / 3.0).abs() < 1e-12, "{sc:?}");
        }
        assert_eq!(
            s.aggregate(Aggregation::Min),
            s.aggregate(Aggregation::Last)
        );
        assert_eq!(
            s.scores[0].detail.as_deref(),
            Some("likert 3.67/5 from 3 of 4 judgment(s)")
        );
        let rec = likert_record(&s.scores).unwrap();
        assert_eq!(rec.version, LIKERT_RECORD_VERSION);
        assert_eq!(rec.abstained, 1);
        assert_eq!(
            rec.judgments.iter().map(|j| j.score).collect::<Vec<_>>(),
            [Some(5), Some(2), None, Some(4)]
        );
        // the exact prompt: one request of 4 samples
        let reqs = g.requests();
        assert_eq!(reqs.len(), 1);
        assert_eq!((reqs[0].params.n, reqs[0].params.seed), (4, 7));
        let Prompt::Chat(m) = &reqs[0].prompt else {
            panic!()
        };
        assert_eq!(
            m[1].content,
            format!(
                "Problem: What is 3 + 4?\n\nSolution:\n3 + 4 = 7\n\nThe answer is 7.\n\nRate the solution on a scale of 1 to 5 under these criteria:\n{DEFAULT_CRITERIA}\n\nFirst write your rationale: check the solution's steps against the criteria. Then end with a line \"Score: k\", where k is a whole number from 1 to 5."
            )
        );
        assert_eq!(reqs[0].assistant_prefix, "Rationale:");
        assert_eq!(rec.prompt, reqs[0].prompt);
        // tokens: one call, every judgment's tokens in the judge columns
        assert_eq!(s.spent.judge_calls, 1);
        assert_eq!(
            s.spent.judge_tokens,
            count_tokens("All steps are right.\nScore: 5")
                + count_tokens("The sum is wrong.\nScore: 2")
                + count_tokens("I cannot tell.")
                + count_tokens("Mostly right.\nScore: 4")
        );
        assert_eq!(s.spent.policy_tokens, 0);
    }

    #[tokio::test]
    async fn criteria_scale_and_abstention() {
        let g = Arc::new(ScriptedGenerator::new(|_, _| "no number here".into()));
        let settings = LikertSettings {
            scale: 3,
            samples: 2,
            criteria: "Is the final answer right?".into(),
            ..LikertSettings::default()
        };
        let scorer = LikertScorer::new(g.clone(), settings).unwrap();
        let p = Problem::new("p", "2 + 2?");
        let s = scorer
            .score_step(
                &p,
                &[],
                &Step {
                    index: 0,
                    text: "2 + 2 = 4".into(),
                },
                None,
            )
            .await
            .unwrap();
        // nothing readable: unknown, and both judgments counted as abstaining
        assert_eq!(s.scores[0].score, 0.5);
        let rec = likert_record(&s.scores).unwrap();
        assert_eq!((rec.abstained, rec.mean), (2, None));
        let Prompt::Chat(m) = &g.requests()[0].prompt else {
            panic!()
        };
        assert!(
            m[1].content
                .contains("scale of 1 to 3 under these criteria:\nIs the final answer right?")
        );
        // k = 3 of 3 -> 1, k = 1 -> 0
        let g = Arc::new(ScriptedGenerator::new(|_, i| {
            format!("Score: {}", if i == 0 { 3 } else { 1 })
        }));
        let scorer = LikertScorer::new(
            g,
            LikertSettings {
                scale: 3,
                samples: 2,
                ..LikertSettings::default()
            },
        )
        .unwrap();
        let s = scorer
            .score_step(
                &p,
                &[],
                &Step {
                    index: 0,
                    text: "2 + 2 = 4".into(),
                },
                None,
            )
            .await
            .unwrap();
        assert!((s.scores[0].score - 0.5).abs() < 1e-12); // mean 2 of 1..3
        assert!(
            LikertScorer::new(
                Arc::new(ScriptedGenerator::new(|_, _| String::new())),
                LikertSettings {
                    scale: 1,
                    ..LikertSettings::default()
                }
            )
            .is_err()
        );
    }
}
