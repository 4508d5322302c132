"""The Step Functions HTTP Task through EventBridge connections (Developer Guide: "Call HTTPS
APIs in Step Functions workflows"; EventBridge API Reference: CreateConnection and friends),
against an HTTP server this test runs on loopback:

- connections: Basic, API key and OAuth client credentials; DescribeConnection never shows a
  secret; Update, Deauthorize, List, Delete;
- the request: method, URL with the task's and the connection's query parameters, the
  connection's headers and body parameters winning over the task's, the authorization, the
  User-Agent and Range Step Functions sends, JSON or URL-encoded bodies;
- the result: Headers (lists), ResponseBody (parsed JSON), StatusCode, StatusText; a non-2xx
  status fails with States.Http.StatusCode.<code>, which Catch sees; forbidden headers and a
  deauthorized connection fail the task;
- TestState at TRACE shows the request and the response (not at DEBUG), the connection's
  secrets only with revealSecrets; another account's connection is refused.
"""
from __future__ import annotations

import base64
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import unique
from sfn_helpers import machine, sfn, start, wait_done  # noqa: F401 (fixture)


class Api:
    """A loopback HTTP API that records each request and answers per path."""

    def __init__(self):
        self.requests = []
        api = self

        class H(BaseHTTPRequestHandler):
            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                url = urllib.parse.urlsplit(self.path)
                api.requests.append({"method": self.command, "path": url.path, "query": url.query,
                                     "headers": {k.lower(): v for k, v in self.headers.items()},
                                     "body": body})
                if url.path == "/token":
                    status, payload, ctype = 200, {"access_token": "tok-123", "token_type": "Bearer"}, "application/json"
                elif url.path == "/missing":
                    status, payload, ctype = 404, {"message": "no such thing"}, "application/json"
                elif url.path == "/text":
                    status, payload, ctype = 200, "plain words", "text/plain"
                else:
                    status, payload, ctype = 200, {"ok": True, "echo": body}, "application/json"
                data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("X-Served-By", "loopback")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _serve

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def last(self, path):
        return [r for r in self.requests if r["path"] == path][-1]


@pytest.fixture(scope="module")
def api():
    a = Api()
    yield a
    a.server.shutdown()


@pytest.fixture(scope="module")
def events(make_client):
    return make_client("events")


def task(params, **extra):
    return {"StartAt": "Call", "States": {"Call": {
        "Type": "Task", "Resource": "arn:aws:states:::http:invoke", "Parameters": params,
        "End": True, **extra}}}


def api_key_connection(events, **invocation):
    name = unique("conn")
    auth = {"ApiKeyAuthParameters": {"ApiKeyName": "X-Api-Key", "ApiKeyValue": "s3cret"}}
    if invocation:
        auth["InvocationHttpParameters"] = invocation
    return events.create_connection(Name=name, AuthorizationType="API_KEY", AuthParameters=auth)["ConnectionArn"], name


def test_connections_keep_their_secrets(events):
    arn, name = api_key_connection(events, HeaderParameters=[
        {"Key": "X-Plain", "Value": "shown", "IsValueSecret": False},
        {"Key": "X-Hidden", "Value": "hidden", "IsValueSecret": True}])
    assert arn.startswith(f"arn:aws:events:us-east-1:") and f":connection/{name}/" in arn
    d = events.describe_connection(Name=name)
    assert (d["ConnectionState"], d["AuthorizationType"], d["ConnectionArn"]) == ("AUTHORIZED", "API_KEY", arn)
    assert d["AuthParameters"]["ApiKeyAuthParameters"] == {"ApiKeyName": "X-Api-Key"}
    assert d["AuthParameters"]["InvocationHttpParameters"]["HeaderParameters"] == [
        {"Key": "X-Plain", "Value": "shown", "IsValueSecret": False},
        {"Key": "X-Hidden", "IsValueSecret": True}]
    assert ":secretsmanager:" in d["SecretArn"]
    assert "s3cret" not in json.dumps(d, default=str)

    basic = unique("basic")
    events.create_connection(Name=basic, AuthorizationType="BASIC",
                             AuthParameters={"BasicAuthParameters": {"Username": "u", "Password": "p"}})
    assert events.describe_connection(Name=basic)["AuthParameters"] == {"BasicAuthParameters": {"Username": "u"}}
    listed = {c["Name"]: c for c in events.list_connections(NamePrefix=basic)["Connections"]}
    assert list(listed) == [basic] and listed[basic]["ConnectionState"] == "AUTHORIZED"

    with pytest.raises(events.exceptions.ResourceAlreadyExistsException):
        events.create_connection(
            Name=basic, AuthorizationType="BASIC",
            AuthParameters={"BasicAuthParameters": {"Username": "u", "Password": "p"}})
    with pytest.raises(events.exceptions.ClientError) as e:  # the parameters of another type
        events.create_connection(Name=unique("bad"), AuthorizationType="BASIC",
                                 AuthParameters={"ApiKeyAuthParameters": {"ApiKeyName": "a", "ApiKeyValue": "b"}})
    assert e.value.response["Error"]["Code"] == "ValidationException"

    events.deauthorize_connection(Name=basic)
    assert events.describe_connection(Name=basic)["ConnectionState"] == "DEAUTHORIZED"
    events.update_connection(Name=basic, AuthParameters={"BasicAuthParameters": {"Password": "p2"}})
    assert events.describe_connection(Name=basic)["ConnectionState"] == "AUTHORIZED"
    assert events.delete_connection(Name=basic)["ConnectionState"] == "DELETING"
    with pytest.raises(events.exceptions.ResourceNotFoundException):
        events.describe_connection(Name=basic)


