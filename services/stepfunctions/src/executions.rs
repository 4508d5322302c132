//! Executions: StartExecution, StartSyncExecution, DescribeExecution, ListExecutions,
//! StopExecution, GetExecutionHistory, DescribeStateMachineForExecution.

use basalt_asl::{Effect, Event, Run};
use basalt_core::{AwsError, RequestContext, page_token};
use basalt_store::{StoreError, WriteOp};
use serde_json::{Value, json};
use std::collections::VecDeque;

use crate::driver;
use crate::machines::{self, check_name, page};
use crate::mocks;
use crate::model::{
    BY_MACHINE, EVENTS, EXECUTIONS, EventItem, ExecutionRec, HISTORY, MachineRec, Parent, now_ms,
    secs,
};
use crate::tasks::{self, Outcome};
use crate::{StepFunctions, error, invalid_arn, required, str_of};

/// The largest execution input or output (256 KiB).
const MAX_PAYLOAD: usize = 262_144;

fn does_not_exist(arn: &str) -> AwsError {
    error(
        "ExecutionDoesNotExist",
        format!("Execution Does Not Exist: '{arn}'"),
    )
}

pub fn load(sf: &StepFunctions, arn: &str) -> Result<ExecutionRec, AwsError> {
    let (mut e, raw) = sf
        .load::<ExecutionRec>(EXECUTIONS, arn)?
        .ok_or_else(|| does_not_exist(arn))?;
    e.stored = raw;
    Ok(e)
}

fn check_input(input: &str) -> Result<Value, AwsError> {
    if input.len() > MAX_PAYLOAD {
        return Err(error(
            "InvalidExecutionInput",
            "Invalid State Machine Execution Input: 'The input is too large'",
        ));
    }
    serde_json::from_str(input).map_err(|e| {
        error(
            "InvalidExecutionInput",
            format!("Invalid State Machine Execution Input: '{e}'"),
        )
    })
}

fn execution_arn(m: &MachineRec, express: bool, name: &str) -> String {
    format!(
        "arn:aws:states:{}:{}:{}:{}:{name}",
        m.region,
        m.account,
        if express { "express" } else { "execution" },
        m.name
    )
}

/// StartExecution, also for `states:startExecution` tasks (`parent`: who waits for it).
pub fn start(
    sf: &StepFunctions,
    _ctx: &RequestContext,
    input: &Value,
    parent: Option<Parent>,
) -> Result<Value, AwsError> {
    let (target_arn, test_case) = mocks::split_test_case(required(input, "stateMachineArn")?);
    let target = machines::resolve(sf, target_arn)?;
    if let Some(case) = test_case {
        mocks::check_test_case(sf.mocks(), &target.machine.name, case)?;
    }
    let name = match str_of(input, "name") {
        Some(n) => {
            check_name(n)?;
            n.to_owned()
        }
        None => uuid::Uuid::new_v4().to_string(),
    };
    let text = str_of(input, "input").unwrap_or("{}");
    check_input(text)?;
    let express = target.machine.kind == "EXPRESS";
    let arn = execution_arn(&target.machine, express, &name);
    if let Some((existing, _)) = sf.load::<ExecutionRec>(EXECUTIONS, &arn)? {
        // The same name and input while it runs answer the same execution.
        if existing.status == "RUNNING" && existing.input == text && parent.is_none() {
            return Ok(json!({"executionArn": arn, "startDate": secs(existing.start_ms)}));
        }
        return Err(error(
            "ExecutionAlreadyExists",
            format!("Execution Already Exists: '{arn}'"),
        ));
    }
    let start_ms = now_ms();
    let rec = ExecutionRec {
        arn: arn.clone(),
        name,
        machine_arn: target.machine.arn.clone(),
        version_arn: target.version_arn,
        alias_arn: target.alias_arn,
        account: target.machine.account.clone(),
        region: target.machine.region.clone(),
        kind: target.machine.kind.clone(),
        definition: target.definition,
        role_arn: target.role_arn,
        status: "RUNNING".into(),
        start_ms,
        stop_ms: None,
        input: text.to_owned(),
        output: None,
        error: None,
        cause: None,
        run: None,
        parent,
        redrive_count: 0,
        redrive_ms: None,
        redrive_token: None,
        logging: target.machine.logging.clone(),
        trace_header: str_of(input, "traceHeader").map(str::to_owned),
        test_case: test_case.map(str::to_owned),
        mock_invocations: Default::default(),
        stored: Vec::new(),
    };
    let ops = vec![
        WriteOp::Check {
            table: EXECUTIONS.into(),
            key: arn.clone(),
            expected: None,
        },
        WriteOp::Put {
            table: EXECUTIONS.into(),
            key: arn.clone(),
            value: serde_json::to_vec(&rec).unwrap_or_default(),
        },
        WriteOp::Put {
            table: BY_MACHINE.into(),
            key: rec.by_machine_key(),
            value: arn.clone().into_bytes(),
        },
        WriteOp::Enqueue {
            queue: EVENTS.into(),
            id: format!("{arn}#start"),
            payload: serde_json::to_vec(&EventItem {
                execution: arn.clone(),
                event: None,
            })
            .unwrap_or_default(),
            due_ms: 0,
        },
    ];
    match sf.state.batch(&ops) {
        Ok(()) => {}
        Err(StoreError::Conflict) => {
            return Err(error(
                "ExecutionAlreadyExists",
                format!("Execution Already Exists: '{arn}'"),
            ));
        }
        Err(e) => return Err(e.into()),
    }
    sf.wake_events.notify_one();
    Ok(json!({"executionArn": arn, "startDate": secs(start_ms)}))
}

