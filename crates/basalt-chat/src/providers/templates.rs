//! Completion-style prompts (Llama, Mistral, DeepSeek, Titan, Claude v2) often wrap a
//! conversation in the model's own chat template. A local model has a different template, so
//! recognised templates are turned back into messages; anything else stays a raw prompt.

use crate::{ChatRequest, ContentBlock, Message, Role};

/// A request from a completion prompt: the conversation if the prompt uses a known template
/// (then `raw_prompt` is `None`), else one user message holding the prompt and
/// `raw_prompt = Some(prompt)` so the runtime may continue the text as is.
pub(crate) fn request_from_prompt(prompt: &str) -> ChatRequest {
    match parse_template(prompt) {
        Some((system, messages)) if !messages.is_empty() => ChatRequest {
            system: system.into_iter().collect(),
            messages,
            ..ChatRequest::default()
        },
        _ => ChatRequest {
            messages: vec![user(prompt)],
            raw_prompt: Some(prompt.to_owned()),
            ..ChatRequest::default()
        },
    }
}

fn user(text: &str) -> Message {
    Message {
        role: Role::User,
        content: vec![ContentBlock::Text(text.trim().to_owned())],
    }
}

fn msg(role: Role, text: &str) -> Message {
    Message {
        role,
        content: vec![ContentBlock::Text(text.trim().to_owned())],
    }
}

type Parsed = (Option<String>, Vec<Message>);

fn parse_template(p: &str) -> Option<Parsed> {
    if p.contains("<|start_header_id|>") {
        Some(llama3(p))
    } else if p.contains("[INST]") {
        Some(inst(p))
    } else if p.contains("<｜User｜>") || p.contains("<|User|>") {
        Some(deepseek(p))
    } else if p.contains("\n\nHuman:") || p.starts_with("Human:") {
        Some(human_assistant(p))
    } else if p.contains("User:") && p.trim_end().ends_with("Bot:") {
        Some(user_bot(p))
    } else {
        None
    }
}

/// Llama 3: `<|start_header_id|>role<|end_header_id|>\n\ntext<|eot_id|>`.
fn llama3(p: &str) -> Parsed {
    let mut system = None;
    let mut messages = Vec::new();
    for seg in p.split("<|start_header_id|>").skip(1) {
        let Some((role, rest)) = seg.split_once("<|end_header_id|>") else {
            continue;
        };
        let text = rest.split("<|eot_id|>").next().unwrap_or("").trim();
        match role.trim() {
            "system" => system = Some(text.to_owned()),
            "user" | "ipython" | "tool" => messages.push(msg(Role::User, text)),
            "assistant" if !text.is_empty() => messages.push(msg(Role::Assistant, text)),
            _ => {}
        }
    }
    (system, messages)
}

/// Llama 2 / Mistral: `<s>[INST] <<SYS>>…<</SYS>> user [/INST] answer</s>`.
fn inst(p: &str) -> Parsed {
    let clean = p.replace("<s>", "").replace("</s>", "");
    let mut system = None;
    let mut messages = Vec::new();
    for seg in clean.split("[INST]").skip(1) {
        let (u, a) = seg.split_once("[/INST]").unwrap_or((seg, ""));
        let user_text = match (u.find("<<SYS>>"), u.find("<</SYS>>")) {
            (Some(s), Some(e)) if s < e => {
                system = Some(u[s + 7..e].trim().to_owned());
                format!("{}{}", &u[..s], &u[e + 8..])
            }
            _ => u.to_owned(),
        };
        messages.push(msg(Role::User, &user_text));
        if !a.trim().is_empty() {
            messages.push(msg(Role::Assistant, a));
        }
    }
    (system, messages)
}

/// DeepSeek: `<｜begin▁of▁sentence｜>system<｜User｜>q<｜Assistant｜>a<｜end▁of▁sentence｜>…`.
fn deepseek(p: &str) -> Parsed {
    let p = p
        .replace("<|User|>", "<｜User｜>")
        .replace("<|Assistant|>", "<｜Assistant｜>");
    let p = p
        .replace("<｜begin▁of▁sentence｜>", "")
        .replace("<｜end▁of▁sentence｜>", "");
    let mut parts = p.split("<｜User｜>");
    let head = parts.next().unwrap_or("").trim();
    let system = (!head.is_empty()).then(|| head.to_owned());
    let mut messages = Vec::new();
    for seg in parts {
        let (u, a) = seg.split_once("<｜Assistant｜>").unwrap_or((seg, ""));
        messages.push(msg(Role::User, u));
        let a = a.trim().trim_start_matches("<think>").trim();
        if !a.is_empty() {
            messages.push(msg(Role::Assistant, a));
        }
    }
    (system, messages)
}

/// Claude v2: `\n\nHuman: q\n\nAssistant: a\n\nHuman: …\n\nAssistant:`.
fn human_assistant(p: &str) -> Parsed {
    turns(p, "Human:", "Assistant:")
}

/// Titan: `User: q\nBot:`.
fn user_bot(p: &str) -> Parsed {
    turns(p, "User:", "Bot:")
}

fn turns(p: &str, user_tag: &str, bot_tag: &str) -> Parsed {
    let mut messages = Vec::new();
    let mut parts = p.split(user_tag);
    let head = parts.next().unwrap_or("").trim();
    let system = (!head.is_empty()).then(|| head.to_owned());
    for seg in parts {
        let (u, a) = seg.split_once(bot_tag).unwrap_or((seg, ""));
        messages.push(msg(Role::User, u));
        if !a.trim().is_empty() {
            messages.push(msg(Role::Assistant, a));
        }
    }
    (system, messages)
}
