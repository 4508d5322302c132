//! A distributed Map's child executions: ListExecutions with `mapRunArn`, and
//! DescribeExecution and GetExecutionHistory of a child's ARN.
//!
//! The interpreter runs each iteration inside its parent's run and reports, in every step,
//! what happened to the children ([`ChildChange`]); the driver commits that with the step.
//! A child is two records in [`CHILDREN`], `{map run}/{slot}` when it starts and
//! `{map run}/{slot}/end` when it ends (so that neither is read back to be rewritten), its
//! ARN in [`CHILD_ARNS`], and its events in [`HISTORY`] under its own ARN, as a top-level
//! execution's are.

use basalt_asl::{ChildChange, HistoryEvent, MapRunStatus};
use basalt_core::{AwsError, page_token};
use basalt_store::WriteOp;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::StepFunctions;
use crate::model::{HISTORY, secs};

/// `{map run arn}/{slot:08}` (start) and `…/end` → [`Started`] and [`Ended`].
pub const CHILDREN: &str = "states.map-children";
/// A child execution's ARN → its key in [`CHILDREN`].
pub const CHILD_ARNS: &str = "states.child-executions";

#[derive(Serialize, Deserialize)]
struct Started {
    name: String,
    start_ms: i64,
    items: u64,
    input: String,
    /// Times a redrive of the parent ran this child again.
    #[serde(default)]
    redrive_count: u32,
    #[serde(default)]
    redrive_ms: Option<i64>,
}

#[derive(Serialize, Deserialize)]
struct Ended {
    status: String,
    stop_ms: i64,
    #[serde(default)]
    output: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    cause: Option<String>,
}

fn key(map_run: &str, slot: usize) -> String {
    format!("{map_run}/{slot:08}")
}

/// `arn:…:mapRun:<machine>/<label>:<id>` → `arn:…:stateMachine:<machine>/<label>`, the state
/// machine AWS says a Map Run's children run.
pub fn child_machine_arn(map_run: &str) -> String {
    let base = map_run.rsplit_once(':').map_or(map_run, |(b, _)| b);
    base.replacen(":mapRun:", ":stateMachine:", 1)
}

fn child_arn(map_run: &str, name: &str) -> String {
    format!(
        "{}:{name}",
        child_machine_arn(map_run).replacen(":stateMachine:", ":execution:", 1)
    )
}

/// The writes that keep a step's child changes. A child that ran before (its parent was
/// redriven) keeps its name, so its ARN, as AWS redrives child executions in place; its
/// history is the new attempt's.
pub fn ops(sf: &StepFunctions, changes: &[ChildChange]) -> Result<Vec<WriteOp>, AwsError> {
    let mut ops = Vec::new();
    // A child's events go under its ARN, known from its start (this step's or a stored one).
    let mut arns: std::collections::HashMap<String, String> = Default::default();
    for c in changes {
        match c {
            ChildChange::Started {
                child,
                name,
                items,
                input,
                at_ms,
            } => {
                let k = key(&child.map_run, child.slot);
                let before = match sf.state.get(CHILDREN, &k)? {
                    Some(raw) => serde_json::from_slice::<Started>(&raw).ok(),
                    None => None,
                };
                let rec = match before {
                    Some(b) => {
                        let arn = child_arn(&child.map_run, &b.name);
                        for (event, _) in
                            sf.state.scan(HISTORY, &format!("{arn}/"), None, 100_000)?
                        {
                            ops.push(WriteOp::Delete {
                                table: HISTORY.into(),
                                key: event,
                            });
                        }
                        Started {
                            name: b.name,
                            start_ms: b.start_ms,
                            items: *items,
                            input: input.to_string(),
                            redrive_count: b.redrive_count + 1,
                            redrive_ms: Some(*at_ms),
                        }
                    }
                    None => Started {
                        name: name.clone(),
                        start_ms: *at_ms,
                        items: *items,
                        input: input.to_string(),
                        redrive_count: 0,
                        redrive_ms: None,
                    },
                };
                let arn = child_arn(&child.map_run, &rec.name);
                ops.push(WriteOp::Put {
                    table: CHILDREN.into(),
                    key: k.clone(),
                    value: serde_json::to_vec(&rec).unwrap_or_default(),
                });
                // A redriven Map Run starts a failed iteration again: its last end goes.
                ops.push(WriteOp::Delete {
                    table: CHILDREN.into(),
                    key: format!("{k}/end"),
                });
                ops.push(WriteOp::Put {
                    table: CHILD_ARNS.into(),
                    key: arn.clone(),
                    value: k.clone().into_bytes(),
                });
                arns.insert(k, arn);
            }
            ChildChange::Event { child, event } => {
                let k = key(&child.map_run, child.slot);
                if let Some(arn) = arns.get(&k) {
                    ops.push(history_put(arn, event));
                }
            }
            ChildChange::Ended {
                child,
                status,
                output,
                error,
                at_ms,
            } => {
                let rec = Ended {
                    status: status.as_str().to_owned(),
                    stop_ms: *at_ms,
                    output: output.as_ref().map(Value::to_string),
                    error: error.as_ref().map(|(e, _)| e.clone()),
                    cause: error.as_ref().map(|(_, c)| c.clone()),
                };
                ops.push(WriteOp::Put {
                    table: CHILDREN.into(),
                    key: format!("{}/end", key(&child.map_run, child.slot)),
                    value: serde_json::to_vec(&rec).unwrap_or_default(),
                });
            }
        }
    }
    Ok(ops)
}

