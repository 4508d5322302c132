//! What training and processing jobs share once their process runs: its output lines to
//! CloudWatch Logs and to the job, a check every second (a stop, a lost lease) and
//! MaxRuntimeInSeconds.

use crate::container;
use crate::logs::LogSink;
use tokio::io::AsyncBufReadExt;

/// How a job's process ended.
pub(crate) enum Ended {
    Exited(std::process::ExitStatus),
    Stopped,
    TimedOut,
    /// This node no longer holds the job (another took it over): it must not record an end.
    Lost,
    /// A simulated spot interruption: the training job restarts from its checkpoints.
    Interrupted,
}

/// The job side of [`watch`].
pub(crate) trait Watched {
    /// One line of the process's output.
    fn line(&mut self, line: (i64, String));
    /// Called every second: `Some` ends the run (the process is killed).
    fn tick(&mut self) -> Option<Ended>;
}

/// Runs the process to its end, a stop, `max_runtime_ms` or a lost lease.
pub(crate) async fn watch(
    job: &mut impl Watched,
    child: &mut tokio::process::Child,
    sink: &mut LogSink,
    now: impl Fn() -> i64 + Clone + Send + 'static,
    max_runtime_ms: i64,
) -> Ended {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(i64, String)>();
    for pipe in [
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
    ]
    .into_iter()
    .flatten()
    {
        let tx = tx.clone();
        let now = now.clone();
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(pipe).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = tx.send((now(), line));
            }
        });
    }
    drop(tx);
    let deadline = tokio::time::Instant::now()
        + std::time::Duration::from_millis(max_runtime_ms.max(1000) as u64);
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    let ended = loop {
        tokio::select! {
            status = child.wait() => {
                // Drain what is left in the pipes.
                while let Some(l) = rx.recv().await { job.line(l.clone()); sink.push(l); }
                break match status { Ok(s) => Ended::Exited(s), Err(_) => Ended::Lost };
            }
            Some(line) = rx.recv() => { job.line(line.clone()); sink.push(line); }
            _ = tick.tick() => {
                sink.flush().await;
                if tokio::time::Instant::now() >= deadline {
                    container::kill_group(child, std::time::Duration::from_secs(2)).await;
                    break Ended::TimedOut;
                }
                if let Some(ended) = job.tick() {
                    container::kill_group(child, std::time::Duration::from_secs(2)).await;
                    break ended;
                }
            }
        }
    };
    sink.flush().await;
    ended
}

/// The job record a claim is for, as stored.
pub(crate) fn read<T: serde::de::DeserializeOwned>(
    core: &crate::Core,
    table: &str,
    claim: &basalt_store::Claim,
) -> Option<T> {
    let raw = core.state.get(table, &claim.id).ok()??;
    serde_json::from_slice(&raw).ok()
}

/// Whether a stored job record is still running (not stopping, not ended): what a save
/// needs to go ahead.
fn in_progress(raw: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(raw)
        .ok()
        .is_some_and(|v| v["status"] == "InProgress")
}

/// Saves a job's progress under its claim unless a stop came meanwhile (then `false`), and
/// renews the lease.
pub(crate) fn save<T: serde::Serialize>(
    core: &crate::Core,
    table: &str,
    claim: &mut basalt_store::Claim,
    job: &T,
) -> bool {
    let key = claim.id.clone();
    let saved = basalt_store::save_leased(
        core.state.as_ref(),
        claim,
        crate::job_lease_ms(),
        table,
        &key,
        in_progress,
        || serde_json::to_vec(job).unwrap_or_default(),
    );
    matches!(saved, Ok(basalt_store::Saved::Saved))
}

/// Why a save was refused: a stop (the record says Stopping) or a lost lease.
pub(crate) fn stopped_or_lost(status: Option<&str>) -> Ended {
    match status {
        Some("Stopping") => Ended::Stopped,
        _ => Ended::Lost,
    }
}

/// Records a job's end and completes its claim.
pub(crate) fn finish<T: serde::Serialize>(
    core: &crate::Core,
    table: &str,
    claim: &basalt_store::Claim,
    job: &T,
    name: &str,
) {
    let ops = [basalt_store::WriteOp::Put {
        table: table.into(),
        key: claim.id.clone(),
        value: serde_json::to_vec(job).unwrap_or_default(),
    }];
    if let Err(e) = core.state.complete(claim, &ops) {
        tracing::warn!(job = %name, "could not record the end of a job: {e}");
    }
}
