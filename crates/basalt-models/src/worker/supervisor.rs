//! The server's side of a worker process: start it, route calls and replies by id, notice
//! when it dies, fail exactly the calls it had in flight, restart it with backoff.
//!
//! Errors a caller can see: a call in flight when the worker died fails with
//! [`ChatError::Unavailable`] (the cause named: `killed by signal 9 (SIGKILL)`); a call that
//! finds no worker able to start fails with [`ChatError::NotReady`]. Calls that arrive while
//! a worker restarts wait for it.

use super::frame::{self, Frame};
use super::{Call, EngineInfo, EngineSpec, Reply};
use crate::chat::{ChatError, ChatEvent};
use basalt_chat::ChatRequest;
use parking_lot::Mutex as SyncMutex;
use serde::Serialize;
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::sync::{Mutex, mpsc, oneshot};

/// First restart delay; doubled per consecutive failure up to [`MAX_BACKOFF`].
const BASE_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A worker that stayed up this long resets the failure count.
const HEALTHY_AFTER: Duration = Duration::from_secs(60);
/// A call that finds the worker in a backoff at most this long waits for the restart.
const MAX_CALLER_WAIT: Duration = Duration::from_secs(2);
/// Failures in a row after which a worker is restarted on demand only, not eagerly.
const MAX_EAGER_RESTARTS: u32 = 5;
/// Loading a model (reading the weights, building the context) must finish within this.
const LOAD_TIMEOUT: Duration = Duration::from_secs(600);

type Sink = mpsc::UnboundedSender<(Reply, Vec<u8>)>;
type ConnFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Arc<Conn>, String>> + Send>>;

/// One running worker process.
struct Conn {
    calls: mpsc::UnboundedSender<Frame>,
    pending: SyncMutex<HashMap<u64, Sink>>,
    next_id: AtomicU64,
    alive: AtomicBool,
    info: EngineInfo,
    /// Kills the process (idle unload, shutdown).
    kill: SyncMutex<Option<oneshot::Sender<()>>>,
}

impl Conn {
    fn alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }
}

/// What health and metrics report about a worker.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WorkerStatus {
    pub engine: &'static str,
    /// `starting`, `running`, `restarting`, `failed` (could not start), `stopped`.
    pub state: &'static str,
    pub pid: Option<u32>,
    /// Times the worker died unexpectedly.
    pub crashes: u64,
    pub starts: u64,
    /// How the last worker ended, when it died unexpectedly.
    pub last_failure: Option<String>,
    /// Calls failed because their worker died.
    pub failed_calls: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub info: Option<EngineInfo>,
    #[serde(skip)]
    consecutive_failures: u32,
    #[serde(skip)]
    last_failure_at: Option<Instant>,
    #[serde(skip)]
    up_since: Option<Instant>,
}

struct Inner {
    exe: PathBuf,
    spec: EngineSpec,
    env: Vec<(String, String)>,
    conn: Mutex<Option<Arc<Conn>>>,
    status: SyncMutex<WorkerStatus>,
    closed: AtomicBool,
    /// The llama.cpp CPU level a worker proved: restarts skip the proof (`crate::level`).
    proven_level: SyncMutex<Option<String>>,
    /// Levels whose worker later died of SIGILL all the same: never tried again.
    refused_levels: SyncMutex<Vec<String>>,
}

/// A supervised worker process serving one engine.
pub struct Supervisor {
    inner: Arc<Inner>,
}

impl Supervisor {
    /// `exe` is the Basalt executable (`std::env::current_exe()`): it is started as
    /// `exe __worker SPEC`. `env` is added to the worker's environment.
    pub fn new(exe: PathBuf, spec: EngineSpec, env: Vec<(String, String)>) -> Supervisor {
        let status = WorkerStatus {
            engine: spec.engine(),
            state: "stopped",
            ..Default::default()
        };
        Supervisor {
            inner: Arc::new(Inner {
                exe,
                spec,
                env,
                conn: Mutex::new(None),
                status: SyncMutex::new(status),
                closed: AtomicBool::new(false),
                proven_level: SyncMutex::new(None),
                refused_levels: SyncMutex::new(Vec::new()),
            }),
        }
    }

