//! Alarm evaluation and actions, on the store's leases so that any node runs them.
//!
//! Every alarm has one work item in [`QUEUE`], scheduled when the alarm is put and given back
//! due again one evaluation interval later (`BASALT_CLOUDWATCH_EVALUATION_SECS`, 10 s by
//! default) each time it runs. Evaluation applies Period, EvaluationPeriods,
//! DatapointsToAlarm and TreatMissingData as CloudWatch documents them ("Evaluating an
//! alarm"). A state change is written with its history item and one work item per action in
//! [`ACTIONS`], in the transaction that completes the evaluation's claim, so an action is
//! sent at least once and recorded once. Actions reach SNS (`Publish`) and Lambda (`Invoke`,
//! `Event`) through the in-process registry; while a target service is not there (not built,
//! or not started yet) the action stays queued and is retried.

use crate::CloudWatch;
use crate::alarms::{self, AlarmRec};
use crate::composite;
use crate::history;
use crate::model::{dimensions, f64_of, i64_of, iso, list_of, region_name, short_time, str_of};
use crate::stats;
use basalt_core::{AwsError, RequestContext};
use basalt_store::{Claim, StoreError, WriteOp};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// Alarm evaluations, one item per alarm.
pub const QUEUE: &str = "cloudwatch.alarms";
/// Alarm actions waiting to be sent.
pub const ACTIONS: &str = "cloudwatch.actions";
const LEASE_MS: i64 = 30_000;
const MAX_RETRY_MS: i64 = 60_000;

/// The evaluation interval: `BASALT_CLOUDWATCH_EVALUATION_SECS` (seconds, fractions
/// allowed), 10 s by default.
pub(crate) fn interval_from_env() -> i64 {
    basalt_store::ms_from_secs_env("BASALT_CLOUDWATCH_EVALUATION_SECS", 10_000).max(100)
}

#[derive(Debug, Serialize, Deserialize)]
struct Tick {
    account: String,
    region: String,
    name: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct ActionItem {
    account: String,
    region: String,
    alarm: String,
    alarm_type: String,
    arn: String,
    subject: String,
    /// The SNS message (the alarm's JSON document).
    message: String,
    /// The Lambda event.
    event: Value,
}

/// The write that schedules the evaluation of alarm `name` at `due_ms`.
pub(crate) fn schedule(account: &str, region: &str, name: &str, due_ms: i64) -> WriteOp {
    let tick = Tick {
        account: account.to_owned(),
        region: region.to_owned(),
        name: name.to_owned(),
    };
    WriteOp::Enqueue {
        queue: QUEUE.into(),
        id: format!("{account}/{region}/{name}"),
        payload: serde_json::to_vec(&tick).unwrap_or_default(),
        due_ms,
    }
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.1}")
    } else {
        v.to_string()
    }
}

fn operator_words(op: &str) -> &'static str {
    match op {
        "GreaterThanOrEqualToThreshold" => "greater than or equal to",
        "GreaterThanThreshold" => "greater than",
        "LessThanThreshold" => "less than",
        "LessThanOrEqualToThreshold" => "less than or equal to",
        _ => "outside",
    }
}

fn breaches(op: &str, v: f64, t: f64) -> Option<bool> {
    Some(match op {
        "GreaterThanOrEqualToThreshold" => v >= t,
        "GreaterThanThreshold" => v > t,
        "LessThanThreshold" => v < t,
        "LessThanOrEqualToThreshold" => v <= t,
        _ => return None,
    })
}

/// A new state, its reason and reason data.
type Verdict = (String, String, Option<String>);

/// One evaluated period: start, value, sample count.
type Period = (i64, Option<f64>, Option<f64>);

