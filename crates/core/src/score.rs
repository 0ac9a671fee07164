use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A judgment of one step: the estimated probability that the step is correct.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepScore {
    /// 0-based index of the step in its rationale.
    pub step: usize,
    /// Probability in `[0, 1]` that the step (and everything before it) is correct.
    pub score: f64,
    /// Which scorer produced this (e.g. `arith`, `rollout`, `judge`).
    pub scorer: String,
    /// A short human-readable reason, when the scorer has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl StepScore {
    /// A score without detail. The score is clamped into `[0, 1]`; NaN becomes 0.
    pub fn new(step: usize, score: f64, scorer: impl Into<String>) -> Self {
        let score = if score.is_nan() {
            0.0
        } else {
            score.clamp(0.0, 1.0)
        };
        Self {
            step,
            score,
            scorer: scorer.into(),
            detail: None,
        }
    }

    /// Adds a reason.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

/// How step scores combine into one score for a whole rationale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Aggregation {
    /// The last step's score (common for PRMs trained on prefixes).
    #[default]
    Last,
    /// The weakest step.
    Min,
    /// The product of all step scores.
    Prod,
    /// The arithmetic mean.
    Mean,
}

impl Aggregation {
    /// All aggregations, in a fixed order.
    pub const ALL: [Aggregation; 4] = [Self::Last, Self::Min, Self::Prod, Self::Mean];

    /// Combines scores. An empty slice aggregates to `None`.
    pub fn apply(self, scores: &[f64]) -> Option<f64> {
        if scores.is_empty() {
            return None;
        }
        Some(match self {
            Self::Last => scores[scores.len() - 1],
            Self::Min => scores.iter().copied().fold(f64::INFINITY, f64::min),
            Self::Prod => scores.iter().product(),
            Self::Mean => scores.iter().sum::<f64>() / scores.len() as f64,
        })
    }

    /// Combines [`StepScore`]s by their `score` field.
    pub fn apply_scores(self, scores: &[StepScore]) -> Option<f64> {
        let v: Vec<f64> = scores.iter().map(|s| s.score).collect();
        self.apply(&v)
    }

    /// Lower-case name, as used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Last => "last",
            Self::Min => "min",
            Self::Prod => "prod",
            Self::Mean => "mean",
        }
    }
}

impl fmt::Display for Aggregation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Aggregation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "last" => Ok(Self::Last),
            "min" => Ok(Self::Min),
            "prod" | "product" => Ok(Self::Prod),
            "mean" | "avg" => Ok(Self::Mean),
            other => Err(format!(
                "unknown aggregation '{other}' (expected last, min, prod or mean)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregations() {
        let s = [0.9, 0.5, 0.8];
        assert_eq!(Aggregation::Last.apply(&s), Some(0.8));
        assert_eq!(Aggregation::Min.apply(&s), Some(0.5));
        assert!((Aggregation::Prod.apply(&s).unwrap() - 0.36).abs() < 1e-12);
        assert!((Aggregation::Mean.apply(&s).unwrap() - 2.2 / 3.0).abs() < 1e-12);
        assert_eq!(Aggregation::Mean.apply(&[]), None);
    }

    #[test]
    fn parse_names() {
        for a in Aggregation::ALL {
            assert_eq!(a.name().parse::<Aggregation>().unwrap(), a);
        }
        assert!("median".parse::<Aggregation>().is_err());
    }

    #[test]
    fn score_is_clamped() {
        assert_eq!(StepScore::new(0, 1.5, "x").score, 1.0);
        assert_eq!(StepScore::new(0, f64::NAN, "x").score, 0.0);
    }
}
