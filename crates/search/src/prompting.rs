//! Prompt programs: a policy prompt made of a task template and demos chosen by a rule,
//! transformed by a prompting method, built per problem and stored with the run.
//!
//! A program ([`PromptingSettings`], stored in the run's `SearchSettings`) holds:
//!
//! - a **template** with placeholders `{question}` and `{demos}` (the registry
//!   [`TASKS`] has one per task family, chosen by the dataset or `--prompt-task`;
//!   `{schema}`, `{handbook}` and `{mistakes}` are reserved names whose methods are not
//!   built yet, and a template using them is refused);
//! - a **demo pool** resolved when the run is created (the dataset's own problems with
//!   reference solutions, another dataset, or a stored run's verified samples), and the
//!   **rule** choosing `k` of them per question ([`DemoRule`]: fixed, random with a seed,
//!   nearest by token Jaccard similarity);
//! - a **method** ([`PromptMethod`]): plain demos, step-length and format rewrites (pure
//!   text transforms), or CD-CoT (model calls, counted in the unit's `Spent`).
//!
//! [`Program::build`] turns these into the problem's [`PolicyPrompt`] and a
//! [`BuiltPrompt`] (method, demo ids, seed, the user message, what building cost), which
//! `solve` and `scale` store in the unit's record.

use crate::{Context, SearchError};
use std::path::Path;
use stepwise_core::{Problem, Spent};
use stepwise_jobs::kinds::prompting::{
    BuiltPrompt, Demo, DemoRule, PromptMethod, PromptingSettings, RationaleFormat, StepLength,
};
use stepwise_model::{GenerateRequest, Prompt, SamplingParams};
use stepwise_score::{PolicyPrompt, PromptTemplate};

/// Placeholders a program template may name.
pub const PLACEHOLDERS: [&str; 5] = ["question", "demos", "schema", "handbook", "mistakes"];

/// A task template of the registry (supervised CoT: one template per task family).
#[derive(Debug, Clone, Copy)]
pub struct TaskTemplate {
    pub name: &'static str,
    pub about: &'static str,
    pub text: &'static str,
}

/// The registry of task templates (`crates/search/prompts/*.txt`).
pub const TASKS: [TaskTemplate; 4] = [
    TaskTemplate {
        name: "arith-chain",
        about: "arithmetic chains, one operation per step",
        text: include_str!("../prompts/arith-chain.txt"),
    },
    TaskTemplate {
        name: "word-problem",
        about: "word problems, one calculation per step",
        text: include_str!("../prompts/word-problem.txt"),
    },
    TaskTemplate {
        name: "multiple-choice",
        about: "multiple choice, each choice weighed, a letter answer",
        text: include_str!("../prompts/multiple-choice.txt"),
    },
    TaskTemplate {
        name: "code",
        about: "code tracing, one statement per step",
        text: include_str!("../prompts/code.txt"),
    },
];

const REPHRASE: &str = include_str!("../prompts/cd-cot-rephrase.txt");
const REPHRASE_VARS: [&str; 4] = [
    "clean_question",
    "clean_rationale",
    "noisy_question",
    "noisy_rationale",
];

/// The registry template `name`.
pub fn task_template(name: &str) -> Result<&'static TaskTemplate, SearchError> {
    TASKS.iter().find(|t| t.name == name).ok_or_else(|| {
        SearchError::Config(format!(
            "--prompt-task: unknown task template '{name}' (expected {})",
            TASKS.map(|t| t.name).join(", ")
        ))
    })
}

/// The task template a dataset spec calls for: `arith` chains → `arith-chain`, `arith`
/// word problems and GSM8K → `word-problem`, multiple-choice sets → `multiple-choice`,
/// code sets → `code`; anything else → `word-problem`.
pub fn task_for_dataset(spec: &str) -> &'static str {
    let s = spec.to_ascii_lowercase();
    if s.starts_with("arith") {
        if s.contains("kind=word") {
            "word-problem"
        } else {
            "arith-chain"
        }
    } else if ["mmlu", "choice", "arc", "csqa", "mcq"]
        .iter()
        .any(|k| s.contains(k))
    {
        "multiple-choice"
    } else if ["code", "humaneval", "mbpp", "cruxeval"]
        .iter()
        .any(|k| s.contains(k))
    {
        "code"
    } else {
        "word-problem"
    }
}

/// What the caller asks for (the flags of `solve` and `scale`), before the pool is read.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptingRequest {
    pub method: PromptMethod,
    /// Registry template; `None` picks one by the dataset.
    pub task: Option<String>,
    /// Template text of the caller's own; overrides `task`.
    pub template: Option<String>,
    pub rule: DemoRule,
    pub shots: usize,
    pub seed: u64,
    /// `self` (the dataset's own problems, the question itself left out), `data:SPEC`,
    /// or `run:ID` (a stored solve or scale run's verified samples).
    pub source: String,
}

/// Demos from problems that carry a reference solution (the others are passed over).
pub fn demos_from_problems(problems: &[Problem]) -> Vec<Demo> {
    problems
        .iter()
        .filter_map(|p| {
            p.reference.as_ref().map(|r| Demo {
                id: p.id.clone(),
                question: p.question.clone(),
                rationale: r.trim().to_string(),
                answer: p.gold.clone(),
            })
        })
        .collect()
}

