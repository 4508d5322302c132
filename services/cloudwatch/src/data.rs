//! GetMetricData: metric queries (`MetricStat`) and metric math expressions over them, with
//! labels, ordering (`ScanBy`) and pagination by data point. Metric-math alarms evaluate
//! through [`run_queries`] too.

use crate::CloudWatch;
use crate::error::{combination, invalid_value, missing};
use crate::math::{self, Env, Expr, Series, Val};
use crate::metrics::{align_start, check_namespace, check_period};
use crate::model::{
    check_unit, dimensions, i64_of, list_of, now_ms, str_of, time_ms, token, ts, untoken,
};
use crate::search;
use crate::stats;
use basalt_core::AwsError;
use basalt_store::metrics::{INDEX_TABLE, SeriesRecord, index_prefix};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};

const MAX_QUERIES: usize = 500;
const DEFAULT_MAX_DATAPOINTS: i64 = 100_800;
const TWO_WEEKS_MS: i64 = 14 * 24 * 3600 * 1000;

#[derive(Debug, Clone)]
struct MetricQuery {
    namespace: String,
    metric: String,
    dims: BTreeMap<String, String>,
    period: i64,
    stat: String,
    unit: Option<String>,
}

#[derive(Debug, Clone)]
enum Kind {
    Stat(MetricQuery),
    Expr(Expr),
}

#[derive(Debug, Clone)]
struct Query {
    id: String,
    label: Option<String>,
    return_data: bool,
    period: Option<i64>,
    kind: Kind,
}

/// One returned series.
#[derive(Debug, Clone)]
pub(crate) struct Output {
    pub id: String,
    pub label: String,
    pub points: BTreeMap<i64, f64>,
}

fn expression_error(id: &str, why: &str) -> AwsError {
    AwsError::new(
        400,
        "ValidationError",
        format!("Error in expression {id}: {why}"),
    )
}

fn parse_queries(list: &[Value], what: &str) -> Result<Vec<Query>, AwsError> {
    if list.is_empty() {
        return Err(missing(format!("The parameter {what} is required.")));
    }
    if list.len() > MAX_QUERIES {
        return Err(invalid_value(format!(
            "The collection {what} must not have a size greater than {MAX_QUERIES}."
        )));
    }
    let mut seen = HashSet::new();
    let mut searches = 0;
    let mut out = Vec::with_capacity(list.len());
    for (i, q) in list.iter().enumerate() {
        let at = |m: &str| format!("{what}.member.{}.{m}", i + 1);
        let id = str_of(q, "Id").unwrap_or_default().to_owned();
        let valid_id = id.chars().next().is_some_and(|c| c.is_ascii_lowercase())
            && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_id {
            return Err(invalid_value(format!(
                "The value {id} for parameter {} is invalid. Ids must start with a lowercase letter and contain only letters, numbers and underscores.",
                at("Id")
            )));
        }
        if !seen.insert(id.clone()) {
            return Err(invalid_value(format!(
                "The value {id} for parameter {} is not unique.",
                at("Id")
            )));
        }
        let kind = match (q.get("MetricStat"), str_of(q, "Expression")) {
            (Some(_), Some(_)) => {
                return Err(combination(format!(
                    "The parameters {} and {} are mutually exclusive and you have specified both.",
                    at("MetricStat"),
                    at("Expression")
                )));
            }
            (None, None) => {
                return Err(missing(format!(
                    "One of the parameters {} or {} is required.",
                    at("MetricStat"),
                    at("Expression")
                )));
            }
            (Some(ms), None) => {
                let metric = ms.get("Metric").cloned().unwrap_or_default();
                let namespace = str_of(&metric, "Namespace").unwrap_or_default();
                check_namespace(namespace)?;
                let name = str_of(&metric, "MetricName").unwrap_or_default();
                if name.is_empty() {
                    return Err(missing(format!(
                        "The parameter {} is required.",
                        at("MetricStat.Metric.MetricName")
                    )));
                }
                let period = i64_of(ms, "Period").unwrap_or(0);
                check_period(period, &at("MetricStat.Period"))?;
                let stat = str_of(ms, "Stat").unwrap_or_default();
                if !stats::is_valid(stat) {
                    return Err(invalid_value(format!(
                        "The value {stat} for parameter {} is not a valid statistic.",
                        at("MetricStat.Stat")
                    )));
                }
                let unit = str_of(ms, "Unit");
                check_unit(unit, &at("MetricStat.Unit"))?;
                Kind::Stat(MetricQuery {
                    namespace: namespace.to_owned(),
                    metric: name.to_owned(),
                    dims: dimensions(
                        list_of(&metric, "Dimensions"),
                        &at("MetricStat.Metric.Dimensions"),
                    )?,
                    period,
                    stat: stat.to_owned(),
                    unit: unit.map(str::to_owned),
                })
            }
            (None, Some(e)) => {
                let expr = math::parse(e).map_err(|why| expression_error(&id, &why))?;
                searches += check_searches(&expr).map_err(|why| expression_error(&id, &why))?;
                Kind::Expr(expr)
            }
        };
        let period = i64_of(q, "Period");
        if let Some(p) = period {
            check_period(p, &at("Period"))?;
        }
        out.push(Query {
            id,
            label: str_of(q, "Label").map(str::to_owned),
            return_data: q.get("ReturnData").and_then(Value::as_bool).unwrap_or(true),
            period,
            kind,
        });
    }
    if searches > search::MAX_SEARCHES {
        return Err(invalid_value(format!(
            "A request can hold at most {} SEARCH expressions.",
            search::MAX_SEARCHES
        )));
    }
    // Every referenced id must exist.
    let ids: HashSet<&str> = out.iter().map(|q| q.id.as_str()).collect();
    for q in &out {
        if let Kind::Expr(e) = &q.kind {
            let mut refs = Vec::new();
            math::references(e, &mut refs);
            for r in refs {
                if !ids.contains(r.as_str()) && !matches!(r.as_str(), "REPEAT" | "LINEAR") {
                    return Err(expression_error(&q.id, &format!("Unrecognized id {r}")));
                }
            }
        }
    }
    Ok(out)
}

