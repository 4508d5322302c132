//! The S3 model layer: stored records, ETags, checksums, listing logic. No HTTP here.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use md5::{Digest as _, Md5};
use serde::{Deserialize, Serialize};

pub const T_BUCKETS: &str = "s3.buckets";
pub const T_OBJECTS: &str = "s3.objects";
pub const T_UPLOADS: &str = "s3.uploads";
pub const T_PARTS: &str = "s3.parts";
/// Every version of every key, in buckets that have had versioning (see `service::versions`).
pub const T_VERSIONS: &str = "s3.versions";
/// Per key of a versioned bucket, the sequence number of its last versioned write: every such
/// write replaces it under a precondition, so writes of one key from several nodes serialize.
pub const T_VERSION_HEADS: &str = "s3.version_heads";

/// Objects up to this size are stored inline in their metadata record (one SQLite commit, no
/// blob file).
pub const INLINE_MAX: usize = 64 * 1024;
/// Minimum size of every part but the last.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BucketMeta {
    pub name: String,
    pub created_ms: i64,
    pub region: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub versioning: Option<String>,
    /// PutBucketNotificationConfiguration's configuration (absent in records written before).
    #[serde(default, skip_serializing_if = "Notifications::is_empty")]
    pub notifications: Notifications,
    /// PutBucketEncryption's default for objects written without SSE headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<DefaultEncryption>,
    /// The owning account (absent in records written before accounts: the server's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// The bucket ACL's grants (absent: the owner's FULL_CONTROL alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acl: Option<Vec<crate::acl::Grant>>,
    /// The bucket policy, as put (JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_access_block: Option<PublicAccessBlock>,
    /// Object Ownership: `BucketOwnerEnforced`, `BucketOwnerPreferred` or `ObjectWriter`
    /// (absent: no ownership controls, which behaves as `ObjectWriter`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ownership: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_lock: Option<crate::lock::LockConfig>,
    /// PutBucketLifecycleConfiguration's rules (s3s's DTO, see `crate::lifecycle`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<s3s::dto::BucketLifecycleConfiguration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cors: Option<s3s::dto::CORSConfiguration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<crate::tags::Tags>,
    /// PutBucketLogging's target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logging: Option<LoggingTarget>,
    /// PutBucketWebsite's configuration (s3s's DTO).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website: Option<s3s::dto::WebsiteConfiguration>,
}

/// Where a bucket's access logs go.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LoggingTarget {
    pub bucket: String,
    pub prefix: String,
    /// `TargetObjectKeyFormat`: `None` when not given, `Some(None)` for SimplePrefix,
    /// `Some(Some(source))` for a PartitionedPrefix with its date source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_format: Option<Option<String>>,
}

/// Block Public Access settings of a bucket.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct PublicAccessBlock {
    #[serde(default)]
    pub block_public_acls: bool,
    #[serde(default)]
    pub ignore_public_acls: bool,
    #[serde(default)]
    pub block_public_policy: bool,
    #[serde(default)]
    pub restrict_public_buckets: bool,
}

impl BucketMeta {
    /// The owning account, `default` for records from before accounts.
    pub fn owner_account<'a>(&'a self, default: &'a str) -> &'a str {
        self.owner.as_deref().unwrap_or(default)
    }

    /// Whether ACLs are disabled (Object Ownership `BucketOwnerEnforced`).
    pub fn acls_disabled(&self) -> bool {
        self.ownership.as_deref() == Some("BucketOwnerEnforced")
    }

    pub fn lock_enabled(&self) -> bool {
        self.object_lock.as_ref().is_some_and(|l| l.enabled)
    }

    pub fn block(&self) -> PublicAccessBlock {
        self.public_access_block.unwrap_or_default()
    }
}

/// A bucket's default encryption rule.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DefaultEncryption {
    /// `AES256` or `aws:kms`.
    pub algorithm: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bucket_key: bool,
}

