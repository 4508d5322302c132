//! Server access logging: every request to a bucket with logging on becomes a record in AWS's
//! access-log format, kept in the state store and delivered (batched per target bucket and
//! time window) as log objects into the target bucket by a worker on the store's leases.
//!
//! Delivery is at-least-once and idempotent: a window's object has a name derived from the
//! window, so a second delivery (another node taking over an expired lease) rewrites the
//! same object. As in S3, records are best effort and arrive minutes, not milliseconds, after
//! the requests.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use basalt_store::{StateStore, WriteOp};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::model::{BucketMeta, T_BUCKETS};
use crate::service::Scope;

/// Pending records: `{target bucket}/{window:013}/{time:013}-{id}`.
pub const T_ACCESS_LOGS: &str = "s3.access_logs";
const QUEUE: &str = "s3.access_logs";
const LEASE_MS: i64 = 60_000;

/// How long one log object collects records (`BASALT_S3_LOG_WINDOW_SECS`, default 60).
fn window_ms() -> i64 {
    std::env::var("BASALT_S3_LOG_WINDOW_SECS")
        .ok()
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|v| *v > 0)
        .unwrap_or(60)
        * 1000
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pending {
    prefix: String,
    line: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Flush {
    target: String,
    window: i64,
}

/// What the front knows of one answered request.
pub(crate) struct Entry<'a> {
    pub bucket: &'a str,
    pub key: Option<&'a str>,
    pub method: &'a str,
    pub uri: &'a str,
    pub query: Option<&'a str>,
    pub status: u16,
    pub error_code: Option<&'a str>,
    pub bytes_sent: Option<u64>,
    pub remote_ip: &'a str,
    pub requester: &'a str,
    pub request_id: &'a str,
    pub host_id: &'a str,
    pub referer: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub host: Option<&'a str>,
    pub sig: Option<&'a str>,
    pub total_ms: u64,
}

/// The operation field: `REST.<METHOD>.<RESOURCE>`.
fn operation(method: &str, key: Option<&str>, query: Option<&str>) -> String {
    let sub = query.and_then(|q| {
        form_urlencoded::parse(q.as_bytes()).find_map(|(k, _)| {
            Some(match k.as_ref() {
                "acl" => "ACL",
                "versioning" => "VERSIONING",
                "tagging" => "TAGGING",
                "uploads" => "UPLOADS",
                "uploadId" => "UPLOAD",
                "policy" => "BUCKETPOLICY",
                "cors" => "CORS",
                "lifecycle" => "LIFECYCLE",
                "logging" => "LOGGING_STATUS",
                "encryption" => "ENCRYPTION",
                "versions" => "BUCKETVERSIONS",
                "location" => "LOCATION",
                "retention" => "RETENTION",
                "legal-hold" => "LEGAL_HOLD",
                "object-lock" => "OBJECT_LOCK_CONFIGURATION",
                "delete" => "MULTI_OBJECT_DELETE",
                _ => return None,
            })
        })
    });
    let resource = sub.unwrap_or(if key.is_some() { "OBJECT" } else { "BUCKET" });
    format!("REST.{method}.{resource}")
}

