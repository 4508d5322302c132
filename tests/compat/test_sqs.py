"""Amazon SQS through boto3 (JSON 1.0 protocol, query-compatible error codes)."""
from __future__ import annotations

import datetime
import hashlib
import os
import json
import threading
import time

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT, REGION, BasaltServer, make_client_factory, unique


@pytest.fixture(scope="module")
def sqs(make_client):
    return make_client("sqs")


@pytest.fixture
def queue(sqs):
    url = sqs.create_queue(QueueName=unique("q"))["QueueUrl"]
    yield url
    try:
        sqs.delete_queue(QueueUrl=url)
    except ClientError:
        pass


def code(e):
    return e.value.response["Error"]["Code"]


def arn_of(sqs, url):
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def test_create_get_list_delete(sqs, endpoint):
    prefix = unique("lst")
    urls = [sqs.create_queue(QueueName=f"{prefix}-{i}")["QueueUrl"] for i in range(3)]
    assert urls[0] == f"{endpoint.rstrip('/')}/{ACCOUNT}/{prefix}-0"
    # Creating again with the same attributes is idempotent; with others it is refused.
    assert sqs.create_queue(QueueName=f"{prefix}-0")["QueueUrl"] == urls[0]
    with pytest.raises(ClientError) as e:
        sqs.create_queue(QueueName=f"{prefix}-0", Attributes={"VisibilityTimeout": "99"})
    assert code(e) == "QueueAlreadyExists"
    assert sqs.get_queue_url(QueueName=f"{prefix}-1")["QueueUrl"] == urls[1]
    assert sqs.list_queues(QueueNamePrefix=prefix)["QueueUrls"] == urls
    page = sqs.list_queues(QueueNamePrefix=prefix, MaxResults=2)
    assert page["QueueUrls"] == urls[:2] and page["NextToken"]
    rest = sqs.list_queues(QueueNamePrefix=prefix, MaxResults=2, NextToken=page["NextToken"])
    assert rest["QueueUrls"] == urls[2:] and "NextToken" not in rest
    paged = [u for p in sqs.get_paginator("list_queues").paginate(QueueNamePrefix=prefix, MaxResults=1)
             for u in p.get("QueueUrls", [])]
    assert paged == urls
    for u in urls:
        sqs.delete_queue(QueueUrl=u)
    assert "QueueUrls" not in sqs.list_queues(QueueNamePrefix=prefix)
    with pytest.raises(ClientError) as e:
        sqs.get_queue_url(QueueName=f"{prefix}-1")
    assert code(e) == "AWS.SimpleQueueService.NonExistentQueue"
    # The modeled exception class catches it too (botocore maps the shape name).
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.send_message(QueueUrl=urls[1], MessageBody="x")


def test_bad_names_and_attributes(sqs):
    with pytest.raises(ClientError) as e:
        sqs.create_queue(QueueName="has space")
    assert code(e) == "InvalidParameterValue"
    with pytest.raises(ClientError) as e:
        sqs.create_queue(QueueName=unique("q"), Attributes={"VisibilityTimeout": "43201"})
    assert code(e) == "InvalidAttributeValue"
    with pytest.raises(ClientError) as e:
        sqs.create_queue(QueueName=unique("q"), Attributes={"NoSuchThing": "1"})
    assert code(e) == "InvalidAttributeName"


def test_attributes_defaults_and_set(sqs, queue):
    attrs = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    assert attrs["VisibilityTimeout"] == "30"
    assert attrs["MaximumMessageSize"] == "1048576"
    assert attrs["MessageRetentionPeriod"] == "345600"
    assert attrs["DelaySeconds"] == "0"
    assert attrs["ReceiveMessageWaitTimeSeconds"] == "0"
    assert attrs["ApproximateNumberOfMessages"] == "0"
    assert attrs["QueueArn"] == f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue.rsplit('/', 1)[1]}"
    assert int(attrs["CreatedTimestamp"]) > 1_600_000_000
    sqs.set_queue_attributes(QueueUrl=queue, Attributes={"VisibilityTimeout": "5", "DelaySeconds": "1"})
    got = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["VisibilityTimeout", "DelaySeconds"])
    assert got["Attributes"] == {"VisibilityTimeout": "5", "DelaySeconds": "1"}


