"""CloudWatch Logs through boto3 (JSON 1.1 protocol)."""
from __future__ import annotations

import json
import time

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT, REGION, unique


@pytest.fixture(scope="module")
def logs(make_client):
    return make_client("logs")


def now_ms():
    return int(time.time() * 1000)


@pytest.fixture
def group(logs):
    name = f"/compat/{unique('g')}"
    logs.create_log_group(logGroupName=name)
    yield name
    try:
        logs.delete_log_group(logGroupName=name)
    except ClientError:
        pass


def code(e):
    return e.value.response["Error"]["Code"]


def test_groups_create_describe_tag_delete(logs):
    prefix = f"/compat/{unique('many')}"
    names = [f"{prefix}/{i}" for i in range(5)]
    for n in names:
        logs.create_log_group(logGroupName=n, tags={"i": n[-1]})
    with pytest.raises(ClientError) as e:
        logs.create_log_group(logGroupName=names[0])
    assert code(e) == "ResourceAlreadyExistsException"
    got = logs.get_paginator("describe_log_groups").paginate(
        logGroupNamePrefix=prefix, PaginationConfig={"PageSize": 2}).build_full_result()["logGroups"]
    assert [g["logGroupName"] for g in got] == names
    g = got[0]
    assert g["arn"] == f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{names[0]}:*"
    assert g["logGroupArn"] == g["arn"][:-2] and g["storedBytes"] == 0 and "retentionInDays" not in g
    assert [x["logGroupName"] for x in logs.describe_log_groups(logGroupNamePattern=prefix.split("/")[-1].upper())["logGroups"]] == names
    logs.put_retention_policy(logGroupName=names[0], retentionInDays=7)
    assert logs.describe_log_groups(logGroupNamePrefix=names[0])["logGroups"][0]["retentionInDays"] == 7
    with pytest.raises(ClientError) as e:
        logs.put_retention_policy(logGroupName=names[0], retentionInDays=2)
    assert code(e) == "InvalidParameterException"
    arn = g["logGroupArn"]
    logs.tag_resource(resourceArn=arn, tags={"team": "ml"})
    logs.untag_resource(resourceArn=arn, tagKeys=["i"])
    assert logs.list_tags_for_resource(resourceArn=arn)["tags"] == {"team": "ml"}
    for n in names:
        logs.delete_log_group(logGroupName=n)
    with pytest.raises(ClientError) as e:
        logs.delete_log_group(logGroupName=names[0])
    assert code(e) == "ResourceNotFoundException"
    assert e.value.response["Error"]["Message"] == "The specified log group does not exist."


def test_put_and_get_events(logs, group):
    logs.create_log_stream(logGroupName=group, logStreamName="s/1")
    with pytest.raises(ClientError) as e:
        logs.create_log_stream(logGroupName=group, logStreamName="s/1")
    assert code(e) == "ResourceAlreadyExistsException"
    t = now_ms() - 10_000
    events = [{"timestamp": t + i, "message": f"line {i}"} for i in range(25)]
    r = logs.put_log_events(logGroupName=group, logStreamName="s/1", logEvents=events)
    assert "rejectedLogEventsInfo" not in r
    # Tail by default, the head on request, tokens both ways.
    tail = logs.get_log_events(logGroupName=group, logStreamName="s/1", limit=10)
    assert [e["message"] for e in tail["events"]] == [f"line {i}" for i in range(15, 25)]
    back = logs.get_log_events(logGroupName=group, logStreamName="s/1", limit=10, nextToken=tail["nextBackwardToken"])
    assert [e["message"] for e in back["events"]] == [f"line {i}" for i in range(5, 15)]
    head = logs.get_log_events(logGroupName=group, logStreamName="s/1", limit=10, startFromHead=True)
    assert [e["message"] for e in head["events"]] == [f"line {i}" for i in range(10)]
    token, seen = head["nextForwardToken"], 10
    while True:
        page = logs.get_log_events(logGroupName=group, logStreamName="s/1", limit=10, nextToken=token)
        seen += len(page["events"])
        if page["nextForwardToken"] == token:
            break
        token = page["nextForwardToken"]
    assert seen == 25
    window = logs.get_log_events(logGroupName=group, logStreamName="s/1", startTime=t + 3, endTime=t + 6, startFromHead=True)
    assert [e["message"] for e in window["events"]] == ["line 3", "line 4", "line 5"]
    assert all(e["ingestionTime"] >= e["timestamp"] for e in head["events"])
    stream = logs.describe_log_streams(logGroupName=group)["logStreams"][0]
    assert stream["firstEventTimestamp"] == t and stream["lastEventTimestamp"] == t + 24
    assert stream["storedBytes"] == sum(len(e["message"]) for e in events)


