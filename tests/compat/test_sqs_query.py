"""Amazon SQS through the query protocol older SDKs speak (botocore before 1.31.64, the AWS
SDK for Java v1, PHP v2...): form-encoded `Action=...&Version=2012-11-05` requests, signed
for `sqs`, answered in XML. Requests are built here from the wire format of the last query
model (botocore 1.31.63) and checked against what the JSON protocol answers for the same
queue, so both protocols share one state. When an old botocore is installed
(`python3 -m venv /tmp/oldsdk && /tmp/oldsdk/bin/pip install botocore==1.31.63 boto3==1.28.63`,
or BASALT_OLD_BOTO_PYTHON naming its interpreter), a script drives it end to end too.

Wire format: https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-making-api-requests-xml.html
Errors: https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/CommonErrors.html
"""
from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import textwrap
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from conftest import ACCOUNT, REGION, unique

NS = "http://queue.amazonaws.com/doc/2012-11-05/"
OLD_PYTHON = Path(os.environ.get("BASALT_OLD_BOTO_PYTHON", "/tmp/oldsdk/bin/python"))


class Reply:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.raw = body
        self.root = ET.fromstring(body)

    def find(self, path):
        """Text of the first element at `path` (namespace-free, `/`-separated)."""
        el = self.el(path)
        return None if el is None else (el.text or "")

    def el(self, path, root=None):
        return (root if root is not None else self.root).find(_ns(path))

    def all(self, path, root=None):
        return (root if root is not None else self.root).findall(_ns(path))

    def error_code(self):
        return self.find("Error/Code")


def _ns(path):
    return "/".join(f"{{{NS}}}{p}" if p not in (".", "..") else p for p in path.split("/"))


def query(endpoint, action, params=(), path="/", version="2012-11-05", sign=True):
    """POSTs one form request and parses its XML answer."""
    form = [("Action", action)] + ([("Version", version)] if version else []) + list(params)
    body = urllib.parse.urlencode(form)
    url = endpoint.rstrip("/") + path
    req = AWSRequest(method="POST", url=url, data=body,
                     headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    if sign:
        SigV4Auth(Credentials("test", "test"), "sqs", REGION).add_auth(req)
    prepared = req.prepare()
    http_req = urllib.request.Request(url, data=body.encode(), method="POST",
                                      headers=dict(prepared.headers.items()))
    try:
        with urllib.request.urlopen(http_req, timeout=30) as r:
            return Reply(r.status, dict(r.headers), r.read())
    except urllib.error.HTTPError as e:
        return Reply(e.code, dict(e.headers), e.read())


def attrs_of(reply, path, root=None):
    """`<Attribute><Name/><Value/></Attribute>` pairs (flattened maps) as a dict."""
    return {a.find(_ns("Name")).text: a.find(_ns("Value")).text
            for a in reply.all(path, root)}


@pytest.fixture(scope="module")
def sqs(make_client):
    return make_client("sqs")


@pytest.fixture
def q(endpoint):
    """A queue created through the query protocol; its URL."""
    r = query(endpoint, "CreateQueue", [("QueueName", unique("qq"))])
    assert r.status == 200, r.raw
    url = r.find("CreateQueueResult/QueueUrl")
    yield url
    query(endpoint, "DeleteQueue", [("QueueUrl", url)])


def test_create_get_list_attributes_delete(endpoint, sqs):
    name = unique("qlife")
    r = query(endpoint, "CreateQueue", [
        ("QueueName", name),
        ("Attribute.1.Name", "VisibilityTimeout"), ("Attribute.1.Value", "45"),
        ("Attribute.2.Name", "DelaySeconds"), ("Attribute.2.Value", "3"),
        ("Tag.1.Key", "team"), ("Tag.1.Value", "ml"),
    ])
    assert r.status == 200, r.raw
    # The response element is namespaced and carries the request id in ResponseMetadata.
    assert r.root.tag == f"{{{NS}}}CreateQueueResponse"
    assert r.headers["content-type"].startswith("text/xml")
    url = r.find("CreateQueueResult/QueueUrl")
    assert url == f"{endpoint.rstrip('/')}/{ACCOUNT}/{name}"
    assert r.find("ResponseMetadata/RequestId") == r.headers["x-amzn-requestid"]

    assert query(endpoint, "GetQueueUrl", [("QueueName", name)]).find("GetQueueUrlResult/QueueUrl") == url
    listed = query(endpoint, "ListQueues", [("QueueNamePrefix", name)])
    assert [e.text for e in listed.all("ListQueuesResult/QueueUrl")] == [url]

    got = query(endpoint, "GetQueueAttributes", [("QueueUrl", url), ("AttributeName.1", "All")])
    attrs = attrs_of(got, "GetQueueAttributesResult/Attribute")
    assert attrs["VisibilityTimeout"] == "45" and attrs["DelaySeconds"] == "3"
    assert attrs["QueueArn"] == f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"
    # One state behind both protocols: the JSON client sees what the form set.
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])[
        "Attributes"]["VisibilityTimeout"] == "45"
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"team": "ml"}

    r = query(endpoint, "SetQueueAttributes", [("QueueUrl", url),
                                              ("Attribute.1.Name", "VisibilityTimeout"),
                                              ("Attribute.1.Value", "7")])
    assert r.status == 200 and r.root.tag == f"{{{NS}}}SetQueueAttributesResponse"
    # An operation without output answers with ResponseMetadata alone.
    assert r.el("SetQueueAttributesResult") is None and r.find("ResponseMetadata/RequestId")
    got = query(endpoint, "GetQueueAttributes", [("QueueUrl", url),
                                                 ("AttributeName.1", "VisibilityTimeout")])
    assert attrs_of(got, "GetQueueAttributesResult/Attribute") == {"VisibilityTimeout": "7"}

    assert query(endpoint, "DeleteQueue", [("QueueUrl", url)]).status == 200
    r = query(endpoint, "GetQueueUrl", [("QueueName", name)])
    assert r.status == 400
    assert r.root.tag == f"{{{NS}}}ErrorResponse"
    assert r.find("Error/Type") == "Sender"
    assert r.error_code() == "AWS.SimpleQueueService.NonExistentQueue"
    assert r.find("Error/Message") == "The specified queue does not exist."
    assert r.find("RequestId")


