//! Chat on top of the engine: neutral [`ChatRequest`]s rendered with the model's own chat
//! template, tool calls decoded under a grammar built from the tools' JSON schemas (so a small
//! model's calls are always valid JSON matching the schema), results as [`ChatResponse`] or a
//! stream of [`Delta`]s.

use crate::engine::{ChatEngine, EngineConfig, EngineError, Event, Finish, GenParams, Grammar};
use crate::template::ChatTemplate;
use basalt_chat::{
    ChatRequest, ChatResponse, ContentBlock, Delta, Role, StopReason, ToolChoice,
    ToolResultContent, Usage,
};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Instant;
use tokio::sync::mpsc;

#[derive(Debug, Clone, PartialEq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum ChatError {
    #[error("Input is too long for requested model.")]
    TooLong { tokens: usize, window: usize },
    #[error("Too many requests, please wait before trying again.")]
    Busy,
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Engine(String),
    /// The engine's worker process died while serving the request (it is being restarted).
    #[error("{0}")]
    Unavailable(String),
    /// No engine could be started to serve the request.
    #[error("{0}")]
    NotReady(String),
}

impl From<EngineError> for ChatError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::TooLong { tokens, window } => ChatError::TooLong { tokens, window },
            EngineError::Busy => ChatError::Busy,
            EngineError::Grammar(m) => ChatError::Invalid(format!(
                "The tool schema could not be turned into a grammar: {m}"
            )),
            other => ChatError::Engine(other.to_string()),
        }
    }
}

/// What the model emits, in order.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum ChatEvent {
    Delta(Delta),
    Done(ChatResponse),
}

pub struct ChatModel {
    engine: ChatEngine,
    template: Option<ChatTemplate>,
    tool_call_token: Option<u32>,
    pub name: String,
}

/// A rendered prompt.
pub struct Prompt {
    pub text: String,
    pub tokens: Vec<u32>,
    pub grammar: Option<Grammar>,
    /// The prompt already opened a tool call: everything generated is its JSON.
    pub forced_tool_call: bool,
}

