//! Event source mappings on DynamoDB streams: the settings a stream mapping takes (as AWS
//! checks them), how the API shows it, and its checkpoint.
//!
//! A stream mapping is a [`Mapping`] with [`StreamSource`] settings; it shares the SQS
//! mappings' records, lease queue and API. Its poller ([`poller`]) reads the stream through
//! the `dynamodbstreams` service of the in-process registry, exactly as a client would, and
//! hands batches to [`batch`], which invokes the function with AWS's retry, bisection and
//! partial-failure rules. Progress is a checkpoint record ([`Position`], in [`POSITIONS`]):
//! the sequence number of the last record handled, written after the batch is handled (in the
//! same transaction as the on-failure records it produced), so a restart resumes right after
//! it: every record reaches the function at least once, in stream order.

mod batch;
mod poller;

pub(crate) use poller::poll;

use super::{Mapping, all, parse_filter_criteria, resolve_function, save};
use crate::{Lambda, invalid_value, str_of};
use basalt_core::{AwsError, Output, RequestContext};
use basalt_store::WriteOp;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Checkpoints of stream mappings, by mapping key.
pub const POSITIONS: &str = "lambda.esm.positions";

/// What a mapping shows before it has handled a batch.
const NOTHING_YET: &str = "No records processed";

/// Parameters of other event source types, which a stream mapping refuses.
const NOT_FOR_STREAMS: [&str; 8] = [
    "ScalingConfig",
    "Topics",
    "Queues",
    "SelfManagedEventSource",
    "DocumentDBEventSourceConfig",
    "AmazonManagedKafkaEventSourceConfig",
    "SelfManagedKafkaEventSourceConfig",
    "ProvisionedPollerConfig",
];

/// The settings only stream sources have.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct StreamSource {
    /// TRIM_HORIZON or LATEST.
    pub starting_position: String,
    pub bisect: bool,
    /// -1: until the record expires.
    pub max_retries: i64,
    /// -1: until the record expires.
    pub max_record_age_s: i64,
    /// Accepted as AWS accepts it; batches of a shard are always handled one at a time here,
    /// which keeps them in order.
    pub parallelization: u32,
    /// The SQS queue or SNS topic that gets a record of each discarded batch.
    #[serde(default)]
    pub on_failure: Option<String>,
}

/// A DynamoDB stream ARN (`arn:aws:dynamodb:<region>:<account>:table/<name>/stream/<label>`).
pub(crate) fn is_stream_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    matches!(parts.as_slice(), ["arn", _, "dynamodb", r, a, res]
        if !r.is_empty() && !a.is_empty() && res.starts_with("table/") && res.contains("/stream/"))
}

/// The stream's region and account (from its ARN).
pub(crate) fn arn_scope(arn: &str) -> (&str, &str) {
    let mut p = arn.splitn(6, ':').skip(3);
    (p.next().unwrap_or_default(), p.next().unwrap_or_default())
}

fn int_of(input: &Value, name: &str) -> Option<i64> {
    input.get(name).filter(|v| !v.is_null()).and_then(|v| {
        v.as_i64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
    })
}

/// AWS's wording for a member outside its range.
fn out_of_range(member: &str, n: i64, min: i64, max: i64) -> AwsError {
    invalid_value(format!(
        "1 validation error detected: Value '{n}' at '{member}' failed to satisfy constraint: Member must have value {}",
        if n < min {
            format!("greater than or equal to {min}")
        } else {
            format!("less than or equal to {max}")
        }
    ))
}

fn ranged(
    input: &Value,
    name: &str,
    member: &str,
    min: i64,
    max: i64,
) -> Result<Option<i64>, AwsError> {
    match int_of(input, name) {
        Some(n) if !(min..=max).contains(&n) => Err(out_of_range(member, n, min, max)),
        other => Ok(other),
    }
}

/// StartingPosition (CreateEventSourceMapping only): required, TRIM_HORIZON or LATEST.
fn starting_position(input: &Value, arn: &str) -> Result<String, AwsError> {
    let timestamp = input
        .get("StartingPositionTimestamp")
        .is_some_and(|v| !v.is_null());
    match str_of(input, "StartingPosition") {
        None => Err(invalid_value(
            "1 validation error detected: Value null at 'startingPosition' failed to satisfy constraint: Member must not be null.",
        )),
        Some("AT_TIMESTAMP") => Err(invalid_value(format!(
            "Unsupported starting position for arn type: {arn}"
        ))),
        Some(_) if timestamp => Err(invalid_value(
            "Timestamp only valid with StartingPosition AT_TIMESTAMP",
        )),
        Some(p @ ("TRIM_HORIZON" | "LATEST")) => Ok(p.to_owned()),
        Some(other) => Err(AwsError::validation(format!(
            "1 validation error detected: Value '{other}' at 'startingPosition' failed to satisfy constraint: Member must satisfy enum value set: [LATEST, AT_TIMESTAMP, TRIM_HORIZON]"
        ))),
    }
}

