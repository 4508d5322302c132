//! Subscription filters: Put/Describe/DeleteSubscriptionFilter, and the delivery of matching
//! events to a Lambda function as AWS delivers them (`{"awslogs": {"data": base64(gzip(json))}}`
//! with `messageType: DATA_MESSAGE`).
//!
//! Matching events are queued as a work item in the same transaction that stores them, and a
//! worker on the store's leases hands each item to Lambda as an asynchronous invocation, so
//! nothing acknowledged is lost and any node delivers.

use crate::model::{self, GROUPS, GroupRec};
use crate::{Logs, invalid, not_found, now_ms, str_of};
use basalt_core::{AwsError, RequestContext};
use basalt_logpattern::FilterPattern;
use basalt_store::WriteOp;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// The lease queue of deliveries.
pub const QUEUE: &str = "logs.subscriptions";
/// A log group takes at most two subscription filters.
const MAX_FILTERS: usize = 2;
const LEASE_MS: i64 = 30_000;
/// A delivery Lambda refuses is tried again this much later.
const RETRY_MS: i64 = 5_000;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct SubFilter {
    pub name: String,
    pub pattern: String,
    pub destination: String,
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub distribution: Option<String>,
    pub created: i64,
}

/// One delivery: the events of one stream that one filter matched.
#[derive(Debug, Serialize, Deserialize)]
struct Delivery {
    account: String,
    region: String,
    destination: String,
    filter: String,
    group: String,
    stream: String,
    /// (id, timestamp, message)
    events: Vec<(String, i64, String)>,
}

fn save_group(
    logs: &Logs,
    scope: &str,
    group: &str,
    rec: &GroupRec,
    raw: Vec<u8>,
) -> Result<(), AwsError> {
    let key = model::group_key(scope, group);
    let value = serde_json::to_vec(rec).map_err(|e| AwsError::internal(e.to_string()))?;
    match logs.state.batch(&[
        WriteOp::Check {
            table: GROUPS.into(),
            key: key.clone(),
            expected: Some(raw),
        },
        WriteOp::Put {
            table: GROUPS.into(),
            key,
            value,
        },
    ]) {
        Ok(()) => Ok(()),
        Err(basalt_store::StoreError::Conflict) => Err(AwsError::new(
            400,
            "OperationAbortedException",
            "Multiple requests to modify the same resource were in conflict. Please retry your request.",
        )),
        Err(e) => Err(e.into()),
    }
}

fn load_group(logs: &Logs, scope: &str, group: &str) -> Result<(GroupRec, Vec<u8>), AwsError> {
    let raw = logs
        .state
        .get(GROUPS, &model::group_key(scope, group))?
        .ok_or_else(|| not_found("The specified log group does not exist."))?;
    let rec = serde_json::from_slice(&raw).map_err(|e| AwsError::internal(e.to_string()))?;
    Ok((rec, raw))
}

pub(crate) async fn put(
    logs: &Logs,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let group = str_of(input, "logGroupName").unwrap_or_default().to_owned();
    let name = str_of(input, "filterName").unwrap_or_default().to_owned();
    let pattern = str_of(input, "filterPattern")
        .unwrap_or_default()
        .to_owned();
    FilterPattern::parse(&pattern).map_err(|e| invalid(e.to_string()))?;
    let destination = str_of(input, "destinationArn")
        .unwrap_or_default()
        .to_owned();
    if !destination.contains(":lambda:") {
        return Err(invalid(format!(
            "Basalt delivers subscription filters to Lambda functions only; {destination} is not one (Kinesis and Firehose are not built yet)."
        )));
    }
    // The function must exist, as CloudWatch Logs checks by sending it a test message.
    let registry = logs
        .registry
        .get()
        .ok_or_else(|| AwsError::internal("Logs started without Lambda"))?;
    if let Err(e) = registry
        .call(
            ctx,
            "lambda",
            "GetFunctionConfiguration",
            json!({"FunctionName": destination}),
        )
        .await
    {
        return Err(invalid(format!(
            "Could not deliver test message to specified destination. Check if the destination is valid. ({})",
            e.message
        )));
    }
    let scope = ctx.scope();
    let (mut rec, raw) = load_group(logs, &scope, &group)?;
    let f = SubFilter {
        name: name.clone(),
        pattern,
        destination,
        role: str_of(input, "roleArn").map(str::to_owned),
        distribution: str_of(input, "distribution").map(str::to_owned),
        created: now_ms(),
    };
    let full = rec.subscriptions.len() >= MAX_FILTERS;
    match rec.subscriptions.iter_mut().find(|s| s.name == name) {
        Some(existing) => *existing = f,
        None if full => {
            return Err(AwsError::new(
                400,
                "LimitExceededException",
                "Resource limit exceeded.",
            ));
        }
        None => rec.subscriptions.push(f),
    }
    save_group(logs, &scope, &group, &rec, raw)?;
    Ok(json!({}))
}

