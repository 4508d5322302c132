"""DynamoDB single-item operations through boto3's client: PutItem/GetItem/UpdateItem/DeleteItem
with conditions and every ReturnValues, numbers as DynamoDB keeps them, sets, nested document
paths, projections, ReturnConsumedCapacity, and the validation errors as DynamoDB words them.

Pages of the DynamoDB Developer Guide each group follows are named in the comments
(Expressions.OperatorsAndFunctions, Expressions.UpdateExpressions, Expressions.ProjectionExpressions,
HowItWorks.NamingRulesDataTypes, read-write-operations, ServiceQuotas).
"""
from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from ddb_helpers import (  # noqa: F401 - fixtures
    N, S, assert_error, basalt_only, ddb, ddb_unchecked, error, new_table, on_basalt,
)


@pytest.fixture
def table(new_table):
    return new_table()


@pytest.fixture
def composite(new_table):
    return new_table(range_key=("sk", "N"))


def get(ddb, table, **key):
    return ddb.get_item(TableName=table, Key={k: S(v) for k, v in key.items()}, ConsistentRead=True).get("Item")


def test_put_get_delete_round_trip_every_type(ddb, table):
    item = {"pk": S("all"), "s": S("héllo"), "n": N("-12.5"), "b": {"B": b"\x00\xff"}, "t": {"BOOL": True},
            "nul": {"NULL": True}, "ss": {"SS": ["a", "b"]}, "ns": {"NS": ["1", "2.5"]}, "bs": {"BS": [b"x", b"y"]},
            "m": {"M": {"inner": {"L": [S("x"), N("1"), {"M": {}}]}}}, "l": {"L": []}, "empty": S("")}
    assert "Attributes" not in ddb.put_item(TableName=table, Item=item)
    got = get(ddb, table, pk="all")
    for k in ("ss", "ns", "bs"):
        (tag,) = got[k]
        assert sorted(got.pop(k)[tag]) == sorted(item[k][tag])
    assert got == {k: v for k, v in item.items() if k not in ("ss", "ns", "bs")}
    assert "Item" not in ddb.get_item(TableName=table, Key={"pk": S("missing")})
    old = ddb.delete_item(TableName=table, Key={"pk": S("all")}, ReturnValues="ALL_OLD")["Attributes"]
    assert old["s"] == S("héllo")
    assert get(ddb, table, pk="all") is None
    # Deleting what is not there is not an error and returns nothing.
    assert "Attributes" not in ddb.delete_item(TableName=table, Key={"pk": S("all")}, ReturnValues="ALL_OLD")


def test_put_condition_and_return_values(ddb, table):
    ddb.put_item(TableName=table, Item={"pk": S("c"), "v": N(1)}, ConditionExpression="attribute_not_exists(pk)")
    with pytest.raises(ddb.exceptions.ConditionalCheckFailedException) as e:
        ddb.put_item(TableName=table, Item={"pk": S("c"), "v": N(2)}, ConditionExpression="attribute_not_exists(pk)",
                     ReturnValuesOnConditionCheckFailure="ALL_OLD")
    assert_error(e, "ConditionalCheckFailedException", "The conditional request failed")
    assert e.value.response["Item"] == {"pk": S("c"), "v": N(1)}
    # Without ReturnValuesOnConditionCheckFailure the old item is not sent.
    with pytest.raises(ddb.exceptions.ConditionalCheckFailedException) as e:
        ddb.put_item(TableName=table, Item={"pk": S("c"), "v": N(2)}, ConditionExpression="v > :x",
                     ExpressionAttributeValues={":x": N(5)})
    assert "Item" not in e.value.response
    old = ddb.put_item(TableName=table, Item={"pk": S("c"), "v": N(3)}, ConditionExpression="v = :one",
                       ExpressionAttributeValues={":one": N(1)}, ReturnValues="ALL_OLD")
    assert old["Attributes"] == {"pk": S("c"), "v": N(1)}
    assert get(ddb, table, pk="c")["v"] == N(3)
    # PutItem returns old values only.
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=table, Item={"pk": S("c")}, ReturnValues="ALL_NEW")
    assert error(e)[0] == "ValidationException"