fn payload_member(out: &mut Value, name: &str, text: Option<&str>, include: bool) {
    if let Some(t) = text {
        if include {
            out[name] = t.into();
        }
        out[format!("{name}Details")] = json!({"included": include});
    }
}

pub fn describe_json(e: &ExecutionRec, include_data: bool) -> Value {
    let mut out = json!({
        "executionArn": e.arn,
        "stateMachineArn": e.version_arn.clone().unwrap_or_else(|| e.machine_arn.clone()),
        "name": e.name,
        "status": e.status,
        "startDate": secs(e.start_ms),
        "redriveCount": e.redrive_count,
        "redriveStatus": "NOT_REDRIVABLE",
    });
    match not_redrivable(e, now_ms()) {
        None => out["redriveStatus"] = "REDRIVABLE".into(),
        Some(reason) => out["redriveStatusReason"] = reason.into(),
    }
    if let Some(r) = e.redrive_ms {
        out["redriveDate"] = secs(r).into();
    }
    payload_member(&mut out, "input", Some(&e.input), include_data);
    payload_member(&mut out, "output", e.output.as_deref(), include_data);
    if let Some(s) = e.stop_ms {
        out["stopDate"] = secs(s).into();
    }
    if let Some(v) = &e.version_arn {
        out["stateMachineVersionArn"] = v.clone().into();
    }
    if let Some(a) = &e.alias_arn {
        out["stateMachineAliasArn"] = a.clone().into();
    }
    if let Some(err) = &e.error {
        out["error"] = err.clone().into();
    }
    if let Some(c) = &e.cause {
        out["cause"] = c.clone().into();
    }
    if let Some(t) = &e.trace_header {
        out["traceHeader"] = t.clone().into();
    }
    out
}

/// How long after its end an execution can be redriven.
const REDRIVE_WINDOW_MS: i64 = 14 * 24 * 3600 * 1000;

/// Why RedriveExecution refuses `e` at `now`; `None` when it is redrivable.
fn not_redrivable(e: &ExecutionRec, now: i64) -> Option<String> {
    if e.kind == "EXPRESS" {
        return Some("Express executions cannot be redriven".into());
    }
    if matches!(e.status.as_str(), "RUNNING" | "SUCCEEDED") {
        return Some(format!("Execution is {} and cannot be redriven", e.status));
    }
    if e.parent.is_some() {
        return Some(
            "Execution was started by a parent execution's task; redrive the parent".into(),
        );
    }
    if e.stop_ms.is_some_and(|s| now - s > REDRIVE_WINDOW_MS) {
        return Some("Execution ended more than 14 days ago and cannot be redriven".into());
    }
    if !e.run.as_ref().is_some_and(basalt_asl::Run::redrivable) {
        return Some("Execution did not stop in a state and cannot be redriven".into());
    }
    None
}

/// The request's `executionArn`, which must name an execution.
fn execution_arn_in(input: &Value) -> Result<&str, AwsError> {
    let arn = required(input, "executionArn")?;
    if !arn.contains(":execution:") && !arn.contains(":express:") {
        return Err(invalid_arn(arn));
    }
    Ok(arn)
}

