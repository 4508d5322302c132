//! Records in the state store, one table per resource kind, keyed `{account}/{region}/{name}`,
//! and what listing them has in common (NameContains, creation-time windows, sorting,
//! pagination).

use basalt_core::{AwsError, RequestContext};
use basalt_store::{StateStore, WriteOp};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Value, json};

pub const TRAINING_JOBS: &str = "sagemaker.training-jobs";
pub const PROCESSING_JOBS: &str = "sagemaker.processing-jobs";
pub const TUNING_JOBS: &str = "sagemaker.tuning-jobs";
pub const MODELS: &str = "sagemaker.models";
pub const ENDPOINT_CONFIGS: &str = "sagemaker.endpoint-configs";
pub const ENDPOINTS: &str = "sagemaker.endpoints";
pub const TAGS: &str = "sagemaker.tags";

pub fn key(ctx: &RequestContext, name: &str) -> String {
    format!("{}/{}/{name}", ctx.account_id, ctx.region)
}

pub fn arn(ctx: &RequestContext, kind: &str, name: &str) -> String {
    // SageMaker writes resource names lower-case in ARNs.
    format!(
        "arn:aws:sagemaker:{}:{}:{kind}/{}",
        ctx.region,
        ctx.account_id,
        name.to_lowercase()
    )
}

/// Epoch seconds, as the JSON protocol writes timestamps.
/// Epoch milliseconds in a chrono `format` (UTC).
pub fn format_ms(ms: i64, format: &str) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format(format)
        .to_string()
}

