//! Standalone S3 endpoint for manual checks: `cargo run --release -p basalt-s3 --example serve -- 4567 /tmp/data`
use hyper_util::rt::{TokioExecutor, TokioIo};

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let port = args.next().unwrap_or_else(|| "4567".into());
    let store = match args.next() {
        Some(d) => basalt_store::Store::open(std::path::Path::new(&d)).unwrap(),
        None => basalt_store::Store::ephemeral(),
    };
    let h = basalt_s3::build_service(store, Default::default(), Default::default());
    let l = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}"))
        .await
        .unwrap();
    loop {
        let (s, _) = l.accept().await.unwrap();
        let h = h.clone();
        tokio::spawn(async move {
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(s), h)
                .await;
        });
    }
}