/// The on-failure destination of `DestinationConfig`: an SQS queue or an SNS topic.
fn on_failure(dc: &Value) -> Result<Option<String>, AwsError> {
    if dc
        .get("OnSuccess")
        .is_some_and(|v| v.get("Destination").is_some_and(|d| !d.is_null()))
    {
        return Err(invalid_value(
            "Unsupported DestinationConfig parameter for given event source mapping type: OnSuccess",
        ));
    }
    let Some(arn) = dc
        .get("OnFailure")
        .and_then(|f| f.get("Destination"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    else {
        return Ok(None);
    };
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", _, "sqs" | "sns", r, a, name]
            if !r.is_empty() && !a.is_empty() && !name.is_empty() && !name.contains(['/', ':']) =>
        {
            Ok(Some(arn.to_owned()))
        }
        _ => Err(invalid_value(format!(
            "The provided destination config DestinationConfig(onSuccess=null, onFailure=OnFailure(destination={arn})) is invalid."
        ))),
    }
}

/// Applies the settings `input` carries to a stream mapping (all of them on Create, the
/// given ones on Update), checking each as AWS does.
pub(crate) fn apply(m: &mut Mapping, input: &Value, create: bool) -> Result<(), AwsError> {
    for p in NOT_FOR_STREAMS {
        if input.get(p).is_some_and(|v| !v.is_null()) {
            return Err(invalid_value(format!(
                "Unsupported {p} parameter for given event source mapping type."
            )));
        }
    }
    let mut s = m.stream.clone().unwrap_or(StreamSource {
        starting_position: String::new(),
        bisect: false,
        max_retries: -1,
        max_record_age_s: -1,
        parallelization: 1,
        on_failure: None,
    });
    if create {
        s.starting_position = starting_position(input, &m.source_arn)?;
    }
    if let Some(v) = input.get("Enabled").and_then(Value::as_bool) {
        m.enabled = v;
    }
    if let Some(n) = ranged(input, "BatchSize", "batchSize", 1, 10_000)? {
        m.batch_size = n as u32;
    }
    if let Some(n) = ranged(
        input,
        "MaximumBatchingWindowInSeconds",
        "maximumBatchingWindowInSeconds",
        0,
        300,
    )? {
        m.window_s = n as u32;
    }
    if let Some(n) = ranged(
        input,
        "MaximumRetryAttempts",
        "maximumRetryAttempts",
        -1,
        10_000,
    )? {
        s.max_retries = n;
    }
    if let Some(n) = ranged(
        input,
        "MaximumRecordAgeInSeconds",
        "maximumRecordAgeInSeconds",
        -1,
        604_800,
    )? {
        if (0..60).contains(&n) {
            return Err(invalid_value(format!(
                "MaximumRecordAgeInSeconds must be -1 (infinite) or between 60 and 604800, got {n}"
            )));
        }
        s.max_record_age_s = n;
    }
    if let Some(n) = ranged(
        input,
        "ParallelizationFactor",
        "parallelizationFactor",
        1,
        10,
    )? {
        s.parallelization = n as u32;
    }
    if let Some(n) = ranged(
        input,
        "TumblingWindowInSeconds",
        "tumblingWindowInSeconds",
        0,
        900,
    )? && n != 0
    {
        return Err(invalid_value(
            "TumblingWindowInSeconds is not supported by Basalt: aggregate in the function instead",
        ));
    }
    if let Some(b) = input
        .get("BisectBatchOnFunctionError")
        .and_then(Value::as_bool)
    {
        s.bisect = b;
    }
    if let Some(dc) = input.get("DestinationConfig").filter(|v| !v.is_null()) {
        s.on_failure = on_failure(dc)?;
    }
    if let Some(types) = input.get("FunctionResponseTypes").and_then(Value::as_array) {
        let mut out = Vec::new();
        for t in types {
            match t.as_str() {
                Some("ReportBatchItemFailures") => out.push("ReportBatchItemFailures".to_owned()),
                other => {
                    return Err(invalid_value(format!(
                        "1 validation error detected: Value '[{}]' at 'functionResponseTypes' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value set: [ReportBatchItemFailures]]",
                        other.unwrap_or_default()
                    )));
                }
            }
        }
        out.dedup();
        m.response_types = out;
    }
    if let Some(fc) = input.get("FilterCriteria").filter(|v| !v.is_null()) {
        m.filters = parse_filter_criteria(fc)?;
    }
    m.stream = Some(s);
    Ok(())
}

/// The fields a stream mapping shows besides those every mapping shows.
pub(crate) fn describe_into(s: &StreamSource, out: &mut Value) {
    out["StartingPosition"] = json!(s.starting_position);
    out["BisectBatchOnFunctionError"] = json!(s.bisect);
    out["MaximumRetryAttempts"] = json!(s.max_retries);
    out["MaximumRecordAgeInSeconds"] = json!(s.max_record_age_s);
    out["ParallelizationFactor"] = json!(s.parallelization);
    out["TumblingWindowInSeconds"] = json!(0);
    out["DestinationConfig"] = match &s.on_failure {
        Some(d) => json!({"OnFailure": {"Destination": d}}),
        None => json!({"OnFailure": {}}),
    };
    out["StateTransitionReason"] = json!("User action");
    out["LastProcessingResult"] = json!(NOTHING_YET);
}

/// A stream mapping's progress.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub(crate) struct Position {
    /// The sequence number of the last record handled (invoked successfully, filtered out or
    /// discarded).
    #[serde(default)]
    pub after: Option<String>,
    /// Before any record was handled: the iterator the mapping started at (LATEST at the time
    /// it was created) and when it was issued, so a restart starts there too.
    #[serde(default)]
    pub start: Option<(String, i64)>,
    /// `LastProcessingResult`.
    #[serde(default)]
    pub last_result: Option<String>,
}

