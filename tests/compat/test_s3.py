"""S3 through boto3, path-style (127.0.0.1) unless stated."""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import urllib.error
import urllib.parse
import urllib.request
import zlib

import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from conftest import REGION, empty_bucket, unique

try:
    import awscrt  # noqa: F401
    HAS_CRT = True
except ImportError:
    HAS_CRT = False


def md5hex(b: bytes) -> str:
    return hashlib.md5(b).hexdigest()


def err(exc_info):
    e = exc_info.value
    return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]


# ---------------------------------------------------------------------------------------
# CRC32C (Castagnoli), pure python: botocore only has it with awscrt installed.
def _crc32c_table():
    poly, table = 0x82F63B78, []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C = _crc32c_table()


def crc32c(data: bytes) -> int:
    c = 0xFFFFFFFF
    for b in data:
        c = _CRC32C[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def b64_u32(v: int) -> str:
    return base64.b64encode(v.to_bytes(4, "big")).decode()


def expected_checksum(alg: str, data: bytes) -> str:
    if alg == "CRC32":
        return b64_u32(zlib.crc32(data) & 0xFFFFFFFF)
    if alg == "CRC32C":
        return b64_u32(crc32c(data))
    if alg == "SHA1":
        return base64.b64encode(hashlib.sha1(data).digest()).decode()
    if alg == "SHA256":
        return base64.b64encode(hashlib.sha256(data).digest()).decode()
    raise ValueError(alg)


def test_crc32c_selftest():
    assert crc32c(b"123456789") == 0xE3069283


# ---------------------------------------------------------------------------------------
# Buckets
def test_bucket_lifecycle(s3):
    name = unique("lc")
    r = s3.create_bucket(Bucket=name)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert r.get("Location") in (f"/{name}", None)
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert name in names
    lb = s3.list_buckets()
    assert lb["Owner"]["ID"]
    assert all(isinstance(b["CreationDate"], dt.datetime) for b in lb["Buckets"])
    s3.head_bucket(Bucket=name)
    s3.delete_bucket(Bucket=name)
    with pytest.raises(ClientError) as ei:
        s3.head_bucket(Bucket=name)
    assert err(ei) == ("404", 404)
    with pytest.raises(ClientError) as ei:
        s3.delete_bucket(Bucket=name)
    assert err(ei) == ("NoSuchBucket", 404)
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_create_bucket_twice_us_east_1(s3, bucket):
    # AWS quirk: in us-east-1 re-creating your own bucket is a 200 no-op; elsewhere 409.
    try:
        s3.create_bucket(Bucket=bucket)
    except ClientError as e:
        assert e.response["Error"]["Code"] == "BucketAlreadyOwnedByYou"
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 409


def test_bucket_location_and_already_owned_other_region(make_client):
    eu = make_client("s3", region="eu-west-1")
    name = unique("eu")
    eu.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    try:
        assert eu.get_bucket_location(Bucket=name)["LocationConstraint"] == "eu-west-1"
        with pytest.raises(ClientError) as ei:
            eu.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        assert err(ei) == ("BucketAlreadyOwnedByYou", 409)
        # bucket names are global: ListBuckets from us-east-1 shows it, and its region is reported
        use1 = make_client("s3")
        assert name in [b["Name"] for b in use1.list_buckets()["Buckets"]]
        h = use1.head_bucket(Bucket=name)
        assert h["ResponseMetadata"]["HTTPHeaders"].get("x-amz-bucket-region") == "eu-west-1"
    finally:
        eu.delete_bucket(Bucket=name)


def test_bucket_location_us_east_1(s3, bucket):
    # us-east-1 is reported as an empty LocationConstraint -> None
    assert s3.get_bucket_location(Bucket=bucket).get("LocationConstraint") in (None, "")


def test_bucket_versioning_status(s3, bucket):
    r = s3.get_bucket_versioning(Bucket=bucket)
    assert "Status" not in r
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Suspended"


def test_object_versions(s3, bucket):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"one")["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="k", Body=b"two")["VersionId"]
    assert v1 != v2
    assert s3.get_object(Bucket=bucket, Key="k", VersionId=v1)["Body"].read() == b"one"
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"two"
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Suspended"


def versions_of(s3, bucket, **kw):
    r = s3.list_object_versions(Bucket=bucket, **kw)
    return ([(v["Key"], v["VersionId"], v["IsLatest"]) for v in r.get("Versions", [])],
            [(m["Key"], m["VersionId"], m["IsLatest"]) for m in r.get("DeleteMarkers", [])])


def test_object_version_lifecycle(s3, bucket):
    s3.put_object(Bucket=bucket, Key="old", Body=b"before versioning")
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"one")["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="k", Body=b"two")["VersionId"]
    assert s3.head_object(Bucket=bucket, Key="k")["VersionId"] == v2
    assert s3.get_object(Bucket=bucket, Key="k", VersionId=v1)["VersionId"] == v1
    versions, markers = versions_of(s3, bucket)
    assert versions == [("k", v2, True), ("k", v1, False), ("old", "null", True)] and markers == []
    assert s3.get_object(Bucket=bucket, Key="old", VersionId="null")["Body"].read() == b"before versioning"

    # A plain delete adds a delete marker; the data stays reachable by version.
    d = s3.delete_object(Bucket=bucket, Key="k")
    assert d["DeleteMarker"] is True
    marker = d["VersionId"]
    with pytest.raises(ClientError) as ei:
        s3.get_object(Bucket=bucket, Key="k")
    assert err(ei) == ("NoSuchKey", 404)
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])] == ["old"]
    versions, markers = versions_of(s3, bucket, Prefix="k")
    assert versions == [("k", v2, False), ("k", v1, False)] and markers == [("k", marker, True)]
    with pytest.raises(ClientError) as ei:
        s3.get_object(Bucket=bucket, Key="k", VersionId=marker)
    assert err(ei) == ("MethodNotAllowed", 405)

    # Removing the marker brings v2 back; removing v2 makes v1 current.
    s3.delete_object(Bucket=bucket, Key="k", VersionId=marker)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"two"
    s3.delete_object(Bucket=bucket, Key="k", VersionId=v2)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"one"
    with pytest.raises(ClientError) as ei:
        s3.get_object(Bucket=bucket, Key="k", VersionId=v2)
    assert err(ei) == ("NoSuchVersion", 404)
    with pytest.raises(ClientError) as ei:
        s3.get_object(Bucket=bucket, Key="k", VersionId="not-a-version")
    assert err(ei) == ("InvalidArgument", 400)

    # Copies can read an old version.
    v3 = s3.put_object(Bucket=bucket, Key="k", Body=b"three")["VersionId"]
    c = s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "k", "VersionId": v1})
    assert c["CopySourceVersionId"] == v1 and c["VersionId"]
    assert s3.get_object(Bucket=bucket, Key="copy")["Body"].read() == b"one"

    # Suspended: new writes are the null version, replacing each other.
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    s3.put_object(Bucket=bucket, Key="k", Body=b"n1")
    s3.put_object(Bucket=bucket, Key="k", Body=b"n2")
    versions, _ = versions_of(s3, bucket, Prefix="k")
    assert versions == [("k", "null", True), ("k", v3, False), ("k", v1, False)]
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"n2"

    # The bucket can go only when every version and marker has.
    with pytest.raises(ClientError) as ei:
        s3.delete_bucket(Bucket=bucket)
    assert err(ei) == ("BucketNotEmpty", 409)
    versions, markers = versions_of(s3, bucket)
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [
        {"Key": k, "VersionId": v} for k, v, _ in versions + markers]})
    assert len(r["Deleted"]) == len(versions + markers) and "Errors" not in r
    assert versions_of(s3, bucket) == ([], [])


