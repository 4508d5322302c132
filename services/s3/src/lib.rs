//! Amazon S3 on the [`s3s`] protocol adapter, backed by basalt-store.
//!
//! * [`build_service`] returns an [`S3Handler`]: an `s3s` service plus the small front that
//!   Basalt needs around it (auth-off mode, region/account scoping, virtual-host parsing).
//! * Metadata lives in the [`basalt_store::StateStore`] (tables `s3.buckets`, `s3.objects`,
//!   `s3.uploads`, `s3.parts`), namespaced by `"{account}/{region}/"`; object bytes up to
//!   [`model::INLINE_MAX`] are stored inline in the object record, larger ones in the
//!   [`basalt_store::BlobStore`] under a fresh unique key per write (the record is committed
//!   after the blob is durable, so a crash never leaves a record pointing at a missing blob).
//!
//! Auth: with `S3Config::auth = Some(keys)` s3s verifies SigV4 (header, presigned, chunked) and
//! SigV2. With `None`, any credentials are accepted: the front strips the signature (s3s would
//! otherwise refuse signed requests), keeps the region from the credential scope, and decodes
//! `aws-chunked` bodies itself (see [`chunked`]).

pub mod chunked;
pub mod model;
mod service;

use basalt_core::events::EventBus;
use basalt_store::Store;
use bytes::Bytes;
use futures::future::BoxFuture;
use http::{HeaderValue, Request, Response, StatusCode};
use s3s::host::{S3Host, VirtualHost};
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s::{Body, S3Result};

pub use service::BasaltS3;

/// Configuration of the S3 service.
#[derive(Debug, Clone)]
pub struct S3Config {
    /// Account that owns everything when the request does not say otherwise.
    pub account_id: String,
    /// Region used when the request carries none (unsigned requests).
    pub region: String,
    /// Access key → secret key. `None`: accept any credentials without verification.
    pub auth: Option<Vec<(String, String)>>,
    /// Extra base domain for virtual-hosted-style requests (`<bucket>.<base_domain>`), in
    /// addition to `localhost`, `s3.localhost`, `localhost.localstack.cloud`,
    /// `s3.localhost.localstack.cloud`, `s3.amazonaws.com` and `s3.<region>.amazonaws.com`.
    pub base_domain: Option<String>,
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config {
            account_id: basalt_core::DEFAULT_ACCOUNT_ID.to_owned(),
            region: basalt_core::DEFAULT_REGION.to_owned(),
            auth: None,
            base_domain: None,
        }
    }
}

/// Caller identity as the front determined it (auth-off mode); read by the service.
#[derive(Debug, Clone)]
pub(crate) struct CallerScope {
    pub region: Option<String>,
}

/// The S3 endpoint: call [`S3Handler::handle`] with any request the gateway routes to S3.
/// Cheap to clone.
#[derive(Clone)]
pub struct S3Handler {
    svc: S3Service,
    verify: bool,
}

/// Builds the S3 endpoint.
pub fn build_service(store: Store, bus: EventBus, cfg: S3Config) -> S3Handler {
    let verify = cfg.auth.is_some();
    let mut b = S3ServiceBuilder::new(BasaltS3::new(store, bus, cfg.clone()));
    b.set_host(Hosts::new(cfg.base_domain.as_deref()));
    if let Some(keys) = &cfg.auth {
        let mut auth = s3s::auth::SimpleAuth::new();
        for (ak, sk) in keys {
            auth.register(ak.clone(), s3s::auth::SecretKey::from(sk.as_str()));
        }
        b.set_auth(auth);
    }
    S3Handler { svc: b.build(), verify }
}

impl S3Handler {
    /// The wrapped s3s service (requests sent to it directly skip the auth-off front).
    pub fn s3s_service(&self) -> &S3Service {
        &self.svc
    }

