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


# ---------------------------------------------------------------------------------------------
# Tampering: every part a signature covers is checked, and what S3 requires to be signed must be.
# Header-signed requests are signed here with botocore's own S3 signer and sent with
# http.client, so that any part can be changed after signing.

import datetime  # noqa: E402
import hashlib  # noqa: E402

import botocore.auth  # noqa: E402
from botocore.auth import S3SigV4Auth, SigV4Auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402

MISMATCH = (403, "SignatureDoesNotMatch")


def _send(server, method, target, headers=None, body=b""):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request(method, target, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return r.status, data
    finally:
        conn.close()


def _code(body):
    m = re.search(rb"<Code>([^<]*)</Code>", body)
    return m.group(1).decode() if m else None


def _sign_header(server, method, target, headers=None, body=b"", key="test", secret="test",
                 region="us-east-1"):
    """botocore's S3 SigV4 header signature (the payload hash is signed: plain HTTP)."""
    req = AWSRequest(method=method, url=f"{server.endpoint}{target}", data=body,
                     headers=dict(headers or {}))
    S3SigV4Auth(Credentials(key, secret), "s3", region).add_auth(req)
    return dict(req.headers.items())


def _target(url):
    u = urllib.parse.urlsplit(url)
    return f"{u.path}?{u.query}" if u.query else u.path


@pytest.fixture
def tamper_bucket(aclient):
    s3 = aclient("s3", signature_version="s3v4")
    name = unique("tamper")
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="obj", Body=b"original")
    yield s3, name
    for o in s3.list_objects_v2(Bucket=name).get("Contents", []):
        s3.delete_object(Bucket=name, Key=o["Key"])
    s3.delete_bucket(Bucket=name)


def _result(server, method, target, headers=None, body=b""):
    status, data = _send(server, method, target, headers, body)
    return status, _code(data) if status >= 300 else data


def test_header_signed_untampered_works(auth_server, tamper_bucket):
    _, b = tamper_bucket
    h = _sign_header(auth_server, "GET", f"/{b}/obj")
    assert _result(auth_server, "GET", f"/{b}/obj", h) == (200, b"original")
    h = _sign_header(auth_server, "PUT", f"/{b}/new", {"x-amz-meta-a": "1"}, b"body")
    assert _result(auth_server, "PUT", f"/{b}/new", h, b"body")[0] == 200


def test_header_signed_method_path_query(auth_server, tamper_bucket):
    _, b = tamper_bucket
    h = _sign_header(auth_server, "GET", f"/{b}/obj")
    assert _result(auth_server, "DELETE", f"/{b}/obj", h) == MISMATCH
    assert _result(auth_server, "GET", f"/{b}/other", h) == MISMATCH
    # an added query parameter, meaningful or not, is not covered by the signature
    assert _result(auth_server, "GET", f"/{b}/obj?versionId=null", h) == MISMATCH
    assert _result(auth_server, "GET", f"/{b}/obj?foo=bar", h) == MISMATCH
    # and a signed query parameter cannot be changed or dropped
    h = _sign_header(auth_server, "GET", f"/{b}?list-type=2&prefix=o")
    assert _result(auth_server, "GET", f"/{b}?list-type=2&prefix=o", h)[0] == 200
    assert _result(auth_server, "GET", f"/{b}?list-type=2&prefix=x", h) == MISMATCH
    assert _result(auth_server, "GET", f"/{b}?list-type=2", h) == MISMATCH


def test_header_signed_header_values(auth_server, tamper_bucket):
    _, b = tamper_bucket
    base = _sign_header(auth_server, "GET", f"/{b}/obj", {"Range": "bytes=0-3"})
    assert _result(auth_server, "GET", f"/{b}/obj", base) == (206, b"orig")
    changes = {
        "Range": "bytes=0-7",  # a signed ordinary header
        "Host": "localhost",  # the signed host
    }
    for name, value in changes.items():
        assert _result(auth_server, "GET", f"/{b}/obj", {**base, name: value}) == MISMATCH, name
    # X-Amz-Date: one second later is another signature
    t = datetime.datetime.strptime(base["X-Amz-Date"], "%Y%m%dT%H%M%SZ") + datetime.timedelta(seconds=1)
    later = {**base, "X-Amz-Date": t.strftime("%Y%m%dT%H%M%SZ")}
    if later["X-Amz-Date"][:8] == base["X-Amz-Date"][:8]:
        assert _result(auth_server, "GET", f"/{b}/obj", later) == MISMATCH
    # a signed x-amz-meta-* value
    put = _sign_header(auth_server, "PUT", f"/{b}/m", {"x-amz-meta-a": "1"}, b"v")
    assert _result(auth_server, "PUT", f"/{b}/m", {**put, "x-amz-meta-a": "2"}, b"v") == MISMATCH


