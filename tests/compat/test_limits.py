"""Request size limits: header sections and bodies, answered with each protocol's AWS error.

S3 refuses a header section over 8 KiB (400 RequestHeaderSectionTooLarge, MaxSizeAllowed 8192)
and user metadata over 2 KiB (400 MetadataTooLarge); the model-driven services refuse a header
section over 16 KiB (400 RequestHeaderSectionTooLarge in their protocol's error format) and
bodies over their protocol's cap (413: 16 MiB for awsQuery forms, 64 MiB otherwise, with the
service's own modeled error where it has one, such as Lambda's RequestTooLargeException).
"""
from __future__ import annotations

import http.client
import json
import socket
import threading
import urllib.request

import pytest
from botocore.exceptions import ClientError

S3_MAX_HEADER_SECTION = 8192
SERVICE_MAX_HEADER_SECTION = 16 * 1024
QUERY_MAX_BODY = 16 * 1024 * 1024
MAX_BODY = 64 * 1024 * 1024
# Fake credentials: the shared server runs with auth off and routes by the credential scope.
AUTH = "AWS4-HMAC-SHA256 Credential=test/20240101/us-east-1/{svc}/aws4_request, SignedHeaders=host, Signature=00"


def raw(server, head: bytes, body: bytes = b"", timeout=30):
    """Sends `head` (request line and headers, without the final CRLF) and `body` on a fresh
    connection; returns (status, headers, body) of the answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as s:
        def send():
            try:
                s.sendall(head + b"\r\n" + body)
            except OSError:
                pass  # the server answered early and closed (an oversized body is not read)
        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        f = s.makefile("rb")
        status = int(f.readline().split()[1])
        headers = {}
        while True:
            line = f.readline().rstrip(b"\r\n")
            if not line:
                break
            k, _, v = line.decode("latin-1").partition(":")
            headers[k.strip().lower()] = v.strip()
        if "content-length" in headers:
            data = f.read(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            data = b""
            while True:
                n = int(f.readline().split(b";")[0], 16)
                if n == 0:
                    break
                data += f.read(n)
                f.readline()
        else:
            data = b""
        return status, headers, data


def head_for(server, method, path, headers):
    """A request head with `Host` first; `headers` as (name, value) pairs."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{server.port}"]
    lines += [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n").encode("latin-1")


def section_size(server, headers):
    """The header section's size as the server counts it: `name: value\\r\\n` per field."""
    host = f"127.0.0.1:{server.port}"
    return len("host") + len(host) + 4 + sum(len(k) + len(v) + 4 for k, v in headers)


def padded(server, extra, total):
    """`extra` headers plus an `x-pad` header bringing the section to `total` bytes."""
    fixed = section_size(server, extra) + len("x-pad") + 4
    return [*extra, ("x-pad", "p" * (total - fixed))]


def with_header(client, name, value):
    """Adds a header to every request `client` sends (after signing, like a proxy would)."""
    def add(request, **_):
        request.headers[name] = value
    client.meta.events.register("before-send.*.*", add)
    return client


# ---------------------------------------------------------------------------------------------
# S3


def test_s3_200kb_header_is_refused(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    status, h, body = raw(server, head_for(server, "GET", f"/{bucket}/k", [("x-big", "a" * 200 * 1024)]))
    assert status == 400, body
    assert b"<Code>RequestHeaderSectionTooLarge</Code>" in body, body
    assert b"<Message>Your request header section exceeds the maximum allowed size.</Message>" in body
    assert b"<MaxSizeAllowed>8192</MaxSizeAllowed>" in body
    assert b"<RequestId>" in body and h.get("x-amz-request-id")
    assert h["content-type"] == "application/xml"


def test_s3_header_section_boundary(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    at_limit = padded(server, [], S3_MAX_HEADER_SECTION)
    assert section_size(server, at_limit) == S3_MAX_HEADER_SECTION
    status, _, body = raw(server, head_for(server, "GET", f"/{bucket}/k", at_limit))
    assert (status, body) == (200, b"v")
    over = padded(server, [], S3_MAX_HEADER_SECTION + 1)
    status, _, body = raw(server, head_for(server, "GET", f"/{bucket}/k", over))
    assert status == 400 and b"RequestHeaderSectionTooLarge" in body, body


def test_s3_header_too_large_through_boto3(make_client, bucket):
    c = with_header(make_client("s3", check=False), "x-big", "a" * 9000)
    with pytest.raises(ClientError) as ei:
        c.head_bucket(Bucket=bucket)
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as ei:
        c.list_objects_v2(Bucket=bucket)
    assert ei.value.response["Error"]["Code"] == "RequestHeaderSectionTooLarge"
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_s3_put_too_large_header_stores_nothing(s3, make_client, bucket):
    c = with_header(make_client("s3", check=False), "x-big", "a" * 9000)
    with pytest.raises(ClientError) as ei:
        c.put_object(Bucket=bucket, Key="nope", Body=b"x" * 1000)
    assert ei.value.response["Error"]["Code"] == "RequestHeaderSectionTooLarge"
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_s3_user_metadata_limit(s3, bucket):
    ok = {"k": "v" * 2047}  # 1 + 2047 bytes: exactly 2 KiB
    s3.put_object(Bucket=bucket, Key="ok", Body=b"v", Metadata=ok)
    assert s3.head_object(Bucket=bucket, Key="ok")["Metadata"] == ok
    for call in (
        lambda md: s3.put_object(Bucket=bucket, Key="big", Body=b"v", Metadata=md),
        lambda md: s3.create_multipart_upload(Bucket=bucket, Key="big", Metadata=md),
        lambda md: s3.copy_object(Bucket=bucket, Key="big", CopySource={"Bucket": bucket, "Key": "ok"},
                                  Metadata=md, MetadataDirective="REPLACE"),
    ):
        with pytest.raises(ClientError) as ei:
            call({"kk": "v" * 2047})
        assert ei.value.response["Error"]["Code"] == "MetadataTooLarge"
        assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["ok"]
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_s3_many_metadata_headers(s3, bucket, monkeypatch):
    # 200 metadata fields (1 KiB of metadata, ~8 KiB of headers) is a legal S3 PUT: more fields
    # than HTTP servers parse by default (hyper: 100) must still be read.
    monkeypatch.setattr(http.client, "_MAXHEADERS", 1000)  # the client's own limit on replies
    md = {f"m{i:03d}": "v" for i in range(200)}
    s3.put_object(Bucket=bucket, Key="many", Body=b"v", Metadata=md)
    assert s3.head_object(Bucket=bucket, Key="many")["Metadata"] == md


def test_s3_large_streamed_body_is_not_capped(s3, bucket):
    # S3 bodies stream (up to 5 GiB per PUT); the model-driven services' body caps do not apply.
    data = b"z" * (MAX_BODY + 1024)
    s3.put_object(Bucket=bucket, Key="big", Body=data)
    assert s3.head_object(Bucket=bucket, Key="big")["ContentLength"] == len(data)


def test_s3_object_over_5gib_is_refused(server, bucket):
    # Declared length over S3's single-PUT maximum: refused before any byte of the body is read.
    head = head_for(server, "PUT", f"/{bucket}/huge", [("Content-Length", str(5 * 1024**3 + 1))])
    status, _, body = raw(server, head)
    assert status == 400 and b"<Code>EntityTooLarge</Code>" in body, body


# ---------------------------------------------------------------------------------------------
# Model-driven services


def test_query_protocol_header_too_large(server, make_client):
    sts = with_header(make_client("sts", check=False), "x-big", "a" * 200 * 1024)
    with pytest.raises(ClientError) as ei:
        sts.get_caller_identity()
    err = ei.value.response
    assert err["Error"]["Code"] == "RequestHeaderSectionTooLarge"
    assert err["Error"]["Message"] == "Your request header section exceeds the maximum allowed size."
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 400
    # awsQuery's error document
    status, _, body = raw(server, head_for(server, "POST", "/", [
        ("Authorization", AUTH.format(svc="sts")),
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Content-Length", "43"), ("x-big", "a" * 20000),
    ]), b"Action=GetCallerIdentity&Version=2011-06-15")
    assert status == 400
    assert b"<ErrorResponse" in body and b"<Code>RequestHeaderSectionTooLarge</Code>" in body, body


def test_header_section_within_service_limit_is_served(make_client):
    # 12 KiB of headers: over S3's limit, within the model-driven services' 16 KiB.
    sts = with_header(make_client("sts"), "x-big", "a" * 12 * 1024)
    assert sts.get_caller_identity()["Account"]


def test_service_header_section_boundary(server):
    def call(total):
        extra = [("Authorization", AUTH.format(svc="sts")),
                 ("Content-Type", "application/x-www-form-urlencoded"), ("Content-Length", "43")]
        hs = padded(server, extra, total)
        assert section_size(server, hs) == total
        return raw(server, head_for(server, "POST", "/", hs), b"Action=GetCallerIdentity&Version=2011-06-15")
    status, _, body = call(SERVICE_MAX_HEADER_SECTION)
    assert status == 200, body
    status, _, body = call(SERVICE_MAX_HEADER_SECTION + 1)
    assert status == 400 and b"RequestHeaderSectionTooLarge" in body, body


def test_json_protocol_header_too_large(server):
    status, h, body = raw(server, head_for(server, "POST", "/", [
        ("X-Amz-Target", "DynamoDB_20120810.ListTables"),
        ("Content-Type", "application/x-amz-json-1.0"),
        ("Content-Length", "2"), ("x-big", "a" * 200 * 1024),
    ]), b"{}")
    assert status == 400, body
    doc = json.loads(body)
    assert doc["__type"].split("#")[-1] == "RequestHeaderSectionTooLarge"
    assert doc["message"] == "Your request header section exceeds the maximum allowed size."
    assert h.get("x-amzn-requestid")


def test_rest_json_header_too_large(server):
    status, h, body = raw(server, head_for(server, "GET", "/foundation-models", [
        ("Authorization", AUTH.format(svc="bedrock")), ("x-big", "a" * 200 * 1024),
    ]))
    assert status == 400, body
    assert h.get("x-amzn-errortype", "").startswith("RequestHeaderSectionTooLarge"), h


def test_query_body_too_large(server):
    # Declared too large: refused before the body is read.
    status, _, body = raw(server, head_for(server, "POST", "/", [
        ("Authorization", AUTH.format(svc="sts")),
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Content-Length", str(QUERY_MAX_BODY + 1)),
    ]))
    assert status == 413, body
    assert b"<ErrorResponse" in body and b"<Code>RequestEntityTooLarge</Code>" in body, body
    # Chunked, without a length: refused once the cap is passed.
    chunk = b"a" * (1024 * 1024)
    payload = b"Action=GetCallerIdentity&Version=2011-06-15&Pad="
    body_chunks = b"%x\r\n%s\r\n" % (len(payload), payload)
    body_chunks += b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(17))
    body_chunks += b"0\r\n\r\n"
    status, _, body = raw(server, head_for(server, "POST", "/", [
        ("Authorization", AUTH.format(svc="sts")),
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Transfer-Encoding", "chunked"),
    ]), body_chunks)
    assert status == 413 and b"RequestEntityTooLarge" in body, body


def test_query_body_within_cap_is_read(server):
    # 1 MiB of form: well within the cap, parsed and answered.
    form = b"Action=GetCallerIdentity&Version=2011-06-15&Pad=" + b"a" * (1024 * 1024)
    status, _, body = raw(server, head_for(server, "POST", "/", [
        ("Authorization", AUTH.format(svc="sts")),
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Content-Length", str(len(form))),
    ]), form)
    assert status == 200, body[:500]


def test_json_body_too_large(server):
    status, h, body = raw(server, head_for(server, "POST", "/", [
        ("X-Amz-Target", "DynamoDB_20120810.ListTables"),
        ("Content-Type", "application/x-amz-json-1.0"),
        ("Content-Length", str(MAX_BODY + 1)),
    ]))
    assert status == 413, body
    assert json.loads(body)["__type"].split("#")[-1] == "RequestEntityTooLarge"


def test_lambda_body_too_large_is_its_modeled_error(server):
    # Lambda models a 413 of its own: botocore raises RequestTooLargeException for it.
    status, h, body = raw(server, head_for(server, "POST", "/2015-03-31/functions/f/invocations", [
        ("Authorization", AUTH.format(svc="lambda")),
        ("Content-Length", str(MAX_BODY + 1)),
    ]))
    assert status == 413, body
    assert h.get("x-amzn-errortype", "").startswith("RequestTooLargeException"), (h, body)


def test_head_beyond_hyper_buffer_is_refused_cleanly(server):
    # Past the HTTP/1 read buffer (~408 KiB) the HTTP layer answers 431 itself; the server
    # stays up and keeps serving.
    try:
        status, _, _ = raw(server, head_for(server, "GET", "/", [("x-big", "a" * 600 * 1024)]), timeout=10)
        assert status == 431
    except (ConnectionResetError, BrokenPipeError):
        pass  # the server may close while the rest of the head is still being sent
    with urllib.request.urlopen(server.endpoint + "/_basalt/health", timeout=5) as r:
        assert r.status == 200
