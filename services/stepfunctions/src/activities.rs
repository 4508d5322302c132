//! Activities and task tokens: CreateActivity, DescribeActivity, ListActivities,
//! DeleteActivity, GetActivityTask (long polling), SendTaskSuccess, SendTaskFailure,
//! SendTaskHeartbeat.
//!
//! An activity task waits on the activity's own lease queue until a worker's GetActivityTask
//! claims it; the token it hands out names the execution and task in [`TOKENS`], so a
//! result sent with it (from any node) becomes the task's event.

use basalt_asl::{Effect, Event};
use basalt_core::{AwsError, RequestContext};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

use crate::driver;
use crate::machines::{check_name, list_page};
use crate::model::{
    ACTIVITIES, ActivityRec, TOKENS, TaskItem, TokenRec, activity_queue, now_ms, secs,
};
use crate::{StepFunctions, error, invalid_arn, required, str_of};

/// How long GetActivityTask waits for a task (AWS: 60 seconds).
fn poll_wait() -> Duration {
    std::env::var("BASALT_STEPFUNCTIONS_ACTIVITY_POLL_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .map_or(Duration::from_secs(60), Duration::from_secs_f64)
}

/// The record key of an activity ARN: `arn:aws:states:region:account:activity:name`.
pub fn key_of(arn: &str) -> Option<String> {
    let parts: Vec<&str> = arn.split(':').collect();
    match parts.as_slice() {
        ["arn", _, "states", region, account, "activity", name] => {
            Some(format!("{account}/{region}/{name}"))
        }
        _ => None,
    }
}

fn does_not_exist(arn: &str) -> AwsError {
    error(
        "ActivityDoesNotExist",
        format!("Activity Does Not Exist: '{arn}'"),
    )
}

pub fn create(sf: &StepFunctions, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let name = required(input, "name")?;
    check_name(name)?;
    let arn = format!(
        "arn:aws:states:{}:{}:activity:{name}",
        ctx.region, ctx.account_id
    );
    let key = format!("{}/{}/{name}", ctx.account_id, ctx.region);
    if let Some((a, _)) = sf.load::<ActivityRec>(ACTIVITIES, &key)? {
        return Ok(json!({"activityArn": a.arn, "creationDate": a.created}));
    }
    let rec = ActivityRec {
        arn: arn.clone(),
        name: name.to_owned(),
        created: secs(now_ms()),
        tags: input
            .get("tags")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|t| Some((str_of(t, "key")?.to_owned(), str_of(t, "value")?.to_owned())))
            .collect(),
        encryption: input.get("encryptionConfiguration").cloned(),
    };
    sf.state.put(
        ACTIVITIES,
        &key,
        &serde_json::to_vec(&rec).unwrap_or_default(),
    )?;
    Ok(json!({"activityArn": arn, "creationDate": rec.created}))
}

pub fn describe(
    sf: &StepFunctions,
    _ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let arn = required(input, "activityArn")?;
    let key = key_of(arn).ok_or_else(|| invalid_arn(arn))?;
    let (a, _) = sf
        .load::<ActivityRec>(ACTIVITIES, &key)?
        .ok_or_else(|| does_not_exist(arn))?;
    Ok(json!({"activityArn": a.arn, "name": a.name, "creationDate": a.created}))
}

pub fn list(sf: &StepFunctions, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let prefix = format!("{}/{}/", ctx.account_id, ctx.region);
    list_page(
        sf,
        ACTIVITIES,
        &prefix,
        input,
        "activities",
        |a: ActivityRec| json!({"activityArn": a.arn, "name": a.name, "creationDate": a.created}),
    )
}

pub fn delete(sf: &StepFunctions, _ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let arn = required(input, "activityArn")?;
    let key = key_of(arn).ok_or_else(|| invalid_arn(arn))?;
    sf.state.delete(ACTIVITIES, &key)?;
    Ok(json!({}))
}