def test_header_signed_authorization_parts(auth_server, tamper_bucket):
    _, b = tamper_bucket
    h = _sign_header(auth_server, "GET", f"/{b}/obj")
    auth = h["Authorization"]
    date = h["X-Amz-Date"][:8]
    cases = {
        "region": (auth.replace("/us-east-1/", "/us-west-2/"), MISMATCH),
        "access key": (auth.replace("Credential=test/", f"Credential={OTHER_KEY}/"), MISMATCH),
        "signature": (re.sub(r"Signature=\w+", "Signature=" + "0" * 64, auth), MISMATCH),
        "scope date": (auth.replace(f"/{date}/", "/20200101/"), (400, "AuthorizationHeaderMalformed")),
        # a header dropped from SignedHeaders is a header S3 requires signed and now is not
        "signed headers": (auth.replace("x-amz-date;", "").replace(";x-amz-date", ""),
                           (403, "AccessDenied")),
    }
    for what, (value, want) in cases.items():
        assert value != auth, what
        assert _result(auth_server, "GET", f"/{b}/obj", {**h, "Authorization": value}) == want, what
    # a request with a second auth mechanism in the query
    assert _result(auth_server, "GET", f"/{b}/obj?X-Amz-Algorithm=AWS4-HMAC-SHA256", h) == (400, "InvalidArgument")


def test_header_signed_payload_hash(auth_server, tamper_bucket):
    s3, b = tamper_bucket
    h = _sign_header(auth_server, "PUT", f"/{b}/p", body=b"signed body")
    # the hash header is signed: changing it breaks the signature
    other = hashlib.sha256(b"other body!").hexdigest()
    assert _result(auth_server, "PUT", f"/{b}/p", {**h, "X-Amz-Content-SHA256": other}, b"other body!") == MISMATCH
    # a different body of the same length under the signed hash: the payload check
    status, code = _result(auth_server, "PUT", f"/{b}/p", h, b"signed bodY")
    assert (status, code) == (400, "XAmzContentSHA256Mismatch")
    with pytest.raises(ClientError):
        s3.head_object(Bucket=b, Key="p")
    assert _result(auth_server, "PUT", f"/{b}/p", h, b"signed body")[0] == 200


def test_header_signed_unsigned_headers(auth_server, tamper_bucket):
    _, b = tamper_bucket
    h = _sign_header(auth_server, "GET", f"/{b}/obj")
    # S3 requires every x-amz-* header (but x-amz-content-sha256) and Content-MD5 signed
    status, data = _send(auth_server, "GET", f"/{b}/obj", {**h, "x-amz-meta-added": "1"})
    assert status == 403 and _code(data) == "AccessDenied", data
    assert b"<HeadersNotSigned>x-amz-meta-added</HeadersNotSigned>" in data, data
    # ordinary headers may be added unsigned, as S3 allows
    assert _result(auth_server, "GET", f"/{b}/obj", {**h, "X-Custom": "1", "Cache-Control": "no-cache"}) == (200, b"original")


