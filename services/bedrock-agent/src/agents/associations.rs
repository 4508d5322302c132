//! AssociateAgentKnowledgeBase, GetAgentKnowledgeBase, ListAgentKnowledgeBases,
//! UpdateAgentKnowledgeBase and DisassociateAgentKnowledgeBase.

use super::agent::{draft_changed, must_agent, must_be_draft};
use super::model::*;
use crate::KnowledgeBases;
use crate::knowledge_bases::must_load;
use crate::model::{conflict, dump, scope, str_of};
use basalt_core::{AwsError, RequestContext};
use serde_json::{Value, json};

fn key(ctx: &RequestContext, agent: &str, kb: &str) -> String {
    child_key(&scope(ctx), agent, kb)
}

fn load_assoc(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    agent: &str,
    version: &str,
    kb: &str,
) -> Result<AgentKbRec, AwsError> {
    super::agent::child(
        k,
        ctx,
        agent,
        version,
        AGENT_KBS,
        kb,
        |s| s.kbs,
        |a: &AgentKbRec| a.kb == kb,
        "Knowledge base association",
    )
}

pub fn associate(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let agent = str_of(input, "agentId").unwrap_or_default();
    must_agent(k, ctx, agent)?;
    must_be_draft(str_of(input, "agentVersion").unwrap_or_default())?;
    let kb = str_of(input, "knowledgeBaseId").unwrap_or_default();
    must_load(k, ctx, kb)?;
    if k.state.get(AGENT_KBS, &key(ctx, agent, kb))?.is_some() {
        return Err(conflict(format!(
            "The knowledge base {kb} is already associated with agent {agent}."
        )));
    }
    let now = k.now_ms();
    let rec = AgentKbRec {
        kb: kb.to_owned(),
        description: str_of(input, "description").unwrap_or_default().to_owned(),
        state: str_of(input, "knowledgeBaseState")
            .unwrap_or("ENABLED")
            .to_owned(),
        created_ms: now,
        updated_ms: now,
    };
    k.state.put(AGENT_KBS, &key(ctx, agent, kb), &dump(&rec))?;
    draft_changed(k, ctx, agent)?;
    Ok(json!({"agentKnowledgeBase": rec.to_json(agent, "DRAFT")}))
}

pub fn get(k: &KnowledgeBases, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let agent = str_of(input, "agentId").unwrap_or_default();
    let version = str_of(input, "agentVersion").unwrap_or_default();
    must_agent(k, ctx, agent)?;
    let a = load_assoc(
        k,
        ctx,
        agent,
        version,
        str_of(input, "knowledgeBaseId").unwrap_or_default(),
    )?;
    Ok(json!({"agentKnowledgeBase": a.to_json(agent, version)}))
}

pub fn list(k: &KnowledgeBases, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let agent = str_of(input, "agentId").unwrap_or_default();
    let version = str_of(input, "agentVersion").unwrap_or_default();
    must_agent(k, ctx, agent)?;
    let kbs: Vec<AgentKbRec> =
        super::agent::children(k, ctx, agent, version, AGENT_KBS, |s| s.kbs)?;
    let summaries: Vec<Value> = kbs.iter().map(AgentKbRec::summary).collect();
    page_of(
        &summaries,
        input,
        "agentKnowledgeBaseSummaries",
        "maxResults",
        10,
    )
}

pub fn update(k: &KnowledgeBases, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let agent = str_of(input, "agentId").unwrap_or_default();
    must_agent(k, ctx, agent)?;
    must_be_draft(str_of(input, "agentVersion").unwrap_or_default())?;
    let kb = str_of(input, "knowledgeBaseId").unwrap_or_default();
    let mut rec = load_assoc(k, ctx, agent, "DRAFT", kb)?;
    if let Some(d) = str_of(input, "description") {
        rec.description = d.to_owned();
    }
    if let Some(s) = str_of(input, "knowledgeBaseState") {
        rec.state = s.to_owned();
    }
    rec.updated_ms = k.now_ms();
    k.state.put(AGENT_KBS, &key(ctx, agent, kb), &dump(&rec))?;
    draft_changed(k, ctx, agent)?;
    Ok(json!({"agentKnowledgeBase": rec.to_json(agent, "DRAFT")}))
}

pub fn disassociate(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let agent = str_of(input, "agentId").unwrap_or_default();
    must_agent(k, ctx, agent)?;
    must_be_draft(str_of(input, "agentVersion").unwrap_or_default())?;
    let kb = str_of(input, "knowledgeBaseId").unwrap_or_default();
    load_assoc(k, ctx, agent, "DRAFT", kb)?;
    k.state.delete(AGENT_KBS, &key(ctx, agent, kb))?;
    draft_changed(k, ctx, agent)?;
    Ok(json!({}))
}
