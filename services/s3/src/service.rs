//! The `s3s::S3` implementation: one method per operation, over the model layer.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use basalt_core::events::{EventBus, envelope};
use basalt_store::{BlobStore, StateStore, Store, StoreError, WriteOp};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use http::HeaderMap;
use s3s::dto::*;
use s3s::stream::{ByteStream, RemainingLength};
use s3s::{S3, S3Error, S3ErrorCode, S3Request, S3Response, S3Result, StdError, s3_error};
use serde_json::json;

use crate::model::Checksum;
use crate::model::*;
use crate::tags;
use crate::{CallerScope, S3Config, chunked::ChunkTrailers};

mod notifications;
mod versions;

pub use notifications::Notifier;
use notifications::{Notice, Origin};

const ALGOS: [&str; 5] = ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"];
const READ_CHUNK: u64 = 1024 * 1024;
const MAX_PUT: u64 = 5 * 1024 * 1024 * 1024;

/// The S3 provider.
pub struct BasaltS3 {
    state: Arc<dyn StateStore>,
    blobs: Arc<dyn BlobStore>,
    bus: EventBus,
    cfg: S3Config,
    owner_id: String,
    seq: AtomicU64,
    /// Serializes the read-modify-writes of one key's records in versioned buckets (the
    /// versions and the current record change together) and retags; striped by key.
    /// Unversioned PUTs and DELETEs take no lock: retags check-and-set instead.
    locks: Vec<tokio::sync::Mutex<()>>,
    /// Last version sequence number issued (see `versions`).
    version_seq: AtomicU64,
    /// Delivers event notifications (shared by the instances of one endpoint).
    notifier: Arc<Notifier>,
}

const LOCK_STRIPES: usize = 64;

impl BasaltS3 {
    pub fn new(store: Store, bus: EventBus, cfg: S3Config) -> BasaltS3 {
        let notifier = Arc::new(Notifier::new(store.state.clone()));
        BasaltS3::with_notifier(store, bus, cfg, notifier)
    }

    /// An instance whose event notifications go through `notifier`.
    pub fn with_notifier(
        store: Store,
        bus: EventBus,
        cfg: S3Config,
        notifier: Arc<Notifier>,
    ) -> BasaltS3 {
        use sha2::Digest;
        let owner_id = hex::encode(sha2::Sha256::digest(cfg.account_id.as_bytes()));
        BasaltS3 {
            notifier,
            state: store.state,
            blobs: store.blobs,
            bus,
            cfg,
            owner_id,
            seq: AtomicU64::new(0),
            locks: (0..LOCK_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            version_seq: AtomicU64::new(0),
        }
    }

    fn scope<T>(&self, req: &S3Request<T>) -> Scope {
        let region = req
            .region
            .as_ref()
            .map(|r| r.as_str().to_owned())
            .or_else(|| {
                req.extensions
                    .get::<CallerScope>()
                    .and_then(|c| c.region.clone())
            })
            .unwrap_or_else(|| self.cfg.region.clone());
        Scope {
            account: self.cfg.account_id.clone(),
            region,
        }
    }

    fn owner(&self) -> Owner {
        Owner {
            display_name: Some("webfile".into()),
            id: Some(self.owner_id.clone()),
        }
    }

    fn bucket(&self, sc: &Scope, bucket: &str) -> S3Result<BucketMeta> {
        let raw = self
            .state
            .get(T_BUCKETS, &sc.bucket_key(bucket))
            .map_err(internal)?;
        let raw =
            raw.ok_or_else(|| s3_error!(NoSuchBucket, "The specified bucket does not exist"))?;
        serde_json::from_slice(&raw).map_err(internal)
    }

    fn object(&self, sc: &Scope, bucket: &str, key: &str) -> S3Result<Option<(ObjectMeta, Bytes)>> {
        match self
            .state
            .get(T_OBJECTS, &sc.object_key(bucket, key))
            .map_err(internal)?
        {
            None => Ok(None),
            Some(raw) => decode_object(raw)
                .map(Some)
                .ok_or_else(|| s3_error!(InternalError, "corrupt object record")),
        }
    }

    fn object_or_404(&self, sc: &Scope, bucket: &str, key: &str) -> S3Result<(ObjectMeta, Bytes)> {
        match self.object(sc, bucket, key)? {
            Some(o) => Ok(o),
            None => {
                self.bucket(sc, bucket)?;
                Err(s3_error!(NoSuchKey, "The specified key does not exist."))
            }
        }
    }

    fn sequencer(&self) -> String {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        format!(
            "{:016X}",
            (now_ms() as u64).wrapping_mul(1000).wrapping_add(n % 1000)
        )
    }

    /// Reads a body, hashing it; small bodies stay in memory, larger ones stream to a new blob.
    async fn ingest(
        &self,
        body: Option<StreamingBlob>,
        algo: Option<&str>,
        force_blob: bool,
    ) -> S3Result<Ingested> {
        use md5::Digest;
        let mut md5 = md5::Md5::new();
        let mut hasher = algo.and_then(Hasher::new);
        let mut buf: Vec<Bytes> = Vec::new();
        let mut buffered = 0usize;
        let mut size = 0u64;
        let mut writer: Option<(String, Box<dyn basalt_store::BlobWriter>)> = None;
        if let Some(mut body) = body {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(body_error)?;
                md5.update(&chunk);
                if let Some(h) = &mut hasher {
                    h.update(&chunk);
                }
                size += chunk.len() as u64;
                if size > MAX_PUT {
                    return Err(s3_error!(
                        EntityTooLarge,
                        "Your proposed upload exceeds the maximum allowed size"
                    ));
                }
                match &mut writer {
                    Some((_, w)) => w.write(&chunk).map_err(internal)?,
                    None => {
                        buffered += chunk.len();
                        buf.push(chunk);
                        if force_blob || buffered > INLINE_MAX {
                            let key = new_blob_key();
                            let mut w = self.blobs.writer(&key).map_err(internal)?;
                            for b in buf.drain(..) {
                                w.write(&b).map_err(internal)?;
                            }
                            writer = Some((key, w));
                        }
                    }
                }
            }
        }
        let data = match writer {
            Some((key, w)) => {
                tokio::task::spawn_blocking(move || w.commit())
                    .await
                    .map_err(internal)?
                    .map_err(internal)?;
                Data::Blob(key)
            }
            None if force_blob => {
                let key = new_blob_key();
                let blobs = self.blobs.clone();
                let k = key.clone();
                tokio::task::spawn_blocking(move || blobs.put(&k, &[]))
                    .await
                    .map_err(internal)?
                    .map_err(internal)?;
                Data::Blob(key)
            }
            None if buf.len() == 1 => Data::Inline(buf.pop().unwrap()),
            None => Data::Inline(Bytes::from(buf.concat())),
        };
        Ok(Ingested {
            size,
            md5: md5.finalize().to_vec(),
            checksum: hasher.map(|h| (algo.unwrap().to_ascii_uppercase(), h.finish_b64())),
            data,
        })
    }

    /// Drops a freshly written blob after a failed validation.
    async fn discard(&self, data: &Data) {
        if let Data::Blob(k) = data {
            let blobs = self.blobs.clone();
            let k = k.clone();
            let _ = tokio::task::spawn_blocking(move || blobs.delete(&k)).await;
        }
    }

    async fn write(&self, ops: Vec<WriteOp>) -> S3Result<()> {
        let state = self.state.clone();
        tokio::task::spawn_blocking(move || state.batch(&ops))
            .await
            .map_err(internal)?
            .map_err(internal)
    }

    /// [`Self::write`] for a batch with preconditions: `Ok(false)` when one did not hold.
    async fn write_if(&self, ops: Vec<WriteOp>) -> S3Result<bool> {
        let state = self.state.clone();
        match tokio::task::spawn_blocking(move || state.batch(&ops))
            .await
            .map_err(internal)?
        {
            Ok(()) => Ok(true),
            Err(StoreError::Conflict) => Ok(false),
            Err(e) => Err(internal(e)),
        }
    }

    /// The bucket record as stored, and its versioning status: `snapshot.check()` is the
    /// precondition of a write that must not race a change of the bucket (or its deletion).
    fn bucket_snapshot(&self, sc: &Scope, bucket: &str) -> S3Result<BucketSnapshot> {
        let key = sc.bucket_key(bucket);
        let raw = self
            .state
            .get(T_BUCKETS, &key)
            .map_err(internal)?
            .ok_or_else(|| s3_error!(NoSuchBucket, "The specified bucket does not exist"))?;
        let b: BucketMeta = serde_json::from_slice(&raw).map_err(internal)?;
        Ok(BucketSnapshot {
            key,
            raw,
            versioning: b.versioning,
            region: b.region,
            notifications: b.notifications,
        })
    }

    fn delete_blobs_later(&self, keys: Vec<String>) {
        if keys.is_empty() {
            return;
        }
        let blobs = self.blobs.clone();
        tokio::task::spawn_blocking(move || {
            for k in keys {
                let _ = blobs.delete(&k);
            }
        });
    }