def test_presigned_v4_every_parameter(auth_server, tamper_bucket):
    s3, b = tamper_bucket
    url = s3.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "obj"}, ExpiresIn=60)
    assert _result(auth_server, "GET", _target(url)) == (200, b"original")
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    date = q["X-Amz-Date"]
    later = (datetime.datetime.strptime(date, "%Y%m%dT%H%M%SZ") + datetime.timedelta(seconds=1)).strftime("%Y%m%dT%H%M%SZ")
    cases = [
        ("X-Amz-Expires", "600", MISMATCH),
        ("X-Amz-Expires", "59", MISMATCH),
        ("X-Amz-Expires", "604801", (400, "AuthorizationQueryParametersError")),
        ("X-Amz-Expires", "-1", (400, "AuthorizationQueryParametersError")),
        ("X-Amz-Expires", "x", (400, "AuthorizationQueryParametersError")),
        ("X-Amz-Credential", q["X-Amz-Credential"].replace("us-east-1", "us-west-2"), MISMATCH),
        ("X-Amz-Credential", q["X-Amz-Credential"].replace("test/", f"{OTHER_KEY}/"), MISMATCH),
        ("X-Amz-Credential", q["X-Amz-Credential"].replace(date[:8], "20200101"), (400, "AuthorizationQueryParametersError")),
        ("X-Amz-Credential", "test/garbage", (400, "AuthorizationQueryParametersError")),
        ("X-Amz-SignedHeaders", "host;x-amz-date", MISMATCH),
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA512", (400, "AuthorizationQueryParametersError")),
        ("X-Amz-Signature", "0" * 64, MISMATCH),
    ]
    if later[:8] == date[:8]:
        cases.append(("X-Amz-Date", later, MISMATCH))
    for param, value, want in cases:
        assert _result(auth_server, "GET", _target(_tamper(url, param, value))) == want, (param, value)
    # every parameter is required
    for param in ("X-Amz-Expires", "X-Amz-Date", "X-Amz-SignedHeaders", "X-Amz-Credential"):
        u = urllib.parse.urlsplit(url)
        kept = [(k, v) for k, v in urllib.parse.parse_qsl(u.query) if k != param]
        target = f"{u.path}?{urllib.parse.urlencode(kept)}"
        assert _result(auth_server, "GET", target) == (400, "AuthorizationQueryParametersError"), param
    # added parameters are covered too, whatever they are
    for extra in ("foo=bar", "versionId=null", "response-content-type=text%2Fhtml"):
        assert _result(auth_server, "GET", _target(url) + "&" + extra) == MISMATCH, extra


def test_presigned_v4_method_path_headers(auth_server, tamper_bucket):
    s3, b = tamper_bucket
    url = s3.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "obj"}, ExpiresIn=60)
    t = _target(url)
    assert _result(auth_server, "HEAD", t)[0] == 403
    assert _result(auth_server, "DELETE", t) == MISMATCH
    assert _result(auth_server, "GET", t.replace("/obj?", "/obj2?")) == MISMATCH
    assert _result(auth_server, "GET", t, {"Host": "localhost"}) == MISMATCH  # the signed host
    # an unsigned x-amz-* header with a presigned URL: refused as S3 refuses it
    status, data = _send(auth_server, "GET", t, {"x-amz-meta-x": "1"})
    assert (status, _code(data)) == (403, "AccessDenied") and b"HeadersNotSigned" in data, data
    # an ordinary header is fine
    assert _result(auth_server, "GET", t, {"Range": "bytes=0-3"}) == (206, b"orig")
    # an Authorization header beside the query parameters
    h = _sign_header(auth_server, "GET", t)
    assert _result(auth_server, "GET", t, h) == (400, "InvalidArgument")
    assert s3.get_object(Bucket=b, Key="obj")["Body"].read() == b"original"


