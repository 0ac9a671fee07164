//! `stepwise bench verify`: stepwise-verify against HF math-verify on the same pairs, in one run.
//!
//! The pair corpus: every MATH-500 answer (in `$…$`) against rewritten forms of itself (a boxed
//! sentence, LaTeX spelling variants, the reference solution) and against another
//! problem's answer, plus the 5,276 graded GSM8K model solutions against their gold
//! number. math-verify runs single-threaded in the reference venv through a small Python
//! driver (`assets/math_verify_driver.py`) that times only the parse+verify calls;
//! stepwise runs single-threaded and on `--threads` threads. Each round times stepwise,
//! then math-verify. When the reference venv also has the `stepwise` wheel (`--venv .venv`
//! after `scripts/setup`), the same driver process then times the Python rows on the same
//! pairs: `stepwise.verify` per call and `stepwise.verify_batch` on `--threads` threads. The
//! table reports pairs/s, the speed ratio and agreement on the pairs where math-verify did
//! not time out.

use crate::report::{Align, Table, publish};
use crate::stats::{alternate, median, spread};
use crate::{BenchError, CommonArgs, io};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use stepwise_core::AnswerExtractor;
use stepwise_verify::{Options, Verdict, verify, verify_batch};

/// Rounds when `--rounds` is not given (one math-verify pass takes ~10 s here).
pub const DEFAULT_ROUNDS: usize = 1;

/// The Python driver that runs math-verify over a JSONL file of pairs.
const DRIVER: &str = include_str!("../assets/math_verify_driver.py");

/// `stepwise bench verify`: answer verification, stepwise versus HF math-verify.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,
    /// math-verify version to install into the reference venv.
    #[arg(long, default_value = "0.9.0")]
    pub math_verify_version: String,
    /// math-verify's own per-call timeout (parsing_timeout, timeout_seconds), in seconds.
    #[arg(long, default_value_t = 5)]
    pub timeout_s: u32,
    /// Use at most this many pairs, evenly spaced over the corpus (0 = all).
    #[arg(long, default_value_t = 0)]
    pub limit: usize,
    /// List up to this many disagreements.
    #[arg(long, default_value_t = 15)]
    pub show_disagreements: usize,
}

/// One (gold, prediction) pair and the corpus it comes from.
#[derive(Debug, Serialize, Clone, PartialEq)]
pub struct Pair {
    pub corpus: &'static str,
    pub gold: String,
    pub pred: String,
}

/// math-verify's result on one pair, as the driver writes it.
#[derive(Debug, Deserialize, Clone, PartialEq)]
struct MvResult {
    i: usize,
    eq: bool,
    s: f64,
    err: bool,
}

fn read_jsonl(path: &Path) -> Result<Vec<serde_json::Value>, BenchError> {
    let f = std::fs::File::open(path).map_err(io(format!("opening {}", path.display())))?;
    let mut out = Vec::new();
    for (i, line) in BufReader::new(f).lines().enumerate() {
        let line = line.map_err(io(format!("{}:{}: reading", path.display(), i + 1)))?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(serde_json::from_str(&line).map_err(|e| BenchError::Data {
            path: path.display().to_string(),
            line: i + 1,
            msg: format!("bad JSON: {e}"),
        })?);
    }
    Ok(out)
}

fn field<'a>(
    v: &'a serde_json::Value,
    k: &str,
    path: &Path,
    line: usize,
) -> Result<&'a str, BenchError> {
    v[k].as_str().ok_or_else(|| BenchError::Data {
        path: path.display().to_string(),
        line,
        msg: format!("missing string field {k:?}"),
    })
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

