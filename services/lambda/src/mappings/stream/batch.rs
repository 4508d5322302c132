//! One batch of stream records through the function, with AWS's error handling for stream
//! sources (Lambda Developer Guide, "Retain discarded records for a DynamoDB event source" and
//! "Configuring partial batch response with DynamoDB and Lambda"):
//!
//! * a function error retries the batch, up to `MaximumRetryAttempts` (-1: until the records
//!   expire); with `BisectBatchOnFunctionError` a failed batch is first split in two, which
//!   does not use up a retry;
//! * with `ReportBatchItemFailures`, the records before the lowest reported sequence number
//!   are done and only the rest is retried; an unreadable report fails the whole batch;
//! * records older than `MaximumRecordAgeInSeconds` (or the stream's 24 hours) are discarded
//!   before an attempt;
//! * a discarded batch is described to the `OnFailure` destination (its `DDBStreamBatchInfo`,
//!   not its records) and processing goes on after it.
//!
//! Records are handled strictly in order: a batch is finished, one way or another, before the
//! next one starts, so the checkpoint only ever moves past handled records.

use super::super::{Mapping, batch_item_failures};
use super::StreamSource;
use crate::Lambda;
use crate::destinations::Send;
use basalt_core::RequestContext;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use std::collections::{HashSet, VecDeque};
use std::time::Duration;

/// A record older than this is gone from a DynamoDB stream, however often it was retried.
const STREAM_RETENTION_S: i64 = 24 * 3600;
/// The first retry waits this long; each later one twice as long as the one before...
const RETRY_BASE_MS: u64 = 500;
/// ...up to this.
const RETRY_MAX_MS: u64 = 10_000;

/// How an invocation of (part of) a batch ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Invoked {
    Ok,
    /// The function reported failures; the first failed record is at this index.
    Partial(usize),
    /// The whole batch failed: `function_error` when the function raised (or timed out), else
    /// its failure report was unreadable.
    Failed {
        function_error: bool,
    },
    /// The function was not run (throttled, missing, ...): no retry is used up.
    NotRun,
}

/// What the last invocation answered, for the on-failure record's `responseContext`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Response {
    pub executed_version: String,
    pub function_error: bool,
}

/// Records `lo..hi` of the batch, with what trying them has cost so far.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Work {
    pub lo: usize,
    pub hi: usize,
    pub retries: u32,
    pub invokes: u32,
    pub response: Option<Response>,
}

/// What to do after an invocation of `Work`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    /// All of it is done.
    Done,
    /// Records before `done` are done; try `work` again after `pause`.
    Retry {
        done: usize,
        work: Work,
        pause: Duration,
    },
    /// Split in two, first half first.
    Split(Work, Work),
    /// Retries are used up: records before `done` are done, `work` is discarded.
    Discard { done: usize, work: Work },
}

fn exhausted(s: &StreamSource, retries: u32) -> bool {
    s.max_retries >= 0 && i64::from(retries) > s.max_retries
}

/// The pause before the `retries`-th retry: doubling from [`RETRY_BASE_MS`].
fn backoff(retries: u32) -> Duration {
    let n = retries.max(1) - 1;
    Duration::from_millis((RETRY_BASE_MS << n.min(10)).min(RETRY_MAX_MS))
}

/// The rules, given how the invocation of `w` ended (`w.invokes` already counts it).
pub(crate) fn step(s: &StreamSource, w: Work, result: &Invoked) -> Step {
    let done = match result {
        Invoked::Ok => return Step::Done,
        // Not a failure of the function's: wait and try the same again.
        Invoked::NotRun => {
            return Step::Retry {
                done: w.lo,
                work: w,
                pause: Duration::from_millis(RETRY_MAX_MS / 5),
            };
        }
        Invoked::Failed {
            function_error: true,
        } if s.bisect && w.hi - w.lo > 1 => {
            let mid = w.lo + (w.hi - w.lo) / 2;
            let half = |lo, hi| Work {
                lo,
                hi,
                retries: w.retries,
                invokes: 0,
                response: None,
            };
            return Step::Split(half(w.lo, mid), half(mid, w.hi));
        }
        Invoked::Partial(i) => w.lo + (*i).min(w.hi - w.lo),
        Invoked::Failed { .. } => w.lo,
    };
    let rest = Work {
        lo: done,
        retries: w.retries + 1,
        ..w
    };
    if exhausted(s, rest.retries) {
        Step::Discard { done, work: rest }
    } else {
        let pause = backoff(rest.retries);
        Step::Retry {
            done,
            work: rest,
            pause,
        }
    }
}