def test_update_item_every_return_values(ddb, table):
    def fresh():
        ddb.put_item(TableName=table, Item={"pk": S("u"), "x": N(1), "y": S("old"), "keep": S("k")})

    def upd(rv):
        fresh()
        out = ddb.update_item(TableName=table, Key={"pk": S("u")}, UpdateExpression="SET x = x + :one, y = :new",
                              ExpressionAttributeValues={":one": N(1), ":new": S("new")}, ReturnValues=rv)
        return out.get("Attributes")

    assert upd("NONE") is None
    assert upd("ALL_OLD") == {"pk": S("u"), "x": N(1), "y": S("old"), "keep": S("k")}
    assert upd("ALL_NEW") == {"pk": S("u"), "x": N(2), "y": S("new"), "keep": S("k")}
    assert upd("UPDATED_OLD") == {"x": N(1), "y": S("old")}
    assert upd("UPDATED_NEW") == {"x": N(2), "y": S("new")}
    # An update creates the item when it is missing (upsert), with the key attributes.
    out = ddb.update_item(TableName=table, Key={"pk": S("born")}, UpdateExpression="SET v = :v",
                          ExpressionAttributeValues={":v": S("x")}, ReturnValues="ALL_NEW")
    assert out["Attributes"] == {"pk": S("born"), "v": S("x")}


def test_update_and_delete_conditions(ddb, table):
    ddb.put_item(TableName=table, Item={"pk": S("d"), "state": S("open"), "n": N(3)})
    with pytest.raises(ddb.exceptions.ConditionalCheckFailedException) as e:
        ddb.update_item(TableName=table, Key={"pk": S("d")}, UpdateExpression="SET n = :z",
                        ConditionExpression="#s = :closed", ExpressionAttributeNames={"#s": "state"},
                        ExpressionAttributeValues={":z": N(0), ":closed": S("closed")},
                        ReturnValuesOnConditionCheckFailure="ALL_OLD")
    assert e.value.response["Item"]["n"] == N(3)
    # A condition on a missing item sees no attributes: attribute_exists fails, so no upsert.
    with pytest.raises(ddb.exceptions.ConditionalCheckFailedException):
        ddb.update_item(TableName=table, Key={"pk": S("ghost")}, UpdateExpression="SET n = :z",
                        ConditionExpression="attribute_exists(pk)", ExpressionAttributeValues={":z": N(0)})
    assert get(ddb, table, pk="ghost") is None
    with pytest.raises(ddb.exceptions.ConditionalCheckFailedException) as e:
        ddb.delete_item(TableName=table, Key={"pk": S("d")}, ConditionExpression="n < :two",
                        ExpressionAttributeValues={":two": N(2)})
    assert_error(e, "ConditionalCheckFailedException", "The conditional request failed")
    assert get(ddb, table, pk="d") is not None
    ddb.delete_item(TableName=table, Key={"pk": S("d")}, ConditionExpression="n BETWEEN :a AND :b",
                    ExpressionAttributeValues={":a": N(3), ":b": N(4)})
    assert get(ddb, table, pk="d") is None


# Expressions.OperatorsAndFunctions: comparators, BETWEEN, IN, functions; NOT binds tighter
# than AND, AND tighter than OR.
CONDITIONS = [
    ("a = :one OR a = :two AND b = :x", True),       # OR(a=1, AND(a=2, b=x)); wrong precedence gives False
    ("(a = :one OR a = :two) AND b = :x", False),
    ("NOT a = :one AND b = :x", False),              # AND(NOT a=1, b=x); NOT over the AND gives True
    ("a IN (:two, :one)", True),
    ("a IN (:two, :x)", False),
    ("a BETWEEN :zero AND :one", True),
    ("a <> :one", False),
    ("attribute_type(s, :S)", True),
    ("attribute_type(a, :S)", False),
    ("begins_with(s, :pre)", True),
    ("contains(s, :mid)", True),
    ("contains(tags, :tag)", True),
    ("contains(l, :one)", True),
    ("size(s) = :five", True),
    ("size(tags) = :two", True),
    ("size(l) > :two", False),
    ("attribute_exists(m.deep) AND attribute_not_exists(m.nope)", True),
    ("m.deep = :one", True),
    ("l[1] = :two", True),
    ("s > :pre", True),
    ("s < :pre", False),
]


