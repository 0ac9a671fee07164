//! Export formats of step labels, their writers and readers (JSONL or Parquet).
//!
//! Every format carries only the labelled steps of a solution (`steps[..labels.len()]`).
//!
//! | format | record |
//! |---|---|
//! | `math-shepherd` | `{input, label, problem_id}`: `input` is the question, a blank line, then each step followed by ` ки` (one per line); `label` is the same text with each `ки` replaced by `+` or `-` |
//! | `trl` | `{prompt, completions, labels, problem_id}` (TRL's stepwise-supervision PRM format; `labels` are booleans) |
//! | `prm800k` | `{question: {problem, ground_truth_answer}, label: {steps: [{completions: [{text, rating}], chosen_completion: 0}], finish_reason}, problem_id}`; rating 1 good, -1 bad |
//! | `openr` | `{question, process, label, problem_id}`: `process` is each step followed by ` ки` (one per line), `label` a list of `+`/`-` |
//! | `processbench` | `{id, problem, steps, label, final_answer_correct}`: `label` is the first bad step (0-based) or -1 |
//! | `native` | the full [`LabelledSolution`] (soft values, rollout counts, reasons) |

use crate::{AnnotateError, LabelledSolution, Result};
use serde_json::{Map, Value, json};
use std::fmt;
use std::path::Path;
use std::str::FromStr;

/// Step tag of Math-Shepherd and OpenR.
pub const TAG: &str = "ки";

/// An export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExportFormat {
    MathShepherd,
    Trl,
    Prm800k,
    OpenR,
    ProcessBench,
    Native,
}

impl ExportFormat {
    pub const ALL: [ExportFormat; 6] = [
        Self::MathShepherd,
        Self::Trl,
        Self::Prm800k,
        Self::OpenR,
        Self::ProcessBench,
        Self::Native,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::MathShepherd => "math-shepherd",
            Self::Trl => "trl",
            Self::Prm800k => "prm800k",
            Self::OpenR => "openr",
            Self::ProcessBench => "processbench",
            Self::Native => "native",
        }
    }
}

impl fmt::Display for ExportFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ExportFormat {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let n = s.trim().to_ascii_lowercase().replace('_', "-");
        Self::ALL
            .into_iter()
            .find(|f| f.name() == n || (n == "mathshepherd" && *f == Self::MathShepherd))
            .ok_or_else(|| {
                format!("unknown format '{s}' (expected math-shepherd, trl, prm800k, openr, processbench or native)")
            })
    }
}

/// What every format keeps: enough to compare a read-back record with what was written.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadRecord {
    pub problem_id: Option<String>,
    pub question: String,
    pub steps: Vec<String>,
    /// Hard labels of the steps (for `processbench`, good before the first error and bad
    /// from it on).
    pub good: Vec<bool>,
    /// Soft labels of the same steps (MC values): only `native` keeps them.
    pub values: Option<Vec<f64>>,
    /// Whether the solution's final answer is correct, where the format says
    /// (`native`'s `answer_correct`, `processbench`'s `final_answer_correct`).
    pub answer_correct: Option<bool>,
}

impl ReadRecord {
    /// The same view of a labelled solution as the formats keep.
    pub fn of(s: &LabelledSolution) -> Self {
        let n = s.labels.len();
        Self {
            problem_id: Some(s.problem_id.clone()),
            question: s.question.clone(),
            steps: s.steps[..n.min(s.steps.len())].to_vec(),
            good: s.labels.iter().map(|l| l.good).collect(),
            values: Some(s.labels.iter().map(|l| l.value).collect()),
            answer_correct: s.answer_correct,
        }
    }

    /// First bad step.
    pub fn first_error(&self) -> Option<usize> {
        self.good.iter().position(|g| !g)
    }
}

fn sign(g: bool) -> &'static str {
    if g { "+" } else { "-" }
}

/// One record in `format`.
pub fn to_record(format: ExportFormat, s: &LabelledSolution) -> Map<String, Value> {
    let r = ReadRecord::of(s);
    let v = match format {
        ExportFormat::MathShepherd => {
            let mut input = format!("{}\n\n", r.question);
            let mut label = input.clone();
            for (i, (step, g)) in r.steps.iter().zip(&r.good).enumerate() {
                if i > 0 {
                    input.push('\n');
                    label.push('\n');
                }
                input.push_str(&format!("{step} {TAG}"));
                label.push_str(&format!("{step} {}", sign(*g)));
            }
            json!({"input": input, "label": label, "problem_id": s.problem_id})
        }
        ExportFormat::Trl => json!({
            "prompt": r.question,
            "completions": r.steps,
            "labels": r.good,
            "problem_id": s.problem_id,
        }),
        ExportFormat::Prm800k => {
            let steps: Vec<Value> = r
                .steps
                .iter()
                .zip(&r.good)
                .map(|(t, g)| {
                    json!({"completions": [{"text": t, "rating": if *g { 1 } else { -1 }}], "chosen_completion": 0})
                })
                .collect();
            let finish = if r.first_error().is_some() {
                "found_error"
            } else {
                "solution"
            };
            json!({
                "question": {"problem": r.question, "ground_truth_answer": s.gold.clone().unwrap_or_default()},
                "label": {"steps": steps, "finish_reason": finish},
                "problem_id": s.problem_id,
            })
        }
        ExportFormat::OpenR => {
            let process: Vec<String> = r.steps.iter().map(|t| format!("{t} {TAG}")).collect();
            let labels: Vec<&str> = r.good.iter().map(|g| sign(*g)).collect();
            json!({"question": r.question, "process": process.join("\n"), "label": labels, "problem_id": s.problem_id})
        }
        ExportFormat::ProcessBench => json!({
            "id": format!("{}/{}", s.problem_id, s.sample),
            "problem": r.question,
            "steps": r.steps,
            "label": r.first_error().map_or(-1, |e| e as i64),
            "final_answer_correct": s.answer_correct,
        }),
        ExportFormat::Native => serde_json::to_value(s).unwrap_or(Value::Null),
    };
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn field<'a>(m: &'a Map<String, Value>, k: &str) -> std::result::Result<&'a Value, String> {
    m.get(k).ok_or_else(|| format!("missing field '{k}'"))
}

