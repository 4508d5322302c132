"""Amazon CloudWatch through boto3 (rpcv2 CBOR):
metrics, metric math, ListMetrics, dashboards, alarms and their evaluation."""
from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT, REGION, unique


@pytest.fixture(scope="module")
def cw(make_client):
    return make_client("cloudwatch")


def code(e):
    return e.value.response["Error"]["Code"]


def minute(offset=0):
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    return now + timedelta(minutes=offset)


def test_put_and_get_statistics_with_exact_dimensions(cw):
    ns = unique("Compat")
    t = minute(-3)
    dims = [{"Name": "Api", "Value": "get"}]
    cw.put_metric_data(Namespace=ns, MetricData=[
        {"MetricName": "Latency", "Value": 10, "Unit": "Milliseconds", "Timestamp": t + timedelta(seconds=1), "Dimensions": dims},
        {"MetricName": "Latency", "Value": 30, "Unit": "Milliseconds", "Timestamp": t + timedelta(seconds=2), "Dimensions": dims},
        {"MetricName": "Latency", "Value": 900, "Unit": "Milliseconds", "Timestamp": t + timedelta(seconds=3)},
        {"MetricName": "Latency", "StatisticValues": {"SampleCount": 4, "Sum": 80, "Minimum": 5, "Maximum": 40},
         "Unit": "Milliseconds", "Timestamp": t + timedelta(seconds=61), "Dimensions": dims},
    ])
    got = cw.get_metric_statistics(Namespace=ns, MetricName="Latency", Dimensions=dims,
                                   StartTime=t, EndTime=t + timedelta(minutes=2), Period=60,
                                   Statistics=["Sum", "SampleCount", "Average", "Minimum", "Maximum"])
    points = sorted(got["Datapoints"], key=lambda p: p["Timestamp"])
    assert got["Label"] == "Latency"
    assert [(p["Timestamp"], p["Sum"], p["SampleCount"], p["Average"], p["Minimum"], p["Maximum"]) for p in points] == [
        (t, 40.0, 2.0, 20.0, 10.0, 30.0), (t + timedelta(minutes=1), 80.0, 4.0, 20.0, 5.0, 40.0)]
    assert points[0]["Unit"] == "Milliseconds"
    bare = cw.get_metric_statistics(Namespace=ns, MetricName="Latency", StartTime=t,
                                    EndTime=t + timedelta(minutes=2), Period=60, Statistics=["Sum"])
    assert [p["Sum"] for p in bare["Datapoints"]] == [900.0]
    other = cw.get_metric_statistics(Namespace=ns, MetricName="Latency", StartTime=t,
                                     EndTime=t + timedelta(minutes=2), Period=60, Statistics=["Sum"],
                                     Dimensions=[{"Name": "Api", "Value": "put"}])
    assert other["Datapoints"] == []


def test_percentiles(cw):
    ns = unique("Pct")
    t = minute(-2)
    cw.put_metric_data(Namespace=ns, MetricData=[
        {"MetricName": "Lat", "Values": [float(v) for v in range(1, 51)], "Timestamp": t + timedelta(seconds=5)},
        {"MetricName": "Lat", "Values": [float(v) for v in range(51, 101)], "Counts": [1.0] * 50,
         "Timestamp": t + timedelta(seconds=6)},
    ])
    got = cw.get_metric_statistics(Namespace=ns, MetricName="Lat", StartTime=t, EndTime=t + timedelta(minutes=1),
                                   Period=60, ExtendedStatistics=["p99", "p50", "p90"])
    assert got["Datapoints"][0]["ExtendedStatistics"] == {"p99": 99.0, "p50": 50.0, "p90": 90.0}