/// The pair corpus from the data folder (`math500/`, `gsm8k_model_solutions/`).
pub fn corpus(dir: &Path) -> Result<Vec<Pair>, BenchError> {
    let mut pairs = Vec::new();
    let m = dir.join("math500/test.jsonl");
    let rows = read_jsonl(&m)?;
    let answers: Vec<String> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| field(r, "answer", &m, i + 1).map(String::from))
        .collect::<Result<_, _>>()?;
    for (i, r) in rows.iter().enumerate() {
        // Gold answers go in math delimiters: math-verify's default extraction needs them.
        let a = &answers[i];
        let gold = format!("${a}$");
        let sol = field(r, "solution", &m, i + 1)?;
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
        let gt = field(r, "ground_truth", &gpath, i + 1)?;
        let gold = ex
            .extract(gt)
            .ok_or_else(|| BenchError::Data {
                path: gpath.display().to_string(),
                line: i + 1,
                msg: "no answer in ground_truth".into(),
            })?
            .text;
        for model in [
            "6b_finetuning",
            "6b_verification",
            "175b_finetuning",
            "175b_verification",
        ] {
            let pred = r[model]["solution"]
                .as_str()
                .ok_or_else(|| BenchError::Data {
                    path: gpath.display().to_string(),
                    line: i + 1,
                    msg: format!("missing {model}.solution"),
                })?;
            pairs.push(Pair {
                corpus: "gsm8k-solutions",
                gold: gold.clone(),
                pred: pred.to_string(),
            });
        }
    }
    Ok(pairs)
}

