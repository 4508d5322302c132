//! Payload templates (Parameters, ResultSelector, ItemSelector, Arguments, Output, Assign,
//! Credentials): compiled once at parse time so running a state only walks the dynamic
//! parts. JSONPath templates use the `"key.$": "path or intrinsic"` convention; JSONata
//! templates embed `{% expression %}` strings anywhere.

use crate::intrinsics::{self, Call};
use crate::path::Path;
use crate::scope::Scope;
use serde_json::{Map, Value};

#[derive(Clone, Debug)]
pub(crate) enum Template {
    /// A subtree with nothing to resolve.
    Lit(Value),
    Obj(Vec<(String, Template)>),
    Arr(Vec<Template>),
    Path(Path),
    Call(Call),
    Jsonata(String),
}

/// Compile a JSONPath template. Errors are (message, location).
pub(crate) fn compile_jsonpath(v: &Value, loc: &str) -> Result<Template, (String, String)> {
    match v {
        Value::Object(m) => {
            if !has_dynamic_key(v) {
                return Ok(Template::Lit(v.clone()));
            }
            let mut out = Vec::with_capacity(m.len());
            for (k, x) in m {
                let here = format!("{loc}/{k}");
                if let Some(name) = k.strip_suffix(".$") {
                    let Some(text) = x.as_str() else {
                        return Err((
                            format!(
                                "The value for the field '{k}' must be a STRING that contains a JSONPath or an intrinsic function"
                            ),
                            here,
                        ));
                    };
                    out.push((name.to_string(), compile_expr(text, k, &here)?));
                } else {
                    out.push((k.clone(), compile_jsonpath(x, &here)?));
                }
            }
            Ok(Template::Obj(out))
        }
        // Inside arrays `.$` keys of nested objects still apply.
        Value::Array(a) if has_dynamic_key(v) => Ok(Template::Arr(
            a.iter()
                .enumerate()
                .map(|(i, x)| compile_jsonpath(x, &format!("{loc}[{i}]")))
                .collect::<Result<_, _>>()?,
        )),
        _ => Ok(Template::Lit(v.clone())),
    }
}

/// A `.$` value: a path or an intrinsic call.
pub(crate) fn compile_expr(
    text: &str,
    field: &str,
    loc: &str,
) -> Result<Template, (String, String)> {
    if intrinsics::looks_like_call(text) {
        intrinsics::parse(text).map(Template::Call).map_err(|e| {
            (
                format!(
                    "The value for the field '{field}' must be a valid intrinsic function call: {e}"
                ),
                loc.to_string(),
            )
        })
    } else {
        Path::parse(text).map(Template::Path).map_err(|e| {
            (
                format!("The value for the field '{field}' must be a valid JSONPath: {e}"),
                loc.to_string(),
            )
        })
    }
}

fn has_dynamic_key(v: &Value) -> bool {
    match v {
        Value::Object(m) => m
            .iter()
            .any(|(k, x)| k.ends_with(".$") || has_dynamic_key(x)),
        Value::Array(a) => a.iter().any(has_dynamic_key),
        _ => false,
    }
}

/// Compile a JSONata template: strings `{% ... %}` are expressions, the rest literal.
pub(crate) fn compile_jsonata(v: &Value) -> Template {
    match v {
        Value::String(s) => match jsonata_expr(s) {
            Some(e) => Template::Jsonata(e.to_string()),
            None => Template::Lit(v.clone()),
        },
        Value::Object(m) if has_expr(v) => Template::Obj(
            m.iter()
                .map(|(k, x)| (k.clone(), compile_jsonata(x)))
                .collect(),
        ),
        Value::Array(a) if has_expr(v) => Template::Arr(a.iter().map(compile_jsonata).collect()),
        _ => Template::Lit(v.clone()),
    }
}

/// `{% expr %}` → `expr`.
pub(crate) fn jsonata_expr(s: &str) -> Option<&str> {
    let t = s.strip_prefix("{%")?.strip_suffix("%}")?;
    Some(t.trim())
}

fn has_expr(v: &Value) -> bool {
    match v {
        Value::String(s) => jsonata_expr(s).is_some(),
        Value::Object(m) => m.values().any(has_expr),
        Value::Array(a) => a.iter().any(has_expr),
        _ => false,
    }
}

