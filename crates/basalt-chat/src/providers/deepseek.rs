//! DeepSeek (R1, V3) text completion: `prompt` + `max_tokens`, answered with `choices`.

use super::common::{self, Obj};
use super::{StreamEncoder, templates};
use crate::{ChatRequest, ChatResponse, Delta, Sampling, StopReason};
use basalt_core::AwsError;
use serde_json::{Value, json};

pub(crate) fn parse(body: &Value) -> Result<ChatRequest, AwsError> {
    let o = Obj::root(body)?;
    let prompt = o.req_str("prompt")?;
    let mut req = templates::request_from_prompt(prompt);
    req.sampling = Sampling {
        max_tokens: o.opt_u32("max_tokens", 1, 32_768)?.unwrap_or(8192),
        temperature: o.opt_num("temperature", 0.0, 1.0)?,
        top_p: o.opt_num("top_p", 0.0, 1.0)?,
        top_k: None,
        seed: None,
        stop_sequences: o.opt_str_list("stop", 10)?,
    };
    Ok(req)
}

pub(crate) fn response(resp: &ChatResponse) -> Value {
    json!({"choices": [{"text": common::joined_text(&resp.content),
                        "stop_reason": common::stop_or_length(&resp.stop_reason)}]})
}

pub(crate) fn stream_delta(_enc: &mut StreamEncoder, d: &Delta) -> Vec<Value> {
    match d {
        Delta::Text { text, .. } => vec![json!({"choices": [{"text": text, "stop_reason": null}]})],
        _ => Vec::new(),
    }
}

pub(crate) fn stream_finish(stop: &StopReason) -> Vec<Value> {
    vec![json!({"choices": [{"text": "", "stop_reason": common::stop_or_length(stop)}]})]
}
