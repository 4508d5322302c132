//! Map Runs: what a distributed Map state reports while and after it runs (DescribeMapRun,
//! ListMapRuns), and UpdateMapRun changing a running one's concurrency and tolerated failures.
//!
//! Each iteration (an item, or a batch of them with an ItemBatcher) is one child workflow
//! execution in AWS's terms: the execution counts count iterations, the item counts count
//! the items in them.

use crate::model::Definition;
use crate::run::{Out, Run, Step, Wait};
use serde::{Deserialize, Serialize};
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