/// The record's `ApproximateCreationDateTime` (epoch seconds).
fn created_s(r: &Value) -> i64 {
    r["dynamodb"]["ApproximateCreationDateTime"]
        .as_f64()
        .map_or(0, |f| f as i64)
}

pub(crate) fn seq_of(r: &Value) -> &str {
    r["dynamodb"]["SequenceNumber"].as_str().unwrap_or_default()
}

/// How many records from the front of `records` are too old to be tried at `now_s`.
pub(crate) fn too_old(s: &StreamSource, records: &[Value], now_s: i64) -> usize {
    let max_age = if s.max_record_age_s < 0 {
        STREAM_RETENTION_S
    } else {
        s.max_record_age_s.min(STREAM_RETENTION_S)
    };
    records
        .iter()
        .take_while(|r| now_s - created_s(r) > max_age)
        .count()
}

fn iso_s(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// The record AWS sends to an `OnFailure` destination for discarded `records`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn failure_record(
    m: &Mapping,
    shard_id: &str,
    records: &[Value],
    condition: &str,
    invokes: u32,
    response: Option<&Response>,
    request_id: &str,
    now_ms: i64,
) -> Value {
    let first = records.first().cloned().unwrap_or(Value::Null);
    let last = records.last().cloned().unwrap_or(Value::Null);
    let mut rec = json!({
        "requestContext": {
            "requestId": request_id,
            "functionArn": m.function_arn(),
            "condition": condition,
            "approximateInvokeCount": invokes,
        },
    });
    if let Some(r) = response {
        let mut ctx = json!({"statusCode": 200, "executedVersion": r.executed_version});
        if r.function_error {
            ctx["functionError"] = json!("Unhandled");
        }
        rec["responseContext"] = ctx;
    }
    rec["version"] = json!("1.0");
    rec["timestamp"] = json!(
        chrono::DateTime::from_timestamp_millis(now_ms)
            .unwrap_or_default()
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string()
    );
    rec["DDBStreamBatchInfo"] = json!({
        "shardId": shard_id,
        "startSequenceNumber": seq_of(&first),
        "endSequenceNumber": seq_of(&last),
        "approximateArrivalOfFirstRecord": iso_s(created_s(&first)),
        "approximateArrivalOfLastRecord": iso_s(created_s(&last)),
        "batchSize": records.len(),
        "streamArn": m.source_arn,
    });
    rec
}

/// How a batch ended: `records[..handled]` are done (invoked, or discarded and described to
/// the destination by `sends`).
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub handled: usize,
    pub sends: Vec<Send>,
    pub failed: bool,
}

