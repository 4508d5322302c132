"""Step Functions through boto3: the control plane, executions with their history and the
Amazon States Language's data flow (task integrations, activities, EXPRESS and TestState are
in test_stepfunctions_tasks.py).

Behaviour follows the AWS Step Functions API Reference
(https://docs.aws.amazon.com/step-functions/latest/apireference/) and Developer Guide
(https://docs.aws.amazon.com/step-functions/latest/dg/); each test names its page. Error codes
come from botocore's `stepfunctions` model.
"""
from __future__ import annotations

import json
import time

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT, REGION, unique
from sfn_helpers import (ROLE, error, history, machine, output, pass_chain, run, sfn, sm_arn,  # noqa: F401
                         start, types, wait_done)


# --- control plane -------------------------------------------------------------------------
# API_CreateStateMachine: "CreateStateMachine is an idempotent API. Subsequent requests won't
# create a duplicate resource if it was already created ... if you attempt to create it again
# with a different definition or role, StateMachineAlreadyExists".

def test_create_describe_and_idempotent_create(sfn):
    name = unique("sm")
    d = json.dumps(pass_chain(1, {"a": 1}))
    r = sfn.create_state_machine(name=name, definition=d, roleArn=ROLE)
    assert r["stateMachineArn"] == sm_arn(name)
    again = sfn.create_state_machine(name=name, definition=d, roleArn=ROLE)
    assert again["stateMachineArn"] == r["stateMachineArn"]
    assert again["creationDate"] == r["creationDate"]
    desc = sfn.describe_state_machine(stateMachineArn=r["stateMachineArn"])
    assert desc["name"] == name and desc["status"] == "ACTIVE" and desc["type"] == "STANDARD"
    assert json.loads(desc["definition"]) == json.loads(d)
    assert desc["roleArn"] == ROLE
    with pytest.raises(ClientError) as e:
        sfn.create_state_machine(name=name, definition=json.dumps(pass_chain(2)), roleArn=ROLE)
    assert error(e) == ("StateMachineAlreadyExists", f"State Machine Already Exists: '{sm_arn(name)}'")


def test_create_logging_and_tracing_are_stored(sfn):
    log = {"level": "ALL", "includeExecutionData": True,
           "destinations": [{"cloudWatchLogsLogGroup": {
               "logGroupArn": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/sfn/{unique('g')}:*"}}]}
    arn = machine(sfn, pass_chain(1), type_="EXPRESS", loggingConfiguration=log,
                  tracingConfiguration={"enabled": True})
    d = sfn.describe_state_machine(stateMachineArn=arn)
    assert d["type"] == "EXPRESS"
    assert d["loggingConfiguration"] == log
    assert d["tracingConfiguration"] == {"enabled": True}


@pytest.mark.parametrize("definition,fragment", [
    ({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}}}, "MISSING_TRANSITION_TARGET"),
    ({"StartAt": "Nope", "States": {"A": {"Type": "Pass", "End": True}}}, "MISSING_TRANSITION_TARGET"),
    ({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}, "B": {"Type": "Pass", "End": True}}},
     'State "B" is not reachable'),
    ({"StartAt": "A", "States": {"A": {"Type": "Succeed", "Next": "A"}}}, "SCHEMA_VALIDATION_FAILED"),
    ({"StartAt": "A", "States": {"A": {"Type": "Bogus", "End": True}}}, "SCHEMA_VALIDATION_FAILED"),
    ("{not json", "INVALID_JSON_DESCRIPTION"),
])
def test_create_invalid_definition(sfn, definition, fragment):
    # API_CreateStateMachine errors: InvalidDefinition "The provided Amazon States Language
    # definition is not valid." Message: "Invalid State Machine Definition: '<CODE>: ...'".
    with pytest.raises(ClientError) as e:
        machine(sfn, definition)
    code, msg = error(e)
    assert code == "InvalidDefinition"
    assert msg.startswith("Invalid State Machine Definition: '") and fragment in msg, msg


@pytest.mark.parametrize("name", ["has space", "a" * 81, "semi;colon", "star*"])
def test_create_invalid_name(sfn, name):
    # API_CreateStateMachine: a name must not contain white space, wildcard characters,
    # special characters or control characters, and is 1-80 characters.
    with pytest.raises(ClientError) as e:
        machine(sfn, pass_chain(1), name=name)
    code, _ = error(e)
    assert code in ("InvalidName", "ValidationException"), e.value.response
    if 0 < len(name) <= 80:
        assert error(e) == ("InvalidName", f"Invalid Name: '{name}'")


def test_invalid_arn_and_missing_machine(sfn):
    with pytest.raises(ClientError) as e:
        sfn.describe_state_machine(stateMachineArn="not-an-arn")
    assert error(e)[0] == "InvalidArn"
    assert error(e)[1].startswith("Invalid Arn")
    missing = sm_arn(unique("gone"))
    with pytest.raises(ClientError) as e:
        sfn.describe_state_machine(stateMachineArn=missing)
    assert error(e) == ("StateMachineDoesNotExist", f"State Machine Does Not Exist: '{missing}'")
    with pytest.raises(ClientError) as e:
        sfn.start_execution(stateMachineArn=missing)
    assert error(e) == ("StateMachineDoesNotExist", f"State Machine Does Not Exist: '{missing}'")


