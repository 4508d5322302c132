//! Direct ingestion: IngestKnowledgeBaseDocuments, GetKnowledgeBaseDocuments,
//! ListKnowledgeBaseDocuments, DeleteKnowledgeBaseDocuments.
//!
//! Documents are S3 objects (in an S3 data source) or custom documents given inline or by
//! S3 location (in a CUSTOM data source), with metadata inline or from an S3 file. A request
//! records each document as STARTING and queues it ([`DOCUMENTS_QUEUE`]); a node indexes it
//! as a sync does, and its record says INDEXED or FAILED with the reason.

use crate::KnowledgeBases;
use crate::data_sources::{chunking, must_load_ds};
use crate::generate::extension_of;
use crate::index::Change;
use crate::ingestion::{Target, chunk_document, doc_hash};
use crate::knowledge_bases::{must_load, page};
use crate::model::*;
use basalt_core::{AwsError, RequestContext};
use basalt_documents::metadata::{Attribute, Metadata};
use basalt_store::{Claim, WriteOp};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;

pub const DOCUMENTS_QUEUE: &str = "bedrock-agent.documents";
/// Documents one request may carry (Bedrock's limit).
const MAX_DOCUMENTS: usize = 25;

#[derive(Serialize, Deserialize)]
struct Item {
    account: String,
    region: String,
    kb: String,
    ds: String,
    uri: String,
    /// The `KnowledgeBaseDocument` as requested.
    document: Value,
}

fn doc_key(sc: &str, kb: &str, ds: &str, uri: &str) -> String {
    format!("{}/{uri}", ds_key(sc, kb, ds))
}

/// The source URI a document or identifier names, checked against the data source's type.
fn uri_of(ds: &DsRec, content: &Value) -> Result<String, AwsError> {
    let source_type = ds.config["type"].as_str().unwrap_or_default();
    match content["dataSourceType"].as_str() {
        Some("S3") if source_type == "S3" => {
            let uri = content["s3"]["s3Location"]["uri"]
                .as_str()
                .or(content["s3"]["uri"].as_str())
                .unwrap_or_default();
            let bucket = ds.bucket().unwrap_or_default();
            match uri.strip_prefix(&format!("s3://{bucket}/")) {
                Some(key) if !key.is_empty() => Ok(uri.to_owned()),
                _ => Err(AwsError::validation(format!(
                    "The document {uri} is not an object of the data source's bucket {bucket}."
                ))),
            }
        }
        Some("CUSTOM") if source_type == "CUSTOM" => {
            let id = content["custom"]["customDocumentIdentifier"]["id"]
                .as_str()
                .or(content["custom"]["id"].as_str())
                .unwrap_or_default();
            if id.is_empty() {
                return Err(AwsError::validation("A custom document needs an id."));
            }
            Ok(custom_uri(id))
        }
        Some(t) => Err(AwsError::validation(format!(
            "A document of type {t} cannot go into a data source of type {source_type}."
        ))),
        None => Err(AwsError::validation("dataSourceType is required.")),
    }
}

fn detail(kb: &str, ds: &str, uri: &str, d: Option<&DocRec>) -> Value {
    let mut v = json!({
        "knowledgeBaseId": kb,
        "dataSourceId": ds,
        "identifier": identifier(uri),
    });
    match d {
        None => v["status"] = "NOT_FOUND".into(),
        Some(d) => {
            v["status"] = d.status.clone().unwrap_or_else(|| "INDEXED".into()).into();
            if let Some(r) = &d.status_reason {
                v["statusReason"] = r.clone().into();
            }
            v["updatedAt"] = secs(d.indexed_ms).into();
        }
    }
    v
}

fn sources(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    input: &Value,
) -> Result<(String, DsRec), AwsError> {
    let kb = str_of(input, "knowledgeBaseId").unwrap_or_default();
    must_load(k, ctx, kb)?;
    let ds = must_load_ds(
        k,
        ctx,
        kb,
        str_of(input, "dataSourceId").unwrap_or_default(),
    )?;
    Ok((kb.to_owned(), ds))
}

