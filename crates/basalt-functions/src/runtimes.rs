//! Which program runs a runtime, and installing the runtimes (`basalt runtimes pull`).
//!
//! Python runtimes run the handler through AWS's own runtime interface client
//! (`awslambdaric`) in a virtual environment that also has boto3 and botocore, as AWS's images
//! do; one environment per Python version found on this machine, under the runtime directory
//! (`BASALT_RUNTIME_DIR`, default `~/.cache/basalt/runtimes`). After `pull`, nothing is
//! fetched again. A `pythonX.Y` function runs on Python X.Y when it is installed, else on the
//! newest installed Python 3 (said in the log and in `/_basalt/health`). `provided.al2023`
//! and `provided.al2` run the package's `bootstrap`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// What `pull` installs into each Python environment, pinned so that every machine runs the
/// same client.
pub const PYTHON_PACKAGES: &[&str] = &["awslambdaric==4.2.2", "boto3==1.44.18"];

/// The Python runtimes Lambda offers (and Basalt accepts).
pub const PYTHON_RUNTIMES: &[&str] = &[
    "python3.9",
    "python3.10",
    "python3.11",
    "python3.12",
    "python3.13",
];

pub const PROVIDED_RUNTIMES: &[&str] = &["provided.al2023", "provided.al2", "provided"];

pub const NODE_RUNTIMES: &[&str] = &["nodejs18.x", "nodejs20.x", "nodejs22.x"];

/// Every runtime CreateFunction accepts.
pub fn is_known(runtime: &str) -> bool {
    PYTHON_RUNTIMES.contains(&runtime)
        || PROVIDED_RUNTIMES.contains(&runtime)
        || NODE_RUNTIMES.contains(&runtime)
}