/// Checks the SEARCH calls in `e` (query, statistic, period) and counts them.
fn check_searches(e: &Expr) -> Result<usize, String> {
    match e {
        Expr::Call(name, args) => {
            let mut n = 0;
            if name == "SEARCH" {
                n += 1;
                match args.as_slice() {
                    [Expr::Str(q), Expr::Str(stat), rest @ ..] if rest.len() <= 1 => {
                        search::parse(q)?;
                        if !stats::is_valid(stat) {
                            return Err(format!("{stat} is not a valid statistic"));
                        }
                        if let Some(p) = rest.first() {
                            let Expr::Num(p) = p else {
                                return Err("the period of SEARCH must be a number".into());
                            };
                            if p.fract() != 0.0 {
                                return Err("the period of SEARCH must be whole seconds".into());
                            }
                            check_period(*p as i64, "SEARCH period")
                                .map_err(|e| e.message.clone())?;
                        }
                    }
                    _ => {
                        return Err(
                            "SEARCH takes a query and a statistic in single quotes, and a period"
                                .into(),
                        );
                    }
                }
            }
            for a in args {
                n += check_searches(a)?;
            }
            Ok(n)
        }
        Expr::Neg(x) => check_searches(x),
        Expr::Bin(_, a, b) => Ok(check_searches(a)? + check_searches(b)?),
        Expr::Num(_) | Expr::Str(_) | Expr::Id(_) => Ok(0),
    }
}

/// Checks the `Metrics` of an alarm (ids, statistics, expressions) without running them.
/// An alarm watches one time series, so SEARCH, which returns many, is refused as AWS does.
pub(crate) fn check_queries(list: &[Value], what: &str) -> Result<(), AwsError> {
    for q in parse_queries(list, what)? {
        if let Kind::Expr(e) = &q.kind
            && check_searches(e).unwrap_or(0) > 0
        {
            return Err(invalid_value(format!(
                "Error in expression {}: SEARCH expressions are not supported in alarms.",
                q.id
            )));
        }
    }
    Ok(())
}

