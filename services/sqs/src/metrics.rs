//! `AWS/SQS` metrics for CloudWatch, per `QueueName`, as AWS defines them
//! (<https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-available-cloudwatch-metrics.html>).
//! `ApproximateAgeOfOldestMessage` is not published: the store's leases cannot show the
//! oldest item of a queue without claiming it.
//!
//! Counts (`NumberOfMessagesSent`, `...Received`, `...Deleted`, `NumberOfEmptyReceives`) and
//! `SentMessageSize` add up in memory and are written as one data point per queue and metric
//! each interval (a minute, as AWS publishes them), not one per message; the accumulator is
//! also flushed on shutdown. The gauges (`ApproximateNumberOfMessagesVisible`,
//! `...NotVisible`, `...Delayed`) are sampled once an
//! interval by whichever node holds the sampling item on the store's leases, so a cluster
//! samples each queue once.

use crate::Sqs;
use crate::model::{QUEUES, QueueRec};
use basalt_store::metrics::{DataPoint, StatSet, StoredPoint};
use basalt_store::{StateStore, StoreError};
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

pub(crate) const NAMESPACE: &str = "AWS/SQS";
/// The lease queue of the gauge sampler: one item, released to fall due every interval.
const SAMPLER_QUEUE: &str = "sqs.metrics";
const SAMPLER_ITEM: &str = "gauges";
/// How often counts are written and gauges sampled; `BASALT_SQS_METRICS_INTERVAL_SECS`
/// shortens it (tests).
const DEFAULT_INTERVAL_SECS: u64 = 60;

pub(crate) fn interval() -> Duration {
    let secs = std::env::var("BASALT_SQS_METRICS_INTERVAL_SECS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|s| *s > 0)
        .unwrap_or(DEFAULT_INTERVAL_SECS);
    Duration::from_secs(secs)
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct QueueKey {
    account: String,
    region: String,
    name: String,
}

/// What happened to one queue since the last flush.
#[derive(Debug, Default, Clone, PartialEq)]
struct Pending {
    sent: u64,
    received: u64,
    deleted: u64,
    empty_receives: u64,
    sizes: Option<StatSet>,
}

/// The in-memory accumulator of counts.
#[derive(Default)]
pub(crate) struct Counters {
    pending: Mutex<HashMap<QueueKey, Pending>>,
}

fn key(q: &QueueRec) -> QueueKey {
    QueueKey {
        account: q.account.clone(),
        region: q.region.clone(),
        name: q.name.clone(),
    }
}

impl Counters {
    fn with(&self, q: &QueueRec, f: impl FnOnce(&mut Pending)) {
        f(self.pending.lock().entry(key(q)).or_default());
    }

    /// A message added to the queue, of `bytes` (body and attributes).
    pub(crate) fn sent(&self, q: &QueueRec, bytes: usize) {
        let b = bytes as f64;
        self.with(q, |p| {
            p.sent += 1;
            p.sizes = Some(match p.sizes {
                None => StatSet {
                    sample_count: 1.0,
                    sum: b,
                    min: b,
                    max: b,
                },
                Some(s) => StatSet {
                    sample_count: s.sample_count + 1.0,
                    sum: s.sum + b,
                    min: s.min.min(b),
                    max: s.max.max(b),
                },
            });
        });
    }

    /// One ReceiveMessage call's answer: `n` messages, or an empty receive.
    pub(crate) fn received(&self, q: &QueueRec, n: usize) {
        self.with(q, |p| {
            if n == 0 {
                p.empty_receives += 1;
            } else {
                p.received += n as u64;
            }
        });
    }

    pub(crate) fn deleted(&self, q: &QueueRec) {
        self.with(q, |p| p.deleted += 1);
    }

    /// Takes what accumulated, as data points stamped `now_ms`.
    fn drain(&self, now_ms: i64) -> Vec<StoredPoint> {
        let taken = std::mem::take(&mut *self.pending.lock());
        let mut out = Vec::new();
        for (k, p) in taken {
            let point = |metric: &str, value: f64, unit: &str| DataPoint {
                account_id: k.account.clone(),
                region: k.region.clone(),
                namespace: NAMESPACE.into(),
                metric: metric.into(),
                dimensions: BTreeMap::from([("QueueName".to_owned(), k.name.clone())]),
                value,
                unit: unit.into(),
                timestamp_ms: now_ms,
            };
            // An active queue reports every count, zeros included, as AWS does.
            for (metric, n) in [
                ("NumberOfMessagesSent", p.sent),
                ("NumberOfMessagesReceived", p.received),
                ("NumberOfMessagesDeleted", p.deleted),
                ("NumberOfEmptyReceives", p.empty_receives),
            ] {
                out.push(plain(point(metric, n as f64, "Count")));
            }
            if let Some(s) = p.sizes {
                out.push(StoredPoint {
                    point: point("SentMessageSize", s.sum / s.sample_count, "Bytes"),
                    stats: Some(s),
                    values: None,
                    storage_resolution: None,
                });
            }
        }
        out
    }
}

fn plain(point: DataPoint) -> StoredPoint {
    StoredPoint {
        point,
        stats: None,
        values: None,
        storage_resolution: None,
    }
}

impl Sqs {
    /// Writes the counts accumulated so far. Called every interval and on shutdown.
    pub fn flush_metrics(&self) {
        let now = self.state.clock_ms().unwrap_or_else(|_| crate::now_ms());
        let points = self.counters.drain(now);
        if points.is_empty() {
            return;
        }
        let ops = self.metrics.stored_ops(&points);
        if let Err(e) = self.state.batch(&ops) {
            tracing::error!(error = %e, "storing AWS/SQS data points failed");
        }
    }
}

/// Every queue of every account and region.
fn all_queues(state: &dyn StateStore) -> Result<Vec<QueueRec>, StoreError> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = state.scan(QUEUES, "", after.as_deref(), 500)?;
        let Some((last, _)) = page.last() else { break };
        after = Some(last.clone());
        out.extend(
            page.into_iter()
                .filter_map(|(_, v)| serde_json::from_slice::<QueueRec>(&v).ok()),
        );
    }
    Ok(out)
}

