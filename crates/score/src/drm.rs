//! DRM: a solution scored along three dimensions of its reasoning, weighted.
//!
//! Wang et al. 2025, "From Answer to Think: Multidimensional Supervision of Reasoning
//! Process for LLM Optimization" (arXiv:2510.11457), the Dimension-level Reward Model:
//!
//! - **Confidence**, the model's own certainty in its reasoning `R` and answer `A`:
//!   `score_conf = (1/|R|) Σ_{t∈R} log p(t) + Σ_{t∈A} log p(t)`, read here from the
//!   policy (the model that wrote the solution) with
//!   [`Generator::continuation_logprobs`] over the solution after its question (a user
//!   turn), `A` the tokens of the last occurrence of the stated answer and `R` the rest.
//!   As a value in [0, 1]: `exp(score_conf)`, the geometric-mean token probability of the
//!   reasoning times the probability of the answer.
//! - **Relevance**, the reasoning's alignment with the question and the answer: the paper
//!   scores `R ← Q` and `R → A` by NLI entailment (and `R ↔ D` against retrieved
//!   documents, which stepwise's problems do not have). Here each is a yes/no question
//!   to the judge model (`prompts/drm-relevance.txt`, `prompts/drm-support.txt`), read as
//!   `P(Yes) / (P(Yes) + P(No))`, and relevance is their mean; a judge given with
//!   `--judge-model` / `--judge-endpoint` can be an NLI-capable model.
//! - **Coherence**, logical consistency and quality of the reasoning: the paper's outcome
//!   reward model; here the judge's `P(Yes)` on `prompts/drm-coherence.txt`.
//!
//! The score is the weighted mean `(w_c·conf + w_r·rel + w_h·coh) / (w_c + w_r + w_h)`,
//! equal weights by default (`drm:WC,WR,WH` sets them); no dimension needs a gold answer.
//! A solution without a stated answer has confidence 0. Solution-level like `self-prm`:
//! every step gets the score; the detail names each dimension. Costs: the confidence
//! read in the policy columns, the three judgments in the judge columns.

use crate::judge::JudgeTemplate;
use crate::{JudgeScorer, ScoreError, Scored, StepScorer, engine_err};
use async_trait::async_trait;
use std::sync::Arc;
use stepwise_core::{Problem, Rationale, Spent, Step, StepSplitter};
use stepwise_model::{ChatMessage, ContinuationLogprobs, Generator, Prompt};

const RELEVANCE: &str = include_str!("../prompts/drm-relevance.txt");
const SUPPORT: &str = include_str!("../prompts/drm-support.txt");
const COHERENCE: &str = include_str!("../prompts/drm-coherence.txt");

/// The weights of DRM's dimensions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DrmWeights {
    pub confidence: f64,
    pub relevance: f64,
    pub coherence: f64,
}

impl Default for DrmWeights {
    fn default() -> Self {
        Self {
            confidence: 1.0,
            relevance: 1.0,
            coherence: 1.0,
        }
    }
}

impl DrmWeights {
    /// `WC,WR,WH`: three non-negative weights, not all zero.
    pub fn parse(arg: &str) -> Result<Self, String> {
        let w: Vec<f64> = arg
            .split(',')
            .map(|x| x.trim().parse::<f64>())
            .collect::<Result<_, _>>()
            .map_err(|_| format!("drm:WC,WR,WH takes three numbers (got '{arg}')"))?;
        let [c, r, h] = w[..] else {
            return Err(format!("drm:WC,WR,WH takes three numbers (got '{arg}')"));
        };
        if w.iter().any(|x| !x.is_finite() || *x < 0.0) || c + r + h <= 0.0 {
            return Err(format!(
                "drm weights must be non-negative and not all zero (got '{arg}')"
            ));
        }
        Ok(Self {
            confidence: c,
            relevance: r,
            coherence: h,
        })
    }

    /// The weighted mean of the three values.
    pub fn combine(&self, confidence: f64, relevance: f64, coherence: f64) -> f64 {
        (self.confidence * confidence + self.relevance * relevance + self.coherence * coherence)
            / (self.confidence + self.relevance + self.coherence)
    }
}

/// `score_conf` of a read solution whose answer occupies the bytes `answer` of it: the
/// mean log-probability of the other tokens plus the summed log-probability of the
/// answer's tokens (a token straddling the answer's edge counts as the answer's).
/// `None` when no token overlaps the answer.
pub fn confidence_score(
    read: &ContinuationLogprobs,
    answer: std::ops::Range<usize>,
) -> Option<f64> {
    let mut at = 0usize;
    let (mut r_sum, mut r_n, mut a_sum, mut a_n) = (0.0f64, 0usize, 0.0f64, 0usize);
    for t in &read.tokens {
        let end = at + t.token.len();
        if end > answer.start && at < answer.end {
            a_sum += t.logprob as f64;
            a_n += 1;
        } else {
            r_sum += t.logprob as f64;
            r_n += 1;
        }
        at = end;
    }
    if a_n == 0 {
        return None;
    }
    let r_mean = if r_n == 0 { 0.0 } else { r_sum / r_n as f64 };
    Some(r_mean + a_sum)
}