/// Runs `records` through the function. `keep_going` is asked before every attempt; when it
/// says no (the mapping was disabled, deleted or moved), what is done so far is returned.
pub(crate) async fn run(
    l: &Lambda,
    m: &Mapping,
    shard_id: &str,
    records: &[Value],
    keep_going: impl Fn() -> bool,
) -> Outcome {
    let Some(s) = m.stream.clone() else {
        return Outcome::default();
    };
    let mut out = Outcome::default();
    let mut queue = VecDeque::from([Work {
        lo: 0,
        hi: records.len(),
        retries: 0,
        invokes: 0,
        response: None,
    }]);
    while let Some(mut w) = queue.pop_front() {
        if !keep_going() {
            return out;
        }
        let now = chrono::Utc::now();
        let old = too_old(&s, &records[w.lo..w.hi], now.timestamp());
        if old > 0 {
            discard(
                m,
                &s,
                shard_id,
                &records[w.lo..w.lo + old],
                "RecordAgeExceeded",
                &w,
                &mut out,
            );
            w.lo += old;
            out.handled = w.lo;
            if w.lo == w.hi {
                continue;
            }
        }
        let (invoked, response) = invoke(l, m, &records[w.lo..w.hi]).await;
        if invoked != Invoked::NotRun {
            w.invokes += 1;
            w.response = response;
        }
        if invoked != Invoked::Ok {
            out.failed = true;
        }
        let hi = w.hi;
        match step(&s, w, &invoked) {
            // Pieces run in order, so everything before this one's end is done.
            Step::Done => out.handled = hi,
            Step::Split(a, b) => {
                queue.push_front(b);
                queue.push_front(a);
            }
            Step::Retry { done, work, pause } => {
                out.handled = done;
                tokio::time::sleep(pause).await;
                queue.push_front(work);
            }
            Step::Discard { done, work } => {
                out.handled = done;
                let gone = &records[work.lo..work.hi];
                discard(
                    m,
                    &s,
                    shard_id,
                    gone,
                    "RetryAttemptsExhausted",
                    &work,
                    &mut out,
                );
                out.handled = work.hi;
            }
        }
    }
    out
}

fn discard(
    m: &Mapping,
    s: &StreamSource,
    shard_id: &str,
    records: &[Value],
    condition: &str,
    w: &Work,
    out: &mut Outcome,
) {
    tracing::warn!(
        mapping = %m.uuid,
        records = records.len(),
        condition,
        "discarding stream records"
    );
    let Some(target) = &s.on_failure else {
        return;
    };
    let request_id = uuid::Uuid::new_v4().to_string();
    let rec = failure_record(
        m,
        shard_id,
        records,
        condition,
        w.invokes,
        w.response.as_ref(),
        &request_id,
        chrono::Utc::now().timestamp_millis(),
    );
    out.sends.push(Send {
        target: target.clone(),
        body: rec.to_string(),
        dead_letter: None,
        success: false,
        function_arn: m.function_arn(),
    });
}

