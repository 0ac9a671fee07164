//! The LLM judge (generative PRM) and the self-judge.

use crate::prompt::Template;
use crate::{ScoreError, Scored, StepScorer, engine_err};
use async_trait::async_trait;
use std::path::Path;
use std::sync::Arc;
use stepwise_core::{Problem, Spent, Step, StepScore};
use stepwise_model::{GenerateRequest, Generator, SamplingParams};

const JUDGE_DEFAULT: &str = include_str!("../prompts/judge.txt");

/// The judge's prompt: a template file with `{question}`, `{steps}`, `{steps_lines}`,
/// `{step}`, `{step_number}` and `{answer}` (see `prompts/judge.txt`, the built-in default).
///
/// `{steps}` lists the earlier steps as numbered lines, or "(none)"; `{steps_lines}` is
/// the same list with a newline after each line and nothing when there are none, so that
/// a template writing `{steps_lines}Step {step_number}: {step}` renders the prompt of
/// step k+1 as an extension of the prompt of step k up to the end of step k. The
/// embedded backend's prefix cache then decodes each step once instead of once per
/// later step (linear instead of quadratic prompt cost on long solutions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JudgeTemplate {
    template: Template,
}

impl JudgeTemplate {
    /// Placeholders a judge template may use.
    pub const PLACEHOLDERS: [&'static str; 6] = [
        "question",
        "steps",
        "steps_lines",
        "step",
        "step_number",
        "answer",
    ];

    /// The built-in template's text (to copy and edit).
    pub fn default_text() -> &'static str {
        JUDGE_DEFAULT
    }

    /// Parses a template from text; `place` names it in errors.
    pub fn parse(text: &str, place: &str) -> Result<Self, ScoreError> {
        Ok(Self {
            template: Template::parse(text, place, &Self::PLACEHOLDERS)?,
        })
    }

    /// Loads a template file.
    pub fn load(path: &Path) -> Result<Self, ScoreError> {
        Ok(Self {
            template: Template::load(path, &Self::PLACEHOLDERS)?,
        })
    }

    /// The prompt and assistant prefix that judge `step` after `prefix` (shared by the
    /// judge and GenPRM).
    pub(crate) fn render_step(
        &self,
        problem: &Problem,
        prefix: &[Step],
        step: &Step,
        answer: Option<&str>,
    ) -> Result<(stepwise_model::Prompt, String), ScoreError> {
        let steps = numbered(prefix);
        let steps_lines = numbered_lines(prefix);
        let number = (prefix.len() + 1).to_string();
        self.template.render(&[
            ("question", &problem.question),
            ("steps", &steps),
            ("steps_lines", &steps_lines),
            ("step", &step.text),
            ("step_number", &number),
            ("answer", answer.unwrap_or("none")),
        ])
    }
}

impl Default for JudgeTemplate {
    fn default() -> Self {
        Self::parse(JUDGE_DEFAULT, "built-in prompts/judge.txt")
            // The built-in file is tested below; failing here is a build defect.
            .unwrap_or_else(|e| panic!("built-in judge prompt is malformed: {e}"))
    }
}

/// Reasoning the judge writes before its verdict (ThinkPRM / GenPRM style).
#[derive(Debug, Clone, PartialEq)]
pub struct Reasoning {
    pub max_tokens: u32,
    pub temperature: f32,
    /// Appended after the reasoning to ask for the verdict token (e.g. `"\nVerdict:"`);
    /// also a stop string of the reasoning.
    pub cue: String,
}

impl Default for Reasoning {
    fn default() -> Self {
        Self {
            max_tokens: 128,
            temperature: 0.7,
            cue: "\nVerdict:".into(),
        }
    }
}

/// Asks a judge model whether a step is correct and reads
/// `P(Yes) / (P(Yes) + P(No))` at the verdict position.
///
/// Without reasoning, the verdict is read right after the rendered prompt (one
/// `next_token_logprobs` call; deterministic, so `m` is not used). With reasoning, `m`
/// reasonings are sampled in one `generate` call, the verdict is read after each, and
/// the step's score is their mean: scaling the judge at test time.
///
/// Token costs go in the judge columns, including for [`JudgeScorer::self_judge`].
pub struct JudgeScorer {
    judge: Arc<dyn Generator>,
    template: JudgeTemplate,
    name: String,
    /// Judgments averaged per step (only with reasoning).
    pub m: usize,
    pub reasoning: Option<Reasoning>,
    /// Seed of the reasoning samples.
    pub seed: u64,
    /// Candidate tokens for the two verdicts (their probabilities are summed).
    pub yes: Vec<String>,
    pub no: Vec<String>,
}

impl JudgeScorer {
    /// A judge model (any [`Generator`]: embedded or HTTP).
    pub fn new(judge: Arc<dyn Generator>, template: JudgeTemplate) -> Self {
        Self {
            judge,
            template,
            name: "judge".into(),
            m: 1,
            reasoning: None,
            seed: 0,
            yes: vec!["Yes".into(), " Yes".into()],
            no: vec!["No".into(), " No".into()],
        }
    }

