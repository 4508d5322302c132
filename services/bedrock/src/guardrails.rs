//! Guardrails' control plane: CreateGuardrail, GetGuardrail, ListGuardrails,
//! UpdateGuardrail, CreateGuardrailVersion, DeleteGuardrail, and the tags of a guardrail.
//! Records live in `basalt_bedrock_runtime::guardrails`, which evaluates them.

use basalt_bedrock_runtime::guardrails::{
    DRAFT, GuardrailRec, Guardrails, NAMES, RECORD_VERSION, VersionRec, config_error,
    guardrail_arn, name_key, not_found, parse_version, record_key, version_not_found,
};
use basalt_core::{AwsError, RequestContext};
use basalt_guardrails::config::Policies;
use basalt_store::WriteOp;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// Bedrock's quotas: guardrails per account and region, versions per guardrail.
const MAX_GUARDRAILS: usize = 100;
const MAX_VERSIONS: usize = 20;
const MAX_TAGS: usize = 200;

fn now_ms(g: &Guardrails) -> i64 {
    g.state.clock_ms().unwrap_or_else(|_| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    })
}

fn secs(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

fn str_of<'a>(input: &'a Value, name: &str) -> Option<&'a str> {
    input.get(name).and_then(Value::as_str)
}

fn conflict(message: impl Into<String>) -> AwsError {
    AwsError::new(409, "ConflictException", message)
}

fn quota(message: impl Into<String>) -> AwsError {
    AwsError::new(400, "ServiceQuotaExceededException", message)
}

/// The DRAFT a CreateGuardrail or UpdateGuardrail request describes.
fn draft_of(input: &Value, created_ms: i64, now: i64) -> Result<VersionRec, AwsError> {
    let policies = Policies::from_request(input).map_err(config_error)?;
    Ok(VersionRec {
        name: str_of(input, "name").unwrap_or_default().to_owned(),
        description: str_of(input, "description").map(str::to_owned),
        policies,
        blocked_input_messaging: str_of(input, "blockedInputMessaging")
            .unwrap_or_default()
            .to_owned(),
        blocked_outputs_messaging: str_of(input, "blockedOutputsMessaging")
            .unwrap_or_default()
            .to_owned(),
        kms_key_arn: str_of(input, "kmsKeyId").map(str::to_owned),
        created_ms,
        updated_ms: now,
    })
}

fn tags_of(input: &Value, member: &str) -> Result<BTreeMap<String, String>, AwsError> {
    let mut out = BTreeMap::new();
    for t in input[member]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let (Some(k), Some(v)) = (t["key"].as_str(), t["value"].as_str()) else {
            return Err(AwsError::validation("Each tag needs a key and a value."));
        };
        out.insert(k.to_owned(), v.to_owned());
    }
    Ok(out)
}

fn name_write(ctx: &RequestContext, name: &str, id: &str) -> Vec<WriteOp> {
    let key = name_key(ctx, name);
    vec![
        WriteOp::Check {
            table: NAMES.into(),
            key: key.clone(),
            expected: None,
        },
        WriteOp::Put {
            table: NAMES.into(),
            key,
            value: id.as_bytes().to_vec(),
        },
    ]
}

fn name_taken(name: &str) -> AwsError {
    conflict(format!("A guardrail with the name {name} already exists."))
}

pub fn create(g: &Guardrails, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let name = str_of(input, "name").unwrap_or_default();
    let now = now_ms(g);
    let draft = draft_of(input, now, now)?;
    let tags = tags_of(input, "tags")?;
    if tags.len() > MAX_TAGS {
        return Err(AwsError::new(
            400,
            "TooManyTagsException",
            format!("A guardrail can have at most {MAX_TAGS} tags."),
        ));
    }
    if g.state.get(NAMES, &name_key(ctx, name))?.is_some() {
        return Err(name_taken(name));
    }
    let prefix = format!("{}/{}/", ctx.account_id, ctx.region);
    if g.state
        .scan(
            basalt_bedrock_runtime::guardrails::TABLE,
            &prefix,
            None,
            MAX_GUARDRAILS,
        )?
        .len()
        >= MAX_GUARDRAILS
    {
        return Err(quota(format!(
            "This account already has {MAX_GUARDRAILS} guardrails in this region, the most Bedrock allows."
        )));
    }
    let rec = GuardrailRec {
        v: RECORD_VERSION,
        // 12 lowercase letters and digits, as Bedrock's guardrail ids look.
        id: basalt_core::ids::lower_alnum(12),
        created_ms: now,
        next_version: 1,
        draft,
        versions: BTreeMap::new(),
        tags,
        version_tokens: BTreeMap::new(),
    };
    g.save(ctx, &rec, None, name_write(ctx, name, &rec.id))
        .map_err(|e| {
            if e.code == "ConflictException" {
                name_taken(name)
            } else {
                e
            }
        })?;
    Ok(json!({
        "guardrailId": rec.id,
        "guardrailArn": guardrail_arn(ctx, &rec.id),
        "version": DRAFT,
        "createdAt": secs(now),
    }))
}

