//! State machines, their versions and aliases, and tags.

use basalt_core::{AwsError, RequestContext, page_token};
use basalt_store::{StoreError, WriteOp};
use serde_json::{Value, json};

use crate::model::{
    ACTIVITIES, ALIASES, ActivityRec, AliasRec, MACHINES, MachineRec, VERSIONS, VersionRec,
};
use crate::{StepFunctions, error, invalid_arn, required, str_of};

/// The parts of a state machine ARN: `arn:aws:states:region:account:stateMachine:name[:qualifier]`.
pub struct MachineArn<'a> {
    pub region: &'a str,
    pub account: &'a str,
    pub name: &'a str,
    /// A version number or an alias name.
    pub qualifier: Option<&'a str>,
}

pub fn parse_arn(arn: &str) -> Option<MachineArn<'_>> {
    let parts: Vec<&str> = arn.split(':').collect();
    match parts.as_slice() {
        ["arn", _, "states", region, account, "stateMachine", name] => Some(MachineArn {
            region,
            account,
            name,
            qualifier: None,
        }),
        ["arn", _, "states", region, account, "stateMachine", name, q] => Some(MachineArn {
            region,
            account,
            name,
            qualifier: Some(q),
        }),
        _ => None,
    }
}

pub fn machine_arn(region: &str, account: &str, name: &str) -> String {
    format!("arn:aws:states:{region}:{account}:stateMachine:{name}")
}

fn now() -> f64 {
    crate::model::secs(crate::model::now_ms())
}

/// AWS's rule for state machine, execution, activity and alias names.
pub fn check_name(name: &str) -> Result<(), AwsError> {
    let bad = name.is_empty()
        || name.chars().count() > 80
        || name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>{}[]?*\"#%\\^|~`$&,;:/".contains(c));
    if bad {
        return Err(error("InvalidName", format!("Invalid Name: '{name}'")));
    }
    Ok(())
}

fn check_role(role: &str) -> Result<(), AwsError> {
    if !role.starts_with("arn:") || role.split(':').count() < 6 {
        return Err(invalid_arn(role));
    }
    Ok(())
}

/// Parses and validates a definition, or InvalidDefinition with AWS's message.
pub fn check_definition(definition: &str) -> Result<basalt_asl::Definition, AwsError> {
    basalt_asl::parse(definition).map_err(|d| {
        error(
            "InvalidDefinition",
            basalt_asl::invalid_definition_message(&d),
        )
    })
}

fn does_not_exist(arn: &str) -> AwsError {
    error(
        "StateMachineDoesNotExist",
        format!("State Machine Does Not Exist: '{arn}'"),
    )
}

/// The state machine an ARN names (its base, whatever the qualifier).
pub fn load_machine(sf: &StepFunctions, arn: &str) -> Result<(MachineRec, Vec<u8>), AwsError> {
    let p = parse_arn(arn).ok_or_else(|| invalid_arn(arn))?;
    sf.load::<MachineRec>(MACHINES, &MachineRec::key(p.account, p.region, p.name))?
        .ok_or_else(|| does_not_exist(arn))
}

fn version_key(machine_arn: &str, n: u64) -> String {
    format!("{machine_arn}/{n:010}")
}

pub fn load_version(
    sf: &StepFunctions,
    machine_arn: &str,
    n: u64,
) -> Result<Option<VersionRec>, AwsError> {
    Ok(sf
        .load::<VersionRec>(VERSIONS, &version_key(machine_arn, n))?
        .map(|(v, _)| v))
}

/// What StartExecution runs for an ARN: (machine, definition, role, version ARN, alias ARN).
pub struct Target {
    pub machine: MachineRec,
    pub definition: String,
    pub role_arn: String,
    pub version_arn: Option<String>,
    pub alias_arn: Option<String>,
}

