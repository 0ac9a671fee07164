//! The PostgreSQL store against a real server (a throwaway cluster started here):
//! the store seam behaves as SQLite's does, claims are exclusive and leased, an expired
//! lease is claimed again, a late write changes nothing, and every way of failing to
//! open says what is wrong.

use serde_json::json;
use std::time::Duration;
use stepwise_core::Problem;
use stepwise_store::pg::TempCluster;
use stepwise_store::{
    PgStore, RunStatus, RunStore, SampleRow, SqliteStore, StepLabelRow, StepScoreRow, StoreError,
    StoreOptions, UnitRecord,
};

fn cluster() -> TempCluster {
    TempCluster::start().unwrap_or_else(|e| panic!("{e}"))
}

fn store(c: &TempCluster, lease: Duration) -> PgStore {
    PgStore::connect(&c.url(), &StoreOptions { lease }).unwrap()
}

fn unit(key: &str, n: u32) -> UnitRecord {
    let mut u = UnitRecord::new(key, format!("p-{key}"), json!({"answer": key, "n": n}));
    for s in 0..n {
        let mut row = SampleRow::new(s, format!("sample {s} of {key}"));
        row.answer = (s % 2 == 0).then(|| s.to_string());
        row.correct = (s > 0).then_some(s % 3 == 0);
        row.tokens = Some(u64::from(s) * 7);
        row.extra = if s == 1 {
            json!({"t": 0.5})
        } else {
            json!(null)
        };
        u.samples.push(row);
        for step in 0..2 {
            for scorer in ["b", "a"] {
                u.step_scores.push(StepScoreRow {
                    sample_idx: s,
                    step_idx: step,
                    scorer: scorer.into(),
                    score: f64::from(step) / 3.0,
                });
            }
            u.step_labels.push(StepLabelRow {
                sample_idx: s,
                step_idx: step,
                method: "mc".into(),
                label: 0.25,
            });
        }
    }
    u.step_scores.sort_by(|x, y| {
        (x.sample_idx, x.step_idx, &x.scorer).cmp(&(y.sample_idx, y.step_idx, &y.scorer))
    });
    u
}

#[test]
fn stores_what_sqlite_stores() {
    let c = cluster();
    let pg = store(&c, Duration::from_secs(30));
    let lite = SqliteStore::in_memory().unwrap();
    let problems: Vec<Problem> = (0..3)
        .map(|i| Problem::new(format!("q{i}"), format!("what is {i}?")).with_gold("1"))
        .collect();
    let cfg = json!({"k": 2, "name": "x", "f": 0.1});
    for s in [&pg as &dyn RunStore, &lite] {
        let run = s
            .create_run_with_problems("solve", 2, &cfg, &problems[..2])
            .unwrap();
        s.add_problems(run, &problems).unwrap();
        assert!(s.record(run, &unit("a", 3)).unwrap());
        assert!(s.record(run, &unit("b", 0)).unwrap());
        assert!(
            !s.record(run, &unit("a", 1)).unwrap(),
            "a unit is stored once"
        );
        assert!(matches!(
            s.record(999, &unit("c", 1)),
            Err(StoreError::NoSuchRun { id: 999, .. })
        ));
        s.set_status(run, RunStatus::Failed, Some("unit 'c': boom"))
            .unwrap();
    }
    let (a, b) = (pg.run(1).unwrap(), lite.run(1).unwrap());
    assert_eq!(
        (
            a.kind.as_str(),
            a.version,
            &a.config,
            a.status,
            &a.error,
            a.problems,
            a.units
        ),
        (
            b.kind.as_str(),
            b.version,
            &b.config,
            b.status,
            &b.error,
            b.problems,
            b.units
        )
    );
    assert_eq!(
        a.created.len(),
        "2026-01-01T00:00:00Z".len(),
        "{}",
        a.created
    );
    assert_eq!(pg.problems(1).unwrap(), lite.problems(1).unwrap());
    let strip = |s: &dyn RunStore| -> Vec<UnitRecord> {
        s.units(1).unwrap().into_iter().map(|u| u.unit).collect()
    };
    assert_eq!(strip(&pg), strip(&lite));
    assert_eq!(pg.done_keys(1).unwrap(), lite.done_keys(1).unwrap());
    let info = pg.open_run(1, "solve", 2, &cfg).unwrap();
    assert_eq!(info.status, RunStatus::Running);
    let e = pg
        .open_run(1, "solve", 2, &json!({"k": 3, "name": "x", "f": 0.1}))
        .unwrap_err();
    assert!(e.to_string().contains("config.k: stored 2, given 3"), "{e}");
    // a second connection (another worker) sees the same runs
    let other = store(&c, Duration::from_secs(30));
    assert_eq!(other.list_runs().unwrap().len(), 1);
}

