//! Prompt programs: a policy prompt made of a task template and demos chosen by a rule,
//! transformed by a prompting method, built per problem and stored with the run.
//!
//! A program ([`PromptingSettings`], stored in the run's `SearchSettings`) holds:
//!
//! - a **template** with placeholders `{question}` and `{demos}` (the registry
//!   [`TASKS`] has one per task family, chosen by the dataset or `--prompt-task`;
//!   `{mistakes}`, `{schema}` and `{handbook}` are filled by their methods only: a
//!   registry template gets the method's block after its `{demos}` line, a template of
//!   the caller's own must name it);
//! - a **demo pool** resolved when the run is created (the dataset's own problems with
//!   reference solutions, another dataset, or a stored run's verified samples), and the
//!   **rule** choosing `k` of them per question ([`DemoRule`]: fixed, random with a seed,
//!   nearest by token Jaccard similarity);
//! - a **method** ([`PromptMethod`]): plain demos, step-length and format rewrites (pure
//!   text transforms), CD-CoT and the model mode of `schema` (model calls per prompt,
//!   counted in the unit's `Spent`), `mistakes` (a stored run's wrong samples beside right
//!   solutions; `mistakes:principle` shows the principles the model wrote from them),
//!   `handbook` (behaviours mined from a stored run's traces, retrieved per question).
//!
//! What the model writes once per run (LEAP principles, the mined handbook) is made by
//! [`prepare`] when the run is created and stored in its config with its cost
//! (`prepared`), so a resumed run or a worker reuses it and reports can count it.
//!
//! [`Program::build`] turns these into the problem's [`PolicyPrompt`] and a
//! [`BuiltPrompt`] (method, demo ids, seed, the user message, what building cost), which
//! `solve` and `scale` store in the unit's record.

use crate::{Context, SearchError};
use std::path::Path;
use stepwise_core::{Problem, Spent};
use stepwise_jobs::kinds::prompting::{
    Behaviour, BuiltPrompt, Demo, DemoRule, Mistake, Principles, PromptMethod, PromptingSettings,
    RationaleFormat, SchemaMode, StepLength,
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
const PRINCIPLES: &str = include_str!("../prompts/leap-principles.txt");
const SCHEMA: &str = include_str!("../prompts/schema.txt");
const MINE: &str = include_str!("../prompts/handbook-mine.txt");

/// The block a registry template gets after its `{demos}` line for a method that fills a
/// placeholder of its own.
fn method_block(method: &PromptMethod) -> Option<String> {
    let header = match method {
        PromptMethod::Mistakes { principles: false } => {
            "Answers to other questions that were wrong, each followed by a right one:"
        }
        PromptMethod::Mistakes { principles: true } => "Principles learned from earlier mistakes:",
        PromptMethod::Schema { .. } => {
            "The schema of such a solution (its steps without the numbers):"
        }
        PromptMethod::Handbook => "Behaviours that help (name: instruction):",
        _ => return None,
    };
    Some(format!("{header}\n\n{{{}}}", method.placeholder()?))
}

/// `template` with `method`'s block after the line naming `{demos}` (a registry
/// template; unchanged when it names the method's placeholder already).
fn with_method_block(template: &str, method: &PromptMethod) -> Result<String, SearchError> {
    let (Some(name), Some(block)) = (method.placeholder(), method_block(method)) else {
        return Ok(template.to_string());
    };
    if template.contains(&format!("{{{name}}}")) {
        return Ok(template.to_string());
    }
    let start = template.len() - body(template).len();
    let Some(at) = template[start..].find("{demos}").map(|i| i + start) else {
        return Err(SearchError::Config(format!(
            "prompt program: the task template has no {{demos}} line to put {{{name}}} after"
        )));
    };
    let end = template[at..].find('\n').map_or(template.len(), |i| at + i);
    Ok(format!(
        "{}\n\n{block}{}",
        &template[..end],
        &template[end..]
    ))
}

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
    /// `mistakes`: the run whose wrong samples are shown (`run:ID`; default: the demo
    /// source when it is a run).
    pub mistakes_from: Option<String>,
    /// `handbook`: the run whose verified traces are mined (`run:ID`; default: the demo
    /// source when it is a run).
    pub handbook_from: Option<String>,
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

/// Per problem of a stored `solve` or `scale` run (in the order of its records), the
/// problem and its samples; `what` names the use in errors.
pub(crate) fn run_samples(
    store: &dyn stepwise_jobs::RunStore,
    run: stepwise_jobs::RunId,
    what: &str,
) -> Result<Vec<(Problem, Vec<crate::Sample>)>, SearchError> {
    use stepwise_jobs::kinds::scale::{Scale, ScaleRecord};
    use stepwise_jobs::kinds::solve::Solve;
    let err = |e: String| SearchError::Config(format!("{what} run:{run}: {e}"));
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
                "a '{other}' run has no samples to take them from (use a solve or scale run)"
            )));
        }
    };
    Ok(per_problem
        .into_iter()
        .filter_map(|(pid, samples)| by_id.get(pid.as_str()).map(|p| ((*p).clone(), samples)))
        .collect())
}

