//! StartIngestionJob, GetIngestionJob, ListIngestionJobs, StopIngestionJob, and the jobs
//! themselves: a sync of a data source's S3 objects into the knowledge base's index.
//!
//! A job runs on the store's leases (queue [`INGEST_QUEUE`]) on whichever node claims it.
//! It lists the data source's objects, and in key order indexes the new and changed ones
//! (by ETag, of the document and of its metadata file) and skips the rest; then it removes
//! the documents that are gone. After each document it saves its statistics and the key it
//! reached, so that a job resumed after a crash neither repeats nor recounts a document.

use crate::KnowledgeBases;
use crate::data_sources::{chunking, must_load_ds};
use crate::index::Change;
use crate::knowledge_bases::{must_load, token_target, token_write};
use crate::model::*;
use crate::{ObjectInfo, Objects};
use basalt_core::{AwsError, RequestContext};
use basalt_documents::metadata::{Metadata, SUFFIX};
use basalt_documents::{Chunking, chunk};
use basalt_store::{Claim, StoreError, WriteOp};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::Digest;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// How long a node holds a job between renewals (after every document);
/// `BASALT_KB_LEASE_MS` shortens it (tests of a takeover after a crash).
pub(crate) fn lease_ms() -> i64 {
    static MS: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *MS.get_or_init(|| basalt_store::lease_ms_from_env("BASALT_KB_LEASE_MS", 120_000))
}
/// Failure reasons a job keeps.
const MAX_REASONS: usize = 20;
/// Texts per call to the embedding model.
const EMBED_BATCH: usize = 64;

#[derive(Serialize, Deserialize)]
struct Item {
    account: String,
    region: String,
    kb: String,
    ds: String,
    job: String,
}

fn job_key(scope: &str, kb: &str, ds: &str, job: &str) -> String {
    format!("{}/{job}", ds_key(scope, kb, ds))
}

fn must_load_job(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    input: &Value,
) -> Result<(String, JobRec), AwsError> {
    let kb = str_of(input, "knowledgeBaseId").unwrap_or_default();
    let ds = str_of(input, "dataSourceId").unwrap_or_default();
    must_load(k, ctx, kb)?;
    must_load_ds(k, ctx, kb, ds)?;
    let id = str_of(input, "ingestionJobId").unwrap_or_default();
    let key = job_key(&scope(ctx), kb, ds, id);
    match k.state.get(JOBS, &key)? {
        Some(raw) => Ok((key, load(&raw)?)),
        None => Err(not_found("Ingestion job", id)),
    }
}

fn jobs_of(k: &KnowledgeBases, prefix: &str) -> Result<Vec<JobRec>, AwsError> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let rows = k.state.scan(JOBS, prefix, after.as_deref(), 500)?;
        for (_, raw) in &rows {
            out.push(load(raw)?);
        }
        match rows.last() {
            Some((key, _)) if rows.len() == 500 => after = Some(key.clone()),
            _ => return Ok(out),
        }
    }
}

pub fn start(k: &KnowledgeBases, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let kb = str_of(input, "knowledgeBaseId").unwrap_or_default();
    let ds = str_of(input, "dataSourceId").unwrap_or_default();
    must_load(k, ctx, kb)?;
    if must_load_ds(k, ctx, kb, ds)?.config["type"] == "CUSTOM" {
        return Err(AwsError::validation(
            "A CUSTOM data source has nothing to sync: add its documents with IngestKnowledgeBaseDocuments.",
        ));
    }
    let sc = scope(ctx);
    if let Some(id) = token_target(k, ctx, "job", input)?
        && let Some(raw) = k.state.get(JOBS, &job_key(&sc, kb, ds, &id))?
    {
        return Ok(json!({"ingestionJob": load::<JobRec>(&raw)?.to_json(false)}));
    }
    let prefix = format!("{}/", ds_key(&sc, kb, ds));
    if let Some(running) = jobs_of(k, &prefix)?.into_iter().find(JobRec::is_running) {
        return Err(conflict(format!(
            "Ingestion job {} is already running for data source {ds}; wait for it to finish or stop it.",
            running.id
        )));
    }
    let now = k.now_ms();
    let job = JobRec {
        v: RECORD_VERSION,
        kb: kb.to_owned(),
        ds: ds.to_owned(),
        id: new_id(),
        description: str_of(input, "description").map(str::to_owned),
        status: "STARTING".into(),
        stats: Stats::default(),
        failure_reasons: Vec::new(),
        started_ms: now,
        updated_ms: now,
        cursor: None,
    };
    let key = job_key(&sc, kb, ds, &job.id);
    let item = Item {
        account: ctx.account_id.clone(),
        region: ctx.region.clone(),
        kb: kb.to_owned(),
        ds: ds.to_owned(),
        job: job.id.clone(),
    };
    let mut ops = vec![
        WriteOp::Put {
            table: JOBS.into(),
            key: key.clone(),
            value: dump(&job),
        },
        WriteOp::Enqueue {
            queue: INGEST_QUEUE.into(),
            id: key,
            payload: dump(&item),
            due_ms: now,
        },
    ];
    ops.extend(token_write(ctx, "job", input, &job.id));
    k.state.batch(&ops)?;
    k.wake.notify_one();
    Ok(json!({"ingestionJob": job.to_json(false)}))
}

