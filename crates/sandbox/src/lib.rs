//! A sandbox for model-written Python.
//!
//! [`Sandbox::run`] runs a program in a child process of its own and returns a typed
//! [`Outcome`]: `Ok` (exit 0, with its stdout), `Timeout` (wall time or CPU time),
//! `MemoryLimit`, `OutputLimit` or `Error` (any other failure, with its stderr and exit
//! code). Between `fork` and `exec` the child ([`child`]):
//!
//! - starts a session of its own (`setsid`), so the whole process group is killed at the
//!   wall-time limit, past the output cap and always when the program ends (orphans too);
//!   it is also killed when the thread that started it dies (`PR_SET_PDEATHSIG`);
//! - gets `RLIMIT_CPU`, `RLIMIT_AS` (memory), `RLIMIT_FSIZE`, `RLIMIT_NOFILE`, no core
//!   files, and `RLIMIT_NPROC` (a fork bomb runs out of processes);
//! - when stepwise runs as root, drops to uid/gid 65534 (`nobody`) with no supplementary
//!   groups: root is exempt from `RLIMIT_NPROC`, and `nobody` cannot write the host's files;
//! - enters a new user and network namespace (`unshare(CLONE_NEWUSER | CLONE_NEWNET)`):
//!   no interface but a loopback that is down, so no connection anywhere, 127.0.0.1
//!   included. Where the kernel refuses it (no unprivileged user namespaces), runs go on
//!   without it: a `tracing::warn!` says so once and every [`RunResult`] carries
//!   `isolation.network_namespace = false` with the reason;
//! - sets `no_new_privs`, and runs in a fresh temporary folder (its cwd, `HOME` and
//!   `TMPDIR`, removed afterwards) with an empty environment but `PATH`, `HOME`, `TMPDIR`
//!   and `LANG`; Python starts isolated (`-I`: no user site, no `PYTHON*` variables, no
//!   cwd on `sys.path`), without `site` (`-S`, unless [`Limits::site_packages`]) and
//!   writes no bytecode (`-B`).
//!
//! The output is read through pipes with a cap ([`Limits::max_output_bytes`], stdout and
//! stderr each); past it the group is killed and the outcome is `OutputLimit`.
//!
//! - enters a Landlock domain last ([`fence`], where the kernel has Landlock): the whole
//!   filesystem read-only but its folder and `/dev/null`, no TCP `bind` or `connect`
//!   (ABI 4), no signals to processes outside the run and no abstract UNIX sockets made
//!   outside it (ABI 6). Where the kernel has none, a `tracing::warn!` says so once and
//!   every [`RunResult`] carries `isolation.landlock_abi = None` with the reason
//!   ([`Limits::require_filesystem_isolation`] refuses to run instead).
//!
//! Writes outside the folder: Landlock refuses them, whoever the program runs as.
//! Without Landlock, as root the program runs as `nobody`, which can write only
//! world-writable places (`/tmp` itself is one); as another user it has that user's
//! permissions. The sandbox never gives it a path outside its folder.
//!
//! Blocking API (a run waits for its child); async callers use `spawn_blocking`.

mod child;
mod fence;

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// uid and gid the child drops to when stepwise runs as root.
pub const NOBODY: u32 = 65534;

