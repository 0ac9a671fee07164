//! The two sides of `bench generate`: the embedded backend (the only module of this crate
//! that uses `stepwise-llama`) and llama.cpp's own `llama-batched-bench`.
//!
//! The reference is built from the PyPI sdist of `llama-cpp-python` (which vendors the whole
//! llama.cpp tree, including `tools/batched-bench`) into the stepwise cache, once.

use crate::{BenchError, CommonArgs, io, run_tool as run};
use std::path::{Path, PathBuf};
use std::process::Command;
use stepwise_llama::{EmbeddedConfig, GenOptions, LlamaGenerator, fetch};
use stepwise_model::{GenerateRequest, Prompt, SamplingParams};

/// `LLAMA_LIB_PROFILE` when this crate was compiled. `llama-cpp-sys-2` compiles llama.cpp as
/// CMake `RelWithDebInfo` (`-O2`) whenever the cargo profile has debug info (this workspace's
/// release profile does) unless `LLAMA_LIB_PROFILE` says otherwise, while the reference is a
/// CMake `Release` (`-O3`) build. Measured on the 500-token prompt at N=32: the `-O2` build
/// spends ~19% more time per decode step, which was the whole gap to the reference.
pub const LLAMA_LIB_PROFILE: Option<&str> = option_env!("LLAMA_LIB_PROFILE");

/// How llama.cpp inside this binary was most likely compiled, for bench headers.
pub fn llama_build_profile() -> String {
    match LLAMA_LIB_PROFILE {
        Some(p) => format!("{p} (LLAMA_LIB_PROFILE)"),
        None if cfg!(debug_assertions) => "debug build of stepwise".to_string(),
        None => "RelWithDebInfo -O2 if the cargo profile has debug info (set LLAMA_LIB_PROFILE=Release for -O3)".to_string(),
    }
}

/// Version of the llama-cpp-python sdist whose vendored llama.cpp is the reference.
pub const REFERENCE_SDIST: &str = "llama-cpp-python==0.3.36";
const SDIST_DIR: &str = "llama_cpp_python-0.3.36";

/// The default model, fetched when missing.
pub fn default_model() -> Result<PathBuf, BenchError> {
    Ok(fetch::ensure_default_model()?)
}

/// The embedded backend sized for the largest configuration: every run pays its own
/// prompt processing (no prefix cache), `n_seq_max` leaves room for the largest N.
pub fn open_engine(
    model: &Path,
    threads: usize,
    ctx: u32,
    max_n: usize,
) -> Result<LlamaGenerator, BenchError> {
    let mut cfg = EmbeddedConfig::new(model);
    cfg.threads = Some(threads);
    cfg.ctx_size = ctx;
    cfg.n_seq_max = (max_n as u32 + 4).max(8);
    cfg.prefix_cache_entries = 0;
    Ok(LlamaGenerator::open(cfg)?)
}

/// One measured configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchRow {
    pub prompt_tokens: usize,
    pub n: usize,
    pub gen_tokens: usize,
    /// Prompt processing time (s) and prompt tokens actually decoded.
    pub t_pp: f64,
    pub pp_decoded: usize,
    /// Generation time (s) after the prompt.
    pub t_tg: f64,
    /// Aggregate generated tokens per second: `n * gen_len / t_tg`.
    pub s_tg: f64,
    pub t_total: f64,
    /// Decode calls after the prompt, and the seconds they spent in llama.cpp's `decode` and
    /// in sampling (the rest of `t_tg` is batch building and bookkeeping).
    pub tg_steps: usize,
    pub t_tg_decode: f64,
    pub t_tg_sample: f64,
}

/// A prompt of about `target` tokens (raw text) and its exact token count.
pub async fn make_prompt(g: &LlamaGenerator, target: usize) -> Result<(String, usize), BenchError> {
    const WORDS: &str = "Janet has three apples and buys five more at the market before giving two to her \
        neighbour who needs them for a pie that she will bake on Sunday afternoon with her children";
    let words: Vec<&str> = WORDS.split_whitespace().collect();
    let mut text = String::from("Question:");
    let mut i = 0;
    loop {
        let n = g.tokenize(&text).await?.len();
        if n >= target {
            return Ok((text, n));
        }
        text.push(' ');
        text.push_str(words[i % words.len()]);
        i += 1;
    }
}