fn metric_periods(
    cw: &CloudWatch,
    account: &str,
    region: &str,
    rec: &AlarmRec,
    n: i64,
    now: i64,
) -> Result<(Vec<Period>, i64, Option<String>), AwsError> {
    if let Some(queries) = rec.get("Metrics").and_then(Value::as_array) {
        let period = queries
            .iter()
            .filter_map(|q| {
                q.get("MetricStat")
                    .and_then(|m| i64_of(m, "Period"))
                    .or_else(|| i64_of(q, "Period"))
            })
            .min()
            .unwrap_or(60);
        let start = now - n * period * 1000;
        let out = crate::data::run_queries(cw, account, region, queries, "Metrics", start, now)?;
        let series = out.into_iter().next().map(|o| o.points).unwrap_or_default();
        let periods = (0..n)
            .map(|k| {
                let t = start + k * period * 1000;
                (t, series.get(&t).copied(), None)
            })
            .collect();
        return Ok((periods, period, None));
    }
    let cfg = |f: &str| {
        rec.get(f)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let period = rec
        .get("Period")
        .and_then(Value::as_i64)
        .unwrap_or(60)
        .max(1);
    let stat = rec
        .get("Statistic")
        .or_else(|| rec.get("ExtendedStatistic"))
        .and_then(Value::as_str)
        .unwrap_or("Average")
        .to_owned();
    let dims = dimensions(
        rec.get("Dimensions")
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice),
        "Dimensions",
    )?;
    let unit = rec.get("Unit").and_then(Value::as_str);
    let start = now - n * period * 1000;
    let (namespace, metric) = (cfg("Namespace"), cfg("MetricName"));
    let scope = stats::Scope {
        metrics: &cw.metrics,
        account,
        region,
        namespace: &namespace,
        metric: &metric,
        start_ms: start,
        end_ms: now,
        period_ms: period * 1000,
    };
    let buckets = stats::aggregate_merged(&scope, &dims, unit)?;
    let periods = (0..n)
        .map(|k| {
            let t = start + k * period * 1000;
            match buckets.get(&t) {
                Some(b) => (t, b.stat(&stat).filter(|v| v.is_finite()), Some(b.count)),
                None => (t, None, None),
            }
        })
        .collect();
    Ok((periods, period, Some(stat)))
}

/// Evaluates a metric alarm at `now`; `None` keeps its state.
fn evaluate_metric(
    cw: &CloudWatch,
    account: &str,
    region: &str,
    rec: &AlarmRec,
    now: i64,
) -> Result<Option<Verdict>, AwsError> {
    let op = rec
        .get("ComparisonOperator")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some(threshold) = f64_of(&Value::Object(rec.config.clone()), "Threshold") else {
        // Anomaly-detection bands are not evaluated.
        return Ok(None);
    };
    if breaches(op, 0.0, 0.0).is_none() {
        return Ok(None);
    }
    let n = rec
        .get("EvaluationPeriods")
        .and_then(Value::as_i64)
        .unwrap_or(1)
        .clamp(1, 10_080);
    let m = rec
        .get("DatapointsToAlarm")
        .and_then(Value::as_i64)
        .unwrap_or(n);
    let treat = rec
        .get("TreatMissingData")
        .and_then(Value::as_str)
        .unwrap_or("missing");
    let (periods, period, stat) = metric_periods(cw, account, region, rec, n, now)?;
    let present: Vec<(i64, f64, Option<f64>, bool)> = periods
        .iter()
        .filter_map(|(t, v, c)| v.map(|v| (*t, v, *c, breaches(op, v, threshold).unwrap_or(false))))
        .collect();
    let missing = n as usize - present.len();
    let mut data = json!({
        "version": "1.0",
        "queryDate": iso(now),
        "startDate": iso(periods.first().map_or(now, |p| p.0)),
        "period": period,
        "recentDatapoints": present.iter().map(|p| p.1).collect::<Vec<_>>(),
        "threshold": threshold,
        "evaluatedDatapoints": present.iter().rev().map(|(t, v, c, _)| {
            let mut d = json!({"timestamp": iso(*t), "value": v});
            if let Some(c) = c {
                d["sampleCount"] = json!(c);
            }
            d
        }).collect::<Vec<_>>(),
    });
    if let Some(s) = &stat {
        data["statistic"] = json!(s);
    }
    if let Some(u) = rec.get("Unit") {
        data["unit"] = u.clone();
    }
    let listed = present
        .iter()
        .rev()
        .map(|(t, v, _, _)| format!("{} ({})", number(*v), short_time(*t)))
        .collect::<Vec<_>>()
        .join(", ");
    let words = operator_words(op);
    let plural = |k: usize| if k == 1 { "" } else { "s" };
    let verdict = if present.is_empty() {
        match treat {
            "ignore" => return Ok(None),
            "breaching" => (
                "ALARM".to_owned(),
                format!(
                    "Threshold Crossed: no datapoints were received for {n} period{} and {n} missing datapoint{} were treated as [Breaching].",
                    plural(n as usize),
                    plural(n as usize)
                ),
            ),
            "notBreaching" => (
                "OK".to_owned(),
                format!(
                    "Threshold Crossed: no datapoints were received for {n} period{} and {n} missing datapoint{} were treated as [NonBreaching].",
                    plural(n as usize),
                    plural(n as usize)
                ),
            ),
            _ => (
                "INSUFFICIENT_DATA".to_owned(),
                format!(
                    "Insufficient Data: {n} datapoint{} {} unknown.",
                    plural(n as usize),
                    if n == 1 { "was" } else { "were" }
                ),
            ),
        }
    } else {
        let breaching =
            present.iter().filter(|p| p.3).count() + if treat == "breaching" { missing } else { 0 };
        if breaching as i64 >= m {
            (
                "ALARM".to_owned(),
                format!(
                    "Threshold Crossed: {breaching} out of the last {} datapoints [{listed}] {} {words} the threshold ({}) (minimum {m} datapoint{} for OK -> ALARM transition).",
                    present.len(),
                    if breaching == 1 { "was" } else { "were" },
                    number(threshold),
                    plural(m as usize),
                ),
            )
        } else {
            let ok = present.len() - present.iter().filter(|p| p.3).count();
            (
                "OK".to_owned(),
                format!(
                    "Threshold Crossed: {ok} datapoint{} [{listed}] {} not {words} the threshold ({}).",
                    plural(ok),
                    if ok == 1 { "was" } else { "were" },
                    number(threshold),
                ),
            )
        }
    };
    Ok(Some((verdict.0, verdict.1, Some(data.to_string()))))
}

