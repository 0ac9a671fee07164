//! Model-backed reward components and model scorers through the server: a gated model
//! (it answers only when the test opens its gate) shows the requests' model calls
//! reaching the backend together, the model queue's 503 past `max_model_requests`, and
//! the model's token cost in `extra_logs`.

mod common;

use common::*;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use stepwise_model::{
    Completion, EngineError, GenerateRequest, Generator, NextTokenLogprobs, Prompt,
};
use stepwise_score::{ScorerComponents, ScorerSettings};

/// A judge whose verdict (P(Yes) = 0.8, 10 prompt tokens a call) waits for the gate.
struct Gated {
    gate: tokio::sync::Semaphore,
    waiting: AtomicU64,
    calls: AtomicU64,
}

impl Gated {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            gate: tokio::sync::Semaphore::new(0),
            waiting: AtomicU64::new(0),
            calls: AtomicU64::new(0),
        })
    }

    /// Waits until `n` calls wait at the gate.
    async fn until_waiting(&self, n: u64) {
        for _ in 0..2000 {
            if self.waiting.load(Ordering::SeqCst) >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!(
            "{} calls at the gate, not {n}",
            self.waiting.load(Ordering::SeqCst)
        );
    }
}

#[async_trait::async_trait]
impl Generator for Gated {
    fn name(&self) -> String {
        "gated".into()
    }

    async fn generate(&self, _req: &GenerateRequest) -> Result<Vec<Completion>, EngineError> {
        Err(EngineError::Unsupported("generation"))
    }

    async fn next_token_logprobs(
        &self,
        _prompt: &Prompt,
        _prefix: &str,
        _candidates: &[String],
    ) -> Result<NextTokenLogprobs, EngineError> {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let permit = self
            .gate
            .acquire()
            .await
            .map_err(|e| EngineError::Internal(e.to_string()))?;
        permit.forget();
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(NextTokenLogprobs {
            logprobs: vec![Some(0.8f32.ln()), None, Some(0.2f32.ln()), None],
            prompt_tokens: 10,
        })
    }
}

fn models(g: &Arc<Gated>) -> Option<ScorerComponents> {
    Some(ScorerComponents {
        policy: Some(g.clone() as Arc<dyn Generator>),
        judge: None,
        settings: ScorerSettings::default(),
    })
}

const JUDGED: &str = r#"
[[reward.components]]
kind = "accuracy"
[[reward.components]]
kind = "scorer"
spec = "judge"
weight = 0.5
"#;

fn item() -> serde_json::Value {
    json!({"items": [{"prompt": "What is 3 + 4?", "response": "3 + 4 = 7. \\boxed{7}", "gold": "7"}]})
}

#[tokio::test]
async fn a_full_model_queue_answers_503_and_the_cost_reaches_extra_logs() {
    let g = Gated::new();
    let cfg = config(&format!("[server]\nmax_model_requests = 1\n{JUDGED}"));
    let r = start_with_models(cfg, models(&g)).await;
    // one request holds the only model slot, waiting on the model
    let held = {
        let (client, url, body) = (r.client.clone(), r.url("/v1/rewards"), item());
        tokio::spawn(async move { client.post(url).json(&body).send().await.unwrap() })
    };
    g.until_waiting(1).await;
    let (status, body) = status_and_json(r.post("/v1/rewards", &item()).await).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "overloaded");
    assert!(
        error_message(&body).contains("max_model_requests (1)"),
        "{body}"
    );
    // rule-only work is not held back by the model queue
    let verify = r
        .post_value(
            "/v1/verify",
            &json!({"pairs": [{"gold": "1", "pred": "1"}]}),
        )
        .await;
    assert_eq!(verify["results"][0]["verdict"], "equal", "{verify}");
    let m = r.get_text("/metrics").await;
    assert!(m.contains("stepwise_model_requests_in_flight 1"), "{m}");
    assert!(m.contains("stepwise_model_requests_refused_total 1"), "{m}");
    assert!(m.contains("stepwise_model_requests_capacity 1"), "{m}");

    g.gate.add_permits(1);
    let resp = held.await.unwrap();
    assert_eq!(resp.status(), 200);
    let v: serde_json::Value = resp.json().await.unwrap();
    let res = &v["results"][0];
    assert!(
        (res["components"]["judge"].as_f64().unwrap() - 0.8).abs() < 1e-6,
        "{v}"
    );
    assert!(
        (res["reward"].as_f64().unwrap() - (1.0 + 0.5 * 0.8)).abs() < 1e-6,
        "{v}"
    );
    assert_eq!(res["logs"]["judge.calls"], 1.0, "{v}");
    assert_eq!(res["logs"]["judge.prompt_tokens"], 10.0, "{v}");
    assert_eq!(res["logs"]["judge.generated_tokens"], 0.0, "{v}");
    assert_eq!(res["flags"]["model_failed"], false, "{v}");

    // OpenRLHF's protocol carries the cost per query in extra_logs
    g.gate.add_permits(1);
    let v = r
        .post_value(
            "/get_reward",
            &json!({"query": ["Q: 3+4? \\boxed{7}"], "prompts": ["Q: 3+4? "], "labels": ["7"]}),
        )
        .await;
    assert_eq!(v["extra_logs"]["judge.calls"], json!([1.0]), "{v}");
    assert_eq!(v["extra_logs"]["judge.prompt_tokens"], json!([10.0]), "{v}");
    assert_eq!(v["extra_logs"]["model_failed"], json!([0.0]), "{v}");
    assert!(
        (v["rewards"][0].as_f64().unwrap() - 1.4).abs() < 1e-6,
        "{v}"
    );
    let m = r.get_text("/metrics").await;
    assert!(m.contains("stepwise_model_requests_in_flight 0"), "{m}");
}

