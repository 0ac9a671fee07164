//! The request-shape rows of `stepwise bench serve`, measured in the same rounds with the
//! same load generator (wrk) as the main comparison:
//!
//! - OpenRLHF's real shape: one item per `/get_reward` request (it sends one sample per
//!   request and shards lists across URLs);
//! - `--batch` items per request (the main table's row);
//! - `/v1/group_rewards` with groups of 8 (a GRPO group; the server has EMPO configured);
//! - the default preset with the v2 shaping components added (cosine-scaled length and
//!   n-gram repetition), at one item per request, against the preset alone (target: at
//!   most 10% slower);
//! - the limit: a bare axum server in this process that parses the same bodies and
//!   answers each item with a constant reward (no scoring), at each shape.

use super::{BenchItem, LoadResult};
use crate::BenchError;
use crate::report::{Align, Table};
use crate::stats::{median, spread};
use std::fmt::Write as _;

/// Responses in one group of the group-rewards row.
pub const GROUP_SIZE: usize = 8;

/// What a row's server is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// stepwise with the deepseek-r1 preset (and EMPO for groups).
    Stepwise,
    /// stepwise with deepseek-r1 plus the v2 shaping components.
    StepwiseV2,
    /// The constant-reward axum server.
    Bare,
    /// The FastAPI + math-verify reference.
    Reference,
}

/// A request shape: which endpoint, how many rewards per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `/get_reward` with this many items per request.
    Items(usize),
    /// `/v1/group_rewards`, one group of [`GROUP_SIZE`] per request.
    Group,
}

impl Shape {
    pub fn path(self) -> &'static str {
        match self {
            Self::Items(_) => "/get_reward",
            Self::Group => "/v1/group_rewards",
        }
    }
    pub fn per_request(self) -> usize {
        match self {
            Self::Items(n) => n,
            Self::Group => GROUP_SIZE,
        }
    }
    pub fn describe(self) -> String {
        match self {
            Self::Items(1) => "1 item/request (OpenRLHF)".into(),
            Self::Items(n) => format!("{n} items/request"),
            Self::Group => format!("group of {GROUP_SIZE}/request"),
        }
    }
}

/// The runs of one row over the rounds.
#[derive(Debug, Clone)]
pub struct ShapeRow {
    pub server: Server,
    pub shape: Shape,
    pub runs: Vec<LoadResult>,
}

impl ShapeRow {
    pub fn rate(&self) -> f64 {
        median(
            &self
                .runs
                .iter()
                .map(LoadResult::rewards_per_s)
                .collect::<Vec<_>>(),
        )
    }
    pub fn p99_ms(&self) -> f64 {
        median(
            &self
                .runs
                .iter()
                .map(|r| r.wrk.p99_us as f64 / 1e3)
                .collect::<Vec<_>>(),
        )
    }
    fn label(&self) -> String {
        match self.server {
            Server::Stepwise => "stepwise (deepseek-r1)".into(),
            Server::StepwiseV2 => "stepwise (deepseek-r1 + cosine length + repetition)".into(),
            Server::Bare => "bare axum, constant reward".into(),
            Server::Reference => "FastAPI + math-verify".into(),
        }
    }
}

/// Group bodies: each problem's items (the bench builds 20 per problem, one prompt and
/// gold each) in whole groups of [`GROUP_SIZE`]; a problem's remainder is left out, so
/// every request carries exactly [`GROUP_SIZE`] rewards.
pub fn group_bodies(items: &[BenchItem]) -> Vec<String> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < items.len() {
        let prompt = &items[start].prompt;
        let end = items[start..]
            .iter()
            .position(|i| &i.prompt != prompt)
            .map_or(items.len(), |k| start + k);
        for g in items[start..end].chunks_exact(GROUP_SIZE) {
            out.push(
                serde_json::json!({
                    "prompt": g[0].prompt,
                    "gold": g[0].gold,
                    "responses": g.iter().map(|i| i.response.as_str()).collect::<Vec<_>>(),
                })
                .to_string(),
            );
        }
        start = end;
    }
    out
}

/// The v2 configuration of the 10% row: the deepseek-r1 preset's components plus the
/// cosine-scaled length and n-gram repetition components.
pub const V2_TOML: &str = r#"
[[reward.components]]
kind = "accuracy"
[[reward.components]]
kind = "format"
[[reward.components]]
kind = "cosine_length"
weight = 0.5
max_len = 4096
[[reward.components]]
kind = "repetition"
weight = 0.5
ngram = 3
"#;

/// The main server's group configuration (the group-rewards row runs EMPO).
pub const GROUP_TOML: &str =
    "[reward]\npreset = \"deepseek-r1\"\n[[group.components]]\nkind = \"empo\"\n";

