"""EventBridge archives and replays through boto3: CreateArchive/DescribeArchive/ListArchives/
UpdateArchive/DeleteArchive, the managed `Events-Archive-<name>` rule, StartReplay/
DescribeReplay/ListReplays/CancelReplay, retention, and archived events and replays
surviving kill -9.

Behaviour from the EventBridge User Guide:
  https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-archive.html
  https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-archive-event.html
  https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-archive-delete.html
  https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-replay-archived-event.html
and the API Reference (CreateArchive, StartReplay, CancelReplay, Replay).
"""
from __future__ import annotations

import json
import os
import time
from datetime import datetime, timedelta, timezone

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT, REGION, BasaltServer, make_client_factory, unique
from test_events import code, queue_with_arn, receive_bodies


@pytest.fixture(scope="module")
def events(make_client):
    return make_client("events")


@pytest.fixture(scope="module")
def sqs(make_client):
    return make_client("sqs")


def bus_arn(bus):
    return f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{bus}"


def archive_arn(name):
    return f"arn:aws:events:{REGION}:{ACCOUNT}:archive/{name}"


def new_bus(events):
    bus = unique("abus")
    events.create_event_bus(Name=bus)
    return bus


def rule_to_queue(events, sqs, bus, source, rule=None):
    """A rule on `bus` for `source` with an SQS target; returns (rule ARN, queue URL)."""
    rule = rule or unique("ar")
    url, qarn = queue_with_arn(sqs, "arq")
    arn = events.put_rule(Name=rule, EventBusName=bus, EventPattern=json.dumps({"source": [source]}))["RuleArn"]
    events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "q", "Arn": qarn}])
    return arn, url


def put(events, bus, source, n, **extra):
    out = events.put_events(Entries=[
        {"EventBusName": bus, "Source": source, "DetailType": "t", "Detail": json.dumps({"i": i}), **extra}
        for i in range(n)
    ])
    assert out["FailedEntryCount"] == 0
    return [e["EventId"] for e in out["Entries"]]


