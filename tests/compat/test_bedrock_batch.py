"""Bedrock batch inference through boto3: a job over 100 JSONL records in S3 runs on the local
model and writes Bedrock's output layout ({output}/{jobId}/{file}.out with each record's
modelOutput or error, and manifest.json.out with the counts); the outputs are the answers
InvokeModel gives for the same bodies (greedy decoding is deterministic); the job APIs
(Get/List with filters and paging/Stop) and their errors behave as Bedrock's.
"""
from __future__ import annotations

import json
import time

import pytest
from botocore.exceptions import ClientError

# The model fixtures, and the skip when no local chat model is present.
from test_bedrock import brt, pytestmark  # noqa: F401

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
ROLE = "arn:aws:iam::000000000000:role/batch"


@pytest.fixture(scope="module")
def bedrock(make_client):
    return make_client("bedrock")


def _body(i):
    return {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 4, "temperature": 0,
            "messages": [{"role": "user", "content": f"What is {i} plus 1? Answer with the number only."}]}


def _wait(bedrock, arn, timeout=600):
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = bedrock.get_model_invocation_job(jobIdentifier=arn)
        if job["status"] in ("Completed", "PartiallyCompleted", "Failed", "Stopped"):
            return job
        time.sleep(1)
    raise AssertionError(f"job {arn} did not finish: {job['status']}")


@pytest.mark.timeout(900)
def test_a_job_over_100_records_writes_the_answers_to_s3(bedrock, brt, s3, bucket):
    lines = [json.dumps({"recordId": f"REC{i:08d}", "modelInput": _body(i)}) for i in range(99)]
    lines.append(json.dumps({"recordId": "BROKEN00001", "modelInput": {"anthropic_version": "bedrock-2023-05-31"}}))
    s3.put_object(Bucket=bucket, Key="in/records.jsonl", Body="\n".join(lines).encode())
    name = f"batch-{int(time.time() * 1000)}"
    arn = bedrock.create_model_invocation_job(
        jobName=name, roleArn=ROLE, modelId=MODEL, clientRequestToken=f"tok{name.replace('-', '')}",
        inputDataConfig={"s3InputDataConfig": {"s3Uri": f"s3://{bucket}/in/"}},
        outputDataConfig={"s3OutputDataConfig": {"s3Uri": f"s3://{bucket}/out/"}},
    )["jobArn"]
    assert arn.startswith("arn:aws:bedrock:us-east-1:000000000000:model-invocation-job/")
    job_id = arn.rsplit("/", 1)[1]
    # The same request again is the same job; the same name otherwise is a conflict.
    again = bedrock.create_model_invocation_job(
        jobName=name, roleArn=ROLE, modelId=MODEL, clientRequestToken=f"tok{name.replace('-', '')}",
        inputDataConfig={"s3InputDataConfig": {"s3Uri": f"s3://{bucket}/in/"}},
        outputDataConfig={"s3OutputDataConfig": {"s3Uri": f"s3://{bucket}/out/"}},
    )["jobArn"]
    assert again == arn
    with pytest.raises(ClientError) as e:
        bedrock.create_model_invocation_job(
            jobName=name, roleArn=ROLE, modelId=MODEL,
            inputDataConfig={"s3InputDataConfig": {"s3Uri": f"s3://{bucket}/in/"}},
            outputDataConfig={"s3OutputDataConfig": {"s3Uri": f"s3://{bucket}/out/"}},
        )
    assert e.value.response["Error"]["Code"] == "ConflictException"

    job = _wait(bedrock, arn)
    assert job["status"] == "PartiallyCompleted", job
    assert (job["totalRecordCount"], job["successRecordCount"], job["errorRecordCount"]) == (100, 99, 1)
    assert job["endTime"] >= job["submitTime"]

    out = s3.get_object(Bucket=bucket, Key=f"out/{job_id}/records.jsonl.out")["Body"].read().decode()
    rows = [json.loads(l) for l in out.splitlines()]
    assert len(rows) == 100
    assert [r["recordId"] for r in rows[:2]] == ["REC00000000", "REC00000001"]
    assert rows[-1]["recordId"] == "BROKEN00001" and rows[-1]["error"]["errorMessage"]
    for r in rows[:99]:
        assert r["modelOutput"]["type"] == "message" and r["modelOutput"]["content"][0]["text"]
    # The batch answers are the answers InvokeModel gives for the same bodies.
    for i in (0, 7, 42):
        direct = json.loads(brt.invoke_model(modelId=MODEL, body=json.dumps(_body(i)))["body"].read())
        assert rows[i]["modelOutput"]["content"] == direct["content"]
        assert rows[i]["modelInput"] == _body(i)
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=f"out/{job_id}/manifest.json.out")["Body"].read())
    assert manifest["totalRecordCount"] == 100 and manifest["errorRecordCount"] == 1
    assert manifest["inputTokenCount"] > 0 and manifest["outputTokenCount"] > 0

    listed = bedrock.list_model_invocation_jobs(nameContains=name)["invocationJobSummaries"]
    assert [j["jobArn"] for j in listed] == [arn]
    assert not bedrock.list_model_invocation_jobs(nameContains=name, statusEquals="Completed")["invocationJobSummaries"]
    # A finished job cannot be stopped.
    with pytest.raises(ClientError) as e:
        bedrock.stop_model_invocation_job(jobIdentifier=arn)
    assert e.value.response["Error"]["Code"] == "ConflictException"


