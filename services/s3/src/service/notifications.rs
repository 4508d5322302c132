//! Bucket event notifications: Put/GetBucketNotificationConfiguration, the S3 event message
//! format, and its delivery to SQS queues, Lambda functions and SNS topics.
//!
//! An object change in a bucket with queue/function/topic configurations becomes one work item
//! per matching configuration on the store's leases (queue `s3.notifications`), written in the
//! same transaction as the object's records: nothing acknowledged is lost, and any node's worker
//! delivers it through the in-process registry, retrying with backoff while the destination's
//! service refuses or is not there yet. Buckets with `EventBridgeConfiguration` also publish
//! their object changes on the internal event bus (EventBridge's `aws.s3` events); the others
//! publish nothing there.

use super::*;
use basalt_core::{RequestContext, ServiceRegistry};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

/// The lease queue of deliveries.
pub(crate) const QUEUE: &str = "s3.notifications";
const LEASE_MS: i64 = 30_000;
/// A delivery still refused after this many attempts (about a day of backoff) is dropped.
const MAX_ATTEMPTS: u32 = 300;
const MAX_BACKOFF_MS: i64 = 300_000;

/// The event types S3 accepts in a configuration.
const EVENTS: &[&str] = &[
    "s3:ReducedRedundancyLostObject",
    "s3:ObjectCreated:*",
    "s3:ObjectCreated:Put",
    "s3:ObjectCreated:Post",
    "s3:ObjectCreated:Copy",
    "s3:ObjectCreated:CompleteMultipartUpload",
    "s3:ObjectRemoved:*",
    "s3:ObjectRemoved:Delete",
    "s3:ObjectRemoved:DeleteMarkerCreated",
    "s3:ObjectRestore:*",
    "s3:ObjectRestore:Post",
    "s3:ObjectRestore:Completed",
    "s3:ObjectRestore:Delete",
    "s3:Replication:*",
    "s3:Replication:OperationFailedReplication",
    "s3:Replication:OperationNotTracked",
    "s3:Replication:OperationMissedThreshold",
    "s3:Replication:OperationReplicatedAfterThreshold",
    "s3:LifecycleTransition",
    "s3:IntelligentTiering",
    "s3:ObjectTagging:*",
    "s3:ObjectTagging:Put",
    "s3:ObjectTagging:Delete",
    "s3:ObjectAcl:Put",
    "s3:LifecycleExpiration:*",
    "s3:LifecycleExpiration:Delete",
    "s3:LifecycleExpiration:DeleteMarkerCreated",
];

/// What event notifications share across the service's instances: the registry destinations
/// are reached through, and the worker's wake-up.
pub struct Notifier {
    state: Arc<dyn StateStore>,
    registry: OnceLock<ServiceRegistry>,
    wake: tokio::sync::Notify,
}

impl Notifier {
    pub fn new(state: Arc<dyn StateStore>) -> Notifier {
        Notifier {
            state,
            registry: OnceLock::new(),
            wake: tokio::sync::Notify::new(),
        }
    }

    pub fn set_registry(&self, registry: ServiceRegistry) {
        let _ = self.registry.set(registry);
    }

    /// Delivers queued notifications, for as long as the process lives.
    pub fn start_worker(self: Arc<Self>) {
        tokio::spawn(async move {
            loop {
                let state = self.state.clone();
                let claimed = tokio::task::spawn_blocking(move || {
                    let now = state.clock_ms()?;
                    state.claim(QUEUE, now, LEASE_MS, 16)
                })
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default();
                if claimed.is_empty() {
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                    continue;
                }
                for claim in claimed {
                    self.deliver(claim).await;
                }
            }
        });
    }

    /// Tells the worker that work was queued.
    pub(super) fn poke(&self) {
        self.wake.notify_one();
    }

