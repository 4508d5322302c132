"""S3 bucket notifications through boto3: Put/GetBucketNotificationConfiguration, validation,
and delivery of S3 event messages to SQS queues and Lambda functions."""
from __future__ import annotations

import json
import time
import urllib.parse

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT, REGION, unique


@pytest.fixture(scope="module")
def sqs(make_client):
    return make_client("sqs")


@pytest.fixture
def queue(sqs):
    url = sqs.create_queue(QueueName=unique("s3n"))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    yield url, arn
    try:
        sqs.delete_queue(QueueUrl=url)
    except ClientError:
        pass


def code(e):
    return e.value.response["Error"]["Code"]


def receive(sqs, url, want, timeout=15.0):
    """Receives (and deletes) messages until `want` arrived or the time is up."""
    got = []
    deadline = time.time() + timeout
    while len(got) < want and time.time() < deadline:
        r = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for m in r.get("Messages", []):
            got.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return got


def records(msgs):
    return [r for m in msgs for r in m.get("Records", [])]


def test_empty_configuration(s3, bucket):
    r = s3.get_bucket_notification_configuration(Bucket=bucket)
    assert not any(k in r for k in ("QueueConfigurations", "TopicConfigurations",
                                    "LambdaFunctionConfigurations", "EventBridgeConfiguration"))
    with pytest.raises(ClientError) as e:
        s3.get_bucket_notification_configuration(Bucket=unique("nobkt"))
    assert code(e) == "NoSuchBucket"


def test_round_trip(s3, sqs, bucket, queue):
    url, arn = queue
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "EventBridgeConfiguration": {},
        "QueueConfigurations": [
            {"Id": "mine", "QueueArn": arn, "Events": ["s3:ObjectCreated:*"],
             "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "in/"},
                                                {"Name": "Suffix", "Value": ".csv"}]}}},
            {"QueueArn": arn, "Events": ["s3:ObjectRemoved:Delete"]},
        ],
    })
    r = s3.get_bucket_notification_configuration(Bucket=bucket)
    assert r["EventBridgeConfiguration"] == {}
    q = r["QueueConfigurations"]
    assert len(q) == 2
    assert q[0]["Id"] == "mine" and q[0]["QueueArn"] == arn and q[0]["Events"] == ["s3:ObjectCreated:*"]
    # Rule names come back as botocore's enum spells them, whatever case was sent.
    assert q[0]["Filter"]["Key"]["FilterRules"] == [{"Name": "prefix", "Value": "in/"},
                                                    {"Name": "suffix", "Value": ".csv"}]
    # An id is generated when none is given.
    assert q[1]["Id"] and q[1]["Events"] == ["s3:ObjectRemoved:Delete"] and "Filter" not in q[1]
    # An empty configuration turns notifications off.
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={})
    r = s3.get_bucket_notification_configuration(Bucket=bucket)
    assert "QueueConfigurations" not in r and "EventBridgeConfiguration" not in r


def test_validation_errors(s3, bucket, queue):
    _, arn = queue
    missing = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{unique('missing')}"

    def put(cfg, **kw):
        with pytest.raises(ClientError) as e:
            s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=cfg, **kw)
        assert code(e) == "InvalidArgument", e.value.response
        return e.value.response["Error"]

    err = put({"QueueConfigurations": [{"QueueArn": missing, "Events": ["s3:ObjectCreated:*"]}]})
    assert err["Message"] == "Unable to validate the following destination configurations"
    assert err["ArgumentName"] == missing
    assert err["ArgumentValue"] == "The destination queue does not exist"
    err = put({"LambdaFunctionConfigurations": [{
        "LambdaFunctionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{unique('nofn')}",
        "Events": ["s3:ObjectCreated:*"]}]})
    assert err["Message"] == "Unable to validate the following destination configurations"
    err = put({"QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:Nope"]}]})
    assert err["Message"] == "The event is not supported for notifications"
    err = put({"QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"],
                                        "Filter": {"Key": {"FilterRules": [{"Name": "middle", "Value": "x"}]}}}]})
    assert err["Message"] == "filter rule name must be either prefix or suffix"
    err = put({"QueueConfigurations": [
        {"QueueArn": arn, "Events": ["s3:ObjectCreated:*"],
         "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "a/"}]}}},
        {"QueueArn": arn, "Events": ["s3:ObjectCreated:Put"],
         "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "a/b"}]}}},
    ]})
    assert err["Message"].startswith("Configuration is ambiguously defined")
    err = put({"QueueConfigurations": [
        {"QueueArn": arn, "Events": ["s3:ObjectRemoved:*"]},
        {"QueueArn": arn, "Events": ["s3:ObjectRemoved:Delete"]},
    ]})
    assert err["Message"].startswith("Configurations overlap")
    err = put({"QueueConfigurations": [{"QueueArn": "arn:aws:sns:us-east-1:000000000000:t",
                                        "Events": ["s3:ObjectCreated:*"]}]})
    assert err["Message"] == "The ARN is not well formed"
    # Nothing was stored by the refused requests; distinct suffixes under one prefix are fine.
    assert "QueueConfigurations" not in s3.get_bucket_notification_configuration(Bucket=bucket)
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"QueueConfigurations": [
        {"QueueArn": arn, "Events": ["s3:ObjectCreated:*"],
         "Filter": {"Key": {"FilterRules": [{"Name": "suffix", "Value": ".jpg"}]}}},
        {"QueueArn": arn, "Events": ["s3:ObjectCreated:*"],
         "Filter": {"Key": {"FilterRules": [{"Name": "suffix", "Value": ".png"}]}}},
    ]})
    # SkipDestinationValidation accepts a queue that does not exist (yet).
    s3.put_bucket_notification_configuration(
        Bucket=bucket, SkipDestinationValidation=True,
        NotificationConfiguration={"QueueConfigurations": [{"QueueArn": missing, "Events": ["s3:ObjectCreated:*"]}]})