def test_send_receive_delete_with_md5s(sqs, queue):
    body = "hello ✓ world"
    attrs = {"kind": {"DataType": "String", "StringValue": "greeting"},
             "n": {"DataType": "Number", "StringValue": "42"},
             "raw": {"DataType": "Binary", "BinaryValue": b"\x00\x01\x02"}}
    sent = sqs.send_message(QueueUrl=queue, MessageBody=body, MessageAttributes=attrs)
    assert sent["MD5OfMessageBody"] == hashlib.md5(body.encode()).hexdigest()
    assert len(sent["MD5OfMessageAttributes"]) == 32
    got = sqs.receive_message(QueueUrl=queue, MessageAttributeNames=["All"], AttributeNames=["All"],
                              WaitTimeSeconds=1)["Messages"]
    assert len(got) == 1
    m = got[0]
    assert (m["MessageId"], m["Body"], m["MD5OfBody"]) == (sent["MessageId"], body, sent["MD5OfMessageBody"])
    assert m["MD5OfMessageAttributes"] == sent["MD5OfMessageAttributes"]
    assert m["MessageAttributes"]["raw"]["BinaryValue"] == b"\x00\x01\x02"
    assert m["MessageAttributes"]["n"] == {"DataType": "Number", "StringValue": "42"}
    assert m["Attributes"]["ApproximateReceiveCount"] == "1"
    assert int(m["Attributes"]["SentTimestamp"]) <= int(m["Attributes"]["ApproximateFirstReceiveTimestamp"])
    # Invisible while received.
    assert "Messages" not in sqs.receive_message(QueueUrl=queue)
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
    # Deleting twice is not an error.
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
    with pytest.raises(ClientError) as e:
        sqs.delete_message(QueueUrl=queue, ReceiptHandle="garbage")
    assert code(e) == "ReceiptHandleIsInvalid"


def test_visibility_timeout_and_receive_count(sqs, queue):
    sqs.send_message(QueueUrl=queue, MessageBody="again")
    first = sqs.receive_message(QueueUrl=queue, VisibilityTimeout=1, AttributeNames=["All"])["Messages"][0]
    time.sleep(1.3)
    second = sqs.receive_message(QueueUrl=queue, AttributeNames=["All"], WaitTimeSeconds=2)["Messages"][0]
    assert second["MessageId"] == first["MessageId"]
    assert second["Attributes"]["ApproximateReceiveCount"] == "2"
    assert (second["Attributes"]["ApproximateFirstReceiveTimestamp"]
            == first["Attributes"]["ApproximateFirstReceiveTimestamp"])
    # The old handle no longer deletes; the new one does.
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=first["ReceiptHandle"])
    sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle=second["ReceiptHandle"], VisibilityTimeout=0)
    third = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1)["Messages"][0]
    assert third["MessageId"] == first["MessageId"]
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=third["ReceiptHandle"])
    with pytest.raises(ClientError) as e:
        sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle=third["ReceiptHandle"], VisibilityTimeout=5)
    assert code(e) == "AWS.SimpleQueueService.MessageNotInflight"


def test_delay_seconds(sqs, queue):
    sqs.send_message(QueueUrl=queue, MessageBody="later", DelaySeconds=2)
    attrs = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessagesDelayed"] == "1"
    assert "Messages" not in sqs.receive_message(QueueUrl=queue)
    start = time.monotonic()
    got = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=5).get("Messages", [])
    assert [m["Body"] for m in got] == ["later"]
    assert 1.0 < time.monotonic() - start < 4.0


def test_long_poll_answers_when_a_message_arrives(sqs, queue):
    def later():
        time.sleep(0.7)
        sqs.send_message(QueueUrl=queue, MessageBody="wake")
    t = threading.Thread(target=later)
    start = time.monotonic()
    t.start()
    got = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=10).get("Messages", [])
    elapsed = time.monotonic() - start
    t.join()
    assert [m["Body"] for m in got] == ["wake"]
    assert elapsed < 3, elapsed
    # With nothing to receive, a long poll waits its full time.
    start = time.monotonic()
    assert "Messages" not in sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1)
    assert time.monotonic() - start >= 0.9


