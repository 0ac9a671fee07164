//! `stepwise bench serve --slow-clients N`: legitimate load with and without N slow
//! clients connected, side by side.
//!
//! The server runs with its production limits (the `deepseek-r1` preset and the
//! default `[server]` settings: 64 scoring slots, body and header read timeouts). Each
//! round runs wrk (the same bodies as the comparison) twice against it: once alone, and
//! once while N slow clients are connected, each of which sends the head of a
//! `/get_reward` request declaring a 1 MB body and then one byte of it every 500 ms,
//! reconnecting when the server cuts it off. Throughput counts only the requests that
//! got a 2xx answer, so slots the slow clients took (503s) show as lost throughput. The
//! server's own gauge of bodies being received is sampled during the attacked run, to
//! show the slow clients were connected throughout.

use super::{Stepwise, Workload, WrkSummary};
use crate::BenchError;
use crate::report::{Align, Table};
use crate::stats::{alternate, median, spread};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;
use stepwise_serve::AppState;
use stepwise_serve::config::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The share of the no-attack rate the attacked rate must keep.
pub const REQUIRED_RATIO: f64 = 0.9;

/// The body a slow client declares, in bytes (well under `max_body_bytes`).
const SLOW_BODY_BYTES: usize = 1_000_000;

/// One round: wrk alone, then wrk with the slow clients connected.
#[derive(Debug, Clone)]
pub struct SlowRound {
    pub alone: WrkSummary,
    pub attacked: WrkSummary,
    /// Fewest and most bodies being received that the server reported during the
    /// attacked run (sampled every 100 ms).
    pub reading: (u64, u64),
}

/// The rounds of a slow-client run.
#[derive(Debug, Clone)]
pub struct SlowReport {
    pub slow_clients: usize,
    pub connections: usize,
    pub wrk_threads: usize,
    pub seconds: u64,
    pub batch: usize,
    pub workers: usize,
    pub max_concurrency: usize,
    pub body_read_timeout_ms: u64,
    pub rounds: Vec<SlowRound>,
}

/// Rewards per second carried by the requests that got a 2xx answer.
pub fn ok_rewards_per_s(w: &WrkSummary, batch: usize) -> f64 {
    let ok = w.requests.saturating_sub(w.status);
    ok as f64 * batch as f64 / (w.duration_us as f64 / 1e6).max(1e-9)
}

impl SlowReport {
    fn rates(&self, f: impl Fn(&SlowRound) -> &WrkSummary) -> Vec<f64> {
        self.rounds
            .iter()
            .map(|r| ok_rewards_per_s(f(r), self.batch))
            .collect()
    }

    /// The attacked rate over the no-attack rate, per round.
    pub fn ratios(&self) -> Vec<f64> {
        let alone = self.rates(|r| &r.alone);
        let attacked = self.rates(|r| &r.attacked);
        alone.iter().zip(&attacked).map(|(a, b)| b / a).collect()
    }

