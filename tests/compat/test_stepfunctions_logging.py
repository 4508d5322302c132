"""Execution history to CloudWatch Logs (`loggingConfiguration`, the Developer Guide's "Using
CloudWatch Logs to log execution history" and "Log levels"): EXPRESS executions (sync and
async) and STANDARD ones write their events to the log group, a stream per execution
(`states/<machine>/...`), at the level asked (ALL, ERROR, FATAL), with input and output only
when `includeExecutionData` is true.
"""
from __future__ import annotations

import json
import time

from conftest import ACCOUNT, REGION, unique
from sfn_helpers import ROLE, machine, sfn, start, wait_done  # noqa: F401 (fixture)


def log_group(make_client):
    logs = make_client("logs")
    name = f"/aws/vendedlogs/states/{unique('sfn')}"
    logs.create_log_group(logGroupName=name)
    return logs, name, f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}:*"


def logging(arn, level, data):
    return {"level": level, "includeExecutionData": data,
            "destinations": [{"cloudWatchLogsLogGroup": {"logGroupArn": arn}}]}


def events_of(logs, group, count, timeout=10.0):
    deadline = time.time() + timeout
    while True:
        found = logs.filter_log_events(logGroupName=group)["events"]
        if len(found) >= count or time.time() > deadline:
            return found
        time.sleep(0.1)


def test_express_sync_execution_logs_its_whole_history(sfn, make_client):
    logs, group, arn = log_group(make_client)
    name = unique("logged")
    m = machine(sfn, {"StartAt": "P", "States": {
        "P": {"Type": "Pass", "Result": {"ok": True}, "Next": "W"},
        "W": {"Type": "Wait", "Seconds": 0, "End": True}}},
        name=name, type_="EXPRESS", loggingConfiguration=logging(arn, "ALL", True))
    out = sfn.start_sync_execution(stateMachineArn=m, input=json.dumps({"n": 1}))
    assert out["status"] == "SUCCEEDED"
    found = events_of(logs, group, 6)
    records = [json.loads(e["message"]) for e in found]
    assert [r["type"] for r in records] == ["ExecutionStarted", "PassStateEntered", "PassStateExited",
                                            "WaitStateEntered", "WaitStateExited", "ExecutionSucceeded"]
    assert {e["logStreamName"] for e in found} == {next(iter({e["logStreamName"] for e in found}))}
    assert found[0]["logStreamName"].startswith(f"states/{name}/")
    assert all(r["execution_arn"] == out["executionArn"] for r in records)
    assert [r["id"] for r in records] == [str(i) for i in range(1, 7)]
    assert records[0]["previous_event_id"] == "0" and records[0]["details"]["input"] == '{"n":1}'
    assert json.loads(records[-1]["details"]["output"]) == {"ok": True}
    assert all(e["timestamp"] == int(r["event_timestamp"]) for e, r in zip(found, records))


def test_levels_and_execution_data(sfn, make_client):
    logs, group, arn = log_group(make_client)
    failing = {"StartAt": "P", "States": {
        "P": {"Type": "Pass", "Next": "F"},
        "F": {"Type": "Fail", "Error": "Broken", "Cause": "on purpose"}}}
    # Async EXPRESS at ERROR, without data: the failures only, and no input/output.
    m = machine(sfn, failing, type_="EXPRESS", loggingConfiguration=logging(arn, "ERROR", False))
    start(sfn, m, {"secret": "s3cr3t"})
    records = [json.loads(e["message"]) for e in events_of(logs, group, 2)]
    assert [r["type"] for r in records] == ["FailStateEntered", "ExecutionFailed"]
    assert records[1]["details"] == {"error": "Broken", "cause": "on purpose"}
    assert all("s3cr3t" not in json.dumps(r) for r in records)

    # STANDARD at FATAL: the execution's end only.
    logs2, group2, arn2 = log_group(make_client)
    ex = start(sfn, machine(sfn, failing, loggingConfiguration=logging(arn2, "FATAL", True)))
    assert wait_done(sfn, ex)["status"] == "FAILED"
    records = [json.loads(e["message"]) for e in events_of(logs2, group2, 1)]
    time.sleep(0.3)
    records = [json.loads(e["message"]) for e in logs2.filter_log_events(logGroupName=group2)["events"]]
    assert [r["type"] for r in records] == ["ExecutionFailed"]
    assert records[0]["execution_arn"] == ex

    # OFF (and no configuration) logs nothing.
    logs3, group3, arn3 = log_group(make_client)
    ex = start(sfn, machine(sfn, failing, loggingConfiguration=logging(arn3, "OFF", False)))
    wait_done(sfn, ex)
    time.sleep(0.3)
    assert logs3.filter_log_events(logGroupName=group3)["events"] == []
