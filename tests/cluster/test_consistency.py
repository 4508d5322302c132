"""Nodes writing the same keys at once agree: no acknowledged version is lost, and the current
object is the newest version, whichever node wrote what."""
from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cluster import Cluster, require_env  # noqa: E402
from test_failover import client  # noqa: E402

require_env()


@pytest.fixture
def two_nodes():
    c = Cluster(n=2, balancer=False).start()
    yield c
    c.stop()
    panics = c.panics()
    c.close()
    assert not panics, "a node panicked:\n" + "\n".join(panics)


def test_versions_of_one_key_written_through_two_nodes(two_nodes):
    a, b = (client(n.endpoint) for n in two_nodes.nodes)
    a.create_bucket(Bucket="vers")
    a.put_bucket_versioning(Bucket="vers", VersioningConfiguration={"Status": "Enabled"})
    acked: list[str] = []
    lock = threading.Lock()

    def writer(t):
        for i in range(40):
            s3 = (a, b)[(t + i) % 2]
            body = f"{t}-{i}".encode()
            if i % 10 == 9:
                vid = s3.delete_object(Bucket="vers", Key="hot")["VersionId"]
            else:
                vid = s3.put_object(Bucket="vers", Key="hot", Body=body)["VersionId"]
            with lock:
                acked.append(vid)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s3 in (a, b):
        versions, markers = [], []
        for page in s3.get_paginator("list_object_versions").paginate(Bucket="vers"):
            versions += page.get("Versions", [])
            markers += page.get("DeleteMarkers", [])
        ids = [v["VersionId"] for v in versions + markers]
        assert len(ids) == len(set(ids)) == 160, "versions lost or duplicated"
        assert set(ids) == set(acked)
        latest = [v for v in versions + markers if v["IsLatest"]]
        assert len(latest) == 1
        if latest[0] in markers:
            with pytest.raises(s3.exceptions.ClientError) as e:
                s3.get_object(Bucket="vers", Key="hot")
            assert e.value.response["Error"]["Code"] == "NoSuchKey"
        else:
            got = s3.get_object(Bucket="vers", Key="hot")
            assert got["VersionId"] == latest[0]["VersionId"], "current object is not the newest"
