//! Step scorers as reward components: the model side of `stepwise-reward`'s
//! `kind = "scorer"` components ([`stepwise_reward::model`]). [`ScorerComponents`] holds
//! the models the caller opened (the embedded model or endpoints) and builds, for each
//! configured component, a [`ScorerComponent`]: its scorer spec built by [`ScorerSpec`]
//! (the one parser of specs), scoring the whole response as one step (`as = "outcome"`)
//! or its steps, aggregated (`as = "steps"`), with the tokens the scorer spent as the
//! component's cost.
//!
//! Items are scored as their futures are awaited: the server awaits the items of
//! concurrent requests at once, so their model calls reach the backend together (the
//! embedded engine decodes them in one batch).

use crate::{ScorerSettings, ScorerSpec, StepScorer};
use async_trait::async_trait;
use std::sync::Arc;
use stepwise_core::{AnswerExtractor, Problem, Rationale, Spent};
use stepwise_model::Generator;
use stepwise_reward::model::{
    ModelComponent, ModelCost, ModelItem, ModelScore, ScoreAs, ScorerUse,
};

/// The models a configuration's scorer components use: the policy (the embedded model or
/// `--endpoint`), an optional judge of its own (`--judge-endpoint`, `--judge-model`), and
/// the scorers' settings (PRM servers, templates).
#[derive(Clone)]
pub struct ScorerComponents {
    pub policy: Option<Arc<dyn Generator>>,
    pub judge: Option<Arc<dyn Generator>>,
    pub settings: ScorerSettings,
}

impl ScorerComponents {
    /// Builds the step scorer `spec` names with these models (for `/v1/step_rewards`);
    /// an error names the scorer.
    pub fn scorer(&self, spec: &ScorerSpec) -> Result<Arc<dyn StepScorer>, crate::ScoreError> {
        spec.build(self.policy.clone(), self.judge.clone(), &self.settings)
    }
}

impl stepwise_reward::model::ModelComponents for ScorerComponents {
    fn build(&self, c: &ScorerUse) -> Result<Arc<dyn ModelComponent>, String> {
        let spec: ScorerSpec = c
            .spec
            .parse()
            .map_err(|e: crate::ScoreError| e.to_string())?;
        let scorer = self.scorer(&spec).map_err(|e| e.to_string())?;
        Ok(Arc::new(ScorerComponent {
            scorer,
            use_: c.clone(),
        }))
    }
}

/// One configured scorer component.
pub struct ScorerComponent {
    scorer: Arc<dyn StepScorer>,
    use_: ScorerUse,
}

impl ScorerComponent {
    /// The component scoring with `scorer` as `use_` says.
    pub fn new(scorer: Arc<dyn StepScorer>, use_: ScorerUse) -> Self {
        Self { scorer, use_ }
    }

    /// The rationale scored: the whole response as one step, or its steps.
    fn rationale(&self, response: &str) -> Rationale {
        let extractor = AnswerExtractor::default();
        match self.use_.mode {
            ScoreAs::Outcome => {
                let text = response.trim();
                if text.is_empty() {
                    return Rationale::from_steps(Vec::<String>::new(), None);
                }
                let answer = extractor.extract(text).map(|e| e.text);
                Rationale::from_steps([text], answer)
            }
            ScoreAs::Steps => Rationale::parse(response, &self.use_.splitter, &extractor),
        }
    }
}

/// Every token and call of `spent` (policy and judge columns: a rollout scorer's
/// continuations are its cost too).
fn cost(spent: &Spent) -> ModelCost {
    ModelCost {
        prompt_tokens: spent.judge_prompt_tokens + spent.policy_prompt_tokens,
        generated_tokens: spent.judge_tokens + spent.policy_tokens,
        calls: spent.judge_calls + spent.policy_calls,
    }
}