/// Events of children that started in an earlier step: their ARN is read from the store.
pub fn late_events(sf: &StepFunctions, changes: &[ChildChange]) -> Result<Vec<WriteOp>, AwsError> {
    let started: std::collections::HashSet<String> = changes
        .iter()
        .filter_map(|c| match c {
            ChildChange::Started { child, .. } => Some(key(&child.map_run, child.slot)),
            _ => None,
        })
        .collect();
    let mut arns: std::collections::HashMap<String, Option<String>> = Default::default();
    let mut ops = Vec::new();
    for c in changes {
        let ChildChange::Event { child, event } = c else {
            continue;
        };
        let k = key(&child.map_run, child.slot);
        if started.contains(&k) {
            continue;
        }
        if !arns.contains_key(&k) {
            let arn = match sf.state.get(CHILDREN, &k)? {
                Some(raw) => serde_json::from_slice::<Started>(&raw)
                    .ok()
                    .map(|s| child_arn(&child.map_run, &s.name)),
                None => None,
            };
            arns.insert(k.clone(), arn);
        }
        if let Some(Some(arn)) = arns.get(&k) {
            ops.push(history_put(arn, event));
        }
    }
    Ok(ops)
}

fn history_put(arn: &str, event: &HistoryEvent) -> WriteOp {
    WriteOp::Put {
        table: HISTORY.into(),
        key: format!("{arn}/{:010}", event.id),
        value: serde_json::to_vec(&event.to_json()).unwrap_or_default(),
    }
}

/// One child as ListExecutions and DescribeExecution show it.
struct Child {
    arn: String,
    map_run: String,
    started: Started,
    ended: Option<Ended>,
}

impl Child {
    fn status(&self) -> &str {
        self.ended
            .as_ref()
            .map_or(MapRunStatus::Running.as_str(), |e| e.status.as_str())
    }

    fn list_item(&self) -> Value {
        let mut v = json!({
            "executionArn": self.arn,
            "stateMachineArn": child_machine_arn(&self.map_run),
            "name": self.started.name,
            "status": self.status(),
            "startDate": secs(self.started.start_ms),
            "mapRunArn": self.map_run,
            "itemCount": self.started.items,
            "redriveCount": self.started.redrive_count,
        });
        if let Some(r) = self.started.redrive_ms {
            v["redriveDate"] = secs(r).into();
        }
        if let Some(e) = &self.ended {
            v["stopDate"] = secs(e.stop_ms).into();
        }
        v
    }

    fn describe(&self, include: bool) -> Value {
        let mut v = self.list_item();
        v.as_object_mut().map(|o| o.remove("itemCount"));
        v["redriveStatus"] = "NOT_REDRIVABLE".into();
        v["redriveStatusReason"] =
            "Child executions of a distributed Map are redriven with their parent".into();
        let payload = |v: &mut Value, name: &str, text: Option<&String>| {
            if let Some(t) = text {
                if include {
                    v[name] = t.clone().into();
                }
                v[format!("{name}Details")] = json!({ "included": include });
            }
        };
        payload(&mut v, "input", Some(&self.started.input));
        if let Some(e) = &self.ended {
            payload(&mut v, "output", e.output.as_ref());
            if let Some(err) = &e.error {
                v["error"] = err.clone().into();
            }
            if let Some(c) = &e.cause {
                v["cause"] = c.clone().into();
            }
        }
        v
    }
}