pub(crate) fn load_position(l: &Lambda, key: &str) -> Result<Position, AwsError> {
    Ok(match l.state.get(POSITIONS, key)? {
        Some(raw) => serde_json::from_slice(&raw)
            .map_err(|e| AwsError::internal(format!("corrupt mapping checkpoint: {e}")))?,
        None => Position::default(),
    })
}

pub(crate) fn position_op(key: &str, p: &Position) -> WriteOp {
    WriteOp::Put {
        table: POSITIONS.into(),
        key: key.to_owned(),
        value: serde_json::to_vec(p).unwrap_or_default(),
    }
}

pub(crate) fn forget_op(key: &str) -> WriteOp {
    WriteOp::Delete {
        table: POSITIONS.into(),
        key: key.to_owned(),
    }
}

/// Get/List: what the poller last did.
pub(crate) fn decorate(l: &Lambda, m: &Mapping, out: &mut Value) {
    if m.stream.is_none() {
        return;
    }
    if let Ok(p) = load_position(l, &m.key())
        && let Some(r) = p.last_result
    {
        out["LastProcessingResult"] = json!(r);
    }
}

/// The registry's DynamoDB Streams, as the stream's owner calls it.
pub(crate) async fn streams_call(
    l: &Lambda,
    arn: &str,
    operation: &str,
    input: Value,
) -> Result<Value, AwsError> {
    let registry = l
        .registry
        .get()
        .ok_or_else(|| AwsError::internal("Lambda started without DynamoDB Streams"))?;
    let (region, account) = arn_scope(arn);
    let ctx = RequestContext::internal(account, region, "");
    Ok(registry
        .call(&ctx, "dynamodbstreams", operation, input)
        .await?
        .body)
}

/// Checks the stream exists (as AWS does on Create) and returns its one shard's id.
pub(crate) async fn shard_of(l: &Lambda, arn: &str) -> Result<String, AwsError> {
    let d = streams_call(l, arn, "DescribeStream", json!({"StreamArn": arn}))
        .await
        .map_err(|e| {
            if e.code == "ResourceNotFoundException" || e.code == "ValidationException" {
                invalid_value(format!("Stream not found: {arn}"))
            } else {
                e
            }
        })?;
    d["StreamDescription"]["Shards"][0]["ShardId"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| invalid_value(format!("Stream not found: {arn}")))
}

