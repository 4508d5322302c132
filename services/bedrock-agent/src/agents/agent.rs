//! CreateAgent, GetAgent, ListAgents, UpdateAgent, DeleteAgent, PrepareAgent, and the
//! agent's versions (ListAgentVersions, GetAgentVersion, DeleteAgentVersion).

use super::model::*;
use crate::KnowledgeBases;
use crate::knowledge_bases::{delete_prefix, page, token_target, token_write};
use crate::model::{RECORD_VERSION, conflict, dump, load, new_id, not_found, scope, secs, str_of};
use basalt_core::{AwsError, RequestContext};
use basalt_store::WriteOp;
use serde_json::{Value, json};

/// Bedrock's bounds on an agent's instruction (the model allows up to 4,000 characters).
const INSTRUCTION_MIN: usize = 40;
const INSTRUCTION_MAX: usize = 4000;

pub fn must_agent(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    id: &str,
) -> Result<AgentRec, AwsError> {
    match k.state.get(AGENTS, &agent_key(&scope(ctx), id))? {
        Some(raw) => load(&raw),
        None => Err(not_found("Agent", id)),
    }
}

pub fn save_agent(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    rec: &AgentRec,
) -> Result<(), AwsError> {
    k.state
        .put(AGENTS, &agent_key(&scope(ctx), &rec.id), &dump(rec))?;
    Ok(())
}

/// The DRAFT changed: it must be prepared again before the test alias sees the change.
pub fn draft_changed(k: &KnowledgeBases, ctx: &RequestContext, id: &str) -> Result<(), AwsError> {
    let mut rec = must_agent(k, ctx, id)?;
    rec.status = "NOT_PREPARED".into();
    rec.updated_ms = k.now_ms();
    save_agent(k, ctx, &rec)
}

/// Only the DRAFT is edited; numbered versions are frozen.
pub fn must_be_draft(version: &str) -> Result<(), AwsError> {
    if version == "DRAFT" {
        Ok(())
    } else {
        Err(AwsError::validation(format!(
            "Version {version} of an agent cannot be changed; edit the DRAFT version."
        )))
    }
}

pub fn load_snapshot(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    agent: &str,
    version: &str,
) -> Result<Option<Snapshot>, AwsError> {
    k.state
        .get(
            VERSIONS,
            &child_key(&scope(ctx), agent, &version_part(version)),
        )?
        .map(|raw| load(&raw))
        .transpose()
}

/// An agent's records of one kind at `version`: the DRAFT's from their table, a
/// prepared version's from its snapshot (`frozen` picks them).
pub fn children<T: serde::de::DeserializeOwned>(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    agent: &str,
    version: &str,
    table: &str,
    frozen: impl FnOnce(Snapshot) -> Vec<T>,
) -> Result<Vec<T>, AwsError> {
    if version == "DRAFT" {
        return crate::knowledge_bases::load_all(k, table, &format!("{}/{agent}/", scope(ctx)));
    }
    let snap = load_snapshot(k, ctx, agent, version)?
        .ok_or_else(|| not_found("Agent version", &format!("{agent}:{version}")))?;
    Ok(frozen(snap))
}

/// One of them: `id` under the agent in the DRAFT's table, or the first `frozen` record of
/// the version's snapshot that `is` picks; `what` names it when there is none.
#[allow(clippy::too_many_arguments)]
pub fn child<T: serde::de::DeserializeOwned>(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    agent: &str,
    version: &str,
    table: &str,
    id: &str,
    frozen: impl FnOnce(Snapshot) -> Vec<T>,
    is: impl Fn(&T) -> bool,
    what: &str,
) -> Result<T, AwsError> {
    if version == "DRAFT" {
        if let Some(raw) = k.state.get(table, &child_key(&scope(ctx), agent, id))? {
            return load(&raw);
        }
    } else if let Some(snap) = load_snapshot(k, ctx, agent, version)?
        && let Some(found) = frozen(snap).into_iter().find(|c| is(c))
    {
        return Ok(found);
    }
    Err(not_found(what, id))
}

