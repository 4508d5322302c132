"""Lambda through boto3: functions run for real (Python through awslambdaric, provided.al2023
through a shell bootstrap), warm, sandboxed, with their logs in CloudWatch Logs."""
from __future__ import annotations

import base64
import io
import json
import os
import time
import urllib.request
import zipfile

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT, REGION, BasaltServer, make_client_factory, unique

ROLE = f"arn:aws:iam::{ACCOUNT}:role/compat-lambda"


def zip_of(files: dict[str, str], modes: dict[str, int] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in files.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = ((modes or {}).get(name, 0o644) | 0o100000) << 16
            z.writestr(info, text)
    return buf.getvalue()


@pytest.fixture(scope="module")
def lam(make_client):
    return make_client("lambda")


@pytest.fixture(scope="module")
def logs(make_client):
    return make_client("logs")


@pytest.fixture(autouse=True, scope="module")
def _needs_python_runtime():
    from pathlib import Path
    runtimes = Path(os.environ.get("BASALT_RUNTIME_DIR", Path.home() / ".cache/basalt/runtimes"))
    if not any(runtimes.glob("python3.*/.installed")):
        pytest.skip("no Lambda Python runtime installed (basalt runtimes pull)")


def create(lam, source: str, handler="index.handler", runtime="python3.12", files=None, modes=None, **kw):
    name = unique("fn")
    code = zip_of(files or {"index.py": source}, modes)
    r = lam.create_function(FunctionName=name, Runtime=runtime, Role=ROLE, Handler=handler,
                            Code={"ZipFile": code}, **kw)
    lam.get_waiter("function_active_v2").wait(FunctionName=name)
    return name, r, code


def invoke(lam, name, payload=None, **kw):
    r = lam.invoke(FunctionName=name, Payload=json.dumps(payload if payload is not None else {}).encode(), **kw)
    body = r["Payload"].read()
    return r, (json.loads(body) if body else None)


COUNTER = '''
import os, json
CALLS = 0
print("cold start")

def handler(event, context):
    global CALLS
    CALLS += 1
    print("call", CALLS, json.dumps(event))
    return {"calls": CALLS, "request_id": context.aws_request_id, "arn": context.invoked_function_arn,
            "left": context.get_remaining_time_in_millis(), "group": context.log_group_name,
            "name": os.environ["AWS_LAMBDA_FUNCTION_NAME"], "version": os.environ["AWS_LAMBDA_FUNCTION_VERSION"],
            "memory": os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "region": os.environ["AWS_REGION"],
            "color": os.environ.get("COLOR"), "task_root": os.environ["LAMBDA_TASK_ROOT"],
            "exec_env": os.environ["AWS_EXECUTION_ENV"]}
'''


def test_create_get_list_and_errors(lam):
    name, created, code = create(lam, COUNTER, Environment={"Variables": {"COLOR": "blue"}},
                                 MemorySize=256, Timeout=5, Tags={"team": "ml"})
    assert created["State"] == "Pending" and created["StateReasonCode"] == "Creating"
    assert created["FunctionArn"] == f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
    assert created["Version"] == "$LATEST" and created["CodeSize"] == len(code)
    import hashlib
    assert created["CodeSha256"] == base64.b64encode(hashlib.sha256(code).digest()).decode()
    got = lam.get_function(FunctionName=name)
    assert got["Configuration"]["State"] == "Active"
    assert got["Configuration"]["LastUpdateStatus"] == "Successful"
    assert got["Configuration"]["Environment"]["Variables"] == {"COLOR": "blue"}
    assert got["Tags"] == {"team": "ml"}
    # The code URL downloads the package itself.
    with urllib.request.urlopen(got["Code"]["Location"]) as resp:
        assert resp.read() == code
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(got["Code"]["Location"].replace("Signature=", "Signature=0"))
    assert e.value.code == 403
    names = [f["FunctionName"] for f in lam.get_paginator("list_functions").paginate(
        PaginationConfig={"PageSize": 1}).build_full_result()["Functions"]]
    assert name in names
    with pytest.raises(ClientError) as e:
        lam.create_function(FunctionName=name, Runtime="python3.12", Role=ROLE, Handler="index.handler",
                            Code={"ZipFile": code})
    assert e.value.response["Error"]["Code"] == "ResourceConflictException"
    assert e.value.response["Error"]["Message"] == f"Function already exist: {name}"
    with pytest.raises(ClientError) as e:
        lam.get_function(FunctionName=name + "-nope")
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert e.value.response["Error"]["Message"].startswith("Function not found: arn:aws:lambda:")
    for bad in [dict(Runtime="python2.7"), dict(Code={"ZipFile": b"not a zip"}), dict(Timeout=901),
                dict(Environment={"Variables": {"AWS_REGION": "x"}})]:
        kw = dict(FunctionName=unique("bad"), Runtime="python3.12", Role=ROLE, Handler="index.handler",
                  Code={"ZipFile": code})
        kw.update(bad)
        with pytest.raises(ClientError) as e:
            lam.create_function(**kw)
        assert e.value.response["Error"]["Code"] == "InvalidParameterValueException", bad
    lam.delete_function(FunctionName=name)
    with pytest.raises(ClientError) as e:
        lam.get_function_configuration(FunctionName=name)
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_invoke_is_warm_and_has_the_aws_environment(lam, logs):
    name, _, _ = create(lam, COUNTER, Environment={"Variables": {"COLOR": "red"}}, MemorySize=192)
    r, first = invoke(lam, name, {"n": 1}, LogType="Tail")
    assert r["StatusCode"] == 200 and r["ExecutedVersion"] == "$LATEST" and "FunctionError" not in r
    assert first["calls"] == 1 and first["name"] == name and first["version"] == "$LATEST"
    assert first["memory"] == "192" and first["region"] == REGION and first["color"] == "red"
    assert first["group"] == f"/aws/lambda/{name}" and first["exec_env"] == "AWS_Lambda_python3.12"
    assert first["arn"].endswith(f":function:{name}") and 0 < first["left"] <= 3000
    tail = base64.b64decode(r["LogResult"]).decode()
    assert "cold start" in tail and f"START RequestId: {first['request_id']} Version: $LATEST" in tail
    assert f"END RequestId: {first['request_id']}" in tail and "Init Duration:" in tail
    # Module state survives between warm invocations (behind a balancer, each node keeps
    # environments of its own, as each AWS host does).
    calls = [invoke(lam, name, {"n": 2})[1]["calls"] for _ in range(3)]
    assert max(calls) >= 2, calls
    # The output reaches CloudWatch Logs.
    deadline = time.time() + 10
    while True:
        # Logs arrive a moment after the answer (the group is created with the first ones).
        try:
            events = logs.filter_log_events(logGroupName=f"/aws/lambda/{name}", filterPattern='"call 2"')["events"]
        except ClientError as e:
            assert e.response["Error"]["Code"] == "ResourceNotFoundException"
            events = []
        if events or time.time() > deadline:
            break
        time.sleep(0.2)
    assert events and '{"n": 2}' in events[0]["message"]
    streams = logs.describe_log_streams(logGroupName=f"/aws/lambda/{name}")["logStreams"]
    assert streams and "[$LATEST]" in streams[0]["logStreamName"]


def test_function_errors_as_aws_shapes_them(lam):
    src = '''
import time
def handler(event, context):
    if event.get("sleep"):
        time.sleep(event["sleep"])
    raise KeyError("missing thing")
'''
    name, _, _ = create(lam, src, Timeout=1)
    r, err = invoke(lam, name, {})
    assert r["FunctionError"] == "Unhandled"
    assert err["errorType"] == "KeyError" and err["errorMessage"] == "'missing thing'"
    assert isinstance(err["stackTrace"], list)
    r, err = invoke(lam, name, {"sleep": 5})
    assert r["FunctionError"] == "Unhandled"
    assert err["errorType"] == "Sandbox.Timedout"
    assert err["errorMessage"].endswith("Task timed out after 1.00 seconds")

    broken, _, _ = create(lam, "import not_installed_anywhere\n")
    r, err = invoke(lam, broken, {})
    assert r["FunctionError"] == "Unhandled" and err["errorType"] == "Runtime.ImportModuleError"
    missing, _, _ = create(lam, "x = 1\n")
    r, err = invoke(lam, missing, {})
    assert err["errorType"] == "Runtime.HandlerNotFound"
    with pytest.raises(ClientError) as e:
        lam.invoke(FunctionName=name, Payload=b"{not json")
    assert e.value.response["Error"]["Code"] == "InvalidRequestContentException"
    r = lam.invoke(FunctionName=name, InvocationType="DryRun")
    assert r["StatusCode"] == 204


def test_function_uses_the_sdk_against_basalt_with_role_credentials(lam, s3, bucket):
    src = '''
import boto3
def handler(event, context):
    s3 = boto3.client("s3")
    s3.put_object(Bucket=event["bucket"], Key="from-lambda.txt", Body=b"hello from lambda")
    who = boto3.client("sts").get_caller_identity()
    return {"arn": who["Arn"], "body": s3.get_object(Bucket=event["bucket"], Key="from-lambda.txt")["Body"].read().decode()}
'''
    name, _, _ = create(lam, src, Timeout=30)
    _, out = invoke(lam, name, {"bucket": bucket})
    assert out["body"] == "hello from lambda"
    assert out["arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/compat-lambda/{name}"
    assert s3.get_object(Bucket=bucket, Key="from-lambda.txt")["Body"].read() == b"hello from lambda"


def test_a_function_cannot_read_the_data_dir(lam, server):
    if not getattr(server, "data_dir", None):
        pytest.skip("external server: its data dir is not known here")
    health = json.loads(urllib.request.urlopen(server.endpoint + "/_basalt/health").read())
    if not health["lambda"]["isolation"].startswith("landlock"):
        pytest.skip("no Landlock on this kernel")
    src = '''
import os
def handler(event, context):
    out = {}
    for path in event["paths"]:
        try:
            with open(path, "rb") as f:
                out[path] = "read %d bytes" % len(f.read(10))
        except OSError as e:
            out[path] = type(e).__name__
    with open("/tmp/scratch", "w") as f:
        f.write(context.aws_request_id)
    out["opt"] = os.listdir("/opt")
    return out
'''
    name, _, _ = create(lam, src)
    db = os.path.join(server.data_dir, "state.sqlite3")
    _, out = invoke(lam, name, {"paths": [db, "/etc/hostname", "/tmp/scratch"]})
    # Denied by Landlock, or not even visible (a data dir under /tmp is hidden by the
    # environment's own /tmp).
    assert out[db] in ("PermissionError", "FileNotFoundError"), out
    assert out["/tmp/scratch"] == "FileNotFoundError", "each environment has a /tmp of its own"
    if "mount namespace" in health["lambda"]["isolation"] and "private" in health["lambda"]["isolation"]:
        assert out["opt"] == [], "/opt holds the layers only"
    # The warm environment keeps its /tmp between invocations.
    _, again = invoke(lam, name, {"paths": ["/tmp/scratch"]})
    assert again["/tmp/scratch"] == "read 10 bytes"


BOOTSTRAP = r'''#!/bin/sh
set -eu
API="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
while true; do
  HEADERS="$(mktemp)"
  EVENT="$(curl -sS -D "$HEADERS" "$API/invocation/next")"
  ID="$(grep -i '^lambda-runtime-aws-request-id' "$HEADERS" | tr -d '\r' | cut -d' ' -f2)"
  echo "shell got $EVENT"
  curl -sS -X POST -d "{\"echo\":$EVENT,\"handler\":\"$_HANDLER\"}" "$API/invocation/$ID/response" > /dev/null
done
'''


def test_provided_runtime_runs_a_shell_bootstrap(lam):
    name, _, _ = create(lam, None, handler="function.handler", runtime="provided.al2023",
                        files={"bootstrap": BOOTSTRAP}, modes={"bootstrap": 0o755})
    r, out = invoke(lam, name, {"x": [1, 2]}, LogType="Tail")
    assert out == {"echo": {"x": [1, 2]}, "handler": "function.handler"}
    assert 'shell got {"x": [1, 2]}' in base64.b64decode(r["LogResult"]).decode()


def test_versions_aliases_and_updates(lam):
    name, _, _ = create(lam, "def handler(e, c):\n    return 'v1'\n")
    v1 = lam.publish_version(FunctionName=name)
    assert v1["Version"] == "1" and v1["FunctionArn"].endswith(f"{name}:1")
    assert lam.publish_version(FunctionName=name)["Version"] == "1", "unchanged code publishes nothing new"
    up = lam.update_function_code(FunctionName=name, ZipFile=zip_of({"index.py": "def handler(e, c):\n    return 'v2'\n"}))
    assert up["LastUpdateStatus"] == "InProgress"
    lam.get_waiter("function_updated_v2").wait(FunctionName=name)
    assert invoke(lam, name)[1] == "v2", "the warm environment of the old code is not reused"
    v2 = lam.publish_version(FunctionName=name, Description="second")
    assert v2["Version"] == "2"
    r, out = invoke(lam, name, Qualifier="1")
    assert out == "v1" and r["ExecutedVersion"] == "1"
    alias = lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    assert alias["AliasArn"].endswith(f"{name}:live")
    r, out = invoke(lam, f"{name}:live")
    assert out == "v1" and r["ExecutedVersion"] == "1"
    lam.update_alias(FunctionName=name, Name="live", FunctionVersion="2")
    assert invoke(lam, name, Qualifier="live")[1] == "v2"
    lam.update_alias(FunctionName=name, Name="live", FunctionVersion="1",
                     RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}})
    seen = {invoke(lam, name, Qualifier="live")[0]["ExecutedVersion"] for _ in range(30)}
    assert seen == {"1", "2"}
    versions = [v["Version"] for v in lam.list_versions_by_function(FunctionName=name)["Versions"]]
    assert versions == ["$LATEST", "1", "2"]
    assert [a["Name"] for a in lam.list_aliases(FunctionName=name)["Aliases"]] == ["live"]
    with pytest.raises(ClientError) as e:
        lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    assert e.value.response["Error"]["Code"] == "ResourceConflictException"
    with pytest.raises(ClientError) as e:
        lam.delete_function(FunctionName=name, Qualifier="1")
    assert e.value.response["Error"]["Code"] == "ResourceConflictException"
    lam.delete_alias(FunctionName=name, Name="live")
    lam.delete_function(FunctionName=name, Qualifier="1")
    with pytest.raises(ClientError) as e:
        invoke(lam, name, Qualifier="1")
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    conf = lam.update_function_configuration(FunctionName=name, Environment={"Variables": {"A": "1"}}, Timeout=7)
    assert conf["Timeout"] == 7
    lam.get_waiter("function_updated_v2").wait(FunctionName=name)