def test_object_versions_edges(s3, bucket):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    for key in ("a", "b/1", "b/2", "c"):
        for _ in range(2):
            s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    # One item a page, with a delimiter: pages end on versions and on the common prefix alike.
    seen, kw = [], {}
    for _ in range(20):
        r = s3.list_object_versions(Bucket=bucket, Delimiter="/", MaxKeys=1, **kw)
        seen += [(v["Key"], v["IsLatest"]) for v in r.get("Versions", [])]
        seen += [p["Prefix"] for p in r.get("CommonPrefixes", [])]
        if not r["IsTruncated"]:
            break
        kw = {"KeyMarker": r["NextKeyMarker"]}
        if r.get("NextVersionIdMarker"):
            kw["VersionIdMarker"] = r["NextVersionIdMarker"]
    assert seen == [("a", True), ("a", False), "b/", ("c", True), ("c", False)]
    with pytest.raises(ClientError) as ei:
        s3.list_object_versions(Bucket=bucket, VersionIdMarker="null")
    assert err(ei) == ("InvalidArgument", 400)
    assert "Versions" not in s3.list_object_versions(Bucket=bucket, Prefix="a\x01", Delimiter="/")

    # The latest version is a delete marker: GET says so in headers; copying from the marker fails.
    marker = s3.delete_object(Bucket=bucket, Key="a")["VersionId"]
    with pytest.raises(ClientError) as ei:
        s3.get_object(Bucket=bucket, Key="a")
    h = ei.value.response["ResponseMetadata"]["HTTPHeaders"]
    assert err(ei) == ("NoSuchKey", 404)
    assert h.get("x-amz-delete-marker") == "true" and h.get("x-amz-version-id") == marker
    with pytest.raises(ClientError) as ei:
        s3.copy_object(Bucket=bucket, Key="x", CopySource={"Bucket": bucket, "Key": "a", "VersionId": marker})
    assert err(ei) == ("InvalidRequest", 400)

    # Restoring an older version by copying it onto its own key.
    old = [v["VersionId"] for v in s3.list_object_versions(Bucket=bucket, Prefix="c")["Versions"]][-1]
    s3.put_object(Bucket=bucket, Key="c", Body=b"newest")
    s3.copy_object(Bucket=bucket, Key="c", CopySource={"Bucket": bucket, "Key": "c", "VersionId": old})
    assert s3.get_object(Bucket=bucket, Key="c")["Body"].read() == b"c"

    # DeleteObjects removing a marker by its id reports it as a marker.
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "a", "VersionId": marker}]})
    assert r["Deleted"][0]["DeleteMarker"] is True and r["Deleted"][0]["DeleteMarkerVersionId"] == marker
    assert s3.get_object(Bucket=bucket, Key="a")["Body"].read() == b"a"


