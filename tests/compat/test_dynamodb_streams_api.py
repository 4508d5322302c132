"""DynamoDB Streams API details beyond test_dynamodb_streams.py: listing and paging streams,
the shard DescribeStream shows (open and closed), every GetShardIterator type with its
errors, GetRecords limits and iterators, commit order per key under concurrent writers, and
the 24-hour retention (shortened by BASALT_DYNAMODB_STREAM_RETENTION_SECS).

Behaviour asserted here comes from the DynamoDB Streams API reference (ListStreams,
DescribeStream, GetShardIterator, GetRecords: limits of 100 and 1000, iterators expire after
15 minutes, TrimmedDataAccessException, a closed shard's last page has no NextShardIterator),
the Developer Guide's "Change data capture for DynamoDB Streams" page (records of one item
appear in the order of its modifications; 24-hour retention; a disabled stream stays readable)
and, where AWS's reference is silent, ScyllaDB's Alternator suite (test/alternator/
test_streams.py), which is run against real DynamoDB.
"""
from __future__ import annotations

import os
import re
import threading
import time

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT, REGION, BasaltServer, make_client_factory
from ddb_helpers import (  # noqa: F401 - fixtures
    N, S, basalt_only, create_table, ddb, ddb_unchecked, error, new_table, on_basalt, streams,
)

pytestmark = pytest.mark.usefixtures("basalt_only")

SPEC = {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}


def stream_arn(ddb, table):
    return ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]


def the_shard(streams, arn):
    shards = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
    assert len(shards) == 1
    return shards[0]


def iterator(streams, arn, kind="TRIM_HORIZON", **kw):
    shard = the_shard(streams, arn)["ShardId"]
    return streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType=kind, **kw)["ShardIterator"]


def drain(streams, it, **kw):
    """Every record from `it` until a page comes back empty; returns (records, last iterator)."""
    out = []
    while it:
        page = streams.get_records(ShardIterator=it, **kw)
        out += page["Records"]
        nxt = page.get("NextShardIterator")
        if not page["Records"]:
            return out, nxt
        it = nxt
    return out, None


def keys(records):
    return [r["dynamodb"]["Keys"]["pk"]["S"] for r in records]


# --- ListStreams -----------------------------------------------------------------------------

def test_list_streams_pages_and_filters(ddb, streams, new_table):
    tables = sorted(new_table(StreamSpecification=SPEC) for _ in range(3))
    arns = {t: stream_arn(ddb, t) for t in tables}
    # Paging with Limit=1 over everything in the account visits each of our streams once.
    seen, start = [], None
    while True:
        kw = {"Limit": 1} | ({"ExclusiveStartStreamArn": start} if start else {})
        page = streams.list_streams(**kw)
        assert len(page["Streams"]) <= 1
        seen += [s["StreamArn"] for s in page["Streams"]]
        start = page.get("LastEvaluatedStreamArn")
        if not start:
            break
        assert start == page["Streams"][-1]["StreamArn"]
    assert all(seen.count(a) == 1 for a in arns.values())
    only = streams.list_streams(TableName=tables[1])["Streams"]
    assert only == [{"StreamArn": arns[tables[1]], "TableName": tables[1],
                     "StreamLabel": arns[tables[1]].rsplit("/", 1)[1]}]
    # A table's disabled stream is still listed next to its new one (oldest first).
    ddb.update_table(TableName=tables[1], StreamSpecification={"StreamEnabled": False})
    time.sleep(0.01)
    ddb.update_table(TableName=tables[1], StreamSpecification={"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"})
    listed = [s["StreamArn"] for s in streams.list_streams(TableName=tables[1])["Streams"]]
    assert listed == [arns[tables[1]], stream_arn(ddb, tables[1])] and listed[0] != listed[1]
    first = streams.list_streams(TableName=tables[1], Limit=1)
    assert first["LastEvaluatedStreamArn"] == listed[0]
    rest = streams.list_streams(TableName=tables[1], ExclusiveStartStreamArn=listed[0])
    assert [s["StreamArn"] for s in rest["Streams"]] == [listed[1]] and "LastEvaluatedStreamArn" not in rest


def test_list_streams_errors(streams, new_table):
    # (botocore itself refuses Limit=0.)
    for kw in ({"Limit": 101}, {"ExclusiveStartStreamArn": "k" * 40}):
        with pytest.raises(ClientError) as e:
            streams.list_streams(**kw)
        assert error(e)[0] == "ValidationException", kw
    with pytest.raises(ClientError) as e:
        streams.list_streams(TableName="no-such-table-here")
    assert error(e)[0] == "ResourceNotFoundException"


