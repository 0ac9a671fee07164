//! Boundary types of prompt programs: how the policy prompt of a `solve` or `scale` run
//! was built (stored in its config), and what was asked for each problem (stored in its
//! records), so `--resume`, workers and reports know exactly what the model saw.
//!
//! The logic (choosing demos, the methods, rendering) is `stepwise_search::prompting`.
//! Every field here is optional in older runs: a run made before prompt programs has no
//! `prompting` in its settings and no `prompt` in its records, and reads unchanged.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use stepwise_core::Spent;

/// One demonstration: a solved problem shown before the question.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Demo {
    /// Where it came from: the problem id (a dataset) or `run:ID/PROBLEM#SAMPLE` (a run).
    pub id: String,
    pub question: String,
    /// The worked solution, steps separated by blank lines, ending with the answer line.
    pub rationale: String,
    /// The demo's final answer, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
}

/// How `k` demos are chosen from the pool for a question.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DemoRule {
    /// The first `k` of the pool (the question itself left out).
    Fixed,
    /// `k` drawn without replacement, seeded by the program's seed and the problem id.
    Random,
    /// The `k` whose questions share the most word tokens with the question (token
    /// Jaccard similarity; ties go to the earlier demo).
    Nearest,
}

impl DemoRule {
    pub fn name(self) -> &'static str {
        match self {
            Self::Fixed => "fixed",
            Self::Random => "random",
            Self::Nearest => "nearest",
        }
    }
}

impl FromStr for DemoRule {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "fixed" => Ok(Self::Fixed),
            "random" => Ok(Self::Random),
            "nearest" => Ok(Self::Nearest),
            other => Err(format!(
                "unknown demo rule '{other}' (expected fixed, random or nearest)"
            )),
        }
    }
}

/// Longer or shorter reasoning in the demos (the step-length study).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepLength {
    More,
    Fewer,
}

/// A rationale format of the demos (the explanation-formats study).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RationaleFormat {
    /// `Step 1: …`, `Step 2: …`.
    Numbered,
    /// Every step followed by why it holds.
    InDepth,
}

/// One mistake shown in the prompt (learning from mistakes in context): a wrong sample of
/// a stored run beside a right solution of the same problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mistake {
    /// The wrong sample: `run:ID/PROBLEM#SAMPLE`.
    pub id: String,
    pub question: String,
    /// The wrong sample's text.
    pub wrong: String,
    /// Its (wrong) answer, when it gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wrong_answer: Option<String>,
    /// A right solution: a verified sample of the same problem, else the problem's
    /// reference solution, else `The answer is GOLD.`
    pub right: String,
    /// The right answer (the gold).
    pub answer: String,
}

/// Principles the model wrote from a set of mistakes (LEAP), made when the run was
/// created: one call per distinct set of mistakes the rule picks over the run's problems.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Principles {
    /// Ids of the mistakes they were written from, in order (the cache key).
    pub mistakes: Vec<String>,
    /// The principles, one per line.
    pub text: String,
}

/// One entry of a behaviour handbook (metacognitive reuse): a named, reusable reasoning
/// move the model wrote from a stored trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Behaviour {
    /// `lower-case-with-hyphens`.
    pub name: String,
    pub instruction: String,
    /// The trace it was mined from: `run:ID/PROBLEM#SAMPLE`.
    pub source: String,
    /// The question of that trace (what retrieval compares a new question with).
    pub question: String,
}

/// How the `schema` method abstracts a schema from the demos.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SchemaMode {
    /// The model writes it (one call per prompt build).
    Model,
    /// Deterministically, for `EXPR = VALUE` steps (`arith`): numbers become letters,
    /// results `r1`, `r2`, ….
    Rules,
}