fn evaluate_composite(
    cw: &CloudWatch,
    account: &str,
    region: &str,
    rec: &AlarmRec,
    now: i64,
) -> Result<Option<Verdict>, AwsError> {
    let scope = format!("{account}/{region}");
    let Some(rule) = rec
        .get("AlarmRule")
        .and_then(Value::as_str)
        .and_then(|r| composite::parse(r).ok())
    else {
        return Ok(None);
    };
    let mut children = Vec::new();
    for name in composite::children(&rule) {
        if let Some((child, _)) = alarms::load(cw, &scope, &name)? {
            children.push(child);
        }
    }
    let state_of = |n: &str| {
        children
            .iter()
            .find(|c| c.name == n)
            .map(|c| c.state.clone())
    };
    let fired = composite::eval(&rule, &state_of);
    let state = if fired { "ALARM" } else { "OK" };
    if state == rec.state {
        return Ok(None);
    }
    let triggering: Vec<&AlarmRec> = children.iter().filter(|c| c.state == "ALARM").collect();
    let reason = match triggering.first() {
        Some(c) if fired => format!(
            "{} transitioned to ALARM at {}",
            c.arn(account, region),
            iso(c.state_transitioned_ms)
        ),
        _ => format!(
            "The alarm rule evaluated to {} at {}",
            if fired { "TRUE" } else { "FALSE" },
            iso(now)
        ),
    };
    let data = json!({
        "triggeringAlarms": triggering.iter().map(|c| json!({
            "arn": c.arn(account, region),
            "state": {"value": c.state, "timestamp": iso(c.state_transitioned_ms)},
        })).collect::<Vec<_>>(),
    });
    Ok(Some((state.to_owned(), reason, Some(data.to_string()))))
}

