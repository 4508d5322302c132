//! Running one state: the input/output pipeline of each state type in both query languages,
//! task results, timers, Parallel branches and Map iterations, Retry and Catch.
//! <https://docs.aws.amazon.com/step-functions/latest/dg/concepts-input-output-filtering.html>

use crate::choice;
use crate::history::{TaskFamily, data, family, resource_type};
use crate::model::*;
use crate::run::{Children, Effect, Out, PAYLOAD_LIMIT, Run, TaskRole, Wait};
use crate::scope::Scope;
use crate::template::{self, Env, Template};
use serde_json::{Map, Value, json};
use std::cell::Cell;
use std::collections::VecDeque;

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

fn runtime(msg: String) -> Failure {
    ("States.Runtime".into(), msg)
}

/// Evaluate a template against an input, the context object and the frame's variables.
#[allow(clippy::too_many_arguments)]
fn evaluate(t: &Template, vars: &Map<String, Value>, input: &Value, ctx: &Value, states: &Value, seed: u64, draws: &Cell<u64>) -> Result<Value, Failure> {
    let rand = || {
        draws.set(draws.get() + 1);
        crate::rng::mix(seed ^ crate::rng::mix(draws.get()))
    };
    let mut r1 = rand;
    let mut r2 = rand;
    let mut j = |expr: &str| crate::jsonata::evaluate(expr, states, vars, &mut r2);
    let scope = Scope { input, ctx, vars };
    template::eval(t, &scope, &mut Env { rand: &mut r1, jsonata: &mut j })
}

