"""Amazon EventBridge Scheduler through boto3 (restJson1): schedule groups and tags, schedule
CRUD and listing, validation errors, one-time schedules firing into SQS (templated and
universal targets, ActionAfterCompletion DELETE), rate schedules, retries to a dead-letter
queue and fires that survive kill -9.

Behaviour from the EventBridge Scheduler User Guide: schedule types
(https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html), universal targets
(https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-targets-universal.html),
context attributes
(https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-schedule-context-attributes.html),
dead-letter queues (https://docs.aws.amazon.com/scheduler/latest/UserGuide/configuring-schedule-dlq.html)
and schedule groups (https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-schedule-group.html).
"""
from __future__ import annotations

import datetime as dt
import json
import os
import time

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT, REGION, BasaltServer, make_client_factory, unique

ROLE = f"arn:aws:iam::{ACCOUNT}:role/scheduler"
OFF = {"Mode": "OFF"}


@pytest.fixture(scope="module")
def scheduler(make_client):
    return make_client("scheduler")


@pytest.fixture(scope="module")
def sqs(make_client):
    return make_client("sqs")


def code(e):
    return e.value.response["Error"]["Code"]


def message(e):
    return e.value.response["Error"]["Message"]


def queue(sqs, prefix="schq"):
    url = sqs.create_queue(QueueName=unique(prefix))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def receive(sqs, url, want, timeout=15.0, attributes=False):
    got = []
    deadline = time.time() + timeout
    while len(got) < want and time.time() < deadline:
        kw = {"MessageAttributeNames": ["All"]} if attributes else {}
        for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, **kw).get("Messages", []):
            got.append(m if attributes else m["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return got


def at_in(seconds):
    t = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=seconds)
    return f"at({t.strftime('%Y-%m-%dT%H:%M:%S')})"


def target(arn, **extra):
    return {"Arn": arn, "RoleArn": ROLE, **extra}


def test_default_group_and_group_lifecycle(scheduler):
    d = scheduler.get_schedule_group(Name="default")
    assert d["Arn"] == f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule-group/default"
    assert d["State"] == "ACTIVE"
    name = unique("grp")
    arn = scheduler.create_schedule_group(Name=name, Tags=[{"Key": "team", "Value": "a"}])["ScheduleGroupArn"]
    assert arn == f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule-group/{name}"
    g = scheduler.get_schedule_group(Name=name)
    assert (g["Name"], g["State"]) == (name, "ACTIVE")
    assert isinstance(g["CreationDate"], dt.datetime)
    with pytest.raises(ClientError) as e:
        scheduler.create_schedule_group(Name=name)
    assert code(e) == "ConflictException"
    listed = [x["Name"] for x in scheduler.list_schedule_groups(NamePrefix=name)["ScheduleGroups"]]
    assert listed == [name]
    assert "default" in [x["Name"] for x in scheduler.list_schedule_groups()["ScheduleGroups"]]

    assert scheduler.list_tags_for_resource(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "a"}]
    scheduler.tag_resource(ResourceArn=arn, Tags=[{"Key": "env", "Value": "test"}])
    scheduler.untag_resource(ResourceArn=arn, TagKeys=["team"])
    assert scheduler.list_tags_for_resource(ResourceArn=arn)["Tags"] == [{"Key": "env", "Value": "test"}]

    # Deleting a group deletes its schedules.
    scheduler.create_schedule(Name="in-group", GroupName=name, ScheduleExpression="rate(1 hour)",
                              FlexibleTimeWindow=OFF, Target=target(f"arn:aws:sqs:{REGION}:{ACCOUNT}:q"))
    scheduler.delete_schedule_group(Name=name)
    with pytest.raises(ClientError) as e:
        scheduler.get_schedule_group(Name=name)
    assert code(e) == "ResourceNotFoundException"
    assert message(e) == f"Schedule group {name} does not exist."
    with pytest.raises(ClientError) as e:
        scheduler.get_schedule(Name="in-group", GroupName=name)
    assert code(e) == "ResourceNotFoundException"
    scheduler.create_schedule_group(Name=name)
    assert scheduler.list_schedules(GroupName=name)["Schedules"] == []
    scheduler.delete_schedule_group(Name=name)
    with pytest.raises(ClientError) as e:
        scheduler.delete_schedule_group(Name="default")
    assert code(e) == "ValidationException"


