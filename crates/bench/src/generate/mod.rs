//! `stepwise bench generate`: embedded backend throughput beside llama.cpp's `llama-batched-bench`.
//!
//! Each round measures every (prompt length, N) configuration on stepwise, then runs
//! llama.cpp's bench over the same configurations, so the two alternate; the table shows
//! the medians of the rounds and their ranges.

pub mod backends;

use crate::report::{Align, Table, publish};
use crate::stats::{alternate, ratio_of_medians, spread};
use crate::{BenchError, CommonArgs};
use backends::{BenchRow, ReferenceRow};
use std::fmt::Write as _;
use std::path::PathBuf;

/// Rounds when `--rounds` is not given (the published table's setting).
pub const DEFAULT_ROUNDS: usize = 3;

/// `stepwise bench generate`: generation throughput, embedded backend versus llama.cpp's batched-bench.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Parallel samples per run (comma separated).
    #[arg(long, value_delimiter = ',', default_value = "1,4,8,16,32")]
    pub n: Vec<usize>,
    /// Prompt lengths in tokens (comma separated).
    #[arg(long, value_delimiter = ',', default_value = "35,500")]
    pub prompt_tokens: Vec<usize>,
    /// New tokens per sample (end-of-sequence ignored).
    #[arg(long = "gen", default_value_t = 128)]
    pub gen_tokens: usize,
    /// GGUF model (default: the default model).
    #[arg(long, env = "STEPWISE_MODEL", value_name = "PATH.gguf")]
    pub model: Option<PathBuf>,
}

/// The comparison: stepwise's rows and llama.cpp's, per round.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub model: PathBuf,
    pub threads: usize,
    pub gen_tokens: usize,
    pub rounds: usize,
    /// `ours[round][config]`, configurations in (prompt length, N) order.
    pub ours: Vec<Vec<BenchRow>>,
    /// `theirs[round]`: llama.cpp's rows of that round (empty with `--no-reference`).
    pub theirs: Vec<Vec<ReferenceRow>>,
    /// The reference command as run, for the header.
    pub reference_cmd: Option<String>,
    /// How llama.cpp inside this binary was compiled.
    pub build_profile: String,
}

impl Report {
    /// The Markdown section: conditions, the table, how gen tok/s is computed.
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "Model: {} · threads: {} · {} new tokens per sample · unified KV, shared prompt",
            self.model.display(),
            self.threads,
            self.gen_tokens
        );
        let _ = writeln!(s, "stepwise's llama.cpp build: {}", self.build_profile);
        if let Some(cmd) = &self.reference_cmd {
            let _ = writeln!(s, "Reference: `{cmd}`");
        }
        let order = if self.reference_cmd.is_some() {
            "each round runs every configuration on stepwise, then llama.cpp's bench"
        } else {
            "stepwise only: no reference run"
        };
        let _ = writeln!(
            s,
            "Rounds: {} ({order}); cells show the median and, in brackets, the range over the rounds; the ratio is of the medians.\n",
            self.rounds
        );
        let mut t = Table::new(&[
            ("prompt tokens", Align::Right),
            ("N", Align::Right),
            ("stepwise prompt s (tokens decoded)", Align::Right),
            ("llama.cpp prompt s", Align::Right),
            ("stepwise gen tok/s", Align::Right),
            ("llama.cpp gen tok/s", Align::Right),
            ("ratio", Align::Right),
        ]);
        let configs = self.ours.first().cloned().unwrap_or_default();
        for (i, c) in configs.iter().enumerate() {
            let mine: Vec<&BenchRow> = self.ours.iter().filter_map(|r| r.get(i)).collect();
            let tg: Vec<f64> = mine.iter().map(|r| r.s_tg).collect();
            let tpp: Vec<f64> = mine.iter().map(|r| r.t_pp).collect();
            let theirs: Vec<&ReferenceRow> = self
                .theirs
                .iter()
                .filter_map(|rows| rows.iter().find(|x| x.pp == c.prompt_tokens && x.n == c.n))
                .collect();
            let rtg: Vec<f64> = theirs.iter().map(|x| x.s_tg).collect();
            let rpp: Vec<f64> = theirs.iter().map(|x| x.t_pp).collect();
            let ratio = if rtg.is_empty() {
                "–".to_string()
            } else {
                format!("{:.2}x", ratio_of_medians(&tg, &rtg))
            };
            t.row([
                c.prompt_tokens.to_string(),
                c.n.to_string(),
                format!("{} ({})", spread(&tpp, 3), c.pp_decoded),
                spread(&rpp, 3),
                spread(&tg, 1),
                spread(&rtg, 1),
                ratio,
            ]);
        }
        s.push_str(&t.to_markdown());
        let _ = writeln!(
            s,
            "\ngen tok/s = N x {} generated tokens / time after the prompt. stepwise samples every token (top-k 40, T 0.7, per-sample seeded sampler); llama-batched-bench feeds random tokens without sampling.",
            self.gen_tokens
        );
        s
    }
}