def test_concurrency_permissions_and_tags(lam):
    name, created, _ = create(lam, "def handler(e, c):\n    return 1\n")
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    assert lam.get_function_concurrency(FunctionName=name)["ReservedConcurrentExecutions"] == 0
    with pytest.raises(ClientError) as e:
        invoke(lam, name)
    err = e.value.response
    assert err["Error"]["Code"] == "TooManyRequestsException"
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert err["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    lam.delete_function_concurrency(FunctionName=name)
    assert invoke(lam, name)[1] == 1
    st = lam.add_permission(FunctionName=name, StatementId="s3", Action="lambda:InvokeFunction",
                            Principal="s3.amazonaws.com", SourceArn="arn:aws:s3:::some-bucket")
    statement = json.loads(st["Statement"])
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    policy = json.loads(lam.get_policy(FunctionName=name)["Policy"])
    assert policy["Statement"][0]["Sid"] == "s3"
    with pytest.raises(ClientError) as e:
        lam.add_permission(FunctionName=name, StatementId="s3", Action="lambda:InvokeFunction",
                           Principal="s3.amazonaws.com")
    assert e.value.response["Error"]["Code"] == "ResourceConflictException"
    lam.remove_permission(FunctionName=name, StatementId="s3")
    with pytest.raises(ClientError) as e:
        lam.get_policy(FunctionName=name)
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    arn = created["FunctionArn"]
    lam.tag_resource(Resource=arn, Tags={"a": "1", "b": "2"})
    lam.untag_resource(Resource=arn, TagKeys=["a"])
    assert lam.list_tags(Resource=arn)["Tags"] == {"b": "2"}
    settings = lam.get_account_settings()
    assert settings["AccountLimit"]["ConcurrentExecutions"] == 1000


ASYNC_SRC = '''
import boto3, os, time, uuid
def handler(event, context):
    time.sleep(event.get("sleep", 0))
    boto3.client("s3").put_object(Bucket=event["bucket"], Key=event["prefix"] + uuid.uuid4().hex, Body=b"x")
    if event.get("fail"):
        raise RuntimeError("failing on purpose")
    return "done"
'''


def _count(s3, bucket, prefix):
    return s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("KeyCount", 0)


def _wait_count(s3, bucket, prefix, n, timeout=30):
    deadline = time.time() + timeout
    while _count(s3, bucket, prefix) < n and time.time() < deadline:
        time.sleep(0.2)
    return _count(s3, bucket, prefix)


def test_an_event_invocation_runs(lam, s3, bucket):
    name, _, _ = create(lam, ASYNC_SRC, Timeout=30)
    r = lam.invoke(FunctionName=name, InvocationType="Event",
                   Payload=json.dumps({"bucket": bucket, "prefix": "event/"}).encode())
    assert r["StatusCode"] == 202 and "Payload" not in r or r["Payload"].read() == b""
    assert _wait_count(s3, bucket, "event/", 1) == 1


@pytest.fixture(scope="module")
def async_server(shape_checker):
    """A server of its own: short retry delays and leases, and killed on purpose."""
    os.environ["BASALT_LAMBDA_RETRY_DELAYS_MS"] = "300,300"
    os.environ["BASALT_LAMBDA_LEASE_MS"] = "3000"
    try:
        srv = BasaltServer(name="basalt-async")
        srv.start()
    finally:
        del os.environ["BASALT_LAMBDA_RETRY_DELAYS_MS"]
        del os.environ["BASALT_LAMBDA_LEASE_MS"]
    yield srv
    srv.close()


def test_event_invocations_are_retried_twice(async_server, shape_checker):
    make = make_client_factory(shape_checker, async_server.endpoint)
    lam, s3 = make("lambda"), make("s3")
    bucket = unique("async")
    s3.create_bucket(Bucket=bucket)
    name, _, _ = create(lam, ASYNC_SRC, Timeout=30)
    r = lam.invoke(FunctionName=name, InvocationType="Event",
                   Payload=json.dumps({"bucket": bucket, "prefix": "ok/"}).encode())
    assert r["StatusCode"] == 202
    assert _wait_count(s3, bucket, "ok/", 1) == 1
    lam.invoke(FunctionName=name, InvocationType="Event",
               Payload=json.dumps({"bucket": bucket, "prefix": "fail/", "fail": True}).encode())
    assert _wait_count(s3, bucket, "fail/", 3) == 3, "one attempt and two retries"
    time.sleep(1.5)
    assert _count(s3, bucket, "fail/") == 3
    lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=0)
    lam.invoke(FunctionName=name, InvocationType="Event",
               Payload=json.dumps({"bucket": bucket, "prefix": "once/", "fail": True}).encode())
    assert _wait_count(s3, bucket, "once/", 1) == 1
    time.sleep(1.5)
    assert _count(s3, bucket, "once/") == 1
    assert lam.get_function_event_invoke_config(FunctionName=name)["MaximumRetryAttempts"] == 0


