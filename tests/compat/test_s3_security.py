"""S3's access control, encryption, object lock, lifecycle, CORS and access logging, against a
server with signature checks on and two accounts (issue 18).

Each feature is checked with boto3 as AWS documents it, error codes included; every response
goes through the shape checker. Encryption at rest is checked by reading the server's data
directory: no plaintext of an SSE-C object is anywhere in it.
"""
from __future__ import annotations

import base64
import hashlib
import http.client
import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from botocore import UNSIGNED
from botocore.exceptions import ClientError

from conftest import BasaltServer, make_client_factory, unique

MAIN = ("AKIAMAIN0000000000001", "main-secret", "000000000000")
ALT = ("AKIAALT00000000000002", "alt-secret", "111111111111")
KEY_A = base64.b64encode(b"A" * 32).decode()
KEY_B = base64.b64encode(b"B" * 32).decode()


def sse_c(key: str) -> dict:
    raw = base64.b64decode(key)
    return {
        "SSECustomerAlgorithm": "AES256",
        "SSECustomerKey": key,
        "SSECustomerKeyMD5": base64.b64encode(hashlib.md5(raw).digest()).decode(),
    }


@pytest.fixture(scope="module")
def server():
    s = BasaltServer(
        [
            "--auth", "sigv4",
            "--access-key", ":".join(MAIN),
            "--access-key", ":".join(ALT),
        ],
        name="basalt-s3sec",
        env={"BASALT_S3_LIFECYCLE_DAY_SECS": "2", "BASALT_S3_LOG_WINDOW_SECS": "1"},
    )
    s.start()
    yield s
    panics = s.panics()
    s.close()
    assert not panics, "server panicked:\n" + "\n".join(panics)


@pytest.fixture(scope="module")
def clients(server, shape_checker):
    make = make_client_factory(shape_checker, server.endpoint)
    main = make("s3", key=MAIN[0], secret=MAIN[1])
    alt = make("s3", key=ALT[0], secret=ALT[1])
    anon = make("s3", signature_version=UNSIGNED)
    return main, alt, anon


def err(ei):
    return ei.value.response["Error"]["Code"], ei.value.response["ResponseMetadata"]["HTTPStatusCode"]


def new_bucket(s3, **kw):
    name = unique("sec")
    s3.create_bucket(Bucket=name, **kw)
    return name


# ---------------------------------------------------------------------------------------------
# Encryption


def test_sse_c_is_encrypted_at_rest_and_needs_its_key(server, clients):
    main, _, _ = clients
    b = new_bucket(main)
    marker = b"PLAINTEXT-MARKER-0123456789-"
    big = marker * 8000  # ~220 KiB: kept in a blob file
    small = marker * 10  # inline in the state store's record
    main.put_object(Bucket=b, Key="big", Body=big, **sse_c(KEY_A))
    r = main.put_object(Bucket=b, Key="small", Body=small, **sse_c(KEY_A))
    assert r["SSECustomerAlgorithm"] == "AES256"
    time.sleep(0.5)
    for f in Path(server.data_dir).rglob("*"):
        if f.is_file():
            assert marker not in f.read_bytes(), f"plaintext found in {f}"
            assert base64.b64decode(KEY_A) not in f.read_bytes(), f"customer key found in {f}"
    got = main.get_object(Bucket=b, Key="big", **sse_c(KEY_A))
    assert got["Body"].read() == big
    ranged = main.get_object(Bucket=b, Key="big", Range="bytes=65530-65560", **sse_c(KEY_A))
    assert ranged["Body"].read() == big[65530:65561]
    with pytest.raises(ClientError) as ei:
        main.get_object(Bucket=b, Key="big")
    assert err(ei) == ("InvalidRequest", 400)
    with pytest.raises(ClientError) as ei:
        main.get_object(Bucket=b, Key="big", **sse_c(KEY_B))
    assert err(ei) == ("InvalidArgument", 400)
    bad = sse_c(KEY_A) | {"SSECustomerKeyMD5": base64.b64encode(b"x" * 16).decode()}
    with pytest.raises(ClientError) as ei:
        main.put_object(Bucket=b, Key="x", Body=b"1", **bad)
    assert err(ei) == ("InvalidArgument", 400)