    /// Starts the worker now (normally it starts on the first call) and returns its info.
    pub async fn start(&self) -> Result<EngineInfo, String> {
        Ok(Inner::conn(&self.inner, false).await?.info.clone())
    }

    pub fn status(&self) -> WorkerStatus {
        self.inner.status.lock().clone()
    }

    /// Calls the worker is serving now (an idle unload must wait for them).
    pub fn in_flight(&self) -> usize {
        self.inner
            .conn
            .try_lock()
            .map(|g| g.as_ref().map_or(0, |c| c.pending.lock().len()))
            // Starting: a caller is waiting for it.
            .unwrap_or(1)
    }

    /// Sends `call` (built with a fresh id) and returns the receiver of its replies.
    async fn call(
        &self,
        make: impl FnOnce(u64) -> Call,
    ) -> Result<(u64, Arc<Conn>, mpsc::UnboundedReceiver<(Reply, Vec<u8>)>), ChatError> {
        let conn = Inner::conn(&self.inner, false)
            .await
            .map_err(ChatError::NotReady)?;
        let id = conn.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        conn.pending.lock().insert(id, tx);
        if !conn.alive()
            || conn
                .calls
                .send(Frame::new(id, &make(id), Vec::new()))
                .is_err()
        {
            conn.pending.lock().remove(&id);
            return Err(ChatError::Unavailable(format!(
                "The {} worker stopped before the request could be sent; it is being restarted. Try again.",
                self.inner.spec.engine()
            )));
        }
        Ok((id, conn, rx))
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.inner.closed.store(true, Ordering::Release);
        if let Ok(mut guard) = self.inner.conn.try_lock()
            && let Some(conn) = guard.take()
            && let Some(kill) = conn.kill.lock().take()
        {
            let _ = kill.send(());
        }
        self.inner.status.lock().state = "stopped";
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last reference: whatever worker is left goes with it.
        if let Some(conn) = self.conn.get_mut().take()
            && let Some(kill) = conn.kill.lock().take()
        {
            let _ = kill.send(());
        }
    }
}

impl Inner {
    /// The running worker, starting one if there is none; concurrent callers wait for the
    /// same start. A caller arriving within the backoff of a failure is answered at once
    /// (`NotReady`) instead of queueing another start; the restart task (`after_failure`)
    /// waits the backoff out first, without holding the lock. Boxed: the reader of a worker
    /// restarts it through this, and a named future type breaks that cycle.
    fn conn(self: &Arc<Self>, after_failure: bool) -> ConnFuture {
        let this = self.clone();
        Box::pin(async move { this.connect(after_failure).await })
    }

    fn not_ready(&self, wait: Duration) -> String {
        let last = self.status.lock().last_failure.clone().unwrap_or_default();
        format!(
            "The {} model is not ready: its worker failed ({last}) and is started again in {} ms. Try again.",
            self.spec.engine(),
            wait.as_millis().max(1)
        )
    }

    /// Time left before a failed worker may be started again.
    fn backoff_left(&self) -> Duration {
        let s = self.status.lock();
        match (s.last_failure_at, s.consecutive_failures) {
            (Some(at), n) if n > 0 => backoff(n).saturating_sub(at.elapsed()),
            _ => Duration::ZERO,
        }
    }

