//! Hostile programs against the sandbox: each must come back with its typed outcome
//! within its limits, and leave the host as it was.

use std::time::Instant;

use stepwise_sandbox::{Limits, Outcome, Sandbox};

fn sandbox(limits: Limits) -> Sandbox {
    Sandbox::new(limits).expect("python3 in /usr/bin")
}

fn quick() -> Limits {
    Limits {
        cpu_secs: 2,
        wall_ms: 3_000,
        ..Limits::default()
    }
}

/// Live processes whose process group is `pgid`, from /proc. Zombies are not counted:
/// killed orphans wait there for init to reap them (a container's init may be slow to),
/// and hold no memory or CPU.
fn group_members(pgid: u32) -> usize {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| {
            // pid (comm) state ppid pgrp ...: comm may hold spaces, so split after ')'
            let fields: Vec<&str> = stat
                .rsplit_once(')')
                .map(|(_, rest)| rest.split_whitespace().collect())
                .unwrap_or_default();
            fields.first() != Some(&"Z")
                && fields.get(2).and_then(|p| p.parse::<u32>().ok()) == Some(pgid)
        })
        .count()
}

#[test]
fn a_plain_program_reads_stdin_and_prints() {
    let r = sandbox(quick())
        .run(
            "import sys\nprint(sum(int(x) for x in sys.stdin.read().split()))",
            "2 3 4\n",
        )
        .unwrap();
    assert_eq!(
        r.outcome,
        Outcome::Ok {
            stdout: "9\n".into()
        }
    );
}

