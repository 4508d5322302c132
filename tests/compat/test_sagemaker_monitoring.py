"""Endpoint metrics, data capture and autoscaling that acts (SageMaker Developer Guide:
"Monitor Amazon SageMaker with Amazon CloudWatch", "Capture data from real-time endpoint",
"Automatic scaling of Amazon SageMaker models"; Application Auto Scaling: target tracking):
InvokeEndpoint's `AWS/SageMaker` metrics per EndpointName and
VariantName (Invocations, InvocationsPerInstance, ModelLatency, OverheadLatency, 4XX/5XX
errors) read through CloudWatch, and a target tracking policy on
SageMakerVariantInvocationsPerInstance that scales the variant out under load and back in
when idle, recorded as scaling activities; a serverless variant that scales to zero after an
idle period (BASALT_SAGEMAKER_SERVERLESS_IDLE_SECS), pays a cold start measured as
ModelSetupTime, and answers ModelNotReadyException to requests that come while it starts;
captured requests and answers as JSON lines under
`{destination}/{endpoint}/{variant}/yyyy/mm/dd/hh/`. The server shortens the metric window and the
evaluation period (BASALT_SAGEMAKER_METRICS_SECS, BASALT_AUTOSCALING_PERIOD_SECS).
"""
from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import pytest

from conftest import BasaltServer, make_client_factory, unique
from test_sagemaker import ENV, INFERENCE_PY, PYTORCH_INFERENCE, ROLE, XGBOOST, small_xgboost_model, tar_gz

pytestmark = pytest.mark.skipif(not (ENV / ".installed").exists(),
                                reason=f"the SageMaker environment is not installed ({ENV}): run basalt runtimes pull")


@pytest.fixture(scope="module")
def clients(shape_checker, tmp_path_factory):
    srv = BasaltServer(data_dir=str(tmp_path_factory.mktemp("scaling")), name="basalt-autoscaling",
                       env={"BASALT_SAGEMAKER_METRICS_SECS": "0.5", "BASALT_AUTOSCALING_PERIOD_SECS": "3",
                            "BASALT_SAGEMAKER_SERVERLESS_IDLE_SECS": "1.5",
                            # An alarm that stays in ALARM invokes its Auto Scaling actions
                            # again every 2 s here (once a minute on AWS).
                            "BASALT_CLOUDWATCH_EVALUATION_SECS": "0.5",
                            "BASALT_CLOUDWATCH_ACTION_REPEAT_SECS": "2"}).start()
    make = make_client_factory(shape_checker, srv.endpoint)
    yield {k: make(k) for k in ("sagemaker", "sagemaker-runtime", "s3", "application-autoscaling", "cloudwatch")}
    srv.stop()
    panics = srv.panics()
    srv.close()
    assert not panics, panics


@pytest.fixture(scope="module")
def model(clients):
    """A built-in XGBoost model: (its artifacts, the bucket)."""
    return small_xgboost_model(clients["sagemaker"], clients["s3"], "scale")


def deploy(sm, artifacts, **config):
    name = unique("scale-ep")
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": XGBOOST, "ModelDataUrl": artifacts})
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": name, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}],
        **config)
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    return name


@pytest.fixture(scope="module")
def endpoint(clients, model):
    return deploy(clients["sagemaker"], model[0])


def count(sm, name):
    v = sm.describe_endpoint(EndpointName=name)["ProductionVariants"][0]
    return v["DesiredInstanceCount"]


