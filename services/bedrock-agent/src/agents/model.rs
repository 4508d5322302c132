//! The records of agents and their tables. Keys start with `{account}/{region}/` like the
//! knowledge bases'; an agent's records share `{scope}/{agentId}/`.
//!
//! The DRAFT an agent is edited in lives in three tables (agent, action groups, knowledge
//! base associations). PrepareAgent freezes it into a [`Snapshot`] (version `DRAFT`), and
//! every numbered version is a copy of such a snapshot, so that what an alias invokes never
//! changes under it.

use crate::model::{secs, str_of};
use basalt_core::RequestContext;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

pub const AGENTS: &str = "bedrock-agent.agents";
pub const ACTION_GROUPS: &str = "bedrock-agent.action-groups";
pub const AGENT_KBS: &str = "bedrock-agent.agent-knowledge-bases";
/// `{scope}/{agentId}/{collaboratorId}`: the DRAFT's collaborators (a supervisor's team).
pub const AGENT_COLLABORATORS: &str = "bedrock-agent.agent-collaborators";
/// `{scope}/{agentId}/{version}`: `DRAFT` (the prepared draft) or a numbered version,
/// zero-padded to five digits so that versions list in order.
pub const VERSIONS: &str = "bedrock-agent.agent-versions";
pub const ALIASES: &str = "bedrock-agent.agent-aliases";
/// `{scope}/{agentId}/{aliasId}/{sessionId}`: a conversation with an agent.
pub const AGENT_SESSIONS: &str = "bedrock-agent.agent-sessions";
/// `{scope}/{agentId}/{memoryId}/{sessionStartMs:016}/{sessionId}`: session summaries.
pub const MEMORIES: &str = "bedrock-agent.agent-memories";

/// The built-in alias that invokes the prepared DRAFT.
pub const TEST_ALIAS: &str = "TSTALIASID";
/// Bedrock's default idle session timeout.
pub const DEFAULT_IDLE_TTL: u64 = 600;

pub fn agent_key(scope: &str, agent: &str) -> String {
    format!("{scope}/{agent}")
}

pub fn child_key(scope: &str, agent: &str, child: &str) -> String {
    format!("{scope}/{agent}/{child}")
}

/// The key part of a version: `DRAFT` or five digits.
pub fn version_part(version: &str) -> String {
    match version.parse::<u32>() {
        Ok(n) => format!("{n:05}"),
        Err(_) => version.to_owned(),
    }
}

pub fn agent_arn(ctx: &RequestContext, agent: &str) -> String {
    format!(
        "arn:aws:bedrock:{}:{}:agent/{agent}",
        ctx.region, ctx.account_id
    )
}

pub fn alias_arn(ctx: &RequestContext, agent: &str, alias: &str) -> String {
    format!(
        "arn:aws:bedrock:{}:{}:agent-alias/{agent}/{alias}",
        ctx.region, ctx.account_id
    )
}

/// A page of an in-memory listing as `{member: [...], nextToken}`: `max_member` (e.g.
/// `maxResults`) items, `default_max` when absent, from the request's `nextToken`.
pub fn page_of(
    items: &[Value],
    input: &Value,
    member: &str,
    max_member: &str,
    default_max: usize,
) -> Result<Value, basalt_core::AwsError> {
    let (items, next) = basalt_store::paging::page_slice(
        items,
        str_of(input, "nextToken"),
        input[max_member]
            .as_u64()
            .map_or(default_max, |n| n as usize),
    )?;
    let mut resp = json!({ member: items });
    if let Some(n) = next {
        resp["nextToken"] = n.into();
    }
    Ok(resp)
}

/// An agent's settings: the DRAFT, or frozen in a snapshot.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentRec {
    pub v: u32,
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instruction: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub foundation_model: Option<String>,
    pub idle_ttl: u64,
    pub role_arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key: Option<String>,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub prompt_override: Value,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub guardrail: Value,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub memory: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collaboration: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orchestration_type: Option<String>,
    pub status: String,
    #[serde(default)]
    pub failure_reasons: Vec<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prepared_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
    /// The highest numbered version ever made (numbers are never reused).
    #[serde(default)]
    pub versions: u32,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

