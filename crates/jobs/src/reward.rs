//! `stepwise reward`: a JSONL file of rollouts scored offline, as a resumable job, by the
//! reward functions of `stepwise-reward` ([`Rewards`], the same functions `stepwise serve`
//! answers with, not a copy).
//!
//! **Input**: one JSON object a line with the fields `/v1/rewards` takes: `response`
//! (required), `prompt`, `gold` (or `label`, raw as trainers pass dataset labels: a string,
//! a number (its JSON text), a list (any of them is right) or null / absent (no gold: only
//! the components that need none reward it, and `no_gold` is set)) and `data_source` (or
//! `source`, choosing the reward function of `[sources."NAME"]`). Optional: `group` (a
//! string or number; the lines of one group are one GRPO group, scored together as
//! `/v1/group_rewards` scores a group, with the configured group components), `step` and
//! `total_steps` (Trust-GRPO's annealing), and `id` (copied to the output). Other fields
//! are ignored. The lines of a group share `prompt`, `gold`, `data_source`, `step` and
//! `total_steps`, and its gold is one answer (not a list).
//!
//! A malformed line (not JSON, a missing or wrong-typed field, a group line that
//! disagrees with its group) is an error naming `file:line` before any run starts, or,
//! with `skip_bad`, an output line holding that error.
//!
//! **Units** are chunks of [`CHUNK`] input lines keyed by their first and last line
//! numbers; a group is scored by the chunk that holds its first line. The run's config
//! holds the reward configuration and the input file's path, size and SHA-256, so a
//! resume refuses a file or a configuration that changed.
//!
//! **Output**: one JSON object per input line, in input order ([`RewardLine`]: `line`,
//! `id`, the server's [`RewardResult`] fields `reward`, `components`, `answer`,
//! `timed_out`, and `no_gold`), every scored line with the same component keys, written
//! whole or not at all (`stepwise_data::atomic`) once every chunk is done.

use crate::{Job, JobError, RunId, RunInfo, RunKind, RunOptions, RunReport, UnitError, records};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use stepwise_reward::group::Group;
use stepwise_reward::{ConfigError, Gold, RewardConfig, RewardResult, Rewards};
use stepwise_store::RunStore;

/// Input lines per unit.
pub const CHUNK: usize = 256;

/// Everything that decides a `reward` run's output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RewardJobConfig {
    /// The input file as given.
    pub input: String,
    /// Its size in bytes and SHA-256 (hex) when the run started.
    pub input_bytes: u64,
    pub input_sha256: String,
    /// The reward functions (the reward part of a `rewards.toml`, or a preset).
    pub rewards: RewardConfig,
    /// Malformed lines become error lines of the output instead of stopping the job.
    pub skip_bad: bool,
    /// The models of model-backed components (`RewardModels::identity`), when it has
    /// any: a resume with other models is refused. Absent in runs without them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models: Option<String>,
}

/// The models a configuration's model-backed components (`kind = "scorer"`) use: their
/// builder (`stepwise-score`'s `ScorerComponents`, over the models the CLI opened) and
/// what identifies them in the stored config (the backends' model names, without where
/// they are served).
#[derive(Clone)]
pub struct RewardModels {
    pub components: Arc<dyn stepwise_reward::model::ModelComponents>,
    pub identity: String,
}

/// One output line: the reward of one input line, or why it could not be scored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RewardLine {
    /// 1-based line of the input.
    pub line: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<serde_json::Value>,
    /// The input's group, for a line scored with its group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<serde_json::Value>,
    /// The reward and its components, as `/v1/rewards` answers them (absent on an error line).
    #[serde(flatten)]
    pub result: Option<RewardResult>,
    /// The line came with no gold answer.
    #[serde(default)]
    pub no_gold: bool,
    /// EMPO's cluster of this response's answer, when EMPO is configured and it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<usize>,
    /// EMPO's semantic entropy of the line's group (nats).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semantic_entropy: Option<f64>,
    /// Trust-GRPO's trust weight of the line's group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_weight: Option<f64>,
    /// Why the line was not scored (with `skip_bad`): the same text, `line N: …`, that
    /// stops a run without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl RewardLine {
    fn error(line: usize, message: &str) -> Self {
        Self {
            line,
            id: None,
            group: None,
            result: None,
            no_gold: false,
            cluster: None,
            semantic_entropy: None,
            trust_weight: None,
            error: Some(format!("line {line}: {message}")),
        }
    }
}