def test_invocations_are_measured_per_variant(clients, endpoint):
    smr, cw = clients["sagemaker-runtime"], clients["cloudwatch"]
    for _ in range(7):
        smr.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=b"0.5,1.0,-0.3,2.0\n")
    dims = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": "AllTraffic"}]
    now = datetime.now(timezone.utc)

    def stat(metric, statistic):
        points = cw.get_metric_statistics(Namespace="AWS/SageMaker", MetricName=metric, Dimensions=dims,
                                          StartTime=now - timedelta(minutes=5), EndTime=now + timedelta(minutes=5),
                                          Period=600, Statistics=[statistic])["Datapoints"]
        return points[0][statistic] if points else None

    deadline = time.time() + 15
    while stat("Invocations", "Sum") != 7:
        assert time.time() < deadline, stat("Invocations", "Sum")
        time.sleep(0.3)
    assert stat("InvocationsPerInstance", "Sum") == 7
    assert stat("Invocation4XXErrors", "Sum") == 0
    latency = stat("ModelLatency", "Average")
    assert latency is not None and 0 < latency < 1_000_000  # microseconds
    assert stat("OverheadLatency", "SampleCount") == 7
    metrics = cw.list_metrics(Namespace="AWS/SageMaker", Dimensions=dims)["Metrics"]
    assert {"Invocations", "InvocationsPerInstance", "ModelLatency", "OverheadLatency"} <= {m["MetricName"] for m in metrics}


def test_target_tracking_scales_the_variant_out_and_back_in(clients, endpoint):
    sm, smr, aas = clients["sagemaker"], clients["sagemaker-runtime"], clients["application-autoscaling"]
    resource = f"endpoint/{endpoint}/variant/AllTraffic"
    aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=resource,
                                 ScalableDimension="sagemaker:variant:DesiredInstanceCount", MinCapacity=1, MaxCapacity=3)
    aas.put_scaling_policy(
        PolicyName="invocations", ServiceNamespace="sagemaker", ResourceId=resource,
        ScalableDimension="sagemaker:variant:DesiredInstanceCount", PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 60.0,
            "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
            "ScaleOutCooldown": 0, "ScaleInCooldown": 0})
    # About 15 requests a second against a target of 60 a minute per instance: out to the maximum.
    deadline = time.time() + 30
    while count(sm, endpoint) < 3:
        assert time.time() < deadline, "no scale-out"
        smr.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=b"0.5,1.0,-0.3,2.0\n")
        time.sleep(0.05)
    sm.get_waiter("endpoint_in_service").wait(EndpointName=endpoint, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    # A trickle of requests, far below the target: back to the minimum. (Without any request
    # there is no data, and the variant stays as it is, as on AWS.)
    deadline = time.time() + 30
    while count(sm, endpoint) != 1:
        assert time.time() < deadline, "no scale-in"
        smr.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=b"0.5,1.0,-0.3,2.0\n")
        time.sleep(1.5)
    activities = aas.describe_scaling_activities(ServiceNamespace="sagemaker", ResourceId=resource)["ScalingActivities"]
    assert [a["Description"] for a in activities][:2] == ["Setting desired instance count to 1.",
                                                          "Setting desired instance count to 3."]
    assert all(a["StatusCode"] == "Successful" for a in activities)
    assert "scaled out from 1" in activities[1]["Cause"] and "scaled in from 3" in activities[0]["Cause"]
    # The endpoint answers throughout.
    assert smr.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=b"0.5,1.0,-0.3,2.0\n")["Body"].read()


