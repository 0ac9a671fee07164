//! The real server on a loopback port: every endpoint, auth, limits, bad input,
//! hostile LaTeX, backpressure and graceful shutdown.

mod common;

use common::*;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use stepwise_serve::config::Config;

const PROMPT: &str = "<|im_start|>user\nWhat is 3+4?<|im_end|>\n<|im_start|>assistant\n";

#[tokio::test]
async fn get_reward_speaks_openrlhf() {
    let mut r = start(Config::default()).await;
    let responses = [
        "<think>3+4=7</think>\nThe answer is $\\boxed{7}$.",
        "<think>3+4=8</think>\nThe answer is $\\boxed{8}$.",
        "The answer is $\\boxed{7}$.",
        "<think>hmm</think> no idea",
    ];
    let body = json!({
        "query": responses.iter().map(|x| format!("{PROMPT}{x}")).collect::<Vec<_>>(),
        "prompts": [PROMPT, PROMPT, PROMPT, PROMPT],
        "labels": ["7", "7", "7", "7"],
    });
    let (status, v) = status_and_json(r.post("/get_reward", &body).await).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["rewards"], json!([2.0, 1.0, 1.0, 0.0]));
    assert_eq!(v["scores"], v["rewards"]);
    let logs = &v["extra_logs"];
    assert_eq!(logs["accuracy"], json!([1.0, 0.0, 1.0, 0.0]));
    assert_eq!(logs["format"], json!([1.0, 1.0, 0.0, 0.0]));
    assert_eq!(logs["no_answer"], json!([0.0, 0.0, 0.0, 1.0]));
    assert_eq!(logs["timed_out"], json!([0.0, 0.0, 0.0, 0.0]));
    assert_eq!(logs["prompt_mismatch"], json!([0.0, 0.0, 0.0, 0.0]));
    r.shutdown();
}

#[tokio::test]
async fn prompt_mismatch_is_flagged_or_rejected() {
    let mut r = start(Config::default()).await;
    // the trainer's decoded query lost the BOS token: the prompt occurs inside it
    let body = json!({
        "query": [format!("<s>{PROMPT}<think>x</think>\\boxed{{7}}"), "no prompt here \\boxed{7}"],
        "prompts": [format!("<bos>{PROMPT}"), PROMPT],
        "labels": ["7", "7"],
    });
    let v = r.post_value("/get_reward", &body).await;
    assert_eq!(v["extra_logs"]["prompt_mismatch"], json!([1.0, 1.0]));
    assert_eq!(v["extra_logs"]["accuracy"], json!([1.0, 1.0]));
    r.shutdown();

    let mut r = start(config("[server]\nprompt_mismatch = \"reject\"")).await;
    let body = json!({
        "query": [format!("{PROMPT}\\boxed{{7}}"), "other \\boxed{7}"],
        "prompts": [PROMPT, PROMPT],
        "labels": ["7", "7"],
    });
    let (status, v) = status_and_json(r.post("/get_reward", &body).await).await;
    assert_eq!(status, 422, "{v}");
    assert!(error_message(&v).contains("query[1]"), "{v}");
    r.shutdown();
}

#[tokio::test]
async fn rewards_route_by_data_source() {
    let mut r = start(config("[reward]\npreset = \"deepseek-r1\"\n[sources.gsm8k]\npreset = \"gsm8k\"\n[sources.mc]\npreset = \"multiple-choice\"")).await;
    let body = json!({"items": [
        {"prompt": "", "response": "<think>a</think>\\boxed{\\frac{1}{2}}", "gold": "0.5"},
        {"prompt": "", "response": "6 * 2 = 12\n#### 1,200", "gold": "1200", "data_source": "gsm8k"},
        {"prompt": "", "response": "\\boxed{1200}", "gold": "1200", "data_source": "gsm8k"},
        {"prompt": "", "response": "The answer is (C).", "gold": "C", "data_source": "mc"},
        {"prompt": "", "response": "<think>a</think>\\boxed{2}", "gold": "2", "data_source": "unknown/source"},
    ]});
    let (status, v) = status_and_json(r.post("/v1/rewards", &body).await).await;
    assert_eq!(status, 200, "{v}");
    let res = v["results"].as_array().unwrap();
    let rewards: Vec<f64> = res.iter().map(|x| x["reward"].as_f64().unwrap()).collect();
    assert_eq!(rewards, [2.0, 1.0, 0.0, 1.0, 2.0]);
    assert_eq!(res[0]["components"]["accuracy"], 1.0);
    assert_eq!(res[0]["answer"], "\\frac{1}{2}");
    assert_eq!(res[1]["answer"], "1200");
    assert_eq!(res[3]["components"]["choice"], 1.0);
    assert_eq!(res[0]["timed_out"], false);
    r.shutdown();
}