def test_an_http_task_calls_the_api_through_its_connection(sfn, events, api):
    arn, _ = api_key_connection(
        events,
        HeaderParameters=[{"Key": "X-Tenant", "Value": "from-connection", "IsValueSecret": True}],
        QueryStringParameters=[{"Key": "page", "Value": "7", "IsValueSecret": False}],
        BodyParameters=[{"Key": "source", "Value": "connection", "IsValueSecret": False}])
    definition = task({
        "ApiEndpoint": f"{api.url}/orders", "Method": "POST",
        "Authentication": {"ConnectionArn": arn},
        "Headers": {"X-Tenant": "from-task", "X-Request-Id": "r-1"},
        "QueryParameters": {"page": "1", "q": "a b&c"},
        "RequestBody": {"item.$": "$.item", "source": "task"},
    }, ResultSelector={"status.$": "$.StatusCode", "text.$": "$.StatusText", "body.$": "$.ResponseBody",
                       "served.$": "$.Headers['x-served-by']"})
    d = wait_done(sfn, start(sfn, machine(sfn, definition), {"item": "book"}))
    assert d["status"] == "SUCCEEDED", (d.get("error"), d.get("cause"))
    out = json.loads(d["output"])
    assert (out["status"], out["text"], out["served"]) == (200, "OK", ["loopback"])
    assert out["body"]["ok"] is True
    req = api.last("/orders")
    assert req["method"] == "POST"
    assert urllib.parse.parse_qs(req["query"]) == {"page": ["7"], "q": ["a b&c"]}
    h = req["headers"]
    assert h["x-api-key"] == "s3cret" and h["x-tenant"] == "from-connection" and h["x-request-id"] == "r-1"
    assert h["user-agent"] == "Amazon|StepFunctions|HttpInvoke|us-east-1"
    assert h["range"] == "bytes=0-262144"
    assert h["content-type"].startswith("application/json")
    assert json.loads(req["body"]) == {"item": "book", "source": "connection"}


def test_basic_and_oauth_connections_and_url_encoded_bodies(sfn, events, api):
    basic = events.create_connection(Name=unique("basic"), AuthorizationType="BASIC", AuthParameters={
        "BasicAuthParameters": {"Username": "ann", "Password": "pw"}})["ConnectionArn"]
    definition = task({
        "ApiEndpoint": f"{api.url}/form", "Method": "PUT", "InvocationConfig": {"ConnectionArn": basic},
        "Headers": {"Content-Type": "application/x-www-form-urlencoded"},
        "RequestBody": {"tags": ["a", "b"], "meta": {"note": "two words"}},
        "Transform": {"RequestBodyEncoding": "URL_ENCODED",
                      "RequestEncodingOptions": {"ArrayFormat": "BRACKETS"}}})
    assert wait_done(sfn, start(sfn, machine(sfn, definition)))["status"] == "SUCCEEDED"
    req = api.last("/form")
    assert req["headers"]["authorization"] == "Basic " + base64.b64encode(b"ann:pw").decode()
    assert req["body"] == "tags%5B%5D=a&tags%5B%5D=b&meta%5Bnote%5D=two%20words"

    oauth = events.create_connection(Name=unique("oauth"), AuthorizationType="OAUTH_CLIENT_CREDENTIALS",
                                     AuthParameters={"OAuthParameters": {
                                         "ClientParameters": {"ClientID": "id", "ClientSecret": "secret"},
                                         "AuthorizationEndpoint": f"{api.url}/token", "HttpMethod": "POST",
                                         "OAuthHttpParameters": {"BodyParameters": [
                                             {"Key": "scope", "Value": "orders", "IsValueSecret": False}]}}})
    oauth_arn = oauth["ConnectionArn"]
    definition = task({"ApiEndpoint": f"{api.url}/text", "Method": "GET",
                       "Authentication": {"ConnectionArn": oauth_arn}})
    d = wait_done(sfn, start(sfn, machine(sfn, definition)))
    assert d["status"] == "SUCCEEDED", d
    assert json.loads(d["output"])["ResponseBody"] == "plain words"
    token_req = api.last("/token")
    assert token_req["headers"]["authorization"] == "Basic " + base64.b64encode(b"id:secret").decode()
    assert urllib.parse.parse_qs(token_req["body"]) == {"grant_type": ["client_credentials"], "scope": ["orders"]}
    assert api.last("/text")["headers"]["authorization"] == "Bearer tok-123"


