//! AssociateAgentCollaborator, GetAgentCollaborator, ListAgentCollaborators,
//! UpdateAgentCollaborator and DisassociateAgentCollaborator: the team of a supervisor
//! agent. Each collaborator is another agent reached through one of its aliases; the
//! supervisor calls it as a tool (`collaborate.rs` runs it).

use super::agent::{draft_changed, must_agent, must_be_draft};
use super::aliases::must_alias;
use super::model::*;
use crate::KnowledgeBases;
use crate::knowledge_bases::{token_target, token_write};
use crate::model::{conflict, dump, new_id, scope, str_of};
use basalt_core::{AwsError, RequestContext};
use basalt_store::WriteOp;
use serde_json::{Value, json};

fn key(ctx: &RequestContext, agent: &str, id: &str) -> String {
    child_key(&scope(ctx), agent, id)
}

/// The DRAFT's collaborators.
pub fn collaborators_of(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    agent: &str,
) -> Result<Vec<CollaboratorRec>, AwsError> {
    super::agent::children(k, ctx, agent, "DRAFT", AGENT_COLLABORATORS, |s| {
        s.collaborators
    })
}

/// The agent and alias an alias ARN names.
fn resolve(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    arn: &str,
) -> Result<(AgentRec, AliasRec), AwsError> {
    let (agent, alias) = parse_alias_arn(ctx, arn).ok_or_else(|| {
        AwsError::validation(format!(
            "agentDescriptor.aliasArn {arn} is not the ARN of an agent alias in this account and region."
        ))
    })?;
    let target = must_agent(k, ctx, &agent)?;
    let alias = must_alias(k, ctx, &target, &alias)?;
    Ok((target, alias))
}

/// Whether the team of `snap` reaches `agent` again, within `depth` levels.
fn leads_back(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    snap: &Snapshot,
    agent: &str,
    depth: usize,
) -> bool {
    depth > 0
        && snap.collaborators.iter().any(|c| {
            let Ok((target, alias)) = resolve(k, ctx, &c.alias_arn) else {
                return false;
            };
            target.id == agent
                || super::agent::load_snapshot(k, ctx, &target.id, &alias.version)
                    .ok()
                    .flatten()
                    .is_some_and(|s| leads_back(k, ctx, &s, agent, depth - 1))
        })
}

/// Whether `collaboration` (`agentCollaboration`) makes an agent a supervisor.
pub fn is_supervisor(collaboration: Option<&str>) -> bool {
    matches!(collaboration, Some("SUPERVISOR" | "SUPERVISOR_ROUTER"))
}

fn load_collaborator(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    agent: &str,
    version: &str,
    id: &str,
) -> Result<CollaboratorRec, AwsError> {
    super::agent::child(
        k,
        ctx,
        agent,
        version,
        AGENT_COLLABORATORS,
        id,
        |s| s.collaborators,
        |c: &CollaboratorRec| c.id == id,
        "Agent collaborator",
    )
}

/// Checks what an association names: the alias of another agent of this account, not the
/// test alias (a collaborator is invoked at a fixed version), and a name no other
/// collaborator of the supervisor has.
fn check(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    supervisor: &AgentRec,
    input: &Value,
    except: Option<&str>,
) -> Result<(), AwsError> {
    if !is_supervisor(supervisor.collaboration.as_deref()) {
        return Err(AwsError::validation(format!(
            "The agent {} is not a supervisor: set agentCollaboration to SUPERVISOR or SUPERVISOR_ROUTER before associating collaborators.",
            supervisor.id
        )));
    }
    let arn = str_of(&input["agentDescriptor"], "aliasArn").unwrap_or_default();
    let (agent, alias) = parse_alias_arn(ctx, arn).unwrap_or_default();
    if agent == supervisor.id {
        return Err(AwsError::validation(
            "An agent cannot be a collaborator of itself.",
        ));
    }
    if alias == TEST_ALIAS {
        return Err(AwsError::validation(format!(
            "The test alias {TEST_ALIAS} cannot be a collaborator; create an alias of agent {agent} and associate that."
        )));
    }
    resolve(k, ctx, arn)?;
    let name = str_of(input, "collaboratorName").unwrap_or_default();
    if collaborators_of(k, ctx, &supervisor.id)?
        .iter()
        .any(|c| c.name == name && Some(c.id.as_str()) != except)
    {
        return Err(conflict(format!(
            "The agent {} already has a collaborator named {name}.",
            supervisor.id
        )));
    }
    Ok(())
}

pub fn associate(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let agent = str_of(input, "agentId").unwrap_or_default();
    let supervisor = must_agent(k, ctx, agent)?;
    must_be_draft(str_of(input, "agentVersion").unwrap_or_default())?;
    if let Some(id) = token_target(k, ctx, "collaborator", input)? {
        let c = load_collaborator(k, ctx, agent, "DRAFT", &id)?;
        return Ok(json!({"agentCollaborator": c.to_json(agent, "DRAFT")}));
    }
    check(k, ctx, &supervisor, input, None)?;
    let now = k.now_ms();
    let rec = CollaboratorRec {
        id: new_id(),
        name: str_of(input, "collaboratorName")
            .unwrap_or_default()
            .to_owned(),
        instruction: str_of(input, "collaborationInstruction")
            .unwrap_or_default()
            .to_owned(),
        alias_arn: str_of(&input["agentDescriptor"], "aliasArn")
            .unwrap_or_default()
            .to_owned(),
        relay: str_of(input, "relayConversationHistory")
            .unwrap_or("DISABLED")
            .to_owned(),
        created_ms: now,
        updated_ms: now,
        client_token: str_of(input, "clientToken").map(str::to_owned),
    };
    let mut ops = vec![WriteOp::Put {
        table: AGENT_COLLABORATORS.into(),
        key: key(ctx, agent, &rec.id),
        value: dump(&rec),
    }];
    ops.extend(token_write(ctx, "collaborator", input, &rec.id));
    k.state.batch(&ops)?;
    draft_changed(k, ctx, agent)?;
    Ok(json!({"agentCollaborator": rec.to_json(agent, "DRAFT")}))
}