def test_put_log_events_rules(logs, group):
    logs.create_log_stream(logGroupName=group, logStreamName="rules")
    t = now_ms()
    with pytest.raises(ClientError) as e:
        logs.put_log_events(logGroupName=group, logStreamName="rules",
                            logEvents=[{"timestamp": t, "message": "b"}, {"timestamp": t - 5, "message": "a"}])
    assert code(e) == "InvalidParameterException" and "chronological" in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as e:
        logs.put_log_events(logGroupName=group, logStreamName="nope", logEvents=[{"timestamp": t, "message": "x"}])
    assert code(e) == "ResourceNotFoundException"
    assert e.value.response["Error"]["Message"] == "The specified log stream does not exist."
    with pytest.raises(ClientError) as e:
        logs.put_log_events(logGroupName=group, logStreamName="rules", logEvents=[
            {"timestamp": t - 2 * 86_400_000, "message": "a"}, {"timestamp": t, "message": "b"}])
    assert "cannot span more than 24 hours" in e.value.response["Error"]["Message"]
    old = t - 15 * 86_400_000
    r = logs.put_log_events(logGroupName=group, logStreamName="rules", logEvents=[
        {"timestamp": old, "message": "too old"}, {"timestamp": old + 1, "message": "too old too"},
        {"timestamp": old + 2 * 3_600_000, "message": "too old three"}])
    # tooOldLogEventEndIndex is exclusive (API reference, RejectedLogEventsInfo).
    assert r["rejectedLogEventsInfo"] == {"tooOldLogEventEndIndex": 3}
    r = logs.put_log_events(logGroupName=group, logStreamName="rules", logEvents=[
        {"timestamp": t, "message": "fine"}, {"timestamp": t + 3 * 3_600_000, "message": "too new"}])
    assert r["rejectedLogEventsInfo"] == {"tooNewLogEventStartIndex": 1}
    got = logs.get_log_events(logGroupName=group, logStreamName="rules", startFromHead=True)["events"]
    assert [e["message"] for e in got] == ["fine"]


def test_filter_patterns_across_streams(logs, group):
    t = now_ms() - 60_000
    lines = {
        "a": ['ERROR disk full', 'INFO all good', '{"level": "ERROR", "latency": 250}', '{"level": "INFO", "latency": 5}'],
        "b": ['WARN slow request', 'ERROR "quoted phrase" here', '127.0.0.1 - frank [10/Oct/2000] "GET /x" 404 2326'],
    }
    for i, (stream, msgs) in enumerate(lines.items()):
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        logs.put_log_events(logGroupName=group, logStreamName=stream,
                            logEvents=[{"timestamp": t + 10 * j + i, "message": m} for j, m in enumerate(msgs)])

    def matching(pattern, **kw):
        r = logs.filter_log_events(logGroupName=group, filterPattern=pattern, **kw)
        return [e["message"] for e in r["events"]]

    assert len(matching("")) == 7
    json_error = '{"level": "ERROR", "latency": 250}'
    assert matching("ERROR") == ['ERROR disk full', 'ERROR "quoted phrase" here', json_error]
    assert matching('"quoted phrase"') == ['ERROR "quoted phrase" here']
    assert matching("ERROR -disk") == ['ERROR "quoted phrase" here', json_error]
    assert matching('{ $.level = "ERROR" && $.latency > 100 }') == ['{"level": "ERROR", "latency": 250}']
    assert matching("[ip, id, user, ts, request, status = 404, size > 1000]") == [lines["b"][2]]
    assert matching("ERROR", logStreamNames=["b"]) == ['ERROR "quoted phrase" here']
    assert matching("", startTime=t + 20, endTime=t + 30) == [json_error, lines["b"][2]]
    # Interleaved in time order, page by page.
    pages = logs.get_paginator("filter_log_events").paginate(
        logGroupName=group, PaginationConfig={"PageSize": 2}).build_full_result()["events"]
    assert [e["timestamp"] for e in pages] == sorted(e["timestamp"] for e in pages)
    assert len(pages) == 7 and len({e["eventId"] for e in pages}) == 7
    with pytest.raises(ClientError) as e:
        logs.filter_log_events(logGroupName=group, filterPattern="{ $.level = ")
    assert code(e) == "InvalidParameterException"


