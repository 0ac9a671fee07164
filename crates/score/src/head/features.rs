//! Feature extraction: the hidden state at the end of every labelled step of a record,
//! appended to a JSONL cache so an interrupted extraction resumes where it stopped.

use super::{HeadError, head_input, io_err};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::Path;
use stepwise_model::{EngineError, Generator};

/// Labels under ProcessBench semantics: steps before the first bad one are good, the
/// first bad step is bad, later steps are unlabelled (dropped). `good` may be shorter
/// than the steps (steps beyond it are unlabelled).
pub fn labels_until_first_error(good: &[bool]) -> Vec<bool> {
    match good.iter().position(|g| !g) {
        Some(i) => good[..=i].to_vec(),
        None => good.to_vec(),
    }
}

/// Per-step labels of a ProcessBench record: `first_error` −1 means all steps are good.
pub fn processbench_labels(n_steps: usize, first_error: i64) -> Vec<bool> {
    (0..n_steps)
        .map(|i| first_error < 0 || (i as i64) < first_error)
        .collect()
}

/// A labelled record to extract features from.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelledRecord {
    /// Unique key in the feature cache.
    pub id: String,
    pub question: String,
    pub steps: Vec<String>,
    /// One label per step (may be shorter); cut with [`labels_until_first_error`].
    pub good: Vec<bool>,
}

/// Hidden states and labels of a record's labelled steps (one line of the cache).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureRecord {
    pub id: String,
    pub model: String,
    pub separator: String,
    pub labels: Vec<bool>,
    pub features: Vec<Vec<f32>>,
}

/// Where extraction stands, for progress bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExtractProgress {
    /// Records handled so far (extracted, cached or skipped) of `total`.
    pub done: usize,
    pub total: usize,
    /// Records found in the cache.
    pub cached: usize,
    /// Records skipped (no labelled step, or too long for the context).
    pub skipped: usize,
    /// Tokens read by the model so far in this run.
    pub tokens: u64,
}

/// What extraction produced.
#[derive(Debug, Clone, Default)]
pub struct Extracted {
    /// One entry per usable record, in input order.
    pub records: Vec<FeatureRecord>,
    pub progress: ExtractProgress,
}

/// Reads a feature cache (JSONL, one [`FeatureRecord`] per line). A torn last line (no
/// trailing newline, unparsable) is dropped and the file truncated to the last good line;
/// a bad line elsewhere is an error naming `file:line`.
pub fn read_feature_cache(path: &Path) -> Result<Vec<FeatureRecord>, HeadError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(path)(e)),
    };
    let mut out = Vec::new();
    let mut offset = 0usize;
    let mut good_end = 0usize;
    for (n, line) in bytes.split_inclusive(|&b| b == b'\n').enumerate() {
        let complete = line.ends_with(b"\n");
        offset += line.len();
        let text = String::from_utf8_lossy(line);
        if text.trim().is_empty() {
            good_end = offset;
            continue;
        }
        match (complete, serde_json::from_str::<FeatureRecord>(text.trim())) {
            (true, Ok(r)) => {
                out.push(r);
                good_end = offset;
            }
            (false, _) => {
                tracing::warn!(
                    "{}:{}: torn last line dropped (an interrupted write)",
                    path.display(),
                    n + 1
                );
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(io_err(path))?;
                f.set_len(good_end as u64).map_err(io_err(path))?;
                break;
            }
            (true, Err(e)) => {
                return Err(HeadError::Parse {
                    place: format!("{}:{}", path.display(), n + 1),
                    reason: e.to_string(),
                });
            }
        }
    }
    Ok(out)
}

