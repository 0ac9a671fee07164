//! GenPRM: a generative process reward model that reasons and runs code before each
//! verdict (Zhao et al. 2025, "GenPRM: Scaling Test-Time Compute of Process Reward Models
//! via Generative Reasoning", arXiv:2504.00891).
//!
//! For every step the judge writes an analysis and, where a computation can be checked, a
//! Python program (`<analyze>…</analyze><verify>```python …```</verify>`, the paper's
//! format). stepwise runs the program in the sandbox (`stepwise-sandbox`: no network,
//! CPU/memory/output limits), appends what it printed as `[Code Output]`, then asks for the
//! verdict after `<output>\n**Judgement**: $\boxed{` and reads P(Yes) there. The paper
//! scales the PRM at test time by sampling m such judgments per step and taking the
//! majority of their verdicts (its "Maj@8"); here m defaults to 8 as well.
//!
//! Per step: the verdict is the majority of the m verdicts (Yes when P(Yes) ≥ 0.5, or the
//! Yes/No the judge wrote where the backend has no log-probabilities; a tie goes to the
//! soft score), and the step's score is the soft score: the mean P(Yes) over the
//! judgments, or the share of Yes verdicts where log-probabilities are unavailable.
//! [`GenPrmScore::Majority`] scores 1/0 by the verdict instead. Every generated and
//! prompt token goes in the judge columns of [`Spent`].

use crate::judge::p_yes;
use crate::{JudgeTemplate, ScoreError, Scored, StepScorer, engine_err};
use async_trait::async_trait;
use std::sync::Arc;
use stepwise_core::{Problem, Spent, Step, StepScore};
use stepwise_model::{EngineError, FinishReason, GenerateRequest, Generator, SamplingParams};
use stepwise_sandbox::{Outcome, Sandbox};

const GENPRM_DEFAULT: &str = include_str!("../prompts/genprm.txt");

/// The built-in GenPRM template (placeholders of [`JudgeTemplate`]).
pub fn genprm_template() -> JudgeTemplate {
    JudgeTemplate::parse(GENPRM_DEFAULT, "built-in prompts/genprm.txt")
        // The built-in file is tested below; failing here is a build defect.
        .unwrap_or_else(|e| panic!("built-in genprm prompt is malformed: {e}"))
}

/// What a step's score is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GenPrmScore {
    /// Mean P(Yes) (the share of Yes verdicts without log-probabilities).
    #[default]
    Mean,
    /// 1 when the majority verdict is Yes, else 0.
    Majority,
}

/// Settings of [`GenPrmScorer`].
#[derive(Debug, Clone, PartialEq)]
pub struct GenPrmSettings {
    /// Judgments per step (the paper's Maj@8).
    pub m: usize,
    /// Tokens of each analysis (with its code).
    pub max_tokens: u32,
    pub temperature: f32,
    /// Text appended before the verdict token.
    pub cue: String,
    /// Characters of the code's output shown to the judge.
    pub max_output_chars: usize,
    pub score: GenPrmScore,
    /// Limits of each code run.
    pub limits: stepwise_sandbox::Limits,
}

impl Default for GenPrmSettings {
    fn default() -> Self {
        Self {
            m: 8,
            max_tokens: 512,
            temperature: 0.7,
            cue: "<output>\n**Judgement**: $\\boxed{".into(),
            max_output_chars: 1000,
            score: GenPrmScore::Mean,
            limits: stepwise_sandbox::Limits {
                cpu_secs: 2,
                wall_ms: 5_000,
                ..stepwise_sandbox::Limits::default()
            },
        }
    }
}

/// The GenPRM scorer (see the module documentation).
pub struct GenPrmScorer {
    judge: Arc<dyn Generator>,
    template: JudgeTemplate,
    sandbox: Sandbox,
    pub settings: GenPrmSettings,
    /// Seed of the analysis samples.
    pub seed: u64,
    pub yes: Vec<String>,
    pub no: Vec<String>,
}

/// One judgment of one step.
#[derive(Debug, Clone, PartialEq)]
struct Judgment {
    /// P(Yes) when log-probabilities were read.
    p: Option<f64>,
    /// The verdict: `Some(true)` Yes, `Some(false)` No, `None` none could be read.
    verdict: Option<bool>,
    /// The sandbox outcome's kind when code ran.
    code: Option<&'static str>,
}