def test_queue_receives_test_event_then_records(s3, sqs, bucket, queue):
    url, arn = queue
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "QueueConfigurations": [{"Id": "created", "QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]})
    [test] = receive(sqs, url, 1)
    assert test["Service"] == "Amazon S3" and test["Event"] == "s3:TestEvent"
    assert test["Bucket"] == bucket and test["RequestId"] and test["HostId"] and test["Time"].endswith("Z")

    resp = s3.put_object(Bucket=bucket, Key="dir/hello world.txt", Body=b"hello")
    [msg] = receive(sqs, url, 1)
    [r] = msg["Records"]
    assert r["eventVersion"] == "2.1" and r["eventSource"] == "aws:s3" and r["awsRegion"] == REGION
    assert r["eventName"] == "ObjectCreated:Put"
    assert r["eventTime"].endswith("Z")
    assert r["userIdentity"]["principalId"]
    assert r["requestParameters"]["sourceIPAddress"]
    assert r["responseElements"]["x-amz-request-id"] == resp["ResponseMetadata"]["RequestId"]
    assert r["responseElements"]["x-amz-id-2"] == resp["ResponseMetadata"]["HostId"]
    s = r["s3"]
    assert s["s3SchemaVersion"] == "1.0" and s["configurationId"] == "created"
    assert s["bucket"]["name"] == bucket and s["bucket"]["arn"] == f"arn:aws:s3:::{bucket}"
    assert s["bucket"]["ownerIdentity"]["principalId"]
    o = s["object"]
    assert o["key"] == "dir/hello+world.txt"
    assert urllib.parse.unquote_plus(o["key"]) == "dir/hello world.txt"
    assert o["size"] == 5 and o["eTag"] == "5d41402abc4b2a76b9719d911017c592" and o["sequencer"]
    assert "versionId" not in o

    # Copy and multipart uploads are object creations too; a delete is not configured here.
    s3.copy_object(Bucket=bucket, Key="copy.txt", CopySource={"Bucket": bucket, "Key": "dir/hello world.txt"})
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp.bin")["UploadId"]
    etag = s3.upload_part(Bucket=bucket, Key="mp.bin", UploadId=up, PartNumber=1, Body=b"x" * 10)["ETag"]
    s3.complete_multipart_upload(Bucket=bucket, Key="mp.bin", UploadId=up,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    s3.delete_object(Bucket=bucket, Key="copy.txt")
    got = records(receive(sqs, url, 2))
    assert sorted((r["eventName"], r["s3"]["object"]["key"]) for r in got) == [
        ("ObjectCreated:CompleteMultipartUpload", "mp.bin"), ("ObjectCreated:Copy", "copy.txt")]
    assert receive(sqs, url, 1, timeout=1.5) == []


def test_filters_and_deletes(s3, sqs, bucket, queue):
    url, arn = queue
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"QueueConfigurations": [
        {"Id": "jpgs", "QueueArn": arn, "Events": ["s3:ObjectCreated:Put"],
         "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "img/"},
                                            {"Name": "suffix", "Value": ".jpg"}]}}},
        {"Id": "gone", "QueueArn": arn, "Events": ["s3:ObjectRemoved:*"]},
    ]})
    assert receive(sqs, url, 1)[0]["Event"] == "s3:TestEvent"
    for k in ("img/a.jpg", "img/b.png", "doc/c.jpg", "img/sub/d.jpg"):
        s3.put_object(Bucket=bucket, Key=k, Body=b"x")
    got = records(receive(sqs, url, 2))
    assert sorted(r["s3"]["object"]["key"] for r in got) == ["img/a.jpg", "img/sub/d.jpg"]
    assert {r["s3"]["configurationId"] for r in got} == {"jpgs"}
    assert receive(sqs, url, 1, timeout=1.5) == []

    s3.delete_object(Bucket=bucket, Key="doc/c.jpg")
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "img/b.png"}]})
    got = records(receive(sqs, url, 2))
    assert sorted((r["eventName"], r["s3"]["object"]["key"], r["s3"]["configurationId"]) for r in got) == [
        ("ObjectRemoved:Delete", "doc/c.jpg", "gone"), ("ObjectRemoved:Delete", "img/b.png", "gone")]
    assert all("size" not in r["s3"]["object"] for r in got)