def test_batches(sqs, queue):
    entries = [{"Id": f"m{i}", "MessageBody": f"body {i}"} for i in range(10)]
    out = sqs.send_message_batch(QueueUrl=queue, Entries=entries)
    assert sorted(e["Id"] for e in out["Successful"]) == sorted(e["Id"] for e in entries)
    assert out.get("Failed", []) == []
    bodies, handles = set(), []
    for _ in range(5):
        for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
            bodies.add(m["Body"])
            handles.append(m["ReceiptHandle"])
        if len(bodies) == 10:
            break
    assert bodies == {f"body {i}" for i in range(10)}
    deleted = sqs.delete_message_batch(QueueUrl=queue, Entries=[
        {"Id": f"d{i}", "ReceiptHandle": h} for i, h in enumerate(handles[:9])] + [{"Id": "bad", "ReceiptHandle": "nope"}])
    assert len(deleted["Successful"]) == 9
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=handles[9])
    assert [(f["Id"], f["Code"], f["SenderFault"]) for f in deleted["Failed"]] == [("bad", "ReceiptHandleIsInvalid", True)]
    with pytest.raises(ClientError) as e:
        sqs.send_message_batch(QueueUrl=queue, Entries=[{"Id": "a", "MessageBody": "x"}, {"Id": "a", "MessageBody": "y"}])
    assert code(e) == "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"
    with pytest.raises(ClientError) as e:
        sqs.send_message_batch(QueueUrl=queue, Entries=[{"Id": f"i{i}", "MessageBody": "x"} for i in range(11)])
    assert code(e) == "AWS.SimpleQueueService.TooManyEntriesInBatchRequest"
    # One bad entry fails alone.
    out = sqs.send_message_batch(QueueUrl=queue, Entries=[{"Id": "ok", "MessageBody": "fine"},
                                                          {"Id": "bad", "MessageBody": "\u0007"}])
    assert [e["Id"] for e in out["Successful"]] == ["ok"]
    assert [(f["Id"], f["Code"]) for f in out["Failed"]] == [("bad", "InvalidMessageContents")]


