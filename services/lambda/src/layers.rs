//! Layers: PublishLayerVersion, GetLayerVersion(ByArn), ListLayers, ListLayerVersions,
//! DeleteLayerVersion. A function's layers are unpacked in order into what its environment
//! sees as `/opt`.
//!
//! Versions are `{scope}/{name}/{version:010}` in `lambda.layers`; the next number of a
//! layer is `{scope}/{name}` in `lambda.layer_names`, so numbers are never reused.

use crate::functions::take_code;
use crate::{Lambda, invalid_value, not_found, str_of};
use basalt_core::{AwsError, Output, RequestContext};
use basalt_store::{StoreError, WriteOp};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

const LAYERS: &str = "lambda.layers";
const NAMES: &str = "lambda.layer_names";
/// At most five layers per function.
pub const MAX_LAYERS: usize = 5;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LayerRec {
    pub name: String,
    pub version: u64,
    pub description: String,
    pub created: String,
    pub runtimes: Vec<String>,
    pub architectures: Vec<String>,
    pub license: Option<String>,
    pub code_sha256: String,
    pub code_hex: String,
    pub code_size: u64,
}

fn layer_arn(ctx: &RequestContext, name: &str) -> String {
    format!(
        "arn:aws:lambda:{}:{}:layer:{name}",
        ctx.region, ctx.account_id
    )
}

fn version_key(ctx: &RequestContext, name: &str, v: u64) -> String {
    format!("{}/{name}/{v:010}", ctx.scope())
}

/// The name of a `LayerName` parameter (a name or a layer ARN).
fn name_of(ctx: &RequestContext, raw: &str) -> Result<String, AwsError> {
    match raw.rsplit_once(":layer:") {
        Some((prefix, name)) => {
            if !prefix.ends_with(&ctx.account_id) {
                return Err(AwsError::new(
                    403,
                    "AccessDeniedException",
                    "The layer belongs to another account.",
                ));
            }
            Ok(name.to_owned())
        }
        None => Ok(raw.to_owned()),
    }
}

fn doc(ctx: &RequestContext, l: &Lambda, r: &LayerRec, with_content: bool) -> Value {
    let mut v = json!({
        "LayerVersionArn": format!("{}:{}", layer_arn(ctx, &r.name), r.version),
        "Version": r.version,
        "Description": r.description,
        "CreatedDate": r.created,
        "CompatibleRuntimes": r.runtimes,
        "CompatibleArchitectures": r.architectures,
    });
    if let Some(lic) = &r.license {
        v["LicenseInfo"] = json!(lic);
    }
    if with_content {
        v["LayerArn"] = json!(layer_arn(ctx, &r.name));
        v["Content"] = json!({
            "Location": crate::functions::code_location(l, ctx, &r.code_hex),
            "CodeSha256": r.code_sha256,
            "CodeSize": r.code_size,
        });
    }
    v
}

