//! Model names: what a client asks for in `model`.
//!
//! A served model is `STRATEGY[/SCORER]`, e.g. `bon/arith`, `weighted/arith`,
//! `beam/prm:http://…`, `mcts/rollout`, `majority`; a trailing `@N` sets the samples or
//! candidates per step (`bon/arith@8`), or the critique rounds of `critique-refine`
//! (`critique-refine@3`, no scorer: its critic is the judge backend, else the policy).
//! The pass-through model (the upstream's or the
//! embedded model's own name) answers with one plain completion.

use std::str::FromStr;
use stepwise_jobs::kinds::scale::ScaleStrategy;

/// One strategy with its scorer, as listed by `/v1/models`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedModel {
    pub strategy: ScaleStrategy,
    pub scorer: Option<String>,
}

impl ServedModel {
    /// The name clients use.
    pub fn name(&self) -> String {
        match &self.scorer {
            Some(s) => format!("{}/{s}", self.strategy.name()),
            None => self.strategy.name().to_string(),
        }
    }
}

/// Why a model name is not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelNameError {
    #[error(
        "model {name:?}: unknown strategy {strategy:?} (majority, weighted, bon, beam, vbeam, dvts, mcts, critique-refine)"
    )]
    Strategy { name: String, strategy: String },
    #[error("model {name:?}: strategy {strategy} needs a scorer (e.g. {strategy}/arith)")]
    NeedsScorer { name: String, strategy: String },
    #[error("model {name:?}: n must be a whole number of at least 1 after '@'")]
    N { name: String },
}

/// A parsed model name: a served model and an optional `@N`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelName {
    pub model: ServedModel,
    pub n: Option<usize>,
}

impl FromStr for ModelName {
    type Err = ModelNameError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let (base, n) = match name.rsplit_once('@') {
            Some((b, n)) if !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()) => {
                let n: usize = n.parse().map_err(|_| ModelNameError::N {
                    name: name.to_string(),
                })?;
                if n == 0 {
                    return Err(ModelNameError::N {
                        name: name.to_string(),
                    });
                }
                (b, Some(n))
            }
            _ => (name, None),
        };
        let (strategy, scorer) = match base.split_once('/') {
            Some((s, sc)) => (s, Some(sc.to_string()).filter(|s| !s.is_empty())),
            None => (base, None),
        };
        let strategy: ScaleStrategy =
            strategy
                .parse()
                .map_err(|_: String| ModelNameError::Strategy {
                    name: name.to_string(),
                    strategy: strategy.to_string(),
                })?;
        if strategy.needs_scorer() && scorer.is_none() {
            return Err(ModelNameError::NeedsScorer {
                name: name.to_string(),
                strategy: strategy.name().to_string(),
            });
        }
        Ok(Self {
            model: ServedModel { strategy, scorer },
            n,
        })
    }
}

/// The default models for a scorer: every strategy, the scored ones with `scorer`.
pub fn default_models(scorer: &str) -> Vec<ServedModel> {
    ScaleStrategy::ALL
        .iter()
        .map(|&strategy| ServedModel {
            strategy,
            scorer: strategy.needs_scorer().then(|| scorer.to_string()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names() {
        let m: ModelName = "bon/arith@8".parse().unwrap();
        assert_eq!(m.model.strategy, ScaleStrategy::Bon);
        assert_eq!(m.model.scorer.as_deref(), Some("arith"));
        assert_eq!(m.n, Some(8));
        assert_eq!(m.model.name(), "bon/arith");
        let m: ModelName = "beam/prm:http://h:1/x".parse().unwrap();
        assert_eq!(m.model.scorer.as_deref(), Some("prm:http://h:1/x"));
        assert_eq!(m.n, None);
        let m: ModelName = "majority".parse().unwrap();
        assert_eq!((m.model.scorer, m.n), (None, None));
        assert!(matches!(
            "bon".parse::<ModelName>(),
            Err(ModelNameError::NeedsScorer { .. })
        ));
        assert!(matches!(
            "gpt-4o".parse::<ModelName>(),
            Err(ModelNameError::Strategy { .. })
        ));
        assert!(matches!(
            "bon/arith@0".parse::<ModelName>(),
            Err(ModelNameError::N { .. })
        ));
        let names: Vec<String> = default_models("arith").iter().map(|m| m.name()).collect();
        assert!(names.contains(&"majority".to_string()), "{names:?}");
        assert!(names.contains(&"mcts/arith".to_string()), "{names:?}");
        assert!(names.contains(&"critique-refine".to_string()), "{names:?}");
        let m: ModelName = "critique-refine@2".parse().unwrap();
        assert_eq!(m.model.strategy, ScaleStrategy::CritiqueRefine);
        assert_eq!((m.model.scorer, m.n), (None, Some(2)));
        for n in &names {
            assert_eq!(&n.parse::<ModelName>().unwrap().model.name(), n);
        }
    }
}