def test_an_accepted_event_survives_kill_9_and_runs_once(async_server, shape_checker):
    make = make_client_factory(shape_checker, async_server.endpoint)
    lam, s3 = make("lambda"), make("s3")
    bucket = unique("crash")
    s3.create_bucket(Bucket=bucket)
    name, _, _ = create(lam, ASYNC_SRC, Timeout=30)
    # Runs to completion and is recorded: a restart must not run it again.
    lam.invoke(FunctionName=name, InvocationType="Event",
               Payload=json.dumps({"bucket": bucket, "prefix": "done/"}).encode())
    assert _wait_count(s3, bucket, "done/", 1) == 1
    time.sleep(0.5)
    # Accepted, then the server dies while the function sleeps (its process dies with it).
    lam.invoke(FunctionName=name, InvocationType="Event",
               Payload=json.dumps({"bucket": bucket, "prefix": "crash/", "sleep": 2}).encode())
    time.sleep(1.0)
    async_server.kill9()
    assert _count_after_restart(async_server, shape_checker, bucket) is not None
    s3 = make_client_factory(shape_checker, async_server.endpoint)("s3")
    assert _wait_count(s3, bucket, "crash/", 1, timeout=30) == 1, "the accepted invocation ran after the restart"
    time.sleep(4)
    assert _count(s3, bucket, "crash/") == 1
    assert _count(s3, bucket, "done/") == 1, "a recorded completion is not run again"


