//! Parallel branches and Map iterations: starting children up to MaxConcurrency, collecting
//! their results, failing fast (or tolerating failures in a distributed Map), batching items.

use crate::map_runs::{MapRunStatus, Moved};
use crate::model::*;
use crate::run::{Children, Out, Run, TaskRole, Wait};
use crate::template::Template;
use serde_json::{Value, json};
use std::collections::VecDeque;

use crate::states::{Failure, runtime};

impl Run {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn start_map(
        &mut self,
        def: &Definition,
        fid: u64,
        s: &State,
        m: &MapSpec,
        eff: Value,
        items: Vec<Value>,
        ctx: &Value,
        o: &mut Out,
    ) -> Result<(), Failure> {
        let states = if s.ql == QueryLanguage::JSONata {
            Self::states_var(&self.frames[&fid].input.clone(), ctx)
        } else {
            Value::Null
        };
        let num = |this: &mut Run, t: &Option<Template>| -> Result<Option<f64>, Failure> {
            match t {
                None => Ok(None),
                Some(t) => {
                    let v = this.eval_in(fid, t, &eff, ctx, &states)?;
                    v.as_f64()
                        .map(Some)
                        .ok_or_else(|| runtime(format!("expected a number, got {v}")))
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
        let item_count = pending.len() as u64;
        let mut batch_items = Vec::new();
        if let Some(b) = &m.batcher {
            let sel: Vec<Value> = pending.drain(..).map(|(_, v)| v).collect();
            let per = num(self, &b.max_items)?
                .map(|x| x as usize)
                .filter(|x| *x > 0)
                .unwrap_or(usize::MAX);
            let max_bytes = num(self, &b.max_bytes)?
                .map(|x| x as usize)
                .filter(|x| *x > 0)
                .unwrap_or(usize::MAX);
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
            batch_items = batches.iter().map(|b| b.len() as u64).collect();
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
        let continued = self
            .redriving
            .as_ref()
            .filter(|r| r.frame == fid)
            .or_else(|| self.redriving_below.get(&fid))
            .filter(|r| m.distributed && (r.state.is_empty() || r.state == s.name))
            .and_then(|r| {
                Some((
                    r.map_run.clone()?,
                    r.children.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
                ))
            });
        if let Some((arn, kept)) = continued {
            let redrives = self.map_run_redriven(&arn, fid, &kept, o.now);
            self.fevent(
                o,
                fid,
                "MapRunRedriven",
                Some((
                    "mapRunRedrivenEventDetails",
                    json!({ "mapRunArn": arn, "redriveCount": redrives }),
                )),
            );
            c.map_run_arn = Some(arn);
        } else if m.distributed {
            let label = m.label.clone().unwrap_or_else(|| s.name.clone());
            let (a, b) = (self.draw(), self.draw());
            let arn = format!(
                "{}/{}:{}",
                self.ctx
                    .state_machine_id
                    .replacen(":stateMachine:", ":mapRun:", 1),
                label,
                crate::rng::uuid(a, b)
            );
            self.fevent(
                o,
                fid,
                "MapRunStarted",
                Some(("mapRunStartedEventDetails", json!({ "mapRunArn": arn }))),
            );
            let counts = |total| crate::map_runs::Counts {
                total,
                ..Default::default()
            };
            self.map_runs.push(crate::map_runs::MapRun {
                arn: arn.clone(),
                state: s.name.clone(),
                frame: fid,
                start_ms: o.now,
                stop_ms: None,
                status: crate::map_runs::MapRunStatus::Running,
                max_concurrency: max as u64,
                tolerated_failure_count: tolerated_count.unwrap_or(0),
                tolerated_failure_percentage: tolerated_pct.unwrap_or(0.0),
                executions: counts(c.total as u64),
                items: counts(item_count),
                batch_items,
                redrive_count: 0,
                redrive_ms: None,
            });
            c.map_run_arn = Some(arn);
        } else {
            self.fevent(
                o,
                fid,
                "MapStateStarted",
                Some(("mapStateStartedEventDetails", json!({ "length": c.total }))),
            );
        }
        self.start_children(def, fid, s, c, o);
        Ok(())
    }

    /// ItemSelector (or the legacy Parameters) for one item, with `$$.Map.Item` set.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn select_item(
        &mut self,
        fid: u64,
        s: &State,
        m: &MapSpec,
        eff: &Value,
        index: usize,
        item: Value,
        ctx: &Value,
    ) -> Result<Value, Failure> {
        let Some(t) = &m.item_selector else {
            return Ok(item);
        };
        if !s.uses_ctx {
            let states = if s.ql == QueryLanguage::JSONata {
                json!({"input": self.frames[&fid].input})
            } else {
                Value::Null
            };
            return self.eval_in(fid, t, eff, &Value::Null, &states);
        }
        let mut ctx = if ctx.is_null() {
            self.ctx_value(fid, None)
        } else {
            ctx.clone()
        };
        ctx["Map"] = json!({"Item": {"Index": index, "Value": item}});
        let states = if s.ql == QueryLanguage::JSONata {
            json!({"input": self.frames[&fid].input, "context": ctx})
        } else {
            Value::Null
        };
        self.eval_in(fid, t, eff, &ctx, &states)
    }

    pub(crate) fn start_children(
        &mut self,
        def: &Definition,
        fid: u64,
        s: &State,
        c: Children,
        o: &mut Out,
    ) {
        let mut c = c;
        let redriving = self
            .redriving
            .take_if(|r| r.frame == fid)
            .or_else(|| self.redriving_below.remove(&fid))
            // Kept for the state the redrive continued, not one the frame went on to.
            .filter(|r| r.state.is_empty() || r.state == s.name);
        if let Some(r) = redriving {
            if !c.distributed {
                c.resume_in = r.unfinished.into_iter().collect();
            }
            // A redrive: what succeeded last time is kept, the rest runs again.
            let kept: std::collections::BTreeSet<usize> =
                r.children.iter().map(|(s, _)| *s).collect();
            for (slot, v) in r.children {
                if slot < c.total {
                    c.results[slot] = v;
                    c.done += 1;
                    c.ok.push(slot);
                }
            }
            c.pending.retain(|(slot, _)| !kept.contains(slot));
        }
        self.frames.get_mut(&fid).expect("frame").wait = Wait::Children(Box::new(c));
        if let Err((e, cause)) = self.launch(def, fid, s, o) {
            self.state_error(def, fid, e, cause, o);
            return;
        }
        self.maybe_done(def, fid, s, o);
    }

    /// Start children until MaxConcurrency (0: all).
    pub(crate) fn launch(
        &mut self,
        def: &Definition,
        fid: u64,
        s: &State,
        o: &mut Out,
    ) -> Result<(), Failure> {
        loop {
            let Wait::Children(c) = &mut self.frames.get_mut(&fid).expect("frame").wait else {
                return Ok(());
            };
            if c.max != 0 && c.running.len() >= c.max {
                return Ok(());
            }
            let Some((slot, value)) = c.pending.pop_front() else {
                return Ok(());
            };
            let (map, distributed) = (c.map, c.distributed);
            // `$$.Map.Item` belongs to the ItemSelector, which ran already.
            let (machine, input, item) = match &s.kind {
                Kind::Parallel { branches } => (branches[slot], value, None),
                Kind::Map(m) => (m.processor, value, None),
                _ => unreachable!("only Parallel and Map have children"),
            };
            let start_event = if map && !distributed {
                self.fevent(
                    o,
                    fid,
                    "MapIterationStarted",
                    Some((
                        "mapIterationStartedEventDetails",
                        json!({"name": s.name, "index": slot}),
                    )),
                )
            } else {
                self.frames[&fid].last_event
            };
            let mut vars = self.frames[&fid].vars.clone();
            let mut start = def.machines[machine].start_at.clone();
            let mut input = input;
            // A redrive continues a branch or iteration where it stopped.
            let resume = match &mut self.frames.get_mut(&fid).expect("frame").wait {
                Wait::Children(c) => c.resume_in.remove(&slot),
                _ => None,
            };
            if let Some(r) = &resume {
                start = r.state.clone();
                input = r.input.clone();
                vars = r.vars.clone();
            }
            let below = resume;
            let child_input = distributed.then(|| input.clone());
            let child = self.spawn(
                machine,
                Some((fid, slot)),
                start,
                input,
                vars,
                item,
                start_event,
            );
            if let Some(r) = below.and_then(|r| r.redriving(child)) {
                self.redriving_below.insert(child, r);
            }
            let mut map_run = None;
            if let Wait::Children(c) = &mut self.frames.get_mut(&fid).expect("frame").wait {
                c.running.insert(child);
                map_run = c.map_run_arn.clone();
            }
            if let Some(arn) = &map_run {
                self.map_run_moved(arn, slot, Moved::Started);
            }
            match (map_run, child_input) {
                (Some(arn), Some(input)) => self.child_started(o, child, &arn, slot, &input),
                (None, Some(_)) => self.frames.get_mut(&child).expect("child").quiet = true,
                _ => {}
            }
            o.queue.push_back(child);
        }
    }

    pub(crate) fn child_done(
        &mut self,
        def: &Definition,
        pid: u64,
        slot: usize,
        child: u64,
        result: Result<Value, Failure>,
        o: &mut Out,
    ) {
        let Some(f) = self.frames.get(&pid) else {
            return;
        };
        let s = def.state(f.machine, &f.state.clone());
        let Wait::Children(c) = &mut self.frames.get_mut(&pid).expect("parent").wait else {
            return;
        };
        c.running.remove(&child);
        let (map, distributed) = (c.map, c.distributed);
        if let Some(arn) = c.map_run_arn.clone() {
            let how = if result.is_ok() {
                Moved::Succeeded
            } else {
                Moved::Failed
            };
            self.map_run_moved(&arn, slot, how);
            if distributed {
                let ended = match &result {
                    Ok(out) => Ok(out),
                    Err((e, cause)) => Err(Some((e.as_str(), cause.as_str()))),
                };
                let child = crate::map_runs::ChildOf { map_run: arn, slot };
                self.child_ended(o, &child, ended);
            }
        }
        let Wait::Children(c) = &mut self.frames.get_mut(&pid).expect("parent").wait else {
            return;
        };
        match result {
            Ok(out) => {
                c.results[slot] = out;
                c.done += 1;
                c.ok.push(slot);
                if map && !distributed {
                    self.fevent(
                        o,
                        pid,
                        "MapIterationSucceeded",
                        Some((
                            "mapIterationSucceededEventDetails",
                            json!({"name": s.name, "index": slot}),
                        )),
                    );
                }
            }
            Err((e, cause)) => {
                c.done += 1;
                c.failed += 1;
                if distributed {
                    let over_count = c.failed > c.tolerated_count.unwrap_or(0);
                    let pct = c.failed as f64 * 100.0 / c.total.max(1) as f64;
                    let over_pct = pct > c.tolerated_pct.unwrap_or(0.0);
                    let tolerated = (c.tolerated_count.is_some() && !over_count)
                        || (c.tolerated_pct.is_some() && !over_pct);
                    if tolerated {
                        c.results[slot] = json!({"Error": e, "Cause": cause});
                        c.failed_slots.push(slot);
                    } else {
                        let running = std::mem::take(&mut c.running);
                        if let Some(arn) = c.map_run_arn.clone() {
                            self.map_run_ended(&arn, MapRunStatus::Failed, o.now);
                        }
                        for r in running {
                            self.cancel_frame(r, o);
                        }
                        let (e, cause) = (
                            "States.ExceedToleratedFailureThreshold".to_string(),
                            "The specified tolerated failure threshold was exceeded".to_string(),
                        );
                        self.fevent(
                            o,
                            pid,
                            "MapRunFailed",
                            Some((
                                "mapRunFailedEventDetails",
                                json!({"error": e, "cause": cause}),
                            )),
                        );
                        self.state_error(def, pid, e, cause, o);
                        return;
                    }
                } else {
                    let running = std::mem::take(&mut c.running);
                    for r in running {
                        self.cancel_frame(r, o);
                    }
                    if map {
                        self.fevent(
                            o,
                            pid,
                            "MapIterationFailed",
                            Some((
                                "mapIterationFailedEventDetails",
                                json!({"name": s.name, "index": slot}),
                            )),
                        );
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

    pub(crate) fn maybe_done(&mut self, def: &Definition, fid: u64, s: &State, o: &mut Out) {
        let Some(f) = self.frames.get_mut(&fid) else {
            return;
        };
        let Wait::Children(c) = &f.wait else { return };
        if c.done < c.total {
            return;
        }
        let Wait::Children(c) = std::mem::replace(&mut f.wait, Wait::Done) else {
            unreachable!()
        };
        let raw = f.input.clone();
        let results = Value::Array(c.results);
        if !c.map {
            self.fevent(o, fid, "ParallelStateSucceeded", None);
        } else if c.distributed {
            if let Some(arn) = &c.map_run_arn {
                self.map_run_ended(arn, MapRunStatus::Succeeded, o.now);
            }
            self.fevent(o, fid, "MapRunSucceeded", None);
        } else {
            self.fevent(o, fid, "MapStateSucceeded", None);
        }
        if let Kind::Map(m) = &s.kind
            && let Some(w) = &m.result_writer
        {
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
                p.insert("FailedSlots".into(), json!(c.failed_slots));
            }
            self.send_task(
                fid,
                s,
                w.resource.clone(),
                params,
                None,
                None,
                None,
                None,
                TaskRole::ResultWriter,
                c.effective,
                o,
            );
            return;
        }
        if let Err((e, cause)) = self.complete(def, fid, s, &raw, results, &Value::Null, o) {
            self.state_error(def, fid, e, cause, o);
        }
    }
}

impl Children {
    pub(crate) fn new(
        map: bool,
        effective: Value,
        pending: VecDeque<(usize, Value)>,
        max: usize,
    ) -> Children {
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
            failed_slots: Vec::new(),
            ok: Vec::new(),
            unfinished: Default::default(),
            resume_in: Default::default(),
        }
    }
}