/// The last ```python block of a text.
fn python_block(text: &str) -> Option<&str> {
    let open = text.rfind("```python")?;
    let body = &text[open + "```python".len()..];
    let body = body.strip_prefix('\n').unwrap_or(body);
    let close = body.find("```")?;
    Some(&body[..close])
}

/// What the judge is shown of a run.
fn shown_output(outcome: &Outcome, stderr: &str, max: usize) -> String {
    let cut = |s: &str| -> String {
        if s.chars().count() > max {
            let t: String = s.chars().take(max).collect();
            format!("{t}\n[output cut]")
        } else {
            s.to_string()
        }
    };
    match outcome {
        Outcome::Ok { stdout } => cut(stdout.trim_end()),
        Outcome::Timeout => "Timeout: the code ran past its time limit".into(),
        Outcome::MemoryLimit => "MemoryError: the code ran past its memory limit".into(),
        Outcome::OutputLimit => "Error: the code printed more than its output limit".into(),
        Outcome::Error { .. } => {
            // the end of a traceback says what went wrong
            let lines: Vec<&str> = stderr.trim_end().lines().collect();
            let tail = lines[lines.len().saturating_sub(5)..].join("\n");
            cut(&tail)
        }
    }
}

/// The verdict a judge wrote: its first word, Yes or No.
fn written_verdict(text: &str) -> Option<bool> {
    let word: String = text
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect();
    match word.to_ascii_lowercase().as_str() {
        "yes" | "correct" => Some(true),
        "no" | "incorrect" => Some(false),
        _ => None,
    }
}

/// Majority verdict and soft score of a step's judgments; `None` without any verdict.
/// The soft score is the mean P(Yes) over judgments that have one, else the share of Yes
/// verdicts; a tie of votes goes to the soft score (Yes when ≥ 0.5).
fn combine(js: &[Judgment]) -> Option<(bool, f64, usize, usize)> {
    let yes = js.iter().filter(|j| j.verdict == Some(true)).count();
    let no = js.iter().filter(|j| j.verdict == Some(false)).count();
    if yes + no == 0 {
        return None;
    }
    let ps: Vec<f64> = js.iter().filter_map(|j| j.p).collect();
    let soft = if ps.is_empty() {
        yes as f64 / (yes + no) as f64
    } else {
        ps.iter().sum::<f64>() / ps.len() as f64
    };
    let majority = match yes.cmp(&no) {
        std::cmp::Ordering::Greater => true,
        std::cmp::Ordering::Less => false,
        std::cmp::Ordering::Equal => soft >= 0.5,
    };
    Some((majority, soft, yes, no))
}

impl GenPrmScorer {
    /// A judge model (any [`Generator`]), the built-in template and default settings.
    pub fn new(judge: Arc<dyn Generator>, sandbox: Sandbox) -> Self {
        Self {
            judge,
            template: genprm_template(),
            sandbox,
            settings: GenPrmSettings::default(),
            seed: 0,
            yes: vec!["Yes".into(), " Yes".into()],
            no: vec!["No".into(), " No".into()],
        }
    }

    pub fn with_template(mut self, template: JudgeTemplate) -> Self {
        self.template = template;
        self
    }

    pub fn with_settings(mut self, settings: GenPrmSettings) -> Self {
        self.settings = settings;
        self.settings.m = self.settings.m.max(1);
        self
    }

    /// Runs `code` in the sandbox off the async runtime.
    async fn run_code(&self, code: String) -> (String, &'static str) {
        let sandbox = self.sandbox.clone();
        let max = self.settings.max_output_chars;
        let run = tokio::task::spawn_blocking(move || sandbox.run(&code, "")).await;
        match run {
            Ok(Ok(r)) => (shown_output(&r.outcome, &r.stderr, max), r.outcome.kind()),
            Ok(Err(e)) => {
                tracing::warn!("genprm: {e}");
                (
                    format!("Error: the code could not run ({e})"),
                    "sandbox_failed",
                )
            }
            Err(e) => {
                tracing::warn!("genprm: sandbox task: {e}");
                ("Error: the code could not run".into(), "sandbox_failed")
            }
        }
    }

