//! Batch transform: CreateTransformJob, DescribeTransformJob, ListTransformJobs,
//! StopTransformJob.
//!
//! A job is a record and an item on the leases (queue [`QUEUE`]). The node that claims it
//! loads the model as an endpoint would (`serving.rs`, with `SAGEMAKER_BATCH=true`), reads
//! every input object (an S3 prefix or a manifest), splits it into records (SplitType `Line`,
//! `RecordIO`, `TFRecord`, or `None` for the whole object), sends them in payloads of at most
//! MaxPayloadInMB (BatchStrategy `MultiRecord`) or one by one (`SingleRecord`), and writes
//! what the model answered, in the input's order, to `{S3OutputPath}/{input key}.out`
//! (AssembleWith `Line` puts each answer on its own line). A job is redone from its first
//! input object if its node dies.
//!
//! DataProcessing (InputFilter, JoinSource, OutputFilter) is not applied yet: a job that asks
//! for it is refused, rather than run differently.

use crate::endpoints::Variant;
use crate::records::{self, Listed, secs};
use crate::serving::Owner;
use crate::{Core, in_use};
use basalt_core::{AwsError, RequestContext};
use basalt_store::{Claim, WriteOp};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::sync::Arc;

pub const QUEUE: &str = "sagemaker.transform";
pub const TABLE: &str = "sagemaker.transform-jobs";
/// Model owners of transform jobs are named `transform-job/{name}`.
pub const OWNER_PREFIX: &str = "transform-job/";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Job {
    name: String,
    arn: String,
    account: String,
    region: String,
    request: Map<String, Value>,
    model: crate::models::Model,
    status: String,
    failure: Option<String>,
    created_ms: i64,
    modified_ms: i64,
    start_ms: Option<i64>,
    end_ms: Option<i64>,
}

impl Job {
    fn describe(&self) -> Value {
        let mut v = Value::Object(self.request.clone());
        v["TransformJobName"] = self.name.clone().into();
        v["TransformJobArn"] = self.arn.clone().into();
        v["TransformJobStatus"] = self.status.clone().into();
        v["CreationTime"] = secs(self.created_ms).into();
        if let Some(f) = &self.failure {
            v["FailureReason"] = f.clone().into();
        }
        if let Some(s) = self.start_ms {
            v["TransformStartTime"] = secs(s).into();
        }
        if let Some(e) = self.end_ms {
            v["TransformEndTime"] = secs(e).into();
        }
        v
    }

    fn owner(&self) -> Owner {
        Owner {
            account: self.account.clone(),
            region: self.region.clone(),
            name: format!("{OWNER_PREFIX}{}", self.name),
            log_group: "/aws/sagemaker/TransformJobs".into(),
            batch: true,
        }
    }

    fn variant(&self) -> Variant {
        Variant {
            name: "transform".into(),
            model: self.model.clone(),
            spec: json!({
                "InstanceType": self.request.get("TransformResources").unwrap_or(&Value::Null)["InstanceType"],
                "InitialInstanceCount": self.request.get("TransformResources").unwrap_or(&Value::Null)["InstanceCount"],
            }),
            shadow: false,
        }
    }
}

impl Listed for Job {
    fn name(&self) -> &str {
        &self.name
    }
    fn created_ms(&self) -> i64 {
        self.created_ms
    }
    fn modified_ms(&self) -> i64 {
        self.modified_ms
    }
    fn status(&self) -> Option<&str> {
        Some(&self.status)
    }
    fn summary(&self) -> Value {
        let mut v = json!({
            "TransformJobName": self.name, "TransformJobArn": self.arn,
            "CreationTime": secs(self.created_ms), "LastModifiedTime": secs(self.modified_ms),
            "TransformJobStatus": self.status,
        });
        if let Some(e) = self.end_ms {
            v["TransformEndTime"] = secs(e).into();
        }
        if let Some(f) = &self.failure {
            v["FailureReason"] = f.clone().into();
        }
        v
    }
}

fn not_found(name: &str) -> AwsError {
    AwsError::new(
        400,
        "ResourceNotFound",
        format!("Could not find requested job with name {name}"),
    )
}

fn load(core: &Core, ctx: &RequestContext, name: &str) -> Result<Job, AwsError> {
    records::load(core.state.as_ref(), TABLE, ctx, name)?.ok_or_else(|| not_found(name))
}