def test_group_pagination(scheduler):
    prefix = unique("pg")
    names = sorted(f"{prefix}-{i}" for i in range(5))
    for n in names:
        scheduler.create_schedule_group(Name=n)
    seen, token = [], None
    while True:
        kw = {"NextToken": token} if token else {}
        page = scheduler.list_schedule_groups(NamePrefix=prefix, MaxResults=2, **kw)
        assert len(page["ScheduleGroups"]) <= 2
        seen += [g["Name"] for g in page["ScheduleGroups"]]
        token = page.get("NextToken")
        if not token:
            break
    assert seen == names
    for n in names:
        scheduler.delete_schedule_group(Name=n)


def test_schedule_crud(scheduler):
    name = unique("s")
    qarn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:somewhere"
    arn = scheduler.create_schedule(
        Name=name, ScheduleExpression="cron(0 9 ? * MON-FRI *)", ScheduleExpressionTimezone="Europe/Paris",
        FlexibleTimeWindow={"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 15}, Description="weekday mornings",
        Target=target(qarn, Input='{"hello": "world"}'),
    )["ScheduleArn"]
    assert arn == f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/default/{name}"
    s = scheduler.get_schedule(Name=name)
    assert (s["Arn"], s["Name"], s["GroupName"]) == (arn, name, "default")
    assert s["ScheduleExpression"] == "cron(0 9 ? * MON-FRI *)"
    assert s["ScheduleExpressionTimezone"] == "Europe/Paris"
    assert s["State"] == "ENABLED" and s["Description"] == "weekday mornings"
    assert s["FlexibleTimeWindow"] == {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 15}
    assert s["ActionAfterCompletion"] == "NONE"
    # A target without a RetryPolicy gets AWS's default one.
    assert s["Target"]["RetryPolicy"] == {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185}
    assert s["Target"]["Input"] == '{"hello": "world"}'
    with pytest.raises(ClientError) as e:
        scheduler.create_schedule(Name=name, ScheduleExpression="rate(1 hour)", FlexibleTimeWindow=OFF,
                                  Target=target(qarn))
    assert code(e) == "ConflictException"
    assert message(e) == f"Schedule {name} already exists."

    # An update replaces the schedule: what it leaves out is reset.
    scheduler.update_schedule(Name=name, ScheduleExpression="rate(5 minutes)", FlexibleTimeWindow=OFF,
                              State="DISABLED", Target=target(qarn))
    s2 = scheduler.get_schedule(Name=name)
    assert (s2["ScheduleExpression"], s2["State"], s2["ScheduleExpressionTimezone"]) == ("rate(5 minutes)", "DISABLED", "UTC")
    assert "Description" not in s2 and "Input" not in s2["Target"]
    assert s2["CreationDate"] == s["CreationDate"]
    assert s2["LastModificationDate"] >= s["LastModificationDate"]

    scheduler.delete_schedule(Name=name)
    for call in (lambda: scheduler.get_schedule(Name=name), lambda: scheduler.delete_schedule(Name=name),
                 lambda: scheduler.update_schedule(Name=name, ScheduleExpression="rate(1 hour)",
                                                   FlexibleTimeWindow=OFF, Target=target(qarn))):
        with pytest.raises(ClientError) as e:
            call()
        assert code(e) == "ResourceNotFoundException"
        assert message(e) == f"Schedule {name} does not exist."
    with pytest.raises(ClientError) as e:
        scheduler.create_schedule(Name=name, GroupName=unique("nogroup"), ScheduleExpression="rate(1 hour)",
                                  FlexibleTimeWindow=OFF, Target=target(qarn))
    assert code(e) == "ResourceNotFoundException"


def test_list_schedules_filters_and_pages(scheduler):
    group = unique("lg")
    scheduler.create_schedule_group(Name=group)
    qarn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:q"
    for i in range(5):
        scheduler.create_schedule(Name=f"a-{i}", GroupName=group, ScheduleExpression="rate(1 day)",
                                  FlexibleTimeWindow=OFF, Target=target(qarn),
                                  State="DISABLED" if i % 2 else "ENABLED")
    scheduler.create_schedule(Name="b-0", GroupName=group, ScheduleExpression="rate(1 day)",
                              FlexibleTimeWindow=OFF, Target=target(qarn))
    listed = scheduler.list_schedules(GroupName=group)["Schedules"]
    assert [s["Name"] for s in listed] == ["a-0", "a-1", "a-2", "a-3", "a-4", "b-0"]
    first = listed[0]
    assert first["GroupName"] == group and first["Target"] == {"Arn": qarn}
    assert first["Arn"] == f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/{group}/a-0"
    assert [s["Name"] for s in scheduler.list_schedules(GroupName=group, NamePrefix="b")["Schedules"]] == ["b-0"]
    assert [s["Name"] for s in scheduler.list_schedules(GroupName=group, State="DISABLED")["Schedules"]] == ["a-1", "a-3"]
    seen, token = [], None
    while True:
        kw = {"NextToken": token} if token else {}
        page = scheduler.list_schedules(GroupName=group, NamePrefix="a", MaxResults=2, **kw)
        assert len(page["Schedules"]) <= 2
        seen += [s["Name"] for s in page["Schedules"]]
        token = page.get("NextToken")
        if not token:
            break
    assert seen == [f"a-{i}" for i in range(5)]
    paginated = [s["Name"] for p in scheduler.get_paginator("list_schedules").paginate(
        GroupName=group, PaginationConfig={"PageSize": 4}) for s in p["Schedules"]]
    assert len(paginated) == 6
    with pytest.raises(ClientError) as e:
        scheduler.list_schedules(GroupName=unique("missing"))
    assert code(e) == "ResourceNotFoundException"
    scheduler.delete_schedule_group(Name=group)


@pytest.mark.parametrize("kwargs, text", [
    ({"ScheduleExpression": "rate(5 minute)"}, "Invalid Schedule Expression rate(5 minute)"),
    ({"ScheduleExpression": "cron(0 9 * * * *)"}, "Invalid Schedule Expression cron(0 9 * * * *)"),
    ({"ScheduleExpression": "at(2030-13-01T00:00:00)"}, "Invalid Schedule Expression at(2030-13-01T00:00:00)"),
    ({"ScheduleExpressionTimezone": "Mars/Olympus"}, "Invalid ScheduleExpressionTimezone Mars/Olympus"),
    ({"FlexibleTimeWindow": {"Mode": "SOMETIMES"}},
     "1 validation error detected: Value 'SOMETIMES' at 'flexibleTimeWindow.mode' failed to satisfy constraint: "
     "Member must satisfy enum value set: [OFF, FLEXIBLE]"),
    ({"FlexibleTimeWindow": {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 2000}},
     "1 validation error detected: Value '2000' at 'flexibleTimeWindow.maximumWindowInMinutes' failed to satisfy "
     "constraint: Member must have value less than or equal to 1440"),
    ({"Target": {"Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:q", "RoleArn": "not-a-role"}}, None),
    ({"Target": {"Arn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/c", "RoleArn": ROLE}},
     "ecs is not a supported service for a target."),
    ({"Target": {"Arn": "arn:aws:scheduler:::aws-sdk:sqs:getQueueUrl", "RoleArn": ROLE}}, None),
    ({"StartDate": dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)},
     "The StartDate you specify cannot be earlier than 5 minutes ago."),
])
def test_create_validation(scheduler, kwargs, text):
    args = {"Name": unique("v"), "ScheduleExpression": "rate(1 hour)", "FlexibleTimeWindow": OFF,
            "Target": target(f"arn:aws:sqs:{REGION}:{ACCOUNT}:q"), **kwargs}
    with pytest.raises(ClientError) as e:
        scheduler.create_schedule(**args)
    assert code(e) == "ValidationException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    if text:
        assert message(e) == text
    with pytest.raises(ClientError):
        scheduler.get_schedule(Name=args["Name"])


