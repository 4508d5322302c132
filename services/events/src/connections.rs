//! Connections: Create/Describe/List/Update/Delete/DeauthorizeConnection.
//!
//! A connection holds how calls to an HTTP API authorize themselves (Basic, an API key, OAuth
//! client credentials) and the parameters added to every call. AWS keeps the secrets in a
//! Secrets Manager secret it manages and never returns them; Basalt keeps them in the
//! connection's record and returns them only in-process ([`EventsConnections`], which Step
//! Functions' HTTP tasks use). Basic and API key connections are AUTHORIZED at once; an OAuth
//! connection is too, its token being asked for by the call that uses it.

use crate::{Events, limit, not_found, now_ms, required, str_of, token, untoken, validation};
use basalt_core::connections::{Authorization, Connection, InProcessConnections, Parameters};
use basalt_core::{AwsError, RequestContext};
use basalt_store::{StoreError, WriteOp};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// Connection records, keyed `{account}/{region}/{name}`.
pub const CONNECTIONS: &str = "events.connections";

const TYPES: [&str; 3] = ["BASIC", "OAUTH_CLIENT_CREDENTIALS", "API_KEY"];

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConnectionRec {
    pub name: String,
    /// The id in the ARN: a connection created again under the same name is another one.
    pub id: String,
    #[serde(default)]
    pub description: Option<String>,
    pub authorization_type: String,
    /// `AuthParameters` as given (secrets included), updates merged in.
    pub auth: Value,
    pub state: String,
    #[serde(default)]
    pub kms_key: Option<String>,
    /// Epoch milliseconds.
    pub created_ms: i64,
    pub modified_ms: i64,
    #[serde(default)]
    pub authorized_ms: Option<i64>,
}

impl ConnectionRec {
    fn arn(&self, account: &str, region: &str) -> String {
        format!(
            "arn:aws:events:{region}:{account}:connection/{}/{}",
            self.name, self.id
        )
    }
}

fn key(account: &str, region: &str, name: &str) -> String {
    format!("{account}/{region}/{name}")
}

fn secs(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

fn gone(name: &str) -> AwsError {
    not_found(format!(
        "Failed to describe the connection(s). Connection '{name}' does not exist."
    ))
}

fn check_name(name: &str) -> Result<(), AwsError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if ok {
        Ok(())
    } else {
        Err(validation(format!(
            "1 validation error detected: Value '{name}' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\.\\-_A-Za-z0-9]+"
        )))
    }
}

/// The member of `AuthParameters` each authorization type needs.
fn auth_member(kind: &str) -> &'static str {
    match kind {
        "BASIC" => "BasicAuthParameters",
        "API_KEY" => "ApiKeyAuthParameters",
        _ => "OAuthParameters",
    }
}

fn check_type(kind: &str) -> Result<(), AwsError> {
    if TYPES.contains(&kind) {
        Ok(())
    } else {
        Err(validation(format!(
            "1 validation error detected: Value '{kind}' at 'authorizationType' failed to satisfy constraint: Member must satisfy enum value set: [BASIC, OAUTH_CLIENT_CREDENTIALS, API_KEY]"
        )))
    }
}

/// The members a complete authorization of `kind` needs (after an update is merged in).
fn check_auth(kind: &str, auth: &Value) -> Result<(), AwsError> {
    let member = auth_member(kind);
    let Some(p) = auth.get(member).filter(|v| v.is_object()) else {
        return Err(validation(format!(
            "The authorization type {kind} requires {member} in AuthParameters."
        )));
    };
    let needed: &[&str] = match kind {
        "BASIC" => &["Username", "Password"],
        "API_KEY" => &["ApiKeyName", "ApiKeyValue"],
        _ => &["AuthorizationEndpoint", "HttpMethod"],
    };
    for m in needed {
        if p.get(*m).and_then(Value::as_str).is_none_or(str::is_empty) {
            return Err(validation(format!("{member}.{m} is required.")));
        }
    }
    if kind == "OAUTH_CLIENT_CREDENTIALS" {
        let c = &p["ClientParameters"];
        if c["ClientID"].as_str().is_none_or(str::is_empty)
            || c["ClientSecret"].as_str().is_none_or(str::is_empty)
        {
            return Err(validation(
                "OAuthParameters.ClientParameters.ClientID and ClientSecret are required.",
            ));
        }
        let method = p["HttpMethod"].as_str().unwrap_or_default();
        if !["GET", "POST", "PUT"].contains(&method) {
            return Err(validation(format!(
                "1 validation error detected: Value '{method}' at 'authParameters.oAuthParameters.httpMethod' failed to satisfy constraint: Member must satisfy enum value set: [GET, POST, PUT]"
            )));
        }
    }
    Ok(())
}