/// At most `limit` pairs (0: all): each corpus keeps its share of the limit (at least one
/// pair while the limit allows), evenly spaced within it, in corpus order.
pub fn subset(pairs: Vec<Pair>, limit: usize) -> Vec<Pair> {
    if limit == 0 || pairs.len() <= limit {
        return pairs;
    }
    let mut corpora: Vec<(&'static str, Vec<usize>)> = Vec::new();
    for (i, p) in pairs.iter().enumerate() {
        match corpora.iter_mut().find(|(c, _)| *c == p.corpus) {
            Some((_, v)) => v.push(i),
            None => corpora.push((p.corpus, vec![i])),
        }
    }
    let sizes: Vec<usize> = corpora.iter().map(|(_, v)| v.len()).collect();
    let quotas = shares(&sizes, limit);
    let mut keep: Vec<usize> = Vec::with_capacity(limit);
    for ((_, idx), q) in corpora.iter().zip(quotas) {
        let step = idx.len() as f64 / q.max(1) as f64;
        keep.extend((0..q).map(|k| idx[(k as f64 * step) as usize]));
    }
    keep.sort_unstable();
    keep.into_iter().map(|i| pairs[i].clone()).collect()
}

/// Splits `limit` over groups of `sizes` in proportion (largest remainders first), giving
/// every group at least one while `limit` allows; no group gets more than it has.
fn shares(sizes: &[usize], limit: usize) -> Vec<usize> {
    let total: usize = sizes.iter().sum();
    if total <= limit {
        return sizes.to_vec();
    }
    let exact: Vec<f64> = sizes
        .iter()
        .map(|&n| limit as f64 * n as f64 / total as f64)
        .collect();
    let mut q: Vec<usize> = exact.iter().map(|x| x.floor() as usize).collect();
    if limit >= sizes.len() {
        for (qi, &n) in q.iter_mut().zip(sizes) {
            if *qi == 0 && n > 0 {
                *qi = 1;
            }
        }
    }
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by(|&a, &b| (exact[b] - exact[b].floor()).total_cmp(&(exact[a] - exact[a].floor())));
    // hand out what is left, largest remainder first
    let mut sum: usize = q.iter().sum();
    let mut k = 0;
    while sum < limit && order.iter().any(|&g| q[g] < sizes[g]) {
        let g = order[k % order.len()];
        k += 1;
        if q[g] < sizes[g] {
            q[g] += 1;
            sum += 1;
        }
    }
    // the minimum of one may overshoot: take back from the largest shares
    while sum > limit {
        let Some(g) = (0..q.len()).filter(|&g| q[g] > 1).max_by_key(|&g| q[g]) else {
            break;
        };
        q[g] -= 1;
        sum -= 1;
    }
    q
}

/// The Python rows of one round, as the driver writes them: seconds per pass over all pairs.
#[derive(Debug, Deserialize, Clone, PartialEq)]
struct PyRound {
    single: f64,
    batch: f64,
    /// `stepwise.verify` per pair, and whether `verify_batch` gave the same list.
    eq: Vec<bool>,
    batch_same: bool,
}

/// Runs math-verify once over every pair in the venv's python; with `python_threads`, the
/// same process then times the `stepwise` wheel's rows on those threads.
fn run_math_verify(
    py: &Path,
    pairs: &[Pair],
    timeout_s: u32,
    python_threads: Option<usize>,
) -> Result<(Vec<MvResult>, Option<PyRound>), BenchError> {
    let tmp = tempfile::tempdir().map_err(io("creating a scratch folder"))?;
    let driver = tmp.path().join("driver.py");
    let input = tmp.path().join("pairs.jsonl");
    let output = tmp.path().join("results.jsonl");
    let py_output = tmp.path().join("python-rows.json");
    std::fs::write(&driver, DRIVER).map_err(io(format!("writing {}", driver.display())))?;
    let mut text = String::new();
    for p in pairs {
        let line = serde_json::to_string(p)
            .map_err(|e| BenchError::Tool(format!("encoding a pair: {e}")))?;
        text.push_str(&line);
        text.push('\n');
    }
    std::fs::write(&input, text).map_err(io(format!("writing {}", input.display())))?;
    let pb = ProgressBar::new(pairs.len() as u64);
    pb.set_style(
        ProgressStyle::with_template("math-verify {bar:40} {pos}/{len} pairs eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut cmd = Command::new(py);
    cmd.arg(&driver)
        .arg(&input)
        .arg(&output)
        .arg(timeout_s.to_string());
    if let Some(t) = python_threads {
        cmd.arg(&py_output).arg(t.to_string());
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(io("starting the math-verify driver"))?;
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if let Ok(n) = line.trim().parse::<u64>() {
                pb.set_position(n);
            }
        }
    }
    let status = child
        .wait()
        .map_err(io("waiting for the math-verify driver"))?;
    pb.finish_and_clear();
    if !status.success() {
        return Err(BenchError::Tool(format!(
            "the math-verify driver failed ({status})"
        )));
    }
    let results: Vec<MvResult> = read_jsonl(&output)?
        .into_iter()
        .map(serde_json::from_value)
        .collect::<Result<_, _>>()
        .map_err(|e| BenchError::Tool(format!("reading math-verify's results: {e}")))?;
    if results.len() != pairs.len() {
        return Err(BenchError::Tool(format!(
            "math-verify returned {} results for {} pairs",
            results.len(),
            pairs.len()
        )));
    }
    let rows = match python_threads {
        None => None,
        Some(_) => {
            let text = std::fs::read_to_string(&py_output)
                .map_err(io(format!("reading {}", py_output.display())))?;
            let rows: PyRound = serde_json::from_str(&text)
                .map_err(|e| BenchError::Tool(format!("reading the Python rows' results: {e}")))?;
            if rows.eq.len() != pairs.len() {
                return Err(BenchError::Tool(format!(
                    "stepwise (Python) returned {} verdicts for {} pairs",
                    rows.eq.len(),
                    pairs.len()
                )));
            }
            Some(rows)
        }
    };
    Ok((results, rows))
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

/// stepwise's timings of one round.
struct OursRound {
    verdicts: Vec<Verdict>,
    /// Seconds for all pairs, one thread and on the pool.
    single: f64,
    multi: f64,
    /// Slowest single call of the round.
    worst: Duration,
}

/// Times stepwise over `pairs`: one thread (repeated until a second has passed), then the
/// pool through `verify_batch`.
fn time_stepwise(pairs: &[Pair], pool: &rayon::ThreadPool, o: &Options) -> OursRound {
    let mut verdicts = Vec::with_capacity(pairs.len());
    let t = Instant::now();
    let mut worst = Duration::ZERO;
    for p in pairs {
        let t1 = Instant::now();
        verdicts.push(verify(&p.gold, &p.pred, o));
        worst = worst.max(t1.elapsed());
    }
    let mut reps = 1u32;
    while t.elapsed() < Duration::from_secs(1) {
        for p in pairs {
            std::hint::black_box(verify(&p.gold, &p.pred, o));
        }
        reps += 1;
    }
    let single = t.elapsed().as_secs_f64() / reps as f64;
    let refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|p| (p.gold.as_str(), p.pred.as_str()))
        .collect();
    let t = Instant::now();
    let mut reps_mt = 0u32;
    while reps_mt == 0 || t.elapsed() < Duration::from_secs(1) {
        std::hint::black_box(pool.install(|| verify_batch(&refs, o)));
        reps_mt += 1;
    }
    let multi = t.elapsed().as_secs_f64() / reps_mt as f64;
    OursRound {
        verdicts,
        single,
        multi,
        worst,
    }
}

/// Agreement of stepwise's verdicts with math-verify's, per corpus.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Agreement {
    /// Pairs compared (math-verify did not time out) and how many of them agree.
    pub counted: usize,
    pub agree: usize,
    pub timeouts: usize,
    /// Per corpus: (pairs, agree, math-verify equal, stepwise equal, math-verify timeouts).
    pub by_corpus: BTreeMap<&'static str, (usize, usize, usize, usize, usize)>,
    /// One line per disagreement, in corpus order.
    pub disagreements: Vec<String>,
}

fn agreement(pairs: &[Pair], ours: &[Verdict], theirs: &[MvResult], timeout_s: u32) -> Agreement {
    let timeout = timeout_s as f64 * 0.95;
    let mut a = Agreement::default();
    for (k, r) in theirs.iter().enumerate() {
        let (Some(p), Some(v)) = (pairs.get(r.i), ours.get(k)) else {
            continue;
        };
        let e = a.by_corpus.entry(p.corpus).or_default();
        e.0 += 1;
        if r.s >= timeout {
            a.timeouts += 1;
            e.4 += 1;
            continue;
        }
        a.counted += 1;
        let equal = *v == Verdict::Equal;
        e.2 += usize::from(r.eq);
        e.3 += usize::from(equal);
        if equal == r.eq {
            a.agree += 1;
            e.1 += 1;
        } else {
            a.disagreements.push(format!(
                "[{}] gold {:?} | pred {:?} | math-verify {} stepwise {:?}{}",
                p.corpus,
                p.gold,
                tail(&p.pred, 80),
                r.eq,
                v,
                if r.err { " (math-verify raised)" } else { "" }
            ));
        }
    }
    a
}

/// Pairs where the wheel's verdict (`True` = equal) differs from this binary's.
fn differing(ours: &[Verdict], wheel: &[bool]) -> usize {
    ours.iter()
        .zip(wheel)
        .filter(|(v, w)| (**v == Verdict::Equal) != **w)
        .count()
}

/// math-verify's side of the comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    pub version: String,
    /// Seconds of parse+verify calls over all pairs, per round.
    pub seconds: Vec<f64>,
    /// From the first round.
    pub agreement: Agreement,
    /// The reference venv's folder.
    pub venv: String,
    /// The `stepwise` wheel timed from Python, when the venv has it.
    pub python: Option<PythonRows>,
}

