//! `verify --jsonl`: many answer pairs from a JSONL file, as a resumable job.
//!
//! The file is read and checked first (a malformed line is an error naming `file:line`,
//! or is skipped and counted with `skip_bad`). Pairs are verified in chunks of
//! [`CHUNK`] lines, each a unit keyed by its first and last line number, on the rayon
//! pool of `stepwise-verify` (off the async runtime). The run's config holds the file's
//! path, size and SHA-256, so a resume refuses a file that changed.

use crate::{Job, JobError, Resume, RunKind, RunOptions, UnitError, records};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use stepwise_store::RunStore;
use stepwise_verify::{Options, Verdict, explain_batch};

/// Pairs verified per unit.
pub const CHUNK: usize = 2048;

/// Everything that decides a `verify` run's verdicts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifyConfig {
    /// The input file as given.
    pub input: String,
    /// Its size in bytes and SHA-256 (hex) when the run started.
    pub input_bytes: u64,
    pub input_sha256: String,
    pub options: Options,
    /// Malformed lines are skipped (and counted) instead of stopping the job.
    pub skip_bad: bool,
}

/// One verdict line of the output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerdictLine {
    /// 1-based line of the input.
    pub line: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<serde_json::Value>,
    pub verdict: Verdict,
    pub gold: String,
    pub pred: String,
    pub gold_parsed: Option<String>,
    pub pred_parsed: Option<String>,
}

/// A stored unit: the verdicts of one chunk, in input order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifyChunk {
    pub verdicts: Vec<VerdictLine>,
}

/// `verify` runs.
pub struct VerifyKind;

impl RunKind for VerifyKind {
    const KIND: &'static str = "verify";
    const VERSION: u32 = 1;
    type Config = VerifyConfig;
    type Record = VerifyChunk;
}

/// Why the input could not be read.
#[derive(Debug, thiserror::Error)]
pub enum VerifyInputError {
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}: malformed record (expected {{\"gold\": …, \"pred\": …}}): {message}", path.display())]
    BadLine {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

#[derive(Debug, Clone, Deserialize)]
struct PairIn {
    #[serde(deserialize_with = "gold_text")]
    gold: String,
    #[serde(deserialize_with = "pred_text")]
    pred: String,
    #[serde(default)]
    id: Option<serde_json::Value>,
}

/// An answer field: a string, or a number read as its text (`"gold": 42` is "42").
/// A boolean, null, array or object is an error naming what was found: `true` is not the
/// answer "true".
fn answer_text<'de, D: serde::Deserializer<'de>>(d: D, field: &str) -> Result<String, D::Error> {
    use serde::de::Error;
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Ok(s),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        other => Err(D::Error::custom(format!(
            "field '{field}' is {other}, expected a string or number"
        ))),
    }
}

fn gold_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    answer_text(d, "gold")
}

fn pred_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    answer_text(d, "pred")
}

/// The verify job over one file.
pub struct VerifyJob {
    config: VerifyConfig,
    pairs: Arc<Vec<(usize, PairIn)>>,
    /// Malformed lines skipped.
    pub skipped: usize,
}

impl VerifyJob {
    /// Reads and checks `path`.
    pub fn from_file(
        path: &Path,
        options: Options,
        skip_bad: bool,
    ) -> Result<Self, VerifyInputError> {
        let bytes = std::fs::read(path).map_err(|source| VerifyInputError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let text = String::from_utf8_lossy(&bytes);
        // a UTF-8 byte order mark starts the file, not its first record
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        let mut pairs = Vec::new();
        let mut skipped = 0;
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<PairIn>(line) {
                Ok(p) => pairs.push((i + 1, p)),
                Err(e) if skip_bad => {
                    skipped += 1;
                    tracing::warn!(file = %path.display(), line = i + 1, error = %e, "skipped malformed record");
                }
                Err(e) => {
                    return Err(VerifyInputError::BadLine {
                        path: path.to_path_buf(),
                        line: i + 1,
                        message: e.to_string(),
                    });
                }
            }
        }
        let config = VerifyConfig {
            input: path.display().to_string(),
            input_bytes: bytes.len() as u64,
            input_sha256: sha256_hex(&bytes),
            options,
            skip_bad,
        };
        Ok(Self {
            config,
            pairs: Arc::new(pairs),
            skipped,
        })
    }

