//! The `code` reward component through a real server: a response's program runs against
//! the item's test cases in the sandbox; the value is the share passed and the per-case
//! results reach `/get_reward`'s `extra_logs`.

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn code_component_runs_programs_against_test_cases() {
    let mut r = start(config(
        "[server]\ndeadline_ms = 30000\n[[reward.components]]\nkind = \"code\"\ncpu_secs = 1\nwall_ms = 1500\n",
    ))
    .await;
    let cases = json!([
        {"input": "1 2\n", "output": "3\n"},
        {"input": "5 5\n", "output": "10\n"},
        {"input": "2 2\n", "output": "5\n"},
    ])
    .to_string();
    let add =
        "Sum the two numbers.\n```python\na, b = map(int, input().split())\nprint(a + b)\n```";
    let looping = "```python\nwhile True:\n    pass\n```";
    let body = json!({"items": [
        {"prompt": "", "response": add, "gold": cases},
        {"prompt": "", "response": looping, "gold": cases},
        {"prompt": "", "response": "no program", "gold": cases},
    ]});
    let (status, v) = status_and_json(r.post("/v1/rewards", &body).await).await;
    assert_eq!(status, 200, "{v}");
    let res = &v["results"];
    // cases 1 and 2 pass, case 3 expects a wrong sum
    let value = res[0]["components"]["code"].as_f64().unwrap();
    assert!((value - 2.0 / 3.0).abs() < 1e-9, "{v}");
    assert_eq!(res[0]["logs"]["code.case2"], 0.0);
    assert_eq!(res[1]["components"]["code"], 0.0);
    assert_eq!(res[1]["logs"]["code.timeout"], 3.0);
    assert_eq!(res[2]["logs"]["code.no_program"], 1.0);

    // OpenRLHF's route: the label is the cases' JSON text; per-case results in extra_logs
    let body = json!({
        "query": [add, looping],
        "prompts": ["", ""],
        "labels": [cases, cases],
    });
    let (status, v) = status_and_json(r.post("/get_reward", &body).await).await;
    assert_eq!(status, 200, "{v}");
    let logs = &v["extra_logs"];
    assert_eq!(logs["code.passed"], json!([2.0, 0.0]));
    assert_eq!(logs["code.cases"], json!([3.0, 3.0]));
    assert_eq!(logs["code.case0"], json!([1.0, 0.0]));
    assert_eq!(logs["code.timeout"], json!([0.0, 3.0]));
    assert_eq!(logs["no_answer"], json!([0.0, 0.0]));
    r.shutdown();
}
