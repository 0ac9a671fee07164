//! `/v1/step_rewards` through the real server: each step's character and byte span in
//! the item's text, and its `token_end` when the server has a tokenizer.

mod common;

use common::*;
use serde_json::{Value, json};
use stepwise_serve::config::Config;

/// A word-level tokenizer.json (whitespace pre-tokenizer: `\w+|[^\w\s]+`).
const WORD_LEVEL: &str = r#"{
  "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
  "normalizer": null, "pre_tokenizer": {"type": "Whitespace"},
  "post_processor": null, "decoder": null,
  "model": {"type": "WordLevel", "unk_token": "[UNK]",
            "vocab": {"[UNK]": 0, "3": 1, "+": 2, "4": 3, "=": 4, "7": 5}}
}"#;

fn spans(step: &Value) -> [Value; 5] {
    [
        "char_start",
        "char_end",
        "byte_start",
        "byte_end",
        "token_end",
    ]
    .map(|k| step[k].clone())
}

#[tokio::test]
async fn steps_carry_their_spans_and_token_ends() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokenizer.json");
    std::fs::write(&path, WORD_LEVEL).unwrap();
    let mut cfg = Config::default();
    cfg.server.tokenizer = Some(path);
    let mut r = start(cfg).await;
    // "3 + 4 = 7 ✓" is 11 chars, 13 bytes, 6 tokens ("✓" unknown); "\n\n"; then "7 ≠ 8"
    // (5 chars, 7 bytes) from char 13 / byte 15: tokens "7" "≠" "8" → 9.
    let body = json!({"items": [
        {"response": "3 + 4 = 7 ✓\n\n7 ≠ 8"},
        {"steps": ["3 + 4 = 7", "é"]},
    ]});
    let (status, v) = status_and_json(r.post("/v1/step_rewards", &body).await).await;
    assert_eq!(status, 200, "{v}");
    let a = &v["results"][0]["steps"];
    assert_eq!(spans(&a[0]), [0, 11, 0, 13, 6].map(|x| json!(x)), "{a}");
    assert_eq!(spans(&a[1]), [13, 18, 15, 22, 9].map(|x| json!(x)), "{a}");
    // pre-split steps: offsets over "3 + 4 = 7\n\né"
    let b = &v["results"][1]["steps"];
    assert_eq!(spans(&b[0]), [0, 9, 0, 9, 5].map(|x| json!(x)), "{b}");
    assert_eq!(spans(&b[1]), [11, 12, 11, 13, 6].map(|x| json!(x)), "{b}");
    r.shutdown();

    // no tokenizer: spans still, token_end absent (old clients see only additions)
    let mut r = start(Config::default()).await;
    let v = r.post_value("/v1/step_rewards", &body).await;
    let a = &v["results"][0]["steps"];
    assert_eq!(a[1]["char_start"], 13);
    assert!(a[1].get("token_end").is_none(), "{a}");
    let doc = r.get_value("/openapi.json").await;
    let props = &doc["components"]["schemas"]["StepScoreOut"]["properties"];
    for k in [
        "char_start",
        "char_end",
        "byte_start",
        "byte_end",
        "token_end",
    ] {
        assert!(props.get(k).is_some(), "{k} missing from {props}");
    }
    let required = doc["components"]["schemas"]["StepScoreOut"]["required"].to_string();
    assert!(!required.contains("token_end"), "{required}");
    r.shutdown();
}

#[tokio::test]
async fn a_tokenizer_that_does_not_load_stops_the_server_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.json");
    std::fs::write(&path, "{\"model\": 1}").unwrap();
    let mut cfg = Config::default();
    cfg.server.tokenizer = Some(path);
    let e = match stepwise_serve::Server::bind("127.0.0.1:0".parse().unwrap(), cfg).await {
        Ok(_) => panic!("a broken tokenizer was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("broken.json"), "{e}");
}
