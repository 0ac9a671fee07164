//! `stepwise bench serve`: a load test of the reward server against the usual
//! hand-made Python reward server (FastAPI + uvicorn + math-verify), side by side.
//!
//! 1. Builds N MATH-style rewards from MATH-500: gold answers, equivalent
//!    rewrites and wrong answers, wrapped in model-like responses (with and
//!    without `<think>` blocks, `<answer>` tags, truncated ones).
//! 2. Starts stepwise's server in this process and the Python server
//!    (`assets/reward_app.py`) in the reference venv, both on 127.0.0.1.
//! 3. Agreement pass: every item once through each server's `/get_reward`;
//!    rewards are compared where math-verify did not time out, and each item whose
//!    rewards differ goes to the reference's `/diagnose`, which recomputes it with
//!    one recipe setting changed so the report names the cause ([`Cause`]).
//! 4. Load rounds: in each round `wrk` (Debian's `wrk`, with `assets/post.lua` for the
//!    POST bodies) cycles through the same N rewards against stepwise, then against the
//!    reference, for a fixed time each; throughput is completed requests × rewards per
//!    request / that time. (A send-each-once run cannot be timed with wrk: its main
//!    thread sleeps the whole `-d` even after every thread has stopped, so the measured
//!    duration would always be the bound.)
//!
//! Soak mode keeps `wrk` on the stepwise server for a given time at high
//! concurrency and samples this process's resident memory from `/proc/self/status`.

use crate::report::{Align, Table, publish};
use crate::stats::{alternate, median, spread};
use crate::{BenchError, CommonArgs, io};
use serde::Deserialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use stepwise_serve::config::Config;
use stepwise_serve::{AppState, ServeError, Server};

pub mod shapes;
pub mod slow;

/// Rounds when `--rounds` is not given (the published table's setting).
pub const DEFAULT_ROUNDS: usize = 1;

/// `stepwise bench serve`: the reward server under load, versus FastAPI + math-verify.
///
/// The Python reference (FastAPI + uvicorn + math-verify) runs in the reference venv;
/// wrk drives both on 127.0.0.1. Prints rewards/s, p50/p99 latency, errors and reward
/// agreement. `--soak SECS` instead keeps wrk on stepwise alone and samples its memory.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Rewards to send to each server (built from MATH-500).
    #[arg(long, default_value_t = 10_000)]
    pub items: usize,
    /// Rewards per request.
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// wrk connections (the soak uses them as well).
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    /// wrk threads.
    #[arg(long, default_value_t = 2)]
    pub wrk_threads: usize,
    /// Length of each load run, in seconds (wrk cycles through the rewards for this long).
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
    /// uvicorn worker processes for the Python server (0: as many as --threads).
    #[arg(long, default_value_t = 0)]
    pub py_workers: usize,
    /// Soak mode: this many seconds of load on stepwise, memory sampled from /proc.
    #[arg(long, value_name = "SECS")]
    pub soak: Option<u64>,
    /// Seed of the reward set.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Slow-client mode: each round runs wrk against stepwise (production limits) alone
    /// and then with this many slow clients connected (each trickling a request body),
    /// and the table compares the two rates of legitimate 2xx answers (no reference).
    #[arg(long, value_name = "N", conflicts_with = "soak")]
    pub slow_clients: Option<usize>,
}

impl Args {
    fn check(&self) -> Result<(), BenchError> {
        if self.items == 0
            || self.batch == 0
            || self.connections == 0
            || self.wrk_threads == 0
            || self.seconds == 0
        {
            return Err(BenchError::Options(
                "--items, --batch, --connections, --wrk-threads and --seconds must be positive"
                    .into(),
            ));
        }
        if self.slow_clients == Some(0) {
            return Err(BenchError::Options(
                "--slow-clients must be positive".into(),
            ));
        }
        if self.soak.is_some() && self.common.rounds.is_some_and(|r| r > 1) {
            return Err(BenchError::Options(
                "--soak is one long run; it takes no --rounds".into(),
            ));
        }
        Ok(())
    }
}

/// One reward to compute.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchItem {
    pub prompt: String,
    pub response: String,
    pub gold: String,
    /// What the item was built as (`correct`, `rewrite`, `wrong`, …), for reports.
    pub kind: &'static str,
}

#[derive(Deserialize)]
struct MathRecord {
    problem: String,
    answer: String,
}

/// Reads MATH-500's `test.jsonl`.
pub fn read_math500(path: &Path) -> Result<Vec<(String, String)>, BenchError> {
    let text = std::fs::read_to_string(path).map_err(io(format!("reading {}", path.display())))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let r: MathRecord = serde_json::from_str(line).map_err(|e| BenchError::Data {
            path: path.display().to_string(),
            line: i + 1,
            msg: e.to_string(),
        })?;
        out.push((r.problem, r.answer));
    }
    if out.is_empty() {
        return Err(BenchError::Data {
            path: path.display().to_string(),
            line: 0,
            msg: "no records".into(),
        });
    }
    Ok(out)
}

/// A deterministic mixer (splitmix64) so the item set depends only on the seed.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn prefix_chars(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// A form of `answer` a careful grader accepts as equal, when one is known.
pub fn equivalent_rewrite(answer: &str, k: u64) -> String {
    let a = answer.trim();
    if let Ok(n) = a.parse::<i64>() {
        return match k % 3 {
            0 => format!("{n}.0"),
            1 => format!("{{{n}}}"),
            _ => format!(" {n} "),
        };
    }
    if let Some((num, den)) = simple_frac(a) {
        if k.is_multiple_of(2) {
            return format!("{num}/{den}");
        }
        return format!("\\dfrac{{{num}}}{{{den}}}");
    }
    if a.contains("\\frac") {
        return a.replace("\\frac", "\\dfrac");
    }
    if a.contains("\\left") || a.contains("\\right") {
        return a.replace("\\left", "").replace("\\right", "");
    }
    if a.contains(", ") {
        return a.replace(", ", ",");
    }
    a.to_string()
}

/// `\frac{a}{b}` with integer parts.
fn simple_frac(a: &str) -> Option<(i64, i64)> {
    let rest = a
        .strip_prefix("\\frac{")
        .or_else(|| a.strip_prefix("\\dfrac{"))?;
    let (num, rest) = rest.split_once("}{")?;
    let den = rest.strip_suffix('}')?;
    Some((num.trim().parse().ok()?, den.trim().parse().ok()?))
}

/// A wrong answer for `answer` (a nearby number, a flipped fraction, or another problem's answer).
pub fn wrong_answer(answer: &str, other: &str, k: u64) -> String {
    let a = answer.trim();
    if let Ok(n) = a.parse::<i64>() {
        return match k % 3 {
            0 => (n + 1).to_string(),
            1 => (n.saturating_mul(2) + 1).to_string(),
            _ => (n - 3).to_string(),
        };
    }
    if let Some((num, den)) = simple_frac(a)
        && num != den
        && k.is_multiple_of(2)
    {
        return format!("\\frac{{{den}}}{{{num}}}");
    }
    if other.trim() != a {
        return other.trim().to_string();
    }
    format!("{a}+1")
}

const STEPS: [&str; 6] = [
    "First, let me write down what is given and what is asked.",
    "We can simplify the expression step by step: 12 + 30 = 42, and 42 / 6 = 7.",
    "Let me double-check the arithmetic: 3 \\cdot 4 = 12 and 12 - 5 = 7.",
    "Substituting back, both sides agree, so the computation is consistent.",
    "Alternatively, consider the cases separately; each gives the same value.",
    "Wait, let me re-read the question to make sure I answer what is asked.",
];