def test_message_size_limit(sqs):
    url = sqs.create_queue(QueueName=unique("small"), Attributes={"MaximumMessageSize": "1024"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="x" * 1024)
    with pytest.raises(ClientError) as e:
        sqs.send_message(QueueUrl=url, MessageBody="x" * 1025)
    assert code(e) == "InvalidParameterValue"
    sqs.delete_queue(QueueUrl=url)


def test_redrive_to_dead_letter_queue_and_move_back(sqs):
    dlq = sqs.create_queue(QueueName=unique("dlq"))["QueueUrl"]
    dlq_arn = arn_of(sqs, dlq)
    src = sqs.create_queue(QueueName=unique("src"), Attributes={
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"}),
        "VisibilityTimeout": "0"})["QueueUrl"]
    src_arn = arn_of(sqs, src)
    assert sqs.list_dead_letter_source_queues(QueueUrl=dlq)["queueUrls"] == [src]
    poison_id = sqs.send_message(QueueUrl=src, MessageBody="poison")["MessageId"]
    for _ in range(2):
        assert sqs.receive_message(QueueUrl=src, WaitTimeSeconds=1)["Messages"][0]["Body"] == "poison"
    # The third receive moves it instead of returning it.
    assert "Messages" not in sqs.receive_message(QueueUrl=src)
    dead = sqs.receive_message(QueueUrl=dlq, AttributeNames=["All"], WaitTimeSeconds=2, VisibilityTimeout=0)["Messages"]
    assert [m["Body"] for m in dead] == ["poison"]
    assert dead[0]["Attributes"]["DeadLetterQueueSourceArn"] == src_arn
    # Redrive back to the source.
    with pytest.raises(ClientError) as e:
        sqs.start_message_move_task(SourceArn=src_arn)
    assert code(e) == "InvalidParameterValue"
    handle = sqs.start_message_move_task(SourceArn=dlq_arn)["TaskHandle"]
    assert handle

    def done():
        tasks = sqs.list_message_move_tasks(SourceArn=dlq_arn)["Results"]
        return tasks and tasks[0]["Status"] == "COMPLETED" and tasks[0]

    deadline = time.time() + 15
    while not done() and time.time() < deadline:
        time.sleep(0.3)
    task = done()
    assert task and task["ApproximateNumberOfMessagesMoved"] == 1
    back = sqs.receive_message(QueueUrl=src, WaitTimeSeconds=2, AttributeNames=["All"])["Messages"]
    assert [m["Body"] for m in back] == ["poison"]
    # Redriven messages are new messages: a new id, received for the first time, and no
    # dead-letter source any more.
    assert back[0]["MessageId"] != poison_id
    assert back[0]["Attributes"]["ApproximateReceiveCount"] == "1"
    assert "DeadLetterQueueSourceArn" not in back[0]["Attributes"]
    for u in (src, dlq):
        sqs.delete_queue(QueueUrl=u)


def test_purge_and_tags(sqs, queue):
    for i in range(3):
        sqs.send_message(QueueUrl=queue, MessageBody=str(i))
    sqs.purge_queue(QueueUrl=queue)
    assert sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"])[
        "Attributes"]["ApproximateNumberOfMessages"] == "0"
    with pytest.raises(ClientError) as e:
        sqs.purge_queue(QueueUrl=queue)
    assert code(e) == "AWS.SimpleQueueService.PurgeQueueInProgress"
    sqs.tag_queue(QueueUrl=queue, Tags={"team": "ml", "env": "dev"})
    sqs.untag_queue(QueueUrl=queue, TagKeys=["env"])
    assert sqs.list_queue_tags(QueueUrl=queue)["Tags"] == {"team": "ml"}


def test_policy_round_trip(sqs, queue):
    arn = arn_of(sqs, queue)
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
                                                      "Action": "sqs:SendMessage", "Resource": arn}]}
    sqs.set_queue_attributes(QueueUrl=queue, Attributes={"Policy": json.dumps(policy)})
    got = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["Policy"])["Attributes"]["Policy"]
    assert json.loads(got) == policy


def fifo_queue(sqs, **attrs):
    attributes = {"FifoQueue": "true", **attrs}
    return sqs.create_queue(QueueName=unique("f") + ".fifo", Attributes=attributes)["QueueUrl"]


def test_fifo_validation_dedup_and_sequence(sqs):
    with pytest.raises(ClientError) as e:
        sqs.create_queue(QueueName=unique("nofifo") + ".fifo")
    assert code(e) == "InvalidParameterValue"
    url = fifo_queue(sqs)
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (attrs["FifoQueue"], attrs["ContentBasedDeduplication"]) == ("true", "false")
    with pytest.raises(ClientError) as e:
        sqs.send_message(QueueUrl=url, MessageBody="x", MessageDeduplicationId="d")
    assert code(e) == "MissingParameter"
    with pytest.raises(ClientError) as e:
        sqs.send_message(QueueUrl=url, MessageBody="x", MessageGroupId="g")
    assert code(e) == "InvalidParameterValue"
    with pytest.raises(ClientError) as e:
        sqs.send_message(QueueUrl=url, MessageBody="x", MessageGroupId="g", MessageDeduplicationId="d",
                         DelaySeconds=1)
    assert code(e) == "InvalidParameterValue"
    a = sqs.send_message(QueueUrl=url, MessageBody="one", MessageGroupId="g", MessageDeduplicationId="d1")
    again = sqs.send_message(QueueUrl=url, MessageBody="one", MessageGroupId="g", MessageDeduplicationId="d1")
    b = sqs.send_message(QueueUrl=url, MessageBody="two", MessageGroupId="g", MessageDeduplicationId="d2")
    assert (again["MessageId"], again["SequenceNumber"]) == (a["MessageId"], a["SequenceNumber"])
    assert len(a["SequenceNumber"]) == 20 and int(b["SequenceNumber"]) > int(a["SequenceNumber"])
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"])["Messages"]
    assert [m["Body"] for m in got] == ["one", "two"], "the duplicate was not stored"
    assert got[0]["Attributes"]["MessageGroupId"] == "g"
    assert got[0]["Attributes"]["MessageDeduplicationId"] == "d1"
    assert got[0]["Attributes"]["SequenceNumber"] == a["SequenceNumber"]
    # Content-based deduplication.
    cb = fifo_queue(sqs, ContentBasedDeduplication="true")
    x = sqs.send_message(QueueUrl=cb, MessageBody="same", MessageGroupId="g")
    y = sqs.send_message(QueueUrl=cb, MessageBody="same", MessageGroupId="g")
    assert x["MessageId"] == y["MessageId"]
    for u in (url, cb):
        sqs.delete_queue(QueueUrl=u)


