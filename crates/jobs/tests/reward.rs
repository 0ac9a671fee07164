//! `stepwise reward`'s job: hand-checked rewards of a small file, an interrupted run of
//! three chunks resumed to the same output as an uninterrupted one, malformed lines as
//! errors or (with `skip_bad`) error lines, and groups scored with the group components.

use std::path::{Path, PathBuf};
use stepwise_jobs::reward::{RewardJob, RewardKind, RewardLine, reward_file};
use stepwise_jobs::{JobError, Resume, RunOptions, RunStatus, RunStore, Stop};
use stepwise_reward::RewardConfig;
use stepwise_store::SqliteStore;

fn opts(resume: Resume) -> RunOptions {
    RunOptions {
        resume,
        concurrency: 2,
        progress: false,
        stop: Stop::Never,
    }
}

struct Dir {
    dir: tempfile::TempDir,
}

impl Dir {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        p
    }
    fn store(&self, name: &str) -> SqliteStore {
        SqliteStore::open(self.path(name)).unwrap()
    }
}

/// (line, reward, accuracy, format, answer, no_gold) of an output line.
type Row<'a> = (usize, f64, f64, f64, Option<&'a str>, bool);

fn read_lines(path: &Path) -> Vec<RewardLine> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn three_lines_get_their_hand_checked_rewards() {
    let d = Dir::new();
    let input = d.write(
        "samples.jsonl",
        concat!(
            r#"{"prompt": "2+2?", "response": "<think>2+2=4</think> \\boxed{4}", "gold": "4", "id": "a"}"#,
            "\n",
            r#"{"response": "<think>hmm</think> \\boxed{5}", "label": 4}"#,
            "\n",
            r#"{"response": "The answer is 4", "gold": null}"#,
            "\n"
        ),
    );
    let out = d.path("rewards.jsonl");
    let store = d.store("runs.sqlite");
    let s = reward_file(
        &store,
        &input,
        RewardConfig::with_preset("deepseek-r1").unwrap(),
        false,
        &out,
        &opts(Resume::New),
    )
    .await
    .unwrap();
    assert_eq!((s.lines, s.bad_lines, s.resumed_chunks), (3, 0, 0));
    assert_eq!(s.keys, ["accuracy", "format"]);
    let lines = read_lines(&out);
    // (line, reward, accuracy, format, answer, no_gold), by hand:
    // 1: \boxed{4} verifies against 4 (accuracy 1) after a <think> block (format 1): 2;
    // 2: \boxed{5} against the number label 4 (accuracy 0), format 1: 1;
    // 3: no gold (accuracy 0, no_gold), no <think> block and no boxed answer (format 0): 0.
    let got: Vec<Row> = lines
        .iter()
        .map(|l| {
            let r = l.result.as_ref().unwrap();
            (
                l.line,
                r.reward,
                r.components["accuracy"],
                r.components["format"],
                r.answer.as_deref(),
                l.no_gold,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (1, 2.0, 1.0, 1.0, Some("4"), false),
            (2, 1.0, 0.0, 1.0, Some("5"), false),
            (3, 0.0, 0.0, 0.0, None, true),
        ]
    );
    assert_eq!(lines[0].id, Some(serde_json::json!("a")));
    assert_eq!(s.tally.mean_reward(), 1.0);
    // the run is stored as a `reward` run, v1, with the file's identity in its config
    let info = store.run(s.run).unwrap();
    assert_eq!(
        (info.kind.as_str(), info.status),
        ("reward", RunStatus::Done)
    );
    let config = stepwise_jobs::stored_config::<RewardKind>(&info).unwrap();
    assert_eq!(config.input_bytes, std::fs::metadata(&input).unwrap().len());
    assert_eq!(config.input_sha256.len(), 64);
}

fn big_file(n: usize) -> String {
    (0..n)
        .map(|i| {
            let answer = if i % 3 == 0 { i + 1 } else { i };
            let think = if i % 5 == 0 { "" } else { "<think>work</think> " };
            format!(
                "{{\"prompt\": \"q{i}\", \"response\": \"{think}\\\\boxed{{{answer}}}\", \"gold\": {i}}}\n"
            )
        })
        .collect()
}

/// A run of the 600-line `input` (three chunks) stopped right after its first chunk is
/// stored, as Ctrl-C (or a kill) would stop it.
async fn stopped_after_one_chunk(
    store: &SqliteStore,
    input: &Path,
    config: &RewardConfig,
) -> stepwise_jobs::RunId {
    let job = RewardJob::from_file(input, config.clone(), false).unwrap();
    let (tx, rx) = tokio::sync::watch::channel(false);
    let stop = RunOptions {
        concurrency: 1,
        stop: Stop::When(rx),
        ..opts(Resume::New)
    };
    let e = stepwise_jobs::run_with(store, &job, &stop, |_, _| {
        tx.send(true).ok();
        Ok(())
    })
    .await
    .unwrap_err();
    let JobError::Interrupted { run, done, total } = e else {
        panic!("{e}")
    };
    assert_eq!((done, total), (1, 3));
    assert_eq!(store.run(run).unwrap().status, RunStatus::Interrupted);
    run
}

#[tokio::test]
async fn an_interrupted_run_of_three_chunks_resumes_to_the_uninterrupted_output() {
    let d = Dir::new();
    let input = d.write("samples.jsonl", &big_file(600));
    let config = RewardConfig::default();
    let store = d.store("runs.sqlite");
    let run = stopped_after_one_chunk(&store, &input, &config).await;

    let out = d.path("resumed.jsonl");
    let s = reward_file(
        &store,
        &input,
        config.clone(),
        false,
        &out,
        &opts(Resume::Run(run)),
    )
    .await
    .unwrap();
    assert_eq!((s.run, s.resumed_chunks, s.lines), (run, 1, 600));

    let fresh = d.path("fresh.jsonl");
    let other = d.store("fresh.sqlite");
    reward_file(&other, &input, config, false, &fresh, &opts(Resume::New))
        .await
        .unwrap();
    let resumed = std::fs::read(&out).unwrap();
    assert_eq!(resumed, std::fs::read(&fresh).unwrap(), "byte for byte");
    let lines = read_lines(&out);
    assert_eq!(lines.len(), 600);
    assert!(lines.iter().enumerate().all(|(i, l)| l.line == i + 1));
    // i % 3 == 0 is wrong, i % 5 == 0 lacks the thinking block
    let r = |i: usize| lines[i].result.as_ref().unwrap().reward;
    assert_eq!((r(0), r(1), r(3), r(5), r(7)), (0.0, 2.0, 1.0, 1.0, 2.0));
}

#[tokio::test]
async fn a_changed_file_is_not_resumed() {
    let d = Dir::new();
    let input = d.write("samples.jsonl", &big_file(3));
    let store = d.store("runs.sqlite");
    let out = d.path("rewards.jsonl");
    let cfg = RewardConfig::default();
    let s = reward_file(&store, &input, cfg.clone(), false, &out, &opts(Resume::New))
        .await
        .unwrap();
    std::fs::write(&input, big_file(4)).unwrap();
    let e = reward_file(&store, &input, cfg, false, &out, &opts(Resume::Run(s.run)))
        .await
        .unwrap_err();
    let e = stepwise_core::error_chain(&e);
    assert!(e.contains("config.input_sha256"), "{e}");
}

#[tokio::test]
async fn bad_lines_fail_the_command_or_with_skip_bad_become_error_lines() {
    let d = Dir::new();
    let text = concat!(
        r#"{"response": "<think>x</think> \\boxed{1}", "gold": "1"}"#,
        "\n",
        r#"{"prompt": "no response"}"#,
        "\n",
        "{not json\n",
        r#"{"response": "<think>x</think> \\boxed{2}", "gold": 3}"#,
        "\n"
    );
    let input = d.write("samples.jsonl", text);
    let store = d.store("runs.sqlite");
    let out = d.path("rewards.jsonl");
    let e = reward_file(
        &store,
        &input,
        RewardConfig::default(),
        false,
        &out,
        &opts(Resume::New),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("samples.jsonl:2: missing field `response`"),
        "{e}"
    );
    assert!(!out.exists(), "no output from a failed command");
    assert!(store.list_runs().unwrap().is_empty(), "no run to resume");

    let s = reward_file(
        &store,
        &input,
        RewardConfig::default(),
        true,
        &out,
        &opts(Resume::New),
    )
    .await
    .unwrap();
    assert_eq!((s.lines, s.bad_lines), (4, 2));
    assert_eq!((s.tally.scored, s.tally.bad), (2, 2));
    let lines = read_lines(&out);
    let shape: Vec<(usize, Option<f64>, Option<&str>)> = lines
        .iter()
        .map(|l| {
            (
                l.line,
                l.result.as_ref().map(|r| r.reward),
                l.error.as_deref(),
            )
        })
        .collect();
    assert_eq!(shape[0], (1, Some(2.0), None));
    assert_eq!(shape[3], (4, Some(1.0), None));
    assert!(
        shape[1]
            .2
            .unwrap()
            .starts_with("line 2: missing field `response`"),
        "{shape:?}"
    );
    assert!(shape[2].2.unwrap().starts_with("line 3: "), "{shape:?}");
    assert!(shape[1].1.is_none() && shape[2].1.is_none());
}

#[tokio::test]
async fn a_group_is_scored_with_the_group_components_and_keys_stay_one_set() {
    let d = Dir::new();
    // EMPO over a group whose answers are 4, 4, 5: clusters {0, 1} and {2}, values
    // 2/3, 2/3, 1/3; the item reward (accuracy against 4 + format) is 2, 2, 1.
    // The group's lines are not adjacent: an ungrouped line stands between them.
    let text = concat!(
        r#"{"prompt": "p", "response": "<think>a</think> \\boxed{4}", "gold": "4", "group": "g"}"#,
        "\n",
        r#"{"response": "<think>b</think> \\boxed{7}", "gold": "7"}"#,
        "\n",
        r#"{"prompt": "p", "response": "<think>c</think> \\boxed{4}", "gold": "4", "group": "g"}"#,
        "\n",
        r#"{"prompt": "p", "response": "<think>d</think> \\boxed{5}", "gold": "4", "group": "g"}"#,
        "\n"
    );
    let input = d.write("samples.jsonl", text);
    let config = RewardConfig::from_toml(
        "[reward]\npreset = \"deepseek-r1\"\n[[group.components]]\nkind = \"empo\"\n",
        "t",
    )
    .unwrap();
    let store = d.store("runs.sqlite");
    let out = d.path("rewards.jsonl");
    let s = reward_file(&store, &input, config, false, &out, &opts(Resume::New))
        .await
        .unwrap();
    assert_eq!(s.keys, ["accuracy", "empo", "format"]);
    let lines = read_lines(&out);
    let rewards: Vec<f64> = lines
        .iter()
        .map(|l| l.result.as_ref().unwrap().reward)
        .collect();
    let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
    let want = [2.0 + 2.0 / 3.0, 2.0, 2.0 + 2.0 / 3.0, 1.0 + 1.0 / 3.0];
    assert!(
        rewards.iter().zip(want).all(|(a, b)| close(*a, b)),
        "{rewards:?}"
    );
    for l in &lines {
        let keys: Vec<&str> = l
            .result
            .as_ref()
            .unwrap()
            .components
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["accuracy", "empo", "format"], "line {}", l.line);
    }
    assert_eq!(lines[1].result.as_ref().unwrap().components["empo"], 0.0);
    assert_eq!(lines[0].group, Some(serde_json::json!("g")));
    assert_eq!(
        (lines[0].cluster, lines[2].cluster, lines[3].cluster),
        (Some(0), Some(0), Some(1))
    );
    // H = −(2/3 ln 2/3 + 1/3 ln 1/3)
    let h = -(2.0f64 / 3.0 * (2.0f64 / 3.0).ln() + 1.0 / 3.0 * (1.0f64 / 3.0).ln());
    assert!(close(lines[0].semantic_entropy.unwrap(), h));
}