def test_versioned_bucket_events(s3, sqs, bucket, queue):
    url, arn = queue
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"QueueConfigurations": [
        {"QueueArn": arn, "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]}]})
    assert receive(sqs, url, 1)[0]["Event"] == "s3:TestEvent"
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"v1")["VersionId"]
    marker = s3.delete_object(Bucket=bucket, Key="k")["VersionId"]
    s3.delete_object(Bucket=bucket, Key="k", VersionId=v1)
    # S3 does not promise delivery order; the sequencer orders the events of one key.
    got = sorted(records(receive(sqs, url, 3)), key=lambda r: r["s3"]["object"]["sequencer"])
    assert [(r["eventName"], r["s3"]["object"].get("versionId")) for r in got] == [
        ("ObjectCreated:Put", v1), ("ObjectRemoved:DeleteMarkerCreated", marker), ("ObjectRemoved:Delete", v1)]


def test_deliveries_survive_a_deleted_queue(s3, sqs, bucket, queue):
    """A queue deleted after configuration: writes still succeed, the events are dropped."""
    url, arn = queue
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]})
    sqs.delete_queue(QueueUrl=url)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"


def test_lambda_destination_is_invoked(s3, make_client, bucket):
    import io
    import os
    import zipfile
    from pathlib import Path
    runtimes = Path(os.environ.get("BASALT_RUNTIME_DIR", Path.home() / ".cache/basalt/runtimes"))
    if not any(runtimes.glob("python3.*/.installed")):
        pytest.skip("no Lambda Python runtime installed (basalt runtimes pull)")
    lam = make_client("lambda")
    out = unique("s3nout")
    s3.create_bucket(Bucket=out)
    src = '''
import json, boto3, os
def handler(event, context):
    boto3.client("s3").put_object(Bucket=os.environ["OUT"], Key="got/" + context.aws_request_id,
                                  Body=json.dumps(event).encode())
'''
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("index.py", src)
    fn = unique("s3nfn")
    arn = lam.create_function(FunctionName=fn, Runtime="python3.12", Role=f"arn:aws:iam::{ACCOUNT}:role/r",
                              Handler="index.handler", Code={"ZipFile": buf.getvalue()}, Timeout=30,
                              Environment={"Variables": {"OUT": out}})["FunctionArn"]
    lam.get_waiter("function_active_v2").wait(FunctionName=fn)
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "LambdaFunctionConfigurations": [{"Id": "fn", "LambdaFunctionArn": arn, "Events": ["s3:ObjectCreated:*"]}]})
    s3.put_object(Bucket=bucket, Key="up/x.txt", Body=b"abc")
    deadline = time.time() + 30
    while time.time() < deadline and not s3.list_objects_v2(Bucket=out, Prefix="got/").get("KeyCount"):
        time.sleep(0.2)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=out, Prefix="got/").get("Contents", [])]
    assert len(keys) == 1
    event = json.loads(s3.get_object(Bucket=out, Key=keys[0])["Body"].read())
    [r] = event["Records"]
    assert r["eventName"] == "ObjectCreated:Put" and r["s3"]["configurationId"] == "fn"
    assert r["s3"]["object"]["key"] == "up/x.txt" and r["s3"]["object"]["size"] == 3
