"""Node.js functions through AWS's runtime interface client (aws-lambda-ric), with the AWS SDK
for JavaScript v3 that `basalt runtimes pull` installs beside it, calling Basalt."""
from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from conftest import ACCOUNT, REGION, unique
from ddb_helpers import wait_active
from test_lambda import ROLE, invoke, zip_of

RUNTIMES = Path(os.environ.get("BASALT_RUNTIME_DIR", Path.home() / ".cache/basalt/runtimes"))


@pytest.fixture(autouse=True, scope="module")
def _needs_node_runtime():
    if not (RUNTIMES / "nodejs/.installed").exists():
        pytest.skip("no Lambda Node.js runtime installed (basalt runtimes pull, with node, npm, "
                    "autoconf, automake and libtool on this machine)")


@pytest.fixture(scope="module")
def lam(make_client):
    return make_client("lambda")


def create(lam, files: dict[str, str], handler="index.handler", runtime="nodejs20.x", **kw):
    name = unique("node")
    lam.create_function(FunctionName=name, Runtime=runtime, Role=ROLE, Handler=handler,
                        Code={"ZipFile": zip_of(files)}, **kw)
    lam.get_waiter("function_active_v2").wait(FunctionName=name)
    return name


SDK_CJS = '''
const { S3Client, PutObjectCommand, GetObjectCommand } = require("@aws-sdk/client-s3");
const { DynamoDBClient } = require("@aws-sdk/client-dynamodb");
const { DynamoDBDocumentClient, PutCommand, GetCommand } = require("@aws-sdk/lib-dynamodb");
const { STSClient, GetCallerIdentityCommand } = require("@aws-sdk/client-sts");

const s3 = new S3Client({});
const ddb = DynamoDBDocumentClient.from(new DynamoDBClient({}));

exports.handler = async (event, context) => {
  await s3.send(new PutObjectCommand({ Bucket: event.bucket, Key: "from-node.txt", Body: "hello from node" }));
  const got = await s3.send(new GetObjectCommand({ Bucket: event.bucket, Key: "from-node.txt" }));
  await ddb.send(new PutCommand({ TableName: event.table, Item: { pk: "a", n: 42, tags: ["x", "y"] } }));
  const item = await ddb.send(new GetCommand({ TableName: event.table, Key: { pk: "a" } }));
  const who = await new STSClient({}).send(new GetCallerIdentityCommand({}));
  const env = process.env;
  return {
    body: await got.Body.transformToString(), item: item.Item, arn: who.Arn,
    name: env.AWS_LAMBDA_FUNCTION_NAME, region: env.AWS_REGION, version: env.AWS_LAMBDA_FUNCTION_VERSION,
    memory: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE, exec_env: env.AWS_EXECUTION_ENV,
    endpoint: env.AWS_ENDPOINT_URL, task_root: env.LAMBDA_TASK_ROOT, node_path: env.NODE_PATH,
    has_creds: !!(env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY && env.AWS_SESSION_TOKEN),
    request_id: context.awsRequestId, function_arn: context.invokedFunctionArn,
    left: context.getRemainingTimeInMillis(), group: context.logGroupName,
  };
};
'''


