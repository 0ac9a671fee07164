//! `stepwise scale` against a scripted OpenAI-compatible server (a few lines of std TCP
//! in this test), then `stepwise eval compute` on its output folder and on its run id,
//! and `stepwise report RUN_ID` on the stored run; an unknown run id is a clear error.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Answers every POST with `n` chat choices: 3 + 4 = 7 or a wrong 3 + 4 = 8, by the
/// parity of the request's seed (each sample has its own seed).
fn serve() -> String {
    common::json_server(|_path, req| {
        let n = req.get("n").and_then(|n| n.as_u64()).unwrap_or(1) as usize;
        // a sample is right or wrong by its seed (so the same on every run)
        let seed = req.get("seed").and_then(|s| s.as_u64()).unwrap_or(0);
        let choices: Vec<serde_json::Value> = (0..n as u64)
            .map(|j| {
                let a = if (seed + j).is_multiple_of(2) { 7 } else { 8 };
                serde_json::json!({
                    "index": j,
                    "message": {"role": "assistant", "content": format!("3 + 4 = {a}\n\nThe answer is {a}.")},
                    "finish_reason": "stop",
                })
            })
            .collect();
        let answer = serde_json::json!({
            "choices": choices,
            "usage": {"prompt_tokens": 20, "completion_tokens": 9 * n},
        });
        ("200 OK", answer.to_string())
    })
}

fn stepwise(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stepwise"))
        .current_dir(dir)
        .args(["--quiet"])
        .args(args)
        .output()
        .unwrap()
}

