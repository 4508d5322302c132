//! Create/Describe/List/Update/DeleteEventBus and the bus policy (Put/RemovePermission).
//! The default bus always exists; its record is written on its first change.

use crate::model::{BUSES, BusRec, DEFAULT_BUS, RULES, bus_arn, bus_key, bus_name};
use crate::{Events, limit, not_found, now_ms, required, str_of, token, untoken, validation};
use basalt_core::{AwsError, RequestContext};
use basalt_store::WriteOp;
use serde_json::{Map, Value, json};

/// Custom bus names: `/` is for partner buses only (and would make one bus's rule keys a
/// prefix of another's).
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 256
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// The bus record, or the implicit default bus.
pub(crate) fn load(
    events: &Events,
    ctx: &RequestContext,
    name: &str,
) -> Result<Option<BusRec>, AwsError> {
    match events
        .state
        .get(BUSES, &bus_key(&ctx.account_id, &ctx.region, name))?
    {
        Some(raw) => serde_json::from_slice(&raw)
            .map(Some)
            .map_err(|e| AwsError::internal(format!("corrupt bus record: {e}"))),
        None if name == DEFAULT_BUS => Ok(Some(BusRec {
            name: DEFAULT_BUS.into(),
            ..BusRec::default()
        })),
        None => Ok(None),
    }
}

pub(crate) fn must_load(
    events: &Events,
    ctx: &RequestContext,
    name: &str,
) -> Result<BusRec, AwsError> {
    load(events, ctx, name)?.ok_or_else(|| not_found(format!("Event bus {name} does not exist.")))
}