def test_one_time_schedule_fires_into_sqs_and_deletes_itself(scheduler, sqs):
    url, qarn = queue(sqs)
    name = unique("once")
    arn = scheduler.create_schedule(
        Name=name, ScheduleExpression=at_in(2), FlexibleTimeWindow=OFF, ActionAfterCompletion="DELETE",
        Target=target(qarn, Input=json.dumps({"arn": "<aws.scheduler.schedule-arn>",
                                              "at": "<aws.scheduler.scheduled-time>",
                                              "attempt": "<aws.scheduler.attempt-number>"})),
    )["ScheduleArn"]
    bodies = receive(sqs, url, 1, timeout=15)
    assert len(bodies) == 1
    body = json.loads(bodies[0])
    assert body["arn"] == arn and body["attempt"] == "1"
    assert body["at"].endswith("Z")
    deadline = time.time() + 5
    while time.time() < deadline:
        try:
            scheduler.get_schedule(Name=name)
            time.sleep(0.2)
        except ClientError as e:
            assert e.response["Error"]["Code"] == "ResourceNotFoundException"
            break
    else:
        pytest.fail("the completed one-time schedule was not deleted")
    # It fires once only.
    assert receive(sqs, url, 1, timeout=2) == []


def test_one_time_schedule_without_delete_stays_and_disabled_does_not_fire(scheduler, sqs):
    url, qarn = queue(sqs)
    kept, off = unique("kept"), unique("off")
    scheduler.create_schedule(Name=kept, ScheduleExpression=at_in(2), FlexibleTimeWindow=OFF,
                              Target=target(qarn, Input="kept"))
    scheduler.create_schedule(Name=off, ScheduleExpression=at_in(2), FlexibleTimeWindow=OFF, State="DISABLED",
                              Target=target(qarn, Input="off"))
    assert receive(sqs, url, 2, timeout=8) == ["kept"]
    assert scheduler.get_schedule(Name=kept)["State"] == "ENABLED"
    scheduler.delete_schedule(Name=kept)
    scheduler.delete_schedule(Name=off)


