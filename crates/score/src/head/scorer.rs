//! [`HeadScorer`]: a trained head read off the generator's hidden states.

use super::{PrmHead, head_input};
use crate::{ScoreError, Scored, StepScorer, engine_err};
use async_trait::async_trait;
use std::sync::Arc;
use stepwise_core::{Problem, Rationale, Spent, Step, StepScore};
use stepwise_model::Generator;

/// A [`StepScorer`] from a trained head: `sigmoid(w · standardize(h) + b)` of the
/// generator's hidden state at the end of the step (after the separator).
///
/// [`StepScorer::score_rationale`] reads a whole rationale in one
/// [`Generator::embed_pieces`] call. Tokens the model reads are reported as judge prompt
/// tokens (it generates none).
pub struct HeadScorer {
    generator: Arc<dyn Generator>,
    head: Arc<PrmHead>,
    name: String,
}

impl HeadScorer {
    /// A scorer reading `head` off `generator`'s hidden states. A head trained on another
    /// model is refused unless `allow_other_model` (its features would mean nothing).
    pub fn new(
        generator: Arc<dyn Generator>,
        head: Arc<PrmHead>,
        allow_other_model: bool,
    ) -> Result<Self, ScoreError> {
        let name = "head".to_string();
        let gen_name = generator.name();
        if head.model != gen_name {
            if allow_other_model {
                tracing::warn!("head trained on '{}' used with '{gen_name}'", head.model);
            } else {
                return Err(ScoreError::Unusable {
                    scorer: name,
                    reason: format!(
                        "the head was trained on '{}', the model is '{gen_name}'",
                        head.model
                    ),
                });
            }
        }
        Ok(Self {
            generator,
            head,
            name,
        })
    }

    /// The head in use.
    pub fn head(&self) -> &PrmHead {
        &self.head
    }

    async fn score_pieces(
        &self,
        problem: &Problem,
        steps: &[&str],
        first: usize,
    ) -> Result<Scored, ScoreError> {
        let (prompt, pieces) = head_input(&problem.question, steps, &self.head.separator);
        let e = self
            .generator
            .embed_pieces(&prompt, &pieces)
            .await
            .map_err(engine_err(&self.name))?;
        if e.vectors.len() != pieces.len() {
            return Err(ScoreError::Unusable {
                scorer: self.name.clone(),
                reason: format!(
                    "the model returned {} hidden states for {} steps",
                    e.vectors.len(),
                    pieces.len()
                ),
            });
        }
        let mut scores = Vec::with_capacity(pieces.len() - first);
        for (i, h) in e.vectors.iter().enumerate().skip(first) {
            let p = self.head.score(h).map_err(|err| ScoreError::Unusable {
                scorer: self.name.clone(),
                reason: err.to_string(),
            })?;
            scores.push(StepScore::new(i, p, self.name.clone()));
        }
        Ok(Scored {
            scores,
            spent: Spent {
                judge_calls: 1,
                judge_prompt_tokens: e.prompt_tokens,
                ..Spent::default()
            },
        })
    }
}

#[async_trait]
impl StepScorer for HeadScorer {
    fn name(&self) -> String {
        self.name.clone()
    }

    async fn score_step(
        &self,
        problem: &Problem,
        prefix: &[Step],
        step: &Step,
        _answer: Option<&str>,
    ) -> Result<Scored, ScoreError> {
        let steps = crate::texts_through(prefix, step);
        self.score_pieces(problem, &steps, prefix.len()).await
    }

