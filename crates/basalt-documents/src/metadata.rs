//! A document's metadata: the `metadataAttributes` of its `<name>.metadata.json` sidecar,
//! in either of the forms Bedrock reads (plain JSON values, or typed values with
//! `includeForEmbedding`).

use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The largest metadata file Bedrock reads.
pub const MAX_METADATA_BYTES: usize = 10 * 1024;
/// The suffix that makes an object the metadata of the object named before it.
pub const SUFFIX: &str = ".metadata.json";

#[derive(Debug, Clone, PartialEq)]
pub enum Attribute {
    String(String),
    Number(f64),
    Bool(bool),
    StringList(Vec<String>),
}

impl Attribute {
    pub fn to_json(&self) -> Value {
        match self {
            Attribute::String(s) => Value::String(s.clone()),
            Attribute::Number(n) => serde_json::Number::from_f64(*n).map_or(Value::Null, |n| {
                // Whole numbers read back as integers, as they were written.
                if n.as_f64()
                    .is_some_and(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                {
                    Value::from(n.as_f64().unwrap_or_default() as i64)
                } else {
                    Value::Number(n)
                }
            }),
            Attribute::Bool(b) => Value::Bool(*b),
            Attribute::StringList(l) => Value::from(l.clone()),
        }
    }

    /// An attribute from a JSON value (also a filter's value); `None` for shapes Bedrock
    /// does not take (objects, lists of non-strings, null).
    pub fn from_json(v: &Value) -> Option<Attribute> {
        Some(match v {
            Value::String(s) => Attribute::String(s.clone()),
            Value::Number(n) => Attribute::Number(n.as_f64()?),
            Value::Bool(b) => Attribute::Bool(*b),
            Value::Array(items) => Attribute::StringList(
                items
                    .iter()
                    .map(|i| i.as_str().map(str::to_owned))
                    .collect::<Option<_>>()?,
            ),
            _ => return None,
        })
    }
}

/// A document's attributes by key; `embedded` names those whose text is embedded with each
/// chunk (`includeForEmbedding`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metadata {
    pub attributes: BTreeMap<String, Attribute>,
    pub embedded: Vec<String>,
}

impl Metadata {
    /// Parses a metadata file; the error is the reason the document fails.
    pub fn parse(bytes: &[u8]) -> Result<Metadata, String> {
        if bytes.len() > MAX_METADATA_BYTES {
            return Err(format!(
                "The metadata file exceeds the maximum size of {} KB.",
                MAX_METADATA_BYTES / 1024
            ));
        }
        let doc: Value = serde_json::from_slice(bytes)
            .map_err(|e| format!("The metadata file is not valid JSON: {e}"))?;
        let attrs = doc
            .get("metadataAttributes")
            .and_then(Value::as_object)
            .ok_or("The metadata file has no metadataAttributes object.")?;
        let mut out = Metadata::default();
        for (key, raw) in attrs {
            let (attr, embed) = typed(raw)
                .or_else(|| Attribute::from_json(raw).map(|a| (a, false)))
                .ok_or_else(|| {
                    format!(
                        "The metadata attribute {key} must be a string, number, boolean or list of strings."
                    )
                })?;
            if embed {
                out.embedded.push(key.clone());
            }
            out.attributes.insert(key.clone(), attr);
        }
        Ok(out)
    }

    pub fn to_json(&self) -> Map<String, Value> {
        self.attributes
            .iter()
            .map(|(k, v)| (k.clone(), v.to_json()))
            .collect()
    }

    /// `key: value` lines of the attributes embedded with the text.
    pub fn embedded_text(&self) -> String {
        self.embedded
            .iter()
            .filter_map(|k| {
                let v = match self.attributes.get(k)? {
                    Attribute::String(s) => s.clone(),
                    Attribute::Number(n) => n.to_string(),
                    Attribute::Bool(b) => b.to_string(),
                    Attribute::StringList(l) => l.join(", "),
                };
                Some(format!("{k}: {v}\n"))
            })
            .collect()
    }
}

/// `{"value": {"type": "STRING", "stringValue": ...}, "includeForEmbedding": true}`.
fn typed(raw: &Value) -> Option<(Attribute, bool)> {
    let v = raw.get("value")?.as_object()?;
    let attr = match v.get("type")?.as_str()? {
        "STRING" => Attribute::String(v.get("stringValue")?.as_str()?.to_owned()),
        "NUMBER" => Attribute::Number(v.get("numberValue")?.as_f64()?),
        "BOOLEAN" => Attribute::Bool(v.get("booleanValue")?.as_bool()?),
        "STRING_LIST" => Attribute::from_json(v.get("stringListValue")?)?,
        _ => return None,
    };
    let embed = raw
        .get("includeForEmbedding")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Some((attr, embed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_typed_attributes() {
        let m = Metadata::parse(
            br#"{"metadataAttributes": {"genre": "jazz", "year": 2019, "live": true,
                "tags": ["a", "b"], "price": 3.5,
                "city": {"value": {"type": "STRING", "stringValue": "Oslo"}, "includeForEmbedding": true}}}"#,
        )
        .unwrap();
        assert_eq!(m.attributes["genre"], Attribute::String("jazz".into()));
        assert_eq!(m.attributes["year"], Attribute::Number(2019.0));
        assert_eq!(m.attributes["live"], Attribute::Bool(true));
        assert_eq!(
            m.attributes["tags"],
            Attribute::StringList(vec!["a".into(), "b".into()])
        );
        assert_eq!(m.embedded, ["city"]);
        assert_eq!(m.embedded_text(), "city: Oslo\n");
        let json = m.to_json();
        assert_eq!(json["year"], serde_json::json!(2019));
        assert_eq!(json["price"], serde_json::json!(3.5));
    }

    #[test]
    fn bad_metadata_says_why() {
        assert!(
            Metadata::parse(b"{")
                .unwrap_err()
                .contains("not valid JSON")
        );
        assert!(
            Metadata::parse(b"{}")
                .unwrap_err()
                .contains("metadataAttributes")
        );
        assert!(
            Metadata::parse(br#"{"metadataAttributes": {"x": {"a": 1}}}"#)
                .unwrap_err()
                .contains("attribute x")
        );
    }
}
