//! Named datasets and the loader.
//!
//! A dataset spec is one of:
//!
//! | spec | what | file under the data folder |
//! |---|---|---|
//! | `gsm8k:test`, `gsm8k:train` | GSM8K; gold = the `#### N` of `answer` | `gsm8k/{test,train}.jsonl` |
//! | `math500` | MATH-500; gold = `answer`, reference = `solution` | `math500/test.jsonl` |
//! | `processbench:{gsm8k,math,olympiadbench,omnimath}` | ProcessBench; steps and label in metadata ([`crate::ProcessBenchRecord`]) | `processbench/<subset>.jsonl` |
//! | `arith:ops=2,n=100,seed=7,…` | generated ([`crate::arith`]) | none |
//! | a path ending in `.jsonl` or `.parquet` | any file; fields detected by [`FieldMap::auto`] | the path |
//!
//! The data folder is, in order: the folder given explicitly (`--data-dir`), the
//! environment variable `STEPWISE_DATA`, or the first `shared/data` found in the current
//! directory or one of its ancestors (so `../shared/data` beside the repository is found
//! from anywhere inside it).

use crate::arith::{self, ArithConfig};
use crate::error::{DataError, Result};
use crate::jsonl::{JsonRecord, JsonlReader};
use crate::mapping::{Field, FieldMap, GoldRule};
use crate::parquet_io::{Format, read_parquet_records};
use crate::processbench::ProcessBenchRecord;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use stepwise_core::{ExtractRule, Problem};

/// Environment variable naming the data folder.
pub const DATA_ENV: &str = "STEPWISE_DATA";

/// The four ProcessBench subsets.
pub const PROCESSBENCH_SUBSETS: [&str; 4] = ["gsm8k", "math", "olympiadbench", "omnimath"];

/// A dataset, by name or by path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dataset {
    /// `gsm8k:test` or `gsm8k:train`.
    Gsm8k { split: String },
    /// `math500`.
    Math500,
    /// `processbench:<subset>`.
    ProcessBench { subset: String },
    /// `arith:<options>`.
    Arith(ArithConfig),
    /// A JSONL or Parquet file.
    File(PathBuf),
}

impl Dataset {
    /// The names of all built-in datasets that read files (for help texts and tests).
    pub fn builtin_names() -> Vec<String> {
        let mut v = vec![
            "gsm8k:test".to_string(),
            "gsm8k:train".into(),
            "math500".into(),
        ];
        v.extend(
            PROCESSBENCH_SUBSETS
                .iter()
                .map(|s| format!("processbench:{s}")),
        );
        v
    }

    /// The file of a built-in dataset, relative to the data folder.
    pub fn relative_file(&self) -> Option<PathBuf> {
        match self {
            Self::Gsm8k { split } => Some(Path::new("gsm8k").join(format!("{split}.jsonl"))),
            Self::Math500 => Some(Path::new("math500").join("test.jsonl")),
            Self::ProcessBench { subset } => {
                Some(Path::new("processbench").join(format!("{subset}.jsonl")))
            }
            Self::Arith(_) | Self::File(_) => None,
        }
    }

    /// The field mapping used for this dataset's records.
    pub fn field_map(&self) -> FieldMap {
        match self {
            Self::Gsm8k { split } => FieldMap {
                id: Field::Absent,
                question: Field::named("question"),
                gold: Field::named("answer"),
                gold_rule: GoldRule::Extract(vec![ExtractRule::Gsm8k]),
                reference: Field::named("answer"),
                id_prefix: format!("gsm8k:{split}:"),
                require_gold: true,
            },
            Self::Math500 => FieldMap {
                id: Field::named("unique_id"),
                question: Field::named("problem"),
                gold: Field::named("answer"),
                gold_rule: GoldRule::Verbatim,
                reference: Field::named("solution"),
                id_prefix: "math500:".into(),
                require_gold: true,
            },
            Self::ProcessBench { subset } => FieldMap {
                id: Field::named("id"),
                question: Field::named("problem"),
                gold: Field::Absent,
                gold_rule: GoldRule::Verbatim,
                reference: Field::Absent,
                id_prefix: format!("processbench:{subset}:"),
                require_gold: false,
            },
            Self::Arith(_) => FieldMap::auto("arith:"),
            Self::File(path) => {
                let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("file");
                FieldMap::auto(format!("{stem}:"))
            }
        }
    }
}