@pytest.mark.parametrize("expr,holds", CONDITIONS)
def test_condition_expression_language(ddb, table, expr, holds):
    ddb.put_item(TableName=table, Item={"pk": S("e"), "a": N(1), "b": N(0), "s": S("hello"),
                                        "tags": {"SS": ["red", "big"]},
                                        "l": {"L": [N(1), N(2)]}, "m": {"M": {"deep": N(1)}}})
    values = {":one": N(1), ":two": N(2), ":zero": N(0), ":x": S("x"), ":S": S("S"), ":pre": S("he"),
              ":mid": S("ell"), ":tag": S("red"), ":five": N(5)}
    used = {k: v for k, v in values.items() if k in expr}
    try:
        ddb.put_item(TableName=table, Item={"pk": S("e"), "done": {"BOOL": True}}, ConditionExpression=expr,
                     **({"ExpressionAttributeValues": used} if used else {}))
        held = True
    except ddb.exceptions.ConditionalCheckFailedException:
        held = False
    assert held is holds


def test_numbers_are_decimal_and_exact(ddb, table, on_basalt):
    # HowItWorks.NamingRulesDataTypes: up to 38 digits of precision; leading and trailing
    # zeroes are trimmed; numbers are compared by value.
    cases = {"1.0": "1", "1.50": "1.5", "00042": "42", "1.5E2": "150", "-0": "0",
             "12345678901234567890123456789012345678": "12345678901234567890123456789012345678"}
    for i, (given, kept) in enumerate(cases.items()):
        ddb.put_item(TableName=table, Item={"pk": S(f"n{i}"), "v": N(given)})
        if on_basalt:  # moto hands back the digits as sent
            assert get(ddb, table, pk=f"n{i}")["v"] == N(kept), given
    # 1.0 and 1 are the same number for conditions.
    ddb.put_item(TableName=table, Item={"pk": S("n0"), "v": N("2")}, ConditionExpression="v = :v",
                 ExpressionAttributeValues={":v": N("1.000")})
    # Arithmetic has no binary float drift, and ADD works at 38 digits.
    ddb.put_item(TableName=table, Item={"pk": S("sum"), "v": N("0.1"),
                                        "big": N("99999999999999999999999999999999999998")})
    out = ddb.update_item(TableName=table, Key={"pk": S("sum")}, UpdateExpression="SET v = v + :d ADD big :one",
                          ExpressionAttributeValues={":d": N("0.2"), ":one": N(1)}, ReturnValues="UPDATED_NEW")
    assert out["Attributes"] == {"v": N("0.3"), "big": N("99999999999999999999999999999999999999")}
    out = ddb.update_item(TableName=table, Key={"pk": S("sum")}, UpdateExpression="SET v = v - :d",
                          ExpressionAttributeValues={":d": N("0.3")}, ReturnValues="UPDATED_NEW")
    if on_basalt:  # moto answers 0.0
        assert out["Attributes"] == {"v": N("0")}


@pytest.mark.usefixtures("basalt_only")  # moto stores numbers outside DynamoDB's range
def test_number_limits(ddb, table):
    # HowItWorks.NamingRulesDataTypes: 38 digits of precision, magnitudes 1E-130 to 9.99..E+125.
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=table, Item={"pk": S("x"), "v": N("123456789012345678901234567890123456789")})
    assert_error(e, "ValidationException", "Attempting to store more than 38 significant digits in a Number")
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=table, Item={"pk": S("x"), "v": N("1E+126")})
    assert error(e)[0] == "ValidationException"
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=table, Item={"pk": S("x"), "v": N("1E-131")})
    assert error(e)[0] == "ValidationException"
    ddb.put_item(TableName=table, Item={"pk": S("x"), "v": N("9.9999999999999999999999999999999999999E+125"),
                                        "tiny": N("1E-130")})
    with pytest.raises(ClientError) as e:
        ddb.update_item(TableName=table, Key={"pk": S("x")}, UpdateExpression="ADD v :v",
                        ExpressionAttributeValues={":v": N("9.9999999999999999999999999999999999999E+125")})
    assert_error(e, "ValidationException",
                 "Number overflow. Attempting to store a number with magnitude larger than supported range")