    /// Whether the median round kept at least [`REQUIRED_RATIO`] of the no-attack rate.
    pub fn passes(&self) -> bool {
        median(&self.ratios()) >= REQUIRED_RATIO
    }

    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "Slow clients: wrk ({} threads, {} connections, {} s per run, {} rewards per request) against stepwise serve (deepseek-r1, {} verification threads, max_concurrency {}, body_read_timeout_ms {}), alone and with {} slow clients connected (each declares a {} byte `/get_reward` body and sends a byte of it every 500 ms, reconnecting when cut off); {} round(s), median (min–max). Rates count 2xx answers only; \"bodies being received\" is the server's gauge sampled every 100 ms during the attacked runs (the slow clients plus legitimate bodies in transit).\n",
            self.wrk_threads,
            self.connections,
            self.seconds,
            self.batch,
            self.workers,
            self.max_concurrency,
            self.body_read_timeout_ms,
            self.slow_clients,
            SLOW_BODY_BYTES,
            self.rounds.len(),
        );
        let mut t = Table::new(&[
            ("legitimate load", Align::Left),
            ("rewards/s (2xx)", Align::Right),
            ("p50 ms", Align::Right),
            ("p99 ms", Align::Right),
            ("non-2xx", Align::Right),
            ("socket errors", Align::Right),
            ("bodies being received", Align::Right),
        ]);
        let ms = |v: Vec<f64>| spread(&v.iter().map(|x| x / 1e3).collect::<Vec<_>>(), 2);
        for (label, pick) in [
            (
                "alone".to_string(),
                (|r: &SlowRound| &r.alone) as fn(&SlowRound) -> &WrkSummary,
            ),
            (
                format!("with {} slow clients", self.slow_clients),
                |r: &SlowRound| &r.attacked,
            ),
        ] {
            let runs: Vec<&WrkSummary> = self.rounds.iter().map(pick).collect();
            let reading = if label == "alone" {
                "0".to_string()
            } else {
                let lo = self.rounds.iter().map(|r| r.reading.0).min().unwrap_or(0);
                let hi = self.rounds.iter().map(|r| r.reading.1).max().unwrap_or(0);
                format!("{lo}–{hi}")
            };
            t.row([
                label,
                spread(&self.rates(pick), 0),
                ms(runs.iter().map(|w| w.p50_us as f64).collect()),
                ms(runs.iter().map(|w| w.p99_us as f64).collect()),
                runs.iter().map(|w| w.status).sum::<u64>().to_string(),
                runs.iter()
                    .map(|w| w.errors() - w.status)
                    .sum::<u64>()
                    .to_string(),
                reading,
            ]);
        }
        s.push_str(&t.to_markdown());
        let ratios = self.ratios();
        let pct = |v: f64| format!("{:.1}%", v * 100.0);
        let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let range = if ratios.len() > 1 {
            format!(" ({}–{})", pct(lo), pct(hi))
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "\nWith {} slow clients connected, legitimate requests were served at {}{range} of the no-attack rate (required: ≥ {}): {}.",
            self.slow_clients,
            pct(median(&ratios)),
            pct(REQUIRED_RATIO),
            if self.passes() { "pass" } else { "FAIL" }
        );
        s
    }
}

/// One slow client until `stop`: connects, sends a request head and then a byte of the
/// body every 500 ms; when the server answers (408) or closes, it connects again.
async fn slow_client(addr: SocketAddr, mut stop: tokio::sync::watch::Receiver<bool>) {
    let head = format!(
        "POST /get_reward HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {SLOW_BODY_BYTES}\r\n\r\n"
    );
    while !*stop.borrow() {
        let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        if s.write_all(head.as_bytes()).await.is_err() {
            continue;
        }
        let (mut rd, mut wr) = s.split();
        let mut buf = [0u8; 512];
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                // an answer (408) or a close: this request is over
                _ = rd.read(&mut buf) => break,
                () = tokio::time::sleep(Duration::from_millis(500)) => {
                    if wr.write_all(b" ").await.is_err() {
                        break;
                    }
                }
            }
        }
    }
}

