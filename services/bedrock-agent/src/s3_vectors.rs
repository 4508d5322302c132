//! Knowledge bases of storage type `S3_VECTORS` keep their vectors in the S3 Vectors index
//! they name, as Bedrock does: an application can read and query them there
//! (`s3vectors` ListVectors, QueryVectors) beside Retrieve.
//!
//! The chunk records stay the source of truth (Retrieve searches them, `index.rs`); the
//! index is a mirror, written through an outbox: every commit of chunks of such a knowledge
//! base enqueues, in the same batch, one item per changed chunk on [`QUEUE`]. The worker
//! reads each chunk as it is when the item is claimed and puts its vector (or deletes it when
//! the chunk is gone) with `s3vectors` PutVectors / DeleteVectors, in-process as the
//! knowledge base's account. A crash between the commit and the write loses nothing: the item
//! is still queued. Two writes of one chunk before the worker comes collapse into one item.
//!
//! Each vector carries what Bedrock stores: the chunk's text under `AMAZON_BEDROCK_TEXT`,
//! its metadata as JSON under `AMAZON_BEDROCK_METADATA` (declare both non-filterable when
//! creating the index, as Bedrock's guide asks: S3 Vectors limits filterable metadata to
//! 2 KB), and each metadata attribute as a key of its own, for QueryVectors filters. The
//! local embedding is zero-padded to the index's dimension (cosine and dot products are
//! unchanged: the embeddings InvokeModel returns for Titan and Cohere are padded alike).
//!
//! A write S3 Vectors refuses (a dimension smaller than the embedding, metadata over its
//! limits, a missing index) is recorded as the chunk's failure; the ingestion job that wrote
//! the chunk waits for the mirror to catch up and reports such failures as its own.

use crate::KnowledgeBases;
use crate::index::Change;
use crate::model::{CHUNKS, ChunkRec, KBS, KbRec, load};
use basalt_core::{AwsError, RequestContext};
use basalt_store::{Claim, StateStore, WriteOp};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Chunks whose vector the S3 Vectors index has yet to get.
pub const QUEUE: &str = "bedrock-agent.s3vectors";
/// Writes S3 Vectors refused, by `{kb_key}/{chunk}`, until an ingestion job reports them.
pub const FAILURES: &str = "bedrock-agent.s3vectors-failures";
/// Tries of a write that fails on S3 Vectors' side (or is throttled) before it is recorded
/// as a failure.
const TRIES: u32 = 5;

/// The index a knowledge base's vectors go to, from its storage configuration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Target {
    pub account: String,
    pub region: String,
    pub kb_key: String,
    /// `indexArn`, or `vectorBucketArn` with `indexName`, as the configuration gives them.
    pub config: Value,
}

impl Target {
    /// The members of an `s3vectors` request that name the index.
    fn index_members(&self) -> Value {
        let c = &self.config;
        if let Some(arn) = c["indexArn"].as_str() {
            return json!({"indexArn": arn});
        }
        let bucket = c["vectorBucketArn"]
            .as_str()
            .and_then(|arn| arn.rsplit_once(":bucket/"))
            .map_or("", |(_, name)| name);
        json!({"vectorBucketName": bucket, "indexName": c["indexName"]})
    }
}

/// The S3 Vectors configuration of a knowledge base whose storage type is `S3_VECTORS`.
pub fn configuration(storage: &Value) -> Option<&Value> {
    (storage["type"].as_str() == Some("S3_VECTORS"))
        .then(|| &storage["s3VectorsConfiguration"])
        .filter(|c| c.is_object())
}

