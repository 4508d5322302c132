//! Filesystem isolation with Landlock: an environment may read the system directories, its
//! runtime and its own code, and write only its own temporary directory (and `/dev`'s
//! character devices). Everything else (Basalt's data dir, the models, other functions'
//! code and files) is out of reach, for the function and every process it starts.
//!
//! Landlock needs no privilege and no namespace; when the kernel lacks it the engine says so
//! (`/_basalt/health`) and runs functions unconfined.
//!
//! Each environment also gets a mount namespace (a user namespace first when Basalt is not
//! root) in which its own temporary directory is `/tmp` and its layers are `/opt`, as on AWS.
//! Where namespaces are refused, `TMPDIR` still points at the private directory, and `/tmp`
//! stays the host's (readable and writable by functions, as health says).

use landlock::{
    ABI, Access, AccessFs, PathBeneath, PathFd, Ruleset, RulesetAttr, RulesetCreated,
    RulesetCreatedAttr, RulesetStatus,
};
use std::path::PathBuf;

const ABI_USED: ABI = ABI::V5;

/// System paths every runtime needs to read (and execute from).
pub const SYSTEM_READ: &[&str] = &[
    "/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc", "/opt", "/proc", "/sys", "/run",
    "/var/lib", "/dev",
];

/// Writable devices.
pub const SYSTEM_WRITE: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/urandom",
    "/dev/random",
    "/dev/tty",
    "/dev/shm",
];

/// What the kernel offers, once per process.
pub fn probe() -> &'static str {
    static PROBE: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();
    PROBE.get_or_init(|| {
        // A ruleset that is created but never enforced tells whether Landlock is there.
        match Ruleset::default()
            .handle_access(AccessFs::from_all(ABI_USED))
            .and_then(|r| r.create())
        {
            Ok(_) => "landlock",
            Err(_) => "none",
        }
    })
}

/// A ruleset for one environment, to enforce in the child before `exec`.
pub struct Sandbox {
    ruleset: Option<RulesetCreated>,
    /// Bind mounts (source, target) made in a new mount namespace, all prepared before the
    /// fork so that the child allocates nothing.
    mounts: Vec<(std::ffi::CString, std::ffi::CString)>,
    uid_map: std::ffi::CString,
    gid_map: std::ffi::CString,
}

