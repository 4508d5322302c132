"""Amazon S3 Vectors through boto3 (issue 14): buckets, indexes, vectors and queries on the
wire (rest-json), shapes checked against botocore's model, and state across a restart."""
from __future__ import annotations

import math
import random
import uuid

import pytest
from botocore.exceptions import ClientError

from conftest import BasaltServer, make_client_factory


@pytest.fixture(scope="module")
def sv(make_client):
    return make_client("s3vectors")


def _bucket(sv):
    name = f"vb-{uuid.uuid4().hex[:10]}"
    arn = sv.create_vector_bucket(vectorBucketName=name)["vectorBucketArn"]
    return name, arn


def test_buckets_and_indexes(sv):
    name, arn = _bucket(sv)
    assert arn.endswith(f":bucket/{name}") and arn.startswith("arn:aws:s3vectors:us-east-1:")
    got = sv.get_vector_bucket(vectorBucketArn=arn)["vectorBucket"]
    assert got["vectorBucketName"] == name and got["encryptionConfiguration"]["sseType"] == "AES256"
    assert name in [b["vectorBucketName"] for b in sv.list_vector_buckets(prefix=name[:6])["vectorBuckets"]]
    with pytest.raises(ClientError) as e:
        sv.create_vector_bucket(vectorBucketName=name)
    assert e.value.response["Error"]["Code"] == "ConflictException"
    for i in range(3):
        sv.create_index(vectorBucketName=name, indexName=f"idx-{i}", dataType="float32", dimension=4,
                        distanceMetric="cosine", metadataConfiguration={"nonFilterableMetadataKeys": ["body"]})
    page = sv.list_indexes(vectorBucketName=name, maxResults=2)
    assert len(page["indexes"]) == 2 and page["nextToken"]
    rest = sv.list_indexes(vectorBucketName=name, nextToken=page["nextToken"])
    assert [i["indexName"] for i in page["indexes"] + rest["indexes"]] == ["idx-0", "idx-1", "idx-2"]
    idx = sv.get_index(vectorBucketName=name, indexName="idx-1")["index"]
    assert idx["dimension"] == 4 and idx["distanceMetric"] == "cosine"
    assert idx["metadataConfiguration"]["nonFilterableMetadataKeys"] == ["body"]
    with pytest.raises(ClientError) as e:
        sv.delete_vector_bucket(vectorBucketName=name)
    assert e.value.response["Error"]["Code"] == "ConflictException"
    for i in range(3):
        sv.delete_index(indexArn=f"{arn}/index/idx-{i}")
    sv.delete_vector_bucket(vectorBucketName=name)
    with pytest.raises(ClientError) as e:
        sv.get_vector_bucket(vectorBucketName=name)
    assert e.value.response["Error"]["Code"] == "NotFoundException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def _exact(data, q, k, keep):
    def cos(a, b):
        return sum(x * y for x, y in zip(a, b)) / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))
    scored = sorted(((1 - cos(v, q), key) for key, (v, m) in data.items() if keep(m)))
    return [key for _, key in scored[:k]]