def test_sse_s3_kms_and_bucket_default(clients):
    main, _, _ = clients
    b = new_bucket(main)
    r = main.put_object(Bucket=b, Key="s3", Body=b"x" * 100, ServerSideEncryption="AES256")
    assert r["ServerSideEncryption"] == "AES256"
    assert main.head_object(Bucket=b, Key="s3")["ServerSideEncryption"] == "AES256"
    arn = "arn:aws:kms:us-east-1:000000000000:key/k1"
    r = main.put_object(Bucket=b, Key="kms", Body=b"y", ServerSideEncryption="aws:kms", SSEKMSKeyId=arn)
    assert r["SSEKMSKeyId"] == arn
    assert main.get_object(Bucket=b, Key="kms")["Body"].read() == b"y"
    with pytest.raises(ClientError) as ei:
        main.get_bucket_encryption(Bucket=b)
    assert err(ei) == ("ServerSideEncryptionConfigurationNotFoundError", 404)
    main.put_bucket_encryption(
        Bucket=b,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    r = main.put_object(Bucket=b, Key="default", Body=b"z")
    assert r["ServerSideEncryption"] == "AES256"
    # Copies re-encrypt: SSE-C source to an SSE-KMS destination.
    main.put_object(Bucket=b, Key="c", Body=b"secret", **sse_c(KEY_A))
    src = {f"CopySource{k}": v for k, v in sse_c(KEY_A).items()}
    main.copy_object(Bucket=b, Key="c2", CopySource={"Bucket": b, "Key": "c"},
                     ServerSideEncryption="aws:kms", SSEKMSKeyId=arn, **src)
    got = main.get_object(Bucket=b, Key="c2")
    assert got["ServerSideEncryption"] == "aws:kms" and got["Body"].read() == b"secret"
    with pytest.raises(ClientError) as ei:
        main.put_object(Bucket=b, Key="bad", Body=b"1", ServerSideEncryption="AES256", **sse_c(KEY_A))
    assert err(ei) == ("InvalidArgument", 400)


def test_upload_part_copy_ranges_and_encryption(clients):
    main, _, _ = clients
    b = new_bucket(main)
    data = bytes(range(256)) * 40_000  # 10 MiB
    main.put_object(Bucket=b, Key="src", Body=data, ServerSideEncryption="AES256")
    up = main.create_multipart_upload(Bucket=b, Key="dst", **sse_c(KEY_B))
    parts = []
    for n, (lo, hi) in enumerate([(0, 5 * 2**20 - 1), (5 * 2**20, len(data) - 1)], start=1):
        r = main.upload_part_copy(Bucket=b, Key="dst", UploadId=up["UploadId"], PartNumber=n,
                                  CopySource={"Bucket": b, "Key": "src"},
                                  CopySourceRange=f"bytes={lo}-{hi}", **sse_c(KEY_B))
        parts.append({"ETag": r["CopyPartResult"]["ETag"], "PartNumber": n})
    with pytest.raises(ClientError) as ei:
        main.upload_part_copy(Bucket=b, Key="dst", UploadId=up["UploadId"], PartNumber=3,
                              CopySource={"Bucket": b, "Key": "src"},
                              CopySourceRange="bytes=0-99999999", **sse_c(KEY_B))
    assert err(ei)[0] == "InvalidRange"
    done = main.complete_multipart_upload(Bucket=b, Key="dst", UploadId=up["UploadId"],
                                          MultipartUpload={"Parts": parts}, **sse_c(KEY_B))
    # A retried completion answers as the first did.
    again = main.complete_multipart_upload(Bucket=b, Key="dst", UploadId=up["UploadId"],
                                           MultipartUpload={"Parts": parts}, **sse_c(KEY_B))
    assert again["ETag"] == done["ETag"]
    got = main.get_object(Bucket=b, Key="dst", **sse_c(KEY_B))
    assert got["Body"].read() == data
    attrs = main.get_object_attributes(Bucket=b, Key="dst", ObjectAttributes=["ObjectParts", "ObjectSize", "ETag"],
                                       **sse_c(KEY_B))
    assert attrs["ObjectSize"] == len(data) and attrs["ObjectParts"]["TotalPartsCount"] == 2
    assert attrs["ETag"] == done["ETag"].strip('"')


# ---------------------------------------------------------------------------------------------
# Access control


def test_private_by_default_and_acls(server, clients):
    main, alt, anon = clients
    b = new_bucket(main)
    main.put_object(Bucket=b, Key="k", Body=b"v")
    for c in (alt, anon):
        with pytest.raises(ClientError) as ei:
            c.get_object(Bucket=b, Key="k")
        assert err(ei) == ("AccessDenied", 403)
    # A raw unsigned GET, as a browser would send it.
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", f"/{b}/k")
    assert conn.getresponse().status == 403
    main.put_object_acl(Bucket=b, Key="k", ACL="public-read")
    assert anon.get_object(Bucket=b, Key="k")["Body"].read() == b"v"
    acl = main.get_object_acl(Bucket=b, Key="k")
    assert {g["Permission"] for g in acl["Grants"]} == {"READ", "FULL_CONTROL"}
    alt_id = alt.list_buckets()["Owner"]["ID"]
    main.put_bucket_acl(Bucket=b, GrantRead=f'id="{alt_id}"')
    assert [o["Key"] for o in alt.list_objects_v2(Bucket=b)["Contents"]] == ["k"]
    with pytest.raises(ClientError) as ei:
        main.put_bucket_acl(Bucket=b, GrantRead='id="' + "0" * 64 + '"')
    assert err(ei) == ("InvalidArgument", 400)
    # Buckets are global; another account's name is taken.
    with pytest.raises(ClientError) as ei:
        alt.create_bucket(Bucket=b)
    assert err(ei) == ("BucketAlreadyExists", 409)
    assert b not in [x["Name"] for x in alt.list_buckets()["Buckets"]]


def test_bucket_owner_enforced_disables_acls(clients):
    main, _, _ = clients
    b = new_bucket(main, ObjectOwnership="BucketOwnerEnforced")
    main.put_object(Bucket=b, Key="ok", Body=b"1", ACL="bucket-owner-full-control")
    with pytest.raises(ClientError) as ei:
        main.put_object(Bucket=b, Key="no", Body=b"1", ACL="public-read")
    assert err(ei) == ("AccessControlListNotSupported", 400)
    rules = main.get_bucket_ownership_controls(Bucket=b)["OwnershipControls"]["Rules"]
    assert rules == [{"ObjectOwnership": "BucketOwnerEnforced"}]


def test_bucket_policy_allow_deny_and_public_access_block(clients):
    main, alt, anon = clients
    b = new_bucket(main)
    main.put_object(Bucket=b, Key="pub/a", Body=b"a")
    main.put_object(Bucket=b, Key="priv/b", Body=b"b")
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ALT[2]}:root"},
             "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{b}/*"},
            {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject",
             "Resource": f"arn:aws:s3:::{b}/priv/*"},
        ],
    }
    main.put_bucket_policy(Bucket=b, Policy=json.dumps(policy))
    assert alt.get_object(Bucket=b, Key="pub/a")["Body"].read() == b"a"
    for c in (alt, main):  # an explicit deny binds the owner too
        with pytest.raises(ClientError) as ei:
            c.get_object(Bucket=b, Key="priv/b")
        assert err(ei) == ("AccessDenied", 403)
    with pytest.raises(ClientError) as ei:
        anon.get_object(Bucket=b, Key="pub/a")
    assert err(ei) == ("AccessDenied", 403)
    assert json.loads(main.get_bucket_policy(Bucket=b)["Policy"]) == policy
    assert main.get_bucket_policy_status(Bucket=b)["PolicyStatus"]["IsPublic"] is False
    with pytest.raises(ClientError) as ei:
        main.put_bucket_policy(Bucket=b, Policy='{"Statement": []')
    assert err(ei) == ("MalformedPolicy", 400)
    main.put_public_access_block(Bucket=b, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True,
        "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    with pytest.raises(ClientError) as ei:
        main.put_object_acl(Bucket=b, Key="pub/a", ACL="public-read")
    assert err(ei) == ("AccessDenied", 403)
    public = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*",
              "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{b}/*"}]}
    with pytest.raises(ClientError) as ei:
        main.put_bucket_policy(Bucket=b, Policy=json.dumps(public))
    assert err(ei) == ("AccessDenied", 403)
    main.delete_public_access_block(Bucket=b)
    with pytest.raises(ClientError) as ei:
        main.get_public_access_block(Bucket=b)
    assert err(ei) == ("NoSuchPublicAccessBlockConfiguration", 404)