def test_step_scaling_runs_when_its_alarm_fires(clients, model):
    sm, aas, cw = clients["sagemaker"], clients["application-autoscaling"], clients["cloudwatch"]
    name = deploy(sm, model[0])
    resource = f"endpoint/{name}/variant/AllTraffic"
    dim = "sagemaker:variant:DesiredInstanceCount"
    aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=resource, ScalableDimension=dim,
                                 MinCapacity=1, MaxCapacity=4)
    arn = aas.put_scaling_policy(
        PolicyName="backlog", ServiceNamespace="sagemaker", ResourceId=resource, ScalableDimension=dim,
        PolicyType="StepScaling", StepScalingPolicyConfiguration={
            "AdjustmentType": "ChangeInCapacity", "Cooldown": 0, "MetricAggregationType": "Average",
            "StepAdjustments": [{"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 10, "ScalingAdjustment": 1},
                                {"MetricIntervalLowerBound": 10, "ScalingAdjustment": 2}]})["PolicyARN"]
    alarm = unique("backlog")
    cw.put_metric_alarm(AlarmName=alarm, Namespace="Custom", MetricName="Backlog", Statistic="Average", Period=60,
                        EvaluationPeriods=1, Threshold=30, ComparisonOperator="GreaterThanThreshold",
                        AlarmActions=[arn])

    def fire(value):
        cw.set_alarm_state(AlarmName=alarm, StateValue="OK", StateReason="calm")
        cw.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="backlog",
                           StateReasonData=json.dumps({"version": "1.0", "recentDatapoints": [value], "threshold": 30.0}))

    def wait_for(n):
        deadline = time.time() + 30
        while count(sm, name) != n:
            assert time.time() < deadline, count(sm, name)
            time.sleep(0.3)
        sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})

    fire(42.0)  # 12 over the threshold: the second step, +2
    wait_for(3)
    fire(35.0)  # 5 over: the first step, +1
    wait_for(4)
    activities = aas.describe_scaling_activities(ServiceNamespace="sagemaker", ResourceId=resource)["ScalingActivities"]
    assert [a["Description"] for a in activities] == ["Setting desired instance count to 4.",
                                                      "Setting desired instance count to 3."]
    assert f"monitor alarm {alarm} in state ALARM triggered policy backlog" in activities[0]["Cause"]
    fire(80.0)  # at the maximum already: nothing more
    time.sleep(2)
    assert count(sm, name) == 4
    assert len(aas.describe_scaling_activities(ServiceNamespace="sagemaker", ResourceId=resource)["ScalingActivities"]) == 2
    history = cw.describe_alarm_history(AlarmName=alarm, HistoryItemType="Action")["AlarmHistoryItems"]
    assert history and all("Successfully executed action" in h["HistorySummary"] for h in history), history