/// The child execution `arn`, if it is one.
fn load(sf: &StepFunctions, arn: &str) -> Result<Option<Child>, AwsError> {
    let Some(k) = sf.state.get(CHILD_ARNS, arn)? else {
        return Ok(None);
    };
    let k = String::from_utf8_lossy(&k).into_owned();
    let Some(map_run) = k.rsplit_once('/').map(|(m, _)| m.to_owned()) else {
        return Ok(None);
    };
    let Some(raw) = sf.state.get(CHILDREN, &k)? else {
        return Ok(None);
    };
    let started: Started =
        serde_json::from_slice(&raw).map_err(|e| crate::corrupt("child execution", e))?;
    if child_arn(&map_run, &started.name) != arn {
        // The slot was started again (a redrive): this ARN names the run it replaced.
        return Ok(None);
    }
    let ended = match sf.state.get(CHILDREN, &format!("{k}/end"))? {
        Some(raw) => {
            Some(serde_json::from_slice(&raw).map_err(|e| crate::corrupt("child execution", e))?)
        }
        None => None,
    };
    Ok(Some(Child {
        arn: arn.to_owned(),
        map_run,
        started,
        ended,
    }))
}

pub fn is_child(sf: &StepFunctions, arn: &str) -> Result<bool, AwsError> {
    Ok(load(sf, arn)?.is_some())
}

/// DescribeExecution of a child execution; `None` when `arn` is not one.
pub fn describe(sf: &StepFunctions, arn: &str) -> Result<Option<Value>, AwsError> {
    Ok(load(sf, arn)?.map(|c| c.describe(true)))
}

/// ListExecutions with `mapRunArn`: the Map Run's children in iteration order, with
/// `statusFilter`, `maxResults` and `nextToken`.
pub fn list(
    sf: &StepFunctions,
    map_run: &str,
    status: Option<&str>,
    max: usize,
    after: Option<String>,
) -> Result<Value, AwsError> {
    let prefix = format!("{map_run}/");
    let mut cursor = after;
    let mut items = Vec::new();
    let mut next = None;
    'pages: loop {
        let rows = sf.state.scan(CHILDREN, &prefix, cursor.as_deref(), 512)?;
        if rows.is_empty() {
            break;
        }
        let mut i = 0;
        while i < rows.len() {
            let (k, raw) = &rows[i];
            let before = cursor.replace(k.clone());
            i += 1;
            if k.ends_with("/end") {
                continue;
            }
            let started: Started =
                serde_json::from_slice(raw).map_err(|e| crate::corrupt("child execution", e))?;
            let end_key = format!("{k}/end");
            let ended = match rows.get(i) {
                Some((ek, raw)) if *ek == end_key => {
                    cursor = Some(ek.clone());
                    i += 1;
                    Some(
                        serde_json::from_slice(raw)
                            .map_err(|e| crate::corrupt("child execution", e))?,
                    )
                }
                // The end record fell on the next page.
                None => match sf.state.get(CHILDREN, &end_key)? {
                    Some(raw) => {
                        cursor = Some(end_key);
                        Some(
                            serde_json::from_slice(&raw)
                                .map_err(|e| crate::corrupt("child execution", e))?,
                        )
                    }
                    None => None,
                },
                Some(_) => None,
            };
            let c = Child {
                arn: child_arn(map_run, &started.name),
                map_run: map_run.to_owned(),
                started,
                ended,
            };
            if status.is_some_and(|s| s != c.status()) {
                continue;
            }
            if items.len() == max {
                // The next page starts with this child: after the key before it.
                next = before.map(|b| page_token::encode(&b));
                break 'pages;
            }
            items.push(c.list_item());
        }
    }
    let mut v = json!({ "executions": items });
    if let Some(n) = next {
        v["nextToken"] = n.into();
    }
    Ok(v)
}

/// Removes the children of the Map Run `map_run` with their histories (retention): each
/// child's history first, in pages, then its records, so that an interrupted sweep leaves
/// nothing it cannot find again.
pub fn forget(sf: &StepFunctions, map_run: &str) -> Result<(), basalt_store::StoreError> {
    const PAGE: usize = 500;
    let prefix = format!("{map_run}/");
    loop {
        let rows = sf.state.scan(CHILDREN, &prefix, None, 64)?;
        if rows.is_empty() {
            return Ok(());
        }
        for (k, raw) in rows {
            let mut ops = Vec::new();
            if !k.ends_with("/end")
                && let Ok(started) = serde_json::from_slice::<Started>(&raw)
            {
                let arn = child_arn(map_run, &started.name);
                loop {
                    let events = sf.state.scan(HISTORY, &format!("{arn}/"), None, PAGE)?;
                    if events.is_empty() {
                        break;
                    }
                    let deletes: Vec<WriteOp> = (events.into_iter())
                        .map(|(key, _)| WriteOp::Delete {
                            table: HISTORY.into(),
                            key,
                        })
                        .collect();
                    sf.state.batch(&deletes)?;
                }
                ops.push(WriteOp::Delete {
                    table: CHILD_ARNS.into(),
                    key: arn,
                });
            }
            ops.push(WriteOp::Delete {
                table: CHILDREN.into(),
                key: k,
            });
            sf.state.batch(&ops)?;
        }
    }
}
