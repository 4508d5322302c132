//! Log events: PutLogEvents, GetLogEvents, FilterLogEvents.

use crate::model::{self, EVENTS, EventRec, STREAMS, StreamRec};

use crate::{Logs, group_name, invalid, now_ms, str_of};
use basalt_core::{AwsError, RequestContext};
use basalt_logpattern::FilterPattern;
use basalt_store::{StoreError, WriteOp};
use serde_json::{Value, json};
use std::collections::VecDeque;

/// PutLogEvents limits, as the API reference states them.
const MAX_BATCH_EVENTS: usize = 10_000;
const MAX_BATCH_BYTES: usize = 1_048_576;
const EVENT_OVERHEAD: usize = 26;
const MAX_EVENT_BYTES: usize = 262_144 - EVENT_OVERHEAD;
const DAY_MS: i64 = 86_400_000;
/// Events older than this (or older than the retention) and newer than now + 2 h are refused.
const MAX_AGE_MS: i64 = 14 * DAY_MS;
const MAX_AHEAD_MS: i64 = 2 * 3_600_000;
/// FilterLogEvents examines at most this many events per call, and then answers with what it
/// found and a token to go on, as CloudWatch Logs does on large groups.
const FILTER_SCAN_BUDGET: usize = 200_000;

/// The earliest timestamp still within the group's retention.
fn retention_floor(logs: &Logs, scope: &str, group: &str) -> Result<i64, AwsError> {
    Ok(GroupView::of(&crate::groups::load(logs, scope, group)?).floor)
}

/// What CloudWatch Logs answers when concurrent writers keep conflicting.
fn aborted() -> AwsError {
    AwsError::new(
        400,
        "OperationAbortedException",
        "Multiple requests to modify the same resource were in conflict. Please retry your request.",
    )
}

