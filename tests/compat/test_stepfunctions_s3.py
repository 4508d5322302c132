"""Step Functions reading S3 (Developer Guide: "ItemReader (Map)" and "Invoke and customize
Amazon Bedrock models with Step Functions"): a distributed Map's ItemReader takes its items
from a JSON array, JSON Lines or CSV object (`s3:getObject`) or from an S3 listing
(`s3:listObjectsV2`); a missing object fails the state with the reader's error; Bedrock's
InvokeModel reads its request body from `Input.S3Uri` and writes its response to `Output.S3Uri`.
"""
from __future__ import annotations

import json

import pytest

from conftest import unique
from sfn_helpers import machine, output, sfn, start, wait_done  # noqa: F401 (fixture)
from test_bedrock import MODEL, anthropic_body
from test_bedrock import pytestmark as needs_model


@pytest.fixture(scope="module")
def bucket(s3):
    name = unique("sfn-items").lower()
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="items.json", Body=json.dumps([{"n": 1}, {"n": 2}, {"n": 3}]))
    s3.put_object(Bucket=name, Key="items.jsonl", Body='{"n": 4}\n{"n": 5}\n')
    s3.put_object(Bucket=name, Key="items.csv", Body="name,size\nalpha,1\nbeta,22\n")
    for k in ("logs/a.txt", "logs/b.txt", "other/c.txt"):
        s3.put_object(Bucket=name, Key=k, Body=b"x")
    return name


def distributed(reader, selector=None):
    processor = {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                 "StartAt": "Echo", "States": {"Echo": {"Type": "Pass", "End": True}}}
    state = {"Type": "Map", "ItemReader": reader, "ItemProcessor": processor, "End": True}
    if selector:
        state["ItemSelector"] = selector
    return {"StartAt": "Each", "States": {"Each": state}}


def test_items_from_json_jsonl_and_csv_objects(sfn, bucket):
    get = "arn:aws:states:::s3:getObject"
    out = output(wait_done(sfn, start(sfn, machine(sfn, distributed(
        {"Resource": get, "ReaderConfig": {"InputType": "JSON"},
         "Parameters": {"Bucket": bucket, "Key": "items.json"}})))))
    assert out == [{"n": 1}, {"n": 2}, {"n": 3}]
    out = output(wait_done(sfn, start(sfn, machine(sfn, distributed(
        {"Resource": get, "ReaderConfig": {"InputType": "JSONL"},
         "Parameters": {"Bucket": bucket, "Key": "items.jsonl"}})))))
    assert out == [{"n": 4}, {"n": 5}]
    out = output(wait_done(sfn, start(sfn, machine(sfn, distributed(
        {"Resource": get, "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"},
         "Parameters": {"Bucket.$": "$.bucket", "Key": "items.csv"}})), {"bucket": bucket})))
    assert out == [{"name": "alpha", "size": "1"}, {"name": "beta", "size": "22"}]


def test_items_from_an_s3_listing(sfn, s3, bucket):
    out = output(wait_done(sfn, start(sfn, machine(sfn, distributed(
        {"Resource": "arn:aws:states:::s3:listObjectsV2", "Parameters": {"Bucket": bucket, "Prefix": "logs/"}})))))
    assert [o["Key"] for o in out] == ["logs/a.txt", "logs/b.txt"]
    head = s3.head_object(Bucket=bucket, Key="logs/a.txt")
    # Each item as the Developer Guide's ItemReader example shows one.
    assert out[0] == {"Key": "logs/a.txt", "Size": 1, "Etag": head["ETag"], "StorageClass": "STANDARD",
                      "LastModified": int(head["LastModified"].timestamp())}


def test_a_missing_object_fails_the_map(sfn, bucket):
    d = wait_done(sfn, start(sfn, machine(sfn, distributed(
        {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "JSON"},
         "Parameters": {"Bucket": bucket, "Key": "nope.json"}}))))
    assert d["status"] == "FAILED"
    # "States.ItemReaderFailed: ... couldn't read from the input source" (error names table).
    assert d["error"] == "States.ItemReaderFailed", d
    assert "nope.json" in d["cause"]


