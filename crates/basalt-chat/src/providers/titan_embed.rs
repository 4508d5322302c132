//! Amazon Titan embeddings: Text G1 (`inputText`), Text V2 (`dimensions`, `normalize`,
//! `embeddingTypes`) and Multimodal G1 (`inputText`, `embeddingConfig`; text only here).

use super::common::{Obj, malformed};
use crate::{EmbedRequest, EmbeddingType};
use basalt_core::AwsError;
use serde_json::{Value, json};

fn input_text(o: &Obj<'_>, required: bool) -> Result<Option<String>, AwsError> {
    let text = if required {
        Some(o.req_str("inputText")?)
    } else {
        o.opt_str("inputText")?
    };
    match text {
        Some("") => Err(malformed("#/inputText: expected minLength: 1, actual: 0")),
        Some(t) => Ok(Some(t.to_owned())),
        None => Ok(None),
    }
}

pub(crate) fn parse_v1(body: &Value) -> Result<EmbedRequest, AwsError> {
    let o = Obj::root(body)?;
    o.only(&["inputText"])?;
    let text = input_text(&o, true)?.unwrap_or_default();
    Ok(EmbedRequest {
        texts: vec![text],
        dimensions: None,
        normalize: true,
        ..EmbedRequest::default()
    })
}

pub(crate) fn parse_v2(body: &Value) -> Result<EmbedRequest, AwsError> {
    let o = Obj::root(body)?;
    o.only(&["inputText", "dimensions", "normalize", "embeddingTypes"])?;
    let text = input_text(&o, true)?.unwrap_or_default();
    let dimensions = match o.opt_int("dimensions", i64::MIN, i64::MAX)? {
        None => None,
        Some(d @ (256 | 512 | 1024)) => Some(d as usize),
        Some(d) => {
            return Err(malformed(format!(
                "#/dimensions: {d} is not a valid enum value"
            )));
        }
    };
    let mut types = Vec::new();
    for (i, t) in o.opt_str_list("embeddingTypes", 2)?.iter().enumerate() {
        types.push(match t.as_str() {
            "float" => EmbeddingType::Float,
            "binary" => EmbeddingType::Binary,
            other => {
                return Err(malformed(format!(
                    "#/embeddingTypes/{i}: {other} is not a valid enum value"
                )));
            }
        });
    }
    Ok(EmbedRequest {
        texts: vec![text],
        dimensions,
        normalize: o.opt_bool("normalize")?.unwrap_or(true),
        embedding_types: types,
        input_type: None,
    })
}

pub(crate) fn parse_image(body: &Value) -> Result<EmbedRequest, AwsError> {
    let o = Obj::root(body)?;
    o.only(&["inputText", "inputImage", "embeddingConfig"])?;
    if o.has("inputImage") {
        return Err(AwsError::validation(
            "inputImage is not supported: the local embedding model embeds text only. Send inputText.",
        ));
    }
    let text = input_text(&o, false)?
        .ok_or_else(|| AwsError::validation("Malformed input request: at least one of inputText or inputImage is required, please reformat your input and try again."))?;
    let dimensions = match o.opt_obj("embeddingConfig")? {
        None => None,
        Some(cfg) => match cfg.opt_int("outputEmbeddingLength", i64::MIN, i64::MAX)? {
            None => None,
            Some(d @ (256 | 384 | 1024)) => Some(d as usize),
            Some(d) => {
                return Err(malformed(format!(
                    "#/embeddingConfig/outputEmbeddingLength: {d} is not a valid enum value"
                )));
            }
        },
    };
    Ok(EmbedRequest {
        texts: vec![text],
        dimensions,
        normalize: true,
        ..EmbedRequest::default()
    })
}

pub(crate) fn response_v1(vectors: &[Vec<f32>], input_tokens: u32) -> Value {
    json!({"embedding": vectors.first().cloned().unwrap_or_default(), "inputTextTokenCount": input_tokens})
}

pub(crate) fn response_v2(req: &EmbedRequest, vectors: &[Vec<f32>], input_tokens: u32) -> Value {
    let v = vectors.first().cloned().unwrap_or_default();
    let wants = |t| req.embedding_types.is_empty() || req.embedding_types.contains(&t);
    let mut by_type = serde_json::Map::new();
    let mut out = serde_json::Map::new();
    if wants(EmbeddingType::Float) {
        out.insert("embedding".to_owned(), json!(v));
        by_type.insert("float".to_owned(), json!(v));
    }
    if req.embedding_types.contains(&EmbeddingType::Binary) {
        let bits: Vec<u8> = v.iter().map(|x| u8::from(*x > 0.0)).collect();
        by_type.insert("binary".to_owned(), json!(bits));
    }
    out.insert("embeddingsByType".to_owned(), Value::Object(by_type));
    out.insert("inputTextTokenCount".to_owned(), json!(input_tokens));
    Value::Object(out)
}
