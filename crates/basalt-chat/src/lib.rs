//! The provider-neutral vocabulary of chat generation and embeddings, and the request and
//! response bodies each model provider uses on Bedrock (`providers`), mapped onto it.
//!
//! Nothing here runs a model: the model runtime consumes [`ChatRequest`] and produces
//! [`ChatResponse`] / [`Delta`]s; Bedrock's InvokeModel, Converse and the OpenAI facade translate.

pub mod providers;

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Role {
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum ContentBlock {
    Text(String),
    /// An image the caller sent; `format` is `png`, `jpeg`, `gif` or `webp`.
    Image {
        format: String,
        bytes: Vec<u8>,
    },
    /// A tool call made by the assistant; `input` is the JSON arguments.
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
    /// The result of a tool call, sent back by the user.
    ToolResult {
        tool_use_id: String,
        content: Vec<ToolResultContent>,
        is_error: bool,
    },
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum ToolResultContent {
    Text(String),
    Json(Value),
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: Vec<ContentBlock>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    /// JSON Schema of the tool's input.
    pub input_schema: Value,
}

#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub enum ToolChoice {
    /// The model decides.
    #[default]
    Auto,
    /// The model must call some tool.
    Any,
    /// The model must call this tool.
    Tool(String),
    /// The model must not call tools.
    None,
}

/// Sampling settings; `temperature == Some(0.0)` means greedy (deterministic).
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Sampling {
    pub max_tokens: u32,
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub top_k: Option<u32>,
    pub seed: Option<u64>,
    pub stop_sequences: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct ChatRequest {
    pub system: Vec<String>,
    pub messages: Vec<Message>,
    pub tools: Vec<ToolSpec>,
    pub tool_choice: ToolChoice,
    pub sampling: Sampling,
    /// A raw prompt (Llama/Mistral/Titan completion-style bodies): used as is, without the
    /// chat template, when set.
    pub raw_prompt: Option<String>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum StopReason {
    EndTurn,
    MaxTokens,
    /// Generation stopped on this caller-supplied stop sequence.
    StopSequence(String),
    ToolUse,
}

#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Usage {
    /// Input tokens neither read from nor written to a prompt cache.
    pub input_tokens: u32,
    pub output_tokens: u32,
    /// Input tokens read from a prompt cache (Bedrock's explicit cache points).
    #[serde(default)]
    pub cache_read_input_tokens: u32,
    /// Input tokens written to a prompt cache, and of those, the ones kept for an hour.
    #[serde(default)]
    pub cache_write_input_tokens: u32,
    #[serde(default)]
    pub cache_write_1h_input_tokens: u32,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChatResponse {
    /// Text and tool-use blocks, in order.
    pub content: Vec<ContentBlock>,
    pub stop_reason: StopReason,
    pub usage: Usage,
    /// Wall time of the generation, milliseconds.
    pub latency_ms: u64,
    /// Time to the first generated token, milliseconds.
    pub first_token_ms: u64,
}

/// An increment of a streamed response.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Delta {
    /// Text appended to content block `index`.
    Text { index: usize, text: String },
    /// A tool-use block starts at `index`.
    ToolUseStart {
        index: usize,
        id: String,
        name: String,
    },
    /// Partial JSON of the tool input of block `index`.
    ToolInput { index: usize, json: String },
    /// Content block `index` is complete.
    BlockStop { index: usize },
}

/// An embedding request in neutral form.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EmbedRequest {
    pub texts: Vec<String>,
    /// Requested output size (Titan v2 `dimensions`); `None` = the Bedrock model's default.
    pub dimensions: Option<usize>,
    pub normalize: bool,
    /// Encodings the caller wants back; empty = the provider's default (floats only).
    pub embedding_types: Vec<EmbeddingType>,
    /// What the texts are for, when the caller says (Cohere `input_type`); retrieval models
    /// may embed queries and documents differently.
    pub input_type: Option<EmbedInputType>,
}

/// An encoding of an embedding vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbeddingType {
    Float,
    /// Signed 8-bit scalar quantization.
    Int8,
    /// Unsigned 8-bit scalar quantization.
    Uint8,
    /// One bit per dimension (sign), packed 8 per signed byte (Cohere) or one 0/1 per
    /// dimension (Titan v2).
    Binary,
    /// One bit per dimension, packed 8 per unsigned byte.
    Ubinary,
}

/// The purpose of the texts of an embedding request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbedInputType {
    SearchDocument,
    SearchQuery,
    Classification,
    Clustering,
}