/// RedriveExecution: the execution continues from the state that did not complete.
pub fn redrive(
    sf: &StepFunctions,
    _ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let arn = execution_arn_in(input)?;
    let token = str_of(input, "clientToken").map(str::to_owned);
    apply_retrying(
        sf,
        arn,
        |e, now| {
            // The same request again (an SDK retry) answers as the first did.
            if let (Some(t), Some(at)) = (&token, e.redrive_ms)
                && e.redrive_token.as_ref() == Some(t)
            {
                return Err(Ok(json!({"redriveDate": secs(at)})));
            }
            match not_redrivable(e, now) {
                Some(reason) => Err(Err(error("ExecutionNotRedrivable", reason))),
                None => Ok(driver::Change::Redrive(token.clone())),
            }
        },
        |now| json!({"redriveDate": secs(now)}),
    )
}

/// Applies the change `decide` picks for the execution as loaded (or ends with the answer
/// it gives instead), loading it again while concurrent steps move it; `ok(now)` answers.
pub(crate) fn apply_retrying(
    sf: &StepFunctions,
    arn: &str,
    decide: impl Fn(&ExecutionRec, i64) -> Result<driver::Change, Result<Value, AwsError>>,
    ok: impl Fn(i64) -> Value,
) -> Result<Value, AwsError> {
    for _ in 0..32 {
        let e = load(sf, arn)?;
        let now = now_ms();
        let change = match decide(&e, now) {
            Ok(c) => c,
            Err(answer) => return answer,
        };
        match driver::apply(sf, e, change, now) {
            Ok(()) => return Ok(ok(now)),
            Err(driver::ApplyError::Conflict) => continue,
            Err(driver::ApplyError::Aws(e)) => return Err(e),
        }
    }
    Err(error(
        "ConflictException",
        "The execution changed concurrently; try again",
    ))
}

pub fn describe(
    sf: &StepFunctions,
    _ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let arn = execution_arn_in(input)?;
    if arn.contains('/') {
        // `…:execution:<machine>/<label>:<name>`: a distributed Map's child.
        if let Some(child) = crate::children::describe(sf, arn)? {
            return Ok(child);
        }
    }
    let e = load(sf, arn)?;
    let mut out = describe_json(&e, true);
    if e.status == "RUNNING" {
        out.as_object_mut().map(|o| o.remove("redriveStatusReason"));
    }
    Ok(out)
}

pub fn list(sf: &StepFunctions, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    if str_of(input, "stateMachineArn").is_none()
        && let Some(map_run) = str_of(input, "mapRunArn")
    {
        crate::map_runs::describe(sf, ctx, &json!({ "mapRunArn": map_run }))?;
        let (max, after) = page(input)?;
        let status = str_of(input, "statusFilter");
        return crate::children::list(sf, map_run, status, max, after);
    }
    let arn = required(input, "stateMachineArn")?;
    let p = machines::parse_arn(arn).ok_or_else(|| invalid_arn(arn))?;
    let (m, _) = machines::load_machine(sf, arn)?;
    let qualified = p.qualifier.is_some().then_some(arn);
    let status = str_of(input, "statusFilter");
    let redriven = match str_of(input, "redriveFilter") {
        None => None,
        Some("REDRIVEN") => Some(true),
        Some("NOT_REDRIVEN") => Some(false),
        Some(other) => {
            return Err(AwsError::validation(format!(
                "1 validation error detected: Value '{other}' at 'redriveFilter' failed to satisfy constraint: Member must satisfy enum value set: [REDRIVEN, NOT_REDRIVEN]"
            )));
        }
    };
    let (max, mut after) = page(input)?;
    let prefix = format!("{}/", m.arn);
    let mut out = Vec::new();
    let mut next = None;
    let mut last_included: Option<String> = None;
    'pages: loop {
        let rows = sf.state.scan(BY_MACHINE, &prefix, after.as_deref(), 200)?;
        if rows.is_empty() {
            break;
        }
        for (k, raw) in &rows {
            after = Some(k.clone());
            let exec_arn = String::from_utf8_lossy(raw).into_owned();
            let Some((e, _)) = sf.load::<ExecutionRec>(EXECUTIONS, &exec_arn)? else {
                continue;
            };
            if status.is_some_and(|s| s != e.status)
                || redriven.is_some_and(|r| r != (e.redrive_count > 0))
                || qualified.is_some_and(|q| {
                    e.version_arn.as_deref() != Some(q) && e.alias_arn.as_deref() != Some(q)
                })
            {
                continue;
            }
            if out.len() == max {
                next = last_included.as_deref().map(page_token::encode);
                break 'pages;
            }
            last_included = Some(k.clone());
            let mut v = json!({
                "executionArn": e.arn, "stateMachineArn": e.machine_arn, "name": e.name,
                "status": e.status, "startDate": secs(e.start_ms), "redriveCount": e.redrive_count,
            });
            if let Some(s) = e.stop_ms {
                v["stopDate"] = secs(s).into();
            }
            if let Some(r) = e.redrive_ms {
                v["redriveDate"] = secs(r).into();
            }
            if let Some(ver) = &e.version_arn {
                v["stateMachineVersionArn"] = ver.clone().into();
            }
            if let Some(a) = &e.alias_arn {
                v["stateMachineAliasArn"] = a.clone().into();
            }
            out.push(v);
        }
    }
    let mut v = json!({ "executions": out });
    if let Some(n) = next {
        v["nextToken"] = n.into();
    }
    Ok(v)
}