def test_tags_belong_to_versions(s3, bucket):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"1", Tagging="a=1")["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="k", Body=b"2", Tagging="b=2")["VersionId"]
    tags = lambda **kw: [(t["Key"], t["Value"]) for t in s3.get_object_tagging(Bucket=bucket, Key="k", **kw)["TagSet"]]
    assert tags() == [("b", "2")] and tags(VersionId=v1) == [("a", "1")]
    r = s3.put_object_tagging(Bucket=bucket, Key="k", VersionId=v1, Tagging={"TagSet": [{"Key": "c", "Value": "3"}]})
    assert r["VersionId"] == v1
    assert tags(VersionId=v1) == [("c", "3")] and tags() == [("b", "2")]
    r = s3.put_object_tagging(Bucket=bucket, Key="k", Tagging={"TagSet": [{"Key": "d", "Value": "4"}]})
    assert r["VersionId"] == v2
    assert tags(VersionId=v2) == [("d", "4")]
    s3.delete_object_tagging(Bucket=bucket, Key="k", VersionId=v1)
    assert tags(VersionId=v1) == [] and tags() == [("d", "4")]
    with pytest.raises(ClientError) as ei:
        s3.get_object_tagging(Bucket=bucket, Key="k", VersionId="0" * 32)
    assert err(ei) == ("NoSuchVersion", 404)


def test_unversioned_bucket_lists_null_versions(s3, bucket):
    s3.put_object(Bucket=bucket, Key="a", Body=b"1")
    s3.put_object(Bucket=bucket, Key="b", Body=b"2")
    assert versions_of(s3, bucket) == ([("a", "null", True), ("b", "null", True)], [])
    r = s3.list_object_versions(Bucket=bucket, MaxKeys=1)
    assert r["IsTruncated"] and r["NextKeyMarker"] == "a"
    r = s3.list_object_versions(Bucket=bucket, KeyMarker="a", VersionIdMarker="null")
    assert [v["Key"] for v in r["Versions"]] == ["b"]
    d = s3.delete_object(Bucket=bucket, Key="a", VersionId="null")
    assert "DeleteMarker" not in d
    assert versions_of(s3, bucket) == ([("b", "null", True)], [])


def test_object_versions_paging_and_delimiter(s3, bucket):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    want = []
    for key in ("a", "b/1", "b/2", "c"):
        ids = [s3.put_object(Bucket=bucket, Key=key, Body=b"x")["VersionId"] for _ in range(2)]
        want += [(key, ids[1]), (key, ids[0])]
    got, kw = [], {}
    while True:
        r = s3.list_object_versions(Bucket=bucket, MaxKeys=3, **kw)
        got += [(v["Key"], v["VersionId"]) for v in r.get("Versions", [])]
        if not r["IsTruncated"]:
            break
        kw = {"KeyMarker": r["NextKeyMarker"], "VersionIdMarker": r["NextVersionIdMarker"]}
    assert got == want
    r = s3.list_object_versions(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["b/"]
    assert [v["Key"] for v in r["Versions"]] == ["a", "a", "c", "c"]
    paginator = s3.get_paginator("list_object_versions")
    assert sum(len(p.get("Versions", [])) for p in paginator.paginate(Bucket=bucket, PaginationConfig={"PageSize": 2})) == 8
    # boto3 asks for url encoding and decodes: keys with characters XML cannot carry survive.
    odd = "odd key+%/\x01é"
    vid = s3.put_object(Bucket=bucket, Key=odd, Body=b"x")["VersionId"]
    r = s3.list_object_versions(Bucket=bucket, Prefix="odd")
    assert [(v["Key"], v["VersionId"]) for v in r["Versions"]] == [(odd, vid)]
    s3.delete_object(Bucket=bucket, Key=odd, VersionId=vid)
    # A key that continues another with the record separator keeps its versions apart.
    vp = s3.put_object(Bucket=bucket, Key="p", Body=b"p")["VersionId"]
    vq = s3.put_object(Bucket=bucket, Key="p\x01q", Body=b"q")["VersionId"]
    s3.delete_object(Bucket=bucket, Key="p", VersionId=vp)
    r = s3.list_object_versions(Bucket=bucket, Prefix="p")
    assert [(v["Key"], v["VersionId"]) for v in r["Versions"]] == [("p\x01q", vq)]
    assert s3.get_object(Bucket=bucket, Key="p\x01q")["Body"].read() == b"q"


def test_no_such_bucket_errors(s3):
    missing = unique("missing")
    for call in (
        lambda: s3.list_objects_v2(Bucket=missing),
        lambda: s3.list_objects(Bucket=missing),
        lambda: s3.put_object(Bucket=missing, Key="k", Body=b"x"),
        lambda: s3.get_object(Bucket=missing, Key="k"),
        lambda: s3.get_bucket_versioning(Bucket=missing),
    ):
        with pytest.raises(ClientError) as ei:
            call()
        assert err(ei) == ("NoSuchBucket", 404)
        assert ei.value.response["Error"].get("BucketName") in (missing, None)


def test_bucket_not_empty(s3, bucket):
    s3.put_object(Bucket=bucket, Key="x", Body=b"1")
    with pytest.raises(ClientError) as ei:
        s3.delete_bucket(Bucket=bucket)
    assert err(ei) == ("BucketNotEmpty", 409)


def test_invalid_bucket_name(s3):
    with pytest.raises(ClientError) as ei:
        s3.create_bucket(Bucket="ab")  # too short (botocore's validator accepts it)
    assert err(ei) == ("InvalidBucketName", 400)


# ---------------------------------------------------------------------------------------
# Objects
def test_put_get_head_delete(s3, bucket):
    body = os.urandom(1000)
    r = s3.put_object(Bucket=bucket, Key="dir/obj.bin", Body=body, ContentType="application/x-test",
                      Metadata={"colour": "blue", "Mixed-Case": "v"})
    assert r["ETag"] == f'"{md5hex(body)}"'
    g = s3.get_object(Bucket=bucket, Key="dir/obj.bin")
    assert g["Body"].read() == body
    assert g["ETag"] == r["ETag"]
    assert g["ContentType"] == "application/x-test"
    assert g["ContentLength"] == 1000
    assert g["Metadata"] == {"colour": "blue", "mixed-case": "v"}
    assert isinstance(g["LastModified"], dt.datetime)
    h = s3.head_object(Bucket=bucket, Key="dir/obj.bin")
    assert h["ContentLength"] == 1000 and h["ETag"] == r["ETag"]
    assert h["Metadata"] == {"colour": "blue", "mixed-case": "v"}
    assert h["ResponseMetadata"]["HTTPHeaders"].get("accept-ranges") == "bytes"
    d = s3.delete_object(Bucket=bucket, Key="dir/obj.bin")
    assert d["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as ei:
        s3.get_object(Bucket=bucket, Key="dir/obj.bin")
    assert err(ei) == ("NoSuchKey", 404)
    assert ei.value.response["Error"].get("Key") in ("dir/obj.bin", None)
    with pytest.raises(ClientError) as ei:
        s3.head_object(Bucket=bucket, Key="dir/obj.bin")
    assert err(ei) == ("404", 404)
    # deleting a missing key is a 204 success
    assert s3.delete_object(Bucket=bucket, Key="never")["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_default_content_type(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    ct = s3.head_object(Bucket=bucket, Key="k")["ContentType"]
    assert ct in ("binary/octet-stream", "application/octet-stream")


def test_overwrite(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"first")
    s3.put_object(Bucket=bucket, Key="k", Body=b"second!")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"second!"


def test_empty_object(s3, bucket):
    r = s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    assert r["ETag"] == '"d41d8cd98f00b204e9800998ecf8427e"'
    g = s3.get_object(Bucket=bucket, Key="empty")
    assert g["ContentLength"] == 0 and g["Body"].read() == b""
    assert s3.head_object(Bucket=bucket, Key="empty")["ContentLength"] == 0
    assert s3.list_objects_v2(Bucket=bucket)["Contents"][0]["Size"] == 0


def test_response_header_overrides(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    g = s3.get_object(Bucket=bucket, Key="k", ResponseContentType="text/csv",
                      ResponseContentDisposition="attachment; filename=a.csv",
                      ResponseCacheControl="no-cache")
    assert g["ContentType"] == "text/csv"
    assert g["ContentDisposition"] == "attachment; filename=a.csv"
    assert g["CacheControl"] == "no-cache"


@pytest.mark.parametrize("key", [
    "a b/c+d%e/ü.txt",
    "with?query&and=equals#hash",
    "日本語/キー",
    "trailing/slash/",
    "sp  ace  s",
    "~tilde!*'()",
])
def test_special_character_keys(s3, bucket, key):
    s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == key.encode()
    s3.head_object(Bucket=bucket, Key=key)
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == [key]
    assert [o["Key"] for o in s3.list_objects(Bucket=bucket)["Contents"]] == [key]
    s3.copy_object(Bucket=bucket, Key=key + ".copy", CopySource={"Bucket": bucket, "Key": key})
    assert s3.get_object(Bucket=bucket, Key=key + ".copy")["Body"].read() == key.encode()
    d = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": key}, {"Key": key + ".copy"}]})
    assert sorted(x["Key"] for x in d["Deleted"]) == sorted([key, key + ".copy"])


def test_key_is_not_a_path(s3, bucket, tmp_path):
    marker = unique("escape")
    key = f"../../../../../../tmp/{marker}"
    s3.put_object(Bucket=bucket, Key=key, Body=b"evil")
    assert not os.path.exists(f"/tmp/{marker}")
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"evil"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == [key]
    # "." and ".." segments and a leading slash stay distinct keys
    for k in ("a/./b", "a/../b", "/lead", "a//b"):
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    for k in ("a/./b", "a/../b", "/lead", "a//b"):
        assert s3.get_object(Bucket=bucket, Key=k)["Body"].read() == k.encode()


def test_delete_objects(s3, bucket):
    for i in range(5):
        s3.put_object(Bucket=bucket, Key=f"k{i}", Body=b"x")
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "k0"}, {"Key": "k1"}, {"Key": "nope"}]})
    assert sorted(d["Key"] for d in r["Deleted"]) == ["k0", "k1", "nope"]
    assert not r.get("Errors")
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "k2"}], "Quiet": True})
    assert not r.get("Deleted") and not r.get("Errors")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["k3", "k4"]