fn string(m: &Map<String, Value>, k: &str) -> std::result::Result<String, String> {
    field(m, k)?
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("field '{k}' is not a string"))
}

fn strings(v: &Value, k: &str) -> std::result::Result<Vec<String>, String> {
    v.as_array()
        .ok_or_else(|| format!("field '{k}' is not a list"))?
        .iter()
        .map(|x| {
            x.as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("field '{k}' holds a non-string"))
        })
        .collect()
}

/// Reads one record of `format` back.
pub fn from_record(
    format: ExportFormat,
    m: &Map<String, Value>,
) -> std::result::Result<ReadRecord, String> {
    let problem_id = m
        .get("problem_id")
        .and_then(Value::as_str)
        .map(str::to_string);
    match format {
        ExportFormat::MathShepherd => {
            let input = string(m, "input")?;
            let label = string(m, "label")?;
            let (question, body) = input
                .split_once("\n\n")
                .ok_or_else(|| "'input' has no blank line after the question".to_string())?;
            let tag = format!(" {TAG}");
            let steps: Vec<String> = body
                .split(&format!("{tag}\n"))
                .map(|s| s.strip_suffix(&tag).unwrap_or(s).to_string())
                .collect();
            if !body.ends_with(&tag) {
                return Err("'input' does not end with a step tag".into());
            }
            // Walk `label` along the same text: question, then each step and its sign.
            let mut rest = label
                .strip_prefix(&format!("{question}\n\n"))
                .ok_or_else(|| "'label' does not start with the question of 'input'".to_string())?;
            let mut good = Vec::with_capacity(steps.len());
            for (i, step) in steps.iter().enumerate() {
                if i > 0 {
                    rest = rest
                        .strip_prefix('\n')
                        .ok_or_else(|| format!("'label' step {i}: missing newline"))?;
                }
                rest = rest
                    .strip_prefix(step.as_str())
                    .and_then(|r| r.strip_prefix(' '))
                    .ok_or_else(|| format!("'label' step {i} differs from 'input'"))?;
                match rest.chars().next() {
                    Some('+') => good.push(true),
                    Some('-') => good.push(false),
                    _ => return Err(format!("'label' step {i}: expected '+' or '-'")),
                }
                rest = &rest[1..];
            }
            Ok(ReadRecord {
                problem_id,
                question: question.to_string(),
                steps,
                good,
                values: None,
                answer_correct: None,
            })
        }
        ExportFormat::Trl => {
            let steps = strings(field(m, "completions")?, "completions")?;
            let good = field(m, "labels")?
                .as_array()
                .ok_or("field 'labels' is not a list")?
                .iter()
                .map(|x| x.as_bool().ok_or("field 'labels' holds a non-boolean"))
                .collect::<std::result::Result<Vec<bool>, _>>()?;
            if good.len() != steps.len() {
                return Err(format!(
                    "{} labels for {} completions",
                    good.len(),
                    steps.len()
                ));
            }
            Ok(ReadRecord {
                problem_id,
                question: string(m, "prompt")?,
                steps,
                good,
                values: None,
                answer_correct: None,
            })
        }
        ExportFormat::Prm800k => {
            let q = field(m, "question")?
                .as_object()
                .ok_or("field 'question' is not an object")?;
            let label = field(m, "label")?
                .as_object()
                .ok_or("field 'label' is not an object")?;
            let mut steps = Vec::new();
            let mut good = Vec::new();
            for (i, st) in field(label, "steps")?
                .as_array()
                .ok_or("'label.steps' is not a list")?
                .iter()
                .enumerate()
            {
                let chosen = st
                    .get("chosen_completion")
                    .and_then(Value::as_u64)
                    .unwrap_or(0) as usize;
                let c = st
                    .get("completions")
                    .and_then(Value::as_array)
                    .and_then(|cs| cs.get(chosen))
                    .ok_or_else(|| format!("'label.steps[{i}]' has no chosen completion"))?;
                steps.push(
                    c.get("text")
                        .and_then(Value::as_str)
                        .ok_or_else(|| format!("'label.steps[{i}]' completion has no text"))?
                        .to_string(),
                );
                let rating = c.get("rating").and_then(Value::as_i64).ok_or_else(|| {
                    format!("'label.steps[{i}]' completion has no integer rating")
                })?;
                good.push(rating >= 0);
            }
            Ok(ReadRecord {
                problem_id,
                question: string(q, "problem")?,
                steps,
                good,
                values: None,
                answer_correct: None,
            })
        }
        ExportFormat::OpenR => {
            let process = string(m, "process")?;
            let tag = format!(" {TAG}");
            let steps: Vec<String> = if process.is_empty() {
                Vec::new()
            } else {
                process
                    .split(&format!("{tag}\n"))
                    .map(|s| s.strip_suffix(&tag).unwrap_or(s).to_string())
                    .collect()
            };
            let good = strings(field(m, "label")?, "label")?
                .iter()
                .map(|s| match s.as_str() {
                    "+" => Ok(true),
                    "-" => Ok(false),
                    o => Err(format!("label '{o}' is not '+' or '-'")),
                })
                .collect::<std::result::Result<Vec<bool>, _>>()?;
            if good.len() != steps.len() {
                return Err(format!("{} labels for {} steps", good.len(), steps.len()));
            }
            Ok(ReadRecord {
                problem_id,
                question: string(m, "question")?,
                steps,
                good,
                values: None,
                answer_correct: None,
            })
        }
        ExportFormat::ProcessBench => {
            let steps = strings(field(m, "steps")?, "steps")?;
            let label = field(m, "label")?
                .as_i64()
                .ok_or("field 'label' is not an integer")?;
            if label < -1 || label >= steps.len() as i64 {
                return Err(format!("label {label} is outside -1..{}", steps.len()));
            }
            let good = (0..steps.len())
                .map(|i| label < 0 || (i as i64) < label)
                .collect();
            let problem_id = m
                .get("id")
                .and_then(Value::as_str)
                .and_then(|id| id.rsplit_once('/'))
                .map(|(p, _)| p.to_string());
            Ok(ReadRecord {
                problem_id,
                question: string(m, "problem")?,
                steps,
                good,
                values: None,
                answer_correct: m.get("final_answer_correct").and_then(Value::as_bool),
            })
        }
        ExportFormat::Native => {
            let s: LabelledSolution =
                serde_json::from_value(Value::Object(m.clone())).map_err(|e| e.to_string())?;
            Ok(ReadRecord::of(&s))
        }
    }
}