# ---------------------------------------------------------------------------------------------
# Object lock


def test_object_lock_retention_and_legal_hold(clients):
    main, _, _ = clients
    b = new_bucket(main, ObjectLockEnabledForBucket=True)
    assert main.get_bucket_versioning(Bucket=b)["Status"] == "Enabled"
    with pytest.raises(ClientError) as ei:
        main.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Suspended"})
    assert err(ei) == ("InvalidBucketState", 409)
    until = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=1)
    v = main.put_object(Bucket=b, Key="k", Body=b"1", ObjectLockMode="GOVERNANCE",
                        ObjectLockRetainUntilDate=until)["VersionId"]
    head = main.head_object(Bucket=b, Key="k")
    assert head["ObjectLockMode"] == "GOVERNANCE" and head["ObjectLockRetainUntilDate"] == until
    with pytest.raises(ClientError) as ei:
        main.delete_object(Bucket=b, Key="k", VersionId=v)
    assert err(ei) == ("AccessDenied", 403)
    with pytest.raises(ClientError) as ei:
        main.put_object_retention(Bucket=b, Key="k", Retention={"Mode": "GOVERNANCE",
                                  "RetainUntilDate": until - timedelta(hours=1)})
    assert err(ei) == ("AccessDenied", 403)
    main.put_object_legal_hold(Bucket=b, Key="k", LegalHold={"Status": "ON"})
    with pytest.raises(ClientError) as ei:
        main.delete_object(Bucket=b, Key="k", VersionId=v, BypassGovernanceRetention=True)
    assert err(ei) == ("AccessDenied", 403)
    main.put_object_legal_hold(Bucket=b, Key="k", LegalHold={"Status": "OFF"})
    main.delete_object(Bucket=b, Key="k", VersionId=v, BypassGovernanceRetention=True)
    with pytest.raises(ClientError) as ei:
        main.put_object_lock_configuration(Bucket=b, ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 0}}})
    assert err(ei) == ("InvalidRetentionPeriod", 400)
    plain = new_bucket(main)
    with pytest.raises(ClientError) as ei:
        main.put_object_lock_configuration(Bucket=plain, ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}})
    assert err(ei) == ("InvalidBucketState", 409)


