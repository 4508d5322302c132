//! TestState: statuses (SUCCEEDED, FAILED, RETRIABLE, CAUGHT_ERROR), nextState, the
//! inspection data, and the task a state would run when no result is given.
//! <https://docs.aws.amazon.com/step-functions/latest/dg/test-state-isolation.html>

use basalt_asl::{Context, Effect, test_state};
use serde_json::json;

fn ctx() -> Context {
    Context {
        execution_id: "arn:aws:states:us-east-1:1:execution:M:e".into(),
        execution_name: "e".into(),
        start_time: "2024-05-01T10:00:00.000Z".into(),
        role_arn: "r".into(),
        state_machine_id: "arn:aws:states:us-east-1:1:stateMachine:M".into(),
        state_machine_name: "M".into(),
        redrive_count: 0,
    }
}

const TASK: &str = r#"{"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "InputPath": "$.in",
  "Parameters": {"FunctionName": "f", "Payload.$": "$"}, "ResultSelector": {"p.$": "$.Payload"},
  "ResultPath": "$.out", "Next": "After"}"#;

#[test]
fn succeeded_with_inspection_data() {
    let out = test_state(
        TASK,
        json!({"in": {"a": 1}}),
        ctx(),
        Some(Ok(json!({"Payload": 5}))),
        0,
    )
    .unwrap();
    assert_eq!(out.status, "SUCCEEDED");
    assert_eq!(out.next_state.as_deref(), Some("After"));
    assert_eq!(out.output, Some(json!({"in": {"a": 1}, "out": {"p": 5}})));
    let i = &out.inspection;
    assert_eq!(i["input"], json!("{\"in\":{\"a\":1}}"));
    assert_eq!(i["afterInputPath"], json!("{\"a\":1}"));
    assert_eq!(
        i["afterParameters"],
        json!("{\"FunctionName\":\"f\",\"Payload\":{\"a\":1}}")
    );
    assert_eq!(i["result"], json!("{\"Payload\":5}"));
    assert_eq!(i["afterResultSelector"], json!("{\"p\":5}"));
    assert_eq!(
        i["afterResultPath"],
        json!("{\"in\":{\"a\":1},\"out\":{\"p\":5}}")
    );
}

#[test]
fn no_result_returns_the_task_it_would_run() {
    let out = test_state(TASK, json!({"in": {"a": 1}}), ctx(), None, 0).unwrap();
    assert_eq!(out.status, "PENDING");
    let Some(Effect::Task {
        resource,
        parameters,
        ..
    }) = out.task
    else {
        panic!("{:?}", out.task)
    };
    assert_eq!(resource, "arn:aws:states:::lambda:invoke");
    assert_eq!(
        parameters,
        json!({"FunctionName": "f", "Payload": {"a": 1}})
    );
}

#[test]
fn failed_retriable_and_caught() {
    let plain = r#"{"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": true}"#;
    let out = test_state(
        plain,
        json!({}),
        ctx(),
        Some(Err(("Boom".into(), "bad".into()))),
        0,
    )
    .unwrap();
    assert_eq!(
        (
            out.status.as_str(),
            out.error.as_deref(),
            out.cause.as_deref()
        ),
        ("FAILED", Some("Boom"), Some("bad"))
    );
    assert_eq!(out.output, None);

    let retry = r#"{"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": true,
      "Retry": [{"ErrorEquals": ["Boom"], "IntervalSeconds": 3, "BackoffRate": 2}]}"#;
    let out = test_state(
        retry,
        json!({}),
        ctx(),
        Some(Err(("Boom".into(), "bad".into()))),
        0,
    )
    .unwrap();
    assert_eq!(out.status, "RETRIABLE");
    assert_eq!(out.error.as_deref(), Some("Boom"));
    assert_eq!(
        out.inspection["errorDetails"],
        json!({"retryBackoffIntervalSeconds": 3})
    );

    let catch = r#"{"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": true,
      "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.err", "Next": "Handler"}]}"#;
    let out = test_state(
        catch,
        json!({"k": 1}),
        ctx(),
        Some(Err(("Boom".into(), "bad".into()))),
        0,
    )
    .unwrap();
    assert_eq!(out.status, "CAUGHT_ERROR");
    assert_eq!(out.next_state.as_deref(), Some("Handler"));
    assert_eq!(
        (out.error.as_deref(), out.cause.as_deref()),
        (Some("Boom"), Some("bad"))
    );
    assert_eq!(
        out.output,
        Some(json!({"k": 1, "err": {"Error": "Boom", "Cause": "bad"}}))
    );
}

#[test]
fn choice_wait_and_invalid_states() {
    let choice = r#"{"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericGreaterThan": 1, "Next": "Big"}], "Default": "Small"}"#;
    let out = test_state(choice, json!({"n": 2}), ctx(), None, 0).unwrap();
    assert_eq!(
        (out.status.as_str(), out.next_state.as_deref()),
        ("SUCCEEDED", Some("Big"))
    );
    // A Wait does not wait in TestState.
    let wait = r#"{"Type": "Wait", "Seconds": 3600, "Next": "N"}"#;
    let out = test_state(wait, json!({"a": 1}), ctx(), None, 0).unwrap();
    assert_eq!(
        (out.status.as_str(), out.output),
        ("SUCCEEDED", Some(json!({"a": 1})))
    );
    let diags = test_state(
        r#"{"Type": "Pass", "Bogus": 1, "End": true}"#,
        json!({}),
        ctx(),
        None,
        0,
    )
    .unwrap_err();
    assert_eq!(diags[0].code, "SCHEMA_VALIDATION_FAILED");
    assert!(test_state("{", json!({}), ctx(), None, 0).is_err());
}
