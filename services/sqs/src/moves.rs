//! Message move tasks (StartMessageMoveTask, ListMessageMoveTasks, CancelMessageMoveTask):
//! dead-letter redrive. A task is a record plus a work item on the store's leases; whichever
//! node claims the item moves the messages, each in the transaction that completes its claim
//! on the dead-letter queue, so a message is never lost nor duplicated by a crash mid-move.

use crate::model::{MOVE_TASKS, Message, QueueRec};
use crate::{Sqs, error, int_param, invalid, required, str_of};
use basalt_core::{AwsError, RequestContext};
use basalt_store::{Claim, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// The lease queue of running tasks.
const QUEUE: &str = "sqs.move-tasks";
/// A task's worker renews its lease at least this often.
const LEASE_MS: i64 = 30_000;
/// Messages are leased from the dead-letter queue this long while being moved.
const MOVE_LEASE_MS: i64 = 30_000;
/// Moved per second when the task sets no rate.
const DEFAULT_RATE: i64 = 500;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Task {
    handle: String,
    source: String,
    #[serde(default)]
    destination: Option<String>,
    #[serde(default)]
    rate: Option<i64>,
    status: String,
    moved: i64,
    to_move: i64,
    started_ms: i64,
    #[serde(default)]
    failure: Option<String>,
}

fn not_found() -> AwsError {
    error(
        "ResourceNotFoundException",
        "ResourceNotFoundException",
        "The resource that you specified for the TaskHandle parameter doesn't exist.",
    )
}

fn load(sqs: &Sqs, handle: &str) -> Result<Option<Task>, AwsError> {
    Ok(sqs
        .state
        .get(MOVE_TASKS, handle)?
        .and_then(|raw| serde_json::from_slice(&raw).ok()))
}

fn save(sqs: &Sqs, t: &Task) -> Result<(), AwsError> {
    sqs.state.put(
        MOVE_TASKS,
        &t.handle,
        &serde_json::to_vec(t).unwrap_or_default(),
    )?;
    Ok(())
}

/// Tasks of one source queue, newest first.
fn tasks_of(sqs: &Sqs, source: &str) -> Result<Vec<Task>, AwsError> {
    let mut tasks: Vec<Task> = sqs
        .state
        .scan(MOVE_TASKS, &format!("{source}#"), None, 1000)?
        .into_iter()
        .filter_map(|(_, v)| serde_json::from_slice(&v).ok())
        .collect();
    tasks.sort_by_key(|t| std::cmp::Reverse(t.started_ms));
    Ok(tasks)
}

pub fn start(sqs: &Sqs, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let source_arn = required(input, "SourceArn")?;
    let source = sqs.queue_by_arn(source_arn)?.ok_or_else(crate::no_queue)?;
    // The source must be some queue's dead-letter queue.
    let is_dlq = crate::queues::list(sqs, ctx, &json!({}))?
        .get("QueueUrls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(|u| sqs.queue_by_url(ctx, u).ok())
        .any(|q| q.redrive().is_some_and(|(arn, _)| arn == source_arn));
    if !is_dlq {
        return Err(invalid(
            "Source queue must be configured as a Dead Letter Queue.",
        ));
    }
    let destination = str_of(input, "DestinationArn").map(str::to_owned);
    if let Some(d) = &destination {
        let Some(dest) = sqs.queue_by_arn(d)? else {
            return Err(invalid("Destination queue does not exist."));
        };
        // "If the dead-letter queue is a FIFO queue, the redrive destination queue must be a
        // FIFO queue as well" (Developer Guide, configuring a dead-letter queue redrive).
        if dest.is_fifo() != source.is_fifo() {
            return Err(invalid(
                "The source queue and the destination queue must be of the same queue type.",
            ));
        }
    }
    let rate = int_param(input, "MaxNumberOfMessagesPerSecond", 1, 500)?;
    if tasks_of(sqs, source_arn)?
        .iter()
        .any(|t| t.status == "RUNNING" || t.status == "CANCELLING")
    {
        return Err(invalid(
            "There is already a task running. Only one active task is allowed for a source queue arn at a given time.",
        ));
    }
    let now = sqs.clock()?;
    let to_move = if source.is_fifo() {
        crate::fifo::counts(sqs, &source, now)?
    } else {
        sqs.state.counts(&source.lease_queue(), now)?
    };
    let handle = format!("{source_arn}#{}", uuid::Uuid::new_v4().simple());
    let task = Task {
        handle: handle.clone(),
        source: source_arn.to_owned(),
        destination,
        rate,
        status: "RUNNING".into(),
        moved: 0,
        to_move: (to_move.ready + to_move.leased + to_move.delayed) as i64,
        started_ms: now,
        failure: None,
    };
    sqs.state.batch(&[
        basalt_store::WriteOp::Put {
            table: MOVE_TASKS.into(),
            key: handle.clone(),
            value: serde_json::to_vec(&task).unwrap_or_default(),
        },
        basalt_store::WriteOp::Enqueue {
            queue: QUEUE.into(),
            id: handle.clone(),
            payload: Vec::new(),
            due_ms: now,
        },
    ])?;
    sqs.wake_moves.notify_one();
    Ok(json!({"TaskHandle": handle}))
}

pub fn list(sqs: &Sqs, _ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let source = required(input, "SourceArn")?;
    if sqs.queue_by_arn(source)?.is_none() {
        return Err(crate::no_queue());
    }
    let max = int_param(input, "MaxResults", 1, 10)?.unwrap_or(1) as usize;
    let results: Vec<Value> = tasks_of(sqs, source)?
        .into_iter()
        .take(max)
        .map(|t| {
            let mut v = json!({
                "Status": t.status,
                "SourceArn": t.source,
                "ApproximateNumberOfMessagesMoved": t.moved,
                "ApproximateNumberOfMessagesToMove": t.to_move,
                "StartedTimestamp": t.started_ms,
            });
            if t.status == "RUNNING" {
                v["TaskHandle"] = t.handle.into();
            }
            if let Some(d) = t.destination {
                v["DestinationArn"] = d.into();
            }
            if let Some(r) = t.rate {
                v["MaxNumberOfMessagesPerSecond"] = r.into();
            }
            if let Some(f) = t.failure {
                v["FailureReason"] = f.into();
            }
            v
        })
        .collect();
    Ok(json!({"Results": results}))
}

pub fn cancel(sqs: &Sqs, _ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let handle = required(input, "TaskHandle")?;
    let mut task = load(sqs, handle)?.ok_or_else(not_found)?;
    if task.status != "RUNNING" {
        return Err(not_found());
    }
    task.status = "CANCELLING".into();
    save(sqs, &task)?;
    Ok(json!({"ApproximateNumberOfMessagesMoved": task.moved}))
}

pub(crate) fn start_worker(sqs: Arc<Sqs>) {
    tokio::spawn(async move {
        loop {
            let claimed = sqs
                .state
                .clock_ms()
                .and_then(|now| sqs.state.claim(QUEUE, now, LEASE_MS, 1))
                .unwrap_or_default();
            match claimed.into_iter().next() {
                Some(claim) => run(&sqs, claim).await,
                None => {
                    tokio::select! {
                        _ = sqs.wake_moves.notified() => {}
                        _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                    }
                }
            }
        }
    });
}

/// Moves messages until the source is empty, the task is cancelled, or this node loses the
/// task's lease.
async fn run(sqs: &Sqs, claim: Claim) {
    let Ok(Some(mut task)) = load(sqs, &claim.id) else {
        let _ = sqs.state.complete(&claim, &[]);
        return;
    };
    let source = match sqs.queue_by_arn(&task.source) {
        Ok(Some(q)) => q,
        _ => {
            return finish(
                sqs,
                &claim,
                &mut task,
                "FAILED",
                Some("AWS.SimpleQueueService.NonExistentQueue"),
            );
        }
    };
    let per_second = task.rate.unwrap_or(DEFAULT_RATE).max(1);
    loop {
        match load(sqs, &task.handle) {
            Ok(Some(t)) if t.status == "CANCELLING" => {
                task = t;
                return finish(sqs, &claim, &mut task, "CANCELLED", None);
            }
            Ok(Some(t)) => task.moved = task.moved.max(t.moved),
            _ => return,
        }
        let Ok(now) = sqs.state.clock_ms() else {
            return;
        };
        if sqs.state.renew(&claim, now, LEASE_MS).is_err() {
            return; // another node took the task over
        }
        let batch = per_second.min(10) as usize;
        let step = if source.is_fifo() {
            move_fifo(sqs, &task, &source, batch)
        } else {
            move_standard(sqs, &task, &source, now, batch)
        };
        let Some((n, moved)) = step else {
            return;
        };
        if n == 0 {
            return finish(sqs, &claim, &mut task, "COMPLETED", None);
        }
        task.moved += moved;
        // The count only: a cancel that landed meanwhile keeps its status.
        if let Err(e) = save_progress(sqs, &task.handle, task.moved) {
            tracing::warn!("recording message move progress: {}", e.message);
        }
        if moved == 0 {
            // Nothing could move (no destination): done, rather than spinning on them.
            return finish(sqs, &claim, &mut task, "COMPLETED", None);
        }
        tokio::time::sleep(Duration::from_millis((1000 * n / per_second) as u64)).await;
    }
}

/// Records a task's moved count under a precondition, leaving its status as it is.
fn save_progress(sqs: &Sqs, handle: &str, moved: i64) -> Result<(), AwsError> {
    for _ in 0..8 {
        let raw = sqs.state.get(MOVE_TASKS, handle)?;
        let Some(mut t) = raw
            .as_ref()
            .and_then(|r| serde_json::from_slice::<Task>(r).ok())
        else {
            return Ok(());
        };
        t.moved = moved;
        let ops = [
            basalt_store::WriteOp::Check {
                table: MOVE_TASKS.into(),
                key: handle.to_owned(),
                expected: raw,
            },
            basalt_store::WriteOp::Put {
                table: MOVE_TASKS.into(),
                key: handle.to_owned(),
                value: serde_json::to_vec(&t).unwrap_or_default(),
            },
        ];
        match sqs.state.batch(&ops) {
            Err(StoreError::Conflict) => continue,
            other => return other.map_err(Into::into),
        }
    }
    Ok(())
}

/// Moves up to `batch` messages of a standard dead-letter queue: (claimed, moved), `None` when
/// the store cannot be read.
fn move_standard(
    sqs: &Sqs,
    task: &Task,
    source: &QueueRec,
    now: i64,
    batch: usize,
) -> Option<(i64, i64)> {
    let messages = sqs
        .state
        .claim(&source.lease_queue(), now, MOVE_LEASE_MS, batch)
        .ok()?;
    let n = messages.len() as i64;
    let moved = messages
        .into_iter()
        .filter(|m| move_one(sqs, task, source, m.clone()))
        .count() as i64;
    Some((n, moved))
}

/// Moves up to `batch` messages of a FIFO dead-letter queue, whole groups at a time in their
/// order, each to its FIFO destination under the same group id: stored there first, then
/// removed here, so a crash in between moves it twice at worst, and the destination's
/// deduplication (the id is the dead-lettered message's) drops the second copy within five
/// minutes. Once one message of a group cannot move, the group's later ones stay behind it.
fn move_fifo(sqs: &Sqs, task: &Task, source: &QueueRec, batch: usize) -> Option<(i64, i64)> {
    let received = crate::fifo::claim(sqs, source, batch, MOVE_LEASE_MS).ok()?;
    let n = received.len() as i64;
    let mut moved = 0;
    let mut stuck: Vec<String> = Vec::new();
    for (r, m) in received {
        if stuck.contains(&r.group_name) || !move_fifo_one(sqs, task, source, &r, m) {
            // Visible again at once, group and all, in its place.
            let _ = crate::fifo::change_visibility(sqs, source, &r, 0);
            stuck.push(r.group_name.clone());
            continue;
        }
        moved += 1;
    }
    Some((n, moved))
}

fn move_fifo_one(
    sqs: &Sqs,
    task: &Task,
    source: &QueueRec,
    r: &crate::fifo::Received,
    m: Message,
) -> bool {
    let dest_arn = task.destination.clone().or_else(|| m.dlq_source.clone());
    let dest = dest_arn
        .and_then(|a| sqs.queue_by_arn(&a).ok().flatten())
        .filter(QueueRec::is_fifo);
    let Some(dest) = dest else {
        tracing::warn!(queue = %source.name, group = %r.group_name, "no FIFO destination for a redriven message");
        return false;
    };
    // A redriven message is a new message: new id and sequence number, its retention from
    // now (Developer Guide); its group and deduplication id stay.
    let mut out = m;
    out.id = uuid::Uuid::new_v4().to_string();
    out.seq = None;
    out.dlq_source = None;
    let now = sqs.state.clock_ms().unwrap_or(0);
    out.sent_ms = now;
    if let Err(e) = crate::fifo::send(sqs, &dest, &mut out, now) {
        tracing::warn!("moving a message to {}: {}", dest.name, e.message);
        return false;
    }
    sqs.notify(&dest.lease_queue());
    crate::fifo::remove(sqs, source, r, &[]).unwrap_or(false)
}

/// Moves one message; whether it moved.
fn move_one(sqs: &Sqs, task: &Task, source: &QueueRec, claim: Claim) -> bool {
    let Ok(mut m) = serde_json::from_slice::<Message>(&claim.payload) else {
        let _ = sqs.state.complete(&claim, &[]);
        return false;
    };
    let dest_arn = task.destination.clone().or_else(|| m.dlq_source.clone());
    let dest = dest_arn.and_then(|a| sqs.queue_by_arn(&a).ok().flatten());
    let Some(dest) = dest else {
        // Nowhere to go: the message stays in the dead-letter queue.
        let _ = sqs.state.release(&claim, claim.expires_ms);
        tracing::warn!(queue = %source.name, id = %claim.id, "no destination for a redriven message");
        return false;
    };
    // "All redriven messages are considered new messages and are assigned a new messageID
    // and enqueueTime" (Developer Guide, configuring a dead-letter queue redrive).
    let now = sqs.state.clock_ms().unwrap_or(0);
    m.dlq_source = None;
    m.id = uuid::Uuid::new_v4().to_string();
    m.sent_ms = now;
    match sqs
        .state
        .complete(&claim, &[crate::messages::enqueue_op(&dest, &m, now)])
    {
        Ok(()) => {
            sqs.notify(&dest.lease_queue());
            true
        }
        Err(StoreError::Conflict) => false,
        Err(e) => {
            tracing::warn!("moving a message to {}: {e}", dest.name);
            false
        }
    }
}

fn finish(sqs: &Sqs, claim: &Claim, task: &mut Task, status: &str, failure: Option<&str>) {
    task.status = status.into();
    task.failure = failure.map(str::to_owned);
    let ops = [basalt_store::WriteOp::Put {
        table: MOVE_TASKS.into(),
        key: task.handle.clone(),
        value: serde_json::to_vec(&*task).unwrap_or_default(),
    }];
    if let Err(e) = sqs.state.complete(claim, &ops) {
        tracing::warn!("finishing message move task {}: {e}", task.handle);
    }
}
