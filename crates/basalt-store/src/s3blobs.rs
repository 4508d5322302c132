//! Blobs in an S3-compatible object store (Garage, MinIO, Ceph RGW, AWS S3 itself), through the
//! AWS SDK for Rust: several Basalt nodes share one bucket.
//!
//! `s3://bucket/prefix?endpoint=http://host:port&region=garage` selects it. Credentials come
//! from `BASALT_BLOBS_ACCESS_KEY_ID` / `BASALT_BLOBS_SECRET_ACCESS_KEY` (falling back to
//! `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`), never from the URL, which is logged.
//!
//! Writes up to [`PART`] bytes are one PutObject; longer ones stream as a multipart upload, so
//! nothing is visible under a key before [`BlobWriter::commit`] (S3 completes a multipart upload
//! atomically) and a writer's memory stays bounded. Reads are ranged GetObjects. Concatenation
//! copies on the server (UploadPartCopy) when every source but the last is at least S3's
//! minimum part size, as the parts of an S3 multipart upload are.
//!
//! The [`BlobStore`] trait is synchronous (services call it from blocking threads); the SDK is
//! asynchronous, so the backend owns a small runtime and waits for its futures on a channel,
//! which works from any thread, inside another runtime or not.

use std::future::Future;
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;

use crate::{BlobStore, BlobWriter, StoreError};

/// Size of the parts of a streamed write (S3 accepts 5 MiB to 5 GiB per part but the last).
pub const PART: usize = 8 * 1024 * 1024;
/// S3's minimum size of a part that is not the last.
const MIN_PART: u64 = 5 * 1024 * 1024;
/// Largest range read at once while concatenating on the client side.
const COPY_CHUNK: u64 = 8 * 1024 * 1024;

/// Where the blobs live, parsed from an `s3://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    /// Empty or ending in `/`.
    pub prefix: String,
    pub endpoint: Option<String>,
    pub region: String,
    pub path_style: bool,
}

impl S3Location {
    /// Parses `s3://bucket[/prefix][?endpoint=URL&region=R&path_style=true|false]`.
    pub fn parse(url: &str) -> Result<S3Location, StoreError> {
        let bad = |why: &str| StoreError::Other(format!("invalid blob URL {url:?}: {why}"));
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| bad("unsupported scheme (expected s3://bucket/prefix)"))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
        if bucket.is_empty() {
            return Err(bad("no bucket"));
        }
        let mut loc = S3Location {
            bucket: bucket.to_owned(),
            prefix: match prefix.trim_end_matches('/') {
                "" => String::new(),
                p => format!("{p}/"),
            },
            endpoint: None,
            region: "us-east-1".to_owned(),
            path_style: false,
        };
        let mut path_style = None;
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            match &*k {
                "endpoint" => loc.endpoint = Some(v.trim_end_matches('/').to_owned()),
                "region" => loc.region = v.into_owned(),
                "path_style" => {
                    path_style = Some(match &*v {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => return Err(bad("path_style must be true or false")),
                    })
                }
                other => return Err(bad(&format!("unknown parameter {other:?}"))),
            }
        }
        // Self-hosted stores are addressed by path; AWS itself by virtual host.
        loc.path_style = path_style.unwrap_or(loc.endpoint.is_some());
        Ok(loc)
    }
}

/// The S3-compatible backend.
pub struct S3Blobs {
    client: Client,
    loc: S3Location,
    rt: Option<tokio::runtime::Runtime>,
}

