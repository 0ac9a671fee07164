//! Prometheus metrics in the text exposition format (version 0.0.4), written by hand:
//! a handful of counters and one histogram do not need a metrics framework.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use stepwise_verify::Verdict;

/// Upper bounds (seconds) of the latency histogram buckets.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, v: f64) {
        for (i, b) in LATENCY_BUCKETS.iter().enumerate() {
            if v <= *b {
                self.counts[i] += 1;
            }
        }
        self.count += 1;
        self.sum += v;
    }
}

/// The server's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    verdicts: [AtomicU64; 3],
    items: AtomicU64,
    items_timed_out: AtomicU64,
    item_panics: AtomicU64,
    prompt_mismatch: AtomicU64,
    in_flight: AtomicU64,
    connections: AtomicU64,
    connections_refused: AtomicU64,
    body_timeouts: AtomicU64,
    bodies_reading: AtomicU64,
    model_in_flight: AtomicU64,
    model_refused: AtomicU64,
}

impl Metrics {
    /// Records a finished HTTP request.
    pub fn observe_request(&self, endpoint: &str, status: u16, seconds: f64) {
        if let Ok(mut m) = self.requests.lock() {
            *m.entry((endpoint.to_string(), status)).or_default() += 1;
        }
        if let Ok(mut m) = self.latency.lock() {
            m.entry(endpoint.to_string()).or_default().observe(seconds);
        }
    }

    pub fn verdict(&self, v: Verdict) {
        let i = match v {
            Verdict::Equal => 0,
            Verdict::NotEqual => 1,
            Verdict::Undecided => 2,
        };
        self.verdicts[i].fetch_add(1, Ordering::Relaxed);
    }

    pub fn items(&self, n: u64, timed_out: u64) {
        self.items.fetch_add(n, Ordering::Relaxed);
        self.items_timed_out.fetch_add(timed_out, Ordering::Relaxed);
    }

    pub fn item_panic(&self) {
        self.item_panics.fetch_add(1, Ordering::Relaxed);
    }

    pub fn prompt_mismatch(&self, n: u64) {
        self.prompt_mismatch.fetch_add(n, Ordering::Relaxed);
    }

    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Counts a request in flight until the guard drops.
    pub fn enter(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self)
    }

    /// Counts an open connection until the guard drops.
    pub fn connection(&self) -> Gauge<'_> {
        Gauge::enter(&self.connections)
    }

    /// Counts a scoring request whose body is being received until the guard drops.
    pub fn reading_body(&self) -> Gauge<'_> {
        Gauge::enter(&self.bodies_reading)
    }

    /// Open connections.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    /// Scoring requests whose body is being received.
    pub fn bodies_reading(&self) -> u64 {
        self.bodies_reading.load(Ordering::Relaxed)
    }

    pub fn connection_refused(&self) {
        self.connections_refused.fetch_add(1, Ordering::Relaxed);
    }

    pub fn body_timeout(&self) {
        self.body_timeouts.fetch_add(1, Ordering::Relaxed);
    }

    /// Marks a request's model work in flight until the guard drops.
    pub fn model_work(&self) -> Gauge<'_> {
        Gauge::enter(&self.model_in_flight)
    }

    /// Requests with model work currently holding a model slot.
    pub fn model_in_flight(&self) -> u64 {
        self.model_in_flight.load(Ordering::Relaxed)
    }

    /// A request with model work was answered 503 (the model queue was full).
    pub fn model_refused(&self) {
        self.model_refused.fetch_add(1, Ordering::Relaxed);
    }

    /// The model part of the exposition: the model queue (requests holding a slot of
    /// `capacity`, refusals) and, per backend that keeps them (`backend` = `policy`,
    /// `judge`), its batching statistics.
    pub fn render_models(
        &self,
        capacity: usize,
        backends: &[(&str, stepwise_model::BatchStats)],
    ) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "# HELP stepwise_model_requests_in_flight Requests whose model work holds a slot of max_model_requests.\n# TYPE stepwise_model_requests_in_flight gauge\nstepwise_model_requests_in_flight {}",
            self.model_in_flight()
        );
        let _ = writeln!(
            o,
            "# HELP stepwise_model_requests_capacity max_model_requests.\n# TYPE stepwise_model_requests_capacity gauge\nstepwise_model_requests_capacity {capacity}"
        );
        let _ = writeln!(
            o,
            "# HELP stepwise_model_requests_refused_total Requests with model work answered 503 (every model slot taken).\n# TYPE stepwise_model_requests_refused_total counter\nstepwise_model_requests_refused_total {}",
            self.model_refused.load(Ordering::Relaxed)
        );
        type Stat = fn(&stepwise_model::BatchStats) -> f64;
        let series: [(&str, &str, &str, Stat); 4] = [
            (
                "stepwise_model_decode_batches_total",
                "counter",
                "Decode batches the model backend ran.",
                |b| b.decode_batches as f64,
            ),
            (
                "stepwise_model_batch_sequences_total",
                "counter",
                "Sequences summed over the backend's decode batches.",
                |b| b.sequences as f64,
            ),
            (
                "stepwise_model_batch_sequences_max",
                "gauge",
                "Most sequences in one decode batch.",
                |b| b.max_sequences as f64,
            ),
            (
                "stepwise_model_batch_sequences_mean",
                "gauge",
                "Mean sequences per decode batch.",
                |b| b.mean_sequences(),
            ),
        ];
        for (name, kind, help, get) in series {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (backend, stats) in backends {
                let _ = writeln!(
                    o,
                    "{name}{{backend=\"{}\"}} {}",
                    escape(backend),
                    get(stats)
                );
            }
        }
        o
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut o = String::new();
        o.push_str("# HELP stepwise_http_requests_total HTTP requests by endpoint and status.\n");
        o.push_str("# TYPE stepwise_http_requests_total counter\n");
        if let Ok(m) = self.requests.lock() {
            for ((ep, status), n) in m.iter() {
                let _ = writeln!(
                    o,
                    "stepwise_http_requests_total{{endpoint=\"{}\",status=\"{status}\"}} {n}",
                    escape(ep)
                );
            }
        }
        o.push_str("# HELP stepwise_http_request_duration_seconds Request latency by endpoint.\n");
        o.push_str("# TYPE stepwise_http_request_duration_seconds histogram\n");
        if let Ok(m) = self.latency.lock() {
            for (ep, h) in m.iter() {
                let ep = escape(ep);
                for (b, c) in LATENCY_BUCKETS.iter().zip(h.counts) {
                    let _ = writeln!(
                        o,
                        "stepwise_http_request_duration_seconds_bucket{{endpoint=\"{ep}\",le=\"{b}\"}} {c}"
                    );
                }
                let _ = writeln!(
                    o,
                    "stepwise_http_request_duration_seconds_bucket{{endpoint=\"{ep}\",le=\"+Inf\"}} {}",
                    h.count
                );
                let _ = writeln!(
                    o,
                    "stepwise_http_request_duration_seconds_sum{{endpoint=\"{ep}\"}} {}",
                    h.sum
                );
                let _ = writeln!(
                    o,
                    "stepwise_http_request_duration_seconds_count{{endpoint=\"{ep}\"}} {}",
                    h.count
                );
            }
        }
        o.push_str("# HELP stepwise_verdicts_total Verifier verdicts.\n");
        o.push_str("# TYPE stepwise_verdicts_total counter\n");
        for (name, c) in ["equal", "not_equal", "undecided"]
            .iter()
            .zip(&self.verdicts)
        {
            let _ = writeln!(
                o,
                "stepwise_verdicts_total{{verdict=\"{name}\"}} {}",
                c.load(Ordering::Relaxed)
            );
        }
        for (name, help, v) in [
            (
                "stepwise_items_total",
                "Items scored or verified.",
                &self.items,
            ),
            (
                "stepwise_items_timed_out_total",
                "Items the request deadline cut off (given the timeout reward).",
                &self.items_timed_out,
            ),
            (
                "stepwise_item_panics_total",
                "Items whose scoring panicked (caught; scored as undecided).",
                &self.item_panics,
            ),
            (
                "stepwise_prompt_mismatch_total",
                "OpenRLHF queries that did not start with their prompt.",
                &self.prompt_mismatch,
            ),
            (
                "stepwise_connections_refused_total",
                "Connections over max_connections (answered 503 and closed).",
                &self.connections_refused,
            ),
            (
                "stepwise_body_read_timeouts_total",
                "Requests whose body did not arrive within body_read_timeout_ms (408).",
                &self.body_timeouts,
            ),
        ] {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} counter");
            let _ = writeln!(o, "{name} {}", v.load(Ordering::Relaxed));
        }
        o.push_str("# HELP stepwise_in_flight_requests Scoring requests being served.\n");
        o.push_str("# TYPE stepwise_in_flight_requests gauge\n");
        let _ = writeln!(o, "stepwise_in_flight_requests {}", self.in_flight());
        for (name, help, v) in [
            (
                "stepwise_open_connections",
                "Open HTTP connections.",
                self.connections(),
            ),
            (
                "stepwise_bodies_reading",
                "Scoring requests whose body is being received (they hold no scoring slot).",
                self.bodies_reading(),
            ),
        ] {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        }
        o
    }
}