fn text_of(blocks: &[ContentBlock]) -> String {
    blocks
        .iter()
        .filter_map(|b| match b {
            ContentBlock::Text(t) => Some(t.as_str()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Tool results as the text the model reads (JSON in Python's `json.dumps` style).
pub(crate) fn tool_result_text(content: &[ToolResultContent]) -> String {
    content
        .iter()
        .map(|c| match c {
            ToolResultContent::Text(t) => t.clone(),
            ToolResultContent::Json(v) => {
                let mut s = String::new();
                crate::template::python_json(v, &mut s);
                s
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Neutral messages → the OpenAI-style list chat templates expect.
pub fn template_messages(req: &ChatRequest) -> Result<Value, ChatError> {
    let mut out = Vec::new();
    if !req.system.is_empty() {
        out.push(json!({"role": "system", "content": req.system.join("\n")}));
    }
    for m in &req.messages {
        if m.content
            .iter()
            .any(|b| matches!(b, ContentBlock::Image { .. }))
        {
            return Err(ChatError::Invalid("The model does not support image input. Remove the image content blocks or configure a vision model.".into()));
        }
        match m.role {
            Role::User => {
                for b in &m.content {
                    if let ContentBlock::ToolResult {
                        content, is_error, ..
                    } = b
                    {
                        let mut text = tool_result_text(content);
                        if *is_error {
                            text = format!("Error: {text}");
                        }
                        out.push(json!({"role": "tool", "content": text}));
                    }
                }
                let text = text_of(&m.content);
                if !text.is_empty()
                    || !m
                        .content
                        .iter()
                        .any(|b| matches!(b, ContentBlock::ToolResult { .. }))
                {
                    out.push(json!({"role": "user", "content": text}));
                }
            }
            Role::Assistant => {
                let calls: Vec<Value> = m
                    .content
                    .iter()
                    .filter_map(|b| match b {
                        ContentBlock::ToolUse { name, input, .. } => {
                            Some(json!({"type": "function", "function": {"name": name, "arguments": input}}))
                        }
                        _ => None,
                    })
                    .collect();
                let mut msg = json!({"role": "assistant", "content": text_of(&m.content)});
                if !calls.is_empty() {
                    msg["tool_calls"] = Value::Array(calls);
                }
                out.push(msg);
            }
        }
    }
    Ok(Value::Array(out))
}

/// The grammar of one tool call `{"name": …, "arguments": …}` for the allowed tools.
pub fn tool_call_grammar(req: &ChatRequest) -> Result<String, ChatError> {
    let allowed: Vec<&basalt_chat::ToolSpec> = match &req.tool_choice {
        ToolChoice::Tool(name) => {
            let t = req
                .tools
                .iter()
                .filter(|t| &t.name == name)
                .collect::<Vec<_>>();
            if t.is_empty() {
                return Err(ChatError::Invalid(format!(
                    "The tool {name} named in toolChoice is not in the tool configuration."
                )));
            }
            t
        }
        _ => req.tools.iter().collect(),
    };
    let variants: Vec<Value> = allowed
        .iter()
        .map(|t| {
            let mut args = t.input_schema.clone();
            if !args.is_object() || args.get("type").is_none() && args.get("properties").is_none() {
                args = json!({"type": "object"});
            }
            json!({
                "type": "object",
                "properties": {"name": {"const": t.name}, "arguments": args},
                "required": ["name", "arguments"],
                "additionalProperties": false,
            })
        })
        .collect();
    let schema = if variants.len() == 1 {
        variants[0].clone()
    } else {
        json!({"oneOf": variants})
    };
    let grammar = llama_cpp_2::json_schema_to_grammar(&schema.to_string())
        .map_err(|e| ChatError::Invalid(format!("Tool schema not supported: {e}")))?;
    // Rename the converter's root so the call can be framed by the surrounding whitespace.
    let mut out = String::new();
    for line in grammar.lines() {
        match line.strip_prefix("root ::=") {
            Some(rest) => out.push_str(&format!("tool-call ::={rest}")),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    // Small models often fence the call as Markdown (```json ... ```): allowed, then stripped.
    out.push_str("fence-open ::= \"```\" \"json\"? [ \\t\\n]*\n");
    out.push_str("root ::= fence-open? [ \\t\\n]* tool-call [ \\t\\n]* \"```\"?\n");
    Ok(out)
}

/// A Converse-style tool-use id (`tooluse_` and 22 alphanumerics).
fn new_tool_id() -> String {
    let hex = uuid::Uuid::new_v4().simple().to_string();
    format!("tooluse_{}", &hex[..22])
}

impl ChatModel {
    pub fn load(path: &Path, config: EngineConfig) -> Result<ChatModel, ChatError> {
        let engine = ChatEngine::load(path, config)?;
        let template = match engine.chat_template() {
            Some(src) => Some(
                ChatTemplate::new(
                    &src,
                    &engine.bos_text().unwrap_or_default(),
                    &engine.eos_text().unwrap_or_default(),
                )
                .map_err(|e| ChatError::Engine(e.to_string()))?,
            ),
            None => None,
        };
        let tool_call_token = engine.special_token("<tool_call>");
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(ChatModel {
            engine,
            template,
            tool_call_token,
            name,
        })
    }

    pub fn engine(&self) -> &ChatEngine {
        &self.engine
    }

    pub fn context_window(&self) -> usize {
        self.engine.config.ctx_per_seq as usize
    }

    /// Renders the prompt for `req` and tokenizes it.
    pub fn prompt(&self, req: &ChatRequest) -> Result<Prompt, ChatError> {
        let use_tools = !req.tools.is_empty() && req.tool_choice != ToolChoice::None;
        let (mut text, grammar_allowed) = match (&req.raw_prompt, &self.template) {
            (Some(raw), _) => (raw.clone(), false),
            (None, Some(t)) => {
                // A trailing assistant message is a prefill: the answer continues it.
                let prefill = match req.messages.last() {
                    Some(m)
                        if m.role == Role::Assistant
                            && m.content.iter().all(|b| matches!(b, ContentBlock::Text(_))) =>
                    {
                        Some(text_of(&m.content))
                    }
                    _ => None,
                };
                let mut messages = template_messages(req)?;
                if prefill.is_some()
                    && let Value::Array(list) = &mut messages
                {
                    list.pop();
                }
                let tools: Option<Value> = use_tools.then(|| {
                    Value::Array(
                        req.tools
                            .iter()
                            .map(|t| json!({"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.input_schema}}))
                            .collect(),
                    )
                });
                let mut text = t
                    .render(&messages, tools.as_ref(), true)
                    .map_err(|e| ChatError::Engine(e.to_string()))?;
                text.push_str(prefill.as_deref().unwrap_or(""));
                (text, prefill.is_none())
            }
            (None, None) => {
                let messages = template_messages(req)?;
                let mut s = String::new();
                for m in messages.as_array().into_iter().flatten() {
                    s.push_str(&format!(
                        "{}: {}\n",
                        m["role"].as_str().unwrap_or(""),
                        m["content"].as_str().unwrap_or("")
                    ));
                }
                s.push_str("assistant: ");
                (s, false)
            }
        };
        let mut grammar = None;
        let mut forced = false;
        if use_tools && grammar_allowed {
            let g = tool_call_grammar(req)?;
            match (&req.tool_choice, self.tool_call_token) {
                (ToolChoice::Any | ToolChoice::Tool(_), _) => {
                    text.push_str("<tool_call>\n");
                    grammar = Some(Grammar::Always(g));
                    forced = true;
                }
                (_, Some(trigger)) => {
                    // Right after tool results the model should answer; a JSON opening there
                    // is more likely an echo of the result than a new call.
                    let json_start = req.messages.last().is_some_and(|m| {
                        m.role == Role::User
                            && !m
                                .content
                                .iter()
                                .any(|b| matches!(b, ContentBlock::ToolResult { .. }))
                    });
                    grammar = Some(Grammar::Lazy {
                        trigger,
                        grammar: g,
                        json_start,
                    })
                }
                (_, None) => {}
            }
        }
        let tokens = self.engine.tokenize(&text, true);
        Ok(Prompt {
            text,
            tokens,
            grammar,
            forced_tool_call: forced,
        })
    }

    pub fn count_tokens(&self, req: &ChatRequest) -> Result<usize, ChatError> {
        Ok(self.prompt(req)?.tokens.len())
    }

    /// Starts generating; events arrive on the returned channel, ending with `Done`.
    pub fn stream(
        &self,
        req: &ChatRequest,
    ) -> Result<mpsc::UnboundedReceiver<Result<ChatEvent, ChatError>>, ChatError> {
        let started = Instant::now();
        let prompt = self.prompt(req)?;
        let window = self.context_window();
        let max_tokens = req.sampling.max_tokens.max(1);
        if prompt.tokens.len() >= window {
            return Err(ChatError::TooLong {
                tokens: prompt.tokens.len(),
                window,
            });
        }
        let params = GenParams {
            max_tokens,
            temperature: req.sampling.temperature,
            top_p: req.sampling.top_p,
            top_k: req.sampling.top_k,
            seed: req.sampling.seed,
            stop: req.sampling.stop_sequences.clone(),
            grammar: prompt.grammar.clone(),
        };
        let mut events = self.engine.generate(prompt.tokens, params)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let forced = prompt.forced_tool_call;
        tokio::spawn(async move {
            let mut text = String::new();
            let mut text_open = false;
            let mut in_call = forced;
            let mut call_json = String::new();
            let mut content: Vec<ContentBlock> = Vec::new();
            while let Some(ev) = events.recv().await {
                if tx.is_closed() {
                    // The caller went away: dropping `events` stops the engine's sequence.
                    return;
                }
                match ev {
                    Event::Text(t) if in_call => call_json.push_str(&t),
                    Event::Text(t) => {
                        if t.is_empty() {
                            continue;
                        }
                        text_open = true;
                        text.push_str(&t);
                        let _ = tx.send(Ok(ChatEvent::Delta(Delta::Text {
                            index: content.len(),
                            text: t,
                        })));
                    }
                    Event::Triggered => {
                        if text_open {
                            let _ = tx.send(Ok(ChatEvent::Delta(Delta::BlockStop {
                                index: content.len(),
                            })));
                            content.push(ContentBlock::Text(std::mem::take(&mut text)));
                            text_open = false;
                        }
                        in_call = true;
                    }
                    Event::Done {
                        finish,
                        prompt_tokens,
                        generated_tokens,
                        first_token_ms,
                        ..
                    } => {
                        if text_open {
                            let _ = tx.send(Ok(ChatEvent::Delta(Delta::BlockStop {
                                index: content.len(),
                            })));
                            content.push(ContentBlock::Text(std::mem::take(&mut text)));
                        }
                        let mut stop_reason = match finish {
                            Finish::Eog => StopReason::EndTurn,
                            Finish::MaxTokens => StopReason::MaxTokens,
                            Finish::Stop(s) => StopReason::StopSequence(s),
                        };
                        if in_call {
                            let json = call_json.trim();
                            let json = json
                                .strip_prefix("```json")
                                .or_else(|| json.strip_prefix("```"))
                                .unwrap_or(json);
                            let json = json.trim().strip_suffix("```").unwrap_or(json).trim();
                            match serde_json::from_str::<Value>(json) {
                                Ok(call) => {
                                    let name = call["name"].as_str().unwrap_or_default().to_owned();
                                    let input =
                                        call.get("arguments").cloned().unwrap_or_else(|| json!({}));
                                    let id = new_tool_id();
                                    let index = content.len();
                                    let _ = tx.send(Ok(ChatEvent::Delta(Delta::ToolUseStart {
                                        index,
                                        id: id.clone(),
                                        name: name.clone(),
                                    })));
                                    let _ = tx.send(Ok(ChatEvent::Delta(Delta::ToolInput {
                                        index,
                                        json: input.to_string(),
                                    })));
                                    let _ =
                                        tx.send(Ok(ChatEvent::Delta(Delta::BlockStop { index })));
                                    content.push(ContentBlock::ToolUse { id, name, input });
                                    stop_reason = StopReason::ToolUse;
                                }
                                Err(_) if stop_reason == StopReason::MaxTokens => {
                                    // The call was cut off by max_tokens: report the partial text.
                                    content.push(ContentBlock::Text(call_json.clone()));
                                }
                                Err(e) => {
                                    let _ = tx.send(Err(ChatError::Engine(format!(
                                        "the model produced an invalid tool call: {e}"
                                    ))));
                                    return;
                                }
                            }
                        }
                        let elapsed = started.elapsed().as_millis() as u64;
                        let _ = tx.send(Ok(ChatEvent::Done(ChatResponse {
                            content,
                            stop_reason,
                            usage: Usage {
                                input_tokens: prompt_tokens as u32,
                                output_tokens: generated_tokens as u32,
                                ..Default::default()
                            },
                            latency_ms: elapsed,
                            first_token_ms,
                        })));
                        return;
                    }
                    Event::Error(e) => {
                        let _ = tx.send(Err(ChatError::Engine(e)));
                        return;
                    }
                }
            }
            let _ = tx.send(Err(ChatError::Engine(
                "the inference worker stopped".into(),
            )));
        });
        Ok(rx)
    }

    /// Generates the whole response.
    pub async fn complete(&self, req: &ChatRequest) -> Result<ChatResponse, ChatError> {
        let mut rx = self.stream(req)?;
        while let Some(ev) = rx.recv().await {
            if let ChatEvent::Done(resp) = ev? {
                return Ok(resp);
            }
        }
        Err(ChatError::Engine("the inference worker stopped".into()))
    }
}
