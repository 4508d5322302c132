"""SageMaker through boto3: the built-in XGBoost algorithm trains for real on CSV channels
(statuses, secondary statuses, final metrics, model.tar.gz in S3, the waiters), the model is
deployed and InvokeEndpoint answers with exactly the predictions xgboost itself makes from the
saved model; a script-mode model serves through model_fn/input_fn/predict_fn/output_fn in a
warm Python worker; failures, stops, errors and the isolation of a job's process behave as
SageMaker's. Needs the local SageMaker environment (`basalt runtimes pull`).
"""
from __future__ import annotations

import io
import json
import os
import random
import subprocess
import tarfile
import time
import urllib.request
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from conftest import unique

ENV = Path(os.environ.get("BASALT_RUNTIME_DIR", Path.home() / ".cache/basalt/runtimes")) / "sagemaker"
pytestmark = pytest.mark.skipif(not (ENV / ".installed").exists(),
                                reason=f"the SageMaker environment is not installed ({ENV}): run basalt runtimes pull")

ROLE = "arn:aws:iam::000000000000:role/SageMakerRole"
XGBOOST = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.5-1"
PYTORCH = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.0.1-cpu-py310"
PYTORCH_INFERENCE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.0.1-cpu-py310"


@pytest.fixture(scope="module")
def sm(make_client):
    return make_client("sagemaker")


@pytest.fixture(scope="module")
def smr(make_client):
    return make_client("sagemaker-runtime")


@pytest.fixture(scope="module")
def data_bucket(s3):
    name = unique("sm-data").lower()
    s3.create_bucket(Bucket=name)
    return name


def rows(n, seed):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        x = [round(rng.uniform(-3, 3), 3) for _ in range(4)]
        label = 1 if x[0] + 0.5 * x[1] * x[1] - x[2] > 0.3 else 0
        out.append([label] + x)
    return out


def csv(rs):
    return "\n".join(",".join(str(v) for v in r) for r in rs) + "\n"


def untar(data):
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tf:
        return {m.name: tf.extractfile(m).read() for m in tf.getmembers() if m.isfile()}


def tar_gz(files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in files.items():
            data = data.encode() if isinstance(data, str) else data
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def wait_job(sm, name, timeout=180):
    """The job once it ended: boto3's waiter for a job that succeeds or stops (it raises on
    Failed, as SageMaker's waiter does), a poll for one that fails."""
    deadline = time.time() + timeout
    while (desc := sm.describe_training_job(TrainingJobName=name))["TrainingJobStatus"] in ("InProgress", "Stopping"):
        assert time.time() < deadline, desc
        time.sleep(0.5)
    if desc["TrainingJobStatus"] != "Failed":
        sm.get_waiter("training_job_completed_or_stopped").wait(
            TrainingJobName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 5})
    return desc


def channel(name, uri, content_type="text/csv"):
    return {"ChannelName": name, "ContentType": content_type,
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri,
                                            "S3DataDistributionType": "FullyReplicated"}}}


