"""Step Functions task integrations through boto3: Lambda, DynamoDB, SQS callbacks, SNS,
EventBridge, child executions, aws-sdk: calls, timeouts and heartbeats, activities; EXPRESS's
StartSyncExecution and TestState.

Behaviour follows the AWS Step Functions API Reference and Developer Guide; each test names its
page. Error codes come from botocore's `stepfunctions` model.
"""
from __future__ import annotations

import json
import time

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT, REGION, unique
from sfn_helpers import (ROLE, error, have_python_runtime, history, machine, output, pass_chain, run,  # noqa: F401
                         sfn, start, types, wait_done)


# --- tasks -----------------------------------------------------------------------------------
# Developer Guide "Integrating services with Step Functions" and the per-service pages
# (connect-lambda, connect-ddb, connect-sqs, connect-sns, connect-eventbridge,
# connect-stepfunctions, supported-services-awssdk).

needs_lambda = pytest.mark.skipif(not have_python_runtime(),
                                  reason="no Lambda Python runtime installed (basalt runtimes pull)")

LAMBDA_SOURCE = '''
import json

class NotReady(Exception):
    pass

def handler(event, context):
    if event.get("raise"):
        raise NotReady("not ready: " + str(event["raise"]))
    return {"got": event, "fn": context.function_name}
'''


@pytest.fixture(scope="module")
def lam(make_client):
    return make_client("lambda")


@pytest.fixture(scope="module")
def fn(lam):
    from test_lambda import zip_of
    name = unique("sfnfn")
    lam.create_function(FunctionName=name, Runtime="python3.12", Role=ROLE.replace("compat-sfn", "compat-lambda"),
                        Handler="index.handler", Code={"ZipFile": zip_of({"index.py": LAMBDA_SOURCE})})
    lam.get_waiter("function_active_v2").wait(FunctionName=name)
    return lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]


@needs_lambda
def test_lambda_invoke_integration(sfn, fn):
    # connect-lambda: the result is the Invoke response, Payload holding the function's result.
    d = {"StartAt": "L", "States": {"L": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                                          "Parameters": {"FunctionName": fn, "Payload": {"x.$": "$.x"}},
                                          "End": True}}}
    d = run(sfn, d, {"x": 3}, timeout=60)
    out = output(d)
    assert out["StatusCode"] == 200
    assert out["Payload"] == {"got": {"x": 3}, "fn": fn.rsplit(":", 1)[1]}
    ev = types(history(sfn, d["executionArn"]))
    assert ev[1:6] == ["TaskStateEntered", "TaskScheduled", "TaskStarted", "TaskSucceeded", "TaskStateExited"]
    sched = next(e for e in history(sfn, d["executionArn"]) if e["type"] == "TaskScheduled")
    det = sched["taskScheduledEventDetails"]
    assert det["resourceType"] == "lambda" and det["resource"] == "invoke" and det["region"] == REGION


@needs_lambda
def test_lambda_output_path_payload_and_plain_arn(sfn, fn):
    d = {"StartAt": "L", "States": {
        "L": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "OutputPath": "$.Payload",
              "Parameters": {"FunctionName": fn, "Payload.$": "$"}, "Next": "P"},
        "P": {"Type": "Task", "Resource": fn, "End": True}}}
    d = run(sfn, d, {"x": 1}, timeout=60)
    # The plain ARN form passes the state input and returns the function's result itself.
    assert output(d) == {"got": {"got": {"x": 1}, "fn": fn.rsplit(":", 1)[1]}, "fn": fn.rsplit(":", 1)[1]}
    ev = types(history(sfn, d["executionArn"]))
    assert "LambdaFunctionScheduled" in ev and "LambdaFunctionSucceeded" in ev


