//! Destinations and dead-letter queues of asynchronous invocations, in-process: a shell
//! function, and a stand-in SQS that records what it is sent (and refuses the first sends
//! when asked, to show that a destination's record waits on the leases until it is taken).

use basalt_core::{AwsError, Output, RequestContext, Service, ServiceRegistry};
use basalt_functions::{Engine, EngineConfig};
use basalt_lambda::{Lambda, LambdaConfig};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use parking_lot::Mutex;
use serde_json::{Value, json};
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

const BOOTSTRAP: &str = r#"#!/bin/sh
API="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
while true; do
  H="$(mktemp)"
  EVENT="$(curl -sS -D "$H" "$API/invocation/next")"
  ID="$(grep -i '^lambda-runtime-aws-request-id' "$H" | tr -d '\r' | cut -d' ' -f2)"
  case "$EVENT" in
    *fail*) curl -sS -X POST -d '{"errorMessage":"no","errorType":"Custom"}' "$API/invocation/$ID/error" >/dev/null ;;
    *) curl -sS -X POST -d "{\"event\":$EVENT}" "$API/invocation/$ID/response" >/dev/null ;;
  esac
done
"#;

const ACCOUNT: &str = "000000000000";
const REGION: &str = "us-east-1";

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

/// A stand-in SQS: keeps every SendMessage, refusing the first `refuse` of them.
#[derive(Default)]
struct FakeSqs {
    sent: Mutex<Vec<Value>>,
    refuse: Mutex<u32>,
}

#[async_trait::async_trait]
impl Service for FakeSqs {
    fn name(&self) -> &'static str {
        "sqs"
    }

    async fn call(
        &self,
        _ctx: &RequestContext,
        operation: &str,
        input: Value,
    ) -> Result<Output, AwsError> {
        assert_eq!(operation, "SendMessage");
        {
            let mut refuse = self.refuse.lock();
            if *refuse > 0 {
                *refuse -= 1;
                return Err(AwsError::new(503, "ServiceUnavailable", "try later"));
            }
        }
        self.sent.lock().push(input);
        Ok(Output::new(json!({"MessageId": "m"})))
    }
}

struct Fixture {
    lambda: Arc<Lambda>,
    sqs: Arc<FakeSqs>,
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
            retry_delays_ms: [50, 50],
            lease_ms: 3000,
        },
    );
    let sqs = Arc::new(FakeSqs::default());
    let mut registry = ServiceRegistry::default();
    registry.register(Arc::new(basalt_sts::Sts::new(
        basalt_sts::SessionKeys::new(store.state.clone()),
    )));
    registry.register(logs);
    registry.register(lambda.clone());
    registry.register(sqs.clone());
    lambda.set_registry(registry);
    lambda.start_workers();
    Fixture {
        lambda,
        sqs,
        ctx: RequestContext::internal(ACCOUNT, REGION, "http://127.0.0.1:1"),
        _work: work,
    }
}

fn have_curl() -> bool {
    std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_ok()
}

async fn call(f: &Fixture, op: &str, input: Value) -> Value {
    f.lambda.call(&f.ctx, op, input).await.unwrap().body
}

async fn create(f: &Fixture, name: &str, extra: Value) {
    let mut input = json!({
        "FunctionName": name,
        "Runtime": "provided.al2023",
        "Role": "arn:aws:iam::000000000000:role/r",
        "Handler": "x",
        "Code": {"ZipFile": B64.encode(package())},
    });
    for (k, v) in extra.as_object().unwrap() {
        input[k] = v.clone();
    }
    call(f, "CreateFunction", input).await;
}

async fn fire(f: &Fixture, name: &str, payload: &str) {
    let out = call(
        f,
        "Invoke",
        json!({"FunctionName": name, "InvocationType": "Event", "Payload": B64.encode(payload)}),
    )
    .await;
    assert_eq!(out["StatusCode"], 202);
}

