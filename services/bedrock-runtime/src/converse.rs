//! The Converse API's own shapes (Bedrock's provider-neutral chat format).

use crate::B64;
use basalt_chat::providers::{self, conversation};
use basalt_chat::{
    ChatRequest, ChatResponse, ContentBlock, Message, Role, Sampling, StopReason, ToolChoice,
    ToolResultContent, ToolSpec, Usage,
};
use basalt_core::AwsError;
use base64::Engine;
use serde_json::{Value, json};

/// Converse's default when `inferenceConfig.maxTokens` is absent.
const DEFAULT_MAX_TOKENS: u32 = 1024;

fn block(v: &Value) -> Result<Option<ContentBlock>, AwsError> {
    if let Some(t) = v.get("text").and_then(Value::as_str) {
        return Ok(Some(ContentBlock::Text(t.to_owned())));
    }
    // Content marked for the guardrail is ordinary text to the model.
    if let Some(t) = v["guardContent"]["text"]["text"].as_str() {
        return Ok(Some(ContentBlock::Text(t.to_owned())));
    }
    if let Some(img) = v.get("image") {
        let format = img["format"].as_str().unwrap_or("png").to_owned();
        let bytes = img["source"]["bytes"]
            .as_str()
            .and_then(|b| B64.decode(b).ok())
            .unwrap_or_default();
        return Ok(Some(ContentBlock::Image { format, bytes }));
    }
    if let Some(tu) = v.get("toolUse") {
        return Ok(Some(ContentBlock::ToolUse {
            id: tu["toolUseId"].as_str().unwrap_or_default().to_owned(),
            name: tu["name"].as_str().unwrap_or_default().to_owned(),
            input: tu.get("input").cloned().unwrap_or_else(|| json!({})),
        }));
    }
    if let Some(tr) = v.get("toolResult") {
        let content = tr["content"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| {
                if let Some(t) = c.get("text").and_then(Value::as_str) {
                    Some(ToolResultContent::Text(t.to_owned()))
                } else {
                    c.get("json").map(|j| ToolResultContent::Json(j.clone()))
                }
            })
            .collect();
        return Ok(Some(ContentBlock::ToolResult {
            tool_use_id: tr["toolUseId"].as_str().unwrap_or_default().to_owned(),
            content,
            is_error: tr["status"].as_str() == Some("error"),
        }));
    }
    if let Some(doc) = v.get("document") {
        let bytes = doc["source"]["bytes"]
            .as_str()
            .and_then(|b| B64.decode(b).ok())
            .unwrap_or_default();
        let text = basalt_chat::providers::document_text(
            doc["format"].as_str().unwrap_or_default(),
            doc["name"].as_str().unwrap_or_default(),
            &bytes,
        )?;
        return Ok(Some(ContentBlock::Text(text)));
    }
    if v.get("cachePoint").is_some() || v.get("reasoningContent").is_some() {
        return Ok(None);
    }
    let kind = v
        .as_object()
        .and_then(|o| o.keys().next().cloned())
        .unwrap_or_default();
    Err(AwsError::validation(format!(
        "The model does not support the {kind} content block."
    )))
}

/// The text of a `text` block that is empty or only whitespace: Bedrock calls it blank.
fn blank(v: &Value) -> bool {
    v.get("text")
        .and_then(Value::as_str)
        .is_some_and(|t| t.trim().is_empty())
}

