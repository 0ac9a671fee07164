//! The server's reward functions: the reward library (`stepwise-reward`), and step
//! scoring for `/v1/step_rewards` with `stepwise-score`'s scorers.
//!
//! Reward functions are synchronous and CPU-bound; the server runs them on its worker pool,
//! never on the async runtime. Step scorers ([`score_steps`]) are async (a scorer may wait on
//! a model); the server awaits their futures on the same pool ([`crate::pool::Pool::map_async`]).

use std::sync::Arc;
use stepwise_core::{AnswerExtractor, Problem, Rationale, StepSplitter};
pub use stepwise_reward::{
    Extract, Gold, Limits, RESERVED, RewardFn, Rewards, Scored, check, choice_letter,
    extract_answer, format_ok, gold_answer, length_penalty, parse_delimiter, parse_letter,
};
use stepwise_score::{ScorerComponents, ScorerSettings, ScorerSpec, StepScorer};

/// The step scorer a request names, built by `stepwise-score` from its spec with the
/// server's models (`models`; none: a scorer that needs one is refused with score's error
/// naming it). A spec naming a server (`prm:URL`) is refused, since the request would
/// choose where the server sends requests; `prm` alone uses the server's own PRM
/// endpoints, when it was given some.
pub fn request_scorer(
    spec: &str,
    models: Option<&ScorerComponents>,
) -> Result<(ScorerSpec, Arc<dyn StepScorer>), String> {
    let parsed: ScorerSpec = spec
        .parse()
        .map_err(|e: stepwise_score::ScoreError| e.to_string())?;
    if let Some(p) = parsed
        .parts
        .iter()
        .find(|p| p.kind.calls_server() && (p.arg.is_some() || models.is_none()))
    {
        return Err(format!(
            "{}: calls other servers, which the reward server does not do for a request{}",
            p.kind.name(),
            if models.is_some() {
                " naming them (`prm` alone uses the server's own PRM endpoints)"
            } else {
                ""
            }
        ));
    }
    let scorer = match models {
        Some(m) => m.scorer(&parsed),
        None => parsed.build(None, None, &ScorerSettings::default()),
    }
    .map_err(|e| e.to_string())?;
    Ok((parsed, scorer))
}

/// Scores the steps of a solution with a [`StepScorer`], awaiting it. `steps` overrides
/// splitting `response`.
pub async fn score_steps(
    scorer: &dyn StepScorer,
    prompt: &str,
    response: &str,
    steps: Option<&[String]>,
    gold: Option<&str>,
    splitter: &StepSplitter,
) -> Result<StepsScored, String> {
    let extractor = AnswerExtractor::default();
    let rationale = match steps {
        Some(steps) => {
            let answer = steps
                .last()
                .and_then(|s| extractor.extract(s))
                .map(|e| e.text);
            Rationale::from_steps(steps.iter().cloned(), answer)
        }
        None => Rationale::parse(response, splitter, &extractor),
    };
    let mut problem = Problem::new("request", prompt);
    problem.gold = gold.map(String::from);
    let scored = scorer
        .score_rationale(&problem, &rationale)
        .await
        .map_err(|e| e.to_string())?;
    Ok(StepsScored {
        scores: scored.scores.iter().map(|s| s.score).collect(),
        details: scored.scores.into_iter().map(|s| s.detail).collect(),
        answer: rationale.answer,
    })
}

/// Step scores of one solution.
#[derive(Debug, Clone, PartialEq)]
pub struct StepsScored {
    pub scores: Vec<f64>,
    /// The scorer's reason per step.
    pub details: Vec<Option<String>>,
    /// The final answer found in the solution.
    pub answer: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_scorers_are_model_free_and_call_no_server() {
        let e = request_scorer("arith*judge", None).err().unwrap();
        assert!(e.starts_with("judge: needs a model"), "{e}");
        let e = request_scorer("prm:http://127.0.0.1:9", None)
            .err()
            .unwrap();
        assert!(e.contains("calls other servers"), "{e}");
        assert!(
            request_scorer("oracle", None)
                .err()
                .unwrap()
                .contains("unknown scorer")
        );
        let (spec, scorer) = request_scorer("Arith*verifier", None).unwrap();
        assert!(spec.needs_gold());
        assert_eq!(scorer.name(), "arith*outcome");
    }

    #[tokio::test]
    async fn steps_are_scored_by_awaiting_the_scorer() {
        let (_, scorer) = request_scorer("arith", None).unwrap();
        let split = parse_delimiter("blank-line").unwrap();
        let s = score_steps(
            scorer.as_ref(),
            "",
            "3 + 4 = 7\n\n7 * 2 = 15",
            None,
            None,
            &split,
        )
        .await
        .unwrap();
        assert_eq!(s.scores.len(), 2);
        assert!(s.scores[0] > s.scores[1]);
        assert!(s.details[1].as_deref().unwrap_or("").contains("wrong"));
    }
}