def test_get_metric_data_math(cw):
    ns = unique("Math")
    t = minute(-4)
    cw.put_metric_data(Namespace=ns, MetricData=[
        {"MetricName": "Req", "Value": 10, "Timestamp": t + timedelta(seconds=1)},
        {"MetricName": "Req", "Value": 20, "Timestamp": t + timedelta(seconds=61)},
        {"MetricName": "Err", "Value": 1, "Timestamp": t + timedelta(seconds=2)},
        {"MetricName": "Err", "Value": 5, "Timestamp": t + timedelta(seconds=62)},
    ])

    def stat(i, m):
        return {"Id": i, "ReturnData": False,
                "MetricStat": {"Metric": {"Namespace": ns, "MetricName": m}, "Period": 60, "Stat": "Sum"}}

    got = cw.get_metric_data(StartTime=t, EndTime=t + timedelta(minutes=3), ScanBy="TimestampAscending",
                             MetricDataQueries=[stat("req", "Req"), stat("err", "Err"),
                                                {"Id": "rate", "Expression": "100 * err / req", "Label": "Error rate"},
                                                {"Id": "total", "Expression": "SUM(METRICS())"},
                                                {"Id": "filled", "Expression": "FILL(req, 0)"},
                                                {"Id": "gated", "Expression": "IF(req > 15, req, 0)"},
                                                {"Id": "rated", "Expression": "RATE(req)"}])
    r = {x["Id"]: x for x in got["MetricDataResults"]}
    assert set(r) == {"rate", "total", "filled", "gated", "rated"}
    assert r["rate"]["Label"] == "Error rate" and r["rate"]["Values"] == [10.0, 25.0]
    assert r["rate"]["Timestamps"] == [t, t + timedelta(minutes=1)]
    assert r["rate"]["StatusCode"] == "Complete"
    assert r["total"]["Values"] == [11.0, 25.0]
    assert r["filled"]["Values"] == [10.0, 20.0, 0.0]
    assert r["gated"]["Values"] == [0.0, 20.0]
    assert r["rated"]["Values"] == [pytest.approx(10 / 60)]
    # Paginated by data point, newest first by default.
    q = [{"Id": "req", "MetricStat": {"Metric": {"Namespace": ns, "MetricName": "Req"}, "Period": 60, "Stat": "Sum"}}]
    pages = list(cw.get_paginator("get_metric_data").paginate(
        StartTime=t, EndTime=t + timedelta(minutes=3), MetricDataQueries=q, PaginationConfig={"PageSize": 1}))
    assert [v for p in pages for v in p["MetricDataResults"][0]["Values"]] == [20.0, 10.0]
    with pytest.raises(ClientError) as e:
        cw.get_metric_data(StartTime=t, EndTime=t + timedelta(minutes=1),
                           MetricDataQueries=[{"Id": "e1", "Expression": "NOPE(m1"}])
    assert code(e) == "ValidationError"



def test_get_metric_data_search(cw):
    """SEARCH as the User Guide's "CloudWatch search expression syntax" page describes it: a
    schema with the exact dimension names, terms, NOT, and SEARCH inside metric math."""
    ns = unique("Search")
    t = minute(-4)

    def put(name, v, sec, **dims):
        cw.put_metric_data(Namespace=ns, MetricData=[{
            "MetricName": name, "Value": v, "Timestamp": t + timedelta(seconds=sec),
            "Dimensions": [{"Name": k, "Value": x} for k, x in dims.items()]}])

    put("Latency", 10, 1, Api="get")
    put("Latency", 30, 61, Api="get")
    put("Latency", 100, 2, Api="put")
    put("Latency", 7, 3, Api="get", Region="eu")
    put("Errors", 1, 4, Api="get")
    schema = f"{{{ns},Api}}"
    got = cw.get_metric_data(StartTime=t, EndTime=t + timedelta(minutes=3), ScanBy="TimestampAscending",
                             MetricDataQueries=[
                                 {"Id": "s", "Expression": f"SEARCH(' {schema} MetricName=\"Latency\" ', 'Sum', 60)"},
                                 {"Id": "total", "Expression": f"SUM(SEARCH(' {schema} Latency ', 'Sum', 60))"},
                                 {"Id": "noteu", "Expression": f"SEARCH(' Namespace=\"{ns}\" NOT Region=eu ', 'Maximum', 60)"}])
    by_id = {}
    for r in got["MetricDataResults"]:
        by_id.setdefault(r["Id"], []).append((r["Label"], r["Values"]))
    assert by_id["s"] == [("get Latency", [10.0, 30.0]), ("put Latency", [100.0])]
    assert by_id["total"] == [("total", [110.0, 30.0])]
    assert by_id["noteu"] == [("get Errors", [1.0]), ("get Latency", [10.0, 30.0]), ("put Latency", [100.0])]
    with pytest.raises(ClientError) as e:
        cw.get_metric_data(StartTime=t, EndTime=t + timedelta(minutes=1),
                           MetricDataQueries=[{"Id": "e1", "Expression": "SEARCH('{Unclosed', 'Sum', 60)"}])
    assert code(e) == "ValidationError"

