//! S3 as executions use it: the distributed Map's ItemReader resources
//! (`arn:aws:states:::s3:getObject` and `arn:aws:states:::s3:listObjectsV2`, answered as
//! `basalt_asl::reader` takes them), its ResultWriter (`arn:aws:states:::s3:putObject`) and
//! Bedrock's `Input.S3Uri`, in-process as the execution's account.

use std::sync::Arc;

use basalt_core::objects::InProcessS3;
use serde_json::{Value, json};

use crate::StepFunctions;
use crate::tasks::{Outcome, failed};

type Failure = (String, String);

fn s3_error(code: &str, message: String) -> Failure {
    (format!("S3.{code}"), message)
}

/// `s3://bucket/key` as (bucket, key); an object's, not a bucket's.
pub fn object_uri(uri: &str) -> Result<(&str, &str), Failure> {
    basalt_core::objects::parse_s3_uri(uri)
        .filter(|(_, k)| !k.is_empty())
        .ok_or_else(|| {
            (
                "States.Runtime".into(),
                format!("'{uri}' is not an S3 object URI"),
            )
        })
}

/// The object at `s3://bucket/key`.
pub fn fetch(sf: &StepFunctions, account: &str, uri: &str) -> Result<Vec<u8>, Failure> {
    let (bucket, key) = object_uri(uri)?;
    get(sf, account, bucket, key)
}

fn objects(sf: &StepFunctions) -> Result<&Arc<dyn InProcessS3>, Failure> {
    sf.objects()
        .ok_or_else(|| ("States.Runtime".into(), "S3 is not available".into()))
}

fn get(sf: &StepFunctions, account: &str, bucket: &str, key: &str) -> Result<Vec<u8>, Failure> {
    match objects(sf)?.read(account, bucket, key) {
        Ok(Some(body)) => Ok(body),
        Ok(None) => Err(s3_error(
            "NoSuchKeyException",
            format!("The specified key does not exist. (Bucket: {bucket}, Key: {key})"),
        )),
        Err(e) => Err(("States.Runtime".into(), e)),
    }
}

/// `s3:getObject` (`{"Body": text}`) or `s3:listObjectsV2` (`{"Contents": [{"Key", "Size",
/// "Etag", "LastModified", "StorageClass"}...]}`, every page) with `Bucket` and `Key` /
/// `Prefix`.
pub fn read(sf: &StepFunctions, account: &str, integration: &str, params: &Value) -> Outcome {
    let Some(bucket) = params.get("Bucket").and_then(Value::as_str) else {
        return failed("States.Runtime", "The field 'Bucket' is required");
    };
    if integration == "s3:getObject" {
        let Some(key) = params.get("Key").and_then(Value::as_str) else {
            return failed("States.Runtime", "The field 'Key' is required");
        };
        return match get(sf, account, bucket, key) {
            Ok(body) => Outcome::Done(Ok(
                json!({"Body": String::from_utf8_lossy(&body).into_owned()}),
            )),
            Err((error, cause)) => failed(error, cause),
        };
    }
    let prefix = params.get("Prefix").and_then(Value::as_str).unwrap_or("");
    let objects = match objects(sf) {
        Ok(o) => o,
        Err((error, cause)) => return failed(error, cause),
    };
    match objects.list_objects(account, bucket, prefix) {
        Ok(Some(listed)) => {
            // The members ListObjectsV2 gives each object, as the reader's items.
            let contents: Vec<Value> = listed
                .into_iter()
                .map(|o| {
                    json!({
                        "Key": o.key,
                        "Size": o.size,
                        "Etag": format!("\"{}\"", o.etag),
                        "LastModified": o.modified_ms / 1000,
                        "StorageClass": "STANDARD",
                    })
                })
                .collect();
            Outcome::Done(Ok(json!({"Contents": contents})))
        }
        Ok(None) => failed(
            "S3.NoSuchBucketException",
            format!("The specified bucket does not exist (Bucket: {bucket})"),
        ),
        Err(e) => failed("States.Runtime", e),
    }
}

