//! Feeds arbitrary text to the parser, the verifier and the exact evaluator, and checks
//! one oracle: a wrong answer stays wrong however it is wrapped (issue #14).
//!
//! The input is split at the first NUL byte into a gold and a predicted answer, which
//! only must not crash or hang. The oracle reads the same bytes as a recipe: a gold and a
//! wrong answer of different values, then wraps that keep the wrong answer's value or
//! make it unreadable (parentheses, `\left(\right)`, braces, `\boxed{}`, `+0`, `*1`,
//! `+0*(gold)`, nesting past the depth cap, spacing, units, prose of letters); `verify`
//! and `verify_text` must never say `Equal`.
//! `verify_text` is left out of the free-text part: it wraps stepwise-core's extractor,
//! which this fuzzer found panicking on whitespace-only spans (fixed in core 0db8d9d);
//! libFuzzer's panic hook aborts even on a caught panic, so core's extractor is better
//! fuzzed in its own target. The oracle's inputs are built, not arbitrary.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stepwise_verify::{Options, Verdict, exact_value, limits, parse, verify, verify_text};

/// A rational written in one of several notations.
fn write(n: i64, d: i64, form: u8) -> String {
    match form % 5 {
        0 if d == 1 => n.to_string(),
        0 | 1 => format!("\\frac{{{n}}}{{{d}}}"),
        2 => format!("{n}/{d}"),
        3 if n < 0 => format!("-\\dfrac{{{}}}{{{d}}}", -n),
        _ => format!("\\frac{{{n}}}{{{d}}}"),
    }
}

/// One value-keeping (or unreadable) wrap of `s`, chosen by `op`; `arg` sizes it.
fn wrap(s: &str, op: u8, arg: u8, gold: &str) -> String {
    let n = usize::from(arg % 6) + 1;
    let deep = limits::MAX_DEPTH + usize::from(arg % 64);
    match op % 16 {
        0 => "(".repeat(n) + s + &")".repeat(n),
        1 => "\\left(".repeat(n) + s + &"\\right)".repeat(n),
        2 => "{".repeat(n) + s + &"}".repeat(n),
        3 => format!("\\boxed{{{s}}}"),
        4 => format!("{s}+0"),
        5 => format!("({s})*1"),
        6 => format!("({s})+0*({gold})"),
        7 => format!("0\\cdot {gold} + ({s})"),
        8 => "(".repeat(deep) + s + &")".repeat(deep),
        9 => "(".repeat(deep) + s + &")".repeat(deep) + &format!("+0*({gold})"),
        10 => format!("{0}{s}{0}", " ".repeat(n)),
        11 => format!("\\frac{{{s}}}{{1}}"),
        12 => format!("-(-({s}))"),
        13 => format!("\\displaystyle {s}"),
        14 => format!("\\left[{s}\\right]"),
        _ => format!("({s})^{{1}}"),
    }
}

/// Letters and spaces only (no digits, signs or LaTeX): prose that cannot state a number.
fn letters(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| match b % 28 {
            26 | 27 => ' ',
            k => char::from(b'a' + k),
        })
        .collect()
}

/// The last step: how the wrapped formula is presented.
fn present(s: &str, how: u8, prose: &str) -> String {
    match how % 8 {
        0 => s.to_string(),
        1 => format!("${s}$"),
        2 => format!("\\boxed{{{s}}}"),
        3 => format!("{s} \\text{{ apples}}"),
        4 => format!("so the answer is ${s}$."),
        5 => format!("The final answer is $\\boxed{{{s}}}$. {prose}"),
        6 => format!("we know that {prose} and so $${s}$$"),
        _ => format!("Therefore the total is {s}."),
    }
}

/// The oracle: builds (gold, wrapped wrong answer) from `data` and checks it is not Equal.
fn wrong_stays_wrong(data: &[u8]) {
    let [g0, g1, gd, w0, w1, wd, gf, wf, how, rest @ ..] = data else {
        return;
    };
    let (gn, gd) = (
        i64::from(i16::from_le_bytes([*g0, *g1])),
        i64::from(gd % 16) + 1,
    );
    let (wn, wd) = (
        i64::from(i16::from_le_bytes([*w0, *w1])),
        i64::from(wd % 16) + 1,
    );
    if gn * wd == wn * gd {
        return;
    }
    let gold = write(gn, gd, *gf);
    let mut pred = write(wn, wd, *wf);
    let (ops, prose) = rest.split_at(rest.len().min(16));
    for pair in ops.chunks(2) {
        let arg = pair.get(1).copied().unwrap_or(0);
        pred = wrap(&pred, pair[0], arg, &gold);
    }
    let prose = letters(&prose[..prose.len().min(64)]);
    let pred = present(&pred, *how, &prose);
    let o = Options::default();
    let v = verify(&gold, &pred, &o);
    assert_ne!(v, Verdict::Equal, "gold {gold:?} pred {pred:?}");
    let v = verify_text(&gold, &pred, &o);
    assert_ne!(
        v,
        Verdict::Equal,
        "verify_text: gold {gold:?} pred {pred:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    wrong_stays_wrong(data);
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let (gold, pred) = s.split_once('\0').unwrap_or((s, s));
    let _ = parse(gold);
    let _ = exact_value(gold);
    let o = Options::default();
    let _ = verify(gold, pred, &o);
    let lenient = Options {
        strict: false,
        allow_set_relation_comp: true,
        float_rounding: 2,
        ..Options::default()
    };
    let _ = verify(pred, gold, &lenient);
});
