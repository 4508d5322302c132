"""RedriveExecution (AWS Step Functions API Reference, and the Developer Guide's "Restarting
state machine executions with redrive"): a failed, aborted or timed-out Standard execution
continues from the state that did not complete, with the input it had; the states that
completed are not run again; the history goes on with ExecutionRedriven; redriveCount,
redriveDate and redriveStatus in DescribeExecution and ListExecutions (with redriveFilter);
ExecutionNotRedrivable for what cannot be redriven; the client token makes a retry answer once.
"""
from __future__ import annotations

import json
import time

import pytest

from conftest import unique
from sfn_helpers import error, history, machine, sfn, start, wait_done  # noqa: F401 (fixture)


@pytest.fixture(scope="module")
def ddb(make_client):
    return make_client("dynamodb")


def test_a_failed_execution_continues_from_the_failed_state(sfn, ddb):
    table = unique("redrive")
    arn = machine(sfn, {
        "StartAt": "Prepare",
        "States": {
            "Prepare": {"Type": "Pass", "Parameters": {"key.$": "$.key", "at.$": "$$.State.EnteredTime"},
                        "ResultPath": "$.prepared", "Next": "Read"},
            "Read": {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:getItem",
                     "Parameters": {"TableName": table, "Key": {"pk": {"S.$": "$.key"}}},
                     "ResultSelector": {"value.$": "$.Item.v.S"}, "ResultPath": "$.read", "Next": "Done"},
            "Done": {"Type": "Pass", "End": True},
        },
    })
    execution = start(sfn, arn, {"key": "k1"})
    d = wait_done(sfn, execution)
    assert (d["status"], d["error"]) == ("FAILED", "DynamoDB.ResourceNotFoundException"), d
    assert (d["redriveStatus"], d["redriveCount"]) == ("REDRIVABLE", 0)
    assert "redriveDate" not in d
    prepared_at = None
    for e in history(sfn, execution):
        if e["type"] == "PassStateExited" and e["stateExitedEventDetails"]["name"] == "Prepare":
            prepared_at = json.loads(e["stateExitedEventDetails"]["output"])["prepared"]["at"]

    ddb.create_table(TableName=table, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST")
    ddb.put_item(TableName=table, Item={"pk": {"S": "k1"}, "v": {"S": "hello"}})
    token = unique("tok")
    redriven = sfn.redrive_execution(executionArn=execution, clientToken=token)["redriveDate"]
    # The same request again (a retry) answers the same and redrives nothing more.
    assert sfn.redrive_execution(executionArn=execution, clientToken=token)["redriveDate"] == redriven
    d = wait_done(sfn, execution)
    assert d["status"] == "SUCCEEDED", d
    out = json.loads(d["output"])
    assert out["read"] == {"value": "hello"}
    # Prepare ran once: its output is the one from the first attempt.
    assert out["prepared"] == {"key": "k1", "at": prepared_at}
    assert (d["redriveCount"], d["redriveDate"]) == (1, redriven)
    assert d["redriveStatus"] == "NOT_REDRIVABLE" and "SUCCEEDED" in d["redriveStatusReason"]
    assert "error" not in d and "cause" not in d

    events = history(sfn, execution)
    kinds = [e["type"] for e in events]
    assert kinds.count("ExecutionRedriven") == 1
    assert kinds.count("ExecutionFailed") == 1 and kinds[-1] == "ExecutionSucceeded"
    assert [e["stateEnteredEventDetails"]["name"] for e in events if e["type"].endswith("StateEntered")] == \
        ["Prepare", "Read", "Read", "Done"]
    r = next(e for e in events if e["type"] == "ExecutionRedriven")
    assert r["executionRedrivenEventDetails"] == {"redriveCount": 1}
    assert r["previousEventId"] == kinds.index("ExecutionFailed") + 1
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))

    listed = {x["executionArn"]: x for x in sfn.list_executions(stateMachineArn=arn, redriveFilter="REDRIVEN")["executions"]}
    assert list(listed) == [execution] and listed[execution]["redriveCount"] == 1
    assert listed[execution]["redriveDate"] == redriven
    assert sfn.list_executions(stateMachineArn=arn, redriveFilter="NOT_REDRIVEN")["executions"] == []

    with pytest.raises(sfn.exceptions.ExecutionNotRedrivable) as e:
        sfn.redrive_execution(executionArn=execution)
    assert "SUCCEEDED" in error(e)[1]


