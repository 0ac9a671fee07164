//! Bugs reported against math-verify (its issue tracker), with the right answers: each
//! pair below is judged as mathematics says, and the power tower of issue 65, which hung
//! math-verify despite its timeout, is decided (bounded by the caps; its time is asserted
//! by the Python hostile-input test).

use stepwise_verify::{Options, Verdict, verify};

fn v(gold: &str, pred: &str) -> Verdict {
    verify(gold, pred, &Options::default())
}

#[test]
fn different_factorials_differ() {
    // 1/2004! and 1/2006! differ by a factor 2005·2006; both are below any float
    // tolerance, and 2004! is past the integer cap, so the bounded answer is Undecided
    // (scored 0, never Equal), which math-verify's `True` was not.
    assert_ne!(v("\\frac{1}{2004!}", "\\frac{1}{2006!}"), Verdict::Equal);
    assert_eq!(v("\\frac{1}{4!}", "\\frac{1}{6!}"), Verdict::NotEqual);
    assert_eq!(v("\\frac{1}{2004!}", "\\frac{1}{2004!}"), Verdict::Equal);
}

#[test]
fn one_minus_and_one_plus_inverse_e_differ() {
    assert_eq!(v("1-\\frac{1}{e}", "1+\\frac{1}{e}"), Verdict::NotEqual);
    assert_eq!(v("1-\\frac{1}{e}", "\\frac{e-1}{e}"), Verdict::Equal);
}

#[test]
fn two_different_lines_differ() {
    assert_eq!(v("y = 2x + 1", "y = 3x + 1"), Verdict::NotEqual);
    assert_eq!(v("y = 2x + 1", "y = 1 + 2x"), Verdict::Equal);
}

#[test]
fn root_of_inverse_is_inverse_of_root() {
    assert_eq!(
        v("\\sqrt{\\frac{1}{n}}", "\\frac{1}{\\sqrt{n}}"),
        Verdict::Equal
    );
    assert_eq!(v("\\sqrt{\\frac{1}{n}}", "\\frac{1}{n}"), Verdict::NotEqual);
}

#[test]
fn bold_markdown_answer_is_read() {
    assert_eq!(v("73", "The answer is **73**."), Verdict::Equal);
    assert_eq!(v("74", "The answer is **73**."), Verdict::NotEqual);
}

#[test]
fn power_tower_is_decided_without_hanging() {
    let got = v("2", "9^{9^{9^{9^{9^{9^{9^{9^{9}}}}}}}}");
    // Never equal to 2; the caps may leave it undecided, which scores 0.
    assert_ne!(got, Verdict::Equal);
    assert_ne!(v("9^{9^{9^{9}}}", "9^{9^{9^{8}}}"), Verdict::Equal);
}

#[test]
fn escapes_eaten_by_a_string_literal_are_read_back() {
    // Python's "\\frac12" without r"" is a form feed and `rac12`.
    assert_eq!(v("\u{c}rac12", "0.5"), Verdict::Equal);
    assert_eq!(v("\u{8}oxed{3}", "3"), Verdict::Equal);
    assert_eq!(v("\u{c}rac12", "0.6"), Verdict::NotEqual);
}
