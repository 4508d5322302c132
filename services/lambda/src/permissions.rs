//! Resource-based policy: AddPermission, RemovePermission, GetPolicy. Statements are
//! stored and returned as AWS writes them; Basalt does not evaluate IAM policies.

use crate::functions::{load, save};
use crate::model::{self, function_arn};
use crate::{Lambda, conflict, invalid_value, not_found, str_of};
use basalt_core::{AwsError, Output, RequestContext};
use serde_json::{Map, Value, json};

fn target(ctx: &RequestContext, name: &str, qualifier: Option<&str>) -> String {
    let arn = function_arn(&ctx.region, &ctx.account_id, name);
    match qualifier {
        Some(q) => format!("{arn}:{q}"),
        None => arn,
    }
}

/// The principal as a policy writes it: a service, an account, or an ARN.
fn principal(p: &str) -> Value {
    if p.ends_with(".amazonaws.com") {
        json!({"Service": p})
    } else if p == "*" {
        json!("*")
    } else if p.len() == 12 && p.bytes().all(|b| b.is_ascii_digit()) {
        json!({"AWS": format!("arn:aws:iam::{p}:root")})
    } else {
        json!({"AWS": p})
    }
}

pub(crate) fn add(l: &Lambda, ctx: &RequestContext, input: &Value) -> Result<Output, AwsError> {
    let r = crate::function_ref(ctx, input)?;
    let (mut rec, raw) = load(l, ctx, &r.name)?;
    if let Some(q) = r.qualifier.as_deref() {
        crate::functions::resolve_config(l, ctx, &rec, Some(q))?;
    }
    if let Some(rev) = str_of(input, "RevisionId")
        && rev != rec.config.revision_id
    {
        return Err(crate::revision_mismatch("GetPolicy"));
    }
    let sid = str_of(input, "StatementId").unwrap_or_default();
    if rec
        .policy
        .iter()
        .any(|s| s["Sid"] == sid && s["Resource"] == target(ctx, &r.name, r.qualifier.as_deref()))
    {
        return Err(conflict(format!(
            "The statement id ({sid}) provided already exists. Please provide a new statement id, or remove the existing statement."
        )));
    }
    let action = str_of(input, "Action").unwrap_or_default();
    if !action.starts_with("lambda:") {
        return Err(invalid_value(format!("Invalid action: {action}")));
    }
    let mut condition = Map::new();
    if let Some(arn) = str_of(input, "SourceArn") {
        condition.insert("ArnLike".into(), json!({"AWS:SourceArn": arn}));
    }
    let mut equals = Map::new();
    if let Some(acct) = str_of(input, "SourceAccount") {
        equals.insert("AWS:SourceAccount".into(), json!(acct));
    }
    if let Some(org) = str_of(input, "PrincipalOrgID") {
        equals.insert("aws:PrincipalOrgID".into(), json!(org));
    }
    if let Some(auth) = str_of(input, "FunctionUrlAuthType") {
        equals.insert("lambda:FunctionUrlAuthType".into(), json!(auth));
    }
    if !equals.is_empty() {
        condition.insert("StringEquals".into(), Value::Object(equals));
    }
    let mut statement = json!({
        "Sid": sid,
        "Effect": "Allow",
        "Principal": principal(str_of(input, "Principal").unwrap_or_default()),
        "Action": action,
        "Resource": target(ctx, &r.name, r.qualifier.as_deref()),
    });
    if !condition.is_empty() {
        statement["Condition"] = Value::Object(condition);
    }
    rec.policy.push(statement.clone());
    rec.config.revision_id = model::revision();
    save(l, ctx, &rec, Some(raw), Vec::new())?;
    Ok(Output::new(json!({"Statement": statement.to_string()})))
}

pub(crate) fn remove(l: &Lambda, ctx: &RequestContext, input: &Value) -> Result<Output, AwsError> {
    let r = crate::function_ref(ctx, input)?;
    let (mut rec, raw) = load(l, ctx, &r.name)?;
    let sid = str_of(input, "StatementId").unwrap_or_default();
    let resource = target(ctx, &r.name, r.qualifier.as_deref());
    let before = rec.policy.len();
    rec.policy
        .retain(|s| !(s["Sid"] == sid && s["Resource"] == resource));
    if rec.policy.len() == before {
        return Err(not_found(format!(
            "Statement {sid} is not found in resource policy."
        )));
    }
    rec.config.revision_id = model::revision();
    save(l, ctx, &rec, Some(raw), Vec::new())?;
    Ok(Output::empty())
}

pub(crate) fn get(l: &Lambda, ctx: &RequestContext, input: &Value) -> Result<Output, AwsError> {
    let r = crate::function_ref(ctx, input)?;
    let (rec, _) = load(l, ctx, &r.name)?;
    let resource = target(ctx, &r.name, r.qualifier.as_deref());
    let statements: Vec<&Value> = rec
        .policy
        .iter()
        .filter(|s| s["Resource"] == resource.as_str())
        .collect();
    if statements.is_empty() {
        return Err(not_found("The resource you requested does not exist."));
    }
    let policy = json!({
        "Version": "2012-10-17",
        "Id": "default",
        "Statement": statements,
    });
    Ok(Output::new(
        json!({"Policy": policy.to_string(), "RevisionId": rec.config.revision_id}),
    ))
}