/// A stored unit: the output lines of one chunk, in input order (a group's lines with the
/// chunk of its first line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RewardChunk {
    pub lines: Vec<RewardLine>,
}

/// `reward` runs.
pub struct RewardKind;

impl RunKind for RewardKind {
    const KIND: &'static str = "reward";
    const VERSION: u32 = 1;
    type Config = RewardJobConfig;
    type Record = RewardChunk;
}

/// Why the input or the configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RewardInputError {
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}: {message}", path.display())]
    BadLine {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("the reward configuration")]
    Config(#[from] ConfigError),
}

/// One input line as read.
#[derive(Debug, Clone, Deserialize)]
struct LineIn {
    #[serde(default)]
    prompt: String,
    response: String,
    #[serde(default = "no_gold", alias = "label")]
    gold: Gold,
    #[serde(default, alias = "source")]
    data_source: Option<String>,
    #[serde(default)]
    group: Option<serde_json::Value>,
    #[serde(default)]
    id: Option<serde_json::Value>,
    #[serde(default)]
    step: Option<u64>,
    #[serde(default)]
    total_steps: Option<u64>,
}

fn no_gold() -> Gold {
    Gold::None
}

#[derive(Debug, Clone)]
enum Entry {
    /// A line to score, alone or (`group`: an index of `Data::groups`) with its group.
    Item {
        line: usize,
        item: LineIn,
        group: Option<usize>,
    },
    Bad {
        line: usize,
        message: String,
    },
}

impl Entry {
    fn line(&self) -> usize {
        match self {
            Self::Item { line, .. } | Self::Bad { line, .. } => *line,
        }
    }
}

/// A group of the input: its id, its lines (indices of `Data::entries`, in input order)
/// and the group as `Rewards::score_group` takes it.
#[derive(Debug, Clone)]
struct GroupOf {
    id: serde_json::Value,
    members: Vec<usize>,
    group: Group,
}

#[derive(Debug)]
struct Data {
    entries: Vec<Entry>,
    groups: Vec<GroupOf>,
    rewards: Rewards,
}

/// The reward job over one file.
pub struct RewardJob {
    config: RewardJobConfig,
    data: Arc<Data>,
}

/// serde_json's message without its " at line 1 column N" (the line is the file's, named
/// by the caller), with the column kept.
fn json_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let at = format!(" at line {} column {}", e.line(), e.column());
    match text.strip_suffix(&at) {
        Some(m) => format!("{m} (column {})", e.column()),
        None => text,
    }
}

/// A group id's text: a string, or a number's JSON text.
fn group_key(v: &serde_json::Value) -> Result<String, String> {
    match v {
        serde_json::Value::String(s) => Ok(s.clone()),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        other => Err(format!(
            "field 'group' is {other}, expected a string or number"
        )),
    }
}

/// The first field in which `item` disagrees with its group's first line `first`.
fn disagreement(first: &LineIn, item: &LineIn) -> Option<&'static str> {
    [
        ("prompt", first.prompt == item.prompt),
        ("gold", first.gold == item.gold),
        ("data_source", first.data_source == item.data_source),
        ("step", first.step == item.step),
        ("total_steps", first.total_steps == item.total_steps),
    ]
    .into_iter()
    .find(|(_, same)| !same)
    .map(|(field, _)| field)
}

