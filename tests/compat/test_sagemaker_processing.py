"""SageMaker processing jobs (API Reference: CreateProcessingJob and friends; Developer Guide:
"How Amazon SageMaker Processing Runs Your Processing Container Image", "Save and Access
Metadata Information About Your Processing Job"), run as the SageMaker Python SDK's
SKLearnProcessor submits them: the code and the data as ProcessingInputs under
/opt/ml/processing, `python3 /opt/ml/processing/input/code/<script>` as the entry point with
ContainerArguments, the outputs uploaded from their LocalPath to S3 at the end;
/opt/ml/config/processingjobconfig.json, ExitMessage from /opt/ml/output/message, the exit code
deciding Completed or Failed, Stop, MaxRuntimeInSeconds, the
`processing_job_completed_or_stopped` waiter, List filters, logs in
/aws/sagemaker/ProcessingJobs.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError, WaiterError

from conftest import unique

ENV = Path(os.environ.get("BASALT_RUNTIME_DIR", Path.home() / ".cache/basalt/runtimes")) / "sagemaker"
pytestmark = pytest.mark.skipif(not (ENV / ".installed").exists(),
                                reason=f"the SageMaker environment is not installed ({ENV}): run basalt runtimes pull")

ROLE = "arn:aws:iam::000000000000:role/SageMakerRole"
SKLEARN = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"

PREPROCESS = r'''
import argparse, glob, json, os
import pandas as pd
from sklearn.model_selection import train_test_split

p = argparse.ArgumentParser()
p.add_argument("--test-ratio", type=float)
args = p.parse_args()
config = json.load(open("/opt/ml/config/processingjobconfig.json"))
frames = [pd.read_csv(f) for f in sorted(glob.glob("/opt/ml/processing/input/data/*.csv"))]
df = pd.concat(frames)
df["amount_x2"] = df["amount"] * 2
train, test = train_test_split(df, test_size=args.test_ratio, random_state=0, shuffle=False)
os.makedirs("/opt/ml/processing/train/part", exist_ok=True)
train.to_csv("/opt/ml/processing/train/part/train.csv", index=False)
test.to_csv("/opt/ml/processing/test/test.csv", index=False)
print(f"rows {len(df)} train {len(train)} test {len(test)} job {config['ProcessingJobName']} env {os.environ['STAGE']}")
os.makedirs("/opt/ml/output", exist_ok=True)
open("/opt/ml/output/message", "w").write(f"split {len(train)}/{len(test)}")
'''

FAIL = r'''
import sys
open("/opt/ml/output/message", "w").write("the input had no rows")
sys.exit(3)
'''

SLOW = "import time\ntime.sleep(60)\n"


@pytest.fixture(scope="module")
def sm(make_client):
    return make_client("sagemaker")


@pytest.fixture(scope="module")
def logs(make_client):
    return make_client("logs")


@pytest.fixture(scope="module")
def bucket(s3):
    name = unique("sm-proc").lower()
    s3.create_bucket(Bucket=name)
    return name


def job(sm, s3, bucket, script, name=None, args=(), inputs=(), outputs=(), **extra):
    name = name or unique("proc")
    s3.put_object(Bucket=bucket, Key=f"code/{name}/script.py", Body=script.encode())
    app = {"ImageUri": SKLEARN, "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/script.py"]}
    if args:
        app["ContainerArguments"] = list(args)
    sm.create_processing_job(
        ProcessingJobName=name, RoleArn=ROLE,
        AppSpecification=app,
        ProcessingResources={"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge",
                                               "VolumeSizeInGB": 30}},
        ProcessingInputs=[{"InputName": "code", "S3Input": {
            "S3Uri": f"s3://{bucket}/code/{name}/", "LocalPath": "/opt/ml/processing/input/code",
            "S3DataType": "S3Prefix", "S3InputMode": "File"}}] + list(inputs),
        **({"ProcessingOutputConfig": {"Outputs": list(outputs)}} if outputs else {}),
        **extra)
    return name


def ended(sm, name, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        d = sm.describe_processing_job(ProcessingJobName=name)
        if d["ProcessingJobStatus"] in ("Completed", "Failed", "Stopped"):
            return d
        time.sleep(0.2)
    raise AssertionError(f"{name} still {d['ProcessingJobStatus']}")


def test_an_sklearn_style_job_reads_its_inputs_and_uploads_its_outputs(sm, s3, logs, bucket):
    for i, rows in enumerate([[(1, 10.0), (2, 20.0), (3, 30.0)], [(4, 40.0), (5, 50.0)]]):
        body = "id,amount\n" + "".join(f"{a},{b}\n" for a, b in rows)
        s3.put_object(Bucket=bucket, Key=f"raw/part-{i}.csv", Body=body.encode())
    name = job(sm, s3, bucket, PREPROCESS, args=["--test-ratio", "0.4"],
               inputs=[{"InputName": "data", "S3Input": {
                   "S3Uri": f"s3://{bucket}/raw", "LocalPath": "/opt/ml/processing/input/data",
                   "S3DataType": "S3Prefix", "S3InputMode": "File"}}],
               outputs=[{"OutputName": "train", "S3Output": {"S3Uri": f"s3://{bucket}/out/train",
                                                             "LocalPath": "/opt/ml/processing/train",
                                                             "S3UploadMode": "EndOfJob"}},
                        {"OutputName": "test", "S3Output": {"S3Uri": f"s3://{bucket}/out/test/",
                                                            "LocalPath": "/opt/ml/processing/test",
                                                            "S3UploadMode": "EndOfJob"}}],
               Environment={"STAGE": "dev"}, StoppingCondition={"MaxRuntimeInSeconds": 300})
    d = ended(sm, name)
    assert d["ProcessingJobStatus"] == "Completed", d.get("FailureReason")
    sm.get_waiter("processing_job_completed_or_stopped").wait(
        ProcessingJobName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    assert d["ExitMessage"] == "split 3/2"
    assert d["ProcessingJobArn"].endswith(f":processing-job/{name}")
    assert d["ProcessingStartTime"] <= d["ProcessingEndTime"]
    assert d["AppSpecification"]["ContainerArguments"] == ["--test-ratio", "0.4"]
    train = s3.get_object(Bucket=bucket, Key="out/train/part/train.csv")["Body"].read().decode()
    test = s3.get_object(Bucket=bucket, Key="out/test/test.csv")["Body"].read().decode()
    assert train.splitlines() == ["id,amount,amount_x2", "1,10.0,20.0", "2,20.0,40.0", "3,30.0,60.0"]
    assert test.splitlines() == ["id,amount,amount_x2", "4,40.0,80.0", "5,50.0,100.0"]

    streams = logs.describe_log_streams(logGroupName="/aws/sagemaker/ProcessingJobs",
                                        logStreamNamePrefix=f"{name}/algo-1-")["logStreams"]
    assert len(streams) == 1
    lines = [e["message"] for e in logs.get_log_events(logGroupName="/aws/sagemaker/ProcessingJobs",
                                                       logStreamName=streams[0]["logStreamName"])["events"]]
    assert f"rows 5 train 3 test 2 job {name} env dev" in lines

    listed = sm.list_processing_jobs(NameContains=name, StatusEquals="Completed")["ProcessingJobSummaries"]
    assert [j["ProcessingJobName"] for j in listed] == [name]
    assert listed[0]["ExitMessage"] == "split 3/2"


def test_a_failing_program_fails_the_job_and_stop_and_max_runtime_end_it(sm, s3, bucket):
    failing = job(sm, s3, bucket, FAIL)
    with pytest.raises(WaiterError):  # the waiter fails on Failed, as SageMaker's does
        sm.get_waiter("processing_job_completed_or_stopped").wait(
            ProcessingJobName=failing, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    d = sm.describe_processing_job(ProcessingJobName=failing)
    assert d["ProcessingJobStatus"] == "Failed"
    assert "exit code 3" in d["FailureReason"] and d["ExitMessage"] == "the input had no rows"

    stopped = job(sm, s3, bucket, SLOW)
    deadline = time.time() + 30
    while sm.describe_processing_job(ProcessingJobName=stopped).get("ProcessingStartTime") is None:
        assert time.time() < deadline
        time.sleep(0.2)
    sm.stop_processing_job(ProcessingJobName=stopped)
    assert sm.describe_processing_job(ProcessingJobName=stopped)["ProcessingJobStatus"] in ("Stopping", "Stopped")
    assert ended(sm, stopped)["ProcessingJobStatus"] == "Stopped"
    with pytest.raises(ClientError) as e:
        sm.stop_processing_job(ProcessingJobName=stopped)
    assert e.value.response["Error"]["Code"] == "ValidationException"

    timed = job(sm, s3, bucket, SLOW, StoppingCondition={"MaxRuntimeInSeconds": 1})
    d = ended(sm, timed)
    assert d["ProcessingJobStatus"] == "Failed" and "MaxRuntimeInSeconds" in d["FailureReason"]


def test_what_is_refused(sm, s3, bucket):
    base = dict(RoleArn=ROLE, ProcessingResources={"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge",
                                                                      "VolumeSizeInGB": 30}})

    def code(**kw):
        with pytest.raises(ClientError) as e:
            sm.create_processing_job(ProcessingJobName=unique("bad"), **base, **kw)
        return e.value.response["Error"]["Code"], e.value.response["Error"]["Message"]

    # No entry point: the image's own would run in a container, which Basalt does not have.
    c, m = code(AppSpecification={"ImageUri": SKLEARN})
    assert c == "ValidationException" and "ContainerEntrypoint" in m
    c, m = code(AppSpecification={"ImageUri": SKLEARN, "ContainerEntrypoint": ["python3", "x.py"]},
                ProcessingInputs=[{"InputName": "a", "S3Input": {"S3Uri": f"s3://{bucket}/x", "LocalPath": "/tmp/a",
                                                                 "S3DataType": "S3Prefix", "S3InputMode": "File"}}])
    assert c == "ValidationException" and "/opt/ml/processing" in m
    name = job(sm, s3, bucket, "print('ok')\n")
    with pytest.raises(ClientError) as e:
        job(sm, s3, bucket, "print('ok')\n", name=name)
    assert e.value.response["Error"]["Code"] == "ResourceInUse"
    with pytest.raises(ClientError) as e:
        sm.describe_processing_job(ProcessingJobName=unique("nope"))
    assert e.value.response["Error"]["Code"] == "ResourceNotFound"
    assert ended(sm, name)["ProcessingJobStatus"] == "Completed"
