//! PutRule, DescribeRule, ListRules, Enable/DisableRule, DeleteRule, ListRuleNamesByTarget and
//! tags (of rules and buses).

use crate::buses;
use crate::model::{BUSES, DEFAULT_BUS, RULES, RuleRec, bus_key, bus_name, rule_arn, rule_key};
use crate::{Events, limit, not_found, now_ms, required, str_of, token, untoken, validation};
use basalt_core::{AwsError, RequestContext};
use basalt_store::{StoreError, WriteOp};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

fn valid_rule_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

pub(crate) fn tags_of(input: &Value) -> Result<BTreeMap<String, String>, AwsError> {
    let mut tags = BTreeMap::new();
    for t in input
        .get("Tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = str_of(t, "Key").unwrap_or_default();
        if key.is_empty() || key.len() > 128 {
            return Err(validation("Tag keys must be between 1 and 128 characters."));
        }
        tags.insert(
            key.to_owned(),
            str_of(t, "Value").unwrap_or_default().to_owned(),
        );
    }
    Ok(tags)
}

pub(crate) fn load(
    events: &Events,
    ctx: &RequestContext,
    bus: &str,
    name: &str,
) -> Result<Option<RuleRec>, AwsError> {
    events
        .state
        .get(RULES, &rule_key(&ctx.account_id, &ctx.region, bus, name))?
        .map(|raw| {
            serde_json::from_slice(&raw)
                .map_err(|e| AwsError::internal(format!("corrupt rule record: {e}")))
        })
        .transpose()
}

pub(crate) fn must_load(
    events: &Events,
    ctx: &RequestContext,
    bus: &str,
    name: &str,
) -> Result<RuleRec, AwsError> {
    load(events, ctx, bus, name)?
        .ok_or_else(|| not_found(format!("Rule {name} does not exist on EventBus {bus}.")))
}

pub(crate) fn put_op(ctx: &RequestContext, rule: &RuleRec) -> WriteOp {
    WriteOp::Put {
        table: RULES.into(),
        key: rule_key(&ctx.account_id, &ctx.region, &rule.bus, &rule.name),
        value: serde_json::to_vec(rule).unwrap_or_default(),
    }
}

/// What an edit of a rule leaves: the rule (`None`: deleted), writes to commit with it, and
/// the answer.
pub(crate) struct Edited<T> {
    pub rule: Option<RuleRec>,
    pub extra: Vec<WriteOp>,
    pub out: T,
}

