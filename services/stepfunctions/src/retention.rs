//! History retention: an execution that ended is kept 90 days, as Step Functions keeps
//! Standard executions, then deleted with its history (its name can then be used again). A
//! recurring work item of the store's leases sweeps, one node at a time.
//! `BASALT_SFN_RETENTION_SECS` changes the period (tests, or machines that keep less).

use basalt_store::{Claim, StoreError, WriteOp};
use std::sync::Arc;

use crate::StepFunctions;
use crate::model::{BY_MACHINE, EXECUTIONS, ExecutionRec, HISTORY, MAP_RUNS};

const QUEUE: &str = "states.retention";
const ID: &str = "sweep";
const LEASE_MS: i64 = 120_000;
const PAGE: usize = 200;
const DEFAULT_RETENTION_MS: i64 = 90 * 24 * 3600 * 1000;

/// How long an ended execution is kept.
pub fn retention_ms() -> i64 {
    basalt_store::ms_from_secs_env("BASALT_SFN_RETENTION_SECS", DEFAULT_RETENTION_MS)
}

/// Often enough that nothing outlives its retention by much more than a quarter of it, at
/// most hourly.
fn period_ms() -> i64 {
    (retention_ms() / 4).clamp(200, 3_600_000)
}

pub fn start_worker(sf: Arc<StepFunctions>) {
    let state = sf.state.clone();
    basalt_store::leases::spawn_recurring(state, QUEUE, ID, LEASE_MS, period_ms, move |claim| {
        sweep(&sf, claim)
    });
}

fn sweep(sf: &StepFunctions, claim: &Claim) -> Result<(), StoreError> {
    let cutoff = sf.state.clock_ms()? - retention_ms();
    let mut after: Option<String> = None;
    loop {
        let rows = sf.state.scan(EXECUTIONS, "", after.as_deref(), PAGE)?;
        let Some((last, _)) = rows.last() else {
            return Ok(());
        };
        after = Some(last.clone());
        for (arn, raw) in &rows {
            let Ok(e) = serde_json::from_slice::<ExecutionRec>(raw) else {
                continue;
            };
            if e.status == "RUNNING" || e.stop_ms.is_none_or(|s| s >= cutoff) {
                continue;
            }
            forget(sf, arn, raw, &e)?;
        }
        sf.state.renew(claim, sf.state.clock_ms()?, LEASE_MS)?;
    }
}

/// Deletes the record and its listing entry, unless the record changed meanwhile (a
/// redrive), then the history. A node dying in between leaves history rows that nothing
/// reads any more.
fn forget(sf: &StepFunctions, arn: &str, raw: &[u8], e: &ExecutionRec) -> Result<(), StoreError> {
    // The children first: they are found through the execution's Map Runs.
    for m in e.run.iter().flat_map(|r| r.map_runs()) {
        crate::children::forget(sf, &m.arn)?;
    }
    let mut ops = vec![
        WriteOp::Check {
            table: EXECUTIONS.into(),
            key: arn.to_owned(),
            expected: Some(raw.to_vec()),
        },
        WriteOp::Delete {
            table: EXECUTIONS.into(),
            key: arn.to_owned(),
        },
        WriteOp::Delete {
            table: BY_MACHINE.into(),
            key: e.by_machine_key(),
        },
    ];
    for m in e.run.iter().flat_map(|r| r.map_runs()) {
        ops.push(WriteOp::Delete {
            table: MAP_RUNS.into(),
            key: m.arn.clone(),
        });
    }
    match sf.state.batch(&ops) {
        Ok(()) => {}
        Err(StoreError::Conflict) => return Ok(()),
        Err(err) => return Err(err),
    }
    let prefix = format!("{arn}/");
    loop {
        let events = sf.state.scan(HISTORY, &prefix, None, PAGE)?;
        if events.is_empty() {
            return Ok(());
        }
        let ops: Vec<WriteOp> = events
            .into_iter()
            .map(|(key, _)| WriteOp::Delete {
                table: HISTORY.into(),
                key,
            })
            .collect();
        sf.state.batch(&ops)?;
    }
}
