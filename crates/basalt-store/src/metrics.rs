//! CloudWatch data points as services publish them (`AWS/Bedrock`, `AWS/Lambda`, ...): one
//! record per point in [`DATAPOINT_TABLE`], keyed
//! `{account}/{region}/{namespace}/{metric}/{timestamp:014}-{seq:020}` so that a metric's
//! points are one prefix, in time order. The CloudWatch API reads them from there.
//!
//! Every write also records the series' identity (namespace, metric, dimension set) with the
//! time it was last published in [`INDEX_TABLE`], so that ListMetrics reads identities, not
//! points. A point published through CloudWatch's PutMetricData may carry more than one value
//! ([`StoredPoint`]: a statistic set, or values with counts, and its storage resolution);
//! its record is a [`DataPoint`] with extra optional members, so readers of plain points read
//! it too, and a plain point reads as a [`StoredPoint`] with none of them.

use crate::{StateStore, StoreError, WriteOp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub const DATAPOINT_TABLE: &str = "cloudwatch.datapoints";
/// Series identities: key [`index_key`], value [`SeriesRecord`].
pub const INDEX_TABLE: &str = "cloudwatch.metrics";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataPoint {
    pub account_id: String,
    pub region: String,
    pub namespace: String,
    pub metric: String,
    pub dimensions: BTreeMap<String, String>,
    pub value: f64,
    pub unit: String,
    /// Epoch milliseconds.
    pub timestamp_ms: i64,
}

/// Aggregated values published as one point (PutMetricData's `StatisticValues`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StatSet {
    pub sample_count: f64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
}

/// A stored point with what PutMetricData may add to it. Records written without the extra
/// members (by [`Metrics::publish`]) read back with them absent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredPoint {
    #[serde(flatten)]
    pub point: DataPoint,
    /// A statistic set: `point.value` is then its average.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<StatSet>,
    /// `(value, count)` pairs (`Values` and `Counts`): `point.value` is then their mean.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<(f64, f64)>>,
    /// Seconds: 1 (high resolution) or 60 (standard, the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_resolution: Option<u32>,
}

/// One series' identity and when it was last published to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesRecord {
    pub namespace: String,
    pub metric: String,
    pub dimensions: BTreeMap<String, String>,
    /// Epoch milliseconds of the last write (wall clock).
    pub last_published_ms: i64,
}

fn prefix(account_id: &str, region: &str, namespace: &str, metric: &str) -> String {
    format!("{account_id}/{region}/{namespace}/{metric}/")
}

/// Separates the parts of an index key; it cannot occur in names.
const SEP: char = '\u{1}';

/// The prefix of every index key of one account and region, or (with `namespace`) of one
/// namespace, or (with both) of one metric.
pub fn index_prefix(
    account_id: &str,
    region: &str,
    namespace: Option<&str>,
    metric: Option<&str>,
) -> String {
    let mut k = format!("{account_id}/{region}{SEP}");
    if let Some(ns) = namespace {
        k.push_str(ns);
        k.push(SEP);
        if let Some(m) = metric {
            k.push_str(m);
            k.push(SEP);
        }
    }
    k
}

/// The index key of one series.
pub fn index_key(p: &DataPoint) -> String {
    let mut k = index_prefix(
        &p.account_id,
        &p.region,
        Some(&p.namespace),
        Some(&p.metric),
    );
    for (name, value) in &p.dimensions {
        k.push_str(name);
        k.push('=');
        k.push_str(value);
        k.push(SEP);
    }
    k
}

fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Writes data points durably, off the async runtime's threads.
pub struct Metrics {
    state: Arc<dyn StateStore>,
    /// Orders points written in the same millisecond; starts at a random value so that keys
    /// stay unique across restarts and nodes.
    seq: AtomicU64,
}