def _count_after_restart(srv, shape_checker, bucket):
    os.environ["BASALT_LAMBDA_LEASE_MS"] = "3000"
    os.environ["BASALT_LAMBDA_RETRY_DELAYS_MS"] = "300,300"
    try:
        srv.start()
    finally:
        del os.environ["BASALT_LAMBDA_LEASE_MS"]
        del os.environ["BASALT_LAMBDA_RETRY_DELAYS_MS"]
    return True


def test_invoke_with_response_stream(lam):
    name, _, _ = create(lam, "def handler(event, context):\n    return {'text': 'x' * event['n']}\n")
    r = lam.invoke_with_response_stream(FunctionName=name, Payload=json.dumps({"n": 100_000}).encode(),
                                        LogType="Tail")
    assert r["StatusCode"] == 200 and r["ExecutedVersion"] == "$LATEST"
    chunks, complete = [], None
    for event in r["EventStream"]:
        if "PayloadChunk" in event:
            chunks.append(event["PayloadChunk"]["Payload"])
        if "InvokeComplete" in event:
            complete = event["InvokeComplete"]
    assert len(chunks) >= 2, "a large response comes in several chunks"
    assert json.loads(b"".join(chunks)) == {"text": "x" * 100_000}
    assert "ErrorCode" not in complete and "REPORT RequestId" in base64.b64decode(complete["LogResult"]).decode()
    r = lam.invoke_with_response_stream(FunctionName=name, Payload=b"{}")
    complete = [e["InvokeComplete"] for e in r["EventStream"] if "InvokeComplete" in e][0]
    assert complete["ErrorCode"] == "KeyError" and "'n'" in complete["ErrorDetails"]