fn ok(o: &Output) -> String {
    let (so, se) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(o.status.success(), "failed:\nstdout {so}\nstderr {se}");
    so.into_owned()
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("stepwise-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn scale_then_compute_and_report_by_run_id() {
    let dir = temp_dir("report-run");
    let mut data = String::new();
    for i in 0..3 {
        data.push_str(&format!(
            "{{\"id\": \"q{i}\", \"question\": \"Problem {i}: what is 3 + 4?\", \"answer\": \"7\"}}\n"
        ));
    }
    std::fs::write(dir.join("data.jsonl"), data).unwrap();
    let url = serve();
    let store = "runs.sqlite";
    ok(&stepwise(
        &dir,
        &[
            "scale",
            "--data",
            "data.jsonl",
            "--strategies",
            "majority,bon",
            "--n",
            "1,2,4",
            "--scorer",
            "arith",
            "--endpoint",
            &url,
            "--store",
            store,
            "--out",
            "scale-out",
        ],
    ));
    for f in ["scale.md", "scale.json", "scale.png", "scale.svg"] {
        assert!(dir.join("scale-out").join(f).is_file(), "{f}");
    }
    // the plot goes through stepwise-eval: title, axes with units, legend, dashed ceiling
    let svg = std::fs::read_to_string(dir.join("scale-out/scale.svg")).unwrap();
    for needle in [
        "data.jsonl: accuracy vs tokens (3 problems)",
        "mean generated tokens per problem (policy + judge), log scale",
        "accuracy (%)",
        "majority",
        "bon",
        "pass@N (ceiling)",
    ] {
        assert!(svg.contains(needle), "scale.svg lacks {needle}");
    }

    let rows: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("scale-out/scale.json")).unwrap())
            .unwrap();
    let row = |st: &str, n: u64| {
        rows.iter()
            .find(|r| r["strategy"] == st && r["n"] == n)
            .unwrap_or_else(|| panic!("no row {st} {n}"))
    };
    let acc = |r: &serde_json::Value| {
        100.0 * r["correct"].as_f64().unwrap() / r["problems"].as_f64().unwrap()
    };
    // the served answers are a mix of right and wrong
    let ceiling = acc(row("pass@N", 4));
    assert!(acc(row("pass@N", 1)) < 100.0 && ceiling > 0.0, "{rows:?}");

    // accuracy versus compute from the output folder (the scale table) ...
    ok(&stepwise(
        &dir,
        &[
            "eval",
            "compute",
            "scale-out",
            "--out",
            "from-folder",
            "--bootstrap",
            "200",
        ],
    ));
    let csv = std::fs::read_to_string(dir.join("from-folder/compute.csv")).unwrap();
    for r in &rows {
        let line = format!(
            "{},N={},{},{:.1},{:.1},",
            r["strategy"].as_str().unwrap(),
            r["n"],
            r["problems"],
            r["mean_tokens"].as_f64().unwrap(),
            acc(r)
        );
        assert!(csv.contains(&line), "{line} not in\n{csv}");
    }

    // ... and from the run id: every selection and aggregation; at k = N = 4 (every
    // sample) pass@k is scale's pass@N and best-of-k by min is scale's bon (--aggregation min)
    ok(&stepwise(
        &dir,
        &[
            "eval",
            "compute",
            "1",
            "--store",
            store,
            "--out",
            "from-run",
            "--bootstrap",
            "200",
        ],
    ));
    let csv = std::fs::read_to_string(dir.join("from-run/compute.csv")).unwrap();
    let line = format!("pass@k,k=4,3,36.0,{ceiling:.1},");
    assert!(csv.contains(&line), "{line} not in\n{csv}");
    let line = format!("best-of-k (min),k=4,3,36.0,{:.1},", acc(row("bon", 4)));
    assert!(csv.contains(&line), "{line} not in\n{csv}");
    assert!(csv.contains("maj@k,k=2,3,18.0,"), "{csv}");
    assert!(csv.contains("weighted@k (prod),k=2,"), "{csv}");
    for f in [
        "compute.md",
        "accuracy_vs_tokens.png",
        "accuracy_vs_tokens.svg",
    ] {
        assert!(dir.join("from-run").join(f).is_file(), "{f}");
    }
    // calibration of the stored step scores against the final answers
    ok(&stepwise(
        &dir,
        &[
            "eval",
            "calibration",
            "latest",
            "--store",
            store,
            "--out",
            "cal",
        ],
    ));
    let cal = std::fs::read_to_string(dir.join("cal/calibration.csv")).unwrap();
    assert!(
        cal.contains("min step score vs final answer correct,12,"),
        "{cal}"
    );
    assert!(dir.join("cal/reliability-1.png").is_file());
    let md = std::fs::read_to_string(dir.join("from-run/compute.md")).unwrap();
    assert!(md.contains("Source: run 1 (scale)"), "{md}");

    // the report of the stored run
    let printed = ok(&stepwise(&dir, &["report", "latest", "--store", store]));
    assert_eq!(printed.trim(), "run-1.html");
    let html = std::fs::read_to_string(dir.join("run-1.html")).unwrap();
    assert!(html.contains("<table>"));
    assert!(html.matches("<figure class=\"plot\"><svg").count() >= 2);
    assert_eq!(html.matches("<details class=\"problem\"").count(), 3);
    assert!(html.contains("Problem 2: what is 3 + 4?"));
    assert!(
        html.contains("<span class=\"score\">0.00</span><span class=\"text\">3 + 4 = 8</span>")
    );
    // a right step is green, a wrong one red
    assert!(html.contains("hsl(120,70%,85%)\"><span class=\"idx\">0</span><span class=\"score\">1.00</span><span class=\"text\">3 + 4 = 7</span>"));
    assert!(html.contains(
        "hsl(0,70%,85%)\"><span class=\"idx\">0</span><span class=\"score\">0.00</span>"
    ));

    // an unknown run id names the store and the id
    let o = stepwise(&dir, &["report", "7", "--store", store]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("run 7 is not in the run store runs.sqlite"),
        "{err}"
    );
    assert!(err.contains("1 (scale)"), "{err}");
    let o = stepwise(&dir, &["report", "1", "--store", "missing.sqlite"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no run store at missing.sqlite"), "{err}");
    assert!(!dir.join("missing.sqlite").exists());

    // the file form still works: a samples JSONL of eval's own format
    std::fs::write(
        dir.join("samples.jsonl"),
        "{\"id\": \"a\", \"question\": \"2+2?\", \"samples\": [{\"answer\": \"4\", \"correct\": true, \"step_scores\": [0.9], \"steps\": [\"2+2=4\"]}]}\n",
    )
    .unwrap();
    let printed = ok(&stepwise(
        &dir,
        &["report", "samples.jsonl", "-o", "s.html"],
    ));
    assert_eq!(printed.trim(), "s.html");
    let html = std::fs::read_to_string(dir.join("s.html")).unwrap();
    assert!(html.contains("stepwise report: Samples") && html.contains("2+2=4"));
    let _ = std::fs::remove_dir_all(&dir);
}