impl Metrics {
    pub fn new(state: Arc<dyn StateStore>) -> Metrics {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() as u64 ^ (u64::from(std::process::id()) << 32))
            .unwrap_or(0);
        Metrics {
            state,
            seq: AtomicU64::new(seed),
        }
    }

    /// Stores `points` in one transaction. A failed write is logged, not returned: what the
    /// points describe has already been answered. A durable write waits for fsync, so it runs
    /// on a blocking thread when called from the async runtime.
    pub fn publish(&self, points: Vec<DataPoint>) {
        let ops = self.ops(&points);
        let state = self.state.clone();
        let write = move || {
            if let Err(e) = state.batch(&ops) {
                tracing::error!(error = %e, "storing CloudWatch data points failed");
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn_blocking(write)),
            Err(_) => write(),
        }
    }

    /// The writes that store `points`, for a caller that commits them with writes of its own.
    pub fn ops(&self, points: &[DataPoint]) -> Vec<WriteOp> {
        let mut ops: Vec<WriteOp> = points
            .iter()
            .map(|p| self.point_op(p, serde_json::to_vec(p).unwrap_or_default()))
            .collect();
        ops.extend(index_ops(points.iter()));
        ops
    }

    /// The writes that store points with their extra members (PutMetricData).
    pub fn stored_ops(&self, points: &[StoredPoint]) -> Vec<WriteOp> {
        let mut ops: Vec<WriteOp> = points
            .iter()
            .map(|p| self.point_op(&p.point, serde_json::to_vec(p).unwrap_or_default()))
            .collect();
        ops.extend(index_ops(points.iter().map(|p| &p.point)));
        ops
    }

    fn point_op(&self, p: &DataPoint, value: Vec<u8>) -> WriteOp {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        WriteOp::Put {
            table: DATAPOINT_TABLE.into(),
            key: format!(
                "{}{:014}-{seq:020}",
                prefix(&p.account_id, &p.region, &p.namespace, &p.metric),
                p.timestamp_ms.max(0)
            ),
            value,
        }
    }

    /// The points of one metric (every dimension set) with `start_ms <= timestamp < end_ms`,
    /// oldest first.
    pub fn points_between(
        &self,
        account_id: &str,
        region: &str,
        namespace: &str,
        metric: &str,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<StoredPoint>, StoreError> {
        let prefix = prefix(account_id, region, namespace, metric);
        let mut out = Vec::new();
        // Keys of points at `start_ms` sort after this one.
        let mut after = format!("{prefix}{:014}", start_ms.max(0));
        loop {
            let page = self
                .state
                .scan(DATAPOINT_TABLE, &prefix, Some(&after), 1000)?;
            let done = page.len() < 1000;
            if let Some((k, _)) = page.last() {
                after = k.clone();
            }
            for (_, v) in page {
                let Ok(p) = serde_json::from_slice::<StoredPoint>(&v) else {
                    continue;
                };
                if p.point.timestamp_ms >= end_ms {
                    return Ok(out);
                }
                // Another metric whose namespace and name join to the same prefix.
                if p.point.namespace == namespace && p.point.metric == metric {
                    out.push(p);
                }
            }
            if done {
                return Ok(out);
            }
        }
    }

    /// The stored points of one metric, oldest first.
    pub fn points(
        &self,
        account_id: &str,
        region: &str,
        namespace: &str,
        metric: &str,
    ) -> Result<Vec<DataPoint>, StoreError> {
        let prefix = prefix(account_id, region, namespace, metric);
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .state
                .scan(DATAPOINT_TABLE, &prefix, after.as_deref(), 1000)?;
            let done = page.len() < 1000;
            after = page.last().map(|(k, _)| k.clone());
            out.extend(
                page.into_iter()
                    .filter_map(|(_, v)| serde_json::from_slice::<DataPoint>(&v).ok()),
            );
            if done {
                return Ok(out);
            }
        }
    }
}

/// One index write per distinct series among `points`.
fn index_ops<'a>(points: impl Iterator<Item = &'a DataPoint>) -> Vec<WriteOp> {
    let now = wall_ms();
    let mut seen = BTreeMap::new();
    for p in points {
        seen.entry(index_key(p)).or_insert_with(|| SeriesRecord {
            namespace: p.namespace.clone(),
            metric: p.metric.clone(),
            dimensions: p.dimensions.clone(),
            last_published_ms: now,
        });
    }
    seen.into_iter()
        .map(|(key, rec)| WriteOp::Put {
            table: INDEX_TABLE.into(),
            key,
            value: serde_json::to_vec(&rec).unwrap_or_default(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_come_back_per_metric_in_time_order() {
        let m = Metrics::new(Arc::new(crate::MemoryState::default()));
        let point = |metric: &str, ts: i64, v: f64| DataPoint {
            account_id: "a".into(),
            region: "r".into(),
            namespace: "AWS/Lambda".into(),
            metric: metric.into(),
            dimensions: BTreeMap::from([("FunctionName".into(), "f".into())]),
            value: v,
            unit: "Count".into(),
            timestamp_ms: ts,
        };
        m.publish(vec![point("Invocations", 20, 2.0), point("Errors", 5, 1.0)]);
        m.publish(vec![point("Invocations", 10, 1.0)]);
        let got = m.points("a", "r", "AWS/Lambda", "Invocations").unwrap();
        assert_eq!(got.iter().map(|p| p.value).collect::<Vec<_>>(), [1.0, 2.0]);
        assert_eq!(m.points("a", "r", "AWS/Lambda", "Errors").unwrap().len(), 1);
        assert!(
            m.points("b", "r", "AWS/Lambda", "Errors")
                .unwrap()
                .is_empty()
        );
        let between = m
            .points_between("a", "r", "AWS/Lambda", "Invocations", 10, 20)
            .unwrap();
        assert_eq!(between.len(), 1);
        assert_eq!(between[0].point.value, 1.0);
        assert!(between[0].stats.is_none());
        let index = m
            .state
            .scan(
                INDEX_TABLE,
                &index_prefix("a", "r", Some("AWS/Lambda"), None),
                None,
                10,
            )
            .unwrap();
        assert_eq!(index.len(), 2);
    }
}
