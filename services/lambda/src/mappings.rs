//! Event source mappings for Amazon SQS: Create/Get/List/Update/DeleteEventSourceMapping and
//! the pollers that read the queues and invoke the functions.
//!
//! A mapping is `{scope}/{uuid}` in `lambda.esm`. An enabled mapping has one work item on the
//! store's leases ([`ESM_QUEUE`], id = its UUID, payload = its key), written in the same
//! transaction as the record that enables it; the node that claims it polls the queue for as
//! long as it holds the lease (renewed while polling), so exactly one node polls a mapping and a
//! dead node's mappings are taken over when their lease expires. The poller re-reads the record
//! before every batch: a disabled or deleted mapping completes its item (stops); enabling again
//! enqueues the item anew, which ends any older lease.
//!
//! A batch is gathered through the in-process registry (SQS `ReceiveMessage`, up to
//! `BatchSize` messages within `MaximumBatchingWindowInSeconds`), filtered by `FilterCriteria`
//! (records that match no filter are deleted, as AWS discards them), and handed to the
//! function as a synchronous invocation. Success deletes the batch; a function error leaves it
//! (the visibility timeout brings it back, the queue's redrive policy takes poison messages to
//! its dead-letter queue); with `ReportBatchItemFailures` everything but the reported
//! `itemIdentifier`s is deleted. Up to `ScalingConfig.MaximumConcurrency` batches of a mapping
//! run at once.

mod stream;

use crate::model::function_arn;
use crate::{Lambda, conflict, invalid_value, not_found, str_of};
use basalt_core::{AwsError, Output, RequestContext};
use basalt_store::{Claim, WriteOp};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// Mapping records.
pub const MAPPINGS: &str = "lambda.esm";
/// The lease queue: one item per enabled mapping.
pub const ESM_QUEUE: &str = "lambda.esm";
/// How many mappings one node polls at most.
const MAX_POLLERS: usize = 256;
/// Batches of one mapping in flight when `ScalingConfig` does not say.
const DEFAULT_CONCURRENCY: u32 = 5;
/// How long one receive waits for a first message: short, so that a disabled or deleted
/// mapping stops within about this long (the long poll answers at once when a message
/// arrives).
const POLL_WAIT_S: u64 = 1;
/// A batch stops growing past this many bytes of records (the synchronous payload is 6 MB).
const MAX_BATCH_BYTES: usize = 5_500_000;
/// AWS's default quota of filters per mapping.
const MAX_FILTERS: usize = 5;
/// After a failure to reach the queue, the poller waits this long before trying again.
const BACKOFF: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Mapping {
    pub uuid: String,
    pub account: String,
    pub region: String,
    pub function_name: String,
    pub qualifier: Option<String>,
    pub source_arn: String,
    pub batch_size: u32,
    pub window_s: u32,
    pub enabled: bool,
    /// Epoch seconds.
    pub last_modified: f64,
    #[serde(default)]
    pub response_types: Vec<String>,
    /// Filter patterns as given (JSON text).
    #[serde(default)]
    pub filters: Option<Vec<String>>,
    #[serde(default)]
    pub max_concurrency: Option<u32>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// The settings of a DynamoDB stream source (absent for a queue).
    #[serde(default)]
    pub stream: Option<stream::StreamSource>,
}

impl Mapping {
    fn key(&self) -> String {
        mapping_key(&format!("{}/{}", self.account, self.region), &self.uuid)
    }

    fn function_arn(&self) -> String {
        let arn = function_arn(&self.region, &self.account, &self.function_name);
        match &self.qualifier {
            Some(q) => format!("{arn}:{q}"),
            None => arn,
        }
    }

    fn report_failures(&self) -> bool {
        self.response_types
            .iter()
            .any(|t| t == "ReportBatchItemFailures")
    }

    /// The mapping as the API shows it, in `state`.
    fn describe(&self, state: &str) -> Value {
        let mut out = json!({
            "UUID": self.uuid,
            "BatchSize": self.batch_size,
            "MaximumBatchingWindowInSeconds": self.window_s,
            "EventSourceArn": self.source_arn,
            "FunctionArn": self.function_arn(),
            "LastModified": self.last_modified,
            "State": state,
            "StateTransitionReason": "USER_INITIATED",
            "FunctionResponseTypes": self.response_types,
            "EventSourceMappingArn": format!(
                "arn:aws:lambda:{}:{}:event-source-mapping:{}",
                self.region, self.account, self.uuid
            ),
        });
        if let Some(filters) = &self.filters {
            out["FilterCriteria"] = json!({
                "Filters": filters.iter().map(|p| json!({"Pattern": p})).collect::<Vec<_>>()
            });
        }
        if let Some(n) = self.max_concurrency {
            out["ScalingConfig"] = json!({"MaximumConcurrency": n});
        }
        if let Some(s) = &self.stream {
            stream::describe_into(s, &mut out);
        }
        out
    }

    fn settled_state(&self) -> &'static str {
        if self.enabled { "Enabled" } else { "Disabled" }
    }
}

fn mapping_key(scope: &str, uuid: &str) -> String {
    format!("{scope}/{uuid}")
}

fn mapping_missing() -> AwsError {
    not_found("The resource you requested does not exist.")
}

/// A queue ARN's region, account and name.
pub(crate) fn parse_queue_arn(arn: &str) -> Option<(&str, &str, &str)> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", _, "sqs", region, account, name]
            if !region.is_empty() && !account.is_empty() && !name.is_empty() =>
        {
            Some((region, account, name))
        }
        _ => None,
    }
}

