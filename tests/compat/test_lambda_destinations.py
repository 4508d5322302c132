"""Lambda asynchronous invocation destinations and dead-letter queues through boto3: the
invocation record AWS sends to SQS, SNS, EventBridge and Lambda destinations on success and
failure, MaximumRetryAttempts and MaximumEventAgeInSeconds, and the event with its RequestID /
ErrorCode / ErrorMessage attributes in a dead-letter queue."""
from __future__ import annotations

import json
import os
import time

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT, REGION, BasaltServer, make_client_factory, unique
from test_lambda import _needs_python_runtime, create  # noqa: F401  (the runtime check)

FN_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:"

SRC = '''
def handler(event, context):
    if event.get("fail"):
        raise ValueError("failing on purpose: " + str(event.get("n")))
    return {"echo": event, "request_id": context.aws_request_id}
'''


@pytest.fixture(scope="module")
def srv():
    """A server of its own whose retries wait 61 s: a failing event with a 60 s maximum age
    is then too old to retry at once, and the other tests set MaximumRetryAttempts 0."""
    os.environ["BASALT_LAMBDA_RETRY_DELAYS_MS"] = "61000,61000"
    os.environ["BASALT_LAMBDA_LEASE_MS"] = "3000"
    try:
        s = BasaltServer(name="basalt-destinations")
        s.start()
    finally:
        del os.environ["BASALT_LAMBDA_RETRY_DELAYS_MS"]
        del os.environ["BASALT_LAMBDA_LEASE_MS"]
    yield s
    s.stop()
    panics = s.panics()
    s.close()
    assert not panics, "server panicked:\n" + "\n".join(panics)


@pytest.fixture(scope="module")
def make(srv, shape_checker):
    return make_client_factory(shape_checker, srv.endpoint)


@pytest.fixture(scope="module")
def lam(make):
    return make("lambda")


@pytest.fixture(scope="module")
def sqs(make):
    return make("sqs")


def queue(sqs, prefix="dq"):
    url = sqs.create_queue(QueueName=unique(prefix))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def receive(sqs, url, timeout=30.0, **kw):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, **kw).get("Messages", [])
        if got:
            for m in got:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
            return got
    pytest.fail(f"nothing arrived in {url} within {timeout}s")


def fire(lam, name, event):
    r = lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps(event).encode())
    assert r["StatusCode"] == 202
    return r["ResponseMetadata"]["RequestId"]


def test_on_success_sqs_gets_the_invocation_record(lam, sqs):
    url, qarn = queue(sqs)
    name, _, _ = create(lam, SRC)
    cfg = lam.put_function_event_invoke_config(
        FunctionName=name, DestinationConfig={"OnSuccess": {"Destination": qarn}})
    assert cfg["DestinationConfig"]["OnSuccess"]["Destination"] == qarn
    assert lam.get_function_event_invoke_config(FunctionName=name)["DestinationConfig"]["OnSuccess"] == {"Destination": qarn}
    rid = fire(lam, name, {"n": 1})
    [m] = receive(sqs, url)
    rec = json.loads(m["Body"])
    assert rec["version"] == "1.0"
    assert rec["timestamp"].endswith("Z") and "T" in rec["timestamp"]
    assert rec["requestContext"] == {
        "requestId": rid, "functionArn": f"{FN_ARN}{name}:$LATEST",
        "condition": "Success", "approximateInvokeCount": 1,
    }
    assert rec["requestPayload"] == {"n": 1}
    assert rec["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
    assert rec["responsePayload"] == {"echo": {"n": 1}, "request_id": rid}


def test_on_failure_after_retries_exhausted(lam, sqs):
    url, qarn = queue(sqs)
    ok_url, ok_arn = queue(sqs)
    name, _, _ = create(lam, SRC)
    lam.put_function_event_invoke_config(
        FunctionName=name, MaximumRetryAttempts=0,
        DestinationConfig={"OnSuccess": {"Destination": ok_arn}, "OnFailure": {"Destination": qarn}})
    rid = fire(lam, name, {"fail": True, "n": 2})
    [m] = receive(sqs, url)
    rec = json.loads(m["Body"])
    assert rec["requestContext"]["condition"] == "RetriesExhausted"
    assert rec["requestContext"]["approximateInvokeCount"] == 1
    assert rec["requestContext"]["requestId"] == rid
    assert rec["requestPayload"] == {"fail": True, "n": 2}
    assert rec["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
    assert rec["responsePayload"]["errorType"] == "ValueError"
    assert rec["responsePayload"]["errorMessage"] == "failing on purpose: 2"
    # Nothing went to the success destination.
    assert sqs.receive_message(QueueUrl=ok_url, WaitTimeSeconds=1).get("Messages", []) == []


def test_dead_letter_queue_gets_the_event_with_attributes(lam, sqs):
    url, qarn = queue(sqs, "dlq")
    name, _, _ = create(lam, SRC, DeadLetterConfig={"TargetArn": qarn})
    assert lam.get_function_configuration(FunctionName=name)["DeadLetterConfig"] == {"TargetArn": qarn}
    lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=0)
    rid = fire(lam, name, {"fail": True, "n": 3})
    [m] = receive(sqs, url, MessageAttributeNames=["All"])
    assert json.loads(m["Body"]) == {"fail": True, "n": 3}
    attrs = m["MessageAttributes"]
    assert attrs["RequestID"] == {"StringValue": rid, "DataType": "String"}
    assert attrs["ErrorCode"] == {"StringValue": "200", "DataType": "Number"}
    assert attrs["ErrorMessage"] == {"StringValue": "failing on purpose: 3", "DataType": "String"}


def test_sns_destination(lam, sqs, make):
    sns = make("sns")
    topic = sns.create_topic(Name=unique("dest"))["TopicArn"]
    url, qarn = queue(sqs)
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=qarn)
    name, _, _ = create(lam, SRC)
    lam.put_function_event_invoke_config(FunctionName=name, DestinationConfig={"OnSuccess": {"Destination": topic}})
    rid = fire(lam, name, {"n": 4})
    [m] = receive(sqs, url)
    env = json.loads(m["Body"])
    assert env["Type"] == "Notification" and env["TopicArn"] == topic
    rec = json.loads(env["Message"])
    assert rec["requestContext"]["requestId"] == rid
    assert rec["requestContext"]["condition"] == "Success"
    assert rec["responsePayload"]["echo"] == {"n": 4}


