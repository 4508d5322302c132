//! smithy-rpc-v2-cbor: `POST /service/<Service>/operation/<Op>`, CBOR bodies, timestamps as
//! tag 1, errors as a map with `__type`.

use crate::cbor_codec::{self, Cbor};
use crate::shapes::{B64, bad, float_of, float_value, is_float, is_integer, resolve};
use crate::{Request, Response, timestamp};
use basalt_core::AwsError;
use basalt_spec::{Operation, ServiceModel, ShapeRef, ShapeType};
use base64::Engine;
use serde_json::{Map, Value};

pub(crate) fn find_operation<'m>(
    model: &'m ServiceModel,
    req: &Request<'_>,
) -> Result<&'m Operation, AwsError> {
    let parts: Vec<&str> = req.path.split('/').filter(|s| !s.is_empty()).collect();
    let n = parts.len();
    if n < 4 || parts[n - 4] != "service" || parts[n - 2] != "operation" {
        return Err(crate::unknown_operation_error(
            basalt_spec::Protocol::Cbor,
            req.path,
        ));
    }
    model
        .operation(parts[n - 1])
        .ok_or_else(|| crate::unknown_operation_error(basalt_spec::Protocol::Cbor, parts[n - 1]))
}

pub(crate) fn parse_request(
    model: &ServiceModel,
    op: &Operation,
    req: &Request<'_>,
) -> Result<Value, AwsError> {
    let Some(r) = &op.input else {
        return Ok(Value::Object(Map::new()));
    };
    if req.body.is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    let doc = cbor_codec::decode(req.body).map_err(|e| bad(format!("Malformed CBOR body: {e}")))?;
    from_cbor(model, r, &doc, "")
}

fn text_key(k: &Cbor) -> Option<&str> {
    match k {
        Cbor::Text(s) => Some(s),
        _ => None,
    }
}

fn generic(v: &Cbor) -> Value {
    match v {
        Cbor::Uint(n) => Value::from(*n),
        Cbor::Nint(n) => Value::from(-1i128.saturating_sub(i128::from(*n)) as i64),
        Cbor::Bytes(b) => Value::String(B64.encode(b)),
        Cbor::Text(s) => Value::String(s.clone()),
        Cbor::Array(items) => items.iter().map(generic).collect::<Vec<_>>().into(),
        Cbor::Map(entries) => entries
            .iter()
            .filter_map(|(k, v)| text_key(k).map(|k| (k.to_owned(), generic(v))))
            .collect::<Map<_, _>>()
            .into(),
        Cbor::Tag(_, inner) => generic(inner),
        Cbor::Bool(b) => Value::Bool(*b),
        Cbor::Null | Cbor::Undefined => Value::Null,
        Cbor::Float(f) => float_value(*f),
    }
}

/// CBOR item → canonical document for `r`.
pub fn from_cbor(
    model: &ServiceModel,
    r: &ShapeRef,
    v: &Cbor,
    path: &str,
) -> Result<Value, AwsError> {
    let shape = resolve(model, r)?;
    let mismatch = |what: &str| bad(format!("Unexpected value at '{path}': expected {what}"));
    if matches!(v, Cbor::Null | Cbor::Undefined) {
        return Ok(Value::Null);
    }
    Ok(match (shape.kind, v) {
        (_, v) if shape.document => generic(v),
        (ShapeType::Structure, Cbor::Map(entries)) => {
            let mut out = Map::new();
            for (k, val) in entries {
                let Some(k) = text_key(k) else { continue };
                if let Some(mref) = shape.members.get(k) {
                    let converted = from_cbor(model, mref, val, k)?;
                    if !converted.is_null() {
                        out.insert(k.to_owned(), converted);
                    }
                }
            }
            out.into()
        }
        (ShapeType::List, Cbor::Array(items)) => {
            let member = shape
                .member
                .as_deref()
                .ok_or_else(|| AwsError::internal("list without member"))?;
            items
                .iter()
                .map(|i| from_cbor(model, member, i, path))
                .collect::<Result<Vec<_>, _>>()?
                .into()
        }
        (ShapeType::Map, Cbor::Map(entries)) => {
            let value = shape
                .value
                .as_deref()
                .ok_or_else(|| AwsError::internal("map without value"))?;
            let mut out = Map::new();
            for (k, val) in entries {
                let k = text_key(k).ok_or_else(|| mismatch("text map keys"))?;
                out.insert(k.to_owned(), from_cbor(model, value, val, path)?);
            }
            out.into()
        }
        (ShapeType::String, Cbor::Text(s)) => Value::String(s.clone()),
        (ShapeType::Boolean, Cbor::Bool(b)) => Value::Bool(*b),
        (k, Cbor::Uint(n)) if is_integer(k) => Value::from(*n),
        (k, Cbor::Nint(n)) if is_integer(k) => Value::from(
            i64::try_from(*n)
                .map(|n| -1 - n)
                .map_err(|_| mismatch("an integer in range"))?,
        ),
        (k, Cbor::Float(f)) if is_float(k) => float_value(*f),
        (k, Cbor::Uint(_) | Cbor::Nint(_)) if is_float(k) => generic(v),
        (ShapeType::Blob, Cbor::Bytes(b)) => Value::String(B64.encode(b)),
        (ShapeType::Blob, Cbor::Text(s)) => Value::String(B64.encode(s.as_bytes())),
        (ShapeType::Timestamp, v) => match if let Cbor::Tag(1, inner) = v {
            inner.as_ref()
        } else {
            v
        } {
            Cbor::Uint(n) => timestamp::to_canonical(*n as f64),
            Cbor::Nint(n) => timestamp::to_canonical(-1.0 - *n as f64),
            Cbor::Float(f) if f.is_finite() => timestamp::to_canonical(*f),
            _ => return Err(mismatch("a timestamp")),
        },
        _ => return Err(mismatch(&format!("{:?}", shape.kind).to_lowercase())),
    })
}

