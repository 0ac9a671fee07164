//! Property tests: equal numbers in different notations verify equal, distinct
//! rationals verify unequal, set order does not matter, tuple order does, radicals
//! simplify exactly (`a·√(d·k²) = a·k·√d`) and distinct radical values stay unequal.

use proptest::prelude::*;
use stepwise_verify::{Options, Verdict, exact_value, parse, verify};

fn o() -> Options {
    Options::default()
}

/// A terminating decimal p / 10^k written as a fraction, a decimal, a percent and in scientific form.
fn forms(p: i64, k: u32) -> Vec<String> {
    let den = 10i64.pow(k);
    let sign = if p < 0 { "-" } else { "" };
    let a = p.unsigned_abs();
    let int = a / den as u64;
    let frac = a % den as u64;
    let dec = if k == 0 {
        format!("{sign}{int}")
    } else {
        format!("{sign}{int}.{frac:0width$}", width = k as usize)
    };
    vec![
        format!("\\frac{{{p}}}{{{den}}}"),
        format!("{p}/{den}"),
        dec.clone(),
        format!("{}\\%", p as f64 * 100.0 / den as f64).replace("\\%", "%"),
        format!("{p}e-{k}"),
        format!("{p} \\times 10^{{-{k}}}"),
        format!("\\dfrac{{{}}}{{{}}}", p * 3, den * 3),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]

    #[test]
    fn equal_numbers_in_other_notations_verify_equal(p in -100_000i64..100_000, k in 0u32..4) {
        let f = forms(p, k);
        for x in &f[1..] {
            if x.contains('%') {
                // `12.5%` is 0.125: compare against the decimal form.
                continue;
            }
            prop_assert_eq!(verify(&f[0], x, &o()), Verdict::Equal, "{} vs {}", f[0], x);
        }
        let pct = format!("{}%", fmt_decimal(p * 100, k));
        prop_assert_eq!(verify(&f[2], &pct, &o()), Verdict::Equal, "{} vs {}", f[2], pct);
    }

    #[test]
    fn distinct_rationals_verify_unequal(a in -1000i64..1000, b in 1i64..1000, c in -1000i64..1000, d in 1i64..1000) {
        prop_assume!(a * d != c * b);
        let g = format!("\\frac{{{a}}}{{{b}}}");
        let p = format!("{c}/{d}");
        prop_assert_eq!(verify(&g, &p, &o()), Verdict::NotEqual);
    }

    #[test]
    fn set_order_does_not_matter_and_tuple_order_does(v in proptest::collection::vec(-50i64..50, 2..6)) {
        let mut sorted = v.clone();
        sorted.sort();
        sorted.dedup();
        prop_assume!(sorted.len() >= 2);
        let mut rev = sorted.clone();
        rev.reverse();
        let join = |xs: &[i64]| xs.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", ");
        let s1 = format!("\\{{{}\\}}", join(&sorted));
        let s2 = format!("\\{{{}\\}}", join(&rev));
        prop_assert_eq!(verify(&s1, &s2, &o()), Verdict::Equal);
        let t1 = format!("({})", join(&sorted));
        let t2 = format!("({})", join(&rev));
        prop_assert_eq!(verify(&t1, &t2, &o()), Verdict::NotEqual);
    }

    #[test]
    fn parser_and_verifier_never_panic(s in ".{0,64}", t in "[-+*/^(){}\\\\a-z0-9 ,.=<>|!%\\[\\]_]{0,48}") {
        let _ = parse(&s);
        let _ = parse(&t);
        let _ = verify(&s, &t, &o());
        let _ = verify(&t, &t, &o());
        let _ = exact_value(&t);
    }

    #[test]
    fn polynomial_identities_hold(a in -20i64..20, b in -20i64..20) {
        let g = format!("(x + {a})(x + {b})");
        let p = format!("x^2 + {}x + {}", a + b, a * b);
        prop_assert_eq!(verify(&g, &p, &o()), Verdict::Equal);
        let q = format!("x^2 + {}x + {}", a + b + 1, a * b);
        prop_assert_eq!(verify(&g, &q, &o()), Verdict::NotEqual);
    }
}

fn square_free(d: u64) -> bool {
    (2..=d.isqrt()).all(|p| !d.is_multiple_of(p * p))
}