/// Applies `edit` to a bus record under a precondition (retried on a concurrent change), so
/// that no write carries back a stale record (and with it an old generation).
fn edit(
    events: &Events,
    ctx: &RequestContext,
    name: &str,
    mut edit: impl FnMut(&mut BusRec) -> Result<(), AwsError>,
) -> Result<BusRec, AwsError> {
    let key = bus_key(&ctx.account_id, &ctx.region, name);
    for _ in 0..16 {
        let raw = events.state.get(BUSES, &key)?;
        let mut bus = must_load(events, ctx, name)?;
        edit(&mut bus)?;
        bus.modified = now_ms() / 1000;
        let ops = [
            WriteOp::Check {
                table: BUSES.into(),
                key: key.clone(),
                expected: raw,
            },
            put_op(ctx, &bus),
        ];
        match events.state.batch(&ops) {
            Ok(()) => return Ok(bus),
            Err(basalt_store::StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(AwsError::new(
        400,
        "ConcurrentModificationException",
        "Another request changed this event bus; try again.",
    ))
}

/// Edits the tags of a bus.
pub(crate) fn edit_tags(
    events: &Events,
    ctx: &RequestContext,
    name: &str,
    f: impl Fn(&mut std::collections::BTreeMap<String, String>),
) -> Result<(), AwsError> {
    edit(events, ctx, name, |b| {
        f(&mut b.tags);
        Ok(())
    })
    .map(|_| ())
}

pub(crate) fn put_op(ctx: &RequestContext, bus: &BusRec) -> WriteOp {
    WriteOp::Put {
        table: BUSES.into(),
        key: bus_key(&ctx.account_id, &ctx.region, &bus.name),
        value: serde_json::to_vec(bus).unwrap_or_default(),
    }
}

fn describe_json(ctx: &RequestContext, b: &BusRec) -> Value {
    let mut v = json!({
        "Name": b.name,
        "Arn": bus_arn(&ctx.account_id, &ctx.region, &b.name),
    });
    if let Some(d) = &b.description {
        v["Description"] = d.clone().into();
    }
    if let Some(p) = &b.policy {
        v["Policy"] = p.to_string().into();
    }
    if b.created > 0 {
        v["CreationTime"] = b.created.into();
        v["LastModifiedTime"] = b.modified.into();
    }
    v
}

pub fn create(events: &Events, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let name = required(input, "Name")?;
    if !valid_name(name) || name == DEFAULT_BUS {
        return Err(validation(format!("Event bus name {name} is not valid.")));
    }
    if str_of(input, "EventSourceName").is_some() {
        return Err(validation(
            "Partner event sources are not supported by Basalt.",
        ));
    }
    let key = bus_key(&ctx.account_id, &ctx.region, name);
    let now = now_ms() / 1000;
    let bus = BusRec {
        name: name.to_owned(),
        created: now,
        modified: now,
        description: str_of(input, "Description").map(str::to_owned),
        policy: None,
        tags: crate::rules::tags_of(input)?,
        dead_letter: input.get("DeadLetterConfig").cloned(),
        kms_key: str_of(input, "KmsKeyIdentifier").map(str::to_owned),
        generation: uuid::Uuid::new_v4().simple().to_string(),
    };
    let created = events.state.batch(&[
        WriteOp::Check {
            table: BUSES.into(),
            key,
            expected: None,
        },
        put_op(ctx, &bus),
    ]);
    match created {
        Ok(()) => {}
        Err(basalt_store::StoreError::Conflict) => {
            return Err(AwsError::new(
                400,
                "ResourceAlreadyExistsException",
                format!("Event bus {name} already exists."),
            ));
        }
        Err(e) => return Err(e.into()),
    }
    let mut out = json!({"EventBusArn": bus_arn(&ctx.account_id, &ctx.region, name)});
    if let Some(d) = &bus.description {
        out["Description"] = d.clone().into();
    }
    if let Some(d) = &bus.dead_letter {
        out["DeadLetterConfig"] = d.clone();
    }
    Ok(out)
}

pub fn describe(events: &Events, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let name = bus_name(str_of(input, "Name"));
    let bus = must_load(events, ctx, &name)?;
    let mut out = describe_json(ctx, &bus);
    if let Some(d) = &bus.dead_letter {
        out["DeadLetterConfig"] = d.clone();
    }
    Ok(out)
}

pub fn update(events: &Events, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let name = bus_name(str_of(input, "Name"));
    let bus = edit(events, ctx, &name, |bus| {
        if let Some(d) = str_of(input, "Description") {
            bus.description = Some(d.to_owned());
        }
        if let Some(d) = input.get("DeadLetterConfig") {
            bus.dead_letter = Some(d.clone());
        }
        Ok(())
    })?;
    let mut out = json!({"Name": name, "Arn": bus_arn(&ctx.account_id, &ctx.region, &name)});
    if let Some(d) = &bus.description {
        out["Description"] = d.clone().into();
    }
    Ok(out)
}

pub fn list(events: &Events, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let prefix = str_of(input, "NamePrefix").unwrap_or("");
    let limit = limit(input, 100)?;
    let after = str_of(input, "NextToken").map(untoken).transpose()?;
    let scope = format!("{}/{}/", ctx.account_id, ctx.region);
    // The default bus is listed whether or not its record was written.
    let mut buses: Vec<BusRec> = Vec::new();
    if DEFAULT_BUS.starts_with(prefix)
        && after.as_deref().is_none_or(|a| a < DEFAULT_BUS)
        && let Some(d) = load(events, ctx, DEFAULT_BUS)?
    {
        buses.push(d);
    }
    let start = after.as_ref().map(|a| format!("{scope}{a}"));
    for (_, raw) in events.state.scan(
        BUSES,
        &format!("{scope}{prefix}"),
        start.as_deref(),
        limit + 2,
    )? {
        if let Ok(b) = serde_json::from_slice::<BusRec>(&raw)
            && b.name != DEFAULT_BUS
        {
            buses.push(b);
        }
    }
    buses.sort_by(|a, b| a.name.cmp(&b.name));
    let more = buses.len() > limit;
    buses.truncate(limit);
    let mut out = Map::new();
    out.insert(
        "EventBuses".into(),
        buses.iter().map(|b| describe_json(ctx, b)).collect(),
    );
    if more && let Some(last) = buses.last() {
        out.insert("NextToken".into(), token(&last.name).into());
    }
    Ok(Value::Object(out))
}

pub fn delete(events: &Events, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let name = bus_name(Some(required(input, "Name")?));
    if name == DEFAULT_BUS {
        return Err(validation("Cannot delete event bus default."));
    }
    // Deleting a bus that does not exist succeeds, as AWS answers it; its rules go with it.
    let mut ops = vec![WriteOp::Delete {
        table: BUSES.into(),
        key: bus_key(&ctx.account_id, &ctx.region, &name),
    }];
    let prefix = format!("{}/{}/{}/", ctx.account_id, ctx.region, name);
    for (key, _) in events.state.scan(RULES, &prefix, None, 10_000)? {
        ops.push(WriteOp::Delete {
            table: RULES.into(),
            key,
        });
    }
    ops.extend(crate::archives::deleted_with_bus(events, ctx, &name)?);
    events.state.batch(&ops)?;
    events
        .matchers
        .forget(&bus_key(&ctx.account_id, &ctx.region, &name));
    Ok(json!({}))
}

pub fn put_permission(
    events: &Events,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let name = bus_name(str_of(input, "EventBusName"));
    let arn = bus_arn(&ctx.account_id, &ctx.region, &name);
    edit(events, ctx, &name, |bus| {
        if let Some(policy) = str_of(input, "Policy") {
            let parsed: Value = serde_json::from_str(policy)
                .map_err(|_| validation("The policy is not valid JSON."))?;
            bus.policy = Some(parsed);
            return Ok(());
        }
        let sid = required(input, "StatementId")?;
        let principal = required(input, "Principal")?;
        let action = str_of(input, "Action").unwrap_or("events:PutEvents");
        let mut policy = bus
            .policy
            .take()
            .unwrap_or_else(|| json!({"Version": "2012-10-17", "Statement": []}));
        let mut statement = json!({
            "Sid": sid,
            "Effect": "Allow",
            "Principal": if principal == "*" { json!("*") } else { json!({"AWS": format!("arn:aws:iam::{principal}:root")}) },
            "Action": action,
            "Resource": arn,
        });
        if let Some(c) = input.get("Condition") {
            statement["Condition"] = json!({
                str_of(c, "Type").unwrap_or("StringEquals"): {
                    str_of(c, "Key").unwrap_or("aws:PrincipalOrgID"): str_of(c, "Value").unwrap_or("")
                }
            });
        }
        if let Some(list) = policy.get_mut("Statement").and_then(Value::as_array_mut) {
            list.retain(|s| s.get("Sid").and_then(Value::as_str) != Some(sid));
            list.push(statement);
        }
        bus.policy = Some(policy);
        Ok(())
    })?;
    Ok(json!({}))
}

pub fn remove_permission(
    events: &Events,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let name = bus_name(str_of(input, "EventBusName"));
    edit(events, ctx, &name, |bus| {
        if input.get("RemoveAllPermissions").and_then(Value::as_bool) == Some(true) {
            bus.policy = None;
            return Ok(());
        }
        let sid = required(input, "StatementId")?;
        let list = bus
            .policy
            .as_mut()
            .and_then(|p| p.get_mut("Statement"))
            .and_then(Value::as_array_mut)
            .ok_or_else(|| not_found("EventBus does not have a policy."))?;
        let before = list.len();
        list.retain(|s| s.get("Sid").and_then(Value::as_str) != Some(sid));
        if list.len() == before {
            return Err(not_found("Statement with the provided id does not exist."));
        }
        if list.is_empty() {
            bus.policy = None;
        }
        Ok(())
    })?;
    Ok(json!({}))
}
