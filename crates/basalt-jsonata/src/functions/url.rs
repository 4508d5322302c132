//! `$base64encode/decode` (over the string's code points as bytes, like `btoa`/`atob`) and the
//! URL encoders with JavaScript's `encodeURI(Component)` / `decodeURI(Component)` sets.

use super::{Focus, arg};
use crate::error::{Inserts, JsonataError};
use crate::value::Value;
use base64::Engine;

type R = Result<Value, JsonataError>;

fn input(args: &[Value]) -> Option<std::rc::Rc<str>> {
    match arg(args, 0) {
        Value::String(s) => Some(s),
        _ => None,
    }
}

pub(crate) fn base64_encode(_: &Focus, args: Vec<Value>) -> R {
    let Some(s) = input(&args) else {
        return Ok(Value::Undefined);
    };
    // Buffer.from(str, 'binary') keeps the low byte of each UTF-16 unit.
    let bytes: Vec<u8> = s.encode_utf16().map(|u| u as u8).collect();
    Ok(Value::string(
        &base64::engine::general_purpose::STANDARD.encode(bytes),
    ))
}

pub(crate) fn base64_decode(_: &Focus, args: Vec<Value>) -> R {
    let Some(s) = input(&args) else {
        return Ok(Value::Undefined);
    };
    let cleaned: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    let trimmed = cleaned.trim_end_matches('=');
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(trimmed)
        .unwrap_or_default();
    Ok(Value::string(
        &bytes.iter().map(|b| *b as char).collect::<String>(),
    ))
}

const URI_UNRESERVED: &str = "-_.!~*'()";
const URI_RESERVED: &str = ";/?:@&=+$,#";

fn encode(s: &str, keep: &str, name: &str) -> R {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || keep.contains(c) {
            out.push(c);
        } else if (0xD800..0xE000).contains(&(c as u32)) {
            return Err(malformed(name, s));
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    Ok(Value::string(&out))
}

fn malformed(name: &str, s: &str) -> JsonataError {
    let mut e = JsonataError::with(
        "D3140",
        None,
        Inserts {
            value: Some(serde_json::Value::String(s.into()).to_string()),
            ..Inserts::default()
        },
    );
    e.message = format!(
        "Malformed URL passed to ${name}(): {}",
        serde_json::Value::String(s.into())
    );
    e
}

fn decode(s: &str, reserved_kept: &str, name: &str) -> R {
    let bytes = s.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3).ok_or_else(|| malformed(name, s))?;
            let b = u8::from_str_radix(hex, 16).map_err(|_| malformed(name, s))?;
            if b < 0x80 && reserved_kept.contains(b as char) {
                out.extend_from_slice(&bytes[i..i + 3]);
            } else {
                out.push(b);
            }
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map(|s| Value::string(&s))
        .map_err(|_| malformed(name, s))
}

pub(crate) fn encode_url_component(_: &Focus, args: Vec<Value>) -> R {
    let Some(s) = input(&args) else {
        return Ok(Value::Undefined);
    };
    encode(&s, URI_UNRESERVED, "encodeUrlComponent")
}

pub(crate) fn encode_url(_: &Focus, args: Vec<Value>) -> R {
    let Some(s) = input(&args) else {
        return Ok(Value::Undefined);
    };
    encode(&s, &format!("{URI_UNRESERVED}{URI_RESERVED}"), "encodeUrl")
}

pub(crate) fn decode_url_component(_: &Focus, args: Vec<Value>) -> R {
    let Some(s) = input(&args) else {
        return Ok(Value::Undefined);
    };
    decode(&s, "", "decodeUrlComponent")
}

pub(crate) fn decode_url(_: &Focus, args: Vec<Value>) -> R {
    let Some(s) = input(&args) else {
        return Ok(Value::Undefined);
    };
    decode(&s, URI_RESERVED, "decodeUrl")
}