    async fn connect(self: Arc<Self>, after_failure: bool) -> Result<Arc<Conn>, String> {
        let engine = self.spec.engine();
        // Wait out a short backoff (a crash's first restarts) outside the lock, so the call
        // is served by the restarted worker; past MAX_CALLER_WAIT, answer NotReady at once.
        let wait = self.backoff_left();
        if !wait.is_zero() {
            if !after_failure && wait > MAX_CALLER_WAIT {
                return Err(self.not_ready(wait));
            }
            tokio::time::sleep(wait).await;
        }
        let mut guard = self.conn.lock().await;
        if let Some(c) = guard.as_ref().filter(|c| c.alive()) {
            return Ok(c.clone());
        }
        *guard = None;
        if self.closed.load(Ordering::Acquire) {
            return Err(format!("The {engine} model was unloaded."));
        }
        // A start failed while this call waited for the lock: one attempt per backoff, not
        // one per waiting caller.
        let wait = self.backoff_left();
        if !wait.is_zero() {
            return Err(self.not_ready(wait));
        }
        {
            let mut s = self.status.lock();
            s.state = if s.crashes > 0 {
                "restarting"
            } else {
                "starting"
            };
            s.starts += 1;
        }
        match self.spawn().await {
            Ok(conn) if self.closed.load(Ordering::Acquire) => {
                // Unloaded while it was starting.
                if let Some(kill) = conn.kill.lock().take() {
                    let _ = kill.send(());
                }
                Err(format!("The {engine} model was unloaded."))
            }
            Ok(conn) => {
                let mut s = self.status.lock();
                s.state = "running";
                s.pid = Some(conn.info.pid);
                s.info = Some(conn.info.clone());
                s.up_since = Some(Instant::now());
                drop(s);
                *guard = Some(conn.clone());
                Ok(conn)
            }
            Err(e) => {
                let mut s = self.status.lock();
                s.state = "failed";
                s.pid = None;
                s.consecutive_failures += 1;
                s.last_failure_at = Some(Instant::now());
                s.last_failure = Some(e.clone());
                tracing::error!(engine, "model worker failed to start: {e}");
                Err(format!(
                    "The {engine} model is not ready: its worker failed to start ({e})."
                ))
            }
        }
    }

    async fn spawn(self: &Arc<Self>) -> Result<Arc<Conn>, String> {
        let spec = serde_json::to_string(&self.spec).map_err(|e| e.to_string())?;
        let mut cmd = tokio::process::Command::new(&self.exe);
        cmd.arg("__worker")
            .arg(spec)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        if let Some(level) = self.proven_level.lock().clone() {
            cmd.env("BASALT_LLAMA_LEVEL", level);
        }
        let refused = self.refused_levels.lock().join(",");
        if !refused.is_empty() {
            cmd.env("BASALT_LLAMA_REFUSED", refused);
        }
        #[cfg(target_os = "linux")]
        // SAFETY: prctl is async-signal-safe; the worker dies with the server, even a SIGKILLed one.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.exe.display()))?;
        let stdin = child.stdin.take().ok_or("no stdin pipe")?;
        let mut stdout = child.stdout.take().ok_or("no stdout pipe")?;
        let first = tokio::time::timeout(LOAD_TIMEOUT, frame::read(&mut stdout)).await;
        let info = match first {
            Ok(Ok(Some(f))) => match f.decode::<Reply>() {
                Ok(Reply::Ready { info }) => info,
                Ok(Reply::LoadFailed { error }) => {
                    let _ = child.wait().await;
                    return Err(error);
                }
                Ok(other) => return Err(format!("unexpected first reply {other:?}")),
                Err(e) => return Err(format!("unreadable first reply: {e}")),
            },
            Ok(Ok(None)) | Ok(Err(_)) => {
                let _ = child.start_kill();
                let status = child.wait().await;
                return Err(format!("it {} while loading", exit_cause(status)));
            }
            Err(_) => {
                let _ = child.start_kill();
                return Err(format!("loading took over {}s", LOAD_TIMEOUT.as_secs()));
            }
        };
        tracing::info!(engine = self.spec.engine(), pid = info.pid, cpu = %info.cpu, "model worker ready");
        if let Some(level) = &info.llama_level {
            *self.proven_level.lock() = Some(level.clone());
        }
        let (calls_tx, calls_rx) = mpsc::unbounded_channel();
        let (kill_tx, kill_rx) = oneshot::channel();
        let conn = Arc::new(Conn {
            calls: calls_tx,
            pending: SyncMutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            alive: AtomicBool::new(true),
            info,
            kill: SyncMutex::new(Some(kill_tx)),
        });
        tokio::spawn(write_calls(stdin, calls_rx));
        tokio::spawn(read_replies(
            Arc::downgrade(self),
            self.spec.engine(),
            conn.clone(),
            child,
            stdout,
            kill_rx,
        ));
        Ok(conn)
    }
}

