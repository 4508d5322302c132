//! Drives the S3 endpoint over real HTTP (hyper server on an ephemeral port, hyper client).

mod common;

use basalt_core::events::EventBus;
use basalt_s3::{S3Config, build_service};
use basalt_store::Store;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

struct Srv {
    base: String,
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    bus: EventBus,
    _dir: tempfile::TempDir,
}

async fn start() -> Srv {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let bus = EventBus::default();
    let handler = build_service(store, bus.clone(), S3Config::default());
    let addr = common::serve(handler).await;
    Srv {
        base: format!("http://{addr}"),
        client: Client::builder(TokioExecutor::new()).build_http(),
        bus,
        _dir: dir,
    }
}

impl Srv {
    async fn call(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (StatusCode, http::HeaderMap, Bytes) {
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
        (
            parts.status,
            parts.headers,
            body.collect().await.unwrap().to_bytes(),
        )
    }
}

impl Srv {
    /// Turns on the bucket's EventBridge notifications.
    async fn eventbridge(&self, bucket: &str) {
        let (st, _, body) = self
            .call(
                Method::PUT,
                &format!("/{bucket}?notification"),
                &[],
                b"<NotificationConfiguration><EventBridgeConfiguration/></NotificationConfiguration>",
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{}", text(&body));
    }
}

fn text(b: &Bytes) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_lifecycle() {
    let s = start().await;
    let mut events = s.bus.subscribe();

    let (st, _, body) = s.call(Method::GET, "/nobucket/k", &[], b"").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert!(
        text(&body).contains("<Code>NoSuchBucket</Code>"),
        "{}",
        text(&body)
    );

    let (st, _, _) = s.call(Method::PUT, "/bkt", &[], b"").await;
    assert_eq!(st, StatusCode::OK);
    s.eventbridge("bkt").await;
    let (st, _, body) = s.call(Method::PUT, "/Bad_Name", &[], b"").await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{}", text(&body));

    let (st, h, _) = s
        .call(
            Method::PUT,
            "/bkt/dir/hello.txt",
            &[
                ("content-type", "text/plain"),
                ("x-amz-meta-color", "blue"),
                ("x-amz-checksum-crc32", "DUoRhQ=="),
            ],
            b"hello world",
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(h["etag"], "\"5eb63bbbe01eeed093cb22bb8f5acdc3\"");
    assert_eq!(h["x-amz-checksum-crc32"], "DUoRhQ==");

    let ev = events.recv().await.unwrap().0;
    assert_eq!(ev["source"], "aws.s3");
    assert_eq!(ev["detail-type"], "Object Created");
    assert_eq!(ev["resources"][0], "arn:aws:s3:::bkt");
    assert_eq!(ev["detail"]["object"]["key"], "dir/hello.txt");
    assert_eq!(ev["detail"]["object"]["size"], 11);
    assert_eq!(
        ev["detail"]["object"]["etag"],
        "5eb63bbbe01eeed093cb22bb8f5acdc3"
    );
    assert_eq!(ev["detail"]["reason"], "PutObject");

    // Wrong checksum and wrong Content-MD5 are rejected.
    let (st, _, body) = s
        .call(
            Method::PUT,
            "/bkt/x",
            &[("x-amz-checksum-crc32", "AAAAAA==")],
            b"hello world",
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(text(&body).contains("BadDigest"), "{}", text(&body));
    let (st, _, body) = s
        .call(
            Method::PUT,
            "/bkt/x",
            &[("content-md5", "AAAAAAAAAAAAAAAAAAAAAA==")],
            b"hello",
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(text(&body).contains("BadDigest"), "{}", text(&body));

    let (st, h, body) = s.call(Method::GET, "/bkt/dir/hello.txt", &[], b"").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(body, Bytes::from_static(b"hello world"));
    assert_eq!(h["content-type"], "text/plain");
    assert_eq!(h["x-amz-meta-color"], "blue");
    assert!(h.get("last-modified").is_some());

    let (st, h, body) = s
        .call(
            Method::GET,
            "/bkt/dir/hello.txt",
            &[("range", "bytes=6-")],
            b"",
        )
        .await;
    assert_eq!(st, StatusCode::PARTIAL_CONTENT);
    assert_eq!(body, Bytes::from_static(b"world"));
    assert_eq!(h["content-range"], "bytes 6-10/11");
    let (st, _, body) = s
        .call(
            Method::GET,
            "/bkt/dir/hello.txt",
            &[("range", "bytes=20-30")],
            b"",
        )
        .await;
    assert_eq!(st, StatusCode::RANGE_NOT_SATISFIABLE, "{}", text(&body));

    let (st, _, _) = s
        .call(
            Method::GET,
            "/bkt/dir/hello.txt",
            &[("if-none-match", "\"5eb63bbbe01eeed093cb22bb8f5acdc3\"")],
            b"",
        )
        .await;
    assert_eq!(st, StatusCode::NOT_MODIFIED);
    let (st, _, _) = s
        .call(
            Method::GET,
            "/bkt/dir/hello.txt",
            &[("if-match", "\"nope\"")],
            b"",
        )
        .await;
    assert_eq!(st, StatusCode::PRECONDITION_FAILED);

    let (st, h, _) = s
        .call(
            Method::HEAD,
            "/bkt/dir/hello.txt",
            &[("x-amz-checksum-mode", "ENABLED")],
            b"",
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(h["content-length"], "11");
    assert_eq!(h["x-amz-checksum-crc32"], "DUoRhQ==");

    let (st, _, body) = s.call(Method::GET, "/bkt/missing", &[], b"").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert!(text(&body).contains("<Code>NoSuchKey</Code>"));

    // A large object goes to the blob store and streams back.
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let (st, _, _) = s.call(Method::PUT, "/bkt/big.bin", &[], &big).await;
    assert_eq!(st, StatusCode::OK);
    let (st, _, body) = s.call(Method::GET, "/bkt/big.bin", &[], b"").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(&body[..], &big[..]);
    let (st, _, body) = s
        .call(
            Method::GET,
            "/bkt/big.bin",
            &[("range", "bytes=100000-100009")],
            b"",
        )
        .await;
    assert_eq!(st, StatusCode::PARTIAL_CONTENT);
    assert_eq!(&body[..], &big[100_000..100_010]);

    // Copy.
    let (st, _, body) = s
        .call(
            Method::PUT,
            "/bkt/copy.txt",
            &[("x-amz-copy-source", "/bkt/dir/hello.txt")],
            b"",
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{}", text(&body));
    assert!(text(&body).contains("5eb63bbbe01eeed093cb22bb8f5acdc3"));
    let (_, h, body) = s.call(Method::GET, "/bkt/copy.txt", &[], b"").await;
    assert_eq!(body, Bytes::from_static(b"hello world"));
    assert_eq!(h["x-amz-meta-color"], "blue");

    // Listing.
    let (st, _, body) = s
        .call(Method::GET, "/bkt?list-type=2&delimiter=/", &[], b"")
        .await;
    assert_eq!(st, StatusCode::OK);
    let t = text(&body);
    assert!(
        t.contains("<CommonPrefixes><Prefix>dir/</Prefix></CommonPrefixes>"),
        "{t}"
    );
    assert!(
        t.contains("<Key>big.bin</Key>") && t.contains("<Key>copy.txt</Key>"),
        "{t}"
    );
    assert!(t.contains("<KeyCount>3</KeyCount>"), "{t}");
    let (_, _, body) = s
        .call(Method::GET, "/bkt?list-type=2&max-keys=1", &[], b"")
        .await;
    let t = text(&body);
    assert!(
        t.contains("<IsTruncated>true</IsTruncated>") && t.contains("<NextContinuationToken>"),
        "{t}"
    );

    // Bucket not empty.
    let (st, _, body) = s.call(Method::DELETE, "/bkt", &[], b"").await;
    assert_eq!(st, StatusCode::CONFLICT);
    assert!(text(&body).contains("BucketNotEmpty"));

    // Multipart: part 1 too small when not last.
    let (st, _, body) = s.call(Method::POST, "/bkt/mp?uploads", &[], b"").await;
    assert_eq!(st, StatusCode::OK);
    let t = text(&body);
    let id = t
        .split("<UploadId>")
        .nth(1)
        .unwrap()
        .split("</UploadId>")
        .next()
        .unwrap()
        .to_owned();
    let (st, h1, _) = s
        .call(
            Method::PUT,
            &format!("/bkt/mp?partNumber=1&uploadId={id}"),
            &[],
            b"aaa",
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, h2, _) = s
        .call(
            Method::PUT,
            &format!("/bkt/mp?partNumber=2&uploadId={id}"),
            &[],
            b"bbb",
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (e1, e2) = (
        h1["etag"].to_str().unwrap().to_owned(),
        h2["etag"].to_str().unwrap().to_owned(),
    );
    let xml = format!(
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{e1}</ETag></Part><Part><PartNumber>2</PartNumber><ETag>{e2}</ETag></Part></CompleteMultipartUpload>"
    );
    let (st, _, body) = s
        .call(
            Method::POST,
            &format!("/bkt/mp?uploadId={id}"),
            &[],
            xml.as_bytes(),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(text(&body).contains("EntityTooSmall"), "{}", text(&body));
    let (_, _, body) = s
        .call(Method::GET, &format!("/bkt/mp?uploadId={id}"), &[], b"")
        .await;
    assert!(
        text(&body).contains("<PartNumber>2</PartNumber>"),
        "{}",
        text(&body)
    );
    let xml1 = format!(
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{e1}</ETag></Part></CompleteMultipartUpload>"
    );
    let (st, _, body) = s
        .call(
            Method::POST,
            &format!("/bkt/mp?uploadId={id}"),
            &[],
            xml1.as_bytes(),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{}", text(&body));
    let md5_a = basalt_s3::model::md5_hex(b"aaa");
    let expect = basalt_s3::model::multipart_etag([md5_a.as_str()]).unwrap();
    assert!(text(&body).contains(&expect), "{}", text(&body));
    let (_, _, body) = s.call(Method::GET, "/bkt/mp", &[], b"").await;
    assert_eq!(body, Bytes::from_static(b"aaa"));
    let (st, _, body) = s
        .call(Method::DELETE, &format!("/bkt/mp?uploadId={id}"), &[], b"")
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert!(text(&body).contains("NoSuchUpload"));

    // Delete all and the bucket.
    let del = "<Delete><Object><Key>dir/hello.txt</Key></Object><Object><Key>big.bin</Key></Object><Object><Key>copy.txt</Key></Object><Object><Key>mp</Key></Object></Delete>";
    let md5 = {
        use base64::Engine;
        use md5::Digest;
        base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(del.as_bytes()))
    };
    let (st, _, body) = s
        .call(
            Method::POST,
            "/bkt?delete",
            &[("content-md5", &md5)],
            del.as_bytes(),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{}", text(&body));
    assert_eq!(
        text(&body).matches("<Deleted>").count(),
        4,
        "{}",
        text(&body)
    );
    let (st, _, _) = s.call(Method::DELETE, "/bkt/never-existed", &[], b"").await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _, _) = s.call(Method::DELETE, "/bkt", &[], b"").await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _, _) = s.call(Method::HEAD, "/bkt", &[], b"").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versioned_events_name_versions_and_markers() {
    let s = start().await;
    let mut events = s.bus.subscribe();
    s.call(Method::PUT, "/vbkt", &[], b"").await;
    s.eventbridge("vbkt").await;
    let (st, _, body) = s
        .call(
            Method::PUT,
            "/vbkt?versioning",
            &[],
            b"<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>",
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{}", text(&body));
    let (_, h, _) = s.call(Method::PUT, "/vbkt/k", &[], b"v1").await;
    let v1 = h["x-amz-version-id"].to_str().unwrap().to_owned();
    let ev = events.recv().await.unwrap().0;
    assert_eq!(ev["detail-type"], "Object Created");
    assert_eq!(ev["detail"]["object"]["version-id"], v1.as_str());

    let (st, h, _) = s.call(Method::DELETE, "/vbkt/k", &[], b"").await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(h["x-amz-delete-marker"], "true");
    let marker = h["x-amz-version-id"].to_str().unwrap().to_owned();
    let ev = events.recv().await.unwrap().0;
    assert_eq!(ev["detail-type"], "Object Deleted");
    assert_eq!(ev["detail"]["deletion-type"], "Delete Marker Created");
    assert_eq!(ev["detail"]["object"]["version-id"], marker.as_str());

    s.call(Method::DELETE, &format!("/vbkt/k?versionId={v1}"), &[], b"")
        .await;
    let ev = events.recv().await.unwrap().0;
    assert_eq!(ev["detail"]["deletion-type"], "Permanently Deleted");
    assert_eq!(ev["detail"]["object"]["version-id"], v1.as_str());
}

/// A state store whose database can be "down": every call fails with
/// `StoreError::Unavailable` while the switch is on, as `PgState` does during an outage.
struct Flaky {
    inner: basalt_store::MemoryState,
    down: std::sync::atomic::AtomicBool,
}

impl Flaky {
    fn check(&self) -> Result<(), basalt_store::StoreError> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(basalt_store::StoreError::Unavailable(
                "PostgreSQL at 127.0.0.1:1/db is unreachable".into(),
            ));
        }
        Ok(())
    }
}

impl basalt_store::StateStore for Flaky {
    fn get(&self, t: &str, k: &str) -> Result<Option<Vec<u8>>, basalt_store::StoreError> {
        self.check()?;
        self.inner.get(t, k)
    }
    fn put(&self, t: &str, k: &str, v: &[u8]) -> Result<(), basalt_store::StoreError> {
        self.check()?;
        self.inner.put(t, k, v)
    }
    fn delete(&self, t: &str, k: &str) -> Result<bool, basalt_store::StoreError> {
        self.check()?;
        self.inner.delete(t, k)
    }
    fn scan(
        &self,
        t: &str,
        p: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, basalt_store::StoreError> {
        self.check()?;
        self.inner.scan(t, p, after, limit)
    }
    fn range(
        &self,
        t: &str,
        lo: &str,
        hi: &str,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, basalt_store::StoreError> {
        self.check()?;
        self.inner.range(t, lo, hi, reverse, limit)
    }
    fn batch(&self, ops: &[basalt_store::WriteOp]) -> Result<(), basalt_store::StoreError> {
        self.check()?;
        self.inner.batch(ops)
    }
    fn claim(
        &self,
        q: &str,
        now: i64,
        lease: i64,
        max: usize,
    ) -> Result<Vec<basalt_store::Claim>, basalt_store::StoreError> {
        self.check()?;
        self.inner.claim(q, now, lease, max)
    }
    fn renew(
        &self,
        c: &basalt_store::Claim,
        now: i64,
        lease: i64,
    ) -> Result<i64, basalt_store::StoreError> {
        self.check()?;
        self.inner.renew(c, now, lease)
    }
    fn complete(
        &self,
        c: &basalt_store::Claim,
        ops: &[basalt_store::WriteOp],
    ) -> Result<(), basalt_store::StoreError> {
        self.check()?;
        self.inner.complete(c, ops)
    }
    fn release(&self, c: &basalt_store::Claim, due: i64) -> Result<(), basalt_store::StoreError> {
        self.check()?;
        self.inner.release(c, due)
    }
    fn pending(&self, q: &str) -> Result<usize, basalt_store::StoreError> {
        self.check()?;
        self.inner.pending(q)
    }
    fn counts(&self, q: &str, now: i64) -> Result<basalt_store::Counts, basalt_store::StoreError> {
        self.check()?;
        self.inner.counts(q, now)
    }
    fn purge(&self, q: &str) -> Result<usize, basalt_store::StoreError> {
        self.check()?;
        self.inner.purge(q)
    }
}

/// A state store outage answers 503 `ServiceUnavailable` (which SDKs retry), never a 500 or a
/// dropped connection, and service resumes when the store is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_store_outage_is_service_unavailable() {
    let state = std::sync::Arc::new(Flaky {
        inner: basalt_store::MemoryState::default(),
        down: false.into(),
    });
    let store = Store {
        state: state.clone(),
        blobs: std::sync::Arc::new(basalt_store::MemoryBlobs::default()),
    };
    let handler = build_service(store, EventBus::default(), S3Config::default());
    let s = Srv {
        base: format!("http://{}", common::serve(handler).await),
        client: Client::builder(TokioExecutor::new()).build_http(),
        bus: EventBus::default(),
        _dir: tempfile::tempdir().unwrap(),
    };
    assert_eq!(
        s.call(Method::PUT, "/bkt", &[], b"").await.0,
        StatusCode::OK
    );
    assert_eq!(
        s.call(Method::PUT, "/bkt/k", &[], b"v").await.0,
        StatusCode::OK
    );
    state.down.store(true, std::sync::atomic::Ordering::SeqCst);
    for (method, path, body) in [
        (Method::GET, "/bkt/k", &b""[..]),
        (Method::PUT, "/bkt/k2", &b"v2"[..]),
        (Method::GET, "/bkt?list-type=2", &b""[..]),
        (Method::DELETE, "/bkt/k", &b""[..]),
        (Method::GET, "/", &b""[..]),
    ] {
        let (st, _, body) = s.call(method.clone(), path, &[], body).await;
        assert_eq!(
            st,
            StatusCode::SERVICE_UNAVAILABLE,
            "{method} {path}: {}",
            text(&body)
        );
        let t = text(&body);
        assert!(t.contains("<Code>ServiceUnavailable</Code>"), "{t}");
        assert!(
            t.contains("<Message>Service is unable to handle request.</Message>"),
            "{t}"
        );
    }
    state.down.store(false, std::sync::atomic::Ordering::SeqCst);
    let (st, _, body) = s.call(Method::GET, "/bkt/k", &[], b"").await;
    assert_eq!((st, &body[..]), (StatusCode::OK, &b"v"[..]));
    assert_eq!(
        s.call(Method::GET, "/bkt/k2", &[], b"").await.0,
        StatusCode::NOT_FOUND
    );
}

/// Queue notifications are work items written with the object (no registry and no worker
/// here, so they stay queued); a bucket without EventBridgeConfiguration publishes nothing on
/// the bus.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_are_queued_with_the_write() {
    use basalt_store::StateStore;
    let state = std::sync::Arc::new(basalt_store::MemoryState::default());
    let store = Store {
        state: state.clone(),
        blobs: std::sync::Arc::new(basalt_store::MemoryBlobs::default()),
    };
    let bus = EventBus::default();
    let handler = build_service(store, bus.clone(), S3Config::default());
    let s = Srv {
        base: format!("http://{}", common::serve(handler).await),
        client: Client::builder(TokioExecutor::new()).build_http(),
        bus: bus.clone(),
        _dir: tempfile::tempdir().unwrap(),
    };
    let mut events = bus.subscribe();
    let claim_all = || {
        let items = state
            .claim("s3.notifications", i64::MAX / 2, 1000, 100)
            .unwrap();
        for c in &items {
            state.complete(c, &[]).unwrap();
        }
        items
            .into_iter()
            .map(|c| {
                let d: serde_json::Value = serde_json::from_slice(&c.payload).unwrap();
                let body: serde_json::Value =
                    serde_json::from_str(d["body"].as_str().unwrap()).unwrap();
                (
                    d["service"].as_str().unwrap().to_owned(),
                    d["arn"].as_str().unwrap().to_owned(),
                    body,
                )
            })
            .collect::<Vec<_>>()
    };
    s.call(Method::PUT, "/nbk", &[], b"").await;
    let arn = "arn:aws:sqs:us-east-1:000000000000:q1";
    let cfg = format!(
        "<NotificationConfiguration><QueueConfiguration><Id>imgs</Id><Queue>{arn}</Queue>\
         <Event>s3:ObjectCreated:*</Event><Event>s3:ObjectRemoved:*</Event>\
         <Filter><S3Key><FilterRule><Name>suffix</Name><Value>.jpg</Value></FilterRule></S3Key></Filter>\
         </QueueConfiguration></NotificationConfiguration>"
    );
    let (st, h, body) = s
        .call(Method::PUT, "/nbk?notification", &[], cfg.as_bytes())
        .await;
    assert_eq!(st, StatusCode::OK, "{}", text(&body));
    let got = claim_all();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, "sqs");
    assert_eq!(got[0].1, arn);
    assert_eq!(got[0].2["Event"], "s3:TestEvent");
    assert_eq!(got[0].2["Bucket"], "nbk");
    assert_eq!(
        got[0].2["RequestId"],
        h["x-amz-request-id"].to_str().unwrap()
    );

    let (_, body) = {
        let (st, _, body) = s.call(Method::GET, "/nbk?notification", &[], b"").await;
        (st, text(&body))
    };
    assert!(body.contains("<Id>imgs</Id>"), "{body}");
    assert!(body.contains("<Name>suffix</Name>"), "{body}");

    let (st, h, _) = s
        .call(Method::PUT, "/nbk/img/a%20b.jpg", &[], b"data")
        .await;
    assert_eq!(st, StatusCode::OK);
    s.call(Method::PUT, "/nbk/doc.txt", &[], b"data").await;
    let got = claim_all();
    assert_eq!(got.len(), 1, "{got:?}");
    let r = &got[0].2["Records"][0];
    assert_eq!(r["eventName"], "ObjectCreated:Put");
    assert_eq!(r["eventSource"], "aws:s3");
    assert_eq!(r["s3"]["configurationId"], "imgs");
    assert_eq!(r["s3"]["bucket"]["arn"], "arn:aws:s3:::nbk");
    assert_eq!(r["s3"]["object"]["key"], "img/a+b.jpg");
    assert_eq!(r["s3"]["object"]["size"], 4);
    assert_eq!(
        r["s3"]["object"]["eTag"],
        "8d777f385d3dfec8815d20f7496026dc"
    );
    assert!(r["s3"]["object"].get("versionId").is_none());
    assert_eq!(
        r["responseElements"]["x-amz-request-id"],
        h["x-amz-request-id"].to_str().unwrap()
    );

    s.call(Method::DELETE, "/nbk/img/a%20b.jpg", &[], b"").await;
    let got = claim_all();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].2["Records"][0]["eventName"], "ObjectRemoved:Delete");
    // No EventBridgeConfiguration: nothing on the bus.
    assert!(events.try_recv().is_err());

    // Unknown events and overlapping configurations are refused with InvalidArgument.
    let bad = format!(
        "<NotificationConfiguration><QueueConfiguration><Queue>{arn}</Queue>\
         <Event>s3:ObjectCreated:Nope</Event></QueueConfiguration></NotificationConfiguration>"
    );
    let (st, _, body) = s
        .call(Method::PUT, "/nbk?notification", &[], bad.as_bytes())
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let body = text(&body);
    assert!(body.contains("<Code>InvalidArgument</Code>"), "{body}");
    assert!(
        body.contains("<ArgumentName>Event</ArgumentName>"),
        "{body}"
    );
    assert!(
        body.contains("<ArgumentValue>s3:ObjectCreated:Nope</ArgumentValue>"),
        "{body}"
    );
}
