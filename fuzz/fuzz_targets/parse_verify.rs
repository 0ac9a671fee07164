//! Feeds arbitrary text to the parser, the verifier and the exact evaluator.
//! The input is split at the first NUL byte into a gold and a predicted answer.
//! `verify_text` is left out: it wraps stepwise-core's extractor, which this fuzzer found
//! panicking on whitespace-only spans (fixed in core 0db8d9d); libFuzzer's panic hook aborts
//! even on a caught panic, so core's extractor is better fuzzed in its own target.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stepwise_verify::{Options, exact_value, parse, verify};

fuzz_target!(|data: &[u8]| {
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
    };
    let _ = verify(pred, gold, &lenient);
});
