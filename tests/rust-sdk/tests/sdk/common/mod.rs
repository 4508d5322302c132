//! A real `basalt serve` on a free port for the SDK tests: started from the release binary
//! (`BASALT_BIN` overrides), killed (and its data directory removed) when dropped.

// Each test binary compiles its own copy and uses only part of it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    child: Child,
    pub endpoint: String,
    dir: Option<PathBuf>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(d) = &self.dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// Where persistent state goes.
pub enum Data {
    /// `--ephemeral`.
    Memory,
    /// `--data-dir` in a fresh temporary directory.
    TempDir,
}

/// Starts the server with `extra` arguments; `None` (with the reason printed) when the binary
/// has not been built.
pub fn start(data: Data, extra: &[&str]) -> Option<Server> {
    let bin = std::env::var("BASALT_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/release/basalt")
        });
    if !bin.exists() {
        eprintln!(
            "skipped: {} not built (cargo build --release)",
            bin.display()
        );
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let port_arg = port.to_string();
    let mut cmd = Command::new(bin);
    cmd.args(["serve", "--host", "127.0.0.1", "--port", &port_arg]);
    let dir = match data {
        Data::Memory => {
            cmd.arg("--ephemeral");
            None
        }
        Data::TempDir => {
            let d = std::env::temp_dir().join(format!("basalt-sdk-{}-{port}", std::process::id()));
            cmd.arg("--data-dir").arg(&d);
            Some(d)
        }
    };
    let child = cmd
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
        dir,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    Some(server)
}

/// Whether `file` is installed in the model directory (`BASALT_MODEL_DIR`, default
/// `~/.cache/basalt/models`); says why the test is skipped when it is not.
pub fn model_installed(file: &str, what: &str) -> bool {
    let dir = std::env::var("BASALT_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/basalt/models")
        });
    let found = dir.join(file).exists();
    if !found {
        eprintln!("skipped: {what} is not installed (basalt models pull)");
    }
    found
}
