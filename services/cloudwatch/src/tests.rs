//! Service-level tests: operations called with canonical JSON, alarms evaluated by driving
//! the clock through `run_due`.

use crate::CloudWatch;
use basalt_core::{AwsError, RequestContext, Service};
use basalt_store::MemoryState;
use serde_json::{Value, json};
use std::sync::Arc;

pub(crate) fn cw() -> Arc<CloudWatch> {
    CloudWatch::with_interval(Arc::new(MemoryState::default()), 10_000)
}

fn ctx() -> RequestContext {
    RequestContext::internal("000000000000", "us-east-1", "")
}

async fn call(cw: &CloudWatch, op: &str, input: Value) -> Result<Value, AwsError> {
    cw.call(&ctx(), op, input).await.map(|o| o.body)
}

pub(crate) async fn ok(cw: &CloudWatch, op: &str, input: Value) -> Value {
    match call(cw, op, input).await {
        Ok(v) => v,
        Err(e) => panic!("{op}: {e}"),
    }
}

pub(crate) async fn err(cw: &CloudWatch, op: &str, input: Value) -> AwsError {
    match call(cw, op, input).await {
        Ok(v) => panic!("{op} succeeded: {v}"),
        Err(e) => e,
    }
}

fn now_s() -> f64 {
    crate::model::now_ms() as f64 / 1000.0
}

/// A minute boundary a few minutes back, so that points fall in known periods.
pub(crate) fn base() -> f64 {
    ((now_s() / 60.0).floor() - 5.0) * 60.0
}

#[tokio::test]
async fn statistics_match_exact_dimension_sets() {
    let cw = cw();
    let t = base();
    ok(&cw, "PutMetricData", json!({"Namespace": "App", "MetricData": [
        {"MetricName": "Latency", "Value": 10.0, "Unit": "Milliseconds", "Timestamp": t + 1.0,
         "Dimensions": [{"Name": "Api", "Value": "get"}]},
        {"MetricName": "Latency", "Value": 30.0, "Unit": "Milliseconds", "Timestamp": t + 2.0,
         "Dimensions": [{"Name": "Api", "Value": "get"}]},
        {"MetricName": "Latency", "Value": 500.0, "Unit": "Milliseconds", "Timestamp": t + 3.0},
        {"MetricName": "Latency", "StatisticValues": {"SampleCount": 2, "Sum": 40, "Minimum": 15, "Maximum": 25},
         "Unit": "Milliseconds", "Timestamp": t + 61.0, "Dimensions": [{"Name": "Api", "Value": "get"}]},
    ]})).await;
    let got = ok(&cw, "GetMetricStatistics", json!({
        "Namespace": "App", "MetricName": "Latency", "Dimensions": [{"Name": "Api", "Value": "get"}],
        "StartTime": t, "EndTime": t + 120.0, "Period": 60,
        "Statistics": ["Sum", "SampleCount", "Average", "Minimum", "Maximum"],
    })).await;
    let dps = got["Datapoints"].as_array().unwrap();
    assert_eq!(dps.len(), 2, "{got}");
    assert_eq!(dps[0]["Timestamp"], json!(t as i64));
    assert_eq!(dps[0]["Sum"], json!(40.0));
    assert_eq!(dps[0]["Average"], json!(20.0));
    assert_eq!(dps[0]["Unit"], "Milliseconds");
    assert_eq!(dps[1]["SampleCount"], json!(2.0));
    assert_eq!(dps[1]["Minimum"], json!(15.0));
    assert_eq!(got["Label"], "Latency");
    // Without dimensions: only the dimensionless series.
    let bare = ok(
        &cw,
        "GetMetricStatistics",
        json!({
            "Namespace": "App", "MetricName": "Latency", "StartTime": t, "EndTime": t + 120.0,
            "Period": 60, "Statistics": ["Sum"],
        }),
    )
    .await;
    assert_eq!(
        bare["Datapoints"],
        json!([{"Timestamp": t as i64, "Sum": 500.0, "Unit": "Milliseconds"}])
    );
    // A unit filter that matches nothing.
    let none = ok(
        &cw,
        "GetMetricStatistics",
        json!({
            "Namespace": "App", "MetricName": "Latency", "StartTime": t, "EndTime": t + 120.0,
            "Period": 60, "Statistics": ["Sum"], "Unit": "Seconds",
        }),
    )
    .await;
    assert_eq!(none["Datapoints"], json!([]));
}

