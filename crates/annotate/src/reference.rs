//! Reference-guided single-pass labels (SPARE-style: Rizvi et al. 2025, "SPARE:
//! Single-Pass Annotation with Reference-Guided Evaluation").
//!
//! A judge model sees the problem, a reference solution and the candidate's numbered
//! steps, and in one generation aligns every step with a reference step and labels it
//! with a short reason. The prompt is a replaceable data file (`prompts/spare.txt`);
//! the judge answers one line per step,
//! `Step i: correct|incorrect | <aligned reference step> | <reason>`.
//! A step the judge gives no parseable verdict for is labelled good with value 0.5 and
//! the reason says so (it is counted, not hidden, in the label-quality table).

use crate::mc::{Solution, Tally};
use crate::policy::Policy;
use crate::{AnnotateError, Method, QuestionResult, Result, StepLabel, mix_seed};
use serde::{Deserialize, Serialize};
use stepwise_core::{Problem, Spent};
use stepwise_model::{ChatMessage, Prompt};
use stepwise_score::{PromptTemplate, fill_template};

const DEFAULT_TEMPLATE: &str = include_str!("../prompts/spare.txt");
const PLACEHOLDERS: [&str; 5] = ["question", "reference", "gold", "steps", "n"];

/// A judge prompt template: sections `### system`, `### user`, `### assistant`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JudgeTemplate {
    pub system: Option<String>,
    pub user: String,
    pub assistant: String,
}

impl Default for JudgeTemplate {
    fn default() -> Self {
        // The built-in file is parsed in a test; failing here would be a build defect.
        Self::parse(DEFAULT_TEMPLATE, "built-in prompts/spare.txt")
            .unwrap_or_else(|e| panic!("built-in judge prompt is malformed: {e}"))
    }
}

impl JudgeTemplate {
    /// The built-in template text (to copy and edit).
    pub fn default_text() -> &'static str {
        DEFAULT_TEMPLATE
    }

    /// Parses template text; `place` names it in errors. Sections and placeholders
    /// follow the score crate's prompt templates (`stepwise_score::PromptTemplate`).
    pub fn parse(text: &str, place: &str) -> Result<Self> {
        let t = PromptTemplate::parse(text, place, &PLACEHOLDERS).map_err(|e| {
            AnnotateError::Template {
                place: place.to_string(),
                reason: e.to_string(),
            }
        })?;
        Ok(Self {
            system: t.system,
            user: t.user,
            assistant: t.assistant,
        })
    }

    /// Reads a template file.
    pub fn load(path: &std::path::Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| AnnotateError::Template {
            place: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// The judge prompt for a solution.
    pub fn render(&self, problem: &Problem, steps: &[String]) -> Result<(Prompt, String)> {
        let gold = problem.gold.clone().unwrap_or_default();
        let reference = problem
            .reference
            .clone()
            .unwrap_or_else(|| format!("(no worked solution given) The answer is {gold}."));
        let numbered: Vec<String> = steps
            .iter()
            .enumerate()
            .map(|(i, s)| format!("Step {}: {}", i + 1, s.replace('\n', " ")))
            .collect();
        let numbered = numbered.join("\n");
        let n = steps.len().to_string();
        let vars = [
            ("question", problem.question.as_str()),
            ("reference", reference.as_str()),
            ("gold", gold.as_str()),
            ("steps", numbered.as_str()),
            ("n", n.as_str()),
        ];
        let f = |s: &str| {
            fill_template(s, &vars, "judge prompt").map_err(|e| AnnotateError::Template {
                place: "judge prompt".into(),
                reason: e.to_string(),
            })
        };
        let mut msgs = Vec::new();
        if let Some(s) = &self.system {
            msgs.push(ChatMessage::system(f(s)?));
        }
        msgs.push(ChatMessage::user(f(&self.user)?));
        Ok((Prompt::Chat(msgs), f(&self.assistant)?))
    }
}

/// One parsed judge line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JudgeVerdict {
    pub good: bool,
    pub reason: String,
}

/// Parses the judge's answer (`assistant_start` + generated text) into one verdict per
/// step (`None` where the judge said nothing parseable about a step).
pub fn parse_judgement(text: &str, n: usize) -> Vec<Option<JudgeVerdict>> {
    let mut out: Vec<Option<JudgeVerdict>> = vec![None; n];
    for line in text.lines() {
        let t = line.trim().trim_start_matches(['*', '#', '-', ' ']);
        let Some(head) = t.get(..4) else { continue };
        if !head.eq_ignore_ascii_case("step") {
            continue;
        }
        let rest = t[4..].trim_start();
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let Ok(num) = rest[..digits].parse::<usize>() else {
            continue;
        };
        if num == 0 || num > n || out[num - 1].is_some() {
            continue;
        }
        let body = rest[digits..].trim_start_matches([':', '.', ')', '*', ' ']);
        let lower = body.to_ascii_lowercase();
        let first_word: String = lower
            .trim_start_matches(['*', ' '])
            .chars()
            .take_while(|c| c.is_ascii_alphabetic())
            .collect();
        let good = match first_word.as_str() {
            "correct" | "right" | "yes" | "valid" => true,
            "incorrect" | "wrong" | "no" | "invalid" | "error" => false,
            _ => continue,
        };
        let reason = body
            .split_once('|')
            .map(|(_, r)| r.trim().to_string())
            .unwrap_or_default();
        out[num - 1] = Some(JudgeVerdict { good, reason });
    }
    out
}

