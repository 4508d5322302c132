"""Shared pieces of the Step Functions suites (test_stepfunctions*.py): the role, machine
factories, waiting for an execution to end, and reading its history.

Error codes and messages come from botocore's `stepfunctions` model and the AWS Step
Functions API Reference / Developer Guide; each test names the page it follows.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT, REGION, unique

ROLE = f"arn:aws:iam::{ACCOUNT}:role/compat-sfn"
TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


@pytest.fixture(scope="module")
def sfn(make_client):
    # StartSyncExecution and TestState carry the host prefix "sync-" in botocore's model (AWS
    # serves them on sync-states.<region>.amazonaws.com); a loopback endpoint has no such
    # host, so the prefix is not injected, as with any local endpoint.
    return make_client("stepfunctions", inject_host_prefix=False)


def have_python_runtime() -> bool:
    runtimes = Path(os.environ.get("BASALT_RUNTIME_DIR", Path.home() / ".cache/basalt/runtimes"))
    return any(runtimes.glob("python3.*/.installed"))


def sm_arn(name):
    return f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}"


def error(e) -> tuple[str, str]:
    exc = e.value if hasattr(e, "value") else e
    assert isinstance(exc, ClientError), exc
    err = exc.response["Error"]
    return err["Code"], err.get("Message", "")


def machine(sfn, definition, name=None, type_="STANDARD", **kw) -> str:
    """Creates a state machine from a dict (or JSON text) and returns its ARN."""
    body = definition if isinstance(definition, str) else json.dumps(definition)
    return sfn.create_state_machine(name=name or unique("sm"), definition=body, roleArn=ROLE,
                                    type=type_, **kw)["stateMachineArn"]


def start(sfn, arn, payload=None, **kw) -> str:
    return sfn.start_execution(stateMachineArn=arn, input=json.dumps(payload if payload is not None else {}),
                               **kw)["executionArn"]


def wait_done(sfn, execution_arn, timeout=30.0) -> dict:
    """Polls DescribeExecution until the execution leaves RUNNING (or PENDING_REDRIVE)."""
    deadline = time.monotonic() + timeout
    while True:
        d = sfn.describe_execution(executionArn=execution_arn)
        if d["status"] in TERMINAL:
            return d
        if time.monotonic() > deadline:
            raise AssertionError(f"{execution_arn} still {d['status']} after {timeout}s")
        time.sleep(0.05)


def run(sfn, definition, payload=None, timeout=30.0, **kw) -> dict:
    """Creates a machine, runs one execution to its end, returns DescribeExecution."""
    arn = machine(sfn, definition, **kw)
    return wait_done(sfn, start(sfn, arn, payload), timeout)


def output(d) -> object:
    assert d["status"] == "SUCCEEDED", d
    return json.loads(d["output"])


def history(sfn, execution_arn, **kw) -> list[dict]:
    events = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn, **kw):
        events.extend(page["events"])
    return events


def types(events) -> list[str]:
    return [e["type"] for e in events]


def pass_chain(n=1, result=None) -> dict:
    states = {}
    for i in range(n):
        s = {"Type": "Pass"}
        if result is not None:
            s["Result"] = result
        if i + 1 < n:
            s["Next"] = f"S{i + 1}"
        else:
            s["End"] = True
        states[f"S{i}"] = s
    return {"StartAt": "S0", "States": states}
