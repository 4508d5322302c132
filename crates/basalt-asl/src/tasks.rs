//! Task states: resolving the call, the Task effect and its history events (Lambda,
//! activity or service integration), the host's result, and timers firing.

use crate::history::{TaskFamily, data, family, resource_type};
use crate::model::*;
use crate::run::{Effect, Out, Run, TaskRole, Wait};
use crate::template::Template;
use serde_json::{Value, json};

use crate::states::{Failure, limit_error, runtime, too_big};

impl Run {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn schedule_task(
        &mut self,
        fid: u64,
        s: &State,
        raw: &Value,
        eff: Value,
        ctx: Value,
        states: &Value,
        o: &mut Out,
    ) -> Result<(), Failure> {
        let Kind::Task {
            resource,
            timeout,
            heartbeat,
            credentials,
        } = &s.kind
        else {
            unreachable!()
        };
        let token = if resource.ends_with(".waitForTaskToken") {
            let (a, b, c) = (self.draw(), self.draw(), self.draw());
            Some(format!(
                "AQ{}{:016x}",
                crate::rng::uuid(a, b).replace('-', ""),
                c
            ))
        } else {
            None
        };
        let (ctx, states) = match &token {
            Some(t) => {
                let ctx = self.ctx_value(fid, Some(t));
                let states = if s.ql == QueryLanguage::JSONata {
                    Self::states_var(raw, &ctx)
                } else {
                    states.clone()
                };
                (ctx, states)
            }
            None => (ctx, states.clone()),
        };
        let params = match &s.parameters {
            Some(t) => self.eval_in(fid, t, &eff, &ctx, &states)?,
            None => eff.clone(),
        };
        self.trace(
            if s.ql == QueryLanguage::JSONata {
                "afterArguments"
            } else {
                "afterParameters"
            },
            &params,
        );
        let secs = |t: &Option<Template>, this: &mut Run| -> Result<Option<u64>, Failure> {
            match t {
                None => Ok(None),
                Some(t) => {
                    let v = this.eval_in(fid, t, &eff, &ctx, &states)?;
                    v.as_u64().filter(|x| *x > 0).map(Some).ok_or_else(|| {
                        runtime(format!(
                            "The timeout value must be a positive integer, got {v}"
                        ))
                    })
                }
            }
        };
        let timeout = secs(timeout, self)?;
        let heartbeat = secs(heartbeat, self)?;
        let creds = match credentials {
            Some(t) => Some(self.eval_in(fid, t, &eff, &ctx, &states)?),
            None => None,
        };
        self.send_task(
            fid,
            s,
            resource.clone(),
            params,
            timeout,
            heartbeat,
            token,
            creds,
            TaskRole::Main,
            eff,
            o,
        );
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn send_task(
        &mut self,
        fid: u64,
        s: &State,
        resource: String,
        params: Value,
        timeout: Option<u64>,
        heartbeat: Option<u64>,
        token: Option<String>,
        credentials: Option<Value>,
        role: TaskRole,
        effective: Value,
        o: &mut Out,
    ) {
        let fam = family(&resource);
        let region = self
            .ctx
            .execution_id
            .split(':')
            .nth(3)
            .unwrap_or("us-east-1")
            .to_string();
        match fam {
            TaskFamily::Lambda => {
                let mut d = data("input", &params);
                d["resource"] = json!(resource);
                if let Some(t) = timeout {
                    d["timeoutInSeconds"] = json!(t);
                }
                self.fevent(
                    o,
                    fid,
                    "LambdaFunctionScheduled",
                    Some(("lambdaFunctionScheduledEventDetails", d)),
                );
                self.fevent(o, fid, "LambdaFunctionStarted", None);
            }
            TaskFamily::Activity => {
                let mut d = data("input", &params);
                d["resource"] = json!(resource);
                if let Some(t) = timeout {
                    d["timeoutInSeconds"] = json!(t);
                }
                if let Some(h) = heartbeat {
                    d["heartbeatInSeconds"] = json!(h);
                }
                self.fevent(
                    o,
                    fid,
                    "ActivityScheduled",
                    Some(("activityScheduledEventDetails", d)),
                );
            }
            TaskFamily::Service => {
                let (rt, r) = resource_type(&resource);
                let mut d = json!({"resourceType": rt, "resource": r, "region": region, "parameters": params.to_string()});
                if let Some(t) = timeout {
                    d["timeoutInSeconds"] = json!(t);
                }
                if let Some(h) = heartbeat {
                    d["heartbeatInSeconds"] = json!(h);
                }
                self.fevent(
                    o,
                    fid,
                    "TaskScheduled",
                    Some(("taskScheduledEventDetails", d)),
                );
                self.fevent(
                    o,
                    fid,
                    "TaskStarted",
                    Some((
                        "taskStartedEventDetails",
                        json!({"resourceType": rt, "resource": r}),
                    )),
                );
            }
        }
        let id = self.next_id("task-");
        self.tasks.insert(id.clone(), fid);
        o.step.effects.push(Effect::Task {
            task: id.clone(),
            state: s.name.clone(),
            resource: resource.clone(),
            parameters: params,
            timeout_seconds: timeout,
            heartbeat_seconds: heartbeat,
            token,
            credentials,
        });
        self.frames.get_mut(&fid).expect("frame").wait = Wait::Task {
            id,
            resource,
            family: fam,
            role,
            effective,
        };
    }

    /// The host reported a task's outcome. `Err` carries (error, cause, timed out).
    pub(crate) fn task_done(
        &mut self,
        def: &Definition,
        fid: u64,
        result: Result<Value, (String, String, bool)>,
        o: &mut Out,
    ) {
        let Some(f) = self.frames.get_mut(&fid) else {
            return;
        };
        let Wait::Task {
            resource,
            family: fam,
            role,
            effective,
            ..
        } = std::mem::replace(&mut f.wait, Wait::Done)
        else {
            return;
        };
        let (machine, name, raw) = (f.machine, f.state.clone(), f.input.clone());
        let s = def.state(machine, &name);
        let (rt, r) = resource_type(&resource);
        match result {
            Ok(output) => {
                match fam {
                    TaskFamily::Lambda => {
                        self.fevent(
                            o,
                            fid,
                            "LambdaFunctionSucceeded",
                            Some((
                                "lambdaFunctionSucceededEventDetails",
                                data("output", &output),
                            )),
                        );
                    }
                    TaskFamily::Activity => {
                        self.fevent(
                            o,
                            fid,
                            "ActivityStarted",
                            Some(("activityStartedEventDetails", json!({}))),
                        );
                        self.fevent(
                            o,
                            fid,
                            "ActivitySucceeded",
                            Some(("activitySucceededEventDetails", data("output", &output))),
                        );
                    }
                    TaskFamily::Service => {
                        let mut d = data("output", &output);
                        d["resourceType"] = json!(rt);
                        d["resource"] = json!(r);
                        self.fevent(
                            o,
                            fid,
                            "TaskSucceeded",
                            Some(("taskSucceededEventDetails", d)),
                        );
                    }
                }
                self.trace("result", &output);
                let r = match role {
                    TaskRole::Main => {
                        if too_big(&output) {
                            Err(limit_error())
                        } else {
                            self.complete(def, fid, s, &raw, output, &Value::Null, o)
                        }
                    }
                    TaskRole::ItemReader => {
                        let Kind::Map(m) = &s.kind else {
                            unreachable!()
                        };
                        let reader = m.item_reader.as_ref().expect("reader");
                        match crate::reader::items(&reader.resource, &reader.config, output) {
                            Ok(items) => {
                                let ctx = self.ctx_for(fid, s);
                                self.start_map(def, fid, s, m, effective, items, &ctx, o)
                            }
                            Err(e) => Err(("States.ItemReaderFailed".into(), e)),
                        }
                    }
                    TaskRole::ResultWriter => {
                        self.map_run_written(fid);
                        self.complete(def, fid, s, &raw, output, &Value::Null, o)
                    }
                };
                if let Err((e, c)) = r {
                    self.state_error(def, fid, e, c, o);
                }
            }
            Err((e, c, timed_out)) => {
                let ev = json!({"error": e, "cause": c});
                match (fam, timed_out) {
                    (TaskFamily::Lambda, false) => self.fevent(
                        o,
                        fid,
                        "LambdaFunctionFailed",
                        Some(("lambdaFunctionFailedEventDetails", ev)),
                    ),
                    (TaskFamily::Lambda, true) => self.fevent(
                        o,
                        fid,
                        "LambdaFunctionTimedOut",
                        Some(("lambdaFunctionTimedOutEventDetails", ev)),
                    ),
                    (TaskFamily::Activity, false) => self.fevent(
                        o,
                        fid,
                        "ActivityFailed",
                        Some(("activityFailedEventDetails", ev)),
                    ),
                    (TaskFamily::Activity, true) => self.fevent(
                        o,
                        fid,
                        "ActivityTimedOut",
                        Some(("activityTimedOutEventDetails", ev)),
                    ),
                    (TaskFamily::Service, t) => {
                        let mut d = ev;
                        d["resourceType"] = json!(rt);
                        d["resource"] = json!(r);
                        if t {
                            self.fevent(
                                o,
                                fid,
                                "TaskTimedOut",
                                Some(("taskTimedOutEventDetails", d)),
                            )
                        } else {
                            self.fevent(o, fid, "TaskFailed", Some(("taskFailedEventDetails", d)))
                        }
                    }
                };
                let e = match role {
                    TaskRole::ItemReader if !e.starts_with("States.") => {
                        "States.ItemReaderFailed".to_string()
                    }
                    TaskRole::ResultWriter if !e.starts_with("States.") => {
                        "States.ResultWriterFailed".to_string()
                    }
                    _ => e,
                };
                self.state_error(def, fid, e, c, o);
            }
        }
    }

    pub(crate) fn timer_fired(&mut self, def: &Definition, fid: u64, o: &mut Out) {
        let Some(f) = self.frames.get_mut(&fid) else {
            return;
        };
        match std::mem::replace(&mut f.wait, Wait::Done) {
            Wait::Timer { effective, .. } => {
                let (machine, name, raw) = (f.machine, f.state.clone(), f.input.clone());
                let s = def.state(machine, &name);
                let r = (|| -> Result<(), Failure> {
                    let ctx = self.ctx_for(fid, s);
                    let (output, assigned) = if s.ql == QueryLanguage::JSONata {
                        let states = Self::states_var(&raw, &ctx);
                        let out = match &s.output {
                            Some(t) => self.eval_in(fid, t, &raw, &ctx, &states)?,
                            None => raw.clone(),
                        };
                        let a = match &s.assign {
                            Some(t) => Some(self.eval_in(fid, t, &raw, &ctx, &states)?),
                            None => None,
                        };
                        (out, a)
                    } else {
                        let out =
                            self.read_path(fid, &s.output_path, &effective, &ctx, "OutputPath")?;
                        let a = match &s.assign {
                            Some(t) => {
                                Some(self.eval_in(fid, t, &effective, &ctx, &Value::Null)?)
                            }
                            None => None,
                        };
                        (out, a)
                    };
                    self.exit(def, fid, s, output, assigned, s.next.clone(), o)
                })();
                if let Err((e, c)) = r {
                    self.state_error(def, fid, e, c, o);
                }
            }
            Wait::RetryTimer { .. } => {
                f.wait = Wait::Idle { retrying: true };
                o.queue.push_back(fid);
            }
            other => f.wait = other,
        }
    }
}