fn check_instruction(input: &Value) -> Result<(), AwsError> {
    if let Some(i) = str_of(input, "instruction") {
        let n = i.chars().count();
        if !(INSTRUCTION_MIN..=INSTRUCTION_MAX).contains(&n) {
            return Err(AwsError::validation(format!(
                "1 validation error detected: Value at 'instruction' failed to satisfy constraint: Member must have length between {INSTRUCTION_MIN} and {INSTRUCTION_MAX}, but it has {n} characters."
            )));
        }
    }
    if let Some(m) = input["memoryConfiguration"]["storageDays"].as_u64()
        && m > 365
    {
        return Err(AwsError::validation(
            "memoryConfiguration.storageDays must be at most 365.",
        ));
    }
    if input["orchestrationType"] == "CUSTOM_ORCHESTRATION" {
        return Err(AwsError::validation(
            "Custom orchestration (a Lambda function that orchestrates the agent) is not supported by Basalt; use DEFAULT orchestration.",
        ));
    }
    Ok(())
}

fn apply(rec: &mut AgentRec, input: &Value) {
    let s = |n: &str| str_of(input, n).map(str::to_owned);
    rec.name = s("agentName").unwrap_or_default();
    rec.description = s("description");
    rec.instruction = s("instruction");
    rec.foundation_model = s("foundationModel");
    rec.idle_ttl = input["idleSessionTTLInSeconds"]
        .as_u64()
        .unwrap_or(DEFAULT_IDLE_TTL);
    rec.role_arn = s("agentResourceRoleArn").unwrap_or_default();
    rec.kms_key = s("customerEncryptionKeyArn");
    rec.prompt_override = input["promptOverrideConfiguration"].clone();
    rec.guardrail = input["guardrailConfiguration"].clone();
    rec.memory = input["memoryConfiguration"].clone();
    rec.collaboration = s("agentCollaboration");
    rec.orchestration_type = s("orchestrationType");
}

pub fn create(k: &KnowledgeBases, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    if let Some(id) = token_target(k, ctx, "agent", input)? {
        return Ok(json!({"agent": must_agent(k, ctx, &id)?.to_json(ctx, None)}));
    }
    check_instruction(input)?;
    let sc = scope(ctx);
    let name = str_of(input, "agentName").unwrap_or_default();
    if crate::knowledge_bases::scan_all(k, AGENTS, &format!("{sc}/"))?
        .iter()
        .filter_map(|(_, raw)| load::<AgentRec>(raw).ok())
        .any(|a| a.name == name)
    {
        return Err(conflict(format!("An agent named {name} already exists.")));
    }
    let now = k.now_ms();
    let mut rec = AgentRec {
        v: RECORD_VERSION,
        id: new_id(),
        name: String::new(),
        description: None,
        instruction: None,
        foundation_model: None,
        idle_ttl: DEFAULT_IDLE_TTL,
        role_arn: String::new(),
        kms_key: None,
        prompt_override: Value::Null,
        guardrail: Value::Null,
        memory: Value::Null,
        collaboration: None,
        orchestration_type: None,
        status: "NOT_PREPARED".into(),
        failure_reasons: Vec::new(),
        created_ms: now,
        updated_ms: now,
        prepared_ms: None,
        client_token: str_of(input, "clientToken").map(str::to_owned),
        versions: 0,
        tags: crate::knowledge_bases::tags_in(input),
    };
    apply(&mut rec, input);
    let mut ops = vec![WriteOp::Put {
        table: AGENTS.into(),
        key: agent_key(&sc, &rec.id),
        value: dump(&rec),
    }];
    ops.extend(token_write(ctx, "agent", input, &rec.id));
    k.state.batch(&ops)?;
    Ok(json!({"agent": rec.to_json(ctx, None)}))
}

pub fn get(k: &KnowledgeBases, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let rec = must_agent(k, ctx, str_of(input, "agentId").unwrap_or_default())?;
    Ok(json!({"agent": rec.to_json(ctx, None)}))
}

pub fn list(k: &KnowledgeBases, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let p = page(k, AGENTS, &format!("{}/", scope(ctx)), input, 10)?;
    let mut out = Vec::new();
    for (_, raw) in p.rows {
        let a: AgentRec = load(&raw)?;
        let mut s = json!({
            "agentId": a.id, "agentName": a.name, "agentStatus": a.status,
            "updatedAt": secs(a.updated_ms),
        });
        if let Some(d) = &a.description {
            s["description"] = d.clone().into();
        }
        if a.versions > 0 {
            s["latestAgentVersion"] = a.versions.to_string().into();
        }
        if !a.guardrail.is_null() {
            s["guardrailConfiguration"] = a.guardrail.clone();
        }
        out.push(s);
    }
    let mut resp = json!({"agentSummaries": out});
    if let Some(n) = p.next {
        resp["nextToken"] = n.into();
    }
    Ok(resp)
}

