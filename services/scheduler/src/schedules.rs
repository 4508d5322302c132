//! CreateSchedule, GetSchedule, UpdateSchedule, DeleteSchedule and ListSchedules. Every
//! write that leaves a schedule enabled arms its next fire in the same transaction.

use crate::model::{
    RECORD_VERSION, SCHEDULES, ScheduleRec, group_name, schedule_arn, schedule_key,
};
use crate::validate::{self, date_ms};
use crate::{
    Scheduler, conflict, corrupt, fire, groups, max_results, not_found, now_ms, secs, str_of,
    token, untoken,
};
use basalt_core::{AwsError, RequestContext};
use basalt_store::{StoreError, WriteOp};
use serde_json::{Map, Value, json};

/// AWS's defaults for a target without a RetryPolicy: 185 retries within 24 hours.
const DEFAULT_RETRY: (i64, i64) = (185, 86_400);

fn missing(name: &str) -> AwsError {
    not_found(format!("Schedule {name} does not exist."))
}

/// The schedule and its raw record.
pub(crate) fn load(
    s: &Scheduler,
    account: &str,
    region: &str,
    group: &str,
    name: &str,
) -> Result<Option<(ScheduleRec, Vec<u8>)>, AwsError> {
    let Some(raw) = s
        .state
        .get(SCHEDULES, &schedule_key(account, region, group, name))?
    else {
        return Ok(None);
    };
    let rec = serde_json::from_slice(&raw).map_err(|e| corrupt("schedule", e))?;
    Ok(Some((rec, raw)))
}

/// The record an accepted Create or Update input describes.
fn record(input: &Value, name: &str, group: &str, now: i64, created: Option<f64>) -> ScheduleRec {
    let mut target = input.get("Target").cloned().unwrap_or_else(|| json!({}));
    if target.get("RetryPolicy").is_none() {
        target["RetryPolicy"] = json!({
            "MaximumRetryAttempts": DEFAULT_RETRY.0,
            "MaximumEventAgeInSeconds": DEFAULT_RETRY.1,
        });
    }
    let owned = |m: &str| str_of(input, m).map(str::to_owned);
    ScheduleRec {
        v: RECORD_VERSION,
        name: name.to_owned(),
        group: group.to_owned(),
        expression: owned("ScheduleExpression").unwrap_or_default(),
        timezone: owned("ScheduleExpressionTimezone").unwrap_or_else(|| "UTC".into()),
        start_date: date_ms(input, "StartDate").map(secs),
        end_date: date_ms(input, "EndDate").map(secs),
        description: owned("Description"),
        state: owned("State").unwrap_or_else(|| "ENABLED".into()),
        kms_key_arn: owned("KmsKeyArn"),
        target,
        flexible_time_window: input
            .get("FlexibleTimeWindow")
            .cloned()
            .unwrap_or_else(|| json!({"Mode": "OFF"})),
        action_after_completion: owned("ActionAfterCompletion").unwrap_or_else(|| "NONE".into()),
        created: created.unwrap_or(secs(now)),
        modified: secs(now),
        generation: uuid::Uuid::new_v4().simple().to_string(),
        anchor_ms: now,
        client_token: owned("ClientToken"),
    }
}

/// Writes `rec` (checking the group and the schedule's prior record) and arms its next fire.
fn write(
    s: &Scheduler,
    ctx: &RequestContext,
    rec: &ScheduleRec,
    schedule: &basalt_schedule::Schedule,
    group_raw: Option<Vec<u8>>,
    prior: Option<Vec<u8>>,
    now: i64,
) -> Result<(), StoreError> {
    let key = schedule_key(&ctx.account_id, &ctx.region, &rec.group, &rec.name);
    let mut ops = vec![
        WriteOp::Check {
            table: crate::model::GROUPS.into(),
            key: crate::model::group_key(&ctx.account_id, &ctx.region, &rec.group),
            expected: group_raw,
        },
        WriteOp::Check {
            table: SCHEDULES.into(),
            key: key.clone(),
            expected: prior,
        },
        WriteOp::Put {
            table: SCHEDULES.into(),
            key,
            value: serde_json::to_vec(rec).unwrap_or_default(),
        },
    ];
    if rec.enabled()
        && let Some(nominal) = fire::next_fire(s, rec, schedule, now)
    {
        ops.push(fire::arm_op(s, &ctx.account_id, &ctx.region, rec, nominal));
    }
    s.state.batch(&ops)?;
    s.wake_fires.notify_one();
    Ok(())
}

pub fn create(s: &Scheduler, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let name = str_of(input, "Name").unwrap_or_default();
    let group = group_name(str_of(input, "GroupName"));
    let now = now_ms(s.state.as_ref());
    let schedule = validate::check(input, now)?;
    let (_, group_raw) = groups::must_load_raw(s, ctx, group)?;
    let arn = schedule_arn(&ctx.account_id, &ctx.region, group, name);
    if let Some((existing, _)) = load(s, &ctx.account_id, &ctx.region, group, name)? {
        // The same request retried (an SDK retries with the same idempotency token).
        let token = str_of(input, "ClientToken");
        if token.is_some() && existing.client_token.as_deref() == token {
            return Ok(json!({"ScheduleArn": arn}));
        }
        return Err(conflict(format!("Schedule {name} already exists.")));
    }
    let rec = record(input, name, group, now, None);
    match write(s, ctx, &rec, &schedule, group_raw, None, now) {
        Ok(()) => {}
        // The group was deleted or the schedule created meanwhile.
        Err(StoreError::Conflict) => {
            groups::must_load_raw(s, ctx, group)?;
            return Err(conflict(format!("Schedule {name} already exists.")));
        }
        Err(e) => return Err(e.into()),
    }
    Ok(json!({"ScheduleArn": arn}))
}