/// The DRM scorer (see the module docs).
pub struct DrmScorer {
    policy: Arc<dyn Generator>,
    relevance: JudgeScorer,
    support: JudgeScorer,
    coherence: JudgeScorer,
    pub weights: DrmWeights,
}

fn template(text: &str, name: &str) -> JudgeTemplate {
    JudgeTemplate::parse(text, name)
        // The built-in files are tested below; failing here is a build defect.
        .unwrap_or_else(|e| panic!("built-in {name} is malformed: {e}"))
}

impl DrmScorer {
    /// The scorer's name.
    pub const NAME: &'static str = "drm";

    /// Confidence read from `policy`, relevance and coherence judged by `judge`.
    pub fn new(policy: Arc<dyn Generator>, judge: Arc<dyn Generator>, weights: DrmWeights) -> Self {
        let j = |text: &str, name: &str| {
            JudgeScorer::new(judge.clone(), template(text, name)).renamed(Self::NAME)
        };
        Self {
            policy,
            relevance: j(RELEVANCE, "built-in prompts/drm-relevance.txt"),
            support: j(SUPPORT, "built-in prompts/drm-support.txt"),
            coherence: j(COHERENCE, "built-in prompts/drm-coherence.txt"),
            weights,
        }
    }

    async fn judged(
        judge: &JudgeScorer,
        problem: &Problem,
        steps: &[Step],
        answer: Option<&str>,
        spent: &mut Spent,
    ) -> Result<f64, ScoreError> {
        let Some((last, prefix)) = steps.split_last() else {
            return Ok(0.0);
        };
        let s = judge.score_step(problem, prefix, last, answer).await?;
        *spent += s.spent;
        Ok(s.scores.first().map_or(0.0, |x| x.score))
    }
}

#[async_trait]
impl StepScorer for DrmScorer {
    fn name(&self) -> String {
        Self::NAME.into()
    }

    /// The solution through `step`.
    async fn score_step(
        &self,
        problem: &Problem,
        prefix: &[Step],
        step: &Step,
        answer: Option<&str>,
    ) -> Result<Scored, ScoreError> {
        crate::solution_so_far(self, problem, prefix, step, answer).await
    }