/// Builds `n` items from MATH-500 records (20 variants per problem, then cycling).
pub fn build_items(records: &[(String, String)], n: usize, seed: u64) -> Vec<BenchItem> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let p = (i / 20) % records.len();
        let j = (i % 20) as u64;
        let (problem, answer) = &records[p];
        let h = mix(seed ^ (i as u64).wrapping_mul(0x1000_0001));
        let other = &records[(p + 1 + (h as usize % (records.len() - 1).max(1))) % records.len()].1;
        let prompt = format!(
            "<|im_start|>user\n{problem}\nPlease reason step by step, and put your final answer within \\boxed{{}}.<|im_end|>\n<|im_start|>assistant\n"
        );
        let mut think = format!(
            "Okay, the problem says: {}...\n\n",
            prefix_chars(problem, 160)
        );
        for s in 0..(2 + h % 4) {
            think.push_str(STEPS[((h >> (8 + s * 3)) % STEPS.len() as u64) as usize]);
            think.push_str("\n\n");
        }
        let boxed = |x: &str| format!("\\boxed{{{x}}}");
        let (kind, response) = match j {
            0..=2 => (
                "correct",
                format!(
                    "<think>\n{think}</think>\n\nThe final answer is ${}$.",
                    boxed(answer)
                ),
            ),
            3 => (
                "correct-no-think",
                format!("{think}So the answer is ${}$.", boxed(answer)),
            ),
            4..=7 => (
                "rewrite",
                format!(
                    "<think>\n{think}</think>\n\nTherefore, the answer is ${}$.",
                    boxed(&equivalent_rewrite(answer, h))
                ),
            ),
            8 => (
                "answer-tag",
                format!("<think>\n{think}</think>\n<answer>${answer}$</answer>"),
            ),
            9..=15 => (
                "wrong",
                format!(
                    "<think>\n{think}</think>\n\nThe final answer is ${}$.",
                    boxed(&wrong_answer(answer, other, h))
                ),
            ),
            16 | 17 => (
                "wrong-no-think",
                format!(
                    "{think}Thus we get ${}$.",
                    boxed(&wrong_answer(answer, other, h >> 7))
                ),
            ),
            18 => ("truncated", format!("<think>\n{think}")),
            _ => (
                "correct-after-distractor",
                format!(
                    "<think>\n{think}At first I thought it was ${}$ but that was a slip.\n</think>\n\nThe final answer is ${}$.",
                    boxed(&wrong_answer(answer, other, h >> 3)),
                    boxed(answer)
                ),
            ),
        };
        out.push(BenchItem {
            prompt,
            response,
            gold: answer.clone(),
            kind,
        });
    }
    out
}

/// OpenRLHF bodies of `batch` items each (the last may be shorter).
pub fn bodies(items: &[BenchItem], batch: usize) -> Vec<String> {
    items
        .chunks(batch.max(1))
        .map(|c| {
            serde_json::json!({
                "query": c.iter().map(|i| format!("{}{}", i.prompt, i.response)).collect::<Vec<_>>(),
                "prompts": c.iter().map(|i| i.prompt.clone()).collect::<Vec<_>>(),
                "labels": c.iter().map(|i| i.gold.clone()).collect::<Vec<_>>(),
            })
            .to_string()
        })
        .collect()
}

/// The reference server the bench runs: FastAPI + math-verify with the accuracy
/// reward of open-r1's GRPO recipe (`accuracy_reward` in `src/open_r1/rewards.py`):
/// the gold answer parsed with `LatexExtractionConfig()` in `first_match` mode, the
/// response with boxed-first LaTeX extraction (`boxed_match_priority=0`), no
/// anchor-less extraction, `malformed_operators=False`, compared with
/// `verify(answer, gold)`; an unparseable gold answer gets 1 (open-r1 skips it that
/// way). The gold label is an answer, so it is given to the parser as `\boxed{label}`,
/// the way it stands in a MATH solution. The format term is the deepseek-r1 preset's
/// rule written in Python. Endpoints are `async def`, so math-verify's signal-based
/// timeouts run on the main thread and work; timeouts are counted from its warnings.
///
/// `POST /diagnose` is used only for the items whose rewards differ: it recomputes
/// each with one setting of the recipe changed, so the report can name the cause.
pub const PYTHON_APP: &str = include_str!("../assets/reward_app.py");

/// What the reference computes, for the report.
pub const REFERENCE_RECIPE: &str = "\nThe reference scores accuracy with open-r1's GRPO `accuracy_reward` recipe: the response parsed by math-verify with boxed-first LaTeX extraction (`boxed_match_priority=0`, `try_extract_without_anchor=False`, `malformed_operators=False`, `first_match`), the gold label parsed as `\\boxed{label}` with `LatexExtractionConfig()`, compared by `verify(answer, gold)`; format is the deepseek-r1 preset's rule written in Python.\n";

/// Packages of the reference server's venv (pinned so runs compare).
pub const PYTHON_REQUIREMENTS: [&str; 3] = [
    "math-verify[antlr4-13-2]==0.9.0",
    "fastapi==0.165.0",
    "uvicorn==0.54.0",
];

/// The wrk script: each thread sends its share of the bodies exactly once
/// (cycling only to keep connections busy until the last responses arrive),
/// then stops; `done` prints one JSON line.
pub const WRK_SCRIPT: &str = include_str!("../assets/post.lua");

/// One load run measured by wrk.
#[derive(Debug, Clone, Deserialize)]
pub struct WrkSummary {
    pub requests: u64,
    pub duration_us: u64,
    pub connect: u64,
    pub read: u64,
    pub write: u64,
    pub status: u64,
    pub timeout: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

impl WrkSummary {
    pub fn errors(&self) -> u64 {
        self.connect + self.read + self.write + self.status + self.timeout
    }
}

/// A load result for the table.
#[derive(Debug, Clone)]
pub struct LoadResult {
    pub server: String,
    pub wrk: WrkSummary,
    /// Rewards the completed requests carried.
    pub rewards: u64,
    /// Rewards the run was meant to send (all of them once).
    pub planned: u64,
}

impl LoadResult {
    pub fn seconds(&self) -> f64 {
        self.wrk.duration_us as f64 / 1e6
    }
    pub fn rewards_per_s(&self) -> f64 {
        self.rewards as f64 / self.seconds().max(1e-9)
    }
}

/// Why the reference's reward for an item differs from stepwise's, as `/diagnose`
/// found it by recomputing the item with one setting of the recipe changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cause {
    /// math-verify's LaTeX parser reads unbraced arguments (`\frac43`, `\sqrt2`)
    /// only through its `malformed_operators` normalization, which the recipe turns
    /// off; with it on, the reference agrees.
    UnbracedTex,
    /// The recipe calls `verify(answer, gold)`, the reverse of math-verify's
    /// `verify(gold, target)`; math-verify reduces an equation in the second place to
    /// its right-hand side when the first is not an equation. With the arguments in
    /// math-verify's order, the reference agrees.
    SwappedVerify,
    /// math-verify could not parse the gold label; the recipe gives such items 1.
    GoldUnparsed,
    /// None of the above: a real disagreement to look into.
    Unexplained,
}