pub fn resolve(sf: &StepFunctions, arn: &str) -> Result<Target, AwsError> {
    let p = parse_arn(arn).ok_or_else(|| invalid_arn(arn))?;
    let (m, _) = load_machine(sf, arn)?;
    let Some(q) = p.qualifier else {
        return Ok(Target {
            definition: m.definition.clone(),
            role_arn: m.role_arn.clone(),
            machine: m,
            version_arn: None,
            alias_arn: None,
        });
    };
    let (version, alias_arn) = match q.parse::<u64>() {
        Ok(n) => (
            load_version(sf, &m.arn, n)?.ok_or_else(|| does_not_exist(arn))?,
            None,
        ),
        Err(_) => {
            let (alias, _) = sf
                .load::<AliasRec>(ALIASES, &format!("{}/{q}", m.arn))?
                .ok_or_else(|| does_not_exist(arn))?;
            let total: u64 = alias.routing.iter().map(|r| r.1).sum();
            let mut pick = (uuid::Uuid::new_v4().as_u128() % u128::from(total.max(1))) as u64;
            let mut chosen = alias
                .routing
                .first()
                .map(|r| r.0.clone())
                .unwrap_or_default();
            for (v, w) in &alias.routing {
                if pick < *w {
                    chosen = v.clone();
                    break;
                }
                pick -= w;
            }
            let n = parse_arn(&chosen)
                .and_then(|p| p.qualifier)
                .and_then(|q| q.parse::<u64>().ok())
                .ok_or_else(|| does_not_exist(&chosen))?;
            (
                load_version(sf, &m.arn, n)?.ok_or_else(|| does_not_exist(&chosen))?,
                Some(alias.arn),
            )
        }
    };
    Ok(Target {
        definition: version.definition,
        role_arn: version.role_arn,
        version_arn: Some(version.arn),
        alias_arn,
        machine: m,
    })
}

fn tags_of(v: Option<&Value>) -> Vec<(String, String)> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| Some((str_of(t, "key")?.to_owned(), str_of(t, "value")?.to_owned())))
        .collect()
}

pub fn create(sf: &StepFunctions, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let name = required(input, "name")?;
    check_name(name)?;
    let definition = required(input, "definition")?;
    let role = required(input, "roleArn")?;
    check_role(role)?;
    let kind = str_of(input, "type").unwrap_or("STANDARD");
    if !matches!(kind, "STANDARD" | "EXPRESS") {
        return Err(AwsError::validation(format!(
            "1 validation error detected: Value '{kind}' at 'type' failed to satisfy constraint: Member must satisfy enum value set: [STANDARD, EXPRESS]"
        )));
    }
    check_definition(definition)?;
    let arn = machine_arn(&ctx.region, &ctx.account_id, name);
    let key = MachineRec::key(&ctx.account_id, &ctx.region, name);
    if let Some((m, _)) = sf.load::<MachineRec>(MACHINES, &key)? {
        // The same request again answers the same machine.
        if m.definition == definition && m.role_arn == role && m.kind == kind {
            return Ok(json!({"stateMachineArn": m.arn, "creationDate": m.created}));
        }
        return Err(error(
            "StateMachineAlreadyExists",
            format!("State Machine Already Exists: '{arn}'"),
        ));
    }
    let created = now();
    let mut m = MachineRec {
        name: name.to_owned(),
        arn: arn.clone(),
        account: ctx.account_id.clone(),
        region: ctx.region.clone(),
        definition: definition.to_owned(),
        role_arn: role.to_owned(),
        kind: kind.to_owned(),
        created,
        updated: None,
        revision_id: uuid::Uuid::new_v4().to_string(),
        description: None,
        logging: input.get("loggingConfiguration").cloned(),
        tracing: input.get("tracingConfiguration").cloned(),
        encryption: input.get("encryptionConfiguration").cloned(),
        tags: tags_of(input.get("tags")).into_iter().collect(),
        next_version: 1,
    };
    let mut ops = vec![WriteOp::Check {
        table: MACHINES.into(),
        key: key.clone(),
        expected: None,
    }];
    let mut out = json!({"stateMachineArn": arn, "creationDate": created});
    if input.get("publish").and_then(Value::as_bool) == Some(true) {
        let v = new_version(&mut m, str_of(input, "versionDescription"), created);
        out["stateMachineVersionArn"] = v.arn.clone().into();
        ops.push(put_version(&v));
    }
    ops.push(WriteOp::Put {
        table: MACHINES.into(),
        key,
        value: serde_json::to_vec(&m).unwrap_or_default(),
    });
    match sf.state.batch(&ops) {
        Ok(()) => Ok(out),
        Err(StoreError::Conflict) => Err(error(
            "StateMachineAlreadyExists",
            format!("State Machine Already Exists: '{arn}'"),
        )),
        Err(e) => Err(e.into()),
    }
}

