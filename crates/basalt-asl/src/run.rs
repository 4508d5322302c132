//! The run state and its public step functions: `start`, `handle`, `stop`. Every call is
//! pure: it takes the persisted `Run`, the definition, an event and the time, and returns
//! the effects the host must perform and the history events to append.

use crate::history::{HistoryEvent, TaskFamily, data};
use crate::model::Definition;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, VecDeque};

/// `$$` (the context object) as the host knows it.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Context {
    /// The execution ARN.
    pub execution_id: String,
    pub execution_name: String,
    /// ISO 8601 with milliseconds and `Z`.
    pub start_time: String,
    pub role_arn: String,
    pub state_machine_id: String,
    pub state_machine_name: String,
    pub redrive_count: u32,
}

/// What the host must do.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum Effect {
    /// Perform a task and report `TaskSucceeded`/`TaskFailed` with `task`. `resource` is the
    /// Resource as written; `parameters` the resolved Parameters/Arguments (or the effective
    /// input when none). `token` is set for `.waitForTaskToken`: the host then waits for
    /// SendTaskSuccess/Failure with it. ItemReader and ResultWriter of a distributed Map are
    /// tasks too (see the crate docs for what the host returns).
    Task {
        task: String,
        state: String,
        resource: String,
        parameters: Value,
        timeout_seconds: Option<u64>,
        heartbeat_seconds: Option<u64>,
        token: Option<String>,
        credentials: Option<Value>,
    },
    /// Report `TimerFired { timer }` at `at_ms` (epoch ms): Wait states, Retry intervals and
    /// the execution's TimeoutSeconds (`timer` = `execution-timeout`).
    Timer {
        timer: String,
        at_ms: i64,
    },
    /// Cancel what is no longer awaited.
    CancelTask {
        task: String,
    },
    CancelTimer {
        timer: String,
    },
    /// The execution ended.
    Succeeded {
        output: Value,
    },
    Failed {
        error: String,
        cause: String,
    },
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum Event {
    TaskSucceeded {
        task: String,
        output: Value,
    },
    TaskFailed {
        task: String,
        error: String,
        cause: String,
    },
    /// The host's timer for `timeout_seconds` ran out: `States.Timeout`.
    TaskTimedOut {
        task: String,
    },
    /// The host's timer for `heartbeat_seconds` ran out: `States.HeartbeatTimeout`.
    TaskHeartbeatTimedOut {
        task: String,
    },
    TimerFired {
        timer: String,
    },
    /// The host's call for a `.sync` or `.waitForTaskToken` task went out (`output`: the
    /// service's answer); the task still waits for its end. Only recorded in the history.
    TaskSubmitted {
        task: String,
        output: Value,
    },
}

#[derive(Debug, Default)]
pub struct Step {
    pub effects: Vec<Effect>,
    pub history: Vec<HistoryEvent>,
    /// What happened to the child executions of distributed Maps (their own histories).
    pub children: Vec<crate::map_runs::ChildChange>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Running,
    Succeeded,
    Failed,
    Aborted,
    TimedOut,
}

pub(crate) const EXECUTION_TIMEOUT: &str = "execution-timeout";
/// A Standard execution's history quota; past it the execution fails (this also ends a
/// loop of Pass/Choice states that never waits).
pub const MAX_HISTORY_EVENTS: u64 = 25_000;
/// 256 KiB: the largest input or output a state may pass on.
pub(crate) const PAYLOAD_LIMIT: usize = 262_144;

/// Everything that changes while an execution runs; the host persists it after every step.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Run {
    pub(crate) ctx: Context,
    pub(crate) input: Value,
    pub(crate) seed: u64,
    pub(crate) draws: u64,
    pub(crate) next_event: u64,
    pub(crate) next_frame: u64,
    pub(crate) next_id: u64,
    pub(crate) frames: BTreeMap<u64, Frame>,
    pub(crate) tasks: BTreeMap<String, u64>,
    pub(crate) timers: BTreeMap<String, u64>,
    pub(crate) status: Status,
    pub(crate) output: Option<Value>,
    pub(crate) error: Option<(String, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) test: Option<crate::test_state::Trace>,
    #[serde(default = "default_limit")]
    pub(crate) max_history: Option<u64>,
    /// Where a redrive continues: the main flow's state that did not complete, with its input
    /// and variables, kept when the execution fails, times out or is stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) resume: Option<Resume>,
    /// The distributed Map states' runs, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) map_runs: Vec<crate::map_runs::MapRun>,
    /// Per running child execution of a distributed Map (`{map run}#{slot}`): its events so
    /// far and its last event's id.
    #[serde(default)]
    pub(crate) child_events: std::collections::BTreeMap<String, (u64, u64)>,
    /// Branches and iterations a redrive continues inside a redriven Parallel or Map state,
    /// by frame, until they start their own children again.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) redriving_below: BTreeMap<u64, Redriving>,
    /// What a redriven Parallel or Map state keeps from its last attempt, until it starts
    /// its children again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) redriving: Option<Redriving>,
}