pub fn update(k: &KnowledgeBases, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let mut rec = must_agent(k, ctx, str_of(input, "agentId").unwrap_or_default())?;
    check_instruction(input)?;
    apply(&mut rec, input);
    rec.status = "NOT_PREPARED".into();
    rec.updated_ms = k.now_ms();
    save_agent(k, ctx, &rec)?;
    Ok(json!({"agent": rec.to_json(ctx, None)}))
}

fn aliases_of(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    agent: &str,
) -> Result<Vec<AliasRec>, AwsError> {
    crate::knowledge_bases::load_all(k, ALIASES, &format!("{}/{agent}/", scope(ctx)))
}

pub fn delete(k: &KnowledgeBases, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let id = str_of(input, "agentId").unwrap_or_default();
    must_agent(k, ctx, id)?;
    if !input["skipResourceInUseCheck"].as_bool().unwrap_or(false)
        && let Some(a) = aliases_of(k, ctx, id)?.first()
    {
        return Err(conflict(format!(
            "The agent {id} is in use by alias {}; delete its aliases or set skipResourceInUseCheck.",
            a.id
        )));
    }
    let sc = scope(ctx);
    // The agent record goes first: from then on nothing finds the agent.
    k.state.delete(AGENTS, &agent_key(&sc, id))?;
    let under = format!("{sc}/{id}/");
    for table in [
        ACTION_GROUPS,
        AGENT_KBS,
        AGENT_COLLABORATORS,
        VERSIONS,
        ALIASES,
        AGENT_SESSIONS,
        MEMORIES,
    ] {
        delete_prefix(k, table, &under)?;
    }
    Ok(json!({"agentId": id, "agentStatus": "DELETING"}))
}

/// The model id a foundation model identifier names: a model id, an inference profile id
/// (`us.…`) or either's ARN.
pub fn model_id(identifier: &str) -> &str {
    let id = identifier.rsplit_once('/').map_or(identifier, |(_, id)| id);
    for region in [
        "us.", "eu.", "apac.", "us-gov.", "global.", "jp.", "au.", "ca.",
    ] {
        if let Some(rest) = id.strip_prefix(region) {
            return rest;
        }
    }
    id
}

/// Whether a foundation model identifier names a Bedrock text model.
pub fn is_text_model(identifier: &str) -> bool {
    basalt_bedrock_runtime::catalog::family(model_id(identifier)).is_some_and(|f| !f.is_embedding())
}

pub fn groups_of(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    agent: &str,
) -> Result<Vec<GroupRec>, AwsError> {
    crate::knowledge_bases::load_all(k, ACTION_GROUPS, &format!("{}/{agent}/", scope(ctx)))
}

pub fn kbs_of(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    agent: &str,
) -> Result<Vec<AgentKbRec>, AwsError> {
    crate::knowledge_bases::load_all(k, AGENT_KBS, &format!("{}/{agent}/", scope(ctx)))
}