fn is_parquet(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet") || e.eq_ignore_ascii_case("pq"))
}

/// Writes `solutions` in `format` to `path` (Parquet for `.parquet`/`.pq`, else JSONL).
/// Returns the number of records.
pub fn write(path: &Path, format: ExportFormat, solutions: &[LabelledSolution]) -> Result<usize> {
    let records: Vec<Map<String, Value>> = solutions.iter().map(|s| to_record(format, s)).collect();
    write_records(path, &records)
}

/// Writes records as they are: Parquet for a `.parquet` path, else JSONL; creates the
/// parent folders. Returns how many were written.
pub fn write_records(path: &Path, records: &[Map<String, Value>]) -> Result<usize> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| AnnotateError::File {
            path: parent.display().to_string(),
            reason: e.to_string(),
        })?;
    }
    if is_parquet(path) {
        stepwise_data::parquet_io::write_parquet_records(path, records)?;
    } else {
        let mut text = String::new();
        for r in records {
            text.push_str(&Value::Object(r.clone()).to_string());
            text.push('\n');
        }
        std::fs::write(path, text).map_err(|e| AnnotateError::File {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
    }
    Ok(records.len())
}

/// Reads a file written by [`write`] (or by another tool in the same format).
pub fn read(path: &Path, format: ExportFormat) -> Result<Vec<ReadRecord>> {
    let p = path.display().to_string();
    let maps: Vec<Map<String, Value>> = if is_parquet(path) {
        stepwise_data::parquet_io::read_parquet_records(path)?
            .into_iter()
            .map(|r| r.value)
            .collect()
    } else {
        let text = std::fs::read_to_string(path).map_err(|e| AnnotateError::File {
            path: p.clone(),
            reason: e.to_string(),
        })?;
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Value>(line) {
                Ok(Value::Object(m)) => out.push(m),
                Ok(_) => {
                    return Err(AnnotateError::BadRecord {
                        path: p,
                        record: i + 1,
                        reason: "not a JSON object".into(),
                    });
                }
                Err(e) => {
                    return Err(AnnotateError::BadRecord {
                        path: p,
                        record: i + 1,
                        reason: e.to_string(),
                    });
                }
            }
        }
        out
    };
    maps.iter()
        .enumerate()
        .map(|(i, m)| {
            from_record(format, m).map_err(|reason| AnnotateError::BadRecord {
                path: p.clone(),
                record: i + 1,
                reason,
            })
        })
        .collect()
}
