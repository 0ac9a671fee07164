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
//! Dependencies are kept narrow (core, verify, tasks, serde, toml, and the sandbox of the
//! `code` component): no HTTP, no store, no model, so the Python wheel and the CLI link only what scoring needs.
//! Model-backed components (`kind = "scorer"`) are configured here and awaited through
//! the [`model::ModelComponent`] trait, which `stepwise-score` implements over the models
//! the caller opened ([`Rewards::with_models`], scored by [`Rewards::score_gold_async`]).
//!
//! ```
//! use stepwise_reward::{Rewards, config::RewardConfig};
//! let rewards = Rewards::new(&RewardConfig::with_preset("deepseek-r1").unwrap()).unwrap();
//! let s = rewards.score(None, "", "<think>2+2=4</think> \\boxed{4}", "4");
//! assert_eq!(s.result.reward, 2.0);
//! assert_eq!(rewards.keys(), ["accuracy", "format"]);
//! ```

pub mod calibration;
pub mod code;
pub mod config;
mod function;
pub mod group;
pub mod instructions;
pub mod model;
pub mod ranking;
pub mod reasonflux;
pub mod shaping;
pub mod shop;

pub use config::{ConfigError, RewardConfig};
pub use function::{
    Extract, Limits, RESERVED, RewardFn, Scored, check, choice_letter, constraints, extract_answer,
    format_ok, gold_answer, length_penalty, parse_delimiter, parse_letter,
};

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The reward of one item and its parts (sent over HTTP by `stepwise serve`, written by
/// `stepwise reward`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
    /// Diagnostics the components raise (`confidence_unparsed`, `ranking_unparsed`,
    /// `action_unparsed`, `no_logprobs`), every flag the configuration can raise on
    /// every item; absent when it raises none (an addition: older readers ignore it).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub flags: BTreeMap<String, bool>,
    /// Diagnostics of components that have them (the `code` component's per-case
    /// results: `code.passed`, `code.case0`, …), added to `/get_reward`'s `extra_logs`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub logs: BTreeMap<String, f64>,
}

/// What an item may carry besides its text, for the components that need it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ItemExtras<'a> {
    /// Per generated token, the log-probabilities of its top-k alternatives (the
    /// self-certainty component's input).
    pub logprobs: Option<&'a [Vec<f64>]>,
}

/// A gold answer as trainers send it (OpenRLHF passes dataset labels raw): a string, a
/// number (read as its JSON text, `72` or `0.5`), a list of alternatives (any of them
/// is right; numbers allowed) or null (no gold).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gold {
    Text(String),
    AnyOf(Vec<String>),
    None,
}

impl Serialize for Gold {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Text(t) => s.serialize_str(t),
            Self::AnyOf(l) => l.serialize(s),
            Self::None => s.serialize_none(),
        }
    }
}

/// One alternative of a gold list: a string or a number.
struct GoldText(String);

struct GoldVisitor;

