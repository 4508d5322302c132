//! Archives: Create/Describe/List/Update/DeleteArchive, the archived copies of events, and
//! the upkeep that drops what retention or a deletion left.
//!
//! An archive is, as on AWS, a managed rule `Events-Archive-<name>` on its bus whose pattern
//! is the archive's plus `"replay-name": [{"exists": false}]` (so replayed events are never
//! archived again). That rule is compiled with the bus's other rules: an event it matches is
//! copied into [`EVENTS`] by a write in the batch that accepts the event, so an archived
//! event is neither lost nor doubled by a crash. Copies are keyed
//! `{incarnation}/{event time ms, 13 digits}/{event id}`: one archive's events are one
//! prefix in time order (what replays and retention read), and an archive deleted and
//! created again under the same name starts empty.

use crate::model::{RuleRec, bus_arn};
use crate::rules::{self, Edited};
use crate::{Events, limit, not_found, now_ms, str_of, token, untoken, validation};
use basalt_core::{AwsError, RequestContext};
use basalt_eventpattern::Pattern;
use basalt_store::{Claim, WriteOp};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Duration;

/// Archive records, keyed `{account}/{region}/{name}`.
pub const ARCHIVES: &str = "events.archives";
/// Archived events (see the module's comment for the keys).
pub const EVENTS: &str = "events.archive_events";
/// The lease queue of retention passes and purges of deleted archives.
pub const UPKEEP: &str = "events.archive_upkeep";
/// Who manages an archive's rule: the principal AWS shows in ListRules' `ManagedBy`.
pub const MANAGED_BY: &str = "prod.vhs.events.aws.internal";
const DAY_MS: i64 = 86_400_000;
/// A purge waits this long, so that a PutEvents that routed with the archive's rule just
/// before the deletion has committed before the purge reads.
const PURGE_DELAY_MS: i64 = 5_000;
const STATES: [&str; 6] = [
    "ENABLED",
    "DISABLED",
    "CREATING",
    "UPDATING",
    "CREATE_FAILED",
    "UPDATE_FAILED",
];

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArchiveRec {
    pub name: String,
    pub bus: String,
    /// The incarnation: the prefix of this archive's events.
    pub id: String,
    #[serde(default)]
    pub pattern: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// 0: kept forever.
    #[serde(default)]
    pub retention_days: i64,
    #[serde(default)]
    pub kms_key: Option<String>,
    /// Epoch milliseconds.
    pub created_ms: i64,
}

pub fn archive_key(account: &str, region: &str, name: &str) -> String {
    format!("{account}/{region}/{name}")
}

pub fn archive_arn(account: &str, region: &str, name: &str) -> String {
    format!("arn:aws:events:{region}:{account}:archive/{name}")
}

fn rule_name(archive: &str) -> String {
    format!("Events-Archive-{archive}")
}

/// Epoch milliseconds of an event's `time` (`now` when it has none that parses).
pub(crate) fn event_time_ms(event: &Value, now: i64) -> i64 {
    event
        .get("time")
        .and_then(Value::as_str)
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map_or(now, |t| t.timestamp_millis())
        .max(0)
}

pub(crate) fn event_key(archive_id: &str, time_ms: i64, event_id: &str) -> String {
    format!("{archive_id}/{time_ms:013}/{event_id}")
}

/// The write that stores `event` in archive incarnation `archive_id`. A put by event id:
/// the same event stored twice is stored once.
pub(crate) fn store_op(archive_id: &str, event: &Value, now: i64) -> WriteOp {
    let id = event.get("id").and_then(Value::as_str).unwrap_or("");
    WriteOp::Put {
        table: EVENTS.into(),
        key: event_key(archive_id, event_time_ms(event, now), id),
        value: serde_json::to_vec(event).unwrap_or_default(),
    }
}

pub(crate) fn load(
    events: &Events,
    ctx: &RequestContext,
    name: &str,
) -> Result<Option<(Vec<u8>, ArchiveRec)>, AwsError> {
    let key = archive_key(&ctx.account_id, &ctx.region, name);
    match events.state.get(ARCHIVES, &key)? {
        Some(raw) => {
            let rec = serde_json::from_slice(&raw)
                .map_err(|e| AwsError::internal(format!("corrupt archive record: {e}")))?;
            Ok(Some((raw, rec)))
        }
        None => Ok(None),
    }
}