/// A bucket's notification configuration, as stored.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Notifications {
    /// Object events go to EventBridge (the internal event bus).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub eventbridge: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub queues: Vec<NotifyTarget>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lambdas: Vec<NotifyTarget>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topics: Vec<NotifyTarget>,
}

impl Notifications {
    pub fn is_empty(&self) -> bool {
        !self.eventbridge && !self.has_targets()
    }

    /// Whether any queue, function or topic is configured.
    pub fn has_targets(&self) -> bool {
        !(self.queues.is_empty() && self.lambdas.is_empty() && self.topics.is_empty())
    }
}

/// One queue, function or topic configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct NotifyTarget {
    pub id: String,
    pub arn: String,
    /// As configured (`s3:ObjectCreated:*`, `s3:ObjectRemoved:Delete`, ...).
    pub events: Vec<String>,
    /// Key filter rules, names normalized to `prefix` / `suffix` (the model's enum).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<(String, String)>,
}

/// Content headers shared by objects and multipart uploads.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Content {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_encoding: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_disposition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_language: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<String>,
    /// Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<i64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub meta: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Checksum {
    /// `CRC32`, `CRC32C`, `CRC64NVME`, `SHA1`, `SHA256`.
    pub algo: String,
    /// Base64 value (with `-N` suffix for composite multipart checksums).
    pub value: String,
    /// `FULL_OBJECT` or `COMPOSITE`.
    pub kind: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct ObjectMeta {
    pub size: u64,
    /// Unquoted.
    pub etag: String,
    pub modified_ms: i64,
    #[serde(flatten)]
    pub content: Content,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<Checksum>,
    /// Blob key; `None` when the data is inline in the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parts: Option<u32>,
    /// Size of each part of a multipart object, in order (for `partNumber` reads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part_sizes: Option<Vec<u64>>,
    /// The multipart upload that wrote this object: a retried CompleteMultipartUpload of it
    /// succeeds again, as S3's does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_id: Option<String>,
    /// Each part's checksum (base64, of the object's algorithm), when the upload had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part_checksums: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: crate::tags::Tags,
    /// Set once the bucket has had versioning ("null" for the null version).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub delete_marker: bool,
    /// Set when the stored bytes are sealed (see [`crate::sse`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sse: Option<crate::sse::SseRecord>,
    /// The owning account (absent: the bucket's owner).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// The object ACL's grants (absent: the owner's FULL_CONTROL alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acl: Option<Vec<crate::acl::Grant>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<crate::lock::Retention>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub legal_hold: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadMeta {
    pub key: String,
    pub initiated_ms: i64,
    #[serde(flatten)]
    pub content: Content,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum_algo: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum_type: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: crate::tags::Tags,
    /// The upload's encryption: every part is sealed with its data key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sse: Option<crate::sse::SseRecord>,
    /// The account that initiated the upload; it owns the object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// The object ACL the upload asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acl: Option<Vec<crate::acl::Grant>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<crate::lock::Retention>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub legal_hold: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PartMeta {
    pub number: i32,
    pub size: u64,
    pub etag: String,
    pub modified_ms: i64,
    pub blob: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<Checksum>,
}

/// An object record: `[u32 LE json length][json][inline data]`.
pub fn encode_object(meta: &ObjectMeta, inline: &[u8]) -> Vec<u8> {
    let json = serde_json::to_vec(meta).expect("serializable");
    let mut v = Vec::with_capacity(4 + json.len() + inline.len());
    v.extend_from_slice(&(json.len() as u32).to_le_bytes());
    v.extend_from_slice(&json);
    v.extend_from_slice(inline);
    v
}

/// Decodes an object record; the inline data is a zero-copy slice of `raw`.
pub fn decode_object(raw: Vec<u8>) -> Option<(ObjectMeta, Bytes)> {
    let raw = Bytes::from(raw);
    let n = u32::from_le_bytes(raw.get(..4)?.try_into().ok()?) as usize;
    let json = raw.get(4..4 + n)?;
    let meta: ObjectMeta = serde_json::from_slice(json).ok()?;
    Some((meta, raw.slice(4 + n..)))
}