impl S3Blobs {
    /// Connects and checks that the bucket can be reached (HeadBucket): a node refuses to start
    /// on a store it cannot use rather than failing its first request.
    pub fn open(url: &str) -> Result<S3Blobs, StoreError> {
        let loc = S3Location::parse(url)?;
        let env = |a: &str, b: &str| std::env::var(a).or_else(|_| std::env::var(b)).ok();
        let (Some(key), Some(secret)) = (
            env("BASALT_BLOBS_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID"),
            env("BASALT_BLOBS_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY"),
        ) else {
            return Err(StoreError::Other(
                "blob store credentials missing: set BASALT_BLOBS_ACCESS_KEY_ID and \
                 BASALT_BLOBS_SECRET_ACCESS_KEY"
                    .into(),
            ));
        };
        let mut conf = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(loc.region.clone()))
            .force_path_style(loc.path_style)
            .credentials_provider(Credentials::new(key, secret, None, None, "basalt-blobs"))
            // Self-hosted stores differ in which flexible checksums they accept; integrity on
            // the wire is TCP's and the store's own (Garage and S3 hash every block).
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .operation_attempt_timeout(Duration::from_secs(120))
                    .build(),
            )
            .retry_config(RetryConfig::standard().with_max_attempts(3));
        if let Some(ep) = &loc.endpoint {
            conf = conf.endpoint_url(ep);
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("basalt-blobs")
            .enable_all()
            .build()?;
        let blobs = S3Blobs {
            client: Client::from_conf(conf.build()),
            loc,
            rt: Some(rt),
        };
        let (c, b) = (blobs.client.clone(), blobs.loc.bucket.clone());
        blobs
            .run(async move { c.head_bucket().bucket(b).send().await.map_err(classify) })
            .map_err(|e| {
                StoreError::Unavailable(format!(
                    "blob bucket {} at {}: {e}",
                    blobs.loc.bucket,
                    blobs.loc.endpoint.as_deref().unwrap_or("AWS")
                ))
            })?;
        Ok(blobs)
    }

    pub fn location(&self) -> &S3Location {
        &self.loc
    }

    /// Runs `fut` on the backend's runtime and waits for it on this thread.
    fn run<T: Send + 'static>(
        &self,
        fut: impl Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> Result<T, StoreError> {
        wait(self.rt.as_ref().expect("runtime").handle(), fut)
    }

    /// The object key of a blob key. Blob keys are opaque strings (`""`, `../x` and `/a` are
    /// valid); object keys are `prefix` + the key with every byte outside `[A-Za-z0-9_]`
    /// percent-encoded, so no store or proxy ever normalizes one, and `-` for the empty key.
    fn object_key(&self, key: &str) -> String {
        let mut out = String::with_capacity(self.loc.prefix.len() + key.len() + 1);
        out.push_str(&self.loc.prefix);
        if key.is_empty() {
            out.push('-');
        }
        for b in key.bytes() {
            if b.is_ascii_alphanumeric() || b == b'_' {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    }

    fn head(&self, object: String) -> Result<Option<u64>, StoreError> {
        let (c, b) = (self.client.clone(), self.loc.bucket.clone());
        self.run(async move { head(&c, &b, &object).await })
    }
}

/// Runs `fut` on `rt` and blocks this thread until it ends: unlike `Handle::block_on`, this works
/// on any thread, a worker of another runtime included.
fn wait<T: Send + 'static>(
    rt: &tokio::runtime::Handle,
    fut: impl Future<Output = Result<T, StoreError>> + Send + 'static,
) -> Result<T, StoreError> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    rt.spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx.recv()
        .map_err(|_| StoreError::Other("blob store task ended".into()))?
}