#[tokio::test]
async fn concurrent_requests_reach_the_model_together() {
    let g = Gated::new();
    let cfg = config(&format!("[server]\nmax_model_requests = 4\n{JUDGED}"));
    let r = start_with_models(cfg, models(&g)).await;
    let send = || {
        let (client, url, body) = (r.client.clone(), r.url("/v1/rewards"), item());
        tokio::spawn(async move { client.post(url).json(&body).send().await.unwrap() })
    };
    let (a, b) = (send(), send());
    // both requests' model calls wait in the backend at once: neither queues behind the other
    g.until_waiting(2).await;
    g.gate.add_permits(2);
    for h in [a, b] {
        let resp = h.await.unwrap();
        assert_eq!(resp.status(), 200);
    }
    assert_eq!(g.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn step_rewards_use_the_servers_model_and_groups_the_components() {
    let g = Gated::new();
    g.gate.add_permits(100);
    let r = start_with_models(config(JUDGED), models(&g)).await;
    let v = r
        .post_value(
            "/v1/step_rewards",
            &json!({"scorer": "judge", "items": [{"prompt": "q", "response": "a\n\nb"}]}),
        )
        .await;
    let steps = v["results"][0]["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2, "{v}");
    assert!(
        (steps[0]["score"].as_f64().unwrap() - 0.8).abs() < 1e-6,
        "{v}"
    );
    // a request may not name servers, even with models
    let (status, body) = status_and_json(
        r.post(
            "/v1/step_rewards",
            &json!({"scorer": "prm:http://127.0.0.1:9", "items": [{"prompt": "q", "response": "a"}]}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 422, "{body}");
    // group rewards score the model component of every response
    let v = r
        .post_value(
            "/v1/group_rewards",
            &json!({"prompt": "q", "gold": "7", "responses": ["\\boxed{7}", "\\boxed{8}"]}),
        )
        .await;
    let rewards = v["groups"][0]["rewards"].as_array().unwrap();
    assert!((rewards[0].as_f64().unwrap() - 1.4).abs() < 1e-6, "{v}");
    assert!((rewards[1].as_f64().unwrap() - 0.4).abs() < 1e-6, "{v}");
}

#[tokio::test]
async fn a_model_component_without_models_is_refused_at_start() {
    let err = stepwise_serve::Server::bind("127.0.0.1:0".parse().unwrap(), config(JUDGED))
        .await
        .err()
        .unwrap();
    let e = stepwise_core::error_chain(&err);
    assert!(
        e.contains("component 'judge' (scorer judge) needs a model"),
        "{e}"
    );
}

#[tokio::test]
async fn the_offline_job_scores_model_components_as_the_server_does() {
    use stepwise_jobs::reward::{RewardLine, RewardModels, reward_file_with_models};
    use stepwise_jobs::{Resume, RunOptions, Stop};
    let g = Gated::new();
    g.gate.add_permits(100);
    let cfg = config(JUDGED);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let items = [
        json!({"prompt": "What is 3 + 4?", "response": "3 + 4 = 7. \\boxed{7}", "gold": "7"}),
        json!({"prompt": "q", "response": "\\boxed{8}", "gold": "7"}),
    ];
    std::fs::write(&input, format!("{}\n{}\n", items[0], items[1])).unwrap();
    let out = dir.path().join("out.jsonl");
    let store = stepwise_store::SqliteStore::open(dir.path().join("runs.sqlite")).unwrap();
    let opts = RunOptions {
        resume: Resume::New,
        concurrency: 1,
        progress: false,
        stop: Stop::Never,
    };
    let m = models(&g).unwrap();
    let rm = RewardModels {
        components: Arc::new(m),
        identity: "policy gated".into(),
    };
    let s = reward_file_with_models(
        &store,
        &input,
        cfg.rewards.clone(),
        Some(&rm),
        false,
        &out,
        &opts,
    )
    .await
    .unwrap();
    assert_eq!(s.keys, ["accuracy", "judge"]);
    let lines: Vec<RewardLine> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let r = start_with_models(cfg.clone(), models(&g)).await;
    let answer = r
        .post_value("/v1/rewards", &json!({ "items": items }))
        .await;
    for (l, want) in lines.iter().zip(answer["results"].as_array().unwrap()) {
        let got = serde_json::to_value(l.result.as_ref().unwrap()).unwrap();
        assert_eq!(got["reward"], want["reward"]);
        assert_eq!(got["components"], want["components"]);
        assert_eq!(got["logs"], want["logs"]);
    }
    assert_eq!(lines[0].result.as_ref().unwrap().logs["judge.calls"], 1.0);
    // the run keeps which models scored it; without them the job does not start
    let e = stepwise_jobs::reward::reward_file(&store, &input, cfg.rewards, false, &out, &opts)
        .await
        .unwrap_err();
    assert!(
        stepwise_core::error_chain(&e).contains("needs a model"),
        "{}",
        stepwise_core::error_chain(&e)
    );
}

#[tokio::test]
async fn listener_and_drm_components_are_served_with_their_hand_computed_values() {
    use stepwise_model::scripted::ScriptedGenerator;
    // every token reads at ln 0.5, but the listener's " 7" after its cue reads at ln 0.6;
    // every Yes/No verdict is P(Yes) = 0.8
    let g = ScriptedGenerator::new(|_, _| String::new())
        .with_reader(|_, before, t| {
            if t == " 7" && before.ends_with("answer:") {
                0.6f32.ln()
            } else {
                0.5f32.ln()
            }
        })
        .with_judge(|_, _, _| vec![Some(0.8f32.ln()), None, Some(0.2f32.ln()), None]);
    let models = ScorerComponents {
        policy: Some(Arc::new(g) as Arc<dyn Generator>),
        judge: None,
        settings: ScorerSettings::default(),
    };
    let cfg = config(
        r#"
[[reward.components]]
kind = "scorer"
spec = "listener"
[[reward.components]]
kind = "scorer"
spec = "drm"
"#,
    );
    let r = start_with_models(cfg, Some(models)).await;
    let v = r.post_value("/v1/rewards", &item()).await;
    let res = &v["results"][0];
    let c = &res["components"];
    // listener: P(" 7" | question, "3 + 4 = 7.") = 0.6
    assert!((c["listener"].as_f64().unwrap() - 0.6).abs() < 1e-6, "{v}");
    // drm: the response reads as the word tokens "3" " +" " 4" " =" " 7." " \boxed{7}";
    // the answer is in the last: confidence = exp(mean(5 × ln 0.5) + ln 0.5) = 0.25;
    // relevance (0.8 + 0.8) / 2, coherence 0.8: (0.25 + 0.8 + 0.8) / 3
    let want = (0.25 + 0.8 + 0.8) / 3.0;
    assert!((c["drm"].as_f64().unwrap() - want).abs() < 1e-6, "{v}");
    assert!(
        (res["reward"].as_f64().unwrap() - (0.6 + want)).abs() < 1e-6,
        "{v}"
    );
    // costs: the listener's one read; DRM's read and three verdicts
    assert_eq!(res["logs"]["listener.calls"], 1.0, "{v}");
    assert_eq!(res["logs"]["drm.calls"], 4.0, "{v}");
    assert_eq!(res["flags"]["model_failed"], false, "{v}");
}