fn queue_url(account: &str, name: &str) -> String {
    format!("internal/{account}/{name}")
}

fn load(l: &Lambda, key: &str) -> Result<Option<Mapping>, AwsError> {
    Ok(match l.state.get(MAPPINGS, key)? {
        Some(raw) => Some(
            serde_json::from_slice(&raw)
                .map_err(|e| AwsError::internal(format!("corrupt event source mapping: {e}")))?,
        ),
        None => None,
    })
}

fn load_by_uuid(l: &Lambda, ctx: &RequestContext, input: &Value) -> Result<Mapping, AwsError> {
    let uuid = str_of(input, "UUID").unwrap_or_default();
    if uuid.is_empty() || uuid.contains('/') {
        return Err(mapping_missing());
    }
    load(l, &mapping_key(&ctx.scope(), uuid))?.ok_or_else(mapping_missing)
}

fn all(l: &Lambda, ctx: &RequestContext) -> Result<Vec<Mapping>, AwsError> {
    crate::records(l, MAPPINGS, &format!("{}/", ctx.scope()))
}

fn now_s() -> f64 {
    (chrono::Utc::now().timestamp_millis() as f64 / 1000.0).floor()
}

fn int_of(input: &Value, name: &str) -> Option<i64> {
    input.get(name).and_then(|v| {
        v.as_i64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
    })
}

/// Parameters of other event source types, which an SQS mapping refuses.
const NOT_FOR_SQS: [&str; 12] = [
    "StartingPosition",
    "StartingPositionTimestamp",
    "ParallelizationFactor",
    "DestinationConfig",
    "MaximumRecordAgeInSeconds",
    "BisectBatchOnFunctionError",
    "MaximumRetryAttempts",
    "TumblingWindowInSeconds",
    "Topics",
    "Queues",
    "SelfManagedEventSource",
    "DocumentDBEventSourceConfig",
];

/// Applies the settings `input` carries to `m` (all of them for Create, the given ones for
/// Update), checking each.
fn apply_settings(m: &mut Mapping, input: &Value) -> Result<(), AwsError> {
    for p in NOT_FOR_SQS {
        if input.get(p).is_some_and(|v| !v.is_null()) {
            return Err(invalid_value(format!(
                "Unsupported {p} parameter for given event source mapping type."
            )));
        }
    }
    if let Some(v) = input.get("Enabled").and_then(Value::as_bool) {
        m.enabled = v;
    }
    if let Some(n) = int_of(input, "BatchSize") {
        if !(1..=10_000).contains(&n) {
            return Err(invalid_value(format!(
                "1 validation error detected: Value '{n}' at 'batchSize' failed to satisfy constraint: Member must have value {}",
                if n < 1 {
                    "greater than or equal to 1"
                } else {
                    "less than or equal to 10000"
                }
            )));
        }
        m.batch_size = n as u32;
    }
    if let Some(n) = int_of(input, "MaximumBatchingWindowInSeconds") {
        if !(0..=300).contains(&n) {
            return Err(invalid_value(format!(
                "1 validation error detected: Value '{n}' at 'maximumBatchingWindowInSeconds' failed to satisfy constraint: Member must have value {}",
                if n < 0 {
                    "greater than or equal to 0"
                } else {
                    "less than or equal to 300"
                }
            )));
        }
        m.window_s = n as u32;
    }
    if let Some(types) = input.get("FunctionResponseTypes").and_then(Value::as_array) {
        let mut out = Vec::new();
        for t in types {
            match t.as_str() {
                Some("ReportBatchItemFailures") => out.push("ReportBatchItemFailures".to_owned()),
                other => {
                    return Err(invalid_value(format!(
                        "1 validation error detected: Value '[{}]' at 'functionResponseTypes' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value set: [ReportBatchItemFailures]]",
                        other.unwrap_or_default()
                    )));
                }
            }
        }
        out.dedup();
        m.response_types = out;
    }
    if let Some(fc) = input.get("FilterCriteria").filter(|v| !v.is_null()) {
        m.filters = parse_filter_criteria(fc)?;
    }
    if let Some(sc) = input.get("ScalingConfig").filter(|v| !v.is_null()) {
        m.max_concurrency = match int_of(sc, "MaximumConcurrency") {
            None => None,
            Some(n) if (2..=1000).contains(&n) => Some(n as u32),
            Some(n) => {
                return Err(invalid_value(format!(
                    "1 validation error detected: Value '{n}' at 'scalingConfig.maximumConcurrency' failed to satisfy constraint: Member must have value {}",
                    if n < 2 {
                        "greater than or equal to 2"
                    } else {
                        "less than or equal to 1000"
                    }
                )));
            }
        };
    }
    if m.batch_size > 10 && m.window_s < 1 {
        return Err(invalid_value(
            "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10",
        ));
    }
    if m.source_arn.ends_with(".fifo") && m.batch_size > 10 {
        return Err(invalid_value(
            "Batch size for FIFO queues must be less than or equal to 10",
        ));
    }
    Ok(())
}

