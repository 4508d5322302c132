//! Custom transformations: a data source's Lambda function that rewrites a document's chunks
//! after chunking (`vectorIngestionConfiguration.customTransformationConfiguration`, step
//! `POST_CHUNKING`), under Bedrock's file contract:
//!
//! 1. the chunks are written as one content batch, `{"fileContents": [{"contentBody",
//!    "contentType", "contentMetadata"}]}`, under the data source's intermediate S3 location;
//! 2. the function is invoked with `{"version": "1.0", "knowledgeBaseId", "dataSourceId",
//!    "ingestionJobId", "bucketName", "priorTask": "CHUNKING", "inputFiles":
//!    [{"originalFileLocation": {"type": "S3", "s3_location": {"uri"}}, "fileMetadata",
//!    "contentBatches": [{"key"}]}]}`;
//! 3. it answers `{"outputFiles": [...]}` of the same shape, naming the batches it wrote to
//!    the same bucket; their `fileContents` are the document's chunks from then on, each
//!    with the file's metadata overlaid by its `fileMetadata` and then by the chunk's own
//!    `contentMetadata` (chunk-level metadata wins, as Bedrock's guide says).

use crate::KnowledgeBases;
use crate::model::DsRec;
use basalt_core::RequestContext;
use base64::Engine;
use serde_json::{Map, Value, json};

/// A data source's transformation, for one ingestion job (or direct ingestion).
pub struct Transform {
    /// `intermediateStorage.s3Location.uri`.
    pub intermediate: String,
    pub lambda: String,
    pub job: String,
}

impl Transform {
    /// The transformation a data source configures, if any.
    pub fn of(ds: &DsRec, job: &str) -> Option<Transform> {
        let c = &ds.ingestion["customTransformationConfiguration"];
        let intermediate = c["intermediateStorage"]["s3Location"]["uri"].as_str()?;
        let lambda =
            c["transformations"][0]["transformationFunction"]["transformationLambdaConfiguration"]
                ["lambdaArn"]
                .as_str()?;
        Some(Transform {
            intermediate: intermediate.to_owned(),
            lambda: lambda.to_owned(),
            job: job.to_owned(),
        })
    }
}

/// What CreateDataSource and UpdateDataSource accept as a custom transformation.
pub fn check(config: &Value) -> Result<(), String> {
    if config.is_null() {
        return Ok(());
    }
    let uri = config["intermediateStorage"]["s3Location"]["uri"]
        .as_str()
        .unwrap_or_default();
    if basalt_core::objects::parse_s3_uri(uri).is_none() {
        return Err(format!(
            "intermediateStorage.s3Location.uri {uri:?} is not an S3 URI (s3://bucket/prefix)."
        ));
    }
    let steps = config["transformations"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let [step] = steps else {
        return Err("transformations must hold exactly one transformation.".into());
    };
    if step["stepToApply"].as_str() != Some("POST_CHUNKING") {
        return Err("stepToApply must be POST_CHUNKING.".into());
    }
    if step["transformationFunction"]["transformationLambdaConfiguration"]["lambdaArn"]
        .as_str()
        .is_none()
    {
        return Err("The transformation needs transformationLambdaConfiguration.lambdaArn.".into());
    }
    Ok(())
}

/// One chunk as the transformation sees it: its text and its metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Piece {
    pub text: String,
    pub metadata: Map<String, Value>,
}

/// Who the chunks are for.
pub struct Source<'a> {
    pub kb: &'a str,
    pub ds: &'a str,
    /// The document's URI, as the chunks cite it.
    pub uri: &'a str,
    /// A stable name for the document among the job's (its hash).
    pub name: &'a str,
}