    async fn deliver(&self, claim: basalt_store::Claim) {
        let state = self.state.clone();
        let Ok(d) = serde_json::from_slice::<Delivery>(&claim.payload) else {
            let _ = tokio::task::spawn_blocking(move || state.complete(&claim, &[])).await;
            return;
        };
        let sent = match self.registry.get() {
            Some(registry) => send(registry, &d).await,
            None => Err(AwsError::new(
                503,
                "NotImplemented",
                "S3 started without a registry",
            )),
        };
        let _ = tokio::task::spawn_blocking(move || match sent {
            Ok(()) => state.complete(&claim, &[]),
            // The destination was deleted since: S3 drops the event.
            Err(e) if destination_gone(&e.code) => {
                tracing::warn!("S3 notification to {} dropped: {}", d.arn, e.message);
                state.complete(&claim, &[])
            }
            Err(e) if claim.attempt >= MAX_ATTEMPTS => {
                tracing::warn!("S3 notification to {} given up: {}", d.arn, e.message);
                state.complete(&claim, &[])
            }
            Err(e) => {
                tracing::debug!("S3 notification to {} refused: {}", d.arn, e.message);
                let now = state.clock_ms().unwrap_or(0);
                state.release(&claim, now + backoff_ms(claim.attempt))
            }
        })
        .await;
    }
}

use basalt_core::AwsError;

fn destination_gone(code: &str) -> bool {
    matches!(
        code,
        "QueueDoesNotExist"
            | "AWS.SimpleQueueService.NonExistentQueue"
            | "ResourceNotFoundException"
            | "NotFound"
            | "NotFoundException"
    )
}

/// 1 s, doubling per attempt, at most 5 minutes.
fn backoff_ms(attempt: u32) -> i64 {
    (1000i64 << attempt.saturating_sub(1).min(20)).min(MAX_BACKOFF_MS)
}

/// One message to one destination.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(super) struct Delivery {
    /// `sqs`, `lambda` or `sns`.
    pub service: String,
    pub arn: String,
    pub body: String,
}

/// `(region, account, resource)` of an ARN of `service`.
fn arn_parts<'a>(arn: &'a str, service: &str) -> Option<(&'a str, &'a str, &'a str)> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", _, s, region, account, resource]
            if *s == service
                && !region.is_empty()
                && !account.is_empty()
                && !resource.is_empty() =>
        {
            Some((region, account, resource))
        }
        _ => None,
    }
}

async fn send(registry: &ServiceRegistry, d: &Delivery) -> Result<(), AwsError> {
    let Some((region, account, resource)) = arn_parts(&d.arn, &d.service) else {
        return Err(AwsError::new(400, "NotFound", "malformed destination ARN"));
    };
    let ctx = RequestContext::internal(account, region, "");
    let (op, input) = match d.service.as_str() {
        "sqs" => (
            "SendMessage",
            json!({"QueueUrl": format!("internal/{account}/{resource}"), "MessageBody": d.body}),
        ),
        "lambda" => (
            "Invoke",
            json!({
                "FunctionName": d.arn,
                "InvocationType": "Event",
                "Payload": base64::engine::general_purpose::STANDARD.encode(&d.body),
            }),
        ),
        "sns" => (
            "Publish",
            json!({"TopicArn": d.arn, "Subject": "Amazon S3 Notification", "Message": d.body}),
        ),
        _ => {
            return Err(AwsError::new(
                400,
                "NotFound",
                "unknown destination service",
            ));
        }
    };
    registry.call(&ctx, &d.service, op, input).await.map(|_| ())
}

/// Whether a configured event type (`s3:ObjectCreated:*`) covers an event (`ObjectCreated:Put`).
pub(super) fn event_matches(configured: &str, event: &str) -> bool {
    let Some(configured) = configured.strip_prefix("s3:") else {
        return false;
    };
    configured == event
        || configured
            .strip_suffix('*')
            .is_some_and(|family| family.ends_with(':') && event.starts_with(family))
}

/// Whether two configured event types share an event.
fn events_overlap(a: &str, b: &str) -> bool {
    let family = |e: &str| e.strip_suffix(":*").map(|f| format!("{f}:"));
    a == b
        || family(a).is_some_and(|f| b.starts_with(&f))
        || family(b).is_some_and(|f| a.starts_with(&f))
}

fn rule<'a>(t: &'a NotifyTarget, name: &str) -> &'a str {
    t.rules
        .iter()
        .find(|(n, _)| n == name)
        .map_or("", |(_, v)| v.as_str())
}

/// Whether a configuration's key filter passes `key`.
pub(super) fn filter_matches(t: &NotifyTarget, key: &str) -> bool {
    key.starts_with(rule(t, "prefix")) && key.ends_with(rule(t, "suffix"))
}

