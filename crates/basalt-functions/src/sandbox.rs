//! Filesystem isolation with Landlock: an environment may read the system directories, its
//! runtime and its own code, and write only its own temporary directory (and `/dev`'s
//! character devices). Everything else (Basalt's data dir, the models, other functions'
//! code and files) is out of reach, for the function and every process it starts.
//!
//! Landlock needs no privilege and no namespace; when the kernel lacks it the engine says so
//! (`/_basalt/health`) and runs functions unconfined.

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
pub const SYSTEM_WRITE: &[&str] = &["/dev/null", "/dev/zero", "/dev/urandom", "/dev/random", "/dev/tty", "/dev/shm"];

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
}

impl Sandbox {
    /// `read`: trees readable (and executable); `write`: trees readable and writable.
    /// Paths that do not exist are skipped.
    pub fn new(read: &[PathBuf], write: &[PathBuf]) -> Sandbox {
        if probe() != "landlock" {
            return Sandbox { ruleset: None };
        }
        let build = || -> Result<RulesetCreated, landlock::RulesetError> {
            let all = AccessFs::from_all(ABI_USED);
            let read_trees = SYSTEM_READ.iter().map(PathBuf::from).chain(read.iter().cloned());
            let write_trees = SYSTEM_WRITE.iter().map(PathBuf::from).chain(write.iter().cloned());
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
        match build() {
            Ok(rs) => Sandbox { ruleset: Some(rs) },
            Err(e) => {
                tracing::warn!("landlock ruleset: {e}; the function runs unconfined");
                Sandbox { ruleset: None }
            }
        }
    }

    /// Enforces the ruleset on the calling process (the child, between fork and exec).
    pub fn enforce(&mut self) -> std::io::Result<()> {
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
