//! Shard iterators: opaque tokens that carry the stream, the position to read from and when
//! they were issued, and the rules that turn an iterator type into a position.
//!
//! A position is the smallest sequence number not yet read (reads are `seq >= pos`); `0`
//! stands for TRIM_HORIZON, resolved when records are read, so an iterator at the horizon is
//! never "trimmed" however long it waits. Tokens are base64url text with a digest, so a
//! token that was not issued here (or was altered) is refused instead of misread.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// An iterator expires this long after it was issued, as on AWS.
pub const ITERATOR_TTL_MS: i64 = 15 * 60 * 1000;

const VERSION: &str = "1";
const DIGEST_HEX: usize = 16;

/// What a shard iterator carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Iterator {
    /// The stream's ARN (names the table and the stream's label).
    pub arn: String,
    /// The stream's store id (its records are `{uid}/{sequence number}`).
    pub uid: String,
    /// The first sequence number to read; 0 = the trim horizon.
    pub pos: u64,
    /// Epoch milliseconds.
    pub issued_ms: i64,
}

fn digest(body: &str) -> String {
    let mut h = Sha256::new();
    h.update(body.as_bytes());
    hex::encode(h.finalize())[..DIGEST_HEX].to_owned()
}

impl Iterator {
    pub fn encode(&self) -> String {
        let body = format!(
            "{VERSION}|{}|{}|{}|{}",
            self.uid, self.pos, self.issued_ms, self.arn
        );
        let sum = digest(&body);
        URL_SAFE_NO_PAD.encode(format!("{body}|{sum}"))
    }

    /// The iterator a token stands for; `None` when it is not one of ours.
    pub fn decode(token: &str) -> Option<Iterator> {
        let raw = URL_SAFE_NO_PAD.decode(token.trim()).ok()?;
        let text = String::from_utf8(raw).ok()?;
        let (body, sum) = text.rsplit_once('|')?;
        if digest(body) != sum {
            return None;
        }
        let mut parts = body.splitn(5, '|');
        if parts.next()? != VERSION {
            return None;
        }
        let uid = parts.next()?.to_owned();
        let pos = parts.next()?.parse().ok()?;
        let issued_ms = parts.next()?.parse().ok()?;
        let arn = parts.next()?.to_owned();
        Some(Iterator {
            arn,
            uid,
            pos,
            issued_ms,
        })
    }

    pub fn expired(&self, now_ms: i64) -> bool {
        now_ms - self.issued_ms > ITERATOR_TTL_MS
    }
}

/// A request's `ShardIteratorType` and the members it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    TrimHorizon,
    Latest,
    At(u64),
    After(u64),
    /// Epoch microseconds.
    AtTimestamp(u64),
}

/// A sequence number as a client sends it (decimal digits only). Numbers past `u64` (up to
/// the model's 40 digits) lie beyond every record, so they read as the largest position.
pub fn parse_seq(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(
        s.parse::<u128>()
            .map_or(u64::MAX, |n| n.min(u128::from(u64::MAX)) as u64),
    )
}

/// The facts about a shard that decide where an iterator starts.
#[derive(Debug, Clone, Copy)]
pub struct ShardView {
    /// Records older than this are trimmed (now − retention), in microseconds.
    pub trim: u64,
    /// Readers see only records below this (now − settle) while the stream is open.
    pub horizon: u64,
    /// The newest record's sequence number, if the shard has any.
    pub newest: Option<u64>,
    pub open: bool,
}

/// Why a start position cannot be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartError {
    /// The sequence number lies before the trim horizon.
    Trimmed,
}

/// The position an iterator of type `start` begins at.
pub fn position(start: Start, shard: &ShardView) -> Result<u64, StartError> {
    match start {
        Start::TrimHorizon => Ok(0),
        // Just after the newest record. Nothing is pending below the read horizon, so when the
        // newest record is older than it, the horizon is where later records will appear.
        Start::Latest => {
            let after = shard.newest.map_or(0, |n| n.saturating_add(1));
            Ok(if shard.open {
                after.max(shard.horizon)
            } else {
                after
            })
        }
        Start::At(seq) if seq < shard.trim => Err(StartError::Trimmed),
        Start::At(seq) => Ok(seq),
        Start::After(seq) if seq < shard.trim => Err(StartError::Trimmed),
        Start::After(seq) => Ok(seq.saturating_add(1)),
        // Before the horizon: from the oldest record kept, as Kinesis reads AT_TIMESTAMP.
        Start::AtTimestamp(micros) if micros < shard.trim => Ok(0),
        Start::AtTimestamp(micros) => Ok(micros),
    }
}

/// The lower bound a read from `pos` uses, or `Trimmed` when records it should return have
/// been trimmed meanwhile.
pub fn read_from(pos: u64, trim: u64) -> Result<u64, StartError> {
    match pos {
        0 => Ok(trim),
        p if p < trim => Err(StartError::Trimmed),
        p => Ok(p),
    }
}