struct DataEnv<'a> {
    cw: &'a CloudWatch,
    account: &'a str,
    region: &'a str,
    queries: &'a [Query],
    start: i64,
    end: i64,
    period: i64,
    memo: HashMap<String, Val>,
    active: HashSet<String>,
    /// Periods already aggregated, by metric, dimensions, unit and period.
    buckets: HashMap<BucketKey, BTreeMap<i64, stats::Bucket>>,
}

type BucketKey = (
    String,
    String,
    BTreeMap<String, String>,
    Option<String>,
    i64,
);

impl DataEnv<'_> {
    fn metric_series(&mut self, q: &Query, m: &MetricQuery) -> Result<Series, String> {
        Ok(Series {
            label: q.label.clone().unwrap_or_else(|| m.metric.clone()),
            period: m.period,
            points: self.stat_series(m)?,
        })
    }

    fn scope<'s>(&'s self, namespace: &'s str, metric: &'s str, period: i64) -> stats::Scope<'s> {
        stats::Scope {
            metrics: &self.cw.metrics,
            account: self.account,
            region: self.region,
            namespace,
            metric,
            start_ms: self.start,
            end_ms: self.end,
            period_ms: period * 1000,
        }
    }

    /// The values of statistic `m.stat` per period. Queries of one metric that differ only in
    /// their statistic (Sum, Average and p99 side by side) share one read of its points.
    fn stat_series(&mut self, m: &MetricQuery) -> Result<BTreeMap<i64, f64>, String> {
        let key = (
            m.namespace.clone(),
            m.metric.clone(),
            m.dims.clone(),
            m.unit.clone(),
            m.period,
        );
        if !self.buckets.contains_key(&key) {
            let scope = self.scope(&m.namespace, &m.metric, m.period);
            let buckets = stats::aggregate_merged(&scope, &m.dims, m.unit.as_deref())
                .map_err(|e| e.to_string())?;
            self.buckets.insert(key.clone(), buckets);
        }
        Ok(values_of(&self.buckets[&key], &m.stat))
    }

    fn value(&mut self, id: &str) -> Result<Val, String> {
        if let Some(v) = self.memo.get(id) {
            return Ok(v.clone());
        }
        let queries = self.queries;
        let Some(q) = queries.iter().find(|q| q.id == id) else {
            return Err(format!("Unrecognized id {id}"));
        };
        if !self.active.insert(id.to_owned()) {
            return Err(format!("circular reference through {id}"));
        }
        let v = match &q.kind {
            Kind::Stat(m) => self.metric_series(q, m).map(Val::Series),
            Kind::Expr(e) => math::eval(e, self),
        };
        self.active.remove(id);
        let mut v = v?;
        if let (Val::Series(s), Some(label)) = (&mut v, &q.label) {
            s.label = label.clone();
        }
        self.memo.insert(id.to_owned(), v.clone());
        Ok(v)
    }
}

impl Env for DataEnv<'_> {
    fn lookup(&mut self, id: &str) -> Result<Val, String> {
        self.value(id)
    }

    fn metrics(&mut self) -> Result<Vec<Series>, String> {
        let ids: Vec<String> = self
            .queries
            .iter()
            .filter(|q| matches!(q.kind, Kind::Stat(_)))
            .map(|q| q.id.clone())
            .collect();
        let mut out = Vec::new();
        for id in ids {
            if let Val::Series(s) = self.value(&id)? {
                out.push(s);
            }
        }
        Ok(out)
    }

    fn grid(&self) -> Vec<i64> {
        let step = self.period.max(1) * 1000;
        (0..)
            .map(|k| self.start + k * step)
            .take_while(|t| *t < self.end)
            .take(100_000)
            .collect()
    }

    fn period(&self) -> i64 {
        self.period
    }

    fn search(
        &mut self,
        query: &str,
        stat: &str,
        period: Option<i64>,
    ) -> Result<Vec<Series>, String> {
        let query = search::parse(query)?;
        let found = self.find(&query)?;
        let period = period.unwrap_or(self.period);
        let mut out = Vec::with_capacity(found.len());
        // One read per metric serves every dimension set of it that matched (the index
        // lists a metric's sets side by side).
        for group in found.chunk_by(|a, b| (&a.namespace, &a.metric) == (&b.namespace, &b.metric)) {
            let sets: Vec<&BTreeMap<String, String>> =
                group.iter().map(|r| &r.dimensions).collect();
            let scope = self.scope(&group[0].namespace, &group[0].metric, period);
            let buckets = stats::aggregate_each(&scope, &sets).map_err(|e| e.to_string())?;
            for (rec, b) in group.iter().zip(buckets) {
                out.push(Series {
                    label: search_label(rec),
                    period,
                    points: values_of(&b, stat),
                });
            }
        }
        Ok(out)
    }
}