/// Create's extra work for a stream: the stream must exist, and a LATEST mapping starts at
/// the stream's end as it is now (not whenever its poller gets going).
pub(crate) async fn prepare(l: &Lambda, m: &Mapping) -> Result<Position, AwsError> {
    let shard = shard_of(l, &m.source_arn).await?;
    let Some(s) = &m.stream else {
        return Ok(Position::default());
    };
    if s.starting_position != "LATEST" {
        return Ok(Position::default());
    }
    let it = streams_call(
        l,
        &m.source_arn,
        "GetShardIterator",
        json!({"StreamArn": m.source_arn, "ShardId": shard, "ShardIteratorType": "LATEST"}),
    )
    .await?;
    Ok(Position {
        start: it["ShardIterator"]
            .as_str()
            .map(|t| (t.to_owned(), chrono::Utc::now().timestamp_millis())),
        ..Position::default()
    })
}

/// CreateEventSourceMapping for a DynamoDB stream.
pub(crate) async fn create(
    l: &Lambda,
    ctx: &RequestContext,
    input: &Value,
    source_arn: String,
) -> Result<Output, AwsError> {
    let (function_name, qualifier, _) =
        resolve_function(l, ctx, str_of(input, "FunctionName").unwrap_or_default())?;
    let mut m = Mapping {
        uuid: uuid::Uuid::new_v4().to_string(),
        account: ctx.account_id.clone(),
        region: ctx.region.clone(),
        function_name,
        qualifier,
        source_arn,
        batch_size: 100,
        window_s: 0,
        enabled: true,
        last_modified: super::now_s(),
        response_types: Vec::new(),
        filters: None,
        max_concurrency: None,
        tags: BTreeMap::new(),
        stream: None,
    };
    apply(&mut m, input, true)?;
    if let Some(tags) = input.get("Tags").and_then(Value::as_object) {
        m.tags = tags
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
            .collect();
    }
    duplicate(&all(l, ctx)?, &m)?;
    let position = prepare(l, &m).await?;
    // The checkpoint first: the poller the mapping's work item starts must find it.
    l.state.batch(&[position_op(&m.key(), &position)])?;
    save(l, &m, m.enabled)?;
    Ok(Output::new(m.describe("Creating")))
}

