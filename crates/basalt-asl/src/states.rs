//! Running one state: the input/output pipeline of each state type in both query languages,
//! task results, timers, Parallel branches and Map iterations, Retry and Catch.
//! <https://docs.aws.amazon.com/step-functions/latest/dg/concepts-input-output-filtering.html>

use crate::choice;
use crate::model::*;
use crate::run::{Children, Effect, Out, PAYLOAD_LIMIT, Run, TaskRole, Wait};
use crate::scope::Scope;
use crate::template::{self, Env, Template};
use serde_json::{Map, Value, json};
use std::cell::Cell;

pub(crate) type Failure = (String, String);

pub(crate) fn type_name(s: &State) -> &'static str {
    match s.kind {
        Kind::Pass { .. } => "Pass",
        Kind::Task { .. } => "Task",
        Kind::Choice { .. } => "Choice",
        Kind::Wait(_) => "Wait",
        Kind::Succeed => "Succeed",
        Kind::Fail { .. } => "Fail",
        Kind::Parallel { .. } => "Parallel",
        Kind::Map(_) => "Map",
    }
}

pub(crate) fn runtime(msg: String) -> Failure {
    ("States.Runtime".into(), msg)
}

/// Evaluate a template against an input, the context object and the frame's variables.
#[allow(clippy::too_many_arguments)]
pub(crate) fn evaluate(
    t: &Template,
    vars: &Map<String, Value>,
    input: &Value,
    ctx: &Value,
    states: &Value,
    seed: u64,
    draws: &Cell<u64>,
) -> Result<Value, Failure> {
    let rand = || {
        draws.set(draws.get() + 1);
        crate::rng::mix(seed ^ crate::rng::mix(draws.get()))
    };
    let mut r1 = rand;
    let mut r2 = rand;
    let mut j = |expr: &str| crate::jsonata::evaluate(expr, states, vars, &mut r2);
    let scope = Scope { input, ctx, vars };
    template::eval(
        t,
        &scope,
        &mut Env {
            rand: &mut r1,
            jsonata: &mut j,
        },
    )
}

impl Run {
    /// Evaluate on behalf of a frame, drawing randomness from the run.
    pub(crate) fn eval_in(
        &mut self,
        fid: u64,
        t: &Template,
        input: &Value,
        ctx: &Value,
        states: &Value,
    ) -> Result<Value, Failure> {
        let draws = Cell::new(self.draws);
        let f = &self.frames[&fid];
        let r = evaluate(t, &f.vars, input, ctx, states, self.seed, &draws);
        self.draws = draws.get();
        r
    }

    /// `$$` for the frame's current state.
    pub(crate) fn ctx_value(&self, fid: u64, token: Option<&str>) -> Value {
        let f = &self.frames[&fid];
        let c = &self.ctx;
        let mut v = json!({
            "Execution": {
                "Id": c.execution_id, "Input": self.input, "Name": c.execution_name, "RoleArn": c.role_arn,
                "StartTime": c.start_time, "RedriveCount": c.redrive_count,
            },
            "State": {"EnteredTime": iso(f.entered_ms), "Name": f.state, "RetryCount": f.retry_count},
            "StateMachine": {"Id": c.state_machine_id, "Name": c.state_machine_name},
        });
        if let Some(t) = token {
            v["Task"] = json!({ "Token": t });
        }
        if let Some((i, item)) = &f.item {
            v["Map"] = json!({"Item": {"Index": i, "Value": item}});
        }
        v
    }

    pub(crate) fn enter(&mut self, def: &Definition, fid: u64, retrying: bool, o: &mut Out) {
        let (machine, name, raw) = {
            let f = &self.frames[&fid];
            (f.machine, f.state.clone(), f.input.clone())
        };
        let s = def.state(machine, &name);
        if !retrying {
            let d = json!({"name": name, "input": raw.to_string(), "inputDetails": {"truncated": false}});
            self.fevent(
                o,
                fid,
                &format!("{}StateEntered", type_name(s)),
                Some(("stateEnteredEventDetails", d)),
            );
            let f = self.frames.get_mut(&fid).expect("entered frame");
            f.entered_ms = o.now;
            f.retries = vec![0; s.retry.len()];
            f.retry_count = 0;
        }
        self.trace("input", &raw);
        if let Err((e, c)) = self.run_state(def, fid, s, raw, o) {
            self.state_error(def, fid, e, c, o);
        }
    }