def test_list_state_machines_paginates(sfn):
    prefix = unique("lst")
    arns = {machine(sfn, pass_chain(1), name=f"{prefix}-{i}") for i in range(5)}
    seen, token, pages = [], None, 0
    while True:
        kw = {"maxResults": 2}
        if token:
            kw["nextToken"] = token
        r = sfn.list_state_machines(**kw)
        assert len(r["stateMachines"]) <= 2
        seen += [m["stateMachineArn"] for m in r["stateMachines"]]
        pages += 1
        token = r.get("nextToken")
        if not token:
            break
    assert arns <= set(seen)
    assert len(seen) == len(set(seen)), "a machine was listed twice"
    assert pages >= 3
    item = next(m for m in sfn.list_state_machines()["stateMachines"] if m["stateMachineArn"] in arns)
    assert item["type"] == "STANDARD" and item["name"].startswith(prefix)


def test_update_changes_revision_and_publishes(sfn):
    # API_UpdateStateMachine: returns revisionId and, with publish=true, stateMachineVersionArn.
    arn = machine(sfn, pass_chain(1, "v0"))
    r0 = sfn.describe_state_machine(stateMachineArn=arn)
    u = sfn.update_state_machine(stateMachineArn=arn, definition=json.dumps(pass_chain(1, "v1")),
                                 publish=True, versionDescription="first")
    assert u["revisionId"] != r0.get("revisionId")
    assert u["stateMachineVersionArn"] == f"{arn}:1"
    d = sfn.describe_state_machine(stateMachineArn=arn)
    assert d["revisionId"] == u["revisionId"]
    assert json.loads(d["definition"]) == pass_chain(1, "v1")
    v = sfn.describe_state_machine(stateMachineArn=f"{arn}:1")
    assert v["description"] == "first" and json.loads(v["definition"]) == pass_chain(1, "v1")
    with pytest.raises(ClientError) as e:
        sfn.update_state_machine(stateMachineArn=arn, definition=json.dumps({"StartAt": "X", "States": {}}))
    assert error(e)[0] == "InvalidDefinition"
    with pytest.raises(ClientError) as e:
        sfn.update_state_machine(stateMachineArn=arn)
    assert error(e)[0] == "MissingRequiredParameter"


def test_delete_state_machine(sfn):
    arn = machine(sfn, pass_chain(1))
    sfn.delete_state_machine(stateMachineArn=arn)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            st = sfn.describe_state_machine(stateMachineArn=arn)["status"]
            assert st == "DELETING"
        except ClientError as e:
            assert error(e)[0] == "StateMachineDoesNotExist"
            break
        time.sleep(0.05)
    else:
        raise AssertionError("machine not deleted within 5 s")
    sfn.delete_state_machine(stateMachineArn=arn)  # deleting again is not an error (API_DeleteStateMachine)


def test_validate_definition(sfn):
    # API_ValidateStateMachineDefinition: result OK/FAIL with diagnostics (severity, code, message, location).
    ok = sfn.validate_state_machine_definition(definition=json.dumps(pass_chain(2)))
    assert ok["result"] == "OK" and [d for d in ok["diagnostics"] if d["severity"] == "ERROR"] == []
    bad = sfn.validate_state_machine_definition(
        definition=json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}}}))
    assert bad["result"] == "FAIL"
    diag = bad["diagnostics"][0]
    assert diag["severity"] == "ERROR" and diag["code"] == "MISSING_TRANSITION_TARGET"
    assert "B" in diag["message"]
    assert diag["location"] == "/States/A/Next"
    js = sfn.validate_state_machine_definition(definition="{")
    assert js["result"] == "FAIL" and js["diagnostics"][0]["code"] == "INVALID_JSON_DESCRIPTION"


def test_versions(sfn):
    # API_PublishStateMachineVersion: publishing an unchanged revision returns the latest version.
    arn = machine(sfn, pass_chain(1, "one"))
    v1 = sfn.publish_state_machine_version(stateMachineArn=arn, description="d1")
    assert v1["stateMachineVersionArn"] == f"{arn}:1"
    assert sfn.publish_state_machine_version(stateMachineArn=arn)["stateMachineVersionArn"] == f"{arn}:1"
    sfn.update_state_machine(stateMachineArn=arn, definition=json.dumps(pass_chain(1, "two")))
    v2 = sfn.publish_state_machine_version(stateMachineArn=arn)
    assert v2["stateMachineVersionArn"] == f"{arn}:2"
    listed = [v["stateMachineVersionArn"] for v in sfn.list_state_machine_versions(stateMachineArn=arn)["stateMachineVersions"]]
    assert listed == [f"{arn}:2", f"{arn}:1"]  # newest first
    page = sfn.list_state_machine_versions(stateMachineArn=arn, maxResults=1)
    assert len(page["stateMachineVersions"]) == 1 and page.get("nextToken")
    # a version runs its own definition
    d = wait_done(sfn, start(sfn, f"{arn}:1"))
    assert output(d) == "one" and d["stateMachineVersionArn"] == f"{arn}:1"
    sfn.delete_state_machine_version(stateMachineVersionArn=f"{arn}:1")
    listed = [v["stateMachineVersionArn"] for v in sfn.list_state_machine_versions(stateMachineArn=arn)["stateMachineVersions"]]
    assert listed == [f"{arn}:2"]