/// Why the DRAFT cannot run, if it cannot.
async fn problems(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    rec: &AgentRec,
    groups: &[GroupRec],
    kbs: &[AgentKbRec],
) -> Result<Vec<String>, AwsError> {
    let mut out = Vec::new();
    match rec.foundation_model.as_deref() {
        None => out.push("The agent has no foundation model.".to_owned()),
        Some(m) => {
            if !is_text_model(m) {
                out.push(format!(
                    "The foundation model {m} is not a Bedrock text model."
                ));
            }
        }
    }
    if rec.instruction.is_none() {
        out.push("The agent has no instruction.".to_owned());
    }
    let with_kbs: Vec<(AgentKbRec, Value)> = kbs.iter().map(|a| (a.clone(), Value::Null)).collect();
    if let Err(e) = super::schema::tools(groups, &with_kbs) {
        out.push(e);
    }
    out.extend(super::parser::parser_problems(&rec.prompt_override));
    let parser = str_of(&rec.prompt_override, "overrideLambda")
        .map(|arn| (arn, "the prompt override's parser".to_owned()));
    let actions = groups.iter().filter(|g| g.enabled()).filter_map(|g| {
        g.lambda()
            .map(|arn| (arn, format!("action group {}", g.name)))
    });
    for (arn, user) in parser.into_iter().chain(actions) {
        let found = k
            .registry()?
            .call(
                ctx,
                "lambda",
                "GetFunctionConfiguration",
                json!({"FunctionName": arn}),
            )
            .await;
        if let Err(e) = found
            && e.code == "ResourceNotFoundException"
        {
            out.push(format!(
                "The Lambda function {arn} of {user} does not exist."
            ));
        }
    }
    for a in kbs {
        if k.state
            .get(crate::model::KBS, &crate::model::kb_key(&scope(ctx), &a.kb))?
            .is_none()
        {
            out.push(format!("The knowledge base {} does not exist.", a.kb));
        }
    }
    Ok(out)
}

pub async fn prepare(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let id = str_of(input, "agentId").unwrap_or_default();
    let mut rec = must_agent(k, ctx, id)?;
    let groups = groups_of(k, ctx, id)?;
    let kbs = kbs_of(k, ctx, id)?;
    let collaborators = super::collaborators::collaborators_of(k, ctx, id)?;
    let mut problems = problems(k, ctx, &rec, &groups, &kbs).await?;
    problems.extend(super::collaborators::problems(
        k,
        ctx,
        &rec,
        &collaborators,
    )?);
    if !problems.is_empty() {
        return Err(AwsError::validation(format!(
            "The agent cannot be prepared: {}",
            problems.join(" ")
        )));
    }
    let now = k.now_ms();
    rec.status = "PREPARED".into();
    rec.failure_reasons.clear();
    rec.prepared_ms = Some(now);
    rec.updated_ms = now;
    let snap = Snapshot {
        version: "DRAFT".into(),
        agent: rec.clone(),
        groups,
        kbs,
        collaborators,
        created_ms: now,
    };
    let sc = scope(ctx);
    k.state.batch(&[
        WriteOp::Put {
            table: AGENTS.into(),
            key: agent_key(&sc, id),
            value: dump(&rec),
        },
        WriteOp::Put {
            table: VERSIONS.into(),
            key: child_key(&sc, id, "DRAFT"),
            value: dump(&snap),
        },
    ])?;
    // Bedrock answers while preparation runs; here it is already done.
    Ok(
        json!({"agentId": id, "agentStatus": "PREPARING", "agentVersion": "DRAFT", "preparedAt": secs(now)}),
    )
}

/// Freezes the prepared DRAFT as the next numbered version; its number.
pub fn new_version(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    agent: &mut AgentRec,
) -> Result<String, AwsError> {
    let Some(mut snap) = load_snapshot(k, ctx, &agent.id, "DRAFT")? else {
        return Err(AwsError::validation(format!(
            "The agent {} has not been prepared; call PrepareAgent before creating a version.",
            agent.id
        )));
    };
    agent.versions += 1;
    let version = agent.versions.to_string();
    let now = k.now_ms();
    snap.version = version.clone();
    snap.agent.created_ms = now;
    snap.agent.updated_ms = now;
    agent.updated_ms = now;
    let sc = scope(ctx);
    k.state.batch(&[
        WriteOp::Put {
            table: VERSIONS.into(),
            key: child_key(&sc, &agent.id, &version_part(&version)),
            value: dump(&snap),
        },
        WriteOp::Put {
            table: AGENTS.into(),
            key: agent_key(&sc, &agent.id),
            value: dump(&*agent),
        },
    ])?;
    Ok(version)
}

fn version_summary(a: &AgentRec, version: &str) -> Value {
    let mut s = json!({
        "agentName": a.name, "agentStatus": a.status, "agentVersion": version,
        "createdAt": secs(a.created_ms), "updatedAt": secs(a.updated_ms),
    });
    if let Some(d) = &a.description {
        s["description"] = d.clone().into();
    }
    if !a.guardrail.is_null() {
        s["guardrailConfiguration"] = a.guardrail.clone();
    }
    s
}