def test_fifo_groups_in_order_one_batch_in_flight(sqs):
    url = fifo_queue(sqs, ContentBasedDeduplication="true")
    entries = [{"Id": f"a{i}", "MessageBody": f"a{i}", "MessageGroupId": "A"} for i in range(4)]
    entries += [{"Id": f"b{i}", "MessageBody": f"b{i}", "MessageGroupId": "B"} for i in range(3)]
    out = sqs.send_message_batch(QueueUrl=url, Entries=entries)
    assert len(out["Successful"]) == 7
    first = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=2, VisibilityTimeout=30)["Messages"]
    group = first[0]["Body"][0]
    assert [m["Body"] for m in first] == [f"{group}0", f"{group}1"]
    # While those are in flight, their group gives nothing; the other group does, in order.
    other = "b" if group == "a" else "a"
    rest = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30)["Messages"]
    n_other = 3 if other == "b" else 4
    assert [m["Body"] for m in rest] == [f"{other}{i}" for i in range(n_other)]
    assert "Messages" not in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
    # Deleting one of two in-flight messages keeps the group held; deleting both frees it.
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first[0]["ReceiptHandle"])
    assert "Messages" not in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first[1]["ReceiptHandle"])
    nxt = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=2)["Messages"]
    assert [m["Body"] for m in nxt] == [f"{group}{i}" for i in range(2, 4 if group == "a" else 3)]
    # Making a message visible again hands the group out again, from that message.
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=nxt[0]["ReceiptHandle"], VisibilityTimeout=0)
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=nxt[-1]["ReceiptHandle"], VisibilityTimeout=0)
    again = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=2,
                                MessageSystemAttributeNames=["ApproximateReceiveCount"])["Messages"]
    assert [m["Body"] for m in again] == [m["Body"] for m in nxt]
    assert again[0]["Attributes"]["ApproximateReceiveCount"] == "2"
    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert int(counts["ApproximateNumberOfMessagesNotVisible"]) == len(again) + len(rest)
    sqs.purge_queue(QueueUrl=url)
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])[
        "Attributes"]["ApproximateNumberOfMessages"] == "0"
    sqs.delete_queue(QueueUrl=url)


def test_fifo_redrive_to_fifo_dead_letter_queue(sqs):
    dlq = fifo_queue(sqs, ContentBasedDeduplication="true")
    dlq_arn = arn_of(sqs, dlq)
    url = fifo_queue(sqs, ContentBasedDeduplication="true", VisibilityTimeout="0",
                     RedrivePolicy=json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1}))
    sqs.send_message(QueueUrl=url, MessageBody="bad", MessageGroupId="g")
    sqs.send_message(QueueUrl=url, MessageBody="good", MessageGroupId="g")
    assert sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"] == "bad"
    # Received once already: the next receive moves it and hands out the next one.
    assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=2)["Messages"][0]["Body"] == "good"
    dead = sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=2, AttributeNames=["All"])["Messages"]
    assert [m["Body"] for m in dead] == ["bad"]
    assert dead[0]["Attributes"]["MessageGroupId"] == "g"
    for u in (url, dlq):
        sqs.delete_queue(QueueUrl=u)