/// How to start one environment.
#[derive(Debug, Clone)]
pub struct Launch {
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Trees the process must be able to read besides the system and its code.
    pub read: Vec<PathBuf>,
    pub vars: Vec<(String, String)>,
    /// The runtime that actually runs, when not the one asked for (`python3.11`).
    pub substitute: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Runtimes {
    pub dir: PathBuf,
}

impl Default for Runtimes {
    fn default() -> Self {
        Runtimes { dir: default_dir() }
    }
}

pub fn default_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("BASALT_RUNTIME_DIR") {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    home.join(".cache/basalt/runtimes")
}

/// `3.11` from `python3.11`.
fn python_version(runtime: &str) -> Option<(u32, u32)> {
    let v = runtime.strip_prefix("python")?;
    let (a, b) = v.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

impl Runtimes {
    /// The Python environments installed, newest first.
    pub fn pythons(&self) -> Vec<String> {
        let mut found: Vec<String> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| python_version(n).is_some())
            .filter(|n| self.dir.join(n).join(".installed").exists())
            .collect();
        found.sort_by_key(|n| std::cmp::Reverse(python_version(n)));
        found
    }

    /// One line for health: what runs each family.
    pub fn describe(&self) -> String {
        let py = self.pythons();
        format!(
            "python: {}; provided: bootstrap; nodejs: {}",
            if py.is_empty() {
                "not installed (basalt runtimes pull)".to_owned()
            } else {
                py.join(", ")
            },
            if self.node_ric().is_some() {
                "installed"
            } else {
                "not installed"
            }
        )
    }

    fn node_ric(&self) -> Option<PathBuf> {
        let ric = self
            .dir
            .join("nodejs/node_modules/aws-lambda-ric/bin/index.mjs");
        ric.exists().then_some(ric)
    }

    /// How to run `runtime` for a package unpacked at `task_root`, layers at `opt`.
    pub fn launch(
        &self,
        runtime: &str,
        handler: &str,
        task_root: &Path,
        opt: Option<&Path>,
    ) -> Result<Launch, String> {
        if let Some(wanted) = python_version(runtime) {
            let installed = self.pythons();
            let exact = format!("python{}.{}", wanted.0, wanted.1);
            let chosen = if installed.contains(&exact) {
                exact.clone()
            } else {
                installed.first().cloned().ok_or_else(|| {
                    format!(
                        "Runtime {runtime} is not installed on this Basalt machine: run `basalt runtimes pull` (it installs awslambdaric and boto3 for the Python versions found here)."
                    )
                })?
            };
            let venv = self.dir.join(&chosen);
            let (maj, min) = python_version(&chosen).unwrap_or(wanted);
            let mut path = vec![task_root.display().to_string()];
            if let Some(opt) = opt {
                path.push(opt.join("python").display().to_string());
                path.push(
                    opt.join(format!("python/lib/python{maj}.{min}/site-packages"))
                        .display()
                        .to_string(),
                );
            }
            let mut read = vec![venv.clone()];
            if let Some(home) = venv_home(&venv) {
                read.push(home);
            }
            return Ok(Launch {
                program: venv.join("bin/python"),
                args: vec!["-m".into(), "awslambdaric".into(), handler.into()],
                read,
                vars: vec![("PYTHONPATH".into(), path.join(":"))],
                substitute: (chosen != exact).then_some(chosen),
            });
        }
        if PROVIDED_RUNTIMES.contains(&runtime) {
            let candidates = [
                Some(task_root.join("bootstrap")),
                opt.map(|o| o.join("bootstrap")),
            ];
            let Some(bootstrap) = candidates.into_iter().flatten().find(|p| p.is_file()) else {
                return Err(
                    "Couldn't find valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap]".into(),
                );
            };
            return Ok(Launch {
                program: bootstrap,
                args: vec![],
                read: vec![],
                vars: vec![],
                substitute: None,
            });
        }
        if NODE_RUNTIMES.contains(&runtime) {
            let Some(ric) = self.node_ric() else {
                return Err(format!(
                    "Runtime {runtime} is not installed on this Basalt machine: Node.js functions need Node.js and AWS's runtime interface client (npm install aws-lambda-ric into {}/nodejs).",
                    self.dir.display()
                ));
            };
            return Ok(Launch {
                program: PathBuf::from("node"),
                args: vec![ric.display().to_string(), handler.into()],
                read: vec![self.dir.join("nodejs")],
                vars: vec![],
                substitute: None,
            });
        }
        Err(format!("Runtime {runtime} is not supported."))
    }

    /// Installs a Python environment for every Python 3 version on this machine that Lambda
    /// offers, skipping those already installed. Returns the installed runtimes.
    pub fn pull(&self) -> Result<Vec<String>, String> {
        std::fs::create_dir_all(&self.dir).map_err(|e| format!("{}: {e}", self.dir.display()))?;
        let mut seen = Vec::new();
        let candidates = PYTHON_RUNTIMES
            .iter()
            .map(|r| r.to_string())
            .chain(["python3".to_owned()]);
        for exe in candidates {
            let Ok(out) = Command::new(&exe)
                .args([
                    "-c",
                    "import sys; print('python%d.%d' % sys.version_info[:2])",
                ])
                .output()
            else {
                continue;
            };
            let name = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            if !out.status.success()
                || !PYTHON_RUNTIMES.contains(&name.as_str())
                || seen.contains(&name)
            {
                continue;
            }
            seen.push(name.clone());
            let venv = self.dir.join(&name);
            if venv.join(".installed").exists() {
                eprintln!("{name}: installed ({})", venv.display());
                continue;
            }
            eprintln!(
                "{name}: installing {} into {}",
                PYTHON_PACKAGES.join(" "),
                venv.display()
            );
            let _ = std::fs::remove_dir_all(&venv);
            let run = |cmd: &mut Command| -> Result<(), String> {
                let status = cmd.status().map_err(|e| e.to_string())?;
                if status.success() {
                    Ok(())
                } else {
                    Err(format!("{cmd:?} failed: {status}"))
                }
            };
            run(Command::new(&exe).args(["-m", "venv"]).arg(&venv))?;
            run(Command::new(venv.join("bin/pip"))
                .args(["install", "--quiet", "--disable-pip-version-check"])
                .args(PYTHON_PACKAGES))?;
            std::fs::write(venv.join(".installed"), PYTHON_PACKAGES.join("\n"))
                .map_err(|e| e.to_string())?;
        }
        if seen.is_empty() {
            return Err("no Python 3.9 to 3.13 found on PATH".into());
        }
        Ok(self.pythons())
    }
}

/// The Python installation a virtual environment was made from (`home` in `pyvenv.cfg`, the
/// parent of its `bin`).
fn venv_home(venv: &Path) -> Option<PathBuf> {
    let cfg = std::fs::read_to_string(venv.join("pyvenv.cfg")).ok()?;
    let home = cfg.lines().find_map(|l| {
        l.strip_prefix("home")
            .map(|v| v.trim_start_matches([' ', '=']).trim())
    })?;
    let bin = std::fs::canonicalize(home).ok()?;
    bin.parent().map(Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtimes_are_parsed() {
        assert_eq!(python_version("python3.12"), Some((3, 12)));
        assert_eq!(python_version("provided.al2023"), None);
        assert!(is_known("python3.13") && is_known("provided.al2023") && !is_known("python2.7"));
    }

    #[test]
    fn a_missing_python_says_how_to_install_it() {
        let dir = tempfile::tempdir().unwrap();
        let r = Runtimes {
            dir: dir.path().to_owned(),
        };
        let e = r
            .launch("python3.12", "index.handler", dir.path(), None)
            .unwrap_err();
        assert!(e.contains("basalt runtimes pull"), "{e}");
    }

    #[test]
    fn provided_needs_a_bootstrap() {
        let dir = tempfile::tempdir().unwrap();
        let r = Runtimes {
            dir: dir.path().to_owned(),
        };
        let e = r
            .launch("provided.al2023", "x", dir.path(), None)
            .unwrap_err();
        assert!(e.contains("bootstrap"), "{e}");
        std::fs::write(dir.path().join("bootstrap"), "#!/bin/sh\n").unwrap();
        let l = r.launch("provided.al2023", "x", dir.path(), None).unwrap();
        assert_eq!(l.program, dir.path().join("bootstrap"));
    }
}