def test_presigned_v4_put_tampering(auth_server, tamper_bucket):
    s3, b = tamper_bucket
    put = s3.generate_presigned_url("put_object", Params={"Bucket": b, "Key": "obj"}, ExpiresIn=60)
    for param, value in (("X-Amz-Expires", "9999"), ("X-Amz-Expires", "600")):
        assert _result(auth_server, "PUT", _target(_tamper(put, param, value)), body=b"evil") == MISMATCH
    assert _result(auth_server, "PUT", _target(put).replace("/obj?", "/evil?"), body=b"evil") == MISMATCH
    assert _result(auth_server, "POST", _target(put), body=b"evil")[0] in (403, 405)
    assert s3.get_object(Bucket=b, Key="obj")["Body"].read() == b"original"
    # signed metadata must be sent as signed
    put_md = s3.generate_presigned_url("put_object", Params={"Bucket": b, "Key": "md", "Metadata": {"a": "1"}},
                                       ExpiresIn=60)
    assert "x-amz-meta-a" in urllib.parse.unquote(put_md)
    assert _result(auth_server, "PUT", _target(put_md), {"x-amz-meta-a": "2"}, b"v") == MISMATCH
    assert _result(auth_server, "PUT", _target(put_md), {}, b"v") == MISMATCH
    assert _result(auth_server, "PUT", _target(put_md), {"x-amz-meta-a": "1"}, b"v")[0] == 200
    # a payload hash sent with a presigned PUT is checked against the body
    status, code = _result(auth_server, "PUT", _target(put),
                           {"x-amz-content-sha256": hashlib.sha256(b"v").hexdigest()}, b"w")
    assert (status, code) == (400, "XAmzContentSHA256Mismatch")
    assert _result(auth_server, "PUT", _target(put), body=b"new")[0] == 200
    assert s3.get_object(Bucket=b, Key="obj")["Body"].read() == b"new"


def test_presigned_v4_expiry_bounds(auth_server, tamper_bucket, monkeypatch):
    s3, b = tamper_bucket
    week = s3.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "obj"}, ExpiresIn=604800)
    assert _result(auth_server, "GET", _target(week)) == (200, b"original")
    status, data = _send(auth_server, "GET", _target(
        s3.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "obj"}, ExpiresIn=604801)))
    assert (status, _code(data)) == (400, "AuthorizationQueryParametersError"), data
    assert b"X-Amz-Expires must be less than a week" in data
    # signed an hour ahead of the server's clock: not yet valid
    ahead = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) + datetime.timedelta(hours=1)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: ahead)
    future = s3.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "obj"}, ExpiresIn=60)
    status, data = _send(auth_server, "GET", _target(future))
    assert (status, _code(data)) == (403, "AccessDenied") and b"Request is not yet valid" in data, data
    # signed two minutes ago for one minute: expired, with S3's details
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: ahead - datetime.timedelta(minutes=62))
    old = s3.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "obj"}, ExpiresIn=60)
    status, data = _send(auth_server, "GET", _target(old))
    assert (status, _code(data)) == (403, "AccessDenied"), data
    assert b"<Message>Request has expired</Message><X-Amz-Expires>60</X-Amz-Expires><Expires>" in data, data


def test_presigned_v2_tampering(auth_server, aclient, tamper_bucket):
    _, b = tamper_bucket
    v2 = aclient("s3")  # boto3 presigns S3 with SigV2 by default
    url = v2.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "obj"}, ExpiresIn=60)
    assert "Signature=" in url and "AWSAccessKeyId=" in url
    t = _target(url)
    assert _result(auth_server, "GET", t) == (200, b"original")
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    for param, value, want in [
        ("Expires", str(int(q["Expires"]) + 1), MISMATCH),
        ("Expires", str(int(q["Expires"]) - 1), MISMATCH),
        ("Expires", "soon", (403, "AccessDenied")),
        ("AWSAccessKeyId", OTHER_KEY, MISMATCH),
        ("AWSAccessKeyId", "AKIDUNKNOWN", (403, "InvalidAccessKeyId")),
        ("Signature", "AAAAAAAAAAAAAAAAAAAAAAAAAAA=", MISMATCH),
    ]:
        assert _result(auth_server, "GET", _target(_tamper(url, param, value))) == want, (param, value)
    u = urllib.parse.urlsplit(url)
    no_expires = urllib.parse.urlencode([(k, v) for k, v in urllib.parse.parse_qsl(u.query) if k != "Expires"])
    assert _result(auth_server, "GET", f"{u.path}?{no_expires}") == (403, "AccessDenied")
    assert _result(auth_server, "DELETE", t) == MISMATCH
    assert _result(auth_server, "GET", t.replace("/obj?", "/obj2?")) == MISMATCH
    # SigV2 signs sub-resources and response overrides, and every x-amz-* header
    assert _result(auth_server, "GET", t + "&versionId=null") == MISMATCH
    assert _result(auth_server, "GET", t + "&response-content-type=text%2Fhtml") == MISMATCH
    assert _result(auth_server, "GET", t, {"x-amz-meta-x": "1"}) == MISMATCH
    # ...and not other query parameters or the host, as S3's SigV2 does not
    assert _result(auth_server, "GET", t + "&foo=bar") == (200, b"original")
    # a presigned PUT signs its Content-Type (empty here)
    put = v2.generate_presigned_url("put_object", Params={"Bucket": b, "Key": "obj"}, ExpiresIn=60)
    assert _result(auth_server, "PUT", _target(put), {"Content-Type": "text/html"}, b"evil") == MISMATCH
    assert _result(auth_server, "PUT", _target(_tamper(put, "Expires", str(int(q["Expires"]) + 3600))),
                   body=b"evil") == MISMATCH
    status, data = _send(auth_server, "GET", t + "&X-Amz-Algorithm=AWS4-HMAC-SHA256")
    assert (status, _code(data)) == (400, "InvalidArgument"), data
    assert v2.get_object(Bucket=b, Key="obj")["Body"].read() == b"original"


