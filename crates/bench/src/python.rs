//! The Python reference environment: one venv under the stepwise cache, filled with pip
//! on demand.
//!
//! Every bench asks for the pinned packages it needs (`math-verify`, `fastapi`, …) and
//! gets the venv's python. What was installed is remembered in a marker file inside the
//! venv, by package name, so a second bench with the same pins runs no pip at all, and a
//! changed pin (`--math-verify-version`) reinstalls just that package.

use crate::{BenchError, io, run_tool};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Name of the venv folder under the stepwise cache.
pub const VENV_DIR: &str = "bench-venv";

/// File inside the venv listing the requirements installed so far, one a line.
const MARKER: &str = ".stepwise-requirements";

/// `<stepwise cache>/bench-venv` (see `stepwise_core::paths::cache_root`).
pub fn default_dir() -> PathBuf {
    stepwise_core::paths::cache_dir(VENV_DIR)
}

/// A venv with the requirements asked for so far installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonEnv {
    dir: PathBuf,
    python: PathBuf,
}

impl PythonEnv {
    /// Creates the venv at `dir` with `base_python` when it is missing, then installs the
    /// `requirements` (pip specifiers such as `fastapi==0.165.0`) it does not have yet.
    pub fn ensure(
        dir: &Path,
        base_python: &str,
        requirements: &[&str],
    ) -> Result<Self, BenchError> {
        let python = dir.join("bin").join("python");
        if !python.exists() {
            eprintln!(
                "bench: creating the reference venv {} (once)",
                dir.display()
            );
            if let Some(parent) = dir.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(io(format!("creating {}", parent.display())))?;
            }
            run_tool(Command::new(base_python).args(["-m", "venv"]).arg(dir)).map_err(|e| {
                BenchError::Tool(format!(
                    "{e}\n(is {base_python} installed, with its venv module?)"
                ))
            })?;
        }
        let marker = dir.join(MARKER);
        let mut installed = parse_marker(&std::fs::read_to_string(&marker).unwrap_or_default());
        let todo = missing(&installed, requirements);
        if !todo.is_empty() {
            eprintln!(
                "bench: installing {} into {}",
                todo.join(" "),
                dir.display()
            );
            run_tool(
                Command::new(&python)
                    .args([
                        "-m",
                        "pip",
                        "install",
                        "--quiet",
                        "--disable-pip-version-check",
                    ])
                    .args(&todo),
            )?;
            for spec in todo {
                installed.insert(requirement_name(&spec), spec);
            }
            let text: String = installed.values().map(|s| format!("{s}\n")).collect();
            std::fs::write(&marker, text).map_err(io(format!("writing {}", marker.display())))?;
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            python,
        })
    }

    /// The venv's python.
    pub fn python(&self) -> &Path {
        &self.python
    }

    /// The venv's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The installed version of a distribution (`importlib.metadata`), if any.
    pub fn version_of(&self, distribution: &str) -> Option<String> {
        let out = Command::new(&self.python)
            .args([
                "-c",
                "import sys, importlib.metadata as m; print(m.version(sys.argv[1]))",
                distribution,
            ])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}

/// The normalized project name of a pip requirement (`Math_Verify[x]==1` → `math-verify`).
pub fn requirement_name(spec: &str) -> String {
    let end = spec
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(spec.len());
    spec[..end]
        .trim()
        .to_ascii_lowercase()
        .replace(['_', '.'], "-")
}

/// The marker's requirements by project name.
fn parse_marker(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| (requirement_name(l), l.to_string()))
        .collect()
}

/// The requirements not installed in exactly that form.
fn missing(installed: &BTreeMap<String, String>, wanted: &[&str]) -> Vec<String> {
    wanted
        .iter()
        .map(|s| s.trim())
        .filter(|s| installed.get(&requirement_name(s)).map(String::as_str) != Some(*s))
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirement_names_are_normalized() {
        assert_eq!(
            requirement_name("math-verify[antlr4-13-2]==0.9.0"),
            "math-verify"
        );
        assert_eq!(requirement_name("Math_Verify>=0.8"), "math-verify");
        assert_eq!(requirement_name("uvicorn"), "uvicorn");
        assert_eq!(
            requirement_name("zope.interface ; python_version>'3'"),
            "zope-interface"
        );
    }

    #[test]
    fn only_new_or_changed_pins_are_installed() {
        let installed = parse_marker("math-verify[antlr4-13-2]==0.9.0\n\nfastapi==0.165.0\n");
        assert_eq!(installed.len(), 2);
        assert!(
            missing(
                &installed,
                &["math-verify[antlr4-13-2]==0.9.0", "fastapi==0.165.0"]
            )
            .is_empty()
        );
        assert_eq!(
            missing(
                &installed,
                &[
                    "math-verify[antlr4-13-2]==0.8.0",
                    "fastapi==0.165.0",
                    "uvicorn==0.54.0"
                ]
            ),
            ["math-verify[antlr4-13-2]==0.8.0", "uvicorn==0.54.0"]
        );
    }

    /// A real venv from the system python (no packages, so no network): created once,
    /// reused the second time, its python runs.
    #[test]
    fn a_venv_is_created_once_and_reused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cache").join(VENV_DIR);
        let env = PythonEnv::ensure(&dir, "python3", &[]).unwrap();
        assert!(env.python().exists(), "{}", env.python().display());
        assert_eq!(env.dir(), dir);
        let again = PythonEnv::ensure(&dir, "python3", &[]).unwrap();
        assert_eq!(again, env);
        // pip ships with every venv; a distribution that is not installed has no version
        assert!(env.version_of("pip").is_some_and(|v| !v.is_empty()));
        assert_eq!(env.version_of("no-such-distribution-stepwise"), None);
        let e = PythonEnv::ensure(&tmp.path().join("other"), "no-such-python-stepwise", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("no-such-python-stepwise"), "{e}");
    }
}
