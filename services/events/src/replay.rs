//! Replays: StartReplay, DescribeReplay, ListReplays, CancelReplay, and the worker that
//! replays an archive's events on the store's leases.
//!
//! A replay is a record in [`REPLAYS`] and, while it is STARTING or RUNNING, one work item
//! in [`QUEUE`]. A node that claims the item replays one page of the archive's events
//! (in event-time order, from the checkpoint in the record) to the destination bus's rules
//! (only those in FilterArns, when given), each event with `replay-name` added as AWS adds
//! it, and commits the page's deliveries, the advanced checkpoint and the item due again
//! in the transaction that completes the claim. A node that dies mid-page commits nothing;
//! the next node to claim the item after the lease runs out replays that page again from
//! the same checkpoint, so every event is replayed once. The record is checked in that
//! transaction: a CancelReplay in between makes the commit fail, and the next round ends
//! the replay CANCELLED.

use crate::archives::{self, ArchiveRec, event_time_ms};
use crate::model::{bus_arn, bus_name};
use crate::{Events, limit, not_found, now_ms, str_of, token, untoken, validation};
use basalt_core::{AwsError, RequestContext};
use basalt_store::{Claim, StoreError, WriteOp};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// Replay records, keyed `{account}/{region}/{name}`.
pub const REPLAYS: &str = "events.replays";
/// The lease queue of running replays (one item per replay, id = its record's key).
pub const QUEUE: &str = "events.replays";
/// Active replays an account may have per region (eb-replay-archived-event.html).
const MAX_ACTIVE: usize = 10;
const STATES: [&str; 6] = [
    "STARTING",
    "RUNNING",
    "CANCELLING",
    "COMPLETED",
    "CANCELLED",
    "FAILED",
];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReplayRec {
    pub name: String,
    pub archive: String,
    /// The archive's incarnation when the replay started.
    pub archive_id: String,
    pub bus: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Events with `start_ms <= time < end_ms` are replayed.
    pub start_ms: i64,
    pub end_ms: i64,
    #[serde(default)]
    pub filter_arns: Option<Vec<String>>,
    pub state: String,
    #[serde(default)]
    pub reason: Option<String>,
    pub replay_start_ms: i64,
    #[serde(default)]
    pub replay_end_ms: Option<i64>,
    #[serde(default)]
    pub last_replayed_ms: Option<i64>,
    /// The key of the last archived event replayed: the checkpoint.
    #[serde(default)]
    pub cursor: Option<String>,
}

fn replay_key(account: &str, region: &str, name: &str) -> String {
    format!("{account}/{region}/{name}")
}

pub fn replay_arn(account: &str, region: &str, name: &str) -> String {
    format!("arn:aws:events:{region}:{account}:replay/{name}")
}

/// Where a replay's work item lives: the account and region it was started in.
#[derive(Debug, Serialize, Deserialize)]
struct Item {
    account: String,
    region: String,
    name: String,
}

fn item_op(account: &str, region: &str, name: &str, due_ms: i64) -> WriteOp {
    let item = Item {
        account: account.to_owned(),
        region: region.to_owned(),
        name: name.to_owned(),
    };
    WriteOp::Enqueue {
        queue: QUEUE.into(),
        id: replay_key(account, region, name),
        payload: serde_json::to_vec(&item).unwrap_or_default(),
        due_ms,
    }
}

fn put_op(account: &str, region: &str, r: &ReplayRec) -> WriteOp {
    WriteOp::Put {
        table: REPLAYS.into(),
        key: replay_key(account, region, &r.name),
        value: serde_json::to_vec(r).unwrap_or_default(),
    }
}

fn load(
    events: &Events,
    account: &str,
    region: &str,
    name: &str,
) -> Result<Option<(Vec<u8>, ReplayRec)>, AwsError> {
    match events
        .state
        .get(REPLAYS, &replay_key(account, region, name))?
    {
        Some(raw) => {
            let rec = serde_json::from_slice(&raw)
                .map_err(|e| AwsError::internal(format!("corrupt replay record: {e}")))?;
            Ok(Some((raw, rec)))
        }
        None => Ok(None),
    }
}

fn must_load(
    events: &Events,
    ctx: &RequestContext,
    name: &str,
) -> Result<(Vec<u8>, ReplayRec), AwsError> {
    load(events, &ctx.account_id, &ctx.region, name)?
        .ok_or_else(|| not_found(format!("Replay {name} does not exist.")))
}