def test_failures(sfn, events, api):
    arn, name = api_key_connection(events)
    caught = task({"ApiEndpoint": f"{api.url}/missing", "Method": "GET", "Authentication": {"ConnectionArn": arn}},
                  Catch=[{"ErrorEquals": ["States.Http.StatusCode.404"], "ResultPath": "$.error", "Next": "Handled"}])
    caught["States"]["Handled"] = {"Type": "Pass", "End": True}
    d = wait_done(sfn, start(sfn, machine(sfn, caught)))
    assert d["status"] == "SUCCEEDED", d
    err = json.loads(d["output"])["error"]
    assert err["Error"] == "States.Http.StatusCode.404"
    cause = json.loads(err["Cause"])
    assert (cause["StatusCode"], cause["StatusText"], cause["ResponseBody"]) == (404, "Not Found", {"message": "no such thing"})

    forbidden = task({"ApiEndpoint": f"{api.url}/x", "Method": "GET", "Authentication": {"ConnectionArn": arn},
                      "Headers": {"Authorization": "mine"}})
    d = wait_done(sfn, start(sfn, machine(sfn, forbidden)))
    assert (d["status"], d["error"]) == ("FAILED", "States.Runtime"), d

    events.deauthorize_connection(Name=name)
    call = task({"ApiEndpoint": f"{api.url}/x", "Method": "GET", "Authentication": {"ConnectionArn": arn}})
    d = wait_done(sfn, start(sfn, machine(sfn, call)))
    assert (d["status"], d["error"]) == ("FAILED", "Events.ConnectionResource.InvalidConnectionState"), d
    events.delete_connection(Name=name)
    d = wait_done(sfn, start(sfn, machine(sfn, call)))
    assert (d["status"], d["error"]) == ("FAILED", "Events.ConnectionResource.ResourceNotFound"), d

    # Nothing listens there: no answer is a socket error.
    live, _ = api_key_connection(events)
    closed = task({"ApiEndpoint": "http://127.0.0.1:9/none", "Method": "GET", "Authentication": {"ConnectionArn": live}})
    d = wait_done(sfn, start(sfn, machine(sfn, closed)))
    assert (d["status"], d["error"]) == ("FAILED", "States.Http.Socket"), d


def test_test_state_traces_the_exchange(sfn, events, api):
    arn, _ = api_key_connection(events)
    state = {"Type": "Task", "Resource": "arn:aws:states:::http:invoke", "End": True,
             "Parameters": {"ApiEndpoint": f"{api.url}/orders", "Method": "POST",
                            "Authentication": {"ConnectionArn": arn}, "RequestBody": {"n": 1}}}
    out = sfn.test_state(definition=json.dumps(state), roleArn="arn:aws:iam::000000000000:role/r",
                              input="{}", inspectionLevel="TRACE")
    assert out["status"] == "SUCCEEDED", out
    req, resp = out["inspectionData"]["request"], out["inspectionData"]["response"]
    assert (req["protocol"], req["method"], req["url"]) == ("http", "POST", f"{api.url}/orders")
    # Without revealSecrets the connection's authorization stays out of the trace.
    assert "s3cret" not in json.dumps(out) and json.loads(req["body"]) == {"n": 1}
    assert (resp["statusCode"], resp["statusMessage"]) == ("200", "OK")
    assert json.loads(resp["body"])["ok"] is True
    revealed = sfn.test_state(definition=json.dumps(state), roleArn="arn:aws:iam::000000000000:role/r",
                              input="{}", inspectionLevel="TRACE", revealSecrets=True)
    assert "X-Api-Key: s3cret" in revealed["inspectionData"]["request"]["headers"]
    debug = sfn.test_state(definition=json.dumps(state), roleArn="arn:aws:iam::000000000000:role/r",
                                input="{}", inspectionLevel="DEBUG")
    assert "request" not in debug["inspectionData"]


def test_another_accounts_connection_is_refused(sfn, events, api):
    arn, _ = api_key_connection(events)
    foreign = arn.replace(arn.split(":")[4], "999999999999")
    call = task({"ApiEndpoint": f"{api.url}/x", "Method": "GET", "Authentication": {"ConnectionArn": foreign}})
    d = wait_done(sfn, start(sfn, machine(sfn, call)))
    assert d["status"] == "FAILED" and d["error"].startswith("Events.ConnectionResource."), d
