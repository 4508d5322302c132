//! Retrieve: the chunks of a knowledge base nearest a query, by meaning (SEMANTIC) or by
//! meaning and keywords fused (HYBRID), among those that pass the request's filter.

use crate::KnowledgeBases;
use crate::index::ChunkView;
use crate::ingestion::embed_all;
use crate::knowledge_bases::must_load;
use crate::model::*;
use basalt_core::{AwsError, RequestContext};
use basalt_vector::Filter;
use serde_json::{Value, json};

/// Bedrock's default number of results.
pub const DEFAULT_RESULTS: usize = 5;

/// A retrieved chunk.
#[derive(Debug, Clone)]
pub struct Found {
    pub score: f32,
    pub chunk: ChunkView,
}

impl Found {
    pub fn reference(&self) -> Value {
        json!({
            "content": {"text": self.chunk.content, "type": "TEXT"},
            "location": location(&self.chunk.uri),
            "metadata": self.chunk.metadata,
        })
    }

    fn result(&self) -> Value {
        let mut r = self.reference();
        r["score"] = f64::from(self.score).into();
        r
    }
}

/// The `n` best chunks of `kb` for `query`, as `vectorSearchConfiguration` asks.
pub async fn search(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    kb: &KbRec,
    query: &str,
    config: &Value,
    n: usize,
) -> Result<Vec<Found>, AwsError> {
    let hybrid = match config["overrideSearchType"].as_str() {
        Some("HYBRID") if !kb.supports_hybrid() => {
            return Err(AwsError::validation(format!(
                "HYBRID search is not supported for the {} vector store; use SEMANTIC.",
                kb.storage["type"].as_str().unwrap_or("configured")
            )));
        }
        Some("HYBRID") => true,
        Some(_) => false,
        None => kb.supports_hybrid(),
    };
    let parse = |f: &Value| Filter::from_bedrock(f).map_err(|e| AwsError::validation(e.0));
    let explicit = config.get("filter").filter(|f| !f.is_null());
    if let Some(f) = explicit {
        parse(f)?;
    }
    let implicit = match config.get("implicitFilterConfiguration") {
        Some(c) if c.is_object() => crate::implicit::infer(k.registry()?, ctx, c, query).await?,
        _ => None,
    };
    let filter = crate::implicit::and(explicit, implicit)
        .map(|f| parse(&f))
        .transpose()?;
    let vector = embed_all(k, ctx, &kb.embedding_model(), vec![query.to_owned()])
        .await?
        .pop()
        .unwrap_or_default();
    // Children of one parent return the same parent text: ask for more, keep the first.
    let hits = k.indexes.search(
        k.state.as_ref(),
        &kb_key(&scope(ctx), &kb.id),
        &vector,
        hybrid.then_some(query),
        n * 3,
        filter.as_ref(),
    )?;
    let mut out: Vec<Found> = Vec::with_capacity(n);
    for (score, chunk) in hits {
        if out
            .iter()
            .any(|f| f.chunk.content == chunk.content && f.chunk.uri == chunk.uri)
        {
            continue;
        }
        // OpenSearch's cosine score, (1 + cosine) / 2; the fused score as it is.
        let score = if hybrid { score } else { (1.0 + score) / 2.0 };
        out.push(Found { score, chunk });
        if out.len() == n {
            break;
        }
    }
    let rerank = &config["rerankingConfiguration"];
    if rerank.is_object() {
        return crate::rerank::rerank_found(k, ctx, query, out, rerank).await;
    }
    Ok(out)
}

/// Checks a query against a guardrail (ApplyGuardrail on the input); whether it intervened.
pub async fn guard_query(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    guardrail: &Value,
    text: &str,
) -> Result<bool, AwsError> {
    let out = k
        .registry()?
        .call(
            ctx,
            "bedrock-runtime",
            "ApplyGuardrail",
            json!({
                "guardrailIdentifier": guardrail["guardrailId"],
                "guardrailVersion": guardrail["guardrailVersion"],
                "source": "INPUT",
                "content": [{"text": {"text": text}}],
            }),
        )
        .await?;
    Ok(out.body["action"] == "GUARDRAIL_INTERVENED")
}

pub async fn retrieve(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let kb = must_load(k, ctx, str_of(input, "knowledgeBaseId").unwrap_or_default())?;
    let query = input["retrievalQuery"]["text"].as_str().unwrap_or_default();
    if query.trim().is_empty() {
        return Err(AwsError::validation(
            "retrievalQuery.text must not be empty.",
        ));
    }
    let config = &input["retrievalConfiguration"]["vectorSearchConfiguration"];
    let n = config["numberOfResults"]
        .as_u64()
        .map_or(DEFAULT_RESULTS, |n| n as usize);
    let offset = match str_of(input, "nextToken") {
        Some(t) => basalt_core::page_token::decode(t)
            .and_then(|p| p.parse::<usize>().ok())
            .ok_or_else(|| AwsError::validation("The nextToken is not valid."))?,
        None => 0,
    };
    let guardrail = &input["guardrailConfiguration"];
    let mut resp = json!({});
    if guardrail.is_object() {
        if guard_query(k, ctx, guardrail, query).await? {
            return Ok(json!({"retrievalResults": [], "guardrailAction": "INTERVENED"}));
        }
        resp["guardrailAction"] = "NONE".into();
    }
    let found = search(k, ctx, &kb, query, config, offset + n + 1).await?;
    let more = found.len() > offset + n;
    resp["retrievalResults"] = found
        .iter()
        .skip(offset)
        .take(n)
        .map(Found::result)
        .collect();
    if more {
        resp["nextToken"] = basalt_core::page_token::encode(&(offset + n).to_string()).into();
    }
    Ok(resp)
}
