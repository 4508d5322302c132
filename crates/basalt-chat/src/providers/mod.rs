//! The request and response bodies each model provider uses with Bedrock's InvokeModel and
//! InvokeModelWithResponseStream, mapped onto the neutral types of this crate.
//!
//! Typical use by the runtime:
//!
//! 1. `family_of(model_id)` names the body format of a model id, inference profile or ARN;
//!    `family.for_body(&body)` then picks the dialect when a provider has two (Mistral's text
//!    completion vs chat completion bodies, Anthropic's Messages vs legacy Text Completions).
//! 2. `parse_chat` / `parse_embed` read the body, failing with Bedrock's own
//!    `ValidationException` messages.
//! 3. `chat_response_body` / `embed_response_body` write the answer; for streams a
//!    [`StreamEncoder`] turns neutral [`Delta`]s into the provider's chunk objects, and the last
//!    chunk of `finish` carries `amazon-bedrock-invocationMetrics`, as on Bedrock.
//!
//! Every function is total on hostile input: no panics, wrong types are ValidationExceptions.

mod anthropic;
mod cohere_command;
mod cohere_embed;
mod common;
pub mod conversation;
mod deepseek;
mod llama;
mod mistral;
mod nova;
mod openai_chat;
mod templates;
mod titan_embed;
mod titan_text;

use crate::{ChatRequest, ChatResponse, Delta, EmbedRequest, StopReason, Usage};
use basalt_core::AwsError;
use serde_json::{Value, json};

/// A model provider's body format on Bedrock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// Anthropic Messages API (`anthropic_version`, `messages`, `max_tokens`).
    Anthropic,
    /// Anthropic's legacy Text Completions (`prompt`, `max_tokens_to_sample`): Claude v2 / Instant.
    AnthropicText,
    /// Amazon Titan Text (`inputText`, `textGenerationConfig`).
    TitanText,
    /// Amazon Nova understanding models (`messages`, `inferenceConfig`, `toolConfig`).
    Nova,
    /// Meta Llama (`prompt`, `max_gen_len`).
    Llama,
    /// Mistral text completion (`prompt`, `max_tokens`).
    Mistral,
    /// Mistral chat completion (`messages`): Mistral Large 2 and later.
    MistralChat,
    /// Cohere Command R / R+ (`message`, `chat_history`).
    CohereCommandR,
    /// AI21 Jamba (OpenAI-style `messages`).
    Ai21Jamba,
    /// DeepSeek (`prompt`, `max_tokens`; `choices` out).
    DeepSeek,
    /// OpenAI gpt-oss: the OpenAI Chat Completions body.
    OpenAiGptOss,
    /// Amazon Titan Text Embeddings G1 (1536 dimensions).
    TitanEmbedV1,
    /// Amazon Titan Text Embeddings V2 (256/512/1024 dimensions).
    TitanEmbedV2,
    /// Amazon Titan Multimodal Embeddings G1 (text part only here).
    TitanEmbedImage,
    /// Cohere Embed (v3 English / multilingual, v4).
    CohereEmbed,
}

impl Family {
    /// Whether the family's bodies are embedding requests.
    pub fn is_embedding(self) -> bool {
        matches!(
            self,
            Family::TitanEmbedV1
                | Family::TitanEmbedV2
                | Family::TitanEmbedImage
                | Family::CohereEmbed
        )
    }

    /// The dialect of this body, for providers that accept two: a Mistral body with `messages`
    /// is [`Family::MistralChat`]; an Anthropic body with `prompt` and no `messages` is
    /// [`Family::AnthropicText`]. Other families are returned unchanged.
    pub fn for_body(self, body: &Value) -> Family {
        let has = |k: &str| body.get(k).is_some_and(|v| !v.is_null());
        match self {
            Family::Mistral if has("messages") => Family::MistralChat,
            Family::MistralChat if !has("messages") && has("prompt") => Family::Mistral,
            Family::Anthropic if has("prompt") && !has("messages") => Family::AnthropicText,
            Family::AnthropicText if has("messages") => Family::Anthropic,
            other => other,
        }
    }
}

