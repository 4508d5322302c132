//! S3 as executions read it: the distributed Map's ItemReader resources
//! (`arn:aws:states:::s3:getObject` and `arn:aws:states:::s3:listObjectsV2`, answered as
//! `basalt_asl::reader` takes them) and Bedrock's `Input.S3Uri`, read in-process as the
//! execution's account.

use serde_json::{Value, json};

use crate::StepFunctions;
use crate::tasks::{Outcome, failed};

type Failure = (String, String);

fn s3_error(code: &str, message: String) -> Failure {
    (format!("S3.{code}"), message)
}

/// The object at `s3://bucket/key`.
pub fn fetch(sf: &StepFunctions, account: &str, uri: &str) -> Result<Vec<u8>, Failure> {
    let Some((bucket, key)) =
        basalt_core::objects::parse_s3_uri(uri).filter(|(_, k)| !k.is_empty())
    else {
        return Err((
            "States.Runtime".into(),
            format!("'{uri}' is not an S3 object URI"),
        ));
    };
    get(sf, account, bucket, key)
}

fn get(sf: &StepFunctions, account: &str, bucket: &str, key: &str) -> Result<Vec<u8>, Failure> {
    let Some(objects) = sf.objects() else {
        return Err(("States.Runtime".into(), "S3 is not available".into()));
    };
    match objects.read(account, bucket, key) {
        Ok(Some(body)) => Ok(body),
        Ok(None) => Err(s3_error(
            "NoSuchKeyException",
            format!("The specified key does not exist. (Bucket: {bucket}, Key: {key})"),
        )),
        Err(e) => Err(("States.Runtime".into(), e)),
    }
}

/// `s3:getObject` (`{"Body": text}`) or `s3:listObjectsV2` (`{"Contents": [{"Key"}...]}`,
/// every page) with `Bucket` and `Key` / `Prefix`.
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
    let Some(objects) = sf.objects() else {
        return failed("States.Runtime", "S3 is not available");
    };
    match objects.list(account, bucket, prefix) {
        Ok(Some(keys)) => {
            let contents: Vec<Value> = keys.into_iter().map(|k| json!({"Key": k})).collect();
            Outcome::Done(Ok(json!({"Contents": contents})))
        }
        Ok(None) => failed(
            "S3.NoSuchBucketException",
            format!("The specified bucket does not exist (Bucket: {bucket})"),
        ),
        Err(e) => failed("States.Runtime", e),
    }
}
