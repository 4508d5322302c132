//! One HTTP port for every AWS service.
//!
//! A request flows: [`route`] (which service: SigV4 credential scope, `X-Amz-Target`, host,
//! path) → protocol detection and operation lookup (`basalt-protocol`) → [`sigv4`] auth →
//! input parsing and validation → the service from the [`ServiceRegistry`] → output or error
//! serialized in the request's protocol, with request ids, metrics and a tracing span.
//!
//! Services whose wire format is better served by a dedicated adapter (S3 through `s3s`)
//! plug in as a [`RawHandler`] and receive the untouched HTTP request.

pub mod auth;
mod body;
mod dispatch;
pub mod limits;
pub mod metrics;
pub mod route;
pub mod server;
pub mod sigv4;

pub use auth::{AuthMode, LookupUnavailable, Principal, Principals, StaticPrincipals};
pub use body::{Body, RequestBody, full};
/// The boxed error type of response bodies.
pub mod body_error {
    pub use crate::body::BoxError;
}
pub use server::{Gateway, GatewayConfig, serve};

use futures::future::BoxFuture;

/// A service that takes raw HTTP (S3 through s3s).
pub trait RawHandler: Send + Sync + 'static {
    fn handle(&self, req: http::Request<RequestBody>) -> BoxFuture<'static, http::Response<Body>>;
}