/// Whether environments get a mount namespace here, probed once by a child process.
pub fn namespaces() -> bool {
    static PROBE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *PROBE.get_or_init(|| {
        let mut cmd = std::process::Command::new("true");
        let mut sandbox = Sandbox {
            ruleset: None,
            mounts: Vec::new(),
            uid_map: id_map(unsafe { libc::getuid() }),
            gid_map: id_map(unsafe { libc::getgid() }),
        };
        use std::os::unix::process::CommandExt;
        // SAFETY: the closure makes system calls only.
        unsafe {
            cmd.pre_exec(move || {
                if sandbox.enter_namespace() {
                    Ok(())
                } else {
                    Err(std::io::Error::from_raw_os_error(libc::EPERM))
                }
            });
        }
        cmd.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// What health reports about isolation.
pub fn describe() -> String {
    let fs = probe();
    if namespaces() {
        format!("{fs}; private /tmp and /opt (mount namespace)")
    } else {
        format!("{fs}; shared /tmp (no mount namespace)")
    }
}

fn id_map(id: u32) -> std::ffi::CString {
    std::ffi::CString::new(format!("{id} {id} 1")).expect("no NUL")
}

fn cstr(p: &std::path::Path) -> Option<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(p.as_os_str().as_bytes()).ok()
}

impl Sandbox {
    /// `read`: trees readable (and executable); `write`: trees readable and writable.
    /// Paths that do not exist are skipped. `mounts`: (directory, where it appears), made
    /// when the kernel gives the process a mount namespace.
    pub fn new(read: &[PathBuf], write: &[PathBuf], mounts: &[(PathBuf, &str)]) -> Sandbox {
        let mounts: Vec<_> = if namespaces() {
            mounts
                .iter()
                .filter(|(_, target)| std::path::Path::new(target).is_dir())
                .filter_map(|(src, target)| Some((cstr(src)?, cstr(std::path::Path::new(target))?)))
                .collect()
        } else {
            Vec::new()
        };
        let uid_map = id_map(unsafe { libc::getuid() });
        let gid_map = id_map(unsafe { libc::getgid() });
        if probe() != "landlock" {
            return Sandbox {
                ruleset: None,
                mounts,
                uid_map,
                gid_map,
            };
        }
        let build = || -> Result<RulesetCreated, landlock::RulesetError> {
            let all = AccessFs::from_all(ABI_USED);
            let read_trees = SYSTEM_READ
                .iter()
                .map(PathBuf::from)
                .chain(read.iter().cloned());
            let write_trees = SYSTEM_WRITE
                .iter()
                .map(PathBuf::from)
                .chain(write.iter().cloned());
            let rules = read_trees
                .map(|p| (p, AccessFs::from_read(ABI_USED)))
                .chain(write_trees.map(|p| (p, all)));
            let mut rs = Ruleset::default().handle_access(all)?.create()?;
            for (path, access) in rules {
                let Ok(fd) = PathFd::new(&path) else {
                    continue;
                };
                // A file (not a directory) accepts only file rights.
                let access = if path.is_dir() {
                    access
                } else {
                    access & AccessFs::from_file(ABI_USED)
                };
                rs = rs.add_rule(PathBeneath::new(fd, access))?;
            }
            Ok(rs)
        };
        let ruleset = match build() {
            Ok(rs) => Some(rs),
            Err(e) => {
                tracing::warn!("landlock ruleset: {e}; the function runs unconfined");
                None
            }
        };
        Sandbox {
            ruleset,
            mounts,
            uid_map,
            gid_map,
        }
    }

    /// Enters a new mount namespace (in a new user namespace when not privileged) and makes
    /// the bind mounts; false when the kernel refuses. Runs in the child: system calls only.
    fn enter_namespace(&mut self) -> bool {
        // SAFETY: plain system calls on prepared, NUL-terminated strings.
        unsafe {
            if libc::unshare(libc::CLONE_NEWNS) != 0 {
                if libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS) != 0 {
                    return false;
                }
                let write = |path: &[u8], text: &std::ffi::CStr| -> bool {
                    let fd = libc::open(path.as_ptr().cast(), libc::O_WRONLY);
                    if fd < 0 {
                        return false;
                    }
                    let bytes = text.to_bytes();
                    let ok =
                        libc::write(fd, bytes.as_ptr().cast(), bytes.len()) == bytes.len() as isize;
                    libc::close(fd);
                    ok
                };
                if !write(b"/proc/self/setgroups\0", c"deny")
                    || !write(b"/proc/self/uid_map\0", &self.uid_map)
                    || !write(b"/proc/self/gid_map\0", &self.gid_map)
                {
                    return false;
                }
            }
            // Mounts made here stay in this namespace.
            if libc::mount(
                c"none".as_ptr(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ) != 0
            {
                return false;
            }
            for (src, dst) in &self.mounts {
                if libc::mount(
                    src.as_ptr(),
                    dst.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND | libc::MS_REC,
                    std::ptr::null(),
                ) != 0
                {
                    return false;
                }
            }
        }
        true
    }

    /// Makes the mounts, then enforces the ruleset on the calling process (the child, between
    /// fork and exec; Landlock forbids mounting afterwards).
    pub fn enforce(&mut self) -> std::io::Result<()> {
        if !self.mounts.is_empty() && !self.enter_namespace() {
            return Err(std::io::Error::from_raw_os_error(libc::EPERM));
        }
        let Some(rs) = self.ruleset.take() else {
            return Ok(());
        };
        match rs.restrict_self() {
            Ok(s) if s.ruleset != RulesetStatus::NotEnforced => Ok(()),
            Ok(_) => Ok(()),
            Err(_) => Err(std::io::Error::from_raw_os_error(libc::EPERM)),
        }
    }
}