/// The main flow's unfinished state, as a redrive re-enters it.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub(crate) struct Resume {
    pub state: String,
    pub input: Value,
    pub vars: Map<String, Value>,
    /// A Parallel or Map state's children that succeeded: (slot, result). A redrive runs
    /// only the others, as AWS redrives only the branches and iterations that failed or were
    /// aborted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<(usize, Value)>,
    /// A distributed Map's run, which a redrive continues rather than starting a new one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map_run: Option<String>,
    /// A Parallel branch's or inline Map iteration's that failed or was aborted: where it
    /// stopped, which a redrive continues (its own successful states are not run again, and
    /// so on down nested Parallel and Map states).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unfinished: Vec<(usize, Resume)>,
}

impl Resume {
    /// A redriven state that failed again before it started its children (its ItemReader,
    /// say) keeps what the attempt before it had kept.
    fn keep(&mut self, r: Redriving) {
        if self.children.is_empty() && self.map_run.is_none() && self.unfinished.is_empty() {
            self.children = r.children;
            self.map_run = r.map_run;
            self.unfinished = r.unfinished;
        }
    }

    /// What a redrive of this state keeps or continues, if anything.
    pub(crate) fn redriving(self, frame: u64) -> Option<Redriving> {
        (!self.children.is_empty() || self.map_run.is_some() || !self.unfinished.is_empty())
            .then_some(Redriving {
                frame,
                state: self.state,
                children: self.children,
                map_run: self.map_run,
                unfinished: self.unfinished,
            })
    }
}

/// A redriven state's frame and what it keeps (see [`Resume`]).
#[derive(Serialize, Deserialize, Clone, Debug)]
pub(crate) struct Redriving {
    pub frame: u64,
    /// The Parallel or Map state it continues (empty in runs persisted before).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub state: String,
    pub children: Vec<(usize, Value)>,
    pub map_run: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unfinished: Vec<(usize, Resume)>,
}

fn default_limit() -> Option<u64> {
    Some(MAX_HISTORY_EVENTS)
}

/// One thread of control: the main flow, a Parallel branch or a Map iteration.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub(crate) struct Frame {
    pub machine: usize,
    /// (parent frame, slot: branch or item index).
    pub parent: Option<(u64, usize)>,
    pub state: String,
    /// The raw input of the current state.
    pub input: Value,
    pub entered_ms: i64,
    pub retries: Vec<u32>,
    pub retry_count: u32,
    pub last_event: u64,
    pub vars: Map<String, Value>,
    pub item: Option<(usize, Value)>,
    pub wait: Wait,
    /// Iterations of a distributed Map run as child executions: their events are not part
    /// of this execution's history (runs persisted before child histories were kept).
    #[serde(default)]
    pub quiet: bool,
    /// The child execution whose history this frame's events belong to (a distributed Map's
    /// iteration, and the frames it spawns).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child: Option<crate::map_runs::ChildOf>,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub(crate) enum Wait {
    /// Ready to run `state` (entering it, or re-running it after a retry interval).
    Idle {
        retrying: bool,
    },
    Task {
        id: String,
        resource: String,
        family: TaskFamily,
        role: TaskRole,
        effective: Value,
    },
    Timer {
        id: String,
        effective: Value,
    },
    RetryTimer {
        id: String,
    },
    Children(Box<Children>),
    Done,
}

