//! The seed papers' components through a real server on `/v1/rewards` (and, for the
//! flags, `/get_reward`): cosine length and repetition (Demystifying Long CoT),
//! calibration (RLCR), ReasonRank, ReasonFlux-PRM, Shop-R1 and self-certainty. Each
//! expected value is computed by hand in the comment above it.

mod common;

use common::*;
use serde_json::json;

fn close(a: &serde_json::Value, b: f64) -> bool {
    a.as_f64().is_some_and(|a| (a - b).abs() < 1e-9)
}

#[tokio::test]
async fn cosine_length_and_repetition_over_http() {
    let mut r = start(config(
        "[[reward.components]]\nkind = \"cosine_length\"\nmax_len = 40\n[[reward.components]]\nkind = \"repetition\"\nngram = 2\npenalty = 0.5\n",
    ))
    .await;
    let long = "x y ".repeat(10) + "\\boxed{12}";
    let body = json!({"items": [
        // 20 chars of 40, right: (2 + 1)/2; wrong: (−10 + 0)/2.
        {"response": "so it is \\boxed{12}.", "gold": "12"},
        {"response": "so it is \\boxed{12}.", "gold": "13"},
        // 50 chars ≥ 40: −10; 21 words, 3 unique bigrams of 20: −0.5·(1 − 3/20).
        {"response": long, "gold": "12"},
    ]});
    let (status, v) = status_and_json(r.post("/v1/rewards", &body).await).await;
    assert_eq!(status, 200, "{v}");
    let res = &v["results"];
    assert!(close(&res[0]["components"]["cosine_length"], 1.5), "{v}");
    assert!(close(&res[1]["components"]["cosine_length"], -5.0), "{v}");
    assert!(close(&res[2]["components"]["cosine_length"], -10.0), "{v}");
    let rep = -0.5 * (1.0 - 3.0 / 20.0);
    assert!(close(&res[2]["components"]["repetition"], rep), "{v}");
    assert!(close(&res[2]["reward"], -10.0 + rep), "{v}");
    r.shutdown();
}

#[tokio::test]
async fn calibration_over_http_and_its_flag_in_extra_logs() {
    let mut r = start(config("[[reward.components]]\nkind = \"calibration\"\n")).await;
    let body = json!({"items": [
        // Right at 0.8: 1 − 0.2²; wrong at 80%: −0.8²; abstention: 0; no confidence: −1.
        {"response": "<answer>4</answer><confidence>0.8</confidence>", "gold": "4"},
        {"response": "<answer>5</answer>\nConfidence: 80%", "gold": "4"},
        {"response": "<answer>I don't know</answer>", "gold": "4"},
        {"response": "<answer>4</answer>", "gold": "4"},
    ]});
    let (status, v) = status_and_json(r.post("/v1/rewards", &body).await).await;
    assert_eq!(status, 200, "{v}");
    let res = &v["results"];
    for (i, want) in [0.96, -0.64, 0.0, -1.0].into_iter().enumerate() {
        assert!(close(&res[i]["reward"], want), "item {i}: {v}");
    }
    assert_eq!(res[0]["flags"]["confidence_unparsed"], false, "{v}");
    assert_eq!(res[3]["flags"]["confidence_unparsed"], true, "{v}");
    // OpenRLHF's shape: the flag is an extra_logs key with one 0/1 per query.
    let q = "<answer>4</answer>";
    let body = json!({"query": [q, format!("{q}<confidence>1</confidence>")], "prompts": ["", ""], "labels": [4, 4]});
    let (status, v) = status_and_json(r.post("/get_reward", &body).await).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["rewards"], json!([-1.0, 1.0]));
    assert_eq!(v["extra_logs"]["confidence_unparsed"], json!([1.0, 0.0]));
    r.shutdown();
}

