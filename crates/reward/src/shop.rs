//! Shop-R1's rewards (Zhang et al., 2025, "Shop-R1: Rewarding LLMs to Simulate Human
//! Behavior in Online Shopping via Reinforcement Learning", arXiv:2507.17842).
//!
//! The policy answers with a JSON object `{"rationale": "…", "action": {"type":
//! "click", "name": "…"}}` (actions `click {name}`, `type_and_submit {name, text}`,
//! `terminate {}`). Shop-R1 rewards the two parts separately:
//!
//! - **Hierarchical action reward** ([`action_reward`]): the high-level action type
//!   first, then its sub-actions. The type earns `type_weight` when it matches the
//!   gold's; only then does each of the gold's attributes (every key but `type`) earn
//!   `attribute_weight` when the prediction has it and `value_weight × sim` for its value,
//!   `sim` the ROUGE-L F1 of the two values' lower-cased words (1 for equal values), as
//!   Shop-R1 scores free-text sub-actions with ROUGE-L. A wrong type earns nothing, so a
//!   policy cannot farm sub-rewards on the wrong action; actions with more sub-actions
//!   (harder ones) can earn more. Defaults `type_weight = 0.3`, `attribute_weight = 0.2`,
//!   `value_weight = 0.5` are this crate's (the paper's per-action table could not be
//!   checked here); its difficulty-aware reward scaling is the group component
//!   `difficulty` (`stepwise_reward::group`) applied to this component.
//! - **Self-certainty of the rationale** ([`self_certainty`], Kang et al., 2025,
//!   "Scalable Best-of-N Selection for Large Language Models via Self-Certainty",
//!   arXiv:2502.18581): the mean over the rationale's tokens of the KL divergence from
//!   the uniform distribution to the model's next-token distribution,
//!   `(1/n) Σ_i KL(U ‖ p_i) = (1/n) Σ_i (1/k) Σ_j log((1/k) / p_ij)`, over each token's
//!   top-k alternatives as Shop-R1 computes it. The top-k log-probabilities an API
//!   returns do not sum to 1; they are renormalised over the k first, so the value is a
//!   true KL divergence: 0 for a token the model is indifferent about, growing as its
//!   mass concentrates.

use serde_json::{Map, Value};

/// The weights of the hierarchical action reward.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ActionWeights {
    pub type_weight: f64,
    pub attribute_weight: f64,
    pub value_weight: f64,
}

impl Default for ActionWeights {
    fn default() -> Self {
        Self {
            type_weight: 0.3,
            attribute_weight: 0.2,
            value_weight: 0.5,
        }
    }
}

