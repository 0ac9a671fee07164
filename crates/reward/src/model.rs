//! The seam for model-backed components (`kind = "scorer"`): this crate configures them and
//! combines their values into the reward; the model work is done by an implementation of
//! [`ModelComponent`] that a crate with models provides (`stepwise-score`'s
//! `ScorerComponents`, over the embedded model or endpoints the CLI opened), handed to
//! [`crate::Rewards::with_models`]. So the reward library stays free of models and HTTP:
//! it only awaits a trait object.
//!
//! ```toml
//! [[reward.components]]
//! kind = "scorer"
//! spec = "judge"          # any scorer spec: judge, self-judge, prm, head:PATH, rollout, arith*judge
//! as = "steps"            # "outcome": the whole response scored as one step
//! aggregation = "min"     # how step scores make the value (steps only)
//! weight = 0.5
//! ```
//!
//! A component's value is in [0, 1] (what the scorer says); its token cost is added to the
//! item's `logs` as `NAME.prompt_tokens`, `NAME.generated_tokens` and `NAME.calls` (so
//! `/get_reward` returns it in `extra_logs`). A model call that fails gives the value 0 and
//! raises the `model_failed` flag.

use async_trait::async_trait;
use std::sync::Arc;
use stepwise_core::{Aggregation, StepSplitter};

/// What a model-backed component reads of an item.
#[derive(Debug, Clone, Copy)]
pub struct ModelItem<'a> {
    pub prompt: &'a str,
    pub response: &'a str,
    /// The gold answer, when the item has one (a list: its first alternative).
    pub gold: Option<&'a str>,
}

/// Tokens and calls a model-backed component spent on one item.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ModelCost {
    pub prompt_tokens: u64,
    pub generated_tokens: u64,
    pub calls: u64,
}

/// A model-backed component's value for one item and what it cost.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ModelScore {
    pub value: f64,
    pub cost: ModelCost,
}

/// A component whose value comes from a model (or a server): awaited, so the calls of
/// concurrent items reach the backend together and it can batch them.
#[async_trait]
pub trait ModelComponent: Send + Sync {
    /// The value of `item`, or why it could not be computed.
    async fn score(&self, item: &ModelItem<'_>) -> Result<ModelScore, String>;
}

/// How a `kind = "scorer"` component uses its scorer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScoreAs {
    /// The whole response is one step; the value is its score (an outcome reward).
    #[default]
    Outcome,
    /// The response is split into steps; the value is their aggregated score.
    Steps,
}

/// A `kind = "scorer"` component as its builder sees it: checked, not yet built.
#[derive(Debug, Clone)]
pub struct ScorerUse {
    /// The component's name (`origin` in errors).
    pub name: String,
    /// The scorer spec as written (`judge`, `arith*judge`, `prm:URL`, `head:PATH`).
    pub spec: String,
    pub mode: ScoreAs,
    pub aggregation: Aggregation,
    pub splitter: StepSplitter,
}

/// Builds the model-backed components of a configuration (implemented where the models
/// are: `stepwise-score`).
pub trait ModelComponents: Send + Sync {
    /// The component `c` describes; an error says why it cannot be built (an unknown
    /// scorer, no model for it).
    fn build(&self, c: &ScorerUse) -> Result<Arc<dyn ModelComponent>, String>;
}

/// A built model component inside a reward function (Debug for the function's).
#[derive(Clone)]
pub(crate) struct ModelRef(pub(crate) Arc<dyn ModelComponent>);

impl std::fmt::Debug for ModelRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ModelComponent")
    }
}

/// The log keys of component `name`'s cost.
pub fn cost_keys(name: &str) -> [String; 3] {
    [
        format!("{name}.prompt_tokens"),
        format!("{name}.generated_tokens"),
        format!("{name}.calls"),
    ]
}