pub fn secs(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

fn corrupt(e: serde_json::Error) -> AwsError {
    AwsError::internal(format!("a stored record is unreadable: {e}"))
}

pub fn load<T: DeserializeOwned>(
    state: &dyn StateStore,
    table: &str,
    ctx: &RequestContext,
    name: &str,
) -> Result<Option<T>, AwsError> {
    match state.get(table, &key(ctx, name))? {
        Some(raw) => Ok(Some(serde_json::from_slice(&raw).map_err(corrupt)?)),
        None => Ok(None),
    }
}

pub fn save<T: Serialize>(
    state: &dyn StateStore,
    table: &str,
    ctx: &RequestContext,
    name: &str,
    record: &T,
) -> Result<(), AwsError> {
    let raw = serde_json::to_vec(record).map_err(|e| AwsError::internal(e.to_string()))?;
    state.put(table, &key(ctx, name), &raw)?;
    Ok(())
}

/// Changes the record `name` with `change`, which may refuse (an error) or leave it as it is
/// (`Ok(false)`); the write happens only if no other writer came between the read and the
/// write, else it starts again. `Ok(None)` when there is no such record.
pub fn update<T: Serialize + DeserializeOwned>(
    state: &dyn StateStore,
    table: &str,
    ctx: &RequestContext,
    name: &str,
    mut change: impl FnMut(&mut T) -> Result<bool, AwsError>,
) -> Result<Option<T>, AwsError> {
    let key = key(ctx, name);
    loop {
        let Some(raw) = state.get(table, &key)? else {
            return Ok(None);
        };
        let mut record: T = serde_json::from_slice(&raw).map_err(corrupt)?;
        if !change(&mut record)? {
            return Ok(Some(record));
        }
        let value = serde_json::to_vec(&record).map_err(|e| AwsError::internal(e.to_string()))?;
        let ops = [
            WriteOp::Check {
                table: table.into(),
                key: key.clone(),
                expected: Some(raw),
            },
            WriteOp::Put {
                table: table.into(),
                key: key.clone(),
                value,
            },
        ];
        match state.batch(&ops) {
            Ok(()) => return Ok(Some(record)),
            Err(basalt_store::StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

pub fn all<T: DeserializeOwned>(
    state: &dyn StateStore,
    table: &str,
    ctx: &RequestContext,
) -> Result<Vec<T>, AwsError> {
    let prefix = format!("{}/{}/", ctx.account_id, ctx.region);
    state
        .scan(table, &prefix, None, usize::MAX)?
        .into_iter()
        .map(|(_, v)| serde_json::from_slice(&v).map_err(corrupt))
        .collect()
}

/// Names: 1-63 characters, letters, digits and hyphens, not starting or ending with a hyphen
/// (`^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}`).
pub fn check_name(field: &str, name: &str) -> Result<(), AwsError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(AwsError::validation(format!(
            "1 validation error detected: Value '{name}' at '{field}' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){{0,62}}"
        )))
    }
}

/// A new job: its record and its work item in one batch, its tags, and this node's worker
/// woken.
#[allow(clippy::too_many_arguments)]
pub(crate) fn create_job<T: Serialize>(
    core: &crate::Core,
    ctx: &RequestContext,
    table: &str,
    queue: &str,
    name: &str,
    job: &T,
    arn: &str,
    tags: &Value,
    wake: &tokio::sync::Notify,
) -> Result<(), AwsError> {
    let key = key(ctx, name);
    core.state.batch(&[
        basalt_store::WriteOp::Put {
            table: table.into(),
            key: key.clone(),
            value: serde_json::to_vec(job).map_err(|e| AwsError::internal(e.to_string()))?,
        },
        basalt_store::WriteOp::Enqueue {
            queue: queue.into(),
            id: key,
            payload: Vec::new(),
            due_ms: core.now_ms(),
        },
    ])?;
    crate::tags::put(core, arn, tags)?;
    wake.notify_one();
    Ok(())
}

/// What a List operation needs of a record.
pub trait Listed {
    fn name(&self) -> &str;
    fn created_ms(&self) -> i64;
    fn modified_ms(&self) -> i64 {
        self.created_ms()
    }
    fn status(&self) -> Option<&str> {
        None
    }
    fn summary(&self) -> Value;
}

/// A List page: filters NameContains, CreationTime/LastModifiedTime Before/After and
/// StatusEquals, sorts by SortBy (Name, CreationTime (default), Status) and SortOrder
/// (Descending by default), pages with MaxResults (1-100, default 10) and NextToken.
pub fn list_page<T: Listed>(
    mut records: Vec<T>,
    input: &Value,
    member: &str,
) -> Result<Value, AwsError> {
    let t = |k: &str| input[k].as_f64();
    records.retain(|r| {
        input["NameContains"]
            .as_str()
            .is_none_or(|n| r.name().to_lowercase().contains(&n.to_lowercase()))
            && t("CreationTimeAfter").is_none_or(|a| secs(r.created_ms()) > a)
            && t("CreationTimeBefore").is_none_or(|b| secs(r.created_ms()) < b)
            && t("LastModifiedTimeAfter").is_none_or(|a| secs(r.modified_ms()) > a)
            && t("LastModifiedTimeBefore").is_none_or(|b| secs(r.modified_ms()) < b)
            && input["StatusEquals"]
                .as_str()
                .is_none_or(|s| r.status() == Some(s))
    });
    match input["SortBy"].as_str() {
        Some("Name") => records.sort_by(|a, b| a.name().cmp(b.name())),
        Some("Status") => records.sort_by(|a, b| a.status().cmp(&b.status())),
        _ => records.sort_by_key(|r| (r.created_ms(), r.name().to_owned())),
    }
    if input["SortOrder"].as_str() != Some("Ascending") {
        records.reverse();
    }
    let max = input["MaxResults"].as_u64().unwrap_or(10).clamp(1, 100) as usize;
    let (page, next) =
        basalt_store::paging::page_slice(&records, input["NextToken"].as_str(), max)?;
    let mut out = json!({ member: page.iter().map(Listed::summary).collect::<Vec<_>>() });
    if let Some(next) = next {
        out["NextToken"] = next.into();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_sagemakers_pattern() {
        for ok in ["a", "fraud-detection-prod", "A1-b2", &"x".repeat(63)] {
            assert!(check_name("TrainingJobName", ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "a-", "a_b", "a.b", &"x".repeat(64)] {
            let e = check_name("TrainingJobName", bad).unwrap_err();
            assert_eq!(e.code, "ValidationException", "{bad}");
        }
    }
}