pub fn update(s: &Scheduler, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let name = str_of(input, "Name").unwrap_or_default();
    let group = group_name(str_of(input, "GroupName"));
    let now = now_ms(s.state.as_ref());
    let schedule = validate::check(input, now)?;
    let (_, group_raw) = groups::must_load_raw(s, ctx, group)?;
    let (prior, raw) =
        load(s, &ctx.account_id, &ctx.region, group, name)?.ok_or_else(|| missing(name))?;
    // An update replaces the whole schedule, as AWS's does: members left out are reset.
    let rec = record(input, name, group, now, Some(prior.created));
    match write(s, ctx, &rec, &schedule, group_raw, Some(raw), now) {
        Ok(()) => {}
        Err(StoreError::Conflict) => {
            return Err(conflict(format!(
                "Schedule {name} was changed concurrently; try again."
            )));
        }
        Err(e) => return Err(e.into()),
    }
    Ok(json!({"ScheduleArn": schedule_arn(&ctx.account_id, &ctx.region, group, name)}))
}

pub fn get(s: &Scheduler, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let name = str_of(input, "Name").unwrap_or_default();
    let group = group_name(str_of(input, "GroupName"));
    groups::must_load_raw(s, ctx, group)?;
    let (r, _) =
        load(s, &ctx.account_id, &ctx.region, group, name)?.ok_or_else(|| missing(name))?;
    let mut out = Map::new();
    let mut put = |k: &str, v: Value| {
        out.insert(k.to_owned(), v);
    };
    put(
        "Arn",
        schedule_arn(&ctx.account_id, &ctx.region, group, name).into(),
    );
    put("Name", r.name.into());
    put("GroupName", r.group.into());
    put("ScheduleExpression", r.expression.into());
    put("ScheduleExpressionTimezone", r.timezone.into());
    if let Some(d) = r.start_date {
        put("StartDate", d.into());
    }
    if let Some(d) = r.end_date {
        put("EndDate", d.into());
    }
    if let Some(d) = r.description {
        put("Description", d.into());
    }
    put("State", r.state.into());
    if let Some(k) = r.kms_key_arn {
        put("KmsKeyArn", k.into());
    }
    put("Target", r.target);
    put("FlexibleTimeWindow", r.flexible_time_window);
    put("ActionAfterCompletion", r.action_after_completion.into());
    put("CreationDate", r.created.into());
    put("LastModificationDate", r.modified.into());
    Ok(Value::Object(out))
}

pub fn delete(s: &Scheduler, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let name = str_of(input, "Name").unwrap_or_default();
    let group = group_name(str_of(input, "GroupName"));
    groups::must_load_raw(s, ctx, group)?;
    // Its armed fire finds no schedule and ends.
    if !s.state.delete(
        SCHEDULES,
        &schedule_key(&ctx.account_id, &ctx.region, group, name),
    )? {
        return Err(missing(name));
    }
    Ok(json!({}))
}

pub fn list(s: &Scheduler, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let prefix = match str_of(input, "GroupName") {
        Some(g) => {
            groups::must_load_raw(s, ctx, g)?;
            format!("{}/{}/{g}/", ctx.account_id, ctx.region)
        }
        None => format!("{}/{}/", ctx.account_id, ctx.region),
    };
    let name_prefix = str_of(input, "NamePrefix").unwrap_or("");
    let state = str_of(input, "State");
    let limit = max_results(input);
    let mut after = str_of(input, "NextToken").map(untoken).transpose()?;
    if after.as_deref().is_some_and(|a| !a.starts_with(&prefix)) {
        return Err(crate::validation("The NextToken provided is invalid."));
    }
    // One more than a page, to know whether there is a next one.
    let mut found: Vec<(String, ScheduleRec)> = Vec::new();
    'scan: loop {
        let chunk = s.state.scan(SCHEDULES, &prefix, after.as_deref(), 256)?;
        let Some((last, _)) = chunk.last() else {
            break;
        };
        let last = last.clone();
        for (key, raw) in chunk {
            let r: ScheduleRec =
                serde_json::from_slice(&raw).map_err(|e| corrupt("schedule", e))?;
            if r.name.starts_with(name_prefix) && state.is_none_or(|st| st == r.state) {
                found.push((key, r));
                if found.len() > limit {
                    break 'scan;
                }
            }
        }
        after = Some(last);
    }
    let mut out = Map::new();
    if found.len() > limit {
        found.truncate(limit);
        if let Some((key, _)) = found.last() {
            out.insert("NextToken".into(), token(key).into());
        }
    }
    let page: Vec<Value> = found
        .into_iter()
        .map(|(_, r)| {
            json!({
                "Arn": schedule_arn(&ctx.account_id, &ctx.region, &r.group, &r.name),
                "Name": r.name,
                "GroupName": r.group,
                "State": r.state,
                "CreationDate": r.created,
                "LastModificationDate": r.modified,
                "Target": {"Arn": str_of(&r.target, "Arn").unwrap_or("")},
            })
        })
        .collect();
    out.insert("Schedules".into(), Value::Array(page));
    Ok(Value::Object(out))
}
