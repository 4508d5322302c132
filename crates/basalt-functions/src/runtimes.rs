//! Which program runs a runtime, and installing the runtimes (`basalt runtimes pull`).
//!
//! Python runtimes run the handler through AWS's own runtime interface client
//! (`awslambdaric`) in a virtual environment that also has boto3 and botocore, as AWS's images
//! do; one environment per Python version found on this machine, under the runtime directory
//! (`BASALT_RUNTIME_DIR`, default `~/.cache/basalt/runtimes`). After `pull`, nothing is
//! fetched again. A `pythonX.Y` function runs on Python X.Y when it is installed, else on the
//! newest installed Python 3 (said in the log and in `/_basalt/health`). `provided.al2023`
//! and `provided.al2` run the package's `bootstrap`.
//!
//! Node.js runtimes run the handler through AWS's Node.js runtime interface client
//! (`aws-lambda-ric`, which builds a native module: it needs autoconf, automake, libtool and a
//! C++ compiler) with the AWS SDK for JavaScript v3 clients AWS's runtime ships, installed by
//! `pull` into `<runtimes>/nodejs` when `node` and `npm` are on PATH. CommonJS handlers find the
//! SDK through `NODE_PATH`, as on AWS; ES module handlers (which Node resolves without
//! `NODE_PATH`) through a `node_modules` link next to the unpacked packages, so that
//! `import ... from "@aws-sdk/client-s3"` resolves as it does on Lambda (a package's own
//! `node_modules` still wins). ES modules in layers are not found by bare name.

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