// ---------------------------------------------------------------------------------------------
// ETags and checksums

pub fn md5_hex(data: &[u8]) -> String {
    hex::encode(Md5::digest(data))
}

/// Multipart ETag: hex MD5 of the concatenated binary part MD5s, then `-N`.
pub fn multipart_etag<'a>(part_etags: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let mut h = Md5::new();
    let mut n = 0usize;
    for e in part_etags {
        let raw = hex::decode(e.trim_matches('"')).ok()?;
        h.update(&raw);
        n += 1;
    }
    Some(format!("{}-{}", hex::encode(h.finalize()), n))
}

/// Streaming hasher for one checksum algorithm.
pub enum Hasher {
    Crc32(crc32fast::Hasher),
    Crc32c(u32),
    Crc64(crc64fast_nvme::Digest),
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
}

impl Hasher {
    pub fn new(algo: &str) -> Option<Hasher> {
        Some(match algo.to_ascii_uppercase().as_str() {
            "CRC32" => Hasher::Crc32(crc32fast::Hasher::new()),
            "CRC32C" => Hasher::Crc32c(0),
            "CRC64NVME" => Hasher::Crc64(crc64fast_nvme::Digest::new()),
            "SHA1" => Hasher::Sha1(sha1::Sha1::new()),
            "SHA256" => Hasher::Sha256(sha2::Sha256::new()),
            _ => return None,
        })
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Crc32(h) => h.update(data),
            Hasher::Crc32c(c) => *c = crc32c::crc32c_append(*c, data),
            Hasher::Crc64(h) => h.write(data),
            Hasher::Sha1(h) => sha1::Digest::update(h, data),
            Hasher::Sha256(h) => sha2::Digest::update(h, data),
        }
    }

    /// Raw digest bytes (big-endian for CRCs).
    pub fn finish_raw(self) -> Vec<u8> {
        match self {
            Hasher::Crc32(h) => h.finalize().to_be_bytes().to_vec(),
            Hasher::Crc32c(c) => c.to_be_bytes().to_vec(),
            Hasher::Crc64(h) => h.sum64().to_be_bytes().to_vec(),
            Hasher::Sha1(h) => sha1::Digest::finalize(h).to_vec(),
            Hasher::Sha256(h) => sha2::Digest::finalize(h).to_vec(),
        }
    }

    pub fn finish_b64(self) -> String {
        B64.encode(self.finish_raw())
    }
}

pub fn checksum_b64(algo: &str, data: &[u8]) -> Option<String> {
    let mut h = Hasher::new(algo)?;
    h.update(data);
    Some(h.finish_b64())
}

/// Composite multipart checksum: hash of the concatenated raw part checksums, base64, `-N`.
pub fn composite_checksum<'a>(
    algo: &str,
    parts: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    let mut h = Hasher::new(algo)?;
    let mut n = 0;
    for p in parts {
        h.update(&B64.decode(p).ok()?);
        n += 1;
    }
    Some(format!("{}-{}", h.finish_b64(), n))
}

/// The reflected polynomial and width of a CRC algorithm.
fn crc_params(algo: &str) -> Option<(u64, usize)> {
    Some(match algo {
        "CRC32" => (0xEDB8_8320, 32),
        "CRC32C" => (0x82F6_3B78, 32),
        "CRC64NVME" => (0x9A6C_9329_AC4B_C9B5, 64),
        _ => return None,
    })
}

fn gf2_times(mat: &[u64; 64], mut vec: u64) -> u64 {
    let mut sum = 0;
    let mut i = 0;
    while vec != 0 {
        if vec & 1 != 0 {
            sum ^= mat[i];
        }
        vec >>= 1;
        i += 1;
    }
    sum
}

fn gf2_square(square: &mut [u64; 64], mat: &[u64; 64], width: usize) {
    for n in 0..width {
        square[n] = gf2_times(mat, mat[n]);
    }
}