/// The bare foundation-model id of a model id, cross-Region inference profile id
/// (`us.`, `eu.`, `apac.`, `global.`, …) or ARN (`foundation-model/…`, `inference-profile/…`).
/// `None` for application inference profiles, provisioned models and other ARNs.
pub fn base_model_id(model_id: &str) -> Option<&str> {
    let mut id = model_id.trim();
    if id.starts_with("arn:") {
        let resource = id.splitn(6, ':').nth(5)?;
        let (kind, rest) = resource.split_once('/')?;
        match kind {
            "foundation-model" | "inference-profile" | "system-defined-inference-profile" => {
                id = rest
            }
            _ => return None,
        }
    }
    if let Some((prefix, rest)) = id.split_once('.') {
        const GEOS: &[&str] = &[
            "us", "eu", "apac", "global", "us-gov", "jp", "au", "ca", "ap", "uk",
        ];
        if GEOS.contains(&prefix) && rest.contains('.') {
            id = rest;
        }
    }
    (!id.is_empty()).then_some(id)
}

/// The body format of a model id (see [`base_model_id`] for the accepted forms).
pub fn family_of(model_id: &str) -> Option<Family> {
    let id = base_model_id(model_id)?.to_ascii_lowercase();
    let (provider, name) = id.split_once('.')?;
    let family = match provider {
        "anthropic" if name.starts_with("claude") => Family::Anthropic,
        "amazon" if name.starts_with("titan-text-") || name.starts_with("titan-tg1") => {
            Family::TitanText
        }
        "amazon"
            if name.starts_with("titan-embed-text-v1")
                || name.starts_with("titan-embed-g1-text") =>
        {
            Family::TitanEmbedV1
        }
        "amazon" if name.starts_with("titan-embed-text-v2") => Family::TitanEmbedV2,
        "amazon" if name.starts_with("titan-embed-image-v1") => Family::TitanEmbedImage,
        "amazon"
            if name.starts_with("nova-")
                && !["canvas", "reel", "sonic", "embed", "multimodal"]
                    .iter()
                    .any(|k| name.contains(k)) =>
        {
            Family::Nova
        }
        "meta" if name.starts_with("llama") => Family::Llama,
        "mistral" => Family::Mistral,
        "cohere" if name.starts_with("command-r") => Family::CohereCommandR,
        "cohere" if name.starts_with("embed-") => Family::CohereEmbed,
        "ai21" if name.starts_with("jamba") => Family::Ai21Jamba,
        "deepseek" => Family::DeepSeek,
        "openai" if name.starts_with("gpt-oss") => Family::OpenAiGptOss,
        _ => return None,
    };
    Some(family)
}

/// Reads a chat/completion request body of `family` (after [`Family::for_body`]).
pub fn parse_chat(family: Family, model_id: &str, body: &Value) -> Result<ChatRequest, AwsError> {
    match family.for_body(body) {
        Family::Anthropic => anthropic::parse(model_id, body),
        Family::AnthropicText => anthropic::parse_text(body),
        Family::TitanText => titan_text::parse(model_id, body),
        Family::Nova => nova::parse(body),
        Family::Llama => llama::parse(model_id, body),
        Family::Mistral => mistral::parse(model_id, body),
        Family::MistralChat => openai_chat::parse(model_id, body, openai_chat::Dialect::Mistral),
        Family::CohereCommandR => cohere_command::parse(body),
        Family::Ai21Jamba => openai_chat::parse(model_id, body, openai_chat::Dialect::Jamba),
        Family::DeepSeek => deepseek::parse(body),
        Family::OpenAiGptOss => openai_chat::parse(model_id, body, openai_chat::Dialect::OpenAi),
        Family::TitanEmbedV1
        | Family::TitanEmbedV2
        | Family::TitanEmbedImage
        | Family::CohereEmbed => Err(AwsError::validation(
            "The provided model doesn't support text generation; use an embedding request body.",
        )),
    }
}

/// The most output tokens the Bedrock model behind `model_id` generates in one response: the
/// bound of the provider body's own token-count field on InvokeModel, and the model limit
/// Converse checks `inferenceConfig.maxTokens` against. `None` for ids of no known text model.
///
/// From Bedrock's model-parameter pages: Claude as in [`anthropic::max_output_tokens`], Titan
/// Text Lite 4096 / Express 8192 / Premier 3072, Llama `max_gen_len` at most 2048 (Converse
/// answers "exceeds the model limit of 2048" for Llama 3.1, aws-samples/bedrock-access-gateway#41),
/// Mistral 7B and Large/Small 8192 and Mixtral 4096, Cohere Command R 4000, Jamba 1.5 4096,
/// DeepSeek-R1 32768. Nova (`maxTokens` up to 10K on v1, more on Premier and Nova 2) and gpt-oss
/// are left to their bodies' own bounds: no single documented figure was found for them.
pub fn max_output_tokens(model_id: &str) -> Option<u32> {
    let id = base_model_id(model_id)?.to_ascii_lowercase();
    let limit = match family_of(model_id)? {
        Family::Anthropic | Family::AnthropicText => anthropic::max_output_tokens(model_id),
        Family::TitanText => titan_text::max_token_count(model_id),
        Family::Llama => 2048,
        Family::Mistral | Family::MistralChat if id.contains("mixtral") => 4096,
        Family::Mistral | Family::MistralChat => 8192,
        Family::CohereCommandR => 4000,
        Family::Ai21Jamba => 4096,
        Family::DeepSeek => 32_768,
        Family::Nova
        | Family::OpenAiGptOss
        | Family::TitanEmbedV1
        | Family::TitanEmbedV2
        | Family::TitanEmbedImage
        | Family::CohereEmbed => return None,
    };
    Some(limit)
}

