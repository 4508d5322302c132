//! TestState: one state run on an input, with a mocked task result instead of the call,
//! and the inspection data AWS returns (afterInputPath, afterParameters, result,
//! afterResultSelector, afterResultPath, variables, errorDetails).
//! <https://docs.aws.amazon.com/step-functions/latest/dg/test-state-isolation.html>

use crate::diag::Diagnostic;
use crate::run::{Context, Effect, Event, Run, Status};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

#[derive(Clone, Debug, PartialEq)]
pub struct TestStateOutcome {
    pub output: Option<Value>,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub next_state: Option<String>,
    /// SUCCEEDED | FAILED | RETRIABLE | CAUGHT_ERROR; `PENDING` when the state needs a task
    /// result that was not given (see `task`).
    pub status: String,
    /// InspectionData members; values are JSON text, as AWS returns them. The host keeps
    /// them for DEBUG and TRACE and drops them for INFO.
    pub inspection: Value,
    /// The task the state would run, when no result was given.
    pub task: Option<Effect>,
}

/// What a TestState run records while it goes.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub(crate) struct Trace {
    pub data: Map<String, Value>,
    pub status: Option<String>,
    pub next: Option<String>,
    pub error: Option<(String, String)>,
}

impl Run {
    pub(crate) fn trace(&mut self, key: &str, v: &Value) {
        if let Some(t) = &mut self.test {
            t.data.insert(key.to_string(), Value::String(v.to_string()));
        }
    }
    pub(crate) fn trace_vars(&mut self, vars: &Map<String, Value>) {
        if let Some(t) = &mut self.test {
            t.data.insert(
                "variables".into(),
                Value::String(Value::Object(vars.clone()).to_string()),
            );
        }
    }
    pub(crate) fn trace_status(&mut self, status: &str) {
        if let Some(t) = &mut self.test {
            t.status.get_or_insert_with(|| status.to_string());
        }
    }
    pub(crate) fn trace_next(&mut self, next: Option<&str>, status: &str) {
        if let Some(t) = &mut self.test {
            t.next = next.map(str::to_owned);
            t.status.get_or_insert_with(|| status.to_string());
        }
    }
    pub(crate) fn trace_error(
        &mut self,
        error: &str,
        cause: &str,
        next: Option<&str>,
        status: &str,
    ) {
        if let Some(t) = &mut self.test
            && t.status.is_none()
        {
            t.error = Some((error.to_string(), cause.to_string()));
            t.next = next.map(str::to_owned);
            t.status = Some(status.to_string());
        }
    }
}

/// Run one state definition (a JSON object with `Type`) on `input`; the state is named
/// `TestState` (`$$.State.Name`).
pub fn test_state(
    state_definition: &str,
    input: Value,
    ctx: Context,
    task_result: Option<Result<Value, (String, String)>>,
    now_ms: i64,
) -> Result<TestStateOutcome, Vec<Diagnostic>> {
    test_state_named(
        "TestState",
        state_definition,
        input,
        ctx,
        task_result,
        now_ms,
    )
}

/// [`test_state`] for a state with a given name (TestState's `stateName`).
pub fn test_state_named(
    name: &str,
    state_definition: &str,
    input: Value,
    ctx: Context,
    task_result: Option<Result<Value, (String, String)>>,
    now_ms: i64,
) -> Result<TestStateOutcome, Vec<Diagnostic>> {
    let state: Value = serde_json::from_str(state_definition).map_err(|e| {
        vec![Diagnostic::error(
            "INVALID_JSON_DESCRIPTION",
            e.to_string(),
            "",
        )]
    })?;
    let Some(obj) = state.as_object() else {
        return Err(vec![Diagnostic::error(
            "SCHEMA_VALIDATION_FAILED",
            "The state must be a JSON object",
            "",
        )]);
    };
    // Every state the tested one can move to becomes a stub, so the machine validates; the
    // run stops at the first transition and reports its target.
    let mut states = Map::new();
    states.insert(name.into(), state.clone());
    let mut stub = |target: &Value| {
        if let Some(n) = target.as_str()
            && n != name
        {
            states.insert(n.to_string(), json!({"Type": "Succeed"}));
        }
    };
    if let Some(n) = obj.get("Next") {
        stub(n);
    }
    if let Some(n) = obj.get("Default") {
        stub(n);
    }
    for key in ["Choices", "Catch"] {
        for c in obj.get(key).and_then(Value::as_array).into_iter().flatten() {
            if let Some(n) = c.get("Next") {
                stub(n);
            }
        }
    }
    let machine = json!({"StartAt": name, "States": states});
    let prefix = format!("/States/{name}");
    let def = crate::parse(&machine.to_string()).map_err(|d| {
        d.into_iter()
            .filter(|x| {
                x.code != "MISSING_TRANSITION_TARGET"
                    || x.location
                        .as_deref()
                        .is_some_and(|l| l.starts_with(&prefix))
            })
            .map(|mut x| {
                x.location = x.location.map(|l| l.replacen(&prefix, "", 1));
                x
            })
            .collect::<Vec<_>>()
    })?;
    let (mut run, step) = Run::start_test(&def, input, ctx, now_ms);
    let mut effects = step.effects;
    let mut task_result = task_result;
    let mut pending_task = None;
    // Waits end at once; a task takes the given result.
    while let Some(e) = effects.pop() {
        if run.is_done() {
            break;
        }
        let event = match &e {
            Effect::Timer { timer, .. } => Event::TimerFired {
                timer: timer.clone(),
            },
            Effect::Task { task, .. } => match task_result.take() {
                Some(Ok(output)) => Event::TaskSucceeded {
                    task: task.clone(),
                    output,
                },
                Some(Err((error, cause))) => Event::TaskFailed {
                    task: task.clone(),
                    error,
                    cause,
                },
                None => {
                    pending_task = Some(e.clone());
                    continue;
                }
            },
            _ => continue,
        };
        effects.extend(run.handle(&def, event, now_ms).effects);
    }
    let trace = run.test.clone().unwrap_or_default();
    let mut inspection = trace.data.clone();
    inspection.remove("output");
    let (status, output, error, cause) = match run.status {
        Status::Running => ("PENDING".to_string(), None, None, None),
        Status::Succeeded => (
            trace.status.clone().unwrap_or_else(|| "SUCCEEDED".into()),
            run.output.clone(),
            None,
            None,
        ),
        _ => {
            let (e, c) = run.error.clone().unwrap_or_default();
            let status = trace.status.clone().unwrap_or_else(|| "FAILED".into());
            (status, None, Some(e), Some(c))
        }
    };
    // A caught error reports its error and the catcher's output.
    let (error, cause) = if status == "CAUGHT_ERROR" {
        trace
            .error
            .clone()
            .map(|(e, c)| (Some(e), Some(c)))
            .unwrap_or((None, None))
    } else {
        (error, cause)
    };
    if status == "RETRIABLE"
        && let Some(v) = inspection.remove("retryBackoffIntervalSeconds")
    {
        let secs: Value = serde_json::from_str(v.as_str().unwrap_or("0")).unwrap_or(json!(0));
        inspection.insert(
            "errorDetails".into(),
            json!({"retryBackoffIntervalSeconds": secs}),
        );
    }
    Ok(TestStateOutcome {
        output: if status == "SUCCEEDED" || status == "CAUGHT_ERROR" {
            output
        } else {
            None
        },
        error,
        cause,
        next_state: trace.next,
        status,
        inspection: Value::Object(inspection),
        task: pending_task,
    })
}