def test_aliases(sfn):
    # API_CreateStateMachineAlias / StartExecution through an alias (Developer Guide
    # "Step Functions aliases": the execution records stateMachineAliasArn and the version it ran).
    arn = machine(sfn, pass_chain(1, "one"))
    v1 = sfn.publish_state_machine_version(stateMachineArn=arn)["stateMachineVersionArn"]
    sfn.update_state_machine(stateMachineArn=arn, definition=json.dumps(pass_chain(1, "two")))
    v2 = sfn.publish_state_machine_version(stateMachineArn=arn)["stateMachineVersionArn"]
    a = sfn.create_state_machine_alias(name="prod", description="p",
                                       routingConfiguration=[{"stateMachineVersionArn": v1, "weight": 100}])
    alias = a["stateMachineAliasArn"]
    assert alias == f"{arn}:prod"
    d = sfn.describe_state_machine_alias(stateMachineAliasArn=alias)
    assert d["name"] == "prod" and d["routingConfiguration"] == [{"stateMachineVersionArn": v1, "weight": 100}]
    ex = wait_done(sfn, start(sfn, alias))
    assert output(ex) == "one"
    assert ex["stateMachineAliasArn"] == alias and ex["stateMachineVersionArn"] == v1
    sfn.update_state_machine_alias(stateMachineAliasArn=alias,
                                   routingConfiguration=[{"stateMachineVersionArn": v2, "weight": 100}])
    assert output(wait_done(sfn, start(sfn, alias))) == "two"
    # Routing weights split executions between two versions.
    sfn.update_state_machine_alias(stateMachineAliasArn=alias, routingConfiguration=[
        {"stateMachineVersionArn": v1, "weight": 50}, {"stateMachineVersionArn": v2, "weight": 50}])
    outs = {output(wait_done(sfn, start(sfn, alias))) for _ in range(24)}
    assert outs == {"one", "two"}
    listed = sfn.list_state_machine_aliases(stateMachineArn=arn)["stateMachineAliases"]
    assert [x["stateMachineAliasArn"] for x in listed] == [alias]
    with pytest.raises(ClientError) as e:  # weights must add up to 100
        sfn.create_state_machine_alias(name="bad", routingConfiguration=[{"stateMachineVersionArn": v1, "weight": 40}])
    assert error(e)[0] == "ValidationException"
    with pytest.raises(ClientError) as e:  # a version an alias points to cannot be deleted
        sfn.delete_state_machine_version(stateMachineVersionArn=v1)
    assert error(e)[0] == "ConflictException"
    sfn.delete_state_machine_alias(stateMachineAliasArn=alias)
    assert sfn.list_state_machine_aliases(stateMachineArn=arn)["stateMachineAliases"] == []
    with pytest.raises(ClientError) as e:
        sfn.describe_state_machine_alias(stateMachineAliasArn=alias)
    assert error(e) == ("ResourceNotFound", f"Resource not found: '{alias}'")


def test_tags(sfn):
    arn = machine(sfn, pass_chain(1), tags=[{"key": "team", "value": "ml"}])
    sfn.tag_resource(resourceArn=arn, tags=[{"key": "env", "value": "dev"}, {"key": "team", "value": "ai"}])
    got = {t["key"]: t["value"] for t in sfn.list_tags_for_resource(resourceArn=arn)["tags"]}
    assert got == {"team": "ai", "env": "dev"}
    sfn.untag_resource(resourceArn=arn, tagKeys=["team"])
    assert sfn.list_tags_for_resource(resourceArn=arn)["tags"] == [{"key": "env", "value": "dev"}]
    missing = sm_arn(unique("gone"))
    with pytest.raises(ClientError) as e:
        sfn.list_tags_for_resource(resourceArn=missing)
    assert error(e) == ("ResourceNotFound", f"Resource not found: '{missing}'")


# --- executions ------------------------------------------------------------------------------

