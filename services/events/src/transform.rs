//! What a target receives: the event, a constant `Input`, the part of the event an
//! `InputPath` selects, or an `InputTransformer`'s template filled from the event.
//!
//! Template quoting follows AWS's rules: in a JSON template (one starting with `{`, `[` or
//! `"`), a placeholder inside a JSON string takes a string value's characters (escaped as
//! JSON string content) and any other value's JSON text, while a placeholder outside
//! strings takes the value's JSON text (so strings arrive quoted); in a plain-text template
//! every value is inserted as its text, strings unquoted. A variable whose path is absent
//! from the event inserts `null` outside strings and nothing inside them.

use serde_json::Value;

/// The JSONPath subset EventBridge evaluates: `$`, then `.name` and `[index]` steps.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath(Vec<Step>);

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

impl JsonPath {
    pub fn parse(path: &str) -> Option<JsonPath> {
        let rest = path.trim().strip_prefix('$')?;
        let mut steps = Vec::new();
        let mut chars = rest.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '.' => {
                    let start = i + 1;
                    let mut end = start;
                    while let Some(&(j, c)) = chars.peek() {
                        if c == '.' || c == '[' {
                            break;
                        }
                        end = j + c.len_utf8();
                        chars.next();
                    }
                    let key = &rest[start..end.max(start)];
                    if key.is_empty() || key == "*" {
                        return None;
                    }
                    steps.push(Step::Key(key.to_owned()));
                }
                '[' => {
                    let close = rest[i..].find(']')? + i;
                    let inner = rest[i + 1..close].trim();
                    let step = if let Some(q) = inner
                        .strip_prefix('\'')
                        .and_then(|s| s.strip_suffix('\''))
                        .or_else(|| inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')))
                    {
                        Step::Key(q.to_owned())
                    } else {
                        Step::Index(inner.parse().ok()?)
                    };
                    steps.push(step);
                    while chars.peek().is_some_and(|&(j, _)| j <= close) {
                        chars.next();
                    }
                }
                _ => return None,
            }
        }
        Some(JsonPath(steps))
    }

    pub fn get<'a>(&self, doc: &'a Value) -> Option<&'a Value> {
        let mut at = doc;
        for step in &self.0 {
            at = match step {
                Step::Key(k) => at.get(k)?,
                Step::Index(i) => at.get(*i)?,
            };
        }
        Some(at)
    }
}

/// A parsed `InputTransformer`.
#[derive(Debug, Clone)]
pub struct Transformer {
    paths: Vec<(String, JsonPath)>,
    template: String,
}

/// Facts about a delivery that the reserved variables name.
pub struct Context<'a> {
    pub rule_arn: &'a str,
    pub rule_name: &'a str,
    pub ingestion_time: &'a str,
}

impl Transformer {
    pub fn parse(spec: &Value) -> Result<Transformer, String> {
        let template = spec
            .get("InputTemplate")
            .and_then(Value::as_str)
            .ok_or("InputTemplate is required.")?;
        if template.is_empty() || template.len() > 8192 {
            return Err("InputTemplate must be between 1 and 8192 characters.".into());
        }
        let mut paths = Vec::new();
        if let Some(map) = spec.get("InputPathsMap").and_then(Value::as_object) {
            if map.len() > 100 {
                return Err("InputPathsMap has more than 100 entries.".into());
            }
            for (name, path) in map {
                let ok_name = !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'));
                if !ok_name || name.to_ascii_lowercase().starts_with("aws.") {
                    return Err(format!("InputPathsMap key {name} is not valid."));
                }
                let p = path.as_str().and_then(JsonPath::parse).ok_or_else(|| {
                    format!("InputPathsMap value for key {name} is not a valid JSONPath.")
                })?;
                paths.push((name.clone(), p));
            }
        }
        Ok(Transformer {
            paths,
            template: template.to_owned(),
        })
    }

