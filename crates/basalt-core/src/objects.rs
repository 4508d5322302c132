//! S3 as Basalt's own services read and write it in-process (batch inference records,
//! SageMaker channels and model artifacts), as the owning account, without HTTP or
//! authentication. The host implements it on the S3 service.

use futures::future::BoxFuture;

/// An object as a listing shows it.
#[derive(Debug, Clone)]
pub struct Listed {
    pub key: String,
    /// Without quotes.
    pub etag: String,
    pub size: u64,
    pub modified_ms: i64,
}

pub trait InProcessS3: Send + Sync + 'static {
    /// Every current object under `prefix`, in key order; `Ok(None)` when the bucket does not
    /// exist.
    fn list_objects(
        &self,
        account: &str,
        bucket: &str,
        prefix: &str,
    ) -> Result<Option<Vec<Listed>>, String>;
    /// Every current key under `prefix`, in order; `Ok(None)` when the bucket does not exist.
    fn list(
        &self,
        account: &str,
        bucket: &str,
        prefix: &str,
    ) -> Result<Option<Vec<String>>, String> {
        Ok(self
            .list_objects(account, bucket, prefix)?
            .map(|objects| objects.into_iter().map(|o| o.key).collect()))
    }
    /// A whole object; `Ok(None)` when it does not exist.
    fn read(&self, account: &str, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, String>;
    /// A PutObject by Basalt itself (versioning and notifications apply); `Ok(false)` when
    /// the bucket does not exist.
    fn write(
        &self,
        account: &str,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
    ) -> BoxFuture<'_, Result<bool, String>>;
}

/// `s3://bucket/key` → (bucket, key); `None` when it is not an S3 URI with a bucket.
pub fn parse_s3_uri(uri: &str) -> Option<(&str, &str)> {
    let rest = uri.strip_prefix("s3://").filter(|r| !r.is_empty())?;
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    (!bucket.is_empty()).then_some((bucket, key))
}