/// The InvokeModel response body of `family` for `resp`. `req` is the parsed request (Cohere
/// echoes the conversation back in `chat_history`).
pub fn chat_response_body(
    family: Family,
    model_id: &str,
    req: &ChatRequest,
    resp: &ChatResponse,
) -> Value {
    match family {
        Family::Anthropic => anthropic::response(model_id, resp),
        Family::AnthropicText => anthropic::text_response(resp),
        Family::TitanText => titan_text::response(resp),
        Family::Nova => nova::response(resp),
        Family::Llama => llama::response(resp),
        Family::Mistral => mistral::response(resp),
        Family::MistralChat => openai_chat::response(openai_chat::Dialect::Mistral, model_id, resp),
        Family::CohereCommandR => cohere_command::response(req, resp),
        Family::Ai21Jamba => openai_chat::response(openai_chat::Dialect::Jamba, model_id, resp),
        Family::DeepSeek => deepseek::response(resp),
        Family::OpenAiGptOss => openai_chat::response(openai_chat::Dialect::OpenAi, model_id, resp),
        Family::TitanEmbedV1
        | Family::TitanEmbedV2
        | Family::TitanEmbedImage
        | Family::CohereEmbed => {
            json!({})
        }
    }
}

/// A fresh tool-call id in the provider's own style (`toolu_bdrk_…`, `tooluse_…`, `call_…`).
/// The runtime should mint tool-use ids with this so callers see familiar ids.
/// A Converse / Nova `document` block as text the model reads. Text formats (txt, md, csv,
/// html) are given to the model verbatim inside a `<document>` element naming them, which is
/// what the model would see of them on Bedrock too; binary formats would need a parser the
/// local runtime does not have and are refused clearly.
pub fn document_text(format: &str, name: &str, bytes: &[u8]) -> Result<String, AwsError> {
    const FORMATS: [&str; 9] = [
        "pdf", "csv", "doc", "docx", "xls", "xlsx", "html", "txt", "md",
    ];
    if !FORMATS.contains(&format) {
        return Err(AwsError::validation(format!(
            "1 validation error detected: Value '{format}' at 'document.format' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
            FORMATS.join(", ")
        )));
    }
    let name_ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || c.is_whitespace() || "-()[]".contains(c))
        && !name
            .chars()
            .zip(name.chars().skip(1))
            .any(|(a, b)| a.is_whitespace() && b.is_whitespace());
    if !name_ok {
        return Err(AwsError::validation(
            "The document file name can only contain alphanumeric characters, whitespace characters, hyphens, parentheses, and square brackets. The name can't contain more than one consecutive whitespace character.",
        ));
    }
    if !["txt", "md", "csv", "html"].contains(&format) {
        return Err(AwsError::validation(format!(
            "The local model reads text documents (txt, md, csv, html); {format} documents are not supported."
        )));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| {
        AwsError::validation(format!(
            "The {format} document {name} is not valid UTF-8 text."
        ))
    })?;
    Ok(format!(
        "<document name=\"{name}\" format=\"{format}\">\n{text}\n</document>"
    ))
}

pub fn new_tool_use_id(family: Family) -> String {
    match family {
        Family::Anthropic | Family::AnthropicText => {
            format!("toolu_bdrk_01{}", common::random_tail(22))
        }
        Family::Nova => format!("tooluse_{}", common::random_tail(22)),
        Family::MistralChat | Family::Mistral => common::random_tail(9),
        _ => format!("call_{}", common::random_tail(24)),
    }
}

/// The `amazon-bedrock-invocationMetrics` object Bedrock appends to a stream's last chunk.
pub fn invocation_metrics(usage: &Usage, latency_ms: u64, first_token_ms: u64) -> Value {
    json!({
        "inputTokenCount": usage.input_tokens,
        "outputTokenCount": usage.output_tokens,
        "invocationLatency": latency_ms,
        "firstByteLatency": first_token_ms,
    })
}