/// What `pull` installs for Node.js functions: AWS's runtime interface client and the SDK v3
/// clients of AWS's Node.js runtime for the services Basalt serves, pinned.
pub const NODE_PACKAGES: &[&str] = &[
    "aws-lambda-ric@3.3.0",
    "@aws-sdk/client-s3@3.1178.0",
    "@aws-sdk/client-dynamodb@3.1178.0",
    "@aws-sdk/lib-dynamodb@3.1178.0",
    "@aws-sdk/client-sqs@3.1178.0",
    "@aws-sdk/client-sns@3.1178.0",
    "@aws-sdk/client-lambda@3.1178.0",
    "@aws-sdk/client-bedrock-runtime@3.1178.0",
    "@aws-sdk/client-eventbridge@3.1178.0",
    "@aws-sdk/client-sfn@3.1178.0",
    "@aws-sdk/client-cloudwatch@3.1178.0",
    "@aws-sdk/client-cloudwatch-logs@3.1178.0",
    "@aws-sdk/client-sts@3.1178.0",
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
            match (self.node_ric(), node_version()) {
                (Some(_), Some(v)) => format!("node {v}"),
                (Some(_), None) => "installed, but no node on PATH".to_owned(),
                (None, _) => "not installed (basalt runtimes pull)".to_owned(),
            }
        )
    }

    fn node_ric(&self) -> Option<PathBuf> {
        let ric = self
            .dir
            .join("nodejs/node_modules/aws-lambda-ric/bin/index.mjs");
        ric.exists().then_some(ric)
    }

    /// Whether `pull` installed the Node.js runtime (the client and the SDK).
    pub fn node_installed(&self) -> bool {
        self.dir.join("nodejs/.installed").exists() && self.node_ric().is_some()
    }

    /// Installs the Node.js runtime unless it is there: never fails, says on stderr what is
    /// missing and how to get it. Returns whether it is installed.
    pub fn pull_node(&self) -> bool {
        let dir = self.dir.join("nodejs");
        let marker = dir.join(".installed");
        if std::fs::read_to_string(&marker).is_ok_and(|m| m == NODE_PACKAGES.join("\n")) {
            eprintln!("nodejs: installed ({})", dir.display());
            return true;
        }
        if let Some(missing) = node_prerequisites_missing(|exe, arg| {
            Command::new(exe)
                .arg(arg)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        }) {
            eprintln!("nodejs: not installed, {missing}; Python runtimes are unaffected");
            return false;
        }
        eprintln!(
            "nodejs: installing aws-lambda-ric and the AWS SDK v3 clients into {} (builds a native module: about 2 minutes)",
            dir.display()
        );
        let _ = std::fs::create_dir_all(&dir);
        // npm 11 may hold back dependencies' install scripts, and the client's builds its
        // native module; it takes the permission from the project's package.json only
        // (`--allow-scripts` is refused in a project-scoped install).
        let manifest = dir.join("package.json");
        if !manifest.exists()
            && let Err(e) = std::fs::write(
                &manifest,
                r#"{"name":"basalt-nodejs-runtime","private":true,"allowScripts":{"aws-lambda-ric":true}}"#,
            )
        {
            eprintln!("nodejs: {}: {e}", manifest.display());
            return false;
        }
        let status = Command::new("npm")
            .args(["install", "--prefix"])
            .arg(&dir)
            .args([
                "--no-audit",
                "--no-fund",
                "--no-update-notifier",
                "--save-exact",
                "--loglevel=error",
            ])
            .args(NODE_PACKAGES)
            .status();
        match status {
            Ok(s) if s.success() && self.node_ric().is_some() => {
                if let Err(e) = std::fs::write(&marker, NODE_PACKAGES.join("\n")) {
                    eprintln!("nodejs: {}: {e}", marker.display());
                    return false;
                }
                true
            }
            Ok(s) => {
                eprintln!(
                    "nodejs: not installed, `npm install` failed ({s}): see its output above; Python runtimes are unaffected"
                );
                false
            }
            Err(e) => {
                eprintln!("nodejs: not installed, npm: {e}");
                false
            }
        }
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
            let Some(node) = find_on_path("node") else {
                return Err(format!(
                    "Runtime {runtime} is not available on this Basalt machine: there is no `node` on PATH (install Node.js 18 or newer)."
                ));
            };
            let modules = self.dir.join("nodejs/node_modules");
            link_for_esm(task_root, &modules);
            let mut read = vec![self.dir.join("nodejs")];
            // Node installed outside the system directories (nvm, a tarball) is read from
            // its prefix.
            if let Some(prefix) = node.parent().and_then(Path::parent) {
                read.push(prefix.to_path_buf());
            }
            let major = node_version().and_then(|v| v.split('.').next().map(str::to_owned));
            let wanted = runtime.trim_start_matches("nodejs").trim_end_matches(".x");
            return Ok(Launch {
                program: node,
                args: vec![ric.display().to_string(), handler.into()],
                read,
                vars: vec![(
                    "NODE_PATH".into(),
                    node_path(runtime, &modules, task_root, opt),
                )],
                substitute: major
                    .filter(|m| m != wanted)
                    .map(|m| format!("nodejs{m}.x")),
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
        let node = self.pull_node();
        if seen.is_empty() {
            return Err("no Python 3.9 to 3.13 found on PATH".into());
        }
        let mut installed = self.pythons();
        if node {
            installed.push("nodejs".into());
        }
        Ok(installed)
    }
}

/// What keeps the Node.js runtime from installing, and how to get it, given a probe that says
/// whether `exe arg` runs.
fn node_prerequisites_missing(runs: impl Fn(&str, &str) -> bool) -> Option<String> {
    if !runs("node", "--version") || !runs("npm", "--version") {
        return Some(
            "needs `node` and `npm` on PATH (e.g. `apt-get install nodejs npm`, or Node.js 18+ from nodejs.org)"
                .into(),
        );
    }
    let tools: Vec<&str> = [
        ("autoreconf", "autoconf"),
        ("automake", "automake"),
        ("libtoolize", "libtool"),
        ("make", "make"),
        ("c++", "g++"),
    ]
    .into_iter()
    .filter(|(exe, _)| !runs(exe, "--version"))
    .map(|(_, package)| package)
    .collect();
    (!tools.is_empty()).then(|| {
        format!(
            "aws-lambda-ric builds a native module and needs {} (e.g. `apt-get install -y {}`)",
            tools.join(", "),
            tools.join(" ")
        )
    })
}

/// `20.11.1`, the version of the `node` on PATH (asked once).
fn node_version() -> Option<String> {
    static VERSION: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    VERSION
        .get_or_init(|| {
            let out = Command::new("node").arg("--version").output().ok()?;
            let v = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            (out.status.success() && !v.is_empty()).then(|| v.trim_start_matches('v').to_owned())
        })
        .clone()
}

/// The program `name` on PATH, its links resolved.
fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .and_then(|p| std::fs::canonicalize(p).ok())
}

