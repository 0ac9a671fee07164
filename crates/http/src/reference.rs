//! A real OpenAI-compatible upstream for tests and benches: llama-cpp-python's server
//! serving a GGUF on a loopback port (feature `reference-server`).
//!
//! [`server_python`] installs [`PACKAGE`] into a venv under the stepwise cache
//! (`$STEPWISE_SERVER_VENV`, else `$STEPWISE_CACHE/server-venv-noamx`, else
//! `~/.cache/stepwise/server-venv-noamx`; pip compiles llama.cpp, so the first run takes
//! minutes). On x86-64 llama.cpp is compiled without AMX ([`NO_AMX_FLAGS`]), as the
//! embedded engine is (`.cargo/config.toml`): its AMX kernel crashes on some Sapphire
//! Rapids machines. [`LlamaCppServer::start`] runs it on a free
//! port and waits for `/v1/models`; dropping it kills the process.
//! [`LlamaCppServer::start_or_skip`] is what integration tests call: a server that cannot be
//! installed fails the test unless `STEPWISE_SKIP_SERVER_TESTS=1`, which prints a `SKIPPED`
//! line instead (the skip the README lists).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The pinned server package.
pub const PACKAGE: &str = "llama-cpp-python[server]==0.3.36";

/// Why the reference server could not be installed or started.
#[derive(Debug, thiserror::Error)]
#[error("llama-cpp-python server: {0}")]
pub struct ReferenceError(String);

/// Compiler flags that keep llama.cpp's AMX kernels out of an x86-64 build even under
/// `-march=native` (GCC and Clang honour an explicit `-mno-…` whatever its place): the
/// AMX matrix kernel segfaults on some AMX machines (llama.cpp issue #20824, unfixed).
pub const NO_AMX_FLAGS: &str = "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16";

/// The venv of the server (named for the AMX-free build, so a venv built before it is
/// not reused).
pub fn server_venv() -> PathBuf {
    std::env::var_os("STEPWISE_SERVER_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| stepwise_core::paths::cache_root().join("server-venv-noamx"))
}

fn importable(py: &Path) -> bool {
    Command::new(py)
        .args(["-c", "import llama_cpp.server, uvicorn"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The venv's python with [`PACKAGE`] importable, installed when missing.
pub fn server_python() -> Result<PathBuf, ReferenceError> {
    let venv = server_venv();
    let py = venv.join("bin").join("python");
    if py.exists() && importable(&py) {
        return Ok(py);
    }
    eprintln!(
        "installing {PACKAGE} into {} (compiles llama.cpp; minutes on first run)",
        venv.display()
    );
    let st = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .map_err(|e| ReferenceError(format!("python3 -m venv: {e}")))?;
    if !st.success() {
        return Err(ReferenceError(format!(
            "python3 -m venv {} failed ({st})",
            venv.display()
        )));
    }
    let mut pip = Command::new(&py);
    pip.args([
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        // a wheel cached from a build with AMX would be reused otherwise
        "--no-cache-dir",
        PACKAGE,
    ]);
    if cfg!(target_arch = "x86_64") {
        for var in ["CFLAGS", "CXXFLAGS"] {
            let before = std::env::var(var).unwrap_or_default();
            pip.env(var, format!("{before} {NO_AMX_FLAGS}").trim());
        }
    }
    let out = pip
        .output()
        .map_err(|e| ReferenceError(format!("pip install: {e}")))?;
    if !out.status.success() || !importable(&py) {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(15).collect();
        return Err(ReferenceError(format!(
            "pip install {PACKAGE} failed ({}):\n{}",
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )));
    }
    Ok(py)
}

/// A running llama-cpp-python server (killed on drop).
pub struct LlamaCppServer {
    child: Child,
    url: String,
}

impl LlamaCppServer {
    /// Serves `model` on a free loopback port with `threads` CPU threads and a 2048-token
    /// context; returns once `/v1/models` answers (at most 120 s).
    pub async fn start(model: &Path, threads: usize) -> Result<Self, ReferenceError> {
        let py = server_python()?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| ReferenceError(format!("finding a free port: {e}")))?
            .port();
        let threads = threads.max(1).to_string();
        let child = Command::new(&py)
            .args(["-m", "llama_cpp.server", "--model"])
            .arg(model)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--n_ctx", "2048", "--n_threads", &threads])
            .args(["--n_threads_batch", &threads, "--verbose", "false"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| ReferenceError(format!("starting {}: {e}", py.display())))?;
        let mut server = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::Client::new();
        let t0 = Instant::now();
        loop {
            if let Ok(r) = client.get(format!("{}/v1/models", server.url)).send().await
                && r.status().is_success()
            {
                return Ok(server);
            }
            if let Ok(Some(st)) = server.child.try_wait() {
                return Err(ReferenceError(format!("the server exited ({st})")));
            }
            if t0.elapsed() > Duration::from_secs(120) {
                server.kill();
                return Err(ReferenceError(format!(
                    "{} did not answer /v1/models within 120 s",
                    server.url
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// [`start`](Self::start) for integration tests: `Ok(None)` after a loud `SKIPPED`
    /// line when it failed and `STEPWISE_SKIP_SERVER_TESTS=1`, else the error.
    pub async fn start_or_skip(
        model: &Path,
        threads: usize,
        test: &str,
    ) -> Result<Option<Self>, ReferenceError> {
        match Self::start(model, threads).await {
            Ok(s) => Ok(Some(s)),
            Err(e) if std::env::var("STEPWISE_SKIP_SERVER_TESTS").as_deref() == Ok("1") => {
                eprintln!("\n!!!!!!!! SKIPPED: {test} (STEPWISE_SKIP_SERVER_TESTS=1): {e}\n");
                Ok(None)
            }
            Err(e) => Err(ReferenceError(format!(
                "{e}; set STEPWISE_SKIP_SERVER_TESTS=1 to skip"
            ))),
        }
    }

    /// `http://127.0.0.1:PORT` (append `/v1` for OpenAI clients).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Kills the server now (a dead upstream); idempotent.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for LlamaCppServer {
    fn drop(&mut self) {
        self.kill();
    }
}