/// Demos from a stored `solve` or `scale` run: per problem, its first sample whose
/// answer verified (id `run:ID/PROBLEM#SAMPLE`).
pub fn demos_from_run(
    store: &dyn stepwise_jobs::RunStore,
    run: stepwise_jobs::RunId,
    verify: &stepwise_verify::Options,
) -> Result<Vec<Demo>, SearchError> {
    let mut out = Vec::new();
    for (p, samples) in run_samples(store, run, "demo source")? {
        let pid = &p.id;
        let p = &p;
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

/// Mistakes from a stored `solve` or `scale` run (learning from mistakes in context): per
/// problem with a gold answer, its first sample whose answer did not verify, beside a
/// right solution: the problem's first verified sample, else its reference solution,
/// else `The answer is GOLD.` (id `run:ID/PROBLEM#SAMPLE` of the wrong sample).
pub fn mistakes_from_run(
    store: &dyn stepwise_jobs::RunStore,
    run: stepwise_jobs::RunId,
    verify: &stepwise_verify::Options,
) -> Result<Vec<Mistake>, SearchError> {
    let mut out = Vec::new();
    for (p, samples) in run_samples(store, run, "--mistakes-from")? {
        let Some(gold) = p.gold.clone() else {
            continue;
        };
        let verdict = |s: &crate::Sample| {
            stepwise_jobs::answer_correct(&p, s.rationale.answer.as_deref(), verify)
        };
        let Some((i, wrong)) = samples
            .iter()
            .enumerate()
            .find(|(_, s)| verdict(s) == Some(false))
        else {
            continue;
        };
        let right = samples
            .iter()
            .find(|s| verdict(s) == Some(true))
            .map(|s| s.text.trim().to_string())
            .or_else(|| p.reference.as_ref().map(|r| r.trim().to_string()))
            .unwrap_or_else(|| format!("The answer is {gold}."));
        out.push(Mistake {
            id: format!("run:{run}/{}#{i}", p.id),
            question: p.question.clone(),
            wrong: wrong.text.trim().to_string(),
            wrong_answer: wrong.rationale.answer.clone(),
            right,
            answer: gold,
        });
    }
    Ok(out)
}

/// The run id of a `run:ID` source named by `flag`.
fn run_source(flag: &str, source: &str) -> Result<stepwise_jobs::RunId, SearchError> {
    let id = source.strip_prefix("run:").ok_or_else(|| {
        SearchError::Config(format!("{flag} '{source}': expected run:ID (a stored run)"))
    })?;
    id.parse().map_err(|_| {
        SearchError::Config(format!(
            "{flag} {source}: '{id}' is not a run id (expected run:ID)"
        ))
    })
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
        None => with_method_block(task_template(task)?.text, &request.method)?,
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
    // mistakes and handbook read a stored run: their own flag, else the demo source's
    let run_flag = |own: &Option<String>, flag: &str| -> Result<String, SearchError> {
        match own {
            Some(s) => Ok(s.trim().to_string()),
            None if source.starts_with("run:") => Ok(source.to_string()),
            None => Err(cfg(format!(
                "--prompting {}: needs {flag} run:ID (a stored solve or scale run)",
                request.method
            ))),
        }
    };
    let (mistakes_source, mistakes) = match request.method {
        PromptMethod::Mistakes { .. } => {
            let src = run_flag(&request.mistakes_from, "--mistakes-from")?;
            let run = run_source("--mistakes-from", &src)?;
            let store =
                store.ok_or_else(|| cfg(format!("--mistakes-from {src}: no store open")))?;
            let m = mistakes_from_run(store, run, &Default::default())?;
            (Some(src), m)
        }
        _ => (None, Vec::new()),
    };
    let handbook_source = match request.method {
        PromptMethod::Handbook => {
            let src = run_flag(&request.handbook_from, "--handbook-from")?;
            run_source("--handbook-from", &src)?;
            Some(src)
        }
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
        mistakes_source,
        mistakes,
        principles: Vec::new(),
        handbook_source,
        handbook: Vec::new(),
        prepared: Spent::default(),
    };
    Program::new(settings.clone())?;
    Ok(settings)
}

/// A program ready to build prompts.
#[derive(Debug, Clone)]
pub struct Program {
    settings: PromptingSettings,
    rephrase: PromptTemplate,
    principles: PromptTemplate,
    schema: PromptTemplate,
    mine: PromptTemplate,
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
        if matches!(settings.method, PromptMethod::Mistakes { .. }) && settings.mistakes.is_empty()
        {
            return Err(cfg(format!(
                "--mistakes-from {} gave no mistakes (a run with a wrong sample of a problem with a gold answer)",
                settings.mistakes_source.as_deref().unwrap_or("(none)")
            )));
        }
        // The template parses with every placeholder; {mistakes}, {schema} and
        // {handbook} only with the method that fills them, which needs it.
        PromptTemplate::parse(&settings.template, "prompt program template", &PLACEHOLDERS)
            .map_err(|e| cfg(e.to_string()))?;
        let own = settings.method.placeholder();
        for name in ["schema", "handbook", "mistakes"] {
            let named = body(&settings.template).contains(&format!("{{{name}}}"));
            if named && own != Some(name) {
                return Err(cfg(format!(
                    "placeholder {{{name}}} needs the '{name}' method (this program is '{}')",
                    settings.method
                )));
            }
            if !named && own == Some(name) {
                return Err(cfg(format!(
                    "the template has no {{{name}}}, which the '{}' method fills",
                    settings.method
                )));
            }
        }
        if !settings.template.contains("{question}") {
            return Err(cfg("the template has no {question}".into()));
        }
        let builtin = |text: &str, name: &str, vars: &[&str]| {
            PromptTemplate::parse(text, &format!("built-in {name}"), vars)
                .map_err(|e| cfg(e.to_string()))
        };
        Ok(Self {
            rephrase: builtin(REPHRASE, "cd-cot-rephrase.txt", &REPHRASE_VARS)?,
            principles: builtin(PRINCIPLES, "leap-principles.txt", &["mistakes"])?,
            schema: builtin(SCHEMA, "schema.txt", &["demos"])?,
            mine: builtin(MINE, "handbook-mine.txt", &["question", "rationale"])?,
            settings,
        })
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
        self.choose(&self.settings.pool, problem, |d| {
            (d.id.as_str(), d.question.as_str(), d.question.clone())
        })
    }

    /// The mistakes the rule picks for `problem` (never the problem's own), in order: the
    /// demo rule, `shots` and seed applied to the mistakes pool.
    pub fn select_mistakes(&self, problem: &Problem) -> Vec<&Mistake> {
        self.choose(&self.settings.mistakes, problem, |m| {
            (m.id.as_str(), m.question.as_str(), m.question.clone())
        })
    }

    /// The handbook entries for `problem`: the `shots` behaviours nearest the question by
    /// token Jaccard similarity to the behaviour's text and the question it was mined from
    /// (the handbook's retrieval is always by similarity, whatever the demo rule; ties go
    /// to the earlier entry; none mined from the question itself).
    pub fn retrieve(&self, problem: &Problem) -> Vec<&Behaviour> {
        let cands: Vec<&Behaviour> = self
            .settings
            .handbook
            .iter()
            .filter(|b| b.question != problem.question)
            .collect();
        let text = |b: &Behaviour| format!("{} {} {}", b.question, b.name, b.instruction);
        nearest(cands, &problem.question, self.settings.shots, text)
    }

    /// `k` of `items` for `problem` by the rule: `key` gives an item's id, its question
    /// (both compared with the problem's to leave it out) and the text the `nearest` rule
    /// compares.
    fn choose<'a, T>(
        &self,
        items: &'a [T],
        problem: &Problem,
        key: impl Fn(&T) -> (&str, &str, String),
    ) -> Vec<&'a T> {
        let cands: Vec<&T> = items
            .iter()
            .filter(|d| {
                let (id, q, _) = key(d);
                id != problem.id && q != problem.question
            })
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
            DemoRule::Nearest => nearest(cands, &problem.question, k, |d| key(d).2),
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
        // the method's own placeholder, and the ids of what it shows
        let mut own: Option<(&str, String)> = None;
        let mut shown_mistakes = Vec::new();
        let mut behaviours = Vec::new();
        let demos: Vec<Demo> = match self.settings.method {
            PromptMethod::Demos => chosen.into_iter().cloned().collect(),
            PromptMethod::Mistakes { principles } => {
                let picked = self.select_mistakes(problem);
                shown_mistakes = picked.iter().map(|m| m.id.clone()).collect();
                let text = if principles {
                    self.principles_for(&shown_mistakes)?.to_string()
                } else {
                    render_mistakes(&picked)
                };
                own = Some(("mistakes", text));
                chosen.into_iter().cloned().collect()
            }
            PromptMethod::Schema { mode } => {
                let demos: Vec<Demo> = chosen.into_iter().cloned().collect();
                let schema = match mode {
                    SchemaMode::Rules => rule_schemas(&demos),
                    SchemaMode::Model => {
                        let block = render_demos(&demos);
                        let out = self
                            .ask(
                                ctx,
                                &self.schema,
                                &[("demos", &block)],
                                seed,
                                &problem.id,
                                &mut spent,
                            )
                            .await?;
                        model_lines(&out, 12)
                    }
                };
                own = Some(("schema", schema));
                demos
            }
            PromptMethod::Handbook => {
                if self.settings.handbook.is_empty() {
                    return Err(SearchError::Config(
                        "prompt program: the handbook is empty (it is mined when the run is created)"
                            .into(),
                    ));
                }
                let entries = self.retrieve(problem);
                behaviours = entries.iter().map(|b| b.name.clone()).collect();
                own = Some(("handbook", render_handbook(&entries)));
                chosen.into_iter().cloned().collect()
            }
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
        let mut vars = vec![("demos", block.as_str())];
        if let Some((name, text)) = &own {
            vars.push((name, text.as_str()));
        }
        let bound = bind(body(&self.settings.template), &vars);
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
                mistakes: shown_mistakes,
                behaviours,
            },
        ))
    }

    /// The principles prepared for the mistakes `ids` (`mistakes:principle`).
    fn principles_for(&self, ids: &[String]) -> Result<&str, SearchError> {
        self.settings
            .principles
            .iter()
            .find(|p| p.mistakes == ids)
            .map(|p| p.text.as_str())
            .ok_or_else(|| {
                SearchError::Config(format!(
                    "prompt program: no principles were prepared for the mistakes [{}] (they are written when the run is created)",
                    ids.join(", ")
                ))
            })
    }

    /// One model call on a built-in template: one completion (the context's sampling,
    /// `seed`), its cost added to `spent` in the policy columns; `who` names the problem
    /// (or the preparation) in errors.
    async fn ask(
        &self,
        ctx: &Context,
        template: &PromptTemplate,
        vars: &[(&str, &str)],
        seed: u64,
        who: &str,
        spent: &mut Spent,
    ) -> Result<String, SearchError> {
        let (prompt, start) = template
            .render(vars)
            .map_err(|e| SearchError::Config(e.to_string()))?;
        let req = GenerateRequest {
            prompt,
            assistant_prefix: start,
            params: SamplingParams {
                n: 1,
                seed,
                stop: ctx.stop.clone(),
                ..ctx.sampling.clone()
            },
        };
        let outs = ctx
            .policy
            .generate(&req)
            .await
            .map_err(|e| SearchError::Policy {
                problem: who.to_string(),
                source: e,
            })?;
        spent.policy_calls += 1;
        for c in &outs {
            spent.policy_tokens += c.generated_tokens;
            spent.policy_prompt_tokens += c.prompt_tokens;
        }
        Ok(outs.into_iter().next().map(|c| c.text).unwrap_or_default())
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

/// Makes what the model writes once per run, when the run is created, and stores it in
/// `settings` with its cost (`prepared`, policy columns):
///
/// - `mistakes:principle` (LEAP: Zhang et al. 2024, *In-Context Principle Learning from
///   Mistakes*): for each distinct set of mistakes the rule picks over `problems`, one
///   call in which the model writes general principles from those mistakes (their right
///   solutions beside them); a prompt shows the principles of its set. With the `fixed`
///   rule that is one call for the whole run.
/// - `handbook` (Didolkar et al. 2025, *Metacognitive Reuse: Turning Recurring LLM
///   Reasoning Into Concise Behaviors*): one mining pass over the verified samples of the
///   `--handbook-from` run (its first right sample per problem), one call per trace asking
///   for the reusable moves as `name: instruction` lines; the handbook is every distinct
///   name, first instruction kept, in trace order.
///
/// `previous` is the program of the run being resumed: what it made is taken as it is
/// (no model call), so a resumed run or a worker asks exactly what the run asked; a
/// changed input (method, shots, pool, …) is then named by the runner's config check.
/// Other methods come back unchanged.
pub async fn prepare(
    mut settings: PromptingSettings,
    ctx: &Context,
    problems: &[Problem],
    store: Option<&dyn stepwise_jobs::RunStore>,
    previous: Option<&PromptingSettings>,
) -> Result<PromptingSettings, SearchError> {
    let needs = matches!(
        settings.method,
        PromptMethod::Mistakes { principles: true } | PromptMethod::Handbook
    );
    if !needs {
        return Ok(settings);
    }
    if let Some(prev) = previous {
        settings.principles = prev.principles.clone();
        settings.handbook = prev.handbook.clone();
        settings.prepared = prev.prepared;
        return Ok(settings);
    }
    let program = Program::new(settings.clone())?;
    let mut spent = Spent::default();
    match settings.method {
        PromptMethod::Mistakes { .. } => {
            let mut sets: Vec<Vec<&Mistake>> = Vec::new();
            for p in problems {
                let picked = program.select_mistakes(p);
                if !sets.contains(&picked) {
                    sets.push(picked);
                }
            }
            let mut out = Vec::new();
            for picked in sets {
                let ids: Vec<String> = picked.iter().map(|m| m.id.clone()).collect();
                let text = program
                    .ask(
                        ctx,
                        &program.principles,
                        &[("mistakes", &render_mistakes(&picked))],
                        settings.seed ^ crate::fnv1a(&ids.join(",")),
                        "prompt program (principles)",
                        &mut spent,
                    )
                    .await?;
                let text = model_lines(&text, 8);
                if text.is_empty() {
                    tracing::warn!(mistakes = ?ids, "mistakes:principle: the model wrote no principle");
                }
                out.push(Principles {
                    mistakes: ids,
                    text,
                });
            }
            settings.principles = out;
        }
        PromptMethod::Handbook => {
            let src = settings.handbook_source.clone().unwrap_or_default();
            let run = run_source("--handbook-from", &src)?;
            let store = store.ok_or_else(|| {
                SearchError::Config(format!("--handbook-from {src}: no store open"))
            })?;
            let traces = demos_from_run(store, run, &ctx.verify)?;
            if traces.is_empty() {
                return Err(SearchError::Config(format!(
                    "--handbook-from {src}: the run has no verified sample to mine"
                )));
            }
            let mut book: Vec<Behaviour> = Vec::new();
            for t in &traces {
                let text = program
                    .ask(
                        ctx,
                        &program.mine,
                        &[("question", &t.question), ("rationale", &t.rationale)],
                        settings.seed ^ crate::fnv1a(&t.id),
                        "prompt program (handbook)",
                        &mut spent,
                    )
                    .await?;
                for (name, instruction) in parse_behaviours(&text) {
                    if !book.iter().any(|b| b.name == name) {
                        book.push(Behaviour {
                            name,
                            instruction,
                            source: t.id.clone(),
                            question: t.question.clone(),
                        });
                    }
                }
            }
            if book.is_empty() {
                return Err(SearchError::Config(format!(
                    "--handbook-from {src}: mining {} traces gave no behaviour (no line of the form name: instruction)",
                    traces.len()
                )));
            }
            tracing::info!(
                behaviours = book.len(),
                traces = traces.len(),
                "handbook mined"
            );
            settings.handbook = book;
        }
        _ => {}
    }
    settings.prepared = spent;
    Ok(settings)
}

/// The `k` of `cands` whose text shares the most word tokens with `question` (token
/// Jaccard similarity), highest first; ties keep the order of `cands`.
fn nearest<'a, T>(
    cands: Vec<&'a T>,
    question: &str,
    k: usize,
    text: impl Fn(&T) -> String,
) -> Vec<&'a T> {
    let q = tokens(question);
    let mut scored: Vec<(f64, usize)> = cands
        .iter()
        .enumerate()
        .map(|(i, d)| (jaccard(&q, &tokens(&text(d))), i))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.iter().take(k).map(|&(_, i)| cands[i]).collect()
}