#[async_trait]
impl ModelComponent for ScorerComponent {
    /// The scorer's score of the whole response (`outcome`), or the aggregation of its
    /// step scores (`steps`); 0 for an empty response, which costs nothing.
    async fn score(&self, item: &ModelItem<'_>) -> Result<ModelScore, String> {
        let rationale = self.rationale(item.response);
        if rationale.steps.is_empty() {
            return Ok(ModelScore::default());
        }
        let mut problem = Problem::new("reward", item.prompt);
        problem.gold = item.gold.map(String::from);
        let scored = self
            .scorer
            .score_rationale(&problem, &rationale)
            .await
            .map_err(|e| stepwise_core::error_chain(&e))?;
        let value = match self.use_.mode {
            ScoreAs::Outcome => scored.scores.last().map(|s| s.score),
            ScoreAs::Steps => scored.aggregate(self.use_.aggregation),
        }
        .unwrap_or(0.0);
        Ok(ModelScore {
            value,
            cost: cost(&scored.spent),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use stepwise_model::Prompt;
    use stepwise_model::scripted::ScriptedGenerator;
    use stepwise_reward::model::ModelComponents;
    use stepwise_reward::{Gold, ItemExtras, RewardConfig, Rewards};

    fn user_text(p: &Prompt) -> String {
        match p {
            Prompt::Chat(m) => m.last().map(|m| m.content.clone()).unwrap_or_default(),
            Prompt::Text(t) => t.clone(),
        }
    }

    /// A judge that says Yes with p = 0.9 when the judged step says "right", else 0.3,
    /// keeping every prompt it was sent.
    fn judge(prompts: Arc<Mutex<Vec<String>>>) -> Arc<dyn Generator> {
        Arc::new(
            ScriptedGenerator::new(|_, _| String::new()).with_judge(move |p, _, _| {
                let text = user_text(p);
                // the judged step: from the last "Step N: " to the question after it
                let before = text.split("\n\nIs step").next().unwrap_or("");
                let judged = &before[before.rfind("Step ").unwrap_or(0)..];
                let y: f32 = if judged.contains("right") { 0.9 } else { 0.3 };
                prompts.lock().unwrap().push(text);
                vec![Some(y.ln()), None, Some((1.0 - y).ln()), None]
            }),
        )
    }

    #[tokio::test]
    async fn a_judge_component_scores_through_the_model_and_reports_its_tokens() {
        let prompts = Arc::new(Mutex::new(Vec::new()));
        let models = ScorerComponents {
            policy: Some(judge(prompts.clone())),
            judge: None,
            settings: ScorerSettings::default(),
        };
        let cfg = RewardConfig::from_toml(
            r#"
            [[reward.components]]
            kind = "accuracy"
            [[reward.components]]
            kind = "scorer"
            spec = "judge"
            name = "judge_outcome"
            [[reward.components]]
            kind = "scorer"
            spec = "judge"
            as = "steps"
            aggregation = "min"
            weight = 2.0
            "#,
            "t",
        )
        .unwrap();
        let rewards = Rewards::with_models(&cfg, &models).unwrap();
        let s = rewards
            .score_gold_async(
                None,
                "What is 3 + 4?",
                "3 + 4 = 7, right\n\nso \\boxed{7}",
                &Gold::Text("7".into()),
                &ItemExtras::default(),
            )
            .await;
        let sent = prompts.lock().unwrap().clone();
        // one judge call for the whole response, then one per step (2 steps)
        assert_eq!(sent.len(), 3, "{sent:#?}");
        assert!(
            sent.iter().all(|p| p.contains("What is 3 + 4?")),
            "{sent:#?}"
        );
        let whole = sent
            .iter()
            .filter(|p| p.contains("3 + 4 = 7, right") && p.contains("so \\boxed{7}"))
            .count();
        assert!(
            whole >= 1,
            "the outcome call judges the whole response: {sent:#?}"
        );
        // values: outcome P(Yes) of the whole response (it says "right"): 0.9; steps:
        // min(0.9, 0.3) = 0.3 (the second step alone does not say "right")
        let c = &s.result.components;
        assert!((c["judge_outcome"] - 0.9).abs() < 1e-6, "{c:?}");
        assert!((c["judge"] - 0.3).abs() < 1e-6, "{c:?}");
        assert!((s.result.reward - (1.0 + 0.9 + 2.0 * 0.3)).abs() < 1e-6);
        // costs: the scripted judge counts words of its prompt; one call, two calls
        assert_eq!(s.result.logs["judge_outcome.calls"], 1.0);
        assert_eq!(s.result.logs["judge.calls"], 2.0);
        assert_eq!(s.result.logs["judge.generated_tokens"], 0.0);
        let words = |p: &str| stepwise_model::scripted::count_tokens(p) as f64;
        let outcome_prompt: f64 = words(&sent[0]);
        assert!(outcome_prompt > 0.0);
        assert!(s.result.logs["judge_outcome.prompt_tokens"] >= outcome_prompt);
        assert!(s.result.logs["judge.prompt_tokens"] > 0.0);
        assert!(!s.result.flags["model_failed"]);
    }

    #[test]
    fn a_model_scorer_without_a_model_is_an_error_naming_it() {
        let models = ScorerComponents {
            policy: None,
            judge: None,
            settings: ScorerSettings::default(),
        };
        let use_ = ScorerUse {
            name: "j".into(),
            spec: "arith*judge".into(),
            mode: ScoreAs::Outcome,
            aggregation: stepwise_core::Aggregation::Min,
            splitter: stepwise_core::StepSplitter::default(),
        };
        let e = models.build(&use_).err().unwrap();
        assert!(e.starts_with("judge: needs a model"), "{e}");
        let e = models
            .build(&ScorerUse {
                spec: "oracle".into(),
                ..use_.clone()
            })
            .err()
            .unwrap();
        assert!(e.contains("unknown scorer"), "{e}");
        // a model-free spec builds without a model
        assert!(
            models
                .build(&ScorerUse {
                    spec: "arith".into(),
                    ..use_
                })
                .is_ok()
        );
    }
}