    /// `$$` when the state reads it, `null` otherwise.
    pub(crate) fn ctx_for(&self, fid: u64, s: &State) -> Value {
        if s.uses_ctx {
            self.ctx_value(fid, None)
        } else {
            Value::Null
        }
    }

    pub(crate) fn states_var(raw: &Value, ctx: &Value) -> Value {
        json!({"input": raw, "context": ctx})
    }

    pub(crate) fn read_path(
        &self,
        fid: u64,
        field: &PathField,
        v: &Value,
        ctx: &Value,
        what: &str,
    ) -> Result<Value, Failure> {
        match field {
            PathField::Default => Ok(v.clone()),
            PathField::Null => Ok(json!({})),
            PathField::Path(p) => {
                let f = &self.frames[&fid];
                Scope {
                    input: v,
                    ctx,
                    vars: &f.vars,
                }
                .read(p)
                .ok_or_else(|| {
                    runtime(format!(
                        "Invalid path '{}' : The {what} could not be found in the input '{v}'",
                        p.text
                    ))
                })
            }
        }
    }

    pub(crate) fn run_state(
        &mut self,
        def: &Definition,
        fid: u64,
        s: &State,
        raw: Value,
        o: &mut Out,
    ) -> Result<(), Failure> {
        let jsonata = s.ql == QueryLanguage::JSONata;
        let ctx = self.ctx_for(fid, s);
        let states = if jsonata {
            Self::states_var(&raw, &ctx)
        } else {
            Value::Null
        };
        let eff = if jsonata {
            raw.clone()
        } else {
            self.read_path(fid, &s.input_path, &raw, &ctx, "InputPath")?
        };
        if !jsonata {
            self.trace("afterInputPath", &eff);
        }
        match &s.kind {
            Kind::Pass { result } => {
                let after = match &s.parameters {
                    Some(t) => self.eval_in(fid, t, &eff, &ctx, &states)?,
                    None => eff,
                };
                self.trace("afterParameters", &after);
                let result = result.clone().unwrap_or(after);
                self.complete(def, fid, s, &raw, result, &ctx, o)
            }
            Kind::Task { .. } => self.schedule_task(fid, s, &raw, eff, ctx, &states, o),
            Kind::Choice { choices, default } => {
                let mut chosen = None;
                for c in choices {
                    let draws = Cell::new(self.draws);
                    let f = &self.frames[&fid];
                    let scope = Scope {
                        input: &eff,
                        ctx: &ctx,
                        vars: &f.vars,
                    };
                    let mut cond = |t: &Template| -> Result<bool, Failure> {
                        match evaluate(t, &f.vars, &eff, &ctx, &states, self.seed, &draws)? {
                            Value::Bool(b) => Ok(b),
                            other => Err((
                                "States.QueryEvaluationError".into(),
                                format!("The Condition must evaluate to a boolean, got {other}"),
                            )),
                        }
                    };
                    let hit = choice::eval(&c.rule, &scope, &mut cond);
                    self.draws = draws.get();
                    if hit? {
                        chosen = Some(c);
                        break;
                    }
                }
                let (next, out_t, assign_t) = match chosen {
                    Some(c) => (
                        c.next.clone(),
                        c.output.as_ref().or(s.output.as_ref()),
                        c.assign.as_ref().or(s.assign.as_ref()),
                    ),
                    None => match default {
                        Some(d) => (d.clone(), s.output.as_ref(), s.assign.as_ref()),
                        None => {
                            return Err((
                                "States.NoChoiceMatched".into(),
                                format!(
                                    "No Choice Rule matched the input of the state '{}'.",
                                    s.name
                                ),
                            ));
                        }
                    },
                };
                let output = match (jsonata, out_t) {
                    (true, Some(t)) => self.eval_in(fid, t, &raw, &ctx, &states)?,
                    (true, None) => raw.clone(),
                    (false, _) => self.read_path(fid, &s.output_path, &eff, &ctx, "OutputPath")?,
                };
                let assigned = match assign_t {
                    Some(t) => Some(self.eval_in(fid, t, &eff, &ctx, &states)?),
                    None => None,
                };
                self.exit(def, fid, s, output, assigned, Some(next), o)
            }
            Kind::Wait(spec) => {
                let at = match spec {
                    WaitSpec::Seconds(t) => {
                        let v = self.eval_in(fid, t, &eff, &ctx, &states)?;
                        let secs = v.as_f64().filter(|x| *x >= 0.0).ok_or_else(|| runtime(format!("The Wait state's seconds value must be a non-negative number, got {v}")))?;
                        o.now + (secs * 1000.0) as i64
                    }
                    WaitSpec::Timestamp(t) => {
                        let v = self.eval_in(fid, t, &eff, &ctx, &states)?;
                        let ns = v.as_str().and_then(choice::parse_ts).ok_or_else(|| {
                            runtime(format!(
                                "The Wait state's timestamp is not a valid RFC 3339 timestamp: {v}"
                            ))
                        })?;
                        (ns / 1_000_000) as i64
                    }
                };
                let id = self.next_id("wait-");
                self.timers.insert(id.clone(), fid);
                o.step.effects.push(Effect::Timer {
                    timer: id.clone(),
                    at_ms: at,
                });
                self.frames.get_mut(&fid).expect("frame").wait = Wait::Timer { id, effective: eff };
                Ok(())
            }
            Kind::Succeed => {
                let output = match (&s.output, jsonata) {
                    (Some(t), true) => self.eval_in(fid, t, &raw, &ctx, &states)?,
                    (None, true) => raw,
                    (_, false) => self.read_path(fid, &s.output_path, &eff, &ctx, "OutputPath")?,
                };
                self.exit(def, fid, s, output, None, None, o)
            }
            Kind::Fail { error, cause } => {
                let text = |t: &Option<Template>, this: &mut Run| -> Result<String, Failure> {
                    Ok(match t {
                        None => String::new(),
                        Some(t) => match this.eval_in(fid, t, &eff, &ctx, &states)? {
                            Value::String(s) => s,
                            Value::Null => String::new(),
                            other => other.to_string(),
                        },
                    })
                };
                let e = text(error, self)?;
                let c = text(cause, self)?;
                self.trace_status("FAILED");
                self.finish_frame(def, fid, Err((e, c)), o);
                Ok(())
            }
            Kind::Parallel { branches } => {
                let input = match &s.parameters {
                    Some(t) => self.eval_in(fid, t, &eff, &ctx, &states)?,
                    None => eff.clone(),
                };
                self.fevent(o, fid, "ParallelStateStarted", None);
                let pending = (0..branches.len()).map(|i| (i, input.clone())).collect();
                self.start_children(def, fid, s, Children::new(false, eff, pending, 0), o);
                Ok(())
            }
            Kind::Map(m) => {
                if let Some(reader) = &m.item_reader {
                    let params = match &reader.parameters {
                        Some(t) => self.eval_in(fid, t, &eff, &ctx, &states)?,
                        None => json!({}),
                    };
                    self.send_task(
                        fid,
                        s,
                        reader.resource.clone(),
                        params,
                        None,
                        None,
                        None,
                        None,
                        TaskRole::ItemReader,
                        eff,
                        o,
                    );
                    return Ok(());
                }
                let items = match (&m.items, jsonata) {
                    (Some(t), true) => self.eval_in(fid, t, &raw, &ctx, &states)?,
                    (None, true) => raw.clone(),
                    (_, false) => self.read_path(fid, &m.items_path, &eff, &ctx, "ItemsPath")?,
                };
                let Value::Array(items) = items else {
                    return Err(runtime(format!(
                        "The Map state '{}' needs an array of items, got {items}",
                        s.name
                    )));
                };
                self.start_map(def, fid, s, m, eff, items, &ctx, o)
            }
        }
    }