@needs_lambda
def test_lambda_error_is_caught_with_its_error_type(sfn, fn):
    # Developer Guide "Handling errors": a function's unhandled exception is reported with its
    # errorType as the Error name and the error document as Cause.
    d = {"StartAt": "L", "States": {
        "L": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
              "Parameters": {"FunctionName": fn, "Payload": {"raise": "soon"}},
              "Catch": [{"ErrorEquals": ["NotReady"], "ResultPath": "$.err", "Next": "H"}], "End": True},
        "H": {"Type": "Pass", "End": True}}}
    d = run(sfn, d, {}, timeout=60)
    err = output(d)["err"]
    assert err["Error"] == "NotReady"
    cause = json.loads(err["Cause"])
    assert cause["errorType"] == "NotReady" and cause["errorMessage"] == "not ready: soon"
    assert "TaskFailed" in types(history(sfn, d["executionArn"]))


@needs_lambda
def test_lambda_error_uncaught_fails_execution(sfn, fn):
    d = run(sfn, {"StartAt": "L", "States": {"L": {"Type": "Task", "Resource": fn, "End": True}}},
            {"raise": 1}, timeout=60)
    assert d["status"] == "FAILED" and d["error"] == "NotReady"
    assert json.loads(d["cause"])["errorMessage"] == "not ready: 1"


def test_dynamodb_put_and_get(sfn, make_client):
    from ddb_helpers import create_table
    ddb = make_client("dynamodb")
    table = create_table(ddb)
    d = {"StartAt": "Put", "States": {
        "Put": {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:putItem",
                "Parameters": {"TableName": table, "Item": {"pk": {"S.$": "$.id"}, "v": {"N": "5"}}},
                "ResultPath": None, "Next": "Get"},
        "Get": {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:getItem",
                "Parameters": {"TableName": table, "Key": {"pk": {"S.$": "$.id"}}},
                "ResultSelector": {"v.$": "$.Item.v.N"}, "Next": "Sdk"},
        # supported-services-awssdk: aws-sdk results keep the API's PascalCase names.
        "Sdk": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:dynamodb:getItem",
                "Parameters": {"TableName": table, "Key": {"pk": {"S": "missing"}}}, "ResultPath": "$.sdk", "Next": "Cond"},
        "Cond": {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:putItem",
                 "Parameters": {"TableName": table, "Item": {"pk": {"S": "a"}}, "ConditionExpression": "attribute_not_exists(pk)"},
                 "Catch": [{"ErrorEquals": ["DynamoDB.ConditionalCheckFailedException"], "ResultPath": "$.cond", "Next": "Done"}],
                 "End": True},
        "Done": {"Type": "Pass", "End": True}}}
    out = output(run(sfn, d, {"id": "a"}))
    assert out["v"] == "5"
    assert out["sdk"] == {}
    assert out["cond"]["Error"] == "DynamoDB.ConditionalCheckFailedException"
    assert ddb.get_item(TableName=table, Key={"pk": {"S": "a"}})["Item"] == {"pk": {"S": "a"}, "v": {"N": "5"}}


def test_aws_sdk_pascal_case_and_error_names(sfn, make_client):
    from ddb_helpers import create_table
    ddb = make_client("dynamodb")
    table = create_table(ddb)
    ddb.put_item(TableName=table, Item={"pk": {"S": "k"}, "n": {"N": "1"}})
    d = {"StartAt": "G", "States": {
        "G": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:dynamodb:getItem",
              "Parameters": {"TableName": table, "Key": {"pk": {"S": "k"}}}, "ResultPath": "$.g", "Next": "Missing"},
        "Missing": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:dynamodb:describeTable",
                    "Parameters": {"TableName": "no-such-" + table},
                    "Catch": [{"ErrorEquals": ["DynamoDb.ResourceNotFoundException"], "ResultPath": "$.e", "Next": "Ok"}],
                    "End": True},
        "Ok": {"Type": "Pass", "End": True}}}
    out = output(run(sfn, d, {}))
    assert out["g"] == {"Item": {"pk": {"S": "k"}, "n": {"N": "1"}}}
    assert out["e"]["Error"] == "DynamoDb.ResourceNotFoundException"


def _queue(make_client):
    sqs = make_client("sqs")
    url = sqs.create_queue(QueueName=unique("sfnq"))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return sqs, url, arn


def _receive(sqs, url, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1, MaxNumberOfMessages=10).get("Messages", [])
        if m:
            return m
    raise AssertionError(f"no message on {url} within {timeout}s")


