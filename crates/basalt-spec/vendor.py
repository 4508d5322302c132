#!/usr/bin/env python3
"""Re-vendors botocore's service models into models/<service>.json.gz without documentation.

Usage: python3 vendor.py   (uses the botocore installed in the current Python)
"""
import gzip, json, os, pathlib
import botocore

SERVICES = """bedrock bedrock-runtime bedrock-agent bedrock-agent-runtime sagemaker sagemaker-runtime
sagemaker-featurestore-runtime stepfunctions events lambda s3 dynamodb sqs sns kinesis cloudwatch logs
comprehend rekognition textract transcribe sts glue iam dynamodbstreams scheduler""".split()

def strip(node):
    if isinstance(node, dict):
        return {k: strip(v) for k, v in node.items() if k not in ("documentation", "documentationUrl")}
    if isinstance(node, list):
        return [strip(v) for v in node]
    return node

data = pathlib.Path(botocore.__file__).parent / "data"
out = pathlib.Path(__file__).parent / "models"
for svc in SERVICES:
    version = sorted(os.listdir(data / svc))[-1]
    model = json.load(gzip.open(data / svc / version / "service-2.json.gz"))
    with gzip.GzipFile(out / f"{svc}.json.gz", "wb", mtime=0) as f:
        f.write(json.dumps(strip(model), separators=(",", ":")).encode())
print("botocore", botocore.__version__)
