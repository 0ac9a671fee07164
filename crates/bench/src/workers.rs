//! `stepwise bench workers`: how one run's throughput grows with the number of workers
//! sharing it through PostgreSQL, against the single SQLite process.
//!
//! The job is a scripted generator behind a fixed per-unit latency (one `generate` call
//! per unit after sleeping `--latency-ms`), so the model, not the store, is the
//! bottleneck, as with real endpoints; each worker does one unit at a time
//! (`concurrency` 1) on its own connection, as one process per machine would. For 1, 2,
//! 4 and 8 workers a fresh run of `--units-per-worker × workers` units is created in a
//! throwaway PostgreSQL cluster (or `--pg URL`) and the workers run it to the end; the
//! SQLite row is the same job, one worker, on a SQLite file. Workers run in this process
//! (one runtime, a connection each), so the numbers measure the claiming protocol, not
//! process start-up. Ideal: units/s = workers / latency.

use crate::report::{Align, Table};
use crate::{BenchError, CommonArgs, stats};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, Instant};
use stepwise_jobs::{Job, Resume, RunKind, RunOptions, RunStore, Stop, UnitError};
use stepwise_model::scripted::ScriptedGenerator;
use stepwise_model::{GenerateRequest, Generator, Prompt, SamplingParams};
use stepwise_store::pg::TempCluster;
use stepwise_store::{PgStore, SqliteStore, StoreOptions};

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Worker counts to measure on PostgreSQL.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8")]
    pub workers: Vec<usize>,
    /// Latency of one unit (the scripted generator's call) in milliseconds.
    #[arg(long, default_value_t = 100)]
    pub latency_ms: u64,
    /// Units of a run per worker.
    #[arg(long, default_value_t = 20)]
    pub units_per_worker: usize,
    /// A PostgreSQL server to use instead of a throwaway cluster (its runs are kept).
    #[arg(long, value_name = "URL")]
    pub pg: Option<String>,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// The bench's run kind.
pub struct BenchKind;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchConfig {
    pub units: usize,
    pub latency_ms: u64,
    /// Which measurement (every run is a fresh one).
    pub nonce: String,
}

impl RunKind for BenchKind {
    const KIND: &'static str = "bench-workers";
    const VERSION: u32 = 1;
    type Config = BenchConfig;
    type Record = String;
}

struct LatencyJob {
    config: BenchConfig,
    generator: Arc<dyn Generator>,
}

impl LatencyJob {
    fn new(config: BenchConfig) -> Self {
        let generator = ScriptedGenerator::new(|req, _| match &req.prompt {
            Prompt::Text(t) => format!("{t} = {}", t.len()),
            Prompt::Chat(_) => String::new(),
        });
        Self {
            config,
            generator: Arc::new(generator),
        }
    }
}

#[async_trait::async_trait]
impl Job for LatencyJob {
    type Kind = BenchKind;
    type Unit = usize;
    type Tally = ();

    fn config(&self) -> &BenchConfig {
        &self.config
    }

    fn units(&self) -> Vec<(String, usize)> {
        (0..self.config.units)
            .map(|i| (format!("u{i}"), i))
            .collect()
    }

    async fn run_unit(&self, unit: &usize) -> Result<String, UnitError> {
        tokio::time::sleep(Duration::from_millis(self.config.latency_ms)).await;
        let req = GenerateRequest {
            prompt: Prompt::Text(format!("{unit} + 1")),
            assistant_prefix: String::new(),
            params: SamplingParams::default(),
        };
        let out = self.generator.generate(&req).await?;
        Ok(out.into_iter().next().map(|c| c.text).unwrap_or_default())
    }
}

fn opts(resume: Resume) -> RunOptions {
    RunOptions {
        resume,
        concurrency: 1,
        progress: false,
        stop: Stop::Never,
    }
}

fn job_err(e: stepwise_jobs::JobError) -> BenchError {
    BenchError::Tool(format!(
        "the bench job failed: {}",
        stepwise_core::error_chain(&e)
    ))
}

fn store_err(e: stepwise_store::StoreError) -> BenchError {
    BenchError::Tool(format!("run store: {}", stepwise_core::error_chain(&e)))
}