/// Where the next read starts after one that returned records up to `last` (if any) from
/// `lo`. `complete`: the read returned every record below `until` (it was neither cut by its
/// limit nor by size), so nothing below `until` is left to read.
pub fn next_position(lo: u64, last: Option<u64>, complete: bool, until: u64) -> u64 {
    let after = last.map_or(lo, |l| l.saturating_add(1));
    if complete { after.max(until) } else { after }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn it() -> Iterator {
        Iterator {
            arn: "arn:aws:dynamodb:us-east-1:000000000000:table/t/stream/2026-12-06T08:42:44.123"
                .into(),
            uid: "0123456789abcdef0123456789abcdef".into(),
            pos: 1_796_546_564_123_456,
            issued_ms: 1_796_546_564_000,
        }
    }

    #[test]
    fn tokens_round_trip_and_refuse_what_we_did_not_issue() {
        let t = it().encode();
        assert!(
            t.len() <= 2048,
            "the model caps iterators at 2048 characters"
        );
        assert_eq!(Iterator::decode(&t), Some(it()));
        assert_eq!(
            Iterator::decode("not-an-iterator-xxxxxxxxxxxxxxxxxxxxxxxxxx"),
            None
        );
        assert_eq!(Iterator::decode(""), None);
        // Altered: a different position under the old digest.
        let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(&t).unwrap()).unwrap();
        let forged = URL_SAFE_NO_PAD.encode(raw.replace("|1796546564123456|", "|1|"));
        assert_eq!(Iterator::decode(&forged), None);
        // Two positions give two different tokens.
        let mut other = it();
        other.pos += 1;
        assert_ne!(other.encode(), t);
    }

    #[test]
    fn iterators_expire_after_fifteen_minutes() {
        let i = it();
        assert!(!i.expired(i.issued_ms));
        assert!(!i.expired(i.issued_ms + ITERATOR_TTL_MS));
        assert!(i.expired(i.issued_ms + ITERATOR_TTL_MS + 1));
    }

    #[test]
    fn sequence_numbers_are_digits() {
        assert_eq!(
            parse_seq("000001796546564123456"),
            Some(1_796_546_564_123_456)
        );
        assert_eq!(parse_seq("12a"), None);
        assert_eq!(parse_seq(""), None);
        assert_eq!(parse_seq("-1"), None);
        assert_eq!(parse_seq(&"9".repeat(40)), Some(u64::MAX));
    }

    fn shard(newest: Option<u64>, open: bool) -> ShardView {
        ShardView {
            trim: 1_000,
            horizon: 5_000,
            newest,
            open,
        }
    }

    #[test]
    fn positions_of_each_iterator_type() {
        let s = shard(Some(4_000), true);
        assert_eq!(position(Start::TrimHorizon, &s), Ok(0));
        assert_eq!(position(Start::At(2_000), &s), Ok(2_000));
        assert_eq!(position(Start::After(2_000), &s), Ok(2_001));
        assert_eq!(position(Start::At(999), &s), Err(StartError::Trimmed));
        assert_eq!(position(Start::After(999), &s), Err(StartError::Trimmed));
        assert_eq!(position(Start::At(1_000), &s), Ok(1_000));
        assert_eq!(position(Start::AtTimestamp(3_000), &s), Ok(3_000));
        assert_eq!(position(Start::AtTimestamp(10), &s), Ok(0));
        // LATEST: after the newest record, or at the read horizon when that is later.
        assert_eq!(position(Start::Latest, &s), Ok(5_000));
        assert_eq!(
            position(Start::Latest, &shard(Some(7_000), true)),
            Ok(7_001)
        );
        assert_eq!(position(Start::Latest, &shard(None, true)), Ok(5_000));
        // A closed shard gets nothing new: LATEST is just past its last record.
        assert_eq!(
            position(Start::Latest, &shard(Some(4_000), false)),
            Ok(4_001)
        );
        assert_eq!(position(Start::Latest, &shard(None, false)), Ok(0));
    }

    #[test]
    fn reads_start_at_the_horizon_or_fail_when_trimmed() {
        assert_eq!(read_from(0, 1_000), Ok(1_000));
        assert_eq!(read_from(1_500, 1_000), Ok(1_500));
        assert_eq!(read_from(999, 1_000), Err(StartError::Trimmed));
    }

    #[test]
    fn the_next_position_never_skips_what_a_cut_read_left() {
        // Cut by the limit: right after the last record returned.
        assert_eq!(next_position(100, Some(300), false, 5_000), 301);
        // Complete: everything below the read bound was returned, so the next read starts there
        // (an idle reader's position keeps up with the clock and is never trimmed).
        assert_eq!(next_position(100, Some(300), true, 5_000), 5_000);
        assert_eq!(next_position(100, None, true, 5_000), 5_000);
        // A position past the bound stays.
        assert_eq!(next_position(6_000, None, true, 5_000), 6_000);
        assert_eq!(next_position(6_000, Some(6_500), true, 5_000), 6_501);
    }
}
