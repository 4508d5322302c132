"""DynamoDB's legacy (non-expression) request parameters through boto3's client: AttributesToGet,
KeyConditions, QueryFilter/ScanFilter with ConditionalOperator, Expected (Value/Exists and
ComparisonOperator forms) and AttributeUpdates. Each legacy request is run beside its expression
twin, and both must give the same answer, which each test also states outright.

Developer Guide pages: LegacyConditionalParameters (the index of the legacy members),
LegacyConditionalParameters.Conditions (operators, ConditionalOperator, Value/Exists),
LegacyConditionalParameters.AttributesToGet, .KeyConditions, .QueryFilter, .ScanFilter,
.Expected, .AttributeUpdates; API reference pages Condition, ExpectedAttributeValue,
AttributeValueUpdate. Error wordings the guide does not quote are those the
dynamodb-conformance suite (tier3/legacy-api, tier3/error-messages) and dynalite's tests record
against DynamoDB.

moto's server handles few of these members (it answers QueryFilter and ScanFilter with a 500,
returns every attribute despite AttributesToGet, ignores Expected on DeleteItem and
ConditionalOperator, and keeps emptied sets), so the tests that need them are `basalt_only`.
"""
from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from ddb_helpers import (  # noqa: F401 - fixtures
    N, S, assert_error, basalt_only, create_table, ddb, ddb_unchecked, drop_table, new_table, on_basalt,
)

INVALID = "One or more parameter values were invalid: "
BOTH = "Can not use both expression and non-expression parameters in the same request: "


def normalized(item):
    """An item with its sets sorted, so two reads of one item compare equal."""
    out = {}
    for k, v in item.items():
        (tag, val), = v.items()
        out[k] = {tag: sorted(val)} if tag in ("SS", "NS", "BS") else v
    return out


# Partition "p" of `ftable`: attribute `name` is a reserved word, which legacy parameters may
# use as it is.
ITEMS = {
    "01": {"name": S("apple"), "n": N(1), "ss": {"SS": ["a", "b"]}, "l": {"L": [S("a"), N(1)]},
           "b": {"B": b"\x01\x02"}, "flag": {"BOOL": True}},
    "02": {"name": S("banana"), "n": N(2), "ss": {"SS": ["b"]}, "flag": {"BOOL": False}},
    "03": {"name": S("cherry"), "n": N(3), "l": {"L": [S("c")]}},
    "04": {"name": S("apricot"), "n": N(4), "ss": {"SS": ["a"]}},
    "05": {"n": N(5)},
    "06": {"name": S("6"), "n": N(6)},
    "07": {"name": S("avocado"), "n": N(7), "b": {"B": b"\x01\xff"}},
    "08": {},
}


@pytest.fixture(scope="module")
def ftable(ddb, ddb_unchecked):
    name = create_table(ddb, range_key=("sk", "S"))
    ddb.batch_write_item(RequestItems={name: [
        {"PutRequest": {"Item": {"pk": S("p"), "sk": S(sk), **attrs}}} for sk, attrs in ITEMS.items()]})
    yield name
    drop_table(ddb_unchecked, name)


def sks(items):
    return sorted(i["sk"]["S"] for i in items)


def scan_all(ddb, **kw):
    return [i for p in ddb.get_paginator("scan").paginate(**kw) for i in p["Items"]]


# ---- AttributesToGet (LegacyConditionalParameters.AttributesToGet) -------------------------------

def test_get_item_attributes_to_get(ddb, ftable, basalt_only):
    key = {"pk": S("p"), "sk": S("01")}
    legacy = ddb.get_item(TableName=ftable, Key=key, AttributesToGet=["name", "n", "missing"])["Item"]
    expr = ddb.get_item(TableName=ftable, Key=key, ProjectionExpression="#a, n, #m",
                        ExpressionAttributeNames={"#a": "name", "#m": "missing"})["Item"]
    # Key attributes come back only when asked for (conformance: attributesToGet.test.ts).
    assert legacy == expr == {"name": S("apple"), "n": N(1)}


