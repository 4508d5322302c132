//! The HTTP client of HTTP/S subscriptions: one pooled hyper client for `http://` and
//! `https://` endpoints, the latter over rustls with the trust `tls` describes.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

pub struct Client {
    inner: HyperClient<HttpsConnector<HttpConnector>, Full<Bytes>>,
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
    pub fn new(trust: &crate::tls::TlsTrust) -> Client {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        // The HTTPS connector hands `https://` URIs to it, so it must not refuse them.
        connector.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(crate::tls::client_config(trust))
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
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
            Ok(Err(e)) => Outcome::Unreachable(chain(&e)),
            Err(_) => Outcome::Unreachable("timed out".into()),
        }
    }
}

/// An error with its causes: hyper's own says only "client error (Connect)", the TLS
/// failure that explains it is further down.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}
