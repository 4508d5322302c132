"""Map Runs (AWS Step Functions API Reference: DescribeMapRun, ListMapRuns, UpdateMapRun; the
Developer Guide's "Examining Map Runs"): a distributed Map state's run reports its status and
its child executions and items by state while it runs and after it ends; UpdateMapRun changes
the concurrency and tolerated failures of a run in progress; the history's MapRunStarted names
the run.
"""
from __future__ import annotations

import json
import time

import pytest

from sfn_helpers import error, history, machine, sfn, start, wait_done  # noqa: F401 (fixture)


def distributed(items_path="$.items", **extra):
    """A distributed Map whose iterations wait `$.wait` seconds, then fail when `$.bad`."""
    return {"StartAt": "Fan", "States": {"Fan": {
        "Type": "Map", "ItemsPath": items_path, "Label": "Fan", "End": True,
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "Rest", "States": {
                "Rest": {"Type": "Wait", "SecondsPath": "$.wait", "Next": "Bad?"},
                "Bad?": {"Type": "Choice", "Choices": [{"Variable": "$.bad", "BooleanEquals": True,
                                                         "Next": "Fail"}], "Default": "Ok"},
                "Fail": {"Type": "Fail", "Error": "Item.Bad", "Cause": "bad item"},
                "Ok": {"Type": "Pass", "End": True}}},
        **extra}}}


