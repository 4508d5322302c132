//! CreateAgentAlias, GetAgentAlias, ListAgentAliases, UpdateAgentAlias, DeleteAgentAlias.
//! An alias created or updated without a routing configuration gets a new version, frozen
//! from the prepared DRAFT, as on Bedrock.

use super::agent::{load_snapshot, must_agent, new_version};
use super::model::*;
use crate::KnowledgeBases;
use crate::knowledge_bases::{scan_all, tags_in, token_target, token_write};
use crate::model::{conflict, dump, load, new_id, not_found, scope, str_of};
use basalt_core::{AwsError, RequestContext};
use basalt_store::WriteOp;
use serde_json::{Value, json};

/// Bedrock's quota of aliases per agent.
const MAX_ALIASES: usize = 10;

pub fn must_alias(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    agent: &AgentRec,
    alias: &str,
) -> Result<AliasRec, AwsError> {
    if alias == TEST_ALIAS {
        return Ok(AliasRec::test_alias(agent));
    }
    match k
        .state
        .get(ALIASES, &child_key(&scope(ctx), &agent.id, alias))?
    {
        Some(raw) => load(&raw),
        None => Err(not_found("Agent alias", alias)),
    }
}

/// The version an alias should route to: the one its routing configuration names (which
/// must exist), else a new one.
fn routed_version(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    agent: &mut AgentRec,
    input: &Value,
) -> Result<String, AwsError> {
    match input["routingConfiguration"][0]["agentVersion"].as_str() {
        Some("DRAFT") => Err(AwsError::validation(
            "An alias cannot route to the DRAFT version; the test alias TSTALIASID does.",
        )),
        Some(v) => {
            if load_snapshot(k, ctx, &agent.id, v)?.is_none() {
                return Err(not_found("Agent version", &format!("{}:{v}", agent.id)));
            }
            Ok(v.parse::<u32>().map(|n| n.to_string()).unwrap_or_default())
        }
        None => {
            if input["routingConfiguration"][0]["provisionedThroughput"].is_string() {
                return Err(AwsError::validation(
                    "Provisioned throughput is not available in Basalt; route the alias to an agent version.",
                ));
            }
            new_version(k, ctx, agent)
        }
    }
}

pub fn create(k: &KnowledgeBases, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let agent_id = str_of(input, "agentId").unwrap_or_default();
    let mut agent = must_agent(k, ctx, agent_id)?;
    if let Some(id) = token_target(k, ctx, &format!("alias/{agent_id}"), input)? {
        return Ok(json!({"agentAlias": must_alias(k, ctx, &agent, &id)?.to_json(ctx)}));
    }
    let sc = scope(ctx);
    let name = str_of(input, "agentAliasName").unwrap_or_default();
    let existing = scan_all(k, ALIASES, &format!("{sc}/{agent_id}/"))?;
    for (_, raw) in &existing {
        let a: AliasRec = load(raw)?;
        if a.name == name {
            return Err(conflict(format!(
                "An alias named {name} already exists for agent {agent_id}."
            )));
        }
    }
    if existing.len() >= MAX_ALIASES {
        return Err(AwsError::new(
            400,
            "ServiceQuotaExceededException",
            format!("Agent {agent_id} already has {MAX_ALIASES} aliases."),
        ));
    }
    let version = routed_version(k, ctx, &mut agent, input)?;
    let now = k.now_ms();
    let rec = AliasRec {
        id: new_id(),
        agent: agent_id.to_owned(),
        name: name.to_owned(),
        description: str_of(input, "description").map(str::to_owned),
        version: version.clone(),
        history: vec![(version, now, None)],
        status: "PREPARED".into(),
        invocation_state: "ACCEPT_INVOCATIONS".into(),
        created_ms: now,
        updated_ms: now,
        client_token: str_of(input, "clientToken").map(str::to_owned),
        tags: tags_in(input),
    };
    let mut ops = vec![WriteOp::Put {
        table: ALIASES.into(),
        key: child_key(&sc, agent_id, &rec.id),
        value: dump(&rec),
    }];
    ops.extend(token_write(
        ctx,
        &format!("alias/{agent_id}"),
        input,
        &rec.id,
    ));
    k.state.batch(&ops)?;
    Ok(json!({"agentAlias": rec.to_json(ctx)}))
}

pub fn get(k: &KnowledgeBases, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let agent = must_agent(k, ctx, str_of(input, "agentId").unwrap_or_default())?;
    let a = must_alias(
        k,
        ctx,
        &agent,
        str_of(input, "agentAliasId").unwrap_or_default(),
    )?;
    Ok(json!({"agentAlias": a.to_json(ctx)}))
}

pub fn list(k: &KnowledgeBases, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let agent = must_agent(k, ctx, str_of(input, "agentId").unwrap_or_default())?;
    let mut all = vec![AliasRec::test_alias(&agent).summary()];
    for (_, raw) in scan_all(k, ALIASES, &format!("{}/{}/", scope(ctx), agent.id))? {
        all.push(load::<AliasRec>(&raw)?.summary());
    }
    page_of(&all, input, "agentAliasSummaries", "maxResults", 10)
}

pub fn update(k: &KnowledgeBases, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let mut agent = must_agent(k, ctx, str_of(input, "agentId").unwrap_or_default())?;
    let id = str_of(input, "agentAliasId").unwrap_or_default();
    if id == TEST_ALIAS {
        return Err(AwsError::validation(
            "The test alias TSTALIASID cannot be changed.",
        ));
    }
    let mut rec = must_alias(k, ctx, &agent, id)?;
    let version = routed_version(k, ctx, &mut agent, input)?;
    let now = k.now_ms();
    if version != rec.version {
        if let Some(last) = rec.history.last_mut() {
            last.2 = Some(now);
        }
        rec.history.push((version.clone(), now, None));
        rec.version = version;
    }
    rec.name = str_of(input, "agentAliasName")
        .unwrap_or_default()
        .to_owned();
    rec.description = str_of(input, "description").map(str::to_owned);
    if let Some(s) = str_of(input, "aliasInvocationState") {
        rec.invocation_state = s.to_owned();
    }
    rec.updated_ms = now;
    k.state
        .put(ALIASES, &child_key(&scope(ctx), &agent.id, id), &dump(&rec))?;
    Ok(json!({"agentAlias": rec.to_json(ctx)}))
}

pub fn delete(k: &KnowledgeBases, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let agent = must_agent(k, ctx, str_of(input, "agentId").unwrap_or_default())?;
    let id = str_of(input, "agentAliasId").unwrap_or_default();
    if id == TEST_ALIAS {
        return Err(AwsError::validation(
            "The test alias TSTALIASID cannot be deleted.",
        ));
    }
    must_alias(k, ctx, &agent, id)?;
    let sc = scope(ctx);
    k.state.delete(ALIASES, &child_key(&sc, &agent.id, id))?;
    crate::knowledge_bases::delete_prefix(k, AGENT_SESSIONS, &format!("{sc}/{}/{id}/", agent.id))?;
    Ok(json!({"agentId": agent.id, "agentAliasId": id, "agentAliasStatus": "DELETING"}))
}
