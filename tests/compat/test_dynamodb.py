"""Amazon DynamoDB control plane through boto3 (JSON 1.0 protocol): tables and their indexes,
waiters, listing, UpdateTable with a backfilled GSI, tags, TTL settings, limits, deletion
protection, and the x-amz-crc32 header.

Items, queries, transactions, PartiQL and streams live in test_dynamodb_*.py; the shared
fixtures in ddb_helpers.py.
"""
from __future__ import annotations

import json
import re
import time
import urllib.request
import uuid
import zlib

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT, REGION, unique
from ddb_helpers import (  # noqa: F401 - fixtures
    ON_DEMAND, S, basalt_only, create_table, ddb, ddb_unchecked, error, new_table, on_basalt, wait_active,
)


def test_create_hash_only_table_and_describe(ddb, new_table, on_basalt):
    name = new_table()
    t = ddb.describe_table(TableName=name)["Table"]
    assert t["TableName"] == name
    assert t["TableStatus"] == "ACTIVE"
    assert t["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert t["AttributeDefinitions"] == [{"AttributeName": "pk", "AttributeType": "S"}]
    assert t["TableArn"] == f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"
    if on_basalt:  # moto leaves TableId out (API_TableDescription: TableId, a UUID)
        uuid.UUID(t["TableId"])
    assert t["ItemCount"] == 0 and t["TableSizeBytes"] == 0
    assert t["BillingModeSummary"]["BillingMode"] == ON_DEMAND
    # On-demand tables report zero provisioned throughput.
    assert t["ProvisionedThroughput"]["ReadCapacityUnits"] == 0
    assert t["ProvisionedThroughput"]["WriteCapacityUnits"] == 0
    assert abs(t["CreationDateTime"].timestamp() - time.time()) < 300
    assert t.get("DeletionProtectionEnabled", False) is False
    assert not t.get("GlobalSecondaryIndexes") and not t.get("LocalSecondaryIndexes")


def test_create_provisioned_hash_range_table(ddb, new_table):
    name = new_table(range_key=("sk", "N"), billing="PROVISIONED",
                     ProvisionedThroughput={"ReadCapacityUnits": 7, "WriteCapacityUnits": 3})
    t = ddb.describe_table(TableName=name)["Table"]
    assert t["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"},
                              {"AttributeName": "sk", "KeyType": "RANGE"}]
    assert sorted((a["AttributeName"], a["AttributeType"]) for a in t["AttributeDefinitions"]) == [
        ("pk", "S"), ("sk", "N")]
    assert t["ProvisionedThroughput"]["ReadCapacityUnits"] == 7
    assert t["ProvisionedThroughput"]["WriteCapacityUnits"] == 3
    assert t.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED") == "PROVISIONED"


