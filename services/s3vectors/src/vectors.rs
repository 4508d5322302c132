//! PutVectors, GetVectors, ListVectors, DeleteVectors.

use crate::S3Vectors;
use crate::indexes::must_load;
use crate::model::*;
use basalt_core::{AwsError, RequestContext};
use basalt_store::WriteOp;
use basalt_vector::{Index, IndexError};
use serde_json::{Value, json};

/// S3 Vectors' limits on a vector's metadata: all of it, and its filterable part.
const MAX_METADATA_BYTES: usize = 40 * 1024;
const MAX_FILTERABLE_BYTES: usize = 2 * 1024;
const MAX_METADATA_KEYS: usize = 50;

fn vector_key(index_key: &str, key: &str) -> String {
    format!("{index_key}/{key}")
}

/// The index of `index_key` as of now (built from its vectors if this node's copy is stale).
pub fn view(
    s: &S3Vectors,
    index_key: &str,
    rec: &IndexRec,
) -> Result<std::sync::Arc<parking_lot::RwLock<basalt_store::views::View<Option<Index>>>>, AwsError>
{
    s.views.current(s.state.as_ref(), index_key, || {
        let mut index = Index::new(rec.dimension, rec.metric());
        let prefix = format!("{index_key}/");
        let mut after: Option<String> = None;
        loop {
            let page = s.state.scan(VECTORS, &prefix, after.as_deref(), 1000)?;
            for (k, raw) in &page {
                let v: VectorRec = load(raw)?;
                // Vectors were checked when put; one that no longer fits is left out.
                let _ = index.upsert(
                    &k[prefix.len()..],
                    &v.vector(),
                    "",
                    rec.filterable(&v.metadata),
                );
            }
            match page.last() {
                Some((k, _)) if page.len() == 1000 => after = Some(k.clone()),
                _ => return Ok::<_, AwsError>(Some(index)),
            }
        }
    })
}

fn check_key(key: &str) -> Result<(), AwsError> {
    if key.is_empty() || key.len() > 1024 {
        return Err(validation(
            "A vector key must be 1 to 1024 characters long.",
        ));
    }
    Ok(())
}

/// A vector's `data.float32`, checked against the index.
pub fn data_of(rec: &IndexRec, data: &Value, what: &str) -> Result<Vec<f32>, AwsError> {
    let values = data["float32"]
        .as_array()
        .ok_or_else(|| validation(format!("{what} needs data.float32.")))?;
    let v: Vec<f32> = values
        .iter()
        .map(|x| x.as_f64().map(|f| f as f32))
        .collect::<Option<_>>()
        .ok_or_else(|| validation(format!("{what}: every component must be a number.")))?;
    if v.len() != rec.dimension {
        return Err(validation(format!(
            "{what} has dimension {}, but the index has dimension {}.",
            v.len(),
            rec.dimension
        )));
    }
    if v.iter().any(|x| !x.is_finite()) {
        return Err(validation(format!(
            "{what} has a component that is not finite."
        )));
    }
    if rec.metric == "cosine" && v.iter().all(|x| *x == 0.0) {
        return Err(validation(format!(
            "{what} is a zero vector, which has no cosine distance."
        )));
    }
    Ok(v)
}

fn check_metadata(rec: &IndexRec, key: &str, metadata: &Value) -> Result<(), AwsError> {
    if metadata.is_null() {
        return Ok(());
    }
    let Some(m) = metadata.as_object() else {
        return Err(validation(format!(
            "The metadata of vector {key} must be an object."
        )));
    };
    if m.len() > MAX_METADATA_KEYS {
        return Err(validation(format!(
            "The metadata of vector {key} has more than {MAX_METADATA_KEYS} keys."
        )));
    }
    if serde_json::to_vec(metadata).map_or(0, |b| b.len()) > MAX_METADATA_BYTES {
        return Err(validation(format!(
            "The metadata of vector {key} exceeds 40 KB."
        )));
    }
    let filterable = Value::Object(rec.filterable(metadata));
    if serde_json::to_vec(&filterable).map_or(0, |b| b.len()) > MAX_FILTERABLE_BYTES {
        return Err(validation(format!(
            "The filterable metadata of vector {key} exceeds 2 KB; declare large keys non-filterable when creating the index."
        )));
    }
    Ok(())
}