@needs_model
def test_bedrock_invoke_model_reads_its_body_from_s3(sfn, s3, bucket):
    s3.put_object(Bucket=bucket, Key="prompt.json", Body=json.dumps(anthropic_body("Say hello.", max_tokens=8)))
    task = {"Type": "Task", "Resource": "arn:aws:states:::bedrock:invokeModel", "End": True,
            "Parameters": {"ModelId": MODEL, "Input": {"S3Uri": f"s3://{bucket}/prompt.json"}}}
    out = output(wait_done(sfn, start(sfn, machine(sfn, {"StartAt": "T", "States": {"T": task}})), timeout=120))
    assert out["Body"]["type"] == "message" and out["Body"]["content"][0]["text"]
    both = dict(task, Parameters=dict(task["Parameters"], Body={"x": 1}))
    d = wait_done(sfn, start(sfn, machine(sfn, {"StartAt": "T", "States": {"T": both}})))
    assert (d["status"], d["error"]) == ("FAILED", "States.Runtime")

    # Output.S3Uri: the response body is written there and the result refers to it.
    to_s3 = dict(task, Parameters=dict(task["Parameters"], Output={"S3Uri": f"s3://{bucket}/answers/1.json"}))
    out = output(wait_done(sfn, start(sfn, machine(sfn, {"StartAt": "T", "States": {"T": to_s3}})), timeout=120))
    assert out["Body"] == {"S3Uri": f"s3://{bucket}/answers/1.json"}, out
    stored = json.loads(s3.get_object(Bucket=bucket, Key="answers/1.json")["Body"].read())
    assert stored["type"] == "message" and stored["content"][0]["text"]
    nowhere = dict(task, Parameters=dict(task["Parameters"], Output={"S3Uri": "s3://no-such-bucket-here/x.json"}))
    d = wait_done(sfn, start(sfn, machine(sfn, {"StartAt": "T", "States": {"T": nowhere}})), timeout=120)
    assert (d["status"], d["error"]) == ("FAILED", "S3.NoSuchBucketException"), d


def test_result_writer_exports_the_results_and_a_manifest(sfn, s3, bucket):
    processor = {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                 "StartAt": "Check", "States": {
                     "Check": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericEquals": 2, "Next": "Bad"}],
                               "Default": "Double"},
                     "Bad": {"Type": "Fail", "Error": "Two", "Cause": "two is refused"},
                     "Double": {"Type": "Pass", "Parameters": {"twice.$": "States.MathAdd($.n, $.n)"}, "End": True}}}
    definition = {"StartAt": "Each", "States": {"Each": {
        "Type": "Map", "ItemProcessor": processor, "ToleratedFailureCount": 1, "End": True,
        "ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "JSON"},
                       "Parameters": {"Bucket": bucket, "Key": "items.json"}},
        "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject",
                         "Parameters": {"Bucket": bucket, "Prefix": "exports"}}}}}
    out = output(wait_done(sfn, start(sfn, machine(sfn, definition))))
    run_id = out["MapRunArn"].rsplit(":", 1)[1]
    assert ":mapRun:" in out["MapRunArn"]
    assert out["ResultWriterDetails"] == {"Bucket": bucket, "Key": f"exports/{run_id}/manifest.json"}
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=out["ResultWriterDetails"]["Key"])["Body"].read())
    assert manifest["DestinationBucket"] == bucket and manifest["MapRunArn"] == out["MapRunArn"]
    files = manifest["ResultFiles"]
    assert files["PENDING"] == [] and [f["Key"] for f in files["SUCCEEDED"]] == [f"exports/{run_id}/SUCCEEDED_0.json"]
    ok = s3.get_object(Bucket=bucket, Key=files["SUCCEEDED"][0]["Key"])["Body"].read()
    assert files["SUCCEEDED"][0]["Size"] == len(ok)
    assert [json.loads(e["Output"]) for e in json.loads(ok)] == [{"twice": 2}, {"twice": 6}]
    assert all(e["Status"] == "SUCCEEDED" for e in json.loads(ok))
    bad = json.loads(s3.get_object(Bucket=bucket, Key=files["FAILED"][0]["Key"])["Body"].read())
    assert bad == [{"Status": "FAILED", "Error": "Two", "Cause": "two is refused"}]
    # The Map Run counts what the writer exported: the two successes and the tolerated failure.
    run = sfn.describe_map_run(mapRunArn=out["MapRunArn"])
    assert run["status"] == "SUCCEEDED"
    assert {k: run["itemCounts"][k] for k in ("succeeded", "failed", "resultsWritten", "total")} == \
        {"succeeded": 2, "failed": 1, "resultsWritten": 3, "total": 3}

    # COMPACT as JSON Lines: the outputs alone.
    definition["States"]["Each"]["ResultWriter"]["WriterConfig"] = {"Transformation": "COMPACT", "OutputType": "JSONL"}
    out = output(wait_done(sfn, start(sfn, machine(sfn, definition))))
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=out["ResultWriterDetails"]["Key"])["Body"].read())
    lines = s3.get_object(Bucket=bucket, Key=manifest["ResultFiles"]["SUCCEEDED"][0]["Key"])["Body"].read()
    assert [json.loads(x) for x in lines.decode().splitlines()] == [{"twice": 2}, {"twice": 6}]