def test_sets_add_delete_and_validation(ddb, table, on_basalt):
    ddb.put_item(TableName=table, Item={"pk": S("s"), "ss": {"SS": ["a", "b"]}, "ns": {"NS": ["1"]}})
    out = ddb.update_item(TableName=table, Key={"pk": S("s")}, UpdateExpression="ADD ss :ca, ns :n, fresh :f",
                          ExpressionAttributeValues={":ca": {"SS": ["c", "a"]}, ":n": {"NS": ["2", "1.0"]},
                                                     ":f": {"SS": ["z"]}}, ReturnValues="ALL_NEW")["Attributes"]
    assert sorted(out["ss"]["SS"]) == ["a", "b", "c"]
    if on_basalt:  # moto compares set members as strings
        assert sorted(out["ns"]["NS"]) == ["1", "2"]  # 1.0 is 1: no duplicate
    assert out["fresh"] == {"SS": ["z"]}
    out = ddb.update_item(TableName=table, Key={"pk": S("s")}, UpdateExpression="DELETE ss :ab",
                          ExpressionAttributeValues={":ab": {"SS": ["a", "b", "nope"]}}, ReturnValues="ALL_NEW")
    assert out["Attributes"]["ss"] == {"SS": ["c"]}
    # Removing the last element removes the attribute: sets are never empty.
    out = ddb.update_item(TableName=table, Key={"pk": S("s")}, UpdateExpression="DELETE ss :c",
                          ExpressionAttributeValues={":c": {"SS": ["c"]}}, ReturnValues="ALL_NEW")
    assert "ss" not in out["Attributes"]
    # Conformance: tier3/error-messages/putItem.test.ts (note DynamoDB's double space).
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=table, Item={"pk": S("s"), "bad": {"SS": []}})
    assert_error(e, "ValidationException", "One or more parameter values were invalid: An string set  may not be empty")
    if on_basalt:  # moto stores the duplicate
        with pytest.raises(ClientError) as e:
            ddb.put_item(TableName=table, Item={"pk": S("s"), "bad": {"SS": ["a", "a"]}})
        assert_error(e, "ValidationException",
                     "One or more parameter values were invalid: Input collection [a, a] contains duplicates.")
    with pytest.raises(ClientError) as e:
        ddb.update_item(TableName=table, Key={"pk": S("s")}, UpdateExpression="ADD ns :s",
                        ExpressionAttributeValues={":s": {"SS": ["x"]}})
    assert error(e)[0] == "ValidationException"