/// The label of one series a search found: its dimension values, then its metric name.
fn search_label(rec: &SeriesRecord) -> String {
    let mut parts: Vec<&str> = rec.dimensions.values().map(String::as_str).collect();
    parts.push(&rec.metric);
    parts.join(" ")
}

/// The finite values of statistic `stat` per period.
fn values_of(buckets: &BTreeMap<i64, stats::Bucket>, stat: &str) -> BTreeMap<i64, f64> {
    buckets
        .iter()
        .filter_map(|(t, b)| b.stat(stat).filter(|v| v.is_finite()).map(|v| (*t, v)))
        .collect()
}

impl DataEnv<'_> {
    /// The identities a search matches, in namespace, metric, dimensions order, among those
    /// published to within two weeks (what CloudWatch's search covers), at most
    /// [`search::MAX_RESULTS`].
    fn find(&self, query: &search::Query) -> Result<Vec<SeriesRecord>, String> {
        let namespace = query.schema.as_ref().map(|s| s.namespace.as_str());
        let prefix = index_prefix(self.account, self.region, namespace, None);
        let since = now_ms() - TWO_WEEKS_MS;
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .cw
                .state
                .scan(INDEX_TABLE, &prefix, after.as_deref(), 1000)
                .map_err(|e| e.to_string())?;
            let done = page.len() < 1000;
            after = page.last().map(|(k, _)| k.clone());
            for (_, raw) in page {
                let Ok(rec) = serde_json::from_slice::<SeriesRecord>(&raw) else {
                    continue;
                };
                let identity = search::Identity {
                    namespace: &rec.namespace,
                    metric: &rec.metric,
                    dimensions: &rec.dimensions,
                };
                if rec.last_published_ms >= since && query.matches(&identity) {
                    out.push(rec);
                    if out.len() == search::MAX_RESULTS {
                        return Ok(out);
                    }
                }
            }
            if done {
                return Ok(out);
            }
        }
    }
}

/// Evaluates `queries` (a `MetricDataQueries` list) over `[start, end)` and returns the
/// series of those with `ReturnData` (the default), in order.
pub(crate) fn run_queries(
    cw: &CloudWatch,
    account: &str,
    region: &str,
    queries: &[Value],
    what: &str,
    start: i64,
    end: i64,
) -> Result<Vec<Output>, AwsError> {
    let parsed = parse_queries(queries, what)?;
    evaluate(cw, account, region, &parsed, start, end)
}

