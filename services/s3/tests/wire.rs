//! Wire details S3 clients depend on: request ids, error bodies, global bucket names, ignored
//! malformed ranges, page-size validation, `partNumber` reads, and SigV4 through a key lookup.

mod common;

use std::sync::Arc;

use basalt_core::events::EventBus;
use basalt_s3::{S3Config, build_service};
use basalt_store::Store;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use sha2::{Digest, Sha256};

struct Srv {
    base: String,
    host: String,
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    _dir: tempfile::TempDir,
}

async fn start(cfg: S3Config) -> Srv {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let handler = build_service(store, EventBus::default(), cfg);
    let addr = common::serve(handler).await;
    Srv {
        base: format!("http://{addr}"),
        host: addr.to_string(),
        client: Client::builder(TokioExecutor::new()).build_http(),
        _dir: dir,
    }
}

type Reply = (StatusCode, http::HeaderMap, String);

impl Srv {
    async fn call(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Reply {
        let mut b = Request::builder()
            .method(method)
            .uri(format!("{}{}", self.base, path));
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let resp = self
            .client
            .request(b.body(Full::new(Bytes::copy_from_slice(body))).unwrap())
            .await
            .unwrap();
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        (
            parts.status,
            parts.headers,
            String::from_utf8_lossy(&body).into_owned(),
        )
    }

    /// A SigV4-signed request (header auth, `UNSIGNED-PAYLOAD`). `path` has no query.
    async fn signed(
        &self,
        method: Method,
        path: &str,
        extra: &[(&str, &str)],
        ak: &str,
        sk: &str,
        token: Option<&str>,
    ) -> Reply {
        let now = chrono::Utc::now();
        let amz_date = now.format("%Y%m%dT%H%M%SZ").to_string();
        let date = now.format("%Y%m%d").to_string();
        let region = "us-east-1";
        let mut headers: Vec<(String, String)> = vec![
            ("host".into(), self.host.clone()),
            ("x-amz-content-sha256".into(), "UNSIGNED-PAYLOAD".into()),
            ("x-amz-date".into(), amz_date.clone()),
        ];
        if let Some(t) = token {
            headers.push(("x-amz-security-token".into(), t.into()));
        }
        for (k, v) in extra {
            headers.push((k.to_ascii_lowercase(), v.to_string()));
        }
        headers.sort();
        let signed_headers = headers
            .iter()
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>()
            .join(";");
        let canonical_headers: String = headers
            .iter()
            .map(|(k, v)| format!("{k}:{}\n", v.trim()))
            .collect();
        let canonical =
            format!("{method}\n{path}\n\n{canonical_headers}\n{signed_headers}\nUNSIGNED-PAYLOAD");
        let scope = format!("{date}/{region}/s3/aws4_request");
        let sts = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
            hex::encode(Sha256::digest(canonical.as_bytes()))
        );
        let mut key = hmac(format!("AWS4{sk}").as_bytes(), date.as_bytes());
        for part in [region, "s3", "aws4_request"] {
            key = hmac(&key, part.as_bytes());
        }
        let sig = hex::encode(hmac(&key, sts.as_bytes()));
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential={ak}/{scope}, SignedHeaders={signed_headers}, Signature={sig}"
        );
        let mut all: Vec<(&str, &str)> = headers
            .iter()
            .filter(|(k, _)| k != "host")
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        all.push(("authorization", &auth));
        self.call(method, path, &all, b"").await
    }
}

fn hmac(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.iter().map(|b| b ^ 0x36).collect::<Vec<_>>());
    inner.update(msg);
    let mut outer = Sha256::new();
    outer.update(k.iter().map(|b| b ^ 0x5c).collect::<Vec<_>>());
    outer.update(inner.finalize());
    outer.finalize().to_vec()
}

/// `Authorization` header naming a region (auth off: only the credential scope matters).
fn region_auth(region: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=AK/20240101/{region}/s3/aws4_request, SignedHeaders=host, Signature=00"
    )
}