#[test]
fn claims_are_exclusive_and_an_expired_lease_is_claimed_again() {
    let c = cluster();
    let lease = Duration::from_millis(800);
    let a = store(&c, lease);
    let b = store(&c, lease);
    assert_ne!(a.worker(), b.worker());
    let run = a.create_run("scale", 2, &json!({})).unwrap();
    let keys: Vec<String> = (0..6).map(|i| format!("u{i}")).collect();
    a.register_units(run, &keys).unwrap();
    b.register_units(run, &keys).unwrap(); // idempotent
    let got_a = a.claim_units(run, &keys, 2).unwrap();
    assert_eq!(got_a, ["u0", "u1"], "claims follow the job's order");
    let got_b = b.claim_units(run, &keys, 10).unwrap();
    assert_eq!(got_b, ["u2", "u3", "u4", "u5"], "no unit twice");
    assert!(a.claim_units(run, &keys, 10).unwrap().is_empty());
    let workers = a.workers(run).unwrap();
    assert_eq!(workers.len(), 2);
    assert_eq!(workers.iter().map(|w| w.units).sum::<usize>(), 6);
    // `data runs` shows the run's progress and its live workers with what they hold
    let listed = stepwise_store::listing::runs(&a, false).unwrap();
    for (w, n) in [(a.worker(), 2), (b.worker(), 4)] {
        let line = format!("worker {}: {n} unit(s) in hand, lease until", w.unwrap());
        assert!(listed.contains(&line), "{line} in\n{listed}");
    }
    assert!(listed.contains("0/6 (0%)"), "{listed}");

    // b finishes u2 and stops (its claims are released); a renews, then "dies" on u0
    assert!(b.record(run, &unit("u2", 1)).unwrap());
    b.release_units(run).unwrap();
    assert_eq!(a.renew_leases(run).unwrap(), 2);
    let got = a.claim_units(run, &keys, 10).unwrap();
    assert_eq!(got, ["u3", "u4", "u5"], "released units are free at once");
    assert!(
        b.claim_units(run, &keys, 10).unwrap().is_empty(),
        "a's leases are live"
    );

    std::thread::sleep(lease + Duration::from_millis(300));
    assert!(
        a.workers(run).unwrap().is_empty(),
        "every lease of a has expired"
    );
    let reclaimed = b.claim_units(run, &keys, 10).unwrap();
    assert_eq!(reclaimed, ["u0", "u1", "u3", "u4", "u5"]);
    assert_eq!(
        a.renew_leases(run).unwrap(),
        0,
        "a dead worker renews nothing it lost"
    );
    assert!(b.record(run, &unit("u0", 2)).unwrap());
    // the late write of the dead worker changes nothing
    assert!(!a.record(run, &unit("u0", 5)).unwrap());
    let units = b.units(run).unwrap();
    let u0: Vec<_> = units.iter().filter(|u| u.unit.key == "u0").collect();
    assert_eq!(u0.len(), 1);
    assert_eq!(u0[0].unit, unit("u0", 2));
    // a late write of a unit nobody has finished is stored, and frees the unit
    assert!(a.record(run, &unit("u1", 1)).unwrap());
    assert_eq!(b.workers(run).unwrap()[0].units, 3);
    let listed = stepwise_store::listing::runs(&b, false).unwrap();
    assert!(listed.contains("3/6 (50%)"), "{listed}");
    assert!(
        !listed.contains(&a.worker().unwrap()),
        "a holds nothing: {listed}"
    );
}