/// `stepwise worker` on a reward run: a run stopped after one of its three chunks is
/// finished by a worker (`join`, the stored config alone), the output written afterwards
/// by `reward … --resume` equals an uninterrupted run's, and a worker whose copy of the
/// input differs is refused before scoring anything.
#[tokio::test]
async fn a_worker_joins_a_stopped_reward_run_and_finishes_it() {
    let d = Dir::new();
    let input = d.write("samples.jsonl", &big_file(600));
    let config = RewardConfig::default();
    let store = d.store("runs.sqlite");
    let run = stopped_after_one_chunk(&store, &input, &config).await;

    let report = stepwise_jobs::reward::join(&store, run, &opts(Resume::New))
        .await
        .unwrap();
    assert_eq!(
        (
            report.run,
            report.done_before,
            report.done_now,
            report.total
        ),
        (run, 1, 2, 3)
    );
    assert_eq!(store.run(run).unwrap().status, RunStatus::Done);

    let out = d.path("joined.jsonl");
    let s = reward_file(
        &store,
        &input,
        config.clone(),
        false,
        &out,
        &opts(Resume::Run(run)),
    )
    .await
    .unwrap();
    assert_eq!((s.run, s.resumed_chunks), (run, 3));
    let fresh = d.path("fresh.jsonl");
    reward_file(
        &d.store("fresh.sqlite"),
        &input,
        config,
        false,
        &fresh,
        &opts(Resume::New),
    )
    .await
    .unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&fresh).unwrap());

    // the same path with other bytes: the stored size and SHA-256 refuse it
    std::fs::write(&input, big_file(601)).unwrap();
    let e = stepwise_jobs::reward::join(&store, run, &opts(Resume::New))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("input"), "{e}");
}