/// Why a Task effect was sent: the state's own task, or a distributed Map's reader/writer.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TaskRole {
    Main,
    ItemReader,
    ResultWriter,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub(crate) struct Children {
    pub map: bool,
    pub effective: Value,
    /// Inputs not yet started, by slot.
    pub pending: VecDeque<(usize, Value)>,
    pub results: Vec<Value>,
    pub running: std::collections::BTreeSet<u64>,
    pub max: usize,
    pub failed: u64,
    pub tolerated_count: Option<u64>,
    pub tolerated_pct: Option<f64>,
    pub total: usize,
    pub done: usize,
    pub distributed: bool,
    /// Pending inputs are final (batched, or selected already) rather than raw items.
    pub selected: bool,
    pub map_run_arn: Option<String>,
    /// Slots whose iteration failed within the tolerated failures (a distributed Map).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_slots: Vec<usize>,
    /// Slots whose branch or iteration succeeded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ok: Vec<usize>,
    /// Where branches or inline iterations that failed or were aborted stopped (a redrive
    /// continues them there).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub unfinished: BTreeMap<usize, Resume>,
    /// A redrive: where pending branches or iterations continue rather than start.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resume_in: BTreeMap<usize, Resume>,
}

/// The collector one step writes into.
pub(crate) struct Out {
    pub now: i64,
    pub step: Step,
    pub queue: VecDeque<u64>,
}

impl Run {
    /// ExecutionStarted and the first states, up to the first effect that must wait.
    pub fn start(def: &Definition, input: Value, ctx: Context, now_ms: i64) -> (Run, Step) {
        Self::start_inner(def, input, ctx, now_ms, false, default_limit())
    }

    /// A TestState run: it stops at the first transition, and records inspection data.
    pub(crate) fn start_test(
        def: &Definition,
        input: Value,
        ctx: Context,
        now_ms: i64,
    ) -> (Run, Step) {
        Self::start_inner(def, input, ctx, now_ms, true, default_limit())
    }

    fn start_inner(
        def: &Definition,
        input: Value,
        ctx: Context,
        now_ms: i64,
        test: bool,
        limit: Option<u64>,
    ) -> (Run, Step) {
        let seed = crate::rng::seed_of(&ctx.execution_id);
        let mut run = Run {
            ctx,
            input: input.clone(),
            seed,
            draws: 0,
            next_event: 1,
            next_frame: 0,
            next_id: 0,
            frames: BTreeMap::new(),
            tasks: BTreeMap::new(),
            timers: BTreeMap::new(),
            status: Status::Running,
            output: None,
            error: None,
            test: test.then(Default::default),
            max_history: limit,
            resume: None,
            map_runs: Vec::new(),
            child_events: Default::default(),
            redriving: None,
            redriving_below: BTreeMap::new(),
        };
        let mut o = Out {
            now: now_ms,
            step: Step::default(),
            queue: VecDeque::new(),
        };
        let mut details = data("input", &input);
        details["roleArn"] = json!(run.ctx.role_arn);
        let first = run.event(
            &mut o,
            0,
            "ExecutionStarted",
            Some(("executionStartedEventDetails", details)),
        );
        if let Some(t) = def.timeout_seconds().filter(|_| !test) {
            let at = now_ms + t as i64 * 1000;
            run.timers.insert(EXECUTION_TIMEOUT.into(), u64::MAX);
            o.step.effects.push(Effect::Timer {
                timer: EXECUTION_TIMEOUT.into(),
                at_ms: at,
            });
        }
        let fid = run.spawn(
            0,
            None,
            def.start_at().to_string(),
            input,
            Map::new(),
            None,
            first,
        );
        o.queue.push_back(fid);
        run.drive(def, &mut o);
        (run, o.step)
    }

