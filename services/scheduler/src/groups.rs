//! Schedule groups (Create/Get/List/DeleteScheduleGroup) and their tags (Tag/Untag/
//! ListTagsForResource: Scheduler tags groups only).

use crate::model::{
    DEFAULT_GROUP, GROUPS, GroupRec, RECORD_VERSION, SCHEDULES, group_arn, group_key,
};
use crate::{
    Scheduler, conflict, corrupt, max_results, not_found, now_ms, secs, str_of, token, untoken,
    validation,
};
use basalt_core::{AwsError, RequestContext};
use basalt_store::WriteOp;
use serde_json::{Map, Value, json};

/// AWS's quota of groups per account and region.
const MAX_GROUPS: usize = 500;

fn missing(name: &str) -> AwsError {
    not_found(format!("Schedule group {name} does not exist."))
}

/// A group and its raw record (None for a default group never stored).
pub(crate) type Loaded = (GroupRec, Option<Vec<u8>>);

/// The group, or None when there is no such group.
pub(crate) fn load_raw(
    s: &Scheduler,
    ctx: &RequestContext,
    name: &str,
) -> Result<Option<Loaded>, AwsError> {
    let raw = s
        .state
        .get(GROUPS, &group_key(&ctx.account_id, &ctx.region, name))?;
    match raw {
        Some(bytes) => {
            let rec = serde_json::from_slice(&bytes).map_err(|e| corrupt("group", e))?;
            Ok(Some((rec, Some(bytes))))
        }
        None if name == DEFAULT_GROUP => Ok(Some((default_group(), None))),
        None => Ok(None),
    }
}

fn default_group() -> GroupRec {
    GroupRec {
        v: RECORD_VERSION,
        name: DEFAULT_GROUP.to_owned(),
        ..Default::default()
    }
}

pub(crate) fn must_load_raw(
    s: &Scheduler,
    ctx: &RequestContext,
    name: &str,
) -> Result<Loaded, AwsError> {
    load_raw(s, ctx, name)?.ok_or_else(|| missing(name))
}

fn describe(ctx: &RequestContext, g: &GroupRec) -> Value {
    let mut out = Map::new();
    out.insert(
        "Arn".into(),
        group_arn(&ctx.account_id, &ctx.region, &g.name).into(),
    );
    out.insert("Name".into(), g.name.clone().into());
    out.insert("State".into(), "ACTIVE".into());
    if let Some(c) = g.created {
        out.insert("CreationDate".into(), c.into());
    }
    if let Some(m) = g.modified {
        out.insert("LastModificationDate".into(), m.into());
    }
    Value::Object(out)
}