fn square_free_radicand() -> impl Strategy<Value = u64> {
    (2u64..2000).prop_filter("square-free", |d| square_free(*d))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]

    #[test]
    fn radicals_simplify_exactly(
        n in -50i64..50, m in 1i64..50, d in square_free_radicand(), k in 1u64..200,
    ) {
        prop_assume!(n != 0);
        let g = format!("\\frac{{{n}}}{{{m}}}\\sqrt{{{}}}", d * k * k);
        let p = format!("\\frac{{{}\\sqrt{{{d}}}}}{{{m}}}", n * k as i64);
        prop_assert_eq!(verify(&g, &p, &o()), Verdict::Equal, "{} vs {}", g, p);
        // Rationalized denominator: n / (m√d) = n√d / (m d).
        let q = format!("\\frac{{{n}}}{{{m}\\sqrt{{{d}}}}}");
        let r = format!("\\frac{{{n}\\sqrt{{{d}}}}}{{{}}}", m * d as i64);
        prop_assert_eq!(verify(&q, &r, &o()), Verdict::Equal, "{} vs {}", q, r);
        // A nonzero multiple of √d is never rational, nor another multiple of √d.
        prop_assert_eq!(verify(&g, &format!("{n}/{m}"), &o()), Verdict::NotEqual);
        let other = format!("\\frac{{{}\\sqrt{{{d}}}}}{{{m}}}", n * k as i64 + 1);
        prop_assert_eq!(verify(&p, &other, &o()), Verdict::NotEqual, "{} vs {}", p, other);
    }

    #[test]
    fn distinct_radicals_verify_unequal(
        a in -30i64..30, b in -30i64..30, d1 in square_free_radicand(), d2 in square_free_radicand(),
    ) {
        prop_assume!(a != 0 && b != 0 && (a, d1) != (b, d2));
        let g = format!("{a}\\sqrt{{{d1}}}");
        let p = format!("{b}\\sqrt{{{d2}}}");
        prop_assert_eq!(verify(&g, &p, &o()), Verdict::NotEqual, "{} vs {}", g, p);
        // Sums of like radicals collect: a√d1 + b√d1 = (a+b)√d1.
        let s = format!("{a}\\sqrt{{{d1}}} + {b}\\sqrt{{{d1}}}");
        let t = format!("{}\\sqrt{{{d1}}}", a + b);
        prop_assert_eq!(verify(&s, &t, &o()), Verdict::Equal, "{} vs {}", s, t);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]

    #[test]
    fn absolute_value_inequalities_solve_to_intervals(
        a in -9i64..10, b in -20i64..20, c in 1i64..20,
    ) {
        prop_assume!(a != 0);
        // |a x + b| < c  <=>  x strictly between (-c-b)/a and (c-b)/a.
        let (mut lo, mut hi) = ((-c - b, a), (c - b, a));
        if a < 0 {
            std::mem::swap(&mut lo, &mut hi);
        }
        let g = format!("|{a}x + {b}| < {c}");
        let open = format!("(\\frac{{{}}}{{{}}}, \\frac{{{}}}{{{}}})", lo.0, lo.1, hi.0, hi.1);
        prop_assert_eq!(verify(&g, &open, &o()), Verdict::Equal, "{} vs {}", g, open);
        let closed = format!("[\\frac{{{}}}{{{}}}, \\frac{{{}}}{{{}}}]", lo.0, lo.1, hi.0, hi.1);
        prop_assert_eq!(verify(&g, &closed, &o()), Verdict::NotEqual, "{} vs {}", g, closed);
        // The complement: |a x + b| >= c.
        let ge = format!("|{a}x + {b}| \\ge {c}");
        let outside = format!(
            "(-\\infty, \\frac{{{}}}{{{}}}] \\cup [\\frac{{{}}}{{{}}}, \\infty)",
            lo.0, lo.1, hi.0, hi.1
        );
        prop_assert_eq!(verify(&ge, &outside, &o()), Verdict::Equal, "{} vs {}", ge, outside);
        prop_assert_eq!(verify(&ge, &open, &o()), Verdict::NotEqual, "{} vs {}", ge, open);
    }
}

fn fmt_decimal(p: i64, k: u32) -> String {
    let den = 10i64.pow(k) as u64;
    let sign = if p < 0 { "-" } else { "" };
    let a = p.unsigned_abs();
    if k == 0 {
        format!("{sign}{a}")
    } else {
        format!("{sign}{}.{:0width$}", a / den, a % den, width = k as usize)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]

    /// Prose is compared as words: a phrase never equals the same words in another order,
    /// nor one whose words are spelled with their letters in another order. (The words end
    /// in `q` so that none is a function, unit or Greek name, which stay math.)
    #[test]
    fn reordered_prose_is_not_equal(
        words in proptest::collection::vec("[a-z]{2,5}q", 2..5),
        k in 1usize..4,
    ) {
        let gold = words.join(" ");
        let mut rotated = words.clone();
        rotated.rotate_left(k % words.len());
        let mut anagram = words.clone();
        anagram[0] = anagram[0].chars().rev().collect();
        prop_assert_eq!(verify(&gold, &gold.to_uppercase(), &o()), Verdict::Equal);
        if rotated != words {
            prop_assert_eq!(verify(&gold, &rotated.join(" "), &o()), Verdict::NotEqual);
        }
        if anagram != words {
            prop_assert_eq!(verify(&gold, &anagram.join(" "), &o()), Verdict::NotEqual);
        }
    }
}