/// The limits of one run. Defaults fit a short checking script (GenPRM's snippets, a
/// test case of a coding reward).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// CPU seconds (`RLIMIT_CPU`; SIGXCPU then SIGKILL one second later).
    pub cpu_secs: u64,
    /// Wall-clock milliseconds before the process group is killed.
    pub wall_ms: u64,
    /// Address space in bytes (`RLIMIT_AS`).
    pub memory_bytes: u64,
    /// Bytes read from stdout (and, separately, from stderr) before the group is killed.
    pub max_output_bytes: usize,
    /// Processes and threads the program may have (`RLIMIT_NPROC`, the interpreter
    /// included).
    pub max_processes: u64,
    /// Largest file the program may write (`RLIMIT_FSIZE`).
    pub max_file_bytes: u64,
    /// Load `site` (the interpreter's site-packages, e.g. a venv's sympy); off by default.
    pub site_packages: bool,
    /// Refuse to run where no network namespace can be made, instead of warning.
    pub require_network_isolation: bool,
    /// Refuse to run where the kernel has no Landlock (no filesystem fence), instead of
    /// warning.
    pub require_filesystem_isolation: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            cpu_secs: 5,
            wall_ms: 10_000,
            memory_bytes: 512 << 20,
            max_output_bytes: 1 << 20,
            max_processes: 16,
            max_file_bytes: 16 << 20,
            site_packages: false,
            require_network_isolation: false,
            require_filesystem_isolation: false,
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    /// Exit status 0.
    Ok { stdout: String },
    /// Killed at the wall-time limit, or by the CPU-time limit.
    Timeout,
    /// The program ran out of address space (Python's `MemoryError`, a failed mmap).
    MemoryLimit,
    /// stdout or stderr passed [`Limits::max_output_bytes`].
    OutputLimit,
    /// Any other failure: a non-zero exit (`code`), or a signal (`code` = 128 + signal).
    Error { stderr: String, code: Option<i32> },
}

impl Outcome {
    /// The short name (`ok`, `timeout`, `memory_limit`, `output_limit`, `error`).
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::Ok { .. } => "ok",
            Outcome::Timeout => "timeout",
            Outcome::MemoryLimit => "memory_limit",
            Outcome::OutputLimit => "output_limit",
            Outcome::Error { .. } => "error",
        }
    }
}

/// What isolation a run had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Isolation {
    /// The run had a network namespace of its own (no network).
    pub network_namespace: bool,
    /// Why not, when it had none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_note: Option<String>,
    /// The uid the program ran as.
    pub uid: u32,
    /// The kernel's Landlock ABI when the run was fenced by it ([`fence`]); `None` when
    /// the filesystem was not fenced (results stored before the fence existed read so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub landlock_abi: Option<u32>,
    /// Why not, when it was not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub landlock_note: Option<String>,
}

/// One run: its outcome, what it wrote (capped), how long it took, its isolation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunResult {
    pub outcome: Outcome,
    /// stdout as read (up to the cap), whatever the outcome.
    pub stdout: String,
    /// stderr as read (up to the cap).
    pub stderr: String,
    pub elapsed_ms: u64,
    pub isolation: Isolation,
    /// The child's pid, which was also its process group (all killed when the run ended).
    pub pid: u32,
}

/// A run that could not be started or watched (never the program's own failure, which is
/// an [`Outcome`]).
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("sandbox: no Python interpreter named {0} in /usr/local/bin, /usr/bin or /bin")]
    NoPython(String),
    #[error("sandbox: temporary folder: {0}")]
    TempDir(#[source] std::io::Error),
    #[error(
        "sandbox: cannot start {python}: {source} (as root the program runs as uid 65534, \
         so the interpreter and its folders must be readable by it)"
    )]
    Spawn {
        python: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("sandbox: waiting for the child: {0}")]
    Wait(#[source] std::io::Error),
    #[error("sandbox: no network namespace can be made here ({0}) and the limits require one")]
    NoNetworkIsolation(String),
    #[error("sandbox: no Landlock filesystem fence here ({0}) and the limits require one")]
    NoFilesystemIsolation(String),
    #[error("sandbox: {0}")]
    Fence(String),
}

/// Runs Python programs under [`Limits`].
#[derive(Debug, Clone)]
pub struct Sandbox {
    python: PathBuf,
    limits: Limits,
}

const SAFE_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