pub fn get(k: &KnowledgeBases, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let (_, job) = must_load_job(k, ctx, input)?;
    Ok(json!({"ingestionJob": job.to_json(false)}))
}

pub fn list(k: &KnowledgeBases, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let kb = str_of(input, "knowledgeBaseId").unwrap_or_default();
    let ds = str_of(input, "dataSourceId").unwrap_or_default();
    must_load(k, ctx, kb)?;
    must_load_ds(k, ctx, kb, ds)?;
    let mut jobs = jobs_of(k, &format!("{}/", ds_key(&scope(ctx), kb, ds)))?;
    for f in input["filters"].as_array().into_iter().flatten() {
        let values: Vec<&str> = f["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        // STATUS with EQ is the only filter the API defines.
        if f["attribute"] == "STATUS" {
            jobs.retain(|j| values.contains(&j.status.as_str()));
        }
    }
    let by_status = input["sortBy"]["attribute"] == "STATUS";
    let descending = input["sortBy"]["order"] != "ASCENDING";
    jobs.sort_by(|a, b| {
        let o = if by_status {
            a.status
                .cmp(&b.status)
                .then(a.started_ms.cmp(&b.started_ms))
        } else {
            a.started_ms.cmp(&b.started_ms)
        }
        .then(a.id.cmp(&b.id));
        if descending { o.reverse() } else { o }
    });
    let max = input["maxResults"]
        .as_u64()
        .map_or(1000, |n| n as usize)
        .clamp(1, 1000);
    let (page, next) = basalt_store::paging::page_slice(&jobs, str_of(input, "nextToken"), max)?;
    let page: Vec<Value> = page.iter().map(|j| j.to_json(true)).collect();
    let mut resp = json!({"ingestionJobSummaries": page});
    if let Some(next) = next {
        resp["nextToken"] = next.into();
    }
    Ok(resp)
}

pub fn stop(k: &KnowledgeBases, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let (key, mut job) = must_load_job(k, ctx, input)?;
    if !matches!(job.status.as_str(), "STARTING" | "IN_PROGRESS") {
        return Err(conflict(format!(
            "Ingestion job {} is {}; only a running job can be stopped.",
            job.id, job.status
        )));
    }
    job.status = "STOPPING".into();
    job.updated_ms = k.now_ms();
    k.state.put(JOBS, &key, &dump(&job))?;
    Ok(json!({"ingestionJob": job.to_json(false)}))
}

pub fn start_worker(k: Arc<KnowledgeBases>) {
    basalt_store::Worker {
        state: k.state.clone(),
        queue: INGEST_QUEUE,
        lease_ms: lease_ms(),
        batch: 1,
        idle: std::time::Duration::from_secs(2),
        wake: k.wake.clone(),
    }
    .spawn(move |claims| {
        let k = k.clone();
        async move {
            for claim in claims {
                run(&k, claim).await;
            }
        }
    });
}

/// Why a job ends before it finished its documents.
enum Halt {
    /// StopIngestionJob asked for it.
    Stopped,
    /// The job or its knowledge base is gone, or another node holds it now.
    Gone,
    Failed(String),
}

impl From<StoreError> for Halt {
    fn from(e: StoreError) -> Self {
        Halt::Failed(format!("The knowledge base's store failed: {e}"))
    }
}

impl From<AwsError> for Halt {
    fn from(e: AwsError) -> Self {
        // The knowledge base was deleted while the job ran (its index is gone).
        if e.code == "ResourceNotFoundException" {
            return Halt::Gone;
        }
        Halt::Failed(e.message)
    }
}

/// One job of the queue, claimed by this node.
struct Run<'a> {
    k: &'a KnowledgeBases,
    claim: Claim,
    key: String,
    job: JobRec,
}

