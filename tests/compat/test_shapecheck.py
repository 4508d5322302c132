"""Self-test of shapecheck.py on canned responses (no server needed)."""
from __future__ import annotations

import botocore.session
import pytest
from botocore.awsrequest import AWSResponse
from botocore.parsers import create_parser

from shapecheck import check_response

SESSION = botocore.session.get_session()


class _Raw:
    def __init__(self, body):
        self.body = body

    def stream(self, *a, **k):
        yield self.body


def run(service, op, status, headers, body):
    model = SESSION.get_service_model(service).operation_model(op)
    resp = AWSResponse("http://x", status, headers, _Raw(body))
    parser = create_parser(model.service_model.protocol)
    parsed = parser.parse({"status_code": status, "headers": resp.headers, "body": resp.content,
                           "context": {"operation_name": op}}, model.output_shape)
    return check_response(model, resp, parsed)


S3H = {"x-amz-request-id": "R1", "content-type": "application/xml"}
LB = (b'<ListAllMyBucketsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Owner><ID>o</ID></Owner>'
      b'<Buckets><Bucket><Name>b</Name><CreationDate>2020-01-01T00:00:00.000Z</CreationDate>%s</Bucket></Buckets>'
      b'</ListAllMyBucketsResult>')


def test_good_s3_xml():
    assert run("s3", "ListBuckets", 200, S3H, LB % b"") == []


def test_unknown_xml_element():
    v = run("s3", "ListBuckets", 200, S3H, LB % b"<Colour>red</Colour>")
    assert any("<Colour>" in x for x in v), v


def test_missing_namespace_and_request_id():
    v = run("s3", "ListBuckets", 200, {}, (LB % b"").replace(b' xmlns="http://s3.amazonaws.com/doc/2006-03-01/"', b""))
    assert any("xmlns" in x for x in v) and any("RequestId" in x for x in v), v


def test_enum_violation():
    body = b'<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>Sideways</Status></VersioningConfiguration>'
    v = run("s3", "GetBucketVersioning", 200, S3H, body)
    assert any("not in enum" in x for x in v), v


def test_s3_error_format():
    good = b"<Error><Code>NoSuchKey</Code><Message>m</Message><RequestId>R1</RequestId></Error>"
    assert run("s3", "GetBucketVersioning", 404, S3H, good) == []
    v = run("s3", "GetBucketVersioning", 404, S3H, b"<html>oops</html>")
    assert v, v


def test_query_wrapper():
    ok = (b'<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult>'
          b'<Arn>arn:aws:iam::000000000000:root</Arn><UserId>u</UserId><Account>000000000000</Account>'
          b'</GetCallerIdentityResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata>'
          b'</GetCallerIdentityResponse>')
    assert run("sts", "GetCallerIdentity", 200, {}, ok) == []
    bad = ok.replace(b"<UserId>u</UserId>", b"<UserId>u</UserId><Extra>1</Extra>")
    assert any("<Extra>" in x for x in run("sts", "GetCallerIdentity", 200, {}, bad))
    nowrap = ok.replace(b"GetCallerIdentityResult>", b"Result>")
    with pytest.raises(KeyError):  # botocore itself cannot parse a query response without its wrapper
        run("sts", "GetCallerIdentity", 200, {}, nowrap)


def test_query_error_format():
    ok = (b'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
          b'<Code>InvalidAction</Code><Message>m</Message></Error><RequestId>r</RequestId></ErrorResponse>')
    assert run("sts", "GetCallerIdentity", 400, {}, ok) == []
    assert run("sts", "GetCallerIdentity", 400, {}, ok.replace(b"<Type>Sender</Type>", b""))


def test_json_unknown_key_and_types():
    h = {"x-amzn-requestid": "r", "content-type": "application/x-amz-json-1.0"}
    assert run("dynamodb", "ListTables", 200, h, b'{"TableNames":["a"]}') == []
    v = run("dynamodb", "ListTables", 200, h, b'{"TableNames":["a"],"Bogus":1}')
    assert any("Bogus" in x for x in v), v
    v = run("dynamodb", "ListTables", 200, dict(h, **{"content-type": "application/json"}), b'{"TableNames":[]}')
    assert any("Content-Type" in x for x in v), v


@pytest.mark.parametrize("body", [b'{"__type":"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException","message":"m"}'])
def test_json_error(body):
    h = {"x-amzn-requestid": "r", "content-type": "application/x-amz-json-1.0"}
    assert run("dynamodb", "DescribeTable", 400, h, body) == []
    assert run("dynamodb", "DescribeTable", 400, h, b"<html/>")
