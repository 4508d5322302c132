"""SigV4 verification: a second server started with --auth sigv4."""
from __future__ import annotations

import http.client
import re
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT, BasaltServer, make_client_factory, unique

OTHER_KEY, OTHER_SECRET = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


@pytest.fixture(scope="module")
def auth_server():
    srv = BasaltServer(
        ["--auth", "sigv4", "--access-key", "test:test", "--access-key", f"{OTHER_KEY}:{OTHER_SECRET}"],
        name="basalt-auth",
    ).start()
    yield srv
    srv.stop()
    panics = srv.panics()
    srv.close()
    assert not panics, "auth server panicked:\n" + "\n".join(panics)


@pytest.fixture(scope="module")
def aclient(auth_server, shape_checker):
    return make_client_factory(shape_checker, auth_server.endpoint)


def code_status(ei):
    r = ei.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]


@pytest.mark.parametrize("key,secret", [("test", "test"), (OTHER_KEY, OTHER_SECRET)])
def test_valid_keys(aclient, key, secret):
    s3 = aclient("s3", key=key, secret=secret)
    name = unique("auth")
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="k with space/ü", Body=b"signed")
    assert s3.get_object(Bucket=name, Key="k with space/ü")["Body"].read() == b"signed"
    assert s3.list_objects_v2(Bucket=name, Prefix="k w")["KeyCount"] == 1
    s3.delete_object(Bucket=name, Key="k with space/ü")
    s3.delete_bucket(Bucket=name)
    assert aclient("sts", key=key, secret=secret).get_caller_identity()["Account"] == ACCOUNT


def test_valid_keys_other_region(aclient):
    # the signing region comes from the credential scope; any region verifies
    assert aclient("sts", region="ap-southeast-2").get_caller_identity()["Account"] == ACCOUNT
    aclient("s3", region="eu-west-1").list_buckets()


def test_wrong_secret(aclient):
    with pytest.raises(ClientError) as ei:
        aclient("s3", secret="wrong").list_buckets()
    assert code_status(ei) == ("SignatureDoesNotMatch", 403)
    with pytest.raises(ClientError) as ei:
        aclient("sts", secret="wrong").get_caller_identity()
    assert code_status(ei) == ("SignatureDoesNotMatch", 403)


def test_wrong_secret_on_put_with_body(aclient):
    s3 = aclient("s3")
    name = unique("auth")
    s3.create_bucket(Bucket=name)
    try:
        with pytest.raises(ClientError) as ei:
            aclient("s3", secret="wrong").put_object(Bucket=name, Key="k", Body=b"x" * 10000)
        assert code_status(ei) == ("SignatureDoesNotMatch", 403)
        with pytest.raises(ClientError):
            s3.head_object(Bucket=name, Key="k")
    finally:
        s3.delete_bucket(Bucket=name)


def test_unknown_key(aclient):
    with pytest.raises(ClientError) as ei:
        aclient("s3", key="AKIDUNKNOWN", secret="x").list_buckets()
    assert code_status(ei) == ("InvalidAccessKeyId", 403)
    with pytest.raises(ClientError) as ei:
        aclient("sts", key="AKIDUNKNOWN", secret="x").get_caller_identity()
    assert code_status(ei) == ("InvalidClientTokenId", 403)


def test_unsigned_request_denied(auth_server):
    conn = http.client.HTTPConnection("127.0.0.1", auth_server.port, timeout=5)
    conn.request("GET", "/")
    r = conn.getresponse()
    body = r.read()
    assert r.status == 403, body
    assert b"<Code>AccessDenied</Code>" in body or b"<Code>MissingSecurityHeader</Code>" in body


