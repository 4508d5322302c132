//! Finding a stream from its ARN, and the names AWS gives its parts: the ARN
//! (`arn:aws:dynamodb:<region>:<account>:table/<name>/stream/<label>`), the label (the
//! stream's creation time) and the id of its one shard.

use basalt_core::AwsError;

use crate::DynamoDb;
use crate::model::{StreamRec, TableRec};

/// The parts of a stream ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamArn {
    pub region: String,
    pub account: String,
    pub table: String,
    pub label: String,
}

/// A stream ARN's parts; `None` when the text is not one.
pub fn parse_arn(arn: &str) -> Option<StreamArn> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ["arn", _, "dynamodb", region, account, resource] = parts.as_slice() else {
        return None;
    };
    let (table, label) = resource.strip_prefix("table/")?.split_once("/stream/")?;
    if region.is_empty() || account.is_empty() || table.is_empty() || label_ms(label).is_none() {
        return None;
    }
    Some(StreamArn {
        region: (*region).to_owned(),
        account: (*account).to_owned(),
        table: table.to_owned(),
        label: label.to_owned(),
    })
}

/// A label's time in epoch milliseconds (`2026-12-06T08:42:44.123`).
pub fn label_ms(label: &str) -> Option<i64> {
    let b = label.as_bytes();
    if b.len() != 23
        || [4, 7].iter().any(|&i| b[i] != b'-')
        || b[10] != b'T'
        || [13, 16].iter().any(|&i| b[i] != b':')
        || b[19] != b'.'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = label.get(r)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss, ms) = (num(11..13)?, num(14..16)?, num(17..19)?, num(20..23)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 59 {
        return None;
    }
    let days = days_from_civil(y, m, d);
    Some(((days * 86_400 + hh * 3600 + mm * 60 + ss) * 1000) + ms)
}

/// (year, month, day) → days since 1970-01-01, proleptic Gregorian (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The id of a stream's one shard, shaped as AWS's (`shardId-00000001573689847184-864758bb`:
/// the creation time in milliseconds, zero-padded to 20 digits, and 8 hex digits).
pub fn shard_id(s: &StreamRec) -> String {
    let ms = label_ms(&s.label).unwrap_or(0).max(0);
    let tail: String = s.uid.chars().take(8).collect();
    format!("shardId-{ms:020}-{tail:0>8}")
}

/// A stream found by its ARN: its table, itself, and whether it still gets records.
pub struct Located {
    pub arn: String,
    pub table: TableRec,
    pub stream: StreamRec,
    pub open: bool,
}

pub fn stream_not_found(arn: &str) -> AwsError {
    AwsError::resource_not_found(format!(
        "Requested resource not found: Stream: {arn} not found"
    ))
}

pub fn invalid_arn(arn: &str) -> AwsError {
    AwsError::validation(format!("Invalid StreamArn: {arn}"))
}

/// The stream `arn` names, or ValidationException (not a stream ARN) /
/// ResourceNotFoundException (no such stream).
pub fn locate(d: &DynamoDb, arn: &str) -> Result<Located, AwsError> {
    let parts = parse_arn(arn).ok_or_else(|| invalid_arn(arn))?;
    let table = d
        .load(&parts.account, &parts.region, &parts.table)?
        .ok_or_else(|| stream_not_found(arn))?;
    let current = table
        .stream
        .as_ref()
        .filter(|s| s.label == parts.label)
        .cloned();
    let (stream, open) = match current {
        Some(s) => {
            let open = s.enabled;
            (s, open)
        }
        None => match table
            .old_streams
            .iter()
            .rev()
            .find(|s| s.label == parts.label)
        {
            Some(s) => (s.clone(), false),
            None => return Err(stream_not_found(arn)),
        },
    };
    Ok(Located {
        arn: table.stream_arn(&stream),
        table,
        stream,
        open,
    })
}

/// Whether the stream with store id `uid` that `arn` names still gets records: it is its
/// table's current, enabled stream. A deleted table's, or a disabled stream, is closed for
/// good (writes check the table record they were decided against, so none commits into a
/// stream after it closed).
pub fn is_open(d: &DynamoDb, arn: &StreamArn, uid: &str) -> Result<bool, AwsError> {
    Ok(d.load(&arn.account, &arn.region, &arn.table)?
        .and_then(|t| t.stream)
        .is_some_and(|s| s.enabled && s.uid == uid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_creation_times() {
        assert_eq!(label_ms("1970-01-01T00:00:00.000"), Some(0));
        assert_eq!(label_ms("2026-12-06T08:42:44.123"), Some(1_796_546_564_123));
        assert_eq!(label_ms("2024-02-29T23:59:59.999"), Some(1_709_251_199_999));
        for bad in [
            "",
            "2026-12-06T08:42:44",
            "2026-13-06T08:42:44.123",
            "2026-12-06 08:42:44.123",
            "x026-12-06T08:42:44.123",
        ] {
            assert_eq!(label_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn stream_arns() {
        let a = parse_arn("arn:aws:dynamodb:eu-west-1:123456789012:table/my.table-1/stream/2026-12-06T08:42:44.123").unwrap();
        assert_eq!(
            a,
            StreamArn {
                region: "eu-west-1".into(),
                account: "123456789012".into(),
                table: "my.table-1".into(),
                label: "2026-12-06T08:42:44.123".into(),
            }
        );
        for bad in [
            "sdfadfsdfnlfkajakfgjalksfgklasjklasdjfklasdfasdfgasf",
            "arn:aws:dynamodb:eu-west-1:123456789012:table/t",
            "arn:aws:dynamodb:eu-west-1:123456789012:table/t/stream/nope",
            "arn:aws:sqs:eu-west-1:123456789012:table/t/stream/2026-12-06T08:42:44.123",
            "arn:aws:dynamodb::123456789012:table/t/stream/2026-12-06T08:42:44.123",
        ] {
            assert_eq!(parse_arn(bad), None, "{bad}");
        }
    }

    #[test]
    fn shard_ids_look_like_aws_ones() {
        let s = StreamRec {
            enabled: true,
            view_type: "KEYS_ONLY".into(),
            label: "2019-11-14T00:04:07.184".into(),
            uid: "864758bbaaaa".into(),
        };
        let id = shard_id(&s);
        assert_eq!(id, "shardId-00000001573689847184-864758bb");
        // botocore's ShardId: 28 to 65 characters.
        assert!((28..=65).contains(&id.len()));
    }
}