/// One synchronous invocation with `{"Records": [...]}`.
async fn invoke(l: &Lambda, m: &Mapping, records: &[Value]) -> (Invoked, Option<Response>) {
    let payload = json!({ "Records": records }).to_string();
    let ctx = RequestContext::internal(&m.account, &m.region, &l.config.endpoint);
    let input = json!({
        "FunctionName": m.function_arn(),
        "InvocationType": "RequestResponse",
        "Payload": B64.encode(payload.as_bytes()),
    });
    let out = match crate::invoke::invoke(l, &ctx, &input).await {
        Ok(out) => out,
        Err(e) => {
            tracing::warn!(mapping = %m.uuid, "invoking {}: {}: {}", m.function_name, e.code, e.message);
            return (Invoked::NotRun, None);
        }
    };
    let function_error = out.body.get("FunctionError").is_some();
    let response = Some(Response {
        executed_version: out.body["ExecutedVersion"]
            .as_str()
            .unwrap_or("$LATEST")
            .to_owned(),
        function_error,
    });
    if function_error {
        return (
            Invoked::Failed {
                function_error: true,
            },
            response,
        );
    }
    if !m.report_failures() {
        return (Invoked::Ok, response);
    }
    let body = out.body["Payload"]
        .as_str()
        .and_then(|b| B64.decode(b).ok())
        .unwrap_or_default();
    let ids: HashSet<&str> = records.iter().map(seq_of).collect();
    let result = match batch_item_failures(&body, &ids) {
        None => Invoked::Failed {
            function_error: false,
        },
        Some(failed) if failed.is_empty() => Invoked::Ok,
        // Sequence numbers compare as numbers; the checkpoint goes to the lowest reported.
        Some(failed) => Invoked::Partial(
            records
                .iter()
                .position(|r| failed.contains(seq_of(r)))
                .unwrap_or(0),
        ),
    };
    (result, response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn source(bisect: bool, max_retries: i64) -> StreamSource {
        StreamSource {
            starting_position: "TRIM_HORIZON".into(),
            bisect,
            max_retries,
            max_record_age_s: -1,
            parallelization: 1,
            on_failure: Some("arn:aws:sqs:us-east-1:000000000000:dlq".into()),
        }
    }

    fn work(lo: usize, hi: usize, retries: u32, invokes: u32) -> Work {
        Work {
            lo,
            hi,
            retries,
            invokes,
            response: None,
        }
    }

    const FAILED: Invoked = Invoked::Failed {
        function_error: true,
    };

    #[test]
    fn a_function_error_retries_until_the_attempts_are_used_up() {
        let s = source(false, 2);
        let Step::Retry {
            done,
            work: w,
            pause,
        } = step(&s, work(0, 3, 0, 1), &FAILED)
        else {
            panic!()
        };
        assert_eq!((done, w.lo, w.hi, w.retries, w.invokes), (0, 0, 3, 1, 1));
        assert_eq!(pause, Duration::from_millis(RETRY_BASE_MS));
        let Step::Retry { work: w, pause, .. } = step(&s, work(0, 3, 1, 2), &FAILED) else {
            panic!()
        };
        assert_eq!(w.retries, 2);
        assert_eq!(pause, Duration::from_millis(2 * RETRY_BASE_MS));
        // The third failure (two retries made): discarded after three invocations.
        assert_eq!(
            step(&s, work(0, 3, 2, 3), &FAILED),
            Step::Discard {
                done: 0,
                work: work(0, 3, 3, 3)
            }
        );
        // MaximumRetryAttempts 0: the first failure discards.
        assert!(matches!(
            step(&source(false, 0), work(0, 3, 0, 1), &FAILED),
            Step::Discard { .. }
        ));
        // -1: never discarded for retries (only for age).
        assert!(matches!(
            step(&source(false, -1), work(0, 3, 500, 501), &FAILED),
            Step::Retry { .. }
        ));
        assert_eq!(backoff(40), Duration::from_millis(RETRY_MAX_MS));
    }

    #[test]
    fn bisection_splits_before_retrying_and_costs_no_retry() {
        let s = source(true, 1);
        assert_eq!(
            step(&s, work(0, 5, 0, 1), &FAILED),
            Step::Split(work(0, 2, 0, 0), work(2, 5, 0, 0))
        );
        // A single record cannot be split: it is retried, then discarded.
        assert!(matches!(
            step(&s, work(3, 4, 0, 1), &FAILED),
            Step::Retry { .. }
        ));
        assert!(matches!(
            step(&s, work(3, 4, 1, 2), &FAILED),
            Step::Discard { .. }
        ));
        // An unreadable failure report is no function error: no bisection.
        let unreadable = Invoked::Failed {
            function_error: false,
        };
        assert!(matches!(
            step(&s, work(0, 5, 0, 1), &unreadable),
            Step::Retry { done: 0, .. }
        ));
    }

    #[test]
    fn reported_failures_move_the_checkpoint_to_the_first_failed_record() {
        let s = source(true, 2);
        // Records 0 and 1 of 2..6 succeeded; from record 4 on is retried, without bisection.
        let Step::Retry { done, work: w, .. } = step(&s, work(2, 6, 0, 1), &Invoked::Partial(2))
        else {
            panic!()
        };
        assert_eq!((done, w.lo, w.hi, w.retries, w.invokes), (4, 4, 6, 1, 1));
        // The invoke count carries on over the shrunken batch, and the retries run out.
        assert_eq!(
            step(&s, work(4, 6, 2, 3), &Invoked::Partial(0)),
            Step::Discard {
                done: 4,
                work: work(4, 6, 3, 3)
            }
        );
        assert_eq!(step(&s, work(0, 3, 0, 1), &Invoked::Ok), Step::Done);
        // Not run (throttled, ...): the same again, no retry used.
        let Step::Retry { done, work: w, .. } = step(&s, work(1, 3, 1, 2), &Invoked::NotRun) else {
            panic!()
        };
        assert_eq!((done, w.retries, w.invokes), (1, 1, 2));
    }

    fn rec(seq: &str, created: i64) -> Value {
        json!({"eventName": "INSERT", "dynamodb": {"SequenceNumber": seq, "ApproximateCreationDateTime": created}})
    }

    #[test]
    fn old_records_are_found_at_the_front() {
        let records = [rec("1", 100), rec("2", 150), rec("3", 1_000)];
        let mut s = source(false, -1);
        s.max_record_age_s = 60;
        assert_eq!(too_old(&s, &records, 200), 1);
        assert_eq!(too_old(&s, &records, 100), 0);
        // -1: the stream's own 24 hours.
        s.max_record_age_s = -1;
        assert_eq!(too_old(&s, &records, 100 + STREAM_RETENTION_S + 1), 1);
        assert_eq!(too_old(&s, &records, 1_000 + STREAM_RETENTION_S + 1), 3);
    }

    #[test]
    fn the_failure_record_is_the_one_aws_sends() {
        let m = Mapping {
            uuid: "u".into(),
            account: "123456789012".into(),
            region: "us-east-2".into(),
            function_name: "myfunction".into(),
            qualifier: None,
            source_arn: "arn:aws:dynamodb:us-east-2:123456789012:table/mytable/stream/2019-11-14T00:04:06.388".into(),
            batch_size: 100,
            window_s: 0,
            enabled: true,
            last_modified: 0.0,
            response_types: Vec::new(),
            filters: None,
            max_concurrency: None,
            tags: BTreeMap::new(),
            stream: Some(source(false, 0)),
        };
        let records = [rec("800000000003126276362", 1_573_690_399)];
        let response = Response {
            executed_version: "$LATEST".into(),
            function_error: true,
        };
        let r = failure_record(
            &m,
            "shardId-00000001573689847184-864758bb",
            &records,
            "RetryAttemptsExhausted",
            1,
            Some(&response),
            "316aa6d0-8154-xmpl-9af7-85d5f4a6bc81",
            1_573_690_429_717,
        );
        // The Lambda Developer Guide's example (services-dynamodb-errors).
        assert_eq!(
            r,
            json!({
                "requestContext": {
                    "requestId": "316aa6d0-8154-xmpl-9af7-85d5f4a6bc81",
                    "functionArn": "arn:aws:lambda:us-east-2:123456789012:function:myfunction",
                    "condition": "RetryAttemptsExhausted",
                    "approximateInvokeCount": 1
                },
                "responseContext": {
                    "statusCode": 200,
                    "executedVersion": "$LATEST",
                    "functionError": "Unhandled"
                },
                "version": "1.0",
                "timestamp": "2019-11-14T00:13:49.717Z",
                "DDBStreamBatchInfo": {
                    "shardId": "shardId-00000001573689847184-864758bb",
                    "startSequenceNumber": "800000000003126276362",
                    "endSequenceNumber": "800000000003126276362",
                    "approximateArrivalOfFirstRecord": "2019-11-14T00:13:19Z",
                    "approximateArrivalOfLastRecord": "2019-11-14T00:13:19Z",
                    "batchSize": 1,
                    "streamArn": "arn:aws:dynamodb:us-east-2:123456789012:table/mytable/stream/2019-11-14T00:04:06.388"
                }
            })
        );
        // Discarded for age before any invocation: no responseContext.
        let r = failure_record(&m, "s", &records, "RecordAgeExceeded", 0, None, "id", 0);
        assert!(r.get("responseContext").is_none());
        assert_eq!(r["requestContext"]["condition"], "RecordAgeExceeded");
    }
}
