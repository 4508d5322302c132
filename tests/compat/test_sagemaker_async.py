"""Asynchronous inference (API Reference: InvokeEndpointAsync, AsyncInferenceConfig; Developer
Guide: "Asynchronous inference", "Check prediction results"): the request answers at once
with InferenceId and OutputLocation (the `X-Amzn-SageMaker-OutputLocation` header); the model
runs later on the input read from S3; its answer lands at `{S3OutputPath}/{id}.out`, a
failure at `{S3FailurePath}/{id}-error.out`; `InferenceResult` notifications go to the
success and error topics (here an SQS queue subscribed to each). InvokeEndpointWithResponseStream
sends the same answer as PayloadPart events.
"""
from __future__ import annotations

import json
import time

import pytest
from botocore.exceptions import ClientError

from conftest import unique
from test_sagemaker import ENV, ROLE, XGBOOST, small_xgboost_model, sm, smr  # noqa: F401 (fixtures)

pytestmark = pytest.mark.skipif(not (ENV / ".installed").exists(),
                                reason=f"the SageMaker environment is not installed ({ENV}): run basalt runtimes pull")


@pytest.fixture(scope="module")
def sns(make_client):
    return make_client("sns")


@pytest.fixture(scope="module")
def sqs(make_client):
    return make_client("sqs")


def topic_to_queue(sns, sqs):
    topic = sns.create_topic(Name=unique("async"))["TopicArn"]
    url = sqs.create_queue(QueueName=unique("async"))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    return topic, url


def receive(sqs, url, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", [])
        if got:
            return json.loads(got[0]["Body"])
    raise AssertionError("no notification")


def object_at(s3, uri, timeout=30):
    bucket, key = uri[len("s3://"):].split("/", 1)
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            return s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
        except ClientError:
            time.sleep(0.2)
    raise AssertionError(f"nothing at {uri}")


@pytest.fixture(scope="module")
def async_endpoint(sm, s3, sns, sqs):
    artifacts, bucket = small_xgboost_model(sm, s3, "sm-async")
    ok_topic, ok_queue = topic_to_queue(sns, sqs)
    err_topic, err_queue = topic_to_queue(sns, sqs)
    name = unique("async-ep")
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE,
                    PrimaryContainer={"Image": XGBOOST, "ModelDataUrl": artifacts})
    sm.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": name, "InstanceType": "ml.m5.large",
                             "InitialInstanceCount": 1}],
        AsyncInferenceConfig={
            "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 2},
            "OutputConfig": {"S3OutputPath": f"s3://{bucket}/async-out", "S3FailurePath": f"s3://{bucket}/async-fail",
                             "NotificationConfig": {"SuccessTopic": ok_topic, "ErrorTopic": err_topic}}})
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    return {"name": name, "bucket": bucket, "ok": ok_queue, "err": err_queue}


def test_an_async_request_writes_its_answer_to_s3_and_notifies(smr, s3, sqs, async_endpoint):
    ep, bucket = async_endpoint["name"], async_endpoint["bucket"]
    s3.put_object(Bucket=bucket, Key="in/rows.csv", Body=b"0.5,1.0,-0.3,2.0\n-2.0,0.1,1.5,0.0\n")
    r = smr.invoke_endpoint_async(EndpointName=ep, InputLocation=f"s3://{bucket}/in/rows.csv",
                                  ContentType="text/csv", InferenceId="order-42")
    assert r["InferenceId"] == "order-42"
    assert r["OutputLocation"].startswith(f"s3://{bucket}/async-out/") and r["OutputLocation"].endswith(".out")
    assert r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-sagemaker-outputlocation"] == r["OutputLocation"]
    assert r["FailureLocation"].startswith(f"s3://{bucket}/async-fail/")
    out = object_at(s3, r["OutputLocation"])
    # The same model answers the same rows in real time.
    live = smr.invoke_endpoint(EndpointName=ep, ContentType="text/csv",
                               Body=b"0.5,1.0,-0.3,2.0\n-2.0,0.1,1.5,0.0\n")["Body"].read().decode()
    assert out == live and len(out.strip().replace("\n", ",").split(",")) == 2
    note = receive(sqs, async_endpoint["ok"])
    assert (note["eventName"], note["eventSource"], note["invocationStatus"]) == ("InferenceResult", "aws:sagemaker", "Completed")
    assert note["inferenceId"] == "order-42"
    assert note["requestParameters"] == {"endpointName": ep, "inputLocation": f"s3://{bucket}/in/rows.csv",
                                         "contentType": "text/csv"}
    assert note["responseParameters"]["outputLocation"] == r["OutputLocation"]


def test_a_failed_request_writes_its_failure_and_notifies_the_error_topic(smr, s3, sqs, async_endpoint):
    ep, bucket = async_endpoint["name"], async_endpoint["bucket"]
    s3.put_object(Bucket=bucket, Key="in/bad.csv", Body=b"not,a,number,row\n")
    r = smr.invoke_endpoint_async(EndpointName=ep, InputLocation=f"s3://{bucket}/in/bad.csv", ContentType="text/csv")
    failure = object_at(s3, r["FailureLocation"])
    assert "ModelError" in failure
    note = receive(sqs, async_endpoint["err"])
    assert note["invocationStatus"] == "Failed" and note["inferenceId"] == r["InferenceId"]
    assert "ModelError" in note["failureReason"]
    # A missing input fails the same way.
    r = smr.invoke_endpoint_async(EndpointName=ep, InputLocation=f"s3://{bucket}/in/missing.csv", ContentType="text/csv")
    assert "does not exist" in object_at(s3, r["FailureLocation"])


def test_what_is_refused(sm, smr, async_endpoint):
    with pytest.raises(ClientError) as e:
        smr.invoke_endpoint_async(EndpointName=unique("nope"), InputLocation="s3://b/k")
    assert e.value.response["Error"]["Code"] == "ValidationError"
    with pytest.raises(ClientError) as e:
        smr.invoke_endpoint_async(EndpointName=async_endpoint["name"], InputLocation="https://example.com/in.csv")
    assert e.value.response["Error"]["Code"] == "ValidationError"


def test_response_stream_sends_the_answer_as_payload_parts(smr, async_endpoint):
    ep = async_endpoint["name"]
    rows = b"0.5,1.0,-0.3,2.0\n-2.0,0.1,1.5,0.0\n"
    whole = smr.invoke_endpoint(EndpointName=ep, ContentType="text/csv", Body=rows)["Body"].read()
    r = smr.invoke_endpoint_with_response_stream(EndpointName=ep, ContentType="text/csv", Body=rows)
    assert r["InvokedProductionVariant"] == "AllTraffic" and r["ContentType"].startswith("text/csv")
    parts = [e["PayloadPart"]["Bytes"] for e in r["Body"]]
    assert b"".join(parts) == whole and len(parts) >= 1
    with pytest.raises(ClientError) as e:
        smr.invoke_endpoint_with_response_stream(EndpointName=ep, ContentType="text/csv", Body=b"not,numbers\n")
    assert e.value.response["Error"]["Code"] == "ModelError"
