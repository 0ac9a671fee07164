//! `stepwise bench generate`: embedded backend throughput beside llama.cpp's `llama-batched-bench`.

use crate::Global;
use anyhow::Context;
use stepwise_engine::bench::{self, BenchRow};
use stepwise_engine::{EmbeddedConfig, LlamaGenerator, fetch};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Parallel samples per run (comma separated).
    #[arg(long, value_delimiter = ',', default_value = "1,4,8,16,32")]
    pub n: Vec<usize>,
    /// Prompt lengths in tokens (comma separated).
    #[arg(long, value_delimiter = ',', default_value = "35,500")]
    pub prompt_tokens: Vec<usize>,
    /// New tokens per sample (end-of-sequence ignored).
    #[arg(long = "gen", default_value_t = 128)]
    pub gen_tokens: usize,
    /// CPU threads for both (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// GGUF model (default: the default model).
    #[arg(long, env = "STEPWISE_MODEL", value_name = "PATH.gguf")]
    pub model: Option<std::path::PathBuf>,
    /// Skip llama.cpp's reference run.
    #[arg(long)]
    pub no_reference: bool,
}

pub fn run(args: Args, _g: &Global) -> anyhow::Result<()> {
    let model = match &args.model {
        Some(p) => p.clone(),
        None => fetch::ensure_default_model().context("fetching the default model")?,
    };
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let max_n = args.n.iter().copied().max().unwrap_or(1);
    let max_pp = args.prompt_tokens.iter().copied().max().unwrap_or(1);
    let ctx = ((max_pp + max_n * (args.gen_tokens + 1) + 256) as u32).max(2048);
    let mut cfg = EmbeddedConfig::new(&model);
    cfg.threads = Some(threads);
    cfg.ctx_size = ctx;
    cfg.n_seq_max = (max_n as u32 + 4).max(8);
    // Every run pays its own prompt processing (no reuse across runs).
    cfg.prefix_cache_entries = 0;
    let g = LlamaGenerator::open(cfg).context("loading the model")?;
    let rt = crate::cmd::runtime()?;
    let mut ours: Vec<BenchRow> = Vec::new();
    let mut pps = Vec::new();
    for &target in &args.prompt_tokens {
        let (text, pp) = rt.block_on(bench::make_prompt(&g, target))?;
        pps.push(pp);
        // Warm-up (page in the weights, size the buffers).
        rt.block_on(bench::measure(&g, &text, pp, 2, 8, 99))?;
        for &n in &args.n {
            let row = rt.block_on(bench::measure(&g, &text, pp, n, args.gen_tokens, n as u64))?;
            let per_step = |t: f64| 1e3 * t / row.tg_steps.max(1) as f64;
            eprintln!(
                "stepwise  pp={pp:4} n={n:2}: prompt {:.3}s ({} tokens decoded), generation {:.1} tok/s; per step: decode {:.2} ms, sampling {:.3} ms, other {:.3} ms ({} steps)",
                row.t_pp,
                row.pp_decoded,
                row.s_tg,
                per_step(row.t_tg_decode),
                per_step(row.t_tg_sample),
                per_step(row.t_tg - row.t_tg_decode - row.t_tg_sample),
                row.tg_steps
            );
            ours.push(row);
        }
    }
    drop(g);
    let reference = if args.no_reference {
        None
    } else {
        eprintln!("building/running llama.cpp's llama-batched-bench (first time: a few minutes)…");
        let bin = bench::ensure_batched_bench().context("building llama-batched-bench")?;
        Some(
            bench::run_reference(&bin, &model, &pps, &args.n, args.gen_tokens, threads, ctx)
                .context("running llama-batched-bench")?,
        )
    };
    println!(
        "Model: {} · threads: {threads} · {} new tokens per sample · unified KV, shared prompt",
        model.display(),
        args.gen_tokens
    );
    println!(
        "stepwise's llama.cpp build: {}",
        bench::llama_build_profile()
    );
    if let Some((_, cmd)) = &reference {
        println!("Reference: `{cmd}`");
    }
    println!();
    println!(
        "| prompt tokens | N | stepwise prompt s (tokens decoded) | llama.cpp prompt s | stepwise gen tok/s | llama.cpp gen tok/s | ratio |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for r in &ours {
        let refrow = reference
            .as_ref()
            .and_then(|(rows, _)| rows.iter().find(|x| x.pp == r.prompt_tokens && x.n == r.n));
        let (rpp, rtg, ratio) = match refrow {
            Some(x) => (
                format!("{:.3}", x.t_pp),
                format!("{:.1}", x.s_tg),
                format!("{:.2}x", r.s_tg / x.s_tg),
            ),
            None => ("–".into(), "–".into(), "–".into()),
        };
        println!(
            "| {} | {} | {:.3} ({}) | {rpp} | {:.1} | {rtg} | {ratio} |",
            r.prompt_tokens, r.n, r.t_pp, r.pp_decoded, r.s_tg
        );
    }
    println!();
    println!(
        "gen tok/s = N x {} generated tokens / time after the prompt. stepwise samples every token (top-k 40, T 0.7, per-sample seeded sampler); llama-batched-bench feeds random tokens without sampling.",
        args.gen_tokens
    );
    Ok(())
}
