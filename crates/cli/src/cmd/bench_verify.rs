//! `stepwise bench verify`: stepwise-verify against HF math-verify on the same pairs, in one run.
//!
//! The pair corpus: every MATH-500 answer (in `$…$`) against rewritten forms of itself (a boxed
//! sentence, LaTeX spelling variants, the reference solution) and against another
//! problem's answer, plus the 5,276 graded GSM8K model solutions against their gold
//! number. math-verify runs single-threaded in a private venv through a small Python
//! driver that times only the parse+verify calls; stepwise runs single-threaded and on
//! all cores. The table reports pairs/s, the speed ratio and agreement on the pairs where
//! math-verify did not time out.

use crate::Global;
use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use stepwise_core::AnswerExtractor;
use stepwise_verify::{Options, Verdict, verify, verify_batch};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Python venv for math-verify (created and filled with pip when missing).
    /// Default: ~/.cache/stepwise/bench-venv.
    #[arg(long, value_name = "DIR")]
    pub venv: Option<PathBuf>,
    /// math-verify version to install.
    #[arg(long, default_value = "0.9.0")]
    pub math_verify_version: String,
    /// Python used to create the venv.
    #[arg(long, default_value = "python3")]
    pub python: String,
    /// math-verify's own per-call timeout (parsing_timeout, timeout_seconds), in seconds.
    #[arg(long, default_value_t = 5)]
    pub timeout_s: u32,
    /// Use at most this many pairs (0 = all).
    #[arg(long, default_value_t = 0)]
    pub limit: usize,
    /// Skip math-verify and time stepwise only.
    #[arg(long)]
    pub skip_math_verify: bool,
    /// Print up to this many disagreements.
    #[arg(long, default_value_t = 15)]
    pub show_disagreements: usize,
    /// Also write the table (Markdown) to this file.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Serialize, Clone)]
struct Pair {
    corpus: &'static str,
    gold: String,
    pred: String,
}

#[derive(Deserialize)]
struct MvResult {
    i: usize,
    eq: bool,
    s: f64,
    err: bool,
}

const DRIVER: &str = r#"
import json, sys, time
from math_verify import parse, verify
pairs_path, out_path, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3])
pairs = [json.loads(l) for l in open(pairs_path, encoding="utf-8")]
with open(out_path, "w", encoding="utf-8") as out:
    for i, p in enumerate(pairs):
        err = False
        t0 = time.perf_counter()
        try:
            g = parse(p["gold"], parsing_timeout=timeout)
            q = parse(p["pred"], parsing_timeout=timeout)
            ok = bool(verify(g, q, timeout_seconds=timeout))
        except Exception:
            ok, err = False, True
        dt = time.perf_counter() - t0
        out.write(json.dumps({"i": i, "eq": ok, "s": dt, "err": err}) + "\n")
        if i % 200 == 0:
            out.flush()
            print(i, flush=True)
"#;

fn data_dir(g: &Global) -> anyhow::Result<PathBuf> {
    if let Some(d) = &g.data_dir {
        return Ok(d.clone());
    }
    let mut candidates = vec![PathBuf::from("../shared/data")];
    candidates.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    candidates
        .into_iter()
        .find(|p| p.is_dir())
        .context("data folder not found: pass --data-dir or set STEPWISE_DATA")
}

fn read_jsonl(path: &Path) -> anyhow::Result<Vec<serde_json::Value>> {
    let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in BufReader::new(f).lines().enumerate() {
        let line = line.with_context(|| format!("{}:{}: reading", path.display(), i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(
            serde_json::from_str(&line)
                .with_context(|| format!("{}:{}: bad JSON", path.display(), i + 1))?,
        );
    }
    Ok(out)
}

fn field<'a>(v: &'a serde_json::Value, k: &str, at: &str) -> anyhow::Result<&'a str> {
    v[k].as_str()
        .with_context(|| format!("{at}: missing string field {k:?}"))
}

/// LaTeX spelling variants of an answer that denote the same value.
fn rewrite(a: &str) -> String {
    let mut s = a
        .replace("\\dfrac", "\\frac")
        .replace("\\tfrac", "\\frac")
        .replace("\\left", "")
        .replace("\\right", "");
    if s == a {
        s = a.replace("\\frac", "\\dfrac");
    }
    if s == a {
        s = format!(" {a} ");
    }
    s
}

