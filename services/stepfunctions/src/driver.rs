//! The driver: applies one event to one execution per step, on the store's leases.
//!
//! A step loads the execution record, feeds the event to the interpreter and commits one
//! batch that checks the record is still as read, rewrites it (the interpreter's new state,
//! the status), appends the history events and schedules what the step asks for: tasks on
//! [`TASKS`], timers and task timeouts as events due later on [`EVENTS`], task tokens. When
//! the batch is the completion of the event's claim, the event is consumed in the same
//! transaction, so each event moves its execution exactly once.

use basalt_asl::{Context, Definition, Effect, Event, Run, Status};
use basalt_core::AwsError;
use basalt_store::{Claim, StoreError, WriteOp};
use parking_lot::Mutex;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use crate::StepFunctions;
use crate::model::{
    EVENTS, EXECUTIONS, EventItem, ExecutionRec, HISTORY, MAP_RUNS, MachineRec, TASKS, TOKENS,
    TaskItem, TokenRec, activity_queue, iso, now_ms,
};

const LEASE_MS: i64 = 30_000;
const BATCH: usize = 64;

/// What moves an execution.
pub enum Change {
    Start,
    Event(Event),
    Stop(Option<String>, Option<String>),
    /// RedriveExecution, with its client token.
    Redrive(Option<String>),
    /// UpdateMapRun: new limits for a running Map Run (`None` keeps one).
    UpdateMapRun {
        arn: String,
        max: Option<u64>,
        count: Option<u64>,
        pct: Option<f64>,
    },
}

pub enum ApplyError {
    /// The record changed since it was read: read it again.
    Conflict,
    Aws(AwsError),
}

impl From<AwsError> for ApplyError {
    fn from(e: AwsError) -> Self {
        ApplyError::Aws(e)
    }
}

/// Parsed definitions by their text: executions of one machine share one.
fn definition(text: &str) -> Result<Arc<Definition>, AwsError> {
    static DEFS: LazyLock<Mutex<HashMap<String, Arc<Definition>>>> =
        LazyLock::new(|| Mutex::new(HashMap::new()));
    if let Some(d) = DEFS.lock().get(text) {
        return Ok(d.clone());
    }
    let d = Arc::new(crate::machines::check_definition(text)?);
    let mut g = DEFS.lock();
    if g.len() > 256 {
        g.clear();
    }
    g.insert(text.to_owned(), d.clone());
    Ok(d)
}

/// `$$` for an execution.
pub fn context(
    arn: &str,
    name: &str,
    start_ms: i64,
    role_arn: &str,
    machine: &MachineRec,
    redrive_count: u32,
) -> Context {
    Context {
        execution_id: arn.to_owned(),
        execution_name: name.to_owned(),
        start_time: iso(start_ms),
        role_arn: role_arn.to_owned(),
        state_machine_id: machine.arn.clone(),
        state_machine_name: machine.name.clone(),
        redrive_count,
    }
}

fn event_item(execution: &str, id: String, event: Event, due_ms: i64) -> WriteOp {
    WriteOp::Enqueue {
        queue: EVENTS.into(),
        id,
        payload: serde_json::to_vec(&EventItem {
            execution: execution.to_owned(),
            event: Some(event),
        })
        .unwrap_or_default(),
        due_ms,
    }
}

/// The token of an activity task (AWS hands one out for every activity task).
pub fn activity_token(execution: &str, task: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{execution}#{task}"))
}

/// What a step did besides its batch: whether tasks or events were scheduled now.
#[derive(Default)]
pub struct Woken {
    pub tasks: bool,
    pub events: bool,
    /// History for CloudWatch Logs, sent once the step is committed.
    pub log: Option<crate::logging::LogBatch>,
}