# ---------------------------------------------------------------------------------------------
# Lifecycle, CORS, logging, conditional writes


def test_lifecycle_expires_objects(clients):
    main, _, _ = clients
    b = new_bucket(main)
    main.put_bucket_lifecycle_configuration(Bucket=b, LifecycleConfiguration={"Rules": [
        {"ID": "tmp", "Filter": {"Prefix": "tmp/"}, "Status": "Enabled", "Expiration": {"Days": 1}},
    ]})
    r = main.put_object(Bucket=b, Key="tmp/x", Body=b"1")
    assert 'rule-id="tmp"' in r["Expiration"]
    main.put_object(Bucket=b, Key="keep/y", Body=b"1")
    # A lifecycle day lasts 2 s on this server (BASALT_S3_LIFECYCLE_DAY_SECS).
    deadline = time.time() + 20
    keys = None
    while time.time() < deadline:
        keys = [o["Key"] for o in main.list_objects_v2(Bucket=b).get("Contents", [])]
        if keys == ["keep/y"]:
            break
        time.sleep(0.5)
    assert keys == ["keep/y"]
    with pytest.raises(ClientError) as ei:
        main.put_bucket_lifecycle_configuration(Bucket=b, LifecycleConfiguration={"Rules": [
            {"ID": "a", "Filter": {}, "Status": "Enabled", "Expiration": {"Days": 1}},
            {"ID": "a", "Filter": {}, "Status": "Enabled", "Expiration": {"Days": 2}}]})
    assert err(ei) == ("InvalidArgument", 400)