def test_attribute_names_are_literal(ddb, new_table, basalt_only):
    """A legacy name is an attribute name, never a document path: `a.b` is the attribute
    called "a.b", not `b` inside `a`."""
    t = new_table()
    ddb.put_item(TableName=t, Item={"pk": S("x"), "a.b": S("dotted"), "a": {"M": {"b": S("nested")}}})
    got = ddb.get_item(TableName=t, Key={"pk": S("x")}, AttributesToGet=["a.b"])["Item"]
    assert got == {"a.b": S("dotted")}


def test_query_scan_and_batch_get_attributes_to_get(ddb, ftable, basalt_only):
    legacy = ddb.query(TableName=ftable, KeyConditions={"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [S("p")]}},
                       AttributesToGet=["sk", "flag"])["Items"]
    expr = ddb.query(TableName=ftable, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": S("p")},
                     ProjectionExpression="sk, flag")["Items"]
    assert legacy == expr
    assert legacy[0] == {"sk": S("01"), "flag": {"BOOL": True}}
    assert legacy[4] == {"sk": S("05")}
    scanned = scan_all(ddb, TableName=ftable, AttributesToGet=["sk", "n"])
    assert sorted(scanned, key=lambda i: i["sk"]["S"]) == [
        {"sk": S(sk), **({"n": a["n"]} if "n" in a else {})} for sk, a in ITEMS.items()]
    out = ddb.batch_get_item(RequestItems={ftable: {
        "Keys": [{"pk": S("p"), "sk": S("02")}, {"pk": S("p"), "sk": S("03")}], "AttributesToGet": ["name"]}})
    assert sorted(i["name"]["S"] for i in out["Responses"][ftable]) == ["banana", "cherry"]
    assert all(set(i) == {"name"} for i in out["Responses"][ftable])


def test_attributes_to_get_errors(ddb, ftable, basalt_only):
    key = {"pk": S("p"), "sk": S("01")}
    with pytest.raises(ClientError) as e:
        ddb.get_item(TableName=ftable, Key=key, AttributesToGet=["n"], ProjectionExpression="n")
    assert_error(e, "ValidationException", BOTH + "Non-expression parameters: {AttributesToGet} "
                 "Expression parameters: {ProjectionExpression}")
    with pytest.raises(ClientError) as e:
        ddb.get_item(TableName=ftable, Key=key, AttributesToGet=["n", "name", "n"])
    assert_error(e, "ValidationException", INVALID + "Duplicate value in attribute name: n")
    with pytest.raises(ClientError) as e:
        ddb.get_item(TableName=ftable, Key=key, AttributesToGet=["n"], ExpressionAttributeNames={"#n": "n"})
    assert_error(e, "ValidationException", "ExpressionAttributeNames can only be specified when using expressions")
    with pytest.raises(ClientError) as e:
        ddb.scan(TableName=ftable, AttributesToGet=["n"], Select="COUNT")
    assert_error(e, "ValidationException",
                 "1 validation error detected: Cannot specify the AttributesToGet when choosing to get only the Count")


# ---- QueryFilter / ScanFilter (LegacyConditionalParameters.Conditions) ---------------------------

# (attribute, operator, AttributeValueList, expression twin, its values, sort keys that match)
FILTERS = [
    ("name", "EQ", [S("banana")], "#a = :v0", "02"),
    ("name", "NE", [S("banana")], "#a <> :v0", "01 03 04 05 06 07 08"),
    ("n", "LE", [N(3)], "#a <= :v0", "01 02 03"),
    ("n", "LT", [N(3)], "#a < :v0", "01 02"),
    ("n", "GE", [N(6)], "#a >= :v0", "06 07"),
    ("n", "GT", [N(6)], "#a > :v0", "07"),
    ("name", "NOT_NULL", [], "attribute_exists(#a)", "01 02 03 04 06 07"),
    ("name", "NULL", [], "attribute_not_exists(#a)", "05 08"),
    ("ss", "CONTAINS", [S("a")], "contains(#a, :v0)", "01 04"),
    ("name", "CONTAINS", [S("an")], "contains(#a, :v0)", "02"),
    ("l", "CONTAINS", [S("c")], "contains(#a, :v0)", "03"),
    ("ss", "NOT_CONTAINS", [S("a")], "NOT contains(#a, :v0)", "02 03 05 06 07 08"),
    ("name", "BEGINS_WITH", [S("a")], "begins_with(#a, :v0)", "01 04 07"),
    ("b", "BEGINS_WITH", [{"B": b"\x01"}], "begins_with(#a, :v0)", "01 07"),
    ("name", "IN", [S("apple"), S("cherry"), S("kiwi")], "#a IN (:v0, :v1, :v2)", "01 03"),
    ("n", "BETWEEN", [N(2), N(5)], "#a BETWEEN :v0 AND :v1", "02 03 04 05"),
    # Sets compare as sets: order does not matter.
    ("ss", "EQ", [{"SS": ["b", "a"]}], "#a = :v0", "01"),
    # A value of another type never matches: the string "6" is not the number 6.
    ("name", "EQ", [N(6)], "#a = :v0", ""),
    ("n", "NE", [S("1")], "#a <> :v0", "01 02 03 04 05 06 07 08"),
]


@pytest.mark.parametrize("attr,op,values,expr,want", FILTERS, ids=[f"{f[1]}-{f[0]}-{i}" for i, f in enumerate(FILTERS)])
def test_query_and_scan_filters_match_their_expression(ddb, ftable, basalt_only, attr, op, values, expr, want):
    want = want.split()
    cond = {attr: {"ComparisonOperator": op, "AttributeValueList": values}}
    twin = {"ExpressionAttributeNames": {"#a": attr}}
    if values:
        twin["ExpressionAttributeValues"] = {f":v{i}": v for i, v in enumerate(values)}
    legacy = ddb.query(TableName=ftable, KeyConditions={"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [S("p")]}},
                       QueryFilter=cond)
    kce = "pk = :pk"
    twin_values = {**twin.get("ExpressionAttributeValues", {}), ":pk": S("p")}
    expression = ddb.query(TableName=ftable, KeyConditionExpression=kce, FilterExpression=expr,
                           ExpressionAttributeNames=twin["ExpressionAttributeNames"],
                           ExpressionAttributeValues=twin_values)
    assert sks(legacy["Items"]) == sks(expression["Items"]) == want
    assert legacy["ScannedCount"] == 8
    scanned = scan_all(ddb, TableName=ftable, ScanFilter=cond)
    assert sks(scanned) == sks(scan_all(ddb, TableName=ftable, FilterExpression=expr, **twin)) == want


def test_conditional_operator_and_or(ddb, ftable, basalt_only):
    conds = {"name": {"ComparisonOperator": "BEGINS_WITH", "AttributeValueList": [S("a")]},
             "n": {"ComparisonOperator": "GT", "AttributeValueList": [N(5)]}}
    names, values = {"#a": "name"}, {":a": S("a"), ":five": N(5)}
    for op, want in (("OR", ["01", "04", "06", "07"]), ("AND", ["07"])):
        legacy = scan_all(ddb, TableName=ftable, ScanFilter=conds, ConditionalOperator=op)
        twin = scan_all(ddb, TableName=ftable, FilterExpression=f"begins_with(#a, :a) {op} n > :five",
                        ExpressionAttributeNames=names, ExpressionAttributeValues=values)
        assert sks(legacy) == sks(twin) == want
    # AND is the default.
    assert sks(scan_all(ddb, TableName=ftable, ScanFilter=conds)) == ["07"]


def test_filter_errors(ddb, ftable, basalt_only):
    def scan_error(**kw):
        with pytest.raises(ClientError) as e:
            ddb.scan(TableName=ftable, **kw)
        return e

    e = scan_error(ScanFilter={"n": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [N(1)]}})
    assert_error(e, "ValidationException", INVALID + "Invalid number of argument(s) for the BETWEEN ComparisonOperator")
    e = scan_error(ScanFilter={"n": {"ComparisonOperator": "NULL", "AttributeValueList": [N(1)]}})
    assert_error(e, "ValidationException", INVALID + "Invalid number of argument(s) for the NULL ComparisonOperator")
    e = scan_error(ScanFilter={"n": {"ComparisonOperator": "GT", "AttributeValueList": [{"SS": ["a"]}]}})
    assert_error(e, "ValidationException", INVALID + "ComparisonOperator GT is not valid for SS AttributeValue type")
    e = scan_error(ScanFilter={"n": {"ComparisonOperator": "BEGINS_WITH", "AttributeValueList": [N(1)]}})
    assert_error(e, "ValidationException", INVALID + "ComparisonOperator BEGINS_WITH is not valid for N AttributeValue type")
    e = scan_error(ScanFilter={"n": {"ComparisonOperator": "IN", "AttributeValueList": [N(1), S("1")]}})
    assert_error(e, "ValidationException", INVALID + "AttributeValues inside AttributeValueList must be of same type")
    e = scan_error(ScanFilter={"n": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [N(5), N(2)]}})
    assert_error(e, "ValidationException",
                 "The BETWEEN condition was provided a range where the lower bound is greater than the upper bound")
    e = scan_error(ScanFilter={"n": {"ComparisonOperator": "EQ", "AttributeValueList": [N(1)]}},
                   FilterExpression="n = :n", ExpressionAttributeValues={":n": N(1)})
    assert_error(e, "ValidationException", BOTH + "Non-expression parameters: {ScanFilter} "
                 "Expression parameters: {FilterExpression}")
    e = scan_error(ConditionalOperator="OR", FilterExpression="n = :n", ExpressionAttributeValues={":n": N(1)})
    assert_error(e, "ValidationException", BOTH + "Non-expression parameters: {ConditionalOperator} "
                 "Expression parameters: {FilterExpression}")
    e = scan_error(ScanFilter={"n": {"ComparisonOperator": "EQ", "AttributeValueList": [N(1)]}},
                   ExpressionAttributeValues={":n": N(1)})
    assert_error(e, "ValidationException",
                 "ExpressionAttributeValues can only be specified when using expressions: FilterExpression is null")


