//! QueryVectors: the `topK` vectors nearest a query vector among those whose filterable
//! metadata passes the filter.

use crate::S3Vectors;
use crate::indexes::must_load;
use crate::model::*;
use crate::vectors::{data_of, view};
use basalt_core::{AwsError, RequestContext};
use basalt_vector::Filter;
use serde_json::{Value, json};

/// The most results one query returns.
const MAX_TOP_K: u64 = 100;

pub fn query(s: &S3Vectors, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let (index_key, rec) = must_load(s, ctx, input)?;
    let top_k = input["topK"].as_u64().unwrap_or(0);
    if !(1..=MAX_TOP_K).contains(&top_k) {
        return Err(validation(format!(
            "topK must be between 1 and {MAX_TOP_K}."
        )));
    }
    if input["queryTexts"].is_array() {
        return Err(validation(
            "Full-text queries are not supported by Basalt yet.",
        ));
    }
    let q = data_of(&rec, &input["queryVector"], "The query vector")?;
    let filter = match input.get("filter") {
        Some(f) if !f.is_null() => Some(Filter::from_s3vectors(f).map_err(|e| validation(e.0))?),
        _ => None,
    };
    let with_distance = input["returnDistance"].as_bool().unwrap_or(false);
    let with_metadata = input["returnMetadata"].as_bool().unwrap_or(false);
    let loaded = view(s, &index_key, &rec)?;
    let hits = {
        let v = loaded.read();
        match &v.value {
            Some(index) => index
                .nearest(&q, top_k as usize, filter.as_ref())
                .map_err(|e| validation(e.to_string()))?,
            None => Vec::new(),
        }
    };
    let mut out = Vec::with_capacity(hits.len());
    for h in hits {
        let mut o = json!({"key": h.key});
        if with_distance {
            o["distance"] = f64::from(h.distance).into();
        }
        if with_metadata
            && let Some(raw) = s.state.get(VECTORS, &format!("{index_key}/{}", h.key))?
        {
            let v: VectorRec = load(&raw)?;
            if !v.metadata.is_null() {
                o["metadata"] = v.metadata;
            }
        }
        out.push(o);
    }
    Ok(json!({"vectors": out, "distanceMetric": rec.metric}))
}