def test_send_receive_change_delete(endpoint, sqs, q):
    attrs = [
        ("MessageAttribute.1.Name", "kind"),
        ("MessageAttribute.1.Value.DataType", "String"),
        ("MessageAttribute.1.Value.StringValue", "résumé"),
        ("MessageAttribute.2.Name", "blob"),
        ("MessageAttribute.2.Value.DataType", "Binary"),
        ("MessageAttribute.2.Value.BinaryValue", base64.b64encode(b"\x00\x01\xff").decode()),
        ("MessageAttribute.3.Name", "n"),
        ("MessageAttribute.3.Value.DataType", "Number"),
        ("MessageAttribute.3.Value.StringValue", "1.5"),
    ]
    body = "hello <query> & ünïcode"
    sent = query(endpoint, "SendMessage", [("QueueUrl", q), ("MessageBody", body)] + attrs)
    assert sent.status == 200, sent.raw
    assert sent.find("SendMessageResult/MD5OfMessageBody") == hashlib.md5(body.encode()).hexdigest()
    # The attributes' digest is the one the JSON protocol gives the same attributes.
    same = sqs.send_message(QueueUrl=q, MessageBody="json", MessageAttributes={
        "kind": {"DataType": "String", "StringValue": "résumé"},
        "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01\xff"},
        "n": {"DataType": "Number", "StringValue": "1.5"},
    })
    assert sent.find("SendMessageResult/MD5OfMessageAttributes") == same["MD5OfMessageAttributes"]
    msg_id = sent.find("SendMessageResult/MessageId")

    got = query(endpoint, "ReceiveMessage", [
        ("QueueUrl", q), ("MaxNumberOfMessages", "10"), ("AttributeName.1", "All"),
        ("MessageAttributeName.1", "All"), ("VisibilityTimeout", "30"),
    ])
    msgs = got.all("ReceiveMessageResult/Message")
    assert [m.find(_ns("Body")).text for m in msgs] == [body, "json"]
    m = msgs[0]
    assert m.find(_ns("MessageId")).text == msg_id
    assert m.find(_ns("MD5OfBody")).text == hashlib.md5(body.encode()).hexdigest()
    system = attrs_of(got, "Attribute", m)
    assert system["ApproximateReceiveCount"] == "1" and int(system["SentTimestamp"]) > 0
    user = {a.find(_ns("Name")).text: a.find(_ns("Value")) for a in m.findall(_ns("MessageAttribute"))}
    assert user["kind"].find(_ns("StringValue")).text == "résumé"
    assert user["kind"].find(_ns("DataType")).text == "String"
    assert base64.b64decode(user["blob"].find(_ns("BinaryValue")).text) == b"\x00\x01\xff"
    assert user["n"].find(_ns("StringValue")).text == "1.5"
    handles = [x.find(_ns("ReceiptHandle")).text for x in msgs]

    # Visibility 0 makes the first one receivable again at once (by the JSON client too).
    r = query(endpoint, "ChangeMessageVisibility", [("QueueUrl", q), ("ReceiptHandle", handles[0]),
                                                    ("VisibilityTimeout", "0")])
    assert r.status == 200, r.raw
    # Message attribute names in AttributeNames, as AWS's examples send them.
    again = sqs.receive_message(QueueUrl=q, AttributeNames=["ApproximateReceiveCount"])["Messages"]
    assert [x["MessageId"] for x in again] == [msg_id]
    assert again[0]["Attributes"]["ApproximateReceiveCount"] == "2"

    assert query(endpoint, "DeleteMessage", [("QueueUrl", q),
                                             ("ReceiptHandle", again[0]["ReceiptHandle"])]).status == 200
    assert query(endpoint, "DeleteMessage", [("QueueUrl", q), ("ReceiptHandle", handles[1])]).status == 200
    empty = query(endpoint, "ReceiveMessage", [("QueueUrl", q)])
    assert empty.status == 200 and empty.all("ReceiveMessageResult/Message") == []
    assert empty.el("ReceiveMessageResult") is not None


