//! The conformance table: state machines from the AWS Step Functions Developer Guide and the
//! States Language spec (each case cites its page), with their input, mocked task results
//! by state name, and the expected output or error (and optionally the history's types).
//! Cases of a single state also run through `test_state`.

use basalt_asl::{Context, Effect, Event, Run, Status, parse, test_state_named, validate};
use serde_json::{Value, json};
use std::collections::HashMap;

fn ctx() -> Context {
    Context {
        execution_id: "arn:aws:states:us-east-1:123456789012:execution:MyMachine:exec-1".into(),
        execution_name: "exec-1".into(),
        start_time: "2024-05-01T10:00:00.000Z".into(),
        role_arn: "arn:aws:iam::123456789012:role/StepFunctionsRole".into(),
        state_machine_id: "arn:aws:states:us-east-1:123456789012:stateMachine:MyMachine".into(),
        state_machine_name: "MyMachine".into(),
        redrive_count: 0,
    }
}

fn cases() -> Vec<(String, Value)> {
    let dir = format!("{}/tests/conformance", env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap())
            .unwrap_or_else(|e| panic!("{f:?}: {e}"));
        let file = f.file_name().unwrap().to_string_lossy().to_string();
        for c in v["cases"].as_array().unwrap() {
            out.push((file.clone(), c.clone()));
        }
    }
    out
}

/// A mocked result: `{"output": v}`, `{"error": e, "cause": c}`, `{"timeout": true}`, or
/// `"echo"` (the task's parameters come back as its output).
fn mocked(
    tasks: &Value,
    state: &str,
    calls: &mut HashMap<String, usize>,
    params: &Value,
    id: &str,
) -> Event {
    let n = calls.entry(state.to_string()).or_default();
    let list = tasks.get(state);
    let m = match list {
        Some(Value::Array(a)) if !a.is_empty() => a[(*n).min(a.len() - 1)].clone(),
        Some(v @ Value::Object(_)) => v.clone(),
        _ => json!("echo"),
    };
    *n += 1;
    let task = id.to_string();
    if m == json!("echo") {
        return Event::TaskSucceeded {
            task,
            output: params.clone(),
        };
    }
    if let Some(o) = m.get("output") {
        return Event::TaskSucceeded {
            task,
            output: o.clone(),
        };
    }
    if m.get("timeout").is_some() {
        return Event::TaskTimedOut { task };
    }
    Event::TaskFailed {
        task,
        error: m["error"].as_str().unwrap_or_default().to_string(),
        cause: m["cause"].as_str().unwrap_or_default().to_string(),
    }
}

/// Drive an execution to its end the way a host would, firing timers in time order.
pub fn execute(
    def_text: &str,
    input: Value,
    tasks: &Value,
) -> (Run, Vec<String>, Vec<Effect>, i64) {
    let def = parse(def_text).unwrap_or_else(|d| panic!("{d:?}"));
    let mut now = 1_714_557_600_000i64; // 2024-05-01T10:00:00Z
    let (mut run, step) = Run::start(&def, input, ctx(), now);
    let mut history: Vec<String> = step.history.iter().map(|h| h.kind.clone()).collect();
    let mut effects = step.effects.clone();
    let mut queue: std::collections::VecDeque<Effect> = step.effects.into();
    let mut timers: Vec<(i64, String)> = Vec::new();
    let mut calls = HashMap::new();
    let mut guard = 0;
    while !run.is_done() {
        guard += 1;
        assert!(guard < 100_000, "runaway execution");
        let event = if let Some(e) = queue.pop_front() {
            match e {
                Effect::Task {
                    task,
                    state,
                    parameters,
                    ..
                } => mocked(tasks, &state, &mut calls, &parameters, &task),
                Effect::Timer { timer, at_ms } => {
                    timers.push((at_ms, timer));
                    continue;
                }
                Effect::CancelTimer { timer } => {
                    timers.retain(|(_, t)| *t != timer);
                    continue;
                }
                _ => continue,
            }
        } else if !timers.is_empty() {
            timers.sort();
            let (at, timer) = timers.remove(0);
            now = now.max(at);
            Event::TimerFired { timer }
        } else {
            panic!("the execution waits on nothing");
        };
        let step = run.handle(&def, event, now);
        history.extend(step.history.iter().map(|h| h.kind.clone()));
        effects.extend(step.effects.iter().cloned());
        queue.extend(step.effects);
    }
    (run, history, effects, now)
}