/// A prompting method: what is done to the demos before they go into the prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "kebab-case")]
pub enum PromptMethod {
    /// Plain few-shot: the demos as they are.
    Demos,
    /// Demos rewritten to more or fewer steps.
    StepLength { length: StepLength },
    /// Demos rewritten into a rationale format.
    Format { format: RationaleFormat },
    /// Contrastive denoising (CD-CoT): the model rephrases each (noisy) demo against the
    /// clean one; rephrasings whose answer agrees with the demo's are kept.
    CdCot {
        /// Rephrasings sampled per noisy demo.
        rephrasings: usize,
    },
    /// Learning from mistakes in context: a stored run's wrong samples with right
    /// solutions in `{mistakes}`; with `principles`, the principles the model wrote from
    /// them instead (LEAP).
    Mistakes { principles: bool },
    /// Schema-activated ICL: a schema abstracted from the chosen demos in `{schema}`.
    Schema { mode: SchemaMode },
    /// Metacognitive reuse: the behaviours of a handbook mined from a stored run that are
    /// nearest the question, in `{handbook}`.
    Handbook,
}

impl PromptMethod {
    /// Every name `--prompting` takes.
    pub const NAMES: &'static str = "demos, step-length:more, step-length:fewer, format:numbered, format:in-depth, cd-cot, mistakes, mistakes:principle, schema, schema:rules, handbook";

    pub fn name(&self) -> String {
        match self {
            Self::Demos => "demos".into(),
            Self::StepLength { length } => format!(
                "step-length:{}",
                match length {
                    StepLength::More => "more",
                    StepLength::Fewer => "fewer",
                }
            ),
            Self::Format { format } => format!(
                "format:{}",
                match format {
                    RationaleFormat::Numbered => "numbered",
                    RationaleFormat::InDepth => "in-depth",
                }
            ),
            Self::CdCot { rephrasings } => format!("cd-cot:{rephrasings}"),
            Self::Mistakes { principles: false } => "mistakes".into(),
            Self::Mistakes { principles: true } => "mistakes:principle".into(),
            Self::Schema {
                mode: SchemaMode::Model,
            } => "schema".into(),
            Self::Schema {
                mode: SchemaMode::Rules,
            } => "schema:rules".into(),
            Self::Handbook => "handbook".into(),
        }
    }

    /// The placeholder this method fills besides `{question}` and `{demos}`.
    pub fn placeholder(&self) -> Option<&'static str> {
        match self {
            Self::Mistakes { .. } => Some("mistakes"),
            Self::Schema { .. } => Some("schema"),
            Self::Handbook => Some("handbook"),
            _ => None,
        }
    }
}

impl fmt::Display for PromptMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl FromStr for PromptMethod {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (head, arg) = match s.trim().split_once(':') {
            Some((h, a)) => (h, Some(a)),
            None => (s.trim(), None),
        };
        let bad = || format!("unknown prompting method '{s}' (expected {})", Self::NAMES);
        match (head, arg) {
            ("demos", None) => Ok(Self::Demos),
            ("step-length", Some("more") | None) => Ok(Self::StepLength {
                length: StepLength::More,
            }),
            ("step-length", Some("fewer")) => Ok(Self::StepLength {
                length: StepLength::Fewer,
            }),
            ("format", Some("numbered") | None) => Ok(Self::Format {
                format: RationaleFormat::Numbered,
            }),
            ("format", Some("in-depth")) => Ok(Self::Format {
                format: RationaleFormat::InDepth,
            }),
            ("cd-cot", None) => Ok(Self::CdCot { rephrasings: 3 }),
            ("cd-cot", Some(n)) => match n.parse::<usize>() {
                Ok(r) if r > 0 => Ok(Self::CdCot { rephrasings: r }),
                _ => Err(format!(
                    "cd-cot:{n}: the number of rephrasings must be a positive integer"
                )),
            },
            ("mistakes", None) => Ok(Self::Mistakes { principles: false }),
            ("mistakes", Some("principle" | "principles")) => {
                Ok(Self::Mistakes { principles: true })
            }
            ("schema", None | Some("model")) => Ok(Self::Schema {
                mode: SchemaMode::Model,
            }),
            ("schema", Some("rules")) => Ok(Self::Schema {
                mode: SchemaMode::Rules,
            }),
            ("handbook", None) => Ok(Self::Handbook),
            _ => Err(bad()),
        }
    }
}