impl Run {
    /// Evaluate on behalf of a frame, drawing randomness from the run.
    fn eval_in(&mut self, fid: u64, t: &Template, input: &Value, ctx: &Value, states: &Value) -> Result<Value, Failure> {
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
            self.fevent(o, fid, &format!("{}StateEntered", type_name(s)), Some(("stateEnteredEventDetails", d)));
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
    fn ctx_for(&self, fid: u64, s: &State) -> Value {
        if s.uses_ctx { self.ctx_value(fid, None) } else { Value::Null }
    }

    fn states_var(raw: &Value, ctx: &Value) -> Value {
        json!({"input": raw, "context": ctx})
    }

    fn read_path(&self, fid: u64, field: &PathField, v: &Value, ctx: &Value, what: &str) -> Result<Value, Failure> {
        match field {
            PathField::Default => Ok(v.clone()),
            PathField::Null => Ok(json!({})),
            PathField::Path(p) => {
                let f = &self.frames[&fid];
                Scope { input: v, ctx, vars: &f.vars }
                    .read(p)
                    .ok_or_else(|| runtime(format!("Invalid path '{}' : The {what} could not be found in the input '{v}'", p.text)))
            }
        }
    }

    fn run_state(&mut self, def: &Definition, fid: u64, s: &State, raw: Value, o: &mut Out) -> Result<(), Failure> {
        let jsonata = s.ql == QueryLanguage::JSONata;
        let ctx = self.ctx_for(fid, s);
        let states = if jsonata { Self::states_var(&raw, &ctx) } else { Value::Null };
        let eff = if jsonata { raw.clone() } else { self.read_path(fid, &s.input_path, &raw, &ctx, "InputPath")? };
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
                    let scope = Scope { input: &eff, ctx: &ctx, vars: &f.vars };
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
                    Some(c) => (c.next.clone(), c.output.as_ref().or(s.output.as_ref()), c.assign.as_ref().or(s.assign.as_ref())),
                    None => match default {
                        Some(d) => (d.clone(), s.output.as_ref(), s.assign.as_ref()),
                        None => {
                            return Err(("States.NoChoiceMatched".into(), format!("No Choice Rule matched the input of the state '{}'.", s.name)));
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
                        let ns = v.as_str().and_then(choice::parse_ts).ok_or_else(|| runtime(format!("The Wait state's timestamp is not a valid RFC 3339 timestamp: {v}")))?;
                        (ns / 1_000_000) as i64
                    }
                };
                let id = self.next_id("wait-");
                self.timers.insert(id.clone(), fid);
                o.step.effects.push(Effect::Timer { timer: id.clone(), at_ms: at });
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
                    self.send_task(fid, s, reader.resource.clone(), params, None, None, None, None, TaskRole::ItemReader, eff, o);
                    return Ok(());
                }
                let items = match (&m.items, jsonata) {
                    (Some(t), true) => self.eval_in(fid, t, &raw, &ctx, &states)?,
                    (None, true) => raw.clone(),
                    (_, false) => self.read_path(fid, &m.items_path, &eff, &ctx, "ItemsPath")?,
                };
                let Value::Array(items) = items else {
                    return Err(runtime(format!("The Map state '{}' needs an array of items, got {items}", s.name)));
                };
                self.start_map(def, fid, s, m, eff, items, &ctx, o)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn start_map(&mut self, def: &Definition, fid: u64, s: &State, m: &MapSpec, eff: Value, items: Vec<Value>, ctx: &Value, o: &mut Out) -> Result<(), Failure> {
        let states = if s.ql == QueryLanguage::JSONata { Self::states_var(&self.frames[&fid].input.clone(), ctx) } else { Value::Null };
        let num = |this: &mut Run, t: &Option<Template>| -> Result<Option<f64>, Failure> {
            match t {
                None => Ok(None),
                Some(t) => {
                    let v = this.eval_in(fid, t, &eff, ctx, &states)?;
                    v.as_f64().map(Some).ok_or_else(|| runtime(format!("expected a number, got {v}")))
                }
            }
        };
        let max = num(self, &m.max_concurrency)?.unwrap_or(0.0) as usize;
        let tolerated_count = num(self, &m.tolerated_count)?.map(|x| x as u64);
        let tolerated_pct = num(self, &m.tolerated_percentage)?;
        let mut pending: VecDeque<(usize, Value)> = items.into_iter().enumerate().collect();
        // Items are selected up front: one pass over the effective input, which then need
        // not be copied per iteration.
        if m.item_selector.is_some() {
            let mut sel = VecDeque::with_capacity(pending.len());
            for (i, item) in pending.drain(..) {
                sel.push_back((i, self.select_item(fid, s, m, &eff, i, item, ctx)?));
            }
            pending = sel;
        }
        let mut selected = false;
        if let Some(b) = &m.batcher {
            let sel: Vec<Value> = pending.drain(..).map(|(_, v)| v).collect();
            let per = num(self, &b.max_items)?.map(|x| x as usize).filter(|x| *x > 0).unwrap_or(usize::MAX);
            let max_bytes = num(self, &b.max_bytes)?.map(|x| x as usize).filter(|x| *x > 0).unwrap_or(usize::MAX);
            let batch_input = match &b.batch_input {
                Some(t) => Some(self.eval_in(fid, t, &eff, ctx, &states)?),
                None => None,
            };
            let mut batches: Vec<Vec<Value>> = Vec::new();
            let mut bytes = 0usize;
            for v in sel {
                let size = v.to_string().len();
                match batches.last_mut() {
                    Some(last) if last.len() < per && bytes + size <= max_bytes => {
                        bytes += size;
                        last.push(v)
                    }
                    _ => {
                        bytes = size;
                        batches.push(vec![v])
                    }
                }
            }
            for (i, items) in batches.into_iter().enumerate() {
                let mut b = json!({ "Items": items });
                if let Some(bi) = &batch_input {
                    b["BatchInput"] = bi.clone();
                }
                pending.push_back((i, b));
            }
            selected = true;
        }
        let mut c = Children::new(true, eff, pending, max);
        c.selected = selected;
        c.distributed = m.distributed;
        c.tolerated_count = tolerated_count;
        c.tolerated_pct = tolerated_pct;
        if m.distributed {
            let label = m.label.clone().unwrap_or_else(|| s.name.clone());
            let (a, b) = (self.draw(), self.draw());
            let arn = format!("{}/{}:{}", self.ctx.state_machine_id.replacen(":stateMachine:", ":mapRun:", 1), label, crate::rng::uuid(a, b));
            self.fevent(o, fid, "MapRunStarted", Some(("mapRunStartedEventDetails", json!({ "mapRunArn": arn }))));
            c.map_run_arn = Some(arn);
        } else {
            self.fevent(o, fid, "MapStateStarted", Some(("mapStateStartedEventDetails", json!({ "length": c.total }))));
        }
        self.start_children(def, fid, s, c, o);
        Ok(())
    }

    /// ItemSelector (or the legacy Parameters) for one item, with `$$.Map.Item` set.
    #[allow(clippy::too_many_arguments)]
    fn select_item(&mut self, fid: u64, s: &State, m: &MapSpec, eff: &Value, index: usize, item: Value, ctx: &Value) -> Result<Value, Failure> {
        let Some(t) = &m.item_selector else { return Ok(item) };
        if !s.uses_ctx {
            let states = if s.ql == QueryLanguage::JSONata { json!({"input": self.frames[&fid].input}) } else { Value::Null };
            return self.eval_in(fid, t, eff, &Value::Null, &states);
        }
        let mut ctx = if ctx.is_null() { self.ctx_value(fid, None) } else { ctx.clone() };
        ctx["Map"] = json!({"Item": {"Index": index, "Value": item}});
        let states = if s.ql == QueryLanguage::JSONata { json!({"input": self.frames[&fid].input, "context": ctx}) } else { Value::Null };
        self.eval_in(fid, t, eff, &ctx, &states)
    }

    fn start_children(&mut self, def: &Definition, fid: u64, s: &State, c: Children, o: &mut Out) {
        self.frames.get_mut(&fid).expect("frame").wait = Wait::Children(Box::new(c));
        if let Err((e, cause)) = self.launch(def, fid, s, o) {
            self.state_error(def, fid, e, cause, o);
            return;
        }
        self.maybe_done(def, fid, s, o);
    }

    /// Start children until MaxConcurrency (0: all).
    fn launch(&mut self, def: &Definition, fid: u64, s: &State, o: &mut Out) -> Result<(), Failure> {
        loop {
            let Wait::Children(c) = &mut self.frames.get_mut(&fid).expect("frame").wait else { return Ok(()) };
            if c.max != 0 && c.running.len() >= c.max {
                return Ok(());
            }
            let Some((slot, value)) = c.pending.pop_front() else { return Ok(()) };
            let (map, distributed) = (c.map, c.distributed);
            // `$$.Map.Item` belongs to the ItemSelector, which ran already.
            let (machine, input, item) = match &s.kind {
                Kind::Parallel { branches } => (branches[slot], value, None),
                Kind::Map(m) => (m.processor, value, None),
                _ => unreachable!("only Parallel and Map have children"),
            };
            let start_event = if map && !distributed {
                self.fevent(o, fid, "MapIterationStarted", Some(("mapIterationStartedEventDetails", json!({"name": s.name, "index": slot}))))
            } else {
                self.frames[&fid].last_event
            };
            let vars = self.frames[&fid].vars.clone();
            let start = def.machines[machine].start_at.clone();
            let child = self.spawn(machine, Some((fid, slot)), start, input, vars, item, start_event);
            if distributed {
                self.frames.get_mut(&child).expect("child").quiet = true;
            }
            if let Wait::Children(c) = &mut self.frames.get_mut(&fid).expect("frame").wait {
                c.running.insert(child);
            }
            o.queue.push_back(child);
        }
    }

    pub(crate) fn child_done(&mut self, def: &Definition, pid: u64, slot: usize, child: u64, result: Result<Value, Failure>, o: &mut Out) {
        let Some(f) = self.frames.get(&pid) else { return };
        let s = def.state(f.machine, &f.state.clone());
        let Wait::Children(c) = &mut self.frames.get_mut(&pid).expect("parent").wait else { return };
        c.running.remove(&child);
        let (map, distributed) = (c.map, c.distributed);
        match result {
            Ok(out) => {
                c.results[slot] = out;
                c.done += 1;
                if map && !distributed {
                    self.fevent(o, pid, "MapIterationSucceeded", Some(("mapIterationSucceededEventDetails", json!({"name": s.name, "index": slot}))));
                }
            }
            Err((e, cause)) => {
                c.done += 1;
                c.failed += 1;
                if distributed {
                    let over_count = c.failed > c.tolerated_count.unwrap_or(0);
                    let pct = c.failed as f64 * 100.0 / c.total.max(1) as f64;
                    let over_pct = pct > c.tolerated_pct.unwrap_or(0.0);
                    let tolerated = (c.tolerated_count.is_some() && !over_count) || (c.tolerated_pct.is_some() && !over_pct);
                    if tolerated {
                        c.results[slot] = json!({"Error": e, "Cause": cause});
                    } else {
                        let running = std::mem::take(&mut c.running);
                        for r in running {
                            self.cancel_frame(r, o);
                        }
                        let (e, cause) = ("States.ExceedToleratedFailureThreshold".to_string(), "The specified tolerated failure threshold was exceeded".to_string());
                        self.fevent(o, pid, "MapRunFailed", Some(("mapRunFailedEventDetails", json!({"error": e, "cause": cause}))));
                        self.state_error(def, pid, e, cause, o);
                        return;
                    }
                } else {
                    let running = std::mem::take(&mut c.running);
                    for r in running {
                        self.cancel_frame(r, o);
                    }
                    if map {
                        self.fevent(o, pid, "MapIterationFailed", Some(("mapIterationFailedEventDetails", json!({"name": s.name, "index": slot}))));
                        self.fevent(o, pid, "MapStateFailed", None);
                    } else {
                        self.fevent(o, pid, "ParallelStateFailed", None);
                    }
                    self.state_error(def, pid, e, cause, o);
                    return;
                }
            }
        }
        if let Err((e, cause)) = self.launch(def, pid, s, o) {
            self.state_error(def, pid, e, cause, o);
            return;
        }
        self.maybe_done(def, pid, s, o);
    }

    fn maybe_done(&mut self, def: &Definition, fid: u64, s: &State, o: &mut Out) {
        let Some(f) = self.frames.get_mut(&fid) else { return };
        let Wait::Children(c) = &f.wait else { return };
        if c.done < c.total {
            return;
        }
        let Wait::Children(c) = std::mem::replace(&mut f.wait, Wait::Done) else { unreachable!() };
        let raw = f.input.clone();
        let results = Value::Array(c.results);
        if !c.map {
            self.fevent(o, fid, "ParallelStateSucceeded", None);
        } else if c.distributed {
            self.fevent(o, fid, "MapRunSucceeded", None);
        } else {
            self.fevent(o, fid, "MapStateSucceeded", None);
        }
        if let Kind::Map(m) = &s.kind {
            if let Some(w) = &m.result_writer {
                let ctx = self.ctx_for(fid, s);
                let states = Self::states_var(&raw, &ctx);
                let mut params = match &w.parameters {
                    Some(t) => match self.eval_in(fid, t, &c.effective, &ctx, &states) {
                        Ok(v) => v,
                        Err((e, cause)) => return self.state_error(def, fid, e, cause, o),
                    },
                    None => json!({}),
                };
                if let Value::Object(p) = &mut params {
                    p.insert("WriterConfig".into(), w.config.clone());
                    p.insert("MapRunArn".into(), json!(c.map_run_arn));
                    p.insert("Results".into(), results);
                }
                self.send_task(fid, s, w.resource.clone(), params, None, None, None, None, TaskRole::ResultWriter, c.effective, o);
                return;
            }
        }
        if let Err((e, cause)) = self.complete(def, fid, s, &raw, results, &Value::Null, o) {
            self.state_error(def, fid, e, cause, o);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn schedule_task(&mut self, fid: u64, s: &State, raw: &Value, eff: Value, ctx: Value, states: &Value, o: &mut Out) -> Result<(), Failure> {
        let Kind::Task { resource, timeout, heartbeat, credentials } = &s.kind else { unreachable!() };
        let token = if resource.ends_with(".waitForTaskToken") {
            let (a, b, c) = (self.draw(), self.draw(), self.draw());
            Some(format!("AQ{}{:016x}", crate::rng::uuid(a, b).replace('-', ""), c))
        } else {
            None
        };
        let (ctx, states) = match &token {
            Some(t) => {
                let ctx = self.ctx_value(fid, Some(t));
                let states = if s.ql == QueryLanguage::JSONata { Self::states_var(raw, &ctx) } else { states.clone() };
                (ctx, states)
            }
            None => (ctx, states.clone()),
        };
        let params = match &s.parameters {
            Some(t) => self.eval_in(fid, t, &eff, &ctx, &states)?,
            None => eff.clone(),
        };
        self.trace(if s.ql == QueryLanguage::JSONata { "afterArguments" } else { "afterParameters" }, &params);
        let secs = |t: &Option<Template>, this: &mut Run| -> Result<Option<u64>, Failure> {
            match t {
                None => Ok(None),
                Some(t) => {
                    let v = this.eval_in(fid, t, &eff, &ctx, &states)?;
                    v.as_u64().filter(|x| *x > 0).map(Some).ok_or_else(|| runtime(format!("The timeout value must be a positive integer, got {v}")))
                }
            }
        };
        let timeout = secs(timeout, self)?;
        let heartbeat = secs(heartbeat, self)?;
        let creds = match credentials {
            Some(t) => Some(self.eval_in(fid, t, &eff, &ctx, &states)?),
            None => None,
        };
        self.send_task(fid, s, resource.clone(), params, timeout, heartbeat, token, creds, TaskRole::Main, eff, o);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn send_task(
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
        let region = self.ctx.execution_id.split(':').nth(3).unwrap_or("us-east-1").to_string();
        match fam {
            TaskFamily::Lambda => {
                let mut d = data("input", &params);
                d["resource"] = json!(resource);
                if let Some(t) = timeout {
                    d["timeoutInSeconds"] = json!(t);
                }
                self.fevent(o, fid, "LambdaFunctionScheduled", Some(("lambdaFunctionScheduledEventDetails", d)));
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
                self.fevent(o, fid, "ActivityScheduled", Some(("activityScheduledEventDetails", d)));
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
                self.fevent(o, fid, "TaskScheduled", Some(("taskScheduledEventDetails", d)));
                self.fevent(o, fid, "TaskStarted", Some(("taskStartedEventDetails", json!({"resourceType": rt, "resource": r}))));
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
        self.frames.get_mut(&fid).expect("frame").wait = Wait::Task { id, resource, family: fam, role, effective };
    }

    /// The host reported a task's outcome. `Err` carries (error, cause, timed out).
    pub(crate) fn task_done(&mut self, def: &Definition, fid: u64, result: Result<Value, (String, String, bool)>, o: &mut Out) {
        let Some(f) = self.frames.get_mut(&fid) else { return };
        let Wait::Task { resource, family: fam, role, effective, .. } = std::mem::replace(&mut f.wait, Wait::Done) else { return };
        let (machine, name, raw) = (f.machine, f.state.clone(), f.input.clone());
        let s = def.state(machine, &name);
        let (rt, r) = resource_type(&resource);
        match result {
            Ok(output) => {
                match fam {
                    TaskFamily::Lambda => {
                        self.fevent(o, fid, "LambdaFunctionSucceeded", Some(("lambdaFunctionSucceededEventDetails", data("output", &output))));
                    }
                    TaskFamily::Activity => {
                        self.fevent(o, fid, "ActivityStarted", Some(("activityStartedEventDetails", json!({}))));
                        self.fevent(o, fid, "ActivitySucceeded", Some(("activitySucceededEventDetails", data("output", &output))));
                    }
                    TaskFamily::Service => {
                        let mut d = data("output", &output);
                        d["resourceType"] = json!(rt);
                        d["resource"] = json!(r);
                        self.fevent(o, fid, "TaskSucceeded", Some(("taskSucceededEventDetails", d)));
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
                        let Kind::Map(m) = &s.kind else { unreachable!() };
                        let reader = m.item_reader.as_ref().expect("reader");
                        match crate::reader::items(&reader.resource, &reader.config, output) {
                            Ok(items) => {
                                let ctx = self.ctx_for(fid, s);
                                self.start_map(def, fid, s, m, effective, items, &ctx, o)
                            }
                            Err(e) => Err(("States.ItemReaderFailed".into(), e)),
                        }
                    }
                    TaskRole::ResultWriter => self.complete(def, fid, s, &raw, output, &Value::Null, o),
                };
                if let Err((e, c)) = r {
                    self.state_error(def, fid, e, c, o);
                }
            }
            Err((e, c, timed_out)) => {
                let ev = json!({"error": e, "cause": c});
                match (fam, timed_out) {
                    (TaskFamily::Lambda, false) => self.fevent(o, fid, "LambdaFunctionFailed", Some(("lambdaFunctionFailedEventDetails", ev))),
                    (TaskFamily::Lambda, true) => self.fevent(o, fid, "LambdaFunctionTimedOut", Some(("lambdaFunctionTimedOutEventDetails", ev))),
                    (TaskFamily::Activity, false) => self.fevent(o, fid, "ActivityFailed", Some(("activityFailedEventDetails", ev))),
                    (TaskFamily::Activity, true) => self.fevent(o, fid, "ActivityTimedOut", Some(("activityTimedOutEventDetails", ev))),
                    (TaskFamily::Service, t) => {
                        let mut d = ev;
                        d["resourceType"] = json!(rt);
                        d["resource"] = json!(r);
                        if t {
                            self.fevent(o, fid, "TaskTimedOut", Some(("taskTimedOutEventDetails", d)))
                        } else {
                            self.fevent(o, fid, "TaskFailed", Some(("taskFailedEventDetails", d)))
                        }
                    }
                };
                let e = match role {
                    TaskRole::ItemReader if !e.starts_with("States.") => "States.ItemReaderFailed".to_string(),
                    TaskRole::ResultWriter if !e.starts_with("States.") => "States.ResultWriterFailed".to_string(),
                    _ => e,
                };
                self.state_error(def, fid, e, c, o);
            }
        }
    }

    pub(crate) fn timer_fired(&mut self, def: &Definition, fid: u64, o: &mut Out) {
        let Some(f) = self.frames.get_mut(&fid) else { return };
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
                        let out = self.read_path(fid, &s.output_path, &effective, &ctx, "OutputPath")?;
                        let a = match &s.assign {
                            Some(t) => Some(self.eval_in(fid, t, &effective, &ctx, &Value::Null)?),
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

    /// The state produced its result: ResultSelector, ResultPath, OutputPath and Assign
    /// (JSONPath), or Output and Assign (JSONata); then on to the next state.
    fn complete(&mut self, def: &Definition, fid: u64, s: &State, raw: &Value, result: Value, ctx: &Value, o: &mut Out) -> Result<(), Failure> {
        let ctx = if ctx.is_null() { self.ctx_for(fid, s) } else { ctx.clone() };
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
            (self.read_path(fid, &s.output_path, &after, &ctx, "OutputPath")?, a)
        };
        self.exit(def, fid, s, output, assigned, s.next.clone(), o)
    }

    /// StateExited, variables, and the transition (or the end of the frame).
    #[allow(clippy::too_many_arguments)]
    fn exit(&mut self, def: &Definition, fid: u64, s: &State, output: Value, assigned: Option<Value>, next: Option<String>, o: &mut Out) -> Result<(), Failure> {
        if too_big(&output) {
            return Err(limit_error());
        }
        let mut d = json!({"name": s.name, "output": output.to_string(), "outputDetails": {"truncated": false}});
        if let Some(Value::Object(vars)) = &assigned {
            d["assignedVariables"] = Value::Object(vars.iter().map(|(k, v)| (k.trim_end_matches(".$").to_string(), json!(v.to_string()))).collect());
            d["assignedVariablesDetails"] = json!({"truncated": false});
        }
        self.fevent(o, fid, &format!("{}StateExited", type_name(s)), Some(("stateExitedEventDetails", d)));
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

    /// An error in the current state: Retry, then Catch, then the frame fails.
    pub(crate) fn state_error(&mut self, def: &Definition, fid: u64, error: String, cause: String, o: &mut Out) {
        let Some(f) = self.frames.get(&fid) else { return };
        let s = def.state(f.machine, &f.state.clone());
        let handles = matches!(s.kind, Kind::Task { .. } | Kind::Parallel { .. } | Kind::Map(_));
        if handles && error != "States.Runtime" {
            for (i, r) in s.retry.iter().enumerate() {
                if !error_matches(&r.errors, &error) {
                    continue;
                }
                let attempts = f.retries.get(i).copied().unwrap_or(0);
                if attempts >= r.max_attempts {
                    break;
                }
                let mut delay = r.interval_seconds * r.backoff_rate.powi(attempts as i32);
                if let Some(m) = r.max_delay_seconds {
                    delay = delay.min(m);
                }
                if r.jitter_full {
                    delay *= (self.draw() >> 11) as f64 / (1u64 << 53) as f64;
                }
                let f = self.frames.get_mut(&fid).expect("frame");
                if let Some(n) = f.retries.get_mut(i) {
                    *n += 1;
                }
                f.retry_count += 1;
                if self.test.is_some() {
                    self.trace_error(&error, &cause, None, "RETRIABLE");
                    self.trace("retryBackoffIntervalSeconds", &json!(delay.round() as u64));
                    self.finish_frame(def, fid, Err((error, cause)), o);
                    return;
                }
                let id = self.next_id("retry-");
                self.timers.insert(id.clone(), fid);
                o.step.effects.push(Effect::Timer { timer: id.clone(), at_ms: o.now + (delay * 1000.0).round() as i64 });
                self.frames.get_mut(&fid).expect("frame").wait = Wait::RetryTimer { id };
                return;
            }
            for c in &s.catch {
                if !error_matches(&c.errors, &error) {
                    continue;
                }
                let raw = self.frames[&fid].input.clone();
                let err_out = json!({"Error": error, "Cause": cause});
                let r = (|| -> Result<(Value, Option<Value>), Failure> {
                    if s.ql == QueryLanguage::JSONata {
                        let ctx = self.ctx_for(fid, s);
                        let mut states = Self::states_var(&raw, &ctx);
                        states["errorOutput"] = err_out.clone();
                        let out = match &c.output {
                            Some(t) => self.eval_in(fid, t, &raw, &ctx, &states)?,
                            None => err_out.clone(),
                        };
                        let a = match &c.assign {
                            Some(t) => Some(self.eval_in(fid, t, &raw, &ctx, &states)?),
                            None => None,
                        };
                        Ok((out, a))
                    } else {
                        let a = match &c.assign {
                            Some(t) => {
                                let ctx = self.ctx_for(fid, s);
                                Some(self.eval_in(fid, t, &err_out, &ctx, &Value::Null)?)
                            }
                            None => None,
                        };
                        Ok((apply_result_path(&c.result_path, &raw, err_out.clone())?, a))
                    }
                })();
                match r {
                    Ok((out, assigned)) => {
                        if let Some(Value::Object(vars)) = assigned {
                            let f = self.frames.get_mut(&fid).expect("frame");
                            for (k, v) in vars {
                                f.vars.insert(k, v);
                            }
                        }
                        if self.test.is_some() {
                            self.trace_error(&error, &cause, Some(&c.next), "CAUGHT_ERROR");
                            self.trace("output", &out);
                            self.finish_frame(def, fid, Ok(out), o);
                            return;
                        }
                        let f = self.frames.get_mut(&fid).expect("frame");
                        f.state = c.next.clone();
                        f.input = out;
                        f.wait = Wait::Idle { retrying: false };
                        o.queue.push_back(fid);
                    }
                    Err((e2, c2)) => self.finish_frame(def, fid, Err((e2, c2)), o),
                }
                return;
            }
        }
        self.trace_error(&error, &cause, None, "FAILED");
        self.finish_frame(def, fid, Err((error, cause)), o);
    }
}

impl Children {
    pub(crate) fn new(map: bool, effective: Value, pending: VecDeque<(usize, Value)>, max: usize) -> Children {
        let total = pending.len();
        Children {
            map,
            effective,
            pending,
            results: vec![Value::Null; total],
            running: Default::default(),
            max,
            failed: 0,
            tolerated_count: None,
            tolerated_pct: None,
            total,
            done: 0,
            distributed: false,
            selected: false,
            map_run_arn: None,
        }
    }
}

/// ErrorEquals: an exact name; `States.ALL` for anything but the terminal errors;
/// `States.TaskFailed` for any error but a timeout.
fn error_matches(names: &[String], error: &str) -> bool {
    names.iter().any(|n| {
        n == error
            || (n == "States.ALL" && error != "States.DataLimitExceeded")
            || (n == "States.TaskFailed" && !matches!(error, "States.Timeout" | "States.HeartbeatTimeout" | "States.DataLimitExceeded"))
    })
}

fn apply_result_path(rp: &PathField, raw: &Value, result: Value) -> Result<Value, Failure> {
    match rp {
        PathField::Default => Ok(result),
        PathField::Null => Ok(raw.clone()),
        PathField::Path(p) => {
            let mut out = raw.clone();
            p.write(&mut out, result).map_err(|e| {
                (
                    "States.ResultPathMatchFailure".to_string(),
                    format!("Unable to apply ResultPath \"{}\" to input \"{raw}\": {e}", p.text),
                )
            })?;
            Ok(out)
        }
    }
}

fn too_big(v: &Value) -> bool {
    // Cheap shapes cannot reach the limit; only measure what could.
    match v {
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
        Value::String(s) => s.len() + 2 > PAYLOAD_LIMIT,
        _ => v.to_string().len() > PAYLOAD_LIMIT,
    }
}

fn limit_error() -> Failure {
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
