//! stepwise-reward: the reward functions of stepwise, one library for the reward server
//! (`stepwise serve`), the offline scorer (`stepwise reward`) and the Python package.
//!
//! A reward function is a weighted sum of components (accuracy against a gold answer,
//! format, length, arithmetic step check, multiple choice, a generated task's exact
//! verifier), built from a TOML [`config::RewardSpec`] or a named preset, and scores one
//! item at a time, synchronously and within the verifier's bounds. [`Rewards`] is the
//! set a configuration names: a default function and functions chosen by an item's
//! `data_source`, with one set of component keys for all of them.
//!
//! Dependencies are kept narrow (core, verify, tasks, serde, toml): no HTTP, no store,
//! no model, so the Python wheel and the CLI link only what scoring needs.
//!
//! ```
//! use stepwise_reward::{Rewards, config::RewardConfig};
//! let rewards = Rewards::new(&RewardConfig::with_preset("deepseek-r1").unwrap()).unwrap();
//! let s = rewards.score(None, "", "<think>2+2=4</think> \\boxed{4}", "4");
//! assert_eq!(s.result.reward, 2.0);
//! assert_eq!(rewards.keys(), ["accuracy", "format"]);
//! ```

pub mod config;
mod function;
pub mod group;
pub mod instructions;

pub use config::{ConfigError, RewardConfig};
pub use function::{
    Extract, Limits, RESERVED, RewardFn, Scored, check, choice_letter, constraints, extract_answer,
    format_ok, gold_answer, length_penalty, parse_delimiter, parse_letter,
};

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The reward of one item and its parts (sent over HTTP by `stepwise serve`, written by
/// `stepwise reward`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RewardResult {
    /// Sum of weight × component value.
    pub reward: f64,
    /// Unweighted component values by component name.
    pub components: BTreeMap<String, f64>,
    /// The answer extracted from the response, when one was found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    /// True when the request deadline passed before this item was scored;
    /// `reward` is then the configured `timeout_reward`.
    #[serde(default)]
    pub timed_out: bool,
}

/// The reward functions of one configuration: the default one and one per
/// `data_source`, built and checked once.
#[derive(Debug, Clone)]
pub struct Rewards {
    default: RewardFn,
    label: String,
    sources: BTreeMap<String, RewardFn>,
    keys: Vec<String>,
    group: group::GroupFn,
    limits: Limits,
}

impl Rewards {
    /// Builds every function of `config`; an error names the function (`reward`,
    /// `sources."NAME"`) and the reason.
    pub fn new(config: &RewardConfig) -> Result<Self, ConfigError> {
        let default = RewardFn::build("reward", &config.reward)?;
        let mut keys: Vec<String> = default.component_names().map(String::from).collect();
        let mut sources = BTreeMap::new();
        for (name, spec) in &config.sources {
            let f = RewardFn::build(&format!("sources.\"{name}\""), spec)?;
            for n in f.component_names() {
                if !keys.iter().any(|k| k == n) {
                    keys.push(n.to_string());
                }
            }
            sources.insert(name.clone(), f);
        }
        Ok(Self {
            default,
            label: config.reward.label(),
            sources,
            keys,
            group: group::GroupFn::build("group", &config.group.components)?,
            limits: config.limits,
        })
    }

    /// The function for an item's `data_source` (the default one for none or an
    /// unknown source).
    pub fn function(&self, source: Option<&str>) -> &RewardFn {
        source
            .and_then(|s| self.sources.get(s))
            .unwrap_or(&self.default)
    }

    /// The default function.
    pub fn default_fn(&self) -> &RewardFn {
        &self.default
    }

    /// A short name of the default function for logs (`deepseek-r1`, `custom`).
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Every component name any function can produce: the default function's first,
    /// then the sources' new ones in source order.
    pub fn keys(&self) -> &[String] {
        &self.keys
    }

    /// The bounds scoring applies.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Scores one group: each response with the item function of the group's source
    /// (against its gold, or none), then the group components.
    pub fn score_group(&self, g: &group::Group) -> group::GroupResult {
        let gold = g.gold.as_deref().unwrap_or("");
        let items = g
            .responses
            .iter()
            .map(|r| self.score(g.data_source.as_deref(), &g.prompt, r, gold))
            .collect();
        self.group.apply(g, items, &self.limits)
    }

    /// Scores one item with the function of its source.
    pub fn score(&self, source: Option<&str>, prompt: &str, response: &str, gold: &str) -> Scored {
        self.function(source)
            .score(prompt, response, gold, &self.limits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_choose_the_function_and_keys_cover_all() {
        let cfg = RewardConfig::from_toml(
            "[reward]\npreset = \"deepseek-r1\"\n[sources.mc]\npreset = \"multiple-choice\"\n",
            "t",
        )
        .unwrap();
        let r = Rewards::new(&cfg).unwrap();
        assert_eq!(r.keys(), ["accuracy", "format", "choice"]);
        assert_eq!(
            r.score(Some("mc"), "", "The answer is (B).", "B")
                .result
                .reward,
            1.0
        );
        // an unknown source uses the default function
        let s = r.score(Some("other"), "", "<think>x</think>\\boxed{3}", "3");
        assert_eq!(s.result.reward, 2.0);
        assert_eq!(r.label(), "deepseek-r1");
    }
}