pub fn put(s: &S3Vectors, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let (index_key, rec) = must_load(s, ctx, input)?;
    let items = input["vectors"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if items.is_empty() || items.len() > 500 {
        return Err(validation("PutVectors takes 1 to 500 vectors."));
    }
    let mut ops = Vec::with_capacity(items.len());
    let mut changes = Vec::with_capacity(items.len());
    for item in items {
        let key = item["key"].as_str().unwrap_or_default();
        check_key(key)?;
        let v = data_of(&rec, &item["data"], &format!("Vector {key}"))?;
        let metadata = item.get("metadata").cloned().unwrap_or(Value::Null);
        check_metadata(&rec, key, &metadata)?;
        let filterable = rec.filterable(&metadata);
        ops.push(WriteOp::Put {
            table: VECTORS.into(),
            key: vector_key(&index_key, key),
            value: dump(&VectorRec {
                data: VectorRec::encode(&v),
                metadata,
            }),
        });
        changes.push((key.to_owned(), v, filterable));
    }
    s.views
        .commit(s.state.as_ref(), &index_key, &ops, |index| {
            if let Some(index) = index {
                for (key, v, meta) in changes {
                    let r: Result<(), IndexError> = index.upsert(&key, &v, "", meta);
                    debug_assert!(r.is_ok(), "checked above");
                }
            }
        })?;
    Ok(json!({}))
}

fn keys_of(input: &Value, max: usize) -> Result<Vec<&str>, AwsError> {
    let keys: Vec<&str> = input["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if keys.is_empty() || keys.len() > max {
        return Err(validation(format!("Give 1 to {max} keys.")));
    }
    for k in &keys {
        check_key(k)?;
    }
    Ok(keys)
}

fn output(key: &str, v: &VectorRec, data: bool, metadata: bool) -> Value {
    let mut o = json!({"key": key});
    if data {
        o["data"] = json!({"float32": v.vector()});
    }
    if metadata && !v.metadata.is_null() {
        o["metadata"] = v.metadata.clone();
    }
    o
}

pub fn get(s: &S3Vectors, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let (index_key, _) = must_load(s, ctx, input)?;
    let data = input["returnData"].as_bool().unwrap_or(false);
    let metadata = input["returnMetadata"].as_bool().unwrap_or(false);
    let mut out = Vec::new();
    for key in keys_of(input, 100)? {
        if let Some(raw) = s.state.get(VECTORS, &vector_key(&index_key, key))? {
            out.push(output(key, &load(&raw)?, data, metadata));
        }
    }
    Ok(json!({"vectors": out}))
}

pub fn list(s: &S3Vectors, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let (index_key, _) = must_load(s, ctx, input)?;
    let data = input["returnData"].as_bool().unwrap_or(false);
    let metadata = input["returnMetadata"].as_bool().unwrap_or(false);
    let max = input["maxResults"].as_u64().map_or(500, |n| n as usize);
    let segment = match (
        input["segmentCount"].as_u64(),
        input["segmentIndex"].as_u64(),
    ) {
        (None, None) => None,
        (Some(count), Some(i)) if i < count => Some((count as u32, i as u32)),
        (Some(_), Some(_)) => {
            return Err(validation("segmentIndex must be less than segmentCount."));
        }
        _ => {
            return Err(validation(
                "segmentCount and segmentIndex must be given together.",
            ));
        }
    };
    let prefix = format!("{index_key}/");
    let mut cursor = match input["nextToken"].as_str() {
        Some(t) => Some(
            basalt_core::page_token::decode(t)
                .filter(|p| p.starts_with(&prefix))
                .ok_or_else(|| validation("The nextToken is not valid."))?,
        ),
        None => None,
    };
    let mut out = Vec::new();
    let mut next = None;
    'pages: loop {
        let rows = s.state.scan(VECTORS, &prefix, cursor.as_deref(), 1000)?;
        let full = rows.len() == 1000;
        for (k, raw) in rows {
            let key = &k[prefix.len()..];
            // A segment is the keys whose hash falls in it: segments split the listing into
            // disjoint parts that clients read in parallel.
            if let Some((count, i)) = segment
                && crc32fast::hash(key.as_bytes()) % count != i
            {
                cursor = Some(k);
                continue;
            }
            if out.len() == max {
                next = cursor.as_deref().map(basalt_core::page_token::encode);
                break 'pages;
            }
            out.push(output(key, &load(&raw)?, data, metadata));
            cursor = Some(k);
        }
        if !full {
            break;
        }
    }
    let mut resp = json!({"vectors": out});
    if let Some(n) = next {
        resp["nextToken"] = n.into();
    }
    Ok(resp)
}

pub fn delete(s: &S3Vectors, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let (index_key, _) = must_load(s, ctx, input)?;
    let keys = keys_of(input, 500)?;
    let ops: Vec<WriteOp> = keys
        .iter()
        .map(|k| WriteOp::Delete {
            table: VECTORS.into(),
            key: vector_key(&index_key, k),
        })
        .collect();
    s.views
        .commit(s.state.as_ref(), &index_key, &ops, |index| {
            if let Some(index) = index {
                for k in &keys {
                    index.remove(k);
                }
            }
        })?;
    Ok(json!({}))
}