impl FromStr for Dataset {
    type Err = DataError;
    fn from_str(spec: &str) -> Result<Self> {
        let bad = |message: String| DataError::BadSpec {
            spec: spec.to_string(),
            message,
        };
        let s = spec.trim();
        if let Some(opts) = s
            .strip_prefix("arith:")
            .or_else(|| (s == "arith").then_some(""))
        {
            return ArithConfig::parse(opts).map(Self::Arith).map_err(bad);
        }
        match s {
            "gsm8k:test" | "gsm8k:train" => {
                return Ok(Self::Gsm8k {
                    split: s["gsm8k:".len()..].to_string(),
                });
            }
            "gsm8k" => return Err(bad("name a split: gsm8k:test or gsm8k:train".into())),
            "math500" | "math500:test" => return Ok(Self::Math500),
            _ => {}
        }
        if let Some(subset) = s.strip_prefix("processbench:") {
            return if PROCESSBENCH_SUBSETS.contains(&subset) {
                Ok(Self::ProcessBench {
                    subset: subset.to_string(),
                })
            } else {
                Err(bad(format!(
                    "unknown ProcessBench subset '{subset}' (expected {})",
                    PROCESSBENCH_SUBSETS.join(", ")
                )))
            };
        }
        let path = PathBuf::from(s);
        if Format::from_path(&path).is_some() {
            return Ok(Self::File(path));
        }
        Err(bad(format!(
            "expected one of {}, arith:ops=…, or a .jsonl/.parquet file",
            Dataset::builtin_names().join(", ")
        )))
    }
}

impl fmt::Display for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Gsm8k { split } => write!(f, "gsm8k:{split}"),
            Self::Math500 => f.write_str("math500"),
            Self::ProcessBench { subset } => write!(f, "processbench:{subset}"),
            Self::Arith(c) => write!(f, "arith:{}", c.to_spec()),
            Self::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// Finds the data folder: `explicit`, else `$STEPWISE_DATA`, else the first `shared/data`
/// in the current directory or one of its ancestors. `Err` lists the places looked at.
pub fn resolve_data_dir(explicit: Option<&Path>) -> std::result::Result<PathBuf, Vec<PathBuf>> {
    if let Some(p) = explicit {
        return if p.is_dir() {
            Ok(p.to_path_buf())
        } else {
            Err(vec![p.to_path_buf()])
        };
    }
    if let Some(p) = std::env::var_os(DATA_ENV).filter(|v| !v.is_empty()) {
        let p = PathBuf::from(p);
        return if p.is_dir() { Ok(p) } else { Err(vec![p]) };
    }
    let mut looked = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        for dir in cwd.ancestors() {
            let cand = dir.join("shared").join("data");
            if cand.is_dir() {
                return Ok(cand);
            }
            looked.push(cand);
        }
    }
    Err(looked)
}

