//! awsJson1_0 / awsJson1_1, and the JSON document codec restJson1 shares.

use crate::shapes::{B64, bad, float_of, float_value, is_float, is_integer, resolve, ts_format};
use crate::{Request, Response, timestamp};
use basalt_core::AwsError;
use basalt_spec::{Operation, ServiceModel, ShapeRef, ShapeType, TimestampFormat};
use base64::Engine;
use serde_json::{Map, Value};

/// Member naming: awsJson uses member names; restJson honours `locationName` (jsonName).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Naming {
    Member,
    JsonName,
}

pub(crate) fn member_key<'a>(name: &'a str, r: &'a ShapeRef, naming: Naming) -> &'a str {
    match naming {
        Naming::JsonName => r.location_name.as_deref().unwrap_or(name),
        Naming::Member => name,
    }
}

/// Wire JSON → canonical document for `r`.
pub fn from_wire(
    model: &ServiceModel,
    r: &ShapeRef,
    v: &Value,
    naming: Naming,
    path: &str,
) -> Result<Value, AwsError> {
    let shape = resolve(model, r)?;
    let mismatch = |what: &str| bad(format!("Unexpected value at '{path}': expected {what}"));
    if shape.document {
        return Ok(v.clone());
    }
    Ok(match shape.kind {
        ShapeType::Structure => {
            let Value::Object(obj) = v else {
                return Err(mismatch("an object"));
            };
            let mut out = Map::new();
            for (name, mref) in &shape.members {
                let key = member_key(name, mref, naming);
                match obj.get(key) {
                    None | Some(Value::Null) => {}
                    Some(val) => {
                        out.insert(
                            name.clone(),
                            from_wire(model, mref, val, naming, &join(path, name))?,
                        );
                    }
                }
            }
            out.into()
        }
        ShapeType::List => {
            let Value::Array(items) = v else {
                return Err(mismatch("a list"));
            };
            let member = shape
                .member
                .as_deref()
                .ok_or_else(|| AwsError::internal("list without member"))?;
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                out.push(if item.is_null() {
                    Value::Null
                } else {
                    from_wire(model, member, item, naming, &format!("{path}.{}", i + 1))?
                });
            }
            out.into()
        }
        ShapeType::Map => {
            let Value::Object(obj) = v else {
                return Err(mismatch("a map"));
            };
            let value = shape
                .value
                .as_deref()
                .ok_or_else(|| AwsError::internal("map without value"))?;
            let mut out = Map::new();
            for (k, item) in obj {
                out.insert(
                    k.clone(),
                    if item.is_null() {
                        Value::Null
                    } else {
                        from_wire(model, value, item, naming, &join(path, k))?
                    },
                );
            }
            out.into()
        }
        ShapeType::String => {
            if shape.document {
                return Ok(v.clone());
            }
            if !v.is_string() {
                return Err(mismatch("a string"));
            }
            v.clone()
        }
        ShapeType::Boolean => {
            if !v.is_boolean() {
                return Err(mismatch("a boolean"));
            }
            v.clone()
        }
        k if is_integer(k) => match v {
            Value::Number(n) if n.is_i64() || n.is_u64() => v.clone(),
            Value::Number(n) if n.as_f64().is_some_and(|f| f.fract() == 0.0) => {
                Value::from(n.as_f64().unwrap_or(0.0) as i64)
            }
            _ => return Err(mismatch("an integer")),
        },
        k if is_float(k) => match float_of(v) {
            Some(f) => float_value(f),
            None => return Err(mismatch("a number")),
        },
        ShapeType::Timestamp => {
            let secs = match v {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => {
                    timestamp::parse(s, ts_format(shape, r, TimestampFormat::UnixTimestamp))
                }
                _ => None,
            };
            timestamp::to_canonical(secs.ok_or_else(|| mismatch("a timestamp"))?)
        }
        ShapeType::Blob => {
            let Value::String(s) = v else {
                return Err(mismatch("base64 data"));
            };
            if B64.decode(s).is_err() {
                return Err(mismatch("base64 data"));
            }
            v.clone()
        }
        _ => v.clone(),
    })
}