pub(crate) fn create(core: &Core, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let name = input["TransformJobName"].as_str().unwrap_or_default();
    records::check_name("transformJobName", name)?;
    let arn = records::arn(ctx, "transform-job", name);
    if records::load::<Job>(core.state.as_ref(), TABLE, ctx, name)?.is_some() {
        return Err(in_use(format!(
            "Job name must be unique within an AWS account and region, and a job with this name already exists ({arn})"
        )));
    }
    let model = crate::models::load(core, ctx, input["ModelName"].as_str().unwrap_or_default())?;
    let source = &input["TransformInput"]["DataSource"]["S3DataSource"];
    let uri = source["S3Uri"].as_str().unwrap_or_default();
    if basalt_core::objects::parse_s3_uri(uri).is_none() {
        return Err(AwsError::validation(format!(
            "TransformInput.DataSource.S3DataSource.S3Uri {uri:?} is not an S3 URI."
        )));
    }
    let out = input["TransformOutput"]["S3OutputPath"]
        .as_str()
        .unwrap_or_default();
    if basalt_core::objects::parse_s3_uri(out).is_none() {
        return Err(AwsError::validation(format!(
            "TransformOutput.S3OutputPath {out:?} is not an S3 URI."
        )));
    }
    let processing = &input["DataProcessing"];
    if ["InputFilter", "OutputFilter"]
        .iter()
        .any(|k| processing[k].as_str().is_some_and(|f| f != "$"))
        || processing["JoinSource"]
            .as_str()
            .is_some_and(|j| j != "None")
    {
        return Err(AwsError::validation(
            "Basalt does not apply DataProcessing (InputFilter, JoinSource, OutputFilter) yet.",
        ));
    }
    if input["TransformInput"]["CompressionType"]
        .as_str()
        .is_some_and(|c| c != "None")
    {
        return Err(AwsError::validation(
            "Basalt reads uncompressed transform input only (CompressionType None).",
        ));
    }
    let mut request = input.as_object().cloned().unwrap_or_default();
    request.remove("Tags");
    request.remove("TransformJobName");
    request
        .entry("BatchStrategy")
        .or_insert_with(|| "MultiRecord".into());
    request.entry("MaxPayloadInMB").or_insert_with(|| 6.into());
    request
        .entry("MaxConcurrentTransforms")
        .or_insert_with(|| 1.into());
    let now = core.now_ms();
    let job = Job {
        name: name.to_owned(),
        arn: arn.clone(),
        account: ctx.account_id.clone(),
        region: ctx.region.clone(),
        request,
        model,
        status: "InProgress".into(),
        failure: None,
        created_ms: now,
        modified_ms: now,
        start_ms: None,
        end_ms: None,
    };
    records::create_job(
        core,
        ctx,
        TABLE,
        QUEUE,
        name,
        &job,
        &arn,
        &input["Tags"],
        &core.wake_transform,
    )?;
    Ok(json!({"TransformJobArn": arn}))
}

pub(crate) fn describe(
    core: &Core,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    Ok(load(
        core,
        ctx,
        input["TransformJobName"].as_str().unwrap_or_default(),
    )?
    .describe())
}

pub(crate) fn list(core: &Core, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let all: Vec<Job> = records::all(core.state.as_ref(), TABLE, ctx)?;
    records::list_page(all, input, "TransformJobSummaries")
}

pub(crate) fn stop(core: &Core, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let name = input["TransformJobName"].as_str().unwrap_or_default();
    let now = core.now_ms();
    records::update(core.state.as_ref(), TABLE, ctx, name, |job: &mut Job| {
        // Stopping a job that has ended changes nothing, as on AWS.
        if job.status != "InProgress" {
            return Ok(false);
        }
        job.status = "Stopping".into();
        job.modified_ms = now;
        Ok(true)
    })?
    .ok_or_else(|| not_found(name))?;
    Ok(json!({}))
}

pub(crate) fn start_worker(core: Arc<Core>) {
    crate::spawn_each(
        &core,
        QUEUE,
        crate::job_lease_ms(),
        &core.wake_transform,
        |core, claim| async move { run(&core, claim).await },
    );
}