def test_start_execution_name_idempotency(sfn):
    # API_StartExecution: "StartExecution is idempotent for STANDARD workflows ... if a
    # StartExecution call with the same name and input as a running execution ... returns the
    # existing execution; with a different input, ExecutionAlreadyExists".
    arn = machine(sfn, {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 2, "End": True}}})
    name = unique("ex")
    r1 = sfn.start_execution(stateMachineArn=arn, name=name, input='{"a":1}')
    r2 = sfn.start_execution(stateMachineArn=arn, name=name, input='{"a":1}')
    assert r1["executionArn"] == r2["executionArn"]
    assert r1["executionArn"] == f"arn:aws:states:{REGION}:{ACCOUNT}:execution:{arn.rsplit(':', 1)[1]}:{name}"
    with pytest.raises(ClientError) as e:
        sfn.start_execution(stateMachineArn=arn, name=name, input='{"a":2}')
    assert error(e) == ("ExecutionAlreadyExists", f"Execution Already Exists: '{r1['executionArn']}'")
    with pytest.raises(ClientError) as e:
        sfn.start_execution(stateMachineArn=arn, input="not json")
    assert error(e)[0] == "InvalidExecutionInput"
    with pytest.raises(ClientError) as e:
        sfn.start_execution(stateMachineArn=arn, name="bad name")
    assert error(e) == ("InvalidName", "Invalid Name: 'bad name'")
    sfn.stop_execution(executionArn=r1["executionArn"])


def test_describe_execution_fields(sfn):
    arn = machine(sfn, pass_chain(2, {"r": True}))
    ex = start(sfn, arn, {"in": 1}, name="fields")
    d = wait_done(sfn, ex)
    assert d["executionArn"] == ex and d["stateMachineArn"] == arn and d["name"] == "fields"
    assert d["status"] == "SUCCEEDED"
    assert json.loads(d["input"]) == {"in": 1} and json.loads(d["output"]) == {"r": True}
    assert d["inputDetails"] == {"included": True} and d["outputDetails"] == {"included": True}
    assert d["startDate"] <= d["stopDate"]
    missing = ex + "-gone"
    with pytest.raises(ClientError) as e:
        sfn.describe_execution(executionArn=missing)
    assert error(e) == ("ExecutionDoesNotExist", f"Execution Does Not Exist: '{missing}'")
    m = sfn.describe_state_machine_for_execution(executionArn=ex)
    assert m["stateMachineArn"] == arn and json.loads(m["definition"]) == pass_chain(2, {"r": True})


def test_list_executions_filter_order_pagination(sfn):
    arn = machine(sfn, {"StartAt": "C", "States": {"C": {"Type": "Choice", "Choices": [
        {"Variable": "$.wait", "BooleanEquals": True, "Next": "W"}], "Default": "Done"},
        "W": {"Type": "Wait", "Seconds": 30, "End": True}, "Done": {"Type": "Succeed"}}})
    done = [start(sfn, arn, {"wait": False}, name=f"d{i}") for i in range(3)]
    for ex in done:
        wait_done(sfn, ex)
    running = start(sfn, arn, {"wait": True}, name="r0")
    all_ = [e["executionArn"] for p in sfn.get_paginator("list_executions").paginate(
        stateMachineArn=arn, PaginationConfig={"PageSize": 1}) for e in p["executions"]]
    assert all_ == [running] + done[::-1], "newest first"
    r = sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING")["executions"]
    assert [e["executionArn"] for e in r] == [running] and r[0]["status"] == "RUNNING"
    s = sfn.list_executions(stateMachineArn=arn, statusFilter="SUCCEEDED")["executions"]
    assert {e["executionArn"] for e in s} == set(done)
    assert all("stopDate" in e for e in s)
    sfn.stop_execution(executionArn=running)
    missing = arn + "-gone"
    with pytest.raises(ClientError) as e:
        sfn.list_executions(stateMachineArn=missing)
    assert error(e) == ("StateMachineDoesNotExist", f"State Machine Does Not Exist: '{missing}'")


def test_stop_execution(sfn):
    # API_StopExecution: status ABORTED, error and cause as given; ExecutionAborted in history.
    arn = machine(sfn, {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 60, "End": True}}})
    ex = start(sfn, arn)
    time.sleep(0.2)
    r = sfn.stop_execution(executionArn=ex, error="MyErr", cause="operator said so")
    assert "stopDate" in r
    d = sfn.describe_execution(executionArn=ex)
    assert d["status"] == "ABORTED" and d["error"] == "MyErr" and d["cause"] == "operator said so"
    ev = history(sfn, ex)
    assert ev[-1]["type"] == "ExecutionAborted"
    assert ev[-1]["executionAbortedEventDetails"] == {"error": "MyErr", "cause": "operator said so"}