fn replay_name(input: &Value) -> Result<&str, AwsError> {
    let name = crate::required(input, "ReplayName")?;
    if name.len() > 64 {
        return Err(validation(format!(
            "1 validation error detected: Value '{name}' at 'replayName' failed to satisfy constraint: Member must have length less than or equal to 64"
        )));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
    {
        return Err(validation(format!(
            "1 validation error detected: Value '{name}' at 'replayName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\.\\-_A-Za-z0-9]+"
        )));
    }
    Ok(name)
}

/// A timestamp member (the protocol layer gives epoch seconds) in milliseconds.
fn time_ms(input: &Value, name: &str) -> Result<i64, AwsError> {
    input
        .get(name)
        .and_then(Value::as_f64)
        .map(|s| (s * 1000.0).round() as i64)
        .ok_or_else(|| {
            validation(format!(
                "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
                lower_first(name)
            ))
        })
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_lowercase().chain(c).collect())
        .unwrap_or_default()
}

fn secs(ms: i64) -> Value {
    json!(ms as f64 / 1000.0)
}

pub fn start(events: &Events, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let name = replay_name(input)?;
    let source = crate::required(input, "EventSourceArn")?;
    let start_ms = time_ms(input, "EventStartTime")?;
    let end_ms = time_ms(input, "EventEndTime")?;
    let destination = input.get("Destination").ok_or_else(|| {
        validation(
            "1 validation error detected: Value null at 'destination' failed to satisfy constraint: Member must not be null",
        )
    })?;
    let dest_arn = str_of(destination, "Arn").unwrap_or("");
    if !dest_arn.starts_with("arn:aws") || !dest_arn.contains(":event-bus/") {
        return Err(validation(
            "Parameter Destination.Arn is not valid. Reason: Must contain an event bus ARN.",
        ));
    }
    let bus = bus_name(Some(dest_arn));
    crate::buses::must_load(events, ctx, &bus)?;
    let archive_name = source.rsplit_once(":archive/").map_or("", |(_, n)| n);
    let archive: ArchiveRec = match archives::load(events, ctx, archive_name)? {
        Some((_, a)) => a,
        None => {
            return Err(validation(format!(
                "Parameter EventSourceArn is not valid. Reason: Archive {archive_name} does not exist."
            )));
        }
    };
    if archive.bus != bus {
        return Err(validation(
            "Parameter Destination.Arn is not valid. Reason: Cross event bus replay is not permitted.",
        ));
    }
    if start_ms > end_ms {
        return Err(validation(
            "Parameter EventEndTime is not valid. Reason: EventStartTime must be before EventEndTime.",
        ));
    }
    let filter_arns = destination
        .get("FilterArns")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect::<Vec<_>>()
        });
    if active(events, ctx)? >= MAX_ACTIVE {
        return Err(AwsError::new(
            400,
            "LimitExceededException",
            format!("The maximum number of active replays ({MAX_ACTIVE}) has been reached."),
        ));
    }
    let now = now_ms();
    let rec = ReplayRec {
        name: name.to_owned(),
        archive: archive.name.clone(),
        archive_id: archive.id.clone(),
        bus,
        description: str_of(input, "Description").map(str::to_owned),
        start_ms,
        end_ms,
        filter_arns,
        state: "STARTING".into(),
        reason: None,
        replay_start_ms: now,
        replay_end_ms: None,
        last_replayed_ms: None,
        cursor: None,
    };
    let created = events.state.batch(&[
        WriteOp::Check {
            table: REPLAYS.into(),
            key: replay_key(&ctx.account_id, &ctx.region, name),
            expected: None,
        },
        put_op(&ctx.account_id, &ctx.region, &rec),
        item_op(&ctx.account_id, &ctx.region, name, now),
    ]);
    match created {
        Ok(()) => {}
        Err(StoreError::Conflict) => {
            return Err(AwsError::new(
                400,
                "ResourceAlreadyExistsException",
                format!("Replay {name} already exists."),
            ));
        }
        Err(e) => return Err(e.into()),
    }
    events.wake_replays.notify_one();
    Ok(json!({
        "ReplayArn": replay_arn(&ctx.account_id, &ctx.region, name),
        "State": "STARTING",
        "ReplayStartTime": secs(now),
    }))
}

/// Replays of the account and region not yet ended.
fn active(events: &Events, ctx: &RequestContext) -> Result<usize, AwsError> {
    let scope = format!("{}/{}/", ctx.account_id, ctx.region);
    let mut n = 0;
    let mut after: Option<String> = None;
    loop {
        let page = events.state.scan(REPLAYS, &scope, after.as_deref(), 500)?;
        let Some((last, _)) = page.last() else {
            return Ok(n);
        };
        after = Some(last.clone());
        n += page
            .iter()
            .filter_map(|(_, raw)| serde_json::from_slice::<ReplayRec>(raw).ok())
            .filter(|r| matches!(r.state.as_str(), "STARTING" | "RUNNING" | "CANCELLING"))
            .count();
    }
}

