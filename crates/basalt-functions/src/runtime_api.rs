//! The Lambda Runtime API, one instance per environment on its own loopback port (the path
//! names no environment, so the address does): `GET /2018-06-01/runtime/invocation/next`
//! long-polls for the next event; `POST .../invocation/{id}/response`, `.../{id}/error` and
//! `/2018-06-01/runtime/init/error` report back.

use base64::Engine;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::{Notify, mpsc};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A synchronous response may be at most 6 MB (AWS's figure, with its slack).
pub const MAX_RESPONSE: usize = 6 * 1024 * 1024 + 100;

/// The event handed to the runtime by `next`.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub request_id: String,
    pub payload: Bytes,
    pub deadline_ms: i64,
    pub invoked_arn: String,
    pub client_context: Option<String>,
    pub trace_id: String,
}

/// What the runtime (or its process) said.
#[derive(Debug)]
pub(crate) enum Reply {
    Response {
        request_id: String,
        body: Bytes,
    },
    Error {
        request_id: String,
        body: Bytes,
        error_type: Option<String>,
    },
    InitError {
        body: Bytes,
        error_type: Option<String>,
    },
    /// The process ended (its exit status, in words).
    Exited(String),
    /// The process grew past its memory size and was killed.
    OutOfMemory,
}

pub(crate) struct Channel {
    next: Mutex<Option<Pending>>,
    notify: Notify,
    replies: mpsc::UnboundedSender<Reply>,
    /// Notified once, when the runtime first asks for an event: its initialization ended.
    ready: Arc<Notify>,
    asked: AtomicBool,
}

impl Channel {
    pub(crate) fn new(ready: Arc<Notify>) -> (Arc<Channel>, mpsc::UnboundedReceiver<Reply>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Arc::new(Channel {
                next: Mutex::new(None),
                notify: Notify::new(),
                replies: tx,
                ready,
                asked: AtomicBool::new(false),
            }),
            rx,
        )
    }

    pub(crate) fn offer(&self, p: Pending) {
        *self.next.lock() = Some(p);
        self.notify.notify_one();
    }

    pub(crate) fn reply(&self, r: Reply) {
        let _ = self.replies.send(r);
    }

    async fn next(&self) -> Pending {
        loop {
            let notified = self.notify.notified();
            if !self.asked.swap(true, Ordering::SeqCst) {
                self.ready.notify_one();
            }
            if let Some(p) = self.next.lock().take() {
                return p;
            }
            notified.await;
        }
    }
}

type Body = Full<Bytes>;

fn json(status: StatusCode, body: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::copy_from_slice(body.as_bytes())))
        .expect("static response")
}

fn error_type(req: &Request<Incoming>) -> Option<String> {
    req.headers()
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn handle(ch: Arc<Channel>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_owned();
    let Some(rest) = path.strip_prefix("/2018-06-01/runtime/") else {
        return json(
            StatusCode::NOT_FOUND,
            r#"{"errorMessage":"Not found","errorType":"NotFound"}"#,
        );
    };
    let segments: Vec<&str> = rest.split('/').collect();
    match (req.method(), segments.as_slice()) {
        (&Method::GET, ["invocation", "next"]) => {
            let p = ch.next().await;
            let mut b = Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "application/json")
                .header("lambda-runtime-aws-request-id", &p.request_id)
                .header("lambda-runtime-deadline-ms", p.deadline_ms.to_string())
                .header("lambda-runtime-invoked-function-arn", &p.invoked_arn)
                .header("lambda-runtime-trace-id", &p.trace_id);
            if let Some(cc) = &p.client_context {
                b = b.header("lambda-runtime-client-context", cc);
            }
            b.body(Full::new(p.payload)).unwrap_or_else(|_| {
                json(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    r#"{"errorMessage":"bad event","errorType":"InternalError"}"#,
                )
            })
        }
        (&Method::POST, ["invocation", id, kind @ ("response" | "error")]) => {
            let (id, kind) = (id.to_string(), *kind);
            let et = error_type(&req);
            let collected = match Limited::new(req.into_body(), MAX_RESPONSE).collect().await {
                Ok(c) => c,
                Err(_) => {
                    let message = format!(
                        "Response payload size exceeded maximum allowed payload size ({MAX_RESPONSE} bytes)."
                    );
                    ch.reply(Reply::Error {
                        request_id: id,
                        body: Bytes::from(
                            serde_json::json!({"errorMessage": message, "errorType": "Function.ResponseSizeTooLarge"})
                                .to_string(),
                        ),
                        error_type: Some("Function.ResponseSizeTooLarge".into()),
                    });
                    return json(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        r#"{"errorMessage":"Exceeded maximum allowed payload size (6291556 bytes).","errorType":"RequestEntityTooLarge"}"#,
                    );
                }
            };
            // A streamed response that fails after it started says so in trailers (the
            // streaming Runtime API): the error type, and the error body in base64.
            let trailers = collected.trailers().cloned();
            let body = collected.to_bytes();
            let trailer = |name: &str| {
                trailers
                    .as_ref()
                    .and_then(|t| t.get(name))
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let streamed_error = trailer("lambda-runtime-function-error-type");
            ch.reply(if kind == "response" && streamed_error.is_some() {
                let detail = trailer("lambda-runtime-function-error-body")
                    .and_then(|b| B64.decode(b.trim()).ok())
                    .map(Bytes::from)
                    .unwrap_or(body);
                Reply::Error {
                    request_id: id,
                    body: detail,
                    error_type: streamed_error,
                }
            } else if kind == "response" {
                Reply::Response {
                    request_id: id,
                    body,
                }
            } else {
                Reply::Error {
                    request_id: id,
                    body,
                    error_type: et,
                }
            });
            json(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
        }
        (&Method::POST, ["init", "error"]) => {
            let et = error_type(&req);
            let body = Limited::new(req.into_body(), MAX_RESPONSE)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            ch.reply(Reply::InitError {
                body,
                error_type: et,
            });
            json(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
        }
        _ => json(
            StatusCode::NOT_FOUND,
            r#"{"errorMessage":"Not found","errorType":"NotFound"}"#,
        ),
    }
}

/// Serves the Runtime API of one environment until the task is aborted.
pub(crate) async fn serve(listener: tokio::net::TcpListener, ch: Arc<Channel>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let ch = ch.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let ch = ch.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(ch, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
