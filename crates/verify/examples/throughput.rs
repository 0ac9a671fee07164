//! Quick single-thread throughput on the MATH-500 answers against their solutions:
//! `cargo run --release -p stepwise-verify --example throughput [DATA_DIR]`.
//! (The side-by-side comparison with math-verify is `stepwise bench verify`.)
use std::time::Instant;
use stepwise_verify::{Options, verify};

fn main() {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "../shared/data".to_string());
    let path = format!("{dir}/math500/test.jsonl");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("cannot read {path}: {e}");
            std::process::exit(1);
        }
    };
    let mut pairs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let v: serde_json::Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("{path}:{}: {e}", i + 1);
                std::process::exit(1);
            }
        };
        let a = v["answer"].as_str().unwrap_or_default().to_string();
        let s = v["solution"].as_str().unwrap_or_default().to_string();
        pairs.push((a.clone(), format!("The final answer is $\\boxed{{{a}}}$.")));
        pairs.push((a, s));
    }
    let o = Options::default();
    let t = Instant::now();
    let mut worst = 0f64;
    let mut eq = 0;
    for (g, p) in &pairs {
        let t1 = Instant::now();
        if verify(g, p, &o).is_equal() {
            eq += 1;
        }
        worst = worst.max(t1.elapsed().as_secs_f64());
    }
    let el = t.elapsed().as_secs_f64();
    println!(
        "{} pairs, {eq} equal, {:.0} pairs/s single thread, worst {:.3} ms",
        pairs.len(),
        pairs.len() as f64 / el,
        worst * 1e3
    );
}
