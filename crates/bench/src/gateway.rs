//! `stepwise bench gateway`: what the search gateway adds to one pass-through completion
//! (`n = 1`, the upstream's own model name) over calling the upstream directly.
//!
//! One client sends the same chat completion body alternately to the upstream and to the
//! gateway (whose policy is that upstream through the HTTP backend), one request at a time
//! on kept-alive loopback connections, so drift of the machine hits both sides alike. Each
//! round measures `--requests` of each after `--warmup` unmeasured ones; the table shows
//! the p50 and p99 latency of both sides (median of the rounds, range in brackets) and the
//! overhead: the gateway's p50 minus the direct p50 (target ≤ 2 ms).
//!
//! The upstream is by default a canned OpenAI-compatible server in this process (a fixed
//! one-token answer; it costs microseconds, so the difference is the gateway's parsing,
//! admission, the HTTP backend's request and the answer), or any server given with
//! `--upstream URL` (e.g. llama-cpp-python serving the default GGUF; then model time and
//! its noise are on both sides). The gateway and the canned upstream run on one runtime
//! with `--threads` workers, the client on a runtime of its own.

use crate::report::{Align, Table, publish};
use crate::stats::{median, percentile, spread};
use crate::{BenchError, CommonArgs};
use axum::Router;
use axum::routing::post;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use stepwise_gateway::{Gateway, GatewayConfig};
use stepwise_http::{HttpConfig, HttpGenerator};
use stepwise_search::jobs::Backends;

/// Rounds when `--rounds` is not given.
pub const DEFAULT_ROUNDS: usize = 3;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Measured requests per side and round.
    #[arg(long, default_value_t = 2000)]
    pub requests: usize,
    /// Unmeasured requests per side before the first round.
    #[arg(long, default_value_t = 200)]
    pub warmup: usize,
    /// An OpenAI-compatible upstream (base URL, e.g. http://127.0.0.1:8080/v1) instead of
    /// the canned one.
    #[arg(long, value_name = "URL")]
    pub upstream: Option<String>,
    /// `max_tokens` of each completion (the canned upstream always answers one token).
    #[arg(long, default_value_t = 1)]
    pub max_tokens: u32,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Latencies of one round, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Round {
    pub direct_ms: Vec<f64>,
    pub gateway_ms: Vec<f64>,
}

/// What `bench gateway` measured.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayReport {
    /// What the upstream was.
    pub upstream: String,
    pub requests: usize,
    pub threads: usize,
    pub rounds: Vec<Round>,
}

/// The canned upstream's answer: one token, with usage.
fn canned() -> Value {
    json!({"id": "canned", "object": "chat.completion", "created": 0, "model": "canned",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "4"},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 1, "total_tokens": 13}})
}

async fn serve_canned() -> Result<String, BenchError> {
    let body = Arc::new(canned().to_string());
    let app = Router::new().route(
        "/v1/chat/completions",
        post(move || {
            let body = body.clone();
            async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    body.as_str().to_owned(),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(crate::io("binding the canned upstream"))?;
    let addr = listener
        .local_addr()
        .map_err(crate::io("the canned upstream's address"))?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(%e, "canned upstream stopped");
        }
    });
    Ok(format!("http://{addr}/v1"))
}

/// Starts the upstream (unless given) and the gateway over it: (upstream URL, gateway URL).
async fn start(args: &Args) -> Result<(String, String), BenchError> {
    let upstream = match &args.upstream {
        Some(u) => u.trim_end_matches('/').to_string(),
        None => serve_canned().await?,
    };
    let mut http = HttpConfig::new(vec![upstream.clone()]);
    http.max_concurrency = 4;
    let policy = HttpGenerator::new(http)?;
    let backends = Backends {
        policy: Arc::new(policy),
        judge: None,
        prm: Default::default(),
    };
    let config = GatewayConfig {
        passthrough: "upstream".into(),
        ..GatewayConfig::default()
    };
    let gw = Gateway::bind(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        config,
        backends,
        false,
    )
    .await
    .map_err(|e| BenchError::Tool(format!("starting the gateway: {e}")))?;
    let url = format!("http://{}/v1", gw.local_addr());
    tokio::spawn(async move {
        if let Err(e) = gw.run(std::future::pending()).await {
            tracing::error!(%e, "gateway stopped");
        }
    });
    Ok((upstream, url))
}

/// One completion; its latency in milliseconds.
async fn call(client: &reqwest::Client, url: &str, body: &Value) -> Result<f64, BenchError> {
    let t0 = Instant::now();
    let http = |source| BenchError::Http {
        what: format!("POST {url}/chat/completions"),
        source,
    };
    let r = client
        .post(format!("{url}/chat/completions"))
        .json(body)
        .send()
        .await
        .map_err(http)?;
    let status = r.status();
    let bytes = r.bytes().await.map_err(http)?;
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    if !status.is_success() {
        return Err(BenchError::Tool(format!(
            "{url}/chat/completions answered {status}: {}",
            String::from_utf8_lossy(&bytes)
        )));
    }
    Ok(ms)
}

