"""Lambda event source mappings on DynamoDB streams through boto3: the mapping API with AWS's
checks and fields, and Python functions the stream triggers (records in order, filters,
BisectBatchOnFunctionError, MaximumRetryAttempts with the OnFailure destination,
ReportBatchItemFailures, and a restart that resumes after the checkpoint).

AWS pages: Lambda Developer Guide "Using AWS Lambda with Amazon DynamoDB" (the event),
"Lambda parameters for Amazon DynamoDB event source mappings" (defaults and ranges),
"Retain discarded records for a DynamoDB event source in Lambda" (retries, bisection, the
on-failure record) and "Configuring partial batch response with DynamoDB and Lambda". Field
values AWS shows (State "Creating", StateTransitionReason "User action", LastProcessingResult
"No records processed", the conflict and "Stream not found" messages) are those recorded
against AWS in LocalStack's snapshot tests (test_lambda_integration_dynamodbstreams).
"""
from __future__ import annotations

import io
import json
import os
import time
import zipfile

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT, REGION, BasaltServer, make_client_factory, unique
from ddb_helpers import N, S, create_table

ROLE = f"arn:aws:iam::{ACCOUNT}:role/compat-lambda-ddb"

# Sends every event it gets to the queue named OUT (looked up by name, so that it works
# whatever port the server listens on), then fails on items with a `boom` attribute and
# reports items with a `bad` attribute as failed.
SOURCE = '''
import boto3, json, os
sqs = boto3.client("sqs")

def handler(event, context):
    url = sqs.get_queue_url(QueueName=os.environ["OUT"])["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(event))
    failures = []
    for r in event["Records"]:
        image = r["dynamodb"].get("NewImage", {})
        if "boom" in image:
            raise RuntimeError("boom")
        if "bad" in image:
            failures.append({"itemIdentifier": r["dynamodb"]["SequenceNumber"]})
    return {"batchItemFailures": failures}
'''


def _has_python_runtime():
    from pathlib import Path
    runtimes = Path(os.environ.get("BASALT_RUNTIME_DIR", Path.home() / ".cache/basalt/runtimes"))
    return any(runtimes.glob("python3.*/.installed"))


needs_runtime = pytest.mark.skipif(not _has_python_runtime(),
                                   reason="no Lambda Python runtime installed (basalt runtimes pull)")


