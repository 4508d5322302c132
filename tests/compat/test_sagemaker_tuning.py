"""Hyperparameter tuning jobs (API Reference: CreateHyperParameterTuningJob,
DescribeHyperParameterTuningJob, ListTrainingJobsForHyperParameterTuningJob,
StopHyperParameterTuningJob; Developer Guide: "Automatic model tuning") over the built-in
XGBoost algorithm: real training jobs named `{tuning job}-{NNN}-{hash}` with the static and the
tuned hyperparameters, no more at once than MaxParallelTrainingJobs, the objective read from
each job's FinalMetricDataList, BestTrainingJob, the counters, Grid over categorical values,
Bayesian, and Stop.
"""
from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError

from conftest import unique
from test_sagemaker import ENV, ROLE, XGBOOST, channel, csv, rows, sm  # noqa: F401 (sm: fixture)

pytestmark = pytest.mark.skipif(not (ENV / ".installed").exists(),
                                reason=f"the SageMaker environment is not installed ({ENV}): run basalt runtimes pull")


@pytest.fixture(scope="module")
def data(s3):
    bucket = unique("sm-tune").lower()
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="train/part-0.csv", Body=csv(rows(300, 1)))
    s3.put_object(Bucket=bucket, Key="validation/part-0.csv", Body=csv(rows(100, 2)))
    return bucket


def definition(bucket, static=None):
    return {
        "StaticHyperParameters": static or {"objective": "binary:logistic", "num_round": "10", "eval_metric": "auc"},
        "AlgorithmSpecification": {"TrainingImage": XGBOOST, "TrainingInputMode": "File"},
        "RoleArn": ROLE,
        "InputDataConfig": [channel("train", f"s3://{bucket}/train/"), channel("validation", f"s3://{bucket}/validation/")],
        "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/out"},
        "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 300},
    }