def test_copy_object_metadata_directive(s3, bucket):
    body = b"copy me"
    put = s3.put_object(Bucket=bucket, Key="src", Body=body, ContentType="text/plain", Metadata={"a": "1"})
    c = s3.copy_object(Bucket=bucket, Key="dst-copy", CopySource={"Bucket": bucket, "Key": "src"})
    assert c["CopyObjectResult"]["ETag"] == put["ETag"]
    assert isinstance(c["CopyObjectResult"]["LastModified"], dt.datetime)
    h = s3.head_object(Bucket=bucket, Key="dst-copy")
    assert h["Metadata"] == {"a": "1"} and h["ContentType"] == "text/plain"
    s3.copy_object(Bucket=bucket, Key="dst-replace", CopySource=f"{bucket}/src",
                   MetadataDirective="REPLACE", Metadata={"b": "2"}, ContentType="text/csv")
    h = s3.head_object(Bucket=bucket, Key="dst-replace")
    assert h["Metadata"] == {"b": "2"} and h["ContentType"] == "text/csv"
    assert s3.get_object(Bucket=bucket, Key="dst-replace")["Body"].read() == body
    # copying onto itself without changing anything is an error in AWS
    with pytest.raises(ClientError) as ei:
        s3.copy_object(Bucket=bucket, Key="src", CopySource={"Bucket": bucket, "Key": "src"})
    assert err(ei) == ("InvalidRequest", 400)
    # but with REPLACE it's how metadata is changed in place
    s3.copy_object(Bucket=bucket, Key="src", CopySource={"Bucket": bucket, "Key": "src"},
                   MetadataDirective="REPLACE", Metadata={"c": "3"})
    assert s3.head_object(Bucket=bucket, Key="src")["Metadata"] == {"c": "3"}
    with pytest.raises(ClientError) as ei:
        s3.copy_object(Bucket=bucket, Key="x", CopySource={"Bucket": bucket, "Key": "missing"})
    assert err(ei) == ("NoSuchKey", 404)


