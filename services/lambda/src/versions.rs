//! Published versions and aliases.

use crate::functions::{config_doc, function_missing, load, save};
use crate::model::{self, ALIASES, AliasRec, Config, FunctionRec, LATEST, VERSIONS, function_arn};
use crate::{Lambda, conflict, invalid_value, not_found, str_of};
use basalt_core::{AwsError, Output, RequestContext};
use basalt_store::{StoreError, WriteOp};
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub(crate) fn load_version(
    l: &Lambda,
    ctx: &RequestContext,
    name: &str,
    n: u64,
) -> Result<Config, AwsError> {
    let raw = l
        .state
        .get(VERSIONS, &model::version_key(&ctx.scope(), name, n))?
        .ok_or_else(|| function_missing(ctx, name, Some(&n.to_string())))?;
    serde_json::from_slice(&raw).map_err(|e| AwsError::internal(e.to_string()))
}

pub(crate) fn all_versions(
    l: &Lambda,
    ctx: &RequestContext,
    name: &str,
) -> Result<Vec<Config>, AwsError> {
    let prefix = format!("{}/", model::function_key(&ctx.scope(), name));
    crate::records(l, VERSIONS, &prefix)
}

/// The write that publishes `rec`'s `$LATEST` as its next version, and that version.
pub(crate) fn publish_op(
    ctx: &RequestContext,
    rec: &mut FunctionRec,
    description: &str,
) -> Result<(WriteOp, Config), AwsError> {
    let n = rec.next_version;
    rec.next_version += 1;
    let mut c = rec.config.clone();
    c.version = n.to_string();
    c.revision_id = model::revision();
    if !description.is_empty() {
        c.description = description.to_owned();
    }
    let value = serde_json::to_vec(&c).map_err(|e| AwsError::internal(e.to_string()))?;
    Ok((
        WriteOp::Put {
            table: VERSIONS.into(),
            key: model::version_key(&ctx.scope(), &rec.name, n),
            value,
        },
        c,
    ))
}

/// Whether two configurations run the same thing (publishing an unchanged `$LATEST` returns
/// the version that has it).
fn same_function(a: &Config, b: &Config) -> bool {
    let strip = |c: &Config| Config {
        version: String::new(),
        revision_id: String::new(),
        description: String::new(),
        last_modified: String::new(),
        ..c.clone()
    };
    strip(a) == strip(b)
}

pub(crate) fn publish(l: &Lambda, ctx: &RequestContext, input: &Value) -> Result<Output, AwsError> {
    let name = crate::function_name(ctx, input)?;
    let (mut rec, raw) = load(l, ctx, &name)?;
    if let Some(sha) = str_of(input, "CodeSha256")
        && sha != rec.config.code_sha256
    {
        return Err(invalid_value(format!(
            "CodeSHA256 ({sha}) is different from current CodeSHA256 in $LATEST ({}). Please try again with the CodeSHA256 in $LATEST.",
            rec.config.code_sha256
        )));
    }
    if let Some(r) = str_of(input, "RevisionId")
        && r != rec.config.revision_id
    {
        return Err(crate::revision_mismatch("GetFunction/GetAlias"));
    }
    if let Some(newest) = all_versions(l, ctx, &name)?.pop()
        && same_function(&newest, &rec.config)
    {
        return Ok(Output::new(config_doc(ctx, &name, &newest, false)));
    }
    let (op, published) = publish_op(
        ctx,
        &mut rec,
        str_of(input, "Description").unwrap_or_default(),
    )?;
    save(l, ctx, &rec, Some(raw), vec![op])?;
    Ok(Output::new(config_doc(ctx, &name, &published, false)))
}

pub(crate) fn list(l: &Lambda, ctx: &RequestContext, input: &Value) -> Result<Output, AwsError> {
    let name = crate::function_name(ctx, input)?;
    let (rec, _) = load(l, ctx, &name)?;
    let mut all = vec![config_doc(ctx, &name, &rec.config, true)];
    all.extend(
        all_versions(l, ctx, &name)?
            .iter()
            .map(|c| config_doc(ctx, &name, c, false)),
    );
    Ok(crate::page(all, input, "Versions", 10_000, |v| {
        v["Version"].as_str().unwrap_or_default().to_owned()
    }))
}