    /// Feed one event from the host. Unknown or stale task and timer ids are ignored, so
    /// the host may deliver at least once.
    pub fn handle(&mut self, def: &Definition, event: Event, now_ms: i64) -> Step {
        let mut o = Out {
            now: now_ms,
            step: Step::default(),
            queue: VecDeque::new(),
        };
        if self.status != Status::Running {
            return o.step;
        }
        match event {
            Event::TaskSucceeded { task, output } => {
                if let Some(fid) = self.tasks.remove(&task) {
                    self.task_done(def, fid, Ok(output), &mut o);
                }
            }
            Event::TaskFailed { task, error, cause } => {
                if let Some(fid) = self.tasks.remove(&task) {
                    self.task_done(def, fid, Err((error, cause, false)), &mut o);
                }
            }
            Event::TaskTimedOut { task } => {
                if let Some(fid) = self.tasks.remove(&task) {
                    let cause = "The task timed out (TimeoutSeconds elapsed).".to_string();
                    self.task_done(
                        def,
                        fid,
                        Err(("States.Timeout".into(), cause, true)),
                        &mut o,
                    );
                }
            }
            Event::TaskHeartbeatTimedOut { task } => {
                if let Some(fid) = self.tasks.remove(&task) {
                    let cause = "The task sent no heartbeat within HeartbeatSeconds.".to_string();
                    self.task_done(
                        def,
                        fid,
                        Err(("States.HeartbeatTimeout".into(), cause, true)),
                        &mut o,
                    );
                }
            }
            Event::TaskSubmitted { task, output } => {
                let resource = self.tasks.get(&task).and_then(|fid| {
                    match self.frames.get(fid).map(|f| &f.wait) {
                        Some(Wait::Task {
                            resource,
                            family: TaskFamily::Service,
                            ..
                        }) => Some((*fid, resource.clone())),
                        _ => None,
                    }
                });
                if let Some((fid, resource)) = resource {
                    let (rt, r) = crate::history::resource_type(&resource);
                    let mut details = data("output", &output);
                    details["resourceType"] = json!(rt);
                    details["resource"] = json!(r);
                    self.fevent(
                        &mut o,
                        fid,
                        "TaskSubmitted",
                        Some(("taskSubmittedEventDetails", details)),
                    );
                }
            }
            Event::TimerFired { timer } => {
                if timer == EXECUTION_TIMEOUT {
                    if self.timers.remove(&timer).is_some() {
                        self.end(
                            &mut o,
                            Status::TimedOut,
                            None,
                            Some(("States.Timeout".into(), "The execution timed out.".into())),
                        );
                    }
                } else if let Some(fid) = self.timers.remove(&timer) {
                    self.timer_fired(def, fid, &mut o);
                }
            }
        }
        self.drive(def, &mut o);
        o.step
    }

    /// StopExecution: ExecutionAborted, and every outstanding task and timer cancelled.
    pub fn stop(
        &mut self,
        _def: &Definition,
        error: Option<String>,
        cause: Option<String>,
        now_ms: i64,
    ) -> Step {
        let mut o = Out {
            now: now_ms,
            step: Step::default(),
            queue: VecDeque::new(),
        };
        if self.status == Status::Running {
            let mut d = Map::new();
            if let Some(e) = &error {
                d.insert("error".into(), json!(e));
            }
            if let Some(c) = &cause {
                d.insert("cause".into(), json!(c));
            }
            self.end(
                &mut o,
                Status::Aborted,
                Some(Value::Object(d)),
                Some((error.unwrap_or_default(), cause.unwrap_or_default())),
            );
        }
        o.step
    }

    /// Whether [`Run::redrive`] can continue this run: it ended without success in a state
    /// of the main flow.
    pub fn redrivable(&self) -> bool {
        matches!(
            self.status,
            Status::Failed | Status::Aborted | Status::TimedOut
        ) && self.resume.is_some()
    }

    /// RedriveExecution: ExecutionRedriven, then the main flow's unfinished state entered again
    /// with the input it had, retry counts reset. The states that completed are not run
    /// again; a Parallel or Map state runs only its branches or iterations that did not
    /// succeed (a distributed Map continues its Map Run). `None` when the run cannot be
    /// redriven.
    pub fn redrive(&mut self, def: &Definition, now_ms: i64) -> Option<Step> {
        if !self.redrivable() {
            return None;
        }
        let resume = self.resume.take()?;
        let mut o = Out {
            now: now_ms,
            step: Step::default(),
            queue: VecDeque::new(),
        };
        self.status = Status::Running;
        self.output = None;
        self.error = None;
        self.ctx.redrive_count += 1;
        let prev = self.next_event - 1;
        let redriven = self.event(
            &mut o,
            prev,
            "ExecutionRedriven",
            Some((
                "executionRedrivenEventDetails",
                json!({"redriveCount": self.ctx.redrive_count}),
            )),
        );
        if let Some(t) = def.timeout_seconds() {
            self.timers.insert(EXECUTION_TIMEOUT.into(), u64::MAX);
            o.step.effects.push(Effect::Timer {
                timer: EXECUTION_TIMEOUT.into(),
                at_ms: now_ms + t as i64 * 1000,
            });
        }
        let fid = self.spawn(
            0,
            None,
            resume.state.clone(),
            resume.input.clone(),
            resume.vars.clone(),
            None,
            redriven,
        );
        self.redriving = resume.redriving(fid);
        o.queue.push_back(fid);
        self.drive(def, &mut o);
        Some(o.step)
    }

