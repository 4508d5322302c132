"""Step Functions' optimized SageMaker integration (`arn:aws:states:::sagemaker:*`), as the
Developer Guide's "Create and manage Amazon SageMaker AI jobs with Step Functions" describes it:
`createTrainingJob.sync` waits for a real training job and gives its DescribeTrainingJob output
(timestamps in epoch milliseconds, as Step Functions' integrations give them), the next state
creates a model from its artifacts; a failed job fails the task with States.TaskFailed and the
description as the cause; stopping the execution stops its job; SageMaker's errors keep the
names Step Functions gives them. Needs the local SageMaker environment (`basalt runtimes pull`).
"""
from __future__ import annotations

import json
import time

import pytest

from conftest import unique
from sfn_helpers import history, machine, sfn, start, wait_done  # noqa: F401 (fixture)
from test_sagemaker import (ENV, PYTORCH, ROLE, TRAIN_FAILS, TRAIN_SLEEPS, XGBOOST, channel, csv, rows,
                            sm, tar_gz)  # noqa: F401 (sm: fixture)

pytestmark = pytest.mark.skipif(not (ENV / ".installed").exists(),
                                reason=f"the SageMaker environment is not installed ({ENV}): run basalt runtimes pull")


@pytest.fixture(scope="module")
def bucket(s3):
    name = unique("sfn-sm").lower()
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="train/a.csv", Body=csv(rows(200, 3)))
    return name


def xgboost_job(bucket):
    """CreateTrainingJob's request for the built-in XGBoost, its name taken from the input."""
    return {
        "TrainingJobName.$": "$.name",
        "RoleArn": ROLE,
        "AlgorithmSpecification": {"TrainingImage": XGBOOST, "TrainingInputMode": "File"},
        "HyperParameters": {"objective": "binary:logistic", "num_round": "10", "max_depth": "3"},
        "InputDataConfig": [channel("train", f"s3://{bucket}/train/")],
        "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/output"},
        "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }


def script_job(s3, bucket, source):
    """A script-mode job's request (its source uploaded), named by the input."""
    key = f"src/{unique('src')}/sourcedir.tar.gz"
    s3.put_object(Bucket=bucket, Key=key, Body=tar_gz({"train.py": source}))
    return {
        "TrainingJobName.$": "$.name",
        "RoleArn": ROLE,
        "AlgorithmSpecification": {"TrainingImage": PYTORCH, "TrainingInputMode": "File"},
        "HyperParameters": {"sagemaker_program": json.dumps("train.py"),
                            "sagemaker_submit_directory": json.dumps(f"s3://{bucket}/{key}")},
        "InputDataConfig": [channel("training", f"s3://{bucket}/train/")],
        "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/output"},
        "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }


def wait_training(sm, name, timeout=60):
    """Until the job a state machine creates exists and trains."""
    deadline = time.time() + timeout
    while True:
        try:
            if sm.describe_training_job(TrainingJobName=name)["SecondaryStatus"] == "Training":
                return
        except sm.exceptions.ClientError:
            pass
        assert time.time() < deadline, "the job never started training"
        time.sleep(0.2)


def start_sleeping_job(sfn, s3, sm, bucket, name):
    """An execution whose `.sync` task runs a job that sleeps, once the job trains."""
    execution = start(sfn, machine(sfn, {
        "StartAt": "Train",
        "States": {"Train": {"Type": "Task", "Resource": "arn:aws:states:::sagemaker:createTrainingJob.sync",
                             "Parameters": script_job(s3, bucket, TRAIN_SLEEPS), "End": True}},
    }), {"name": name})
    wait_training(sm, name)
    return execution


