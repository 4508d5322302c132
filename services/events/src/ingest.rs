//! PutEvents, TestEventPattern and the events AWS services publish: each event is matched
//! against its bus's rules and one delivery per matching target is stored, in the
//! transaction that acknowledges the event.
//!
//! A bus's enabled pattern rules are compiled into one [`Matcher`] per node, kept until the
//! bus record's `generation` changes (every rule change renews it, on any node), so that matching
//! costs one record read and the matcher's walk, whatever the number of rules.

use crate::model::{BusRec, Delivery, RULES, RuleRec, bus_key, bus_name, rule_arn};
use crate::{Events, buses, str_of, validation};
use basalt_core::{AwsError, RequestContext};
use basalt_eventpattern::{Matcher, Pattern};
use basalt_store::WriteOp;
use parking_lot::Mutex;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::Arc;

/// PutEvents takes at most this many entries, of at most this many bytes in all.
const MAX_ENTRIES: usize = 10;
const MAX_BYTES: usize = 256 * 1024;

/// A bus's compiled rules at one generation.
struct Compiled {
    generation: String,
    matcher: Matcher<String>,
    rules: HashMap<String, RuleRec>,
}

#[derive(Default)]
pub(crate) struct Matchers(Mutex<HashMap<String, Arc<Compiled>>>);

impl Matchers {
    pub(crate) fn forget(&self, bus_key: &str) {
        self.0.lock().remove(bus_key);
    }
}

/// The compiled rules of `bus` (whose record is `rec`), rebuilt when stale.
fn compiled(
    events: &Events,
    ctx: &RequestContext,
    rec: &BusRec,
) -> Result<Arc<Compiled>, AwsError> {
    let key = bus_key(&ctx.account_id, &ctx.region, &rec.name);
    if let Some(c) = events.matchers.0.lock().get(&key)
        && c.generation == rec.generation
    {
        return Ok(c.clone());
    }
    let mut matcher = Matcher::new();
    let mut rules = HashMap::new();
    let mut after: Option<String> = None;
    loop {
        let page = events
            .state
            .scan(RULES, &format!("{key}/"), after.as_deref(), 1000)?;
        let Some((last, _)) = page.last() else { break };
        after = Some(last.clone());
        for (_, raw) in page {
            let Ok(rule) = serde_json::from_slice::<RuleRec>(&raw) else {
                continue;
            };
            if !rule.enabled() || (rule.targets.is_empty() && rule.archive.is_none()) {
                continue;
            }
            if let Some(p) = rule.pattern.as_deref().and_then(|p| Pattern::parse(p).ok()) {
                matcher.insert(rule.name.clone(), &p);
                rules.insert(rule.name.clone(), rule);
            }
        }
    }
    let c = Arc::new(Compiled {
        generation: rec.generation.clone(),
        matcher,
        rules,
    });
    events.matchers.0.lock().insert(key, c.clone());
    Ok(c)
}

/// The writes that accept `event` on `bus`: one delivery per target of each matching rule,
/// and the event's copy in each archive whose rule it matches.
pub(crate) fn route(
    events: &Events,
    ctx: &RequestContext,
    rec: &BusRec,
    event: &Value,
    now: i64,
) -> Result<Vec<WriteOp>, AwsError> {
    route_to(events, ctx, rec, event, now, None)
}

/// [`route`], limited to the rules whose ARNs are in `only` when given (a replay's
/// FilterArns).
pub(crate) fn route_to(
    events: &Events,
    ctx: &RequestContext,
    rec: &BusRec,
    event: &Value,
    now: i64,
    only: Option<&[String]>,
) -> Result<Vec<WriteOp>, AwsError> {
    let c = compiled(events, ctx, rec)?;
    let mut ops = Vec::new();
    for name in c.matcher.matches(event) {
        let Some(rule) = c.rules.get(&name) else {
            continue;
        };
        // Archive rules exclude replayed events by their pattern (`replay-name` must not
        // exist), so a replay is never archived again.
        if let Some(archive) = &rule.archive {
            ops.push(crate::archives::store_op(archive, event, now));
            continue;
        }
        if let Some(only) = only
            && !only.contains(&rule_arn(
                &ctx.account_id,
                &ctx.region,
                &rule.bus,
                &rule.name,
            ))
        {
            continue;
        }
        deliveries(ctx, rule, event, now, &mut ops);
    }
    Ok(ops)
}

