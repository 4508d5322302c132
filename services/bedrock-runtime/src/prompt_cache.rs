//! Bedrock's explicit prompt caching: `cachePoint` blocks in a Converse request's `tools`,
//! `system` and `messages` mark prefixes to cache, and the usage then reports the tokens read
//! from and written to the cache (`cacheReadInputTokens`, `cacheWriteInputTokens`,
//! `cacheDetails`), billed at the cached-token prices.
//!
//! The speed-up itself needs no bookkeeping: the engine reuses any evaluated prefix, marked or
//! not (`basalt_models::engine::prefix`). What this module keeps is what Bedrock reports: which
//! marked prefixes were written, per account, region and model, until their TTL lapses (each
//! hit renews it). The entries are in the state store, so every node of a cluster agrees on
//! them and they survive a restart, as the service's would.
//!
//! Rules, from Bedrock's prompt-caching guide (docs.aws.amazon.com/bedrock/latest/userguide/
//! prompt-caching.html): a checkpoint caches the whole prompt before it (tools, then system,
//! then messages); a checkpoint whose prefix is shorter than the model's minimum is accepted
//! but caches nothing; at most 4 checkpoints a request; the TTL is 5 minutes, or 1 hour where
//! the model offers it (`ttl: "1h"`); Nova models cache `system` and `messages` only.

use basalt_chat::ChatRequest;
use basalt_core::{AwsError, RequestContext};
use basalt_store::StateStore;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::sync::Arc;

pub const TABLE: &str = "bedrock-runtime.prompt-cache";

/// At most this many cache checkpoints in one request.
pub const MAX_CHECKPOINTS: usize = 4;

const FIVE_MINUTES_MS: i64 = 5 * 60 * 1000;
const ONE_HOUR_MS: i64 = 60 * 60 * 1000;

/// What a model supports of prompt caching.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Support {
    /// Fewest tokens before a checkpoint for it to cache anything.
    pub min_tokens: u32,
    /// Whether `toolConfig.tools` takes checkpoints.
    pub tools: bool,
    /// Whether `ttl: "1h"` is offered.
    pub one_hour: bool,
    /// Price factors on the input price: a cache read, a 5-minute write, a 1-hour write.
    pub read_factor: f64,
    pub write_factor: f64,
    pub write_1h_factor: f64,
}

const CLAUDE: Support = Support {
    min_tokens: 1024,
    tools: true,
    one_hour: false,
    read_factor: 0.1,
    write_factor: 1.25,
    write_1h_factor: 2.0,
};
const NOVA: Support = Support {
    min_tokens: 1000,
    tools: false,
    one_hour: false,
    read_factor: 0.25,
    write_factor: 1.0,
    write_1h_factor: 1.0,
};

/// Prompt-caching support by base model id prefix (Bedrock's table of supported models).
const MODELS: &[(&str, Support)] = &[
    ("anthropic.claude-3-7-sonnet", CLAUDE),
    (
        "anthropic.claude-3-5-haiku",
        Support {
            min_tokens: 2048,
            ..CLAUDE
        },
    ),
    ("anthropic.claude-sonnet-4", CLAUDE),
    (
        "anthropic.claude-sonnet-4-5",
        Support {
            one_hour: true,
            ..CLAUDE
        },
    ),
    ("anthropic.claude-opus-4", CLAUDE),
    (
        "anthropic.claude-opus-4-5",
        Support {
            min_tokens: 4096,
            one_hour: true,
            ..CLAUDE
        },
    ),
    (
        "anthropic.claude-haiku-4-5",
        Support {
            min_tokens: 4096,
            one_hour: true,
            ..CLAUDE
        },
    ),
    ("amazon.nova-micro", NOVA),
    ("amazon.nova-lite", NOVA),
    ("amazon.nova-pro", NOVA),
    ("amazon.nova-premier", NOVA),
];

/// The model's prompt-caching support, if it has any.
pub fn support(model_id: &str) -> Option<Support> {
    let base = basalt_chat::providers::base_model_id(model_id).unwrap_or(model_id);
    MODELS
        .iter()
        .filter(|(prefix, _)| base.starts_with(prefix))
        .max_by_key(|(prefix, _)| prefix.len())
        .map(|(_, s)| *s)
}