pub fn stop(sf: &StepFunctions, _ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let arn = required(input, "executionArn")?;
    let error_code = str_of(input, "error").map(str::to_owned);
    let cause = str_of(input, "cause").map(str::to_owned);
    apply_retrying(
        sf,
        arn,
        |e, _| {
            if e.status != "RUNNING" {
                return Err(Err(AwsError::validation(format!(
                    "Execution Does Not Exist: '{arn}'; it has already ended with status {}",
                    e.status
                ))));
            }
            Ok(driver::Change::Stop(error_code.clone(), cause.clone()))
        },
        |now| json!({"stopDate": secs(now)}),
    )
}

pub fn history(
    sf: &StepFunctions,
    _ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let arn = required(input, "executionArn")?;
    // `…:execution:<machine>/<label>:<name>`: a distributed Map's child, perhaps.
    if !(arn.contains('/') && crate::children::is_child(sf, arn)?) {
        load(sf, arn)?;
    }
    let reverse = input.get("reverseOrder").and_then(Value::as_bool) == Some(true);
    let include = input.get("includeExecutionData").and_then(Value::as_bool) != Some(false);
    let (max, after) = page(input)?;
    let prefix = format!("{arn}/");
    let hi = format!("{arn}0");
    let (lo, hi) = match (&after, reverse) {
        (Some(a), false) => (format!("{a}\u{0}"), hi),
        (Some(a), true) => (prefix.clone(), a.clone()),
        (None, _) => (prefix.clone(), hi),
    };
    let rows = sf.state.range(HISTORY, &lo, &hi, reverse, max + 1)?;
    let mut events = Vec::new();
    let mut next = None;
    for (i, (_, raw)) in rows.iter().enumerate() {
        if i == max {
            next = Some(page_token::encode(&rows[i - 1].0));
            break;
        }
        let mut ev: Value =
            serde_json::from_slice(raw).map_err(|e| crate::corrupt("history", e))?;
        if !include {
            strip_data(&mut ev);
        }
        events.push(ev);
    }
    let mut v = json!({ "events": events });
    if let Some(n) = next {
        v["nextToken"] = n.into();
    }
    Ok(v)
}

/// Without execution data: inputs, outputs and results are left out (their details say so).
fn strip_data(ev: &mut Value) {
    if let Some(o) = ev.as_object_mut() {
        for (_, details) in o.iter_mut() {
            if let Some(d) = details.as_object_mut() {
                for member in ["input", "output", "result", "parameters"] {
                    if d.remove(member).is_some() {
                        d.insert(format!("{member}Details"), json!({"included": false}));
                    }
                }
            }
        }
    }
}

pub fn machine_for(
    sf: &StepFunctions,
    _ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let arn = required(input, "executionArn")?;
    let e = load(sf, arn)?;
    let (m, _) = machines::load_machine(sf, &e.machine_arn)?;
    let mut out = json!({
        "stateMachineArn": e.machine_arn,
        "name": m.name,
        "definition": e.definition,
        "roleArn": e.role_arn,
        "updateDate": m.updated.unwrap_or(m.created),
        "loggingConfiguration": m.logging.clone().unwrap_or_else(|| json!({"level": "OFF", "includeExecutionData": false})),
        "tracingConfiguration": m.tracing.clone().unwrap_or_else(|| json!({"enabled": false})),
    });
    if let Some(a) = e.alias_arn {
        out["stateMachineAliasArn"] = a.into();
    }
    if let Some(v) = e.version_arn {
        out["stateMachineVersionArn"] = v.into();
    }
    Ok(out)
}

