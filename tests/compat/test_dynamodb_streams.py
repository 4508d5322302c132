"""DynamoDB Streams through boto3's `dynamodbstreams` client, and TTL expiry (which writes
its deletions to the stream as the DynamoDB service).

Developer Guide pages: Streams (records, view types, iterators, no record for a write that
changes nothing), time-to-live / ttl-expired-items (expiry, five-year cut-off, stream records
with the service principal).
"""
from __future__ import annotations

import os
import time

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT, REGION, BasaltServer, make_client_factory
from ddb_helpers import (  # noqa: F401 - fixtures
    N, S, basalt_only, create_table, ddb, ddb_unchecked, error, new_table, on_basalt, streams,
)


def stream_arn(ddb, table):
    return ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]


def read_all(streams, arn, iterator_type="TRIM_HORIZON", **kw):
    """Every record of every shard from `iterator_type` on, shard by shard in the order shards
    are described (children after parents)."""
    out = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        out += read_shard(streams, arn, shard["ShardId"], iterator_type, **kw)
    return out


def read_shard(streams, arn, shard, iterator_type="TRIM_HORIZON", **kw):
    it = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType=iterator_type,
                                    **kw)["ShardIterator"]
    out = []
    while it:
        page = streams.get_records(ShardIterator=it)
        out += page["Records"]
        if not page["Records"]:
            break
        it = page.get("NextShardIterator")
    return out


def write_history(ddb, table):
    ddb.put_item(TableName=table, Item={"pk": S("k1"), "v": N(1)})
    ddb.update_item(TableName=table, Key={"pk": S("k1")}, UpdateExpression="SET v = :v",
                    ExpressionAttributeValues={":v": N(2)})
    ddb.delete_item(TableName=table, Key={"pk": S("k1")})
    ddb.put_item(TableName=table, Item={"pk": S("k2"), "v": N(9)})


