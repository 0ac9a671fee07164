//! Running a step scorer (or a critic model) over ProcessBench records.

use crate::EvalError;
use crate::processbench::{PbRecord, PbResult, parse_critic};
use futures::StreamExt;
use std::sync::Arc;
use stepwise_core::{Problem, Rationale};
use stepwise_model::{ChatMessage, GenerateRequest, Generator, Prompt, SamplingParams};
use stepwise_score::StepScorer;

/// How first-error indices are predicted.
#[derive(Clone)]
pub enum PbMode {
    /// Every step scored by a [`StepScorer`]; a threshold turns scores into an index later.
    Scorer(Arc<dyn StepScorer>),
    /// A model asked (with the benchmark's prompt) for the index of the first wrong paragraph.
    Critic {
        generator: Arc<dyn Generator>,
        params: SamplingParams,
    },
}

impl PbMode {
    pub fn name(&self) -> String {
        match self {
            Self::Scorer(s) => s.name(),
            Self::Critic { generator, .. } => format!("critic:{}", generator.name()),
        }
    }
}

/// One record to evaluate and the subset it belongs to.
#[derive(Debug, Clone)]
pub struct PbItem {
    pub subset: String,
    pub record: PbRecord,
}

/// Evaluates one record.
pub async fn evaluate_one(mode: &PbMode, item: &PbItem) -> Result<PbResult, EvalError> {
    let r = &item.record;
    let mut out = PbResult {
        id: r.id.clone(),
        subset: item.subset.clone(),
        label: r.label,
        n_steps: r.steps.len(),
        scores: Vec::new(),
        critic: None,
        generated_tokens: 0,
        prompt_tokens: 0,
        problem: r.problem.clone(),
        steps: r.steps.clone(),
        details: Vec::new(),
    };
    match mode {
        PbMode::Scorer(scorer) => {
            let problem = Problem::new(r.id.clone(), r.problem.clone());
            let rationale = Rationale::from_steps(r.steps.iter().cloned(), None);
            let scored = scorer
                .score_rationale(&problem, &rationale)
                .await
                .map_err(|e| EvalError::Scorer {
                    id: r.id.clone(),
                    reason: e.to_string(),
                })?;
            if scored.scores.len() != r.steps.len() {
                return Err(EvalError::Scorer {
                    id: r.id.clone(),
                    reason: format!(
                        "scorer {} returned {} scores for {} steps",
                        scorer.name(),
                        scored.scores.len(),
                        r.steps.len()
                    ),
                });
            }
            out.scores = scored.scores.iter().map(|s| s.score).collect();
            out.details = scored
                .scores
                .iter()
                .map(|s| s.detail.clone().unwrap_or_default())
                .collect();
            out.generated_tokens = scored.spent.generated_tokens();
            out.prompt_tokens =
                scored.spent.judge_prompt_tokens + scored.spent.policy_prompt_tokens;
        }
        PbMode::Critic { generator, params } => {
            let req = GenerateRequest {
                prompt: Prompt::Chat(vec![ChatMessage::user(crate::processbench::critic_prompt(
                    &r.problem, &r.steps,
                ))]),
                assistant_prefix: String::new(),
                params: SamplingParams {
                    n: 1,
                    ..params.clone()
                },
            };
            let completions = generator
                .generate(&req)
                .await
                .map_err(|e| EvalError::Scorer {
                    id: r.id.clone(),
                    reason: e.to_string(),
                })?;
            let Some(c) = completions.into_iter().next() else {
                return Err(EvalError::Scorer {
                    id: r.id.clone(),
                    reason: "the critic model returned no completion".into(),
                });
            };
            out.critic = Some(parse_critic(&c.text, r.steps.len()));
            out.generated_tokens = c.generated_tokens;
            out.prompt_tokens = c.prompt_tokens;
            out.details = vec![c.text];
        }
    }
    Ok(out)
}

/// Evaluates `items` with up to `concurrency` in flight, calling `on_result` for each
/// finished one in input order (so a caller can store it and resume later). Stops at
/// the first error, after everything before it has been handed to `on_result`.
pub async fn run<F>(
    mode: &PbMode,
    items: Vec<PbItem>,
    concurrency: usize,
    mut on_result: F,
) -> Result<usize, EvalError>
where
    F: FnMut(PbResult) -> Result<(), EvalError>,
{
    let mut stream = futures::stream::iter(items.iter())
        .map(|item| evaluate_one(mode, item))
        .buffered(concurrency.max(1));
    let mut done = 0;
    while let Some(r) = stream.next().await {
        on_result(r?)?;
        done += 1;
    }
    Ok(done)
}