    /// Reads a whole object in-process (Lambda's code from S3); `Ok(None)` when the bucket,
    /// key or version does not exist.
    pub fn read_object(
        &self,
        account: &str,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<Option<Bytes>, String> {
        let sc = Scope {
            account: account.to_owned(),
            region: self.cfg.region.clone(),
        };
        let (meta, inline) = match self.object_version(&sc, bucket, key, version_id) {
            Ok(found) => found,
            Err(e)
                if matches!(
                    e.code(),
                    S3ErrorCode::NoSuchKey | S3ErrorCode::NoSuchBucket | S3ErrorCode::NoSuchVersion
                ) || e.code().as_str() == "InvalidArgument" =>
            {
                return Ok(None);
            }
            Err(e) => {
                return Err(format!(
                    "{}: {}",
                    e.code().as_str(),
                    e.message().unwrap_or_default()
                ));
            }
        };
        if meta.delete_marker {
            return Ok(None);
        }
        match &meta.blob {
            None => Ok(Some(inline)),
            Some(blob) => self.blobs.get(blob).map_err(|e| e.to_string()),
        }
    }

    fn body_of(
        &self,
        meta: &ObjectMeta,
        inline: Bytes,
        range: Option<std::ops::Range<u64>>,
    ) -> StreamingBlob {
        let (start, end) = range.map_or((0, meta.size), |r| (r.start, r.end));
        match &meta.blob {
            None => StreamingBlob::new(OneChunk(Some(inline.slice(start as usize..end as usize)))),
            Some(key) => {
                let blobs = self.blobs.clone();
                let key = key.clone();
                let inner = futures::stream::unfold(
                    (blobs, key, start),
                    move |(blobs, key, pos)| async move {
                        if pos >= end {
                            return None;
                        }
                        let to = (pos + READ_CHUNK).min(end);
                        let r = match blobs.get_range(&key, pos, to) {
                            Ok(Some(b)) if b.len() as u64 == to - pos => Ok(b),
                            Ok(_) => {
                                Err(Box::new(std::io::Error::other("blob missing or truncated"))
                                    as StdError)
                            }
                            Err(e) => Err(Box::new(e) as StdError),
                        };
                        let next = if r.is_ok() { to } else { end };
                        Some((r, (blobs, key, next)))
                    },
                );
                StreamingBlob::new(Sized {
                    inner: Box::pin(inner),
                    remaining: (end - start) as usize,
                })
            }
        }
    }
}

struct Ingested {
    size: u64,
    md5: Vec<u8>,
    checksum: Option<(String, String)>,
    data: Data,
}

enum Data {
    Inline(Bytes),
    Blob(String),
}

struct OneChunk(Option<Bytes>);

impl Stream for OneChunk {
    type Item = Result<Bytes, StdError>;
    fn poll_next(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Poll::Ready(self.0.take().filter(|b| !b.is_empty()).map(Ok))
    }
}

impl ByteStream for OneChunk {
    fn remaining_length(&self) -> RemainingLength {
        RemainingLength::new_exact(self.0.as_ref().map_or(0, Bytes::len))
    }
}

struct Sized<S> {
    inner: S,
    remaining: usize,
}

impl<S: Stream<Item = Result<Bytes, StdError>> + Unpin> Stream for Sized<S> {
    type Item = Result<Bytes, StdError>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let r = Pin::new(&mut self.inner).poll_next(cx);
        if let Poll::Ready(Some(Ok(b))) = &r {
            self.remaining = self.remaining.saturating_sub(b.len());
        }
        r
    }
}

impl<S: Stream<Item = Result<Bytes, StdError>> + Unpin> ByteStream for Sized<S> {
    fn remaining_length(&self) -> RemainingLength {
        RemainingLength::new_exact(self.remaining)
    }
}

/// A bucket record as read (see `BasaltS3::bucket_snapshot`).
struct BucketSnapshot {
    key: String,
    raw: Vec<u8>,
    versioning: Option<String>,
    region: String,
    notifications: Notifications,
}

impl BucketSnapshot {
    /// Precondition: the bucket record is still exactly this.
    fn check(&self) -> WriteOp {
        WriteOp::Check {
            table: T_BUCKETS.into(),
            key: self.key.clone(),
            expected: Some(self.raw.clone()),
        }
    }
}

/// What happened to an object, for its event notifications.
enum Change<'a> {
    Created {
        size: u64,
        etag: &'a str,
        version: Option<&'a str>,
    },
    Deleted {
        version: Option<&'a str>,
    },
    DeleteMarker {
        version: &'a str,
    },
}

struct Scope {
    account: String,
    region: String,
}

/// Where a request's records live. Bucket names are global, so keys are scoped by account
/// only; `region` is the caller's region (endpoint / credential scope), used to validate
/// CreateBucket and to stamp events.
impl Scope {
    fn prefix(&self) -> String {
        format!("{}/", self.account)
    }
    fn bucket_key(&self, bucket: &str) -> String {
        format!("{}/{}", self.account, bucket)
    }
    fn objects_prefix(&self, bucket: &str) -> String {
        format!("{}/{}/", self.account, bucket)
    }
    fn object_key(&self, bucket: &str, key: &str) -> String {
        format!("{}/{}/{}", self.account, bucket, key)
    }
    fn upload_key(&self, bucket: &str, upload: &str) -> String {
        format!("{}/{}/{}", self.account, bucket, upload)
    }
    fn part_key(&self, bucket: &str, upload: &str, n: i32) -> String {
        format!("{}/{}/{}/{:05}", self.account, bucket, upload, n)
    }
}

/// A failure of ours: 500 `InternalError`, or 503 `ServiceUnavailable` when the state store
/// cannot be reached for now (a networked database's outage), which clients retry.
fn internal<E: std::fmt::Display + 'static>(e: E) -> S3Error {
    if let Some(StoreError::Unavailable(why)) = (&e as &dyn std::any::Any).downcast_ref() {
        tracing::warn!("state store unavailable: {why}");
        return S3Error::with_message(
            S3ErrorCode::ServiceUnavailable,
            "Service is unable to handle request.",
        );
    }
    S3Error::with_message(
        S3ErrorCode::InternalError,
        format!("We encountered an internal error: {e}"),
    )
}

fn body_error(e: StdError) -> S3Error {
    match e.downcast::<S3Error>() {
        Ok(e) => *e,
        // s3s checks a signed payload hash as the body streams in; its error type is private,
        // so it is recognised by its text. S3 answers 400 `XAmzContentSHA256Mismatch`.
        Err(e) if e.to_string().ends_with("Sha256Mismatch") => {
            let mut e = S3Error::with_message(
                S3ErrorCode::Custom("XAmzContentSHA256Mismatch".into()),
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            );
            e.set_status_code(http::StatusCode::BAD_REQUEST);
            e
        }
        Err(e) => S3Error::with_message(S3ErrorCode::IncompleteBody, format!("{e}")),
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn ts(ms: i64) -> Timestamp {
    Timestamp::from(UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64))
}

fn ts_secs(t: &Timestamp) -> Option<i64> {
    let mut v = Vec::new();
    t.format(TimestampFormat::EpochSeconds, &mut v).ok()?;
    let s = String::from_utf8(v).ok()?;
    s.split('.').next()?.parse().ok()
}

fn new_blob_key() -> String {
    format!("s3/{}", uuid::Uuid::new_v4().simple())
}

fn request_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..16].to_ascii_uppercase()
}

fn etag(s: &str) -> ETag {
    ETag::Strong(s.to_owned())
}

fn etag_matches(cond: &ETagCondition, current: &str) -> bool {
    match cond {
        ETagCondition::Any => true,
        ETagCondition::ETag(e) => e.value().trim_matches('"') == current,
    }
}

/// Evaluates If-Match / If-Unmodified-Since (412) and If-None-Match / If-Modified-Since (304,
/// or 412 when `none_match_is_412`, as for copy sources).
fn check_conditions(
    meta: &ObjectMeta,
    if_match: Option<&ETagCondition>,
    if_unmodified_since: Option<&Timestamp>,
    if_none_match: Option<&ETagCondition>,
    if_modified_since: Option<&Timestamp>,
    none_match_is_412: bool,
) -> S3Result<()> {
    let modified = meta.modified_ms / 1000;
    let failed = || {
        s3_error!(
            PreconditionFailed,
            "At least one of the pre-conditions you specified did not hold"
        )
    };
    if let Some(m) = if_match {
        if !etag_matches(m, &meta.etag) {
            return Err(failed());
        }
    } else if let Some(t) = if_unmodified_since.and_then(ts_secs)
        && modified > t
    {
        return Err(failed());
    }
    let not_modified = || {
        if none_match_is_412 {
            failed()
        } else {
            let mut e = S3Error::new(S3ErrorCode::NotModified);
            let mut h = HeaderMap::new();
            if let Ok(v) = format!("\"{}\"", meta.etag).parse() {
                h.insert(http::header::ETAG, v);
            }
            e.set_headers(h);
            e
        }
    };
    if let Some(m) = if_none_match {
        if etag_matches(m, &meta.etag) {
            return Err(not_modified());
        }
    } else if let Some(t) = if_modified_since.and_then(ts_secs)
        && modified <= t
    {
        return Err(not_modified());
    }
    Ok(())
}

/// The bytes a GET/HEAD reads: `Range` or `partNumber` (not both), and the part count to
/// report (`x-amz-mp-parts-count`, multipart objects read by part only).
fn read_window(
    meta: &ObjectMeta,
    range: Option<&Range>,
    part_number: Option<i32>,
) -> S3Result<(Option<std::ops::Range<u64>>, Option<i32>)> {
    let Some(n) = part_number else {
        let r = resolve_range(range, meta.size).map_err(|Unsatisfiable| {
            s3_error!(InvalidRange, "The requested range is not satisfiable")
        })?;
        return Ok((r, None));
    };
    if range.is_some() {
        return Err(s3_error!(
            InvalidRequest,
            "Cannot specify both Range header and partNumber query parameter."
        ));
    }
    match select_part(meta, n) {
        PartSelection::Part(r, count) => Ok((Some(r), count.map(|c| c as i32))),
        PartSelection::OutOfRange => Err(s3_error!(
            InvalidArgument,
            "Part number must be an integer between 1 and 10000, inclusive"
        )),
        PartSelection::NoSuchPart => {
            let mut e = S3Error::with_message(
                S3ErrorCode::Custom("InvalidPartNumber".into()),
                "The requested partnumber is not satisfiable",
            );
            e.set_status_code(http::StatusCode::RANGE_NOT_SATISFIABLE);
            Err(e)
        }
    }
}

