//! Amazon Titan Text (Lite, Express, Premier): `inputText` + `textGenerationConfig`.

use super::common::{self, Obj};
use super::{StreamEncoder, templates};
use crate::{ChatRequest, ChatResponse, Delta, Sampling, StopReason, Usage};
use basalt_core::AwsError;
use serde_json::{Value, json};

pub(crate) fn max_token_count(model_id: &str) -> u32 {
    let id = model_id.to_ascii_lowercase();
    if id.contains("lite") {
        4096
    } else if id.contains("premier") {
        3072
    } else {
        8192
    }
}

pub(crate) fn parse(model_id: &str, body: &Value) -> Result<ChatRequest, AwsError> {
    let o = Obj::root(body)?;
    o.only(&["inputText", "textGenerationConfig"])?;
    let input = o.req_str("inputText")?;
    let mut req = templates::request_from_prompt(input);
    let mut sampling = Sampling {
        max_tokens: 512,
        ..Sampling::default()
    };
    if let Some(cfg) = o.opt_obj("textGenerationConfig")? {
        cfg.only(&["temperature", "topP", "maxTokenCount", "stopSequences"])?;
        sampling.temperature = cfg.opt_num("temperature", 0.0, 1.0)?;
        sampling.top_p = cfg.opt_num("topP", 0.0, 1.0)?;
        if let Some(n) = cfg.opt_u32("maxTokenCount", 0, max_token_count(model_id))? {
            sampling.max_tokens = n;
        }
        sampling.stop_sequences = cfg.opt_str_list("stopSequences", 4)?;
    }
    req.sampling = sampling;
    Ok(req)
}

fn completion_reason(stop: &StopReason) -> &'static str {
    match stop {
        StopReason::MaxTokens => "LENGTH",
        StopReason::StopSequence(_) => "STOP_CRITERIA_MET",
        StopReason::EndTurn | StopReason::ToolUse => "FINISH",
    }
}

pub(crate) fn response(resp: &ChatResponse) -> Value {
    json!({
        "inputTextTokenCount": resp.usage.input_tokens,
        "results": [{
            "tokenCount": resp.usage.output_tokens,
            "outputText": common::joined_text(&resp.content),
            "completionReason": completion_reason(&resp.stop_reason),
        }],
    })
}

fn chunk(enc: &StreamEncoder, text: &str, tokens: u32, reason: Value) -> Value {
    // The prompt's token count rides on the first chunk only.
    let input = if enc.chunks == 0 {
        json!(enc.input_tokens)
    } else {
        Value::Null
    };
    json!({
        "outputText": text,
        "index": 0,
        "totalOutputTextTokenCount": tokens,
        "completionReason": reason,
        "inputTextTokenCount": input,
    })
}

pub(crate) fn stream_delta(enc: &mut StreamEncoder, d: &Delta) -> Vec<Value> {
    match d {
        Delta::Text { text, .. } => vec![chunk(enc, text, enc.text_deltas, Value::Null)],
        _ => Vec::new(),
    }
}

pub(crate) fn stream_finish(
    enc: &mut StreamEncoder,
    stop: &StopReason,
    usage: &Usage,
) -> Vec<Value> {
    vec![chunk(
        enc,
        "",
        usage.output_tokens,
        json!(completion_reason(stop)),
    )]
}
