//! The pairs of `stepwise bench verify` (MATH-500 answers against a boxed sentence, a
//! rewritten form, the reference solution and another problem's answer; GSM8K model
//! solutions against their gold), verified single-threaded, for profiling the verifier:
//! `valgrind --tool=callgrind target/debug/examples/pairs ../shared/data 1 [batch]`.
//! Prints the pair count, how many are equal and the pairs per second over ROUNDS passes,
//! one `verify` call per pair, or one `verify_batch` call per pass with `batch` (each
//! distinct gold read once; on the rayon pool, set `RAYON_NUM_THREADS=1` for one thread).
//! With `jsonl` it prints the pairs instead (`{"gold", "pred"}` lines, the input of
//! `crates/bench/assets/math_verify_driver.py`).
//! (The side-by-side comparison with math-verify is `stepwise bench verify`.)
use std::time::Instant;
use stepwise_core::AnswerExtractor;
use stepwise_verify::{Options, verify, verify_batch};

fn rows(path: &str) -> Vec<serde_json::Value> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("cannot read {path}: {e}");
            std::process::exit(1);
        }
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| match serde_json::from_str(l) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("{path}:{}: {e}", i + 1);
                std::process::exit(1);
            }
        })
        .collect()
}

/// The bench's LaTeX spelling variants (`crates/bench/src/verify.rs`, `rewrite`).
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

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args.next().unwrap_or_else(|| "../shared/data".to_string());
    let rounds: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(1);
    let mode = args.next().unwrap_or_default();
    let batch = mode == "batch";
    let math = rows(&format!("{dir}/math500/test.jsonl"));
    let answers: Vec<String> = math
        .iter()
        .map(|r| r["answer"].as_str().unwrap_or_default().to_string())
        .collect();
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (i, r) in math.iter().enumerate() {
        let a = &answers[i];
        let gold = format!("${a}$");
        let sol = r["solution"].as_str().unwrap_or_default();
        pairs.push((
            gold.clone(),
            format!("The final answer is $\\boxed{{{a}}}$."),
        ));
        pairs.push((gold.clone(), format!("${}$", rewrite(a))));
        pairs.push((gold.clone(), sol.to_string()));
        let j = (7 * i + 13) % answers.len();
        let other = &answers[if j == i { (j + 1) % answers.len() } else { j }];
        pairs.push((gold, format!("$\\boxed{{{other}}}$")));
    }
    let ex = AnswerExtractor::default();
    for r in rows(&format!(
        "{dir}/gsm8k_model_solutions/example_model_solutions.jsonl"
    )) {
        let Some(gold) = r["ground_truth"].as_str().and_then(|g| ex.extract(g)) else {
            continue;
        };
        for model in [
            "6b_finetuning",
            "6b_verification",
            "175b_finetuning",
            "175b_verification",
        ] {
            if let Some(s) = r[model]["solution"].as_str() {
                pairs.push((gold.text.clone(), s.to_string()));
            }
        }
    }
    if mode == "jsonl" {
        for (g, p) in &pairs {
            println!("{}", serde_json::json!({ "gold": g, "pred": p }));
        }
        return;
    }
    let o = Options::default();
    let t = Instant::now();
    let mut eq = 0;
    for _ in 0..rounds {
        eq = if batch {
            verify_batch(&pairs, &o)
                .into_iter()
                .filter(|v| v.is_equal())
                .count()
        } else {
            pairs
                .iter()
                .filter(|(g, p)| verify(g, p, &o).is_equal())
                .count()
        };
    }
    let el = t.elapsed().as_secs_f64();
    println!(
        "{} pairs, {eq} equal, {:.0} pairs/s ({})",
        pairs.len(),
        (pairs.len() * rounds) as f64 / el,
        if batch {
            "verify_batch"
        } else {
            "verify per pair, one thread"
        }
    );
}
