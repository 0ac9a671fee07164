//! Property tests: step splitting round-trips, extraction never panics and returns its own span.

use proptest::prelude::*;
use stepwise_core::{AnswerExtractor, Delimiter, Rationale, StepSplitter};

/// A trimmed, non-empty step text without blank lines.
fn step_text() -> impl Strategy<Value = String> {
    proptest::collection::vec("[a-zA-Z0-9=+*/ .,()$\\\\{}-]{1,20}", 1..4)
        .prop_map(|lines| {
            lines
                .iter()
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .prop_filter("non-empty", |s| !s.is_empty())
}

fn single_line() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9=+*/.,()$-][a-zA-Z0-9=+*/ .,()$-]{0,30}"
        .prop_map(|s| s.trim().to_string())
        .prop_filter("non-empty", |s| !s.is_empty())
}

proptest! {
    #[test]
    fn count_equals_the_number_of_split_steps(
        text in r"([a-c \t]|\n|\r|Step 1:|\*\*Step 2\*\*|<s>){0,40}",
    ) {
        for d in [
            Delimiter::BlankLine,
            Delimiter::Line,
            Delimiter::StepLabel,
            Delimiter::Custom("<s>".into()),
        ] {
            let s = StepSplitter::new(d.clone());
            prop_assert_eq!(s.count(&text), s.split(&text).len(), "{:?} {:?}", d, text);
        }
    }

    #[test]
    fn blank_line_split_join_round_trips(steps in proptest::collection::vec(step_text(), 0..8)) {
        let s = StepSplitter::default();
        let text = s.join_texts(&steps);
        let back = s.split(&text);
        prop_assert_eq!(back.iter().map(|x| x.text.clone()).collect::<Vec<_>>(), steps.clone());
        prop_assert!(back.iter().enumerate().all(|(i, st)| st.index == i));
        prop_assert_eq!(s.join(&back), text);
    }

    #[test]
    fn line_split_join_round_trips(steps in proptest::collection::vec(single_line(), 0..8)) {
        let s = StepSplitter::new(Delimiter::Line);
        let text = s.join_texts(&steps);
        let back: Vec<String> = s.split(&text).into_iter().map(|x| x.text).collect();
        prop_assert_eq!(back, steps);
    }

    #[test]
    fn step_label_split_join_round_trips(bodies in proptest::collection::vec(step_text(), 1..8)) {
        let steps: Vec<String> = bodies
            .iter()
            .enumerate()
            .map(|(i, b)| format!("Step {}: {}", i + 1, b))
            .collect();
        let s = StepSplitter::new(Delimiter::StepLabel);
        let text = s.join_texts(&steps);
        let back: Vec<String> = s.split(&text).into_iter().map(|x| x.text).collect();
        prop_assert_eq!(back, steps);
    }

    #[test]
    fn custom_split_join_round_trips(steps in proptest::collection::vec(step_text(), 0..8)) {
        let s = StepSplitter::new(Delimiter::Custom(" ки\n".into()));
        let text = s.join_texts(&steps);
        let back: Vec<String> = s.split(&text).into_iter().map(|x| x.text).collect();
        prop_assert_eq!(back, steps);
    }

    #[test]
    fn split_is_idempotent_on_arbitrary_text(text in "(?s).{0,300}") {
        for d in [Delimiter::BlankLine, Delimiter::Line, Delimiter::StepLabel] {
            let s = StepSplitter::new(d);
            let once = s.split(&text);
            let twice = s.split(&s.join(&once));
            prop_assert_eq!(once, twice);
        }
    }

    #[test]
    fn extraction_span_is_the_text(text in "(?s).{0,300}") {
        if let Some(e) = AnswerExtractor::default().extract(&text) {
            prop_assert_eq!(&text[e.span.clone()], e.text.as_str());
            prop_assert!(!e.text.is_empty());
        }
    }

    #[test]
    fn boxed_answer_is_found_anywhere(prefix in "[a-z .,]{0,40}", n in -10_000i64..10_000, suffix in "[a-z .,]{0,40}") {
        let text = format!("{prefix} so \\boxed{{{n}}} {suffix}");
        let r = Rationale::parse(&text, &StepSplitter::default(), &AnswerExtractor::default());
        prop_assert_eq!(r.answer, Some(n.to_string()));
    }
}