pub(crate) fn describe(
    logs: &Logs,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let group = str_of(input, "logGroupName").unwrap_or_default();
    let prefix = str_of(input, "filterNamePrefix").unwrap_or_default();
    let (rec, _) = load_group(logs, &ctx.scope(), group)?;
    let filters: Vec<Value> = rec
        .subscriptions
        .iter()
        .filter(|s| s.name.starts_with(prefix))
        .map(|s| {
            let mut v = json!({
                "filterName": s.name,
                "logGroupName": group,
                "filterPattern": s.pattern,
                "destinationArn": s.destination,
                "distribution": s.distribution.as_deref().unwrap_or("ByLogStream"),
                "creationTime": s.created,
            });
            if let Some(r) = &s.role {
                v["roleArn"] = json!(r);
            }
            v
        })
        .collect();
    Ok(json!({ "subscriptionFilters": filters }))
}

pub(crate) fn delete(logs: &Logs, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let group = str_of(input, "logGroupName").unwrap_or_default();
    let name = str_of(input, "filterName").unwrap_or_default();
    let scope = ctx.scope();
    let (mut rec, raw) = load_group(logs, &scope, group)?;
    let before = rec.subscriptions.len();
    rec.subscriptions.retain(|s| s.name != name);
    if rec.subscriptions.len() == before {
        return Err(not_found(
            "The specified subscription filter does not exist.",
        ));
    }
    save_group(logs, &scope, group, &rec, raw)?;
    Ok(json!({}))
}

/// The deliveries of newly stored events (`(timestamp, seq, message)` of one stream), as
/// work items to commit with them.
pub(crate) fn deliveries(
    scope: &str,
    group: &str,
    stream: &str,
    filters: &[SubFilter],
    events: &[(i64, u64, &str)],
    due_ms: i64,
) -> Vec<WriteOp> {
    let Some((account, region)) = scope.split_once('/') else {
        return Vec::new();
    };
    let mut ops = Vec::new();
    for f in filters {
        let Ok(pattern) = FilterPattern::parse(&f.pattern) else {
            continue;
        };
        let matched: Vec<(String, i64, String)> = events
            .iter()
            .filter(|(_, _, m)| pattern.matches(m))
            .map(|(t, seq, m)| (model::position(*t, *seq), *t, (*m).to_owned()))
            .collect();
        if matched.is_empty() {
            continue;
        }
        let d = Delivery {
            account: account.to_owned(),
            region: region.to_owned(),
            destination: f.destination.clone(),
            filter: f.name.clone(),
            group: group.to_owned(),
            stream: stream.to_owned(),
            events: matched,
        };
        if let Ok(payload) = serde_json::to_vec(&d) {
            ops.push(WriteOp::Enqueue {
                queue: QUEUE.into(),
                id: basalt_core::ids::request_id(),
                payload,
                due_ms,
            });
        }
    }
    ops
}

/// The Lambda event of a delivery.
fn awslogs_event(d: &Delivery) -> Value {
    use base64::Engine;
    use std::io::Write;
    let doc = json!({
        "messageType": "DATA_MESSAGE",
        "owner": d.account,
        "logGroup": d.group,
        "logStream": d.stream,
        "subscriptionFilters": [d.filter],
        "logEvents": d.events.iter().map(|(id, t, m)| json!({"id": id, "timestamp": t, "message": m})).collect::<Vec<_>>(),
    });
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = gz.write_all(doc.to_string().as_bytes());
    let data = gz.finish().unwrap_or_default();
    json!({"awslogs": {"data": base64::engine::general_purpose::STANDARD.encode(data)}})
}

/// Delivers queued events to their functions, for as long as the service lives.
pub(crate) fn start_worker(logs: Arc<Logs>) {
    basalt_store::Worker {
        state: logs.state.clone(),
        queue: QUEUE,
        lease_ms: LEASE_MS,
        batch: 16,
        idle: Duration::from_secs(1),
        wake: logs.wake.clone(),
    }
    .spawn(move |claimed| {
        let logs = logs.clone();
        async move {
            for claim in claimed {
                deliver(&logs, claim).await;
            }
        }
    });
}

async fn deliver(logs: &Arc<Logs>, claim: basalt_store::Claim) {
    let Ok(d) = serde_json::from_slice::<Delivery>(&claim.payload) else {
        let _ = logs.state.complete(&claim, &[]);
        return;
    };
    let Some(registry) = logs.registry.get() else {
        return;
    };
    let ctx = RequestContext::internal(&d.account, &d.region, "");
    let payload = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(awslogs_event(&d).to_string())
    };
    let sent = registry
        .call(
            &ctx,
            "lambda",
            "Invoke",
            json!({"FunctionName": d.destination, "InvocationType": "Event", "Payload": payload}),
        )
        .await;
    let state = logs.state.clone();
    let _ = tokio::task::spawn_blocking(move || match sent {
        Ok(_) => state.complete(&claim, &[]),
        // A function deleted since: nothing to deliver to.
        Err(e) if e.code == "ResourceNotFoundException" => state.complete(&claim, &[]),
        Err(e) => {
            tracing::warn!("delivering log events to {}: {}", d.destination, e.message);
            let now = state.clock_ms().unwrap_or(0);
            state.release(&claim, now + RETRY_MS)
        }
    })
    .await;
}
