//! CreateDataSource, GetDataSource, ListDataSources, UpdateDataSource, DeleteDataSource.

use crate::KnowledgeBases;
use crate::knowledge_bases::{delete_prefix, must_load, page, token_target, token_write};
use crate::model::*;
use basalt_core::{AwsError, RequestContext};
use basalt_documents::Chunking;
use basalt_store::WriteOp;
use serde_json::{Map, Value, json};

/// Bedrock's quota of data sources per knowledge base.
const MAX_DATA_SOURCES: usize = 5;

fn describe(rec: &DsRec) -> Value {
    let mut m = Map::new();
    m.insert("knowledgeBaseId".into(), rec.kb.clone().into());
    m.insert("dataSourceId".into(), rec.id.clone().into());
    m.insert("name".into(), rec.name.clone().into());
    m.insert("status".into(), rec.status.clone().into());
    if let Some(d) = &rec.description {
        m.insert("description".into(), d.clone().into());
    }
    m.insert("dataSourceConfiguration".into(), rec.config.clone());
    if !rec.encryption.is_null() {
        m.insert(
            "serverSideEncryptionConfiguration".into(),
            rec.encryption.clone(),
        );
    }
    if !rec.ingestion.is_null() {
        m.insert("vectorIngestionConfiguration".into(), rec.ingestion.clone());
    }
    m.insert(
        "dataDeletionPolicy".into(),
        rec.deletion_policy.clone().into(),
    );
    m.insert("createdAt".into(), secs(rec.created_ms).into());
    m.insert("updatedAt".into(), secs(rec.updated_ms).into());
    Value::Object(m)
}