/// The outbox items of `changes` when the knowledge base `kb_key` keeps its vectors in S3
/// Vectors; nothing otherwise.
pub fn outbox(
    state: &dyn StateStore,
    kb_key: &str,
    changes: &[Change],
) -> Result<Vec<WriteOp>, AwsError> {
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    let Some(raw) = state.get(KBS, kb_key)? else {
        return Ok(Vec::new());
    };
    let kb: KbRec = load(&raw)?;
    let Some(config) = configuration(&kb.storage) else {
        return Ok(Vec::new());
    };
    let mut parts = kb_key.splitn(3, '/');
    let (account, region) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let target = Target {
        account: account.to_owned(),
        region: region.to_owned(),
        kb_key: kb_key.to_owned(),
        config: config.clone(),
    };
    let payload = serde_json::to_vec(&target).map_err(|e| AwsError::internal(e.to_string()))?;
    let due_ms = state.now_ms();
    Ok(changes
        .iter()
        .map(|(key, _)| WriteOp::Enqueue {
            queue: QUEUE.into(),
            id: key.clone(),
            payload: payload.clone(),
            due_ms,
        })
        .collect())
}

/// The vector's key in the index: the chunk's key within its knowledge base.
fn vector_key(target: &Target, chunk_key: &str) -> String {
    chunk_key
        .strip_prefix(&target.kb_key)
        .map_or(chunk_key, |k| k.trim_start_matches('/'))
        .to_owned()
}

/// The vector of a chunk as Bedrock writes it, sized to the index.
fn vector_of(target: &Target, chunk_key: &str, rec: &ChunkRec, dimension: usize) -> Value {
    let mut v = rec.decode_vector().unwrap_or_default();
    v.resize(dimension.max(v.len()), 0.0);
    let metadata = rec.metadata();
    let mut m = metadata.clone();
    m.insert(
        "AMAZON_BEDROCK_TEXT".into(),
        rec.content
            .clone()
            .unwrap_or_else(|| rec.text.clone())
            .into(),
    );
    m.insert(
        "AMAZON_BEDROCK_METADATA".into(),
        Value::Object(metadata).to_string().into(),
    );
    json!({"key": vector_key(target, chunk_key), "data": {"float32": v}, "metadata": m})
}

pub fn start_worker(k: Arc<KnowledgeBases>) {
    basalt_store::Worker {
        state: k.state.clone(),
        queue: QUEUE,
        lease_ms: 60_000,
        batch: 64,
        idle: std::time::Duration::from_secs(2),
        wake: k.wake_mirror.clone(),
    }
    .spawn(move |claims| {
        let k = k.clone();
        async move { mirror(&k, claims).await }
    });
}

/// Writes a batch of claimed chunks to their indexes, one PutVectors and one DeleteVectors
/// per index.
async fn mirror(k: &KnowledgeBases, claims: Vec<Claim>) {
    let mut by_target: BTreeMap<String, (Target, Vec<Claim>)> = BTreeMap::new();
    for claim in claims {
        match serde_json::from_slice::<Target>(&claim.payload) {
            Ok(t) => {
                let id = serde_json::to_string(&t).unwrap_or_default();
                by_target
                    .entry(id)
                    .or_insert_with(|| (t, Vec::new()))
                    .1
                    .push(claim);
            }
            Err(_) => drop(k.state.complete(&claim, &[])),
        }
    }
    for (_, (target, claims)) in by_target {
        match write(k, &target, &claims).await {
            Ok(()) => {}
            // S3 Vectors refused the batch: find the chunks it refuses, one by one, so that
            // the others are written.
            Err((_, true)) if claims.len() > 1 => {
                for c in claims {
                    if let Err((e, permanent)) = write(k, &target, std::slice::from_ref(&c)).await {
                        settle(k, &target, &[c], &e, permanent);
                    }
                }
            }
            Err((e, permanent)) => settle(k, &target, &claims, &e, permanent),
        }
    }
}