/// One record in AWS's server access log format.
pub(crate) fn line(owner_canonical: &str, e: &Entry<'_>) -> String {
    let dash = |v: Option<&str>| v.filter(|v| !v.is_empty()).unwrap_or("-").to_owned();
    let quoted = |v: Option<&str>| format!("\"{}\"", v.filter(|v| !v.is_empty()).unwrap_or("-"));
    let time = chrono::Utc::now().format("[%d/%b/%Y:%H:%M:%S +0000]");
    let request = match e.query {
        Some(q) if !q.is_empty() => format!("\"{} {}?{} HTTP/1.1\"", e.method, e.uri, q),
        _ => format!("\"{} {} HTTP/1.1\"", e.method, e.uri),
    };
    [
        owner_canonical.to_owned(),
        e.bucket.to_owned(),
        time.to_string(),
        e.remote_ip.to_owned(),
        e.requester.to_owned(),
        e.request_id.to_owned(),
        operation(e.method, e.key, e.query),
        dash(e.key.map(crate::model::url_encode).as_deref()),
        request,
        e.status.to_string(),
        dash(e.error_code),
        e.bytes_sent.map_or("-".into(), |n| n.to_string()),
        "-".into(),
        e.total_ms.to_string(),
        "-".into(),
        quoted(e.referer),
        quoted(e.user_agent),
        "-".into(),
        e.host_id.to_owned(),
        dash(e.sig),
        "-".into(),
        if e.sig.is_some() { "AuthHeader" } else { "-" }.into(),
        dash(e.host),
        "-".into(),
        "-".into(),
        "-".into(),
    ]
    .join(" ")
}

/// A logged bucket's target bucket, key prefix and owning account.
type Target = (String, String, String);

/// Records requests of logged buckets. Bucket configurations are cached for a few seconds (S3
/// itself takes up to an hour to apply a logging change).
pub(crate) struct Recorder {
    state: Arc<dyn StateStore>,
    scope: Arc<Scope>,
    cache: Mutex<HashMap<String, (Instant, Option<Target>)>>,
}

impl Recorder {
    pub(crate) fn new(state: Arc<dyn StateStore>, scope: Arc<Scope>) -> Recorder {
        Recorder {
            state,
            scope,
            cache: Mutex::default(),
        }
    }

    /// `(target bucket, prefix, owner account)` of a logged bucket.
    fn target(&self, bucket: &str) -> Option<Target> {
        if let Some((at, t)) = self.cache.lock().get(bucket)
            && at.elapsed() < Duration::from_secs(5)
        {
            return t.clone();
        }
        let t = self
            .state
            .get(T_BUCKETS, &self.scope.bucket_key(bucket))
            .ok()
            .flatten()
            .and_then(|raw| serde_json::from_slice::<BucketMeta>(&raw).ok())
            .and_then(|b| {
                let l = b.logging.clone()?;
                Some((
                    l.bucket,
                    l.prefix,
                    b.owner_account(&self.scope.account).to_owned(),
                ))
            });
        let mut cache = self.cache.lock();
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(bucket.to_owned(), (Instant::now(), t.clone()));
        t
    }

    /// Whether a bucket's requests are logged.
    pub(crate) fn logs(&self, bucket: &str) -> bool {
        self.target(bucket).is_some()
    }

    /// Records one answered request (nothing when its bucket is not logged).
    pub(crate) fn record(&self, e: &Entry<'_>) {
        let Some((target, prefix, owner)) = self.target(e.bucket) else {
            return;
        };
        let Ok(now) = self.state.clock_ms() else {
            return;
        };
        let window = now - now.rem_euclid(window_ms());
        let value = serde_json::to_vec(&Pending {
            prefix,
            line: line(&crate::acl::canonical_id(&owner), e),
        })
        .unwrap_or_default();
        let id = format!("{target}/{window:013}");
        let flush = serde_json::to_vec(&Flush {
            target: target.clone(),
            window,
        })
        .unwrap_or_default();
        let ops = [
            WriteOp::Put {
                table: T_ACCESS_LOGS.into(),
                key: format!("{id}/{now:013}-{}", uuid::Uuid::new_v4().simple()),
                value,
            },
            WriteOp::Enqueue {
                queue: QUEUE.into(),
                id,
                payload: flush,
                due_ms: window + window_ms(),
            },
        ];
        if let Err(err) = self.state.batch(&ops) {
            tracing::debug!(error = %err, "access log record dropped");
        }
    }
}

