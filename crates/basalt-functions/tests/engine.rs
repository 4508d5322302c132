//! The engine against real runtimes: a shell `bootstrap` speaking the Runtime API with curl,
//! and (when `basalt runtimes pull` has run) Python through awslambdaric.

use basalt_functions::{Engine, EngineConfig, EnvSpec, Invocation, Runtimes};
use bytes::Bytes;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

fn spec(
    task_root: &Path,
    runtime: &str,
    handler: &str,
    timeout_ms: u64,
    memory_mb: u32,
) -> Arc<EnvSpec> {
    Arc::new(EnvSpec {
        key: format!("{}:{runtime}:{handler}", task_root.display()),
        concurrency_key: task_root.display().to_string(),
        runtime: runtime.into(),
        handler: handler.into(),
        task_root: task_root.to_owned(),
        opt_dir: None,
        memory_mb,
        ephemeral_mb: 512,
        timeout: Duration::from_millis(timeout_ms),
        vars: vec![("AWS_REGION".into(), "us-east-1".into())],
        version: "$LATEST".into(),
    })
}

fn inv(payload: &str) -> Invocation {
    Invocation {
        request_id: uuid::Uuid::new_v4().to_string(),
        payload: Bytes::copy_from_slice(payload.as_bytes()),
        invoked_arn: "arn:aws:lambda:us-east-1:000000000000:function:f".into(),
        client_context: None,
        trace_id: "Root=1-00000000-000000000000000000000000".into(),
    }
}

/// Outside /tmp, so that environments get a /tmp of their own (see `env.rs`).
fn scratch() -> &'static Path {
    let p = Path::new("/var/tmp");
    if p.is_dir() { p } else { Path::new("/tmp") }
}

fn engine(work: &Path) -> Arc<Engine> {
    let mut cfg = EngineConfig::new(work.to_owned());
    cfg.runtimes = Runtimes::default();
    Engine::new(cfg)
}

const SHELL_BOOTSTRAP: &str = r#"#!/bin/sh
set -eu
API="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
COUNT=0
echo "init $_HANDLER"
while true; do
  HEADERS=$(mktemp)
  EVENT=$(curl -sS -D "$HEADERS" "$API/invocation/next")
  ID=$(grep -i lambda-runtime-aws-request-id "$HEADERS" | tr -d '\r' | cut -d' ' -f2)
  COUNT=$((COUNT + 1))
  echo "got $EVENT"
  case "$EVENT" in
    *sleep*) sleep 7 ;;
    *fail*) curl -sS -X POST -H "Lambda-Runtime-Function-Error-Type: Custom.Failure" \
              -d '{"errorMessage":"asked to fail","errorType":"Custom.Failure"}' "$API/invocation/$ID/error" >/dev/null; continue ;;
    *exit*) exit 3 ;;
    *secret*) RESULT=$(cat "$SECRET" 2>&1 | tr -d '\n"'); printf '%s' "\"$RESULT\"" > "$TMPDIR/r";
              curl -sS -X POST --data-binary @"$TMPDIR/r" "$API/invocation/$ID/response" >/dev/null; continue ;;
  esac
  curl -sS -X POST -d "{\"count\":$COUNT,\"event\":$EVENT}" "$API/invocation/$ID/response" >/dev/null
done
"#;