/// Whether a configuration wants `event` (`ObjectCreated:Put`) on `key`.
pub(super) fn wants(t: &NotifyTarget, event: &str, key: &str) -> bool {
    t.events.iter().any(|c| event_matches(c, event)) && filter_matches(t, key)
}

/// An object key as event records carry it: URL-encoded as a form value (a space is `+`),
/// `/` kept.
pub(super) fn event_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for &b in key.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn iso_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

fn invalid(message: impl Into<String>) -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidArgument, message.into())
}

/// InvalidArgument with S3's `ArgumentName` and `ArgumentValue` members.
fn invalid_arg(message: &str, name: &str, value: &str) -> S3Error {
    let mut e = invalid(message);
    let mut h = HeaderMap::new();
    if let (Ok(n), Ok(v)) = (
        http::HeaderValue::from_str(name),
        http::HeaderValue::from_str(value),
    ) {
        h.insert(crate::ARGUMENT_NAME, n);
        h.insert(crate::ARGUMENT_VALUE, v);
    }
    e.set_headers(h);
    e
}

/// A generated configuration id, shaped like S3's (base64 of a UUID's text).
fn new_id() -> String {
    base64::engine::general_purpose::STANDARD.encode(uuid::Uuid::new_v4().to_string())
}

/// Checks one configuration's events and filter; returns the stored form.
fn target(
    id: Option<&String>,
    arn: &str,
    events: &[Event],
    filter: Option<&NotificationConfigurationFilter>,
) -> S3Result<NotifyTarget> {
    if events.is_empty() {
        return Err(invalid("The event is not supported for notifications"));
    }
    let mut evs = Vec::with_capacity(events.len());
    for e in events {
        let e: &str = e.as_ref();
        if !EVENTS.contains(&e) {
            return Err(invalid_arg(
                "The event is not supported for notifications",
                "Event",
                e,
            ));
        }
        if !evs.iter().any(|x: &String| x == e) {
            evs.push(e.to_owned());
        }
    }
    let mut rules: Vec<(String, String)> = Vec::new();
    let given = filter
        .and_then(|f| f.key.as_ref())
        .and_then(|k| k.filter_rules.as_ref());
    for r in given.into_iter().flatten() {
        let name = r
            .name
            .as_ref()
            .map(|n| n.as_str().to_owned())
            .unwrap_or_default();
        let value = r.value.clone().unwrap_or_default();
        let name = match name.to_ascii_lowercase().as_str() {
            "prefix" => "prefix",
            "suffix" => "suffix",
            _ => {
                return Err(invalid_arg(
                    "filter rule name must be either prefix or suffix",
                    "FilterRule.Name",
                    &name,
                ));
            }
        };
        if rules.iter().any(|(n, _)| n == name) {
            return Err(invalid_arg(
                &format!(
                    "Cannot specify more than one {} rule in a filter.",
                    name.to_ascii_lowercase()
                ),
                "FilterRule.Name",
                name,
            ));
        }
        if value.len() > 1024 {
            return Err(invalid(
                "The filter rule value cannot be longer than 1024 characters",
            ));
        }
        rules.push((name.to_owned(), value));
    }
    Ok(NotifyTarget {
        id: id.filter(|i| !i.is_empty()).cloned().unwrap_or_else(new_id),
        arn: arn.to_owned(),
        events: evs,
        rules,
    })
}

/// S3 refuses two configurations that could both fire for one event on one key.
fn check_overlaps(n: &Notifications) -> S3Result<()> {
    let all: Vec<&NotifyTarget> = n.queues.iter().chain(&n.lambdas).chain(&n.topics).collect();
    for (i, a) in all.iter().enumerate() {
        for b in &all[i + 1..] {
            let shared = a
                .events
                .iter()
                .any(|x| b.events.iter().any(|y| events_overlap(x, y)));
            if !shared {
                continue;
            }
            let (pa, pb) = (rule(a, "prefix"), rule(b, "prefix"));
            let (sa, sb) = (rule(a, "suffix"), rule(b, "suffix"));
            let prefixes = pa.starts_with(pb) || pb.starts_with(pa);
            let suffixes = sa.ends_with(sb) || sb.ends_with(sa);
            if !(prefixes && suffixes) {
                continue;
            }
            return Err(if a.rules.is_empty() && b.rules.is_empty() {
                invalid(
                    "Configurations overlap. Configurations on the same bucket cannot share a common event type.",
                )
            } else {
                invalid(
                    "Configuration is ambiguously defined. Cannot have overlapping suffixes in two rules if the prefixes are overlapping for the same event type.",
                )
            });
        }
    }
    Ok(())
}