/// The data folder, as [`resolve_data_dir`] finds it, or an error that lists where it
/// looked. The one way every command and test finds the built-in datasets.
pub fn data_dir(explicit: Option<&Path>) -> Result<PathBuf> {
    resolve_data_dir(explicit).map_err(|looked| DataError::NoDataDir {
        dataset: "(built-in datasets)".into(),
        looked: looked
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// Parses a dataset spec and loads at most `limit` problems; an empty result is an error
/// naming the spec.
pub fn load_spec(
    spec: &str,
    limit: Option<usize>,
    data_dir: Option<&Path>,
) -> Result<Vec<Problem>> {
    let dataset: Dataset = spec.parse()?;
    let loaded = load(
        &dataset,
        &LoadOptions {
            data_dir: data_dir.map(Path::to_path_buf),
            limit,
            ..LoadOptions::default()
        },
    )?;
    if loaded.problems.is_empty() {
        return Err(DataError::BadSpec {
            spec: spec.to_string(),
            message: "no problems".into(),
        });
    }
    Ok(loaded.problems)
}

/// How to load.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// The data folder; `None` resolves it with [`resolve_data_dir`].
    pub data_dir: Option<PathBuf>,
    /// Continue past bad records, counting them in [`Loaded::skipped`].
    pub skip_bad: bool,
    /// Stop after this many problems.
    pub limit: Option<usize>,
    /// Override the dataset's field mapping.
    pub field_map: Option<FieldMap>,
}

/// Problems and what was skipped on the way.
#[derive(Debug, Default)]
pub struct Loaded {
    pub problems: Vec<Problem>,
    /// Bad records passed over because of [`LoadOptions::skip_bad`] (each names file:line).
    pub skipped: Vec<DataError>,
    /// The file read, if any.
    pub source: Option<PathBuf>,
}

/// Loads a dataset.
pub fn load(dataset: &Dataset, opts: &LoadOptions) -> Result<Loaded> {
    let map = opts
        .field_map
        .clone()
        .unwrap_or_else(|| dataset.field_map());
    let path = match dataset {
        Dataset::Arith(cfg) => {
            let mut cfg = cfg.clone();
            if let Some(limit) = opts.limit {
                cfg.n = cfg.n.min(limit);
            }
            return Ok(Loaded {
                problems: arith::generate(&cfg)?,
                ..Loaded::default()
            });
        }
        Dataset::File(p) => p.clone(),
        builtin => {
            let dir = resolve_data_dir(opts.data_dir.as_deref()).map_err(|looked| {
                DataError::NoDataDir {
                    dataset: builtin.to_string(),
                    looked: looked
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                }
            })?;
            // Only the built-ins take this branch, and each has a file.
            dir.join(builtin.relative_file().unwrap_or_default())
        }
    };
    let subset = match dataset {
        Dataset::ProcessBench { subset } => Some(subset.as_str()),
        _ => None,
    };
    let records: Box<dyn Iterator<Item = Result<JsonRecord>>> = match Format::from_path(&path) {
        Some(Format::Parquet) => Box::new(read_parquet_records(&path)?.into_iter().map(Ok)),
        _ => Box::new(JsonlReader::open(&path)?),
    };
    let mut loaded = Loaded {
        source: Some(path.clone()),
        ..Loaded::default()
    };
    for (this, item) in records.enumerate() {
        if opts.limit.is_some_and(|l| loaded.problems.len() >= l) {
            break;
        }
        let converted = item.and_then(|rec| {
            let line = rec.line;
            let mut p = map
                .to_problem(rec.value, this)
                .map_err(|m| DataError::bad_record(&path, line, m))?;
            if let Some(subset) = subset {
                ProcessBenchRecord::from_problem(&p)
                    .map_err(|e| DataError::bad_record(&path, line, e.to_string()))?;
                p.metadata.insert("subset".into(), subset.into());
            }
            Ok(p)
        });
        match converted {
            Ok(p) => loaded.problems.push(p),
            Err(e @ DataError::BadRecord { .. }) if opts.skip_bad => {
                tracing::warn!("skipping bad record: {e}");
                loaded.skipped.push(e);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(loaded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_spec_form() {
        assert_eq!(
            "gsm8k:test".parse::<Dataset>().unwrap(),
            Dataset::Gsm8k {
                split: "test".into()
            }
        );
        assert_eq!("math500".parse::<Dataset>().unwrap(), Dataset::Math500);
        assert_eq!(
            "processbench:omnimath".parse::<Dataset>().unwrap(),
            Dataset::ProcessBench {
                subset: "omnimath".into()
            }
        );
        match "arith:ops=2,n=3,seed=7".parse::<Dataset>().unwrap() {
            Dataset::Arith(c) => assert_eq!((c.ops, c.n, c.seed), (2, 3, 7)),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            "x/y.parquet".parse::<Dataset>().unwrap(),
            Dataset::File("x/y.parquet".into())
        );
        for bad in ["gsm8k", "processbench:aime", "nonsense", "arith:ops=x"] {
            assert!(bad.parse::<Dataset>().is_err(), "{bad}");
        }
        for name in Dataset::builtin_names() {
            assert_eq!(name.parse::<Dataset>().unwrap().to_string(), name);
        }
    }

    #[test]
    fn explicit_data_dir_must_exist() {
        let missing = Path::new("/definitely/not/here");
        assert_eq!(
            resolve_data_dir(Some(missing)),
            Err(vec![missing.to_path_buf()])
        );
        let e = load(
            &Dataset::Math500,
            &LoadOptions {
                data_dir: Some(missing.into()),
                ..LoadOptions::default()
            },
        )
        .unwrap_err();
        assert!(matches!(e, DataError::NoDataDir { .. }), "{e}");
    }

    #[test]
    fn arith_respects_limit() {
        let ds: Dataset = "arith:n=50,seed=1".parse().unwrap();
        let l = load(
            &ds,
            &LoadOptions {
                limit: Some(4),
                ..LoadOptions::default()
            },
        )
        .unwrap();
        assert_eq!(l.problems.len(), 4);
    }
}