/// The CRC of `A || B` from the CRCs of `A` and `B` and the length of `B` (zlib's
/// `crc32_combine`, for any reflected CRC): multiplies `crc1` by x^(8·len2) in GF(2).
fn crc_combine(crc1: u64, crc2: u64, len2: u64, poly: u64, width: usize) -> u64 {
    if len2 == 0 {
        return crc1;
    }
    let mut even = [0u64; 64];
    let mut odd = [0u64; 64];
    // The operator for one zero bit.
    odd[0] = poly;
    let mut row = 1u64;
    for item in odd.iter_mut().take(width).skip(1) {
        *item = row;
        row <<= 1;
    }
    gf2_square(&mut even, &odd, width);
    gf2_square(&mut odd, &even, width);
    let (mut crc1, mut len2) = (crc1, len2);
    loop {
        gf2_square(&mut even, &odd, width);
        if len2 & 1 != 0 {
            crc1 = gf2_times(&even, crc1);
        }
        len2 >>= 1;
        if len2 == 0 {
            break;
        }
        gf2_square(&mut odd, &even, width);
        if len2 & 1 != 0 {
            crc1 = gf2_times(&odd, crc1);
        }
        len2 >>= 1;
        if len2 == 0 {
            break;
        }
    }
    crc1 ^ crc2
}

/// A full-object CRC of a multipart object from its parts' CRCs (base64) and sizes; `None`
/// for algorithms that cannot be combined (SHA).
pub fn full_object_checksum<'a>(
    algo: &str,
    parts: impl IntoIterator<Item = (&'a str, u64)>,
) -> Option<String> {
    let (poly, width) = crc_params(algo)?;
    let mut acc: Option<u64> = None;
    for (b64, size) in parts {
        let raw = B64.decode(b64).ok()?;
        let v = raw.iter().fold(0u64, |a, b| (a << 8) | u64::from(*b));
        acc = Some(match acc {
            None => v,
            Some(a) => crc_combine(a, v, size, poly, width),
        });
    }
    let v = acc?;
    Some(if width == 32 {
        B64.encode((v as u32).to_be_bytes())
    } else {
        B64.encode(v.to_be_bytes())
    })
}

/// Epoch milliseconds of a timestamp from a request (Object Lock dates, lifecycle dates,
/// conditional-request dates).
pub fn timestamp_ms(t: &s3s::dto::Timestamp) -> Option<i64> {
    let mut v = Vec::new();
    t.format(s3s::dto::TimestampFormat::EpochSeconds, &mut v)
        .ok()?;
    let secs: f64 = String::from_utf8(v).ok()?.parse().ok()?;
    Some((secs * 1000.0).round() as i64)
}

pub fn b64_decode(s: &str) -> Option<Vec<u8>> {
    B64.decode(s).ok()
}

// ---------------------------------------------------------------------------------------------
// Listing

/// One page of a listing.
#[derive(Debug, Default, PartialEq)]
pub struct Page<T> {
    pub objects: Vec<(String, T)>,
    pub common_prefixes: Vec<String>,
    pub is_truncated: bool,
    /// The last key or common prefix returned (the next marker).
    pub last: Option<String>,
}