# ---- KeyConditions (LegacyConditionalParameters.KeyConditions) -----------------------------------

@pytest.fixture(scope="module")
def ktable(ddb, ddb_unchecked):
    name = create_table(ddb, range_key=("sk", "S"))
    ddb.batch_write_item(RequestItems={name: [
        {"PutRequest": {"Item": {"pk": S(pk), "sk": S(sk), "v": N(i)}}}
        for i, (pk, sk) in enumerate([("k", "a1"), ("k", "a2"), ("k", "b1"), ("k", "b2"), ("k", "c1"), ("other", "a1")])]})
    yield name
    drop_table(ddb_unchecked, name)


KEYS = [
    (None, [], "", "a1 a2 b1 b2 c1"),
    ("EQ", [S("b1")], "AND sk = :v0", "b1"),
    ("LE", [S("b1")], "AND sk <= :v0", "a1 a2 b1"),
    ("LT", [S("b1")], "AND sk < :v0", "a1 a2"),
    ("GE", [S("b2")], "AND sk >= :v0", "b2 c1"),
    ("GT", [S("b1")], "AND sk > :v0", "b2 c1"),
    ("BEGINS_WITH", [S("b")], "AND begins_with(sk, :v0)", "b1 b2"),
    ("BETWEEN", [S("a2"), S("b2")], "AND sk BETWEEN :v0 AND :v1", "a2 b1 b2"),
]