fn missing(name: &str) -> AwsError {
    not_found(format!("Archive {name} does not exist."))
}

pub(crate) fn must_load(
    events: &Events,
    ctx: &RequestContext,
    name: &str,
) -> Result<ArchiveRec, AwsError> {
    load(events, ctx, name)?
        .map(|(_, r)| r)
        .ok_or_else(|| missing(name))
}

fn check_name(name: &str) -> Result<(), AwsError> {
    if name.len() > 48 {
        return Err(validation(format!(
            "1 validation error detected: Value '{name}' at 'archiveName' failed to satisfy constraint: Member must have length less than or equal to 48"
        )));
    }
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
    {
        return Err(validation(format!(
            "1 validation error detected: Value '{name}' at 'archiveName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\.\\-_A-Za-z0-9]+"
        )));
    }
    Ok(())
}

fn archive_name(input: &Value) -> Result<&str, AwsError> {
    let name = crate::required(input, "ArchiveName")?;
    check_name(name)?;
    Ok(name)
}

fn retention(input: &Value) -> Result<Option<i64>, AwsError> {
    match input.get("RetentionDays").and_then(Value::as_i64) {
        Some(d) if d < 0 => Err(validation(format!(
            "1 validation error detected: Value '{d}' at 'retentionDays' failed to satisfy constraint: Member must have value greater than or equal to 0"
        ))),
        d => Ok(d),
    }
}

fn pattern(input: &Value) -> Result<Option<String>, AwsError> {
    match str_of(input, "EventPattern").filter(|p| !p.is_empty()) {
        None => Ok(None),
        Some(p) => {
            Pattern::parse(p)
                .map_err(|e| AwsError::new(400, "InvalidEventPatternException", e.to_string()))?;
            Ok(Some(p.to_owned()))
        }
    }
}

/// The pattern of the archive's rule: the archive's, and never a replayed event.
fn rule_pattern(pattern: Option<&str>) -> String {
    let mut p = pattern
        .and_then(|p| serde_json::from_str::<Map<String, Value>>(p).ok())
        .unwrap_or_default();
    p.insert("replay-name".into(), json!([{"exists": false}]));
    Value::Object(p).to_string()
}

fn managed_rule(a: &ArchiveRec, created_ms: i64) -> RuleRec {
    RuleRec {
        name: rule_name(&a.name),
        bus: a.bus.clone(),
        pattern: Some(rule_pattern(a.pattern.as_deref())),
        state: "ENABLED".into(),
        created_ms,
        managed_by: Some(MANAGED_BY.into()),
        archive: Some(a.id.clone()),
        ..RuleRec::default()
    }
}

/// The bus an `EventSourceArn` names.
fn source_bus(events: &Events, ctx: &RequestContext, arn: &str) -> Result<String, AwsError> {
    let bus = arn
        .split_once(":event-bus/")
        .map(|(_, b)| b)
        .filter(|b| arn.starts_with("arn:aws") && !b.is_empty())
        .ok_or_else(|| {
            validation(format!(
                "Parameter EventSourceArn is not valid. Reason: Provided Arn {arn} is not an event bus ARN."
            ))
        })?;
    crate::buses::must_load(events, ctx, bus)?;
    Ok(bus.to_owned())
}

fn secs(ms: i64) -> Value {
    json!(ms as f64 / 1000.0)
}

/// The upkeep item of an archive: retention passes while it has a retention period.
fn retention_op(ctx: &RequestContext, a: &ArchiveRec, due_ms: i64) -> WriteOp {
    upkeep_op(
        Upkeep {
            account: ctx.account_id.clone(),
            region: ctx.region.clone(),
            name: a.name.clone(),
            id: a.id.clone(),
            purge: false,
        },
        due_ms,
    )
}