fn finish(core: &Core, claim: &Claim, job: &mut Job, status: &str, failure: Option<String>) {
    let now = core.now_ms();
    job.status = status.into();
    job.failure = failure;
    job.modified_ms = now;
    job.end_ms = Some(now);
    let ops = [WriteOp::Put {
        table: TABLE.into(),
        key: claim.id.clone(),
        value: serde_json::to_vec(job).unwrap_or_default(),
    }];
    if let Err(e) = core.state.complete(claim, &ops) {
        tracing::warn!(job = %job.name, "could not record the end of a transform job: {e}");
    }
}

async fn run(core: &Arc<Core>, mut claim: Claim) {
    let read = |core: &Core, id: &str| -> Option<Job> {
        serde_json::from_slice(&core.state.get(TABLE, id).ok()??).ok()
    };
    let Some(mut job) = read(core, &claim.id) else {
        return drop(core.state.complete(&claim, &[]));
    };
    match job.status.as_str() {
        "InProgress" => {}
        "Stopping" => return finish(core, &claim, &mut job, "Stopped", None),
        _ => return drop(core.state.complete(&claim, &[])),
    }
    job.start_ms = Some(core.now_ms());
    let owner = job.owner();
    let result = transform(core, &mut claim, &job, &owner).await;
    core.serving
        .forget(&owner.account, &owner.region, &owner.name);
    let Some(mut current) = read(core, &claim.id) else {
        return drop(core.state.complete(&claim, &[]));
    };
    current.start_ms = job.start_ms;
    match result {
        Ok(true) => finish(core, &claim, &mut current, "Completed", None),
        Ok(false) => finish(core, &claim, &mut current, "Stopped", None),
        Err(reason) => finish(core, &claim, &mut current, "Failed", Some(reason)),
    }
}

/// Splits an object into records.
fn records_of(data: &[u8], split: &str) -> Result<Vec<Vec<u8>>, String> {
    match split {
        "Line" => Ok(data
            .split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
            .map(<[u8]>::to_vec)
            .collect()),
        // Each record as framed, its header included (the container reads RecordIO).
        "RecordIO" => basalt_recordio::read(data)
            .map(|records| records.into_iter().map(|r| r.framed.to_vec()).collect())
            .map_err(|e| format!("the input is not RecordIO: {e}")),
        "TFRecord" => {
            // length (u64), its CRC (u32), the data, the data's CRC (u32).
            let mut out = Vec::new();
            let mut at = 0;
            while at + 12 <= data.len() {
                let len =
                    u64::from_le_bytes(data[at..at + 8].try_into().expect("8 bytes")) as usize;
                let end = at + 12 + len + 4;
                if end > data.len() {
                    return Err("a TFRecord runs past the end of the object".into());
                }
                out.push(data[at..end].to_vec());
                at = end;
            }
            Ok(out)
        }
        _ => Ok(vec![data.to_vec()]),
    }
}

