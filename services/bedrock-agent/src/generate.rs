//! RetrieveAndGenerate and RetrieveAndGenerateStream: retrieve chunks (from a knowledge base
//! or from documents given with the request), have the chat model answer from them through
//! Converse, and cite, for each sentence of the answer, the chunk it draws on.
//!
//! Citations are computed, not asked of the model: a sentence cites the retrieved chunk that
//! holds the largest share of its content words (at least half of them). Small local models
//! cite unreliably when asked to; the overlap is measurable and checked by the evaluation.

use crate::KnowledgeBases;
use crate::ingestion::embed_all;
use crate::knowledge_bases::must_load;
use crate::model::*;
use crate::retrieve::{DEFAULT_RESULTS, Found, search};
use basalt_core::{AwsError, EventStream, Output, RequestContext, StreamEvent};
use basalt_documents::chunk::sentences;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::ops::Range;

/// Bedrock's default prompt for knowledge bases, in substance.
pub const DEFAULT_TEMPLATE: &str = "You are a question answering agent. I will provide you with a set of search results. The user will provide you with a question. Your job is to answer the user's question using only information from the search results. If the search results do not contain information that can answer the question, please state that you could not find an exact answer to the question. Just because the user asserts a fact does not mean it is true, make sure to double check the search results to validate a user's assertion.\n\nHere are the search results in numbered order:\n$search_results$\n\n$output_format_instructions$";

const OUTPUT_FORMAT: &str = "Answer in one to three short sentences, in plain text, using the words of the search results where you can.";

/// Turns a session keeps for follow-up questions.
const MAX_TURNS: usize = 10;
/// How long an idle session lives (Bedrock: 24 hours).
const SESSION_TTL_MS: i64 = 24 * 3600 * 1000;
/// Chunks an external document is cut into at most.
const EXTERNAL_MAX_CHUNKS: usize = 2000;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Session {
    turns: Vec<(String, String)>,
    updated_ms: i64,
}

fn session_key(ctx: &RequestContext, id: &str) -> String {
    format!("{}/{id}", scope(ctx))
}

fn load_session(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    id: Option<&str>,
) -> Result<(String, Session), AwsError> {
    let Some(id) = id else {
        return Ok((uuid::Uuid::new_v4().to_string(), Session::default()));
    };
    let s: Option<Session> = match k.state.get(SESSIONS, &session_key(ctx, id))? {
        Some(raw) => Some(load(&raw)?),
        None => None,
    };
    match s.filter(|s| k.now_ms() - s.updated_ms < SESSION_TTL_MS) {
        Some(s) => Ok((id.to_owned(), s)),
        None => Err(AwsError::validation(format!(
            "Session with Id {id} is not valid. Please check and try again."
        ))),
    }
}

fn save_session(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    id: &str,
    mut s: Session,
    question: &str,
    answer: &str,
) -> Result<(), AwsError> {
    s.turns.push((question.to_owned(), answer.to_owned()));
    if s.turns.len() > MAX_TURNS {
        s.turns.remove(0);
    }
    s.updated_ms = k.now_ms();
    k.state.put(SESSIONS, &session_key(ctx, id), &dump(&s))?;
    Ok(())
}

/// What generation needs, whatever the source of the chunks.
struct Plan {
    model: String,
    found: Vec<Found>,
    generation: Value,
    guardrail: Option<Value>,
    session_id: String,
    session: Session,
    question: String,
}

