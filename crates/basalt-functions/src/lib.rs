//! Runs Lambda functions as local processes, without Docker.
//!
//! An *environment* is one child process (AWS's runtime interface client for Python, the
//! package's `bootstrap` for `provided.*`) that talks to its own instance of the Lambda
//! Runtime API (`/2018-06-01/runtime/...`, [`runtime_api`]) on a loopback port. Environments
//! are reused warm (module state survives between invocations), frozen with `SIGSTOP` while
//! idle, killed on timeout or when they outgrow their memory size, and reaped after an idle
//! time. Each runs in a Landlock sandbox ([`sandbox`]) that lets it read the system, its
//! runtime and its own code, and write only its own temporary directory.
//!
//! The engine knows nothing of the Lambda API: the service gives it an [`EnvSpec`] (what to
//! run, with which environment variables) and an [`Invocation`], and gets an [`Outcome`].

mod env;
mod logpipe;
mod pool;
pub mod runtime_api;
pub mod runtimes;
pub mod sandbox;
pub mod unpack;

pub use pool::{Engine, EngineConfig};
pub use runtimes::{Launch, Runtimes};

use bytes::Bytes;
use std::path::PathBuf;
use std::time::Duration;

/// What an environment runs. Environments are shared by invocations whose specs have the
/// same [`EnvSpec::key`].
#[derive(Debug, Clone)]
pub struct EnvSpec {
    /// Identifies interchangeable environments: function, version and configuration revision.
    pub key: String,
    /// Invocations running at once share this limit (the function's ARN: reserved
    /// concurrency applies to all its versions together).
    pub concurrency_key: String,
    pub runtime: String,
    pub handler: String,
    /// The unpacked deployment package (`LAMBDA_TASK_ROOT`).
    pub task_root: PathBuf,
    /// The unpacked layers (what AWS mounts at `/opt`), if any.
    pub opt_dir: Option<PathBuf>,
    pub memory_mb: u32,
    pub ephemeral_mb: u32,
    pub timeout: Duration,
    /// The function's variables and the standard ones; the engine adds
    /// `AWS_LAMBDA_RUNTIME_API`, `LAMBDA_TASK_ROOT`, `_HANDLER` and the runtime's own.
    pub vars: Vec<(String, String)>,
    /// The version the environment runs, for the START line (`$LATEST`, `3`).
    pub version: String,
}

/// One invocation.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub request_id: String,
    pub payload: Bytes,
    /// The ARN the caller invoked, with its qualifier if any.
    pub invoked_arn: String,
    pub client_context: Option<String>,
    pub trace_id: String,
}

/// Why an invocation ended without a result of the function's.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionError {
    /// The error document as AWS returns it (errorMessage, errorType, stackTrace...).
    pub body: Bytes,
    /// `errorType`, for logs and metrics.
    pub error_type: String,
}

impl FunctionError {
    /// An error of the platform's (timeout, out of memory, runtime exit), shaped as AWS
    /// shapes it.
    pub fn platform(error_type: &str, message: String) -> Self {
        let body = serde_json::json!({"errorType": error_type, "errorMessage": message});
        FunctionError {
            body: Bytes::from(body.to_string()),
            error_type: error_type.to_owned(),
        }
    }
}

/// What an invocation produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub result: Result<Bytes, FunctionError>,
    /// The invocation's log lines (timestamp in ms, text), START/END/REPORT included; a cold
    /// start's init output comes first.
    pub logs: Vec<(i64, String)>,
    pub duration: Duration,
    /// Set on a cold start.
    pub init_duration: Option<Duration>,
    pub max_memory_mb: u32,
    /// The log stream of the environment that ran it.
    pub log_stream: String,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The runtime is not installed on this machine; the message says how to install it.
    #[error("{0}")]
    RuntimeMissing(String),
    /// Concurrency limit reached.
    #[error("Rate Exceeded.")]
    Throttled,
    #[error("could not start the execution environment: {0}")]
    Start(String),
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