/// The stored form of a request's configuration, checked as S3 checks it (destinations apart).
pub(super) fn parse_config(c: &NotificationConfiguration) -> S3Result<Notifications> {
    let mut n = Notifications {
        eventbridge: c.event_bridge_configuration.is_some(),
        ..Default::default()
    };
    let malformed = |arn: &str, service: &str| {
        if arn_parts(arn, service).is_none() {
            return Err(invalid("The ARN is not well formed"));
        }
        Ok(())
    };
    for q in c.queue_configurations.iter().flatten() {
        malformed(&q.queue_arn, "sqs")?;
        n.queues.push(target(
            q.id.as_ref(),
            &q.queue_arn,
            &q.events,
            q.filter.as_ref(),
        )?);
    }
    for l in c.lambda_function_configurations.iter().flatten() {
        malformed(&l.lambda_function_arn, "lambda")?;
        n.lambdas.push(target(
            l.id.as_ref(),
            &l.lambda_function_arn,
            &l.events,
            l.filter.as_ref(),
        )?);
    }
    for t in c.topic_configurations.iter().flatten() {
        malformed(&t.topic_arn, "sns")?;
        n.topics.push(target(
            t.id.as_ref(),
            &t.topic_arn,
            &t.events,
            t.filter.as_ref(),
        )?);
    }
    check_overlaps(&n)?;
    Ok(n)
}

fn filter_out(t: &NotifyTarget) -> Option<NotificationConfigurationFilter> {
    (!t.rules.is_empty()).then(|| NotificationConfigurationFilter {
        key: Some(S3KeyFilter {
            filter_rules: Some(
                t.rules
                    .iter()
                    .map(|(n, v)| FilterRule {
                        name: Some(FilterRuleName::from(n.clone())),
                        value: Some(v.clone()),
                    })
                    .collect(),
            ),
        }),
    })
}

fn events_out(t: &NotifyTarget) -> EventList {
    t.events.iter().cloned().map(Event::from).collect()
}

/// Asks the destination's service whether it exists; `Ok(())` also when the service is not
/// served here (the deliveries wait for it).
async fn check_destination(registry: &ServiceRegistry, service: &str, arn: &str) -> S3Result<()> {
    let Some((region, account, resource)) = arn_parts(arn, service) else {
        return Err(invalid("The ARN is not well formed"));
    };
    if registry.get(service).is_none() {
        return Ok(());
    }
    let ctx = RequestContext::internal(account, region, "");
    let (op, input, what) = match service {
        "sqs" => (
            "GetQueueUrl",
            json!({"QueueName": resource, "QueueOwnerAWSAccountId": account}),
            "The destination queue does not exist",
        ),
        "lambda" => (
            "GetFunctionConfiguration",
            json!({"FunctionName": arn}),
            "The destination Lambda does not exist",
        ),
        _ => (
            "GetTopicAttributes",
            json!({"TopicArn": arn}),
            "The destination topic does not exist",
        ),
    };
    match registry.call(&ctx, service, op, input).await {
        Ok(_) => Ok(()),
        Err(e) if e.code == "NotImplemented" => Ok(()),
        Err(e) if e.status >= 500 => Err(internal(e.message)),
        Err(_) => Err(invalid_arg(
            "Unable to validate the following destination configurations",
            arn,
            what,
        )),
    }
}

/// Who made a request, for the records of the events it causes.
#[derive(Debug, Clone)]
pub(super) struct Origin {
    pub request_id: String,
    pub host_id: String,
    pub source_ip: String,
}

impl Origin {
    pub(super) fn of<T>(req: &S3Request<T>) -> Origin {
        let (request_id, host_id) = match req.extensions.get::<crate::RequestIds>() {
            Some(ids) => (ids.request_id.clone(), ids.host_id.clone()),
            None => (request_id(), basalt_core::ids::host_id()),
        };
        let peer = req
            .extensions
            .get::<basalt_core::context::PeerAddr>()
            .map(|p| p.0);
        let source_ip = crate::access::source_ip(peer, &req.headers);
        Origin {
            request_id,
            host_id,
            source_ip,
        }
    }
}