fn alias_arn(ctx: &RequestContext, function: &str, alias: &str) -> String {
    format!(
        "{}:{alias}",
        function_arn(&ctx.region, &ctx.account_id, function)
    )
}

fn alias_doc(ctx: &RequestContext, function: &str, a: &AliasRec) -> Value {
    let mut v = json!({
        "AliasArn": alias_arn(ctx, function, &a.name),
        "Name": a.name,
        "FunctionVersion": a.version,
        "Description": a.description,
        "RevisionId": a.revision_id,
    });
    if !a.weights.is_empty() {
        v["RoutingConfig"] = json!({"AdditionalVersionWeights": a.weights});
    }
    v
}

pub(crate) fn load_alias(
    l: &Lambda,
    ctx: &RequestContext,
    function: &str,
    alias: &str,
) -> Result<AliasRec, AwsError> {
    let raw = l
        .state
        .get(ALIASES, &model::alias_key(&ctx.scope(), function, alias))?
        .ok_or_else(|| {
            not_found(format!(
                "Alias not found: {}",
                alias_arn(ctx, function, alias)
            ))
        })?;
    serde_json::from_slice(&raw).map_err(|e| AwsError::internal(e.to_string()))
}

pub(crate) fn aliases_of(
    l: &Lambda,
    ctx: &RequestContext,
    function: &str,
) -> Result<Vec<AliasRec>, AwsError> {
    let prefix = format!("{}/", model::function_key(&ctx.scope(), function));
    crate::records(l, ALIASES, &prefix)
}

/// Checks that `version` exists (or is `$LATEST`) and the routing weights are valid.
fn check_target(
    l: &Lambda,
    ctx: &RequestContext,
    function: &str,
    version: &str,
    weights: &BTreeMap<String, f64>,
) -> Result<(), AwsError> {
    if version != LATEST {
        let n: u64 = version
            .parse()
            .map_err(|_| invalid_value(format!("Invalid function version {version}")))?;
        load_version(l, ctx, function, n)?;
    }
    if weights.len() > 1 {
        return Err(invalid_value(
            "Number of items in AdditionalVersionWeights cannot be greater than 1",
        ));
    }
    for (v, w) in weights {
        if !(0.0..=1.0).contains(w) {
            return Err(invalid_value(format!(
                "Invalid weight {w} for version {v}: weights must be between 0.0 and 1.0"
            )));
        }
        if v == version {
            return Err(invalid_value(
                "Primary and additional version cannot be the same",
            ));
        }
        let n: u64 = v.parse().map_err(|_| {
            invalid_value("Routing configuration can only point to published versions")
        })?;
        load_version(l, ctx, function, n)?;
    }
    Ok(())
}

fn weights_of(input: &Value) -> Option<BTreeMap<String, f64>> {
    let w = input
        .get("RoutingConfig")?
        .get("AdditionalVersionWeights")?
        .as_object()?;
    Some(
        w.iter()
            .map(|(k, v)| (k.clone(), v.as_f64().unwrap_or(-1.0)))
            .collect(),
    )
}

fn put_alias(
    l: &Lambda,
    ctx: &RequestContext,
    function: &str,
    a: &AliasRec,
    expected: Option<Vec<u8>>,
) -> Result<(), StoreError> {
    let key = model::alias_key(&ctx.scope(), function, &a.name);
    let value = serde_json::to_vec(a).map_err(|e| StoreError::Other(e.to_string()))?;
    l.state.batch(&[
        WriteOp::Check {
            table: ALIASES.into(),
            key: key.clone(),
            expected,
        },
        WriteOp::Put {
            table: ALIASES.into(),
            key,
            value,
        },
    ])
}