def test_retention_hides_old_events(logs, group):
    logs.create_log_stream(logGroupName=group, logStreamName="r")
    t = now_ms()
    logs.put_log_events(logGroupName=group, logStreamName="r", logEvents=[
        {"timestamp": t - 3 * 86_400_000, "message": "three days old"}])
    logs.put_log_events(logGroupName=group, logStreamName="r", logEvents=[{"timestamp": t, "message": "fresh"}])
    assert len(logs.filter_log_events(logGroupName=group)["events"]) == 2
    logs.put_retention_policy(logGroupName=group, retentionInDays=1)
    assert [e["message"] for e in logs.filter_log_events(logGroupName=group)["events"]] == ["fresh"]
    got = logs.get_log_events(logGroupName=group, logStreamName="r", startFromHead=True)["events"]
    assert [e["message"] for e in got] == ["fresh"]
    r = logs.put_log_events(logGroupName=group, logStreamName="r", logEvents=[
        {"timestamp": t - 2 * 86_400_000, "message": "expired"}])
    assert r["rejectedLogEventsInfo"] == {"expiredLogEventEndIndex": 1}
    logs.delete_retention_policy(logGroupName=group)
    assert len(logs.filter_log_events(logGroupName=group)["events"]) == 2


def test_streams_order_and_delete(logs, group):
    t = now_ms()
    for i, name in enumerate(["c", "a", "b"]):
        logs.create_log_stream(logGroupName=group, logStreamName=name)
        logs.put_log_events(logGroupName=group, logStreamName=name, logEvents=[{"timestamp": t + i, "message": name}])
    by_name = [s["logStreamName"] for s in logs.describe_log_streams(logGroupName=group)["logStreams"]]
    assert by_name == ["a", "b", "c"]
    by_time = [s["logStreamName"] for s in logs.describe_log_streams(
        logGroupName=group, orderBy="LastEventTime", descending=True)["logStreams"]]
    assert by_time == ["b", "a", "c"]
    with pytest.raises(ClientError) as e:
        logs.describe_log_streams(logGroupName=group, orderBy="LastEventTime", logStreamNamePrefix="a")
    assert code(e) == "InvalidParameterException"
    paged = logs.get_paginator("describe_log_streams").paginate(
        logGroupName=group, PaginationConfig={"PageSize": 1}).build_full_result()["logStreams"]
    assert [s["logStreamName"] for s in paged] == ["a", "b", "c"]
    logs.delete_log_stream(logGroupName=group, logStreamName="a")
    assert [e["message"] for e in logs.filter_log_events(logGroupName=group)["events"]] == ["c", "b"]
    with pytest.raises(ClientError) as e:
        logs.get_log_events(logGroupName=group, logStreamName="a")
    assert code(e) == "ResourceNotFoundException"


