"""Lambda event source mappings for SQS through boto3: the mapping API with AWS's checks, and
Python functions the queue triggers (batches, deletion after success, ReportBatchItemFailures
with the queue's dead-letter queue, FilterCriteria, disable/enable, delete)."""
from __future__ import annotations

import io
import json
import os
import time
import zipfile

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT, REGION, unique

ROLE = f"arn:aws:iam::{ACCOUNT}:role/compat-lambda-sqs"

SOURCE = '''
import boto3, json, os
sqs = boto3.client("sqs")

def handler(event, context):
    failures = []
    for r in event["Records"]:
        if r["body"].startswith("boom"):
            sqs.send_message(QueueUrl=os.environ["OUT"], MessageBody=json.dumps(event))
            raise RuntimeError("boom")
        if r["body"].startswith("bad"):
            failures.append({"itemIdentifier": r["messageId"]})
    sqs.send_message(QueueUrl=os.environ["OUT"], MessageBody=json.dumps(event))
    return {"batchItemFailures": failures}
'''


def _has_python_runtime():
    from pathlib import Path
    runtimes = Path(os.environ.get("BASALT_RUNTIME_DIR", Path.home() / ".cache/basalt/runtimes"))
    return any(runtimes.glob("python3.*/.installed"))


needs_runtime = pytest.mark.skipif(not _has_python_runtime(),
                                   reason="no Lambda Python runtime installed (basalt runtimes pull)")


@pytest.fixture(scope="module")
def lam(make_client):
    return make_client("lambda")


@pytest.fixture(scope="module")
def sqs(make_client):
    return make_client("sqs")


def code(e: ClientError) -> str:
    return e.response["Error"]["Code"]


def make_queue(sqs, **attrs):
    name = unique("esmq")
    url = sqs.create_queue(QueueName=name, Attributes={k: str(v) for k, v in attrs.items()})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def make_function(lam, out_url="", timeout=3):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("index.py", SOURCE)
    name = unique("esmfn")
    lam.create_function(FunctionName=name, Runtime="python3.12", Role=ROLE, Handler="index.handler",
                        Code={"ZipFile": buf.getvalue()}, Timeout=timeout,
                        Environment={"Variables": {"OUT": out_url}})
    lam.get_waiter("function_active_v2").wait(FunctionName=name)
    return name


def counts(sqs, url):
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"])