def test_list_metrics(cw):
    ns = unique("List")
    cw.put_metric_data(Namespace=ns, MetricData=[
        {"MetricName": "Cpu", "Value": 1, "Dimensions": [{"Name": "Host", "Value": f"h{i}"}]} for i in range(3)
    ] + [{"MetricName": "Mem", "Value": 1}])
    listed = cw.list_metrics(Namespace=ns)["Metrics"]
    assert sorted((m["MetricName"], tuple((d["Name"], d["Value"]) for d in m["Dimensions"])) for m in listed) == [
        ("Cpu", (("Host", "h0"),)), ("Cpu", (("Host", "h1"),)), ("Cpu", (("Host", "h2"),)), ("Mem", ())]
    h1 = cw.list_metrics(Namespace=ns, Dimensions=[{"Name": "Host", "Value": "h1"}])["Metrics"]
    assert h1 == [{"Namespace": ns, "MetricName": "Cpu", "Dimensions": [{"Name": "Host", "Value": "h1"}]}]
    assert len(cw.list_metrics(Namespace=ns, MetricName="Cpu", RecentlyActive="PT3H")["Metrics"]) == 3


def test_dashboards(cw):
    name = unique("dash")
    body = {"widgets": [{"type": "metric", "x": 0, "y": 0, "width": 12, "height": 6,
                         "properties": {"metrics": [["A", "B"]], "region": REGION, "stat": "Sum", "period": 60}}]}
    text = json.dumps(body, indent=1)
    assert cw.put_dashboard(DashboardName=name, DashboardBody=text)["DashboardValidationMessages"] == []
    got = cw.get_dashboard(DashboardName=name)
    assert got["DashboardBody"] == text
    assert got["DashboardArn"] == f"arn:aws:cloudwatch::{ACCOUNT}:dashboard/{name}"
    entries = cw.list_dashboards(DashboardNamePrefix=name)["DashboardEntries"]
    assert [(e["DashboardName"], e["Size"]) for e in entries] == [(name, len(text))]
    with pytest.raises(ClientError) as e:
        cw.put_dashboard(DashboardName=name, DashboardBody='{"widgets": [{"type": "chart"}]}')
    assert code(e) == "InvalidParameterInput"
    assert e.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as e:
        cw.put_dashboard(DashboardName="bad name!", DashboardBody='{"widgets": []}')
    assert code(e) == "InvalidParameterInput"
    cw.delete_dashboards(DashboardNames=[name])
    with pytest.raises(ClientError) as e:
        cw.get_dashboard(DashboardName=name)
    assert code(e) == "ResourceNotFound"


def test_validation_errors(cw):
    with pytest.raises(ClientError) as e:
        cw.put_metric_data(Namespace="V", MetricData=[{"MetricName": "m", "Value": 1, "StatisticValues": {
            "SampleCount": 1, "Sum": 1, "Minimum": 1, "Maximum": 1}}])
    assert code(e) == "InvalidParameterCombination"
    with pytest.raises(ClientError) as e:
        cw.put_metric_data(Namespace="V", MetricData=[{"MetricName": "m", "Values": [1.0, 2.0], "Counts": [1.0]}])
    assert code(e) == "InvalidParameterValue"
    with pytest.raises(ClientError) as e:
        cw.put_metric_data(Namespace="V", MetricData=[{"MetricName": "m"}])
    assert code(e) == "MissingParameter"
    with pytest.raises(ClientError) as e:
        cw.get_metric_statistics(Namespace="V", MetricName="m", StartTime=minute(-5), EndTime=minute(),
                                 Period=61, Statistics=["Sum"])
    assert code(e) == "InvalidParameterValue"
    assert e.value.response["Error"]["Message"] == "The parameter Period must be a multiple of 60."


def alarm_args(name, ns, **extra):
    args = dict(AlarmName=name, Namespace=ns, MetricName="Errors", Statistic="Sum", Period=60,
                EvaluationPeriods=1, Threshold=5.0, ComparisonOperator="GreaterThanThreshold",
                Dimensions=[{"Name": "Api", "Value": "x"}])
    args.update(extra)
    return args