def test_stop_and_errors(bedrock, s3, bucket):
    lines = [json.dumps({"recordId": f"R{i:010d}", "modelInput": _body(i)}) for i in range(300)]
    s3.put_object(Bucket=bucket, Key="many.jsonl", Body="\n".join(lines).encode())
    name = f"stop-{int(time.time() * 1000)}"
    arn = bedrock.create_model_invocation_job(
        jobName=name, roleArn=ROLE, modelId=MODEL,
        inputDataConfig={"s3InputDataConfig": {"s3Uri": f"s3://{bucket}/many.jsonl"}},
        outputDataConfig={"s3OutputDataConfig": {"s3Uri": f"s3://{bucket}/out"}},
    )["jobArn"]
    bedrock.stop_model_invocation_job(jobIdentifier=arn)
    job = _wait(bedrock, arn, timeout=120)
    assert job["status"] == "Stopped"
    assert job["processedRecordCount"] < 300
    with pytest.raises(ClientError) as e:
        bedrock.get_model_invocation_job(jobIdentifier="abcdefghijkl")
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        bedrock.create_model_invocation_job(
            jobName=f"x{name}", roleArn=ROLE, modelId="acme.nonexistent-v1",
            inputDataConfig={"s3InputDataConfig": {"s3Uri": f"s3://{bucket}/many.jsonl"}},
            outputDataConfig={"s3OutputDataConfig": {"s3Uri": f"s3://{bucket}/out"}},
        )
    assert e.value.response["Error"]["Code"] == "ValidationException"
    # Paging: one job a page, newest first.
    page = bedrock.list_model_invocation_jobs(maxResults=1)
    assert len(page["invocationJobSummaries"]) == 1 and "nextToken" in page


def test_a_job_past_its_timeout_expires(shape_checker, tmp_path):
    """timeoutDurationInHours ends a job that runs past it as Expired, with the records done
    until then in its output and manifest. An hour is shortened here
    (BASALT_BEDROCK_BATCH_HOUR_SECS) so that the minimum of 24 passes at once."""
    from conftest import BasaltServer, make_client_factory
    srv = BasaltServer(data_dir=str(tmp_path), name="basalt-batch-expiry",
                       env={"BASALT_BEDROCK_BATCH_HOUR_SECS": "0.0001"}).start()
    try:
        make = make_client_factory(shape_checker, srv.endpoint)
        bedrock, s3 = make("bedrock"), make("s3")
        s3.create_bucket(Bucket="expiry")
        lines = [json.dumps({"recordId": f"R{i:010d}", "modelInput": _body(i)}) for i in range(100)]
        s3.put_object(Bucket="expiry", Key="in.jsonl", Body="\n".join(lines).encode())
        arn = bedrock.create_model_invocation_job(
            jobName="expires", roleArn=ROLE, modelId=MODEL, timeoutDurationInHours=24,
            inputDataConfig={"s3InputDataConfig": {"s3Uri": "s3://expiry/in.jsonl"}},
            outputDataConfig={"s3OutputDataConfig": {"s3Uri": "s3://expiry/out/"}},
        )["jobArn"]
        deadline = time.time() + 60
        while (job := bedrock.get_model_invocation_job(jobIdentifier=arn))["status"] not in (
                "Expired", "Completed", "PartiallyCompleted", "Failed", "Stopped") and time.time() < deadline:
            time.sleep(0.2)
        assert job["status"] == "Expired", job
        assert "timeout of 24 hours" in job["message"]
        assert job["processedRecordCount"] < 100
        manifest = json.loads(s3.get_object(Bucket="expiry", Key=f"out/{arn.rsplit('/', 1)[1]}/manifest.json.out")["Body"].read())
        assert manifest["processedRecordCount"] == job["processedRecordCount"]
        with pytest.raises(ClientError) as e:
            bedrock.create_model_invocation_job(
                jobName="too-long", roleArn=ROLE, modelId=MODEL, timeoutDurationInHours=169,
                inputDataConfig={"s3InputDataConfig": {"s3Uri": "s3://expiry/in.jsonl"}},
                outputDataConfig={"s3OutputDataConfig": {"s3Uri": "s3://expiry/out/"}},
            )
        assert e.value.response["Error"]["Code"] in ("ValidationException",), e.value.response
    finally:
        srv.stop()
        srv.close()