/// Which checksum the request asks for: (algorithm, expected value, expected in trailer).
fn requested_checksum(
    headers: &HeaderMap,
    declared: Option<&ChecksumAlgorithm>,
) -> (Option<String>, Option<String>, bool) {
    for a in ALGOS {
        let h = format!("x-amz-checksum-{}", a.to_ascii_lowercase());
        if let Some(v) = headers.get(h.as_str()).and_then(|v| v.to_str().ok()) {
            return (Some(a.to_owned()), Some(v.to_owned()), false);
        }
    }
    if let Some(t) = headers.get("x-amz-trailer").and_then(|v| v.to_str().ok()) {
        let t = t.trim().to_ascii_lowercase();
        if let Some(a) = t.strip_prefix("x-amz-checksum-") {
            return (Some(a.to_ascii_uppercase()), None, true);
        }
    }
    let sdk = headers
        .get("x-amz-sdk-checksum-algorithm")
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_uppercase);
    (
        sdk.or_else(|| declared.map(|d| d.as_str().to_ascii_uppercase())),
        None,
        false,
    )
}

fn trailer_value<T>(req: &S3Request<T>, algo: &str) -> Option<String> {
    let name = format!("x-amz-checksum-{}", algo.to_ascii_lowercase());
    if let Some(t) = &req.trailing_headers
        && let Some(v) = t
            .read(|h| {
                h.get(name.as_str())
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            })
            .flatten()
    {
        return Some(v);
    }
    req.extensions.get::<ChunkTrailers>().and_then(|t| {
        t.0.lock()
            .as_ref()
            .and_then(|h| h.get(name.as_str()))
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    })
}

/// Verifies Content-MD5 and the requested checksum against what was received.
fn verify_integrity<T>(
    req: &S3Request<T>,
    content_md5: Option<&str>,
    got: &Ingested,
    algo: Option<&str>,
    expected: Option<String>,
    trailer: bool,
) -> S3Result<()> {
    if let Some(m) = content_md5 {
        let raw = b64_decode(m.trim()).filter(|r| r.len() == 16);
        let Some(raw) = raw else {
            return Err(s3_error!(
                InvalidDigest,
                "The Content-MD5 you specified was invalid."
            ));
        };
        if raw != got.md5 {
            return Err(s3_error!(
                BadDigest,
                "The Content-MD5 you specified did not match what we received."
            ));
        }
    }
    let expected = if trailer {
        algo.and_then(|a| trailer_value(req, a))
    } else {
        expected
    };
    if let (Some(a), Some(exp), Some((_, actual))) = (algo, expected, &got.checksum)
        && exp.trim() != actual
    {
        return Err(S3Error::with_message(
            S3ErrorCode::BadDigest,
            format!("The {a} you specified did not match the calculated checksum."),
        ));
    }
    Ok(())
}

#[allow(
    clippy::too_many_arguments,
    reason = "one argument per content header of the S3 input shapes"
)]
fn content_from(
    content_type: Option<String>,
    content_encoding: Option<String>,
    content_disposition: Option<String>,
    content_language: Option<String>,
    cache_control: Option<String>,
    expires: Option<&Timestamp>,
    metadata: Option<Metadata>,
    storage_class: Option<&StorageClass>,
) -> Content {
    let content_encoding = content_encoding.and_then(|e| {
        let rest: Vec<&str> = e
            .split(',')
            .map(str::trim)
            .filter(|p| !p.eq_ignore_ascii_case("aws-chunked") && !p.is_empty())
            .collect();
        (!rest.is_empty()).then(|| rest.join(","))
    });
    Content {
        content_type,
        content_encoding,
        content_disposition,
        content_language,
        cache_control,
        expires: expires.and_then(ts_secs),
        meta: metadata
            .map(|m| {
                m.into_iter()
                    .map(|(k, v)| (k.to_ascii_lowercase(), v))
                    .collect()
            })
            .unwrap_or_default(),
        storage_class: storage_class
            .map(|s| s.as_str().to_owned())
            .filter(|s| s != "STANDARD"),
    }
}

struct ChecksumFields {
    crc32: Option<String>,
    crc32c: Option<String>,
    crc64nvme: Option<String>,
    sha1: Option<String>,
    sha256: Option<String>,
    kind: Option<ChecksumType>,
}

fn checksum_fields(c: Option<&Checksum>) -> ChecksumFields {
    let mut f = ChecksumFields {
        crc32: None,
        crc32c: None,
        crc64nvme: None,
        sha1: None,
        sha256: None,
        kind: None,
    };
    if let Some(c) = c {
        let v = Some(c.value.clone());
        match c.algo.as_str() {
            "CRC32" => f.crc32 = v,
            "CRC32C" => f.crc32c = v,
            "CRC64NVME" => f.crc64nvme = v,
            "SHA1" => f.sha1 = v,
            "SHA256" => f.sha256 = v,
            _ => {}
        }
        f.kind = Some(ChecksumType::from(c.kind.clone()));
    }
    f
}

/// A page size argument (`max-keys`, `max-parts`, `max-uploads`): capped at 1000; negative
/// values are refused as S3 does.
fn page_size(v: Option<i32>, name: &str) -> S3Result<usize> {
    match v {
        None => Ok(1000),
        Some(n) if n < 0 => Err(S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            format!("Argument {name} must be an integer between 0 and 2147483647"),
        )),
        Some(n) => Ok(n.min(1000) as usize),
    }
}

fn is_url(e: &Option<EncodingType>) -> bool {
    e.as_ref().is_some_and(|e| e.as_str() == "url")
}

fn enc(url: bool, s: String) -> String {
    if url { url_encode(&s) } else { s }
}

fn s3_object(key: String, m: &ObjectMeta, url: bool) -> Object {
    Object {
        key: Some(enc(url, key)),
        e_tag: Some(etag(&m.etag)),
        last_modified: Some(ts(m.modified_ms)),
        size: Some(m.size as i64),
        storage_class: Some(ObjectStorageClass::from(
            m.content
                .storage_class
                .clone()
                .unwrap_or_else(|| "STANDARD".to_owned()),
        )),
        checksum_algorithm: m
            .checksum
            .as_ref()
            .map(|c| vec![ChecksumAlgorithm::from(c.algo.clone())]),
        checksum_type: m
            .checksum
            .as_ref()
            .map(|c| ChecksumType::from(c.kind.clone())),
        ..Default::default()
    }
}

fn decode_token(t: &str) -> S3Result<String> {
    b64_decode(t)
        .and_then(|v| String::from_utf8(v).ok())
        .ok_or_else(|| {
            s3_error!(
                InvalidArgument,
                "The continuation token provided is incorrect"
            )
        })
}

impl BasaltS3 {
    fn list(
        &self,
        sc: &Scope,
        bucket: &str,
        prefix: &str,
        delimiter: Option<&str>,
        marker: Option<&str>,
        max: usize,
    ) -> S3Result<Page<ObjectMeta>> {
        self.bucket(sc, bucket)?;
        let base = sc.objects_prefix(bucket);
        let full_prefix = format!("{base}{prefix}");
        let mut page = list_page(prefix, delimiter, marker, max, |after, limit| {
            let after = after.map(|a| format!("{base}{a}"));
            let rows = self
                .state
                .scan(T_OBJECTS, &full_prefix, after.as_deref(), limit)
                .map_err(internal)?;
            Ok::<_, S3Error>(
                rows.into_iter()
                    .map(|(k, v)| (k[base.len()..].to_owned(), v))
                    .collect(),
            )
        })?;
        let objects = std::mem::take(&mut page.objects);
        let mut out = Page {
            objects: Vec::with_capacity(objects.len()),
            common_prefixes: page.common_prefixes,
            is_truncated: page.is_truncated,
            last: page.last,
        };
        for (k, raw) in objects {
            let Some((m, _)) = decode_object(raw) else {
                continue;
            };
            out.objects.push((k, m));
        }
        Ok(out)
    }

