//! Times generation steps of the embedded backend: decode vs sampling per step.
//!
//! `cargo run --release -p stepwise-llama --example gen_probe -- [PROMPT_TOKENS] [N,N,...] [REPEATS] [GEN_TOKENS]`
//! (model: `STEPWISE_MODEL` or the default model; 2 threads unless `STEPWISE_THREADS`).

use stepwise_llama::{EmbeddedConfig, LlamaGenerator, bench, fetch};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let pp: usize = args.get(1).map_or(Ok(500), |s| s.parse())?;
    let ns: Vec<usize> = args
        .get(2)
        .map_or("1,32", String::as_str)
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let repeats: usize = args.get(3).map_or(Ok(1), |s| s.parse())?;
    let gen_len: usize = args.get(4).map_or(Ok(128), |s| s.parse())?;
    let model = match std::env::var_os("STEPWISE_MODEL") {
        Some(p) => p.into(),
        None => fetch::ensure_default_model()?,
    };
    let threads: usize = std::env::var("STEPWISE_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let max_n = ns.iter().copied().max().unwrap_or(1);
    let mut cfg = EmbeddedConfig::new(&model);
    cfg.threads = Some(threads);
    cfg.ctx_size = ((pp + max_n * (gen_len + 1) + 256) as u32).max(2048);
    cfg.n_seq_max = (max_n as u32 + 4).max(8);
    cfg.prefix_cache_entries = 0;
    let g = LlamaGenerator::open(cfg)?;
    let rt = tokio::runtime::Builder::new_current_thread().build()?;
    let (text, pp) = rt.block_on(bench::make_prompt(&g, pp))?;
    rt.block_on(bench::measure(&g, &text, pp, 2, 8, 99))?;
    for rep in 0..repeats {
        for &n in &ns {
            let r = rt.block_on(bench::measure(&g, &text, pp, n, gen_len, n as u64))?;
            let other = r.t_tg - r.t_tg_decode - r.t_tg_sample;
            println!(
                "rep {rep} pp={pp} n={n:2}: {:.1} tok/s  steps {}  per step: decode {:.2} ms, sample {:.3} ms, other {:.3} ms",
                r.s_tg,
                r.tg_steps,
                1e3 * r.t_tg_decode / r.tg_steps.max(1) as f64,
                1e3 * r.t_tg_sample / r.tg_steps.max(1) as f64,
                1e3 * other / r.tg_steps.max(1) as f64,
            );
        }
    }
    Ok(())
}
