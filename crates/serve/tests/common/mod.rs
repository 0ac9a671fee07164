//! A real server on a loopback port for the integration tests.

#![allow(dead_code)]

use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;
use stepwise_serve::Server;
use stepwise_serve::config::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct Running {
    pub addr: SocketAddr,
    pub base: String,
    pub client: reqwest::Client,
    pub stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub handle: tokio::task::JoinHandle<Result<(), stepwise_serve::ServeError>>,
}

impl Running {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn shutdown(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }

    /// POSTs `body` as JSON to `path`.
    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// POSTs raw text with a JSON content type to `path`.
    pub async fn post_raw(&self, path: &str, body: impl Into<String>) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body.into())
            .send()
            .await
            .unwrap()
    }

    /// POSTs `body` and reads the JSON answer, whatever its status.
    pub async fn post_value(&self, path: &str, body: &Value) -> Value {
        self.post(path, body).await.json().await.unwrap()
    }

    /// GETs `path`.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// GETs `path` and reads the JSON answer.
    pub async fn get_value(&self, path: &str) -> Value {
        self.get(path).await.json().await.unwrap()
    }

    /// GETs `path` and reads the text answer.
    pub async fn get_text(&self, path: &str) -> String {
        self.get(path).await.text().await.unwrap()
    }
}

/// The status and the JSON body of a response.
pub async fn status_and_json(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

/// The `error.message` of an error body.
pub fn error_message(v: &Value) -> &str {
    v["error"]["message"].as_str().unwrap_or_default()
}

pub async fn start(config: Config) -> Running {
    start_with_models(config, None).await
}

/// [`start`] with the models of model-backed components and scorers.
pub async fn start_with_models(
    config: Config,
    models: Option<stepwise_score::ScorerComponents>,
) -> Running {
    let server = Server::bind_with_models("127.0.0.1:0".parse().unwrap(), config, models)
        .await
        .unwrap();
    let addr = server.local_addr();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(server.run(async move {
        let _ = rx.await;
    }));
    Running {
        addr,
        base: format!("http://{addr}"),
        client: client(),
        stop: Some(tx),
        handle,
    }
}

pub fn config(toml: &str) -> Config {
    Config::from_toml(toml, "test").unwrap()
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// Sends the headers and the first part of a POST body, leaving the request open.
pub async fn open_request(addr: SocketAddr, path: &str, body: &str, sent: usize) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&body.as_bytes()[..sent]).await.unwrap();
    s.flush().await.unwrap();
    s
}

/// Sends the rest of the body and reads the whole response: (status, body).
pub async fn finish_request(mut s: TcpStream, body: &str, sent: usize) -> (u16, String) {
    s.write_all(&body.as_bytes()[sent..]).await.unwrap();
    s.flush().await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&buf).to_string();
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

/// Waits until `/health` reports `n` scoring requests in flight.
pub async fn wait_in_flight(r: &Running, n: u64) {
    for _ in 0..200 {
        if r.get_value("/health").await["in_flight"] == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("in_flight never reached {n}");
}

/// The value of an unlabelled metric in `/metrics` (`bearer`: the token, when auth is on).
pub async fn metric(r: &Running, name: &str, bearer: Option<&str>) -> Option<f64> {
    let mut req = r.client.get(r.url("/metrics"));
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    let text = req.send().await.ok()?.text().await.ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// Waits (at most 10 s) until the metric `name` reaches `value`.
pub async fn wait_metric(r: &Running, name: &str, value: f64, bearer: Option<&str>) {
    let mut last = None;
    for _ in 0..1000 {
        last = metric(r, name, bearer).await;
        if last == Some(value) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{name} never reached {value} (last {last:?})");
}

/// Waits (at most 10 s) until the server holds `n` scoring requests whose heads it has
/// read: bodies still being received plus requests being scored.
pub async fn wait_requests_received(r: &Running, n: f64, bearer: Option<&str>) {
    let mut last = (None, None);
    for _ in 0..1000 {
        last = (
            metric(r, "stepwise_bodies_reading", bearer).await,
            metric(r, "stepwise_in_flight_requests", bearer).await,
        );
        if last.0.unwrap_or(0.0) + last.1.unwrap_or(0.0) == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the server never held {n} requests (bodies being read, in flight: {last:?})");
}
