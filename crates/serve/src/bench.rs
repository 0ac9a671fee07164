//! `stepwise bench serve`: a load test of the reward server against the usual
//! hand-made Python reward server (FastAPI + uvicorn + math-verify), side by side.
//!
//! 1. Builds N MATH-style rewards from MATH-500: gold answers, equivalent
//!    rewrites and wrong answers, wrapped in model-like responses (with and
//!    without `<think>` blocks, `<answer>` tags, truncated ones).
//! 2. Starts stepwise's server in this process and the Python server in a private
//!    venv (created once under the cache folder), both on 127.0.0.1.
//! 3. Agreement pass: every item once through each server's `/get_reward`;
//!    rewards are compared where math-verify did not time out, and each item whose
//!    rewards differ goes to the reference's `/diagnose`, which recomputes it with
//!    one recipe setting changed so the report names the cause ([`Cause`]).
//! 4. Load pass: `wrk` (Debian's `wrk`, a Lua script for the POST bodies) cycles
//!    through the same N rewards against each server for a fixed time, and
//!    throughput is completed requests × rewards per request / that time. (A
//!    send-each-once run cannot be timed with wrk: its main thread sleeps the
//!    whole `-d` even after every thread has stopped, so the measured duration
//!    would always be the bound.)
//!
//! Soak mode keeps `wrk` on the stepwise server for a given time at high
//! concurrency and samples this process's resident memory from `/proc/self/status`.

