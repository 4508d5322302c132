//! Alarm configuration: PutMetricAlarm, PutCompositeAlarm, DescribeAlarms,
//! DescribeAlarmsForMetric, DeleteAlarms, SetAlarmState, Enable/DisableAlarmActions.
//! Evaluation and actions are in `evaluate.rs`.

use crate::CloudWatch;
use crate::composite;
use crate::error::{alarm_not_found, combination, corrupt, invalid_format, invalid_value, missing};
use crate::evaluate;
use crate::history;
use crate::model::{
    ALARMS, check_unit, dimensions, f64_of, i64_of, list_of, now_ms, str_of, strings_of, token, ts,
    untoken,
};
use crate::stats;
use basalt_core::{AwsError, RequestContext};
use basalt_store::{StoreError, WriteOp};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

pub(crate) const STATES: &[&str] = &["OK", "ALARM", "INSUFFICIENT_DATA"];
const OPERATORS: &[&str] = &[
    "GreaterThanOrEqualToThreshold",
    "GreaterThanThreshold",
    "LessThanThreshold",
    "LessThanOrEqualToThreshold",
    "LessThanLowerOrGreaterThanUpperThreshold",
    "LessThanLowerThreshold",
    "GreaterThanUpperThreshold",
];
const MISSING: &[&str] = &["breaching", "notBreaching", "ignore", "missing"];
/// Members of PutMetricAlarm's input that describe the alarm's configuration.
const METRIC_FIELDS: &[&str] = &[
    "AlarmDescription",
    "OKActions",
    "AlarmActions",
    "InsufficientDataActions",
    "MetricName",
    "Namespace",
    "Statistic",
    "ExtendedStatistic",
    "Dimensions",
    "Period",
    "Unit",
    "EvaluationPeriods",
    "DatapointsToAlarm",
    "Threshold",
    "ComparisonOperator",
    "TreatMissingData",
    "EvaluateLowSampleCountPercentile",
    "Metrics",
    "ThresholdMetricId",
];
const COMPOSITE_FIELDS: &[&str] = &[
    "AlarmDescription",
    "OKActions",
    "AlarmActions",
    "InsufficientDataActions",
    "AlarmRule",
    "ActionsSuppressor",
    "ActionsSuppressorWaitPeriod",
    "ActionsSuppressorExtensionPeriod",
];

/// A stored alarm (metric or composite).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AlarmRec {
    pub v: u32,
    pub name: String,
    pub composite: bool,
    /// The configuration members as given (see `METRIC_FIELDS`, `COMPOSITE_FIELDS`).
    pub config: Map<String, Value>,
    pub actions_enabled: bool,
    pub state: String,
    pub reason: String,
    #[serde(default)]
    pub reason_data: Option<String>,
    pub state_updated_ms: i64,
    pub state_transitioned_ms: i64,
    pub config_updated_ms: i64,
    #[serde(default)]
    pub tags: Vec<Value>,
    /// When the current state's Auto Scaling actions were last invoked again (see
    /// `evaluate::repeat_ops`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actions_repeated_ms: Option<i64>,
}

impl AlarmRec {
    pub fn alarm_type(&self) -> &'static str {
        if self.composite {
            "CompositeAlarm"
        } else {
            "MetricAlarm"
        }
    }

    pub fn arn(&self, account: &str, region: &str) -> String {
        format!("arn:aws:cloudwatch:{region}:{account}:alarm:{}", self.name)
    }

    pub fn actions(&self, state: &str) -> Vec<String> {
        let field = match state {
            "OK" => "OKActions",
            "ALARM" => "AlarmActions",
            _ => "InsufficientDataActions",
        };
        self.config
            .get(field)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn get(&self, field: &str) -> Option<&Value> {
        self.config.get(field)
    }

    /// The alarm as DescribeAlarms returns it.
    pub fn describe(&self, account: &str, region: &str) -> Value {
        let mut d = Map::new();
        d.insert("AlarmName".into(), json!(self.name));
        d.insert("AlarmArn".into(), json!(self.arn(account, region)));
        for list in ["OKActions", "AlarmActions", "InsufficientDataActions"] {
            d.insert(list.into(), json!([]));
        }
        if !self.composite {
            d.insert("Dimensions".into(), json!([]));
        }
        for (k, v) in &self.config {
            d.insert(k.clone(), v.clone());
        }
        d.insert(
            "AlarmConfigurationUpdatedTimestamp".into(),
            ts(self.config_updated_ms),
        );
        d.insert("ActionsEnabled".into(), json!(self.actions_enabled));
        d.insert("StateValue".into(), json!(self.state));
        d.insert("StateReason".into(), json!(self.reason));
        if let Some(data) = &self.reason_data {
            d.insert("StateReasonData".into(), json!(data));
        }
        d.insert("StateUpdatedTimestamp".into(), ts(self.state_updated_ms));
        d.insert(
            "StateTransitionedTimestamp".into(),
            ts(self.state_transitioned_ms),
        );
        Value::Object(d)
    }
}