#[test]
fn an_exception_is_an_error_with_stderr_and_code() {
    let r = sandbox(quick()).run("1/0", "").unwrap();
    match r.outcome {
        Outcome::Error { stderr, code } => {
            assert!(stderr.contains("ZeroDivisionError"), "{stderr}");
            assert_eq!(code, Some(1));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_infinite_loop_times_out() {
    let t = Instant::now();
    let r = sandbox(quick()).run("while True:\n    pass\n", "").unwrap();
    assert_eq!(r.outcome, Outcome::Timeout);
    // CPU limit 2 s (+1 hard), wall 3 s
    assert!(t.elapsed().as_secs_f64() < 5.0, "{:?}", t.elapsed());
}

#[test]
fn a_sleeping_program_times_out_on_the_wall_clock() {
    let limits = Limits {
        wall_ms: 500,
        ..quick()
    };
    let t = Instant::now();
    let r = sandbox(limits)
        .run("import time\ntime.sleep(30)", "")
        .unwrap();
    assert_eq!(r.outcome, Outcome::Timeout);
    assert!(t.elapsed().as_secs_f64() < 2.0, "{:?}", t.elapsed());
}

#[test]
fn a_fork_bomb_is_contained_and_leaves_nothing_behind() {
    let bomb =
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n";
    let t = Instant::now();
    let r = sandbox(quick()).run(bomb, "").unwrap();
    assert_eq!(r.outcome, Outcome::Timeout, "{r:?}");
    assert!(t.elapsed().as_secs_f64() < 6.0, "{:?}", t.elapsed());
    // the whole group was killed
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(group_members(r.pid), 0, "processes of the bomb survived");
    // and RLIMIT_NPROC held it: the host can still start processes
    assert!(
        std::process::Command::new("true")
            .status()
            .unwrap()
            .success()
    );
}

#[test]
fn forks_are_capped_at_max_processes() {
    let code = "import os\nn = 0\nkids = []\nfor _ in range(100):\n    try:\n        pid = os.fork()\n    except OSError:\n        break\n    if pid == 0:\n        import time; time.sleep(5); os._exit(0)\n    kids.append(pid)\nprint(len(kids))\n";
    let r = sandbox(quick()).run(code, "").unwrap();
    let Outcome::Ok { stdout } = &r.outcome else {
        panic!("{r:?}")
    };
    let n: u64 = stdout.trim().parse().unwrap();
    assert!(n < Limits::default().max_processes, "{n} forks succeeded");
    // the sleeping children were killed with the group when the parent ended
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(group_members(r.pid), 0);
}

#[test]
fn a_10_gb_allocation_hits_the_memory_limit() {
    let t = Instant::now();
    let r = sandbox(quick())
        .run("x = bytearray(10 * 1024**3)\nprint(len(x))", "")
        .unwrap();
    assert_eq!(r.outcome, Outcome::MemoryLimit, "{r:?}");
    assert!(t.elapsed().as_secs_f64() < 3.0);
}

#[test]
fn printing_1_gb_stops_at_the_output_cap_quickly() {
    let t = Instant::now();
    let code = "import sys\nchunk = 'x' * 1024 * 1024\nfor _ in range(1024):\n    sys.stdout.write(chunk)\n";
    let r = sandbox(quick()).run(code, "").unwrap();
    assert_eq!(r.outcome, Outcome::OutputLimit);
    assert_eq!(r.stdout.len(), Limits::default().max_output_bytes);
    assert!(t.elapsed().as_secs_f64() < 2.0, "{:?}", t.elapsed());
}

#[test]
fn the_program_runs_in_a_private_folder_with_a_minimal_environment() {
    let code = "import os, json\nopen('note.txt', 'w').write('hi')\nprint(json.dumps({'cwd': os.getcwd(), 'home': os.environ.get('HOME'), 'env': sorted(os.environ), 'files': sorted(os.listdir('.'))}))";
    let r = sandbox(quick()).run(code, "").unwrap();
    let Outcome::Ok { stdout } = &r.outcome else {
        panic!("{r:?}")
    };
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    let cwd = v["cwd"].as_str().unwrap();
    assert!(cwd.contains("stepwise-sandbox-"), "{cwd}");
    assert_eq!(v["home"].as_str(), Some(cwd));
    let env: Vec<&str> = v["env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s.as_str())
        .collect();
    assert_eq!(env, ["HOME", "LANG", "PATH", "TMPDIR"]);
    assert_eq!(v["files"], serde_json::json!(["main.py", "note.txt"]));
    // the folder is gone afterwards
    assert!(!std::path::Path::new(cwd).exists());
}

#[test]
fn writing_outside_its_folder_does_not_reach_the_host() {
    let target = std::env::current_dir().unwrap().join("sandbox-escape.txt");
    let home_target = std::env::var("HOME")
        .map(|h| std::path::PathBuf::from(h).join("sandbox-escape.txt"))
        .unwrap();
    let code = format!(
        "import os\nres = []\nfor p in [{:?}, os.path.expanduser('~/sandbox-escape.txt'), {:?}]:\n    try:\n        open(p, 'w').write('escaped')\n        res.append('wrote ' + p)\n    except OSError as e:\n        res.append('refused ' + p)\nprint('\\n'.join(res))\n",
        target.display().to_string(),
        home_target.display().to_string()
    );
    let r = sandbox(quick()).run(&code, "").unwrap();
    let Outcome::Ok { stdout } = &r.outcome else {
        panic!("{r:?}")
    };
    let root = rustix_is_root();
    let fenced = r.isolation.landlock_abi.is_some();
    assert_eq!(fenced, sb_abi().is_ok(), "{:?}", r.isolation);
    // `~` is the private folder: that write lands there and vanishes with it
    assert!(stdout.contains("stepwise-sandbox-"), "{stdout}");
    if root || fenced {
        for p in [&target, &home_target] {
            assert!(!p.exists(), "wrote {}", p.display());
            assert!(
                stdout.contains(&format!("refused {}", p.display())),
                "{stdout}"
            );
        }
    } else {
        let _ = std::fs::remove_file(&target);
        let _ = std::fs::remove_file(&home_target);
        println!(
            "SKIPPED (partly): not root and no Landlock on this kernel, so the program keeps \
             this user's write permissions; only `~` is redirected to the private folder"
        );
    }
}

fn sb_abi() -> Result<u32, String> {
    sandbox(quick()).filesystem_isolation()
}

#[test]
fn the_fence_leaves_the_system_readable_and_refuses_writes_to_world_writable_places() {
    let Ok(abi) = sb_abi() else {
        println!("SKIPPED: no Landlock on this kernel; the fence test needs it");
        return;
    };
    // /tmp is world-writable, so neither uid nor permissions stop this write: only the
    // fence does. Reading the system (the standard library, /etc) still works.
    let outside = std::env::temp_dir().join(format!("sandbox-fence-{}.txt", std::process::id()));
    let code = format!(
        "import os, json, decimal\nopen('/etc/hostname').read() if os.path.exists('/etc/hostname') else None\nopen('inside.txt', 'w').write('ok')\nopen('/dev/null', 'w').write('x')\ntry:\n    open({:?}, 'w').write('escaped')\n    print('wrote')\nexcept PermissionError:\n    print('refused')\n",
        outside.display().to_string()
    );
    let r = sandbox(quick()).run(&code, "").unwrap();
    let Outcome::Ok { stdout } = &r.outcome else {
        panic!("{r:?}")
    };
    assert_eq!(stdout.trim(), "refused");
    assert!(!outside.exists());
    assert_eq!(r.isolation.landlock_abi, Some(abi));
    assert_eq!(r.isolation.landlock_note, None);
}

#[test]
fn killing_a_process_outside_the_run_fails() {
    let Ok(abi) = sb_abi() else {
        println!("SKIPPED: no Landlock on this kernel; the signal-scope test needs it");
        return;
    };
    if abi < 6 {
        println!("SKIPPED: Landlock ABI {abi} < 6 scopes no signals");
        return;
    }
    // A process outside the run with the program's own uid (`nobody` when the tests run
    // as root), which uid checks alone would let it signal: only the fence stops it.
    let mut target = std::process::Command::new("sleep");
    target.arg("30");
    if rustix_is_root() {
        use std::os::unix::process::CommandExt;
        target.uid(65534).gid(65534);
    }
    let mut target = target.spawn().unwrap();
    let pid = target.id();
    let code = format!(
        "import os\ntry:\n    os.kill({pid}, 15)\n    print('could signal')\nexcept PermissionError:\n    print('refused')\n"
    );
    let r = sandbox(quick()).run(&code, "");
    let alive = target.try_wait().unwrap().is_none();
    let _ = target.kill();
    let _ = target.wait();
    let r = r.unwrap();
    let Outcome::Ok { stdout } = &r.outcome else {
        panic!("{r:?}")
    };
    assert_eq!(stdout.trim(), "refused");
    assert!(alive, "the program killed a process outside the run");
}

#[test]
fn filesystem_isolation_can_be_required() {
    let limits = Limits {
        require_filesystem_isolation: true,
        ..quick()
    };
    match (sb_abi(), sandbox(limits).run("print(1)", "")) {
        (Ok(_), Ok(r)) => assert!(r.isolation.landlock_abi.is_some()),
        (Err(_), Err(e)) => assert!(e.to_string().contains("Landlock"), "{e}"),
        (abi, run) => panic!("{abi:?} vs {run:?}"),
    }
}

fn rustix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

#[test]
fn opening_a_socket_to_localhost_fails() {
    // a listener on the host's loopback that the program must not reach
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let sb = sandbox(quick());
    if let Err(why) = sb.network_isolation() {
        println!("SKIPPED: no network namespace on this kernel ({why}); the socket test needs one");
        return;
    }
    let code = format!(
        "import socket\ns = socket.socket()\ns.settimeout(2)\ntry:\n    s.connect(('127.0.0.1', {port}))\n    print('connected')\nexcept OSError as e:\n    print('refused', e.errno)\n"
    );
    let r = sb.run(&code, "").unwrap();
    let Outcome::Ok { stdout } = &r.outcome else {
        panic!("{r:?}")
    };
    assert!(stdout.starts_with("refused"), "{stdout}");
    assert!(r.isolation.network_namespace);
    drop(listener);
}
