//! The explorer driven in headless Chromium over a store written by the real jobs with a
//! scripted model: the runs list, a problem, a beam tree, an annotate comparison and a
//! two-run comparison, asserted on the DOM after the page's script has run.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use stepwise_core::Aggregation;
use stepwise_jobs::kinds::scale::ScaleStrategy;
use stepwise_jobs::kinds::solve::{SearchSettings, SolveConfig};
use stepwise_jobs::{RunOptions, Stop};
use stepwise_model::GenerateRequest;
use stepwise_model::scripted::ScriptedGenerator;
use stepwise_search::jobs::{Backends, SolveJob};
use stepwise_store::{RunStore, SqliteStore};
use stepwise_view::Index;

const CHROMIUM: &str = "/usr/bin/chromium";
const XSS: &str = "<script>alert(1)</script>";

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// `n` JSONL problems "what is 3 + 4?" (gold 7); the first question carries markup.
fn dataset(dir: &Path, n: usize) -> PathBuf {
    let path = dir.join(format!("problems-{n}.jsonl"));
    let mut text = String::new();
    for i in 0..n {
        let extra = if i == 0 { " <b>bold?</b>" } else { "" };
        text.push_str(&format!(
            "{{\"id\": \"p{i}\", \"question\": \"Problem {i}: what is 3 + 4?{extra}\", \"answer\": \"7\"}}\n"
        ));
    }
    std::fs::write(&path, text).unwrap();
    path
}

/// Sample i answers 7 when i % 3 == 2, else 8 + i % 2; sample 0 of a fresh answer starts
/// with a script tag. After a step (tree search) it answers.
fn script(req: &GenerateRequest, i: usize) -> String {
    let a = if i % 3 == 2 { 7 } else { 8 + (i % 2) };
    if req.assistant_prefix.is_empty() {
        let inj = if i == 0 { XSS } else { "" };
        format!("{inj} 3 + 4 = {a}\n\nThe answer is {a}.")
    } else {
        format!("So it is {a}.\n\nThe answer is {a}.")
    }
}

fn backends() -> Backends {
    Backends {
        policy: Arc::new(ScriptedGenerator::new(script)),
        judge: None,
        prm: Default::default(),
    }
}

fn solve_run(store: &dyn RunStore, data: &Path, strategy: ScaleStrategy, n: usize) -> i64 {
    let problems = stepwise_data::load_spec(&data.display().to_string(), None, None).unwrap();
    let config = SolveConfig {
        dataset: data.display().to_string(),
        limit: None,
        strategy,
        n,
        budget: None,
        policy: "scripted".into(),
        reproducible: true,
        search: SearchSettings {
            scorer: Some("arith".into()),
            aggregation: Aggregation::Min,
            expansions: 2,
            max_steps: 3,
            ..SearchSettings::default()
        },
    };
    let job = SolveJob::new(config, problems, &backends()).unwrap();
    let opts = RunOptions {
        concurrency: 2,
        stop: Stop::Never,
        progress: false,
        ..RunOptions::default()
    };
    block_on(stepwise_search::jobs::solve(store, &job, &opts, None))
        .unwrap()
        .run
}

fn annotate_run(store_path: &Path) -> i64 {
    use stepwise_annotate::run::{AnnotateConfig, Job, PolicySource, run_job};
    let mut cfg = AnnotateConfig {
        dataset: "arith:ops=3,n=3,seed=5".into(),
        samples: 2,
        methods: vec![
            stepwise_annotate::Method::Mc,
            stepwise_annotate::Method::OmegaPrm,
        ],
        ..AnnotateConfig::default()
    };
    cfg.mc.k = 3;
    let job = Job {
        config: cfg,
        store: store_path.display().to_string(),
        resume: None,
        data_dir: None,
        run: RunOptions {
            concurrency: 2,
            stop: Stop::Never,
            progress: false,
            ..RunOptions::default()
        },
        out: None,
        eval_against_truth: false,
        stored_only: false,
    };
    block_on(run_job(
        &job,
        PolicySource::Scripted {
            delay: std::time::Duration::ZERO,
        },
    ))
    .unwrap()
    .run
}