fn tags_of(input: &Value) -> Vec<(String, String)> {
    input
        .get("Tags")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|t| {
                    Some((str_of(t, "Key")?.to_owned(), str_of(t, "Value")?.to_owned()))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn all(s: &Scheduler, ctx: &RequestContext) -> Result<Vec<GroupRec>, AwsError> {
    let prefix = format!("{}/{}/", ctx.account_id, ctx.region);
    let mut groups = Vec::new();
    for (_, raw) in s.state.scan(GROUPS, &prefix, None, MAX_GROUPS + 1)? {
        groups.push(serde_json::from_slice::<GroupRec>(&raw).map_err(|e| corrupt("group", e))?);
    }
    if !groups.iter().any(|g| g.name == DEFAULT_GROUP) {
        groups.push(default_group());
    }
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(groups)
}

pub fn create(s: &Scheduler, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let name = str_of(input, "Name").unwrap_or_default();
    let key = group_key(&ctx.account_id, &ctx.region, name);
    if load_raw(s, ctx, name)?.is_some() {
        return Err(conflict(format!("Schedule group {name} already exists.")));
    }
    if all(s, ctx)?.len() >= MAX_GROUPS {
        return Err(AwsError::new(
            402,
            "ServiceQuotaExceededException",
            format!("The maximum number of schedule groups ({MAX_GROUPS}) has been reached."),
        ));
    }
    let now = secs(now_ms(s.state.as_ref()));
    let rec = GroupRec {
        v: RECORD_VERSION,
        name: name.to_owned(),
        created: Some(now),
        modified: Some(now),
        tags: tags_of(input).into_iter().collect(),
    };
    let value = serde_json::to_vec(&rec).map_err(|e| AwsError::internal(e.to_string()))?;
    let batch = [
        WriteOp::Check {
            table: GROUPS.into(),
            key: key.clone(),
            expected: None,
        },
        WriteOp::Put {
            table: GROUPS.into(),
            key,
            value,
        },
    ];
    match s.state.batch(&batch) {
        Ok(()) => Ok(json!({"ScheduleGroupArn": group_arn(&ctx.account_id, &ctx.region, name)})),
        Err(basalt_store::StoreError::Conflict) => {
            Err(conflict(format!("Schedule group {name} already exists.")))
        }
        Err(e) => Err(e.into()),
    }
}

pub fn get(s: &Scheduler, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let name = str_of(input, "Name").unwrap_or_default();
    let (g, _) = must_load_raw(s, ctx, name)?;
    Ok(describe(ctx, &g))
}

pub fn list(s: &Scheduler, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let prefix = str_of(input, "NamePrefix").unwrap_or("");
    let after = str_of(input, "NextToken").map(untoken).transpose()?;
    let limit = max_results(input);
    let matching: Vec<GroupRec> = all(s, ctx)?
        .into_iter()
        .filter(|g| g.name.starts_with(prefix))
        .filter(|g| after.as_deref().is_none_or(|a| g.name.as_str() > a))
        .collect();
    let page: Vec<Value> = matching
        .iter()
        .take(limit)
        .map(|g| describe(ctx, g))
        .collect();
    let mut out = Map::new();
    if matching.len() > limit {
        out.insert("NextToken".into(), token(&matching[limit - 1].name).into());
    }
    out.insert("ScheduleGroups".into(), Value::Array(page));
    Ok(Value::Object(out))
}

/// Deletes the group and every schedule in it. AWS deletes asynchronously (the group shows
/// `DELETING` meanwhile); here it is gone when the call returns.
pub fn delete(s: &Scheduler, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let name = str_of(input, "Name").unwrap_or_default();
    if name == DEFAULT_GROUP {
        return Err(validation("The default schedule group cannot be deleted."));
    }
    must_load_raw(s, ctx, name)?;
    let prefix = format!("{}/", group_key(&ctx.account_id, &ctx.region, name));
    loop {
        let keys: Vec<String> = s
            .state
            .scan(SCHEDULES, &prefix, None, 500)?
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        if keys.is_empty() {
            break;
        }
        let ops: Vec<WriteOp> = keys
            .into_iter()
            .map(|key| WriteOp::Delete {
                table: SCHEDULES.into(),
                key,
            })
            .collect();
        // Their armed fires find no schedule and end.
        s.state.batch(&ops)?;
    }
    s.state
        .delete(GROUPS, &group_key(&ctx.account_id, &ctx.region, name))?;
    Ok(json!({}))
}

/// The group a taggable ARN names, in this account and region.
fn tagged_group<'a>(ctx: &RequestContext, arn: &'a str) -> Result<&'a str, AwsError> {
    let prefix = format!(
        "arn:aws:scheduler:{}:{}:schedule-group/",
        ctx.region, ctx.account_id
    );
    match arn.strip_prefix(&prefix) {
        Some(name) if !name.is_empty() && !name.contains('/') => Ok(name),
        _ => Err(validation(format!(
            "Invalid ARN {arn}: only schedule groups of this account and region can be tagged."
        ))),
    }
}

fn edit_tags(
    s: &Scheduler,
    ctx: &RequestContext,
    input: &Value,
    edit: impl Fn(&mut GroupRec),
) -> Result<(), AwsError> {
    let name = tagged_group(ctx, str_of(input, "ResourceArn").unwrap_or_default())?;
    let key = group_key(&ctx.account_id, &ctx.region, name);
    for _ in 0..16 {
        let (mut g, raw) = must_load_raw(s, ctx, name)?;
        edit(&mut g);
        let value = serde_json::to_vec(&g).map_err(|e| AwsError::internal(e.to_string()))?;
        let batch = [
            WriteOp::Check {
                table: GROUPS.into(),
                key: key.clone(),
                expected: raw,
            },
            WriteOp::Put {
                table: GROUPS.into(),
                key: key.clone(),
                value,
            },
        ];
        match s.state.batch(&batch) {
            Ok(()) => return Ok(()),
            Err(basalt_store::StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(conflict(format!(
        "Schedule group {name} is being changed concurrently; try again."
    )))
}

pub fn tag(s: &Scheduler, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let tags = tags_of(input);
    edit_tags(s, ctx, input, |g| g.tags.extend(tags.iter().cloned()))?;
    Ok(json!({}))
}

pub fn untag(s: &Scheduler, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let keys: Vec<&str> = input
        .get("TagKeys")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    edit_tags(s, ctx, input, |g| {
        for k in &keys {
            g.tags.remove(*k);
        }
    })?;
    Ok(json!({}))
}

pub fn list_tags(s: &Scheduler, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let name = tagged_group(ctx, str_of(input, "ResourceArn").unwrap_or_default())?;
    let (g, _) = must_load_raw(s, ctx, name)?;
    let tags: Vec<Value> = g
        .tags
        .iter()
        .map(|(k, v)| json!({"Key": k, "Value": v}))
        .collect();
    Ok(json!({"Tags": tags}))
}
