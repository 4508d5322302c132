//! SageMaker's container contract without a container: a directory per job or endpoint that
//! holds the `/opt/ml` tree, mounted at `/opt` in the process's own mount namespace where the
//! kernel gives one (so that `/opt/ml/model` is where scripts expect it), else left where it
//! is with every `SM_*` variable pointing into it. The process may read the system, its
//! Python environment and its directory, and write only its directory (Landlock, as Lambda's
//! functions): Basalt's data dir and other jobs are out of its reach.

use basalt_functions::sandbox::{self, Sandbox};
use std::path::{Path, PathBuf};

/// A job's or endpoint's `/opt` directory.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Where it is on this host.
    pub root: PathBuf,
    /// Where the process sees it: `/opt`, or `root` without a mount namespace.
    pub inside: PathBuf,
}

impl Layout {
    pub fn new(root: PathBuf) -> Layout {
        let inside = if sandbox::namespaces() {
            PathBuf::from("/opt")
        } else {
            root.clone()
        };
        Layout { root, inside }
    }

    /// `ml/<rel>` on this host.
    pub fn host(&self, rel: &str) -> PathBuf {
        self.root.join("ml").join(rel)
    }

    /// `ml/<rel>` as the process sees it.
    pub fn seen(&self, rel: &str) -> String {
        self.inside.join("ml").join(rel).display().to_string()
    }
}

/// Whether processes get their own mount namespace (`/opt/ml` at its place).
pub(crate) fn namespaces() -> bool {
    sandbox::namespaces()
}

/// `/opt/ml/...` in an argument as the process sees the layout (the same path in its mount
/// namespace, the layout's own without one).
pub(crate) fn seen(layout: &Layout, arg: &str) -> String {
    match arg.strip_prefix("/opt/ml/") {
        Some(rel) => layout.seen(rel),
        None => arg.to_owned(),
    }
}

/// The program a ContainerEntrypoint's first word runs: Python is the local SageMaker
/// environment's, a shell the system's, anything else the path as given.
pub(crate) fn entrypoint(
    first: &str,
    environments: &crate::environments::Environments,
) -> Result<PathBuf, String> {
    let base = first.rsplit('/').next().unwrap_or(first);
    Ok(if base == "python" || base.starts_with("python3") {
        environments.python()?
    } else if matches!(base, "bash" | "sh") {
        PathBuf::from(format!("/bin/{base}"))
    } else {
        PathBuf::from(first)
    })
}

/// A process to start in a layout.
pub struct Launch<'a> {
    pub layout: &'a Layout,
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Working directory, relative to `ml/`.
    pub cwd: &'a str,
    pub env: Vec<(String, String)>,
    /// Trees it reads besides the system and its layout.
    pub read: Vec<PathBuf>,
}

impl Launch<'_> {
    /// Starts the process in its own process group, stdout and stderr piped, killed if
    /// Basalt dies.
    pub fn spawn(self, stdin: bool) -> std::io::Result<tokio::process::Child> {
        let tmp = self.layout.root.join("tmp");
        std::fs::create_dir_all(&tmp)?;
        let mut sandbox = Sandbox::new(
            &self.read,
            std::slice::from_ref(&self.layout.root),
            &[(self.layout.root.clone(), "/opt")],
        );
        let mut cmd = tokio::process::Command::new(&self.program);
        cmd.args(&self.args)
            .current_dir(self.layout.host(self.cwd))
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("LANG", "C.UTF-8")
            .env("TZ", ":UTC")
            .env("HOME", self.layout.inside.join("tmp"))
            .env("TMPDIR", self.layout.inside.join("tmp"))
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .envs(self.env)
            .stdin(if stdin {
                std::process::Stdio::piped()
            } else {
                std::process::Stdio::null()
            })
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        // SAFETY: the closure runs in the child between fork and exec; it makes system calls
        // only (prctl, the mounts and Landlock prepared before the fork) and allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                sandbox.enforce()
            });
        }
        cmd.spawn()
    }
}

/// Kills a process group: SIGTERM, then SIGKILL after `grace`.
pub async fn kill_group(child: &mut tokio::process::Child, grace: std::time::Duration) {
    if let Some(pid) = child.id() {
        // SAFETY: signals to the process group this module created.
        unsafe { libc::kill(-(pid as i32), libc::SIGTERM) };
        if tokio::time::timeout(grace, child.wait()).await.is_ok() {
            return;
        }
        unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
    }
    let _ = child.wait().await;
}

/// Files under `dir` as (path relative to it, contents), in a stable order.
pub(crate) fn files_under(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file()
                && let Ok(rel) = path.strip_prefix(dir)
            {
                out.push((rel.display().to_string(), path));
            }
        }
    }
    out.sort();
    out
}

/// `dir` as a gzipped tarball (entries relative to it, as SageMaker packs `model.tar.gz`);
/// `None` when it holds no file.
pub fn tar_gz(dir: &Path) -> std::io::Result<Option<Vec<u8>>> {
    let files = files_under(dir);
    if files.is_empty() {
        return Ok(None);
    }
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    for (rel, path) in files {
        tar.append_path_with_name(&path, &rel)?;
    }
    Ok(Some(tar.into_inner()?.finish()?))
}

/// Unpacks a gzipped tarball into `dir`, refusing entries that would land outside it.
pub fn untar_gz(data: &[u8], dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(data));
    let entries = archive
        .entries()
        .map_err(|e| format!("not a tar.gz archive: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("not a tar.gz archive: {e}"))?;
        // `unpack_in` refuses `..` and absolute paths.
        entry
            .unpack_in(dir)
            .map_err(|e| format!("could not unpack the archive: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tarballs_round_trip_with_relative_names() {
        let src = std::env::temp_dir().join(format!("basalt-sm-tar-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&src);
        std::fs::create_dir_all(src.join("code")).unwrap();
        std::fs::write(src.join("xgboost-model"), b"{}").unwrap();
        std::fs::write(src.join("code/inference.py"), b"x = 1").unwrap();
        let gz = tar_gz(&src).unwrap().unwrap();
        let names: Vec<String> = tar::Archive::new(flate2::read::GzDecoder::new(&gz[..]))
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["code/inference.py", "xgboost-model"]);
        let out = src.with_extension("out");
        untar_gz(&gz, &out).unwrap();
        assert_eq!(
            std::fs::read(out.join("code/inference.py")).unwrap(),
            b"x = 1"
        );
        assert!(untar_gz(b"not gzip", &out).is_err());
        assert!(tar_gz(&out.join("none")).unwrap().is_none());
        let _ = std::fs::remove_dir_all(&src);
        let _ = std::fs::remove_dir_all(&out);
    }
}
