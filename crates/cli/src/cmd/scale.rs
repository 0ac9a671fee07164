//! `stepwise scale`: accuracy versus compute for several strategies over budgets.

use super::backend::BackendArgs;
use super::solve::{SearchArgs, load_problems, progress};
use crate::Global;
use anyhow::{Context as _, bail};
use std::path::PathBuf;
use stepwise_data::RunStore;
use stepwise_search::record;
use stepwise_search::scale::{
    ScaleConfig, ScaleRunner, ScaleStrategy, UnitResult, markdown_table, summarize,
};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Dataset: arith:OPTIONS, gsm8k:test, math500, or a JSONL/Parquet file.
    #[arg(long)]
    pub data: String,
    /// Use at most this many problems.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Comma-separated: majority, weighted, bon, beam, vbeam, dvts, mcts.
    #[arg(long, value_delimiter = ',', default_value = "majority,weighted,bon")]
    pub strategies: Vec<ScaleStrategy>,
    /// Comma-separated budgets: samples (majority, weighted, bon) or candidates per step
    /// (beam, vbeam, dvts, mcts).
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8")]
    pub n: Vec<usize>,
    /// Write scale.md, scale.json, scale.png and scale.svg here.
    #[arg(long, value_name = "DIR", default_value = "scale-out")]
    pub out: PathBuf,
    /// Resume run RUN_ID of the store (the same settings are required).
    #[arg(long, value_name = "RUN_ID")]
    pub resume: Option<i64>,
    #[command(flatten)]
    pub search: SearchArgs,
    #[command(flatten)]
    pub backend: BackendArgs,
}

pub fn run(args: Args, g: &Global) -> anyhow::Result<()> {
    let problems = load_problems(&args.data, args.limit, g)?;
    let s = &args.search;
    let mut ctx = s.context(&args.backend)?;
    if ctx.scorer.is_none() && args.strategies.iter().any(|x| x.needs_scorer()) {
        bail!("strategies other than majority need --scorer (e.g. --scorer arith)");
    }
    if args.strategies.iter().all(|x| !x.needs_scorer()) {
        ctx.scorer = None;
    }
    let config = ScaleConfig {
        strategies: args.strategies.clone(),
        ns: args.n.clone(),
        expansions: s.expansions,
        max_steps: s.max_steps,
    };
    let policy_name = ctx.policy.name();
    let runner = ScaleRunner::new(ctx, config.clone(), problems)?;

    if let Some(dir) = s.store.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut store =
        RunStore::open(&s.store).with_context(|| format!("opening {}", s.store.display()))?;
    let run_config = serde_json::json!({
        "data": args.data, "limit": args.limit, "scale": config,
        "policy": policy_name, "search": s.fingerprint(),
    });
    let run_id = store.create_or_resume("scale", &run_config, args.resume)?;
    let done = store.done_keys(run_id)?;
    let units = runner.units();
    let todo: Vec<_> = units
        .into_iter()
        .filter(|(k, _)| !done.contains(k))
        .collect();
    eprintln!(
        "run {run_id} in {}: {} units to do, {} already done (resume with --resume {run_id})",
        s.store.display(),
        todo.len(),
        done.len()
    );
    let pb = progress(todo.len() as u64, g, "scale");
    let rt = super::runtime()?;
    rt.block_on(record::for_each_concurrent(
        todo,
        s.jobs,
        |(key, unit)| {
            let runner = &runner;
            async move {
                let r = runner.run(&unit).await.map_err(anyhow::Error::from)?;
                Ok::<_, anyhow::Error>((key, r))
            }
        },
        |(key, result)| -> anyhow::Result<()> {
            let payload = serde_json::to_value(&result)?;
            let u = stepwise_data::UnitRecord::new(
                key.clone(),
                result.problem_id().to_string(),
                payload,
            );
            store.record(run_id, &u)?;
            pb.inc(1);
            pb.set_message(key);
            Ok(())
        },
    ))?;
    pb.finish_and_clear();
    store.set_status(run_id, stepwise_data::store::RunStatus::Done)?;

    let mut results = Vec::new();
    for u in store.units(run_id)? {
        let r: UnitResult = serde_json::from_value(u.unit.payload)
            .with_context(|| format!("run {run_id}: unit {} is not a scale result", u.unit.key))?;
        results.push(r);
    }
    let rows = summarize(&config, &runner.problems, &results, &runner.ctx.verify);
    let table = markdown_table(&rows);
    println!("{table}");
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let title = format!(
        "{}: accuracy vs tokens ({} problems)",
        args.data,
        runner.problems.len()
    );
    std::fs::write(args.out.join("scale.md"), &table)
        .with_context(|| format!("writing {}", args.out.join("scale.md").display()))?;
    std::fs::write(
        args.out.join("scale.json"),
        serde_json::to_string_pretty(&rows)?,
    )
    .with_context(|| format!("writing {}", args.out.join("scale.json").display()))?;
    // accuracy (with bootstrap intervals over problems) against mean tokens, pass@N dashed
    let points = stepwise_eval::runs::scale_points(&rows, Default::default());
    stepwise_eval::plot::write_both(
        &stepwise_eval::plot::AccuracyVsTokens {
            title,
            points: &points,
        },
        &args.out.join("scale"),
    )?;
    eprintln!(
        "wrote {0}/scale.md, scale.json, scale.png, scale.svg",
        args.out.display()
    );
    Ok(())
}
