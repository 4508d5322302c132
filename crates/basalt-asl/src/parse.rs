//! Definition text → validated `Definition`, collecting every problem as a `Diagnostic` with
//! AWS's code, message and JSON-pointer location (messages as measured against
//! ValidateStateMachineDefinition, e.g. <https://github.com/floci-io/floci/pull/2786>).

use crate::choice;
use crate::diag::Diagnostic;
use crate::model::*;
use crate::template::{self, Template};
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet, VecDeque};

/// Parse and validate; `Err` holds at least one ERROR diagnostic.
pub fn parse(definition: &str) -> Result<Definition, Vec<Diagnostic>> {
    let (def, diags) = analyse(definition);
    match def {
        Some(d) if !diags.iter().any(|d| d.severity == "ERROR") => Ok(d),
        _ => Err(diags
            .into_iter()
            .filter(|d| d.severity == "ERROR")
            .collect()),
    }
}

/// Every diagnostic, warnings included (ValidateStateMachineDefinition).
pub fn validate(definition: &str) -> Vec<Diagnostic> {
    analyse(definition).1
}

fn analyse(text: &str) -> (Option<Definition>, Vec<Diagnostic>) {
    let v: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return (
                None,
                vec![Diagnostic::error(
                    "INVALID_JSON_DESCRIPTION",
                    format!("{e}"),
                    "",
                )],
            );
        }
    };
    let Some(top) = v.as_object() else {
        return (
            None,
            vec![Diagnostic::error(
                "SCHEMA_VALIDATION_FAILED",
                "The definition must be a JSON object",
                "",
            )],
        );
    };
    let mut cx = Cx {
        diags: Vec::new(),
        machines: Vec::new(),
    };
    for k in top.keys() {
        if !matches!(
            k.as_str(),
            "Comment" | "StartAt" | "States" | "Version" | "TimeoutSeconds" | "QueryLanguage"
        ) {
            cx.err(
                "SCHEMA_VALIDATION_FAILED",
                format!("Field '{k}' is not supported"),
                "",
            );
        }
    }
    let ql = match top.get("QueryLanguage") {
        None => QueryLanguage::JSONPath,
        Some(Value::String(s)) if s == "JSONPath" => QueryLanguage::JSONPath,
        Some(Value::String(s)) if s == "JSONata" => QueryLanguage::JSONata,
        Some(_) => {
            cx.err(
                "SCHEMA_VALIDATION_FAILED",
                "Instance value is not one of the enum values [JSONPath, JSONata]",
                "/QueryLanguage",
            );
            QueryLanguage::JSONPath
        }
    };
    let timeout_seconds = match top.get("TimeoutSeconds") {
        None => None,
        Some(t) => match t.as_u64() {
            Some(n) if n > 0 && n <= 99_999_999 => Some(n),
            _ => {
                cx.err(
                    "SCHEMA_VALIDATION_FAILED",
                    "Minimum value is 1",
                    "/TimeoutSeconds",
                );
                None
            }
        },
    };
    let comment = top
        .get("Comment")
        .and_then(Value::as_str)
        .map(str::to_owned);
    cx.machine(top, "", ql);
    let def = Definition {
        machines: cx.machines,
        query_language: ql,
        timeout_seconds,
        comment,
    };
    (Some(def), cx.diags)
}

struct Cx {
    diags: Vec<Diagnostic>,
    machines: Vec<Machine>,
}

mod fields;

const JSONPATH_ONLY: &[&str] = &[
    "InputPath",
    "OutputPath",
    "ResultPath",
    "Parameters",
    "ResultSelector",
    "ItemsPath",
    "SecondsPath",
    "TimestampPath",
    "ErrorPath",
    "CausePath",
    "TimeoutSecondsPath",
    "HeartbeatSecondsPath",
    "MaxConcurrencyPath",
    "ToleratedFailureCountPath",
    "ToleratedFailurePercentagePath",
    "Result",
    "Iterator",
];
const JSONATA_ONLY: &[&str] = &["Arguments", "Output", "Items"];