def test_a_stopped_execution_redrives_into_the_state_it_was_in(sfn):
    arn = machine(sfn, {
        "StartAt": "First",
        "States": {
            "First": {"Type": "Pass", "Result": 1, "ResultPath": "$.first", "Next": "Hold"},
            "Hold": {"Type": "Wait", "Seconds": 600, "Next": "Done"},
            "Done": {"Type": "Pass", "End": True},
        },
    })
    execution = start(sfn, arn, {"n": 7})
    deadline = time.time() + 10
    while "WaitStateEntered" not in [e["type"] for e in history(sfn, execution)]:
        assert time.time() < deadline
        time.sleep(0.05)
    with pytest.raises(sfn.exceptions.ExecutionNotRedrivable) as e:
        sfn.redrive_execution(executionArn=execution)
    assert "RUNNING" in error(e)[1]
    sfn.stop_execution(executionArn=execution, error="Manual", cause="stopped by the test")
    d = wait_done(sfn, execution)
    assert (d["status"], d["redriveStatus"]) == ("ABORTED", "REDRIVABLE")
    sfn.redrive_execution(executionArn=execution)
    d = sfn.describe_execution(executionArn=execution)
    assert (d["status"], d["redriveCount"]) == ("RUNNING", 1)
    assert "stopDate" not in d
    entered = [e["stateEnteredEventDetails"] for e in history(sfn, execution) if e["type"].endswith("StateEntered")]
    assert [x["name"] for x in entered] == ["First", "Hold", "Hold"]
    assert json.loads(entered[-1]["input"]) == {"n": 7, "first": 1}
    sfn.stop_execution(executionArn=execution)
    assert wait_done(sfn, execution)["redriveCount"] == 1


def test_what_cannot_be_redriven(sfn):
    done = start(sfn, machine(sfn, {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}))
    assert wait_done(sfn, done)["status"] == "SUCCEEDED"
    with pytest.raises(sfn.exceptions.ExecutionNotRedrivable):
        sfn.redrive_execution(executionArn=done)
    d = sfn.describe_execution(executionArn=done)
    assert d["redriveStatus"] == "NOT_REDRIVABLE"

    express = machine(sfn, {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "E"}}}, type_="EXPRESS")
    ex = start(sfn, express)
    with pytest.raises(sfn.exceptions.ExecutionNotRedrivable) as e:
        sfn.redrive_execution(executionArn=ex)
    assert "Express" in error(e)[1]

    missing = done.rsplit(":", 1)[0] + ":" + unique("nope")
    with pytest.raises(sfn.exceptions.ExecutionDoesNotExist):
        sfn.redrive_execution(executionArn=missing)
    with pytest.raises(sfn.exceptions.InvalidArn):
        sfn.redrive_execution(executionArn="arn:aws:states:us-east-1:000000000000:stateMachine:x")

    # A Fail state fails again when redriven, and can be redriven again.
    failing = start(sfn, machine(sfn, {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "E", "Cause": "c"}}}))
    assert wait_done(sfn, failing)["status"] == "FAILED"
    sfn.redrive_execution(executionArn=failing)
    d = wait_done(sfn, failing)
    assert (d["status"], d["error"], d["redriveCount"], d["redriveStatus"]) == ("FAILED", "E", 1, "REDRIVABLE")


def test_ended_executions_are_forgotten_after_the_retention_period(shape_checker, tmp_path):
    """Step Functions keeps an ended execution 90 days (BASALT_SFN_RETENTION_SECS shortens
    it here): then DescribeExecution, GetExecutionHistory and ListExecutions no longer know
    it and its name can start a new execution; a running one is kept."""
    from conftest import BasaltServer, make_client_factory
    srv = BasaltServer(data_dir=str(tmp_path), name="basalt-sfn-retention",
                       env={"BASALT_SFN_RETENTION_SECS": "2"}).start()
    try:
        sfn = make_client_factory(shape_checker, srv.endpoint)("stepfunctions", inject_host_prefix=False)
        arn = machine(sfn, {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
        waiting = machine(sfn, {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 600, "End": True}}})
        done = start(sfn, arn, name="kept-name")
        running = start(sfn, waiting)
        assert wait_done(sfn, done)["status"] == "SUCCEEDED"
        assert history(sfn, done)
        deadline = time.time() + 15
        while True:
            try:
                sfn.describe_execution(executionArn=done)
            except sfn.exceptions.ExecutionDoesNotExist:
                break
            assert time.time() < deadline, "the ended execution outlived its retention"
            time.sleep(0.2)
        with pytest.raises(sfn.exceptions.ExecutionDoesNotExist):
            sfn.get_execution_history(executionArn=done)
        assert sfn.list_executions(stateMachineArn=arn)["executions"] == []
        assert sfn.describe_execution(executionArn=running)["status"] == "RUNNING"
        again = start(sfn, arn, name="kept-name")
        assert again == done and wait_done(sfn, again)["status"] == "SUCCEEDED"
        sfn.stop_execution(executionArn=running)
    finally:
        srv.stop()
        assert not srv.panics()