class Env:
    """Clients of one server, and the helpers the tests share."""

    def __init__(self, mk):
        self.lam, self.sqs, self.ddb = mk("lambda"), mk("sqs"), mk("dynamodb")

    def queue(self):
        name = unique("ddbesmq")
        url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return name, url, arn

    def function(self, out_name=""):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("index.py", SOURCE)
        name = unique("ddbesmfn")
        self.lam.create_function(FunctionName=name, Runtime="python3.12", Role=ROLE, Handler="index.handler",
                                 Code={"ZipFile": buf.getvalue()}, Timeout=10,
                                 Environment={"Variables": {"OUT": out_name}})
        self.lam.get_waiter("function_active_v2").wait(FunctionName=name)
        return name

    def table(self, view="NEW_AND_OLD_IMAGES"):
        name = create_table(self.ddb, StreamSpecification={"StreamEnabled": True, "StreamViewType": view})
        return name, self.ddb.describe_table(TableName=name)["Table"]["LatestStreamArn"]

    def messages(self, url, n, timeout=30):
        """Bodies (parsed) of the first `n` messages on `url`, in arrival order."""
        got = []
        deadline = time.time() + timeout
        while len(got) < n and time.time() < deadline:
            r = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            for m in r.get("Messages", []):
                got.append(json.loads(m["Body"]))
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        return got

    def batches(self, url, n_records, timeout=30):
        """Events the function got, until `n_records` records are in."""
        got = []
        deadline = time.time() + timeout
        while sum(len(e["Records"]) for e in got) < n_records and time.time() < deadline:
            got += self.messages(url, 1, timeout=max(0.1, deadline - time.time()))
        return got

    def wait_result(self, uuid, result, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.lam.get_event_source_mapping(UUID=uuid).get("LastProcessingResult") == result:
                return True
            time.sleep(0.2)
        return False


@pytest.fixture(scope="module")
def env(make_client):
    return Env(make_client)


def code(e) -> str:
    exc = e.value if hasattr(e, "value") else e
    return exc.response["Error"]["Code"]


def pks(event):
    return [r["dynamodb"]["Keys"]["pk"]["S"] for r in event["Records"]]


# --- the API -----------------------------------------------------------------------------------

def test_stream_mapping_api_and_validation(env):
    lam = env.lam
    table, arn = env.table()
    fn = env.function()
    _, _, dlq_arn = env.queue()
    m = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=fn, StartingPosition="LATEST", Enabled=False)
    assert m["ResponseMetadata"]["HTTPStatusCode"] == 202
    expected = {
        "BatchSize": 100, "MaximumBatchingWindowInSeconds": 0, "StartingPosition": "LATEST",
        "BisectBatchOnFunctionError": False, "MaximumRetryAttempts": -1, "MaximumRecordAgeInSeconds": -1,
        "ParallelizationFactor": 1, "TumblingWindowInSeconds": 0, "DestinationConfig": {"OnFailure": {}},
        "FunctionResponseTypes": [], "EventSourceArn": arn, "State": "Creating",
        "StateTransitionReason": "User action", "LastProcessingResult": "No records processed",
        "FunctionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{fn}",
    }
    assert {k: m[k] for k in expected} == expected
    uuid = m["UUID"]
    got = lam.get_event_source_mapping(UUID=uuid)
    assert got["State"] == "Disabled" and got["StartingPosition"] == "LATEST"
    listed = lam.list_event_source_mappings(EventSourceArn=arn)["EventSourceMappings"]
    assert [x["UUID"] for x in listed] == [uuid] and listed[0]["MaximumRetryAttempts"] == -1

    with pytest.raises(ClientError) as e:
        lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=fn, StartingPosition="TRIM_HORIZON")
    assert code(e) == "ResourceConflictException"
    assert e.value.response["Error"]["Message"] == (
        f'The event source arn (" {arn} ") and function (" {fn} ") provided mapping already exists. '
        f"Please update or delete the existing mapping with UUID {uuid}")

    u = lam.update_event_source_mapping(UUID=uuid, BatchSize=7, MaximumRetryAttempts=3, BisectBatchOnFunctionError=True,
                                        MaximumRecordAgeInSeconds=120, ParallelizationFactor=4,
                                        DestinationConfig={"OnFailure": {"Destination": dlq_arn}},
                                        FunctionResponseTypes=["ReportBatchItemFailures"])
    assert u["State"] == "Updating"
    assert (u["BatchSize"], u["MaximumRetryAttempts"], u["BisectBatchOnFunctionError"], u["MaximumRecordAgeInSeconds"],
            u["ParallelizationFactor"]) == (7, 3, True, 120, 4)
    assert u["DestinationConfig"] == {"OnFailure": {"Destination": dlq_arn}}
    assert u["FunctionResponseTypes"] == ["ReportBatchItemFailures"] and u["StartingPosition"] == "LATEST"

    def refused(expected_code, **kw):
        args = {"EventSourceArn": arn, "FunctionName": env.function(), "StartingPosition": "LATEST", "Enabled": False} | kw
        with pytest.raises(ClientError) as e:
            lam.create_event_source_mapping(**args)
        assert code(e) == expected_code, (kw, e.value)
        return e.value.response["Error"]["Message"]

    args = {"EventSourceArn": arn, "FunctionName": fn}
    with pytest.raises(ClientError) as e:
        lam.create_event_source_mapping(**args)
    assert code(e) == "InvalidParameterValueException"
    assert "Value null at 'startingPosition'" in e.value.response["Error"]["Message"]
    assert refused("InvalidParameterValueException", StartingPosition="AT_TIMESTAMP", StartingPositionTimestamp=1) \
        == f"Unsupported starting position for arn type: {arn}"
    missing = arn.replace(table, table + "-gone")
    assert refused("InvalidParameterValueException", EventSourceArn=missing) == f"Stream not found: {missing}"
    refused("InvalidParameterValueException", ScalingConfig={"MaximumConcurrency": 2})
    refused("InvalidParameterValueException", DestinationConfig={"OnFailure": {"Destination": "arn:aws:s4:::nope"}})
    refused("InvalidParameterValueException", FilterCriteria={"Filters": [{"Pattern": '{"eventName": 1}'}]})
    refused("ValidationException", BatchSize=10_001)
    refused("ValidationException", MaximumRetryAttempts=10_001)
    refused("ValidationException", ParallelizationFactor=11)
    lam.delete_event_source_mapping(UUID=uuid)
    with pytest.raises(ClientError) as e:
        lam.get_event_source_mapping(UUID=uuid)
    assert code(e) == "ResourceNotFoundException"


# --- polling -----------------------------------------------------------------------------------