/// Runs `n` samples of `gen_len` tokens each (EOS ignored) from `prompt` and times them.
pub async fn measure(
    g: &LlamaGenerator,
    prompt: &str,
    prompt_tokens: usize,
    n: usize,
    gen_len: usize,
    seed: u64,
) -> Result<BenchRow, BenchError> {
    let req = GenerateRequest {
        prompt: Prompt::Text(prompt.to_string()),
        assistant_prefix: String::new(),
        params: SamplingParams {
            n,
            temperature: 0.7,
            top_p: 1.0,
            top_k: 40,
            max_tokens: gen_len as u32,
            stop: Vec::new(),
            seed,
            logprobs: false,
        },
    };
    let (out, stats) = g
        .generate_detailed(&req, GenOptions { ignore_eos: true })
        .await?;
    let generated: u64 = out.iter().map(|c| c.generated_tokens).sum();
    let t_pp = stats.prefill.as_secs_f64();
    let t_total = stats.total.as_secs_f64();
    let t_tg = (t_total - t_pp).max(1e-9);
    Ok(BenchRow {
        prompt_tokens,
        n,
        gen_tokens: gen_len,
        t_pp,
        pp_decoded: stats.decoded_prompt_tokens,
        t_tg,
        s_tg: generated as f64 / t_tg,
        t_total,
        tg_steps: stats.gen_steps,
        t_tg_decode: stats.gen_decode.as_secs_f64(),
        t_tg_sample: stats.gen_sample.as_secs_f64(),
    })
}

/// llama.cpp's figures for one configuration (from `--output-format jsonl`).
#[derive(Debug, Clone, PartialEq)]
pub struct ReferenceRow {
    pub pp: usize,
    pub n: usize,
    pub t_pp: f64,
    pub s_tg: f64,
    pub t_total: f64,
}

/// The compiler flags of `.cargo/config.toml` that keep llama.cpp's AMX kernels out of an
/// x86-64 build (the same as `stepwise_http::reference::NO_AMX_FLAGS`).
const NO_AMX_FLAGS: &str = "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16";

/// Path of `llama-batched-bench`, building it if needed (pip download of the sdist with the
/// reference venv's pip, cmake).
pub fn ensure_batched_bench(common: &CommonArgs) -> Result<PathBuf, BenchError> {
    let root = stepwise_core::paths::cache_root().join("llama-cpp-src");
    let bin = root
        .join("build-noamx")
        .join("bin")
        .join("llama-batched-bench");
    if bin.exists() {
        return Ok(bin);
    }
    std::fs::create_dir_all(&root).map_err(io(format!("cannot create {}", root.display())))?;
    let src = root.join(SDIST_DIR).join("vendor").join("llama.cpp");
    if !src.join("tools").join("batched-bench").exists() {
        let tarball = root.join(format!("{SDIST_DIR}.tar.gz"));
        if !tarball.exists() {
            let env = common.python_env(&[])?;
            run(Command::new(env.python())
                .args([
                    "-m",
                    "pip",
                    "download",
                    "--no-binary",
                    ":all:",
                    "--no-deps",
                    REFERENCE_SDIST,
                    "-d",
                ])
                .arg(&root))?;
        }
        run(Command::new("tar")
            .arg("xzf")
            .arg(&tarball)
            .arg("-C")
            .arg(&root))?;
    }
    let build = root.join("build-noamx");
    let mut cmake = Command::new("cmake");
    cmake.arg("-S").arg(&src).arg("-B").arg(&build).args([
        "-DCMAKE_BUILD_TYPE=Release",
        "-DLLAMA_CURL=OFF",
        "-DLLAMA_BUILD_TESTS=OFF",
        "-DLLAMA_BUILD_EXAMPLES=OFF",
        "-DLLAMA_BUILD_SERVER=OFF",
        "-DLLAMA_BUILD_TOOLS=ON",
    ]);
    if cfg!(target_arch = "x86_64") {
        // built as the embedded engine is (`.cargo/config.toml`): native, without the
        // AMX kernels that crash on some AMX machines, so the two run the same kernels
        for lang in ["C", "CXX"] {
            cmake.arg(format!("-DCMAKE_{lang}_FLAGS={NO_AMX_FLAGS}"));
        }
    }
    run(&mut cmake)?;
    let jobs = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .to_string();
    run(Command::new("cmake").arg("--build").arg(&build).args([
        "--target",
        "llama-batched-bench",
        "-j",
        &jobs,
    ]))?;
    if !bin.exists() {
        return Err(BenchError::Tool(format!(
            "build finished but {} is missing",
            bin.display()
        )));
    }
    Ok(bin)
}

