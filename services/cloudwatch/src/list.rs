//! ListMetrics, from the index of series identities that every data point write keeps
//! (`basalt_store::metrics::INDEX_TABLE`), so listing never reads points.

use crate::CloudWatch;
use crate::error::invalid_value;
use crate::model::{dimensions_json, list_of, now_ms, str_of, token, untoken};
use basalt_core::{AwsError, RequestContext};
use basalt_store::metrics::{INDEX_TABLE, SeriesRecord, index_prefix};
use serde_json::{Value, json};

const PAGE: usize = 500;
const THREE_HOURS_MS: i64 = 3 * 3600 * 1000;

pub(crate) fn list_metrics(
    cw: &CloudWatch,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let namespace = str_of(input, "Namespace");
    let metric = str_of(input, "MetricName");
    let recently = match str_of(input, "RecentlyActive") {
        None => false,
        Some("PT3H") => true,
        Some(other) => {
            return Err(invalid_value(format!(
                "The value {other} for parameter RecentlyActive is invalid. Valid value: PT3H."
            )));
        }
    };
    let filters: Vec<(String, Option<String>)> = list_of(input, "Dimensions")
        .iter()
        .map(|f| {
            (
                str_of(f, "Name").unwrap_or_default().to_owned(),
                str_of(f, "Value").map(str::to_owned),
            )
        })
        .collect();
    let prefix = index_prefix(
        &ctx.account_id,
        &ctx.region,
        namespace,
        namespace.and(metric),
    );
    let mut after = match str_of(input, "NextToken") {
        Some(t) => {
            let k = untoken(t)?;
            if !k.starts_with(&prefix) {
                return Err(crate::error::invalid_token());
            }
            Some(k)
        }
        None => None,
    };
    let now = now_ms();
    let mut out = Vec::new();
    let mut next = None;
    'scan: loop {
        let page = cw
            .state
            .scan(INDEX_TABLE, &prefix, after.as_deref(), 1000)?;
        let done = page.len() < 1000;
        for (key, raw) in page {
            after = Some(key.clone());
            let Ok(rec) = serde_json::from_slice::<SeriesRecord>(&raw) else {
                continue;
            };
            if metric.is_some_and(|m| m != rec.metric)
                || namespace.is_some_and(|n| n != rec.namespace)
                || (recently && rec.last_published_ms < now - THREE_HOURS_MS)
            {
                continue;
            }
            let matches = filters.iter().all(|(name, value)| {
                rec.dimensions
                    .get(name)
                    .is_some_and(|v| value.as_ref().is_none_or(|want| want == v))
            });
            if !matches {
                continue;
            }
            if out.len() == PAGE {
                next = Some(token(out_key(&out, &key)));
                break 'scan;
            }
            out.push((
                key,
                json!({
                    "Namespace": rec.namespace,
                    "MetricName": rec.metric,
                    "Dimensions": dimensions_json(&rec.dimensions),
                }),
            ));
        }
        if done {
            break;
        }
    }
    let mut resp = json!({"Metrics": out.into_iter().map(|(_, v)| v).collect::<Vec<_>>()});
    if let Some(t) = next {
        resp["NextToken"] = json!(t);
    }
    Ok(resp)
}

/// The key the next page starts after: the last one returned.
fn out_key<'a>(out: &'a [(String, Value)], fallback: &'a str) -> &'a str {
    out.last().map_or(fallback, |(k, _)| k.as_str())
}
