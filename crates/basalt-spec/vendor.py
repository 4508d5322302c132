#!/usr/bin/env python3
"""Re-vendors botocore's service models into models/<service>.json.gz without documentation.

Usage: python3 vendor.py   (uses the botocore installed in the current Python)
       python3 vendor.py NAME...   (only these services; the others keep their vendored version)
       python3 vendor.py --legacy DIR   (the legacy models, from an older botocore unpacked in DIR:
           pip download botocore==1.31.63 --no-deps -d DIR && unzip DIR/botocore-*.whl -d DIR)
"""
import gzip, json, os, pathlib, sys

# Models of protocols a service has left, from the last botocore that had them:
# name -> (service, botocore version).
LEGACY = {"sqs-query": ("sqs", "1.31.63")}

SERVICES = """bedrock bedrock-runtime bedrock-agent bedrock-agent-runtime sagemaker sagemaker-runtime
sagemaker-featurestore-runtime stepfunctions events lambda s3 dynamodb sqs sns kinesis cloudwatch logs
comprehend rekognition textract transcribe sts glue iam dynamodbstreams scheduler s3vectors
application-autoscaling""".split()

def strip(node):
    if isinstance(node, dict):
        return {k: strip(v) for k, v in node.items() if k not in ("documentation", "documentationUrl")}
    if isinstance(node, list):
        return [strip(v) for v in node]
    return node

out = pathlib.Path(__file__).parent / "models"

def write(name, model):
    with gzip.GzipFile(out / f"{name}.json.gz", "wb", mtime=0) as f:
        f.write(json.dumps(strip(model), separators=(",", ":")).encode())

if sys.argv[1:2] == ["--legacy"]:
    root = pathlib.Path(sys.argv[2])
    for name, (svc, version) in LEGACY.items():
        data = root / "botocore" / "data" / svc
        model = json.load(open(sorted(data.iterdir())[-1] / "service-2.json"))
        write(name, model)
        print(name, "from botocore", version, "protocol", model["metadata"]["protocol"])
    sys.exit(0)

import botocore
data = pathlib.Path(botocore.__file__).parent / "data"
for svc in sys.argv[1:] or SERVICES:
    version = sorted(os.listdir(data / svc))[-1]
    model = json.load(gzip.open(data / svc / version / "service-2.json.gz"))
    write(svc, model)
print("botocore", botocore.__version__)
