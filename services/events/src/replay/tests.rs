//! Archives and replays against the memory store, driving the replay worker's steps by hand
//! so that a node's death between claim and commit can be staged exactly.

use super::*;
use crate::model::Delivery;
use basalt_store::MemoryState;
use std::collections::HashSet;

const ACCOUNT: &str = "000000000000";
const REGION: &str = "us-east-1";

fn setup(page: usize) -> (Arc<Events>, RequestContext) {
    let events = Events::new(Arc::new(MemoryState::default()));
    let events = Arc::into_inner(events).map(|mut e| {
        e.config.replay_page = page;
        e.config.lease_ms = 1_000;
        Arc::new(e)
    });
    let events = events.expect("sole owner");
    let ctx = RequestContext::internal(ACCOUNT, REGION, "");
    (events, ctx)
}

fn call(
    f: fn(&Events, &RequestContext, &Value) -> Result<Value, AwsError>,
    e: &Events,
    ctx: &RequestContext,
    input: Value,
) -> Value {
    f(e, ctx, &input).unwrap_or_else(|err| panic!("{}: {}", err.code, err.message))
}

/// A bus `b` with rule `r` (source `app`, one SQS target) and archive `a` of source `app`.
fn bus_with_archive(events: &Events, ctx: &RequestContext) {
    call(crate::buses::create, events, ctx, json!({"Name": "b"}));
    call(
        crate::rules::put,
        events,
        ctx,
        json!({"Name": "r", "EventBusName": "b", "EventPattern": "{\"source\":[\"app\"]}"}),
    );
    call(
        crate::targets::put,
        events,
        ctx,
        json!({"Rule": "r", "EventBusName": "b",
               "Targets": [{"Id": "q", "Arn": format!("arn:aws:sqs:{REGION}:{ACCOUNT}:q")}]}),
    );
    call(
        archives::create,
        events,
        ctx,
        json!({"ArchiveName": "a", "EventSourceArn": bus_arn(ACCOUNT, REGION, "b"),
               "EventPattern": "{\"source\":[\"app\"]}"}),
    );
}