/// Demos from a stored `solve` or `scale` run: per problem, its first sample whose
/// answer verified (id `run:ID/PROBLEM#SAMPLE`).
pub fn demos_from_run(
    store: &dyn stepwise_jobs::RunStore,
    run: stepwise_jobs::RunId,
    verify: &stepwise_verify::Options,
) -> Result<Vec<Demo>, SearchError> {
    use stepwise_jobs::kinds::scale::{Scale, ScaleRecord};
    use stepwise_jobs::kinds::solve::Solve;
    let err = |e: String| SearchError::Config(format!("demo source run:{run}: {e}"));
    let info = store.run(run).map_err(|e| err(e.to_string()))?;
    let problems = store.problems(run).map_err(|e| err(e.to_string()))?;
    let by_id: std::collections::HashMap<&str, &Problem> =
        problems.iter().map(|p| (p.id.as_str(), p)).collect();
    let per_problem: Vec<(String, Vec<crate::Sample>)> = match info.kind.as_str() {
        "solve" => stepwise_jobs::records::<Solve>(store, run)
            .map_err(|e| err(e.to_string()))?
            .into_iter()
            .map(|(_, r)| (r.outcome.problem_id.clone(), r.outcome.samples))
            .collect(),
        "scale" => stepwise_jobs::records::<Scale>(store, run)
            .map_err(|e| err(e.to_string()))?
            .into_iter()
            .filter_map(|(_, r)| match r {
                ScaleRecord::Samples {
                    problem_id,
                    samples,
                    ..
                } => Some((problem_id, samples)),
                ScaleRecord::Tree { .. } => None,
            })
            .collect(),
        other => {
            return Err(err(format!(
                "a '{other}' run has no samples to take demos from (use a solve or scale run)"
            )));
        }
    };
    let mut out = Vec::new();
    for (pid, samples) in per_problem {
        let Some(p) = by_id.get(pid.as_str()) else {
            continue;
        };
        let right = samples.iter().enumerate().find(|(_, s)| {
            stepwise_jobs::answer_correct(p, s.rationale.answer.as_deref(), verify) == Some(true)
        });
        if let Some((i, s)) = right {
            out.push(Demo {
                id: format!("run:{run}/{pid}#{i}"),
                question: p.question.clone(),
                rationale: s.text.trim().to_string(),
                answer: s.rationale.answer.clone(),
            });
        }
    }
    Ok(out)
}

/// The stored program `request` describes for a run over `dataset` (its `problems`):
/// the template chosen and the pool read now. `store` serves `run:ID` sources.
pub fn resolve(
    request: &PromptingRequest,
    dataset: &str,
    problems: &[Problem],
    store: Option<&dyn stepwise_jobs::RunStore>,
    data_dir: Option<&Path>,
) -> Result<PromptingSettings, SearchError> {
    let cfg = SearchError::Config;
    let task = match &request.task {
        Some(t) => task_template(t)?.name,
        None => task_for_dataset(dataset),
    };
    let template = match &request.template {
        Some(t) => t.clone(),
        None => task_template(task)?.text.to_string(),
    };
    let source = request.source.trim();
    // A noisy pool brings its own clean demo for CD-CoT (`noisy_demos`).
    let mut noisy_clean = None;
    let mut pool = if source == "self" {
        demos_from_problems(problems)
    } else if let Some(spec) = source.strip_prefix("data:") {
        let ps = stepwise_data::load_spec(spec, None, data_dir)
            .map_err(|e| cfg(format!("--demo-source {source}: {e}")))?;
        demos_from_problems(&ps)
    } else if let Some(id) = source.strip_prefix("run:") {
        let run: i64 = id.parse().map_err(|_| {
            cfg(format!(
                "--demo-source {source}: '{id}' is not a run id (expected run:ID)"
            ))
        })?;
        let store = store.ok_or_else(|| cfg(format!("--demo-source {source}: no store open")))?;
        demos_from_run(store, run, &Default::default())?
    } else if let Some(spec) = source.strip_prefix("noisy:") {
        let (pool, clean) = crate::noisy_demos::pool(spec)?;
        noisy_clean = Some(clean);
        pool
    } else {
        return Err(cfg(format!(
            "--demo-source '{source}': expected self, data:SPEC, run:ID or noisy:SPEC"
        )));
    };
    // CD-CoT rephrases against one clean demo: the pool's first, kept out of the pool.
    let clean = match request.method {
        PromptMethod::CdCot { .. } if noisy_clean.is_some() => noisy_clean,
        PromptMethod::CdCot { .. } if !pool.is_empty() => Some(pool.remove(0)),
        _ => None,
    };
    let settings = PromptingSettings {
        method: request.method,
        task: task.to_string(),
        template,
        rule: request.rule,
        shots: request.shots,
        seed: request.seed,
        source: source.to_string(),
        pool,
        clean,
    };
    Program::new(settings.clone())?;
    Ok(settings)
}

/// A program ready to build prompts.
#[derive(Debug, Clone)]
pub struct Program {
    settings: PromptingSettings,
    rephrase: PromptTemplate,
}

impl Program {
    /// Checks `settings`: a template with `{question}` and known placeholders only (those
    /// of methods not built yet refused by name), demos to choose from, a clean demo for
    /// CD-CoT.
    pub fn new(settings: PromptingSettings) -> Result<Self, SearchError> {
        let cfg = |m: String| SearchError::Config(format!("prompt program: {m}"));
        if settings.shots == 0 {
            return Err(cfg("--shots must be at least 1".into()));
        }
        if settings.pool.is_empty() {
            return Err(cfg(format!(
                "demo source '{}' gave no demos (problems need a reference solution, runs a verified sample)",
                settings.source
            )));
        }
        if matches!(settings.method, PromptMethod::CdCot { .. }) && settings.clean.is_none() {
            return Err(cfg("cd-cot needs a clean demo".into()));
        }
        // The template parses with every placeholder; only {question} and {demos} have
        // methods that fill them.
        PromptTemplate::parse(&settings.template, "prompt program template", &PLACEHOLDERS)
            .map_err(|e| cfg(e.to_string()))?;
        for name in ["schema", "handbook", "mistakes"] {
            if settings.template.contains(&format!("{{{name}}}")) {
                return Err(cfg(format!(
                    "placeholder {{{name}}} needs the '{name}' method, which is not built yet"
                )));
            }
        }
        if !settings.template.contains("{question}") {
            return Err(cfg("the template has no {question}".into()));
        }
        let rephrase =
            PromptTemplate::parse(REPHRASE, "built-in cd-cot-rephrase.txt", &REPHRASE_VARS)
                .map_err(|e| cfg(e.to_string()))?;
        Ok(Self { settings, rephrase })
    }