fn new_version(m: &mut MachineRec, description: Option<&str>, created: f64) -> VersionRec {
    let n = m.next_version;
    m.next_version += 1;
    VersionRec {
        arn: format!("{}:{n}", m.arn),
        machine_arn: m.arn.clone(),
        number: n,
        definition: m.definition.clone(),
        role_arn: m.role_arn.clone(),
        revision_id: m.revision_id.clone(),
        description: description.map(str::to_owned),
        created,
    }
}

fn put_version(v: &VersionRec) -> WriteOp {
    WriteOp::Put {
        table: VERSIONS.into(),
        key: version_key(&v.machine_arn, v.number),
        value: serde_json::to_vec(v).unwrap_or_default(),
    }
}

/// Rewrites a machine record under a precondition, retrying on concurrent changes.
fn edit_machine(
    sf: &StepFunctions,
    arn: &str,
    mut f: impl FnMut(&mut MachineRec) -> Result<Vec<WriteOp>, AwsError>,
) -> Result<MachineRec, AwsError> {
    for _ in 0..16 {
        let (mut m, raw) = load_machine(sf, arn)?;
        let key = MachineRec::key(&m.account, &m.region, &m.name);
        let mut ops = f(&mut m)?;
        ops.insert(
            0,
            WriteOp::Check {
                table: MACHINES.into(),
                key: key.clone(),
                expected: Some(raw),
            },
        );
        ops.push(WriteOp::Put {
            table: MACHINES.into(),
            key,
            value: serde_json::to_vec(&m).unwrap_or_default(),
        });
        match sf.state.batch(&ops) {
            Ok(()) => return Ok(m),
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(error(
        "ConflictException",
        "The state machine changed concurrently; try again",
    ))
}

pub fn describe(
    sf: &StepFunctions,
    _ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let arn = required(input, "stateMachineArn")?;
    let p = parse_arn(arn).ok_or_else(|| invalid_arn(arn))?;
    let (m, _) = load_machine(sf, arn)?;
    let mut out = json!({
        "stateMachineArn": arn,
        "name": m.name,
        "status": "ACTIVE",
        "definition": m.definition,
        "roleArn": m.role_arn,
        "type": m.kind,
        "creationDate": m.created,
        "loggingConfiguration": m.logging.clone().unwrap_or_else(|| json!({"level": "OFF", "includeExecutionData": false})),
        "tracingConfiguration": m.tracing.clone().unwrap_or_else(|| json!({"enabled": false})),
        "revisionId": m.revision_id,
    });
    if let Some(q) = p.qualifier {
        let n = q.parse::<u64>().map_err(|_| does_not_exist(arn))?;
        let v = load_version(sf, &m.arn, n)?.ok_or_else(|| does_not_exist(arn))?;
        out["definition"] = v.definition.into();
        out["roleArn"] = v.role_arn.into();
        out["creationDate"] = v.created.into();
        out["revisionId"] = v.revision_id.into();
        if let Some(d) = v.description {
            out["description"] = d.into();
        }
    } else if let Some(d) = &m.description {
        out["description"] = d.clone().into();
    }
    Ok(out)
}

/// `maxResults` (1..=1000, default 100) and the position after which a page starts.
pub fn page(input: &Value) -> Result<(usize, Option<String>), AwsError> {
    let max = match input.get("maxResults").and_then(Value::as_i64) {
        None | Some(0) => 100,
        Some(n) if (1..=1000).contains(&n) => n as usize,
        Some(n) => {
            return Err(AwsError::validation(format!(
                "1 validation error detected: Value '{n}' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 1000"
            )));
        }
    };
    let after = match str_of(input, "nextToken") {
        Some(t) => Some(
            page_token::decode(t)
                .ok_or_else(|| error("InvalidToken", format!("Invalid Token: '{t}'")))?,
        ),
        None => None,
    };
    Ok((max, after))
}

/// One page of the records under `prefix` of `table`, as `{member: [...], nextToken}`.
pub fn list_page<T: serde::de::DeserializeOwned>(
    sf: &StepFunctions,
    table: &str,
    prefix: &str,
    input: &Value,
    member: &str,
    show: impl Fn(T) -> Value,
) -> Result<Value, AwsError> {
    let (max, after) = page(input)?;
    let rows = sf.state.scan(table, prefix, after.as_deref(), max + 1)?;
    let mut out = Vec::new();
    for (_, raw) in rows.iter().take(max) {
        let rec: T = serde_json::from_slice(raw).map_err(|e| crate::corrupt(table, e))?;
        out.push(show(rec));
    }
    let mut v = json!({ member: out });
    if rows.len() > max {
        v["nextToken"] = page_token::encode(&rows[max - 1].0).into();
    }
    Ok(v)
}

pub fn list(sf: &StepFunctions, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let prefix = format!("{}/{}/", ctx.account_id, ctx.region);
    list_page(
        sf,
        MACHINES,
        &prefix,
        input,
        "stateMachines",
        |m: MachineRec| json!({"stateMachineArn": m.arn, "name": m.name, "type": m.kind, "creationDate": m.created}),
    )
}

pub fn update(sf: &StepFunctions, _ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let arn = required(input, "stateMachineArn")?;
    if parse_arn(arn).is_some_and(|p| p.qualifier.is_some()) {
        return Err(AwsError::validation(
            "Service does not support updating a state machine version or alias; use its base ARN",
        ));
    }
    let definition = str_of(input, "definition");
    let role = str_of(input, "roleArn");
    if definition.is_none()
        && role.is_none()
        && input.get("loggingConfiguration").is_none()
        && input.get("tracingConfiguration").is_none()
        && input.get("encryptionConfiguration").is_none()
        && input.get("publish").is_none()
    {
        return Err(error(
            "MissingRequiredParameter",
            "Either the definition, the role ARN, the LoggingConfiguration, the EncryptionConfiguration or the TracingConfiguration must be specified",
        ));
    }
    if let Some(d) = definition {
        check_definition(d)?;
    }
    if let Some(r) = role {
        check_role(r)?;
    }
    let at = now();
    let mut version = None;
    let m = edit_machine(sf, arn, |m| {
        let mut ops = Vec::new();
        if let Some(d) = definition {
            m.definition = d.to_owned();
        }
        if let Some(r) = role {
            m.role_arn = r.to_owned();
        }
        if let Some(l) = input.get("loggingConfiguration") {
            m.logging = Some(l.clone());
        }
        if let Some(t) = input.get("tracingConfiguration") {
            m.tracing = Some(t.clone());
        }
        if let Some(e) = input.get("encryptionConfiguration") {
            m.encryption = Some(e.clone());
        }
        m.updated = Some(at);
        m.revision_id = uuid::Uuid::new_v4().to_string();
        if input.get("publish").and_then(Value::as_bool) == Some(true) {
            let v = new_version(m, str_of(input, "versionDescription"), at);
            ops.push(put_version(&v));
            version = Some(v.arn);
        }
        Ok(ops)
    })?;
    let mut out = json!({"updateDate": at, "revisionId": m.revision_id});
    if let Some(v) = version {
        out["stateMachineVersionArn"] = v.into();
    }
    Ok(out)
}

pub fn delete(sf: &StepFunctions, _ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let arn = required(input, "stateMachineArn")?;
    let p = parse_arn(arn).ok_or_else(|| invalid_arn(arn))?;
    if p.qualifier.is_some() {
        return Err(AwsError::validation(
            "Use DeleteStateMachineVersion or DeleteStateMachineAlias to delete a qualified state machine",
        ));
    }
    let Some((m, raw)) =
        sf.load::<MachineRec>(MACHINES, &MachineRec::key(p.account, p.region, p.name))?
    else {
        return Ok(json!({})); // deleting a missing machine succeeds, as on AWS
    };
    let mut ops = vec![
        WriteOp::Check {
            table: MACHINES.into(),
            key: MachineRec::key(&m.account, &m.region, &m.name),
            expected: Some(raw),
        },
        WriteOp::Delete {
            table: MACHINES.into(),
            key: MachineRec::key(&m.account, &m.region, &m.name),
        },
    ];
    for (k, _) in sf
        .state
        .scan(VERSIONS, &format!("{}/", m.arn), None, 10_000)?
    {
        ops.push(WriteOp::Delete {
            table: VERSIONS.into(),
            key: k,
        });
    }
    for (k, _) in sf
        .state
        .scan(ALIASES, &format!("{}/", m.arn), None, 10_000)?
    {
        ops.push(WriteOp::Delete {
            table: ALIASES.into(),
            key: k,
        });
    }
    match sf.state.batch(&ops) {
        Ok(()) | Err(StoreError::Conflict) => Ok(json!({})),
        Err(e) => Err(e.into()),
    }
}

pub fn validate(input: &Value) -> Value {
    let definition = str_of(input, "definition").unwrap_or_default();
    let diags = match basalt_asl::parse(definition) {
        Ok(_) => Vec::new(),
        Err(d) => d,
    };
    let warnings_too = str_of(input, "severity") == Some("WARNING");
    let max = input
        .get("maxResults")
        .and_then(Value::as_u64)
        .filter(|n| *n > 0)
        .unwrap_or(100) as usize;
    let shown: Vec<Value> = diags
        .iter()
        .filter(|d| warnings_too || d.severity == "ERROR")
        .map(|d| {
            let mut v = json!({"severity": d.severity, "code": d.code, "message": d.message});
            if let Some(l) = &d.location {
                v["location"] = l.clone().into();
            }
            v
        })
        .collect();
    let failed = diags.iter().any(|d| d.severity == "ERROR");
    json!({
        "result": if failed { "FAIL" } else { "OK" },
        "truncated": shown.len() > max,
        "diagnostics": shown.into_iter().take(max).collect::<Vec<_>>(),
    })
}

pub fn publish(
    sf: &StepFunctions,
    _ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let arn = required(input, "stateMachineArn")?;
    let at = now();
    let mut out = None;
    edit_machine(sf, arn, |m| {
        if let Some(r) = str_of(input, "revisionId")
            && r != m.revision_id
        {
            return Err(error(
                "ConflictException",
                format!(
                    "Failed to publish the State Machine version for revision {r}. The current State Machine revision is {}.",
                    m.revision_id
                ),
            ));
        }
        // Publishing an unchanged revision again answers the latest version.
        if m.next_version > 1
            && let Some(last) = load_version(sf, &m.arn, m.next_version - 1)?
            && last.revision_id == m.revision_id
        {
            out = Some(json!({"creationDate": last.created, "stateMachineVersionArn": last.arn}));
            return Ok(Vec::new());
        }
        let v = new_version(m, str_of(input, "description"), at);
        out = Some(json!({"creationDate": at, "stateMachineVersionArn": v.arn}));
        Ok(vec![put_version(&v)])
    })?;
    Ok(out.unwrap_or_default())
}

pub fn list_versions(
    sf: &StepFunctions,
    _ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let arn = required(input, "stateMachineArn")?;
    let (m, _) = load_machine(sf, arn)?;
    let (max, after) = page(input)?;
    let mut all: Vec<VersionRec> = sf
        .state
        .scan(VERSIONS, &format!("{}/", m.arn), None, 100_000)?
        .into_iter()
        .filter_map(|(_, raw)| serde_json::from_slice(&raw).ok())
        .collect();
    all.sort_by_key(|v| std::cmp::Reverse(v.number));
    let start = after.and_then(|a| a.parse::<u64>().ok()).map_or(0, |n| {
        all.iter().position(|v| v.number < n).unwrap_or(all.len())
    });
    let page: Vec<&VersionRec> = all[start..].iter().take(max).collect();
    let mut out = json!({
        "stateMachineVersions": page.iter().map(|v| json!({"stateMachineVersionArn": v.arn, "creationDate": v.created})).collect::<Vec<_>>()
    });
    if start + page.len() < all.len()
        && let Some(last) = page.last()
    {
        out["nextToken"] = page_token::encode(&last.number.to_string()).into();
    }
    Ok(out)
}

pub fn delete_version(
    sf: &StepFunctions,
    _ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let arn = required(input, "stateMachineVersionArn")?;
    let p = parse_arn(arn).ok_or_else(|| invalid_arn(arn))?;
    let Some(n) = p.qualifier.and_then(|q| q.parse::<u64>().ok()) else {
        return Err(invalid_arn(arn));
    };
    let base = machine_arn(p.region, p.account, p.name);
    for (_, raw) in sf.state.scan(ALIASES, &format!("{base}/"), None, 10_000)? {
        let a: AliasRec = serde_json::from_slice(&raw).map_err(|e| crate::corrupt("alias", e))?;
        if a.routing.iter().any(|(v, _)| v == arn) {
            return Err(error(
                "ConflictException",
                format!(
                    "Version to be deleted must not be referenced by an alias. Current list of aliases referencing this version: [{}]",
                    a.arn
                ),
            ));
        }
    }
    sf.state.delete(VERSIONS, &version_key(&base, n))?;
    Ok(json!({}))
}

fn routing(
    sf: &StepFunctions,
    machine: &str,
    v: Option<&Value>,
) -> Result<Vec<(String, u64)>, AwsError> {
    let routes: Vec<(String, u64)> = v
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| {
            Some((
                str_of(r, "stateMachineVersionArn")?.to_owned(),
                r.get("weight")?.as_u64()?,
            ))
        })
        .collect();
    if routes.is_empty() || routes.len() > 2 {
        return Err(AwsError::validation(
            "1 validation error detected: Value at 'routingConfiguration' failed to satisfy constraint: Member must have length less than or equal to 2",
        ));
    }
    if routes.iter().map(|r| r.1).sum::<u64>() != 100 {
        return Err(AwsError::validation(
            "Sum of routing configuration weights must be equal to 100.",
        ));
    }
    for (v, _) in &routes {
        let p = parse_arn(v).ok_or_else(|| invalid_arn(v))?;
        let n = p
            .qualifier
            .and_then(|q| q.parse::<u64>().ok())
            .ok_or_else(|| invalid_arn(v))?;
        if machine_arn(p.region, p.account, p.name) != machine {
            return Err(AwsError::validation(
                "Routing configuration must contain state machine versions of the same state machine",
            ));
        }
        load_version(sf, machine, n)?
            .ok_or_else(|| error("ResourceNotFound", format!("Resource not found: '{v}'")))?;
    }
    Ok(routes)
}

fn routing_json(routes: &[(String, u64)]) -> Value {
    routes
        .iter()
        .map(|(v, w)| json!({"stateMachineVersionArn": v, "weight": w}))
        .collect()
}

pub fn create_alias(
    sf: &StepFunctions,
    _ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let name = required(input, "name")?;
    check_name(name)?;
    if name.parse::<u64>().is_ok() {
        return Err(error("InvalidName", format!("Invalid Name: '{name}'")));
    }
    let first = input
        .pointer("/routingConfiguration/0/stateMachineVersionArn")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let p = parse_arn(first).ok_or_else(|| invalid_arn(first))?;
    let machine = machine_arn(p.region, p.account, p.name);
    load_machine(sf, &machine)?;
    let routes = routing(sf, &machine, input.get("routingConfiguration"))?;
    let arn = format!("{machine}:{name}");
    let at = now();
    let rec = AliasRec {
        arn: arn.clone(),
        name: name.to_owned(),
        machine_arn: machine.clone(),
        description: str_of(input, "description").map(str::to_owned),
        routing: routes,
        created: at,
        updated: at,
    };
    let key = format!("{machine}/{name}");
    if let Some((old, _)) = sf.load::<AliasRec>(ALIASES, &key)? {
        if old.routing == rec.routing && old.description == rec.description {
            return Ok(json!({"stateMachineAliasArn": old.arn, "creationDate": old.created}));
        }
        return Err(error(
            "ConflictException",
            format!("Alias already exists: '{arn}'"),
        ));
    }
    sf.state
        .put(ALIASES, &key, &serde_json::to_vec(&rec).unwrap_or_default())?;
    Ok(json!({"stateMachineAliasArn": arn, "creationDate": at}))
}

fn load_alias(sf: &StepFunctions, arn: &str) -> Result<(AliasRec, String), AwsError> {
    let p = parse_arn(arn).ok_or_else(|| invalid_arn(arn))?;
    let Some(alias) = p.qualifier.filter(|q| q.parse::<u64>().is_err()) else {
        return Err(invalid_arn(arn));
    };
    let key = format!("{}/{alias}", machine_arn(p.region, p.account, p.name));
    let (a, _) = sf
        .load::<AliasRec>(ALIASES, &key)?
        .ok_or_else(|| error("ResourceNotFound", format!("Resource not found: '{arn}'")))?;
    Ok((a, key))
}

pub fn describe_alias(
    sf: &StepFunctions,
    _ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let arn = required(input, "stateMachineAliasArn")?;
    let (a, _) = load_alias(sf, arn)?;
    let mut out = json!({
        "stateMachineAliasArn": a.arn, "name": a.name, "routingConfiguration": routing_json(&a.routing),
        "creationDate": a.created, "updateDate": a.updated,
    });
    if let Some(d) = a.description {
        out["description"] = d.into();
    }
    Ok(out)
}

pub fn update_alias(
    sf: &StepFunctions,
    _ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let arn = required(input, "stateMachineAliasArn")?;
    let (mut a, key) = load_alias(sf, arn)?;
    if input.get("routingConfiguration").is_some() {
        a.routing = routing(sf, &a.machine_arn, input.get("routingConfiguration"))?;
    }
    if let Some(d) = str_of(input, "description") {
        a.description = Some(d.to_owned());
    }
    a.updated = now();
    sf.state
        .put(ALIASES, &key, &serde_json::to_vec(&a).unwrap_or_default())?;
    Ok(json!({"updateDate": a.updated}))
}

pub fn delete_alias(
    sf: &StepFunctions,
    _ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let arn = required(input, "stateMachineAliasArn")?;
    let (_, key) = load_alias(sf, arn)?;
    sf.state.delete(ALIASES, &key)?;
    Ok(json!({}))
}

pub fn list_aliases(
    sf: &StepFunctions,
    _ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let arn = required(input, "stateMachineArn")?;
    let (m, _) = load_machine(sf, arn)?;
    list_page(
        sf,
        ALIASES,
        &format!("{}/", m.arn),
        input,
        "stateMachineAliases",
        |a: AliasRec| json!({"stateMachineAliasArn": a.arn, "creationDate": a.created}),
    )
}

/// Tags live on machines and activities.
fn edit_tags(
    sf: &StepFunctions,
    arn: &str,
    f: impl Fn(&mut std::collections::BTreeMap<String, String>) -> Result<(), AwsError>,
) -> Result<std::collections::BTreeMap<String, String>, AwsError> {
    if arn.contains(":activity:") {
        let key = crate::activities::key_of(arn).ok_or_else(|| invalid_arn(arn))?;
        let (mut a, _) = sf
            .load::<ActivityRec>(ACTIVITIES, &key)?
            .ok_or_else(|| error("ResourceNotFound", format!("Resource not found: '{arn}'")))?;
        f(&mut a.tags)?;
        sf.state.put(
            ACTIVITIES,
            &key,
            &serde_json::to_vec(&a).unwrap_or_default(),
        )?;
        return Ok(a.tags);
    }
    if parse_arn(arn).is_none_or(|p| p.qualifier.is_some()) {
        return Err(error(
            "ResourceNotFound",
            format!("Resource not found: '{arn}'"),
        ));
    }
    let m = edit_machine(sf, arn, |m| {
        f(&mut m.tags)?;
        Ok(Vec::new())
    })
    .map_err(|e| {
        if e.code == "StateMachineDoesNotExist" {
            error("ResourceNotFound", format!("Resource not found: '{arn}'"))
        } else {
            e
        }
    })?;
    Ok(m.tags)
}

pub fn tag(sf: &StepFunctions, _ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let arn = required(input, "resourceArn")?;
    let tags = tags_of(input.get("tags"));
    edit_tags(sf, arn, |t| {
        t.extend(tags.clone());
        if t.len() > 50 {
            return Err(error("TooManyTags", "Too many tags"));
        }
        Ok(())
    })?;
    Ok(json!({}))
}

pub fn untag(sf: &StepFunctions, _ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let arn = required(input, "resourceArn")?;
    let keys: Vec<String> = input
        .get("tagKeys")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|k| k.as_str().map(str::to_owned))
        .collect();
    edit_tags(sf, arn, |t| {
        for k in &keys {
            t.remove(k);
        }
        Ok(())
    })?;
    Ok(json!({}))
}

pub fn list_tags(
    sf: &StepFunctions,
    _ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let arn = required(input, "resourceArn")?;
    let tags = edit_tags(sf, arn, |_| Ok(()))?;
    Ok(json!({"tags": tags.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>()}))
}