/// The alarm's JSON document as CloudWatch publishes it to SNS.
fn sns_message(rec: &AlarmRec, account: &str, region: &str, old: &str, now: i64) -> Value {
    let get = |f: &str| rec.get(f).cloned().unwrap_or(Value::Null);
    let mut msg = json!({
        "AlarmName": rec.name,
        "AlarmDescription": get("AlarmDescription"),
        "AWSAccountId": account,
        "AlarmConfigurationUpdatedTimestamp": iso(rec.config_updated_ms),
        "NewStateValue": rec.state,
        "NewStateReason": rec.reason,
        "StateChangeTime": iso(now),
        "Region": region_name(region),
        "AlarmArn": rec.arn(account, region),
        "OldStateValue": old,
        "OKActions": rec.actions("OK"),
        "AlarmActions": rec.actions("ALARM"),
        "InsufficientDataActions": rec.actions("INSUFFICIENT_DATA"),
    });
    if rec.composite {
        msg["AlarmRule"] = get("AlarmRule");
        return msg;
    }
    let dims_lower = |d: &Value| -> Value {
        json!(
            d.as_array()
                .map(|a| a
                    .iter()
                    .map(|x| json!({"value": x.get("Value"), "name": x.get("Name")}))
                    .collect::<Vec<_>>())
                .unwrap_or_default()
        )
    };
    let mut trigger = json!({
        "Period": get("Period"),
        "EvaluationPeriods": get("EvaluationPeriods"),
        "ComparisonOperator": get("ComparisonOperator"),
        "Threshold": get("Threshold"),
        "TreatMissingData": rec.get("TreatMissingData").and_then(Value::as_str).unwrap_or("missing"),
        "EvaluateLowSampleCountPercentile": rec.get("EvaluateLowSampleCountPercentile").and_then(Value::as_str).unwrap_or(""),
    });
    if let Some(m) = rec.get("DatapointsToAlarm") {
        trigger["DatapointsToAlarm"] = m.clone();
    }
    if let Some(queries) = rec.get("Metrics").and_then(Value::as_array) {
        trigger["Metrics"] = json!(
            queries
                .iter()
                .map(|q| {
                    let mut out = q.clone();
                    if let Some(ms) = out.get_mut("MetricStat")
                        && let Some(metric) = ms.get_mut("Metric")
                    {
                        let d = dims_lower(metric.get("Dimensions").unwrap_or(&Value::Null));
                        metric["Dimensions"] = d;
                    }
                    out
                })
                .collect::<Vec<_>>()
        );
    } else {
        trigger["MetricName"] = get("MetricName");
        trigger["Namespace"] = get("Namespace");
        match rec.get("ExtendedStatistic") {
            Some(e) => {
                trigger["StatisticType"] = json!("ExtendedStatistic");
                trigger["ExtendedStatistic"] = e.clone();
            }
            None => {
                trigger["StatisticType"] = json!("Statistic");
                trigger["Statistic"] = json!(
                    rec.get("Statistic")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_ascii_uppercase()
                );
            }
        }
        trigger["Unit"] = get("Unit");
        trigger["Dimensions"] = dims_lower(&get("Dimensions"));
    }
    msg["Trigger"] = trigger;
    msg
}

/// The event CloudWatch sends a Lambda function that is an alarm action.
fn lambda_event(rec: &AlarmRec, account: &str, region: &str, old: &AlarmRec, now: i64) -> Value {
    let state = |r: &AlarmRec| {
        let mut s =
            json!({"value": r.state, "reason": r.reason, "timestamp": iso(r.state_updated_ms)});
        if let Some(d) = &r.reason_data {
            s["reasonData"] = json!(d);
        }
        s
    };
    let metrics: Vec<Value> = match rec.get("Metrics").and_then(Value::as_array) {
        Some(q) => q.clone(),
        None if !rec.composite => {
            let dims: serde_json::Map<String, Value> =
                list_of(&Value::Object(rec.config.clone()), "Dimensions")
                    .iter()
                    .filter_map(|d| Some((str_of(d, "Name")?.to_owned(), d.get("Value")?.clone())))
                    .collect();
            vec![json!({
                "id": "m1",
                "metricStat": {
                    "metric": {"namespace": rec.get("Namespace"), "name": rec.get("MetricName"), "dimensions": dims},
                    "period": rec.get("Period"),
                    "stat": rec.get("Statistic").or_else(|| rec.get("ExtendedStatistic")),
                },
                "returnData": true,
            })]
        }
        None => Vec::new(),
    };
    json!({
        "source": "aws.cloudwatch",
        "alarmArn": rec.arn(account, region),
        "accountId": account,
        "time": iso(now),
        "region": region,
        "alarmData": {
            "alarmName": rec.name,
            "state": state(rec),
            "previousState": state(old),
            "configuration": {
                "description": rec.get("AlarmDescription"),
                "metrics": metrics,
            },
        },
    })
}