def test_batches(endpoint, q):
    sent = query(endpoint, "SendMessageBatch", [
        ("QueueUrl", q),
        ("SendMessageBatchRequestEntry.1.Id", "a"),
        ("SendMessageBatchRequestEntry.1.MessageBody", "one"),
        ("SendMessageBatchRequestEntry.2.Id", "b"),
        ("SendMessageBatchRequestEntry.2.MessageBody", "two"),
        ("SendMessageBatchRequestEntry.2.MessageAttribute.1.Name", "k"),
        ("SendMessageBatchRequestEntry.2.MessageAttribute.1.Value.DataType", "String"),
        ("SendMessageBatchRequestEntry.2.MessageAttribute.1.Value.StringValue", "v"),
        ("SendMessageBatchRequestEntry.3.Id", "c"),
        ("SendMessageBatchRequestEntry.3.MessageBody", "late"),
        ("SendMessageBatchRequestEntry.3.DelaySeconds", "901"),
    ])
    assert sent.status == 200, sent.raw
    ok = sent.all("SendMessageBatchResult/SendMessageBatchResultEntry")
    assert sorted(e.find(_ns("Id")).text for e in ok) == ["a", "b"]
    for e in ok:
        assert e.find(_ns("MD5OfMessageBody")).text == hashlib.md5(
            {"a": b"one", "b": b"two"}[e.find(_ns("Id")).text]).hexdigest()
    failed = sent.all("SendMessageBatchResult/BatchResultErrorEntry")
    assert [e.find(_ns("Id")).text for e in failed] == ["c"]
    assert failed[0].find(_ns("SenderFault")).text == "true"
    assert failed[0].find(_ns("Code")).text

    got = query(endpoint, "ReceiveMessage", [("QueueUrl", q), ("MaxNumberOfMessages", "10")])
    handles = [m.find(_ns("ReceiptHandle")).text for m in got.all("ReceiveMessageResult/Message")]
    assert len(handles) == 2
    changed = query(endpoint, "ChangeMessageVisibilityBatch", [
        ("QueueUrl", q),
        ("ChangeMessageVisibilityBatchRequestEntry.1.Id", "x"),
        ("ChangeMessageVisibilityBatchRequestEntry.1.ReceiptHandle", handles[0]),
        ("ChangeMessageVisibilityBatchRequestEntry.1.VisibilityTimeout", "60"),
    ])
    assert [e.find(_ns("Id")).text for e in
            changed.all("ChangeMessageVisibilityBatchResult/ChangeMessageVisibilityBatchResultEntry")] == ["x"]
    deleted = query(endpoint, "DeleteMessageBatch", [
        ("QueueUrl", q),
        ("DeleteMessageBatchRequestEntry.1.Id", "d1"),
        ("DeleteMessageBatchRequestEntry.1.ReceiptHandle", handles[0]),
        ("DeleteMessageBatchRequestEntry.2.Id", "d2"),
        ("DeleteMessageBatchRequestEntry.2.ReceiptHandle", handles[1]),
    ])
    assert sorted(e.find(_ns("Id")).text for e in
                  deleted.all("DeleteMessageBatchResult/DeleteMessageBatchResultEntry")) == ["d1", "d2"]
    assert deleted.all("DeleteMessageBatchResult/BatchResultErrorEntry") == []

    # An empty list goes as `Name=`, as botocore's query serializer sends it.
    empty = query(endpoint, "SendMessageBatch", [("QueueUrl", q), ("SendMessageBatchRequestEntry", "")])
    assert empty.status == 400
    assert empty.error_code() == "AWS.SimpleQueueService.EmptyBatchRequest"