/// `base` with `update`'s members laid over it, objects merged member by member.
fn merge(base: &mut Value, update: &Value) {
    match (base, update) {
        (Value::Object(b), Value::Object(u)) => {
            for (k, v) in u {
                merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, u) => *b = u.clone(),
    }
}

fn load(
    events: &Events,
    ctx: &RequestContext,
    name: &str,
) -> Result<Option<(ConnectionRec, Vec<u8>)>, AwsError> {
    let Some(raw) = events
        .state
        .get(CONNECTIONS, &key(&ctx.account_id, &ctx.region, name))?
    else {
        return Ok(None);
    };
    let rec = serde_json::from_slice(&raw)
        .map_err(|e| AwsError::internal(format!("corrupt connection record: {e}")))?;
    Ok(Some((rec, raw)))
}

fn state_json(ctx: &RequestContext, c: &ConnectionRec) -> Value {
    let mut v = json!({
        "ConnectionArn": c.arn(&ctx.account_id, &ctx.region),
        "ConnectionState": c.state,
        "CreationTime": secs(c.created_ms),
        "LastModifiedTime": secs(c.modified_ms),
    });
    if let Some(a) = c.authorized_ms {
        v["LastAuthorizedTime"] = secs(a).into();
    }
    v
}

/// Parameters as DescribeConnection shows them: a secret value is left out.
fn shown_parameters(p: &Value) -> Value {
    let mut out = Map::new();
    for list in [
        "HeaderParameters",
        "QueryStringParameters",
        "BodyParameters",
    ] {
        if let Some(items) = p.get(list).and_then(Value::as_array) {
            let shown: Vec<Value> = items
                .iter()
                .map(|i| {
                    let mut i = i.clone();
                    if i["IsValueSecret"].as_bool() == Some(true)
                        && let Some(o) = i.as_object_mut()
                    {
                        o.remove("Value");
                    }
                    i
                })
                .collect();
            out.insert(list.into(), shown.into());
        }
    }
    Value::Object(out)
}

fn describe_json(ctx: &RequestContext, c: &ConnectionRec) -> Value {
    let mut v = state_json(ctx, c);
    v["Name"] = c.name.clone().into();
    v["AuthorizationType"] = c.authorization_type.clone().into();
    v["SecretArn"] = format!(
        "arn:aws:secretsmanager:{}:{}:secret:events!connection/{}/{}",
        ctx.region, ctx.account_id, c.name, c.id
    )
    .into();
    if let Some(d) = &c.description {
        v["Description"] = d.clone().into();
    }
    if let Some(k) = &c.kms_key {
        v["KmsKeyIdentifier"] = k.clone().into();
    }
    let a = &c.auth;
    let mut shown = Map::new();
    match c.authorization_type.as_str() {
        "BASIC" => {
            shown.insert(
                "BasicAuthParameters".into(),
                json!({"Username": a["BasicAuthParameters"]["Username"]}),
            );
        }
        "API_KEY" => {
            shown.insert(
                "ApiKeyAuthParameters".into(),
                json!({"ApiKeyName": a["ApiKeyAuthParameters"]["ApiKeyName"]}),
            );
        }
        _ => {
            let o = &a["OAuthParameters"];
            let mut p = json!({
                "ClientParameters": {"ClientID": o["ClientParameters"]["ClientID"]},
                "AuthorizationEndpoint": o["AuthorizationEndpoint"],
                "HttpMethod": o["HttpMethod"],
            });
            if o.get("OAuthHttpParameters").is_some() {
                p["OAuthHttpParameters"] = shown_parameters(&o["OAuthHttpParameters"]);
            }
            shown.insert("OAuthParameters".into(), p);
        }
    }
    if let Some(p) = a.get("InvocationHttpParameters") {
        shown.insert("InvocationHttpParameters".into(), shown_parameters(p));
    }
    v["AuthParameters"] = Value::Object(shown);
    if c.state == "DEAUTHORIZED" {
        v["StateReason"] = "The connection was deauthorized.".into();
    }
    v
}

pub fn create(events: &Events, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let name = required(input, "Name")?;
    check_name(name)?;
    let kind = required(input, "AuthorizationType")?;
    check_type(kind)?;
    let auth = input
        .get("AuthParameters")
        .cloned()
        .ok_or_else(|| validation("1 validation error detected: Value null at 'authParameters' failed to satisfy constraint: Member must not be null"))?;
    check_auth(kind, &auth)?;
    let now = now_ms();
    let rec = ConnectionRec {
        name: name.to_owned(),
        id: uuid::Uuid::new_v4().to_string(),
        description: str_of(input, "Description").map(str::to_owned),
        authorization_type: kind.to_owned(),
        auth,
        state: "AUTHORIZED".into(),
        kms_key: str_of(input, "KmsKeyIdentifier").map(str::to_owned),
        created_ms: now,
        modified_ms: now,
        authorized_ms: Some(now),
    };
    let k = key(&ctx.account_id, &ctx.region, name);
    let written = events.state.batch(&[
        WriteOp::Check {
            table: CONNECTIONS.into(),
            key: k.clone(),
            expected: None,
        },
        WriteOp::Put {
            table: CONNECTIONS.into(),
            key: k,
            value: serde_json::to_vec(&rec).unwrap_or_default(),
        },
    ]);
    match written {
        Ok(()) => Ok(state_json(ctx, &rec)),
        Err(StoreError::Conflict) => Err(AwsError::new(
            400,
            "ResourceAlreadyExistsException",
            format!("Connection {name} already exists."),
        )),
        Err(e) => Err(e.into()),
    }
}

pub fn describe(events: &Events, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let name = required(input, "Name")?;
    let (c, _) = load(events, ctx, name)?.ok_or_else(|| gone(name))?;
    Ok(describe_json(ctx, &c))
}

pub fn list(events: &Events, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let prefix = str_of(input, "NamePrefix").unwrap_or("");
    let state = str_of(input, "ConnectionState");
    let limit = limit(input, 100)?;
    let after = str_of(input, "NextToken").map(untoken).transpose()?;
    let scope = format!("{}/{}/", ctx.account_id, ctx.region);
    let mut start = after.map(|a| format!("{scope}{a}"));
    let mut out = Vec::new();
    let mut more = false;
    'pages: loop {
        let rows = events.state.scan(
            CONNECTIONS,
            &format!("{scope}{prefix}"),
            start.as_deref(),
            200,
        )?;
        let Some((last, _)) = rows.last() else { break };
        start = Some(last.clone());
        for (_, raw) in &rows {
            let Ok(c) = serde_json::from_slice::<ConnectionRec>(raw) else {
                continue;
            };
            if state.is_some_and(|s| s != c.state) {
                continue;
            }
            if out.len() == limit {
                more = true;
                break 'pages;
            }
            out.push(c);
        }
    }
    let mut v = json!({
        "Connections": out.iter().map(|c| {
            let mut v = state_json(ctx, c);
            v["Name"] = c.name.clone().into();
            v["AuthorizationType"] = c.authorization_type.clone().into();
            v
        }).collect::<Vec<_>>(),
    });
    if more && let Some(last) = out.last() {
        v["NextToken"] = token(&last.name).into();
    }
    Ok(v)
}

