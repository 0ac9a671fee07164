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
use stepwise_testkit::chromium;
use stepwise_view::Index;

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

/// A store in `dir` with a beam run and a weighted-SC run on the same 4 problems.
fn beam_and_weighted(dir: &Path) -> (PathBuf, i64, i64) {
    let data = dataset(dir, 4);
    let path = dir.join("runs.sqlite");
    let store = SqliteStore::open(&path).unwrap();
    let beam = solve_run(&store, &data, ScaleStrategy::Beam, 4);
    let maj = solve_run(&store, &data, ScaleStrategy::Weighted, 4);
    (path, beam, maj)
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
        truth_out: None,
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
/// from a thread of its own until the returned guard drops. Beside the explorer's routes
/// the test serves `/drive`, the explorer's own page with the test driver
/// (`tests/drive.js`) loaded after the page's script.
struct Server {
    base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

const INDEX_HTML: &str = include_str!("../assets/index.html");
const DRIVE_JS: &str = include_str!("drive.js");

impl Server {
    fn start(path: &Path) -> Self {
        use axum::http::header::CONTENT_TYPE;
        use axum::routing::get;
        let store: Arc<dyn RunStore> = Arc::new(SqliteStore::open_read_only(path).unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async move {
                let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(l.local_addr().unwrap()).unwrap();
                // as serve_on does: every run read before the first answer
                let index = Arc::new(Index::new(store));
                let ix = index.clone();
                tokio::task::spawn_blocking(move || ix.refresh().map(|_| ()))
                    .await
                    .unwrap()
                    .unwrap();
                let page = INDEX_HTML.replace(
                    "</head>",
                    "<script src=\"/drive.js\" defer></script>\n</head>",
                );
                assert!(page.contains("/drive.js"), "the page has no </head>");
                let app = stepwise_view::router(index)
                    .route(
                        "/drive",
                        get(move || async move { axum::response::Html(page) }),
                    )
                    .route(
                        "/drive.js",
                        get(|| async { ([(CONTENT_TYPE, "text/javascript")], DRIVE_JS) }),
                    );
                axum::serve(l, app)
                    .with_graceful_shutdown(async {
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

/// The DOM of `url` after its script ran (virtual time lets the fetches finish).
fn dom(url: &str) -> String {
    let d = chromium::dump_dom(url, Some(10_000));
    assert!(
        d.contains("data-ready=\"1\""),
        "{url} did not finish rendering:\n{d}"
    );
    assert!(!d.contains("id=\"error\""), "{url} rendered an error:\n{d}");
    d
}

/// What the page showed after each of `actions` (see `tests/drive.js`), the page opened
/// at the fragment `frag`: one JSON object per step, the first after loading.
fn drive(server: &Server, frag: &str, actions: &[&str]) -> Vec<serde_json::Value> {
    let url = format!(
        "{}/drive?do={}#{frag}",
        server.base,
        urlencode(&actions.join(","))
    );
    let d = chromium::dump_dom(&url, Some(30_000));
    const LOG: &str = "<pre id=\"drive-log\">";
    let start = d
        .find(LOG)
        .unwrap_or_else(|| panic!("the driver did not finish on {url}:\n{d}"));
    let text = &d[start + LOG.len()..];
    let text = &text[..text.find("</pre>").expect("the log's end")];
    let text = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    let log: Vec<serde_json::Value> = serde_json::from_str(&text).expect("the driver's log");
    assert_eq!(log.len(), actions.len() + 1, "{log:?}");
    for step in &log {
        assert!(step.get("error").is_none(), "driver on {url}: {step}");
        assert_eq!(step["ready"], true, "the page did not settle: {step}");
    }
    log
}

fn count(dom: &str, needle: &str) -> usize {
    dom.matches(needle).count()
}

#[test]
fn the_explorer_renders_every_view_in_headless_chromium() {
    if !chromium::available("the_explorer_renders_every_view_in_headless_chromium") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (path, beam, maj) = beam_and_weighted(dir.path());
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

/// Keyboard navigation, the tree's zoom and its folding, driven in the browser
/// (`tests/drive.js` sends the key presses and clicks; the DOM after each is asserted).
#[test]
fn keys_zoom_and_fold_change_the_page_in_headless_chromium() {
    if !chromium::available("keys_zoom_and_fold_change_the_page_in_headless_chromium") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (path, beam, maj) = beam_and_weighted(dir.path());
    let ix = Index::new(Arc::new(SqliteStore::open_read_only(&path).unwrap()));
    let server = Server::start(&path);
    let runs: Vec<String> = ix
        .refresh()
        .unwrap()
        .iter()
        .map(|r| r.summary.id.to_string())
        .collect();
    assert_eq!(runs.len(), 2);

    // runs list: j moves the selection down, k up, Enter opens the selected run
    let log = drive(&server, "/", &["key:j", "key:j", "key:k", "key:Enter"]);
    assert_eq!(log[0]["view"], "runs");
    assert_eq!(
        log[0]["sel"],
        serde_json::Value::Null,
        "nothing selected at first"
    );
    assert_eq!(log[1]["sel"], runs[0].as_str());
    assert_eq!(log[2]["sel"], runs[1].as_str());
    assert_eq!(log[3]["sel"], runs[0].as_str());
    assert_eq!(log[4]["view"], "run");
    assert_eq!(log[4]["hash"], format!("#/run/{}", runs[0]));

    // a run's problems: ArrowDown twice and Enter open the second problem; → and ← walk
    // the run's problems; `/` focuses the search box of the list
    let log = drive(
        &server,
        &format!("/run/{maj}"),
        &[
            "key:ArrowDown",
            "key:ArrowDown",
            "key:Enter",
            "key:ArrowRight",
            "key:ArrowRight",
            "key:ArrowLeft",
        ],
    );
    assert_eq!(log[0]["rows"], 4);
    assert_eq!(log[2]["sel"], "p1");
    let hashes: Vec<&str> = log[3..]
        .iter()
        .map(|s| s["hash"].as_str().unwrap())
        .collect();
    assert_eq!(
        hashes,
        [
            format!("#/run/{maj}/p/p1"),
            format!("#/run/{maj}/p/p2"),
            format!("#/run/{maj}/p/p3"),
            format!("#/run/{maj}/p/p2"),
        ]
    );
    assert!(log[3..].iter().all(|s| s["view"] == "problem"));
    let log = drive(&server, &format!("/run/{maj}"), &["key:/"]);
    assert_eq!(log[0]["focus"], "");
    assert_eq!(log[1]["focus"], "search");
    // the last problem has no next one: → changes nothing
    let log = drive(&server, &format!("/run/{maj}/p/p3"), &["key:ArrowRight"]);
    assert_eq!(log[1]["hash"], format!("#/run/{maj}/p/p3"));

    // the beam tree: + and − keys and the buttons zoom; folding hides subtrees
    let page = ix.problem_page(beam, "p1").unwrap();
    let tree = page.results[0].tree.as_ref().expect("beam stores its tree");
    let nodes = tree.nodes.len();
    let pruned = tree.nodes.iter().filter(|n| n.pruned.is_some()).count();
    assert!(pruned > 0 && nodes > 2);
    let log = drive(
        &server,
        &format!("/run/{beam}/p/p1/tree/0"),
        &[
            "key:+",
            "key:+",
            "key:-",
            "click:#zoom-reset",
            "click:#zoom-out",
            "click:#fold-pruned",
            "click:#fold-all",
            "click:#unfold-all",
            "click:li.node[data-id=\"0\"] > details > summary",
            "click:li.node[data-id=\"0\"] > details > summary",
        ],
    );
    let zooms: Vec<&str> = log.iter().map(|s| s["zoom"].as_str().unwrap()).collect();
    assert_eq!(
        zooms[..6],
        [
            "",
            "scale(1.25)",
            "scale(1.5)",
            "scale(1.25)",
            "scale(1)",
            "scale(0.75)"
        ]
    );
    let open: Vec<u64> = log.iter().map(|s| s["open"].as_u64().unwrap()).collect();
    let cards: Vec<u64> = log.iter().map(|s| s["cards"].as_u64().unwrap()).collect();
    assert_eq!(open[0] as usize, nodes, "every node unfolded at first");
    assert_eq!(cards[0] as usize, nodes, "every node shown at first");
    // fold pruned: the pruned nodes close (what hangs below them is hidden)
    assert_eq!(open[6] as usize, nodes - pruned);
    // fold all: only the root's card is left in view
    assert_eq!((open[7], cards[7]), (0, 1));
    assert_eq!(open[8] as usize, nodes);
    assert_eq!(cards[8] as usize, nodes);
    // the root's summary folds and unfolds the whole tree below it
    assert_eq!(open[9] as usize, nodes - 1);
    assert_eq!(cards[9], 1);
    assert_eq!(cards[10] as usize, nodes);
    assert!(log.iter().all(|s| s["view"] == "tree"));
    // zoom and folding are in the permalink: the hash after a zoom carries it, and the
    // tree opened at such a hash is zoomed and folded
    assert_eq!(
        log[1]["hash"],
        format!("#/run/{beam}/p/p1/tree/0?zoom=1.25")
    );
    let log = drive(
        &server,
        &format!("/run/{beam}/p/p1/tree/0?zoom=0.5&fold=pruned"),
        &[],
    );
    assert_eq!(log[0]["zoom"], "scale(0.5)");
    assert_eq!(log[0]["open"].as_u64().unwrap() as usize, nodes - pruned);
}

/// A store of 10,000 solve units: the time to open it (the index read) and the time the
/// page takes to render a problem, as the browser measured it (`performance.now()` in the
/// DOM). Reported (docs/results/view.md), not asserted: no timed tests.
#[test]
fn a_store_of_ten_thousand_units_renders_a_problem() {
    if !chromium::available("a_store_of_ten_thousand_units_renders_a_problem") {
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