pub fn get(k: &KnowledgeBases, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let agent = str_of(input, "agentId").unwrap_or_default();
    let version = str_of(input, "agentVersion").unwrap_or_default();
    must_agent(k, ctx, agent)?;
    let c = load_collaborator(
        k,
        ctx,
        agent,
        version,
        str_of(input, "collaboratorId").unwrap_or_default(),
    )?;
    Ok(json!({"agentCollaborator": c.to_json(agent, version)}))
}

pub fn list(k: &KnowledgeBases, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let agent = str_of(input, "agentId").unwrap_or_default();
    let version = str_of(input, "agentVersion").unwrap_or_default();
    must_agent(k, ctx, agent)?;
    let all: Vec<CollaboratorRec> =
        super::agent::children(k, ctx, agent, version, AGENT_COLLABORATORS, |s| {
            s.collaborators
        })?;
    let summaries: Vec<Value> = all.iter().map(|c| c.summary(agent, version)).collect();
    page_of(
        &summaries,
        input,
        "agentCollaboratorSummaries",
        "maxResults",
        10,
    )
}

pub fn update(k: &KnowledgeBases, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let agent = str_of(input, "agentId").unwrap_or_default();
    let supervisor = must_agent(k, ctx, agent)?;
    must_be_draft(str_of(input, "agentVersion").unwrap_or_default())?;
    let id = str_of(input, "collaboratorId").unwrap_or_default();
    let mut rec = load_collaborator(k, ctx, agent, "DRAFT", id)?;
    check(k, ctx, &supervisor, input, Some(id))?;
    rec.name = str_of(input, "collaboratorName")
        .unwrap_or_default()
        .to_owned();
    rec.instruction = str_of(input, "collaborationInstruction")
        .unwrap_or_default()
        .to_owned();
    rec.alias_arn = str_of(&input["agentDescriptor"], "aliasArn")
        .unwrap_or_default()
        .to_owned();
    if let Some(r) = str_of(input, "relayConversationHistory") {
        rec.relay = r.to_owned();
    }
    rec.updated_ms = k.now_ms();
    k.state
        .put(AGENT_COLLABORATORS, &key(ctx, agent, id), &dump(&rec))?;
    draft_changed(k, ctx, agent)?;
    Ok(json!({"agentCollaborator": rec.to_json(agent, "DRAFT")}))
}

pub fn disassociate(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let agent = str_of(input, "agentId").unwrap_or_default();
    must_agent(k, ctx, agent)?;
    must_be_draft(str_of(input, "agentVersion").unwrap_or_default())?;
    let id = str_of(input, "collaboratorId").unwrap_or_default();
    load_collaborator(k, ctx, agent, "DRAFT", id)?;
    k.state.delete(AGENT_COLLABORATORS, &key(ctx, agent, id))?;
    draft_changed(k, ctx, agent)?;
    Ok(json!({}))
}

/// Why the DRAFT's team cannot run, if it cannot (PrepareAgent).
pub fn problems(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    rec: &AgentRec,
    collaborators: &[CollaboratorRec],
) -> Result<Vec<String>, AwsError> {
    let mut out = Vec::new();
    if !is_supervisor(rec.collaboration.as_deref()) {
        if !collaborators.is_empty() {
            out.push(format!(
                "The agent has collaborators but agentCollaboration is {}; set it to SUPERVISOR or SUPERVISOR_ROUTER, or disassociate them.",
                rec.collaboration.as_deref().unwrap_or("DISABLED")
            ));
        }
        return Ok(out);
    }
    if collaborators.is_empty() {
        out.push("A supervisor agent needs at least one collaborator.".to_owned());
    }
    for c in collaborators {
        let Ok((target, alias)) = resolve(k, ctx, &c.alias_arn) else {
            out.push(format!(
                "The alias {} of collaborator {} does not exist.",
                c.alias_arn, c.name
            ));
            continue;
        };
        let Some(snap) = super::agent::load_snapshot(k, ctx, &target.id, &alias.version)? else {
            out.push(format!(
                "The alias {} of collaborator {} routes to version {}, which does not exist.",
                c.alias_arn, c.name, alias.version
            ));
            continue;
        };
        if snap
            .groups
            .iter()
            .any(|g| g.enabled() && g.signature.is_none() && g.lambda().is_none())
        {
            out.push(format!(
                "The collaborator {} has action groups that return control to their caller; Basalt does not relay a collaborator's return of control through its supervisor.",
                c.name
            ));
        }
        if leads_back(k, ctx, &snap, &rec.id, super::collaborate::MAX_CHAIN) {
            out.push(format!(
                "The collaborator {} leads back to this agent through its own collaborators.",
                c.name
            ));
        }
    }
    Ok(out)
}