def test_assumed_role_credentials_verify(aclient):
    c = aclient("sts").assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/r", RoleSessionName="s1")["Credentials"]
    sts2 = aclient("sts", key=c["AccessKeyId"], secret=c["SecretAccessKey"], token=c["SessionToken"])
    assert sts2.get_caller_identity()["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/r/s1"
    aclient("s3", key=c["AccessKeyId"], secret=c["SecretAccessKey"], token=c["SessionToken"]).list_buckets()
    with pytest.raises(ClientError) as ei:  # right key and secret, bad token
        aclient("sts", key=c["AccessKeyId"], secret=c["SecretAccessKey"], token="bogus").get_caller_identity()
    assert code_status(ei)[1] in (400, 403)
    with pytest.raises(ClientError) as ei:  # right key, wrong secret
        aclient("sts", key=c["AccessKeyId"], secret="nope", token=c["SessionToken"]).get_caller_identity()
    assert code_status(ei) == ("SignatureDoesNotMatch", 403)


def test_assumed_role_credentials_need_their_token_on_s3(aclient):
    c = aclient("sts").assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/r", RoleSessionName="s2")["Credentials"]
    good = aclient("s3", key=c["AccessKeyId"], secret=c["SecretAccessKey"], token=c["SessionToken"])
    bucket = unique("tok")
    good.create_bucket(Bucket=bucket)
    good.put_object(Bucket=bucket, Key="k", Body=b"v")
    # Without the token the temporary key is unknown to S3; with another one it is invalid.
    with pytest.raises(ClientError) as ei:
        aclient("s3", key=c["AccessKeyId"], secret=c["SecretAccessKey"]).get_object(Bucket=bucket, Key="k")
    assert code_status(ei) == ("InvalidAccessKeyId", 403)
    with pytest.raises(ClientError) as ei:
        aclient("s3", key=c["AccessKeyId"], secret=c["SecretAccessKey"], token="bogus").get_object(Bucket=bucket, Key="k")
    assert code_status(ei) == ("InvalidToken", 400)
    # Presigned URLs (SigV2 and SigV4) carry the token in the query.
    v4 = aclient("s3", key=c["AccessKeyId"], secret=c["SecretAccessKey"], token=c["SessionToken"],
                 signature_version="s3v4")
    for client in (good, v4):
        url = client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"})
        assert "x-amz-security-token=" in url.lower()  # SigV2 presigning writes it in lower case
        with urllib.request.urlopen(url) as r:
            assert r.read() == b"v"
        stripped = re.sub(r"&?x-amz-security-token=[^&]*", "", url, flags=re.I)
        with pytest.raises(urllib.error.HTTPError) as ei:
            urllib.request.urlopen(stripped)
        assert ei.value.code == 403
    # A permanent key needs no token.
    aclient("s3").head_object(Bucket=bucket, Key="k")


# boto3 presigns S3 URLs with SigV2 (AWSAccessKeyId/Signature/Expires) unless the client is
# configured for s3v4: both kinds are in use, both must verify.
SIGS = {"v2": ("Signature", None), "v4": ("X-Amz-Signature", "s3v4")}


@pytest.fixture(params=sorted(SIGS))
def auth_bucket(request, aclient):
    sig_param, sigver = SIGS[request.param]
    s3 = aclient("s3", signature_version=sigver) if sigver else aclient("s3")
    name = unique("pre")
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="obj", Body=b"presigned body")
    yield s3, name, sig_param
    s3.delete_object(Bucket=name, Key="obj")
    s3.delete_bucket(Bucket=name)


def _http_error(url, method="GET", data=None):
    req = urllib.request.Request(url, method=method, data=data)
    with pytest.raises(urllib.error.HTTPError) as ei:
        urllib.request.urlopen(req, timeout=10)
    return ei.value.code, ei.value.read()


def _tamper(url, param, value):
    parts = urllib.parse.urlsplit(url)
    q = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    assert param in dict(q), (param, url)
    q = [(k, (value if k == param else v)) for k, v in q]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(q)))


def test_presigned_valid(auth_bucket):
    s3, name, sig = auth_bucket
    url = s3.generate_presigned_url("get_object", Params={"Bucket": name, "Key": "obj"}, ExpiresIn=60)
    assert f"{sig}=" in url
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.read() == b"presigned body"
    put = s3.generate_presigned_url("put_object", Params={"Bucket": name, "Key": "obj"}, ExpiresIn=60)
    # no Content-Type: SigV2 signs it (empty here), and urllib would add a form type
    u = urllib.parse.urlsplit(put)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    conn.request("PUT", f"{u.path}?{u.query}", body=b"new body")
    r = conn.getresponse()
    assert r.status == 200, r.read()
    conn.close()
    assert s3.get_object(Bucket=name, Key="obj")["Body"].read() == b"new body"


def test_presigned_bad_signature(auth_bucket):
    s3, name, sig = auth_bucket
    url = s3.generate_presigned_url("get_object", Params={"Bucket": name, "Key": "obj"}, ExpiresIn=60)
    bad = _tamper(url, sig, "0" * 64 if sig == "X-Amz-Signature" else "AAAAAAAAAAAAAAAAAAAAAAAAAAA=")
    status, body = _http_error(bad)
    assert status == 403 and b"<Code>SignatureDoesNotMatch</Code>" in body, body
    # a presigned GET used for a different key
    status, body = _http_error(url.replace("/obj?", "/other?"))
    assert status == 403, body
    # presigned GET replayed as PUT
    status, body = _http_error(url, method="PUT", data=b"overwrite")
    assert status == 403, body
    assert s3.get_object(Bucket=name, Key="obj")["Body"].read() == b"presigned body"


def test_presigned_expired(auth_bucket):
    s3, name, _ = auth_bucket
    url = s3.generate_presigned_url("get_object", Params={"Bucket": name, "Key": "obj"}, ExpiresIn=1)
    time.sleep(2.2)
    status, body = _http_error(url)
    assert status == 403, body
    assert b"<Code>AccessDenied</Code>" in body, body
    assert b"Request has expired" in body, body


def test_presigned_sts_query(auth_server):
    # GetCallerIdentity as a presigned query URL (what bench/ and some tools use)
    from botocore.auth import SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    url = f"{auth_server.endpoint}/?Action=GetCallerIdentity&Version=2011-06-15"
    req = AWSRequest(method="GET", url=url)
    SigV4QueryAuth(Credentials("test", "test"), "sts", "us-east-1", expires=60).add_auth(req)
    with urllib.request.urlopen(req.url, timeout=10) as r:
        body = r.read()
    assert b"<Account>000000000000</Account>" in body, body
