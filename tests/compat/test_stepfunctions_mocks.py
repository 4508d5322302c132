"""Mocked service integrations as Step Functions Local defines them (Developer Guide
"Using mocked service integrations for testing in Step Functions Local" and "Configuration file
for mocked service integrations"): a server started with SFN_MOCK_CONFIG answers the Task
states a test case maps from the file when an execution starts on `stateMachine:Name#TestCase`,
and runs every other state for real. No Lambda function exists here: a mocked Lambda task
never calls the service.
"""
from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT, BASALT_BIN, REGION, BasaltServer, free_port, make_client_factory, unique
from sfn_helpers import ROLE, error, history, types, wait_done

MACHINE = unique("mocked")
EXPRESS = unique("mockedx")
CALLBACK = unique("mockedcb")
TABLE = unique("mocktbl")

MOCKS = {
    "StateMachines": {
        MACHINE: {"TestCases": {
            "Happy": {"Fetch": "FetchOk"},
            "Caught": {"Fetch": "FetchNotReady"},
            "Retried": {"Fetch": "ThrottledThenOk"},
        }},
        EXPRESS: {"TestCases": {"Happy": {"Fetch": "FetchOk"}}},
        CALLBACK: {"TestCases": {"Answered": {"Ask": "FetchOk"}}},
    },
    "MockedResponses": {
        "FetchOk": {"0": {"Return": {"StatusCode": 200, "Payload": {"greeting": "hi"}}}},
        "FetchNotReady": {"0": {"Throw": {"Error": "Lambda.ResourceNotReadyException",
                                          "Cause": "Lambda resource is not ready."}}},
        "ThrottledThenOk": {
            "0": {"Throw": {"Error": "Lambda.TooManyRequestsException", "Cause": "slow down"}},
            "1": {"Return": {"StatusCode": 200, "Payload": {"attempt": 1}}},
        },
    },
}

# Fetch calls a Lambda function that does not exist; Save writes to DynamoDB for real.
DEFINITION = {
    "StartAt": "Fetch",
    "States": {
        "Fetch": {
            "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "no-such-function", "Payload.$": "$"},
            "ResultPath": "$.fetched",
            "Retry": [{"ErrorEquals": ["Lambda.TooManyRequestsException"], "IntervalSeconds": 1,
                       "MaxAttempts": 2, "BackoffRate": 1}],
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Handled"}],
            "Next": "Save",
        },
        "Save": {
            "Type": "Task", "Resource": "arn:aws:states:::dynamodb:putItem",
            "Parameters": {"TableName": TABLE, "Item": {"pk": {"S.$": "$$.Execution.Name"}}},
            "ResultPath": None, "End": True,
        },
        "Handled": {"Type": "Pass", "End": True},
    },
}


@pytest.fixture(scope="module")
def mock_file():
    with tempfile.TemporaryDirectory(prefix="sfn-mocks-") as d:
        cfg = Path(d) / "MockConfigFile.json"
        cfg.write_text(json.dumps(MOCKS))
        yield str(cfg)


@pytest.fixture(scope="module")
def server(mock_file):
    srv = BasaltServer(name="basalt-sfn-mocks", env={"SFN_MOCK_CONFIG": mock_file}).start()
    yield srv
    srv.stop()
    panics = srv.panics()
    srv.close()
    assert not panics, "server panicked:\n" + "\n".join(panics)


@pytest.fixture(scope="module")
def mk(shape_checker, server):
    return make_client_factory(shape_checker, server.endpoint)


@pytest.fixture(scope="module")
def sfn(mk):
    return mk("stepfunctions", inject_host_prefix=False)


@pytest.fixture(scope="module")
def ddb(mk):
    c = mk("dynamodb")
    c.create_table(TableName=TABLE, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                   AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                   BillingMode="PAY_PER_REQUEST")
    return c


@pytest.fixture(scope="module")
def machine_arn(sfn, ddb):
    return sfn.create_state_machine(name=MACHINE, definition=json.dumps(DEFINITION),
                                    roleArn=ROLE)["stateMachineArn"]


def run_case(sfn, machine_arn, case, payload=None):
    name = unique("ex")
    out = sfn.start_execution(stateMachineArn=f"{machine_arn}#{case}", name=name,
                              input=json.dumps(payload or {"who": "me"}))
    return name, out["executionArn"], wait_done(sfn, out["executionArn"])