def test_nested_document_updates(ddb, table):
    # Expressions.UpdateExpressions: list elements by index, list_append, if_not_exists, REMOVE.
    ddb.put_item(TableName=table, Item={"pk": S("doc"), "a": {"M": {"b": {"L": [N(10), N(20), N(30)]},
                                                                      "c": {"L": [S("x"), S("y"), S("z")]}}},
                                        "l": {"L": [N(1)]}})
    out = ddb.update_item(
        TableName=table, Key={"pk": S("doc")},
        UpdateExpression="SET a.b[1] = :v, l = list_append(l, :more), cnt = if_not_exists(cnt, :zero) REMOVE a.c[0]",
        ExpressionAttributeValues={":v": N(99), ":more": {"L": [N(2), N(3)]}, ":zero": N(0)},
        ReturnValues="ALL_NEW")["Attributes"]
    assert out["a"]["M"]["b"] == {"L": [N(10), N(99), N(30)]}
    assert out["a"]["M"]["c"] == {"L": [S("y"), S("z")]}
    assert out["l"] == {"L": [N(1), N(2), N(3)]} and out["cnt"] == N(0)
    out = ddb.update_item(
        TableName=table, Key={"pk": S("doc")},
        UpdateExpression="SET l = list_append(:front, l), cnt = if_not_exists(cnt, :ten) + :one, a.#n = :n",
        ExpressionAttributeNames={"#n": "new key"},
        ExpressionAttributeValues={":front": {"L": [N(0)]}, ":ten": N(10), ":one": N(1), ":n": {"NULL": True}},
        ReturnValues="UPDATED_NEW")["Attributes"]
    # UPDATED_NEW shows only the paths that changed, nested ones inside their parents.
    assert out == {"l": {"L": [N(0), N(1), N(2), N(3)]}, "cnt": N(1), "a": {"M": {"new key": {"NULL": True}}}}
    # An index past the end appends.
    ddb.update_item(TableName=table, Key={"pk": S("doc")}, UpdateExpression="SET a.b[10] = :end",
                    ExpressionAttributeValues={":end": N(40)})
    assert get(ddb, table, pk="doc")["a"]["M"]["b"] == {"L": [N(10), N(99), N(30), N(40)]}
    # REMOVE of an index that is not there changes nothing.
    ddb.update_item(TableName=table, Key={"pk": S("doc")}, UpdateExpression="REMOVE a.b[7], nothing")
    assert get(ddb, table, pk="doc")["a"]["M"]["b"] == {"L": [N(10), N(99), N(30), N(40)]}
    with pytest.raises(ClientError) as e:
        ddb.update_item(TableName=table, Key={"pk": S("doc")}, UpdateExpression="SET nope.x = :v",
                        ExpressionAttributeValues={":v": N(1)})
    assert_error(e, "ValidationException", "The document path provided in the update expression is invalid for update")
    with pytest.raises(ClientError) as e:
        ddb.update_item(TableName=table, Key={"pk": S("doc")}, UpdateExpression="SET a = :v REMOVE a.b",
                        ExpressionAttributeValues={":v": N(1)})
    assert_error(e, "ValidationException", "Invalid UpdateExpression: Two document paths overlap with each other; "
                        "must remove or rewrite one of these paths; path one: [a], path two: [a, b]")


def test_projection_expressions_with_nested_paths(ddb, table, on_basalt):
    # Expressions.ProjectionExpressions.
    ddb.put_item(TableName=table, Item={"pk": S("p"), "name": S("n"), "other": S("o"),
                                        "a": {"M": {"b": {"L": [N(10), N(20), N(30)]}, "c": S("see"), "d": S("dee")}}})
    got = ddb.get_item(TableName=table, Key={"pk": S("p")}, ProjectionExpression="a.b[1], a.c, #n",
                       ExpressionAttributeNames={"#n": "name"})["Item"]
    assert got == {"a": {"M": {"b": {"L": [N(20)]}, "c": S("see")}}, "name": S("n")}
    if on_basalt:  # moto keeps only the last element asked for
        # Several elements of one list come back compacted, in index order whatever the
        # order asked (nubo-db/dynoxide#126, matched against DynamoDB).
        got = ddb.get_item(TableName=table, Key={"pk": S("p")}, ProjectionExpression="a.b[2], a.b[0]")["Item"]
        assert got == {"a": {"M": {"b": {"L": [N(10), N(30)]}}}}
    got = ddb.get_item(TableName=table, Key={"pk": S("p")}, ProjectionExpression="absent, a.zzz")
    assert got.get("Item", {}) == {}