/// A tool call being streamed.
#[derive(Debug, Clone, Default)]
pub(crate) struct StreamTool {
    pub index: usize,
    pub id: String,
    pub name: String,
    pub json: String,
}

/// Turns neutral deltas into a provider's stream chunks (each one `chunk` event's bytes).
///
/// Call `start` once, `delta` for each [`Delta`], then `finish` once; `finish`'s last object
/// carries `amazon-bedrock-invocationMetrics`.
#[derive(Debug, Clone)]
pub struct StreamEncoder {
    pub(crate) family: Family,
    pub(crate) model_id: String,
    pub(crate) input_tokens: u32,
    /// Message / response id of the stream.
    pub(crate) id: String,
    /// Second id (Cohere's generation id).
    pub(crate) id2: String,
    pub(crate) created: u64,
    /// Text deltas seen so far: the running output-token estimate of per-chunk counters.
    pub(crate) text_deltas: u32,
    /// All text streamed so far.
    pub(crate) text: String,
    /// Chunks emitted so far.
    pub(crate) chunks: usize,
    /// Content blocks started and not yet stopped (Anthropic, Nova).
    pub(crate) open_blocks: Vec<usize>,
    pub(crate) tools: Vec<StreamTool>,
    /// The request's conversation, for providers that echo it (Cohere).
    pub(crate) history: Vec<Value>,
    pub(crate) finished: bool,
    /// Prompt tokens read from / written to a prompt cache (Anthropic's `message_start`).
    pub cache_read_tokens: u32,
    pub cache_write_tokens: u32,
}

impl StreamEncoder {
    /// `input_tokens` is the prompt's token count; `req` the parsed request.
    pub fn new(family: Family, model_id: &str, req: &ChatRequest, input_tokens: u32) -> Self {
        let (id, id2) = match family {
            Family::Anthropic | Family::AnthropicText => (
                format!("msg_bdrk_01{}", common::random_tail(22)),
                String::new(),
            ),
            Family::CohereCommandR => (common::uuid(), common::uuid()),
            _ => (
                format!("chatcmpl-{}", common::uuid().replace('-', "")),
                String::new(),
            ),
        };
        let history = if family == Family::CohereCommandR {
            cohere_command::history(req)
        } else {
            Vec::new()
        };
        StreamEncoder {
            family,
            model_id: model_id.to_owned(),
            input_tokens,
            id,
            id2,
            created: common::unix_now(),
            text_deltas: 0,
            text: String::new(),
            chunks: 0,
            open_blocks: Vec::new(),
            tools: Vec::new(),
            history,
            finished: false,
            cache_read_tokens: 0,
            cache_write_tokens: 0,
        }
    }

    /// The chunks that open the stream (may be empty).
    pub fn start(&mut self) -> Vec<Value> {
        let out = match self.family {
            Family::Anthropic => anthropic::stream_start(self),
            Family::Nova => nova::stream_start(self),
            Family::CohereCommandR => cohere_command::stream_start(self),
            Family::Ai21Jamba | Family::OpenAiGptOss => openai_chat::stream_start(self),
            _ => Vec::new(),
        };
        self.chunks += out.len();
        out
    }

    /// The chunks for one delta (may be empty: e.g. Llama has no tool-call chunks).
    pub fn delta(&mut self, d: &Delta) -> Vec<Value> {
        if self.finished {
            return Vec::new();
        }
        match d {
            Delta::Text { text, .. } => {
                self.text_deltas = self.text_deltas.saturating_add(1);
                self.text.push_str(text);
            }
            Delta::ToolUseStart { index, id, name } => self.tools.push(StreamTool {
                index: *index,
                id: id.clone(),
                name: name.clone(),
                json: String::new(),
            }),
            Delta::ToolInput { index, json } => {
                if let Some(t) = self.tools.iter_mut().rev().find(|t| t.index == *index) {
                    t.json.push_str(json);
                }
            }
            Delta::BlockStop { .. } => {}
        }
        let out = match self.family {
            Family::Anthropic => anthropic::stream_delta(self, d),
            Family::AnthropicText => anthropic::text_stream_delta(self, d),
            Family::TitanText => titan_text::stream_delta(self, d),
            Family::Nova => nova::stream_delta(self, d),
            Family::Llama => llama::stream_delta(self, d),
            Family::Mistral => mistral::stream_delta(self, d),
            Family::MistralChat => openai_chat::mistral_stream_delta(self, d),
            Family::CohereCommandR => cohere_command::stream_delta(self, d),
            Family::Ai21Jamba | Family::OpenAiGptOss => openai_chat::stream_delta(self, d),
            Family::DeepSeek => deepseek::stream_delta(self, d),
            _ => Vec::new(),
        };
        self.chunks += out.len();
        out
    }