# --- DescribeStream --------------------------------------------------------------------------

def test_describe_stream_shard_open_and_closed(ddb, streams, new_table):
    table = new_table(StreamSpecification={"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"},
                      range_key=("sk", "N"))
    arn = stream_arn(ddb, table)
    label = arn.rsplit("/", 1)[1]
    d = streams.describe_stream(StreamArn=arn)["StreamDescription"]
    assert d["StreamLabel"] == label and d["StreamStatus"] == "ENABLED"
    assert d["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"},
                              {"AttributeName": "sk", "KeyType": "RANGE"}]
    assert abs(d["CreationRequestDateTime"].timestamp() - time.time()) < 60
    assert "LastEvaluatedShardId" not in d
    [shard] = d["Shards"]
    assert re.fullmatch(r"shardId-\d{20}-[0-9a-f]{8}", shard["ShardId"]), shard["ShardId"]
    rng = shard["SequenceNumberRange"]
    assert rng["StartingSequenceNumber"].isdecimal() and "EndingSequenceNumber" not in rng
    # An empty stream's starting number is readable at once: nothing before it.
    it = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="AT_SEQUENCE_NUMBER",
                                    SequenceNumber=rng["StartingSequenceNumber"])["ShardIterator"]
    ddb.put_item(TableName=table, Item={"pk": S("a"), "sk": N(1)})
    ddb.put_item(TableName=table, Item={"pk": S("b"), "sk": N(2)})
    assert keys(drain(streams, it)[0]) == ["a", "b"]
    recs = drain(streams, iterator(streams, arn))[0]
    start = the_shard(streams, arn)["SequenceNumberRange"]["StartingSequenceNumber"]
    assert start == recs[0]["dynamodb"]["SequenceNumber"]
    # Shards after the last one: none (AWS answers an empty list, not an error).
    assert streams.describe_stream(StreamArn=arn, ExclusiveStartShardId=shard["ShardId"])["StreamDescription"]["Shards"] == []
    assert streams.describe_stream(StreamArn=arn, ExclusiveStartShardId="z" * 40)["StreamDescription"]["Shards"] == []
    # Disabled: the shard is closed at its last record.
    ddb.update_table(TableName=table, StreamSpecification={"StreamEnabled": False})
    d = streams.describe_stream(StreamArn=arn)["StreamDescription"]
    assert d["StreamStatus"] == "DISABLED"
    rng = d["Shards"][0]["SequenceNumberRange"]
    assert rng["EndingSequenceNumber"] == recs[-1]["dynamodb"]["SequenceNumber"]
    assert d["Shards"][0]["ShardId"] == shard["ShardId"]


def test_describe_stream_errors(ddb, streams, new_table):
    table = new_table(StreamSpecification=SPEC)
    arn = stream_arn(ddb, table)
    with pytest.raises(ClientError) as e:
        streams.describe_stream(StreamArn="sdfadfsdfnlfkajakfgjalksfgklasjklasdjfklasdfasdfgasf")
    assert error(e)[0] == "ValidationException"
    missing = arn.replace(table, table + "-gone")
    with pytest.raises(ClientError) as e:
        streams.describe_stream(StreamArn=missing)
    assert error(e) == ("ResourceNotFoundException", f"Requested resource not found: Stream: {missing} not found")
    # Another label on an existing table.
    other = arn.rsplit("/", 1)[0] + "/1999-01-01T00:00:00.000"
    with pytest.raises(ClientError) as e:
        streams.describe_stream(StreamArn=other)
    assert error(e)[0] == "ResourceNotFoundException"


# --- GetShardIterator ------------------------------------------------------------------------

