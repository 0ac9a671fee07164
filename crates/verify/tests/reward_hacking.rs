//! Issue #14, defect 1: reward hacking through the verifier. An answer whose value
//! differs from the gold is never `Equal`, however it is wrapped, nested or padded; an
//! answer the parser could not read to its end is `Undecided`, never judged on a
//! fragment of it (the last number, a later candidate).

use proptest::prelude::*;
use stepwise_verify::{Options, Source, Verdict, explain, limits, verify, verify_text};

fn o() -> Options {
    Options::default()
}

/// `(((…3…)))+0*(5)` nested `n` deep: its value is 3.
fn depth_bomb(n: usize) -> String {
    "(".repeat(n) + "3" + &")".repeat(n) + "+0*(5)"
}

/// The continued fraction 1 + 1/(1 + 1/(…)) of `depth` levels (about 1.618).
fn continued_fraction(depth: usize) -> String {
    let mut cf = String::from("1");
    for _ in 0..depth {
        cf = format!("1+\\frac{{1}}{{{cf}}}");
    }
    cf
}

/// An n×n matrix of ones.
fn ones(n: usize) -> String {
    let row = vec!["1"; n].join(" & ");
    format!(
        "\\begin{{pmatrix}}{}\\end{{pmatrix}}",
        vec![row; n].join(" \\\\ ")
    )
}

#[test]
fn depth_bomb_is_undecided_not_its_last_number() {
    let bomb = depth_bomb(200);
    let ex = explain("5", &bomb, &o());
    assert_eq!(ex.verdict, Verdict::Undecided, "{:?}", ex.pred);
    assert_ne!(ex.pred.source, Source::LastNumber);
    assert!(ex.pred.error.is_some());
    // Inside a box, inside text, through verify_text: the same.
    for pred in [
        format!("\\boxed{{{bomb}}}"),
        format!("$\\boxed{{{bomb}}}$"),
        format!("The answer is $\\boxed{{{bomb}}}$."),
        format!("$${bomb}$$"),
    ] {
        assert_eq!(verify("5", &pred, &o()), Verdict::Undecided, "{pred:.40}");
        assert_ne!(verify_text("5", &pred, &o()), Verdict::Equal, "{pred:.40}");
    }
    assert_ne!(verify_text("5", &bomb, &o()), Verdict::Equal);
    // Within the depth cap the same formula is read whole: 3, not 5.
    assert_eq!(verify("5", &depth_bomb(10), &o()), Verdict::NotEqual);
    assert_eq!(verify("3", &depth_bomb(10), &o()), Verdict::Equal);
}

#[test]
fn deep_continued_fractions_are_never_one() {
    for depth in [5, 10, 30, 40, 60] {
        let cf = continued_fraction(depth);
        assert_ne!(verify("1", &cf, &o()), Verdict::Equal, "depth {depth}");
        assert_ne!(
            verify("1", &format!("\\boxed{{{cf}}}"), &o()),
            Verdict::Equal
        );
    }
    // Shallow enough to parse, it is its exact value: F(n+2)/F(n+1).
    assert_eq!(
        verify("\\frac{8}{5}", &continued_fraction(4), &o()),
        Verdict::Equal
    );
}

#[test]
fn a_huge_matrix_of_ones_is_not_one() {
    for n in [2, 30, 300] {
        let m = ones(n);
        assert_ne!(verify("1", &m, &o()), Verdict::Equal, "{n}x{n}");
        assert_ne!(
            verify("1", &format!("$\\boxed{{{m}}}$"), &o()),
            Verdict::Equal
        );
    }
    assert_eq!(verify(&ones(2), &ones(2), &o()), Verdict::Equal);
}

#[test]
fn negated_answers_are_not_the_answer() {
    for pred in [
        "not 72",
        "Not 72",
        "≠ 72",
        "\\neq 72",
        "\\ne 72",
        "isn't 72",
        "it is not 72",
        "The answer is not 72.",
        "The answer isn't $72$.",
        "anything but 72",
        "the answer is anything but 72",
        "so it is not $72$",
        "$x \\neq 72$",
        "72 is wrong",
        "\\boxed{\\text{not } 72}",
        "not \\boxed{72}",
        "Final answer: never 72",
        "The answer cannot be 72",
        "any number other than 72",
    ] {
        assert_ne!(verify("72", pred, &o()), Verdict::Equal, "{pred}");
        assert_ne!(verify_text("72", pred, &o()), Verdict::Equal, "{pred}");
    }
    // A negation of another number leaves the stated one (math-verify's own case), and a
    // correction after `No,` states its answer.
    let o = o();
    assert_eq!(
        verify("1000.99", "the number is not 10 which is 1,000.99€", &o),
        Verdict::Equal
    );
    assert_eq!(
        verify("2", "No, the answer is \\boxed{2}", &o),
        Verdict::Equal
    );
    assert_eq!(verify("5", "so the total is 5 apples", &o), Verdict::Equal);
    // A denial in the reasoning before a tag does not reach the answer after it.
    assert_eq!(
        verify_text("5", "<think>it is not obvious</think>\\boxed{5}", &o),
        Verdict::Equal
    );
}

