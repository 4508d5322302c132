//! Mistral text completion: `prompt` + `max_tokens`, answered with `outputs`. (The chat
//! completion body of Mistral Large 2 is in `openai_chat`.)

use super::common::{self, Obj};
use super::{StreamEncoder, templates};
use crate::{ChatRequest, ChatResponse, Delta, Sampling, StopReason};
use basalt_core::AwsError;
use serde_json::{Value, json};

pub(crate) fn parse(model_id: &str, body: &Value) -> Result<ChatRequest, AwsError> {
    let o = Obj::root(body)?;
    let prompt = o.req_str("prompt")?;
    let mut req = templates::request_from_prompt(prompt);
    let limit = super::max_output_tokens(model_id).unwrap_or(8192);
    req.sampling = Sampling {
        max_tokens: o.opt_u32("max_tokens", 1, limit)?.unwrap_or(512),
        temperature: o.opt_num("temperature", 0.0, 1.0)?,
        top_p: o.opt_num("top_p", 0.0, 1.0)?,
        top_k: o.opt_u32("top_k", 1, 200)?,
        seed: None,
        stop_sequences: o.opt_str_list("stop", 10)?,
    };
    Ok(req)
}

pub(crate) fn response(resp: &ChatResponse) -> Value {
    json!({"outputs": [{"text": common::joined_text(&resp.content),
                        "stop_reason": common::stop_or_length(&resp.stop_reason)}]})
}

pub(crate) fn stream_delta(_enc: &mut StreamEncoder, d: &Delta) -> Vec<Value> {
    match d {
        Delta::Text { text, .. } => vec![json!({"outputs": [{"text": text, "stop_reason": null}]})],
        _ => Vec::new(),
    }
}

pub(crate) fn stream_finish(stop: &StopReason) -> Vec<Value> {
    vec![json!({"outputs": [{"text": "", "stop_reason": common::stop_or_length(stop)}]})]
}