/// Validates and stores a batch; returns PutLogEvents' output.
pub(crate) fn put(
    logs: &Logs,
    scope: &str,
    group: &str,
    stream: &str,
    events: &[Value],
) -> Result<Value, AwsError> {
    if events.len() > MAX_BATCH_EVENTS {
        return Err(invalid(format!(
            "1 validation error detected: Value at 'logEvents' failed to satisfy constraint: Member must have length less than or equal to {MAX_BATCH_EVENTS}"
        )));
    }
    let mut parsed = Vec::with_capacity(events.len());
    let mut bytes = 0usize;
    for e in events {
        let ts = e.get("timestamp").and_then(Value::as_i64).unwrap_or(0);
        let msg = e.get("message").and_then(Value::as_str).unwrap_or_default();
        if msg.len() > MAX_EVENT_BYTES {
            return Err(invalid(format!(
                "Log event too large: {} bytes exceeds limit of {}",
                msg.len() + EVENT_OVERHEAD,
                MAX_EVENT_BYTES + EVENT_OVERHEAD
            )));
        }
        bytes += msg.len() + EVENT_OVERHEAD;
        parsed.push((ts, msg));
    }
    if bytes > MAX_BATCH_BYTES {
        return Err(invalid(format!(
            "Upload too large: {bytes} bytes exceeds limit of {MAX_BATCH_BYTES}"
        )));
    }
    if parsed.windows(2).any(|w| w[1].0 < w[0].0) {
        return Err(invalid(
            "Log events in a single PutLogEvents request must be in chronological order.",
        ));
    }
    if let (Some(first), Some(last)) = (parsed.first(), parsed.last())
        && last.0 - first.0 > DAY_MS
    {
        return Err(invalid(
            "The batch of log events in a single PutLogEvents request cannot span more than 24 hours.",
        ));
    }
    let view = GroupView::of(&crate::groups::load(logs, scope, group)?);
    let skey = model::stream_key(scope, group, stream);
    // Concurrent writers of one stream serialize on its record.
    for _ in 0..32 {
        let (rec, raw) = crate::streams::load(logs, scope, group, stream)?;
        let mut ops = vec![WriteOp::Check {
            table: STREAMS.into(),
            key: skey.clone(),
            expected: Some(raw),
        }];
        let (rec, rejected) = stage(
            &logs.metrics,
            scope,
            group,
            stream,
            rec,
            &parsed,
            &view,
            &mut ops,
        )?;
        ops.push(WriteOp::Put {
            table: STREAMS.into(),
            key: skey.clone(),
            value: serde_json::to_vec(&rec).map_err(|e| AwsError::internal(e.to_string()))?,
        });
        match logs.state.batch(&ops) {
            Ok(()) => {
                wake_deliveries(logs, &ops);
                let mut out = json!({ "nextSequenceToken": format!("{:056}", rec.seq) });
                if !rejected.is_empty() {
                    out["rejectedLogEventsInfo"] = Value::Object(rejected);
                }
                return Ok(out);
            }
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(aborted())
}

/// What a write needs of its group: the retention's floor, the subscription filters and the
/// metric filters.
#[derive(Clone)]
struct GroupView {
    floor: i64,
    subscriptions: Vec<crate::subscriptions::SubFilter>,
    metric_filters: Vec<crate::metric_filters::MetricFilter>,
}

impl Default for GroupView {
    fn default() -> Self {
        GroupView {
            floor: i64::MIN,
            subscriptions: Vec::new(),
            metric_filters: Vec::new(),
        }
    }
}

impl GroupView {
    fn of(g: &crate::model::GroupRec) -> GroupView {
        GroupView {
            floor: g.retention_days.map_or(i64::MIN, |d| now_ms() - d * DAY_MS),
            subscriptions: g.subscriptions.clone(),
            metric_filters: g.metric_filters.clone(),
        }
    }
}

/// Wakes this node's delivery worker when `ops` queued deliveries.
fn wake_deliveries(logs: &Logs, ops: &[WriteOp]) {
    if ops.iter().any(|o| matches!(o, WriteOp::Enqueue { .. })) {
        logs.wake.notify_one();
    }
}

/// Adds the writes of `events` (time-ordered) to `ops` and returns the stream's updated
/// record (not yet in `ops`) and what was rejected: events older than 14 days or than the
/// retention (`floor`), and newer than 2 hours ahead, are not stored. The stored events'
/// subscription deliveries and metric filters' data points join `ops`.
#[allow(clippy::too_many_arguments)]
fn stage(
    metrics: &basalt_store::metrics::Metrics,
    scope: &str,
    group: &str,
    stream: &str,
    mut rec: StreamRec,
    events: &[(i64, &str)],
    view: &GroupView,
    ops: &mut Vec<WriteOp>,
) -> Result<(StreamRec, serde_json::Map<String, Value>), AwsError> {
    let floor = view.floor;
    let now = now_ms();
    let mut stored: Vec<(i64, u64, &str)> = Vec::new();
    let too_old = events
        .iter()
        .take_while(|(t, _)| *t < now - MAX_AGE_MS)
        .count();
    let expired = events.iter().take_while(|(t, _)| *t < floor).count();
    let too_new = events.iter().position(|(t, _)| *t > now + MAX_AHEAD_MS);
    let keep = too_old.max(expired)..too_new.unwrap_or(events.len());
    let prefix = model::events_prefix(scope, group, &rec.id);
    for (ts, msg) in &events[keep.clone()] {
        let value = serde_json::to_vec(&EventRec {
            i: now,
            m: (*msg).to_owned(),
        })
        .map_err(|e| AwsError::internal(e.to_string()))?;
        ops.push(WriteOp::Put {
            table: EVENTS.into(),
            key: format!("{prefix}{}", model::position(*ts, rec.seq)),
            value,
        });
        stored.push((*ts, rec.seq, *msg));
        rec.seq += 1;
        rec.stored_bytes += msg.len() as i64;
        rec.first_event = Some(rec.first_event.map_or(*ts, |f| f.min(*ts)));
        rec.last_event = Some(rec.last_event.map_or(*ts, |l| l.max(*ts)));
    }
    if !keep.is_empty() {
        rec.last_ingestion = Some(now);
    }
    ops.extend(crate::subscriptions::deliveries(
        scope,
        group,
        stream,
        &view.subscriptions,
        &stored,
        now,
    ));
    let points = crate::metric_filters::points(scope, &view.metric_filters, &stored);
    if !points.is_empty() {
        ops.extend(metrics.stored_ops(&points));
    }
    let mut rejected = serde_json::Map::new();
    if let Some(i) = too_new {
        rejected.insert("tooNewLogEventStartIndex".into(), json!(i));
    }
    // Both end indexes are exclusive (the API reference says so of the first).
    if too_old > 0 {
        rejected.insert("tooOldLogEventEndIndex".into(), json!(too_old));
    }
    if expired > 0 {
        rejected.insert("expiredLogEventEndIndex".into(), json!(expired));
    }
    Ok((rec, rejected))
}

/// Events for one stream, written by a service (Lambda) rather than through the API.
pub struct Append {
    pub scope: String,
    pub group: String,
    pub stream: String,
    /// (timestamp ms, message), in time order.
    pub events: Vec<(i64, String)>,
}

/// (scope, group, stream).
type StreamId<'a> = (&'a str, &'a str, &'a str);

/// Writes several streams' events, creating groups and streams on first use, in one
/// transaction (one commit for everything a batch of invocations printed). `extra` writes
/// (metrics data points) join the same transaction.
pub(crate) fn append_batch(
    logs: &Logs,
    items: &[Append],
    extra: &[WriteOp],
) -> Result<(), AwsError> {
    use std::collections::BTreeMap;
    // Items of one stream are merged, in arrival order (each is time-ordered).
    let mut streams: BTreeMap<StreamId, Vec<(i64, &str)>> = BTreeMap::new();
    for a in items {
        streams
            .entry((a.scope.as_str(), a.group.as_str(), a.stream.as_str()))
            .or_default()
            .extend(a.events.iter().map(|(t, m)| (*t, m.as_str())));
    }
    for _ in 0..32 {
        let mut ops: Vec<WriteOp> = extra.to_vec();
        let mut groups_seen: BTreeMap<(&str, &str), GroupView> = BTreeMap::new();
        for (&(scope, group, stream), events) in &streams {
            let view = match groups_seen.get(&(scope, group)) {
                Some(v) => v.clone(),
                None => {
                    let gkey = model::group_key(scope, group);
                    let view = match logs.state.get(crate::model::GROUPS, &gkey)? {
                        Some(raw) => serde_json::from_slice::<crate::model::GroupRec>(&raw)
                            .map(|g| GroupView::of(&g))
                            .unwrap_or_default(),
                        None => {
                            let rec = crate::model::GroupRec {
                                creation_time: now_ms(),
                                ..Default::default()
                            };
                            ops.push(WriteOp::Check {
                                table: crate::model::GROUPS.into(),
                                key: gkey.clone(),
                                expected: None,
                            });
                            ops.push(WriteOp::Put {
                                table: crate::model::GROUPS.into(),
                                key: gkey,
                                value: serde_json::to_vec(&rec)
                                    .map_err(|e| AwsError::internal(e.to_string()))?,
                            });
                            GroupView::default()
                        }
                    };
                    groups_seen.insert((scope, group), view.clone());
                    view
                }
            };
            let skey = model::stream_key(scope, group, stream);
            let (rec, expected) = match logs.state.get(STREAMS, &skey)? {
                Some(raw) => (
                    serde_json::from_slice(&raw).map_err(|e| AwsError::internal(e.to_string()))?,
                    Some(raw),
                ),
                None => (crate::streams::new_stream(), None),
            };
            ops.push(WriteOp::Check {
                table: STREAMS.into(),
                key: skey.clone(),
                expected,
            });
            let (rec, _) = stage(
                &logs.metrics,
                scope,
                group,
                stream,
                rec,
                events,
                &view,
                &mut ops,
            )?;
            ops.push(WriteOp::Put {
                table: STREAMS.into(),
                key: skey,
                value: serde_json::to_vec(&rec).map_err(|e| AwsError::internal(e.to_string()))?,
            });
        }
        match logs.state.batch(&ops) {
            Ok(()) => {
                wake_deliveries(logs, &ops);
                return Ok(());
            }
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(aborted())
}

pub(crate) fn put_events(
    logs: &Logs,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let group = str_of(input, "logGroupName").unwrap_or_default();
    let stream = str_of(input, "logStreamName").unwrap_or_default();
    let events = input
        .get("logEvents")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    put(logs, &ctx.scope(), group, stream, &events)
}

/// One stored event.
struct Event {
    ts: i64,
    seq: u64,
    rec: EventRec,
}

fn decode(prefix_len: usize, key: &str, raw: &[u8]) -> Option<Event> {
    let (ts, seq) = model::parse_position(key.get(prefix_len..)?)?;
    let rec = serde_json::from_slice(raw).ok()?;
    Some(Event { ts, seq, rec })
}

/// The time window of a read: `[start, end)`, narrowed to the retention.
fn window(input: &Value, floor: i64) -> (i64, i64) {
    let start = input
        .get("startTime")
        .and_then(Value::as_i64)
        .unwrap_or(0)
        .max(floor)
        .max(0);
    let end = input
        .get("endTime")
        .and_then(Value::as_i64)
        .unwrap_or(i64::MAX);
    (start, end)
}

/// The scan cursor just before timestamp `ts`.
fn before(prefix: &str, ts: i64) -> Option<String> {
    (ts > 0).then(|| format!("{prefix}{}", model::position(ts - 1, 9_999_999_999)))
}

pub(crate) fn get_events(
    logs: &Logs,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let group = group_name(input)?;
    let stream = str_of(input, "logStreamName").unwrap_or_default();
    let scope = ctx.scope();
    let floor = retention_floor(logs, &scope, &group)?;
    let (rec, _) = crate::streams::load(logs, &scope, &group, stream)?;
    let (start, end) = window(input, floor);
    let limit = input
        .get("limit")
        .and_then(Value::as_u64)
        .unwrap_or(10_000)
        .clamp(1, 10_000) as usize;
    let prefix = model::events_prefix(&scope, &group, &rec.id);
    let token = str_of(input, "nextToken");
    let (forward, pos) = match token {
        Some(t) => {
            let (dir, pos) = t
                .split_once('/')
                .filter(|(d, p)| (*d == "f" || *d == "b") && model::parse_position(p).is_some())
                .ok_or_else(|| invalid("The specified nextToken is invalid."))?;
            (dir == "f", Some(pos.to_owned()))
        }
        None => (
            input
                .get("startFromHead")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            None,
        ),
    };
    let mut out: VecDeque<Event> = VecDeque::new();
    let mut after = match (&pos, forward) {
        (Some(p), true) => Some(format!("{prefix}{p}")),
        _ => before(&prefix, start),
    };
    // Backwards reads stop before the token's event.
    let stop = match (&pos, forward) {
        (Some(p), false) => Some(format!("{prefix}{p}")),
        _ => None,
    };
    'scan: loop {
        let page = logs.state.scan(EVENTS, &prefix, after.as_deref(), 1000)?;
        let done = page.len() < 1000;
        after = page.last().map(|(k, _)| k.clone());
        for (key, raw) in page {
            if stop.as_ref().is_some_and(|s| key >= *s) {
                break 'scan;
            }
            let Some(e) = decode(prefix.len(), &key, &raw) else {
                continue;
            };
            if e.ts >= end {
                break 'scan;
            }
            if e.ts < start {
                continue;
            }
            out.push_back(e);
            if out.len() > limit {
                if forward {
                    out.pop_back();
                    break 'scan;
                }
                out.pop_front();
            }
        }
        if done {
            break;
        }
    }
    let first = out.front().map(|e| model::position(e.ts, e.seq));
    let last = out.back().map(|e| model::position(e.ts, e.seq));
    let here = pos.clone().unwrap_or_else(|| model::position(start, 0));
    let events: Vec<Value> = out
        .into_iter()
        .map(|e| json!({"timestamp": e.ts, "message": e.rec.m, "ingestionTime": e.rec.i}))
        .collect();
    Ok(json!({
        "events": events,
        "nextForwardToken": format!("f/{}", last.unwrap_or_else(|| here.clone())),
        "nextBackwardToken": format!("b/{}", first.unwrap_or(here)),
    }))
}

/// A stream's events read in pages, for the merge of FilterLogEvents.
struct Cursor {
    name: String,
    id: String,
    prefix: String,
    after: Option<String>,
    buf: VecDeque<Event>,
    done: bool,
}

impl Cursor {
    fn peek(&mut self, logs: &Logs) -> Result<Option<&Event>, AwsError> {
        if self.buf.is_empty() && !self.done {
            let page = logs
                .state
                .scan(EVENTS, &self.prefix, self.after.as_deref(), 256)?;
            self.done = page.len() < 256;
            self.after = page.last().map(|(k, _)| k.clone());
            self.buf.extend(
                page.iter()
                    .filter_map(|(k, v)| decode(self.prefix.len(), k, v)),
            );
        }
        Ok(self.buf.front())
    }
}

pub(crate) fn filter_events(
    logs: &Logs,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let group = group_name(input)?;
    let scope = ctx.scope();
    let floor = retention_floor(logs, &scope, &group)?;
    let names: Option<Vec<&str>> = input
        .get("logStreamNames")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect());
    let name_prefix = str_of(input, "logStreamNamePrefix");
    if names.is_some() && name_prefix.is_some() {
        return Err(invalid(
            "logStreamNames and logStreamNamePrefix are mutually exclusive",
        ));
    }
    let pattern = FilterPattern::parse(str_of(input, "filterPattern").unwrap_or_default())
        .map_err(|e| invalid(e.to_string()))?;
    let (start, end) = window(input, floor);
    let limit = input
        .get("limit")
        .and_then(Value::as_u64)
        .unwrap_or(10_000)
        .clamp(1, 10_000) as usize;
    // The token is the merge position of the last event examined: (timestamp, stream id, seq).
    let resume: Option<(i64, String, u64)> = match str_of(input, "nextToken") {
        Some(t) => {
            let raw = crate::untoken(t)?;
            let mut it = raw.splitn(3, '/');
            let parsed = (|| {
                Some((
                    it.next()?.parse().ok()?,
                    it.next()?.to_owned(),
                    it.next()?.parse().ok()?,
                ))
            })();
            Some(parsed.ok_or_else(|| invalid("The specified nextToken is invalid."))?)
        }
        None => None,
    };
    let streams: Vec<(String, StreamRec)> = crate::streams::of_group(logs, &scope, &group)?
        .into_iter()
        .filter(|(n, _)| names.as_ref().is_none_or(|ns| ns.contains(&n.as_str())))
        .filter(|(n, _)| name_prefix.is_none_or(|p| n.starts_with(p)))
        .collect();
    let mut cursors: Vec<Cursor> = streams
        .into_iter()
        .map(|(name, rec)| {
            let prefix = model::events_prefix(&scope, &group, &rec.id);
            let after = match &resume {
                // Events at the token's timestamp: a stream ordered before the token's
                // stream has none left there; the token's stream resumes after its seq.
                Some((ts, id, seq)) if rec.id == *id => {
                    Some(format!("{prefix}{}", model::position(*ts, *seq)))
                }
                Some((ts, id, _)) if rec.id < *id => {
                    Some(format!("{prefix}{}", model::position(*ts, 9_999_999_999)))
                }
                Some((ts, _, _)) => before(&prefix, *ts),
                None => None,
            }
            .max(before(&prefix, start));
            Cursor {
                name,
                id: rec.id,
                prefix,
                after,
                buf: VecDeque::new(),
                done: false,
            }
        })
        .collect();
    // Ties in time go by stream id, the order the token assumes.
    cursors.sort_by(|a, b| a.id.cmp(&b.id));
    let mut events = Vec::new();
    let mut scanned = 0usize;
    let mut last: Option<(i64, String, u64)> = None;
    let mut exhausted = true;
    loop {
        let mut best: Option<(usize, i64, u64)> = None;
        for (i, c) in cursors.iter_mut().enumerate() {
            if let Some(e) = c.peek(logs)?
                && e.ts < end
                && best.is_none_or(|(_, ts, _)| e.ts < ts)
            {
                best = Some((i, e.ts, e.seq));
            }
        }
        let Some((i, _, _)) = best else {
            break;
        };
        if events.len() == limit || scanned == FILTER_SCAN_BUDGET {
            exhausted = false;
            break;
        }
        let c = &mut cursors[i];
        let e = c.buf.pop_front().expect("peeked");
        scanned += 1;
        last = Some((e.ts, c.id.clone(), e.seq));
        if pattern.matches(&e.rec.m) {
            events.push(json!({
                "logStreamName": c.name,
                "timestamp": e.ts,
                "message": e.rec.m,
                "ingestionTime": e.rec.i,
                "eventId": format!("{}{}", model::position(e.ts, e.seq), c.id),
            }));
        }
    }
    let mut out = json!({ "events": events, "searchedLogStreams": [] });
    if !exhausted && let Some((ts, id, seq)) = last {
        out["nextToken"] = json!(crate::token(&format!("{ts}/{id}/{seq}")));
    }
    Ok(out)
}
