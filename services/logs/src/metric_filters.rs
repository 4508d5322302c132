//! Metric filters: Put/Describe/DeleteMetricFilter, TestMetricFilter, and the data points that
//! ingested events publish to CloudWatch.
//!
//! A filter lives in its group's record. Every event a write stores (PutLogEvents, and Lambda's
//! output through [`crate::Logs::append`]) is tested against its group's filters; a match
//! publishes the transformation's `metricValue` (a number, or a field of the event: `$.path`
//! for `{ … }` patterns, `$name` or `$N` for `[ … ]` ones) with its dimensions, and an event
//! that does not match publishes the `defaultValue` when there is one ("If logs are ingested
//! during a one-minute time period but no matches are found, the value specified for Default
//! Value is reported … the Default Value of 0 is used for both log records", the old syntax
//! page's "Setting How the Metric Value Changes When Matches Are Found"). Values are aggregated
//! per series and minute (CloudWatch Logs reports metric filters' values every minute) into one
//! point that keeps each value and its count, so every statistic stays exact; the points are
//! written through `basalt_store::metrics` (points and series index) in the transaction that
//! stores the events.

use crate::model::{self, GROUPS, GroupRec};
use crate::{Logs, invalid, not_found, now_ms, str_of};
use basalt_core::{AwsError, RequestContext};
use basalt_logpattern::{FilterPattern, JsonSelector};
use basalt_store::WriteOp;
use basalt_store::metrics::{DataPoint, StoredPoint};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// "The maximum number of metric filters that can be associated with a log group is 100."
const MAX_FILTERS: usize = 100;
/// "One metric filter can include as many as three dimensions."
const MAX_DIMENSIONS: usize = 3;
/// DescribeMetricFilters' `limit`: 1 to 50, 50 by default.
const MAX_PAGE: usize = 50;
const MINUTE_MS: i64 = 60_000;

/// A transformation as the API spells it, so that it is stored and described as given.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Transformation {
    pub metric_name: String,
    pub metric_namespace: String,
    pub metric_value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_value: Option<f64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dimensions: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct MetricFilter {
    pub name: String,
    pub pattern: String,
    pub transformation: Transformation,
    pub created: i64,
    #[serde(default)]
    pub on_transformed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_selection: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_dimensions: Option<Vec<String>>,
}

/// Where a published value or a dimension's value comes from.
#[derive(Debug, Clone, PartialEq)]
enum Source {
    Number(f64),
    /// `$.path` of a JSON event.
    Json(JsonSelector),
    /// `$name` or `$N` of a space-delimited event, as its extracted values key it.
    Field(String),
}

impl Source {
    /// Parses a field reference (`$.path`, `$name`, `$N`) that `pattern` can extract, or with
    /// `numbers`, a number.
    fn parse(raw: &str, pattern: &FilterPattern, numbers: bool) -> Option<Source> {
        let raw = raw.trim();
        if numbers
            && let Ok(v) = raw.parse::<f64>()
            && v.is_finite()
        {
            return Some(Source::Number(v));
        }
        let rest = raw.strip_prefix('$')?;
        if rest.starts_with('.') || rest.starts_with('[') {
            if !pattern.is_json() {
                return None;
            }
            return JsonSelector::parse(raw).ok().map(Source::Json);
        }
        let named = pattern.field_names().contains(&rest);
        let positional = !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit());
        (pattern.is_delimited() && (named || positional)).then(|| Source::Field(raw.to_owned()))
    }

    /// The text this source gives for an event, given what the pattern extracted from it and
    /// the event parsed as JSON (parsed on first need).
    fn text(
        &self,
        extracted: &[(String, String)],
        message: &str,
        json: &mut Option<Option<Value>>,
    ) -> Option<String> {
        match self {
            Source::Number(v) => Some(v.to_string()),
            Source::Field(key) => extracted
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone()),
            Source::Json(sel) => {
                let root = json.get_or_insert_with(|| serde_json::from_str(message).ok());
                root.as_ref().and_then(|r| sel.scalar_in(r))
            }
        }
    }
}

/// A filter ready to test events with.
struct Compiled<'a> {
    filter: &'a MetricFilter,
    pattern: FilterPattern,
    value: Source,
    dimensions: Vec<(&'a str, Source)>,
}