/// Waits (at most `limit`) until the server reports `n` bodies being received.
async fn wait_reading(state: &AppState, n: u64, limit: Duration) -> Result<(), BenchError> {
    let started = std::time::Instant::now();
    while state.metrics.bodies_reading() != n {
        if started.elapsed() > limit {
            return Err(BenchError::Tool(format!(
                "the server reports {} bodies being received, not {n}, after {limit:?}",
                state.metrics.bodies_reading()
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// wrk against the server while `n` slow clients are connected; the fewest and most
/// bodies being received during the run.
async fn attacked_run(
    work: &Workload,
    server: &Stepwise,
    n: usize,
    seconds: u64,
) -> Result<(WrkSummary, (u64, u64)), BenchError> {
    let state = server.state.clone();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let clients: Vec<_> = (0..n)
        .map(|_| tokio::spawn(slow_client(server.addr, stopped.clone())))
        .collect();
    wait_reading(&state, n as u64, Duration::from_secs(30)).await?;
    let (done, mut finished) = tokio::sync::watch::channel(false);
    let sampler = {
        let state = state.clone();
        tokio::spawn(async move {
            let (mut lo, mut hi) = (u64::MAX, 0);
            loop {
                let v = state.metrics.bodies_reading();
                (lo, hi) = (lo.min(v), hi.max(v));
                tokio::select! {
                    _ = finished.changed() => return (lo, hi),
                    () = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
        })
    };
    let wrk = work.load(&server.base, seconds).await;
    let _ = done.send(true);
    let reading = sampler
        .await
        .map_err(|e| BenchError::Tool(format!("the sampler failed: {e}")))?;
    let _ = stop.send(true);
    for c in clients {
        let _ = c.await;
    }
    wait_reading(&state, 0, Duration::from_secs(30)).await?;
    Ok((wrk?, reading))
}

/// Runs `--rounds` rounds of wrk alone, then wrk with `n` slow clients connected.
pub fn measure(
    args: &super::Args,
    data_dir: &std::path::Path,
    n: usize,
) -> Result<SlowReport, BenchError> {
    let work = Workload::prepare(args, data_dir)?;
    let rounds = args.common.rounds_or(super::DEFAULT_ROUNDS);
    let workers = args.common.threads();
    let mut cfg = Config::with_preset("deepseek-r1").map_err(stepwise_serve::ServeError::from)?;
    cfg.server.workers = workers;
    let settings = cfg.server.clone();
    if args.connections > settings.max_concurrency {
        return Err(BenchError::Options(format!(
            "--connections {} is over the server's max_concurrency {}: legitimate requests would get 503 without any attack",
            args.connections, settings.max_concurrency
        )));
    }
    let rt = crate::runtime()?;
    let server = rt.block_on(Stepwise::start_with(cfg))?;
    eprintln!(
        "bench serve --slow-clients {n}: stepwise on {} (max_concurrency {})",
        server.base, settings.max_concurrency
    );
    let mut alone = Vec::new();
    let mut attacked = Vec::new();
    alternate(
        rounds,
        |round| {
            let w = rt.block_on(work.load(&server.base, args.seconds))?;
            eprintln!(
                "round {round} alone: {:.0} rewards/s (2xx), {} non-2xx",
                ok_rewards_per_s(&w, args.batch),
                w.status
            );
            alone.push(w);
            Ok(())
        },
        |round| {
            let (w, reading) = rt.block_on(attacked_run(&work, &server, n, args.seconds))?;
            eprintln!(
                "round {round} with {n} slow clients: {:.0} rewards/s (2xx), {} non-2xx, {}–{} slow bodies being received",
                ok_rewards_per_s(&w, args.batch),
                w.status,
                reading.0,
                reading.1
            );
            attacked.push((w, reading));
            Ok::<(), BenchError>(())
        },
    )?;
    rt.block_on(server.stop());
    Ok(SlowReport {
        slow_clients: n,
        connections: args.connections,
        wrk_threads: args.wrk_threads,
        seconds: args.seconds,
        batch: args.batch,
        workers,
        max_concurrency: settings.max_concurrency,
        body_read_timeout_ms: settings.body_read_timeout_ms,
        rounds: alone
            .into_iter()
            .zip(attacked)
            .map(|(alone, (attacked, reading))| SlowRound {
                alone,
                attacked,
                reading,
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrk(requests: u64, status: u64) -> WrkSummary {
        WrkSummary {
            requests,
            duration_us: 10_000_000,
            connect: 0,
            read: 0,
            write: 0,
            status,
            timeout: 0,
            p50_us: 1000,
            p90_us: 2000,
            p99_us: 3000,
            max_us: 4000,
        }
    }

    #[test]
    fn rates_count_only_2xx_and_the_verdict_follows_the_median_ratio() {
        assert_eq!(ok_rewards_per_s(&wrk(1000, 400), 8), 480.0);
        let round = |alone: u64, attacked_ok: u64| SlowRound {
            alone: wrk(alone, 0),
            attacked: wrk(attacked_ok + 50, 50),
            reading: (64, 64),
        };
        let mut r = SlowReport {
            slow_clients: 64,
            connections: 32,
            wrk_threads: 2,
            seconds: 10,
            batch: 8,
            workers: 2,
            max_concurrency: 64,
            body_read_timeout_ms: 10_000,
            rounds: vec![round(1000, 950), round(1000, 990), round(1000, 500)],
        };
        assert!(r.passes());
        let md = r.to_markdown();
        assert!(md.contains("with 64 slow clients"), "{md}");
        assert!(md.contains("95.0% (50.0%–99.0%)"), "{md}");
        assert!(md.contains(": pass."), "{md}");
        r.rounds[1] = round(1000, 100);
        assert!(!r.passes());
        assert!(r.to_markdown().contains("FAIL"));
    }
}