/// The writes of setting an alarm's state: the alarm (only if it is still `raw`), and when
/// the state changes its history item and its actions.
#[allow(clippy::too_many_arguments)]
pub(crate) fn transition_ops(
    scope: &str,
    account: &str,
    region: &str,
    rec: &AlarmRec,
    raw: Vec<u8>,
    state: &str,
    reason: &str,
    reason_data: Option<String>,
    now: i64,
) -> Result<Vec<WriteOp>, AwsError> {
    let changed = state != rec.state;
    let mut new = rec.clone();
    new.state = state.to_owned();
    new.reason = reason.to_owned();
    new.reason_data = reason_data;
    new.state_updated_ms = now;
    if changed {
        new.state_transitioned_ms = now;
        new.actions_repeated_ms = None;
    }
    let mut ops = alarms::replace_ops(scope, &new, raw)?;
    if !changed {
        return Ok(ops);
    }
    ops.push(history::record(
        scope,
        &history::state_update(
            &rec.name,
            rec.alarm_type(),
            history::state_doc(&rec.state, &rec.reason, rec.reason_data.as_deref()),
            history::state_doc(state, reason, new.reason_data.as_deref()),
            now,
        ),
    ));
    if new.actions_enabled {
        ops.extend(action_items(
            account,
            region,
            rec,
            &new,
            new.actions(state),
            now,
        ));
    }
    Ok(ops)
}

/// One work item per action in `arns` for `new`, the alarm in its new state (`old` before).
fn action_items(
    account: &str,
    region: &str,
    old: &AlarmRec,
    new: &AlarmRec,
    arns: Vec<String>,
    now: i64,
) -> Vec<WriteOp> {
    let message = sns_message(new, account, region, &old.state, now).to_string();
    let event = lambda_event(new, account, region, old, now);
    let subject: String = format!("{}: \"{}\" in {}", new.state, new.name, region_name(region))
        .chars()
        .take(100)
        .collect();
    arns.into_iter()
        .map(|arn| {
            let item = ActionItem {
                account: account.to_owned(),
                region: region.to_owned(),
                alarm: new.name.clone(),
                alarm_type: new.alarm_type().to_owned(),
                arn,
                subject: subject.clone(),
                message: message.clone(),
                event: event.clone(),
            };
            WriteOp::Enqueue {
                queue: ACTIONS.into(),
                id: basalt_core::ids::request_id(),
                payload: serde_json::to_vec(&item).unwrap_or_default(),
                due_ms: now,
            }
        })
        .collect()
}

/// How often an alarm that stays in a state invokes that state's Auto Scaling actions
/// again: `BASALT_CLOUDWATCH_ACTION_REPEAT_SECS`, 60 s by default.
fn repeat_ms() -> i64 {
    basalt_store::ms_from_secs_env("BASALT_CLOUDWATCH_ACTION_REPEAT_SECS", 60_000).max(100)
}

/// The writes of invoking the Auto Scaling actions of an alarm that stayed in its state, if
/// one is due. CloudWatch runs other actions on a change of state only, but "for Auto Scaling
/// actions, the alarm continues to invoke the action once per minute that the alarm remains
/// in the new state" (CloudWatch User Guide, alarm actions), so a step scaling policy keeps
/// stepping (its cooldown permitting) while the breach lasts. The event carries the latest
/// evaluation's datapoints, from which the policy picks its step.
#[allow(clippy::too_many_arguments)]
fn repeat_ops(
    scope: &str,
    account: &str,
    region: &str,
    rec: &AlarmRec,
    raw: Vec<u8>,
    reason: &str,
    reason_data: Option<String>,
    now: i64,
) -> Option<Vec<WriteOp>> {
    if !rec.actions_enabled {
        return None;
    }
    let arns: Vec<String> = (rec.actions(&rec.state).into_iter())
        .filter(|a| a.starts_with("arn:aws:autoscaling:"))
        .collect();
    let last = (rec.actions_repeated_ms.unwrap_or(0)).max(rec.state_transitioned_ms);
    if arns.is_empty() || now - last < repeat_ms() {
        return None;
    }
    let mut new = rec.clone();
    new.actions_repeated_ms = Some(now);
    let mut current = new.clone();
    current.reason = reason.to_owned();
    current.reason_data = reason_data;
    let mut ops = alarms::replace_ops(scope, &new, raw).ok()?;
    ops.extend(action_items(account, region, rec, &current, arns, now));
    Some(ops)
}

