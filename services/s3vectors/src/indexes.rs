//! CreateIndex, GetIndex, ListIndexes, DeleteIndex.

use crate::S3Vectors;
use crate::buckets::{bucket_key, must_load as must_load_bucket, page, tags_in};
use crate::model::*;
use basalt_core::{AwsError, RequestContext};
use basalt_store::WriteOp;
use serde_json::{Value, json};

/// S3 Vectors' quota of indexes per vector bucket.
const MAX_INDEXES: usize = 10_000;
/// Non-filterable metadata keys an index may declare.
const MAX_NON_FILTERABLE: usize = 10;

pub fn index_key(ctx: &RequestContext, bucket: &str, index: &str) -> String {
    format!("{}/{index}", bucket_key(ctx, bucket))
}

pub fn must_load(
    s: &S3Vectors,
    ctx: &RequestContext,
    input: &Value,
) -> Result<(String, IndexRec), AwsError> {
    let (bucket, index) = index_named(ctx, input)?;
    must_load_bucket(s, ctx, &bucket)?;
    let key = index_key(ctx, &bucket, &index);
    match s.state.get(INDEXES, &key)? {
        Some(raw) => Ok((key, load(&raw)?)),
        None => Err(not_found("The specified index could not be found")),
    }
}

pub fn create(s: &S3Vectors, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let bucket = bucket_named(ctx, input)?;
    must_load_bucket(s, ctx, &bucket)?;
    let name = str_of(input, "indexName").unwrap_or_default();
    check_name("vector index", name)?;
    let dimension = input["dimension"].as_u64().unwrap_or(0) as usize;
    if !(1..=4096).contains(&dimension) {
        return Err(validation("The dimension must be between 1 and 4096."));
    }
    let metric = str_of(input, "distanceMetric").unwrap_or_default();
    if metric != "cosine" && metric != "euclidean" {
        return Err(validation(
            "The distance metric must be cosine or euclidean.",
        ));
    }
    if str_of(input, "dataType") != Some("float32") {
        return Err(validation("The data type must be float32."));
    }
    let config = &input["metadataConfiguration"];
    if config["textSearchConfigurations"].is_array() {
        return Err(validation(
            "Full-text search configurations are not supported by Basalt yet.",
        ));
    }
    let non_filterable: Vec<String> = config["nonFilterableMetadataKeys"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|k| k.as_str().map(str::to_owned))
        .collect();
    if non_filterable.len() > MAX_NON_FILTERABLE {
        return Err(validation(format!(
            "An index can have at most {MAX_NON_FILTERABLE} non-filterable metadata keys."
        )));
    }
    let base = format!("{}/", bucket_key(ctx, &bucket));
    if s.state.scan(INDEXES, &base, None, MAX_INDEXES)?.len() >= MAX_INDEXES {
        return Err(AwsError::new(
            402,
            "ServiceQuotaExceededException",
            "The vector bucket has the most indexes S3 Vectors allows.",
        ));
    }
    let rec = IndexRec {
        bucket: bucket.clone(),
        name: name.to_owned(),
        dimension,
        metric: metric.to_owned(),
        created_ms: s.now_ms(),
        non_filterable,
        encryption: input
            .get("encryptionConfiguration")
            .filter(|e| e.is_object())
            .cloned()
            .unwrap_or(Value::Null),
        tags: tags_in(input),
    };
    let key = index_key(ctx, &bucket, name);
    s.state
        .batch(&[
            WriteOp::Check {
                table: INDEXES.into(),
                key: key.clone(),
                expected: None,
            },
            WriteOp::Put {
                table: INDEXES.into(),
                key,
                value: dump(&rec),
            },
        ])
        .map_err(|e| match e {
            basalt_store::StoreError::Conflict => conflict(format!(
                "A vector index named {name} already exists in this vector bucket."
            )),
            e => e.into(),
        })?;
    Ok(json!({"indexArn": rec.arn(ctx)}))
}

fn describe(ctx: &RequestContext, rec: &IndexRec) -> Value {
    let mut d = json!({
        "vectorBucketName": rec.bucket,
        "indexName": rec.name,
        "indexArn": rec.arn(ctx),
        "creationTime": secs(rec.created_ms),
        "dataType": "float32",
        "dimension": rec.dimension,
        "distanceMetric": rec.metric,
    });
    if !rec.non_filterable.is_empty() {
        d["metadataConfiguration"] = json!({"nonFilterableMetadataKeys": rec.non_filterable});
    }
    if !rec.encryption.is_null() {
        d["encryptionConfiguration"] = rec.encryption.clone();
    }
    d
}

pub fn get(s: &S3Vectors, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let (_, rec) = must_load(s, ctx, input)?;
    Ok(json!({"index": describe(ctx, &rec)}))
}

pub fn list(s: &S3Vectors, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let bucket = bucket_named(ctx, input)?;
    must_load_bucket(s, ctx, &bucket)?;
    let base = format!("{}/", bucket_key(ctx, &bucket));
    let basalt_store::paging::ScanPage { rows, next } = page(s, INDEXES, &base, input, 500)?;
    let mut out = Vec::new();
    for (_, raw) in rows {
        let i: IndexRec = load(&raw)?;
        out.push(json!({
            "vectorBucketName": i.bucket,
            "indexName": i.name,
            "indexArn": i.arn(ctx),
            "creationTime": secs(i.created_ms),
        }));
    }
    let mut resp = json!({"indexes": out});
    if let Some(n) = next {
        resp["nextToken"] = n.into();
    }
    Ok(resp)
}

pub fn delete(s: &S3Vectors, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let (key, _) = must_load(s, ctx, input)?;
    // The record first: from then on the index is gone, whatever remains of its vectors.
    s.state.delete(INDEXES, &key)?;
    let prefix = format!("{key}/");
    loop {
        let rows = s.state.scan(VECTORS, &prefix, None, 500)?;
        if rows.is_empty() {
            break;
        }
        let ops: Vec<WriteOp> = rows
            .into_iter()
            .map(|(k, _)| WriteOp::Delete {
                table: VECTORS.into(),
                key: k,
            })
            .collect();
        s.state.batch(&ops)?;
    }
    // The generation record stays: an index created again under this name continues its
    // numbering, so no node mistakes its copy of the old index for the new one.
    s.views.forget(&key);
    Ok(json!({}))
}