def fetch_events(sfn, arn):
    """The Task events of Fetch: those after it is entered, before the next state change."""
    evs, inside = [], False
    for e in history(sfn, arn):
        if e["type"].endswith(("StateEntered", "StateExited")):
            inside = (e.get("stateEnteredEventDetails") or {}).get("name") == "Fetch"
        elif inside:
            evs.append(e["type"])
    return evs


def test_mocked_task_returns_and_unmocked_task_runs_for_real(sfn, ddb, machine_arn):
    name, arn, d = run_case(sfn, machine_arn, "Happy")
    assert d["status"] == "SUCCEEDED", d
    # The execution is named and owned as without a test case; the machine ARN has no #Happy.
    assert arn == f"arn:aws:states:{REGION}:{ACCOUNT}:execution:{MACHINE}:{name}"
    assert d["stateMachineArn"] == machine_arn
    out = json.loads(d["output"])
    assert out == {"who": "me", "fetched": {"StatusCode": 200, "Payload": {"greeting": "hi"}}}
    # Save was not mocked: the item is in the table.
    assert ddb.get_item(TableName=TABLE, Key={"pk": {"S": name}})["Item"] == {"pk": {"S": name}}
    evs = fetch_events(sfn, arn)
    assert evs[0] == "TaskScheduled" and evs[-1] == "TaskSucceeded", evs
    assert "TaskStarted" in evs and "TaskFailed" not in evs


def test_mocked_throw_is_caught(sfn, machine_arn):
    _, arn, d = run_case(sfn, machine_arn, "Caught")
    assert d["status"] == "SUCCEEDED", d
    assert json.loads(d["output"])["error"] == {"Error": "Lambda.ResourceNotReadyException",
                                                 "Cause": "Lambda resource is not ready."}
    assert fetch_events(sfn, arn)[-1] == "TaskFailed"
    assert "PassStateEntered" in types(history(sfn, arn))


def test_retry_takes_the_next_invocation_index(sfn, machine_arn):
    _, arn, d = run_case(sfn, machine_arn, "Retried")
    assert d["status"] == "SUCCEEDED", d
    assert json.loads(d["output"])["fetched"]["Payload"] == {"attempt": 1}
    evs = fetch_events(sfn, arn)
    assert evs.count("TaskScheduled") == 2, evs
    assert evs.count("TaskFailed") == 1 and evs.count("TaskSucceeded") == 1, evs
    failed = [e for e in history(sfn, arn) if e["type"] == "TaskFailed"]
    assert failed[0]["taskFailedEventDetails"]["error"] == "Lambda.TooManyRequestsException"


def test_without_a_test_case_the_task_runs_for_real(sfn, machine_arn):
    arn = sfn.start_execution(stateMachineArn=machine_arn, input="{}")["executionArn"]
    d = wait_done(sfn, arn)
    assert d["status"] == "SUCCEEDED", d
    # The function does not exist, so the real call fails and Catch handles it.
    assert json.loads(d["output"])["error"]["Error"].startswith("Lambda.")


def test_unknown_test_case_is_rejected(sfn, machine_arn):
    name = unique("ex")
    with pytest.raises(ClientError) as e:
        sfn.start_execution(stateMachineArn=f"{machine_arn}#NoSuchCase", name=name, input="{}")
    code, message = error(e)
    assert code == "ValidationException" and "NoSuchCase" in message
    assert name not in [x["name"] for x in sfn.list_executions(stateMachineArn=machine_arn)["executions"]]


def test_express_start_sync_execution_uses_mocks(sfn, ddb):
    arn = sfn.create_state_machine(name=EXPRESS, definition=json.dumps(DEFINITION), roleArn=ROLE,
                                   type="EXPRESS")["stateMachineArn"]
    out = sfn.start_sync_execution(stateMachineArn=f"{arn}#Happy", input="{}")
    assert out["status"] == "SUCCEEDED", out
    assert json.loads(out["output"])["fetched"]["Payload"] == {"greeting": "hi"}
    with pytest.raises(ClientError) as e:
        sfn.start_sync_execution(stateMachineArn=f"{arn}#Retried", input="{}")
    assert error(e)[0] == "ValidationException"