#[tokio::test]
async fn verify_pairs() {
    let mut r = start(Config::default()).await;
    let body = json!({"pairs": [
        {"gold": "\\frac{1}{2}", "pred": "0.5"},
        {"gold": "3", "pred": "4"},
        {"gold": "x^2", "pred": "x\\cdot x"},
    ]});
    let v = r.post_value("/v1/verify", &body).await;
    let verdicts: Vec<&str> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(verdicts[..2], ["equal", "not_equal"]);
    assert!(["equal", "undecided", "not_equal"].contains(&verdicts[2]));
    let body = json!({"extract": true, "pairs": [{"gold": "7", "pred": "so 3+4 = 7, the answer is \\boxed{7}."}]});
    let v = r.post_value("/v1/verify", &body).await;
    assert_eq!(v["results"][0]["verdict"], "equal");
    assert_eq!(v["results"][0]["pred_answer"], "7");
    r.shutdown();
}

#[tokio::test]
async fn health_metrics_openapi() {
    let mut r = start(Config::default()).await;
    let h = r.get_value("/health").await;
    assert_eq!(h["status"], "ok");
    assert_eq!(h["reward"], "deepseek-r1");
    assert_eq!(h["in_flight"], 0);
    r.post(
        "/v1/verify",
        &json!({"pairs": [{"gold": "1", "pred": "1"}, {"gold": "1", "pred": "2"}]}),
    )
    .await;
    r.post_raw("/v1/verify", "{").await;
    let m = r.get("/metrics").await;
    assert!(
        m.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let m = m.text().await.unwrap();
    assert!(
        m.contains("stepwise_http_requests_total{endpoint=\"/v1/verify\",status=\"200\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("stepwise_http_requests_total{endpoint=\"/v1/verify\",status=\"400\"} 1"),
        "{m}"
    );
    assert!(m.contains("stepwise_verdicts_total{verdict=\"equal\"} 1"));
    assert!(m.contains("stepwise_verdicts_total{verdict=\"not_equal\"} 1"));
    assert!(m.contains(
        "stepwise_http_request_duration_seconds_bucket{endpoint=\"/v1/verify\",le=\"+Inf\"} 2"
    ));
    let doc = r.get_value("/openapi.json").await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    // the served document is the one derived from the types (whose routes a unit test checks)
    assert_eq!(
        doc,
        serde_json::to_value(<stepwise_serve::ApiDoc as utoipa::OpenApi>::openapi()).unwrap()
    );
    let (status, v) = status_and_json(r.get("/nope").await).await;
    assert_eq!(status, 404);
    assert_eq!(v["error"]["code"], "not_found");
    r.shutdown();
}

#[tokio::test]
async fn bearer_auth() {
    let mut r = start(config("[server]\nauth_token = \"s3cret\"")).await;
    let body = json!({"pairs": [{"gold": "1", "pred": "1"}]});
    let no = r.post("/v1/verify", &body).await;
    assert_eq!(no.status(), 401);
    assert_eq!(no.headers()["www-authenticate"], "Bearer");
    let v: Value = no.json().await.unwrap();
    assert_eq!(v["error"]["code"], "unauthorized");
    let with_token = |token: &'static str, path: &str| {
        let req = if path == "/metrics" {
            r.client.get(r.url(path))
        } else {
            r.client.post(r.url(path)).json(&body)
        };
        async move { req.bearer_auth(token).send().await.unwrap().status() }
    };
    assert_eq!(with_token("s3creT", "/v1/verify").await, 401);
    assert_eq!(with_token("s3cret", "/v1/verify").await, 200);
    // the scheme name is case-insensitive (RFC 7235 §2.1); the token is not
    for auth in ["bearer s3cret", "BEARER s3cret", "BeArEr s3cret"] {
        let resp = r
            .client
            .post(r.url("/v1/verify"))
            .header("authorization", auth)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{auth}");
    }
    let resp = r
        .client
        .post(r.url("/v1/verify"))
        .header("authorization", "bearer S3CRET")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(r.get("/health").await.status(), 200);
    assert_eq!(r.get("/openapi.json").await.status(), 200);
    assert_eq!(r.get("/metrics").await.status(), 401);
    assert_eq!(with_token("s3cret", "/metrics").await, 200);
    r.shutdown();
}

#[tokio::test]
async fn bad_input_gets_clear_errors() {
    let mut r = start(config("[server]\nmax_body_bytes = 2048\nmax_items = 3")).await;
    let pairs: Vec<Value> = (0..4).map(|_| json!({"gold": "1", "pred": "1"})).collect();
    // (path, body, status, substring of the error code or message)
    let cases: Vec<(&str, String, u16, &str)> = vec![
        (
            "/v1/verify",
            json!({"pairs": [{"gold": "1", "pred": "1".repeat(4096)}]}).to_string(),
            413,
            "payload_too_large",
        ),
        ("/get_reward", "{\"query\": [".into(), 400, "malformed JSON"),
        (
            "/get_reward",
            json!({"query": ["a"], "prompts": [""]}).to_string(),
            422,
            "labels",
        ),
        (
            "/v1/rewards",
            json!({"items": [{"response": 5, "gold": "1"}]}).to_string(),
            422,
            "invalid request body",
        ),
        (
            "/get_reward",
            json!({"query": ["a", "b"], "prompts": [""], "labels": ["1"]}).to_string(),
            422,
            "same length",
        ),
        (
            "/v1/verify",
            json!({ "pairs": pairs }).to_string(),
            422,
            "max_items",
        ),
    ];
    for (path, body, want, says) in cases {
        let (status, v) = status_and_json(r.post_raw(path, body).await).await;
        assert_eq!(status, want, "{path}: {v}");
        let code = v["error"]["code"].as_str().unwrap_or_default();
        assert!(
            code == says || error_message(&v).contains(says),
            "{path}: {v}"
        );
    }
    // not JSON
    let resp = r
        .client
        .post(r.url("/v1/verify"))
        .header("content-type", "text/plain")
        .body("hi")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 415);
    // wrong method
    assert_eq!(r.get("/v1/verify").await.status(), 405);
    // the server still works
    let resp = r
        .post(
            "/v1/verify",
            &json!({"pairs": [{"gold": "1", "pred": "1"}]}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    r.shutdown();
}

fn hostile() -> Vec<String> {
    let mut v = vec![
        format!("\\boxed{{{}1{}}}", "{".repeat(20_000), "}".repeat(20_000)),
        format!(
            "\\boxed{{{}}}",
            "\\frac{1}{".repeat(3000) + "2" + &"}".repeat(3000)
        ),
        "\\boxed{10^{10^{10^{10^{10^{10}}}}}}".to_string(),
        "\\boxed{9^{9^{9^{9^{9}}}} - 9^{9^{9^{9^{9}}}}}".to_string(),
        format!("\\boxed{{{}}}", "\\left(".repeat(50_000)),
        "\\boxed{".repeat(10_000),
        format!("\\boxed{{{}}}", "x+".repeat(40_000) + "x"),
        format!(
            "\\boxed{{\\sqrt{{{}}}}}",
            "\\sqrt{".repeat(5000) + "2" + &"}".repeat(5000)
        ),
        "\\boxed{\\begin{pmatrix}".to_string() + &"1&".repeat(10_000) + "\\end{pmatrix}}",
        "\\boxed{\\int_0^\\infty e^{-x^{x^{x}}}dx}".to_string(),
        "\\boxed{100000000000000000000000000000000000000!}".to_string(),
        "\u{0}\u{202e}\\boxed{\u{feff}7\u{0}}".to_string(),
        "<think>".repeat(10_000) + "</think>",
        "é".repeat(100_000),
    ];
    v.push(format!("\\boxed{{{}}}", "1/".repeat(30_000) + "1"));
    v
}

#[tokio::test]
async fn hostile_latex_answers_within_the_deadline() {
    let mut r = start(config("[server]\ndeadline_ms = 3000")).await;
    let items: Vec<Value> = hostile()
        .into_iter()
        .map(|resp| json!({"prompt": "", "response": resp, "gold": "\\frac{1}{2}"}))
        .collect();
    let n = items.len();
    let started = Instant::now();
    let resp = r.post("/v1/rewards", &json!({ "items": items })).await;
    let took = started.elapsed();
    assert_eq!(resp.status(), 200);
    assert!(took < Duration::from_millis(4500), "took {took:?}");
    let v: Value = resp.json().await.unwrap();
    let res = v["results"].as_array().unwrap();
    assert_eq!(res.len(), n);
    for x in res {
        assert!(x["reward"].as_f64().unwrap().is_finite());
        assert!(x["reward"].as_f64().unwrap() <= 1.0, "{x}");
    }
    // pairs too, as gold and as pred
    let pairs: Vec<Value> = hostile()
        .into_iter()
        .flat_map(|h| {
            [
                json!({"gold": h.clone(), "pred": "1"}),
                json!({"gold": "1", "pred": h}),
            ]
        })
        .collect();
    let started = Instant::now();
    let resp = r
        .post("/v1/verify", &json!({ "pairs": pairs, "extract": true }))
        .await;
    assert_eq!(resp.status(), 200);
    assert!(started.elapsed() < Duration::from_millis(4500));
    // still healthy, and a normal request is fast
    let started = Instant::now();
    let v = r
        .post_value(
            "/v1/verify",
            &json!({"pairs": [{"gold": "2", "pred": "2"}]}),
        )
        .await;
    assert_eq!(v["results"][0]["verdict"], "equal");
    assert!(started.elapsed() < Duration::from_secs(2));
    r.shutdown();
}

#[tokio::test]
async fn deadline_gives_the_fallback_per_item() {
    let mut r = start(config(
        "[server]\ndeadline_ms = 1\ntimeout_reward = -0.5\nmax_items = 100000",
    ))
    .await;
    let items: Vec<Value> = (0..30_000)
        .map(|i| json!({"response": format!("<think>{i}</think> so $\\boxed{{\\frac{{{i}}}{{2}}}}$"), "gold": format!("{}", i as f64 / 2.0)}))
        .collect();
    let (status, v) =
        status_and_json(r.post("/v1/rewards", &json!({ "items": items })).await).await;
    assert_eq!(status, 200, "{v}");
    let res = v["results"].as_array().unwrap();
    assert_eq!(res.len(), 30_000);
    let timed: Vec<&Value> = res.iter().filter(|x| x["timed_out"] == true).collect();
    assert!(!timed.is_empty(), "a 1 ms deadline cut nothing off");
    for x in &timed {
        assert_eq!(x["reward"], -0.5);
    }
    for x in res.iter().filter(|x| x["timed_out"] == false) {
        assert_eq!(x["reward"], 2.0, "{x}");
    }
    let m = r.get_text("/metrics").await;
    assert!(
        m.contains(&format!("stepwise_items_timed_out_total {}", timed.len())),
        "{m}"
    );
    r.shutdown();
}

/// A body still arriving holds no scoring slot: with one slot, a second client is
/// served while the first is still sending (503 past max_concurrency is checked on the
/// router in `app`'s tests, where the slots can be held by hand).
#[tokio::test]
async fn a_body_being_received_holds_no_scoring_slot() {
    let mut r = start(config("[server]\nmax_concurrency = 1")).await;
    let body = json!({"pairs": [{"gold": "1", "pred": "1"}]}).to_string();
    let held = open_request(r.addr, "/v1/verify", &body, 5).await;
    wait_requests_received(&r, 1.0, None).await;
    let resp = r.post_raw("/v1/verify", body.clone()).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(r.get_value("/health").await["in_flight"], 0);
    let (status, text) = finish_request(held, &body, 5).await;
    assert_eq!(status, 200, "{text}");
    r.shutdown();
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_requests() {
    let mut r = start(Config::default()).await;
    let body = json!({"query": [format!("{PROMPT}<think>x</think>\\boxed{{7}}")], "prompts": [PROMPT], "labels": ["7"]}).to_string();
    let held = open_request(r.addr, "/get_reward", &body, 10).await;
    wait_requests_received(&r, 1.0, None).await;
    r.shutdown();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !r.handle.is_finished(),
        "server stopped with a request in flight"
    );
    // new connections are no longer accepted
    let refused = tokio::net::TcpStream::connect(r.addr).await;
    assert!(refused.is_err(), "listener still open after shutdown");
    let (status, text) = finish_request(held, &body, 10).await;
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["rewards"], json!([2.0]));
    let done = tokio::time::timeout(Duration::from_secs(10), &mut r.handle).await;
    assert!(matches!(done, Ok(Ok(Ok(())))), "{done:?}");
}

#[tokio::test]
async fn step_rewards_score_each_step() {
    let mut r = start(Config::default()).await;
    let body = json!({"items": [
        {"prompt": "What is (3+4)*2?", "response": "3 + 4 = 7\n\n7 * 2 = 15\n\nSo the answer is \\boxed{15}.", "gold": "14"},
        {"steps": ["3 + 4 = 7", "7 * 2 = 14", "The answer is 14."], "gold": "14"},
    ]});
    let (status, v) = status_and_json(r.post("/v1/step_rewards", &body).await).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["scorer"], "arith");
    assert_eq!(v["aggregation"], "min");
    let a = &v["results"][0];
    assert_eq!(a["steps"].as_array().unwrap().len(), 3);
    assert_eq!(a["steps"][0]["score"], 1.0);
    assert!(a["steps"][1]["score"].as_f64().unwrap() < 0.5, "{a}");
    assert!(a["steps"][1]["detail"].as_str().unwrap().contains("wrong"));
    assert_eq!(a["answer"], "15");
    let b = &v["results"][1];
    assert_eq!(b["steps"][1]["score"], 1.0);
    assert!(b["aggregate"].as_f64().unwrap() > a["aggregate"].as_f64().unwrap());
    // outcome scorer uses the gold answer
    let body2 = json!({"scorer": "arith*outcome", "aggregation": "last", "items": body["items"]});
    let v = r.post_value("/v1/step_rewards", &body2).await;
    assert_eq!(v["results"][0]["aggregate"], 0.0);
    assert!(v["results"][1]["aggregate"].as_f64().unwrap() > 0.0);
    // model scorers, scorers that call servers and missing gold are refused with a reason
    for (bad, want) in [
        (
            json!({"scorer": "judge", "items": [{"response": "1 = 1"}]}),
            "needs a model",
        ),
        (
            json!({"scorer": "prm:http://127.0.0.1:9", "items": [{"response": "1 = 1"}]}),
            "calls other servers",
        ),
        (
            json!({"scorer": "outcome", "items": [{"response": "1 = 1"}]}),
            "gold",
        ),
        (
            json!({"items": [{"gold": "1"}]}),
            "neither response nor steps",
        ),
        (
            json!({"aggregation": "median", "items": [{"response": "1"}]}),
            "aggregation",
        ),
    ] {
        let resp = r.post("/v1/step_rewards", &bad).await;
        assert_eq!(resp.status(), 422);
        let v: Value = resp.json().await.unwrap();
        assert!(
            v["error"]["message"].as_str().unwrap().contains(want),
            "{v}"
        );
    }
    r.shutdown();
}

