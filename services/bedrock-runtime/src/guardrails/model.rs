//! A guardrail around a model call: which parts of the request it judges (input tags for
//! InvokeModel, `guardContent` blocks for Converse, else every text), what the model sees
//! after masking, and what the caller gets back when the guardrail intervenes.

use super::apply::{Evaluation, Resolved};
use basalt_chat::{ChatRequest, ChatResponse, ContentBlock, Delta, StopReason, Usage};
use basalt_guardrails::Block;
use serde_json::{Map, Value, json};

/// `trace` of InvokeModel (`ENABLED`...) or of Converse's `guardrailConfig` (`enabled`...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trace {
    Disabled,
    Enabled,
    Full,
}

impl Trace {
    pub fn parse(v: Option<&Value>) -> Trace {
        match v
            .and_then(Value::as_str)
            .map(str::to_ascii_uppercase)
            .as_deref()
        {
            Some("ENABLED") => Trace::Enabled,
            Some("ENABLED_FULL") => Trace::Full,
            _ => Trace::Disabled,
        }
    }
}

/// Where a judged block came from in the request, so that masking can write it back.
#[derive(Debug, Clone)]
struct Place {
    slot: usize,
    /// Byte range inside the slot's text; `None`: the whole slot.
    range: Option<(usize, usize)>,
}

/// The input side of a guarded model call.
pub struct GuardedInput {
    pub blocks: Vec<Block>,
    /// Whether the blocks are user input the caller marked (input tags or guardContent):
    /// only then does the PROMPT_ATTACK filter apply.
    pub marked: bool,
    places: Vec<Place>,
}

/// Every text of a chat request the model reads, in a fixed order.
fn slots(req: &mut ChatRequest) -> Vec<&mut String> {
    let mut out: Vec<&mut String> = req.system.iter_mut().collect();
    for m in &mut req.messages {
        for b in &mut m.content {
            if let ContentBlock::Text(t) = b {
                out.push(t);
            }
        }
    }
    if let Some(p) = &mut req.raw_prompt {
        out.push(p);
    }
    out
}

/// The input InvokeModel's guardrail judges. With `tag_suffix`, only text inside
/// `<amazon-bedrock-guardrails-guardContent_SUFFIX>` tags, and the tags are removed before
/// the model sees the prompt; without, every text of the prompt.
pub fn invoke_input(req: &mut ChatRequest, tag_suffix: Option<&str>) -> GuardedInput {
    let mut blocks = Vec::new();
    let mut places = Vec::new();
    let mut marked = false;
    let tags = tag_suffix.map(|s| {
        (
            format!("<amazon-bedrock-guardrails-guardContent_{s}>"),
            format!("</amazon-bedrock-guardrails-guardContent_{s}>"),
        )
    });
    for (i, slot) in slots(req).into_iter().enumerate() {
        let Some((open, close)) = &tags else {
            if !slot.trim().is_empty() {
                blocks.push(Block::text(slot.clone()));
                places.push(Place {
                    slot: i,
                    range: None,
                });
            }
            continue;
        };
        if !slot.contains(open.as_str()) {
            continue;
        }
        let mut out = String::with_capacity(slot.len());
        let mut rest = slot.as_str();
        while let Some(at) = rest.find(open.as_str()) {
            out.push_str(&rest[..at]);
            let after = &rest[at + open.len()..];
            let (inner, next) = match after.find(close.as_str()) {
                Some(end) => (&after[..end], &after[end + close.len()..]),
                // An unclosed tag guards the rest of the text.
                None => (after, ""),
            };
            let start = out.len();
            out.push_str(inner);
            blocks.push(Block::text(inner));
            places.push(Place {
                slot: i,
                range: Some((start, out.len())),
            });
            marked = true;
            rest = next;
        }
        out.push_str(rest);
        *slot = out;
    }
    GuardedInput {
        blocks,
        marked,
        places,
    }
}

/// The input of a chat without marks (the OpenAI-compatible facade): the users' messages,
/// which are user input by their role, so the PROMPT_ATTACK filter applies to them.
pub fn user_input(req: &ChatRequest) -> GuardedInput {
    message_texts(req, true)
}

/// The text blocks of the messages (the users' only, or everyone's), each a judged block
/// whose slot masking writes back to. Marked when they are the users' own.
fn message_texts(req: &ChatRequest, users_only: bool) -> GuardedInput {
    let mut blocks = Vec::new();
    let mut places = Vec::new();
    let mut slot = req.system.len();
    for m in &req.messages {
        for b in &m.content {
            if let ContentBlock::Text(t) = b {
                if (!users_only || m.role == basalt_chat::Role::User) && !t.trim().is_empty() {
                    blocks.push(Block::text(t.clone()));
                    places.push(Place { slot, range: None });
                }
                slot += 1;
            }
        }
    }
    GuardedInput {
        blocks,
        marked: users_only,
        places,
    }
}

