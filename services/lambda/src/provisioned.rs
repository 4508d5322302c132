//! Provisioned concurrency: environments started and initialized ahead of demand, kept warm
//! and never reaped for idleness. The requested count is stored with the function; the node
//! that receives the request starts the environments (other nodes serve the qualifier on
//! demand).

use crate::functions::{load, resolve_config, save};
use crate::model::{LATEST, function_arn};
use crate::{Lambda, invalid_value, str_of};
use basalt_core::{AwsError, Output, RequestContext};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct ProvisionedRec {
    pub requested: u32,
    pub modified: String,
}

fn missing() -> AwsError {
    AwsError::new(
        404,
        "ProvisionedConcurrencyConfigNotFoundException",
        "No Provisioned Concurrency Config found for this function",
    )
    .with_field("Type", "User")
}

/// The qualifier: a published version or an alias, never `$LATEST`.
fn qualifier(input: &Value) -> Result<String, AwsError> {
    match str_of(input, "Qualifier") {
        None | Some(LATEST) => Err(invalid_value(
            "Provisioned Concurrency Configs cannot be applied to unpublished function versions.",
        )),
        Some(q) => Ok(q.to_owned()),
    }
}

/// The configuration of the qualifier's version (an alias resolves to its version).
fn config_of(
    l: &Lambda,
    ctx: &RequestContext,
    name: &str,
    q: &str,
) -> Result<crate::model::Config, AwsError> {
    let (rec, _) = load(l, ctx, name)?;
    resolve_config(l, ctx, &rec, Some(q))
}

/// The environments' key of the qualifier's version (an alias resolves to its version).
fn key_of(l: &Lambda, ctx: &RequestContext, name: &str, q: &str) -> Result<String, AwsError> {
    let arn = function_arn(&ctx.region, &ctx.account_id, name);
    Ok(crate::invoke::spec_key(&arn, &config_of(l, ctx, name, q)?))
}

fn doc(l: &Lambda, key: &str, p: &ProvisionedRec) -> Value {
    let ready = l.engine.provisioned(key).min(p.requested as usize);
    json!({
        "RequestedProvisionedConcurrentExecutions": p.requested,
        "AllocatedProvisionedConcurrentExecutions": ready,
        "AvailableProvisionedConcurrentExecutions": ready,
        "Status": if ready >= p.requested as usize { "READY" } else { "IN_PROGRESS" },
        "LastModified": p.modified,
    })
}

pub(crate) async fn put(
    l: &Lambda,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Output, AwsError> {
    let name = crate::function_name(ctx, input)?;
    let q = qualifier(input)?;
    let n = input
        .get("ProvisionedConcurrentExecutions")
        .and_then(Value::as_u64)
        .unwrap_or(0) as u32;
    if n == 0 {
        return Err(invalid_value(
            "ProvisionedConcurrentExecutions must be at least 1.",
        ));
    }
    let config = config_of(l, ctx, &name, &q)?;
    let spec = crate::invoke::spec_for(l, &ctx.account_id, &ctx.region, &name, &config).await?;
    let key = spec.key.clone();
    let (mut rec, raw) = load(l, ctx, &name)?;
    if let Some(reserved) = rec.reserved_concurrency
        && n > reserved
    {
        return Err(invalid_value(format!(
            "Requested Provisioned Concurrency should not be greater than the reservedConcurrentExecution for function ({reserved})."
        )));
    }
    let p = ProvisionedRec {
        requested: n,
        modified: crate::model::timestamp_now(),
    };
    rec.provisioned.insert(q, p.clone());
    save(l, ctx, &rec, Some(raw), Vec::new())?;
    l.engine.unprovision(&key, n as usize);
    let engine = l.engine.clone();
    tokio::spawn(async move {
        if let Err(e) = engine.prewarm(&spec, n as usize).await {
            tracing::warn!("provisioned concurrency for {}: {e}", spec.key);
        }
    });
    let mut out = doc(l, &key, &p);
    out["Status"] = json!("IN_PROGRESS");
    Ok(Output::new(out))
}

pub(crate) async fn get(
    l: &Lambda,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Output, AwsError> {
    let name = crate::function_name(ctx, input)?;
    let q = qualifier(input)?;
    let (rec, _) = load(l, ctx, &name)?;
    let p = rec.provisioned.get(&q).cloned().ok_or_else(missing)?;
    let key = key_of(l, ctx, &name, &q)?;
    Ok(Output::new(doc(l, &key, &p)))
}

pub(crate) async fn delete(
    l: &Lambda,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Output, AwsError> {
    let name = crate::function_name(ctx, input)?;
    let q = qualifier(input)?;
    let (mut rec, raw) = load(l, ctx, &name)?;
    if rec.provisioned.remove(&q).is_none() {
        return Err(missing());
    }
    save(l, ctx, &rec, Some(raw), Vec::new())?;
    if let Ok(key) = key_of(l, ctx, &name, &q) {
        l.engine.unprovision(&key, 0);
    }
    Ok(Output::empty())
}

pub(crate) async fn list(
    l: &Lambda,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Output, AwsError> {
    let name = crate::function_name(ctx, input)?;
    let (rec, _) = load(l, ctx, &name)?;
    let mut items = Vec::new();
    for (q, p) in &rec.provisioned {
        let Ok(key) = key_of(l, ctx, &name, q) else {
            continue;
        };
        let mut item = doc(l, &key, p);
        item["FunctionArn"] = json!(format!(
            "{}:{q}",
            function_arn(&ctx.region, &ctx.account_id, &name)
        ));
        items.push(item);
    }
    Ok(crate::page(
        items,
        input,
        "ProvisionedConcurrencyConfigs",
        50,
        |v| v["FunctionArn"].as_str().unwrap_or_default().to_owned(),
    ))
}
