//! Rewards v2 through a real server: group rewards (EMPO, Trust-GRPO, difficulty) on
//! `/v1/group_rewards`, and the instruction (RAIF / ReasonIF) component on `/v1/rewards`.

mod common;

use common::*;
use serde_json::json;

const GROUPS: &str = r#"
[[reward.components]]
kind = "accuracy"
[[group.components]]
kind = "empo"
[[group.components]]
kind = "trust_grpo"
alpha = 0.5
total_steps = 100
[[group.components]]
kind = "difficulty"
weight = 0
beta = 2.0
"#;

#[tokio::test]
async fn group_rewards_compute_empo_trust_and_difficulty() {
    let mut r = start(config(GROUPS)).await;
    let group = json!({
        "prompt": "What is 2+2?",
        "responses": [
            "<think>2 + 2 = 5</think>\\boxed{4}",
            "<think>so it is four</think>\\boxed{4}",
            "<think>2 + 2 = 4</think>\\boxed{3}"
        ],
        "gold": "4",
        "step": 50
    });
    let (status, v) = status_and_json(r.post("/v1/group_rewards", &group).await).await;
    assert_eq!(status, 200, "{v}");
    let g = &v["groups"][0];
    // EMPO: clusters {0, 1} and {2}: shares 2/3, 2/3, 1/3.
    assert_eq!(g["clusters"], json!([0, 0, 1]));
    let empo: Vec<f64> = serde_json::from_value(g["components"]["empo"].clone()).unwrap();
    assert_eq!(empo, [2.0 / 3.0, 2.0 / 3.0, 1.0 / 3.0]);
    let h = -(2.0f64 / 3.0 * (2.0f64 / 3.0).ln() + 1.0 / 3.0 * (1.0f64 / 3.0).ln());
    assert!((g["semantic_entropy"].as_f64().unwrap() - h).abs() < 1e-12);
    // Trust-GRPO: thinking 0, 0.5, 1; correct 0 and 1: γ = e^(0.25 − 1), annealed at
    // step 50 of 100 with α = 0.5.
    let gamma = (0.25f64 - 1.0).exp();
    assert!((g["trust_weight"].as_f64().unwrap() - gamma).abs() < 1e-12);
    let f = gamma * 0.5 * (-0.5f64).exp();
    // Difficulty: accuracy 1, 1, 0 → d = 1/3, β = 2: 5/3, 5/3, 0 (weight 0: logged only).
    let diff: Vec<f64> = serde_json::from_value(g["components"]["difficulty"].clone()).unwrap();
    assert!(
        (diff[0] - 5.0 / 3.0).abs() < 1e-12 && diff[2] == 0.0,
        "{diff:?}"
    );
    let rewards: Vec<f64> = serde_json::from_value(g["rewards"].clone()).unwrap();
    let want = [1.0 + 2.0 / 3.0, 1.0 + 2.0 / 3.0 + 0.5 * f, 1.0 / 3.0 + f];
    for (got, want) in rewards.iter().zip(want) {
        assert!((got - want).abs() < 1e-12, "{rewards:?} vs {want:?}");
    }
    // A list of groups, one of them empty: one result each, the empty one empty.
    let many = json!({"groups": [group, {"responses": []}]});
    let (status, v) = status_and_json(r.post("/v1/group_rewards", &many).await).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["groups"].as_array().unwrap().len(), 2);
    assert_eq!(v["groups"][1]["rewards"], json!([]));
    // Malformed: 422 naming the problem.
    let (status, _) = status_and_json(r.post("/v1/group_rewards", &json!({"x": 1})).await).await;
    assert_eq!(status, 422);
    // The error names the wrong field, in one group and inside a list of groups.
    let (status, v) = status_and_json(
        r.post("/v1/group_rewards", &json!({"responses": "x"}))
            .await,
    )
    .await;
    assert_eq!(status, 422, "{v}");
    let msg = v["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("responses: invalid type"), "{v}");
    let bad = json!({"groups": [group, {"responses": ["a", 7]}]});
    let (status, v) = status_and_json(r.post("/v1/group_rewards", &bad).await).await;
    assert_eq!(status, 422, "{v}");
    let msg = v["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("groups[1].responses[1]: invalid type"), "{v}");
    r.shutdown();
}

#[tokio::test]
async fn instruction_components_score_response_and_reasoning() {
    let mut r = start(config(
        "[[reward.components]]\nkind = \"instructions\"\n[[reward.components]]\nkind = \"instructions\"\ntarget = \"reasoning\"\nmode = \"loose\"\n",
    ))
    .await;
    let gold = json!({
        "instruction_id_list": ["punctuation:no_comma", "startend:quotation"],
        "kwargs": [{}, {}]
    })
    .to_string();
    let body = json!({"items": [
        {"prompt": "", "response": "<think>\"plan, then write\"</think>\"no commas here\"", "gold": gold},
    ]});
    let (status, v) = status_and_json(r.post("/v1/rewards", &body).await).await;
    assert_eq!(status, 200, "{v}");
    let c = &v["results"][0]["components"];
    assert_eq!(c["instructions"], 1.0);
    assert_eq!(c["reasoning_instructions"], 0.5, "quoted but with a comma");
    r.shutdown();
}

/// OpenRLHF's realities: extra URLs get empty lists (answered with empty lists), and
/// labels come raw (numbers, lists = any of, null = no gold, flagged `no_gold`); every
/// component key is on every item.
#[tokio::test]
async fn get_reward_takes_empty_lists_and_raw_labels() {
    let mut r = start(config("[reward]\npreset = \"deepseek-r1\"\n")).await;
    let empty = json!({"query": [], "prompts": [], "labels": []});
    let (status, v) = status_and_json(r.post("/get_reward", &empty).await).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["rewards"], json!([]));
    assert_eq!(v["extra_logs"]["accuracy"], json!([]));
    let resp = "<think>x</think>\\boxed{7}";
    let body = json!({
        "query": [resp, resp, resp, resp],
        "prompts": ["", "", "", ""],
        "labels": [7, ["6", 7], null, "8"],
    });
    let (status, v) = status_and_json(r.post("/get_reward", &body).await).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["rewards"], json!([2.0, 2.0, 1.0, 1.0]));
    assert_eq!(v["extra_logs"]["no_gold"], json!([0.0, 0.0, 1.0, 0.0]));
    assert_eq!(v["extra_logs"]["accuracy"], json!([1.0, 1.0, 0.0, 0.0]));
    assert_eq!(v["extra_logs"]["undecided"], json!([0.0, 0.0, 0.0, 0.0]));
    r.shutdown();
}