impl Drop for S3Blobs {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which is refused inside another runtime.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

async fn head(c: &Client, bucket: &str, object: &str) -> Result<Option<u64>, StoreError> {
    match c.head_object().bucket(bucket).key(object).send().await {
        Ok(o) => Ok(Some(o.content_length().unwrap_or(0).max(0) as u64)),
        Err(e) if status_of(&e) == Some(404) => Ok(None),
        Err(e) => Err(classify(e)),
    }
}

fn status_of<E, R>(e: &SdkError<E, R>) -> Option<u16>
where
    R: HasStatus,
{
    e.raw_response().map(|r| r.status_u16())
}

/// The status of a raw HTTP response, whatever the SDK's response type.
trait HasStatus {
    fn status_u16(&self) -> u16;
}

impl HasStatus for aws_sdk_s3::config::http::HttpResponse {
    fn status_u16(&self) -> u16 {
        self.status().as_u16()
    }
}

/// A failure to reach the store (or a store that says it is overloaded or broken) is
/// `Unavailable`, which services answer with 503; anything else is a plain error.
fn classify<E>(e: SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = status_of(&e);
    let msg = match &e {
        SdkError::ServiceError(s) => {
            let err = s.err();
            format!(
                "{}: {}",
                err.code().unwrap_or("error"),
                err.message().unwrap_or_default()
            )
        }
        other => format!(
            "{}",
            aws_smithy_types::error::display::DisplayErrorContext(other)
        ),
    };
    match (&e, status) {
        (SdkError::ServiceError(_), Some(s)) if s < 500 => {
            StoreError::Other(format!("blob store: {msg} (HTTP {s})"))
        }
        _ => StoreError::Unavailable(format!("blob store: {msg}")),
    }
}

async fn put_object(c: &Client, bucket: &str, object: &str, data: Bytes) -> Result<(), StoreError> {
    c.put_object()
        .bucket(bucket)
        .key(object)
        .content_length(data.len() as i64)
        .body(ByteStream::from(data))
        .send()
        .await
        .map_err(classify)?;
    Ok(())
}

/// Bytes `start..end` of an object, `end` clamped to its length (the trait's semantics).
async fn get_range(
    c: &Client,
    bucket: &str,
    object: &str,
    start: u64,
    end: u64,
) -> Result<Option<Bytes>, StoreError> {
    if start >= end {
        // No HTTP range expresses an empty read; the length decides.
        return match head(c, bucket, object).await? {
            None => Ok(None),
            Some(len) if start <= len => Ok(Some(Bytes::new())),
            Some(_) => Err(StoreError::InvalidRange),
        };
    }
    let r = c
        .get_object()
        .bucket(bucket)
        .key(object)
        .range(format!("bytes={start}-{}", end - 1))
        .send()
        .await;
    match r {
        Ok(o) => Ok(Some(collect(o.body).await?)),
        Err(e) if status_of(&e) == Some(404) => Ok(None),
        // Past the end: empty at the exact end, refused beyond it, as the other backends.
        Err(e) if status_of(&e) == Some(416) => match head(c, bucket, object).await? {
            None => Ok(None),
            Some(len) if start == len => Ok(Some(Bytes::new())),
            Some(_) => Err(StoreError::InvalidRange),
        },
        Err(e) => Err(classify(e)),
    }
}

async fn collect(body: ByteStream) -> Result<Bytes, StoreError> {
    body.collect()
        .await
        .map(|d| d.into_bytes())
        .map_err(|e| StoreError::Unavailable(format!("blob store: reading a body: {e}")))
}

impl BlobStore for S3Blobs {
    fn put(&self, key: &str, data: &[u8]) -> Result<(), StoreError> {
        if data.len() > PART {
            let mut w = self.writer(key)?;
            w.write(data)?;
            return w.commit().map(drop);
        }
        let (c, b, o) = (
            self.client.clone(),
            self.loc.bucket.clone(),
            self.object_key(key),
        );
        let data = Bytes::copy_from_slice(data);
        self.run(async move { put_object(&c, &b, &o, data).await })
    }

    fn writer(&self, key: &str) -> Result<Box<dyn BlobWriter>, StoreError> {
        Ok(Box::new(S3Writer {
            client: self.client.clone(),
            bucket: self.loc.bucket.clone(),
            object: self.object_key(key),
            handle: self.rt.as_ref().expect("runtime").handle().clone(),
            buf: Vec::new(),
            upload: None,
            len: 0,
        }))
    }

    fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        let (c, b, o) = (
            self.client.clone(),
            self.loc.bucket.clone(),
            self.object_key(key),
        );
        self.run(async move {
            match c.get_object().bucket(&b).key(&o).send().await {
                Ok(out) => Ok(Some(collect(out.body).await?)),
                Err(e) if status_of(&e) == Some(404) => Ok(None),
                Err(e) => Err(classify(e)),
            }
        })
    }