def wait_move_task(sqs, source_arn, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        tasks = sqs.list_message_move_tasks(SourceArn=source_arn)["Results"]
        if tasks and tasks[0]["Status"] != "RUNNING":
            return tasks[0]
        time.sleep(0.3)
    raise AssertionError("move task still running")


def test_fifo_move_task_back_to_source_keeps_groups_and_order(sqs):
    """Redrive from a FIFO dead-letter queue: back to the FIFO source, each message under its
    group, in order, as new messages (Developer Guide, "Learn how to configure a dead-letter
    queue redrive in Amazon SQS")."""
    dlq = fifo_queue(sqs)
    dlq_arn = arn_of(sqs, dlq)
    url = fifo_queue(sqs, VisibilityTimeout="1",
                     RedrivePolicy=json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1}))
    src_arn = arn_of(sqs, url)
    sent = {}
    # Two groups interleaved; the same deduplication id in both groups' messages would collide
    # in the DLQ unless it is replaced by the message id on the way there.
    for i, (group, body) in enumerate([("g1", "a1"), ("g2", "b1"), ("g1", "a2"), ("g2", "b2"), ("g1", "a3")]):
        sent[body] = sqs.send_message(QueueUrl=url, MessageBody=body, MessageGroupId=group,
                                      MessageDeduplicationId=f"d{i}")["MessageId"]
    # Receive everything once (visibility 1 s); the looks after that move them to the DLQ.
    seen = 0
    deadline = time.time() + 10
    while seen < 5 and time.time() < deadline:
        seen += len(sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []))
    deadline = time.time() + 15
    while time.time() < deadline:
        sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        n = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])[
            "Attributes"]["ApproximateNumberOfMessages"]
        if n == "5":
            break
    assert n == "5"
    # A standard queue is no destination for a FIFO dead-letter queue.
    std = sqs.create_queue(QueueName=unique("std"))["QueueUrl"]
    with pytest.raises(ClientError) as e:
        sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=arn_of(sqs, std))
    assert code(e) == "InvalidParameterValue"

    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "30"})
    sqs.start_message_move_task(SourceArn=dlq_arn, MaxNumberOfMessagesPerSecond=100)
    task = wait_move_task(sqs, dlq_arn)
    assert task["Status"] == "COMPLETED"
    assert task["ApproximateNumberOfMessagesMoved"] == 5
    assert task["ApproximateNumberOfMessagesToMove"] == 5
    assert sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])[
        "Attributes"]["ApproximateNumberOfMessages"] == "0"

    by_group = {}
    deadline = time.time() + 10
    while sum(map(len, by_group.values())) < 5 and time.time() < deadline:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"],
                                  WaitTimeSeconds=1).get("Messages", [])
        for m in got:
            by_group.setdefault(m["Attributes"]["MessageGroupId"], []).append(m)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    assert {g: [m["Body"] for m in ms] for g, ms in by_group.items()} == {
        "g1": ["a1", "a2", "a3"], "g2": ["b1", "b2"]}
    for ms in by_group.values():
        seqs = [int(m["Attributes"]["SequenceNumber"]) for m in ms]
        assert seqs == sorted(seqs)
        for m in ms:
            # New messages: fresh ids, received for the first time.
            assert m["MessageId"] != sent[m["Body"]]
            assert m["Attributes"]["ApproximateReceiveCount"] == "1"
            assert "DeadLetterQueueSourceArn" not in m["Attributes"]
    assert src_arn
    for u in (url, dlq, std):
        sqs.delete_queue(QueueUrl=u)