def test_sqs_wait_for_task_token(sfn, make_client):
    # connect-to-resource "Wait for a Callback with Task Token".
    sqs, url, _ = _queue(make_client)
    arn = machine(sfn, {"StartAt": "Ask", "States": {"Ask": {
        "Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
        "Parameters": {"QueueUrl": url, "MessageBody": {"token.$": "$$.Task.Token", "n.$": "$.n"}},
        "ResultPath": "$.answer", "End": True}}})
    ok = start(sfn, arn, {"n": 1})
    bad = start(sfn, arn, {"n": 2})
    tokens = {}
    while len(tokens) < 2:
        for m in _receive(sqs, url):
            body = json.loads(m["Body"])
            tokens[body["n"]] = body["token"]
    time.sleep(0.3)
    assert sfn.describe_execution(executionArn=ok)["status"] == "RUNNING"
    sfn.send_task_success(taskToken=tokens[1], output='{"yes": true}')
    sfn.send_task_failure(taskToken=tokens[2], error="Rejected", cause="no thanks")
    assert output(wait_done(sfn, ok)) == {"n": 1, "answer": {"yes": True}}
    # The call that handed out the token is TaskSubmitted, with the service's answer.
    events = history(sfn, ok)
    assert types(events)[2:6] == ["TaskScheduled", "TaskStarted", "TaskSubmitted", "TaskSucceeded"]
    submitted = next(e for e in events if e["type"] == "TaskSubmitted")["taskSubmittedEventDetails"]
    assert (submitted["resourceType"], submitted["resource"]) == ("sqs", "sendMessage.waitForTaskToken")
    assert "MessageId" in json.loads(submitted["output"])
    d = wait_done(sfn, bad)
    assert d["status"] == "FAILED" and d["error"] == "Rejected" and d["cause"] == "no thanks"
    # API_SendTaskSuccess errors: a token whose task is over, and a token that is not one.
    with pytest.raises(ClientError) as e:
        sfn.send_task_success(taskToken=tokens[1], output="{}")
    assert error(e)[0] in ("TaskDoesNotExist", "TaskTimedOut")
    with pytest.raises(ClientError) as e:
        sfn.send_task_success(taskToken=tokens[1], output="not json")
    assert error(e)[0] == "InvalidOutput"
    with pytest.raises(ClientError) as e:
        sfn.send_task_success(taskToken="garbage", output="{}")
    assert error(e)[0] == "InvalidToken", error(e)


def test_sqs_send_message_result(sfn, make_client):
    sqs, url, _ = _queue(make_client)
    out = output(run(sfn, {"StartAt": "S", "States": {"S": {
        "Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage",
        "Parameters": {"QueueUrl": url, "MessageBody.$": "$.msg"}, "End": True}}}, {"msg": "hello"}))
    assert set(out) >= {"MessageId", "MD5OfMessageBody"}
    assert _receive(sqs, url)[0]["Body"] == "hello"