def test_put_query_get_list_delete(sv):
    name, _ = _bucket(sv)
    sv.create_index(vectorBucketName=name, indexName="docs", dataType="float32", dimension=8,
                    distanceMetric="cosine", metadataConfiguration={"nonFilterableMetadataKeys": ["body"]})
    rnd = random.Random(7)
    data = {}
    for i in range(200):
        v = [rnd.uniform(-1, 1) for _ in range(8)]
        data[f"doc-{i:03}"] = (v, {"genre": ["jazz", "rock", "pop"][i % 3], "year": 2000 + i % 25, "body": f"text {i}"})
    items = [{"key": k, "data": {"float32": v}, "metadata": m} for k, (v, m) in data.items()]
    for start in range(0, len(items), 100):
        sv.put_vectors(vectorBucketName=name, indexName="docs", vectors=items[start:start + 100])
    q = [rnd.uniform(-1, 1) for _ in range(8)]
    res = sv.query_vectors(vectorBucketName=name, indexName="docs", topK=5, queryVector={"float32": q},
                           filter={"genre": "jazz", "year": {"$gte": 2010}}, returnDistance=True, returnMetadata=True)
    assert res["distanceMetric"] == "cosine"
    want = _exact(data, q, 5, lambda m: m["genre"] == "jazz" and m["year"] >= 2010)
    assert [v["key"] for v in res["vectors"]] == want
    assert all(v["metadata"]["genre"] == "jazz" and "body" in v["metadata"] for v in res["vectors"])
    assert [v["distance"] for v in res["vectors"]] == sorted(v["distance"] for v in res["vectors"])
    # Non-filterable keys are stored and returned, but not filterable.
    assert sv.query_vectors(vectorBucketName=name, indexName="docs", topK=5, queryVector={"float32": q},
                            filter={"body": "text 3"})["vectors"] == []
    got = sv.get_vectors(vectorBucketName=name, indexName="docs", keys=["doc-001", "nope"],
                         returnData=True, returnMetadata=True)["vectors"]
    assert len(got) == 1 and got[0]["metadata"]["body"] == "text 1"
    assert all(abs(a - b) < 1e-6 for a, b in zip(got[0]["data"]["float32"], data["doc-001"][0]))
    keys, token = [], None
    while True:
        kw = {"maxResults": 64}
        if token:
            kw["nextToken"] = token
        page = sv.list_vectors(vectorBucketName=name, indexName="docs", **kw)
        keys += [v["key"] for v in page["vectors"]]
        token = page.get("nextToken")
        if not token:
            break
    assert sorted(keys) == sorted(data)
    sv.delete_vectors(vectorBucketName=name, indexName="docs", keys=want[:2])
    res = sv.query_vectors(vectorBucketName=name, indexName="docs", topK=5, queryVector={"float32": q},
                           filter={"genre": "jazz", "year": {"$gte": 2010}})
    assert [v["key"] for v in res["vectors"]][:3] == want[2:5]
    with pytest.raises(ClientError) as e:
        sv.put_vectors(vectorBucketName=name, indexName="docs", vectors=[{"key": "x", "data": {"float32": [1.0] * 3}}])
    assert e.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError) as e:
        sv.query_vectors(vectorBucketName=name, indexName="docs", topK=5, queryVector={"float32": q},
                         filter={"year": {"$regex": "x"}})
    assert e.value.response["Error"]["Code"] == "ValidationException"


def test_vectors_survive_a_restart(shape_checker, tmp_path):
    srv = BasaltServer(data_dir=tmp_path, name="basalt-s3vectors").start()
    try:
        sv = make_client_factory(shape_checker, srv.endpoint)("s3vectors")
        sv.create_vector_bucket(vectorBucketName="keep-me")
        sv.create_index(vectorBucketName="keep-me", indexName="idx", dataType="float32", dimension=2,
                        distanceMetric="euclidean")
        sv.put_vectors(vectorBucketName="keep-me", indexName="idx",
                       vectors=[{"key": "a", "data": {"float32": [0.0, 1.0]}}, {"key": "b", "data": {"float32": [5.0, 5.0]}}])
        srv.kill9()
        srv = BasaltServer(data_dir=tmp_path, name="basalt-s3vectors-restart").start()
        sv = make_client_factory(shape_checker, srv.endpoint)("s3vectors")
        res = sv.query_vectors(vectorBucketName="keep-me", indexName="idx", topK=1,
                               queryVector={"float32": [0.0, 0.0]}, returnDistance=True)["vectors"]
        assert res[0]["key"] == "a" and abs(res[0]["distance"] - 1.0) < 1e-6
    finally:
        srv.stop()
        assert not srv.panics()
        srv.close()
