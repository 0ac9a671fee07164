//! Adversarial inputs return a verdict quickly and never panic.
//!
//! Each hostile input must return within 50 ms (issue #3) in every build profile.

use std::time::{Duration, Instant};
use stepwise_verify::{Options, exact_value, parse, verify, verify_text};

fn hostile() -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = vec![
        ("5^5^5^5".into(), "5^{5^{5^{5}}}".into()),
        ("2^{2^{2^{2^{2^{2^{2}}}}}}".into(), "1".into()),
        ("9^{9^{9^{9}}}".into(), "9^{9^{9^{9}}} + 1".into()),
        ("10^{100000000}".into(), "10^{100000001}/10".into()),
        ("1000000!".into(), "1000001!/1000001".into()),
        ("(10^{1000})!".into(), "2".into()),
        ("\\binom{10^{9}}{5 \\cdot 10^{8}}".into(), "1".into()),
        ("x^{1000000}".into(), "(x^{1000})^{1000}".into()),
        ("(x+1)^{100000}".into(), "(1+x)^{100000}".into()),
        (
            "(a+b+c+d+e+f+g+h)^{64}".into(),
            "(h+g+f+e+d+c+b+a)^{64}".into(),
        ),
        ("\\sqrt[1000000]{2}".into(), "2^{1/1000000}".into()),
        ("e^{e^{e^{e^{e^{e}}}}}".into(), "\\pi".into()),
        ("\\sin(10^{300})".into(), "\\cos(10^{300})".into()),
        ("0.".to_string() + &"3".repeat(5000), "\\frac13".into()),
    ];
    v.push(("{".repeat(100_000) + "1" + &"}".repeat(100_000), "1".into()));
    v.push(("(".repeat(100_000) + "1" + &")".repeat(100_000), "1".into()));
    v.push(("\\frac{".repeat(50_000) + "1", "1".into()));
    v.push((
        "\\sqrt{".repeat(50_000) + "2" + &"}".repeat(50_000),
        "2".into(),
    ));
    v.push(("1+".repeat(500_000) + "1", "500001".into()));
    v.push(("x".repeat(1_000_000), "x".into()));
    v.push(("9".repeat(1_000_000), "9".into()));
    v.push(("\\boxed{".repeat(100_000), "1".into()));
    v.push(("$".repeat(1_000_000), "$1$".into()));
    v.push(("\\(".repeat(500_000), "1".into()));
    v.push((
        "\\{1,".repeat(20_000) + &"\\}".repeat(20_000),
        "\\{1\\}".into(),
    ));
    let set: Vec<String> = (0..2000).map(|i| i.to_string()).collect();
    v.push((
        format!("\\{{{}\\}}", set.join(",")),
        format!(
            "\\{{{}\\}}",
            set.iter().rev().cloned().collect::<Vec<_>>().join(",")
        ),
    ));
    // Radicals: many large semiprime radicands (factoring work), conjugate blow-up.
    let semis: Vec<String> = (0..800)
        .map(|i| format!("\\sqrt{{{}}}", (16_777_213u64 - 2 * i) * 16_777_199))
        .collect();
    v.push((semis.join("+"), semis.join("\\cdot")));
    v.push((
        "(\\sqrt2+\\sqrt3+\\sqrt5+\\sqrt7+\\sqrt{11}+\\sqrt{13})^{64}".into(),
        "\\frac{1}{\\sqrt2+\\sqrt3+\\sqrt5+\\sqrt7+\\sqrt{11}+\\sqrt{13}}".into(),
    ));
    v.push((
        "\\frac{1}{\\sqrt{2}+\\sqrt{3}+\\sqrt{5}+\\sqrt{7}}".into(),
        "\\frac{1}{\\sqrt{6}+\\sqrt{10}+\\sqrt{14}+\\sqrt{35}+\\sqrt{15}}".into(),
    ));
    v.push((
        "\\sqrt[64]{2}".repeat(200),
        "\\frac{1}{\\sqrt[63]{3}+\\sqrt[64]{5}}".into(),
    ));
    // Found by the fuzzer (2 s timeout under ASan): sums of ~13k-bit fractions.
    v.push((
        "45.90!\u{12}".into(),
        "\".-\u{4}1^\0\0\0.8.51588^858\u{4}51\0\0\"-\u{4}1^.8.3\u{5}%%%\u{7f}5158@^858 1\0".into(),
    ));
    v.push(("45.958.51588^858\u{4}51".into(), "1".into()));
    // Found by the fuzzer: eight `±` variants of a 9-variable rational function,
    // compared pairwise (polynomial work is charged to the same budget).
    v.push((
        " \\psq\\pm 2sf\u{1}".into(),
        "-2e55#\n\u{1e}\0\0\0\0\0\0\0\0\0\0%%%%%1 \\psq\\pm 2sf\u{1}\0-A2e55#\u{1e}\0\0\0\0\0\0\0\0\0\0%%%%%%%.%%1 \\pm sq\\p2sq\\pm 2s \0\0\0qm5\0\0\0r:t{2-1r".into(),
    ));
    // Exact arithmetic on huge fractions, many times over (work budget).
    v.push((
        "(0.51588)^{858}".to_string() + &"+1".repeat(2000),
        "(0.51588)^{858}".to_string() + &"\\cdot 3".repeat(1000),
    ));
    v.push((
        "(\\frac{12897}{25000})^{858}+".repeat(400) + "1",
        "\\sqrt{(\\frac{12897}{25000})^{858}}+".repeat(300) + "1",
    ));
    // Inequalities: many kinks, deep nesting of absolute values.
    let kinks: Vec<String> = (0..200).map(|i| format!("|x-{i}|")).collect();
    v.push((kinks.join("+") + " < 5", "(-1, 1)".into()));
    v.push((
        "|".repeat(2000) + "x" + &"|".repeat(2000) + " > 1",
        "x > 1".into(),
    ));
    v.push(("a".repeat(10) + &"\u{1F600}".repeat(100_000), "é".into()));
    v
}