/// Settings of the `reference` method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferenceConfig {
    /// Judge tokens per solution.
    pub max_tokens: u32,
    pub template: JudgeTemplate,
}

impl Default for ReferenceConfig {
    fn default() -> Self {
        Self {
            max_tokens: 256,
            template: JudgeTemplate::default(),
        }
    }
}

/// Labels `solution` with one judge pass; adds its cost to `spent` (judge columns).
pub async fn label_solution(
    policy: &Policy,
    problem: &Problem,
    solution: &Solution,
    cfg: &ReferenceConfig,
    seed: u64,
    spent: &mut Spent,
) -> Result<Vec<StepLabel>> {
    let (prompt, start) = cfg.template.render(problem, &solution.steps)?;
    let tag = format!("reference/{}", solution.sample);
    let text = policy
        .judge(
            problem,
            prompt,
            start.clone(),
            cfg.max_tokens,
            mix_seed(seed, &tag),
            spent,
        )
        .await?;
    let verdicts = parse_judgement(&format!("{start}{text}"), solution.steps.len());
    Ok(verdicts
        .into_iter()
        .map(|v| match v {
            Some(v) => StepLabel {
                value: if v.good { 1.0 } else { 0.0 },
                good: v.good,
                rollouts: 0,
                correct: 0,
                reason: Some(if v.reason.is_empty() {
                    "(no reason given)".into()
                } else {
                    v.reason
                }),
            },
            None => StepLabel {
                value: 0.5,
                good: true,
                rollouts: 0,
                correct: 0,
                reason: Some("judge gave no verdict for this step (defaulted to good)".into()),
            },
        })
        .collect())
}

/// Reference-guided labels of `samples` sampled solutions.
pub async fn label(
    policy: &Policy,
    problem: &Problem,
    samples: usize,
    cfg: &ReferenceConfig,
    seed: u64,
) -> Result<QuestionResult> {
    let (sols, mut tally) = Tally::sample(policy, problem, samples, seed).await?;
    for s in &sols {
        // The judge makes no rollouts: only the sampled solutions count.
        let mut c = Spent::default();
        let labels = label_solution(policy, problem, s, cfg, seed, &mut c).await?;
        tally.add(s, Some(labels), c, 0);
    }
    Ok(tally.finish(Method::Reference))
}

/// What a generator writes for a judgement of `lines` (one `Step i: ...` verdict line each)
/// under the built-in judge template: the template's assistant start (`Step 1:`) is
/// already in the prompt, so the generated text begins after it. The scripted and
/// simulated judges of `testing` and `sim` answer through this.
pub fn judged_after_builtin_start(lines: &[String]) -> String {
    let joined = lines.join("\n");
    match joined.strip_prefix("Step 1:") {
        Some(rest) => rest.to_string(),
        None => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_template_renders() {
        let t = JudgeTemplate::default();
        let p = Problem::new("p", "What is 3 + 4?")
            .with_gold("7")
            .with_reference("3 + 4 = 7");
        let (prompt, start) = t
            .render(&p, &["3 + 4 = 8".into(), "The answer is 8.".into()])
            .unwrap();
        let Prompt::Chat(m) = prompt else { panic!() };
        let user = &m.last().unwrap().content;
        assert!(
            user.contains("Step 1: 3 + 4 = 8\nStep 2: The answer is 8."),
            "{user}"
        );
        assert!(user.contains("exactly 2 lines"));
        assert_eq!(start, "Step 1:");
    }

    #[test]
    fn bad_templates_are_errors_naming_the_place() {
        for bad in [
            "no header",
            "### user\n{nope}",
            "### user\n{question",
            "### tool\nx",
            "### user\na } b",
        ] {
            let e = JudgeTemplate::parse(bad, "my.txt").unwrap_err().to_string();
            assert!(e.contains("my.txt"), "{bad}: {e}");
        }
    }

    #[test]
    fn parses_verdicts_and_reasons() {
        let v = parse_judgement(
            "Step 1: correct | ref 1 | adds right\nStep 2: Incorrect | none | 7 not 8\nStep 2: correct\nstep 9: correct\n",
            3,
        );
        assert_eq!(
            v[0],
            Some(JudgeVerdict {
                good: true,
                reason: "ref 1 | adds right".into()
            })
        );
        assert!(!v[1].as_ref().unwrap().good);
        assert_eq!(v[2], None);
        assert_eq!(parse_judgement("garbage", 2), vec![None, None]);
    }
}
