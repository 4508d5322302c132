//! AddTags, ListTags, DeleteTags: tags by resource ARN (at most 50 per resource).

use crate::Core;
use crate::records::TAGS;
use basalt_core::{AwsError, RequestContext};
use serde_json::{Map, Value, json};

const MAX_TAGS: usize = 50;

fn read(core: &Core, arn: &str) -> Result<Map<String, Value>, AwsError> {
    Ok(core
        .state
        .get(TAGS, arn)?
        .and_then(|raw| serde_json::from_slice(&raw).ok())
        .unwrap_or_default())
}

/// Merges `tags` (a Tags list of Key/Value) into the resource's tags.
pub(crate) fn put(core: &Core, arn: &str, tags: &Value) -> Result<(), AwsError> {
    let Some(list) = tags.as_array().filter(|l| !l.is_empty()) else {
        return Ok(());
    };
    let mut have = read(core, arn)?;
    for t in list {
        let key = t["Key"].as_str().unwrap_or_default();
        if key.is_empty() || key.starts_with("aws:") {
            return Err(AwsError::validation(format!(
                "Tag key '{key}' is invalid: keys must be non-empty and must not start with aws:."
            )));
        }
        have.insert(key.to_owned(), t["Value"].clone());
    }
    if have.len() > MAX_TAGS {
        return Err(crate::limit_exceeded(format!(
            "A resource can have at most {MAX_TAGS} tags."
        )));
    }
    core.state
        .put(TAGS, arn, &serde_json::to_vec(&have).unwrap_or_default())?;
    Ok(())
}

pub(crate) fn forget(core: &Core, arn: &str) {
    let _ = core.state.delete(TAGS, arn);
}

fn arn_of(input: &Value) -> Result<&str, AwsError> {
    input["ResourceArn"]
        .as_str()
        .filter(|a| a.starts_with("arn:aws:sagemaker:"))
        .ok_or_else(|| AwsError::validation("ResourceArn must be a SageMaker ARN."))
}

pub(crate) fn add(core: &Core, _ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let arn = arn_of(input)?;
    put(core, arn, &input["Tags"])?;
    Ok(json!({"Tags": input["Tags"]}))
}

pub(crate) fn list(core: &Core, _ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let arn = arn_of(input)?;
    let tags: Vec<Value> = read(core, arn)?
        .into_iter()
        .map(|(k, v)| json!({"Key": k, "Value": v}))
        .collect();
    let max = input["MaxResults"].as_u64().unwrap_or(50).clamp(1, 100) as usize;
    let (page, next) = basalt_store::paging::page_slice(&tags, input["NextToken"].as_str(), max)?;
    let mut out = json!({"Tags": page});
    if let Some(next) = next {
        out["NextToken"] = next.into();
    }
    Ok(out)
}

pub(crate) fn delete(core: &Core, _ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let arn = arn_of(input)?;
    let mut have = read(core, arn)?;
    for k in input["TagKeys"].as_array().into_iter().flatten() {
        if let Some(k) = k.as_str() {
            have.remove(k);
        }
    }
    core.state
        .put(TAGS, arn, &serde_json::to_vec(&have).unwrap_or_default())?;
    Ok(json!({}))
}