def test_history_ids_and_types_pass_choice_succeed(sfn):
    # Developer Guide "Execution history events": ids are 1-based and consecutive, each
    # event names the one before it.
    d = {"StartAt": "P", "States": {
        "P": {"Type": "Pass", "Result": 5, "ResultPath": "$.n", "Next": "C"},
        "C": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericGreaterThan": 3, "Next": "Big"}],
              "Default": "Small"},
        "Big": {"Type": "Succeed"}, "Small": {"Type": "Fail", "Error": "E"}}}
    ex = run(sfn, d, {})
    ev = history(sfn, ex["executionArn"])
    assert types(ev) == ["ExecutionStarted", "PassStateEntered", "PassStateExited", "ChoiceStateEntered",
                         "ChoiceStateExited", "SucceedStateEntered", "SucceedStateExited", "ExecutionSucceeded"]
    assert [e["id"] for e in ev] == list(range(1, len(ev) + 1))
    assert ev[0]["previousEventId"] == 0
    assert all(e["previousEventId"] == e["id"] - 1 for e in ev[1:])
    assert ev[1]["stateEnteredEventDetails"]["name"] == "P"
    assert json.loads(ev[2]["stateExitedEventDetails"]["output"]) == {"n": 5}
    assert json.loads(ev[-1]["executionSucceededEventDetails"]["output"]) == {"n": 5}
    assert json.loads(ev[0]["executionStartedEventDetails"]["input"]) == {}
    rev = history(sfn, ex["executionArn"], reverseOrder=True)
    assert [e["id"] for e in rev] == [e["id"] for e in ev][::-1]
    lean = sfn.get_execution_history(executionArn=ex["executionArn"], includeExecutionData=False)["events"]
    assert "input" not in lean[0]["executionStartedEventDetails"]
    assert "output" not in lean[2]["stateExitedEventDetails"]
    page = sfn.get_execution_history(executionArn=ex["executionArn"], maxResults=3)
    assert [e["id"] for e in page["events"]] == [1, 2, 3] and page["nextToken"]
    nxt = sfn.get_execution_history(executionArn=ex["executionArn"], maxResults=3, nextToken=page["nextToken"])
    assert [e["id"] for e in nxt["events"]] == [4, 5, 6]


def test_fail_state(sfn):
    d = run(sfn, {"StartAt": "F", "States": {"F": {"Type": "Fail", "ErrorPath": "$.e", "CausePath": "$.c"}}},
            {"e": "Boom", "c": "because"})
    assert d["status"] == "FAILED" and d["error"] == "Boom" and d["cause"] == "because"
    ev = history(sfn, d["executionArn"])
    assert types(ev)[-2:] == ["FailStateEntered", "ExecutionFailed"]
    assert ev[-1]["executionFailedEventDetails"] == {"error": "Boom", "cause": "because"}


def test_wait_state_timing_and_events(sfn):
    # Developer Guide "Wait state": the state waits Seconds before the next state.
    arn = machine(sfn, {"StartAt": "W", "States": {"W": {"Type": "Wait", "SecondsPath": "$.s", "Next": "E"},
                                                   "E": {"Type": "Pass", "End": True}}})
    t0 = time.time()
    ex = start(sfn, arn, {"s": 2})
    time.sleep(1.5)
    assert sfn.describe_execution(executionArn=ex)["status"] == "RUNNING", "the Wait ended early"
    d = wait_done(sfn, ex, timeout=10)
    took = d["stopDate"].timestamp() - d["startDate"].timestamp()
    assert 2.0 <= took <= 4.0, took
    assert time.time() - t0 <= 4.5
    assert types(history(sfn, ex))[1:3] == ["WaitStateEntered", "WaitStateExited"]


def test_wait_timestamp(sfn):
    import datetime
    due = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    d = run(sfn, {"StartAt": "W", "States": {"W": {"Type": "Wait", "TimestampPath": "$.at", "End": True}}},
            {"at": due}, timeout=10)
    assert d["status"] == "SUCCEEDED"
    assert d["stopDate"].timestamp() >= datetime.datetime.strptime(due, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc).timestamp() - 0.001


def test_input_output_processing(sfn):
    # Developer Guide "Processing input and output": InputPath -> Parameters -> (task) ->
    # ResultSelector -> ResultPath -> OutputPath.
    d = {"StartAt": "P", "States": {"P": {
        "Type": "Pass", "InputPath": "$.order",
        "Parameters": {"id.$": "$.id", "fixed": "x", "label.$": "States.Format('order {} of {}', $.id, $.who)",
                       "items.$": "States.ArrayLength($.items)", "ctx.$": "$$.State.Name"},
        "ResultPath": "$.order.summary", "OutputPath": "$.order", "Next": "Q"},
        "Q": {"Type": "Pass", "Parameters": {
            "arr.$": "States.Array(1, 'two', $.summary.id)",
            "part.$": "States.ArrayPartition($.items, 2)",
            "has.$": "States.ArrayContains($.items, 3)",
            "range.$": "States.ArrayRange(1, 9, 4)",
            "item.$": "States.ArrayGetItem($.items, 1)",
            "uniq.$": "States.ArrayUnique($.dups)",
            "b64.$": "States.Base64Encode('hi')",
            "unb64.$": "States.Base64Decode('aGk=')",
            "hash.$": "States.Hash('abc', 'SHA-256')",
            "merged.$": "States.JsonMerge($.a, $.b, false)",
            "sum.$": "States.MathAdd(40, 2)",
            "split.$": "States.StringSplit('a,b,c', ',')",
            "json.$": "States.StringToJson('{\"k\":1}')",
            "text.$": "States.JsonToString($.a)",
            "uuid.$": "States.UUID()",
            "rnd.$": "States.MathRandom(1, 5)"}, "ResultPath": "$.f", "End": True}}}
    out = output(run(sfn, d, {"order": {"id": 7, "who": "ann", "items": [1, 2, 3], "dups": [1, 1, 2],
                                        "a": {"x": 1}, "b": {"y": 2}}, "other": True}))
    assert out["summary"] == {"id": 7, "fixed": "x", "label": "order 7 of ann", "items": 3, "ctx": "P"}
    f = out["f"]
    assert f["arr"] == [1, "two", 7]
    assert f["part"] == [[1, 2], [3]]
    assert f["has"] is True
    assert f["range"] == [1, 5, 9]
    assert f["item"] == 2
    assert f["uniq"] == [1, 2]
    assert f["b64"] == "aGk=" and f["unb64"] == "hi"
    assert f["hash"] == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert f["merged"] == {"x": 1, "y": 2}
    assert f["sum"] == 42
    assert f["split"] == ["a", "b", "c"]
    assert f["json"] == {"k": 1}
    assert json.loads(f["text"]) == {"x": 1}
    assert len(f["uuid"]) == 36 and f["uuid"].count("-") == 4
    assert 1 <= f["rnd"] <= 5