def test_fifo_move_task_to_another_fifo_queue(sqs):
    dlq = fifo_queue(sqs, ContentBasedDeduplication="true")
    dlq_arn = arn_of(sqs, dlq)
    fifo_queue(sqs, ContentBasedDeduplication="true", VisibilityTimeout="0",
               RedrivePolicy=json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1}))
    # Messages put in the DLQ directly have no source to go back to; a destination is named.
    for body in ("x1", "x2", "x3"):
        sqs.send_message(QueueUrl=dlq, MessageBody=body, MessageGroupId="g")
    other = fifo_queue(sqs, ContentBasedDeduplication="true")
    sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=arn_of(sqs, other))
    task = wait_move_task(sqs, dlq_arn)
    assert task["Status"] == "COMPLETED" and task["ApproximateNumberOfMessagesMoved"] == 3
    bodies = []
    deadline = time.time() + 10
    while len(bodies) < 3 and time.time() < deadline:
        for m in sqs.receive_message(QueueUrl=other, MaxNumberOfMessages=10,
                                     WaitTimeSeconds=1).get("Messages", []):
            bodies.append(m["Body"])
            sqs.delete_message(QueueUrl=other, ReceiptHandle=m["ReceiptHandle"])
    assert bodies == ["x1", "x2", "x3"]


@pytest.fixture(scope="module")
def own_server():
    srv = BasaltServer(name="basalt-sqs")
    srv.start()
    yield srv
    srv.stop()


def test_acknowledged_messages_survive_kill_9(own_server, shape_checker):
    sqs = make_client_factory(shape_checker, own_server.endpoint)("sqs")
    url = sqs.create_queue(QueueName=unique("durable"))["QueueUrl"]
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": f"m{i}", "MessageBody": f"m{i}"} for i in range(5)])
    # One is in flight when the server dies: it comes back after its visibility timeout.
    inflight = sqs.receive_message(QueueUrl=url, VisibilityTimeout=2)["Messages"][0]
    own_server.kill9()
    own_server.start()
    sqs = make_client_factory(shape_checker, own_server.endpoint)("sqs")
    url = sqs.get_queue_url(QueueName=url.rsplit("/", 1)[1])["QueueUrl"]
    seen = set()
    deadline = time.time() + 10
    while len(seen) < 5 and time.time() < deadline:
        for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            seen.add(m["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    assert seen == {f"m{i}" for i in range(5)}
    assert inflight["Body"] in seen


def test_fifo_order_holds_across_kill_9(own_server, shape_checker):
    sqs = make_client_factory(shape_checker, own_server.endpoint)("sqs")
    name = unique("ordered") + ".fifo"
    url = sqs.create_queue(QueueName=name, Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true",
                                                       "VisibilityTimeout": "2"})["QueueUrl"]
    for i in range(10):
        sqs.send_message(QueueUrl=url, MessageBody=f"{i}", MessageGroupId="g")
    held = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=3)["Messages"]
    assert [m["Body"] for m in held] == ["0", "1", "2"]
    own_server.kill9()
    own_server.start()
    sqs = make_client_factory(shape_checker, own_server.endpoint)("sqs")
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    order = []
    deadline = time.time() + 20
    while len(order) < 10 and time.time() < deadline:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=4, WaitTimeSeconds=1).get("Messages", [])
        order += [m["Body"] for m in got]
        for m in got:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    assert order == [str(i) for i in range(10)], order


@pytest.fixture(scope="module")
def metrics_server():
    """A server that writes AWS/SQS counts and samples gauges every second."""
    old = os.environ.get("BASALT_SQS_METRICS_INTERVAL_SECS")
    os.environ["BASALT_SQS_METRICS_INTERVAL_SECS"] = "1"
    srv = BasaltServer(name="basalt-sqs-metrics")
    try:
        srv.start()
    finally:
        if old is None:
            del os.environ["BASALT_SQS_METRICS_INTERVAL_SECS"]
        else:
            os.environ["BASALT_SQS_METRICS_INTERVAL_SECS"] = old
    yield srv
    srv.stop()


def sqs_stat(cw, queue, metric, stat, start):
    points = cw.get_metric_statistics(
        Namespace="AWS/SQS", MetricName=metric, Dimensions=[{"Name": "QueueName", "Value": queue}],
        StartTime=start, EndTime=datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=2),
        Period=60, Statistics=[stat])["Datapoints"]
    return sum(p[stat] for p in points) if stat in ("Sum", "SampleCount") else (
        max((p[stat] for p in points), default=None))


