//! Fire times: each enabled schedule has one work item on the store's leases, due at its next
//! fire. Firing stores the invocation and arms the next fire (or, after the last fire of a
//! schedule whose ActionAfterCompletion is DELETE, deletes the schedule) in the transaction
//! that completes the item, so a fire is neither lost nor doubled by a crash, and any node
//! fires it.

use crate::model::{Armed, Invocation, SCHEDULES, ScheduleRec, schedule_arn, schedule_key};
use crate::{Scheduler, invoke, now_ms, schedules};
use basalt_schedule::Schedule;
use basalt_store::{Claim, WriteOp};
use std::sync::Arc;
use std::time::Duration;

/// The lease queue of armed schedules.
pub const QUEUE: &str = "scheduler.fires";
const LEASE_MS: i64 = 30_000;
const BATCH: usize = 16;

/// `anchor + k * period` (k >= 0) strictly after `after`.
fn rate_next(after: i64, anchor: i64, period: i64) -> i64 {
    if after < anchor {
        anchor
    } else {
        anchor + ((after - anchor) / period + 1) * period
    }
}

fn ms(secs: f64) -> i64 {
    (secs * 1000.0).round() as i64
}

/// The schedule's first nominal fire time strictly after `after_ms`, within its StartDate
/// (inclusive) and EndDate (inclusive); None when there is none.
pub(crate) fn next_fire(
    s: &Scheduler,
    rec: &ScheduleRec,
    schedule: &Schedule,
    after_ms: i64,
) -> Option<i64> {
    let start = rec.start_date.map(ms);
    let after = start.map_or(after_ms, |st| after_ms.max(st - 1));
    let next = match schedule {
        Schedule::Rate(r) => {
            // A test server may shorten the minute (BASALT_SCHEDULER_MINUTE_MS).
            let period = (i128::from(r.period_ms()) * i128::from(s.config.minute_ms) / 60_000)
                .clamp(1, i128::from(i64::MAX)) as i64;
            // A rate counts from StartDate, or from the schedule's last change.
            rate_next(after, start.unwrap_or(rec.anchor_ms), period)
        }
        other => other.next_after(after, 0)?,
    };
    match rec.end_date.map(ms) {
        Some(end) if next > end => None,
        _ => Some(next),
    }
}

/// The work item that fires `rec` at `nominal`, moved by a random offset within its flexible
/// time window.
pub(crate) fn arm_op(
    s: &Scheduler,
    account: &str,
    region: &str,
    rec: &ScheduleRec,
    nominal: i64,
) -> WriteOp {
    use rand::Rng;
    let window_ms = rec.window_minutes() * s.config.minute_ms;
    let offset = if window_ms > 0 {
        rand::thread_rng().gen_range(0..=window_ms)
    } else {
        0
    };
    let armed = Armed {
        account: account.to_owned(),
        region: region.to_owned(),
        group: rec.group.clone(),
        name: rec.name.clone(),
        generation: rec.generation.clone(),
        nominal_ms: nominal,
    };
    WriteOp::Enqueue {
        queue: QUEUE.into(),
        id: schedule_key(account, region, &rec.group, &rec.name),
        payload: serde_json::to_vec(&armed).unwrap_or_default(),
        due_ms: nominal + offset,
    }
}

pub(crate) fn start_worker(s: Arc<Scheduler>) {
    basalt_store::Worker {
        state: s.state.clone(),
        queue: QUEUE,
        lease_ms: LEASE_MS,
        batch: BATCH,
        idle: Duration::from_millis(250),
        wake: s.wake_fires.clone(),
    }
    .spawn(move |claimed| {
        let s = s.clone();
        async move {
            let _ = tokio::task::spawn_blocking(move || {
                for claim in claimed {
                    fire(&s, claim);
                }
            })
            .await;
        }
    });
}