    /// Pairs read from the file.
    pub fn pairs(&self) -> usize {
        self.pairs.len()
    }
}

/// The SHA-256 of `bytes` in hex: how a job's config identifies its input file.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Verdict counts of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub equal: usize,
    pub not_equal: usize,
    pub undecided: usize,
}

impl Counts {
    fn add(&mut self, v: Verdict) {
        match v {
            Verdict::Equal => self.equal += 1,
            Verdict::NotEqual => self.not_equal += 1,
            Verdict::Undecided => self.undecided += 1,
        }
    }
}

#[async_trait::async_trait]
impl Job for VerifyJob {
    type Kind = VerifyKind;
    type Unit = std::ops::Range<usize>;
    type Tally = Counts;

    fn config(&self) -> &VerifyConfig {
        &self.config
    }

    fn units(&self) -> Vec<(String, Self::Unit)> {
        (0..self.pairs.len())
            .step_by(CHUNK)
            .map(|start| {
                let end = (start + CHUNK).min(self.pairs.len());
                let key = format!("lines {}-{}", self.pairs[start].0, self.pairs[end - 1].0);
                (key, start..end)
            })
            .collect()
    }

    async fn run_unit(&self, unit: &Self::Unit) -> Result<VerifyChunk, UnitError> {
        let pairs = self.pairs.clone();
        let range = unit.clone();
        let opts = self.config.options.clone();
        // CPU work on the verifier's rayon pool, off the async runtime
        let chunk = tokio::task::spawn_blocking(move || {
            let slice = &pairs[range];
            let refs: Vec<(&str, &str)> = slice
                .iter()
                .map(|(_, p)| (p.gold.as_str(), p.pred.as_str()))
                .collect();
            let explained = explain_batch(&refs, &opts);
            VerifyChunk {
                verdicts: slice
                    .iter()
                    .zip(explained)
                    .map(|((line, p), ex)| VerdictLine {
                        line: *line,
                        id: p.id.clone(),
                        verdict: ex.verdict,
                        gold: p.gold.clone(),
                        pred: p.pred.clone(),
                        gold_parsed: ex.gold.parsed,
                        pred_parsed: ex.pred.parsed,
                    })
                    .collect(),
            }
        })
        .await?;
        Ok(chunk)
    }

    fn tally(&self, tally: &mut Counts, record: &VerifyChunk) -> String {
        for v in &record.verdicts {
            tally.add(v.verdict);
        }
        format!(
            "{} equal, {} not equal, {} undecided",
            tally.equal, tally.not_equal, tally.undecided
        )
    }
}

/// Where the verdicts go.
#[derive(Debug, Clone)]
pub enum Output {
    /// Streamed to stdout as each chunk finishes (an in-memory run: not resumable).
    Stdout,
    /// Written to this file (one JSON line per pair, in input order) when the run is
    /// complete, through a temporary file beside it; the run lives in the store, so an
    /// interrupted run continues where it stopped.
    File(PathBuf),
}

/// What a `verify --jsonl` run did.
#[derive(Debug, Clone)]
pub struct VerifySummary {
    pub run: crate::RunId,
    pub pairs: usize,
    pub skipped_lines: usize,
    /// Chunks (of [`CHUNK`] pairs) that were already verified when this call started.
    pub resumed_chunks: usize,
    pub counts: Counts,
}