/// Runs llama.cpp's batched bench with a shared prompt and unified KV (the settings the
/// embedded backend uses) and parses its JSONL lines.
pub fn run_reference(
    bin: &Path,
    model: &Path,
    pps: &[usize],
    ns: &[usize],
    gen_len: usize,
    threads: usize,
    ctx: u32,
) -> Result<(Vec<ReferenceRow>, String), BenchError> {
    let join = |v: &[usize]| {
        v.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut cmd = Command::new(bin);
    cmd.arg("-m")
        .arg(model)
        .args(["-c", &ctx.to_string(), "-b", "2048", "-ub", "512"])
        .args([
            "-npp",
            &join(pps),
            "-ntg",
            &gen_len.to_string(),
            "-npl",
            &join(ns),
        ])
        .args(["-t", &threads.to_string(), "-tb", &threads.to_string()])
        .args(["-pps", "-kvu", "--output-format", "jsonl"]);
    let shown = format!("{cmd:?}");
    let out = cmd.output().map_err(io(format!("cannot run {shown}")))?;
    if !out.status.success() {
        return Err(BenchError::Tool(format!(
            "{shown} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        )));
    }
    let rows = parse_reference(&String::from_utf8_lossy(&out.stdout));
    if rows.is_empty() {
        return Err(BenchError::Tool(format!(
            "{shown} printed no JSONL results"
        )));
    }
    let shown = shown.replace('"', "");
    Ok((rows, shown))
}

/// The result lines of `llama-batched-bench --output-format jsonl` (other lines skipped).
pub fn parse_reference(stdout: &str) -> Vec<ReferenceRow> {
    let mut rows = Vec::new();
    for line in stdout.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line.trim()) else {
            continue;
        };
        let f = |k: &str| v.get(k).and_then(serde_json::Value::as_f64);
        if let (Some(pp), Some(pl), Some(t_pp), Some(s_tg), Some(t)) =
            (f("pp"), f("pl"), f("t_pp"), f("speed_tg"), f("t"))
        {
            rows.push(ReferenceRow {
                pp: pp as usize,
                n: pl as usize,
                t_pp,
                s_tg,
                t_total: t,
            });
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_results_are_read_from_the_jsonl_lines() {
        let out = "main: n_kv_max = 4884\n\
            {\"n_kv_max\": 4884, \"pp\": 35, \"tg\": 128, \"pl\": 4, \"n_kv\": 547, \"t_pp\": 0.116, \"speed_pp\": 301.7, \"t_tg\": 3.2, \"speed_tg\": 159.1, \"t\": 3.3, \"speed\": 165.0}\n\
            not json\n\
            {\"pp\": 500}\n";
        assert_eq!(
            parse_reference(out),
            [ReferenceRow {
                pp: 35,
                n: 4,
                t_pp: 0.116,
                s_tg: 159.1,
                t_total: 3.3
            }]
        );
        assert!(parse_reference("").is_empty());
    }

    #[test]
    fn the_build_profile_is_named() {
        // .cargo/config.toml sets LLAMA_LIB_PROFILE=Release for every build of the workspace
        match LLAMA_LIB_PROFILE {
            Some(p) => assert_eq!(llama_build_profile(), format!("{p} (LLAMA_LIB_PROFILE)")),
            None => assert!(!llama_build_profile().is_empty()),
        }
    }
}
