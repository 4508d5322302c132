//! Records, tables and names. Keys start with `{account}/{region}/`; an index's vectors share
//! the prefix `{scope}/{bucket}/{index}/`.

use basalt_core::{AwsError, RequestContext};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

pub const BUCKETS: &str = "s3vectors.buckets";
pub const INDEXES: &str = "s3vectors.indexes";
pub const VECTORS: &str = "s3vectors.vectors";
/// Per index: a number every write of its vectors moves.
pub const GENERATIONS: &str = "s3vectors.generations";

pub fn scope(ctx: &RequestContext) -> String {
    format!("{}/{}", ctx.account_id, ctx.region)
}

pub fn secs(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

pub fn validation(message: impl Into<String>) -> AwsError {
    AwsError::validation(message)
}

pub fn not_found(message: impl Into<String>) -> AwsError {
    AwsError::new(404, "NotFoundException", message)
}

pub fn conflict(message: impl Into<String>) -> AwsError {
    AwsError::new(409, "ConflictException", message)
}

/// S3 Vectors' rule for bucket and index names: 3 to 63 lower-case letters, digits, hyphens
/// and dots, starting and ending with a letter or digit.
pub fn check_name(kind: &str, name: &str) -> Result<(), AwsError> {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.';
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if (3..=63).contains(&name.len())
        && name.chars().all(ok_char)
        && edge(name.chars().next())
        && edge(name.chars().last())
    {
        Ok(())
    } else {
        Err(validation(format!(
            "Invalid {kind} name {name:?}: use 3 to 63 lowercase letters, numbers, hyphens and dots, beginning and ending with a letter or number."
        )))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BucketRec {
    pub name: String,
    pub created_ms: i64,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub encryption: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

impl BucketRec {
    pub fn arn(&self, ctx: &RequestContext) -> String {
        format!(
            "arn:aws:s3vectors:{}:{}:bucket/{}",
            ctx.region, ctx.account_id, self.name
        )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IndexRec {
    pub bucket: String,
    pub name: String,
    pub dimension: usize,
    /// `cosine` or `euclidean`.
    pub metric: String,
    pub created_ms: i64,
    #[serde(default)]
    pub non_filterable: Vec<String>,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub encryption: Value,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

impl IndexRec {
    pub fn arn(&self, ctx: &RequestContext) -> String {
        format!(
            "arn:aws:s3vectors:{}:{}:bucket/{}/index/{}",
            ctx.region, ctx.account_id, self.bucket, self.name
        )
    }

    pub fn metric(&self) -> basalt_vector::Metric {
        if self.metric == "euclidean" {
            basalt_vector::Metric::Euclidean
        } else {
            basalt_vector::Metric::Cosine
        }
    }

    /// The metadata a filter sees: the filterable keys only.
    pub fn filterable(&self, metadata: &Value) -> Map<String, Value> {
        metadata
            .as_object()
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| !self.non_filterable.contains(k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VectorRec {
    /// Little-endian `f32`s in base64.
    pub data: String,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub metadata: Value,
}

impl VectorRec {
    pub fn encode(v: &[f32]) -> String {
        basalt_vector::codec::encode(v)
    }

    pub fn vector(&self) -> Vec<f32> {
        basalt_vector::codec::decode(&self.data).unwrap_or_default()
    }
}

pub fn load<T: serde::de::DeserializeOwned>(raw: &[u8]) -> Result<T, AwsError> {
    serde_json::from_slice(raw).map_err(|e| AwsError::internal(format!("corrupt record: {e}")))
}

pub fn dump<T: Serialize>(rec: &T) -> Vec<u8> {
    serde_json::to_vec(rec).unwrap_or_default()
}

pub fn str_of<'a>(input: &'a Value, name: &str) -> Option<&'a str> {
    input.get(name).and_then(Value::as_str)
}

/// The bucket a request names, by `vectorBucketName` or `vectorBucketArn`.
pub fn bucket_named(ctx: &RequestContext, input: &Value) -> Result<String, AwsError> {
    if let Some(n) = str_of(input, "vectorBucketName") {
        return Ok(n.to_owned());
    }
    let arn = str_of(input, "vectorBucketArn")
        .ok_or_else(|| validation("Either vectorBucketName or vectorBucketArn is required."))?;
    arn_tail(ctx, arn)
        .map(str::to_owned)
        .ok_or_else(|| validation(format!("Invalid vector bucket ARN {arn}.")))
}

/// The part of one of this account's S3 Vectors ARNs after `bucket/`.
pub fn arn_tail<'a>(ctx: &RequestContext, arn: &'a str) -> Option<&'a str> {
    arn.strip_prefix(&format!(
        "arn:aws:s3vectors:{}:{}:bucket/",
        ctx.region, ctx.account_id
    ))
}

/// The (bucket, index) a request names, by names or by `indexArn`.
pub fn index_named(ctx: &RequestContext, input: &Value) -> Result<(String, String), AwsError> {
    if let Some(arn) = str_of(input, "indexArn") {
        let tail = arn_tail(ctx, arn).unwrap_or_default();
        return match tail.split_once("/index/") {
            Some((b, i)) if !b.is_empty() && !i.is_empty() => Ok((b.to_owned(), i.to_owned())),
            _ => Err(validation(format!("Invalid index ARN {arn}."))),
        };
    }
    let bucket = bucket_named(ctx, input)?;
    let index = str_of(input, "indexName")
        .ok_or_else(|| validation("Either indexName or indexArn is required."))?;
    Ok((bucket, index.to_owned()))
}