@needs_runtime
def test_the_function_gets_each_change_in_order(env):
    out_name, out_url, _ = env.queue()
    fn = env.function(out_name)
    table, arn = env.table()
    m = env.lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=fn, StartingPosition="LATEST",
                                            BatchSize=10)
    ddb = env.ddb
    ddb.put_item(TableName=table, Item={"pk": S("k1"), "v": N(1)})
    ddb.update_item(TableName=table, Key={"pk": S("k1")}, UpdateExpression="SET v = :v",
                    ExpressionAttributeValues={":v": N(2)})
    ddb.delete_item(TableName=table, Key={"pk": S("k1")})
    ddb.put_item(TableName=table, Item={"pk": S("k2"), "v": N(9)})
    events = env.batches(out_url, 4)
    records = [r for e in events for r in e["Records"]]
    assert [(r["dynamodb"]["Keys"]["pk"]["S"], r["eventName"]) for r in records] == [
        ("k1", "INSERT"), ("k1", "MODIFY"), ("k1", "REMOVE"), ("k2", "INSERT")]
    seqs = [int(r["dynamodb"]["SequenceNumber"]) for r in records]
    assert seqs == sorted(seqs)
    r = records[1]
    assert r["eventSourceARN"] == arn and r["eventSource"] == "aws:dynamodb" and r["awsRegion"] == REGION
    assert r["eventVersion"] == "1.1" and r["eventID"]
    assert r["dynamodb"]["OldImage"] == {"pk": S("k1"), "v": N(1)}
    assert r["dynamodb"]["NewImage"] == {"pk": S("k1"), "v": N(2)}
    assert isinstance(r["dynamodb"]["ApproximateCreationDateTime"], (int, float))
    assert env.wait_result(m["UUID"], "OK")
    assert env.lam.get_event_source_mapping(UUID=m["UUID"])["State"] == "Enabled"
    # Nothing is delivered twice.
    assert env.messages(out_url, 1, timeout=2) == []
    env.lam.delete_event_source_mapping(UUID=m["UUID"])


@needs_runtime
def test_trim_horizon_and_filters(env):
    out_name, out_url, _ = env.queue()
    fn = env.function(out_name)
    table, arn = env.table()
    ddb = env.ddb
    # Written before the mapping exists: TRIM_HORIZON still delivers them.
    ddb.put_item(TableName=table, Item={"pk": S("a"), "v": N(1)})
    ddb.put_item(TableName=table, Item={"pk": S("a"), "v": N(2)})
    ddb.put_item(TableName=table, Item={"pk": S("b"), "v": N(1)})
    ddb.delete_item(TableName=table, Key={"pk": S("b")})
    m = env.lam.create_event_source_mapping(
        EventSourceArn=arn, FunctionName=fn, StartingPosition="TRIM_HORIZON",
        FilterCriteria={"Filters": [{"Pattern": json.dumps({"eventName": ["INSERT"]})}]})
    events = env.batches(out_url, 2)
    assert [(pk, r["eventName"]) for e in events for pk, r in zip(pks(e), e["Records"])] == [("a", "INSERT"), ("b", "INSERT")]
    assert env.messages(out_url, 1, timeout=2) == [], "MODIFY and REMOVE match no filter"
    env.lam.delete_event_source_mapping(UUID=m["UUID"])


