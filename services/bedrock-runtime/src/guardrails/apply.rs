//! Evaluating a guardrail: ApplyGuardrail, and the checks InvokeModel and Converse run on a
//! model's input and output.

use super::model::{self, GuardedInput, Trace};
use super::{Guardrails, not_found, version_not_found};
use crate::BedrockRuntime;
use basalt_core::{AwsError, Output, RequestContext};
use basalt_guardrails::{Block, Guardrail, Options, Outcome, Source};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Instant;

/// The embedding model that guardrails judge meaning with (any embedding id of the catalog
/// resolves to the same local MiniLM).
const EMBEDDING_MODEL: &str = "amazon.titan-embed-text-v2:0";

/// A guardrail named in a request, loaded and compiled.
pub struct Resolved {
    pub id: String,
    pub arn: String,
    pub version: String,
    pub guardrail: Arc<Guardrail>,
}

/// One evaluation: its outcome and how long it took.
pub struct Evaluation {
    pub outcome: Outcome,
    pub latency_ms: u64,
}

impl Evaluation {
    /// The `GuardrailAssessment` with its `invocationMetrics`.
    pub fn assessment(&self) -> Value {
        let mut a = self.outcome.assessment.clone();
        if let Some(o) = a.as_object_mut() {
            o.insert(
                "invocationMetrics".into(),
                json!({
                    "guardrailProcessingLatency": self.latency_ms,
                    "usage": self.outcome.usage.to_json(),
                    "guardrailCoverage": {"textCharacters": {
                        "guarded": self.outcome.guarded_chars,
                        "total": self.outcome.total_chars,
                    }},
                }),
            );
        }
        a
    }
}

/// `guardrailIdentifier` and `guardrailVersion` of a request, checked: both or neither.
pub fn requested(
    identifier: Option<&Value>,
    version: Option<&Value>,
) -> Result<Option<(String, String)>, AwsError> {
    let id = identifier.and_then(Value::as_str).filter(|s| !s.is_empty());
    let version = version.and_then(Value::as_str).filter(|s| !s.is_empty());
    match (id, version) {
        (None, None) => Ok(None),
        (Some(i), Some(v)) => Ok(Some((i.to_owned(), v.to_owned()))),
        (Some(_), None) => Err(AwsError::validation(
            "Guardrail version is required when a guardrail identifier is provided.",
        )),
        (None, Some(_)) => Err(AwsError::validation(
            "Guardrail identifier is required when a guardrail version is provided.",
        )),
    }
}

impl BedrockRuntime {
    /// The guardrail version a request names, compiled (topic anchors embedded), from the
    /// cache when that version has not changed.
    pub async fn resolve_guardrail(
        &self,
        ctx: &RequestContext,
        identifier: &str,
        version: &str,
    ) -> Result<Resolved, AwsError> {
        let store: &Guardrails = &self.guardrails;
        let (rec, _) = store
            .must_load(ctx, identifier)
            .map_err(|_| not_found(identifier))?;
        if version != super::DRAFT && super::parse_version(version).is_none() {
            return Err(AwsError::validation(format!(
                "1 validation error detected: Value '{version}' at 'guardrailVersion' failed to satisfy constraint: Member must satisfy regular expression pattern: (([1-9][0-9]{{0,7}})|(DRAFT))"
            )));
        }
        let v = rec
            .version(Some(version))
            .ok_or_else(|| version_not_found(identifier, version))?;
        let arn = super::guardrail_arn(ctx, &rec.id);
        if let Some(g) = store.cached(ctx, &rec, version, v) {
            return Ok(Resolved {
                id: rec.id.clone(),
                arn,
                version: version.to_owned(),
                guardrail: g,
            });
        }
        let mut g = Guardrail::new(
            v.policies.clone(),
            v.blocked_input_messaging.clone(),
            v.blocked_outputs_messaging.clone(),
        )
        .map_err(super::config_error)?;
        let anchors = g.anchor_texts();
        if !anchors.is_empty() {
            g.set_anchor_embeddings(self.embed_texts(anchors).await?);
        }
        let g = Arc::new(g);
        store.remember(ctx, &rec, version, v, g.clone());
        Ok(Resolved {
            id: rec.id.clone(),
            arn,
            version: version.to_owned(),
            guardrail: g,
        })
    }

    async fn embed_texts(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, AwsError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let model = self.runtime.judging_embedding(EMBEDDING_MODEL).await?;
        let (vectors, _) = model.embed(texts).await.map_err(crate::chat_error)?;
        Ok(vectors)
    }

