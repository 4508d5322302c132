//! The HTTP client of HTTP/S subscriptions: one pooled hyper client, plain HTTP (endpoints on
//! a developer's machine); `https://` endpoints are refused as a delivery failure, since
//! Basalt carries no TLS client with a trust store of its own.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

pub struct Client {
    inner: HyperClient<HttpConnector, Full<Bytes>>,
}

/// How one POST went.
#[derive(Debug)]
pub enum Outcome {
    /// The endpoint answered with this status.
    Status(u16),
    /// No answer (refused, reset, timed out, bad URL): worth retrying.
    Unreachable(String),
}

impl Client {
    pub fn new() -> Client {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        Client {
            inner: HyperClient::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .build(connector),
        }
    }

    pub async fn post(
        &self,
        url: &str,
        headers: &[(&str, String)],
        body: String,
        timeout_ms: u64,
    ) -> Outcome {
        if url.len() > 8 && url[..8].eq_ignore_ascii_case("https://") {
            return Outcome::Unreachable(
                "HTTPS endpoints are not reachable from Basalt (no TLS client); use http://".into(),
            );
        }
        let mut req = http::Request::post(url);
        for (k, v) in headers {
            req = req.header(*k, v.as_str());
        }
        let req = match req.body(Full::new(Bytes::from(body))) {
            Ok(r) => r,
            Err(e) => return Outcome::Unreachable(format!("bad endpoint URL: {e}")),
        };
        let call = async {
            let resp = self.inner.request(req).await?;
            let status = resp.status().as_u16();
            // Read (and drop) the answer so the connection can be reused.
            let _ = resp.into_body().collect().await;
            Ok::<u16, hyper_util::client::legacy::Error>(status)
        };
        match tokio::time::timeout(Duration::from_millis(timeout_ms), call).await {
            Ok(Ok(status)) => Outcome::Status(status),
            Ok(Err(e)) => Outcome::Unreachable(format!("{e}")),
            Err(_) => Outcome::Unreachable("timed out".into()),
        }
    }
}