#[test]
fn conformance_table() {
    let cases = cases();
    assert!(cases.len() >= 150, "only {} cases", cases.len());
    let mut failures = Vec::new();
    let mut ran = 0;
    for (file, c) in &cases {
        let name = format!("{file}: {}", c["name"].as_str().unwrap());
        assert!(
            c["source"]
                .as_str()
                .is_some_and(|s| s.starts_with("https://")),
            "{name}: cite a page"
        );
        if c.get("skip").is_some() {
            continue;
        }
        // Definitions stored as a string are sent as written (malformed JSON cases).
        let def_text = match &c["definition"] {
            Value::String(s) => s.clone(),
            d => d.to_string(),
        };
        if let Some(want) = c.get("diagnostics") {
            let got: Vec<Value> = validate(&def_text)
                .into_iter()
                .map(|d| json!({"code": d.code, "message": d.message, "location": d.location}))
                .collect();
            let want = want.as_array().unwrap();
            // A case lists the diagnostics it is about; each must be present.
            for w in want {
                let hit = got.iter().any(|g| {
                    g["code"] == w["code"]
                        && w.get("message").is_none_or(|m| g["message"] == *m)
                        && w.get("location").is_none_or(|l| g["location"] == *l)
                });
                if !hit {
                    failures.push(format!("{name}: missing diagnostic {w}, got {got:?}"));
                }
            }
            if want.is_empty() && !got.is_empty() {
                failures.push(format!("{name}: expected a valid definition, got {got:?}"));
            }
            ran += 1;
            continue;
        }
        let (run, history, _effects, _) = execute(&def_text, c["input"].clone(), &c["tasks"]);
        ran += 1;
        if let Some(want) = c.get("output")
            && (run.status() != Status::Succeeded || run.output() != Some(want))
        {
            failures.push(format!(
                "{name}: want output {want}, got {:?} {:?} {:?}",
                run.status(),
                run.output(),
                run.error()
            ));
        }
        if let Some(want) = c.get("error") {
            let got = run.error().map(|(e, _)| e.to_string());
            if got.as_deref() != want.as_str() {
                failures.push(format!(
                    "{name}: want error {want}, got {:?} {:?} {:?}",
                    run.status(),
                    run.output(),
                    run.error()
                ));
            }
            if let Some(cause) = c.get("cause")
                && run.error().map(|(_, c)| c) != cause.as_str()
            {
                failures.push(format!("{name}: want cause {cause}, got {:?}", run.error()));
            }
        }
        if let Some(want) = c.get("history") {
            let want: Vec<String> = want
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect();
            if history != want {
                failures.push(format!(
                    "{name}: history\n  want {want:?}\n  got  {history:?}"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {ran} cases differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Cases whose machine is one state (that ends) also run through TestState.
#[test]
fn conformance_through_test_state() {
    let mut n = 0;
    let mut failures = Vec::new();
    for (file, c) in cases() {
        let name = format!("{file}: {}", c["name"].as_str().unwrap());
        if c.get("skip").is_some() || c.get("diagnostics").is_some() {
            continue;
        }
        let states = c["definition"]["States"].as_object().unwrap();
        if states.len() != 1 || c["definition"].get("TimeoutSeconds").is_some() {
            continue;
        }
        let state = states.values().next().unwrap();
        if matches!(state["Type"].as_str(), Some("Parallel" | "Map")) {
            continue;
        }
        let name_of = states.keys().next().unwrap().clone();
        let mut calls = HashMap::new();
        let task_result = match state["Type"].as_str() {
            Some("Task") => match mocked(&c["tasks"], &name_of, &mut calls, &Value::Null, "t") {
                Event::TaskSucceeded { output, .. } if output.is_null() => None,
                Event::TaskSucceeded { output, .. } => Some(Ok(output)),
                Event::TaskFailed { error, cause, .. } => Some(Err((error, cause))),
                _ => continue,
            },
            _ => None,
        };
        // Retries need time to pass: TestState reports them as RETRIABLE instead.
        if state.get("Retry").is_some() || (state["Type"] == "Task" && task_result.is_none()) {
            continue;
        }
        let mut st = state.clone();
        if let Some(ql) = c["definition"].get("QueryLanguage") {
            st["QueryLanguage"] = ql.clone();
        }
        let out = test_state_named(
            &name_of,
            &st.to_string(),
            c["input"].clone(),
            ctx(),
            task_result,
            1_714_557_600_000,
        )
        .unwrap();
        n += 1;
        if let Some(want) = c.get("output")
            && out.output.as_ref() != Some(want)
        {
            failures.push(format!(
                "{name}: want {want}, got {:?} {} {:?}",
                out.output, out.status, out.error
            ));
        }
        if let Some(want) = c.get("error")
            && (out.error.as_deref() != want.as_str() || out.status != "FAILED")
        {
            failures.push(format!(
                "{name}: want error {want}, got {:?} {}",
                out.error, out.status
            ));
        }
    }
    assert!(n >= 40, "only {n} single-state cases");
    assert!(
        failures.is_empty(),
        "{} of {n} differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
