"""Shared pieces of the DynamoDB suites (test_dynamodb*.py): clients, a table factory that
cleans up after itself, and the marker for behaviour moto's server gets wrong.

Exact error messages asserted in these suites come from the DynamoDB Developer Guide where it
quotes them, otherwise from nubo-db/dynamodb-conformance (a suite whose expectations are
recorded against real DynamoDB; its file is named next to each such assertion).

`assert_error(e, code, message)` judges the code always and the message only against Basalt.
`basalt_only`: a few behaviours are modelled differently by moto's server (the development
peer, reached through BASALT_ENDPOINT). A test that needs them requests this fixture; it is
skipped when the endpoint is not Basalt, and each use carries a comment naming the AWS page
that defines the behaviour.
"""
from __future__ import annotations

import functools
import os
import time
import urllib.request

import pytest
from botocore.exceptions import ClientError

from conftest import unique

ON_DEMAND = "PAY_PER_REQUEST"


def error(e) -> tuple[str, str]:
    """(code, message) of a `pytest.raises(ClientError)` result or a ClientError."""
    exc = e.value if hasattr(e, "value") else e
    err = exc.response["Error"]
    return err["Code"], err.get("Message", "")


def assert_error(e, code, message=None):
    """The error's code, and its message when the server is Basalt: moto's server words many
    messages its own way, so against it only the codes are judged."""
    got_code, got_message = error(e)
    assert got_code == code, (got_code, got_message)
    if message is not None and endpoint_is_basalt():
        assert got_message == message


@functools.cache
def endpoint_is_basalt() -> bool:
    ext = os.environ.get("BASALT_ENDPOINT")
    return is_basalt(ext) if ext else True


def is_basalt(endpoint: str) -> bool:
    try:
        with urllib.request.urlopen(endpoint.rstrip("/") + "/_basalt/health", timeout=2) as r:
            return r.status == 200
    except Exception:
        return False


@pytest.fixture(scope="session")
def on_basalt(endpoint):
    return is_basalt(endpoint)


@pytest.fixture
def basalt_only(on_basalt):
    if not on_basalt:
        pytest.skip("moto's server models this differently from AWS; runs against Basalt only")


@pytest.fixture(scope="session")
def ddb(make_client):
    return make_client("dynamodb")


@pytest.fixture(scope="session")
def ddb_unchecked(make_client):
    """For cleanup and polling: calls whose answers the test does not judge."""
    return make_client("dynamodb", check=False)


@pytest.fixture(scope="session")
def streams(make_client):
    return make_client("dynamodbstreams")


def key_schema(hash_key, range_key=None):
    ks = [{"AttributeName": hash_key[0], "KeyType": "HASH"}]
    if range_key:
        ks.append({"AttributeName": range_key[0], "KeyType": "RANGE"})
    return ks


def wait_active(client, name, timeout=30.0):
    """Polls DescribeTable until the table and all its GSIs are ACTIVE (boto3's waiter sleeps
    20 s between polls, which a suite cannot afford)."""
    deadline = time.monotonic() + timeout
    while True:
        t = client.describe_table(TableName=name)["Table"]
        gsis = t.get("GlobalSecondaryIndexes", [])
        if t["TableStatus"] == "ACTIVE" and all(g["IndexStatus"] == "ACTIVE" for g in gsis):
            return t
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} not ACTIVE within {timeout}s: {t['TableStatus']}")
        time.sleep(0.05)


def create_table(client, name=None, hash_key=("pk", "S"), range_key=None, gsis=(), lsis=(),
                 billing=ON_DEMAND, extra_attrs=(), wait=True, **kw):
    """Creates a table; `gsis`/`lsis` are dicts with IndexName, hash/range tuples and
    Projection. Returns the name."""
    name = name or unique("ddb")
    attrs = {hash_key[0]: hash_key[1]}
    if range_key:
        attrs[range_key[0]] = range_key[1]
    for a, t in extra_attrs:
        attrs[a] = t
    req = dict(TableName=name, KeySchema=key_schema(hash_key, range_key), BillingMode=billing, **kw)
    if billing == "PROVISIONED":
        req.setdefault("ProvisionedThroughput", {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5})
    if gsis:
        req["GlobalSecondaryIndexes"] = []
        for g in gsis:
            attrs[g["hash"][0]] = g["hash"][1]
            if g.get("range"):
                attrs[g["range"][0]] = g["range"][1]
            spec = {"IndexName": g["IndexName"], "KeySchema": key_schema(g["hash"], g.get("range")),
                    "Projection": g.get("Projection", {"ProjectionType": "ALL"})}
            if billing == "PROVISIONED":
                spec["ProvisionedThroughput"] = {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
            req["GlobalSecondaryIndexes"].append(spec)
    if lsis:
        req["LocalSecondaryIndexes"] = []
        for li in lsis:
            attrs[li["range"][0]] = li["range"][1]
            req["LocalSecondaryIndexes"].append({
                "IndexName": li["IndexName"], "KeySchema": key_schema(hash_key, li["range"]),
                "Projection": li.get("Projection", {"ProjectionType": "ALL"})})
    req["AttributeDefinitions"] = [{"AttributeName": a, "AttributeType": t} for a, t in attrs.items()]
    client.create_table(**req)
    if wait:
        wait_active(client, name)
    return name


def drop_table(client, name):
    try:
        client.update_table(TableName=name, DeletionProtectionEnabled=False)
    except ClientError:
        pass
    try:
        client.delete_table(TableName=name)
    except ClientError:
        pass


@pytest.fixture
def new_table(ddb, ddb_unchecked):
    """Factory: `new_table(**create_table kwargs)` -> name; every table is deleted at teardown."""
    made = []

    def make(**kw):
        name = create_table(ddb, **kw)
        made.append(name)
        return name

    yield make
    for name in made:
        drop_table(ddb_unchecked, name)


def S(v):
    return {"S": v}


def N(v):
    return {"N": str(v)}