def test_train_sync_then_create_a_model_from_its_artifacts(sfn, sm, bucket):
    name = unique("sfn-train")
    arn = machine(sfn, {
        "StartAt": "Train",
        "States": {
            "Train": {"Type": "Task", "Resource": "arn:aws:states:::sagemaker:createTrainingJob.sync",
                      "Parameters": xgboost_job(bucket), "Next": "Model"},
            "Model": {"Type": "Task", "Resource": "arn:aws:states:::sagemaker:createModel",
                      "Parameters": {"ModelName.$": "$.TrainingJobName", "ExecutionRoleArn": ROLE,
                                     "PrimaryContainer": {
                                         "Image": XGBOOST,
                                         "ModelDataUrl.$": "$.ModelArtifacts.S3ModelArtifacts"}},
                      "ResultPath": "$.Model", "End": True},
        },
    })
    execution = start(sfn, arn, {"name": name})
    d = wait_done(sfn, execution, timeout=180)
    assert d["status"] == "SUCCEEDED", d
    out = json.loads(d["output"])
    job = sm.describe_training_job(TrainingJobName=name)
    assert out["TrainingJobStatus"] == job["TrainingJobStatus"] == "Completed"
    assert out["TrainingJobArn"] == job["TrainingJobArn"]
    assert out["ModelArtifacts"]["S3ModelArtifacts"] == job["ModelArtifacts"]["S3ModelArtifacts"]
    # Epoch milliseconds, as Step Functions' integrations give timestamps.
    assert isinstance(out["CreationTime"], int)
    assert abs(out["CreationTime"] - job["CreationTime"].timestamp() * 1000) < 2
    assert out["Model"]["ModelArn"] == sm.describe_model(ModelName=name)["ModelArn"]
    assert sm.describe_model(ModelName=name)["PrimaryContainer"]["ModelDataUrl"] == \
        job["ModelArtifacts"]["S3ModelArtifacts"]
    events = history(sfn, execution)
    scheduled = [e for e in events if e["type"] == "TaskScheduled"]
    assert [(e["taskScheduledEventDetails"]["resourceType"], e["taskScheduledEventDetails"]["resource"])
            for e in scheduled] == [("sagemaker", "createTrainingJob.sync"), ("sagemaker", "createModel")]
    # The .sync task: submitted with CreateTrainingJob's answer, then succeeded with the job.
    kinds = [e["type"] for e in events]
    assert kinds[2:6] == ["TaskScheduled", "TaskStarted", "TaskSubmitted", "TaskSucceeded"]
    submitted = events[4]["taskSubmittedEventDetails"]
    assert json.loads(submitted["output"]) == {"TrainingJobArn": job["TrainingJobArn"]}


def test_a_failed_job_fails_the_task_with_its_description(sfn, s3, sm, bucket):
    name = unique("sfn-fail")
    d = wait_done(sfn, start(sfn, machine(sfn, {
        "StartAt": "Train",
        "States": {
            "Train": {"Type": "Task", "Resource": "arn:aws:states:::sagemaker:createTrainingJob.sync",
                      "Parameters": script_job(s3, bucket, TRAIN_FAILS),
                      "Catch": [{"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.err", "Next": "Caught"}],
                      "End": True},
            "Caught": {"Type": "Pass", "End": True},
        },
    }), {"name": name}), timeout=120)
    assert d["status"] == "SUCCEEDED", d
    err = json.loads(d["output"])["err"]
    assert err["Error"] == "States.TaskFailed"
    cause = json.loads(err["Cause"])
    assert cause["TrainingJobName"] == name and cause["TrainingJobStatus"] == "Failed"
    assert cause["FailureReason"] == "AlgorithmError: ValueError: the labels are all zero"