fn put(events: &Events, ctx: &RequestContext, source: &str, n: usize) -> Vec<String> {
    let entries: Vec<Value> = (0..n)
        .map(|i| json!({"EventBusName": "b", "Source": source, "DetailType": "t", "Detail": format!("{{\"i\":{i}}}")}))
        .collect();
    let out = call(
        crate::ingest::put_events,
        events,
        ctx,
        json!({"Entries": entries}),
    );
    out["Entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["EventId"].as_str().unwrap().to_owned())
        .collect()
}

/// Every delivery queued so far, taken off the queue.
fn take_deliveries(events: &Events) -> Vec<Delivery> {
    let claims = events
        .state
        .claim(crate::deliver::QUEUE, i64::MAX / 2, 1_000, 10_000)
        .unwrap();
    claims
        .iter()
        .map(|c| {
            events.state.complete(c, &[]).unwrap();
            serde_json::from_slice(&c.payload).unwrap()
        })
        .collect()
}

fn archived_ids(events: &Events, archive_id: &str) -> HashSet<String> {
    events
        .state
        .scan(archives::EVENTS, &format!("{archive_id}/"), None, 10_000)
        .unwrap()
        .into_iter()
        .map(|(_, v)| {
            let e: Value = serde_json::from_slice(&v).unwrap();
            e["id"].as_str().unwrap().to_owned()
        })
        .collect()
}

fn start_replay(events: &Events, ctx: &RequestContext, name: &str, filter: Option<Vec<String>>) {
    let mut dest = json!({"Arn": bus_arn(ACCOUNT, REGION, "b")});
    if let Some(f) = filter {
        dest["FilterArns"] = json!(f);
    }
    call(
        start,
        events,
        ctx,
        json!({"ReplayName": name, "EventSourceArn": archives::archive_arn(ACCOUNT, REGION, "a"),
               "EventStartTime": 0.0, "EventEndTime": (now_ms() / 1000 + 60) as f64,
               "Destination": dest}),
    );
}

fn state_of(events: &Events, ctx: &RequestContext, name: &str) -> Value {
    call(describe, events, ctx, json!({"ReplayName": name}))
}

#[test]
fn accepted_events_are_archived_with_their_deliveries_and_only_when_they_match() {
    let (events, ctx) = setup(100);
    bus_with_archive(&events, &ctx);
    let ids = put(&events, &ctx, "app", 3);
    put(&events, &ctx, "other", 2);
    let a = archives::must_load(&events, &ctx, "a").unwrap();
    assert_eq!(archived_ids(&events, &a.id), ids.into_iter().collect());
    assert_eq!(take_deliveries(&events).len(), 3);
    let d = call(
        archives::describe,
        &events,
        &ctx,
        json!({"ArchiveName": "a"}),
    );
    assert_eq!(d["EventCount"], 3);
    assert!(d["SizeBytes"].as_i64().unwrap() > 0);
}

#[test]
fn the_archive_rule_is_managed_and_refuses_user_changes() {
    let (events, ctx) = setup(100);
    bus_with_archive(&events, &ctx);
    let rule = crate::rules::must_load(&events, &ctx, "b", "Events-Archive-a").unwrap();
    assert_eq!(rule.managed_by.as_deref(), Some(archives::MANAGED_BY));
    let pattern: Value = serde_json::from_str(rule.pattern.as_deref().unwrap()).unwrap();
    assert_eq!(
        pattern,
        json!({"source": ["app"], "replay-name": [{"exists": false}]})
    );
    let err = crate::rules::set_state(
        &events,
        &ctx,
        &json!({"Name": "Events-Archive-a", "EventBusName": "b"}),
        "DISABLED",
    )
    .unwrap_err();
    assert_eq!(err.code, "ManagedRuleException");
    call(archives::delete, &events, &ctx, json!({"ArchiveName": "a"}));
    assert!(
        crate::rules::load(&events, &ctx, "b", "Events-Archive-a")
            .unwrap()
            .is_none()
    );
}

#[test]
fn a_replay_resumes_from_its_checkpoint_after_a_node_dies_mid_page() {
    let (events, ctx) = setup(2);
    bus_with_archive(&events, &ctx);
    let ids: HashSet<String> = put(&events, &ctx, "app", 5).into_iter().collect();
    take_deliveries(&events);
    start_replay(&events, &ctx, "rp", None);
    assert_eq!(state_of(&events, &ctx, "rp")["State"], "STARTING");
    let now = events.state.clock_ms().unwrap();

    // Node 1 replays the first page.
    let c1 = events.state.claim(QUEUE, now, 1_000, 1).unwrap();
    assert!(matches!(step(&events, &c1[0]), Ok(true)));
    assert_eq!(state_of(&events, &ctx, "rp")["State"], "RUNNING");
    // Node 2 claims the next page and dies before committing.
    let dead = events.state.claim(QUEUE, now, 1_000, 1).unwrap();
    assert_eq!(dead.len(), 1);
    // Its lease runs out: node 3 takes the item over and replays the same page.
    let c3 = events.state.claim(QUEUE, now + 2_000, 1_000, 1).unwrap();
    assert_eq!(c3.len(), 1);
    assert!(matches!(step(&events, &c3[0]), Ok(true)));
    // A late commit by the dead node is refused, and changes nothing.
    assert!(matches!(step(&events, &dead[0]), Err(StepError::Conflict)));
    // The rest, page by page.
    for _ in 0..10 {
        let c = events.state.claim(QUEUE, now + 10_000, 1_000, 1).unwrap();
        let Some(c) = c.first() else { break };
        assert!(step(&events, c).is_ok());
    }
    let d = state_of(&events, &ctx, "rp");
    assert_eq!(d["State"], "COMPLETED");
    assert!(d.get("ReplayEndTime").is_some() && d.get("EventLastReplayedTime").is_some());
    let delivered = take_deliveries(&events);
    let got: Vec<String> = delivered
        .iter()
        .map(|d| d.event["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(got.len(), 5, "each archived event replayed exactly once");
    assert_eq!(got.into_iter().collect::<HashSet<_>>(), ids);
    assert!(delivered.iter().all(|d| d.event["replay-name"] == "rp"));
    // Replayed events are not archived again.
    let a = archives::must_load(&events, &ctx, "a").unwrap();
    assert_eq!(archived_ids(&events, &a.id), ids);
}

#[test]
fn filter_arns_limit_a_replay_to_the_rules_named() {
    let (events, ctx) = setup(100);
    bus_with_archive(&events, &ctx);
    call(
        crate::rules::put,
        &events,
        &ctx,
        json!({"Name": "r2", "EventBusName": "b", "EventPattern": "{\"source\":[\"app\"]}"}),
    );
    call(
        crate::targets::put,
        &events,
        &ctx,
        json!({"Rule": "r2", "EventBusName": "b",
               "Targets": [{"Id": "q", "Arn": format!("arn:aws:sqs:{REGION}:{ACCOUNT}:q2")}]}),
    );
    put(&events, &ctx, "app", 2);
    assert_eq!(take_deliveries(&events).len(), 4);
    let only = crate::model::rule_arn(ACCOUNT, REGION, "b", "r2");
    start_replay(&events, &ctx, "rp", Some(vec![only.clone()]));
    let now = events.state.clock_ms().unwrap();
    let c = events.state.claim(QUEUE, now, 1_000, 1).unwrap();
    assert!(step(&events, &c[0]).is_ok());
    let delivered = take_deliveries(&events);
    assert_eq!(delivered.len(), 2);
    assert!(delivered.iter().all(|d| d.rule_arn == only));
}

#[test]
fn a_cancel_ends_the_replay_at_its_next_page() {
    let (events, ctx) = setup(1);
    bus_with_archive(&events, &ctx);
    put(&events, &ctx, "app", 3);
    take_deliveries(&events);
    start_replay(&events, &ctx, "rp", None);
    let now = events.state.clock_ms().unwrap();
    let c = events.state.claim(QUEUE, now, 1_000, 1).unwrap();
    assert!(step(&events, &c[0]).is_ok());
    let c = events.state.claim(QUEUE, now, 1_000, 1).unwrap();
    let out = call(cancel, &events, &ctx, json!({"ReplayName": "rp"}));
    assert_eq!(out["State"], "CANCELLING");
    // The claim taken before the cancel replays nothing more: it ends the replay.
    assert!(matches!(step(&events, &c[0]), Ok(false)));
    assert_eq!(state_of(&events, &ctx, "rp")["State"], "CANCELLED");
    assert_eq!(
        take_deliveries(&events).len(),
        1,
        "only the page before the cancel"
    );
    let err = cancel(&events, &ctx, &json!({"ReplayName": "rp"})).unwrap_err();
    assert_eq!(err.code, "IllegalStatusException");
    assert!(
        events
            .state
            .claim(QUEUE, now + 60_000, 1_000, 1)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn retention_drops_events_older_than_the_archive_keeps() {
    let (events, ctx) = setup(100);
    bus_with_archive(&events, &ctx);
    call(
        archives::update,
        &events,
        &ctx,
        json!({"ArchiveName": "a", "RetentionDays": 1}),
    );
    let old = (now_ms() / 1000 - 3 * 86_400) as f64;
    let entries = json!({"Entries": [
        {"EventBusName": "b", "Source": "app", "DetailType": "t", "Detail": "{}", "Time": old},
        {"EventBusName": "b", "Source": "app", "DetailType": "t", "Detail": "{}"},
    ]});
    let out = call(crate::ingest::put_events, &events, &ctx, entries);
    let fresh = out["Entries"][1]["EventId"].as_str().unwrap().to_owned();
    let a = archives::must_load(&events, &ctx, "a").unwrap();
    assert_eq!(archived_ids(&events, &a.id).len(), 2);
    assert!(archives::upkeep_round(&events) >= 1);
    assert_eq!(archived_ids(&events, &a.id), HashSet::from([fresh]));
}

#[test]
fn at_most_ten_replays_are_active_at_once() {
    let (events, ctx) = setup(100);
    bus_with_archive(&events, &ctx);
    for i in 0..MAX_ACTIVE {
        start_replay(&events, &ctx, &format!("rp{i}"), None);
    }
    let input = json!({"ReplayName": "one-more", "EventSourceArn": archives::archive_arn(ACCOUNT, REGION, "a"),
        "EventStartTime": 0.0, "EventEndTime": 1.0, "Destination": {"Arn": bus_arn(ACCOUNT, REGION, "b")}});
    assert_eq!(
        start(&events, &ctx, &input).unwrap_err().code,
        "LimitExceededException"
    );
    // One ends: another may start.
    let now = events.state.clock_ms().unwrap();
    let c = events.state.claim(QUEUE, now, 1_000, 1).unwrap();
    assert!(step(&events, &c[0]).is_ok());
    assert!(start(&events, &ctx, &input).is_ok());
}