def test_code_from_s3(lam, s3, bucket):
    code = zip_of({"index.py": "def handler(event, context):\n    return 'from s3'\n"})
    s3.put_object(Bucket=bucket, Key="code/fn.zip", Body=code)
    name = unique("s3code")
    lam.create_function(FunctionName=name, Runtime="python3.12", Role=ROLE, Handler="index.handler",
                        Code={"S3Bucket": bucket, "S3Key": "code/fn.zip"})
    lam.get_waiter("function_active_v2").wait(FunctionName=name)
    assert invoke(lam, name)[1] == "from s3"
    with pytest.raises(ClientError) as e:
        lam.update_function_code(FunctionName=name, S3Bucket=bucket, S3Key="code/missing.zip")
    assert e.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert "NoSuchKey" in e.value.response["Error"]["Message"]


def test_layers_are_the_functions_opt(lam):
    lib = zip_of({"python/greeting.py": "WORD = 'hello from a layer'\n", "data/model.txt": "v1"})
    override = zip_of({"data/model.txt": "v2"})
    layer = unique("layer")
    v1 = lam.publish_layer_version(LayerName=layer, Content={"ZipFile": lib}, CompatibleRuntimes=["python3.12"],
                                   Description="greetings")
    assert v1["Version"] == 1 and v1["LayerVersionArn"] == f"{v1['LayerArn']}:1"
    with urllib.request.urlopen(v1["Content"]["Location"]) as resp:
        assert resp.read() == lib
    v2 = lam.publish_layer_version(LayerName=layer, Content={"ZipFile": override})
    assert v2["Version"] == 2
    got = lam.get_layer_version_by_arn(Arn=v1["LayerVersionArn"])
    assert got["Description"] == "greetings" and got["Content"]["CodeSize"] == len(lib)
    listed = {x["LayerName"]: x for x in lam.list_layers()["Layers"]}
    assert listed[layer]["LatestMatchingVersion"]["Version"] == 2
    assert [v["Version"] for v in lam.list_layer_versions(LayerName=layer)["LayerVersions"]] == [2, 1]
    assert layer not in {x["LayerName"] for x in lam.list_layers(CompatibleRuntime="python3.9")["Layers"]}
    src = '''
import greeting
def handler(event, context):
    return {"word": greeting.WORD, "model": open("/opt/data/model.txt").read()}
'''
    name, created, _ = create(lam, src, Layers=[v1["LayerVersionArn"], v2["LayerVersionArn"]])
    assert [x["Arn"] for x in created["Layers"]] == [v1["LayerVersionArn"], v2["LayerVersionArn"]]
    _, out = invoke(lam, name)
    assert out == {"word": "hello from a layer", "model": "v2"}, "later layers win in /opt"
    with pytest.raises(ClientError) as e:
        lam.update_function_configuration(FunctionName=name, Layers=[f"{v1['LayerArn']}:99"])
    assert e.value.response["Error"]["Code"] == "InvalidParameterValueException"
    lam.delete_layer_version(LayerName=layer, VersionNumber=1)
    with pytest.raises(ClientError) as e:
        lam.get_layer_version(LayerName=layer, VersionNumber=1)
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    # The function keeps the code of the layer it was created with.
    lam.update_function_configuration(FunctionName=name, Timeout=9)
    lam.get_waiter("function_updated_v2").wait(FunctionName=name)
    assert invoke(lam, name)[1]["word"] == "hello from a layer"