def test_presigned_sts_tampering(auth_server):
    # Model-driven services verify query authentication in the gateway: same coverage.
    url = f"{auth_server.endpoint}/?Action=GetCallerIdentity&Version=2011-06-15"
    req = AWSRequest(method="GET", url=url)
    botocore.auth.SigV4QueryAuth(Credentials("test", "test"), "sts", "us-east-1", expires=60).add_auth(req)
    assert _send(auth_server, "GET", _target(req.url))[0] == 200
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(req.url).query))
    # (Action and Version pick the operation, which is looked up before the signature)
    for param, value in [("X-Amz-Expires", "600"), ("X-Amz-Expires", "59"),
                         ("X-Amz-Credential", q["X-Amz-Credential"].replace("us-east-1", "eu-west-1")),
                         ("X-Amz-SignedHeaders", "host;x-amz-date")]:
        status, data = _send(auth_server, "GET", _target(_tamper(req.url, param, value)))
        assert (status, _code(data)) == MISMATCH, (param, data)
    status, data = _send(auth_server, "GET", _target(req.url) + "&Extra=1")
    assert (status, _code(data)) == MISMATCH, data
    status, data = _send(auth_server, "POST", _target(req.url))
    assert status == 403, data
    # out-of-range X-Amz-Expires, even correctly signed
    req = AWSRequest(method="GET", url=url)
    botocore.auth.SigV4QueryAuth(Credentials("test", "test"), "sts", "us-east-1", expires=604801).add_auth(req)
    status, data = _send(auth_server, "GET", _target(req.url))
    assert (status, _code(data)) == (400, "AuthorizationQueryParametersError"), data


def test_header_signed_sts_tampering(auth_server):
    body = b"Action=GetCallerIdentity&Version=2011-06-15"
    req = AWSRequest(method="POST", url=f"{auth_server.endpoint}/", data=body,
                     headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    SigV4Auth(Credentials("test", "test"), "sts", "us-east-1").add_auth(req)
    h = dict(req.headers.items())
    assert _send(auth_server, "POST", "/", h, body)[0] == 200
    # the body is covered by the signed payload hash
    status, data = _send(auth_server, "POST", "/", h, body + b"&Foo=1")
    assert (status, _code(data)) == MISMATCH, data
    status, data = _send(auth_server, "POST", "/?x=1", h, body)
    assert (status, _code(data)) == MISMATCH, data
    status, data = _send(auth_server, "POST", "/", {**h, "Content-Type": "text/plain"}, body)
    assert status in (400, 403), data
    date = h["X-Amz-Date"][:8]
    bad_scope = h["Authorization"].replace(f"/{date}/", "/20200101/")
    status, data = _send(auth_server, "POST", "/", {**h, "Authorization": bad_scope}, body)
    assert (status, _code(data)) == MISMATCH and b"Date in Credential scope" in data, data
    no_host = h["Authorization"].replace("SignedHeaders=content-type;host;x-amz-date", "SignedHeaders=content-type;x-amz-date")
    assert no_host != h["Authorization"]
    status, data = _send(auth_server, "POST", "/", {**h, "Authorization": no_host}, body)
    assert (status, _code(data)) == (400, "IncompleteSignature") and b"must be a &apos;SignedHeader&apos;" in data, data
