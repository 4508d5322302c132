//! Amazon Bedrock sessions (bedrock-agent-runtime's CreateSession … ListInvocationSteps):
//! a durable store of conversation checkpoints for applications that run their own agent
//! loop (LangGraph's Bedrock checkpointer is the best-known client). A session holds
//! invocations, an invocation holds steps, a step holds text and image blocks. An ENDED
//! session can still be read but not added to, and only an ENDED session can be deleted.

use crate::KnowledgeBases;
use crate::model::{conflict, dump, load, not_found, scope, secs, str_of};
use basalt_core::{AwsError, RequestContext};
use basalt_store::WriteOp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// `{scope}/{sessionId}`.
pub const BEDROCK_SESSIONS: &str = "bedrock-agent.bedrock-sessions";
/// `{scope}/{sessionId}/{invocationId}`.
pub const INVOCATIONS: &str = "bedrock-agent.bedrock-session-invocations";
/// `{scope}/{sessionId}/{invocationStepId}`.
pub const STEPS: &str = "bedrock-agent.bedrock-session-steps";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionRec {
    pub id: String,
    /// ACTIVE or ENDED.
    pub status: String,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    pub created_ms: i64,
    pub updated_ms: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct InvocationRec {
    id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    created_ms: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StepRec {
    id: String,
    invocation: String,
    /// `invocationStepTime` as the client gave it, in epoch seconds.
    time: f64,
    payload: Value,
    /// When it was put, to keep steps of the same time in the order they arrived.
    put_ms: i64,
}

fn session_arn(ctx: &RequestContext, id: &str) -> String {
    format!(
        "arn:aws:bedrock:{}:{}:session/{id}",
        ctx.region, ctx.account_id
    )
}

fn key(ctx: &RequestContext, session: &str) -> String {
    format!("{}/{session}", scope(ctx))
}

fn child(ctx: &RequestContext, session: &str, id: &str) -> String {
    format!("{}/{session}/{id}", scope(ctx))
}

/// The session id a `sessionIdentifier` (an id or this account's session ARN) names.
fn session_id<'a>(ctx: &RequestContext, identifier: &'a str) -> Result<&'a str, AwsError> {
    match identifier.strip_prefix("arn:") {
        None => Ok(identifier),
        Some(_) => identifier
            .strip_prefix(&format!(
                "arn:aws:bedrock:{}:{}:session/",
                ctx.region, ctx.account_id
            ))
            .ok_or_else(|| not_found("Session", identifier)),
    }
}

fn must_session(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    input: &Value,
) -> Result<SessionRec, AwsError> {
    Ok(read_session(k, ctx, input)?.0)
}

/// The session and its record as stored, for writes that must find it unchanged.
fn read_session(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    input: &Value,
) -> Result<(SessionRec, Vec<u8>), AwsError> {
    let identifier = str_of(input, "sessionIdentifier").unwrap_or_default();
    let id = session_id(ctx, identifier)?;
    match k.state.get(BEDROCK_SESSIONS, &key(ctx, id))? {
        Some(raw) => Ok((load(&raw)?, raw)),
        None => Err(not_found("Session", identifier)),
    }
}

fn changed_meanwhile(s: &SessionRec) -> AwsError {
    conflict(format!(
        "The session {} changed while this request ran; try again.",
        s.id
    ))
}

/// Writes `ops` and the session `s` if its record is still `raw`: an EndSession, a
/// DeleteSession or another change in between makes this one a ConflictException (never an
/// ended session made active again, or a change lost).
fn write_session(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    s: &SessionRec,
    raw: Vec<u8>,
    mut ops: Vec<WriteOp>,
) -> Result<(), AwsError> {
    ops.push(WriteOp::Check {
        table: BEDROCK_SESSIONS.into(),
        key: key(ctx, &s.id),
        expected: Some(raw),
    });
    ops.push(WriteOp::Put {
        table: BEDROCK_SESSIONS.into(),
        key: key(ctx, &s.id),
        value: dump(s),
    });
    match k.state.batch(&ops) {
        Err(basalt_store::StoreError::Conflict) => Err(changed_meanwhile(s)),
        other => Ok(other?),
    }
}

/// Sessions take no more after EndSession.
fn must_be_active(s: &SessionRec) -> Result<(), AwsError> {
    if s.status == "ACTIVE" {
        Ok(())
    } else {
        Err(conflict(format!(
            "The session {} has ended; its content can be read but not changed.",
            s.id
        )))
    }
}

fn session_json(ctx: &RequestContext, s: &SessionRec) -> Value {
    let mut v = json!({
        "sessionId": s.id,
        "sessionArn": session_arn(ctx, &s.id),
        "sessionStatus": s.status,
        "createdAt": secs(s.created_ms),
        "lastUpdatedAt": secs(s.updated_ms),
    });
    if !s.metadata.is_empty() {
        v["sessionMetadata"] = Value::Object(s.metadata.clone());
    }
    if let Some(key) = &s.kms_key {
        v["encryptionKeyArn"] = key.clone().into();
    }
    v
}