def test_list_and_describe_streams(ddb, streams, new_table):
    table = new_table(StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
    arn = stream_arn(ddb, table)
    listed = streams.list_streams(TableName=table)["Streams"]
    assert [(s["StreamArn"], s["TableName"]) for s in listed] == [(arn, table)]
    assert listed[0]["StreamLabel"] == arn.rsplit("/", 1)[1]
    d = streams.describe_stream(StreamArn=arn)["StreamDescription"]
    assert d["StreamArn"] == arn and d["TableName"] == table
    assert d["StreamStatus"] == "ENABLED" and d["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert d["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert d["Shards"] and all(s["ShardId"] and s["SequenceNumberRange"]["StartingSequenceNumber"] for s in d["Shards"])
    assert arn.startswith(f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table}/stream/")
    # Not-yet-existing streams and tables without a stream.
    plain = new_table()
    assert streams.list_streams(TableName=plain)["Streams"] == []
    with pytest.raises(ClientError) as e:
        streams.describe_stream(StreamArn=arn.replace(table, table + "-nope"))
    assert error(e)[0] == "ResourceNotFoundException"


def test_records_in_order_with_both_images(ddb, streams, new_table, on_basalt):
    table = new_table(StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
    write_history(ddb, table)
    recs = read_all(streams, stream_arn(ddb, table))
    k1 = [r for r in recs if r["dynamodb"]["Keys"] == {"pk": S("k1")}]
    assert [r["eventName"] for r in k1] == ["INSERT", "MODIFY", "REMOVE"]
    assert [r["eventName"] for r in recs if r["dynamodb"]["Keys"] == {"pk": S("k2")}] == ["INSERT"]
    ins, mod, rem = (r["dynamodb"] for r in k1)
    assert ins["NewImage"] == {"pk": S("k1"), "v": N(1)} and "OldImage" not in ins
    assert mod["OldImage"] == {"pk": S("k1"), "v": N(1)} and mod["NewImage"] == {"pk": S("k1"), "v": N(2)}
    assert rem["OldImage"] == {"pk": S("k1"), "v": N(2)} and "NewImage" not in rem
    seqs = [int(r["dynamodb"]["SequenceNumber"]) for r in k1]
    assert seqs == sorted(seqs) and len(set(seqs)) == 3
    for r in recs:
        assert r["eventSource"] == "aws:dynamodb" and r["awsRegion"] == REGION
        assert r["eventID"]
        if on_basalt:  # moto says 1.0; the GetRecords reference's records carry 1.1
            assert r["eventVersion"] == "1.1"
        assert r["dynamodb"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
        assert r["dynamodb"]["SizeBytes"] > 0
        assert abs(r["dynamodb"]["ApproximateCreationDateTime"].timestamp() - time.time()) < 300


@pytest.mark.parametrize("view,images", [
    ("KEYS_ONLY", {"INSERT": set(), "MODIFY": set(), "REMOVE": set()}),
    ("NEW_IMAGE", {"INSERT": {"NewImage"}, "MODIFY": {"NewImage"}, "REMOVE": set()}),
    ("OLD_IMAGE", {"INSERT": set(), "MODIFY": {"OldImage"}, "REMOVE": {"OldImage"}}),
    ("NEW_AND_OLD_IMAGES", {"INSERT": {"NewImage"}, "MODIFY": {"NewImage", "OldImage"}, "REMOVE": {"OldImage"}}),
])
def test_each_stream_view_type(ddb, streams, new_table, view, images):
    table = new_table(StreamSpecification={"StreamEnabled": True, "StreamViewType": view})
    write_history(ddb, table)
    recs = [r for r in read_all(streams, stream_arn(ddb, table)) if r["dynamodb"]["Keys"] == {"pk": S("k1")}]
    assert [r["eventName"] for r in recs] == ["INSERT", "MODIFY", "REMOVE"]
    for r in recs:
        present = {k for k in ("NewImage", "OldImage") if k in r["dynamodb"]}
        assert present == images[r["eventName"]], (view, r["eventName"], present)
        assert r["dynamodb"]["StreamViewType"] == view


def test_shard_iterator_types(ddb, streams, new_table, on_basalt):
    table = new_table(StreamSpecification={"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"})
    arn = stream_arn(ddb, table)
    for i in range(4):
        ddb.put_item(TableName=table, Item={"pk": S(f"i{i}")})
    # A fresh table's stream has one open shard.
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][-1]["ShardId"]
    recs = read_shard(streams, arn, shard)
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in recs] == ["i0", "i1", "i2", "i3"]
    second = recs[1]["dynamodb"]["SequenceNumber"]
    at = read_shard(streams, arn, shard, "AT_SEQUENCE_NUMBER", SequenceNumber=second)
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in at] == ["i1", "i2", "i3"]
    after = read_shard(streams, arn, shard, "AFTER_SEQUENCE_NUMBER", SequenceNumber=second)
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in after] == ["i2", "i3"]
    latest = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="LATEST")["ShardIterator"]
    page = streams.get_records(ShardIterator=latest)
    assert page["Records"] == []
    ddb.put_item(TableName=table, Item={"pk": S("late")})
    page = streams.get_records(ShardIterator=page["NextShardIterator"])
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in page["Records"]] == ["late"]
    # Limit caps a page; the next iterator carries on from there.
    it = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    page = streams.get_records(ShardIterator=it, Limit=2)
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in page["Records"]] == ["i0", "i1"]
    page = streams.get_records(ShardIterator=page["NextShardIterator"], Limit=2)
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in page["Records"]] == ["i2", "i3"]
    if on_basalt:  # moto fails with a 500
        with pytest.raises(ClientError) as e:
            streams.get_records(ShardIterator="not-an-iterator-" + "x" * 40)
        assert error(e)[0] in ("ValidationException", "ExpiredIteratorException")


