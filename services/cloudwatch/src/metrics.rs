//! PutMetricData and GetMetricStatistics.

use crate::CloudWatch;
use crate::error::{combination, invalid_value, missing};
use crate::model::{
    check_unit, dimensions, f64_of, i64_of, list_of, now_ms, str_of, strings_of, time_ms, ts,
};
use crate::stats::{self, Bucket};
use basalt_core::{AwsError, RequestContext};
use basalt_store::metrics::{DataPoint, StatSet, StoredPoint};
use serde_json::{Map, Value, json};

const TWO_WEEKS_MS: i64 = 14 * 24 * 3600 * 1000;
const TWO_HOURS_MS: i64 = 2 * 3600 * 1000;
/// CloudWatch refuses values whose magnitude is beyond 2^360.
const MAX_MAGNITUDE: f64 = 2.348_542_582_773_833e108;
const MAX_DATAPOINTS: i64 = 1440;

fn check_value(v: f64, what: &str) -> Result<(), AwsError> {
    if !v.is_finite() || v.abs() > MAX_MAGNITUDE {
        let shown = if v.is_nan() {
            "NaN".to_owned()
        } else if v.is_infinite() {
            if v > 0.0 { "Infinity" } else { "-Infinity" }.to_owned()
        } else {
            v.to_string()
        };
        return Err(invalid_value(format!(
            "The value {shown} for parameter {what} is invalid."
        )));
    }
    Ok(())
}

