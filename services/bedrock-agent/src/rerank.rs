//! Rerank, and the reranking step of Retrieve (`rerankingConfiguration`). No cross-encoder
//! ships in the registries Basalt's models come from, so a document's relevance is the
//! local embedding model's cosine similarity between the query and the document, mapped
//! to [0, 1] as (1 + cosine) / 2. It orders documents by meaning, as a reranker does, but
//! it reads the query and the document apart rather than together.

use crate::KnowledgeBases;
use crate::ingestion::embed_all;
use crate::retrieve::Found;
use basalt_core::{AwsError, RequestContext};
use serde_json::{Value, json};

/// The embedding model id the scores are computed with (every Bedrock embedding id is
/// served by the local embedding model).
const SCORER: &str = "amazon.titan-embed-text-v2:0";

/// Refuses a model (an id or a `…:foundation-model/…` ARN) that is none of Bedrock's
/// reranking models.
fn check_model(arn: &str) -> Result<(), AwsError> {
    let id = arn.rsplit_once('/').map_or(arn, |(_, id)| id);
    if id.contains(".rerank-") {
        Ok(())
    } else {
        Err(AwsError::validation(format!(
            "The model {id} is not a reranking model (amazon.rerank-v1:0, cohere.rerank-v3-5:0)."
        )))
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}

/// The relevance of each of `docs` to `query`, in their order.
async fn scores(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    query: &str,
    docs: &[String],
) -> Result<Vec<f32>, AwsError> {
    let mut texts = Vec::with_capacity(docs.len() + 1);
    texts.push(query.to_owned());
    texts.extend(docs.iter().cloned());
    let vectors = embed_all(k, ctx, SCORER, texts).await?;
    let (q, rest) = vectors
        .split_first()
        .ok_or_else(|| AwsError::internal("the embedding model returned no vectors"))?;
    Ok(rest.iter().map(|d| (1.0 + cosine(q, d)) / 2.0).collect())
}

/// The text a source is scored by: its text, or its JSON document as compact JSON.
fn source_text(source: &Value) -> String {
    let doc = &source["inlineDocumentSource"];
    match doc["type"].as_str() {
        Some("JSON") => doc["jsonDocument"].to_string(),
        _ => doc["textDocument"]["text"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    }
}

/// Indices of `scores` from the most relevant, ties in their original order.
fn ranked(scores: &[f32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    order
}

pub async fn rerank(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let config = &input["rerankingConfiguration"]["bedrockRerankingConfiguration"];
    check_model(
        config["modelConfiguration"]["modelArn"]
            .as_str()
            .unwrap_or_default(),
    )?;
    let query = input["queries"][0]["textQuery"]["text"]
        .as_str()
        .unwrap_or_default();
    let sources = input["sources"].as_array().cloned().unwrap_or_default();
    let docs: Vec<String> = sources.iter().map(source_text).collect();
    if docs.iter().any(|d| d.trim().is_empty()) {
        return Err(AwsError::validation(
            "Every source needs a non-empty textDocument or jsonDocument.",
        ));
    }
    let n = config["numberOfResults"]
        .as_u64()
        .map_or(docs.len(), |n| n as usize);
    let scores = scores(k, ctx, query, &docs).await?;
    let results: Vec<Value> = ranked(&scores)
        .into_iter()
        .take(n)
        .map(|i| {
            json!({
                "index": i,
                "relevanceScore": scores[i],
                "document": sources[i]["inlineDocumentSource"],
            })
        })
        .collect();
    Ok(json!({"results": results}))
}

/// The text a retrieved chunk is reranked by: its content and the metadata fields that
/// `metadataConfiguration` selects (none when it is absent).
fn chunk_text(found: &Found, metadata: &Value) -> String {
    let mut text = found.chunk.content.clone();
    let Some(mode) = metadata["selectionMode"].as_str() else {
        return text;
    };
    let names = |member: &str| -> Option<Vec<String>> {
        metadata["selectiveModeConfiguration"][member]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|f| f["fieldName"].as_str().map(str::to_owned))
                    .collect()
            })
    };
    let include = names("fieldsToInclude");
    let exclude = names("fieldsToExclude").unwrap_or_default();
    for (key, value) in &found.chunk.metadata {
        let chosen = mode == "ALL"
            || match &include {
                Some(list) => list.contains(key),
                None => !exclude.contains(key),
            };
        if chosen {
            let value = value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_owned);
            text.push_str(&format!("\n{key}: {value}"));
        }
    }
    text
}

/// Retrieve's reranking: `found` reordered by relevance, with the relevance as score, cut
/// to `numberOfRerankedResults` when given.
pub async fn rerank_found(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    query: &str,
    found: Vec<Found>,
    config: &Value,
) -> Result<Vec<Found>, AwsError> {
    let bedrock = &config["bedrockRerankingConfiguration"];
    check_model(
        bedrock["modelConfiguration"]["modelArn"]
            .as_str()
            .unwrap_or_default(),
    )?;
    if found.is_empty() {
        return Ok(found);
    }
    let metadata = &bedrock["metadataConfiguration"];
    let docs: Vec<String> = found.iter().map(|f| chunk_text(f, metadata)).collect();
    let scores = scores(k, ctx, query, &docs).await?;
    let keep = bedrock["numberOfRerankedResults"]
        .as_u64()
        .map_or(found.len(), |n| n as usize);
    Ok(ranked(&scores)
        .into_iter()
        .take(keep)
        .map(|i| Found {
            score: scores[i],
            chunk: found[i].chunk.clone(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reranking_models_are_recognized() {
        assert!(
            check_model("arn:aws:bedrock:us-west-2::foundation-model/amazon.rerank-v1:0").is_ok()
        );
        assert!(check_model("cohere.rerank-v3-5:0").is_ok());
        assert!(
            check_model("arn:aws:bedrock:us-west-2::foundation-model/amazon.titan-embed-text-v2:0")
                .is_err()
        );
    }

    #[test]
    fn ranks_go_by_score_then_position() {
        assert_eq!(ranked(&[0.2, 0.9, 0.5, 0.9]), [1, 3, 2, 0]);
        assert!((cosine(&[1.0, 0.0], &[0.0, 1.0])).abs() < 1e-6);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 0.0]), 0.0);
    }

    #[test]
    fn json_sources_are_scored_as_compact_json() {
        let s = json!({"type": "INLINE", "inlineDocumentSource": {"type": "JSON", "jsonDocument": {"a": 1}}});
        assert_eq!(source_text(&s), "{\"a\":1}");
        let t = json!({"type": "INLINE", "inlineDocumentSource": {"type": "TEXT", "textDocument": {"text": "hi"}}});
        assert_eq!(source_text(&t), "hi");
    }
}