fn fire(s: &Scheduler, claim: Claim) {
    let Ok(armed) = serde_json::from_slice::<Armed>(&claim.payload) else {
        tracing::error!(id = %claim.id, "dropping an unreadable armed schedule");
        let _ = s.state.complete(&claim, &[]);
        return;
    };
    let (rec, raw) =
        match schedules::load(s, &armed.account, &armed.region, &armed.group, &armed.name) {
            Ok(Some(found)) => found,
            // Deleted since.
            Ok(None) => {
                let _ = s.state.complete(&claim, &[]);
                return;
            }
            Err(_) => return, // the lease runs out and the fire is tried again
        };
    // Disabled or changed since: a change arms its own fire.
    if rec.generation != armed.generation || !rec.enabled() {
        let _ = s.state.complete(&claim, &[]);
        return;
    }
    let Ok(schedule) = Schedule::parse_scheduler(&rec.expression, Some(&rec.timezone)) else {
        let _ = s.state.complete(&claim, &[]);
        return;
    };
    let now = now_ms(s.state.as_ref());
    let key = schedule_key(&armed.account, &armed.region, &rec.group, &rec.name);
    let invocation = Invocation {
        account: armed.account.clone(),
        region: armed.region.clone(),
        schedule_arn: schedule_arn(&armed.account, &armed.region, &rec.group, &rec.name),
        target: rec.target.clone(),
        scheduled_ms: armed.nominal_ms,
        execution_id: uuid::Uuid::new_v4().to_string(),
        fired_ms: now,
    };
    let mut ops = vec![
        WriteOp::Check {
            table: SCHEDULES.into(),
            key: key.clone(),
            expected: Some(raw),
        },
        WriteOp::Enqueue {
            queue: invoke::QUEUE.into(),
            id: invocation.execution_id.clone(),
            payload: serde_json::to_vec(&invocation).unwrap_or_default(),
            due_ms: now,
        },
    ];
    // Fires missed while no node ran (beyond the flexible window) are not replayed.
    let window_ms = rec.window_minutes() * s.config.minute_ms;
    let after = armed.nominal_ms.max(now - window_ms);
    match next_fire(s, &rec, &schedule, after) {
        Some(next) => ops.push(arm_op(s, &armed.account, &armed.region, &rec, next)),
        None if rec.action_after_completion == "DELETE" => ops.push(WriteOp::Delete {
            table: SCHEDULES.into(),
            key,
        }),
        None => {}
    }
    match s.state.complete(&claim, &ops) {
        Ok(()) => s.wake_invocations.notify_one(),
        Err(e) => tracing::debug!("firing schedule {}: {e}", claim.id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SchedulerConfig;
    use serde_json::json;

    fn scheduler(minute_ms: i64) -> Arc<Scheduler> {
        let config = SchedulerConfig {
            minute_ms,
            ..SchedulerConfig::default()
        };
        Scheduler::with_config(Arc::new(basalt_store::MemoryState::default()), config)
    }

    fn rec(expr: &str) -> ScheduleRec {
        ScheduleRec {
            expression: expr.into(),
            timezone: "UTC".into(),
            state: "ENABLED".into(),
            flexible_time_window: json!({"Mode": "OFF"}),
            anchor_ms: 1_000_000,
            ..Default::default()
        }
    }

    #[test]
    fn rate_counts_from_the_anchor() {
        assert_eq!(rate_next(0, 100, 10), 100);
        assert_eq!(rate_next(100, 100, 10), 110);
        assert_eq!(rate_next(125, 100, 10), 130);
    }

    #[test]
    fn rates_honour_the_test_minute_and_dates() {
        let s = scheduler(1_000);
        let mut r = rec("rate(2 minutes)");
        let sch = Schedule::parse_scheduler(&r.expression, None).unwrap();
        assert_eq!(next_fire(&s, &r, &sch, 1_000_000), Some(1_002_000));
        // StartDate in the future: the first fire is at StartDate.
        r.start_date = Some(2_000.0);
        assert_eq!(next_fire(&s, &r, &sch, 1_000_000), Some(2_000_000));
        assert_eq!(next_fire(&s, &r, &sch, 2_000_000), Some(2_002_000));
        // Nothing after EndDate.
        r.end_date = Some(2_003.0);
        assert_eq!(next_fire(&s, &r, &sch, 2_002_000), None);
        let real = scheduler(60_000);
        let r = rec("rate(2 minutes)");
        assert_eq!(next_fire(&real, &r, &sch, 1_000_000), Some(1_120_000));
    }

    #[test]
    fn at_fires_once_and_cron_in_its_zone() {
        let s = scheduler(60_000);
        let r = rec("at(2030-01-01T00:00:00)");
        let sch = Schedule::parse_scheduler(&r.expression, None).unwrap();
        let at = 1_893_456_000_000; // 2030-01-01T00:00:00Z
        assert_eq!(next_fire(&s, &r, &sch, 0), Some(at));
        assert_eq!(next_fire(&s, &r, &sch, at), None);
        let mut r = rec("cron(0 9 * * ? *)");
        r.timezone = "America/New_York".into();
        let sch = Schedule::parse_scheduler(&r.expression, Some(&r.timezone)).unwrap();
        // 09:00 in New York in January is 14:00 UTC.
        assert_eq!(next_fire(&s, &r, &sch, at), Some(at + 14 * 3_600_000));
    }

    #[test]
    fn flexible_windows_delay_within_the_window() {
        let s = scheduler(60_000);
        let mut r = rec("rate(1 hour)");
        r.flexible_time_window = json!({"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 5});
        for _ in 0..50 {
            let WriteOp::Enqueue { due_ms, .. } = arm_op(&s, "a", "r", &r, 10_000_000) else {
                panic!("not an enqueue");
            };
            assert!((10_000_000..=10_300_000).contains(&due_ms), "{due_ms}");
        }
        r.flexible_time_window = json!({"Mode": "OFF"});
        let WriteOp::Enqueue { due_ms, .. } = arm_op(&s, "a", "r", &r, 10_000_000) else {
            panic!("not an enqueue");
        };
        assert_eq!(due_ms, 10_000_000);
    }
}