    async fn lock(&self, sc: &Scope, bucket: &str, key: &str) -> tokio::sync::MutexGuard<'_, ()> {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        let h = BuildHasherDefault::<DefaultHasher>::default().hash_one(sc.object_key(bucket, key));
        self.locks[(h % LOCK_STRIPES as u64) as usize].lock().await
    }

    /// Replaces an object's tags; data, metadata and modification time stay as they are.
    /// Written only if the record is still the one read (an unversioned PUT takes no lock),
    /// retried when a concurrent write got there first.
    async fn retag(
        &self,
        sc: &Scope,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        tags: tags::Tags,
    ) -> S3Result<Option<String>> {
        let _guard = self.lock(sc, bucket, key).await;
        let record = sc.object_key(bucket, key);
        if let Some(vid) = version_id {
            let current = self.object(sc, bucket, key)?.map(|(m, _)| m.version_id);
            let is_current = current
                .as_ref()
                .is_some_and(|c| c.as_deref().unwrap_or(versions::NULL_VERSION) == vid);
            if !is_current {
                // An older version: its record alone changes (versioned writes hold the lock).
                let found = self
                    .versions_of(sc, bucket, key)?
                    .into_iter()
                    .find(|v| v.meta.version_id.as_deref() == Some(vid) && !v.meta.delete_marker);
                let Some(v) = found else {
                    // The lookup's own error: invalid id, no such version, or a delete marker.
                    self.object_version(sc, bucket, key, Some(vid))?;
                    return Err(s3_error!(
                        NoSuchVersion,
                        "The specified version does not exist."
                    ));
                };
                let mut meta = v.meta;
                meta.tags = tags;
                self.write(vec![WriteOp::Put {
                    table: T_VERSIONS.into(),
                    key: v.row,
                    value: encode_object(&meta, &v.inline),
                }])
                .await?;
                return Ok(Some(vid.to_owned()));
            }
        }
        for _ in 0..16 {
            let Some(raw) = self.state.get(T_OBJECTS, &record).map_err(internal)? else {
                self.object_or_404(sc, bucket, key)?;
                continue;
            };
            let (mut meta, inline) = decode_object(raw.clone())
                .ok_or_else(|| s3_error!(InternalError, "corrupt object record"))?;
            meta.tags = tags.clone();
            let value = encode_object(&meta, &inline);
            let mut ops = vec![
                WriteOp::Check {
                    table: T_OBJECTS.into(),
                    key: record.clone(),
                    expected: Some(raw),
                },
                WriteOp::Put {
                    table: T_OBJECTS.into(),
                    key: record.clone(),
                    value: value.clone(),
                },
            ];
            // Tags belong to a version: the current one's record changes too.
            if let Some(vid) = &meta.version_id
                && let Some(v) = self
                    .versions_of(sc, bucket, key)?
                    .into_iter()
                    .find(|v| v.meta.version_id.as_ref() == Some(vid))
            {
                ops.push(WriteOp::Put {
                    table: T_VERSIONS.into(),
                    key: v.row,
                    value,
                });
            }
            if self.write_if(ops).await? {
                return Ok(meta.version_id);
            }
        }
        Err(s3_error!(SlowDown, "Please reduce your request rate."))
    }

    /// DeleteObject's semantics for the bucket's versioning state.
    async fn delete_any(
        &self,
        sc: &Scope,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        origin: &Origin,
    ) -> S3Result<versions::Deleted> {
        for _ in 0..16 {
            let snap = self.bucket_snapshot(sc, bucket)?;
            if let Some(status) = &snap.versioning {
                return self
                    .delete_versioned(sc, bucket, key, status, version_id, &snap, origin)
                    .await;
            }
            if version_id.is_some_and(|v| v != versions::NULL_VERSION) {
                return Err(s3_error!(InvalidArgument, "Invalid version id specified"));
            }
            let Some((meta, _)) = self.object(sc, bucket, key)? else {
                return Ok(versions::Deleted::default());
            };
            let notice = Notice {
                event: "ObjectRemoved:Delete",
                reason: "DeleteObject",
                origin,
            };
            let change = Change::Deleted { version: None };
            let announced = self.announce(
                sc,
                bucket,
                &snap.region,
                &snap.notifications,
                key,
                &change,
                &notice,
            );
            // Committed only while the bucket stays unversioned.
            let mut ops = vec![
                snap.check(),
                WriteOp::Delete {
                    table: T_OBJECTS.into(),
                    key: sc.object_key(bucket, key),
                },
            ];
            ops.extend(announced.ops.iter().cloned());
            if !self.write_if(ops).await? {
                continue;
            }
            if let Some(b) = meta.blob {
                self.delete_blobs_later(vec![b]);
            }
            self.announced(announced);
            return Ok(versions::Deleted::default());
        }
        Err(s3_error!(SlowDown, "Please reduce your request rate."))
    }

    fn upload(&self, sc: &Scope, bucket: &str, upload_id: &str, key: &str) -> S3Result<UploadMeta> {
        let raw = self
            .state
            .get(T_UPLOADS, &sc.upload_key(bucket, upload_id))
            .map_err(internal)?;
        let no_upload = || {
            s3_error!(
                NoSuchUpload,
                "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed."
            )
        };
        let Some(raw) = raw else {
            self.bucket(sc, bucket)?;
            return Err(no_upload());
        };
        let u: UploadMeta = serde_json::from_slice(&raw).map_err(internal)?;
        if u.key != key {
            return Err(no_upload());
        }
        Ok(u)
    }

    fn parts(&self, sc: &Scope, bucket: &str, upload_id: &str) -> S3Result<Vec<PartMeta>> {
        let prefix = format!("{}/", sc.upload_key(bucket, upload_id));
        let rows = self
            .state
            .scan(T_PARTS, &prefix, None, 10_001)
            .map_err(internal)?;
        rows.into_iter()
            .map(|(_, v)| serde_json::from_slice(&v).map_err(internal))
            .collect()
    }

    /// Makes `meta` the current version of `key`; returns the version id it got in a bucket
    /// with versioning. An unversioned write commits only if the bucket's versioning did not
    /// change meanwhile (turning it on adopts the current objects as null versions).
    /// The object's event notifications are queued in the same transaction.
    #[allow(clippy::too_many_arguments)]
    async fn commit_object(
        &self,
        sc: &Scope,
        bucket: &str,
        key: &str,
        meta: &ObjectMeta,
        inline: &[u8],
        extra: Vec<WriteOp>,
        mut snapshot: Option<BucketSnapshot>,
        notice: &Notice<'_>,
    ) -> S3Result<Option<String>> {
        for _ in 0..16 {
            // The caller's snapshot (if any) serves the first attempt: the check in the
            // transaction catches it being stale.
            let snap = match snapshot.take() {
                Some(s) => s,
                None => self.bucket_snapshot(sc, bucket)?,
            };
            let bucket_check = snap.check();
            let announce = |version: Option<&str>| {
                let change = Change::Created {
                    size: meta.size,
                    etag: &meta.etag,
                    version,
                };
                self.announce(
                    sc,
                    bucket,
                    &snap.region,
                    &snap.notifications,
                    key,
                    &change,
                    notice,
                )
            };
            if let Some(status) = &snap.versioning {
                let _guard = self.lock(sc, bucket, key).await;
                // Older versions keep their data; only a replaced null version frees any.
                let mut meta = meta.clone();
                let (ops, freed) = self.version_ops(sc, bucket, key, status, &mut meta, inline)?;
                let announced = announce(meta.version_id.as_deref());
                let mut all = extra.clone();
                all.push(bucket_check);
                all.extend(ops);
                all.extend(announced.ops.iter().cloned());
                if !self.write_if(all).await? {
                    continue;
                }
                self.delete_blobs_later(freed);
                self.announced(announced);
                return Ok(meta.version_id);
            }
            let old_blob = self.object(sc, bucket, key)?.and_then(|(m, _)| m.blob);
            let announced = announce(None);
            let mut all = extra.clone();
            all.push(bucket_check);
            all.push(WriteOp::Put {
                table: T_OBJECTS.into(),
                key: sc.object_key(bucket, key),
                value: encode_object(meta, inline),
            });
            all.extend(announced.ops.iter().cloned());
            if !self.write_if(all).await? {
                continue;
            }
            if let Some(b) = old_blob.filter(|b| Some(b) != meta.blob.as_ref()) {
                self.delete_blobs_later(vec![b]);
            }
            self.announced(announced);
            return Ok(None);
        }
        Err(s3_error!(SlowDown, "Please reduce your request rate."))
    }
}