fn version_param(input: &Value) -> Result<Option<&str>, AwsError> {
    match str_of(input, "guardrailVersion") {
        None => Ok(None),
        Some(v) if v == DRAFT || parse_version(v).is_some() => Ok(Some(v)),
        Some(v) => Err(AwsError::validation(format!(
            "1 validation error detected: Value '{v}' at 'guardrailVersion' failed to satisfy constraint: Member must satisfy regular expression pattern: (([1-9][0-9]{{0,7}})|(DRAFT))"
        ))),
    }
}

fn describe(ctx: &RequestContext, rec: &GuardrailRec, version: &str, v: &VersionRec) -> Value {
    let mut out = Map::new();
    out.insert("name".into(), v.name.clone().into());
    if let Some(d) = &v.description {
        out.insert("description".into(), d.clone().into());
    }
    out.insert("guardrailId".into(), rec.id.clone().into());
    out.insert("guardrailArn".into(), guardrail_arn(ctx, &rec.id).into());
    out.insert("version".into(), version.into());
    out.insert("status".into(), "READY".into());
    v.policies.render_into(&mut out);
    out.insert("createdAt".into(), secs(v.created_ms).into());
    out.insert("updatedAt".into(), secs(v.updated_ms).into());
    out.insert(
        "blockedInputMessaging".into(),
        v.blocked_input_messaging.clone().into(),
    );
    out.insert(
        "blockedOutputsMessaging".into(),
        v.blocked_outputs_messaging.clone().into(),
    );
    if let Some(k) = &v.kms_key_arn {
        out.insert("kmsKeyArn".into(), k.clone().into());
    }
    Value::Object(out)
}

pub fn get(g: &Guardrails, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let identifier = str_of(input, "guardrailIdentifier").unwrap_or_default();
    let version = version_param(input)?.unwrap_or(DRAFT);
    let (rec, _) = g.must_load(ctx, identifier)?;
    let v = rec
        .version(Some(version))
        .ok_or_else(|| version_not_found(identifier, version))?;
    Ok(describe(ctx, &rec, version, v))
}

fn summary(ctx: &RequestContext, rec: &GuardrailRec, version: &str, v: &VersionRec) -> Value {
    let mut s = json!({
        "id": rec.id,
        "arn": guardrail_arn(ctx, &rec.id),
        "status": "READY",
        "name": v.name,
        "version": version,
        "createdAt": secs(v.created_ms),
        "updatedAt": secs(v.updated_ms),
    });
    if let Some(d) = &v.description {
        s["description"] = d.clone().into();
    }
    s
}

/// Without an identifier, the DRAFT of every guardrail; with one, every version of that
/// guardrail (DRAFT first, then by number), as Bedrock lists them.
pub fn list(g: &Guardrails, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let max = input
        .get("maxResults")
        .and_then(Value::as_u64)
        .map_or(1000, |n| n.clamp(1, 1000) as usize);
    let after = match str_of(input, "nextToken") {
        Some(t) => Some(
            basalt_core::page_token::decode(t)
                .ok_or_else(|| AwsError::validation("The provided pagination token is invalid."))?,
        ),
        None => None,
    };
    // Each entry: its position (for the token), and its summary.
    let mut entries: Vec<(String, Value)> = Vec::new();
    match str_of(input, "guardrailIdentifier") {
        Some(identifier) => {
            let (rec, _) = g.must_load(ctx, identifier)?;
            entries.push(("00000000".into(), summary(ctx, &rec, DRAFT, &rec.draft)));
            for (n, v) in &rec.versions {
                entries.push((format!("{n:08}"), summary(ctx, &rec, &n.to_string(), v)));
            }
        }
        None => {
            let prefix = format!("{}/{}/", ctx.account_id, ctx.region);
            for (key, raw) in g.state.scan(
                basalt_bedrock_runtime::guardrails::TABLE,
                &prefix,
                None,
                usize::MAX,
            )? {
                let rec: GuardrailRec = serde_json::from_slice(&raw)
                    .map_err(|e| AwsError::internal(format!("corrupt guardrail record: {e}")))?;
                let pos = key[prefix.len()..].to_owned();
                entries.push((pos, summary(ctx, &rec, DRAFT, &rec.draft)));
            }
        }
    }
    let page: Vec<(String, Value)> = entries
        .into_iter()
        .filter(|(pos, _)| after.as_ref().is_none_or(|a| pos > a))
        .take(max + 1)
        .collect();
    let more = page.len() > max;
    let page = &page[..page.len().min(max)];
    let mut out = json!({"guardrails": page.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>()});
    if more && let Some((pos, _)) = page.last() {
        out["nextToken"] = basalt_core::page_token::encode(pos).into();
    }
    Ok(out)
}

