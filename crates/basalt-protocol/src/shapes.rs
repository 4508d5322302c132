//! Shape lookups and scalar conversions shared by the protocols.

use crate::timestamp;
use basalt_core::AwsError;
use basalt_spec::{ServiceModel, Shape, ShapeRef, ShapeType, TimestampFormat};
use base64::Engine;
use serde_json::{Number, Value};

pub(crate) const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

pub(crate) fn resolve<'m>(model: &'m ServiceModel, r: &ShapeRef) -> Result<&'m Shape, AwsError> {
    model
        .shape(&r.shape)
        .ok_or_else(|| AwsError::internal(format!("model has no shape {}", r.shape)))
}

/// Whether a member is serialized in a response body: URI and query bindings only apply to
/// requests, so in responses those members travel in the body.
pub(crate) fn in_output_body(r: &ShapeRef) -> bool {
    !matches!(
        r.location,
        Some(
            basalt_spec::Location::Header
                | basalt_spec::Location::Headers
                | basalt_spec::Location::StatusCode
        )
    )
}

pub(crate) fn bad(message: impl Into<String>) -> AwsError {
    AwsError::serialization(message)
}

/// The member ref's timestamp format, else the shape's, else the location's default.
pub(crate) fn ts_format(shape: &Shape, r: &ShapeRef, default: TimestampFormat) -> TimestampFormat {
    r.timestamp_format
        .or(shape.timestamp_format)
        .unwrap_or(default)
}

pub(crate) fn is_float(kind: ShapeType) -> bool {
    matches!(
        kind,
        ShapeType::Float | ShapeType::Double | ShapeType::BigDecimal
    )
}

pub(crate) fn is_integer(kind: ShapeType) -> bool {
    matches!(
        kind,
        ShapeType::Integer
            | ShapeType::Long
            | ShapeType::Short
            | ShapeType::Byte
            | ShapeType::BigInteger
    )
}

/// Non-finite floats travel as these strings in text and JSON protocols.
pub(crate) fn float_value(f: f64) -> Value {
    if f.is_nan() {
        Value::String("NaN".into())
    } else if f == f64::INFINITY {
        Value::String("Infinity".into())
    } else if f == f64::NEG_INFINITY {
        Value::String("-Infinity".into())
    } else if f.fract() == 0.0 && f.abs() < 9.0e15 {
        Value::Number(Number::from(f as i64))
    } else {
        Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null)
    }
}

pub(crate) fn float_of(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

/// Converts a scalar in text form (header, query string, URI label, XML text) to canonical.
pub(crate) fn scalar_from_text(
    shape: &Shape,
    r: &ShapeRef,
    text: &str,
    default_ts: TimestampFormat,
    name: &str,
) -> Result<Value, AwsError> {
    let fail = || {
        bad(format!("Value '{text}' at '{name}' is not a valid {:?}", shape.kind).to_lowercase())
    };
    Ok(match shape.kind {
        ShapeType::String => Value::String(text.to_owned()),
        ShapeType::Boolean => match text.trim() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err(fail()),
        },
        k if is_integer(k) => Value::Number(text.trim().parse::<i64>().map_err(|_| fail())?.into()),
        k if is_float(k) => match text.trim() {
            "NaN" | "Infinity" | "-Infinity" => Value::String(text.trim().to_owned()),
            t => float_value(t.parse::<f64>().map_err(|_| fail())?),
        },
        ShapeType::Timestamp => timestamp::to_canonical(
            timestamp::parse(text, ts_format(shape, r, default_ts)).ok_or_else(fail)?,
        ),
        ShapeType::Blob => {
            B64.decode(text.trim()).map_err(|_| fail())?;
            Value::String(text.trim().to_owned())
        }
        _ => return Err(fail()),
    })
}

/// Converts a canonical scalar to text form.
pub(crate) fn scalar_to_text(
    shape: &Shape,
    r: &ShapeRef,
    v: &Value,
    default_ts: TimestampFormat,
) -> Option<String> {
    Some(match (shape.kind, v) {
        (ShapeType::Timestamp, v) => timestamp::format_text(
            timestamp::from_canonical(v)?,
            ts_format(shape, r, default_ts),
        ),
        (k, v) if is_float(k) => match float_of(v)? {
            f if f.is_nan() => "NaN".into(),
            f if f == f64::INFINITY => "Infinity".into(),
            f if f == f64::NEG_INFINITY => "-Infinity".into(),
            f => format_float(f),
        },
        (_, Value::String(s)) => s.clone(),
        (_, Value::Bool(b)) => b.to_string(),
        (_, Value::Number(n)) => n.to_string(),
        _ => return None,
    })
}

pub(crate) fn format_float(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}