    /// Evaluates `blocks` with a resolved guardrail and records its metrics.
    pub async fn evaluate(
        &self,
        ctx: &RequestContext,
        g: &Resolved,
        operation: &str,
        source: Source,
        blocks: &[Block],
        options: Options,
    ) -> Result<Evaluation, AwsError> {
        let started = Instant::now();
        let texts = g.guardrail.request_texts(source, blocks);
        let embeddings = self.embed_texts(texts).await?;
        let guardrail = g.guardrail.clone();
        let blocks_owned = blocks.to_vec();
        // Matching thousands of words and PII recognizers is CPU work: off the async threads.
        let outcome = tokio::task::spawn_blocking(move || {
            guardrail.assess(source, &blocks_owned, &embeddings, options)
        })
        .await
        .map_err(|e| AwsError::internal(e.to_string()))?;
        let latency_ms = started.elapsed().as_millis() as u64;
        self.accounting.guardrail(
            ctx, &g.arn, &g.version, operation, source, &outcome, latency_ms,
        );
        Ok(Evaluation {
            outcome,
            latency_ms,
        })
    }

    /// The INPUT check of a guarded model call; masks the request when the guardrail
    /// anonymized something. `None` when the call has nothing to judge.
    pub async fn check_input(
        &self,
        ctx: &RequestContext,
        g: &Resolved,
        operation: &str,
        req: &mut basalt_chat::ChatRequest,
        input: &GuardedInput,
        trace: Trace,
    ) -> Result<Option<Evaluation>, AwsError> {
        if input.blocks.is_empty() {
            return Ok(None);
        }
        let options = Options {
            full: trace == Trace::Full,
            prompt_attack: input.marked,
        };
        let e = self
            .evaluate(ctx, g, operation, Source::Input, &input.blocks, options)
            .await?;
        if e.outcome.intervened && !e.outcome.blocked {
            input.apply_masks(req, &e.outcome.outputs);
        }
        Ok(Some(e))
    }

    /// The OUTPUT check of a guarded model call, applied to the answer.
    pub async fn check_output(
        &self,
        ctx: &RequestContext,
        g: &Resolved,
        operation: &str,
        resp: &mut basalt_chat::ChatResponse,
        trace: Trace,
    ) -> Result<Option<Evaluation>, AwsError> {
        let blocks = model::output_blocks(resp);
        if blocks.is_empty() {
            return Ok(None);
        }
        let options = Options {
            full: trace == Trace::Full,
            prompt_attack: false,
        };
        let e = self
            .evaluate(ctx, g, operation, Source::Output, &blocks, options)
            .await?;
        model::apply_output(resp, &e);
        Ok(Some(e))
    }

    pub(crate) async fn apply_guardrail(
        &self,
        ctx: &RequestContext,
        input: Value,
    ) -> Result<Output, AwsError> {
        let identifier = input["guardrailIdentifier"].as_str().unwrap_or_default();
        let version = input["guardrailVersion"].as_str().unwrap_or_default();
        let source = match input["source"].as_str() {
            Some("INPUT") => Source::Input,
            Some("OUTPUT") => Source::Output,
            _ => {
                return Err(AwsError::validation(
                    "1 validation error detected: Value at 'source' failed to satisfy constraint: Member must satisfy enum value set: [INPUT, OUTPUT]",
                ));
            }
        };
        let full = input["outputScope"].as_str() == Some("FULL");
        let mut blocks = Vec::new();
        for (i, c) in input["content"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            if c.get("image").is_some_and(|v| !v.is_null()) {
                return Err(AwsError::validation(format!(
                    "content.{} is an image: Basalt's guardrails judge text only (it has no image classifier).",
                    i + 1
                )));
            }
            let Some(text) = c["text"]["text"].as_str() else {
                return Err(AwsError::validation(format!(
                    "content.{} must contain a text block.",
                    i + 1
                )));
            };
            let qualifiers: Vec<&str> = c["text"]["qualifiers"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            blocks.push(Block {
                text: text.to_owned(),
                grounding_source: qualifiers.contains(&"grounding_source"),
                query: qualifiers.contains(&"query"),
            });
        }
        if blocks.is_empty() {
            return Err(AwsError::validation(
                "The content of the request must contain at least one text block.",
            ));
        }
        let g = self.resolve_guardrail(ctx, identifier, version).await?;
        let options = Options {
            full,
            // ApplyGuardrail's INPUT is the user's input as a whole.
            prompt_attack: true,
        };
        let eval = self
            .evaluate(ctx, &g, "ApplyGuardrail", source, &blocks, options)
            .await?;
        let o = &eval.outcome;
        Ok(Output::new(json!({
            "usage": o.usage.to_json(),
            "action": if o.intervened { "GUARDRAIL_INTERVENED" } else { "NONE" },
            "actionReason": o.action_reason(),
            "outputs": o.outputs.iter().map(|t| json!({"text": t})).collect::<Vec<_>>(),
            "assessments": [eval.assessment()],
            "guardrailCoverage": {"textCharacters": {"guarded": o.guarded_chars, "total": o.total_chars}},
        })))
    }
}
