"""What a cluster of nodes on PostgreSQL + an S3-compatible store promises when things fail:
a node killed with SIGKILL loses nothing it acknowledged, and a database outage is answered
with 503 ServiceUnavailable (never a panic or another error) and then served again."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cluster import REPO, Cluster, require_env  # noqa: E402

require_env()


def client(endpoint, service="s3", key="test"):
    return boto3.client(
        service, endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=key,
        aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5,
                      read_timeout=30, max_pool_connections=16))


@pytest.fixture
def cluster(request):
    c = Cluster(**getattr(request, "param", {})).start()
    yield c
    c.stop()
    panics = c.panics()
    c.close()
    assert not panics, "a node panicked:\n" + "\n".join(panics)


@pytest.mark.parametrize("cluster", [{"balancer": False}], indirect=True)
def test_kill9_of_a_node_during_uploads_loses_nothing_acknowledged(cluster):
    a, b = cluster.nodes
    s3a, s3b = client(a.endpoint), client(b.endpoint)
    s3a.create_bucket(Bucket="kill9")
    acked: dict[str, str] = {}
    lock = threading.Lock()
    # Inline records (1 KiB), blobs in the object store (100 KiB) and multipart blob writes
    # (9 MiB, over the backend's 8 MiB part), from four writers at once.
    sizes = [1024, 100_000, 1024, 9 * 1024 * 1024]

    def writer(t):
        i = 0
        while True:
            body = os.urandom(sizes[(t + i) % len(sizes)])
            key = f"w{t}/{i:05d}"
            try:
                s3a.put_object(Bucket="kill9", Key=key, Body=body)
            except Exception:
                return  # the node is gone: this PUT was never acknowledged
            with lock:
                acked[key] = hashlib.sha256(body).hexdigest()
            i += 1

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while len(acked) < 80 and time.monotonic() < deadline:
        time.sleep(0.02)
    a.kill9()
    for t in threads:
        t.join(60)
    assert len(acked) >= 80, f"only {len(acked)} uploads acknowledged in 60 s"
    for key, digest in sorted(acked.items()):
        got = s3b.get_object(Bucket="kill9", Key=key)["Body"].read()
        assert hashlib.sha256(got).hexdigest() == digest, f"{key} differs on the surviving node"
    listed = {o["Key"] for p in s3b.get_paginator("list_objects_v2").paginate(Bucket="kill9")
              for o in p.get("Contents", [])}
    assert set(acked) <= listed


def pg(cmd):
    subprocess.run(["bash", str(REPO / "scripts" / "postgres.sh"), cmd], check=True)


def test_database_outage_is_503_then_full_service(cluster):
    s3 = client(cluster.endpoint)
    s3.create_bucket(Bucket="outage")
    s3.put_object(Bucket="outage", Key="seed", Body=b"seed")
    outcomes: Counter[str] = Counter()
    unexpected: list[str] = []
    acked: dict[str, bytes] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def load(t):
        i = 0
        while not stop.is_set():
            key, body = f"l{t}/{i}", os.urandom(512)
            for op in ("put", "get", "sts"):
                try:
                    if op == "sts":
                        # A session-style key no node has seen: its lookup needs the
                        # database, and an outage must not make it "unknown".
                        sts = client(cluster.endpoint, "sts", f"ASIA{os.urandom(8).hex().upper()}")
                        sts.get_caller_identity()
                    elif op == "put":
                        s3.put_object(Bucket="outage", Key=key, Body=body)
                        with lock:
                            acked[key] = body
                    else:
                        assert s3.get_object(Bucket="outage", Key="seed")["Body"].read() == b"seed"
                    with lock:
                        outcomes["ok"] += 1
                except ClientError as e:
                    status = e.response["ResponseMetadata"]["HTTPStatusCode"]
                    code = e.response["Error"]["Code"]
                    with lock:
                        if (status, code) == (503, "ServiceUnavailable"):
                            outcomes["503"] += 1
                        else:
                            unexpected.append(f"{op}: {status} {code}")
                except Exception as e:  # connection reset, timeout: never acceptable
                    with lock:
                        unexpected.append(f"{op}: {e!r}")
            i += 1

    threads = [threading.Thread(target=load, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(1.0)
        before = outcomes["ok"]
        pg("pause")
        time.sleep(3.0)
        during = dict(outcomes)
        pg("resume")
        # Full service again: every request succeeds for a whole second.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            snap = outcomes["503"]
            time.sleep(1.0)
            if outcomes["503"] == snap:
                break
        else:
            pytest.fail(f"still answering 503 30 s after the database returned: {dict(outcomes)}")
        after_ok = outcomes["ok"]
        time.sleep(1.0)
        assert outcomes["ok"] > after_ok, "no requests served after the outage"
    finally:
        stop.set()
        for t in threads:
            t.join(60)
        pg("resume")
    assert before > 0, "no requests served before the outage"
    assert during.get("503", 0) > 0, f"the outage was not noticed: {during}"
    assert not unexpected, f"answers other than 503 ServiceUnavailable: {unexpected[:10]}"
    for key, body in acked.items():
        assert s3.get_object(Bucket="outage", Key=key)["Body"].read() == body, key
