//! InvokeAgent and InvokeInlineAgent: resolve the agent (an alias's version, or the
//! definition in the request), load or start the session, and run the turn in the
//! background while its events stream out.

use super::agent::{load_snapshot, must_agent};
use super::aliases::must_alias;
use super::collaborate::{self, Collaborator, Target};
use super::collaborators::is_supervisor;
use super::model::*;
use super::orchestrate::{Agent, Run};
use super::schema;
use super::sessions::{DEFAULT_RECENT_SESSIONS, SessionRec, load_session, memories, session_key};
use crate::KnowledgeBases;
use crate::model::{new_id, str_of};
use basalt_core::{AwsError, Output, RequestContext};
use futures::StreamExt;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// The session's state as the request gives it (`sessionState` or `inlineSessionState`).
struct Request<'a> {
    session_id: &'a str,
    input_text: String,
    state: &'a Value,
    memory_id: Option<&'a str>,
    trace: bool,
    end_session: bool,
    stream_chunk: Option<usize>,
}

fn request<'a>(input: &'a Value, state: &'a Value) -> Result<Request<'a>, AwsError> {
    let results = &state["returnControlInvocationResults"];
    let input_text = str_of(input, "inputText").unwrap_or_default().to_owned();
    if results.is_null()
        && input_text.trim().is_empty()
        && !input["endSession"].as_bool().unwrap_or(false)
    {
        return Err(AwsError::validation(
            "inputText is required unless sessionState carries returnControlInvocationResults.",
        ));
    }
    Ok(Request {
        session_id: str_of(input, "sessionId").unwrap_or_default(),
        input_text,
        state,
        memory_id: str_of(input, "memoryId"),
        trace: input["enableTrace"].as_bool().unwrap_or(false),
        end_session: input["endSession"].as_bool().unwrap_or(false),
        stream_chunk: stream_chunk(&input["streamingConfigurations"]),
    })
}

/// Bedrock's default `applyGuardrailInterval`, in characters.
const GUARDRAIL_INTERVAL: usize = 50;

/// The chunk size of a streamed final response, when `streamFinalResponse` asks for one.
/// The answer has passed the guardrail whole before it is cut, so each chunk has too.
fn stream_chunk(config: &Value) -> Option<usize> {
    config["streamFinalResponse"].as_bool()?.then(|| {
        config["applyGuardrailInterval"]
            .as_u64()
            .map_or(GUARDRAIL_INTERVAL, |n| n as usize)
    })
}

fn string_map(v: &Value) -> Option<Map<String, Value>> {
    v.as_object().cloned()
}

/// Starts the turn; the response streams its events.
async fn start(
    k: &Arc<KnowledgeBases>,
    ctx: &RequestContext,
    agent: Agent,
    req: Request<'_>,
    key: String,
    chain: Vec<String>,
) -> Result<Output, AwsError> {
    let now = k.now_ms();
    let fresh = || SessionRec {
        started_ms: now,
        last_ms: now,
        ..Default::default()
    };
    let (mut session, expired) = match load_session(k, &key)? {
        Some(s) if s.expired(now, agent.idle_ttl) => (fresh(), Some(s)),
        Some(s) => (s, None),
        None => (fresh(), None),
    };
    if let Some(m) = req.memory_id {
        session.memory_id = Some(m.to_owned());
    }
    if let Some(a) = string_map(&req.state["sessionAttributes"]) {
        session.session_attributes = a;
    }
    if let Some(a) = string_map(&req.state["promptSessionAttributes"]) {
        session.prompt_session_attributes = a;
    }
    if let Some(history) = req.state["conversationHistory"]["messages"].as_array() {
        let text = |m: &Value| {
            m["content"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|b| b["text"].as_str())
                .collect::<Vec<_>>()
                .join("\n")
        };
        let mut turns = Vec::new();
        let mut question: Option<String> = None;
        for m in history {
            match (m["role"].as_str(), question.take()) {
                (Some("user"), _) => question = Some(text(m)),
                (Some("assistant"), Some(q)) => turns.push((q, text(m))),
                _ => {}
            }
        }
        session.turns = turns;
    }
    let results = req.state["returnControlInvocationResults"]
        .as_array()
        .cloned();
    if results.is_some() {
        let pending = session.pending.as_ref().ok_or_else(|| {
            AwsError::validation(
                "sessionState.returnControlInvocationResults was sent, but the session is not waiting for the results of a returned control.",
            )
        })?;
        if let Some(id) = str_of(req.state, "invocationId")
            && id != pending.invocation_id
        {
            return Err(AwsError::validation(format!(
                "The invocationId {id} does not match the pending return of control ({}).",
                pending.invocation_id
            )));
        }
    } else {
        // A new question abandons a return of control left unanswered.
        session.pending = None;
    }
    let memory_content = match (&session.memory_id, agent.memory.is_null()) {
        (Some(m), false) => {
            let n = agent.memory["sessionSummaryConfiguration"]["maxRecentSessions"]
                .as_u64()
                .map_or(DEFAULT_RECENT_SESSIONS, |n| n as usize);
            memories(k, ctx, &agent.id, m)?
                .into_iter()
                .take(n)
                .map(|m| m.summary)
                .collect()
        }
        _ => Vec::new(),
    };
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let mut body = json!({"contentType": "application/json", "sessionId": req.session_id});
    if let Some(m) = &session.memory_id {
        body["memoryId"] = m.clone().into();
    }
    let run = Run {
        k: k.clone(),
        ctx: ctx.clone(),
        agent,
        session_id: req.session_id.to_owned(),
        session_key: key,
        session,
        input_text: req.input_text,
        trace: req.trace,
        end_session: req.end_session,
        results,
        memory_content,
        events: tx,
        trace_id: uuid::Uuid::new_v4().to_string(),
        expired,
        chain,
        collaborator: None,
        stream_chunk: req.stream_chunk,
    };
    tokio::spawn(run.run());
    let stream =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (e, rx)) })
            .boxed();
    Ok(Output::with_stream(body, stream))
}