/// Waits up to a minute for a task of the activity; `{}` when none came.
pub async fn get_task(
    sf: &StepFunctions,
    _ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let arn = required(input, "activityArn")?;
    let key = key_of(arn).ok_or_else(|| invalid_arn(arn))?;
    sf.load::<ActivityRec>(ACTIVITIES, &key)?
        .ok_or_else(|| does_not_exist(arn))?;
    let queue = activity_queue(arn);
    let deadline = Instant::now() + poll_wait();
    loop {
        let woken = sf.wake_activities.notified();
        let now = sf.state.clock_ms()?;
        if let Some(claim) = sf.state.claim(&queue, now, 60_000, 1)?.into_iter().next() {
            let item: TaskItem = serde_json::from_slice(&claim.payload)
                .map_err(|e| crate::corrupt("activity task", e))?;
            // Handed out: the worker now owns it until its result, timeout or heartbeat.
            sf.state.complete(&claim, &[])?;
            let Effect::Task {
                task,
                parameters,
                token,
                ..
            } = &item.effect
            else {
                continue;
            };
            let token = token
                .clone()
                .unwrap_or_else(|| driver::activity_token(&item.execution, task));
            return Ok(json!({"taskToken": token, "input": parameters.to_string()}));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(json!({}));
        }
        tokio::select! {
            _ = woken => {}
            _ = tokio::time::sleep(left.min(Duration::from_millis(200))) => {}
        }
    }
}

/// Whether `token` has the form of a token this service hands out: a callback token from the
/// interpreter (`AQ` and 48 hex digits) or an activity token (an execution ARN and task name).
/// AWS answers InvalidToken for anything else, and TaskDoesNotExist for a real token whose
/// task is gone.
fn well_formed(token: &str) -> bool {
    use base64::Engine;
    let callback = token.len() == 50
        && token.starts_with("AQ")
        && token[2..].bytes().all(|b| b.is_ascii_hexdigit());
    let activity = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|raw| String::from_utf8(raw).ok())
        .is_some_and(|s| s.starts_with("arn:") && s.contains('#'));
    callback || activity
}

fn token_rec(sf: &StepFunctions, input: &Value) -> Result<(String, TokenRec), AwsError> {
    let token = required(input, "taskToken")?;
    let Some((rec, _)) = sf.load::<TokenRec>(TOKENS, token)? else {
        if !well_formed(token) {
            return Err(error("InvalidToken", "Invalid Token: 'Invalid token'"));
        }
        return Err(error("TaskDoesNotExist", "Task Does Not Exist"));
    };
    // A task whose execution ended no longer exists.
    let e = crate::executions::load(sf, &rec.execution)
        .map_err(|_| error("TaskDoesNotExist", "Task Does Not Exist"))?;
    if e.status != "RUNNING" {
        return Err(error(
            "TaskTimedOut",
            "Task Timed Out: 'Provided task does not exist anymore'",
        ));
    }
    Ok((token.to_owned(), rec))
}

pub fn send_success(
    sf: &StepFunctions,
    _ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let output = required(input, "output")?;
    let output: Value = serde_json::from_str(output)
        .map_err(|e| error("InvalidOutput", format!("Invalid Output: '{e}'")))?;
    let (token, rec) = token_rec(sf, input)?;
    driver::post(
        sf,
        &rec.execution,
        format!("{}#{}#result", rec.execution, rec.task),
        Event::TaskSucceeded {
            task: rec.task.clone(),
            output,
        },
        0,
    )?;
    sf.state.delete(TOKENS, &token)?;
    Ok(json!({}))
}

pub fn send_failure(
    sf: &StepFunctions,
    _ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let (token, rec) = token_rec(sf, input)?;
    driver::post(
        sf,
        &rec.execution,
        format!("{}#{}#result", rec.execution, rec.task),
        Event::TaskFailed {
            task: rec.task.clone(),
            error: str_of(input, "error").unwrap_or("").to_owned(),
            cause: str_of(input, "cause").unwrap_or("").to_owned(),
        },
        0,
    )?;
    sf.state.delete(TOKENS, &token)?;
    Ok(json!({}))
}

/// Pushes the heartbeat timeout back by its period.
pub fn send_heartbeat(
    sf: &StepFunctions,
    _ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let (_, rec) = token_rec(sf, input)?;
    if let Some(h) = rec.heartbeat_seconds {
        driver::post(
            sf,
            &rec.execution,
            format!("{}#heartbeat#{}", rec.execution, rec.task),
            Event::TaskHeartbeatTimedOut {
                task: rec.task.clone(),
            },
            now_ms() + (h as i64) * 1000,
        )?;
    }
    Ok(json!({}))
}

#[cfg(test)]
mod tests {
    use super::well_formed;

    #[test]
    fn tokens_of_both_kinds_are_well_formed_and_others_are_not() {
        assert!(well_formed(&format!("AQ{}", "0a".repeat(24))));
        let activity =
            crate::driver::activity_token("arn:aws:states:us-east-1:1:execution:m:e", "t");
        assert!(well_formed(&activity));
        assert!(!well_formed("garbage"));
        assert!(!well_formed(&format!("AQ{}", "zz".repeat(24))));
        assert!(!well_formed(""));
    }
}
