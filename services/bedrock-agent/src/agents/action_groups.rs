//! CreateAgentActionGroup, GetAgentActionGroup, ListAgentActionGroups,
//! UpdateAgentActionGroup and DeleteAgentActionGroup.

use super::agent::{draft_changed, must_agent, must_be_draft};
use super::model::*;
use super::schema;
use crate::KnowledgeBases;
use crate::knowledge_bases::{scan_all, token_target, token_write};
use crate::model::{conflict, dump, load, new_id, scope, str_of};
use basalt_core::{AwsError, RequestContext};
use basalt_store::WriteOp;
use serde_json::{Value, json};

/// Bedrock's quota of action groups per agent.
const MAX_GROUPS: usize = 20;

/// Checks what an action group declares; the OpenAPI document of an API group (read from
/// S3 when the schema names an object).
pub fn check(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Option<String>, AwsError> {
    let signature = str_of(input, "parentActionGroupSignature");
    let executor = &input["actionGroupExecutor"];
    let api = &input["apiSchema"];
    let functions = &input["functionSchema"];
    match signature {
        Some("AMAZON.UserInput") => {
            if !executor.is_null() || !api.is_null() || !functions.is_null() {
                return Err(AwsError::validation(
                    "An action group with parentActionGroupSignature AMAZON.UserInput takes no actionGroupExecutor, apiSchema or functionSchema.",
                ));
            }
            return Ok(None);
        }
        Some("AMAZON.CodeInterpreter") => {
            return Err(AwsError::validation(
                "AMAZON.CodeInterpreter is not available in Basalt: it runs model-written Python, and Basalt has no sandbox it can vouch for (no network, bounded time and memory) on every host it runs on.",
            ));
        }
        Some(other) => {
            return Err(AwsError::validation(format!(
                "The action group signature {other} is only available with Anthropic's computer use models, which Basalt does not run."
            )));
        }
        None => {}
    }
    if executor.is_null() {
        return Err(AwsError::validation(
            "actionGroupExecutor is required: a Lambda function ARN or customControl RETURN_CONTROL.",
        ));
    }
    if executor["lambda"].is_null() && executor["customControl"] != "RETURN_CONTROL" {
        return Err(AwsError::validation(
            "actionGroupExecutor must name a Lambda function or customControl RETURN_CONTROL.",
        ));
    }
    match (api.is_null(), functions.is_null()) {
        (false, false) => Err(AwsError::validation(
            "Specify either apiSchema or functionSchema, not both.",
        )),
        (true, true) => Err(AwsError::validation(
            "An action group needs an apiSchema or a functionSchema.",
        )),
        (true, false) => {
            schema::check_functions(functions).map_err(AwsError::validation)?;
            Ok(None)
        }
        (false, true) => {
            let text = match (str_of(api, "payload"), &api["s3"]) {
                (Some(p), _) => p.to_owned(),
                (None, s3) if s3.is_object() => {
                    let bucket = str_of(s3, "s3BucketName").unwrap_or_default();
                    let key = str_of(s3, "s3ObjectKey").unwrap_or_default();
                    let body = k
                        .objects
                        .read(&ctx.account_id, bucket, key)
                        .map_err(AwsError::internal)?
                        .ok_or_else(|| {
                            AwsError::validation(format!(
                                "The API schema s3://{bucket}/{key} could not be read: the object does not exist."
                            ))
                        })?;
                    String::from_utf8(body.to_vec())
                        .map_err(|_| AwsError::validation("The API schema is not UTF-8 text."))?
                }
                _ => {
                    return Err(AwsError::validation(
                        "apiSchema must give a payload or an s3 location.",
                    ));
                }
            };
            schema::parse_openapi(&text).map_err(AwsError::validation)?;
            Ok(Some(text))
        }
    }
}

fn key(ctx: &RequestContext, agent: &str, group: &str) -> String {
    child_key(&scope(ctx), agent, group)
}

fn load_group(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    agent: &str,
    version: &str,
    group: &str,
) -> Result<GroupRec, AwsError> {
    super::agent::child(
        k,
        ctx,
        agent,
        version,
        ACTION_GROUPS,
        group,
        |s| s.groups,
        |g: &GroupRec| g.id == group,
        "Action group",
    )
}

fn fill(rec: &mut GroupRec, input: &Value, document: Option<String>) {
    let s = |n: &str| str_of(input, n).map(str::to_owned);
    rec.name = s("actionGroupName").unwrap_or_default();
    rec.description = s("description");
    rec.signature = s("parentActionGroupSignature");
    rec.signature_params = input["parentActionGroupSignatureParams"].clone();
    rec.executor = input["actionGroupExecutor"].clone();
    rec.api_schema = input["apiSchema"].clone();
    rec.api_document = document;
    rec.function_schema = input["functionSchema"].clone();
    rec.state = s("actionGroupState").unwrap_or_else(|| "ENABLED".into());
}

fn check_name(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    agent: &str,
    name: &str,
    except: Option<&str>,
) -> Result<usize, AwsError> {
    let all = scan_all(k, ACTION_GROUPS, &format!("{}/{agent}/", scope(ctx)))?;
    for (_, raw) in &all {
        let g: GroupRec = load(raw)?;
        if g.name == name && Some(g.id.as_str()) != except {
            return Err(conflict(format!(
                "An action group named {name} already exists in agent {agent}."
            )));
        }
    }
    Ok(all.len())
}

pub fn create(k: &KnowledgeBases, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let agent = str_of(input, "agentId").unwrap_or_default();
    must_agent(k, ctx, agent)?;
    must_be_draft(str_of(input, "agentVersion").unwrap_or_default())?;
    if let Some(id) = token_target(k, ctx, &format!("group/{agent}"), input)? {
        let g = load_group(k, ctx, agent, "DRAFT", &id)?;
        return Ok(json!({"agentActionGroup": g.to_json(agent, "DRAFT")}));
    }
    let document = check(k, ctx, input)?;
    let name = str_of(input, "actionGroupName").unwrap_or_default();
    if check_name(k, ctx, agent, name, None)? >= MAX_GROUPS {
        return Err(AwsError::new(
            400,
            "ServiceQuotaExceededException",
            format!("Agent {agent} already has {MAX_GROUPS} action groups."),
        ));
    }
    let now = k.now_ms();
    let mut rec = GroupRec {
        id: new_id(),
        name: String::new(),
        description: None,
        signature: None,
        signature_params: Value::Null,
        executor: Value::Null,
        api_schema: Value::Null,
        api_document: None,
        function_schema: Value::Null,
        state: "ENABLED".into(),
        created_ms: now,
        updated_ms: now,
        client_token: str_of(input, "clientToken").map(str::to_owned),
    };
    fill(&mut rec, input, document);
    let mut ops = vec![WriteOp::Put {
        table: ACTION_GROUPS.into(),
        key: key(ctx, agent, &rec.id),
        value: dump(&rec),
    }];
    ops.extend(token_write(ctx, &format!("group/{agent}"), input, &rec.id));
    k.state.batch(&ops)?;
    draft_changed(k, ctx, agent)?;
    Ok(json!({"agentActionGroup": rec.to_json(agent, "DRAFT")}))
}

pub fn get(k: &KnowledgeBases, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let agent = str_of(input, "agentId").unwrap_or_default();
    let version = str_of(input, "agentVersion").unwrap_or_default();
    must_agent(k, ctx, agent)?;
    let g = load_group(
        k,
        ctx,
        agent,
        version,
        str_of(input, "actionGroupId").unwrap_or_default(),
    )?;
    Ok(json!({"agentActionGroup": g.to_json(agent, version)}))
}

pub fn list(k: &KnowledgeBases, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let agent = str_of(input, "agentId").unwrap_or_default();
    let version = str_of(input, "agentVersion").unwrap_or_default();
    must_agent(k, ctx, agent)?;
    let groups: Vec<GroupRec> =
        super::agent::children(k, ctx, agent, version, ACTION_GROUPS, |s| s.groups)?;
    let summaries: Vec<Value> = groups.iter().map(GroupRec::summary).collect();
    page_of(&summaries, input, "actionGroupSummaries", "maxResults", 10)
}

pub fn update(k: &KnowledgeBases, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let agent = str_of(input, "agentId").unwrap_or_default();
    must_agent(k, ctx, agent)?;
    must_be_draft(str_of(input, "agentVersion").unwrap_or_default())?;
    let id = str_of(input, "actionGroupId").unwrap_or_default();
    let mut rec = load_group(k, ctx, agent, "DRAFT", id)?;
    let document = check(k, ctx, input)?;
    check_name(
        k,
        ctx,
        agent,
        str_of(input, "actionGroupName").unwrap_or_default(),
        Some(id),
    )?;
    fill(&mut rec, input, document);
    rec.updated_ms = k.now_ms();
    k.state
        .put(ACTION_GROUPS, &key(ctx, agent, id), &dump(&rec))?;
    draft_changed(k, ctx, agent)?;
    Ok(json!({"agentActionGroup": rec.to_json(agent, "DRAFT")}))
}

pub fn delete(k: &KnowledgeBases, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let agent = str_of(input, "agentId").unwrap_or_default();
    must_agent(k, ctx, agent)?;
    must_be_draft(str_of(input, "agentVersion").unwrap_or_default())?;
    let id = str_of(input, "actionGroupId").unwrap_or_default();
    let rec = load_group(k, ctx, agent, "DRAFT", id)?;
    // Bedrock refuses to delete an enabled group unless told to skip the check.
    if rec.enabled() && !input["skipResourceInUseCheck"].as_bool().unwrap_or(false) {
        return Err(AwsError::validation(format!(
            "The action group {id} is ENABLED; disable it first or set skipResourceInUseCheck."
        )));
    }
    k.state.delete(ACTION_GROUPS, &key(ctx, agent, id))?;
    draft_changed(k, ctx, agent)?;
    Ok(json!({}))
}