/// Evaluations, due at once, of the composite alarms whose rule names `name`: a child's
/// change of state is what composite alarms react to.
pub(crate) fn parent_ticks(
    cw: &CloudWatch,
    account: &str,
    region: &str,
    name: &str,
    now: i64,
) -> Result<Vec<WriteOp>, AwsError> {
    let scope = format!("{account}/{region}");
    Ok(alarms::all(cw, &scope)?
        .into_iter()
        .filter(|a| {
            a.composite
                && a.get("AlarmRule")
                    .and_then(Value::as_str)
                    .and_then(|r| composite::parse(r).ok())
                    .is_some_and(|r| composite::children(&r).iter().any(|c| c == name))
        })
        .map(|a| schedule(account, region, &a.name, now))
        .collect())
}

/// Evaluates the alarm of one claimed item and records the outcome.
fn run_tick(cw: &CloudWatch, claim: &Claim, now: i64) -> Result<(), StoreError> {
    let Ok(t) = serde_json::from_slice::<Tick>(&claim.payload) else {
        return cw.state.complete(claim, &[]);
    };
    let scope = format!("{}/{}", t.account, t.region);
    let loaded = match alarms::load(cw, &scope, &t.name) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(alarm = %t.name, error = %e.message, "loading alarm failed");
            return cw.state.release(claim, now + cw.interval_ms);
        }
    };
    let Some((rec, raw)) = loaded else {
        // Deleted: its evaluations end.
        return cw.state.complete(claim, &[]);
    };
    let verdict = if rec.composite {
        evaluate_composite(cw, &t.account, &t.region, &rec, now)
    } else {
        evaluate_metric(cw, &t.account, &t.region, &rec, now)
    };
    match verdict {
        Ok(Some((state, reason, data))) if state != rec.state => {
            let mut ops = match transition_ops(
                &scope, &t.account, &t.region, &rec, raw, &state, &reason, data, now,
            ) {
                Ok(ops) => ops,
                Err(_) => return cw.state.release(claim, now + cw.interval_ms),
            };
            ops.push(schedule(
                &t.account,
                &t.region,
                &t.name,
                now + cw.interval_ms,
            ));
            ops.extend(parent_ticks(cw, &t.account, &t.region, &t.name, now).unwrap_or_default());
            match cw.state.complete(claim, &ops) {
                // The alarm changed meanwhile: evaluate again at once.
                Err(StoreError::Conflict) => cw.state.release(claim, now).or(Ok(())),
                other => other,
            }
        }
        Ok(Some((_, reason, data))) => {
            let repeat = repeat_ops(&scope, &t.account, &t.region, &rec, raw, &reason, data, now);
            match repeat {
                Some(mut ops) => {
                    ops.push(schedule(
                        &t.account,
                        &t.region,
                        &t.name,
                        now + cw.interval_ms,
                    ));
                    match cw.state.complete(claim, &ops) {
                        Err(StoreError::Conflict) => cw.state.release(claim, now).or(Ok(())),
                        other => other,
                    }
                }
                None => cw.state.release(claim, now + cw.interval_ms),
            }
        }
        Ok(None) => cw.state.release(claim, now + cw.interval_ms),
        Err(e) => {
            tracing::warn!(alarm = %t.name, error = %e.message, "alarm evaluation failed");
            cw.state.release(claim, now + cw.interval_ms)
        }
    }
}