def test_tags_purge(endpoint, sqs, q):
    assert query(endpoint, "TagQueue", [("QueueUrl", q), ("Tag.1.Key", "a"), ("Tag.1.Value", "1"),
                                        ("Tag.2.Key", "b"), ("Tag.2.Value", "2")]).status == 200
    tags = query(endpoint, "ListQueueTags", [("QueueUrl", q)])
    assert {t.find(_ns("Key")).text: t.find(_ns("Value")).text
            for t in tags.all("ListQueueTagsResult/Tag")} == {"a": "1", "b": "2"}
    assert query(endpoint, "UntagQueue", [("QueueUrl", q), ("TagKey.1", "a")]).status == 200
    assert sqs.list_queue_tags(QueueUrl=q)["Tags"] == {"b": "2"}

    sqs.send_message(QueueUrl=q, MessageBody="x")
    assert query(endpoint, "PurgeQueue", [("QueueUrl", q)]).status == 200
    assert "Messages" not in sqs.receive_message(QueueUrl=q)
    # A second purge within 60 seconds is refused, with the query code and a 403.
    again = query(endpoint, "PurgeQueue", [("QueueUrl", q)])
    assert again.status == 403
    assert again.error_code() == "AWS.SimpleQueueService.PurgeQueueInProgress"


def test_errors(endpoint, q):
    r = query(endpoint, "NoSuchAction")
    assert r.status == 400 and r.error_code() == "InvalidAction"
    r = query(endpoint, "ListQueues", version="2008-01-01")
    assert r.status == 400 and r.error_code() == "InvalidAction"
    name = q.rsplit("/", 1)[1]
    r = query(endpoint, "CreateQueue", [("QueueName", name), ("Attribute.1.Name", "VisibilityTimeout"),
                                        ("Attribute.1.Value", "99")])
    assert r.status == 400 and r.error_code() == "QueueAlreadyExists"
    r = query(endpoint, "CreateQueue", [("QueueName", unique("q")), ("Attribute.1.Name", "Nope"),
                                        ("Attribute.1.Value", "1")])
    assert r.error_code() == "InvalidAttributeName"
    r = query(endpoint, "SendMessage", [("QueueUrl", q + "-missing"), ("MessageBody", "x")])
    assert r.status == 400 and r.error_code() == "AWS.SimpleQueueService.NonExistentQueue"
    r = query(endpoint, "ChangeMessageVisibility", [("QueueUrl", q), ("ReceiptHandle", "garbage"),
                                                    ("VisibilityTimeout", "1")])
    assert r.status == 400 and r.error_code() == "ReceiptHandleIsInvalid"
    r = query(endpoint, "ReceiveMessage", [("QueueUrl", q), ("MaxNumberOfMessages", "ten")])
    assert r.status == 400 and r.error_code() == "InvalidParameterValue"
    r = query(endpoint, "ReceiveMessage", [("QueueUrl", q), ("AttributeName.1", "SentTimestamp")])
    assert r.status == 200, r.raw
    r = query(endpoint, "GetQueueAttributes", [("QueueUrl", q), ("AttributeName.1", "Bogus")])
    assert r.status == 400 and r.error_code() == "InvalidAttributeName"
    r = query(endpoint, "GetQueueUrl", [])
    assert r.status == 400 and r.find("Error/Type") == "Sender"


def test_queue_named_by_path(endpoint, sqs, q):
    """The AWS SDK for Java v1 posts to the queue URL and leaves QueueUrl out of the form."""
    path = urllib.parse.urlparse(q).path
    r = query(endpoint, "SendMessage", [("MessageBody", "by path")], path=path)
    assert r.status == 200, r.raw
    got = sqs.receive_message(QueueUrl=q)["Messages"]
    assert [m["Body"] for m in got] == ["by path"]
    assert got[0]["MessageId"] == r.find("SendMessageResult/MessageId")


