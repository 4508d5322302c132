//! Definition text → validated `Definition`, collecting every problem as a `Diagnostic` with
//! AWS's code, message and JSON-pointer location (messages as measured against
//! ValidateStateMachineDefinition, e.g. <https://github.com/floci-io/floci/pull/2786>).

use crate::choice;
use crate::diag::Diagnostic;
use crate::model::*;
use crate::path::Path;
use crate::template::{self, Template};
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet, VecDeque};

/// Parse and validate; `Err` holds at least one ERROR diagnostic.
pub fn parse(definition: &str) -> Result<Definition, Vec<Diagnostic>> {
    let (def, diags) = analyse(definition);
    match def {
        Some(d) if !diags.iter().any(|d| d.severity == "ERROR") => Ok(d),
        _ => Err(diags.into_iter().filter(|d| d.severity == "ERROR").collect()),
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
            return (None, vec![Diagnostic::error("INVALID_JSON_DESCRIPTION", format!("{e}"), "")]);
        }
    };
    let Some(top) = v.as_object() else {
        return (None, vec![Diagnostic::error("SCHEMA_VALIDATION_FAILED", "The definition must be a JSON object", "")]);
    };
    let mut cx = Cx { diags: Vec::new(), machines: Vec::new() };
    for k in top.keys() {
        if !matches!(k.as_str(), "Comment" | "StartAt" | "States" | "Version" | "TimeoutSeconds" | "QueryLanguage") {
            cx.err("SCHEMA_VALIDATION_FAILED", format!("Field '{k}' is not supported"), "");
        }
    }
    let ql = match top.get("QueryLanguage") {
        None => QueryLanguage::JSONPath,
        Some(Value::String(s)) if s == "JSONPath" => QueryLanguage::JSONPath,
        Some(Value::String(s)) if s == "JSONata" => QueryLanguage::JSONata,
        Some(_) => {
            cx.err("SCHEMA_VALIDATION_FAILED", "Instance value is not one of the enum values [JSONPath, JSONata]", "/QueryLanguage");
            QueryLanguage::JSONPath
        }
    };
    let timeout_seconds = match top.get("TimeoutSeconds") {
        None => None,
        Some(t) => match t.as_u64() {
            Some(n) if n > 0 && n <= 99_999_999 => Some(n),
            _ => {
                cx.err("SCHEMA_VALIDATION_FAILED", "Minimum value is 1", "/TimeoutSeconds");
                None
            }
        },
    };
    let comment = top.get("Comment").and_then(Value::as_str).map(str::to_owned);
    cx.machine(top, "", ql);
    let def = Definition { machines: cx.machines, query_language: ql, timeout_seconds, comment };
    (Some(def), cx.diags)
}