    /// The history quota ([`MAX_HISTORY_EVENTS`] unless changed); `None` lifts it (EXPRESS
    /// executions have none), and then a machine that loops without waiting never returns.
    pub fn set_max_history_events(&mut self, limit: Option<u64>) {
        self.max_history = limit;
    }

    /// Start with a given history quota (see [`Run::set_max_history_events`]).
    pub fn start_with_limit(
        def: &Definition,
        input: Value,
        ctx: Context,
        now_ms: i64,
        limit: Option<u64>,
    ) -> (Run, Step) {
        Self::start_inner(def, input, ctx, now_ms, false, limit)
    }

    pub fn is_done(&self) -> bool {
        self.status != Status::Running
    }

    pub fn status(&self) -> Status {
        self.status
    }

    /// The execution's output once it succeeded.
    pub fn output(&self) -> Option<&Value> {
        self.output.as_ref()
    }

    /// (error, cause) once it failed, was aborted or timed out.
    pub fn error(&self) -> Option<(&str, &str)> {
        self.error.as_ref().map(|(e, c)| (e.as_str(), c.as_str()))
    }

    /// The task ids the run is waiting on (for a host that lost its in-memory queue).
    pub fn pending_tasks(&self) -> Vec<&str> {
        self.tasks.keys().map(String::as_str).collect()
    }

    pub(crate) fn event(
        &mut self,
        o: &mut Out,
        prev: u64,
        kind: &str,
        details: Option<(&str, Value)>,
    ) -> u64 {
        let id = self.next_event;
        self.next_event += 1;
        o.step.history.push(HistoryEvent {
            id,
            previous_event_id: prev,
            timestamp_ms: o.now,
            kind: kind.to_string(),
            details: details.map(|(k, v)| (k.to_string(), v)),
        });
        id
    }

    /// An event on a frame's branch, linked to its previous one.
    pub(crate) fn fevent(
        &mut self,
        o: &mut Out,
        fid: u64,
        kind: &str,
        details: Option<(&str, Value)>,
    ) -> u64 {
        let (prev, quiet, child) = self
            .frames
            .get(&fid)
            .map(|f| (f.last_event, f.quiet, f.child.clone()))
            .unwrap_or((0, false, None));
        if let Some(child) = child {
            let id = self.child_event(o, &child, Some(prev), kind, details);
            if let Some(f) = self.frames.get_mut(&fid) {
                f.last_event = id;
            }
            return id;
        }
        if quiet {
            return prev;
        }
        let id = self.event(o, prev, kind, details);
        if let Some(f) = self.frames.get_mut(&fid) {
            f.last_event = id;
        }
        id
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn spawn(
        &mut self,
        machine: usize,
        parent: Option<(u64, usize)>,
        state: String,
        input: Value,
        vars: Map<String, Value>,
        item: Option<(usize, Value)>,
        last_event: u64,
    ) -> u64 {
        let fid = self.next_frame;
        self.next_frame += 1;
        self.frames.insert(
            fid,
            Frame {
                machine,
                parent,
                state,
                input,
                entered_ms: 0,
                retries: Vec::new(),
                retry_count: 0,
                last_event,
                vars,
                item,
                wait: Wait::Idle { retrying: false },
                quiet: false,
                child: parent.and_then(|(p, _)| self.frames.get(&p)?.child.clone()),
            },
        );
        fid
    }

    pub(crate) fn next_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{}", self.next_id)
    }

    pub(crate) fn draw(&mut self) -> u64 {
        self.draws += 1;
        crate::rng::mix(self.seed ^ crate::rng::mix(self.draws))
    }

