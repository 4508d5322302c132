"""Amazon SNS through boto3 (query protocol): topics, subscriptions, Publish/PublishBatch,
deliveries to SQS, Lambda, HTTP endpoints, email/SMS records, signatures, dead-letter queues,
and kill -9 durability of accepted messages."""
from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT, REGION, BasaltServer, free_port, make_client_factory, unique


@pytest.fixture(scope="module")
def sns(make_client):
    return make_client("sns")


@pytest.fixture(scope="module")
def sqs(make_client):
    return make_client("sqs")


def code(e):
    return e.value.response["Error"]["Code"]


def topic(sns, **kw):
    return sns.create_topic(Name=unique("topic"), **kw)["TopicArn"]


def queue(sqs):
    url = sqs.create_queue(QueueName=unique("q"))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def receive(sqs, url, n=1, timeout=10):
    got = []
    deadline = time.time() + timeout
    while len(got) < n and time.time() < deadline:
        r = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                MessageAttributeNames=["All"])
        for m in r.get("Messages", []):
            got.append(m)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return got


def canonical(m):
    if m["Type"] == "Notification":
        keys = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
    else:
        keys = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
    return "".join(f"{k}\n{m[k]}\n" for k in keys if k in m)


def verify_signature(m):
    """Checks the message's signature against the certificate at its SigningCertURL."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding
    except ImportError:
        pytest.skip("the cryptography package is not installed: signature not verified")
    cert_url = m.get("SigningCertURL") or m["SigningCertUrl"]
    with urllib.request.urlopen(cert_url, timeout=5) as r:
        cert = x509.load_pem_x509_certificate(r.read())
    digest = hashes.SHA256() if m["SignatureVersion"] == "2" else hashes.SHA1()
    cert.public_key().verify(base64.b64decode(m["Signature"]), canonical(m).encode(),
                             padding.PKCS1v15(), digest)


# --- topics ------------------------------------------------------------------------------------

def test_topic_crud_attributes_and_tags(sns):
    name = unique("crud")
    arn = sns.create_topic(Name=name, Attributes={"DisplayName": "Alerts"},
                           Tags=[{"Key": "team", "Value": "ml"}])["TopicArn"]
    assert arn == f"arn:aws:sns:{REGION}:{ACCOUNT}:{name}"
    # Idempotent with the same attributes; refused with others.
    assert sns.create_topic(Name=name, Attributes={"DisplayName": "Alerts"})["TopicArn"] == arn
    with pytest.raises(ClientError) as e:
        sns.create_topic(Name=name, Attributes={"DisplayName": "Other"})
    assert code(e) == "InvalidParameter"
    attrs = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
    assert attrs["TopicArn"] == arn and attrs["Owner"] == ACCOUNT
    assert attrs["DisplayName"] == "Alerts"
    assert (attrs["SubscriptionsConfirmed"], attrs["SubscriptionsPending"], attrs["SubscriptionsDeleted"]) == ("0", "0", "0")
    policy = json.loads(attrs["Policy"])
    assert policy["Statement"][0]["Resource"] == arn and "SNS:Publish" in policy["Statement"][0]["Action"]
    assert json.loads(attrs["EffectiveDeliveryPolicy"])["http"]["defaultHealthyRetryPolicy"]["numRetries"] == 3
    assert "FifoTopic" not in attrs

    sns.set_topic_attributes(TopicArn=arn, AttributeName="DisplayName", AttributeValue="Renamed")
    assert sns.get_topic_attributes(TopicArn=arn)["Attributes"]["DisplayName"] == "Renamed"
    with pytest.raises(ClientError) as e:
        sns.set_topic_attributes(TopicArn=arn, AttributeName="NoSuch", AttributeValue="x")
    assert code(e) == "InvalidParameter"
    assert e.value.response["Error"]["Message"] == "Invalid parameter: AttributeName"

    assert sns.list_tags_for_resource(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "ml"}]
    sns.tag_resource(ResourceArn=arn, Tags=[{"Key": "env", "Value": "dev"}])
    sns.untag_resource(ResourceArn=arn, TagKeys=["team"])
    assert sns.list_tags_for_resource(ResourceArn=arn)["Tags"] == [{"Key": "env", "Value": "dev"}]

    sns.delete_topic(TopicArn=arn)
    sns.delete_topic(TopicArn=arn)  # idempotent
    with pytest.raises(ClientError) as e:
        sns.get_topic_attributes(TopicArn=arn)
    assert code(e) == "NotFound"
    assert e.value.response["Error"]["Message"] == "Topic does not exist"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(sns.exceptions.NotFoundException):
        sns.publish(TopicArn=arn, Message="x")
    with pytest.raises(ClientError) as e:
        sns.list_tags_for_resource(ResourceArn=arn)
    assert code(e) == "ResourceNotFound"


def test_topic_names_and_list_pagination(sns):
    for bad in ["has space", "x" * 257, "dot.ted"]:
        with pytest.raises(ClientError) as e:
            sns.create_topic(Name=bad)
        assert code(e) == "InvalidParameter"
    prefix = unique("page")
    arns = {sns.create_topic(Name=f"{prefix}-{i:03d}")["TopicArn"] for i in range(105)}
    first = sns.list_topics()
    assert len(first["Topics"]) == 100 and first["NextToken"]
    seen = {t["TopicArn"] for p in sns.get_paginator("list_topics").paginate() for t in p["Topics"]}
    assert arns <= seen
    for a in arns:
        sns.delete_topic(TopicArn=a)


def test_fifo_topics(sns):
    with pytest.raises(ClientError) as e:
        sns.create_topic(Name=unique("nofifo"), Attributes={"FifoTopic": "true"})
    assert code(e) == "InvalidParameter"
    arn = sns.create_topic(Name=unique("orders") + ".fifo", Attributes={"FifoTopic": "true"})["TopicArn"]
    attrs = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
    assert attrs["FifoTopic"] == "true" and attrs["ContentBasedDeduplication"] == "false"
    with pytest.raises(ClientError) as e:
        sns.publish(TopicArn=arn, Message="m")
    assert "MessageGroupId" in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as e:
        sns.publish(TopicArn=arn, Message="m", MessageGroupId="g")
    assert "ContentBasedDeduplication" in e.value.response["Error"]["Message"]
    a = sns.publish(TopicArn=arn, Message="m", MessageGroupId="g", MessageDeduplicationId="d1")
    b = sns.publish(TopicArn=arn, Message="other", MessageGroupId="g", MessageDeduplicationId="d1")
    assert a["MessageId"] == b["MessageId"] and a["SequenceNumber"] == b["SequenceNumber"]
    c = sns.publish(TopicArn=arn, Message="m", MessageGroupId="g", MessageDeduplicationId="d2")
    assert int(c["SequenceNumber"]) > int(a["SequenceNumber"])
    sns.set_topic_attributes(TopicArn=arn, AttributeName="ContentBasedDeduplication", AttributeValue="true")
    x = sns.publish(TopicArn=arn, Message="same", MessageGroupId="g")
    y = sns.publish(TopicArn=arn, Message="same", MessageGroupId="g")
    assert x["MessageId"] == y["MessageId"]
    std = topic(sns)
    with pytest.raises(ClientError) as e:
        sns.publish(TopicArn=std, Message="m", MessageDeduplicationId="d")
    assert code(e) == "InvalidParameter"
    with pytest.raises(ClientError) as e:
        sns.set_topic_attributes(TopicArn=std, AttributeName="ContentBasedDeduplication", AttributeValue="true")
    assert code(e) == "InvalidParameter"


# --- publish -----------------------------------------------------------------------------------

def test_publish_validation(sns):
    arn = topic(sns)
    cases = [
        (dict(Message=""), "InvalidParameter", "Invalid parameter: Empty message"),
        (dict(Message="x" * (256 * 1024 + 1)), "InvalidParameter", "Invalid parameter: Message too long"),
        (dict(Message="{}", MessageStructure="json"), "InvalidParameter",
         "Invalid parameter: Message Structure - No default entry in JSON message body"),
        (dict(Message="not json", MessageStructure="json"), "InvalidParameter",
         "Invalid parameter: Message Structure - JSON message body failed to parse"),
        (dict(Message="m", MessageAttributes={"n": {"DataType": "Number", "StringValue": "abc"}}),
         "ParameterValueInvalid", None),
        (dict(Message="m", MessageAttributes={"n": {"DataType": "Date", "StringValue": "x"}}),
         "ParameterValueInvalid", None),
        (dict(Message="m", Subject="two\nlines"), "InvalidParameter", "Invalid parameter: Subject"),
    ]
    for kw, c, msg in cases:
        with pytest.raises(ClientError) as e:
            sns.publish(TopicArn=arn, **kw)
        assert code(e) == c, kw
        if msg:
            assert e.value.response["Error"]["Message"] == msg
    assert sns.publish(TopicArn=arn, Message="x" * (256 * 1024))["MessageId"]
    with pytest.raises(ClientError) as e:
        sns.publish(TopicArn="not-an-arn", Message="m")
    assert code(e) == "InvalidParameter"
    with pytest.raises(ClientError) as e:
        sns.publish(Message="m")
    assert code(e) == "InvalidParameter"


def test_sqs_subscription_envelope_raw_and_signature(sns, sqs):
    arn = topic(sns)
    url, qarn = queue(sqs)
    raw_url, raw_qarn = queue(sqs)
    sub = sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=qarn)["SubscriptionArn"]
    assert sub.startswith(arn + ":")
    raw_sub = sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=raw_qarn,
                            Attributes={"RawMessageDelivery": "true"})["SubscriptionArn"]
    # Subscribing again is idempotent.
    assert sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=qarn)["SubscriptionArn"] == sub
    attrs = {"color": {"DataType": "String", "StringValue": "red"},
             "n": {"DataType": "Number", "StringValue": "42"},
             "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"}}
    mid = sns.publish(TopicArn=arn, Message="hello", Subject="greeting", MessageAttributes=attrs)["MessageId"]

    [m] = receive(sqs, url)
    env = json.loads(m["Body"])
    assert env["Type"] == "Notification" and env["MessageId"] == mid and env["TopicArn"] == arn
    assert (env["Message"], env["Subject"]) == ("hello", "greeting")
    assert env["SignatureVersion"] == "1"
    assert env["UnsubscribeURL"].endswith(f"Action=Unsubscribe&SubscriptionArn={sub}")
    assert env["MessageAttributes"]["color"] == {"Type": "String", "Value": "red"}
    assert env["MessageAttributes"]["n"] == {"Type": "Number", "Value": "42"}
    assert env["MessageAttributes"]["blob"] == {"Type": "Binary", "Value": base64.b64encode(b"\x00\x01").decode()}
    assert env["Timestamp"].endswith("Z")
    verify_signature(env)

    [r] = receive(sqs, raw_url)
    assert r["Body"] == "hello"
    assert r["MessageAttributes"]["color"] == {"StringValue": "red", "DataType": "String"}
    assert r["MessageAttributes"]["blob"]["BinaryValue"] == b"\x00\x01"

    # SignatureVersion 2 signs with SHA256.
    sns.set_topic_attributes(TopicArn=arn, AttributeName="SignatureVersion", AttributeValue="2")
    sns.publish(TopicArn=arn, Message="v2")
    [m] = receive(sqs, url)
    env = json.loads(m["Body"])
    assert env["SignatureVersion"] == "2" and "Subject" not in env
    verify_signature(env)
    receive(sqs, raw_url)

    listed = sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]
    assert {s["SubscriptionArn"] for s in listed} == {sub, raw_sub}
    assert all(s["Owner"] == ACCOUNT and s["Protocol"] == "sqs" and s["TopicArn"] == arn for s in listed)
    mine = [s for s in sns.list_subscriptions()["Subscriptions"] if s["TopicArn"] == arn]
    assert len(mine) == 2
    t = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
    assert t["SubscriptionsConfirmed"] == "2"
    sns.unsubscribe(SubscriptionArn=raw_sub)
    assert sns.get_topic_attributes(TopicArn=arn)["Attributes"]["SubscriptionsDeleted"] == "1"
    with pytest.raises(ClientError) as e:
        sns.get_subscription_attributes(SubscriptionArn=raw_sub)
    assert code(e) == "NotFound"
    # The UnsubscribeURL removes the subscription, as AWS's does.
    with urllib.request.urlopen(env["UnsubscribeURL"], timeout=5) as resp:
        assert b"<UnsubscribeResponse" in resp.read()
    assert sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"] == []


def test_subscription_attributes(sns, sqs):
    arn = topic(sns)
    _, qarn = queue(sqs)
    _, dlq = queue(sqs)
    sub = sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=qarn, ReturnSubscriptionArn=True)["SubscriptionArn"]
    a = sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]
    assert a["SubscriptionArn"] == sub and a["TopicArn"] == arn and a["Endpoint"] == qarn
    assert (a["Protocol"], a["Owner"], a["PendingConfirmation"], a["RawMessageDelivery"]) == ("sqs", ACCOUNT, "false", "false")
    sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName="FilterPolicy",
                                    AttributeValue=json.dumps({"color": ["red"]}))
    sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName="RedrivePolicy",
                                    AttributeValue=json.dumps({"deadLetterTargetArn": dlq}))
    a = sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]
    assert json.loads(a["FilterPolicy"]) == {"color": ["red"]}
    assert a["FilterPolicyScope"] == "MessageAttributes"
    assert json.loads(a["RedrivePolicy"]) == {"deadLetterTargetArn": dlq}
    bad = [
        ("FilterPolicy", "{\"a\": {\"b\": [\"c\"]}}"),  # nested, attributes scope
        ("FilterPolicy", "not json"),
        ("FilterPolicyScope", "Elsewhere"),
        ("RawMessageDelivery", "maybe"),
        ("RedrivePolicy", json.dumps({"deadLetterTargetArn": "arn:aws:lambda:x"})),
        ("Nonsense", "1"),
    ]
    for name, value in bad:
        with pytest.raises(ClientError) as e:
            sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName=name, AttributeValue=value)
        assert code(e) == "InvalidParameter", name
        assert e.value.response["Error"]["Message"].startswith("Invalid parameter: "), name
    with pytest.raises(ClientError) as e:
        sns.subscribe(TopicArn=arn, Protocol="carrier-pigeon", Endpoint="x")
    assert e.value.response["Error"]["Message"] == \
        "Invalid parameter: Amazon SNS does not support this protocol string: carrier-pigeon"
    with pytest.raises(ClientError) as e:
        sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint="https://not-an-arn")
    assert code(e) == "InvalidParameter"
    with pytest.raises(ClientError) as e:
        sns.subscribe(TopicArn=arn, Protocol="email", Endpoint="a@b.co",
                      Attributes={"RawMessageDelivery": "true"})
    assert code(e) == "InvalidParameter"
    with pytest.raises(ClientError) as e:
        sns.subscribe(TopicArn=arn + "-missing", Protocol="sqs", Endpoint=qarn)
    assert code(e) == "NotFound"


def test_filter_policies(sns, sqs):
    arn = topic(sns)
    red_url, red_arn = queue(sqs)
    body_url, body_arn = queue(sqs)
    big_url, big_arn = queue(sqs)
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=red_arn,
                  Attributes={"FilterPolicy": json.dumps({"color": ["red"], "tags": ["urgent"]})})
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=body_arn,
                  Attributes={"FilterPolicyScope": "MessageBody", "RawMessageDelivery": "true",
                              "FilterPolicy": json.dumps({"order": {"kind": ["refund"]}})})
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=big_arn, Attributes={
        "RawMessageDelivery": "true",
        "FilterPolicy": json.dumps({"amount": [{"numeric": [">=", 100]}]})})

    def pub(msg, **attrs):
        ma = {}
        for k, v in attrs.items():
            if isinstance(v, list):
                ma[k] = {"DataType": "String.Array", "StringValue": json.dumps(v)}
            elif isinstance(v, (int, float)):
                ma[k] = {"DataType": "Number", "StringValue": str(v)}
            else:
                ma[k] = {"DataType": "String", "StringValue": v}
        sns.publish(TopicArn=arn, Message=msg, MessageAttributes=ma)

    pub("r1", color="red", tags=["urgent", "x"])
    pub("r2", color="red", tags=["later"])
    pub("b1", color="blue")
    pub(json.dumps({"order": {"kind": "refund", "id": 1}}))
    pub(json.dumps({"order": {"kind": "sale"}}))
    pub("big", amount=150)
    pub("small", amount=99.5)
    assert [json.loads(m["Body"])["Message"] for m in receive(sqs, red_url, 2, timeout=4)] == ["r1"]
    assert [json.loads(m["Body"])["order"]["id"] for m in receive(sqs, body_url, 2, timeout=3)] == [1]
    assert [m["Body"] for m in receive(sqs, big_url, 2, timeout=3)] == ["big"]


def test_message_structure_json(sns, sqs):
    arn = topic(sns)
    url, qarn = queue(sqs)
    email = f"{unique('ms')}@example.com"
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=qarn)
    sns.subscribe(TopicArn=arn, Protocol="email", Endpoint=email)
    sns.publish(TopicArn=arn, MessageStructure="json",
                Message=json.dumps({"default": "for everyone", "sqs": "for queues"}))
    [m] = receive(sqs, url)
    assert json.loads(m["Body"])["Message"] == "for queues"
    recs = deliveries(sns, email)
    assert [r["Message"] for r in recs] == ["for everyone"]


def test_publish_batch(sns, sqs):
    arn = topic(sns)
    url, qarn = queue(sqs)
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=qarn, Attributes={"RawMessageDelivery": "true"})
    r = sns.publish_batch(TopicArn=arn, PublishBatchRequestEntries=[
        {"Id": "a", "Message": "one"},
        {"Id": "b", "Message": ""},
        {"Id": "c", "Message": "three", "MessageAttributes": {"k": {"DataType": "String", "StringValue": "v"}}},
    ])
    assert sorted(s["Id"] for s in r["Successful"]) == ["a", "c"]
    assert all(s["MessageId"] for s in r["Successful"])
    assert r["Failed"] == [{"Id": "b", "Code": "InvalidParameter", "Message": "Invalid parameter: Empty message",
                            "SenderFault": True}]
    assert sorted(m["Body"] for m in receive(sqs, url, 2)) == ["one", "three"]
    errors = [
        ([], "EmptyBatchRequest"),
        ([{"Id": f"m{i}", "Message": "x"} for i in range(11)], "TooManyEntriesInBatchRequest"),
        ([{"Id": "same", "Message": "x"}, {"Id": "same", "Message": "y"}], "BatchEntryIdsNotDistinct"),
        ([{"Id": "bad id!", "Message": "x"}], "InvalidBatchEntryId"),
        ([{"Id": "a", "Message": "x" * 200_000}, {"Id": "b", "Message": "x" * 100_000}], "BatchRequestTooLong"),
    ]
    for entries, c in errors:
        with pytest.raises(ClientError) as e:
            sns.publish_batch(TopicArn=arn, PublishBatchRequestEntries=entries)
        assert code(e) == c


# --- email / sms records -----------------------------------------------------------------------

def deliveries(sns, endpoint_value):
    base = sns.meta.endpoint_url.rstrip("/")
    q = urllib.parse.urlencode({"endpoint": endpoint_value})
    with urllib.request.urlopen(f"{base}/_basalt/sns/deliveries?{q}", timeout=5) as r:
        return json.loads(r.read())["Deliveries"]


def test_email_and_sms_records(sns):
    arn = topic(sns)
    email, ejson, phone = f"{unique('u')}@example.com", f"{unique('j')}@example.com", "+15555550123"
    subs = [sns.subscribe(TopicArn=arn, Protocol=p, Endpoint=e, ReturnSubscriptionArn=True)["SubscriptionArn"]
            for p, e in [("email", email), ("email-json", ejson), ("sms", phone)]]
    for s in subs:
        assert sns.get_subscription_attributes(SubscriptionArn=s)["Attributes"]["PendingConfirmation"] == "false"
    mid = sns.publish(TopicArn=arn, Message="server down", Subject="Alert")["MessageId"]
    [e] = deliveries(sns, email)
    assert (e["MessageId"], e["Subject"], e["Body"], e["Protocol"]) == (mid, "Alert", "server down", "email")
    [j] = deliveries(sns, ejson)
    env = json.loads(j["Body"])
    assert env["Type"] == "Notification" and env["Message"] == "server down"
    verify_signature(env)
    [s] = deliveries(sns, phone)
    assert s["Body"] == "server down"
    direct = f"+1555555{int(time.time()) % 10000:04d}"
    did = sns.publish(PhoneNumber=direct, Message="your code is 1234")["MessageId"]
    [d] = deliveries(sns, direct)
    assert (d["MessageId"], d["Body"]) == (did, "your code is 1234")
    with pytest.raises(ClientError) as ex:
        sns.publish(PhoneNumber="not a number", Message="x")
    assert code(ex) == "InvalidParameter"


# --- lambda ------------------------------------------------------------------------------------

def _has_python_runtime():
    from pathlib import Path
    runtimes = Path(os.environ.get("BASALT_RUNTIME_DIR", Path.home() / ".cache/basalt/runtimes"))
    return any(runtimes.glob("python3.*/.installed"))


def test_lambda_subscription(sns, sqs, make_client):
    if not _has_python_runtime():
        pytest.skip("no Lambda Python runtime installed (basalt runtimes pull)")
    import io
    import zipfile
    lam = make_client("lambda")
    url, _ = queue(sqs)
    source = ("import boto3, json, os\n"
              "def handler(event, context):\n"
              "    boto3.client('sqs').send_message(QueueUrl=os.environ['OUT'], MessageBody=json.dumps(event))\n")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("index.py", source)
    name = unique("snsfn")
    fn = lam.create_function(FunctionName=name, Runtime="python3.12", Role=f"arn:aws:iam::{ACCOUNT}:role/r",
                             Handler="index.handler", Code={"ZipFile": buf.getvalue()},
                             Environment={"Variables": {"OUT": url}})["FunctionArn"]
    lam.get_waiter("function_active_v2").wait(FunctionName=name)
    arn = topic(sns)
    sub = sns.subscribe(TopicArn=arn, Protocol="lambda", Endpoint=fn)["SubscriptionArn"]
    mid = sns.publish(TopicArn=arn, Message="to lambda", Subject="s",
                      MessageAttributes={"k": {"DataType": "String", "StringValue": "v"}})["MessageId"]
    [m] = receive(sqs, url, timeout=60)
    rec = json.loads(m["Body"])["Records"][0]
    assert rec["EventSource"] == "aws:sns" and rec["EventVersion"] == "1.0"
    assert rec["EventSubscriptionArn"] == sub
    assert (rec["Sns"]["MessageId"], rec["Sns"]["Message"], rec["Sns"]["Subject"]) == (mid, "to lambda", "s")
    assert rec["Sns"]["MessageAttributes"] == {"k": {"Type": "String", "Value": "v"}}
    verify_signature(rec["Sns"])
    lam.delete_function(FunctionName=name)


# --- HTTP, retries, dead-letter queues, durability (own server with short delays) ---------------

class Endpoint:
    """A local HTTP endpoint recording what SNS POSTs; `status` is what it answers."""

    def __init__(self, port=None):
        self.requests = []
        self.status = 200
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", 0))
                outer.requests.append(({k.lower(): v for k, v in self.headers.items()}, self.rfile.read(n).decode()))
                self.send_response(outer.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port or 0), H)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, n=1, timeout=10, kind=None):
        deadline = time.time() + timeout
        while time.time() < deadline:
            got = [r for r in self.requests if kind is None or r[0].get("x-amz-sns-message-type") == kind]
            if len(got) >= n:
                return got
            time.sleep(0.05)
        raise AssertionError(f"{len(self.requests)} requests, wanted {n} {kind or ''}")

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def own_server():
    saved = dict(os.environ)
    os.environ["BASALT_SNS_RETRY_SCALE"] = "0.01"
    os.environ["BASALT_SNS_LEASE_MS"] = "2000"
    srv = BasaltServer(name="basalt-sns")
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()
        os.environ.clear()
        os.environ.update(saved)


def confirmed_http(sns, arn, ep, **attrs):
    r = sns.subscribe(TopicArn=arn, Protocol="http", Endpoint=ep.url, Attributes=attrs)
    assert r["SubscriptionArn"] == "pending confirmation"
    headers, body = ep.wait(1, kind="SubscriptionConfirmation")[-1]
    conf = json.loads(body)
    return conf


def test_http_confirmation_and_notification(own_server, shape_checker):
    sns = make_client_factory(shape_checker, own_server.endpoint)("sns")
    arn = topic(sns)
    ep = Endpoint()
    try:
        conf = confirmed_http(sns, arn, ep)
        headers = ep.requests[0][0]
        assert headers["x-amz-sns-message-type"] == "SubscriptionConfirmation"
        assert headers["x-amz-sns-topic-arn"] == arn
        assert conf["Type"] == "SubscriptionConfirmation" and conf["TopicArn"] == arn and conf["Token"]
        assert conf["SubscribeURL"].startswith(own_server.endpoint + "/_basalt/sns/")
        verify_signature(conf)
        [pending] = sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]
        assert pending["SubscriptionArn"] == "PendingConfirmation"
        assert sns.get_topic_attributes(TopicArn=arn)["Attributes"]["SubscriptionsPending"] == "1"
        # Pending subscriptions get nothing.
        sns.publish(TopicArn=arn, Message="too early")
        # GETting the SubscribeURL confirms, as with AWS.
        with urllib.request.urlopen(conf["SubscribeURL"], timeout=5) as r:
            xml = r.read().decode()
        assert "<ConfirmSubscriptionResponse" in xml and arn in xml
        [sub] = sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]
        assert sub["SubscriptionArn"].startswith(arn + ":")
        # ConfirmSubscription with the same token is idempotent.
        assert sns.confirm_subscription(TopicArn=arn, Token=conf["Token"])["SubscriptionArn"] == sub["SubscriptionArn"]
        with pytest.raises(ClientError) as e:
            sns.confirm_subscription(TopicArn=arn, Token="nope")
        assert code(e) == "InvalidParameter"

        mid = sns.publish(TopicArn=arn, Message="hello http", Subject="hi")["MessageId"]
        headers, body = ep.wait(1, kind="Notification")[0]
        assert headers["x-amz-sns-message-id"] == mid
        assert headers["x-amz-sns-subscription-arn"] == sub["SubscriptionArn"]
        assert headers["content-type"].startswith("text/plain")
        n = json.loads(body)
        assert (n["Message"], n["Subject"], n["MessageId"]) == ("hello http", "hi", mid)
        verify_signature(n)
        assert len(ep.wait(1, kind="Notification")) == 1  # "too early" never came

        sns.set_subscription_attributes(SubscriptionArn=sub["SubscriptionArn"], AttributeName="RawMessageDelivery",
                                        AttributeValue="true")
        sns.publish(TopicArn=arn, Message="raw body")
        headers, body = ep.wait(2, kind="Notification")[1]
        assert body == "raw body" and headers["x-amz-sns-rawdelivery"] == "true"
    finally:
        ep.close()


def test_failed_deliveries_go_to_the_dead_letter_queue(own_server, shape_checker):
    make = make_client_factory(shape_checker, own_server.endpoint)
    sns, sqs = make("sns"), make("sqs")
    arn = topic(sns)
    dlq_url, dlq = queue(sqs)
    ep = Endpoint()
    try:
        conf = confirmed_http(sns, arn, ep)
        sub = sns.confirm_subscription(TopicArn=arn, Token=conf["Token"])["SubscriptionArn"]
        sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName="DeliveryPolicy", AttributeValue=json.dumps(
            {"healthyRetryPolicy": {"numRetries": 2, "minDelayTarget": 1, "maxDelayTarget": 1}}))
        sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName="RedrivePolicy",
                                        AttributeValue=json.dumps({"deadLetterTargetArn": dlq}))
        ep.status = 500
        mid = sns.publish(TopicArn=arn, Message="doomed")["MessageId"]
        [m] = receive(sqs, dlq_url, timeout=15)
        assert json.loads(m["Body"])["MessageId"] == mid
        assert m["MessageAttributes"]["ErrorCode"]["StringValue"] == "500"
        # The first try and two retries.
        assert len(ep.wait(3, kind="Notification")) == 3
        sns.unsubscribe(SubscriptionArn=sub)
    finally:
        ep.close()

    # An SQS subscriber whose queue is gone: a client error, straight to the DLQ.
    gone_url, gone = queue(sqs)
    sub = sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=gone,
                        Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq})})["SubscriptionArn"]
    sqs.delete_queue(QueueUrl=gone_url)
    mid = sns.publish(TopicArn=arn, Message="nowhere")["MessageId"]
    bodies = [json.loads(m["Body"]) for m in receive(sqs, dlq_url, timeout=10)]
    assert [b["MessageId"] for b in bodies] == [mid]
    sns.unsubscribe(SubscriptionArn=sub)


def test_accepted_messages_survive_kill_9(own_server, shape_checker):
    make = make_client_factory(shape_checker, own_server.endpoint)
    sns = make("sns")
    arn = topic(sns)
    port = free_port()
    ep = Endpoint(port)
    conf = confirmed_http(sns, arn, ep)
    sub = sns.confirm_subscription(TopicArn=arn, Token=conf["Token"])["SubscriptionArn"]
    # 100 retries 200 ms apart (scaled): the endpoint may be down for 20 seconds.
    sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName="DeliveryPolicy", AttributeValue=json.dumps(
        {"healthyRetryPolicy": {"numRetries": 100, "minDelayTarget": 20, "maxDelayTarget": 20}}))
    ep.close()
    ids = {sns.publish(TopicArn=arn, Message=f"m{i}")["MessageId"] for i in range(3)}
    own_server.kill9()
    own_server.start()
    ep = Endpoint(port)
    try:
        got = ep.wait(3, timeout=20, kind="Notification")
        assert {json.loads(b)["MessageId"] for _, b in got} >= ids
        # The topic, its subscription and the signing certificate outlived the crash.
        sns = make_client_factory(shape_checker, own_server.endpoint)("sns")
        assert sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]["PendingConfirmation"] == "false"
        verify_signature(json.loads(got[0][1]))
    finally:
        ep.close()


# --- HTTPS endpoints: system roots + BASALT_SNS_CA_BUNDLE, self-signed on loopback by switch --

def _x509():
    try:
        from cryptography import x509  # noqa: F401
    except ImportError:
        pytest.skip("the cryptography package is not installed: no certificates to test with")


def make_cert(tmp, stem, issuer=None):
    """A certificate for 127.0.0.1/localhost, self-signed or (with `issuer`, a (cert, key)
    pair) issued by a CA; returns (cert path, key path, cert, key)."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, stem)])
    is_ca = stem.endswith("ca")
    now = dt.datetime.now(dt.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(subject)
         .issuer_name(issuer[0].subject if issuer else subject).public_key(key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
         .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True))
    if is_ca:
        b = b.add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
    else:
        b = b.add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]), critical=False)
    cert = b.sign(issuer[1] if issuer else key, hashes.SHA256())
    cert_path, key_path = tmp / f"{stem}.pem", tmp / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path, cert, key