    /// The policy judging its own steps (Self-PRM): the same mechanism, named `self-judge`.
    pub fn self_judge(policy: Arc<dyn Generator>, template: JudgeTemplate) -> Self {
        let mut j = Self::new(policy, template);
        j.name = "self-judge".into();
        j
    }

    /// The same judge under another name (its scores' `scorer`, its errors).
    pub(crate) fn renamed(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }

    /// Sets reasoning and the number of judgments to average.
    pub fn with_reasoning(mut self, reasoning: Reasoning, m: usize) -> Self {
        self.reasoning = Some(reasoning);
        self.m = m.max(1);
        self
    }

    fn p_yes(&self, logprobs: &[Option<f32>]) -> Option<f64> {
        p_yes(self.yes.len(), logprobs)
    }

    async fn verdict(
        &self,
        prompt: &stepwise_model::Prompt,
        prefix: &str,
        spent: &mut Spent,
    ) -> Result<Option<f64>, ScoreError> {
        let cands: Vec<String> = self.yes.iter().chain(&self.no).cloned().collect();
        let lp = self
            .judge
            .next_token_logprobs(prompt, prefix, &cands)
            .await
            .map_err(engine_err(&self.name))?;
        spent.judge_calls += 1;
        spent.judge_prompt_tokens += lp.prompt_tokens;
        Ok(self.p_yes(&lp.logprobs))
    }
}

/// `P(Yes) / (P(Yes) + P(No))` from the log-probabilities of the yes candidates (the
/// first `n_yes`) and then the no candidates; `None` when neither has any mass.
pub(crate) fn p_yes(n_yes: usize, logprobs: &[Option<f32>]) -> Option<f64> {
    let sum = |r: std::ops::Range<usize>| -> f64 {
        logprobs[r]
            .iter()
            .flatten()
            .map(|l| (*l as f64).exp())
            .filter(|p| p.is_finite())
            .sum()
    };
    let ny = n_yes.min(logprobs.len());
    let y = sum(0..ny);
    let n = sum(ny..logprobs.len());
    if y + n > 0.0 { Some(y / (y + n)) } else { None }
}

/// Earlier steps as numbered lines for `{steps}` ("(none)" when there are none).
fn numbered(prefix: &[Step]) -> String {
    let lines = numbered_lines(prefix);
    match lines.strip_suffix('\n') {
        Some(l) => l.to_string(),
        None => "(none)".into(),
    }
}

/// Earlier steps for `{steps_lines}`: one numbered line each, each ending in a newline;
/// empty when there are none.
fn numbered_lines(prefix: &[Step]) -> String {
    prefix
        .iter()
        .enumerate()
        .map(|(i, s)| format!("Step {}: {}\n", i + 1, s.text))
        .collect()
}

#[async_trait]
impl StepScorer for JudgeScorer {
    fn name(&self) -> String {
        self.name.clone()
    }