    fn get_range(&self, key: &str, start: u64, end: u64) -> Result<Option<Bytes>, StoreError> {
        let (c, b, o) = (
            self.client.clone(),
            self.loc.bucket.clone(),
            self.object_key(key),
        );
        self.run(async move { get_range(&c, &b, &o, start, end).await })
    }

    fn len(&self, key: &str) -> Result<Option<u64>, StoreError> {
        self.head(self.object_key(key))
    }

    fn delete(&self, key: &str) -> Result<bool, StoreError> {
        // S3's DeleteObject does not say whether the object existed; a HEAD first does (a
        // concurrent delete may make both callers see `true`, which no service relies on).
        let (c, b, o) = (
            self.client.clone(),
            self.loc.bucket.clone(),
            self.object_key(key),
        );
        self.run(async move {
            if head(&c, &b, &o).await?.is_none() {
                return Ok(false);
            }
            c.delete_object()
                .bucket(&b)
                .key(&o)
                .send()
                .await
                .map_err(classify)?;
            Ok(true)
        })
    }

    fn concat(&self, dst: &str, sources: &[&str]) -> Result<u64, StoreError> {
        let (c, b) = (self.client.clone(), self.loc.bucket.clone());
        let objects: Vec<String> = sources.iter().map(|s| self.object_key(s)).collect();
        let mut lens = Vec::with_capacity(sources.len());
        for (s, o) in sources.iter().zip(&objects) {
            let len = self
                .head(o.clone())?
                .ok_or_else(|| StoreError::Other(format!("missing blob {s}")))?;
            lens.push(len);
        }
        let total: u64 = lens.iter().sum();
        let server_side = !sources.is_empty()
            && sources.len() <= 10_000
            && lens[..lens.len() - 1].iter().all(|l| *l >= MIN_PART)
            && lens.iter().all(|l| *l > 0);
        if server_side {
            let dst = self.object_key(dst);
            let sources: Vec<(String, u64)> = objects.into_iter().zip(lens).collect();
            self.run(async move { copy_parts(&c, &b, &dst, &sources).await })?;
            return Ok(total);
        }
        let mut w = self.writer(dst)?;
        for (o, len) in objects.into_iter().zip(lens) {
            let mut pos = 0;
            while pos < len {
                let to = (pos + COPY_CHUNK).min(len);
                let (c, b, o) = (c.clone(), b.clone(), o.clone());
                let chunk = self
                    .run(async move { get_range(&c, &b, &o, pos, to).await })?
                    .ok_or_else(|| StoreError::Other("blob vanished during concat".into()))?;
                w.write(&chunk)?;
                pos = to;
            }
        }
        w.commit()
    }
}

/// A multipart upload made of server-side copies of whole objects (and of the bytes of a last
/// one smaller than a part, whose copy some stores refuse: Garage wants 5 MiB sources).
async fn copy_parts(
    c: &Client,
    bucket: &str,
    dst: &str,
    sources: &[(String, u64)],
) -> Result<(), StoreError> {
    let id = create_upload(c, bucket, dst).await?;
    let r = async {
        let mut parts = Vec::with_capacity(sources.len());
        for (i, (src, len)) in sources.iter().enumerate() {
            let n = i as i32 + 1;
            if *len < MIN_PART {
                let data = get_range(c, bucket, src, 0, *len)
                    .await?
                    .ok_or_else(|| StoreError::Other("blob vanished during concat".into()))?;
                parts.push(upload_part(c, bucket, dst, &id, n, data).await?);
                continue;
            }
            let out = c
                .upload_part_copy()
                .bucket(bucket)
                .key(dst)
                .upload_id(&id)
                .part_number(n)
                .copy_source(copy_source(bucket, src))
                .send()
                .await
                .map_err(classify)?;
            let etag = out
                .copy_part_result()
                .and_then(|r| r.e_tag())
                .map(str::to_owned);
            parts.push(
                CompletedPart::builder()
                    .set_e_tag(etag)
                    .part_number(n)
                    .build(),
            );
        }
        complete_upload(c, bucket, dst, &id, parts).await
    }
    .await;
    if r.is_err() {
        abort_upload(c, bucket, dst, &id).await;
    }
    r
}