/// The batch that applies `change` to `e`; `None` when there is nothing to do (the execution
/// ended, or the event is for a run that has not started).
pub fn step_ops(
    sf: &StepFunctions,
    mut e: ExecutionRec,
    change: Change,
    now: i64,
) -> Result<Option<(Vec<WriteOp>, Woken)>, AwsError> {
    let redriving = matches!(change, Change::Redrive(_));
    if (e.status == "RUNNING") == redriving {
        return Ok(None);
    }
    let def = definition(&e.definition)?;
    let machine_name = e
        .machine_arn
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_owned();
    let ctx = Context {
        execution_id: e.arn.clone(),
        execution_name: e.name.clone(),
        start_time: iso(e.start_ms),
        role_arn: e.role_arn.clone(),
        state_machine_id: e.machine_arn.clone(),
        state_machine_name: machine_name.clone(),
        redrive_count: e.redrive_count,
    };
    let input: Value = serde_json::from_str(&e.input).unwrap_or(Value::Null);
    let starting = e.run.is_none() && matches!(change, Change::Start);
    let (run, step) = match (e.run.take(), change) {
        (None, Change::Start) => Run::start(&def, input, ctx, now),
        (Some(_), Change::Start) => return Ok(None),
        (None, Change::Event(_)) => return Ok(None),
        (Some(mut run), Change::Event(ev)) => {
            let step = run.handle(&def, ev, now);
            (run, step)
        }
        (None, Change::Redrive(_)) => return Ok(None),
        (Some(mut run), Change::Redrive(token)) => {
            let Some(step) = run.redrive(&def, now) else {
                return Ok(None);
            };
            e.status = "RUNNING".into();
            e.output = None;
            e.error = None;
            e.cause = None;
            e.stop_ms = None;
            e.redrive_count += 1;
            e.redrive_ms = Some(now);
            e.redrive_token = token;
            (run, step)
        }
        (None, Change::UpdateMapRun { .. }) => return Ok(None),
        (
            Some(mut run),
            Change::UpdateMapRun {
                arn,
                max,
                count,
                pct,
            },
        ) => {
            // Refused when a step since the caller's check ended the Map Run: nothing to do.
            let Ok(step) = run.update_map_run(&def, &arn, max, count, pct, now) else {
                return Ok(None);
            };
            (run, step)
        }
        (current, Change::Stop(error, cause)) => {
            let (mut run, mut first) = match current {
                Some(r) => (r, basalt_asl::Step::default()),
                None => Run::start(&def, input, ctx, now),
            };
            let step = run.stop(&def, error, cause, now);
            first.history.extend(step.history);
            first.children.extend(step.children);
            // A stopped run performs nothing it asked for in its first step.
            first.effects = step.effects;
            (run, first)
        }
    };
    let mut ops = vec![WriteOp::Check {
        table: EXECUTIONS.into(),
        key: e.arn.clone(),
        expected: Some(e.stored.clone()),
    }];
    let mut woken = Woken {
        log: crate::logging::batch(
            e.logging.as_ref(),
            &machine_name,
            &e.arn,
            e.start_ms,
            e.redrive_count,
            &step.history,
        ),
        ..Woken::default()
    };
    for h in &step.history {
        ops.push(WriteOp::Put {
            table: HISTORY.into(),
            key: format!("{}/{:010}", e.arn, h.id),
            value: serde_json::to_vec(&h.to_json()).unwrap_or_default(),
        });
        if h.kind == "MapRunStarted"
            && let Some((_, d)) = &h.details
            && let Some(map_run) = d["mapRunArn"].as_str()
        {
            ops.push(WriteOp::Put {
                table: MAP_RUNS.into(),
                key: map_run.to_owned(),
                value: e.arn.clone().into_bytes(),
            });
        }
    }
    ops.extend(crate::children::late_events(sf, &step.children)?);
    ops.extend(crate::children::ops(sf, &step.children)?);
    for effect in step.effects {
        match effect {
            Effect::Task {
                ref task,
                ref state,
                ref resource,
                timeout_seconds,
                heartbeat_seconds,
                ref token,
                ..
            } => {
                // The invocation index counts in the record, rewritten with this step under
                // its precondition, so a Retry (a new Task effect) takes the next index once.
                let mock = match (&e.test_case, sf.mocks()) {
                    (Some(case), Some(cfg)) if cfg.is_mocked(&machine_name, case, state) => {
                        let n = e.mock_invocations.entry(state.clone()).or_default();
                        let index = *n;
                        *n += 1;
                        cfg.pick(&machine_name, case, state, index)
                    }
                    _ => None,
                };
                // A mocked activity is answered here rather than waiting for a worker.
                let is_activity = resource.contains(":activity:") && mock.is_none();
                if let Some(t) = timeout_seconds {
                    ops.push(event_item(
                        &e.arn,
                        format!("{}#timeout#{task}", e.arn),
                        Event::TaskTimedOut { task: task.clone() },
                        now + (t as i64) * 1000,
                    ));
                }
                if let Some(h) = heartbeat_seconds {
                    ops.push(event_item(
                        &e.arn,
                        format!("{}#heartbeat#{task}", e.arn),
                        Event::TaskHeartbeatTimedOut { task: task.clone() },
                        now + (h as i64) * 1000,
                    ));
                }
                let token = match (token, is_activity) {
                    (Some(t), _) => Some(t.clone()),
                    (None, true) => Some(activity_token(&e.arn, task)),
                    (None, false) => None,
                };
                if let Some(t) = &token {
                    ops.push(WriteOp::Put {
                        table: TOKENS.into(),
                        key: t.clone(),
                        value: serde_json::to_vec(&TokenRec {
                            execution: e.arn.clone(),
                            task: task.clone(),
                            heartbeat_seconds,
                        })
                        .unwrap_or_default(),
                    });
                }
                let queue = if is_activity {
                    activity_queue(resource)
                } else {
                    woken.tasks = true;
                    TASKS.to_owned()
                };
                ops.push(WriteOp::Enqueue {
                    queue,
                    id: format!("{}#{task}", e.arn),
                    payload: serde_json::to_vec(&TaskItem {
                        execution: e.arn.clone(),
                        effect: effect.clone(),
                        mock,
                    })
                    .unwrap_or_default(),
                    due_ms: 0,
                });
                if is_activity {
                    sf.wake_activities.notify_waiters();
                }
            }
            Effect::Timer { timer, at_ms } => {
                woken.events |= at_ms <= now;
                ops.push(event_item(
                    &e.arn,
                    format!("{}#timer#{timer}", e.arn),
                    Event::TimerFired { timer },
                    at_ms,
                ));
            }
            // Work no longer awaited finds its execution moved on and is ignored.
            Effect::CancelTask { .. } | Effect::CancelTimer { .. } => {}
            Effect::Succeeded { output } => {
                e.output = Some(output.to_string());
            }
            Effect::Failed { error, cause } => {
                e.error = Some(error);
                e.cause = Some(cause);
            }
        }
    }
    if run.is_done() {
        e.status = match run.status() {
            Status::Succeeded => "SUCCEEDED",
            Status::Failed => "FAILED",
            Status::TimedOut => "TIMED_OUT",
            Status::Aborted => "ABORTED",
            Status::Running => "RUNNING",
        }
        .into();
        if let Some((err, cause)) = run.error() {
            e.error.get_or_insert_with(|| err.to_owned());
            e.cause.get_or_insert_with(|| cause.to_owned());
        }
        e.stop_ms = Some(now);
        if let Some(p) = &e.parent {
            ops.push(event_item(
                &p.execution,
                format!("{}#{}#child", p.execution, p.task),
                child_result(&e, &p.mode, &p.task),
                0,
            ));
            woken.events = true;
        }
    }
    if starting || (redriving && !run.is_done()) {
        ops.extend(status_change(sf, &e, "RUNNING", now));
    } else if run.is_done() {
        let status = e.status.clone();
        ops.extend(status_change(sf, &e, &status, now));
    }
    e.run = Some(run);
    ops.push(WriteOp::Put {
        table: EXECUTIONS.into(),
        key: e.arn.clone(),
        value: serde_json::to_vec(&e).unwrap_or_default(),
    });
    Ok(Some((ops, woken)))
}