def test_indexes_with_every_projection_are_described(ddb, new_table, on_basalt):
    name = new_table(
        range_key=("sk", "S"),
        gsis=[{"IndexName": "by-g", "hash": ("g", "S"), "range": ("gs", "N"),
               "Projection": {"ProjectionType": "KEYS_ONLY"}},
              {"IndexName": "by-h", "hash": ("h", "S"),
               "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["colour", "size"]}}],
        lsis=[{"IndexName": "by-l", "range": ("l", "N"), "Projection": {"ProjectionType": "ALL"}}])
    t = ddb.describe_table(TableName=name)["Table"]
    gsis = {g["IndexName"]: g for g in t["GlobalSecondaryIndexes"]}
    assert set(gsis) == {"by-g", "by-h"}
    g = gsis["by-g"]
    assert g["KeySchema"] == [{"AttributeName": "g", "KeyType": "HASH"}, {"AttributeName": "gs", "KeyType": "RANGE"}]
    assert g["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    assert g["IndexStatus"] == "ACTIVE"
    if on_basalt:  # moto leaves these out (API_GlobalSecondaryIndexDescription)
        assert g["IndexArn"] == f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}/index/by-g"
        assert g["ItemCount"] == 0 and g["IndexSizeBytes"] == 0
    h = gsis["by-h"]
    assert h["Projection"]["ProjectionType"] == "INCLUDE"
    assert sorted(h["Projection"]["NonKeyAttributes"]) == ["colour", "size"]
    (lsi,) = t["LocalSecondaryIndexes"]
    assert lsi["IndexName"] == "by-l"
    assert lsi["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "l", "KeyType": "RANGE"}]
    assert lsi["Projection"] == {"ProjectionType": "ALL"}
    if on_basalt:
        assert lsi["IndexArn"] == f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}/index/by-l"
    # Every key attribute of the table and its indexes is defined, nothing else.
    assert {a["AttributeName"] for a in t["AttributeDefinitions"]} == {"pk", "sk", "g", "gs", "h", "l"}


@pytest.mark.usefixtures("basalt_only")  # moto has no index ItemCount (API_GlobalSecondaryIndexDescription)
def test_counts_follow_items(ddb, new_table):
    name = new_table(gsis=[{"IndexName": "sparse", "hash": ("g", "S")}])
    ddb.put_item(TableName=name, Item={"pk": S("a"), "g": S("x")})
    ddb.put_item(TableName=name, Item={"pk": S("b")})
    t = ddb.describe_table(TableName=name)["Table"]
    # DynamoDB refreshes these about every six hours; an up-to-date value is allowed, a wrong
    # one is not: 0 (not yet refreshed) or the true count.
    assert t["ItemCount"] in (0, 2)
    assert t["GlobalSecondaryIndexes"][0]["ItemCount"] in (0, 1)


@pytest.mark.usefixtures("basalt_only")  # moto accepts it; an LSI shares the table's partition key
def test_lsi_needs_a_range_key(ddb):
    # Message per nubo-db/dynamodb-conformance tests/tier3/error-messages/createTable.test.ts.
    with pytest.raises(ClientError) as e:
        ddb.create_table(TableName=unique("ddb"), BillingMode=ON_DEMAND,
                         KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                               {"AttributeName": "l", "AttributeType": "S"}],
                         LocalSecondaryIndexes=[{"IndexName": "by-l", "Projection": {"ProjectionType": "ALL"},
                                                 "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                                                               {"AttributeName": "l", "KeyType": "RANGE"}]}])
    assert error(e) == ("ValidationException", "One or more parameter values were invalid: Table KeySchema "
                        "does not have a range key, which is required when specifying a LocalSecondaryIndex")


def test_key_attribute_without_definition_is_refused(ddb):
    with pytest.raises(ClientError) as e:
        ddb.create_table(TableName=unique("ddb"), BillingMode=ON_DEMAND,
                         KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "other", "AttributeType": "S"}])
    assert error(e)[0] == "ValidationException"


def test_waiters_exist_and_not_exist(ddb):
    name = unique("ddb")
    ddb.create_table(TableName=name, BillingMode=ON_DEMAND, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    start = time.monotonic()
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    assert ddb.describe_table(TableName=name)["Table"]["TableStatus"] == "ACTIVE"
    ddb.delete_table(TableName=name)
    ddb.get_waiter("table_not_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    assert time.monotonic() - start < 30
    with pytest.raises(ddb.exceptions.ResourceNotFoundException):
        ddb.describe_table(TableName=name)


def test_duplicate_and_missing_tables(ddb, new_table):
    name = new_table()
    with pytest.raises(ClientError) as e:
        create_table(ddb, name=name, wait=False)
    assert error(e) == ("ResourceInUseException", f"Table already exists: {name}")
    missing = unique("nope")
    with pytest.raises(ClientError) as e:
        ddb.describe_table(TableName=missing)
    assert error(e) == ("ResourceNotFoundException", f"Requested resource not found: Table: {missing} not found")
    # Data-plane calls on a missing table say less (conformance: tier3/error-messages/getItem.test.ts).
    with pytest.raises(ClientError) as e:
        ddb.get_item(TableName=missing, Key={"pk": S("x")})
    assert error(e) == ("ResourceNotFoundException", "Requested resource not found")
    with pytest.raises(ClientError) as e:
        ddb.delete_table(TableName=missing)
    assert error(e)[0] == "ResourceNotFoundException"


def test_delete_table_returns_its_description(ddb):
    name = create_table(ddb)
    out = ddb.delete_table(TableName=name)["TableDescription"]
    assert out["TableName"] == name
    assert out["TableStatus"] in ("DELETING", "ACTIVE")
    ddb.get_waiter("table_not_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    assert name not in ddb.list_tables(ExclusiveStartTableName=name[:-1], Limit=100)["TableNames"]


def test_list_tables_pages_in_name_order(ddb, new_table, on_basalt):
    prefix = unique("lst")
    # No valid name character sorts below '-', so nothing lies between `prefix` and `prefix-0`.
    new_table(name=prefix)
    names = [new_table(name=f"{prefix}-{i}") for i in range(5)]
    # ExclusiveStartTableName starts right after the given name, in name order.
    first = ddb.list_tables(ExclusiveStartTableName=prefix, Limit=2)
    assert first["TableNames"] == names[:2]
    assert first["LastEvaluatedTableName"] == names[1]
    nxt = ddb.list_tables(ExclusiveStartTableName=first["LastEvaluatedTableName"], Limit=2)
    assert nxt["TableNames"] == names[2:4]
    # The paginator walks every table exactly once, sorted.
    seen = [n for p in ddb.get_paginator("list_tables").paginate(PaginationConfig={"PageSize": 3})
            for n in p["TableNames"]]
    assert len(seen) == len(set(seen))
    if on_basalt:  # moto lists in creation order; DynamoDB by name
        assert seen == sorted(seen)
    assert [n for n in seen if n.startswith(prefix + "-")] == names
    if on_basalt:  # moto accepts it; the API reference caps Limit at 100
        with pytest.raises(ClientError) as e:
            ddb.list_tables(Limit=101)
        assert error(e) == ("ValidationException", "1 validation error detected: Value '101' at 'limit' "
                            "failed to satisfy constraint: Member must have value less than or equal to 100")


def test_update_table_adds_a_backfilled_gsi_then_deletes_it(ddb, new_table, on_basalt):
    name = new_table(range_key=("sk", "N"))
    for i in range(30):
        item = {"pk": S(f"p{i % 3}"), "sk": {"N": str(i)}, "payload": S(f"v{i}")}
        if i % 2 == 0:
            item["team"] = S("red" if i % 4 == 0 else "blue")
        ddb.put_item(TableName=name, Item=item)
    out = ddb.update_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "team", "AttributeType": "S"},
                              {"AttributeName": "sk", "AttributeType": "N"}],
        GlobalSecondaryIndexUpdates=[{"Create": {
            "IndexName": "by-team", "KeySchema": [{"AttributeName": "team", "KeyType": "HASH"},
                                                  {"AttributeName": "sk", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["payload"]}}}])
    gsi = out["TableDescription"]["GlobalSecondaryIndexes"][0]
    assert gsi["IndexName"] == "by-team" and gsi["IndexStatus"] in ("CREATING", "ACTIVE")
    wait_active(ddb, name)
    got = ddb.query(TableName=name, IndexName="by-team", KeyConditionExpression="team = :t",
                    ExpressionAttributeValues={":t": S("red")})
    assert [int(i["sk"]["N"]) for i in got["Items"]] == [0, 4, 8, 12, 16, 20, 24, 28]
    assert all(set(i) == {"pk", "sk", "team", "payload"} for i in got["Items"])
    # Writes after the backfill are indexed too.
    ddb.put_item(TableName=name, Item={"pk": S("late"), "sk": {"N": "99"}, "team": S("red")})
    got = ddb.query(TableName=name, IndexName="by-team", KeyConditionExpression="team = :t AND sk > :s",
                    ExpressionAttributeValues={":t": S("red"), ":s": {"N": "25"}})
    assert [int(i["sk"]["N"]) for i in got["Items"]] == [28, 99]
    ddb.update_table(TableName=name, GlobalSecondaryIndexUpdates=[{"Delete": {"IndexName": "by-team"}}])
    deadline = time.monotonic() + 30
    while ddb.describe_table(TableName=name)["Table"].get("GlobalSecondaryIndexes") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not ddb.describe_table(TableName=name)["Table"].get("GlobalSecondaryIndexes")
    with pytest.raises(ClientError) as e:
        ddb.query(TableName=name, IndexName="by-team", KeyConditionExpression="team = :t",
                  ExpressionAttributeValues={":t": S("red")})
    if on_basalt:  # moto answers ResourceNotFoundException; DynamoDB a ValidationException
        assert error(e) == ("ValidationException", "The table does not have the specified index: by-team")


def test_update_table_billing_mode(ddb, new_table):
    name = new_table()
    ddb.update_table(TableName=name, BillingMode="PROVISIONED",
                     ProvisionedThroughput={"ReadCapacityUnits": 4, "WriteCapacityUnits": 2})
    t = wait_active(ddb, name)
    assert t["ProvisionedThroughput"]["ReadCapacityUnits"] == 4
    assert t["ProvisionedThroughput"]["WriteCapacityUnits"] == 2
    assert t.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED") == "PROVISIONED"


def test_tags(ddb, new_table):
    name = new_table(Tags=[{"Key": "team", "Value": "ml"}])
    arn = ddb.describe_table(TableName=name)["Table"]["TableArn"]
    assert ddb.list_tags_of_resource(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "ml"}]
    ddb.tag_resource(ResourceArn=arn, Tags=[{"Key": "env", "Value": "dev"}, {"Key": "team", "Value": "ai"}])
    tags = {t["Key"]: t["Value"] for t in ddb.list_tags_of_resource(ResourceArn=arn)["Tags"]}
    assert tags == {"team": "ai", "env": "dev"}
    ddb.untag_resource(ResourceArn=arn, TagKeys=["team"])
    assert ddb.list_tags_of_resource(ResourceArn=arn)["Tags"] == [{"Key": "env", "Value": "dev"}]


def test_time_to_live_settings(ddb, new_table, on_basalt):
    name = new_table()
    assert ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]["TimeToLiveStatus"] == "DISABLED"
    out = ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires"})
    assert out["TimeToLiveSpecification"] == {"Enabled": True, "AttributeName": "expires"}
    d = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    assert d["TimeToLiveStatus"] in ("ENABLED", "ENABLING") and d["AttributeName"] == "expires"
    with pytest.raises(ClientError) as e:
        ddb.describe_time_to_live(TableName=unique("nope"))
    if on_basalt:  # moto answers "ResourceNotFound", not a code in DynamoDB's model
        assert error(e)[0] == "ResourceNotFoundException"


@pytest.mark.usefixtures("basalt_only")  # moto answers 20000 for each
def test_describe_limits(ddb):
    # Default quotas, ServiceQuotas.html "Service, account, and table quotas in Amazon DynamoDB":
    # 40,000 read and write units per table, 80,000 per account.
    out = ddb.describe_limits()
    assert out["AccountMaxReadCapacityUnits"] == 80000
    assert out["AccountMaxWriteCapacityUnits"] == 80000
    assert out["TableMaxReadCapacityUnits"] == 40000
    assert out["TableMaxWriteCapacityUnits"] == 40000


def test_deletion_protection_blocks_delete(ddb, new_table, on_basalt):
    name = new_table(DeletionProtectionEnabled=True)
    assert ddb.describe_table(TableName=name)["Table"]["DeletionProtectionEnabled"] is True
    with pytest.raises(ClientError) as e:
        ddb.delete_table(TableName=name)
    assert error(e)[0] == "ValidationException"
    if on_basalt:  # DynamoDB's wording (moto words it its own way), per nubo-db/dynoxide#46
        assert error(e)[1] == ("Resource cannot be deleted as it is currently protected against deletion. "
                               "Disable deletion protection first.")
    assert ddb.describe_table(TableName=name)["Table"]["TableStatus"] == "ACTIVE"
    ddb.update_table(TableName=name, DeletionProtectionEnabled=False)
    wait_active(ddb, name)
    ddb.delete_table(TableName=name)
    ddb.get_waiter("table_not_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})


def test_stream_specification_is_described(ddb, new_table, on_basalt):
    name = new_table(StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
    t = ddb.describe_table(TableName=name)["Table"]
    assert t["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    label = t["LatestStreamLabel"]
    assert t["LatestStreamArn"] == f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}/stream/{label}"
    # The label is the stream's creation time, ISO 8601 to the millisecond (moto: microseconds).
    if on_basalt:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}", label), label


def _raw_call(endpoint, target, payload):
    req = urllib.request.Request(endpoint, data=json.dumps(payload).encode(), method="POST", headers={
        "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": f"DynamoDB_20120810.{target}",
        "X-Amz-Date": "20260101T000000Z",
        "Authorization": "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/dynamodb/aws4_request, "
                         "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def test_x_amz_crc32_matches_body(endpoint, ddb, new_table):
    name = new_table()
    ddb.put_item(TableName=name, Item={"pk": S("k"), "blob": S("é" * 300)})
    for target, payload, status in (
            ("GetItem", {"TableName": name, "Key": {"pk": {"S": "k"}}}, 200),
            ("ListTables", {"Limit": 1}, 200),
            ("DescribeTable", {"TableName": unique("nope")}, 400)):
        got, headers, body = _raw_call(endpoint, target, payload)
        assert got == status, body
        crc = headers.get("x-amz-crc32")
        assert crc is not None, f"{target}: no x-amz-crc32"
        assert int(crc) == zlib.crc32(body) & 0xFFFFFFFF, target
        if status == 400:
            # DynamoDB names the error's shape with its namespace, as botocore's vectors do.
            assert json.loads(body)["__type"] == "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException"