class TlsEndpoint(Endpoint):
    """`Endpoint` over HTTPS; counts the handshakes that failed (what a refused certificate
    looks like from the server's side)."""

    def __init__(self, cert_path, key_path, host="127.0.0.1"):
        import ssl

        super().__init__()
        self.failed_handshakes = 0
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert_path, key_path)
        srv, outer = self.server, self
        plain_get_request = srv.get_request

        def get_request():
            sock, addr = plain_get_request()
            try:
                return ctx.wrap_socket(sock, server_side=True), addr
            except (ssl.SSLError, OSError):
                outer.failed_handshakes += 1
                sock.close()
                raise

        srv.get_request = get_request
        self.url = f"https://{host}:{self.port}/hook"


def server_with(env):
    saved = dict(os.environ)
    os.environ.update({"BASALT_SNS_RETRY_SCALE": "0.01", "BASALT_SNS_LEASE_MS": "2000"})
    for k in ("BASALT_SNS_CA_BUNDLE", "BASALT_SNS_TRUST_LOOPBACK_TLS"):
        os.environ.pop(k, None)
    os.environ.update(env)
    srv = BasaltServer(name="basalt-sns-tls")
    try:
        srv.start()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return srv


def refused(sns, arn, ep):
    """Subscribes `ep` and checks that Basalt tried it and TLS refused every try."""
    r = sns.subscribe(TopicArn=arn, Protocol="https", Endpoint=ep.url)
    assert r["SubscriptionArn"] == "pending confirmation"
    deadline = time.time() + 10
    while ep.failed_handshakes < 2 and time.time() < deadline:
        time.sleep(0.05)
    assert ep.failed_handshakes >= 2, "Basalt never tried (or did not retry) the endpoint"
    assert ep.requests == []


