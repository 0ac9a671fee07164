//! The HTML report renders in headless Chromium: the page loads from disk with no
//! server, and the rendered DOM holds the tables, the inline SVG plots and the
//! drill-down. Skips loudly when /usr/bin/chromium is absent.
//!
//! Set `STEPWISE_KEEP_REPORT=DIR` to keep the page, its screenshot and the PNG plots
//! in DIR for a look.

use std::path::PathBuf;
use stepwise_eval::compute::{ProblemSamples, Resampling, SampleOutcome};
use stepwise_eval::plot::{self, AccuracyVsTokens, ProcessBenchBars, Reliability};
use stepwise_eval::processbench::{PbResult, evaluate};
use stepwise_eval::views::{processbench_report, samples_report, step_calibration};
use stepwise_testkit::chromium;

/// A small deterministic ProcessBench-like run: scores drop at (or near) the first error.
fn pb_results() -> Vec<PbResult> {
    let mut out = Vec::new();
    for (si, subset) in ["gsm8k", "math"].into_iter().enumerate() {
        for i in 0..12usize {
            let n = 3 + i % 4;
            let label = if i % 3 == 0 { -1 } else { (i % n) as i64 };
            let scores: Vec<f64> = (0..n)
                .map(|j| {
                    let j = j as i64;
                    let base: f64 = if label >= 0 && j >= label { 0.2 } else { 0.85 };
                    // some noise so that not everything is right
                    let wobble = ((i * 7 + j as usize * 3 + si) % 5) as f64 * 0.08 - 0.16;
                    (base + wobble).clamp(0.0, 1.0)
                })
                .collect();
            out.push(PbResult {
                id: format!("{subset}-{i}"),
                subset: subset.into(),
                label,
                n_steps: n,
                scores,
                critic: None,
                generated_tokens: 40 + i as u64,
                prompt_tokens: 300,
                problem: format!("Problem {i}: what is {i} + {i}? <b>not bold</b>"),
                steps: (0..n)
                    .map(|j| format!("Step {j}: {i} + {j} = {}", i + j))
                    .collect(),
                details: Vec::new(),
            });
        }
    }
    out
}

fn samples() -> Vec<ProblemSamples> {
    (0..10)
        .map(|p| ProblemSamples {
            id: format!("p{p}"),
            question: format!("What is {p} * 3?"),
            gold: Some((p * 3).to_string()),
            samples: (0..8)
                .map(|s| {
                    let correct = (p + s) % 3 != 0;
                    SampleOutcome {
                        answer: Some(if correct {
                            (p * 3).to_string()
                        } else {
                            format!("{}", p * 3 + s + 1)
                        }),
                        correct,
                        step_scores: vec![0.9, if correct { 0.8 } else { 0.3 + 0.05 * s as f64 }],
                        policy_tokens: 120 + (s as u64) * 5,
                        judge_tokens: 30,
                        steps: vec![format!("{p} * 3 = {}", p * 3), "The answer is it.".into()],
                    }
                })
                .collect(),
        })
        .collect()
}

fn keep_dir() -> Option<PathBuf> {
    std::env::var_os("STEPWISE_KEEP_REPORT").map(PathBuf::from)
}

#[test]
fn report_renders_in_headless_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let out = keep_dir().unwrap_or_else(|| dir.path().to_path_buf());
    std::fs::create_dir_all(&out).unwrap();

    let results = pb_results();
    let pb = evaluate(&results, None).unwrap();
    let mut rep = processbench_report(
        "ProcessBench test report",
        vec![(
            "command".into(),
            "stepwise eval processbench --scorer test".into(),
        )],
        &results,
        &pb,
        10,
    )
    .unwrap();
    let s = samples_report(
        "x",
        vec![],
        &samples(),
        Resampling {
            bootstrap: 200,
            ..Default::default()
        },
        2,
    )
    .unwrap();
    rep.sections.extend(s.sections);
    let page = out.join("report.html");
    std::fs::write(&page, rep.to_html()).unwrap();

    // PNG versions of the same plots, to look at
    plot::write_both(
        &ProcessBenchBars {
            title: "ProcessBench (test data)".into(),
            subsets: &pb.subsets,
        },
        &out.join("bars"),
    )
    .unwrap();
    let c = step_calibration(&results).unwrap();
    plot::write_both(
        &Reliability {
            title: format!("Reliability (test data, ECE {:.3})", c.ece),
            bins: &c.bins,
        },
        &out.join("reliability"),
    )
    .unwrap();
    let pts = stepwise_eval::compute::sample_curves(
        &samples(),
        &[1, 2, 4, 8],
        &stepwise_eval::compute::Selection::all(),
        Resampling {
            bootstrap: 200,
            ..Default::default()
        },
    );
    let pts = stepwise_eval::compute::headline(&pts);
    plot::write_both(
        &AccuracyVsTokens {
            title: "Accuracy vs compute (test data)".into(),
            points: &pts,
        },
        &out.join("curves"),
    )
    .unwrap();

    // the page is written either way; only its rendering needs the browser
    if !chromium::available("report_renders_in_headless_chromium") {
        return;
    }
    let url = format!("file://{}", page.canonicalize().unwrap().display());
    let dom = chromium::dump_dom(&url, None);
    assert!(dom.contains("<table>"), "no table in rendered DOM");
    assert!(dom.contains("<td>gsm8k</td>"), "no ProcessBench row");
    assert!(
        dom.matches("<svg").count() >= 4,
        "expected the plots as inline SVG"
    );
    assert!(dom.contains("ProcessBench: accuracy and F1 per subset"));
    assert!(dom.contains("Accuracy vs compute"));
    assert!(dom.contains("class=\"problem\""), "no drill-down");
    assert!(
        dom.contains("&lt;b&gt;not bold&lt;/b&gt;"),
        "problem text must be escaped"
    );

    let shot = out.join("report.png");
    chromium::screenshot(&url, &shot, (1200, 2400), None);
    let png = std::fs::read(&shot).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    assert!(
        png.len() > 20_000,
        "screenshot suspiciously small: {} bytes",
        png.len()
    );
}