/// A second mapping of the same stream and function is refused.
pub(crate) fn duplicate(others: &[Mapping], m: &Mapping) -> Result<(), AwsError> {
    match others.iter().find(|o| {
        o.uuid != m.uuid && o.source_arn == m.source_arn && o.function_arn() == m.function_arn()
    }) {
        Some(d) => Err(crate::conflict(format!(
            "The event source arn (\" {} \") and function (\" {} \") provided mapping already exists. Please update or delete the existing mapping with UUID {}",
            m.source_arn, m.function_name, d.uuid
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str =
        "arn:aws:dynamodb:us-east-1:000000000000:table/t/stream/2026-12-06T08:42:44.123";

    fn base() -> Mapping {
        Mapping {
            uuid: "u".into(),
            account: "000000000000".into(),
            region: "us-east-1".into(),
            function_name: "f".into(),
            qualifier: None,
            source_arn: ARN.into(),
            batch_size: 100,
            window_s: 0,
            enabled: true,
            last_modified: 0.0,
            response_types: Vec::new(),
            filters: None,
            max_concurrency: None,
            tags: BTreeMap::new(),
            stream: None,
        }
    }

    #[test]
    fn stream_arns_are_recognised() {
        assert!(is_stream_arn(ARN));
        assert!(!is_stream_arn(
            "arn:aws:dynamodb:us-east-1:000000000000:table/t"
        ));
        assert!(!is_stream_arn("arn:aws:sqs:us-east-1:000000000000:q"));
        assert_eq!(arn_scope(ARN), ("us-east-1", "000000000000"));
    }

    #[test]
    fn defaults_are_aws_ones() {
        let mut m = base();
        apply(&mut m, &json!({"StartingPosition": "LATEST"}), true).unwrap();
        let s = m.stream.clone().unwrap();
        assert_eq!(
            (
                s.starting_position.as_str(),
                s.bisect,
                s.max_retries,
                s.max_record_age_s,
                s.parallelization
            ),
            ("LATEST", false, -1, -1, 1)
        );
        let mut d = json!({});
        describe_into(&s, &mut d);
        assert_eq!(
            d,
            json!({
                "StartingPosition": "LATEST", "BisectBatchOnFunctionError": false,
                "MaximumRetryAttempts": -1, "MaximumRecordAgeInSeconds": -1,
                "ParallelizationFactor": 1, "TumblingWindowInSeconds": 0,
                "DestinationConfig": {"OnFailure": {}},
                "StateTransitionReason": "User action",
                "LastProcessingResult": "No records processed"
            })
        );
    }

    #[test]
    fn settings_are_checked_as_aws_checks_them() {
        let mut m = base();
        apply(
            &mut m,
            &json!({"StartingPosition": "TRIM_HORIZON", "BatchSize": 500, "MaximumBatchingWindowInSeconds": 0,
                    "BisectBatchOnFunctionError": true, "MaximumRetryAttempts": 2,
                    "MaximumRecordAgeInSeconds": 60, "ParallelizationFactor": 10,
                    "DestinationConfig": {"OnFailure": {"Destination": "arn:aws:sqs:us-east-1:000000000000:dlq"}},
                    "FunctionResponseTypes": ["ReportBatchItemFailures"],
                    "FilterCriteria": {"Filters": [{"Pattern": "{\"eventName\": [\"INSERT\"]}"}]}}),
            true,
        )
        .unwrap();
        let s = m.stream.clone().unwrap();
        assert_eq!(
            (
                m.batch_size,
                s.bisect,
                s.max_retries,
                s.max_record_age_s,
                s.parallelization
            ),
            (500, true, 2, 60, 10)
        );
        assert_eq!(
            s.on_failure.as_deref(),
            Some("arn:aws:sqs:us-east-1:000000000000:dlq")
        );
        assert_eq!(m.response_types, ["ReportBatchItemFailures"]);
        // Update leaves the starting position alone.
        apply(&mut m, &json!({"MaximumRetryAttempts": -1}), false).unwrap();
        assert_eq!(m.stream.as_ref().unwrap().starting_position, "TRIM_HORIZON");
        assert_eq!(m.stream.as_ref().unwrap().max_retries, -1);

        let refused = |input: Value| {
            let mut m = base();
            apply(&mut m, &input, true).unwrap_err()
        };
        let e = refused(json!({}));
        assert_eq!(e.code, "InvalidParameterValueException");
        assert!(
            e.message.contains("Value null at 'startingPosition'"),
            "{}",
            e.message
        );
        assert!(
            refused(json!({"StartingPosition": "AT_TIMESTAMP"}))
                .message
                .starts_with("Unsupported starting position for arn type: arn:aws:dynamodb")
        );
        assert_eq!(
            refused(json!({"StartingPosition": "LATEST", "StartingPositionTimestamp": 5})).message,
            "Timestamp only valid with StartingPosition AT_TIMESTAMP"
        );
        assert_eq!(
            refused(json!({"StartingPosition": "0"})).code,
            "ValidationException"
        );
        for bad in [
            json!({"BatchSize": 10_001}),
            json!({"MaximumRetryAttempts": -2}),
            json!({"MaximumRecordAgeInSeconds": 30}),
            json!({"ParallelizationFactor": 11}),
            json!({"TumblingWindowInSeconds": 60}),
            json!({"ScalingConfig": {"MaximumConcurrency": 2}}),
            json!({"DestinationConfig": {"OnFailure": {"Destination": "arn:aws:lambda:us-east-1:000000000000:function:f"}}}),
            json!({"DestinationConfig": {"OnSuccess": {"Destination": "arn:aws:sqs:us-east-1:000000000000:q"}}}),
            json!({"FunctionResponseTypes": ["Nope"]}),
            json!({"FilterCriteria": {"Filters": [{"Pattern": "{\"eventName\": 1}"}]}}),
        ] {
            let mut input = bad.clone();
            input["StartingPosition"] = json!("LATEST");
            assert_eq!(
                refused(input).code,
                "InvalidParameterValueException",
                "{bad}"
            );
        }
        // SNS is a destination too.
        let mut m = base();
        apply(&mut m, &json!({"StartingPosition": "LATEST", "DestinationConfig": {"OnFailure": {"Destination": "arn:aws:sns:us-east-1:000000000000:t"}}}), true).unwrap();
    }

    #[test]
    fn duplicates_name_the_stream_and_function() {
        let mut a = base();
        apply(&mut a, &json!({"StartingPosition": "LATEST"}), true).unwrap();
        let mut b = a.clone();
        b.uuid = "v".into();
        let e = duplicate(&[a.clone()], &b).unwrap_err();
        assert_eq!(e.code, "ResourceConflictException");
        assert_eq!(
            e.message,
            format!(
                "The event source arn (\" {ARN} \") and function (\" f \") provided mapping already exists. Please update or delete the existing mapping with UUID u"
            )
        );
        b.function_name = "g".into();
        assert!(duplicate(&[a], &b).is_ok());
    }
}