impl Sandbox {
    /// The system's `python3` (looked up in `/usr/local/bin`, `/usr/bin`, `/bin`, never
    /// the caller's `PATH`).
    pub fn new(limits: Limits) -> Result<Sandbox, SandboxError> {
        let python = SAFE_PATH
            .split(':')
            .map(|dir| Path::new(dir).join("python3"))
            .find(|p| p.is_file())
            .ok_or_else(|| SandboxError::NoPython("python3".into()))?;
        Ok(Sandbox { python, limits })
    }

    /// A given interpreter (a venv's `python`, for [`Limits::site_packages`]).
    pub fn with_python(python: impl Into<PathBuf>, limits: Limits) -> Sandbox {
        Sandbox {
            python: python.into(),
            limits,
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn python(&self) -> &Path {
        &self.python
    }

    /// Whether runs get a network namespace here (probed once per process), with the
    /// reason when not.
    pub fn network_isolation(&self) -> Result<(), String> {
        probe_network(&self.python).clone()
    }

    /// The kernel's Landlock ABI, which fences every run's filesystem, TCP and signals
    /// (probed once per process), with the reason when there is none.
    pub fn filesystem_isolation(&self) -> Result<u32, String> {
        fence::kernel_abi().clone()
    }

    /// Runs `code` as `main.py` in a fresh folder, `stdin` on its standard input.
    pub fn run(&self, code: &str, stdin: &str) -> Result<RunResult, SandboxError> {
        let net = self.network_isolation();
        if let (Err(why), true) = (&net, self.limits.require_network_isolation) {
            return Err(SandboxError::NoNetworkIsolation(why.clone()));
        }
        let abi = self.filesystem_isolation();
        if let (Err(why), true) = (&abi, self.limits.require_filesystem_isolation) {
            return Err(SandboxError::NoFilesystemIsolation(why.clone()));
        }
        let drop_to_nobody = rustix::process::geteuid().is_root();
        let dir = tempfile::Builder::new()
            .prefix("stepwise-sandbox-")
            .tempdir()
            .map_err(SandboxError::TempDir)?;
        let script = dir.path().join("main.py");
        std::fs::write(&script, code).map_err(SandboxError::TempDir)?;
        if drop_to_nobody {
            std::os::unix::fs::chown(dir.path(), Some(NOBODY), Some(NOBODY))
                .map_err(SandboxError::TempDir)?;
        }
        // Kept open here until the spawn returns: the child restricts itself with it.
        let ruleset = match &abi {
            Ok(abi) => Some(fence::ruleset(*abi, dir.path()).map_err(SandboxError::Fence)?),
            Err(_) => None,
        };
        let plan = child::Plan {
            limits: self.limits.clone(),
            drop_to_nobody,
            network_namespace: net.is_ok(),
            landlock: ruleset.as_ref().map(|fd| fd.as_raw_fd()),
        };
        let mut cmd = Command::new(&self.python);
        cmd.arg("-I");
        if !self.limits.site_packages {
            cmd.arg("-S");
        }
        cmd.arg("-B")
            .arg("main.py")
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", SAFE_PATH)
            .env("HOME", dir.path())
            .env("TMPDIR", dir.path())
            .env("LANG", "C.UTF-8")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        child::install(&mut cmd, plan);

        let started = Instant::now();
        let mut proc = cmd.spawn().map_err(|source| SandboxError::Spawn {
            python: self.python.clone(),
            source,
        })?;
        drop(ruleset);
        let pid = proc.id();
        let overflow = Arc::new(AtomicBool::new(false));
        let cap = self.limits.max_output_bytes;
        let (tx, rx) = mpsc::channel::<(bool, Vec<u8>)>();
        for (is_err, pipe) in [
            (
                false,
                proc.stdout
                    .take()
                    .map(|p| Box::new(p) as Box<dyn Read + Send>),
            ),
            (
                true,
                proc.stderr
                    .take()
                    .map(|p| Box::new(p) as Box<dyn Read + Send>),
            ),
        ] {
            let Some(pipe) = pipe else { continue };
            let tx = tx.clone();
            let overflow = overflow.clone();
            std::thread::spawn(move || {
                let bytes = read_capped(pipe, cap, pid, &overflow);
                let _ = tx.send((is_err, bytes));
            });
        }
        drop(tx);
        if let Some(mut input) = proc.stdin.take() {
            let stdin = stdin.as_bytes().to_vec();
            // A program that never reads its input must not block the run: the writer is
            // a thread of its own and a broken pipe ends it.
            std::thread::spawn(move || {
                let _ = input.write_all(&stdin);
            });
        }

        let wall = Duration::from_millis(self.limits.wall_ms);
        let mut timed_out = false;
        let mut pause = Duration::from_millis(1);
        let status: ExitStatus = loop {
            match proc.try_wait().map_err(SandboxError::Wait)? {
                Some(status) => break status,
                None if started.elapsed() >= wall => {
                    timed_out = true;
                    let _ = kill_group(pid);
                    break proc.wait().map_err(SandboxError::Wait)?;
                }
                None => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
            }
        };
        // Whatever the program left behind (a daemonized child, fork-bomb survivors)
        // goes with it. A child forked while the group was being killed can miss one
        // kill, so the kill repeats until the group is gone (or only zombies are left,
        // which the kill still finds until init reaps them: 200 ms at most).
        for _ in 0..20 {
            if !kill_group(pid) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        // Readers end when every holder of the pipes is dead; one that escaped the group
        // (setsid of its own) cannot hold the run past a short grace.
        let grace = Instant::now() + Duration::from_millis(500);
        for _ in 0..2 {
            let left = grace.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok((false, bytes)) => stdout = bytes,
                Ok((true, bytes)) => stderr = bytes,
                Err(_) => break,
            }
        }
        let stdout = String::from_utf8_lossy(&stdout).into_owned();
        let stderr = String::from_utf8_lossy(&stderr).into_owned();
        let outcome = classify(
            status,
            timed_out,
            overflow.load(Ordering::SeqCst),
            &stdout,
            &stderr,
        );
        let uid = if drop_to_nobody {
            NOBODY
        } else {
            rustix::process::geteuid().as_raw()
        };
        Ok(RunResult {
            outcome,
            stdout,
            stderr,
            elapsed_ms: started.elapsed().as_millis() as u64,
            isolation: Isolation {
                network_namespace: net.is_ok(),
                network_note: net.err(),
                uid,
                landlock_abi: abi.as_ref().ok().copied(),
                landlock_note: abi.err(),
            },
            pid,
        })
    }
}

/// Reads a pipe up to `cap` bytes; one byte more sets `overflow` and kills the group.
fn read_capped(mut pipe: impl Read, cap: usize, pid: u32, overflow: &AtomicBool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        match pipe.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let room = cap.saturating_sub(out.len());
                out.extend_from_slice(&buf[..n.min(room)]);
                if n > room {
                    overflow.store(true, Ordering::SeqCst);
                    let _ = kill_group(pid);
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    out
}

/// SIGKILL to the group; false when no process of it is left (ESRCH).
fn kill_group(pid: u32) -> bool {
    rustix::process::Pid::from_raw(pid as i32).is_some_and(|pid| {
        rustix::process::kill_process_group(pid, rustix::process::Signal::KILL).is_ok()
    })
}

/// Markers of an exhausted address space in a Python program's stderr.
const MEMORY_MARKERS: [&str; 4] = [
    "MemoryError",
    "Cannot allocate memory",
    "std::bad_alloc",
    "out of memory",
];

fn classify(
    status: ExitStatus,
    timed_out: bool,
    overflow: bool,
    stdout: &str,
    stderr: &str,
) -> Outcome {
    use std::os::unix::process::ExitStatusExt;
    if overflow {
        return Outcome::OutputLimit;
    }
    if timed_out {
        return Outcome::Timeout;
    }
    // RLIMIT_CPU sends SIGXCPU at the soft limit and SIGKILL at the hard one; nothing
    // else in the sandbox sends SIGKILL to a program that is still within its wall time.
    if let Some(sig) = status.signal()
        && (sig == rustix::process::Signal::XCPU.as_raw()
            || sig == rustix::process::Signal::KILL.as_raw())
    {
        return Outcome::Timeout;
    }
    if status.success() {
        return Outcome::Ok {
            stdout: stdout.to_string(),
        };
    }
    let tail = stderr.trim_end().lines().last().unwrap_or("");
    if MEMORY_MARKERS.iter().any(|m| tail.contains(m))
        || stderr.contains("Fatal Python error: Cannot allocate")
    {
        return Outcome::MemoryLimit;
    }
    let code = status.code().or_else(|| status.signal().map(|s| 128 + s));
    Outcome::Error {
        stderr: stderr.to_string(),
        code,
    }
}

/// Whether a user and network namespace can be made, probed once per process by starting
/// the interpreter with the same steps (`-c pass`); the first failure is logged loudly.
fn probe_network(python: &Path) -> &'static Result<(), String> {
    static PROBE: OnceLock<Result<(), String>> = OnceLock::new();
    PROBE.get_or_init(|| {
        let drop_to_nobody = rustix::process::geteuid().is_root();
        let mut cmd = Command::new(python);
        cmd.args(["-I", "-S", "-c", "pass"])
            .env_clear()
            .env("PATH", SAFE_PATH)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        child::install_probe(&mut cmd, drop_to_nobody);
        let result = match cmd.status() {
            Ok(status) if status.success() => Ok(()),
            Ok(status) => Err(format!("probe exited with {status}")),
            Err(e) => Err(format!("unshare(CLONE_NEWUSER | CLONE_NEWNET) failed: {e}")),
        };
        if let Err(why) = &result {
            tracing::warn!(
                "SANDBOX HAS NETWORK: no network namespace can be made here ({why}); \
                 model-written code will run with the host's network"
            );
        }
        result
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    fn exit(code: i32) -> ExitStatus {
        ExitStatus::from_raw(code << 8)
    }

    #[test]
    fn classification_follows_the_documented_order() {
        assert_eq!(
            classify(exit(0), false, false, "4\n", ""),
            Outcome::Ok {
                stdout: "4\n".into()
            }
        );
        // the cap wins over everything, then the wall clock
        assert_eq!(classify(exit(0), true, true, "", ""), Outcome::OutputLimit);
        assert_eq!(classify(exit(0), true, false, "", ""), Outcome::Timeout);
        // SIGXCPU (24) and SIGKILL (9) from the CPU limit
        assert_eq!(
            classify(ExitStatus::from_raw(24), false, false, "", ""),
            Outcome::Timeout
        );
        assert_eq!(
            classify(ExitStatus::from_raw(9), false, false, "", ""),
            Outcome::Timeout
        );
        let tb = "Traceback (most recent call last):\n  File \"main.py\", line 1\nMemoryError\n";
        assert_eq!(
            classify(exit(1), false, false, "", tb),
            Outcome::MemoryLimit
        );
        assert_eq!(
            classify(
                exit(1),
                false,
                false,
                "",
                "ZeroDivisionError: division by zero\n"
            ),
            Outcome::Error {
                stderr: "ZeroDivisionError: division by zero\n".into(),
                code: Some(1)
            }
        );
        // SIGSEGV (11) is 128 + 11
        assert!(matches!(
            classify(ExitStatus::from_raw(11), false, false, "", ""),
            Outcome::Error {
                code: Some(139),
                ..
            }
        ));
    }

    #[test]
    fn outcomes_serialize_with_their_kind() {
        let json = serde_json::to_string(&Outcome::Error {
            stderr: "x".into(),
            code: Some(2),
        })
        .unwrap();
        assert_eq!(json, r#"{"kind":"error","stderr":"x","code":2}"#);
        assert_eq!(Outcome::MemoryLimit.kind(), "memory_limit");
    }
}