/// The default name of a scorer component: its spec without arguments (`prm:URL` → `prm`,
/// `arith*head:PATH` → `arith*head`).
pub(crate) fn default_name(spec: &str) -> String {
    spec.split('*')
        .map(|p| {
            p.split(':')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .collect::<Vec<_>>()
        .join("*")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Gold, ItemExtras, RewardConfig, Rewards};
    use std::sync::Mutex;

    /// A model stand-in: the share of the response's words that are "good", costing one
    /// call of as many prompt tokens as the prompt has words and 2 generated tokens; a
    /// response "fail" fails. Records what it was asked.
    #[derive(Default)]
    struct Words {
        golds: Mutex<Vec<Option<String>>>,
    }

    #[async_trait]
    impl ModelComponent for Words {
        async fn score(&self, item: &ModelItem<'_>) -> Result<ModelScore, String> {
            if let Ok(mut g) = self.golds.lock() {
                g.push(item.gold.map(String::from));
            }
            if item.response == "fail" {
                return Err("the model is down".into());
            }
            let words: Vec<&str> = item.response.split_whitespace().collect();
            let good = words.iter().filter(|w| **w == "good").count();
            Ok(ModelScore {
                value: good as f64 / words.len().max(1) as f64,
                cost: ModelCost {
                    prompt_tokens: item.prompt.split_whitespace().count() as u64,
                    generated_tokens: 2,
                    calls: 1,
                },
            })
        }
    }

    struct Builder(Arc<Words>, Mutex<Vec<ScorerUse>>);

    impl ModelComponents for Builder {
        fn build(&self, c: &ScorerUse) -> Result<Arc<dyn ModelComponent>, String> {
            if c.spec == "oracle" {
                return Err("unknown scorer".into());
            }
            if let Ok(mut b) = self.1.lock() {
                b.push(c.clone());
            }
            Ok(self.0.clone())
        }
    }

    const CONFIG: &str = r#"
        [[reward.components]]
        kind = "accuracy"
        [[reward.components]]
        kind = "scorer"
        spec = "arith*judge"
        as = "steps"
        aggregation = "mean"
        weight = 0.5
    "#;

    #[test]
    fn scorer_components_are_model_backed_and_add_their_cost_to_the_logs() {
        let cfg = RewardConfig::from_toml(CONFIG, "t").unwrap();
        assert!(cfg.needs_models());
        let e = stepwise_core::error_chain(&Rewards::new(&cfg).unwrap_err());
        assert!(
            e.contains("reward: component 'arith*judge' (scorer arith*judge) needs a model"),
            "{e}"
        );
        let words = Arc::new(Words::default());
        let b = Builder(words.clone(), Mutex::new(vec![]));
        let r = Rewards::with_models(&cfg, &b).unwrap();
        assert!(r.has_models());
        assert_eq!(r.keys(), ["accuracy", "arith*judge"]);
        assert_eq!(r.flag_keys(), ["model_failed"]);
        let built = b.1.lock().unwrap();
        assert_eq!(built[0].mode, ScoreAs::Steps);
        assert_eq!(built[0].aggregation, Aggregation::Mean);
        drop(built);

        // reward = 1 (accuracy) + 0.5 × (2 good words of 4)
        let gold = Gold::AnyOf(vec!["7".into(), "8".into()]);
        let s = futures::executor::block_on(r.score_gold_async(
            None,
            "what is 3 + 4",
            "good good bad \\boxed{7}",
            &gold,
            &ItemExtras::default(),
        ));
        assert_eq!(s.result.components["arith*judge"], 0.5);
        assert_eq!(s.result.reward, 1.0 + 0.5 * 0.5);
        assert_eq!(s.result.logs["arith*judge.prompt_tokens"], 5.0);
        assert_eq!(s.result.logs["arith*judge.generated_tokens"], 2.0);
        assert_eq!(s.result.logs["arith*judge.calls"], 1.0);
        assert!(!s.result.flags["model_failed"]);
        // the component saw the item, with the list's first alternative as its gold
        assert_eq!(*words.golds.lock().unwrap(), [Some("7".to_string())]);

        // the synchronous path scores the rule components only
        let sync = r.score(None, "p", "good \\boxed{7}", "7");
        assert_eq!(sync.result.reward, 1.0);
        assert_eq!(sync.result.components["arith*judge"], 0.0);

        // a failing model: 0, the flag, zero cost
        let f = futures::executor::block_on(r.score_gold_async(
            None,
            "p",
            "fail",
            &Gold::None,
            &ItemExtras::default(),
        ));
        assert_eq!(f.result.components["arith*judge"], 0.0);
        assert!(f.result.flags["model_failed"] && f.no_gold);
        assert_eq!(f.result.logs["arith*judge.calls"], 0.0);
    }

    #[test]
    fn a_scorer_component_is_checked_as_configuration() {
        let bad = [
            ("kind = \"scorer\"\nspec = \"\"", "needs a `spec`"),
            (
                "kind = \"scorer\"\nspec = \"judge\"\nas = \"tokens\"",
                "tokens",
            ),
            (
                "kind = \"scorer\"\nspec = \"judge\"\naggregation = \"median\"",
                "median",
            ),
        ];
        for (c, want) in bad {
            let text = format!("[[reward.components]]\n{c}\n");
            let e = stepwise_core::error_chain(&RewardConfig::from_toml(&text, "t").unwrap_err());
            assert!(e.contains(want), "{c}: {e}");
        }
        let cfg = RewardConfig::from_toml(
            "[[reward.components]]\nkind = \"scorer\"\nspec = \"oracle\"\n",
            "t",
        )
        .unwrap();
        let b = Builder(Arc::new(Words::default()), Mutex::new(vec![]));
        let e = stepwise_core::error_chain(&Rewards::with_models(&cfg, &b).unwrap_err());
        assert!(
            e.contains("reward: component 'oracle' (scorer oracle): unknown scorer"),
            "{e}"
        );
        assert_eq!(default_name("arith * prm:http://a:1"), "arith*prm");
    }
}