def test_result_selector_and_context_object(sfn):
    # Developer Guide "Accessing execution data from the Context object"; ResultSelector is a
    # field of Task, Map and Parallel ("Processing input and output").
    d = {"StartAt": "P", "States": {"P": {
        "Type": "Parallel", "Branches": [{"StartAt": "B", "States": {
            "B": {"Type": "Pass", "Result": {"big": {"a": 1, "b": 2}}, "End": True}}}],
        "ResultSelector": {"a.$": "$[0].big.a"}, "ResultPath": "$.sel", "Next": "C"},
        "C": {"Type": "Pass", "Parameters": {"exec.$": "$$.Execution.Id", "name.$": "$$.Execution.Name",
                                             "input.$": "$$.Execution.Input", "sm.$": "$$.StateMachine.Id",
                                             "state.$": "$$.State.Name", "entered.$": "$$.State.EnteredTime",
                                             "retry.$": "$$.State.RetryCount"},
              "ResultPath": "$.ctx", "End": True}}}
    arn = machine(sfn, d)
    ex = start(sfn, arn, {"k": "v"}, name="ctxrun")
    out = output(wait_done(sfn, ex))
    assert out["sel"] == {"a": 1}
    c = out["ctx"]
    assert c["exec"] == ex and c["name"] == "ctxrun" and c["input"] == {"k": "v"} and c["sm"] == arn
    assert c["state"] == "C" and c["retry"] == 0 and c["entered"].endswith("Z")


def test_result_path_null_and_output_path_null(sfn):
    d = {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": 1, "ResultPath": None, "Next": "Q"},
                                    "Q": {"Type": "Pass", "OutputPath": None, "End": True}}}
    assert output(run(sfn, d, {"keep": 1})) == {}
    d = {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": 1, "ResultPath": None, "End": True}}}
    assert output(run(sfn, d, {"keep": 1})) == {"keep": 1}


def test_runtime_error_for_missing_path(sfn):
    # Developer Guide "Error names": States.Runtime when a path does not match.
    d = run(sfn, {"StartAt": "P", "States": {"P": {"Type": "Pass", "InputPath": "$.missing", "End": True}}}, {})
    assert d["status"] == "FAILED" and d["error"] == "States.Runtime"
    assert "$.missing" in d["cause"]


def test_no_choice_matched(sfn):
    d = run(sfn, {"StartAt": "C", "States": {"C": {"Type": "Choice", "Choices": [
        {"Variable": "$.x", "StringEquals": "a", "Next": "E"}]}, "E": {"Type": "Succeed"}}}, {"x": "b"})
    assert d["status"] == "FAILED" and d["error"] == "States.NoChoiceMatched"


CHOICE_CASES = [
    ({"Variable": "$.s", "StringMatches": "log-*.txt"}, {"s": "log-01.txt"}, True),
    ({"Variable": "$.s", "StringMatches": "a\\*b"}, {"s": "a*b"}, True),
    ({"Variable": "$.s", "StringMatches": "a\\*b"}, {"s": "axb"}, False),
    ({"Variable": "$.n", "NumericLessThanEqualsPath": "$.m"}, {"n": 3, "m": 3}, True),
    ({"Variable": "$.t", "TimestampGreaterThan": "2020-01-01T00:00:00Z"}, {"t": "2021-06-01T00:00:00Z"}, True),
    ({"Variable": "$.x", "IsPresent": False}, {}, True),
    ({"Variable": "$.x", "IsNull": True}, {"x": None}, True),
    ({"Variable": "$.x", "IsNumeric": True}, {"x": "1"}, False),
    ({"Variable": "$.x", "IsTimestamp": True}, {"x": "2020-01-01T00:00:00Z"}, True),
    ({"And": [{"Variable": "$.a", "BooleanEquals": True}, {"Not": {"Variable": "$.b", "StringEquals": "x"}}]},
     {"a": True, "b": "y"}, True),
    ({"Or": [{"Variable": "$.a", "NumericEquals": 1}, {"Variable": "$.a", "NumericEquals": 2}]}, {"a": 3}, False),
]


@pytest.mark.parametrize("rule,payload,matches", CHOICE_CASES)
def test_choice_rules(sfn, rule, payload, matches):
    # Developer Guide "Choice state" (comparison operators, StringMatches with \\* escapes).
    d = {"StartAt": "C", "States": {"C": {"Type": "Choice", "Choices": [{**rule, "Next": "Yes"}], "Default": "No"},
                                    "Yes": {"Type": "Pass", "Result": "yes", "End": True},
                                    "No": {"Type": "Pass", "Result": "no", "End": True}}}
    assert output(run(sfn, d, payload)) == ("yes" if matches else "no")


def test_retry_with_backoff_then_catch(sfn):
    # Developer Guide "Handling errors": Retry IntervalSeconds * BackoffRate^n, then Catch with
    # ResultPath receiving {Error, Cause}.
    d = {"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": "arn:aws:states:::states:startExecution",
              "Parameters": {"StateMachineArn": sm_arn("does-not-exist-" + unique("x")), "Input": {}},
              "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": 2, "BackoffRate": 1.5}],
              "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.err", "Next": "H"}], "End": True},
        "H": {"Type": "Pass", "End": True}}}
    t0 = time.monotonic()
    d = run(sfn, d, {"keep": 1})
    took = time.monotonic() - t0
    out = output(d)
    assert out["keep"] == 1
    assert out["err"]["Error"] == "StepFunctions.StateMachineDoesNotExistException", out
    assert "Cause" in out["err"]
    assert took >= 2.5, f"two retries of 1 s and 1.5 s ended after {took:.2f} s"
    ev = types(history(sfn, d["executionArn"]))
    assert ev.count("TaskScheduled") == 3 and ev.count("TaskFailed") == 3