fn replay_json(ctx: &RequestContext, r: &ReplayRec, describe: bool) -> Value {
    let mut v = json!({
        "ReplayName": r.name,
        "EventSourceArn": archives::archive_arn(&ctx.account_id, &ctx.region, &r.archive),
        "State": r.state,
        "EventStartTime": secs(r.start_ms),
        "EventEndTime": secs(r.end_ms),
        "ReplayStartTime": secs(r.replay_start_ms),
    });
    if let Some(reason) = &r.reason {
        v["StateReason"] = reason.clone().into();
    }
    if let Some(t) = r.last_replayed_ms {
        v["EventLastReplayedTime"] = secs(t);
    }
    if let Some(t) = r.replay_end_ms {
        v["ReplayEndTime"] = secs(t);
    }
    if describe {
        v["ReplayArn"] = replay_arn(&ctx.account_id, &ctx.region, &r.name).into();
        let mut dest = json!({"Arn": bus_arn(&ctx.account_id, &ctx.region, &r.bus)});
        if let Some(f) = &r.filter_arns {
            dest["FilterArns"] = json!(f);
        }
        v["Destination"] = dest;
        if let Some(d) = &r.description {
            v["Description"] = d.clone().into();
        }
    }
    v
}

pub fn describe(events: &Events, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let (_, r) = must_load(events, ctx, replay_name(input)?)?;
    Ok(replay_json(ctx, &r, true))
}

pub fn list(events: &Events, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    archives::one_filter(input, "ListReplays")?;
    let state = str_of(input, "State");
    archives::check_state(state, &STATES)?;
    let limit = limit(input, 100)?;
    let source = str_of(input, "EventSourceArn");
    let prefix = str_of(input, "NamePrefix").unwrap_or("");
    let scope = format!("{}/{}/", ctx.account_id, ctx.region);
    let mut cursor = str_of(input, "NextToken")
        .map(untoken)
        .transpose()?
        .map(|a| format!("{scope}{a}"));
    let mut found: Vec<ReplayRec> = Vec::new();
    let mut more = false;
    'pages: loop {
        let page =
            events
                .state
                .scan(REPLAYS, &format!("{scope}{prefix}"), cursor.as_deref(), 200)?;
        let Some((last, _)) = page.last() else { break };
        cursor = Some(last.clone());
        for (_, raw) in page {
            let Ok(r) = serde_json::from_slice::<ReplayRec>(&raw) else {
                continue;
            };
            let arn = archives::archive_arn(&ctx.account_id, &ctx.region, &r.archive);
            if source.is_some_and(|s| s != arn) || state.is_some_and(|s| s != r.state) {
                continue;
            }
            if found.len() == limit {
                more = true;
                break 'pages;
            }
            found.push(r);
        }
    }
    let mut out = json!({
        "Replays": found.iter().map(|r| replay_json(ctx, r, false)).collect::<Vec<_>>(),
    });
    if more && let Some(last) = found.last() {
        out["NextToken"] = token(&last.name).into();
    }
    Ok(out)
}

pub fn cancel(events: &Events, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let name = replay_name(input)?;
    for _ in 0..16 {
        let (raw, mut r) = must_load(events, ctx, name)?;
        if !matches!(r.state.as_str(), "STARTING" | "RUNNING") {
            return Err(AwsError::new(
                400,
                "IllegalStatusException",
                format!("Replay {name} is not in a valid state for this operation."),
            ));
        }
        r.state = "CANCELLING".into();
        let ops = [
            WriteOp::Check {
                table: REPLAYS.into(),
                key: replay_key(&ctx.account_id, &ctx.region, name),
                expected: Some(raw),
            },
            put_op(&ctx.account_id, &ctx.region, &r),
        ];
        match events.state.batch(&ops) {
            Ok(()) => {
                events.wake_replays.notify_one();
                return Ok(json!({
                    "ReplayArn": replay_arn(&ctx.account_id, &ctx.region, name),
                    "State": "CANCELLING",
                }));
            }
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(AwsError::new(
        400,
        "ConcurrentModificationException",
        "Another request changed this replay; try again.",
    ))
}

// The worker.

pub(crate) fn start_worker(events: Arc<Events>) {
    tokio::spawn(async move {
        loop {
            let worker = events.clone();
            let handled = tokio::task::spawn_blocking(move || round(&worker))
                .await
                .unwrap_or(0);
            if handled == 0 {
                tokio::select! {
                    _ = events.wake_replays.notified() => {}
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            }
        }
    });
}

/// Claims due replays and replays a page of each; returns how many were claimed.
fn round(events: &Events) -> usize {
    let claimed = match events
        .state
        .clock_ms()
        .and_then(|now| events.state.claim(QUEUE, now, events.config.lease_ms, 4))
    {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("claiming replays: {e}");
            return 0;
        }
    };
    let n = claimed.len();
    let mut queued = false;
    for claim in claimed {
        match step(events, &claim) {
            Ok(delivered) => queued |= delivered,
            Err(StepError::Conflict) => {
                // The record changed under this page (a cancel): the next round sees it.
                let _ = events.state.release(&claim, 0);
            }
            // Left to its lease: the page is replayed again when it runs out.
            Err(StepError::Other(e)) => tracing::warn!("replay {}: {}", claim.id, e.message),
        }
    }
    if queued {
        events.wake.notify_one();
    }
    n
}

enum StepError {
    Conflict,
    Other(AwsError),
}

impl From<AwsError> for StepError {
    fn from(e: AwsError) -> Self {
        StepError::Other(e)
    }
}

impl From<StoreError> for StepError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => StepError::Conflict,
            e => StepError::Other(e.into()),
        }
    }
}