fn shell_function(dir: &Path) -> std::path::PathBuf {
    let task = dir.join("task");
    std::fs::create_dir_all(&task).unwrap();
    std::fs::write(task.join("bootstrap"), SHELL_BOOTSTRAP).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        task.join("bootstrap"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    task
}

fn body(o: &basalt_functions::Outcome) -> serde_json::Value {
    match &o.result {
        Ok(b) => serde_json::from_slice(b).unwrap(),
        Err(e) => panic!(
            "function error {}: {}",
            e.error_type,
            String::from_utf8_lossy(&e.body)
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shell_bootstrap_is_warm_logs_and_fails_as_aws_does() {
    if std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: no curl");
        return;
    }
    let dir = tempfile::tempdir_in(scratch()).unwrap();
    let task = shell_function(dir.path());
    let e = engine(&dir.path().join("work"));
    // Five seconds: a bash-and-curl invocation takes more than two on a loaded 2-core
    // machine, and the test is about timing out, not about being fast.
    let s = spec(&task, "provided.al2023", "my.handler", 5000, 128);

    let first = e.invoke(&s, &inv(r#"{"n":1}"#), None).await.unwrap();
    assert_eq!(body(&first)["count"], 1);
    assert!(
        first.init_duration.is_some(),
        "a cold start has an init duration"
    );
    let lines: Vec<&str> = first.logs.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(lines[0], "init my.handler", "{lines:?}");
    assert!(lines[1].starts_with("START RequestId: ") && lines[1].ends_with("Version: $LATEST"));
    assert_eq!(lines[2], r#"got {"n":1}"#);
    assert!(lines[3].starts_with("END RequestId: "));
    assert!(lines[4].starts_with("REPORT RequestId: ") && lines[4].contains("Init Duration: "));

    // Warm: the same process counts on.
    let second = e.invoke(&s, &inv(r#"{"n":2}"#), None).await.unwrap();
    assert_eq!(body(&second)["count"], 2);
    assert!(second.init_duration.is_none());
    assert_eq!(e.idle(), 1);

    let failed = e.invoke(&s, &inv(r#""fail""#), None).await.unwrap();
    let err = failed.result.unwrap_err();
    assert_eq!(err.error_type, "Custom.Failure");
    // A handled error keeps the environment.
    let third = e.invoke(&s, &inv("3"), None).await.unwrap();
    assert_eq!(body(&third)["count"], 4);

    let timed_out = e.invoke(&s, &inv(r#""sleep""#), None).await.unwrap();
    let err = timed_out.result.unwrap_err();
    assert_eq!(err.error_type, "Sandbox.Timedout");
    let msg: serde_json::Value = serde_json::from_slice(&err.body).unwrap();
    assert!(
        msg["errorMessage"]
            .as_str()
            .unwrap()
            .ends_with("Task timed out after 5.00 seconds")
    );
    assert!(
        timed_out
            .logs
            .iter()
            .any(|(_, l)| l.contains("Task timed out after 5.00 seconds"))
    );
    // The timed-out environment is gone: a new one starts counting at 1.
    let fresh = e.invoke(&s, &inv("5"), None).await.unwrap();
    assert_eq!(body(&fresh)["count"], 1);

    let exited = e.invoke(&s, &inv(r#""exit""#), None).await.unwrap();
    let err = exited.result.unwrap_err();
    assert_eq!(err.error_type, "Runtime.ExitError");
    assert!(String::from_utf8_lossy(&err.body).contains("exit status 3"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_hides_other_files_and_limits_concurrency() {
    if std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: no curl");
        return;
    }
    let dir = tempfile::tempdir_in(scratch()).unwrap();
    let task = shell_function(dir.path());
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, "top secret").unwrap();
    let e = engine(&dir.path().join("work"));
    let mut s = (*spec(&task, "provided.al2023", "h", 10_000, 128)).clone();
    s.vars.push(("SECRET".into(), secret.display().to_string()));
    let s = Arc::new(s);
    let out = e.invoke(&s, &inv(r#""secret""#), None).await.unwrap();
    let read = body(&out);
    if e.isolation().starts_with("landlock") {
        assert!(
            read.as_str().unwrap().contains("Permission denied"),
            "{read}"
        );
    } else {
        eprintln!("no Landlock on this kernel: isolation not checked");
    }

    // Two at once with a limit of one: the second is throttled.
    let slow = {
        let (e, s) = (e.clone(), s.clone());
        tokio::spawn(async move { e.invoke(&s, &inv(r#""sleep""#), Some(1)).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(matches!(
        e.invoke(&s, &inv("1"), Some(1)).await,
        Err(basalt_functions::EngineError::Throttled)
    ));
    assert_eq!(e.running(&s.concurrency_key), 1);
    slow.await.unwrap().unwrap();
    assert_eq!(e.running(&s.concurrency_key), 0);
}

fn python_installed() -> bool {
    let ok = !Runtimes::default().pythons().is_empty();
    if !ok {
        eprintln!("skipped: no Python runtime (basalt runtimes pull)");
    }
    ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_handlers_keep_module_state_and_report_errors() {
    if !python_installed() {
        return;
    }
    let dir = tempfile::tempdir_in(scratch()).unwrap();
    let task = dir.path().join("task");
    std::fs::create_dir_all(&task).unwrap();
    std::fs::write(
        task.join("index.py"),
        r#"
import os
CALLS = []
print("loading")

def handler(event, context):
    CALLS.append(event)
    print("call", len(CALLS))
    if event == "boom":
        raise ValueError("boom!")
    if event == "big":
        x = bytearray(400 * 1024 * 1024)
        return len(x)
    return {"calls": len(CALLS), "request": context.aws_request_id,
            "arn": context.invoked_function_arn, "left": context.get_remaining_time_in_millis(),
            "tmp": os.environ["TMPDIR"]}
"#,
    )
    .unwrap();
    std::fs::write(task.join("broken.py"), "import not_a_module\n").unwrap();
    let e = engine(&dir.path().join("work"));
    let s = spec(&task, "python3.12", "index.handler", 3000, 128);
    let i = inv("{}");
    let first = e.invoke(&s, &i, None).await.unwrap();
    let b = body(&first);
    assert_eq!(b["calls"], 1);
    assert_eq!(b["request"], i.request_id.as_str());
    assert!(b["left"].as_i64().unwrap() > 2000);
    assert!(first.logs.iter().any(|(_, l)| l == "loading"));
    assert!(
        first.logs.iter().any(|(_, l)| l == "call 1"),
        "{:?}",
        first.logs
    );
    assert_eq!(
        body(&e.invoke(&s, &inv("{}"), None).await.unwrap())["calls"],
        2
    );

    let err = e
        .invoke(&s, &inv(r#""boom""#), None)
        .await
        .unwrap()
        .result
        .unwrap_err();
    assert_eq!(err.error_type, "ValueError");
    let doc: serde_json::Value = serde_json::from_slice(&err.body).unwrap();
    assert_eq!(doc["errorMessage"], "boom!");
    assert!(doc["stackTrace"].is_array());

    let oom = e.invoke(&s, &inv(r#""big""#), None).await.unwrap();
    assert_eq!(oom.result.unwrap_err().error_type, "Runtime.OutOfMemory");

    let broken = spec(&task, "python3.12", "broken.handler", 3000, 128);
    let err = e
        .invoke(&broken, &inv("{}"), None)
        .await
        .unwrap()
        .result
        .unwrap_err();
    assert_eq!(err.error_type, "Runtime.ImportModuleError");
}