#[test]
fn opening_fails_clearly() {
    let c = cluster();
    let o = StoreOptions::default();
    let e = PgStore::connect(&c.url_with_password("wrong"), &o).unwrap_err();
    assert!(matches!(e, StoreError::Credentials { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("refused the credentials of user 'stepwise'") && !msg.contains("wrong"),
        "{msg}"
    );

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = stepwise_store::open(&format!("postgres://stepwise:x@127.0.0.1:{port}/postgres"))
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(e, StoreError::Unreachable { .. }), "{e:?}");
    assert!(
        e.to_string().contains(&format!(
            "cannot reach the PostgreSQL run store at postgres://stepwise@127.0.0.1:{port}/postgres"
        )),
        "{e}"
    );

    // a schema written by a newer stepwise is refused, naming both versions
    let s = stepwise_store::open(&c.url()).unwrap();
    drop(s);
    let mut client = postgres::Client::connect(&c.url(), postgres::NoTls).unwrap();
    client
        .execute("UPDATE stepwise_schema SET version = 99", &[])
        .unwrap();
    let e = stepwise_store::open(&c.url()).map(|_| ()).unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::NewerSchema {
                found: 99,
                known: 1,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("schema version 99 is newer"), "{e}");
}

#[test]
fn a_read_only_store_reads_runs_and_the_server_refuses_its_writes() {
    let c = cluster();
    // nothing there yet: the reader says a writer creates the schema
    let e = stepwise_store::open_read_only(&c.url())
        .map(|_| ())
        .unwrap_err();
    assert!(e.to_string().contains("to create it"), "{e}");

    let w = store(&c, Duration::from_secs(30));
    let run = w.create_run("scale", 2, &json!({"n": [1, 2]})).unwrap();
    w.register_units(run, &["a".into(), "b".into(), "c".into()])
        .unwrap();
    assert!(w.record(run, &unit("a", 1)).unwrap());

    let r = stepwise_store::open_read_only(&c.url()).unwrap();
    let info = r.run(run).unwrap();
    assert_eq!((info.kind.as_str(), info.units), ("scale", 1));
    assert_eq!(info.total, Some(3), "registered units are the run's total");
    assert_eq!(info.progress(), "1/3 (33%)");
    assert_eq!(r.units(run).unwrap()[0].unit, unit("a", 1));
    let e = r.create_run("solve", 1, &json!({})).unwrap_err();
    let StoreError::Postgres { what, source, .. } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(what, "creating a run");
    assert_eq!(
        source.code(),
        Some(&postgres::error::SqlState::READ_ONLY_SQL_TRANSACTION),
        "{e:?}"
    );
    assert_eq!(w.list_runs().unwrap().len(), 1, "nothing was written");
}

#[test]
fn a_store_opened_and_dropped_inside_an_async_runtime_does_not_panic() {
    let c = cluster();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let s = stepwise_store::open(&c.url()).unwrap();
        assert!(s.list_runs().unwrap().is_empty());
        drop(s);
    });
}

/// A worker that registers a run's units while another writes one can re-insert the
/// claim of a unit its snapshot did not yet see written (the write deleted the claim
/// row, the insert no longer conflicts). Such a claim must not count as work left: the
/// run's total stays its number of units.
#[test]
fn a_claim_left_for_a_written_unit_is_not_counted_as_work_left() {
    let c = cluster();
    let pg = store(&c, Duration::from_secs(30));
    let run = pg.create_run("solve", 2, &json!({"k": 1})).unwrap();
    let keys = vec!["a".to_string(), "b".to_string()];
    pg.register_units(run, &keys).unwrap();
    assert_eq!(
        pg.claim_units(run, &keys, 1).unwrap(),
        vec!["a".to_string()]
    );
    assert!(pg.record(run, &unit("a", 1)).unwrap());
    // the race's result, made directly: a claim row for the written unit
    let mut raw = postgres::Client::connect(&c.url(), postgres::NoTls).unwrap();
    raw.execute(
        "INSERT INTO unit_claims (run_id, unit_key, ord) VALUES ($1, 'a', 1)",
        &[&run],
    )
    .unwrap();
    let info = pg.run(run).unwrap();
    assert_eq!((info.units, info.total), (1, Some(2)));
    assert!(pg.record(run, &unit("b", 1)).unwrap());
    pg.set_status(run, RunStatus::Done, None).unwrap();
    let info = pg.run(run).unwrap();
    assert_eq!((info.units, info.total), (2, Some(2)));
}