fn between<'a>(s: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let i = s.find(open)? + open.len();
    Some(&s[i..i + s[i..].find(close)?])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_and_error_bodies() {
    let s = start(S3Config::default()).await;
    let (st, h, _) = s.call(Method::PUT, "/ids", &[], b"").await;
    assert_eq!(st, StatusCode::OK);
    let rid = h["x-amz-request-id"].to_str().unwrap();
    assert_eq!(rid.len(), 16);
    assert!(
        rid.chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase()),
        "{rid}"
    );
    assert!(!h["x-amz-id-2"].is_empty());

    // Errors: the same ids in the headers and the body, inside <Error>.
    let (st, h, body) = s.call(Method::GET, "/ids/missing", &[], b"").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(
        between(&body, "<RequestId>", "</RequestId>"),
        Some(h["x-amz-request-id"].to_str().unwrap()),
        "{body}"
    );
    assert_eq!(
        between(&body, "<HostId>", "</HostId>"),
        Some(h["x-amz-id-2"].to_str().unwrap()),
        "{body}"
    );
    assert!(
        body.contains("<Message>The specified key does not exist.</Message>"),
        "{body}"
    );
    assert!(body.trim_end().ends_with("</HostId></Error>"), "{body}");
    assert_eq!(
        h["content-length"].to_str().unwrap(),
        body.len().to_string()
    );

    // s3s's message-less errors get AWS's standard message.
    let (st, _, body) = s.call(Method::PUT, "/Bad_Name", &[], b"").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(
        body.contains(
            "<Code>InvalidBucketName</Code><Message>The specified bucket is not valid.</Message>"
        ),
        "{body}"
    );
    let (st, _, body) = s
        .call(Method::PUT, "/ids?versioning", &[], b"<not xml")
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(body.contains("<Message>"), "{body}");
    assert!(body.contains("<RequestId>"), "{body}");

    // HEAD errors carry the headers (no body).
    let (st, h, body) = s.call(Method::HEAD, "/ids/missing", &[], b"").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert!(h.contains_key("x-amz-request-id") && h.contains_key("x-amz-id-2"));
    assert!(body.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_names_are_global() {
    let s = start(S3Config::default()).await;
    let eu = region_auth("eu-west-1");
    let cfg = b"<CreateBucketConfiguration><LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>";
    let (st, _, body) = s
        .call(Method::PUT, "/eub", &[("authorization", &eu)], cfg)
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    // Re-create: 409 from its region, and from us-east-1 too (the legacy 200 is for us-east-1 buckets).
    let (st, _, body) = s
        .call(Method::PUT, "/eub", &[("authorization", &eu)], cfg)
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{body}");
    assert!(body.contains("BucketAlreadyOwnedByYou"), "{body}");
    let (st, _, body) = s.call(Method::PUT, "/eub", &[], b"").await;
    assert_eq!(st, StatusCode::CONFLICT, "{body}");

    // Seen and usable from us-east-1 (no credential scope: the default region).
    let (st, _, body) = s.call(Method::GET, "/", &[], b"").await;
    assert_eq!(st, StatusCode::OK);
    assert!(body.contains("<Name>eub</Name>"), "{body}");
    let (st, h, _) = s.call(Method::HEAD, "/eub", &[], b"").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(h["x-amz-bucket-region"], "eu-west-1");
    let (st, _, body) = s.call(Method::GET, "/eub?location", &[], b"").await;
    assert_eq!(st, StatusCode::OK);
    assert!(body.contains("eu-west-1"), "{body}");
    let (st, _, _) = s.call(Method::PUT, "/eub/k", &[], b"from us-east-1").await;
    assert_eq!(st, StatusCode::OK);
    let (st, _, body) = s
        .call(Method::GET, "/eub/k", &[("authorization", &eu)], b"")
        .await;
    assert_eq!((st, body.as_str()), (StatusCode::OK, "from us-east-1"));
    let ap = region_auth("ap-south-1");
    let (st, _, body) = s
        .call(Method::GET, "/eub/k", &[("authorization", &ap)], b"")
        .await;
    assert_eq!((st, body.as_str()), (StatusCode::OK, "from us-east-1"));

    // us-east-1 buckets: legacy 200 on re-create, empty location.
    let (st, _, _) = s.call(Method::PUT, "/useb", &[], b"").await;
    assert_eq!(st, StatusCode::OK);
    let (st, _, _) = s.call(Method::PUT, "/useb", &[], b"").await;
    assert_eq!(st, StatusCode::OK);
    let (_, _, body) = s.call(Method::GET, "/useb?location", &[], b"").await;
    assert!(!body.contains("us-east-1"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_range_is_ignored() {
    let s = start(S3Config::default()).await;
    s.call(Method::PUT, "/rbkt", &[], b"").await;
    s.call(Method::PUT, "/rbkt/k", &[], b"0123456789").await;
    for r in ["bytes=abc", "bytes=1-2,4-5", "items=0-1", "bytes=5-1"] {
        let (st, _, body) = s.call(Method::GET, "/rbkt/k", &[("range", r)], b"").await;
        assert_eq!((st, body.as_str()), (StatusCode::OK, "0123456789"), "{r}");
    }
    let (st, _, body) = s
        .call(Method::GET, "/rbkt/k", &[("range", "bytes=2-3")], b"")
        .await;
    assert_eq!((st, body.as_str()), (StatusCode::PARTIAL_CONTENT, "23"));
    let (st, _, body) = s
        .call(Method::GET, "/rbkt/k", &[("range", "bytes=20-30")], b"")
        .await;
    assert_eq!(st, StatusCode::RANGE_NOT_SATISFIABLE, "{body}");
    assert!(
        body.contains("<Message>The requested range is not satisfiable</Message>"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negative_page_sizes() {
    let s = start(S3Config::default()).await;
    s.call(Method::PUT, "/pbkt", &[], b"").await;
    let (st, _, body) = s.call(Method::POST, "/pbkt/k?uploads", &[], b"").await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let id = between(&body, "<UploadId>", "</UploadId>")
        .unwrap()
        .to_owned();
    for q in [
        "/pbkt?list-type=2&max-keys=-1".to_owned(),
        "/pbkt?max-keys=-1".to_owned(),
        "/pbkt?uploads&max-uploads=-1".to_owned(),
        format!("/pbkt/k?uploadId={id}&max-parts=-1"),
    ] {
        let (st, _, body) = s.call(Method::GET, &q, &[], b"").await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{q}: {body}");
        assert!(body.contains("<Code>InvalidArgument</Code>"), "{q}: {body}");
    }
    let (st, _, body) = s
        .call(Method::GET, "/pbkt?list-type=2&max-keys=0", &[], b"")
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert!(body.contains("<MaxKeys>0</MaxKeys>"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_by_part_number() {
    let s = start(S3Config::default()).await;
    s.call(Method::PUT, "/mbkt", &[], b"").await;
    let (_, _, body) = s.call(Method::POST, "/mbkt/mp?uploads", &[], b"").await;
    let id = between(&body, "<UploadId>", "</UploadId>")
        .unwrap()
        .to_owned();
    let p1 = vec![b'a'; 5 * 1024 * 1024];
    let (_, h1, _) = s
        .call(
            Method::PUT,
            &format!("/mbkt/mp?uploadId={id}&partNumber=1"),
            &[],
            &p1,
        )
        .await;
    let (_, h2, _) = s
        .call(
            Method::PUT,
            &format!("/mbkt/mp?uploadId={id}&partNumber=2"),
            &[],
            b"tail",
        )
        .await;
    let xml = format!(
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{}</ETag></Part><Part><PartNumber>2</PartNumber><ETag>{}</ETag></Part></CompleteMultipartUpload>",
        h1["etag"].to_str().unwrap(),
        h2["etag"].to_str().unwrap()
    );
    let (st, _, body) = s
        .call(
            Method::POST,
            &format!("/mbkt/mp?uploadId={id}"),
            &[],
            xml.as_bytes(),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");

    let total = p1.len() + 4;
    let (st, h, body) = s.call(Method::GET, "/mbkt/mp?partNumber=2", &[], b"").await;
    assert_eq!((st, body.as_str()), (StatusCode::PARTIAL_CONTENT, "tail"));
    assert_eq!(h["x-amz-mp-parts-count"], "2");
    assert_eq!(
        h["content-range"].to_str().unwrap(),
        format!("bytes {}-{}/{total}", p1.len(), total - 1)
    );
    let (st, h, body) = s.call(Method::GET, "/mbkt/mp?partNumber=1", &[], b"").await;
    assert_eq!(st, StatusCode::PARTIAL_CONTENT);
    assert_eq!(body.len(), p1.len());
    assert_eq!(h["content-length"].to_str().unwrap(), p1.len().to_string());
    let (st, h, _) = s
        .call(Method::HEAD, "/mbkt/mp?partNumber=2", &[], b"")
        .await;
    assert_eq!(st, StatusCode::PARTIAL_CONTENT);
    assert_eq!(h["content-length"], "4");
    assert_eq!(h["x-amz-mp-parts-count"], "2");

    let (st, _, body) = s.call(Method::GET, "/mbkt/mp?partNumber=3", &[], b"").await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("<Code>InvalidPart</Code>"), "{body}");
    let (st, _, body) = s.call(Method::GET, "/mbkt/mp?partNumber=0", &[], b"").await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("<Code>InvalidArgument</Code>"), "{body}");
    let (st, _, body) = s
        .call(
            Method::GET,
            "/mbkt/mp?partNumber=1",
            &[("range", "bytes=0-1")],
            b"",
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");

    // A single-part object is its own part 1.
    s.call(Method::PUT, "/mbkt/one", &[], b"whole").await;
    let (st, h, body) = s
        .call(Method::GET, "/mbkt/one?partNumber=1", &[], b"")
        .await;
    assert_eq!((st, body.as_str()), (StatusCode::PARTIAL_CONTENT, "whole"));
    assert!(!h.contains_key("x-amz-mp-parts-count"));
    let (st, _, body) = s
        .call(Method::GET, "/mbkt/one?partNumber=2", &[], b"")
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(body.contains("<Code>InvalidPart</Code>"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigv4_through_key_lookup() {
    // Keys come from a lookup (as the gateway's principals: static and session keys).
    let key = |secret: &str| {
        Some(basalt_s3::KeySecret {
            secret: secret.to_owned(),
            session_token: None,
            account_id: basalt_core::DEFAULT_ACCOUNT_ID.to_owned(),
            arn: "arn:aws:iam::000000000000:root".to_owned(),
        })
    };
    let lookup: basalt_s3::KeyLookup = Arc::new(move |ak: &str| {
        Ok(match ak {
            "AKIDSTATIC" => key("static-secret"),
            "ASIASESSION" => key("session-secret"),
            _ => None,
        })
    });
    let s = start(S3Config {
        auth: Some(lookup),
        ..S3Config::default()
    })
    .await;
    let (st, _, body) = s
        .signed(
            Method::PUT,
            "/authb",
            &[],
            "AKIDSTATIC",
            "static-secret",
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let (st, _, body) = s
        .signed(
            Method::GET,
            "/",
            &[],
            "ASIASESSION",
            "session-secret",
            Some("tok"),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert!(body.contains("<Name>authb</Name>"), "{body}");

    let (st, h, body) = s
        .signed(Method::GET, "/", &[], "AKIDUNKNOWN", "x", None)
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("<Code>InvalidAccessKeyId</Code>"), "{body}");
    assert!(
        body.contains("<RequestId>") && h.contains_key("x-amz-request-id"),
        "{body}"
    );
    let (st, _, body) = s
        .signed(Method::GET, "/", &[], "AKIDSTATIC", "wrong", None)
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body.contains("<Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match the signature you provided. Check your key and signing method.</Message>"),
        "{body}"
    );

    // A signed, malformed Range is ignored after the signature is verified...
    let (st, _, _) = s.call(Method::PUT, "/authb/k", &[], b"unsigned").await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    // (put one with a signed empty body)
    let (st, _, body) = s
        .signed(
            Method::PUT,
            "/authb/k",
            &[],
            "AKIDSTATIC",
            "static-secret",
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let (st, _, body) = s
        .signed(
            Method::GET,
            "/authb/k",
            &[("range", "bytes=abc")],
            "AKIDSTATIC",
            "static-secret",
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    // ...but not without a valid signature.
    let (st, _, body) = s
        .signed(
            Method::GET,
            "/authb/k",
            &[("range", "bytes=abc")],
            "AKIDSTATIC",
            "wrong",
            None,
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{body}");
    let (st, _, _) = s
        .call(Method::GET, "/authb/k", &[("range", "bytes=abc")], b"")
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn header_section_and_metadata_limits() {
    let s = start(S3Config::default()).await;
    let (st, _, _) = s.call(Method::PUT, "/limits", &[], b"").await;
    assert_eq!(st, StatusCode::OK);
    let (st, _, _) = s.call(Method::PUT, "/limits/k", &[], b"v").await;
    assert_eq!(st, StatusCode::OK);
    // A 200 KB header on a GET: S3's 8 KiB header section is exceeded.
    let big = "a".repeat(200 * 1024);
    let (st, h, body) = s
        .call(Method::GET, "/limits/k", &[("x-big", &big)], b"")
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body.contains("<Code>RequestHeaderSectionTooLarge</Code><Message>Your request header section exceeds the maximum allowed size.</Message><MaxSizeAllowed>8192</MaxSizeAllowed><RequestId>"),
        "{body}"
    );
    assert!(h.contains_key("x-amz-request-id"));
    // Just under the limit is served.
    let fits = "a".repeat(7 * 1024);
    let (st, _, body) = s
        .call(Method::GET, "/limits/k", &[("x-big", &fits)], b"")
        .await;
    assert_eq!((st, body.as_str()), (StatusCode::OK, "v"));
    // User metadata: 2 KiB of keys and values.
    let meta = "m".repeat(2048 - 1);
    let (st, _, body) = s
        .call(Method::PUT, "/limits/m", &[("x-amz-meta-k", &meta)], b"v")
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let (st, _, body) = s
        .call(Method::PUT, "/limits/m", &[("x-amz-meta-kk", &meta)], b"v")
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("<Code>MetadataTooLarge</Code>"), "{body}");
}

#[tokio::test]
async fn unsigned_amz_headers_are_refused() {
    let lookup: basalt_s3::KeyLookup = Arc::new(|ak: &str| {
        Ok((ak == "AKIDSTATIC").then(|| basalt_s3::KeySecret {
            secret: "static-secret".to_owned(),
            session_token: None,
            account_id: basalt_core::DEFAULT_ACCOUNT_ID.to_owned(),
            arn: "arn:aws:iam::000000000000:root".to_owned(),
        }))
    });
    let s = start(S3Config {
        auth: Some(lookup),
        ..S3Config::default()
    })
    .await;
    let (st, _, body) = s
        .signed(
            Method::PUT,
            "/unsig",
            &[],
            "AKIDSTATIC",
            "static-secret",
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    // `signed` signs every header it is given: sign a request, then add one it did not sign.
    let now = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let (st, _, body) = s
        .call(
            Method::GET,
            "/unsig",
            &[
                ("x-amz-date", &now),
                ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
                ("x-amz-meta-added", "1"),
                (
                    "authorization",
                    &format!(
                        "AWS4-HMAC-SHA256 Credential=AKIDSTATIC/{}/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={}",
                        &now[..8],
                        "0".repeat(64)
                    ),
                ),
            ],
            b"",
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body.contains("<Code>AccessDenied</Code><Message>There were headers present in the request which were not signed</Message><HeadersNotSigned>x-amz-meta-added</HeadersNotSigned>"),
        "{body}"
    );
}