impl Run<'_> {
    /// Saves the job's progress, unless it was asked to stop or is gone.
    fn save(&mut self) -> Result<(), Halt> {
        let (k, job) = (self.k, &mut self.job);
        job.updated_ms = k.now_ms();
        let saved = basalt_store::save_leased(
            k.state.as_ref(),
            &mut self.claim,
            lease_ms(),
            JOBS,
            &self.key,
            |raw| load::<JobRec>(raw).is_ok_and(|stored| stored.status != "STOPPING"),
            || dump(job),
        )?;
        match saved {
            basalt_store::Saved::Saved => Ok(()),
            basalt_store::Saved::Refused => Err(Halt::Stopped),
            basalt_store::Saved::Gone => Err(Halt::Gone),
        }
    }

    fn fail_document(&mut self, uri: &str, reason: &str) {
        self.job.stats.failed += 1;
        if self.job.failure_reasons.len() < MAX_REASONS {
            self.job
                .failure_reasons
                .push(format!("Encountered error: {reason} [Files: {uri}]"));
        }
    }

    /// Ends the job with `status` and hands the queue item back for good.
    fn finish(mut self, status: &str) {
        self.job.status = status.into();
        self.job.cursor = None;
        self.job.updated_ms = self.k.now_ms();
        let ops = [WriteOp::Put {
            table: JOBS.into(),
            key: self.key.clone(),
            value: dump(&self.job),
        }];
        if let Err(e) = self.k.state.complete(&self.claim, &ops) {
            tracing::warn!(job = %self.job.id, "could not record the end of an ingestion job: {e}");
        }
    }
}

async fn run(k: &KnowledgeBases, claim: Claim) {
    let Ok(item) = serde_json::from_slice::<Item>(&claim.payload) else {
        let _ = k.state.complete(&claim, &[]);
        return;
    };
    let job = match k.state.get(JOBS, &claim.id) {
        Ok(Some(raw)) => match load::<JobRec>(&raw) {
            Ok(j) => j,
            Err(_) => return drop(k.state.complete(&claim, &[])),
        },
        Ok(None) => return drop(k.state.complete(&claim, &[])),
        // The store is unreachable: the lease runs out and the job is tried again.
        Err(_) => return,
    };
    let mut run = Run {
        k,
        key: claim.id.clone(),
        claim,
        job,
    };
    if !run.job.is_running() {
        return drop(k.state.complete(&run.claim, &[]));
    }
    if run.job.status == "STOPPING" {
        return run.finish("STOPPED");
    }
    run.job.status = "IN_PROGRESS".into();
    let ctx = RequestContext::internal(&item.account, &item.region, "");
    match sync(&mut run, &ctx, &item).await {
        Ok(()) => {
            let kb = kb_key(&scope(&ctx), &item.kb);
            let on_s3_vectors = k
                .state
                .get(crate::model::KBS, &kb)
                .ok()
                .flatten()
                .and_then(|raw| load::<crate::model::KbRec>(&raw).ok())
                .is_some_and(|rec| crate::s3_vectors::configuration(&rec.storage).is_some());
            if on_s3_vectors {
                // Complete once the vectors are in the index, as Bedrock reports it; within
                // half the job's lease, which this wait does not renew.
                let limit =
                    std::time::Duration::from_millis((lease_ms() / 2).clamp(1, 60_000) as u64);
                for reason in crate::s3_vectors::settled(k, &kb, limit).await {
                    if run.job.failure_reasons.len() < MAX_REASONS {
                        run.job.failure_reasons.push(format!(
                            "Encountered error: writing vectors to the S3 Vectors index failed: {reason}"
                        ));
                    }
                }
            }
            run.finish("COMPLETE")
        }
        Err(Halt::Stopped) => run.finish("STOPPED"),
        Err(Halt::Gone) => {}
        Err(Halt::Failed(reason)) => {
            run.job.failure_reasons.push(reason);
            run.finish("FAILED")
        }
    }
}

