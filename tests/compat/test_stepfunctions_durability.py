"""Step Functions across `kill -9`: executions, their timers and recorded task results are
durable (issue 12, "Durability").

* executions waiting in a Wait state when the server dies finish after the restart when
  their Wait is due, not early and not much later;
* a Lambda task whose result was recorded before the kill is not run again: the function
  sends one SQS message per invocation, so the queue counts invocations;
* executions started (acknowledged) just before the kill are not lost: each one exists
  after the restart and runs to its end.

The server is a private one (not the session's), killed with SIGKILL and restarted on the
same data dir.
"""
from __future__ import annotations

import json
import tempfile
import time

import pytest

from conftest import BasaltServer, make_client_factory, unique
from sfn_helpers import ROLE, have_python_runtime, machine, output, start, wait_done


@pytest.fixture
def crash_dir():
    with tempfile.TemporaryDirectory(prefix="basalt-sfn-durable-") as d:
        yield d


def restart(srv, data_dir, shape_checker):
    srv.kill9()
    srv2 = BasaltServer(data_dir=data_dir, name="basalt-sfn-durable-restart").start()
    return srv2, make_client_factory(shape_checker, srv2.endpoint)


def finish(*servers):
    servers[-1].stop()
    panics = [p for s in servers for p in s.panics()]
    assert not panics, "\n".join(panics)


@pytest.mark.slow
def test_waits_end_on_time_after_kill_9(shape_checker, crash_dir):
    srv = BasaltServer(data_dir=crash_dir, name="basalt-sfn-durable").start()
    sfn = make_client_factory(shape_checker, srv.endpoint)("stepfunctions")
    arn = machine(sfn, {"StartAt": "W", "States": {
        "W": {"Type": "Wait", "Seconds": 3, "Next": "After"},
        "After": {"Type": "Pass", "Parameters": {"entered.$": "$$.State.EnteredTime"}, "End": True}}})
    started = {}
    for i in range(10):
        ex = start(sfn, arn, {"i": i})
        started[ex] = time.time()
    time.sleep(1.0)
    srv2, mk = restart(srv, crash_dir, shape_checker)
    sfn = mk("stepfunctions")
    try:
        for ex, t0 in started.items():
            d = sfn.describe_execution(executionArn=ex)
            assert d["status"] in ("RUNNING", "SUCCEEDED"), d
        for ex, t0 in started.items():
            d = wait_done(sfn, ex, timeout=15)
            assert d["status"] == "SUCCEEDED", d
            waited = d["stopDate"].timestamp() - d["startDate"].timestamp()
            # Due 3 s after the start; the restart must not end it early nor lose the timer.
            assert 3.0 <= waited <= 5.5, f"{ex}: ended {waited:.2f} s after its start"
    finally:
        finish(srv, srv2)


COUNTING_LAMBDA = '''
import boto3, json

def handler(event, context):
    boto3.client("sqs").send_message(QueueUrl=event["queue"], MessageBody=json.dumps({"i": event["i"]}))
    return {"done": event["i"]}
'''


