"""DynamoDB transactions (TransactWriteItems, TransactGetItems) and PartiQL (ExecuteStatement,
BatchExecuteStatement, ExecuteTransaction) through boto3's client.

Developer Guide pages: transaction-apis (isolation, idempotency, cancellation reasons, limits),
ql-reference.select/insert/update/delete, ql-functions, ql-reference.multiplestatements.
"""
from __future__ import annotations

import uuid

import pytest
from botocore.exceptions import ClientError

from ddb_helpers import (  # noqa: F401 - fixtures
    N, S, assert_error, basalt_only, ddb, ddb_unchecked, error, new_table, on_basalt,
)


@pytest.fixture
def two_tables(new_table):
    return new_table(), new_table(range_key=("sk", "N"))


def get(ddb, table, key):
    return ddb.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")


def test_transact_write_every_action_across_tables(ddb, two_tables):
    a, b = two_tables
    ddb.put_item(TableName=a, Item={"pk": S("guard"), "open": {"BOOL": True}})
    ddb.put_item(TableName=a, Item={"pk": S("acct"), "bal": N(100)})
    ddb.put_item(TableName=b, Item={"pk": S("x"), "sk": N(1), "doomed": S("yes")})
    ddb.transact_write_items(TransactItems=[
        {"ConditionCheck": {"TableName": a, "Key": {"pk": S("guard")}, "ConditionExpression": "#o = :t",
                            "ExpressionAttributeNames": {"#o": "open"},
                            "ExpressionAttributeValues": {":t": {"BOOL": True}}}},
        {"Update": {"TableName": a, "Key": {"pk": S("acct")}, "UpdateExpression": "SET bal = bal - :amt",
                    "ConditionExpression": "bal >= :amt", "ExpressionAttributeValues": {":amt": N(30)}}},
        {"Put": {"TableName": b, "Item": {"pk": S("x"), "sk": N(2), "amt": N(30)},
                 "ConditionExpression": "attribute_not_exists(pk)"}},
        {"Delete": {"TableName": b, "Key": {"pk": S("x"), "sk": N(1)}}}])
    assert get(ddb, a, {"pk": S("acct")})["bal"] == N(70)
    assert get(ddb, b, {"pk": S("x"), "sk": N(2)}) == {"pk": S("x"), "sk": N(2), "amt": N(30)}
    assert get(ddb, b, {"pk": S("x"), "sk": N(1)}) is None
    assert get(ddb, a, {"pk": S("guard")}) == {"pk": S("guard"), "open": {"BOOL": True}}, "a check writes nothing"