# ---------------------------------------------------------------------------------------
# Listing
KEYS = sorted(
    ["a.txt", "b.txt", "dir1/x", "dir1/y", "dir1/sub/z", "dir2/x", "dir2/y", "zz"]
    + [f"many/{i:03d}" for i in range(25)]
)


@pytest.fixture
def listing_bucket(s3, bucket):
    for k in KEYS:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    return bucket


def test_list_v2_basic(s3, listing_bucket):
    r = s3.list_objects_v2(Bucket=listing_bucket)
    assert [o["Key"] for o in r["Contents"]] == KEYS
    assert r["KeyCount"] == len(KEYS) and r["IsTruncated"] is False
    assert r["Name"] == listing_bucket and r["MaxKeys"] == 1000
    o = r["Contents"][0]
    assert o["Size"] == len(o["Key"]) and o["ETag"] == f'"{md5hex(o["Key"].encode())}"'
    assert o["StorageClass"] == "STANDARD"
    assert isinstance(o["LastModified"], dt.datetime)


def test_list_v2_prefix_delimiter(s3, listing_bucket):
    r = s3.list_objects_v2(Bucket=listing_bucket, Delimiter="/")
    assert [o["Key"] for o in r["Contents"]] == ["a.txt", "b.txt", "zz"]
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["dir1/", "dir2/", "many/"]
    assert r["KeyCount"] == 6
    r = s3.list_objects_v2(Bucket=listing_bucket, Prefix="dir1/", Delimiter="/")
    assert [o["Key"] for o in r["Contents"]] == ["dir1/x", "dir1/y"]
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["dir1/sub/"]
    assert r["Prefix"] == "dir1/" and r["Delimiter"] == "/"
    r = s3.list_objects_v2(Bucket=listing_bucket, Prefix="nothing-here")
    assert "Contents" not in r and r["KeyCount"] == 0


def test_list_v2_start_after_max_keys(s3, listing_bucket):
    r = s3.list_objects_v2(Bucket=listing_bucket, StartAfter="dir2/x", MaxKeys=3)
    assert [o["Key"] for o in r["Contents"]] == ["dir2/y", "many/000", "many/001"]
    assert r["IsTruncated"] is True and r["NextContinuationToken"]
    assert r["StartAfter"] == "dir2/x" and r["MaxKeys"] == 3
    r2 = s3.list_objects_v2(Bucket=listing_bucket, ContinuationToken=r["NextContinuationToken"], MaxKeys=2)
    assert [o["Key"] for o in r2["Contents"]] == ["many/002", "many/003"]
    assert r2["ContinuationToken"] == r["NextContinuationToken"]
    r0 = s3.list_objects_v2(Bucket=listing_bucket, MaxKeys=0)
    assert "Contents" not in r0 and r0["KeyCount"] == 0


def test_list_v2_paginator(s3, listing_bucket):
    pages = list(s3.get_paginator("list_objects_v2").paginate(
        Bucket=listing_bucket, PaginationConfig={"PageSize": 7}))
    assert len(pages) == (len(KEYS) + 6) // 7
    assert [o["Key"] for p in pages for o in p.get("Contents", [])] == KEYS
    # paginated with delimiter: common prefixes count against MaxKeys and are not repeated
    pages = list(s3.get_paginator("list_objects_v2").paginate(
        Bucket=listing_bucket, Delimiter="/", PaginationConfig={"PageSize": 2}))
    keys = [o["Key"] for p in pages for o in p.get("Contents", [])]
    prefixes = [c["Prefix"] for p in pages for c in p.get("CommonPrefixes", [])]
    assert keys == ["a.txt", "b.txt", "zz"] and prefixes == ["dir1/", "dir2/", "many/"]
    assert len(pages) == 3


def test_list_v1(s3, listing_bucket):
    r = s3.list_objects(Bucket=listing_bucket, MaxKeys=4)
    assert [o["Key"] for o in r["Contents"]] == KEYS[:4] and r["IsTruncated"] is True
    assert "NextMarker" not in r  # only returned when a delimiter was given
    r = s3.list_objects(Bucket=listing_bucket, Marker=KEYS[3], MaxKeys=2)
    assert [o["Key"] for o in r["Contents"]] == KEYS[4:6] and r["Marker"] == KEYS[3]
    r = s3.list_objects(Bucket=listing_bucket, Delimiter="/", MaxKeys=4)
    assert [o["Key"] for o in r["Contents"]] == ["a.txt", "b.txt"]
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["dir1/", "dir2/"]
    assert r["IsTruncated"] is True and r["NextMarker"] == "dir2/"
    pages = list(s3.get_paginator("list_objects").paginate(
        Bucket=listing_bucket, PaginationConfig={"PageSize": 10}))
    assert [o["Key"] for p in pages for o in p["Contents"]] == KEYS
    assert r["Contents"][0]["Owner"]["ID"]


def test_list_encoding_type_url(s3, bucket):
    key = "a b/ü+&.txt"
    s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    # boto3 sends EncodingType=url by default and decodes; ask raw too
    auto = s3.list_objects_v2(Bucket=bucket)  # botocore sets EncodingType=url itself and decodes
    assert auto["Contents"][0]["Key"] == key
    raw = s3.list_objects_v2(Bucket=bucket, EncodingType="url")  # explicit: botocore leaves it encoded
    assert raw["EncodingType"] == "url"
    got = raw["Contents"][0]["Key"]
    assert got != key and urllib.parse.unquote(got) == key, got