    pub(crate) fn drive(&mut self, def: &Definition, o: &mut Out) {
        while let Some(fid) = o.queue.pop_front() {
            if self.status != Status::Running {
                break;
            }
            if self.max_history.is_some_and(|m| self.next_event > m) {
                let cause = format!(
                    "The execution reached the maximum number of history events ({}).",
                    self.next_event - 1
                );
                self.end(
                    o,
                    Status::Failed,
                    None,
                    Some(("States.Runtime".into(), cause)),
                );
                break;
            }
            let Some(f) = self.frames.get(&fid) else {
                continue;
            };
            // A child execution has a history quota of its own, as AWS's do: past it the
            // child fails (and the Map counts a failed iteration).
            let over = f.child.as_ref().and_then(|c| {
                let (events, _) = self.child_events.get(&c.key())?;
                self.max_history.filter(|m| events > m).map(|_| *events)
            });
            if let Some(events) = over {
                let cause = format!(
                    "The execution reached the maximum number of history events ({events})."
                );
                self.finish_frame(def, fid, Err(("States.Runtime".into(), cause)), o);
                continue;
            }
            let Some(f) = self.frames.get(&fid) else {
                continue;
            };
            if let Wait::Idle { retrying } = f.wait {
                self.enter(def, fid, retrying, o);
            }
        }
    }

    /// The frame reached the end of its machine (or failed out of it).
    pub(crate) fn finish_frame(
        &mut self,
        def: &Definition,
        fid: u64,
        result: Result<Value, (String, String)>,
        o: &mut Out,
    ) {
        let Some(f) = self.frames.remove(&fid) else {
            return;
        };
        match f.parent {
            None => match result {
                Ok(out) => self.end(o, Status::Succeeded, Some(out), None),
                Err(e) => {
                    let mut resume = self.resume_of(fid, &f);
                    if let Some(r) = self.redriving.take().filter(|r| r.frame == fid) {
                        resume.keep(r);
                    }
                    self.resume = Some(resume);
                    self.end(o, Status::Failed, None, Some(e))
                }
            },
            Some((pid, slot)) => {
                if result.is_err() {
                    self.keep_unfinished(fid, &f);
                }
                // A finished child hands its last event id to its parent's branch (not a
                // child execution's: its ids count in its own history).
                if let Some(p) = self.frames.get_mut(&pid)
                    && p.child == f.child
                {
                    p.last_event = p.last_event.max(f.last_event);
                }
                self.child_done(def, pid, slot, fid, result, o);
            }
        }
    }

