"""Amazon EventBridge through boto3 (JSON 1.1 protocol): buses, rules, targets, PutEvents to
SQS and Lambda targets, input transformation, retries to a dead-letter queue, schedules."""
from __future__ import annotations

import json
import os
import time

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT, REGION, BasaltServer, make_client_factory, unique


@pytest.fixture(scope="module")
def events(make_client):
    return make_client("events")


@pytest.fixture(scope="module")
def sqs(make_client):
    return make_client("sqs")


def code(e):
    return e.value.response["Error"]["Code"]


def queue_with_arn(sqs, prefix="evq"):
    url = sqs.create_queue(QueueName=unique(prefix))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def receive_bodies(sqs, url, want, timeout=10.0):
    got = []
    deadline = time.time() + timeout
    while len(got) < want and time.time() < deadline:
        for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            got.append(m["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return got


def test_buses_create_describe_list_delete(events):
    name = unique("bus")
    arn = events.create_event_bus(Name=name, Description="compat")["EventBusArn"]
    assert arn == f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{name}"
    with pytest.raises(ClientError) as e:
        events.create_event_bus(Name=name)
    assert code(e) == "ResourceAlreadyExistsException"
    d = events.describe_event_bus(Name=name)
    assert (d["Name"], d["Arn"], d["Description"]) == (name, arn, "compat")
    assert events.describe_event_bus()["Name"] == "default"
    listed = [b["Name"] for b in events.list_event_buses(NamePrefix=name)["EventBuses"]]
    assert listed == [name]
    assert "default" in [b["Name"] for b in events.list_event_buses()["EventBuses"]]
    events.delete_event_bus(Name=name)
    with pytest.raises(ClientError) as e:
        events.describe_event_bus(Name=name)
    assert code(e) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        events.delete_event_bus(Name="default")
    assert code(e) == "ValidationException"


def test_rules_and_targets_round_trip(events):
    bus = unique("rbus")
    events.create_event_bus(Name=bus)
    pattern = json.dumps({"source": ["my.app"], "detail": {"n": [{"numeric": [">", 5]}]}})
    arn = events.put_rule(Name="r1", EventBusName=bus, EventPattern=pattern, Description="d")["RuleArn"]
    assert arn == f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{bus}/r1"
    d = events.describe_rule(Name="r1", EventBusName=bus)
    assert (d["EventPattern"], d["State"], d["Description"], d["EventBusName"]) == (pattern, "ENABLED", "d", bus)
    events.disable_rule(Name="r1", EventBusName=bus)
    assert events.describe_rule(Name="r1", EventBusName=bus)["State"] == "DISABLED"
    events.enable_rule(Name="r1", EventBusName=bus)
    with pytest.raises(ClientError) as e:
        events.put_rule(Name="bad", EventBusName=bus, EventPattern=json.dumps({"source": "not-a-list"}))
    assert code(e) == "InvalidEventPatternException"
    with pytest.raises(ClientError) as e:
        events.put_rule(Name="nothing", EventBusName=bus)
    assert code(e) == "ValidationException"
    target_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:whatever"
    out = events.put_targets(Rule="r1", EventBusName=bus, Targets=[
        {"Id": "t1", "Arn": target_arn, "InputPath": "$.detail"},
        {"Id": "t2", "Arn": "not-an-arn"}])
    assert out["FailedEntryCount"] == 1 and out["FailedEntries"][0]["TargetId"] == "t2"
    targets = events.list_targets_by_rule(Rule="r1", EventBusName=bus)["Targets"]
    assert targets == [{"Id": "t1", "Arn": target_arn, "InputPath": "$.detail"}]
    assert events.list_rule_names_by_target(TargetArn=target_arn, EventBusName=bus)["RuleNames"] == ["r1"]
    with pytest.raises(ClientError) as e:
        events.delete_rule(Name="r1", EventBusName=bus)
    assert code(e) == "ValidationException"
    events.remove_targets(Rule="r1", EventBusName=bus, Ids=["t1"])
    events.delete_rule(Name="r1", EventBusName=bus)
    assert events.list_rules(EventBusName=bus)["Rules"] == []
    events.delete_event_bus(Name=bus)


def test_put_events_validation(events):
    out = events.put_events(Entries=[
        {"Source": "my.app", "DetailType": "t", "Detail": "{}"},
        {"Source": "my.app", "DetailType": "t", "Detail": "not json"},
        {"Source": "my.app", "DetailType": "t", "Detail": "{}", "EventBusName": unique("nobus")},
        {"DetailType": "t", "Detail": "{}"},
    ])
    assert out["FailedEntryCount"] == 3
    e = out["Entries"]
    assert e[0]["EventId"]
    assert e[1]["ErrorCode"] == "MalformedDetail"
    assert e[2]["ErrorCode"] == "ResourceNotFoundException"
    assert e[3]["ErrorCode"] == "InvalidArgument"
    with pytest.raises(ClientError) as err:
        events.put_events(Entries=[{"Source": "s", "DetailType": "t", "Detail": "{}"}] * 11)
    assert code(err) == "ValidationException"


def test_test_event_pattern(events):
    event = {"id": "1", "account": ACCOUNT, "source": "my.app", "time": "2024-01-01T00:00:00Z",
             "region": REGION, "detail-type": "t", "resources": [], "detail": {"size": 12, "name": "photo.jpg"}}
    yes = {"source": ["my.app"], "detail": {"size": [{"numeric": [">", 10]}], "name": [{"suffix": ".jpg"}]}}
    no = {"detail": {"name": [{"prefix": "video"}]}}
    assert events.test_event_pattern(EventPattern=json.dumps(yes), Event=json.dumps(event))["Result"] is True
    assert events.test_event_pattern(EventPattern=json.dumps(no), Event=json.dumps(event))["Result"] is False


def test_events_reach_sqs_through_matching_rules_only(events, sqs):
    bus = unique("sbus")
    events.create_event_bus(Name=bus)
    url, qarn = queue_with_arn(sqs)
    events.put_rule(Name="big", EventBusName=bus,
                    EventPattern=json.dumps({"source": ["shop"], "detail": {"total": [{"numeric": [">=", 100]}]}}))
    events.put_targets(Rule="big", EventBusName=bus, Targets=[{"Id": "q", "Arn": qarn}])
    events.put_rule(Name="transformed", EventBusName=bus, EventPattern=json.dumps({"source": ["shop"]}))
    events.put_targets(Rule="transformed", EventBusName=bus, Targets=[{
        "Id": "q2", "Arn": qarn,
        "InputTransformer": {"InputPathsMap": {"total": "$.detail.total", "who": "$.detail.who"},
                             "InputTemplate": "{\"order\": <total>, \"text\": \"<who> spent <total>\", \"rule\": <aws.events.rule-name>}"}}])
    out = events.put_events(Entries=[
        {"Source": "shop", "DetailType": "Order", "Detail": json.dumps({"total": 150, "who": "ann"}), "EventBusName": bus},
        {"Source": "shop", "DetailType": "Order", "Detail": json.dumps({"total": 5, "who": "bob"}), "EventBusName": bus},
        {"Source": "other", "DetailType": "Order", "Detail": json.dumps({"total": 500}), "EventBusName": bus},
    ])
    assert out["FailedEntryCount"] == 0
    bodies = [json.loads(b) for b in receive_bodies(sqs, url, 3)]
    full = [b for b in bodies if "detail" in b]
    transformed = sorted((b for b in bodies if "order" in b), key=lambda b: b["order"])
    assert [b["detail"]["total"] for b in full] == [150]
    assert full[0]["source"] == "shop" and full[0]["detail-type"] == "Order"
    assert full[0]["id"] == out["Entries"][0]["EventId"]
    assert full[0]["account"] == ACCOUNT and full[0]["region"] == REGION
    assert transformed == [{"order": 5, "text": "bob spent 5", "rule": "transformed"},
                           {"order": 150, "text": "ann spent 150", "rule": "transformed"}]
    assert receive_bodies(sqs, url, 1, timeout=1.5) == []
    for rule, ids in (("big", ["q"]), ("transformed", ["q2"])):
        events.remove_targets(Rule=rule, EventBusName=bus, Ids=ids)
        events.delete_rule(Name=rule, EventBusName=bus)
    events.delete_event_bus(Name=bus)


def test_cross_bus_target(events, sqs):
    src, dst = unique("src"), unique("dst")
    events.create_event_bus(Name=src)
    dst_arn = events.create_event_bus(Name=dst)["EventBusArn"]
    url, qarn = queue_with_arn(sqs)
    events.put_rule(Name="fwd", EventBusName=src, EventPattern=json.dumps({"source": ["x"]}))
    events.put_targets(Rule="fwd", EventBusName=src, Targets=[{"Id": "bus", "Arn": dst_arn}])
    events.put_rule(Name="sink", EventBusName=dst, EventPattern=json.dumps({"source": ["x"]}))
    events.put_targets(Rule="sink", EventBusName=dst, Targets=[{"Id": "q", "Arn": qarn}])
    eid = events.put_events(Entries=[{"Source": "x", "DetailType": "t", "Detail": "{\"a\": 1}",
                                      "EventBusName": src}])["Entries"][0]["EventId"]
    bodies = [json.loads(b) for b in receive_bodies(sqs, url, 1)]
    assert [b["id"] for b in bodies] == [eid]


def test_failed_target_goes_to_dead_letter_queue(events, sqs):
    dlq_url, dlq_arn = queue_with_arn(sqs, "evdlq")
    missing = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{unique('gone')}"
    rule = unique("dl")
    rule_arn = events.put_rule(Name=rule, EventPattern=json.dumps({"source": [rule]}))["RuleArn"]
    events.put_targets(Rule=rule, Targets=[{"Id": "gone", "Arn": missing,
                                            "DeadLetterConfig": {"Arn": dlq_arn},
                                            "RetryPolicy": {"MaximumRetryAttempts": 0}}])
    eid = events.put_events(Entries=[{"Source": rule, "DetailType": "t", "Detail": "{}"}])["Entries"][0]["EventId"]
    deadline = time.time() + 10
    got = []
    while not got and time.time() < deadline:
        got = sqs.receive_message(QueueUrl=dlq_url, MessageAttributeNames=["All"], WaitTimeSeconds=1).get("Messages", [])
    assert got, "the failed event reached the dead-letter queue"
    m = got[0]
    assert json.loads(m["Body"])["id"] == eid
    attrs = {k: v["StringValue"] for k, v in m["MessageAttributes"].items()}
    assert attrs["RULE_ARN"] == rule_arn
    assert attrs["TARGET_ARN"] == missing
    assert attrs["ERROR_CODE"]
    events.remove_targets(Rule=rule, Ids=["gone"])
    events.delete_rule(Name=rule)


def test_scheduled_rule_fires(events, sqs, deferred):
    """rate(1 minute) fires a minute after the rule was created: the rule is made here and
    its first firing checked by the `deferred` fixture at the end of the run, so that the
    suite does not sit out the minute."""
    url, qarn = queue_with_arn(sqs, "sched")
    rule = unique("every")
    created = time.monotonic()
    rule_arn = events.put_rule(Name=rule, ScheduleExpression="rate(1 minute)")["RuleArn"]
    assert events.describe_rule(Name=rule)["ScheduleExpression"] == "rate(1 minute)"
    with pytest.raises(ClientError) as e:
        events.put_rule(Name=unique("bad"), ScheduleExpression="rate(1 minutes)")
    assert code(e) == "ValidationException"
    with pytest.raises(ClientError) as e:
        events.put_rule(Name=unique("bad"), ScheduleExpression="cron(0 12 * * * *)")
    assert code(e) == "ValidationException"
    events.put_targets(Rule=rule, Targets=[{"Id": "q", "Arn": qarn}])

    def fired():
        # rate(1 minute) fires a minute after the rule was created.
        left = max(5.0, 75 - (time.monotonic() - created))
        bodies = [json.loads(b) for b in receive_bodies(sqs, url, 1, timeout=left)]
        assert bodies and bodies[0]["detail-type"] == "Scheduled Event"
        assert bodies[0]["source"] == "aws.events" and bodies[0]["resources"] == [rule_arn]
        events.remove_targets(Rule=rule, Ids=["q"])
        events.delete_rule(Name=rule)

    deferred.append(("a scheduled rule's first firing", fired))


@pytest.fixture(scope="module")
def own_server():
    # Short leases: deliveries a killed server held are taken over 2 s later.
    saved = dict(os.environ)
    os.environ["BASALT_EVENTS_LEASE_MS"] = "2000"
    srv = BasaltServer(name="basalt-events")
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()
        os.environ.clear()
        os.environ.update(saved)


def test_accepted_events_survive_kill_9(own_server, shape_checker):
    make = make_client_factory(shape_checker, own_server.endpoint)
    events, sqs = make("events"), make("sqs")
    url, qarn = queue_with_arn(sqs, "crash")
    name = url.rsplit("/", 1)[1]
    rule = unique("crash")
    events.put_rule(Name=rule, EventPattern=json.dumps({"source": [rule]}))
    events.put_targets(Rule=rule, Targets=[{"Id": "q", "Arn": qarn}])
    # Killed right after the last acknowledgement: some deliveries are still pending then.
    ids = []
    for batch in range(5):
        out = events.put_events(Entries=[{"Source": rule, "DetailType": "t", "Detail": json.dumps({"i": i})}
                                         for i in range(batch * 10, batch * 10 + 10)])
        ids += [e["EventId"] for e in out["Entries"]]
    own_server.kill9()
    own_server.start()
    sqs = make_client_factory(shape_checker, own_server.endpoint)("sqs")
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    got = {json.loads(b)["id"] for b in receive_bodies(sqs, url, 50, timeout=20)}
    assert got == set(ids)