def test_validation_errors_are_worded_as_dynamodb(ddb, composite, on_basalt):
    # Conformance: tier3/error-messages/{getItem,putItem,updateItem}.test.ts.
    key_mismatch = ("ValidationException", "The provided key element does not match the schema")
    bad_keys = [{"pk": S("a")}]
    if on_basalt:  # moto checks neither the sort key's type nor attributes beyond the key
        bad_keys += [{"pk": S("a"), "sk": S("1")}, {"pk": S("a"), "sk": N(1), "extra": S("x")}]
    for key in bad_keys:
        with pytest.raises(ClientError) as e:
            ddb.get_item(TableName=composite, Key=key)
        assert_error(e, *key_mismatch)
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=composite, Item={"pk": S("a")})
    assert_error(e, "ValidationException", "One or more parameter values were invalid: Missing the key sk in the item")
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=composite, Item={"pk": N(1), "sk": N(1)})
    assert_error(e, "ValidationException",
                 "One or more parameter values were invalid: Type mismatch for key pk expected: S actual: N")
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=composite, Item={"pk": S(""), "sk": N(1)})
    assert_error(e, "ValidationException", "One or more parameter values are not valid. The AttributeValue for a key "
                        "attribute cannot contain an empty string value. Key: pk")
    # ServiceQuotas: an item is at most 400 KB, names and values together (both sides of the
    # limit are kept clear of the 400,000 / 409,600 question).
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=composite, Item={"pk": S("big"), "sk": N(1), "blob": S("x" * (400 * 1024))})
    assert_error(e, "ValidationException", "Item size has exceeded the maximum allowed size")
    ddb.put_item(TableName=composite, Item={"pk": S("big"), "sk": N(1), "blob": S("x" * 399_000)})
    with pytest.raises(ClientError) as e:
        ddb.update_item(TableName=composite, Key={"pk": S("big"), "sk": N(1)}, UpdateExpression="SET more = :m",
                        ExpressionAttributeValues={":m": S("y" * 12_000)})
    assert_error(e, "ValidationException", "Item size to update has exceeded the maximum allowed size")
    key = {"pk": S("v"), "sk": N(1)}
    with pytest.raises(ClientError) as e:
        ddb.update_item(TableName=composite, Key=key, UpdateExpression="SET a = :a",
                        ExpressionAttributeValues={":a": N(1), ":unused": N(2)})
    assert_error(e, "ValidationException",
                 "Value provided in ExpressionAttributeValues unused in expressions: keys: {:unused}")
    with pytest.raises(ClientError) as e:
        ddb.update_item(TableName=composite, Key=key, UpdateExpression="SET a = :a",
                        ExpressionAttributeNames={"#unused": "x"},
                        ExpressionAttributeValues={":a": N(1)})
    assert_error(e, "ValidationException",
                 "Value provided in ExpressionAttributeNames unused in expressions: keys: {#unused}")
    with pytest.raises(ClientError) as e:
        ddb.update_item(TableName=composite, Key=key, UpdateExpression="SET a = :v",
                        ExpressionAttributeValues={":a": N(1)})
    assert error(e)[0] == "ValidationException"
    # Reserved words (ReservedWords page) need a placeholder.
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=composite, Item={"pk": S("v"), "sk": N(1)}, ConditionExpression="status = :s",
                     ExpressionAttributeValues={":s": S("x")})
    assert_error(e, "ValidationException",
                 "Invalid ConditionExpression: Attribute name is a reserved keyword; reserved keyword: status")
    with pytest.raises(ClientError) as e:
        ddb.update_item(TableName=composite, Key=key, UpdateExpression="SET data = :s",
                        ExpressionAttributeValues={":s": S("x")})
    assert_error(e, "ValidationException",
                 "Invalid UpdateExpression: Attribute name is a reserved keyword; reserved keyword: data")
    with pytest.raises(ClientError) as e:
        ddb.update_item(TableName=composite, Key=key, UpdateExpression="SET pk = :s",
                        ExpressionAttributeValues={":s": S("x")})
    assert_error(e, "ValidationException",
                 "One or more parameter values were invalid: Cannot update attribute pk. "
                 "This attribute is part of the key")
    with pytest.raises(ClientError) as e:
        ddb.update_item(TableName=composite, Key=key, UpdateExpression="INVALID SYNTAX HERE",
                        ExpressionAttributeValues={":v": S("val")})
    assert_error(e, "ValidationException",
                 'Invalid UpdateExpression: Syntax error; token: "INVALID", near: "INVALID SYNTAX"')