pub fn ingest(k: &KnowledgeBases, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let (kb, ds) = sources(k, ctx, input)?;
    let docs = input["documents"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if docs.is_empty() || docs.len() > MAX_DOCUMENTS {
        return Err(AwsError::validation(format!(
            "IngestKnowledgeBaseDocuments takes 1 to {MAX_DOCUMENTS} documents."
        )));
    }
    let sc = scope(ctx);
    let now = k.now_ms();
    let mut ops = Vec::new();
    let mut out = Vec::new();
    for doc in docs {
        let uri = uri_of(&ds, &doc["content"])?;
        let key = doc_key(&sc, &kb, &ds.id, &uri);
        // A document ingested again keeps its chunk count, so that its old chunks are
        // replaced, not left behind.
        let before: Option<DocRec> = match k.state.get(DOCS, &key)? {
            Some(raw) => Some(load(&raw)?),
            None => None,
        };
        let rec = DocRec {
            uri: uri.clone(),
            etag: String::new(),
            metadata_etag: None,
            chunks: before.map_or(0, |d| d.chunks),
            indexed_ms: now,
            status: Some("STARTING".into()),
            status_reason: None,
        };
        ops.push(WriteOp::Put {
            table: DOCS.into(),
            key: key.clone(),
            value: dump(&rec),
        });
        ops.push(WriteOp::Enqueue {
            queue: DOCUMENTS_QUEUE.into(),
            id: key,
            payload: dump(&Item {
                account: ctx.account_id.clone(),
                region: ctx.region.clone(),
                kb: kb.clone(),
                ds: ds.id.clone(),
                uri: uri.clone(),
                document: doc.clone(),
            }),
            due_ms: now,
        });
        out.push(detail(&kb, &ds.id, &uri, Some(&rec)));
    }
    k.state.batch(&ops)?;
    k.wake_documents.notify_one();
    Ok(json!({"documentDetails": out}))
}

fn identifiers(ds: &DsRec, input: &Value) -> Result<Vec<String>, AwsError> {
    let ids = input["documentIdentifiers"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if ids.is_empty() || ids.len() > MAX_DOCUMENTS {
        return Err(AwsError::validation(format!(
            "Give 1 to {MAX_DOCUMENTS} document identifiers."
        )));
    }
    // An identifier names a custom document by `custom.id` and an S3 one by `s3.uri`, which
    // `uri_of` reads as well as a document's content.
    ids.iter().map(|id| uri_of(ds, id)).collect()
}

pub fn get(k: &KnowledgeBases, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let (kb, ds) = sources(k, ctx, input)?;
    let sc = scope(ctx);
    let mut out = Vec::new();
    for uri in identifiers(&ds, input)? {
        let rec: Option<DocRec> = match k.state.get(DOCS, &doc_key(&sc, &kb, &ds.id, &uri))? {
            Some(raw) => Some(load(&raw)?),
            None => None,
        };
        out.push(detail(&kb, &ds.id, &uri, rec.as_ref()));
    }
    Ok(json!({"documentDetails": out}))
}

pub fn list(k: &KnowledgeBases, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let (kb, ds) = sources(k, ctx, input)?;
    let prefix = format!("{}/", ds_key(&scope(ctx), &kb, &ds.id));
    let basalt_store::paging::ScanPage { rows, next } = page(k, DOCS, &prefix, input, 10)?;
    let mut out = Vec::new();
    for (_, raw) in rows {
        let d: DocRec = load(&raw)?;
        out.push(detail(&kb, &ds.id, &d.uri, Some(&d)));
    }
    let mut resp = json!({"documentDetails": out});
    if let Some(n) = next {
        resp["nextToken"] = n.into();
    }
    Ok(resp)
}

pub fn delete(k: &KnowledgeBases, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let (kb, ds) = sources(k, ctx, input)?;
    let sc = scope(ctx);
    let kb_key = kb_key(&sc, &kb);
    let mut out = Vec::new();
    for uri in identifiers(&ds, input)? {
        let key = doc_key(&sc, &kb, &ds.id, &uri);
        let Some(raw) = k.state.get(DOCS, &key)? else {
            out.push(detail(&kb, &ds.id, &uri, None));
            continue;
        };
        let d: DocRec = load(&raw)?;
        let base = format!("{}/{}", ds_key(&sc, &kb, &ds.id), doc_hash(&uri));
        let changes: Vec<Change> = (0..d.chunks)
            .map(|n| (format!("{base}/{n:05}"), None))
            .collect();
        k.indexes.commit(
            k.state.as_ref(),
            &kb_key,
            &changes,
            &[WriteOp::Delete {
                table: DOCS.into(),
                key,
            }],
        )?;
        let mut v = detail(&kb, &ds.id, &uri, Some(&d));
        v["status"] = "DELETING".into();
        out.push(v);
    }
    Ok(json!({"documentDetails": out}))
}

pub fn start_worker(k: Arc<KnowledgeBases>) {
    basalt_store::Worker {
        state: k.state.clone(),
        queue: DOCUMENTS_QUEUE,
        lease_ms: crate::ingestion::lease_ms(),
        batch: 4,
        idle: std::time::Duration::from_secs(2),
        wake: k.wake_documents.clone(),
    }
    .spawn(move |claims| {
        let k = k.clone();
        async move {
            for claim in claims {
                index_one(&k, claim).await;
            }
        }
    });
}

/// Metadata given inline (typed attributes) or by an S3 metadata file.
fn metadata_of(k: &KnowledgeBases, account: &str, m: &Value) -> Result<Metadata, String> {
    match m["type"].as_str() {
        None => Ok(Metadata::default()),
        Some("IN_LINE_ATTRIBUTE") => {
            let mut out = Metadata::default();
            for a in m["inlineAttributes"].as_array().into_iter().flatten() {
                let key = a["key"].as_str().unwrap_or_default().to_owned();
                let v = &a["value"];
                let attr = match v["type"].as_str() {
                    Some("STRING") => v["stringValue"]
                        .as_str()
                        .map(|s| Attribute::String(s.into())),
                    Some("NUMBER") => v["numberValue"].as_f64().map(Attribute::Number),
                    Some("BOOLEAN") => v["booleanValue"].as_bool().map(Attribute::Bool),
                    Some("STRING_LIST") => Attribute::from_json(&v["stringListValue"]),
                    _ => None,
                }
                .ok_or_else(|| format!("The metadata attribute {key} has no value of its type."))?;
                out.attributes.insert(key, attr);
            }
            Ok(out)
        }
        Some(_) => {
            let uri = m["s3Location"]["uri"].as_str().unwrap_or_default();
            Metadata::parse(&read_uri(k, account, uri)?)
        }
    }
}

fn read_uri(k: &KnowledgeBases, account: &str, uri: &str) -> Result<bytes::Bytes, String> {
    let (bucket, key) = uri
        .strip_prefix("s3://")
        .and_then(|r| r.split_once('/'))
        .ok_or_else(|| format!("{uri} is not an S3 URI."))?;
    k.objects
        .read(account, bucket, key)?
        .ok_or_else(|| format!("The S3 object {uri} does not exist."))
}

/// The name (its type) and bytes of a document.
fn content_of(
    k: &KnowledgeBases,
    account: &str,
    uri: &str,
    content: &Value,
) -> Result<(String, bytes::Bytes), String> {
    use base64::Engine;
    if content["dataSourceType"] == "S3" {
        let key = uri.rsplit_once('/').map_or(uri, |(_, k)| k).to_owned();
        return Ok((key, read_uri(k, account, uri)?));
    }
    let c = &content["custom"];
    let id = c["customDocumentIdentifier"]["id"]
        .as_str()
        .unwrap_or_default();
    match c["sourceType"].as_str() {
        Some("S3_LOCATION") => {
            let uri = c["s3Location"]["uri"].as_str().unwrap_or_default();
            let name = uri.rsplit_once('/').map_or(uri, |(_, k)| k).to_owned();
            Ok((name, read_uri(k, account, uri)?))
        }
        _ => {
            let inline = &c["inlineContent"];
            if inline["type"] == "BYTE" {
                let b = &inline["byteContent"];
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b["data"].as_str().unwrap_or_default())
                    .map_err(|_| "The document's byte content is not base64.".to_owned())?;
                let ext = extension_of(b["mimeType"].as_str().unwrap_or_default());
                Ok((format!("{id}.{ext}"), bytes.into()))
            } else {
                let text = inline["textContent"]["data"].as_str().unwrap_or_default();
                Ok((format!("{id}.txt"), bytes::Bytes::from(text.to_owned())))
            }
        }
    }
}

async fn index_one(k: &KnowledgeBases, claim: Claim) {
    let Ok(item) = serde_json::from_slice::<Item>(&claim.payload) else {
        let _ = k.state.complete(&claim, &[]);
        return;
    };
    let ctx = RequestContext::internal(&item.account, &item.region, "");
    let sc = scope(&ctx);
    let key = doc_key(&sc, &item.kb, &item.ds, &item.uri);
    let (Ok(kb), Ok(ds)) = (
        must_load(k, &ctx, &item.kb),
        must_load_ds(k, &ctx, &item.kb, &item.ds),
    ) else {
        let _ = k.state.complete(&claim, &[]);
        return;
    };
    let before: Option<DocRec> = k
        .state
        .get(DOCS, &key)
        .ok()
        .flatten()
        .and_then(|raw| load(&raw).ok());
    let old_chunks = before.as_ref().map_or(0, |d| d.chunks);
    let result = async {
        let chunking = chunking(&ds.ingestion).map_err(|e| e.message)?;
        let metadata = metadata_of(k, &item.account, &item.document["metadata"])?;
        let (name, bytes) = content_of(k, &item.account, &item.uri, &item.document["content"])?;
        // Its own folder in the intermediate bucket: two ingestions of one document may run
        // at once.
        let transform = crate::transform::Transform::of(&ds, &format!("direct-{}", claim.token));
        let target = Target {
            kb: &kb,
            ds: &ds.id,
            chunking: &chunking,
            transform: transform.as_ref(),
        };
        chunk_document(k, &ctx, &target, (&name, &item.uri), bytes, &metadata).await
    }
    .await;
    let now = k.now_ms();
    let base = format!(
        "{}/{}",
        ds_key(&sc, &item.kb, &item.ds),
        doc_hash(&item.uri)
    );
    let (changes, rec): (Vec<Change>, DocRec) = match result {
        Ok(chunks) => {
            let n = chunks.len() as u32;
            let mut changes: Vec<Change> = chunks
                .into_iter()
                .enumerate()
                .map(|(i, c)| (format!("{base}/{i:05}"), Some(c)))
                .collect();
            changes.extend((n..old_chunks).map(|i| (format!("{base}/{i:05}"), None)));
            let rec = DocRec {
                uri: item.uri.clone(),
                etag: String::new(),
                metadata_etag: None,
                chunks: n,
                indexed_ms: now,
                status: None,
                status_reason: None,
            };
            (changes, rec)
        }
        Err(reason) => (
            Vec::new(),
            DocRec {
                uri: item.uri.clone(),
                etag: String::new(),
                metadata_etag: None,
                chunks: old_chunks,
                indexed_ms: now,
                status: Some("FAILED".into()),
                status_reason: Some(reason),
            },
        ),
    };
    let write = WriteOp::Put {
        table: DOCS.into(),
        key,
        value: dump(&rec),
    };
    // The record and the chunks land together; the queue item goes once they have.
    match k
        .indexes
        .commit(k.state.as_ref(), &kb_key(&sc, &item.kb), &changes, &[write])
    {
        Ok(()) => {
            let _ = k.state.complete(&claim, &[]);
        }
        Err(e) => tracing::warn!(document = %item.uri, "indexing a document failed: {}", e.message),
    }
}
