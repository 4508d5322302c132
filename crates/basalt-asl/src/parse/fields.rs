//! Parsing the fields of a state: templates, paths, numbers and their `Path` twins, Retry
//! and Catch, Choice rules, and the Map fields of both modes.

use super::Cx;
use crate::choice;
use crate::model::*;
use crate::path::Path;
use crate::template::{self, Template};
use serde_json::{Map, Value};
use std::collections::HashMap;

impl Cx {
    pub(super) fn sub_machine_fields(&mut self, o: &Map<String, Value>, loc: &str, ok: &[&str]) {
        for k in o.keys() {
            if !ok.contains(&k.as_str()) {
                self.schema(format!("Field '{k}' is not supported"), loc);
            }
        }
    }

    /// Compile a JSONata template, reporting every expression that does not parse.
    pub(super) fn jsonata(&mut self, v: &Value, loc: &str) -> Template {
        let t = template::compile_jsonata(v);
        self.check_jsonata(&t, loc);
        t
    }

    pub(super) fn check_jsonata(&mut self, t: &Template, loc: &str) {
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

    pub(super) fn template(
        &mut self,
        o: &Map<String, Value>,
        key: &str,
        loc: &str,
        ql: QueryLanguage,
    ) -> Option<Template> {
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

    pub(super) fn assign(
        &mut self,
        v: Option<&Value>,
        loc: &str,
        ql: QueryLanguage,
    ) -> Option<Template> {
        let v = v?;
        let Some(m) = v.as_object() else {
            self.schema("Field 'Assign' must be a JSON object", loc);
            return None;
        };
        for k in m.keys() {
            let name = k.strip_suffix(".$").unwrap_or(k);
            let ok = name
                .chars()
                .next()
                .is_some_and(|c| c.is_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_alphanumeric() || c == '_')
                && name.len() <= 80;
            if !ok {
                self.schema(
                    format!("The variable name '{name}' is not valid"),
                    format!("{loc}/{k}"),
                );
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

    pub(super) fn path_field(
        &mut self,
        o: &Map<String, Value>,
        key: &str,
        loc: &str,
        allow_context: bool,
    ) -> PathField {
        match o.get(key) {
            None => PathField::Default,
            Some(Value::Null) => PathField::Null,
            Some(Value::String(s)) => match Path::parse(s) {
                Ok(p)
                    if key == "ResultPath"
                        && (!p.is_definite() || p.root != crate::path::Root::Input) =>
                {
                    self.schema("Value is not a Reference Path", format!("{loc}/{key}"));
                    PathField::Default
                }
                Ok(p) if !allow_context && p.root == crate::path::Root::Context => {
                    self.schema("Value is not a Reference Path", format!("{loc}/{key}"));
                    PathField::Default
                }
                Ok(p) => PathField::Path(p),
                Err(e) => {
                    self.err(
                        "SCHEMA_VALIDATION_FAILED",
                        format!("The value for the field '{key}' must be a valid JSONPath: {e}"),
                        format!("{loc}/{key}"),
                    );
                    PathField::Default
                }
            },
            Some(_) => {
                self.schema(
                    format!("Field '{key}' must be a string or null"),
                    format!("{loc}/{key}"),
                );
                PathField::Default
            }
        }
    }

    /// `Key` (a number, or a JSONata expression) or `KeyPath` (a reference path).
    pub(super) fn number_pair(
        &mut self,
        o: &Map<String, Value>,
        key: &str,
        loc: &str,
        ql: QueryLanguage,
        min: f64,
    ) -> Option<Template> {
        let pkey = format!("{key}Path");
        if o.contains_key(key) && o.contains_key(&pkey) {
            self.schema(
                format!("There should only be one of the following fields: [{key}, {pkey}]"),
                loc,
            );
        }
        if let Some(v) = o.get(key) {
            match v {
                Value::Number(n) if n.as_f64().is_some_and(|x| x >= min && x.fract() == 0.0) => {
                    return Some(Template::Lit(v.clone()));
                }
                Value::String(s)
                    if ql == QueryLanguage::JSONata && template::jsonata_expr(s).is_some() =>
                {
                    return Some(self.jsonata(v, &format!("{loc}/{key}")));
                }
                _ => {
                    self.schema(
                        format!("Minimum value is {}", min as i64),
                        format!("{loc}/{key}"),
                    );
                    return None;
                }
            }
        }
        self.reference_path(o, &pkey, loc)
    }

    /// Error/Cause (literal or JSONata) or ErrorPath/CausePath (path or intrinsic).
    pub(super) fn value_or_path(
        &mut self,
        o: &Map<String, Value>,
        key: &str,
        loc: &str,
        ql: QueryLanguage,
    ) -> Option<Template> {
        if let Some(v) = o.get(key) {
            return Some(if ql == QueryLanguage::JSONata {
                self.jsonata(v, &format!("{loc}/{key}"))
            } else {
                Template::Lit(v.clone())
            });
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

    pub(super) fn reference_path(
        &mut self,
        o: &Map<String, Value>,
        key: &str,
        loc: &str,
    ) -> Option<Template> {
        let v = o.get(key)?;
        match v.as_str().map(Path::parse) {
            Some(Ok(p)) if p.is_definite() => Some(Template::Path(p)),
            _ => {
                self.schema("Value is not a Reference Path", format!("{loc}/{key}"));
                None
            }
        }
    }

    pub(super) fn errors_handling(
        &mut self,
        o: &Map<String, Value>,
        loc: &str,
        ql: QueryLanguage,
    ) -> (Vec<Retrier>, Vec<Catcher>) {
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
                        "ErrorEquals"
                            | "IntervalSeconds"
                            | "MaxAttempts"
                            | "BackoffRate"
                            | "MaxDelaySeconds"
                            | "JitterStrategy"
                            | "Comment"
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
                        self.schema(
                            "Instance value is not one of the enum values [FULL, NONE]",
                            format!("{rloc}/JitterStrategy"),
                        );
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
                let output = if ql == QueryLanguage::JSONata {
                    co.get("Output")
                        .map(|v| self.jsonata(v, &format!("{cloc}/Output")))
                } else {
                    None
                };
                let assign = self.assign(co.get("Assign"), &format!("{cloc}/Assign"), ql);
                catch.push(Catcher {
                    errors,
                    next,
                    result_path,
                    output,
                    assign,
                });
            }
        }
        (retry, catch)
    }

    pub(super) fn error_equals(
        &mut self,
        o: &Map<String, Value>,
        loc: &str,
        last: bool,
    ) -> Vec<String> {
        let errors: Vec<String> = match o.get("ErrorEquals").and_then(Value::as_array) {
            Some(a) if !a.is_empty() => a
                .iter()
                .filter_map(|e| e.as_str().map(str::to_owned))
                .collect(),
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

    pub(super) fn choice(&mut self, o: &Map<String, Value>, loc: &str, ql: QueryLanguage) -> Kind {
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
                            if !matches!(
                                k.as_str(),
                                "Condition" | "Next" | "Comment" | "Assign" | "Output"
                            ) {
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
                        choice::Rule::Condition(
                            co.get("Condition")
                                .map(|v| self.jsonata(v, &format!("{cloc}/Condition")))
                                .unwrap_or(Template::Lit(Value::Bool(false))),
                        )
                    } else {
                        match choice::parse_rule(co, &cloc) {
                            Ok(r) => r,
                            Err((m, l)) => {
                                self.schema(m, l);
                                continue;
                            }
                        }
                    };
                    let output = if ql == QueryLanguage::JSONata {
                        co.get("Output")
                            .map(|v| self.jsonata(v, &format!("{cloc}/Output")))
                    } else {
                        None
                    };
                    let assign = self.assign(co.get("Assign"), &format!("{cloc}/Assign"), ql);
                    choices.push(ChoiceBranch {
                        rule,
                        next: next.to_string(),
                        output,
                        assign,
                    });
                }
            }
            _ => self.schema("These fields are required: [Choices]", loc),
        }
        let default = o.get("Default").and_then(Value::as_str).map(str::to_owned);
        Kind::Choice { choices, default }
    }

    pub(super) fn map(&mut self, o: &Map<String, Value>, loc: &str, ql: QueryLanguage) -> Kind {
        let (proc_key, proc) = match (o.get("ItemProcessor"), o.get("Iterator")) {
            (Some(p), None) => ("ItemProcessor", p),
            (None, Some(p)) => ("Iterator", p),
            (Some(_), Some(_)) => {
                self.schema(
                    "There should only be one of the following fields: [ItemProcessor, Iterator]",
                    loc,
                );
                ("ItemProcessor", &o["ItemProcessor"])
            }
            (None, None) => {
                self.schema("These fields are required: [ItemProcessor]", loc);
                let idx = self.machines.len();
                self.machines.push(Machine {
                    start_at: String::new(),
                    states: HashMap::new(),
                    order: Vec::new(),
                });
                return Kind::Map(Box::new(self.map_spec(o, loc, ql, idx, false)));
            }
        };
        let ploc = format!("{loc}/{proc_key}");
        let Some(po) = proc.as_object() else {
            self.schema("Field 'ItemProcessor' must be an object", ploc);
            let idx = self.machines.len();
            self.machines.push(Machine {
                start_at: String::new(),
                states: HashMap::new(),
                order: Vec::new(),
            });
            return Kind::Map(Box::new(self.map_spec(o, loc, ql, idx, false)));
        };
        self.sub_machine_fields(
            po,
            &ploc,
            &["StartAt", "States", "Comment", "ProcessorConfig"],
        );
        let distributed = po
            .get("ProcessorConfig")
            .and_then(|c| c.get("Mode"))
            .and_then(Value::as_str)
            == Some("DISTRIBUTED");
        let processor = self.machine(po, &ploc, ql);
        if !distributed {
            for k in [
                "ItemReader",
                "ResultWriter",
                "ItemBatcher",
                "ToleratedFailureCount",
                "ToleratedFailurePercentage",
                "Label",
            ] {
                if o.contains_key(k) {
                    self.schema(
                        format!("Field '{k}' is only supported in a Map state in DISTRIBUTED mode"),
                        loc,
                    );
                }
            }
        }
        Kind::Map(Box::new(self.map_spec(o, loc, ql, processor, distributed)))
    }

    pub(super) fn map_spec(
        &mut self,
        o: &Map<String, Value>,
        loc: &str,
        ql: QueryLanguage,
        processor: usize,
        distributed: bool,
    ) -> MapSpec {
        let items_path = self.path_field(o, "ItemsPath", loc, true);
        let items = o
            .get("Items")
            .map(|v| self.jsonata(v, &format!("{loc}/Items")));
        if o.contains_key("ItemSelector") && o.contains_key("Parameters") {
            self.schema(
                "There should only be one of the following fields: [ItemSelector, Parameters]",
                loc,
            );
        }
        let item_selector = self
            .template(o, "ItemSelector", loc, ql)
            .or_else(|| self.template(o, "Parameters", loc, ql));
        let max_concurrency = self.number_pair(o, "MaxConcurrency", loc, ql, 0.0);
        let tolerated_count = self.number_pair(o, "ToleratedFailureCount", loc, ql, 0.0);
        let tolerated_percentage = match o.get("ToleratedFailurePercentage") {
            Some(Value::Number(n)) if !(0.0..=100.0).contains(&n.as_f64().unwrap_or(-1.0)) => {
                self.schema(
                    "Maximum value is 100.0",
                    format!("{loc}/ToleratedFailurePercentage"),
                );
                None
            }
            Some(v @ Value::Number(_)) => Some(Template::Lit(v.clone())),
            Some(v) if ql == QueryLanguage::JSONata => {
                Some(self.jsonata(v, &format!("{loc}/ToleratedFailurePercentage")))
            }
            Some(_) => {
                self.schema(
                    "Minimum value is 0.0",
                    format!("{loc}/ToleratedFailurePercentage"),
                );
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
        if let Some(l) = &label
            && (l.len() > 40
                || l.chars()
                    .any(|c| c.is_whitespace() || "<>{}[]?*\"#%\\^|~`$&,;:/".contains(c)))
        {
            self.schema("Value is not a valid Label", format!("{loc}/Label"));
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

    pub(super) fn io(
        &mut self,
        o: &Map<String, Value>,
        key: &str,
        loc: &str,
        ql: QueryLanguage,
    ) -> Option<Io> {
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
        let config = io
            .get(if key == "ItemReader" {
                "ReaderConfig"
            } else {
                "WriterConfig"
            })
            .cloned()
            .unwrap_or(Value::Null);
        let parameters = if ql == QueryLanguage::JSONata {
            self.template(io, "Arguments", &here, ql)
        } else {
            self.template(io, "Parameters", &here, ql)
        };
        Some(Io {
            resource,
            config,
            parameters,
        })
    }
}