/// Puts the chunks that exist and deletes the vectors of those that do not; completes every
/// claim on success.
async fn write(
    k: &KnowledgeBases,
    target: &Target,
    claims: &[Claim],
) -> Result<(), (String, bool)> {
    let transient = |e: AwsError| (e.message, false);
    let registry = k.registry().map_err(transient)?;
    let ctx = RequestContext::internal(&target.account, &target.region, "");
    let index = registry
        .call(&ctx, "s3vectors", "GetIndex", target.index_members())
        .await
        .map_err(|e| {
            let permanent = e.status < 500 && e.status != 429;
            (format!("{}: {}", e.code, e.message), permanent)
        })?;
    let dimension = index.body["index"]["dimension"].as_u64().unwrap_or(0) as usize;
    let mut put = Vec::new();
    let mut delete = Vec::new();
    for c in claims {
        match k.state.get(CHUNKS, &c.id) {
            Ok(Some(raw)) => match load::<ChunkRec>(&raw) {
                Ok(rec) => put.push(vector_of(target, &c.id, &rec, dimension)),
                Err(_) => delete.push(vector_key(target, &c.id)),
            },
            Ok(None) => delete.push(vector_key(target, &c.id)),
            Err(e) => return Err((e.to_string(), false)),
        }
    }
    let mut calls = Vec::new();
    // S3 Vectors takes at most 500 vectors per PutVectors and DeleteVectors.
    for chunk in put.chunks(500) {
        let mut input = target.index_members();
        input["vectors"] = Value::Array(chunk.to_vec());
        calls.push(("PutVectors", input));
    }
    for chunk in delete.chunks(500) {
        let mut input = target.index_members();
        input["keys"] = json!(chunk);
        calls.push(("DeleteVectors", input));
    }
    for (op, input) in calls {
        registry
            .call(&ctx, "s3vectors", op, input)
            .await
            .map_err(|e| {
                let permanent = e.status < 500 && e.status != 429;
                (format!("{}: {}", e.code, e.message), permanent)
            })?;
    }
    for c in claims {
        // A failure recorded by an earlier try is stale now.
        let stale = WriteOp::Delete {
            table: FAILURES.into(),
            key: c.id.clone(),
        };
        let _ = k.state.complete(c, &[stale]);
    }
    Ok(())
}

/// A failed write: tried again later, or, when S3 Vectors refused it (or it failed too
/// often), recorded for the ingestion job to report.
fn settle(k: &KnowledgeBases, target: &Target, claims: &[Claim], error: &str, permanent: bool) {
    for c in claims {
        if permanent || c.attempt >= TRIES {
            let failure = WriteOp::Put {
                table: FAILURES.into(),
                key: c.id.clone(),
                value: error.as_bytes().to_vec(),
            };
            let _ = k.state.complete(c, &[failure]);
            tracing::warn!(knowledge_base = %target.kb_key, chunk = %c.id, "S3 Vectors refused a vector: {error}");
        } else {
            let backoff = 500 * i64::from(1u32 << c.attempt.min(6));
            let _ = k.state.release(c, k.now_ms() + backoff);
        }
    }
}

/// Waits (up to `limit`) until the mirror has written every queued chunk, then takes the
/// failures recorded for `kb_key`: the ingestion job reports them.
pub async fn settled(k: &KnowledgeBases, kb_key: &str, limit: std::time::Duration) -> Vec<String> {
    let started = std::time::Instant::now();
    let prefix = format!("{kb_key}/");
    while started.elapsed() < limit {
        k.wake_mirror.notify_one();
        // The queue is shared by every knowledge base: waiting for it to empty waits for
        // others' chunks too, which the limit bounds.
        if k.state.pending(QUEUE).unwrap_or(0) == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let Ok(page) = k.state.scan(FAILURES, &prefix, after.as_deref(), 500) else {
            break;
        };
        for (key, raw) in &page {
            let message = String::from_utf8_lossy(raw).into_owned();
            if !out.contains(&message) {
                out.push(message);
            }
            let _ = k.state.delete(FAILURES, key);
        }
        match page.last() {
            Some((key, _)) if page.len() == 500 => after = Some(key.clone()),
            _ => break,
        }
    }
    out
}