    async fn score_step(
        &self,
        problem: &Problem,
        prefix: &[Step],
        step: &Step,
        answer: Option<&str>,
    ) -> Result<Scored, ScoreError> {
        let (prompt, assistant) = self.template.render_step(problem, prefix, step, answer)?;
        let mut spent = Spent::default();
        let mut ps = Vec::new();
        match &self.reasoning {
            None => ps.extend(self.verdict(&prompt, &assistant, &mut spent).await?),
            Some(r) => {
                let req = GenerateRequest {
                    prompt: prompt.clone(),
                    assistant_prefix: assistant.clone(),
                    params: SamplingParams {
                        n: self.m,
                        temperature: r.temperature,
                        max_tokens: r.max_tokens,
                        stop: vec![r.cue.trim().to_string()]
                            .into_iter()
                            .filter(|s| !s.is_empty())
                            .collect(),
                        seed: self.seed,
                        ..SamplingParams::default()
                    },
                };
                let outs =
                    crate::generate_charged(self.judge.as_ref(), &req, &self.name, &mut spent)
                        .await?;
                for c in outs {
                    let pre = format!("{assistant}{}{}", c.text.trim_end(), r.cue);
                    ps.extend(self.verdict(&prompt, &pre, &mut spent).await?);
                }
            }
        }
        let (score, detail) = if ps.is_empty() {
            (0.5, "no verdict probability from the judge".to_string())
        } else {
            let mean = ps.iter().sum::<f64>() / ps.len() as f64;
            (mean, format!("P(Yes) over {} judgment(s)", ps.len()))
        };
        Ok(Scored {
            scores: vec![
                StepScore::new(prefix.len(), score, self.name.clone()).with_detail(detail),
            ],
            spent,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stepwise_core::Rationale;
    use stepwise_model::Prompt;
    use stepwise_model::scripted::ScriptedGenerator;

    fn user_text(p: &Prompt) -> String {
        match p {
            Prompt::Chat(m) => m.last().map(|m| m.content.clone()).unwrap_or_default(),
            Prompt::Text(t) => t.clone(),
        }
    }

    #[tokio::test]
    async fn reads_p_yes_and_counts() {
        // The judge says Yes with p=0.8 when the judged step contains "good".
        let g = Arc::new(
            ScriptedGenerator::new(|_, _| String::new()).with_judge(|p, _, c| {
                assert_eq!(c, ["Yes", " Yes", "No", " No"]);
                let good = user_text(p).contains("step 2: good") || user_text(p).contains(": good");
                let y = if good { 0.8f32 } else { 0.2 };
                vec![Some(y.ln()), None, Some((1.0 - y).ln()), None]
            }),
        );
        let j = JudgeScorer::new(g.clone(), JudgeTemplate::default());
        let p = Problem::new("p", "q?");
        let r = Rationale::from_steps(["bad", "good"], Some("1".into()));
        let s = j.score_rationale(&p, &r).await.unwrap();
        assert!((s.scores[0].score - 0.2).abs() < 1e-6);
        assert!((s.scores[1].score - 0.8).abs() < 1e-6);
        assert_eq!(s.scores[1].step, 1);
        assert_eq!(s.spent.judge_calls, 2);
        assert_eq!(s.spent.policy_calls, 0);
        assert!(s.spent.judge_prompt_tokens > 0);
        assert_eq!(s.spent.judge_tokens, 0);
    }

    #[tokio::test]
    async fn reasoning_averages_m_judgments() {
        // Reasoning sample i says "ok" for even i; the verdict follows the reasoning.
        let g = Arc::new(
            ScriptedGenerator::new(|_, i| {
                if i % 2 == 0 {
                    "seems fine".into()
                } else {
                    "seems wrong".into()
                }
            })
            .with_judge(|_, prefix, _| {
                let y: f32 = if prefix.contains("fine") { 0.9 } else { 0.1 };
                vec![Some(y.ln()), None, Some((1.0 - y).ln()), None]
            }),
        );
        let j = JudgeScorer::self_judge(g.clone(), JudgeTemplate::default())
            .with_reasoning(Reasoning::default(), 4);
        let st = Step {
            index: 0,
            text: "x".into(),
        };
        let s = j
            .score_step(&Problem::new("p", "q"), &[], &st, None)
            .await
            .unwrap();
        assert!((s.scores[0].score - 0.5).abs() < 1e-6);
        assert_eq!(s.scores[0].scorer, "self-judge");
        // one generate call (4 samples of 2 words) + 4 verdict calls
        assert_eq!(s.spent.judge_calls, 5);
        assert_eq!(s.spent.judge_tokens, 8);
        assert_eq!(g.calls(), 5);
    }

    #[tokio::test]
    async fn missing_verdicts_give_half() {
        let g = Arc::new(
            ScriptedGenerator::new(|_, _| String::new()).with_judge(|_, _, c| vec![None; c.len()]),
        );
        let j = JudgeScorer::new(g, JudgeTemplate::default());
        let st = Step {
            index: 0,
            text: "x".into(),
        };
        let s = j
            .score_step(&Problem::new("p", "q"), &[], &st, None)
            .await
            .unwrap();
        assert_eq!(s.scores[0].score, 0.5);
    }

    #[test]
    fn builtin_template_renders() {
        let t = JudgeTemplate::default();
        let (p, _) = t
            .template
            .render(&[
                ("question", "Q"),
                ("steps", "(none)"),
                ("steps_lines", ""),
                ("step", "S"),
                ("step_number", "1"),
                ("answer", "none"),
            ])
            .unwrap();
        assert!(user_text(&p).contains("Step 1: S"));
        assert!(user_text(&p).contains("Is step 1 correct?"));
    }

    #[tokio::test]
    async fn next_step_prompt_extends_the_previous_one() {
        // What the prefix cache needs: the prompt of step k+1 starts with the prompt of
        // step k up to the end of step k's text.
        let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let log = seen.clone();
        let g = Arc::new(ScriptedGenerator::new(|_, _| String::new()).with_judge(
            move |p, _, c| {
                if let Ok(mut v) = log.lock() {
                    v.push(user_text(p));
                }
                vec![Some(0.5f32.ln()); c.len()]
            },
        ));
        let j = JudgeScorer::new(g, JudgeTemplate::default());
        let steps = ["2 + 3 = 5", "5 * 4 = 20\nso twenty", "The answer is 20."];
        let r = Rationale::from_steps(steps, Some("20".into()));
        j.score_rationale(&Problem::new("p", "q?"), &r)
            .await
            .unwrap();
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 3);
        for (k, w) in seen.windows(2).enumerate() {
            let end = w[0].find(steps[k]).unwrap() + steps[k].len();
            assert_eq!(&w[1][..end], &w[0][..end], "step {}", k + 2);
        }
    }
}