fn int_cbor(n: &serde_json::Number) -> Cbor {
    match (n.as_u64(), n.as_i64()) {
        (Some(u), _) => Cbor::Uint(u),
        (_, Some(i)) => Cbor::Nint((-1 - i) as u64),
        _ => Cbor::Float(n.as_f64().unwrap_or(0.0)),
    }
}

fn generic_to_cbor(v: &Value) -> Cbor {
    match v {
        Value::Null => Cbor::Null,
        Value::Bool(b) => Cbor::Bool(*b),
        Value::Number(n) if n.is_f64() => Cbor::Float(n.as_f64().unwrap_or(0.0)),
        Value::Number(n) => int_cbor(n),
        Value::String(s) => Cbor::Text(s.clone()),
        Value::Array(items) => Cbor::Array(items.iter().map(generic_to_cbor).collect()),
        Value::Object(obj) => Cbor::Map(
            obj.iter()
                .map(|(k, v)| (Cbor::Text(k.clone()), generic_to_cbor(v)))
                .collect(),
        ),
    }
}

/// Canonical document → CBOR item for `r`.
pub fn to_cbor(model: &ServiceModel, r: &ShapeRef, v: &Value) -> Result<Cbor, AwsError> {
    let shape = resolve(model, r)?;
    Ok(match (shape.kind, v) {
        (_, Value::Null) => Cbor::Null,
        (_, v) if shape.document => generic_to_cbor(v),
        (ShapeType::Structure, Value::Object(obj)) => {
            let mut entries = Vec::with_capacity(obj.len());
            for (name, mref) in &shape.members {
                if let Some(val) = obj.get(name).filter(|v| !v.is_null()) {
                    entries.push((Cbor::Text(name.clone()), to_cbor(model, mref, val)?));
                }
            }
            Cbor::Map(entries)
        }
        (ShapeType::List, Value::Array(items)) => {
            let member = shape
                .member
                .as_deref()
                .ok_or_else(|| AwsError::internal("list without member"))?;
            Cbor::Array(
                items
                    .iter()
                    .map(|i| to_cbor(model, member, i))
                    .collect::<Result<_, _>>()?,
            )
        }
        (ShapeType::Map, Value::Object(obj)) => {
            let value = shape
                .value
                .as_deref()
                .ok_or_else(|| AwsError::internal("map without value"))?;
            Cbor::Map(
                obj.iter()
                    .map(|(k, v)| Ok((Cbor::Text(k.clone()), to_cbor(model, value, v)?)))
                    .collect::<Result<_, AwsError>>()?,
            )
        }
        (ShapeType::Blob, Value::String(s)) => Cbor::Bytes(
            B64.decode(s)
                .map_err(|_| AwsError::internal("blob is not base64"))?,
        ),
        (ShapeType::Timestamp, v) => {
            let secs = timestamp::from_canonical(v)
                .ok_or_else(|| AwsError::internal("bad timestamp in output"))?;
            Cbor::Tag(
                1,
                Box::new(if secs.fract() == 0.0 {
                    int_cbor(&serde_json::Number::from(secs as i64))
                } else {
                    Cbor::Float(secs)
                }),
            )
        }
        (k, v) if is_float(k) => Cbor::Float(float_of(v).unwrap_or(0.0)),
        (k, Value::Number(n)) if is_integer(k) => int_cbor(n),
        _ => generic_to_cbor(v),
    })
}

fn headers() -> Vec<(String, String)> {
    vec![
        ("smithy-protocol".into(), "rpc-v2-cbor".into()),
        ("Content-Type".into(), "application/cbor".into()),
    ]
}

pub(crate) fn serialize_output(
    model: &ServiceModel,
    op: &Operation,
    output: &Value,
) -> Result<Response, AwsError> {
    let mut body = Vec::new();
    if let Some(r) = &op.output {
        cbor_codec::encode(&to_cbor(model, r, output)?, &mut body);
    }
    Ok(Response {
        status: 200,
        headers: headers(),
        body,
    })
}

pub(crate) fn serialize_error(model: Option<&ServiceModel>, err: &AwsError) -> Response {
    let doc = crate::json::error_document(model, err, crate::json::Naming::Member);
    let mut entries: Vec<(Cbor, Cbor)> = Vec::new();
    let shape = model.and_then(|m| m.shape(&err.code).map(|s| (m, s)));
    for (k, v) in &doc {
        let item = match shape.and_then(|(m, s)| s.members.get(k).map(|r| (m, r))) {
            Some((m, r)) => to_cbor(m, r, v).unwrap_or_else(|_| generic_to_cbor(v)),
            None => generic_to_cbor(v),
        };
        entries.push((Cbor::Text(k.clone()), item));
    }
    let mut body = Vec::new();
    cbor_codec::encode(&Cbor::Map(entries), &mut body);
    Response {
        status: err.status,
        headers: headers(),
        body,
    }
}