    /// Reads the verdict after `context`: P(Yes) where the backend gives log-probabilities,
    /// else the word the judge writes (a short greedy continuation).
    async fn verdict(
        &self,
        prompt: &stepwise_model::Prompt,
        context: &str,
        spent: &mut Spent,
    ) -> Result<(Option<f64>, Option<bool>), ScoreError> {
        let cands: Vec<String> = self.yes.iter().chain(&self.no).cloned().collect();
        match self
            .judge
            .next_token_logprobs(prompt, context, &cands)
            .await
        {
            Ok(lp) => {
                spent.judge_calls += 1;
                spent.judge_prompt_tokens += lp.prompt_tokens;
                if let Some(p) = p_yes(self.yes.len(), &lp.logprobs) {
                    return Ok((Some(p), Some(p >= 0.5)));
                }
            }
            Err(EngineError::Unsupported(_)) => {}
            Err(e) => return Err(engine_err("genprm")(e)),
        }
        let req = GenerateRequest {
            prompt: prompt.clone(),
            assistant_prefix: context.to_string(),
            params: SamplingParams {
                n: 1,
                temperature: 0.0,
                max_tokens: 4,
                seed: self.seed,
                ..SamplingParams::default()
            },
        };
        let outs = crate::generate_charged(self.judge.as_ref(), &req, "genprm", spent).await?;
        Ok((None, outs.iter().find_map(|c| written_verdict(&c.text))))
    }
}

#[async_trait]
impl StepScorer for GenPrmScorer {
    fn name(&self) -> String {
        "genprm".into()
    }