fn allowed(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "Pass" => &[
            "Next",
            "End",
            "Result",
            "ResultPath",
            "Parameters",
            "InputPath",
            "OutputPath",
            "Output",
            "Assign",
        ],
        "Task" => &[
            "Next",
            "End",
            "Resource",
            "Parameters",
            "Arguments",
            "ResultPath",
            "ResultSelector",
            "InputPath",
            "OutputPath",
            "Output",
            "Assign",
            "Retry",
            "Catch",
            "TimeoutSeconds",
            "TimeoutSecondsPath",
            "HeartbeatSeconds",
            "HeartbeatSecondsPath",
            "Credentials",
        ],
        "Choice" => &[
            "Choices",
            "Default",
            "InputPath",
            "OutputPath",
            "Output",
            "Assign",
        ],
        "Wait" => &[
            "Next",
            "End",
            "Seconds",
            "Timestamp",
            "SecondsPath",
            "TimestampPath",
            "InputPath",
            "OutputPath",
            "Output",
            "Assign",
        ],
        "Succeed" => &["InputPath", "OutputPath", "Output"],
        "Fail" => &["Error", "Cause", "ErrorPath", "CausePath"],
        "Parallel" => &[
            "Next",
            "End",
            "Branches",
            "Parameters",
            "Arguments",
            "ResultPath",
            "ResultSelector",
            "InputPath",
            "OutputPath",
            "Output",
            "Assign",
            "Retry",
            "Catch",
        ],
        "Map" => &[
            "Next",
            "End",
            "Iterator",
            "ItemProcessor",
            "ItemsPath",
            "Items",
            "ItemSelector",
            "Parameters",
            "ResultPath",
            "ResultSelector",
            "InputPath",
            "OutputPath",
            "Output",
            "Assign",
            "Retry",
            "Catch",
            "MaxConcurrency",
            "MaxConcurrencyPath",
            "ItemReader",
            "ItemBatcher",
            "ResultWriter",
            "ToleratedFailureCount",
            "ToleratedFailureCountPath",
            "ToleratedFailurePercentage",
            "ToleratedFailurePercentagePath",
            "Label",
        ],
        _ => return None,
    })
}

impl Cx {
    fn err(&mut self, code: &str, msg: impl Into<String>, loc: impl Into<String>) {
        self.diags.push(Diagnostic::error(code, msg, loc));
    }
    fn schema(&mut self, msg: impl Into<String>, loc: impl Into<String>) {
        self.err("SCHEMA_VALIDATION_FAILED", msg, loc);
    }

    /// Parse a machine (top level, a branch or a processor); returns its index.
    fn machine(&mut self, obj: &Map<String, Value>, loc: &str, ql: QueryLanguage) -> usize {
        let idx = self.machines.len();
        self.machines.push(Machine {
            start_at: String::new(),
            states: HashMap::new(),
            order: Vec::new(),
        });
        let start_at = match obj.get("StartAt") {
            Some(Value::String(s)) => s.clone(),
            _ => {
                self.schema("These fields are required: [StartAt]", loc.to_string());
                String::new()
            }
        };
        let mut states = HashMap::new();
        let mut order = Vec::new();
        match obj.get("States") {
            Some(Value::Object(m)) if !m.is_empty() => {
                for (name, sv) in m {
                    let sloc = format!("{loc}/States/{name}");
                    if name.len() > 80 {
                        self.schema("State names must be at most 80 characters", sloc.clone());
                    }
                    let Some(so) = sv.as_object() else {
                        self.schema("A state must be a JSON object", sloc);
                        continue;
                    };
                    if let Some(s) = self.state(name, so, &sloc, ql) {
                        order.push(name.clone());
                        states.insert(name.clone(), s);
                    }
                }
            }
            _ => self.schema("These fields are required: [States]", loc.to_string()),
        }
        self.transitions(&start_at, &states, &order, loc);
        self.machines[idx] = Machine {
            start_at,
            states,
            order,
        };
        idx
    }