/// The messages sent so far, once there are `n` (or after 20 s).
async fn sent(f: &Fixture, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = f.sqs.sent.lock().clone();
        if got.len() >= n || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn queue_arn(name: &str) -> String {
    format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{name}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_and_failure_records_and_the_dead_letter_queue() {
    if !have_curl() {
        eprintln!("skipped: no curl");
        return;
    }
    let f = fixture();
    create(&f, "dest", json!({})).await;
    call(
        &f,
        "PutFunctionEventInvokeConfig",
        json!({"FunctionName": "dest", "MaximumRetryAttempts": 1, "DestinationConfig": {
            "OnSuccess": {"Destination": queue_arn("ok")},
            "OnFailure": {"Destination": queue_arn("bad")},
        }}),
    )
    .await;
    fire(&f, "dest", r#"{"a":1}"#).await;
    let got = sent(&f, 1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["QueueUrl"], format!("internal/{ACCOUNT}/ok"));
    let rec: Value = serde_json::from_str(got[0]["MessageBody"].as_str().unwrap()).unwrap();
    assert_eq!(rec["requestContext"]["condition"], "Success");
    assert_eq!(
        rec["requestContext"]["functionArn"],
        format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:dest:$LATEST")
    );
    assert_eq!(rec["requestPayload"], json!({"a": 1}));
    assert_eq!(rec["responsePayload"], json!({"event": {"a": 1}}));

    // One retry, then the failure record.
    fire(&f, "dest", r#"{"fail":true}"#).await;
    let got = sent(&f, 2).await;
    assert_eq!(got.len(), 2);
    assert_eq!(got[1]["QueueUrl"], format!("internal/{ACCOUNT}/bad"));
    let rec: Value = serde_json::from_str(got[1]["MessageBody"].as_str().unwrap()).unwrap();
    assert_eq!(rec["requestContext"]["condition"], "RetriesExhausted");
    assert_eq!(rec["requestContext"]["approximateInvokeCount"], 2);
    assert_eq!(rec["responseContext"]["functionError"], "Unhandled");
    assert_eq!(rec["responsePayload"]["errorType"], "Custom");

    // Without an OnFailure destination the event goes to the dead-letter queue.
    create(
        &f,
        "dlq",
        json!({"DeadLetterConfig": {"TargetArn": queue_arn("dead")}}),
    )
    .await;
    call(
        &f,
        "PutFunctionEventInvokeConfig",
        json!({"FunctionName": "dlq", "MaximumRetryAttempts": 0}),
    )
    .await;
    fire(&f, "dlq", r#"{"fail":"yes"}"#).await;
    let got = sent(&f, 3).await;
    assert_eq!(got.len(), 3);
    assert_eq!(got[2]["QueueUrl"], format!("internal/{ACCOUNT}/dead"));
    assert_eq!(got[2]["MessageBody"], r#"{"fail":"yes"}"#);
    let attrs = &got[2]["MessageAttributes"];
    assert_eq!(
        attrs["ErrorCode"],
        json!({"DataType": "Number", "StringValue": "200"})
    );
    assert_eq!(attrs["ErrorMessage"]["StringValue"], "no");
    assert!(attrs["RequestID"]["StringValue"].as_str().is_some());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(f.sqs.sent.lock().len(), 3, "each outcome is sent once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_send_is_kept_and_retried() {
    if !have_curl() {
        eprintln!("skipped: no curl");
        return;
    }
    let f = fixture();
    *f.sqs.refuse.lock() = 2;
    create(&f, "later", json!({})).await;
    call(
        &f,
        "PutFunctionEventInvokeConfig",
        json!({"FunctionName": "later", "DestinationConfig": {
            "OnSuccess": {"Destination": queue_arn("ok")},
        }}),
    )
    .await;
    fire(&f, "later", r#"{"b":2}"#).await;
    let got = sent(&f, 1).await;
    assert_eq!(
        got.len(),
        1,
        "delivered after two refusals (1 s and 2 s later)"
    );
    assert_eq!(*f.sqs.refuse.lock(), 0);
    let rec: Value = serde_json::from_str(got[0]["MessageBody"].as_str().unwrap()).unwrap();
    assert_eq!(rec["requestPayload"], json!({"b": 2}));
}

#[tokio::test]
async fn destinations_are_validated() {
    let f = fixture();
    create(&f, "v", json!({})).await;
    let err = f
        .lambda
        .call(
            &f.ctx,
            "PutFunctionEventInvokeConfig",
            json!({"FunctionName": "v", "DestinationConfig": {
                "OnFailure": {"Destination": "arn:aws:s3:::bucket"},
            }}),
        )
        .await
        .err()
        .unwrap();
    assert_eq!(err.code, "InvalidParameterValueException");
    let err = f
        .lambda
        .call(
            &f.ctx,
            "UpdateFunctionConfiguration",
            json!({"FunctionName": "v", "DeadLetterConfig": {
                "TargetArn": "arn:aws:lambda:us-east-1:000000000000:function:x",
            }}),
        )
        .await
        .err()
        .unwrap();
    assert_eq!(err.code, "InvalidParameterValueException");
}