/// Decrements the in-flight gauge on drop.
pub struct InFlight<'a>(&'a Metrics);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Decrements a gauge on drop.
pub struct Gauge<'a>(&'a AtomicU64);

impl<'a> Gauge<'a> {
    pub fn enter(g: &'a AtomicU64) -> Self {
        g.fetch_add(1, Ordering::Relaxed);
        Self(g)
    }
}

impl Drop for Gauge<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::default();
        m.observe_request("/v1/verify", 200, 0.003);
        m.observe_request("/v1/verify", 200, 0.2);
        m.observe_request("/v1/verify", 400, 0.0001);
        m.verdict(Verdict::Equal);
        m.items(5, 1);
        let t = m.render();
        assert!(
            t.contains("stepwise_http_requests_total{endpoint=\"/v1/verify\",status=\"200\"} 2")
        );
        assert!(
            t.contains("stepwise_http_requests_total{endpoint=\"/v1/verify\",status=\"400\"} 1")
        );
        assert!(t.contains("duration_seconds_bucket{endpoint=\"/v1/verify\",le=\"0.001\"} 1"));
        assert!(t.contains("duration_seconds_bucket{endpoint=\"/v1/verify\",le=\"0.005\"} 2"));
        assert!(t.contains("duration_seconds_bucket{endpoint=\"/v1/verify\",le=\"+Inf\"} 3"));
        assert!(t.contains("stepwise_verdicts_total{verdict=\"equal\"} 1"));
        assert!(t.contains("stepwise_items_timed_out_total 1"));
        {
            let _g = m.enter();
            assert!(m.render().contains("stepwise_in_flight_requests 1"));
        }
        assert_eq!(m.in_flight(), 0);
        {
            let _c = m.connection();
            let _b = m.reading_body();
            let t = m.render();
            assert!(t.contains("stepwise_open_connections 1"), "{t}");
            assert!(t.contains("stepwise_bodies_reading 1"), "{t}");
        }
        assert_eq!((m.connections(), m.bodies_reading()), (0, 0));
    }
}