/// Checks a filter as PutMetricFilter does and compiles it.
fn compile(f: &MetricFilter) -> Result<Compiled<'_>, AwsError> {
    let pattern = FilterPattern::parse(&f.pattern).map_err(|e| invalid(e.to_string()))?;
    let t = &f.transformation;
    let value = Source::parse(&t.metric_value, &pattern, true).ok_or_else(|| {
        invalid(format!(
            "Invalid metric value '{}': a metric value is a number, or a field the filter pattern extracts ($.selector for JSON patterns, $field for space-delimited ones).",
            t.metric_value
        ))
    })?;
    if !t.dimensions.is_empty() {
        if !(pattern.is_json() || pattern.is_delimited()) {
            return Err(invalid(
                "The specified filter pattern does not support dimensions",
            ));
        }
        if t.default_value.is_some() {
            return Err(invalid(
                "Invalid metric transformation: dimensions and default value are mutually exclusive properties",
            ));
        }
        if t.dimensions.len() > MAX_DIMENSIONS {
            return Err(invalid(format!(
                "A metric transformation can have at most {MAX_DIMENSIONS} dimensions."
            )));
        }
    }
    let mut dimensions = Vec::with_capacity(t.dimensions.len());
    for (name, raw) in &t.dimensions {
        if name.trim().is_empty() || name.starts_with(':') || !name.is_ascii() {
            return Err(invalid(format!("Invalid dimension name '{name}'.")));
        }
        let source = Source::parse(raw, &pattern, false).ok_or_else(|| {
            invalid(format!(
                "Invalid dimension value '{raw}' for dimension '{name}': a dimension's value is a field the filter pattern extracts ($.selector for JSON patterns, $field for space-delimited ones)."
            ))
        })?;
        dimensions.push((name.as_str(), source));
    }
    Ok(Compiled {
        filter: f,
        pattern,
        value,
        dimensions,
    })
}

/// One series of one minute: `(value, count)` of what it published.
type Series = (String, String, BTreeMap<String, String>, String, i64);

/// The data points that newly stored events (`(timestamp, seq, message)`) publish through
/// `filters`, aggregated per series and minute.
pub(crate) fn points(
    scope: &str,
    filters: &[MetricFilter],
    events: &[(i64, u64, &str)],
) -> Vec<StoredPoint> {
    if filters.is_empty() || events.is_empty() {
        return Vec::new();
    }
    let Some((account, region)) = scope.split_once('/') else {
        return Vec::new();
    };
    // Filters stored before a check existed, or broken since, publish nothing.
    let compiled: Vec<Compiled<'_>> = filters.iter().filter_map(|f| compile(f).ok()).collect();
    let mut acc: BTreeMap<Series, Vec<(f64, f64)>> = BTreeMap::new();
    for &(ts, _, message) in events {
        let mut json = None;
        for c in &compiled {
            let t = &c.filter.transformation;
            let (value, dims) = match c.pattern.extract(message) {
                Some(extracted) => {
                    let Some(v) = c
                        .value
                        .text(&extracted, message, &mut json)
                        .and_then(|s| s.trim().parse::<f64>().ok())
                        .filter(|v| v.is_finite())
                    else {
                        continue;
                    };
                    // A dimension is published only when the event has its field.
                    let dims: BTreeMap<String, String> = c
                        .dimensions
                        .iter()
                        .filter_map(|(name, src)| {
                            src.text(&extracted, message, &mut json)
                                .filter(|s| !s.is_empty())
                                .map(|s| ((*name).to_owned(), s))
                        })
                        .collect();
                    (v, dims)
                }
                None => match t.default_value {
                    Some(d) if d.is_finite() => (d, BTreeMap::new()),
                    _ => continue,
                },
            };
            let key = (
                t.metric_namespace.clone(),
                t.metric_name.clone(),
                dims,
                t.unit.clone().unwrap_or_else(|| "None".into()),
                ts.div_euclid(MINUTE_MS) * MINUTE_MS,
            );
            let values = acc.entry(key).or_default();
            match values.iter_mut().find(|(v, _)| *v == value) {
                Some((_, c)) => *c += 1.0,
                None => values.push((value, 1.0)),
            }
        }
    }
    acc.into_iter()
        .map(|((namespace, metric, dimensions, unit, minute), values)| {
            let (sum, count) = values
                .iter()
                .fold((0.0, 0.0), |(s, n), (v, c)| (s + v * c, n + c));
            StoredPoint {
                point: DataPoint {
                    account_id: account.to_owned(),
                    region: region.to_owned(),
                    namespace,
                    metric,
                    dimensions,
                    value: sum / count,
                    unit,
                    timestamp_ms: minute,
                },
                stats: None,
                values: Some(values),
                storage_resolution: None,
            }
        })
        .collect()
}