def _counter_table(ddb, name):
    ddb.create_table(TableName=name, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST")


def _bump(table, key_path):
    """A task that counts its runs in `table` under the key at `key_path`."""
    return {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:updateItem",
            "Parameters": {"TableName": table, "Key": {"pk": {"S.$": key_path}},
                           "UpdateExpression": "ADD runs :one",
                           "ExpressionAttributeValues": {":one": {"N": "1"}}},
            "ResultPath": None}


def _read(table, key_path):
    """A task that fails (States.Runtime: no Item) until `table` holds the key."""
    return {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:getItem",
            "Parameters": {"TableName": table, "Key": {"pk": {"S.$": key_path}}},
            "ResultSelector": {"v.$": "$.Item.v.S"}, "End": True}


def _runs(ddb, table, key):
    return int(ddb.get_item(TableName=table, Key={"pk": {"S": key}})["Item"]["runs"]["N"])


def test_a_redriven_parallel_runs_only_the_branch_that_failed(sfn, ddb):
    counts, values = unique("runs"), unique("values")
    _counter_table(ddb, counts)
    _counter_table(ddb, values)
    arn = machine(sfn, {"StartAt": "Both", "States": {"Both": {"Type": "Parallel", "End": True, "Branches": [
        {"StartAt": "Count", "States": {"Count": {**_bump(counts, "$.key"), "Next": "Ok"},
                                        "Ok": {"Type": "Pass", "Result": "a", "End": True}}},
        {"StartAt": "Count2", "States": {"Count2": {**_bump(counts, "$.other"), "Next": "Read"},
                                         "Read": _read(values, "$.key")}}]}}})
    execution = start(sfn, arn, {"key": "k", "other": "o"})
    assert wait_done(sfn, execution)["status"] == "FAILED"
    ddb.put_item(TableName=values, Item={"pk": {"S": "k"}, "v": {"S": "found"}})
    sfn.redrive_execution(executionArn=execution)
    d = wait_done(sfn, execution)
    assert d["status"] == "SUCCEEDED", d
    assert json.loads(d["output"]) == ["a", {"v": "found"}]
    # The branch that succeeded kept its result and did not run again; the failed one
    # continued from its failed state, so its first state did not run again either (API
    # Reference, RedriveExecution: "it continues the failed execution from the unsuccessful
    # step ... doesn't rerun these [successful] steps"; for Parallel, only the failed
    # branches are redriven).
    assert (_runs(ddb, counts, "k"), _runs(ddb, counts, "o")) == (1, 1)


def test_a_redriven_distributed_map_continues_its_map_run(sfn, ddb):
    counts, values = unique("runs"), unique("values")
    _counter_table(ddb, counts)
    _counter_table(ddb, values)
    for k in ("a", "c"):
        ddb.put_item(TableName=values, Item={"pk": {"S": k}, "v": {"S": k.upper()}})
    arn = machine(sfn, {"StartAt": "Each", "States": {"Each": {
        # One iteration at a time, so that a has succeeded when b fails (iterations in
        # flight when the run fails are aborted, and a redrive runs them again).
        "Type": "Map", "ItemsPath": "$.keys", "End": True, "Label": "Keys", "MaxConcurrency": 1,
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                          "StartAt": "Count", "States": {"Count": {**_bump(counts, "$"), "Next": "Read"},
                                                         "Read": _read(values, "$")}}}}})
    execution = start(sfn, arn, {"keys": ["a", "b", "c"]})
    assert wait_done(sfn, execution)["status"] == "FAILED"
    run_arn = sfn.list_map_runs(executionArn=execution)["mapRuns"][0]["mapRunArn"]
    d = sfn.describe_map_run(mapRunArn=run_arn)
    assert d["status"] == "FAILED" and d["redriveCount"] == 0 and "redriveDate" not in d

    ddb.put_item(TableName=values, Item={"pk": {"S": "b"}, "v": {"S": "B"}})
    before = {c["name"]: c["status"] for c in sfn.list_executions(mapRunArn=run_arn)["executions"]}
    assert sorted(before.values()) == ["FAILED", "SUCCEEDED"], before
    sfn.redrive_execution(executionArn=execution)
    done = wait_done(sfn, execution)
    assert done["status"] == "SUCCEEDED", done
    assert json.loads(done["output"]) == [{"v": "A"}, {"v": "B"}, {"v": "C"}]
    # The failed child ran again under the same ARN (redriven in place); c started anew.
    after = sfn.list_executions(mapRunArn=run_arn)["executions"]
    assert len(after) == 3 and all(c["status"] == "SUCCEEDED" for c in after), after
    assert set(before) <= {c["name"] for c in after}
    assert sorted(c["redriveCount"] for c in after) == [0, 0, 1]
    b = next(c for c in after if c["redriveCount"] == 1)
    assert history(sfn, b["executionArn"])[-1]["type"] == "ExecutionSucceeded"
    # Only the iteration that failed ran again; c, never started before, ran once.
    assert (_runs(ddb, counts, "a"), _runs(ddb, counts, "b"), _runs(ddb, counts, "c")) == (1, 2, 1)
    # The same Map Run continued: redriven once, every item succeeded.
    runs = sfn.list_map_runs(executionArn=execution)["mapRuns"]
    assert [r["mapRunArn"] for r in runs] == [run_arn]
    d = sfn.describe_map_run(mapRunArn=run_arn)
    assert (d["status"], d["redriveCount"], d["itemCounts"]["succeeded"]) == ("SUCCEEDED", 1, 3)
    assert d["redriveDate"] >= d["startDate"]
    events = history(sfn, execution)
    redriven = [e for e in events if e["type"] == "MapRunRedriven"]
    assert [e["mapRunRedrivenEventDetails"] for e in redriven] == [{"mapRunArn": run_arn, "redriveCount": 1}]
    assert [e["type"] for e in events].count("MapRunStarted") == 1
