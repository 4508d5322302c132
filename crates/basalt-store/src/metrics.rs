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
//!
//! Records are written in a compact binary form ([`encode`]): a GetMetricData over a million
//! points decodes every one of them, and JSON with a flattened struct cost ~1.8 µs a point,
//! most of it allocation. [`Metrics::for_each_between`] reads them without allocating (names
//! and dimensions are compared in place). Records written as JSON by earlier versions are
//! still read.

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
            .map(|p| self.point_op(p, encode(p, None, None, None)))
            .collect();
        ops.extend(index_ops(points.iter()));
        ops
    }

    /// The writes that store points with their extra members (PutMetricData).
    pub fn stored_ops(&self, points: &[StoredPoint]) -> Vec<WriteOp> {
        let mut ops: Vec<WriteOp> = points
            .iter()
            .map(|p| {
                self.point_op(
                    &p.point,
                    encode(
                        &p.point,
                        p.stats.as_ref(),
                        p.values.as_deref(),
                        p.storage_resolution,
                    ),
                )
            })
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
                let Some(p) = decode(&v) else {
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
                    .filter_map(|(_, v)| decode(&v).map(|p| p.point)),
            );
            if done {
                return Ok(out);
            }
        }
    }
}

impl Metrics {
    /// Calls `f` with every point of one metric (every dimension set) with a timestamp in
    /// `range` (epoch milliseconds), oldest first, without copying it out of its record.
    pub fn for_each_between(
        &self,
        account_id: &str,
        region: &str,
        namespace: &str,
        metric: &str,
        range: std::ops::Range<i64>,
        mut f: impl FnMut(&PointRef<'_>),
    ) -> Result<(), StoreError> {
        let (start_ms, end_ms) = (range.start, range.end);
        let prefix = prefix(account_id, region, namespace, metric);
        let mut after = format!("{prefix}{:014}", start_ms.max(0));
        loop {
            let page = self
                .state
                .scan(DATAPOINT_TABLE, &prefix, Some(&after), 1000)?;
            let done = page.len() < 1000;
            if let Some((k, _)) = page.last() {
                after = k.clone();
            }
            for (_, v) in &page {
                let owned;
                let p = if v.first() == Some(&VERSION) {
                    match PointRef::parse(v) {
                        Some(p) => p,
                        None => continue,
                    }
                } else {
                    owned = match serde_json::from_slice::<StoredPoint>(v) {
                        Ok(p) => p,
                        Err(_) => continue,
                    };
                    PointRef::of(&owned)
                };
                if p.timestamp_ms >= end_ms {
                    return Ok(());
                }
                // Another metric whose namespace and name join to the same prefix.
                if p.namespace == namespace && p.metric == metric {
                    f(&p);
                }
            }
            if done {
                return Ok(());
            }
        }
    }
}

/// The first byte of a binary record; a JSON record starts with `{`.
const VERSION: u8 = 1;

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// The binary record of a point: version, timestamp, value, flags, unit, namespace, metric,
/// account, region, dimensions (sorted), then the statistic set, the values with counts and
/// the storage resolution where the flags say so. Numbers little-endian, strings
/// length-prefixed (u32).
pub fn encode(
    p: &DataPoint,
    stats: Option<&StatSet>,
    values: Option<&[(f64, f64)]>,
    resolution: Option<u32>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + p.namespace.len() + p.metric.len());
    out.push(VERSION);
    out.extend_from_slice(&p.timestamp_ms.to_le_bytes());
    out.extend_from_slice(&p.value.to_le_bytes());
    let flags = u8::from(stats.is_some())
        | (u8::from(values.is_some()) << 1)
        | (u8::from(resolution.is_some()) << 2);
    out.push(flags);
    for s in [&p.unit, &p.namespace, &p.metric, &p.account_id, &p.region] {
        put_str(&mut out, s);
    }
    out.extend_from_slice(&(p.dimensions.len() as u32).to_le_bytes());
    for (k, v) in &p.dimensions {
        put_str(&mut out, k);
        put_str(&mut out, v);
    }
    if let Some(s) = stats {
        for x in [s.sample_count, s.sum, s.min, s.max] {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
    if let Some(vs) = values {
        out.extend_from_slice(&(vs.len() as u32).to_le_bytes());
        for (v, c) in vs {
            out.extend_from_slice(&v.to_le_bytes());
            out.extend_from_slice(&c.to_le_bytes());
        }
    }
    if let Some(r) = resolution {
        out.extend_from_slice(&r.to_le_bytes());
    }
    out
}

/// The bytes a binary record holds for `dims` (after their count): equal maps, equal keys.
pub fn dims_key(dims: &BTreeMap<String, String>) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in dims {
        put_str(&mut out, k);
        put_str(&mut out, v);
    }
    out
}

/// A stored record, binary or JSON, as a [`StoredPoint`].
pub fn decode(raw: &[u8]) -> Option<StoredPoint> {
    if raw.first() != Some(&VERSION) {
        return serde_json::from_slice(raw).ok();
    }
    let r = PointRef::parse(raw)?;
    Some(StoredPoint {
        point: DataPoint {
            account_id: r.account_id.to_owned(),
            region: r.region.to_owned(),
            namespace: r.namespace.to_owned(),
            metric: r.metric.to_owned(),
            dimensions: r.dimensions.to_map(),
            value: r.value,
            unit: r.unit.to_owned(),
            timestamp_ms: r.timestamp_ms,
        },
        stats: r.stats,
        values: r.values.map(|v| v.iter().collect()),
        storage_resolution: r.storage_resolution,
    })
}

/// A little-endian reader over a record; `None` past its end.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.bytes(1).map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.bytes(4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap_or_default()))
    }
    fn i64(&mut self) -> Option<i64> {
        self.bytes(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap_or_default()))
    }
    fn f64(&mut self) -> Option<f64> {
        self.bytes(8)
            .map(|b| f64::from_le_bytes(b.try_into().unwrap_or_default()))
    }
    fn str(&mut self) -> Option<&'a str> {
        let n = self.u32()? as usize;
        std::str::from_utf8(self.bytes(n)?).ok()
    }
}