#[tokio::test]
async fn percentiles_come_from_the_values() {
    let cw = cw();
    let t = base();
    let values: Vec<f64> = (1..=100).map(f64::from).collect();
    ok(&cw, "PutMetricData", json!({"Namespace": "P", "MetricData": [
        {"MetricName": "Lat", "Values": values[..50], "Timestamp": t + 5.0},
        {"MetricName": "Lat", "Values": values[50..], "Counts": vec![1.0; 50], "Timestamp": t + 6.0},
    ]})).await;
    let got = ok(&cw, "GetMetricStatistics", json!({
        "Namespace": "P", "MetricName": "Lat", "StartTime": t, "EndTime": t + 60.0, "Period": 60,
        "ExtendedStatistics": ["p99", "p50", "p90"], "Statistics": ["SampleCount"],
    })).await;
    let dp = &got["Datapoints"][0];
    assert_eq!(dp["SampleCount"], json!(100.0));
    assert_eq!(
        dp["ExtendedStatistics"],
        json!({"p99": 99.0, "p50": 50.0, "p90": 90.0})
    );
}

#[tokio::test]
async fn put_metric_data_is_validated_like_cloudwatch() {
    let cw = cw();
    let e = err(&cw, "PutMetricData", json!({"Namespace": "A", "MetricData": [
        {"MetricName": "m", "Value": 1.0, "StatisticValues": {"SampleCount": 1, "Sum": 1, "Minimum": 1, "Maximum": 1}}]})).await;
    assert_eq!(e.code, "InvalidParameterCombinationException");
    assert!(
        e.message.contains("MetricData.member.1.Value"),
        "{}",
        e.message
    );
    let e = err(
        &cw,
        "PutMetricData",
        json!({"Namespace": "A", "MetricData": [{"MetricName": "m"}]}),
    )
    .await;
    assert_eq!(e.code, "MissingRequiredParameterException");
    let e = err(
        &cw,
        "PutMetricData",
        json!({"Namespace": "A", "MetricData": [
        {"MetricName": "m", "Values": [1.0, 2.0], "Counts": [1.0]}]}),
    )
    .await;
    assert_eq!(e.code, "InvalidParameterValueException");
    let e = err(
        &cw,
        "PutMetricData",
        json!({"Namespace": "A", "MetricData": [
        {"MetricName": "m", "Value": "NaN"}]}),
    )
    .await;
    assert_eq!(
        e.message,
        "The value NaN for parameter MetricData.member.1.Value is invalid."
    );
    let e = err(
        &cw,
        "PutMetricData",
        json!({"Namespace": "AWS/EC2", "MetricData": [
        {"MetricName": "m", "Value": 1.0}]}),
    )
    .await;
    assert_eq!(e.code, "InvalidParameterValueException");
    let e = err(
        &cw,
        "PutMetricData",
        json!({"Namespace": "A", "MetricData": [
        {"MetricName": "m", "Value": 1.0, "StorageResolution": 5}]}),
    )
    .await;
    assert_eq!(e.code, "InvalidParameterValueException");
    let dims: Vec<Value> = (0..31)
        .map(|i| json!({"Name": format!("d{i}"), "Value": "v"}))
        .collect();
    let e = err(
        &cw,
        "PutMetricData",
        json!({"Namespace": "A", "MetricData": [
        {"MetricName": "m", "Value": 1.0, "Dimensions": dims}]}),
    )
    .await;
    assert_eq!(e.code, "InvalidParameterValueException");
    let e = err(
        &cw,
        "PutMetricData",
        json!({"Namespace": "A", "MetricData": [
        {"MetricName": "m", "Value": 1.0, "Timestamp": now_s() - 20.0 * 86400.0}]}),
    )
    .await;
    assert_eq!(e.code, "InvalidParameterValueException");
    let e = err(
        &cw,
        "GetMetricStatistics",
        json!({"Namespace": "A", "MetricName": "m",
        "StartTime": 0, "EndTime": 60, "Period": 61, "Statistics": ["Sum"]}),
    )
    .await;
    assert_eq!(e.message, "The parameter Period must be a multiple of 60.");
    let e = err(
        &cw,
        "GetMetricStatistics",
        json!({"Namespace": "A", "MetricName": "m",
        "StartTime": 0, "EndTime": 60, "Period": 60}),
    )
    .await;
    assert_eq!(e.code, "MissingRequiredParameterException");
    let e = err(&cw, "GetMetricStatistics", json!({"Namespace": "A", "MetricName": "m",
        "StartTime": now_s() - 86400.0 * 2.0, "EndTime": now_s(), "Period": 60, "Statistics": ["Sum"]})).await;
    assert_eq!(e.code, "InvalidParameterCombinationException");
}