def wait_empty(sqs, url, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if counts(sqs, url) == (0, 0):
            return True
        time.sleep(0.3)
    return False


def events(sqs, out_url, n_records, timeout=30):
    """Batch events the function wrote to the out queue, until `n_records` records are in."""
    got = []
    deadline = time.time() + timeout
    while sum(len(e["Records"]) for e in got) < n_records and time.time() < deadline:
        r = sqs.receive_message(QueueUrl=out_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for m in r.get("Messages", []):
            got.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=out_url, ReceiptHandle=m["ReceiptHandle"])
    return got


def bodies(evts):
    return sorted(r["body"] for e in evts for r in e["Records"])


def wait_state(lam, uuid, state, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if lam.get_event_source_mapping(UUID=uuid)["State"] == state:
            return True
        time.sleep(0.2)
    return False


# --- the API -----------------------------------------------------------------------------------

def test_mapping_api_and_validation(lam, sqs):
    url, arn = make_queue(sqs, VisibilityTimeout=30)
    name = make_function(lam)
    fn_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"

    m = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name, Enabled=False)
    assert m["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert m["State"] == "Creating" and m["StateTransitionReason"] == "USER_INITIATED"
    assert (m["BatchSize"], m["MaximumBatchingWindowInSeconds"]) == (10, 0)
    assert m["EventSourceArn"] == arn and m["FunctionArn"] == fn_arn
    assert m["FunctionResponseTypes"] == []
    assert m["EventSourceMappingArn"].endswith(f":event-source-mapping:{m['UUID']}")
    uuid = m["UUID"]
    got = lam.get_event_source_mapping(UUID=uuid)
    assert got["State"] == "Disabled" and got["LastModified"] == m["LastModified"]

    # A second mapping of the same queue and function is refused; another function is fine.
    with pytest.raises(ClientError) as e:
        lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=fn_arn)
    assert code(e.value) == "ResourceConflictException" and uuid in str(e.value)
    other = make_function(lam)
    m2 = lam.create_event_source_mapping(
        EventSourceArn=arn, FunctionName=other, Enabled=False, BatchSize=50,
        MaximumBatchingWindowInSeconds=2, FunctionResponseTypes=["ReportBatchItemFailures"],
        ScalingConfig={"MaximumConcurrency": 3},
        FilterCriteria={"Filters": [{"Pattern": json.dumps({"body": {"k": ["v"]}})}]})
    assert m2["BatchSize"] == 50 and m2["MaximumBatchingWindowInSeconds"] == 2
    assert m2["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert m2["ScalingConfig"] == {"MaximumConcurrency": 3}
    assert m2["FilterCriteria"]["Filters"][0]["Pattern"] == json.dumps({"body": {"k": ["v"]}})

    listed = lam.list_event_source_mappings(EventSourceArn=arn)["EventSourceMappings"]
    assert sorted(x["UUID"] for x in listed) == sorted([uuid, m2["UUID"]])
    assert [x["UUID"] for x in lam.list_event_source_mappings(FunctionName=name)["EventSourceMappings"]] == [uuid]
    page = lam.list_event_source_mappings(EventSourceArn=arn, MaxItems=1)
    assert len(page["EventSourceMappings"]) == 1 and "NextMarker" in page
    rest = lam.list_event_source_mappings(EventSourceArn=arn, Marker=page["NextMarker"])
    assert len(rest["EventSourceMappings"]) == 1 and "NextMarker" not in rest

    u = lam.update_event_source_mapping(UUID=uuid, BatchSize=5)
    assert u["State"] == "Updating" and u["BatchSize"] == 5
    u = lam.update_event_source_mapping(UUID=uuid, Enabled=True)
    assert u["State"] == "Enabling"
    assert wait_state(lam, uuid, "Enabled")
    u = lam.update_event_source_mapping(UUID=uuid, Enabled=False)
    assert u["State"] == "Disabling"
    assert wait_state(lam, uuid, "Disabled")
    # Changing the function to one that already has a mapping of this queue.
    with pytest.raises(ClientError) as e:
        lam.update_event_source_mapping(UUID=uuid, FunctionName=other)
    assert code(e.value) == "ResourceConflictException"
    with pytest.raises(ClientError) as e:
        lam.update_event_source_mapping(UUID=uuid, BatchSize=100)
    assert code(e.value) == "InvalidParameterValueException"

    d = lam.delete_event_source_mapping(UUID=uuid)
    assert d["State"] == "Deleting" and d["UUID"] == uuid
    for call in (lambda: lam.get_event_source_mapping(UUID=uuid),
                 lambda: lam.delete_event_source_mapping(UUID=uuid),
                 lambda: lam.update_event_source_mapping(UUID=uuid, BatchSize=1)):
        with pytest.raises(ClientError) as e:
            call()
        assert code(e.value) == "ResourceNotFoundException"
    lam.delete_event_source_mapping(UUID=m2["UUID"])

    def refused(expected, **kw):
        args = {"EventSourceArn": arn, "FunctionName": name, "Enabled": False, **kw}
        with pytest.raises(ClientError) as e:
            lam.create_event_source_mapping(**args)
        assert code(e.value) == expected, (kw, e.value)
        return str(e.value)

    assert "NonExistentQueue" in refused(
        "InvalidParameterValueException", EventSourceArn=f"arn:aws:sqs:{REGION}:{ACCOUNT}:{unique('nope')}")
    refused("ResourceNotFoundException", FunctionName=unique("nofn"))
    refused("ResourceNotFoundException", FunctionName=f"{name}:nosuchalias")
    assert "Maximum batch window" in refused("InvalidParameterValueException", BatchSize=11)
    refused("ValidationException", BatchSize=10_001, MaximumBatchingWindowInSeconds=1)
    refused("ValidationException", MaximumBatchingWindowInSeconds=301)
    refused("ValidationException", ScalingConfig={"MaximumConcurrency": 1001})
    refused("InvalidParameterValueException", FilterCriteria={"Filters": [{"Pattern": '{"body": 1}'}]})
    refused("InvalidParameterValueException", StartingPosition="LATEST")
    refused("InvalidParameterValueException", EventSourceArn=f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/s")
    # The queue's visibility timeout may not be shorter than the function's timeout.
    short_url, short_arn = make_queue(sqs, VisibilityTimeout=2)
    assert "visibility timeout" in refused("InvalidParameterValueException", EventSourceArn=short_arn)
    with pytest.raises(ClientError) as e:
        lam.get_event_source_mapping(UUID="00000000-0000-0000-0000-000000000000")
    assert code(e.value) == "ResourceNotFoundException"
    for u in (url, short_url):
        sqs.delete_queue(QueueUrl=u)


# --- polling -----------------------------------------------------------------------------------

@needs_runtime
def test_a_batch_is_delivered_and_deleted(lam, sqs):
    out_url, _ = make_queue(sqs)
    url, arn = make_queue(sqs, VisibilityTimeout=10)
    name = make_function(lam, out_url)
    sent = {}
    for i in range(5):
        r = sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"n": i}),
                             MessageAttributes={"color": {"DataType": "String", "StringValue": f"c{i}"}})
        sent[r["MessageId"]] = i
    m = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name, BatchSize=10,
                                        MaximumBatchingWindowInSeconds=1)
    evts = events(sqs, out_url, 5)
    assert bodies(evts) == sorted(json.dumps({"n": i}) for i in range(5))
    assert len(evts) == 1, "the five waiting messages arrive in one batch"
    rec = evts[0]["Records"][0]
    assert rec["messageId"] in sent and rec["receiptHandle"]
    assert rec["eventSource"] == "aws:sqs" and rec["eventSourceARN"] == arn and rec["awsRegion"] == REGION
    assert rec["attributes"]["ApproximateReceiveCount"] == "1"
    assert {"SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"} <= set(rec["attributes"])
    i = sent[rec["messageId"]]
    assert rec["messageAttributes"] == {"color": {"stringValue": f"c{i}", "stringListValues": [],
                                                  "binaryListValues": [], "dataType": "String"}}
    assert rec["md5OfBody"] and rec["md5OfMessageAttributes"]
    assert wait_empty(sqs, url), "processed messages are deleted"
    # Messages sent later are picked up at once.
    sqs.send_message(QueueUrl=url, MessageBody="later")
    assert bodies(events(sqs, out_url, 1)) == ["later"]
    assert wait_empty(sqs, url)
    lam.delete_event_source_mapping(UUID=m["UUID"])


