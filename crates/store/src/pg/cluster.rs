//! A throwaway PostgreSQL server for tests and benches: `initdb` in a temporary folder,
//! `postgres` on a free loopback port, stopped (and the folder removed) on drop.
//!
//! The server binaries are Debian's (`/usr/lib/postgresql/*/bin`, package `postgresql`,
//! installed by `scripts/setup`), or the folder `STEPWISE_PG_BIN` names, or `pg_config
//! --bindir`'s. PostgreSQL refuses to run as root; as root the cluster runs as the
//! `postgres` user (`runuser`), owning its folder.
//!
//! The user `stepwise` logs in over TCP with a password (`scram-sha-256`), so a wrong
//! password is refused as on a real server.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Why a throwaway cluster did not start.
#[derive(Debug, thiserror::Error)]
#[error("throwaway PostgreSQL cluster: {0}")]
pub struct ClusterError(String);

/// A running throwaway cluster.
#[derive(Debug)]
pub struct TempCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    run_as: Option<String>,
    port: u16,
    password: String,
    stopped: bool,
}

/// The user the cluster's superuser logs in as.
pub const CLUSTER_USER: &str = "stepwise";

fn find_bin() -> Result<PathBuf, ClusterError> {
    if let Some(dir) = std::env::var_os("STEPWISE_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    found.sort();
    if let Some((_, bin)) = found.pop() {
        return Ok(bin);
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && dir.join("initdb").is_file() {
            return Ok(dir);
        }
    }
    Err(ClusterError(
        "PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin, STEPWISE_PG_BIN or pg_config --bindir \
         (install Debian's postgresql package: scripts/setup)"
            .into(),
    ))
}

/// The uid and gid of `user` from /etc/passwd.
fn ids_of(user: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 3 && f[0] == user).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
    })
}

fn free_port() -> Result<u16, ClusterError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| ClusterError(format!("no free loopback port: {e}")))
}

impl TempCluster {
    /// Creates and starts a cluster (about a second).
    pub fn start() -> Result<Self, ClusterError> {
        let bin = find_bin()?;
        let dir = tempfile::Builder::new()
            .prefix("stepwise-pg-")
            .tempdir()
            .map_err(|e| ClusterError(format!("creating a temporary folder: {e}")))?;
        let is_root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
        let run_as = if is_root {
            let (uid, gid) = ids_of("postgres").ok_or_else(|| {
                ClusterError(
                    "running as root and there is no 'postgres' user to run the server as".into(),
                )
            })?;
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).map_err(|e| {
                ClusterError(format!("handing {} to postgres: {e}", dir.path().display()))
            })?;
            Some("postgres".to_string())
        } else {
            None
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let password = format!("pw{:x}", nanos ^ u128::from(std::process::id()));
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, &password)
            .map_err(|e| ClusterError(format!("writing {}: {e}", pwfile.display())))?;
        if let Some((uid, gid)) = run_as.as_deref().and_then(ids_of) {
            let _ = std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid));
        }
        let mut cluster = Self {
            dir,
            bin,
            run_as,
            port: 0,
            password,
            stopped: true,
        };
        let data = cluster.data();
        cluster.exec(
            "initdb",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-U".as_ref(),
                CLUSTER_USER.as_ref(),
                format!("--pwfile={}", pwfile.display()).as_ref(),
                "--auth-local=trust".as_ref(),
                "--auth-host=scram-sha-256".as_ref(),
                "-E".as_ref(),
                "UTF8".as_ref(),
                "--locale=C".as_ref(),
                "--no-sync".as_ref(),
                "--no-instructions".as_ref(),
            ],
        )?;
        // a port can be taken between the probe and the start: try a few
        let mut last = None;
        for _ in 0..3 {
            cluster.port = free_port()?;
            let opts = format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
                cluster.port,
                cluster.dir.path().display()
            );
            let log = cluster.dir.path().join("log");
            match cluster.exec(
                "pg_ctl",
                &[
                    "-D".as_ref(),
                    data.as_os_str(),
                    "-l".as_ref(),
                    log.as_os_str(),
                    "-o".as_ref(),
                    opts.as_ref(),
                    "-w".as_ref(),
                    "-t".as_ref(),
                    "30".as_ref(),
                    "start".as_ref(),
                ],
            ) {
                Ok(()) => {
                    cluster.stopped = false;
                    tracing::info!(port = cluster.port, dir = %cluster.dir.path().display(), "started a throwaway PostgreSQL");
                    return Ok(cluster);
                }
                Err(e) => {
                    let log = std::fs::read_to_string(&log).unwrap_or_default();
                    last = Some(ClusterError(format!("{}; server log: {}", e.0, log.trim())));
                }
            }
        }
        Err(last.unwrap_or_else(|| ClusterError("the server did not start".into())))
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn exec(&self, tool: &str, args: &[&std::ffi::OsStr]) -> Result<(), ClusterError> {
        let path = self.bin.join(tool);
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&path);
                c
            }
            None => Command::new(&path),
        };
        cmd.args(args).current_dir(self.dir.path());
        let out = cmd
            .output()
            .map_err(|e| ClusterError(format!("running {}: {e}", path.display())))?;
        if !out.status.success() {
            return Err(ClusterError(format!(
                "{} failed ({}): {}{}",
                path.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim(),
                String::from_utf8_lossy(&out.stdout).trim()
            )));
        }
        Ok(())
    }

    /// The server's loopback port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of the cluster's `postgres` database, with the right password.
    pub fn url(&self) -> String {
        self.url_with_password(&self.password)
    }

    /// The URL with another password (to check that a wrong one is refused).
    pub fn url_with_password(&self, password: &str) -> String {
        format!(
            "postgres://{CLUSTER_USER}:{password}@127.0.0.1:{}/postgres",
            self.port
        )
    }

    /// The folder the cluster lives in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops the server at once (what drop does).
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let data = self.data();
        if let Err(e) = self.exec(
            "pg_ctl",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-m".as_ref(),
                "immediate".as_ref(),
                "-w".as_ref(),
                "stop".as_ref(),
            ],
        ) {
            tracing::warn!("stopping the throwaway PostgreSQL: {e}");
        }
    }
}

impl Drop for TempCluster {
    fn drop(&mut self) {
        self.stop();
    }
}
