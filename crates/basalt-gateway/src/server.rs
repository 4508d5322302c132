//! The listener and the shared gateway state.

use crate::auth::{AuthMode, Principals};
use crate::limits;
use crate::metrics::Metrics;
use crate::{Body, RawHandler};
use basalt_core::ServiceRegistry;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::TcpListener;

#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub account_id: String,
    pub region: String,
    pub auth: AuthMode,
    /// Largest request body accepted by model-driven services (S3 streams and is not bound by it).
    pub max_body_bytes: usize,
    /// How clients reach this server (`http://127.0.0.1:4566`).
    pub endpoint: String,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            account_id: basalt_core::DEFAULT_ACCOUNT_ID.into(),
            region: basalt_core::DEFAULT_REGION.into(),
            auth: AuthMode::Off,
            max_body_bytes: 64 * 1024 * 1024,
            endpoint: "http://127.0.0.1:4566".into(),
        }
    }
}

pub struct Gateway {
    pub config: GatewayConfig,
    pub registry: ServiceRegistry,
    pub s3: Option<Arc<dyn RawHandler>>,
    /// Non-AWS HTTP APIs on the same port, by path prefix (the OpenAI-compatible facade).
    pub routes: Vec<(&'static str, Arc<dyn RawHandler>)>,
    pub principals: Arc<dyn Principals>,
    pub metrics: Arc<Metrics>,
    pub started: Instant,
    /// Extra sections of `/_basalt/health` (the model engines' workers), computed per request.
    pub health: Vec<(&'static str, HealthSection)>,
}

/// A section of `/_basalt/health`.
pub type HealthSection = Box<dyn Fn() -> serde_json::Value + Send + Sync>;

impl Gateway {
    pub fn new(
        config: GatewayConfig,
        registry: ServiceRegistry,
        principals: Arc<dyn Principals>,
    ) -> Self {
        Gateway {
            config,
            registry,
            s3: None,
            routes: Vec::new(),
            health: Vec::new(),
            principals,
            metrics: Arc::default(),
            started: Instant::now(),
        }
    }

    pub fn with_route(mut self, prefix: &'static str, handler: Arc<dyn RawHandler>) -> Self {
        self.routes.push((prefix, handler));
        self
    }

    /// Adds `name` to `/_basalt/health`, as the JSON `section` returns.
    pub fn with_health(mut self, name: &'static str, section: HealthSection) -> Self {
        self.health.push((name, section));
        self
    }

    pub fn with_s3(mut self, s3: Arc<dyn RawHandler>) -> Self {
        self.s3 = Some(s3);
        self
    }

    /// Handles one request; never fails (errors are AWS error responses).
    pub async fn handle(
        self: Arc<Self>,
        req: http::Request<hyper::body::Incoming>,
    ) -> Result<http::Response<Body>, Infallible> {
        let (req, guard) = crate::RequestBody::wrap(req);
        Ok(guard.finish(crate::dispatch::dispatch(&self, req).await))
    }
}

/// Serves `gateway` on `listener` until the process ends.
pub async fn serve(gateway: Arc<Gateway>, listener: TcpListener) -> std::io::Result<()> {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let gw = gateway.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |mut req: hyper::Request<_>| {
                req.extensions_mut()
                    .insert(basalt_core::context::PeerAddr(peer));
                gw.clone().handle(req)
            });
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            // Heads within these limits reach the protocol checks (`limits`), which answer an
            // oversized one with an AWS error; only beyond them does hyper answer a bare 431.
            builder
                .http1()
                .max_buf_size(limits::MAX_HEAD_BYTES)
                .max_headers(limits::MAX_HEADERS);
            builder
                .http2()
                .max_header_list_size(limits::MAX_HEAD_BYTES as u32);
            if let Err(e) = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                .await
            {
                tracing::debug!(error = %e, "connection closed with error");
            }
        });
    }
}