#[tokio::test]
async fn metric_data_math() {
    let cw = cw();
    let t = base();
    ok(
        &cw,
        "PutMetricData",
        json!({"Namespace": "M", "MetricData": [
            {"MetricName": "Req", "Value": 10.0, "Timestamp": t + 1.0},
            {"MetricName": "Req", "Value": 20.0, "Timestamp": t + 61.0},
            {"MetricName": "Err", "Value": 1.0, "Timestamp": t + 2.0},
            {"MetricName": "Err", "Value": 5.0, "Timestamp": t + 62.0},
        ]}),
    )
    .await;
    let stat = |id: &str, m: &str| {
        json!({"Id": id, "ReturnData": false,
        "MetricStat": {"Metric": {"Namespace": "M", "MetricName": m}, "Period": 60, "Stat": "Sum"}})
    };
    let got = ok(
        &cw,
        "GetMetricData",
        json!({
            "StartTime": t, "EndTime": t + 180.0, "ScanBy": "TimestampAscending",
            "MetricDataQueries": [
                stat("req", "Req"), stat("err", "Err"),
                {"Id": "rate", "Expression": "100 * err / req", "Label": "Error rate"},
                {"Id": "total", "Expression": "SUM(METRICS())"},
                {"Id": "filled", "Expression": "FILL(req, 0)"},
                {"Id": "big", "Expression": "IF(req > 15, req, 0)"},
            ],
        }),
    )
    .await;
    let r = got["MetricDataResults"].as_array().unwrap();
    assert_eq!(r.len(), 4, "{got}");
    assert_eq!(r[0]["Label"], "Error rate");
    assert_eq!(r[0]["Values"], json!([10.0, 25.0]));
    assert_eq!(r[0]["Timestamps"], json!([t as i64, t as i64 + 60]));
    assert_eq!(r[0]["StatusCode"], "Complete");
    assert_eq!(r[1]["Values"], json!([11.0, 25.0]));
    assert_eq!(r[2]["Values"], json!([10.0, 20.0, 0.0]));
    assert_eq!(r[3]["Values"], json!([0.0, 20.0]));
    // Pagination by data point, newest first by default.
    let page = ok(&cw, "GetMetricData", json!({"StartTime": t, "EndTime": t + 180.0, "MaxDatapoints": 1,
        "MetricDataQueries": [{"Id": "req", "MetricStat": {"Metric": {"Namespace": "M", "MetricName": "Req"}, "Period": 60, "Stat": "Sum"}}]})).await;
    assert_eq!(page["MetricDataResults"][0]["Values"], json!([20.0]));
    assert_eq!(page["MetricDataResults"][0]["StatusCode"], "PartialData");
    let next = ok(&cw, "GetMetricData", json!({"StartTime": t, "EndTime": t + 180.0, "MaxDatapoints": 1,
        "NextToken": page["NextToken"],
        "MetricDataQueries": [{"Id": "req", "MetricStat": {"Metric": {"Namespace": "M", "MetricName": "Req"}, "Period": 60, "Stat": "Sum"}}]})).await;
    assert_eq!(next["MetricDataResults"][0]["Values"], json!([10.0]));
    assert!(next.get("NextToken").is_none());
    let e = err(
        &cw,
        "GetMetricData",
        json!({"StartTime": t, "EndTime": t + 60.0,
        "MetricDataQueries": [{"Id": "e1", "Expression": "FOO(x"}]}),
    )
    .await;
    assert_eq!(e.code, "ValidationError");
    let e = err(
        &cw,
        "GetMetricData",
        json!({"StartTime": t, "EndTime": t + 60.0,
        "MetricDataQueries": [{"Id": "e1", "Expression": "m9 * 2"}]}),
    )
    .await;
    assert!(e.message.contains("m9"), "{}", e.message);
}

