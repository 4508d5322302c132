//! TestState: one state run on an input, its task performed for real (or mocked), with the
//! inspection data of the requested level.

use basalt_core::{AwsError, RequestContext};
use serde_json::{Value, json};

use crate::model::{iso, now_ms};
use crate::tasks::{self, Outcome};
use crate::{StepFunctions, error, required, str_of};

fn context(ctx: &RequestContext, role: &str) -> basalt_asl::Context {
    basalt_asl::Context {
        execution_id: format!(
            "arn:aws:states:{}:{}:execution:TestStateMachine:{}",
            ctx.region,
            ctx.account_id,
            uuid::Uuid::new_v4()
        ),
        execution_name: "TestState".into(),
        start_time: iso(now_ms()),
        role_arn: role.to_owned(),
        state_machine_id: format!(
            "arn:aws:states:{}:{}:stateMachine:TestStateMachine",
            ctx.region, ctx.account_id
        ),
        state_machine_name: "TestStateMachine".into(),
        redrive_count: 0,
    }
}

/// The state to test: the definition itself, or `stateName` of a whole machine.
fn state_of(definition: &str, state_name: Option<&str>) -> Result<String, AwsError> {
    let invalid = |m: String| {
        error(
            "InvalidDefinition",
            format!("Invalid State Machine Definition: '{m}'"),
        )
    };
    let v: Value = serde_json::from_str(definition)
        .map_err(|e| invalid(format!("INVALID_JSON_DESCRIPTION: {e}")))?;
    match (v.get("States"), state_name) {
        (Some(states), Some(name)) => states
            .get(name)
            .map(Value::to_string)
            .ok_or_else(|| invalid(format!("MISSING_STATE: The state {name} does not exist"))),
        (Some(states), None) => match v.get("StartAt").and_then(Value::as_str) {
            Some(start) => states
                .get(start)
                .map(Value::to_string)
                .ok_or_else(|| invalid("MISSING_START_STATE".into())),
            None => Err(invalid("MISSING_START_STATE".into())),
        },
        (None, _) => Ok(definition.to_owned()),
    }
}

pub async fn test_state(
    sf: &StepFunctions,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let definition = required(input, "definition")?;
    let state = state_of(definition, str_of(input, "stateName"))?;
    let role = str_of(input, "roleArn").unwrap_or("arn:aws:iam::000000000000:role/TestState");
    let value: Value = match str_of(input, "input") {
        Some(t) => serde_json::from_str(t).map_err(|e| {
            error(
                "InvalidExecutionInput",
                format!("Invalid State Machine Execution Input: '{e}'"),
            )
        })?,
        None => json!({}),
    };
    let level = str_of(input, "inspectionLevel").unwrap_or("INFO");
    let mock: Option<Result<Value, (String, String)>> = match input.get("mock") {
        Some(m) => match (m.get("result"), m.get("errorOutput")) {
            (Some(r), _) => Some(Ok(match r {
                Value::String(s) => serde_json::from_str(s).unwrap_or_else(|_| r.clone()),
                v => v.clone(),
            })),
            (None, Some(e)) => Some(Err((
                str_of(e, "error").unwrap_or_default().to_owned(),
                str_of(e, "cause").unwrap_or_default().to_owned(),
            ))),
            _ => None,
        },
        None => None,
    };
    let diags = |d: Vec<basalt_asl::Diagnostic>| {
        error(
            "InvalidDefinition",
            basalt_asl::invalid_definition_message(&d),
        )
    };
    let c = context(ctx, role);
    let mut outcome =
        basalt_asl::test_state(&state, value.clone(), c.clone(), mock.clone(), now_ms())
            .map_err(diags)?;
    // A task the state would run, performed for real, then the state finished with its result.
    let mut http_trace = crate::http::Trace {
        reveal_secrets: input["revealSecrets"].as_bool().unwrap_or(false),
        exchange: None,
    };
    if mock.is_none()
        && let Some(task) = outcome.task.clone()
    {
        let performed = match &task {
            // An HTTP Task shows its request and response at TRACE.
            basalt_asl::Effect::Task {
                resource,
                parameters,
                ..
            } if resource == "arn:aws:states:::http:invoke" => {
                crate::http::invoke_traced(
                    sf,
                    &ctx.account_id,
                    &ctx.region,
                    parameters,
                    Some(&mut http_trace),
                )
                .await
            }
            _ => tasks::perform(sf, &ctx.account_id, &ctx.region, &c.execution_id, &task).await,
        };
        let result = match performed {
            Outcome::Done(r) => r,
            Outcome::Waiting(_) => Err((
                "States.Runtime".into(),
                "TestState does not wait for task tokens".into(),
            )),
        };
        outcome =
            basalt_asl::test_state(&state, value, c, Some(result), now_ms()).map_err(diags)?;
    }
    let mut out = json!({ "status": outcome.status });
    if let Some(o) = outcome.output {
        out["output"] = o.to_string().into();
    }
    if let Some(e) = outcome.error {
        out["error"] = e.into();
    }
    if let Some(c) = outcome.cause {
        out["cause"] = c.into();
    }
    if let Some(n) = outcome.next_state {
        out["nextState"] = n.into();
    }
    if level != "INFO" {
        let mut data = outcome.inspection;
        if level == "DEBUG"
            && let Some(o) = data.as_object_mut()
        {
            o.remove("request");
            o.remove("response");
        }
        if level == "TRACE"
            && let (Some(o), Some(Value::Object(t))) = (data.as_object_mut(), http_trace.exchange)
        {
            o.extend(t);
        }
        out["inspectionData"] = data;
    }
    Ok(out)
}