def test_insights_queries(logs, group):
    t = now_ms() - 120_000
    logs.create_log_stream(logGroupName=group, logStreamName="api")
    events = [{"timestamp": t + i * 1000,
               "message": json.dumps({"level": "ERROR" if i % 4 == 0 else "INFO", "latency": i * 10, "path": f"/p{i % 2}"})}
              for i in range(20)]
    logs.put_log_events(logGroupName=group, logStreamName="api", logEvents=events)
    start, end = (t // 1000) - 1, (now_ms() // 1000) + 1

    def run(q):
        qid = logs.start_query(logGroupName=group, startTime=start, endTime=end, queryString=q)["queryId"]
        r = logs.get_query_results(queryId=qid)
        assert r["status"] == "Complete"
        return [{f["field"]: f["value"] for f in row} for row in r["results"]], r["statistics"]

    rows, stats = run('filter level = "ERROR" | stats count(*) as errors, avg(latency) as lat')
    assert rows == [{"errors": "5", "lat": "80"}]
    assert stats["recordsScanned"] == 20
    rows, _ = run("stats count(*) as n by path | sort path asc")
    assert rows == [{"path": "/p0", "n": "10"}, {"path": "/p1", "n": "10"}]
    rows, _ = run("fields @timestamp, latency | sort latency desc | limit 3")
    assert [r["latency"] for r in rows] == ["190", "180", "170"]
    with pytest.raises(ClientError) as e:
        logs.start_query(logGroupName=group, startTime=start, endTime=end, queryString="stats count(* by")
    assert code(e) == "MalformedQueryException"
    assert any(q["status"] == "Complete" for q in logs.describe_queries(logGroupName=group)["queries"])


def test_subscription_filter_delivers_to_lambda(logs, make_client, group):
    import base64, gzip, io, os, zipfile
    from pathlib import Path
    runtimes = Path(os.environ.get("BASALT_RUNTIME_DIR", Path.home() / ".cache/basalt/runtimes"))
    if not any(runtimes.glob("python3.*/.installed")):
        pytest.skip("no Lambda Python runtime installed (basalt runtimes pull)")
    lam, s3 = make_client("lambda"), make_client("s3")
    bucket = unique("subs")
    s3.create_bucket(Bucket=bucket)
    src = '''
import base64, gzip, json, boto3, os
def handler(event, context):
    doc = json.loads(gzip.decompress(base64.b64decode(event["awslogs"]["data"])))
    boto3.client("s3").put_object(Bucket=os.environ["BUCKET"], Key="got/" + context.aws_request_id,
                                  Body=json.dumps(doc).encode())
'''
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("index.py", src)
    fn = unique("subfn")
    arn = lam.create_function(FunctionName=fn, Runtime="python3.12", Role=f"arn:aws:iam::{ACCOUNT}:role/r",
                              Handler="index.handler", Code={"ZipFile": buf.getvalue()}, Timeout=30,
                              Environment={"Variables": {"BUCKET": bucket}})["FunctionArn"]
    lam.get_waiter("function_active_v2").wait(FunctionName=fn)
    with pytest.raises(ClientError) as e:
        logs.put_subscription_filter(logGroupName=group, filterName="f", filterPattern="ERROR",
                                     destinationArn=arn + "-missing")
    assert code(e) == "InvalidParameterException"
    logs.put_subscription_filter(logGroupName=group, filterName="errors", filterPattern="ERROR", destinationArn=arn)
    assert [f["filterName"] for f in logs.describe_subscription_filters(logGroupName=group)["subscriptionFilters"]] == ["errors"]
    logs.create_log_stream(logGroupName=group, logStreamName="app")
    t = now_ms()
    logs.put_log_events(logGroupName=group, logStreamName="app", logEvents=[
        {"timestamp": t, "message": "INFO fine"}, {"timestamp": t + 1, "message": "ERROR broken"}])
    deadline = time.time() + 30
    while time.time() < deadline and not s3.list_objects_v2(Bucket=bucket, Prefix="got/").get("KeyCount"):
        time.sleep(0.2)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="got/").get("Contents", [])]
    assert len(keys) == 1
    doc = json.loads(s3.get_object(Bucket=bucket, Key=keys[0])["Body"].read())
    assert doc["messageType"] == "DATA_MESSAGE" and doc["logGroup"] == group and doc["logStream"] == "app"
    assert doc["subscriptionFilters"] == ["errors"] and doc["owner"] == ACCOUNT
    assert [e["message"] for e in doc["logEvents"]] == ["ERROR broken"]
    logs.put_subscription_filter(logGroupName=group, filterName="second", filterPattern="", destinationArn=arn)
    with pytest.raises(ClientError) as e:
        logs.put_subscription_filter(logGroupName=group, filterName="third", filterPattern="", destinationArn=arn)
    assert code(e) == "LimitExceededException"
    logs.delete_subscription_filter(logGroupName=group, filterName="second")
    logs.delete_subscription_filter(logGroupName=group, filterName="errors")
    assert logs.describe_subscription_filters(logGroupName=group)["subscriptionFilters"] == []


def _metric_sum(cw, ns, name, dims=(), start=None, unit=None):
    from datetime import datetime, timedelta, timezone
    now = datetime.now(timezone.utc)
    kw = {"Unit": unit} if unit else {}
    got = cw.get_metric_statistics(Namespace=ns, MetricName=name, Dimensions=list(dims),
                                   StartTime=now - timedelta(minutes=10), EndTime=now + timedelta(minutes=2),
                                   Period=3600, Statistics=["Sum", "SampleCount", "Maximum"], **kw)["Datapoints"]
    return got[0] if got else None


