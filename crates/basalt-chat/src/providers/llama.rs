//! Meta Llama (2, 3, 3.x, 4): `prompt` + `max_gen_len` (+ `images` for vision models).

use super::common::{self, Obj};
use super::{StreamEncoder, templates};
use crate::{ChatRequest, ChatResponse, ContentBlock, Delta, Role, Sampling, StopReason, Usage};
use basalt_core::AwsError;
use serde_json::{Value, json};

pub(crate) fn parse(model_id: &str, body: &Value) -> Result<ChatRequest, AwsError> {
    let o = Obj::root(body)?;
    let prompt = o.req_str("prompt")?;
    let mut req = templates::request_from_prompt(prompt);
    let limit = super::max_output_tokens(model_id).unwrap_or(2048);
    req.sampling = Sampling {
        max_tokens: o.opt_u32("max_gen_len", 1, limit)?.unwrap_or(512),
        temperature: o.opt_num("temperature", 0.0, 1.0)?,
        top_p: o.opt_num("top_p", 0.0, 1.0)?,
        ..Sampling::default()
    };
    if let Some(images) = o.opt_arr("images")? {
        let mut blocks = Vec::with_capacity(images.len());
        for (i, img) in images.iter().enumerate() {
            let path = format!("#/images/{i}");
            let data = img
                .as_str()
                .ok_or_else(|| common::type_error(&path, "String", img))?;
            blocks.push(common::decode_image(&path, data, None)?);
        }
        // Images belong to the last user turn.
        if let Some(m) = req.messages.iter_mut().rev().find(|m| m.role == Role::User) {
            let mut content: Vec<ContentBlock> = blocks;
            content.append(&mut m.content);
            m.content = content;
        }
    }
    Ok(req)
}

pub(crate) fn response(resp: &ChatResponse) -> Value {
    json!({
        "generation": common::joined_text(&resp.content),
        "prompt_token_count": resp.usage.input_tokens,
        "generation_token_count": resp.usage.output_tokens,
        "stop_reason": common::stop_or_length(&resp.stop_reason),
    })
}

fn chunk(enc: &StreamEncoder, text: &str, tokens: u32, reason: Value) -> Value {
    let prompt = if enc.chunks == 0 {
        json!(enc.input_tokens)
    } else {
        Value::Null
    };
    json!({
        "generation": text,
        "prompt_token_count": prompt,
        "generation_token_count": tokens,
        "stop_reason": reason,
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
        json!(common::stop_or_length(stop)),
    )]
}