/// The dimensions of a [`PointRef`]: in the record, or in a decoded JSON point.
#[derive(Debug, Clone, Copy)]
pub enum DimsRef<'a> {
    /// `count` pairs of length-prefixed strings, sorted by name.
    Raw {
        count: u32,
        bytes: &'a [u8],
    },
    Map(&'a BTreeMap<String, String>),
}

impl DimsRef<'_> {
    /// Whether these are exactly `want`, compared in place.
    pub fn equals(&self, want: &BTreeMap<String, String>) -> bool {
        match self {
            DimsRef::Map(m) => *m == want,
            DimsRef::Raw { count, bytes } => {
                if *count as usize != want.len() {
                    return false;
                }
                let mut r = Reader(bytes);
                want.iter()
                    .all(|(k, v)| r.str() == Some(k.as_str()) && r.str() == Some(v.as_str()))
            }
        }
    }

    /// The canonical bytes of these dimensions (what [`dims_key`] makes of a map), to look
    /// a point's dimension set up among many.
    pub fn key(&self) -> std::borrow::Cow<'_, [u8]> {
        match self {
            DimsRef::Raw { bytes, .. } => std::borrow::Cow::Borrowed(bytes),
            DimsRef::Map(m) => std::borrow::Cow::Owned(dims_key(m)),
        }
    }

    pub fn to_map(&self) -> BTreeMap<String, String> {
        match self {
            DimsRef::Map(m) => (*m).clone(),
            DimsRef::Raw { count, bytes } => {
                let mut r = Reader(bytes);
                (0..*count)
                    .map_while(|_| Some((r.str()?.to_owned(), r.str()?.to_owned())))
                    .collect()
            }
        }
    }
}

/// `(value, count)` pairs of a [`PointRef`].
#[derive(Debug, Clone, Copy)]
pub enum ValuesRef<'a> {
    Raw { count: u32, bytes: &'a [u8] },
    Slice(&'a [(f64, f64)]),
}

impl ValuesRef<'_> {
    pub fn iter(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        let (raw, slice) = match self {
            ValuesRef::Raw { count, bytes } => (Some((*count, *bytes)), None),
            ValuesRef::Slice(s) => (None, Some(*s)),
        };
        let from_raw = raw.into_iter().flat_map(|(count, bytes)| {
            let mut r = Reader(bytes);
            (0..count).map_while(move |_| Some((r.f64()?, r.f64()?)))
        });
        from_raw.chain(slice.into_iter().flatten().copied())
    }
}

/// One stored point, borrowed from its record.
#[derive(Debug, Clone, Copy)]
pub struct PointRef<'a> {
    pub timestamp_ms: i64,
    pub value: f64,
    pub unit: &'a str,
    pub namespace: &'a str,
    pub metric: &'a str,
    pub account_id: &'a str,
    pub region: &'a str,
    pub dimensions: DimsRef<'a>,
    pub stats: Option<StatSet>,
    pub values: Option<ValuesRef<'a>>,
    pub storage_resolution: Option<u32>,
}

