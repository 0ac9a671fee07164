//! The task verifiers read model text: Knights-and-Knaves answers (and golds) and
//! masked-span answers never panic, and a Knights-and-Knaves score is 0 or 1.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let names = ["Zoey", "Oliver", "Mia", "Ethan"];
    let _ = stepwise_tasks::knights::parse_answer(text, &names);
    let _ = stepwise_tasks::knights::parse_gold(text);
    if let Some(s) = stepwise_tasks::knights::score(text, "Zoey is a knight, Oliver is a knave") {
        assert!(s == 0.0 || s == 1.0);
    }
    let m = stepwise_tasks::masked::reward(text, "Eiffel Tower");
    assert!(!m.exact || m.normalized);
});