    pub fn settings(&self) -> &PromptingSettings {
        &self.settings
    }

    /// The seed of `problem`: the program's seed mixed with the problem id, so a problem's
    /// demos depend only on it and the config.
    pub fn seed_for(&self, problem: &Problem) -> u64 {
        self.settings.seed ^ crate::fnv1a(&problem.id)
    }

    /// The demos the rule picks for `problem` (never the problem itself), in order.
    pub fn select(&self, problem: &Problem) -> Vec<&Demo> {
        let cands: Vec<&Demo> = self
            .settings
            .pool
            .iter()
            .filter(|d| d.id != problem.id && d.question != problem.question)
            .collect();
        let k = self.settings.shots.min(cands.len());
        match self.settings.rule {
            DemoRule::Fixed => cands.into_iter().take(k).collect(),
            DemoRule::Random => {
                let mut rng = SplitMix64(self.seed_for(problem));
                let mut idx: Vec<usize> = (0..cands.len()).collect();
                for i in 0..k {
                    let j = i + (rng.next() % (idx.len() - i) as u64) as usize;
                    idx.swap(i, j);
                }
                idx[..k].iter().map(|&i| cands[i]).collect()
            }
            DemoRule::Nearest => {
                let q = tokens(&problem.question);
                let mut scored: Vec<(f64, usize)> = cands
                    .iter()
                    .enumerate()
                    .map(|(i, d)| (jaccard(&q, &tokens(&d.question)), i))
                    .collect();
                // highest similarity first; ties keep pool order
                scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
                scored[..k].iter().map(|&(_, i)| cands[i]).collect()
            }
        }
    }

    /// The problem's policy prompt and what was asked: demos chosen, transformed by the
    /// method (CD-CoT calls the policy; its cost is in the returned [`BuiltPrompt`]).
    pub async fn build(
        &self,
        problem: &Problem,
        ctx: &Context,
    ) -> Result<(PolicyPrompt, BuiltPrompt), SearchError> {
        let seed = self.seed_for(problem);
        let chosen = self.select(problem);
        let mut spent = Spent::default();
        let demos: Vec<Demo> = match self.settings.method {
            PromptMethod::Demos => chosen.into_iter().cloned().collect(),
            PromptMethod::StepLength { length } => chosen
                .into_iter()
                .map(|d| Demo {
                    rationale: step_length(&d.question, &d.rationale, length),
                    ..d.clone()
                })
                .collect(),
            PromptMethod::Format { format } => chosen
                .into_iter()
                .map(|d| Demo {
                    rationale: rationale_format(&d.rationale, format),
                    ..d.clone()
                })
                .collect(),
            PromptMethod::CdCot { rephrasings } => {
                self.denoise(problem, ctx, &chosen, rephrasings, seed, &mut spent)
                    .await?
            }
        };
        let block = render_demos(&demos);
        let bound = bind(body(&self.settings.template), &[("demos", &block)]);
        let prompt = PolicyPrompt::parse(&bound, "prompt program")
            .map_err(|e| SearchError::Config(format!("prompt program for {}: {e}", problem.id)))?;
        let (rendered, _) = prompt.render(problem).map_err(|e| SearchError::Score {
            problem: problem.id.clone(),
            source: e,
        })?;
        Ok((
            prompt,
            BuiltPrompt {
                method: self.settings.method.name(),
                demos: demos.iter().map(|d| d.id.clone()).collect(),
                seed,
                text: user_text(&rendered),
                spent,
            },
        ))
    }