impl<'a> PointRef<'a> {
    /// A binary record.
    fn parse(raw: &'a [u8]) -> Option<PointRef<'a>> {
        let mut r = Reader(raw);
        if r.u8()? != VERSION {
            return None;
        }
        let timestamp_ms = r.i64()?;
        let value = r.f64()?;
        let flags = r.u8()?;
        let unit = r.str()?;
        let namespace = r.str()?;
        let metric = r.str()?;
        let account_id = r.str()?;
        let region = r.str()?;
        let count = r.u32()?;
        let dims_start = r.0;
        for _ in 0..count {
            r.str()?;
            r.str()?;
        }
        let dims_len = dims_start.len() - r.0.len();
        let stats = if flags & 1 != 0 {
            Some(StatSet {
                sample_count: r.f64()?,
                sum: r.f64()?,
                min: r.f64()?,
                max: r.f64()?,
            })
        } else {
            None
        };
        let values = if flags & 2 != 0 {
            let n = r.u32()?;
            let bytes = r.bytes(n as usize * 16)?;
            Some(ValuesRef::Raw { count: n, bytes })
        } else {
            None
        };
        let storage_resolution = if flags & 4 != 0 { Some(r.u32()?) } else { None };
        Some(PointRef {
            timestamp_ms,
            value,
            unit,
            namespace,
            metric,
            account_id,
            region,
            dimensions: DimsRef::Raw {
                count,
                bytes: &dims_start[..dims_len],
            },
            stats,
            values,
            storage_resolution,
        })
    }

    /// A decoded point (a JSON record).
    pub fn of(p: &'a StoredPoint) -> PointRef<'a> {
        PointRef {
            timestamp_ms: p.point.timestamp_ms,
            value: p.point.value,
            unit: &p.point.unit,
            namespace: &p.point.namespace,
            metric: &p.point.metric,
            account_id: &p.point.account_id,
            region: &p.point.region,
            dimensions: DimsRef::Map(&p.point.dimensions),
            stats: p.stats,
            values: p.values.as_deref().map(ValuesRef::Slice),
            storage_resolution: p.storage_resolution,
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

    fn sample() -> StoredPoint {
        StoredPoint {
            point: DataPoint {
                account_id: "123456789012".into(),
                region: "eu-west-1".into(),
                namespace: "App/Ns".into(),
                metric: "Latency".into(),
                dimensions: BTreeMap::from([
                    ("Api".into(), "get".into()),
                    ("Zone".into(), "é-1".into()),
                ]),
                value: 12.5,
                unit: "Milliseconds".into(),
                timestamp_ms: 1_700_000_000_123,
            },
            stats: Some(StatSet {
                sample_count: 3.0,
                sum: 30.0,
                min: 5.0,
                max: 15.0,
            }),
            values: Some(vec![(1.0, 2.0), (3.5, 1.0)]),
            storage_resolution: Some(1),
        }
    }

    #[test]
    fn binary_records_round_trip_and_json_ones_still_read() {
        let p = sample();
        let raw = encode(
            &p.point,
            p.stats.as_ref(),
            p.values.as_deref(),
            p.storage_resolution,
        );
        assert_eq!(decode(&raw), Some(p.clone()));
        let plain = encode(&p.point, None, None, None);
        let got = decode(&plain).unwrap();
        assert_eq!(got.point, p.point);
        assert_eq!(
            (got.stats, got.values, got.storage_resolution),
            (None, None, None)
        );
        // A record of an earlier version.
        assert_eq!(decode(&serde_json::to_vec(&p).unwrap()), Some(p.clone()));
        // Truncated records are skipped, never a panic.
        for n in 0..raw.len() {
            assert!(decode(&raw[..n]).is_none(), "{n}");
        }
    }

    #[test]
    fn dimensions_compare_in_place() {
        let p = sample();
        let raw = encode(&p.point, None, None, None);
        let r = PointRef::parse(&raw).unwrap();
        assert!(r.dimensions.equals(&p.point.dimensions));
        let mut other = p.point.dimensions.clone();
        other.insert("Api".into(), "put".into());
        assert!(!r.dimensions.equals(&other));
        other.remove("Api");
        assert!(!r.dimensions.equals(&other));
        assert!(!r.dimensions.equals(&BTreeMap::new()));
        assert_eq!(r.dimensions.to_map(), p.point.dimensions);
        assert_eq!(
            &*r.dimensions.key(),
            dims_key(&p.point.dimensions).as_slice()
        );
        assert_eq!(
            &*DimsRef::Map(&p.point.dimensions).key(),
            dims_key(&p.point.dimensions).as_slice()
        );
    }

    #[test]
    fn for_each_between_reads_both_forms_in_order() {
        let state = Arc::new(crate::MemoryState::default());
        let m = Metrics::new(state.clone());
        let mut old = sample();
        old.point.timestamp_ms = 5;
        old.point.value = 1.0;
        // A JSON record, as an earlier version wrote it.
        state
            .batch(&[m.point_op(&old.point, serde_json::to_vec(&old).unwrap())])
            .unwrap();
        let mut new = sample();
        new.point.timestamp_ms = 7;
        new.point.value = 2.0;
        new.stats = None;
        state.batch(&m.stored_ops(&[new.clone()])).unwrap();
        let mut late = new.clone();
        late.point.timestamp_ms = 9;
        state.batch(&m.stored_ops(&[late])).unwrap();
        let mut seen = Vec::new();
        m.for_each_between(
            "123456789012",
            "eu-west-1",
            "App/Ns",
            "Latency",
            0..9,
            |p| {
                let values: Vec<(f64, f64)> =
                    p.values.map(|v| v.iter().collect()).unwrap_or_default();
                seen.push((p.timestamp_ms, p.value, p.stats.is_some(), values));
            },
        )
        .unwrap();
        assert_eq!(
            seen,
            [
                (5, 1.0, true, vec![(1.0, 2.0), (3.5, 1.0)]),
                (7, 2.0, false, vec![(1.0, 2.0), (3.5, 1.0)]),
            ]
        );
    }
}