/// `bucket/key` with the key URL-encoded, as `x-amz-copy-source` wants it.
fn copy_source(bucket: &str, object: &str) -> String {
    let enc: String =
        percent_encoding::utf8_percent_encode(object, percent_encoding::NON_ALPHANUMERIC)
            .to_string();
    format!("{bucket}/{enc}")
}

/// Uploads part `n` of upload `id`; the completed part to list at completion.
async fn upload_part(
    c: &Client,
    bucket: &str,
    object: &str,
    id: &str,
    n: i32,
    data: Bytes,
) -> Result<CompletedPart, StoreError> {
    let out = c
        .upload_part()
        .bucket(bucket)
        .key(object)
        .upload_id(id)
        .part_number(n)
        .content_length(data.len() as i64)
        .body(ByteStream::from(data))
        .send()
        .await
        .map_err(classify)?;
    Ok(CompletedPart::builder()
        .set_e_tag(out.e_tag().map(str::to_owned))
        .part_number(n)
        .build())
}

async fn create_upload(c: &Client, bucket: &str, object: &str) -> Result<String, StoreError> {
    let out = c
        .create_multipart_upload()
        .bucket(bucket)
        .key(object)
        .send()
        .await
        .map_err(classify)?;
    out.upload_id()
        .map(str::to_owned)
        .ok_or_else(|| StoreError::Other("blob store: no upload id".into()))
}