/// The ResultWriter (`s3:putObject`): the Map Run's results under
/// `{Prefix}/{map run id}/` as `SUCCEEDED_0.json` and `FAILED_0.json` (JSON or JSON Lines,
/// per `WriterConfig.OutputType`) and `manifest.json` listing them; the state's result is
/// `{"MapRunArn", "ResultWriterDetails": {"Bucket", "Key"}}`, the manifest's key.
///
/// Iterations run inside the execution, not as child executions, so an entry carries what
/// exists of one: `Status`, `Output` (or `Error` and `Cause`); `Transformation` COMPACT and
/// FLATTEN write the outputs alone, as AWS does.
pub async fn write_results(sf: &StepFunctions, account: &str, params: &Value) -> Outcome {
    let Some(bucket) = params.get("Bucket").and_then(Value::as_str) else {
        return failed(
            "States.ResultWriterFailed",
            "The field 'Bucket' is required",
        );
    };
    let objects = match objects(sf) {
        Ok(o) => o,
        Err((_, cause)) => return failed("States.ResultWriterFailed", cause),
    };
    let prefix = params.get("Prefix").and_then(Value::as_str).unwrap_or("");
    let run_arn = params
        .get("MapRunArn")
        .and_then(Value::as_str)
        .unwrap_or("");
    let run_id = run_arn.rsplit(':').next().unwrap_or("run");
    let config = params.get("WriterConfig").cloned().unwrap_or(Value::Null);
    let transformation = config["Transformation"].as_str().unwrap_or("NONE");
    let jsonl = config["OutputType"].as_str() == Some("JSONL");
    let failed_slots: Vec<usize> = params["FailedSlots"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_u64().map(|v| v as usize))
        .collect();
    let results = params["Results"].as_array().cloned().unwrap_or_default();
    let (mut succeeded, mut failed_entries) = (Vec::new(), Vec::new());
    for (slot, r) in results.into_iter().enumerate() {
        if failed_slots.contains(&slot) {
            let mut entry = json!({"Status": "FAILED"});
            entry["Error"] = r["Error"].clone();
            entry["Cause"] = r["Cause"].clone();
            failed_entries.push(entry);
            continue;
        }
        match (transformation, r) {
            ("FLATTEN", Value::Array(items)) => succeeded.extend(items),
            ("COMPACT" | "FLATTEN", r) => succeeded.push(r),
            (_, r) => succeeded.push(json!({
                "Status": "SUCCEEDED",
                "Output": r.to_string(),
                "OutputDetails": {"Included": true},
            })),
        }
    }
    let base = if prefix.is_empty() {
        run_id.to_owned()
    } else {
        format!("{}/{run_id}", prefix.trim_end_matches('/'))
    };
    let mut files = json!({"FAILED": [], "PENDING": [], "SUCCEEDED": []});
    for (status, entries) in [("SUCCEEDED", succeeded), ("FAILED", failed_entries)] {
        if entries.is_empty() {
            continue;
        }
        let body = if jsonl {
            entries
                .iter()
                .map(Value::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        } else {
            Value::Array(entries).to_string()
        };
        let key = format!("{base}/{status}_0.json");
        let size = body.len();
        match objects
            .write(account, bucket, &key, body.into_bytes())
            .await
        {
            Ok(true) => files[status] = json!([{"Key": key, "Size": size}]),
            Ok(false) => return no_bucket(bucket),
            Err(e) => return failed("States.ResultWriterFailed", e),
        }
    }
    let manifest = json!({
        "DestinationBucket": bucket,
        "MapRunArn": run_arn,
        "ResultFiles": files,
    });
    let key = format!("{base}/manifest.json");
    match objects
        .write(account, bucket, &key, manifest.to_string().into_bytes())
        .await
    {
        Ok(true) => Outcome::Done(Ok(json!({
            "MapRunArn": run_arn,
            "ResultWriterDetails": {"Bucket": bucket, "Key": key},
        }))),
        Ok(false) => no_bucket(bucket),
        Err(e) => failed("States.ResultWriterFailed", e),
    }
}

fn no_bucket(bucket: &str) -> Outcome {
    failed(
        "States.ResultWriterFailed",
        format!("The specified bucket does not exist (Bucket: {bucket})"),
    )
}

/// Writes `body` to the object `s3://bucket/key` (Bedrock's `Output.S3Uri`).
pub async fn store(
    sf: &StepFunctions,
    account: &str,
    uri: &str,
    body: Vec<u8>,
) -> Result<(), Failure> {
    let (bucket, key) = object_uri(uri)?;
    match objects(sf)?.write(account, bucket, key, body).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(s3_error(
            "NoSuchBucketException",
            format!("The specified bucket does not exist (Bucket: {bucket})"),
        )),
        Err(e) => Err(("States.Runtime".into(), e)),
    }
}