#[derive(serde::Deserialize)]
struct GetReward {
    query: Vec<serde_json::Value>,
}

#[derive(serde::Deserialize)]
struct OneGroup {
    responses: Vec<serde_json::Value>,
}

/// The limit: an axum server that reads the same request bodies as stepwise (JSON parsed
/// into the items) and answers each item with reward 1, without scoring; running on the
/// current runtime until `stop` is sent.
pub struct Bare {
    pub base: String,
    stop: tokio::sync::oneshot::Sender<()>,
    handle: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Bare {
    pub async fn start() -> Result<Self, BenchError> {
        use axum::Json;
        use axum::routing::post;
        async fn get_reward(Json(r): Json<GetReward>) -> Json<serde_json::Value> {
            let n = r.query.len();
            Json(serde_json::json!({
                "rewards": vec![1.0; n], "scores": vec![1.0; n], "extra_logs": {},
            }))
        }
        async fn group(Json(g): Json<OneGroup>) -> Json<serde_json::Value> {
            let n = g.responses.len();
            Json(serde_json::json!({"groups": [{"rewards": vec![1.0; n], "components": {}}]}))
        }
        let app = axum::Router::new()
            .route("/get_reward", post(get_reward))
            .route("/v1/group_rewards", post(group))
            .layer(axum::extract::DefaultBodyLimit::max(32 << 20));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(crate::io("binding the bare server"))?;
        let addr = listener
            .local_addr()
            .map_err(crate::io("binding the bare server"))?;
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await
        });
        Ok(Self {
            base: format!("http://{addr}"),
            stop,
            handle,
        })
    }

    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.handle.await;
    }
}