/// Writes `rec` over the stored alarm, only if that is still `raw` (a conflict otherwise).
pub(crate) fn replace_ops(
    scope: &str,
    rec: &AlarmRec,
    raw: Vec<u8>,
) -> Result<Vec<WriteOp>, AwsError> {
    let k = key(scope, &rec.name);
    Ok(vec![
        WriteOp::Check {
            table: ALARMS.into(),
            key: k.clone(),
            expected: Some(raw),
        },
        WriteOp::Put {
            table: ALARMS.into(),
            key: k,
            value: serde_json::to_vec(rec).map_err(|e| corrupt("alarm", e))?,
        },
    ])
}

pub(crate) fn key(scope: &str, name: &str) -> String {
    format!("{scope}/{name}")
}

pub(crate) fn load(
    cw: &CloudWatch,
    scope: &str,
    name: &str,
) -> Result<Option<(AlarmRec, Vec<u8>)>, AwsError> {
    match cw.state.get(ALARMS, &key(scope, name))? {
        Some(raw) => {
            let rec = serde_json::from_slice(&raw).map_err(|e| corrupt("alarm", e))?;
            Ok(Some((rec, raw)))
        }
        None => Ok(None),
    }
}

fn check_actions(input: &Value) -> Result<(), AwsError> {
    for list in ["OKActions", "AlarmActions", "InsufficientDataActions"] {
        let actions = list_of(input, list);
        if actions.len() > 5 {
            return Err(invalid_value(format!(
                "The collection {list} must not have a size greater than 5."
            )));
        }
        for a in actions {
            let a = a.as_str().unwrap_or_default();
            if !a.starts_with("arn:") {
                return Err(invalid_value(format!("Invalid arn syntax: {a}")));
            }
        }
    }
    Ok(())
}

fn check_name(input: &Value) -> Result<String, AwsError> {
    let name = str_of(input, "AlarmName").unwrap_or_default();
    if name.is_empty() {
        return Err(missing("The parameter AlarmName is required."));
    }
    if name.len() > 255 {
        return Err(invalid_value(
            "The parameter AlarmName must not be longer than 255 characters.",
        ));
    }
    Ok(name.to_owned())
}