def https_round_trip(sns, arn, ep, server):
    r = sns.subscribe(TopicArn=arn, Protocol="https", Endpoint=ep.url)
    assert r["SubscriptionArn"] == "pending confirmation"
    headers, body = ep.wait(1, kind="SubscriptionConfirmation")[-1]
    conf = json.loads(body)
    assert headers["x-amz-sns-topic-arn"] == arn and conf["Type"] == "SubscriptionConfirmation"
    verify_signature(conf)
    with urllib.request.urlopen(conf["SubscribeURL"], timeout=5) as resp:
        assert arn in resp.read().decode()
    [sub] = [s for s in sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"] if s["Endpoint"] == ep.url]
    assert sub["Protocol"] == "https" and sub["SubscriptionArn"].startswith(arn + ":")
    mid = sns.publish(TopicArn=arn, Message="over tls", Subject="s")["MessageId"]
    headers, body = ep.wait(1, kind="Notification")[0]
    n = json.loads(body)
    assert (n["Message"], n["MessageId"], headers["x-amz-sns-subscription-arn"]) == (
        "over tls", mid, sub["SubscriptionArn"])
    verify_signature(n)


def test_https_self_signed_on_loopback_only_with_the_switch(tmp_path, shape_checker):
    _x509()
    cert, key, _, _ = make_cert(tmp_path, "selfsigned")
    for switch in ("0", "1"):
        srv = server_with({"BASALT_SNS_TRUST_LOOPBACK_TLS": switch})
        ep = TlsEndpoint(cert, key)
        try:
            sns = make_client_factory(shape_checker, srv.endpoint)("sns")
            arn = topic(sns)
            if switch == "1":
                https_round_trip(sns, arn, ep, srv)
                # `localhost` is loopback too.
                local = TlsEndpoint(cert, key, host="localhost")
                try:
                    https_round_trip(sns, topic(sns), local, srv)
                finally:
                    local.close()
            else:
                refused(sns, arn, ep)
        finally:
            ep.close()
            srv.stop()


def test_https_with_a_ca_bundle(tmp_path, shape_checker):
    _x509()
    ca_path, _, ca, ca_key = make_cert(tmp_path, "testca")
    leaf, leaf_key, _, _ = make_cert(tmp_path, "leaf", issuer=(ca, ca_key))
    own, own_key, _, _ = make_cert(tmp_path, "selfsigned")
    srv = server_with({"BASALT_SNS_CA_BUNDLE": str(ca_path)})
    good, bad = TlsEndpoint(leaf, leaf_key), TlsEndpoint(own, own_key)
    try:
        sns = make_client_factory(shape_checker, srv.endpoint)("sns")
        https_round_trip(sns, topic(sns), good, srv)
        # Without the loopback switch a self-signed certificate is refused, bundle or not.
        refused(sns, topic(sns), bad)
    finally:
        good.close()
        bad.close()
        srv.stop()