/// The `Step Functions Execution Status Change` event for the default bus (committed with the
/// step, so EventBridge gets it once) and the `AWS/States` points of a start or an end.
fn status_change(sf: &StepFunctions, e: &ExecutionRec, status: &str, now: i64) -> Vec<WriteOp> {
    let mut detail = json!({
        "executionArn": e.arn,
        "stateMachineArn": e.machine_arn,
        "name": e.name,
        "status": status,
        "startDate": e.start_ms,
        "stopDate": e.stop_ms,
        "input": e.input,
        "inputDetails": {"included": true},
        "output": e.output,
        "outputDetails": e.output.as_ref().map(|_| json!({"included": true})),
        "error": e.error,
        "cause": e.cause,
    });
    if let Some(v) = &e.version_arn {
        detail["stateMachineVersionArn"] = v.clone().into();
    }
    if let Some(a) = &e.alias_arn {
        detail["stateMachineAliasArn"] = a.clone().into();
    }
    let event = basalt_core::events::envelope(
        "aws.states",
        "Step Functions Execution Status Change",
        &e.account,
        &e.region,
        vec![e.arn.clone()],
        detail,
    );
    let mut ops = vec![WriteOp::Enqueue {
        queue: basalt_core::events::SERVICE_EVENTS_QUEUE.into(),
        id: event.0["id"].as_str().unwrap_or_default().to_owned(),
        payload: serde_json::to_vec(&event.0).unwrap_or_default(),
        due_ms: 0,
    }];
    let point = |metric: &str, value: f64, unit: &str| basalt_store::metrics::DataPoint {
        account_id: e.account.clone(),
        region: e.region.clone(),
        namespace: "AWS/States".into(),
        metric: metric.into(),
        dimensions: [("StateMachineArn".to_owned(), e.machine_arn.clone())].into(),
        value,
        unit: unit.into(),
        timestamp_ms: now,
    };
    let points = match status {
        "RUNNING" => vec![point("ExecutionsStarted", 1.0, "Count")],
        other => {
            let metric = match other {
                "SUCCEEDED" => "ExecutionsSucceeded",
                "FAILED" => "ExecutionsFailed",
                "TIMED_OUT" => "ExecutionsTimedOut",
                _ => "ExecutionsAborted",
            };
            vec![
                point(metric, 1.0, "Count"),
                point("ExecutionTime", (now - e.start_ms) as f64, "Milliseconds"),
            ]
        }
    };
    ops.extend(sf.metrics.ops(&points));
    ops
}