pub(crate) fn create_alias(
    l: &Lambda,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Output, AwsError> {
    let function = crate::function_name(ctx, input)?;
    load(l, ctx, &function)?;
    let name = str_of(input, "Name").unwrap_or_default().to_owned();
    if name == LATEST || name.parse::<u64>().is_ok() {
        return Err(invalid_value(format!(
            "Alias name {name} is reserved or numeric."
        )));
    }
    let version = str_of(input, "FunctionVersion")
        .unwrap_or_default()
        .to_owned();
    let weights = weights_of(input).unwrap_or_default();
    check_target(l, ctx, &function, &version, &weights)?;
    let a = AliasRec {
        name: name.clone(),
        version,
        description: str_of(input, "Description").unwrap_or_default().to_owned(),
        weights,
        revision_id: model::revision(),
    };
    match put_alias(l, ctx, &function, &a, None) {
        Ok(()) => Ok(Output::new(alias_doc(ctx, &function, &a))),
        Err(StoreError::Conflict) => Err(conflict(format!(
            "Alias already exists: {}",
            alias_arn(ctx, &function, &name)
        ))),
        Err(e) => Err(e.into()),
    }
}

pub(crate) fn get_alias(
    l: &Lambda,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Output, AwsError> {
    let function = crate::function_name(ctx, input)?;
    load(l, ctx, &function)?;
    let a = load_alias(l, ctx, &function, str_of(input, "Name").unwrap_or_default())?;
    Ok(Output::new(alias_doc(ctx, &function, &a)))
}

pub(crate) fn update_alias(
    l: &Lambda,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Output, AwsError> {
    let function = crate::function_name(ctx, input)?;
    load(l, ctx, &function)?;
    let name = str_of(input, "Name").unwrap_or_default();
    let raw = l
        .state
        .get(ALIASES, &model::alias_key(&ctx.scope(), &function, name))?
        .ok_or_else(|| {
            not_found(format!(
                "Alias not found: {}",
                alias_arn(ctx, &function, name)
            ))
        })?;
    let mut a: AliasRec =
        serde_json::from_slice(&raw).map_err(|e| AwsError::internal(e.to_string()))?;
    if let Some(r) = str_of(input, "RevisionId")
        && r != a.revision_id
    {
        return Err(crate::revision_mismatch("GetFunction/GetAlias"));
    }
    if let Some(v) = str_of(input, "FunctionVersion") {
        a.version = v.to_owned();
    }
    if let Some(d) = str_of(input, "Description") {
        a.description = d.to_owned();
    }
    if let Some(w) = weights_of(input) {
        a.weights = w;
    }
    check_target(l, ctx, &function, &a.version, &a.weights)?;
    a.revision_id = model::revision();
    match put_alias(l, ctx, &function, &a, Some(raw)) {
        Ok(()) => Ok(Output::new(alias_doc(ctx, &function, &a))),
        Err(StoreError::Conflict) => Err(conflict("The alias was changed concurrently; retry.")),
        Err(e) => Err(e.into()),
    }
}

pub(crate) fn delete_alias(
    l: &Lambda,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Output, AwsError> {
    let function = crate::function_name(ctx, input)?;
    load(l, ctx, &function)?;
    // Deleting an alias that does not exist succeeds, as it does on AWS.
    l.state.delete(
        ALIASES,
        &model::alias_key(
            &ctx.scope(),
            &function,
            str_of(input, "Name").unwrap_or_default(),
        ),
    )?;
    Ok(Output::empty())
}

pub(crate) fn list_aliases(
    l: &Lambda,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Output, AwsError> {
    let function = crate::function_name(ctx, input)?;
    load(l, ctx, &function)?;
    let version = str_of(input, "FunctionVersion");
    let all: Vec<Value> = aliases_of(l, ctx, &function)?
        .iter()
        .filter(|a| version.is_none_or(|v| a.version == v))
        .map(|a| alias_doc(ctx, &function, a))
        .collect();
    Ok(crate::page(all, input, "Aliases", 10_000, |v| {
        v["Name"].as_str().unwrap_or_default().to_owned()
    }))
}