    /// Handles one request. Never fails: errors are S3 XML error responses.
    pub async fn handle(&self, req: Request<Body>) -> Response<Body> {
        let req = if self.verify { req } else { strip_auth(req) };
        match self.svc.call(req).await {
            Ok(resp) => resp,
            Err(e) => {
                tracing::error!(error = ?e, "s3 request failed");
                let mut r = Response::new(Body::from(Bytes::from_static(
                    b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error>",
                )));
                *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                r.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/xml"));
                r
            }
        }
    }

    /// [`S3Handler::handle`] for a hyper server request.
    pub async fn handle_incoming(&self, req: Request<hyper::body::Incoming>) -> Response<Body> {
        self.handle(req.map(Body::from)).await
    }
}

impl hyper::service::Service<Request<hyper::body::Incoming>> for S3Handler {
    type Response = Response<Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, std::convert::Infallible>>;

    fn call(&self, req: Request<hyper::body::Incoming>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.handle_incoming(req).await) })
    }
}

// ---------------------------------------------------------------------------------------------
// Auth-off front

const PRESIGN_PARAMS: &[&str] = &[
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
    "X-Amz-Security-Token",
    "AWSAccessKeyId",
    "Signature",
    "Expires",
];

/// Region from a SigV4 credential `AKID/20240101/us-west-2/s3/aws4_request`.
fn credential_region(cred: &str) -> Option<String> {
    let mut it = cred.split('/');
    let _ak = it.next()?;
    let _date = it.next()?;
    let region = it.next()?;
    (!region.is_empty()).then(|| region.to_owned())
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Some(v) = std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Turns a signed request into an anonymous one that s3s accepts without a secret, keeping what
/// the signature told us (region) and decoding `aws-chunked` bodies.
fn strip_auth(req: Request<Body>) -> Request<Body> {
    let (mut parts, body) = req.into_parts();
    let mut region = None;
    let mut body = body;

    if let Some(auth) = parts.headers.remove(http::header::AUTHORIZATION) {
        if let Ok(a) = auth.to_str()
            && let Some(i) = a.find("Credential=")
        {
            let cred = a[i + "Credential=".len()..].split([',', ' ']).next().unwrap_or("");
            region = credential_region(cred);
        }
    }
    if let Some(q) = parts.uri.query()
        && q.split('&').any(|kv| PRESIGN_PARAMS.iter().any(|p| kv.split('=').next() == Some(*p)))
    {
        let mut kept = Vec::new();
        for kv in q.split('&') {
            let name = kv.split('=').next().unwrap_or("");
            if name == "X-Amz-Credential" {
                region = credential_region(&percent_decode(kv.split_once('=').map_or("", |x| x.1)));
            }
            if !PRESIGN_PARAMS.contains(&name) {
                kept.push(kv);
            }
        }
        let pq = if kept.is_empty() {
            parts.uri.path().to_owned()
        } else {
            format!("{}?{}", parts.uri.path(), kept.join("&"))
        };
        let mut up = parts.uri.clone().into_parts();
        if let Ok(v) = pq.parse() {
            up.path_and_query = Some(v);
            if let Ok(u) = http::Uri::from_parts(up) {
                parts.uri = u;
            }
        }
    }

    let streaming = parts
        .headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("STREAMING-"));
    if streaming {
        let decoded_len = parts
            .headers
            .get("x-amz-decoded-content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let trailers = chunked::ChunkTrailers::default();
        let dec = chunked::ChunkedDecoder::new(body, decoded_len, trailers.clone());
        body = Body::from(Box::pin(dec) as s3s::stream::DynByteStream);
        parts.extensions.insert(trailers);
        if let Some(n) = decoded_len {
            parts.headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(n));
        } else {
            parts.headers.remove(http::header::CONTENT_LENGTH);
        }
        parts.headers.insert("x-amz-content-sha256", HeaderValue::from_static("UNSIGNED-PAYLOAD"));
    }
    parts.extensions.insert(CallerScope { region });
    Request::from_parts(parts, body)
}

// ---------------------------------------------------------------------------------------------
// Virtual hosts