def test_get_with_query_string(endpoint, q):
    """Query actions may come as a GET with the parameters in the query string."""
    params = urllib.parse.urlencode({"Action": "GetQueueAttributes", "Version": "2012-11-05",
                                     "QueueUrl": q, "AttributeName.1": "QueueArn"})
    url = f"{endpoint.rstrip('/')}/?{params}"
    req = AWSRequest(method="GET", url=url)
    SigV4Auth(Credentials("test", "test"), "sqs", REGION).add_auth(req)
    with urllib.request.urlopen(urllib.request.Request(url, headers=dict(req.prepare().headers.items())),
                                timeout=30) as r:
        reply = Reply(r.status, dict(r.headers), r.read())
    assert attrs_of(reply, "GetQueueAttributesResult/Attribute") == {
        "QueueArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{q.rsplit('/', 1)[1]}"}


OLD_SDK_SCRIPT = textwrap.dedent("""
    import sys, boto3, botocore
    assert botocore.__version__ == "1.31.63", botocore.__version__
    s = boto3.client("sqs", endpoint_url=sys.argv[1], region_name="us-east-1",
                     aws_access_key_id="test", aws_secret_access_key="test")
    # This botocore speaks awsQuery: its model says so.
    assert s.meta.service_model.protocol == "query"
    name = sys.argv[2]
    u = s.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "5"}, tags={"a": "b"})["QueueUrl"]
    assert s.get_queue_url(QueueName=name)["QueueUrl"] == u
    assert s.list_queues(QueueNamePrefix=name)["QueueUrls"] == [u]
    attrs = {"k": {"DataType": "String", "StringValue": "v"},
             "b": {"DataType": "Binary", "BinaryValue": b"\\x00\\x01"}}
    # botocore checks MD5OfMessageBody and MD5OfMessageAttributes itself.
    s.send_message(QueueUrl=u, MessageBody="hi", MessageAttributes=attrs)
    r = s.send_message_batch(QueueUrl=u, Entries=[{"Id": "a", "MessageBody": "x"},
                                                 {"Id": "b", "MessageBody": "y"}])
    assert sorted(e["Id"] for e in r["Successful"]) == ["a", "b"]
    got = []
    while len(got) < 3:
        m = s.receive_message(QueueUrl=u, MaxNumberOfMessages=10, AttributeNames=["All"],
                              MessageAttributeNames=["All"], WaitTimeSeconds=1)
        got += m.get("Messages", [])
    first = [x for x in got if x["Body"] == "hi"][0]
    assert first["MessageAttributes"]["b"]["BinaryValue"] == b"\\x00\\x01"
    assert first["Attributes"]["ApproximateReceiveCount"] == "1"
    s.change_message_visibility(QueueUrl=u, ReceiptHandle=got[0]["ReceiptHandle"], VisibilityTimeout=10)
    r = s.delete_message_batch(QueueUrl=u, Entries=[{"Id": str(i), "ReceiptHandle": x["ReceiptHandle"]}
                                                    for i, x in enumerate(got)])
    assert len(r["Successful"]) == 3 and not r.get("Failed")
    s.tag_queue(QueueUrl=u, Tags={"c": "d"})
    s.untag_queue(QueueUrl=u, TagKeys=["a"])
    assert s.list_queue_tags(QueueUrl=u)["Tags"] == {"c": "d"}
    s.set_queue_attributes(QueueUrl=u, Attributes={"DelaySeconds": "2"})
    assert s.get_queue_attributes(QueueUrl=u, AttributeNames=["DelaySeconds"])["Attributes"] == {"DelaySeconds": "2"}
    s.purge_queue(QueueUrl=u)
    try:
        s.get_queue_url(QueueName=name + "-nope")
        raise SystemExit("no error")
    except s.exceptions.QueueDoesNotExist as e:
        assert e.response["Error"]["Code"] == "AWS.SimpleQueueService.NonExistentQueue"
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    s.delete_queue(QueueUrl=u)
    print("ok")
""")


@pytest.mark.skipif(not OLD_PYTHON.exists(),
                    reason=f"no old botocore at {OLD_PYTHON} (python3 -m venv /tmp/oldsdk && "
                           "/tmp/oldsdk/bin/pip install botocore==1.31.63 boto3==1.28.63)")
def test_old_botocore_end_to_end(endpoint):
    out = subprocess.run([str(OLD_PYTHON), "-c", OLD_SDK_SCRIPT, endpoint, unique("old")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-3000:]
