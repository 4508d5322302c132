//! Errors in a state: Retry (backoff, MaxDelaySeconds, full jitter), then Catch, then the
//! branch fails.
//! <https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html>

use crate::model::*;
use crate::run::{Effect, Out, Run, Wait};
use serde_json::{Value, json};

use crate::states::{Failure, apply_result_path, error_matches};

impl Run {
    /// An error in the current state: Retry, then Catch, then the frame fails.
    pub(crate) fn state_error(
        &mut self,
        def: &Definition,
        fid: u64,
        error: String,
        cause: String,
        o: &mut Out,
    ) {
        let Some(f) = self.frames.get(&fid) else {
            return;
        };
        let s = def.state(f.machine, &f.state.clone());
        let handles = matches!(
            s.kind,
            Kind::Task { .. } | Kind::Parallel { .. } | Kind::Map(_)
        );
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
                o.step.effects.push(Effect::Timer {
                    timer: id.clone(),
                    at_ms: o.now + (delay * 1000.0).round() as i64,
                });
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