# ---------------------------------------------------------------------------------------
# Checksums
@pytest.mark.parametrize("alg", ["CRC32", "CRC32C", "SHA1", "SHA256"])
def test_additional_checksums(s3, bucket, alg):
    body = os.urandom(3000)
    want = expected_checksum(alg, body)
    if alg == "CRC32C" and not HAS_CRT:
        # botocore computes CRC32C only with awscrt: send the value ourselves
        r = s3.put_object(Bucket=bucket, Key="c", Body=body, ChecksumCRC32C=want)
    else:
        r = s3.put_object(Bucket=bucket, Key="c", Body=body, ChecksumAlgorithm=alg)
    assert r[f"Checksum{alg}"] == want
    g = s3.get_object(Bucket=bucket, Key="c", ChecksumMode="ENABLED")
    assert g["Body"].read() == body
    assert g[f"Checksum{alg}"] == want
    h = s3.head_object(Bucket=bucket, Key="c", ChecksumMode="ENABLED")
    assert h[f"Checksum{alg}"] == want


def test_checksum_mismatch_rejected(s3, bucket):
    with pytest.raises(ClientError) as ei:
        s3.put_object(Bucket=bucket, Key="c", Body=b"hello", ChecksumSHA256=expected_checksum("SHA256", b"other"))
    code, status = err(ei)
    assert status == 400 and code in ("BadDigest", "InvalidRequest")
    with pytest.raises(ClientError) as ei:
        s3.put_object(Bucket=bucket, Key="c", Body=b"hello", ContentMD5=base64.b64encode(hashlib.md5(b"x").digest()).decode())
    assert err(ei) == ("BadDigest", 400)
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="c")


# ---------------------------------------------------------------------------------------
# Ranges and conditions
@pytest.fixture
def hundred(s3, bucket):
    body = bytes(range(100))
    etag = s3.put_object(Bucket=bucket, Key="h", Body=body)["ETag"]
    return bucket, body, etag


def test_range_get(s3, hundred):
    bucket, body, _ = hundred
    for rng, lo, hi in (("bytes=0-9", 0, 9), ("bytes=-10", 90, 99), ("bytes=90-", 90, 99),
                        ("bytes=95-200", 95, 99), ("bytes=50-50", 50, 50)):
        g = s3.get_object(Bucket=bucket, Key="h", Range=rng)
        assert g["ResponseMetadata"]["HTTPStatusCode"] == 206, rng
        assert g["Body"].read() == body[lo:hi + 1], rng
        assert g["ContentRange"] == f"bytes {lo}-{hi}/100", rng
        assert g["ContentLength"] == hi - lo + 1
    with pytest.raises(ClientError) as ei:
        s3.get_object(Bucket=bucket, Key="h", Range="bytes=200-300")
    assert err(ei) == ("InvalidRange", 416)
    assert ei.value.response["ResponseMetadata"]["HTTPHeaders"].get("content-range") in ("bytes */100", None)
    # a syntactically invalid range is ignored by S3: full object, 200
    g = s3.get_object(Bucket=bucket, Key="h", Range="bytes=abc")
    assert g["ResponseMetadata"]["HTTPStatusCode"] == 200 and g["Body"].read() == body
    # range on HEAD
    h = s3.head_object(Bucket=bucket, Key="h", Range="bytes=0-9")
    assert h["ResponseMetadata"]["HTTPStatusCode"] == 206 and h["ContentLength"] == 10


def test_conditional_get(s3, hundred):
    bucket, body, etag = hundred
    with pytest.raises(ClientError) as ei:
        s3.get_object(Bucket=bucket, Key="h", IfNoneMatch=etag)
    assert err(ei) == ("304", 304)
    assert s3.get_object(Bucket=bucket, Key="h", IfMatch=etag)["Body"].read() == body
    with pytest.raises(ClientError) as ei:
        s3.get_object(Bucket=bucket, Key="h", IfMatch='"0123456789abcdef0123456789abcdef"')
    assert err(ei) == ("PreconditionFailed", 412)
    future = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)
    past = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
    with pytest.raises(ClientError) as ei:
        s3.get_object(Bucket=bucket, Key="h", IfModifiedSince=future)
    assert err(ei) == ("304", 304)
    assert s3.get_object(Bucket=bucket, Key="h", IfModifiedSince=past)["Body"].read() == body
    with pytest.raises(ClientError) as ei:
        s3.get_object(Bucket=bucket, Key="h", IfUnmodifiedSince=past)
    assert err(ei) == ("PreconditionFailed", 412)
    with pytest.raises(ClientError) as ei:
        s3.head_object(Bucket=bucket, Key="h", IfNoneMatch=etag)
    assert err(ei) == ("304", 304)
    with pytest.raises(ClientError) as ei:
        s3.head_object(Bucket=bucket, Key="h", IfMatch='"nope"')
    assert err(ei) == ("412", 412)


def test_conditional_put(s3, bucket):
    s3.put_object(Bucket=bucket, Key="once", Body=b"1", IfNoneMatch="*")
    with pytest.raises(ClientError) as ei:
        s3.put_object(Bucket=bucket, Key="once", Body=b"2", IfNoneMatch="*")
    assert err(ei) == ("PreconditionFailed", 412)
    assert s3.get_object(Bucket=bucket, Key="once")["Body"].read() == b"1"


# ---------------------------------------------------------------------------------------
# Multipart
MiB = 1024 * 1024


