//! Shared by the integration tests: serve an S3 handler on an ephemeral loopback port.

use hyper_util::rt::{TokioExecutor, TokioIo};

pub async fn serve(handler: basalt_s3::S3Handler) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let h = handler.clone();
            tokio::spawn(async move {
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), h)
                    .await;
            });
        }
    });
    addr
}
