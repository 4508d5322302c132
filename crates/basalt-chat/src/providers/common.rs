//! Shared helpers: reading hostile JSON with Bedrock's own (JSON-schema validator) messages,
//! ids, stop-reason words, and image sniffing.

use basalt_core::AwsError;
use serde_json::{Map, Value};

/// `Malformed input request: <detail>, please reformat your input and try again.`: the
/// wording Bedrock uses when a body fails the model's request schema.
pub(crate) fn malformed(detail: impl AsRef<str>) -> AwsError {
    AwsError::validation(format!(
        "Malformed input request: {}, please reformat your input and try again.",
        detail.as_ref()
    ))
}

/// The schema validator's name for a JSON value's type.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "Null",
        Value::Bool(_) => "Boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "Integer",
        Value::Number(_) => "BigDecimal",
        Value::String(_) => "String",
        Value::Array(_) => "JSONArray",
        Value::Object(_) => "JSONObject",
    }
}

pub(crate) fn type_error(path: &str, expected: &str, found: &Value) -> AwsError {
    malformed(format!(
        "{path}: expected type: {expected}, found: {}",
        type_name(found)
    ))
}

/// A JSON object being read, with its schema path (`#`, `#/textGenerationConfig`, ...).
#[derive(Clone)]
pub(crate) struct Obj<'a> {
    pub map: &'a Map<String, Value>,
    pub path: String,
}

/// A child path: `#` + `key` = `#/key`.
pub(crate) fn child(path: &str, key: &str) -> String {
    format!("{path}/{key}")
}

impl<'a> Obj<'a> {
    /// The request body itself, which must be a JSON object.
    pub fn root(body: &'a Value) -> Result<Obj<'a>, AwsError> {
        Obj::at(body, "#")
    }

    pub fn at(v: &'a Value, path: impl Into<String>) -> Result<Obj<'a>, AwsError> {
        let path = path.into();
        match v {
            Value::Object(map) => Ok(Obj { map, path }),
            other => Err(type_error(&path, "JSONObject", other)),
        }
    }

    /// The schema path of member `key`.
    pub fn path_of(&self, key: &str) -> String {
        child(&self.path, key)
    }

    /// Rejects keys outside `allowed`, as Bedrock's strict schemas do.
    pub fn only(&self, allowed: &[&str]) -> Result<(), AwsError> {
        match self.map.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(k) => Err(malformed(format!(
                "{}: extraneous key [{k}] is not permitted",
                self.path
            ))),
            None => Ok(()),
        }
    }

    /// A present, non-null member.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    pub fn req(&self, key: &str) -> Result<&'a Value, AwsError> {
        self.get(key)
            .ok_or_else(|| malformed(format!("{}: required key [{key}] not found", self.path)))
    }