#[async_trait::async_trait]
impl S3 for BasaltS3 {
    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        let sc = self.scope(&req);
        let bucket = req.input.bucket.clone();
        let constraint = req
            .input
            .create_bucket_configuration
            .as_ref()
            .and_then(|c| c.location_constraint.as_ref())
            .map(|c| c.as_str().to_owned())
            .filter(|c| !c.is_empty());
        match constraint.as_deref() {
            Some("us-east-1") if sc.region == "us-east-1" => {
                return Err(s3_error!(
                    InvalidLocationConstraint,
                    "The specified location-constraint is not valid"
                ));
            }
            Some(c) if c != sc.region && !(c == "EU" && sc.region == "eu-west-1") => {
                return Err(S3Error::with_message(
                    S3ErrorCode::IllegalLocationConstraintException,
                    format!(
                        "The {c} location constraint is incompatible for the region specific endpoint this request was sent to."
                    ),
                ));
            }
            None if sc.region != "us-east-1" => {
                return Err(s3_error!(
                    IllegalLocationConstraintException,
                    "The unspecified location constraint is incompatible for the region specific endpoint this request was sent to."
                ));
            }
            _ => {}
        }
        let k = sc.bucket_key(&bucket);
        if let Some(raw) = self.state.get(T_BUCKETS, &k).map_err(internal)? {
            let existing: BucketMeta = serde_json::from_slice(&raw).map_err(internal)?;
            if sc.region == "us-east-1" && existing.region == "us-east-1" {
                // us-east-1 keeps the legacy behaviour: re-creating your own us-east-1 bucket
                // there succeeds.
                let out = CreateBucketOutput {
                    location: Some(format!("/{bucket}")),
                };
                return Ok(S3Response::new(out));
            }
            return Err(s3_error!(
                BucketAlreadyOwnedByYou,
                "Your previous request to create the named bucket succeeded and you already own it."
            ));
        }
        let meta = BucketMeta {
            name: bucket.clone(),
            created_ms: now_ms(),
            region: sc.region.clone(),
            versioning: None,
            notifications: Notifications::default(),
        };
        self.write(vec![WriteOp::Put {
            table: T_BUCKETS.into(),
            key: k,
            value: serde_json::to_vec(&meta).map_err(internal)?,
        }])
        .await?;
        let location = if sc.region == "us-east-1" {
            format!("/{bucket}")
        } else {
            format!("http://{bucket}.s3.amazonaws.com/")
        };
        Ok(S3Response::new(CreateBucketOutput {
            location: Some(location),
        }))
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        let sc = self.scope(&req);
        let b = self.bucket(&sc, &req.input.bucket)?;
        Ok(S3Response::new(HeadBucketOutput {
            bucket_region: Some(b.region),
            ..Default::default()
        }))
    }

    async fn list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        let sc = self.scope(&req);
        let rows = self
            .state
            .scan(T_BUCKETS, &sc.prefix(), None, 100_000)
            .map_err(internal)?;
        let prefix = req.input.prefix.clone().unwrap_or_default();
        let mut buckets = Vec::with_capacity(rows.len());
        for (_, v) in rows {
            let b: BucketMeta = serde_json::from_slice(&v).map_err(internal)?;
            if !b.name.starts_with(&prefix) {
                continue;
            }
            buckets.push(Bucket {
                name: Some(b.name),
                creation_date: Some(ts(b.created_ms)),
                bucket_region: Some(b.region),
            });
        }
        Ok(S3Response::new(ListBucketsOutput {
            buckets: Some(buckets),
            owner: Some(self.owner()),
            prefix: req.input.prefix,
            ..Default::default()
        }))
    }

    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        let sc = self.scope(&req);
        let bucket = &req.input.bucket;
        let has = |table: &str| -> S3Result<bool> {
            Ok(!self
                .state
                .scan(table, &sc.objects_prefix(bucket), None, 1)
                .map_err(internal)?
                .is_empty())
        };
        let not_empty = || {
            s3_error!(
                BucketNotEmpty,
                "The bucket you tried to delete is not empty"
            )
        };
        let snap = self.bucket_snapshot(&sc, bucket)?;
        if has(T_OBJECTS)? || has(T_VERSIONS)? {
            return Err(not_empty());
        }
        let removed = self
            .write_if(vec![
                snap.check(),
                WriteOp::Delete {
                    table: T_BUCKETS.into(),
                    key: sc.bucket_key(bucket),
                },
            ])
            .await?;
        if !removed {
            return Err(s3_error!(
                OperationAborted,
                "A conflicting conditional operation is currently in progress against this resource. Please try again."
            ));
        }
        // Writes check the bucket record, so none lands after it is gone; one that committed
        // between the emptiness check and the removal puts the bucket back.
        if has(T_OBJECTS)? || has(T_VERSIONS)? {
            self.write(vec![WriteOp::Put {
                table: T_BUCKETS.into(),
                key: snap.key,
                value: snap.raw,
            }])
            .await?;
            return Err(not_empty());
        }
        // Abandoned multipart uploads go with the bucket.
        let uploads = self
            .state
            .scan(T_UPLOADS, &sc.objects_prefix(bucket), None, 100_000)
            .map_err(internal)?;
        let mut ops = Vec::new();
        let mut blobs = Vec::new();
        for (k, _) in uploads {
            let upload_id = &k[sc.objects_prefix(bucket).len()..];
            for p in self.parts(&sc, bucket, upload_id)? {
                ops.push(WriteOp::Delete {
                    table: T_PARTS.into(),
                    key: sc.part_key(bucket, upload_id, p.number),
                });
                blobs.push(p.blob);
            }
            ops.push(WriteOp::Delete {
                table: T_UPLOADS.into(),
                key: k,
            });
        }
        // And the version heads of its keys (`versions::VersionHead`).
        for (k, _) in self
            .state
            .scan(T_VERSION_HEADS, &sc.objects_prefix(bucket), None, 1_000_000)
            .map_err(internal)?
        {
            ops.push(WriteOp::Delete {
                table: T_VERSION_HEADS.into(),
                key: k,
            });
        }
        self.write(ops).await?;
        self.delete_blobs_later(blobs);
        Ok(S3Response::new(DeleteBucketOutput {}))
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        let sc = self.scope(&req);
        let b = self.bucket(&sc, &req.input.bucket)?;
        let lc = (b.region != "us-east-1").then(|| BucketLocationConstraint::from(b.region));
        Ok(S3Response::new(GetBucketLocationOutput {
            location_constraint: lc,
        }))
    }

    async fn get_bucket_versioning(
        &self,
        req: S3Request<GetBucketVersioningInput>,
    ) -> S3Result<S3Response<GetBucketVersioningOutput>> {
        let sc = self.scope(&req);
        let b = self.bucket(&sc, &req.input.bucket)?;
        Ok(S3Response::new(GetBucketVersioningOutput {
            status: b.versioning.map(BucketVersioningStatus::from),
            ..Default::default()
        }))
    }

    async fn put_bucket_versioning(
        &self,
        req: S3Request<PutBucketVersioningInput>,
    ) -> S3Result<S3Response<PutBucketVersioningOutput>> {
        let sc = self.scope(&req);
        let mut b = self.bucket(&sc, &req.input.bucket)?;
        let status = req
            .input
            .versioning_configuration
            .status
            .as_ref()
            .map(|s| s.as_str().to_owned());
        let first = b.versioning.is_none();
        match status.as_deref() {
            Some("Enabled" | "Suspended") => b.versioning = status,
            None => {}
            Some(_) => {
                return Err(s3_error!(
                    MalformedXML,
                    "The XML you provided was not well-formed or did not validate against our published schema"
                ));
            }
        }
        let record = WriteOp::Put {
            table: T_BUCKETS.into(),
            key: sc.bucket_key(&req.input.bucket),
            value: serde_json::to_vec(&b).map_err(internal)?,
        };
        if !(first && b.versioning.is_some()) {
            self.write(vec![record]).await?;
            return Ok(S3Response::new(PutBucketVersioningOutput {}));
        }
        // Turning versioning on: the objects written so far become null versions, in the
        // same transaction, retried if a write changed one of them meanwhile.
        for _ in 0..16 {
            let mut ops = self.adopt_unversioned(&sc, &req.input.bucket)?;
            ops.push(record.clone());
            if self.write_if(ops).await? {
                return Ok(S3Response::new(PutBucketVersioningOutput {}));
            }
        }
        Err(s3_error!(SlowDown, "Please reduce your request rate."))
    }

    async fn put_object(
        &self,
        mut req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let sc = self.scope(&req);
        let origin = Origin::of(&req);
        let bucket = req.input.bucket.clone();
        let key = req.input.key.clone();
        let snapshot = self.bucket_snapshot(&sc, &bucket)?;
        if req.input.content_length.is_some_and(|n| n as u64 > MAX_PUT) {
            return Err(s3_error!(
                EntityTooLarge,
                "Your proposed upload exceeds the maximum allowed size"
            ));
        }
        if let Some(cond) = &req.input.if_none_match
            && cond.is_any()
            && self.object(&sc, &bucket, &key)?.is_some()
        {
            return Err(s3_error!(
                PreconditionFailed,
                "At least one of the pre-conditions you specified did not hold"
            ));
        }
        let (req_algo, expected, trailer) =
            requested_checksum(&req.headers, req.input.checksum_algorithm.as_ref());
        if req_algo
            .as_deref()
            .is_some_and(|a| Hasher::new(a).is_none())
        {
            return Err(s3_error!(
                InvalidRequest,
                "Checksum algorithm provided is unsupported."
            ));
        }
        let algo = req_algo.clone().unwrap_or_else(|| "CRC64NVME".to_owned());
        let body = req.input.body.take();
        let got = self.ingest(body, Some(&algo), false).await?;
        if let Some(n) = req.input.content_length
            && n as u64 != got.size
        {
            self.discard(&got.data).await;
            return Err(s3_error!(
                IncompleteBody,
                "You did not provide the number of bytes specified by the Content-Length HTTP header."
            ));
        }
        if let Err(e) = verify_integrity(
            &req,
            req.input.content_md5.as_deref(),
            &got,
            Some(&algo),
            expected,
            trailer,
        ) {
            self.discard(&got.data).await;
            return Err(e);
        }
        let i = req.input;
        let tags = match tags::from_header(i.tagging.as_deref()) {
            Ok(t) => t,
            Err(e) => {
                self.discard(&got.data).await;
                return Err(e);
            }
        };
        let content = content_from(
            i.content_type,
            i.content_encoding,
            i.content_disposition,
            i.content_language,
            i.cache_control,
            i.expires.as_ref(),
            i.metadata,
            i.storage_class.as_ref(),
        );
        let etag_hex = hex::encode(&got.md5);
        let checksum = got.checksum.clone().map(|(algo, value)| Checksum {
            algo,
            value,
            kind: "FULL_OBJECT".into(),
        });
        let (inline, blob) = match &got.data {
            Data::Inline(b) => (b.clone(), None),
            Data::Blob(k) => (Bytes::new(), Some(k.clone())),
        };
        let meta = ObjectMeta {
            size: got.size,
            etag: etag_hex.clone(),
            modified_ms: now_ms(),
            content,
            checksum,
            blob,
            parts: None,
            part_sizes: None,
            tags,
            version_id: None,
            delete_marker: false,
        };
        let version_id = match self
            .commit_object(
                &sc,
                &bucket,
                &key,
                &meta,
                &inline,
                Vec::new(),
                Some(snapshot),
                &Notice {
                    event: "ObjectCreated:Put",
                    reason: "PutObject",
                    origin: &origin,
                },
            )
            .await
        {
            Ok(v) => v,
            Err(e) => {
                self.discard(&got.data).await;
                return Err(e);
            }
        };
        let f = if req_algo.is_some() {
            checksum_fields(meta.checksum.as_ref())
        } else {
            checksum_fields(None)
        };
        Ok(S3Response::new(PutObjectOutput {
            e_tag: Some(etag(&etag_hex)),
            version_id,
            checksum_crc32: f.crc32,
            checksum_crc32c: f.crc32c,
            checksum_crc64nvme: f.crc64nvme,
            checksum_sha1: f.sha1,
            checksum_sha256: f.sha256,
            checksum_type: f.kind,
            ..Default::default()
        }))
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let sc = self.scope(&req);
        let i = &req.input;
        let (meta, inline) =
            self.object_version(&sc, &i.bucket, &i.key, i.version_id.as_deref())?;
        check_conditions(
            &meta,
            i.if_match.as_ref(),
            i.if_unmodified_since.as_ref(),
            i.if_none_match.as_ref(),
            i.if_modified_since.as_ref(),
            false,
        )?;
        let (range, parts_count) = read_window(&meta, i.range.as_ref(), i.part_number)?;
        let content_range = range
            .as_ref()
            .filter(|r| r.end > r.start)
            .map(|r| format!("bytes {}-{}/{}", r.start, r.end - 1, meta.size));
        let len = range.as_ref().map_or(meta.size, |r| r.end - r.start);
        let f = if i
            .checksum_mode
            .as_ref()
            .is_some_and(|m| m.as_str() == "ENABLED")
            && range.is_none()
        {
            checksum_fields(meta.checksum.as_ref())
        } else {
            checksum_fields(None)
        };
        let body = self.body_of(&meta, inline, range);
        let c = &meta.content;
        Ok(S3Response::new(GetObjectOutput {
            body: Some(body),
            accept_ranges: Some("bytes".into()),
            content_length: Some(len as i64),
            content_range,
            e_tag: Some(etag(&meta.etag)),
            last_modified: Some(ts(meta.modified_ms)),
            content_type: Some(
                c.content_type
                    .clone()
                    .unwrap_or_else(|| "binary/octet-stream".into()),
            ),
            content_encoding: c.content_encoding.clone(),
            content_disposition: c.content_disposition.clone(),
            content_language: c.content_language.clone(),
            cache_control: c.cache_control.clone(),
            expires: c.expires.map(|s| ts(s * 1000)),
            metadata: (!c.meta.is_empty()).then(|| c.meta.clone().into_iter().collect()),
            storage_class: c.storage_class.clone().map(StorageClass::from),
            parts_count,
            version_id: meta.version_id.clone(),
            tag_count: (!meta.tags.is_empty()).then_some(meta.tags.len() as i32),
            checksum_crc32: f.crc32,
            checksum_crc32c: f.crc32c,
            checksum_crc64nvme: f.crc64nvme,
            checksum_sha1: f.sha1,
            checksum_sha256: f.sha256,
            checksum_type: f.kind,
            ..Default::default()
        }))
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let sc = self.scope(&req);
        let i = &req.input;
        let (meta, _) = self.object_version(&sc, &i.bucket, &i.key, i.version_id.as_deref())?;
        check_conditions(
            &meta,
            i.if_match.as_ref(),
            i.if_unmodified_since.as_ref(),
            i.if_none_match.as_ref(),
            i.if_modified_since.as_ref(),
            false,
        )?;
        let (range, parts_count) = read_window(&meta, i.range.as_ref(), i.part_number)?;
        let content_range = range
            .as_ref()
            .filter(|r| r.end > r.start)
            .map(|r| format!("bytes {}-{}/{}", r.start, r.end - 1, meta.size));
        let len = range.as_ref().map_or(meta.size, |r| r.end - r.start);
        let f = if i
            .checksum_mode
            .as_ref()
            .is_some_and(|m| m.as_str() == "ENABLED")
        {
            checksum_fields(meta.checksum.as_ref())
        } else {
            checksum_fields(None)
        };
        let content_range_set = content_range.is_some();
        let c = &meta.content;
        let mut resp = S3Response::new(HeadObjectOutput {
            accept_ranges: Some("bytes".into()),
            content_length: Some(len as i64),
            content_range,
            e_tag: Some(etag(&meta.etag)),
            last_modified: Some(ts(meta.modified_ms)),
            content_type: Some(
                c.content_type
                    .clone()
                    .unwrap_or_else(|| "binary/octet-stream".into()),
            ),
            content_encoding: c.content_encoding.clone(),
            content_disposition: c.content_disposition.clone(),
            content_language: c.content_language.clone(),
            cache_control: c.cache_control.clone(),
            expires: c.expires.map(|s| ts(s * 1000)),
            metadata: (!c.meta.is_empty()).then(|| c.meta.clone().into_iter().collect()),
            storage_class: c.storage_class.clone().map(StorageClass::from),
            parts_count,
            version_id: meta.version_id.clone(),
            checksum_crc32: f.crc32,
            checksum_crc32c: f.crc32c,
            checksum_crc64nvme: f.crc64nvme,
            checksum_sha1: f.sha1,
            checksum_sha256: f.sha256,
            checksum_type: f.kind,
            ..Default::default()
        });
        if content_range_set {
            // s3s's HeadObject ignores `resp.status`; the front applies this marker.
            resp.extensions.insert(crate::PartialContent);
        }
        Ok(resp)
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let sc = self.scope(&req);
        let origin = Origin::of(&req);
        let i = &req.input;
        let d = self
            .delete_any(&sc, &i.bucket, &i.key, i.version_id.as_deref(), &origin)
            .await?;
        Ok(S3Response::new(DeleteObjectOutput {
            delete_marker: d.delete_marker.then_some(true),
            version_id: d.version_id,
            ..Default::default()
        }))
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let sc = self.scope(&req);
        let origin = Origin::of(&req);
        let bucket = &req.input.bucket;
        self.bucket(&sc, bucket)?;
        let objs = &req.input.delete.objects;
        if objs.len() > 1000 {
            return Err(s3_error!(
                MalformedXML,
                "The XML you provided was not well-formed or did not validate against our published schema"
            ));
        }
        let quiet = req.input.delete.quiet.unwrap_or(false);
        let mut deleted = Vec::new();
        let mut errors = Vec::new();
        for o in objs {
            match self
                .delete_any(&sc, bucket, &o.key, o.version_id.as_deref(), &origin)
                .await
            {
                Ok(d) => {
                    if !quiet {
                        deleted.push(DeletedObject {
                            key: Some(o.key.clone()),
                            version_id: o.version_id.clone(),
                            delete_marker: d.delete_marker.then_some(true),
                            delete_marker_version_id: d
                                .delete_marker
                                .then(|| d.version_id.clone())
                                .flatten(),
                        });
                    }
                }
                Err(e) => errors.push(Error {
                    key: Some(o.key.clone()),
                    code: Some(e.code().as_str().to_owned()),
                    message: e.message().map(str::to_owned),
                    version_id: o.version_id.clone(),
                }),
            }
        }
        Ok(S3Response::new(DeleteObjectsOutput {
            deleted: Some(deleted),
            errors: (!errors.is_empty()).then_some(errors),
            ..Default::default()
        }))
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        let sc = self.scope(&req);
        let origin = Origin::of(&req);
        let i = req.input;
        let CopySource::Bucket {
            bucket: sb,
            key: sk,
            version_id: source_version,
        } = &i.copy_source
        else {
            return Err(s3_error!(
                NotImplemented,
                "Access point copy sources are not supported"
            ));
        };
        self.bucket(&sc, &i.bucket)?;
        let (src, inline) = self
            .object_version(&sc, sb, sk, source_version.as_deref())
            .map_err(|e| {
                if *e.code() == S3ErrorCode::MethodNotAllowed {
                    s3_error!(
                        InvalidRequest,
                        "The source of a copy request may not specifically refer to a delete marker by version id."
                    )
                } else {
                    e
                }
            })?;
        check_conditions(
            &src,
            i.copy_source_if_match.as_ref(),
            i.copy_source_if_unmodified_since.as_ref(),
            i.copy_source_if_none_match.as_ref(),
            i.copy_source_if_modified_since.as_ref(),
            true,
        )?;
        let replace = i
            .metadata_directive
            .as_ref()
            .is_some_and(|d| d.as_str() == "REPLACE");
        // Copying a key onto itself is allowed when it restores an older version.
        if **sb == i.bucket
            && **sk == i.key
            && source_version.is_none()
            && !replace
            && i.storage_class.is_none()
        {
            return Err(s3_error!(
                InvalidRequest,
                "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes."
            ));
        }
        let content = if replace {
            content_from(
                i.content_type,
                i.content_encoding,
                i.content_disposition,
                i.content_language,
                i.cache_control,
                i.expires.as_ref(),
                i.metadata,
                i.storage_class.as_ref(),
            )
        } else {
            let mut c = src.content.clone();
            if let Some(s) = &i.storage_class {
                c.storage_class = Some(s.as_str().to_owned()).filter(|s| s != "STANDARD");
            }
            c
        };
        let tags = match i.tagging_directive.as_ref().map(|d| d.as_str()) {
            Some("REPLACE") => tags::from_header(i.tagging.as_deref())?,
            _ => src.tags.clone(),
        };
        let blob = match &src.blob {
            None => None,
            Some(b) => {
                let nk = new_blob_key();
                let blobs = self.blobs.clone();
                let (b, k2) = (b.clone(), nk.clone());
                tokio::task::spawn_blocking(move || blobs.concat(&k2, &[b.as_str()]))
                    .await
                    .map_err(internal)?
                    .map_err(internal)?;
                Some(nk)
            }
        };
        let now = now_ms();
        let meta = ObjectMeta {
            size: src.size,
            etag: src.etag.clone(),
            modified_ms: now,
            content,
            checksum: src.checksum.clone(),
            blob: blob.clone(),
            parts: src.parts,
            part_sizes: src.part_sizes.clone(),
            tags,
            version_id: None,
            delete_marker: false,
        };
        let version_id = match self
            .commit_object(
                &sc,
                &i.bucket,
                &i.key,
                &meta,
                &inline,
                Vec::new(),
                None,
                &Notice {
                    event: "ObjectCreated:Copy",
                    reason: "CopyObject",
                    origin: &origin,
                },
            )
            .await
        {
            Ok(v) => v,
            Err(e) => {
                if let Some(b) = blob {
                    self.delete_blobs_later(vec![b]);
                }
                return Err(e);
            }
        };
        let f = checksum_fields(meta.checksum.as_ref());
        Ok(S3Response::new(CopyObjectOutput {
            copy_object_result: Some(CopyObjectResult {
                e_tag: Some(etag(&meta.etag)),
                last_modified: Some(ts(now)),
                checksum_crc32: f.crc32,
                checksum_crc32c: f.crc32c,
                checksum_crc64nvme: f.crc64nvme,
                checksum_sha1: f.sha1,
                checksum_sha256: f.sha256,
                checksum_type: f.kind,
            }),
            version_id,
            copy_source_version_id: src.version_id.clone(),
            ..Default::default()
        }))
    }

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        let sc = self.scope(&req);
        let i = req.input;
        let prefix = i.prefix.clone().unwrap_or_default();
        let max = page_size(i.max_keys, "maxKeys")?;
        let page = self.list(
            &sc,
            &i.bucket,
            &prefix,
            i.delimiter.as_deref(),
            i.marker.as_deref().filter(|m| !m.is_empty()),
            max,
        )?;
        let url = is_url(&i.encoding_type);
        let has_delim = i.delimiter.as_deref().is_some_and(|d| !d.is_empty());
        Ok(S3Response::new(ListObjectsOutput {
            name: Some(i.bucket),
            prefix: Some(enc(url, prefix)),
            marker: Some(enc(url, i.marker.unwrap_or_default())),
            max_keys: Some(max as i32),
            is_truncated: Some(page.is_truncated),
            next_marker: if page.is_truncated && has_delim {
                page.last.map(|l| enc(url, l))
            } else {
                None
            },
            contents: Some(
                page.objects
                    .into_iter()
                    .map(|(k, m)| {
                        let mut o = s3_object(k, &m, url);
                        o.owner = Some(self.owner());
                        o
                    })
                    .collect(),
            ),
            common_prefixes: Some(
                page.common_prefixes
                    .into_iter()
                    .map(|p| CommonPrefix {
                        prefix: Some(enc(url, p)),
                    })
                    .collect(),
            ),
            delimiter: i.delimiter.map(|d| enc(url, d)),
            encoding_type: i.encoding_type,
            ..Default::default()
        }))
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let sc = self.scope(&req);
        let i = req.input;
        let prefix = i.prefix.clone().unwrap_or_default();
        let max = page_size(i.max_keys, "maxKeys")?;
        let token = match i.continuation_token.as_deref() {
            Some(t) => Some(decode_token(t)?),
            None => None,
        };
        let start_after = i.start_after.as_deref().filter(|s| !s.is_empty());
        let marker = match (token.as_deref(), start_after) {
            (Some(t), Some(s)) => Some(if t > s { t } else { s }),
            (t, s) => t.or(s),
        };
        let page = self.list(&sc, &i.bucket, &prefix, i.delimiter.as_deref(), marker, max)?;
        let url = is_url(&i.encoding_type);
        let fetch_owner = i.fetch_owner.unwrap_or(false);
        let key_count = (page.objects.len() + page.common_prefixes.len()) as i32;
        use base64::Engine as _;
        let next = if page.is_truncated {
            page.last
                .map(|l| base64::engine::general_purpose::STANDARD.encode(l.as_bytes()))
        } else {
            None
        };
        Ok(S3Response::new(ListObjectsV2Output {
            name: Some(i.bucket),
            prefix: Some(enc(url, prefix)),
            max_keys: Some(max as i32),
            key_count: Some(key_count),
            continuation_token: i.continuation_token,
            next_continuation_token: next,
            start_after: i.start_after.map(|s| enc(url, s)),
            is_truncated: Some(page.is_truncated),
            contents: Some(
                page.objects
                    .into_iter()
                    .map(|(k, m)| {
                        let mut o = s3_object(k, &m, url);
                        if fetch_owner {
                            o.owner = Some(self.owner());
                        }
                        o
                    })
                    .collect(),
            ),
            common_prefixes: Some(
                page.common_prefixes
                    .into_iter()
                    .map(|p| CommonPrefix {
                        prefix: Some(enc(url, p)),
                    })
                    .collect(),
            ),
            delimiter: i.delimiter.map(|d| enc(url, d)),
            encoding_type: i.encoding_type,
            ..Default::default()
        }))
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let sc = self.scope(&req);
        let i = req.input;
        self.bucket(&sc, &i.bucket)?;
        let algo = i
            .checksum_algorithm
            .as_ref()
            .map(|a| a.as_str().to_ascii_uppercase());
        let ctype = i.checksum_type.as_ref().map(|t| t.as_str().to_owned());
        let upload_id = uuid::Uuid::new_v4().simple().to_string();
        let u = UploadMeta {
            key: i.key.clone(),
            initiated_ms: now_ms(),
            content: content_from(
                i.content_type,
                i.content_encoding,
                i.content_disposition,
                i.content_language,
                i.cache_control,
                i.expires.as_ref(),
                i.metadata,
                i.storage_class.as_ref(),
            ),
            checksum_algo: algo.clone(),
            checksum_type: ctype.clone(),
            tags: tags::from_header(i.tagging.as_deref())?,
        };
        self.write(vec![WriteOp::Put {
            table: T_UPLOADS.into(),
            key: sc.upload_key(&i.bucket, &upload_id),
            value: serde_json::to_vec(&u).map_err(internal)?,
        }])
        .await?;
        Ok(S3Response::new(CreateMultipartUploadOutput {
            bucket: Some(i.bucket),
            key: Some(i.key),
            upload_id: Some(upload_id),
            checksum_algorithm: algo.map(ChecksumAlgorithm::from),
            checksum_type: algo_type(u.checksum_algo.as_deref(), ctype.as_deref())
                .map(ChecksumType::from),
            ..Default::default()
        }))
    }

    async fn upload_part(
        &self,
        mut req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        let sc = self.scope(&req);
        let (bucket, key, upload_id, n) = (
            req.input.bucket.clone(),
            req.input.key.clone(),
            req.input.upload_id.clone(),
            req.input.part_number,
        );
        if !(1..=10_000).contains(&n) {
            return Err(s3_error!(
                InvalidArgument,
                "Part number must be an integer between 1 and 10000, inclusive"
            ));
        }
        let u = self.upload(&sc, &bucket, &upload_id, &key)?;
        let (req_algo, expected, trailer) =
            requested_checksum(&req.headers, req.input.checksum_algorithm.as_ref());
        let algo = req_algo.clone().or(u.checksum_algo.clone());
        let body = req.input.body.take();
        let got = self.ingest(body, algo.as_deref(), true).await?;
        if let Err(e) = verify_integrity(
            &req,
            req.input.content_md5.as_deref(),
            &got,
            algo.as_deref(),
            expected,
            trailer,
        ) {
            self.discard(&got.data).await;
            return Err(e);
        }
        let Data::Blob(blob) = &got.data else {
            unreachable!("force_blob")
        };
        let etag_hex = hex::encode(&got.md5);
        let part = PartMeta {
            number: n,
            size: got.size,
            etag: etag_hex.clone(),
            modified_ms: now_ms(),
            blob: blob.clone(),
            checksum: got.checksum.clone().map(|(algo, value)| Checksum {
                algo,
                value,
                kind: "COMPOSITE".into(),
            }),
        };
        let pk = sc.part_key(&bucket, &upload_id, n);
        let old = self
            .state
            .get(T_PARTS, &pk)
            .map_err(internal)?
            .and_then(|v| serde_json::from_slice::<PartMeta>(&v).ok());
        self.write(vec![WriteOp::Put {
            table: T_PARTS.into(),
            key: pk,
            value: serde_json::to_vec(&part).map_err(internal)?,
        }])
        .await?;
        if let Some(o) = old {
            self.delete_blobs_later(vec![o.blob]);
        }
        let f = checksum_fields(part.checksum.as_ref());
        Ok(S3Response::new(UploadPartOutput {
            e_tag: Some(etag(&etag_hex)),
            checksum_crc32: f.crc32,
            checksum_crc32c: f.crc32c,
            checksum_crc64nvme: f.crc64nvme,
            checksum_sha1: f.sha1,
            checksum_sha256: f.sha256,
            ..Default::default()
        }))
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let sc = self.scope(&req);
        let origin = Origin::of(&req);
        let i = &req.input;
        let u = self.upload(&sc, &i.bucket, &i.upload_id, &i.key)?;
        let requested: Vec<CompletedPart> = i
            .multipart_upload
            .as_ref()
            .and_then(|m| m.parts.clone())
            .unwrap_or_default();
        if requested.is_empty() {
            return Err(s3_error!(
                MalformedXML,
                "The XML you provided was not well-formed or did not validate against our published schema"
            ));
        }
        let stored = self.parts(&sc, &i.bucket, &i.upload_id)?;
        let invalid_part = || {
            s3_error!(
                InvalidPart,
                "One or more of the specified parts could not be found.  The part may not have been uploaded, or the specified entity tag may not match the part's entity tag."
            )
        };
        let mut chosen: Vec<&PartMeta> = Vec::with_capacity(requested.len());
        let mut last = 0;
        for p in &requested {
            let n = p.part_number.ok_or_else(invalid_part)?;
            if n <= last {
                return Err(s3_error!(
                    InvalidPartOrder,
                    "The list of parts was not in ascending order. The parts list must be specified in order by part number."
                ));
            }
            last = n;
            let sp = stored
                .iter()
                .find(|s| s.number == n)
                .ok_or_else(invalid_part)?;
            if let Some(e) = &p.e_tag
                && e.value().trim_matches('"') != sp.etag
            {
                return Err(invalid_part());
            }
            chosen.push(sp);
        }
        for (idx, p) in chosen.iter().enumerate() {
            if idx + 1 < chosen.len() && p.size < MIN_PART_SIZE {
                return Err(s3_error!(
                    EntityTooSmall,
                    "Your proposed upload is smaller than the minimum allowed object size."
                ));
            }
        }
        let etag_hex = multipart_etag(chosen.iter().map(|p| p.etag.as_str()))
            .ok_or_else(|| internal("bad part etag"))?;
        let checksum = u.checksum_algo.as_ref().and_then(|a| {
            let values: Option<Vec<&str>> = chosen
                .iter()
                .map(|p| p.checksum.as_ref().map(|c| c.value.as_str()))
                .collect();
            composite_checksum(a, values?).map(|value| Checksum {
                algo: a.clone(),
                value,
                kind: "COMPOSITE".into(),
            })
        });
        let size: u64 = chosen.iter().map(|p| p.size).sum();
        let nk = new_blob_key();
        {
            let blobs = self.blobs.clone();
            let srcs: Vec<String> = chosen.iter().map(|p| p.blob.clone()).collect();
            let k2 = nk.clone();
            tokio::task::spawn_blocking(move || {
                let refs: Vec<&str> = srcs.iter().map(String::as_str).collect();
                blobs.concat(&k2, &refs)
            })
            .await
            .map_err(internal)?
            .map_err(internal)?;
        }
        let meta = ObjectMeta {
            size,
            etag: etag_hex.clone(),
            modified_ms: now_ms(),
            content: u.content.clone(),
            checksum,
            blob: Some(nk.clone()),
            parts: Some(chosen.len() as u32),
            part_sizes: Some(chosen.iter().map(|p| p.size).collect()),
            tags: u.tags.clone(),
            version_id: None,
            delete_marker: false,
        };
        let mut ops: Vec<WriteOp> = stored
            .iter()
            .map(|p| WriteOp::Delete {
                table: T_PARTS.into(),
                key: sc.part_key(&i.bucket, &i.upload_id, p.number),
            })
            .collect();
        ops.push(WriteOp::Delete {
            table: T_UPLOADS.into(),
            key: sc.upload_key(&i.bucket, &i.upload_id),
        });
        let version_id = match self
            .commit_object(
                &sc,
                &i.bucket,
                &i.key,
                &meta,
                &[],
                ops,
                None,
                &Notice {
                    event: "ObjectCreated:CompleteMultipartUpload",
                    reason: "CompleteMultipartUpload",
                    origin: &origin,
                },
            )
            .await
        {
            Ok(v) => v,
            Err(e) => {
                self.delete_blobs_later(vec![nk]);
                return Err(e);
            }
        };
        self.delete_blobs_later(stored.into_iter().map(|p| p.blob).collect());
        let f = checksum_fields(meta.checksum.as_ref());
        Ok(S3Response::new(CompleteMultipartUploadOutput {
            version_id,
            bucket: Some(i.bucket.clone()),
            key: Some(i.key.clone()),
            e_tag: Some(etag(&etag_hex)),
            location: Some(format!("/{}/{}", i.bucket, i.key)),
            checksum_crc32: f.crc32,
            checksum_crc32c: f.crc32c,
            checksum_crc64nvme: f.crc64nvme,
            checksum_sha1: f.sha1,
            checksum_sha256: f.sha256,
            checksum_type: f.kind,
            ..Default::default()
        }))
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let sc = self.scope(&req);
        let i = &req.input;
        self.upload(&sc, &i.bucket, &i.upload_id, &i.key)?;
        let parts = self.parts(&sc, &i.bucket, &i.upload_id)?;
        let mut ops: Vec<WriteOp> = parts
            .iter()
            .map(|p| WriteOp::Delete {
                table: T_PARTS.into(),
                key: sc.part_key(&i.bucket, &i.upload_id, p.number),
            })
            .collect();
        ops.push(WriteOp::Delete {
            table: T_UPLOADS.into(),
            key: sc.upload_key(&i.bucket, &i.upload_id),
        });
        self.write(ops).await?;
        self.delete_blobs_later(parts.into_iter().map(|p| p.blob).collect());
        Ok(S3Response::new(AbortMultipartUploadOutput::default()))
    }

    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        let sc = self.scope(&req);
        let i = &req.input;
        let u = self.upload(&sc, &i.bucket, &i.upload_id, &i.key)?;
        let marker = i.part_number_marker.unwrap_or(0);
        let max = page_size(i.max_parts, "max-parts")?;
        let all: Vec<PartMeta> = self
            .parts(&sc, &i.bucket, &i.upload_id)?
            .into_iter()
            .filter(|p| p.number > marker)
            .collect();
        let truncated = all.len() > max;
        let page: Vec<PartMeta> = all.into_iter().take(max).collect();
        let next = page.last().map(|p| p.number);
        let parts = page
            .iter()
            .map(|p| {
                let f = checksum_fields(p.checksum.as_ref());
                Part {
                    part_number: Some(p.number),
                    e_tag: Some(etag(&p.etag)),
                    size: Some(p.size as i64),
                    last_modified: Some(ts(p.modified_ms)),
                    checksum_crc32: f.crc32,
                    checksum_crc32c: f.crc32c,
                    checksum_crc64nvme: f.crc64nvme,
                    checksum_sha1: f.sha1,
                    checksum_sha256: f.sha256,
                }
            })
            .collect();
        let owner = self.owner();
        Ok(S3Response::new(ListPartsOutput {
            bucket: Some(i.bucket.clone()),
            key: Some(i.key.clone()),
            upload_id: Some(i.upload_id.clone()),
            part_number_marker: Some(marker),
            next_part_number_marker: next,
            max_parts: Some(max as i32),
            is_truncated: Some(truncated),
            parts: Some(parts),
            storage_class: Some(StorageClass::from(
                u.content
                    .storage_class
                    .clone()
                    .unwrap_or_else(|| "STANDARD".into()),
            )),
            initiator: Some(Initiator {
                display_name: owner.display_name.clone(),
                id: owner.id.clone(),
            }),
            owner: Some(owner),
            checksum_algorithm: u.checksum_algo.clone().map(ChecksumAlgorithm::from),
            checksum_type: algo_type(u.checksum_algo.as_deref(), u.checksum_type.as_deref())
                .map(ChecksumType::from),
            ..Default::default()
        }))
    }

    async fn put_bucket_notification_configuration(
        &self,
        req: S3Request<PutBucketNotificationConfigurationInput>,
    ) -> S3Result<S3Response<PutBucketNotificationConfigurationOutput>> {
        self.put_notifications(req).await
    }

    async fn get_bucket_notification_configuration(
        &self,
        req: S3Request<GetBucketNotificationConfigurationInput>,
    ) -> S3Result<S3Response<GetBucketNotificationConfigurationOutput>> {
        self.get_notifications(req).await
    }

    async fn list_object_versions(
        &self,
        req: S3Request<ListObjectVersionsInput>,
    ) -> S3Result<S3Response<ListObjectVersionsOutput>> {
        let sc = self.scope(&req);
        Ok(S3Response::new(self.list_versions(&sc, &req.input)?))
    }

    async fn put_object_tagging(
        &self,
        req: S3Request<PutObjectTaggingInput>,
    ) -> S3Result<S3Response<PutObjectTaggingOutput>> {
        let sc = self.scope(&req);
        let i = req.input;
        let tags = tags::from_tag_set(&i.tagging.tag_set)?;
        let version_id = self
            .retag(&sc, &i.bucket, &i.key, i.version_id.as_deref(), tags)
            .await?;
        Ok(S3Response::new(PutObjectTaggingOutput { version_id }))
    }

    async fn get_object_tagging(
        &self,
        req: S3Request<GetObjectTaggingInput>,
    ) -> S3Result<S3Response<GetObjectTaggingOutput>> {
        let sc = self.scope(&req);
        let i = &req.input;
        let (meta, _) = self.object_version(&sc, &i.bucket, &i.key, i.version_id.as_deref())?;
        Ok(S3Response::new(GetObjectTaggingOutput {
            tag_set: tags::to_tag_set(&meta.tags),
            version_id: meta.version_id,
        }))
    }

    async fn delete_object_tagging(
        &self,
        req: S3Request<DeleteObjectTaggingInput>,
    ) -> S3Result<S3Response<DeleteObjectTaggingOutput>> {
        let sc = self.scope(&req);
        let i = req.input;
        let version_id = self
            .retag(
                &sc,
                &i.bucket,
                &i.key,
                i.version_id.as_deref(),
                tags::Tags::new(),
            )
            .await?;
        let mut resp = S3Response::new(DeleteObjectTaggingOutput { version_id });
        resp.status = Some(http::StatusCode::NO_CONTENT);
        Ok(resp)
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        let sc = self.scope(&req);
        let i = &req.input;
        self.bucket(&sc, &i.bucket)?;
        let prefix = i.prefix.clone().unwrap_or_default();
        let rows = self
            .state
            .scan(T_UPLOADS, &sc.objects_prefix(&i.bucket), None, 100_000)
            .map_err(internal)?;
        let base = sc.objects_prefix(&i.bucket).len();
        let mut ups: Vec<(String, UploadMeta)> = rows
            .into_iter()
            .filter_map(|(k, v)| {
                Some((
                    k[base..].to_owned(),
                    serde_json::from_slice::<UploadMeta>(&v).ok()?,
                ))
            })
            .filter(|(_, u)| u.key.starts_with(&prefix))
            .collect();
        ups.sort_by(|a, b| {
            (a.1.key.as_str(), a.1.initiated_ms).cmp(&(b.1.key.as_str(), b.1.initiated_ms))
        });
        let key_marker = i.key_marker.clone().unwrap_or_default();
        let id_marker = i.upload_id_marker.clone();
        ups.retain(|(id, u)| {
            if key_marker.is_empty() {
                return true;
            }
            match u.key.as_str().cmp(key_marker.as_str()) {
                std::cmp::Ordering::Greater => true,
                std::cmp::Ordering::Less => false,
                std::cmp::Ordering::Equal => {
                    id_marker.as_ref().is_some_and(|m| id.as_str() > m.as_str())
                }
            }
        });
        let max = page_size(i.max_uploads, "max-uploads")?;
        let delimiter = i.delimiter.clone().filter(|d| !d.is_empty());
        let mut uploads = Vec::new();
        let mut cps: Vec<String> = Vec::new();
        let mut truncated = false;
        let mut next: Option<(String, String)> = None;
        let owner = self.owner();
        for (id, u) in ups {
            if let Some(d) = &delimiter
                && let Some(pos) = u.key[prefix.len()..].find(d.as_str())
            {
                let cp = u.key[..prefix.len() + pos + d.len()].to_owned();
                if cps.last() != Some(&cp) {
                    if uploads.len() + cps.len() == max {
                        truncated = true;
                        break;
                    }
                    cps.push(cp);
                }
                continue;
            }
            if uploads.len() + cps.len() == max {
                truncated = true;
                break;
            }
            next = Some((u.key.clone(), id.clone()));
            uploads.push(MultipartUpload {
                key: Some(u.key.clone()),
                upload_id: Some(id),
                initiated: Some(ts(u.initiated_ms)),
                storage_class: Some(StorageClass::from(
                    u.content
                        .storage_class
                        .clone()
                        .unwrap_or_else(|| "STANDARD".into()),
                )),
                initiator: Some(Initiator {
                    display_name: owner.display_name.clone(),
                    id: owner.id.clone(),
                }),
                owner: Some(owner.clone()),
                checksum_algorithm: u.checksum_algo.clone().map(ChecksumAlgorithm::from),
                checksum_type: algo_type(u.checksum_algo.as_deref(), u.checksum_type.as_deref())
                    .map(ChecksumType::from),
            });
        }
        Ok(S3Response::new(ListMultipartUploadsOutput {
            bucket: Some(i.bucket.clone()),
            key_marker: Some(key_marker),
            upload_id_marker: i.upload_id_marker.clone(),
            next_key_marker: if truncated {
                next.as_ref().map(|n| n.0.clone())
            } else {
                None
            },
            next_upload_id_marker: if truncated { next.map(|n| n.1) } else { None },
            max_uploads: Some(max as i32),
            is_truncated: Some(truncated),
            uploads: Some(uploads),
            prefix: Some(prefix),
            delimiter,
            common_prefixes: (!cps.is_empty()).then(|| {
                cps.into_iter()
                    .map(|p| CommonPrefix { prefix: Some(p) })
                    .collect()
            }),
            ..Default::default()
        }))
    }
}

fn algo_type(algo: Option<&str>, declared: Option<&str>) -> Option<String> {
    algo.map(|_| declared.unwrap_or("COMPOSITE").to_owned())
}