impl RewardJob {
    /// Reads and checks `path` and builds the reward functions of `rewards`.
    pub fn from_file(
        path: &Path,
        rewards: RewardConfig,
        skip_bad: bool,
    ) -> Result<Self, RewardInputError> {
        Self::from_file_with_models(path, rewards, skip_bad, None)
    }

    /// [`RewardJob::from_file`] with the models of model-backed components.
    pub fn from_file_with_models(
        path: &Path,
        rewards: RewardConfig,
        skip_bad: bool,
        models: Option<&RewardModels>,
    ) -> Result<Self, RewardInputError> {
        let functions = match models {
            Some(m) => Rewards::with_models(&rewards, m.components.as_ref())?,
            None => Rewards::new(&rewards)?,
        };
        let models = models
            .filter(|_| functions.has_models())
            .map(|m| m.identity.clone());
        let bytes = std::fs::read(path).map_err(|source| RewardInputError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let text = String::from_utf8_lossy(&bytes);
        // a UTF-8 byte order mark starts the file, not its first record
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        let mut entries: Vec<Entry> = Vec::new();
        let mut groups: Vec<GroupOf> = Vec::new();
        let mut group_index: HashMap<String, usize> = HashMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            if raw.trim().is_empty() {
                continue;
            }
            let read = serde_json::from_str::<LineIn>(raw)
                .map_err(|e| json_message(&e))
                .and_then(|item| {
                    let Some(id) = &item.group else {
                        return Ok(Entry::Item {
                            line,
                            item,
                            group: None,
                        });
                    };
                    let key = group_key(id)?;
                    if matches!(item.gold, Gold::AnyOf(_)) {
                        return Err(format!(
                            "group {id}: a grouped line's gold is one answer, not a list"
                        ));
                    }
                    let g = match group_index.get(&key) {
                        Some(&g) => {
                            let first = groups[g].members[0];
                            if let Entry::Item { item: head, .. } = &entries[first]
                                && let Some(field) = disagreement(head, &item)
                            {
                                return Err(format!(
                                    "group {id}: its '{field}' differs from the group's first line ({}); the lines of a group share prompt, gold, data_source, step and total_steps",
                                    entries[first].line()
                                ));
                            }
                            g
                        }
                        None => {
                            group_index.insert(key, groups.len());
                            groups.push(GroupOf {
                                id: id.clone(),
                                members: Vec::new(),
                                group: Group {
                                    prompt: item.prompt.clone(),
                                    responses: Vec::new(),
                                    gold: match &item.gold {
                                        Gold::Text(t) => Some(t.clone()),
                                        Gold::AnyOf(_) | Gold::None => None,
                                    },
                                    data_source: item.data_source.clone(),
                                    step: item.step.unwrap_or(0),
                                    total_steps: item.total_steps,
                                },
                            });
                            groups.len() - 1
                        }
                    };
                    groups[g].members.push(entries.len());
                    groups[g].group.responses.push(item.response.clone());
                    Ok(Entry::Item {
                        line,
                        item,
                        group: Some(g),
                    })
                });
            match read {
                Ok(entry) => entries.push(entry),
                Err(message) if skip_bad => {
                    tracing::warn!(file = %path.display(), line, error = %message, "malformed line recorded as an error");
                    entries.push(Entry::Bad { line, message });
                }
                Err(message) => {
                    return Err(RewardInputError::BadLine {
                        path: path.to_path_buf(),
                        line,
                        message,
                    });
                }
            }
        }
        let config = RewardJobConfig {
            input: path.display().to_string(),
            input_bytes: bytes.len() as u64,
            input_sha256: crate::verify::sha256_hex(&bytes),
            rewards,
            skip_bad,
            models,
        };
        Ok(Self {
            config,
            data: Arc::new(Data {
                entries,
                groups,
                rewards: functions,
            }),
        })
    }

    /// Lines read (scorable and malformed).
    pub fn lines(&self) -> usize {
        self.data.entries.len()
    }

