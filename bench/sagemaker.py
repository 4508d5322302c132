#!/usr/bin/env python3
"""SageMaker on Basalt: the built-in XGBoost algorithm and its real-time endpoint.

1. Training: the built-in XGBoost algorithm (CreateTrainingJob, the seed's fraud
   hyperparameters, 100 rounds) on N rows of synthetic card transactions (CSV, label first),
   timed from the job's Training status to its Uploading status, against xgboost's own
   Python training (xgboost.train, same data, same parameters) in the same environment.
2. Serving: the trained model on a real-time endpoint; InvokeEndpoint with one text/csv row,
   latency (p50, p99) and throughput at 1 and 16 connections from wrk (a C load generator;
   without it a Python thread pool, which measures the client more than the server), and
   the server's CPU time per request (from /proc).
3. Script mode: CreateEndpoint to InService for a model with an inference script (the
   Python worker's start and model_fn).

    python3 bench/sagemaker.py [--rows 100000] [--duration 10]

Needs a built binary (BASALT_BIN, default target/release/basalt), the SageMaker environment
(`basalt runtimes pull`) and boto3.
"""
import argparse
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).parent))
import peers  # noqa: E402  (the load generators)

REPO = Path(__file__).resolve().parent.parent
BIN = os.environ.get("BASALT_BIN", str(REPO / "target/release/basalt"))
ENV = Path(os.environ.get("BASALT_RUNTIME_DIR", Path.home() / ".cache/basalt/runtimes")) / "sagemaker"
XGBOOST = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.5-1"
PYTORCH = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.0.1-cpu-py310"
ROLE = "arn:aws:iam::000000000000:role/SageMakerRole"
PARAMS = {"objective": "binary:logistic", "num_round": "100", "max_depth": "5", "eta": "0.2",
          "subsample": "0.8", "colsample_bytree": "0.8", "scale_pos_weight": "50", "seed": "1"}