pub fn create(events: &Events, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let name = archive_name(input)?;
    let source = crate::required(input, "EventSourceArn")?;
    let bus = source_bus(events, ctx, source)?;
    let pattern = pattern(input)?;
    let retention_days = retention(input)?.unwrap_or(0);
    let now = now_ms();
    let rec = ArchiveRec {
        name: name.to_owned(),
        bus: bus.clone(),
        id: uuid::Uuid::new_v4().simple().to_string(),
        pattern,
        description: str_of(input, "Description").map(str::to_owned),
        retention_days,
        kms_key: str_of(input, "KmsKeyIdentifier").map(str::to_owned),
        created_ms: now,
    };
    let key = archive_key(&ctx.account_id, &ctx.region, name);
    rules::update(events, ctx, &bus, &rule_name(name), |_| {
        if events.state.get(ARCHIVES, &key)?.is_some() {
            return Err(AwsError::new(
                400,
                "ResourceAlreadyExistsException",
                format!("Archive {name} already exists."),
            ));
        }
        let mut extra = vec![
            WriteOp::Check {
                table: ARCHIVES.into(),
                key: key.clone(),
                expected: None,
            },
            WriteOp::Put {
                table: ARCHIVES.into(),
                key: key.clone(),
                value: serde_json::to_vec(&rec).unwrap_or_default(),
            },
        ];
        if rec.retention_days > 0 {
            extra.push(retention_op(ctx, &rec, now));
        }
        Ok(Edited {
            rule: Some(managed_rule(&rec, now)),
            extra,
            out: (),
        })
    })?;
    Ok(json!({
        "ArchiveArn": archive_arn(&ctx.account_id, &ctx.region, name),
        "State": "ENABLED",
        "CreationTime": secs(now),
    }))
}

/// How many events an archive holds and their bytes. Read from the events themselves, so
/// exact at once (AWS reconciles these within 24 hours).
fn stats(events: &Events, id: &str) -> Result<(i64, i64), AwsError> {
    let prefix = format!("{id}/");
    let (mut count, mut bytes) = (0i64, 0i64);
    let mut after: Option<String> = None;
    loop {
        let page = events.state.scan(EVENTS, &prefix, after.as_deref(), 200)?;
        let Some((last, _)) = page.last() else { break };
        after = Some(last.clone());
        count += page.len() as i64;
        bytes += page.iter().map(|(_, v)| v.len() as i64).sum::<i64>();
    }
    Ok((count, bytes))
}

fn archive_json(
    events: &Events,
    ctx: &RequestContext,
    a: &ArchiveRec,
    describe: bool,
) -> Result<Value, AwsError> {
    let (count, bytes) = stats(events, &a.id)?;
    let mut v = json!({
        "ArchiveName": a.name,
        "EventSourceArn": bus_arn(&ctx.account_id, &ctx.region, &a.bus),
        "State": "ENABLED",
        "RetentionDays": a.retention_days,
        "SizeBytes": bytes,
        "EventCount": count,
        "CreationTime": secs(a.created_ms),
    });
    if describe {
        v["ArchiveArn"] = archive_arn(&ctx.account_id, &ctx.region, &a.name).into();
        if let Some(d) = &a.description {
            v["Description"] = d.clone().into();
        }
        if let Some(p) = &a.pattern {
            v["EventPattern"] = p.clone().into();
        }
        if let Some(k) = &a.kms_key {
            v["KmsKeyIdentifier"] = k.clone().into();
        }
    }
    Ok(v)
}

pub fn describe(events: &Events, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let a = must_load(events, ctx, archive_name(input)?)?;
    archive_json(events, ctx, &a, true)
}

/// ListArchives and ListReplays take one filter at most.
pub(crate) fn one_filter(input: &Value, what: &str) -> Result<(), AwsError> {
    let given = ["NamePrefix", "EventSourceArn", "State"]
        .iter()
        .filter(|f| input.get(**f).is_some())
        .count();
    if given > 1 {
        return Err(validation(format!(
            "At most one filter is allowed for {what}. Use either : State, EventSourceArn, or NamePrefix."
        )));
    }
    Ok(())
}

pub(crate) fn check_state(state: Option<&str>, valid: &[&str]) -> Result<(), AwsError> {
    match state {
        Some(s) if !valid.contains(&s) => Err(validation(format!(
            "1 validation error detected: Value '{s}' at 'state' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
            valid.join(", ")
        ))),
        _ => Ok(()),
    }
}