    /// Malformed lines (recorded as errors with `skip_bad`).
    pub fn bad_lines(&self) -> usize {
        self.data
            .entries
            .iter()
            .filter(|e| matches!(e, Entry::Bad { .. }))
            .count()
    }
}

/// What scoring the lines of a chunk gave: per entry index its item's result, per group
/// index (a group whose first line is in the chunk) the group's.
#[derive(Default)]
struct ChunkScores {
    items: HashMap<usize, stepwise_reward::Scored>,
    groups: HashMap<usize, stepwise_reward::group::GroupResult>,
}

/// The entries of `range` that are scored alone and the groups the chunk scores.
fn chunk_work(d: &Data, range: std::ops::Range<usize>) -> (Vec<usize>, Vec<usize>) {
    let (mut items, mut groups) = (Vec::new(), Vec::new());
    for i in range {
        match &d.entries[i] {
            Entry::Item { group: None, .. } => items.push(i),
            Entry::Item { group: Some(g), .. } if d.groups[*g].members[0] == i => groups.push(*g),
            _ => {}
        }
    }
    (items, groups)
}

/// Scores the lines `range` of `d` (a group with the chunk of its first line).
fn score_chunk(d: &Data, range: std::ops::Range<usize>) -> RewardChunk {
    let (items, groups) = chunk_work(d, range.clone());
    let mut scores = ChunkScores::default();
    for i in items {
        if let Entry::Item { item, .. } = &d.entries[i] {
            let s = d.rewards.score_gold(
                item.data_source.as_deref(),
                &item.prompt,
                &item.response,
                &item.gold,
            );
            scores.items.insert(i, s);
        }
    }
    for g in groups {
        scores
            .groups
            .insert(g, d.rewards.score_group(&d.groups[g].group));
    }
    assemble(d, range, scores)
}

/// [`score_chunk`] with model-backed components: every item and group of the chunk
/// awaited at once, so their model calls reach the backend together.
async fn score_chunk_models(d: &Data, range: std::ops::Range<usize>) -> RewardChunk {
    let (items, groups) = chunk_work(d, range.clone());
    let extras = stepwise_reward::ItemExtras::default();
    let item_scores =
        futures::future::join_all(items.iter().filter_map(|&i| match &d.entries[i] {
            Entry::Item { item, .. } => Some(async move {
                let s = d
                    .rewards
                    .score_gold_async(
                        item.data_source.as_deref(),
                        &item.prompt,
                        &item.response,
                        &item.gold,
                        &extras,
                    )
                    .await;
                (i, s)
            }),
            Entry::Bad { .. } => None,
        }));
    let group_scores = futures::future::join_all(
        groups
            .iter()
            .map(|&g| async move { (g, d.rewards.score_group_async(&d.groups[g].group).await) }),
    );
    let (item_scores, group_scores) = futures::join!(item_scores, group_scores);
    let scores = ChunkScores {
        items: item_scores.into_iter().collect(),
        groups: group_scores.into_iter().collect(),
    };
    assemble(d, range, scores)
}