async fn plan(k: &KnowledgeBases, ctx: &RequestContext, input: &Value) -> Result<Plan, AwsError> {
    let question = input["input"]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if question.trim().is_empty() {
        return Err(AwsError::validation("input.text must not be empty."));
    }
    let (session_id, session) = load_session(k, ctx, str_of(input, "sessionId"))?;
    let config = &input["retrieveAndGenerateConfiguration"];
    let (model, found, generation) = match config["type"].as_str() {
        Some("KNOWLEDGE_BASE") => {
            let c = &config["knowledgeBaseConfiguration"];
            let kb = must_load(k, ctx, c["knowledgeBaseId"].as_str().unwrap_or_default())?;
            let search_config = &c["retrievalConfiguration"]["vectorSearchConfiguration"];
            let n = search_config["numberOfResults"]
                .as_u64()
                .map_or(DEFAULT_RESULTS, |n| n as usize);
            // A follow-up question ("and when?") is searched with the one before it.
            let query = match session.turns.last() {
                Some((q, _)) => format!("{q}\n{question}"),
                None => question.clone(),
            };
            let found = search(k, ctx, &kb, &query, search_config, n).await?;
            (
                c["modelArn"].as_str().unwrap_or_default().to_owned(),
                found,
                c["generationConfiguration"].clone(),
            )
        }
        Some("EXTERNAL_SOURCES") => {
            let c = &config["externalSourcesConfiguration"];
            let found = external(k, ctx, &c["sources"], &question).await?;
            (
                c["modelArn"].as_str().unwrap_or_default().to_owned(),
                found,
                c["generationConfiguration"].clone(),
            )
        }
        _ => {
            return Err(AwsError::validation(
                "retrieveAndGenerateConfiguration.type must be KNOWLEDGE_BASE or EXTERNAL_SOURCES.",
            ));
        }
    };
    if !basalt_bedrock_runtime::catalog::is_text_model(&model) {
        return Err(AwsError::validation(format!(
            "The model {model} is not a text model that Bedrock offers."
        )));
    }
    let guardrail = Some(generation["guardrailConfiguration"].clone()).filter(Value::is_object);
    Ok(Plan {
        model,
        found,
        generation,
        guardrail,
        session_id,
        session,
        question,
    })
}

/// The Converse request that answers from the retrieved chunks.
fn converse_input(p: &Plan) -> Value {
    let template = p.generation["promptTemplate"]["textPromptTemplate"]
        .as_str()
        .unwrap_or(DEFAULT_TEMPLATE);
    let results: String = p
        .found
        .iter()
        .enumerate()
        .map(|(i, f)| {
            format!(
                "<search_result>\n[{}] {}\n</search_result>\n",
                i + 1,
                f.chunk.content
            )
        })
        .collect();
    let filled = template
        .replace("$search_results$", results.trim_end())
        .replace("$output_format_instructions$", OUTPUT_FORMAT);
    let mut messages: Vec<Value> = Vec::new();
    for (q, a) in &p.session.turns {
        messages.push(json!({"role": "user", "content": [{"text": q}]}));
        messages.push(json!({"role": "assistant", "content": [{"text": a}]}));
    }
    let mut req = json!({"modelId": p.model});
    if filled.contains("$query$") {
        let prompt = filled.replace("$query$", &p.question);
        messages.push(json!({"role": "user", "content": [{"text": prompt}]}));
    } else {
        req["system"] = json!([{"text": filled}]);
        messages.push(json!({"role": "user", "content": [{"text": p.question}]}));
    }
    req["messages"] = messages.into();
    let t = &p.generation["inferenceConfig"]["textInferenceConfig"];
    let mut inference = serde_json::Map::new();
    for name in ["maxTokens", "temperature", "topP", "stopSequences"] {
        if !t[name].is_null() {
            inference.insert(name.into(), t[name].clone());
        }
    }
    if !inference.is_empty() {
        req["inferenceConfig"] = inference.into();
    }
    if let Some(extra) = p
        .generation
        .get("additionalModelRequestFields")
        .filter(|v| v.is_object())
    {
        req["additionalModelRequestFields"] = extra.clone();
    }
    if let Some(g) = &p.guardrail {
        req["guardrailConfig"] = json!({
            "guardrailIdentifier": g["guardrailId"],
            "guardrailVersion": g["guardrailVersion"],
        });
    }
    req
}

pub async fn retrieve_and_generate(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let p = plan(k, ctx, input).await?;
    // Converse judges the question with the guardrail before the model runs and answers a
    // blocked one with its message, at no token cost.
    let out = k
        .registry()?
        .call(ctx, "bedrock-runtime", "Converse", converse_input(&p))
        .await?;
    let raw: String = out.body["output"]["message"]["content"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["text"].as_str())
        .collect();
    let intervened = out.body["stopReason"] == "guardrail_intervened";
    let (text, parts) = if intervened {
        (raw.clone(), Vec::new())
    } else {
        cite(&raw, &p.found)
    };
    save_session(k, ctx, &p.session_id, p.session.clone(), &p.question, &text)?;
    let mut resp = json!({
        "sessionId": p.session_id,
        "output": {"text": text},
        "citations": citations(&text, &parts, &p.found),
    });
    if p.guardrail.is_some() {
        resp["guardrailAction"] = if intervened { "INTERVENED" } else { "NONE" }.into();
    }
    Ok(resp)
}