def test_universal_target_calls_the_named_operation(scheduler, sqs):
    url, _ = queue(sqs, "univ")
    name = unique("univ")
    scheduler.create_schedule(
        Name=name, ScheduleExpression=at_in(2), FlexibleTimeWindow=OFF, ActionAfterCompletion="DELETE",
        Target=target("arn:aws:scheduler:::aws-sdk:sqs:sendMessage",
                      Input=json.dumps({"QueueUrl": url, "MessageBody": "from a universal target"})),
    )
    assert receive(sqs, url, 1, timeout=15) == ["from a universal target"]


def test_eventbridge_target_puts_the_event(scheduler, sqs, make_client):
    events = make_client("events")
    url, qarn = queue(sqs, "ebt")
    bus = unique("sbus")
    bus_arn = events.create_event_bus(Name=bus)["EventBusArn"]
    events.put_rule(Name="from-scheduler", EventBusName=bus, EventPattern=json.dumps({"source": ["my.scheduler"]}))
    events.put_targets(Rule="from-scheduler", EventBusName=bus, Targets=[{"Id": "q", "Arn": qarn}])
    name = unique("ebs")
    arn = scheduler.create_schedule(
        Name=name, ScheduleExpression=at_in(2), FlexibleTimeWindow=OFF, ActionAfterCompletion="DELETE",
        Target=target(bus_arn, Input=json.dumps({"k": "v"}),
                      EventBridgeParameters={"DetailType": "Tick", "Source": "my.scheduler"}),
    )["ScheduleArn"]
    bodies = receive(sqs, url, 1, timeout=20)
    assert len(bodies) == 1
    event = json.loads(bodies[0])
    assert (event["source"], event["detail-type"], event["detail"]) == ("my.scheduler", "Tick", {"k": "v"})
    assert event["resources"] == [arn]