    async fn score_rationale(
        &self,
        problem: &Problem,
        rationale: &Rationale,
    ) -> Result<Scored, ScoreError> {
        if rationale.steps.is_empty() {
            return Ok(Scored::default());
        }
        let steps: Vec<&str> = rationale.steps.iter().map(|s| s.text.as_str()).collect();
        self.score_pieces(problem, &steps, 0).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::head::sigmoid;
    use crate::head::test_util::{scripted, small_head, tmp};
    use crate::head::{FeatureRecord, TrainConfig, train_head};
    use crate::{ScorerSettings, build_scorer};

    #[tokio::test]
    async fn head_scorer_matches_a_hand_computation() {
        let g = scripted();
        let head = Arc::new(small_head("scripted"));
        let s = HeadScorer::new(g.clone(), head.clone(), false).unwrap();
        let problem = Problem::new("p", "What is 2 + 3?");
        let r = Rationale::from_steps(["2 + 3 = 5", "this is wrong", "so 5"], Some("5".into()));
        let out = s.score_rationale(&problem, &r).await.unwrap();
        // Step k ends at (words, wrongs): (5, 0), (8, 1), (10, 1).
        let expect = |w: f64, x: f64| sigmoid(0.25 + 0.5 * (w - 1.0) / 2.0 - 3.0 * x);
        let want = [expect(5.0, 0.0), expect(8.0, 1.0), expect(10.0, 1.0)];
        assert_eq!(out.scores.len(), 3);
        for (i, (sc, w)) in out.scores.iter().zip(want).enumerate() {
            assert_eq!(sc.step, i);
            assert_eq!(sc.scorer, "head");
            assert!((sc.score - w).abs() < 1e-9, "step {i}: {} vs {w}", sc.score);
        }
        assert_eq!(out.spent.judge_calls, 1);
        assert_eq!(out.spent.judge_prompt_tokens, 5 + 10); // question + steps, in words
        assert_eq!(out.spent.generated_tokens(), 0);

        // Step by step: the same scores, one call per step.
        let one = s
            .score_step(&problem, &r.steps[..1], &r.steps[1], None)
            .await
            .unwrap();
        assert_eq!(one.scores.len(), 1);
        assert_eq!(one.scores[0].step, 1);
        assert!((one.scores[0].score - want[1]).abs() < 1e-9);
        assert_eq!(one.spent.judge_prompt_tokens, 5 + 8);

        // A head of another model is refused unless allowed.
        let other = Arc::new(small_head("llama.cpp:other"));
        assert!(matches!(
            HeadScorer::new(g.clone(), other.clone(), false),
            Err(ScoreError::Unusable { .. })
        ));
        assert!(HeadScorer::new(g, other, true).is_ok());
    }

    #[test]
    fn spec_builds_a_head_scorer_from_a_file() {
        let p = tmp("spec").join("h.json");
        let mut h = tests_head();
        h.model = "scripted".into();
        h.save(&p).unwrap();
        let g: Arc<dyn Generator> =
            Arc::new(stepwise_model::scripted::ScriptedGenerator::new(|_, _| {
                String::new()
            }));
        let st = ScorerSettings::default();
        let spec = format!("head:{}", p.display());
        let s = build_scorer(&spec, Some(g.clone()), None, &st).unwrap();
        assert_eq!(s.name(), "head");
        assert_eq!(
            build_scorer(&format!("arith*{spec}"), Some(g.clone()), None, &st)
                .unwrap()
                .name(),
            "arith*head"
        );
        assert!(build_scorer("head", Some(g.clone()), None, &st).is_err());
        assert!(build_scorer(&spec, None, None, &st).is_err());
        let e = build_scorer("head:/nonexistent/h.json", Some(g), None, &st)
            .err()
            .unwrap();
        assert!(e.to_string().contains("/nonexistent/h.json"), "{e}");
    }

    fn tests_head() -> PrmHead {
        let recs: Vec<FeatureRecord> = (0..4)
            .map(|i| FeatureRecord {
                id: format!("r{i}"),
                model: "scripted".into(),
                separator: "\n\n".into(),
                labels: vec![true, false],
                targets: None,
                features: vec![vec![1.0 + i as f32, 0.0], vec![0.0, 1.0 + i as f32]],
            })
            .collect();
        let cfg = TrainConfig {
            val_frac: 0.0,
            epochs: 20,
            ..TrainConfig::default()
        };
        train_head(
            &recs,
            "scripted",
            "\n\n",
            "test",
            crate::head::Targets::Hard,
            &cfg,
        )
        .unwrap()
    }
}