def test_aws_sqs_metrics(metrics_server, shape_checker):
    """AWS/SQS metrics as the Developer Guide defines them ("Available CloudWatch metrics for
    Amazon SQS"): counts per queue, aggregated, and gauges sampled on a schedule."""
    make = make_client_factory(shape_checker, metrics_server.endpoint)
    sqs, cw = make("sqs"), make("cloudwatch")
    start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=2)
    name = unique("m")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    for body in ("a", "bb", "ccc"):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    got = []
    while len(got) < 3:
        got += sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    for m in got:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    sqs.receive_message(QueueUrl=url)  # empty
    sqs.receive_message(QueueUrl=url)  # empty
    # Gauges on a second queue: one visible, one in flight, one delayed.
    gname = unique("g")
    gurl = sqs.create_queue(QueueName=gname)["QueueUrl"]
    sqs.send_message(QueueUrl=gurl, MessageBody="held")
    assert sqs.receive_message(QueueUrl=gurl, VisibilityTimeout=120)["Messages"]
    sqs.send_message(QueueUrl=gurl, MessageBody="ready")
    sqs.send_message(QueueUrl=gurl, MessageBody="later", DelaySeconds=120)

    deadline = time.time() + 15
    while time.time() < deadline:
        if (sqs_stat(cw, name, "NumberOfMessagesDeleted", "Sum", start) == 3
                and sqs_stat(cw, gname, "ApproximateNumberOfMessagesDelayed", "Maximum", start) == 1):
            break
        time.sleep(0.5)
    assert sqs_stat(cw, name, "NumberOfMessagesSent", "Sum", start) == 3
    assert sqs_stat(cw, name, "NumberOfMessagesReceived", "Sum", start) == 3
    assert sqs_stat(cw, name, "NumberOfMessagesDeleted", "Sum", start) == 3
    assert sqs_stat(cw, name, "NumberOfEmptyReceives", "Sum", start) >= 2
    assert sqs_stat(cw, name, "SentMessageSize", "Average", start) == 2
    assert sqs_stat(cw, name, "SentMessageSize", "Maximum", start) == 3
    assert sqs_stat(cw, name, "SentMessageSize", "SampleCount", start) == 3
    # Aggregated: a handful of points a minute, not one per message.
    raw = cw.get_metric_data(MetricDataQueries=[{"Id": "s", "MetricStat": {"Metric": {
        "Namespace": "AWS/SQS", "MetricName": "NumberOfMessagesSent",
        "Dimensions": [{"Name": "QueueName", "Value": name}]}, "Period": 60, "Stat": "SampleCount"}}],
        StartTime=start, EndTime=datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=2))
    assert sum(raw["MetricDataResults"][0]["Values"]) < 3 + 20
    assert sqs_stat(cw, gname, "ApproximateNumberOfMessagesVisible", "Maximum", start) >= 1
    assert sqs_stat(cw, gname, "ApproximateNumberOfMessagesNotVisible", "Maximum", start) == 1
    assert sqs_stat(cw, gname, "ApproximateNumberOfMessagesDelayed", "Maximum", start) == 1
    names = {m["MetricName"] for m in cw.list_metrics(Namespace="AWS/SQS",
             Dimensions=[{"Name": "QueueName", "Value": name}])["Metrics"]}
    assert {"NumberOfMessagesSent", "NumberOfMessagesReceived", "NumberOfMessagesDeleted",
            "NumberOfEmptyReceives", "SentMessageSize"} <= names


def test_aws_sqs_counts_flushed_on_shutdown(shape_checker):
    """Counts acknowledged within the minute are written when the server stops (SIGTERM)."""
    srv = BasaltServer(name="basalt-sqs-flush")
    srv.start()
    try:
        make = make_client_factory(shape_checker, srv.endpoint)
        sqs = make("sqs")
        start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=2)
        name = unique("f")
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody="x")
        sqs.send_message(QueueUrl=url, MessageBody="y")
        srv.stop()
        srv.start()
        cw = make_client_factory(shape_checker, srv.endpoint)("cloudwatch")
        assert sqs_stat(cw, name, "NumberOfMessagesSent", "Sum", start) == 2
    finally:
        srv.close()