    fn lookup(&self, name: &str, event: &Value, cx: &Context<'_>) -> Option<Value> {
        match name {
            "aws.events.rule-arn" => return Some(cx.rule_arn.into()),
            "aws.events.rule-name" => return Some(cx.rule_name.into()),
            "aws.events.event.ingestion-time" => return Some(cx.ingestion_time.into()),
            "aws.events.event.json" => return Some(event.clone()),
            "aws.events.event" => {
                let mut e = event.clone();
                if let Some(o) = e.as_object_mut() {
                    o.remove("detail");
                }
                return Some(e);
            }
            _ => {}
        }
        let (_, path) = self.paths.iter().find(|(n, _)| n == name)?;
        path.get(event).cloned()
    }

    pub fn apply(&self, event: &Value, cx: &Context<'_>) -> String {
        let t = self.template.trim_start();
        let json_mode = t.starts_with('{') || t.starts_with('[') || t.starts_with('"');
        let mut out = String::with_capacity(self.template.len());
        let mut in_string = false;
        let mut escaped = false;
        let mut rest = self.template.as_str();
        while let Some(c) = rest.chars().next() {
            if c == '<'
                && !escaped
                && let Some(end) = rest.find('>')
            {
                let name = &rest[1..end];
                let known =
                    name.starts_with("aws.events.") || self.paths.iter().any(|(n, _)| n == name);
                if known && !name.is_empty() && !name.contains('<') {
                    let value = self.lookup(name, event, cx);
                    insert(&mut out, value.as_ref(), json_mode, in_string);
                    rest = &rest[end + 1..];
                    continue;
                }
            }
            if json_mode {
                if escaped {
                    escaped = false;
                } else if c == '\\' && in_string {
                    escaped = true;
                } else if c == '"' {
                    in_string = !in_string;
                }
            }
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
        out
    }
}

fn insert(out: &mut String, value: Option<&Value>, json_mode: bool, in_string: bool) {
    match (value, json_mode, in_string) {
        (None, true, false) => out.push_str("null"),
        (None, _, _) => {}
        (Some(Value::String(s)), true, true) => {
            let quoted = Value::String(s.clone()).to_string();
            out.push_str(&quoted[1..quoted.len() - 1]);
        }
        (Some(Value::String(s)), false, _) => out.push_str(s),
        (Some(v), _, _) => out.push_str(&v.to_string()),
    }
}

/// The text a target receives for `event`.
pub fn render(target: &Value, event: &Value, cx: &Context<'_>) -> String {
    if let Some(input) = target.get("Input").and_then(Value::as_str) {
        return input.to_owned();
    }
    if let Some(path) = target
        .get("InputPath")
        .and_then(Value::as_str)
        .and_then(JsonPath::parse)
    {
        return path
            .get(event)
            .map_or_else(|| "null".into(), Value::to_string);
    }
    if let Some(t) = target.get("InputTransformer")
        && let Ok(t) = Transformer::parse(t)
    {
        return t.apply(event, cx);
    }
    event.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ec2() -> Value {
        // The example event of the EventBridge user guide's input transformation page.
        json!({
            "version": "0", "id": "7bf73129-1428-4cd3-a780-95db273d1602",
            "detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2",
            "account": "123456789012", "time": "2015-11-11T21:29:54Z", "region": "us-east-1",
            "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111"],
            "detail": {"instance-id": "i-0123456789", "state": "RUNNING"}
        })
    }

