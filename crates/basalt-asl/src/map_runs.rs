//! Map Runs: what a distributed Map state reports while and after it runs (DescribeMapRun,
//! ListMapRuns), and UpdateMapRun changing a running one's concurrency and tolerated failures.
//!
//! Each iteration (an item, or a batch of them with an ItemBatcher) is one child workflow
//! execution in AWS's terms: the execution counts count iterations, the item counts count
//! the items in them.

use crate::model::Definition;
use crate::run::{Out, Run, Step, Wait};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::VecDeque;

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapRunStatus {
    Running,
    Succeeded,
    Failed,
    Aborted,
}

impl MapRunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MapRunStatus::Running => "RUNNING",
            MapRunStatus::Succeeded => "SUCCEEDED",
            MapRunStatus::Failed => "FAILED",
            MapRunStatus::Aborted => "ABORTED",
        }
    }
}

/// Child executions (or items) by where they are; pending is what is left of the total.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub total: u64,
    pub running: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub aborted: u64,
    pub results_written: u64,
}

impl Counts {
    pub fn pending(&self) -> u64 {
        self.total
            .saturating_sub(self.running + self.succeeded + self.failed + self.aborted)
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct MapRun {
    pub arn: String,
    /// The Map state's name.
    pub state: String,
    /// The frame that runs it (internal).
    pub(crate) frame: u64,
    pub start_ms: i64,
    #[serde(default)]
    pub stop_ms: Option<i64>,
    pub status: MapRunStatus,
    /// 0: no limit.
    pub max_concurrency: u64,
    pub tolerated_failure_count: u64,
    pub tolerated_failure_percentage: f64,
    pub executions: Counts,
    pub items: Counts,
    /// Items in each iteration, when an ItemBatcher grouped them (one each otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) batch_items: Vec<u64>,
    #[serde(default)]
    pub redrive_count: u32,
    #[serde(default)]
    pub redrive_ms: Option<i64>,
}

impl MapRun {
    fn items_in(&self, slot: usize) -> u64 {
        self.batch_items.get(slot).copied().unwrap_or(1)
    }
}

/// How a child of a Map Run moved.
#[derive(Clone, Copy)]
pub(crate) enum Moved {
    Started,
    Succeeded,
    Failed,
}

/// Why UpdateMapRun was refused.
#[derive(Debug, PartialEq)]
pub enum UpdateMapRunError {
    NotFound,
    NotRunning,
}

impl Run {
    /// The Map Runs this execution started, oldest first.
    pub fn map_runs(&self) -> &[MapRun] {
        &self.map_runs
    }

    pub fn map_run(&self, arn: &str) -> Option<&MapRun> {
        self.map_runs.iter().find(|m| m.arn == arn)
    }

    pub(crate) fn map_run_mut(&mut self, arn: &str) -> Option<&mut MapRun> {
        self.map_runs.iter_mut().find(|m| m.arn == arn)
    }

    /// A child of the Map Run `arn` (its iteration `slot`) moved.
    pub(crate) fn map_run_moved(&mut self, arn: &str, slot: usize, how: Moved) {
        let Some(m) = self.map_run_mut(arn) else {
            return;
        };
        let n = m.items_in(slot);
        for (c, k) in [(&mut m.executions, 1), (&mut m.items, n)] {
            match how {
                Moved::Started => c.running += k,
                Moved::Succeeded => {
                    c.running = c.running.saturating_sub(k);
                    c.succeeded += k;
                }
                Moved::Failed => {
                    c.running = c.running.saturating_sub(k);
                    c.failed += k;
                }
            }
        }
    }

    /// The Map Run ended with `status` (children still running were cancelled: aborted).
    pub(crate) fn map_run_ended(&mut self, arn: &str, status: MapRunStatus, now_ms: i64) {
        let Some(m) = self.map_run_mut(arn) else {
            return;
        };
        if m.status != MapRunStatus::Running {
            return;
        }
        m.status = status;
        m.stop_ms = Some(now_ms);
        for c in [&mut m.executions, &mut m.items] {
            c.aborted += std::mem::take(&mut c.running);
        }
    }

    /// A redriven execution continues the Map Run `arn` in frame `fid`: the children in
    /// `kept` succeeded before, every other one is pending again. Returns its redrive count.
    pub(crate) fn map_run_redriven(
        &mut self,
        arn: &str,
        fid: u64,
        kept: &[usize],
        now_ms: i64,
    ) -> u32 {
        let Some(m) = self.map_run_mut(arn) else {
            return 0;
        };
        let items: u64 = kept.iter().map(|&s| m.items_in(s)).sum();
        m.frame = fid;
        m.status = MapRunStatus::Running;
        m.stop_ms = None;
        m.redrive_count += 1;
        m.redrive_ms = Some(now_ms);
        for (c, done) in [
            (&mut m.executions, kept.len() as u64),
            (&mut m.items, items),
        ] {
            *c = Counts {
                total: c.total,
                succeeded: done,
                ..Default::default()
            };
        }
        m.redrive_count
    }

    /// The ResultWriter of the Map Run that `fid` ran wrote every child's result.
    pub(crate) fn map_run_written(&mut self, fid: u64) {
        if let Some(m) = self.map_runs.iter_mut().rev().find(|m| m.frame == fid) {
            for c in [&mut m.executions, &mut m.items] {
                c.results_written = c.succeeded + c.failed;
            }
        }
    }

    /// UpdateMapRun: new limits for a running Map Run, applied at once (a higher
    /// MaxConcurrency starts more iterations now; the tolerated failures judge the next
    /// failure). `None` leaves a limit as it is.
    pub fn update_map_run(
        &mut self,
        def: &Definition,
        arn: &str,
        max_concurrency: Option<u64>,
        tolerated_count: Option<u64>,
        tolerated_pct: Option<f64>,
        now_ms: i64,
    ) -> Result<Step, UpdateMapRunError> {
        let m = self.map_run_mut(arn).ok_or(UpdateMapRunError::NotFound)?;
        if m.status != MapRunStatus::Running {
            return Err(UpdateMapRunError::NotRunning);
        }
        let fid = m.frame;
        if let Some(x) = max_concurrency {
            m.max_concurrency = x;
        }
        if let Some(x) = tolerated_count {
            m.tolerated_failure_count = x;
        }
        if let Some(x) = tolerated_pct {
            m.tolerated_failure_percentage = x;
        }
        let mut o = Out {
            now: now_ms,
            step: Step::default(),
            queue: VecDeque::new(),
        };
        let Some(f) = self.frames.get_mut(&fid) else {
            return Ok(o.step);
        };
        let (machine, state) = (f.machine, f.state.clone());
        if let Wait::Children(c) = &mut f.wait {
            if let Some(x) = max_concurrency {
                c.max = x as usize;
            }
            if tolerated_count.is_some() {
                c.tolerated_count = tolerated_count;
            }
            if tolerated_pct.is_some() {
                c.tolerated_pct = tolerated_pct;
            }
        }
        let s = def.state(machine, &state);
        if let Err((e, cause)) = self.launch(def, fid, s, &mut o) {
            self.state_error(def, fid, e, cause, &mut o);
        }
        self.drive(def, &mut o);
        Ok(o.step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::{Context, Effect, Event};
    use serde_json::{Value, json};

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

    /// A distributed Map over `$.items` whose iterations call a Lambda function.
    fn machine(extra: Value) -> Definition {
        let mut map = json!({
            "Type": "Map", "ItemsPath": "$.items", "End": true, "Label": "Fan",
            "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                "StartAt": "Work", "States": {"Work": {"Type": "Task",
                    "Resource": "arn:aws:lambda:us-east-1:123456789012:function:w", "End": true}}}
        });
        for (k, v) in extra.as_object().unwrap() {
            map[k] = v.clone();
        }
        crate::parse(&json!({"StartAt": "Each", "States": {"Each": map}}).to_string()).unwrap()
    }

    fn tasks(effects: &[Effect]) -> Vec<String> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Task { task, .. } => Some(task.clone()),
                _ => None,
            })
            .collect()
    }

    fn ok(task: &str) -> Event {
        Event::TaskSucceeded {
            task: task.into(),
            output: json!(1),
        }
    }

    fn fail(task: &str) -> Event {
        Event::TaskFailed {
            task: task.into(),
            error: "Boom".into(),
            cause: "c".into(),
        }
    }

    /// Every child's changes, in order, as (slot, what).
    fn child_log(steps: &[&Step]) -> Vec<(usize, String)> {
        steps
            .iter()
            .flat_map(|s| s.children.iter())
            .map(|c| match c {
                ChildChange::Started { child, name, .. } => {
                    assert_eq!(name.len(), 36, "a UUID name");
                    (child.slot, "Started".to_string())
                }
                ChildChange::Event { child, event } => (
                    child.slot,
                    format!("{}:{}<{}", event.kind, event.id, event.previous_event_id),
                ),
                ChildChange::Ended { child, status, .. } => {
                    (child.slot, format!("Ended:{}", status.as_str()))
                }
            })
            .collect()
    }

    #[test]
    fn iterations_are_child_executions_with_their_own_history() {
        let def = machine(json!({"ToleratedFailureCount": 1}));
        let (mut run, s1) = Run::start(&def, json!({"items": [1, 2, 3]}), ctx(), 1_000);
        // The parent's history has the Map Run, not the iterations' states.
        assert!(s1.history.iter().all(|h| !h.kind.starts_with("TaskState")));
        let t = tasks(&s1.effects);
        assert_eq!(t.len(), 3);
        let s2 = run.handle(&def, ok(&t[0]), 2_000);
        let s3 = run.handle(&def, fail(&t[1]), 3_000);
        let log = child_log(&[&s1, &s2, &s3]);
        let of = |slot: usize| -> Vec<String> {
            log.iter()
                .filter(|(s, _)| *s == slot)
                .map(|(_, w)| w.clone())
                .collect()
        };
        assert_eq!(
            of(0),
            [
                "Started",
                "ExecutionStarted:1<0",
                "TaskStateEntered:2<1",
                "LambdaFunctionScheduled:3<2",
                "LambdaFunctionStarted:4<3",
                "LambdaFunctionSucceeded:5<4",
                "TaskStateExited:6<5",
                "ExecutionSucceeded:7<6",
                "Ended:SUCCEEDED"
            ]
        );
        let failed = of(1);
        assert_eq!(failed.first().map(String::as_str), Some("Started"));
        assert_eq!(failed.last().map(String::as_str), Some("Ended:FAILED"));
        assert!(failed.iter().any(|w| w.starts_with("ExecutionFailed:")));
        // The parent's own history links only to its own events.
        for h in [&s1, &s2, &s3].iter().flat_map(|s| s.history.iter()) {
            assert!(
                h.previous_event_id < h.id,
                "{} links forward: {h:?}",
                h.kind
            );
        }
        // Stopping the execution aborts the child still running.
        let s4 = run.stop(&def, Some("Stop".into()), Some("by test".into()), 4_000);
        let aborted = child_log(&[&s4]);
        assert_eq!(
            aborted
                .iter()
                .map(|(s, w)| (*s, w.split(':').next().unwrap().to_string()))
                .collect::<Vec<_>>(),
            [
                (2, "ExecutionAborted".to_string()),
                (2, "Ended".to_string())
            ]
        );
    }

    #[test]
    fn a_child_past_its_history_quota_fails_alone() {
        let def = crate::parse(
            &json!({"StartAt": "Each", "States": {"Each": {
                "Type": "Map", "ItemsPath": "$.items", "End": true, "ToleratedFailureCount": 1,
                "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "Loop", "States": {
                        "Loop": {"Type": "Pass", "Next": "Again?"},
                        "Again?": {"Type": "Choice", "Choices": [
                            {"Variable": "$", "NumericEquals": 1, "Next": "Loop"}], "Default": "Done"},
                        "Done": {"Type": "Succeed"}}}}}})
            .to_string(),
        )
        .unwrap();
        let (run, step) =
            Run::start_with_limit(&def, json!({"items": [0, 1]}), ctx(), 1_000, Some(200));
        type EndOf = (usize, MapRunStatus, Option<(String, String)>);
        let ended: Vec<EndOf> = step
            .children
            .iter()
            .filter_map(|c| match c {
                ChildChange::Ended {
                    child,
                    status,
                    error,
                    ..
                } => Some((child.slot, *status, error.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(ended.len(), 2, "{ended:?}");
        let looped = ended.iter().find(|e| e.0 == 1).unwrap();
        assert_eq!(looped.1, MapRunStatus::Failed);
        assert!(
            looped
                .2
                .as_ref()
                .unwrap()
                .1
                .contains("maximum number of history events")
        );
        assert_eq!(
            ended.iter().find(|e| e.0 == 0).unwrap().1,
            MapRunStatus::Succeeded
        );
        // Within the tolerated failure, the execution goes on and succeeds.
        assert!(run.is_done());
        assert!(matches!(
            step.effects.last(),
            Some(Effect::Succeeded { .. })
        ));
    }

    #[test]
    fn counts_follow_the_iterations_and_update_raises_concurrency() {
        let def = machine(json!({"MaxConcurrency": 1}));
        let (mut run, step) = Run::start(&def, json!({"items": [1, 2, 3, 4]}), ctx(), 1_000);
        let first = tasks(&step.effects);
        assert_eq!(first.len(), 1, "MaxConcurrency 1 starts one iteration");
        let m = run.map_runs()[0].clone();
        assert!(
            m.arn
                .starts_with("arn:aws:states:us-east-1:123456789012:mapRun:M/Fan:"),
            "{}",
            m.arn
        );
        assert_eq!(
            (m.status, m.start_ms, m.max_concurrency),
            (MapRunStatus::Running, 1_000, 1)
        );
        assert_eq!(
            (
                m.executions.total,
                m.executions.running,
                m.executions.pending()
            ),
            (4, 1, 3)
        );

        let step = run.handle(&def, ok(&first[0]), 2_000);
        let second = tasks(&step.effects);
        assert_eq!(second.len(), 1);
        let m = &run.map_runs()[0];
        assert_eq!(
            (m.items.succeeded, m.items.running, m.items.pending()),
            (1, 1, 2)
        );

        let step = run
            .update_map_run(&def, &m.arn.clone(), Some(0), None, None, 2_500)
            .unwrap();
        let more = tasks(&step.effects);
        assert_eq!(
            more.len(),
            2,
            "no limit now: the two pending iterations start at once"
        );
        let m = &run.map_runs()[0];
        assert_eq!((m.max_concurrency, m.executions.running), (0, 3));

        for t in second.iter().chain(&more) {
            run.handle(&def, ok(t), 3_000);
        }
        let m = &run.map_runs()[0];
        assert_eq!(
            (m.status, m.stop_ms),
            (MapRunStatus::Succeeded, Some(3_000))
        );
        assert_eq!(
            (m.items.succeeded, m.items.running, m.items.pending()),
            (4, 0, 0)
        );
        assert_eq!(m.items.results_written, 0, "no ResultWriter");
        let arn = m.arn.clone();
        let refused = |r: Result<Step, UpdateMapRunError>| r.err();
        assert_eq!(
            refused(run.update_map_run(&def, &arn, Some(5), None, None, 4_000)),
            Some(UpdateMapRunError::NotRunning)
        );
        assert_eq!(
            refused(run.update_map_run(&def, "arn:nope", Some(5), None, None, 4_000)),
            Some(UpdateMapRunError::NotFound)
        );
    }

    #[test]
    fn batches_count_items_and_failures_past_the_threshold_fail_the_run() {
        let def =
            machine(json!({"ItemBatcher": {"MaxItemsPerBatch": 2}, "ToleratedFailureCount": 0}));
        let (mut run, step) = Run::start(&def, json!({"items": [1, 2, 3, 4, 5]}), ctx(), 0);
        let started = tasks(&step.effects);
        assert_eq!(started.len(), 3, "three batches: 2 + 2 + 1 items");
        let m = &run.map_runs()[0];
        assert_eq!(
            (m.executions.total, m.items.total, m.items.running),
            (3, 5, 5)
        );
        assert_eq!(m.tolerated_failure_count, 0);

        run.handle(&def, ok(&started[2]), 10);
        run.handle(&def, fail(&started[0]), 20);
        let m = &run.map_runs()[0];
        assert_eq!(m.status, MapRunStatus::Failed);
        assert_eq!(
            (m.items.succeeded, m.items.failed, m.items.aborted),
            (1, 2, 2)
        );
        assert_eq!(
            (
                m.executions.succeeded,
                m.executions.failed,
                m.executions.aborted
            ),
            (1, 1, 1)
        );
        assert_eq!(run.status(), crate::run::Status::Failed);
    }

    #[test]
    fn stopping_the_execution_aborts_a_running_map_run() {
        let def = machine(json!({"ToleratedFailurePercentage": 50}));
        let (mut run, step) = Run::start(&def, json!({"items": [1, 2]}), ctx(), 0);
        let started = tasks(&step.effects);
        let step = run.handle(&def, fail(&started[0]), 5);
        assert!(tasks(&step.effects).is_empty());
        assert_eq!(
            run.map_runs()[0].status,
            MapRunStatus::Running,
            "50 % tolerated"
        );
        run.stop(&def, None, None, 9);
        let m = &run.map_runs()[0];
        assert_eq!((m.status, m.stop_ms), (MapRunStatus::Aborted, Some(9)));
        assert_eq!(
            (m.items.failed, m.items.aborted, m.items.running),
            (1, 1, 0)
        );
        assert_eq!(m.tolerated_failure_percentage, 50.0);
        // The run survives a round trip with its Map Runs.
        let back: Run = serde_json::from_value(serde_json::to_value(&run).unwrap()).unwrap();
        assert_eq!(back.map_runs(), run.map_runs());
    }
}

/// Which child execution a frame runs for: a distributed Map's iteration `slot`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ChildOf {
    pub map_run: String,
    pub slot: usize,
}

impl ChildOf {
    pub(crate) fn key(&self) -> String {
        format!("{}#{}", self.map_run, self.slot)
    }
}

/// A distributed Map's iterations are child executions with their own history, which AWS
/// lists with `ListExecutions(mapRunArn)` and shows with DescribeExecution and
/// GetExecutionHistory. What happened to them in a step, for the host to keep.
#[derive(Clone, Debug, PartialEq)]
pub enum ChildChange {
    Started {
        child: ChildOf,
        /// The execution's name (a UUID, as AWS names them).
        name: String,
        /// Items in the iteration (an ItemBatcher's batch, or 1).
        items: u64,
        input: Value,
        at_ms: i64,
    },
    Event {
        child: ChildOf,
        event: crate::history::HistoryEvent,
    },
    Ended {
        child: ChildOf,
        status: MapRunStatus,
        output: Option<Value>,
        error: Option<(String, String)>,
        at_ms: i64,
    },
}

impl Run {
    /// Iteration `slot` of the Map Run `map_run` starts in frame `fid` as a child execution
    /// with `input`: its own ExecutionStarted event, to which the frame's events link.
    pub(crate) fn child_started(
        &mut self,
        o: &mut Out,
        fid: u64,
        map_run: &str,
        slot: usize,
        input: &Value,
    ) {
        let child = ChildOf {
            map_run: map_run.to_owned(),
            slot,
        };
        let (a, b) = (self.draw(), self.draw());
        let items = self.map_run(map_run).map_or(1, |m| m.items_in(slot));
        o.step.children.push(ChildChange::Started {
            child: child.clone(),
            name: crate::rng::uuid(a, b),
            items,
            input: input.clone(),
            at_ms: o.now,
        });
        let mut details = crate::history::data("input", input);
        details["roleArn"] = serde_json::json!(self.ctx.role_arn);
        self.child_events.remove(&child.key());
        let id = self.child_event(
            o,
            &child,
            None,
            "ExecutionStarted",
            Some(("executionStartedEventDetails", details)),
        );
        if let Some(f) = self.frames.get_mut(&fid) {
            f.child = Some(child);
            f.last_event = id;
        }
    }

    /// An event of a child execution's history; `prev` `None`: after its last one.
    pub(crate) fn child_event(
        &mut self,
        o: &mut Out,
        child: &ChildOf,
        prev: Option<u64>,
        kind: &str,
        details: Option<(&str, Value)>,
    ) -> u64 {
        let counter = self.child_events.entry(child.key()).or_insert((0, 0));
        counter.0 += 1;
        let id = counter.0;
        let previous_event_id = prev.unwrap_or(counter.1);
        counter.1 = id;
        o.step.children.push(ChildChange::Event {
            child: child.clone(),
            event: crate::history::HistoryEvent {
                id,
                previous_event_id,
                timestamp_ms: o.now,
                kind: kind.to_string(),
                details: details.map(|(k, v)| (k.to_string(), v)),
            },
        });
        id
    }

    /// A child execution ended: its output, its error, or (`Err(None)`) aborted.
    pub(crate) fn child_ended(
        &mut self,
        o: &mut Out,
        child: &ChildOf,
        result: Result<&Value, Option<(&str, &str)>>,
    ) {
        if !self.child_events.contains_key(&child.key()) {
            return;
        }
        let (status, output, error) = match result {
            Ok(out) => {
                let d = crate::history::data("output", out);
                self.child_event(
                    o,
                    child,
                    None,
                    "ExecutionSucceeded",
                    Some(("executionSucceededEventDetails", d)),
                );
                (MapRunStatus::Succeeded, Some(out.clone()), None)
            }
            Err(Some((e, c))) => {
                let d = serde_json::json!({"error": e, "cause": c});
                self.child_event(
                    o,
                    child,
                    None,
                    "ExecutionFailed",
                    Some(("executionFailedEventDetails", d)),
                );
                (
                    MapRunStatus::Failed,
                    None,
                    Some((e.to_owned(), c.to_owned())),
                )
            }
            Err(None) => {
                self.child_event(
                    o,
                    child,
                    None,
                    "ExecutionAborted",
                    Some(("executionAbortedEventDetails", serde_json::json!({}))),
                );
                (MapRunStatus::Aborted, None, None)
            }
        };
        self.child_events.remove(&child.key());
        o.step.children.push(ChildChange::Ended {
            child: child.clone(),
            status,
            output,
            error,
            at_ms: o.now,
        });
    }
}