/// The context both sides get: the longest prompt plus every sample of the largest N.
fn context_size(prompt_tokens: &[usize], n: &[usize], gen_tokens: usize) -> u32 {
    let max_n = n.iter().copied().max().unwrap_or(1);
    let max_pp = prompt_tokens.iter().copied().max().unwrap_or(1);
    ((max_pp + max_n * (gen_tokens + 1) + 256) as u32).max(2048)
}

/// Measures both sides in alternating rounds.
pub fn measure(args: &Args) -> Result<Report, BenchError> {
    if args.n.is_empty()
        || args.prompt_tokens.is_empty()
        || args.n.contains(&0)
        || args.gen_tokens == 0
    {
        return Err(BenchError::Options(
            "--n, --prompt-tokens and --gen need positive values".into(),
        ));
    }
    let c = &args.common;
    let model = match &args.model {
        Some(p) => p.clone(),
        None => backends::default_model()?,
    };
    let threads = c.threads();
    let rounds = c.rounds_or(DEFAULT_ROUNDS);
    let ctx = context_size(&args.prompt_tokens, &args.n, args.gen_tokens);
    let max_n = args.n.iter().copied().max().unwrap_or(1);
    let g = backends::open_engine(&model, threads, ctx, max_n)?;
    let rt = crate::runtime()?;
    let mut prompts = Vec::new();
    for &target in &args.prompt_tokens {
        let (text, pp) = rt.block_on(backends::make_prompt(&g, target))?;
        // Warm-up (page in the weights, size the buffers).
        rt.block_on(backends::measure(&g, &text, pp, 2, 8, 99))?;
        prompts.push((text, pp));
    }
    let pps: Vec<usize> = prompts.iter().map(|(_, pp)| *pp).collect();
    let bin = if c.no_reference {
        None
    } else {
        eprintln!(
            "building llama.cpp's llama-batched-bench if needed (first time: a few minutes)…"
        );
        Some(backends::ensure_batched_bench(c)?)
    };
    // The engine thread idles (blocked on its channel) while the reference runs.
    let mut ours: Vec<Vec<BenchRow>> = Vec::new();
    let mut theirs: Vec<Vec<ReferenceRow>> = Vec::new();
    let mut reference_cmd = None;
    alternate(
        rounds,
        |round| {
            let mut rows = Vec::new();
            for (text, pp) in &prompts {
                for &n in &args.n {
                    let row = rt.block_on(backends::measure(
                        &g,
                        text,
                        *pp,
                        n,
                        args.gen_tokens,
                        n as u64,
                    ))?;
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
            Ok(())
        },
        |round| {
            let Some(bin) = &bin else {
                return Ok(());
            };
            let (rows, cmd) =
                backends::run_reference(bin, &model, &pps, &args.n, args.gen_tokens, threads, ctx)?;
            for r in &rows {
                eprintln!(
                    "round {round} llama.cpp pp={:4} n={:2}: prompt {:.3}s, generation {:.1} tok/s",
                    r.pp, r.n, r.t_pp, r.s_tg
                );
            }
            theirs.push(rows);
            reference_cmd = Some(cmd);
            Ok::<(), BenchError>(())
        },
    )?;
    drop(g);
    Ok(Report {
        model,
        threads,
        gen_tokens: args.gen_tokens,
        rounds,
        ours,
        theirs,
        reference_cmd,
        build_profile: backends::llama_build_profile(),
    })
}

/// `stepwise bench generate`: measures, prints the Markdown section and writes it to `--out`.
pub fn run(args: &Args) -> Result<(), BenchError> {
    let report = measure(args)?;
    publish(&report.to_markdown(), args.common.out.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pp: usize, n: usize, s_tg: f64) -> BenchRow {
        BenchRow {
            prompt_tokens: pp,
            n,
            gen_tokens: 8,
            t_pp: 0.1,
            pp_decoded: pp - 1,
            t_tg: 1.0,
            s_tg,
            t_total: 1.1,
            tg_steps: 8,
            t_tg_decode: 0.8,
            t_tg_sample: 0.01,
        }
    }

    fn reference(pp: usize, n: usize, s_tg: f64) -> ReferenceRow {
        ReferenceRow {
            pp,
            n,
            t_pp: 0.2,
            s_tg,
            t_total: 1.0,
        }
    }

    #[test]
    fn the_table_pairs_configurations_across_rounds() {
        let r = Report {
            model: "m.gguf".into(),
            threads: 2,
            gen_tokens: 8,
            rounds: 2,
            ours: vec![
                vec![row(35, 1, 100.0), row(35, 4, 150.0)],
                vec![row(35, 1, 120.0), row(35, 4, 170.0)],
            ],
            theirs: vec![
                vec![reference(35, 4, 80.0), reference(35, 1, 100.0)],
                vec![reference(35, 1, 120.0), reference(35, 4, 80.0)],
            ],
            reference_cmd: Some("llama-batched-bench -m m.gguf".into()),
            build_profile: "Release (LLAMA_LIB_PROFILE)".into(),
        };
        let md = r.to_markdown();
        assert!(
            md.starts_with("Model: m.gguf · threads: 2 · 8 new tokens per sample"),
            "{md}"
        );
        assert!(
            md.contains("Reference: `llama-batched-bench -m m.gguf`"),
            "{md}"
        );
        assert!(md.contains("Rounds: 2 "), "{md}");
        assert!(
            md.contains("| 35 | 1 | 0.100 (0.100–0.100) (34) | 0.200 (0.200–0.200) | 110.0 (100.0–120.0) | 110.0 (100.0–120.0) | 1.00x |"),
            "{md}"
        );
        assert!(md.contains("| 35 | 4 | 0.100 (0.100–0.100) (34) | 0.200 (0.200–0.200) | 160.0 (150.0–170.0) | 80.0 (80.0–80.0) | 2.00x |"), "{md}");
        assert!(md.contains("gen tok/s = N x 8 generated tokens"), "{md}");
    }

    #[test]
    fn without_the_reference_its_cells_are_empty() {
        let r = Report {
            model: "m.gguf".into(),
            threads: 1,
            gen_tokens: 8,
            rounds: 1,
            ours: vec![vec![row(35, 1, 100.0)]],
            theirs: vec![],
            reference_cmd: None,
            build_profile: "Release".into(),
        };
        let md = r.to_markdown();
        assert!(!md.contains("Reference:"), "{md}");
        assert!(
            md.contains("Rounds: 1 (stepwise only: no reference run)"),
            "{md}"
        );
        assert!(
            md.contains("| 35 | 1 | 0.100 (34) | – | 100.0 | – | – |"),
            "{md}"
        );
    }

    #[test]
    fn the_context_holds_the_longest_prompt_and_every_sample() {
        // the published run: 500-token prompt, N=32, 128 tokens: -c 4884
        assert_eq!(context_size(&[35, 500], &[1, 4, 8, 16, 32], 128), 4884);
        assert_eq!(context_size(&[35], &[1], 8), 2048);
    }
}