    /// The state produced its result: ResultSelector, ResultPath, OutputPath and Assign
    /// (JSONPath), or Output and Assign (JSONata); then on to the next state.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn complete(
        &mut self,
        def: &Definition,
        fid: u64,
        s: &State,
        raw: &Value,
        result: Value,
        ctx: &Value,
        o: &mut Out,
    ) -> Result<(), Failure> {
        let ctx = if ctx.is_null() {
            self.ctx_for(fid, s)
        } else {
            ctx.clone()
        };
        let (output, assigned) = if s.ql == QueryLanguage::JSONata {
            let mut states = Self::states_var(raw, &ctx);
            states["result"] = result.clone();
            let out = match &s.output {
                Some(t) => self.eval_in(fid, t, raw, &ctx, &states)?,
                None => result,
            };
            let a = match &s.assign {
                Some(t) => Some(self.eval_in(fid, t, raw, &ctx, &states)?),
                None => None,
            };
            (out, a)
        } else {
            let selected = match &s.result_selector {
                Some(t) => self.eval_in(fid, t, &result, &ctx, &Value::Null)?,
                None => result,
            };
            self.trace("afterResultSelector", &selected);
            let a = match &s.assign {
                Some(t) => Some(self.eval_in(fid, t, &selected, &ctx, &Value::Null)?),
                None => None,
            };
            let after = apply_result_path(&s.result_path, raw, selected)?;
            self.trace("afterResultPath", &after);
            (
                self.read_path(fid, &s.output_path, &after, &ctx, "OutputPath")?,
                a,
            )
        };
        self.exit(def, fid, s, output, assigned, s.next.clone(), o)
    }

    /// StateExited, variables, and the transition (or the end of the frame).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn exit(
        &mut self,
        def: &Definition,
        fid: u64,
        s: &State,
        output: Value,
        assigned: Option<Value>,
        next: Option<String>,
        o: &mut Out,
    ) -> Result<(), Failure> {
        if too_big(&output) {
            return Err(limit_error());
        }
        let mut d = json!({"name": s.name, "output": output.to_string(), "outputDetails": {"truncated": false}});
        if let Some(Value::Object(vars)) = &assigned {
            d["assignedVariables"] = Value::Object(
                vars.iter()
                    .map(|(k, v)| (k.trim_end_matches(".$").to_string(), json!(v.to_string())))
                    .collect(),
            );
            d["assignedVariablesDetails"] = json!({"truncated": false});
        }
        self.fevent(
            o,
            fid,
            &format!("{}StateExited", type_name(s)),
            Some(("stateExitedEventDetails", d)),
        );
        if let Some(Value::Object(vars)) = assigned {
            self.trace_vars(&vars);
            let f = self.frames.get_mut(&fid).expect("frame");
            for (k, v) in vars {
                f.vars.insert(k, v);
            }
        }
        self.trace("output", &output);
        let end = s.end || next.is_none();
        if self.test.is_some() {
            self.trace_next(if end { None } else { next.as_deref() }, "SUCCEEDED");
            self.finish_frame(def, fid, Ok(output), o);
            return Ok(());
        }
        if end {
            self.finish_frame(def, fid, Ok(output), o);
        } else {
            let f = self.frames.get_mut(&fid).expect("frame");
            f.state = next.expect("checked above");
            f.input = output;
            f.wait = Wait::Idle { retrying: false };
            o.queue.push_back(fid);
        }
        Ok(())
    }
}

