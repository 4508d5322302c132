//! Wiring of Lambda: the execution engine, the service, code download URLs, and
//! `basalt runtimes`.

use crate::RuntimesCommand;
use anyhow::Context;
use basalt_functions::{Engine, EngineConfig, Runtimes};
use basalt_lambda::{LEASE_MS, Lambda, LambdaConfig, RETRY_DELAYS_MS};
use futures::FutureExt;
use futures::future::BoxFuture;
use std::sync::Arc;

/// Where Lambda works for servers whose data dir is under /tmp, or that have none.
const SHARED_WORK: &str = "/var/tmp/basalt-lambda";

/// Removes the work dirs of servers that are gone: an ephemeral one's process has exited,
/// a data dir's directory was deleted.
fn sweep_shared_work() {
    for entry in std::fs::read_dir(SHARED_WORK)
        .into_iter()
        .flatten()
        .flatten()
    {
        let Ok(owner) = std::fs::read_to_string(entry.path().join(".owner")) else {
            continue;
        };
        let gone = match owner.strip_prefix("pid:") {
            Some(pid) => !std::path::Path::new("/proc").join(pid).exists(),
            None => !std::path::Path::new(&owner).exists(),
        };
        if gone {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Where a service that runs processes (Lambda, SageMaker) keeps their files: under the data
/// dir (out of the processes' reach but for their own part); an ephemeral server uses a
/// temporary one. A data dir under /tmp would keep functions from getting a /tmp of their
/// own (it is mounted over /tmp), so their part goes to /var/tmp then.
pub fn work_dir(
    cfg: &crate::config::Resolved,
    service: &str,
) -> anyhow::Result<std::path::PathBuf> {
    let shared = std::path::Path::new(SHARED_WORK);
    let dir = match &cfg.data_dir {
        Some(d) if !std::path::absolute(d).is_ok_and(|a| a.starts_with("/tmp")) => d.join(service),
        Some(d) => {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            std::path::absolute(d)
                .unwrap_or_else(|_| d.clone())
                .hash(&mut h);
            shared.join(format!("{:016x}", h.finish())).join(service)
        }
        None => shared
            .join(format!("ephemeral-{}", std::process::id()))
            .join(service),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    if let Some(owned) = dir.parent().filter(|p| p.starts_with(shared)) {
        let owner = match &cfg.data_dir {
            Some(d) => std::path::absolute(d)
                .unwrap_or_else(|_| d.clone())
                .display()
                .to_string(),
            None => format!("pid:{}", std::process::id()),
        };
        let _ = std::fs::write(owned.join(".owner"), owner);
        sweep_shared_work();
    }
    Ok(dir)
}

pub fn build(
    cfg: &crate::config::Resolved,
    store: &basalt_store::Store,
    logs: Arc<basalt_logs::Logs>,
    s3: basalt_s3::BasaltS3,
    endpoint: &str,
) -> anyhow::Result<Arc<Lambda>> {
    let work_dir = work_dir(cfg, "lambda")?;
    // Environments of an earlier run are gone: their directories go too.
    let _ = std::fs::remove_dir_all(work_dir.join("envs"));
    let engine = Engine::new(EngineConfig::new(work_dir));
    engine.start_reaper();
    // Tests shorten AWS's one- and two-minute retry delays.
    let retry_delays_ms = std::env::var("BASALT_LAMBDA_RETRY_DELAYS_MS")
        .ok()
        .and_then(|v| {
            let d: Vec<i64> = v.split(',').filter_map(|x| x.trim().parse().ok()).collect();
            (d.len() == 2).then(|| [d[0], d[1]])
        })
        .unwrap_or(RETRY_DELAYS_MS);
    Ok(Lambda::new(
        store,
        engine,
        logs,
        LambdaConfig {
            endpoint: endpoint.to_owned(),
            // Code from S3 (Code.S3Bucket/S3Key) is read in-process, as the account's own.
            read_object: Some(Arc::new(move |account, bucket, key, version| {
                s3.read_object(account, bucket, key, version).map_err(|e| {
                    basalt_core::AwsError::new(
                        500,
                        "ServiceException",
                        format!("reading the code from S3: {e}"),
                    )
                })
            })),
            retry_delays_ms,
            lease_ms: std::env::var("BASALT_LAMBDA_LEASE_MS")
                .ok()
                .and_then(|v| v.parse().ok())
                .filter(|&ms: &i64| ms >= 100)
                .unwrap_or(LEASE_MS),
        },
    ))
}

/// Serves GetFunction's `Code.Location` URLs (signed, expiring).
pub struct CodeUrls(pub Arc<Lambda>);

impl basalt_gateway::RawHandler for CodeUrls {
    fn handle(
        &self,
        req: http::Request<basalt_gateway::RequestBody>,
    ) -> BoxFuture<'static, http::Response<basalt_gateway::Body>> {
        let lambda = self.0.clone();
        async move {
            let path = req.uri().path().to_owned();
            let query = req.uri().query().unwrap_or_default().to_owned();
            let found = tokio::task::spawn_blocking(move || lambda.code_for_url(&path, &query))
                .await
                .ok()
                .flatten();
            let resp = match found {
                Some(zip) => http::Response::builder()
                    .status(200)
                    .header("content-type", "application/zip")
                    .header("content-length", zip.len())
                    .body(basalt_gateway::full(zip)),
                None => http::Response::builder()
                    .status(403)
                    .header("content-type", "application/xml")
                    .body(basalt_gateway::full(bytes::Bytes::from_static(
                        b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code><Message>Request has expired or the signature does not match</Message></Error>",
                    ))),
            };
            resp.expect("static response")
        }
        .boxed()
    }
}

pub fn runtimes(command: RuntimesCommand) -> anyhow::Result<()> {
    let r = Runtimes::default();
    match command {
        RuntimesCommand::Pull => {
            let installed = r.pull().map_err(|e| anyhow::anyhow!(e))?;
            println!(
                "Lambda runtimes in {}: {}",
                r.dir.display(),
                installed.join(", ")
            );
            let sagemaker = basalt_sagemaker::environments::Environments::new(&r.dir);
            sagemaker.pull().map_err(|e| anyhow::anyhow!(e))?;
            println!("SageMaker environment: {}", sagemaker.dir.display());
        }
        RuntimesCommand::List => {
            println!(
                "runtime directory: {} (BASALT_RUNTIME_DIR)",
                r.dir.display()
            );
            println!("{}", r.describe());
            let sagemaker = basalt_sagemaker::environments::Environments::new(&r.dir);
            println!(
                "sagemaker: {}",
                if sagemaker.installed() {
                    sagemaker.dir.display().to_string()
                } else {
                    "not installed".to_owned()
                }
            );
            println!("isolation: {}", basalt_functions::sandbox::probe());
        }
    }
    Ok(())
}

/// Serves function URLs (`/_basalt/lambda-url/{id}/...`).
pub struct FunctionUrls(pub Arc<Lambda>);

impl basalt_gateway::RawHandler for FunctionUrls {
    fn handle(
        &self,
        req: http::Request<basalt_gateway::RequestBody>,
    ) -> BoxFuture<'static, http::Response<basalt_gateway::Body>> {
        use http_body_util::BodyExt;
        let lambda = self.0.clone();
        async move {
            let rest = req
                .uri()
                .path()
                .strip_prefix(basalt_lambda::URL_PATH)
                .unwrap_or_default();
            let (id, path) = match rest.split_once('/') {
                Some((id, p)) => (id.to_owned(), format!("/{p}")),
                None => (rest.to_owned(), "/".to_owned()),
            };
            let (parts, body) = req.into_parts();
            // Function URLs take at most 6 MB, as Invoke does.
            let body = match http_body_util::Limited::new(body, 6 * 1024 * 1024)
                .collect()
                .await
            {
                Ok(b) => b.to_bytes(),
                Err(_) => {
                    return http::Response::builder()
                        .status(413)
                        .body(basalt_gateway::full(bytes::Bytes::from_static(
                            b"{\"Message\":\"Request Entity Too Large\"}",
                        )))
                        .expect("static response");
                }
            };
            let headers = parts
                .headers
                .iter()
                .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
                .collect();
            let out = lambda
                .serve_url(
                    &id,
                    basalt_lambda::UrlRequest {
                        method: parts.method.to_string(),
                        path,
                        query: parts.uri.query().unwrap_or_default().to_owned(),
                        headers,
                        body,
                        source_ip: "127.0.0.1".into(),
                    },
                )
                .await;
            let mut resp = http::Response::builder().status(out.status);
            for (k, v) in &out.headers {
                resp = resp.header(k, v);
            }
            resp.body(basalt_gateway::full(out.body))
                .unwrap_or_else(|_| {
                    http::Response::builder()
                        .status(502)
                        .body(basalt_gateway::full(bytes::Bytes::from_static(
                            b"{\"Message\":\"Internal Server Error\"}",
                        )))
                        .expect("static response")
                })
        }
        .boxed()
    }
}