def ended(sm, name, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        d = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
        if d["HyperParameterTuningJobStatus"] in ("Completed", "Failed", "Stopped"):
            return d
        time.sleep(0.5)
    raise AssertionError(f"{name} still {d['HyperParameterTuningJobStatus']}")


def test_random_search_runs_real_training_jobs_and_keeps_the_best(sm, data):
    name = unique("tune")[:32]
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name,
        HyperParameterTuningJobConfig={
            "Strategy": "Random", "RandomSeed": 3,
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "validation:auc"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 4, "MaxParallelTrainingJobs": 2},
            "ParameterRanges": {
                "ContinuousParameterRanges": [{"Name": "eta", "MinValue": "0.05", "MaxValue": "0.5",
                                               "ScalingType": "Logarithmic"}],
                "IntegerParameterRanges": [{"Name": "max_depth", "MinValue": "1", "MaxValue": "6"}]},
            "TrainingJobEarlyStoppingType": "Off"},
        TrainingJobDefinition=definition(data))
    # Never more than two training jobs at once.
    peak = 0
    deadline = time.time() + 120
    while time.time() < deadline:
        d = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
        peak = max(peak, d["TrainingJobStatusCounters"]["InProgress"])
        if d["HyperParameterTuningJobStatus"] != "InProgress":
            break
        time.sleep(0.2)
    assert d["HyperParameterTuningJobStatus"] == "Completed", d.get("FailureReason")
    assert 1 <= peak <= 2
    assert d["TrainingJobStatusCounters"]["Completed"] == 4
    assert d["ObjectiveStatusCounters"] == {"Succeeded": 4, "Pending": 0, "Failed": 0}

    jobs = sm.list_training_jobs_for_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name, SortBy="FinalObjectiveMetricValue", SortOrder="Descending")["TrainingJobSummaries"]
    assert len(jobs) == 4
    values = [j["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for j in jobs]
    assert values == sorted(values, reverse=True)
    best = d["BestTrainingJob"]
    assert best["TrainingJobName"] == jobs[0]["TrainingJobName"]
    assert best["FinalHyperParameterTuningJobObjectiveMetric"] == {
        "Type": "Maximize", "MetricName": "validation:auc", "Value": values[0]}
    for j in jobs:
        assert j["TrainingJobName"].startswith(f"{name}-0") and j["TuningJobName"] == name
        tuned = j["TunedHyperParameters"]
        assert 0.05 <= float(tuned["eta"]) <= 0.5 and tuned["max_depth"] in {"1", "2", "3", "4", "5", "6"}
        # A real training job, with the static and the tuned hyperparameters, and its own AUC.
        t = sm.describe_training_job(TrainingJobName=j["TrainingJobName"])
        assert t["HyperParameters"]["eta"] == tuned["eta"] and t["HyperParameters"]["num_round"] == "10"
        assert t["TuningJobArn"] == d["HyperParameterTuningJobArn"]
        auc = [m["Value"] for m in t["FinalMetricDataList"] if m["MetricName"] == "validation:auc"]
        assert auc == [j["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]]
    listed = sm.list_hyper_parameter_tuning_jobs(NameContains=name)["HyperParameterTuningJobSummaries"]
    assert [(x["HyperParameterTuningJobName"], x["Strategy"]) for x in listed] == [(name, "Random")]


def test_grid_tries_every_combination_and_bayesian_proposes_within_ranges(sm, data):
    grid = unique("grid")[:32]
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=grid,
        HyperParameterTuningJobConfig={
            "Strategy": "Grid",
            "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": "validation:error"},
            "ResourceLimits": {"MaxParallelTrainingJobs": 3},
            "ParameterRanges": {"CategoricalParameterRanges": [
                {"Name": "max_depth", "Values": ["1", "3"]}, {"Name": "eta", "Values": ["0.1", "0.3"]}]}},
        TrainingJobDefinition=definition(data, {"objective": "binary:logistic", "num_round": "5",
                                                "eval_metric": "error"}))
    d = ended(sm, grid)
    assert d["HyperParameterTuningJobStatus"] == "Completed", d.get("FailureReason")
    jobs = sm.list_training_jobs_for_hyper_parameter_tuning_job(HyperParameterTuningJobName=grid)["TrainingJobSummaries"]
    assert sorted((j["TunedHyperParameters"]["max_depth"], j["TunedHyperParameters"]["eta"]) for j in jobs) == [
        ("1", "0.1"), ("1", "0.3"), ("3", "0.1"), ("3", "0.3")]
    errors = [j["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for j in jobs]
    assert d["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == min(errors)

    bayes = unique("bayes")[:32]
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=bayes,
        HyperParameterTuningJobConfig={
            "Strategy": "Bayesian",
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "validation:auc"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 5, "MaxParallelTrainingJobs": 1},
            "ParameterRanges": {"ContinuousParameterRanges": [{"Name": "eta", "MinValue": "0.01", "MaxValue": "1"}]}},
        TrainingJobDefinition=definition(data))
    d = ended(sm, bayes)
    assert d["HyperParameterTuningJobStatus"] == "Completed", d.get("FailureReason")
    jobs = sm.list_training_jobs_for_hyper_parameter_tuning_job(HyperParameterTuningJobName=bayes)["TrainingJobSummaries"]
    etas = [float(j["TunedHyperParameters"]["eta"]) for j in jobs]
    assert len(etas) == 5 and all(0.01 <= e <= 1 for e in etas) and len(set(etas)) == 5


def test_stop_and_what_is_refused(sm, data):
    name = unique("stop")[:32]
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name,
        HyperParameterTuningJobConfig={
            "Strategy": "Random",
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "validation:auc"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 50, "MaxParallelTrainingJobs": 1},
            "ParameterRanges": {"IntegerParameterRanges": [{"Name": "max_depth", "MinValue": "1", "MaxValue": "6"}]}},
        TrainingJobDefinition=definition(data))
    time.sleep(1)
    sm.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    d = ended(sm, name)
    assert d["HyperParameterTuningJobStatus"] == "Stopped"
    assert sum(d["TrainingJobStatusCounters"].values()) < 50
    assert d["TrainingJobStatusCounters"]["InProgress"] == 0

    def refused(**kw):
        with pytest.raises(ClientError) as e:
            sm.create_hyper_parameter_tuning_job(HyperParameterTuningJobName=unique("bad")[:32], **kw)
        return e.value.response["Error"]["Code"], e.value.response["Error"]["Message"]

    # Hyperband stops jobs itself; it does not take early stopping on top.
    config = {"Strategy": "Hyperband", "ResourceLimits": {"MaxParallelTrainingJobs": 1},
              "TrainingJobEarlyStoppingType": "Auto",
              "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "validation:auc"}}
    c, m = refused(HyperParameterTuningJobConfig=config, TrainingJobDefinition=definition(data))
    assert c == "ValidationException" and "Hyperband" in m
    config = {"Strategy": "Grid", "ResourceLimits": {"MaxParallelTrainingJobs": 1},
              "ParameterRanges": {"IntegerParameterRanges": [{"Name": "max_depth", "MinValue": "1", "MaxValue": "6"}]}}
    c, m = refused(HyperParameterTuningJobConfig=config, TrainingJobDefinition=definition(data))
    assert c == "ValidationException" and "Categorical" in m
    with pytest.raises(ClientError) as e:
        sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=unique("nope")[:32])
    assert e.value.response["Error"]["Code"] == "ResourceNotFound"


EPOCHS_PY = """
import json, os, time
hps = json.loads(os.environ["SM_HPS"])
good = str(hps["quality"]).startswith("good")
for epoch in range(12):
    loss = 1.0 / (epoch + 1) if good else 5.0
    print(f"epoch {epoch} loss: {loss:.4f}", flush=True)
    time.sleep(0.4)
open(os.path.join(os.environ["SM_MODEL_DIR"], "model.txt"), "w").write("m")
"""


def script_definition(s3, data, name, source):
    import json
    from test_sagemaker import PYTORCH, tar_gz
    s3.put_object(Bucket=data, Key=f"{name}/sourcedir.tar.gz", Body=tar_gz({"train.py": source}))
    return {
        "StaticHyperParameters": {"sagemaker_program": json.dumps("train.py"),
                                  "sagemaker_submit_directory": json.dumps(f"s3://{data}/{name}/sourcedir.tar.gz")},
        "AlgorithmSpecification": {"TrainingImage": PYTORCH, "TrainingInputMode": "File",
                                   "MetricDefinitions": [{"Name": "loss", "Regex": "loss: ([0-9.]+)"}]},
        "RoleArn": ROLE,
        "InputDataConfig": [channel("train", f"s3://{data}/train/")],
        "OutputDataConfig": {"S3OutputPath": f"s3://{data}/{name}/out"},
        "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 120},
    }


def epochs_logged(make_client, job):
    events = make_client("logs").filter_log_events(logGroupName="/aws/sagemaker/TrainingJobs",
                                                   logStreamNamePrefix=f"{job}/")["events"]
    return len([e for e in events if e["message"].startswith("epoch ")])


LR_PY = """
import json, os, time
lr = float(json.loads(os.environ["SM_HPS"])["lr"])
for epoch in range(12):
    print(f"epoch {epoch} loss: {1.0 / (epoch + 1) + 5 * lr:.4f}", flush=True)
    time.sleep(0.4)
"""


def test_hyperband_halves_the_jobs_at_each_rung(sm, s3, make_client, data):
    """Hyperband: random configurations stopped by successive halving at rungs of
    MinResource x 3^k epochs; a job that is not among the best third at a rung it reaches
    stops there. Every stopped job did worse than the best one, and stopped before its
    twelfth epoch."""
    name = unique("hband")[:32]
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name,
        HyperParameterTuningJobConfig={
            "Strategy": "Hyperband", "RandomSeed": 11,
            "StrategyConfig": {"HyperbandStrategyConfig": {"MinResource": 1, "MaxResource": 12}},
            "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": "loss"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 5, "MaxParallelTrainingJobs": 2},
            "ParameterRanges": {"ContinuousParameterRanges": [{"Name": "lr", "MinValue": "0", "MaxValue": "1"}]}},
        TrainingJobDefinition=script_definition(s3, data, name, LR_PY))
    d = ended(sm, name, timeout=240)
    assert d["HyperParameterTuningJobStatus"] == "Completed", d
    assert d["TrainingJobStatusCounters"]["Stopped"] >= 1, d["TrainingJobStatusCounters"]
    best = float(d["BestTrainingJob"]["TunedHyperParameters"]["lr"])
    jobs = sm.list_training_jobs_for_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)["TrainingJobSummaries"]
    for j in jobs:
        if j["TrainingJobStatus"] == "Stopped":
            assert float(j["TunedHyperParameters"]["lr"]) > best, j
            assert epochs_logged(make_client, j["TrainingJobName"]) < 12