def small_xgboost_model(sm, s3, prefix, mode="File"):
    """A built-in XGBoost model trained on 200 rows in a bucket of its own (channels in `mode`):
    (artifacts, bucket)."""
    bucket = unique(prefix).lower()
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="train/part-0.csv", Body=csv(rows(200, 1)))
    job = unique(f"{prefix}-train")
    sm.create_training_job(
        TrainingJobName=job, RoleArn=ROLE,
        AlgorithmSpecification={"TrainingImage": XGBOOST, "TrainingInputMode": mode},
        HyperParameters={"objective": "binary:logistic", "num_round": "5"},
        InputDataConfig=[channel("train", f"s3://{bucket}/train/")],
        OutputDataConfig={"S3OutputPath": f"s3://{bucket}/model"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        StoppingCondition={"MaxRuntimeInSeconds": 120})
    desc = wait_job(sm, job)
    assert desc["TrainingJobStatus"] == "Completed", desc.get("FailureReason")
    return desc["ModelArtifacts"]["S3ModelArtifacts"], bucket


@pytest.fixture(scope="module")
def xgb_job(sm, s3, data_bucket):
    s3.put_object(Bucket=data_bucket, Key="xgb/train/part-0.csv", Body=csv(rows(400, 1)))
    s3.put_object(Bucket=data_bucket, Key="xgb/validation/part-0.csv", Body=csv(rows(100, 2)))
    name = unique("xgb")
    sm.create_training_job(
        TrainingJobName=name, RoleArn=ROLE,
        AlgorithmSpecification={"TrainingImage": XGBOOST, "TrainingInputMode": "File"},
        HyperParameters={"objective": "binary:logistic", "num_round": "30", "max_depth": "4", "eta": "0.3",
                         "eval_metric": "logloss,error", "seed": "7"},
        InputDataConfig=[channel("train", f"s3://{data_bucket}/xgb/train/"),
                         channel("validation", f"s3://{data_bucket}/xgb/validation/")],
        OutputDataConfig={"S3OutputPath": f"s3://{data_bucket}/xgb/output"},
        ResourceConfig={"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 10},
        StoppingCondition={"MaxRuntimeInSeconds": 600},
        Tags=[{"Key": "team", "Value": "fraud"}],
    )
    return name, wait_job(sm, name)


def test_builtin_xgboost_trains_and_reports_like_sagemaker(sm, s3, xgb_job):
    name, desc = xgb_job
    assert desc["TrainingJobStatus"] == "Completed", desc.get("FailureReason")
    assert desc["SecondaryStatus"] == "Completed"
    statuses = [t["Status"] for t in desc["SecondaryStatusTransitions"]]
    assert statuses == ["Starting", "Downloading", "Training", "Uploading", "Completed"], statuses
    assert desc["TrainingStartTime"] <= desc["TrainingEndTime"]
    assert desc["HyperParameters"]["num_round"] == "30"
    assert desc["TrainingJobArn"].endswith(f":training-job/{name.lower()}")
    metrics = {m["MetricName"]: m["Value"] for m in desc["FinalMetricDataList"]}
    assert {"train:logloss", "validation:logloss", "train:error", "validation:error"} <= set(metrics)
    assert metrics["validation:error"] < 0.2, metrics
    artifacts = desc["ModelArtifacts"]["S3ModelArtifacts"]
    assert artifacts.endswith(f"/xgb/output/{name}/output/model.tar.gz")
    bucket, key = artifacts[5:].split("/", 1)
    files = untar(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert list(files) == ["xgboost-model"]
    assert json.loads(files["xgboost-model"])["learner"]["objective"]["name"] == "binary:logistic"
    # Listed, filtered and tagged.
    listed = sm.list_training_jobs(NameContains=name, StatusEquals="Completed")["TrainingJobSummaries"]
    assert [j["TrainingJobName"] for j in listed] == [name]
    tags = sm.list_tags(ResourceArn=desc["TrainingJobArn"])["Tags"]
    assert tags == [{"Key": "team", "Value": "fraud"}]
    with pytest.raises(ClientError) as e:
        sm.create_training_job(
            TrainingJobName=name, RoleArn=ROLE,
            AlgorithmSpecification={"TrainingImage": XGBOOST, "TrainingInputMode": "File"},
            OutputDataConfig={"S3OutputPath": "s3://x/y"},
            ResourceConfig={"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 10},
            StoppingCondition={"MaxRuntimeInSeconds": 60})
    assert e.value.response["Error"]["Code"] == "ResourceInUse"


def test_training_logs_go_to_cloudwatch(make_client, xgb_job):
    name, _ = xgb_job
    logs = make_client("logs")
    streams = logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs",
                                        logStreamNamePrefix=f"{name}/algo-1-")["logStreams"]
    assert len(streams) == 1
    events = logs.get_log_events(logGroupName="/aws/sagemaker/TrainingJobs",
                                 logStreamName=streams[0]["logStreamName"], startFromHead=True)["events"]
    assert any(e["message"].startswith("[29]#011train-logloss:") for e in events), events[-3:]


def deploy(sm, model_name, image, model_data=None, env=None, serverless=None, count=1):
    container = {"Image": image}
    if model_data:
        container["ModelDataUrl"] = model_data
    if env:
        container["Environment"] = env
    sm.create_model(ModelName=model_name, PrimaryContainer=container, ExecutionRoleArn=ROLE)
    variant = {"VariantName": "AllTraffic", "ModelName": model_name}
    if serverless:
        variant["ServerlessConfig"] = serverless
    else:
        variant.update(InstanceType="ml.m5.large", InitialInstanceCount=count)
    sm.create_endpoint_config(EndpointConfigName=model_name, ProductionVariants=[variant])
    sm.create_endpoint(EndpointName=model_name, EndpointConfigName=model_name)
    sm.get_waiter("endpoint_in_service").wait(EndpointName=model_name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    return model_name


def xgboost_predictions(model_bytes, csv_text, tmp_path):
    """xgboost's own predictions for the saved model, from the SageMaker environment."""
    (tmp_path / "model.json").write_bytes(model_bytes)
    (tmp_path / "rows.csv").write_text(csv_text)
    code = ("import sys, numpy as np, xgboost as xgb; b = xgb.Booster(); b.load_model(sys.argv[1]);"
            "x = np.loadtxt(sys.argv[2], delimiter=',', ndmin=2, dtype=np.float32);"
            "print(','.join(repr(float(p)) for p in b.predict(xgb.DMatrix(x))))")
    out = subprocess.run([str(ENV / "bin/python"), "-c", code, str(tmp_path / "model.json"),
                          str(tmp_path / "rows.csv")], capture_output=True, text=True, check=True)
    return [float(v) for v in out.stdout.strip().split(",")]


def test_xgboost_endpoint_predicts_exactly_what_xgboost_does(sm, smr, s3, xgb_job, tmp_path):
    name, desc = xgb_job
    artifacts = desc["ModelArtifacts"]["S3ModelArtifacts"]
    endpoint = deploy(sm, unique("xgb-ep"), XGBOOST, artifacts, count=2)
    ep = sm.describe_endpoint(EndpointName=endpoint)
    assert ep["EndpointStatus"] == "InService"
    variant = ep["ProductionVariants"][0]
    assert (variant["VariantName"], variant["CurrentInstanceCount"], variant["CurrentWeight"]) == ("AllTraffic", 2, 1.0)
    assert variant["DeployedImages"][0]["SpecifiedImage"] == XGBOOST
    test_rows = [r[1:] for r in rows(50, 3)]
    body = csv(test_rows)
    resp = smr.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=body)
    assert resp["ContentType"].startswith("text/csv")
    assert resp["InvokedProductionVariant"] == "AllTraffic"
    got = [float(v) for v in resp["Body"].read().decode().split(",")]
    bucket, key = artifacts[5:].split("/", 1)
    model = untar(s3.get_object(Bucket=bucket, Key=key)["Body"].read())["xgboost-model"]
    want = xgboost_predictions(model, body, tmp_path)
    assert len(got) == 50
    assert max(abs(a - b) for a, b in zip(got, want)) <= 1e-6, (got[:5], want[:5])
    # libsvm rows score the same; a missing field is a missing value.
    libsvm = "\n".join(" ".join(f"{i}:{v}" for i, v in enumerate(r)) for r in test_rows[:3])
    same = smr.invoke_endpoint(EndpointName=endpoint, ContentType="text/libsvm", Body=libsvm)["Body"].read().decode()
    assert [float(v) for v in same.split(",")] == got[:3]
    # So do RecordIO-protobuf records (SageMaker's aialgs.data.Record, encoded by protobuf),
    # dense and sparse.
    from recordpb import record, recordio
    dense = recordio(record(r, 0.0) for r in test_rows[:3])
    same = smr.invoke_endpoint(EndpointName=endpoint, ContentType="application/x-recordio-protobuf",
                               Body=dense)["Body"].read().decode()
    assert [float(v) for v in same.split(",")] == got[:3]
    sparse = recordio(record(r, 0.0, keys=list(range(len(r))), shape=[len(r)]) for r in test_rows[:3])
    same = smr.invoke_endpoint(EndpointName=endpoint, ContentType="application/x-recordio-protobuf",
                               Body=sparse)["Body"].read().decode()
    assert [float(v) for v in same.split(",")] == got[:3]
    with pytest.raises(ClientError) as e:
        smr.invoke_endpoint(EndpointName=endpoint, ContentType="application/x-recordio-protobuf", Body=body)
    assert e.value.response["OriginalStatusCode"] == 415
    assert "recordio-protobuf" in e.value.response["OriginalMessage"]
    # What the container refuses, InvokeEndpoint reports as a ModelError.
    with pytest.raises(ClientError) as e:
        smr.invoke_endpoint(EndpointName=endpoint, ContentType="application/json", Body=b"[1,2]")
    err = e.value.response
    assert err["Error"]["Code"] == "ModelError" and err["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert err["OriginalStatusCode"] == 415 and "text/csv" in err["OriginalMessage"]
    assert err["LogStreamArn"].endswith(f":log-group:/aws/sagemaker/Endpoints/{endpoint}")
    with pytest.raises(ClientError) as e:
        smr.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=b"1,abc,3,4")
    assert e.value.response["OriginalStatusCode"] == 415
    sm.delete_endpoint(EndpointName=endpoint)
    with pytest.raises(ClientError) as e:
        sm.describe_endpoint(EndpointName=endpoint)
    assert e.value.response["Error"]["Code"] == "ValidationException"
    assert "Could not find endpoint" in e.value.response["Error"]["Message"]


def test_multi_model_endpoint_serves_the_model_each_request_names(sm, smr, s3, xgb_job, tmp_path):
    """A container in MultiModel mode serves every model under its ModelDataUrl prefix:
    TargetModel names the object, loaded on first use and kept for the next request."""
    artifacts_a = xgb_job[1]["ModelArtifacts"]["S3ModelArtifacts"]
    artifacts_b, bucket = small_xgboost_model(sm, s3, "mme")
    models = {}
    for name, uri in (("fraud/a.tar.gz", artifacts_a), ("b.tar.gz", artifacts_b)):
        src_bucket, src_key = uri[5:].split("/", 1)
        data = s3.get_object(Bucket=src_bucket, Key=src_key)["Body"].read()
        s3.put_object(Bucket=bucket, Key=f"models/{name}", Body=data)
        models[name] = untar(data)["xgboost-model"]
    endpoint = unique("mme")
    sm.create_model(ModelName=endpoint, ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": XGBOOST, "Mode": "MultiModel", "ModelDataUrl": f"s3://{bucket}/models/"})
    assert sm.describe_model(ModelName=endpoint)["PrimaryContainer"]["Mode"] == "MultiModel"
    sm.create_endpoint_config(EndpointConfigName=endpoint, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": endpoint, "InstanceType": "ml.m5.large",
        "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=endpoint)
    sm.get_waiter("endpoint_in_service").wait(EndpointName=endpoint, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    body = csv([r[1:] for r in rows(20, 5)])
    answers = {}
    for name in ("fraud/a.tar.gz", "b.tar.gz", "fraud/a.tar.gz"):
        resp = smr.invoke_endpoint(EndpointName=endpoint, TargetModel=name, ContentType="text/csv", Body=body)
        assert resp["InvokedProductionVariant"] == "AllTraffic"
        got = [float(v) for v in resp["Body"].read().decode().split(",")]
        want = xgboost_predictions(models[name], body, tmp_path)
        assert max(abs(a - b) for a, b in zip(got, want)) <= 1e-6, (name, got[:3], want[:3])
        answers.setdefault(name, got)
    assert answers["fraud/a.tar.gz"] != answers["b.tar.gz"], "both models answered alike"

    def refused(**kw):
        with pytest.raises(ClientError) as e:
            smr.invoke_endpoint(ContentType="text/csv", Body=body, **kw)
        return e.value.response["Error"]
    err = refused(EndpointName=endpoint, TargetModel="missing.tar.gz")
    assert err["Code"] == "ValidationError"
    assert f"bucket: {bucket}, key: models/missing.tar.gz" in err["Message"]
    assert refused(EndpointName=endpoint)["Code"] == "ValidationError"
    single = deploy(sm, unique("single"), XGBOOST, artifacts_a)
    assert "not a multi-model endpoint" in refused(EndpointName=single, TargetModel="b.tar.gz")["Message"]
    # An inference pipeline cannot host several models.
    with pytest.raises(ClientError) as e:
        sm.create_model(ModelName=unique("mme-pipe"), ExecutionRoleArn=ROLE, Containers=[
            {"Image": XGBOOST, "Mode": "MultiModel", "ModelDataUrl": f"s3://{bucket}/models/"},
            {"Image": XGBOOST, "ModelDataUrl": artifacts_a}])
    assert e.value.response["Error"]["Code"] == "ValidationException"
    for name in (endpoint, single):
        sm.delete_endpoint(EndpointName=name)


INFERENCE_PY = '''
import json, math, os

def model_fn(model_dir):
    with open(os.path.join(model_dir, "model.json")) as f:
        return json.load(f)

def input_fn(body, content_type):
    data = json.loads(body)
    if data == "boom":
        raise ValueError("the input says boom")
    return data["instances"]

def predict_fn(rows, model):
    return [1 / (1 + math.exp(-(model["b"] + sum(w * x for w, x in zip(model["w"], r))))) for r in rows]

def output_fn(prediction, accept):
    return json.dumps({"predictions": prediction})
'''


def test_script_mode_model_serves_through_its_handlers(sm, smr, s3, data_bucket):
    model = {"w": [0.5, -0.25], "b": 0.1}
    s3.put_object(Bucket=data_bucket, Key="script/model.tar.gz",
                  Body=tar_gz({"model.json": json.dumps(model), "code/inference.py": INFERENCE_PY}))
    env = {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code"}
    endpoint = deploy(sm, unique("script-ep"), PYTORCH_INFERENCE, f"s3://{data_bucket}/script/model.tar.gz", env,
                      serverless={"MemorySizeInMB": 2048, "MaxConcurrency": 5})
    config = sm.describe_endpoint_config(EndpointConfigName=endpoint)["ProductionVariants"][0]
    assert config["ServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 5}
    variant = sm.describe_endpoint(EndpointName=endpoint)["ProductionVariants"][0]
    assert variant["CurrentServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 5}
    resp = smr.invoke_endpoint(EndpointName=endpoint, ContentType="application/json", Accept="application/json",
                               Body=json.dumps({"instances": [[1, 2], [0, 0]]}))
    import math
    want = [1 / (1 + math.exp(-(0.1 + 0.5 - 0.5))), 1 / (1 + math.exp(-0.1))]
    assert json.loads(resp["Body"].read())["predictions"] == pytest.approx(want, abs=1e-12)
    assert resp["ContentType"] == "application/json"
    with pytest.raises(ClientError) as e:
        smr.invoke_endpoint(EndpointName=endpoint, ContentType="application/json", Body=b'"boom"')
    err = e.value.response
    assert err["Error"]["Code"] == "ModelError" and err["OriginalStatusCode"] == 500
    assert "the input says boom" in err["OriginalMessage"]
    # The worker survives a failed request.
    again = smr.invoke_endpoint(EndpointName=endpoint, ContentType="application/json",
                                Body=json.dumps({"instances": [[0, 0]]}))
    assert json.loads(again["Body"].read())["predictions"] == pytest.approx([want[1]], abs=1e-12)


def test_a_broken_inference_script_fails_the_deployment(sm, s3, data_bucket):
    s3.put_object(Bucket=data_bucket, Key="broken/model.tar.gz",
                  Body=tar_gz({"code/inference.py": "def model_fn(d):\n    raise RuntimeError('no weights here')\n"}))
    name = unique("broken")
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": PYTORCH_INFERENCE, "ModelDataUrl": f"s3://{data_bucket}/broken/model.tar.gz",
        "Environment": {"SAGEMAKER_PROGRAM": "inference.py"}})
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[
        {"VariantName": "v1", "ModelName": name, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    deadline = time.time() + 60
    while (ep := sm.describe_endpoint(EndpointName=name))["EndpointStatus"] == "Creating" and time.time() < deadline:
        time.sleep(0.5)
    assert ep["EndpointStatus"] == "Failed"
    assert "no weights here" in ep["FailureReason"]


TRAIN_FAILS = '''
import os, sys
with open(os.path.join(os.path.dirname(os.environ["SM_MODEL_DIR"]), "output", "failure"), "w") as f:
    f.write("ValueError: the labels are all zero")
sys.exit(1)
'''

TRAIN_SLEEPS = '''
import time
print("starting", flush=True)
time.sleep(300)
'''

TRAIN_PROBES = '''
import json, os, sys
data = sys.argv[sys.argv.index("--data-dir") + 1]
try:
    os.listdir(data)
    found = "readable"
except PermissionError:
    found = "denied"
except FileNotFoundError:
    found = "missing"
with open(os.path.join(os.environ["SM_MODEL_DIR"], "probe.json"), "w") as f:
    json.dump({"data_dir": found, "hps": json.loads(os.environ["SM_HPS"]),
               "channel": sorted(os.listdir(os.environ["SM_CHANNEL_TRAINING"])),
               "epochs": sys.argv[sys.argv.index("--epochs") + 1]}, f)
'''


def script_job(sm, s3, bucket, source, extra_hp=None, max_runtime=600, mode="File", data=None):
    name = unique("script")
    s3.put_object(Bucket=bucket, Key=f"{name}/source/sourcedir.tar.gz", Body=tar_gz({"train.py": source}))
    for key, body in (data or {"a.csv": "1,2\n"}).items():
        s3.put_object(Bucket=bucket, Key=f"{name}/data/{key}", Body=body)
    hps = {"sagemaker_program": json.dumps("train.py"),
           "sagemaker_submit_directory": json.dumps(f"s3://{bucket}/{name}/source/sourcedir.tar.gz"),
           "epochs": json.dumps(3)}
    hps.update(extra_hp or {})
    sm.create_training_job(
        TrainingJobName=name, RoleArn=ROLE,
        AlgorithmSpecification={"TrainingImage": PYTORCH, "TrainingInputMode": mode},
        HyperParameters=hps,
        InputDataConfig=[{"ChannelName": "training", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/{name}/data/"}}}],
        OutputDataConfig={"S3OutputPath": f"s3://{bucket}/{name}/output"},
        ResourceConfig={"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 10},
        StoppingCondition={"MaxRuntimeInSeconds": max_runtime},
    )
    return name


TRAIN_FROM_PIPES = '''
import hashlib, json, os
data = "/opt/ml/input/data"
seen = {"before": sorted(n for n in os.listdir(data) if not n.startswith("."))}
epochs = []
for epoch in range(2):
    with open(os.path.join(data, f"training_{epoch}"), "rb") as pipe:
        body = pipe.read()
    epochs.append({"bytes": len(body), "sha256": hashlib.sha256(body).hexdigest(), "text": body.decode()})
seen["epochs"] = epochs
with open("/opt/ml/input/config/inputdataconfig.json") as f:
    seen["mode"] = json.load(f)["training"]["TrainingInputMode"]
with open(os.path.join(os.environ["SM_MODEL_DIR"], "pipes.json"), "w") as f:
    json.dump(seen, f)
'''


def test_pipe_mode_streams_each_epoch_through_a_fifo(sm, s3, data_bucket):
    """Pipe input mode (Developer Guide, "Access Training Data"; the training container
    contract): the channel is /opt/ml/input/data/<channel>_<epoch>, a FIFO carrying every object
    of the channel, read once per epoch; nothing is downloaded into the channel directory."""
    name = script_job(sm, s3, data_bucket, TRAIN_FROM_PIPES, mode="Pipe",
                      data={"a.csv": "1,2\n", "b.csv": "3,4\n5,6\n"})
    desc = wait_job(sm, name)
    assert desc["TrainingJobStatus"] == "Completed", desc.get("FailureReason")
    model = s3.get_object(Bucket=data_bucket, Key=desc["ModelArtifacts"]["S3ModelArtifacts"].split("/", 3)[3])
    seen = json.loads(untar(model["Body"].read())["pipes.json"])
    assert seen["mode"] == "Pipe"
    assert "training_0" in seen["before"], seen
    assert [e["text"] for e in seen["epochs"]] == ["1,2\n3,4\n5,6\n"] * 2

    # The built-in XGBoost algorithm reads its channels from their pipes too.
    artifacts, _ = small_xgboost_model(sm, s3, "pipe-xgb", mode="Pipe")
    assert artifacts.endswith("model.tar.gz")


def xgboost_on(sm, bucket, prefix, content_type, mode="File"):
    """The `xgboost-model` a built-in XGBoost job trains on s3://bucket/prefix/ (5 rounds)."""
    job = unique("xgb-formats")
    sm.create_training_job(
        TrainingJobName=job, RoleArn=ROLE,
        AlgorithmSpecification={"TrainingImage": XGBOOST, "TrainingInputMode": mode},
        HyperParameters={"objective": "binary:logistic", "num_round": "5", "max_depth": "3"},
        InputDataConfig=[channel("train", f"s3://{bucket}/{prefix}/", content_type)],
        OutputDataConfig={"S3OutputPath": f"s3://{bucket}/{job}"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        StoppingCondition={"MaxRuntimeInSeconds": 120})
    return job, wait_job(sm, job)


def test_builtin_xgboost_reads_recordio_protobuf(sm, s3, data_bucket):
    """application/x-recordio-protobuf channels (SageMaker's `aialgs.data.Record` in RecordIO,
    as the SageMaker Python SDK writes them; encoded here with the protobuf library): dense
    records train the same model as the same rows in CSV, sparse ones (keys and shape) the same
    as in libsvm; Pipe mode reads them too."""
    from recordpb import record, recordio
    data = rows(300, 5)
    name = unique("xgb-pb")
    s3.put_object(Bucket=data_bucket, Key=f"{name}/csv/part-0.csv", Body=csv(data))
    s3.put_object(Bucket=data_bucket, Key=f"{name}/pb/part-0.pbr",
                  Body=recordio(record(r[1:], r[0]) for r in data[:150]))
    s3.put_object(Bucket=data_bucket, Key=f"{name}/pb/part-1.pbr",
                  Body=recordio(record(r[1:], r[0]) for r in data[150:]))
    # Sparse: the non-positive features left out, in both forms.
    sparse = [(r[0], [(i, v) for i, v in enumerate(r[1:]) if v > 0]) for r in data]
    s3.put_object(Bucket=data_bucket, Key=f"{name}/svm/part-0.txt",
                  Body="\n".join(f"{y} " + " ".join(f"{i}:{v}" for i, v in kv) for y, kv in sparse) + "\n")
    s3.put_object(Bucket=data_bucket, Key=f"{name}/spb/part-0.pbr", Body=recordio(
        record([v for _, v in kv], y, keys=[i for i, _ in kv], shape=[4]) for y, kv in sparse))

    def model(job_desc):
        job, desc = job_desc
        assert desc["TrainingJobStatus"] == "Completed", (job, desc.get("FailureReason"))
        key = desc["ModelArtifacts"]["S3ModelArtifacts"].split("/", 3)[3]
        return json.loads(untar(s3.get_object(Bucket=data_bucket, Key=key)["Body"].read())["xgboost-model"])

    def trees(m):
        return m["learner"]["gradient_booster"]["model"]["trees"]

    pb = "application/x-recordio-protobuf"
    from_csv = trees(model(xgboost_on(sm, data_bucket, f"{name}/csv", "text/csv")))
    assert trees(model(xgboost_on(sm, data_bucket, f"{name}/pb", pb))) == from_csv
    assert trees(model(xgboost_on(sm, data_bucket, f"{name}/pb", pb, mode="Pipe"))) == from_csv
    from_svm = trees(model(xgboost_on(sm, data_bucket, f"{name}/svm", "text/libsvm")))
    assert trees(model(xgboost_on(sm, data_bucket, f"{name}/spb", pb))) == from_svm
    assert from_svm != from_csv

    # Data that is not RecordIO-protobuf fails the job with the container's kind of reason.
    job, desc = xgboost_on(sm, data_bucket, f"{name}/csv", pb)
    assert desc["TrainingJobStatus"] == "Failed"
    assert desc["FailureReason"].startswith("ClientError: the train channel is not RecordIO-protobuf data"), desc["FailureReason"]


def test_container_entrypoint_replaces_the_images_entry_point(sm, s3, data_bucket):
    """AlgorithmSpecification.ContainerEntrypoint and ContainerArguments run instead of the
    image's entry point (how the SageMaker Python SDK 3's ModelTrainer starts its sm_train.sh):
    a shell command whose `python3` is the local environment's, the code from a channel, the
    model from /opt/ml/model; a failing command fails the job with its failure file."""
    name = unique("entry")
    s3.put_object(Bucket=data_bucket, Key=f"{name}/code/train.py", Body=(
        "import os, sys, sklearn\n"
        "open(os.path.join(os.environ['SM_MODEL_DIR'], 'out.txt'), 'w').write(' '.join(sys.argv[1:]) + ' ' + sklearn.__version__)\n"
        "if 'fail' in sys.argv:\n"
        "    open('/opt/ml/output/failure', 'w').write('the command was told to fail')\n"
        "    sys.exit(3)\n").encode())

    def run(args):
        job = unique("entry")
        sm.create_training_job(
            TrainingJobName=job, RoleArn=ROLE,
            AlgorithmSpecification={"TrainingImage": PYTORCH, "TrainingInputMode": "File",
                                    "ContainerEntrypoint": ["/bin/bash"],
                                    "ContainerArguments": ["-c", f"cd /opt/ml/input/data/code && python3 train.py {args}"]},
            InputDataConfig=[channel("code", f"s3://{data_bucket}/{name}/code/", "text/x-python")],
            OutputDataConfig={"S3OutputPath": f"s3://{data_bucket}/{job}"},
            ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
            StoppingCondition={"MaxRuntimeInSeconds": 120})
        return wait_job(sm, job)

    desc = run("--alpha 2")
    assert desc["TrainingJobStatus"] == "Completed", desc.get("FailureReason")
    key = desc["ModelArtifacts"]["S3ModelArtifacts"].split("/", 3)[3]
    out = untar(s3.get_object(Bucket=data_bucket, Key=key)["Body"].read())["out.txt"].decode()
    assert out.startswith("--alpha 2 1."), out
    desc = run("fail")
    assert desc["TrainingJobStatus"] == "Failed"
    assert desc["FailureReason"] == "AlgorithmError: the command was told to fail", desc["FailureReason"]
    # Arguments for the image's own entry point: Basalt runs none.
    with pytest.raises(ClientError) as e:
        sm.create_training_job(
            TrainingJobName=unique("entry"), RoleArn=ROLE,
            AlgorithmSpecification={"TrainingImage": PYTORCH, "TrainingInputMode": "File",
                                    "ContainerArguments": ["--epochs", "2"]},
            OutputDataConfig={"S3OutputPath": f"s3://{data_bucket}/x"},
            ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
            StoppingCondition={"MaxRuntimeInSeconds": 120})
    assert e.value.response["Error"]["Code"] == "ValidationException"
    assert "ContainerArguments needs a ContainerEntrypoint" in e.value.response["Error"]["Message"]


def test_a_pipe_channel_that_cannot_send_its_data_fails_the_job(sm, s3, data_bucket):
    """A Gzip Pipe channel whose second object is not gzip: the algorithm sees the epoch end
    after the first object, and the job fails with the download's reason instead of
    completing on half its data."""
    import gzip
    data = rows(200, 9)
    name = unique("xgb-pipe-bad")
    s3.put_object(Bucket=data_bucket, Key=f"{name}/part-0.csv.gz", Body=gzip.compress(csv(data[:100]).encode()))
    s3.put_object(Bucket=data_bucket, Key=f"{name}/part-1.csv.gz", Body=csv(data[100:]).encode())
    job = unique("xgb-pipe-bad")
    train = channel("train", f"s3://{data_bucket}/{name}/")
    train["CompressionType"] = "Gzip"
    sm.create_training_job(
        TrainingJobName=job, RoleArn=ROLE,
        AlgorithmSpecification={"TrainingImage": XGBOOST, "TrainingInputMode": "Pipe"},
        HyperParameters={"objective": "binary:logistic", "num_round": "5"},
        InputDataConfig=[train],
        OutputDataConfig={"S3OutputPath": f"s3://{data_bucket}/{job}"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        StoppingCondition={"MaxRuntimeInSeconds": 120})
    desc = wait_job(sm, job)
    assert desc["TrainingJobStatus"] == "Failed", desc
    reason = desc["FailureReason"]
    assert reason.startswith("ClientError: Data download failed: the train channel: "), reason
    assert f"s3://{data_bucket}/{name}/part-1.csv.gz is not gzip" in reason, reason


def parquet(rs, names=None, strings=False):
    """Rows as a Parquet file, written by pyarrow in the SageMaker environment (the test venv
    has no Parquet writer); `strings` makes the last feature a text column."""
    names = names or ["label"] + [f"f{i}" for i in range(len(rs[0]) - 1)]
    script = (
        "import json, sys, io, pyarrow as pa, pyarrow.parquet as pq\n"
        "rows, names, strings = json.loads(sys.stdin.read())\n"
        "cols = [[r[i] for r in rows] for i in range(len(names))]\n"
        "if strings: cols[-1] = [str(v) for v in cols[-1]]\n"
        "t = pa.table({n: c for n, c in zip(names, cols)})\n"
        "b = io.BytesIO(); pq.write_table(t, b, row_group_size=64); sys.stdout.buffer.write(b.getvalue())\n")
    out = subprocess.run([str(ENV / "bin/python"), "-c", script], input=json.dumps([rs, names, strings]).encode(),
                         capture_output=True, check=True)
    return out.stdout


def test_builtin_xgboost_reads_parquet(sm, s3, data_bucket):
    """application/x-parquet channels (label in the first column, whatever the column names,
    several files and row groups): the same model as the same rows in CSV; a text column fails
    the job with a ClientError that names it."""
    data = rows(300, 8)
    name = unique("xgb-pq")
    s3.put_object(Bucket=data_bucket, Key=f"{name}/csv/part-0.csv", Body=csv(data))
    s3.put_object(Bucket=data_bucket, Key=f"{name}/pq/part-0.parquet", Body=parquet(data[:120]))
    s3.put_object(Bucket=data_bucket, Key=f"{name}/pq/part-1.parquet",
                  Body=parquet(data[120:], names=["y", "a", "b", "c", "d"]))
    s3.put_object(Bucket=data_bucket, Key=f"{name}/text/part-0.parquet", Body=parquet(data, strings=True))

    def trees(job_desc):
        job, desc = job_desc
        assert desc["TrainingJobStatus"] == "Completed", (job, desc.get("FailureReason"))
        key = desc["ModelArtifacts"]["S3ModelArtifacts"].split("/", 3)[3]
        m = json.loads(untar(s3.get_object(Bucket=data_bucket, Key=key)["Body"].read())["xgboost-model"])
        return m["learner"]["gradient_booster"]["model"]["trees"]

    assert trees(xgboost_on(sm, data_bucket, f"{name}/pq", "application/x-parquet")) == \
        trees(xgboost_on(sm, data_bucket, f"{name}/csv", "text/csv"))
    job, desc = xgboost_on(sm, data_bucket, f"{name}/text", "application/x-parquet")
    assert desc["TrainingJobStatus"] == "Failed"
    assert desc["FailureReason"].startswith("ClientError: the train channel's column 'f3' is not numeric"), \
        desc["FailureReason"]
    job, desc = xgboost_on(sm, data_bucket, f"{name}/csv", "application/x-parquet")
    assert desc["TrainingJobStatus"] == "Failed"
    assert desc["FailureReason"].startswith("ClientError: Loading parquet data failed"), desc["FailureReason"]


TRAIN_FROM_RECORDS = '''
import json, os, struct
MAGIC = 0xced7230a

def records(path):
    """MXNet RecordIO, as dmlc-core reads it: parts of a record split where the magic number
    occurred are joined with the magic number put back."""
    out, current = [], b""
    with open(path, "rb") as f:
        while True:
            head = f.read(8)
            if not head:
                return out
            magic, word = struct.unpack("<II", head)
            assert magic == MAGIC, hex(magic)
            flag, length = word >> 29, word & ((1 << 29) - 1)
            data = f.read(length)
            f.read((4 - length % 4) % 4)
            if flag in (2, 3):
                current += struct.pack("<I", MAGIC)
            current += data
            if flag in (0, 3):
                out.append(current.hex())
                current = b""

data = "/opt/ml/input/data"
seen = {c: records(os.path.join(data, f"{c}_0")) for c in ("manifest", "packed")}
with open(os.path.join(os.environ["SM_MODEL_DIR"], "records.json"), "w") as f:
    json.dump(seen, f)
'''


def test_augmented_manifests_gzip_and_recordio_wrapping_in_pipe_mode(sm, s3, data_bucket):
    """Developer Guide, "Augmented Manifest File Format for Pipe Mode Training": each line's
    AttributeNames in order, a `-ref` attribute's object and another attribute's value, each
    one RecordIO record with RecordWrapperType RecordIO; CompressionType Gzip objects arrive
    decompressed; RecordIO splits a record where its magic number occurs (dmlc-core)."""
    import gzip
    name = unique("augmented")
    magic = (0xced7230a).to_bytes(4, "little")
    image = b"JPEG" + magic + b"body"  # the magic number at offset 4: the record is cut there
    s3.put_object(Bucket=data_bucket, Key=f"{name}/img/1.jpg", Body=image)
    s3.put_object(Bucket=data_bucket, Key=f"{name}/img/2.jpg", Body=b"second image")
    lines = [
        {"note": "ignored", "source-ref": f"s3://{data_bucket}/{name}/img/1.jpg", "is-a-cat": 1},
        {"is-a-cat": 0, "source-ref": f"s3://{data_bucket}/{name}/img/2.jpg", "box": {"w": 3}},
    ]
    s3.put_object(Bucket=data_bucket, Key=f"{name}/train.manifest",
                  Body="\n".join(json.dumps(l) for l in lines) + "\n")
    s3.put_object(Bucket=data_bucket, Key=f"{name}/packed/a.gz", Body=gzip.compress(b"first,1\n"))
    s3.put_object(Bucket=data_bucket, Key=f"{name}/packed/b.gz", Body=gzip.compress(b"second,2\n"))
    s3.put_object(Bucket=data_bucket, Key=f"{name}/source/sourcedir.tar.gz",
                  Body=tar_gz({"train.py": TRAIN_FROM_RECORDS}))
    common = dict(
        RoleArn=ROLE,
        HyperParameters={"sagemaker_program": json.dumps("train.py"),
                         "sagemaker_submit_directory": json.dumps(f"s3://{data_bucket}/{name}/source/sourcedir.tar.gz")},
        OutputDataConfig={"S3OutputPath": f"s3://{data_bucket}/{name}/output"},
        ResourceConfig={"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 10},
        StoppingCondition={"MaxRuntimeInSeconds": 600},
    )
    manifest = {"ChannelName": "manifest", "RecordWrapperType": "RecordIO",
                "DataSource": {"S3DataSource": {
                    "S3DataType": "AugmentedManifestFile", "AttributeNames": ["source-ref", "is-a-cat"],
                    "S3Uri": f"s3://{data_bucket}/{name}/train.manifest"}}}
    packed = {"ChannelName": "packed", "RecordWrapperType": "RecordIO", "CompressionType": "Gzip",
              "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                              "S3Uri": f"s3://{data_bucket}/{name}/packed/"}}}
    # Augmented manifests are for Pipe mode only, and need their attribute names.
    for mode, channel in (("File", manifest),
                          ("Pipe", {**manifest, "DataSource": {"S3DataSource": {
                              k: v for k, v in manifest["DataSource"]["S3DataSource"].items()
                              if k != "AttributeNames"}}})):
        with pytest.raises(ClientError) as e:
            sm.create_training_job(TrainingJobName=unique("bad"), InputDataConfig=[channel],
                                   AlgorithmSpecification={"TrainingImage": PYTORCH, "TrainingInputMode": mode},
                                   **common)
        assert e.value.response["Error"]["Code"] == "ValidationException"

    sm.create_training_job(TrainingJobName=name, InputDataConfig=[manifest, packed],
                           AlgorithmSpecification={"TrainingImage": PYTORCH, "TrainingInputMode": "Pipe"},
                           **common)
    desc = wait_job(sm, name)
    assert desc["TrainingJobStatus"] == "Completed", desc.get("FailureReason")
    model = s3.get_object(Bucket=data_bucket, Key=desc["ModelArtifacts"]["S3ModelArtifacts"].split("/", 3)[3])
    seen = {c: [bytes.fromhex(r) for r in rs]
            for c, rs in json.loads(untar(model["Body"].read())["records.json"]).items()}
    assert seen["manifest"] == [image, b"1", b"second image", b"0"]
    assert seen["packed"] == [b"first,1\n", b"second,2\n"]

    # A line without a listed attribute fails the job with the line's number.
    bad = unique("augmented-bad")
    s3.put_object(Bucket=data_bucket, Key=f"{name}/bad.manifest",
                  Body=json.dumps(lines[0]) + "\n" + json.dumps({"source-ref": lines[1]["source-ref"]}) + "\n")
    sm.create_training_job(TrainingJobName=bad, InputDataConfig=[{**manifest, "DataSource": {"S3DataSource": {
                               **manifest["DataSource"]["S3DataSource"], "S3Uri": f"s3://{data_bucket}/{name}/bad.manifest"}}}],
                           AlgorithmSpecification={"TrainingImage": PYTORCH, "TrainingInputMode": "Pipe"},
                           **common)
    desc = wait_job(sm, bad)
    assert desc["TrainingJobStatus"] == "Failed"
    assert "line 2" in desc["FailureReason"] and "is-a-cat" in desc["FailureReason"], desc["FailureReason"]


def test_a_failing_script_reports_its_failure_file(sm, s3, data_bucket):
    desc = wait_job(sm, script_job(sm, s3, data_bucket, TRAIN_FAILS))
    assert desc["TrainingJobStatus"] == "Failed"
    assert desc["FailureReason"] == "AlgorithmError: ValueError: the labels are all zero"


def test_stop_and_max_runtime_end_a_running_job(sm, s3, data_bucket):
    name = script_job(sm, s3, data_bucket, TRAIN_SLEEPS)
    deadline = time.time() + 60
    while sm.describe_training_job(TrainingJobName=name)["SecondaryStatus"] != "Training" and time.time() < deadline:
        time.sleep(0.5)
    sm.stop_training_job(TrainingJobName=name)
    assert sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] in ("Stopping", "Stopped")
    desc = wait_job(sm, name, timeout=60)
    assert (desc["TrainingJobStatus"], desc["SecondaryStatus"]) == ("Stopped", "Stopped")
    with pytest.raises(ClientError) as e:
        sm.stop_training_job(TrainingJobName=name)
    assert e.value.response["Error"]["Code"] == "ValidationException"
    timed = wait_job(sm, script_job(sm, s3, data_bucket, TRAIN_SLEEPS, max_runtime=2), timeout=60)
    assert (timed["TrainingJobStatus"], timed["SecondaryStatus"]) == ("Stopped", "MaxRuntimeExceeded")


def test_a_job_sees_the_training_toolkits_contract_and_not_basalts_data(sm, s3, data_bucket, server):
    data_dir = str(getattr(server, "data_dir", "") or "/nonexistent")
    name = script_job(sm, s3, data_bucket, TRAIN_PROBES, {"data-dir": json.dumps(data_dir)})
    desc = wait_job(sm, name)
    assert desc["TrainingJobStatus"] == "Completed", desc.get("FailureReason")
    bucket, key = desc["ModelArtifacts"]["S3ModelArtifacts"][5:].split("/", 1)
    probe = json.loads(untar(s3.get_object(Bucket=bucket, Key=key)["Body"].read())["probe.json"])
    assert probe["hps"] == {"epochs": 3, "data-dir": data_dir}
    assert probe["epochs"] == "3"
    assert probe["channel"] == ["a.csv"]
    # The data dir is on this host's /tmp, visible to the job but for Landlock.
    if getattr(server, "data_dir", None):
        health = json.loads(urllib.request.urlopen(server.endpoint + "/_basalt/health").read())
        if health["lambda"]["isolation"].startswith("landlock"):
            assert probe["data_dir"] == "denied", probe


def test_errors_are_sagemakers(sm, smr):
    with pytest.raises(ClientError) as e:
        smr.invoke_endpoint(EndpointName="no-such-endpoint", Body=b"1")
    assert e.value.response["Error"]["Code"] == "ValidationError"
    assert "no-such-endpoint" in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as e:
        sm.describe_model(ModelName="no-such-model")
    assert e.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError) as e:
        sm.create_training_job(
            TrainingJobName=unique("bad"), RoleArn=ROLE,
            AlgorithmSpecification={"TrainingImage": "1.dkr.ecr.us-east-1.amazonaws.com/mine:1", "TrainingInputMode": "File"},
            OutputDataConfig={"S3OutputPath": "s3://b/o"},
            ResourceConfig={"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 10},
            StoppingCondition={"MaxRuntimeInSeconds": 60})
    assert e.value.response["Error"]["Code"] == "ValidationException"
    name = unique("m")
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": XGBOOST})
    with pytest.raises(ClientError) as e:
        sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": XGBOOST})
    assert "Cannot create already existing model" in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as e:
        sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[
            {"VariantName": "v", "ModelName": name, "ServerlessConfig": {"MemorySizeInMB": 1500, "MaxConcurrency": 1}}])
    assert e.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError) as e:
        sm.create_endpoint(EndpointName=name, EndpointConfigName="no-such-config")
    assert "Could not find endpoint configuration" in e.value.response["Error"]["Message"]
    sm.delete_model(ModelName=name)
    assert all(m["ModelName"] != name for m in sm.list_models(NameContains=name)["Models"])


def test_batch_transform_writes_one_answer_per_line_in_order(sm, smr, s3, data_bucket, xgb_job):
    name, desc = xgb_job
    model = unique("xgb-batch-model")
    sm.create_model(ModelName=model, ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": XGBOOST, "ModelDataUrl": desc["ModelArtifacts"]["S3ModelArtifacts"]})
    a, b = [r[1:] for r in rows(40, 5)], [r[1:] for r in rows(7, 6)]
    s3.put_object(Bucket=data_bucket, Key="batch/in/a.csv", Body=csv(a))
    s3.put_object(Bucket=data_bucket, Key="batch/in/sub/b.csv", Body=csv(b))
    outputs = {}
    for strategy in ("MultiRecord", "SingleRecord"):
        job = unique("transform")
        sm.create_transform_job(
            TransformJobName=job, ModelName=model, BatchStrategy=strategy, MaxPayloadInMB=1,
            TransformInput={"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{data_bucket}/batch/in/"}},
                            "ContentType": "text/csv", "SplitType": "Line"},
            TransformOutput={"S3OutputPath": f"s3://{data_bucket}/batch/{strategy}/", "AssembleWith": "Line"},
            TransformResources={"InstanceType": "ml.m5.xlarge", "InstanceCount": 1})
        sm.get_waiter("transform_job_completed_or_stopped").wait(
            TransformJobName=job, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
        d = sm.describe_transform_job(TransformJobName=job)
        assert d["TransformJobStatus"] == "Completed", d.get("FailureReason")
        assert d["TransformStartTime"] <= d["TransformEndTime"]
        read = lambda k: s3.get_object(Bucket=data_bucket, Key=f"batch/{strategy}/{k}")["Body"].read().decode()
        outputs[strategy] = (read("a.csv.out"), read("sub/b.csv.out"))
    multi, single = outputs["MultiRecord"], outputs["SingleRecord"]
    assert multi == single
    assert len(multi[0].splitlines()) == 40 and len(multi[1].splitlines()) == 7
    # The same scores as the model gives row by row.
    endpoint = deploy(sm, unique("xgb-cmp"), XGBOOST, desc["ModelArtifacts"]["S3ModelArtifacts"])
    realtime = smr.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=csv(a))["Body"].read().decode()
    assert [float(x) for x in multi[0].split()] == [float(x) for x in realtime.split(",")]
    listed = sm.list_transform_jobs(NameContains="transform", StatusEquals="Completed", SortBy="CreationTime")
    assert len(listed["TransformJobSummaries"]) >= 2


def test_application_autoscaling_keeps_targets_and_policies(make_client):
    aas = make_client("application-autoscaling")
    rid = f"endpoint/{unique('ep')}/variant/AllTraffic"
    dim = "sagemaker:variant:DesiredInstanceCount"
    arn = aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=rid, ScalableDimension=dim,
                                       MinCapacity=1, MaxCapacity=4)["ScalableTargetARN"]
    assert arn.startswith("arn:aws:application-autoscaling:us-east-1:000000000000:scalable-target/")
    # Registering again updates the capacities, keeping the target.
    assert aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=rid, ScalableDimension=dim,
                                        MaxCapacity=6)["ScalableTargetARN"] == arn
    target = aas.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=[rid])["ScalableTargets"][0]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 6)
    policy = {"TargetValue": 70.0, "PredefinedMetricSpecification": {
        "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}}
    parn = aas.put_scaling_policy(PolicyName="p", ServiceNamespace="sagemaker", ResourceId=rid, ScalableDimension=dim,
                                  PolicyType="TargetTrackingScaling",
                                  TargetTrackingScalingPolicyConfiguration=policy)["PolicyARN"]
    assert ":scalingPolicy:" in parn and parn.endswith(":policyName/p")
    got = aas.describe_scaling_policies(ServiceNamespace="sagemaker", ResourceId=rid)["ScalingPolicies"]
    assert [(p["PolicyName"], p["TargetTrackingScalingPolicyConfiguration"]["TargetValue"]) for p in got] == [("p", 70.0)]
    with pytest.raises(ClientError) as e:
        aas.put_scaling_policy(PolicyName="p", ServiceNamespace="sagemaker", ResourceId=rid + "x",
                               ScalableDimension=dim, PolicyType="TargetTrackingScaling",
                               TargetTrackingScalingPolicyConfiguration=policy)
    assert e.value.response["Error"]["Code"] == "ObjectNotFoundException"
    with pytest.raises(ClientError) as e:
        aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId="endpoint/x", ScalableDimension=dim,
                                     MinCapacity=1, MaxCapacity=2)
    assert e.value.response["Error"]["Code"] == "ValidationException"
    # Deregistering the target takes its policies with it.
    aas.deregister_scalable_target(ServiceNamespace="sagemaker", ResourceId=rid, ScalableDimension=dim)
    assert aas.describe_scaling_policies(ServiceNamespace="sagemaker", ResourceId=rid)["ScalingPolicies"] == []
    with pytest.raises(ClientError) as e:
        aas.deregister_scalable_target(ServiceNamespace="sagemaker", ResourceId=rid, ScalableDimension=dim)
    assert e.value.response["Error"]["Code"] == "ObjectNotFoundException"


def test_update_endpoint_weights_and_capacities(sm, smr, xgb_job):
    _, desc = xgb_job
    endpoint = deploy(sm, unique("xgb-scale"), XGBOOST, desc["ModelArtifacts"]["S3ModelArtifacts"])
    sm.update_endpoint_weights_and_capacities(EndpointName=endpoint, DesiredWeightsAndCapacities=[
        {"VariantName": "AllTraffic", "DesiredWeight": 2.0, "DesiredInstanceCount": 3}])
    assert sm.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] in ("Updating", "InService")
    sm.get_waiter("endpoint_in_service").wait(EndpointName=endpoint, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    variant = sm.describe_endpoint(EndpointName=endpoint)["ProductionVariants"][0]
    assert (variant["CurrentWeight"], variant["CurrentInstanceCount"]) == (2.0, 3)
    body = csv([r[1:] for r in rows(3, 9)])
    assert len(smr.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=body)["Body"].read().split(b",")) == 3
    with pytest.raises(ClientError) as e:
        sm.update_endpoint_weights_and_capacities(EndpointName=endpoint, DesiredWeightsAndCapacities=[
            {"VariantName": "nope", "DesiredWeight": 1.0}])
    assert e.value.response["Error"]["Code"] == "ValidationException"
    sm.delete_endpoint(EndpointName=endpoint)


def test_model_registry_versions_approves_and_deploys_a_package(sm, smr, xgb_job):
    _, desc = xgb_job
    group = unique("fraud-models")
    garn = sm.create_model_package_group(ModelPackageGroupName=group,
                                         ModelPackageGroupDescription="fraud scorers")["ModelPackageGroupArn"]
    assert garn.endswith(f":model-package-group/{group.lower()}")
    assert sm.describe_model_package_group(ModelPackageGroupName=group)["ModelPackageGroupStatus"] == "Completed"
    spec = {"Containers": [{"Image": XGBOOST, "ModelDataUrl": desc["ModelArtifacts"]["S3ModelArtifacts"]}],
            "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]}
    arns = [sm.create_model_package(ModelPackageGroupName=group, InferenceSpecification=spec,
                                    ModelPackageDescription=f"v{i}")["ModelPackageArn"] for i in (1, 2)]
    assert arns[1].endswith(f":model-package/{group.lower()}/2")
    pkg = sm.describe_model_package(ModelPackageName=arns[1])
    assert (pkg["ModelPackageVersion"], pkg["ModelApprovalStatus"], pkg["ModelPackageStatus"]) == \
        (2, "PendingManualApproval", "Completed")
    sm.update_model_package(ModelPackageArn=arns[1], ModelApprovalStatus="Approved", ApprovalDescription="ok")
    approved = sm.list_model_packages(ModelPackageGroupName=group, ModelApprovalStatus="Approved",
                                      SortBy="CreationTime", SortOrder="Descending")["ModelPackageSummaryList"]
    assert [p["ModelPackageVersion"] for p in approved] == [2]
    # A model from the package serves the package's container.
    model = unique("from-package")
    sm.create_model(ModelName=model, ExecutionRoleArn=ROLE, Containers=[{"ModelPackageName": arns[1]}])
    sm.create_endpoint_config(EndpointConfigName=model, ProductionVariants=[
        {"VariantName": "v", "ModelName": model, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName=model, EndpointConfigName=model)
    sm.get_waiter("endpoint_in_service").wait(EndpointName=model, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    body = csv([r[1:] for r in rows(2, 4)])
    assert len(smr.invoke_endpoint(EndpointName=model, ContentType="text/csv", Body=body)["Body"].read().split(b",")) == 2
    with pytest.raises(ClientError) as e:
        sm.delete_model_package_group(ModelPackageGroupName=group)
    assert e.value.response["Error"]["Code"] == "ConflictException"
    for arn in arns:
        sm.delete_model_package(ModelPackageName=arn)
    sm.delete_model_package_group(ModelPackageGroupName=group)
    with pytest.raises(ClientError) as e:
        sm.describe_model_package_group(ModelPackageGroupName=group)
    assert e.value.response["Error"]["Code"] == "ValidationException"