fn corpus(dir: &Path) -> anyhow::Result<Vec<Pair>> {
    let mut pairs = Vec::new();
    let m = dir.join("math500/test.jsonl");
    let rows = read_jsonl(&m)?;
    let answers: Vec<String> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| field(r, "answer", &format!("{}:{}", m.display(), i + 1)).map(String::from))
        .collect::<anyhow::Result<_>>()?;
    for (i, r) in rows.iter().enumerate() {
        // Gold answers go in math delimiters: math-verify's default extraction needs them.
        let a = &answers[i];
        let gold = format!("${a}$");
        let sol = field(r, "solution", &format!("{}:{}", m.display(), i + 1))?;
        pairs.push(Pair {
            corpus: "math500-boxed",
            gold: gold.clone(),
            pred: format!("The final answer is $\\boxed{{{a}}}$."),
        });
        pairs.push(Pair {
            corpus: "math500-rewritten",
            gold: gold.clone(),
            pred: format!("${}$", rewrite(a)),
        });
        pairs.push(Pair {
            corpus: "math500-solution",
            gold: gold.clone(),
            pred: sol.to_string(),
        });
        let j = (7 * i + 13) % answers.len();
        pairs.push(Pair {
            corpus: "math500-shuffled",
            gold,
            pred: format!(
                "$\\boxed{{{}}}$",
                answers[if j == i { (j + 1) % answers.len() } else { j }]
            ),
        });
    }
    let gpath = dir.join("gsm8k_model_solutions/example_model_solutions.jsonl");
    let ex = AnswerExtractor::default();
    for (i, r) in read_jsonl(&gpath)?.iter().enumerate() {
        let at = format!("{}:{}", gpath.display(), i + 1);
        let gt = field(r, "ground_truth", &at)?;
        let gold = ex
            .extract(gt)
            .with_context(|| format!("{at}: no answer in ground_truth"))?
            .text;
        for model in [
            "6b_finetuning",
            "6b_verification",
            "175b_finetuning",
            "175b_verification",
        ] {
            pairs.push(Pair {
                corpus: "gsm8k-solutions",
                gold: gold.clone(),
                pred: r[model]["solution"]
                    .as_str()
                    .with_context(|| format!("{at}: missing {model}.solution"))?
                    .to_string(),
            });
        }
    }
    Ok(pairs)
}

fn venv_dir(args: &Args) -> anyhow::Result<PathBuf> {
    if let Some(v) = &args.venv {
        return Ok(v.clone());
    }
    let home = std::env::var_os("HOME").context("HOME is not set; pass --venv")?;
    Ok(PathBuf::from(home).join(".cache/stepwise/bench-venv"))
}