/// Replays one page of the claimed replay; returns whether deliveries were queued.
fn step(events: &Events, claim: &Claim) -> Result<bool, StepError> {
    let Ok(item) = serde_json::from_slice::<Item>(&claim.payload) else {
        events.state.complete(claim, &[])?;
        return Ok(false);
    };
    let Some((raw, mut r)) = load(events, &item.account, &item.region, &item.name)? else {
        events.state.complete(claim, &[])?;
        return Ok(false);
    };
    let now = events.state.clock_ms()?;
    let check = WriteOp::Check {
        table: REPLAYS.into(),
        key: replay_key(&item.account, &item.region, &item.name),
        expected: Some(raw),
    };
    let finish = |r: &mut ReplayRec, state: &str, reason: Option<String>| {
        r.state = state.into();
        r.reason = reason;
        r.replay_end_ms = Some(now);
    };
    match r.state.as_str() {
        "STARTING" | "RUNNING" => {}
        "CANCELLING" => {
            finish(&mut r, "CANCELLED", None);
            let put = put_op(&item.account, &item.region, &r);
            events.state.complete(claim, &[check, put])?;
            return Ok(false);
        }
        _ => {
            events.state.complete(claim, &[])?;
            return Ok(false);
        }
    }
    let ctx = RequestContext::internal(&item.account, &item.region, "");
    let archive_live =
        archives::load(events, &ctx, &r.archive)?.is_some_and(|(_, a)| a.id == r.archive_id);
    let bus = crate::buses::load(events, &ctx, &r.bus)?;
    let (Some(bus), true) = (bus, archive_live) else {
        let reason = if archive_live {
            format!("Event bus {} does not exist.", r.bus)
        } else {
            format!("Archive {} does not exist.", r.archive)
        };
        finish(&mut r, "FAILED", Some(reason));
        let put = put_op(&item.account, &item.region, &r);
        events.state.complete(claim, &[check, put])?;
        return Ok(false);
    };
    r.state = "RUNNING".into();
    let page_size = events.config.replay_page;
    let lo = match &r.cursor {
        // The next key after the checkpoint (keys are ASCII, so NUL sorts first).
        Some(c) => format!("{c}\u{0}"),
        None => archives::event_key(&r.archive_id, r.start_ms.max(0), ""),
    };
    let hi = archives::event_key(&r.archive_id, r.end_ms.max(0), "");
    let page = events
        .state
        .range(archives::EVENTS, &lo, &hi, false, page_size)?;
    let mut ops = vec![check];
    for (key, value) in &page {
        r.cursor = Some(key.clone());
        let Ok(mut event) = serde_json::from_slice::<Value>(value) else {
            continue;
        };
        r.last_replayed_ms = Some(event_time_ms(&event, now));
        event["replay-name"] = r.name.clone().into();
        ops.extend(crate::ingest::route_to(
            events,
            &ctx,
            &bus,
            &event,
            now,
            r.filter_arns.as_deref(),
        )?);
    }
    let delivered = ops.len() > 1;
    if page.len() < page_size {
        finish(&mut r, "COMPLETED", None);
    } else {
        ops.push(item_op(&item.account, &item.region, &item.name, now));
    }
    ops.push(put_op(&item.account, &item.region, &r));
    events.state.complete(claim, &ops)?;
    Ok(delivered)
}

#[cfg(test)]
mod tests;