def test_metric_filter_publishes_counts_and_values(logs, make_client, group):
    cw = make_client("cloudwatch")
    ns = unique("MF")
    logs.put_metric_filter(logGroupName=group, filterName="errors", filterPattern="ERROR", metricTransformations=[
        {"metricName": "Errors", "metricNamespace": ns, "metricValue": "1", "defaultValue": 0, "unit": "Count"}])
    logs.put_metric_filter(logGroupName=group, filterName="latency", filterPattern="{ $.latency = * }",
                           metricTransformations=[{"metricName": "Latency", "metricNamespace": ns,
                                                   "metricValue": "$.latency", "unit": "Milliseconds"}])
    logs.create_log_stream(logGroupName=group, logStreamName="app")
    t = now_ms()
    logs.put_log_events(logGroupName=group, logStreamName="app", logEvents=[
        {"timestamp": t, "message": "ERROR one"},
        {"timestamp": t + 1, "message": "INFO fine"},
        {"timestamp": t + 2, "message": json.dumps({"latency": 40, "level": "ERROR"})},
        {"timestamp": t + 3, "message": json.dumps({"latency": 60})},
        {"timestamp": t + 4, "message": "ERROR two"},
    ])
    errors = _metric_sum(cw, ns, "Errors")
    # Three matches ("ERROR" also matches the JSON event that holds it) and two defaults of 0.
    assert errors["Sum"] == 3 and errors["SampleCount"] == 5 and errors["Unit"] == "Count"
    lat = _metric_sum(cw, ns, "Latency")
    assert lat["Sum"] == 100 and lat["SampleCount"] == 2 and lat["Maximum"] == 60
    assert lat["Unit"] == "Milliseconds"
    listed = {m["MetricName"] for m in cw.list_metrics(Namespace=ns)["Metrics"]}
    assert listed == {"Errors", "Latency"}
    # A deleted filter publishes no more.
    logs.delete_metric_filter(logGroupName=group, filterName="errors")
    logs.put_log_events(logGroupName=group, logStreamName="app", logEvents=[{"timestamp": now_ms(), "message": "ERROR three"}])
    assert _metric_sum(cw, ns, "Errors")["Sum"] == 3


def test_metric_filter_dimensions(logs, make_client, group):
    cw = make_client("cloudwatch")
    ns = unique("MFD")
    logs.put_metric_filter(logGroupName=group, filterName="bytes",
                           filterPattern="[ip, user, username, timestamp, request, status_code, bytes]",
                           metricTransformations=[{"metricName": "Bytes", "metricNamespace": ns, "metricValue": "$bytes",
                                                   "dimensions": {"Status": "$status_code"}, "unit": "Bytes"}])
    logs.put_metric_filter(logGroupName=group, filterName="json", filterPattern="{ $.op = * }",
                           metricTransformations=[{"metricName": "Ops", "metricNamespace": ns, "metricValue": "1",
                                                   "dimensions": {"Op": "$.op", "Region": "$.where.region"}}])
    logs.create_log_stream(logGroupName=group, logStreamName="web")
    t = now_ms()
    lines = [
        '127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /a.gif HTTP/1.0" 200 1534',
        '127.0.0.1 - frank [10/Oct/2000:13:35:22 -0700] "GET /a.gif HTTP/1.0" 500 5324',
        '127.0.0.1 - frank [10/Oct/2000:13:50:35 -0700] "GET /a.gif HTTP/1.0" 200 4355',
        json.dumps({"op": "GET", "where": {"region": "eu"}}),
        json.dumps({"op": "GET", "where": {"region": "eu"}}),
        json.dumps({"op": "PUT"}),
    ]
    logs.put_log_events(logGroupName=group, logStreamName="web",
                        logEvents=[{"timestamp": t + i, "message": m} for i, m in enumerate(lines)])
    ok = _metric_sum(cw, ns, "Bytes", [{"Name": "Status", "Value": "200"}])
    assert ok["Sum"] == 1534 + 4355 and ok["SampleCount"] == 2 and ok["Unit"] == "Bytes"
    assert _metric_sum(cw, ns, "Bytes", [{"Name": "Status", "Value": "500"}])["Sum"] == 5324
    # Points carry their dimensions: none were published without them.
    assert _metric_sum(cw, ns, "Bytes") is None
    gets = _metric_sum(cw, ns, "Ops", [{"Name": "Op", "Value": "GET"}, {"Name": "Region", "Value": "eu"}])
    assert gets["Sum"] == 2
    # A dimension whose field the event lacks is left out of its point.
    assert _metric_sum(cw, ns, "Ops", [{"Name": "Op", "Value": "PUT"}])["Sum"] == 1
    dims = sorted(tuple(sorted((d["Name"], d["Value"]) for d in m["Dimensions"]))
                  for m in cw.list_metrics(Namespace=ns, MetricName="Ops")["Metrics"])
    assert dims == [(("Op", "GET"), ("Region", "eu")), (("Op", "PUT"),)]