pub async fn stream(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Output, AwsError> {
    let p = plan(k, ctx, input).await?;
    let out = k
        .registry()?
        .call(ctx, "bedrock-runtime", "ConverseStream", converse_input(&p))
        .await?;
    let Some(mut events) = out.stream else {
        return Err(AwsError::internal("ConverseStream returned no stream"));
    };
    let (tx, rx) = futures::channel::mpsc::unbounded::<Result<StreamEvent, AwsError>>();
    let session_id = p.session_id.clone();
    let state = k.state.clone();
    let now = k.now_ms();
    let key = session_key(ctx, &p.session_id);
    tokio::spawn(async move {
        let send = |name: &str, value: Value| {
            tx.unbounded_send(Ok(StreamEvent {
                name: name.into(),
                value,
            }))
            .is_ok()
        };
        let mut raw = String::new();
        let mut intervened = false;
        while let Some(ev) = events.next().await {
            match ev {
                Ok(ev) if ev.name == "contentBlockDelta" => {
                    if let Some(t) = ev.value["delta"]["text"].as_str() {
                        raw.push_str(t);
                        if !send("output", json!({"text": t})) {
                            return;
                        }
                    }
                }
                Ok(ev) if ev.name == "messageStop" => {
                    intervened = ev.value["stopReason"] == "guardrail_intervened";
                }
                Ok(_) => {}
                Err(e) => {
                    let _ = tx.unbounded_send(Err(e));
                    return;
                }
            }
        }
        if p.guardrail.is_some() {
            send(
                "guardrail",
                json!({"action": if intervened { "INTERVENED" } else { "NONE" }}),
            );
        }
        if !intervened {
            let (text, parts) = cite(&raw, &p.found);
            for c in citations(&text, &parts, &p.found) {
                if c["retrievedReferences"]
                    .as_array()
                    .is_some_and(|r| !r.is_empty())
                {
                    send(
                        "citation",
                        json!({
                            "citation": c,
                            "generatedResponsePart": c["generatedResponsePart"],
                            "retrievedReferences": c["retrievedReferences"],
                        }),
                    );
                }
            }
        }
        let mut s = p.session;
        s.turns.push((p.question, raw));
        if s.turns.len() > MAX_TURNS {
            s.turns.remove(0);
        }
        s.updated_ms = now;
        let _ = state.put(SESSIONS, &key, &dump(&s));
    });
    let stream: EventStream = rx.boxed();
    Ok(Output::with_stream(
        json!({"sessionId": session_id}),
        stream,
    ))
}

/// A part of the answer (bytes of its text) and the retrieved chunks it cites.
pub type Part = (Range<usize>, Vec<usize>);

/// The `citations` member: one per part of the answer, each with its span (in characters,
/// end inclusive) and the chunks it cites.
fn citations(text: &str, parts: &[Part], found: &[Found]) -> Vec<Value> {
    parts
        .iter()
        .map(|(r, refs)| {
            let start = text[..r.start].chars().count();
            let len = text[r.clone()].chars().count();
            json!({
                "generatedResponsePart": {"textResponsePart": {
                    "text": &text[r.clone()],
                    "span": {"start": start, "end": start + len.saturating_sub(1)},
                }},
                "retrievedReferences": refs.iter().map(|&i| found[i].reference()).collect::<Vec<_>>(),
            })
        })
        .collect()
}

const STOPWORDS: &[&str] = &[
    "a",
    "an",
    "the",
    "and",
    "or",
    "but",
    "of",
    "in",
    "on",
    "at",
    "to",
    "for",
    "from",
    "by",
    "with",
    "is",
    "are",
    "was",
    "were",
    "be",
    "been",
    "it",
    "its",
    "this",
    "that",
    "these",
    "those",
    "as",
    "which",
    "who",
    "what",
    "when",
    "where",
    "how",
    "there",
    "their",
    "they",
    "he",
    "she",
    "his",
    "her",
    "has",
    "have",
    "had",
    "do",
    "does",
    "did",
    "not",
    "no",
    "so",
    "than",
    "then",
    "also",
    "can",
    "will",
    "would",
    "i",
    "you",
    "we",
    "our",
    "your",
    "into",
    "about",
    "based",
    "according",
    "search",
    "results",
    "result",
    "answer",
];

fn content_words(text: &str) -> HashSet<String> {
    basalt_vector::bm25::words(text)
        .filter(|w| !STOPWORDS.contains(&w.as_str()))
        .collect()
}

/// The answer without `[n]` markers, and its sentences grouped into parts with the indices
/// of the chunks each cites: the chunk holding the largest share of the sentence's content
/// words, if it holds at least half of them. Consecutive sentences citing the same chunks
/// form one part.
pub fn cite(answer: &str, found: &[Found]) -> (String, Vec<Part>) {
    let text = strip_markers(answer).trim().to_owned();
    let chunk_words: Vec<HashSet<String>> = found
        .iter()
        .map(|f| content_words(&f.chunk.content))
        .collect();
    let mut parts: Vec<Part> = Vec::new();
    for s in sentences(&text, 0..text.len()) {
        let words = content_words(&text[s.clone()]);
        let mut best: Vec<usize> = Vec::new();
        let mut best_share = 0.5;
        if !words.is_empty() {
            for (i, cw) in chunk_words.iter().enumerate() {
                let share = words.intersection(cw).count() as f32 / words.len() as f32;
                if share > best_share + 1e-6 {
                    best = vec![i];
                    best_share = share;
                } else if (share - best_share).abs() <= 1e-6 && !best.is_empty() {
                    best.push(i);
                }
            }
        }
        // Ties between chunks of one document are one source: keep the first.
        let mut seen = HashSet::new();
        best.retain(|&i| seen.insert(found[i].chunk.uri.clone()));
        match parts.last_mut() {
            Some((r, refs)) if *refs == best => r.end = s.end,
            _ => parts.push((s, best)),
        }
    }
    (text, parts)
}

/// `text` without `[1]`, `[2, 3]` style markers.
fn strip_markers(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let close = after.find(']');
        let is_marker = close.is_some_and(|c| {
            let inner = &after[..c];
            !inner.is_empty()
                && inner
                    .chars()
                    .all(|ch| ch.is_ascii_digit() || ch == ',' || ch == ' ')
        });
        if let (true, Some(c)) = (is_marker, close) {
            out.push_str(rest[..open].trim_end_matches(' '));
            rest = &after[c + 1..];
        } else {
            out.push_str(&rest[..=open]);
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Chunks of the documents given with the request (S3 objects or inline bytes), nearest the
/// question: cut with the default chunking and searched exactly.
async fn external(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    sources: &Value,
    question: &str,
) -> Result<Vec<Found>, AwsError> {
    use base64::Engine;
    const MODEL: &str = "amazon.titan-embed-text-v2:0";
    let mut texts: Vec<(String, String, Value)> = Vec::new();
    for s in sources.as_array().into_iter().flatten() {
        let (name, bytes, location) = match s["sourceType"].as_str() {
            Some("S3") => {
                let uri = s["s3Location"]["uri"].as_str().unwrap_or_default();
                let (bucket, key) = uri
                    .strip_prefix("s3://")
                    .and_then(|r| r.split_once('/'))
                    .ok_or_else(|| AwsError::validation(format!("{uri} is not an S3 URI.")))?;
                let bytes = k
                    .objects
                    .read(&ctx.account_id, bucket, key)
                    .map_err(AwsError::internal)?
                    .ok_or_else(|| {
                        AwsError::validation(format!("The S3 object {uri} does not exist."))
                    })?;
                (key.to_owned(), bytes.to_vec(), json!({"uri": uri}))
            }
            Some("BYTE_CONTENT") => {
                let b = &s["byteContent"];
                let id = b["identifier"].as_str().unwrap_or_default();
                let ext = extension_of(b["contentType"].as_str().unwrap_or_default());
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b["data"].as_str().unwrap_or_default())
                    .map_err(|_| AwsError::validation("byteContent.data is not base64."))?;
                (format!("{id}.{ext}"), bytes, json!({"uri": custom_uri(id)}))
            }
            _ => {
                return Err(AwsError::validation(
                    "sourceType must be S3 or BYTE_CONTENT.",
                ));
            }
        };
        let parsed = basalt_documents::parse::parse(&name, &bytes)
            .map_err(|e| AwsError::validation(e.to_string()))?;
        let tokens = k.embedder.tokens();
        for c in basalt_documents::Chunking::Default
            .chunks(&parsed.text, tokens.as_ref())
            .into_iter()
            .take(EXTERNAL_MAX_CHUNKS)
        {
            texts.push((
                parsed.text[c.range].to_owned(),
                name.clone(),
                location.clone(),
            ));
        }
    }
    if texts.is_empty() {
        return Ok(Vec::new());
    }
    let mut all: Vec<String> = texts.iter().map(|t| t.0.clone()).collect();
    all.push(question.to_owned());
    let mut vectors = embed_all(k, ctx, MODEL, all).await?;
    let q = vectors.pop().unwrap_or_default();
    let mut index = basalt_vector::Index::new(q.len(), basalt_vector::Metric::Cosine);
    for (i, v) in vectors.iter().enumerate() {
        index
            .upsert(&i.to_string(), v, &texts[i].0, Default::default())
            .map_err(|e| AwsError::internal(e.to_string()))?;
    }
    let hits = index
        .nearest(&q, DEFAULT_RESULTS, None)
        .map_err(|e| AwsError::internal(e.to_string()))?;
    Ok(hits
        .into_iter()
        .filter_map(|h| {
            let (text, _, location) = &texts[h.key.parse::<usize>().ok()?];
            let uri = location["uri"].as_str().unwrap_or_default();
            Some(Found {
                score: (1.0 + h.score) / 2.0,
                chunk: crate::index::ChunkView {
                    content: text.clone(),
                    uri: uri.to_owned(),
                    metadata: Default::default(),
                },
            })
        })
        .collect())
}

/// The file extension that makes a document of `mime` parse as that type.
pub fn extension_of(mime: &str) -> &'static str {
    match mime {
        "application/pdf" => "pdf",
        "text/html" => "html",
        "text/markdown" => "md",
        "text/csv" => "csv",
        "application/json" => "json",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => "docx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => "xlsx",
        _ => "txt",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::ChunkView;

    fn found(uri: &str, text: &str) -> Found {
        Found {
            score: 0.5,
            chunk: ChunkView {
                content: text.into(),
                uri: uri.into(),
                metadata: Default::default(),
            },
        }
    }

    #[test]
    fn sentences_cite_the_chunk_holding_their_words() {
        let f = vec![
            found(
                "s3://b/festival.txt",
                "The Halcyon jazz festival takes place every August in the harbour town of Port Wexley.",
            ),
            found(
                "s3://b/coffee.md",
                "The Marigold coffee blend is roasted for exactly 14 minutes.",
            ),
        ];
        let (text, parts) = cite(
            "The Halcyon jazz festival takes place in Port Wexley [1]. Marigold is roasted for 14 minutes. I hope this helps!",
            &f,
        );
        assert_eq!(
            text,
            "The Halcyon jazz festival takes place in Port Wexley. Marigold is roasted for 14 minutes. I hope this helps!"
        );
        assert_eq!(parts.len(), 3);
        assert_eq!(
            &text[parts[0].0.clone()],
            "The Halcyon jazz festival takes place in Port Wexley."
        );
        assert_eq!(parts[0].1, vec![0]);
        assert_eq!(parts[1].1, vec![1]);
        assert!(parts[2].1.is_empty());
        let c = citations(&text, &parts, &f);
        assert_eq!(
            c[0]["generatedResponsePart"]["textResponsePart"]["span"]["start"],
            0
        );
        assert_eq!(
            c[0]["generatedResponsePart"]["textResponsePart"]["span"]["end"],
            52
        );
        assert_eq!(
            c[1]["retrievedReferences"][0]["location"]["s3Location"]["uri"],
            "s3://b/coffee.md"
        );
    }

    #[test]
    fn markers_are_removed_but_brackets_stay() {
        assert_eq!(
            strip_markers("Yes [1]. See [note] and [2, 3]."),
            "Yes. See [note] and."
        );
    }
}