#[test]
fn a_prediction_gets_one_answer_not_two_tries() {
    for (pred, wrong) in [
        ("\\boxed{6} The answer is 5", "5"),
        ("\\boxed{6}+5", "11"),
        ("\\boxed{6} 5", "5"),
        ("\\boxed{5} then \\boxed{6}", "5"),
        ("$5$ is wrong, it is $6$", "5"),
    ] {
        assert_eq!(verify("6", pred, &o()), Verdict::Equal, "{pred}");
        assert_ne!(
            verify(wrong, pred, &o()),
            Verdict::Equal,
            "{pred} vs {wrong}"
        );
    }
    // Several values are a list, equal to no single number.
    for pred in [
        "5 or 6",
        "5, 6",
        "\\boxed{5} \\boxed{6}",
        "\\boxed{5}, \\boxed{6}",
        "5\n...\n6",
    ] {
        assert_ne!(verify("5", pred, &o()), Verdict::Equal, "{pred}");
        assert_ne!(verify("6", pred, &o()), Verdict::Equal, "{pred}");
    }
}

#[test]
fn a_formula_inside_prose_is_not_its_last_number() {
    // Found by the fuzz oracle: prose around an inline formula once gave the formula's
    // last operand.
    for pred in [
        "Therefore the total is (((\\frac{0}{15})^{1})^{1})+0*(48).",
        "so the total is 3+0*48",
        "so the total is 3 + 0 \\cdot 48 apples",
        "hence we get (3)*(48)/(48)",
    ] {
        assert_ne!(verify("48", pred, &o()), Verdict::Equal, "{pred}");
        assert_ne!(verify_text("48", pred, &o()), Verdict::Equal, "{pred}");
    }
    // A result after `=` is stated: `48/2 = 24 clips`.
    assert_eq!(
        verify("24", "Natalia sold 48/2 = 24 clips", &o()),
        Verdict::Equal
    );
}

#[test]
fn huge_values_do_not_vanish() {
    for pred in [
        "10^{1000000}+5",
        "5+0*10^{10^{10}}",
        "5 + 10^{-10^{9}}",
        "9^{9^{9}} - 9^{9^{9}} + 5",
    ] {
        assert_ne!(verify("6", pred, &o()), Verdict::Equal, "{pred}");
    }
}

#[test]
fn braced_exponents_are_complete_before_a_factorial() {
    assert_eq!(verify("40320", "2^{3}!", &o()), Verdict::Equal);
    assert_ne!(verify("64", "2^{3}!", &o()), Verdict::Equal);
    assert_eq!(
        verify("40320", "\\left(2^{3}\\right)!", &o()),
        Verdict::Equal
    );
    // In LaTeX a one-character exponent is complete too (2³!); in plain text `2^3!` keeps
    // postfix-before-power: 2^(3!) = 64.
    assert_eq!(verify("40320", "\\displaystyle 2^3!", &o()), Verdict::Equal);
    assert_eq!(verify("64", "2^3!", &o()), Verdict::Equal);
    assert_eq!(verify("64", "2^{3!}", &o()), Verdict::Equal);
    assert_eq!(verify("512", "2^{3^{2}}", &o()), Verdict::Equal);
    assert_eq!(verify("1024", "2^{10}", &o()), Verdict::Equal);
}

// ---------------------------------------------------------------------------
// The property: wrapping, nesting or padding a wrong answer never makes it Equal.

/// A formula-level wrap: keeps the value (or, past the caps, makes it unreadable).
#[derive(Debug, Clone)]
enum Wrap {
    Parens(usize),
    LeftRight(usize),
    Braces(usize),
    Boxed,
    PlusZero,
    TimesOne,
    Space(usize),
    /// `(…)+0*(gold)`: the gold planted where a fragment reader would find it.
    ZeroTimes,
    /// Nested past the parser's depth cap (unreadable).
    Deep,
    /// Past the depth cap, with the gold planted after it: `((…))+0*(gold)`.
    DeepThenGold,
}

/// How the formula is finally presented.
#[derive(Debug, Clone)]
enum Outer {
    Bare,
    Boxed,
    Dollars,
    Unit(String),
    Prose(String),
    ProseBoxed(String),
    /// Prose with the formula inline, no math delimiters.
    InlineProse(String),
}

fn deep(s: &str) -> String {
    "(".repeat(limits::MAX_DEPTH + 5) + s + &")".repeat(limits::MAX_DEPTH + 5)
}

fn wrap(s: &str, w: &Wrap, gold: &str) -> String {
    match w {
        Wrap::Parens(n) => "(".repeat(*n) + s + &")".repeat(*n),
        Wrap::LeftRight(n) => "\\left(".repeat(*n) + s + &"\\right)".repeat(*n),
        Wrap::Braces(n) => "{".repeat(*n) + s + &"}".repeat(*n),
        Wrap::Boxed => format!("\\boxed{{{s}}}"),
        Wrap::PlusZero => format!("{s}+0"),
        Wrap::TimesOne => format!("({s})*1"),
        Wrap::Space(n) => format!("{0}{s}{0}", " ".repeat(*n)),
        Wrap::ZeroTimes => format!("({s})+0*({gold})"),
        Wrap::Deep => deep(s),
        Wrap::DeepThenGold => format!("{}+0*({gold})", deep(s)),
    }
}