/// An object change to announce: the S3 event name (`ObjectCreated:Put`), the EventBridge
/// `reason`, and who caused it.
pub(super) struct Notice<'a> {
    pub event: &'static str,
    pub reason: &'static str,
    pub origin: &'a Origin,
}

/// What an object change produces: work items to commit with it, and the EventBridge event to
/// publish once it is committed.
#[derive(Default)]
pub(super) struct Announcement {
    pub ops: Vec<WriteOp>,
    pub bus: Option<basalt_core::events::BusEvent>,
}

impl BasaltS3 {
    /// The principal id S3 shows for this account (`userIdentity`, `ownerIdentity`).
    fn principal_id(&self) -> String {
        format!("A{}", self.owner_id[..13].to_ascii_uppercase())
    }

    /// The notifications of an object change in a bucket configured with `n`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn announce(
        &self,
        sc: &Scope,
        bucket: &str,
        bucket_region: &str,
        n: &Notifications,
        key: &str,
        change: &Change<'_>,
        notice: &Notice<'_>,
    ) -> Announcement {
        let mut out = Announcement::default();
        if n.is_empty() {
            return out;
        }
        let (sequencer, now) = self.sequencer();
        if n.eventbridge {
            // Stored with the object's own writes, so the acknowledged change's event reaches
            // EventBridge across a crash; the bus only wakes EventBridge's worker.
            let ev = self.bus_event(sc, bucket, key, change, notice, &sequencer);
            out.ops.push(WriteOp::Enqueue {
                queue: basalt_core::events::SERVICE_EVENTS_QUEUE.into(),
                id: ev
                    .0
                    .get("id")
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_owned(),
                payload: ev.0.to_string().into_bytes(),
                due_ms: now_ms(),
            });
            out.bus = Some(ev);
        }
        let targets = [
            ("sqs", &n.queues),
            ("lambda", &n.lambdas),
            ("sns", &n.topics),
        ];
        for (service, list) in targets {
            for t in list.iter().filter(|t| wants(t, notice.event, key)) {
                let body = self.record(
                    bucket,
                    bucket_region,
                    key,
                    change,
                    notice,
                    &t.id,
                    &sequencer,
                    now,
                );
                out.ops
                    .push(enqueue(service, &t.arn, body.to_string(), now, &sequencer));
            }
        }
        out
    }

    /// Wakes the consumers of what an announcement stored: EventBridge (through the bus) and
    /// the delivery worker.
    pub(super) fn announced(&self, a: Announcement) {
        let direct = a.ops.len() > usize::from(a.bus.is_some());
        if let Some(ev) = a.bus {
            self.bus.publish(ev);
        }
        if direct {
            self.notifier.poke();
        }
    }

    /// One S3 event message (`{"Records": [...]}`).
    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        bucket: &str,
        bucket_region: &str,
        key: &str,
        change: &Change<'_>,
        notice: &Notice<'_>,
        config_id: &str,
        sequencer: &str,
        now: i64,
    ) -> serde_json::Value {
        let mut object = json!({ "key": event_key(key) });
        let version = match change {
            Change::Created {
                size,
                etag,
                version,
            } => {
                object["size"] = json!(size);
                object["eTag"] = json!(etag);
                *version
            }
            Change::Deleted { version } => *version,
            Change::DeleteMarker { version } => Some(*version),
        };
        if let Some(v) = version {
            object["versionId"] = json!(v);
        }
        object["sequencer"] = json!(sequencer);
        let principal = self.principal_id();
        json!({"Records": [{
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": bucket_region,
            "eventTime": iso_ms(now),
            "eventName": notice.event,
            "userIdentity": {"principalId": format!("AWS:{principal}")},
            "requestParameters": {"sourceIPAddress": notice.origin.source_ip},
            "responseElements": {
                "x-amz-request-id": notice.origin.request_id,
                "x-amz-id-2": notice.origin.host_id,
            },
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": config_id,
                "bucket": {
                    "name": bucket,
                    "ownerIdentity": {"principalId": principal},
                    "arn": format!("arn:aws:s3:::{bucket}"),
                },
                "object": object,
            },
        }]})
    }

    /// The EventBridge event of an object change (`Object Created` / `Object Deleted`).
    fn bus_event(
        &self,
        sc: &Scope,
        bucket: &str,
        key: &str,
        change: &Change<'_>,
        notice: &Notice<'_>,
        sequencer: &str,
    ) -> basalt_core::events::BusEvent {
        let mut object = json!({ "key": key });
        let (created, version, deletion) = match change {
            Change::Created {
                size,
                etag,
                version,
            } => {
                object["size"] = json!(size);
                object["etag"] = json!(etag);
                (true, *version, None)
            }
            Change::Deleted { version } => (false, *version, Some("Permanently Deleted")),
            Change::DeleteMarker { version } => {
                (false, Some(*version), Some("Delete Marker Created"))
            }
        };
        if let Some(v) = version {
            object["version-id"] = json!(v);
        }
        object["sequencer"] = json!(sequencer);
        let mut detail = json!({
            "version": "0",
            "bucket": { "name": bucket },
            "object": object,
            "request-id": notice.origin.request_id,
            "requester": sc.account,
            "source-ip-address": notice.origin.source_ip,
            "reason": notice.reason,
        });
        if let Some(d) = deletion {
            detail["deletion-type"] = json!(d);
        }
        let dt = if created {
            "Object Created"
        } else {
            "Object Deleted"
        };
        envelope(
            "aws.s3",
            dt,
            &sc.account,
            &sc.region,
            vec![format!("arn:aws:s3:::{bucket}")],
            detail,
        )
    }

    pub(super) async fn put_notifications(
        &self,
        req: S3Request<PutBucketNotificationConfigurationInput>,
    ) -> S3Result<S3Response<PutBucketNotificationConfigurationOutput>> {
        let sc = self.scope(&req);
        let origin = Origin::of(&req);
        let bucket = req.input.bucket.clone();
        self.bucket(&sc, &bucket)?;
        let n = parse_config(&req.input.notification_configuration)?;
        let skip = req.input.skip_destination_validation.unwrap_or(false);
        if !skip && let Some(registry) = self.notifier.registry.get() {
            let targets = [
                ("sqs", &n.queues),
                ("lambda", &n.lambdas),
                ("sns", &n.topics),
            ];
            for (service, list) in targets {
                for t in list.iter() {
                    check_destination(registry, service, &t.arn).await?;
                }
            }
        }
        // S3 sends each queue and topic a test message when it is configured.
        let now = now_ms();
        let test = json!({
            "Service": "Amazon S3",
            "Event": "s3:TestEvent",
            "Time": iso_ms(now),
            "Bucket": bucket,
            "RequestId": origin.request_id,
            "HostId": origin.host_id,
        })
        .to_string();
        let mut tests: Vec<WriteOp> = Vec::new();
        let mut seen: Vec<&str> = Vec::new();
        for (service, list) in [("sqs", &n.queues), ("sns", &n.topics)] {
            for t in list.iter() {
                if !seen.contains(&t.arn.as_str()) {
                    seen.push(&t.arn);
                    tests.push(enqueue(
                        service,
                        &t.arn,
                        test.clone(),
                        now,
                        &self.sequencer().0,
                    ));
                }
            }
        }
        let has_tests = !tests.is_empty();
        for _ in 0..16 {
            let snap = self.bucket_snapshot(&sc, &bucket)?;
            let mut b: BucketMeta = serde_json::from_slice(&snap.raw).map_err(internal)?;
            b.notifications = n.clone();
            let mut ops = vec![
                snap.check(),
                WriteOp::Put {
                    table: T_BUCKETS.into(),
                    key: snap.key.clone(),
                    value: serde_json::to_vec(&b).map_err(internal)?,
                },
            ];
            ops.extend(tests.iter().cloned());
            if self.write_if(ops).await? {
                if has_tests {
                    self.notifier.poke();
                }
                return Ok(S3Response::new(PutBucketNotificationConfigurationOutput {}));
            }
        }
        Err(s3_error!(SlowDown, "Please reduce your request rate."))
    }

    pub(super) async fn get_notifications(
        &self,
        req: S3Request<GetBucketNotificationConfigurationInput>,
    ) -> S3Result<S3Response<GetBucketNotificationConfigurationOutput>> {
        let sc = self.scope(&req);
        let n = self.bucket(&sc, &req.input.bucket)?.notifications;
        fn some<T>(v: Vec<T>) -> Option<Vec<T>> {
            (!v.is_empty()).then_some(v)
        }
        Ok(S3Response::new(GetBucketNotificationConfigurationOutput {
            event_bridge_configuration: n.eventbridge.then_some(EventBridgeConfiguration {}),
            queue_configurations: some(
                n.queues
                    .iter()
                    .map(|t| QueueConfiguration {
                        events: events_out(t),
                        filter: filter_out(t),
                        id: Some(t.id.clone()),
                        queue_arn: t.arn.clone(),
                    })
                    .collect(),
            ),
            lambda_function_configurations: some(
                n.lambdas
                    .iter()
                    .map(|t| LambdaFunctionConfiguration {
                        events: events_out(t),
                        filter: filter_out(t),
                        id: Some(t.id.clone()),
                        lambda_function_arn: t.arn.clone(),
                    })
                    .collect(),
            ),
            topic_configurations: some(
                n.topics
                    .iter()
                    .map(|t| TopicConfiguration {
                        events: events_out(t),
                        filter: filter_out(t),
                        id: Some(t.id.clone()),
                        topic_arn: t.arn.clone(),
                    })
                    .collect(),
            ),
        }))
    }
}