@pytest.mark.usefixtures("basalt_only")  # moto sends fixed capacity figures, not DynamoDB's arithmetic
def test_consumed_capacity_follows_dynamodb_rules(ddb, new_table):
    # read-write-operations: reads round each item up to 4 KB (eventually consistent: half),
    # writes round up to 1 KB and charge the larger of the old and new item; transactions
    # cost double. Item size = attribute names + values (UTF-8 bytes for strings).
    table = new_table(range_key=("sk", "S"), gsis=[{"IndexName": "by-g", "hash": ("g", "S")}])
    small = {"pk": S("p"), "sk": S("a"), "data": S("x" * 1500)}  # 2+1 + 2+1 + 4+1500 = 1510 bytes
    big = {"pk": S("p"), "sk": S("b"), "data": S("x" * 5000)}    # 5010 bytes, 5012 with g

    def cc(out):
        c = out["ConsumedCapacity"]
        assert c["TableName"] == table
        return c

    put = ddb.put_item(TableName=table, Item=small, ReturnConsumedCapacity="TOTAL")
    assert cc(put)["CapacityUnits"] == 2.0
    # INDEXES splits the charge; the item carries the GSI key, so the index is written too
    # (5 KB each, the index entry's 100 bytes of overhead included).
    put = ddb.put_item(TableName=table, Item={**big, "g": S("k")}, ReturnConsumedCapacity="INDEXES")
    assert cc(put)["Table"]["CapacityUnits"] == 5.0
    assert {k: v["CapacityUnits"] for k, v in cc(put)["GlobalSecondaryIndexes"].items()} == {"by-g": 5.0}
    assert cc(put)["CapacityUnits"] == 10.0
    k_small, k_big = {"pk": S("p"), "sk": S("a")}, {"pk": S("p"), "sk": S("b")}
    assert cc(ddb.get_item(TableName=table, Key=k_small, ReturnConsumedCapacity="TOTAL"))["CapacityUnits"] == 0.5
    assert cc(ddb.get_item(TableName=table, Key=k_small, ConsistentRead=True,
                           ReturnConsumedCapacity="TOTAL"))["CapacityUnits"] == 1.0
    assert cc(ddb.get_item(TableName=table, Key=k_big, ConsistentRead=True,
                           ReturnConsumedCapacity="TOTAL"))["CapacityUnits"] == 2.0
    # A miss still costs the minimum read.
    assert cc(ddb.get_item(TableName=table, Key={"pk": S("p"), "sk": S("zz")}, ConsistentRead=True,
                           ReturnConsumedCapacity="TOTAL"))["CapacityUnits"] == 1.0
    # Query sums the sizes first (1510 + 5012 bytes -> 8 KB), then rounds.
    q = ddb.query(TableName=table, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": S("p")},
                  ConsistentRead=True, ReturnConsumedCapacity="TOTAL")
    assert q["Count"] == 2 and cc(q)["CapacityUnits"] == 2.0
    # BatchGetItem rounds each item on its own: 4 KB + 8 KB, eventually consistent.
    bg = ddb.batch_get_item(RequestItems={table: {"Keys": [k_small, k_big]}}, ReturnConsumedCapacity="TOTAL")
    assert [(c["TableName"], c["CapacityUnits"]) for c in bg["ConsumedCapacity"]] == [(table, 1.5)]
    # Overwriting the big item with a small one charges the larger (old) size.
    put = ddb.put_item(TableName=table, Item=k_big, ReturnConsumedCapacity="TOTAL")
    assert cc(put)["CapacityUnits"] >= 5.0
    # Transactions cost double: two 1511-byte puts are 2 x (2 WCU x 2).
    tw = ddb.transact_write_items(TransactItems=[
        {"Put": {"TableName": table, "Item": {**small, "sk": S("t1")}}},
        {"Put": {"TableName": table, "Item": {**small, "sk": S("t2")}}}], ReturnConsumedCapacity="TOTAL")
    assert [(c["TableName"], c["CapacityUnits"]) for c in tw["ConsumedCapacity"]] == [(table, 8.0)]
    tg = ddb.transact_get_items(TransactItems=[{"Get": {"TableName": table, "Key": {"pk": S("p"), "sk": S("t1")}}},
                                               {"Get": {"TableName": table, "Key": {"pk": S("p"), "sk": S("t2")}}}],
                                ReturnConsumedCapacity="TOTAL")
    assert [(c["TableName"], c["CapacityUnits"]) for c in tg["ConsumedCapacity"]] == [(table, 4.0)]
    dl = ddb.delete_item(TableName=table, Key=k_small, ReturnConsumedCapacity="TOTAL")
    assert cc(dl)["CapacityUnits"] == 2.0