impl AgentRec {
    /// The `Agent` (draft) or `AgentVersion` shape.
    pub fn to_json(&self, ctx: &RequestContext, version: Option<&str>) -> Value {
        let mut m = Map::new();
        m.insert("agentId".into(), self.id.clone().into());
        m.insert("agentName".into(), self.name.clone().into());
        m.insert("agentArn".into(), agent_arn(ctx, &self.id).into());
        match version {
            None => {
                m.insert("agentVersion".into(), "DRAFT".into());
                if let Some(t) = &self.client_token {
                    m.insert("clientToken".into(), t.clone().into());
                }
            }
            Some(v) => {
                m.insert("version".into(), v.into());
            }
        }
        for (name, value) in [
            ("instruction", &self.instruction),
            ("foundationModel", &self.foundation_model),
            ("description", &self.description),
            ("customerEncryptionKeyArn", &self.kms_key),
            ("agentCollaboration", &self.collaboration),
            ("orchestrationType", &self.orchestration_type),
        ] {
            if let Some(v) = value {
                m.insert(name.into(), v.clone().into());
            }
        }
        m.insert("agentStatus".into(), self.status.clone().into());
        m.insert("idleSessionTTLInSeconds".into(), self.idle_ttl.into());
        m.insert("agentResourceRoleArn".into(), self.role_arn.clone().into());
        m.insert("createdAt".into(), secs(self.created_ms).into());
        m.insert("updatedAt".into(), secs(self.updated_ms).into());
        if version.is_none()
            && let Some(p) = self.prepared_ms
        {
            m.insert("preparedAt".into(), secs(p).into());
        }
        if !self.failure_reasons.is_empty() {
            m.insert("failureReasons".into(), self.failure_reasons.clone().into());
        }
        m.insert(
            "promptOverrideConfiguration".into(),
            self.prompt_configurations(),
        );
        for (name, value) in [
            ("guardrailConfiguration", &self.guardrail),
            ("memoryConfiguration", &self.memory),
        ] {
            if !value.is_null() {
                m.insert(name.into(), value.clone());
            }
        }
        Value::Object(m)
    }