def test_sns_publish(sfn, make_client):
    sqs, url, qarn = _queue(make_client)
    sns = make_client("sns")
    topic = sns.create_topic(Name=unique("sfnt"))["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=qarn, Attributes={"RawMessageDelivery": "true"})
    out = output(run(sfn, {"StartAt": "S", "States": {"S": {
        "Type": "Task", "Resource": "arn:aws:states:::sns:publish",
        "Parameters": {"TopicArn": topic, "Message.$": "$.m"}, "End": True}}}, {"m": "from sfn"}))
    assert "MessageId" in out
    assert _receive(sqs, url)[0]["Body"] == "from sfn"


def test_events_put_events(sfn, make_client):
    sqs, url, qarn = _queue(make_client)
    events = make_client("events")
    src = unique("sfn.src")
    rule = unique("r")
    events.put_rule(Name=rule, EventPattern=json.dumps({"source": [src]}))
    events.put_targets(Rule=rule, Targets=[{"Id": "q", "Arn": qarn}])
    out = output(run(sfn, {"StartAt": "E", "States": {"E": {
        "Type": "Task", "Resource": "arn:aws:states:::events:putEvents",
        "Parameters": {"Entries": [{"Source": src, "DetailType": "t", "Detail": {"k.$": "$.k"}}]},
        "End": True}}}, {"k": 9}))
    assert out["FailedEntryCount"] == 0 and len(out["Entries"]) == 1 and "EventId" in out["Entries"][0]
    body = json.loads(_receive(sqs, url)[0]["Body"])
    assert body["source"] == src and body["detail"] == {"k": 9}


def test_start_execution_child_sync_and_async(sfn):
    # connect-stepfunctions: .sync returns DescribeExecution's fields with Output as a string;
    # .sync:2 returns Output as JSON; the plain form returns ExecutionArn and StartDate.
    child = machine(sfn, {"StartAt": "P", "States": {"P": {"Type": "Pass", "Parameters": {"doubled.$": "States.MathAdd($.n, $.n)"},
                                                           "End": True}}})
    d = {"StartAt": "Sync", "States": {
        "Sync": {"Type": "Task", "Resource": "arn:aws:states:::states:startExecution.sync",
                 "Parameters": {"StateMachineArn": child, "Input": {"n": 2}}, "ResultPath": "$.s1", "Next": "Sync2"},
        "Sync2": {"Type": "Task", "Resource": "arn:aws:states:::states:startExecution.sync:2",
                  "Parameters": {"StateMachineArn": child, "Input": {"n": 3}}, "ResultPath": "$.s2", "Next": "Fire"},
        "Fire": {"Type": "Task", "Resource": "arn:aws:states:::states:startExecution",
                 "Parameters": {"StateMachineArn": child, "Input": {"n": 4}}, "ResultPath": "$.s3", "End": True}}}
    out = output(run(sfn, d, {}))
    assert out["s1"]["Status"] == "SUCCEEDED" and json.loads(out["s1"]["Output"]) == {"doubled": 4}
    assert out["s2"]["Status"] == "SUCCEEDED" and out["s2"]["Output"] == {"doubled": 6}
    assert out["s3"]["ExecutionArn"].startswith(f"arn:aws:states:{REGION}:{ACCOUNT}:execution:")
    assert "StartDate" in out["s3"]
    assert output(wait_done(sfn, out["s3"]["ExecutionArn"])) == {"doubled": 8}


def test_child_failure_surfaces_as_states_execution_failed(sfn):
    child = machine(sfn, {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "ChildErr", "Cause": "x"}}})
    d = run(sfn, {"StartAt": "S", "States": {"S": {"Type": "Task", "Resource": "arn:aws:states:::states:startExecution.sync:2",
                                                   "Parameters": {"StateMachineArn": child}, "End": True}}}, {})
    assert d["status"] == "FAILED" and d["error"] == "States.TaskFailed"


def test_task_timeout(sfn, make_client):
    # Developer Guide "Task state": TimeoutSeconds ends the task with States.Timeout.
    _, url, _ = _queue(make_client)
    t0 = time.monotonic()
    d = run(sfn, {"StartAt": "T", "States": {"T": {
        "Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken", "TimeoutSeconds": 1,
        "Parameters": {"QueueUrl": url, "MessageBody": {"t.$": "$$.Task.Token"}}, "End": True}}}, {}, timeout=10)
    assert d["status"] == "FAILED" and d["error"] == "States.Timeout"
    assert 1.0 <= time.monotonic() - t0 <= 4.0
    assert "TaskTimedOut" in types(history(sfn, d["executionArn"]))