/// What a parent waiting with `.sync` learns of its child's end.
fn child_result(e: &ExecutionRec, mode: &str, task: &str) -> Event {
    let data = |text: &Option<String>| -> Value {
        match (mode, text) {
            ("sync:2", Some(t)) => serde_json::from_str(t).unwrap_or(Value::Null),
            (_, Some(t)) => t.clone().into(),
            (_, None) => Value::Null,
        }
    };
    let mut d = json!({
        "ExecutionArn": e.arn,
        "Input": data(&Some(e.input.clone())),
        "InputDetails": {"Included": true},
        "Name": e.name,
        "StartDate": e.start_ms,
        "StateMachineArn": e.machine_arn,
        "Status": e.status,
        "StopDate": e.stop_ms.unwrap_or(e.start_ms),
    });
    if e.status == "SUCCEEDED" {
        d["Output"] = data(&e.output);
        d["OutputDetails"] = json!({"Included": true});
        Event::TaskSucceeded {
            task: task.to_owned(),
            output: d,
        }
    } else {
        if let Some(err) = &e.error {
            d["Error"] = err.clone().into();
        }
        if let Some(c) = &e.cause {
            d["Cause"] = c.clone().into();
        }
        Event::TaskFailed {
            task: task.to_owned(),
            error: "States.TaskFailed".into(),
            cause: d.to_string(),
        }
    }
}