pub(crate) fn doc_hash(uri: &str) -> String {
    hex::encode(&sha2::Sha256::digest(uri.as_bytes())[..8])
}

/// Every object under the data source's prefixes, by key; `None` when the bucket is gone.
fn listing(
    objects: &dyn Objects,
    account: &str,
    bucket: &str,
    prefixes: &[String],
) -> Result<Option<BTreeMap<String, ObjectInfo>>, String> {
    let mut out = BTreeMap::new();
    for prefix in prefixes {
        let mut after: Option<String> = None;
        loop {
            let Some(page) = objects.list(account, bucket, prefix, after.as_deref(), 1000)? else {
                return Ok(None);
            };
            let full = page.len() == 1000;
            after = page.last().map(|o| o.key.clone());
            for o in page {
                out.insert(o.key.clone(), o);
            }
            if !full {
                break;
            }
        }
    }
    Ok(Some(out))
}

async fn sync(run: &mut Run<'_>, ctx: &RequestContext, item: &Item) -> Result<(), Halt> {
    let k = run.k;
    let kb = must_load(k, ctx, &item.kb).map_err(|_| Halt::Gone)?;
    let ds = must_load_ds(k, ctx, &item.kb, &item.ds).map_err(|_| Halt::Gone)?;
    let chunking = chunking(&ds.ingestion)?;
    let bucket = ds
        .bucket()
        .ok_or_else(|| Halt::Failed("The data source has no S3 bucket.".into()))?
        .to_owned();
    let account = ds.owner_account().unwrap_or(&item.account).to_owned();
    let objects = k.objects.clone();
    let prefixes = ds.prefixes();
    let listed = {
        let (account, b) = (account.clone(), bucket.clone());
        tokio::task::spawn_blocking(move || listing(objects.as_ref(), &account, &b, &prefixes))
            .await
            .map_err(|e| Halt::Failed(e.to_string()))?
            .map_err(|e| Halt::Failed(format!("Listing the S3 bucket {bucket} failed: {e}")))?
            .ok_or_else(|| Halt::Failed(format!("The S3 bucket {bucket} does not exist.")))?
    };
    let sc = scope(ctx);
    let ds_prefix = format!("{}/", ds_key(&sc, &item.kb, &item.ds));
    let kb_key = kb_key(&sc, &item.kb);
    // What was indexed before, by source URI.
    let mut indexed: HashMap<String, DocRec> = HashMap::new();
    let mut after: Option<String> = None;
    loop {
        let rows = k.state.scan(DOCS, &ds_prefix, after.as_deref(), 1000)?;
        for (_, raw) in &rows {
            let d: DocRec = load(raw)?;
            indexed.insert(d.uri.clone(), d);
        }
        match rows.last() {
            Some((key, _)) if rows.len() == 1000 => after = Some(key.clone()),
            _ => break,
        }
    }
    run.save()?;
    let documents: Vec<&ObjectInfo> = listed
        .values()
        .filter(|o| !o.key.ends_with(SUFFIX) && !o.key.ends_with('/'))
        .collect();
    let resume_after = run.job.cursor.clone();
    let transform = crate::transform::Transform::of(&ds, &run.job.id);
    for obj in &documents {
        if resume_after
            .as_deref()
            .is_some_and(|c| obj.key.as_str() <= c)
        {
            continue;
        }
        let uri = format!("s3://{bucket}/{}", obj.key);
        let sidecar = listed.get(&format!("{}{SUFFIX}", obj.key));
        run.job.stats.scanned += 1;
        if sidecar.is_some() {
            run.job.stats.metadata_scanned += 1;
        }
        let before = indexed.get(&uri);
        let metadata_etag = sidecar.map(|s| s.etag.clone());
        let content_same = before.is_some_and(|d| d.etag == obj.etag);
        let metadata_same = before.is_some_and(|d| d.metadata_etag == metadata_etag);
        if !(content_same && metadata_same) {
            let doc = Document {
                kb: &kb,
                ds: &ds,
                chunking: &chunking,
                transform: transform.as_ref(),
                account: &account,
                bucket: &bucket,
                key: &obj.key,
                uri: &uri,
                sidecar: sidecar.map(|s| s.key.as_str()),
            };
            match chunks_of(k, ctx, &doc).await {
                Ok(chunks) => {
                    let hash = doc_hash(&uri);
                    let base = format!("{}{hash}", ds_prefix);
                    let mut changes: Vec<Change> = chunks
                        .into_iter()
                        .enumerate()
                        .map(|(n, c)| (format!("{base}/{n:05}"), Some(c)))
                        .collect();
                    let new_count = changes.len() as u32;
                    for n in new_count..before.map_or(0, |d| d.chunks) {
                        changes.push((format!("{base}/{n:05}"), None));
                    }
                    let rec = DocRec {
                        uri: uri.clone(),
                        etag: obj.etag.clone(),
                        metadata_etag,
                        chunks: new_count,
                        indexed_ms: k.now_ms(),
                        status: None,
                        status_reason: None,
                    };
                    let doc_write = WriteOp::Put {
                        table: DOCS.into(),
                        key: format!("{ds_prefix}{uri}"),
                        value: dump(&rec),
                    };
                    k.indexes
                        .commit(k.state.as_ref(), &kb_key, &changes, &[doc_write])?;
                    match before {
                        None => run.job.stats.new_indexed += 1,
                        Some(_) if content_same => run.job.stats.metadata_modified += 1,
                        Some(_) => run.job.stats.modified_indexed += 1,
                    }
                }
                Err(reason) => run.fail_document(&uri, &reason),
            }
        }
        run.job.cursor = Some(obj.key.clone());
        run.save()?;
    }
    // Documents that are no longer in the bucket (or no longer under the prefixes).
    let present: std::collections::HashSet<String> = documents
        .iter()
        .map(|o| format!("s3://{bucket}/{}", o.key))
        .collect();
    for (uri, d) in &indexed {
        if present.contains(uri) {
            continue;
        }
        let base = format!("{ds_prefix}{}", doc_hash(uri));
        let changes: Vec<Change> = (0..d.chunks)
            .map(|n| (format!("{base}/{n:05}"), None))
            .collect();
        let doc_delete = WriteOp::Delete {
            table: DOCS.into(),
            key: format!("{ds_prefix}{uri}"),
        };
        k.indexes
            .commit(k.state.as_ref(), &kb_key, &changes, &[doc_delete])?;
        run.job.stats.deleted += 1;
        run.save()?;
    }
    Ok(())
}