def test_heartbeat(sfn, make_client):
    # Developer Guide "Task state": HeartbeatSeconds; SendTaskHeartbeat keeps the task alive.
    sqs, url, _ = _queue(make_client)
    arn = machine(sfn, {"StartAt": "T", "States": {"T": {
        "Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken", "HeartbeatSeconds": 1,
        "TimeoutSeconds": 30, "Parameters": {"QueueUrl": url, "MessageBody": {"t.$": "$$.Task.Token"}}, "End": True}}})
    kept = start(sfn, arn)
    token = json.loads(_receive(sqs, url)[0]["Body"])["t"]
    for _ in range(4):
        time.sleep(0.5)
        sfn.send_task_heartbeat(taskToken=token)
    assert sfn.describe_execution(executionArn=kept)["status"] == "RUNNING", "a heartbeat did not keep the task alive"
    sfn.send_task_success(taskToken=token, output='"done"')
    assert output(wait_done(sfn, kept)) == "done"
    lapsed = wait_done(sfn, start(sfn, arn), timeout=10)
    assert lapsed["status"] == "FAILED" and lapsed["error"] == "States.HeartbeatTimeout"


def test_activities(sfn):
    # API_GetActivityTask / Developer Guide "Activities".
    import threading
    name = unique("act")
    act = sfn.create_activity(name=name)["activityArn"]
    assert act == f"arn:aws:states:{REGION}:{ACCOUNT}:activity:{name}"
    assert sfn.create_activity(name=name)["activityArn"] == act
    assert sfn.describe_activity(activityArn=act)["name"] == name
    assert act in [a["activityArn"] for a in sfn.list_activities()["activities"]]
    seen = {}

    def worker():
        t = sfn.get_activity_task(activityArn=act, workerName="w1")
        seen["input"] = json.loads(t["input"])
        sfn.send_task_success(taskToken=t["taskToken"], output=json.dumps({"w": seen["input"]["v"] * 2}))

    th = threading.Thread(target=worker, daemon=True)
    th.start()
    time.sleep(0.2)  # the worker polls before there is work: a long poll
    d = run(sfn, {"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": act, "End": True}}}, {"v": 21})
    th.join(5)
    assert seen["input"] == {"v": 21}
    assert output(d) == {"w": 42}
    ev = types(history(sfn, d["executionArn"]))
    assert "ActivityScheduled" in ev and "ActivityStarted" in ev and "ActivitySucceeded" in ev
    sfn.delete_activity(activityArn=act)
    with pytest.raises(ClientError) as e:
        sfn.describe_activity(activityArn=act)
    assert error(e) == ("ActivityDoesNotExist", f"Activity Does Not Exist: '{act}'")


# --- EXPRESS ---------------------------------------------------------------------------------

def test_start_sync_execution(sfn):
    # API_StartSyncExecution: EXPRESS only; the answer carries status, output or error/cause.
    arn = machine(sfn, {"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [{"Variable": "$.fail", "BooleanEquals": True, "Next": "F"}], "Default": "P"},
        "P": {"Type": "Pass", "Parameters": {"sum.$": "States.MathAdd($.a, 1)"}, "End": True},
        "F": {"Type": "Fail", "Error": "Nope", "Cause": "asked to"}}}, type_="EXPRESS")
    r = sfn.start_sync_execution(stateMachineArn=arn, input='{"a": 1, "fail": false}', name="sync1")
    assert r["status"] == "SUCCEEDED" and json.loads(r["output"]) == {"sum": 2}
    assert r["executionArn"].startswith(f"arn:aws:states:{REGION}:{ACCOUNT}:express:") and r["name"] == "sync1"
    assert r["stateMachineArn"] == arn and r["startDate"] <= r["stopDate"]
    f = sfn.start_sync_execution(stateMachineArn=arn, input='{"a": 1, "fail": true}')
    assert f["status"] == "FAILED" and f["error"] == "Nope" and f["cause"] == "asked to" and "output" not in f
    std = machine(sfn, pass_chain(1))
    with pytest.raises(ClientError) as e:
        sfn.start_sync_execution(stateMachineArn=std)
    assert error(e)[0] == "StateMachineTypeNotSupported"


def test_express_start_execution_runs(sfn):
    arn = machine(sfn, pass_chain(3, "x"), type_="EXPRESS")
    ex = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    assert ":express:" in ex


# --- TestState ------------------------------------------------------------------------------
# API_TestState and Developer Guide "Testing states with TestState".