impl<'de> serde::de::Visitor<'de> for GoldVisitor {
    type Value = Gold;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a gold answer: a string, a number, a list of them, or null")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Gold, E> {
        Ok(Gold::Text(v.to_string()))
    }
    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Gold, E> {
        Ok(Gold::Text(v))
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Gold, E> {
        Ok(Gold::Text(v.to_string()))
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Gold, E> {
        Ok(Gold::Text(v.to_string()))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Gold, E> {
        Ok(Gold::Text(
            serde_json::Number::from_f64(v).map_or_else(|| v.to_string(), |n| n.to_string()),
        ))
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Gold, E> {
        Ok(Gold::None)
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<Gold, E> {
        Ok(Gold::None)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Gold, D::Error> {
        d.deserialize_any(GoldVisitor)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Gold, A::Error> {
        let mut all = Vec::new();
        while let Some(GoldText(t)) = seq.next_element()? {
            all.push(t);
        }
        Ok(if all.is_empty() {
            Gold::None
        } else {
            Gold::AnyOf(all)
        })
    }
}

impl<'de> Deserialize<'de> for GoldText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match d.deserialize_any(GoldVisitor)? {
            Gold::Text(t) => Ok(Self(t)),
            _ => Err(serde::de::Error::custom(
                "a gold list holds strings or numbers",
            )),
        }
    }
}

impl<'de> Deserialize<'de> for Gold {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(GoldVisitor)
    }
}

/// How [`Rewards::build`] treats model-backed components.
#[derive(Clone, Copy)]
pub enum Models<'a> {
    /// None may appear (an error names the first).
    Refused,
    /// Checked as configuration, not built (`RewardConfig::check`); such a `Rewards`
    /// scores them 0.
    Unchecked,
    /// Built by this builder.
    Built(&'a dyn model::ModelComponents),
}

/// The reward functions of one configuration: the default one and one per
/// `data_source`, built and checked once.
#[derive(Debug, Clone)]
pub struct Rewards {
    default: RewardFn,
    label: String,
    sources: BTreeMap<String, RewardFn>,
    keys: Vec<String>,
    flags: Vec<&'static str>,
    group: group::GroupFn,
    limits: Limits,
}

impl Rewards {
    /// Builds every function of `config`; an error names the function (`reward`,
    /// `sources."NAME"`) and the reason. A model-backed component (`kind = "scorer"`) is an
    /// error here: it needs [`Rewards::with_models`].
    pub fn new(config: &RewardConfig) -> Result<Self, ConfigError> {
        Self::build(config, Models::Refused)
    }

    /// [`Rewards::new`] with the model-backed components built by `models`.
    pub fn with_models(
        config: &RewardConfig,
        models: &dyn model::ModelComponents,
    ) -> Result<Self, ConfigError> {
        Self::build(config, Models::Built(models))
    }

    /// Builds every function of `config`, treating model-backed components as `models` says.
    pub fn build(config: &RewardConfig, models: Models<'_>) -> Result<Self, ConfigError> {
        let finish = |origin: &str, mut f: RewardFn| -> Result<RewardFn, ConfigError> {
            match models {
                Models::Refused => {
                    if let Some(u) = f.unbuilt().next() {
                        return Err(ConfigError::Invalid(format!(
                            "{origin}: component '{}' (scorer {}) needs a model, and none was given (serve and reward take --model or --judge-endpoint; in Python use RemoteRewards to a stepwise serve)",
                            u.name, u.spec
                        )));
                    }
                }
                Models::Unchecked => {}
                Models::Built(m) => f.resolve(origin, m)?,
            }
            Ok(f)
        };
        let default = finish("reward", RewardFn::build("reward", &config.reward)?)?;
        let mut keys: Vec<String> = default.component_names().map(String::from).collect();
        let mut flags: Vec<&'static str> = default.flag_names().collect();
        let mut sources = BTreeMap::new();
        for (name, spec) in &config.sources {
            let origin = format!("sources.\"{name}\"");
            let f = finish(&origin, RewardFn::build(&origin, spec)?)?;
            for n in f.component_names() {
                if !keys.iter().any(|k| k == n) {
                    keys.push(n.to_string());
                }
            }
            for n in f.flag_names() {
                if !flags.contains(&n) {
                    flags.push(n);
                }
            }
            sources.insert(name.clone(), f);
        }
        if let Some(k) = keys.iter().find(|k| flags.contains(&k.as_str())) {
            return Err(ConfigError::Invalid(format!(
                "component name '{k}' is also a flag name; give the component another `name`"
            )));
        }
        Ok(Self {
            default,
            label: config.reward.label(),
            sources,
            keys,
            flags,
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

    /// Every flag any function can raise (see [`RewardResult::flags`]).
    pub fn flag_keys(&self) -> &[&'static str] {
        &self.flags
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

    /// Scores one item with the function of its source. Every result carries every
    /// key of [`Rewards::keys`] (0 for a component its source's function lacks), so
    /// trainers that take the key set from the first item see the same keys on all.
    pub fn score(&self, source: Option<&str>, prompt: &str, response: &str, gold: &str) -> Scored {
        self.score_with(source, prompt, response, gold, &ItemExtras::default())
    }

    /// [`Rewards::score`] with what the item carries besides its text.
    pub fn score_with(
        &self,
        source: Option<&str>,
        prompt: &str,
        response: &str,
        gold: &str,
        extras: &ItemExtras,
    ) -> Scored {
        let f = self.function(source);
        let mut s = f.score_with(prompt, response, gold, &self.limits, extras);
        if self.keys.len() > s.result.components.len() {
            for k in &self.keys {
                s.result.components.entry(k.clone()).or_insert(0.0);
            }
        }
        if self.flags.len() > s.result.flags.len() {
            for k in &self.flags {
                s.result.flags.entry((*k).to_string()).or_insert(false);
            }
        }
        s
    }

    /// [`Rewards::score`] with a raw gold: a list scores against each alternative and
    /// keeps the best reward; no gold scores against nothing (answer components give 0,
    /// no verdict is counted) and sets `no_gold`.
    pub fn score_gold(
        &self,
        source: Option<&str>,
        prompt: &str,
        response: &str,
        gold: &Gold,
    ) -> Scored {
        self.score_gold_with(source, prompt, response, gold, &ItemExtras::default())
    }

    /// [`Rewards::score_gold`] with what the item carries besides its text.
    pub fn score_gold_with(
        &self,
        source: Option<&str>,
        prompt: &str,
        response: &str,
        gold: &Gold,
        extras: &ItemExtras,
    ) -> Scored {
        match gold {
            Gold::Text(g) => self.score_with(source, prompt, response, g, extras),
            Gold::AnyOf(all) => {
                let mut best: Option<Scored> = None;
                for g in all {
                    let s = self.score_with(source, prompt, response, g, extras);
                    if best
                        .as_ref()
                        .is_none_or(|b| s.result.reward > b.result.reward)
                    {
                        best = Some(s);
                    }
                }
                best.unwrap_or_else(|| {
                    self.score_gold_with(source, prompt, response, &Gold::None, extras)
                })
            }
            Gold::None => {
                let mut s = self.score_with(source, prompt, response, "", extras);
                s.verdict = None;
                s.no_gold = true;
                s
            }
        }
    }
}

impl Rewards {
    /// Whether any function has model-backed components (then score with
    /// [`Rewards::score_gold_async`]; the synchronous methods score them 0).
    pub fn has_models(&self) -> bool {
        self.default.has_models() || self.sources.values().any(RewardFn::has_models)
    }

    /// [`Rewards::score_gold_with`] plus the model-backed components, awaited together
    /// (against the gold's text, a list's first alternative, or none). The rule components
    /// run inline: poll it where CPU work belongs (the server's pool), not on an async
    /// runtime's threads.
    pub async fn score_gold_async(
        &self,
        source: Option<&str>,
        prompt: &str,
        response: &str,
        gold: &Gold,
        extras: &ItemExtras<'_>,
    ) -> Scored {
        let mut s = self.score_gold_with(source, prompt, response, gold, extras);
        let f = self.function(source);
        if f.has_models() {
            let gold = match gold {
                Gold::Text(t) => Some(t.as_str()),
                Gold::AnyOf(all) => all.first().map(String::as_str),
                Gold::None => None,
            };
            let item = model::ModelItem {
                prompt,
                response,
                gold,
            };
            f.score_models(&mut s, &item).await;
        }
        s
    }

    /// [`Rewards::score_group`] with each response scored by [`Rewards::score_gold_async`]
    /// (all of the group's model calls at once).
    pub async fn score_group_async(&self, g: &group::Group) -> group::GroupResult {
        // as `score_group`: no gold scores against the empty answer
        let gold = Gold::Text(g.gold.clone().unwrap_or_default());
        let extras = ItemExtras::default();
        let items = futures::future::join_all(g.responses.iter().map(|r| {
            self.score_gold_async(g.data_source.as_deref(), &g.prompt, r, &gold, &extras)
        }))
        .await;
        self.group.apply(g, items, &self.limits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_labels_are_text_any_of_or_none() {
        let labels: Vec<Gold> =
            serde_json::from_str(r#"["7", 7, 0.5, ["6", 7], null, []]"#).unwrap();
        assert_eq!(
            labels,
            [
                Gold::Text("7".into()),
                Gold::Text("7".into()),
                Gold::Text("0.5".into()),
                Gold::AnyOf(vec!["6".into(), "7".into()]),
                Gold::None,
                Gold::None
            ]
        );
        assert!(serde_json::from_str::<Gold>(r#"{"a": 1}"#).is_err());
        assert!(serde_json::from_str::<Gold>(r#"[[1]]"#).is_err());
        let r = Rewards::new(&RewardConfig::default()).unwrap();
        let resp = "<think>x</think>\\boxed{7}";
        assert_eq!(r.score_gold(None, "", resp, &labels[1]).result.reward, 2.0);
        assert_eq!(r.score_gold(None, "", resp, &labels[3]).result.reward, 2.0);
        let none = r.score_gold(None, "", resp, &Gold::None);
        assert!(none.no_gold && none.verdict.is_none());
        assert_eq!(none.result.reward, 1.0, "format only");
        assert_eq!(none.result.components.len(), 2, "the same keys");
    }

    #[test]
    fn sources_choose_the_function_and_keys_cover_all() {
        let cfg = RewardConfig::from_toml(
            "[reward]\npreset = \"deepseek-r1\"\n[sources.mc]\npreset = \"multiple-choice\"\n",
            "t",
        )
        .unwrap();
        let r = Rewards::new(&cfg).unwrap();
        assert_eq!(r.keys(), ["accuracy", "format", "choice"]);
        let mc = r.score(Some("mc"), "", "The answer is (B).", "B");
        assert_eq!(mc.result.reward, 1.0);
        assert_eq!(
            mc.result.components.len(),
            3,
            "every source's keys on every item"
        );
        // an unknown source uses the default function
        let s = r.score(Some("other"), "", "<think>x</think>\\boxed{3}", "3");
        assert_eq!(s.result.reward, 2.0);
        assert_eq!(r.label(), "deepseek-r1");
    }
}
