//! The request log: one `tracing` event per request whose parts are fields
//! (method, path, route, status, latency_ms, items, request_id; error code and
//! message on errors), not text inside the message.

mod common;

use common::*;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use stepwise_serve::config::Config;
use tracing::field::{Field, Visit};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt};

type Fields = BTreeMap<String, String>;

/// Records the fields of every event.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Fields>>>);

struct Record<'a>(&'a mut Fields);

impl Visit for Record<'_> {
    fn record_str(&mut self, f: &Field, v: &str) {
        self.0.insert(f.name().into(), v.into());
    }
    fn record_debug(&mut self, f: &Field, v: &dyn std::fmt::Debug) {
        self.0.insert(f.name().into(), format!("{v:?}"));
    }
}

impl<S: tracing::Subscriber> Layer<S> for Capture {
    fn on_event(&self, e: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut fields = Fields::new();
        e.record(&mut Record(&mut fields));
        fields.insert("@target".into(), e.metadata().target().into());
        fields.insert("@level".into(), e.metadata().level().to_string());
        self.0.lock().unwrap().push(fields);
    }
}

impl Capture {
    fn requests(&self) -> Vec<Fields> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|f| {
                f.get("message").map(String::as_str) == Some("request")
                    && f["@target"].starts_with("stepwise_serve")
            })
            .cloned()
            .collect()
    }
}

// current-thread runtime: the server's tasks run on this thread, under its default subscriber
#[tokio::test]
async fn each_request_is_one_event_with_fields() {
    let capture = Capture::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(capture.clone()));
    let mut r = start(Config::default()).await;

    // a scoring request with the client's request id
    let body = json!({
        "query": ["Q<think>x</think>\\boxed{7}", "Q<think>x</think>\\boxed{8}"],
        "prompts": ["Q", "Q"],
        "labels": ["7", "7"],
    });
    let resp = r
        .client
        .post(r.url("/get_reward"))
        .header("x-request-id", "trainer-step-42")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-request-id"], "trainer-step-42");
    // a malformed one, without an id: the server makes one
    let bad = r.post_raw("/v1/verify", "{").await;
    assert_eq!(bad.status(), 400);
    let made_id = bad.headers()["x-request-id"].to_str().unwrap().to_string();
    assert!(!made_id.is_empty() && made_id != "trainer-step-42");
    // an unknown path
    assert_eq!(r.get("/nope").await.status(), 404);
    r.shutdown();

    let events = capture.requests();
    assert_eq!(events.len(), 3, "{events:#?}");
    let ok = &events[0];
    assert_eq!(ok["method"], "POST");
    assert_eq!(ok["path"], "/get_reward");
    assert_eq!(ok["route"], "/get_reward");
    assert_eq!(ok["status"], "200");
    assert_eq!(ok["items"], "2");
    assert_eq!(ok["request_id"], "trainer-step-42");
    assert_eq!(ok["@level"], "INFO");
    let ms: f64 = ok["latency_ms"].parse().unwrap();
    assert!((0.0..60_000.0).contains(&ms), "{ms}");
    assert!(!ok.contains_key("error_code"), "{ok:?}");

    let err = &events[1];
    assert_eq!(err["path"], "/v1/verify");
    assert_eq!(err["status"], "400");
    assert_eq!(err["request_id"], made_id);
    assert_eq!(err["error_code"], "bad_json");
    assert!(err["error"].contains("malformed JSON"), "{err:?}");
    assert!(!err.contains_key("items"), "{err:?}");

    let nf = &events[2];
    assert_eq!(nf["path"], "/nope");
    assert_eq!(nf["route"], "unmatched");
    assert_eq!(nf["status"], "404");
    assert_eq!(nf["error_code"], "not_found");
    // the message is the bare word: nothing is formatted into it
    for e in &events {
        assert_eq!(e["message"], "request");
    }
}
