//! The response body type: a full buffer or a stream (event streams, S3 objects).

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A request body that, dropped before its end (a request refused before its body was read),
/// reads the rest in the background, up to [`DRAIN_MAX`] bytes within [`DRAIN_TIME`].
///
/// Without this, hyper closes the connection with the body's bytes unread, and the kernel
/// answers them with a TCP reset, which can destroy the response before the client (or a
/// load balancer streaming the body, as nginx does) reads it: an error answer turns into a
/// connection error (nginx: 502 and the node marked down). Draining keeps the connection
/// orderly and reusable, as AWS's own front ends do for small bodies.
///
/// A body announced with `Expect: 100-continue` that was never polled is not drained: its client
/// sends it only after a `100 Continue` and has its final answer instead (botocore then never
/// sends it). The answer to such a request must close the connection ([`ExpectGuard`]):
/// otherwise the server, still owed the body, would take the client's next request for it.
pub struct RequestBody {
    inner: Option<hyper::body::Incoming>,
    /// Set once the body has been polled (a `100 Continue` has then been sent if asked for).
    polled: std::sync::Arc<std::sync::atomic::AtomicBool>,
    expects_continue: bool,
}

/// Tells whether the answer to an `Expect: 100-continue` request must close the connection.
pub struct ExpectGuard(Option<std::sync::Arc<std::sync::atomic::AtomicBool>>);

impl ExpectGuard {
    /// Marks `resp` `Connection: close` when its request announced a body with
    /// `Expect: 100-continue` that was never asked for.
    pub fn finish<B>(self, mut resp: http::Response<B>) -> http::Response<B> {
        if let Some(polled) = self.0
            && !polled.load(std::sync::atomic::Ordering::Acquire)
        {
            resp.headers_mut().insert(
                http::header::CONNECTION,
                http::HeaderValue::from_static("close"),
            );
        }
        resp
    }
}

pub const DRAIN_MAX: usize = 8 * 1024 * 1024;
pub const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(5);

impl RequestBody {
    /// Wraps the body of `req`; the guard fixes up its answer.
    pub fn wrap(
        req: http::Request<hyper::body::Incoming>,
    ) -> (http::Request<RequestBody>, ExpectGuard) {
        let expects_continue = req
            .headers()
            .get(http::header::EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        let polled = std::sync::Arc::default();
        let guard = ExpectGuard(expects_continue.then(|| std::sync::Arc::clone(&polled)));
        let req = req.map(|b| RequestBody {
            inner: Some(b),
            polled,
            expects_continue,
        });
        (req, guard)
    }
}

impl http_body::Body for RequestBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, hyper::Error>>> {
        self.polled
            .store(true, std::sync::atomic::Ordering::Release);
        match self.inner.as_mut() {
            Some(b) => std::pin::Pin::new(b).poll_frame(cx),
            None => std::task::Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner
            .as_ref()
            .is_none_or(http_body::Body::is_end_stream)
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.as_ref().map_or_else(
            || http_body::SizeHint::with_exact(0),
            http_body::Body::size_hint,
        )
    }
}

impl Drop for RequestBody {
    fn drop(&mut self) {
        let Some(mut body) = self.inner.take() else {
            return;
        };
        let asked =
            !self.expects_continue || self.polled.load(std::sync::atomic::Ordering::Acquire);
        if !asked || http_body::Body::is_end_stream(&body) {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        rt.spawn(async move {
            let _ = tokio::time::timeout(DRAIN_TIME, async {
                let mut read = 0;
                while let Some(Ok(frame)) = body.frame().await {
                    if let Ok(data) = frame.into_data() {
                        read += data.len();
                        if read > DRAIN_MAX {
                            break;
                        }
                    }
                }
            })
            .await;
        });
    }
}