/// Sends one action; the outcome is recorded with the claim's completion.
async fn deliver(cw: &Arc<CloudWatch>, claim: Claim, now: i64) {
    let Ok(item) = serde_json::from_slice::<ActionItem>(&claim.payload) else {
        let _ = cw.state.complete(&claim, &[]);
        return;
    };
    let retry = |attempt: u32| now + (5_000i64 << attempt.min(4)).min(MAX_RETRY_MS);
    let Some(registry) = cw.registry.get() else {
        let _ = cw.state.release(&claim, retry(claim.attempt));
        return;
    };
    let ctx = RequestContext::internal(&item.account, &item.region, "");
    let (service, call) = if item.arn.starts_with("arn:aws:sns:") {
        (
            "sns",
            registry.call(
                &ctx,
                "sns",
                "Publish",
                json!({"TopicArn": item.arn, "Subject": item.subject, "Message": item.message}),
            ),
        )
    } else if item.arn.starts_with("arn:aws:lambda:") {
        use base64::Engine;
        let payload = base64::engine::general_purpose::STANDARD.encode(item.event.to_string());
        (
            "lambda",
            registry.call(
                &ctx,
                "lambda",
                "Invoke",
                json!({"FunctionName": item.arn, "InvocationType": "Event", "Payload": payload}),
            ),
        )
    } else if item.arn.starts_with("arn:aws:autoscaling:")
        && item.arn.contains(":scalingPolicy:")
        && item.arn.contains(":resource/")
    {
        // An Application Auto Scaling step policy: it reads the breach from the event.
        (
            "application-autoscaling",
            registry.call(
                &ctx,
                "application-autoscaling",
                "ExecuteScalingPolicyFromAlarm",
                json!({"PolicyARN": item.arn, "Alarm": item.event}),
            ),
        )
    } else {
        let h = history::action(
            &item.alarm,
            &item.alarm_type,
            &item.arn,
            false,
            json!({"actionState": "Failed", "stateUpdateTimestamp": now, "notificationResource": item.arn,
                   "error": "Basalt runs SNS, Lambda and Application Auto Scaling alarm actions only"}),
            now,
        );
        let _ = cw.state.complete(
            &claim,
            &[history::record(
                &format!("{}/{}", item.account, item.region),
                &h,
            )],
        );
        return;
    };
    let result = call.await;
    let scope = format!("{}/{}", item.account, item.region);
    let h = match result {
        Ok(_) => history::action(
            &item.alarm,
            &item.alarm_type,
            &item.arn,
            true,
            json!({"actionState": "Succeeded", "stateUpdateTimestamp": now,
                   "notificationResource": item.arn, "publishedMessage": item.message}),
            now,
        ),
        Err(e) if e.code == "NotImplemented" || e.status >= 500 => {
            tracing::warn!(service, action = %item.arn, error = %e.message, "alarm action pending: target service unavailable");
            let _ = cw.state.release(&claim, retry(claim.attempt));
            return;
        }
        Err(e) => history::action(
            &item.alarm,
            &item.alarm_type,
            &item.arn,
            false,
            json!({"actionState": "Failed", "stateUpdateTimestamp": now,
                   "notificationResource": item.arn, "error": e.message}),
            now,
        ),
    };
    let _ = cw.state.complete(&claim, &[history::record(&scope, &h)]);
}

/// Runs the evaluations and actions due at `now`; returns how many items ran.
pub(crate) async fn run_due(cw: &Arc<CloudWatch>, now: i64) -> usize {
    let state = cw.state.clone();
    let ticks = {
        let cw = cw.clone();
        tokio::task::spawn_blocking(move || {
            let claims = cw.state.claim(QUEUE, now, LEASE_MS, 64)?;
            for c in &claims {
                if let Err(e) = run_tick(&cw, c, now) {
                    tracing::debug!(error = %e, "alarm evaluation not recorded");
                }
            }
            Ok::<usize, StoreError>(claims.len())
        })
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or(0)
    };
    let actions = state.claim(ACTIONS, now, LEASE_MS, 16).unwrap_or_default();
    let n = actions.len();
    for claim in actions {
        deliver(cw, claim, now).await;
    }
    ticks + n
}

/// Evaluates alarms and sends actions for as long as the service lives.
pub(crate) fn start_worker(cw: Arc<CloudWatch>) {
    tokio::spawn(async move {
        loop {
            let now = cw
                .state
                .clock_ms()
                .unwrap_or_else(|_| crate::model::now_ms());
            let ran = run_due(&cw, now).await;
            if ran == 0 {
                tokio::select! {
                    _ = cw.wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            }
        }
    });
}