    fn cx() -> Context<'static> {
        Context {
            rule_arn: "arn:aws:events:us-east-1:123456789012:rule/r",
            rule_name: "r",
            ingestion_time: "2015-11-11T21:29:55Z",
        }
    }

    fn apply(template: &str) -> String {
        let t = Transformer::parse(&json!({
            "InputPathsMap": {"instance": "$.detail.instance-id", "state": "$.detail.state",
                              "resource": "$.resources[0]", "detail": "$.detail", "missing": "$.detail.nope"},
            "InputTemplate": template,
        }))
        .unwrap();
        t.apply(&ec2(), &cx())
    }

    #[test]
    fn templates_follow_aws_quoting() {
        // Plain text: values as text.
        assert_eq!(
            apply("<instance> is in state <state>"),
            "i-0123456789 is in state RUNNING"
        );
        // A JSON string template: values inside the string, unquoted.
        assert_eq!(
            apply("\"<instance> is in state <state>\""),
            "\"i-0123456789 is in state RUNNING\""
        );
        assert_eq!(
            apply("\"<instance> is in state \\\"<state>\\\"\""),
            "\"i-0123456789 is in state \\\"RUNNING\\\"\""
        );
        // A JSON object: outside strings values are JSON (quoted), inside they are content.
        let out = apply(
            "{\"myInstance\": <instance>,\"myStatus\": \"<instance> is in state \\\"<state>\\\"\"}",
        );
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            v,
            json!({"myInstance": "i-0123456789", "myStatus": "i-0123456789 is in state \"RUNNING\""})
        );
        // Objects are inserted as JSON; absent paths as null.
        let v: Value = serde_json::from_str(&apply(
            "{\"d\": <detail>, \"m\": <missing>, \"r\": \"<resource>\"}",
        ))
        .unwrap();
        assert_eq!(
            v,
            json!({"d": {"instance-id": "i-0123456789", "state": "RUNNING"}, "m": null,
                   "r": "arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111"})
        );
        // Reserved variables; unknown placeholders stay as written.
        let v: Value = serde_json::from_str(&apply(
            "{\"rule\": <aws.events.rule-name>, \"arn\": \"<aws.events.rule-arn>\", \"e\": <aws.events.event.json>, \"x\": \"<unknown>\"}",
        ))
        .unwrap();
        assert_eq!(v["rule"], "r");
        assert_eq!(v["arn"], "arn:aws:events:us-east-1:123456789012:rule/r");
        assert_eq!(v["e"], ec2());
        assert_eq!(v["x"], "<unknown>");
        // Quotes inside string values are escaped in JSON strings.
        let t = Transformer::parse(
            &json!({"InputPathsMap": {"q": "$.q"}, "InputTemplate": "{\"a\": \"say <q>\"}"}),
        )
        .unwrap();
        let out = t.apply(&json!({"q": "\"hi\""}), &cx());
        assert_eq!(
            serde_json::from_str::<Value>(&out).unwrap(),
            json!({"a": "say \"hi\""})
        );
    }

    #[test]
    fn input_and_input_path() {
        let e = ec2();
        assert_eq!(
            render(&json!({"Input": "{\"k\": 1}"}), &e, &cx()),
            "{\"k\": 1}"
        );
        assert_eq!(
            render(&json!({"InputPath": "$.detail"}), &e, &cx()),
            e["detail"].to_string()
        );
        assert_eq!(render(&json!({}), &e, &cx()), e.to_string());
    }

    #[test]
    fn json_paths() {
        let e = ec2();
        let p = |s: &str| JsonPath::parse(s);
        assert_eq!(p("$").unwrap().get(&e), Some(&e));
        assert_eq!(
            p("$.detail.state").unwrap().get(&e),
            Some(&json!("RUNNING"))
        );
        assert_eq!(
            p("$.resources[0]")
                .unwrap()
                .get(&e)
                .and_then(Value::as_str)
                .map(|s| s.ends_with("i-abcd1111")),
            Some(true)
        );
        assert_eq!(
            p("$['detail']['instance-id']").unwrap().get(&e),
            Some(&json!("i-0123456789"))
        );
        assert_eq!(p("$.nope.deeper").unwrap().get(&e), None);
        assert!(p("detail").is_none());
        assert!(p("$.").is_none());
        assert!(p("$.a[x]").is_none());
    }

    #[test]
    fn transformer_validation() {
        assert!(Transformer::parse(&json!({})).is_err());
        assert!(Transformer::parse(&json!({"InputTemplate": ""})).is_err());
        assert!(
            Transformer::parse(&json!({"InputPathsMap": {"aws.x": "$.a"}, "InputTemplate": "x"}))
                .is_err()
        );
        assert!(
            Transformer::parse(&json!({"InputPathsMap": {"a": "nope"}, "InputTemplate": "x"}))
                .is_err()
        );
    }
}