/// `FilterCriteria` → its patterns (`None` when it has none), each checked.
fn parse_filter_criteria(fc: &Value) -> Result<Option<Vec<String>>, AwsError> {
    let Some(filters) = fc.get("Filters").and_then(Value::as_array) else {
        return Ok(None);
    };
    if filters.is_empty() {
        return Ok(None);
    }
    if filters.len() > MAX_FILTERS {
        return Err(invalid_value(format!(
            "The number of filters ({}) exceeds the maximum of {MAX_FILTERS} for the event source mapping.",
            filters.len()
        )));
    }
    let mut out = Vec::new();
    for f in filters {
        let pattern = str_of(f, "Pattern").unwrap_or_default();
        if basalt_eventpattern::Pattern::parse(pattern).is_err() {
            return Err(invalid_value(format!(
                "Invalid filter pattern definition. {pattern}"
            )));
        }
        out.push(pattern.to_owned());
    }
    Ok(Some(out))
}

/// The function `FunctionName` names, which must exist (its version or alias too).
fn resolve_function(
    l: &Lambda,
    ctx: &RequestContext,
    raw: &str,
) -> Result<(String, Option<String>, u32), AwsError> {
    let r = crate::model::parse_ref(raw, None, &ctx.account_id)?;
    let (rec, _) = crate::functions::load(l, ctx, &r.name)?;
    let config = crate::functions::resolve_config(l, ctx, &rec, r.qualifier.as_deref())?;
    Ok((rec.name, r.qualifier, config.timeout))
}