fn validate_metric_alarm(input: &Value) -> Result<(), AwsError> {
    check_actions(input)?;
    let has_metrics = input.get("Metrics").is_some();
    for single in [
        "MetricName",
        "Namespace",
        "Statistic",
        "ExtendedStatistic",
        "Dimensions",
        "Period",
        "Unit",
    ] {
        if has_metrics && input.get(single).is_some() {
            return Err(combination(format!(
                "The parameters {single} and Metrics are mutually exclusive and you have specified both."
            )));
        }
    }
    let evaluation_periods = i64_of(input, "EvaluationPeriods")
        .ok_or_else(|| missing("The parameter EvaluationPeriods is required."))?;
    if evaluation_periods < 1 {
        return Err(invalid_value(
            "The parameter EvaluationPeriods must be greater than or equal to 1.",
        ));
    }
    let op = str_of(input, "ComparisonOperator")
        .ok_or_else(|| missing("The parameter ComparisonOperator is required."))?;
    if !OPERATORS.contains(&op) {
        return Err(invalid_value(format!(
            "The value {op} for parameter ComparisonOperator is invalid."
        )));
    }
    let anomaly = op.contains("Lower") || op.contains("Upper");
    if anomaly {
        if input.get("ThresholdMetricId").is_none() {
            return Err(missing("The parameter ThresholdMetricId is required."));
        }
    } else {
        if input.get("ThresholdMetricId").is_some() {
            return Err(combination(
                "The parameter ThresholdMetricId can only be used with anomaly detection comparison operators.",
            ));
        }
        match f64_of(input, "Threshold") {
            None => return Err(missing("The parameter Threshold is required.")),
            Some(t) if !t.is_finite() => {
                return Err(invalid_value(
                    "The parameter Threshold must be a finite number.",
                ));
            }
            Some(_) => {}
        }
    }
    if let Some(m) = i64_of(input, "DatapointsToAlarm")
        && (m < 1 || m > evaluation_periods)
    {
        return Err(invalid_value(
            "DatapointsToAlarm must be greater than 0 and less than or equal to EvaluationPeriods.",
        ));
    }
    if let Some(t) = str_of(input, "TreatMissingData")
        && !MISSING.contains(&t)
    {
        return Err(invalid_value(format!(
            "The value {t} for parameter TreatMissingData is invalid. Valid values are breaching, notBreaching, ignore and missing."
        )));
    }
    if let Some(e) = str_of(input, "EvaluateLowSampleCountPercentile")
        && !e.is_empty()
        && !matches!(e, "evaluate" | "ignore")
    {
        return Err(invalid_value(format!(
            "The value {e} for parameter EvaluateLowSampleCountPercentile is invalid."
        )));
    }
    let period = if has_metrics {
        let queries = list_of(input, "Metrics");
        let returning = queries
            .iter()
            .filter(|q| q.get("ReturnData").and_then(Value::as_bool).unwrap_or(true))
            .count();
        if returning != 1 {
            return Err(invalid_value(
                "Exactly one element of the metrics list should return data.",
            ));
        }
        // Parse now, so that a bad expression is refused at creation.
        crate::data::check_queries(queries, "Metrics")?;
        queries
            .iter()
            .filter_map(|q| {
                q.get("MetricStat")
                    .and_then(|m| i64_of(m, "Period"))
                    .or_else(|| i64_of(q, "Period"))
            })
            .min()
            .unwrap_or(60)
    } else {
        let namespace = str_of(input, "Namespace")
            .ok_or_else(|| missing("The parameter Namespace is required."))?;
        crate::metrics::check_namespace(namespace)?;
        if str_of(input, "MetricName").is_none_or(str::is_empty) {
            return Err(missing("The parameter MetricName is required."));
        }
        match (
            str_of(input, "Statistic"),
            str_of(input, "ExtendedStatistic"),
        ) {
            (Some(_), Some(_)) => {
                return Err(combination(
                    "The parameters Statistic and ExtendedStatistic are mutually exclusive and you have specified both.",
                ));
            }
            (None, None) => {
                return Err(missing(
                    "The parameter Statistic or ExtendedStatistic is required.",
                ));
            }
            (Some(s), None) if !stats::is_basic(s) => {
                return Err(invalid_value(format!(
                    "The value {s} for parameter Statistic is invalid."
                )));
            }
            (None, Some(s)) if stats::is_basic(s) || !stats::is_valid(s) => {
                return Err(invalid_value(format!(
                    "The value {s} for parameter ExtendedStatistic is invalid."
                )));
            }
            _ => {}
        }
        dimensions(list_of(input, "Dimensions"), "Dimensions")?;
        check_unit(str_of(input, "Unit"), "Unit")?;
        let period =
            i64_of(input, "Period").ok_or_else(|| missing("The parameter Period is required."))?;
        if !(matches!(period, 10 | 30) || (period >= 60 && period % 60 == 0)) {
            return Err(invalid_value("Period must be 10, 30 or a multiple of 60."));
        }
        period
    };
    if period * evaluation_periods > 7 * 86_400 {
        return Err(invalid_value(
            "The evaluation period multiplied by the number of periods must not exceed 7 days (604800 seconds).",
        ));
    }
    Ok(())
}

