"""Step Functions through boto3: the control plane, executions with their history, the
Amazon States Language's data flow, task integrations, activities, EXPRESS and TestState.

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
from sfn_helpers import (ROLE, error, history, machine, output, pass_chain, run, sm_arn, start, types,
                         wait_done)


@pytest.fixture(scope="module")
def sfn(make_client):
    # StartSyncExecution and TestState carry the host prefix "sync-" in botocore's model (AWS
    # serves them on sync-states.<region>.amazonaws.com); a loopback endpoint has no such
    # host, so the prefix is not injected, as with any local endpoint.
    return make_client("stepfunctions", inject_host_prefix=False)


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


# --- tasks -----------------------------------------------------------------------------------
# Developer Guide "Integrating services with Step Functions" and the per-service pages
# (connect-lambda, connect-ddb, connect-sqs, connect-sns, connect-eventbridge,
# connect-stepfunctions, supported-services-awssdk).

def _have_python_runtime() -> bool:
    import os
    from pathlib import Path
    runtimes = Path(os.environ.get("BASALT_RUNTIME_DIR", Path.home() / ".cache/basalt/runtimes"))
    return any(runtimes.glob("python3.*/.installed"))


needs_lambda = pytest.mark.skipif(not _have_python_runtime(),
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