/// Runs the bench (no output).
pub fn measure(args: &Args) -> Result<GatewayReport, BenchError> {
    if args.requests == 0 {
        return Err(BenchError::Options("--requests must be at least 1".into()));
    }
    let threads = args.common.threads();
    let servers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .map_err(crate::io("starting the servers' runtime"))?;
    let (upstream, gateway) = servers.block_on(start(args))?;
    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(crate::io("starting the client's runtime"))?;
    let rounds = client_rt.block_on(async {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(2)
            .build()
            .map_err(|source| BenchError::Http {
                what: "building the HTTP client".into(),
                source,
            })?;
        let messages = json!([{"role": "user", "content": "What is 2 + 2?"}]);
        let direct_body =
            json!({"model": "upstream", "messages": messages, "max_tokens": args.max_tokens, "seed": 1});
        let gateway_body = direct_body.clone();
        for _ in 0..args.warmup {
            call(&client, &upstream, &direct_body).await?;
            call(&client, &gateway, &gateway_body).await?;
        }
        let mut rounds = Vec::new();
        for round in 1..=args.common.rounds_or(DEFAULT_ROUNDS) {
            let mut r = Round::default();
            for _ in 0..args.requests {
                r.direct_ms.push(call(&client, &upstream, &direct_body).await?);
                r.gateway_ms.push(call(&client, &gateway, &gateway_body).await?);
            }
            eprintln!(
                "round {round}: p50 direct {:.3} ms, gateway {:.3} ms",
                percentile(&r.direct_ms, 0.5),
                percentile(&r.gateway_ms, 0.5)
            );
            rounds.push(r);
        }
        Ok::<_, BenchError>(rounds)
    })?;
    drop(servers);
    Ok(GatewayReport {
        upstream: match &args.upstream {
            Some(u) => u.clone(),
            None => "canned in-process upstream (one-token answer)".into(),
        },
        requests: args.requests,
        threads,
        rounds,
    })
}

/// Measures, prints the Markdown section and writes it to `--out`.
pub fn run(args: &Args) -> Result<(), BenchError> {
    let report = measure(args)?;
    publish(&report.to_markdown(), args.common.out.as_deref())
}

impl GatewayReport {
    /// Per-round `q` quantiles of each side (direct, gateway).
    fn of(&self, q: f64) -> (Vec<f64>, Vec<f64>) {
        self.rounds
            .iter()
            .map(|r| (percentile(&r.direct_ms, q), percentile(&r.gateway_ms, q)))
            .unzip()
    }

    /// Per-round p50 overheads (gateway p50 − direct p50), in milliseconds.
    pub fn overheads_p50(&self) -> Vec<f64> {
        let (d, g) = self.of(0.5);
        g.iter().zip(&d).map(|(g, d)| g - d).collect()
    }

    pub fn to_markdown(&self) -> String {
        let (d50, g50) = self.of(0.5);
        let (d99, g99) = self.of(0.99);
        let mut t = Table::new(&[
            ("path", Align::Left),
            ("requests/round", Align::Right),
            ("p50 ms", Align::Right),
            ("p99 ms", Align::Right),
        ]);
        let n = self.requests.to_string();
        t.row([
            "direct to the upstream",
            &n,
            &spread(&d50, 3),
            &spread(&d99, 3),
        ]);
        t.row([
            "through the gateway (pass-through)",
            &n,
            &spread(&g50, 3),
            &spread(&g99, 3),
        ]);
        let over = self.overheads_p50();
        let o99: Vec<f64> = g99.iter().zip(&d99).map(|(g, d)| g - d).collect();
        t.row(["gateway overhead", "", &spread(&over, 3), &spread(&o99, 3)]);
        let verdict = if median(&over) <= 2.0 {
            "met"
        } else {
            "NOT met"
        };
        format!(
            "Upstream: {}. {} rounds, one request at a time, direct and gateway alternating; \
             gateway and upstream on {} runtime threads, the client on its own thread. \
             Median of the rounds (range in brackets).\n\n{}\nGateway overhead at p50: **{:.3} ms** \
             (target ≤ 2 ms: {verdict}).\n",
            self.upstream,
            self.rounds.len(),
            self.threads,
            t.to_markdown(),
            median(&over),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_shows_both_sides_and_the_overhead() {
        let r = GatewayReport {
            upstream: "canned".into(),
            requests: 4,
            threads: 2,
            rounds: vec![
                Round {
                    direct_ms: vec![1.0, 1.0, 1.0, 9.0],
                    gateway_ms: vec![2.0, 2.5, 2.5, 10.0],
                },
                Round {
                    direct_ms: vec![1.0, 2.0, 2.0, 2.0],
                    gateway_ms: vec![3.0, 3.5, 3.5, 3.5],
                },
            ],
        };
        // nearest-rank p50: 1.0 and 2.0 direct, 2.5 and 3.5 gateway
        assert_eq!(r.overheads_p50(), [1.5, 1.5]);
        let md = r.to_markdown();
        assert!(
            md.contains("| direct to the upstream | 4 | 1.500 (1.000–2.000) |"),
            "{md}"
        );
        assert!(md.contains("**1.500 ms** (target ≤ 2 ms: met)"), "{md}");
    }

    #[test]
    fn a_short_run_over_the_canned_upstream_measures_every_request() {
        let args = Args {
            requests: 5,
            warmup: 1,
            upstream: None,
            max_tokens: 1,
            common: CommonArgs {
                out: None,
                rounds: Some(2),
                threads: Some(1),
                python: "python3".into(),
                venv: None,
                no_reference: true,
            },
        };
        let r = measure(&args).unwrap();
        assert_eq!(r.rounds.len(), 2);
        for round in &r.rounds {
            assert_eq!((round.direct_ms.len(), round.gateway_ms.len()), (5, 5));
            assert!(
                round
                    .direct_ms
                    .iter()
                    .chain(&round.gateway_ms)
                    .all(|&x| x > 0.0)
            );
        }
    }
}