/// Lambda's `NODE_PATH`: the layers' `nodejs/node{major}/node_modules` and `nodejs/node_modules`,
/// the runtime's modules, the runtime, the task root.
fn node_path(runtime: &str, modules: &Path, task_root: &Path, opt: Option<&Path>) -> String {
    let major = runtime.trim_start_matches("nodejs").trim_end_matches(".x");
    let mut path = Vec::new();
    if let Some(opt) = opt {
        path.push(opt.join(format!("nodejs/node{major}/node_modules")));
        path.push(opt.join("nodejs/node_modules"));
    }
    path.push(modules.to_path_buf());
    if let Some(runtime_dir) = modules.parent() {
        path.push(runtime_dir.to_path_buf());
    }
    path.push(task_root.to_path_buf());
    path.iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(":")
}

/// ES modules ignore `NODE_PATH`: Node looks for bare names in the `node_modules` of the
/// importing file's directory and its parents. A link from the directory above the task root
/// to the runtime's modules lets `import "@aws-sdk/client-s3"` resolve as on Lambda, after the
/// package's own `node_modules`.
fn link_for_esm(task_root: &Path, modules: &Path) {
    let Some(parent) = task_root.parent() else {
        return;
    };
    let link = parent.join("node_modules");
    if std::fs::read_link(&link).is_ok_and(|t| t == modules) {
        return;
    }
    let _ = std::fs::remove_file(&link);
    let _ = std::os::unix::fs::symlink(modules, &link);
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
    fn node_prerequisites_say_what_to_install() {
        assert_eq!(node_prerequisites_missing(|_, _| true), None);
        let e = node_prerequisites_missing(|exe, _| exe != "npm").unwrap();
        assert!(e.contains("node") && e.contains("npm"), "{e}");
        let e = node_prerequisites_missing(|exe, _| exe != "autoreconf" && exe != "libtoolize")
            .unwrap();
        assert!(e.contains("apt-get install -y autoconf libtool"), "{e}");
    }

    #[test]
    fn node_functions_find_the_sdk() {
        let dir = tempfile::tempdir().unwrap();
        let modules = dir.path().join("runtimes/nodejs/node_modules");
        let task = dir.path().join("code/abc");
        std::fs::create_dir_all(&task).unwrap();
        let p = node_path("nodejs20.x", &modules, &task, Some(Path::new("/opt")));
        assert_eq!(
            p,
            format!(
                "/opt/nodejs/node20/node_modules:/opt/nodejs/node_modules:{}:{}:{}",
                modules.display(),
                modules.parent().unwrap().display(),
                task.display()
            )
        );
        link_for_esm(&task, &modules);
        link_for_esm(&task, &modules);
        assert_eq!(
            std::fs::read_link(dir.path().join("code/node_modules")).unwrap(),
            modules
        );
        let r = Runtimes {
            dir: dir.path().join("runtimes"),
        };
        let e = r
            .launch("nodejs20.x", "index.handler", &task, None)
            .unwrap_err();
        assert!(e.contains("not installed"), "{e}");
        assert!(!r.node_installed());
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