/// Checks that the queue exists and that its visibility timeout is not shorter than the
/// function's timeout, as AWS checks.
async fn check_queue(l: &Lambda, arn: &str, function_timeout: u32) -> Result<(), AwsError> {
    let Some((region, account, name)) = parse_queue_arn(arn) else {
        return Err(invalid_value(format!(
            "Unrecognized event source, must be an Amazon SQS queue ARN: {arn}"
        )));
    };
    let registry = l
        .registry
        .get()
        .ok_or_else(|| AwsError::internal("Lambda started without SQS"))?;
    let ctx = RequestContext::internal(account, region, "");
    let out = registry
        .call(
            &ctx,
            "sqs",
            "GetQueueAttributes",
            json!({"QueueUrl": queue_url(account, name), "AttributeNames": ["VisibilityTimeout"]}),
        )
        .await
        .map_err(|e| {
            if e.code == "QueueDoesNotExist" || e.code.ends_with("NonExistentQueue") {
                return invalid_value(
                    "Error occurred while ReceiveMessage. SQS Error Code: AWS.SimpleQueueService.NonExistentQueue. SQS Error Message: The specified queue does not exist or you do not have access to it.",
                );
            }
            invalid_value(format!(
                "Error occurred while ReceiveMessage. SQS Error Code: {}. SQS Error Message: {}",
                e.code, e.message
            ))
        })?;
    let visibility: u32 = out.body["Attributes"]["VisibilityTimeout"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    if visibility < function_timeout {
        return Err(invalid_value(format!(
            "Queue visibility timeout: {visibility} seconds is less than Function timeout: {function_timeout} seconds"
        )));
    }
    Ok(())
}

fn duplicate(others: &[Mapping], m: &Mapping) -> Result<(), AwsError> {
    if let Some(d) = others.iter().find(|o| {
        o.uuid != m.uuid && o.source_arn == m.source_arn && o.function_arn() == m.function_arn()
    }) {
        return Err(conflict(format!(
            "An event source mapping with SQS arn (\" {} \") and function (\" {} \") already exists. Please update or delete the existing mapping with UUID {}",
            m.source_arn, m.function_name, d.uuid
        )));
    }
    Ok(())
}

/// The record, and when it turns the mapping on, its work item.
fn save(l: &Lambda, m: &Mapping, start: bool) -> Result<(), AwsError> {
    let mut ops = vec![WriteOp::Put {
        table: MAPPINGS.into(),
        key: m.key(),
        value: serde_json::to_vec(m).map_err(|e| AwsError::internal(e.to_string()))?,
    }];
    if start {
        ops.push(WriteOp::Enqueue {
            queue: ESM_QUEUE.into(),
            id: m.uuid.clone(),
            payload: m.key().into_bytes(),
            due_ms: l.state.clock_ms()?,
        });
    }
    l.state.batch(&ops)?;
    if start {
        l.esm_wake.notify_one();
    }
    Ok(())
}

pub(crate) async fn create(
    l: &Lambda,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Output, AwsError> {
    let source_arn = str_of(input, "EventSourceArn")
        .unwrap_or_default()
        .to_owned();
    if source_arn.is_empty() {
        return Err(invalid_value(
            "Unrecognized event source, must be an Amazon SQS queue ARN.",
        ));
    }
    if stream::is_stream_arn(&source_arn) {
        return stream::create(l, ctx, input, source_arn).await;
    }
    if parse_queue_arn(&source_arn).is_none() {
        return Err(invalid_value(format!(
            "Unrecognized event source, must be an Amazon SQS queue ARN: {source_arn}"
        )));
    }
    let (function_name, qualifier, timeout) =
        resolve_function(l, ctx, str_of(input, "FunctionName").unwrap_or_default())?;
    let mut m = Mapping {
        uuid: uuid::Uuid::new_v4().to_string(),
        account: ctx.account_id.clone(),
        region: ctx.region.clone(),
        function_name,
        qualifier,
        source_arn,
        batch_size: 10,
        window_s: 0,
        enabled: true,
        last_modified: now_s(),
        response_types: Vec::new(),
        filters: None,
        max_concurrency: None,
        tags: BTreeMap::new(),
        stream: None,
    };
    apply_settings(&mut m, input)?;
    if let Some(tags) = input.get("Tags").and_then(Value::as_object) {
        m.tags = tags
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
            .collect();
    }
    duplicate(&all(l, ctx)?, &m)?;
    check_queue(l, &m.source_arn, timeout).await?;
    save(l, &m, m.enabled)?;
    Ok(Output::new(m.describe("Creating")))
}

pub(crate) fn get(l: &Lambda, ctx: &RequestContext, input: &Value) -> Result<Output, AwsError> {
    let m = load_by_uuid(l, ctx, input)?;
    let mut out = m.describe(m.settled_state());
    stream::decorate(l, &m, &mut out);
    Ok(Output::new(out))
}

pub(crate) fn list(l: &Lambda, ctx: &RequestContext, input: &Value) -> Result<Output, AwsError> {
    let source = str_of(input, "EventSourceArn");
    let function = match str_of(input, "FunctionName") {
        Some(raw) => Some(crate::model::parse_ref(raw, None, &ctx.account_id)?),
        None => None,
    };
    let items: Vec<Value> = all(l, ctx)?
        .into_iter()
        .filter(|m| source.is_none_or(|s| s == m.source_arn))
        .filter(|m| {
            function.as_ref().is_none_or(|f| {
                f.name == m.function_name && (f.qualifier.is_none() || f.qualifier == m.qualifier)
            })
        })
        .map(|m| {
            let mut out = m.describe(m.settled_state());
            stream::decorate(l, &m, &mut out);
            out
        })
        .collect();
    Ok(crate::page(items, input, "EventSourceMappings", 100, |v| {
        v["UUID"].as_str().unwrap_or_default().to_owned()
    }))
}

pub(crate) async fn update(
    l: &Lambda,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Output, AwsError> {
    let before = load_by_uuid(l, ctx, input)?;
    let mut m = before.clone();
    let mut timeout = None;
    if let Some(raw) = str_of(input, "FunctionName") {
        let (name, qualifier, t) = resolve_function(l, ctx, raw)?;
        m.function_name = name;
        m.qualifier = qualifier;
        timeout = Some(t);
    }
    if m.stream.is_some() {
        stream::apply(&mut m, input, false)?;
        if m.function_arn() != before.function_arn() {
            stream::duplicate(&all(l, ctx)?, &m)?;
        }
    } else {
        apply_settings(&mut m, input)?;
        if m.function_arn() != before.function_arn() {
            duplicate(&all(l, ctx)?, &m)?;
        }
        if let Some(t) = timeout {
            check_queue(l, &m.source_arn, t).await?;
        }
    }
    m.last_modified = now_s();
    let state = match (before.enabled, m.enabled) {
        (false, true) => "Enabling",
        (true, false) => "Disabling",
        _ => "Updating",
    };
    save(l, &m, m.enabled && !before.enabled)?;
    Ok(Output::new(m.describe(state)))
}

pub(crate) fn delete(l: &Lambda, ctx: &RequestContext, input: &Value) -> Result<Output, AwsError> {
    let m = load_by_uuid(l, ctx, input)?;
    // The poller finds the record gone before its next batch and completes its work item.
    l.state.batch(&[
        WriteOp::Delete {
            table: MAPPINGS.into(),
            key: m.key(),
        },
        stream::forget_op(&m.key()),
    ])?;
    Ok(Output::new(m.describe("Deleting")))
}

// --- the event -----------------------------------------------------------------------------

/// One SQS record of the event, from a message as ReceiveMessage returns it.
pub(crate) fn record(msg: &Value, queue_arn: &str, region: &str) -> Value {
    let attributes = msg.get("Attributes").cloned().unwrap_or_else(|| json!({}));
    let mut message_attributes = Map::new();
    if let Some(attrs) = msg.get("MessageAttributes").and_then(Value::as_object) {
        for (name, a) in attrs {
            let mut v = Map::new();
            if let Some(s) = a.get("StringValue").filter(|v| !v.is_null()) {
                v.insert("stringValue".into(), s.clone());
            }
            if let Some(b) = a.get("BinaryValue").filter(|v| !v.is_null()) {
                v.insert("binaryValue".into(), b.clone());
            }
            v.insert(
                "stringListValues".into(),
                a.get("StringListValues")
                    .cloned()
                    .unwrap_or_else(|| json!([])),
            );
            v.insert(
                "binaryListValues".into(),
                a.get("BinaryListValues")
                    .cloned()
                    .unwrap_or_else(|| json!([])),
            );
            v.insert(
                "dataType".into(),
                a.get("DataType").cloned().unwrap_or(Value::Null),
            );
            message_attributes.insert(name.clone(), Value::Object(v));
        }
    }
    let mut r = json!({
        "messageId": msg["MessageId"],
        "receiptHandle": msg["ReceiptHandle"],
        "body": msg["Body"],
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": msg["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    });
    if let Some(md5) = msg.get("MD5OfMessageAttributes").filter(|v| !v.is_null()) {
        r["md5OfMessageAttributes"] = md5.clone();
    }
    r
}

/// What a filter pattern is matched against: the record, its `body` parsed when it is JSON
/// (a plain-text body stays a string, so only a plain-string pattern matches it).
fn filter_view(record: &Value) -> Value {
    let mut v = record.clone();
    if let Some(body) = record.get("body").and_then(Value::as_str)
        && let Ok(parsed) = serde_json::from_str::<Value>(body)
    {
        v["body"] = parsed;
    }
    v
}

/// Compiled filters; `None` keeps every record. A pattern that no longer parses (it was
/// checked when stored) matches nothing.
fn compile(filters: &Option<Vec<String>>) -> Option<Vec<basalt_eventpattern::Pattern>> {
    filters.as_ref().map(|fs| {
        fs.iter()
            .filter_map(|p| basalt_eventpattern::Pattern::parse(p).ok())
            .collect()
    })
}

/// Whether the record passes the filters (any one of them, as they are ORed).
fn passes(filters: &Option<Vec<basalt_eventpattern::Pattern>>, record: &Value) -> bool {
    match filters {
        None => true,
        Some(ps) => {
            let view = filter_view(record);
            ps.iter().any(|p| p.matches(&view))
        }
    }
}

/// The message ids a `ReportBatchItemFailures` response names as failed, or `None` when the
/// whole batch counts as failed (AWS: an unreadable response, or an item identifier that is
/// missing, empty or not a message of the batch). An empty or null response, or an empty or
/// null `batchItemFailures`, is a complete success.
pub(crate) fn batch_item_failures(body: &[u8], ids: &HashSet<&str>) -> Option<HashSet<String>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Some(HashSet::new());
    }
    let v: Value = serde_json::from_slice(body).ok()?;
    let Some(failures) = v.get("batchItemFailures") else {
        return Some(HashSet::new());
    };
    let failures = match failures {
        Value::Null => return Some(HashSet::new()),
        Value::Array(a) => a,
        _ => return None,
    };
    let mut out = HashSet::new();
    for f in failures {
        let id = f.get("itemIdentifier").and_then(Value::as_str)?;
        if id.is_empty() || !ids.contains(id) {
            return None;
        }
        out.insert(id.to_owned());
    }
    Some(out)
}

// --- the pollers ---------------------------------------------------------------------------

/// Claims the work items of enabled mappings and polls each, for as long as the service lives.
pub(crate) fn start_worker(l: Arc<Lambda>) {
    let running = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        loop {
            let free = MAX_POLLERS.saturating_sub(running.load(Ordering::Relaxed));
            let claimed = if free == 0 {
                Vec::new()
            } else {
                let (state, lease_ms) = (l.state.clone(), l.config.lease_ms);
                tokio::task::spawn_blocking(move || {
                    let now = state.clock_ms()?;
                    state.claim(ESM_QUEUE, now, lease_ms, free)
                })
                .await
                .unwrap_or_else(|e| Err(basalt_store::StoreError::Other(e.to_string())))
                .unwrap_or_else(|e| {
                    tracing::warn!("claiming event source mappings: {e}");
                    Vec::new()
                })
            };
            for claim in claimed {
                running.fetch_add(1, Ordering::Relaxed);
                let (l, running) = (l.clone(), running.clone());
                tokio::spawn(async move {
                    poll(l, claim).await;
                    running.fetch_sub(1, Ordering::Relaxed);
                });
            }
            tokio::select! {
                _ = l.esm_wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    });
}

/// Polls one mapping while this node holds its lease.
async fn poll(l: Arc<Lambda>, claim: Claim) {
    let key = String::from_utf8_lossy(&claim.payload).into_owned();
    let is_stream = loop {
        match load(&l, &key) {
            Ok(m) => break m.is_some_and(|m| m.stream.is_some()),
            Err(e) => {
                tracing::warn!("reading event source mapping {key}: {}", e.message);
                tokio::time::sleep(BACKOFF).await;
            }
        }
    };
    if is_stream {
        return stream::poll(l, claim, key).await;
    }
    let lost = Arc::new(AtomicBool::new(false));
    let renewer = {
        let (state, claim, lease_ms, lost) = (
            l.state.clone(),
            claim.clone(),
            l.config.lease_ms,
            lost.clone(),
        );
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis((lease_ms / 3).max(1) as u64)).await;
                let (state, claim) = (state.clone(), claim.clone());
                let ok = tokio::task::spawn_blocking(move || {
                    let now = state.clock_ms()?;
                    state.renew(&claim, now, lease_ms)
                })
                .await;
                if !matches!(ok, Ok(Ok(_))) {
                    lost.store(true, Ordering::Relaxed);
                    return;
                }
            }
        })
    };
    let mut slots: Option<(u32, Arc<tokio::sync::Semaphore>)> = None;
    while !lost.load(Ordering::Relaxed) {
        let m = match load(&l, &key) {
            Ok(Some(m)) if m.enabled => m,
            Ok(_) => {
                // Disabled or deleted: the item goes (unless it was enqueued anew meanwhile,
                // which ended this claim).
                let _ = l.state.complete(&claim, &[]);
                break;
            }
            Err(e) => {
                tracing::warn!("reading event source mapping {key}: {}", e.message);
                tokio::time::sleep(BACKOFF).await;
                continue;
            }
        };
        let limit = m.max_concurrency.unwrap_or(DEFAULT_CONCURRENCY).max(1);
        let sem = match &slots {
            Some((n, s)) if *n == limit => s.clone(),
            _ => {
                let s = Arc::new(tokio::sync::Semaphore::new(limit as usize));
                slots = Some((limit, s.clone()));
                s
            }
        };
        let Ok(permit) = sem.acquire_owned().await else {
            break;
        };
        let messages = match gather(&l, &m).await {
            Ok(msgs) => msgs,
            Err(e) => {
                tracing::warn!(
                    mapping = %m.uuid,
                    "polling {}: {}: {}",
                    m.source_arn,
                    e.code,
                    e.message
                );
                tokio::time::sleep(BACKOFF).await;
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
        // Disabled, deleted or moved to another node while the batch gathered: give it back.
        let current = load(&l, &key).ok().flatten();
        if lost.load(Ordering::Relaxed) || current.as_ref().is_none_or(|c| !c.enabled) {
            give_back(&l, &m, &messages).await;
            continue;
        }
        let m = current.unwrap_or(m);
        let l = l.clone();
        tokio::spawn(async move {
            process(&l, &m, messages).await;
            drop(permit);
        });
    }
    renewer.abort();
}

fn sqs_ctx(m: &Mapping) -> Option<(RequestContext, String)> {
    let (region, account, name) = parse_queue_arn(&m.source_arn)?;
    Some((
        RequestContext::internal(account, region, ""),
        queue_url(account, name),
    ))
}

/// Up to `BatchSize` messages: the first wait is a short long poll; once a message is in,
/// receiving goes on until the batch is full or the batching window has passed.
async fn gather(l: &Lambda, m: &Mapping) -> Result<Vec<Value>, AwsError> {
    let registry = l
        .registry
        .get()
        .ok_or_else(|| AwsError::internal("Lambda started without SQS"))?;
    let (ctx, url) = sqs_ctx(m).ok_or_else(|| invalid_value("not an SQS queue"))?;
    let want = m.batch_size.max(1) as usize;
    let window = Duration::from_secs(u64::from(m.window_s));
    let mut deadline: Option<tokio::time::Instant> = None;
    let mut out: Vec<Value> = Vec::new();
    let mut bytes = 0usize;
    loop {
        let wait = match deadline {
            None => POLL_WAIT_S,
            Some(d) => {
                let left = d.saturating_duration_since(tokio::time::Instant::now());
                // Whole seconds only; under half a second left, a last look without waiting.
                (left.as_millis() as u64 + 500) / 1000
            }
        };
        let got = registry
            .call(
                &ctx,
                "sqs",
                "ReceiveMessage",
                json!({
                    "QueueUrl": url,
                    "MaxNumberOfMessages": (want - out.len()).min(10),
                    "WaitTimeSeconds": wait,
                    "AttributeNames": ["All"],
                    "MessageAttributeNames": ["All"],
                }),
            )
            .await;
        let msgs = match got {
            Ok(o) => o.body["Messages"].as_array().cloned().unwrap_or_default(),
            // The messages already taken still make a batch.
            Err(e) if !out.is_empty() => {
                tracing::warn!(mapping = %m.uuid, "receiving: {}", e.message);
                break;
            }
            Err(e) => return Err(e),
        };
        for msg in msgs {
            bytes += msg["Body"].as_str().map_or(0, str::len) + 512;
            out.push(msg);
        }
        if out.is_empty() {
            return Ok(out);
        }
        let until = *deadline.get_or_insert_with(|| tokio::time::Instant::now() + window);
        if out.len() >= want || bytes >= MAX_BATCH_BYTES || tokio::time::Instant::now() >= until {
            break;
        }
    }
    Ok(out)
}

/// Makes the messages visible again at once.
async fn give_back(l: &Lambda, m: &Mapping, messages: &[Value]) {
    let (Some(registry), Some((ctx, url))) = (l.registry.get(), sqs_ctx(m)) else {
        return;
    };
    for chunk in messages.chunks(10) {
        let entries: Vec<Value> = chunk
            .iter()
            .enumerate()
            .map(|(i, msg)| {
                json!({"Id": i.to_string(), "ReceiptHandle": msg["ReceiptHandle"], "VisibilityTimeout": 0})
            })
            .collect();
        let _ = registry
            .call(
                &ctx,
                "sqs",
                "ChangeMessageVisibilityBatch",
                json!({"QueueUrl": url, "Entries": entries}),
            )
            .await;
    }
}

/// Deletes the messages with these receipt handles.
async fn delete_messages(l: &Lambda, m: &Mapping, handles: &[&Value]) {
    let (Some(registry), Some((ctx, url))) = (l.registry.get(), sqs_ctx(m)) else {
        return;
    };
    for chunk in handles.chunks(10) {
        let entries: Vec<Value> = chunk
            .iter()
            .enumerate()
            .map(|(i, h)| json!({"Id": i.to_string(), "ReceiptHandle": h}))
            .collect();
        if let Err(e) = registry
            .call(
                &ctx,
                "sqs",
                "DeleteMessageBatch",
                json!({"QueueUrl": url, "Entries": entries}),
            )
            .await
        {
            tracing::warn!(mapping = %m.uuid, "deleting processed messages: {}", e.message);
        }
    }
}

/// Filters the batch, invokes the function with what passes and deletes what was handled.
async fn process(l: &Arc<Lambda>, m: &Mapping, messages: Vec<Value>) {
    let (queue_region, _, _) = parse_queue_arn(&m.source_arn).unwrap_or_default();
    let filters = compile(&m.filters);
    let mut records = Vec::new();
    let mut dropped = Vec::new();
    for msg in &messages {
        let r = record(msg, &m.source_arn, queue_region);
        if passes(&filters, &r) {
            records.push(r);
        } else {
            dropped.push(&msg["ReceiptHandle"]);
        }
    }
    if !dropped.is_empty() {
        delete_messages(l, m, &dropped).await;
    }
    if records.is_empty() {
        return;
    }
    let payload = json!({ "Records": records }).to_string();
    let ctx = RequestContext::internal(&m.account, &m.region, &l.config.endpoint);
    let input = json!({
        "FunctionName": m.function_arn(),
        "InvocationType": "RequestResponse",
        "Payload": B64.encode(payload.as_bytes()),
    });
    let ids: HashSet<&str> = records
        .iter()
        .filter_map(|r| r["messageId"].as_str())
        .collect();
    let failed: Option<HashSet<String>> = match crate::invoke::invoke(l, &ctx, &input).await {
        Err(e) => {
            tracing::warn!(mapping = %m.uuid, "invoking {}: {}: {}", m.function_name, e.code, e.message);
            None
        }
        Ok(out) if out.body.get("FunctionError").is_some() => None,
        Ok(out) if m.report_failures() => {
            let body = out.body["Payload"]
                .as_str()
                .and_then(|b| B64.decode(b).ok())
                .unwrap_or_default();
            batch_item_failures(&body, &ids)
        }
        Ok(_) => Some(HashSet::new()),
    };
    let Some(failed) = failed else {
        // The whole batch failed: it comes back after the visibility timeout.
        return;
    };
    let done: Vec<&Value> = records
        .iter()
        .filter(|r| !failed.contains(r["messageId"].as_str().unwrap_or_default()))
        .map(|r| &r["receiptHandle"])
        .collect();
    delete_messages(l, m, &done).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> Value {
        json!({
            "MessageId": "m-1",
            "ReceiptHandle": "rh-1",
            "MD5OfBody": "abc",
            "Body": "{\"kind\": \"order\", \"n\": 5}",
            "Attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1545082649183",
                           "SenderId": "AIDA", "ApproximateFirstReceiveTimestamp": "1545082649185"},
            "MD5OfMessageAttributes": "def",
            "MessageAttributes": {
                "color": {"DataType": "String", "StringValue": "red"},
                "blob": {"DataType": "Binary", "BinaryValue": "AAE="}
            }
        })
    }

    #[test]
    fn a_record_has_the_shape_lambda_sends() {
        let r = record(
            &message(),
            "arn:aws:sqs:us-east-1:000000000000:q",
            "us-east-1",
        );
        assert_eq!(
            r,
            json!({
                "messageId": "m-1",
                "receiptHandle": "rh-1",
                "body": "{\"kind\": \"order\", \"n\": 5}",
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1545082649183",
                               "SenderId": "AIDA", "ApproximateFirstReceiveTimestamp": "1545082649185"},
                "messageAttributes": {
                    "color": {"stringValue": "red", "stringListValues": [], "binaryListValues": [], "dataType": "String"},
                    "blob": {"binaryValue": "AAE=", "stringListValues": [], "binaryListValues": [], "dataType": "Binary"}
                },
                "md5OfBody": "abc",
                "md5OfMessageAttributes": "def",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:q",
                "awsRegion": "us-east-1"
            })
        );
        let mut bare = message();
        bare.as_object_mut().unwrap().remove("MessageAttributes");
        bare.as_object_mut()
            .unwrap()
            .remove("MD5OfMessageAttributes");
        let r = record(&bare, "arn", "r");
        assert_eq!(r["messageAttributes"], json!({}));
        assert!(r.get("md5OfMessageAttributes").is_none());
    }

    fn filters(patterns: &[&str]) -> Option<Vec<basalt_eventpattern::Pattern>> {
        compile(&Some(patterns.iter().map(|s| s.to_string()).collect()))
    }

    #[test]
    fn filters_match_the_body_parsed_when_it_is_json() {
        let r = record(&message(), "arn", "r");
        assert!(passes(&None, &r));
        assert!(passes(&filters(&[r#"{"body": {"kind": ["order"]}}"#]), &r));
        assert!(passes(
            &filters(&[r#"{"body": {"n": [{"numeric": [">", 3]}]}}"#]),
            &r
        ));
        assert!(!passes(
            &filters(&[r#"{"body": {"kind": ["refund"]}}"#]),
            &r
        ));
        // ORed.
        assert!(passes(
            &filters(&[
                r#"{"body": {"kind": ["refund"]}}"#,
                r#"{"body": {"kind": ["order"]}}"#
            ]),
            &r
        ));
        // Metadata.
        assert!(passes(
            &filters(&[r#"{"attributes": {"SenderId": ["AIDA"]}}"#]),
            &r
        ));
        // A plain-text body matches plain-string patterns only.
        let mut plain = message();
        plain["Body"] = json!("hello");
        let r = record(&plain, "arn", "r");
        assert!(passes(&filters(&[r#"{"body": ["hello"]}"#]), &r));
        assert!(!passes(&filters(&[r#"{"body": {"kind": ["order"]}}"#]), &r));
        // A JSON body does not match a plain-string pattern.
        let r = record(&message(), "arn", "r");
        assert!(!passes(
            &filters(&[r#"{"body": ["{\"kind\": \"order\", \"n\": 5}"]}"#]),
            &r
        ));
    }

    #[test]
    fn filter_criteria_are_checked() {
        assert_eq!(parse_filter_criteria(&json!({})).unwrap(), None);
        assert_eq!(
            parse_filter_criteria(&json!({"Filters": []})).unwrap(),
            None
        );
        assert_eq!(
            parse_filter_criteria(&json!({"Filters": [{"Pattern": "{\"body\": {\"a\": [1]}}"}]}))
                .unwrap(),
            Some(vec!["{\"body\": {\"a\": [1]}}".to_owned()])
        );
        let bad = parse_filter_criteria(&json!({"Filters": [{"Pattern": "{\"body\": 1}"}]}));
        assert_eq!(bad.unwrap_err().code, "InvalidParameterValueException");
        let six: Vec<Value> = (0..6)
            .map(|i| json!({"Pattern": format!("{{\"body\": {{\"a\": [{i}]}}}}")}))
            .collect();
        assert!(parse_filter_criteria(&json!({ "Filters": six })).is_err());
    }

    #[test]
    fn batch_item_failures_as_aws_reads_them() {
        let ids: HashSet<&str> = ["a", "b", "c"].into_iter().collect();
        let set = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect::<HashSet<_>>());
        // Complete successes.
        assert_eq!(batch_item_failures(b"", &ids), set(&[]));
        assert_eq!(batch_item_failures(b"null", &ids), set(&[]));
        assert_eq!(batch_item_failures(b"{}", &ids), set(&[]));
        assert_eq!(
            batch_item_failures(br#"{"batchItemFailures": []}"#, &ids),
            set(&[])
        );
        assert_eq!(
            batch_item_failures(br#"{"batchItemFailures": null}"#, &ids),
            set(&[])
        );
        // Partial.
        assert_eq!(
            batch_item_failures(
                br#"{"batchItemFailures": [{"itemIdentifier": "b"}, {"itemIdentifier": "c"}]}"#,
                &ids
            ),
            set(&["b", "c"])
        );
        // Complete failures.
        assert_eq!(batch_item_failures(b"{not json", &ids), None);
        assert_eq!(
            batch_item_failures(br#"{"batchItemFailures": [{"itemIdentifier": ""}]}"#, &ids),
            None
        );
        assert_eq!(
            batch_item_failures(
                br#"{"batchItemFailures": [{"itemIdentifier": null}]}"#,
                &ids
            ),
            None
        );
        assert_eq!(
            batch_item_failures(br#"{"batchItemFailures": [{"itemId": "a"}]}"#, &ids),
            None
        );
        assert_eq!(
            batch_item_failures(
                br#"{"batchItemFailures": [{"itemIdentifier": "zz"}]}"#,
                &ids
            ),
            None
        );
    }

    fn base() -> Mapping {
        Mapping {
            uuid: "u".into(),
            account: "000000000000".into(),
            region: "us-east-1".into(),
            function_name: "f".into(),
            qualifier: None,
            source_arn: "arn:aws:sqs:us-east-1:000000000000:q".into(),
            batch_size: 10,
            window_s: 0,
            enabled: true,
            last_modified: 0.0,
            response_types: Vec::new(),
            filters: None,
            max_concurrency: None,
            tags: BTreeMap::new(),
            stream: None,
        }
    }

    #[test]
    fn settings_are_checked_as_aws_checks_them() {
        let mut m = base();
        let e = apply_settings(&mut m, &json!({"BatchSize": 100})).unwrap_err();
        assert!(e.message.contains("Maximum batch window"), "{}", e.message);
        let mut m = base();
        apply_settings(
            &mut m,
            &json!({"BatchSize": 100, "MaximumBatchingWindowInSeconds": 2,
                    "FunctionResponseTypes": ["ReportBatchItemFailures"],
                    "ScalingConfig": {"MaximumConcurrency": 3}}),
        )
        .unwrap();
        assert_eq!(
            (m.batch_size, m.window_s, m.max_concurrency),
            (100, 2, Some(3))
        );
        assert!(m.report_failures());
        apply_settings(&mut m, &json!({"ScalingConfig": {}})).unwrap();
        assert_eq!(m.max_concurrency, None);
        for bad in [
            json!({"BatchSize": 0}),
            json!({"BatchSize": 10001, "MaximumBatchingWindowInSeconds": 1}),
            json!({"MaximumBatchingWindowInSeconds": 301}),
            json!({"ScalingConfig": {"MaximumConcurrency": 1}}),
            json!({"FunctionResponseTypes": ["Nope"]}),
            json!({"StartingPosition": "LATEST"}),
        ] {
            let mut m = base();
            assert_eq!(
                apply_settings(&mut m, &bad).unwrap_err().code,
                "InvalidParameterValueException",
                "{bad}"
            );
        }
        let mut fifo = base();
        fifo.source_arn.push_str(".fifo");
        assert!(
            apply_settings(
                &mut fifo,
                &json!({"BatchSize": 20, "MaximumBatchingWindowInSeconds": 1})
            )
            .is_err()
        );
    }

    #[test]
    fn descriptions_and_duplicates() {
        let mut m = base();
        m.qualifier = Some("live".into());
        m.filters = Some(vec!["{}".into()]);
        let d = m.describe("Creating");
        assert_eq!(
            d["FunctionArn"],
            "arn:aws:lambda:us-east-1:000000000000:function:f:live"
        );
        assert_eq!(d["State"], "Creating");
        assert_eq!(d["FilterCriteria"], json!({"Filters": [{"Pattern": "{}"}]}));
        assert_eq!(d["FunctionResponseTypes"], json!([]));
        assert!(d.get("ScalingConfig").is_none());
        let mut other = m.clone();
        other.uuid = "v".into();
        assert_eq!(
            duplicate(&[m.clone()], &other).unwrap_err().code,
            "ResourceConflictException"
        );
        other.qualifier = None;
        assert!(duplicate(&[m], &other).is_ok());
        assert_eq!(
            parse_queue_arn("arn:aws:sqs:eu-west-1:123456789012:q.fifo"),
            Some(("eu-west-1", "123456789012", "q.fifo"))
        );
        assert_eq!(
            parse_queue_arn("arn:aws:kinesis:eu-west-1:1:stream/s"),
            None
        );
    }
}