struct Cx {
    diags: Vec<Diagnostic>,
    machines: Vec<Machine>,
}

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
        "Pass" => &["Next", "End", "Result", "ResultPath", "Parameters", "InputPath", "OutputPath", "Output", "Assign"],
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
        "Choice" => &["Choices", "Default", "InputPath", "OutputPath", "Output", "Assign"],
        "Wait" => &["Next", "End", "Seconds", "Timestamp", "SecondsPath", "TimestampPath", "InputPath", "OutputPath", "Output", "Assign"],
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
        self.machines.push(Machine { start_at: String::new(), states: HashMap::new(), order: Vec::new() });
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
        self.machines[idx] = Machine { start_at, states, order };
        idx
    }

    /// Missing targets, then a terminal state, then reachability, in AWS's order.
    fn transitions(&mut self, start_at: &str, states: &HashMap<String, State>, order: &[String], loc: &str) {
        if start_at.is_empty() {
            return;
        }
        if !states.contains_key(start_at) {
            self.err("MISSING_TRANSITION_TARGET", format!("Missing 'Next' target: {start_at}"), format!("{loc}/StartAt"));
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
        let terminal = states.values().any(|s| s.end || matches!(s.kind, Kind::Succeed | Kind::Fail { .. }));
        if !terminal && !states.is_empty() {
            self.diags.push(Diagnostic::error("MISSING_END_STATE", "Workflow has no terminal state", ""));
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
                self.err("MISSING_TRANSITION_TARGET", format!("State \"{name}\" is not reachable."), format!("{loc}/States/{name}"));
            }
        }
    }

    fn state(&mut self, name: &str, o: &Map<String, Value>, loc: &str, machine_ql: QueryLanguage) -> Option<State> {
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
                self.schema("Instance value is not one of the enum values [JSONPath, JSONata]", format!("{loc}/QueryLanguage"));
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
                self.schema("There should only be one of the following fields: [Next, End]", loc);
            } else if next.is_none() && !end {
                self.schema("These fields are required: [Next or End]", loc);
            }
        }
        if let Some(v) = o.get("Next").filter(|v| !v.is_string()) {
            let _ = v;
            self.schema("Next must be a string", format!("{loc}/Next"));
        }
        let tpl = |cx: &mut Cx, key: &str| -> Option<Template> { cx.template(o, key, loc, ql) };
        let parameters = if ql == QueryLanguage::JSONata { tpl(self, "Arguments") } else { tpl(self, "Parameters") };
        let result_selector = tpl(self, "ResultSelector");
        let output = tpl(self, "Output");
        let assign = self.assign(o.get("Assign"), &format!("{loc}/Assign"), ql);
        let input_path = self.path_field(o, "InputPath", loc, true);
        let output_path = self.path_field(o, "OutputPath", loc, true);
        let result_path = self.path_field(o, "ResultPath", loc, false);
        let (retry, catch) = self.errors_handling(o, loc, ql);
        let kind = match ty {
            "Pass" => Kind::Pass { result: o.get("Result").cloned() },
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
                Kind::Task { resource, timeout, heartbeat, credentials }
            }
            "Choice" => self.choice(o, loc, ql),
            "Wait" => {
                let n = ["Seconds", "Timestamp", "SecondsPath", "TimestampPath"].iter().filter(|k| o.contains_key(**k)).count();
                if n != 1 {
                    self.schema("There should only be one of the following fields: [Seconds, Timestamp, SecondsPath, TimestampPath]", loc);
                }
                if o.contains_key("Timestamp") || o.contains_key("TimestampPath") {
                    if let Some(Value::String(ts)) = o.get("Timestamp") {
                        if template::jsonata_expr(ts).is_none() && choice::parse_ts(ts).is_none() {
                            self.schema("Value is not a valid timestamp", format!("{loc}/Timestamp"));
                        }
                    }
                    Kind::Wait(WaitSpec::Timestamp(self.value_or_path(o, "Timestamp", loc, ql).unwrap_or(Template::Lit(Value::Null))))
                } else {
                    Kind::Wait(WaitSpec::Seconds(self.number_pair(o, "Seconds", loc, ql, 0.0).unwrap_or(Template::Lit(Value::from(0)))))
                }
            }
            "Succeed" => Kind::Succeed,
            "Fail" => {
                for (a, b) in [("Error", "ErrorPath"), ("Cause", "CausePath")] {
                    if o.contains_key(a) && o.contains_key(b) {
                        self.schema(format!("There should only be one of the following fields: [{a}, {b}]"), loc);
                    }
                }
                Kind::Fail { error: self.value_or_path(o, "Error", loc, ql), cause: self.value_or_path(o, "Cause", loc, ql) }
            }
            "Parallel" => {
                let mut branches = Vec::new();
                match o.get("Branches").and_then(Value::as_array) {
                    Some(bs) if !bs.is_empty() => {
                        for (i, b) in bs.iter().enumerate() {
                            let bloc = format!("{loc}/Branches[{i}]");
                            match b.as_object() {
                                Some(bo) => {
                                    self.sub_machine_fields(bo, &bloc, &["StartAt", "States", "Comment"]);
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
        let uses_ctx = ["$$", "$states.context", "$now", "$millis"].iter().any(|k| text.contains(k));
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

    fn sub_machine_fields(&mut self, o: &Map<String, Value>, loc: &str, ok: &[&str]) {
        for k in o.keys() {
            if !ok.contains(&k.as_str()) {
                self.schema(format!("Field '{k}' is not supported"), loc);
            }
        }
    }

    /// Compile a JSONata template, reporting every expression that does not parse.
    fn jsonata(&mut self, v: &Value, loc: &str) -> Template {
        let t = template::compile_jsonata(v);
        self.check_jsonata(&t, loc);
        t
    }

    fn check_jsonata(&mut self, t: &Template, loc: &str) {
        match t {
            Template::Jsonata(e) => {
                if let Err(m) = crate::jsonata::check(e) {
                    self.err("INVALID_JSONATA_EXPRESSION", m, loc);
                }
            }
            Template::Obj(fields) => {
                for (k, x) in fields {
                    self.check_jsonata(x, &format!("{loc}/{k}"));
                }
            }
            Template::Arr(items) => {
                for (i, x) in items.iter().enumerate() {
                    self.check_jsonata(x, &format!("{loc}[{i}]"));
                }
            }
            _ => {}
        }
    }

    fn template(&mut self, o: &Map<String, Value>, key: &str, loc: &str, ql: QueryLanguage) -> Option<Template> {
        let v = o.get(key)?;
        let here = format!("{loc}/{key}");
        if ql == QueryLanguage::JSONata {
            return Some(self.jsonata(v, &here));
        }
        if matches!(key, "Parameters" | "ResultSelector" | "ItemSelector") && !v.is_object() {
            self.schema(format!("Field '{key}' must be a JSON object"), here.clone());
        }
        match template::compile_jsonpath(v, &here) {
            Ok(t) => Some(t),
            Err((m, l)) => {
                self.schema(m, l);
                None
            }
        }
    }

    fn assign(&mut self, v: Option<&Value>, loc: &str, ql: QueryLanguage) -> Option<Template> {
        let v = v?;
        let Some(m) = v.as_object() else {
            self.schema("Field 'Assign' must be a JSON object", loc);
            return None;
        };
        for k in m.keys() {
            let name = k.strip_suffix(".$").unwrap_or(k);
            let ok = name.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_alphanumeric() || c == '_')
                && name.len() <= 80;
            if !ok {
                self.schema(format!("The variable name '{name}' is not valid"), format!("{loc}/{k}"));
            }
        }
        if ql == QueryLanguage::JSONata {
            return Some(self.jsonata(v, loc));
        }
        match template::compile_jsonpath(v, loc) {
            Ok(t) => Some(t),
            Err((m, l)) => {
                self.schema(m, l);
                None
            }
        }
    }

    fn path_field(&mut self, o: &Map<String, Value>, key: &str, loc: &str, allow_context: bool) -> PathField {
        match o.get(key) {
            None => PathField::Default,
            Some(Value::Null) => PathField::Null,
            Some(Value::String(s)) => match Path::parse(s) {
                Ok(p) if key == "ResultPath" && (!p.is_definite() || p.root != crate::path::Root::Input) => {
                    self.schema("Value is not a Reference Path", format!("{loc}/{key}"));
                    PathField::Default
                }
                Ok(p) if !allow_context && p.root == crate::path::Root::Context => {
                    self.schema("Value is not a Reference Path", format!("{loc}/{key}"));
                    PathField::Default
                }
                Ok(p) => PathField::Path(p),
                Err(e) => {
                    self.err("SCHEMA_VALIDATION_FAILED", format!("The value for the field '{key}' must be a valid JSONPath: {e}"), format!("{loc}/{key}"));
                    PathField::Default
                }
            },
            Some(_) => {
                self.schema(format!("Field '{key}' must be a string or null"), format!("{loc}/{key}"));
                PathField::Default
            }
        }
    }

    /// `Key` (a number, or a JSONata expression) or `KeyPath` (a reference path).
    fn number_pair(&mut self, o: &Map<String, Value>, key: &str, loc: &str, ql: QueryLanguage, min: f64) -> Option<Template> {
        let pkey = format!("{key}Path");
        if o.contains_key(key) && o.contains_key(&pkey) {
            self.schema(format!("There should only be one of the following fields: [{key}, {pkey}]"), loc);
        }
        if let Some(v) = o.get(key) {
            match v {
                Value::Number(n) if n.as_f64().is_some_and(|x| x >= min && x.fract() == 0.0) => return Some(Template::Lit(v.clone())),
                Value::String(s) if ql == QueryLanguage::JSONata && template::jsonata_expr(s).is_some() => {
                    return Some(self.jsonata(v, &format!("{loc}/{key}")));
                }
                _ => {
                    self.schema(format!("Minimum value is {}", min as i64), format!("{loc}/{key}"));
                    return None;
                }
            }
        }
        self.reference_path(o, &pkey, loc)
    }

    /// Error/Cause (literal or JSONata) or ErrorPath/CausePath (path or intrinsic).
    fn value_or_path(&mut self, o: &Map<String, Value>, key: &str, loc: &str, ql: QueryLanguage) -> Option<Template> {
        if let Some(v) = o.get(key) {
            return Some(if ql == QueryLanguage::JSONata { self.jsonata(v, &format!("{loc}/{key}")) } else { Template::Lit(v.clone()) });
        }
        let pkey = format!("{key}Path");
        let v = o.get(&pkey)?;
        let here = format!("{loc}/{pkey}");
        let Some(text) = v.as_str() else {
            self.schema("Value is not a Reference Path", here);
            return None;
        };
        match template::compile_expr(text, &pkey, &here) {
            Ok(t) => Some(t),
            Err((m, l)) => {
                self.schema(m, l);
                None
            }
        }
    }

    fn reference_path(&mut self, o: &Map<String, Value>, key: &str, loc: &str) -> Option<Template> {
        let v = o.get(key)?;
        match v.as_str().map(Path::parse) {
            Some(Ok(p)) if p.is_definite() => Some(Template::Path(p)),
            _ => {
                self.schema("Value is not a Reference Path", format!("{loc}/{key}"));
                None
            }
        }
    }

    fn errors_handling(&mut self, o: &Map<String, Value>, loc: &str, ql: QueryLanguage) -> (Vec<Retrier>, Vec<Catcher>) {
        let mut retry = Vec::new();
        if let Some(v) = o.get("Retry") {
            let items = v.as_array().cloned().unwrap_or_default();
            for (i, r) in items.iter().enumerate() {
                let rloc = format!("{loc}/Retry[{i}]");
                let Some(ro) = r.as_object() else {
                    self.schema("A Retrier must be an object", rloc);
                    continue;
                };
                for k in ro.keys() {
                    if !matches!(
                        k.as_str(),
                        "ErrorEquals" | "IntervalSeconds" | "MaxAttempts" | "BackoffRate" | "MaxDelaySeconds" | "JitterStrategy" | "Comment"
                    ) {
                        self.schema(format!("Field '{k}' is not supported"), rloc.clone());
                    }
                }
                let errors = self.error_equals(ro, &rloc, i + 1 == items.len());
                let num = |k: &str| ro.get(k).and_then(Value::as_f64);
                let interval = num("IntervalSeconds").unwrap_or(1.0);
                if interval < 1.0 || interval.fract() != 0.0 {
                    self.schema("Minimum value is 1", format!("{rloc}/IntervalSeconds"));
                }
                let attempts = num("MaxAttempts").unwrap_or(3.0);
                if attempts < 0.0 || attempts.fract() != 0.0 {
                    self.schema("Minimum value is 0", format!("{rloc}/MaxAttempts"));
                }
                let rate = num("BackoffRate").unwrap_or(2.0);
                if rate < 1.0 {
                    self.schema("Minimum value is 1.0", format!("{rloc}/BackoffRate"));
                }
                let max_delay = num("MaxDelaySeconds");
                if max_delay.is_some_and(|d| d < 1.0) {
                    self.schema("Minimum value is 1", format!("{rloc}/MaxDelaySeconds"));
                }
                let jitter = match ro.get("JitterStrategy").and_then(Value::as_str) {
                    None | Some("NONE") => false,
                    Some("FULL") => true,
                    Some(_) => {
                        self.schema("Instance value is not one of the enum values [FULL, NONE]", format!("{rloc}/JitterStrategy"));
                        false
                    }
                };
                retry.push(Retrier {
                    errors,
                    interval_seconds: interval,
                    max_attempts: attempts.max(0.0) as u32,
                    backoff_rate: rate,
                    max_delay_seconds: max_delay,
                    jitter_full: jitter,
                });
            }
        }
        let mut catch = Vec::new();
        if let Some(v) = o.get("Catch") {
            let items = v.as_array().cloned().unwrap_or_default();
            for (i, c) in items.iter().enumerate() {
                let cloc = format!("{loc}/Catch[{i}]");
                let Some(co) = c.as_object() else {
                    self.schema("A Catcher must be an object", cloc);
                    continue;
                };
                for k in co.keys() {
                    let ok = match k.as_str() {
                        "ErrorEquals" | "Next" | "Comment" | "Assign" => true,
                        "ResultPath" => ql == QueryLanguage::JSONPath,
                        "Output" => ql == QueryLanguage::JSONata,
                        _ => false,
                    };
                    if !ok {
                        self.schema(format!("Field '{k}' is not supported"), cloc.clone());
                    }
                }
                let errors = self.error_equals(co, &cloc, i + 1 == items.len());
                let next = match co.get("Next").and_then(Value::as_str) {
                    Some(n) => n.to_string(),
                    None => {
                        self.schema("These fields are required: [Next]", cloc.clone());
                        String::new()
                    }
                };
                let result_path = self.path_field(co, "ResultPath", &cloc, false);
                let output = if ql == QueryLanguage::JSONata { co.get("Output").map(|v| self.jsonata(v, &format!("{cloc}/Output"))) } else { None };
                let assign = self.assign(co.get("Assign"), &format!("{cloc}/Assign"), ql);
                catch.push(Catcher { errors, next, result_path, output, assign });
            }
        }
        (retry, catch)
    }

    fn error_equals(&mut self, o: &Map<String, Value>, loc: &str, last: bool) -> Vec<String> {
        let errors: Vec<String> = match o.get("ErrorEquals").and_then(Value::as_array) {
            Some(a) if !a.is_empty() => a.iter().filter_map(|e| e.as_str().map(str::to_owned)).collect(),
            _ => {
                self.schema("These fields are required: [ErrorEquals]", loc);
                return Vec::new();
            }
        };
        if errors.iter().any(|e| e == "States.ALL") && (errors.len() > 1 || !last) {
            self.schema(
                "Error name 'States.ALL' must appear alone in ErrorEquals and in the last Retrier or Catcher",
                format!("{loc}/ErrorEquals"),
            );
        }
        errors
    }

    fn choice(&mut self, o: &Map<String, Value>, loc: &str, ql: QueryLanguage) -> Kind {
        let mut choices = Vec::new();
        match o.get("Choices").and_then(Value::as_array) {
            Some(cs) if !cs.is_empty() => {
                for (i, c) in cs.iter().enumerate() {
                    let cloc = format!("{loc}/Choices[{i}]");
                    let Some(co) = c.as_object() else {
                        self.schema("A Choice Rule must be an object", cloc);
                        continue;
                    };
                    let Some(next) = co.get("Next").and_then(Value::as_str) else {
                        self.schema("These fields are required: [Next]", cloc);
                        continue;
                    };
                    if ql == QueryLanguage::JSONata {
                        for k in co.keys() {
                            if !matches!(k.as_str(), "Condition" | "Next" | "Comment" | "Assign" | "Output") {
                                self.schema(format!("Field '{k}' is not supported"), cloc.clone());
                            }
                        }
                        if !co.contains_key("Condition") {
                            self.schema("These fields are required: [Condition]", cloc.clone());
                        }
                    } else if co.contains_key("Condition") || co.contains_key("Output") {
                        self.schema("The QueryLanguage is set to 'JSONPath', but field 'Condition' is only supported for the 'JSONata' QueryLanguage", cloc.clone());
                    }
                    let rule = if ql == QueryLanguage::JSONata {
                        choice::Rule::Condition(co.get("Condition").map(|v| self.jsonata(v, &format!("{cloc}/Condition"))).unwrap_or(Template::Lit(Value::Bool(false))))
                    } else {
                        match choice::parse_rule(co, &cloc) {
                            Ok(r) => r,
                            Err((m, l)) => {
                                self.schema(m, l);
                                continue;
                            }
                        }
                    };
                    let output = if ql == QueryLanguage::JSONata { co.get("Output").map(|v| self.jsonata(v, &format!("{cloc}/Output"))) } else { None };
                    let assign = self.assign(co.get("Assign"), &format!("{cloc}/Assign"), ql);
                    choices.push(ChoiceBranch { rule, next: next.to_string(), output, assign });
                }
            }
            _ => self.schema("These fields are required: [Choices]", loc),
        }
        let default = o.get("Default").and_then(Value::as_str).map(str::to_owned);
        Kind::Choice { choices, default }
    }

    fn map(&mut self, o: &Map<String, Value>, loc: &str, ql: QueryLanguage) -> Kind {
        let (proc_key, proc) = match (o.get("ItemProcessor"), o.get("Iterator")) {
            (Some(p), None) => ("ItemProcessor", p),
            (None, Some(p)) => ("Iterator", p),
            (Some(_), Some(_)) => {
                self.schema("There should only be one of the following fields: [ItemProcessor, Iterator]", loc);
                ("ItemProcessor", &o["ItemProcessor"])
            }
            (None, None) => {
                self.schema("These fields are required: [ItemProcessor]", loc);
                let idx = self.machines.len();
                self.machines.push(Machine { start_at: String::new(), states: HashMap::new(), order: Vec::new() });
                return Kind::Map(Box::new(self.map_spec(o, loc, ql, idx, false)));
            }
        };
        let ploc = format!("{loc}/{proc_key}");
        let Some(po) = proc.as_object() else {
            self.schema("Field 'ItemProcessor' must be an object", ploc);
            let idx = self.machines.len();
            self.machines.push(Machine { start_at: String::new(), states: HashMap::new(), order: Vec::new() });
            return Kind::Map(Box::new(self.map_spec(o, loc, ql, idx, false)));
        };
        self.sub_machine_fields(po, &ploc, &["StartAt", "States", "Comment", "ProcessorConfig"]);
        let distributed = po.get("ProcessorConfig").and_then(|c| c.get("Mode")).and_then(Value::as_str) == Some("DISTRIBUTED");
        let processor = self.machine(po, &ploc, ql);
        if !distributed {
            for k in ["ItemReader", "ResultWriter", "ItemBatcher", "ToleratedFailureCount", "ToleratedFailurePercentage", "Label"] {
                if o.contains_key(k) {
                    self.schema(format!("Field '{k}' is only supported in a Map state in DISTRIBUTED mode"), loc);
                }
            }
        }
        Kind::Map(Box::new(self.map_spec(o, loc, ql, processor, distributed)))
    }

    fn map_spec(&mut self, o: &Map<String, Value>, loc: &str, ql: QueryLanguage, processor: usize, distributed: bool) -> MapSpec {
        let items_path = self.path_field(o, "ItemsPath", loc, true);
        let items = o.get("Items").map(|v| self.jsonata(v, &format!("{loc}/Items")));
        if o.contains_key("ItemSelector") && o.contains_key("Parameters") {
            self.schema("There should only be one of the following fields: [ItemSelector, Parameters]", loc);
        }
        let item_selector = self.template(o, "ItemSelector", loc, ql).or_else(|| self.template(o, "Parameters", loc, ql));
        let max_concurrency = self.number_pair(o, "MaxConcurrency", loc, ql, 0.0);
        let tolerated_count = self.number_pair(o, "ToleratedFailureCount", loc, ql, 0.0);
        let tolerated_percentage = match o.get("ToleratedFailurePercentage") {
            Some(Value::Number(n)) if !(0.0..=100.0).contains(&n.as_f64().unwrap_or(-1.0)) => {
                self.schema("Maximum value is 100.0", format!("{loc}/ToleratedFailurePercentage"));
                None
            }
            Some(v @ Value::Number(_)) => Some(Template::Lit(v.clone())),
            Some(v) if ql == QueryLanguage::JSONata => Some(self.jsonata(v, &format!("{loc}/ToleratedFailurePercentage"))),
            Some(_) => {
                self.schema("Minimum value is 0.0", format!("{loc}/ToleratedFailurePercentage"));
                None
            }
            None => self.reference_path(o, "ToleratedFailurePercentagePath", loc),
        };
        let item_reader = self.io(o, "ItemReader", loc, ql);
        let result_writer = self.io(o, "ResultWriter", loc, ql);
        let batcher = o.get("ItemBatcher").and_then(Value::as_object).map(|b| {
            let bloc = format!("{loc}/ItemBatcher");
            Batcher {
                max_items: self.number_pair(b, "MaxItemsPerBatch", &bloc, ql, 0.0),
                max_bytes: self.number_pair(b, "MaxInputBytesPerBatch", &bloc, ql, 0.0),
                batch_input: self.template(b, "BatchInput", &bloc, ql),
            }
        });
        let label = o.get("Label").and_then(Value::as_str).map(str::to_owned);
        if let Some(l) = &label {
            if l.len() > 40 || l.chars().any(|c| c.is_whitespace() || "<>{}[]?*\"#%\\^|~`$&,;:/".contains(c)) {
                self.schema("Value is not a valid Label", format!("{loc}/Label"));
            }
        }
        MapSpec {
            processor,
            items_path,
            items,
            item_selector,
            max_concurrency,
            distributed,
            item_reader,
            batcher,
            result_writer,
            tolerated_count,
            tolerated_percentage,
            label,
        }
    }

    fn io(&mut self, o: &Map<String, Value>, key: &str, loc: &str, ql: QueryLanguage) -> Option<Io> {
        let io = o.get(key)?;
        let here = format!("{loc}/{key}");
        let Some(io) = io.as_object() else {
            self.schema(format!("Field '{key}' must be an object"), here);
            return None;
        };
        let resource = match io.get("Resource").and_then(Value::as_str) {
            Some(r) => r.to_string(),
            None => {
                self.schema("These fields are required: [Resource]", here.clone());
                String::new()
            }
        };
        let config = io.get(if key == "ItemReader" { "ReaderConfig" } else { "WriterConfig" }).cloned().unwrap_or(Value::Null);
        let parameters = if ql == QueryLanguage::JSONata { self.template(io, "Arguments", &here, ql) } else { self.template(io, "Parameters", &here, ql) };
        Some(Io { resource, config, parameters })
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