def test_cors_preflight_and_headers(server, clients):
    main, _, _ = clients
    b = new_bucket(main)
    main.put_bucket_cors(Bucket=b, CORSConfiguration={"CORSRules": [
        {"AllowedMethods": ["GET"], "AllowedOrigins": ["https://*.example.com"],
         "AllowedHeaders": ["x-amz-*"], "MaxAgeSeconds": 60}]})
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("OPTIONS", f"/{b}/k", headers={
        "Origin": "https://app.example.com", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "x-amz-date"})
    r = conn.getresponse()
    r.read()
    assert r.status == 200
    assert r.getheader("Access-Control-Allow-Origin") == "https://app.example.com"
    assert r.getheader("Access-Control-Max-Age") == "60"
    conn.request("OPTIONS", f"/{b}/k", headers={
        "Origin": "https://evil.test", "Access-Control-Request-Method": "GET"})
    r = conn.getresponse()
    r.read()
    assert r.status == 403


def test_access_logs_are_delivered(clients):
    main, _, _ = clients
    src, logs = new_bucket(main), new_bucket(main)
    main.put_bucket_logging(Bucket=src, BucketLoggingStatus={
        "LoggingEnabled": {"TargetBucket": logs, "TargetPrefix": "access/"}})
    assert main.get_bucket_logging(Bucket=src)["LoggingEnabled"]["TargetBucket"] == logs
    time.sleep(5.5)  # the front caches a bucket's logging setting for a few seconds
    main.put_object(Bucket=src, Key="logged", Body=b"1")
    deadline = time.time() + 20
    found = []
    while time.time() < deadline and not found:
        found = main.list_objects_v2(Bucket=logs, Prefix="access/").get("Contents", [])
        time.sleep(0.5)
    assert found, "no access log object delivered"
    text = b"".join(main.get_object(Bucket=logs, Key=o["Key"])["Body"].read() for o in found).decode()
    line = next(l for l in text.splitlines() if "REST.PUT.OBJECT" in l)
    fields = line.split(" ")
    assert fields[1] == src and fields[8] == "logged" and " 200 " in line


def test_conditional_writes(clients):
    main, _, _ = clients
    b = new_bucket(main)
    etag = main.put_object(Bucket=b, Key="k", Body=b"1", IfNoneMatch="*")["ETag"]
    with pytest.raises(ClientError) as ei:
        main.put_object(Bucket=b, Key="k", Body=b"2", IfNoneMatch="*")
    assert err(ei) == ("PreconditionFailed", 412)
    with pytest.raises(ClientError) as ei:
        main.put_object(Bucket=b, Key="k", Body=b"2", IfMatch='"0123"')
    assert err(ei) == ("PreconditionFailed", 412)
    main.put_object(Bucket=b, Key="k", Body=b"2", IfMatch=etag)
    with pytest.raises(ClientError) as ei:
        main.put_object(Bucket=b, Key="absent", Body=b"2", IfMatch="*")
    assert err(ei) == ("NoSuchKey", 404)