/// One cache checkpoint of a request: the request as it stands before the checkpoint (to
/// count its tokens), the raw content it covers (its identity), and its TTL.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    pub prefix: ChatRequest,
    pub content: Value,
    pub one_hour: bool,
}

fn ttl_of(block: &Value, support: &Support) -> Result<bool, AwsError> {
    match block["cachePoint"]["ttl"].as_str() {
        None | Some("5m") => Ok(false),
        Some("1h") if support.one_hour => Ok(true),
        Some("1h") => Err(AwsError::validation(
            "The model does not support a cache TTL of 1h. Remove the ttl field or use 5m, and try again.",
        )),
        Some(other) => Err(AwsError::validation(format!(
            "Invalid cache TTL {other}: use 5m or 1h."
        ))),
    }
}

/// Content blocks the model sees (cache points and reasoning blocks are not content).
fn is_content(block: &Value) -> bool {
    block.get("cachePoint").is_none() && block.get("reasoningContent").is_none()
}

/// The checkpoints of Converse `input`, whose parsed form is `req`, in prompt order (tools,
/// system, messages). Empty for a model without prompt caching: its cache points are ignored.
pub fn checkpoints(
    model_id: &str,
    input: &Value,
    req: &ChatRequest,
) -> Result<Vec<Checkpoint>, AwsError> {
    let Some(support) = support(model_id) else {
        return Ok(Vec::new());
    };
    let tools = input["toolConfig"]["tools"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let system = input["system"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let messages = input["messages"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let mut out = Vec::new();
    for (i, t) in tools.iter().enumerate() {
        if t.get("cachePoint").is_none() {
            continue;
        }
        if !support.tools {
            return Err(AwsError::validation(
                "The model does not support cache points in toolConfig.tools. Remove the cachePoint and try again.",
            ));
        }
        let n = tools[..i]
            .iter()
            .filter(|t| t.get("toolSpec").is_some())
            .count();
        out.push(Checkpoint {
            prefix: prefix_through(req, n, 0, None),
            content: json!({"tools": &tools[..i]}),
            one_hour: ttl_of(t, &support)?,
        });
    }
    for (i, s) in system.iter().enumerate() {
        if s.get("cachePoint").is_none() {
            continue;
        }
        let n = system[..i].iter().filter(|s| is_content(s)).count();
        out.push(Checkpoint {
            prefix: prefix_through(req, usize::MAX, n, None),
            content: json!({"tools": tools, "system": &system[..i]}),
            one_hour: ttl_of(s, &support)?,
        });
    }
    for (i, m) in messages.iter().enumerate() {
        let blocks = m["content"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        for (j, b) in blocks.iter().enumerate() {
            if b.get("cachePoint").is_none() {
                continue;
            }
            let n = blocks[..j].iter().filter(|b| is_content(b)).count();
            let mut covered: Vec<Value> = messages[..i].to_vec();
            covered.push(json!({"role": m["role"], "content": &blocks[..j]}));
            out.push(Checkpoint {
                prefix: prefix_through(req, usize::MAX, usize::MAX, Some((i, n))),
                content: json!({"tools": tools, "system": system, "messages": covered}),
                one_hour: ttl_of(b, &support)?,
            });
        }
    }
    if out.len() > MAX_CHECKPOINTS {
        return Err(AwsError::validation(format!(
            "A maximum of {MAX_CHECKPOINTS} blocks with cache_control may be provided. Found {}.",
            out.len()
        )));
    }
    Ok(out)
}

/// The request as it stands at a checkpoint, in the parsed request's terms: the first `tools`
/// tools (only those, when that is not all of them), then the first `system` system texts,
/// then, with `message = Some((i, n))`, the messages before `i` and the first `n` content
/// blocks of message `i`.
fn prefix_through(
    req: &ChatRequest,
    tools: usize,
    system: usize,
    message: Option<(usize, usize)>,
) -> ChatRequest {
    let mut prefix = ChatRequest {
        tools: req.tools[..tools.min(req.tools.len())].to_vec(),
        sampling: req.sampling.clone(),
        ..Default::default()
    };
    // A checkpoint in the tools covers the tools alone.
    if tools < req.tools.len() || (system == 0 && message.is_none()) {
        return prefix;
    }
    prefix.tool_choice = req.tool_choice.clone();
    prefix.system = req.system[..system.min(req.system.len())].to_vec();
    if let Some((i, blocks)) = message {
        prefix.messages = req.messages[..i.min(req.messages.len())].to_vec();
        if let Some(mut last) = req.messages.get(i).cloned() {
            last.content.truncate(blocks);
            if !last.content.is_empty() {
                prefix.messages.push(last);
            }
        }
    }
    prefix
}

fn anthropic_ttl(block: &Value, support: &Support) -> Result<bool, AwsError> {
    match block["cache_control"]["ttl"].as_str() {
        None | Some("5m") => Ok(false),
        Some("1h") if support.one_hour => Ok(true),
        Some(other) => Err(AwsError::validation(format!(
            "cache_control.ttl: the model does not support a TTL of {other}"
        ))),
    }
}

/// The checkpoints of an Anthropic Messages InvokeModel `body` (blocks carrying
/// `cache_control`, each covering itself and what precedes it), whose parsed form is `req`.
pub fn anthropic_checkpoints(
    model_id: &str,
    body: &Value,
    req: &ChatRequest,
) -> Result<Vec<Checkpoint>, AwsError> {
    let Some(support) = support(model_id) else {
        return Ok(Vec::new());
    };
    let marked = |b: &Value| b.get("cache_control").is_some_and(|c| !c.is_null());
    let tools = body["tools"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let system = body["system"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let messages = body["messages"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let mut out = Vec::new();
    for (i, t) in tools.iter().enumerate().filter(|(_, t)| marked(t)) {
        out.push(Checkpoint {
            prefix: prefix_through(req, i + 1, 0, None),
            content: json!({"tools": &tools[..=i]}),
            one_hour: anthropic_ttl(t, &support)?,
        });
    }
    for (i, s) in system.iter().enumerate().filter(|(_, s)| marked(s)) {
        out.push(Checkpoint {
            prefix: prefix_through(req, usize::MAX, i + 1, None),
            content: json!({"tools": tools, "system": &system[..=i]}),
            one_hour: anthropic_ttl(s, &support)?,
        });
    }
    for (i, m) in messages.iter().enumerate() {
        let blocks = m["content"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        for (j, b) in blocks.iter().enumerate().filter(|(_, b)| marked(b)) {
            let n = blocks[..=j]
                .iter()
                .filter(|b| !matches!(b["type"].as_str(), Some("thinking" | "redacted_thinking")))
                .count();
            let mut covered: Vec<Value> = messages[..i].to_vec();
            covered.push(json!({"role": m["role"], "content": &blocks[..=j]}));
            out.push(Checkpoint {
                prefix: prefix_through(req, usize::MAX, usize::MAX, Some((i, n))),
                content: json!({"tools": tools, "system": body["system"], "messages": covered}),
                one_hour: anthropic_ttl(b, &support)?,
            });
        }
    }
    if out.len() > MAX_CHECKPOINTS {
        return Err(AwsError::validation(format!(
            "A maximum of {MAX_CHECKPOINTS} blocks with cache_control may be provided. Found {}.",
            out.len()
        )));
    }
    Ok(out)
}

/// A checkpoint with its token count.
#[derive(Debug, Clone)]
pub struct Counted {
    pub tokens: u32,
    pub content: Value,
    pub one_hour: bool,
}

/// How the prompt splits between the cache and fresh input.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Split {
    pub read: u32,
    pub write: u32,
    pub write_1h: u32,
}

/// The explicit prompt caches of one store.
pub struct PromptCache {
    state: Arc<dyn StateStore>,
}

impl PromptCache {
    pub fn new(state: Arc<dyn StateStore>) -> PromptCache {
        PromptCache { state }
    }

    fn key(ctx: &RequestContext, model_id: &str, content: &Value) -> String {
        let digest = Sha256::digest(content.to_string().as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("{}/{}/{model_id}/{hex}", ctx.account_id, ctx.region)
    }

    /// Reads and writes the checkpoints (in prompt order) of a request to `model_id`: the
    /// longest live one is read, the longer ones written; every one reached is kept for its
    /// TTL from now. Checkpoints under the model's minimum are skipped.
    pub fn apply(
        &self,
        ctx: &RequestContext,
        model_id: &str,
        points: &[Counted],
    ) -> Result<Split, AwsError> {
        let Some(support) = support(model_id) else {
            return Ok(Split::default());
        };
        let now = self.state.now_ms();
        let store_err = AwsError::from;
        let eligible: Vec<&Counted> = points
            .iter()
            .filter(|p| p.tokens >= support.min_tokens)
            .collect();
        let mut read = 0;
        let mut hit_at = None;
        for (i, p) in eligible.iter().enumerate().rev() {
            let key = Self::key(ctx, model_id, &p.content);
            let live = self
                .state
                .get(TABLE, &key)
                .map_err(store_err)?
                .and_then(|v| String::from_utf8(v).ok())
                .and_then(|s| s.parse::<i64>().ok())
                .is_some_and(|expires| expires > now);
            if live {
                read = p.tokens;
                hit_at = Some(i);
                break;
            }
        }
        let mut split = Split {
            read,
            ..Split::default()
        };
        let mut covered = read;
        for (i, p) in eligible.iter().enumerate() {
            let ttl = if p.one_hour {
                ONE_HOUR_MS
            } else {
                FIVE_MINUTES_MS
            };
            let key = Self::key(ctx, model_id, &p.content);
            self.state
                .put(TABLE, &key, (now + ttl).to_string().as_bytes())
                .map_err(store_err)?;
            if hit_at.is_some_and(|h| i <= h) {
                continue;
            }
            let added = p.tokens.saturating_sub(covered);
            covered = covered.max(p.tokens);
            split.write += added;
            if p.one_hour {
                split.write_1h += added;
            }
        }
        Ok(split)
    }
}

/// Moves the cached part of `usage.input_tokens` into the cache fields.
pub fn account(usage: &mut basalt_chat::Usage, split: Split) {
    let cached = (split.read + split.write).min(usage.input_tokens);
    let read = split.read.min(cached);
    usage.input_tokens -= cached;
    usage.cache_read_input_tokens = read;
    usage.cache_write_input_tokens = cached - read;
    usage.cache_write_1h_input_tokens = split.write_1h.min(cached - read);
}

#[cfg(test)]
mod tests {
    use super::*;
    use basalt_store::MemoryState;

    fn counted(tokens: u32, tag: &str) -> Counted {
        Counted {
            tokens,
            content: json!({"system": [{"text": tag}]}),
            one_hour: false,
        }
    }

    #[test]
    fn writes_then_reads_and_ignores_short_prefixes() {
        let cache = PromptCache::new(Arc::new(MemoryState::default()));
        let ctx = RequestContext::internal("000000000000", "us-east-1", "http://x");
        let model = "anthropic.claude-3-7-sonnet-20250219-v1:0";
        let points = [counted(1500, "a")];
        assert_eq!(
            cache.apply(&ctx, model, &points).unwrap(),
            Split {
                read: 0,
                write: 1500,
                write_1h: 0
            }
        );
        assert_eq!(
            cache.apply(&ctx, model, &points).unwrap(),
            Split {
                read: 1500,
                write: 0,
                write_1h: 0
            }
        );
        // A second, longer checkpoint: the first is read, the difference written.
        let two = [counted(1500, "a"), counted(2600, "ab")];
        assert_eq!(
            cache.apply(&ctx, model, &two).unwrap(),
            Split {
                read: 1500,
                write: 1100,
                write_1h: 0
            }
        );
        // Under Claude 3.7 Sonnet's minimum of 1,024 tokens: accepted, nothing cached.
        assert_eq!(
            cache.apply(&ctx, model, &[counted(900, "short")]).unwrap(),
            Split::default()
        );
        // Another model does not see these entries.
        let other = "anthropic.claude-sonnet-4-20250514-v1:0";
        assert_eq!(cache.apply(&ctx, other, &points).unwrap().write, 1500);
        // A model without prompt caching reports nothing.
        assert_eq!(
            cache
                .apply(&ctx, "meta.llama3-8b-instruct-v1:0", &points)
                .unwrap(),
            Split::default()
        );
    }

    #[test]
    fn checkpoints_cover_what_precedes_them() {
        let input = json!({
            "system": [{"text": "rules"}, {"cachePoint": {"type": "default"}}],
            "messages": [{"role": "user", "content": [
                {"text": "a long document"}, {"cachePoint": {"type": "default"}}, {"text": "question"}
            ]}],
        });
        let req = crate::converse::parse(&input).unwrap();
        let model = "amazon.nova-lite-v1:0";
        let cps = checkpoints(model, &input, &req).unwrap();
        assert_eq!(cps.len(), 2);
        assert_eq!(cps[0].prefix.system, vec!["rules".to_owned()]);
        assert!(cps[0].prefix.messages.is_empty());
        assert_eq!(cps[1].prefix.messages.len(), 1);
        assert_eq!(cps[1].prefix.messages[0].content.len(), 1);
        assert_ne!(cps[0].content, cps[1].content);
        // Ignored where the model has no prompt caching.
        assert!(
            checkpoints("meta.llama3-8b-instruct-v1:0", &input, &req)
                .unwrap()
                .is_empty()
        );
        // Nova takes no cache point in tools; 1h is not offered; five checkpoints are too many.
        let tools = json!({"messages": [{"role": "user", "content": [{"text": "x"}]}],
            "toolConfig": {"tools": [{"toolSpec": {"name": "t", "inputSchema": {"json": {}}}}, {"cachePoint": {"type": "default"}}]}});
        let treq = crate::converse::parse(&tools).unwrap();
        assert!(checkpoints(model, &tools, &treq).is_err());
        assert_eq!(
            checkpoints("anthropic.claude-3-7-sonnet-20250219-v1:0", &tools, &treq)
                .unwrap()
                .len(),
            1
        );
        let hour = json!({"system": [{"text": "r"}, {"cachePoint": {"type": "default", "ttl": "1h"}}],
            "messages": [{"role": "user", "content": [{"text": "x"}]}]});
        let hreq = crate::converse::parse(&hour).unwrap();
        assert!(checkpoints(model, &hour, &hreq).is_err());
        assert!(
            checkpoints("anthropic.claude-haiku-4-5-20251001-v1:0", &hour, &hreq).unwrap()[0]
                .one_hour
        );
        let many: Vec<Value> = (0..5)
            .flat_map(|i| {
                [
                    json!({"text": format!("s{i}")}),
                    json!({"cachePoint": {"type": "default"}}),
                ]
            })
            .collect();
        let five =
            json!({"system": many, "messages": [{"role": "user", "content": [{"text": "x"}]}]});
        let freq = crate::converse::parse(&five).unwrap();
        let err = checkpoints(model, &five, &freq).unwrap_err();
        assert!(err.message.contains("A maximum of 4"), "{}", err.message);
    }

    #[test]
    fn anthropic_cache_control_covers_its_own_block() {
        let body = json!({
            "anthropic_version": "bedrock-2023-05-31", "max_tokens": 10,
            "system": [{"type": "text", "text": "rules", "cache_control": {"type": "ephemeral"}}],
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": "doc", "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": "question"}
            ]}],
        });
        let model = "anthropic.claude-3-7-sonnet-20250219-v1:0";
        let req = basalt_chat::providers::parse_chat(
            basalt_chat::providers::Family::Anthropic,
            model,
            &body,
        )
        .unwrap();
        let cps = anthropic_checkpoints(model, &body, &req).unwrap();
        assert_eq!(cps.len(), 2);
        assert_eq!(cps[0].prefix.system, vec!["rules".to_owned()]);
        assert!(cps[0].prefix.messages.is_empty());
        assert_eq!(cps[1].prefix.messages[0].content.len(), 1);
        // 1h is refused where the model does not offer it.
        let mut hour = body.clone();
        hour["system"][0]["cache_control"]["ttl"] = "1h".into();
        assert!(anthropic_checkpoints(model, &hour, &req).is_err());
    }

    #[test]
    fn usage_moves_cached_tokens_out_of_input() {
        let mut u = basalt_chat::Usage {
            input_tokens: 2000,
            output_tokens: 10,
            ..Default::default()
        };
        account(
            &mut u,
            Split {
                read: 1200,
                write: 500,
                write_1h: 0,
            },
        );
        assert_eq!(
            (
                u.input_tokens,
                u.cache_read_input_tokens,
                u.cache_write_input_tokens
            ),
            (300, 1200, 500)
        );
    }
}