pub fn list(events: &Events, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    one_filter(input, "ListArchives")?;
    let state = str_of(input, "State");
    check_state(state, &STATES)?;
    let limit = limit(input, 100)?;
    let source = str_of(input, "EventSourceArn");
    let prefix = str_of(input, "NamePrefix").unwrap_or("");
    let scope = format!("{}/{}/", ctx.account_id, ctx.region);
    let mut cursor = str_of(input, "NextToken")
        .map(untoken)
        .transpose()?
        .map(|a| format!("{scope}{a}"));
    let mut found: Vec<ArchiveRec> = Vec::new();
    let mut more = false;
    'pages: loop {
        let page = events.state.scan(
            ARCHIVES,
            &format!("{scope}{prefix}"),
            cursor.as_deref(),
            200,
        )?;
        let Some((last, _)) = page.last() else { break };
        cursor = Some(last.clone());
        for (_, raw) in page {
            let Ok(a) = serde_json::from_slice::<ArchiveRec>(&raw) else {
                continue;
            };
            let arn = bus_arn(&ctx.account_id, &ctx.region, &a.bus);
            if source.is_some_and(|s| s != arn) || state.is_some_and(|s| s != "ENABLED") {
                continue;
            }
            if found.len() == limit {
                more = true;
                break 'pages;
            }
            found.push(a);
        }
    }
    let listed = found
        .iter()
        .map(|a| archive_json(events, ctx, a, false))
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = json!({"Archives": listed});
    if more && let Some(last) = found.last() {
        out["NextToken"] = token(&last.name).into();
    }
    Ok(out)
}

pub fn update(events: &Events, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let name = archive_name(input)?;
    let current = must_load(events, ctx, name)?;
    let pattern = pattern(input)?;
    let retention_days = retention(input)?;
    let key = archive_key(&ctx.account_id, &ctx.region, name);
    let now = now_ms();
    let updated = rules::update(events, ctx, &current.bus, &rule_name(name), |rule| {
        let (raw, mut a) = load(events, ctx, name)?.ok_or_else(|| missing(name))?;
        if let Some(d) = str_of(input, "Description") {
            a.description = Some(d.to_owned());
        }
        if input.get("EventPattern").is_some() {
            a.pattern = pattern.clone();
        }
        if let Some(d) = retention_days {
            a.retention_days = d;
        }
        if let Some(k) = str_of(input, "KmsKeyIdentifier") {
            a.kms_key = Some(k.to_owned()).filter(|k| !k.is_empty());
        }
        let mut extra = vec![
            WriteOp::Check {
                table: ARCHIVES.into(),
                key: key.clone(),
                expected: Some(raw),
            },
            WriteOp::Put {
                table: ARCHIVES.into(),
                key: key.clone(),
                value: serde_json::to_vec(&a).unwrap_or_default(),
            },
        ];
        if a.retention_days > 0 {
            extra.push(retention_op(ctx, &a, now));
        }
        let created = rule.as_ref().map_or(now, |r| r.created_ms);
        Ok(Edited {
            rule: Some(managed_rule(&a, created)),
            extra,
            out: a,
        })
    })?;
    Ok(json!({
        "ArchiveArn": archive_arn(&ctx.account_id, &ctx.region, name),
        "State": "ENABLED",
        "CreationTime": secs(updated.created_ms),
    }))
}

pub fn delete(events: &Events, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let name = archive_name(input)?;
    let current = must_load(events, ctx, name)?;
    let key = archive_key(&ctx.account_id, &ctx.region, name);
    let now = now_ms();
    rules::update(events, ctx, &current.bus, &rule_name(name), |_| {
        let (raw, a) = load(events, ctx, name)?.ok_or_else(|| missing(name))?;
        let purge = Upkeep {
            account: ctx.account_id.clone(),
            region: ctx.region.clone(),
            name: a.name.clone(),
            id: a.id.clone(),
            purge: true,
        };
        Ok(Edited {
            rule: None,
            extra: vec![
                WriteOp::Check {
                    table: ARCHIVES.into(),
                    key: key.clone(),
                    expected: Some(raw),
                },
                WriteOp::Delete {
                    table: ARCHIVES.into(),
                    key: key.clone(),
                },
                upkeep_op(purge, now + PURGE_DELAY_MS),
            ],
            out: (),
        })
    })?;
    Ok(json!({}))
}