async fn complete_upload(
    c: &Client,
    bucket: &str,
    object: &str,
    id: &str,
    parts: Vec<CompletedPart>,
) -> Result<(), StoreError> {
    c.complete_multipart_upload()
        .bucket(bucket)
        .key(object)
        .upload_id(id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .map_err(classify)?;
    Ok(())
}

async fn abort_upload(c: &Client, bucket: &str, object: &str, id: &str) {
    if let Err(e) = c
        .abort_multipart_upload()
        .bucket(bucket)
        .key(object)
        .upload_id(id)
        .send()
        .await
    {
        tracing::warn!(object, error = %classify(e), "aborting a blob upload failed");
    }
}

struct S3Writer {
    client: Client,
    bucket: String,
    object: String,
    handle: tokio::runtime::Handle,
    buf: Vec<u8>,
    /// The multipart upload, once more than one part was written.
    upload: Option<(String, Vec<CompletedPart>)>,
    len: u64,
}

impl S3Writer {
    fn run<T: Send + 'static>(
        &self,
        fut: impl Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> Result<T, StoreError> {
        wait(&self.handle, fut)
    }

    /// Uploads `PART` bytes from the front of the buffer as the next part.
    fn flush_part(&mut self) -> Result<(), StoreError> {
        let (c, b, o) = (
            self.client.clone(),
            self.bucket.clone(),
            self.object.clone(),
        );
        if self.upload.is_none() {
            let id = self.run(async move { create_upload(&c, &b, &o).await })?;
            self.upload = Some((id, Vec::new()));
        }
        let rest = self.buf.split_off(PART.min(self.buf.len()));
        let part = Bytes::from(std::mem::replace(&mut self.buf, rest));
        let (id, parts) = self.upload.as_ref().expect("upload");
        let n = parts.len() as i32 + 1;
        let (c, b, o, id) = (
            self.client.clone(),
            self.bucket.clone(),
            self.object.clone(),
            id.clone(),
        );
        let part = self.run(async move { upload_part(&c, &b, &o, &id, n, part).await })?;
        let (_, parts) = self.upload.as_mut().expect("upload");
        parts.push(part);
        Ok(())
    }
}

impl BlobWriter for S3Writer {
    fn write(&mut self, chunk: &[u8]) -> Result<(), StoreError> {
        self.buf.extend_from_slice(chunk);
        self.len += chunk.len() as u64;
        // Keep one byte beyond a part: a write that ends exactly on a part boundary then
        // still has a (non-empty) last part to upload at commit.
        while self.buf.len() > PART {
            self.flush_part()?;
        }
        Ok(())
    }

    fn commit(mut self: Box<Self>) -> Result<u64, StoreError> {
        let len = self.len;
        if self.upload.is_none() {
            let data = Bytes::from(std::mem::take(&mut self.buf));
            let (c, b, o) = (
                self.client.clone(),
                self.bucket.clone(),
                self.object.clone(),
            );
            self.run(async move { put_object(&c, &b, &o, data).await })?;
            return Ok(len);
        }
        if !self.buf.is_empty() {
            self.flush_part()?;
        }
        let (id, parts) = self.upload.take().expect("upload");
        let (c, b, o) = (
            self.client.clone(),
            self.bucket.clone(),
            self.object.clone(),
        );
        let r = self.run(async move {
            let r = complete_upload(&c, &b, &o, &id, parts).await;
            if r.is_err() {
                abort_upload(&c, &b, &o, &id).await;
            }
            r
        });
        r.map(|()| len)
    }
}

impl Drop for S3Writer {
    fn drop(&mut self) {
        // An abandoned multipart upload would hold its parts' storage until the store's
        // lifecycle rules (if any) removed it.
        if let Some((id, _)) = self.upload.take() {
            let (c, b, o) = (
                self.client.clone(),
                self.bucket.clone(),
                self.object.clone(),
            );
            self.handle
                .spawn(async move { abort_upload(&c, &b, &o, &id).await });
        }
    }
}

#[cfg(test)]
pub(crate) mod testing {
    /// `BASALT_TEST_BLOBS`: an `s3://` URL of a real S3-compatible store for the contract
    /// suite (set by `make test` from `scripts/s3store.sh`), with its credentials in the
    /// environment. Each test gets its own prefix.
    pub fn url(test: &str) -> Option<String> {
        let base = std::env::var("BASALT_TEST_BLOBS").ok()?;
        let (path, query) = base.split_once('?').unwrap_or((&base, ""));
        let id = uuid::Uuid::new_v4().simple();
        Some(format!(
            "{}/{test}-{id}/?{query}",
            path.trim_end_matches('/')
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let l =
            S3Location::parse("s3://b/p/q?endpoint=http://127.0.0.1:3900/&region=garage").unwrap();
        assert_eq!(
            l,
            S3Location {
                bucket: "b".into(),
                prefix: "p/q/".into(),
                endpoint: Some("http://127.0.0.1:3900".into()),
                region: "garage".into(),
                path_style: true,
            }
        );
        let l = S3Location::parse("s3://bucket").unwrap();
        assert_eq!((l.prefix.as_str(), l.path_style), ("", false));
        assert_eq!(l.region, "us-east-1");
        let l = S3Location::parse("s3://b/?endpoint=http%3A%2F%2Fh%3A1&path_style=false").unwrap();
        assert_eq!(l.endpoint.as_deref(), Some("http://h:1"));
        assert!(!l.path_style);
        for bad in [
            "file:///x",
            "s3://",
            "s3:///p",
            "s3://b?foo=1",
            "s3://b?path_style=x",
        ] {
            assert!(S3Location::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn refuses_an_unreachable_store_at_open() {
        // Port 9 (discard) refuses connections on any test machine.
        let url = "s3://b?endpoint=http://127.0.0.1:9&region=x";
        if std::env::var("BASALT_BLOBS_ACCESS_KEY_ID").is_err()
            && std::env::var("AWS_ACCESS_KEY_ID").is_err()
        {
            let e = S3Blobs::open(url).err().unwrap();
            assert!(e.to_string().contains("credentials missing"), "{e}");
            return;
        }
        let e = S3Blobs::open(url).err().unwrap();
        assert!(matches!(e, StoreError::Unavailable(_)), "{e}");
    }
}
