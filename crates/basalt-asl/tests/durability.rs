//! Crash and restart: the Run survives a serde round trip after every step, a step replayed
//! from the persisted Run repeats itself exactly, and a redelivered event is ignored (no
//! recorded task runs twice).

use basalt_asl::{Context, Definition, Effect, Event, HistoryEvent, Run, parse};
use serde_json::{Value, json};
use std::collections::VecDeque;

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

const MACHINE: &str = r#"{
  "StartAt": "Prepare",
  "States": {
    "Prepare": {"Type": "Pass", "Parameters": {"id.$": "States.UUID()", "items.$": "$.items"}, "Next": "Poll"},
    "Poll": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Parameters": {"n.$": "States.ArrayLength($.items)"},
             "ResultSelector": {"status.$": "$.status"}, "ResultPath": "$.job",
             "Retry": [{"ErrorEquals": ["Throttled"], "IntervalSeconds": 2, "JitterStrategy": "FULL"}], "Next": "Done?"},
    "Done?": {"Type": "Choice", "Choices": [{"Variable": "$.job.status", "StringEquals": "DONE", "Next": "Fan"}], "Default": "Wait"},
    "Wait": {"Type": "Wait", "Seconds": 5, "Next": "Poll"},
    "Fan": {"Type": "Parallel", "ResultPath": "$.fan", "Next": "Each", "Branches": [
      {"StartAt": "B1", "States": {"B1": {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:putItem", "Parameters": {"TableName": "t", "Item": {"id": {"S.$": "$.id"}}}, "End": true}}},
      {"StartAt": "B2", "States": {"B2": {"Type": "Wait", "Seconds": 1, "End": true}}}]},
    "Each": {"Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 2, "ResultPath": "$.each", "End": true,
             "ItemProcessor": {"StartAt": "Work", "States": {"Work": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:w", "End": true}}}}
  }
}"#;

/// The host: performs effects from a queue and fires timers in time order.
struct Host {
    queue: VecDeque<Effect>,
    timers: Vec<(i64, String)>,
    now: i64,
    polls: u32,
    throttled: bool,
    performed: Vec<String>,
}

impl Host {
    fn next_event(&mut self) -> Option<Event> {
        while let Some(e) = self.queue.pop_front() {
            match e {
                Effect::Task {
                    task,
                    state,
                    parameters,
                    ..
                } => {
                    self.performed.push(task.clone());
                    let output = match state.as_str() {
                        "Poll" if !self.throttled => {
                            self.throttled = true;
                            return Some(Event::TaskFailed {
                                task,
                                error: "Throttled".into(),
                                cause: "slow down".into(),
                            });
                        }
                        "Poll" => {
                            self.polls += 1;
                            json!({"status": if self.polls >= 3 { "DONE" } else { "RUNNING" }})
                        }
                        _ => json!({"echo": parameters}),
                    };
                    return Some(Event::TaskSucceeded { task, output });
                }
                Effect::Timer { timer, at_ms } => self.timers.push((at_ms, timer)),
                Effect::CancelTimer { timer } => self.timers.retain(|(_, t)| *t != timer),
                _ => {}
            }
        }
        if self.timers.is_empty() {
            return None;
        }
        self.timers.sort();
        let (at, timer) = self.timers.remove(0);
        self.now = self.now.max(at);
        Some(Event::TimerFired { timer })
    }
}

fn drive(def: &Definition, crash_every_step: bool) -> (Value, Vec<HistoryEvent>, Vec<String>) {
    let (mut run, step) = Run::start(def, json!({"items": [1, 2, 3]}), ctx(), 1_000);
    let mut history = step.history;
    let mut host = Host {
        queue: step.effects.into(),
        timers: Vec::new(),
        now: 1_000,
        polls: 0,
        throttled: false,
        performed: Vec::new(),
    };
    while !run.is_done() {
        if crash_every_step {
            let saved = serde_json::to_string(&run).unwrap();
            run = serde_json::from_str(&saved).unwrap();
        }
        let event = host.next_event().expect("the run waits on something");
        let step = run.handle(def, event, host.now);
        history.extend(step.history);
        host.queue.extend(step.effects);
    }
    (
        run.output().cloned().unwrap_or(Value::Null),
        history,
        host.performed,
    )
}

#[test]
fn a_run_restored_after_every_step_ends_the_same() {
    let def = parse(MACHINE).unwrap();
    let (out, history, performed) = drive(&def, false);
    assert_eq!(out["job"], json!({"status": "DONE"}));
    assert_eq!(out["each"], json!([{"echo": 1}, {"echo": 2}, {"echo": 3}]));
    let (out2, history2, performed2) = drive(&def, true);
    assert_eq!(out, out2);
    assert_eq!(history, history2);
    assert_eq!(performed, performed2);
    // Ids are dense and every event links to an earlier one.
    for (i, h) in history.iter().enumerate() {
        assert_eq!(h.id, i as u64 + 1);
        assert!(h.previous_event_id < h.id);
    }
}

#[test]
fn a_replayed_step_repeats_itself_and_a_redelivered_event_is_ignored() {
    let def = parse(MACHINE).unwrap();
    let (run, step) = Run::start(&def, json!({"items": [1]}), ctx(), 0);
    let Effect::Task { task, .. } = &step.effects[0] else {
        panic!("{:?}", step.effects)
    };
    let saved = serde_json::to_string(&run).unwrap();
    let ok = Event::TaskSucceeded {
        task: task.clone(),
        output: json!({"status": "DONE"}),
    };
    // The same persisted Run and event give the same effects and history (random ids too).
    let mut a: Run = serde_json::from_str(&saved).unwrap();
    let mut b: Run = serde_json::from_str(&saved).unwrap();
    let sa = a.handle(&def, ok.clone(), 10);
    let sb = b.handle(&def, ok.clone(), 10);
    assert_eq!(sa.effects, sb.effects);
    assert_eq!(sa.history, sb.history);
    assert!(!sa.effects.is_empty());
    // At-least-once delivery: the same result again changes nothing.
    let again = a.handle(&def, ok, 11);
    assert!(again.effects.is_empty() && again.history.is_empty());
    assert_eq!(
        serde_json::to_value(&a).unwrap(),
        serde_json::to_value(&b).unwrap()
    );
}

#[test]
fn stop_aborts_and_cancels_what_is_outstanding() {
    let def = parse(MACHINE).unwrap();
    let (mut run, step) = Run::start(&def, json!({"items": []}), ctx(), 0);
    let Effect::Task { task, .. } = &step.effects[0] else {
        panic!()
    };
    let s = run.stop(&def, Some("Cancelled".into()), Some("by user".into()), 5);
    assert_eq!(s.effects, vec![Effect::CancelTask { task: task.clone() }]);
    assert_eq!(s.history.last().unwrap().kind, "ExecutionAborted");
    assert!(run.is_done());
    assert_eq!(run.status(), basalt_asl::Status::Aborted);
    assert!(
        run.handle(
            &def,
            Event::TaskSucceeded {
                task: task.clone(),
                output: json!(1)
            },
            6
        )
        .history
        .is_empty()
    );
}

#[test]
fn wait_timer_is_due_when_the_state_says() {
    let def = parse(r#"{"StartAt": "W", "States": {"W": {"Type": "Wait", "Timestamp": "2024-05-01T10:00:30Z", "End": true}}}"#).unwrap();
    let (_, step) = Run::start(&def, json!({}), ctx(), 1_714_557_600_000);
    assert!(matches!(&step.effects[0], Effect::Timer { at_ms, .. } if *at_ms == 1_714_557_630_000));
    let def =
        parse(r#"{"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 7, "End": true}}}"#)
            .unwrap();
    let (_, step) = Run::start(&def, json!({}), ctx(), 1_000);
    assert!(matches!(
        &step.effects[0],
        Effect::Timer { at_ms: 8_000, .. }
    ));
}

/// RedriveExecution: the run continues from the state that failed, with the input it had;
/// the states before it are not run again, the retry count starts over, the history goes on
/// with ExecutionRedriven, and a run that survives a serde round trip redrives the same way.
#[test]
fn a_failed_run_redrives_from_the_state_that_failed() {
    let def = parse(
        r#"{"StartAt": "Prepare", "TimeoutSeconds": 60, "States": {
            "Prepare": {"Type": "Pass", "Result": {"n": 1}, "ResultPath": "$.prepared", "Next": "Call"},
            "Call": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                     "Parameters": {"p.$": "$.prepared.n"}, "ResultPath": "$.called",
                     "Retry": [{"ErrorEquals": ["Flaky"], "MaxAttempts": 1, "IntervalSeconds": 1}],
                     "Next": "After"},
            "After": {"Type": "Pass", "End": true}}}"#,
    )
    .unwrap();
    let task_of = |step: &basalt_asl::Step| {
        step.effects.iter().find_map(|e| match e {
            Effect::Task {
                task, parameters, ..
            } => Some((task.clone(), parameters.clone())),
            _ => None,
        })
    };
    let (mut run, step) = Run::start(&def, json!({"x": 1}), ctx(), 0);
    let (t1, params) = task_of(&step).expect("Call's task");
    assert_eq!(params, json!({"p": 1}));
    assert!(!run.redrivable());
    let step = run.handle(
        &def,
        Event::TaskFailed {
            task: t1.clone(),
            error: "Broken".into(),
            cause: "no".into(),
        },
        1_000,
    );
    assert!(run.is_done() && run.redrivable());
    assert!(
        step.effects
            .iter()
            .any(|e| matches!(e, Effect::Failed { .. }))
    );
    // Persisted and read back, as the host does between steps.
    let mut run: Run = serde_json::from_value(serde_json::to_value(&run).unwrap()).unwrap();
    let step = run.redrive(&def, 5_000).expect("redrivable");
    assert!(!run.is_done());
    let kinds: Vec<&str> = step.history.iter().map(|h| h.kind.as_str()).collect();
    assert_eq!(kinds[0], "ExecutionRedriven");
    assert!(!kinds.contains(&"PassStateEntered"), "{kinds:?}");
    let (t2, params) = task_of(&step).expect("Call runs again");
    assert_ne!(t1, t2);
    assert_eq!(params, json!({"p": 1}));
    assert!(step.effects.iter().any(
        |e| matches!(e, Effect::Timer { timer, at_ms } if timer == "execution-timeout" && *at_ms == 65_000)
    ));
    // The old task's late answer is stale; the retry count starts over (Flaky retried once).
    let stale = run.handle(
        &def,
        Event::TaskSucceeded {
            task: t1,
            output: json!({}),
        },
        5_500,
    );
    assert!(stale.effects.is_empty() && !run.is_done());
    let retry = run.handle(
        &def,
        Event::TaskFailed {
            task: t2,
            error: "Flaky".into(),
            cause: String::new(),
        },
        6_000,
    );
    assert!(
        retry
            .effects
            .iter()
            .any(|e| matches!(e, Effect::Timer { .. }))
    );
    assert!(
        run.redrive(&def, 6_000).is_none(),
        "a running execution is not redriven"
    );
}

fn tasks_of(step: &basalt_asl::Step) -> Vec<(String, String, Value)> {
    step.effects
        .iter()
        .filter_map(|e| match e {
            Effect::Task {
                task,
                state,
                parameters,
                ..
            } => Some((task.clone(), state.clone(), parameters.clone())),
            _ => None,
        })
        .collect()
}

fn failed(task: &str) -> Event {
    Event::TaskFailed {
        task: task.into(),
        error: "Broken".into(),
        cause: "no".into(),
    }
}

fn succeeded(task: &str, output: Value) -> Event {
    Event::TaskSucceeded {
        task: task.into(),
        output,
    }
}

/// A redriven Parallel state runs only the branch that failed; the branches that succeeded
/// keep their results (AWS: "redrives only the iterations and branches that failed or
/// aborted").
#[test]
fn a_redriven_parallel_runs_only_its_failed_branch() {
    let def = parse(
        r#"{"StartAt": "Both", "States": {"Both": {"Type": "Parallel", "End": true, "Branches": [
            {"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:a", "End": true}}},
            {"StartAt": "B", "States": {"B": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:b", "End": true}}}]}}}"#,
    )
    .unwrap();
    let (mut run, step) = Run::start(&def, json!({}), ctx(), 0);
    let t = tasks_of(&step);
    assert_eq!(t.len(), 2);
    run.handle(&def, succeeded(&t[0].0, json!("a-result")), 10);
    run.handle(&def, failed(&t[1].0), 20);
    assert!(run.redrivable());
    let mut run: Run = serde_json::from_value(serde_json::to_value(&run).unwrap()).unwrap();
    let step = run.redrive(&def, 100).unwrap();
    let again = tasks_of(&step);
    assert_eq!(
        again.iter().map(|t| t.1.as_str()).collect::<Vec<_>>(),
        vec!["B"],
        "only the failed branch runs again"
    );
    let step = run.handle(&def, succeeded(&again[0].0, json!("b-result")), 200);
    assert_eq!(
        step.effects.last(),
        Some(&Effect::Succeeded {
            output: json!(["a-result", "b-result"])
        })
    );
}

/// A redrive continues a failed branch where it stopped, down nested states: a Map inside a
/// Parallel branch runs again only its iteration that failed and the one aborted with it,
/// each from its own failed state (their first states, which succeeded, are not run again),
/// and the branch that succeeded keeps its result.
#[test]
fn a_redrive_continues_nested_branches_and_iterations_where_they_stopped() {
    let def = parse(
        r#"{"StartAt": "Both", "States": {"Both": {"Type": "Parallel", "End": true, "Branches": [
            {"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:a", "End": true}}},
            {"StartAt": "B1", "States": {
                "B1": {"Type": "Pass", "Next": "Inner"},
                "Inner": {"Type": "Map", "ItemsPath": "$.items", "End": true, "ItemProcessor": {"StartAt": "P", "States": {
                    "P": {"Type": "Pass", "Next": "W"},
                    "W": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:w", "End": true}}}}}}]}}}"#,
    )
    .unwrap();
    let (mut run, step) = Run::start(&def, json!({"items": [0, 1, 2]}), ctx(), 0);
    let t = tasks_of(&step);
    assert_eq!(
        t.iter()
            .map(|t| (t.1.as_str(), t.2.clone()))
            .collect::<Vec<_>>(),
        vec![
            ("A", json!({"items": [0, 1, 2]})),
            ("W", json!(0)),
            ("W", json!(1)),
            ("W", json!(2))
        ]
    );
    run.handle(&def, succeeded(&t[0].0, json!("a")), 10);
    run.handle(&def, succeeded(&t[1].0, json!("r0")), 20);
    run.handle(&def, failed(&t[2].0), 30);
    assert!(run.is_done() && run.redrivable());
    let mut run: Run = serde_json::from_value(serde_json::to_value(&run).unwrap()).unwrap();
    let step = run.redrive(&def, 100).unwrap();
    let again = tasks_of(&step);
    assert_eq!(
        again
            .iter()
            .map(|t| (t.1.as_str(), t.2.clone()))
            .collect::<Vec<_>>(),
        vec![("W", json!(1)), ("W", json!(2))],
        "the failed and the aborted iteration, at the state where they stopped"
    );
    let entered: Vec<&str> = step
        .history
        .iter()
        .filter(|h| h.kind.ends_with("StateEntered"))
        .filter_map(|h| h.details.as_ref()?.1["name"].as_str())
        .collect();
    assert!(
        !entered.contains(&"A") && !entered.contains(&"B1") && !entered.contains(&"P"),
        "states that succeeded are not run again: {entered:?}"
    );
    run.handle(&def, succeeded(&again[0].0, json!("r1")), 200);
    let last = run.handle(&def, succeeded(&again[1].0, json!("r2")), 210);
    assert_eq!(
        last.effects.last(),
        Some(&Effect::Succeeded {
            output: json!(["a", ["r0", "r1", "r2"]])
        })
    );
}

/// Stopped while branches ran, a redriven execution continues each where it stood.
#[test]
fn a_redrive_after_a_stop_continues_the_running_branches() {
    let def = parse(
        r#"{"StartAt": "Both", "States": {"Both": {"Type": "Parallel", "End": true, "Branches": [
            {"StartAt": "A1", "States": {"A1": {"Type": "Pass", "Next": "A2"},
                "A2": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:a", "End": true}}},
            {"StartAt": "B", "States": {"B": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:b", "End": true}}}]}}}"#,
    )
    .unwrap();
    let (mut run, step) = Run::start(&def, json!({}), ctx(), 0);
    let t = tasks_of(&step);
    let b = t.iter().find(|t| t.1 == "B").expect("B scheduled");
    run.handle(&def, succeeded(&b.0, json!("b")), 10);
    run.stop(&def, None, None, 20);
    let step = run.redrive(&def, 100).unwrap();
    let again = tasks_of(&step);
    assert_eq!(
        again.iter().map(|t| t.1.as_str()).collect::<Vec<_>>(),
        vec!["A2"]
    );
    let last = run.handle(&def, succeeded(&again[0].0, json!("a")), 200);
    assert_eq!(
        last.effects.last(),
        Some(&Effect::Succeeded {
            output: json!(["a", "b"])
        })
    );
}

/// A redriven inline Map runs the iterations that failed or never started, in their slots.
#[test]
fn a_redriven_inline_map_runs_only_the_unsuccessful_iterations() {
    let def = parse(
        r#"{"StartAt": "Each", "States": {"Each": {"Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 2, "End": true,
            "ItemProcessor": {"StartAt": "W", "States": {"W": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:w", "End": true}}}}}}"#,
    )
    .unwrap();
    let (mut run, step) = Run::start(&def, json!({"items": [0, 1, 2, 3]}), ctx(), 0);
    let t = tasks_of(&step);
    assert_eq!(
        t.iter().map(|t| t.2.clone()).collect::<Vec<_>>(),
        vec![json!(0), json!(1)]
    );
    let step = run.handle(&def, succeeded(&t[0].0, json!("r0")), 10);
    let t2 = tasks_of(&step);
    assert_eq!(t2[0].2, json!(2));
    run.handle(&def, failed(&t[1].0), 20);
    assert!(run.is_done());
    let step = run.redrive(&def, 100).unwrap();
    let mut pending: Vec<(String, Value)> =
        tasks_of(&step).into_iter().map(|t| (t.0, t.2)).collect();
    assert_eq!(
        pending.iter().map(|t| t.1.clone()).collect::<Vec<_>>(),
        vec![json!(1), json!(2)],
        "item 0 succeeded; 2 was aborted"
    );
    assert!(
        run.redrive(&def, 0).is_none(),
        "a running execution is not redriven"
    );
    // Finish the redriven iterations (and item 3, started as a slot frees up).
    let mut last = basalt_asl::Step::default();
    while let Some((task, item)) = pending.pop() {
        last = run.handle(&def, succeeded(&task, json!(format!("r{item}"))), 200);
        pending.extend(tasks_of(&last).into_iter().map(|t| (t.0, t.2)));
    }
    assert_eq!(
        last.effects.last(),
        Some(&Effect::Succeeded {
            output: json!(["r0", "r1", "r2", "r3"])
        })
    );
}

/// A redriven distributed Map continues its Map Run: MapRunRedriven, the same ARN, the
/// successful iterations kept and counted, the others pending again.
#[test]
fn a_redriven_distributed_map_continues_its_map_run() {
    let def = parse(
        r#"{"StartAt": "Each", "States": {"Each": {"Type": "Map", "ItemsPath": "$.items", "End": true,
            "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
              "StartAt": "W", "States": {"W": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:w", "End": true}}}}}}"#,
    )
    .unwrap();
    let (mut run, step) = Run::start(&def, json!({"items": [0, 1, 2]}), ctx(), 0);
    let t = tasks_of(&step);
    run.handle(&def, succeeded(&t[0].0, json!("r0")), 10);
    run.handle(&def, failed(&t[1].0), 20);
    let arn = run.map_runs()[0].arn.clone();
    assert_eq!(run.map_runs()[0].status, basalt_asl::MapRunStatus::Failed);
    let step = run.redrive(&def, 100).unwrap();
    let kinds: Vec<&str> = step.history.iter().map(|h| h.kind.as_str()).collect();
    assert!(
        kinds.contains(&"MapRunRedriven") && !kinds.contains(&"MapRunStarted"),
        "{kinds:?}"
    );
    let redriven = step
        .history
        .iter()
        .find(|h| h.kind == "MapRunRedriven")
        .unwrap();
    assert_eq!(
        redriven.details.as_ref().unwrap().1,
        json!({"mapRunArn": arn, "redriveCount": 1})
    );
    assert_eq!(run.map_runs().len(), 1);
    let m = &run.map_runs()[0];
    assert_eq!(
        (m.status, m.redrive_count, m.redrive_ms),
        (basalt_asl::MapRunStatus::Running, 1, Some(100))
    );
    assert_eq!(
        (
            m.items.succeeded,
            m.items.running,
            m.items.failed,
            m.items.aborted
        ),
        (1, 2, 0, 0)
    );
    let again = tasks_of(&step);
    assert_eq!(
        again.iter().map(|t| t.2.clone()).collect::<Vec<_>>(),
        vec![json!(1), json!(2)]
    );
    run.handle(&def, succeeded(&again[0].0, json!("r1")), 200);
    let step = run.handle(&def, succeeded(&again[1].0, json!("r2")), 210);
    assert_eq!(
        step.effects.last(),
        Some(&Effect::Succeeded {
            output: json!(["r0", "r1", "r2"])
        })
    );
    assert_eq!(
        run.map_runs()[0].status,
        basalt_asl::MapRunStatus::Succeeded
    );
    assert_eq!(run.map_runs()[0].items.succeeded, 3);
}

/// A redriven distributed Map whose ItemReader fails again keeps what the first attempt
/// kept: the next redrive still runs only the iteration that failed, in the same Map Run.
#[test]
fn a_redrive_that_fails_before_the_children_keeps_what_was_kept() {
    let def = parse(
        r#"{"StartAt": "Each", "States": {"Each": {"Type": "Map", "End": true,
            "ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "JSON"},
                           "Parameters": {"Bucket": "b", "Key": "items.json"}},
            "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
              "StartAt": "W", "States": {"W": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:w", "End": true}}}}}}"#,
    )
    .unwrap();
    let items = json!("[0, 1]");
    let (mut run, step) = Run::start(&def, json!({}), ctx(), 0);
    let reader = tasks_of(&step);
    let step = run.handle(&def, succeeded(&reader[0].0, items.clone()), 1);
    let t = tasks_of(&step);
    run.handle(&def, succeeded(&t[0].0, json!("r0")), 2);
    run.handle(&def, failed(&t[1].0), 3);
    let map_run = run.map_runs()[0].arn.clone();
    // First redrive: the reader fails.
    let step = run.redrive(&def, 10).unwrap();
    let reader = tasks_of(&step);
    assert_eq!(reader[0].1, "Each");
    run.handle(&def, failed(&reader[0].0), 11);
    assert!(run.is_done() && run.redrivable());
    // Second redrive: only item 1 runs, in the same Map Run.
    let step = run.redrive(&def, 20).unwrap();
    let reader = tasks_of(&step);
    let step = run.handle(&def, succeeded(&reader[0].0, items), 21);
    let again = tasks_of(&step);
    assert_eq!(
        again.iter().map(|t| t.2.clone()).collect::<Vec<_>>(),
        vec![json!(1)]
    );
    let step = run.handle(&def, succeeded(&again[0].0, json!("r1")), 22);
    assert_eq!(
        step.effects.last(),
        Some(&Effect::Succeeded {
            output: json!(["r0", "r1"])
        })
    );
    assert_eq!(run.map_runs().len(), 1);
    assert_eq!(run.map_runs()[0].arn, map_run);
    // Redriven once: the first redrive ended before it reached the Map Run.
    assert_eq!(run.map_runs()[0].redrive_count, 1);
}