/// The output lines of `range` from what scoring gave.
fn assemble(d: &Data, range: std::ops::Range<usize>, mut scores: ChunkScores) -> RewardChunk {
    let mut lines = Vec::new();
    for i in range {
        match &d.entries[i] {
            Entry::Bad { line, message } => lines.push(RewardLine::error(*line, message)),
            Entry::Item {
                line,
                item,
                group: None,
            } => {
                let Some(s) = scores.items.remove(&i) else {
                    continue;
                };
                lines.push(RewardLine {
                    line: *line,
                    id: item.id.clone(),
                    group: None,
                    result: Some(s.result),
                    no_gold: s.no_gold,
                    cluster: None,
                    semantic_entropy: None,
                    trust_weight: None,
                    error: None,
                });
            }
            Entry::Item { group: Some(g), .. } if d.groups[*g].members[0] == i => {
                let of = &d.groups[*g];
                let Some(r) = scores.groups.remove(g) else {
                    continue;
                };
                for (k, &m) in of.members.iter().enumerate() {
                    let Entry::Item { line, item, .. } = &d.entries[m] else {
                        continue;
                    };
                    lines.push(RewardLine {
                        line: *line,
                        id: item.id.clone(),
                        group: Some(of.id.clone()),
                        result: Some(RewardResult {
                            reward: r.rewards[k],
                            components: r
                                .components
                                .iter()
                                .map(|(name, values)| (name.clone(), values[k]))
                                .collect(),
                            answer: None,
                            timed_out: false,
                            ..RewardResult::default()
                        }),
                        no_gold: of.group.gold.is_none(),
                        cluster: r.clusters.as_ref().and_then(|c| c[k]),
                        semantic_entropy: r.semantic_entropy,
                        trust_weight: r.trust_weight,
                        error: None,
                    });
                }
            }
            // a later line of a group: scored with the group, by the chunk of its first line
            Entry::Item { .. } => {}
        }
    }
    RewardChunk { lines }
}

/// Running totals of a reward run.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Tally {
    pub scored: usize,
    pub bad: usize,
    pub reward_sum: f64,
}

impl Tally {
    fn add(&mut self, l: &RewardLine) {
        match &l.result {
            Some(r) => {
                self.scored += 1;
                self.reward_sum += r.reward;
            }
            None => self.bad += 1,
        }
    }

    /// The mean reward of the scored lines (0 when none was).
    pub fn mean_reward(&self) -> f64 {
        if self.scored == 0 {
            0.0
        } else {
            self.reward_sum / self.scored as f64
        }
    }
}

#[async_trait::async_trait]
impl Job for RewardJob {
    type Kind = RewardKind;
    type Unit = std::ops::Range<usize>;
    type Tally = Tally;

    fn config(&self) -> &RewardJobConfig {
        &self.config
    }

    fn units(&self) -> Vec<(String, Self::Unit)> {
        let entries = &self.data.entries;
        (0..entries.len())
            .step_by(CHUNK)
            .map(|start| {
                let end = (start + CHUNK).min(entries.len());
                let key = format!(
                    "lines {}-{}",
                    entries[start].line(),
                    entries[end - 1].line()
                );
                (key, start..end)
            })
            .collect()
    }

    async fn run_unit(&self, unit: &Self::Unit) -> Result<RewardChunk, UnitError> {
        let data = Arc::clone(&self.data);
        let range = unit.clone();
        // scoring is CPU work (the verifier): off the async runtime; with model-backed
        // components the chunk's future is driven there too, its model calls awaited at once
        if data.rewards.has_models() {
            let rt = tokio::runtime::Handle::current();
            return Ok(tokio::task::spawn_blocking(move || {
                rt.block_on(score_chunk_models(&data, range))
            })
            .await?);
        }
        Ok(tokio::task::spawn_blocking(move || score_chunk(&data, range)).await?)
    }

    fn tally(&self, tally: &mut Tally, record: &RewardChunk) -> String {
        for l in &record.lines {
            tally.add(l);
        }
        format!(
            "{} scored, mean reward {:.3}, {} bad lines",
            tally.scored,
            tally.mean_reward(),
            tally.bad
        )
    }
}

/// What a `stepwise reward` run did.
#[derive(Debug, Clone)]
pub struct RewardSummary {
    pub run: RunId,
    /// Input lines (scored and malformed).
    pub lines: usize,
    /// Lines written as errors (`skip_bad`).
    pub bad_lines: usize,
    /// Chunks (of [`CHUNK`] lines) already scored when this call started.
    pub resumed_chunks: usize,
    /// Totals over the whole output.
    pub tally: Tally,
    /// The component keys every scored line carries.
    pub keys: Vec<String>,
}