def test_metric_filter_describe_and_delete(logs, group):
    other = group + "-other"
    logs.create_log_group(logGroupName=other)
    try:
        for name in ["b-filter", "a-filter", "c-other"]:
            logs.put_metric_filter(logGroupName=group, filterName=name, filterPattern="ERROR", metricTransformations=[
                {"metricName": name.upper(), "metricNamespace": "NS", "metricValue": "1"}])
        logs.put_metric_filter(logGroupName=other, filterName="x", filterPattern="", metricTransformations=[
            {"metricName": "A-FILTER", "metricNamespace": "NS", "metricValue": "2", "defaultValue": 0.5}])
        got = logs.describe_metric_filters(logGroupName=group)["metricFilters"]
        assert [f["filterName"] for f in got] == ["a-filter", "b-filter", "c-other"]
        f = got[0]
        assert f["logGroupName"] == group and f["filterPattern"] == "ERROR"
        assert f["metricTransformations"] == [{"metricName": "A-FILTER", "metricNamespace": "NS", "metricValue": "1"}]
        assert abs(f["creationTime"] - now_ms()) < 60_000
        assert [f["filterName"] for f in logs.describe_metric_filters(
            logGroupName=group, filterNamePrefix="a")["metricFilters"]] == ["a-filter"]
        by_metric = logs.describe_metric_filters(metricName="A-FILTER", metricNamespace="NS")["metricFilters"]
        assert sorted((f["logGroupName"], f["filterName"]) for f in by_metric) == [(group, "a-filter"), (other, "x")]
        assert by_metric[[f["logGroupName"] for f in by_metric].index(other)]["metricTransformations"][0]["defaultValue"] == 0.5
        pages = list(logs.get_paginator("describe_metric_filters").paginate(
            logGroupName=group, PaginationConfig={"PageSize": 2}))
        assert [[f["filterName"] for f in p["metricFilters"]] for p in pages] == [["a-filter", "b-filter"], ["c-other"]]
        # Putting a filter again replaces it.
        logs.put_metric_filter(logGroupName=group, filterName="a-filter", filterPattern="WARN", metricTransformations=[
            {"metricName": "W", "metricNamespace": "NS", "metricValue": "3"}])
        f = logs.describe_metric_filters(logGroupName=group, filterNamePrefix="a-")["metricFilters"]
        assert len(f) == 1 and f[0]["filterPattern"] == "WARN" and f[0]["metricTransformations"][0]["metricValue"] == "3"
        logs.delete_metric_filter(logGroupName=group, filterName="a-filter")
        with pytest.raises(ClientError) as e:
            logs.delete_metric_filter(logGroupName=group, filterName="a-filter")
        assert code(e) == "ResourceNotFoundException"
        assert [f["filterName"] for f in logs.describe_metric_filters(logGroupName=group)["metricFilters"]] == ["b-filter", "c-other"]
        with pytest.raises(ClientError) as e:
            logs.describe_metric_filters(logGroupName=group + "-missing")
        assert code(e) == "ResourceNotFoundException"
    finally:
        logs.delete_log_group(logGroupName=other)