fn backoff(failures: u32) -> Duration {
    BASE_BACKOFF
        .saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(MAX_BACKOFF)
}

async fn write_calls(mut stdin: ChildStdin, mut calls: mpsc::UnboundedReceiver<Frame>) {
    while let Some(f) = calls.recv().await {
        if frame::write(&mut stdin, &f).await.is_err() {
            return;
        }
    }
    // Channel closed: dropping stdin tells the worker to exit.
}

async fn read_replies(
    owner: Weak<Inner>,
    engine: &'static str,
    conn: Arc<Conn>,
    mut child: Child,
    mut stdout: ChildStdout,
    mut kill: oneshot::Receiver<()>,
) {
    // Why the loop ended: killed on purpose, or the pipe ended cleanly (the worker exited).
    let (killed, clean) = loop {
        let f = tokio::select! {
            f = frame::read(&mut stdout) => f,
            _ = &mut kill => break (true, false),
        };
        let f = match f {
            Ok(Some(f)) => f,
            Ok(None) => break (false, true),
            Err(e) => {
                tracing::error!(engine, "unreadable frame from a model worker: {e}");
                break (false, false);
            }
        };
        let reply = f.decode::<Reply>().unwrap_or_else(|e| Reply::Error {
            id: f.id,
            error: ChatError::Engine(format!("unreadable reply from the model worker: {e}")),
        });
        let Some(id) = reply.id() else { continue };
        let last = reply.is_final();
        let sink = {
            let mut pending = conn.pending.lock();
            if last {
                pending.remove(&id)
            } else {
                pending.get(&id).cloned()
            }
        };
        if let Some(sink) = sink
            && sink.send((reply, f.payload)).is_err()
            && !last
        {
            // The caller went away mid-stream: stop spending compute on it.
            conn.pending.lock().remove(&id);
            let _ = conn
                .calls
                .send(Frame::new(id, &Call::Cancel { id }, Vec::new()));
        }
    };
    conn.alive.store(false, Ordering::Release);
    if !clean {
        // Killed, or its replies can no longer be read: it must not live on.
        let _ = child.start_kill();
    }
    let cause = exit_cause(child.wait().await);
    let orphans: Vec<(u64, Sink)> = conn.pending.lock().drain().collect();
    let inner = owner.upgrade();
    let closing = killed
        || inner
            .as_ref()
            .is_none_or(|i| i.closed.load(Ordering::Acquire));
    let message = if closing {
        format!("The {engine} model was unloaded while serving this request. Try again.")
    } else {
        format!(
            "The {engine} model's worker process {cause} while serving this request; it is being restarted. Try again."
        )
    };
    for (id, sink) in &orphans {
        let error = ChatError::Unavailable(message.clone());
        let _ = sink.send((Reply::Error { id: *id, error }, Vec::new()));
    }
    let Some(inner) = inner.filter(|_| !closing) else {
        return;
    };
    tracing::error!(
        engine,
        pid = conn.info.pid,
        "model worker {cause}; restarting it"
    );
    if cause.contains("SIGILL") {
        // The proven level failed after all: the next worker proves another one.
        if let Some(level) = inner.proven_level.lock().take() {
            inner.refused_levels.lock().push(level);
        }
    }
    let restart = {
        let mut s = inner.status.lock();
        s.crashes += 1;
        s.failed_calls += orphans.len() as u64;
        if s.up_since.is_some_and(|t| t.elapsed() >= HEALTHY_AFTER) {
            s.consecutive_failures = 0;
        }
        s.consecutive_failures += 1;
        s.last_failure_at = Some(Instant::now());
        s.last_failure = Some(format!("worker {} {cause}", conn.info.pid));
        s.pid = None;
        s.up_since = None;
        let eager = s.consecutive_failures <= MAX_EAGER_RESTARTS;
        s.state = if eager { "restarting" } else { "failed" };
        eager
    };
    if restart {
        // Restart now (after the backoff) so the next request finds the model loaded. Past
        // MAX_EAGER_RESTARTS failures in a row, workers start on demand only.
        tokio::spawn(async move {
            let _ = Inner::conn(&inner, true).await;
        });
    }
}

