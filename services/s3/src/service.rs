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

mod access;
mod bucket;
mod config;
mod copy;
mod delete;
mod get;
mod lifecycle;
mod list;
mod lock;
pub use list::ListedObject;
mod multipart;
mod notifications;
mod put;
mod tagging;
mod versions;

pub use lifecycle::start_lifecycle_worker;
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
    /// Buckets' lifecycle rules, for the `x-amz-expiration` of reads: a GET costs no extra
    /// read of the bucket record; a change shows within a second (at once on this node).
    lifecycles: parking_lot::Mutex<LifecycleCache>,
}

type LifecycleCache = std::collections::HashMap<
    String,
    (
        std::time::Instant,
        Option<Arc<s3s::dto::BucketLifecycleConfiguration>>,
    ),
>;

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
            lifecycles: parking_lot::Mutex::default(),
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

    /// The Owner element of an account (`None`: the server's default account, which owns
    /// records written before accounts).
    fn owner_of(&self, account: Option<&str>) -> Owner {
        Owner {
            display_name: Some("webfile".into()),
            id: Some(match account {
                Some(a) if a != self.cfg.account_id => crate::acl::canonical_id(a),
                _ => self.owner_id.clone(),
            }),
        }
    }

    /// Who sent a request (the access check put it there; without signature checks,
    /// everyone acts as the default account).
    fn requester<T>(&self, req: &S3Request<T>) -> crate::acl::Requester {
        self.requester_of(&req.extensions)
    }

    fn requester_of(&self, extensions: &http::Extensions) -> crate::acl::Requester {
        extensions
            .get::<crate::acl::Requester>()
            .cloned()
            .unwrap_or(crate::acl::Requester::Trusted)
    }

    /// The account a request acts as: what it creates is owned by it (anonymous writes,
    /// allowed by a public ACL or policy, belong to the bucket's owner).
    fn acting_account(&self, who: &crate::acl::Requester, bucket_owner: &str) -> String {
        who.account_id(&self.cfg.account_id)
            .unwrap_or(bucket_owner)
            .to_owned()
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

    /// S3's `sequencer`: strings that compare, for one process, in the order they are
    /// handed out (clock milliseconds × 1000, bumped past the last one), and the
    /// millisecond they stand for, which never goes back either: deliveries due then are
    /// claimed in sequencer order.
    fn sequencer(&self) -> (String, i64) {
        let floor = (now_ms() as u64).wrapping_mul(1000);
        let prev = self
            .seq
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
                Some(floor.max(last + 1))
            })
            .unwrap_or(floor);
        let n = floor.max(prev + 1);
        (format!("{n:016X}"), (n / 1000) as i64)
    }

    /// Reads a body, hashing it; small bodies stay in memory, larger ones stream to a new blob.
    /// With `seal`, the bytes stored are the plaintext sealed with that data key (hashes and
    /// sizes are of the plaintext).
    async fn ingest(
        &self,
        body: Option<StreamingBlob>,
        algo: Option<&str>,
        force_blob: bool,
        seal: Option<[u8; 32]>,
    ) -> S3Result<Ingested> {
        use md5::Digest;
        let mut sealer = seal.map(crate::sse::Sealer::new);
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
                let chunk = match &mut sealer {
                    None => chunk,
                    Some(s) => Bytes::from(s.push(&chunk).map_err(sse_error)?),
                };
                if chunk.is_empty() {
                    continue;
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
        if let Some(s) = sealer {
            let last = s.finish().map_err(sse_error)?;
            if !last.is_empty() {
                match &mut writer {
                    Some((_, w)) => w.write(&last).map_err(internal)?,
                    None => buf.push(Bytes::from(last)),
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
        basalt_store::batch_async(&self.state, ops)
            .await
            .map_err(internal)
    }

    /// [`Self::write`] for a batch with preconditions: `Ok(false)` when one did not hold.
    async fn write_if(&self, ops: Vec<WriteOp>) -> S3Result<bool> {
        match basalt_store::batch_async(&self.state, ops).await {
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
            versioning: b.versioning.clone(),
            region: b.region.clone(),
            notifications: b.notifications.clone(),
            meta: b,
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

    /// The plaintext of an object (or of `range` of it); `key` opens sealed objects.
    fn body_of(
        &self,
        meta: &ObjectMeta,
        inline: Bytes,
        range: Option<std::ops::Range<u64>>,
        key: Option<[u8; 32]>,
    ) -> StreamingBlob {
        let (start, end) = range.map_or((0, meta.size), |r| (r.start, r.end));
        if let Some(key) = key {
            return self.sealed_body(meta, inline, start..end, key);
        }
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

impl BasaltS3 {
    fn sealed_body(
        &self,
        meta: &ObjectMeta,
        inline: Bytes,
        range: std::ops::Range<u64>,
        key: [u8; 32],
    ) -> StreamingBlob {
        let parts = meta.part_sizes.clone().unwrap_or_else(|| vec![meta.size]);
        let remaining = (range.end - range.start) as usize;
        let segs = crate::sse::segments_for(&parts, range);
        // Sixteen segments (1 MiB of plaintext) per read of the stored bytes.
        let batches: Vec<Vec<crate::sse::SegmentRead>> =
            segs.chunks(16).map(<[_]>::to_vec).collect();
        let blobs = self.blobs.clone();
        let blob = meta.blob.clone();
        let inner = futures::stream::iter(batches).then(move |batch| {
            let (blobs, blob, inline) = (blobs.clone(), blob.clone(), inline.clone());
            async move {
                let from = batch[0].stored.start;
                let to = batch[batch.len() - 1].stored.end;
                let stored = match &blob {
                    None => inline
                        .get(from as usize..to as usize)
                        .map(Bytes::copy_from_slice),
                    Some(k) => blobs
                        .get_range(k, from, to)
                        .map_err(|e| Box::new(e) as StdError)?
                        .filter(|b| b.len() as u64 == to - from),
                };
                let stored = stored.ok_or_else(|| {
                    Box::new(std::io::Error::other("blob missing or truncated")) as StdError
                })?;
                let mut out = Vec::new();
                for seg in &batch {
                    let sealed = &stored
                        [(seg.stored.start - from) as usize..(seg.stored.end - from) as usize];
                    let plain = crate::sse::open_segment(&key, seg, sealed).ok_or_else(|| {
                        Box::new(std::io::Error::other("sealed segment does not open")) as StdError
                    })?;
                    out.extend_from_slice(&plain);
                }
                Ok::<Bytes, StdError>(Bytes::from(out))
            }
        });
        StreamingBlob::new(Sized {
            inner: Box::pin(inner),
            remaining,
        })
    }

    /// The data key and record for a new object or upload: what the request asks for, else
    /// the bucket's default encryption.
    fn new_sse(
        &self,
        requested: crate::sse::Requested,
        default: Option<&DefaultEncryption>,
    ) -> S3Result<Option<([u8; 32], crate::sse::SseRecord)>> {
        use crate::sse::Requested;
        let req = match (requested, default) {
            (Requested::None, Some(d)) if d.algorithm == "aws:kms" => Requested::Kms {
                key_id: d.kms_key_id.clone(),
                bucket_key: d.bucket_key,
                context: None,
            },
            (Requested::None, Some(_)) => Requested::S3,
            (r, _) => r,
        };
        crate::sse::new_key(self.state.as_ref(), &req).map_err(sse_error)
    }

    /// The key that opens `meta`'s bytes (`None`: stored in the clear), checking the SSE-C key
    /// the request presented.
    fn open_key(
        &self,
        meta: &ObjectMeta,
        customer: Option<&crate::sse::CustomerKey>,
    ) -> S3Result<Option<[u8; 32]>> {
        match &meta.sse {
            Some(rec) => crate::sse::data_key(self.state.as_ref(), rec, customer)
                .map(Some)
                .map_err(sse_error),
            None if customer.is_some() => Err(s3_error!(
                InvalidRequest,
                "The encryption parameters are not applicable to this object."
            )),
            None => Ok(None),
        }
    }
}

/// The SSE request headers of a write.
#[allow(clippy::too_many_arguments)]
fn sse_requested(
    sse: Option<&ServerSideEncryption>,
    kms_key_id: Option<&str>,
    bucket_key: Option<bool>,
    context: Option<&str>,
    c_algo: Option<&str>,
    c_key: Option<&str>,
    c_md5: Option<&str>,
) -> S3Result<crate::sse::Requested> {
    let customer = crate::sse::customer_key(c_algo, c_key, c_md5).map_err(sse_error)?;
    crate::sse::requested(
        sse.map(|s| s.as_str()),
        kms_key_id,
        bucket_key,
        context,
        customer,
    )
    .map_err(sse_error)
}

/// The SSE-C key a read presented.
fn sse_customer(
    algo: Option<&str>,
    key: Option<&str>,
    md5: Option<&str>,
) -> S3Result<Option<crate::sse::CustomerKey>> {
    crate::sse::customer_key(algo, key, md5).map_err(sse_error)
}

fn sse_error(e: crate::sse::SseError) -> S3Error {
    use crate::sse::SseError as E;
    match e {
        E::InvalidArgument(m) => s3_error!(InvalidArgument, "{m}"),
        E::InvalidEncryptionAlgorithm => {
            S3Error::with_message(S3ErrorCode::InvalidEncryptionAlgorithmError, e.to_string())
        }
        E::InvalidRequest(m) => s3_error!(InvalidRequest, "{m}"),
        E::KeyMismatch => s3_error!(
            InvalidArgument,
            "The provided encryption parameters did not match the ones used originally."
        ),
        E::Internal(m) => s3_error!(InternalError, "{m}"),
    }
}

/// The encryption headers S3 answers for an object or upload.
#[derive(Default)]
struct SseOut {
    sse: Option<ServerSideEncryption>,
    kms_key_id: Option<String>,
    bucket_key: Option<bool>,
    c_algo: Option<String>,
    c_md5: Option<String>,
}

fn sse_out(rec: Option<&crate::sse::SseRecord>) -> SseOut {
    match rec {
        None => SseOut::default(),
        Some(r) if r.is_customer() => SseOut {
            c_algo: Some("AES256".into()),
            c_md5: r.key_md5.clone(),
            ..Default::default()
        },
        Some(r) => SseOut {
            sse: Some(ServerSideEncryption::from(r.mode.clone())),
            kms_key_id: r.kms_key_id.clone(),
            bucket_key: r.bucket_key.then_some(true),
            ..Default::default()
        },
    }
}

struct Ingested {
    size: u64,
    md5: Vec<u8>,
    checksum: Option<(String, String)>,
    data: Data,
}

impl Ingested {
    /// The metadata of a whole object written from these bytes (no parts, no version yet),
    /// and its inline body (empty when the bytes went to a blob).
    fn object(&self, content: Content, tags: crate::tags::Tags) -> (ObjectMeta, Bytes) {
        let (inline, blob) = match &self.data {
            Data::Inline(b) => (b.clone(), None),
            Data::Blob(k) => (Bytes::new(), Some(k.clone())),
        };
        let meta = ObjectMeta {
            size: self.size,
            etag: hex::encode(&self.md5),
            modified_ms: now_ms(),
            content,
            checksum: self.checksum.clone().map(|(algo, value)| Checksum {
                algo,
                value,
                kind: "FULL_OBJECT".into(),
            }),
            blob,
            parts: None,
            part_sizes: None,
            part_checksums: None,
            upload_id: None,
            tags,
            version_id: None,
            delete_marker: false,
            sse: None,
            owner: None,
            acl: None,
            retention: None,
            legal_hold: false,
        };
        (meta, inline)
    }
}

impl Ingested {
    /// [`Ingested::object`] for bytes sealed as `sse` records (SSE-C and SSE-KMS objects get an
    /// ETag that is not their plaintext's MD5, see [`crate::sse::opaque_etag`]).
    fn sealed_object(
        &self,
        content: Content,
        tags: crate::tags::Tags,
        sse: Option<crate::sse::SseRecord>,
    ) -> (ObjectMeta, Bytes) {
        let (mut meta, inline) = self.object(content, tags);
        if let Some(e) = sse
            .as_ref()
            .and_then(|r| crate::sse::opaque_etag(&self.md5, r))
        {
            meta.etag = e;
        }
        meta.sse = sse;
        (meta, inline)
    }
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
    /// The whole record (default encryption, lock configuration, ownership...).
    meta: BucketMeta,
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

pub(crate) struct Scope {
    pub(crate) account: String,
    pub(crate) region: String,
}

/// Where a request's records live. Bucket names are global, so keys are scoped by account
/// only; `region` is the caller's region (endpoint / credential scope), used to validate
/// CreateBucket and to stamp events.
impl Scope {
    fn prefix(&self) -> String {
        format!("{}/", self.account)
    }
    pub(crate) fn bucket_key(&self, bucket: &str) -> String {
        format!("{}/{}", self.account, bucket)
    }
    fn objects_prefix(&self, bucket: &str) -> String {
        format!("{}/{}/", self.account, bucket)
    }
    pub(crate) fn object_key(&self, bucket: &str, key: &str) -> String {
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

/// A 204 answer (the deletions of configurations, PutBucketPolicy, PutBucketTagging).
fn no_content<T>(out: T) -> S3Response<T> {
    let mut resp = S3Response::new(out);
    resp.status = Some(http::StatusCode::NO_CONTENT);
    resp
}

/// An error whose code s3s has no constant for.
fn custom_error(
    code: &'static str,
    message: impl Into<String>,
    status: http::StatusCode,
) -> S3Error {
    let mut e = S3Error::with_message(S3ErrorCode::Custom(code.into()), message.into());
    e.set_status_code(status);
    e
}

fn ts_secs(t: &Timestamp) -> Option<i64> {
    timestamp_ms(t).map(|ms| ms.div_euclid(1000))
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
        PartSelection::NoSuchPart => Err(s3_error!(
            InvalidPart,
            "The requested partnumber is not satisfiable"
        )),
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
        (!rest.is_empty()).then(|| rest.join(", "))
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
    async fn lock(&self, sc: &Scope, bucket: &str, key: &str) -> tokio::sync::MutexGuard<'_, ()> {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        let h = BuildHasherDefault::<DefaultHasher>::default().hash_one(sc.object_key(bucket, key));
        self.locks[(h % LOCK_STRIPES as u64) as usize].lock().await
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
        condition: Option<&WriteCondition>,
    ) -> S3Result<Option<String>> {
        for _ in 0..16 {
            // A conditional write is judged against the current record, and commits only
            // while that record is still the one judged.
            let mut extra = extra.clone();
            if let Some(c) = condition {
                let record = sc.object_key(bucket, key);
                let raw = self.state.get(T_OBJECTS, &record).map_err(internal)?;
                let current = match &raw {
                    None => None,
                    Some(r) => decode_object(r.clone())
                        .map(|(m, _)| m)
                        .filter(|m| !m.delete_marker),
                };
                c.check(current.as_ref())?;
                extra.push(WriteOp::Check {
                    table: T_OBJECTS.into(),
                    key: record,
                    expected: raw,
                });
            }
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

/// `If-Match` / `If-None-Match` on a write (PutObject, CompleteMultipartUpload).
pub(crate) struct WriteCondition {
    pub if_match: Option<ETagCondition>,
    pub if_none_match: Option<ETagCondition>,
}

impl WriteCondition {
    fn new(
        if_match: Option<&ETagCondition>,
        if_none_match: Option<&ETagCondition>,
    ) -> Option<Self> {
        (if_match.is_some() || if_none_match.is_some()).then(|| WriteCondition {
            if_match: if_match.cloned(),
            if_none_match: if_none_match.cloned(),
        })
    }

    fn check(&self, current: Option<&ObjectMeta>) -> S3Result<()> {
        let failed = || {
            s3_error!(
                PreconditionFailed,
                "At least one of the pre-conditions you specified did not hold"
            )
        };
        let same = |c: &ETagCondition, m: &ObjectMeta| {
            c.is_any()
                || c.as_etag()
                    .is_some_and(|e| e.value().trim_matches('"') == m.etag)
        };
        if let Some(c) = &self.if_match {
            let Some(m) = current else {
                return Err(s3_error!(NoSuchKey, "The specified key does not exist."));
            };
            if !same(c, m) {
                return Err(failed());
            }
        }
        if let Some(c) = &self.if_none_match
            && let Some(m) = current
            && same(c, m)
        {
            return Err(failed());
        }
        Ok(())
    }
}

/// The operations live in one file per group (`bucket`, `put`, `get`, `delete`, `copy`, `list`,
/// `multipart`, `tagging`, `versions`, `notifications`) as inherent methods of the same name,
/// which take precedence over the trait's in `BasaltS3::op(self, req)`.
#[async_trait::async_trait]
impl S3 for BasaltS3 {
    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        BasaltS3::create_bucket(self, req).await
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        BasaltS3::head_bucket(self, req).await
    }

    async fn list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        BasaltS3::list_buckets(self, req).await
    }

    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        BasaltS3::delete_bucket(self, req).await
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        BasaltS3::get_bucket_location(self, req).await
    }

    async fn get_bucket_versioning(
        &self,
        req: S3Request<GetBucketVersioningInput>,
    ) -> S3Result<S3Response<GetBucketVersioningOutput>> {
        BasaltS3::get_bucket_versioning(self, req).await
    }

    async fn put_bucket_versioning(
        &self,
        req: S3Request<PutBucketVersioningInput>,
    ) -> S3Result<S3Response<PutBucketVersioningOutput>> {
        BasaltS3::put_bucket_versioning(self, req).await
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        BasaltS3::put_object(self, req).await
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        BasaltS3::get_object(self, req).await
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        BasaltS3::head_object(self, req).await
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        BasaltS3::delete_object(self, req).await
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        BasaltS3::delete_objects(self, req).await
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        BasaltS3::copy_object(self, req).await
    }

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        BasaltS3::list_objects(self, req).await
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        BasaltS3::list_objects_v2(self, req).await
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        BasaltS3::create_multipart_upload(self, req).await
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        BasaltS3::upload_part(self, req).await
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        BasaltS3::complete_multipart_upload(self, req).await
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        BasaltS3::abort_multipart_upload(self, req).await
    }

    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        BasaltS3::list_parts(self, req).await
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
        BasaltS3::put_object_tagging(self, req).await
    }

    async fn get_object_tagging(
        &self,
        req: S3Request<GetObjectTaggingInput>,
    ) -> S3Result<S3Response<GetObjectTaggingOutput>> {
        BasaltS3::get_object_tagging(self, req).await
    }

    async fn delete_object_tagging(
        &self,
        req: S3Request<DeleteObjectTaggingInput>,
    ) -> S3Result<S3Response<DeleteObjectTaggingOutput>> {
        BasaltS3::delete_object_tagging(self, req).await
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        BasaltS3::list_multipart_uploads(self, req).await
    }

    async fn get_bucket_acl(
        &self,
        req: S3Request<GetBucketAclInput>,
    ) -> S3Result<S3Response<GetBucketAclOutput>> {
        BasaltS3::get_bucket_acl(self, req).await
    }

    async fn put_bucket_acl(
        &self,
        req: S3Request<PutBucketAclInput>,
    ) -> S3Result<S3Response<PutBucketAclOutput>> {
        BasaltS3::put_bucket_acl(self, req).await
    }

    async fn get_object_acl(
        &self,
        req: S3Request<GetObjectAclInput>,
    ) -> S3Result<S3Response<GetObjectAclOutput>> {
        BasaltS3::get_object_acl(self, req).await
    }

    async fn put_object_acl(
        &self,
        req: S3Request<PutObjectAclInput>,
    ) -> S3Result<S3Response<PutObjectAclOutput>> {
        BasaltS3::put_object_acl(self, req).await
    }

    async fn put_bucket_ownership_controls(
        &self,
        req: S3Request<PutBucketOwnershipControlsInput>,
    ) -> S3Result<S3Response<PutBucketOwnershipControlsOutput>> {
        BasaltS3::put_bucket_ownership_controls(self, req).await
    }

    async fn get_bucket_ownership_controls(
        &self,
        req: S3Request<GetBucketOwnershipControlsInput>,
    ) -> S3Result<S3Response<GetBucketOwnershipControlsOutput>> {
        BasaltS3::get_bucket_ownership_controls(self, req).await
    }

    async fn delete_bucket_ownership_controls(
        &self,
        req: S3Request<DeleteBucketOwnershipControlsInput>,
    ) -> S3Result<S3Response<DeleteBucketOwnershipControlsOutput>> {
        BasaltS3::delete_bucket_ownership_controls(self, req).await
    }

    async fn put_public_access_block(
        &self,
        req: S3Request<PutPublicAccessBlockInput>,
    ) -> S3Result<S3Response<PutPublicAccessBlockOutput>> {
        BasaltS3::put_public_access_block(self, req).await
    }

    async fn get_public_access_block(
        &self,
        req: S3Request<GetPublicAccessBlockInput>,
    ) -> S3Result<S3Response<GetPublicAccessBlockOutput>> {
        BasaltS3::get_public_access_block(self, req).await
    }

    async fn delete_public_access_block(
        &self,
        req: S3Request<DeletePublicAccessBlockInput>,
    ) -> S3Result<S3Response<DeletePublicAccessBlockOutput>> {
        BasaltS3::delete_public_access_block(self, req).await
    }

    async fn put_bucket_policy(
        &self,
        req: S3Request<PutBucketPolicyInput>,
    ) -> S3Result<S3Response<PutBucketPolicyOutput>> {
        BasaltS3::put_bucket_policy(self, req).await
    }

    async fn get_bucket_policy(
        &self,
        req: S3Request<GetBucketPolicyInput>,
    ) -> S3Result<S3Response<GetBucketPolicyOutput>> {
        BasaltS3::get_bucket_policy(self, req).await
    }

    async fn delete_bucket_policy(
        &self,
        req: S3Request<DeleteBucketPolicyInput>,
    ) -> S3Result<S3Response<DeleteBucketPolicyOutput>> {
        BasaltS3::delete_bucket_policy(self, req).await
    }

    async fn get_bucket_policy_status(
        &self,
        req: S3Request<GetBucketPolicyStatusInput>,
    ) -> S3Result<S3Response<GetBucketPolicyStatusOutput>> {
        BasaltS3::get_bucket_policy_status(self, req).await
    }

    async fn put_object_lock_configuration(
        &self,
        req: S3Request<PutObjectLockConfigurationInput>,
    ) -> S3Result<S3Response<PutObjectLockConfigurationOutput>> {
        BasaltS3::put_object_lock_configuration(self, req).await
    }

    async fn get_object_lock_configuration(
        &self,
        req: S3Request<GetObjectLockConfigurationInput>,
    ) -> S3Result<S3Response<GetObjectLockConfigurationOutput>> {
        BasaltS3::get_object_lock_configuration(self, req).await
    }

    async fn put_object_retention(
        &self,
        req: S3Request<PutObjectRetentionInput>,
    ) -> S3Result<S3Response<PutObjectRetentionOutput>> {
        BasaltS3::put_object_retention(self, req).await
    }

    async fn get_object_retention(
        &self,
        req: S3Request<GetObjectRetentionInput>,
    ) -> S3Result<S3Response<GetObjectRetentionOutput>> {
        BasaltS3::get_object_retention(self, req).await
    }

    async fn put_object_legal_hold(
        &self,
        req: S3Request<PutObjectLegalHoldInput>,
    ) -> S3Result<S3Response<PutObjectLegalHoldOutput>> {
        BasaltS3::put_object_legal_hold(self, req).await
    }

    async fn get_object_legal_hold(
        &self,
        req: S3Request<GetObjectLegalHoldInput>,
    ) -> S3Result<S3Response<GetObjectLegalHoldOutput>> {
        BasaltS3::get_object_legal_hold(self, req).await
    }

    async fn put_bucket_lifecycle_configuration(
        &self,
        req: S3Request<PutBucketLifecycleConfigurationInput>,
    ) -> S3Result<S3Response<PutBucketLifecycleConfigurationOutput>> {
        BasaltS3::put_bucket_lifecycle_configuration(self, req).await
    }

    async fn get_bucket_lifecycle_configuration(
        &self,
        req: S3Request<GetBucketLifecycleConfigurationInput>,
    ) -> S3Result<S3Response<GetBucketLifecycleConfigurationOutput>> {
        BasaltS3::get_bucket_lifecycle_configuration(self, req).await
    }

    async fn delete_bucket_lifecycle(
        &self,
        req: S3Request<DeleteBucketLifecycleInput>,
    ) -> S3Result<S3Response<DeleteBucketLifecycleOutput>> {
        BasaltS3::delete_bucket_lifecycle(self, req).await
    }

    async fn put_bucket_cors(
        &self,
        req: S3Request<PutBucketCorsInput>,
    ) -> S3Result<S3Response<PutBucketCorsOutput>> {
        BasaltS3::put_bucket_cors(self, req).await
    }

    async fn get_bucket_cors(
        &self,
        req: S3Request<GetBucketCorsInput>,
    ) -> S3Result<S3Response<GetBucketCorsOutput>> {
        BasaltS3::get_bucket_cors(self, req).await
    }

    async fn delete_bucket_cors(
        &self,
        req: S3Request<DeleteBucketCorsInput>,
    ) -> S3Result<S3Response<DeleteBucketCorsOutput>> {
        BasaltS3::delete_bucket_cors(self, req).await
    }

    async fn put_bucket_tagging(
        &self,
        req: S3Request<PutBucketTaggingInput>,
    ) -> S3Result<S3Response<PutBucketTaggingOutput>> {
        BasaltS3::put_bucket_tagging(self, req).await
    }

    async fn get_bucket_tagging(
        &self,
        req: S3Request<GetBucketTaggingInput>,
    ) -> S3Result<S3Response<GetBucketTaggingOutput>> {
        BasaltS3::get_bucket_tagging(self, req).await
    }

    async fn delete_bucket_tagging(
        &self,
        req: S3Request<DeleteBucketTaggingInput>,
    ) -> S3Result<S3Response<DeleteBucketTaggingOutput>> {
        BasaltS3::delete_bucket_tagging(self, req).await
    }

    async fn get_object_attributes(
        &self,
        req: S3Request<GetObjectAttributesInput>,
    ) -> S3Result<S3Response<GetObjectAttributesOutput>> {
        BasaltS3::get_object_attributes(self, req).await
    }

    async fn put_bucket_logging(
        &self,
        req: S3Request<PutBucketLoggingInput>,
    ) -> S3Result<S3Response<PutBucketLoggingOutput>> {
        BasaltS3::put_bucket_logging(self, req).await
    }

    async fn get_bucket_logging(
        &self,
        req: S3Request<GetBucketLoggingInput>,
    ) -> S3Result<S3Response<GetBucketLoggingOutput>> {
        BasaltS3::get_bucket_logging(self, req).await
    }

    async fn put_bucket_website(
        &self,
        req: S3Request<PutBucketWebsiteInput>,
    ) -> S3Result<S3Response<PutBucketWebsiteOutput>> {
        BasaltS3::put_bucket_website(self, req).await
    }

    async fn get_bucket_website(
        &self,
        req: S3Request<GetBucketWebsiteInput>,
    ) -> S3Result<S3Response<GetBucketWebsiteOutput>> {
        BasaltS3::get_bucket_website(self, req).await
    }

    async fn delete_bucket_website(
        &self,
        req: S3Request<DeleteBucketWebsiteInput>,
    ) -> S3Result<S3Response<DeleteBucketWebsiteOutput>> {
        BasaltS3::delete_bucket_website(self, req).await
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        BasaltS3::upload_part_copy(self, req).await
    }

    async fn put_bucket_encryption(
        &self,
        req: S3Request<PutBucketEncryptionInput>,
    ) -> S3Result<S3Response<PutBucketEncryptionOutput>> {
        BasaltS3::put_bucket_encryption(self, req).await
    }

    async fn get_bucket_encryption(
        &self,
        req: S3Request<GetBucketEncryptionInput>,
    ) -> S3Result<S3Response<GetBucketEncryptionOutput>> {
        BasaltS3::get_bucket_encryption(self, req).await
    }

    async fn delete_bucket_encryption(
        &self,
        req: S3Request<DeleteBucketEncryptionInput>,
    ) -> S3Result<S3Response<DeleteBucketEncryptionOutput>> {
        BasaltS3::delete_bucket_encryption(self, req).await
    }
}

fn algo_type(algo: Option<&str>, declared: Option<&str>) -> Option<String> {
    algo.map(|_| declared.unwrap_or("COMPOSITE").to_owned())
}