def test_cancellation_reasons_in_order_and_nothing_written(ddb, two_tables):
    a, b = two_tables
    ddb.put_item(TableName=a, Item={"pk": S("taken"), "v": S("original")})
    items = [
        {"Put": {"TableName": a, "Item": {"pk": S("new1")}}},
        {"Put": {"TableName": a, "Item": {"pk": S("taken"), "v": S("clobbered")},
                 "ConditionExpression": "attribute_not_exists(pk)", "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}},
        {"Update": {"TableName": b, "Key": {"pk": S("y"), "sk": N(1)}, "UpdateExpression": "SET v = :v",
                    "ExpressionAttributeValues": {":v": N(1)}}},
        {"ConditionCheck": {"TableName": b, "Key": {"pk": S("absent"), "sk": N(0)},
                            "ConditionExpression": "attribute_exists(pk)"}},
    ]
    with pytest.raises(ddb.exceptions.TransactionCanceledException) as e:
        ddb.transact_write_items(TransactItems=items)
    # Conformance: tier3/error-messages/transactWriteItems.test.ts (positional reasons).
    assert_error(e, "TransactionCanceledException", "Transaction cancelled, please refer cancellation reasons for "
                 "specific reasons [None, ConditionalCheckFailed, None, ConditionalCheckFailed]")
    reasons = e.value.response["CancellationReasons"]
    assert [r["Code"] for r in reasons] == ["None", "ConditionalCheckFailed", "None", "ConditionalCheckFailed"]
    assert reasons[1]["Item"] == {"pk": S("taken"), "v": S("original")}
    assert "Item" not in reasons[3]
    assert reasons[1].get("Message", "The conditional request failed") == "The conditional request failed"
    assert get(ddb, a, {"pk": S("new1")}) is None
    assert get(ddb, a, {"pk": S("taken")})["v"] == S("original")
    assert get(ddb, b, {"pk": S("y"), "sk": N(1)}) is None


@pytest.mark.usefixtures("basalt_only")  # moto applies a repeated token again
def test_client_request_token_is_idempotent(ddb, two_tables):
    a, _ = two_tables
    token = str(uuid.uuid4())
    items = [{"Update": {"TableName": a, "Key": {"pk": S("ctr")}, "UpdateExpression": "ADD n :one",
                         "ExpressionAttributeValues": {":one": N(1)}}}]
    ddb.transact_write_items(TransactItems=items, ClientRequestToken=token)
    # The same request again within 10 minutes succeeds without applying twice.
    ddb.transact_write_items(TransactItems=items, ClientRequestToken=token)
    assert get(ddb, a, {"pk": S("ctr")})["n"] == N(1)
    # Another token applies again.
    ddb.transact_write_items(TransactItems=items, ClientRequestToken=str(uuid.uuid4()))
    assert get(ddb, a, {"pk": S("ctr")})["n"] == N(2)
    other = [{"Update": {**items[0]["Update"], "ExpressionAttributeValues": {":one": N(5)}}}]
    with pytest.raises(ClientError) as e:
        ddb.transact_write_items(TransactItems=other, ClientRequestToken=token)
    assert error(e)[0] == "IdempotentParameterMismatchException"
    assert get(ddb, a, {"pk": S("ctr")})["n"] == N(2)


def test_transaction_validation(ddb, two_tables, on_basalt):
    a, _ = two_tables
    with pytest.raises(ClientError) as e:
        ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": a, "Item": {"pk": S("same"), "v": N(1)}}},
            {"ConditionCheck": {"TableName": a, "Key": {"pk": S("same")},
                                "ConditionExpression": "attribute_not_exists(v)"}}])
    assert_error(e, "ValidationException", "Transaction request cannot include multiple operations on one item")
    assert get(ddb, a, {"pk": S("same")}) is None
    if on_basalt:  # moto caps transactions at 25 actions; transaction-apis: up to 100
        ddb.transact_write_items(TransactItems=[{"Put": {"TableName": a, "Item": {"pk": S(f"k{i}")}}}
                                                for i in range(100)])
        assert get(ddb, a, {"pk": S("k99")}) is not None
    with pytest.raises(ClientError) as e:
        ddb.transact_write_items(TransactItems=[{"Put": {"TableName": a, "Item": {"pk": S(f"m{i}")}}}
                                                for i in range(101)])
    assert error(e)[0] == "ValidationException"
    assert "Member must have length less than or equal to 100" in error(e)[1]
    with pytest.raises(ClientError) as e:
        ddb.transact_write_items(TransactItems=[{"Put": {"TableName": a + "-missing", "Item": {"pk": S("x")}}}])
    assert_error(e, "ResourceNotFoundException", "Requested resource not found")


def test_transact_get_items(ddb, two_tables, on_basalt):
    a, b = two_tables
    ddb.put_item(TableName=a, Item={"pk": S("one"), "v": N(1), "w": S("w")})
    ddb.put_item(TableName=b, Item={"pk": S("two"), "sk": N(2), "v": N(2)})
    out = ddb.transact_get_items(TransactItems=[
        {"Get": {"TableName": b, "Key": {"pk": S("two"), "sk": N(2)}}},
        {"Get": {"TableName": a, "Key": {"pk": S("nobody")}}},
        {"Get": {"TableName": a, "Key": {"pk": S("one")}, "ProjectionExpression": "v"}}])
    # One response per request, in request order; a missing item is an empty response.
    got = [r.get("Item") for r in out["Responses"]]
    assert got[:2] == [{"pk": S("two"), "sk": N(2), "v": N(2)}, None]
    if on_basalt:  # moto ignores the projection
        assert got[2] == {"v": N(1)}