/// Reads a group and its stored bytes (for the write's precondition).
fn load_group(logs: &Logs, scope: &str, group: &str) -> Result<(GroupRec, Vec<u8>), AwsError> {
    let raw = logs
        .state
        .get(GROUPS, &model::group_key(scope, group))?
        .ok_or_else(|| not_found("The specified log group does not exist."))?;
    let rec = serde_json::from_slice(&raw).map_err(|e| AwsError::internal(e.to_string()))?;
    Ok((rec, raw))
}

/// Applies `change` to the group's filters and stores the group, re-reading it if another
/// writer changed it meanwhile.
fn update_group(
    logs: &Logs,
    scope: &str,
    group: &str,
    mut change: impl FnMut(&mut Vec<MetricFilter>) -> Result<(), AwsError>,
) -> Result<(), AwsError> {
    let key = model::group_key(scope, group);
    for _ in 0..16 {
        let (mut rec, raw) = load_group(logs, scope, group)?;
        change(&mut rec.metric_filters)?;
        let value = serde_json::to_vec(&rec).map_err(|e| AwsError::internal(e.to_string()))?;
        match logs.state.batch(&[
            WriteOp::Check {
                table: GROUPS.into(),
                key: key.clone(),
                expected: Some(raw),
            },
            WriteOp::Put {
                table: GROUPS.into(),
                key: key.clone(),
                value,
            },
        ]) {
            Ok(()) => return Ok(()),
            Err(basalt_store::StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(AwsError::new(
        400,
        "OperationAbortedException",
        "Multiple requests to modify the same resource were in conflict. Please retry your request.",
    ))
}

pub(crate) fn put(logs: &Logs, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let group = str_of(input, "logGroupName").unwrap_or_default();
    let transformations = input
        .get("metricTransformations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let [t] = transformations.as_slice() else {
        return Err(invalid(
            "1 validation error detected: Value at 'metricTransformations' failed to satisfy constraint: Member must have length less than or equal to 1",
        ));
    };
    let transformation: Transformation = serde_json::from_value(t.clone())
        .map_err(|e| invalid(format!("Invalid metric transformation: {e}")))?;
    let f = MetricFilter {
        name: str_of(input, "filterName").unwrap_or_default().to_owned(),
        pattern: str_of(input, "filterPattern")
            .unwrap_or_default()
            .to_owned(),
        transformation,
        created: now_ms(),
        on_transformed: input
            .get("applyOnTransformedLogs")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        field_selection: str_of(input, "fieldSelectionCriteria").map(str::to_owned),
        system_dimensions: input
            .get("emitSystemFieldDimensions")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            }),
    };
    compile(&f)?;
    update_group(logs, &ctx.scope(), group, |filters| {
        let full = filters.len() >= MAX_FILTERS;
        match filters.iter_mut().find(|x| x.name == f.name) {
            Some(existing) => {
                // An update keeps the filter's creation time.
                *existing = MetricFilter {
                    created: existing.created,
                    ..f.clone()
                };
            }
            None if full => {
                return Err(AwsError::new(
                    400,
                    "LimitExceededException",
                    "Resource limit exceeded.",
                ));
            }
            None => filters.push(f.clone()),
        }
        Ok(())
    })?;
    Ok(json!({}))
}

pub(crate) fn delete(logs: &Logs, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let group = str_of(input, "logGroupName").unwrap_or_default();
    let name = str_of(input, "filterName").unwrap_or_default();
    update_group(logs, &ctx.scope(), group, |filters| {
        let before = filters.len();
        filters.retain(|f| f.name != name);
        if filters.len() == before {
            return Err(not_found("The specified metric filter does not exist."));
        }
        Ok(())
    })?;
    Ok(json!({}))
}

fn describe_one(group: &str, f: &MetricFilter) -> Value {
    let mut v = json!({
        "filterName": f.name,
        "filterPattern": f.pattern,
        "metricTransformations": [f.transformation],
        "creationTime": f.created,
        "logGroupName": group,
        "applyOnTransformedLogs": f.on_transformed,
    });
    if let Some(c) = &f.field_selection {
        v["fieldSelectionCriteria"] = json!(c);
    }
    if let Some(d) = &f.system_dimensions {
        v["emitSystemFieldDimensions"] = json!(d);
    }
    v
}

pub(crate) fn describe(
    logs: &Logs,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let scope = ctx.scope();
    let metric = str_of(input, "metricName");
    let namespace = str_of(input, "metricNamespace");
    if metric.is_some() != namespace.is_some() {
        return Err(invalid(
            "metricName and metricNamespace must be specified together.",
        ));
    }
    let limit = input
        .get("limit")
        .and_then(Value::as_u64)
        .map_or(MAX_PAGE, |l| (l as usize).clamp(1, MAX_PAGE));
    // (group, filter) pairs in order: by group name, then filter name.
    let mut all: Vec<(String, MetricFilter)> = Vec::new();
    match str_of(input, "logGroupName") {
        Some(group) => {
            let (rec, _) = load_group(logs, &scope, group)?;
            // "CloudWatch Logs uses the value that you set here only if you also include the
            // logGroupName parameter in your request."
            let prefix = str_of(input, "filterNamePrefix").unwrap_or_default();
            all.extend(
                rec.metric_filters
                    .into_iter()
                    .filter(|f| f.name.starts_with(prefix))
                    .map(|f| (group.to_owned(), f)),
            );
        }
        None => {
            let key_prefix = model::group_key(&scope, "");
            let mut after: Option<String> = None;
            loop {
                let page = logs
                    .state
                    .scan(GROUPS, &key_prefix, after.as_deref(), 500)?;
                let done = page.len() < 500;
                after = page.last().map(|(k, _)| k.clone());
                for (key, raw) in page {
                    let Ok(rec) = serde_json::from_slice::<GroupRec>(&raw) else {
                        continue;
                    };
                    let group = &key[key_prefix.len()..];
                    all.extend(
                        rec.metric_filters
                            .into_iter()
                            .map(|f| (group.to_owned(), f)),
                    );
                }
                if done {
                    break;
                }
            }
        }
    }
    if let (Some(m), Some(ns)) = (metric, namespace) {
        all.retain(|(_, f)| {
            f.transformation.metric_name == m && f.transformation.metric_namespace == ns
        });
    }
    all.sort_by(|a, b| (&a.0, &a.1.name).cmp(&(&b.0, &b.1.name)));
    let start = match str_of(input, "nextToken") {
        Some(t) => {
            let raw = crate::untoken(t)?;
            let (g, n) = raw
                .split_once('\u{0}')
                .ok_or_else(|| invalid("The specified nextToken is invalid."))?;
            all.partition_point(|(group, f)| (group.as_str(), f.name.as_str()) <= (g, n))
        }
        None => 0,
    };
    let page: Vec<&(String, MetricFilter)> = all[start..].iter().take(limit).collect();
    let mut out = json!({
        "metricFilters": page.iter().map(|(g, f)| describe_one(g, f)).collect::<Vec<_>>(),
    });
    if start + page.len() < all.len()
        && let Some((g, f)) = page.last()
    {
        out["nextToken"] = json!(crate::token(&format!("{g}\u{0}{}", f.name)));
    }
    Ok(out)
}

/// TestMetricFilter: the messages that match, numbered from 1, with what the pattern extracts.
pub(crate) fn test(input: &Value) -> Result<Value, AwsError> {
    let pattern = FilterPattern::parse(str_of(input, "filterPattern").unwrap_or_default())
        .map_err(|e| invalid(e.to_string()))?;
    let messages = input
        .get("logEventMessages")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let matches: Vec<Value> = messages
        .iter()
        .enumerate()
        .filter_map(|(i, m)| {
            let msg = m.as_str()?;
            let extracted = pattern.extract(msg)?;
            let values: serde_json::Map<String, Value> = extracted
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            Some(json!({
                "eventNumber": i + 1,
                "eventMessage": msg,
                "extractedValues": values,
            }))
        })
        .collect();
    Ok(json!({ "matches": matches }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(pattern: &str, t: Value) -> MetricFilter {
        MetricFilter {
            name: "f".into(),
            pattern: pattern.into(),
            transformation: serde_json::from_value(t).unwrap(),
            created: 0,
            on_transformed: false,
            field_selection: None,
            system_dimensions: None,
        }
    }

    fn check(pattern: &str, t: Value) -> Result<(), String> {
        compile(&filter(pattern, t))
            .map(|_| ())
            .map_err(|e| e.message)
    }

    const MIN: i64 = 1_700_000_040_000;

    type Dims = Vec<(String, String)>;

    #[test]
    fn counting_matches_with_a_literal_value() {
        let f = filter(
            "ERROR",
            json!({"metricName": "Errors", "metricNamespace": "App", "metricValue": "1"}),
        );
        let events = [
            (MIN + 1, 0, "ERROR one"),
            (MIN + 2, 1, "INFO two"),
            (MIN + 3, 2, "ERROR three"),
            (MIN + 61_000, 3, "ERROR next minute"),
        ];
        let pts = points("123/us-east-1", &[f], &events);
        assert_eq!(pts.len(), 2, "one point per minute");
        let p = &pts[0];
        assert_eq!(p.point.account_id, "123");
        assert_eq!(p.point.region, "us-east-1");
        assert_eq!(
            (p.point.namespace.as_str(), p.point.metric.as_str()),
            ("App", "Errors")
        );
        assert_eq!(p.point.timestamp_ms, MIN);
        assert_eq!(p.values.as_deref(), Some(&[(1.0, 2.0)][..]));
        assert_eq!(p.point.value, 1.0);
        assert_eq!(p.point.unit, "None");
        assert!(p.point.dimensions.is_empty());
        assert_eq!(pts[1].point.timestamp_ms, MIN + 60_000);
    }

    #[test]
    fn default_value_is_published_for_each_event_that_does_not_match() {
        let f = filter(
            "ERROR",
            json!({"metricName": "Errors", "metricNamespace": "App", "metricValue": "1", "defaultValue": 0.0, "unit": "Count"}),
        );
        let events = [(MIN, 0, "ERROR"), (MIN, 1, "fine"), (MIN, 2, "fine too")];
        let pts = points("a/r", &[f], &events);
        assert_eq!(pts.len(), 1);
        let mut values = pts[0].values.clone().unwrap();
        values.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert_eq!(values, [(0.0, 2.0), (1.0, 1.0)]);
        assert_eq!(pts[0].point.unit, "Count");
    }

    #[test]
    fn values_and_dimensions_come_from_json_fields() {
        let f = filter(
            "{ $.latency = * }",
            json!({"metricName": "Latency", "metricNamespace": "App", "metricValue": "$.latency",
                   "dimensions": {"Op": "$.op", "Region": "$.where.region"}, "unit": "Milliseconds"}),
        );
        let events = [
            (
                MIN,
                0,
                r#"{"latency": 50, "op": "GET", "where": {"region": "eu"}}"#,
            ),
            (
                MIN,
                1,
                r#"{"latency": "70", "op": "GET", "where": {"region": "eu"}}"#,
            ),
            (MIN, 2, r#"{"latency": 5, "op": "PUT"}"#),
            // Not a number: nothing is published.
            (MIN, 3, r#"{"latency": "slow", "op": "GET"}"#),
            (MIN, 4, "not json"),
        ];
        let pts = points("a/r", &[f], &events);
        let by_dims: BTreeMap<Dims, Vec<(f64, f64)>> = pts
            .iter()
            .map(|p| {
                (
                    p.point.dimensions.clone().into_iter().collect(),
                    p.values.clone().unwrap(),
                )
            })
            .collect();
        let get = |pairs: &[(&str, &str)]| {
            by_dims
                .get(
                    &pairs
                        .iter()
                        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
                        .collect::<Vec<_>>(),
                )
                .cloned()
        };
        assert_eq!(
            get(&[("Op", "GET"), ("Region", "eu")]),
            Some(vec![(50.0, 1.0), (70.0, 1.0)])
        );
        // A dimension whose field the event lacks is left out.
        assert_eq!(get(&[("Op", "PUT")]), Some(vec![(5.0, 1.0)]));
        assert_eq!(by_dims.len(), 2);
        assert_eq!(pts[0].point.unit, "Milliseconds");
    }

    #[test]
    fn values_and_dimensions_come_from_space_delimited_fields() {
        let f = filter(
            "[ip, user, username, timestamp, request, status_code, bytes]",
            json!({"metricName": "Bytes", "metricNamespace": "Web", "metricValue": "$bytes",
                   "dimensions": {"Status": "$status_code"}}),
        );
        let events = [
            (
                MIN,
                0,
                "127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] \"GET /a.gif HTTP/1.0\" 200 1534",
            ),
            (
                MIN,
                1,
                "127.0.0.1 - frank [10/Oct/2000:13:35:22 -0700] \"GET /a.gif HTTP/1.0\" 500 5324",
            ),
            (
                MIN,
                2,
                "127.0.0.1 - frank [10/Oct/2000:13:50:35 -0700] \"GET /a.gif HTTP/1.0\" 200 4355",
            ),
        ];
        let pts = points("a/r", &[f], &events);
        assert_eq!(pts.len(), 2);
        let ok = pts
            .iter()
            .find(|p| p.point.dimensions.get("Status").map(String::as_str) == Some("200"))
            .unwrap();
        assert_eq!(
            ok.values.as_deref(),
            Some(&[(1534.0, 1.0), (4355.0, 1.0)][..])
        );
        assert_eq!(ok.point.value, (1534.0 + 4355.0) / 2.0);
        // Positional references work too.
        let f = filter(
            "[..., status_code=5*, bytes]",
            json!({"metricName": "Bytes", "metricNamespace": "Web", "metricValue": "$1"}),
        );
        let pts = points("a/r", &[f], &events[1..2]);
        assert_eq!(pts.len(), 0, "$1 is an IP address, not a number");
        let f = filter(
            "[..., status_code=5*, bytes]",
            json!({"metricName": "Bytes", "metricNamespace": "Web", "metricValue": "$bytes"}),
        );
        let pts = points("a/r", &[f], &events);
        assert_eq!(pts[0].values.as_deref(), Some(&[(5324.0, 1.0)][..]));
    }

    #[test]
    fn put_checks() {
        let t = |v: &str| json!({"metricName": "M", "metricNamespace": "N", "metricValue": v});
        assert!(check("ERROR", t("1")).is_ok());
        assert!(check("ERROR", t("-2.5")).is_ok());
        assert!(check("{ $.a = 1 }", t("$.a")).is_ok());
        assert!(check("[a, b]", t("$b")).is_ok());
        assert!(check("[a, b]", t("$2")).is_ok());
        for (pattern, value) in [
            ("ERROR", "$.a"),
            ("ERROR", "lots"),
            ("[a, b]", "$c"),
            ("[a, b]", "$.a"),
            ("{ $.a = 1 }", "$a"),
            ("{ $.a = 1 }", "$.a b"),
        ] {
            let e = check(pattern, t(value)).unwrap_err();
            assert!(
                e.starts_with("Invalid metric value"),
                "{pattern} {value}: {e}"
            );
        }
        let dims = |d: Value, default: Option<f64>| {
            let mut v = t("1");
            v["dimensions"] = d;
            if let Some(x) = default {
                v["defaultValue"] = json!(x);
            }
            v
        };
        assert_eq!(
            check("ERROR", dims(json!({"A": "$.a"}), None)).unwrap_err(),
            "The specified filter pattern does not support dimensions"
        );
        assert_eq!(
            check("{ $.a = * }", dims(json!({"A": "$.a"}), Some(0.0))).unwrap_err(),
            "Invalid metric transformation: dimensions and default value are mutually exclusive properties"
        );
        assert!(
            check(
                "{ $.a = * }",
                dims(
                    json!({"A": "$.a", "B": "$.b", "C": "$.c", "D": "$.d"}),
                    None
                )
            )
            .unwrap_err()
            .contains("at most 3")
        );
        assert!(
            check("{ $.a = * }", dims(json!({"A": "fixed"}), None))
                .unwrap_err()
                .starts_with("Invalid dimension value")
        );
        assert!(check("{ $.a = * }", dims(json!({"A": "$.a", "B": "$.b"}), None)).is_ok());
        assert_eq!(
            check("{ $.a = ", t("1")).unwrap_err(),
            "If a filter pattern starts with '{' it must end with '}'"
        );
    }

    #[test]
    fn test_metric_filter_reports_matches_and_fields() {
        let out = test(&json!({
            "filterPattern": "[ip, user, ...]",
            "logEventMessages": ["127.0.0.1 frank GET /", "one"],
        }))
        .unwrap();
        assert_eq!(
            out,
            json!({"matches": [{
                "eventNumber": 1,
                "eventMessage": "127.0.0.1 frank GET /",
                "extractedValues": {"$ip": "127.0.0.1", "$user": "frank", "$3": "GET", "$4": "/"},
            }]})
        );
        let out = test(&json!({
            "filterPattern": "{ $.a = 1 }",
            "logEventMessages": ["{\"a\": 2}", "{\"a\": 1}"],
        }))
        .unwrap();
        assert_eq!(
            out,
            json!({"matches": [{"eventNumber": 2, "eventMessage": "{\"a\": 1}", "extractedValues": {}}]})
        );
        assert!(test(&json!({"filterPattern": "[a", "logEventMessages": ["x"]})).is_err());
    }
}
