"""Checkpoints and managed spot training (SageMaker Developer Guide: "Use checkpoints in
Amazon SageMaker", "Managed Spot Training"): the files a training job writes under
`/opt/ml/checkpoints` are copied to CheckpointConfig.S3Uri while it runs, a job starts with
what that URI holds, and a spot job that is interrupted (simulated here once, three seconds into
its training, by BASALT_SAGEMAKER_SPOT_INTERRUPT_SECS) starts again from its last checkpoint,
recorded as the `Interrupted` secondary status. MaxWaitTimeInSeconds is required by spot jobs.
"""
from __future__ import annotations

import json
import time

import pytest
from botocore.exceptions import ClientError

from conftest import BasaltServer, make_client_factory, unique
from test_sagemaker import ENV, PYTORCH, ROLE, tar_gz

pytestmark = pytest.mark.skipif(not (ENV / ".installed").exists(),
                                reason=f"the SageMaker environment is not installed ({ENV}): run basalt runtimes pull")

# Twelve epochs of 0.4 s; each writes its number to a checkpoint, and a run starts after the
# last one it finds.
RESUMING_PY = """
import json, os, time
state = "/opt/ml/checkpoints/state.json"
start = json.load(open(state))["epoch"] + 1 if os.path.exists(state) else 0
print(f"resuming at epoch {start}", flush=True)
for epoch in range(start, 12):
    time.sleep(0.4)
    os.makedirs("/opt/ml/checkpoints", exist_ok=True)
    json.dump({"epoch": epoch}, open(state, "w"))
    print(f"epoch {epoch}", flush=True)
open("/opt/ml/model/resumed.txt", "w").write(str(start))
"""


@pytest.fixture(scope="module")
def clients(shape_checker, tmp_path_factory):
    srv = BasaltServer(data_dir=str(tmp_path_factory.mktemp("spot")), name="basalt-spot",
                       env={"BASALT_SAGEMAKER_SPOT_INTERRUPT_SECS": "3"}).start()
    make = make_client_factory(shape_checker, srv.endpoint)
    yield {k: make(k) for k in ("sagemaker", "s3", "logs")}
    srv.stop()
    panics = srv.panics()
    srv.close()
    assert not panics, panics