/// Bedrock's rules on the messages of a Converse request, checked on the request as sent (so
/// block indices are the caller's), with Bedrock's messages. Sources of the wording:
///
/// - empty content: aws/aws-sdk-net#4015 ("The content field in the Message object at
///   messages.1 is empty. …");
/// - blank text: OpenHands/OpenHands#5722, Just-Curieous/Curie#14 ("The text field in the
///   ContentBlock object at messages.11.content.0 is blank. …"). Whitespace-only text counts as
///   blank here (Java's `isBlank`, which the word suggests); only empty text was seen reported;
/// - a toolUse in a user message: strands-agents/sdk-python#2214; a toolResult in an assistant
///   message is *modelled* on it;
/// - an error toolResult without content: aws-samples/sample-multi-agent-orchestration-chat-on-agentcore#15;
/// - more toolResults than the previous turn's toolUses: strands-agents/harness-sdk#1435,
///   Just-Curieous/Curie#16; toolUses without results in the next message (also what a
///   toolResult naming another id leads to): camel-ai/camel#3954, agno-agi/agno#6698
///   ("Expected toolResult blocks at messages.2.content for the following Ids: a, b");
/// - documents: aws-samples/generative-ai-use-cases#1685 (more than 5), maximhq/bifrost#7003
///   (duplicate names; compared without case, as aws-samples/sample-strands-agent-with-agentcore#290
///   found Bedrock does).
fn check_messages(messages: &[Value]) -> Result<(), AwsError> {
    let mut documents: Vec<String> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let user = m["role"] == "user";
        let blocks = m["content"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        if blocks.is_empty() {
            return Err(AwsError::validation(format!(
                "The content field in the Message object at messages.{i} is empty. Add a ContentBlock object to the content field and try again."
            )));
        }
        for (j, b) in blocks.iter().enumerate() {
            if blank(b) {
                return Err(AwsError::validation(format!(
                    "The text field in the ContentBlock object at messages.{i}.content.{j} is blank. Add text to the text field, and try again."
                )));
            }
            if user && b.get("toolUse").is_some() {
                return Err(AwsError::validation(
                    "User messages cannot contain tool uses. Please remove the tool uses and try again.",
                ));
            }
            if !user && b.get("toolResult").is_some() {
                return Err(AwsError::validation(
                    "Assistant messages cannot contain tool results. Please remove the tool results and try again.",
                ));
            }
            if let Some(tr) = b.get("toolResult")
                && tr["status"] == "error"
                && tr["content"].as_array().is_none_or(Vec::is_empty)
            {
                return Err(AwsError::validation(format!(
                    "The content field at messages.{i}.content.{j}.toolResult cannot be empty when status value is error."
                )));
            }
            if let Some(doc) = b.get("document") {
                let name = doc["name"].as_str().unwrap_or_default().to_lowercase();
                if documents.contains(&name) {
                    return Err(AwsError::validation(
                        "Messages can't contain duplicate document names. Rename the document and retry your request.",
                    ));
                }
                documents.push(name);
                if documents.len() > 5 {
                    return Err(AwsError::validation(
                        "You can't include more than 5 documents in a request.",
                    ));
                }
            }
        }
    }
    let ids = |m: &Value, kind: &str| -> Vec<String> {
        m["content"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|b| b.get(kind))
            .map(|t| t["toolUseId"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    for (i, m) in messages.iter().enumerate() {
        if m["role"] != "user" {
            continue;
        }
        let uses = if i > 0 {
            ids(&messages[i - 1], "toolUse")
        } else {
            Vec::new()
        };
        let results = ids(m, "toolResult");
        if results.len() > uses.len() {
            return Err(AwsError::validation(format!(
                "The number of toolResult blocks at messages.{i}.content exceeds the number of toolUse blocks of previous turn."
            )));
        }
        let missing: Vec<&str> = uses
            .iter()
            .filter(|u| !results.contains(u))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Err(AwsError::validation(format!(
                "Expected toolResult blocks at messages.{i}.content for the following Ids: {}",
                missing.join(", ")
            )));
        }
    }
    Ok(())
}

/// Parses a Converse / ConverseStream (or CountTokens `converse`) input, with Bedrock's
/// validation of the conversation (the gateway has already checked the botocore model's own
/// constraints: required members, enums, `temperature`/`topP` in 0..1, `maxTokens` >= 1, tool
/// name pattern and length, at least one tool in a `toolConfig`).
pub fn parse(input: &Value) -> Result<ChatRequest, AwsError> {
    let mut req = ChatRequest::default();
    for s in input["system"].as_array().into_iter().flatten() {
        if let Some(t) = s
            .get("text")
            .and_then(Value::as_str)
            .or_else(|| s["guardContent"]["text"]["text"].as_str())
        {
            req.system.push(t.to_owned());
        }
    }
    let messages = input["messages"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let mut roles = Vec::with_capacity(messages.len());
    for (i, m) in messages.iter().enumerate() {
        roles.push(match m["role"].as_str() {
            Some("user") => Role::User,
            Some("assistant") => Role::Assistant,
            // The gateway rejects these first, in these words (botocore's enum on `role`).
            _ => {
                return Err(AwsError::validation(format!(
                    "1 validation error detected: Value '{}' at 'messages.{}.role' failed to satisfy constraint: Member must satisfy enum value set: [user, assistant]",
                    m["role"].as_str().unwrap_or("null"),
                    i + 1
                )));
            }
        });
    }
    conversation::check_roles(&roles)?;
    check_messages(messages)?;
    for (m, role) in messages.iter().zip(roles) {
        let mut content = Vec::new();
        for b in m["content"].as_array().into_iter().flatten() {
            if let Some(b) = block(b)? {
                content.push(b);
            }
        }
        req.messages.push(Message { role, content });
    }
    let cfg = &input["inferenceConfig"];
    req.sampling = Sampling {
        max_tokens: cfg["maxTokens"]
            .as_u64()
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
            .unwrap_or(DEFAULT_MAX_TOKENS),
        temperature: cfg["temperature"].as_f64().map(|t| t as f32),
        top_p: cfg["topP"].as_f64().map(|t| t as f32),
        top_k: input["additionalModelRequestFields"]["top_k"]
            .as_u64()
            .or(input["additionalModelRequestFields"]["topK"].as_u64())
            .map(|k| k as u32),
        seed: input["additionalModelRequestFields"]["seed"].as_u64(),
        stop_sequences: cfg["stopSequences"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect(),
    };
    if let Some(tc) = input.get("toolConfig").filter(|v| !v.is_null()) {
        for t in tc["tools"].as_array().into_iter().flatten() {
            if let Some(spec) = t.get("toolSpec") {
                let name = spec["name"].as_str().unwrap_or_default().to_owned();
                if req.tools.iter().any(|t| t.name == name) {
                    // Claude's own answer, which Bedrock passes on (anthropics/claude-code#10687
                    // for the wording, "The model returned the following errors: " as Bedrock
                    // prefixes model errors, e.g. aws/aws-sdk-net#4015); modelled for the others.
                    return Err(AwsError::validation(
                        "The model returned the following errors: tools: Tool names must be unique.",
                    ));
                }
                req.tools.push(ToolSpec {
                    name,
                    description: spec["description"].as_str().unwrap_or_default().to_owned(),
                    input_schema: spec["inputSchema"]["json"].clone(),
                });
            }
        }
        let choice = &tc["toolChoice"];
        req.tool_choice = if choice.get("any").is_some() {
            ToolChoice::Any
        } else if let Some(name) = choice["tool"]["name"].as_str() {
            if !req.tools.iter().any(|t| t.name == name) {
                // Modelled: Bedrock's wording for this was not found.
                return Err(AwsError::validation(format!(
                    "The tool {name} named in toolConfig.toolChoice.tool is not in toolConfig.tools. Add the tool to toolConfig.tools or choose another tool, and try again."
                )));
            }
            ToolChoice::Tool(name.to_owned())
        } else {
            ToolChoice::Auto
        };
    } else if req.messages.iter().flat_map(|m| &m.content).any(|b| {
        matches!(
            b,
            ContentBlock::ToolUse { .. } | ContentBlock::ToolResult { .. }
        )
    }) {
        return Err(AwsError::validation(
            "The toolConfig field must be defined when using toolUse and toolResult content blocks.",
        ));
    }
    Ok(req)
}

/// The most output tokens Converse accepts in `inferenceConfig.maxTokens` for `model_id`.
/// Converse caps Claude 3.5 Sonnet (June 2024) at 4096 where InvokeModel takes 8192
/// (boto/boto3#4279, vercel/ai#2772, sigoden/aichat#813); other models as
/// [`providers::max_output_tokens`].
pub fn max_output_tokens(model_id: &str) -> Option<u32> {
    let base = providers::base_model_id(model_id)?;
    if base.starts_with("anthropic.claude-3-5-sonnet-20240620") {
        return Some(4096);
    }
    providers::max_output_tokens(model_id)
}

/// `inferenceConfig.maxTokens` against the model's output limit, in Bedrock's words
/// (sigoden/aichat#813, vercel/ai#2772; aws-samples/bedrock-access-gateway#41 for Llama's 2048).
pub fn check_max_tokens(model_id: &str, input: &Value) -> Result<(), AwsError> {
    let Some(requested) = input["inferenceConfig"]["maxTokens"].as_u64() else {
        return Ok(());
    };
    match max_output_tokens(model_id) {
        Some(limit) if requested > u64::from(limit) => Err(AwsError::validation(format!(
            "The maximum tokens you requested exceeds the model limit of {limit}. Try again with a maximum tokens value that is lower than {limit}."
        ))),
        _ => Ok(()),
    }
}

pub fn stop_reason(s: &StopReason) -> &'static str {
    match s {
        StopReason::EndTurn => "end_turn",
        StopReason::MaxTokens => "max_tokens",
        StopReason::StopSequence(_) => "stop_sequence",
        StopReason::ToolUse => "tool_use",
    }
}

/// Converse's `TokenUsage`: `inputTokens` leaves out the tokens read from or written to the
/// prompt cache, `totalTokens` counts them.
pub fn usage(u: &Usage) -> Value {
    let cached = u.cache_read_input_tokens + u.cache_write_input_tokens;
    let mut v = json!({"inputTokens": u.input_tokens, "outputTokens": u.output_tokens, "totalTokens": u.input_tokens + u.output_tokens + cached});
    if cached > 0 {
        v["cacheReadInputTokens"] = u.cache_read_input_tokens.into();
        v["cacheWriteInputTokens"] = u.cache_write_input_tokens.into();
        // Writes by TTL, 1h before 5m, as Bedrock sorts them.
        let mut details = Vec::new();
        if u.cache_write_1h_input_tokens > 0 {
            details.push(json!({"ttl": "1h", "inputTokens": u.cache_write_1h_input_tokens}));
        }
        let five = u.cache_write_input_tokens
            - u.cache_write_1h_input_tokens
                .min(u.cache_write_input_tokens);
        if five > 0 {
            details.push(json!({"ttl": "5m", "inputTokens": five}));
        }
        if !details.is_empty() {
            v["cacheDetails"] = Value::Array(details);
        }
    }
    v
}

pub fn response(resp: &ChatResponse) -> Value {
    let content: Vec<Value> = resp
        .content
        .iter()
        .filter_map(|b| match b {
            ContentBlock::Text(t) => Some(json!({"text": t})),
            ContentBlock::ToolUse { id, name, input } => {
                Some(json!({"toolUse": {"toolUseId": id, "name": name, "input": input}}))
            }
            _ => None,
        })
        .collect();
    json!({
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop_reason(&resp.stop_reason),
        "usage": usage(&resp.usage),
        "metrics": {"latencyMs": resp.latency_ms},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(input: Value) -> String {
        let err = parse(&input).unwrap_err();
        assert_eq!(err.code, "ValidationException", "{}", err.message);
        err.message
    }

    fn user(text: &str) -> Value {
        json!({"role": "user", "content": [{"text": text}]})
    }

    fn assistant(text: &str) -> Value {
        json!({"role": "assistant", "content": [{"text": text}]})
    }

    fn tool_use(id: &str) -> Value {
        json!({"toolUse": {"toolUseId": id, "name": "w", "input": {"city": "Paris"}}})
    }

    fn tool_result(id: &str) -> Value {
        json!({"toolResult": {"toolUseId": id, "content": [{"text": "sunny"}]}})
    }

    fn tools() -> Value {
        json!({"tools": [{"toolSpec": {"name": "w", "inputSchema": {"json": {"type": "object"}}}}]})
    }

    #[test]
    fn parses_tools_and_rejects_bad_conversations() {
        let req = parse(&json!({
            "messages": [{"role": "user", "content": [{"text": "hi"}]}],
            "system": [{"text": "be brief"}],
            "inferenceConfig": {"maxTokens": 50, "temperature": 0, "stopSequences": ["x"]},
            "toolConfig": {"tools": [{"toolSpec": {"name": "w", "description": "d", "inputSchema": {"json": {"type": "object"}}}}], "toolChoice": {"tool": {"name": "w"}}},
        }))
        .unwrap();
        assert_eq!(req.system, vec!["be brief"]);
        assert_eq!(req.sampling.max_tokens, 50);
        assert_eq!(req.tool_choice, ToolChoice::Tool("w".into()));
        assert_eq!(req.tools[0].input_schema, json!({"type": "object"}));
        assert!(
            parse(&json!({"messages": [{"role": "user", "content": [{"video": {}}]}]})).is_err()
        );
        let no_config = json!({"messages": [
            user("weather?"),
            {"role": "assistant", "content": [tool_use("t")]},
            {"role": "user", "content": [tool_result("t")]},
        ]});
        assert_eq!(
            msg(no_config),
            "The toolConfig field must be defined when using toolUse and toolResult content blocks."
        );
    }

    #[test]
    fn conversation_must_start_with_user_and_alternate() {
        let start = "A conversation must start with a user message. Try again with a conversation that starts with a user message.";
        let alternate = "A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again.";
        // An empty conversation used to reach the chat template and fail there.
        assert_eq!(msg(json!({"messages": []})), start);
        assert_eq!(msg(json!({"system": [{"text": "s"}]})), start);
        assert_eq!(
            msg(json!({"messages": [assistant("hi"), user("x")]})),
            start
        );
        assert_eq!(msg(json!({"messages": [user("a"), user("b")]})), alternate);
        assert_eq!(
            msg(json!({"messages": [user("a"), assistant("b"), assistant("c")]})),
            alternate
        );
        assert!(
            msg(json!({"messages": [{"role": "system", "content": [{"text": "x"}]}]}))
                .contains("Member must satisfy enum value set: [user, assistant]")
        );
        // A trailing assistant message (prefill) is a valid conversation.
        let req = parse(&json!({"messages": [user("a"), assistant("b")]})).unwrap();
        assert_eq!(req.messages.len(), 2);
    }

    #[test]
    fn empty_content_and_blank_text() {
        assert_eq!(
            msg(json!({"messages": [user("a"), {"role": "assistant", "content": []}]})),
            "The content field in the Message object at messages.1 is empty. Add a ContentBlock object to the content field and try again."
        );
        assert_eq!(
            msg(json!({"messages": [user("")]})),
            "The text field in the ContentBlock object at messages.0.content.0 is blank. Add text to the text field, and try again."
        );
        assert_eq!(
            msg(
                json!({"messages": [user("a"), {"role": "assistant", "content": [{"text": "ok"}, {"text": " \n"}]}]})
            ),
            "The text field in the ContentBlock object at messages.1.content.1 is blank. Add text to the text field, and try again."
        );
        // Indices are the caller's, cache points included.
        assert!(
            msg(json!({"messages": [{"role": "user", "content": [{"cachePoint": {"type": "default"}}, {"text": ""}]}]}))
                .contains("messages.0.content.1 is blank")
        );
    }

    #[test]
    fn tool_blocks_pair_across_turns() {
        let conv = |messages: Value| json!({"messages": messages, "toolConfig": tools()});
        let ok = parse(&conv(json!([
            user("weather?"),
            {"role": "assistant", "content": [{"text": "Checking."}, tool_use("a"), tool_use("b")]},
            {"role": "user", "content": [tool_result("b"), tool_result("a"), {"text": "thanks"}]},
        ])))
        .unwrap();
        assert_eq!(ok.messages[2].content.len(), 3);
        assert_eq!(
            msg(conv(json!([
                user("weather?"),
                assistant("no tools here"),
                {"role": "user", "content": [tool_result("a")]},
            ]))),
            "The number of toolResult blocks at messages.2.content exceeds the number of toolUse blocks of previous turn."
        );
        assert_eq!(
            msg(conv(
                json!([{"role": "user", "content": [tool_result("a")]}])
            )),
            "The number of toolResult blocks at messages.0.content exceeds the number of toolUse blocks of previous turn."
        );
        assert_eq!(
            msg(conv(json!([
                user("weather?"),
                {"role": "assistant", "content": [tool_use("a"), tool_use("b")]},
                {"role": "user", "content": [tool_result("a")]},
            ]))),
            "Expected toolResult blocks at messages.2.content for the following Ids: b"
        );
        // A result naming another id leaves the call without its result.
        assert_eq!(
            msg(conv(json!([
                user("weather?"),
                {"role": "assistant", "content": [tool_use("a")]},
                {"role": "user", "content": [tool_result("zzz")]},
            ]))),
            "Expected toolResult blocks at messages.2.content for the following Ids: a"
        );
        assert_eq!(
            msg(conv(json!([
                user("weather?"),
                {"role": "assistant", "content": [tool_use("a"), tool_use("b")]},
                user("never mind"),
            ]))),
            "Expected toolResult blocks at messages.2.content for the following Ids: a, b"
        );
        assert_eq!(
            msg(conv(
                json!([{"role": "user", "content": [{"text": "x"}, tool_use("a")]}])
            )),
            "User messages cannot contain tool uses. Please remove the tool uses and try again."
        );
        assert!(
            msg(conv(
                json!([user("x"), {"role": "assistant", "content": [tool_result("a")]}])
            ))
            .starts_with("Assistant messages cannot contain tool results.")
        );
        assert_eq!(
            msg(conv(json!([
                user("weather?"),
                {"role": "assistant", "content": [tool_use("a")]},
                {"role": "user", "content": [{"toolResult": {"toolUseId": "a", "content": [], "status": "error"}}]},
            ]))),
            "The content field at messages.2.content.0.toolResult cannot be empty when status value is error."
        );
        // A tool call the conversation ends on (no next message yet) is fine.
        assert!(
            parse(&conv(
                json!([user("x"), {"role": "assistant", "content": [tool_use("a")]}])
            ))
            .is_ok()
        );
    }

    #[test]
    fn tool_config_rules() {
        let spec = |name: &str| json!({"toolSpec": {"name": name, "inputSchema": {"json": {"type": "object"}}}});
        assert_eq!(
            msg(json!({"messages": [user("x")], "toolConfig": {"tools": [spec("a"), spec("a")]}})),
            "The model returned the following errors: tools: Tool names must be unique."
        );
        assert!(
            msg(json!({"messages": [user("x")], "toolConfig": {"tools": [spec("a")], "toolChoice": {"tool": {"name": "b"}}}}))
                .starts_with("The tool b named in toolConfig.toolChoice.tool is not in toolConfig.tools.")
        );
        let any = parse(&json!({"messages": [user("x")], "toolConfig": {"tools": [spec("a"), spec("b")], "toolChoice": {"any": {}}}})).unwrap();
        assert_eq!(any.tool_choice, ToolChoice::Any);
        assert_eq!(any.tools.len(), 2);
    }

    #[test]
    fn document_limits() {
        let doc = |name: &str| json!({"document": {"format": "txt", "name": name, "source": {"bytes": "aGk="}}});
        let with = |docs: Vec<Value>| {
            let mut content = docs;
            content.push(json!({"text": "summarize"}));
            json!({"messages": [{"role": "user", "content": content}]})
        };
        assert!(parse(&with((1..=5).map(|i| doc(&format!("d{i}"))).collect())).is_ok());
        assert_eq!(
            msg(with((1..=6).map(|i| doc(&format!("d{i}"))).collect())),
            "You can't include more than 5 documents in a request."
        );
        assert_eq!(
            msg(with(vec![doc("Report"), doc("report")])),
            "Messages can't contain duplicate document names. Rename the document and retry your request."
        );
        // Across turns too: the whole request is one set of documents.
        assert_eq!(
            msg(json!({"messages": [
                {"role": "user", "content": [doc("a"), {"text": "x"}]},
                assistant("ok"),
                {"role": "user", "content": [doc("a"), {"text": "y"}]},
            ]})),
            "Messages can't contain duplicate document names. Rename the document and retry your request."
        );
    }

    #[test]
    fn max_tokens_against_the_model_limit() {
        let input = |n: u64| json!({"inferenceConfig": {"maxTokens": n}});
        let haiku = "anthropic.claude-3-haiku-20240307-v1:0";
        assert!(check_max_tokens(haiku, &input(4096)).is_ok());
        assert!(check_max_tokens(haiku, &json!({})).is_ok());
        let err = check_max_tokens(haiku, &input(4097)).unwrap_err();
        assert_eq!(err.code, "ValidationException");
        assert_eq!(
            err.message,
            "The maximum tokens you requested exceeds the model limit of 4096. Try again with a maximum tokens value that is lower than 4096."
        );
        // Converse keeps Claude 3.5 Sonnet v1 at 4096; v2 has 8192.
        assert!(
            check_max_tokens("us.anthropic.claude-3-5-sonnet-20240620-v1:0", &input(8192)).is_err()
        );
        assert!(
            check_max_tokens("anthropic.claude-3-5-sonnet-20241022-v2:0", &input(8192)).is_ok()
        );
        assert!(
            check_max_tokens("anthropic.claude-sonnet-4-20250514-v1:0", &input(64_000)).is_ok()
        );
        assert!(check_max_tokens("anthropic.claude-opus-4-20250514-v1:0", &input(32_001)).is_err());
        let llama = check_max_tokens("meta.llama3-1-70b-instruct-v1:0", &input(4096)).unwrap_err();
        assert!(
            llama.message.contains("model limit of 2048"),
            "{}",
            llama.message
        );
        assert!(check_max_tokens("amazon.titan-text-lite-v1", &input(4097)).is_err());
        assert!(check_max_tokens("amazon.titan-text-express-v1", &input(8192)).is_ok());
        assert!(check_max_tokens("mistral.mixtral-8x7b-instruct-v0:1", &input(8192)).is_err());
        // No documented figure for Nova: left to the generation limit.
        assert!(check_max_tokens("amazon.nova-pro-v1:0", &input(9000)).is_ok());
    }
}