fn run_ok(cmd: &mut Command, what: &str) -> anyhow::Result<()> {
    let out = cmd.output().with_context(|| format!("running {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Creates the venv and installs math-verify when needed; returns its python.
fn ensure_math_verify(args: &Args) -> anyhow::Result<(PathBuf, String)> {
    let venv = venv_dir(args)?;
    let py = venv.join("bin/python");
    if !py.exists() {
        eprintln!("creating venv {}", venv.display());
        std::fs::create_dir_all(venv.parent().unwrap_or(Path::new(".")))
            .with_context(|| format!("creating {}", venv.display()))?;
        run_ok(
            Command::new(&args.python).args(["-m", "venv"]).arg(&venv),
            "python3 -m venv",
        )?;
    }
    let version = |py: &Path| -> Option<String> {
        let out = Command::new(py)
            .args([
                "-c",
                "import importlib.metadata as m; print(m.version('math-verify'))",
            ])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    if version(&py).as_deref() != Some(args.math_verify_version.as_str()) {
        eprintln!(
            "installing math-verify=={} into {}",
            args.math_verify_version,
            venv.display()
        );
        run_ok(
            Command::new(&py).args([
                "-m",
                "pip",
                "install",
                "-q",
                &format!("math-verify=={}", args.math_verify_version),
                "antlr4-python3-runtime==4.13.2",
            ]),
            "pip install math-verify",
        )?;
    }
    let v = version(&py).context("math-verify is not importable after installing it")?;
    Ok((py, v))
}

fn run_math_verify(py: &Path, pairs: &[Pair], timeout_s: u32) -> anyhow::Result<Vec<MvResult>> {
    let tmp = std::env::temp_dir().join(format!("stepwise-bench-verify-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let driver = tmp.join("driver.py");
    let input = tmp.join("pairs.jsonl");
    let output = tmp.join("results.jsonl");
    std::fs::write(&driver, DRIVER).with_context(|| format!("writing {}", driver.display()))?;
    {
        let mut f = std::io::BufWriter::new(
            std::fs::File::create(&input)
                .with_context(|| format!("writing {}", input.display()))?,
        );
        for p in pairs {
            serde_json::to_writer(&mut f, p).context("encoding a pair")?;
            f.write_all(b"\n").context("writing pairs")?;
        }
        f.flush().context("writing pairs")?;
    }
    let pb = ProgressBar::new(pairs.len() as u64);
    pb.set_style(
        ProgressStyle::with_template("math-verify {bar:40} {pos}/{len} pairs eta {eta}")
            .context("progress template")?,
    );
    let mut child = Command::new(py)
        .arg(&driver)
        .arg(&input)
        .arg(&output)
        .arg(timeout_s.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting the math-verify driver")?;
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if let Ok(n) = line.trim().parse::<u64>() {
                pb.set_position(n);
            }
        }
    }
    let status = child.wait().context("waiting for the math-verify driver")?;
    pb.finish_and_clear();
    if !status.success() {
        bail!("the math-verify driver failed ({status})");
    }
    let results: Vec<MvResult> = read_jsonl(&output)?
        .into_iter()
        .map(serde_json::from_value)
        .collect::<Result<_, _>>()
        .context("reading math-verify results")?;
    let _ = std::fs::remove_dir_all(&tmp);
    if results.len() != pairs.len() {
        bail!(
            "math-verify returned {} results for {} pairs",
            results.len(),
            pairs.len()
        );
    }
    Ok(results)
}

/// Worst single-call latency on adversarial inputs (release build claim: < 50 ms).
fn hostile_worst(o: &Options) -> (Duration, String) {
    let inputs: Vec<(String, String)> = vec![
        ("5^5^5^5".into(), "5^{5^{5^{5}}}".into()),
        ("9^{9^{9^{9}}}".into(), "9^{9^{9^{9}}} + 1".into()),
        ("10^{100000000}".into(), "10^{100000001}/10".into()),
        ("1000000!".into(), "1000001!/1000001".into()),
        ("(x+1)^{100000}".into(), "(1+x)^{100000}".into()),
        (
            "(a+b+c+d+e+f+g+h)^{64}".into(),
            "(h+g+f+e+d+c+b+a)^{64}".into(),
        ),
        ("{".repeat(100_000) + "1" + &"}".repeat(100_000), "1".into()),
        (
            "\\sqrt{".repeat(50_000) + "2" + &"}".repeat(50_000),
            "2".into(),
        ),
        ("1+".repeat(500_000) + "1", "500001".into()),
        ("x".repeat(1_000_000), "x".into()),
        ("\\boxed{".repeat(100_000), "1".into()),
        ("$".repeat(1_000_000), "$1$".into()),
        ("\\(".repeat(500_000), "1".into()),
    ];
    let mut worst = (Duration::ZERO, String::new());
    for (g, p) in &inputs {
        let t = Instant::now();
        let _ = verify(g, p, o);
        let el = t.elapsed();
        if el > worst.0 {
            worst = (el, g.chars().take(24).collect());
        }
    }
    worst
}

pub fn run(args: Args, g: &Global) -> anyhow::Result<()> {
    let dir = data_dir(g)?;
    let mut pairs = corpus(&dir)?;
    if args.limit > 0 && pairs.len() > args.limit {
        // Keep every corpus represented: take an evenly spaced subset.
        let step = pairs.len() as f64 / args.limit as f64;
        pairs = (0..args.limit)
            .map(|k| pairs[(k as f64 * step) as usize].clone())
            .collect();
    }
    let n = pairs.len();
    let o = Options::default();
    eprintln!("{n} pairs from {}", dir.display());

    // stepwise, one thread: repeat until at least a second has passed.
    let mut verdicts = Vec::with_capacity(n);
    let t = Instant::now();
    let mut worst = Duration::ZERO;
    for p in &pairs {
        let t1 = Instant::now();
        verdicts.push(verify(&p.gold, &p.pred, &o));
        worst = worst.max(t1.elapsed());
    }
    let mut reps = 1u32;
    while t.elapsed() < Duration::from_secs(1) {
        for p in &pairs {
            std::hint::black_box(verify(&p.gold, &p.pred, &o));
        }
        reps += 1;
    }
    let single = t.elapsed().as_secs_f64() / reps as f64;
    let refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|p| (p.gold.as_str(), p.pred.as_str()))
        .collect();
    let threads = rayon_threads();
    let t = Instant::now();
    let mut reps_mt = 0u32;
    while reps_mt == 0 || t.elapsed() < Duration::from_secs(1) {
        std::hint::black_box(verify_batch(&refs, &o));
        reps_mt += 1;
    }
    let multi = t.elapsed().as_secs_f64() / reps_mt as f64;
    let (hw, hw_input) = hostile_worst(&o);

    let mv = if args.skip_math_verify {
        None
    } else {
        let (py, version) = ensure_math_verify(&args)?;
        eprintln!("running math-verify {version} on {n} pairs (single thread)…");
        Some((version, run_math_verify(&py, &pairs, args.timeout_s)?))
    };

    let mut md = String::new();
    md.push_str(&format!(
        "Pairs: {n} (MATH-500 answers vs boxed sentence, rewritten LaTeX, reference solution, shuffled answer; GSM8K model solutions vs gold).\n\n"
    ));
    md.push_str(
        "| engine | threads | seconds | pairs/s | vs math-verify |\n|---|---:|---:|---:|---:|\n",
    );
    let mv_time: Option<f64> = mv.as_ref().map(|(_, r)| r.iter().map(|x| x.s).sum());
    if let (Some((version, _)), Some(secs)) = (&mv, mv_time) {
        md.push_str(&format!(
            "| math-verify {version} (parse+verify) | 1 | {secs:.2} | {:.0} | 1.0x |\n",
            n as f64 / secs
        ));
    }
    let ratio = |s: f64| {
        mv_time
            .map(|m| format!("{:.0}x", m / s))
            .unwrap_or_else(|| "-".into())
    };
    md.push_str(&format!(
        "| stepwise | 1 | {single:.3} | {:.0} | {} |\n",
        n as f64 / single,
        ratio(single)
    ));
    md.push_str(&format!(
        "| stepwise | {threads} | {multi:.3} | {:.0} | {} |\n",
        n as f64 / multi,
        ratio(multi)
    ));
    md.push_str(&format!(
        "\nstepwise worst single call: {:.2} ms on the corpus, {:.2} ms on adversarial inputs (worst: `{}`…).\n",
        worst.as_secs_f64() * 1e3,
        hw.as_secs_f64() * 1e3,
        hw_input.replace('`', "'")
    ));
    let mut disagreements = Vec::new();
    if let Some((_, res)) = &mv {
        let timeout = args.timeout_s as f64 * 0.95;
        let mut by: std::collections::BTreeMap<&str, (usize, usize, usize, usize, usize)> =
            Default::default();
        let (mut agree, mut counted, mut timeouts) = (0, 0, 0);
        for (k, r) in res.iter().enumerate() {
            let p = &pairs[r.i.min(n - 1)];
            let e = by.entry(p.corpus).or_default();
            e.0 += 1;
            if r.s >= timeout {
                timeouts += 1;
                e.4 += 1;
                continue;
            }
            counted += 1;
            let ours = verdicts[k] == Verdict::Equal;
            if r.eq {
                e.2 += 1;
            }
            if ours {
                e.3 += 1;
            }
            if ours == r.eq {
                agree += 1;
                e.1 += 1;
            } else {
                disagreements.push(format!(
                    "[{}] gold {:?} | pred {:?} | math-verify {} stepwise {:?}{}",
                    p.corpus,
                    p.gold,
                    tail(&p.pred, 80),
                    r.eq,
                    verdicts[k],
                    if r.err { " (math-verify raised)" } else { "" }
                ));
            }
        }
        md.push_str(&format!(
            "\nAgreement with math-verify on pairs where it did not time out: {agree}/{counted} = {:.2}% ({timeouts} timeouts at {} s).\n\n",
            100.0 * agree as f64 / counted.max(1) as f64,
            args.timeout_s
        ));
        md.push_str("| corpus | pairs | agree | math-verify equal | stepwise equal | mv timeouts |\n|---|---:|---:|---:|---:|---:|\n");
        for (c, (t, a, me, se, to)) in &by {
            md.push_str(&format!("| {c} | {t} | {a} | {me} | {se} | {to} |\n"));
        }
    }
    println!("{md}");
    if !disagreements.is_empty() {
        println!("disagreements (first {}):", args.show_disagreements);
        for d in disagreements.iter().take(args.show_disagreements) {
            println!("  {d}");
        }
    }
    if let Some(out) = &args.out {
        std::fs::write(out, &md).with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(())
}

fn tail(s: &str, n: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= n {
        return s.to_string();
    }
    let t: String = chars[chars.len() - n..].iter().collect();
    format!("…{t}")
}

fn rayon_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