/// "exited with status 3", "was killed by signal 9 (SIGKILL)".
fn exit_cause(status: std::io::Result<std::process::ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Err(e) => format!("could not be waited for ({e})"),
        Ok(s) => match (s.code(), s.signal()) {
            (_, Some(sig)) => format!("was killed by {}", crate::cpu::signal_name(sig)),
            (Some(code), None) => format!("exited with status {code}"),
            (None, None) => "ended".to_owned(),
        },
    }
}

/// A chat model in a worker process.
pub struct WorkerChat {
    sup: Supervisor,
    pub name: String,
}

impl WorkerChat {
    /// Starts the worker and waits for the model to load (so load errors surface here).
    pub async fn start(
        exe: PathBuf,
        spec: EngineSpec,
        env: Vec<(String, String)>,
    ) -> Result<WorkerChat, String> {
        let sup = Supervisor::new(exe, spec, env);
        let info = sup.start().await?;
        Ok(WorkerChat {
            sup,
            name: info.name,
        })
    }

    pub fn status(&self) -> WorkerStatus {
        self.sup.status()
    }

    /// Calls the worker is serving now.
    pub fn in_flight(&self) -> usize {
        self.sup.in_flight()
    }

    pub async fn count_tokens(&self, req: &ChatRequest) -> Result<usize, ChatError> {
        let request = req.clone();
        let (_, _conn, mut rx) = self
            .sup
            .call(|id| Call::CountTokens { id, request })
            .await?;
        match rx.recv().await {
            Some((Reply::Tokens { count, .. }, _)) => Ok(count),
            Some((Reply::Error { error, .. }, _)) => Err(error),
            Some(_) => Err(ChatError::Engine(
                "unexpected reply from the model worker".into(),
            )),
            None => Err(stopped()),
        }
    }

    pub async fn stream(
        &self,
        req: &ChatRequest,
    ) -> Result<mpsc::UnboundedReceiver<Result<ChatEvent, ChatError>>, ChatError> {
        let request = req.clone();
        let (id, conn, mut rx) = self.sup.call(|id| Call::Chat { id, request }).await?;
        // Errors found before generation starts (validation, context window, queue full) are
        // the call's error, not a stream event, as with an in-process model.
        match rx.recv().await {
            Some((Reply::Started { .. }, _)) => {}
            Some((Reply::Error { error, .. }, _)) => return Err(error),
            _ => {
                return Err(ChatError::Engine(
                    "unexpected reply from the model worker".into(),
                ));
            }
        }
        let (tx, out) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    r = rx.recv() => match r {
                        Some((Reply::Event { event, .. }, _)) => {
                            let done = matches!(event, ChatEvent::Done(_));
                            if done {
                                let _ = tx.send(Ok(event));
                                return;
                            }
                            if tx.send(Ok(event)).is_err() {
                                break;
                            }
                        }
                        Some((Reply::Error { error, .. }, _)) => {
                            let _ = tx.send(Err(error));
                            return;
                        }
                        Some(_) => {}
                        None => {
                            let _ = tx.send(Err(stopped()));
                            return;
                        }
                    },
                    _ = tx.closed() => break,
                }
            }
            // The caller dropped the stream: the worker stops generating for it now, even
            // while the request is still queued or in its prompt.
            conn.pending.lock().remove(&id);
            let _ = conn
                .calls
                .send(Frame::new(id, &Call::Cancel { id }, Vec::new()));
        });
        Ok(out)
    }
}