fn new_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub fn create_session(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let now = k.now_ms();
    let s = SessionRec {
        id: new_uuid(),
        status: "ACTIVE".into(),
        metadata: input["sessionMetadata"]
            .as_object()
            .cloned()
            .unwrap_or_default(),
        kms_key: str_of(input, "encryptionKeyArn").map(str::to_owned),
        tags: crate::knowledge_bases::tags_in(input),
        created_ms: now,
        updated_ms: now,
    };
    k.state.put(BEDROCK_SESSIONS, &key(ctx, &s.id), &dump(&s))?;
    Ok(json!({
        "sessionId": s.id,
        "sessionArn": session_arn(ctx, &s.id),
        "sessionStatus": s.status,
        "createdAt": secs(now),
    }))
}

pub fn get_session(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    Ok(session_json(ctx, &must_session(k, ctx, input)?))
}

pub fn update_session(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let (mut s, raw) = read_session(k, ctx, input)?;
    must_be_active(&s)?;
    s.metadata = input["sessionMetadata"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    s.updated_ms = k.now_ms();
    write_session(k, ctx, &s, raw, Vec::new())?;
    let mut v = session_json(ctx, &s);
    if let Value::Object(m) = &mut v {
        m.remove("sessionMetadata");
        m.remove("encryptionKeyArn");
    }
    Ok(v)
}

pub fn end_session(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let (mut s, raw) = read_session(k, ctx, input)?;
    if s.status != "ENDED" {
        s.status = "ENDED".into();
        s.updated_ms = k.now_ms();
        write_session(k, ctx, &s, raw, Vec::new())?;
    }
    Ok(json!({"sessionId": s.id, "sessionArn": session_arn(ctx, &s.id), "sessionStatus": s.status}))
}

pub fn delete_session(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let (s, raw) = read_session(k, ctx, input)?;
    if s.status == "ACTIVE" {
        return Err(conflict(format!(
            "The session {} is ACTIVE; end it with EndSession before deleting it.",
            s.id
        )));
    }
    // The session record goes first: from then on nothing finds its content.
    let deleted = k.state.batch(&[
        WriteOp::Check {
            table: BEDROCK_SESSIONS.into(),
            key: key(ctx, &s.id),
            expected: Some(raw),
        },
        WriteOp::Delete {
            table: BEDROCK_SESSIONS.into(),
            key: key(ctx, &s.id),
        },
    ]);
    if let Err(basalt_store::StoreError::Conflict) = deleted {
        return Err(changed_meanwhile(&s));
    }
    deleted?;
    let under = format!("{}/", key(ctx, &s.id));
    for table in [INVOCATIONS, STEPS] {
        crate::knowledge_bases::delete_prefix(k, table, &under)?;
    }
    Ok(json!({}))
}

/// A page of `items` (already in order) as `{member: [...], nextToken}`.
fn page(items: &[Value], input: &Value, member: &str) -> Result<Value, AwsError> {
    crate::agents::model::page_of(items, input, member, "maxResults", 1000)
}

pub fn list_sessions(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let mut all: Vec<SessionRec> =
        crate::knowledge_bases::load_all(k, BEDROCK_SESSIONS, &format!("{}/", scope(ctx)))?;
    // Keys are random UUIDs: the listing goes by creation, newest first.
    all.sort_by(|a, b| b.created_ms.cmp(&a.created_ms).then(a.id.cmp(&b.id)));
    let items: Vec<Value> = all
        .iter()
        .map(|s| {
            json!({
                "sessionId": s.id, "sessionArn": session_arn(ctx, &s.id),
                "sessionStatus": s.status, "createdAt": secs(s.created_ms),
                "lastUpdatedAt": secs(s.updated_ms),
            })
        })
        .collect();
    page(&items, input, "sessionSummaries")
}

pub fn create_invocation(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let (mut s, raw) = read_session(k, ctx, input)?;
    must_be_active(&s)?;
    let id = str_of(input, "invocationId")
        .map(str::to_owned)
        .unwrap_or_else(new_uuid);
    let now = k.now_ms();
    let rec = InvocationRec {
        id: id.clone(),
        description: str_of(input, "description").map(str::to_owned),
        created_ms: now,
    };
    s.updated_ms = now;
    let ikey = child(ctx, &s.id, &id);
    if k.state.get(INVOCATIONS, &ikey)?.is_some() {
        return Err(conflict(format!(
            "The session {} already has an invocation {id}.",
            s.id
        )));
    }
    write_session(
        k,
        ctx,
        &s,
        raw,
        vec![
            WriteOp::Check {
                table: INVOCATIONS.into(),
                key: ikey.clone(),
                expected: None,
            },
            WriteOp::Put {
                table: INVOCATIONS.into(),
                key: ikey,
                value: dump(&rec),
            },
        ],
    )?;
    Ok(json!({"sessionId": s.id, "invocationId": id, "createdAt": secs(now)}))
}

pub fn list_invocations(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let s = must_session(k, ctx, input)?;
    let mut all: Vec<InvocationRec> =
        crate::knowledge_bases::load_all(k, INVOCATIONS, &format!("{}/", key(ctx, &s.id)))?;
    all.sort_by(|a, b| b.created_ms.cmp(&a.created_ms).then(a.id.cmp(&b.id)));
    let items: Vec<Value> = all
        .iter()
        .map(|i| json!({"sessionId": s.id, "invocationId": i.id, "createdAt": secs(i.created_ms)}))
        .collect();
    page(&items, input, "invocationSummaries")
}

pub fn put_invocation_step(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let (mut s, raw) = read_session(k, ctx, input)?;
    must_be_active(&s)?;
    let invocation = str_of(input, "invocationIdentifier").unwrap_or_default();
    if k.state
        .get(INVOCATIONS, &child(ctx, &s.id, invocation))?
        .is_none()
    {
        return Err(not_found("Invocation", invocation));
    }
    let id = str_of(input, "invocationStepId")
        .map(str::to_owned)
        .unwrap_or_else(new_uuid);
    let skey = child(ctx, &s.id, &id);
    if let Some(raw) = k.state.get(STEPS, &skey)? {
        let earlier: StepRec = load(&raw)?;
        if earlier.invocation != invocation {
            return Err(conflict(format!(
                "The invocation step {id} belongs to invocation {}.",
                earlier.invocation
            )));
        }
    }
    let now = k.now_ms();
    let rec = StepRec {
        id: id.clone(),
        invocation: invocation.to_owned(),
        time: input["invocationStepTime"].as_f64().unwrap_or(0.0),
        payload: input["payload"].clone(),
        put_ms: now,
    };
    s.updated_ms = now;
    write_session(
        k,
        ctx,
        &s,
        raw,
        vec![WriteOp::Put {
            table: STEPS.into(),
            key: skey,
            value: dump(&rec),
        }],
    )?;
    Ok(json!({"invocationStepId": id}))
}

pub fn get_invocation_step(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let s = must_session(k, ctx, input)?;
    let id = str_of(input, "invocationStepId").unwrap_or_default();
    let invocation = str_of(input, "invocationIdentifier").unwrap_or_default();
    let step: StepRec = match k.state.get(STEPS, &child(ctx, &s.id, id))? {
        Some(raw) => load(&raw)?,
        None => return Err(not_found("Invocation step", id)),
    };
    if step.invocation != invocation {
        return Err(not_found("Invocation step", id));
    }
    Ok(json!({"invocationStep": {
        "sessionId": s.id,
        "invocationId": step.invocation,
        "invocationStepId": step.id,
        "invocationStepTime": step.time,
        "payload": step.payload,
    }}))
}

pub fn list_invocation_steps(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let s = must_session(k, ctx, input)?;
    let only = str_of(input, "invocationIdentifier");
    let mut all: Vec<StepRec> =
        crate::knowledge_bases::load_all(k, STEPS, &format!("{}/", key(ctx, &s.id)))?;
    all.retain(|step| only.is_none_or(|i| step.invocation == i));
    // Newest step first, as a checkpointer reads the latest state first.
    all.sort_by(|a, b| {
        b.time
            .total_cmp(&a.time)
            .then(b.put_ms.cmp(&a.put_ms))
            .then(a.id.cmp(&b.id))
    });
    let items: Vec<Value> = all
        .iter()
        .map(|step| {
            json!({
                "sessionId": s.id, "invocationId": step.invocation,
                "invocationStepId": step.id, "invocationStepTime": step.time,
            })
        })
        .collect();
    page(&items, input, "invocationStepSummaries")
}

/// TagResource, UntagResource and ListTagsForResource on a session's ARN.
pub fn tags(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    operation: &str,
    input: &Value,
) -> Result<Value, AwsError> {
    let arn = str_of(input, "resourceArn").unwrap_or_default();
    let id = arn
        .strip_prefix(&format!(
            "arn:aws:bedrock:{}:{}:session/",
            ctx.region, ctx.account_id
        ))
        .ok_or_else(|| {
            AwsError::validation(format!(
                "{arn} is not the ARN of a session of this account and region."
            ))
        })?;
    let (mut s, raw) = read_session(k, ctx, &json!({"sessionIdentifier": id}))?;
    match operation {
        "TagResource" => {
            for (key, value) in input["tags"].as_object().into_iter().flatten() {
                s.tags
                    .insert(key.clone(), value.as_str().unwrap_or_default().to_owned());
            }
        }
        "UntagResource" => {
            for key in input["tagKeys"].as_array().into_iter().flatten() {
                s.tags.remove(key.as_str().unwrap_or_default());
            }
        }
        _ => return Ok(json!({"tags": s.tags})),
    }
    write_session(k, ctx, &s, raw, Vec::new())?;
    Ok(json!({}))
}