#[tokio::test]
async fn list_metrics_filters_and_pages() {
    let cw = cw();
    let mut data = Vec::new();
    for i in 0..3 {
        data.push(json!({"MetricName": "Cpu", "Value": 1.0, "Dimensions": [{"Name": "Host", "Value": format!("h{i}")}]}));
    }
    data.push(json!({"MetricName": "Mem", "Value": 1.0}));
    ok(
        &cw,
        "PutMetricData",
        json!({"Namespace": "L", "MetricData": data}),
    )
    .await;
    ok(
        &cw,
        "PutMetricData",
        json!({"Namespace": "Other", "MetricData": [{"MetricName": "Cpu", "Value": 1.0}]}),
    )
    .await;
    let all = ok(&cw, "ListMetrics", json!({"Namespace": "L"})).await;
    assert_eq!(all["Metrics"].as_array().unwrap().len(), 4);
    let cpu = ok(&cw, "ListMetrics", json!({"MetricName": "Cpu"})).await;
    assert_eq!(cpu["Metrics"].as_array().unwrap().len(), 4);
    let h1 = ok(
        &cw,
        "ListMetrics",
        json!({"Namespace": "L", "Dimensions": [{"Name": "Host", "Value": "h1"}]}),
    )
    .await;
    assert_eq!(
        h1["Metrics"],
        json!([{"Namespace": "L", "MetricName": "Cpu", "Dimensions": [{"Name": "Host", "Value": "h1"}]}])
    );
    let hosts = ok(
        &cw,
        "ListMetrics",
        json!({"Namespace": "L", "Dimensions": [{"Name": "Host"}], "RecentlyActive": "PT3H"}),
    )
    .await;
    assert_eq!(hosts["Metrics"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn dashboards_round_trip() {
    let cw = cw();
    let body = r#"{"widgets":[{"type":"text","x":0,"y":0,"width":6,"height":3,"properties":{"markdown":"hi"}}]}"#;
    let out = ok(
        &cw,
        "PutDashboard",
        json!({"DashboardName": "ops-1", "DashboardBody": body}),
    )
    .await;
    assert_eq!(out["DashboardValidationMessages"], json!([]));
    let got = ok(&cw, "GetDashboard", json!({"DashboardName": "ops-1"})).await;
    assert_eq!(got["DashboardBody"], body);
    assert_eq!(
        got["DashboardArn"],
        "arn:aws:cloudwatch::000000000000:dashboard/ops-1"
    );
    ok(
        &cw,
        "PutDashboard",
        json!({"DashboardName": "ops-2", "DashboardBody": body}),
    )
    .await;
    ok(
        &cw,
        "PutDashboard",
        json!({"DashboardName": "dev", "DashboardBody": body}),
    )
    .await;
    let listed = ok(&cw, "ListDashboards", json!({"DashboardNamePrefix": "ops"})).await;
    assert_eq!(listed["DashboardEntries"].as_array().unwrap().len(), 2);
    assert_eq!(listed["DashboardEntries"][0]["Size"], json!(body.len()));
    let e = err(
        &cw,
        "PutDashboard",
        json!({"DashboardName": "bad", "DashboardBody": "{\"widgets\": 3}"}),
    )
    .await;
    assert_eq!(e.code, "DashboardInvalidInputError");
    assert_eq!(
        e.fields["dashboardValidationMessages"][0]["DataPath"],
        "/widgets"
    );
    let e = err(
        &cw,
        "DeleteDashboards",
        json!({"DashboardNames": ["ops-1", "nope"]}),
    )
    .await;
    assert_eq!(e.code, "DashboardNotFoundError");
    ok(
        &cw,
        "DeleteDashboards",
        json!({"DashboardNames": ["ops-1", "ops-2"]}),
    )
    .await;
    let e = err(&cw, "GetDashboard", json!({"DashboardName": "ops-1"})).await;
    assert_eq!(e.code, "DashboardNotFoundError");
}

fn alarm(name: &str) -> Value {
    json!({
        "AlarmName": name, "Namespace": "Svc", "MetricName": "Errors", "Statistic": "Sum",
        "Period": 60, "EvaluationPeriods": 1, "Threshold": 5.0,
        "ComparisonOperator": "GreaterThanThreshold",
        "Dimensions": [{"Name": "Api", "Value": "x"}],
        "AlarmActions": ["arn:aws:sns:us-east-1:000000000000:alerts"],
    })
}

async fn state_of(cw: &CloudWatch, name: &str) -> Value {
    let d = ok(cw, "DescribeAlarms", json!({"AlarmNames": [name]})).await;
    d["MetricAlarms"][0].clone()
}

#[tokio::test]
async fn alarm_goes_to_alarm_and_back() {
    let cw = cw();
    ok(&cw, "PutMetricAlarm", alarm("errs")).await;
    let a = state_of(&cw, "errs").await;
    assert_eq!(a["StateValue"], "INSUFFICIENT_DATA");
    assert_eq!(
        a["AlarmArn"],
        "arn:aws:cloudwatch:us-east-1:000000000000:alarm:errs"
    );
    assert_eq!(a["StateReason"], "Unchecked: Initial alarm creation");
    let now = crate::model::now_ms();
    cw.run_due(now).await;
    assert_eq!(
        state_of(&cw, "errs").await["StateValue"],
        "INSUFFICIENT_DATA"
    );
    ok(&cw, "PutMetricData", json!({"Namespace": "Svc", "MetricData": [
        {"MetricName": "Errors", "Value": 9.0, "Dimensions": [{"Name": "Api", "Value": "x"}], "Timestamp": now as f64 / 1000.0 - 1.0}]})).await;
    // Not due yet.
    cw.run_due(now + 1).await;
    assert_eq!(
        state_of(&cw, "errs").await["StateValue"],
        "INSUFFICIENT_DATA"
    );
    cw.run_due(now + 10_000).await;
    let a = state_of(&cw, "errs").await;
    assert_eq!(a["StateValue"], "ALARM", "{a}");
    let reason = a["StateReason"].as_str().unwrap();
    assert!(
        reason.starts_with("Threshold Crossed: 1 out of the last 1 datapoints [9.0 ("),
        "{reason}"
    );
    let data: Value = serde_json::from_str(a["StateReasonData"].as_str().unwrap()).unwrap();
    assert_eq!(data["recentDatapoints"], json!([9.0]));
    assert_eq!(data["statistic"], "Sum");
    // SNS is not registered: the action waits on its queue.
    assert_eq!(cw.state.pending(crate::evaluate::ACTIONS).unwrap(), 1);
    let h = ok(
        &cw,
        "DescribeAlarmHistory",
        json!({"AlarmName": "errs", "HistoryItemType": "StateUpdate"}),
    )
    .await;
    let items = h["AlarmHistoryItems"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(
        items[0]["HistorySummary"],
        "Alarm updated from INSUFFICIENT_DATA to ALARM"
    );
    let hd: Value = serde_json::from_str(items[0]["HistoryData"].as_str().unwrap()).unwrap();
    assert_eq!(hd["newState"]["stateValue"], "ALARM");
    assert_eq!(hd["oldState"]["stateValue"], "INSUFFICIENT_DATA");
    let all = ok(&cw, "DescribeAlarmHistory", json!({"AlarmName": "errs"})).await;
    assert_eq!(
        all["AlarmHistoryItems"][1]["HistorySummary"],
        "Alarm \"errs\" created"
    );
    // The point leaves the window: missing data → INSUFFICIENT_DATA.
    cw.run_due(now + 120_000).await;
    assert_eq!(
        state_of(&cw, "errs").await["StateValue"],
        "INSUFFICIENT_DATA"
    );
    let by_state = ok(&cw, "DescribeAlarms", json!({"StateValue": "ALARM"})).await;
    assert_eq!(by_state["MetricAlarms"], json!([]));
    let for_metric = ok(
        &cw,
        "DescribeAlarmsForMetric",
        json!({"Namespace": "Svc", "MetricName": "Errors",
        "Dimensions": [{"Name": "Api", "Value": "x"}]}),
    )
    .await;
    assert_eq!(for_metric["MetricAlarms"].as_array().unwrap().len(), 1);
    ok(&cw, "DeleteAlarms", json!({"AlarmNames": ["errs"]})).await;
    assert_eq!(
        ok(&cw, "DescribeAlarms", json!({})).await["MetricAlarms"],
        json!([])
    );
}

#[tokio::test]
async fn missing_data_treatments_and_m_of_n() {
    let cw = cw();
    let mut a = alarm("nb");
    a["TreatMissingData"] = json!("notBreaching");
    ok(&cw, "PutMetricAlarm", a).await;
    let mut b = alarm("br");
    b["TreatMissingData"] = json!("breaching");
    b["EvaluationPeriods"] = json!(3);
    b["DatapointsToAlarm"] = json!(2);
    ok(&cw, "PutMetricAlarm", b).await;
    let now = crate::model::now_ms();
    cw.run_due(now).await;
    assert_eq!(state_of(&cw, "nb").await["StateValue"], "OK");
    assert_eq!(state_of(&cw, "br").await["StateValue"], "ALARM");
    let e = err(&cw, "PutMetricAlarm", {
        let mut x = alarm("x");
        x["DatapointsToAlarm"] = json!(2);
        x
    })
    .await;
    assert_eq!(e.code, "InvalidParameterValueException");
}

#[tokio::test]
async fn set_alarm_state_and_actions() {
    let cw = cw();
    ok(&cw, "PutMetricAlarm", alarm("manual")).await;
    ok(
        &cw,
        "DisableAlarmActions",
        json!({"AlarmNames": ["manual"]}),
    )
    .await;
    assert_eq!(
        state_of(&cw, "manual").await["ActionsEnabled"],
        json!(false)
    );
    ok(
        &cw,
        "SetAlarmState",
        json!({"AlarmName": "manual", "StateValue": "ALARM", "StateReason": "testing"}),
    )
    .await;
    let a = state_of(&cw, "manual").await;
    assert_eq!(
        (a["StateValue"].as_str(), a["StateReason"].as_str()),
        (Some("ALARM"), Some("testing"))
    );
    assert_eq!(cw.state.pending(crate::evaluate::ACTIONS).unwrap(), 0);
    ok(&cw, "EnableAlarmActions", json!({"AlarmNames": ["manual"]})).await;
    ok(
        &cw,
        "SetAlarmState",
        json!({"AlarmName": "manual", "StateValue": "OK", "StateReason": "r"}),
    )
    .await;
    ok(
        &cw,
        "SetAlarmState",
        json!({"AlarmName": "manual", "StateValue": "ALARM", "StateReason": "r"}),
    )
    .await;
    assert_eq!(cw.state.pending(crate::evaluate::ACTIONS).unwrap(), 1);
    let e = err(
        &cw,
        "SetAlarmState",
        json!({"AlarmName": "nope", "StateValue": "OK", "StateReason": "r"}),
    )
    .await;
    assert_eq!(e.code, "ResourceNotFound");
    let e = err(&cw, "SetAlarmState", json!({"AlarmName": "manual", "StateValue": "OK", "StateReason": "r", "StateReasonData": "{"})).await;
    assert_eq!(e.code, "InvalidFormatFault");
}

#[tokio::test]
async fn math_and_composite_alarms() {
    let cw = cw();
    ok(&cw, "PutMetricAlarm", json!({
        "AlarmName": "ratio", "EvaluationPeriods": 1, "Threshold": 10.0,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "Metrics": [
            {"Id": "e", "ReturnData": false, "MetricStat": {"Metric": {"Namespace": "R", "MetricName": "Err"}, "Period": 60, "Stat": "Sum"}},
            {"Id": "r", "ReturnData": false, "MetricStat": {"Metric": {"Namespace": "R", "MetricName": "Req"}, "Period": 60, "Stat": "Sum"}},
            {"Id": "pct", "Expression": "100 * e / r"},
        ],
    })).await;
    ok(
        &cw,
        "PutCompositeAlarm",
        json!({"AlarmName": "combo", "AlarmRule": "ALARM(ratio) AND NOT ALARM(\"other\")"}),
    )
    .await;
    let now = crate::model::now_ms();
    let ts = now as f64 / 1000.0 - 1.0;
    ok(&cw, "PutMetricData", json!({"Namespace": "R", "MetricData": [
        {"MetricName": "Err", "Value": 3.0, "Timestamp": ts}, {"MetricName": "Req", "Value": 10.0, "Timestamp": ts}]})).await;
    cw.run_due(now).await;
    cw.run_due(now + 10_000).await;
    assert_eq!(state_of(&cw, "ratio").await["StateValue"], "ALARM");
    let c = ok(
        &cw,
        "DescribeAlarms",
        json!({"AlarmTypes": ["CompositeAlarm"]}),
    )
    .await;
    assert_eq!(c["CompositeAlarms"][0]["StateValue"], "ALARM", "{c}");
    assert_eq!(c["MetricAlarms"], json!([]));
    let e = err(&cw, "PutMetricAlarm", json!({"AlarmName": "bad", "EvaluationPeriods": 1, "Threshold": 1.0,
        "ComparisonOperator": "GreaterThanThreshold", "Metrics": [{"Id": "a", "Expression": "1"}, {"Id": "b", "Expression": "2"}]})).await;
    assert_eq!(
        e.message,
        "Exactly one element of the metrics list should return data."
    );
    let e = err(
        &cw,
        "PutCompositeAlarm",
        json!({"AlarmName": "c2", "AlarmRule": "ALARM(x"}),
    )
    .await;
    assert_eq!(e.code, "InvalidParameterValueException");
}

#[tokio::test]
async fn describe_alarms_pages_and_prefixes() {
    let cw = cw();
    for i in 0..5 {
        ok(&cw, "PutMetricAlarm", alarm(&format!("p-{i}"))).await;
    }
    ok(&cw, "PutMetricAlarm", alarm("q")).await;
    let first = ok(
        &cw,
        "DescribeAlarms",
        json!({"AlarmNamePrefix": "p-", "MaxRecords": 3}),
    )
    .await;
    assert_eq!(first["MetricAlarms"].as_array().unwrap().len(), 3);
    let rest = ok(
        &cw,
        "DescribeAlarms",
        json!({"AlarmNamePrefix": "p-", "MaxRecords": 3, "NextToken": first["NextToken"]}),
    )
    .await;
    let names: Vec<&str> = rest["MetricAlarms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["AlarmName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["p-3", "p-4"]);
    assert!(rest.get("NextToken").is_none());
}