/// Runs the job. `Ok(false)`: it was stopped.
async fn transform(
    core: &Arc<Core>,
    claim: &mut Claim,
    job: &Job,
    owner: &Owner,
) -> Result<bool, String> {
    let served = core
        .serving
        .load(core, owner, 0, &job.variant())
        .await
        .map_err(|e| format!("ClientError: {e}"))?;
    let input = &job.request.get("TransformInput").unwrap_or(&Value::Null);
    let source = &input["DataSource"]["S3DataSource"];
    let uri = source["S3Uri"].as_str().unwrap_or_default();
    let data_type = source["S3DataType"].as_str().unwrap_or("S3Prefix");
    let (bucket, keys) = crate::inputs::objects_of(
        core,
        &job.account,
        data_type,
        uri,
        crate::inputs::Placement::LastSegment,
    )?;
    let bucket = bucket.as_str();
    let out = job.request.get("TransformOutput").unwrap_or(&Value::Null)["S3OutputPath"]
        .as_str()
        .unwrap_or_default();
    let (out_bucket, out_prefix) = basalt_core::objects::parse_s3_uri(out)
        .ok_or("ClientError: the output is not an S3 URI")?;
    let out_prefix = out_prefix.trim_end_matches('/');
    let split = input["SplitType"].as_str().unwrap_or("None");
    let single = job
        .request
        .get("BatchStrategy")
        .unwrap_or(&Value::Null)
        .as_str()
        == Some("SingleRecord");
    let max_payload = (job
        .request
        .get("MaxPayloadInMB")
        .unwrap_or(&Value::Null)
        .as_u64()
        .unwrap_or(6)
        .clamp(1, 100) as usize)
        << 20;
    let content_type = input["ContentType"].as_str();
    let accept = job.request.get("TransformOutput").unwrap_or(&Value::Null)["Accept"].as_str();
    let by_line = job.request.get("TransformOutput").unwrap_or(&Value::Null)["AssembleWith"]
        .as_str()
        == Some("Line");
    for (key, rel) in keys {
        let data = core
            .objects
            .read(&job.account, bucket, &key)?
            .ok_or_else(|| format!("ClientError: s3://{bucket}/{key} disappeared"))?;
        let records = records_of(&data, split)
            .map_err(|e| format!("ClientError: s3://{bucket}/{key}: {e}"))?;
        let separator: &[u8] = if split == "Line" { b"\n" } else { b"" };
        // Payloads: whole records, as many as fit (MultiRecord) or one each.
        let mut payloads: Vec<Vec<u8>> = Vec::new();
        for r in records {
            if r.len() > max_payload {
                return Err(format!(
                    "ClientError: a record of s3://{bucket}/{key} is larger than MaxPayloadInMB"
                ));
            }
            match payloads.last_mut() {
                Some(p) if !single && p.len() + separator.len() + r.len() <= max_payload => {
                    p.extend_from_slice(separator);
                    p.extend_from_slice(&r);
                }
                _ => payloads.push(r),
            }
        }
        let mut output = Vec::new();
        for payload in payloads {
            let mut body = payload;
            let mut kind = content_type.map(str::to_owned);
            let last = served.containers.len().saturating_sub(1);
            for (i, c) in served.containers.iter().enumerate() {
                let a = c
                    .invoke(
                        &body,
                        kind.as_deref(),
                        if i == last { accept } else { None },
                    )
                    .await;
                if a.status >= 400 {
                    return Err(format!(
                        "ClientError: the model answered {} for s3://{bucket}/{key}: {}",
                        a.status, a.message
                    ));
                }
                body = a.body;
                kind = Some(a.content_type);
            }
            output.extend_from_slice(&body);
            if by_line && !body.ends_with(b"\n") {
                output.push(b'\n');
            }
            // Notice a stop, and keep the lease.
            let stored: Option<Job> = core
                .state
                .get(TABLE, &claim.id)
                .ok()
                .flatten()
                .and_then(|raw| serde_json::from_slice(&raw).ok());
            if stored.is_none_or(|j| j.status != "InProgress") {
                return Ok(false);
            }
            match core
                .state
                .renew(claim, core.now_ms(), crate::job_lease_ms())
            {
                Ok(expires) => claim.expires_ms = expires,
                Err(_) => return Ok(false),
            }
        }
        let target = if out_prefix.is_empty() {
            format!("{rel}.out")
        } else {
            format!("{out_prefix}/{rel}.out")
        };
        if !core
            .objects
            .write(&job.account, out_bucket, &target, output)
            .await?
        {
            return Err(format!(
                "ClientError: the output bucket {out_bucket} does not exist"
            ));
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_split_into_records() {
        assert_eq!(
            records_of(b"1,2\r\n\n3,4\n", "Line").unwrap(),
            vec![b"1,2".to_vec(), b"3,4".to_vec()]
        );
        assert_eq!(
            records_of(b"whole", "None").unwrap(),
            vec![b"whole".to_vec()]
        );
        let mut rio = Vec::new();
        for payload in [&b"abc"[..], b"defgh"] {
            rio.extend_from_slice(&0xced7_230au32.to_le_bytes());
            rio.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            rio.extend_from_slice(payload);
            rio.resize(rio.len() + (4 - payload.len() % 4) % 4, 0);
        }
        let split = records_of(&rio, "RecordIO").unwrap();
        assert_eq!(split.len(), 2);
        // Each record keeps its padding: records joined into one payload are RecordIO again.
        assert_eq!(&split[1][8..13], b"defgh");
        assert!(split.iter().all(|r| r.len() % 4 == 0));
        assert_eq!(split.concat(), rio);
        assert!(records_of(b"\0\0\0\0\0\0\0\0", "RecordIO").is_err());
    }
}