def test_shard_iterator_errors(ddb, streams, new_table):
    table = new_table(StreamSpecification=SPEC)
    arn = stream_arn(ddb, table)
    shard = the_shard(streams, arn)
    sid, seq = shard["ShardId"], shard["SequenceNumberRange"]["StartingSequenceNumber"]

    def refused(code, **kw):
        args = {"StreamArn": arn, "ShardId": sid, "ShardIteratorType": "LATEST"} | kw
        with pytest.raises(ClientError) as e:
            streams.get_shard_iterator(**args)
        assert error(e)[0] == code, kw

    for kind in ("AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER"):
        refused("ValidationException", ShardIteratorType=kind)
    for kind in ("TRIM_HORIZON", "LATEST"):
        refused("ValidationException", ShardIteratorType=kind, SequenceNumber=seq)
    refused("ValidationException", ShardIteratorType="bulle")
    refused("ValidationException", ShardIteratorType="AT_SEQUENCE_NUMBER", SequenceNumber="x" * 25)
    refused("ValidationException", StreamArn="sdfadsfsdfsdgdfsgsfdabadfbabdadsfsdfsdfsdfsdfsdfsdfdfdssdffbdfdf")
    refused("ResourceNotFoundException", ShardId="shardId-00000000000000000000-00000000")
    refused("ResourceNotFoundException", StreamArn=arn.replace(table, table + "-gone"))
    # Each call answers a fresh iterator.
    a = streams.get_shard_iterator(StreamArn=arn, ShardId=sid, ShardIteratorType="LATEST")["ShardIterator"]
    time.sleep(0.01)
    b = streams.get_shard_iterator(StreamArn=arn, ShardId=sid, ShardIteratorType="LATEST")["ShardIterator"]
    assert a != b


def test_at_timestamp_reads_from_that_time(ddb, streams, new_table):
    table = new_table(StreamSpecification=SPEC)
    arn = stream_arn(ddb, table)
    ddb.put_item(TableName=table, Item={"pk": S("before")})
    time.sleep(1.1)
    mark = time.time()
    time.sleep(0.05)
    ddb.put_item(TableName=table, Item={"pk": S("after")})
    assert keys(drain(streams, iterator(streams, arn, "AT_TIMESTAMP", Timestamp=mark))[0]) == ["after"]
    assert keys(drain(streams, iterator(streams, arn, "AT_TIMESTAMP", Timestamp=mark - 3600))[0]) == ["before", "after"]


# --- GetRecords ------------------------------------------------------------------------------

def test_get_records_limits_and_iterators(ddb, streams, new_table):
    table = new_table(StreamSpecification={"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"})
    arn = stream_arn(ddb, table)
    for i in range(5):
        ddb.put_item(TableName=table, Item={"pk": S(f"r{i}")})
    it = iterator(streams, arn)
    with pytest.raises(ClientError) as e:
        streams.get_records(ShardIterator=it, Limit=1001)
    assert error(e)[0] == "ValidationException"
    got, nxt = [], it
    for _ in range(3):
        page = streams.get_records(ShardIterator=nxt, Limit=2)
        got += keys(page["Records"])
        assert page["NextShardIterator"] != nxt
        nxt = page["NextShardIterator"]
    assert got == ["r0", "r1", "r2", "r3", "r4"]
    # The same iterator can be read again: iterators are positions, not cursors.
    assert keys(streams.get_records(ShardIterator=it, Limit=1)["Records"]) == ["r0"]
    # An open shard always gives a next iterator, even on an empty page; it picks up new writes.
    page = streams.get_records(ShardIterator=nxt)
    assert page["Records"] == [] and page["NextShardIterator"]
    ddb.put_item(TableName=table, Item={"pk": S("r5")})
    assert keys(drain(streams, page["NextShardIterator"])[0]) == ["r5"]
    with pytest.raises(ClientError) as e:
        streams.get_records(ShardIterator="sdfsdfsgagaddafgagasgasgasdfasdfasdfasdfasdgasdasdgasdg")
    assert error(e)[0] == "ValidationException"


def test_a_closed_shard_ends_without_a_next_iterator(ddb, streams, new_table):
    # Alternator's test_streams_closed_read, which passes against DynamoDB: reading a closed
    # shard to its end answers no NextShardIterator.
    table = new_table(StreamSpecification={"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"})
    arn = stream_arn(ddb, table)
    latest = iterator(streams, arn, "LATEST")
    ddb.put_item(TableName=table, Item={"pk": S("only")})
    ddb.update_table(TableName=table, StreamSpecification={"StreamEnabled": False})
    page = streams.get_records(ShardIterator=latest)
    assert keys(page["Records"]) == ["only"]
    assert "NextShardIterator" not in page
    page = streams.get_records(ShardIterator=iterator(streams, arn, "TRIM_HORIZON"))
    assert keys(page["Records"]) == ["only"] and "NextShardIterator" not in page
    # LATEST on a closed shard: past its end.
    page = streams.get_records(ShardIterator=iterator(streams, arn, "LATEST"))
    assert page["Records"] == [] and "NextShardIterator" not in page