def test_function_urls(lam):
    src = '''
import base64, json
def handler(event, context):
    if event["rawPath"] == "/plain":
        return {"just": "json"}
    body = event.get("body")
    if event.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    return {"statusCode": 201, "headers": {"X-Echo": event["requestContext"]["http"]["method"]},
            "cookies": ["session=1"],
            "body": json.dumps({"path": event["rawPath"], "query": event.get("queryStringParameters"),
                                "body": body, "cookies": event.get("cookies"), "version": event["version"]})}
'''
    name, _, _ = create(lam, src)
    cfg = lam.create_function_url_config(FunctionName=name, AuthType="NONE")
    url = cfg["FunctionUrl"]
    assert cfg["AuthType"] == "NONE" and url.endswith("/")
    with pytest.raises(ClientError) as e:
        lam.create_function_url_config(FunctionName=name, AuthType="NONE")
    assert e.value.response["Error"]["Code"] == "ResourceConflictException"
    req = urllib.request.Request(url + "items/7?a=1&b=2", data=b'{"k": 1}', method="PUT",
                                 headers={"Content-Type": "application/json", "Cookie": "c=3"})
    with urllib.request.urlopen(req) as resp:
        assert resp.status == 201 and resp.headers["X-Echo"] == "PUT"
        assert resp.headers["Set-Cookie"] == "session=1"
        out = json.loads(resp.read())
    assert out == {"path": "/items/7", "query": {"a": "1", "b": "2"}, "body": '{"k": 1}', "cookies": ["c=3"],
                   "version": "2.0"}
    with urllib.request.urlopen(url + "plain") as resp:
        assert resp.status == 200 and json.loads(resp.read()) == {"just": "json"}
    lam.update_function_url_config(FunctionName=name, AuthType="AWS_IAM")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(url + "plain")
    assert e.value.code == 403
    assert [c["AuthType"] for c in lam.list_function_url_configs(FunctionName=name)["FunctionUrlConfigs"]] == ["AWS_IAM"]
    lam.delete_function_url_config(FunctionName=name)
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(url + "plain")
    assert e.value.code == 404