/// Canonical document → wire JSON for `r`.
pub fn to_wire(
    model: &ServiceModel,
    r: &ShapeRef,
    v: &Value,
    naming: Naming,
) -> Result<Value, AwsError> {
    let shape = resolve(model, r)?;
    Ok(match (shape.kind, v) {
        (_, Value::Null) => Value::Null,
        (ShapeType::Structure, Value::Object(obj)) if !shape.document => {
            let mut out = Map::new();
            for (name, mref) in &shape.members {
                if !crate::shapes::in_output_body(mref) {
                    continue;
                }
                if let Some(val) = obj.get(name)
                    && !val.is_null()
                {
                    out.insert(
                        member_key(name, mref, naming).to_owned(),
                        to_wire(model, mref, val, naming)?,
                    );
                }
            }
            out.into()
        }
        (ShapeType::List, Value::Array(items)) => {
            let member = shape
                .member
                .as_deref()
                .ok_or_else(|| AwsError::internal("list without member"))?;
            items
                .iter()
                .map(|i| to_wire(model, member, i, naming))
                .collect::<Result<Vec<_>, _>>()?
                .into()
        }
        (ShapeType::Map, Value::Object(obj)) => {
            let value = shape
                .value
                .as_deref()
                .ok_or_else(|| AwsError::internal("map without value"))?;
            let mut out = Map::new();
            for (k, item) in obj {
                out.insert(k.clone(), to_wire(model, value, item, naming)?);
            }
            out.into()
        }
        (ShapeType::Timestamp, v) => {
            let secs = timestamp::from_canonical(v)
                .ok_or_else(|| AwsError::internal("bad timestamp in output"))?;
            timestamp::format(secs, ts_format(shape, r, TimestampFormat::UnixTimestamp))
        }
        (k, v) if is_float(k) => float_of(v).map(float_value).unwrap_or_else(|| v.clone()),
        _ => v.clone(),
    })
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

/// Parses a JSON body into the canonical document of `r` (empty body = empty structure).
pub(crate) fn parse_body(
    model: &ServiceModel,
    r: &ShapeRef,
    body: &[u8],
    naming: Naming,
) -> Result<Value, AwsError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Map::new()));
    }
    let wire: Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("Malformed JSON body: {e}")))?;
    from_wire(model, r, &wire, naming, "")
}

pub(crate) fn find_operation<'m>(
    model: &'m ServiceModel,
    req: &Request<'_>,
) -> Result<&'m Operation, AwsError> {
    let target = req
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            AwsError::new(400, "MissingAction", "Missing required header X-Amz-Target")
        })?;
    let (prefix, op) = target.rsplit_once('.').unwrap_or(("", target));
    if model
        .metadata
        .target_prefix
        .as_deref()
        .is_some_and(|p| p != prefix)
    {
        return Err(AwsError::unknown_operation(target));
    }
    model
        .operation(op)
        .ok_or_else(|| AwsError::unknown_operation(op))
}

pub(crate) fn parse_request(
    model: &ServiceModel,
    op: &Operation,
    req: &Request<'_>,
) -> Result<Value, AwsError> {
    match &op.input {
        Some(r) => parse_body(model, r, req.body, Naming::Member),
        None => Ok(Value::Object(Map::new())),
    }
}

pub(crate) fn content_type(model: &ServiceModel) -> String {
    format!(
        "application/x-amz-json-{}",
        model.metadata.json_version.as_deref().unwrap_or("1.0")
    )
}

pub(crate) fn serialize_output(
    model: &ServiceModel,
    op: &Operation,
    output: &Value,
) -> Result<Response, AwsError> {
    let body = match &op.output {
        Some(r) => to_wire(model, r, output, Naming::Member)?,
        None => Value::Object(Map::new()),
    };
    Ok(Response {
        status: 200,
        headers: vec![("Content-Type".into(), content_type(model))],
        body: serde_json::to_vec(&body).unwrap_or_default(),
    })
}

/// The error document: `__type`, the message, and the error shape's other members.
pub(crate) fn error_document(
    model: Option<&ServiceModel>,
    err: &AwsError,
    naming: Naming,
) -> Map<String, Value> {
    let mut doc = Map::new();
    doc.insert("__type".into(), Value::String(err.code.clone()));
    let shape = model.and_then(|m| m.shape(&err.code));
    let message_key = shape
        .and_then(|s| {
            s.members
                .keys()
                .find(|k| k.eq_ignore_ascii_case("message"))
                .cloned()
        })
        .unwrap_or_else(|| "message".into());
    doc.insert(message_key, Value::String(err.message.clone()));
    if let (Some(model), Some(_)) = (model, shape) {
        let r = ShapeRef {
            shape: err.code.clone(),
            ..Default::default()
        };
        if let Ok(Value::Object(extra)) =
            to_wire(model, &r, &Value::Object(err.fields.clone()), naming)
        {
            doc.extend(extra);
        }
    } else {
        doc.extend(err.fields.clone());
    }
    doc
}

/// The namespace a service qualifies its error types with on the wire, where its SDKs expect
/// one: DynamoDB writes `com.amazonaws.dynamodb.v20120810#ResourceNotFoundException`.
fn error_namespace(model: Option<&ServiceModel>) -> Option<&'static str> {
    match model?.metadata.target_prefix.as_deref()? {
        "DynamoDB_20120810" | "DynamoDBStreams_20120810" => {
            Some("com.amazonaws.dynamodb.v20120810")
        }
        _ => None,
    }
}

pub(crate) fn serialize_error(model: Option<&ServiceModel>, err: &AwsError) -> Response {
    let mut doc = error_document(model, err, Naming::Member);
    if let Some(ns) = error_namespace(model) {
        doc.insert("__type".into(), format!("{ns}#{}", err.code).into());
    }
    Response {
        status: err.status,
        headers: vec![
            (
                "Content-Type".into(),
                model
                    .map(content_type)
                    .unwrap_or_else(|| "application/x-amz-json-1.0".into()),
            ),
            ("x-amzn-ErrorType".into(), err.code.clone()),
        ],
        body: serde_json::to_vec(&doc).unwrap_or_default(),
    }
}