    /// Missing targets, then a terminal state, then reachability, in AWS's order.
    fn transitions(
        &mut self,
        start_at: &str,
        states: &HashMap<String, State>,
        order: &[String],
        loc: &str,
    ) {
        if start_at.is_empty() {
            return;
        }
        if !states.contains_key(start_at) {
            self.err(
                "MISSING_TRANSITION_TARGET",
                format!("Missing 'Next' target: {start_at}"),
                format!("{loc}/StartAt"),
            );
        }
        for name in order {
            for (target, where_) in targets(&states[name]) {
                if !states.contains_key(&target) {
                    self.err(
                        "MISSING_TRANSITION_TARGET",
                        format!("Missing 'Next' target: {target}"),
                        format!("{loc}/States/{name}{where_}"),
                    );
                }
            }
        }
        let terminal = states
            .values()
            .any(|s| s.end || matches!(s.kind, Kind::Succeed | Kind::Fail { .. }));
        if !terminal && !states.is_empty() {
            self.diags.push(Diagnostic::error(
                "MISSING_END_STATE",
                "Workflow has no terminal state",
                "",
            ));
            return;
        }
        let mut seen = HashSet::new();
        let mut queue = VecDeque::from([start_at.to_string()]);
        while let Some(n) = queue.pop_front() {
            let Some(s) = states.get(&n) else { continue };
            if !seen.insert(n) {
                continue;
            }
            queue.extend(targets(s).into_iter().map(|(t, _)| t));
        }
        for name in order {
            if !seen.contains(name) {
                self.err(
                    "MISSING_TRANSITION_TARGET",
                    format!("State \"{name}\" is not reachable."),
                    format!("{loc}/States/{name}"),
                );
            }
        }
    }