def test_early_stopping_stops_jobs_worse_than_the_median(sm, s3, make_client, data):
    """TrainingJobEarlyStoppingType Auto: the median stopping rule. A running job whose
    objective after an epoch is worse than the median of the completed jobs' running
    averages up to that epoch is stopped; the three good jobs (Grid, in order) complete, the
    two bad ones that follow are stopped after a few of their twelve epochs."""
    name = unique("early")[:32]
    definition = script_definition(s3, data, name, EPOCHS_PY)
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name,
        HyperParameterTuningJobConfig={
            "Strategy": "Grid", "TrainingJobEarlyStoppingType": "Auto",
            "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": "loss"},
            # The three good jobs run together, the bad ones once they completed.
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 5, "MaxParallelTrainingJobs": 3},
            "ParameterRanges": {"CategoricalParameterRanges": [
                {"Name": "quality", "Values": ["good1", "good2", "good3", "bad1", "bad2"]}]}},
        TrainingJobDefinition=definition)
    d = ended(sm, name, timeout=240)
    assert d["HyperParameterTuningJobStatus"] == "Completed", d
    assert d["HyperParameterTuningJobConfig"]["TrainingJobEarlyStoppingType"] == "Auto"
    counters = d["TrainingJobStatusCounters"]
    assert (counters["Completed"], counters["Stopped"]) == (3, 2), counters
    assert d["BestTrainingJob"]["TunedHyperParameters"]["quality"].startswith("good")
    jobs = sm.list_training_jobs_for_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)["TrainingJobSummaries"]
    stopped = [j["TrainingJobName"] for j in jobs if j["TrainingJobStatus"] == "Stopped"]
    assert sorted(j["TunedHyperParameters"]["quality"] for j in jobs if j["TrainingJobStatus"] == "Stopped") == ["bad1", "bad2"]
    for job in stopped:
        assert 1 <= epochs_logged(make_client, job) < 12, job
