//! Scheduled rules: each enabled rule with a ScheduleExpression has one work item on the
//! store's leases, due at its next fire time. Firing stores the `Scheduled Event`'s
//! deliveries and arms the next fire in the transaction that completes the item, so a fire
//! is neither lost nor doubled by a crash, and any node fires it.

use crate::model::{RuleRec, rule_arn, rule_key};
use crate::{Events, rules};
use basalt_core::RequestContext;
use basalt_schedule::Schedule;
use basalt_store::{Claim, WriteOp};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// The lease queue of armed schedules.
pub const QUEUE: &str = "events.schedules";
const LEASE_MS: i64 = 30_000;

#[derive(Debug, Serialize, Deserialize)]
struct Armed {
    account: String,
    region: String,
    bus: String,
    rule: String,
    /// The expression armed: a rule changed since is armed again by the change.
    expression: String,
}

/// The work item that fires `rule` next, after `now`.
pub(crate) fn arm_op(
    ctx: &RequestContext,
    rule: &RuleRec,
    schedule: &Schedule,
    now: i64,
) -> Option<WriteOp> {
    arm(&ctx.account_id, &ctx.region, rule, schedule, now)
}

fn arm(
    account: &str,
    region: &str,
    rule: &RuleRec,
    schedule: &Schedule,
    after: i64,
) -> Option<WriteOp> {
    let due = schedule.next_after(after, rule.created_ms)?;
    let armed = Armed {
        account: account.to_owned(),
        region: region.to_owned(),
        bus: rule.bus.clone(),
        rule: rule.name.clone(),
        expression: rule.schedule.clone().unwrap_or_default(),
    };
    Some(WriteOp::Enqueue {
        queue: QUEUE.into(),
        id: rule_key(account, region, &rule.bus, &rule.name),
        payload: serde_json::to_vec(&armed).unwrap_or_default(),
        due_ms: due,
    })
}

pub(crate) fn start_worker(events: Arc<Events>) {
    basalt_store::Worker {
        state: events.state.clone(),
        queue: QUEUE,
        lease_ms: LEASE_MS,
        batch: 16,
        idle: Duration::from_millis(500),
        wake: events.wake_schedules.clone(),
    }
    .spawn(move |claimed| {
        let events = events.clone();
        async move {
            let _ = tokio::task::spawn_blocking(move || {
                for claim in claimed {
                    fire(&events, claim);
                }
            })
            .await;
        }
    });
}

fn fire(events: &Events, claim: Claim) {
    let Ok(armed) = serde_json::from_slice::<Armed>(&claim.payload) else {
        let _ = events.state.complete(&claim, &[]);
        return;
    };
    let ctx = RequestContext::internal(&armed.account, &armed.region, "");
    let rule = match rules::load(events, &ctx, &armed.bus, &armed.rule) {
        Ok(Some(r)) => r,
        Ok(None) => {
            let _ = events.state.complete(&claim, &[]);
            return;
        }
        Err(_) => return, // the lease runs out and the fire is tried again
    };
    // Disabled, deleted or re-scheduled since: this item is stale.
    if !rule.enabled() || rule.schedule.as_deref() != Some(armed.expression.as_str()) {
        let _ = events.state.complete(&claim, &[]);
        return;
    }
    let Ok(schedule) = Schedule::parse_rule(&armed.expression) else {
        let _ = events.state.complete(&claim, &[]);
        return;
    };
    // When this item was claimed: its due time, or as soon after it as a node looked.
    let fired_at = claim.expires_ms - LEASE_MS;
    let now = events.state.clock_ms().unwrap_or(fired_at);
    let event = json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": armed.account,
        "time": chrono::DateTime::from_timestamp_millis(fired_at)
            .unwrap_or_default()
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string(),
        "region": armed.region,
        "resources": [rule_arn(&armed.account, &armed.region, &armed.bus, &armed.rule)],
        "detail": {},
    });
    let mut ops = Vec::new();
    crate::ingest::deliveries(&ctx, &rule, &event, now, &mut ops);
    // Fires missed while no node ran are not replayed: the next one is after now.
    ops.extend(arm(&armed.account, &armed.region, &rule, &schedule, now));
    match events.state.complete(&claim, &ops) {
        Ok(()) => events.wake.notify_one(),
        Err(e) => tracing::debug!("firing schedule {}: {e}", claim.id),
    }
}
