//! The Lambda service in-process (no HTTP): a `provided.al2023` function whose bootstrap is
//! a shell script speaking the Runtime API with curl, its logs in CloudWatch Logs and its
//! `AWS/Lambda` data points.

use basalt_core::{RequestContext, Service, ServiceRegistry};
use basalt_functions::{Engine, EngineConfig};
use basalt_lambda::{Lambda, LambdaConfig};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use std::io::Write;
use std::sync::Arc;

const BOOTSTRAP: &str = r#"#!/bin/sh
API="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
while true; do
  H="$(mktemp)"
  EVENT="$(curl -sS -D "$H" "$API/invocation/next")"
  ID="$(grep -i '^lambda-runtime-aws-request-id' "$H" | tr -d '\r' | cut -d' ' -f2)"
  echo "handling $EVENT"
  case "$EVENT" in
    *fail*) curl -sS -X POST -d '{"errorMessage":"no","errorType":"Custom"}' "$API/invocation/$ID/error" >/dev/null ;;
    *) curl -sS -X POST -d "{\"fn\":\"$AWS_LAMBDA_FUNCTION_NAME\",\"event\":$EVENT}" "$API/invocation/$ID/response" >/dev/null ;;
  esac
done
"#;

fn package() -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        let opts = zip::write::SimpleFileOptions::default().unix_permissions(0o755);
        z.start_file("bootstrap", opts).unwrap();
        z.write_all(BOOTSTRAP.as_bytes()).unwrap();
        z.finish().unwrap();
    }
    buf.into_inner()
}

struct Fixture {
    lambda: Arc<Lambda>,
    logs: Arc<basalt_logs::Logs>,
    state: Arc<dyn basalt_store::StateStore>,
    ctx: RequestContext,
    _work: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let store = basalt_store::Store::ephemeral();
    let work = tempfile::tempdir_in("/var/tmp")
        .or_else(|_| tempfile::tempdir())
        .unwrap();
    let engine = Engine::new(EngineConfig::new(work.path().to_owned()));
    let logs = basalt_logs::Logs::new(store.state.clone());
    let lambda = Lambda::new(
        &store,
        engine,
        logs.clone(),
        LambdaConfig {
            endpoint: "http://127.0.0.1:1".into(),
            read_object: None,
            retry_delays_ms: basalt_lambda::RETRY_DELAYS_MS,
            lease_ms: basalt_lambda::LEASE_MS,
        },
    );
    let mut registry = ServiceRegistry::default();
    registry.register(Arc::new(basalt_sts::Sts::new(
        basalt_sts::SessionKeys::new(store.state.clone()),
    )));
    registry.register(logs.clone());
    registry.register(lambda.clone());
    lambda.set_registry(registry);
    Fixture {
        lambda,
        logs,
        state: store.state.clone(),
        ctx: RequestContext::internal("000000000000", "us-east-1", "http://127.0.0.1:1"),
        _work: work,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invocations_log_and_publish_metrics() {
    if std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: no curl");
        return;
    }
    let f = fixture();
    let create = f
        .lambda
        .call(
            &f.ctx,
            "CreateFunction",
            json!({
                "FunctionName": "shell",
                "Runtime": "provided.al2023",
                "Role": "arn:aws:iam::000000000000:role/r",
                "Handler": "x",
                "Code": {"ZipFile": B64.encode(package())},
            }),
        )
        .await
        .unwrap();
    assert_eq!(create.body["State"], "Pending");
    for payload in [r#"{"a":1}"#, r#""fail""#] {
        let out = f
            .lambda
            .call(
                &f.ctx,
                "Invoke",
                json!({"FunctionName": "shell", "Payload": B64.encode(payload)}),
            )
            .await
            .unwrap();
        let body: Value =
            serde_json::from_slice(&B64.decode(out.body["Payload"].as_str().unwrap()).unwrap())
                .unwrap();
        if payload.contains("fail") {
            assert_eq!(out.body["FunctionError"], "Unhandled");
            assert_eq!(body["errorType"], "Custom");
        } else {
            assert_eq!(body, json!({"fn": "shell", "event": {"a": 1}}));
        }
    }
    // Logs and data points are written just after the answer.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let metrics = basalt_store::metrics::Metrics::new(f.state.clone());
    loop {
        let invocations = metrics
            .points("000000000000", "us-east-1", "AWS/Lambda", "Invocations")
            .unwrap();
        let logged = f
            .logs
            .call(
                &f.ctx,
                "FilterLogEvents",
                json!({"logGroupName": "/aws/lambda/shell", "filterPattern": "handling"}),
            )
            .await
            .map(|o| o.body["events"].as_array().map_or(0, Vec::len))
            .unwrap_or(0);
        if (invocations.len() == 2 && logged == 2) || std::time::Instant::now() > deadline {
            assert_eq!(invocations.len(), 2);
            assert_eq!(invocations[0].dimensions["FunctionName"], "shell");
            assert_eq!(logged, 2);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let errors: f64 = metrics
        .points("000000000000", "us-east-1", "AWS/Lambda", "Errors")
        .unwrap()
        .iter()
        .map(|p| p.value)
        .sum();
    assert_eq!(errors, 1.0);
    let durations = metrics
        .points("000000000000", "us-east-1", "AWS/Lambda", "Duration")
        .unwrap();
    assert!(
        durations
            .iter()
            .all(|p| p.value > 0.0 && p.unit == "Milliseconds")
    );

    // Reserved concurrency 0 throttles, and says so in the metrics.
    f.lambda
        .call(
            &f.ctx,
            "PutFunctionConcurrency",
            json!({"FunctionName": "shell", "ReservedConcurrentExecutions": 0}),
        )
        .await
        .unwrap();
    let err = f
        .lambda
        .call(
            &f.ctx,
            "Invoke",
            json!({"FunctionName": "shell", "Payload": B64.encode("{}")}),
        )
        .await
        .err()
        .unwrap();
    assert_eq!(
        (err.status, err.code.as_str()),
        (429, "TooManyRequestsException")
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        metrics
            .points("000000000000", "us-east-1", "AWS/Lambda", "Throttles")
            .unwrap()
            .len(),
        1
    );
}