def test_multipart(s3, bucket):
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp", ContentType="text/x-mp", Metadata={"m": "1"})
    uid = up["UploadId"]
    assert up["Bucket"] == bucket and up["Key"] == "mp"
    listed = s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in listed] == [("mp", uid)]
    p1, p2 = os.urandom(5 * MiB), os.urandom(1024)
    e1 = s3.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=1, Body=p1)["ETag"]
    e2 = s3.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=2, Body=p2)["ETag"]
    assert e1 == f'"{md5hex(p1)}"' and e2 == f'"{md5hex(p2)}"'
    parts = s3.list_parts(Bucket=bucket, Key="mp", UploadId=uid)
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in parts["Parts"]] == [(1, e1, 5 * MiB), (2, e2, 1024)]
    assert parts["UploadId"] == uid
    parts = s3.list_parts(Bucket=bucket, Key="mp", UploadId=uid, MaxParts=1)
    assert parts["IsTruncated"] is True and parts["NextPartNumberMarker"] == 1
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="mp", UploadId=uid,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    want = '"' + hashlib.md5(hashlib.md5(p1).digest() + hashlib.md5(p2).digest()).hexdigest() + '-2"'
    assert done["ETag"] == want and done["Key"] == "mp" and done["Bucket"] == bucket
    g = s3.get_object(Bucket=bucket, Key="mp")
    assert g["ETag"] == want and g["ContentType"] == "text/x-mp" and g["Metadata"] == {"m": "1"}
    assert g["Body"].read() == p1 + p2
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    # part ranges with PartNumber
    g = s3.get_object(Bucket=bucket, Key="mp", PartNumber=2)
    assert g["Body"].read() == p2 and g["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert g["PartsCount"] == 2


def test_multipart_abort(s3, bucket):
    uid = s3.create_multipart_upload(Bucket=bucket, Key="ab")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="ab", UploadId=uid, PartNumber=1, Body=b"x" * 100)
    s3.abort_multipart_upload(Bucket=bucket, Key="ab", UploadId=uid)
    for call in (
        lambda: s3.upload_part(Bucket=bucket, Key="ab", UploadId=uid, PartNumber=2, Body=b"y"),
        lambda: s3.list_parts(Bucket=bucket, Key="ab", UploadId=uid),
        lambda: s3.complete_multipart_upload(Bucket=bucket, Key="ab", UploadId=uid,
                                             MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"x"'}]}),
    ):
        with pytest.raises(ClientError) as ei:
            call()
        assert err(ei) == ("NoSuchUpload", 404)
    with pytest.raises(ClientError) as ei:
        s3.head_object(Bucket=bucket, Key="ab")
    assert err(ei) == ("404", 404)


def test_multipart_errors(s3, bucket):
    uid = s3.create_multipart_upload(Bucket=bucket, Key="e")["UploadId"]
    big = os.urandom(5 * MiB)
    e1 = s3.upload_part(Bucket=bucket, Key="e", UploadId=uid, PartNumber=1, Body=big)["ETag"]
    e2 = s3.upload_part(Bucket=bucket, Key="e", UploadId=uid, PartNumber=2, Body=big)["ETag"]
    e3 = s3.upload_part(Bucket=bucket, Key="e", UploadId=uid, PartNumber=3, Body=b"small")["ETag"]
    e4 = s3.upload_part(Bucket=bucket, Key="e", UploadId=uid, PartNumber=4, Body=b"small")["ETag"]
    with pytest.raises(ClientError) as ei:  # non-last part under 5 MiB
        s3.complete_multipart_upload(Bucket=bucket, Key="e", UploadId=uid, MultipartUpload={
            "Parts": [{"PartNumber": 3, "ETag": e3}, {"PartNumber": 4, "ETag": e4}]})
    assert err(ei) == ("EntityTooSmall", 400)
    with pytest.raises(ClientError) as ei:
        s3.complete_multipart_upload(Bucket=bucket, Key="e", UploadId=uid, MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": '"00000000000000000000000000000000"'}]})
    assert err(ei) == ("InvalidPart", 400)
    with pytest.raises(ClientError) as ei:
        s3.complete_multipart_upload(Bucket=bucket, Key="e", UploadId=uid, MultipartUpload={
            "Parts": [{"PartNumber": 2, "ETag": e2}, {"PartNumber": 1, "ETag": e1}]})
    assert err(ei) == ("InvalidPartOrder", 400)
    # the last part may be small; parts left out of the list are dropped
    done = s3.complete_multipart_upload(Bucket=bucket, Key="e", UploadId=uid, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 3, "ETag": e3}]})
    assert done["ETag"].endswith('-2"')
    assert s3.get_object(Bucket=bucket, Key="e")["Body"].read() == big + b"small"
    with pytest.raises(ClientError) as ei:
        s3.upload_part(Bucket=bucket, Key="e", UploadId="not-an-upload", PartNumber=1, Body=b"x")
    assert err(ei) == ("NoSuchUpload", 404)


@pytest.mark.slow
def test_transfer_manager_20mib(s3, bucket, tmp_path):
    src = tmp_path / "big.bin"
    data = os.urandom(20 * MiB)
    src.write_bytes(data)
    cfg = TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB, max_concurrency=4)
    s3.upload_file(str(src), bucket, "big/file.bin", Config=cfg)
    h = s3.head_object(Bucket=bucket, Key="big/file.bin")
    assert h["ContentLength"] == 20 * MiB
    parts = [data[i:i + 8 * MiB] for i in range(0, len(data), 8 * MiB)]
    want = '"' + hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest() + f'-{len(parts)}"'
    assert h["ETag"] == want
    dst = tmp_path / "back.bin"
    s3.download_file(bucket, "big/file.bin", str(dst), Config=cfg)  # ranged GETs in parallel
    assert hashlib.sha256(dst.read_bytes()).digest() == hashlib.sha256(data).digest()


# ---------------------------------------------------------------------------------------
# Presigned URLs, waiters, virtual hosts
def test_presigned_get_put(s3, bucket):
    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "pre/signed.txt"}, ExpiresIn=300)
    req = urllib.request.Request(put_url, data=b"via presigned put", method="PUT")
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200
        assert r.headers["ETag"] == f'"{md5hex(b"via presigned put")}"'
    get_url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "pre/signed.txt"}, ExpiresIn=300)
    for _ in range(2):  # reusable
        with urllib.request.urlopen(get_url, timeout=10) as r:
            assert r.status == 200 and r.read() == b"via presigned put"
    missing = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "nope"}, ExpiresIn=300)
    with pytest.raises(urllib.error.HTTPError) as ei:
        urllib.request.urlopen(missing, timeout=10)
    assert ei.value.code == 404 and b"<Code>NoSuchKey</Code>" in ei.value.read()


