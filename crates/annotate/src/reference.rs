//! Reference-guided single-pass labels (SPARE-style: Rizvi et al. 2025, "SPARE:
//! Single-Pass Annotation with Reference-Guided Evaluation").
//!
//! A judge model sees the problem, a reference solution and the candidate's numbered
//! steps, and in one generation aligns every step with a reference step and labels it
//! with a short reason. The prompt is a replaceable data file (`prompts/spare.txt`);
//! the judge answers one line per step,
//! `Step i: correct|incorrect | <aligned reference step> | <reason>`.
//! The judge is the policy model unless `annotate --judge-model` / `--judge-endpoint`
//! gave a model of its own ([`Policy::with_judge`]; SPARE labels a weak policy's solutions
//! with a stronger judge).
//!
//! A step the judge gives no parseable verdict for *abstains*: it gets no label, and is
//! never labelled good. Since a solution's labels cover a prefix of its steps
//! ([`crate::LabelledSolution::labels`]), the steps after it are left unlabelled too,
//! even those the judge gave a verdict for: with one step unknown, the first error of the
//! rest is unknown. The labels before it (a bad one included) are kept. Every step
//! without a verdict is counted in the unit's [`QuestionResult::abstained`] and in
//! annotate's summary line (`abstained: N`).

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

/// A solution's reference-guided labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    /// Labels of the steps before the first one the judge gave no verdict for.
    pub labels: Vec<StepLabel>,
    /// Steps the judge gave no parseable verdict for (abstentions).
    pub abstained: u64,
}

/// Labels from the judge's verdicts: one per step up to the first abstention (see the
/// module documentation).
pub fn labels_from_verdicts(verdicts: Vec<Option<JudgeVerdict>>) -> Judged {
    let abstained = verdicts.iter().filter(|v| v.is_none()).count() as u64;
    let labels = verdicts
        .into_iter()
        .map_while(|v| v)
        .map(|v| StepLabel {
            value: if v.good { 1.0 } else { 0.0 },
            good: v.good,
            rollouts: 0,
            correct: 0,
            reason: Some(if v.reason.is_empty() {
                "(no reason given)".into()
            } else {
                v.reason
            }),
        })
        .collect();
    Judged { labels, abstained }
}

/// Labels `solution` with one judge pass; adds its cost to `spent` (judge columns).
pub async fn label_solution(
    policy: &Policy,
    problem: &Problem,
    solution: &Solution,
    cfg: &ReferenceConfig,
    seed: u64,
    spent: &mut Spent,
) -> Result<Judged> {
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
    Ok(labels_from_verdicts(verdicts))
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
        let judged = label_solution(policy, problem, s, cfg, seed, &mut c).await?;
        tally.abstain(judged.abstained);
        tally.add(s, Some(judged.labels), c, 0);
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

    #[test]
    fn a_step_without_a_verdict_abstains_and_ends_the_labels() {
        let v = |good: bool| {
            Some(JudgeVerdict {
                good,
                reason: String::new(),
            })
        };
        // step 3 has no verdict: steps 1-2 keep theirs (a bad one too), 3-4 get none
        let j = labels_from_verdicts(vec![v(true), v(false), None, v(false)]);
        assert_eq!(j.abstained, 1);
        let good: Vec<bool> = j.labels.iter().map(|l| l.good).collect();
        assert_eq!(good, [true, false]);
        // two abstentions are two, and the first step's abstention leaves nothing
        let j = labels_from_verdicts(vec![None, v(true), None]);
        assert_eq!((j.abstained, j.labels.len()), (2, 0));
        let j = labels_from_verdicts(vec![v(true), v(true)]);
        assert_eq!((j.abstained, j.labels.len()), (0, 2));
    }
}