    /// The execution ends: its closing event, the end effect, and every cancellation.
    pub(crate) fn end(
        &mut self,
        o: &mut Out,
        status: Status,
        output: Option<Value>,
        error: Option<(String, String)>,
    ) {
        if self.status != Status::Running {
            return;
        }
        if let Some(t) = &self.test {
            let _ = t;
            self.status = status;
            self.output = output;
            self.error = error;
            return;
        }
        for task in std::mem::take(&mut self.tasks).into_keys() {
            o.step.effects.push(Effect::CancelTask { task });
        }
        for timer in std::mem::take(&mut self.timers).into_keys() {
            o.step.effects.push(Effect::CancelTimer { timer });
        }
        let running: Vec<String> = (self.map_runs.iter())
            .filter(|m| m.status == crate::map_runs::MapRunStatus::Running)
            .map(|m| m.arn.clone())
            .collect();
        for arn in running {
            self.map_run_ended(&arn, crate::map_runs::MapRunStatus::Aborted, o.now);
        }
        // Child executions still running end with their parent.
        let children: Vec<crate::map_runs::ChildOf> = (self.frames.values())
            .filter_map(|f| f.child.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        for child in children {
            self.child_ended(o, &child, Err(None));
        }
        let prev = self.next_event - 1;
        match status {
            Status::Succeeded => {
                let out = output.clone().unwrap_or(Value::Null);
                self.event(
                    o,
                    prev,
                    "ExecutionSucceeded",
                    Some(("executionSucceededEventDetails", data("output", &out))),
                );
                o.step.effects.push(Effect::Succeeded { output: out });
            }
            Status::Failed | Status::TimedOut => {
                let (e, c) = error.clone().unwrap_or_default();
                let (kind, member) = if status == Status::Failed {
                    ("ExecutionFailed", "executionFailedEventDetails")
                } else {
                    ("ExecutionTimedOut", "executionTimedOutEventDetails")
                };
                self.event(
                    o,
                    prev,
                    kind,
                    Some((member, json!({"error": e, "cause": c}))),
                );
                o.step.effects.push(Effect::Failed { error: e, cause: c });
            }
            Status::Aborted => {
                // The host asked for the stop: it needs no end effect, only the cancellations.
                let d = output.clone().unwrap_or(json!({}));
                self.event(
                    o,
                    prev,
                    "ExecutionAborted",
                    Some(("executionAbortedEventDetails", d)),
                );
            }
            Status::Running => unreachable!("end() is only called with a final status"),
        }
        self.status = status;
        if status != Status::Succeeded && self.resume.is_none() {
            // Stopped or timed out while the main flow was in a state: a redrive re-enters it.
            let redriving = self.redriving.take();
            self.resume = self
                .frames
                .iter()
                .find(|(_, f)| f.parent.is_none())
                .map(|(fid, f)| {
                    let mut resume = self.resume_of(*fid, f);
                    if let Some(r) = redriving.filter(|r| r.frame == *fid) {
                        resume.keep(r);
                    }
                    resume
                });
        }
        self.frames.clear();
        self.redriving = None;
        self.redriving_below.clear();
        if status == Status::Succeeded {
            self.output = output;
        } else {
            self.error = error;
        }
    }

    /// Where `f` stopped, and the same for the branches and inline iterations it runs: what
    /// a redrive continues.
    pub(crate) fn resume_of(&self, fid: u64, f: &Frame) -> Resume {
        let (children, map_run, unfinished) = match &f.wait {
            Wait::Children(c) => {
                let mut unfinished = c.unfinished.clone();
                if !c.distributed {
                    for (id, child) in c
                        .running
                        .iter()
                        .filter_map(|id| Some((*id, self.frames.get(id)?)))
                    {
                        if let Some((_, slot)) = child.parent {
                            unfinished.insert(slot, self.resume_of(id, child));
                        }
                    }
                }
                (
                    c.ok.iter().map(|&s| (s, c.results[s].clone())).collect(),
                    c.map_run_arn.clone(),
                    unfinished.into_iter().collect(),
                )
            }
            _ => (Vec::new(), None, Vec::new()),
        };
        let mut resume = Resume {
            state: f.state.clone(),
            input: f.input.clone(),
            vars: f.vars.clone(),
            children,
            map_run,
            unfinished,
        };
        // Continued by a redrive but stopped again before it started its children: what the
        // attempt before kept is kept.
        if let Some(r) = self.redriving_below.get(&fid) {
            resume.keep(r.clone());
        }
        resume
    }

    /// A branch or inline iteration failed or is aborted: its parent keeps where it stopped.
    fn keep_unfinished(&mut self, fid: u64, f: &Frame) {
        let Some((pid, slot)) = f.parent else { return };
        let keep = matches!(
            self.frames.get(&pid).map(|p| &p.wait),
            Some(Wait::Children(c)) if !c.distributed
        );
        if !keep {
            return;
        }
        let resume = self.resume_of(fid, f);
        if let Some(Wait::Children(c)) = self.frames.get_mut(&pid).map(|p| &mut p.wait) {
            c.unfinished.insert(slot, resume);
        }
    }

    /// Cancel a frame and everything below it (a sibling branch failed).
    pub(crate) fn cancel_frame(&mut self, fid: u64, o: &mut Out) {
        let Some(f) = self.frames.remove(&fid) else {
            return;
        };
        self.keep_unfinished(fid, &f);
        // The first frame of a child execution: the child is aborted (after what it runs).
        let aborted = f.child.clone().filter(|c| {
            f.parent
                .and_then(|(p, _)| self.frames.get(&p))
                .is_none_or(|p| p.child.as_ref() != Some(c))
        });
        match f.wait {
            Wait::Task { id, .. } => {
                self.tasks.remove(&id);
                o.step.effects.push(Effect::CancelTask { task: id });
            }
            Wait::Timer { id, .. } | Wait::RetryTimer { id } => {
                self.timers.remove(&id);
                o.step.effects.push(Effect::CancelTimer { timer: id });
            }
            Wait::Children(c) => {
                if let Some(arn) = &c.map_run_arn {
                    self.map_run_ended(arn, crate::map_runs::MapRunStatus::Aborted, o.now);
                }
                for child in c.running {
                    self.cancel_frame(child, o);
                }
            }
            Wait::Idle { .. } | Wait::Done => {}
        }
        if let Some(child) = aborted {
            self.child_ended(o, &child, Err(None));
        }
    }
}