impl Cause {
    /// Whether the difference comes from the reference (math-verify or the recipe) rather than stepwise.
    pub fn is_reference_side(self) -> bool {
        matches!(self, Self::UnbracedTex | Self::SwappedVerify)
    }

    pub fn describe(self) -> &'static str {
        match self {
            Self::UnbracedTex => {
                "math-verify bug: its LaTeX parser needs braces around `\\frac`/`\\sqrt` arguments unless its `malformed_operators` normalization is on, and the recipe turns it off, so a correct `\\frac43` or `11\\sqrt2` (valid TeX for 4/3 and 11√2, and how MATH writes the gold answer) scores 0; with only that setting on, math-verify agrees with stepwise"
            }
            Self::SwappedVerify => {
                "recipe bug meeting an asymmetric math-verify rule: open-r1 calls `verify(answer, gold)` while math-verify's signature is `verify(gold, target)`, and math-verify reduces an equation in the second place to its right-hand side when the first is not an equation, so the answer `0` matches the gold plane `5x - 7y + 11z + 4 = 0`; with the arguments in math-verify's order it agrees with stepwise"
            }
            Self::GoldUnparsed => {
                "math-verify cannot parse the gold label, and the recipe rewards such items 1 to skip them"
            }
            Self::Unexplained => "not explained by the reference: to be looked into",
        }
    }
}

/// One item whose rewards differ.
#[derive(Debug, Clone)]
pub struct Difference {
    pub index: usize,
    pub kind: String,
    pub gold: String,
    /// The answer math-verify extracted (its `parse` output), from `/diagnose`.
    pub reference_answer: String,
    pub stepwise_accuracy: f64,
    pub reference_accuracy: f64,
    pub format_differs: bool,
    pub cause: Cause,
}

/// Agreement of rewards between the two servers.
#[derive(Debug, Clone, Default)]
pub struct Agreement {
    pub items: usize,
    pub python_timeouts: usize,
    pub compared: usize,
    pub rewards_equal: usize,
    pub accuracy_equal: usize,
    pub format_equal: usize,
    /// (compared, rewards differ) by item kind.
    pub by_kind: std::collections::BTreeMap<String, (usize, usize)>,
    /// Every item whose rewards differ, with its cause.
    pub differences: Vec<Difference>,
}

impl Agreement {
    /// Differences by cause.
    pub fn by_cause(&self) -> std::collections::BTreeMap<Cause, Vec<&Difference>> {
        let mut m: std::collections::BTreeMap<Cause, Vec<&Difference>> = Default::default();
        for d in &self.differences {
            m.entry(d.cause).or_default().push(d);
        }
        m
    }
}

/// The whole comparison.
#[derive(Debug, Clone)]
pub struct BenchReport {
    pub items: usize,
    pub batch: usize,
    pub wrk_threads: usize,
    pub connections: usize,
    /// stepwise's verification threads and the reference's uvicorn workers.
    pub workers: usize,
    pub py_workers: usize,
    pub rounds: usize,
    /// One load run per round and server (`python` is empty with `--no-reference`).
    pub stepwise: Vec<LoadResult>,
    pub python: Vec<LoadResult>,
    pub agreement: Option<Agreement>,
    /// The request-shape rows ([`shapes`]), measured in the same rounds.
    pub shapes: Vec<shapes::ShapeRow>,
}

/// Rewards and logs of one pass over all items.
struct PassResult {
    rewards: Vec<f64>,
    accuracy: Vec<f64>,
    format: Vec<f64>,
    timed_out: Vec<f64>,
    gold_unparsed: Vec<f64>,
}

#[derive(Deserialize)]
struct RewardReply {
    rewards: Vec<f64>,
    extra_logs: std::collections::BTreeMap<String, Vec<f64>>,
}

fn http_client() -> Result<reqwest::Client, BenchError> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()
        .map_err(|source| BenchError::Http {
            what: "building the HTTP client".into(),
            source,
        })
}

/// POSTs a JSON body and reads the JSON reply, naming `what` in errors.
async fn post_json<T: serde::de::DeserializeOwned>(
    client: &reqwest::Client,
    url: &str,
    body: String,
    what: String,
) -> Result<T, BenchError> {
    client
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|source| BenchError::Http {
            what: what.clone(),
            source,
        })?
        .json::<T>()
        .await
        .map_err(|source| BenchError::Http { what, source })
}

/// Sends every body once (a few at a time, in order) and collects the replies.
async fn pass(base: &str, bodies: &[String], label: &str) -> Result<PassResult, BenchError> {
    use futures::StreamExt;
    let client = http_client()?;
    let bar = indicatif::ProgressBar::new(bodies.len() as u64)
        .with_message(format!("{label}: agreement pass"));
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} {bar:30} {pos}/{len} requests {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let url = format!("{base}/get_reward");
    let replies: Vec<Result<RewardReply, BenchError>> =
        futures::stream::iter(bodies.iter().enumerate())
            .map(|(i, b)| {
                let (client, url, bar) = (client.clone(), url.clone(), bar.clone());
                async move {
                    let r =
                        post_json(&client, &url, b.clone(), format!("{label}: request {i}")).await;
                    bar.inc(1);
                    r
                }
            })
            .buffered(4)
            .collect()
            .await;
    bar.finish_and_clear();
    let mut out = PassResult {
        rewards: vec![],
        accuracy: vec![],
        format: vec![],
        timed_out: vec![],
        gold_unparsed: vec![],
    };
    for r in replies {
        let r = r?;
        let n = r.rewards.len();
        let get = |k: &str| r.extra_logs.get(k).cloned().unwrap_or_else(|| vec![0.0; n]);
        out.accuracy.extend(get("accuracy"));
        out.format.extend(get("format"));
        out.timed_out.extend(get("timed_out"));
        out.gold_unparsed.extend(get("gold_unparsed"));
        out.rewards.extend(r.rewards);
    }
    Ok(out)
}

fn compare(items: &[BenchItem], ours: &PassResult, theirs: &PassResult) -> Agreement {
    let mut a = Agreement {
        items: items.len(),
        ..Agreement::default()
    };
    let at = |v: &[f64], i: usize| v.get(i).copied().unwrap_or(0.0);
    for (i, it) in items.iter().enumerate() {
        let (Some(&r1), Some(&r2)) = (ours.rewards.get(i), theirs.rewards.get(i)) else {
            continue;
        };
        if at(&theirs.timed_out, i) > 0.0 {
            a.python_timeouts += 1;
            continue;
        }
        a.compared += 1;
        let same = (r1 - r2).abs() < 1e-9;
        a.rewards_equal += usize::from(same);
        let (acc1, acc2) = (at(&ours.accuracy, i), at(&theirs.accuracy, i));
        a.accuracy_equal += usize::from((acc1 - acc2).abs() < 1e-9);
        let format_same = (at(&ours.format, i) - at(&theirs.format, i)).abs() < 1e-9;
        a.format_equal += usize::from(format_same);
        let e = a.by_kind.entry(it.kind.to_string()).or_default();
        e.0 += 1;
        e.1 += usize::from(!same);
        if !same {
            a.differences.push(Difference {
                index: i,
                kind: it.kind.to_string(),
                gold: it.gold.clone(),
                reference_answer: String::new(),
                stepwise_accuracy: acc1,
                reference_accuracy: acc2,
                format_differs: !format_same,
                cause: if at(&theirs.gold_unparsed, i) > 0.0 {
                    Cause::GoldUnparsed
                } else {
                    Cause::Unexplained
                },
            });
        }
    }
    a
}