/// A document to index.
struct Document<'a> {
    kb: &'a KbRec,
    ds: &'a DsRec,
    chunking: &'a Chunking,
    transform: Option<&'a crate::transform::Transform>,
    account: &'a str,
    bucket: &'a str,
    key: &'a str,
    uri: &'a str,
    sidecar: Option<&'a str>,
}

/// Reads one document of a sync and its metadata file, and cuts it into embedded chunks;
/// the error is why it failed.
async fn chunks_of(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    doc: &Document<'_>,
) -> Result<Vec<ChunkRec>, String> {
    let read = |key: &str| -> Result<bytes::Bytes, String> {
        k.objects
            .read(doc.account, doc.bucket, key)?
            .ok_or_else(|| "The file was deleted during the sync.".to_owned())
    };
    let bytes = read(doc.key)?;
    let metadata = match doc.sidecar {
        Some(key) => Metadata::parse(&read(key)?)?,
        None => Metadata::default(),
    };
    let target = Target {
        kb: doc.kb,
        ds: &doc.ds.id,
        chunking: doc.chunking,
        transform: doc.transform,
    };
    chunk_document(k, ctx, &target, (doc.key, doc.uri), bytes, &metadata).await
}

/// Where a document's chunks go.
pub(crate) struct Target<'a> {
    pub kb: &'a KbRec,
    pub ds: &'a str,
    pub chunking: &'a Chunking,
    /// The data source's custom transformation, run on the chunks before they are embedded.
    pub transform: Option<&'a crate::transform::Transform>,
}