/// Evaluates one JSONata expression; `Ok(None)` is undefined; errors are (error, cause).
pub(crate) type JsonataFn<'a> = dyn FnMut(&str) -> Result<Option<Value>, (String, String)> + 'a;

/// Everything evaluation needs beyond the scope: randomness and a JSONata evaluator.
pub(crate) struct Env<'a> {
    pub rand: &'a mut dyn FnMut() -> u64,
    /// Evaluates one JSONata expression; `Ok(None)` is JSONata's "undefined".
    pub jsonata: &'a mut JsonataFn<'a>,
}

/// Evaluation failures carry the ASL error name (States.Runtime, States.IntrinsicFailure,
/// States.QueryEvaluationError) and a cause.
pub(crate) fn eval(t: &Template, scope: &Scope, env: &mut Env) -> Result<Value, (String, String)> {
    Ok(match t {
        Template::Lit(v) => v.clone(),
        Template::Obj(fields) => {
            let mut m = Map::with_capacity(fields.len());
            for (k, x) in fields {
                if let Template::Jsonata(expr) = x {
                    // A JSONata expression that yields nothing (undefined) drops the field.
                    if let Some(v) = (env.jsonata)(expr)? {
                        m.insert(k.clone(), v);
                    }
                    continue;
                }
                match (x, eval(x, scope, env)) {
                    (_, Ok(v)) => {
                        m.insert(k.clone(), v);
                    }
                    (Template::Path(p), Err(_)) => {
                        return Err((
                            "States.Runtime".into(),
                            format!(
                                "The JSONPath '{}' specified for the field '{}.$' could not be found in the input '{}'",
                                p.text, k, scope.input
                            ),
                        ));
                    }
                    (_, Err(e)) => return Err(e),
                }
            }
            Value::Object(m)
        }
        Template::Arr(items) => Value::Array(
            items
                .iter()
                .map(|x| eval(x, scope, env))
                .collect::<Result<_, _>>()?,
        ),
        Template::Path(p) => scope.read(p).ok_or_else(|| {
            (
                "States.Runtime".to_string(),
                format!(
                    "The JSONPath '{}' could not be found in the input '{}'",
                    p.text, scope.input
                ),
            )
        })?,
        Template::Call(c) => intrinsics::eval(c, scope, env.rand)
            .map_err(|e| ("States.IntrinsicFailure".to_string(), e))?,
        Template::Jsonata(expr) => (env.jsonata)(expr)?.unwrap_or(Value::Null),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(t: &Value, input: &Value) -> Result<Value, (String, String)> {
        let tpl = compile_jsonpath(t, "").unwrap();
        let vars = Map::new();
        let ctx = json!({"Execution": {"Name": "e1"}});
        let scope = Scope {
            input,
            ctx: &ctx,
            vars: &vars,
        };
        let mut r = || 4u64;
        let mut j = |_: &str| Ok(None);
        eval(
            &tpl,
            &scope,
            &mut Env {
                rand: &mut r,
                jsonata: &mut j,
            },
        )
    }

    #[test]
    fn dollar_keys_resolve() {
        let out = run(
            &json!({"flagged": true, "parts": {"first.$": "$.vals[0]", "last3.$": "$.vals[-3:]"}, "ex.$": "$$.Execution.Name",
                    "list": [{"x.$": "$.vals[1]"}], "fmt.$": "States.Format('n={}', $.vals[0])"}),
            &json!({"vals": [0, 10, 20, 30, 40, 50]}),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"flagged": true, "parts": {"first": 0, "last3": [30, 40, 50]}, "ex": "e1", "list": [{"x": 10}], "fmt": "n=0"})
        );
    }

    #[test]
    fn missing_path_is_runtime_error() {
        let (e, cause) = run(&json!({"a.$": "$.nope"}), &json!({})).unwrap_err();
        assert_eq!(e, "States.Runtime");
        assert!(cause.contains("'$.nope'"), "{cause}");
    }

    #[test]
    fn bad_values_are_refused_at_compile_time() {
        assert!(compile_jsonpath(&json!({"a.$": 3}), "").is_err());
        assert!(compile_jsonpath(&json!({"a.$": "nope"}), "").is_err());
        assert!(compile_jsonpath(&json!({"a.$": "States.Bogus()"}), "").is_err());
    }
}