#[tokio::test]
async fn step_rewards_cap_steps_per_item_and_per_request() {
    let mut r = start(config(
        "[server]\nmax_steps_per_item = 4\nmax_steps_per_request = 6",
    ))
    .await;
    let steps = |k: usize| {
        (0..k)
            .map(|i| format!("{i} + 1 = {}", i + 1))
            .collect::<Vec<_>>()
    };
    let text = |k: usize| steps(k).join("\n\n");
    // (body, substring of the 413's message)
    for (body, want) in [
        (
            json!({"items": [{"steps": steps(5)}]}),
            "max_steps_per_item is 4",
        ),
        (
            json!({"items": [{"steps": steps(1)}, {"response": text(5)}]}),
            "items[1] has 5 steps; the server's max_steps_per_item is 4",
        ),
        (
            json!({"items": [{"steps": steps(4)}, {"steps": steps(3)}]}),
            "max_steps_per_request is 6",
        ),
        (
            json!({"items": [{"steps": steps(4)}, {"response": text(3)}]}),
            "7 steps in one request; the server's max_steps_per_request is 6",
        ),
    ] {
        let (status, v) = status_and_json(r.post("/v1/step_rewards", &body).await).await;
        assert_eq!(status, 413, "{body}: {v}");
        assert_eq!(v["error"]["code"], "too_many_steps", "{v}");
        assert!(error_message(&v).contains(want), "{v}");
    }
    // at the caps: every step scored
    let body = json!({"items": [{"steps": steps(4)}, {"response": text(2)}]});
    let (status, v) = status_and_json(r.post("/v1/step_rewards", &body).await).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["results"][0]["steps"].as_array().unwrap().len(), 4);
    assert_eq!(v["results"][1]["steps"].as_array().unwrap().len(), 2);
    r.shutdown();
}

#[tokio::test]
async fn step_rewards_past_the_deadline_are_timed_out() {
    let mut r = start(config("[server]\ndeadline_ms = 1\nworkers = 1")).await;
    let steps: Vec<String> = (0..1000).map(|i| format!("{i} * 3 = {}", i * 3)).collect();
    let items: Vec<Value> = (0..16).map(|_| json!({ "steps": steps })).collect();
    let body = json!({ "items": items });
    let sent = body.to_string().len();
    let resp = r.post("/v1/step_rewards", &body).await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let res = v["results"].as_array().unwrap();
    assert_eq!(res.len(), 16);
    let timed_out = res.iter().filter(|x| x["timed_out"] == true).count();
    assert!(timed_out > 0, "a 1 ms deadline cut nothing off");
    for x in res.iter().filter(|x| x["timed_out"] == true) {
        assert_eq!(x["steps"], json!([]), "{x}");
    }
    // the answer is bounded by the request: at most every step with a short reason
    assert!(
        text.len() < 4 * sent,
        "{} byte answer to {sent} bytes",
        text.len()
    );
    r.shutdown();
}
