//! Cohere Embed (v3 English / multilingual, v4): `texts` + `input_type`, answered with
//! `embeddings` (floats) or embeddings by type.

use super::common::{Obj, malformed};
use crate::{EmbedInputType, EmbedRequest, EmbeddingType};
use basalt_core::AwsError;
use serde_json::{Map, Value, json};

pub(crate) fn parse(body: &Value) -> Result<EmbedRequest, AwsError> {
    let o = Obj::root(body)?;
    if o.has("images") || o.has("inputs") {
        return Err(AwsError::validation(
            "images are not supported: the local embedding model embeds text only. Send texts.",
        ));
    }
    let texts = o.opt_str_list("texts", 96)?;
    if !o.has("texts") {
        return Err(malformed("#: required key [texts] not found"));
    }
    let input_type = match o.req_str("input_type")? {
        "search_document" => EmbedInputType::SearchDocument,
        "search_query" => EmbedInputType::SearchQuery,
        "classification" => EmbedInputType::Classification,
        "clustering" => EmbedInputType::Clustering,
        other => {
            return Err(malformed(format!(
                "#/input_type: {other} is not a valid enum value"
            )));
        }
    };
    if let Some(t) = o
        .opt_str("truncate")?
        .filter(|t| !["NONE", "START", "END", "LEFT", "RIGHT"].contains(t))
    {
        return Err(malformed(format!(
            "#/truncate: {t} is not a valid enum value"
        )));
    }
    let mut types = Vec::new();
    for (i, t) in o.opt_str_list("embedding_types", 5)?.iter().enumerate() {
        types.push(match t.as_str() {
            "float" => EmbeddingType::Float,
            "int8" => EmbeddingType::Int8,
            "uint8" => EmbeddingType::Uint8,
            "binary" => EmbeddingType::Binary,
            "ubinary" => EmbeddingType::Ubinary,
            other => {
                return Err(malformed(format!(
                    "#/embedding_types/{i}: {other} is not a valid enum value"
                )));
            }
        });
    }
    let dimensions = match o.opt_int("output_dimension", i64::MIN, i64::MAX)? {
        None => None,
        Some(d @ (256 | 512 | 1024 | 1536)) => Some(d as usize),
        Some(d) => {
            return Err(malformed(format!(
                "#/output_dimension: {d} is not a valid enum value"
            )));
        }
    };
    Ok(EmbedRequest {
        texts,
        dimensions,
        normalize: true,
        embedding_types: types,
        input_type: Some(input_type),
    })
}

fn max_abs(v: &[f32]) -> f32 {
    v.iter()
        .fold(0.0_f32, |m, x| m.max(x.abs()))
        .max(f32::MIN_POSITIVE)
}

fn int8(v: &[f32]) -> Vec<i8> {
    let m = max_abs(v);
    v.iter()
        .map(|x| (x / m * 127.0).round().clamp(-128.0, 127.0) as i8)
        .collect()
}

fn uint8(v: &[f32]) -> Vec<u8> {
    let m = max_abs(v);
    v.iter()
        .map(|x| ((x / m + 1.0) * 127.5).round().clamp(0.0, 255.0) as u8)
        .collect()
}

/// Sign bits packed 8 per byte, most significant first.
fn packed(v: &[f32]) -> Vec<u8> {
    v.chunks(8)
        .map(|c| {
            c.iter()
                .enumerate()
                .fold(0u8, |b, (i, x)| if *x > 0.0 { b | (0x80 >> i) } else { b })
        })
        .collect()
}

pub(crate) fn response(req: &EmbedRequest, vectors: &[Vec<f32>]) -> Value {
    let id = super::common::uuid();
    if req.embedding_types.is_empty() {
        return json!({"id": id, "embeddings": vectors, "texts": req.texts, "response_type": "embeddings_floats"});
    }
    let mut by_type = Map::new();
    for t in &req.embedding_types {
        let (name, data): (&str, Vec<Value>) = match t {
            EmbeddingType::Float => ("float", vectors.iter().map(|v| json!(v)).collect()),
            EmbeddingType::Int8 => ("int8", vectors.iter().map(|v| json!(int8(v))).collect()),
            EmbeddingType::Uint8 => ("uint8", vectors.iter().map(|v| json!(uint8(v))).collect()),
            EmbeddingType::Binary => (
                "binary",
                vectors
                    .iter()
                    .map(|v| json!(packed(v).iter().map(|b| *b as i8).collect::<Vec<i8>>()))
                    .collect(),
            ),
            EmbeddingType::Ubinary => (
                "ubinary",
                vectors.iter().map(|v| json!(packed(v))).collect(),
            ),
        };
        by_type.insert(name.to_owned(), Value::Array(data));
    }
    json!({"id": id, "embeddings": by_type, "texts": req.texts, "response_type": "embeddings_by_type"})
}