def map_run_of(sfn, execution, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        runs = sfn.list_map_runs(executionArn=execution)["mapRuns"]
        if runs:
            return runs[0]
        time.sleep(0.05)
    raise AssertionError("no Map Run listed")


def counts(d, member="itemCounts"):
    c = d[member]
    return {k: c[k] for k in ("pending", "running", "succeeded", "failed", "aborted", "total")}


def test_a_map_run_reports_progress_and_update_raises_its_concurrency(sfn):
    arn = machine(sfn, distributed(MaxConcurrency=2))
    items = [{"wait": 2, "bad": False} for _ in range(5)]
    execution = start(sfn, arn, {"items": items})
    listed = map_run_of(sfn, execution)
    run_arn = listed["mapRunArn"]
    prefix = arn.replace(":stateMachine:", ":mapRun:") + "/Fan:"
    assert run_arn.startswith(prefix), run_arn
    assert listed["executionArn"] == execution
    assert listed["stateMachineArn"] == arn + "/Fan"
    assert "stopDate" not in listed

    d = sfn.describe_map_run(mapRunArn=run_arn)
    assert (d["status"], d["executionArn"], d["maxConcurrency"]) == ("RUNNING", execution, 2)
    assert (d["toleratedFailureCount"], d["toleratedFailurePercentage"]) == (0, 0.0)
    assert counts(d) == {"pending": 3, "running": 2, "succeeded": 0, "failed": 0, "aborted": 0, "total": 5}
    assert counts(d, "executionCounts") == counts(d)

    # No limit from now on: the three pending items start at once, not as slots free up.
    sfn.update_map_run(mapRunArn=run_arn, maxConcurrency=0, toleratedFailurePercentage=10.5)
    d = sfn.describe_map_run(mapRunArn=run_arn)
    assert (d["maxConcurrency"], d["toleratedFailurePercentage"]) == (0, 10.5)
    assert counts(d)["running"] == 5, d

    done = wait_done(sfn, execution)
    assert done["status"] == "SUCCEEDED", done
    d = sfn.describe_map_run(mapRunArn=run_arn)
    assert d["status"] == "SUCCEEDED"
    assert counts(d) == {"pending": 0, "running": 0, "succeeded": 5, "failed": 0, "aborted": 0, "total": 5}
    assert d["itemCounts"]["resultsWritten"] == 0, "no ResultWriter"
    assert d["startDate"] <= d["stopDate"]
    # Updating a run that ended is refused.
    assert error(_raises(lambda: sfn.update_map_run(mapRunArn=run_arn, maxConcurrency=3)))[0] \
        == "ValidationException"

    started = [e for e in history(sfn, execution) if e["type"] == "MapRunStarted"]
    assert [e["mapRunStartedEventDetails"]["mapRunArn"] for e in started] == [run_arn]
    assert "MapRunSucceeded" in [e["type"] for e in history(sfn, execution)]

    # Each iteration is a child execution of the Map Run, listed by ListExecutions(mapRunArn).
    children = sfn.list_executions(mapRunArn=run_arn)["executions"]
    assert len(children) == 5
    execution_prefix = arn.replace(":stateMachine:", ":execution:") + "/Fan:"
    for c in children:
        assert c["executionArn"] == execution_prefix + c["name"], c
        assert (c["stateMachineArn"], c["mapRunArn"], c["status"], c["itemCount"]) == \
            (arn + "/Fan", run_arn, "SUCCEEDED", 1)
        assert c["startDate"] <= c["stopDate"]
    assert len({c["name"] for c in children}) == 5
    # Pages, and the status filter.
    first = sfn.list_executions(mapRunArn=run_arn, maxResults=2)
    assert len(first["executions"]) == 2 and "nextToken" in first
    rest = sfn.list_executions(mapRunArn=run_arn, maxResults=10, nextToken=first["nextToken"])
    assert [c["name"] for c in first["executions"] + rest["executions"]] == [c["name"] for c in children]
    assert sfn.list_executions(mapRunArn=run_arn, statusFilter="FAILED")["executions"] == []
    # A child describes itself and has its own history: its states' events, not the parent's.
    child = sfn.describe_execution(executionArn=children[0]["executionArn"])
    assert (child["status"], child["mapRunArn"], child["stateMachineArn"]) == ("SUCCEEDED", run_arn, arn + "/Fan")
    assert json.loads(child["input"]) == {"wait": 2, "bad": False}
    assert json.loads(child["output"]) == {"wait": 2, "bad": False}
    events = history(sfn, children[0]["executionArn"])
    types = [e["type"] for e in events]
    assert types[0] == "ExecutionStarted" and types[-1] == "ExecutionSucceeded", types
    assert "WaitStateEntered" in types and "ChoiceStateEntered" in types and "PassStateExited" in types
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    assert "WaitStateEntered" not in [e["type"] for e in history(sfn, execution)]


def test_batches_are_counted_by_items_and_failures_past_the_threshold_fail_the_run(sfn):
    arn = machine(sfn, distributed(MaxConcurrency=1, ToleratedFailureCount=1))
    items = [{"wait": 0, "bad": b} for b in (False, True, False, True, False)]
    execution = start(sfn, arn, {"items": items})
    done = wait_done(sfn, execution)
    assert (done["status"], done["error"]) == ("FAILED", "States.ExceedToleratedFailureThreshold"), done
    run_arn = map_run_of(sfn, execution)["mapRunArn"]
    d = sfn.describe_map_run(mapRunArn=run_arn)
    assert d["status"] == "FAILED"
    assert d["toleratedFailureCount"] == 1
    assert counts(d) == {"pending": 1, "running": 0, "succeeded": 2, "failed": 2, "aborted": 0, "total": 5}
    types = [e["type"] for e in history(sfn, execution)]
    assert "MapRunFailed" in types and "MapRunSucceeded" not in types
    # The failed children say why; the one never started is not listed.
    failed = sfn.list_executions(mapRunArn=run_arn, statusFilter="FAILED")["executions"]
    assert len(failed) == 2
    d = sfn.describe_execution(executionArn=failed[0]["executionArn"])
    assert (d["status"], d["error"], d["cause"]) == ("FAILED", "Item.Bad", "bad item")
    assert len(sfn.list_executions(mapRunArn=run_arn)["executions"]) == 4

    # With an ItemBatcher, executions count batches and items count items.
    batched = machine(sfn, {"StartAt": "Fan", "States": {"Fan": {
        "Type": "Map", "ItemsPath": "$.items", "End": True, "ItemBatcher": {"MaxItemsPerBatch": 2},
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                          "StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}}}})
    execution = start(sfn, batched, {"items": list(range(5))})
    assert wait_done(sfn, execution)["status"] == "SUCCEEDED"
    d = sfn.describe_map_run(mapRunArn=map_run_of(sfn, execution)["mapRunArn"])
    assert (d["itemCounts"]["total"], d["itemCounts"]["succeeded"]) == (5, 5)
    assert (d["executionCounts"]["total"], d["executionCounts"]["succeeded"]) == (3, 3)


def test_stopping_the_execution_aborts_its_map_run(sfn):
    arn = machine(sfn, distributed())
    execution = start(sfn, arn, {"items": [{"wait": 30, "bad": False}] * 3})
    run_arn = map_run_of(sfn, execution)["mapRunArn"]
    sfn.stop_execution(executionArn=execution)
    d = sfn.describe_map_run(mapRunArn=run_arn)
    assert d["status"] == "ABORTED"
    assert counts(d) == {"pending": 0, "running": 0, "succeeded": 0, "failed": 0, "aborted": 3, "total": 3}
    children = sfn.list_executions(mapRunArn=run_arn)["executions"]
    assert [c["status"] for c in children] == ["ABORTED"] * 3
    assert history(sfn, children[0]["executionArn"])[-1]["type"] == "ExecutionAborted"
    assert "stopDate" in sfn.list_map_runs(executionArn=execution)["mapRuns"][0]


def test_errors(sfn):
    assert error(_raises(lambda: sfn.describe_map_run(mapRunArn="not-an-arn")))[0] == "InvalidArn"
    missing = "arn:aws:states:us-east-1:000000000000:mapRun:nope/Fan:00000000-0000-0000-0000-000000000000"
    assert error(_raises(lambda: sfn.describe_map_run(mapRunArn=missing)))[0] == "ResourceNotFound"
    assert error(_raises(lambda: sfn.update_map_run(mapRunArn=missing, maxConcurrency=1)))[0] == "ResourceNotFound"
    assert error(_raises(lambda: sfn.update_map_run(mapRunArn=missing, toleratedFailurePercentage=101)))[0] \
        == "ValidationException"
    gone = "arn:aws:states:us-east-1:000000000000:execution:nope:x"
    assert error(_raises(lambda: sfn.list_map_runs(executionArn=gone)))[0] == "ExecutionDoesNotExist"
    # An execution without a distributed Map has none.
    arn = machine(sfn, {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
    execution = start(sfn, arn)
    wait_done(sfn, execution)
    assert sfn.list_map_runs(executionArn=execution)["mapRuns"] == []


def _raises(call):
    with pytest.raises(Exception) as info:
        call()
    return info.value
