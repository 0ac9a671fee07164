//! `stepwise reward`'s job and the server give the same rewards: a file scored offline
//! (`stepwise_jobs::reward::reward_file`) equals `/v1/rewards` on its ungrouped lines and
//! `/v1/group_rewards` on its group, with one configuration.

mod common;

use common::*;
use serde_json::json;
use stepwise_jobs::reward::{RewardLine, reward_file};
use stepwise_jobs::{Resume, RunOptions, Stop};
use stepwise_serve::config::Config;

#[tokio::test]
async fn the_offline_job_answers_what_the_server_answers() {
    let toml = "[reward]\npreset = \"deepseek-r1\"\n[sources.mc]\npreset = \"multiple-choice\"\n[[group.components]]\nkind = \"empo\"\n";
    let config = Config::from_toml(toml, "t").unwrap();
    let items = [
        json!({"prompt": "1+1?", "response": "<think>1+1=2</think> \\boxed{2}", "gold": "2"}),
        json!({"prompt": "x", "response": "<think>no</think> \\boxed{3}", "gold": "4"}),
        json!({"prompt": "pick", "response": "The answer is (B).", "gold": "B", "data_source": "mc"}),
        json!({"prompt": "", "response": "\\boxed{\\frac{1}{2}}", "gold": "0.5"}),
    ];
    let group = json!({"prompt": "g", "responses": ["<think>a</think> \\boxed{4}", "<think>b</think> \\boxed{4}", "<think>c</think> \\boxed{5}"], "gold": "4"});
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("samples.jsonl");
    let mut text = String::new();
    for it in &items {
        text.push_str(&format!("{it}\n"));
    }
    for r in group["responses"].as_array().unwrap() {
        text.push_str(&format!(
            "{}\n",
            json!({"prompt": "g", "response": r, "gold": "4", "group": 1})
        ));
    }
    std::fs::write(&input, text).unwrap();
    let out = dir.path().join("rewards.jsonl");
    let store = stepwise_store::SqliteStore::open(dir.path().join("runs.sqlite")).unwrap();
    let opts = RunOptions {
        resume: Resume::New,
        concurrency: 1,
        progress: false,
        stop: Stop::Never,
    };
    reward_file(&store, &input, config.rewards.clone(), false, &out, &opts)
        .await
        .unwrap();
    let lines: Vec<RewardLine> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();

    let mut server = start(config).await;
    let answer = server
        .post_value("/v1/rewards", &json!({ "items": items }))
        .await;
    let groups = server.post_value("/v1/group_rewards", &group).await;
    server.shutdown();
    let results = answer["results"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    for (i, want) in results.iter().enumerate() {
        let mut got = serde_json::to_value(lines[i].result.as_ref().unwrap()).unwrap();
        // the file's key set also holds the group's components (0 on ungrouped lines)
        assert_eq!(got["components"]["empo"], json!(0.0));
        got["components"].as_object_mut().unwrap().remove("empo");
        assert_eq!(&got, want, "line {}", i + 1);
    }
    let g = &groups["groups"][0];
    for k in 0..3 {
        let line = &lines[4 + k];
        let r = line.result.as_ref().unwrap();
        assert_eq!(json!(r.reward), g["rewards"][k], "group response {k}");
        for (name, values) in g["components"].as_object().unwrap() {
            assert_eq!(json!(r.components[name]), values[k], "{name} of {k}");
        }
        assert_eq!(
            r.components.len(),
            g["components"].as_object().unwrap().len()
        );
        assert_eq!(json!(line.cluster), g["clusters"][k]);
    }
    assert_eq!(json!(lines[4].semantic_entropy), g["semantic_entropy"]);
}