def wait_state(cw, name, state, timeout=45):
    deadline = time.time() + timeout
    while time.time() < deadline:
        a = cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]
        if a["StateValue"] == state:
            return a
        time.sleep(1)
    raise AssertionError(f"{name} never reached {state}: {a}")


def test_alarm_fires_on_breaching_point(cw):
    ns = unique("Alarm")
    name = unique("errs")
    cw.put_metric_alarm(**alarm_args(name, ns, AlarmDescription="too many errors"))
    a = cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]
    assert a["StateValue"] == "INSUFFICIENT_DATA"
    assert a["AlarmArn"] == f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}"
    assert (a["Threshold"], a["Period"], a["Statistic"], a["ActionsEnabled"]) == (5.0, 60, "Sum", True)
    cw.put_metric_data(Namespace=ns, MetricData=[{"MetricName": "Errors", "Value": 9,
                                                  "Dimensions": [{"Name": "Api", "Value": "x"}]}])
    a = wait_state(cw, name, "ALARM")
    assert a["StateReason"].startswith("Threshold Crossed: 1 out of the last 1 datapoints [9.0 (")
    assert json.loads(a["StateReasonData"])["recentDatapoints"] == [9.0]
    hist = cw.describe_alarm_history(AlarmName=name, HistoryItemType="StateUpdate")["AlarmHistoryItems"]
    assert hist[0]["HistorySummary"] == "Alarm updated from INSUFFICIENT_DATA to ALARM"
    data = json.loads(hist[0]["HistoryData"])
    assert (data["oldState"]["stateValue"], data["newState"]["stateValue"]) == ("INSUFFICIENT_DATA", "ALARM")
    created = cw.describe_alarm_history(AlarmName=name, HistoryItemType="ConfigurationUpdate")["AlarmHistoryItems"]
    assert created[0]["HistorySummary"] == f'Alarm "{name}" created'
    assert [x["AlarmName"] for x in cw.describe_alarms_for_metric(
        Namespace=ns, MetricName="Errors", Dimensions=[{"Name": "Api", "Value": "x"}])["MetricAlarms"]] == [name]
    cw.delete_alarms(AlarmNames=[name])
    assert cw.describe_alarms(AlarmNames=[name])["MetricAlarms"] == []


def test_set_alarm_state_and_actions(cw):
    ns = unique("Manual")
    name = unique("manual")
    cw.put_metric_alarm(**alarm_args(name, ns))
    cw.disable_alarm_actions(AlarmNames=[name])
    assert cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["ActionsEnabled"] is False
    cw.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="testing",
                       StateReasonData=json.dumps({"why": "test"}))
    a = cw.describe_alarms(AlarmNames=[name], StateValue="ALARM")["MetricAlarms"][0]
    assert (a["StateReason"], json.loads(a["StateReasonData"])) == ("testing", {"why": "test"})
    with pytest.raises(ClientError) as e:
        cw.set_alarm_state(AlarmName=unique("none"), StateValue="OK", StateReason="x")
    assert code(e) == "ResourceNotFound"
    with pytest.raises(ClientError) as e:
        cw.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="x", StateReasonData="{")
    assert code(e) == "InvalidFormat"
    cw.enable_alarm_actions(AlarmNames=[name])
    names = [a["AlarmName"] for a in cw.get_paginator("describe_alarms").paginate(
        AlarmNamePrefix=name, PaginationConfig={"PageSize": 1}).build_full_result()["MetricAlarms"]]
    assert names == [name]
    cw.delete_alarms(AlarmNames=[name])


def test_composite_alarm(cw):
    ns = unique("Comp")
    child = unique("child")
    parent = unique("parent")
    # `ignore`: with no data the child keeps the state it is set to.
    cw.put_metric_alarm(**alarm_args(child, ns, TreatMissingData="ignore"))
    cw.put_composite_alarm(AlarmName=parent, AlarmRule=f'ALARM("{child}")')
    cw.set_alarm_state(AlarmName=child, StateValue="ALARM", StateReason="forced")
    deadline = time.time() + 45
    while time.time() < deadline:
        c = cw.describe_alarms(AlarmNames=[parent], AlarmTypes=["CompositeAlarm"])["CompositeAlarms"][0]
        if c["StateValue"] == "ALARM":
            break
        time.sleep(1)
    assert c["StateValue"] == "ALARM" and c["AlarmRule"] == f'ALARM("{child}")'
    cw.delete_alarms(AlarmNames=[parent, child])
