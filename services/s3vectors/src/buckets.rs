//! CreateVectorBucket, GetVectorBucket, ListVectorBuckets, DeleteVectorBucket, the bucket
//! policy, and the tags of buckets and indexes.

use crate::S3Vectors;
use crate::model::*;
use basalt_core::{AwsError, RequestContext};
use basalt_store::WriteOp;
use serde_json::{Map, Value, json};

/// S3 Vectors' quota of vector buckets per account and region.
const MAX_BUCKETS: usize = 10_000;

pub fn bucket_key(ctx: &RequestContext, name: &str) -> String {
    format!("{}/{name}", scope(ctx))
}

pub fn must_load(s: &S3Vectors, ctx: &RequestContext, name: &str) -> Result<BucketRec, AwsError> {
    match s.state.get(BUCKETS, &bucket_key(ctx, name))? {
        Some(raw) => load(&raw),
        None => Err(not_found("The specified vector bucket could not be found")),
    }
}

fn encryption(input: &Value) -> Value {
    match input.get("encryptionConfiguration") {
        Some(e) if e.is_object() => e.clone(),
        _ => json!({"sseType": "AES256"}),
    }
}

pub fn create(s: &S3Vectors, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let name = str_of(input, "vectorBucketName").unwrap_or_default();
    check_name("vector bucket", name)?;
    if s.state
        .scan(BUCKETS, &format!("{}/", scope(ctx)), None, MAX_BUCKETS)?
        .len()
        >= MAX_BUCKETS
    {
        return Err(AwsError::new(
            402,
            "ServiceQuotaExceededException",
            "The vector bucket quota of this account and region is reached.",
        ));
    }
    let rec = BucketRec {
        name: name.to_owned(),
        created_ms: s.now_ms(),
        encryption: encryption(input),
        policy: None,
        tags: tags_in(input),
    };
    let key = bucket_key(ctx, name);
    s.state
        .batch(&[
            WriteOp::Check {
                table: BUCKETS.into(),
                key: key.clone(),
                expected: None,
            },
            WriteOp::Put {
                table: BUCKETS.into(),
                key,
                value: dump(&rec),
            },
        ])
        .map_err(|e| match e {
            basalt_store::StoreError::Conflict => {
                conflict(format!("A vector bucket named {name} already exists."))
            }
            e => e.into(),
        })?;
    Ok(json!({"vectorBucketArn": rec.arn(ctx)}))
}

pub fn get(s: &S3Vectors, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let rec = must_load(s, ctx, &bucket_named(ctx, input)?)?;
    Ok(json!({"vectorBucket": {
        "vectorBucketName": rec.name,
        "vectorBucketArn": rec.arn(ctx),
        "creationTime": secs(rec.created_ms),
        "encryptionConfiguration": rec.encryption,
    }}))
}

/// A page of `table` under `{base}{prefix}` (the request's `prefix` filter), from
/// `nextToken`.
pub fn page(
    s: &S3Vectors,
    table: &str,
    base: &str,
    input: &Value,
    default_max: usize,
) -> Result<basalt_store::paging::ScanPage, AwsError> {
    let max = input["maxResults"]
        .as_u64()
        .map_or(default_max, |n| n as usize);
    let prefix = format!("{base}{}", str_of(input, "prefix").unwrap_or_default());
    // A token holds a key under the first page's prefix, which the client sends again.
    let token = str_of(input, "nextToken");
    basalt_store::paging::page(s.state.as_ref(), table, &prefix, token, max)
}

pub fn list(s: &S3Vectors, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let basalt_store::paging::ScanPage { rows, next } =
        page(s, BUCKETS, &format!("{}/", scope(ctx)), input, 500)?;
    let mut out = Vec::new();
    for (_, raw) in rows {
        let b: BucketRec = load(&raw)?;
        out.push(json!({
            "vectorBucketName": b.name,
            "vectorBucketArn": b.arn(ctx),
            "creationTime": secs(b.created_ms),
        }));
    }
    let mut resp = json!({"vectorBuckets": out});
    if let Some(n) = next {
        resp["nextToken"] = n.into();
    }
    Ok(resp)
}