@needs_runtime
def test_report_batch_item_failures_and_function_errors_reach_the_dlq(lam, sqs):
    out_url, _ = make_queue(sqs)
    dlq_url, dlq_arn = make_queue(sqs)
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"})
    url, arn = make_queue(sqs, VisibilityTimeout=2, RedrivePolicy=redrive)
    name = make_function(lam, out_url, timeout=2)
    for body in ("ok-1", "bad-1", "ok-2"):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    m = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name,
                                        FunctionResponseTypes=["ReportBatchItemFailures"])
    deadline = time.time() + 40
    dead = []
    while not dead and time.time() < deadline:
        r = sqs.receive_message(QueueUrl=dlq_url, WaitTimeSeconds=1)
        dead = r.get("Messages", [])
    assert [d["Body"] for d in dead] == ["bad-1"], "only the reported failure is retried, then dead-lettered"
    assert wait_empty(sqs, url)
    seen = bodies(events(sqs, out_url, 10, timeout=3))
    assert seen.count("ok-1") == 1 and seen.count("ok-2") == 1, "successes are deleted at once"
    assert seen.count("bad-1") == 2, "the failure came back once before the redrive policy took it"

    # Without ReportBatchItemFailures, a function error leaves the whole batch.
    lam.update_event_source_mapping(UUID=m["UUID"], FunctionResponseTypes=[])
    sqs.send_message(QueueUrl=url, MessageBody="boom")
    deadline = time.time() + 40
    dead = []
    while not dead and time.time() < deadline:
        r = sqs.receive_message(QueueUrl=dlq_url, WaitTimeSeconds=1)
        dead = r.get("Messages", [])
    assert [d["Body"] for d in dead] == ["boom"]
    assert bodies(events(sqs, out_url, 10, timeout=3)).count("boom") == 2
    lam.delete_event_source_mapping(UUID=m["UUID"])


@needs_runtime
def test_filter_criteria_drop_what_does_not_match(lam, sqs):
    out_url, _ = make_queue(sqs)
    url, arn = make_queue(sqs, VisibilityTimeout=10)
    name = make_function(lam, out_url)
    pattern = {"body": {"kind": ["keep"], "n": [{"numeric": [">", 1]}]}}
    m = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name,
                                        FilterCriteria={"Filters": [{"Pattern": json.dumps(pattern)},
                                                                    {"Pattern": json.dumps({"body": ["plain"]})}]})
    keep = json.dumps({"kind": "keep", "n": 5})
    for body in (keep, json.dumps({"kind": "keep", "n": 0}), json.dumps({"kind": "drop", "n": 5}),
                 "plain", "other text"):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    assert wait_empty(sqs, url), "messages that match no filter are deleted too"
    assert bodies(events(sqs, out_url, 2)) == sorted([keep, "plain"])
    assert events(sqs, out_url, 1, timeout=2) == []
    lam.delete_event_source_mapping(UUID=m["UUID"])


@needs_runtime
def test_disable_enable_and_delete_stop_and_start_polling(lam, sqs):
    out_url, _ = make_queue(sqs)
    url, arn = make_queue(sqs, VisibilityTimeout=10)
    name = make_function(lam, out_url)
    m = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name, BatchSize=1)
    sqs.send_message(QueueUrl=url, MessageBody="first")
    assert bodies(events(sqs, out_url, 1)) == ["first"]

    lam.update_event_source_mapping(UUID=m["UUID"], Enabled=False)
    assert wait_state(lam, m["UUID"], "Disabled")
    time.sleep(2.5)
    sqs.send_message(QueueUrl=url, MessageBody="while disabled")
    time.sleep(3)
    assert counts(sqs, url) == (1, 0), "a disabled mapping does not poll"
    assert events(sqs, out_url, 1, timeout=1) == []

    lam.update_event_source_mapping(UUID=m["UUID"], Enabled=True)
    assert bodies(events(sqs, out_url, 1)) == ["while disabled"]
    assert wait_empty(sqs, url)

    lam.delete_event_source_mapping(UUID=m["UUID"])
    time.sleep(2.5)
    sqs.send_message(QueueUrl=url, MessageBody="after delete")
    time.sleep(3)
    assert counts(sqs, url) == (1, 0), "a deleted mapping does not poll"
    assert events(sqs, out_url, 1, timeout=1) == []