def test_metric_filter_validation_and_limits(logs, group):
    def put(name="f", pattern="ERROR", **t):
        base = {"metricName": "M", "metricNamespace": "NS", "metricValue": "1"}
        base.update(t)
        logs.put_metric_filter(logGroupName=group, filterName=name, filterPattern=pattern, metricTransformations=[base])

    def refused(**kw):
        with pytest.raises(ClientError) as e:
            put(**kw)
        return code(e), e.value.response["Error"]["Message"]

    assert refused(pattern="{ $.a = ") == ("InvalidParameterException", "If a filter pattern starts with '{' it must end with '}'")
    assert refused(metricValue="$.latency")[0] == "InvalidParameterException"
    assert refused(pattern="[a, b]", metricValue="$c")[0] == "InvalidParameterException"
    assert refused(dimensions={"A": "$.a"}) == ("InvalidParameterException", "The specified filter pattern does not support dimensions")
    assert refused(pattern="{ $.a = * }", dimensions={"A": "$.a"}, defaultValue=0) == (
        "InvalidParameterException", "Invalid metric transformation: dimensions and default value are mutually exclusive properties")
    assert refused(pattern="{ $.a = * }", dimensions={k: f"$.{k}" for k in "abcd"})[0] == "InvalidParameterException"
    # The model's own constraints.
    with pytest.raises(ClientError) as e:
        logs.put_metric_filter(logGroupName=group, filterName="f", filterPattern="", metricTransformations=[
            {"metricName": "M*", "metricNamespace": "NS", "metricValue": "1"}])
    assert "metricName" in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as e:
        logs.put_metric_filter(logGroupName=group + "-missing", filterName="f", filterPattern="",
                               metricTransformations=[{"metricName": "M", "metricNamespace": "NS", "metricValue": "1"}])
    assert code(e) == "ResourceNotFoundException"
    for i in range(100):
        put(name=f"f{i:03}")
    assert refused(name="one-too-many")[0] == "LimitExceededException"
    put(name="f000", metricValue="2")  # replacing one is not adding one
    assert len(list(logs.get_paginator("describe_metric_filters").paginate(logGroupName=group).search("metricFilters"))) == 100


def test_test_metric_filter(logs):
    r = logs.test_metric_filter(filterPattern="[..., request=*.html*, status_code=4*,]", logEventMessages=[
        '127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /index.html HTTP/1.0" 404 1534',
        '127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /index.html HTTP/1.0" 200 1534',
    ])
    assert r["matches"] == [{
        "eventNumber": 1,
        "eventMessage": '127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /index.html HTTP/1.0" 404 1534',
        "extractedValues": {"$1": "127.0.0.1", "$2": "-", "$3": "frank", "$4": "10/Oct/2000:13:25:15 -0700",
                            "$request": "GET /index.html HTTP/1.0", "$status_code": "404", "$7": "1534"},
    }]
    r = logs.test_metric_filter(filterPattern="ERROR", logEventMessages=["INFO", "ERROR x"])
    assert r["matches"] == [{"eventNumber": 2, "eventMessage": "ERROR x", "extractedValues": {}}]
    with pytest.raises(ClientError) as e:
        logs.test_metric_filter(filterPattern="foo(bar)", logEventMessages=["x"])
    assert code(e) == "InvalidParameterException"
    assert e.value.response["Error"]["Message"] == "Invalid character(s) in term '('"


def test_metric_filter_on_lambda_output(logs, make_client):
    import io, os, zipfile
    from pathlib import Path
    runtimes = Path(os.environ.get("BASALT_RUNTIME_DIR", Path.home() / ".cache/basalt/runtimes"))
    if not any(runtimes.glob("python3.*/.installed")):
        pytest.skip("no Lambda Python runtime installed (basalt runtimes pull)")
    lam, cw = make_client("lambda"), make_client("cloudwatch")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("index.py", "def handler(event, context):\n    print('ERROR ' + event['what'])\n    return 1\n")
    fn = unique("mffn")
    group = f"/aws/lambda/{fn}"
    logs.create_log_group(logGroupName=group)
    ns = unique("MFL")
    logs.put_metric_filter(logGroupName=group, filterName="errors", filterPattern="ERROR", metricTransformations=[
        {"metricName": "Errors", "metricNamespace": ns, "metricValue": "1"}])
    lam.create_function(FunctionName=fn, Runtime="python3.12", Role=f"arn:aws:iam::{ACCOUNT}:role/r",
                        Handler="index.handler", Code={"ZipFile": buf.getvalue()}, Timeout=30)
    lam.get_waiter("function_active_v2").wait(FunctionName=fn)
    try:
        for what in ["a", "b"]:
            lam.invoke(FunctionName=fn, Payload=json.dumps({"what": what}).encode())
        # Function output is written a moment after the answer, as on AWS.
        deadline = time.time() + 10
        got = None
        while time.time() < deadline and not (got and got["Sum"] == 2):
            time.sleep(0.2)
            got = _metric_sum(cw, ns, "Errors")
        assert got and got["Sum"] == 2
    finally:
        lam.delete_function(FunctionName=fn)
        logs.delete_log_group(logGroupName=group)