# --- PartiQL ------------------------------------------------------------------------------
# Basalt only: moto's PartiQL parser answers 500 to set literals and to parameters in INSERT,
# and its ExecuteTransaction inserts duplicates. Syntax per ql-reference.insert / .update.


@pytest.mark.usefixtures("basalt_only")
def test_partiql_insert_select_update_delete(ddb, two_tables):
    _, t = two_tables
    ddb.execute_statement(
        Statement=f"INSERT INTO \"{t}\" VALUE {{'pk': 'a', 'sk': 1, 'body': 'x', 'labels': <<'p', 'q'>>}}")
    # Conformance: tier2/partiql/executeStatement.test.ts -- INSERT is not an upsert.
    with pytest.raises(ClientError) as e:
        ddb.execute_statement(Statement=f"INSERT INTO \"{t}\" VALUE {{'pk': 'a', 'sk': 1, 'body': 'again'}}")
    assert error(e)[0] == "DuplicateItemException"
    got = get(ddb, t, {"pk": S("a"), "sk": N(1)})
    assert got["body"] == S("x") and sorted(got["labels"]["SS"]) == ["p", "q"]
    out = ddb.execute_statement(Statement=f"SELECT * FROM \"{t}\" WHERE pk = 'a' AND sk = 1")
    assert out["Items"][0]["body"] == S("x")
    ddb.execute_statement(Statement=f"UPDATE \"{t}\" SET body = 'y' SET extra = 5 WHERE pk = 'a' AND sk = 1")
    got = get(ddb, t, {"pk": S("a"), "sk": N(1)})
    assert got["body"] == S("y") and got["extra"] == N(5)
    ddb.execute_statement(Statement=f"UPDATE \"{t}\" REMOVE extra WHERE pk = 'a' AND sk = 1")
    assert "extra" not in get(ddb, t, {"pk": S("a"), "sk": N(1)})
    out = ddb.execute_statement(Statement=f"SELECT body FROM \"{t}\" WHERE pk = 'a'")
    assert out["Items"] == [{"body": S("y")}]
    ddb.execute_statement(Statement=f"DELETE FROM \"{t}\" WHERE pk = 'a' AND sk = 1")
    assert get(ddb, t, {"pk": S("a"), "sk": N(1)}) is None
    assert ddb.execute_statement(Statement=f"SELECT * FROM \"{t}\" WHERE pk = 'a'")["Items"] == []
    with pytest.raises(ClientError) as e:
        ddb.execute_statement(Statement="SELECT * FROM \"no-such-table-x\" WHERE pk = 'a'")
    assert error(e)[0] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        ddb.execute_statement(Statement="SELEKT * FROM nowhere")
    assert error(e)[0] == "ValidationException"


@pytest.mark.usefixtures("basalt_only")
def test_partiql_parameters_and_next_token(ddb, two_tables):
    _, t = two_tables
    for i in range(7):
        ddb.execute_statement(Statement=f"INSERT INTO \"{t}\" VALUE {{'pk': ?, 'sk': ?, 'n': ?}}",
                              Parameters=[S("p"), N(i), N(i * 10)])
    out = ddb.execute_statement(Statement=f"SELECT sk, n FROM \"{t}\" WHERE pk = ? AND sk >= ?",
                                Parameters=[S("p"), N(5)])
    assert sorted(int(i["sk"]["N"]) for i in out["Items"]) == [5, 6]
    seen, token, pages = [], None, 0
    while True:
        kw = {"NextToken": token} if token else {}
        out = ddb.execute_statement(Statement=f"SELECT * FROM \"{t}\" WHERE pk = ?", Parameters=[S("p")], Limit=3, **kw)
        seen += [int(i["sk"]["N"]) for i in out["Items"]]
        pages += 1
        token = out.get("NextToken")
        if not token:
            break
    assert seen == list(range(7)) and pages >= 3
    out = ddb.execute_statement(Statement=f"SELECT * FROM \"{t}\" WHERE pk = ? AND n BETWEEN ? AND ?",
                                Parameters=[S("p"), N(15), N(45)])
    assert sorted(int(i["n"]["N"]) for i in out["Items"]) == [20, 30, 40]