/// Delivers due windows as objects into their target buckets.
pub(crate) fn start_worker(state: Arc<dyn StateStore>, s3: Arc<crate::BasaltS3>, account: String) {
    tokio::spawn(async move {
        loop {
            let st = state.clone();
            let claimed = tokio::task::spawn_blocking(move || {
                let now = st.clock_ms()?;
                st.claim(QUEUE, now, LEASE_MS, 8)
            })
            .await;
            let claimed = match claimed {
                Ok(Ok(c)) => c,
                _ => Vec::new(),
            };
            if claimed.is_empty() {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            for claim in claimed {
                deliver(&state, &s3, &account, claim).await;
            }
        }
    });
}

async fn deliver(
    state: &Arc<dyn StateStore>,
    s3: &crate::BasaltS3,
    account: &str,
    claim: basalt_store::Claim,
) {
    let Ok(f) = serde_json::from_slice::<Flush>(&claim.payload) else {
        let st = state.clone();
        let _ = tokio::task::spawn_blocking(move || st.complete(&claim, &[])).await;
        return;
    };
    let prefix = format!("{}/{:013}/", f.target, f.window);
    let rows = state
        .scan(T_ACCESS_LOGS, &prefix, None, 100_000)
        .unwrap_or_default();
    let mut log_prefix = String::new();
    let mut body = String::new();
    for (_, v) in &rows {
        if let Ok(p) = serde_json::from_slice::<Pending>(v) {
            log_prefix = p.prefix;
            body.push_str(&p.line);
            body.push('\n');
        }
    }
    if !body.is_empty() {
        // The window names the object: a repeated delivery rewrites it.
        let at = chrono::DateTime::from_timestamp_millis(f.window).unwrap_or_default();
        let unique = &hex::encode(sha2::Digest::finalize(sha2::Digest::chain_update(
            <sha2::Sha256 as sha2::Digest>::new(),
            prefix.as_bytes(),
        )))[..16]
            .to_ascii_uppercase();
        let key = format!("{log_prefix}{}-{unique}", at.format("%Y-%m-%d-%H-%M-%S"));
        match s3
            .write_object(
                account,
                &f.target,
                &key,
                body.into_bytes().into(),
                "text/plain",
            )
            .await
        {
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, target = %f.target, "access log delivery failed");
                let st = state.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    let now = st.clock_ms().unwrap_or_default();
                    st.release(&claim, now + 30_000)
                })
                .await;
                return;
            }
        }
    }
    let deletes: Vec<WriteOp> = rows
        .into_iter()
        .map(|(k, _)| WriteOp::Delete {
            table: T_ACCESS_LOGS.into(),
            key: k,
        })
        .collect();
    let st = state.clone();
    let _ = tokio::task::spawn_blocking(move || st.complete(&claim, &deletes)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_in_aws_format() {
        let e = Entry {
            bucket: "b",
            key: Some("a b"),
            method: "GET",
            uri: "/b/a%20b",
            query: None,
            status: 200,
            error_code: None,
            bytes_sent: Some(3),
            remote_ip: "127.0.0.1",
            requester: "arn:aws:iam::000000000000:root",
            request_id: "RID",
            host_id: "HID",
            referer: None,
            user_agent: Some("boto3"),
            host: Some("localhost"),
            sig: Some("SigV4"),
            total_ms: 4,
        };
        let l = line("OWNER", &e);
        let f: Vec<&str> = l.split(' ').collect();
        assert_eq!(f[0], "OWNER");
        assert_eq!(f[1], "b");
        assert!(f[2].starts_with('[') && f[3].ends_with(']'));
        assert_eq!(f[7], "REST.GET.OBJECT");
        assert_eq!(f[8], "a%20b");
        assert!(l.contains("\"GET /b/a%20b HTTP/1.1\" 200 - 3 - 4 - \"-\" \"boto3\""));
        assert_eq!(operation("PUT", None, Some("acl")), "REST.PUT.ACL");
        assert_eq!(operation("DELETE", Some("k"), None), "REST.DELETE.OBJECT");
    }
}