/// Parses a document (`name` gives its type), cuts it into chunks and embeds them; `uri` is
/// the source the chunks cite. The error is why it failed.
pub(crate) async fn chunk_document(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    target: &Target<'_>,
    (name, uri): (&str, &str),
    bytes: bytes::Bytes,
    metadata: &Metadata,
) -> Result<Vec<ChunkRec>, String> {
    let key = name.to_owned();
    let parsed = tokio::task::spawn_blocking(move || basalt_documents::parse::parse(&key, &bytes))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let model = target.kb.embedding_model();
    let tokens = k.embedder.tokens();
    let text = &parsed.text;
    let chunks = match target.chunking {
        Chunking::Semantic {
            max_tokens,
            buffer_size,
            breakpoint_percentile,
        } => {
            let (sentences, windows) = chunk::semantic_windows(text, *buffer_size);
            let vectors = embed_all(k, ctx, &model, windows)
                .await
                .map_err(|e| e.message)?;
            chunk::semantic(
                text,
                &sentences,
                &vectors,
                tokens.as_ref(),
                *max_tokens,
                *breakpoint_percentile,
            )
        }
        other => other.chunks(text, tokens.as_ref()),
    };
    let attributes = metadata.to_json();
    let hash = doc_hash(uri);
    let mut drafts: Vec<Draft> = chunks
        .iter()
        .map(|c| Draft {
            text: text[c.range.clone()].to_owned(),
            content: (c.context != c.range).then(|| text[c.context.clone()].to_owned()),
            page: parsed.page_at(c.range.start),
            attributes: attributes.clone(),
        })
        .collect();
    if let Some(t) = target.transform {
        let source = crate::transform::Source {
            kb: &target.kb.id,
            ds: target.ds,
            uri,
            name: &hash,
        };
        let given = drafts
            .iter()
            .map(|d| crate::transform::Piece {
                text: d.text.clone(),
                metadata: d.attributes.clone(),
            })
            .collect();
        let transformed = crate::transform::apply(k, ctx, t, &source, &attributes, given).await?;
        // Pages survive a transformation that keeps the chunks one for one.
        let keep_pages = transformed.len() == drafts.len();
        drafts = transformed
            .into_iter()
            .enumerate()
            .map(|(i, p)| Draft {
                text: p.text,
                content: None,
                page: if keep_pages { drafts[i].page } else { None },
                attributes: p.metadata,
            })
            .collect();
    }
    let prefix = metadata.embedded_text();
    let texts: Vec<String> = drafts
        .iter()
        .map(|d| format!("{prefix}{}", d.text))
        .collect();
    let vectors = embed_all(k, ctx, &model, texts)
        .await
        .map_err(|e| e.message)?;
    Ok(drafts
        .into_iter()
        .zip(vectors)
        .enumerate()
        .map(|(n, (d, v))| ChunkRec {
            ds: target.ds.to_owned(),
            uri: uri.to_owned(),
            id: format!("{}:{hash}:{n}", target.ds),
            text: d.text,
            content: d.content,
            page: d.page,
            attributes: d.attributes,
            vector: ChunkRec::encode_vector(&v),
        })
        .collect())
}

/// A chunk before it is embedded.
struct Draft {
    text: String,
    /// What Retrieve returns when it is not `text` (the parent chunk).
    content: Option<String>,
    page: Option<u32>,
    attributes: Map<String, Value>,
}

/// Embeds texts of any length: a text longer than the model's window is embedded window by
/// window and its vector is the normalized mean of theirs, so that no part of a chunk is
/// cut off (a local model reads 256 tokens, Bedrock's 8k).
pub async fn embed_all(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    model: &str,
    texts: Vec<String>,
) -> Result<Vec<Vec<f32>>, AwsError> {
    let tokens = k.embedder.tokens();
    let width = k.embedder.window().saturating_sub(2).max(16);
    let mut pieces: Vec<String> = Vec::new();
    let mut owner: Vec<usize> = Vec::new();
    for (i, t) in texts.iter().enumerate() {
        let spans = tokens.spans(t);
        if spans.len() <= width {
            pieces.push(t.clone());
            owner.push(i);
            continue;
        }
        for group in spans.chunks(width) {
            pieces.push(t[group[0].start..group[group.len() - 1].end].to_owned());
            owner.push(i);
        }
    }
    let mut vectors: Vec<Vec<f32>> = Vec::with_capacity(pieces.len());
    for batch in pieces.chunks(EMBED_BATCH) {
        let (v, _) = k.embedder.embed(ctx, model, batch.to_vec()).await?;
        vectors.extend(v);
    }
    let mut out: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
    for (v, &i) in vectors.iter().zip(&owner) {
        if out[i].is_empty() {
            out[i] = v.clone();
        } else {
            for (a, b) in out[i].iter_mut().zip(v) {
                *a += b;
            }
        }
    }
    for v in &mut out {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        if n > 0.0 {
            v.iter_mut().for_each(|x| *x /= n);
        }
    }
    Ok(out)
}