    fn state(
        &mut self,
        name: &str,
        o: &Map<String, Value>,
        loc: &str,
        machine_ql: QueryLanguage,
    ) -> Option<State> {
        let Some(ty) = o.get("Type").and_then(Value::as_str) else {
            self.schema("These fields are required: [Type]", loc);
            return None;
        };
        let Some(fields) = allowed(ty) else {
            self.schema(format!("Instance value ({ty}) is not one of the enum values [Choice, Fail, Map, Parallel, Pass, Succeed, Task, Wait]"), format!("{loc}/Type"));
            return None;
        };
        let ql = match o.get("QueryLanguage").and_then(Value::as_str) {
            None => machine_ql,
            Some("JSONPath") if machine_ql == QueryLanguage::JSONata => {
                self.schema("'QueryLanguage' can not be 'JSONPath' if set to 'JSONata' for whole state machine", loc);
                machine_ql
            }
            Some("JSONPath") => QueryLanguage::JSONPath,
            Some("JSONata") => QueryLanguage::JSONata,
            Some(_) => {
                self.schema(
                    "Instance value is not one of the enum values [JSONPath, JSONata]",
                    format!("{loc}/QueryLanguage"),
                );
                machine_ql
            }
        };
        for k in o.keys() {
            let k = k.as_str();
            if matches!(k, "Type" | "Comment" | "QueryLanguage") {
                continue;
            }
            if !fields.contains(&k) {
                self.schema(format!("Field '{k}' is not supported"), loc);
            } else if ql == QueryLanguage::JSONata && JSONPATH_ONLY.contains(&k) {
                self.schema(format!("The QueryLanguage is set to 'JSONata', but field '{k}' is only supported for the 'JSONPath' QueryLanguage"), loc);
            } else if ql == QueryLanguage::JSONPath && JSONATA_ONLY.contains(&k) {
                self.schema(format!("The QueryLanguage is set to 'JSONPath', but field '{k}' is only supported for the 'JSONata' QueryLanguage"), loc);
            }
        }
        let next = o.get("Next").and_then(Value::as_str).map(str::to_owned);
        let end = o.get("End") == Some(&Value::Bool(true));
        if matches!(ty, "Pass" | "Task" | "Wait" | "Parallel" | "Map") {
            if next.is_some() && end {
                self.schema(
                    "There should only be one of the following fields: [Next, End]",
                    loc,
                );
            } else if next.is_none() && !end {
                self.schema("These fields are required: [Next or End]", loc);
            }
        }
        if let Some(v) = o.get("Next").filter(|v| !v.is_string()) {
            let _ = v;
            self.schema("Next must be a string", format!("{loc}/Next"));
        }
        let tpl = |cx: &mut Cx, key: &str| -> Option<Template> { cx.template(o, key, loc, ql) };
        let parameters = if ql == QueryLanguage::JSONata {
            tpl(self, "Arguments")
        } else {
            tpl(self, "Parameters")
        };
        let result_selector = tpl(self, "ResultSelector");
        let output = tpl(self, "Output");
        let assign = self.assign(o.get("Assign"), &format!("{loc}/Assign"), ql);
        let input_path = self.path_field(o, "InputPath", loc, true);
        let output_path = self.path_field(o, "OutputPath", loc, true);
        let result_path = self.path_field(o, "ResultPath", loc, false);
        let (retry, catch) = self.errors_handling(o, loc, ql);
        let kind = match ty {
            "Pass" => Kind::Pass {
                result: o.get("Result").cloned(),
            },
            "Task" => {
                let resource = match o.get("Resource") {
                    Some(Value::String(r)) => r.clone(),
                    _ => {
                        self.schema("These fields are required: [Resource]", loc);
                        String::new()
                    }
                };
                let timeout = self.number_pair(o, "TimeoutSeconds", loc, ql, 1.0);
                let heartbeat = self.number_pair(o, "HeartbeatSeconds", loc, ql, 1.0);
                let credentials = tpl(self, "Credentials");
                Kind::Task {
                    resource,
                    timeout,
                    heartbeat,
                    credentials,
                }
            }
            "Choice" => self.choice(o, loc, ql),
            "Wait" => {
                let n = ["Seconds", "Timestamp", "SecondsPath", "TimestampPath"]
                    .iter()
                    .filter(|k| o.contains_key(**k))
                    .count();
                if n != 1 {
                    self.schema("There should only be one of the following fields: [Seconds, Timestamp, SecondsPath, TimestampPath]", loc);
                }
                if o.contains_key("Timestamp") || o.contains_key("TimestampPath") {
                    if let Some(Value::String(ts)) = o.get("Timestamp")
                        && template::jsonata_expr(ts).is_none()
                        && choice::parse_ts(ts).is_none()
                    {
                        self.schema("Value is not a valid timestamp", format!("{loc}/Timestamp"));
                    }
                    Kind::Wait(WaitSpec::Timestamp(
                        self.value_or_path(o, "Timestamp", loc, ql)
                            .unwrap_or(Template::Lit(Value::Null)),
                    ))
                } else {
                    Kind::Wait(WaitSpec::Seconds(
                        self.number_pair(o, "Seconds", loc, ql, 0.0)
                            .unwrap_or(Template::Lit(Value::from(0))),
                    ))
                }
            }
            "Succeed" => Kind::Succeed,
            "Fail" => {
                for (a, b) in [("Error", "ErrorPath"), ("Cause", "CausePath")] {
                    if o.contains_key(a) && o.contains_key(b) {
                        self.schema(
                            format!("There should only be one of the following fields: [{a}, {b}]"),
                            loc,
                        );
                    }
                }
                Kind::Fail {
                    error: self.value_or_path(o, "Error", loc, ql),
                    cause: self.value_or_path(o, "Cause", loc, ql),
                }
            }
            "Parallel" => {
                let mut branches = Vec::new();
                match o.get("Branches").and_then(Value::as_array) {
                    Some(bs) if !bs.is_empty() => {
                        for (i, b) in bs.iter().enumerate() {
                            let bloc = format!("{loc}/Branches[{i}]");
                            match b.as_object() {
                                Some(bo) => {
                                    self.sub_machine_fields(
                                        bo,
                                        &bloc,
                                        &["StartAt", "States", "Comment"],
                                    );
                                    branches.push(self.machine(bo, &bloc, ql))
                                }
                                None => self.schema("A branch must be an object", bloc),
                            }
                        }
                    }
                    _ => self.schema("These fields are required: [Branches]", loc),
                }
                Kind::Parallel { branches }
            }
            "Map" => self.map(o, loc, ql),
            _ => unreachable!("allowed() knows every type"),
        };
        let text = Value::Object(o.clone()).to_string();
        let uses_ctx = ["$$", "$states.context", "$now", "$millis"]
            .iter()
            .any(|k| text.contains(k));
        Some(State {
            uses_ctx,
            name: name.to_string(),
            kind,
            ql,
            next,
            end,
            input_path,
            output_path,
            result_path,
            parameters,
            result_selector,
            output,
            assign,
            retry,
            catch,
        })
    }
}

/// Every transition a state can take, with where in the state it is written.
fn targets(s: &State) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(n) = &s.next {
        out.push((n.clone(), "/Next".to_string()));
    }
    if let Kind::Choice { choices, default } = &s.kind {
        for (i, c) in choices.iter().enumerate() {
            out.push((c.next.clone(), format!("/Choices[{i}]/Next")));
        }
        if let Some(d) = default {
            out.push((d.clone(), "/Default".to_string()));
        }
    }
    for (i, c) in s.catch.iter().enumerate() {
        out.push((c.next.clone(), format!("/Catch[{i}]/Next")));
    }
    out
}