/// The action object in `text`: the JSON object (fenced or not) from its first `{` to its
/// last `}`, its `action` member when it has one, else itself; it must have a string
/// `type`.
pub fn parse_action(text: &str) -> Option<Map<String, Value>> {
    let start = text.find('{')?;
    let end = text.rfind('}')?;
    if end < start {
        return None;
    }
    let v: Value = serde_json::from_str(&text[start..=end]).ok()?;
    let obj = match v {
        Value::Object(mut o) => match o.remove("action") {
            Some(Value::Object(a)) => a,
            Some(_) => return None,
            None => o,
        },
        _ => return None,
    };
    obj.get("type").and_then(Value::as_str)?;
    Some(obj)
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// ROUGE-L F1 of two texts' lower-cased whitespace words (1 when both are empty).
pub fn rouge_l(a: &str, b: &str) -> f64 {
    let x: Vec<String> = a.split_whitespace().map(str::to_lowercase).collect();
    let y: Vec<String> = b.split_whitespace().map(str::to_lowercase).collect();
    if x.is_empty() && y.is_empty() {
        return 1.0;
    }
    if x.is_empty() || y.is_empty() {
        return 0.0;
    }
    // Longest common subsequence, one row at a time.
    let mut prev = vec![0usize; y.len() + 1];
    for xi in &x {
        let mut row = vec![0usize; y.len() + 1];
        for (j, yj) in y.iter().enumerate() {
            row[j + 1] = if xi == yj {
                prev[j] + 1
            } else {
                row[j].max(prev[j + 1])
            };
        }
        prev = row;
    }
    let lcs = prev[y.len()] as f64;
    if lcs == 0.0 {
        return 0.0;
    }
    let (p, r) = (lcs / x.len() as f64, lcs / y.len() as f64);
    2.0 * p * r / (p + r)
}

/// The hierarchical reward of a predicted action against the gold one.
pub fn action_reward(
    pred: &Map<String, Value>,
    gold: &Map<String, Value>,
    w: &ActionWeights,
) -> f64 {
    let ty = |m: &Map<String, Value>| {
        m.get("type")
            .and_then(Value::as_str)
            .map(|s| s.trim().to_lowercase())
    };
    if ty(pred).is_none() || ty(pred) != ty(gold) {
        return 0.0;
    }
    let mut r = w.type_weight;
    for (key, want) in gold.iter().filter(|(k, _)| k.as_str() != "type") {
        if let Some(got) = pred.get(key) {
            r += w.attribute_weight + w.value_weight * rouge_l(&text_of(got), &text_of(want));
        }
    }
    r
}

/// Mean over tokens of `KL(U ‖ p)` over each token's top-k (renormalised); tokens with
/// no alternatives are skipped; `None` when no token has any.
pub fn self_certainty(logprobs: &[Vec<f64>]) -> Option<f64> {
    let per_token: Vec<f64> = logprobs
        .iter()
        .filter(|top| !top.is_empty())
        .map(|top| {
            let k = top.len() as f64;
            let max = top.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let lse = max + top.iter().map(|l| (l - max).exp()).sum::<f64>().ln();
            let mean = top.iter().sum::<f64>() / k;
            // KL(U ‖ p̃) = −ln k − mean_j ln p̃_j, with ln p̃_j = l_j − lse.
            (-k.ln() - (mean - lse)).max(0.0)
        })
        .collect();
    (!per_token.is_empty()).then(|| per_token.iter().sum::<f64>() / per_token.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(o) => o,
            _ => unreachable!("test objects"),
        }
    }

    #[test]
    fn parses_actions() {
        let a = parse_action(
            "```json\n{\"rationale\": \"I want it\", \"action\": {\"type\": \"click\", \"name\": \"buy now\"}}\n```",
        )
        .unwrap();
        assert_eq!(a["name"], "buy now");
        assert!(parse_action("{\"type\": \"terminate\"}").is_some());
        for bad in [
            "click buy",
            "{\"action\": 3}",
            "{\"name\": \"x\"}",
            "{bad json}",
            "} {",
        ] {
            assert!(parse_action(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn rouge_l_by_hand() {
        // LCS of "red running shoes" and "red shoes": 2; P = 2/3, R = 1 → F = 0.8.
        assert!((rouge_l("red running shoes", "Red shoes") - 0.8).abs() < 1e-12);
        assert_eq!(rouge_l("a b", "a b"), 1.0);
        assert_eq!(rouge_l("a", "b"), 0.0);
        assert_eq!(rouge_l("", ""), 1.0);
    }

    #[test]
    fn hierarchical_action_reward_by_hand() {
        let w = ActionWeights::default();
        let gold = obj(json!({"type": "type_and_submit", "name": "search", "text": "red shoes"}));
        // Type 0.3; name present and equal: 0.2 + 0.5; text present, ROUGE-L 0.8: 0.2 + 0.4.
        let pred =
            obj(json!({"type": "type_and_submit", "name": "search", "text": "red running shoes"}));
        assert!((action_reward(&pred, &gold, &w) - (0.3 + 0.7 + 0.6)).abs() < 1e-12);
        // Only the type: 0.3. A wrong type earns nothing, whatever its attributes.
        let only = obj(json!({"type": "TYPE_AND_SUBMIT"}));
        assert!((action_reward(&only, &gold, &w) - 0.3).abs() < 1e-12);
        let wrong = obj(json!({"type": "click", "name": "search", "text": "red shoes"}));
        assert_eq!(action_reward(&wrong, &gold, &w), 0.0);
        // terminate has no sub-actions: the type is all.
        let t = obj(json!({"type": "terminate"}));
        assert!((action_reward(&t, &t, &w) - 0.3).abs() < 1e-12);
    }

    #[test]
    fn self_certainty_by_hand() {
        let ln = f64::ln;
        // p = (1/2, 1/4, 1/4): KL(U‖p) = ⅓[ln(2/3) + 2 ln(4/3)].
        let peaked = vec![ln(0.5), ln(0.25), ln(0.25)];
        let want = (ln(2.0 / 3.0) + 2.0 * ln(4.0 / 3.0)) / 3.0;
        assert!((self_certainty(std::slice::from_ref(&peaked)).unwrap() - want).abs() < 1e-12);
        // A uniform token: 0; the mean of the two.
        let flat = vec![ln(1.0 / 3.0); 3];
        let both = self_certainty(&[peaked.clone(), flat]).unwrap();
        assert!((both - want / 2.0).abs() < 1e-12);
        // Unnormalised top-k (mass 0.5 of the vocabulary): renormalised to (½, ¼, ¼).
        let part: Vec<f64> = [0.25, 0.125, 0.125].iter().map(|p: &f64| p.ln()).collect();
        assert!((self_certainty(&[part]).unwrap() - want).abs() < 1e-12);
        assert_eq!(self_certainty(&[]), None);
        assert_eq!(self_certainty(&[vec![]]), None);
    }
}