/// The `stepwise` wheel timed from Python in the math-verify driver's process, right after
/// its math-verify pass, on the same pairs.
#[derive(Debug, Clone, PartialEq)]
pub struct PythonRows {
    pub version: String,
    /// Threads of `verify_batch`.
    pub threads: usize,
    /// Seconds per pass over all pairs, per round: `stepwise.verify` once per pair, and
    /// one `stepwise.verify_batch` call.
    pub single: Vec<f64>,
    pub batch: Vec<f64>,
    /// Pairs (first round) where the wheel's verdict differs from this binary's: a wheel
    /// built from other sources shows here.
    pub differ: usize,
    /// Whether `verify_batch` returned the per-call verdicts in every round.
    pub batch_same: bool,
}

/// The comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub pairs: usize,
    pub threads: usize,
    pub rounds: usize,
    /// stepwise's seconds for all pairs per round, on one thread and on `threads`.
    pub single: Vec<f64>,
    pub multi: Vec<f64>,
    /// Slowest call on the corpus over all rounds, and on the adversarial inputs.
    pub worst_corpus: Duration,
    pub worst_hostile: (Duration, String),
    pub reference: Option<Reference>,
    pub timeout_s: u32,
    pub show_disagreements: usize,
}

impl Report {
    /// The Markdown section: pairs, the speed table, worst calls, agreement by corpus.
    pub fn to_markdown(&self) -> String {
        let n = self.pairs as f64;
        let mut md = format!(
            "Pairs: {} (MATH-500 answers vs boxed sentence, rewritten LaTeX, reference solution, shuffled answer; GSM8K model solutions vs gold).\n\n",
            self.pairs
        );
        if self.rounds > 1 {
            let _ = writeln!(
                md,
                "Rounds: {} (each round times stepwise, then math-verify); cells show the median and, in brackets, the range over the rounds; the ratio is of the medians.\n",
                self.rounds
            );
        }
        let mut t = Table::new(&[
            ("engine", Align::Left),
            ("threads", Align::Right),
            ("seconds", Align::Right),
            ("pairs/s", Align::Right),
            ("vs math-verify", Align::Right),
        ]);
        let rate = |v: &[f64]| v.iter().map(|s| n / s).collect::<Vec<_>>();
        let mv = self.reference.as_ref().map(|r| median(&r.seconds));
        if let Some(r) = &self.reference {
            t.row([
                format!("math-verify {} (parse+verify)", r.version),
                "1".into(),
                spread(&r.seconds, 2),
                spread(&rate(&r.seconds), 0),
                "1.0x".into(),
            ]);
        }
        let ratio = |v: &[f64]| mv.map_or_else(|| "-".into(), |m| format!("{:.0}x", m / median(v)));
        t.row([
            "stepwise".into(),
            "1".into(),
            spread(&self.single, 3),
            spread(&rate(&self.single), 0),
            ratio(&self.single),
        ]);
        t.row([
            "stepwise".into(),
            self.threads.to_string(),
            spread(&self.multi, 3),
            spread(&rate(&self.multi), 0),
            ratio(&self.multi),
        ]);
        let py = self.reference.as_ref().and_then(|r| r.python.as_ref());
        if let Some(p) = py {
            t.row([
                format!("stepwise {} from Python: `verify` per call", p.version),
                "1".into(),
                spread(&p.single, 3),
                spread(&rate(&p.single), 0),
                ratio(&p.single),
            ]);
            t.row([
                format!("stepwise {} from Python: `verify_batch`", p.version),
                p.threads.to_string(),
                spread(&p.batch, 3),
                spread(&rate(&p.batch), 0),
                ratio(&p.batch),
            ]);
        }
        md.push_str(&t.to_markdown());
        match (&self.reference, py) {
            (Some(r), Some(p)) => {
                let _ = writeln!(
                    md,
                    "\nPython rows: the `stepwise` wheel in `{}`, timed in the math-verify driver's process right after its pass (each pass over all pairs, repeated for at least 1 s); its verdicts differ from this binary's on {} pairs{}.",
                    r.venv,
                    p.differ,
                    if p.batch_same {
                        ""
                    } else {
                        "; `verify_batch` did NOT return the per-call verdicts"
                    }
                );
            }
            (Some(r), None) => {
                let _ = writeln!(
                    md,
                    "\nNo Python rows: `{}` has no `stepwise` wheel (`scripts/setup` installs it into `.venv`; run with `--venv .venv`).",
                    r.venv
                );
            }
            (None, _) => {}
        }
        let (hw, hw_input) = &self.worst_hostile;
        let _ = writeln!(
            md,
            "\nstepwise worst single call: {:.2} ms on the corpus, {:.2} ms on adversarial inputs (worst: `{}`…).",
            self.worst_corpus.as_secs_f64() * 1e3,
            hw.as_secs_f64() * 1e3,
            hw_input.replace('`', "'")
        );
        let Some(r) = &self.reference else {
            return md;
        };
        let a = &r.agreement;
        let _ = writeln!(
            md,
            "\nAgreement with math-verify on pairs where it did not time out: {}/{} = {:.2}% ({} timeouts at {} s).\n",
            a.agree,
            a.counted,
            100.0 * a.agree as f64 / a.counted.max(1) as f64,
            a.timeouts,
            self.timeout_s
        );
        let mut t = Table::new(&[
            ("corpus", Align::Left),
            ("pairs", Align::Right),
            ("agree", Align::Right),
            ("math-verify equal", Align::Right),
            ("stepwise equal", Align::Right),
            ("mv timeouts", Align::Right),
        ]);
        for (c, (n, agree, me, se, to)) in &a.by_corpus {
            t.row([
                c.to_string(),
                n.to_string(),
                agree.to_string(),
                me.to_string(),
                se.to_string(),
                to.to_string(),
            ]);
        }
        md.push_str(&t.to_markdown());
        if !a.disagreements.is_empty() && self.show_disagreements > 0 {
            let shown = a.disagreements.len().min(self.show_disagreements);
            let _ = writeln!(
                md,
                "\nDisagreements ({shown} of {}):\n",
                a.disagreements.len()
            );
            for d in a.disagreements.iter().take(shown) {
                let _ = writeln!(md, "- `{}`", d.replace('`', "'"));
            }
        }
        md
    }
}

