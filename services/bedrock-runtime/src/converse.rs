//! The Converse API's own shapes (Bedrock's provider-neutral chat format).

use crate::B64;
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

/// Parses a Converse / ConverseStream (or CountTokens `converse`) input.
pub fn parse(input: &Value) -> Result<ChatRequest, AwsError> {
    let mut req = ChatRequest::default();
    for s in input["system"].as_array().into_iter().flatten() {
        if let Some(t) = s.get("text").and_then(Value::as_str) {
            req.system.push(t.to_owned());
        }
    }
    let messages = input["messages"].as_array().cloned().unwrap_or_default();
    for (i, m) in messages.iter().enumerate() {
        let role = match m["role"].as_str() {
            Some("user") => Role::User,
            Some("assistant") => Role::Assistant,
            _ => {
                return Err(AwsError::validation(format!(
                    "messages.{}.role must be user or assistant",
                    i + 1
                )));
            }
        };
        if i == 0 && role != Role::User {
            return Err(AwsError::validation(
                "A conversation must start with a user message. Try again with a conversation that starts with a user message.",
            ));
        }
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
            .map(|n| n as u32)
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
                req.tools.push(ToolSpec {
                    name: spec["name"].as_str().unwrap_or_default().to_owned(),
                    description: spec["description"].as_str().unwrap_or_default().to_owned(),
                    input_schema: spec["inputSchema"]["json"].clone(),
                });
            }
        }
        let choice = &tc["toolChoice"];
        req.tool_choice = if choice.get("any").is_some() {
            ToolChoice::Any
        } else if let Some(name) = choice["tool"]["name"].as_str() {
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

pub fn stop_reason(s: &StopReason) -> &'static str {
    match s {
        StopReason::EndTurn => "end_turn",
        StopReason::MaxTokens => "max_tokens",
        StopReason::StopSequence(_) => "stop_sequence",
        StopReason::ToolUse => "tool_use",
    }
}

pub fn usage(u: &Usage) -> Value {
    json!({"inputTokens": u.input_tokens, "outputTokens": u.output_tokens, "totalTokens": u.input_tokens + u.output_tokens})
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
            parse(&json!({"messages": [{"role": "assistant", "content": [{"text": "x"}]}]}))
                .is_err()
        );
        assert!(
            parse(&json!({"messages": [{"role": "user", "content": [{"video": {}}]}]})).is_err()
        );
        let no_config = json!({"messages": [{"role": "user", "content": [{"toolResult": {"toolUseId": "t", "content": [{"text": "r"}]}}]}]});
        assert!(
            parse(&no_config)
                .unwrap_err()
                .message
                .contains("toolConfig")
        );
    }
}