def fraud_rows(n, seed):
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        if rng.random() < 0.12:
            rows.append([1, round(rng.uniform(900, 3000), 2), rng.randint(5, 9), round(rng.uniform(200, 2000), 1),
                         round(rng.uniform(1, 60), 1), rng.randint(10, 30)])
        else:
            rows.append([0, round(rng.uniform(5, 300), 2), rng.randint(0, 4), round(rng.uniform(0, 30), 1),
                         round(rng.uniform(600, 86400), 1), rng.randint(0, 5)])
        # Noise, so that the trees have work to do.
        if rng.random() < 0.03:
            rows[-1][0] = 1 - rows[-1][0]
    return rows


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def xgboost_own_training(train_csv, val_csv):
    code = f"""
import time, numpy as np, xgboost as xgb
import pandas as pd
t0 = time.perf_counter()
tr = pd.read_csv({str(train_csv)!r}, header=None, dtype=np.float32).to_numpy()
va = pd.read_csv({str(val_csv)!r}, header=None, dtype=np.float32).to_numpy()
d, v = xgb.DMatrix(tr[:, 1:], label=tr[:, 0]), xgb.DMatrix(va[:, 1:], label=va[:, 0])
p = {json.dumps({k: v for k, v in PARAMS.items() if k != 'num_round'})}
p = {{k: (float(x) if '.' in x else int(x)) if x.replace('.', '').isdigit() else x for k, x in p.items()}}
t = time.perf_counter()
b = xgb.train(p, d, num_boost_round=100, evals=[(d, 'train'), (v, 'validation')], verbose_eval=False)
train = time.perf_counter() - t
b.save_model({str(train_csv.parent / 'own-model.json')!r})
print(train, time.perf_counter() - t0)
"""
    start = time.perf_counter()
    out = subprocess.run([str(ENV / "bin/python"), "-c", code], capture_output=True, text=True, check=True)
    script = time.perf_counter() - start
    train, total = out.stdout.split()
    return float(train), float(total), script


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--duration", type=int, default=10)
    args = ap.parse_args()
    if not (ENV / ".installed").exists():
        sys.exit(f"the SageMaker environment is not installed ({ENV}): run basalt runtimes pull")
    port = peers.free_port()
    data = tempfile.mkdtemp(prefix="basalt-bench-sm-")
    server = subprocess.Popen([BIN, "serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir", data],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint_url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(400):
            try:
                urllib.request.urlopen(f"{endpoint_url}/_basalt/health", timeout=1).read()
                break
            except OSError:
                time.sleep(0.05)
        cfg = Config(retries={"max_attempts": 1}, read_timeout=120)
        kw = dict(endpoint_url=endpoint_url, region_name="us-east-1", aws_access_key_id="test",
                  aws_secret_access_key="test", config=cfg)
        s3, sm, smr = (boto3.client(s, **kw) for s in ("s3", "sagemaker", "sagemaker-runtime"))
        s3.create_bucket(Bucket="bench")
        rows = fraud_rows(args.rows, 1)
        split = int(len(rows) * 0.8)
        tmp = Path(data) / "csv"
        tmp.mkdir()
        text = lambda rs: "\n".join(",".join(str(v) for v in r) for r in rs) + "\n"  # noqa: E731
        (tmp / "train.csv").write_text(text(rows[:split]))
        (tmp / "validation.csv").write_text(text(rows[split:]))
        s3.upload_file(str(tmp / "train.csv"), "bench", "train/train.csv")
        s3.upload_file(str(tmp / "validation.csv"), "bench", "validation/validation.csv")

        def channel(name):
            return {"ChannelName": name, "ContentType": "text/csv", "DataSource": {"S3DataSource": {
                "S3DataType": "S3Prefix", "S3Uri": f"s3://bench/{name}/"}}}

        sm.create_training_job(
            TrainingJobName="bench-xgb", RoleArn=ROLE, HyperParameters=PARAMS,
            AlgorithmSpecification={"TrainingImage": XGBOOST, "TrainingInputMode": "File"},
            InputDataConfig=[channel("train"), channel("validation")],
            OutputDataConfig={"S3OutputPath": "s3://bench/out"},
            ResourceConfig={"InstanceType": "ml.m5.2xlarge", "InstanceCount": 1, "VolumeSizeInGB": 10},
            StoppingCondition={"MaxRuntimeInSeconds": 3600})
        while (job := sm.describe_training_job(TrainingJobName="bench-xgb"))["TrainingJobStatus"] == "InProgress":
            time.sleep(0.5)
        assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
        tr = {t["Status"]: t for t in job["SecondaryStatusTransitions"]}
        basalt_train_s = tr["Uploading"]["StartTime"].timestamp() - tr["Training"]["StartTime"].timestamp()
        own_s, own_total_s, own_script_s = xgboost_own_training(tmp / "train.csv", tmp / "validation.csv")
        metrics = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}

        sm.create_model(ModelName="bench-xgb", ExecutionRoleArn=ROLE, PrimaryContainer={
            "Image": XGBOOST, "ModelDataUrl": job["ModelArtifacts"]["S3ModelArtifacts"]})
        sm.create_endpoint_config(EndpointConfigName="bench-xgb", ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": "bench-xgb", "InstanceType": "ml.c5.xlarge",
            "InitialInstanceCount": 1}])
        sm.create_endpoint(EndpointName="bench-xgb", EndpointConfigName="bench-xgb")
        sm.get_waiter("endpoint_in_service").wait(EndpointName="bench-xgb", WaiterConfig={"Delay": 0.2})
        row = "2500.0,7,1500.0,12.0,25"
        assert float(smr.invoke_endpoint(EndpointName="bench-xgb", ContentType="text/csv",
                                         Body=row)["Body"].read()) > 0.5
        load = peers.run_wrk if shutil.which("wrk") else peers.run_python
        headers = {"Content-Type": "text/csv",
                   "Authorization": "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/sagemaker/aws4_request, "
                                    "SignedHeaders=host, Signature=0"}
        url = f"{endpoint_url}/endpoints/bench-xgb/invocations"
        probe = urllib.request.Request(url, data=row.encode(), headers=headers, method="POST")
        try:
            answer = urllib.request.urlopen(probe, timeout=5).read()
        except urllib.error.HTTPError as e:
            sys.exit(f"the load generator's request fails: {e.code} {e.read()[:300]!r}")
        assert float(answer) > 0.5, answer
        serving = {}
        for conns in (1, 16):
            before = cpu_seconds(server.pid)
            r = load("POST", url, row.encode(), headers, conns, args.duration)
            used = cpu_seconds(server.pid) - before
            r["server_cpu_us_per_request"] = used / max(1, r["requests"]) * 1e6
            serving[conns] = r

        # Script mode: deploy to InService (worker start + model_fn).
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tf:
            for name, body in {"model.json": b"{}", "code/inference.py":
                               b"def model_fn(d):\n    return {}\ndef predict_fn(x, m):\n    return x\n"}.items():
                info = tarfile.TarInfo(name)
                info.size = len(body)
                tf.addfile(info, io.BytesIO(body))
        s3.put_object(Bucket="bench", Key="script/model.tar.gz", Body=buf.getvalue())
        sm.create_model(ModelName="bench-script", ExecutionRoleArn=ROLE, PrimaryContainer={
            "Image": PYTORCH, "ModelDataUrl": "s3://bench/script/model.tar.gz",
            "Environment": {"SAGEMAKER_PROGRAM": "inference.py"}})
        sm.create_endpoint_config(EndpointConfigName="bench-script", ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": "bench-script",
            "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5}}])
        t = time.perf_counter()
        sm.create_endpoint(EndpointName="bench-script", EndpointConfigName="bench-script")
        while sm.describe_endpoint(EndpointName="bench-script")["EndpointStatus"] == "Creating":
            time.sleep(0.05)
        deploy_s = time.perf_counter() - t
        t = time.perf_counter()
        smr.invoke_endpoint(EndpointName="bench-script", ContentType="application/json", Body="[1]")
        first_ms = (time.perf_counter() - t) * 1000

        print(f"machine: {os.cpu_count()} CPUs; load generator: {'wrk' if shutil.which('wrk') else 'python threads'}")
        print(f"training, {args.rows} rows, 100 rounds: Basalt built-in XGBoost {basalt_train_s:.2f} s "
              f"(Training -> Uploading: process start, imports, CSV load, training, model save); "
              f"xgboost's own {own_total_s:.2f} s with the CSV load and model save ({own_s:.2f} s in "
              f"xgb.train), ratio {basalt_train_s / own_total_s:.2f}x; xgboost's own as a script "
              f"(`python train.py`: start, imports, load, train, save) {own_script_s:.2f} s, ratio "
              f"{basalt_train_s / own_script_s:.2f}x; validation:logloss {metrics.get('validation:logloss')}")
        for conns, r in serving.items():
            print(f"InvokeEndpoint, XGBoost, {conns:>2} conn: {r['rps']:.0f} req/s, p50 {r['p50_ms']:.3f} ms, "
                  f"p99 {r['p99_ms']:.3f} ms, server CPU {r['server_cpu_us_per_request']:.0f} us/request, "
                  f"errors {r['errors']}")
        print(f"script-mode serverless endpoint: CreateEndpoint -> InService {deploy_s:.2f} s, "
              f"first InvokeEndpoint {first_ms:.1f} ms")
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