@pytest.mark.usefixtures("basalt_only")
def test_partiql_batch_execute_statement(ddb, two_tables):
    a, _ = two_tables
    ddb.put_item(TableName=a, Item={"pk": S("b1"), "v": S("old")})
    ddb.put_item(TableName=a, Item={"pk": S("b3"), "v": S("there")})
    # A batch is all reads or all writes (ql-reference.multiplestatements.batching).
    out = ddb.batch_execute_statement(Statements=[
        {"Statement": f"INSERT INTO \"{a}\" VALUE {{'pk': 'b2', 'v': 'new'}}"},
        {"Statement": f"UPDATE \"{a}\" SET v = 'changed' WHERE pk = 'b1'"},
        {"Statement": f"INSERT INTO \"{a}\" VALUE {{'pk': 'b3', 'v': 'dup'}}"},
    ])["Responses"]
    assert len(out) == 3
    assert "Error" not in out[0] and "Error" not in out[1]
    # Each statement stands alone: the failed one does not undo the others.
    assert out[2]["Error"]["Code"] == "DuplicateItem"
    assert get(ddb, a, {"pk": S("b3")})["v"] == S("there")
    out = ddb.batch_execute_statement(Statements=[
        {"Statement": f"SELECT * FROM \"{a}\" WHERE pk = ?", "Parameters": [S("b1")]},
        {"Statement": f"SELECT v FROM \"{a}\" WHERE pk = 'b2'"},
        {"Statement": f"SELECT * FROM \"{a}\" WHERE pk = 'nobody'"},
        {"Statement": "SELECT * FROM \"no-such-table-x\" WHERE pk = 'x'"},
    ])["Responses"]
    assert len(out) == 4
    assert out[0]["Item"] == {"pk": S("b1"), "v": S("changed")}
    assert out[1]["Item"] == {"v": S("new")}
    assert "Item" not in out[2] and "Error" not in out[2]
    # Conformance: tier2/partiql/batchExecuteStatement.test.ts (the short code, per entry).
    assert out[3]["Error"]["Code"] == "ResourceNotFound"


@pytest.mark.usefixtures("basalt_only")
def test_partiql_execute_transaction_is_atomic(ddb, two_tables):
    a, _ = two_tables
    ddb.put_item(TableName=a, Item={"pk": S("t-dup"), "v": S("existing")})
    ddb.execute_transaction(TransactStatements=[
        {"Statement": f"INSERT INTO \"{a}\" VALUE {{'pk': 't1', 'v': 'one'}}"},
        {"Statement": f"UPDATE \"{a}\" SET v = ? WHERE pk = 't-dup'", "Parameters": [S("updated")]}])
    assert get(ddb, a, {"pk": S("t1")})["v"] == S("one")
    assert get(ddb, a, {"pk": S("t-dup")})["v"] == S("updated")
    with pytest.raises(ClientError) as e:
        ddb.execute_transaction(TransactStatements=[
            {"Statement": f"INSERT INTO \"{a}\" VALUE {{'pk': 't2', 'v': 'two'}}"},
            {"Statement": f"INSERT INTO \"{a}\" VALUE {{'pk': 't-dup', 'v': 'clash'}}"}])
    assert error(e)[0] == "TransactionCanceledException"
    assert get(ddb, a, {"pk": S("t2")}) is None, "the transaction was all-or-nothing"
    assert get(ddb, a, {"pk": S("t-dup")})["v"] == S("updated")
    out = ddb.execute_transaction(TransactStatements=[
        {"Statement": f"SELECT * FROM \"{a}\" WHERE pk = 't1'"},
        {"Statement": f"SELECT v FROM \"{a}\" WHERE pk = 'nobody'"}])
    assert [r.get("Item") for r in out["Responses"]] == [{"pk": S("t1"), "v": S("one")}, None]