    /// The three dimensions of the whole solution, combined, given to every step.
    async fn score_rationale(
        &self,
        problem: &Problem,
        rationale: &Rationale,
    ) -> Result<Scored, ScoreError> {
        if rationale.steps.is_empty() {
            return Ok(Scored::default());
        }
        let text = StepSplitter::default().join(&rationale.steps);
        let answer = rationale
            .answer
            .as_deref()
            .map(str::trim)
            .filter(|a| !a.is_empty());
        let mut spent = Spent::default();
        let prompt = Prompt::Chat(vec![ChatMessage::user(problem.question.clone())]);
        let read = self
            .policy
            .continuation_logprobs(&prompt, "", &text)
            .await
            .map_err(engine_err(Self::NAME))?;
        spent.policy_prompt_tokens += read.prompt_tokens;
        spent.policy_calls += read.calls;
        let conf_score = answer
            .and_then(|a| text.rfind(a).map(|at| at..at + a.len()))
            .and_then(|span| confidence_score(&read, span));
        let confidence = conf_score.map_or(0.0, f64::exp);
        let steps = &rationale.steps;
        let rel_q = Self::judged(&self.relevance, problem, steps, answer, &mut spent).await?;
        let rel_a = Self::judged(&self.support, problem, steps, answer, &mut spent).await?;
        let coherence = Self::judged(&self.coherence, problem, steps, answer, &mut spent).await?;
        let relevance = (rel_q + rel_a) / 2.0;
        let value = self.weights.combine(confidence, relevance, coherence);
        let detail = format!(
            "drm {value:.4}: confidence {confidence:.4} (score_conf {}), relevance {relevance:.4} \
             (R<-Q {rel_q:.4}, R->A {rel_a:.4}), coherence {coherence:.4}",
            conf_score.map_or("none: no stated answer".to_string(), |c| format!("{c:.4}"))
        );
        Ok(crate::every_step(steps, value, Self::NAME, &detail, spent))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stepwise_model::TokenLogprob;
    use stepwise_model::scripted::ScriptedGenerator;

    fn read(tokens: &[(&str, f32)]) -> ContinuationLogprobs {
        ContinuationLogprobs {
            tokens: tokens
                .iter()
                .map(|(t, l)| TokenLogprob {
                    token: t.to_string(),
                    logprob: *l,
                })
                .collect(),
            prompt_tokens: 0,
            calls: 1,
        }
    }

    #[test]
    fn confidence_is_the_mean_over_the_reasoning_plus_the_sum_over_the_answer() {
        // "x = 3 so 3" with the answer at bytes 9..10
        let r = read(&[
            ("x", -1.0),
            (" =", -0.5),
            (" 3", -0.3),
            (" so", -0.2),
            (" 3", -0.1),
        ]);
        // R: (-1 - 0.5 - 0.3 - 0.2) / 4 = -0.5; A: -0.1
        let c = confidence_score(&r, 9..10).unwrap();
        assert!((c - (-0.6)).abs() < 1e-6, "{c}");
        // an answer no token overlaps
        assert_eq!(confidence_score(&r, 20..21), None);
        // all answer: R's mean is 0
        assert!((confidence_score(&read(&[("7", -0.7)]), 0..1).unwrap() + 0.7).abs() < 1e-6);
    }

    #[test]
    fn weights_parse_and_combine() {
        let w = DrmWeights::parse("2, 1, 1").unwrap();
        assert!((w.combine(1.0, 0.5, 0.0) - 0.625).abs() < 1e-12);
        assert!((DrmWeights::default().combine(0.3, 0.6, 0.9) - 0.6).abs() < 1e-12);
        for bad in ["1,2", "a,b,c", "0,0,0", "-1,1,1", "1,2,3,4"] {
            assert!(DrmWeights::parse(bad).is_err(), "{bad}");
        }
        for t in [RELEVANCE, SUPPORT, COHERENCE] {
            assert!(JudgeTemplate::parse(t, "t").is_ok());
        }
    }

    fn user_text(p: &Prompt) -> String {
        match p {
            Prompt::Chat(m) => m.last().map(|m| m.content.clone()).unwrap_or_default(),
            Prompt::Text(t) => t.clone(),
        }
    }

    #[tokio::test]
    async fn the_three_dimensions_are_computed_and_weighted_by_hand() {
        // policy: every word token has log-probability -0.5, the answer token " 7" -0.2
        let policy = Arc::new(
            ScriptedGenerator::new(|_, _| String::new())
                .with_reader(|_, _, t| if t.trim() == "7." { -0.2 } else { -0.5 }),
        );
        // judge: P(Yes) 0.8 on relevance to the question, 0.6 on support of the answer,
        // 0.4 on coherence (Yes/No normalized)
        let judge = Arc::new(
            ScriptedGenerator::new(|_, _| String::new()).with_judge(|p, _, _| {
                let t = user_text(p);
                let y: f32 = if t.contains("work on the problem") {
                    0.8
                } else if t.contains("lead to this final answer") {
                    0.6
                } else {
                    0.4
                };
                vec![Some(y.ln()), None, Some((1.0 - y).ln()), None]
            }),
        );
        let d = DrmScorer::new(policy, judge, DrmWeights::default());
        let p = Problem::new("p", "What is 3 + 4?");
        let r = Rationale::from_steps(["3 + 4 = 7", "So 7."], Some("7".into()));
        let out = d.score_rationale(&p, &r).await.unwrap();
        // read text "3 + 4 = 7\n\nSo 7." → word tokens "3" " +" " 4" " =" " 7" "\n\nSo" " 7.";
        // the answer is the last "7" (inside " 7."): R = 6 tokens at -0.5, A = -0.2
        let conf = (-0.5f64 - 0.2).exp();
        let rel = (0.8 + 0.6) / 2.0;
        let want = (conf + rel + 0.4) / 3.0;
        assert_eq!(out.scores.len(), 2);
        for s in &out.scores {
            assert!((s.score - want).abs() < 1e-5, "{} vs {want}", s.score);
        }
        let detail = out.scores[0].detail.clone().unwrap();
        assert!(
            detail.contains("R<-Q 0.8000") && detail.contains("coherence 0.4000"),
            "{detail}"
        );
        // costs: one policy read, three judge calls
        assert_eq!(out.spent.policy_calls, 1);
        assert_eq!(out.spent.judge_calls, 3);
        // no answer: confidence 0
        let r = Rationale::from_steps(["3 + 4 = 7"], None);
        let out = d.score_rationale(&p, &r).await.unwrap();
        let want = (0.0 + (0.8 + 0.6) / 2.0 + 0.4) / 3.0;
        assert!((out.scores[0].score - want).abs() < 1e-5);
    }
}