/// Items due in the same millisecond are claimed by id: leading with the sequencer keeps the
/// deliveries in the order of the changes.
fn enqueue(service: &str, arn: &str, body: String, due_ms: i64, sequencer: &str) -> WriteOp {
    let d = Delivery {
        service: service.to_owned(),
        arn: arn.to_owned(),
        body,
    };
    WriteOp::Enqueue {
        queue: QUEUE.into(),
        id: format!("{sequencer}-{}", uuid::Uuid::new_v4().simple()),
        payload: serde_json::to_vec(&d).unwrap_or_default(),
        due_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(events: &[&str], rules: &[(&str, &str)]) -> NotifyTarget {
        NotifyTarget {
            id: "x".into(),
            arn: "arn:aws:sqs:us-east-1:000000000000:q".into(),
            events: events.iter().map(|e| e.to_string()).collect(),
            rules: rules
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn event_names() {
        assert!(event_matches("s3:ObjectCreated:*", "ObjectCreated:Put"));
        assert!(event_matches(
            "s3:ObjectCreated:*",
            "ObjectCreated:CompleteMultipartUpload"
        ));
        assert!(event_matches("s3:ObjectCreated:Put", "ObjectCreated:Put"));
        assert!(!event_matches("s3:ObjectCreated:Put", "ObjectCreated:Copy"));
        assert!(!event_matches("s3:ObjectCreated:*", "ObjectRemoved:Delete"));
        assert!(event_matches(
            "s3:ObjectRemoved:*",
            "ObjectRemoved:DeleteMarkerCreated"
        ));
        assert!(!event_matches(
            "s3:ObjectRemoved:Delete",
            "ObjectRemoved:DeleteMarkerCreated"
        ));
        assert!(!event_matches("ObjectCreated:Put", "ObjectCreated:Put"));
        assert!(events_overlap("s3:ObjectCreated:*", "s3:ObjectCreated:Put"));
        assert!(events_overlap("s3:ObjectCreated:Put", "s3:ObjectCreated:*"));
        assert!(!events_overlap(
            "s3:ObjectCreated:Put",
            "s3:ObjectCreated:Copy"
        ));
        assert!(!events_overlap("s3:ObjectCreated:*", "s3:ObjectRemoved:*"));
        for e in EVENTS {
            assert!(e.starts_with("s3:"));
        }
    }

    #[test]
    fn filters() {
        let f = t(
            &["s3:ObjectCreated:*"],
            &[("prefix", "images/"), ("suffix", ".jpg")],
        );
        assert!(filter_matches(&f, "images/a.jpg"));
        assert!(!filter_matches(&f, "images/a.png"));
        assert!(!filter_matches(&f, "docs/a.jpg"));
        assert!(filter_matches(&t(&[], &[]), "anything"));
        assert!(wants(&f, "ObjectCreated:Put", "images/x.jpg"));
        assert!(!wants(&f, "ObjectRemoved:Delete", "images/x.jpg"));
    }

    #[test]
    fn key_encoding() {
        assert_eq!(event_key("a b/c+d.jpg"), "a+b/c%2Bd.jpg");
        assert_eq!(event_key("x=1&y(2)é"), "x%3D1%26y%282%29%C3%A9");
        assert_eq!(event_key("plain/key-1_~.txt"), "plain/key-1_~.txt");
    }

    #[test]
    fn overlaps() {
        let mut n = Notifications::default();
        n.queues
            .push(t(&["s3:ObjectCreated:*"], &[("prefix", "a/")]));
        n.lambdas
            .push(t(&["s3:ObjectCreated:Put"], &[("prefix", "b/")]));
        assert!(check_overlaps(&n).is_ok());
        n.topics
            .push(t(&["s3:ObjectCreated:Put"], &[("prefix", "a/b")]));
        let e = check_overlaps(&n).unwrap_err();
        assert!(
            e.message()
                .unwrap()
                .starts_with("Configuration is ambiguously defined")
        );
        // Same prefix, different suffixes: fine.
        let mut n = Notifications::default();
        n.queues
            .push(t(&["s3:ObjectCreated:*"], &[("suffix", ".jpg")]));
        n.queues
            .push(t(&["s3:ObjectCreated:*"], &[("suffix", ".png")]));
        assert!(check_overlaps(&n).is_ok());
        n.queues.push(t(&["s3:ObjectRemoved:*"], &[]));
        n.queues.push(t(&["s3:ObjectRemoved:Delete"], &[]));
        let e = check_overlaps(&n).unwrap_err();
        assert!(e.message().unwrap().starts_with("Configurations overlap"));
    }

    #[test]
    fn parse_and_validate() {
        let q = |events: Vec<&str>, rules: Vec<(&str, &str)>| QueueConfiguration {
            events: events
                .into_iter()
                .map(|e| Event::from(e.to_owned()))
                .collect(),
            filter: Some(NotificationConfigurationFilter {
                key: Some(S3KeyFilter {
                    filter_rules: Some(
                        rules
                            .into_iter()
                            .map(|(n, v)| FilterRule {
                                name: Some(FilterRuleName::from(n.to_owned())),
                                value: Some(v.to_owned()),
                            })
                            .collect(),
                    ),
                }),
            }),
            id: None,
            queue_arn: "arn:aws:sqs:us-east-1:000000000000:q".into(),
        };
        let cfg = |qs: Vec<QueueConfiguration>| NotificationConfiguration {
            queue_configurations: Some(qs),
            ..Default::default()
        };
        let n = parse_config(&cfg(vec![q(
            vec!["s3:ObjectCreated:*"],
            vec![("prefix", "a/")],
        )]))
        .unwrap();
        assert_eq!(
            n.queues[0].rules,
            vec![("prefix".to_owned(), "a/".to_owned())]
        );
        assert_eq!(n.queues[0].id.len(), 48);
        assert!(!n.eventbridge);
        let err = |c| parse_config(&c).unwrap_err().message().unwrap().to_owned();
        assert_eq!(
            err(cfg(vec![q(vec!["s3:Nope"], vec![])])),
            "The event is not supported for notifications"
        );
        assert_eq!(
            err(cfg(vec![q(
                vec!["s3:ObjectCreated:*"],
                vec![("middle", "x")]
            )])),
            "filter rule name must be either prefix or suffix"
        );
        assert_eq!(
            err(cfg(vec![q(
                vec!["s3:ObjectCreated:*"],
                vec![("prefix", "x"), ("Prefix", "y")]
            )])),
            "Cannot specify more than one prefix rule in a filter."
        );
        let mut bad = q(vec!["s3:ObjectCreated:*"], vec![]);
        bad.queue_arn = "arn:aws:sns:us-east-1:000000000000:t".into();
        assert_eq!(err(cfg(vec![bad])), "The ARN is not well formed");
    }

    #[test]
    fn backoff() {
        assert_eq!(backoff_ms(1), 1000);
        assert_eq!(backoff_ms(2), 2000);
        assert_eq!(backoff_ms(100), MAX_BACKOFF_MS);
    }
}
