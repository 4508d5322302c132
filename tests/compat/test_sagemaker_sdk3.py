"""The SageMaker Python SDK 3.x against Basalt with only the endpoint changed: ModelTrainer
runs a script-mode scikit-learn job (SDK 3 uploads its own `sm_drivers` channel and runs
`sm_train.sh` through AlgorithmSpecification.ContainerEntrypoint, `/bin/bash -c ...`), then
the trained model is deployed, invoked and deleted through the SDK's resource classes
(`sagemaker.core.resources`: Model, EndpointConfig, Endpoint). As in test_sagemaker_sdk.py, the
Session is given its default bucket; and SDK 3's check of the role through IAM is turned off
with its own switch (`SAGEMAKER_VALIDATE_ROLE=false`): Basalt serves no IAM. Skipped unless `sagemaker` 3.x is importable (it is not in
the suite's requirements: it pulls in much more than boto3):

    python3 -m venv /tmp/sm3 && /tmp/sm3/bin/pip install -r tests/compat/requirements.txt 'sagemaker>=3,<4'
    BASALT_BIN=target/release/basalt /tmp/sm3/bin/python -m pytest tests/compat/test_sagemaker_sdk3.py
"""
from __future__ import annotations

import json
import os
import random
import uuid
from pathlib import Path

import pytest

sagemaker = pytest.importorskip("sagemaker")
if not getattr(sagemaker, "__version__", "3").startswith("3") and not hasattr(sagemaker, "train"):
    pytest.skip("the sagemaker package is not 3.x", allow_module_level=True)
pytest.importorskip("sagemaker.train")

ENV = Path(os.environ.get("BASALT_RUNTIME_DIR", Path.home() / ".cache/basalt/runtimes")) / "sagemaker"
pytestmark = pytest.mark.skipif(not (ENV / ".installed").exists(),
                                reason="the SageMaker environment is not installed: run basalt runtimes pull")

ROLE = "arn:aws:iam::000000000000:role/SageMakerRole"
SKLEARN = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"

# Trains, and leaves its own copy as the model's inference code (code/inference.py).
TRAIN = '''
import argparse, os, shutil, joblib
import pandas as pd
from sklearn.linear_model import LogisticRegression


def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))


def predict_fn(data, model):
    return model.predict_proba(data)[:, 1].tolist()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--C", type=float, default=1.0)
    a = p.parse_args()
    model_dir, train = os.environ["SM_MODEL_DIR"], os.environ["SM_CHANNEL_TRAIN"]
    df = pd.read_csv(os.path.join(train, "train.csv"), header=None)
    model = LogisticRegression(C=a.C).fit(df.iloc[:, 1:], df.iloc[:, 0])
    print(f"train accuracy: {model.score(df.iloc[:, 1:], df.iloc[:, 0]):.4f} C={a.C}")
    joblib.dump(model, os.path.join(model_dir, "model.joblib"))
    os.makedirs(os.path.join(model_dir, "code"), exist_ok=True)
    shutil.copy(__file__, os.path.join(model_dir, "code", "inference.py"))
'''


@pytest.fixture(scope="module")
def boto(endpoint):
    import boto3
    mp = pytest.MonkeyPatch()
    # SDK 3 checks the role with IAM (SimulatePrincipalPolicy, GetRole), which Basalt does not
    # serve: its own switch turns that check off.
    for k, v in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
                 "AWS_ENDPOINT_URL": endpoint, "SAGEMAKER_VALIDATE_ROLE": "false"}.items():
        mp.setenv(k, v)
    yield boto3.Session(region_name="us-east-1")
    mp.undo()


def test_model_trainer_then_core_resources_deploy_predict_delete(boto, tmp_path):
    from sagemaker.core.helper.session_helper import Session
    from sagemaker.core.resources import Endpoint, EndpointConfig, Model
    from sagemaker.core.shapes import ContainerDefinition, ProductionVariant
    from sagemaker.core.training.configs import Compute, InputData, SourceCode
    from sagemaker.train import ModelTrainer

    session = Session(boto_session=boto, default_bucket="sagemaker-sdk3-tests")
    rng = random.Random(3)
    rows = []
    for _ in range(300):
        x = [rng.uniform(-2, 2) for _ in range(3)]
        rows.append([1 if x[0] - x[1] > 0 else 0] + x)
    (tmp_path / "train.csv").write_text("\n".join(",".join(str(v) for v in r) for r in rows) + "\n")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "train.py").write_text(TRAIN)
    train = session.upload_data(str(tmp_path / "train.csv"), key_prefix="sdk3/train")

    trainer = ModelTrainer(
        sagemaker_session=session, role=ROLE, training_image=SKLEARN, base_job_name="sdk3-sklearn",
        source_code=SourceCode(source_dir=str(tmp_path / "src"), entry_script="train.py"),
        compute=Compute(instance_type="ml.m5.large", instance_count=1),
        hyperparameters={"C": 0.5},
    )
    trainer.train(input_data_config=[InputData(channel_name="train", data_source=train)], wait=True, logs=False)
    job = trainer._latest_training_job
    job.refresh()
    assert job.training_job_status == "Completed", job.failure_reason
    spec = job.algorithm_specification
    assert spec.container_entrypoint == ["/bin/bash"], spec
    artifacts = job.model_artifacts.s3_model_artifacts

    name = f"sdk3-{uuid.uuid4().hex[:8]}"
    model = Model.create(model_name=name, execution_role_arn=ROLE, session=boto, region="us-east-1",
                         primary_container=ContainerDefinition(image=SKLEARN, model_data_url=artifacts,
                                                               environment={"SAGEMAKER_PROGRAM": "inference.py"}))
    config = EndpointConfig.create(endpoint_config_name=name, session=boto, region="us-east-1",
                                   production_variants=[ProductionVariant(
                                       variant_name="AllTraffic", model_name=name,
                                       instance_type="ml.m5.large", initial_instance_count=1)])
    ep = Endpoint.create(endpoint_name=name, endpoint_config_name=name, session=boto, region="us-east-1")
    try:
        ep.wait_for_status("InService")
        out = ep.invoke(body="2.0,-2.0,0.0\n-2.0,2.0,0.0", content_type="text/csv", accept="application/json")
        probs = json.loads(out.body.read())
        assert probs[0] > 0.9 and probs[1] < 0.1, probs
    finally:
        ep.delete()
        config.delete()
        model.delete()
