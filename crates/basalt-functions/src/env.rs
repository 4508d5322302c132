//! One execution environment: a sandboxed child process, its Runtime API and its output.

use crate::logpipe::LogPipe;
use crate::runtime_api::{self, Channel, Pending, Reply};
use crate::runtimes::Launch;
use crate::sandbox::Sandbox;
use crate::{EngineError, EnvSpec, FunctionError, Invocation, Outcome, now_ms};
use bytes::Bytes;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How long a runtime may take to initialize (AWS's limit for on-demand functions).
const INIT_LIMIT: Duration = Duration::from_secs(10);
/// How often memory is sampled during an invocation.
const MEMORY_TICK: Duration = Duration::from_millis(50);

pub(crate) struct Env {
    pub(crate) spec: Arc<EnvSpec>,
    pub(crate) log_stream: String,
    pid: i32,
    channel: Arc<Channel>,
    replies: tokio::sync::Mutex<mpsc::UnboundedReceiver<Reply>>,
    ready: Arc<tokio::sync::Notify>,
    logs: LogPipe,
    server: tokio::task::JoinHandle<()>,
    dir: PathBuf,
    cold: AtomicBool,
    dead: Arc<AtomicBool>,
    frozen: AtomicBool,
    pub(crate) started: Instant,
    pub(crate) last_used: parking_lot::Mutex<Instant>,
    /// Started ahead of demand (provisioned concurrency): never reaped for idleness.
    pub(crate) provisioned: bool,
    /// What a provisioned environment printed while initializing, for its first invocation.
    init_logs: parking_lot::Mutex<Vec<(i64, String)>>,
}

fn signal_group(pid: i32, sig: i32) {
    // SAFETY: signals the process group the child leads.
    unsafe {
        libc::kill(-pid, sig);
    }
}

/// Resident memory of the process and its children, in KiB, and its peak.
fn memory_kib(pid: i32) -> (u64, u64) {
    let field = |status: &str, name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let (mut rss, hwm) = (field(&status, "VmRSS:"), field(&status, "VmHWM:"));
    let children =
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    for child in children.split_whitespace() {
        let s = std::fs::read_to_string(format!("/proc/{child}/status")).unwrap_or_default();
        rss += field(&s, "VmRSS:");
    }
    (rss, hwm.max(rss))
}

impl Env {
    /// Starts the process; its initialization runs while the first invocation waits.
    pub(crate) async fn start(
        spec: Arc<EnvSpec>,
        launch: Launch,
        work_dir: &std::path::Path,
        provisioned: bool,
    ) -> Result<Arc<Env>, EngineError> {
        let start_err = |e: std::io::Error| EngineError::Start(e.to_string());
        let id = uuid::Uuid::new_v4().simple().to_string();
        let dir = work_dir.join("envs").join(&id);
        let tmp = dir.join("tmp");
        std::fs::create_dir_all(&tmp).map_err(start_err)?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(start_err)?;
        let api = listener.local_addr().map_err(start_err)?;
        let ready = Arc::new(tokio::sync::Notify::new());
        let (channel, replies) = Channel::new(ready.clone());
        let server = tokio::spawn(runtime_api::serve(listener, channel.clone()));

        let log_stream = format!("{}/[{}]{id}", chrono_date(), spec.version);
        // What AWS mounts: the environment's own /tmp, and the layers (or nothing) at /opt.
        let empty_opt = work_dir.join("empty-opt");
        std::fs::create_dir_all(&empty_opt).map_err(start_err)?;
        let opt_src = spec.opt_dir.clone().unwrap_or(empty_opt);
        let mut read = launch.read.clone();
        read.push(spec.task_root.clone());
        read.push(opt_src.clone());
        // Mounting over /tmp would hide whatever the process needs from under the host's
        // /tmp (a data dir there); then the host's /tmp stays, shared, and writable.
        let host_tmp = std::path::Path::new("/tmp");
        let needs_host_tmp = read
            .iter()
            .chain([&tmp, &launch.program])
            .any(|p| p.starts_with(host_tmp));
        let mut write = vec![tmp.clone()];
        let mut mounts = vec![(opt_src, "/opt")];
        if needs_host_tmp {
            write.push(host_tmp.to_path_buf());
        } else {
            mounts.push((tmp.clone(), "/tmp"));
        }
        let mut sandbox = Sandbox::new(&read, &write, &mounts);
        let (reader, writer) = std::io::pipe().map_err(start_err)?;
        let writer2 = writer.try_clone().map_err(start_err)?;

        let task_root = spec.task_root.display().to_string();
        let opt = spec.opt_dir.as_ref().map(|o| o.display().to_string());
        let mut lib_path = vec![format!("{task_root}/lib")];
        if let Some(opt) = &opt {
            lib_path.push(format!("{opt}/lib"));
        }
        let mut cmd = tokio::process::Command::new(&launch.program);
        cmd.args(&launch.args)
            .current_dir(&spec.task_root)
            .env_clear()
            .env(
                "PATH",
                match &opt {
                    Some(o) => format!("{o}/bin:/usr/local/bin:/usr/bin:/bin"),
                    None => "/usr/local/bin:/usr/bin:/bin".into(),
                },
            )
            .env("LANG", "en_US.UTF-8")
            .env("TZ", ":UTC")
            .env("TMPDIR", &tmp)
            .env("LD_LIBRARY_PATH", lib_path.join(":"))
            .envs(spec.vars.iter().map(|(k, v)| (k, v)))
            .envs(launch.vars.iter().map(|(k, v)| (k, v)))
            .env("AWS_LAMBDA_RUNTIME_API", api.to_string())
            .env("LAMBDA_TASK_ROOT", &task_root)
            .env(
                "LAMBDA_RUNTIME_DIR",
                launch.program.parent().unwrap_or(&spec.task_root),
            )
            .env("_HANDLER", &spec.handler)
            .env("AWS_LAMBDA_LOG_STREAM_NAME", &log_stream)
            .env(
                "AWS_LAMBDA_INITIALIZATION_TYPE",
                if provisioned {
                    "provisioned-concurrency"
                } else {
                    "on-demand"
                },
            )
            .stdin(std::process::Stdio::null())
            .stdout(writer)
            .stderr(writer2)
            .process_group(0);
        // SAFETY: the closure runs in the child between fork and exec; it makes two system
        // calls (prctl, landlock) and allocates nothing on success.
        unsafe {
            cmd.pre_exec(move || {
                // Dies with Basalt, so no environment outlives a `kill -9` of the server.
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                sandbox.enforce()
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| EngineError::Start(format!("{}: {e}", launch.program.display())))?;
        // Drop our copies of the write end, so the pipe closes when the process exits.
        drop(cmd);
        let pid = child.id().map_or(0, |p| p as i32);
        let dead = Arc::new(AtomicBool::new(false));
        {
            let (channel, dead) = (channel.clone(), dead.clone());
            tokio::spawn(async move {
                let status = child.wait().await;
                dead.store(true, Ordering::SeqCst);
                channel.reply(Reply::Exited(match status {
                    Ok(s) => describe_exit(s),
                    Err(e) => e.to_string(),
                }));
            });
        }
        Ok(Arc::new(Env {
            spec,
            log_stream,
            pid,
            channel,
            replies: tokio::sync::Mutex::new(replies),
            ready,
            logs: LogPipe::start(reader),
            server,
            dir,
            cold: AtomicBool::new(true),
            dead,
            frozen: AtomicBool::new(false),
            started: Instant::now(),
            last_used: parking_lot::Mutex::new(Instant::now()),
            provisioned,
            init_logs: parking_lot::Mutex::new(Vec::new()),
        }))
    }

    pub(crate) fn is_dead(&self) -> bool {
        self.dead.load(Ordering::SeqCst)
    }

    pub(crate) fn kill(&self) {
        if !self.dead.swap(true, Ordering::SeqCst) && self.pid > 0 {
            signal_group(self.pid, libc::SIGKILL);
            // A stopped process handles SIGKILL only once continued on some kernels.
            signal_group(self.pid, libc::SIGCONT);
        }
    }

    fn freeze(&self) {
        if !self.is_dead() && !self.frozen.swap(true, Ordering::SeqCst) {
            signal_group(self.pid, libc::SIGSTOP);
        }
    }

    fn thaw(&self) {
        if self.frozen.swap(false, Ordering::SeqCst) {
            signal_group(self.pid, libc::SIGCONT);
        }
    }

    /// Runs one invocation; the environment is frozen afterwards, or dead when it must not
    /// be reused (timeout, crash, out of memory, failed init).
    pub(crate) async fn invoke(&self, inv: &Invocation) -> Outcome {
        let mut replies = self.replies.lock().await;
        self.thaw();
        let spec = &self.spec;
        let mut logs = Vec::new();
        let mut init_duration = None;
        let mut early: Option<Reply> = None;
        if self.cold.swap(false, Ordering::SeqCst) {
            let (failed, took) = self.await_init(&mut replies).await;
            init_duration = Some(took);
            early = failed;
            logs.extend(self.logs.take(Duration::from_millis(20), early.is_some()));
        } else {
            logs.append(&mut self.init_logs.lock());
        }
        let start = Instant::now();
        let start_ms = now_ms();
        logs.push((
            start_ms,
            format!(
                "START RequestId: {} Version: {}",
                inv.request_id, spec.version
            ),
        ));
        let reply = match early {
            Some(r) => Some(r),
            None => {
                self.channel.offer(Pending {
                    request_id: inv.request_id.clone(),
                    payload: inv.payload.clone(),
                    deadline_ms: start_ms + spec.timeout.as_millis() as i64,
                    invoked_arn: inv.invoked_arn.clone(),
                    client_context: inv.client_context.clone(),
                    trace_id: inv.trace_id.clone(),
                });
                self.wait(&mut replies, inv, start + spec.timeout).await
            }
        };
        let duration = start.elapsed();
        let (result, reusable) = self.result_of(reply, inv);
        if !reusable {
            self.kill();
        }
        logs.extend(self.logs.take(Duration::from_millis(20), !reusable));
        if let Err(e) = &result
            && e.error_type == "Sandbox.Timedout"
        {
            logs.push((
                now_ms(),
                format!(
                    "{} {} Task timed out after {:.2} seconds",
                    chrono_datetime(),
                    inv.request_id,
                    spec.timeout.as_secs_f64()
                ),
            ));
        }
        let (_, hwm) = memory_kib(self.pid);
        let max_memory_mb = (hwm / 1024) as u32;
        let billed = duration.as_millis().max(1) as u64;
        let mut report = format!(
            "REPORT RequestId: {}\tDuration: {:.2} ms\tBilled Duration: {} ms\tMemory Size: {} MB\tMax Memory Used: {} MB\t",
            inv.request_id,
            duration.as_secs_f64() * 1000.0,
            billed + init_duration.map_or(0, |d| d.as_millis() as u64),
            spec.memory_mb,
            max_memory_mb
        );
        if let Some(d) = init_duration {
            report.push_str(&format!(
                "Init Duration: {:.2} ms\t",
                d.as_secs_f64() * 1000.0
            ));
        }
        let end_ms = now_ms();
        logs.push((end_ms, format!("END RequestId: {}", inv.request_id)));
        logs.push((end_ms, report));
        if reusable {
            self.freeze();
            *self.last_used.lock() = Instant::now();
        }
        Outcome {
            result,
            logs,
            duration,
            init_duration,
            max_memory_mb,
            log_stream: self.log_stream.clone(),
        }
    }

    /// Waits for the runtime's first `next` (its initialization done); the reply that ended
    /// it instead (init error, exit, init timeout), and how long it took.
    async fn await_init(
        &self,
        replies: &mut mpsc::UnboundedReceiver<Reply>,
    ) -> (Option<Reply>, Duration) {
        let began = self.started;
        let failed = tokio::select! {
            _ = self.ready.notified() => None,
            r = replies.recv() => Some(r.unwrap_or(Reply::Exited("closed".into()))),
            _ = tokio::time::sleep(INIT_LIMIT.saturating_sub(began.elapsed())) => {
                self.kill();
                Some(Reply::Exited(format!("Init timed out after {:.2} seconds", INIT_LIMIT.as_secs_f64())))
            }
        };
        (failed, began.elapsed())
    }

    /// Initializes the environment ahead of any invocation (provisioned concurrency) and
    /// freezes it; false when its initialization failed (it is then dead).
    pub(crate) async fn prewarm(&self) -> bool {
        let mut replies = self.replies.lock().await;
        if !self.cold.swap(false, Ordering::SeqCst) {
            return !self.is_dead();
        }
        let (failed, _) = self.await_init(&mut replies).await;
        self.init_logs
            .lock()
            .extend(self.logs.take(Duration::from_millis(20), failed.is_some()));
        if failed.is_some() {
            self.kill();
            return false;
        }
        self.freeze();
        *self.last_used.lock() = Instant::now();
        true
    }

    async fn wait(
        &self,
        replies: &mut mpsc::UnboundedReceiver<Reply>,
        inv: &Invocation,
        deadline: Instant,
    ) -> Option<Reply> {
        let limit_kib = u64::from(self.spec.memory_mb) * 1024;
        let mut tick = tokio::time::interval(MEMORY_TICK);
        loop {
            tokio::select! {
                r = replies.recv() => match r {
                    Some(Reply::Response { ref request_id, .. } | Reply::Error { ref request_id, .. })
                        if *request_id != inv.request_id => continue,
                    Some(r) => return Some(r),
                    None => return Some(Reply::Exited("closed".into())),
                },
                _ = tokio::time::sleep_until(deadline.into()) => return None,
                _ = tick.tick() => {
                    if memory_kib(self.pid).0 > limit_kib {
                        self.kill();
                        return Some(Reply::OutOfMemory);
                    }
                }
            }
        }
    }

    /// The invocation's result, and whether the environment may serve another.
    fn result_of(
        &self,
        reply: Option<Reply>,
        inv: &Invocation,
    ) -> (Result<Bytes, FunctionError>, bool) {
        let id = &inv.request_id;
        match reply {
            Some(Reply::Response { body, .. }) => (Ok(body), true),
            Some(Reply::Error {
                body, error_type, ..
            }) => (Err(function_error(body, error_type)), true),
            Some(Reply::InitError { body, error_type }) => {
                (Err(function_error(body, error_type)), false)
            }
            Some(Reply::OutOfMemory) => (
                Err(FunctionError::platform(
                    "Runtime.OutOfMemory",
                    format!("RequestId: {id} Error: Runtime exited with error: signal: killed"),
                )),
                false,
            ),
            Some(Reply::Exited(how)) => (
                Err(FunctionError::platform(
                    "Runtime.ExitError",
                    format!("RequestId: {id} Error: Runtime exited with error: {how}"),
                )),
                false,
            ),
            None => (
                Err(FunctionError::platform(
                    "Sandbox.Timedout",
                    format!(
                        "RequestId: {id} Error: Task timed out after {:.2} seconds",
                        self.spec.timeout.as_secs_f64()
                    ),
                )),
                false,
            ),
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        self.kill();
        self.server.abort();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The runtime's error document; `errorType` defaults to the header's type.
fn function_error(body: Bytes, header_type: Option<String>) -> FunctionError {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
    let error_type = parsed
        .as_ref()
        .and_then(|v| v.get("errorType"))
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .or(header_type)
        .unwrap_or_else(|| "Unhandled".into());
    FunctionError { body, error_type }
}

fn describe_exit(s: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (_, Some(9)) => "signal: killed".into(),
        (_, Some(sig)) => format!("signal: {sig}"),
        _ => s.to_string(),
    }
}

/// `2026/12/06`, the date prefix of Lambda's log stream names.
fn chrono_date() -> String {
    chrono::Utc::now().format("%Y/%m/%d").to_string()
}

/// `2026-12-06T01:02:03.456Z`.
fn chrono_datetime() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}
