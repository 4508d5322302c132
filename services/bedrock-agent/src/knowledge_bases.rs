//! CreateKnowledgeBase, GetKnowledgeBase, ListKnowledgeBases, UpdateKnowledgeBase,
//! DeleteKnowledgeBase, and the tags of knowledge bases.

use crate::KnowledgeBases;
use crate::model::*;
use basalt_core::{AwsError, RequestContext};
use basalt_store::WriteOp;
use serde_json::{Map, Value, json};

/// Bedrock's quota of knowledge bases per account and region.
const MAX_KNOWLEDGE_BASES: usize = 100;

fn describe(ctx: &RequestContext, rec: &KbRec) -> Value {
    let mut m = Map::new();
    m.insert("knowledgeBaseId".into(), rec.id.clone().into());
    m.insert("name".into(), rec.name.clone().into());
    m.insert("knowledgeBaseArn".into(), rec.arn(ctx).into());
    if let Some(d) = &rec.description {
        m.insert("description".into(), d.clone().into());
    }
    m.insert("roleArn".into(), rec.role_arn.clone().into());
    m.insert("knowledgeBaseConfiguration".into(), rec.config.clone());
    if !rec.storage.is_null() {
        m.insert("storageConfiguration".into(), rec.storage.clone());
    }
    m.insert("status".into(), rec.status.clone().into());
    m.insert("createdAt".into(), secs(rec.created_ms).into());
    m.insert("updatedAt".into(), secs(rec.updated_ms).into());
    Value::Object(m)
}

/// Checks what the model's constraints cannot: a VECTOR knowledge base with a Bedrock
/// embedding model that Basalt serves, and a storage configuration.
fn check_config(input: &Value) -> Result<(), AwsError> {
    let config = &input["knowledgeBaseConfiguration"];
    match config["type"].as_str() {
        Some("VECTOR") => {}
        Some(other) => {
            return Err(AwsError::validation(format!(
                "Knowledge bases of type {other} query a structured data store or Kendra, which Basalt does not run; create a VECTOR knowledge base."
            )));
        }
        None => {
            return Err(AwsError::validation(
                "knowledgeBaseConfiguration.type is required.",
            ));
        }
    }
    let Some(arn) = config["vectorKnowledgeBaseConfiguration"]["embeddingModelArn"].as_str() else {
        return Err(AwsError::validation(
            "vectorKnowledgeBaseConfiguration.embeddingModelArn is required for a VECTOR knowledge base.",
        ));
    };
    let id = arn.rsplit_once('/').map_or(arn, |(_, id)| id);
    if !basalt_bedrock_runtime::catalog::family(id).is_some_and(|f| f.is_embedding()) {
        return Err(AwsError::validation(format!(
            "The embedding model {arn} is not an embedding model that Bedrock offers."
        )));
    }
    if input["storageConfiguration"]["type"].as_str().is_none() {
        return Err(AwsError::validation(
            "storageConfiguration is required for a VECTOR knowledge base.",
        ));
    }
    Ok(())
}

pub fn must_load(k: &KnowledgeBases, ctx: &RequestContext, id: &str) -> Result<KbRec, AwsError> {
    match k.state.get(KBS, &kb_key(&scope(ctx), id))? {
        Some(raw) => load(&raw),
        None => Err(not_found("Knowledge base", id)),
    }
}

/// A client token already used by this account: the id it created.
pub fn token_target(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    kind: &str,
    input: &Value,
) -> Result<Option<String>, AwsError> {
    let Some(t) = str_of(input, "clientToken") else {
        return Ok(None);
    };
    Ok(k.state
        .get(TOKENS, &format!("{}/{kind}/{t}", scope(ctx)))?
        .map(|b| String::from_utf8_lossy(&b).into_owned()))
}