/// One delivery per target of `rule`.
pub(crate) fn deliveries(
    ctx: &RequestContext,
    rule: &RuleRec,
    event: &Value,
    now: i64,
    ops: &mut Vec<WriteOp>,
) {
    let arn = rule_arn(&ctx.account_id, &ctx.region, &rule.bus, &rule.name);
    for target in &rule.targets {
        let d = Delivery {
            account: ctx.account_id.clone(),
            region: ctx.region.clone(),
            rule_arn: arn.clone(),
            rule_name: rule.name.clone(),
            target: target.clone(),
            event: event.clone(),
            accepted_ms: now,
        };
        ops.push(WriteOp::Enqueue {
            queue: crate::deliver::QUEUE.into(),
            id: uuid::Uuid::new_v4().simple().to_string(),
            payload: serde_json::to_vec(&d).unwrap_or_default(),
            due_ms: now,
        });
    }
}

fn entry_error(code: &str, message: &str) -> Value {
    json!({"ErrorCode": code, "ErrorMessage": message})
}

/// The size AWS counts for an entry: its strings' UTF-8 bytes, 14 for a time.
fn entry_size(e: &Value) -> usize {
    let s = |n: &str| str_of(e, n).map_or(0, str::len);
    let resources: usize = e
        .get("Resources")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).map(str::len).sum())
        .unwrap_or(0);
    s("Source")
        + s("DetailType")
        + s("Detail")
        + resources
        + if e.get("Time").is_some() { 14 } else { 0 }
}

fn iso_time(secs: f64) -> String {
    chrono::DateTime::from_timestamp(secs as i64, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Builds the event of one PutEvents entry, or the entry's error.
fn event_of(ctx: &RequestContext, e: &Value) -> Result<Value, Value> {
    let source = str_of(e, "Source")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            entry_error(
                "InvalidArgument",
                "Parameter Source is not valid. Reason: Source is a required argument.",
            )
        })?;
    let detail_type = str_of(e, "DetailType")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            entry_error(
                "InvalidArgument",
                "Parameter DetailType is not valid. Reason: DetailType is a required argument.",
            )
        })?;
    let detail = str_of(e, "Detail").ok_or_else(|| {
        entry_error(
            "InvalidArgument",
            "Parameter Detail is not valid. Reason: Detail is a required argument.",
        )
    })?;
    let detail: Value = match serde_json::from_str(detail) {
        Ok(v @ Value::Object(_)) => v,
        _ => return Err(entry_error("MalformedDetail", "Detail is malformed.")),
    };
    if source.to_ascii_lowercase().starts_with("aws.") {
        return Err(entry_error(
            "NotAuthorizedForSourceException",
            "Not authorized for the source.",
        ));
    }
    let time = match e.get("Time") {
        // The protocol layer gives timestamps as epoch seconds.
        Some(t) => t
            .as_f64()
            .map(iso_time)
            .unwrap_or_else(|| iso_time(crate::now_ms() as f64 / 1000.0)),
        None => iso_time(crate::now_ms() as f64 / 1000.0),
    };
    let resources: Vec<Value> = e
        .get("Resources")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    Ok(json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": detail_type,
        "source": source,
        "account": ctx.account_id,
        "time": time,
        "region": ctx.region,
        "resources": resources,
        "detail": detail,
    }))
}

pub fn put_events(events: &Events, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let entries = input
        .get("Entries")
        .and_then(Value::as_array)
        .filter(|e| !e.is_empty() && e.len() <= MAX_ENTRIES)
        .ok_or_else(|| {
            validation("1 validation error detected: Value at 'entries' failed to satisfy constraint: Member must have length less than or equal to 10")
        })?;
    if entries.iter().map(entry_size).sum::<usize>() > MAX_BYTES {
        return Err(validation(
            "Total size of the entries in the request is over the limit.",
        ));
    }
    let now = crate::now_ms();
    let mut buses_seen: HashMap<String, Option<BusRec>> = HashMap::new();
    let mut ops = Vec::new();
    let mut results = Vec::with_capacity(entries.len());
    let mut failed = 0;
    for e in entries {
        let bus = bus_name(str_of(e, "EventBusName"));
        if !buses_seen.contains_key(&bus) {
            buses_seen.insert(bus.clone(), buses::load(events, ctx, &bus)?);
        }
        let Some(rec) = buses_seen.get(&bus).and_then(Option::as_ref) else {
            failed += 1;
            results.push(entry_error(
                "ResourceNotFoundException",
                &format!("Event bus {bus} does not exist."),
            ));
            continue;
        };
        match event_of(ctx, e) {
            Ok(event) => {
                ops.extend(route(events, ctx, rec, &event, now)?);
                results.push(json!({"EventId": event["id"]}));
            }
            Err(err) => {
                failed += 1;
                results.push(err);
            }
        }
    }
    if !ops.is_empty() {
        events.state.batch(&ops)?;
        events.wake.notify_one();
    }
    Ok(json!({"FailedEntryCount": failed, "Entries": results}))
}