/// `/diagnose`'s reply: per item, the parses and the accuracy with one recipe setting changed.
#[derive(Debug, Deserialize)]
struct DiagnoseReply {
    gold: Vec<String>,
    answer: Vec<String>,
    malformed_operators_on: Vec<f64>,
    gold_first: Vec<f64>,
}

/// The cause of one accuracy difference from the reference's recomputations.
pub fn classify(
    stepwise_accuracy: f64,
    malformed_operators_on: f64,
    gold_first: f64,
    format_differs: bool,
) -> Cause {
    let agrees = |x: f64| (x - stepwise_accuracy).abs() < 1e-9;
    if format_differs {
        Cause::Unexplained
    } else if agrees(malformed_operators_on) {
        Cause::UnbracedTex
    } else if agrees(gold_first) {
        Cause::SwappedVerify
    } else {
        Cause::Unexplained
    }
}

/// Asks the reference why each difference arose (unparsed gold labels keep their cause).
async fn diagnose(base: &str, items: &[BenchItem], a: &mut Agreement) -> Result<(), BenchError> {
    let client = http_client()?;
    let url = format!("{base}/diagnose");
    let todo: Vec<usize> = (0..a.differences.len())
        .filter(|&k| a.differences[k].cause != Cause::GoldUnparsed)
        .collect();
    for chunk in todo.chunks(32) {
        let picked: Vec<BenchItem> = chunk
            .iter()
            .map(|&k| items[a.differences[k].index].clone())
            .collect();
        let body = bodies(&picked, picked.len()).concat();
        let r: DiagnoseReply = post_json(&client, &url, body, "python: /diagnose".into()).await?;
        if r.answer.len() != chunk.len()
            || r.gold.len() != chunk.len()
            || r.malformed_operators_on.len() != chunk.len()
            || r.gold_first.len() != chunk.len()
        {
            return Err(BenchError::Tool(format!(
                "/diagnose answered {} items for {}",
                r.answer.len(),
                chunk.len()
            )));
        }
        for (j, &k) in chunk.iter().enumerate() {
            let d = &mut a.differences[k];
            d.reference_answer = format!("{} (gold parsed as {})", r.answer[j], r.gold[j]);
            d.cause = classify(
                d.stepwise_accuracy,
                r.malformed_operators_on[j],
                r.gold_first[j],
                d.format_differs,
            );
        }
    }
    Ok(())
}

/// Finds `wrk`, or says how to install it.
pub fn find_wrk() -> Result<(), BenchError> {
    match std::process::Command::new("wrk")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(_) => Ok(()),
        Err(_) => Err(BenchError::Tool(
            "the load generator `wrk` is not installed (Debian: `apt-get install wrk`)".into(),
        )),
    }
}

/// Runs wrk against `base` with the bodies in `bodies_file`.
async fn run_wrk(
    base: &str,
    path: &str,
    dir: &Path,
    bodies_file: &Path,
    threads: usize,
    connections: usize,
    seconds: u64,
) -> Result<WrkSummary, BenchError> {
    let script = dir.join("post.lua");
    std::fs::write(&script, WRK_SCRIPT).map_err(io("writing the wrk script"))?;
    let out = tokio::process::Command::new("wrk")
        .arg(format!("-t{threads}"))
        .arg(format!("-c{}", connections.max(threads)))
        .arg(format!("-d{seconds}s"))
        .arg("--timeout")
        .arg("60s")
        .arg("-s")
        .arg(&script)
        .arg(base)
        .arg("--")
        .arg(bodies_file)
        .arg(threads.to_string())
        .arg("loop")
        .arg(path)
        .kill_on_drop(true)
        .output()
        .await
        .map_err(io("running wrk"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("STEPWISE_WRK "))
        .ok_or_else(|| {
            BenchError::Tool(format!(
                "wrk printed no summary (exit {:?}): {}{}",
                out.status.code(),
                stdout,
                String::from_utf8_lossy(&out.stderr)
            ))
        })?;
    serde_json::from_str(line)
        .map_err(|e| BenchError::Tool(format!("reading wrk's summary {line:?}: {e}")))
}

/// A Python server process group, stopped (SIGTERM to its group) on drop.
struct PyServer {
    child: std::process::Child,
}

impl Drop for PyServer {
    fn drop(&mut self) {
        let pgid = format!("-{}", self.child.id());
        let _ = std::process::Command::new("kill")
            .args(["-TERM", "--", &pgid])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        for _ in 0..50 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &pgid])
            .status();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16, BenchError> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(io("finding a free port"))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(io("finding a free port"))
}