/// Lists keys under `prefix` after `marker`, rolling keys that contain `delimiter` after the
/// prefix into common prefixes. `scan(start_after, limit)` returns the next keys in order (keys
/// relative to the bucket, all starting with `prefix`).
pub fn list_page<T, E>(
    prefix: &str,
    delimiter: Option<&str>,
    marker: Option<&str>,
    max_keys: usize,
    mut scan: impl FnMut(Option<&str>, usize) -> Result<Vec<(String, T)>, E>,
) -> Result<Page<T>, E> {
    let delimiter = delimiter.filter(|d| !d.is_empty());
    let mut page = Page {
        objects: Vec::new(),
        common_prefixes: Vec::new(),
        is_truncated: false,
        last: None,
    };
    if max_keys == 0 {
        return Ok(page);
    }
    let mut cursor: Option<String> = marker.map(str::to_owned);
    let mut count = 0usize;
    let batch = (max_keys + 1).clamp(2, 1001);
    'outer: loop {
        let rows = scan(cursor.as_deref(), batch)?;
        let exhausted = rows.len() < batch;
        if rows.is_empty() {
            break;
        }
        for (key, val) in rows {
            cursor = Some(key.clone());
            let cp = delimiter.and_then(|d| {
                key.get(prefix.len()..)
                    .and_then(|rest| rest.find(d))
                    .map(|i| key[..prefix.len() + i + d.len()].to_owned())
            });
            match cp {
                Some(cp) => {
                    // A prefix at or before the marker was already returned on an earlier page.
                    if marker.is_some_and(|m| cp.as_str() <= m)
                        || page.common_prefixes.last() == Some(&cp)
                    {
                        let mut skip = cp;
                        skip.push(char::MAX);
                        cursor = Some(skip);
                        continue 'outer;
                    }
                    if count == max_keys {
                        page.is_truncated = true;
                        break 'outer;
                    }
                    count += 1;
                    page.last = Some(cp.clone());
                    page.common_prefixes.push(cp.clone());
                    // Jump past every key under this prefix.
                    let mut skip = cp;
                    skip.push(char::MAX);
                    cursor = Some(skip);
                    continue 'outer;
                }
                None => {
                    if count == max_keys {
                        page.is_truncated = true;
                        break 'outer;
                    }
                    count += 1;
                    page.last = Some(key.clone());
                    page.objects.push((key, val));
                }
            }
        }
        if exhausted {
            break;
        }
    }
    Ok(page)
}

/// `encoding-type=url`: percent-encode like S3 (unreserved and `/` kept, everything else `%XX`, as botocore unquotes).
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => {
                out.push('%');
                out.push_str(&format!("{b:02X}"));
            }
        }
    }
    out
}

/// A range that does not overlap the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsatisfiable;

/// Resolves an HTTP range against an object size: `Ok(None)` = whole object.
pub fn resolve_range(
    range: Option<&s3s::dto::Range>,
    size: u64,
) -> Result<Option<std::ops::Range<u64>>, Unsatisfiable> {
    match range {
        None => Ok(None),
        Some(r) => r.check(size).map(Some).map_err(|_| Unsatisfiable),
    }
}

/// What `GetObject`/`HeadObject` with `partNumber` selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartSelection {
    /// Byte range of the part and the object's part count (`None` for a single-part object).
    Part(std::ops::Range<u64>, Option<u32>),
    /// `partNumber` outside 1..=10000 (400 InvalidArgument).
    OutOfRange,
    /// Beyond the object's parts (400 InvalidPart).
    NoSuchPart,
}