/// Why `stepwise reward` stopped.
#[derive(Debug, thiserror::Error)]
pub enum RewardError {
    #[error(transparent)]
    Input(#[from] RewardInputError),
    #[error(transparent)]
    Job(#[from] JobError),
    #[error("writing the rewards")]
    Output(#[from] stepwise_data::DataError),
}

/// The output lines of a finished run, in input order, every scored line with the union
/// of the component keys (0 for a component its line's function or group lacks: a group
/// component on an ungrouped line), and those keys.
pub fn output_lines(
    store: &dyn RunStore,
    run: RunId,
) -> Result<(Vec<RewardLine>, Vec<String>), JobError> {
    let mut lines: Vec<RewardLine> = records::<RewardKind>(store, run)?
        .into_iter()
        .flat_map(|(_, c)| c.lines)
        .collect();
    lines.sort_by_key(|l| l.line);
    let keys: BTreeSet<String> = lines
        .iter()
        .filter_map(|l| l.result.as_ref())
        .flat_map(|r| r.components.keys().cloned())
        .collect();
    for r in lines.iter_mut().filter_map(|l| l.result.as_mut()) {
        if r.components.len() < keys.len() {
            for k in &keys {
                r.components.entry(k.clone()).or_insert(0.0);
            }
        }
    }
    Ok((lines, keys.into_iter().collect()))
}

/// Scores every line of `input` with the functions of `rewards` and writes the rewards to
/// `out` (one JSON line per input line, in input order) once every chunk is done. The run
/// lives in `store`: `run.resume` continues a stopped one (Ctrl-C or kill), skipping its
/// finished chunks.
pub async fn reward_file(
    store: &dyn RunStore,
    input: &Path,
    rewards: RewardConfig,
    skip_bad: bool,
    out: &Path,
    run: &RunOptions,
) -> Result<RewardSummary, RewardError> {
    reward_file_with_models(store, input, rewards, None, skip_bad, out, run).await
}

/// [`reward_file`] with the models of model-backed components (`kind = "scorer"`).
pub async fn reward_file_with_models(
    store: &dyn RunStore,
    input: &Path,
    rewards: RewardConfig,
    models: Option<&RewardModels>,
    skip_bad: bool,
    out: &Path,
    run: &RunOptions,
) -> Result<RewardSummary, RewardError> {
    let job = RewardJob::from_file_with_models(input, rewards, skip_bad, models)?;
    let report = crate::run(store, &job, run).await?;
    let (lines, keys) = output_lines(store, report.run)?;
    let mut tally = Tally::default();
    stepwise_data::atomic::write_atomically(out, |f| {
        let io = |e: std::io::Error| stepwise_data::DataError::io(out, e);
        let mut w = std::io::BufWriter::new(f);
        for l in &lines {
            tally.add(l);
            serde_json::to_writer(&mut w, l).map_err(|e| io(e.into()))?;
            w.write_all(b"\n").map_err(io)?;
        }
        w.flush().map_err(io)
    })?;
    Ok(RewardSummary {
        run: report.run,
        lines: job.lines(),
        bad_lines: job.bad_lines(),
        resumed_chunks: report.done_before,
        tally,
        keys,
    })
}

/// `stepwise worker` on the stored `reward` run `run`: its input file (at its stored path,
/// holding the same bytes: size and SHA-256 are part of the config) scored chunk by chunk
/// with the stored reward configuration until no chunk is left. The output file is written
/// afterwards by `stepwise reward … --out … --resume RUN_ID`.
pub async fn join(
    store: &dyn RunStore,
    run: RunId,
    opts: &RunOptions,
) -> Result<RunReport, RewardError> {
    join_with_models(store, run, None, opts).await
}

/// Whether the stored reward run `info` has model-backed components, so a worker joining
/// it must bring the run's models ([`join_with_models`]).
pub fn join_needs_models(info: &RunInfo) -> Result<bool, RewardError> {
    Ok(crate::stored_config::<RewardKind>(info)?
        .rewards
        .needs_models())
}

/// [`join`] with the models of model-backed components (the same models as the run's:
/// the stored identity must match).
pub async fn join_with_models(
    store: &dyn RunStore,
    run: RunId,
    models: Option<&RewardModels>,
    opts: &RunOptions,
) -> Result<RunReport, RewardError> {
    let info = store.run(run).map_err(JobError::from)?;
    let config = crate::stored_config::<RewardKind>(&info)?;
    let job = RewardJob::from_file_with_models(
        Path::new(&config.input),
        config.rewards,
        config.skip_bad,
        models,
    )?;
    Ok(crate::join_run(store, run, &job, opts).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(text: &str, skip_bad: bool) -> Result<RewardJob, RewardInputError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("samples.jsonl");
        std::fs::write(&path, text).unwrap();
        RewardJob::from_file(&path, RewardConfig::default(), skip_bad)
    }

    #[test]
    fn raw_labels_sources_and_aliases_are_read() {
        let j = job(
            "\u{feff}{\"response\": \"x\", \"label\": 72, \"source\": \"gsm8k\"}\n\n{\"prompt\": \"p\", \"response\": \"y\", \"gold\": [\"1\", 2]}\n{\"response\": \"z\", \"gold\": null, \"extra\": true}\n",
            false,
        )
        .unwrap();
        assert_eq!(j.lines(), 3);
        let items: Vec<(usize, &Gold, Option<&str>)> = j
            .data
            .entries
            .iter()
            .map(|e| match e {
                Entry::Item { line, item, .. } => (*line, &item.gold, item.data_source.as_deref()),
                Entry::Bad { .. } => panic!("{e:?}"),
            })
            .collect();
        assert_eq!(
            items,
            [
                (1, &Gold::Text("72".into()), Some("gsm8k")),
                (3, &Gold::AnyOf(vec!["1".into(), "2".into()]), None),
                (4, &Gold::None, None),
            ]
        );
    }

    #[test]
    fn a_bad_line_is_an_error_naming_it_or_with_skip_bad_an_entry() {
        let text = "{\"response\": \"a\", \"gold\": \"1\"}\n{\"gold\": \"1\"}\nnot json\n";
        let e = job(text, false).err().unwrap().to_string();
        assert!(
            e.ends_with(":2: missing field `response` (column 13)"),
            "{e}"
        );
        let j = job(text, true).unwrap();
        assert_eq!((j.lines(), j.bad_lines()), (3, 2));
        let chunk = score_chunk(&j.data, 0..3);
        let errors: Vec<&str> = chunk
            .lines
            .iter()
            .filter_map(|l| l.error.as_deref())
            .collect();
        assert_eq!(errors.len(), 2);
        assert!(errors[0].starts_with("line 2: missing field `response`"));
        assert!(
            errors[1].starts_with("line 3: expected ident"),
            "{}",
            errors[1]
        );
    }

    #[test]
    fn group_lines_must_agree_with_their_group() {
        let e = job(
            "{\"response\": \"a\", \"gold\": \"1\", \"group\": 7}\n{\"response\": \"b\", \"gold\": \"2\", \"group\": 7}\n",
            false,
        )
        .err()
        .unwrap()
        .to_string();
        assert!(
            e.contains(":2: group 7: its 'gold' differs from the group's first line (1)"),
            "{e}"
        );
        let e = job(
            "{\"response\": \"a\", \"gold\": [\"1\"], \"group\": \"g\"}\n",
            false,
        )
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("not a list"), "{e}");
        let e = job("{\"response\": \"a\", \"group\": true}\n", false)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("field 'group' is true"), "{e}");
    }

    #[test]
    fn an_error_line_reads_back_without_a_result() {
        let l = RewardLine::error(4, "bad");
        let text = serde_json::to_string(&l).unwrap();
        assert_eq!(text, r#"{"line":4,"no_gold":false,"error":"line 4: bad"}"#);
        assert_eq!(serde_json::from_str::<RewardLine>(&text).unwrap(), l);
    }
}
