//! Map Runs: DescribeMapRun, ListMapRuns, UpdateMapRun.
//!
//! A distributed Map's run lives in its execution's interpreter state ([`basalt_asl::MapRun`]),
//! so its counts move in the same committed step as the iterations they count; [`MAP_RUNS`]
//! finds the execution of a Map Run ARN.

use basalt_asl::{MapRun, MapRunCounts};
use basalt_core::{AwsError, RequestContext, page_token};
use serde_json::{Value, json};

use crate::children::child_machine_arn;
use crate::executions::{self, apply_retrying};
use crate::machines::page;
use crate::model::{ExecutionRec, MAP_RUNS, secs};
use crate::{StepFunctions, driver, error, invalid_arn, required};

fn not_found(arn: &str) -> AwsError {
    error(
        "ResourceNotFound",
        format!("Map Run Does Not Exist: '{arn}'"),
    )
}

fn map_run_arn(input: &Value) -> Result<&str, AwsError> {
    let arn = required(input, "mapRunArn")?;
    if !arn.starts_with("arn:") || !arn.contains(":mapRun:") {
        return Err(invalid_arn(arn));
    }
    Ok(arn)
}

/// The execution that runs the Map Run `arn`.
pub(crate) fn execution_of(sf: &StepFunctions, arn: &str) -> Result<ExecutionRec, AwsError> {
    let Some(raw) = sf.state.get(MAP_RUNS, arn)? else {
        return Err(not_found(arn));
    };
    let exec = String::from_utf8_lossy(&raw).into_owned();
    match executions::load(sf, &exec) {
        Err(e) if e.code == "ExecutionDoesNotExist" => Err(not_found(arn)),
        other => other,
    }
}

fn counts(c: &MapRunCounts) -> Value {
    json!({
        "pending": c.pending(), "running": c.running, "succeeded": c.succeeded,
        "failed": c.failed, "timedOut": 0, "aborted": c.aborted, "total": c.total,
        "resultsWritten": c.results_written,
        "failuresNotRedrivable": 0, "pendingRedrive": 0,
    })
}

pub fn describe(
    sf: &StepFunctions,
    _ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let arn = map_run_arn(input)?;
    let e = execution_of(sf, arn)?;
    let m = e
        .run
        .as_ref()
        .and_then(|r| r.map_run(arn))
        .ok_or_else(|| not_found(arn))?;
    Ok(describe_json(&e, m))
}

fn describe_json(e: &ExecutionRec, m: &MapRun) -> Value {
    let mut v = json!({
        "mapRunArn": m.arn,
        "executionArn": e.arn,
        "status": m.status.as_str(),
        "startDate": secs(m.start_ms),
        "maxConcurrency": m.max_concurrency,
        "toleratedFailurePercentage": m.tolerated_failure_percentage,
        "toleratedFailureCount": m.tolerated_failure_count,
        "itemCounts": counts(&m.items),
        "executionCounts": counts(&m.executions),
        "redriveCount": m.redrive_count,
    });
    if let Some(s) = m.stop_ms {
        v["stopDate"] = secs(s).into();
    }
    if let Some(r) = m.redrive_ms {
        v["redriveDate"] = secs(r).into();
    }
    v
}

pub fn list(sf: &StepFunctions, _ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let arn = required(input, "executionArn")?;
    if !arn.contains(":execution:") {
        return Err(invalid_arn(arn));
    }
    let e = executions::load(sf, arn)?;
    let (max, after) = page(input)?;
    let runs = e.run.as_ref().map(|r| r.map_runs()).unwrap_or_default();
    // Newest first, as ListExecutions; the token is the last Map Run ARN of the page.
    let mut rows: Vec<&MapRun> = runs.iter().rev().collect();
    if let Some(after) = &after {
        match rows.iter().position(|m| &m.arn == after) {
            Some(i) => rows.drain(..=i),
            None => return Err(error("InvalidToken", "Invalid Token")),
        };
    }
    let next = (rows.len() > max).then(|| page_token::encode(&rows[max - 1].arn));
    let out: Vec<Value> = rows
        .iter()
        .take(max)
        .map(|m| {
            let mut v = json!({
                "executionArn": e.arn, "mapRunArn": m.arn,
                "stateMachineArn": child_machine_arn(&m.arn), "startDate": secs(m.start_ms),
            });
            if let Some(s) = m.stop_ms {
                v["stopDate"] = secs(s).into();
            }
            v
        })
        .collect();
    let mut v = json!({ "mapRuns": out });
    if let Some(n) = next {
        v["nextToken"] = n.into();
    }
    Ok(v)
}

/// A member that must be a number in `lo..=hi` when present.
fn bounded(input: &Value, name: &str, lo: f64, hi: f64) -> Result<Option<f64>, AwsError> {
    let Some(v) = input.get(name).filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    match v.as_f64() {
        Some(x) if (lo..=hi).contains(&x) => Ok(Some(x)),
        _ => Err(AwsError::validation(format!(
            "1 validation error detected: Value '{v}' at '{name}' failed to satisfy constraint: Member must have value {}",
            if hi.is_finite() {
                format!("between {lo} and {hi}")
            } else {
                format!("greater than or equal to {lo}")
            }
        ))),
    }
}

pub fn update(sf: &StepFunctions, _ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let arn = map_run_arn(input)?;
    let max = bounded(input, "maxConcurrency", 0.0, f64::INFINITY)?.map(|x| x as u64);
    let count = bounded(input, "toleratedFailureCount", 0.0, f64::INFINITY)?.map(|x| x as u64);
    let pct = bounded(input, "toleratedFailurePercentage", 0.0, 100.0)?;
    let exec = execution_of(sf, arn)?.arn;
    apply_retrying(
        sf,
        &exec,
        |e, _| {
            let state = e.run.as_ref().and_then(|r| r.map_run(arn));
            match state.map(|m| m.status) {
                None => Err(Err(not_found(arn))),
                Some(basalt_asl::MapRunStatus::Running) if e.status == "RUNNING" => {
                    Ok(driver::Change::UpdateMapRun {
                        arn: arn.to_owned(),
                        max,
                        count,
                        pct,
                    })
                }
                Some(_) => Err(Err(AwsError::validation(format!(
                    "Map Run '{arn}' is not in progress"
                )))),
            }
        },
        |_| json!({}),
    )
}