/// The agent an alias invokes, at the version the alias routes to.
pub fn agent_of_alias(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    agent_id: &str,
    alias_id: &str,
) -> Result<Agent, AwsError> {
    let draft = must_agent(k, ctx, agent_id)?;
    let alias = must_alias(k, ctx, &draft, alias_id)?;
    if alias.invocation_state == "REJECT_INVOCATIONS" {
        return Err(AwsError::validation(format!(
            "The alias {alias_id} of agent {agent_id} does not accept invocations (aliasInvocationState REJECT_INVOCATIONS)."
        )));
    }
    let snap = load_snapshot(k, ctx, agent_id, &alias.version)?.ok_or_else(|| {
        AwsError::validation(format!(
            "The agent {agent_id} has not been prepared; call PrepareAgent before invoking it."
        ))
    })?;
    let kbs: Vec<(AgentKbRec, Value)> = snap.kbs.iter().map(|a| (a.clone(), Value::Null)).collect();
    let mut tools = schema::tools(&snap.groups, &kbs).map_err(AwsError::validation)?;
    let a = &snap.agent;
    let mut collaborators = Vec::new();
    if is_supervisor(a.collaboration.as_deref()) {
        for c in &snap.collaborators {
            let (agent, alias) = parse_alias_arn(ctx, &c.alias_arn).ok_or_else(|| {
                AwsError::validation(format!(
                    "The collaborator {} names {}, which is not an agent alias ARN.",
                    c.name, c.alias_arn
                ))
            })?;
            collaborators.push(Collaborator {
                name: c.name.clone(),
                instruction: c.instruction.clone(),
                alias_arn: c.alias_arn.clone(),
                relay: c.relay == "TO_COLLABORATOR",
                target: Target::Alias { agent, alias },
            });
        }
    }
    tools.extend(collaborate::tools(&collaborators, &tools));
    Ok(Agent {
        id: agent_id.to_owned(),
        alias: alias_id.to_owned(),
        version: snap.version.clone(),
        name: a.name.clone(),
        instruction: a.instruction.clone().unwrap_or_default(),
        model: a.foundation_model.clone().unwrap_or_default(),
        guardrail: a.guardrail.clone(),
        prompts: a.prompt_override.clone(),
        memory: if a.memory_enabled() {
            a.memory.clone()
        } else {
            Value::Null
        },
        idle_ttl: a.idle_ttl,
        tools,
        inline: false,
        router: a.collaboration.as_deref() == Some("SUPERVISOR_ROUTER"),
        collaborators,
    })
}