/// A prompt program, as stored in a run's [`SearchSettings`](crate::kinds::solve::SearchSettings):
/// the template, the method, how demos are chosen, and the whole demo pool (resolved
/// when the run was created, so a resumed run or a worker needs neither the pool's
/// dataset nor its source run).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptingSettings {
    pub method: PromptMethod,
    /// The task template's registry name (`arith-chain`, `word-problem`, …).
    pub task: String,
    /// The policy template's text, with `{question}` and `{demos}` (and the other
    /// placeholders a method fills).
    pub template: String,
    pub rule: DemoRule,
    /// Demos per prompt.
    pub shots: usize,
    /// Seed of the `random` rule (mixed with each problem's id).
    pub seed: u64,
    /// Where the pool came from (`data:SPEC` or `run:ID`).
    pub source: String,
    pub pool: Vec<Demo>,
    /// The clean demo CD-CoT rephrases against (`cd-cot` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clean: Option<Demo>,
    /// Where the mistakes came from (`run:ID`; `mistakes` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mistakes_source: Option<String>,
    /// The mistakes pool: one wrong sample per problem of the source run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mistakes: Vec<Mistake>,
    /// `mistakes:principle`: the principles written for each set of mistakes the rule
    /// picks over the run's problems (made when the run was created).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub principles: Vec<Principles>,
    /// Where the handbook was mined (`run:ID`; `handbook` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handbook_source: Option<String>,
    /// The behaviour handbook mined when the run was created.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub handbook: Vec<Behaviour>,
    /// What the model calls made when the run was created cost (principles, handbook
    /// mining): a run-level cost, beside the per-problem costs of the records.
    #[serde(default, skip_serializing_if = "no_cost")]
    pub prepared: Spent,
}

fn no_cost(s: &Spent) -> bool {
    *s == Spent::default()
}

/// What was asked for one problem: stored in its records beside the samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuiltPrompt {
    /// The method's name.
    pub method: String,
    /// Ids of the demos shown, in order.
    pub demos: Vec<String>,
    /// The seed the `random` rule used for this problem.
    pub seed: u64,
    /// The user message sent to the policy (the question filled in).
    pub text: String,
    /// Model calls made to build the prompt (CD-CoT's rephrasings), counted in the
    /// policy columns of the unit's `Spent` as well.
    #[serde(default)]
    pub spent: Spent,
    /// Ids of the mistakes shown (`mistakes`), in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mistakes: Vec<String>,
    /// Names of the handbook entries shown (`handbook`), in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub behaviours: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_names_round_trip() {
        for name in [
            "demos",
            "step-length:more",
            "step-length:fewer",
            "format:numbered",
            "format:in-depth",
            "cd-cot:3",
            "mistakes",
            "mistakes:principle",
            "schema",
            "schema:rules",
            "handbook",
        ] {
            let m: PromptMethod = name.parse().unwrap();
            assert_eq!(m.name(), name);
            let json = serde_json::to_string(&m).unwrap();
            assert_eq!(serde_json::from_str::<PromptMethod>(&json).unwrap(), m);
        }
        assert_eq!(
            "cd-cot".parse::<PromptMethod>().unwrap(),
            PromptMethod::CdCot { rephrasings: 3 }
        );
        let e = "schema:fuzzy".parse::<PromptMethod>().unwrap_err();
        assert!(e.contains("unknown prompting method 'schema:fuzzy'"), "{e}");
        assert_eq!(
            "mistakes:principle"
                .parse::<PromptMethod>()
                .unwrap()
                .placeholder(),
            Some("mistakes")
        );
        assert!("cd-cot:0".parse::<PromptMethod>().is_err());
        assert!("fuzzy".parse::<DemoRule>().is_err());
    }
}