def test_provisioned_concurrency(lam):
    src = '''
import os, time
STARTED = time.time()
INIT = os.environ["AWS_LAMBDA_INITIALIZATION_TYPE"]
def handler(event, context):
    return {"init": INIT, "age": time.time() - STARTED}
'''
    name, _, _ = create(lam, src)
    version = lam.publish_version(FunctionName=name)["Version"]
    with pytest.raises(ClientError) as e:
        lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="$LATEST",
                                               ProvisionedConcurrentExecutions=1)
    assert e.value.response["Error"]["Code"] == "InvalidParameterValueException"
    r = lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier=version,
                                               ProvisionedConcurrentExecutions=2)
    assert r["RequestedProvisionedConcurrentExecutions"] == 2 and r["Status"] == "IN_PROGRESS"
    deadline = time.time() + 30
    while True:
        got = lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier=version)
        if got["Status"] == "READY" or time.time() > deadline:
            break
        time.sleep(0.2)
    assert got["Status"] == "READY" and got["AvailableProvisionedConcurrentExecutions"] == 2
    time.sleep(0.5)
    r, out = invoke(lam, name, Qualifier=version, LogType="Tail")
    assert out["init"] == "provisioned-concurrency" and out["age"] >= 0.5, "initialized before the invoke"
    assert "Init Duration" not in base64.b64decode(r["LogResult"]).decode()
    listed = lam.list_provisioned_concurrency_configs(FunctionName=name)["ProvisionedConcurrencyConfigs"]
    assert [c["FunctionArn"].rsplit(":", 1)[1] for c in listed] == [version]
    lam.delete_provisioned_concurrency_config(FunctionName=name, Qualifier=version)
    with pytest.raises(ClientError) as e:
        lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier=version)
    assert e.value.response["Error"]["Code"] == "ProvisionedConcurrencyConfigNotFoundException"