/// One `MetricData` member as a point to store.
fn datum(
    ctx: &RequestContext,
    namespace: &str,
    d: &Value,
    i: usize,
    now: i64,
) -> Result<StoredPoint, AwsError> {
    let at = |m: &str| format!("MetricData.member.{i}.{m}");
    let metric = str_of(d, "MetricName").unwrap_or_default();
    if metric.is_empty() {
        return Err(missing(format!(
            "The parameter {} is required.",
            at("MetricName")
        )));
    }
    let dims = dimensions(list_of(d, "Dimensions"), &at("Dimensions"))?;
    let unit = str_of(d, "Unit").unwrap_or("None");
    check_unit(Some(unit), &at("Unit"))?;
    let timestamp_ms = time_ms(d, "Timestamp").unwrap_or(now);
    if timestamp_ms < now - TWO_WEEKS_MS {
        return Err(invalid_value(format!(
            "The parameter {} must specify a time within the past two weeks.",
            at("Timestamp")
        )));
    }
    if timestamp_ms > now + TWO_HOURS_MS {
        return Err(invalid_value(format!(
            "The parameter {} must specify a time no more than two hours in the future.",
            at("Timestamp")
        )));
    }
    let resolution = match i64_of(d, "StorageResolution") {
        None => None,
        Some(r @ (1 | 60)) => Some(r as u32),
        Some(r) => {
            return Err(invalid_value(format!(
                "The value {r} for parameter {} is invalid. Valid values are 1 and 60.",
                at("StorageResolution")
            )));
        }
    };
    let has_value = d.get("Value").is_some();
    let has_stats = d.get("StatisticValues").is_some();
    let has_values = d.get("Values").is_some();
    let given: Vec<&str> = [
        (has_value, "Value"),
        (has_stats, "StatisticValues"),
        (has_values, "Values"),
    ]
    .iter()
    .filter(|(g, _)| *g)
    .map(|(_, n)| *n)
    .collect();
    if given.len() > 1 {
        return Err(combination(format!(
            "The parameters {} and {} are mutually exclusive and you have specified both.",
            at(given[0]),
            at(given[1])
        )));
    }
    if d.get("Counts").is_some() && !has_values {
        return Err(combination(format!(
            "The parameter {} must be specified with {}.",
            at("Counts"),
            at("Values")
        )));
    }
    let (value, stats, values) = if has_stats {
        let s = d.get("StatisticValues").cloned().unwrap_or_default();
        let get = |m: &str| -> Result<f64, AwsError> {
            let what = at(&format!("StatisticValues.{m}"));
            let v = f64_of(&s, m)
                .ok_or_else(|| missing(format!("The parameter {what} is required.")))?;
            check_value(v, &what)?;
            Ok(v)
        };
        let set = StatSet {
            sample_count: get("SampleCount")?,
            sum: get("Sum")?,
            min: get("Minimum")?,
            max: get("Maximum")?,
        };
        if set.sample_count <= 0.0 {
            return Err(invalid_value(format!(
                "The parameter {} must be greater than 0.",
                at("StatisticValues.SampleCount")
            )));
        }
        if set.min > set.max {
            return Err(invalid_value(format!(
                "The parameter {} must be greater than or equal to {}.",
                at("StatisticValues.Maximum"),
                at("StatisticValues.Minimum")
            )));
        }
        (set.sum / set.sample_count, Some(set), None)
    } else if has_values {
        let vals = list_of(d, "Values");
        let counts = list_of(d, "Counts");
        if vals.len() > 150 {
            return Err(invalid_value(format!(
                "The collection {} must not have a size greater than 150.",
                at("Values")
            )));
        }
        if !counts.is_empty() && counts.len() != vals.len() {
            return Err(invalid_value(format!(
                "The parameters {} and {} must be of the same size.",
                at("Values"),
                at("Counts")
            )));
        }
        if vals.is_empty() {
            return Err(missing(format!(
                "The parameter {} is required.",
                at("Values")
            )));
        }
        let mut pairs = Vec::with_capacity(vals.len());
        for (j, v) in vals.iter().enumerate() {
            let v = f64_of(&json!({"v": v}), "v").unwrap_or(f64::NAN);
            check_value(v, &at(&format!("Values.member.{}", j + 1)))?;
            let c = match counts.get(j) {
                Some(c) => f64_of(&json!({"c": c}), "c").unwrap_or(f64::NAN),
                None => 1.0,
            };
            if !c.is_finite() || c < 0.0 {
                return Err(invalid_value(format!(
                    "The value {c} for parameter {} is invalid.",
                    at(&format!("Counts.member.{}", j + 1))
                )));
            }
            pairs.push((v, c));
        }
        let n: f64 = pairs.iter().map(|(_, c)| c).sum();
        let mean = if n > 0.0 {
            pairs.iter().map(|(v, c)| v * c).sum::<f64>() / n
        } else {
            0.0
        };
        (mean, None, Some(pairs))
    } else if has_value {
        let v = f64_of(d, "Value").unwrap_or(f64::NAN);
        check_value(v, &at("Value"))?;
        (v, None, None)
    } else {
        return Err(missing(format!(
            "One of the parameters {}, {} or {} is required.",
            at("Value"),
            at("StatisticValues"),
            at("Values")
        )));
    };
    Ok(StoredPoint {
        point: DataPoint {
            account_id: ctx.account_id.clone(),
            region: ctx.region.clone(),
            namespace: namespace.to_owned(),
            metric: metric.to_owned(),
            dimensions: dims,
            value,
            unit: unit.to_owned(),
            timestamp_ms,
        },
        stats,
        values,
        storage_resolution: resolution,
    })
}

pub(crate) fn check_namespace(namespace: &str) -> Result<(), AwsError> {
    if namespace.is_empty() {
        return Err(missing("The parameter Namespace is required."));
    }
    if namespace.starts_with(':') {
        return Err(invalid_value(format!(
            "The value {namespace} for parameter Namespace is invalid."
        )));
    }
    Ok(())
}

pub(crate) fn put_metric_data(
    cw: &CloudWatch,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let namespace = str_of(input, "Namespace").unwrap_or_default();
    check_namespace(namespace)?;
    if namespace.starts_with("AWS/") {
        return Err(invalid_value(format!(
            "The value {namespace} for parameter Namespace is invalid."
        )));
    }
    let data = list_of(input, "MetricData");
    if data.is_empty() {
        return Err(missing("The parameter MetricData is required."));
    }
    if data.len() > 1000 {
        return Err(invalid_value(
            "The collection MetricData must not have a size greater than 1000.",
        ));
    }
    let now = now_ms();
    let points = data
        .iter()
        .enumerate()
        .map(|(i, d)| datum(ctx, namespace, d, i + 1, now))
        .collect::<Result<Vec<_>, _>>()?;
    cw.state.batch(&cw.metrics.stored_ops(&points))?;
    Ok(json!({}))
}