def test_sns_target_publishes(scheduler, sqs, make_client):
    sns = make_client("sns")
    url, qarn = queue(sqs, "snsq")
    topic = sns.create_topic(Name=unique("stopic"))["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=qarn, Attributes={"RawMessageDelivery": "true"})
    scheduler.create_schedule(Name=unique("sns"), ScheduleExpression=at_in(2), FlexibleTimeWindow=OFF,
                              ActionAfterCompletion="DELETE", Target=target(topic, Input="published"))
    assert receive(sqs, url, 1, timeout=15) == ["published"]


def test_only_schedule_groups_take_tags(scheduler):
    name = unique("notag")
    arn = scheduler.create_schedule(Name=name, ScheduleExpression="rate(1 hour)", FlexibleTimeWindow=OFF,
                                    Target=target(f"arn:aws:sqs:{REGION}:{ACCOUNT}:q"))["ScheduleArn"]
    with pytest.raises(ClientError) as e:
        scheduler.tag_resource(ResourceArn=arn, Tags=[{"Key": "k", "Value": "v"}])
    assert code(e) == "ValidationException"
    with pytest.raises(ClientError) as e:
        scheduler.list_tags_for_resource(
            ResourceArn=f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule-group/{unique('nogroup')}")
    assert code(e) == "ResourceNotFoundException"
    scheduler.delete_schedule(Name=name)


@pytest.fixture(scope="module")
def fast_server():
    # A one-second minute for rate(), fast retries and short leases: tests only.
    saved = dict(os.environ)
    os.environ.update({"BASALT_SCHEDULER_MINUTE_MS": "1000", "BASALT_SCHEDULER_RETRY_BASE_MS": "100",
                       "BASALT_SCHEDULER_LEASE_MS": "2000"})
    srv = BasaltServer(name="basalt-scheduler")
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()
        os.environ.clear()
        os.environ.update(saved)


def test_rate_schedule_fires_repeatedly(fast_server, shape_checker):
    make = make_client_factory(shape_checker, fast_server.endpoint)
    scheduler, sqs = make("scheduler"), make("sqs")
    url, qarn = queue(sqs, "rate")
    name = unique("rate")
    scheduler.create_schedule(Name=name, ScheduleExpression="rate(1 minute)", FlexibleTimeWindow=OFF,
                              Target=target(qarn, Input="tick"))
    bodies = receive(sqs, url, 3, timeout=10)
    assert bodies == ["tick"] * 3
    scheduler.update_schedule(Name=name, ScheduleExpression="rate(1 minute)", FlexibleTimeWindow=OFF,
                              State="DISABLED", Target=target(qarn, Input="tick"))
    time.sleep(1.5)
    receive(sqs, url, 10, timeout=1)
    assert receive(sqs, url, 1, timeout=3) == []


def test_rate_schedule_stops_at_end_date(fast_server, shape_checker):
    make = make_client_factory(shape_checker, fast_server.endpoint)
    scheduler, sqs = make("scheduler"), make("sqs")
    url, qarn = queue(sqs, "end")
    name = unique("end")
    end = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=3.5)
    scheduler.create_schedule(Name=name, ScheduleExpression="rate(1 minute)", FlexibleTimeWindow=OFF,
                              EndDate=end, ActionAfterCompletion="DELETE", Target=target(qarn, Input="t"))
    bodies = receive(sqs, url, 10, timeout=7)
    assert 2 <= len(bodies) <= 4
    with pytest.raises(ClientError) as e:
        scheduler.get_schedule(Name=name)
    assert code(e) == "ResourceNotFoundException"


def test_flexible_window_fires_within_the_window(fast_server, shape_checker):
    # With a one-second minute, a 3-minute window is 3 s: the fire lands between the nominal
    # time and 3 s after it.
    make = make_client_factory(shape_checker, fast_server.endpoint)
    scheduler, sqs = make("scheduler"), make("sqs")
    url, qarn = queue(sqs, "flex")
    expr = at_in(2)
    nominal = dt.datetime.strptime(expr[3:-1], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=dt.timezone.utc).timestamp()
    scheduler.create_schedule(Name=unique("flex"), ScheduleExpression=expr,
                              FlexibleTimeWindow={"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 3},
                              Target=target(qarn, Input="flex"))
    assert receive(sqs, url, 1, timeout=10) == ["flex"]
    arrived = time.time()
    assert nominal - 0.1 <= arrived <= nominal + 3 + 1.5


def test_failed_invocations_retry_then_dead_letter(fast_server, shape_checker):
    make = make_client_factory(shape_checker, fast_server.endpoint)
    scheduler, sqs = make("scheduler"), make("sqs")
    dlq_url, dlq_arn = queue(sqs, "dlq")
    missing = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{unique('missing')}"
    name = unique("dl")
    arn = scheduler.create_schedule(
        Name=name, ScheduleExpression=at_in(2), FlexibleTimeWindow=OFF,
        Target=target(missing, Input="lost", RetryPolicy={"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 60},
                      DeadLetterConfig={"Arn": dlq_arn}),
    )["ScheduleArn"]
    got = receive(sqs, dlq_url, 1, timeout=15, attributes=True)
    assert len(got) == 1
    m = got[0]
    assert m["Body"] == "lost"
    attrs = {k: v["StringValue"] for k, v in m["MessageAttributes"].items()}
    assert attrs["EXHAUSTED_RETRY_CONDITION"] == "MaximumRetryAttempts"
    assert attrs["RETRY_ATTEMPTS"] == "2"
    assert attrs["TARGET_ARN"] == missing and attrs["SCHEDULE_ARN"] == arn
    assert attrs["ERROR_CODE"] == "QueueDoesNotExist"
    assert receive(sqs, dlq_url, 1, timeout=2) == []


def test_fires_survive_kill_9(fast_server, shape_checker):
    make = make_client_factory(shape_checker, fast_server.endpoint)
    scheduler, sqs = make("scheduler"), make("sqs")
    url, qarn = queue(sqs, "crash")
    qname = url.rsplit("/", 1)[1]
    name = unique("crash")
    scheduler.create_schedule(Name=name, ScheduleExpression=at_in(3), FlexibleTimeWindow=OFF,
                              ActionAfterCompletion="DELETE", Target=target(qarn, Input="survived"))
    fast_server.kill9()
    fast_server.start()
    sqs = make_client_factory(shape_checker, fast_server.endpoint)("sqs")
    url = sqs.get_queue_url(QueueName=qname)["QueueUrl"]
    assert receive(sqs, url, 1, timeout=15) == ["survived"]