    /// CD-CoT's rephrase and select steps (Zhou et al., NeurIPS 2024, *Can Language Models
    /// Perform Robust Reasoning in Chain-of-thought Prompting with Noisy Rationales?*):
    /// each noisy demo is shown beside the clean one and the policy samples `rephrasings`
    /// rewrites of its rationale; the first rewrite whose answer verifies equal to the
    /// demo's own answer replaces it, and a demo with no agreeing rewrite is dropped. The
    /// explore-and-exploit step (several paths, then a vote) is the strategy's: run it
    /// with `majority` at the `n` wanted. The paper explores several contexts, each with
    /// different kept rephrasings; here every path shares one context (the first agreeing
    /// rewrite per demo).
    async fn denoise(
        &self,
        problem: &Problem,
        ctx: &Context,
        chosen: &[&Demo],
        rephrasings: usize,
        seed: u64,
        spent: &mut Spent,
    ) -> Result<Vec<Demo>, SearchError> {
        let Some(clean) = &self.settings.clean else {
            return Err(SearchError::Config("cd-cot needs a clean demo".into()));
        };
        let mut kept = Vec::new();
        for (j, d) in chosen.iter().enumerate() {
            let (prompt, start) = self
                .rephrase
                .render(&[
                    ("clean_question", &clean.question),
                    ("clean_rationale", &clean.rationale),
                    ("noisy_question", &d.question),
                    ("noisy_rationale", &d.rationale),
                ])
                .map_err(|e| SearchError::Config(e.to_string()))?;
            let req = GenerateRequest {
                prompt,
                assistant_prefix: start,
                params: SamplingParams {
                    n: rephrasings,
                    seed: seed ^ ((j as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
                    stop: ctx.stop.clone(),
                    ..ctx.sampling.clone()
                },
            };
            let outs = ctx
                .policy
                .generate(&req)
                .await
                .map_err(|e| SearchError::Policy {
                    problem: problem.id.clone(),
                    source: e,
                })?;
            spent.policy_calls += 1;
            for c in &outs {
                spent.policy_tokens += c.generated_tokens;
                spent.policy_prompt_tokens += c.prompt_tokens;
            }
            let agree = outs.iter().enumerate().find_map(|(i, c)| {
                let text = ctx.cut_after_answer(&c.text);
                let answer = ctx.parse(&text).answer?;
                let gold = d.answer.as_deref()?;
                (stepwise_verify::verify(gold, &answer, &ctx.verify)
                    == stepwise_verify::Verdict::Equal)
                    .then_some((i, text))
            });
            match agree {
                Some((i, text)) => kept.push(Demo {
                    id: format!("{}~r{i}", d.id),
                    question: d.question.clone(),
                    rationale: text,
                    answer: d.answer.clone(),
                }),
                None => tracing::debug!(demo = %d.id, "cd-cot: no rephrasing agrees; dropped"),
            }
        }
        Ok(kept)
    }
}

/// The user message of a rendered chat prompt (all user turns joined).
fn user_text(p: &Prompt) -> String {
    match p {
        Prompt::Chat(msgs) => msgs
            .iter()
            .filter(|m| m.role == stepwise_model::Role::User)
            .map(|m| m.content.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        Prompt::Text(t) => t.clone(),
    }
}

/// Demos as the `{demos}` block: `Question: …` / `Answer:` / the rationale, one blank
/// line between demos.
pub fn render_demos(demos: &[Demo]) -> String {
    demos
        .iter()
        .map(|d| format!("Question: {}\nAnswer:\n{}", d.question, d.rationale))
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// Template text from its first section header on: the comment lines above it may name
/// placeholders (`# Placeholders: {question}, {demos}`), which must not be filled.
fn body(template: &str) -> &str {
    let mut at = 0;
    for line in template.split_inclusive('\n') {
        if line.starts_with("### ") {
            return &template[at..];
        }
        at += line.len();
    }
    template
}

/// Fills the named placeholders of template text with their values (braces in a value
/// escaped as `{{`/`}}`), leaving every other placeholder and escaped brace as it is, so
/// the result is still a template (with `{question}`).
pub fn bind(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(p) = rest.find(['{', '}']) {
        out.push_str(&rest[..p]);
        let tail = &rest[p..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            out.push_str(&tail[..2]);
            rest = &tail[2..];
            continue;
        }
        if tail.starts_with('{')
            && let Some(end) = tail.find('}')
            && let Some((_, v)) = vars.iter().find(|(k, _)| *k == &tail[1..end])
        {
            out.push_str(&v.replace('{', "{{").replace('}', "}}"));
            rest = &tail[end + 1..];
            continue;
        }
        out.push_str(&tail[..1]);
        rest = &tail[1..];
    }
    out.push_str(rest);
    out
}

/// Lower-case word tokens (runs of letters and digits) as a set.
fn tokens(s: &str) -> std::collections::BTreeSet<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Jaccard similarity |A ∩ B| / |A ∪ B| (0 for two empty sets).
fn jaccard(a: &std::collections::BTreeSet<String>, b: &std::collections::BTreeSet<String>) -> f64 {
    let union = a.union(b).count();
    if union == 0 {
        0.0
    } else {
        a.intersection(b).count() as f64 / union as f64
    }
}

/// SplitMix64 (Steele, Lea and Flood 2014): a small, stable PRNG for demo draws.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// A rationale's steps (blank-line separated) and its final `The answer is …` line.
fn split_rationale(r: &str) -> (Vec<String>, Option<String>) {
    let mut steps: Vec<String> = r
        .split("\n\n")
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let answer = match steps.last() {
        Some(l) if l.to_lowercase().starts_with("the answer is") => steps.pop(),
        _ => None,
    };
    (steps, answer)
}

/// `EXPR = VALUE` with a numeric value: the claim of an arithmetic step.
fn claim(step: &str) -> Option<(&str, &str)> {
    let (e, v) = step.rsplit_once(" = ")?;
    let v = v.trim().trim_end_matches('.');
    v.parse::<f64>().ok().map(|_| (e.trim(), v))
}

fn join(steps: Vec<String>, answer: Option<String>) -> String {
    steps
        .into_iter()
        .chain(answer)
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// The step-length rewrite (Jin et al., Findings of ACL 2024, *The Impact of Reasoning
/// Step Length on Large Language Models*): the same content in more or fewer steps,
/// deterministically for `EXPR = VALUE` steps (`arith`'s reference solutions).
///
/// - `more`: the paper's lengthening moves without new information: *read the question
///   again* (a first step restating it), *repeat state* (after each calculation, the
///   result so far) and *self-verification* (a check of the last calculation before the
///   answer).
/// - `fewer`: the paper's compression: every calculation in one step, joined by `, then`.
///
/// Steps that are not calculations are kept as they are (`more`) or joined into the one
/// step (`fewer`); the answer line stays last.
pub fn step_length(question: &str, rationale: &str, length: StepLength) -> String {
    let (steps, answer) = split_rationale(rationale);
    match length {
        StepLength::More => {
            let mut out = vec![format!("Read the question again: {question}")];
            let mut last = None;
            for s in steps {
                let c = claim(&s).map(|(e, v)| (e.to_string(), v.to_string()));
                out.push(s);
                if let Some((e, v)) = c {
                    out.push(format!("So far the result is {v}."));
                    last = Some((e, v));
                }
            }
            if let Some((e, v)) = last {
                out.push(format!("Check: {e} = {v} is right."));
            }
            join(out, answer)
        }
        StepLength::Fewer => {
            if steps.is_empty() {
                return join(steps, answer);
            }
            join(vec![steps.join(", then ")], answer)
        }
    }
}

/// Why an `A OP B = V` step holds, in words (`None` when the expression is not a single
/// operation on two numbers).
fn why(expr: &str, value: &str) -> Option<String> {
    let parts: Vec<&str> = expr.split_whitespace().collect();
    let [a, op, b] = parts.as_slice() else {
        return None;
    };
    Some(match *op {
        "+" => format!("adding {b} to {a} gives {value}"),
        "-" | "−" => format!("taking {b} from {a} leaves {value}"),
        "×" | "*" => format!("{a} times {b} is {value}"),
        "÷" | "/" => format!("{a} split into {b} equal parts is {value} each"),
        _ => return None,
    })
}

/// The rationale format rewrite for the explanation-formats comparison of issue #19
/// (the study's paper is not identified in this repository): `numbered` prefixes each
/// step with `Step i:`; `in-depth` follows each calculation with why it holds (`because
/// adding 5 to 12 gives 17`). The answer line stays last and unchanged.
pub fn rationale_format(rationale: &str, format: RationaleFormat) -> String {
    let (steps, answer) = split_rationale(rationale);
    let steps = steps
        .into_iter()
        .enumerate()
        .map(|(i, s)| match format {
            RationaleFormat::Numbered => format!("Step {}: {s}", i + 1),
            RationaleFormat::InDepth => match claim(&s).and_then(|(e, v)| why(e, v)) {
                Some(w) => format!("{s}, because {w}."),
                None => s,
            },
        })
        .collect();
    join(steps, answer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use stepwise_model::scripted::ScriptedGenerator;

    fn demo(id: &str, q: &str, r: &str, a: &str) -> Demo {
        Demo {
            id: id.into(),
            question: q.into(),
            rationale: r.into(),
            answer: Some(a.into()),
        }
    }

    fn pool() -> Vec<Demo> {
        vec![
            demo("d0", "What is 2 + 3?", "2 + 3 = 5\n\nThe answer is 5.", "5"),
            demo(
                "d1",
                "What is 4 × 6?",
                "4 × 6 = 24\n\nThe answer is 24.",
                "24",
            ),
            demo(
                "d2",
                "What is (7 - 2) + 1?",
                "7 - 2 = 5\n\n5 + 1 = 6\n\nThe answer is 6.",
                "6",
            ),
            demo("d3", "What is 9 ÷ 3?", "9 ÷ 3 = 3\n\nThe answer is 3.", "3"),
        ]
    }

    const TEMPLATE: &str = "### system\nBe exact.\n### user\nExamples:\n\n{demos}\n\nQuestion: {question}\nEnd with: The answer is <number>.";

    fn settings(method: PromptMethod, rule: DemoRule, shots: usize) -> PromptingSettings {
        PromptingSettings {
            method,
            task: "arith-chain".into(),
            template: TEMPLATE.into(),
            rule,
            shots,
            seed: 7,
            source: "self".into(),
            pool: pool(),
            clean: None,
        }
    }

    fn ids(p: &Program, q: &Problem) -> Vec<String> {
        p.select(q).iter().map(|d| d.id.clone()).collect()
    }

    #[test]
    fn rules_pick_demos() {
        let q = Problem::new("d1", "What is (7 - 2) × 3?");
        // fixed: the first k, never the question itself (same id)
        let p = Program::new(settings(PromptMethod::Demos, DemoRule::Fixed, 2)).unwrap();
        assert_eq!(ids(&p, &q), ["d0", "d2"]);
        // nearest by token Jaccard: tokens {what, is, 7, 2, 3}; d2 {what,is,7,2,1}: 4/6,
        // d3 {what,is,9,3}: 3/6, d0 {what,is,2,3}: 4/5 -> d0 (0.8), d2 (0.667), d3 (0.5)
        let p = Program::new(settings(PromptMethod::Demos, DemoRule::Nearest, 3)).unwrap();
        assert_eq!(ids(&p, &q), ["d0", "d2", "d3"]);
        // random: seeded by seed ^ fnv1a(id): the same problem always gets the same draw,
        // and it is the partial Fisher-Yates draw of SplitMix64 computed here by hand
        let p = Program::new(settings(PromptMethod::Demos, DemoRule::Random, 2)).unwrap();
        let first = ids(&p, &q);
        assert_eq!(first, ids(&p, &q));
        let mut rng = SplitMix64(7 ^ crate::fnv1a("d1"));
        let mut idx = [0usize, 1, 2];
        for i in 0..2 {
            let j = i + (rng.next() % (3 - i) as u64) as usize;
            idx.swap(i, j);
        }
        let cands = ["d0", "d2", "d3"];
        assert_eq!(first, [cands[idx[0]], cands[idx[1]]]);
        // more shots than demos: all of them
        let p = Program::new(settings(PromptMethod::Demos, DemoRule::Fixed, 9)).unwrap();
        assert_eq!(ids(&p, &q).len(), 3);
    }

    #[test]
    fn splitmix_matches_reference_values() {
        // SplitMix64 seeded with 0: first outputs of the reference implementation
        let mut r = SplitMix64(0);
        assert_eq!(r.next(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(r.next(), 0x6e78_9e6a_a1b9_65f4);
    }

    #[tokio::test]
    async fn exact_prompt_text_for_a_seed() {
        let p = Program::new(settings(PromptMethod::Demos, DemoRule::Fixed, 2)).unwrap();
        let ctx = Context::new(Arc::new(ScriptedGenerator::new(|_, _| String::new())));
        let q = Problem::new("q", "What is 1 + {1}?");
        let (prompt, built) = p.build(&q, &ctx).await.unwrap();
        let want = "Examples:\n\nQuestion: What is 2 + 3?\nAnswer:\n2 + 3 = 5\n\nThe answer is 5.\n\nQuestion: What is 4 × 6?\nAnswer:\n4 × 6 = 24\n\nThe answer is 24.\n\nQuestion: What is 1 + {1}?\nEnd with: The answer is <number>.";
        assert_eq!(built.text, want);
        assert_eq!(built.demos, ["d0", "d1"]);
        assert_eq!(built.seed, 7 ^ crate::fnv1a("q"));
        assert_eq!(built.method, "demos");
        assert_eq!(built.spent, Spent::default());
        let (rendered, _) = prompt.render(&q).unwrap();
        let Prompt::Chat(m) = rendered else { panic!() };
        assert_eq!(m[0].content, "Be exact.");
    }

    #[test]
    fn comments_above_the_first_header_are_not_filled() {
        let t = "# uses {demos}\n\n### user\n{demos}\n{question}";
        assert_eq!(body(t), "### user\n{demos}\n{question}");
        assert_eq!(body("### user\nx"), "### user\nx");
    }

    #[test]
    fn bind_escapes_values_and_keeps_the_rest() {
        let t = "a {{x}} {demos} {question} }} {";
        assert_eq!(
            bind(t, &[("demos", "f(x) = {y}")]),
            "a {{x}} f(x) = {{y}} {question} }} {"
        );
    }

    #[test]
    fn programs_are_checked() {
        let bad = |f: &dyn Fn(&mut PromptingSettings)| {
            let mut s = settings(PromptMethod::Demos, DemoRule::Fixed, 2);
            f(&mut s);
            Program::new(s).unwrap_err().to_string()
        };
        assert!(bad(&|s| s.shots = 0).contains("--shots"));
        assert!(bad(&|s| s.pool.clear()).contains("gave no demos"));
        assert!(
            bad(&|s| s.template = "### user\n{question} {schema}".into())
                .contains("{schema} needs the 'schema' method")
        );
        assert!(bad(&|s| s.template = "### user\n{demos}".into()).contains("no {question}"));
        assert!(bad(&|s| s.template = "### user\n{question} {nope}".into()).contains("nope"));
        assert!(bad(&|s| s.method = PromptMethod::CdCot { rephrasings: 2 }).contains("clean demo"));
    }

    #[tokio::test]
    async fn registry_by_dataset() {
        assert_eq!(task_for_dataset("arith:ops=2,n=20"), "arith-chain");
        assert_eq!(task_for_dataset("arith:kind=word,n=5"), "word-problem");
        assert_eq!(task_for_dataset("gsm8k:test"), "word-problem");
        assert_eq!(task_for_dataset("mmlu:math"), "multiple-choice");
        assert_eq!(task_for_dataset("humaneval"), "code");
        for t in TASKS {
            let mut s = settings(PromptMethod::Demos, DemoRule::Fixed, 1);
            s.template = t.text.into();
            let ctx = Context::new(Arc::new(ScriptedGenerator::new(|_, _| String::new())));
            let q = Problem::new("q", "What is 8 - 1?");
            let (_, b) = Program::new(s).unwrap().build(&q, &ctx).await.unwrap();
            assert!(
                b.text
                    .contains("Question: What is 2 + 3?\nAnswer:\n2 + 3 = 5"),
                "{}",
                t.name
            );
            assert!(
                b.text
                    .contains("Question: What is 8 - 1?\nSolve it step by step."),
                "{}",
                t.name
            );
            assert!(
                !b.text.contains('#'),
                "{}: a comment line leaked: {}",
                t.name,
                b.text
            );
        }
        assert!(task_template("poem").is_err());
    }

    #[test]
    fn step_length_rewrites_by_hand() {
        let r = "7 - 2 = 5\n\n5 + 1 = 6\n\nThe answer is 6.";
        assert_eq!(
            step_length("What is (7 - 2) + 1?", r, StepLength::More),
            "Read the question again: What is (7 - 2) + 1?\n\n7 - 2 = 5\n\nSo far the result is 5.\n\n5 + 1 = 6\n\nSo far the result is 6.\n\nCheck: 5 + 1 = 6 is right.\n\nThe answer is 6."
        );
        assert_eq!(
            step_length("q", r, StepLength::Fewer),
            "7 - 2 = 5, then 5 + 1 = 6\n\nThe answer is 6."
        );
    }

    #[test]
    fn formats_by_hand() {
        let r = "7 - 2 = 5\n\n5 × 3 = 15\n\nThe answer is 15.";
        assert_eq!(
            rationale_format(r, RationaleFormat::Numbered),
            "Step 1: 7 - 2 = 5\n\nStep 2: 5 × 3 = 15\n\nThe answer is 15."
        );
        assert_eq!(
            rationale_format(r, RationaleFormat::InDepth),
            "7 - 2 = 5, because taking 2 from 7 leaves 5.\n\n5 × 3 = 15, because 5 times 3 is 15.\n\nThe answer is 15."
        );
    }

    /// The user message of a request.
    fn user_of(r: &GenerateRequest) -> String {
        user_text(&r.prompt)
    }

    fn scale_runner(
        g: Arc<ScriptedGenerator>,
        settings: PromptingSettings,
    ) -> crate::scale::ScaleRunner {
        let mut ctx = Context::new(g);
        ctx.program = Some(Arc::new(Program::new(settings).unwrap()));
        let config = crate::scale::ScaleConfig {
            strategies: vec![crate::scale::ScaleStrategy::Majority],
            ns: vec![1, 2],
            expansions: 2,
            max_steps: 4,
        };
        let problems = vec![Problem::new("q", "What is (7 - 2) × 3?").with_gold("15")];
        crate::scale::ScaleRunner::new(ctx, config, problems).unwrap()
    }

    /// Plain few-shot and the two rewrites: the draw is sent exactly the prompt the
    /// program built (demos picked with the seed, rewritten), building costs nothing, and
    /// the record keeps what was asked.
    #[tokio::test]
    async fn demos_step_length_and_format_send_the_built_prompt() {
        let cases = [
            (
                PromptMethod::Demos,
                "Question: What is 2 + 3?\nAnswer:\n2 + 3 = 5\n\nThe answer is 5.",
            ),
            (
                PromptMethod::StepLength {
                    length: StepLength::More,
                },
                "Question: What is 2 + 3?\nAnswer:\nRead the question again: What is 2 + 3?\n\n2 + 3 = 5\n\nSo far the result is 5.\n\nCheck: 2 + 3 = 5 is right.\n\nThe answer is 5.",
            ),
            (
                PromptMethod::StepLength {
                    length: StepLength::Fewer,
                },
                "Question: What is (7 - 2) + 1?\nAnswer:\n7 - 2 = 5, then 5 + 1 = 6\n\nThe answer is 6.",
            ),
            (
                PromptMethod::Format {
                    format: RationaleFormat::Numbered,
                },
                "Question: What is 9 ÷ 3?\nAnswer:\nStep 1: 9 ÷ 3 = 3\n\nThe answer is 3.",
            ),
        ];
        for (method, shown) in cases {
            let g = Arc::new(ScriptedGenerator::new(|_, _| {
                "5 × 3 = 15\n\nThe answer is 15.".into()
            }));
            // nearest to "What is (7 - 2) × 3?" ({what, is, 7, 2, 3}): d0 (4/5), d2 (4/6),
            // d3 (3/6), d1 (2/7)
            let r = scale_runner(g.clone(), settings(method, DemoRule::Nearest, 3));
            let (_, unit) = r.units().remove(0);
            let rec = r.run(&unit).await.unwrap();
            let crate::scale::ScaleRecord::Samples {
                prompt: Some(b),
                samples,
                ..
            } = &rec
            else {
                panic!("{rec:?}")
            };
            assert_eq!(b.demos, ["d0", "d2", "d3"], "{method}");
            assert_eq!(b.method, method.name());
            assert_eq!(
                b.spent,
                Spent::default(),
                "no model call builds these prompts"
            );
            let reqs = g.requests();
            assert_eq!(reqs.len(), 1, "{method}: one draw, nothing else");
            assert_eq!(user_of(&reqs[0]), b.text);
            assert!(b.text.contains(shown), "{method}: {}", b.text);
            assert!(
                b.text
                    .ends_with("Question: What is (7 - 2) × 3?\nEnd with: The answer is <number>.")
            );
            // the prompt's tokens are the policy's: counted per sample
            let words = stepwise_model::scripted::prompt_tokens(&reqs[0].prompt, "");
            assert_eq!(samples[0].prompt_tokens, words);
        }
    }

    fn cd_cot_settings() -> PromptingSettings {
        let mut s = settings(PromptMethod::CdCot { rephrasings: 2 }, DemoRule::Fixed, 2);
        s.clean = Some(demo(
            "c",
            "What is 1 + 1?",
            "1 + 1 = 2\n\nThe answer is 2.",
            "2",
        ));
        s.pool = vec![
            demo(
                "n0",
                "What is 2 + 3?",
                "2 + 3 = 5\n\nA dozen is 12.\n\nThe answer is 5.",
                "5",
            ),
            demo(
                "n1",
                "What is 4 × 6?",
                "4 × 6 = 24\n\nAlso, 4 × 6 = 25.\n\nThe answer is 24.",
                "24",
            ),
        ];
        s
    }

    /// CD-CoT: one rephrasing call per noisy demo (n = rephrasings, the clean demo shown
    /// beside it); n0's second rewrite agrees with its answer 5 and replaces it, n1 has
    /// no agreeing rewrite and is dropped; the rephrasing calls' tokens are in the
    /// record's cost and in the scale table's cell.
    #[tokio::test]
    async fn cd_cot_rephrases_keeps_agreeing_and_counts_its_calls() {
        let g = Arc::new(ScriptedGenerator::new(|req, i| {
            let u = user_text(&req.prompt);
            if u.contains("Here is a noisy example") {
                if u.contains("What is 2 + 3?") && i == 1 {
                    "2 + 3 = 5\n\nThe answer is 5.".into()
                } else {
                    "It is 7.\n\nThe answer is 7.".into()
                }
            } else {
                "5 × 3 = 15\n\nThe answer is 15.".into()
            }
        }));
        let r = scale_runner(g.clone(), cd_cot_settings());
        let (_, unit) = r.units().remove(0);
        let rec = r.run(&unit).await.unwrap();
        let crate::scale::ScaleRecord::Samples {
            prompt: Some(b), ..
        } = &rec
        else {
            panic!("{rec:?}")
        };
        let reqs = g.requests();
        assert_eq!(reqs.len(), 3, "two rephrasing calls, then the draw");
        assert_eq!(reqs[0].params.n, 2);
        let first = user_of(&reqs[0]);
        assert!(first.starts_with("Here is a clean example.\nQuestion: What is 1 + 1?\nAnswer:\n1 + 1 = 2\n\nThe answer is 2.\n\nHere is a noisy example"), "{first}");
        assert!(first.contains(
            "Question: What is 2 + 3?\nAnswer:\n2 + 3 = 5\n\nA dozen is 12.\n\nThe answer is 5."
        ));
        assert!(user_of(&reqs[1]).contains("Also, 4 × 6 = 25."));
        assert_eq!(b.demos, ["n0~r1"]);
        assert_eq!(user_of(&reqs[2]), b.text);
        assert!(b.text.contains("Question: What is 2 + 3?\nAnswer:\n2 + 3 = 5\n\nThe answer is 5.\n\nQuestion: What is (7 - 2)"), "{}", b.text);
        // cost: 2 calls; generated words: n0 7 + 9, n1 7 + 7 = 30; prompt words per
        // sample of the two calls
        assert_eq!(b.spent.policy_calls, 2);
        assert_eq!(b.spent.policy_tokens, 30);
        let pt = |k: usize| stepwise_model::scripted::prompt_tokens(&reqs[k].prompt, "");
        assert_eq!(b.spent.policy_prompt_tokens, 2 * pt(0) + 2 * pt(1));
        // the table adds the building cost to every cell of the problem
        let rows = stepwise_jobs::kinds::scale::summarize(
            &r.config,
            &r.problems,
            std::slice::from_ref(&rec),
            &Default::default(),
        );
        let maj1 = rows
            .iter()
            .find(|x| x.strategy == "majority" && x.n == 1)
            .unwrap();
        assert_eq!(maj1.mean_policy_tokens, (30 + 9) as f64);
        assert_eq!(maj1.mean_calls, 3.0);
        assert_eq!(maj1.correct, 1);
    }

    /// `solve` through its job: the record keeps the built prompt, and the outcome's
    /// spend includes what building it cost.
    #[tokio::test]
    async fn solve_records_the_prompt_and_its_cost() {
        use stepwise_jobs::Job;
        let g = Arc::new(ScriptedGenerator::new(|req, _| {
            if user_text(&req.prompt).contains("noisy example") {
                "2 + 3 = 5\n\nThe answer is 5.".into()
            } else {
                "5 × 3 = 15\n\nThe answer is 15.".into()
            }
        }));
        let search = stepwise_jobs::kinds::solve::SearchSettings {
            prompting: Some(cd_cot_settings()),
            ..Default::default()
        };
        let config = stepwise_jobs::kinds::solve::SolveConfig {
            dataset: "test".into(),
            limit: None,
            strategy: crate::scale::ScaleStrategy::Majority,
            n: 3,
            budget: None,
            policy: "scripted".into(),
            reproducible: true,
            search,
        };
        let backends = crate::jobs::Backends {
            policy: g.clone(),
            judge: None,
            prm: Default::default(),
        };
        let problems = vec![Problem::new("q", "What is (7 - 2) × 3?").with_gold("15")];
        let job = crate::jobs::SolveJob::new(config, problems, &backends).unwrap();
        let rec = job.run_unit(&0).await.unwrap();
        let b = rec.prompt.as_ref().unwrap();
        // n0 agrees at rewrite 0; n1's rewrites all answer 5, not 24: dropped
        assert_eq!(b.demos, ["n0~r0"]);
        assert_eq!(b.spent.policy_calls, 2);
        assert_eq!(rec.outcome.spent.policy_calls, 3);
        assert_eq!(
            rec.outcome.spent.policy_tokens,
            b.spent.policy_tokens + 3 * 9
        );
        assert_eq!(b.spent.policy_tokens, 4 * 9);
        assert_eq!(rec.correct, Some(true));
        let json = serde_json::to_value(&rec).unwrap();
        assert_eq!(json["prompt"]["demos"][0], "n0~r0");
    }

    fn arith_problems() -> Vec<Problem> {
        stepwise_data::load_spec("arith:ops=2,n=4,seed=3", None, None).unwrap()
    }

    /// `self` takes the dataset's reference solutions; `run:ID` a stored run's verified
    /// samples (only right ones); a resumed run with another program names the change.
    #[tokio::test]
    async fn sources_and_resume_name_a_prompting_change() {
        let problems = arith_problems();
        let request = PromptingRequest {
            method: PromptMethod::Demos,
            task: None,
            template: None,
            rule: DemoRule::Fixed,
            shots: 2,
            seed: 0,
            source: "self".into(),
        };
        let s = resolve(&request, "arith:ops=2,n=4,seed=3", &problems, None, None).unwrap();
        assert_eq!(s.task, "arith-chain");
        assert_eq!(s.pool.len(), 4);
        assert_eq!(s.pool[0].rationale, problems[0].reference.clone().unwrap());
        let e = resolve(
            &PromptingRequest {
                source: "web:x".into(),
                ..request.clone()
            },
            "arith",
            &problems,
            None,
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("--demo-source 'web:x'"), "{e}");

        // a solve run whose sample is right for problems 0 and 2 only
        let golds: Vec<String> = problems.iter().map(|p| p.gold.clone().unwrap()).collect();
        let g = Arc::new(ScriptedGenerator::new(move |req, _| {
            let u = user_text(&req.prompt);
            let right = u.contains(&arith_problems()[0].question)
                || u.contains(&arith_problems()[2].question);
            let a = if right {
                if u.contains(&arith_problems()[0].question) {
                    golds[0].clone()
                } else {
                    golds[2].clone()
                }
            } else {
                "-1".into()
            };
            format!("It is {a}.\n\nThe answer is {a}.")
        }));
        let backends = crate::jobs::Backends {
            policy: g,
            judge: None,
            prm: Default::default(),
        };
        let config = |prompting| stepwise_jobs::kinds::solve::SolveConfig {
            dataset: "arith".into(),
            limit: None,
            strategy: crate::scale::ScaleStrategy::Majority,
            n: 1,
            budget: None,
            policy: "scripted".into(),
            reproducible: true,
            search: stepwise_jobs::kinds::solve::SearchSettings {
                prompting,
                ..Default::default()
            },
        };
        let dir = tempfile::tempdir().unwrap();
        let store = stepwise_store::SqliteStore::open(dir.path().join("s.sqlite")).unwrap();
        let opts = stepwise_jobs::RunOptions {
            stop: stepwise_jobs::Stop::Never,
            ..Default::default()
        };
        let job = crate::jobs::SolveJob::new(config(None), problems.clone(), &backends).unwrap();
        let run = crate::jobs::solve(&store, &job, &opts, None)
            .await
            .unwrap()
            .run;
        let s2 = resolve(
            &PromptingRequest {
                source: format!("run:{run}"),
                ..request.clone()
            },
            "arith",
            &problems,
            Some(&store),
            None,
        )
        .unwrap();
        let ids: Vec<&str> = s2.pool.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                format!("run:{run}/{}#0", problems[0].id),
                format!("run:{run}/{}#0", problems[2].id)
            ]
        );
        assert_eq!(s2.pool[0].answer, problems[0].gold);

        // a run with a program, resumed with another number of shots: refused, named
        let job = crate::jobs::SolveJob::new(config(Some(s.clone())), problems.clone(), &backends)
            .unwrap();
        let run2 = crate::jobs::solve(&store, &job, &opts, None)
            .await
            .unwrap()
            .run;
        let recs =
            stepwise_jobs::records::<stepwise_jobs::kinds::solve::Solve>(&store, run2).unwrap();
        assert_eq!(recs.len(), 4);
        assert!(
            recs.iter()
                .all(|(_, r)| r.prompt.as_ref().is_some_and(|b| b.demos.len() == 2))
        );
        let changed = PromptingSettings { shots: 3, ..s };
        let job = crate::jobs::SolveJob::new(config(Some(changed)), problems, &backends).unwrap();
        let resume = stepwise_jobs::RunOptions {
            resume: stepwise_jobs::Resume::Run(run2),
            ..opts
        };
        let e = crate::jobs::solve(&store, &job, &resume, None)
            .await
            .unwrap_err();
        assert!(format!("{e:#}").contains("prompting.shots"), "{e:#}");
    }
}