/// One sample of every queue's gauges.
fn sample(sqs: &Sqs, now: i64) -> Result<Vec<StoredPoint>, crate::AwsError> {
    let mut out = Vec::new();
    for q in all_queues(sqs.state.as_ref())? {
        let c = if q.is_fifo() {
            crate::fifo::counts(sqs, &q, now)?
        } else {
            sqs.state.counts(&q.lease_queue(), now)?
        };
        let point = |metric: &str, value: f64, unit: &str| {
            plain(DataPoint {
                account_id: q.account.clone(),
                region: q.region.clone(),
                namespace: NAMESPACE.into(),
                metric: metric.into(),
                dimensions: BTreeMap::from([("QueueName".to_owned(), q.name.clone())]),
                value,
                unit: unit.into(),
                timestamp_ms: now,
            })
        };
        out.push(point(
            "ApproximateNumberOfMessagesVisible",
            c.ready as f64,
            "Count",
        ));
        out.push(point(
            "ApproximateNumberOfMessagesNotVisible",
            c.leased as f64,
            "Count",
        ));
        out.push(point(
            "ApproximateNumberOfMessagesDelayed",
            c.delayed as f64,
            "Count",
        ));
    }
    Ok(out)
}

/// Starts the count flusher and the gauge sampler.
pub(crate) fn start(sqs: Arc<Sqs>) {
    let every = interval();
    {
        let sqs = sqs.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                let sqs = sqs.clone();
                let _ = tokio::task::spawn_blocking(move || sqs.flush_metrics()).await;
            }
        });
    }
    tokio::spawn(async move {
        let every_ms = every.as_millis() as i64;
        // One sampling item for the whole cluster; a node that finds none adds it.
        if sqs.state.pending(SAMPLER_QUEUE).unwrap_or(1) == 0 {
            let now = sqs.state.clock_ms().unwrap_or_else(|_| crate::now_ms());
            let _ = sqs
                .state
                .enqueue(SAMPLER_QUEUE, SAMPLER_ITEM, &[], now + every_ms);
        }
        loop {
            let sqs2 = sqs.clone();
            let _ = tokio::task::spawn_blocking(move || sample_once(&sqs2, every_ms)).await;
            // Poll a few times an interval: the item falls due once an interval.
            tokio::time::sleep(every / 4).await;
        }
    });
}

/// Samples the gauges if this node holds the sampling item now, and sets it due again one
/// interval later.
fn sample_once(sqs: &Sqs, every_ms: i64) {
    let Ok(now) = sqs.state.clock_ms() else {
        return;
    };
    let Ok(claims) = sqs.state.claim(SAMPLER_QUEUE, now, every_ms.max(10_000), 1) else {
        return;
    };
    let Some(claim) = claims.into_iter().next() else {
        return;
    };
    match sample(sqs, now) {
        Ok(points) if !points.is_empty() => {
            if let Err(e) = sqs.state.batch(&sqs.metrics.stored_ops(&points)) {
                tracing::warn!(error = %e, "storing AWS/SQS gauges failed");
            }
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e.message, "sampling AWS/SQS gauges failed"),
    }
    let _ = sqs.state.release(&claim, now + every_ms);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(name: &str) -> QueueRec {
        QueueRec {
            name: name.into(),
            account: "000000000000".into(),
            region: "us-east-1".into(),
            id: "x".into(),
            created: 0,
            modified: 0,
            attributes: BTreeMap::new(),
            tags: BTreeMap::new(),
            purged_ms: None,
        }
    }

    #[test]
    fn counts_aggregate_into_one_point_per_metric() {
        let c = Counters::default();
        let (a, b) = (queue("a"), queue("b"));
        c.sent(&a, 10);
        c.sent(&a, 30);
        c.received(&a, 2);
        c.received(&a, 0);
        c.received(&a, 0);
        c.deleted(&a);
        c.received(&b, 0);
        let points = c.drain(1_000);
        let of = |q: &str, m: &str| {
            points
                .iter()
                .find(|p| p.point.metric == m && p.point.dimensions["QueueName"] == q)
                .cloned()
        };
        assert_eq!(of("a", "NumberOfMessagesSent").unwrap().point.value, 2.0);
        assert_eq!(
            of("a", "NumberOfMessagesReceived").unwrap().point.value,
            2.0
        );
        assert_eq!(of("a", "NumberOfEmptyReceives").unwrap().point.value, 2.0);
        assert_eq!(of("a", "NumberOfMessagesDeleted").unwrap().point.value, 1.0);
        let size = of("a", "SentMessageSize").unwrap();
        assert_eq!(size.point.value, 20.0);
        assert_eq!(size.point.unit, "Bytes");
        assert_eq!(
            size.stats,
            Some(StatSet {
                sample_count: 2.0,
                sum: 40.0,
                min: 10.0,
                max: 30.0
            })
        );
        // b only polled: zeros for the rest, no size.
        assert_eq!(of("b", "NumberOfMessagesSent").unwrap().point.value, 0.0);
        assert_eq!(of("b", "NumberOfEmptyReceives").unwrap().point.value, 1.0);
        assert!(of("b", "SentMessageSize").is_none());
        assert!(points.iter().all(|p| p.point.namespace == "AWS/SQS"));
        // Drained: the next flush has nothing to write.
        assert!(c.drain(2_000).is_empty());
    }
}