/// Archives go with their bus: the writes that delete the archives of bus `bus` and
/// schedule the purge of their events (their rules go with the bus's rules).
pub(crate) fn deleted_with_bus(
    events: &Events,
    ctx: &RequestContext,
    bus: &str,
) -> Result<Vec<WriteOp>, AwsError> {
    let scope = format!("{}/{}/", ctx.account_id, ctx.region);
    let mut ops = Vec::new();
    let now = now_ms();
    for (key, raw) in events.state.scan(ARCHIVES, &scope, None, 10_000)? {
        let Ok(a) = serde_json::from_slice::<ArchiveRec>(&raw) else {
            continue;
        };
        if a.bus != bus {
            continue;
        }
        ops.push(WriteOp::Delete {
            table: ARCHIVES.into(),
            key,
        });
        let purge = Upkeep {
            account: ctx.account_id.clone(),
            region: ctx.region.clone(),
            name: a.name,
            id: a.id,
            purge: true,
        };
        ops.push(upkeep_op(purge, now + PURGE_DELAY_MS));
    }
    Ok(ops)
}

// Upkeep on the store's leases.

/// A retention pass over an archive (`purge` false, rearmed while the archive keeps a
/// retention period), or the purge of a deleted archive's events.
#[derive(Debug, Serialize, Deserialize)]
struct Upkeep {
    account: String,
    region: String,
    name: String,
    id: String,
    purge: bool,
}

fn upkeep_op(u: Upkeep, due_ms: i64) -> WriteOp {
    WriteOp::Enqueue {
        queue: UPKEEP.into(),
        id: format!("{}/{}", if u.purge { "purge" } else { "retention" }, u.id),
        payload: serde_json::to_vec(&u).unwrap_or_default(),
        due_ms,
    }
}

pub(crate) fn start_upkeep(events: Arc<Events>) {
    tokio::spawn(async move {
        loop {
            let worker = events.clone();
            let handled = tokio::task::spawn_blocking(move || upkeep_round(&worker))
                .await
                .unwrap_or(0);
            if handled == 0 {
                tokio::time::sleep(Duration::from_millis(1_000)).await;
            }
        }
    });
}

pub(crate) fn upkeep_round(events: &Events) -> usize {
    let claimed = match events
        .state
        .clock_ms()
        .and_then(|now| events.state.claim(UPKEEP, now, events.config.lease_ms, 8))
    {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("claiming archive upkeep: {e}");
            return 0;
        }
    };
    let n = claimed.len();
    for claim in claimed {
        if let Err(e) = upkeep(events, &claim) {
            // Left to its lease: tried again when it runs out.
            tracing::warn!("archive upkeep {}: {}", claim.id, e.message);
        }
    }
    n
}

fn upkeep(events: &Events, claim: &Claim) -> Result<(), AwsError> {
    let Ok(u) = serde_json::from_slice::<Upkeep>(&claim.payload) else {
        events.state.complete(claim, &[])?;
        return Ok(());
    };
    let now = events.state.clock_ms()?;
    let lo = format!("{}/", u.id);
    if u.purge {
        drop_range(events, &lo, &format!("{}0", u.id))?;
        events.state.complete(claim, &[])?;
        return Ok(());
    }
    let ctx = RequestContext::internal(&u.account, &u.region, "");
    // Gone, re-created or kept forever since: this pass is the last.
    let current = must_load(events, &ctx, &u.name)
        .ok()
        .filter(|a| a.id == u.id && a.retention_days > 0);
    let Some(a) = current else {
        events.state.complete(claim, &[])?;
        return Ok(());
    };
    let cutoff = now.saturating_sub(a.retention_days.saturating_mul(DAY_MS));
    drop_range(events, &lo, &format!("{}/{:013}", u.id, cutoff.max(0)))?;
    let next = retention_op(&ctx, &a, now + events.config.retention_every_ms);
    events.state.complete(claim, &[next])?;
    Ok(())
}

/// Deletes the archived events with keys in `[lo, hi)`, a page per batch.
fn drop_range(events: &Events, lo: &str, hi: &str) -> Result<(), AwsError> {
    loop {
        let page = events.state.range(EVENTS, lo, hi, false, 500)?;
        if page.is_empty() {
            return Ok(());
        }
        let ops: Vec<WriteOp> = page
            .into_iter()
            .map(|(key, _)| WriteOp::Delete {
                table: EVENTS.into(),
                key,
            })
            .collect();
        events.state.batch(&ops)?;
    }
}