    pub fn req_str(&self, key: &str) -> Result<&'a str, AwsError> {
        let v = self.req(key)?;
        v.as_str()
            .ok_or_else(|| type_error(&child(&self.path, key), "String", v))
    }

    pub fn opt_str(&self, key: &str) -> Result<Option<&'a str>, AwsError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(type_error(&child(&self.path, key), "String", v)),
        }
    }

    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>, AwsError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(type_error(&child(&self.path, key), "Boolean", v)),
        }
    }

    /// An integer within `[min, max]`.
    pub fn opt_int(&self, key: &str, min: i64, max: i64) -> Result<Option<i64>, AwsError> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        let path = child(&self.path, key);
        let n = v.as_i64().ok_or_else(|| match v.as_u64() {
            Some(big) => malformed(format!("{path}: {big} is not less or equal to {max}")),
            None => type_error(&path, "Integer", v),
        })?;
        if n < min {
            return Err(malformed(format!(
                "{path}: {n} is not greater or equal to {min}"
            )));
        }
        if n > max {
            return Err(malformed(format!(
                "{path}: {n} is not less or equal to {max}"
            )));
        }
        Ok(Some(n))
    }

    pub fn opt_u32(&self, key: &str, min: u32, max: u32) -> Result<Option<u32>, AwsError> {
        Ok(self
            .opt_int(key, i64::from(min), i64::from(max))?
            .map(|n| u32::try_from(n).unwrap_or(max)))
    }

    /// A number within `[min, max]`.
    pub fn opt_num(&self, key: &str, min: f64, max: f64) -> Result<Option<f32>, AwsError> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        let path = child(&self.path, key);
        let n = v.as_f64().ok_or_else(|| type_error(&path, "Number", v))?;
        if n < min {
            return Err(malformed(format!(
                "{path}: {n} is not greater or equal to {min:?}"
            )));
        }
        if n > max {
            return Err(malformed(format!(
                "{path}: {n} is not less or equal to {max:?}"
            )));
        }
        Ok(Some(n as f32))
    }

    pub fn opt_obj(&self, key: &str) -> Result<Option<Obj<'a>>, AwsError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => Obj::at(v, self.path_of(key)).map(Some),
        }
    }

    pub fn opt_arr(&self, key: &str) -> Result<Option<&'a Vec<Value>>, AwsError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(v) => Err(type_error(&child(&self.path, key), "JSONArray", v)),
        }
    }

    pub fn req_arr(&self, key: &str) -> Result<&'a Vec<Value>, AwsError> {
        let v = self.req(key)?;
        v.as_array()
            .ok_or_else(|| type_error(&child(&self.path, key), "JSONArray", v))
    }

    /// An array of strings of at most `max_items` items.
    pub fn opt_str_list(&self, key: &str, max_items: usize) -> Result<Vec<String>, AwsError> {
        let Some(items) = self.opt_arr(key)? else {
            return Ok(Vec::new());
        };
        let path = child(&self.path, key);
        if items.len() > max_items {
            return Err(malformed(format!(
                "{path}: expected maximum item count: {max_items}, found: {}",
                items.len()
            )));
        }
        items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| type_error(&format!("{path}/{i}"), "String", v))
            })
            .collect()
    }

    /// A string or an array of strings (OpenAI-style `stop`).
    pub fn str_or_list(&self, key: &str, max_items: usize) -> Result<Vec<String>, AwsError> {
        match self.get(key) {
            Some(Value::String(s)) => Ok(vec![s.clone()]),
            _ => self.opt_str_list(key, max_items),
        }
    }
}

/// 22 alphanumeric characters from a fresh UUID (v4), for Bedrock-looking ids.
pub(crate) fn random_tail(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz123456789";
    let mut out = String::with_capacity(len);
    while out.len() < len {
        for b in uuid::Uuid::new_v4().as_bytes() {
            if out.len() == len {
                break;
            }
            out.push(char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]));
        }
    }
    out
}

pub(crate) fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Decodes base64 image data; `format` is sniffed from the bytes when not given.
pub(crate) fn decode_image(
    path: &str,
    data: &str,
    format: Option<&str>,
) -> Result<crate::ContentBlock, AwsError> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|_| malformed(format!("{path}: the image data is not valid base64")))?;
    let format = match format {
        Some(f) => f.to_owned(),
        None => sniff_image(&bytes)
            .ok_or_else(|| {
                malformed(format!(
                    "{path}: unsupported image format (expected png, jpeg, gif or webp)"
                ))
            })?
            .to_owned(),
    };
    Ok(crate::ContentBlock::Image { format, bytes })
}

/// `png`, `jpeg`, `gif` or `webp`, from the magic bytes.
pub(crate) fn sniff_image(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG") {
        Some("png")
    } else if bytes.starts_with(&[0xFF, 0xD8]) {
        Some("jpeg")
    } else if bytes.starts_with(b"GIF8") {
        Some("gif")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("webp")
    } else {
        None
    }
}

/// `image/png` → `png`; `None` for media types the providers do not accept.
pub(crate) fn image_format_of_media_type(media_type: &str) -> Option<&'static str> {
    match media_type {
        "image/png" => Some("png"),
        "image/jpeg" | "image/jpg" => Some("jpeg"),
        "image/gif" => Some("gif"),
        "image/webp" => Some("webp"),
        _ => None,
    }
}

/// All text of a response's text blocks, concatenated.
pub(crate) fn joined_text(content: &[crate::ContentBlock]) -> String {
    content
        .iter()
        .filter_map(|b| match b {
            crate::ContentBlock::Text(t) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

/// The completion-style stop word: `stop` or `length`.
pub(crate) fn stop_or_length(stop: &crate::StopReason) -> &'static str {
    match stop {
        crate::StopReason::MaxTokens => "length",
        _ => "stop",
    }
}