/// The Period rule of CloudWatch: 1, 5, 10, 20, 30 (high resolution) or a multiple of 60.
pub(crate) fn check_period(period: i64, what: &str) -> Result<(), AwsError> {
    if period <= 0 || !(matches!(period, 1 | 5 | 10 | 20 | 30) || period % 60 == 0) {
        return Err(invalid_value(format!(
            "The parameter {what} must be a multiple of 60."
        )));
    }
    Ok(())
}

/// StartTime rounded down as CloudWatch rounds it: to the second for high-resolution periods,
/// else to the minute (data up to 15 days old), 5 minutes (up to 63 days) or the hour.
pub(crate) fn align_start(start_ms: i64, period_s: i64, now: i64) -> i64 {
    let age = now - start_ms;
    let unit_ms = if period_s < 60 {
        1000
    } else if age <= 15 * 86_400_000 {
        60_000
    } else if age <= 63 * 86_400_000 {
        300_000
    } else {
        3_600_000
    };
    start_ms.div_euclid(unit_ms) * unit_ms
}

pub(crate) fn get_metric_statistics(
    cw: &CloudWatch,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let namespace = str_of(input, "Namespace").unwrap_or_default();
    check_namespace(namespace)?;
    let metric = str_of(input, "MetricName").unwrap_or_default();
    let dims = dimensions(list_of(input, "Dimensions"), "Dimensions")?;
    let start = time_ms(input, "StartTime")
        .ok_or_else(|| missing("The parameter StartTime is required."))?;
    let end =
        time_ms(input, "EndTime").ok_or_else(|| missing("The parameter EndTime is required."))?;
    let period = i64_of(input, "Period").unwrap_or(0);
    check_period(period, "Period")?;
    let statistics = strings_of(input, "Statistics");
    let extended = strings_of(input, "ExtendedStatistics");
    if statistics.is_empty() && extended.is_empty() {
        return Err(missing(
            "The parameter Statistics or ExtendedStatistics is required.",
        ));
    }
    for s in &statistics {
        if !stats::is_basic(s) {
            return Err(invalid_value(format!(
                "The value {s} for parameter Statistics is not a valid statistic."
            )));
        }
    }
    for s in &extended {
        if stats::is_basic(s) || !stats::is_valid(s) {
            return Err(invalid_value(format!(
                "The value {s} for parameter ExtendedStatistics is not a valid extended statistic."
            )));
        }
    }
    let unit = str_of(input, "Unit");
    check_unit(unit, "Unit")?;
    if start >= end {
        return Err(invalid_value(
            "The parameter StartTime must be less than the parameter EndTime.",
        ));
    }
    let start = align_start(start, period, now_ms());
    let period_ms = period * 1000;
    let requested = (end - start + period_ms - 1) / period_ms;
    if requested > MAX_DATAPOINTS {
        return Err(combination(format!(
            "You have requested up to {} datapoints, which exceeds the limit of 1,440. You may reduce the datapoints requested by increasing Period, or decreasing the time range.",
            thousands(requested)
        )));
    }
    let scope = stats::Scope {
        metrics: &cw.metrics,
        account: &ctx.account_id,
        region: &ctx.region,
        namespace,
        metric,
        start_ms: start,
        end_ms: end,
        period_ms,
    };
    let buckets = stats::aggregate(&scope, &dims, unit)?;
    let datapoints: Vec<Value> = buckets
        .iter()
        .map(|((t, _), b)| datapoint(*t, b, &statistics, &extended))
        .collect();
    Ok(json!({"Label": metric, "Datapoints": datapoints}))
}

fn datapoint(t: i64, b: &Bucket, statistics: &[String], extended: &[String]) -> Value {
    let mut dp = Map::new();
    dp.insert("Timestamp".into(), ts(t));
    for s in statistics {
        if let Some(v) = b.stat(s) {
            dp.insert(s.clone(), json!(v));
        }
    }
    if !extended.is_empty() {
        let ext: Map<String, Value> = extended
            .iter()
            .filter_map(|s| b.stat(s).map(|v| (s.clone(), json!(v))))
            .collect();
        dp.insert("ExtendedStatistics".into(), Value::Object(ext));
    }
    dp.insert("Unit".into(), json!(b.unit));
    Value::Object(dp)
}

fn thousands(n: i64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