/// An embedding model in a worker process.
pub struct WorkerEmbed {
    sup: Supervisor,
    pub info: EngineInfo,
}

impl WorkerEmbed {
    pub async fn start(
        exe: PathBuf,
        spec: EngineSpec,
        env: Vec<(String, String)>,
    ) -> Result<WorkerEmbed, String> {
        let sup = Supervisor::new(exe, spec, env);
        let info = sup.start().await?;
        Ok(WorkerEmbed { sup, info })
    }

    pub fn status(&self) -> WorkerStatus {
        self.sup.status()
    }

    /// Unit-length embeddings of `texts` and the token count of each.
    pub async fn embed(
        &self,
        texts: Vec<String>,
    ) -> Result<(Vec<Vec<f32>>, Vec<usize>), ChatError> {
        let (_, _conn, mut rx) = self.sup.call(|id| Call::Embed { id, texts }).await?;
        match rx.recv().await {
            Some((
                Reply::Embedded {
                    dimensions, counts, ..
                },
                payload,
            )) => {
                let vectors = if counts.is_empty() {
                    Vec::new()
                } else {
                    frame::vectors_from_bytes(&payload, dimensions)
                        .map_err(|e| ChatError::Engine(e.to_string()))?
                };
                Ok((vectors, counts))
            }
            Some((Reply::Error { error, .. }, _)) => Err(error),
            Some(_) => Err(ChatError::Engine(
                "unexpected reply from the model worker".into(),
            )),
            None => Err(stopped()),
        }
    }

    /// Calls the worker is serving now.
    pub fn in_flight(&self) -> usize {
        self.sup.in_flight()
    }
}

/// A call whose worker went away without answering it.
fn stopped() -> ChatError {
    ChatError::Unavailable(
        "The model's worker process stopped while serving this request. Try again.".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(1), BASE_BACKOFF);
        assert_eq!(backoff(2), BASE_BACKOFF * 2);
        assert_eq!(backoff(4), BASE_BACKOFF * 8);
        assert_eq!(backoff(40), MAX_BACKOFF);
    }

    #[cfg(unix)]
    #[test]
    fn exit_causes_name_the_signal() {
        use std::os::unix::process::ExitStatusExt;
        let killed = std::process::ExitStatus::from_raw(9);
        assert_eq!(exit_cause(Ok(killed)), "was killed by signal 9 (SIGKILL)");
        let ill = std::process::ExitStatus::from_raw(4);
        assert_eq!(exit_cause(Ok(ill)), "was killed by signal 4 (SIGILL)");
        let exited = std::process::ExitStatus::from_raw(3 << 8);
        assert_eq!(exit_cause(Ok(exited)), "exited with status 3");
    }

    /// A "worker" that is not one: the supervisor reports it failed to start, with the cause,
    /// and callers get NotReady rather than hanging.
    #[tokio::test]
    async fn a_worker_that_dies_while_loading_is_not_ready() {
        let spec = EngineSpec::Chat {
            path: "/nonexistent.gguf".into(),
            config: Default::default(),
        };
        let sup = Supervisor::new("/bin/false".into(), spec, Vec::new());
        let err = sup.start().await.unwrap_err();
        assert!(err.contains("exited with status 1 while loading"), "{err}");
        assert_eq!(sup.status().state, "failed");
        let err = sup.call(|id| Call::Cancel { id }).await.err().unwrap();
        assert!(matches!(err, ChatError::NotReady(_)), "{err:?}");
    }
}