/// Routes an event an AWS service emitted (already in EventBridge's envelope) on the default
/// bus of its account and region: the deliveries it matches.
fn route_service_event(events: &Events, event: &Value) -> Result<Vec<WriteOp>, AwsError> {
    let account = str_of(event, "account").unwrap_or_default();
    let region = str_of(event, "region").unwrap_or_default();
    let ctx = RequestContext::internal(account, region, "");
    let rec = buses::must_load(events, &ctx, crate::model::DEFAULT_BUS)?;
    route(events, &ctx, &rec, event, crate::now_ms())
}

/// Works off the events AWS services stored for EventBridge
/// ([`basalt_core::events::SERVICE_EVENTS_QUEUE`], S3's object events): each is routed, and
/// its deliveries stored in the transaction that completes it. The internal bus only wakes
/// this worker; a lost wake-up costs at most the poll interval.
pub(crate) fn start_service_events(
    events: Arc<Events>,
    bus: Option<basalt_core::events::EventBus>,
) {
    if let Some(bus) = bus {
        let events = events.clone();
        let mut rx = bus.subscribe();
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        events.wake_service_events.notify_one();
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }
    tokio::spawn(async move {
        loop {
            let worker = events.clone();
            let handled = tokio::task::spawn_blocking(move || work_service_events(&worker))
                .await
                .unwrap_or(0);
            if handled == 0 {
                tokio::select! {
                    _ = events.wake_service_events.notified() => {}
                    _ = tokio::time::sleep(std::time::Duration::from_millis(500)) => {}
                }
            }
        }
    });
}

/// One batch of service events; returns how many were claimed.
fn work_service_events(events: &Events) -> usize {
    let queue = basalt_core::events::SERVICE_EVENTS_QUEUE;
    let claimed = match events
        .state
        .clock_ms()
        .and_then(|now| events.state.claim(queue, now, events.config.lease_ms, 32))
    {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("claiming service events: {e}");
            return 0;
        }
    };
    let n = claimed.len();
    let mut routed = false;
    for claim in claimed {
        let ops = match serde_json::from_slice::<Value>(&claim.payload) {
            Ok(event) => match route_service_event(events, &event) {
                Ok(ops) => ops,
                // Left to its lease: tried again when it runs out.
                Err(e) => {
                    tracing::warn!("routing a service event: {}", e.message);
                    continue;
                }
            },
            Err(_) => Vec::new(),
        };
        routed |= !ops.is_empty();
        if let Err(e) = events.state.complete(&claim, &ops) {
            tracing::debug!("completing service event {}: {e}", claim.id);
        }
    }
    if routed {
        events.wake.notify_one();
    }
    n
}

pub fn test_event_pattern(input: &Value) -> Result<Value, AwsError> {
    let pattern =
        str_of(input, "EventPattern").ok_or_else(|| validation("EventPattern is required."))?;
    let event = str_of(input, "Event").ok_or_else(|| validation("Event is required."))?;
    let pattern = Pattern::parse(pattern)
        .map_err(|e| AwsError::new(400, "InvalidEventPatternException", e.to_string()))?;
    let event: Map<String, Value> =
        serde_json::from_str(event).map_err(|_| validation("Parameter Event is not valid."))?;
    // TestEventPattern requires the envelope's fields, as AWS does.
    for field in ["id", "account", "source", "time", "region", "detail-type"] {
        if !event.contains_key(field) {
            return Err(validation(format!(
                "Parameter Event is not valid. Reason: Provided Event is missing required field: {field}"
            )));
        }
    }
    Ok(json!({"Result": pattern.matches(&Value::Object(event))}))
}
