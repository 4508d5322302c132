//! Conversations with agents and their memory: the session record (history, attributes, a
//! pending return of control), and the session summaries of GetAgentMemory and
//! DeleteAgentMemory.

use super::model::*;
use crate::KnowledgeBases;
use crate::model::{dump, load, scope, secs, str_of};
use basalt_core::{AwsError, RequestContext};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// The summaries an agent reads by default (Bedrock's `maxRecentSessions` default).
pub const DEFAULT_RECENT_SESSIONS: usize = 20;
/// Days a summary is kept by default (Bedrock's `storageDays` default).
pub const DEFAULT_STORAGE_DAYS: u64 = 30;

/// A call the agent handed to the caller (RETURN_CONTROL), waiting for its result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingCall {
    pub tool_use_id: String,
    pub tool: String,
    pub group: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_path: Option<String>,
}

/// A turn stopped to return control: everything needed to go on when the results come.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    pub invocation_id: String,
    pub input_text: String,
    /// The turn's Converse messages so far, ending with the assistant's tool calls.
    pub messages: Vec<Value>,
    pub calls: Vec<PendingCall>,
    /// Tool results of the same step that Basalt computed itself.
    pub done: Vec<Value>,
    pub steps: u32,
    #[serde(default)]
    pub references: Vec<Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SessionRec {
    pub started_ms: i64,
    pub last_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_id: Option<String>,
    /// Finished turns: what the user said, what the agent answered.
    pub turns: Vec<(String, String)>,
    pub session_attributes: Map<String, Value>,
    pub prompt_session_attributes: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<Pending>,
}

impl SessionRec {
    pub fn expired(&self, now: i64, ttl_secs: u64) -> bool {
        now - self.last_ms > (ttl_secs as i64) * 1000
    }

    /// The conversation as text, for summaries and classifier prompts.
    pub fn transcript(&self) -> String {
        self.turns
            .iter()
            .map(|(q, a)| format!("User: {q}\nAssistant: {a}\n"))
            .collect()
    }
}

pub fn session_key(ctx: &RequestContext, agent: &str, alias: &str, session: &str) -> String {
    format!("{}/{agent}/{alias}/{session}", scope(ctx))
}

pub fn load_session(k: &KnowledgeBases, key: &str) -> Result<Option<SessionRec>, AwsError> {
    k.state
        .get(AGENT_SESSIONS, key)?
        .map(|raw| load(&raw))
        .transpose()
}

pub fn save_session(k: &KnowledgeBases, key: &str, rec: &SessionRec) -> Result<(), AwsError> {
    k.state.put(AGENT_SESSIONS, key, &dump(rec))?;
    Ok(())
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemoryRec {
    pub memory_id: String,
    pub session_id: String,
    pub started_ms: i64,
    pub expiry_ms: i64,
    pub summary: String,
}

impl MemoryRec {
    fn to_json(&self) -> Value {
        json!({"sessionSummary": {
            "memoryId": self.memory_id,
            "sessionId": self.session_id,
            "sessionStartTime": secs(self.started_ms),
            "sessionExpiryTime": secs(self.expiry_ms),
            "summaryText": self.summary,
        }})
    }
}

fn memory_prefix(ctx: &RequestContext, agent: &str, memory: &str) -> String {
    format!("{}/{agent}/{memory}/", scope(ctx))
}

pub fn save_memory(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    agent: &str,
    rec: &MemoryRec,
) -> Result<(), AwsError> {
    let key = format!(
        "{}{:016}/{}",
        memory_prefix(ctx, agent, &rec.memory_id),
        rec.started_ms,
        rec.session_id
    );
    k.state.put(MEMORIES, &key, &dump(rec))?;
    Ok(())
}

/// The summaries of `memory` still kept, newest first.
pub fn memories(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    agent: &str,
    memory: &str,
) -> Result<Vec<MemoryRec>, AwsError> {
    let now = k.now_ms();
    let mut out: Vec<MemoryRec> =
        crate::knowledge_bases::scan_all(k, MEMORIES, &memory_prefix(ctx, agent, memory))?
            .iter()
            .map(|(_, raw)| load::<MemoryRec>(raw))
            .collect::<Result<_, _>>()?;
    out.retain(|m| m.expiry_ms > now);
    out.reverse();
    Ok(out)
}

/// When a summary of a session that started at `started_ms` is forgotten.
pub fn expiry(memory_config: &Value, now: i64) -> i64 {
    let days = memory_config["storageDays"]
        .as_u64()
        .unwrap_or(DEFAULT_STORAGE_DAYS);
    now + (days as i64) * 86_400_000
}

/// The agent the request's agentId and agentAliasId name (both must exist).
fn agent_of_alias(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    input: &Value,
) -> Result<AgentRec, AwsError> {
    let agent = super::agent::must_agent(k, ctx, str_of(input, "agentId").unwrap_or_default())?;
    let alias = str_of(input, "agentAliasId").unwrap_or_default();
    super::aliases::must_alias(k, ctx, &agent, alias)?;
    Ok(agent)
}

pub fn get_memory(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let agent = agent_of_alias(k, ctx, input)?;
    if str_of(input, "memoryType") != Some("SESSION_SUMMARY") {
        return Err(AwsError::validation("memoryType must be SESSION_SUMMARY."));
    }
    let all: Vec<Value> = memories(
        k,
        ctx,
        &agent.id,
        str_of(input, "memoryId").unwrap_or_default(),
    )?
    .iter()
    .map(MemoryRec::to_json)
    .collect();
    page_of(&all, input, "memoryContents", "maxItems", 1000)
}

pub fn delete_memory(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let agent = agent_of_alias(k, ctx, input)?;
    let prefix = match str_of(input, "memoryId") {
        Some(m) => memory_prefix(ctx, &agent.id, m),
        None => format!("{}/{}/", scope(ctx), agent.id),
    };
    let session = str_of(input, "sessionId");
    for (key, raw) in crate::knowledge_bases::scan_all(k, MEMORIES, &prefix)? {
        let m: MemoryRec = load(&raw)?;
        if session.is_none_or(|s| s == m.session_id) {
            k.state.delete(MEMORIES, &key)?;
        }
    }
    Ok(json!({}))
}