/// The rows as a Markdown section: rewards/s, the ratio to the reference and to the bare
/// server at the same shape, p50/p99, and the targets.
pub fn to_markdown(rows: &[ShapeRow]) -> String {
    let find = |server: Server, shape: Shape| {
        rows.iter()
            .find(|r| r.server == server && r.shape == shape && !r.runs.is_empty())
    };
    let ratio = |a: &ShapeRow, b: Option<&ShapeRow>| {
        b.map_or("–".into(), |b| {
            format!("{:.2}x", a.rate() / b.rate().max(1e-9))
        })
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\nRequest shapes, each row its own wrk run of the same length in every round (ratios of medians; the reference and the bare server at the same shape):\n"
    );
    let mut t = Table::new(&[
        ("server", Align::Left),
        ("shape", Align::Left),
        ("rewards/s", Align::Right),
        ("× reference", Align::Right),
        ("× bare", Align::Right),
        ("p50 ms", Align::Right),
        ("p99 ms", Align::Right),
        ("errors", Align::Right),
    ]);
    for r in rows.iter().filter(|r| !r.runs.is_empty()) {
        let of = |f: &dyn Fn(&LoadResult) -> f64| r.runs.iter().map(f).collect::<Vec<f64>>();
        let (reference, bare) = match r.server {
            Server::Stepwise | Server::StepwiseV2 => (
                find(Server::Reference, r.shape),
                find(Server::Bare, r.shape),
            ),
            _ => (None, None),
        };
        t.row([
            r.label(),
            r.shape.describe(),
            spread(&of(&|x| x.rewards_per_s()), 0),
            ratio(r, reference),
            ratio(r, bare),
            spread(&of(&|x| x.wrk.p50_us as f64 / 1e3), 2),
            spread(&of(&|x| x.wrk.p99_us as f64 / 1e3), 2),
            r.runs
                .iter()
                .map(|x| x.wrk.errors())
                .sum::<u64>()
                .to_string(),
        ]);
    }
    s.push_str(&t.to_markdown());
    let one = Shape::Items(1);
    if let Some(ours) = find(Server::Stepwise, one) {
        let mut parts = Vec::new();
        if let Some(p) = find(Server::Reference, one) {
            parts.push(format!(
                "{:.1}x the reference (target ≥ 63.6x)",
                ours.rate() / p.rate().max(1e-9)
            ));
        }
        if let Some(b) = find(Server::Bare, one) {
            parts.push(format!(
                "{:.2}x the bare server (target ≥ 0.6x)",
                ours.rate() / b.rate().max(1e-9)
            ));
        }
        parts.push(format!("p99 {:.2} ms (target < 5 ms)", ours.p99_ms()));
        if let Some(v2) = find(Server::StepwiseV2, one) {
            parts.push(format!(
                "with the v2 components {:.1}% slower (target ≤ 10%)",
                100.0 * (1.0 - v2.rate() / ours.rate().max(1e-9))
            ));
        }
        let _ = writeln!(s, "\nAt 1 item per request: {}.", parts.join("; "));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::super::WrkSummary;
    use super::*;

    fn run(rewards_per_s: u64, p99_us: u64) -> LoadResult {
        LoadResult {
            server: String::new(),
            wrk: WrkSummary {
                requests: rewards_per_s,
                duration_us: 1_000_000,
                connect: 0,
                read: 0,
                write: 0,
                status: 0,
                timeout: 0,
                p50_us: p99_us / 2,
                p90_us: p99_us,
                p99_us,
                max_us: p99_us,
            },
            rewards: rewards_per_s,
            planned: 1,
        }
    }

    #[test]
    fn groups_are_whole_and_within_one_problem() {
        let item = |p: &str, r: &str| BenchItem {
            prompt: p.into(),
            response: r.into(),
            gold: format!("gold of {p}"),
            kind: "correct",
        };
        // 10 items of problem a (one group, 2 left out), 8 of b (one group), 3 of c (none)
        let mut items: Vec<BenchItem> = (0..10).map(|i| item("a", &format!("a{i}"))).collect();
        items.extend((0..8).map(|i| item("b", &format!("b{i}"))));
        items.extend((0..3).map(|i| item("c", &format!("c{i}"))));
        let bodies = group_bodies(&items);
        assert_eq!(bodies.len(), 2);
        let g: serde_json::Value = serde_json::from_str(&bodies[1]).unwrap();
        assert_eq!(g["prompt"], "b");
        assert_eq!(g["gold"], "gold of b");
        assert_eq!(g["responses"].as_array().unwrap().len(), GROUP_SIZE);
        assert_eq!(g["responses"][7], "b7");
        // the body is what the server reads as one group
        let parsed: stepwise_serve::api::GroupRewardsRequest =
            serde_json::from_str(&bodies[0]).unwrap();
        assert_eq!(parsed.into_groups()[0].responses.len(), GROUP_SIZE);
    }

    #[test]
    fn the_v2_and_group_configurations_build() {
        stepwise_serve::config::Config::from_toml(V2_TOML, "v2").unwrap();
        let g = stepwise_serve::config::Config::from_toml(GROUP_TOML, "group").unwrap();
        assert_eq!(g.rewards.group.components.len(), 1);
    }

    #[test]
    fn ratios_and_targets_are_of_the_same_shape() {
        let row = |server, shape, rate, p99| ShapeRow {
            server,
            shape,
            runs: vec![run(rate, p99)],
        };
        let rows = vec![
            row(Server::Stepwise, Shape::Items(1), 3000, 4000),
            row(Server::Reference, Shape::Items(1), 100, 90_000),
            row(Server::Bare, Shape::Items(1), 4000, 1000),
            row(Server::StepwiseV2, Shape::Items(1), 2850, 4100),
            row(Server::Stepwise, Shape::Group, 8000, 3000),
            row(Server::Bare, Shape::Group, 10_000, 1000),
        ];
        let md = to_markdown(&rows);
        assert!(
            md.contains("| stepwise (deepseek-r1) | 1 item/request (OpenRLHF) | 3000 | 30.00x | 0.75x | 2.00 | 4.00 | 0 |"),
            "{md}"
        );
        // the group row has no reference at its shape, and its bare ratio is 8000 / 10000
        assert!(
            md.contains("| stepwise (deepseek-r1) | group of 8/request | 8000 | – | 0.80x |"),
            "{md}"
        );
        assert!(
            md.contains("At 1 item per request: 30.0x the reference (target ≥ 63.6x); 0.75x the bare server (target ≥ 0.6x); p99 4.00 ms (target < 5 ms); with the v2 components 5.0% slower (target ≤ 10%)."),
            "{md}"
        );
    }

    #[tokio::test]
    async fn the_bare_server_answers_each_item_with_a_constant() {
        let bare = Bare::start().await.unwrap();
        let c = reqwest::Client::new();
        let v: serde_json::Value = c
            .post(format!("{}/get_reward", bare.base))
            .json(
                &serde_json::json!({"query": ["a", "b"], "prompts": ["", ""], "labels": ["1", 2]}),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v["rewards"], serde_json::json!([1.0, 1.0]));
        let v: serde_json::Value = c
            .post(format!("{}/v1/group_rewards", bare.base))
            .json(&serde_json::json!({"prompt": "", "responses": ["a", "b", "c"]}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            v["groups"][0]["rewards"],
            serde_json::json!([1.0, 1.0, 1.0])
        );
        bare.stop().await;
    }
}