/// Verifies every pair of `input` and writes the verdicts to `output`. With
/// [`Output::File`] the run is kept in `store` (`resume` as usual); with
/// [`Output::Stdout`] an in-memory store is used and `store` is ignored.
pub async fn verify_file(
    store: &dyn RunStore,
    input: &Path,
    options: Options,
    skip_bad: bool,
    output: &Output,
    run: &RunOptions,
) -> Result<VerifySummary, VerifyError> {
    let job = VerifyJob::from_file(input, options, skip_bad)?;
    let (report, counts) = match output {
        Output::Stdout => {
            let memory = stepwise_store::SqliteStore::in_memory()?;
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let mut counts = Counts::default();
            let opts = RunOptions {
                resume: Resume::New,
                concurrency: 1,
                ..run.clone()
            };
            // a failed write to stdout (a full disk) is that, not a failed unit of a run
            // in memory that could be resumed
            let mut write_error = None;
            let result = crate::run_with(&memory, &job, &opts, |_, chunk: &VerifyChunk| {
                let written = (|| {
                    for v in &chunk.verdicts {
                        counts.add(v.verdict);
                        serde_json::to_writer(&mut out, v)?;
                        out.write_all(b"\n")?;
                    }
                    out.flush()
                })();
                written.map_err(|e| {
                    let copy = std::io::Error::new(e.kind(), e.to_string());
                    write_error = Some(e);
                    Box::new(copy) as crate::UnitError
                })
            })
            .await;
            match (result, write_error) {
                (Err(_), Some(source)) => {
                    return Err(VerifyError::Output {
                        path: PathBuf::from("stdout"),
                        source,
                    });
                }
                (result, _) => (result?, counts),
            }
        }
        Output::File(path) => {
            let report = crate::run(store, &job, run).await?;
            let mut lines: Vec<VerdictLine> = records::<VerifyKind>(store, report.run)?
                .into_iter()
                .flat_map(|(_, c)| c.verdicts)
                .collect();
            lines.sort_by_key(|v| v.line);
            let mut counts = Counts::default();
            let tmp = path.with_extension("partial");
            let io = |source| VerifyError::Output {
                path: path.clone(),
                source,
            };
            {
                let f = std::fs::File::create(&tmp).map_err(io)?;
                let mut w = std::io::BufWriter::new(f);
                for v in &lines {
                    counts.add(v.verdict);
                    serde_json::to_writer(&mut w, v).map_err(|e| io(e.into()))?;
                    w.write_all(b"\n").map_err(io)?;
                }
                w.flush().map_err(io)?;
            }
            std::fs::rename(&tmp, path).map_err(io)?;
            (report, counts)
        }
    };
    Ok(VerifySummary {
        run: report.run,
        pairs: job.pairs(),
        skipped_lines: job.skipped,
        resumed_chunks: report.done_before,
        counts,
    })
}

/// `stepwise worker` on the stored `verify` run `run`: the run's input file (at its
/// stored path, which must hold the same bytes: its size and SHA-256 are part of the
/// config) verified chunk by chunk with the stored options until no chunk is left. The
/// verdict file is written afterwards by `stepwise verify --jsonl … --out … --resume RUN_ID`.
pub async fn join(
    store: &dyn RunStore,
    run: crate::RunId,
    opts: &RunOptions,
) -> Result<crate::RunReport, VerifyError> {
    let info = store.run(run).map_err(JobError::from)?;
    let config = crate::stored_config::<VerifyKind>(&info)?;
    let job = VerifyJob::from_file(Path::new(&config.input), config.options, config.skip_bad)?;
    Ok(crate::join_run(store, run, &job, opts).await?)
}

/// Why `verify --jsonl` stopped.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Input(#[from] VerifyInputError),
    #[error(transparent)]
    Job(#[from] JobError),
    #[error(transparent)]
    Store(#[from] stepwise_store::StoreError),
    #[error("writing {}", path.display())]
    Output {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(text: &[u8]) -> Result<VerifyJob, VerifyInputError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pairs.jsonl");
        std::fs::write(&path, text).unwrap();
        VerifyJob::from_file(&path, Options::default(), false)
    }

    #[test]
    fn a_byte_order_mark_does_not_spoil_the_first_record() {
        let j = job(
            b"\xEF\xBB\xBF{\"gold\": \"1\", \"pred\": \"1\"}\n{\"gold\": \"2\", \"pred\": \"3\"}\n",
        )
        .unwrap();
        assert_eq!(j.pairs(), 2);
        assert_eq!(j.pairs[0].1.gold, "1");
    }

    #[test]
    fn numbers_are_answers_and_booleans_are_errors_naming_the_field() {
        let j = job(b"{\"gold\": 42, \"pred\": 0.5}\n").unwrap();
        assert_eq!(
            (j.pairs[0].1.gold.as_str(), j.pairs[0].1.pred.as_str()),
            ("42", "0.5")
        );
        let e = job(b"{\"gold\": \"1\", \"pred\": \"1\"}\n{\"gold\": true, \"pred\": \"true\"}\n")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains(":2: "), "{e}");
        assert!(
            e.contains("field 'gold' is true, expected a string or number"),
            "{e}"
        );
    }
}
