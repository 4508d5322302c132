//! CloudWatch data points as services publish them (`AWS/Bedrock`, `AWS/Lambda`, ...): one
//! record per point in [`DATAPOINT_TABLE`], keyed
//! `{account}/{region}/{namespace}/{metric}/{timestamp:014}-{seq:020}` so that a metric's
//! points are one prefix, in time order. The CloudWatch API reads them from there.

use crate::{StateStore, StoreError, WriteOp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub const DATAPOINT_TABLE: &str = "cloudwatch.datapoints";

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

fn prefix(account_id: &str, region: &str, namespace: &str, metric: &str) -> String {
    format!("{account_id}/{region}/{namespace}/{metric}/")
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
        points
            .iter()
            .map(|p| {
                let seq = self.seq.fetch_add(1, Ordering::Relaxed);
                WriteOp::Put {
                    table: DATAPOINT_TABLE.into(),
                    key: format!(
                        "{}{:014}-{seq:020}",
                        prefix(&p.account_id, &p.region, &p.namespace, &p.metric),
                        p.timestamp_ms
                    ),
                    value: serde_json::to_vec(p).unwrap_or_default(),
                }
            })
            .collect()
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
    }
}