/// Mistakes as the `{mistakes}` block: the question, the wrong answer, a right one.
pub fn render_mistakes(mistakes: &[&Mistake]) -> String {
    mistakes
        .iter()
        .map(|m| {
            format!(
                "Question: {}\nWrong answer:\n{}\nRight answer:\n{}",
                m.question, m.wrong, m.right
            )
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// Handbook entries as the `{handbook}` block: `name: instruction`, one a line.
pub fn render_handbook(entries: &[&Behaviour]) -> String {
    entries
        .iter()
        .map(|b| format!("{}: {}", b.name, b.instruction))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A line without its list marker (`- `, `* `, `1. `, `1) `) and emphasis.
fn unmark(line: &str) -> &str {
    let l = line.trim().trim_start_matches(['-', '*', '•']).trim_start();
    let digits = l.len() - l.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let l = if digits > 0 && l[digits..].starts_with(['.', ')']) {
        l[digits + 1..].trim_start()
    } else {
        l
    };
    l.trim_matches(|c| c == '*' || c == '`').trim()
}

/// What the model wrote as at most `max` lines: blank lines dropped, list markers taken
/// off, each line then starting with `- `.
fn model_lines(text: &str, max: usize) -> String {
    text.lines()
        .map(unmark)
        .filter(|l| !l.is_empty())
        .take(max)
        .map(|l| format!("- {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The `name: instruction` lines of a mining answer: a name of one to six words of
/// letters, digits, spaces, `-` or `_` (lower-cased, joined by `-`), then a non-empty
/// instruction; other lines are passed over.
pub fn parse_behaviours(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let (name, instruction) = unmark(line).split_once(':')?;
            let name = name.trim().trim_matches(|c| c == '*' || c == '`').trim();
            let instruction = instruction.trim().trim_matches(|c| c == '*').trim();
            let words: Vec<&str> = name
                .split([' ', '-', '_'])
                .filter(|w| !w.is_empty())
                .collect();
            let ok = (1..=6).contains(&words.len())
                && name
                    .chars()
                    .all(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
                && !instruction.is_empty();
            ok.then(|| (words.join("-").to_lowercase(), instruction.to_string()))
        })
        .collect()
}

/// `s` with every number replaced by what `f` makes of it (a `-` right before a digit is
/// the number's sign when it does not follow a digit, a letter or `)`).
fn map_numbers(s: &str, mut f: impl FnMut(&str) -> String) -> String {
    let b: Vec<char> = s.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        let signed = b[i] == '-'
            && b.get(i + 1).is_some_and(|c| c.is_ascii_digit())
            && (i == 0 || !(b[i - 1].is_alphanumeric() || b[i - 1] == ')'));
        let starts = (b[i].is_ascii_digit() && (i == 0 || !b[i - 1].is_alphanumeric())) || signed;
        if !starts {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let mut j = i + 1;
        while j < b.len()
            && (b[j].is_ascii_digit()
                || (b[j] == '.' && b.get(j + 1).is_some_and(|c| c.is_ascii_digit())))
        {
            j += 1;
        }
        let num: String = b[i..j].iter().collect();
        out.push_str(&f(&num));
        i = j;
    }
    out
}

/// The deterministic schema of an `arith` rationale (`schema:rules`): its steps without
/// their numbers. In a calculation `EXPR = VALUE` a number that is an earlier step's
/// result becomes that result's name (`r1`, `r2`, …), any other number a letter (`a`,
/// `b`, …; one letter per distinct number) and the value the step's result name; numbers
/// in other steps become `n`; the answer line names the last result when it states it.
pub fn rule_schema(rationale: &str) -> String {
    let (steps, answer) = split_rationale(rationale);
    let mut results: Vec<String> = Vec::new();
    let mut letters: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let line = match claim(step) {
            Some((expr, value)) => {
                let e = map_numbers(expr, |n| {
                    if let Some(j) = results.iter().rposition(|r| r == n) {
                        return format!("r{}", j + 1);
                    }
                    let k = letters.iter().position(|l| l == n).unwrap_or_else(|| {
                        letters.push(n.to_string());
                        letters.len() - 1
                    });
                    letter(k)
                });
                results.push(value.to_string());
                format!("{e} = r{}", results.len())
            }
            None => map_numbers(step, |_| "n".into()),
        };
        out.push(format!("Step {}: {line}", i + 1));
    }
    if let Some(a) = answer {
        let last = results.len();
        out.push(map_numbers(&a, |n| {
            if last > 0 && results[last - 1] == n {
                format!("r{last}")
            } else {
                "n".into()
            }
        }));
    }
    out.join("\n")
}

/// `a`…`z`, then `a1`, `b1`, ….
fn letter(k: usize) -> String {
    let c = (b'a' + (k % 26) as u8) as char;
    if k < 26 {
        c.to_string()
    } else {
        format!("{c}{}", k / 26)
    }
}

/// The rule schemas of `demos`, each distinct one once (in demo order), a blank line
/// between them.
fn rule_schemas(demos: &[Demo]) -> String {
    let mut seen: Vec<String> = Vec::new();
    for d in demos {
        let s = rule_schema(&d.rationale);
        if !seen.contains(&s) {
            seen.push(s);
        }
    }
    seen.join("\n\n")
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
            mistakes_source: None,
            mistakes: Vec::new(),
            principles: Vec::new(),
            handbook_source: None,
            handbook: Vec::new(),
            prepared: Spent::default(),
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
                .contains("{schema} needs the 'schema' method (this program is 'demos')")
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
            mistakes_from: None,
            handbook_from: None,
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

    fn mistake(id: &str, q: &str, wrong: &str, right: &str, a: &str) -> Mistake {
        Mistake {
            id: id.into(),
            question: q.into(),
            wrong: wrong.into(),
            wrong_answer: None,
            right: right.into(),
            answer: a.into(),
        }
    }

    fn mistakes_pool() -> Vec<Mistake> {
        vec![
            mistake(
                "m0",
                "What is 8 - 3?",
                "8 - 3 = 4\n\nThe answer is 4.",
                "8 - 3 = 5\n\nThe answer is 5.",
                "5",
            ),
            mistake(
                "m1",
                "What is 2 × 7?",
                "2 × 7 = 9\n\nThe answer is 9.",
                "2 × 7 = 14\n\nThe answer is 14.",
                "14",
            ),
            // the question of the scale runner's problem: never shown to it
            mistake(
                "m2",
                "What is (7 - 2) × 3?",
                "The answer is 21.",
                "The answer is 15.",
                "15",
            ),
            mistake(
                "m3",
                "What is 6 + 6?",
                "The answer is 66.",
                "6 + 6 = 12\n\nThe answer is 12.",
                "12",
            ),
        ]
    }

    fn mistakes_settings(principles: bool, rule: DemoRule, shots: usize) -> PromptingSettings {
        let method = PromptMethod::Mistakes { principles };
        let mut s = settings(method, rule, shots);
        s.template = with_method_block(TEMPLATE, &method).unwrap();
        s.mistakes_source = Some("run:1".into());
        s.mistakes = mistakes_pool();
        s
    }

    /// The partial Fisher-Yates draw of `k` of `n` by SplitMix64 from `seed`, by hand.
    fn draw(seed: u64, n: usize, k: usize) -> Vec<usize> {
        let mut rng = SplitMix64(seed);
        let mut idx: Vec<usize> = (0..n).collect();
        for i in 0..k {
            let j = i + (rng.next() % (n - i) as u64) as usize;
            idx.swap(i, j);
        }
        idx[..k].to_vec()
    }

    /// `mistakes` (Alazraki et al. 2025): the rule draws `shots` mistakes with the seed
    /// (never the question's own), each shown wrong then right after the demos; nothing is
    /// called to build the prompt, and the draw is sent exactly that prompt.
    #[tokio::test]
    async fn mistakes_shows_seeded_wrong_and_right_answers() {
        let g = Arc::new(ScriptedGenerator::new(|_, _| {
            "5 × 3 = 15\n\nThe answer is 15.".into()
        }));
        let s = mistakes_settings(false, DemoRule::Random, 2);
        assert!(s.template.contains(
            "{demos}\n\nAnswers to other questions that were wrong, each followed by a right one:\n\n{mistakes}\n\nQuestion: {question}"
        ));
        let r = scale_runner(g.clone(), s);
        let (_, unit) = r.units().remove(0);
        let rec = r.run(&unit).await.unwrap();
        let crate::scale::ScaleRecord::Samples {
            prompt: Some(b), ..
        } = &rec
        else {
            panic!("{rec:?}")
        };
        let seed = 7 ^ crate::fnv1a("q");
        // demos: 2 of the 4 demos; mistakes: 2 of m0, m1, m3 (m2 is the question's own)
        let demo_ids = ["d0", "d1", "d2", "d3"];
        let want_demos: Vec<&str> = draw(seed, 4, 2).iter().map(|&i| demo_ids[i]).collect();
        let cands = ["m0", "m1", "m3"];
        let want: Vec<&str> = draw(seed, 3, 2).iter().map(|&i| cands[i]).collect();
        assert_eq!(b.demos, want_demos);
        assert_eq!(b.mistakes, want);
        let shown = |id: &str| {
            let m = mistakes_pool().into_iter().find(|m| m.id == id).unwrap();
            format!(
                "Question: {}\nWrong answer:\n{}\nRight answer:\n{}",
                m.question, m.wrong, m.right
            )
        };
        let block = format!("{}\n\n{}", shown(want[0]), shown(want[1]));
        let at = b.text.find("Answers to other").unwrap();
        assert_eq!(
            &b.text[at..],
            format!(
                "Answers to other questions that were wrong, each followed by a right one:\n\n{block}\n\nQuestion: What is (7 - 2) × 3?\nEnd with: The answer is <number>."
            )
        );
        assert!(!b.text.contains("The answer is 21."));
        assert_eq!(b.spent, Spent::default());
        let reqs = g.requests();
        assert_eq!(reqs.len(), 1, "the draw only");
        assert_eq!(user_of(&reqs[0]), b.text);
        assert_eq!(b.method, "mistakes");
    }

    /// `mistakes:principle` (LEAP, Zhang et al. 2024): the principles are written when the
    /// run is prepared, one call per distinct set of mistakes (fixed rule, two problems
    /// picking the same set: one call), their cost in `prepared`; building a prompt then
    /// calls nothing and shows the principles instead of the mistakes.
    #[tokio::test]
    async fn mistakes_principle_prepares_once_per_set_and_counts() {
        let g = Arc::new(ScriptedGenerator::new(|req, _| {
            if user_text(&req.prompt).contains("answered wrongly") {
                "1. Check each operation twice.\n\n- Subtract before you answer.".into()
            } else {
                "The answer is 15.".into()
            }
        }));
        let ctx = Context::new(g.clone());
        let problems = vec![
            Problem::new("q", "What is (7 - 2) × 3?"),
            Problem::new("q2", "What is 9 - 4?"),
        ];
        let s = mistakes_settings(true, DemoRule::Fixed, 2);
        let s = prepare(s, &ctx, &problems, None, None).await.unwrap();
        let reqs = g.requests();
        assert_eq!(reqs.len(), 1, "one set of mistakes, one call");
        let asked = user_of(&reqs[0]);
        assert_eq!(
            asked,
            "Here are questions that were answered wrongly, each followed by a right solution.\n\nQuestion: What is 8 - 3?\nWrong answer:\n8 - 3 = 4\n\nThe answer is 4.\nRight answer:\n8 - 3 = 5\n\nThe answer is 5.\n\nQuestion: What is 2 × 7?\nWrong answer:\n2 × 7 = 9\n\nThe answer is 9.\nRight answer:\n2 × 7 = 14\n\nThe answer is 14.\n\nWrite general principles that would avoid these mistakes on new questions: one per line, each starting with \"- \". Do not repeat the numbers of these questions."
        );
        assert_eq!(s.principles.len(), 1);
        assert_eq!(s.principles[0].mistakes, ["m0", "m1"]);
        assert_eq!(
            s.principles[0].text,
            "- Check each operation twice.\n- Subtract before you answer."
        );
        // 10 words generated ("1." and "-" are words); the prompt's words
        assert_eq!(s.prepared.policy_calls, 1);
        assert_eq!(s.prepared.policy_tokens, 10);
        assert_eq!(
            s.prepared.policy_prompt_tokens,
            stepwise_model::scripted::prompt_tokens(&reqs[0].prompt, "")
        );
        let p = Program::new(s.clone()).unwrap();
        for q in &problems {
            let (_, b) = p.build(q, &ctx).await.unwrap();
            assert_eq!(b.mistakes, ["m0", "m1"]);
            assert_eq!(b.spent, Spent::default());
            assert!(b.text.contains("Principles learned from earlier mistakes:\n\n- Check each operation twice.\n- Subtract before you answer.\n\nQuestion: "), "{}", b.text);
            assert!(!b.text.contains("Wrong answer"));
        }
        assert_eq!(g.requests().len(), 1, "building calls nothing");
        // nearest: the two problems pick different sets, two calls
        let g2 = Arc::new(ScriptedGenerator::new(|_, _| "- Be careful.".into()));
        let ctx2 = Context::new(g2.clone());
        let s2 = prepare(
            mistakes_settings(true, DemoRule::Nearest, 1),
            &ctx2,
            &problems,
            None,
            None,
        )
        .await
        .unwrap();
        // "What is (7 - 2) × 3?" {what,is,7,2,3}: m0 {what,is,8,3} 3/6, m1 {what,is,2,7}
        // 4/5 -> m1; "What is 9 - 4?" {what,is,9,4}: m0 2/6, m1 2/6, m3 {what,is,6} 2/5 -> m3
        let sets: Vec<&[String]> = s2.principles.iter().map(|p| &p.mistakes[..]).collect();
        assert_eq!(sets, [["m1".to_string()], ["m3".to_string()]]);
        assert_eq!(s2.prepared.policy_calls, 2);
        // a resumed run takes what was prepared: no call
        let g3 = Arc::new(ScriptedGenerator::new(|_, _| "- Other.".into()));
        let s3 = prepare(
            mistakes_settings(true, DemoRule::Nearest, 1),
            &Context::new(g3.clone()),
            &problems,
            None,
            Some(&s2),
        )
        .await
        .unwrap();
        assert_eq!(s3, s2);
        assert_eq!(g3.calls(), 0);
        // a program whose principles were not prepared says so
        let unprepared = Program::new(mistakes_settings(true, DemoRule::Fixed, 2)).unwrap();
        let e = unprepared.build(&problems[0], &ctx).await.unwrap_err();
        assert!(e.to_string().contains("no principles were prepared"), "{e}");
    }

    #[test]
    fn mistakes_programs_are_checked() {
        let mut s = mistakes_settings(false, DemoRule::Fixed, 2);
        s.mistakes.clear();
        let e = Program::new(s).unwrap_err().to_string();
        assert!(e.contains("--mistakes-from run:1 gave no mistakes"), "{e}");
        let mut s = mistakes_settings(false, DemoRule::Fixed, 2);
        s.template = TEMPLATE.into();
        let e = Program::new(s).unwrap_err().to_string();
        assert!(
            e.contains("the template has no {mistakes}, which the 'mistakes' method fills"),
            "{e}"
        );
        // a template of the caller's own that names it already is kept as it is
        let own = "### user\n{mistakes}\n{question}";
        assert_eq!(
            with_method_block(own, &PromptMethod::Mistakes { principles: false }).unwrap(),
            own
        );
        assert_eq!(
            with_method_block(TEMPLATE, &PromptMethod::Demos).unwrap(),
            TEMPLATE
        );
    }

    #[test]
    fn rule_schema_by_hand() {
        // 7 -> a, 2 -> b, 5 is r1, 1 -> c; the answer states r2
        assert_eq!(
            rule_schema("7 - 2 = 5\n\n5 + 1 = 6\n\nThe answer is 6."),
            "Step 1: a - b = r1\nStep 2: r1 + c = r2\nThe answer is r2."
        );
        // a signed number is one number; a repeated number keeps its letter; a step that
        // is not a calculation has its numbers as n
        assert_eq!(
            rule_schema("-3 × 4 = -12\n\nAdd 4 to it.\n\n-12 + 4 = -8\n\nThe answer is -8."),
            "Step 1: a × b = r1\nStep 2: Add n to it.\nStep 3: r1 + b = r2\nThe answer is r2."
        );
        assert_eq!(map_numbers("x2 - 1.5", |_| "#".into()), "x2 - #");
    }

    fn schema_settings(mode: SchemaMode) -> PromptingSettings {
        let method = PromptMethod::Schema { mode };
        let mut s = settings(method, DemoRule::Nearest, 2);
        s.template = with_method_block(TEMPLATE, &method).unwrap();
        s
    }

    /// `schema` (Chen et al. 2025): one call per build abstracts the chosen demos' schema
    /// (sent the demos), the schema goes into `{schema}` after the demos, and the call's
    /// tokens are the prompt's cost, counted in the table; `schema:rules` calls nothing.
    #[tokio::test]
    async fn schema_abstracts_from_the_chosen_demos_and_counts_its_call() {
        let g = Arc::new(ScriptedGenerator::new(|req, _| {
            if user_text(&req.prompt).contains("Write the schema") {
                "1. Subtract the second number from the first.\n2. Add the third.".into()
            } else {
                "5 × 3 = 15\n\nThe answer is 15.".into()
            }
        }));
        let r = scale_runner(g.clone(), schema_settings(SchemaMode::Model));
        let (_, unit) = r.units().remove(0);
        let rec = r.run(&unit).await.unwrap();
        let crate::scale::ScaleRecord::Samples {
            prompt: Some(b), ..
        } = &rec
        else {
            panic!("{rec:?}")
        };
        let reqs = g.requests();
        assert_eq!(reqs.len(), 2, "the schema call, then the draw");
        // nearest 2: d0 (4/5), d2 (4/6)
        assert_eq!(b.demos, ["d0", "d2"]);
        assert_eq!(
            user_of(&reqs[0]),
            "Here are solved examples.\n\nQuestion: What is 2 + 3?\nAnswer:\n2 + 3 = 5\n\nThe answer is 5.\n\nQuestion: What is (7 - 2) + 1?\nAnswer:\n7 - 2 = 5\n\n5 + 1 = 6\n\nThe answer is 6.\n\nWrite the schema these solutions follow: their steps in order, one per line, saying what each step computes but using no numbers."
        );
        assert_eq!(reqs[0].params.n, 1);
        assert_eq!(user_of(&reqs[1]), b.text);
        assert!(b.text.contains("The answer is 6.\n\nThe schema of such a solution (its steps without the numbers):\n\n- Subtract the second number from the first.\n- Add the third.\n\nQuestion: What is (7 - 2) × 3?"), "{}", b.text);
        assert_eq!(b.spent.policy_calls, 1);
        assert_eq!(b.spent.policy_tokens, 12);
        assert_eq!(
            b.spent.policy_prompt_tokens,
            stepwise_model::scripted::prompt_tokens(&reqs[0].prompt, "")
        );
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
        // the schema call's 12 words and the draw's 9
        assert_eq!(maj1.mean_policy_tokens, (12 + 9) as f64);
        assert_eq!(maj1.mean_calls, 2.0);

        let g = Arc::new(ScriptedGenerator::new(|_, _| "The answer is 15.".into()));
        let r = scale_runner(g.clone(), schema_settings(SchemaMode::Rules));
        let (_, unit) = r.units().remove(0);
        let rec = r.run(&unit).await.unwrap();
        let crate::scale::ScaleRecord::Samples {
            prompt: Some(b), ..
        } = &rec
        else {
            panic!("{rec:?}")
        };
        assert_eq!(g.requests().len(), 1, "schema:rules calls nothing");
        assert_eq!(b.spent, Spent::default());
        assert!(b.text.contains("(its steps without the numbers):\n\nStep 1: a + b = r1\nThe answer is r1.\n\nStep 1: a - b = r1\nStep 2: r1 + c = r2\nThe answer is r2.\n\nQuestion: "), "{}", b.text);
    }

    #[test]
    fn behaviours_parse_from_lines() {
        let text = "Here are the moves:\n- check-units: say the unit of each number\n2. **Work backwards**: start from the goal\n* a name that is far too long to be a name: x\nnot a behaviour\nempty:\n`verify`: redo the last step";
        assert_eq!(
            parse_behaviours(text),
            [
                (
                    "check-units".to_string(),
                    "say the unit of each number".to_string()
                ),
                (
                    "work-backwards".to_string(),
                    "start from the goal".to_string()
                ),
                ("verify".to_string(), "redo the last step".to_string()),
            ]
        );
    }

    /// `handbook` (Didolkar et al. 2025): mined once from the stored run's verified traces
    /// (one call per trace, distinct names, cost in `prepared`), then per question the
    /// `shots` behaviours nearest it go into `{handbook}`; building calls nothing. Also
    /// `mistakes_from_run`: a problem's first wrong sample beside its first right one, or
    /// its reference solution.
    #[tokio::test]
    async fn handbook_is_mined_once_and_retrieved_per_question() {
        let problems = arith_problems();
        let golds: Vec<String> = problems.iter().map(|p| p.gold.clone().unwrap()).collect();
        let qs: Vec<String> = problems.iter().map(|p| p.question.clone()).collect();
        // right for problems 0 and 2; problem 1 right at its second sample only
        let g = Arc::new(ScriptedGenerator::new(move |req, i| {
            let u = user_text(&req.prompt);
            let k = qs.iter().position(|q| u.contains(q.as_str()));
            let a = match k {
                Some(0) | Some(2) => golds[k.unwrap_or(0)].clone(),
                Some(1) if i == 1 => golds[1].clone(),
                _ => "-1".into(),
            };
            format!("It is {a}.\n\nThe answer is {a}.")
        }));
        let backends = crate::jobs::Backends {
            policy: g,
            judge: None,
            prm: Default::default(),
        };
        let config = stepwise_jobs::kinds::solve::SolveConfig {
            dataset: "arith".into(),
            limit: None,
            strategy: crate::scale::ScaleStrategy::Majority,
            n: 2,
            budget: None,
            policy: "scripted".into(),
            reproducible: true,
            search: Default::default(),
        };
        let dir = tempfile::tempdir().unwrap();
        let store = stepwise_store::SqliteStore::open(dir.path().join("s.sqlite")).unwrap();
        let opts = stepwise_jobs::RunOptions {
            stop: stepwise_jobs::Stop::Never,
            ..Default::default()
        };
        let job = crate::jobs::SolveJob::new(config, problems.clone(), &backends).unwrap();
        let run = crate::jobs::solve(&store, &job, &opts, None)
            .await
            .unwrap()
            .run;

        let ms = mistakes_from_run(&store, run, &Default::default()).unwrap();
        let ids: Vec<&str> = ms.iter().map(|m| m.id.as_str()).collect();
        let (p1, p3) = (&problems[1].id, &problems[3].id);
        assert_eq!(
            ids,
            [format!("run:{run}/{p1}#0"), format!("run:{run}/{p3}#0")]
        );
        assert_eq!(
            ms[0].right,
            format!("It is {0}.\n\nThe answer is {0}.", golds_of(&problems, 1))
        );
        assert_eq!(ms[1].right, problems[3].reference.clone().unwrap().trim());
        assert_eq!(ms[0].wrong_answer.as_deref(), Some("-1"));

        // mining: one call per verified trace (problems 0, 1 and 2)
        let miner = Arc::new(ScriptedGenerator::new(|req, _| {
            let u = user_text(&req.prompt);
            if u.contains("List the reusable reasoning moves") {
                "- left-to-right: do the operations in the order written\n- check-sign: check the sign of each result".into()
            } else {
                "The answer is 1.".into()
            }
        }));
        let ctx = Context::new(miner.clone());
        let request = PromptingRequest {
            method: PromptMethod::Handbook,
            task: None,
            template: None,
            rule: DemoRule::Fixed,
            shots: 1,
            seed: 0,
            source: "self".into(),
            mistakes_from: None,
            handbook_from: Some(format!("run:{run}")),
        };
        let s = resolve(&request, "arith:ops=2", &problems, Some(&store), None).unwrap();
        assert!(
            s.template
                .contains("Behaviours that help (name: instruction):\n\n{handbook}")
        );
        let s = prepare(s, &ctx, &problems, Some(&store), None)
            .await
            .unwrap();
        let reqs = miner.requests();
        assert_eq!(reqs.len(), 3);
        let first = user_of(&reqs[0]);
        assert!(
            first.starts_with(&format!(
                "Question: {}\nSolution:\nIt is ",
                problems[0].question
            )),
            "{first}"
        );
        let names: Vec<&str> = s.handbook.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(
            names,
            ["left-to-right", "check-sign"],
            "distinct names, first kept"
        );
        assert_eq!(
            s.handbook[0].source,
            format!("run:{run}/{}#0", problems[0].id)
        );
        assert_eq!(s.prepared.policy_calls, 3);
        assert_eq!(s.prepared.policy_tokens, 3 * 17);
        // the config round-trips with the handbook
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["handbook"][1]["name"], "check-sign");

        // retrieval: one entry (shots = 1) nearest the question
        let p = Program::new(s.clone()).unwrap();
        let q = Problem::new("new", "Check the sign: what is 3 - 5?");
        let (_, b) = p.build(&q, &ctx).await.unwrap();
        assert_eq!(b.behaviours, ["check-sign"]);
        assert!(b.text.contains("Behaviours that help (name: instruction):\n\ncheck-sign: check the sign of each result\n\nQuestion: Check the sign"), "{}", b.text);
        assert_eq!(b.spent, Spent::default());
        assert_eq!(miner.requests().len(), 3, "building calls nothing");

        // a scale run with the handbook, through prepare_prompting: its notes give the
        // preparation's cost and the generated tokens per sample with the handbook (the
        // draws say "The answer is 1.": 4 words) vs the mining run without it ("It is X.
        // The answer is X.": 7 words), over its 4 problems
        let backends = crate::jobs::Backends {
            policy: miner.clone(),
            judge: None,
            prm: Default::default(),
        };
        let mut search = stepwise_jobs::kinds::solve::SearchSettings {
            prompting: Some(resolve(&request, "arith", &problems, Some(&store), None).unwrap()),
            ..Default::default()
        };
        crate::jobs::prepare_prompting(&mut search, &backends, &problems, &store, None)
            .await
            .unwrap();
        assert_eq!(search.prompting.as_ref().unwrap().handbook, s.handbook);
        let config = stepwise_jobs::kinds::scale::ScaleJobConfig {
            dataset: "arith".into(),
            limit: None,
            scale: crate::scale::ScaleConfig {
                strategies: vec![crate::scale::ScaleStrategy::Majority],
                ns: vec![1, 2],
                expansions: 2,
                max_steps: 4,
            },
            policy: "scripted".into(),
            reproducible: true,
            search: search.clone(),
        };
        let job = crate::jobs::ScaleJob::new(config.clone(), problems.clone(), &backends).unwrap();
        let summary = crate::jobs::scale(&store, &job, &opts).await.unwrap();
        assert_eq!(
            summary.notes,
            [
                format!(
                    "Prompt program `handbook` prepared when the run was created: 3 model calls, 51 generated and {} prompt tokens (a run-level cost, not in the cells above).",
                    s.prepared.policy_prompt_tokens
                ),
                format!(
                    "Handbook (2 behaviours from run:{run}): generated tokens per sample on the 4 problems both runs drew: 4.0 with the handbook, 7.0 in run:{run} without it (-42.9%)."
                ),
            ]
        );
        assert!(summary.markdown().ends_with("(-42.9%).\n"));
        // resumed with the stored handbook: no mining call; a changed program is refused
        let before = miner.requests().len();
        let mut again = stepwise_jobs::kinds::solve::SearchSettings {
            prompting: Some(resolve(&request, "arith", &problems, Some(&store), None).unwrap()),
            ..Default::default()
        };
        crate::jobs::prepare_prompting(&mut again, &backends, &problems, &store, Some(summary.run))
            .await
            .unwrap();
        assert_eq!(
            miner.requests().len(),
            before,
            "the stored handbook is taken"
        );
        assert_eq!(again, search);
        let resume = stepwise_jobs::RunOptions {
            resume: stepwise_jobs::Resume::Run(summary.run),
            ..opts.clone()
        };
        let job = crate::jobs::ScaleJob::new(
            stepwise_jobs::kinds::scale::ScaleJobConfig {
                search: again.clone(),
                ..config.clone()
            },
            problems.clone(),
            &backends,
        )
        .unwrap();
        crate::jobs::scale(&store, &job, &resume).await.unwrap();
        let mut changed = again.clone();
        if let Some(p) = changed.prompting.as_mut() {
            p.shots = 2;
        }
        let job = crate::jobs::ScaleJob::new(
            stepwise_jobs::kinds::scale::ScaleJobConfig {
                search: changed,
                ..config
            },
            problems.clone(),
            &backends,
        )
        .unwrap();
        let e = crate::jobs::scale(&store, &job, &resume).await.unwrap_err();
        assert!(format!("{e:#}").contains("prompting.shots"), "{e:#}");

        // no source run: named
        let e = resolve(
            &PromptingRequest {
                handbook_from: None,
                ..request.clone()
            },
            "arith",
            &problems,
            Some(&store),
            None,
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("needs --handbook-from run:ID"),
            "{e}"
        );
        // mining that finds nothing is an error naming the run
        let mute = Context::new(Arc::new(ScriptedGenerator::new(|_, _| {
            "Nothing here.".into()
        })));
        let s0 = resolve(&request, "arith", &problems, Some(&store), None).unwrap();
        let e = prepare(s0, &mute, &problems, Some(&store), None)
            .await
            .unwrap_err();
        assert!(
            e.to_string().contains("mining 3 traces gave no behaviour"),
            "{e}"
        );
    }

    fn golds_of(problems: &[Problem], i: usize) -> String {
        problems[i].gold.clone().unwrap()
    }
}