def wait_replay(events, name, states=("COMPLETED", "CANCELLED", "FAILED"), timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        d = events.describe_replay(ReplayName=name)
        if d["State"] in states:
            return d
        time.sleep(0.1)
    pytest.fail(f"replay {name} still {d['State']} after {timeout}s")


def replayed(bodies, name):
    events = [json.loads(b) for b in bodies]
    return [e for e in events if e.get("replay-name") == name]


def test_archive_lifecycle_and_its_managed_rule(events):
    bus = new_bus(events)
    name = unique("arch")
    pattern = json.dumps({"source": ["orders"]})
    out = events.create_archive(ArchiveName=name, EventSourceArn=bus_arn(bus), EventPattern=pattern,
                                Description="d1", RetentionDays=0)
    assert out["ArchiveArn"] == archive_arn(name)
    assert out["State"] == "ENABLED" and "CreationTime" in out
    with pytest.raises(ClientError) as e:
        events.create_archive(ArchiveName=name, EventSourceArn=bus_arn(bus))
    assert code(e) == "ResourceAlreadyExistsException"

    d = events.describe_archive(ArchiveName=name)
    assert (d["ArchiveName"], d["ArchiveArn"], d["EventSourceArn"]) == (name, archive_arn(name), bus_arn(bus))
    assert (d["Description"], d["EventPattern"], d["State"]) == ("d1", pattern, "ENABLED")
    assert (d["RetentionDays"], d["EventCount"], d["SizeBytes"]) == (0, 0, 0)

    # eb-archive.html: EventBridge generates a managed rule on the source bus whose pattern
    # keeps replayed events out of the archive.
    rules = events.list_rules(EventBusName=bus)["Rules"]
    managed = [r for r in rules if r["Name"] == f"Events-Archive-{name}"]
    assert len(managed) == 1
    assert managed[0]["ManagedBy"] == "prod.vhs.events.aws.internal"
    assert json.loads(managed[0]["EventPattern"]) == {"source": ["orders"], "replay-name": [{"exists": False}]}
    assert managed[0]["State"] == "ENABLED"

    out = events.update_archive(ArchiveName=name, Description="d2", RetentionDays=7,
                                EventPattern=json.dumps({"source": ["orders", "refunds"]}))
    assert out["ArchiveArn"] == archive_arn(name) and out["State"] == "ENABLED"
    d = events.describe_archive(ArchiveName=name)
    assert (d["Description"], d["RetentionDays"]) == ("d2", 7)
    assert json.loads(d["EventPattern"]) == {"source": ["orders", "refunds"]}
    rule = events.describe_rule(Name=f"Events-Archive-{name}", EventBusName=bus)
    assert json.loads(rule["EventPattern"]) == {"source": ["orders", "refunds"], "replay-name": [{"exists": False}]}

    # eb-archive-delete.html: deleting an archive deletes its managed rule.
    events.delete_archive(ArchiveName=name)
    for call in (events.describe_archive, events.delete_archive):
        with pytest.raises(ClientError) as e:
            call(ArchiveName=name)
        assert code(e) == "ResourceNotFoundException"
    assert f"Events-Archive-{name}" not in [r["Name"] for r in events.list_rules(EventBusName=bus)["Rules"]]


def test_create_archive_validation(events):
    bus = new_bus(events)
    with pytest.raises(ClientError) as e:
        events.create_archive(ArchiveName=unique("a"), EventSourceArn=bus_arn(unique("nobus")))
    assert code(e) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        events.create_archive(ArchiveName=unique("a"), EventSourceArn=bus_arn(bus),
                              EventPattern=json.dumps({"source": "not-a-list"}))
    assert code(e) == "InvalidEventPatternException"
    with pytest.raises(ClientError) as e:
        events.create_archive(ArchiveName="a" * 49, EventSourceArn=bus_arn(bus))
    assert code(e) == "ValidationException"
    with pytest.raises(ClientError) as e:
        events.update_archive(ArchiveName=unique("missing"))
    assert code(e) == "ResourceNotFoundException"


def test_managed_rule_refuses_user_changes(events):
    bus = new_bus(events)
    name = unique("arch")
    events.create_archive(ArchiveName=name, EventSourceArn=bus_arn(bus))
    rule = f"Events-Archive-{name}"
    attempts = [
        lambda: events.put_rule(Name=rule, EventBusName=bus, EventPattern=json.dumps({"source": ["x"]})),
        lambda: events.disable_rule(Name=rule, EventBusName=bus),
        lambda: events.delete_rule(Name=rule, EventBusName=bus),
        lambda: events.put_targets(Rule=rule, EventBusName=bus,
                                   Targets=[{"Id": "x", "Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:x"}]),
    ]
    for attempt in attempts:
        with pytest.raises(ClientError) as e:
            attempt()
        assert code(e) == "ManagedRuleException"
    assert events.describe_rule(Name=rule, EventBusName=bus)["State"] == "ENABLED"
    events.delete_archive(ArchiveName=name)


def test_list_archives_filters_and_pages(events):
    bus = new_bus(events)
    stem = unique("la")
    names = [f"{stem}-{i}" for i in range(3)]
    for n in names:
        events.create_archive(ArchiveName=n, EventSourceArn=bus_arn(bus))
    listed = events.list_archives(NamePrefix=stem)["Archives"]
    assert [a["ArchiveName"] for a in listed] == names
    assert all(a["State"] == "ENABLED" and a["EventSourceArn"] == bus_arn(bus) for a in listed)
    assert "EventPattern" not in listed[0] and "EventCount" in listed[0]
    by_bus = events.list_archives(EventSourceArn=bus_arn(bus))["Archives"]
    assert sorted(a["ArchiveName"] for a in by_bus) == names
    got, token = [], None
    while True:
        kw = {"NextToken": token} if token else {}
        page = events.list_archives(NamePrefix=stem, Limit=2, **kw)
        assert len(page["Archives"]) <= 2
        got += [a["ArchiveName"] for a in page["Archives"]]
        token = page.get("NextToken")
        if not token:
            break
    assert got == names
    with pytest.raises(ClientError) as e:
        events.list_archives(NamePrefix=stem, State="ENABLED")
    assert code(e) == "ValidationException"
    assert events.list_archives(EventSourceArn=bus_arn(new_bus(events)))["Archives"] == []
    for n in names:
        events.delete_archive(ArchiveName=n)


def test_matching_events_are_archived_and_counted(events):
    bus = new_bus(events)
    name = unique("arch")
    events.create_archive(ArchiveName=name, EventSourceArn=bus_arn(bus),
                          EventPattern=json.dumps({"source": ["keep"]}))
    put(events, bus, "keep", 3)
    put(events, bus, "drop", 2)
    d = events.describe_archive(ArchiveName=name)
    assert d["EventCount"] == 3
    assert d["SizeBytes"] > 3 * 100  # three whole events, envelope included
    events.delete_archive(ArchiveName=name)


def test_replay_reaches_the_bus_rules_with_replay_name_and_is_not_archived_again(events, sqs):
    bus = new_bus(events)
    _, url = rule_to_queue(events, sqs, bus, "shop")
    name = unique("arch")
    events.create_archive(ArchiveName=name, EventSourceArn=bus_arn(bus))
    begin = datetime.now(timezone.utc) - timedelta(minutes=1)
    ids = put(events, bus, "shop", 3)
    assert len(receive_bodies(sqs, url, 3)) == 3  # live deliveries
    time.sleep(1.1)  # event times are whole seconds; the window ends strictly after them
    replay = unique("rp")
    out = events.start_replay(ReplayName=replay, EventSourceArn=archive_arn(name), Description="again",
                              EventStartTime=begin, EventEndTime=datetime.now(timezone.utc),
                              Destination={"Arn": bus_arn(bus)})
    assert out["ReplayArn"] == f"arn:aws:events:{REGION}:{ACCOUNT}:replay/{replay}"
    assert out["State"] == "STARTING" and "ReplayStartTime" in out
    d = wait_replay(events, replay)
    assert d["State"] == "COMPLETED"
    assert (d["ReplayName"], d["Description"], d["EventSourceArn"]) == (replay, "again", archive_arn(name))
    assert d["Destination"] == {"Arn": bus_arn(bus)}
    assert "EventLastReplayedTime" in d and "ReplayEndTime" in d
    got = replayed(receive_bodies(sqs, url, 3), replay)
    assert sorted(e["id"] for e in got) == sorted(ids)
    # eb-archive.html: the managed rule keeps replayed events out of the archive.
    assert events.describe_archive(ArchiveName=name)["EventCount"] == 3

    listed = events.list_replays(NamePrefix=replay)["Replays"]
    assert [r["ReplayName"] for r in listed] == [replay]
    assert listed[0]["State"] == "COMPLETED" and "Destination" not in listed[0]
    assert replay in [r["ReplayName"] for r in events.list_replays(EventSourceArn=archive_arn(name))["Replays"]]
    assert replay in [r["ReplayName"] for r in events.list_replays(State="COMPLETED")["Replays"]]
    with pytest.raises(ClientError) as e:
        events.list_replays(NamePrefix=replay, State="COMPLETED")
    assert code(e) == "ValidationException"
    # CancelReplay: only a STARTING or RUNNING replay can be cancelled.
    with pytest.raises(ClientError) as e:
        events.cancel_replay(ReplayName=replay)
    assert code(e) == "IllegalStatusException"
    with pytest.raises(ClientError) as e:
        events.start_replay(ReplayName=replay, EventSourceArn=archive_arn(name), EventStartTime=begin,
                            EventEndTime=datetime.now(timezone.utc), Destination={"Arn": bus_arn(bus)})
    assert code(e) == "ResourceAlreadyExistsException"


def test_replay_to_the_rules_in_filter_arns_only(events, sqs):
    bus = new_bus(events)
    _, url1 = rule_to_queue(events, sqs, bus, "shop")
    arn2, url2 = rule_to_queue(events, sqs, bus, "shop")
    name = unique("arch")
    events.create_archive(ArchiveName=name, EventSourceArn=bus_arn(bus))
    begin = datetime.now(timezone.utc) - timedelta(minutes=1)
    ids = put(events, bus, "shop", 2)
    assert len(receive_bodies(sqs, url1, 2)) == 2 and len(receive_bodies(sqs, url2, 2)) == 2
    time.sleep(1.1)
    replay = unique("rp")
    events.start_replay(ReplayName=replay, EventSourceArn=archive_arn(name), EventStartTime=begin,
                        EventEndTime=datetime.now(timezone.utc),
                        Destination={"Arn": bus_arn(bus), "FilterArns": [arn2]})
    assert wait_replay(events, replay)["State"] == "COMPLETED"
    assert events.describe_replay(ReplayName=replay)["Destination"]["FilterArns"] == [arn2]
    assert sorted(e["id"] for e in replayed(receive_bodies(sqs, url2, 2), replay)) == sorted(ids)
    assert receive_bodies(sqs, url1, 1, timeout=2) == []


def test_replay_takes_the_events_whose_time_is_in_the_window(events, sqs):
    # eb-replay-archived-event.html: replays go by the time in the event.
    bus = new_bus(events)
    _, url = rule_to_queue(events, sqs, bus, "shop")
    name = unique("arch")
    events.create_archive(ArchiveName=name, EventSourceArn=bus_arn(bus))
    now = datetime.now(timezone.utc).replace(microsecond=0)
    old = put(events, bus, "shop", 2, Time=now - timedelta(hours=2))
    put(events, bus, "shop", 2, Time=now - timedelta(minutes=10))
    receive_bodies(sqs, url, 4)
    replay = unique("rp")
    events.start_replay(ReplayName=replay, EventSourceArn=archive_arn(name),
                        EventStartTime=now - timedelta(hours=3), EventEndTime=now - timedelta(hours=1),
                        Destination={"Arn": bus_arn(bus)})
    d = wait_replay(events, replay)
    assert d["State"] == "COMPLETED"
    assert d["EventLastReplayedTime"] == now - timedelta(hours=2)
    got = replayed(receive_bodies(sqs, url, 3, timeout=4), replay)
    assert sorted(e["id"] for e in got) == sorted(old)


def test_start_replay_validation(events):
    bus, other = new_bus(events), new_bus(events)
    name = unique("arch")
    events.create_archive(ArchiveName=name, EventSourceArn=bus_arn(bus))
    now = datetime.now(timezone.utc)
    hour_ago = now - timedelta(hours=1)

    def start(**kw):
        args = {"ReplayName": unique("rp"), "EventSourceArn": archive_arn(name), "EventStartTime": hour_ago,
                "EventEndTime": now, "Destination": {"Arn": bus_arn(bus)}}
        args.update(kw)
        with pytest.raises(ClientError) as e:
            events.start_replay(**args)
        return code(e), e.value.response["Error"]["Message"]

    assert start(Destination={"Arn": bus_arn(other)}) == (
        "ValidationException", "Parameter Destination.Arn is not valid. Reason: Cross event bus replay is not permitted.")
    assert start(EventSourceArn=archive_arn("nope"))[0] == "ValidationException"
    assert start(EventStartTime=now, EventEndTime=hour_ago)[0] == "ValidationException"
    assert start(Destination={"Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:q"})[0] == "ValidationException"
    for call in (events.describe_replay, events.cancel_replay):
        with pytest.raises(ClientError) as e:
            call(ReplayName=unique("nope"))
        assert code(e) == "ResourceNotFoundException"


@pytest.fixture(scope="module")
def own_server():
    # Short leases and retention passes, and small replay pages so that a replay is many
    # transactions.
    saved = dict(os.environ)
    os.environ.update({
        "BASALT_EVENTS_LEASE_MS": "2000",
        "BASALT_EVENTS_RETENTION_EVERY_MS": "300",
        "BASALT_EVENTS_REPLAY_PAGE": "3",
    })
    srv = BasaltServer(name="basalt-archive")
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()
        os.environ.clear()
        os.environ.update(saved)


def test_retention_drops_events_older_than_retention_days(own_server, shape_checker):
    events = make_client_factory(shape_checker, own_server.endpoint)("events")
    bus = new_bus(events)
    name = unique("ret")
    events.create_archive(ArchiveName=name, EventSourceArn=bus_arn(bus), RetentionDays=1)
    put(events, bus, "app", 2, Time=datetime.now(timezone.utc) - timedelta(days=3))
    put(events, bus, "app", 1)
    deadline = time.time() + 10
    while events.describe_archive(ArchiveName=name)["EventCount"] != 1 and time.time() < deadline:
        time.sleep(0.2)
    assert events.describe_archive(ArchiveName=name)["EventCount"] == 1


def test_archived_events_and_a_running_replay_survive_kill_9(own_server, shape_checker):
    make = make_client_factory(shape_checker, own_server.endpoint)
    events, sqs = make("events"), make("sqs")
    bus = new_bus(events)
    _, url = rule_to_queue(events, sqs, bus, "crash")
    queue = url.rsplit("/", 1)[1]
    name = unique("arch")
    events.create_archive(ArchiveName=name, EventSourceArn=bus_arn(bus))
    begin = datetime.now(timezone.utc) - timedelta(minutes=1)
    ids = []
    for _ in range(6):
        ids += put(events, bus, "crash", 10)
    own_server.kill9()  # right after the last acknowledgement
    own_server.start()
    events, sqs = make_client_factory(shape_checker, own_server.endpoint)("events"), None
    assert events.describe_archive(ArchiveName=name)["EventCount"] == 60

    time.sleep(1.1)
    replay = unique("rp")
    events.start_replay(ReplayName=replay, EventSourceArn=archive_arn(name), EventStartTime=begin,
                        EventEndTime=datetime.now(timezone.utc), Destination={"Arn": bus_arn(bus)})
    own_server.kill9()  # 20 pages of 3: killed while it runs (or just after)
    own_server.start()
    make = make_client_factory(shape_checker, own_server.endpoint)
    events, sqs = make("events"), make("sqs")
    assert wait_replay(events, replay, timeout=30)["State"] == "COMPLETED"
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    # Live deliveries may arrive twice (at least once, across the kills): read until every
    # replayed event came, however many messages that takes.
    got, deadline = set(), time.time() + 20
    while got != set(ids) and time.time() < deadline:
        got |= {e["id"] for e in replayed(receive_bodies(sqs, url, 10, timeout=1), replay)}
    assert got == set(ids)
    assert events.describe_archive(ArchiveName=name)["EventCount"] == 60