/// Every entry point on one hostile pair, both ways round.
fn run_all(g: &str, p: &str, o: &Options) {
    let _ = verify(g, p, o);
    let _ = verify(p, g, o);
    let _ = verify_text(p, g, o);
    let _ = parse(g);
    let _ = exact_value(g);
}

#[test]
fn hostile_inputs_return_quickly() {
    // The bound, in every build: the root Cargo.toml optimizes this crate in
    // dev/test builds too. Each input is timed as the best of up to three runs (a rerun
    // only when over the limit), so a busy machine does not make the test flaky.
    let limit = Duration::from_millis(50);
    let o = Options::default();
    let mut slow = Vec::new();
    let mut slowest = (Duration::ZERO, String::new());
    let started = Instant::now();
    for (g, p) in hostile() {
        let mut best = Duration::MAX;
        for _ in 0..3 {
            let t = Instant::now();
            run_all(&g, &p, &o);
            best = best.min(t.elapsed());
            if best <= limit {
                break;
            }
        }
        let name = format!("{:?}", g.chars().take(40).collect::<String>());
        if best > slowest.0 {
            slowest = (best, name.clone());
        }
        if best > limit {
            slow.push(format!("{name}… took {best:?}"));
        }
    }
    println!(
        "slowest hostile input: {}… {:?} (all {} inputs in {:?})",
        slowest.1,
        slowest.0,
        hostile().len(),
        started.elapsed()
    );
    assert!(
        slow.is_empty(),
        "inputs over {limit:?} (best of 3):\n{}",
        slow.join("\n")
    );
}

#[test]
fn power_towers_are_not_equal_to_small_numbers() {
    let o = Options::default();
    assert!(!verify("5^5^5^5", "1", &o).is_equal());
    assert!(!verify("9^{9^{9^{9}}}", "0", &o).is_equal());
    assert!(exact_value("5^5^5^5").is_none());
}