pub fn update(g: &Guardrails, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let identifier = str_of(input, "guardrailIdentifier").unwrap_or_default();
    let (mut rec, raw) = g.must_load(ctx, identifier)?;
    let now = now_ms(g).max(rec.draft.updated_ms + 1);
    let draft = draft_of(input, rec.draft.created_ms, now)?;
    let mut extra = Vec::new();
    if draft.name != rec.draft.name {
        if g.state.get(NAMES, &name_key(ctx, &draft.name))?.is_some() {
            return Err(name_taken(&draft.name));
        }
        extra.extend(name_write(ctx, &draft.name, &rec.id));
        extra.push(WriteOp::Delete {
            table: NAMES.into(),
            key: name_key(ctx, &rec.draft.name),
        });
    }
    rec.draft = draft;
    g.save(ctx, &rec, Some(raw), extra)?;
    Ok(json!({
        "guardrailId": rec.id,
        "guardrailArn": guardrail_arn(ctx, &rec.id),
        "version": DRAFT,
        "updatedAt": secs(now),
    }))
}

pub fn create_version(
    g: &Guardrails,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let identifier = str_of(input, "guardrailIdentifier").unwrap_or_default();
    let (mut rec, raw) = g.must_load(ctx, identifier)?;
    let token = str_of(input, "clientRequestToken");
    if let Some(n) = token.and_then(|t| rec.version_tokens.get(t)) {
        return Ok(json!({"guardrailId": rec.id, "version": n.to_string()}));
    }
    if rec.versions.len() >= MAX_VERSIONS {
        return Err(quota(format!(
            "The guardrail {identifier} already has {MAX_VERSIONS} versions, the most Bedrock allows. Delete a version first."
        )));
    }
    let n = rec.next_version;
    let now = now_ms(g);
    let mut v = rec.draft.clone();
    if let Some(d) = str_of(input, "description") {
        v.description = Some(d.to_owned());
    }
    v.created_ms = now;
    v.updated_ms = now;
    rec.versions.insert(n, v);
    rec.next_version = n + 1;
    if let Some(t) = token {
        rec.version_tokens.insert(t.to_owned(), n);
    }
    g.save(ctx, &rec, Some(raw), Vec::new())?;
    Ok(json!({"guardrailId": rec.id, "version": n.to_string()}))
}

pub fn delete(g: &Guardrails, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let identifier = str_of(input, "guardrailIdentifier").unwrap_or_default();
    let (mut rec, raw) = g.must_load(ctx, identifier)?;
    match version_param(input)? {
        None => {
            let key = record_key(ctx, &rec.id);
            g.state.batch(&[
                WriteOp::Check {
                    table: basalt_bedrock_runtime::guardrails::TABLE.into(),
                    key: key.clone(),
                    expected: Some(raw),
                },
                WriteOp::Delete {
                    table: basalt_bedrock_runtime::guardrails::TABLE.into(),
                    key,
                },
                WriteOp::Delete {
                    table: NAMES.into(),
                    key: name_key(ctx, &rec.draft.name),
                },
            ])?;
        }
        Some(DRAFT) => {
            return Err(AwsError::validation(
                "The DRAFT version cannot be deleted on its own: delete the guardrail (leave out guardrailVersion).",
            ));
        }
        Some(v) => {
            let n = parse_version(v).unwrap_or(0);
            if rec.versions.remove(&n).is_none() {
                return Err(version_not_found(identifier, v));
            }
            rec.version_tokens.retain(|_, m| *m != n);
            g.save(ctx, &rec, Some(raw), Vec::new())?;
        }
    }
    Ok(json!({}))
}

/// The guardrail a tag operation's `resourceARN` names; other Bedrock resources have no tags
/// in Basalt.
fn tagged(
    g: &Guardrails,
    ctx: &RequestContext,
    input: &Value,
) -> Result<(GuardrailRec, Vec<u8>), AwsError> {
    let arn = str_of(input, "resourceARN").unwrap_or_default();
    if !arn.contains(":guardrail/") {
        return Err(AwsError::new(
            404,
            "ResourceNotFoundException",
            format!("The resource {arn} was not found."),
        ));
    }
    g.must_load(ctx, arn).map_err(|_| not_found(arn))
}

pub fn tag(g: &Guardrails, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let (mut rec, raw) = tagged(g, ctx, input)?;
    rec.tags.extend(tags_of(input, "tags")?);
    if rec.tags.len() > MAX_TAGS {
        return Err(AwsError::new(
            400,
            "TooManyTagsException",
            format!("A guardrail can have at most {MAX_TAGS} tags."),
        ));
    }
    g.save(ctx, &rec, Some(raw), Vec::new())?;
    Ok(json!({}))
}

pub fn untag(g: &Guardrails, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let (mut rec, raw) = tagged(g, ctx, input)?;
    for k in input["tagKeys"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        if let Some(k) = k.as_str() {
            rec.tags.remove(k);
        }
    }
    g.save(ctx, &rec, Some(raw), Vec::new())?;
    Ok(json!({}))
}

pub fn list_tags(g: &Guardrails, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let (rec, _) = tagged(g, ctx, input)?;
    Ok(
        json!({"tags": rec.tags.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>()}),
    )
}