/// Rewrites the connection `name` with `change`, under a precondition on the record as read.
fn edit(
    events: &Events,
    ctx: &RequestContext,
    name: &str,
    change: impl Fn(&mut ConnectionRec) -> Result<(), AwsError>,
) -> Result<ConnectionRec, AwsError> {
    let k = key(&ctx.account_id, &ctx.region, name);
    for _ in 0..8 {
        let (mut c, raw) = load(events, ctx, name)?.ok_or_else(|| gone(name))?;
        change(&mut c)?;
        c.modified_ms = now_ms();
        let written = events.state.batch(&[
            WriteOp::Check {
                table: CONNECTIONS.into(),
                key: k.clone(),
                expected: Some(raw),
            },
            WriteOp::Put {
                table: CONNECTIONS.into(),
                key: k.clone(),
                value: serde_json::to_vec(&c).unwrap_or_default(),
            },
        ]);
        match written {
            Ok(()) => return Ok(c),
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(AwsError::new(
        400,
        "ConcurrentModificationException",
        "The connection changed concurrently; try again.",
    ))
}

pub fn update(events: &Events, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let name = required(input, "Name")?;
    if let Some(k) = str_of(input, "AuthorizationType") {
        check_type(k)?;
    }
    let c = edit(events, ctx, name, |c| {
        if let Some(d) = str_of(input, "Description") {
            c.description = Some(d.to_owned());
        }
        if let Some(k) = str_of(input, "KmsKeyIdentifier") {
            c.kms_key = Some(k.to_owned());
        }
        let kind = str_of(input, "AuthorizationType")
            .unwrap_or(&c.authorization_type)
            .to_owned();
        let mut auth = if kind == c.authorization_type {
            c.auth.clone()
        } else {
            // Another type: only what the invocation adds carries over.
            let mut fresh = json!({});
            if let Some(p) = c.auth.get("InvocationHttpParameters") {
                fresh["InvocationHttpParameters"] = p.clone();
            }
            fresh
        };
        if let Some(u) = input.get("AuthParameters") {
            merge(&mut auth, u);
        }
        check_auth(&kind, &auth)?;
        let reauthorized = input.get("AuthParameters").is_some() || kind != c.authorization_type;
        c.authorization_type = kind;
        c.auth = auth;
        if reauthorized || c.state != "DEAUTHORIZED" {
            c.state = "AUTHORIZED".into();
            c.authorized_ms = Some(now_ms());
        }
        Ok(())
    })?;
    Ok(state_json(ctx, &c))
}

pub fn deauthorize(
    events: &Events,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let name = required(input, "Name")?;
    let c = edit(events, ctx, name, |c| {
        c.state = "DEAUTHORIZED".into();
        Ok(())
    })?;
    Ok(state_json(ctx, &c))
}

pub fn delete(events: &Events, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let name = required(input, "Name")?;
    let (c, raw) = load(events, ctx, name)?.ok_or_else(|| gone(name))?;
    let k = key(&ctx.account_id, &ctx.region, name);
    match events.state.batch(&[
        WriteOp::Check {
            table: CONNECTIONS.into(),
            key: k.clone(),
            expected: Some(raw),
        },
        WriteOp::Delete {
            table: CONNECTIONS.into(),
            key: k,
        },
    ]) {
        Ok(()) => {}
        Err(StoreError::Conflict) => {
            return Err(AwsError::new(
                400,
                "ConcurrentModificationException",
                "The connection changed concurrently; try again.",
            ));
        }
        Err(e) => return Err(e.into()),
    }
    let mut v = state_json(ctx, &c);
    v["ConnectionState"] = "DELETING".into();
    Ok(v)
}

/// Connections for other services in-process, secrets included.
pub struct EventsConnections(pub Arc<Events>);

fn pairs(p: &Value, list: &str) -> Vec<(String, String)> {
    p.get(list)
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|i| {
                    Some((
                        i["Key"].as_str()?.to_owned(),
                        i["Value"].as_str()?.to_owned(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn parameters(p: &Value) -> Parameters {
    Parameters {
        headers: pairs(p, "HeaderParameters"),
        query: pairs(p, "QueryStringParameters"),
        body: pairs(p, "BodyParameters"),
    }
}

impl InProcessConnections for EventsConnections {
    fn connection(&self, arn: &str) -> Result<Option<Connection>, String> {
        // arn:aws:events:{region}:{account}:connection/{name}/{id}
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let [_, _, "events", region, account, resource] = parts[..] else {
            return Ok(None);
        };
        let Some(("connection", rest)) = resource.split_once('/') else {
            return Ok(None);
        };
        let Some((name, id)) = rest.split_once('/') else {
            return Ok(None);
        };
        let Some(raw) = self
            .0
            .state
            .get(CONNECTIONS, &key(account, region, name))
            .map_err(|e| e.to_string())?
        else {
            return Ok(None);
        };
        let c: ConnectionRec = serde_json::from_slice(&raw).map_err(|e| e.to_string())?;
        if c.id != id {
            return Ok(None);
        }
        let a = &c.auth;
        let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        let authorization = match c.authorization_type.as_str() {
            "BASIC" => Authorization::Basic {
                username: s(&a["BasicAuthParameters"]["Username"]),
                password: s(&a["BasicAuthParameters"]["Password"]),
            },
            "API_KEY" => Authorization::ApiKey {
                name: s(&a["ApiKeyAuthParameters"]["ApiKeyName"]),
                value: s(&a["ApiKeyAuthParameters"]["ApiKeyValue"]),
            },
            _ => {
                let o = &a["OAuthParameters"];
                Authorization::OAuthClientCredentials {
                    endpoint: s(&o["AuthorizationEndpoint"]),
                    method: s(&o["HttpMethod"]),
                    client_id: s(&o["ClientParameters"]["ClientID"]),
                    client_secret: s(&o["ClientParameters"]["ClientSecret"]),
                    parameters: parameters(&o["OAuthHttpParameters"]),
                }
            }
        };
        Ok(Some(Connection {
            arn: arn.to_owned(),
            state: c.state.clone(),
            authorization,
            invocation: parameters(&a["InvocationHttpParameters"]),
        }))
    }
}
