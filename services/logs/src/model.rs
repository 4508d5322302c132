//! Records and keys. A group is `{scope}/{group}`; a stream `{scope}/{group}:{stream}` (`:`
//! is in neither name's alphabet for groups, and in streams only after the group); events
//! of a stream are keyed `{scope}/{group}:{stream id}/{timestamp:015}{seq:010}`, so a scan
//! reads one stream in time order. Streams get an id because their names may hold `/`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const GROUPS: &str = "logs.groups";
pub const STREAMS: &str = "logs.streams";
pub const EVENTS: &str = "logs.events";

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct GroupRec {
    pub creation_time: i64,
    #[serde(default)]
    pub retention_days: Option<i64>,
    #[serde(default)]
    pub kms_key_id: Option<String>,
    #[serde(default)]
    pub class: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub deletion_protection: bool,
    #[serde(default)]
    pub subscriptions: Vec<crate::subscriptions::SubFilter>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metric_filters: Vec<crate::metric_filters::MetricFilter>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct StreamRec {
    pub id: String,
    pub creation_time: i64,
    #[serde(default)]
    pub first_event: Option<i64>,
    #[serde(default)]
    pub last_event: Option<i64>,
    #[serde(default)]
    pub last_ingestion: Option<i64>,
    #[serde(default)]
    pub stored_bytes: i64,
    /// Sequence number of the next event.
    #[serde(default)]
    pub seq: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventRec {
    /// Ingestion time.
    pub i: i64,
    pub m: String,
}

pub fn group_key(scope: &str, group: &str) -> String {
    format!("{scope}/{group}")
}

pub fn stream_key(scope: &str, group: &str, stream: &str) -> String {
    format!("{scope}/{group}:{stream}")
}

pub fn events_prefix(scope: &str, group: &str, stream_id: &str) -> String {
    format!("{scope}/{group}:{stream_id}/")
}

/// The position of an event within its stream: `{timestamp:015}{seq:010}`.
pub fn position(ts: i64, seq: u64) -> String {
    format!("{:015}{:010}", ts.max(0), seq % 10_000_000_000)
}

/// Timestamp and sequence of a position.
pub fn parse_position(p: &str) -> Option<(i64, u64)> {
    if p.len() != 25 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((p[..15].parse().ok()?, p[15..].parse().ok()?))
}

pub fn group_arn(region: &str, account: &str, group: &str) -> String {
    format!("arn:aws:logs:{region}:{account}:log-group:{group}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_sort_by_time_then_sequence_and_parse_back() {
        let a = position(1_700_000_000_000, 9);
        let b = position(1_700_000_000_000, 10);
        let c = position(1_700_000_000_001, 0);
        assert!(a < b && b < c, "byte order is time order");
        assert_eq!(parse_position(&b), Some((1_700_000_000_000, 10)));
        assert_eq!(parse_position("12"), None);
        assert_eq!(parse_position(&"x".repeat(25)), None);
        // Negative timestamps clamp to zero rather than breaking the order.
        assert_eq!(parse_position(&position(-5, 1)), Some((0, 1)));
    }

    #[test]
    fn stream_keys_of_one_group_share_its_prefix_only() {
        let g = stream_key("a/r", "/aws/lambda/f", "");
        assert!(stream_key("a/r", "/aws/lambda/f", "2026/01/01/[$LATEST]x").starts_with(&g));
        assert!(!stream_key("a/r", "/aws/lambda/f2", "s").starts_with(&g));
    }
}