/// StartSyncExecution: an EXPRESS machine run to its end within the request (as AWS does,
/// nothing is kept but the answer).
pub async fn start_sync(
    sf: &StepFunctions,
    _ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let (target_arn, test_case) = mocks::split_test_case(required(input, "stateMachineArn")?);
    let target = machines::resolve(sf, target_arn)?;
    if let Some(case) = test_case {
        mocks::check_test_case(sf.mocks(), &target.machine.name, case)?;
    }
    let mut invocations: std::collections::HashMap<String, u64> = Default::default();
    if target.machine.kind != "EXPRESS" {
        return Err(error(
            "StateMachineTypeNotSupported",
            "This operation is not supported by this type of state machine",
        ));
    }
    let name = match str_of(input, "name") {
        Some(n) => {
            check_name(n)?;
            n.to_owned()
        }
        None => uuid::Uuid::new_v4().to_string(),
    };
    let text = str_of(input, "input").unwrap_or("{}");
    let value = check_input(text)?;
    let def = machines::check_definition(&target.definition)?;
    let arn = execution_arn(&target.machine, true, &name);
    let start_ms = now_ms();
    let context = driver::context(&arn, &name, start_ms, &target.role_arn, &target.machine, 0);
    // EXPRESS executions keep no history, so they have no history limit either.
    let (mut run, step) = Run::start_with_limit(&def, value, context, start_ms, None);
    // Its history goes only to CloudWatch Logs, when the machine logs.
    let mut history = step.history;
    let mut handle = |run: &mut Run, event: Event| {
        let step = run.handle(&def, event, now_ms());
        history.extend(step.history);
        step.effects
    };
    let mut queue: VecDeque<Effect> = step.effects.into();
    let mut timers: Vec<(i64, String)> = Vec::new();
    loop {
        while let Some(effect) = queue.pop_front() {
            match effect {
                Effect::Task {
                    ref task,
                    ref state,
                    ..
                } => {
                    let task = task.clone();
                    let mocked = match (test_case, sf.mocks()) {
                        (Some(case), Some(cfg))
                            if cfg.is_mocked(&target.machine.name, case, state) =>
                        {
                            let n = invocations.entry(state.clone()).or_default();
                            let index = *n;
                            *n += 1;
                            cfg.pick(&target.machine.name, case, state, index)
                        }
                        _ => None,
                    };
                    let outcome = match mocked {
                        Some(m) => tasks::mocked_outcome(m),
                        None => {
                            tasks::perform(
                                sf,
                                &target.machine.account,
                                &target.machine.region,
                                &arn,
                                &effect,
                            )
                            .await
                        }
                    };
                    let event = match outcome {
                        Outcome::Done(Ok(output)) => Event::TaskSucceeded { task, output },
                        Outcome::Done(Err((error, cause))) => Event::TaskFailed { task, error, cause },
                        Outcome::Waiting(_) => Event::TaskFailed {
                            task,
                            error: "States.Runtime".into(),
                            cause: "Express workflows do not support the .waitForTaskToken and .sync integration patterns".into(),
                        },
                    };
                    queue.extend(handle(&mut run, event));
                }
                Effect::Timer { timer, at_ms } => timers.push((at_ms, timer)),
                Effect::CancelTimer { timer } => timers.retain(|(_, t)| *t != timer),
                Effect::CancelTask { .. } | Effect::Succeeded { .. } | Effect::Failed { .. } => {}
            }
        }
        if run.is_done() {
            break;
        }
        timers.sort();
        let Some((at, timer)) = (!timers.is_empty()).then(|| timers.remove(0)) else {
            break;
        };
        let wait = at - now_ms();
        if wait > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(wait as u64)).await;
        }
        queue.extend(handle(&mut run, Event::TimerFired { timer }));
    }
    let stop_ms = now_ms();
    if let Some(log) = crate::logging::batch(
        target.machine.logging.as_ref(),
        &target.machine.name,
        &arn,
        start_ms,
        0,
        &history,
    ) {
        crate::logging::deliver(sf, log);
    }
    let status = match run.status() {
        basalt_asl::Status::Succeeded => "SUCCEEDED",
        basalt_asl::Status::TimedOut => "TIMED_OUT",
        _ => "FAILED",
    };
    let mut out = json!({
        "executionArn": arn,
        "stateMachineArn": target_arn,
        "name": name,
        "startDate": secs(start_ms),
        "stopDate": secs(stop_ms),
        "status": status,
        "input": text,
        "inputDetails": {"included": true},
        "billingDetails": {"billedMemoryUsedInMB": 64, "billedDurationInMilliseconds": ((stop_ms - start_ms).max(1) + 99) / 100 * 100},
    });
    if let Some(o) = run.output() {
        out["output"] = o.to_string().into();
        out["outputDetails"] = json!({"included": true});
    }
    if let Some((e, c)) = run.error() {
        out["error"] = e.into();
        out["cause"] = c.into();
    }
    Ok(out)
}