def _count(sqs, url):
    seen = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        if not got:
            return seen
        for m in got:
            seen.append(json.loads(m["Body"])["i"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


@pytest.mark.slow
def test_recorded_lambda_result_is_not_run_again(shape_checker, crash_dir):
    if not have_python_runtime():
        pytest.skip("no Lambda Python runtime installed (basalt runtimes pull)")
    from test_lambda import zip_of
    srv = BasaltServer(data_dir=crash_dir, name="basalt-sfn-durable").start()
    mk = make_client_factory(shape_checker, srv.endpoint)
    sfn, lam, sqs = mk("stepfunctions"), mk("lambda"), mk("sqs")
    url = sqs.create_queue(QueueName=unique("calls"))["QueueUrl"]
    fname = unique("count")
    lam.create_function(FunctionName=fname, Runtime="python3.12", Role=ROLE, Handler="index.handler",
                        Code={"ZipFile": zip_of({"index.py": COUNTING_LAMBDA})})
    lam.get_waiter("function_active_v2").wait(FunctionName=fname)
    # The task runs first; its result is recorded, then the execution waits across the kill.
    arn = machine(sfn, {"StartAt": "Call", "States": {
        "Call": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "OutputPath": "$.Payload",
                 "Parameters": {"FunctionName": fname, "Payload": {"queue": url, "i.$": "$.i"}}, "Next": "W"},
        "W": {"Type": "Wait", "Seconds": 3, "End": True}}})
    exs = [start(sfn, arn, {"i": i}) for i in range(5)]
    deadline = time.monotonic() + 60
    for ex in exs:  # every task result recorded: the Wait was entered
        while True:
            hist = sfn.get_execution_history(executionArn=ex)["events"]
            if any(e["type"] == "WaitStateEntered" for e in hist):
                break
            assert time.monotonic() < deadline, f"{ex} never reached its Wait"
            time.sleep(0.1)
    srv2, mk = restart(srv, crash_dir, shape_checker)
    try:
        sfn, sqs = mk("stepfunctions"), mk("sqs")
        for i, ex in enumerate(exs):
            assert output(wait_done(sfn, ex, timeout=20)) == {"done": i}
        calls = _count(sqs, url)
        assert sorted(calls) == list(range(5)), f"invocations per execution: {calls}"
        for ex in exs:
            ev = [e["type"] for e in sfn.get_execution_history(executionArn=ex)["events"]]
            assert ev.count("TaskScheduled") == 1 and ev.count("TaskSucceeded") == 1, ev
    finally:
        finish(srv, srv2)


@pytest.mark.slow
def test_executions_started_before_kill_are_not_lost(shape_checker, crash_dir):
    import threading
    srv = BasaltServer(data_dir=crash_dir, name="basalt-sfn-durable").start()
    mk = make_client_factory(shape_checker, srv.endpoint)
    arn = machine(mk("stepfunctions"), {"StartAt": "P", "States": {
        "P": {"Type": "Pass", "Parameters": {"n.$": "$.n"}, "Next": "W"},
        "W": {"Type": "Wait", "Seconds": 1, "End": True}}})
    acked, lock, stop = {}, threading.Lock(), threading.Event()

    def starter(wid):
        c = mk("stepfunctions", check=False, connect_timeout=2, read_timeout=5)
        n = 0
        while not stop.is_set():
            try:
                ex = c.start_execution(stateMachineArn=arn, input=json.dumps({"n": f"{wid}-{n}"}))["executionArn"]
            except Exception:
                return  # server gone: not acknowledged
            with lock:
                acked[ex] = f"{wid}-{n}"
            n += 1
            # A steady stream (some hundreds by the kill), not as many as the server takes:
            # each one is run to its end after the restart.
            time.sleep(0.01)

    threads = [threading.Thread(target=starter, args=(w,), daemon=True) for w in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    srv.kill9()
    stop.set()
    for t in threads:
        t.join(10)
    assert acked, "no StartExecution was acknowledged before the kill"
    srv2 = BasaltServer(data_dir=crash_dir, name="basalt-sfn-durable-restart").start()
    try:
        sfn = make_client_factory(shape_checker, srv2.endpoint)("stepfunctions")
        listed = {e["executionArn"] for p in sfn.get_paginator("list_executions").paginate(stateMachineArn=arn)
                  for e in p["executions"]}
        lost = set(acked) - listed
        assert not lost, f"{len(lost)}/{len(acked)} acknowledged executions lost: {sorted(lost)[:3]}"
        deadline = time.monotonic() + 60
        for ex, n in acked.items():
            d = wait_done(sfn, ex, timeout=max(1.0, deadline - time.monotonic()))
            assert output(d) == {"n": n}
    finally:
        finish(srv, srv2)


SLOW_LAMBDA = '''
import boto3, json, time

def handler(event, context):
    boto3.client("sqs").send_message(QueueUrl=event["queue"], MessageBody=json.dumps({"i": event["i"]}))
    time.sleep(3)
    return {"done": event["i"]}
'''


@pytest.mark.slow
def test_task_in_flight_at_kill_runs_again_after_restart(shape_checker, crash_dir):
    # Issue 12 "Durability": a task in flight when the server dies is retried; the execution
    # must not hang on a task no process performs.
    if not have_python_runtime():
        pytest.skip("no Lambda Python runtime installed (basalt runtimes pull)")
    from test_lambda import zip_of
    srv = BasaltServer(data_dir=crash_dir, name="basalt-sfn-durable").start()
    mk = make_client_factory(shape_checker, srv.endpoint)
    sfn, lam, sqs = mk("stepfunctions"), mk("lambda"), mk("sqs")
    url = sqs.create_queue(QueueName=unique("calls"))["QueueUrl"]
    fname = unique("slow")
    lam.create_function(FunctionName=fname, Runtime="python3.12", Role=ROLE, Handler="index.handler",
                        Code={"ZipFile": zip_of({"index.py": SLOW_LAMBDA})}, Timeout=10)
    lam.get_waiter("function_active_v2").wait(FunctionName=fname)
    arn = machine(sfn, {"StartAt": "Call", "States": {"Call": {
        "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "OutputPath": "$.Payload",
        "Parameters": {"FunctionName": fname, "Payload": {"queue": url, "i.$": "$.i"}}, "End": True}}})
    ex = start(sfn, arn, {"i": 7})
    deadline = time.monotonic() + 30
    while not _peek(sqs, url):  # the function is running
        assert time.monotonic() < deadline, "the task never started"
    srv2, mk = restart(srv, crash_dir, shape_checker)
    try:
        sfn = mk("stepfunctions")
        assert output(wait_done(sfn, ex, timeout=60)) == {"done": 7}
    finally:
        finish(srv, srv2)


def _peek(sqs, url):
    got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1, VisibilityTimeout=0).get("Messages", [])
    return bool(got)
