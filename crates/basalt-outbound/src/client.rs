//! One pooled hyper client for `http://` and `https://` endpoints, the latter over rustls with
//! the trust [`crate::TlsTrust`] describes.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

pub struct Client {
    inner: HyperClient<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

/// How one POST went (what a delivery with retries needs to know).
#[derive(Debug)]
pub enum Outcome {
    /// The endpoint answered with this status.
    Status(u16),
    /// No answer (refused, reset, timed out, bad URL): worth retrying.
    Unreachable(String),
}

/// An endpoint's whole answer.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// The status line's reason phrase as the status code defines it (`OK`, `Not Found`).
    pub reason: String,
    /// In the order received; a header sent twice appears twice.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

/// Why a request got no answer.
#[derive(Debug)]
pub enum Failure {
    /// The URL, a header or the method could not be put in a request.
    BadRequest(String),
    /// Refused, reset, TLS, DNS, ...
    Unreachable(String),
    TimedOut,
    /// The answer's body was larger than allowed.
    TooLarge,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::BadRequest(e) => write!(f, "invalid request: {e}"),
            Failure::Unreachable(e) => write!(f, "{e}"),
            Failure::TimedOut => f.write_str("timed out"),
            Failure::TooLarge => f.write_str("the response is too large"),
        }
    }
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

    /// One request, its answer read whole (up to `max_body` bytes) within `timeout`.
    pub async fn request(
        &self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: Bytes,
        timeout: Duration,
        max_body: usize,
    ) -> Result<Response, Failure> {
        let method = http::Method::from_bytes(method.as_bytes())
            .map_err(|e| Failure::BadRequest(e.to_string()))?;
        let mut req = http::Request::builder().method(method).uri(url);
        for (k, v) in headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let req = req
            .body(Full::new(body))
            .map_err(|e| Failure::BadRequest(e.to_string()))?;
        let call = async {
            let resp = self
                .inner
                .request(req)
                .await
                .map_err(|e| Failure::Unreachable(chain(&e)))?;
            let status = resp.status();
            let headers = resp
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            let body = Limited::new(resp.into_body(), max_body)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        Failure::TooLarge
                    } else {
                        Failure::Unreachable(e.to_string())
                    }
                })?
                .to_bytes();
            Ok(Response {
                status: status.as_u16(),
                reason: status.canonical_reason().unwrap_or("").to_owned(),
                headers,
                body,
            })
        };
        tokio::time::timeout(timeout, call)
            .await
            .unwrap_or(Err(Failure::TimedOut))
    }

    /// A POST whose answer matters only by its status (an SNS delivery): the status once
    /// the headers arrive; the body is read and dropped so that the connection can be
    /// reused, whatever becomes of it.
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
