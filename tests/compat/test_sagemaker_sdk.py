"""The SageMaker Python SDK (2.x) against Basalt with only the endpoint changed: a script-mode
SKLearn estimator through fit -> deploy -> predict -> delete, and the built-in XGBoost
estimator through fit -> deploy -> predict. The one change besides the endpoint: the Session is
given its default bucket (the SDK finds the account for the bucket's default name on STS's
public endpoint, which AWS_ENDPOINT_URL does not override). Skipped unless the `sagemaker` package is
importable (it is not in the suite's requirements: it pulls in much more than boto3):

    python3 -m venv /tmp/smsdk && /tmp/smsdk/bin/pip install -r tests/compat/requirements.txt 'sagemaker>=2.230,<3'
    BASALT_BIN=target/release/basalt /tmp/smsdk/bin/python -m pytest tests/compat/test_sagemaker_sdk.py
"""
from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

sagemaker = pytest.importorskip("sagemaker")

ENV = Path(os.environ.get("BASALT_RUNTIME_DIR", Path.home() / ".cache/basalt/runtimes")) / "sagemaker"
pytestmark = pytest.mark.skipif(not (ENV / ".installed").exists(),
                                reason="the SageMaker environment is not installed: run basalt runtimes pull")

ROLE = "arn:aws:iam::000000000000:role/SageMakerRole"

TRAIN = '''
import argparse, os, joblib
import pandas as pd
from sklearn.linear_model import LogisticRegression

if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--C", type=float, default=1.0)
    p.add_argument("--model-dir", default=os.environ.get("SM_MODEL_DIR"))
    p.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN"))
    a = p.parse_args()
    df = pd.read_csv(os.path.join(a.train, "train.csv"), header=None)
    model = LogisticRegression(C=a.C).fit(df.iloc[:, 1:], df.iloc[:, 0])
    print(f"train accuracy: {model.score(df.iloc[:, 1:], df.iloc[:, 0]):.4f}")
    joblib.dump(model, os.path.join(a.model_dir, "model.joblib"))

def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))

def predict_fn(data, model):
    return model.predict_proba(data)[:, 1]
'''


def rows(n, seed):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        x = [rng.uniform(-2, 2) for _ in range(3)]
        out.append([1 if x[0] - x[1] > 0 else 0] + x)
    return out


@pytest.fixture(scope="module")
def session(endpoint, monkeypatch_module):
    import boto3
    for k, v in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
                 "AWS_ENDPOINT_URL": endpoint}.items():
        monkeypatch_module.setenv(k, v)
    # The SDK looks the account up (for its default bucket's name) on STS's public regional
    # endpoint, named explicitly, which AWS_ENDPOINT_URL does not override: name the bucket.
    return sagemaker.Session(boto_session=boto3.Session(region_name="us-east-1"),
                             default_bucket="sagemaker-sdk-tests")


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def test_sklearn_script_mode_fit_deploy_predict_delete(session, tmp_path):
    import numpy as np
    from sagemaker.sklearn import SKLearn

    data = rows(300, 1)
    (tmp_path / "train.csv").write_text("\n".join(",".join(str(v) for v in r) for r in data) + "\n")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "train.py").write_text(TRAIN)
    train = session.upload_data(str(tmp_path / "train.csv"), key_prefix="sdk-sklearn/train")
    est = SKLearn(entry_point="train.py", source_dir=str(tmp_path / "src"), framework_version="1.2-1",
                  instance_type="ml.m5.large", instance_count=1, role=ROLE, sagemaker_session=session,
                  hyperparameters={"C": 0.5})
    est.fit({"train": train}, logs=True)
    assert session.describe_training_job(est.latest_training_job.name)["TrainingJobStatus"] == "Completed"
    predictor = est.deploy(initial_instance_count=1, instance_type="ml.m5.large")
    try:
        probs = predictor.predict(np.array([[2.0, -2.0, 0.0], [-2.0, 2.0, 0.0]]))
        assert probs[0] > 0.9 and probs[1] < 0.1, probs
    finally:
        # The model first: delete_model finds it through the endpoint configuration, which
        # delete_endpoint deletes too (as on AWS).
        predictor.delete_model()
        predictor.delete_endpoint()


def test_builtin_xgboost_estimator_fit_deploy_predict(session, tmp_path):
    from sagemaker import image_uris
    from sagemaker.estimator import Estimator
    from sagemaker.inputs import TrainingInput
    from sagemaker.serializers import CSVSerializer

    data = rows(400, 2)
    (tmp_path / "train.csv").write_text("\n".join(",".join(str(v) for v in r) for r in data) + "\n")
    train = session.upload_data(str(tmp_path / "train.csv"), key_prefix="sdk-xgb/train")
    image = image_uris.retrieve("xgboost", "us-east-1", version="1.5-1")
    est = Estimator(image_uri=image, role=ROLE, instance_count=1, instance_type="ml.m5.large",
                    sagemaker_session=session, hyperparameters={"objective": "binary:logistic", "num_round": 20})
    est.fit({"train": TrainingInput(train, content_type="text/csv")}, logs=True)
    predictor = est.deploy(initial_instance_count=1, instance_type="ml.m5.large", serializer=CSVSerializer())
    try:
        out = predictor.predict([[2.0, -2.0, 0.0], [-2.0, 2.0, 0.0]]).decode()
        scores = [float(v) for v in out.replace("\n", ",").split(",") if v]
        assert scores[0] > 0.8 and scores[1] < 0.2, scores
    finally:
        predictor.delete_endpoint()