pub fn list_versions(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let id = str_of(input, "agentId").unwrap_or_default();
    let draft = must_agent(k, ctx, id)?;
    let mut all = vec![version_summary(&draft, "DRAFT")];
    for (_, raw) in crate::knowledge_bases::scan_all(k, VERSIONS, &format!("{}/{id}/", scope(ctx)))?
    {
        let s: Snapshot = load(&raw)?;
        if s.version != "DRAFT" {
            all.push(version_summary(&s.agent, &s.version));
        }
    }
    page_of(&all, input, "agentVersionSummaries", "maxResults", 10)
}

pub fn get_version(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let id = str_of(input, "agentId").unwrap_or_default();
    let version = str_of(input, "agentVersion").unwrap_or_default();
    must_agent(k, ctx, id)?;
    let snap = load_snapshot(k, ctx, id, version)?
        .filter(|s| s.version != "DRAFT")
        .ok_or_else(|| not_found("Agent version", &format!("{id}:{version}")))?;
    Ok(json!({"agentVersion": snap.agent.to_json(ctx, Some(&snap.version))}))
}

pub fn delete_version(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let id = str_of(input, "agentId").unwrap_or_default();
    let version = str_of(input, "agentVersion").unwrap_or_default();
    must_agent(k, ctx, id)?;
    if load_snapshot(k, ctx, id, version)?
        .filter(|s| s.version != "DRAFT")
        .is_none()
    {
        return Err(not_found("Agent version", &format!("{id}:{version}")));
    }
    let version = version
        .parse::<u32>()
        .map(|n| n.to_string())
        .unwrap_or_default();
    if !input["skipResourceInUseCheck"].as_bool().unwrap_or(false)
        && let Some(a) = aliases_of(k, ctx, id)?
            .iter()
            .find(|a| a.version == version)
    {
        return Err(conflict(format!(
            "Version {version} of agent {id} is in use by alias {}.",
            a.id
        )));
    }
    k.state.delete(
        VERSIONS,
        &child_key(&scope(ctx), id, &version_part(&version)),
    )?;
    Ok(json!({"agentId": id, "agentVersion": version, "agentStatus": "DELETING"}))
}

/// The tags of an agent or alias ARN: read, changed by `edit`, written back.
pub fn tags(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    arn: &str,
    edit: impl FnOnce(&mut std::collections::BTreeMap<String, String>),
) -> Result<std::collections::BTreeMap<String, String>, AwsError> {
    let prefix = format!("arn:aws:bedrock:{}:{}:", ctx.region, ctx.account_id);
    let rest = arn
        .strip_prefix(&prefix)
        .ok_or_else(|| not_found("Resource", arn))?;
    let sc = scope(ctx);
    if let Some(id) = rest.strip_prefix("agent/") {
        let mut rec = must_agent(k, ctx, id).map_err(|_| not_found("Resource", arn))?;
        edit(&mut rec.tags);
        check_tags(&rec.tags)?;
        save_agent(k, ctx, &rec)?;
        return Ok(rec.tags);
    }
    if let Some((agent, alias)) = rest
        .strip_prefix("agent-alias/")
        .and_then(|r| r.split_once('/'))
    {
        let key = child_key(&sc, agent, alias);
        let mut rec: AliasRec = match k.state.get(ALIASES, &key)? {
            Some(raw) => load(&raw)?,
            None => return Err(not_found("Resource", arn)),
        };
        edit(&mut rec.tags);
        check_tags(&rec.tags)?;
        k.state.put(ALIASES, &key, &dump(&rec))?;
        return Ok(rec.tags);
    }
    Err(not_found("Resource", arn))
}

fn check_tags(tags: &std::collections::BTreeMap<String, String>) -> Result<(), AwsError> {
    if tags.len() > 50 {
        return Err(AwsError::validation("A resource can have at most 50 tags."));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_ids_from_identifiers() {
        assert_eq!(
            model_id("anthropic.claude-3-sonnet-20240229-v1:0"),
            "anthropic.claude-3-sonnet-20240229-v1:0"
        );
        assert_eq!(
            model_id("arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-v2"),
            "anthropic.claude-v2"
        );
        assert_eq!(
            model_id("us.anthropic.claude-3-haiku-20240307-v1:0"),
            "anthropic.claude-3-haiku-20240307-v1:0"
        );
    }
}