    /// The prompt configuration of every step: the overrides given, and Bedrock's defaults
    /// for the rest (as GetAgent reports them).
    pub fn prompt_configurations(&self) -> Value {
        let given = self.prompt_override["promptConfigurations"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut out = Vec::new();
        for step in super::prompts::STEPS {
            match given.iter().find(|c| c["promptType"] == step.name) {
                Some(c) => out.push(c.clone()),
                None => out.push(json!({
                    "promptType": step.name,
                    "promptCreationMode": "DEFAULT",
                    "promptState": if step.enabled_by_default { "ENABLED" } else { "DISABLED" },
                    "basePromptTemplate": step.template,
                    "inferenceConfiguration": super::prompts::trace_inference(&Value::Null, step.name),
                    "parserMode": "DEFAULT",
                })),
            }
        }
        let mut m = Map::new();
        m.insert("promptConfigurations".into(), out.into());
        if let Some(l) = str_of(&self.prompt_override, "overrideLambda") {
            m.insert("overrideLambda".into(), l.into());
        }
        Value::Object(m)
    }

    /// Whether session summaries are kept.
    pub fn memory_enabled(&self) -> bool {
        self.memory["enabledMemoryTypes"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t == "SESSION_SUMMARY"))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupRec {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub signature_params: Value,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub executor: Value,
    /// `apiSchema` as given.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub api_schema: Value,
    /// The OpenAPI document itself (read from S3 when the schema names an object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_document: Option<String>,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub function_schema: Value,
    pub state: String,
    pub created_ms: i64,
    pub updated_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
}

impl GroupRec {
    pub fn to_json(&self, agent: &str, version: &str) -> Value {
        let mut m = Map::new();
        m.insert("agentId".into(), agent.into());
        m.insert("agentVersion".into(), version.into());
        m.insert("actionGroupId".into(), self.id.clone().into());
        m.insert("actionGroupName".into(), self.name.clone().into());
        if let Some(t) = &self.client_token {
            m.insert("clientToken".into(), t.clone().into());
        }
        if let Some(d) = &self.description {
            m.insert("description".into(), d.clone().into());
        }
        m.insert("createdAt".into(), secs(self.created_ms).into());
        m.insert("updatedAt".into(), secs(self.updated_ms).into());
        if let Some(s) = &self.signature {
            m.insert("parentActionSignature".into(), s.clone().into());
        }
        for (name, value) in [
            ("parentActionGroupSignatureParams", &self.signature_params),
            ("actionGroupExecutor", &self.executor),
            ("apiSchema", &self.api_schema),
            ("functionSchema", &self.function_schema),
        ] {
            if !value.is_null() {
                m.insert(name.into(), value.clone());
            }
        }
        m.insert("actionGroupState".into(), self.state.clone().into());
        Value::Object(m)
    }

    pub fn summary(&self) -> Value {
        let mut m = Map::new();
        m.insert("actionGroupId".into(), self.id.clone().into());
        m.insert("actionGroupName".into(), self.name.clone().into());
        m.insert("actionGroupState".into(), self.state.clone().into());
        if let Some(d) = &self.description {
            m.insert("description".into(), d.clone().into());
        }
        m.insert("updatedAt".into(), secs(self.updated_ms).into());
        Value::Object(m)
    }

    pub fn enabled(&self) -> bool {
        self.state == "ENABLED"
    }

    /// The Lambda function that runs this group's actions, unless control returns to the
    /// caller.
    pub fn lambda(&self) -> Option<&str> {
        self.executor["lambda"].as_str()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentKbRec {
    pub kb: String,
    pub description: String,
    pub state: String,
    pub created_ms: i64,
    pub updated_ms: i64,
}

impl AgentKbRec {
    pub fn to_json(&self, agent: &str, version: &str) -> Value {
        json!({
            "agentId": agent,
            "agentVersion": version,
            "knowledgeBaseId": self.kb,
            "description": self.description,
            "createdAt": secs(self.created_ms),
            "updatedAt": secs(self.updated_ms),
            "knowledgeBaseState": self.state,
        })
    }

    pub fn summary(&self) -> Value {
        json!({
            "knowledgeBaseId": self.kb,
            "description": self.description,
            "knowledgeBaseState": self.state,
            "updatedAt": secs(self.updated_ms),
        })
    }
}

/// A collaborator of a supervisor agent: another agent, reached through one of its aliases.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CollaboratorRec {
    pub id: String,
    pub name: String,
    pub instruction: String,
    pub alias_arn: String,
    /// `TO_COLLABORATOR` or `DISABLED`.
    pub relay: String,
    pub created_ms: i64,
    pub updated_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
}

impl CollaboratorRec {
    pub fn to_json(&self, agent: &str, version: &str) -> Value {
        let mut v = self.summary(agent, version);
        if let Some(t) = &self.client_token {
            v["clientToken"] = t.clone().into();
        }
        v
    }

    pub fn summary(&self, agent: &str, version: &str) -> Value {
        json!({
            "agentId": agent,
            "agentVersion": version,
            "collaboratorId": self.id,
            "collaboratorName": self.name,
            "collaborationInstruction": self.instruction,
            "agentDescriptor": {"aliasArn": self.alias_arn},
            "relayConversationHistory": self.relay,
            "createdAt": secs(self.created_ms),
            "lastUpdatedAt": secs(self.updated_ms),
        })
    }
}

/// The agent and alias ids an alias ARN names (`…:agent-alias/{agentId}/{aliasId}`) in
/// this account and region.
pub fn parse_alias_arn(ctx: &RequestContext, arn: &str) -> Option<(String, String)> {
    let rest = arn.strip_prefix(&format!(
        "arn:aws:bedrock:{}:{}:agent-alias/",
        ctx.region, ctx.account_id
    ))?;
    let (agent, alias) = rest.split_once('/')?;
    let id_ok = |s: &str| s.len() == 10 && s.chars().all(|c| c.is_ascii_alphanumeric());
    (id_ok(agent) && id_ok(alias)).then(|| (agent.to_owned(), alias.to_owned()))
}

/// An agent frozen for invocation: the prepared DRAFT or a numbered version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    pub version: String,
    pub agent: AgentRec,
    pub groups: Vec<GroupRec>,
    pub kbs: Vec<AgentKbRec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub collaborators: Vec<CollaboratorRec>,
    pub created_ms: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AliasRec {
    pub id: String,
    pub agent: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The version it invokes.
    pub version: String,
    /// `(version, from ms, until ms)` of the versions it invoked before.
    #[serde(default)]
    pub history: Vec<(String, i64, Option<i64>)>,
    pub status: String,
    /// `ACCEPT_INVOCATIONS` or `REJECT_INVOCATIONS`.
    pub invocation_state: String,
    pub created_ms: i64,
    pub updated_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

impl AliasRec {
    fn routing(&self) -> Value {
        json!([{"agentVersion": self.version}])
    }

    pub fn to_json(&self, ctx: &RequestContext) -> Value {
        let mut m = Map::new();
        m.insert("agentId".into(), self.agent.clone().into());
        m.insert("agentAliasId".into(), self.id.clone().into());
        m.insert("agentAliasName".into(), self.name.clone().into());
        m.insert(
            "agentAliasArn".into(),
            alias_arn(ctx, &self.agent, &self.id).into(),
        );
        if let Some(t) = &self.client_token {
            m.insert("clientToken".into(), t.clone().into());
        }
        if let Some(d) = &self.description {
            m.insert("description".into(), d.clone().into());
        }
        m.insert("routingConfiguration".into(), self.routing());
        m.insert("createdAt".into(), secs(self.created_ms).into());
        m.insert("updatedAt".into(), secs(self.updated_ms).into());
        let history: Vec<Value> = self
            .history
            .iter()
            .map(|(v, from, until)| {
                let mut e = json!({"routingConfiguration": [{"agentVersion": v}], "startDate": secs(*from)});
                if let Some(u) = until {
                    e["endDate"] = secs(*u).into();
                }
                e
            })
            .collect();
        m.insert("agentAliasHistoryEvents".into(), history.into());
        m.insert("agentAliasStatus".into(), self.status.clone().into());
        m.insert(
            "aliasInvocationState".into(),
            self.invocation_state.clone().into(),
        );
        Value::Object(m)
    }

    pub fn summary(&self) -> Value {
        let mut m = Map::new();
        m.insert("agentAliasId".into(), self.id.clone().into());
        m.insert("agentAliasName".into(), self.name.clone().into());
        if let Some(d) = &self.description {
            m.insert("description".into(), d.clone().into());
        }
        m.insert("routingConfiguration".into(), self.routing());
        m.insert("agentAliasStatus".into(), self.status.clone().into());
        m.insert("createdAt".into(), secs(self.created_ms).into());
        m.insert("updatedAt".into(), secs(self.updated_ms).into());
        m.insert(
            "aliasInvocationState".into(),
            self.invocation_state.clone().into(),
        );
        Value::Object(m)
    }

    /// The built-in test alias, which invokes the prepared DRAFT.
    pub fn test_alias(agent: &AgentRec) -> AliasRec {
        AliasRec {
            id: TEST_ALIAS.into(),
            agent: agent.id.clone(),
            name: "AgentTestAlias".into(),
            description: Some("Test Alias for Agent".into()),
            version: "DRAFT".into(),
            history: vec![("DRAFT".into(), agent.created_ms, None)],
            status: "PREPARED".into(),
            invocation_state: "ACCEPT_INVOCATIONS".into(),
            created_ms: agent.created_ms,
            updated_ms: agent.prepared_ms.unwrap_or(agent.updated_ms),
            client_token: None,
            tags: BTreeMap::new(),
        }
    }
}