def test_waiters(s3, make_client):
    name = unique("wait")
    fast = {"Delay": 1, "MaxAttempts": 5}
    s3.create_bucket(Bucket=name)
    try:
        s3.get_waiter("bucket_exists").wait(Bucket=name, WaiterConfig=fast)
        s3.put_object(Bucket=name, Key="k", Body=b"x")
        s3.get_waiter("object_exists").wait(Bucket=name, Key="k", WaiterConfig=fast)
        s3.delete_object(Bucket=name, Key="k")
        s3.get_waiter("object_not_exists").wait(Bucket=name, Key="k", WaiterConfig=fast)
    finally:
        s3.delete_bucket(Bucket=name)
    s3.get_waiter("bucket_not_exists").wait(Bucket=name, WaiterConfig=fast)


def _virtual_host_client(make_client, port, seen):
    c = make_client("s3", endpoint_url=f"http://localhost:{port}", s3={"addressing_style": "virtual"})

    def to_loopback(request, **kwargs):
        # <bucket>.localhost may not resolve here: connect to 127.0.0.1, keep the signed Host.
        parts = urllib.parse.urlsplit(request.url)
        request.headers["Host"] = parts.netloc
        seen.append(parts.netloc)
        request.url = urllib.parse.urlunsplit(parts._replace(netloc=f"127.0.0.1:{parts.port}"))

    c.meta.events.register_last("before-send.s3", to_loopback)
    return c


def test_virtual_host_style(make_client, server):
    seen = []
    vc = _virtual_host_client(make_client, server.port, seen)
    name = unique("vh")
    vc.create_bucket(Bucket=name)
    try:
        vc.put_object(Bucket=name, Key="dir/a b.txt", Body=b"virtual")
        assert vc.get_object(Bucket=name, Key="dir/a b.txt")["Body"].read() == b"virtual"
        assert [o["Key"] for o in vc.list_objects_v2(Bucket=name)["Contents"]] == ["dir/a b.txt"]
        vc.head_bucket(Bucket=name)
        # path-style sees the same data
        ps = make_client("s3")
        assert ps.get_object(Bucket=name, Key="dir/a b.txt")["Body"].read() == b"virtual"
        vc.delete_object(Bucket=name, Key="dir/a b.txt")
    finally:
        vc.delete_bucket(Bucket=name)
    assert any(h and h.startswith(f"{name}.localhost") for h in seen), seen


def test_object_tagging(s3, bucket):
    s3.put_object(Bucket=bucket, Key="t", Body=b"tagged", Tagging="a=1&b=two")
    tags = s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("a", "1"), ("b", "two")]
    assert s3.get_object(Bucket=bucket, Key="t")["TagCount"] == 2


def test_object_tagging_subresource(s3, bucket):
    s3.put_object(Bucket=bucket, Key="t", Body=b"data")
    assert "TagCount" not in s3.get_object(Bucket=bucket, Key="t")
    assert s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"] == []
    before = s3.head_object(Bucket=bucket, Key="t")
    s3.put_object_tagging(Bucket=bucket, Key="t", Tagging={"TagSet": [
        {"Key": "project", "Value": "basalt"}, {"Key": "tier", "Value": ""}]})
    assert s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"] == [
        {"Key": "project", "Value": "basalt"}, {"Key": "tier", "Value": ""}]
    after = s3.head_object(Bucket=bucket, Key="t")
    assert after["ETag"] == before["ETag"] and after["LastModified"] == before["LastModified"]
    assert s3.get_object(Bucket=bucket, Key="t")["Body"].read() == b"data"
    r = s3.delete_object_tagging(Bucket=bucket, Key="t")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"] == []
    # Copies keep the source's tags unless told to replace them; multipart uploads take them
    # at creation.
    s3.put_object(Bucket=bucket, Key="src", Body=b"x", Tagging="k=v")
    s3.copy_object(Bucket=bucket, Key="c1", CopySource={"Bucket": bucket, "Key": "src"})
    assert s3.get_object_tagging(Bucket=bucket, Key="c1")["TagSet"] == [{"Key": "k", "Value": "v"}]
    s3.copy_object(Bucket=bucket, Key="c2", CopySource={"Bucket": bucket, "Key": "src"},
                   TaggingDirective="REPLACE", Tagging="n=1")
    assert s3.get_object_tagging(Bucket=bucket, Key="c2")["TagSet"] == [{"Key": "n", "Value": "1"}]
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp", Tagging="m=p")
    part = s3.upload_part(Bucket=bucket, Key="mp", UploadId=up["UploadId"], PartNumber=1, Body=b"z")
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=up["UploadId"],
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    assert s3.get_object(Bucket=bucket, Key="mp")["TagCount"] == 1


def test_object_tagging_errors(s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.get_object_tagging(Bucket=bucket, Key="missing")
    assert e.value.response["Error"]["Code"] == "NoSuchKey"
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="t", Body=b"x", Tagging="a=1&a=2")
    assert e.value.response["Error"]["Code"] == "InvalidTag"
    s3.put_object(Bucket=bucket, Key="t", Body=b"x")
    with pytest.raises(ClientError) as e:
        s3.put_object_tagging(Bucket=bucket, Key="t", Tagging={"TagSet": [
            {"Key": f"k{i}", "Value": "v"} for i in range(11)]})
    assert e.value.response["Error"]["Code"] == "BadRequest"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