def test_commonjs_handler_uses_sdk_v3_against_basalt(lam, s3, bucket, make_client, endpoint):
    ddb = make_client("dynamodb")
    table = unique("nodetbl")
    ddb.create_table(TableName=table, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST")
    wait_active(ddb, table)
    name = create(lam, {"index.js": SDK_CJS}, Timeout=30, MemorySize=256)
    r, out = invoke(lam, name, {"bucket": bucket, "table": table})
    assert "FunctionError" not in r, out
    assert out["body"] == "hello from node"
    assert out["item"] == {"pk": "a", "n": 42, "tags": ["x", "y"]}
    assert out["arn"].startswith(f"arn:aws:sts::{ACCOUNT}:assumed-role/compat-lambda/")
    assert (out["name"], out["region"], out["version"], out["memory"]) == (name, REGION, "$LATEST", "256")
    assert out["exec_env"] == "AWS_Lambda_nodejs20.x" and out["has_creds"]
    assert out["endpoint"] == endpoint
    assert "/nodejs/node_modules" in out["node_path"] and out["node_path"].endswith(out["task_root"])
    assert out["function_arn"] == f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
    assert 0 < out["left"] <= 30_000 and out["group"] == f"/aws/lambda/{name}"
    assert s3.get_object(Bucket=bucket, Key="from-node.txt")["Body"].read() == b"hello from node"
    assert ddb.get_item(TableName=table, Key={"pk": {"S": "a"}})["Item"]["n"] == {"N": "42"}


ESM = '''
import { S3Client, ListBucketsCommand } from "@aws-sdk/client-s3";
import { helper } from "./lib.mjs";

const s3 = new S3Client({});
let calls = 0;

export const handler = async (event) => {
  calls += 1;
  const out = await s3.send(new ListBucketsCommand({}));
  return { calls, helper: helper(), buckets: (out.Buckets || []).map((b) => b.Name) };
};
'''


def test_esm_handler_imports_the_sdk_and_keeps_module_state(lam, bucket):
    name = create(lam, {"index.mjs": ESM, "lib.mjs": "export const helper = () => 'from lib';\n"},
                  Timeout=30, runtime="nodejs22.x")
    _, first = invoke(lam, name, {})
    assert first["calls"] == 1 and first["helper"] == "from lib" and bucket in first["buckets"], first
    _, second = invoke(lam, name, {})
    assert second["calls"] == 2, "a warm environment keeps module state"


COUNTER = '''
let calls = 0;
console.log("cold start");
exports.handler = (event, context, callback) => {
  calls += 1;
  console.log("call", calls, JSON.stringify(event));
  callback(null, { calls, pid: process.pid });
};
'''


def test_warm_invocations_keep_module_state_and_log(lam, make_client):
    name = create(lam, {"index.js": COUNTER})
    r1, a = invoke(lam, name, {"n": 1}, LogType="Tail")
    _, b = invoke(lam, name, {"n": 2})
    assert (a["calls"], b["calls"]) == (1, 2) and a["pid"] == b["pid"]
    tail = base64.b64decode(r1["LogResult"]).decode()
    assert "cold start" in tail and 'call 1 {"n":1}' in tail and "REPORT RequestId" in tail


ERRORS = '''
class ValidationError extends Error {
  constructor(m) { super(m); this.name = "ValidationError"; }
}
exports.handler = async (event) => {
  if (event.sleep) await new Promise((r) => setTimeout(r, event.sleep * 1000));
  if (event.reject) return Promise.reject("plain string");
  throw new ValidationError("bad input " + event.n);
};
'''


def test_errors_are_shaped_as_aws(lam):
    name = create(lam, {"index.js": ERRORS}, Timeout=1)
    r, err = invoke(lam, name, {"n": 7})
    assert r["FunctionError"] == "Unhandled"
    assert err["errorType"] == "ValidationError" and err["errorMessage"] == "bad input 7"
    assert isinstance(err["trace"], list) and "ValidationError: bad input 7" in err["trace"][0]
    r, err = invoke(lam, name, {"sleep": 5})
    assert r["FunctionError"] == "Unhandled" and err["errorType"] == "Sandbox.Timedout"
    assert err["errorMessage"].endswith("Task timed out after 1.00 seconds")
    # The environment is replaced after a timeout; the function still answers.
    r, err = invoke(lam, name, {"n": 8})
    assert err["errorMessage"] == "bad input 8"

    broken = create(lam, {"index.js": 'require("not-installed-anywhere");\nexports.handler = async () => 1;\n'})
    r, err = invoke(lam, broken, {})
    assert r["FunctionError"] == "Unhandled" and err["errorType"] == "Runtime.ImportModuleError"
    assert "not-installed-anywhere" in err["errorMessage"]
    missing = create(lam, {"index.js": "exports.other = async () => 1;\n"})
    _, err = invoke(lam, missing, {})
    assert err["errorType"] == "Runtime.HandlerNotFound" and "index.handler" in err["errorMessage"]
    nofile = create(lam, {"index.js": "exports.handler = async () => 1;\n"}, handler="nope.handler")
    _, err = invoke(lam, nofile, {})
    assert err["errorType"] == "Runtime.ImportModuleError"
    syntax = create(lam, {"index.js": "exports.handler = async () => {;\n"})
    _, err = invoke(lam, syntax, {})
    assert err["errorType"] == "Runtime.UserCodeSyntaxError"


STREAMING = '''
exports.handler = awslambda.streamifyResponse(async (event, responseStream, context) => {
  responseStream.setContentType("text/plain");
  for (let i = 0; i < event.n; i++) {
    responseStream.write(`chunk ${i}\\n`);
    await new Promise((r) => setTimeout(r, 20));
  }
  responseStream.end();
});
'''


def test_streaming_response(lam):
    name = create(lam, {"index.js": STREAMING}, Timeout=10)
    r = lam.invoke_with_response_stream(FunctionName=name, Payload=json.dumps({"n": 5}).encode())
    assert r["StatusCode"] == 200
    chunks, complete = [], None
    for event in r["EventStream"]:
        if "PayloadChunk" in event:
            chunks.append(event["PayloadChunk"]["Payload"])
        if "InvokeComplete" in event:
            complete = event["InvokeComplete"]
    assert b"".join(chunks).decode() == "".join(f"chunk {i}\n" for i in range(5))
    assert complete is not None and "ErrorCode" not in complete, complete


STREAMING_FAILS = '''
exports.handler = awslambda.streamifyResponse(async (event, responseStream, context) => {
  responseStream.write("partial\\n");
  throw new TypeError("broke mid-stream");
});
'''


def test_streaming_error_after_start_is_reported(lam):
    # The runtime reports it in the response's trailers; it must not read as a success.
    name = create(lam, {"index.js": STREAMING_FAILS}, Timeout=10)
    r = lam.invoke_with_response_stream(FunctionName=name, Payload=b"{}")
    complete = [e["InvokeComplete"] for e in r["EventStream"] if "InvokeComplete" in e]
    assert complete and complete[0].get("ErrorCode"), complete
    r = lam.invoke(FunctionName=name, Payload=b"{}")
    assert r.get("FunctionError") == "Unhandled"
    body = json.loads(r["Payload"].read())
    assert body["errorType"] == "TypeError" and "broke mid-stream" in body["errorMessage"], body