/// Runs one fresh run of `units` units with `stores.len()` workers; returns units/s.
fn measure(
    rt: &tokio::runtime::Runtime,
    stores: &[Box<dyn RunStore>],
    units: usize,
    latency_ms: u64,
    nonce: String,
) -> Result<f64, BenchError> {
    let config = BenchConfig {
        units,
        latency_ms,
        nonce,
    };
    let jobs: Vec<LatencyJob> = stores
        .iter()
        .map(|_| LatencyJob::new(config.clone()))
        .collect();
    let value = serde_json::to_value(&config).map_err(|e| BenchError::Tool(e.to_string()))?;
    let run = stores[0]
        .create_run(BenchKind::KIND, BenchKind::VERSION, &value)
        .map_err(store_err)?;
    let joined = opts(Resume::Run(run));
    let t0 = Instant::now();
    let reports = rt.block_on(futures::future::join_all(
        jobs.iter()
            .zip(stores)
            .map(|(j, s)| stepwise_jobs::run(s.as_ref(), j, &joined)),
    ));
    let secs = t0.elapsed().as_secs_f64();
    let mut done = 0;
    for r in reports {
        done += r.map_err(job_err)?.done_now;
    }
    if done != units {
        return Err(BenchError::Tool(format!(
            "{done} units done by the workers, expected {units}"
        )));
    }
    Ok(units as f64 / secs)
}

/// Measures, prints the Markdown section and writes it to `--out`.
pub fn run(args: &Args) -> Result<(), BenchError> {
    if args.workers.is_empty() || args.workers.contains(&0) || args.units_per_worker == 0 {
        return Err(BenchError::Options(
            "--workers needs counts of at least 1 and --units-per-worker at least 1".into(),
        ));
    }
    let rounds = args.common.rounds_or(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(crate::io("starting the async runtime"))?;
    let cluster = match &args.pg {
        Some(_) => None,
        None => Some(TempCluster::start().map_err(|e| BenchError::Tool(e.to_string()))?),
    };
    let url = match &cluster {
        Some(c) => c.url(),
        None => args.pg.clone().unwrap_or_default(),
    };
    let scratch = tempfile::tempdir().map_err(crate::io("creating a scratch folder"))?;
    let lite: Vec<Box<dyn RunStore>> = vec![Box::new(
        SqliteStore::open(scratch.path().join("runs.sqlite")).map_err(store_err)?,
    )];
    let max = args.workers.iter().copied().max().unwrap_or(1);
    let pg: Vec<Box<dyn RunStore>> = (0..max)
        .map(|_| {
            PgStore::connect(&url, &StoreOptions::default())
                .map(|s| Box::new(s) as Box<dyn RunStore>)
                .map_err(store_err)
        })
        .collect::<Result<_, _>>()?;
    let mut sqlite_rates = Vec::new();
    let mut pg_rates: Vec<Vec<f64>> = vec![Vec::new(); args.workers.len()];
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    for round in 0..rounds {
        let rate = measure(
            &rt,
            &lite,
            args.units_per_worker,
            args.latency_ms,
            format!("{stamp}-{round}-sqlite"),
        )?;
        sqlite_rates.push(rate);
        for (i, &w) in args.workers.iter().enumerate() {
            let rate = measure(
                &rt,
                &pg[..w],
                args.units_per_worker * w,
                args.latency_ms,
                format!("{stamp}-{round}-pg{w}"),
            )?;
            pg_rates[i].push(rate);
        }
    }
    let ideal_one = 1000.0 / args.latency_ms.max(1) as f64;
    let base = stats::median(
        args.workers
            .iter()
            .position(|&w| w == 1)
            .map_or(&sqlite_rates, |i| &pg_rates[i]),
    );
    let mut t = Table::new(&[
        ("store", Align::Left),
        ("workers", Align::Right),
        ("units", Align::Right),
        ("units/s", Align::Right),
        ("speed-up", Align::Right),
        ("of linear", Align::Right),
    ]);
    t.row([
        "SQLite (one process)".to_string(),
        "1".into(),
        args.units_per_worker.to_string(),
        stats::spread(&sqlite_rates, 1),
        "–".into(),
        "–".into(),
    ]);
    for (i, &w) in args.workers.iter().enumerate() {
        let m = stats::median(&pg_rates[i]);
        t.row([
            "PostgreSQL".to_string(),
            w.to_string(),
            (args.units_per_worker * w).to_string(),
            stats::spread(&pg_rates[i], 1),
            format!("{:.2}×", m / base),
            format!("{:.2}", m / base / w as f64),
        ]);
    }
    let md = format!(
        "## Workers sharing one run\n\n\
         Scripted generator with {} ms per unit (ideal: {:.1} units/s per worker), one unit at a \
         time per worker, {} units per worker, {} round(s) (median, range in brackets). \
         Speed-up is against one PostgreSQL worker; \"of linear\" is speed-up / workers.\n\n{}",
        args.latency_ms,
        ideal_one,
        args.units_per_worker,
        rounds,
        t.to_markdown()
    );
    crate::report::publish(&md, args.common.out.as_deref())
}
