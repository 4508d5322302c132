//! The service end to end on the memory store: operations through [`Service::call`], fires and
//! invocations by the real workers, targets reached through a registry whose `sqs` records
//! what it is sent (and refuses queues named `missing`).

use crate::{Scheduler, SchedulerConfig};
use basalt_core::{AwsError, Output, RequestContext, Service, ServiceRegistry};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";

#[derive(Default)]
struct Queues {
    /// (queue url, request) of every SendMessage, refused ones included.
    sent: Mutex<Vec<(String, Value)>>,
}

impl Queues {
    fn to(&self, queue: &str) -> Vec<Value> {
        let url = format!("internal/{ACCOUNT}/{queue}");
        self.sent
            .lock()
            .unwrap()
            .iter()
            .filter(|(u, _)| *u == url)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

#[async_trait::async_trait]
impl Service for Queues {
    fn name(&self) -> &'static str {
        "sqs"
    }

    async fn call(&self, _: &RequestContext, op: &str, input: Value) -> Result<Output, AwsError> {
        assert_eq!(op, "SendMessage");
        let url = input["QueueUrl"].as_str().unwrap_or("").to_owned();
        self.sent.lock().unwrap().push((url.clone(), input));
        if url.ends_with("/missing") {
            return Err(AwsError::new(
                400,
                "QueueDoesNotExist",
                "The specified queue does not exist.",
            ));
        }
        Ok(Output::new(json!({"MessageId": "m"})))
    }
}

fn ctx() -> RequestContext {
    RequestContext::internal(ACCOUNT, REGION, "")
}

fn start() -> (Arc<Scheduler>, Arc<Queues>) {
    let config = SchedulerConfig {
        retry_base_ms: 10,
        retry_max_ms: 50,
        lease_ms: 1_000,
        minute_ms: 60_000,
    };
    let s = Scheduler::with_config(Arc::new(basalt_store::MemoryState::default()), config);
    let queues = Arc::new(Queues::default());
    let mut registry = ServiceRegistry::default();
    registry.register(queues.clone());
    registry.register(s.clone());
    s.set_registry(registry);
    s.start_workers();
    (s, queues)
}

fn at_in(secs: i64) -> String {
    let t = chrono::Utc::now() + chrono::Duration::seconds(secs);
    format!("at({})", t.format("%Y-%m-%dT%H:%M:%S"))
}

fn schedule(name: &str, expr: &str, queue: &str, extra: Value) -> Value {
    let mut v = json!({
        "Name": name,
        "ScheduleExpression": expr,
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "Target": {
            "Arn": format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{queue}"),
            "RoleArn": format!("arn:aws:iam::{ACCOUNT}:role/r"),
            "Input": format!("to {queue}"),
        },
    });
    if let (Some(v), Some(extra)) = (v.as_object_mut(), extra.as_object()) {
        for (k, x) in extra {
            if k == "Target" {
                for (tk, tv) in x.as_object().into_iter().flatten() {
                    v["Target"][tk] = tv.clone();
                }
            } else {
                v.insert(k.clone(), x.clone());
            }
        }
    }
    v
}

async fn call(s: &Scheduler, op: &str, input: Value) -> Result<Value, AwsError> {
    s.call(&ctx(), op, input).await.map(|o| o.body)
}

async fn wait_until(timeout_ms: u64, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_millis(timeout_ms);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cond()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_time_schedule_fires_once_then_deletes_itself() {
    let (s, queues) = start();
    let input = schedule(
        "once",
        &at_in(2),
        "q",
        json!({"ActionAfterCompletion": "DELETE"}),
    );
    call(&s, "CreateSchedule", input).await.unwrap();
    assert!(wait_until(6_000, || !queues.to("q").is_empty()).await);
    let sent = queues.to("q");
    assert_eq!(sent[0]["MessageBody"], "to q");
    let mut deleted = false;
    for _ in 0..40 {
        let get = call(&s, "GetSchedule", json!({"Name": "once"})).await;
        if matches!(get, Err(e) if e.code == "ResourceNotFoundException") {
            deleted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(deleted, "the completed one-time schedule was not deleted");
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(queues.to("q").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_retried_then_dead_lettered() {
    let (s, queues) = start();
    let extra = json!({"Target": {
        "RetryPolicy": {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 60},
        "DeadLetterConfig": {"Arn": format!("arn:aws:sqs:{REGION}:{ACCOUNT}:dlq")},
    }});
    call(
        &s,
        "CreateSchedule",
        schedule("dl", &at_in(2), "missing", extra),
    )
    .await
    .unwrap();
    assert!(wait_until(8_000, || !queues.to("dlq").is_empty()).await);
    // The first try and two retries.
    assert_eq!(queues.to("missing").len(), 3);
    let dead = &queues.to("dlq")[0];
    assert_eq!(dead["MessageBody"], "to missing");
    let attr = |k: &str| dead["MessageAttributes"][k]["StringValue"].clone();
    assert_eq!(attr("RETRY_ATTEMPTS"), "2");
    assert_eq!(attr("EXHAUSTED_RETRY_CONDITION"), "MaximumRetryAttempts");
    assert_eq!(attr("ERROR_CODE"), "QueueDoesNotExist");
    assert_eq!(
        attr("SCHEDULE_ARN"),
        format!("arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/default/dl")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_replaces_the_armed_fire_and_disabled_schedules_stay_quiet() {
    let (s, queues) = start();
    call(
        &s,
        "CreateSchedule",
        schedule("u", &at_in(2), "a", json!({})),
    )
    .await
    .unwrap();
    call(
        &s,
        "UpdateSchedule",
        schedule("u", &at_in(3), "b", json!({})),
    )
    .await
    .unwrap();
    call(
        &s,
        "CreateSchedule",
        schedule("off", &at_in(2), "c", json!({"State": "DISABLED"})),
    )
    .await
    .unwrap();
    assert!(wait_until(7_000, || !queues.to("b").is_empty()).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(queues.to("a").is_empty());
    assert!(queues.to("c").is_empty());
    assert_eq!(queues.to("b").len(), 1);
    // Kept (ActionAfterCompletion NONE), with no further fire.
    let got = call(&s, "GetSchedule", json!({"Name": "u"})).await.unwrap();
    assert_eq!(got["State"], "ENABLED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_token_makes_a_retried_create_idempotent() {
    let (s, _) = start();
    let input = schedule("idem", "rate(1 hour)", "q", json!({"ClientToken": "tok-1"}));
    let first = call(&s, "CreateSchedule", input.clone()).await.unwrap();
    let again = call(&s, "CreateSchedule", input).await.unwrap();
    assert_eq!(first, again);
    let other = schedule("idem", "rate(1 hour)", "q", json!({"ClientToken": "tok-2"}));
    let err = call(&s, "CreateSchedule", other).await.unwrap_err();
    assert_eq!(err.code, "ConflictException");
    assert_eq!(err.message, "Schedule idem already exists.");
}