pub fn token_write(ctx: &RequestContext, kind: &str, input: &Value, id: &str) -> Vec<WriteOp> {
    str_of(input, "clientToken")
        .map(|t| WriteOp::Put {
            table: TOKENS.into(),
            key: format!("{}/{kind}/{t}", scope(ctx)),
            value: id.as_bytes().to_vec(),
        })
        .into_iter()
        .collect()
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

pub fn create(k: &KnowledgeBases, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    if let Some(id) = token_target(k, ctx, "kb", input)? {
        return Ok(json!({"knowledgeBase": describe(ctx, &must_load(k, ctx, &id)?)}));
    }
    check_config(input)?;
    let sc = scope(ctx);
    if k.state
        .scan(KBS, &format!("{sc}/"), None, MAX_KNOWLEDGE_BASES)?
        .len()
        >= MAX_KNOWLEDGE_BASES
    {
        return Err(AwsError::new(
            400,
            "ServiceQuotaExceededException",
            format!(
                "This account already has {MAX_KNOWLEDGE_BASES} knowledge bases in this region."
            ),
        ));
    }
    let now = k.now_ms();
    // The index is Basalt's own and ready at once.
    let rec = KbRec {
        v: RECORD_VERSION,
        id: new_id(),
        name: str_of(input, "name").unwrap_or_default().to_owned(),
        description: str_of(input, "description").map(str::to_owned),
        role_arn: str_of(input, "roleArn").unwrap_or_default().to_owned(),
        config: input["knowledgeBaseConfiguration"].clone(),
        storage: input["storageConfiguration"].clone(),
        status: "ACTIVE".into(),
        created_ms: now,
        updated_ms: now,
        tags: tags_in(input),
    };
    let mut ops = vec![WriteOp::Put {
        table: KBS.into(),
        key: kb_key(&sc, &rec.id),
        value: dump(&rec),
    }];
    ops.extend(token_write(ctx, "kb", input, &rec.id));
    k.indexes
        .create(k.state.as_ref(), &kb_key(&sc, &rec.id), &ops)?;
    Ok(json!({"knowledgeBase": describe(ctx, &rec)}))
}

pub fn get(k: &KnowledgeBases, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let id = str_of(input, "knowledgeBaseId").unwrap_or_default();
    Ok(json!({"knowledgeBase": describe(ctx, &must_load(k, ctx, id)?)}))
}

/// A page of `table` under `prefix`: `maxResults` (default as given) from `nextToken`.
pub fn page(
    k: &KnowledgeBases,
    table: &str,
    prefix: &str,
    input: &Value,
    default_max: usize,
) -> Result<basalt_store::paging::ScanPage, AwsError> {
    let max = input["maxResults"]
        .as_u64()
        .map_or(default_max, |n| n as usize)
        .clamp(1, 1000);
    basalt_store::paging::page(
        k.state.as_ref(),
        table,
        prefix,
        str_of(input, "nextToken"),
        max,
    )
}

pub fn list(k: &KnowledgeBases, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let prefix = format!("{}/", scope(ctx));
    let basalt_store::paging::ScanPage { rows, next } = page(k, KBS, &prefix, input, 10)?;
    let mut out = Vec::new();
    for (_, raw) in rows {
        let rec: KbRec = load(&raw)?;
        let mut m = Map::new();
        m.insert("knowledgeBaseId".into(), rec.id.clone().into());
        m.insert("name".into(), rec.name.clone().into());
        if let Some(d) = &rec.description {
            m.insert("description".into(), d.clone().into());
        }
        m.insert("status".into(), rec.status.clone().into());
        m.insert("updatedAt".into(), secs(rec.updated_ms).into());
        out.push(Value::Object(m));
    }
    let mut resp = json!({"knowledgeBaseSummaries": out});
    if let Some(n) = next {
        resp["nextToken"] = n.into();
    }
    Ok(resp)
}

pub fn update(k: &KnowledgeBases, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let id = str_of(input, "knowledgeBaseId").unwrap_or_default();
    let mut rec = must_load(k, ctx, id)?;
    check_config(input)?;
    // The stored vectors were made by the old model and live in the old store.
    if input["knowledgeBaseConfiguration"]["vectorKnowledgeBaseConfiguration"]["embeddingModelArn"]
        != rec.config["vectorKnowledgeBaseConfiguration"]["embeddingModelArn"]
    {
        return Err(AwsError::validation(
            "The embedding model of a knowledge base cannot be changed.",
        ));
    }
    if input["storageConfiguration"]["type"] != rec.storage["type"] {
        return Err(AwsError::validation(
            "The storage configuration type of a knowledge base cannot be changed.",
        ));
    }
    rec.name = str_of(input, "name").unwrap_or_default().to_owned();
    rec.description = str_of(input, "description").map(str::to_owned);
    rec.role_arn = str_of(input, "roleArn").unwrap_or_default().to_owned();
    rec.config = input["knowledgeBaseConfiguration"].clone();
    rec.storage = input["storageConfiguration"].clone();
    rec.updated_ms = k.now_ms();
    k.state.put(KBS, &kb_key(&scope(ctx), id), &dump(&rec))?;
    Ok(json!({"knowledgeBase": describe(ctx, &rec)}))
}

/// Every record of `table` under `prefix`, in key order.
pub fn scan_all(
    k: &KnowledgeBases,
    table: &str,
    prefix: &str,
) -> Result<Vec<(String, Vec<u8>)>, AwsError> {
    const PAGE: usize = 500;
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    loop {
        let after = out.last().map(|(key, _)| key.clone());
        let rows = k.state.scan(table, prefix, after.as_deref(), PAGE)?;
        let full = rows.len() == PAGE;
        out.extend(rows);
        if !full {
            return Ok(out);
        }
    }
}

/// Every record of `table` under `prefix`, decoded, in key order.
pub fn load_all<T: serde::de::DeserializeOwned>(
    k: &KnowledgeBases,
    table: &str,
    prefix: &str,
) -> Result<Vec<T>, AwsError> {
    scan_all(k, table, prefix)?
        .iter()
        .map(|(_, raw)| load(raw))
        .collect()
}

/// Deletes every record under `prefix` of `table`, a page at a time.
pub fn delete_prefix(k: &KnowledgeBases, table: &str, prefix: &str) -> Result<(), AwsError> {
    loop {
        let rows = k.state.scan(table, prefix, None, 500)?;
        if rows.is_empty() {
            return Ok(());
        }
        let ops: Vec<WriteOp> = rows
            .into_iter()
            .map(|(key, _)| WriteOp::Delete {
                table: table.into(),
                key,
            })
            .collect();
        k.state.batch(&ops)?;
    }
}

pub fn delete(k: &KnowledgeBases, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let id = str_of(input, "knowledgeBaseId").unwrap_or_default();
    let rec = must_load(k, ctx, id)?;
    let key = kb_key(&scope(ctx), id);
    // Its index goes first (a failure leaves the knowledge base whole, to delete again), then
    // the record: from then on nothing finds the knowledge base, and a job still running for
    // it stops at its next document.
    k.indexes.forget(k.state.as_ref(), &key)?;
    k.state.delete(KBS, &key)?;
    let under = format!("{key}/");
    for table in [SOURCES, JOBS, DOCS, CHUNKS] {
        delete_prefix(k, table, &under)?;
    }
    k.state.delete(GENERATIONS, &key)?;
    Ok(json!({"knowledgeBaseId": rec.id, "status": "DELETING"}))
}

/// The knowledge base an ARN names, if it is one of this account's.
fn kb_of_arn(k: &KnowledgeBases, ctx: &RequestContext, arn: &str) -> Result<KbRec, AwsError> {
    let id = arn
        .strip_prefix(&format!(
            "arn:aws:bedrock:{}:{}:knowledge-base/",
            ctx.region, ctx.account_id
        ))
        .ok_or_else(|| not_found("Resource", arn))?;
    must_load(k, ctx, id).map_err(|_| not_found("Resource", arn))
}

pub fn tag(k: &KnowledgeBases, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let mut rec = kb_of_arn(k, ctx, str_of(input, "resourceArn").unwrap_or_default())?;
    rec.tags.extend(tags_in(input));
    if rec.tags.len() > 50 {
        return Err(AwsError::validation("A resource can have at most 50 tags."));
    }
    k.state
        .put(KBS, &kb_key(&scope(ctx), &rec.id), &dump(&rec))?;
    Ok(json!({}))
}

pub fn untag(k: &KnowledgeBases, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let mut rec = kb_of_arn(k, ctx, str_of(input, "resourceArn").unwrap_or_default())?;
    for key in input["tagKeys"].as_array().into_iter().flatten() {
        if let Some(key) = key.as_str() {
            rec.tags.remove(key);
        }
    }
    k.state
        .put(KBS, &kb_key(&scope(ctx), &rec.id), &dump(&rec))?;
    Ok(json!({}))
}

pub fn list_tags(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let rec = kb_of_arn(k, ctx, str_of(input, "resourceArn").unwrap_or_default())?;
    Ok(json!({"tags": rec.tags}))
}