fn present(s: &str, o: &Outer) -> String {
    match o {
        Outer::Bare => s.to_string(),
        Outer::Boxed => format!("\\boxed{{{s}}}"),
        Outer::Dollars => format!("${s}$"),
        Outer::Unit(u) => format!("{s}\\text{{ {u}}}"),
        Outer::Prose(t) => format!("{t} ${s}$."),
        Outer::ProseBoxed(t) => format!("{t} $\\boxed{{{s}}}$."),
        Outer::InlineProse(t) => format!("{t} {s}."),
    }
}

/// Wraps that keep the value and stay within every cap: up to three of them nest at
/// most 12 brackets deep (the depth cap, counted in parser frames, reads ~17).
fn value_wrap() -> impl Strategy<Value = Wrap> {
    prop_oneof![
        (1usize..5).prop_map(Wrap::Parens),
        (1usize..4).prop_map(Wrap::LeftRight),
        (1usize..4).prop_map(Wrap::Braces),
        Just(Wrap::Boxed),
        Just(Wrap::PlusZero),
        Just(Wrap::TimesOne),
        (0usize..4).prop_map(Wrap::Space),
    ]
}

/// Wraps an adversary would try: the value wraps, the gold planted where a fallback
/// could find it, nesting past the caps.
fn any_wrap() -> impl Strategy<Value = Wrap> {
    prop_oneof![
        6 => value_wrap(),
        1 => Just(Wrap::ZeroTimes),
        1 => Just(Wrap::Deep),
        1 => Just(Wrap::DeepThenGold),
    ]
}

fn outer() -> impl Strategy<Value = Outer> {
    let lead = "(so the answer is|thus we get|hence|The final answer is|Therefore the total is)";
    prop_oneof![
        Just(Outer::Bare),
        Just(Outer::Boxed),
        Just(Outer::Dollars),
        proptest::string::string_regex("(apples|cm|dollars|units)")
            .expect("regex")
            .prop_map(Outer::Unit),
        proptest::string::string_regex(lead)
            .expect("regex")
            .prop_map(Outer::Prose),
        proptest::string::string_regex(lead)
            .expect("regex")
            .prop_map(Outer::ProseBoxed),
        proptest::string::string_regex(lead)
            .expect("regex")
            .prop_map(Outer::InlineProse),
    ]
}

/// A rational answer written as an integer, a fraction or a decimal.
fn write(n: i64, d: i64, form: u8) -> String {
    match form % 3 {
        0 if d == 1 => n.to_string(),
        0 | 1 => format!("\\frac{{{n}}}{{{d}}}"),
        _ => format!("{n}/{d}"),
    }
}

fn pair() -> impl Strategy<Value = ((i64, i64), (i64, i64), u8, u8)> {
    (
        (-999i64..1000, 1i64..20),
        (-999i64..1000, 1i64..20),
        any::<u8>(),
        any::<u8>(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, .. ProptestConfig::default() })]

    /// A wrong answer, wrapped up to four times, padded with the gold in ways that do not
    /// change its value (`+0*(gold)`), or nested past the caps, is never Equal to the gold.
    #[test]
    fn wrapped_wrong_answers_are_never_equal(
        ((gn, gd), (wn, wd), gf, wf) in pair(),
        wraps in proptest::collection::vec(any_wrap(), 1..5),
        out in outer(),
    ) {
        prop_assume!(gn * wd != wn * gd);
        let gold = write(gn, gd, gf);
        let mut pred = write(wn, wd, wf);
        for w in &wraps {
            pred = wrap(&pred, w, &gold);
        }
        let pred = present(&pred, &out);
        let v = verify(&gold, &pred, &o());
        prop_assert_ne!(v, Verdict::Equal, "gold {} pred {:.200}", gold, pred);
        prop_assert_ne!(verify_text(&gold, &pred, &o()), Verdict::Equal, "gold {} pred {:.200}", gold, pred);
    }

    /// The sanity side: the right answer, wrapped within the caps, stays Equal (so the
    /// property above is not passed by a verifier that never says Equal).
    #[test]
    fn wrapped_right_answers_stay_equal(
        ((gn, gd), _, gf, wf) in pair(),
        wraps in proptest::collection::vec(value_wrap(), 1..4),
        out in outer(),
    ) {
        // A formula inline in prose, without delimiters, is not read (its numbers are
        // fragments), so it is not Equal either.
        let out = match out {
            Outer::InlineProse(t) => Outer::Prose(t),
            out => out,
        };
        let gold = write(gn, gd, gf);
        let mut pred = write(gn, gd, wf);
        for w in &wraps {
            pred = wrap(&pred, w, &gold);
        }
        let pred = present(&pred, &out);
        prop_assert_eq!(verify(&gold, &pred, &o()), Verdict::Equal, "gold {} pred {}", gold, pred);
    }
}