def test_eventbridge_destination(lam, sqs, make):
    events = make("events")
    bus = unique("destbus")
    bus_arn = events.create_event_bus(Name=bus)["EventBusArn"]
    url, qarn = queue(sqs)
    events.put_rule(Name="results", EventBusName=bus, EventPattern=json.dumps({"source": ["lambda"]}))
    events.put_targets(Rule="results", EventBusName=bus, Targets=[{"Id": "q", "Arn": qarn}])
    name, _, _ = create(lam, SRC)
    lam.put_function_event_invoke_config(
        FunctionName=name, MaximumRetryAttempts=0,
        DestinationConfig={"OnSuccess": {"Destination": bus_arn}, "OnFailure": {"Destination": bus_arn}})
    ok = fire(lam, name, {"n": 5})
    bad = fire(lam, name, {"n": 6, "fail": True})
    got = receive(sqs, url)
    while len(got) < 2:
        got += receive(sqs, url)
    by_id = {json.loads(m["Body"])["detail"]["requestContext"]["requestId"]: json.loads(m["Body"]) for m in got}
    assert by_id[ok]["source"] == "lambda"
    assert by_id[ok]["detail-type"] == "Lambda Function Invocation Result - Success"
    assert by_id[ok]["resources"] == [f"{FN_ARN}{name}:$LATEST"]
    assert by_id[ok]["detail"]["responsePayload"]["echo"] == {"n": 5}
    assert by_id[bad]["detail-type"] == "Lambda Function Invocation Result - Failure"
    assert by_id[bad]["detail"]["requestContext"]["condition"] == "RetriesExhausted"


def test_lambda_destination(lam, sqs):
    url, qarn = queue(sqs)
    # The sink forwards what it receives to the queue.
    sink_src = f'''
import boto3, json
def handler(event, context):
    boto3.client("sqs").send_message(QueueUrl="{url}", MessageBody=json.dumps(event))
'''
    sink, _, _ = create(lam, sink_src, Timeout=30)
    name, _, _ = create(lam, SRC)
    lam.put_function_event_invoke_config(
        FunctionName=name, DestinationConfig={"OnSuccess": {"Destination": FN_ARN + sink}})
    rid = fire(lam, name, {"n": 7})
    [m] = receive(sqs, url, timeout=60)
    rec = json.loads(m["Body"])
    assert rec["requestContext"]["requestId"] == rid
    assert rec["responsePayload"]["echo"] == {"n": 7}


def test_event_age_exceeded(lam, sqs):
    url, qarn = queue(sqs)
    name, _, _ = create(lam, SRC)
    # Two retries allowed, but the first would come 61 s after the event: older than 60 s.
    lam.put_function_event_invoke_config(
        FunctionName=name, MaximumEventAgeInSeconds=60, DestinationConfig={"OnFailure": {"Destination": qarn}})
    rid = fire(lam, name, {"fail": True, "n": 8})
    [m] = receive(sqs, url)
    rec = json.loads(m["Body"])
    assert rec["requestContext"]["requestId"] == rid
    assert rec["requestContext"]["condition"] == "EventAgeExceeded"
    assert rec["requestContext"]["approximateInvokeCount"] == 1
    assert rec["responseContext"]["functionError"] == "Unhandled"


def test_configuration_is_validated(lam, sqs):
    name, _, _ = create(lam, SRC)
    for bad in ["arn:aws:s3:::some-bucket", f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/t"]:
        with pytest.raises(ClientError) as e:
            lam.put_function_event_invoke_config(FunctionName=name, DestinationConfig={"OnFailure": {"Destination": bad}})
        assert e.value.response["Error"]["Code"] == "InvalidParameterValueException"
        assert bad in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as e:
        lam.update_function_configuration(FunctionName=name, DeadLetterConfig={"TargetArn": FN_ARN + name})
    assert e.value.response["Error"]["Code"] == "InvalidParameterValueException"
    for bad in ({"MaximumRetryAttempts": 3}, {"MaximumEventAgeInSeconds": 21601}):
        with pytest.raises(ClientError) as e:
            lam.put_function_event_invoke_config(FunctionName=name, **bad)
        # The model's range, checked as AWS checks it.
        assert e.value.response["Error"]["Code"] == "ValidationException"
    # Update merges into what is there; the destination stays.
    _, qarn = queue(sqs)
    lam.put_function_event_invoke_config(FunctionName=name, DestinationConfig={"OnSuccess": {"Destination": qarn}})
    up = lam.update_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=1)
    assert up["MaximumRetryAttempts"] == 1 and up["DestinationConfig"]["OnSuccess"]["Destination"] == qarn