/// Extracts features of `records` with `generator`, resumable through the cache file
/// `cache` (records whose id is there are not re-embedded). Records without a labelled
/// step, and records too long for the model's context, are skipped (logged). `progress`
/// is called after every record.
pub async fn extract_features(
    generator: &dyn Generator,
    records: &[LabelledRecord],
    separator: &str,
    cache: &Path,
    mut progress: impl FnMut(&ExtractProgress),
) -> Result<Extracted, HeadError> {
    let model = generator.name();
    let mut cached = HashMap::new();
    for r in read_feature_cache(cache)? {
        if r.model != model || r.separator != separator {
            return Err(HeadError::Invalid {
                path: cache.display().to_string(),
                reason: format!(
                    "cache holds features of model '{}' with separator {:?}; this run uses '{}' with {:?} (use another cache)",
                    r.model, r.separator, model, separator
                ),
            });
        }
        cached.insert(r.id.clone(), r);
    }
    if let Some(dir) = cache.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(cache)
        .map_err(io_err(cache))?;
    let mut p = ExtractProgress {
        total: records.len(),
        ..Default::default()
    };
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for rec in records {
        if !seen.insert(rec.id.as_str()) {
            return Err(HeadError::Training(format!(
                "record id '{}' appears twice",
                rec.id
            )));
        }
        if let Some(r) = cached.remove(&rec.id) {
            p.cached += 1;
            out.push(r);
        } else {
            let labels = labels_until_first_error(&rec.good);
            let n = labels.len().min(rec.steps.len());
            if n == 0 {
                tracing::debug!("record {}: no labelled step, skipped", rec.id);
                p.skipped += 1;
            } else {
                let (prompt, pieces) = head_input(&rec.question, &rec.steps[..n], separator);
                match generator.embed_pieces(&prompt, &pieces).await {
                    Ok(e) => {
                        p.tokens += e.prompt_tokens;
                        let r = FeatureRecord {
                            id: rec.id.clone(),
                            model: model.clone(),
                            separator: separator.to_string(),
                            labels: labels[..n].to_vec(),
                            features: e.vectors,
                        };
                        let line = serde_json::to_string(&r).map_err(|e| HeadError::Parse {
                            place: cache.display().to_string(),
                            reason: e.to_string(),
                        })?;
                        file.write_all(format!("{line}\n").as_bytes())
                            .and_then(|_| file.flush())
                            .map_err(io_err(cache))?;
                        out.push(r);
                    }
                    Err(EngineError::ContextFull { needed, available }) => {
                        tracing::warn!(
                            "record {}: {needed} tokens do not fit the context ({available}), skipped",
                            rec.id
                        );
                        p.skipped += 1;
                    }
                    Err(source) => {
                        return Err(HeadError::Engine {
                            id: rec.id.clone(),
                            source,
                        });
                    }
                }
            }
        }
        p.done += 1;
        progress(&p);
    }
    Ok(Extracted {
        records: out,
        progress: p,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::head::test_util::{scripted, tmp};
    use async_trait::async_trait;
    use std::sync::Arc;
    use stepwise_model::Prompt;
    use stepwise_model::scripted::ScriptedGenerator;

    #[test]
    fn labels_stop_after_the_first_error() {
        assert_eq!(
            labels_until_first_error(&[true, true, false, true, false]),
            vec![true, true, false]
        );
        assert_eq!(labels_until_first_error(&[true, true]), vec![true, true]);
        assert_eq!(processbench_labels(3, -1), vec![true, true, true]);
        assert_eq!(processbench_labels(4, 1), vec![true, false, false, false]);
        assert_eq!(
            labels_until_first_error(&processbench_labels(4, 1)),
            vec![true, false]
        );
    }

    #[tokio::test]
    async fn extraction_is_resumable_and_tolerates_a_torn_line() {
        let d = tmp("extract");
        let cache = d.join("features.jsonl");
        let g = scripted();
        let recs = vec![
            LabelledRecord {
                id: "a".into(),
                question: "q one".into(),
                steps: vec!["x y".into(), "wrong z".into(), "later".into()],
                good: vec![true, false, true],
            },
            LabelledRecord {
                id: "b".into(),
                question: "q two".into(),
                steps: vec!["fine".into()],
                good: vec![true],
            },
            LabelledRecord {
                id: "c".into(),
                question: "q three".into(),
                steps: vec!["x".into()],
                good: vec![],
            },
        ];
        let mut seen = Vec::new();
        let first = extract_features(g.as_ref(), &recs, "\n\n", &cache, |p| seen.push(*p))
            .await
            .unwrap();
        assert_eq!(seen.len(), 3);
        assert_eq!(first.progress.skipped, 1);
        assert_eq!(first.progress.cached, 0);
        assert_eq!(first.records.len(), 2);
        let a = &first.records[0];
        assert_eq!(a.labels, vec![true, false]);
        assert_eq!(a.features, vec![vec![2.0, 0.0], vec![4.0, 1.0]]);

        // A torn write at the end is dropped; cached ids are not embedded again.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&cache)
            .unwrap();
        f.write_all(b"{\"id\":\"zz\",\"mo").unwrap();
        drop(f);
        let second = extract_features(g.as_ref(), &recs, "\n\n", &cache, |_| {})
            .await
            .unwrap();
        assert_eq!(second.progress.cached, 2);
        assert_eq!(second.progress.tokens, 0);
        assert_eq!(second.records, first.records);
        assert_eq!(read_feature_cache(&cache).unwrap().len(), 2);

        // Another model's cache is refused; a corrupt middle line names its place.
        let other =
            Arc::new(ScriptedGenerator::new(|_, _| String::new()).with_embedder(|_, _| vec![0.0]));
        struct Renamed(Arc<ScriptedGenerator>);
        #[async_trait]
        impl Generator for Renamed {
            fn name(&self) -> String {
                "other".into()
            }
            async fn generate(
                &self,
                r: &stepwise_model::GenerateRequest,
            ) -> Result<Vec<stepwise_model::Completion>, EngineError> {
                self.0.generate(r).await
            }
            async fn next_token_logprobs(
                &self,
                p: &Prompt,
                a: &str,
                c: &[String],
            ) -> Result<stepwise_model::NextTokenLogprobs, EngineError> {
                self.0.next_token_logprobs(p, a, c).await
            }
        }
        let e = extract_features(&Renamed(other), &recs, "\n\n", &cache, |_| {})
            .await
            .unwrap_err();
        assert!(e.to_string().contains("model 'scripted'"), "{e}");
        let text = std::fs::read_to_string(&cache).unwrap();
        std::fs::write(&cache, format!("not json\n{text}")).unwrap();
        let e = read_feature_cache(&cache).unwrap_err();
        assert!(e.to_string().contains("features.jsonl:1"), "{e}");
    }
}