def test_records_of_one_key_in_commit_order_under_concurrent_writers(ddb, streams, new_table):
    # Developer Guide, "Change data capture for DynamoDB Streams": each stream record appears
    # exactly once, and the records of one item appear in the order of its modifications.
    table = new_table(StreamSpecification=SPEC)
    arn = stream_arn(ddb, table)
    ddb.put_item(TableName=table, Item={"pk": S("counter"), "n": N(0)})
    workers, per = 4, 8
    errors = []

    def bump():
        try:
            for _ in range(per):
                ddb.update_item(TableName=table, Key={"pk": S("counter")}, UpdateExpression="ADD n :one",
                                ExpressionAttributeValues={":one": N(1)})
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    def own(k):
        try:
            for i in range(per):
                ddb.put_item(TableName=table, Item={"pk": S(k), "n": N(i)})
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=bump) for _ in range(workers)]
    threads += [threading.Thread(target=own, args=(f"own{w}",)) for w in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    recs = drain(streams, iterator(streams, arn))[0]
    seqs = [int(r["dynamodb"]["SequenceNumber"]) for r in recs]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    chain = [r["dynamodb"] for r in recs if r["dynamodb"]["Keys"] == {"pk": S("counter")}]
    assert len(chain) == 1 + workers * per
    # Every record's old image is the previous record's new image: no reordering, no gap.
    for prev, cur in zip(chain, chain[1:]):
        assert cur["OldImage"] == prev["NewImage"]
    assert [int(c["NewImage"]["n"]["N"]) for c in chain] == list(range(workers * per + 1))
    for w in range(2):
        mine = [int(r["dynamodb"]["NewImage"]["n"]["N"]) for r in recs if r["dynamodb"]["Keys"] == {"pk": S(f"own{w}")}]
        assert mine == list(range(per))


# --- retention -------------------------------------------------------------------------------

RETENTION_S = 3


@pytest.fixture(scope="module")
def short_retention():
    if os.environ.get("BASALT_ENDPOINT"):
        pytest.skip("needs a Basalt of its own started with BASALT_DYNAMODB_STREAM_RETENTION_SECS")
    saved = dict(os.environ)
    os.environ["BASALT_DYNAMODB_STREAM_RETENTION_SECS"] = str(RETENTION_S)
    srv = BasaltServer(name="basalt-ddb-retention")
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()
        os.environ.clear()
        os.environ.update(saved)
        assert not srv.panics(), "\n".join(srv.panics())


def test_records_are_trimmed_after_the_retention_period(short_retention, shape_checker):
    mk = make_client_factory(shape_checker, short_retention.endpoint)
    ddb, streams = mk("dynamodb"), mk("dynamodbstreams")
    table = create_table(ddb, StreamSpecification={"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"})
    arn = stream_arn(ddb, table)
    ddb.put_item(TableName=table, Item={"pk": S("old")})
    [old] = drain(streams, iterator(streams, arn))[0]
    old_seq = old["dynamodb"]["SequenceNumber"]
    at_old = iterator(streams, arn, "AT_SEQUENCE_NUMBER", SequenceNumber=old_seq)
    time.sleep(RETENTION_S + 1.5)
    ddb.put_item(TableName=table, Item={"pk": S("new")})
    # Past the trim horizon: an iterator there fails, a new one cannot be had.
    with pytest.raises(ClientError) as e:
        streams.get_records(ShardIterator=at_old)
    assert error(e)[0] == "TrimmedDataAccessException"
    with pytest.raises(ClientError) as e:
        iterator(streams, arn, "AFTER_SEQUENCE_NUMBER", SequenceNumber=old_seq)
    assert error(e)[0] == "TrimmedDataAccessException"
    # TRIM_HORIZON starts at the oldest record kept.
    assert keys(drain(streams, iterator(streams, arn))[0]) == ["new"]
    start = the_shard(streams, arn)["SequenceNumberRange"]["StartingSequenceNumber"]
    assert int(start) > int(old_seq)
    # A disabled stream goes from the table's list once its records are gone (the table's
    # current stream stays).
    ddb.update_table(TableName=table, StreamSpecification={"StreamEnabled": False})
    ddb.update_table(TableName=table, StreamSpecification={"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"})
    current = stream_arn(ddb, table)
    assert current != arn
    assert len(streams.list_streams(TableName=table)["Streams"]) == 2
    deadline = time.monotonic() + RETENTION_S + 10
    while len(streams.list_streams(TableName=table)["Streams"]) != 1:
        assert time.monotonic() < deadline, "the expired disabled stream is still listed"
        time.sleep(0.25)
    assert [s["StreamArn"] for s in streams.list_streams(TableName=table)["Streams"]] == [current]
    with pytest.raises(ClientError) as e:
        streams.describe_stream(StreamArn=arn)
    assert error(e)[0] == "ResourceNotFoundException"