async fn start_python(
    py: &Path,
    dir: &Path,
    workers: usize,
) -> Result<(PyServer, String), BenchError> {
    use std::os::unix::process::CommandExt;
    std::fs::write(dir.join("reward_app.py"), PYTHON_APP).map_err(io("writing the Python app"))?;
    let port = free_port()?;
    let log = std::fs::File::create(dir.join("uvicorn.log")).map_err(io("creating uvicorn.log"))?;
    let log2 = log.try_clone().map_err(io("opening uvicorn.log"))?;
    let child = std::process::Command::new(py)
        .args([
            "-m",
            "uvicorn",
            "reward_app:app",
            "--host",
            "127.0.0.1",
            "--log-level",
            "warning",
        ])
        .arg("--port")
        .arg(port.to_string())
        .arg("--workers")
        .arg(workers.to_string())
        .current_dir(dir)
        .stdout(log)
        .stderr(log2)
        .process_group(0)
        .spawn()
        .map_err(io("starting uvicorn"))?;
    let server = PyServer { child };
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let started = Instant::now();
    loop {
        if let Ok(r) = client.get(format!("{base}/health")).send().await
            && r.status().is_success()
        {
            break;
        }
        if started.elapsed() > Duration::from_secs(90) {
            let log = std::fs::read_to_string(dir.join("uvicorn.log")).unwrap_or_default();
            return Err(BenchError::Tool(format!(
                "the Python server did not come up within 90 s; its log:\n{log}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok((server, base))
}

/// stepwise's server, running on the current runtime until `stop` is sent.
struct Stepwise {
    base: String,
    addr: std::net::SocketAddr,
    state: std::sync::Arc<AppState>,
    stop: tokio::sync::oneshot::Sender<()>,
    handle: tokio::task::JoinHandle<Result<(), ServeError>>,
}

impl Stepwise {
    /// Binds a free loopback port with the deepseek-r1 preset and `workers` verification threads.
    async fn start(workers: usize) -> Result<Self, BenchError> {
        Self::start_toml("[reward]\npreset = \"deepseek-r1\"\n", workers).await
    }

    /// [`Stepwise::start`] with the reward configuration `toml`.
    async fn start_toml(toml: &str, workers: usize) -> Result<Self, BenchError> {
        let mut cfg = Config::from_toml(toml, "bench").map_err(ServeError::from)?;
        // the bench measures throughput, not admission control: let every wrk connection in
        cfg.server.max_concurrency = 4096;
        cfg.server.max_connections = 4096;
        cfg.server.workers = workers;
        Self::start_with(cfg).await
    }

    /// Binds a free loopback port with `cfg`.
    async fn start_with(cfg: Config) -> Result<Self, BenchError> {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        let server = Server::bind(addr, cfg).await?;
        let addr = server.local_addr();
        let state = server.state();
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(server.run(async move {
            let _ = rx.await;
        }));
        Ok(Self {
            base: format!("http://{addr}"),
            addr,
            state,
            stop,
            handle,
        })
    }

    /// Stops accepting, finishes what is in flight.
    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.handle.await;
    }
}

/// The rewards of a run, and the scratch folder where wrk reads their bodies.
struct Workload {
    items: Vec<BenchItem>,
    bodies: Vec<String>,
    dir: tempfile::TempDir,
    bodies_file: PathBuf,
    threads: usize,
    connections: usize,
    batch: usize,
}

impl Workload {
    fn prepare(args: &Args, data_dir: &Path) -> Result<Self, BenchError> {
        find_wrk()?;
        let records = read_math500(&data_dir.join("math500").join("test.jsonl"))?;
        let items = build_items(&records, args.items, args.seed);
        let bodies = bodies(&items, args.batch);
        let dir = tempfile::tempdir().map_err(io("creating a scratch folder"))?;
        let bodies_file = dir.path().join("bodies.jsonl");
        std::fs::write(&bodies_file, bodies.join("\n") + "\n")
            .map_err(io("writing the request bodies"))?;
        Ok(Self {
            items,
            bodies,
            dir,
            bodies_file,
            threads: args.wrk_threads,
            connections: args.connections,
            batch: args.batch,
        })
    }

    /// wrk cycling through the bodies against `base` for `seconds`.
    async fn load(&self, base: &str, seconds: u64) -> Result<WrkSummary, BenchError> {
        run_wrk(
            base,
            "/get_reward",
            self.dir.path(),
            &self.bodies_file,
            self.threads,
            self.connections,
            seconds,
        )
        .await
    }

    /// One load run against `base`, as a row of the table.
    async fn measure(
        &self,
        server: &str,
        base: &str,
        seconds: u64,
        round: usize,
    ) -> Result<LoadResult, BenchError> {
        let wrk = self.load(base, seconds).await?;
        let r = LoadResult {
            server: server.to_string(),
            // Rewards carried by the requests wrk completed (bodies cycle, each holds `batch`).
            rewards: wrk.requests * self.batch as u64,
            planned: self.items.len() as u64,
            wrk,
        };
        eprintln!(
            "round {round} {server}: {:.0} rewards/s, p99 {:.2} ms, {} errors",
            r.rewards_per_s(),
            r.wrk.p99_us as f64 / 1e3,
            r.wrk.errors()
        );
        Ok(r)
    }
}

impl Workload {
    /// Writes the bodies of a request shape, for [`Workload::measure_shape`].
    fn shape_file(&self, shape: shapes::Shape) -> Result<PathBuf, BenchError> {
        let (name, bodies) = match shape {
            shapes::Shape::Items(n) => (format!("bodies-{n}.jsonl"), bodies(&self.items, n)),
            shapes::Shape::Group => (
                "groups.jsonl".to_string(),
                shapes::group_bodies(&self.items),
            ),
        };
        if bodies.is_empty() {
            return Err(BenchError::Options(format!(
                "--items {} makes no request of {}",
                self.items.len(),
                shape.describe()
            )));
        }
        let path = self.dir.path().join(name);
        std::fs::write(&path, bodies.join("\n") + "\n")
            .map_err(io("writing the request bodies"))?;
        Ok(path)
    }

    /// One load run of a request shape (its bodies in `file`) against `base`.
    async fn measure_shape(
        &self,
        row: &mut shapes::ShapeRow,
        base: &str,
        file: &Path,
        seconds: u64,
        round: usize,
    ) -> Result<(), BenchError> {
        let wrk = run_wrk(
            base,
            row.shape.path(),
            self.dir.path(),
            file,
            self.threads,
            self.connections,
            seconds,
        )
        .await?;
        let r = LoadResult {
            server: format!("{:?}", row.server),
            rewards: wrk.requests * row.shape.per_request() as u64,
            planned: self.items.len() as u64,
            wrk,
        };
        eprintln!(
            "round {round} {:?} {}: {:.0} rewards/s, p99 {:.2} ms, {} errors",
            row.server,
            row.shape.describe(),
            r.rewards_per_s(),
            r.wrk.p99_us as f64 / 1e3,
            r.wrk.errors()
        );
        row.runs.push(r);
        Ok(())
    }
}

/// Label of stepwise's rows.
const STEPWISE_LABEL: &str = "stepwise serve (deepseek-r1 preset)";

/// Runs the comparison: an agreement pass through each server, then `--rounds`
/// alternating load runs (stepwise, then the reference) with both servers up.
pub fn measure(args: &Args, data_dir: &Path) -> Result<BenchReport, BenchError> {
    args.check()?;
    let c = &args.common;
    let rounds = c.rounds_or(DEFAULT_ROUNDS);
    let workers = c.threads();
    let py_workers = if args.py_workers == 0 {
        workers
    } else {
        args.py_workers
    };
    let work = Workload::prepare(args, data_dir)?;
    let (items, bodies) = (&work.items, &work.bodies);
    // pip before any server starts: the first time it takes minutes
    let env = if c.no_reference {
        None
    } else {
        Some(c.python_env(&PYTHON_REQUIREMENTS)?)
    };
    let rt = crate::runtime()?;
    // the preset, with EMPO for the group-rewards row (group components touch no other route)
    let ours = rt.block_on(Stepwise::start_toml(shapes::GROUP_TOML, workers))?;
    eprintln!(
        "bench serve: stepwise on {}; {} items in {} requests",
        ours.base,
        items.len(),
        bodies.len()
    );
    let our_pass = rt.block_on(pass(&ours.base, bodies, "stepwise"))?;
    // `_server` stops the Python server (its process group) when dropped
    let (_server, reference) = match &env {
        None => (None, None),
        Some(env) => {
            let (server, pbase) =
                rt.block_on(start_python(env.python(), work.dir.path(), py_workers))?;
            eprintln!("bench serve: Python reference on {pbase} ({py_workers} uvicorn workers)");
            let their_pass = rt.block_on(pass(&pbase, bodies, "python"))?;
            let mut agreement = compare(items, &our_pass, &their_pass);
            rt.block_on(diagnose(&pbase, items, &mut agreement))?;
            (Some(server), Some((pbase, agreement)))
        }
    };
    let python_label = format!(
        "FastAPI + uvicorn ({py_workers} workers) + math-verify 0.9.0, open-r1 accuracy recipe"
    );
    // The request-shape rows: stepwise at each shape, the v2 components, and the bare
    // server at each shape, each round after the main row; the reference at 1 item.
    use shapes::{Server as S, Shape, ShapeRow};
    let v2 = rt.block_on(Stepwise::start_toml(shapes::V2_TOML, workers))?;
    let bare = rt.block_on(shapes::Bare::start())?;
    let (one, batch, group) = (Shape::Items(1), Shape::Items(args.batch), Shape::Group);
    let files = [
        (one, work.shape_file(one)?),
        (batch, work.bodies_file.clone()),
        (group, work.shape_file(group)?),
    ];
    let file = |shape: Shape| {
        files
            .iter()
            .find(|(s, _)| *s == shape)
            .map(|(_, f)| f.clone())
            .unwrap_or_else(|| work.bodies_file.clone())
    };
    let row = |server, shape| ShapeRow {
        server,
        shape,
        runs: Vec::new(),
    };
    let mut ours_rows = vec![
        (row(S::Stepwise, one), ours.base.clone()),
        (row(S::Bare, one), bare.base.clone()),
        (row(S::StepwiseV2, one), v2.base.clone()),
        (row(S::Bare, batch), bare.base.clone()),
        (row(S::Stepwise, group), ours.base.clone()),
        (row(S::Bare, group), bare.base.clone()),
    ];
    let mut reference_one = row(S::Reference, one);
    let (mut stepwise, mut python) = (Vec::new(), Vec::new());
    alternate(
        rounds,
        |round| {
            stepwise.push(rt.block_on(work.measure(
                STEPWISE_LABEL,
                &ours.base,
                args.seconds,
                round,
            ))?);
            for (r, base) in &mut ours_rows {
                let f = file(r.shape);
                rt.block_on(work.measure_shape(r, base, &f, args.seconds, round))?;
            }
            Ok(())
        },
        |round| {
            if let Some((pbase, _)) = &reference {
                python.push(rt.block_on(work.measure(
                    &python_label,
                    pbase,
                    args.seconds,
                    round,
                ))?);
                let f = file(one);
                rt.block_on(work.measure_shape(
                    &mut reference_one,
                    pbase,
                    &f,
                    args.seconds,
                    round,
                ))?;
            }
            Ok::<(), BenchError>(())
        },
    )?;
    rt.block_on(ours.stop());
    rt.block_on(v2.stop());
    rt.block_on(bare.stop());
    let mut shape_rows: Vec<ShapeRow> = ours_rows.into_iter().map(|(r, _)| r).collect();
    // the main table's rows are the `--batch` shape's
    shape_rows.insert(
        1,
        ShapeRow {
            server: S::Stepwise,
            shape: batch,
            runs: stepwise.clone(),
        },
    );
    shape_rows.push(reference_one);
    shape_rows.push(ShapeRow {
        server: S::Reference,
        shape: batch,
        runs: python.clone(),
    });
    Ok(BenchReport {
        items: args.items,
        batch: args.batch,
        wrk_threads: args.wrk_threads,
        connections: args.connections,
        workers,
        py_workers,
        rounds,
        stepwise,
        python,
        agreement: reference.map(|(_, a)| a),
        shapes: shape_rows,
    })
}

/// `stepwise bench serve` (or its soak with `--soak`, or `--slow-clients N`): measures, prints the Markdown
/// section and writes it to `--out`.
pub fn run(args: &Args, data_dir: &Path) -> Result<(), BenchError> {
    let md = match (args.soak, args.slow_clients) {
        (Some(seconds), _) => soak(args, data_dir, seconds)?.to_markdown(),
        (None, Some(n)) => {
            args.check()?;
            slow::measure(args, data_dir, n)?.to_markdown()
        }
        (None, None) => measure(args, data_dir)?.to_markdown(),
    };
    publish(&md, args.common.out.as_deref())
}

/// A table row summarizing one server's load runs over the rounds.
fn load_row(t: &mut Table, runs: &[LoadResult]) {
    let Some(first) = runs.first() else {
        return;
    };
    let of = |f: &dyn Fn(&LoadResult) -> f64| runs.iter().map(f).collect::<Vec<f64>>();
    let rewards = of(&|r| r.rewards as f64);
    let short = runs.iter().any(|r| r.rewards < r.planned);
    t.row([
        first.server.clone(),
        format!(
            "{}{}",
            spread(&rewards, 0),
            if short {
                format!(" (fewer than the {} distinct rewards)", first.planned)
            } else {
                String::new()
            }
        ),
        spread(&of(&|r| r.seconds()), 2),
        spread(&of(&|r| r.rewards_per_s()), 0),
        spread(&of(&|r| r.wrk.p50_us as f64 / 1e3), 2),
        spread(&of(&|r| r.wrk.p90_us as f64 / 1e3), 2),
        spread(&of(&|r| r.wrk.p99_us as f64 / 1e3), 2),
        runs.iter().map(|r| r.wrk.errors()).sum::<u64>().to_string(),
    ]);
}

impl BenchReport {
    /// The comparison as a Markdown section.
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} MATH-style rewards ({} per request, OpenRLHF `/get_reward`), wrk with {} threads and {} connections, on 127.0.0.1; stepwise verifies on {} threads.\n",
            self.items, self.batch, self.wrk_threads, self.connections, self.workers
        );
        if self.rounds > 1 {
            let _ = writeln!(
                s,
                "Rounds: {} (each round runs wrk against stepwise, then against the reference); cells show the median and, in brackets, the range over the rounds; errors are summed; the ratio is of the medians.\n",
                self.rounds
            );
        }
        let mut t = Table::new(&[
            ("server", Align::Left),
            ("rewards scored", Align::Right),
            ("seconds", Align::Right),
            ("rewards/s", Align::Right),
            ("p50 ms", Align::Right),
            ("p90 ms", Align::Right),
            ("p99 ms", Align::Right),
            ("errors", Align::Right),
        ]);
        load_row(&mut t, &self.stepwise);
        load_row(&mut t, &self.python);
        s.push_str(&t.to_markdown());
        if !self.shapes.is_empty() {
            s.push_str(&shapes::to_markdown(&self.shapes));
        }
        let rate = |runs: &[LoadResult]| {
            median(
                &runs
                    .iter()
                    .map(LoadResult::rewards_per_s)
                    .collect::<Vec<_>>(),
            )
        };
        if !self.python.is_empty() {
            let p99: Vec<f64> = self
                .stepwise
                .iter()
                .map(|r| r.wrk.p99_us as f64 / 1e3)
                .collect();
            let _ = writeln!(
                s,
                "\nThroughput ratio: **{:.1}x** (target ≥ 20x). stepwise p99: {:.2} ms (target < 50 ms).",
                rate(&self.stepwise) / rate(&self.python).max(1e-9),
                median(&p99)
            );
        }
        if let Some(a) = &self.agreement {
            s.push_str(REFERENCE_RECIPE);
            let pct = |x: usize| 100.0 * x as f64 / a.compared.max(1) as f64;
            let _ = writeln!(
                s,
                "\nAgreement on the {} items where math-verify did not time out ({} timed out): identical rewards {} ({:.2}%), accuracy component {} ({:.2}%), format component {} ({:.2}%).\n",
                a.compared,
                a.python_timeouts,
                a.rewards_equal,
                pct(a.rewards_equal),
                a.accuracy_equal,
                pct(a.accuracy_equal),
                a.format_equal,
                pct(a.format_equal)
            );
            let causes = a.by_cause();
            let reference_side: usize = causes
                .iter()
                .filter(|(c, _)| c.is_reference_side())
                .map(|(_, v)| v.len())
                .sum();
            let other = a.differences.len() - reference_side;
            let _ = writeln!(
                s,
                "Rewards that differ: {} — {} traced to a bug on the reference side (math-verify or the recipe; reasons below), {} not explained that way.\n",
                a.differences.len(),
                reference_side,
                other
            );
            let mut t = Table::new(&[
                ("item kind", Align::Left),
                ("compared", Align::Right),
                ("rewards differ", Align::Right),
                ("reference-side bug", Align::Right),
            ]);
            for (k, (n, d)) in &a.by_kind {
                let refs = a
                    .differences
                    .iter()
                    .filter(|x| &x.kind == k && x.cause.is_reference_side())
                    .count();
                t.row([k.clone(), n.to_string(), d.to_string(), refs.to_string()]);
            }
            s.push_str(&t.to_markdown());
            for (cause, diffs) in &causes {
                let _ = writeln!(
                    s,
                    "\n**{} item(s): {}.** Each distinct case (gold | math-verify's parse of the response | stepwise accuracy | reference accuracy | items, by kind):\n",
                    diffs.len(),
                    cause.describe()
                );
                let mut cases: std::collections::BTreeMap<(&str, &str, u8, u8), Vec<&str>> =
                    Default::default();
                for d in diffs {
                    cases
                        .entry((
                            d.gold.as_str(),
                            d.reference_answer.as_str(),
                            d.stepwise_accuracy as u8,
                            d.reference_accuracy as u8,
                        ))
                        .or_default()
                        .push(d.kind.as_str());
                }
                for ((g, ans, x, y), kinds) in cases {
                    let mut counted: std::collections::BTreeMap<&str, usize> = Default::default();
                    for k in kinds {
                        *counted.entry(k).or_default() += 1;
                    }
                    let kinds: Vec<String> =
                        counted.iter().map(|(k, n)| format!("{k} {n}")).collect();
                    let _ = writeln!(s, "- `{g}` | `{ans}` | {x} | {y} | {}", kinds.join(", "));
                }
            }
        }
        s
    }
}

/// Memory over a soak run.
#[derive(Debug, Clone)]
pub struct SoakReport {
    pub seconds: u64,
    pub connections: usize,
    pub load: LoadResult,
    /// (seconds since start, resident KiB) samples.
    pub rss: Vec<(f64, u64)>,
}

/// This process's resident set size in KiB, from `/proc/self/status`.
pub fn rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

impl SoakReport {
    /// RSS after the first 10% of the run (warm-up), at the end, and the maximum.
    pub fn summary(&self) -> (u64, u64, u64) {
        let warm_t = self.seconds as f64 * 0.1;
        let warm = self
            .rss
            .iter()
            .find(|(t, _)| *t >= warm_t)
            .or(self.rss.first())
            .map_or(0, |x| x.1);
        let end = self.rss.last().map_or(0, |x| x.1);
        let max = self.rss.iter().map(|x| x.1).max().unwrap_or(0);
        (warm, end, max)
    }

    /// Growth from warm-up to end within max(5%, 8 MiB).
    pub fn is_flat(&self) -> bool {
        let (warm, end, _) = self.summary();
        end <= warm + (warm / 20).max(8 * 1024)
    }

    pub fn to_markdown(&self) -> String {
        let (warm, end, max) = self.summary();
        let mut s = String::new();
        let _ = writeln!(
            s,
            "Soak: {} s of wrk at {} connections against stepwise serve: {} requests ({} rewards, {:.0} rewards/s), {} errors, p50 {:.2} ms, p99 {:.2} ms.\n",
            self.seconds,
            self.connections,
            self.load.wrk.requests,
            self.load.rewards,
            self.load.rewards_per_s(),
            self.load.wrk.errors(),
            self.load.wrk.p50_us as f64 / 1e3,
            self.load.wrk.p99_us as f64 / 1e3
        );
        let _ = writeln!(
            s,
            "Resident memory of the server process: {:.1} MiB after warm-up (10% of the run), {:.1} MiB at the end, {:.1} MiB at most: {}.\n",
            warm as f64 / 1024.0,
            end as f64 / 1024.0,
            max as f64 / 1024.0,
            if self.is_flat() {
                "flat (growth within max(5%, 8 MiB))"
            } else {
                "NOT flat"
            }
        );
        s.push_str("| t (s) | RSS (MiB) |\n|---:|---:|\n");
        let step = (self.rss.len() / 12).max(1);
        for (i, (t, k)) in self.rss.iter().enumerate() {
            if i % step == 0 || i + 1 == self.rss.len() {
                let _ = writeln!(s, "| {t:.0} | {:.1} |", *k as f64 / 1024.0);
            }
        }
        s
    }
}

/// Keeps wrk on the stepwise server for `seconds`, sampling RSS once a second.
pub fn soak(args: &Args, data_dir: &Path, seconds: u64) -> Result<SoakReport, BenchError> {
    args.check()?;
    let work = Workload::prepare(args, data_dir)?;
    let rt = crate::runtime()?;
    rt.block_on(async {
        let server = Stepwise::start(args.common.threads()).await?;
        let start = Instant::now();
        let (done_tx, mut done_rx) = tokio::sync::watch::channel(false);
        let sampler = tokio::spawn(async move {
            let mut samples = Vec::new();
            let bar = indicatif::ProgressBar::new(seconds).with_message("soak");
            loop {
                if let Some(k) = rss_kib() {
                    samples.push((start.elapsed().as_secs_f64(), k));
                }
                bar.set_position(start.elapsed().as_secs().min(seconds));
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = done_rx.changed() => break,
                }
            }
            bar.finish_and_clear();
            if let Some(k) = rss_kib() {
                samples.push((start.elapsed().as_secs_f64(), k));
            }
            samples
        });
        let wrk = work.load(&server.base, seconds).await;
        let _ = done_tx.send(true);
        let rss = sampler
            .await
            .map_err(|e| BenchError::Tool(format!("the RSS sampler failed: {e}")))?;
        server.stop().await;
        let wrk = wrk?;
        Ok(SoakReport {
            seconds,
            connections: args.connections,
            load: LoadResult {
                server: "stepwise serve".into(),
                rewards: wrk.requests * args.batch as u64,
                planned: 0,
                wrk,
            },
            rss,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recs() -> Vec<(String, String)> {
        vec![
            ("What is 1+1?".into(), "2".into()),
            ("Half of one?".into(), "\\frac{1}{2}".into()),
            (
                "Point?".into(),
                "\\left( 3, \\frac{\\pi}{2} \\right)".into(),
            ),
        ]
    }

    #[test]
    fn items_are_deterministic_and_mixed() {
        let a = build_items(&recs(), 60, 7);
        let b = build_items(&recs(), 60, 7);
        assert_eq!(a, b);
        let kinds: std::collections::BTreeSet<_> = a.iter().map(|i| i.kind).collect();
        assert!(kinds.len() >= 8, "{kinds:?}");
        for it in &a {
            assert!(it.response.len() > 40);
        }
        // wrong answers differ from the gold answer
        for it in a.iter().filter(|i| i.kind == "wrong") {
            let ans = stepwise_core::find_boxed(&it.response).map(|r| &it.response[r]);
            assert_ne!(ans, Some(it.gold.as_str()));
        }
    }

    #[test]
    fn rewrites_and_wrongs() {
        assert_eq!(equivalent_rewrite("5", 0), "5.0");
        assert_eq!(equivalent_rewrite("\\frac{1}{2}", 0), "1/2");
        assert_eq!(equivalent_rewrite("\\frac{1}{2}", 1), "\\dfrac{1}{2}");
        assert_eq!(equivalent_rewrite("\\left( 3, 1 \\right)", 0), "( 3, 1 )");
        assert_eq!(wrong_answer("5", "x", 0), "6");
        assert_eq!(wrong_answer("\\frac{1}{2}", "x", 0), "\\frac{2}{1}");
        assert_eq!(wrong_answer("\\pi", "\\pi", 0), "\\pi+1");
    }

    #[test]
    fn bodies_match_the_openrlhf_shape() {
        let items = build_items(&recs(), 10, 1);
        let b = bodies(&items, 4);
        assert_eq!(b.len(), 3);
        let v: serde_json::Value = serde_json::from_str(&b[0]).unwrap();
        assert_eq!(v["query"].as_array().unwrap().len(), 4);
        let q = v["query"][0].as_str().unwrap();
        let p = v["prompts"][0].as_str().unwrap();
        assert!(q.starts_with(p));
    }

    #[test]
    fn causes_are_named_by_the_setting_that_flips_the_reference() {
        // stepwise 1, reference 0, and 1 once malformed_operators is on
        assert_eq!(classify(1.0, 1.0, 0.0, false), Cause::UnbracedTex);
        // stepwise 0, reference 1, and 0 with verify(gold, answer)
        assert_eq!(classify(0.0, 1.0, 0.0, false), Cause::SwappedVerify);
        assert_eq!(classify(1.0, 0.0, 0.0, false), Cause::Unexplained);
        // a format difference is never blamed on the accuracy recipe
        assert_eq!(classify(1.0, 1.0, 1.0, true), Cause::Unexplained);
        assert!(Cause::UnbracedTex.is_reference_side());
        assert!(!Cause::Unexplained.is_reference_side());
        assert!(!Cause::GoldUnparsed.is_reference_side());
    }

    #[test]
    fn differences_are_listed_by_cause() {
        let items = build_items(&recs(), 40, 3);
        let pass = |acc: Vec<f64>| PassResult {
            rewards: acc.clone(),
            accuracy: acc,
            format: vec![0.0; 40],
            timed_out: vec![0.0; 40],
            gold_unparsed: vec![0.0; 40],
        };
        let ours = pass(vec![1.0; 40]);
        let mut theirs_acc = vec![1.0; 40];
        theirs_acc[5] = 0.0;
        theirs_acc[7] = 0.0;
        let theirs = pass(theirs_acc);
        let mut a = compare(&items, &ours, &theirs);
        assert_eq!((a.compared, a.rewards_equal), (40, 38));
        assert_eq!(a.differences.len(), 2);
        a.differences[0].cause = Cause::UnbracedTex;
        let report = BenchReport {
            agreement: Some(a),
            ..report(1, vec![load()], vec![load()])
        };
        let md = report.to_markdown();
        assert!(md.contains("Rewards that differ: 2 — 1 traced"), "{md}");
        assert!(md.contains("**1 item(s): math-verify bug"), "{md}");
        assert!(md.contains("**1 item(s): not explained"), "{md}");
        assert!(md.contains("open-r1"), "{md}");
    }

    fn load() -> LoadResult {
        run(1, 1, 1, 0)
    }

    /// A load run of `requests` requests of 8 rewards over `ms` milliseconds.
    fn run(requests: u64, ms: u64, p99_us: u64, errors: u64) -> LoadResult {
        LoadResult {
            server: String::new(),
            wrk: WrkSummary {
                requests,
                duration_us: ms * 1000,
                connect: 0,
                read: 0,
                write: 0,
                status: errors,
                timeout: 0,
                p50_us: p99_us / 10,
                p90_us: p99_us / 2,
                p99_us,
                max_us: p99_us * 2,
            },
            rewards: requests * 8,
            planned: 80,
        }
    }

    fn report(rounds: usize, stepwise: Vec<LoadResult>, python: Vec<LoadResult>) -> BenchReport {
        BenchReport {
            items: 80,
            batch: 8,
            wrk_threads: 2,
            connections: 32,
            workers: 2,
            py_workers: 2,
            rounds,
            stepwise,
            python,
            agreement: None,
            shapes: Vec::new(),
        }
    }

    fn named(mut r: LoadResult, server: &str) -> LoadResult {
        r.server = server.into();
        r
    }

    #[test]
    fn one_round_reads_like_the_published_table() {
        let md = report(
            1,
            vec![named(run(1000, 2000, 32_400, 0), "stepwise")],
            vec![named(run(5, 2000, 528_000, 0), "python")],
        )
        .to_markdown();
        assert!(md.starts_with("80 MATH-style rewards (8 per request, OpenRLHF `/get_reward`), wrk with 2 threads and 32 connections, on 127.0.0.1; stepwise verifies on 2 threads.\n"), "{md}");
        assert!(!md.contains("Rounds:"), "{md}");
        assert!(
            md.contains("| stepwise | 8000 | 2.00 | 4000 | 3.24 | 16.20 | 32.40 | 0 |"),
            "{md}"
        );
        assert!(md.contains("| python | 40 (fewer than the 80 distinct rewards) | 2.00 | 20 | 52.80 | 264.00 | 528.00 | 0 |"), "{md}");
        assert!(
            md.contains("Throughput ratio: **200.0x** (target ≥ 20x). stepwise p99: 32.40 ms"),
            "{md}"
        );
    }

    #[test]
    fn rounds_show_medians_and_ranges_and_sum_the_errors() {
        let ours = vec![
            named(run(1000, 1000, 30_000, 1), "stepwise"),
            named(run(3000, 1000, 10_000, 0), "stepwise"),
            named(run(2000, 1000, 20_000, 2), "stepwise"),
        ];
        let md = report(3, ours, vec![]).to_markdown();
        assert!(
            md.contains(
                "Rounds: 3 (each round runs wrk against stepwise, then against the reference)"
            ),
            "{md}"
        );
        assert!(
            md.contains("| stepwise | 16000 (8000–24000) | 1.00 (1.00–1.00) | 16000 (8000–24000) | 2.00 (1.00–3.00) | 10.00 (5.00–15.00) | 20.00 (10.00–30.00) | 3 |"),
            "{md}"
        );
        assert!(!md.contains("Throughput ratio"), "{md}");
    }

    #[test]
    fn defaults_are_the_published_settings_and_options_are_checked() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            args: Args,
        }
        let parse = |a: &[&str]| {
            Cli::try_parse_from(std::iter::once("serve").chain(a.iter().copied())).map(|c| c.args)
        };
        let a = parse(&[]).unwrap();
        assert_eq!(
            (a.items, a.batch, a.connections, a.wrk_threads, a.seconds),
            (10_000, 8, 32, 2, 20)
        );
        assert_eq!(a.common.rounds_or(DEFAULT_ROUNDS), 1);
        assert!(a.check().is_ok());
        let a = parse(&["--soak", "180", "--connections", "256"]).unwrap();
        assert_eq!((a.soak, a.connections), (Some(180), 256));
        assert!(a.check().is_ok());
        let e = parse(&["--soak", "5", "--rounds", "2"])
            .unwrap()
            .check()
            .unwrap_err();
        assert!(e.to_string().contains("--soak"), "{e}");
        assert!(parse(&["--batch", "0"]).unwrap().check().is_err());
    }

    #[test]
    fn soak_flatness() {
        let mk = |rss: Vec<u64>| SoakReport {
            seconds: 10,
            connections: 1,
            load: load(),
            rss: rss
                .into_iter()
                .enumerate()
                .map(|(i, k)| (i as f64, k))
                .collect(),
        };
        assert!(mk(vec![10_000, 50_000, 51_000, 52_000, 50_500]).is_flat());
        assert!(!mk(vec![10_000, 50_000, 60_000, 70_000, 90_000]).is_flat());
        assert!(rss_kib().is_some_and(|k| k > 0));
    }
}
