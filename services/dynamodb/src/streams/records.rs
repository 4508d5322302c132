//! Reading a shard: its records in sequence order from a position, as GetRecords returns them
//! (at most `limit` records and about 1 MB), and the facts DescribeStream and
//! GetShardIterator show about it.

use basalt_core::AwsError;
use basalt_store::StateStore;
use serde_json::Value;

use super::iterator::{ShardView, parse_seq};
use super::{SETTLE_MS, format_seq};
use crate::keys::upper;
use crate::model::{STREAM, now_secs};

/// GetRecords returns at most this many bytes of records (and at least one record).
pub const MAX_PAGE_BYTES: usize = 1024 * 1024;

pub fn now_micros() -> u64 {
    (now_secs() * 1e6) as u64
}

fn key(uid: &str, seq: u64) -> String {
    format!("{uid}/{}", format_seq(seq))
}

fn end_of(uid: &str) -> String {
    upper(&format!("{uid}/"))
}

fn seq_of_key(k: &str) -> Option<u64> {
    k.rsplit_once('/').and_then(|(_, s)| parse_seq(s))
}

/// The sequence number of the first record at or after `from`, and of the newest record.
pub fn bounds(
    state: &dyn StateStore,
    uid: &str,
    from: u64,
) -> Result<(Option<u64>, Option<u64>), AwsError> {
    let hi = end_of(uid);
    let first = state.range(STREAM, &key(uid, from), &hi, false, 1)?;
    let newest = state.range(STREAM, &key(uid, from), &hi, true, 1)?;
    Ok((
        first.first().and_then(|(k, _)| seq_of_key(k)),
        newest.first().and_then(|(k, _)| seq_of_key(k)),
    ))
}

/// The shard as an iterator sees it at `now` (microseconds).
pub fn view(
    state: &dyn StateStore,
    uid: &str,
    open: bool,
    now: u64,
    retention_ms: i64,
) -> Result<ShardView, AwsError> {
    let trim = trim_point(now, retention_ms);
    let (_, newest) = bounds(state, uid, trim)?;
    Ok(ShardView {
        trim,
        horizon: now.saturating_sub(SETTLE_MS * 1000),
        newest,
        open,
    })
}

/// Records older than this (microseconds) are past the retention period.
pub fn trim_point(now: u64, retention_ms: i64) -> u64 {
    now.saturating_sub(retention_ms.max(0) as u64 * 1000)
}

/// One read of a shard.
#[derive(Debug)]
pub struct Page {
    pub records: Vec<Value>,
    /// The sequence number of the last record returned.
    pub last: Option<u64>,
    /// Every record in `[lo, hi)` was returned (neither the limit nor the size cut the read).
    pub complete: bool,
}

/// The records in `[lo, hi)` (`hi = None`: to the end), at most `limit` and about
/// [`MAX_PAGE_BYTES`].
pub fn read(
    state: &dyn StateStore,
    uid: &str,
    lo: u64,
    hi: Option<u64>,
    limit: usize,
) -> Result<Page, AwsError> {
    let hi_key = hi.map_or_else(|| end_of(uid), |h| key(uid, h));
    let lo_key = key(uid, lo);
    if lo_key >= hi_key {
        return Ok(Page {
            records: Vec::new(),
            last: None,
            complete: true,
        });
    }
    let rows = state.range(STREAM, &lo_key, &hi_key, false, limit)?;
    let mut complete = rows.len() < limit;
    let mut records = Vec::with_capacity(rows.len());
    let mut bytes = 0usize;
    let mut last = None;
    for (k, raw) in rows {
        if !records.is_empty() && bytes + raw.len() > MAX_PAGE_BYTES {
            complete = false;
            break;
        }
        bytes += raw.len();
        let rec: Value = serde_json::from_slice(&raw).map_err(|e| crate::corrupt("stream", e))?;
        last = seq_of_key(&k);
        records.push(rec);
    }
    Ok(Page {
        records,
        last,
        complete,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use basalt_store::Store;

    fn store_with(uid: &str, seqs: &[u64]) -> Store {
        let s = Store::ephemeral();
        for seq in seqs {
            let body = serde_json::json!({"dynamodb": {"SequenceNumber": format_seq(*seq)}});
            s.state
                .put(STREAM, &key(uid, *seq), body.to_string().as_bytes())
                .unwrap();
        }
        // Another stream's records, which no read of `uid` may see.
        s.state.put(STREAM, &key("other", 150), b"{}").unwrap();
        s
    }

    fn seqs(p: &Page) -> Vec<u64> {
        p.records
            .iter()
            .map(|r| parse_seq(r["dynamodb"]["SequenceNumber"].as_str().unwrap()).unwrap())
            .collect()
    }

    #[test]
    fn reads_are_ranges_of_one_stream() {
        let s = store_with("u1", &[100, 200, 300, 400]);
        let st = s.state.as_ref();
        let p = read(st, "u1", 0, None, 1000).unwrap();
        assert_eq!(seqs(&p), [100, 200, 300, 400]);
        assert!(p.complete);
        assert_eq!(p.last, Some(400));
        // The upper bound is exclusive: records at or past the read horizon wait.
        let p = read(st, "u1", 200, Some(400), 1000).unwrap();
        assert_eq!(seqs(&p), [200, 300]);
        assert!(p.complete);
        // Cut by the limit.
        let p = read(st, "u1", 0, None, 2).unwrap();
        assert_eq!(seqs(&p), [100, 200]);
        assert!(!p.complete);
        // Nothing in range.
        let p = read(st, "u1", 500, Some(400), 10).unwrap();
        assert!(p.records.is_empty() && p.complete && p.last.is_none());
        assert_eq!(bounds(st, "u1", 150).unwrap(), (Some(200), Some(400)));
        assert_eq!(bounds(st, "u1", 401).unwrap(), (None, None));
        assert_eq!(bounds(st, "nope", 0).unwrap(), (None, None));
    }

    #[test]
    fn a_page_stops_near_one_megabyte() {
        let s = Store::ephemeral();
        let big = "x".repeat(400 * 1024);
        for seq in 1..=4u64 {
            let body =
                serde_json::json!({"dynamodb": {"SequenceNumber": format_seq(seq)}, "pad": big});
            s.state
                .put(STREAM, &key("u", seq), body.to_string().as_bytes())
                .unwrap();
        }
        let p = read(s.state.as_ref(), "u", 0, None, 1000).unwrap();
        assert_eq!(seqs(&p), [1, 2]);
        assert!(!p.complete);
        // A single record over the limit is still returned, or the reader could never pass it.
        let huge = serde_json::json!({"dynamodb": {"SequenceNumber": format_seq(9)}, "pad": "y".repeat(MAX_PAGE_BYTES + 10)});
        s.state
            .put(STREAM, &key("v", 9), huge.to_string().as_bytes())
            .unwrap();
        let p = read(s.state.as_ref(), "v", 0, None, 1000).unwrap();
        assert_eq!(seqs(&p), [9]);
    }

    #[test]
    fn the_trim_point_is_the_retention_behind_now() {
        assert_eq!(trim_point(10_000_000, 3_000), 7_000_000);
        assert_eq!(trim_point(1_000, 3_000), 0);
    }
}
