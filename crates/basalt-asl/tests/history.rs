//! History events in GetExecutionHistory's shape: detail members and their fields, ids and
//! previousEventId links (parallel branches each chain from the state that started them).

use basalt_asl::{Context, Effect, Event, Run, parse};
use serde_json::json;

fn ctx() -> Context {
    Context {
        execution_id: "arn:aws:states:us-east-1:123456789012:execution:M:e".into(),
        execution_name: "e".into(),
        start_time: "2024-05-01T10:00:00.000Z".into(),
        role_arn: "arn:aws:iam::123456789012:role/R".into(),
        state_machine_id: "arn:aws:states:us-east-1:123456789012:stateMachine:M".into(),
        state_machine_name: "M".into(),
        redrive_count: 0,
    }
}

#[test]
fn details_members_match_the_api_shapes() {
    let def = parse(r#"{"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:putItem",
        "Parameters": {"TableName": "t"}, "TimeoutSeconds": 30, "Assign": {"x": 1}, "End": true}}}"#)
    .unwrap();
    let (mut run, step) = Run::start(&def, json!({"a": 1}), ctx(), 1_000);
    let h: Vec<_> = step.history.iter().map(|e| e.to_json()).collect();
    assert_eq!(h[0]["type"], "ExecutionStarted");
    assert_eq!(
        h[0]["executionStartedEventDetails"],
        json!({"input": "{\"a\":1}", "inputDetails": {"truncated": false}, "roleArn": "arn:aws:iam::123456789012:role/R"})
    );
    assert_eq!(
        h[1]["stateEnteredEventDetails"],
        json!({"name": "T", "input": "{\"a\":1}", "inputDetails": {"truncated": false}})
    );
    assert_eq!(
        h[2]["taskScheduledEventDetails"],
        json!({"resourceType": "dynamodb", "resource": "putItem", "region": "us-east-1", "parameters": "{\"TableName\":\"t\"}", "timeoutInSeconds": 30})
    );
    assert_eq!(
        h[3]["taskStartedEventDetails"],
        json!({"resourceType": "dynamodb", "resource": "putItem"})
    );
    assert_eq!(h[3]["timestamp"], json!(1.0));
    let Effect::Task {
        task,
        timeout_seconds,
        ..
    } = &step.effects[0]
    else {
        panic!()
    };
    assert_eq!(*timeout_seconds, Some(30));
    let s = run.handle(
        &def,
        Event::TaskSucceeded {
            task: task.clone(),
            output: json!({}),
        },
        2_000,
    );
    let h: Vec<_> = s.history.iter().map(|e| e.to_json()).collect();
    assert_eq!(h[0]["taskSucceededEventDetails"]["output"], "{}");
    assert_eq!(h[1]["type"], "TaskStateExited");
    assert_eq!(
        h[1]["stateExitedEventDetails"]["assignedVariables"],
        json!({"x": "1"})
    );
    assert_eq!(
        h[2]["executionSucceededEventDetails"],
        json!({"output": "{}", "outputDetails": {"truncated": false}})
    );
    for (i, e) in h.iter().enumerate() {
        assert_eq!(e["id"], json!(5 + i as u64));
        assert_eq!(e["previousEventId"], json!(4 + i as u64));
    }
}

#[test]
fn parallel_branches_chain_from_the_started_event() {
    let def = parse(
        r#"{"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true, "Branches": [
        {"StartAt": "A", "States": {"A": {"Type": "Wait", "Seconds": 1, "End": true}}},
        {"StartAt": "B", "States": {"B": {"Type": "Wait", "Seconds": 1, "End": true}}}]}}}"#,
    )
    .unwrap();
    let (_, step) = Run::start(&def, json!({}), ctx(), 0);
    let kinds: Vec<(&str, u64, u64)> = step
        .history
        .iter()
        .map(|e| (e.kind.as_str(), e.id, e.previous_event_id))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("ExecutionStarted", 1, 0),
            ("ParallelStateEntered", 2, 1),
            ("ParallelStateStarted", 3, 2),
            ("WaitStateEntered", 4, 3),
            ("WaitStateEntered", 5, 3)
        ]
    );
}

#[test]
fn map_iteration_details() {
    let def = parse(
        r#"{"StartAt": "M", "States": {"M": {"Type": "Map", "End": true,
        "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}}}}"#,
    )
    .unwrap();
    let (_, step) = Run::start(&def, json!(["x"]), ctx(), 0);
    let h: Vec<_> = step.history.iter().map(|e| e.to_json()).collect();
    assert_eq!(h[2]["mapStateStartedEventDetails"], json!({"length": 1}));
    assert_eq!(
        h[3]["mapIterationStartedEventDetails"],
        json!({"name": "M", "index": 0})
    );
    assert_eq!(
        h[6]["mapIterationSucceededEventDetails"],
        json!({"name": "M", "index": 0})
    );
}