/// The explorer over the store at `path` (read-only) on a free loopback port, served
/// from a thread of its own until the returned guard drops.
struct Server {
    base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(path: &Path) -> Self {
        let store: Arc<dyn RunStore> = Arc::new(SqliteStore::open_read_only(path).unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async move {
                let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(l.local_addr().unwrap()).unwrap();
                stepwise_view::serve_on(store, l, async {
                    let _ = rx.await;
                })
                .await
                .unwrap();
            });
        });
        let addr = addr_rx.recv().unwrap();
        Self {
            base: format!("http://{addr}"),
            stop: Some(tx),
            thread: Some(thread),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn have_chromium(test: &str) -> bool {
    if Path::new(CHROMIUM).exists() {
        return true;
    }
    println!("SKIPPED: {test}: {CHROMIUM} not found (apt-get install -y chromium)");
    eprintln!("SKIPPED: {test}: {CHROMIUM} not found");
    false
}

/// The DOM of `url` after its script ran (virtual time lets the fetches finish).
fn dom(url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
            "--disable-dev-shm-usage",
            "--virtual-time-budget=10000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(url)
        .output()
        .expect("running chromium");
    assert!(
        out.status.success(),
        "chromium failed on {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        d.contains("data-ready=\"1\""),
        "{url} did not finish rendering:\n{d}"
    );
    assert!(!d.contains("id=\"error\""), "{url} rendered an error:\n{d}");
    d
}

fn count(dom: &str, needle: &str) -> usize {
    dom.matches(needle).count()
}