/// ErrorEquals: an exact name; `States.ALL` for anything but the terminal errors;
/// `States.TaskFailed` for any error but a timeout.
pub(crate) fn error_matches(names: &[String], error: &str) -> bool {
    names.iter().any(|n| {
        n == error
            || (n == "States.ALL" && error != "States.DataLimitExceeded")
            || (n == "States.TaskFailed"
                && !matches!(
                    error,
                    "States.Timeout" | "States.HeartbeatTimeout" | "States.DataLimitExceeded"
                ))
    })
}

pub(crate) fn apply_result_path(
    rp: &PathField,
    raw: &Value,
    result: Value,
) -> Result<Value, Failure> {
    match rp {
        PathField::Default => Ok(result),
        PathField::Null => Ok(raw.clone()),
        PathField::Path(p) => {
            let mut out = raw.clone();
            p.write(&mut out, result).map_err(|e| {
                (
                    "States.ResultPathMatchFailure".to_string(),
                    format!(
                        "Unable to apply ResultPath \"{}\" to input \"{raw}\": {e}",
                        p.text
                    ),
                )
            })?;
            Ok(out)
        }
    }
}

pub(crate) fn too_big(v: &Value) -> bool {
    // Cheap shapes cannot reach the limit; only measure what could.
    match v {
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
        Value::String(s) => s.len() + 2 > PAYLOAD_LIMIT,
        _ => v.to_string().len() > PAYLOAD_LIMIT,
    }
}

pub(crate) fn limit_error() -> Failure {
    (
        "States.DataLimitExceeded".into(),
        "The state/task returned a result with a size exceeding the maximum number of bytes service limit.".into(),
    )
}

pub(crate) fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}