def test_website_endpoint(server, clients):
    main, _, _ = clients
    # A public-read bucket: anyone may list it, so a missing page is 404 (else 403).
    b = new_bucket(main, ACL="public-read")
    main.put_object(Bucket=b, Key="index.html", Body=b"<h1>home</h1>", ContentType="text/html", ACL="public-read")
    main.put_object(Bucket=b, Key="docs/index.html", Body=b"docs", ACL="public-read")
    main.put_object(Bucket=b, Key="404.html", Body=b"missing", ACL="public-read")
    main.put_object(Bucket=b, Key="private.html", Body=b"secret")
    main.put_bucket_website(Bucket=b, WebsiteConfiguration={
        "IndexDocument": {"Suffix": "index.html"},
        "ErrorDocument": {"Key": "404.html"},
        "RoutingRules": [{"Condition": {"KeyPrefixEquals": "old/"},
                          "Redirect": {"ReplaceKeyPrefixWith": "docs/"}}],
    })
    assert main.get_bucket_website(Bucket=b)["IndexDocument"] == {"Suffix": "index.html"}
    host = f"{b}.s3-website.localhost:{server.port}"

    def get(path):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        conn.request("GET", path, headers={"Host": host})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()

    assert get("/")[::2] == (200, b"<h1>home</h1>")
    assert get("/docs/")[::2] == (200, b"docs")
    status, headers, _ = get("/docs")
    assert status == 302 and headers["location"] == "/docs/"
    status, headers, _ = get("/old/page.html")
    assert status == 301 and headers["location"].endswith("/docs/page.html")
    assert get("/nope.html")[::2] == (404, b"missing")
    # Only what the bucket makes public is served.
    assert get("/private.html")[::2] == (403, b"missing")
    main.delete_bucket_website(Bucket=b)
    status, _, body = get("/")
    assert status == 404 and b"NoSuchWebsiteConfiguration" in body