/// Reads rule `name` of `bus`, applies `edit`, and commits the result with a new bus
/// generation (so that every node's compiled matcher for the bus sees it is stale), under
/// preconditions on both records: a concurrent change to either makes the edit run again on
/// what that change left, so no writer undoes another's.
pub(crate) fn update<T>(
    events: &Events,
    ctx: &RequestContext,
    bus: &str,
    name: &str,
    mut edit: impl FnMut(Option<RuleRec>) -> Result<Edited<T>, AwsError>,
) -> Result<T, AwsError> {
    let bkey = bus_key(&ctx.account_id, &ctx.region, bus);
    let rkey = rule_key(&ctx.account_id, &ctx.region, bus, name);
    for _ in 0..16 {
        let bus_raw = events.state.get(BUSES, &bkey)?;
        let mut rec = buses::must_load(events, ctx, bus)?;
        let rule_raw = events.state.get(RULES, &rkey)?;
        let current = rule_raw
            .as_ref()
            .map(|raw| {
                serde_json::from_slice::<RuleRec>(raw)
                    .map_err(|e| AwsError::internal(format!("corrupt rule record: {e}")))
            })
            .transpose()?;
        let edited = edit(current)?;
        rec.generation = uuid::Uuid::new_v4().simple().to_string();
        let mut batch = vec![
            WriteOp::Check {
                table: BUSES.into(),
                key: bkey.clone(),
                expected: bus_raw,
            },
            buses::put_op(ctx, &rec),
            WriteOp::Check {
                table: RULES.into(),
                key: rkey.clone(),
                expected: rule_raw,
            },
            match &edited.rule {
                Some(r) => put_op(ctx, r),
                None => WriteOp::Delete {
                    table: RULES.into(),
                    key: rkey.clone(),
                },
            },
        ];
        batch.extend(edited.extra);
        match events.state.batch(&batch) {
            Ok(()) => {
                events.matchers.forget(&bkey);
                return Ok(edited.out);
            }
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(AwsError::new(
        400,
        "ConcurrentModificationException",
        "Another request changed this event bus; try again.",
    ))
}

/// The rule an edit needs, or the error naming it.
pub(crate) fn present(rule: Option<RuleRec>, bus: &str, name: &str) -> Result<RuleRec, AwsError> {
    rule.ok_or_else(|| not_found(format!("Rule {name} does not exist on EventBus {bus}.")))
}

/// A rule an AWS service manages (an archive's) can only be deleted, and only with `Force`.
pub(crate) fn unmanaged(rule: &RuleRec, force: bool) -> Result<(), AwsError> {
    match &rule.managed_by {
        Some(by) if !force => Err(AwsError::new(
            400,
            "ManagedRuleException",
            format!(
                "Rule {} is managed by {by} and cannot be changed. To delete it, use the Force parameter.",
                rule.name
            ),
        )),
        _ => Ok(()),
    }
}

fn rule_json(ctx: &RequestContext, r: &RuleRec, describe: bool) -> Value {
    let mut v = json!({
        "Name": r.name,
        "Arn": rule_arn(&ctx.account_id, &ctx.region, &r.bus, &r.name),
        "State": r.state,
        "EventBusName": r.bus,
    });
    if let Some(p) = &r.pattern {
        v["EventPattern"] = p.clone().into();
    }
    if let Some(s) = &r.schedule {
        v["ScheduleExpression"] = s.clone().into();
    }
    if let Some(d) = &r.description {
        v["Description"] = d.clone().into();
    }
    if let Some(a) = &r.role_arn {
        v["RoleArn"] = a.clone().into();
    }
    if let Some(m) = &r.managed_by {
        v["ManagedBy"] = m.clone().into();
    }
    if describe {
        v["CreatedBy"] = ctx.account_id.clone().into();
    }
    v
}

pub fn put(events: &Events, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let name = required(input, "Name")?;
    if !valid_rule_name(name) {
        return Err(validation(format!(
            "1 validation error detected: Value '{name}' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\.\\-_A-Za-z0-9]+"
        )));
    }
    let bus = bus_name(str_of(input, "EventBusName"));
    buses::must_load(events, ctx, &bus)?;
    let pattern = str_of(input, "EventPattern").filter(|p| !p.is_empty());
    let schedule = str_of(input, "ScheduleExpression").filter(|s| !s.is_empty());
    if pattern.is_none() && schedule.is_none() {
        return Err(validation(
            "Parameter(s) EventPattern or ScheduleExpression must be specified.",
        ));
    }
    if let Some(p) = pattern {
        basalt_eventpattern::Pattern::parse(p)
            .map_err(|e| AwsError::new(400, "InvalidEventPatternException", e.to_string()))?;
    }
    let fire = match schedule {
        Some(s) => {
            if bus != DEFAULT_BUS {
                return Err(validation(
                    "ScheduleExpression is supported only on the default event bus.",
                ));
            }
            Some(
                basalt_schedule::Schedule::parse_rule(s)
                    .map_err(|_| validation("Parameter ScheduleExpression is not valid."))?,
            )
        }
        None => None,
    };
    let state = str_of(input, "State").unwrap_or("ENABLED");
    if !matches!(
        state,
        "ENABLED" | "DISABLED" | "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"
    ) {
        return Err(validation(format!(
            "1 validation error detected: Value '{state}' at 'state' failed to satisfy constraint: Member must satisfy enum value set: [ENABLED, DISABLED, ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS]"
        )));
    }
    let now = now_ms();
    let given_tags = if input.get("Tags").is_some() {
        Some(tags_of(input)?)
    } else {
        None
    };
    update(events, ctx, &bus, name, |existing| {
        if let Some(e) = &existing {
            unmanaged(e, false)?;
        }
        let rule = RuleRec {
            name: name.to_owned(),
            bus: bus.clone(),
            pattern: pattern.map(str::to_owned),
            schedule: schedule.map(str::to_owned),
            state: state.to_owned(),
            description: str_of(input, "Description").map(str::to_owned),
            role_arn: str_of(input, "RoleArn").map(str::to_owned),
            tags: match (&given_tags, &existing) {
                (Some(t), _) => t.clone(),
                (None, Some(e)) => e.tags.clone(),
                (None, None) => BTreeMap::new(),
            },
            targets: existing
                .as_ref()
                .map(|e| e.targets.clone())
                .unwrap_or_default(),
            created_ms: existing.as_ref().map_or(now, |e| e.created_ms),
            managed_by: None,
            archive: None,
        };
        // Armed again only when the schedule or state changed: re-arming would end the lease
        // of a fire in progress.
        let rearm = existing
            .as_ref()
            .is_none_or(|e| e.schedule != rule.schedule || e.enabled() != rule.enabled());
        let mut extra = Vec::new();
        if let Some(s) = &fire
            && rule.enabled()
            && rearm
        {
            extra.extend(crate::schedules::arm_op(ctx, &rule, s, now));
        }
        Ok(Edited {
            rule: Some(rule),
            extra,
            out: (),
        })
    })?;
    events.wake_schedules.notify_one();
    Ok(json!({"RuleArn": rule_arn(&ctx.account_id, &ctx.region, &bus, name)}))
}

pub fn describe(events: &Events, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let bus = bus_name(str_of(input, "EventBusName"));
    let rule = must_load(events, ctx, &bus, required(input, "Name")?)?;
    Ok(rule_json(ctx, &rule, true))
}

/// The rules of a bus, in name order, with `prefix`, after `after`.
pub(crate) fn scan(
    events: &Events,
    ctx: &RequestContext,
    bus: &str,
    prefix: &str,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<RuleRec>, AwsError> {
    let base = format!("{}/{}/{}/", ctx.account_id, ctx.region, bus);
    let start = after.map(|a| format!("{base}{a}"));
    Ok(events
        .state
        .scan(RULES, &format!("{base}{prefix}"), start.as_deref(), limit)?
        .into_iter()
        .filter_map(|(_, v)| serde_json::from_slice(&v).ok())
        .collect())
}

pub fn list(events: &Events, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let bus = bus_name(str_of(input, "EventBusName"));
    buses::must_load(events, ctx, &bus)?;
    let limit = limit(input, 100)?;
    let after = str_of(input, "NextToken").map(untoken).transpose()?;
    let prefix = str_of(input, "NamePrefix").unwrap_or("");
    let mut rules = scan(events, ctx, &bus, prefix, after.as_deref(), limit + 1)?;
    let more = rules.len() > limit;
    rules.truncate(limit);
    let mut out = Map::new();
    out.insert(
        "Rules".into(),
        rules.iter().map(|r| rule_json(ctx, r, false)).collect(),
    );
    if more && let Some(last) = rules.last() {
        out.insert("NextToken".into(), token(&last.name).into());
    }
    Ok(Value::Object(out))
}

pub fn set_state(
    events: &Events,
    ctx: &RequestContext,
    input: &Value,
    state: &str,
) -> Result<Value, AwsError> {
    let bus = bus_name(str_of(input, "EventBusName"));
    let name = required(input, "Name")?;
    let now = now_ms();
    update(events, ctx, &bus, name, |rule| {
        let mut rule = present(rule, &bus, name)?;
        unmanaged(&rule, false)?;
        let was_enabled = rule.enabled();
        rule.state = state.to_owned();
        let mut extra = Vec::new();
        if let Some(s) = rule
            .schedule
            .as_deref()
            .and_then(|s| basalt_schedule::Schedule::parse_rule(s).ok())
            && rule.enabled()
            && !was_enabled
        {
            extra.extend(crate::schedules::arm_op(ctx, &rule, &s, now));
        }
        Ok(Edited {
            rule: Some(rule),
            extra,
            out: (),
        })
    })?;
    events.wake_schedules.notify_one();
    Ok(json!({}))
}

pub fn delete(events: &Events, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let bus = bus_name(str_of(input, "EventBusName"));
    let name = required(input, "Name")?;
    let force = input.get("Force").and_then(Value::as_bool) == Some(true);
    if load(events, ctx, &bus, name)?.is_none() {
        return Ok(json!({}));
    }
    update(events, ctx, &bus, name, |rule| {
        if let Some(r) = &rule {
            unmanaged(r, force)?;
        }
        if rule.as_ref().is_some_and(|r| !r.targets.is_empty()) && !force {
            return Err(validation("Rule can't be deleted since it has targets."));
        }
        Ok(Edited {
            rule: None,
            extra: Vec::new(),
            out: (),
        })
    })?;
    Ok(json!({}))
}

pub fn names_by_target(
    events: &Events,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let target = required(input, "TargetArn")?;
    let bus = bus_name(str_of(input, "EventBusName"));
    let limit = limit(input, 100)?;
    let after = str_of(input, "NextToken").map(untoken).transpose()?;
    let mut names = Vec::new();
    let mut cursor = after;
    let mut more = false;
    'pages: loop {
        let page = scan(events, ctx, &bus, "", cursor.as_deref(), 500)?;
        let Some(last) = page.last() else { break };
        cursor = Some(last.name.clone());
        for r in page {
            if r.targets.iter().any(|t| str_of(t, "Arn") == Some(target)) {
                if names.len() == limit {
                    more = true;
                    break 'pages;
                }
                names.push(r.name);
            }
        }
    }
    let mut out = json!({"RuleNames": names});
    if more && let Some(last) = names.last() {
        out["NextToken"] = token(last).into();
    }
    Ok(out)
}

/// What a tagged ARN names: a rule (bus, name) or a bus.
enum Tagged {
    Rule(String, String),
    Bus(String),
}

fn tagged(arn: &str) -> Result<Tagged, AwsError> {
    let resource = arn.splitn(6, ':').nth(5).unwrap_or("");
    if let Some(rest) = resource.strip_prefix("rule/") {
        return Ok(match rest.rsplit_once('/') {
            Some((bus, name)) => Tagged::Rule(bus.to_owned(), name.to_owned()),
            None => Tagged::Rule(DEFAULT_BUS.to_owned(), rest.to_owned()),
        });
    }
    if let Some(bus) = resource.strip_prefix("event-bus/") {
        return Ok(Tagged::Bus(bus.to_owned()));
    }
    Err(validation(format!("Invalid ARN: {arn}")))
}

fn edit_tags(
    events: &Events,
    ctx: &RequestContext,
    arn: &str,
    edit: impl Fn(&mut BTreeMap<String, String>),
) -> Result<(), AwsError> {
    match tagged(arn)? {
        Tagged::Rule(bus, name) => update(events, ctx, &bus, &name, |rule| {
            let mut rule = present(rule, &bus, &name)?;
            unmanaged(&rule, false)?;
            edit(&mut rule.tags);
            Ok(Edited {
                rule: Some(rule),
                extra: Vec::new(),
                out: (),
            })
        }),
        Tagged::Bus(bus) => buses::edit_tags(events, ctx, &bus, edit),
    }
}

pub fn tag(events: &Events, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let tags = tags_of(input)?;
    edit_tags(events, ctx, required(input, "ResourceARN")?, |t| {
        t.extend(tags.clone())
    })?;
    Ok(json!({}))
}

pub fn untag(events: &Events, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let keys: Vec<String> = input
        .get("TagKeys")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    edit_tags(events, ctx, required(input, "ResourceARN")?, |t| {
        for k in &keys {
            t.remove(k);
        }
    })?;
    Ok(json!({}))
}

pub fn list_tags(events: &Events, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let tags = match tagged(required(input, "ResourceARN")?)? {
        Tagged::Rule(bus, name) => must_load(events, ctx, &bus, &name)?.tags,
        Tagged::Bus(bus) => buses::must_load(events, ctx, &bus)?.tags,
    };
    let list: Vec<Value> = tags
        .into_iter()
        .map(|(k, v)| json!({"Key": k, "Value": v}))
        .collect();
    Ok(json!({"Tags": list}))
}
