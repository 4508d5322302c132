//! The invocation worker: claims invocations from the store's leases, calls each target
//! through the in-process registry, retries failures with exponential backoff within the
//! target's RetryPolicy, and sends what still fails to the target's dead-letter queue.

use crate::model::Invocation;
use crate::targets::{Context, render, request, route};
use crate::{Scheduler, now_ms, str_of};
use basalt_core::{AwsError, RequestContext};
use basalt_store::Claim;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// The lease queue of invocations.
pub const QUEUE: &str = "scheduler.invocations";
const BATCH: usize = 32;
const DEFAULT_ATTEMPTS: i64 = 185;
const DEFAULT_AGE_S: i64 = 86_400;

pub(crate) fn start_worker(s: Arc<Scheduler>) {
    basalt_store::Worker {
        state: s.state.clone(),
        queue: QUEUE,
        lease_ms: s.config.lease_ms,
        batch: BATCH,
        idle: Duration::from_millis(250),
        wake: s.wake_invocations.clone(),
    }
    .spawn(move |claimed| {
        let s = s.clone();
        async move {
            let calls = claimed.into_iter().map(|c| deliver(&s, c));
            futures::future::join_all(calls).await;
        }
    });
}

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

async fn deliver(s: &Arc<Scheduler>, claim: Claim) {
    let Ok(inv) = serde_json::from_slice::<Invocation>(&claim.payload) else {
        tracing::error!(id = %claim.id, "dropping an unreadable invocation");
        let _ = s.state.complete(&claim, &[]);
        return;
    };
    let scheduled = iso(inv.scheduled_ms);
    let context = Context {
        schedule_arn: &inv.schedule_arn,
        scheduled_time: &scheduled,
        execution_id: &inv.execution_id,
        attempt: claim.attempt,
    };
    let body = render(&inv.target, &context);
    let result = match call(s, &inv, &body, &context).await {
        Ok(()) => s.state.complete(&claim, &[]),
        Err(err) => {
            let policy = inv.target.get("RetryPolicy");
            let max_attempts = policy
                .and_then(|p| p.get("MaximumRetryAttempts"))
                .and_then(Value::as_i64)
                .unwrap_or(DEFAULT_ATTEMPTS);
            let max_age_ms = policy
                .and_then(|p| p.get("MaximumEventAgeInSeconds"))
                .and_then(Value::as_i64)
                .unwrap_or(DEFAULT_AGE_S)
                * 1000;
            let now = now_ms(s.state.as_ref());
            let retries_done = i64::from(claim.attempt) - 1;
            let delay = backoff(s, claim.attempt);
            let exhausted = if retries_done >= max_attempts {
                "MaximumRetryAttempts"
            } else if now + delay - inv.fired_ms > max_age_ms {
                "MaximumEventAgeInSeconds"
            } else {
                tracing::info!(
                    schedule = %inv.schedule_arn,
                    attempt = claim.attempt,
                    "invocation failed, retrying: {}",
                    err.message
                );
                if let Err(e) = s.state.release(&claim, now + delay) {
                    tracing::debug!("releasing invocation {}: {e}", claim.id);
                }
                return;
            };
            dead_letter(s, &inv, &body, &err, exhausted, retries_done).await;
            s.state.complete(&claim, &[])
        }
    };
    if let Err(e) = result {
        tracing::debug!("finishing invocation {}: {e}", claim.id);
    }
}

/// Exponential backoff with jitter: between half and all of base·2^(attempt-1), capped.
fn backoff(s: &Scheduler, attempt: u32) -> i64 {
    use rand::Rng;
    let cap = s
        .config
        .retry_base_ms
        .saturating_mul(1i64 << attempt.saturating_sub(1).min(20))
        .min(s.config.retry_max_ms)
        .max(1);
    rand::thread_rng().gen_range(cap / 2..=cap)
}

/// Calls the target once; every failure is retried (Scheduler retries throttled, failed and
/// missing targets alike until the RetryPolicy runs out).
async fn call(
    s: &Scheduler,
    inv: &Invocation,
    body: &str,
    context: &Context<'_>,
) -> Result<(), AwsError> {
    let arn = str_of(&inv.target, "Arn").unwrap_or("");
    let route = route(arn).map_err(AwsError::validation)?;
    let (service, operation, input) =
        request(&route, &inv.target, body, context).map_err(AwsError::validation)?;
    let Some(registry) = s.registry.get() else {
        return Err(AwsError::internal("services are starting"));
    };
    let ctx = RequestContext::internal(&inv.account, &inv.region, "");
    let out = registry.call(&ctx, &service, &operation, input).await?;
    // PutEvents answers 200 with the entries it refused.
    if operation == "PutEvents"
        && out.body.get("FailedEntryCount").and_then(Value::as_i64) > Some(0)
    {
        let entry = &out.body["Entries"][0];
        return Err(AwsError::new(
            400,
            str_of(entry, "ErrorCode").unwrap_or("PutEventsFailed"),
            str_of(entry, "ErrorMessage").unwrap_or("The event bus refused the event."),
        ));
    }
    Ok(())
}

fn truncate(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

/// Sends a failed invocation to the target's dead-letter queue, if it has one (otherwise it
/// is dropped, as AWS drops it, with a log line): the body is the target's input, the
/// attributes say what failed.
async fn dead_letter(
    s: &Scheduler,
    inv: &Invocation,
    body: &str,
    err: &AwsError,
    exhausted: &str,
    retries: i64,
) {
    let target_arn = str_of(&inv.target, "Arn").unwrap_or("");
    let Some(dlq) = inv
        .target
        .get("DeadLetterConfig")
        .and_then(|c| str_of(c, "Arn"))
    else {
        tracing::warn!(schedule = %inv.schedule_arn, target = target_arn, "dropping an invocation its target refused: {}", err.message);
        return;
    };
    let Some(registry) = s.registry.get() else {
        return;
    };
    let parts: Vec<&str> = dlq.splitn(6, ':').collect();
    let [_, _, _, region, account, queue] = parts[..] else {
        return;
    };
    let ctx = RequestContext::internal(account, region, "");
    let string = |v: &str| json!({"DataType": "String", "StringValue": v});
    let attrs = json!({
        "ERROR_CODE": string(&err.code),
        "ERROR_MESSAGE": string(&truncate(&err.message, 256)),
        "EXHAUSTED_RETRY_CONDITION": string(exhausted),
        "RETRY_ATTEMPTS": string(&retries.to_string()),
        "SCHEDULE_ARN": string(&inv.schedule_arn),
        "TARGET_ARN": string(target_arn),
        "INVOCATION_ID": string(&inv.execution_id),
    });
    let sent = registry
        .call(
            &ctx,
            "sqs",
            "SendMessage",
            json!({
                "QueueUrl": format!("internal/{account}/{queue}"),
                "MessageBody": body,
                "MessageAttributes": attrs,
            }),
        )
        .await;
    if let Err(e) = sent {
        tracing::warn!(
            dlq,
            "sending a failed invocation to its dead-letter queue: {}",
            e.message
        );
    }
}