/// The input Converse's guardrail judges: its `guardContent` blocks (messages and system)
/// when there are any, else the text of every message.
pub fn converse_input(input: &Value, req: &ChatRequest) -> GuardedInput {
    let mut guard = Vec::new();
    let system = input["system"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let messages = input["messages"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let content = messages.iter().flat_map(|m| {
        m["content"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
    });
    for b in system.iter().chain(content) {
        if let Some(t) = b["guardContent"]["text"]["text"].as_str() {
            let qualifiers: Vec<&str> = b["guardContent"]["text"]["qualifiers"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            guard.push(Block {
                text: t.to_owned(),
                grounding_source: qualifiers.contains(&"grounding_source"),
                query: qualifiers.contains(&"query"),
            });
        }
    }
    if !guard.is_empty() {
        return GuardedInput {
            blocks: guard,
            marked: true,
            places: Vec::new(),
        };
    }
    message_texts(req, false)
}

impl GuardedInput {
    /// Writes masked texts (the outcome's outputs, one per judged block) back into the
    /// request, so that the model never sees what the guardrail anonymized.
    pub fn apply_masks(&self, req: &mut ChatRequest, masked: &[String]) {
        if self.places.len() != masked.len() {
            return;
        }
        let mut slots = slots(req);
        // Back to front, so that earlier ranges of the same slot stay valid.
        for (place, text) in self.places.iter().zip(masked).rev() {
            let Some(slot) = slots.get_mut(place.slot) else {
                continue;
            };
            match place.range {
                None => **slot = text.clone(),
                Some((a, b)) if b <= slot.len() => slot.replace_range(a..b, text),
                Some(_) => {}
            }
        }
    }
}

/// The answer's text, as the model wrote it (the trace's `modelOutput`).
pub fn answer_text(resp: &ChatResponse) -> String {
    resp.content
        .iter()
        .filter_map(|b| match b {
            ContentBlock::Text(t) => Some(t.as_str()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("")
}

/// The model's answer as blocks for the OUTPUT check: its text blocks, in order.
pub fn output_blocks(resp: &ChatResponse) -> Vec<Block> {
    resp.content
        .iter()
        .filter_map(|b| match b {
            ContentBlock::Text(t) if !t.trim().is_empty() => Some(Block::text(t.clone())),
            _ => None,
        })
        .collect()
}

/// Applies the OUTPUT check's outcome to the answer: the blocked message instead of it, or
/// its texts masked.
pub fn apply_output(resp: &mut ChatResponse, eval: &Evaluation) {
    let o = &eval.outcome;
    if o.blocked {
        resp.content = vec![ContentBlock::Text(
            o.outputs.first().cloned().unwrap_or_default(),
        )];
        resp.stop_reason = StopReason::EndTurn;
    } else if o.intervened {
        let mut masked = o.outputs.iter();
        for b in &mut resp.content {
            if let ContentBlock::Text(t) = b
                && !t.trim().is_empty()
                && let Some(m) = masked.next()
            {
                *t = m.clone();
            }
        }
    }
}

/// Whether the INPUT or the OUTPUT check intervened.
pub fn intervened(input: &Option<Evaluation>, output: &Option<Evaluation>) -> bool {
    [input, output]
        .iter()
        .any(|e| e.as_ref().is_some_and(|e| e.outcome.intervened))
}

/// The deltas a sync-mode stream held back, to send once the OUTPUT check has judged the
/// answer: as generated, or rewritten when the guardrail intervened.
pub fn release(
    held: Vec<Delta>,
    resp: &ChatResponse,
    output: &Option<Evaluation>,
    intervened: bool,
) -> Vec<Delta> {
    if !intervened {
        return held;
    }
    let blocked = output.as_ref().is_some_and(|e| e.outcome.blocked);
    rewrite_deltas(held, resp, blocked)
}

/// Deltas held back while a sync-mode OUTPUT check ran, rewritten by its outcome (`resp`
/// is the answer after [`apply_output`]): the blocked message as one text block, or each
/// text block once, masked; tool-use deltas pass unchanged.
pub fn rewrite_deltas(held: Vec<Delta>, resp: &ChatResponse, blocked: bool) -> Vec<Delta> {
    if blocked {
        let text = match resp.content.first() {
            Some(ContentBlock::Text(t)) => t.clone(),
            _ => String::new(),
        };
        return vec![
            Delta::Text { index: 0, text },
            Delta::BlockStop { index: 0 },
        ];
    }
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(held.len());
    for d in held {
        match d {
            Delta::Text { index, .. } => {
                if seen.insert(index)
                    && let Some(ContentBlock::Text(t)) = resp.content.get(index)
                {
                    out.push(Delta::Text {
                        index,
                        text: t.clone(),
                    });
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// The answer Bedrock gives when the input is blocked: the blocked message, no tokens.
pub fn blocked_response(message: &str) -> ChatResponse {
    ChatResponse {
        content: vec![ContentBlock::Text(message.to_owned())],
        stop_reason: StopReason::EndTurn,
        usage: Usage::default(),
        latency_ms: 0,
        first_token_ms: 0,
    }
}

/// InvokeModel's `amazon-bedrock-trace` member: the input assessment by guardrail id and
/// the output assessments.
pub fn invoke_trace(
    g: &Resolved,
    input: Option<&Evaluation>,
    output: Option<&Evaluation>,
) -> Value {
    let mut guardrail = Map::new();
    if let Some(e) = input {
        guardrail.insert("input".into(), json!({ g.id.clone(): e.assessment() }));
    }
    if let Some(e) = output {
        guardrail.insert("outputs".into(), json!([{ g.id.clone(): e.assessment() }]));
    }
    json!({ "guardrail": guardrail })
}

/// Converse's `trace.guardrail` (GuardrailTraceAssessment).
pub fn converse_trace(
    g: &Resolved,
    trace: Trace,
    input: Option<&Evaluation>,
    output: Option<&Evaluation>,
    model_output: Option<&str>,
) -> Value {
    let mut out = Map::new();
    if let (Trace::Full, Some(m)) = (trace, model_output) {
        out.insert("modelOutput".into(), json!([m]));
    }
    if let Some(e) = input {
        out.insert(
            "inputAssessment".into(),
            json!({ g.id.clone(): e.assessment() }),
        );
    }
    if let Some(e) = output {
        out.insert(
            "outputAssessments".into(),
            json!({ g.id.clone(): [e.assessment()] }),
        );
    }
    let reason = output
        .filter(|e| e.outcome.intervened)
        .or(input)
        .map(|e| e.outcome.action_reason());
    if let Some(r) = reason {
        out.insert("actionReason".into(), r.into());
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use basalt_chat::{Message, Role};

    fn req(texts: &[&str]) -> ChatRequest {
        ChatRequest {
            system: vec!["You are a bank assistant.".into()],
            messages: texts
                .iter()
                .map(|t| Message {
                    role: Role::User,
                    content: vec![ContentBlock::Text((*t).into())],
                })
                .collect(),
            ..ChatRequest::default()
        }
    }

    #[test]
    fn tags_mark_the_judged_input_and_are_removed() {
        let mut r = req(&[
            "Answer: <amazon-bedrock-guardrails-guardContent_xyz>my mail is a@b.co</amazon-bedrock-guardrails-guardContent_xyz> thanks",
        ]);
        let g = invoke_input(&mut r, Some("xyz"));
        assert!(g.marked);
        assert_eq!(g.blocks.len(), 1);
        assert_eq!(g.blocks[0].text, "my mail is a@b.co");
        let ContentBlock::Text(t) = &r.messages[0].content[0] else {
            panic!()
        };
        assert_eq!(t, "Answer: my mail is a@b.co thanks");
        g.apply_masks(&mut r, &["my mail is {EMAIL}".to_owned()]);
        let ContentBlock::Text(t) = &r.messages[0].content[0] else {
            panic!()
        };
        assert_eq!(t, "Answer: my mail is {EMAIL} thanks");
    }

    #[test]
    fn without_tags_every_text_is_judged() {
        let mut r = req(&["one", "two"]);
        let g = invoke_input(&mut r, None);
        assert!(!g.marked);
        let texts: Vec<&str> = g.blocks.iter().map(|b| b.text.as_str()).collect();
        assert_eq!(texts, ["You are a bank assistant.", "one", "two"]);
        // A suffix with no tag in the prompt judges nothing.
        let mut r = req(&["one"]);
        assert!(invoke_input(&mut r, Some("abc")).blocks.is_empty());
    }

    #[test]
    fn converse_judges_guard_content_when_present() {
        let input = json!({"messages": [{"role": "user", "content": [
            {"text": "context"},
            {"guardContent": {"text": {"text": "the question", "qualifiers": ["query"]}}},
        ]}]});
        let r = req(&["context"]);
        let g = converse_input(&input, &r);
        assert!(g.marked);
        assert_eq!(g.blocks.len(), 1);
        assert!(g.blocks[0].query);
        let input = json!({"messages": [{"role": "user", "content": [{"text": "hi"}]}]});
        let g = converse_input(&input, &req(&["hi"]));
        assert!(!g.marked);
        assert_eq!(g.blocks[0].text, "hi");
    }
}