    async fn score_step(
        &self,
        problem: &Problem,
        prefix: &[Step],
        step: &Step,
        answer: Option<&str>,
    ) -> Result<Scored, ScoreError> {
        let (prompt, assistant) = self.template.render_step(problem, prefix, step, answer)?;
        let s = &self.settings;
        let mut spent = Spent::default();
        let req = GenerateRequest {
            prompt: prompt.clone(),
            assistant_prefix: assistant.clone(),
            params: SamplingParams {
                n: s.m,
                temperature: s.temperature,
                max_tokens: s.max_tokens,
                // the judge stops where stepwise takes over: after its code, or where it
                // starts a verdict or a code output of its own
                stop: vec![
                    "</verify>".into(),
                    "[Code Output]".into(),
                    "<output>".into(),
                ],
                seed: self.seed,
                ..SamplingParams::default()
            },
        };
        let outs = crate::generate_charged(self.judge.as_ref(), &req, "genprm", &mut spent).await?;
        let mut judgments = Vec::with_capacity(outs.len());
        for c in &outs {
            let mut context = format!("{assistant}{}", c.text.trim_end());
            if c.finish == FinishReason::Stop("</verify>".into()) {
                context.push_str("\n</verify>");
            }
            context.push('\n');
            let mut code_kind = None;
            if let Some(code) = python_block(&c.text) {
                let (shown, kind) = self.run_code(code.to_string()).await;
                code_kind = Some(kind);
                context.push_str(&format!("[Code Output]\n```\n{shown}\n```\n"));
            }
            context.push_str(&s.cue);
            let (p, verdict) = self.verdict(&prompt, &context, &mut spent).await?;
            judgments.push(Judgment {
                p,
                verdict,
                code: code_kind,
            });
        }
        let ran = judgments.iter().filter(|j| j.code.is_some()).count();
        let ran_ok = judgments.iter().filter(|j| j.code == Some("ok")).count();
        let (score, detail) = match combine(&judgments) {
            None => (
                0.5,
                format!(
                    "no verdict in {} judgment(s); code ran in {ran} ({ran_ok} ok)",
                    judgments.len()
                ),
            ),
            Some((majority, soft, yes, no)) => {
                let score = match s.score {
                    GenPrmScore::Mean => soft,
                    GenPrmScore::Majority => f64::from(u8::from(majority)),
                };
                let word = if majority { "Yes" } else { "No" };
                (
                    score,
                    format!(
                        "majority {word} ({yes} Yes, {no} No of {}), soft {soft:.3}; code ran in {ran} ({ran_ok} ok)",
                        judgments.len()
                    ),
                )
            }
        };
        Ok(Scored {
            scores: vec![StepScore::new(prefix.len(), score, "genprm").with_detail(detail)],
            spent,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stepwise_model::Prompt;
    use stepwise_model::scripted::ScriptedGenerator;

    fn user_text(p: &Prompt) -> String {
        match p {
            Prompt::Chat(m) => m.last().map(|m| m.content.clone()).unwrap_or_default(),
            Prompt::Text(t) => t.clone(),
        }
    }

    fn sandbox() -> Sandbox {
        Sandbox::new(GenPrmSettings::default().limits).expect("python3")
    }

    fn step(text: &str) -> Step {
        Step {
            index: 0,
            text: text.into(),
        }
    }

    #[test]
    fn combines_by_majority_with_the_mean_p_yes() {
        let j = |p: Option<f64>, v: Option<bool>| Judgment {
            p,
            verdict: v,
            code: None,
        };
        // P(Yes) 0.9, 0.8, 0.2: majority Yes (2-1), soft (0.9+0.8+0.2)/3
        let (maj, soft, yes, no) = combine(&[
            j(Some(0.9), Some(true)),
            j(Some(0.8), Some(true)),
            j(Some(0.2), Some(false)),
        ])
        .unwrap();
        assert!(maj);
        assert!((soft - 1.9 / 3.0).abs() < 1e-12);
        assert_eq!((yes, no), (2, 1));
        // no log-probabilities: the share of Yes verdicts; a verdictless judgment abstains
        let (maj, soft, _, _) = combine(&[
            j(None, Some(false)),
            j(None, Some(false)),
            j(None, Some(true)),
            j(None, None),
        ])
        .unwrap();
        assert!(!maj);
        assert!((soft - 1.0 / 3.0).abs() < 1e-12);
        // a tie goes to the soft score: (0.6 + 0.45) / 2 = 0.525 -> Yes
        let (maj, _, _, _) =
            combine(&[j(Some(0.6), Some(true)), j(Some(0.45), Some(false))]).unwrap();
        assert!(maj);
        assert!(combine(&[j(None, None)]).is_none());
    }

    #[tokio::test]
    async fn runs_the_judges_code_and_shows_its_output_before_the_verdict() {
        // Judgment 0 checks 12*7 with code (prints 84); judgment 1 writes no code and says
        // the step is wrong. The verdict follows what the context shows.
        let g = Arc::new(
            ScriptedGenerator::new(|req, i| {
                if req.params.max_tokens == 4 {
                    unreachable!("log-probabilities are available");
                }
                if i == 0 {
                    "The step multiplies 12 by 7.\n</analyze>\n<verify>\n```python\nprint(12 * 7)\n```\n</verify>\nmore text".into()
                } else {
                    "12 * 7 is not 84, I think.\n</analyze>\n<output>".into()
                }
            })
            .with_judge(|_, ctx, c| {
                assert_eq!(c, ["Yes", " Yes", "No", " No"]);
                let y: f32 = if ctx.contains("[Code Output]\n```\n84\n```") { 0.9 } else { 0.3 };
                vec![Some(y.ln()), None, Some((1.0 - y).ln()), None]
            }),
        );
        let seen = g.clone();
        let scorer = GenPrmScorer::new(g, sandbox()).with_settings(GenPrmSettings {
            m: 2,
            ..GenPrmSettings::default()
        });
        let p = Problem::new("p", "What is 12 * 7?");
        let s = scorer
            .score_step(
                &p,
                &[step("We need 12 * 7.")],
                &step("12 * 7 = 84"),
                Some("84"),
            )
            .await
            .unwrap();
        // exact prompt of the analysis request
        let reqs = seen.requests();
        assert_eq!(reqs.len(), 1);
        let user = user_text(&reqs[0].prompt);
        assert!(user.starts_with("Problem: What is 12 * 7?\n\nSolution:\nStep 1: We need 12 * 7.\nStep 2: 12 * 7 = 84\n\nVerify step 2."), "{user}");
        assert_eq!(reqs[0].assistant_prefix, "<analyze>");
        assert_eq!(reqs[0].params.n, 2);
        assert_eq!(
            reqs[0].params.stop,
            ["</verify>", "[Code Output]", "<output>"]
        );
        // one Yes (0.9 after the code's 84) and one No (0.3): tie -> soft 0.6 -> Yes
        let sc = &s.scores[0];
        assert_eq!(sc.step, 1);
        assert!((sc.score - 0.6).abs() < 1e-6, "{sc:?}");
        let d = sc.detail.as_deref().unwrap();
        assert!(d.starts_with("majority Yes (1 Yes, 1 No of 2)"), "{d}");
        assert!(d.contains("code ran in 1 (1 ok)"), "{d}");
        // tokens: one generate call (2 samples) + 2 verdict reads, all judge columns
        assert_eq!(s.spent.judge_calls, 3);
        assert_eq!(s.spent.policy_calls, 0);
        let words = |t: &str| stepwise_model::scripted::count_tokens(t);
        assert_eq!(
            s.spent.judge_tokens,
            words(
                "The step multiplies 12 by 7.\n</analyze>\n<verify>\n```python\nprint(12 * 7)\n```\n"
            ) + words("12 * 7 is not 84, I think.\n</analyze>\n")
        );
        assert!(s.spent.judge_prompt_tokens > 0);
    }

    #[tokio::test]
    async fn without_logprobs_the_written_verdicts_are_counted() {
        // No `with_judge`: next_token_logprobs is unsupported, so each verdict is generated.
        let g = Arc::new(ScriptedGenerator::new(|req, i| {
            if req.params.max_tokens == 4 {
                // the verdict continuation: Yes only when the code printed True
                if req
                    .assistant_prefix
                    .contains("[Code Output]\n```\nTrue\n```")
                {
                    "Yes}$".into()
                } else {
                    "No}$".into()
                }
            } else if i < 2 {
                "check\n</analyze>\n<verify>\n```python\nprint(3 + 4 == 7)\n```\n".into()
            } else {
                "check\n</analyze>\n<verify>\n```python\nprint(1/0)\n```\n".into()
            }
        }));
        let scorer = GenPrmScorer::new(g.clone(), sandbox()).with_settings(GenPrmSettings {
            m: 3,
            ..GenPrmSettings::default()
        });
        let s = scorer
            .score_step(&Problem::new("p", "3 + 4?"), &[], &step("3 + 4 = 7"), None)
            .await
            .unwrap();
        // 2 Yes (code printed True), 1 No (ZeroDivisionError shown): share 2/3
        assert!((s.scores[0].score - 2.0 / 3.0).abs() < 1e-9);
        let d = s.scores[0].detail.as_deref().unwrap();
        assert!(d.contains("code ran in 3 (2 ok)"), "{d}");
        // the failing run's traceback end reached the judge
        let reqs = g.requests();
        let failed = reqs
            .iter()
            .find(|r| r.params.max_tokens == 4 && r.assistant_prefix.contains("ZeroDivisionError"))
            .expect("the error was shown");
        assert!(
            failed
                .assistant_prefix
                .ends_with("<output>\n**Judgement**: $\\boxed{")
        );
        // 1 analysis call + 3 verdict generations (each "Yes}$"/"No}$": 1 token)
        assert_eq!(s.spent.judge_calls, 4);
        let words = stepwise_model::scripted::count_tokens;
        let ok = "check\n</analyze>\n<verify>\n```python\nprint(3 + 4 == 7)\n```\n";
        let bad = "check\n</analyze>\n<verify>\n```python\nprint(1/0)\n```\n";
        assert_eq!(words(ok), 10);
        assert_eq!(s.spent.judge_tokens, 2 * words(ok) + words(bad) + 3);
        // majority mode scores by the vote
        let scorer = GenPrmScorer::new(g, sandbox()).with_settings(GenPrmSettings {
            m: 3,
            score: GenPrmScore::Majority,
            ..GenPrmSettings::default()
        });
        let s = scorer
            .score_step(&Problem::new("p", "3 + 4?"), &[], &step("3 + 4 = 7"), None)
            .await
            .unwrap();
        assert_eq!(s.scores[0].score, 1.0);
    }

    #[test]
    fn builtin_template_parses_and_helpers_read_what_judges_write() {
        let _ = genprm_template();
        assert_eq!(python_block("a\n```python\nx=1\n```\nb"), Some("x=1\n"));
        assert_eq!(python_block("no code"), None);
        assert_eq!(written_verdict(" Yes}$"), Some(true));
        assert_eq!(written_verdict("No."), Some(false));
        assert_eq!(written_verdict("maybe"), None);
        let long = Outcome::Ok {
            stdout: "x".repeat(20),
        };
        assert_eq!(shown_output(&long, "", 5), "xxxxx\n[output cut]");
    }
}