/// Measures both verifiers over the corpus in `data_dir`, in alternating rounds.
pub fn measure(args: &Args, data_dir: &Path) -> Result<Report, BenchError> {
    let pairs = subset(corpus(data_dir)?, args.limit);
    if pairs.is_empty() {
        return Err(BenchError::Data {
            path: data_dir.display().to_string(),
            line: 0,
            msg: "no pairs".into(),
        });
    }
    let c = &args.common;
    let (rounds, threads) = (c.rounds_or(DEFAULT_ROUNDS), c.threads());
    eprintln!("{} pairs from {}", pairs.len(), data_dir.display());
    let env = if c.no_reference {
        None
    } else {
        let env = c.python_env(&[&format!(
            "math-verify[antlr4-13-2]=={}",
            args.math_verify_version
        )])?;
        let version = env.version_of("math-verify").ok_or_else(|| {
            BenchError::Tool(format!(
                "math-verify is not importable in {} after installing it",
                env.dir().display()
            ))
        })?;
        Some((env, version))
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| BenchError::Tool(format!("starting {threads} verifier threads: {e}")))?;
    let o = Options::default();
    let mut ours: Vec<OursRound> = Vec::new();
    let mut theirs: Vec<(f64, Vec<MvResult>, Option<PyRound>)> = Vec::new();
    // The Python rows need the wheel in the reference venv.
    let wheel = env.as_ref().and_then(|(env, _)| env.version_of("stepwise"));
    let python_threads = wheel.as_ref().map(|_| threads);
    alternate(
        rounds,
        |_| {
            ours.push(time_stepwise(&pairs, &pool, &o));
            Ok(())
        },
        |round| {
            let Some((env, version)) = &env else {
                return Ok(());
            };
            eprintln!(
                "round {round}: math-verify {version} on {} pairs (single thread)…",
                pairs.len()
            );
            let (res, py) = run_math_verify(env.python(), &pairs, args.timeout_s, python_threads)?;
            theirs.push((res.iter().map(|x| x.s).sum(), res, py));
            Ok::<(), BenchError>(())
        },
    )?;
    let reference = match (&env, theirs.first(), ours.first()) {
        (Some((env, version)), Some((_, first, first_py)), Some(our_first)) => Some(Reference {
            version: version.clone(),
            seconds: theirs.iter().map(|(s, _, _)| *s).collect(),
            agreement: agreement(&pairs, &our_first.verdicts, first, args.timeout_s),
            venv: env.dir().display().to_string(),
            python: match (&wheel, first_py) {
                (Some(v), Some(fp)) => {
                    let rounds: Vec<&PyRound> =
                        theirs.iter().filter_map(|t| t.2.as_ref()).collect();
                    Some(PythonRows {
                        version: v.clone(),
                        threads,
                        single: rounds.iter().map(|r| r.single).collect(),
                        batch: rounds.iter().map(|r| r.batch).collect(),
                        differ: differing(&our_first.verdicts, &fp.eq),
                        batch_same: rounds.iter().all(|r| r.batch_same),
                    })
                }
                _ => None,
            },
        }),
        _ => None,
    };
    Ok(Report {
        pairs: pairs.len(),
        threads,
        rounds,
        single: ours.iter().map(|r| r.single).collect(),
        multi: ours.iter().map(|r| r.multi).collect(),
        worst_corpus: ours.iter().map(|r| r.worst).max().unwrap_or_default(),
        worst_hostile: hostile_worst(&o),
        reference,
        timeout_s: args.timeout_s,
        show_disagreements: args.show_disagreements,
    })
}

