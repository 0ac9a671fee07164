//! `stepwise bench generate`: embedded backend throughput beside llama.cpp's `llama-batched-bench`.

use crate::Global;
use anyhow::Context;
use stepwise_llama::bench::{self, BenchRow};
use stepwise_llama::{EmbeddedConfig, LlamaGenerator, fetch};

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
    /// Rounds: each round measures every configuration on stepwise, then runs llama.cpp's
    /// bench, so the two alternate; the table shows the median of the rounds and their
    /// range (a shared or virtualized machine drifts by 10-20% between minutes).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
}

/// Median of a non-empty list (the mean of the middle two for an even count).
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    match v.len() {
        0 => f64::NAN,
        l if l % 2 == 1 => v[m],
        _ => 0.5 * (v[m - 1] + v[m]),
    }
}

/// `median (min–max)` of a list, or just the value for one round.
fn spread(v: &[f64], decimals: usize) -> String {
    let med = median(v.to_vec());
    if v.len() < 2 {
        return format!("{med:.decimals$}");
    }
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{med:.decimals$} ({lo:.decimals$}–{hi:.decimals$})")
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
    let rounds = args.rounds.max(1);
    let mut prompts = Vec::new();
    for &target in &args.prompt_tokens {
        let (text, pp) = rt.block_on(bench::make_prompt(&g, target))?;
        // Warm-up (page in the weights, size the buffers).
        rt.block_on(bench::measure(&g, &text, pp, 2, 8, 99))?;
        prompts.push((text, pp));
    }
    let pps: Vec<usize> = prompts.iter().map(|(_, pp)| *pp).collect();
    let bin = if args.no_reference {
        None
    } else {
        eprintln!(
            "building llama.cpp's llama-batched-bench if needed (first time: a few minutes)…"
        );
        Some(bench::ensure_batched_bench().context("building llama-batched-bench")?)
    };
    // ours[round][config], refs[round][config]; the engine thread idles (blocked on its
    // channel) while the reference runs.
    let mut ours: Vec<Vec<BenchRow>> = Vec::new();
    let mut refs: Vec<Vec<bench::ReferenceRow>> = Vec::new();
    let mut ref_cmd = None;
    for round in 1..=rounds {
        let mut rows = Vec::new();
        for (text, pp) in &prompts {
            for &n in &args.n {
                let row =
                    rt.block_on(bench::measure(&g, text, *pp, n, args.gen_tokens, n as u64))?;
                let per_step = |t: f64| 1e3 * t / row.tg_steps.max(1) as f64;
                eprintln!(
                    "round {round} stepwise  pp={pp:4} n={n:2}: prompt {:.3}s ({} tokens decoded), generation {:.1} tok/s; per step: decode {:.2} ms, sampling {:.3} ms, other {:.3} ms ({} steps)",
                    row.t_pp,
                    row.pp_decoded,
                    row.s_tg,
                    per_step(row.t_tg_decode),
                    per_step(row.t_tg_sample),
                    per_step(row.t_tg - row.t_tg_decode - row.t_tg_sample),
                    row.tg_steps
                );
                rows.push(row);
            }
        }
        ours.push(rows);
        if let Some(bin) = &bin {
            let (rows, cmd) =
                bench::run_reference(bin, &model, &pps, &args.n, args.gen_tokens, threads, ctx)
                    .context("running llama-batched-bench")?;
            for r in &rows {
                eprintln!(
                    "round {round} llama.cpp pp={:4} n={:2}: prompt {:.3}s, generation {:.1} tok/s",
                    r.pp, r.n, r.t_pp, r.s_tg
                );
            }
            refs.push(rows);
            ref_cmd = Some(cmd);
        }
    }
    drop(g);
    println!(
        "Model: {} · threads: {threads} · {} new tokens per sample · unified KV, shared prompt",
        model.display(),
        args.gen_tokens
    );
    println!(
        "stepwise's llama.cpp build: {}",
        bench::llama_build_profile()
    );
    if let Some(cmd) = &ref_cmd {
        println!("Reference: `{cmd}`");
    }
    println!(
        "Rounds: {rounds} (each round runs every configuration on stepwise, then llama.cpp's bench); cells show the median and, in brackets, the range over the rounds; the ratio is of the medians."
    );
    println!();
    println!(
        "| prompt tokens | N | stepwise prompt s (tokens decoded) | llama.cpp prompt s | stepwise gen tok/s | llama.cpp gen tok/s | ratio |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    let configs = ours.first().cloned().unwrap_or_default();
    for (i, c) in configs.iter().enumerate() {
        let mine: Vec<&BenchRow> = ours.iter().filter_map(|r| r.get(i)).collect();
        let tg: Vec<f64> = mine.iter().map(|r| r.s_tg).collect();
        let tpp: Vec<f64> = mine.iter().map(|r| r.t_pp).collect();
        let theirs: Vec<&bench::ReferenceRow> = refs
            .iter()
            .filter_map(|rows| rows.iter().find(|x| x.pp == c.prompt_tokens && x.n == c.n))
            .collect();
        let (rpp, rtg, ratio) = if theirs.is_empty() {
            ("–".to_string(), "–".to_string(), "–".to_string())
        } else {
            let rt: Vec<f64> = theirs.iter().map(|x| x.s_tg).collect();
            let rp: Vec<f64> = theirs.iter().map(|x| x.t_pp).collect();
            (
                spread(&rp, 3),
                spread(&rt, 1),
                format!("{:.2}x", median(tg.clone()) / median(rt.clone())),
            )
        };
        println!(
            "| {} | {} | {} ({}) | {rpp} | {} | {rtg} | {ratio} |",
            c.prompt_tokens,
            c.n,
            spread(&tpp, 3),
            c.pp_decoded,
            spread(&tg, 1)
        );
    }
    println!();
    println!(
        "gen tok/s = N x {} generated tokens / time after the prompt. stepwise samples every token (top-k 40, T 0.7, per-sample seeded sampler); llama-batched-bench feeds random tokens without sampling.",
        args.gen_tokens
    );
    Ok(())
}