/// Stores a new or updated alarm, records its history and schedules its evaluation.
fn save(
    cw: &CloudWatch,
    ctx: &RequestContext,
    name: &str,
    composite: bool,
    config: Map<String, Value>,
    input: &Value,
) -> Result<(), AwsError> {
    let scope = ctx.scope();
    let now = now_ms();
    for _ in 0..5 {
        let existing = load(cw, &scope, name)?;
        if let Some((old, _)) = &existing
            && old.composite != composite
        {
            return Err(invalid_value(format!(
                "An alarm named {name} already exists as a {}.",
                old.alarm_type()
            )));
        }
        let rec = match &existing {
            Some((old, _)) => AlarmRec {
                config: config.clone(),
                actions_enabled: input
                    .get("ActionsEnabled")
                    .and_then(Value::as_bool)
                    .unwrap_or(true),
                config_updated_ms: now,
                tags: old.tags.clone(),
                ..old.clone()
            },
            None => AlarmRec {
                v: 1,
                name: name.to_owned(),
                composite,
                config: config.clone(),
                actions_enabled: input
                    .get("ActionsEnabled")
                    .and_then(Value::as_bool)
                    .unwrap_or(true),
                state: "INSUFFICIENT_DATA".into(),
                reason: "Unchecked: Initial alarm creation".into(),
                reason_data: None,
                state_updated_ms: now,
                state_transitioned_ms: now,
                config_updated_ms: now,
                tags: list_of(input, "Tags").to_vec(),
                actions_repeated_ms: None,
            },
        };
        let describe = rec.describe(&ctx.account_id, &ctx.region);
        let hist = match &existing {
            Some((old, _)) => history::config_updated(
                name,
                rec.alarm_type(),
                &old.describe(&ctx.account_id, &ctx.region),
                &describe,
                now,
            ),
            None => history::config_created(name, rec.alarm_type(), &describe, now),
        };
        let k = key(&scope, name);
        let ops = vec![
            WriteOp::Check {
                table: ALARMS.into(),
                key: k.clone(),
                expected: existing.map(|(_, raw)| raw),
            },
            WriteOp::Put {
                table: ALARMS.into(),
                key: k,
                value: serde_json::to_vec(&rec).map_err(|e| corrupt("alarm", e))?,
            },
            history::record(&scope, &hist),
            evaluate::schedule(&ctx.account_id, &ctx.region, name, now),
        ];
        match cw.state.batch(&ops) {
            Ok(()) => {
                cw.wake.notify_one();
                return Ok(());
            }
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(AwsError::new(
        429,
        "ConcurrentModificationException",
        "The alarm is being modified concurrently. Try again.",
    ))
}

fn config_of(input: &Value, fields: &[&str]) -> Map<String, Value> {
    fields
        .iter()
        .filter_map(|f| input.get(*f).map(|v| ((*f).to_owned(), v.clone())))
        .collect()
}

pub(crate) fn put_metric_alarm(
    cw: &CloudWatch,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let name = check_name(input)?;
    validate_metric_alarm(input)?;
    save(
        cw,
        ctx,
        &name,
        false,
        config_of(input, METRIC_FIELDS),
        input,
    )?;
    Ok(json!({}))
}

pub(crate) fn put_composite_alarm(
    cw: &CloudWatch,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let name = check_name(input)?;
    check_actions(input)?;
    let rule = str_of(input, "AlarmRule")
        .ok_or_else(|| missing("The parameter AlarmRule is required."))?;
    let parsed = composite::parse(rule).map_err(invalid_value)?;
    if composite::children(&parsed).contains(&name) {
        return Err(invalid_value(format!(
            "The alarm rule of {name} refers to the alarm itself."
        )));
    }
    save(
        cw,
        ctx,
        &name,
        true,
        config_of(input, COMPOSITE_FIELDS),
        input,
    )?;
    Ok(json!({}))
}

/// Every alarm of the caller's scope, in name order.
pub(crate) fn all(cw: &CloudWatch, scope: &str) -> Result<Vec<AlarmRec>, AwsError> {
    let prefix = format!("{scope}/");
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = cw.state.scan(ALARMS, &prefix, after.as_deref(), 1000)?;
        let done = page.len() < 1000;
        after = page.last().map(|(k, _)| k.clone());
        for (_, raw) in page {
            out.push(serde_json::from_slice(&raw).map_err(|e| corrupt("alarm", e))?);
        }
        if done {
            return Ok(out);
        }
    }
}

pub(crate) fn describe(
    cw: &CloudWatch,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let names = strings_of(input, "AlarmNames");
    let prefix = str_of(input, "AlarmNamePrefix");
    if !names.is_empty() && prefix.is_some() {
        return Err(combination(
            "The parameters AlarmNames and AlarmNamePrefix are mutually exclusive and you have specified both.",
        ));
    }
    let state = str_of(input, "StateValue");
    let action_prefix = str_of(input, "ActionPrefix");
    let types = strings_of(input, "AlarmTypes");
    let (want_metric, want_composite) = if types.is_empty() {
        (true, false)
    } else {
        (
            types.iter().any(|t| t == "MetricAlarm"),
            types.iter().any(|t| t == "CompositeAlarm"),
        )
    };
    let max = i64_of(input, "MaxRecords").unwrap_or(100);
    if !(1..=100).contains(&max) {
        return Err(invalid_value(
            "The parameter MaxRecords must be between 1 and 100.",
        ));
    }
    let after = match str_of(input, "NextToken") {
        Some(t) => Some(untoken(t)?),
        None => None,
    };
    let scope = ctx.scope();
    let mut alarms = all(cw, &scope)?;
    // Children / parents of a composite alarm.
    if let Some(parent) = str_of(input, "ChildrenOfAlarmName") {
        let children = match load(cw, &scope, parent)? {
            Some((p, _)) if p.composite => p
                .get("AlarmRule")
                .and_then(Value::as_str)
                .and_then(|r| composite::parse(r).ok())
                .map(|r| composite::children(&r))
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        alarms.retain(|a| children.contains(&a.name));
    }
    if let Some(child) = str_of(input, "ParentsOfAlarmName") {
        alarms.retain(|a| {
            a.composite
                && a.get("AlarmRule")
                    .and_then(Value::as_str)
                    .and_then(|r| composite::parse(r).ok())
                    .is_some_and(|r| composite::children(&r).iter().any(|c| c == child))
        });
    }
    let mut metric = Vec::new();
    let mut composite_out = Vec::new();
    let mut next = None;
    let mut count = 0;
    for a in alarms {
        if after.as_ref().is_some_and(|t| &a.name <= t)
            || (!names.is_empty() && !names.contains(&a.name))
            || prefix.is_some_and(|p| !a.name.starts_with(p))
            || state.is_some_and(|s| s != a.state)
            || (a.composite && !want_composite)
            || (!a.composite && !want_metric)
        {
            continue;
        }
        if let Some(p) = action_prefix {
            let any = ["OK", "ALARM", "INSUFFICIENT_DATA"]
                .iter()
                .flat_map(|s| a.actions(s))
                .any(|x| x.starts_with(p));
            if !any {
                continue;
            }
        }
        if count == max {
            next = Some(token(&last_name(&metric, &composite_out)));
            break;
        }
        count += 1;
        let d = a.describe(&ctx.account_id, &ctx.region);
        if a.composite {
            composite_out.push((a.name.clone(), d));
        } else {
            metric.push((a.name.clone(), d));
        }
    }
    let mut out = json!({
        "MetricAlarms": metric.into_iter().map(|(_, d)| d).collect::<Vec<_>>(),
        "CompositeAlarms": composite_out.into_iter().map(|(_, d)| d).collect::<Vec<_>>(),
    });
    if let Some(t) = next {
        out["NextToken"] = json!(t);
    }
    Ok(out)
}

fn last_name(a: &[(String, Value)], b: &[(String, Value)]) -> String {
    let x = a.last().map(|(n, _)| n.as_str()).unwrap_or_default();
    let y = b.last().map(|(n, _)| n.as_str()).unwrap_or_default();
    x.max(y).to_owned()
}

pub(crate) fn describe_for_metric(
    cw: &CloudWatch,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let namespace = str_of(input, "Namespace").unwrap_or_default();
    let metric = str_of(input, "MetricName").unwrap_or_default();
    let dims = dimensions(list_of(input, "Dimensions"), "Dimensions")?;
    let filter_dims = input.get("Dimensions").is_some();
    let alarms: Vec<Value> = all(cw, &ctx.scope())?
        .into_iter()
        .filter(|a| !a.composite)
        .filter(|a| {
            let same = |field: &str| match str_of(input, field) {
                Some(want) => a.get(field).and_then(Value::as_str) == Some(want),
                None => true,
            };
            let period_ok = i64_of(input, "Period")
                .is_none_or(|p| a.get("Period").and_then(Value::as_i64) == Some(p));
            let dims_ok = !filter_dims
                || a.get("Dimensions")
                    .and_then(Value::as_array)
                    .and_then(|d| dimensions(d, "Dimensions").ok())
                    .unwrap_or_default()
                    == dims;
            a.get("Namespace").and_then(Value::as_str) == Some(namespace)
                && a.get("MetricName").and_then(Value::as_str) == Some(metric)
                && same("Statistic")
                && same("ExtendedStatistic")
                && same("Unit")
                && period_ok
                && dims_ok
        })
        .map(|a| a.describe(&ctx.account_id, &ctx.region))
        .collect();
    Ok(json!({"MetricAlarms": alarms}))
}

pub(crate) fn delete(
    cw: &CloudWatch,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let names = strings_of(input, "AlarmNames");
    if names.len() > 100 {
        return Err(invalid_value(
            "The collection AlarmNames must not have a size greater than 100.",
        ));
    }
    let scope = ctx.scope();
    let now = now_ms();
    let mut ops = Vec::new();
    let mut missing_names = Vec::new();
    for name in &names {
        let Some((rec, _)) = load(cw, &scope, name)? else {
            missing_names.push(name.clone());
            continue;
        };
        ops.push(WriteOp::Delete {
            table: ALARMS.into(),
            key: key(&scope, name),
        });
        ops.push(history::record(
            &scope,
            &history::config_deleted(
                name,
                rec.alarm_type(),
                &rec.describe(&ctx.account_id, &ctx.region),
                now,
            ),
        ));
    }
    if !missing_names.is_empty() {
        return Err(alarm_not_found(format!(
            "{} of the alarms you specified do not exist: {}",
            missing_names.len(),
            missing_names.join(", ")
        )));
    }
    cw.state.batch(&ops)?;
    Ok(json!({}))
}

/// Enables or disables the actions of the named alarms (unknown names are skipped).
pub(crate) fn set_actions(
    cw: &CloudWatch,
    ctx: &RequestContext,
    input: &Value,
    enabled: bool,
) -> Result<Value, AwsError> {
    let scope = ctx.scope();
    for name in strings_of(input, "AlarmNames") {
        for _ in 0..5 {
            let Some((mut rec, raw)) = load(cw, &scope, &name)? else {
                break;
            };
            rec.actions_enabled = enabled;
            let ops = replace_ops(&scope, &rec, raw)?;
            match cw.state.batch(&ops) {
                Err(StoreError::Conflict) => continue,
                other => {
                    other?;
                    break;
                }
            }
        }
    }
    Ok(json!({}))
}

pub(crate) fn set_state(
    cw: &CloudWatch,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let name = check_name(input)?;
    let state = str_of(input, "StateValue")
        .ok_or_else(|| missing("The parameter StateValue is required."))?;
    if !STATES.contains(&state) {
        return Err(invalid_value(format!(
            "The value {state} for parameter StateValue is invalid."
        )));
    }
    let reason = str_of(input, "StateReason")
        .ok_or_else(|| missing("The parameter StateReason is required."))?;
    let data = str_of(input, "StateReasonData");
    if let Some(d) = data
        && serde_json::from_str::<Value>(d).is_err()
    {
        return Err(invalid_format("Unable to parse StateReasonData as JSON."));
    }
    let scope = ctx.scope();
    for _ in 0..5 {
        let Some((rec, raw)) = load(cw, &scope, &name)? else {
            return Err(alarm_not_found(format!("Alarm {name} not found")));
        };
        let mut ops = evaluate::transition_ops(
            &scope,
            &ctx.account_id,
            &ctx.region,
            &rec,
            raw,
            state,
            reason,
            data.map(str::to_owned),
            now_ms(),
        )?;
        if state != rec.state {
            ops.extend(evaluate::parent_ticks(
                cw,
                &ctx.account_id,
                &ctx.region,
                &name,
                now_ms(),
            )?);
        }
        match cw.state.batch(&ops) {
            Ok(()) => {
                cw.wake.notify_one();
                return Ok(json!({}));
            }
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(AwsError::new(
        429,
        "ConcurrentModificationException",
        "The alarm is being modified concurrently. Try again.",
    ))
}