/// Applies a change outside the leases (StopExecution), under the same precondition.
pub fn apply(
    sf: &StepFunctions,
    e: ExecutionRec,
    change: Change,
    now: i64,
) -> Result<(), ApplyError> {
    let Some((ops, woken)) = step_ops(sf, e, change, now)? else {
        return Ok(());
    };
    match sf.state.batch(&ops) {
        Ok(()) => {
            wake(sf, woken);
            Ok(())
        }
        Err(StoreError::Conflict) => Err(ApplyError::Conflict),
        Err(e) => Err(ApplyError::Aws(e.into())),
    }
}

pub fn wake(sf: &StepFunctions, woken: Woken) {
    if let Some(log) = woken.log {
        crate::logging::deliver(sf, log);
    }
    if woken.tasks {
        sf.wake_tasks.notify_waiters();
    }
    if woken.events {
        sf.wake_events.notify_one();
    }
}

/// Records an event for an execution from outside a step (task results, SendTask*).
pub fn post(
    sf: &StepFunctions,
    execution: &str,
    id: String,
    event: Event,
    due_ms: i64,
) -> Result<(), AwsError> {
    sf.state
        .batch(&[event_item(execution, id, event, due_ms)])?;
    sf.wake_events.notify_one();
    Ok(())
}

/// The op that records an event (for a task worker's completion).
pub fn post_op(execution: &str, id: String, event: Event) -> WriteOp {
    event_item(execution, id, event, 0)
}

pub fn start_worker(sf: Arc<StepFunctions>) {
    tokio::spawn(async move {
        loop {
            let claimed = sf
                .state
                .clock_ms()
                .and_then(|now| sf.state.claim(EVENTS, now, LEASE_MS, BATCH))
                .unwrap_or_default();
            if claimed.is_empty() {
                tokio::select! {
                    _ = sf.wake_events.notified() => {}
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
                continue;
            }
            let sf2 = sf.clone();
            let _ = tokio::task::spawn_blocking(move || {
                for claim in claimed {
                    process(&sf2, &claim);
                }
            })
            .await;
        }
    });
}

fn process(sf: &StepFunctions, claim: &Claim) {
    let Ok(item) = serde_json::from_slice::<EventItem>(&claim.payload) else {
        let _ = sf.state.complete(claim, &[]);
        return;
    };
    let e = match crate::executions::load(sf, &item.execution) {
        Ok(e) => e,
        Err(err) if err.code == "ExecutionDoesNotExist" => {
            let _ = sf.state.complete(claim, &[]);
            return;
        }
        Err(err) => {
            tracing::warn!("step of {}: {err:?}", item.execution);
            let _ = sf.state.release(claim, now_ms() + 1000);
            return;
        }
    };
    let change = match item.event {
        Some(ev) => Change::Event(ev),
        None => Change::Start,
    };
    match step_ops(sf, e, change, now_ms()) {
        Ok(None) => {
            let _ = sf.state.complete(claim, &[]);
        }
        Ok(Some((ops, woken))) => match sf.state.complete(claim, &ops) {
            Ok(()) => wake(sf, woken),
            // The execution moved meanwhile (another event of it): try again shortly.
            Err(StoreError::Conflict) => {
                let _ = sf.state.release(claim, now_ms());
                sf.wake_events.notify_one();
            }
            Err(err) => {
                tracing::warn!("step of {}: {err}", item.execution);
                let _ = sf.state.release(claim, now_ms() + 1000);
            }
        },
        Err(err) => {
            tracing::warn!("step of {}: {err:?}", item.execution);
            let _ = sf.state.release(claim, now_ms() + 1000);
        }
    }
}