@pytest.mark.usefixtures("basalt_only")  # moto writes a record for every write
def test_no_record_for_a_write_that_changes_nothing(ddb, streams, new_table):
    # Streams page: a PutItem or UpdateItem that does not change the item writes no record.
    table = new_table(StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
    ddb.put_item(TableName=table, Item={"pk": S("same"), "v": N(1)})
    ddb.put_item(TableName=table, Item={"pk": S("same"), "v": N("1.0")})
    ddb.update_item(TableName=table, Key={"pk": S("same")}, UpdateExpression="SET v = :v",
                    ExpressionAttributeValues={":v": N(1)})
    ddb.delete_item(TableName=table, Key={"pk": S("never-there")})
    assert [r["eventName"] for r in read_all(streams, stream_arn(ddb, table))] == ["INSERT"]


def test_transaction_writes_reach_the_stream(ddb, streams, new_table):
    table = new_table(StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"})
    ddb.transact_write_items(TransactItems=[{"Put": {"TableName": table, "Item": {"pk": S(f"t{i}")}}}
                                            for i in range(3)])
    recs = read_all(streams, stream_arn(ddb, table))
    assert sorted(r["dynamodb"]["Keys"]["pk"]["S"] for r in recs) == ["t0", "t1", "t2"]


@pytest.mark.usefixtures("basalt_only")  # moto's DescribeStream fails with a 500 once disabled
def test_disabling_the_stream(ddb, streams, new_table):
    table = new_table(StreamSpecification={"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"})
    arn = stream_arn(ddb, table)
    ddb.put_item(TableName=table, Item={"pk": S("before")})
    ddb.update_table(TableName=table, StreamSpecification={"StreamEnabled": False})
    deadline = time.monotonic() + 10
    while streams.describe_stream(StreamArn=arn)["StreamDescription"]["StreamStatus"] != "DISABLED":
        assert time.monotonic() < deadline, "stream not DISABLED within 10 s"
        time.sleep(0.1)
    ddb.put_item(TableName=table, Item={"pk": S("after")})
    # The old stream stays readable (24 hours) and gets nothing new.
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in read_all(streams, arn)] == ["before"]


# --- TTL expiry ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ttl_server():
    if os.environ.get("BASALT_ENDPOINT"):
        pytest.skip("needs a Basalt of its own started with BASALT_DYNAMODB_TTL_SWEEP_SECS")
    saved = dict(os.environ)
    os.environ["BASALT_DYNAMODB_TTL_SWEEP_SECS"] = "1"
    srv = BasaltServer(name="basalt-ddb-ttl")
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()
        os.environ.clear()
        os.environ.update(saved)
        assert not srv.panics(), "\n".join(srv.panics())


def test_expired_items_disappear_as_the_service(ttl_server, shape_checker):
    mk = make_client_factory(shape_checker, ttl_server.endpoint)
    ddb, streams = mk("dynamodb"), mk("dynamodbstreams")
    table = create_table(ddb, StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
                         gsis=[{"IndexName": "by-g", "hash": ("g", "S")}])
    ddb.update_time_to_live(TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "exp"})
    now = int(time.time())
    ddb.put_item(TableName=table, Item={"pk": S("old"), "exp": N(now - 60), "g": S("x")})
    ddb.put_item(TableName=table, Item={"pk": S("future"), "exp": N(now + 3600), "g": S("x")})
    ddb.put_item(TableName=table, Item={"pk": S("ancient"), "exp": N(now - 6 * 365 * 86400)})  # > 5 years: kept
    ddb.put_item(TableName=table, Item={"pk": S("text"), "exp": S(str(now - 60))})                # not a number: kept
    ddb.put_item(TableName=table, Item={"pk": S("none")})
    deadline = time.monotonic() + 15
    while "Item" in ddb.get_item(TableName=table, Key={"pk": S("old")}, ConsistentRead=True):
        assert time.monotonic() < deadline, "expired item still there after 15 s"
        time.sleep(0.25)
    left = sorted(i["pk"]["S"] for i in ddb.scan(TableName=table, ConsistentRead=True)["Items"])
    assert left == ["ancient", "future", "none", "text"]
    # The index lost it in the same step.
    g = ddb.query(TableName=table, IndexName="by-g", KeyConditionExpression="g = :g",
                  ExpressionAttributeValues={":g": S("x")})
    assert [i["pk"]["S"] for i in g["Items"]] == ["future"]
    removes = [r for r in read_all(streams, stream_arn(ddb, table)) if r["eventName"] == "REMOVE"]
    assert len(removes) == 1
    assert removes[0]["dynamodb"]["Keys"] == {"pk": S("old")}
    assert removes[0]["userIdentity"] == {"PrincipalId": "dynamodb.amazonaws.com", "Type": "Service"}
    assert removes[0]["dynamodb"]["OldImage"]["exp"] == N(now - 60)