def test_stopping_the_execution_stops_its_job(sfn, s3, sm, bucket):
    name = unique("sfn-stop")
    execution = start_sleeping_job(sfn, s3, sm, bucket, name)
    sfn.stop_execution(executionArn=execution)
    deadline = time.time() + 30
    while (status := sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"]) == "InProgress":
        assert time.time() < deadline, "the job still runs after its execution was stopped"
        time.sleep(0.5)
    assert status in ("Stopping", "Stopped")
    assert sfn.describe_execution(executionArn=execution)["status"] == "ABORTED"


def test_errors_keep_the_names_step_functions_gives_them(sfn, sm, bucket):
    taken = unique("sfn-taken")
    catch = [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.err", "Next": "Caught"}]
    arn = machine(sfn, {
        "StartAt": "Create",
        "States": {
            "Create": {"Type": "Task", "Resource": "arn:aws:states:::sagemaker:createTrainingJob",
                       "Parameters": xgboost_job(bucket), "ResultPath": "$.created", "Next": "Again"},
            "Again": {"Type": "Task", "Resource": "arn:aws:states:::sagemaker:createTrainingJob",
                      "Parameters": xgboost_job(bucket), "Catch": catch, "End": True},
            "Caught": {"Type": "Pass", "End": True},
        },
    })
    d = wait_done(sfn, start(sfn, arn, {"name": taken}), timeout=60)
    assert d["status"] == "SUCCEEDED", (d.get("error"), d.get("cause"))
    out = json.loads(d["output"])
    # Request-response: the task ends with CreateTrainingJob's answer, not the job's end.
    assert out["created"]["TrainingJobArn"] == sm.describe_training_job(TrainingJobName=taken)["TrainingJobArn"]
    assert out["err"]["Error"] == "SageMaker.ResourceInUseException"
    assert "Error Code: ResourceInUse" in out["err"]["Cause"]
    # An API of the integration that Basalt's SageMaker lacks ends the execution with
    # States.Runtime, which no Catch takes (as with any resource Step Functions cannot run).
    d = wait_done(sfn, start(sfn, machine(sfn, {
        "StartAt": "Labeling",
        "States": {"Labeling": {
            "Type": "Task", "Resource": "arn:aws:states:::sagemaker:createLabelingJob.sync",
            "Parameters": {"LabelingJobName": "p"}, "Catch": catch, "End": True},
            "Caught": {"Type": "Pass", "End": True}},
    })), timeout=30)
    assert (d["status"], d["error"]) == ("FAILED", "States.Runtime")
    assert "createLabelingJob" in d["cause"]


def test_processing_sync_waits_for_the_job(sfn, s3, sm, bucket):
    name = unique("sfn-proc")
    s3.put_object(Bucket=bucket, Key=f"{name}/code/count.py", Body=b"""
import os
n = len(open('/opt/ml/processing/input/data/a.csv').read().splitlines())
os.makedirs('/opt/ml/processing/out', exist_ok=True)
open('/opt/ml/processing/out/count.txt', 'w').write(str(n))
""")
    s3.put_object(Bucket=bucket, Key=f"{name}/data/a.csv", Body=b"1\n2\n3\n")
    arn = machine(sfn, {"StartAt": "Process", "States": {"Process": {
        "Type": "Task", "Resource": "arn:aws:states:::sagemaker:createProcessingJob.sync", "End": True,
        "Parameters": {
            "ProcessingJobName.$": "$.name", "RoleArn": ROLE,
            "AppSpecification": {"ImageUri": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3",
                                 "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/count.py"]},
            "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 10}},
            "ProcessingInputs": [
                {"InputName": "code", "S3Input": {"S3Uri": f"s3://{bucket}/{name}/code", "LocalPath": "/opt/ml/processing/input/code",
                                                  "S3DataType": "S3Prefix", "S3InputMode": "File"}},
                {"InputName": "data", "S3Input": {"S3Uri": f"s3://{bucket}/{name}/data", "LocalPath": "/opt/ml/processing/input/data",
                                                  "S3DataType": "S3Prefix", "S3InputMode": "File"}}],
            "ProcessingOutputConfig": {"Outputs": [{"OutputName": "out", "S3Output": {
                "S3Uri": f"s3://{bucket}/{name}/out", "LocalPath": "/opt/ml/processing/out", "S3UploadMode": "EndOfJob"}}]}}}}})
    d = wait_done(sfn, start(sfn, arn, {"name": name}), timeout=60)
    assert d["status"] == "SUCCEEDED", (d.get("error"), d.get("cause"))
    out = json.loads(d["output"])
    assert (out["ProcessingJobName"], out["ProcessingJobStatus"]) == (name, "Completed")
    assert s3.get_object(Bucket=bucket, Key=f"{name}/out/count.txt")["Body"].read() == b"3"


@pytest.mark.slow
def test_a_sync_task_taken_over_after_kill_9_waits_for_the_job_it_started(shape_checker, tmp_path):
    """The node running a `.sync` task dies while its job trains: after the restart the task
    (its lease expired) finds the job it created and follows it, instead of creating it again
    (SageMaker would refuse: the name is taken). Basalt fails a training job whose node died
    (as SageMaker fails a job on an internal error), so the task fails with that job's
    description, not with SageMaker.ResourceInUseException."""
    from conftest import BasaltServer, make_client_factory
    env = {"BASALT_SAGEMAKER_LEASE_MS": "2000", "BASALT_SFN_TASK_LEASE_MS": "2000"}
    srv = BasaltServer(data_dir=str(tmp_path), name="basalt-sfn-sm-crash", env=env).start()
    servers = [srv]
    try:
        mk = make_client_factory(shape_checker, srv.endpoint)
        s3, sm = mk("s3"), mk("sagemaker")
        sfn = mk("stepfunctions", inject_host_prefix=False)
        bucket = unique("sfn-sm-crash").lower()
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="train/a.csv", Body="1,2\n")
        name = unique("sfn-crash")
        execution = start_sleeping_job(sfn, s3, sm, bucket, name)
        srv.kill9()
        srv = BasaltServer(data_dir=str(tmp_path), name="basalt-sfn-sm-crash-restart", env=env).start()
        servers.append(srv)
        mk = make_client_factory(shape_checker, srv.endpoint)
        sfn, sm = mk("stepfunctions", inject_host_prefix=False), mk("sagemaker")
        d = wait_done(sfn, execution, timeout=90)
        assert (d["status"], d.get("error")) == ("FAILED", "States.TaskFailed"), d
        job = json.loads(d["cause"])
        assert (job["TrainingJobName"], job["TrainingJobStatus"]) == (name, "Failed")
        assert job["FailureReason"] == sm.describe_training_job(TrainingJobName=name)["FailureReason"]
        assert job["FailureReason"].startswith("InternalServerError")
        scheduled = [e for e in history(sfn, execution) if e["type"] == "TaskScheduled"]
        assert len(scheduled) == 1
    finally:
        servers[-1].stop()
        panics = [p for s in servers for p in s.panics()]
        assert not panics, "\n".join(panics)
