//! `stepwise head train` and `--scorer head:PATH` on the embedded default model (fetched
//! on first use, like the engine's model tests) over a few real ProcessBench records.

use std::path::PathBuf;
use std::process::Command;

fn stepwise() -> Command {
    Command::new(env!("CARGO_BIN_EXE_stepwise"))
}

fn data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("STEPWISE_DATA") {
        return PathBuf::from(d);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
}

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn train_a_head_resume_its_features_and_score_processbench_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let head = dir.path().join("head.json");
    let train = |extra: &[&str]| {
        stepwise()
            .arg("--data-dir")
            .arg(data_dir())
            .args(["--quiet", "head", "train", "--data", "processbench:gsm8k"])
            .args([
                "--limit",
                "8",
                "--balanced",
                "--threads",
                "2",
                "--ctx-size",
                "4096",
            ])
            .arg("--out")
            .arg(&head)
            .args(extra)
            .output()
            .expect("run stepwise head train")
    };
    let first = train(&[]);
    let stdout = ok(&first);
    assert!(stdout.contains("AUROC"), "{stdout}");
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(stderr.contains("0 already stored"), "{stderr}");
    let h: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&head).unwrap()).unwrap();
    assert_eq!(h["dim"], 576, "SmolLM2-135M's hidden size");
    let w = h["weights"].as_array().unwrap();
    assert_eq!(w.len(), 576);
    assert!(
        w.iter().any(|x| x.as_f64().unwrap() != 0.0),
        "a fitted head"
    );

    // a rerun reads every record's features from the cache and fits the same head
    let again = train(&[]);
    ok(&again);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("8 already stored"), "{stderr}");
    let h2: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&head).unwrap()).unwrap();
    assert_eq!(h["weights"], h2["weights"]);

    let show = stepwise()
        .args(["head", "show"])
        .arg(&head)
        .output()
        .unwrap();
    assert!(ok(&show).contains("SmolLM2"));

    // scoring ProcessBench with it: a probability per step, tokens read, none generated
    let out_dir = dir.path().join("pb");
    let spec = format!("head:{}", head.display());
    let out = stepwise()
        .arg("--data-dir")
        .arg(data_dir())
        .args(["--quiet", "eval", "processbench", "--subsets", "gsm8k"])
        .args([
            "--limit",
            "4",
            "--balanced",
            "--threads",
            "2",
            "--ctx-size",
            "4096",
        ])
        .args(["--scorer", &spec])
        .arg("--out")
        .arg(&out_dir)
        .arg("--store")
        .arg(dir.path().join("runs.sqlite"))
        .output()
        .unwrap();
    ok(&out);
    let text = std::fs::read_to_string(out_dir.join("results.jsonl")).unwrap();
    let rows: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 4);
    for r in &rows {
        let scores = r["scores"].as_array().unwrap();
        assert_eq!(scores.len() as u64, r["n_steps"].as_u64().unwrap());
        assert!(
            scores
                .iter()
                .all(|s| (0.0..=1.0).contains(&s.as_f64().unwrap()))
        );
        assert!(r["prompt_tokens"].as_u64().unwrap() > 0);
        assert_eq!(r["generated_tokens"], 0);
    }

    // a damaged head file is refused with the file named
    std::fs::write(&head, "{\"dim\": 3}").unwrap();
    let bad = stepwise()
        .args(["head", "show"])
        .arg(&head)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("head.json"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