fn evaluate(
    cw: &CloudWatch,
    account: &str,
    region: &str,
    queries: &[Query],
    start: i64,
    end: i64,
) -> Result<Vec<Output>, AwsError> {
    let period = queries
        .iter()
        .filter_map(|q| match &q.kind {
            Kind::Stat(m) => Some(m.period),
            Kind::Expr(_) => q.period,
        })
        .min()
        .unwrap_or(60);
    let mut env = DataEnv {
        cw,
        account,
        region,
        queries,
        start,
        end,
        period,
        memo: HashMap::new(),
        active: HashSet::new(),
        buckets: HashMap::new(),
    };
    let mut out = Vec::new();
    for q in queries.iter().filter(|q| q.return_data) {
        let v = env.value(&q.id).map_err(|why| match &q.kind {
            Kind::Expr(_) => expression_error(&q.id, &why),
            Kind::Stat(_) => AwsError::internal(why),
        })?;
        let default_label = || q.label.clone().unwrap_or_else(|| q.id.clone());
        match v {
            Val::Series(s) => out.push(Output {
                id: q.id.clone(),
                label: if s.label.is_empty() {
                    default_label()
                } else {
                    s.label
                },
                points: s.points,
            }),
            Val::Array(a) => {
                for s in a {
                    out.push(Output {
                        id: q.id.clone(),
                        label: if s.label.is_empty() {
                            default_label()
                        } else {
                            s.label
                        },
                        points: s.points,
                    });
                }
            }
            // A scalar is returned at every period of the range.
            Val::Scalar(x) => out.push(Output {
                id: q.id.clone(),
                label: default_label(),
                points: if x.is_finite() {
                    env.grid().into_iter().map(|t| (t, x)).collect()
                } else {
                    BTreeMap::new()
                },
            }),
            Val::Str(_) => return Err(expression_error(&q.id, "a string is not a time series")),
        }
    }
    Ok(out)
}

pub(crate) fn get_metric_data(
    cw: &CloudWatch,
    ctx: &basalt_core::RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let queries = parse_queries(list_of(input, "MetricDataQueries"), "MetricDataQueries")?;
    let start = time_ms(input, "StartTime")
        .ok_or_else(|| missing("The parameter StartTime is required."))?;
    let end =
        time_ms(input, "EndTime").ok_or_else(|| missing("The parameter EndTime is required."))?;
    if start >= end {
        return Err(invalid_value(
            "The parameter StartTime must be less than the parameter EndTime.",
        ));
    }
    if !queries.iter().any(|q| q.return_data) {
        return Err(invalid_value(
            "At least one MetricDataQuery must have ReturnData set to true.",
        ));
    }
    let descending = match str_of(input, "ScanBy") {
        None | Some("TimestampDescending") => true,
        Some("TimestampAscending") => false,
        Some(other) => {
            return Err(invalid_value(format!(
                "The value {other} for parameter ScanBy is invalid."
            )));
        }
    };
    let max = i64_of(input, "MaxDatapoints").unwrap_or(DEFAULT_MAX_DATAPOINTS);
    if max <= 0 {
        return Err(invalid_value(
            "The parameter MaxDatapoints must be greater than 0.",
        ));
    }
    let offset: usize = match str_of(input, "NextToken") {
        Some(t) => untoken(t)?
            .strip_prefix("gmd:")
            .and_then(|n| n.parse().ok())
            .ok_or_else(crate::error::invalid_token)?,
        None => 0,
    };
    let min_period = queries
        .iter()
        .filter_map(|q| match &q.kind {
            Kind::Stat(m) => Some(m.period),
            Kind::Expr(_) => q.period,
        })
        .min()
        .unwrap_or(60);
    let start = align_start(start, min_period, now_ms());
    let outputs = evaluate(cw, &ctx.account_id, &ctx.region, &queries, start, end)?;

    // Pagination walks the results' points in order, `max` at a time.
    let mut skip = offset;
    let mut budget = max as usize;
    let mut more = false;
    let mut results = Vec::new();
    for o in outputs {
        let mut pts: Vec<(i64, f64)> = o.points.into_iter().collect();
        if descending {
            pts.reverse();
        }
        let drop = skip.min(pts.len());
        skip -= drop;
        let rest = &pts[drop..];
        let take = budget.min(rest.len());
        budget -= take;
        let partial = take < rest.len();
        more |= partial;
        let page = &rest[..take];
        results.push(json!({
            "Id": o.id,
            "Label": o.label,
            "Timestamps": page.iter().map(|(t, _)| ts(*t)).collect::<Vec<_>>(),
            "Values": page.iter().map(|(_, v)| json!(v)).collect::<Vec<_>>(),
            "StatusCode": if partial { "PartialData" } else { "Complete" },
            "Messages": [],
        }));
    }
    let mut out = json!({"MetricDataResults": results, "Messages": []});
    if more {
        out["NextToken"] = json!(token(&format!("gmd:{}", offset + max as usize)));
    }
    Ok(out)
}