fn strings(input: &Value, name: &str) -> Vec<String> {
    input
        .get(name)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn publish(l: &Lambda, ctx: &RequestContext, input: &Value) -> Result<Output, AwsError> {
    let name = name_of(ctx, str_of(input, "LayerName").unwrap_or_default())?;
    let content = input.get("Content").cloned().unwrap_or(Value::Null);
    let (zip, sha, hex) = take_code(l, ctx, &content)?;
    let runtimes = strings(input, "CompatibleRuntimes");
    if let Some(bad) = runtimes
        .iter()
        .find(|r| !basalt_functions::runtimes::is_known(r))
    {
        return Err(invalid_value(format!("Runtime {bad} is not supported.")));
    }
    let name_key = format!("{}/{name}", ctx.scope());
    for _ in 0..16 {
        let current = l.state.get(NAMES, &name_key)?;
        let next: u64 = current
            .as_deref()
            .and_then(|b| std::str::from_utf8(b).ok())
            .and_then(|s| s.parse().ok())
            .unwrap_or(1);
        let rec = LayerRec {
            name: name.clone(),
            version: next,
            description: str_of(input, "Description").unwrap_or_default().to_owned(),
            created: crate::model::timestamp_now(),
            runtimes: runtimes.clone(),
            architectures: strings(input, "CompatibleArchitectures"),
            license: str_of(input, "LicenseInfo").map(str::to_owned),
            code_sha256: sha.clone(),
            code_hex: hex.clone(),
            code_size: zip.len() as u64,
        };
        let value = serde_json::to_vec(&rec).map_err(|e| AwsError::internal(e.to_string()))?;
        match l.state.batch(&[
            WriteOp::Check {
                table: NAMES.into(),
                key: name_key.clone(),
                expected: current,
            },
            WriteOp::Put {
                table: NAMES.into(),
                key: name_key.clone(),
                value: (next + 1).to_string().into_bytes(),
            },
            WriteOp::Put {
                table: LAYERS.into(),
                key: version_key(ctx, &name, next),
                value,
            },
        ]) {
            Ok(()) => return Ok(Output::new(doc(ctx, l, &rec, true))),
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(crate::conflict(
        "The layer was published concurrently; retry.",
    ))
}

fn load(l: &Lambda, ctx: &RequestContext, name: &str, v: u64) -> Result<LayerRec, AwsError> {
    let raw = l
        .state
        .get(LAYERS, &version_key(ctx, name, v))?
        .ok_or_else(|| not_found("The resource you requested does not exist."))?;
    serde_json::from_slice(&raw).map_err(|e| AwsError::internal(e.to_string()))
}

fn version_of(input: &Value) -> u64 {
    input
        .get("VersionNumber")
        .and_then(|v| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
        .unwrap_or(0)
}

pub(crate) fn get(l: &Lambda, ctx: &RequestContext, input: &Value) -> Result<Output, AwsError> {
    let name = name_of(ctx, str_of(input, "LayerName").unwrap_or_default())?;
    Ok(Output::new(doc(
        ctx,
        l,
        &load(l, ctx, &name, version_of(input))?,
        true,
    )))
}

/// Name and version of a layer version ARN.
pub(crate) fn parse_version_arn(
    ctx: &RequestContext,
    arn: &str,
) -> Result<(String, u64), AwsError> {
    let bad = || {
        invalid_value(format!(
            "1 validation error detected: Value '{arn}' at 'arn' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\\d{{12}}:layer:[a-zA-Z0-9-_]+:[0-9]+"
        ))
    };
    let (head, version) = arn.rsplit_once(':').ok_or_else(bad)?;
    let version: u64 = version.parse().map_err(|_| bad())?;
    let name = name_of(ctx, head)?;
    if !head.contains(":layer:") {
        return Err(bad());
    }
    Ok((name, version))
}

pub(crate) fn get_by_arn(
    l: &Lambda,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Output, AwsError> {
    let (name, v) = parse_version_arn(ctx, str_of(input, "Arn").unwrap_or_default())?;
    Ok(Output::new(doc(ctx, l, &load(l, ctx, &name, v)?, true)))
}

fn all(l: &Lambda, prefix: &str) -> Result<Vec<LayerRec>, AwsError> {
    crate::records(l, LAYERS, prefix)
}

fn compatible(r: &LayerRec, input: &Value) -> bool {
    str_of(input, "CompatibleRuntime").is_none_or(|rt| r.runtimes.iter().any(|x| x == rt))
        && str_of(input, "CompatibleArchitecture")
            .is_none_or(|a| r.architectures.iter().any(|x| x == a))
}

pub(crate) fn list(l: &Lambda, ctx: &RequestContext, input: &Value) -> Result<Output, AwsError> {
    let mut latest: std::collections::BTreeMap<String, LayerRec> = Default::default();
    for r in all(l, &format!("{}/", ctx.scope()))? {
        if compatible(&r, input) {
            latest.insert(r.name.clone(), r);
        }
    }
    let items: Vec<Value> = latest
        .values()
        .map(|r| {
            json!({
                "LayerName": r.name,
                "LayerArn": layer_arn(ctx, &r.name),
                "LatestMatchingVersion": doc(ctx, l, r, false),
            })
        })
        .collect();
    Ok(crate::page(items, input, "Layers", 50, |v| {
        v["LayerName"].as_str().unwrap_or_default().to_owned()
    }))
}

pub(crate) fn list_versions(
    l: &Lambda,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Output, AwsError> {
    let name = name_of(ctx, str_of(input, "LayerName").unwrap_or_default())?;
    let mut items: Vec<Value> = all(l, &format!("{}/{name}/", ctx.scope()))?
        .iter()
        .filter(|r| compatible(r, input))
        .map(|r| doc(ctx, l, r, false))
        .collect();
    // Newest first, as AWS lists them.
    items.reverse();
    Ok(crate::page(items, input, "LayerVersions", 50, |v| {
        v["Version"].to_string()
    }))
}

pub(crate) fn delete(l: &Lambda, ctx: &RequestContext, input: &Value) -> Result<Output, AwsError> {
    let name = name_of(ctx, str_of(input, "LayerName").unwrap_or_default())?;
    // Deleting a version that does not exist succeeds; functions that use it keep their copy.
    l.state
        .delete(LAYERS, &version_key(ctx, &name, version_of(input)))?;
    Ok(Output::empty())
}

/// Checks a function's `Layers` and returns them as stored (version ARNs).
pub(crate) fn check_function_layers(
    l: &Lambda,
    ctx: &RequestContext,
    arns: &[String],
) -> Result<(), AwsError> {
    if arns.len() > MAX_LAYERS {
        return Err(invalid_value(format!(
            "Cannot reference more than {MAX_LAYERS} layers."
        )));
    }
    for arn in arns {
        let (name, v) = parse_version_arn(ctx, arn)?;
        if load(l, ctx, &name, v).is_err() {
            return Err(invalid_value(format!(
                "Layer version {arn} does not exist."
            )));
        }
    }
    Ok(())
}

/// The hex SHA-256 and size of each layer's package, in order.
pub(crate) fn pinned(
    l: &Lambda,
    ctx: &RequestContext,
    arns: &[String],
) -> Result<Vec<(String, u64)>, AwsError> {
    arns.iter()
        .map(|arn| {
            let (name, v) = parse_version_arn(ctx, arn)?;
            let r = load(l, ctx, &name, v)?;
            Ok((r.code_hex, r.code_size))
        })
        .collect()
}