use crate::Server;
use crate::config::Config;
use serde::Deserialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Errors of the bench, each naming what failed.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{path}:{line}: {msg}")]
    Data {
        path: String,
        line: usize,
        msg: String,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Tool(String),
    #[error(transparent)]
    Serve(#[from] crate::ServeError),
    #[error("{what}: {source}")]
    Http {
        what: String,
        source: reqwest::Error,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BenchError {
    let what = what.into();
    move |source| BenchError::Io { what, source }
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
pub const PYTHON_APP: &str = r#"# Written by `stepwise bench serve`: the reference reward server.
# Accuracy follows open-r1's GRPO accuracy_reward recipe (src/open_r1/rewards.py).
import logging

from fastapi import FastAPI
from latex2sympy2_extended import NormalizationConfig
from math_verify import LatexExtractionConfig, parse, verify
from pydantic import BaseModel


class _TimeoutCounter(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.n = 0

    def emit(self, record):
        if "Timeout" in record.getMessage():
            self.n += 1


_timeouts = _TimeoutCounter()
logging.getLogger("math_verify").addHandler(_timeouts)
logging.getLogger("math_verify").setLevel(logging.WARNING)
# the recipe passes equations=True, which latex2sympy2_extended 1.x warns about on every
# parse (it is a no-op now); keep that warning out of the timed path
logging.getLogger("latex2sympy2_extended").setLevel(logging.ERROR)

GOLD_CONFIG = [LatexExtractionConfig()]


def answer_config(malformed_operators=False):
    return [
        LatexExtractionConfig(
            normalization_config=NormalizationConfig(
                nits=False,
                malformed_operators=malformed_operators,
                basic_latex=True,
                equations=True,
                boxed="all",
                units=True,
            ),
            boxed_match_priority=0,
            try_extract_without_anchor=False,
        )
    ]


ANSWER_CONFIG = answer_config()
ANSWER_CONFIG_MALFORMED_OPS = answer_config(malformed_operators=True)

app = FastAPI()


class Req(BaseModel):
    query: list[str]
    prompts: list[str]
    labels: list[str]


def format_ok(prompt: str, response: str) -> bool:
    r = response.strip()
    if r.count("</think>") != 1:
        return False
    opens = r.count("<think>")
    opened_here = r.startswith("<think>") and opens == 1
    prefilled = opens == 0 and prompt.rstrip().endswith("<think>")
    if not (opened_here or prefilled):
        return False
    after = r[r.find("</think>") + len("</think>"):]
    i = after.find("<answer>")
    return "\\boxed{" in after or (i >= 0 and "</answer>" in after[i:])


def parse_gold(label: str):
    return parse("\\boxed{" + label + "}", extraction_mode="first_match", extraction_config=GOLD_CONFIG)


def parse_answer(response: str, config=ANSWER_CONFIG):
    return parse(response, extraction_config=config, extraction_mode="first_match")


def safe_verify(a, b) -> float:
    try:
        return 1.0 if verify(a, b) else 0.0
    except Exception:
        return 0.0


def accuracy(response: str, label: str):
    """(accuracy, timed out, gold unparseable), as open-r1's accuracy_reward scores it."""
    before = _timeouts.n
    gold = parse_gold(label)
    if len(gold) == 0:
        return 1.0, 1.0 if _timeouts.n > before else 0.0, 1.0
    a = safe_verify(parse_answer(response), gold)
    return a, (1.0 if _timeouts.n > before else 0.0), 0.0


def split(q: str, p: str) -> str:
    return q[len(p):] if q.startswith(p) else q


@app.get("/health")
async def health():
    return {"status": "ok"}


@app.post("/get_reward")
async def get_reward(req: Req):
    rewards, acc, fmt, timed_out, gold_unparsed = [], [], [], [], []
    for q, p, l in zip(req.query, req.prompts, req.labels):
        response = split(q, p)
        a, t, u = accuracy(response, l)
        f = 1.0 if format_ok(p, response) else 0.0
        rewards.append(a + f)
        acc.append(a)
        fmt.append(f)
        timed_out.append(t)
        gold_unparsed.append(u)
    return {
        "rewards": rewards,
        "scores": rewards,
        "extra_logs": {
            "accuracy": acc,
            "format": fmt,
            "timed_out": timed_out,
            "gold_unparsed": gold_unparsed,
        },
    }


@app.post("/diagnose")
async def diagnose(req: Req):
    out = {"gold": [], "answer": [], "malformed_operators_on": [], "gold_first": []}
    for q, p, l in zip(req.query, req.prompts, req.labels):
        response = split(q, p)
        gold = parse_gold(l)
        ans = parse_answer(response)
        out["gold"].append(str(gold))
        out["answer"].append(str(ans))
        out["malformed_operators_on"].append(
            safe_verify(parse_answer(response, ANSWER_CONFIG_MALFORMED_OPS), gold)
        )
        out["gold_first"].append(safe_verify(gold, ans))
    return out
"#;

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
pub const WRK_SCRIPT: &str = r#"-- Written by `stepwise bench serve`.
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  local path, nthreads, once = args[1], tonumber(args[2]), args[3] == "once"
  bodies = {}
  local all = {}
  for line in io.lines(path) do all[#all + 1] = line end
  for i = id + 1, #all, nthreads do bodies[#bodies + 1] = all[i] end
  quota = once and #bodies or -1
  sent, got = 0, 0
end

function request()
  sent = sent + 1
  local body = bodies[((sent - 1) % #bodies) + 1]
  return wrk.format("POST", "/get_reward", {["Content-Type"] = "application/json"}, body)
end

function response(status, headers, body)
  got = got + 1
  if quota > 0 and got >= quota then wrk.thread:stop() end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\nSTEPWISE_WRK {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"#;

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

/// Options of the bench.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// MATH-500 `test.jsonl`.
    pub math500: PathBuf,
    pub items: usize,
    /// Items per request.
    pub batch: usize,
    /// wrk connections and threads.
    pub connections: usize,
    pub threads: usize,
    /// Upper bound on each load run.
    pub max_seconds: u64,
    /// Where the Python venv lives.
    pub cache_dir: PathBuf,
    pub python: String,
    /// uvicorn worker processes (0: one per core).
    pub py_workers: usize,
    /// Skip the Python server (stepwise only).
    pub skip_python: bool,
    pub seed: u64,
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
    pub options: BenchOptions,
    pub stepwise: LoadResult,
    pub python: Option<LoadResult>,
    pub agreement: Option<Agreement>,
    pub workers: usize,
    pub py_workers: usize,
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

/// The user cache folder's `stepwise/bench-serve` (the temp folder when there is none).
pub fn default_cache_dir() -> PathBuf {
    stepwise_core::paths::cache_dir("bench-serve")
}

/// Creates (once) the venv of the reference server and returns its python.
pub fn ensure_venv(cache_dir: &Path, python: &str) -> Result<PathBuf, BenchError> {
    let venv = cache_dir.join("venv-mathverify-0.9.0");
    let py = venv.join("bin").join("python");
    let marker = venv.join(".stepwise-ready");
    if marker.exists() && py.exists() {
        return Ok(py);
    }
    std::fs::create_dir_all(cache_dir).map_err(io(format!("creating {}", cache_dir.display())))?;
    eprintln!(
        "bench serve: creating the reference venv in {} (once)",
        venv.display()
    );
    let st = std::process::Command::new(python)
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .map_err(io(format!(
            "running {python} -m venv (is python3 installed?)"
        )))?;
    if !st.success() {
        return Err(BenchError::Tool(format!(
            "{python} -m venv {} failed",
            venv.display()
        )));
    }
    let st = std::process::Command::new(&py)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(PYTHON_REQUIREMENTS)
        .status()
        .map_err(io("running pip install"))?;
    if !st.success() {
        return Err(BenchError::Tool(format!(
            "pip install {} failed",
            PYTHON_REQUIREMENTS.join(" ")
        )));
    }
    std::fs::write(&marker, PYTHON_REQUIREMENTS.join("\n"))
        .map_err(io("marking the venv ready"))?;
    Ok(py)
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

async fn start_stepwise() -> Result<
    (
        String,
        std::sync::Arc<crate::AppState>,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<Result<(), crate::ServeError>>,
    ),
    BenchError,
> {
    let mut cfg = Config::with_preset("deepseek-r1").map_err(crate::ServeError::from)?;
    // the bench measures throughput, not admission control: let every wrk connection in
    cfg.server.max_concurrency = 4096;
    let server = Server::bind("127.0.0.1:0".parse().expect("literal address"), cfg).await?;
    let base = format!("http://{}", server.local_addr());
    let state = server.state();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(server.run(async move {
        let _ = rx.await;
    }));
    Ok((base, state, tx, handle))
}

/// The rewards of a run, and the scratch folder where wrk reads their bodies.
struct Workload {
    items: Vec<BenchItem>,
    bodies: Vec<String>,
    dir: tempfile::TempDir,
    bodies_file: PathBuf,
    threads: usize,
    connections: usize,
}

impl Workload {
    fn prepare(opts: &BenchOptions) -> Result<Self, BenchError> {
        find_wrk()?;
        let records = read_math500(&opts.math500)?;
        let items = build_items(&records, opts.items, opts.seed);
        let bodies = bodies(&items, opts.batch);
        let dir = tempfile::tempdir().map_err(io("creating a scratch folder"))?;
        let bodies_file = dir.path().join("bodies.jsonl");
        std::fs::write(&bodies_file, bodies.join("\n") + "\n")
            .map_err(io("writing the request bodies"))?;
        Ok(Self {
            items,
            bodies,
            dir,
            bodies_file,
            threads: opts.threads,
            connections: opts.connections,
        })
    }

    /// wrk cycling through the bodies against `base` for `seconds`.
    async fn load(&self, base: &str, seconds: u64) -> Result<WrkSummary, BenchError> {
        run_wrk(
            base,
            self.dir.path(),
            &self.bodies_file,
            self.threads,
            self.connections,
            seconds,
        )
        .await
    }
}

/// Runs the comparison.
pub async fn run(opts: BenchOptions) -> Result<BenchReport, BenchError> {
    let work = Workload::prepare(&opts)?;
    let (items, bodies) = (&work.items, &work.bodies);
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let py_workers = if opts.py_workers == 0 {
        cores
    } else {
        opts.py_workers
    };

    let (base, _state, stop, handle) = start_stepwise().await?;
    eprintln!(
        "bench serve: stepwise on {base}; {} items in {} requests",
        items.len(),
        bodies.len()
    );
    let ours = pass(&base, bodies, "stepwise").await?;
    let wrk_ours = work.load(&base, opts.max_seconds).await?;
    let _ = stop.send(());
    let _ = handle.await;
    let stepwise = LoadResult {
        server: "stepwise serve (deepseek-r1 preset)".into(),
        rewards: rewards_done(&wrk_ours, opts.batch),
        planned: items.len() as u64,
        wrk: wrk_ours,
    };

    let (python, agreement) = if opts.skip_python {
        (None, None)
    } else {
        let py = ensure_venv(&opts.cache_dir, &opts.python)?;
        let (_server, pbase) = start_python(&py, work.dir.path(), py_workers).await?;
        eprintln!("bench serve: Python reference on {pbase} ({py_workers} uvicorn workers)");
        let theirs = pass(&pbase, bodies, "python").await?;
        let wrk_theirs = work.load(&pbase, opts.max_seconds).await?;
        let mut agreement = compare(items, &ours, &theirs);
        diagnose(&pbase, items, &mut agreement).await?;
        (
            Some(LoadResult {
                server: format!(
                    "FastAPI + uvicorn ({py_workers} workers) + math-verify 0.9.0, open-r1 accuracy recipe"
                ),
                rewards: rewards_done(&wrk_theirs, opts.batch),
                planned: items.len() as u64,
                wrk: wrk_theirs,
            }),
            Some(agreement),
        )
    };
    Ok(BenchReport {
        options: opts.clone(),
        stepwise,
        python,
        agreement,
        workers: cores,
        py_workers,
    })
}

/// Rewards carried by the completed requests (every body but maybe the last is full).
/// Rewards carried by the requests wrk completed (bodies cycle, each holds `batch`).
fn rewards_done(w: &WrkSummary, batch: usize) -> u64 {
    w.requests * batch as u64
}

impl BenchReport {
    /// The comparison as a Markdown section.
    pub fn to_markdown(&self) -> String {
        let o = &self.options;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} MATH-style rewards ({} per request, OpenRLHF `/get_reward`), wrk with {} threads and {} connections, on 127.0.0.1; stepwise verifies on {} threads.\n",
            o.items, o.batch, o.threads, o.connections, self.workers
        );
        s.push_str(
            "| server | rewards scored | seconds | rewards/s | p50 ms | p90 ms | p99 ms | errors |\n",
        );
        s.push_str("|---|---:|---:|---:|---:|---:|---:|---:|\n");
        for r in std::iter::once(&self.stepwise).chain(self.python.as_ref()) {
            let _ = writeln!(
                s,
                "| {} | {}{} | {:.2} | {:.0} | {:.2} | {:.2} | {:.2} | {} |",
                r.server,
                r.rewards,
                if r.rewards < r.planned {
                    format!(" (fewer than the {} distinct rewards)", r.planned)
                } else {
                    String::new()
                },
                r.seconds(),
                r.rewards_per_s(),
                r.wrk.p50_us as f64 / 1e3,
                r.wrk.p90_us as f64 / 1e3,
                r.wrk.p99_us as f64 / 1e3,
                r.wrk.errors(),
            );
        }
        if let Some(p) = &self.python {
            let _ = writeln!(
                s,
                "\nThroughput ratio: **{:.1}x** (target ≥ 20x). stepwise p99: {:.2} ms (target < 50 ms).",
                self.stepwise.rewards_per_s() / p.rewards_per_s().max(1e-9),
                self.stepwise.wrk.p99_us as f64 / 1e3
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
            s.push_str("| item kind | compared | rewards differ | reference-side bug |\n|---|---:|---:|---:|\n");
            for (k, (n, d)) in &a.by_kind {
                let refs = a
                    .differences
                    .iter()
                    .filter(|x| &x.kind == k && x.cause.is_reference_side())
                    .count();
                let _ = writeln!(s, "| {k} | {n} | {d} | {refs} |");
            }
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
pub async fn soak(opts: BenchOptions, seconds: u64) -> Result<SoakReport, BenchError> {
    let work = Workload::prepare(&opts)?;
    let (base, _state, stop, handle) = start_stepwise().await?;
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
    let wrk = work.load(&base, seconds).await;
    let _ = done_tx.send(true);
    let rss = sampler
        .await
        .map_err(|e| BenchError::Tool(format!("the RSS sampler failed: {e}")))?;
    let _ = stop.send(());
    let _ = handle.await;
    let wrk = wrk?;
    Ok(SoakReport {
        seconds,
        connections: opts.connections,
        load: LoadResult {
            server: "stepwise serve".into(),
            rewards: wrk.requests * opts.batch as u64,
            planned: 0,
            wrk,
        },
        rss,
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
            options: BenchOptions {
                math500: PathBuf::new(),
                items: 40,
                batch: 8,
                connections: 1,
                threads: 1,
                max_seconds: 1,
                cache_dir: PathBuf::new(),
                python: String::new(),
                py_workers: 1,
                skip_python: false,
                seed: 3,
            },
            stepwise: load(),
            python: Some(load()),
            agreement: Some(a),
            workers: 1,
            py_workers: 1,
        };
        let md = report.to_markdown();
        assert!(md.contains("Rewards that differ: 2 — 1 traced"), "{md}");
        assert!(md.contains("**1 item(s): math-verify bug"), "{md}");
        assert!(md.contains("**1 item(s): not explained"), "{md}");
        assert!(md.contains("open-r1"), "{md}");
    }

    fn load() -> LoadResult {
        LoadResult {
            server: String::new(),
            wrk: serde_json::from_str(r#"{"requests":1,"duration_us":1,"connect":0,"read":0,"write":0,"status":0,"timeout":0,"p50_us":1,"p90_us":1,"p99_us":1,"max_us":1}"#).unwrap(),
            rewards: 1,
            planned: 0,
        }
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