#[tokio::test]
async fn reason_rank_over_http() {
    let mut r = start(config("[[reward.components]]\nkind = \"reason_rank\"\n")).await;
    let gold = json!({"ranking": [1, 2, 3], "relevant": [1, 2]}).to_string();
    let body = json!({"items": [
        // NDCG@10 = 1.5 / (1 + 1/log2 3), Recall@10 = 1, RBO = (0 + ½ + 1)/3.
        {"response": "<think>2 first</think><answer>[2] > [3] > [1]</answer>", "gold": gold},
        // The gold order: 1 + 0.2 + 0.1.
        {"response": "<answer>[1] > [2] > [3]</answer>", "gold": "[1] > [2] > [3]"},
        // Not a ranking: −1 and the flag.
        {"response": "<answer>the second one</answer>", "gold": gold},
    ]});
    let (status, v) = status_and_json(r.post("/v1/rewards", &body).await).await;
    assert_eq!(status, 200, "{v}");
    let res = &v["results"];
    let want = 1.5 / (1.0 + 1.0 / 3f64.log2()) + 0.2 + 0.1 * 0.5;
    assert!(close(&res[0]["reward"], want), "{v}");
    assert!(close(&res[1]["reward"], 1.3), "{v}");
    assert!(close(&res[2]["reward"], -1.0), "{v}");
    assert_eq!(res[2]["flags"]["ranking_unparsed"], true, "{v}");
    r.shutdown();
}

#[tokio::test]
async fn reason_flux_over_http() {
    let mut r = start(config("[[reward.components]]\nkind = \"reason_flux\"\n")).await;
    let body = json!({"items": [
        // Trajectory: right (1), wrong (0), no claim (0.5) → mean 0.5; response: right
        // (1) and no claim (0.5) → min 0.5; α = 1: 1.0.
        {"response": "<think>3 + 4 = 7\n\n7 * 2 = 15\n\nhmm</think>3 + 4 = 7\n\nSo \\boxed{14}", "gold": "14"},
        {"response": "3 + 4 = 7", "gold": "7"},
    ]});
    let (status, v) = status_and_json(r.post("/v1/rewards", &body).await).await;
    assert_eq!(status, 200, "{v}");
    assert!(close(&v["results"][0]["reward"], 1.0), "{v}");
    assert!(close(&v["results"][1]["reward"], 0.0), "{v}");
    assert_eq!(v["results"][1]["flags"]["no_thinking"], true, "{v}");
    r.shutdown();
}

#[tokio::test]
async fn shop_action_and_self_certainty_over_http() {
    let mut r = start(config(
        "[[reward.components]]\nkind = \"shop_action\"\n[[reward.components]]\nkind = \"self_certainty\"\n",
    ))
    .await;
    let gold =
        json!({"type": "type_and_submit", "name": "search", "text": "red shoes"}).to_string();
    let resp = json!({"rationale": "I need shoes", "action": {"type": "type_and_submit", "name": "search", "text": "red running shoes"}}).to_string();
    let lp = vec![vec![0.5f64.ln(), 0.25f64.ln(), 0.25f64.ln()]];
    let body = json!({"items": [
        // Type 0.3 + name (0.2 + 0.5) + text (0.2 + 0.5 · ROUGE-L 0.8) = 1.6; self-certainty
        // of one token (½, ¼, ¼): ⅓[ln(2/3) + 2 ln(4/3)].
        {"response": resp, "gold": gold, "logprobs": lp},
        // No logprobs: self-certainty 0 and the flag.
        {"response": resp, "gold": gold},
    ]});
    let (status, v) = status_and_json(r.post("/v1/rewards", &body).await).await;
    assert_eq!(status, 200, "{v}");
    let sc = ((2.0f64 / 3.0).ln() + 2.0 * (4.0f64 / 3.0).ln()) / 3.0;
    let res = &v["results"];
    assert!(close(&res[0]["components"]["shop_action"], 1.6), "{v}");
    assert!(close(&res[0]["components"]["self_certainty"], sc), "{v}");
    assert!(close(&res[0]["reward"], 1.6 + sc), "{v}");
    assert_eq!(res[0]["flags"]["no_logprobs"], false, "{v}");
    assert_eq!(res[1]["flags"]["no_logprobs"], true, "{v}");
    // A log-probability above 0 is refused, the field named.
    let bad = json!({"items": [{"response": resp, "gold": gold, "logprobs": [[-0.1], [0.5]]}]});
    let (status, v) = status_and_json(r.post("/v1/rewards", &bad).await).await;
    assert_eq!(status, 422, "{v}");
    assert!(error_message(&v).contains("items[0].logprobs[1][0]"), "{v}");
    r.shutdown();
}