/// Resolves `partNumber` against an object: a single-part object has one part (all of it); a
/// multipart object's parts come from `part_sizes` (`None` for records written before part
/// sizes were kept: their part boundaries are unknown, so no part is served).
pub fn select_part(meta: &ObjectMeta, n: i32) -> PartSelection {
    if !(1..=10_000).contains(&n) {
        return PartSelection::OutOfRange;
    }
    let n = n as usize;
    match (&meta.part_sizes, meta.parts) {
        (Some(sizes), count) if n <= sizes.len() => {
            let start: u64 = sizes[..n - 1].iter().sum();
            PartSelection::Part(
                start..start + sizes[n - 1],
                count.or(Some(sizes.len() as u32)),
            )
        }
        (None, None) if n == 1 => PartSelection::Part(0..meta.size, None),
        _ => PartSelection::NoSuchPart,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags() {
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(md5_hex(b"hello"), "5d41402abc4b2a76b9719d911017c592");
        // Two parts: MD5 of the concatenated binary MD5s.
        let a = md5_hex(b"a");
        let b = md5_hex(b"b");
        let mut cat = hex::decode(&a).unwrap();
        cat.extend(hex::decode(&b).unwrap());
        let expect = format!("{}-2", md5_hex(&cat));
        assert_eq!(multipart_etag([a.as_str(), b.as_str()]).unwrap(), expect);
        let quoted = format!("\"{a}\"");
        assert_eq!(
            multipart_etag([quoted.as_str()]).unwrap(),
            format!("{}-1", md5_hex(&hex::decode(&a).unwrap()))
        );
        assert!(multipart_etag(["zz"]).is_none());
    }

    #[test]
    fn full_object_crcs_combine() {
        let a: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
        let b: Vec<u8> = (0..5_000u32).map(|i| (i % 7) as u8).collect();
        let c = b"tail".to_vec();
        let whole: Vec<u8> = [a.clone(), b.clone(), c.clone()].concat();
        for algo in ["CRC32", "CRC32C", "CRC64NVME"] {
            let parts: Vec<(String, u64)> = [&a, &b, &c]
                .iter()
                .map(|p| (checksum_b64(algo, p).unwrap(), p.len() as u64))
                .collect();
            assert_eq!(
                full_object_checksum(algo, parts.iter().map(|(v, n)| (v.as_str(), *n))),
                checksum_b64(algo, &whole),
                "{algo}"
            );
        }
        assert!(full_object_checksum("SHA256", [("AAAA", 1)]).is_none());
    }

    #[test]
    fn checksums() {
        // Known values (boto3 / AWS docs): CRC32("hello world") = 0x0d4a1185.
        assert_eq!(checksum_b64("CRC32", b"hello world").unwrap(), "DUoRhQ==");
        assert_eq!(checksum_b64("crc32c", b"hello world").unwrap(), "yZRlqg==");
        assert_eq!(
            checksum_b64("SHA1", b"").unwrap(),
            "2jmj7l5rSw0yVb/vlWAYkK/YBwk="
        );
        assert_eq!(
            checksum_b64("SHA256", b"").unwrap(),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
        assert!(checksum_b64("CRC64NVME", b"x").is_some());
        assert!(checksum_b64("MD5", b"x").is_none());
        let c = composite_checksum("CRC32", ["DUoRhQ==", "DUoRhQ=="]).unwrap();
        assert!(c.ends_with("-2"));
    }

    #[test]
    fn record_roundtrip() {
        let m = ObjectMeta {
            size: 3,
            etag: "x".into(),
            modified_ms: 5,
            content: Content {
                content_type: Some("text/plain".into()),
                ..Default::default()
            },
            checksum: None,
            blob: None,
            parts: None,
            part_sizes: None,
            part_checksums: None,
            upload_id: None,
            tags: vec![("k".into(), "v".into())],
            version_id: None,
            delete_marker: false,
            sse: None,
            owner: None,
            acl: None,
            retention: None,
            legal_hold: false,
        };
        let (m2, data) = decode_object(encode_object(&m, b"abc")).unwrap();
        assert_eq!(m2.etag, "x");
        assert_eq!(m2.tags, m.tags);
        assert_eq!(m2.content.content_type.as_deref(), Some("text/plain"));
        assert_eq!(&data[..], b"abc");
        assert!(decode_object(vec![1, 2]).is_none());
    }

    fn lister<'a>(
        keys: &'a [&'a str],
        prefix: &'a str,
    ) -> impl FnMut(Option<&str>, usize) -> Result<Vec<(String, ())>, ()> + 'a {
        move |after, limit| {
            Ok(keys
                .iter()
                .filter(|k| k.starts_with(prefix) && after.is_none_or(|a| **k > a))
                .take(limit)
                .map(|k| (k.to_string(), ()))
                .collect())
        }
    }

    fn names(p: &Page<()>) -> (Vec<&str>, Vec<&str>) {
        (
            p.objects.iter().map(|(k, _)| k.as_str()).collect(),
            p.common_prefixes.iter().map(|s| s.as_str()).collect(),
        )
    }

    #[test]
    fn listing_delimiter_and_pages() {
        let keys = ["a.txt", "dir/a", "dir/b", "dir/sub/c", "dir2/x", "z"];
        let p = list_page("", Some("/"), None, 1000, lister(&keys, "")).unwrap();
        assert_eq!(names(&p), (vec!["a.txt", "z"], vec!["dir/", "dir2/"]));
        assert!(!p.is_truncated);
        let p = list_page("dir/", Some("/"), None, 1000, lister(&keys, "dir/")).unwrap();
        assert_eq!(names(&p), (vec!["dir/a", "dir/b"], vec!["dir/sub/"]));
        // Paging with max_keys = 1 across common prefixes never repeats an entry.
        let mut marker: Option<String> = None;
        let mut seen = Vec::new();
        loop {
            let p = list_page("", Some("/"), marker.as_deref(), 1, lister(&keys, "")).unwrap();
            let (o, c) = names(&p);
            seen.extend(o.iter().map(|s| s.to_string()));
            seen.extend(c.iter().map(|s| s.to_string()));
            if !p.is_truncated {
                break;
            }
            marker = p.last.clone();
        }
        assert_eq!(seen, vec!["a.txt", "dir/", "dir2/", "z"]);
        // No delimiter: plain pages.
        let p = list_page("", None, Some("dir/b"), 2, lister(&keys, "")).unwrap();
        assert_eq!(names(&p).0, vec!["dir/sub/c", "dir2/x"]);
        assert!(p.is_truncated);
        assert_eq!(p.last.as_deref(), Some("dir2/x"));
        let p = list_page("", None, None, 0, lister(&keys, "")).unwrap();
        assert!(p.objects.is_empty() && !p.is_truncated);
        // Exactly max_keys results: not truncated.
        let p = list_page("dir/", None, None, 3, lister(&keys, "dir/")).unwrap();
        assert_eq!(p.objects.len(), 3);
        assert!(!p.is_truncated);
    }

    #[test]
    fn url_encoding() {
        assert_eq!(url_encode("a b/c+d%é"), "a%20b/c%2Bd%25%C3%A9");
    }

    #[test]
    fn part_selection() {
        let mut m = ObjectMeta {
            size: 10,
            etag: "x".into(),
            ..Default::default()
        };
        assert_eq!(select_part(&m, 1), PartSelection::Part(0..10, None));
        assert_eq!(select_part(&m, 2), PartSelection::NoSuchPart);
        assert_eq!(select_part(&m, 0), PartSelection::OutOfRange);
        assert_eq!(select_part(&m, 10_001), PartSelection::OutOfRange);
        m.parts = Some(3);
        m.part_sizes = Some(vec![4, 4, 2]);
        assert_eq!(select_part(&m, 1), PartSelection::Part(0..4, Some(3)));
        assert_eq!(select_part(&m, 3), PartSelection::Part(8..10, Some(3)));
        assert_eq!(select_part(&m, 4), PartSelection::NoSuchPart);
        // Old multipart record without part sizes: boundaries unknown.
        m.part_sizes = None;
        assert_eq!(select_part(&m, 1), PartSelection::NoSuchPart);
        let raw = encode_object(&m, b"");
        assert!(decode_object(raw).unwrap().0.part_sizes.is_none());
    }

    #[test]
    fn ranges() {
        let r = s3s::dto::Range::parse("bytes=0-4").unwrap();
        assert_eq!(resolve_range(Some(&r), 10), Ok(Some(0..5)));
        let r = s3s::dto::Range::parse("bytes=-3").unwrap();
        assert_eq!(resolve_range(Some(&r), 10), Ok(Some(7..10)));
        let r = s3s::dto::Range::parse("bytes=5-").unwrap();
        assert_eq!(resolve_range(Some(&r), 10), Ok(Some(5..10)));
        let r = s3s::dto::Range::parse("bytes=8-100").unwrap();
        assert_eq!(resolve_range(Some(&r), 10), Ok(Some(8..10)));
        let r = s3s::dto::Range::parse("bytes=10-").unwrap();
        assert_eq!(resolve_range(Some(&r), 10), Err(Unsatisfiable));
        assert_eq!(resolve_range(None, 10), Ok(None));
    }
}