pub async fn invoke_agent(
    k: &Arc<KnowledgeBases>,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Output, AwsError> {
    let agent_id = str_of(input, "agentId").unwrap_or_default();
    let alias_id = str_of(input, "agentAliasId").unwrap_or_default();
    let agent = agent_of_alias(k, ctx, agent_id, alias_id)?;
    let chain = if agent.collaborators.is_empty() {
        Vec::new()
    } else {
        vec![alias_arn(ctx, agent_id, alias_id)]
    };
    let state = &input["sessionState"];
    let req = request(input, state)?;
    let key = session_key(ctx, agent_id, alias_id, req.session_id);
    start(k, ctx, agent, req, key, chain).await
}

/// An agent defined in a request: InvokeInlineAgent's own, or one of the request's
/// `collaborators` (`pool`, where nested supervisors find theirs too).
fn inline_agent(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    def: &Value,
    pool: &Value,
    depth: usize,
) -> Result<Agent, AwsError> {
    let model = str_of(def, "foundationModel").unwrap_or_default();
    if !super::agent::is_text_model(model) {
        return Err(AwsError::validation(format!(
            "The foundation model {model} is not a Bedrock text model."
        )));
    }
    let instruction = str_of(def, "instruction").unwrap_or_default();
    if instruction.chars().count() < 40 {
        return Err(AwsError::validation(
            "The instruction must be at least 40 characters long.",
        ));
    }
    let now = k.now_ms();
    let mut groups = Vec::new();
    for g in def["actionGroups"].as_array().into_iter().flatten() {
        let document = super::action_groups::check(k, ctx, g)?;
        groups.push(GroupRec {
            id: new_id(),
            name: str_of(g, "actionGroupName").unwrap_or_default().to_owned(),
            description: str_of(g, "description").map(str::to_owned),
            signature: str_of(g, "parentActionGroupSignature").map(str::to_owned),
            signature_params: g["parentActionGroupSignatureParams"].clone(),
            executor: g["actionGroupExecutor"].clone(),
            api_schema: g["apiSchema"].clone(),
            api_document: document,
            function_schema: g["functionSchema"].clone(),
            state: "ENABLED".into(),
            created_ms: now,
            updated_ms: now,
            client_token: None,
        });
    }
    let mut kbs = Vec::new();
    for b in def["knowledgeBases"].as_array().into_iter().flatten() {
        let id = str_of(b, "knowledgeBaseId").unwrap_or_default();
        crate::knowledge_bases::must_load(k, ctx, id)?;
        kbs.push((
            AgentKbRec {
                kb: id.to_owned(),
                description: str_of(b, "description").unwrap_or_default().to_owned(),
                state: "ENABLED".into(),
                created_ms: now,
                updated_ms: now,
            },
            b["retrievalConfiguration"].clone(),
        ));
    }
    if let Some(problem) = super::parser::parser_problems(&def["promptOverrideConfiguration"])
        .into_iter()
        .next()
    {
        return Err(AwsError::validation(problem));
    }
    let mut tools = schema::tools(&groups, &kbs).map_err(AwsError::validation)?;
    let collaboration = str_of(def, "agentCollaboration");
    let configs = def["collaboratorConfigurations"].as_array();
    let mut collaborators = Vec::new();
    if is_supervisor(collaboration) {
        if configs.is_none_or(|c| c.is_empty()) {
            return Err(AwsError::validation(
                "A supervisor agent needs at least one collaborator in collaboratorConfigurations.",
            ));
        }
        for c in configs.into_iter().flatten() {
            let name = str_of(c, "collaboratorName").unwrap_or_default();
            let arn = str_of(c, "agentAliasArn").unwrap_or_default();
            let target = if !arn.is_empty() {
                let (agent, alias) = parse_alias_arn(ctx, arn).ok_or_else(|| {
                    AwsError::validation(format!(
                        "agentAliasArn {arn} of collaborator {name} is not the ARN of an agent alias in this account and region."
                    ))
                })?;
                Target::Alias { agent, alias }
            } else {
                let def = pool
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|d| str_of(d, "agentName") == Some(name))
                    .ok_or_else(|| {
                        AwsError::validation(format!(
                            "The collaborator configuration {name} has no agentAliasArn and no collaborator whose agentName is {name}."
                        ))
                    })?;
                if depth >= 3 {
                    return Err(AwsError::validation(
                        "Inline collaborators are nested more than three levels deep.",
                    ));
                }
                Target::Inline(Box::new(inline_agent(k, ctx, def, pool, depth + 1)?))
            };
            collaborators.push(Collaborator {
                name: name.to_owned(),
                instruction: str_of(c, "collaboratorInstruction")
                    .unwrap_or_default()
                    .to_owned(),
                alias_arn: arn.to_owned(),
                relay: str_of(c, "relayConversationHistory") == Some("TO_COLLABORATOR"),
                target,
            });
        }
    } else if configs.is_some_and(|c| !c.is_empty()) {
        return Err(AwsError::validation(
            "collaboratorConfigurations need agentCollaboration SUPERVISOR or SUPERVISOR_ROUTER.",
        ));
    }
    tools.extend(collaborate::tools(&collaborators, &tools));
    Ok(Agent {
        id: "INLINE_AGENT".into(),
        alias: String::new(),
        version: String::new(),
        name: str_of(def, "agentName").unwrap_or("InlineAgent").to_owned(),
        instruction: instruction.to_owned(),
        model: model.to_owned(),
        guardrail: def["guardrailConfiguration"].clone(),
        prompts: def["promptOverrideConfiguration"].clone(),
        memory: Value::Null,
        idle_ttl: def["idleSessionTTLInSeconds"]
            .as_u64()
            .unwrap_or(DEFAULT_IDLE_TTL),
        tools,
        inline: true,
        router: collaboration == Some("SUPERVISOR_ROUTER"),
        collaborators,
    })
}

pub async fn invoke_inline_agent(
    k: &Arc<KnowledgeBases>,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Output, AwsError> {
    let agent = inline_agent(k, ctx, input, &input["collaborators"], 0)?;
    let state = &input["inlineSessionState"];
    let req = request(input, state)?;
    let key = session_key(ctx, "inline", "inline", req.session_id);
    // An inline agent has no alias ARN, but counts in the chain of callers.
    start(k, ctx, agent, req, key, vec![String::new()]).await
}