pub fn delete(s: &S3Vectors, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let name = bucket_named(ctx, input)?;
    must_load(s, ctx, &name)?;
    let key = bucket_key(ctx, &name);
    if !s
        .state
        .scan(INDEXES, &format!("{key}/"), None, 1)?
        .is_empty()
    {
        return Err(conflict(
            "The vector bucket is not empty: delete its vector indexes first.",
        ));
    }
    s.state.delete(BUCKETS, &key)?;
    Ok(json!({}))
}

fn save(s: &S3Vectors, ctx: &RequestContext, rec: &BucketRec) -> Result<(), AwsError> {
    s.state
        .put(BUCKETS, &bucket_key(ctx, &rec.name), &dump(rec))?;
    Ok(())
}

pub fn put_policy(s: &S3Vectors, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let mut rec = must_load(s, ctx, &bucket_named(ctx, input)?)?;
    let policy = str_of(input, "policy").unwrap_or_default();
    if serde_json::from_str::<Value>(policy).map_or(true, |v| !v.is_object()) {
        return Err(validation(
            "The policy is not a valid JSON policy document.",
        ));
    }
    rec.policy = Some(policy.to_owned());
    save(s, ctx, &rec)?;
    Ok(json!({}))
}

pub fn get_policy(s: &S3Vectors, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let rec = must_load(s, ctx, &bucket_named(ctx, input)?)?;
    match rec.policy {
        Some(p) => Ok(json!({"policy": p})),
        None => Err(not_found("The vector bucket has no policy.")),
    }
}

pub fn delete_policy(
    s: &S3Vectors,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let mut rec = must_load(s, ctx, &bucket_named(ctx, input)?)?;
    rec.policy = None;
    save(s, ctx, &rec)?;
    Ok(json!({}))
}

pub fn tags_in(input: &Value) -> std::collections::BTreeMap<String, String> {
    input["tags"]
        .as_object()
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// The tags of the bucket or index an ARN names, and where to write them back.
fn tagged(
    s: &S3Vectors,
    ctx: &RequestContext,
    input: &Value,
) -> Result<(String, &'static str, Map<String, Value>), AwsError> {
    let arn = str_of(input, "resourceArn").unwrap_or_default();
    let tail = arn_tail(ctx, arn).ok_or_else(|| not_found(format!("Resource {arn} not found.")))?;
    let (table, key) = match tail.split_once("/index/") {
        Some((b, i)) => (INDEXES, format!("{}/{b}/{i}", scope(ctx))),
        None => (BUCKETS, bucket_key(ctx, tail)),
    };
    let raw = s
        .state
        .get(table, &key)?
        .ok_or_else(|| not_found(format!("Resource {arn} not found.")))?;
    let v: Value = load(&raw)?;
    Ok((key, table, v.as_object().cloned().unwrap_or_default()))
}

fn tags_of(rec: &Map<String, Value>) -> Map<String, Value> {
    rec.get("tags")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

pub fn tag(s: &S3Vectors, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let (key, table, mut rec) = tagged(s, ctx, input)?;
    let mut tags = tags_of(&rec);
    for (k, v) in tags_in(input) {
        tags.insert(k, v.into());
    }
    if tags.len() > 50 {
        return Err(validation("A resource can have at most 50 tags."));
    }
    rec.insert("tags".into(), tags.into());
    s.state.put(table, &key, &dump(&rec))?;
    Ok(json!({}))
}

pub fn untag(s: &S3Vectors, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let (key, table, mut rec) = tagged(s, ctx, input)?;
    let mut tags = tags_of(&rec);
    for k in input["tagKeys"].as_array().into_iter().flatten() {
        if let Some(k) = k.as_str() {
            tags.remove(k);
        }
    }
    rec.insert("tags".into(), tags.into());
    s.state.put(table, &key, &dump(&rec))?;
    Ok(json!({}))
}

pub fn list_tags(s: &S3Vectors, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let (_, _, rec) = tagged(s, ctx, input)?;
    Ok(json!({"tags": tags_of(&rec)}))
}
