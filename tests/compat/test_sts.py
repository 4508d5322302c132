"""STS through boto3 (query protocol)."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT, unique

ARN_RE = re.compile(r"^arn:aws:(?P<svc>[a-z]+)::(?P<acct>\d{12}):(?P<res>.+)$")


def test_get_caller_identity(sts):
    r = sts.get_caller_identity()
    assert r["Account"] == ACCOUNT
    m = ARN_RE.match(r["Arn"])
    assert m, r["Arn"]
    assert m["acct"] == ACCOUNT and m["svc"] in ("iam", "sts")
    assert r["UserId"]
    assert r["ResponseMetadata"]["HTTPHeaders"]["content-type"].startswith("text/xml")


def test_get_caller_identity_other_region(make_client):
    r = make_client("sts", region="eu-central-1").get_caller_identity()
    assert r["Account"] == ACCOUNT


def _assume(sts, role="compat-role", session=None, **kw):
    session = session or unique("sess")
    arn = f"arn:aws:iam::{ACCOUNT}:role/{role}"
    return arn, session, sts.assume_role(RoleArn=arn, RoleSessionName=session, **kw)


def test_assume_role(sts):
    arn, session, r = _assume(sts, DurationSeconds=900)
    c = r["Credentials"]
    assert c["AccessKeyId"] and c["SecretAccessKey"] and c["SessionToken"]
    assert c["AccessKeyId"].startswith("ASIA")
    assert isinstance(c["Expiration"], dt.datetime)
    left = (c["Expiration"] - dt.datetime.now(dt.timezone.utc)).total_seconds()
    assert 800 < left <= 905, left
    u = r["AssumedRoleUser"]
    assert u["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/compat-role/{session}"
    assert u["AssumedRoleId"].endswith(f":{session}")
    assert u["AssumedRoleId"].startswith("AROA")


def test_assumed_role_identity(sts, make_client):
    arn, session, r = _assume(sts, role="ident-role")
    c = r["Credentials"]
    sts2 = make_client("sts", key=c["AccessKeyId"], secret=c["SecretAccessKey"], token=c["SessionToken"])
    me = sts2.get_caller_identity()
    assert me["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/ident-role/{session}"
    assert me["Account"] == ACCOUNT
    assert me["UserId"] == r["AssumedRoleUser"]["AssumedRoleId"]


def test_assume_role_role_path_and_other_account(sts):
    r = sts.assume_role(RoleArn="arn:aws:iam::111122223333:role/path/to/r", RoleSessionName="s1")
    # the assumed-role ARN drops the role path and carries the role's account
    assert r["AssumedRoleUser"]["Arn"] == "arn:aws:sts::111122223333:assumed-role/r/s1"


def test_assume_role_validation(sts):
    with pytest.raises(ClientError) as ei:
        sts.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/r", RoleSessionName="bad session name!")
    e = ei.value.response
    assert e["Error"]["Code"] == "ValidationError"
    assert e["ResponseMetadata"]["HTTPStatusCode"] == 400
    # botocore refuses DurationSeconds < 900 itself: send it with client-side validation off
    # so the server's own check answers.
    import boto3
    from botocore.config import Config
    raw = boto3.client("sts", endpoint_url=sts.meta.endpoint_url, region_name="us-east-1",
                       aws_access_key_id="test", aws_secret_access_key="test",
                       config=Config(parameter_validation=False, retries={"max_attempts": 1}))
    with pytest.raises(ClientError) as ei:
        raw.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/r", RoleSessionName="ok", DurationSeconds=10)
    assert ei.value.response["Error"]["Code"] == "ValidationError"


def test_get_session_token(sts):
    r = sts.get_session_token(DurationSeconds=900)
    c = r["Credentials"]
    assert c["AccessKeyId"] and c["SecretAccessKey"] and c["SessionToken"]
    assert isinstance(c["Expiration"], dt.datetime)
    left = (c["Expiration"] - dt.datetime.now(dt.timezone.utc)).total_seconds()
    assert 800 < left <= 905, left
    r2 = sts.get_session_token()
    left = (r2["Credentials"]["Expiration"] - dt.datetime.now(dt.timezone.utc)).total_seconds()
    assert 43000 < left <= 43205, left  # default 12 h


def test_session_token_identity(sts, make_client):
    c = sts.get_session_token()["Credentials"]
    me = make_client("sts", key=c["AccessKeyId"], secret=c["SecretAccessKey"], token=c["SessionToken"]).get_caller_identity()
    assert me["Account"] == ACCOUNT
    assert me["Arn"] == sts.get_caller_identity()["Arn"]