#[test]
fn the_explorer_renders_every_view_in_headless_chromium() {
    if !have_chromium("the_explorer_renders_every_view_in_headless_chromium") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path(), 4);
    let path = dir.path().join("runs.sqlite");
    let store = SqliteStore::open(&path).unwrap();
    let beam = solve_run(&store, &data, ScaleStrategy::Beam, 4);
    let maj = solve_run(&store, &data, ScaleStrategy::Weighted, 4);
    drop(store);
    let ann = annotate_run(&path);
    let before = std::fs::read(&path).unwrap();

    // what the pages must show, from the same index the server builds
    let ix = Index::new(Arc::new(SqliteStore::open_read_only(&path).unwrap()));
    let server = Server::start(&path);
    let url = |frag: &str| format!("{}/#{frag}", server.base);

    // runs list: three runs, each with its report link
    let d = dom(&url("/"));
    assert!(d.contains("data-view=\"runs\""));
    assert_eq!(count(&d, "<tr class=\"run\""), 3, "{d}");
    assert_eq!(count(&d, "class=\"report\""), 3);
    assert!(d.contains("annotate"));

    // a problem of the weighted-SC run: 4 samples with coloured steps, the chosen one
    // marked, the script tag as text
    let page = ix.problem_page(maj, "p0").unwrap();
    let d = dom(&url(&format!("/run/{maj}/p/p0")));
    assert!(d.contains("data-view=\"problem\""));
    assert_eq!(
        count(&d, "<div class=\"sample\"") + count(&d, "<div class=\"sample chosen\""),
        4,
        "{d}"
    );
    assert_eq!(count(&d, "<div class=\"sample chosen\""), 1);
    let steps: usize = page
        .results
        .iter()
        .flat_map(|r| &r.samples)
        .map(|s| s.steps.len())
        .sum();
    assert_eq!(count(&d, "<li class=\"step\""), steps);
    assert!(
        count(&d, "style=\"background: rgb(") >= steps,
        "steps coloured by score"
    );
    assert!(d.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{d}");
    assert!(!d.contains(XSS), "a model's script tag became markup");
    assert!(d.contains("Problem 0: what is 3 + 4? &lt;b&gt;bold?&lt;/b&gt;"));
    assert!(d.contains("id=\"next\""), "keyboard/next navigation");

    // the beam tree: every stored node, pruned ones greyed, the chosen path marked
    let page = ix.problem_page(beam, "p1").unwrap();
    let tree = page.results[0].tree.as_ref().expect("beam stores its tree");
    let d = dom(&url(&format!("/run/{beam}/p/p1/tree/0")));
    assert!(d.contains("data-view=\"tree\""));
    assert_eq!(count(&d, "<li class=\"node"), tree.nodes.len(), "{d}");
    let pruned = tree.nodes.iter().filter(|n| n.pruned.is_some()).count();
    assert!(pruned > 0, "the beam pruned something");
    assert_eq!(count(&d, "<li class=\"node pruned"), pruned);
    let chosen = tree.nodes.iter().filter(|n| n.chosen).count();
    assert!(chosen >= 2, "root and at least one step on the chosen path");
    assert_eq!(
        count(&d, " chosen\" data-id") + count(&d, " chosen selected\" data-id"),
        chosen
    );
    assert_eq!(count(&d, " selected\" data-id"), 1);
    assert_eq!(
        count(&d, "<details open=\"\">"),
        tree.nodes.len(),
        "foldable"
    );
    assert!(d.contains("id=\"zoom-in\""));
    // and a link to it from the problem page
    let d = dom(&url(&format!("/run/{beam}/p/p1")));
    assert!(d.contains("class=\"tree-link\""));

    // annotate: mc and omegaprm side by side with the exact truth, disagreements marked
    let run = ix.run(ann).unwrap();
    let pid = run.rows[0].id.clone();
    let page = ix.problem_page(ann, &pid).unwrap();
    assert!(!page.labelled.is_empty());
    let d = dom(&url(&format!("/run/{ann}/p/{}", urlencode(&pid))));
    assert_eq!(
        count(&d, "<table class=\"labels\""),
        page.labelled.len(),
        "{d}"
    );
    assert!(d.contains("exact truth"));
    let dis: usize = page.labelled.iter().map(|l| l.disagreements).sum();
    assert_eq!(count(&d, " disagree\""), dis);
    let methods: usize = page.labelled.iter().map(|l| l.methods.len()).sum();
    assert!(methods >= page.labelled.len());
    // the disagreements-only filter is part of the URL
    let d = dom(&url(&format!("/run/{ann}/p/{}?dis=1", urlencode(&pid))));
    let with = page.labelled.iter().filter(|l| l.disagreements > 0).count();
    assert_eq!(count(&d, "<table class=\"labels\""), with);

    // two runs compared: one row per problem, differences marked and filterable
    let cmp = ix.compare(beam, maj).unwrap();
    assert_eq!(cmp.rows.len(), 4);
    let differ = cmp.rows.iter().filter(|r| r.differ).count();
    let d = dom(&url(&format!("/compare/{beam}/{maj}")));
    assert!(d.contains("data-view=\"compare\""));
    assert_eq!(count(&d, "<tr class=\"cmp"), 4, "{d}");
    assert_eq!(count(&d, "<tr class=\"cmp differ\""), differ);
    let d = dom(&url(&format!("/compare/{beam}/{maj}?diff=1")));
    assert_eq!(count(&d, "<tr class=\"cmp"), differ);

    // a run's problems, searched and filtered by URL
    let d = dom(&url(&format!("/run/{maj}?q=p3")));
    assert_eq!(count(&d, "<tr class=\"problem\""), 1, "{d}");
    let wrong = ix
        .run(maj)
        .unwrap()
        .rows
        .iter()
        .filter(|r| r.variants.iter().any(|v| v.correct == Some(false)))
        .count();
    let d = dom(&url(&format!("/run/{maj}?wrong=1")));
    assert_eq!(count(&d, "<tr class=\"problem\""), wrong);

    drop(server);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "the explorer wrote to the store"
    );
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A store of 10,000 solve units: the time to open it (the index read) and the time the
/// page takes to render a problem, as the browser measured it (`performance.now()` in the
/// DOM). Reported (docs/results/view.md), not asserted: no timed tests.
#[test]
fn a_store_of_ten_thousand_units_renders_a_problem() {
    if !have_chromium("a_store_of_ten_thousand_units_renders_a_problem") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path(), 10_000);
    let path = dir.path().join("runs.sqlite");
    let store = SqliteStore::open(&path).unwrap();
    let run = solve_run(&store, &data, ScaleStrategy::Weighted, 4);
    assert_eq!(store.run(run).unwrap().units, 10_000);
    drop(store);
    let t = std::time::Instant::now();
    let server = Server::start(&path);
    // the first page waits for the index (read before the first answer)
    let d = dom(&format!("{}/#/run/{run}/p/p5000", server.base));
    let open_ms = t.elapsed().as_millis();
    let attr = |d: &str, name: &str| -> String {
        let k = format!("{name}=\"");
        let i = d.find(&k).map(|i| i + k.len()).unwrap_or(0);
        d[i..].split('"').next().unwrap_or("").to_string()
    };
    let mut renders = Vec::new();
    for pid in ["p0", "p5000", "p9999"] {
        let d = dom(&format!("{}/#/run/{run}/p/{pid}", server.base));
        assert!(d.contains(&format!("<h1>Problem {pid}</h1>")));
        renders.push(format!(
            "{pid}: route {} ms, since page load {} ms",
            attr(&d, "data-render-ms"),
            attr(&d, "data-since-load-ms")
        ));
    }
    let d2 = dom(&format!("{}/#/run/{run}", server.base));
    let list = attr(&d2, "data-render-ms");
    println!(
        "TIMING 10000 units: store opened and first problem shown after {open_ms} ms (chromium start included; first render {} ms); {}; problem list of 10000 rows {list} ms",
        attr(&d, "data-render-ms"),
        renders.join("; ")
    );
}