/// Runs the data source's function on a document's chunks; the error is why the document
/// failed.
pub async fn apply(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    t: &Transform,
    source: &Source<'_>,
    file_metadata: &Map<String, Value>,
    pieces: Vec<Piece>,
) -> Result<Vec<Piece>, String> {
    let (bucket, prefix) = basalt_core::objects::parse_s3_uri(&t.intermediate)
        .ok_or_else(|| format!("{} is not an S3 URI", t.intermediate))?;
    let prefix = if prefix.is_empty() || prefix.ends_with('/') {
        prefix.to_owned()
    } else {
        format!("{prefix}/")
    };
    let input_key = format!(
        "{prefix}{}/{}/{}/{}/input/batch-0.json",
        source.kb, source.ds, t.job, source.name
    );
    let contents: Vec<Value> = pieces
        .iter()
        .map(|p| json!({"contentBody": p.text, "contentType": "string", "contentMetadata": {}}))
        .collect();
    let written = k
        .objects
        .write(
            &ctx.account_id,
            bucket,
            &input_key,
            json!({"fileContents": contents}).to_string().into_bytes(),
        )
        .await?;
    if !written {
        return Err(format!(
            "The intermediate S3 bucket {bucket} of the custom transformation does not exist."
        ));
    }
    let event = json!({
        "version": "1.0",
        "knowledgeBaseId": source.kb,
        "dataSourceId": source.ds,
        "ingestionJobId": t.job,
        "bucketName": bucket,
        "priorTask": "CHUNKING",
        "inputFiles": [{
            "originalFileLocation": {"type": "S3", "s3_location": {"uri": source.uri}},
            "fileMetadata": file_metadata,
            "contentBatches": [{"key": input_key}],
        }],
    });
    let answer = invoke(k, ctx, &t.lambda, &event).await?;
    let files = answer["outputFiles"].as_array().ok_or_else(|| {
        format!(
            "The custom transformation function {} answered without outputFiles.",
            t.lambda
        )
    })?;
    let mut out = Vec::new();
    for file in files {
        let mut base = file_metadata.clone();
        if let Some(m) = file["fileMetadata"].as_object() {
            base.extend(m.clone());
        }
        for batch in file["contentBatches"].as_array().into_iter().flatten() {
            let key = batch["key"].as_str().unwrap_or_default();
            let raw = k
                .objects
                .read(&ctx.account_id, bucket, key)?
                .ok_or_else(|| {
                    format!(
                        "The custom transformation's output s3://{bucket}/{key} does not exist."
                    )
                })?;
            let doc: Value = serde_json::from_slice(&raw).map_err(|e| {
                format!("The custom transformation's output s3://{bucket}/{key} is not JSON: {e}")
            })?;
            for item in doc["fileContents"].as_array().into_iter().flatten() {
                let Some(text) = item["contentBody"]
                    .as_str()
                    .filter(|t| !t.trim().is_empty())
                else {
                    continue;
                };
                let mut metadata = base.clone();
                if let Some(m) = item["contentMetadata"].as_object() {
                    metadata.extend(m.clone());
                }
                out.push(Piece {
                    text: text.to_owned(),
                    metadata,
                });
            }
        }
    }
    Ok(out)
}

/// Invokes the function synchronously; its answer as JSON, or why it failed.
async fn invoke(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    arn: &str,
    event: &Value,
) -> Result<Value, String> {
    let payload = base64::engine::general_purpose::STANDARD.encode(event.to_string());
    let out = k
        .registry()
        .map_err(|e| e.message)?
        .call(
            ctx,
            "lambda",
            "Invoke",
            json!({"FunctionName": arn, "Payload": payload}),
        )
        .await
        .map_err(|e| {
            format!(
                "The custom transformation function {arn} could not be invoked: {}: {}",
                e.code, e.message
            )
        })?
        .body;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(out["Payload"].as_str().unwrap_or_default())
        .unwrap_or_default();
    if out.get("FunctionError").is_some_and(|v| !v.is_null()) {
        return Err(format!(
            "The custom transformation function {arn} failed: {}",
            String::from_utf8_lossy(&raw)
        ));
    }
    serde_json::from_slice(&raw)
        .map_err(|e| format!("The custom transformation function {arn} did not answer JSON: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(uri: &str, step: &str, lambda: Option<&str>) -> Value {
        let mut function = json!({});
        if let Some(arn) = lambda {
            function = json!({"transformationLambdaConfiguration": {"lambdaArn": arn}});
        }
        json!({"intermediateStorage": {"s3Location": {"uri": uri}},
               "transformations": [{"stepToApply": step, "transformationFunction": function}]})
    }

    #[test]
    fn check_takes_one_post_chunking_lambda_and_an_s3_location() {
        let arn = "arn:aws:lambda:us-east-1:000000000000:function:f";
        assert!(check(&Value::Null).is_ok());
        assert!(check(&config("s3://b/work", "POST_CHUNKING", Some(arn))).is_ok());
        assert!(check(&config("b/work", "POST_CHUNKING", Some(arn))).is_err());
        assert!(check(&config("s3://b", "PRE_CHUNKING", Some(arn))).is_err());
        assert!(check(&config("s3://b", "POST_CHUNKING", None)).is_err());
        let mut two = config("s3://b", "POST_CHUNKING", Some(arn));
        let step = two["transformations"][0].clone();
        two["transformations"] = json!([step.clone(), step]);
        assert!(check(&two).is_err());
    }
}