def test_wait_for_task_token_return_answers_at_once(sfn):
    # A mocked .waitForTaskToken task returns its Return without waiting for SendTaskSuccess
    # (and without a queue: none exists).
    d = {"StartAt": "Ask", "States": {"Ask": {
        "Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
        "Parameters": {"QueueUrl": "http://nowhere/q", "MessageBody": {"token.$": "$$.Task.Token"}},
        "End": True}}}
    arn = sfn.create_state_machine(name=CALLBACK, definition=json.dumps(d), roleArn=ROLE)["stateMachineArn"]
    ex = sfn.start_execution(stateMachineArn=f"{arn}#Answered", input="{}")["executionArn"]
    d = wait_done(sfn, ex, timeout=10)
    assert d["status"] == "SUCCEEDED", d
    assert json.loads(d["output"])["Payload"] == {"greeting": "hi"}


def test_the_test_case_survives_a_restart(shape_checker, mock_file):
    # The test case and the invocation counts live in the execution record, not the process.
    name = unique("mockedw")
    d = {"StartAt": "Nap", "States": {
        "Nap": {"Type": "Wait", "Seconds": 1, "Next": "Fetch"},
        "Fetch": DEFINITION["States"]["Fetch"] | {"Next": "Done"},
        "Done": {"Type": "Succeed"}, "Handled": {"Type": "Fail", "Error": "Unexpected"}}}
    cfg = json.loads(Path(mock_file).read_text())
    cfg["StateMachines"][name] = {"TestCases": {"Retried": {"Fetch": "ThrottledThenOk"}}}
    with tempfile.TemporaryDirectory(prefix="sfn-mocks-restart-") as data:
        path = Path(data) / "mocks.json"
        path.write_text(json.dumps(cfg))
        srv = BasaltServer(data_dir=Path(data) / "d", name="basalt-sfn-mocks-1",
                           env={"SFN_MOCK_CONFIG": str(path)}).start()
        try:
            c = make_client_factory(shape_checker, srv.endpoint)("stepfunctions", inject_host_prefix=False)
            arn = c.create_state_machine(name=name, definition=json.dumps(d), roleArn=ROLE)["stateMachineArn"]
            ex = c.start_execution(stateMachineArn=f"{arn}#Retried", input="{}")["executionArn"]
            # Killed inside the Wait: a start event claimed by the dead node would wait out
            # its 30 s lease, which is not what this test is about.
            deadline = time.monotonic() + 10
            while "WaitStateEntered" not in types(history(c, ex)) and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            srv.kill9()
        srv2 = BasaltServer(data_dir=Path(data) / "d", name="basalt-sfn-mocks-2",
                            env={"SFN_MOCK_CONFIG": str(path)}).start()
        try:
            c = make_client_factory(shape_checker, srv2.endpoint)("stepfunctions", inject_host_prefix=False)
            out = wait_done(c, ex, timeout=30)
            assert out["status"] == "SUCCEEDED", out
            assert json.loads(out["output"])["fetched"]["Payload"] == {"attempt": 1}
            assert out["stateMachineArn"] == arn
        finally:
            srv2.stop()
            panics = srv.panics() + srv2.panics()
            srv.close()
            srv2.close()
        assert not panics, panics


@pytest.mark.parametrize("how", ["env", "flag"])
def test_a_bad_mock_config_refuses_to_start(how):
    with tempfile.TemporaryDirectory(prefix="sfn-badmocks-") as d:
        cfg = Path(d) / "bad.json"
        cfg.write_text(json.dumps({"MockedResponses": {"R": {"0": {"Return": 1, "Throw": {"Error": "E"}}}}}))
        cmd = [str(BASALT_BIN), "serve", "--host", "127.0.0.1", "--port", str(free_port()), "--data-dir", d]
        env = dict(os.environ)
        env.pop("SFN_MOCK_CONFIG", None)
        if how == "env":
            env["SFN_MOCK_CONFIG"] = str(cfg)
        else:
            cmd += ["--sfn-mock-config", str(cfg)]
        proc = subprocess.run(cmd, env=env, capture_output=True, timeout=20, stdin=subprocess.DEVNULL)
    assert proc.returncode != 0
    err = proc.stderr.decode(errors="replace")
    assert "SFN_MOCK_CONFIG" in err and "both Return and Throw" in err, err