    /// The closing chunks; the last one carries `amazon-bedrock-invocationMetrics`.
    pub fn finish(
        &mut self,
        stop: &StopReason,
        usage: &Usage,
        latency_ms: u64,
        first_token_ms: u64,
    ) -> Vec<Value> {
        if self.finished {
            return Vec::new();
        }
        self.finished = true;
        let mut out = match self.family {
            Family::Anthropic => anthropic::stream_finish(self, stop, usage),
            Family::AnthropicText => anthropic::text_stream_finish(stop),
            Family::TitanText => titan_text::stream_finish(self, stop, usage),
            Family::Nova => nova::stream_finish(self, stop, usage),
            Family::Llama => llama::stream_finish(self, stop, usage),
            Family::Mistral => mistral::stream_finish(stop),
            Family::MistralChat => openai_chat::mistral_stream_finish(self, stop),
            Family::CohereCommandR => cohere_command::stream_finish(self, stop),
            Family::Ai21Jamba | Family::OpenAiGptOss => {
                openai_chat::stream_finish(self, stop, usage)
            }
            Family::DeepSeek => deepseek::stream_finish(stop),
            _ => Vec::new(),
        };
        let metrics = invocation_metrics(usage, latency_ms, first_token_ms);
        match out.last_mut() {
            Some(Value::Object(last)) => {
                last.insert("amazon-bedrock-invocationMetrics".to_owned(), metrics);
            }
            _ => out.push(json!({ "amazon-bedrock-invocationMetrics": metrics })),
        }
        self.chunks += out.len();
        out
    }
}

/// Reads an embedding request body of `family`.
pub fn parse_embed(family: Family, body: &Value) -> Result<EmbedRequest, AwsError> {
    match family {
        Family::TitanEmbedV1 => titan_embed::parse_v1(body),
        Family::TitanEmbedV2 => titan_embed::parse_v2(body),
        Family::TitanEmbedImage => titan_embed::parse_image(body),
        Family::CohereEmbed => cohere_embed::parse(body),
        _ => Err(AwsError::validation(
            "The provided model doesn't support embeddings; use a text generation request body.",
        )),
    }
}

/// The vector size the Bedrock model returns: Titan v1 1536, Titan v2 and Titan Multimodal
/// the requested size or 1024, Cohere the requested size (v4 `output_dimension`) or 1024.
pub fn native_dimensions(family: Family, requested: Option<usize>) -> usize {
    match family {
        Family::TitanEmbedV1 => 1536,
        _ => requested.unwrap_or(1024),
    }
}

/// The InvokeModel response body for embeddings. `vectors` holds one vector per text, already
/// sized (see [`fit_dimensions`]); `input_tokens` counts all texts.
pub fn embed_response_body(
    family: Family,
    req: &EmbedRequest,
    vectors: &[Vec<f32>],
    input_tokens: u32,
) -> Value {
    match family {
        Family::TitanEmbedV1 | Family::TitanEmbedImage => {
            titan_embed::response_v1(vectors, input_tokens)
        }
        Family::TitanEmbedV2 => titan_embed::response_v2(req, vectors, input_tokens),
        Family::CohereEmbed => cohere_embed::response(req, vectors),
        _ => json!({}),
    }
}

/// Fits a local embedding to `dims` values.
///
/// The vector is L2-normalized first. When `dims` is larger it is zero-padded: dot products
/// and cosine similarities between padded vectors equal those of the originals exactly. When
/// `dims` is smaller it is truncated and renormalized: cosine similarity is then only
/// approximate (the dropped components are lost). A zero or non-finite vector yields zeros.
pub fn fit_dimensions(v: &[f32], dims: usize) -> Vec<f32> {
    let finite = v.iter().all(|x| x.is_finite());
    let mut out: Vec<f32> = if finite {
        v.iter().take(dims).copied().collect()
    } else {
        Vec::new()
    };
    let norm = out
        .iter()
        .map(|x| f64::from(*x) * f64::from(*x))
        .sum::<f64>()
        .sqrt();
    if norm > 0.0 && norm.is_finite() {
        for x in &mut out {
            *x = (f64::from(*x) / norm) as f32;
        }
    } else {
        out.iter_mut().for_each(|x| *x = 0.0);
    }
    out.resize(dims, 0.0);
    out
}

#[cfg(test)]
mod tests;