def test_an_alarm_that_stays_in_alarm_keeps_stepping(clients, model):
    """CloudWatch User Guide, alarm actions: "For Auto Scaling actions, the alarm continues to
    invoke the action once per minute that the alarm remains in the new state": a step policy
    keeps adding capacity while the breach lasts, up to the maximum."""
    sm, aas, cw = clients["sagemaker"], clients["application-autoscaling"], clients["cloudwatch"]
    name = deploy(sm, model[0])
    resource = f"endpoint/{name}/variant/AllTraffic"
    dim = "sagemaker:variant:DesiredInstanceCount"
    aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=resource, ScalableDimension=dim,
                                 MinCapacity=1, MaxCapacity=3)
    arn = aas.put_scaling_policy(
        PolicyName="steady", ServiceNamespace="sagemaker", ResourceId=resource, ScalableDimension=dim,
        PolicyType="StepScaling", StepScalingPolicyConfiguration={
            "AdjustmentType": "ChangeInCapacity", "Cooldown": 0,
            "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]})["PolicyARN"]
    alarm, metric = unique("steady"), unique("Queue")
    cw.put_metric_alarm(AlarmName=alarm, Namespace="Custom", MetricName=metric, Statistic="Maximum", Period=60,
                        EvaluationPeriods=1, Threshold=30, ComparisonOperator="GreaterThanThreshold",
                        TreatMissingData="breaching", AlarmActions=[arn])
    deadline = time.time() + 40
    while count(sm, name) < 3:
        assert time.time() < deadline, count(sm, name)
        cw.put_metric_data(Namespace="Custom", MetricData=[{"MetricName": metric, "Value": 45.0}])
        time.sleep(0.5)
    # One transition into ALARM, and the policy ran once per step.
    states = [json.loads(h["HistoryData"])["newState"]["stateValue"] for h in
              cw.describe_alarm_history(AlarmName=alarm, HistoryItemType="StateUpdate")["AlarmHistoryItems"]]
    assert states == ["ALARM"], states
    steps = [a["Description"] for a in aas.describe_scaling_activities(
        ServiceNamespace="sagemaker", ResourceId=resource)["ScalingActivities"]]
    assert steps[:2] == ["Setting desired instance count to 3.", "Setting desired instance count to 2."], steps


def test_data_capture_writes_json_lines_per_hour(clients, model):
    sm, smr, s3 = clients["sagemaker"], clients["sagemaker-runtime"], clients["s3"]
    artifacts, bucket = model
    name = deploy(sm, artifacts, DataCaptureConfig={
        "EnableCapture": True, "InitialSamplingPercentage": 100, "DestinationS3Uri": f"s3://{bucket}/capture",
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"]}})
    assert sm.describe_endpoint(EndpointName=name)["DataCaptureConfig"]["CaptureStatus"] == "Started"
    sent = {}
    for row in ["0.5,1.0,-0.3,2.0", "-2.0,0.1,1.5,0.0", "1.0,1.0,1.0,1.0"]:
        out = smr.invoke_endpoint(EndpointName=name, ContentType="text/csv", Body=row.encode(), InferenceId=f"id-{row[:3]}")
        sent[row] = out["Body"].read().decode()
    prefix = f"capture/{name}/AllTraffic/"
    deadline = time.time() + 15
    records = []
    while len(records) < 3:
        assert time.time() < deadline, records
        time.sleep(0.3)
        records = []
        for obj in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
            parts = obj["Key"][len(prefix):].split("/")
            assert len(parts) == 5 and all(p.isdigit() for p in parts[:4]) and parts[4].endswith(".jsonl"), obj["Key"]
            body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read().decode()
            records += [json.loads(line) for line in body.splitlines()]
    got = {r["captureData"]["endpointInput"]["data"]: r for r in records}
    assert set(got) == set(sent)
    for row, answer in sent.items():
        r = got[row]
        assert r["captureData"]["endpointInput"] == {"observedContentType": "text/csv", "mode": "INPUT",
                                                      "data": row, "encoding": "CSV"}
        assert r["captureData"]["endpointOutput"]["data"] == answer
        assert r["eventMetadata"]["inferenceId"] == f"id-{row[:3]}" and r["eventVersion"] == "0"


# The script-mode model of test_sagemaker, whose model_fn takes a second (a model to load).
SLOW_START = INFERENCE_PY.replace("def model_fn(model_dir):\n", "def model_fn(model_dir):\n    import time\n    time.sleep(1)\n")


def test_a_serverless_variant_scales_to_zero_and_pays_a_cold_start(clients, model):
    import threading
    sm, smr, s3, cw = clients["sagemaker"], clients["sagemaker-runtime"], clients["s3"], clients["cloudwatch"]
    _, bucket = model
    s3.put_object(Bucket=bucket, Key="script/model.tar.gz",
                  Body=tar_gz({"model.json": json.dumps({"w": [0.5, -0.25], "b": 0.1}), "code/inference.py": SLOW_START}))
    name = unique("cold-ep")
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": PYTORCH_INFERENCE, "ModelDataUrl": f"s3://{bucket}/script/model.tar.gz",
        "Environment": {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code"}})
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": name, "ServerlessConfig": {"MemorySizeInMB": 1024, "MaxConcurrency": 2}}])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    body = json.dumps({"instances": [[0, 0]]})

    def invoke():
        return json.loads(smr.invoke_endpoint(EndpointName=name, ContentType="application/json", Body=body)["Body"].read())

    assert invoke()["predictions"] == pytest.approx([0.52497918747894], abs=1e-9)  # warm from the deployment
    time.sleep(3)  # idle past 1.5 s: scaled to zero
    outcomes = {}

    def first():
        t0 = time.time()
        outcomes["first"] = invoke()
        outcomes["cold_s"] = time.time() - t0

    t = threading.Thread(target=first)
    t.start()
    time.sleep(0.3)  # the first request is starting the variant's worker (its model_fn sleeps 1 s)
    try:
        invoke()
        outcomes["second"] = "answered"
    except smr.exceptions.ModelNotReadyException as e:
        outcomes["second"] = e.response["Error"]["Code"]
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    t.join()
    assert outcomes["first"]["predictions"] == pytest.approx([0.52497918747894], abs=1e-9)
    assert outcomes["second"] == "ModelNotReadyException", outcomes
    assert invoke()["predictions"], "warm again"
    dims = [{"Name": "EndpointName", "Value": name}, {"Name": "VariantName", "Value": "AllTraffic"}]
    now = datetime.now(timezone.utc)
    deadline = time.time() + 10
    while True:
        points = cw.get_metric_statistics(Namespace="AWS/SageMaker", MetricName="ModelSetupTime", Dimensions=dims,
                                          StartTime=now - timedelta(minutes=5), EndTime=now + timedelta(minutes=5),
                                          Period=600, Statistics=["SampleCount", "Maximum"])["Datapoints"]
        if points:
            break
        assert time.time() < deadline, "no ModelSetupTime"
        time.sleep(0.3)
    assert points[0]["SampleCount"] == 1
    assert 1e6 <= points[0]["Maximum"] <= outcomes["cold_s"] * 1e6


def test_a_shadow_variant_answers_a_sample_of_the_production_traffic(clients, model):
    """ShadowProductionVariants: the shadow gets a copy of the share of requests its weight
    gives relative to the production variant's; callers only ever see the production answer,
    and the shadow's invocations show in its own metrics."""
    sm, smr, cw = clients["sagemaker"], clients["sagemaker-runtime"], clients["cloudwatch"]
    name = unique("shadow-ep")
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": XGBOOST, "ModelDataUrl": model[0]})
    production = {"VariantName": "Prod", "ModelName": name, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1,
                  "InitialVariantWeight": 1.0}
    shadow = {**production, "VariantName": "Candidate", "InitialVariantWeight": 0.5}
    with pytest.raises(sm.exceptions.ClientError) as e:
        sm.create_endpoint_config(EndpointConfigName=unique("two-prod"), ProductionVariants=[
            production, {**production, "VariantName": "Other"}], ShadowProductionVariants=[shadow])
    assert e.value.response["Error"]["Code"] == "ValidationException"
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[production], ShadowProductionVariants=[shadow])
    assert sm.describe_endpoint_config(EndpointConfigName=name)["ShadowProductionVariants"][0]["VariantName"] == "Candidate"
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    desc = sm.describe_endpoint(EndpointName=name)
    assert [v["VariantName"] for v in desc["ProductionVariants"]] == ["Prod"]
    assert [v["VariantName"] for v in desc["ShadowProductionVariants"]] == ["Candidate"]
    for _ in range(200):
        resp = smr.invoke_endpoint(EndpointName=name, ContentType="text/csv", Body=b"0.5,1.0,-0.3,2.0\n")
        assert resp["InvokedProductionVariant"] == "Prod"
    with pytest.raises(smr.exceptions.ClientError) as e:
        smr.invoke_endpoint(EndpointName=name, TargetVariant="Candidate", ContentType="text/csv", Body=b"1,2,3,4\n")
    assert e.value.response["Error"]["Code"] == "ValidationError"
    now = datetime.now(timezone.utc)

    def invocations(variant):
        dims = [{"Name": "EndpointName", "Value": name}, {"Name": "VariantName", "Value": variant}]
        points = cw.get_metric_statistics(Namespace="AWS/SageMaker", MetricName="Invocations", Dimensions=dims,
                                          StartTime=now - timedelta(minutes=5), EndTime=now + timedelta(minutes=5),
                                          Period=600, Statistics=["Sum"])["Datapoints"]
        return points[0]["Sum"] if points else 0

    deadline = time.time() + 15
    while invocations("Prod") != 200:
        assert time.time() < deadline, invocations("Prod")
        time.sleep(0.3)
    time.sleep(1)  # the last copies land in the next window
    copied = invocations("Candidate")
    assert 60 <= copied <= 140, f"a weight of 0.5 copied {copied} of 200 requests"
    sm.delete_endpoint(EndpointName=name)