/// `stepwise bench verify`: measures, prints the Markdown section and writes it to `--out`.
pub fn run(args: &Args, data_dir: &Path) -> Result<(), BenchError> {
    let report = measure(args, data_dir)?;
    publish(&report.to_markdown(), args.common.out.as_deref())
}

/// The last `n` characters of `s`, marked with `…` when cut.
fn tail(s: &str, n: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= n {
        return s.to_string();
    }
    let t: String = chars[chars.len() - n..].iter().collect();
    format!("…{t}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data_dir() -> std::path::PathBuf {
        stepwise_data::resolve_data_dir(None)
            .unwrap_or_else(|looked| panic!("shared data folder not found; looked at {looked:?}"))
    }

    #[test]
    fn the_corpus_covers_math500_and_gsm8k_and_subsets_keep_every_corpus() {
        let dir = data_dir();
        let pairs = corpus(&dir).unwrap();
        assert_eq!(pairs.len(), 7276);
        let small = subset(pairs.clone(), 40);
        assert_eq!(small.len(), 40);
        let kinds: std::collections::BTreeSet<_> = small.iter().map(|p| p.corpus).collect();
        assert_eq!(kinds.len(), 5, "{kinds:?}");
        assert_eq!(subset(pairs.clone(), 0).len(), pairs.len());
        // every boxed MATH-500 sentence is equal to its gold answer for stepwise
        let o = Options::default();
        for p in pairs
            .iter()
            .filter(|p| p.corpus == "math500-boxed")
            .take(50)
        {
            assert_eq!(verify(&p.gold, &p.pred, &o), Verdict::Equal, "{p:?}");
        }
    }

    #[test]
    fn shares_are_proportional_with_a_minimum_of_one() {
        assert_eq!(shares(&[5276, 500, 500, 500, 500], 40), [29, 3, 3, 3, 2]);
        assert_eq!(shares(&[100, 1], 10).iter().sum::<usize>(), 10);
        assert_eq!(shares(&[100, 1], 10)[1], 1);
        assert_eq!(shares(&[3, 3, 3], 2), [1, 1, 0]);
        assert_eq!(shares(&[2, 2], 10), [2, 2]);
        for limit in 1..60 {
            assert_eq!(shares(&[50, 7, 3, 1], limit).iter().sum::<usize>(), limit);
        }
    }

    #[test]
    fn rewrites_keep_the_value_and_change_the_text() {
        assert_eq!(rewrite("\\dfrac{1}{2}"), "\\frac{1}{2}");
        assert_eq!(rewrite("\\frac{1}{2}"), "\\dfrac{1}{2}");
        assert_eq!(rewrite("7"), " 7 ");
        assert_eq!(tail("abcdef", 3), "…def");
        assert_eq!(tail("abc", 3), "abc");
    }

    fn mv(i: usize, eq: bool, s: f64) -> MvResult {
        MvResult {
            i,
            eq,
            s,
            err: false,
        }
    }

    #[test]
    fn agreement_skips_timeouts_and_lists_disagreements() {
        let p = |corpus, gold: &str, pred: &str| Pair {
            corpus,
            gold: gold.into(),
            pred: pred.into(),
        };
        let pairs = vec![
            p("a", "1", "1"),
            p("a", "1", "2"),
            p("b", "x", "x"),
            p("b", "y", "y"),
        ];
        let ours = [
            Verdict::Equal,
            Verdict::NotEqual,
            Verdict::Equal,
            Verdict::Equal,
        ];
        let theirs = [
            mv(0, true, 0.1),
            mv(1, true, 0.1),
            mv(2, true, 0.1),
            mv(3, false, 4.9),
        ];
        let a = agreement(&pairs, &ours, &theirs, 5);
        assert_eq!((a.counted, a.agree, a.timeouts), (3, 2, 1));
        assert_eq!(a.by_corpus["a"], (2, 1, 2, 1, 0));
        assert_eq!(a.by_corpus["b"], (2, 1, 1, 1, 1));
        assert_eq!(a.disagreements.len(), 1);
        assert!(
            a.disagreements[0].starts_with("[a] gold \"1\""),
            "{:?}",
            a.disagreements
        );
    }

    fn report(rounds: usize, reference: Option<Reference>) -> Report {
        Report {
            pairs: 100,
            threads: 2,
            rounds,
            single: vec![0.01; rounds],
            multi: vec![0.005; rounds],
            worst_corpus: Duration::from_micros(670),
            worst_hostile: (Duration::from_micros(1120), "$$$`$".into()),
            reference,
            timeout_s: 5,
            show_disagreements: 1,
        }
    }

    #[test]
    fn one_round_reads_like_the_published_table() {
        let md = report(1, None).to_markdown();
        assert!(md.starts_with("Pairs: 100 (MATH-500"), "{md}");
        assert!(!md.contains("Rounds:"), "{md}");
        assert!(md.contains("| stepwise | 1 | 0.010 | 10000 | - |"), "{md}");
        assert!(md.contains("| stepwise | 2 | 0.005 | 20000 | - |"), "{md}");
        assert!(
            md.contains("1.12 ms on adversarial inputs (worst: `$$$'$`…)"),
            "{md}"
        );
        assert!(!md.contains("Agreement"), "{md}");
    }

    #[test]
    fn rounds_show_medians_ranges_and_the_ratio_of_medians() {
        let agreement = Agreement {
            counted: 2,
            agree: 1,
            timeouts: 0,
            by_corpus: [("a", (2, 1, 2, 1, 0))].into_iter().collect(),
            disagreements: vec!["[a] first".into(), "[a] second".into()],
        };
        let reference = Reference {
            version: "0.9.0".into(),
            seconds: vec![1.0, 3.0, 2.0],
            agreement,
            venv: "/v".into(),
            python: None,
        };
        let md = report(3, Some(reference)).to_markdown();
        assert!(md.contains("Rounds: 3"), "{md}");
        assert!(
            md.contains(
                "| math-verify 0.9.0 (parse+verify) | 1 | 2.00 (1.00–3.00) | 50 (33–100) | 1.0x |"
            ),
            "{md}"
        );
        // 2.0 s median against 0.01 s
        assert!(
            md.contains("| stepwise | 1 | 0.010 (0.010–0.010) | 10000 (10000–10000) | 200x |"),
            "{md}"
        );
        assert!(md.contains("1/2 = 50.00% (0 timeouts at 5 s)"), "{md}");
        assert!(md.contains("| a | 2 | 1 | 2 | 1 | 0 |"), "{md}");
        assert!(
            md.contains("Disagreements (1 of 2):\n\n- `[a] first`\n"),
            "{md}"
        );
        assert!(!md.contains("[a] second"), "{md}");
        assert!(
            md.contains("No Python rows: `/v` has no `stepwise` wheel"),
            "{md}"
        );
    }

    #[test]
    fn python_rows_are_timed_against_the_same_math_verify_median() {
        let reference = Reference {
            version: "0.9.0".into(),
            seconds: vec![2.0, 2.0],
            agreement: Agreement::default(),
            venv: ".venv".into(),
            python: Some(PythonRows {
                version: "0.1.0".into(),
                threads: 2,
                single: vec![0.02, 0.02],
                batch: vec![0.004, 0.004],
                differ: 0,
                batch_same: true,
            }),
        };
        let md = report(2, Some(reference)).to_markdown();
        // 2.0 s of math-verify against 0.02 s and 0.004 s
        assert!(
            md.contains("| stepwise 0.1.0 from Python: `verify` per call | 1 | 0.020 (0.020–0.020) | 5000 (5000–5000) | 100x |"),
            "{md}"
        );
        assert!(
            md.contains("| stepwise 0.1.0 from Python: `verify_batch` | 2 | 0.004 (0.004–0.004) | 25000 (25000–25000) | 500x |"),
            "{md}"
        );
        assert!(md.contains("differ from this binary's on 0 pairs."), "{md}");
        assert_eq!(
            differing(
                &[Verdict::Equal, Verdict::NotEqual, Verdict::Undecided],
                &[true, true, false]
            ),
            1
        );
    }
}