@pytest.mark.parametrize("op,values,expr,want", KEYS, ids=[k[0] or "hash-only" for k in KEYS])
def test_key_conditions_match_their_expression(ddb, ktable, op, values, expr, want):
    conds = {"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [S("k")]}}
    if op:
        conds["sk"] = {"ComparisonOperator": op, "AttributeValueList": values}
    legacy = ddb.query(TableName=ktable, KeyConditions=conds)["Items"]
    twin = ddb.query(TableName=ktable, KeyConditionExpression=f"pk = :pk {expr}",
                     ExpressionAttributeValues={":pk": S("k"), **{f":v{i}": v for i, v in enumerate(values)}})["Items"]
    assert [i["sk"]["S"] for i in legacy] == [i["sk"]["S"] for i in twin] == want.split()


def test_key_conditions_order_paging_and_filters(ddb, ktable):
    conds = {"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [S("k")]}}
    back = ddb.query(TableName=ktable, KeyConditions=conds, ScanIndexForward=False)["Items"]
    assert [i["sk"]["S"] for i in back] == ["c1", "b2", "b1", "a2", "a1"]
    seen, start = [], None
    while True:
        out = ddb.query(TableName=ktable, KeyConditions=conds, Limit=2, **({"ExclusiveStartKey": start} if start else {}))
        seen += [i["sk"]["S"] for i in out["Items"]]
        start = out.get("LastEvaluatedKey")
        if not start:
            break
    assert seen == ["a1", "a2", "b1", "b2", "c1"]
    # QueryFilter with KeyConditions, and (as DynamoDB allows) KeyConditions beside a
    # FilterExpression, whose own placeholders stay apart from the generated ones.
    legacy = ddb.query(TableName=ktable, KeyConditions=conds,
                       QueryFilter={"v": {"ComparisonOperator": "GE", "AttributeValueList": [N(3)]}})
    mixed = ddb.query(TableName=ktable, KeyConditions=conds, FilterExpression="#legacy0 >= :legacy0",
                      ExpressionAttributeNames={"#legacy0": "v"}, ExpressionAttributeValues={":legacy0": N(3)})
    assert sks(legacy["Items"]) == sks(mixed["Items"]) == ["b2", "c1"]
    assert legacy["Count"] == 2 and legacy["ScannedCount"] == 5
    count = ddb.query(TableName=ktable, KeyConditions=conds, Select="COUNT")
    assert count["Count"] == 5 and "Items" not in count


def test_key_condition_errors(ddb, ktable, basalt_only):
    def query_error(conds, **kw):
        with pytest.raises(ClientError) as e:
            ddb.query(TableName=ktable, KeyConditions=conds, **kw)
        return e

    pk = {"ComparisonOperator": "EQ", "AttributeValueList": [S("k")]}
    for op in ("NE", "CONTAINS", "IN"):
        e = query_error({"pk": pk, "sk": {"ComparisonOperator": op, "AttributeValueList": [S("a")]}})
        assert_error(e, "ValidationException", "Attempted conditional constraint is not an indexable operation")
    e = query_error({"sk": {"ComparisonOperator": "EQ", "AttributeValueList": [S("a1")]}})
    assert_error(e, "ValidationException", "Query condition missed key schema element: pk")
    e = query_error({"pk": {"ComparisonOperator": "BEGINS_WITH", "AttributeValueList": [S("k")]}})
    assert_error(e, "ValidationException", "Query key condition not supported")
    e = query_error({"pk": pk, "sk": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [S("a")]}})
    assert_error(e, "ValidationException", INVALID + "Invalid number of argument(s) for the BETWEEN ComparisonOperator")
    e = query_error({"pk": pk, "sk": pk, "v": pk})
    assert_error(e, "ValidationException", "Conditions can be of length 1 or 2 only")
    e = query_error({"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [N(1)]}})
    assert_error(e, "ValidationException",
                 "One or more parameter values were invalid: Condition parameter type does not match schema type")
    e = query_error({"pk": pk}, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": S("k")})
    assert_error(e, "ValidationException", BOTH + "Non-expression parameters: {KeyConditions} "
                 "Expression parameters: {KeyConditionExpression}")


# ---- Expected (LegacyConditionalParameters.Expected) ---------------------------------------------

def test_put_item_expected_exists_false(ddb, new_table, basalt_only):
    """The guide's example: a PutItem that must not overwrite (Exists false, or NULL)."""
    t = new_table()
    ddb.put_item(TableName=t, Item={"pk": S("500"), "Title": S("Book 500 Title")}, Expected={"pk": {"Exists": False}})
    for expected in ({"pk": {"Exists": False}}, {"pk": {"ComparisonOperator": "NULL"}}):
        with pytest.raises(ClientError) as e:
            ddb.put_item(TableName=t, Item={"pk": S("500"), "Title": S("other")}, Expected=expected,
                         ReturnValuesOnConditionCheckFailure="ALL_OLD")
        assert_error(e, "ConditionalCheckFailedException", "The conditional request failed")
        assert e.value.response["Item"] == {"pk": S("500"), "Title": S("Book 500 Title")}
    assert ddb.get_item(TableName=t, Key={"pk": S("500")})["Item"]["Title"] == S("Book 500 Title")


# (Expected, whether it holds on the item {v: 5, s: "abc", tags: {x, y}})
EXPECTED = [
    ({"v": {"Value": N(5)}}, True),
    ({"v": {"Value": N(6)}}, False),
    ({"v": {"Exists": True, "Value": N(5)}}, True),
    ({"gone": {"Exists": False}}, True),
    ({"v": {"Exists": False}}, False),
    ({"v": {"ComparisonOperator": "LT", "AttributeValueList": [N(6)]}}, True),
    ({"v": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [N(6), N(9)]}}, False),
    ({"s": {"ComparisonOperator": "BEGINS_WITH", "AttributeValueList": [S("ab")]}}, True),
    ({"tags": {"ComparisonOperator": "CONTAINS", "AttributeValueList": [S("y")]}}, True),
    ({"tags": {"ComparisonOperator": "NOT_CONTAINS", "AttributeValueList": [S("y")]}}, False),
    ({"s": {"ComparisonOperator": "IN", "AttributeValueList": [S("x"), S("abc")]}}, True),
    ({"gone": {"ComparisonOperator": "NE", "AttributeValueList": [N(1)]}}, True),
    ({"v": {"ComparisonOperator": "NOT_NULL"}, "s": {"ComparisonOperator": "NULL"}}, False),
]


@pytest.mark.parametrize("expected,holds", EXPECTED)
@pytest.mark.parametrize("operation", ["put", "update", "delete"])
def test_expected_decides_each_write(ddb, new_table, on_basalt, operation, expected, holds):
    if operation == "delete" and not on_basalt:
        pytest.skip("moto's server ignores Expected on DeleteItem (API_DeleteItem: Expected)")
    t = new_table()
    key = {"pk": S("e")}
    ddb.put_item(TableName=t, Item={**key, "v": N(5), "s": S("abc"), "tags": {"SS": ["x", "y"]}})
    call = {
        "put": lambda: ddb.put_item(TableName=t, Item={**key, "v": N(100)}, Expected=expected),
        "update": lambda: ddb.update_item(TableName=t, Key=key, Expected=expected,
                                          AttributeUpdates={"v": {"Action": "PUT", "Value": N(100)}}),
        "delete": lambda: ddb.delete_item(TableName=t, Key=key, Expected=expected),
    }[operation]
    if holds:
        call()
    else:
        with pytest.raises(ClientError) as e:
            call()
        assert_error(e, "ConditionalCheckFailedException", "The conditional request failed")
    item = ddb.get_item(TableName=t, Key=key, ConsistentRead=True).get("Item")
    if not holds:
        assert item["v"] == N(5)
    elif operation == "delete":
        assert item is None
    else:
        assert item["v"] == N(100)


def test_expected_conditional_operator_or(ddb, new_table, basalt_only):
    t = new_table()
    key = {"pk": S("o")}
    ddb.put_item(TableName=t, Item={**key, "status": S("active"), "role": S("user")})
    expected = {"status": {"ComparisonOperator": "EQ", "AttributeValueList": [S("done")]},
                "role": {"ComparisonOperator": "EQ", "AttributeValueList": [S("user")]}}
    with pytest.raises(ClientError) as e:
        ddb.delete_item(TableName=t, Key=key, Expected=expected, ConditionalOperator="AND")
    assert_error(e, "ConditionalCheckFailedException")
    ddb.delete_item(TableName=t, Key=key, Expected=expected, ConditionalOperator="OR")
    assert "Item" not in ddb.get_item(TableName=t, Key=key, ConsistentRead=True)


def test_expected_errors(ddb, new_table, basalt_only):
    t = new_table()
    item = {"pk": S("x")}

    def put_error(**kw):
        with pytest.raises(ClientError) as e:
            ddb.put_item(TableName=t, Item=item, **kw)
        return e

    for expected, message in [
        ({"a": {"Exists": True}}, "Value must be provided when Exists is true for Attribute: a"),
        ({"a": {"Exists": False, "Value": S("x")}}, "Value cannot be used when Exists is false for Attribute: a"),
        ({"a": {"ComparisonOperator": "EQ", "Exists": True, "AttributeValueList": [S("x")]}},
         "Exists and ComparisonOperator cannot be used together for Attribute: a"),
        ({"a": {"ComparisonOperator": "EQ"}},
         "Value or AttributeValueList must be used with ComparisonOperator: EQ for Attribute: a"),
        ({"a": {"AttributeValueList": [S("x")]}},
         "AttributeValueList can only be used with a ComparisonOperator for Attribute: a"),
        ({"a": {"ComparisonOperator": "EQ", "Value": S("x"), "AttributeValueList": [S("x")]}},
         "Value and AttributeValueList cannot be used together for Attribute: a"),
        ({"a": {"ComparisonOperator": "IN", "AttributeValueList": []}},
         "Invalid number of argument(s) for the IN ComparisonOperator"),
    ]:
        assert_error(put_error(Expected=expected), "ValidationException", INVALID + message)
    # Conformance: tier3/error-messages/putItem.test.ts.
    e = put_error(Expected={"pk": {"Exists": False}}, ConditionExpression="attribute_not_exists(pk)")
    assert_error(e, "ValidationException", BOTH + "Non-expression parameters: {Expected} "
                 "Expression parameters: {ConditionExpression}")
    e = put_error(ExpressionAttributeValues={":v": S("unused")})
    assert_error(e, "ValidationException",
                 "ExpressionAttributeValues can only be specified when using expressions: ConditionExpression is null")


# ---- AttributeUpdates (LegacyConditionalParameters.AttributeUpdates) -----------------------------

START = {"name": S("old"), "count": N(1), "tags": {"SS": ["a", "b", "c"]}, "one": {"SS": ["z"]},
         "extra": S("remove me"), "list": {"L": [S("x")]}}

# (AttributeUpdates, the UpdateExpression twin and its values, the attributes after, beside pk)
UPDATES = [
    ({"name": {"Action": "PUT", "Value": S("new")}}, "SET #n = :v", {":v": S("new")}, {"name": S("new")}),
    ({"name": {"Value": S("new")}}, "SET #n = :v", {":v": S("new")}, {"name": S("new")}),
    ({"count": {"Action": "ADD", "Value": N(9)}}, "ADD #n :v", {":v": N(9)}, {"count": N(10)}),
    ({"fresh": {"Action": "ADD", "Value": N(-3)}}, "ADD #n :v", {":v": N(-3)}, {"fresh": N(-3)}),
    ({"tags": {"Action": "ADD", "Value": {"SS": ["c", "d"]}}}, "ADD #n :v", {":v": {"SS": ["c", "d"]}},
     {"tags": {"SS": ["a", "b", "c", "d"]}}),
    ({"tags": {"Action": "DELETE", "Value": {"SS": ["b", "q"]}}}, "DELETE #n :v", {":v": {"SS": ["b", "q"]}},
     {"tags": {"SS": ["a", "c"]}}),
    # Deleting a set's last element removes the attribute.
    ({"one": {"Action": "DELETE", "Value": {"SS": ["z"]}}}, "DELETE #n :v", {":v": {"SS": ["z"]}}, {"one": None}),
    ({"extra": {"Action": "DELETE"}}, "REMOVE #n", None, {"extra": None}),
    ({"list": {"Action": "ADD", "Value": {"L": [S("y")]}}},
     "SET #n = list_append(if_not_exists(#n, :e), :v)", {":e": {"L": []}, ":v": {"L": [S("y")]}},
     {"list": {"L": [S("x"), S("y")]}}),
]


@pytest.mark.parametrize("updates,expr,values,after", UPDATES, ids=[
    f"{a['Action'] if 'Action' in a else 'PUT-default'}-{k}" for u, *_ in UPDATES for k, a in u.items()])
def test_attribute_updates_match_their_expression(ddb, new_table, on_basalt, updates, expr, values, after):
    if after.get("one", 1) is None and not on_basalt:
        pytest.skip("moto's server keeps an emptied set (HowItWorks.NamingRulesDataTypes: sets are never empty)")
    t = new_table()
    ddb.put_item(TableName=t, Item={"pk": S("legacy"), **START})
    ddb.put_item(TableName=t, Item={"pk": S("twin"), **START})
    (attr,) = updates
    legacy = ddb.update_item(TableName=t, Key={"pk": S("legacy")}, AttributeUpdates=updates, ReturnValues="UPDATED_NEW")
    kw = {"ExpressionAttributeValues": values} if values else {}
    twin = ddb.update_item(TableName=t, Key={"pk": S("twin")}, UpdateExpression=expr,
                           ExpressionAttributeNames={"#n": attr}, ReturnValues="UPDATED_NEW", **kw)
    assert normalized(legacy.get("Attributes", {})) == normalized(twin.get("Attributes", {}))
    got = {k: ddb.get_item(TableName=t, Key={"pk": S(k)}, ConsistentRead=True)["Item"] for k in ("legacy", "twin")}
    got["legacy"].pop("pk")
    got["twin"].pop("pk")
    assert normalized(got["legacy"]) == normalized(got["twin"])
    want = {**START, **after}
    assert normalized(got["legacy"]) == normalized({k: v for k, v in want.items() if v is not None})


def test_attribute_updates_several_and_on_a_missing_item(ddb, new_table):
    """The conformance suite's multi-update case, and ADD on an item that does not exist yet
    (created with the key and the number counted from 0)."""
    t = new_table()
    ddb.put_item(TableName=t, Item={"pk": S("m"), "name": S("old-name"), "count": N(1), "extra": S("remove-me")})
    out = ddb.update_item(TableName=t, Key={"pk": S("m")}, ReturnValues="ALL_NEW", AttributeUpdates={
        "name": {"Action": "PUT", "Value": S("new-name")},
        "count": {"Action": "ADD", "Value": N(9)},
        "extra": {"Action": "DELETE"}})
    assert out["Attributes"] == {"pk": S("m"), "name": S("new-name"), "count": N(10)}
    ddb.update_item(TableName=t, Key={"pk": S("new")}, AttributeUpdates={"hits": {"Action": "ADD", "Value": N(3)}})
    assert ddb.get_item(TableName=t, Key={"pk": S("new")}, ConsistentRead=True)["Item"] == {"pk": S("new"), "hits": N(3)}


def test_attribute_updates_errors(ddb, new_table, basalt_only):
    t = new_table()
    key = {"pk": S("x")}
    ddb.put_item(TableName=t, Item={**key, "s": S("text")})

    def update_error(**kw):
        with pytest.raises(ClientError) as e:
            ddb.update_item(TableName=t, Key=key, **kw)
        return e

    for updates, message in [
        ({"a": {"Action": "PUT"}}, "Only DELETE action is allowed when no attribute value is specified"),
        ({"a": {"Action": "DELETE", "Value": N(1)}}, "DELETE action with value is not supported for the type N"),
        ({"a": {"Action": "ADD", "Value": S("x")}}, "ADD action is not supported for the type S"),
        ({"pk": {"Action": "PUT", "Value": S("other")}}, "Cannot update attribute pk. This attribute is part of the key"),
    ]:
        assert_error(update_error(AttributeUpdates=updates), "ValidationException", INVALID + message)
    # Adding a number to a string is refused when the item is read (conformance: attributeUpdates).
    assert_error(update_error(AttributeUpdates={"s": {"Action": "ADD", "Value": N(1)}}), "ValidationException")
    # Conformance: tier3/error-messages/updateItem.test.ts.
    e = update_error(AttributeUpdates={"a": {"Action": "PUT", "Value": S("v")}}, UpdateExpression="SET a = :v",
                     ExpressionAttributeValues={":v": S("v")})
    assert_error(e, "ValidationException", BOTH + "Non-expression parameters: {AttributeUpdates} "
                 "Expression parameters: {UpdateExpression}")
    assert ddb.get_item(TableName=t, Key=key, ConsistentRead=True)["Item"] == {**key, "s": S("text")}