/// The chunking a data source's `vectorIngestionConfiguration` asks for.
pub fn chunking(ingestion: &Value) -> Result<Chunking, AwsError> {
    let c = &ingestion["chunkingConfiguration"];
    let int = |v: &Value, name: &str| -> Result<usize, AwsError> {
        v[name].as_u64().map(|n| n as usize).ok_or_else(|| {
            AwsError::validation(format!("{name} is required for this chunking strategy."))
        })
    };
    Ok(match c["chunkingStrategy"].as_str() {
        None => Chunking::Default,
        Some("FIXED_SIZE") => {
            let f = &c["fixedSizeChunkingConfiguration"];
            Chunking::FixedSize {
                max_tokens: int(f, "maxTokens")?,
                overlap_percentage: int(f, "overlapPercentage")?,
            }
        }
        Some("HIERARCHICAL") => {
            let h = &c["hierarchicalChunkingConfiguration"];
            let levels = h["levelConfigurations"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default();
            let [parent, child] = levels else {
                return Err(AwsError::validation(
                    "Hierarchical chunking takes exactly two levelConfigurations: the parent's and the child's.",
                ));
            };
            let (parent, child) = (int(parent, "maxTokens")?, int(child, "maxTokens")?);
            if child > parent {
                return Err(AwsError::validation(
                    "The child chunk's maxTokens must not exceed the parent's.",
                ));
            }
            Chunking::Hierarchical {
                parent_max_tokens: parent,
                child_max_tokens: child,
                overlap_tokens: int(h, "overlapTokens")?,
            }
        }
        Some("SEMANTIC") => {
            let s = &c["semanticChunkingConfiguration"];
            Chunking::Semantic {
                max_tokens: int(s, "maxTokens")?,
                buffer_size: int(s, "bufferSize")?,
                breakpoint_percentile: int(s, "breakpointPercentileThreshold")?,
            }
        }
        Some("NONE") => Chunking::None,
        Some(other) => {
            return Err(AwsError::validation(format!(
                "Unknown chunking strategy {other}."
            )));
        }
    })
}

/// What the model's constraints cannot check: an S3 source with a bucket ARN, and a
/// chunking configuration that fits its strategy.
fn check(input: &Value) -> Result<(), AwsError> {
    let config = &input["dataSourceConfiguration"];
    match config["type"].as_str() {
        Some("S3") => {}
        // Documents come with IngestKnowledgeBaseDocuments.
        Some("CUSTOM") => return chunking(&input["vectorIngestionConfiguration"]).map(drop),
        Some(other) => {
            return Err(AwsError::validation(format!(
                "Data sources of type {other} crawl a service outside this machine; Basalt ingests S3 and CUSTOM data sources."
            )));
        }
        None => {
            return Err(AwsError::validation(
                "dataSourceConfiguration.type is required.",
            ));
        }
    }
    let arn = config["s3Configuration"]["bucketArn"]
        .as_str()
        .unwrap_or_default();
    let bucket = arn.strip_prefix("arn:aws:s3:::").unwrap_or_default();
    if bucket.is_empty() || bucket.contains('/') {
        return Err(AwsError::validation(format!(
            "s3Configuration.bucketArn {arn:?} is not the ARN of a bucket (arn:aws:s3:::bucket-name)."
        )));
    }
    chunking(&input["vectorIngestionConfiguration"])?;
    crate::transform::check(
        &input["vectorIngestionConfiguration"]["customTransformationConfiguration"],
    )
    .map_err(AwsError::validation)?;
    Ok(())
}

pub fn must_load_ds(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    kb: &str,
    id: &str,
) -> Result<DsRec, AwsError> {
    match k.state.get(SOURCES, &ds_key(&scope(ctx), kb, id))? {
        Some(raw) => load(&raw),
        None => Err(not_found("Data source", id)),
    }
}

pub fn create(k: &KnowledgeBases, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let kb = str_of(input, "knowledgeBaseId").unwrap_or_default();
    must_load(k, ctx, kb)?;
    if let Some(id) = token_target(k, ctx, "ds", input)? {
        return Ok(json!({"dataSource": describe(&must_load_ds(k, ctx, kb, &id)?)}));
    }
    check(input)?;
    let sc = scope(ctx);
    let existing = k
        .state
        .scan(SOURCES, &format!("{}/", kb_key(&sc, kb)), None, 100)?;
    let name = str_of(input, "name").unwrap_or_default();
    for (_, raw) in &existing {
        let d: DsRec = load(raw)?;
        if d.name == name {
            return Err(conflict(format!(
                "A data source with the name {name} already exists in this knowledge base."
            )));
        }
    }
    if existing.len() >= MAX_DATA_SOURCES {
        return Err(AwsError::new(
            400,
            "ServiceQuotaExceededException",
            format!("A knowledge base can have at most {MAX_DATA_SOURCES} data sources."),
        ));
    }
    let now = k.now_ms();
    let rec = DsRec {
        v: RECORD_VERSION,
        kb: kb.to_owned(),
        id: new_id(),
        name: name.to_owned(),
        description: str_of(input, "description").map(str::to_owned),
        config: input["dataSourceConfiguration"].clone(),
        ingestion: input["vectorIngestionConfiguration"].clone(),
        encryption: input["serverSideEncryptionConfiguration"].clone(),
        deletion_policy: str_of(input, "dataDeletionPolicy")
            .unwrap_or("DELETE")
            .to_owned(),
        status: "AVAILABLE".into(),
        created_ms: now,
        updated_ms: now,
    };
    let mut ops = vec![WriteOp::Put {
        table: SOURCES.into(),
        key: ds_key(&sc, kb, &rec.id),
        value: dump(&rec),
    }];
    ops.extend(token_write(ctx, "ds", input, &rec.id));
    k.state.batch(&ops)?;
    Ok(json!({"dataSource": describe(&rec)}))
}

pub fn get(k: &KnowledgeBases, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let kb = str_of(input, "knowledgeBaseId").unwrap_or_default();
    must_load(k, ctx, kb)?;
    let id = str_of(input, "dataSourceId").unwrap_or_default();
    Ok(json!({"dataSource": describe(&must_load_ds(k, ctx, kb, id)?)}))
}

pub fn list(k: &KnowledgeBases, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let kb = str_of(input, "knowledgeBaseId").unwrap_or_default();
    must_load(k, ctx, kb)?;
    let prefix = format!("{}/", kb_key(&scope(ctx), kb));
    let basalt_store::paging::ScanPage { rows, next } = page(k, SOURCES, &prefix, input, 10)?;
    let mut out = Vec::new();
    for (_, raw) in rows {
        let d: DsRec = load(&raw)?;
        let mut m = Map::new();
        m.insert("knowledgeBaseId".into(), d.kb.into());
        m.insert("dataSourceId".into(), d.id.into());
        m.insert("name".into(), d.name.into());
        m.insert("status".into(), d.status.into());
        if let Some(desc) = d.description {
            m.insert("description".into(), desc.into());
        }
        m.insert("updatedAt".into(), secs(d.updated_ms).into());
        out.push(Value::Object(m));
    }
    let mut resp = json!({"dataSourceSummaries": out});
    if let Some(n) = next {
        resp["nextToken"] = n.into();
    }
    Ok(resp)
}

pub fn update(k: &KnowledgeBases, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let kb = str_of(input, "knowledgeBaseId").unwrap_or_default();
    must_load(k, ctx, kb)?;
    let id = str_of(input, "dataSourceId").unwrap_or_default();
    let mut rec = must_load_ds(k, ctx, kb, id)?;
    check(input)?;
    // Chunks already indexed were cut the old way; Bedrock refuses to change the chunking
    // of a data source for that reason.
    let old = &rec.ingestion["chunkingConfiguration"];
    let new = &input["vectorIngestionConfiguration"]["chunkingConfiguration"];
    if old != new && !(old.is_null() && new.is_null()) {
        return Err(AwsError::validation(
            "The chunking configuration of a data source cannot be changed after it is created.",
        ));
    }
    rec.name = str_of(input, "name").unwrap_or_default().to_owned();
    rec.description = str_of(input, "description").map(str::to_owned);
    rec.config = input["dataSourceConfiguration"].clone();
    rec.ingestion = input["vectorIngestionConfiguration"].clone();
    rec.encryption = input["serverSideEncryptionConfiguration"].clone();
    if let Some(p) = str_of(input, "dataDeletionPolicy") {
        rec.deletion_policy = p.to_owned();
    }
    rec.updated_ms = k.now_ms();
    k.state
        .put(SOURCES, &ds_key(&scope(ctx), kb, id), &dump(&rec))?;
    Ok(json!({"dataSource": describe(&rec)}))
}

pub fn delete(k: &KnowledgeBases, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let kb = str_of(input, "knowledgeBaseId").unwrap_or_default();
    must_load(k, ctx, kb)?;
    let id = str_of(input, "dataSourceId").unwrap_or_default();
    let rec = must_load_ds(k, ctx, kb, id)?;
    let sc = scope(ctx);
    let key = ds_key(&sc, kb, id);
    k.state.delete(SOURCES, &key)?;
    let under = format!("{key}/");
    delete_prefix(k, JOBS, &under)?;
    delete_prefix(k, DOCS, &under)?;
    // RETAIN keeps the data source's vectors searchable in the knowledge base.
    if rec.deletion_policy == "DELETE" {
        let kb_key = kb_key(&sc, kb);
        loop {
            let rows = k.state.scan(CHUNKS, &under, None, 500)?;
            if rows.is_empty() {
                break;
            }
            let changes: Vec<crate::index::Change> =
                rows.into_iter().map(|(key, _)| (key, None)).collect();
            k.indexes.commit(k.state.as_ref(), &kb_key, &changes, &[])?;
        }
    }
    Ok(json!({"knowledgeBaseId": kb, "dataSourceId": id, "status": "DELETING"}))
}