def test_bucket_tagging_and_full_object_checksums(clients):
    main, _, _ = clients
    b = new_bucket(main)
    with pytest.raises(ClientError) as ei:
        main.get_bucket_tagging(Bucket=b)
    assert err(ei) == ("NoSuchTagSet", 404)
    main.put_bucket_tagging(Bucket=b, Tagging={"TagSet": [{"Key": "team", "Value": "ml"}]})
    assert main.get_bucket_tagging(Bucket=b)["TagSet"] == [{"Key": "team", "Value": "ml"}]
    # A multipart upload with a full-object CRC32: the parts' CRCs combine into the object's.
    import zlib
    parts_data = [b"a" * (5 * 2**20), b"b" * 1000]
    up = main.create_multipart_upload(Bucket=b, Key="k", ChecksumAlgorithm="CRC32", ChecksumType="FULL_OBJECT")
    parts = []
    for n, data in enumerate(parts_data, start=1):
        r = main.upload_part(Bucket=b, Key="k", UploadId=up["UploadId"], PartNumber=n, Body=data,
                             ChecksumAlgorithm="CRC32")
        parts.append({"ETag": r["ETag"], "PartNumber": n, "ChecksumCRC32": r["ChecksumCRC32"]})
    whole = base64.b64encode(zlib.crc32(b"".join(parts_data)).to_bytes(4, "big")).decode()
    with pytest.raises(ClientError) as ei:
        main.complete_multipart_upload(Bucket=b, Key="k", UploadId=up["UploadId"],
                                       MultipartUpload={"Parts": parts}, ChecksumCRC32="AAAAAA==")
    assert err(ei) == ("BadDigest", 400)
    done = main.complete_multipart_upload(Bucket=b, Key="k", UploadId=up["UploadId"],
                                          MultipartUpload={"Parts": parts}, ChecksumCRC32=whole)
    assert done["ChecksumCRC32"] == whole and done["ChecksumType"] == "FULL_OBJECT"
    head = main.head_object(Bucket=b, Key="k", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == whole


def test_post_object_policy_conditions(server, clients):
    import hmac
    import urllib.request
    main, _, _ = clients
    b = new_bucket(main)
    expires = (datetime.now(timezone.utc) + timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    policy = base64.b64encode(json.dumps({"expiration": expires, "conditions": [
        {"bucket": b}, ["starts-with", "$key", "uploads/"], ["content-length-range", 0, 1024]]}).encode())
    signature = base64.b64encode(hmac.new(MAIN[1].encode(), policy, hashlib.sha1).digest())

    def post(key):
        boundary = "----basalt"
        fields = [("key", key), ("AWSAccessKeyId", MAIN[0]), ("policy", policy.decode()),
                  ("signature", signature.decode())]
        body = b"".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
            for k, v in fields
        ) + (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="f.txt"\r\n'
             f"Content-Type: text/plain\r\n\r\nhello\r\n--{boundary}--\r\n").encode()
        req = urllib.request.Request(f"{server.endpoint}/{b}", data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    assert post("uploads/a.txt")[0] == 204
    assert main.get_object(Bucket=b, Key="uploads/a.txt")["Body"].read() == b"hello"
    status, body = post("elsewhere/a.txt")
    assert status == 403 and b"<Code>AccessDenied</Code>" in body


def test_no_way_around_the_access_check(clients):
    main, alt, anon = clients
    b = new_bucket(main, ACL="public-read")  # anyone may list, objects stay private
    main.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    v1 = main.put_object(Bucket=b, Key="k", Body=b"secret")["VersionId"]
    # A malformed Range is ignored as S3 ignores it, not the access check with it.
    with pytest.raises(ClientError) as ei:
        alt.get_object(Bucket=b, Key="k", Range="bytes=abc")
    assert err(ei) == ("AccessDenied", 403)
    assert main.get_object(Bucket=b, Key="k", Range="bytes=abc")["Body"].read() == b"secret"
    # An older version is decided by its own ACL, also behind a delete marker.
    main.delete_object(Bucket=b, Key="k")
    for call in (
        lambda: anon.get_object(Bucket=b, Key="k", VersionId=v1),
        lambda: anon.put_object_acl(Bucket=b, Key="k", VersionId=v1, ACL="public-read"),
    ):
        with pytest.raises(ClientError) as ei:
            call()
        assert err(ei)[1] == 403
    # DeleteObjects is decided key by key: a policy on some keys binds it too.
    v2 = main.put_object(Bucket=b, Key="protected/x", Body=b"1")["VersionId"]
    main.put_bucket_policy(Bucket=b, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObjectVersion",
         "Resource": f"arn:aws:s3:::{b}/protected/*"}]}))
    main.put_object(Bucket=b, Key="free", Body=b"1")
    r = main.delete_objects(Bucket=b, Delete={"Objects": [
        {"Key": "protected/x", "VersionId": v2}, {"Key": "free"}]})
    assert [(e["Key"], e["Code"]) for e in r["Errors"]] == [("protected/x", "AccessDenied")]
    assert [d["Key"] for d in r["Deleted"]] == ["free"]
    assert main.get_object(Bucket=b, Key="protected/x", VersionId=v2)["Body"].read() == b"1"
    # Object Lock headers need more than WRITE on the bucket.
    lb = new_bucket(main, ObjectLockEnabledForBucket=True)
    alt_id = alt.list_buckets()["Owner"]["ID"]
    main.put_bucket_acl(Bucket=lb, GrantWrite=f'id="{alt_id}"')
    alt.put_object(Bucket=lb, Key="plain", Body=b"1")
    until = datetime.now(timezone.utc) + timedelta(days=365 * 50)
    with pytest.raises(ClientError) as ei:
        alt.put_object(Bucket=lb, Key="locked", Body=b"1", ObjectLockMode="COMPLIANCE",
                       ObjectLockRetainUntilDate=until)
    assert err(ei) == ("AccessDenied", 403)