struct Hosts {
    /// Longest first.
    domains: Vec<String>,
}

impl Hosts {
    fn new(extra: Option<&str>) -> Hosts {
        let mut domains: Vec<String> = [
            "s3.localhost.localstack.cloud",
            "localhost.localstack.cloud",
            "s3.localhost",
            "localhost",
            "s3.amazonaws.com",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if let Some(e) = extra.filter(|e| !e.is_empty()) {
            domains.push(e.to_ascii_lowercase());
        }
        domains.sort_by_key(|d| std::cmp::Reverse(d.len()));
        domains.dedup();
        Hosts { domains }
    }
}

impl S3Host for Hosts {
    fn parse_host_header<'a>(&'a self, host: &'a str) -> S3Result<VirtualHost<'a>> {
        let h = match host.rsplit_once(':') {
            Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => host,
        };
        // s3.<region>.amazonaws.com and <bucket>.s3.<region>.amazonaws.com
        if let Some(rest) = h.strip_suffix(".amazonaws.com") {
            let labels: Vec<&str> = rest.split('.').collect();
            if let Some(i) = labels.iter().rposition(|l| *l == "s3" || l.starts_with("s3-")) {
                let region = labels.get(i + 1).map(|s| s.to_string());
                let mut vh = VirtualHost::new(h);
                if i > 0 {
                    vh = vh.with_bucket(labels[..i].join("."));
                }
                if let Some(r) = region.filter(|r| !r.is_empty()) {
                    vh = vh.with_region(r);
                }
                return Ok(vh);
            }
        }
        for d in &self.domains {
            if h.eq_ignore_ascii_case(d) {
                return Ok(VirtualHost::new(h));
            }
            if h.len() > d.len() + 1 {
                let (b, suffix) = h.split_at(h.len() - d.len());
                if suffix.eq_ignore_ascii_case(d) && b.ends_with('.') {
                    return Ok(VirtualHost::new(h).with_bucket(b[..b.len() - 1].to_owned()));
                }
            }
        }
        // Unknown host names (e.g. a container name): path-style.
        Ok(VirtualHost::new(h))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        let h = Hosts::new(Some("example.test"));
        let p = |s: &str| {
            let v = h.parse_host_header(s).unwrap();
            (v.bucket().map(str::to_owned), v.region().map(str::to_owned))
        };
        assert_eq!(p("localhost:4566"), (None, None));
        assert_eq!(p("mybucket.localhost:4566"), (Some("mybucket".into()), None));
        assert_eq!(p("my.bucket.s3.localhost"), (Some("my.bucket".into()), None));
        assert_eq!(p("s3.localhost"), (None, None));
        assert_eq!(p("b.s3.localhost.localstack.cloud:4566"), (Some("b".into()), None));
        assert_eq!(p("b.example.test"), (Some("b".into()), None));
        assert_eq!(p("basalt:4566"), (None, None));
        assert_eq!(p("b.s3.us-west-2.amazonaws.com"), (Some("b".into()), Some("us-west-2".into())));
        assert_eq!(p("s3.amazonaws.com"), (None, None));
    }

    #[test]
    fn credential_scope() {
        assert_eq!(credential_region("AK/20240101/eu-west-1/s3/aws4_request").as_deref(), Some("eu-west-1"));
        assert_eq!(credential_region("AK").as_deref(), None);
        assert_eq!(percent_decode("AK%2F2024%2Fx"), "AK/2024/x");
    }

    #[test]
    fn strip_presigned() {
        let req = Request::builder()
            .uri("/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F20240101%2Fap-south-1%2Fs3%2Faws4_request&versionId=3&X-Amz-Signature=ab")
            .body(Body::empty())
            .unwrap();
        let r = strip_auth(req);
        assert_eq!(r.uri().to_string(), "/b/k?versionId=3");
        assert_eq!(r.extensions().get::<CallerScope>().unwrap().region.as_deref(), Some("ap-south-1"));
    }
}