def test_test_state_pass(sfn):
    state = {"Type": "Pass", "InputPath": "$.a", "Parameters": {"v.$": "$.b"}, "ResultPath": "$.r", "Next": "X"}
    r = sfn.test_state(definition=json.dumps(state), roleArn=ROLE, input='{"a": {"b": 1}}', inspectionLevel="DEBUG")
    assert r["status"] == "SUCCEEDED" and r["nextState"] == "X"
    assert json.loads(r["output"]) == {"a": {"b": 1}, "r": {"v": 1}}
    ins = r["inspectionData"]
    assert json.loads(ins["afterInputPath"]) == {"b": 1}
    assert json.loads(ins["afterParameters"]) == {"v": 1}
    assert json.loads(ins["afterResultPath"]) == {"a": {"b": 1}, "r": {"v": 1}}
    info = sfn.test_state(definition=json.dumps(state), roleArn=ROLE, input='{"a": {"b": 1}}')
    assert "inspectionData" not in info and info["status"] == "SUCCEEDED"


def test_test_state_task_with_mock(sfn):
    state = {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
             "Parameters": {"FunctionName": "nowhere", "Payload.$": "$"}, "OutputPath": "$.Payload", "End": True}
    r = sfn.test_state(definition=json.dumps(state), roleArn=ROLE, input="{}",
                       mock={"result": json.dumps({"Payload": {"ok": 1}})})
    assert r["status"] == "SUCCEEDED" and json.loads(r["output"]) == {"ok": 1}
    f = sfn.test_state(definition=json.dumps(state), roleArn=ROLE, input="{}", mock={"errorOutput": {"error": "Boom", "cause": "mocked"}})
    assert f["status"] == "FAILED" and f["error"] == "Boom" and f["cause"] == "mocked"
    caught_state = {k: v for k, v in state.items() if k != "End"}
    caught_state.update({"Catch": [{"ErrorEquals": ["Boom"], "ResultPath": "$.e", "Next": "H"}], "Next": "N"})
    c = sfn.test_state(definition=json.dumps(caught_state), roleArn=ROLE, input="{}",
                       mock={"errorOutput": {"error": "Boom", "cause": "mocked"}})
    assert c["status"] == "CAUGHT_ERROR" and c["nextState"] == "H"
    assert json.loads(c["output"]) == {"e": {"Error": "Boom", "Cause": "mocked"}}


def test_test_state_choice(sfn):
    state = {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericGreaterThan": 1, "Next": "Big"}], "Default": "Small"}
    assert sfn.test_state(definition=json.dumps(state), roleArn=ROLE, input='{"n": 2}')["nextState"] == "Big"
    assert sfn.test_state(definition=json.dumps(state), roleArn=ROLE, input='{"n": 0}')["nextState"] == "Small"
    with pytest.raises(ClientError) as e:
        sfn.test_state(definition=json.dumps({"Type": "Pass", "Bogus": 1, "End": True}), roleArn=ROLE)
    assert error(e)[0] == "InvalidDefinition"


def test_get_activity_task_empty_poll(shape_checker, monkeypatch):
    # API_GetActivityTask: with no task within the poll (60 s on AWS) the answer has no
    # taskToken. A server of its own polls 1 s (BASALT_STEPFUNCTIONS_ACTIVITY_POLL_SECS).
    from conftest import BasaltServer, make_client_factory
    monkeypatch.setenv("BASALT_STEPFUNCTIONS_ACTIVITY_POLL_SECS", "1")
    srv = BasaltServer(name="basalt-sfn-poll").start()
    try:
        c = make_client_factory(shape_checker, srv.endpoint)("stepfunctions")
        act = c.create_activity(name=unique("idle"))["activityArn"]
        t0 = time.monotonic()
        r = c.get_activity_task(activityArn=act)
        took = time.monotonic() - t0
        assert "taskToken" not in r or r["taskToken"] in (None, "")
        assert 0.9 <= took <= 3.0, took
        missing = act + "-gone"
        with pytest.raises(ClientError) as e:
            c.get_activity_task(activityArn=missing)
        assert error(e) == ("ActivityDoesNotExist", f"Activity Does Not Exist: '{missing}'")
    finally:
        srv.close()