def test_retry_max_attempts_zero_and_error_equals_order(sfn):
    d = {"StartAt": "F", "States": {
        "F": {"Type": "Parallel", "Branches": [{"StartAt": "X", "States": {"X": {"Type": "Fail", "Error": "Custom"}}}],
              "Retry": [{"ErrorEquals": ["Custom"], "MaxAttempts": 0}],
              "Catch": [{"ErrorEquals": ["Other"], "Next": "No"}, {"ErrorEquals": ["Custom"], "Next": "Yes"}],
              "End": True},
        "Yes": {"Type": "Pass", "Result": "caught", "End": True}, "No": {"Type": "Pass", "End": True}}}
    d = run(sfn, d, {})
    assert output(d) == "caught"


def test_retry_max_delay_caps_backoff(sfn):
    # Developer Guide "Handling errors": MaxDelaySeconds caps IntervalSeconds * BackoffRate^n.
    d = {"StartAt": "P", "States": {"P": {
        "Type": "Parallel", "Branches": [{"StartAt": "X", "States": {"X": {"Type": "Fail", "Error": "Flaky"}}}],
        "Retry": [{"ErrorEquals": ["Flaky"], "IntervalSeconds": 1, "BackoffRate": 10.0, "MaxDelaySeconds": 1,
                   "MaxAttempts": 2}], "End": True}}}
    d = run(sfn, d, {}, timeout=20)
    took = d["stopDate"].timestamp() - d["startDate"].timestamp()
    assert d["status"] == "FAILED" and d["error"] == "Flaky"
    assert 2.0 <= took < 5.0, f"retries of 1 s and (capped) 1 s took {took:.2f} s"