def start_job(c, bucket, spot, checkpoints, mode="File", script=RESUMING_PY):
    name = unique("spot")
    c["s3"].put_object(Bucket=bucket, Key=f"{name}/src.tar.gz", Body=tar_gz({"train.py": script}))
    c["s3"].put_object(Bucket=bucket, Key=f"{name}/data/a.csv", Body="1,2\n3,4\n")
    stopping = {"MaxRuntimeInSeconds": 120}
    extra = {}
    if spot:
        stopping["MaxWaitTimeInSeconds"] = 240
        extra["EnableManagedSpotTraining"] = True
    if checkpoints:
        extra["CheckpointConfig"] = {"S3Uri": checkpoints}
    c["sagemaker"].create_training_job(
        TrainingJobName=name, RoleArn=ROLE,
        AlgorithmSpecification={"TrainingImage": PYTORCH, "TrainingInputMode": mode},
        HyperParameters={"sagemaker_program": json.dumps("train.py"),
                         "sagemaker_submit_directory": json.dumps(f"s3://{bucket}/{name}/src.tar.gz")},
        InputDataConfig=[{"ChannelName": "training", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/{name}/data/"}}}],
        OutputDataConfig={"S3OutputPath": f"s3://{bucket}/{name}/out"},
        ResourceConfig={"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 10},
        StoppingCondition=stopping, **extra)
    return name


def wait(sm, name, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        d = sm.describe_training_job(TrainingJobName=name)
        if d["TrainingJobStatus"] in ("Completed", "Failed", "Stopped"):
            return d
        time.sleep(0.3)
    raise AssertionError(f"{name} is still {d['TrainingJobStatus']}")


def lines(c, name):
    events = c["logs"].filter_log_events(logGroupName="/aws/sagemaker/TrainingJobs",
                                         logStreamNamePrefix=f"{name}/")["events"]
    return [e["message"] for e in events]


@pytest.fixture(scope="module")
def bucket(clients):
    b = unique("sm-spot").lower()
    clients["s3"].create_bucket(Bucket=b)
    return b


def test_an_interrupted_spot_job_resumes_from_its_checkpoint(clients, bucket):
    c = clients
    checkpoints = f"s3://{bucket}/checkpoints/run-1"
    name = start_job(c, bucket, spot=True, checkpoints=checkpoints)
    d = wait(c["sagemaker"], name)
    assert d["TrainingJobStatus"] == "Completed", d.get("FailureReason")
    assert d["EnableManagedSpotTraining"] is True
    statuses = [t["Status"] for t in d["SecondaryStatusTransitions"]]
    assert "Interrupted" in statuses, statuses
    assert statuses.index("Interrupted") < len(statuses) - 1 - statuses[::-1].index("Training")
    resumed = [l for l in lines(c, name) if l.startswith("resuming at epoch")]
    # The first run started at 0; the second after the epoch its last checkpoint held.
    assert resumed[0] == "resuming at epoch 0" and len(resumed) == 2, resumed
    assert int(resumed[1].split()[-1]) > 0, resumed
    state = c["s3"].get_object(Bucket=bucket, Key="checkpoints/run-1/state.json")["Body"].read()
    assert json.loads(state) == {"epoch": 11}


def test_a_resumed_spot_job_reads_its_pipe_channels_from_the_start(clients, bucket):
    """The fresh instance after an interruption finds its Pipe channel's first epoch again
    (`training_0`), with all its data."""
    script = RESUMING_PY.replace(
        'print(f"resuming at epoch {start}", flush=True)',
        'data = open("/opt/ml/input/data/training_0").read()\n'
        'print(f"resuming at epoch {start} with {len(data.splitlines())} lines", flush=True)')
    name = start_job(clients, bucket, spot=True, checkpoints=f"s3://{bucket}/checkpoints/pipe",
                     mode="Pipe", script=script)
    d = wait(clients["sagemaker"], name)
    assert d["TrainingJobStatus"] == "Completed", d.get("FailureReason")
    resumed = [l for l in lines(clients, name) if l.startswith("resuming at epoch")]
    assert len(resumed) == 2 and all(l.endswith("with 2 lines") for l in resumed), resumed


def test_a_job_starts_with_the_checkpoints_its_uri_holds(clients, bucket):
    c = clients
    c["s3"].put_object(Bucket=bucket, Key="checkpoints/given/state.json", Body=json.dumps({"epoch": 7}))
    name = start_job(c, bucket, spot=False, checkpoints=f"s3://{bucket}/checkpoints/given")
    d = wait(c["sagemaker"], name)
    assert d["TrainingJobStatus"] == "Completed", d.get("FailureReason")
    assert "Interrupted" not in [t["Status"] for t in d["SecondaryStatusTransitions"]]
    assert [l for l in lines(c, name) if l.startswith("resuming")] == ["resuming at epoch 8"]
    state = c["s3"].get_object(Bucket=bucket, Key="checkpoints/given/state.json")["Body"].read()
    assert json.loads(state) == {"epoch": 11}


def test_spot_training_needs_max_wait_time(clients, bucket):
    sm = clients["sagemaker"]
    base = dict(RoleArn=ROLE, AlgorithmSpecification={"TrainingImage": PYTORCH, "TrainingInputMode": "File"},
                HyperParameters={"sagemaker_program": json.dumps("train.py")},
                OutputDataConfig={"S3OutputPath": f"s3://{bucket}/out"},
                ResourceConfig={"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 10})
    for stopping in ({"MaxRuntimeInSeconds": 100}, {"MaxRuntimeInSeconds": 100, "MaxWaitTimeInSeconds": 50}):
        with pytest.raises(ClientError) as e:
            sm.create_training_job(TrainingJobName=unique("nowait"), EnableManagedSpotTraining=True,
                                   StoppingCondition=stopping, **base)
        assert e.value.response["Error"]["Code"] == "ValidationException"
        assert "MaxWaitTimeInSeconds" in e.value.response["Error"]["Message"]