@needs_runtime
def test_bisection_isolates_the_failing_record_and_retries_end_at_the_destination(env):
    out_name, out_url, _ = env.queue()
    _, dlq_url, dlq_arn = env.queue()
    fn = env.function(out_name)
    table, arn = env.table()
    for k in ("a", "b", "c", "d"):
        item = {"pk": S(k)} | ({"boom": S("yes")} if k == "b" else {})
        env.ddb.put_item(TableName=table, Item=item)
    m = env.lam.create_event_source_mapping(
        EventSourceArn=arn, FunctionName=fn, StartingPosition="TRIM_HORIZON", BatchSize=4,
        MaximumBatchingWindowInSeconds=3,  # the four records make one batch however they settle
        BisectBatchOnFunctionError=True, MaximumRetryAttempts=1,
        DestinationConfig={"OnFailure": {"Destination": dlq_arn}})
    [failure] = env.messages(dlq_url, 1, timeout=40)
    # Split in halves until the failing record is alone (no retry used), then one retry of it.
    events = env.messages(out_url, 6, timeout=10)
    assert [pks(e) for e in events] == [["a", "b", "c", "d"], ["a", "b"], ["a"], ["b"], ["b"], ["c", "d"]]
    assert failure["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert failure["requestContext"]["approximateInvokeCount"] == 2
    assert failure["requestContext"]["functionArn"] == f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{fn}"
    assert failure["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
    assert failure["version"] == "1.0" and failure["timestamp"].endswith("Z")
    info = failure["DDBStreamBatchInfo"]
    b_seq = events[3]["Records"][0]["dynamodb"]["SequenceNumber"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == (b_seq, b_seq, 1)
    assert info["streamArn"] == arn and info["shardId"].startswith("shardId-")
    assert info["approximateArrivalOfFirstRecord"].endswith("Z")
    assert env.messages(dlq_url, 1, timeout=2) == [], "only b was discarded"
    env.lam.delete_event_source_mapping(UUID=m["UUID"])


@needs_runtime
def test_retries_then_on_failure_and_processing_goes_on(env):
    out_name, out_url, _ = env.queue()
    _, dlq_url, dlq_arn = env.queue()
    fn = env.function(out_name)
    table, arn = env.table()
    env.ddb.put_item(TableName=table, Item={"pk": S("poison"), "boom": S("yes")})
    m = env.lam.create_event_source_mapping(
        EventSourceArn=arn, FunctionName=fn, StartingPosition="TRIM_HORIZON", MaximumRetryAttempts=2,
        DestinationConfig={"OnFailure": {"Destination": dlq_arn}})
    [failure] = env.messages(dlq_url, 1, timeout=40)
    assert failure["requestContext"]["approximateInvokeCount"] == 3, "the first try and two retries"
    assert failure["DDBStreamBatchInfo"]["batchSize"] == 1
    assert [pks(e) for e in env.messages(out_url, 3, timeout=10)] == [["poison"]] * 3
    assert env.lam.get_event_source_mapping(UUID=m["UUID"])["LastProcessingResult"] == "PROBLEM: Function call failed"
    # The stream goes on after the discarded record.
    env.ddb.put_item(TableName=table, Item={"pk": S("fine")})
    assert [pks(e) for e in env.messages(out_url, 1)] == [["fine"]]
    assert env.wait_result(m["UUID"], "OK")
    env.lam.delete_event_source_mapping(UUID=m["UUID"])


@needs_runtime
def test_reported_failures_checkpoint_at_the_first_failed_record(env):
    out_name, out_url, _ = env.queue()
    _, dlq_url, dlq_arn = env.queue()
    fn = env.function(out_name)
    table, arn = env.table()
    for k in ("p1", "p2", "p3"):
        item = {"pk": S(k)} | ({"bad": S("yes")} if k == "p2" else {})
        env.ddb.put_item(TableName=table, Item=item)
    m = env.lam.create_event_source_mapping(
        EventSourceArn=arn, FunctionName=fn, StartingPosition="TRIM_HORIZON", MaximumRetryAttempts=1,
        BatchSize=3, MaximumBatchingWindowInSeconds=3, FunctionResponseTypes=["ReportBatchItemFailures"],
        DestinationConfig={"OnFailure": {"Destination": dlq_arn}})
    [failure] = env.messages(dlq_url, 1, timeout=40)
    events = env.messages(out_url, 2, timeout=10)
    assert [pks(e) for e in events] == [["p1", "p2", "p3"], ["p2", "p3"]], "p1 was done; the retry starts at p2"
    info = failure["DDBStreamBatchInfo"]
    p2, p3 = (r["dynamodb"]["SequenceNumber"] for r in events[1]["Records"])
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == (p2, p3, 2)
    assert failure["requestContext"]["approximateInvokeCount"] == 2
    # The function answered; it raised nothing.
    assert "functionError" not in failure["responseContext"]
    assert env.messages(out_url, 1, timeout=2) == []
    env.lam.delete_event_source_mapping(UUID=m["UUID"])


# --- restart -----------------------------------------------------------------------------------

@pytest.fixture
def own_server(shape_checker):
    if os.environ.get("BASALT_ENDPOINT"):
        pytest.skip("needs a Basalt of its own to restart")
    saved = dict(os.environ)
    os.environ["BASALT_LAMBDA_LEASE_MS"] = "1500"
    srv = BasaltServer(name="basalt-ddb-esm-restart")
    try:
        yield srv
    finally:
        srv.close()
        os.environ.clear()
        os.environ.update(saved)
        assert not srv.panics(), "\n".join(srv.panics())


@needs_runtime
def test_a_restart_resumes_after_the_checkpoint(own_server, shape_checker):
    own_server.start()
    env = Env(make_client_factory(shape_checker, own_server.endpoint))
    out_name, out_url, _ = env.queue()
    fn = env.function(out_name)
    table, arn = env.table()
    m = env.lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=fn, StartingPosition="LATEST")
    env.ddb.put_item(TableName=table, Item={"pk": S("before-1")})
    env.ddb.put_item(TableName=table, Item={"pk": S("before-2")})
    assert [k for e in env.batches(out_url, 2) for k in pks(e)] == ["before-1", "before-2"]
    assert env.wait_result(m["UUID"], "OK"), "the checkpoint is saved with the result"
    own_server.stop()
    own_server.start()
    env = Env(make_client_factory(shape_checker, own_server.endpoint))
    out_url = env.sqs.get_queue_url(QueueName=out_name)["QueueUrl"]
    env.ddb.put_item(TableName=table, Item={"pk": S("after")})
    assert [k for e in env.batches(out_url, 1, timeout=40) for k in pks(e)] == ["after"]
    assert env.messages(out_url, 1, timeout=3) == [], "nothing before the checkpoint comes again"
    env.lam.delete_event_source_mapping(UUID=m["UUID"])