def test_execution_timeout(sfn):
    # ASL "TimeoutSeconds" at the top level: the execution fails with States.Timeout and its
    # status is TIMED_OUT.
    d = run(sfn, {"TimeoutSeconds": 1, "StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 30, "End": True}}},
            {}, timeout=10)
    assert d["status"] == "TIMED_OUT"
    ev = history(sfn, d["executionArn"])
    assert ev[-1]["type"] == "ExecutionTimedOut"
    assert ev[-1]["executionTimedOutEventDetails"]["error"] == "States.Timeout"


def test_parallel(sfn):
    # Developer Guide "Parallel state": output is an array of each branch's output, in order.
    d = {"StartAt": "P", "States": {"P": {"Type": "Parallel", "Branches": [
        {"StartAt": "A", "States": {"A": {"Type": "Pass", "Parameters": {"b.$": "$.x"}, "End": True}}},
        {"StartAt": "B", "States": {"B": {"Type": "Wait", "Seconds": 1, "Next": "B2"},
                                    "B2": {"Type": "Pass", "Result": "slow", "End": True}}}],
        "ResultPath": "$.r", "End": True}}}
    d = run(sfn, d, {"x": 1})
    assert output(d) == {"x": 1, "r": [{"b": 1}, "slow"]}
    ev = types(history(sfn, d["executionArn"]))
    assert ev[1:3] == ["ParallelStateEntered", "ParallelStateStarted"]
    assert "ParallelStateSucceeded" in ev and ev[-2] == "ParallelStateExited"


def test_parallel_branch_failure(sfn):
    d = {"StartAt": "P", "States": {"P": {"Type": "Parallel", "Branches": [
        {"StartAt": "A", "States": {"A": {"Type": "Fail", "Error": "BranchErr", "Cause": "c"}}},
        {"StartAt": "B", "States": {"B": {"Type": "Pass", "End": True}}}], "End": True}}}
    d = run(sfn, d, {})
    assert d["status"] == "FAILED" and d["error"] == "BranchErr" and d["cause"] == "c"
    assert "ParallelStateFailed" in types(history(sfn, d["executionArn"]))


def test_inline_map(sfn):
    # Developer Guide "Map state in inline mode": ItemsPath, ItemSelector with $$.Map.Item.*,
    # MaxConcurrency; output keeps the items' order.
    d = {"StartAt": "M", "States": {"M": {
        "Type": "Map", "ItemsPath": "$.xs", "MaxConcurrency": 2,
        "ItemSelector": {"v.$": "$$.Map.Item.Value", "i.$": "$$.Map.Item.Index", "k.$": "$.k"},
        "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "D", "States": {
            "D": {"Type": "Pass", "Parameters": {"out.$": "States.MathAdd($.v, $.i)", "k.$": "$.k"}, "End": True}}},
        "ResultPath": "$.ys", "End": True}}}
    d = run(sfn, d, {"xs": [10, 20, 30, 40, 50], "k": "K"})
    out = output(d)
    assert out["ys"] == [{"out": 10 + i * 11, "k": "K"} for i in range(5)]
    ev = types(history(sfn, d["executionArn"]))
    assert ev[1:3] == ["MapStateEntered", "MapStateStarted"]
    assert ev.count("MapIterationStarted") == 5 and ev.count("MapIterationSucceeded") == 5
    assert "MapStateSucceeded" in ev
    full = history(sfn, d["executionArn"])
    assert full[2]["mapStateStartedEventDetails"] == {"length": 5}
    its = [e["mapIterationStartedEventDetails"] for e in full if e["type"] == "MapIterationStarted"]
    assert sorted(i["index"] for i in its) == [0, 1, 2, 3, 4] and {i["name"] for i in its} == {"M"}
    ids = {e["id"] for e in full}
    assert all(e["previousEventId"] in ids | {0} and e["previousEventId"] < e["id"] for e in full)


def test_map_max_concurrency_bounds_parallelism(sfn):
    # Developer Guide "Map state": MaxConcurrency 1 runs the iterations one after another; 0
    # (the default) runs them all at once.
    def m(conc):
        return {"StartAt": "M", "States": {"M": {
            "Type": "Map", "MaxConcurrency": conc, "ItemProcessor": {"StartAt": "W", "States": {
                "W": {"Type": "Wait", "Seconds": 1, "End": True}}}, "End": True}}}
    serial = run(sfn, m(1), [1, 2, 3], timeout=20)
    wide = run(sfn, m(0), [1, 2, 3], timeout=20)
    assert output(serial) == [1, 2, 3] and output(wide) == [1, 2, 3]
    took = lambda d: d["stopDate"].timestamp() - d["startDate"].timestamp()  # noqa: E731
    assert took(serial) >= 3.0, took(serial)
    assert took(wide) < 2.5, took(wide)


def test_map_iteration_failure_fails_map(sfn):
    d = {"StartAt": "M", "States": {"M": {
        "Type": "Map", "ItemProcessor": {"StartAt": "C", "States": {
            "C": {"Type": "Choice", "Choices": [{"Variable": "$", "NumericEquals": 2, "Next": "F"}], "Default": "OK"},
            "F": {"Type": "Fail", "Error": "Two"}, "OK": {"Type": "Succeed"}}},
        "Catch": [{"ErrorEquals": ["Two"], "Next": "H"}], "End": True},
        "H": {"Type": "Pass", "End": True}}}
    d = run(sfn, d, [1, 2, 3])
    assert output(d)["Error"] == "Two"
    ev = types(history(sfn, d["executionArn"]))
    assert "MapIterationFailed" in ev and "MapStateFailed" in ev


def test_jsonata_output_and_variables(sfn):
    # Developer Guide "Transforming data with JSONata" and "Passing data between states with
    # variables": Assign is evaluated on the state's input, Output on its result, and a
    # variable is visible to the states after it.
    d = {"QueryLanguage": "JSONata", "StartAt": "A", "States": {
        "A": {"Type": "Pass", "Assign": {"total": "{% $sum($states.input.xs) %}"},
              "Output": {"n": "{% $count($states.input.xs) %}"}, "Next": "B"},
        "B": {"Type": "Pass", "Output": "{% {'avg': $total / $states.input.n, 'parts': $partition([1,2,3], 2)} %}",
              "End": True}}}
    assert output(run(sfn, d, {"xs": [2, 4, 6]})) == {"avg": 4, "parts": [[1, 2], [3]]}
